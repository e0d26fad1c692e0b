package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/hashicorp/go-hclog"
)

// newMailers opens a connection pool per smtp block (they dial lazily, at the first message) for the plugins'
// smtp capability. closeAll closes them; call it after the plugins are closed.
func newMailers(cfg *config.Config, log hclog.Logger) (mailers map[string]capability.Mailer, closeAll func(), err error) {
	var relays []*smtprelay.Relay
	closeAll = func() {
		for _, r := range relays {
			_ = r.Close()
		}
	}
	mailers = map[string]capability.Mailer{}
	for _, b := range cfg.SMTPRelays {
		rc := smtprelay.Config{
			Name: b.Name, Host: b.Host, Port: b.Port, TLS: b.TLS, Username: b.Username, Password: b.Password,
			HELO: b.HELO, Pool: b.Pool, Timeout: b.TimeoutDur,
		}
		if b.CAFile != "" {
			pem, err := os.ReadFile(b.CAFile)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("smtp %q: reading ca_file: %w", b.Name, err)
			}
			rc.RootCAs = x509.NewCertPool()
			if !rc.RootCAs.AppendCertsFromPEM(pem) {
				closeAll()
				return nil, nil, errors.New("smtp " + b.Name + ": ca_file holds no PEM certificate")
			}
		}
		r, err := smtprelay.New(rc, log)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		relays = append(relays, r)
		mailers[b.Name] = r
	}
	return mailers, closeAll, nil
}
