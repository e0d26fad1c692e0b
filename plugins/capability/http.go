package capability

import (
	"context"
	"sort"
	"strings"

	"github.com/crosscast/crosscast/plugins/netguard"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk/wire"
)

// HTTPDoer performs a plugin's HTTP request: a *netguard.Client in production (grants checked on every request
// and redirect), recorded responses in plugin tests.
type HTTPDoer interface {
	Do(ctx context.Context, r netguard.Request) (netguard.Response, error)
}

// HTTP serves the http import with doer.
func HTTP(doer HTTPDoer) runtime.HostFunc {
	return func(ctx context.Context, b []byte, w *wire.Writer) error {
		req, err := wire.DecodeHTTPRequest(b)
		if err != nil {
			return errMalformed("http", err)
		}
		header := make(map[string][]string, len(req.Headers))
		for _, h := range req.Headers {
			header[h.Key] = []string{h.Value}
		}
		resp, err := doer.Do(ctx, netguard.Request{Method: req.Method, URL: req.URL, Header: header, Body: req.Body})
		if err != nil {
			return err
		}
		pairs := make(wire.Pairs, 0, len(resp.Header))
		for k, vs := range resp.Header {
			pairs = append(pairs, wire.Pair{Key: k, Value: strings.Join(vs, ", ")})
		}
		sort.Slice(pairs, func(i, j int) bool { return pairs[i].Key < pairs[j].Key })
		out := wire.HTTPResponse{Status: uint32(resp.Status), Headers: pairs, Body: resp.Body}
		out.Encode(w)
		return nil
	}
}
