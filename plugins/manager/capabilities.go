package manager

import (
	"context"
	"sort"
	"strings"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/plugins/netguard"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// httpCapability returns the plugin's http host function under its grants, or nil when none are granted.
func httpCapability(spec config.Plugin, log hclog.Logger) (runtime.HTTPFunc, *netguard.Client, error) {
	if spec.Grants == nil || len(spec.Grants.HTTPHosts) == 0 {
		return nil, nil, nil
	}
	g, err := netguard.ParseGrant(spec.Grants.HTTPHosts, spec.Grants.AllowPrivate)
	if err != nil {
		return nil, nil, err
	}
	client := netguard.NewClient(g, log.Named("http").With("plugin", spec.Name))
	return func(ctx context.Context, req wire.HTTPRequest) wire.HTTPResponse {
		header := make(map[string][]string, len(req.Headers))
		for _, h := range req.Headers {
			header[h.Key] = []string{h.Value}
		}
		resp, err := client.Do(ctx, netguard.Request{Method: req.Method, URL: req.URL, Header: header, Body: req.Body})
		if err != nil {
			return wire.HTTPResponse{Error: err.Error()}
		}
		pairs := make(wire.Pairs, 0, len(resp.Header))
		for k, vs := range resp.Header {
			pairs = append(pairs, wire.Pair{Key: k, Value: strings.Join(vs, ", ")})
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
		return wire.HTTPResponse{Status: uint32(resp.Status), Headers: pairs, Body: resp.Body}
	}, client, nil
}
