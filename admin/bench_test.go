package admin_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHTTP is the HTTP load scenario: 32 concurrent keep-alive clients on loopback against a real listener and
// a real store (fsync on). It reports requests/s and latency percentiles as seen by the clients.
func BenchmarkHTTP(b *testing.B) {
	scenarios := []struct {
		name, method, path, body string
	}{
		{"healthz", "GET", "/healthz", ""},
		{"get-workspace", "GET", "/api/v1/workspaces/acme", ""},                                          // auth + bbolt read
		{"issue-token", "POST", "/api/v1/tokens", `{"name":"bench","role":"viewer","workspace":"acme"}`}, // durable write
	}
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			f := newFixture(b)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = f.srv.Serve(ln) }()
			defer f.srv.Shutdown(context.Background())
			url := "http://" + ln.Addr().String() + sc.path
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			const workers = 32
			var next atomic.Int64
			lat := make([][]time.Duration, workers)
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						req, _ := http.NewRequest(sc.method, url, strings.NewReader(sc.body))
						req.Header.Set("Authorization", "Bearer "+bootstrap)
						start := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode >= 300 {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
						lat[w] = append(lat[w], time.Since(start))
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			if len(all) > 0 {
				b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "req/s")
				b.ReportMetric(float64(all[len(all)*50/100].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}
