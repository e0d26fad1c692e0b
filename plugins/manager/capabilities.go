package manager

import (
	"fmt"
	"slices"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/plugins/netguard"
	"github.com/crosscast/crosscast/plugins/runtime"
)

// minRedacted is the shortest secret value masked in a plugin's logs: masking every "a" would garble them.
const minRedacted = 4

// grants builds the capabilities a plugin gets: only those its manifest requests and the operator granted
// (checkGrants has compared both), and the optional ones the operator granted. The http client, when there is one,
// must be closed with the version.
func (m *Manager) grants(spec config.Plugin, man Manifest, secrets map[string]string) (runtime.Grants, *netguard.Client, error) {
	g := runtime.Grants{Host: map[string]runtime.HostFunc{}}
	granted := grantedCapabilities(spec)
	requested := func(c string) bool {
		return slices.Contains(man.Capabilities, c) || slices.Contains(man.OptionalCapabilities, c) && (granted[c] || c == "secrets" || c == "metrics")
	}
	var client *netguard.Client
	if requested("http") {
		grant, err := netguard.ParseGrant(spec.Grants.HTTPHosts, spec.Grants.AllowPrivate)
		if err != nil {
			return g, nil, err
		}
		if m.opts.HTTP != nil {
			g.Host[runtime.ImportHTTP] = capability.HTTP(m.opts.HTTP(spec.Name, grant))
		} else {
			client = netguard.NewClient(grant, m.log.Named("http").With("plugin", spec.Name))
			g.Host[runtime.ImportHTTP] = capability.HTTP(client)
		}
	}
	if requested("smtp") {
		mailer := m.opts.Mailers[spec.Grants.SMTPRelay]
		if mailer == nil {
			return g, client, fmt.Errorf("grants name smtp relay %q, which is not configured", spec.Grants.SMTPRelay)
		}
		g.Host[runtime.ImportSMTP] = capability.SMTP(mailer)
		g.Host[runtime.ImportSMTPBatch] = capability.SMTPBatch(mailer)
	}
	if requested("kv") && m.opts.KV != nil {
		g.Host[runtime.ImportKV] = capability.KV(m.opts.KV, spec.Name, spec.Grants.KVQuotaBytes)
	}
	if requested("secrets") {
		var declared []string
		for _, f := range man.Config {
			if f.Secret {
				declared = append(declared, f.Name)
			}
		}
		g.Host[runtime.ImportSecret] = capability.Secrets(declared, secrets)
		for _, v := range secrets {
			if len(v) >= minRedacted {
				g.Redact = append(g.Redact, v)
			}
		}
	}
	if requested("metrics") {
		fn, err := m.ownMetrics.Declare(spec.Name, man.Metrics)
		if err != nil {
			return g, client, err
		}
		g.Host[runtime.ImportMetric] = fn
	}
	return g, client, nil
}
