package netguard

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkDo measures the guard's overhead (grant match, header checks, dial-time address check on new
// connections, body caps) against a plain http.Client on its own transport, both reusing keep-alive connections to
// the same local server.
func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true,"id":"msg_0123456789"}`))
	}))
	defer srv.Close()
	url := srv.URL + "/v1/messages?to=someone"
	header := map[string][]string{"Authorization": {"Bearer token"}, "Accept": {"application/json"}}

	b.Run("netguard", func(b *testing.B) {
		c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true}, hclog.NewNullLogger())
		defer c.CloseIdleConnections()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(b.Context(), Request{URL: url, Header: header})
			if err != nil || resp.Status != http.StatusOK {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		b.ReportAllocs()
		for b.Loop() {
			req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header = http.Header(header).Clone()
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
	})
}
