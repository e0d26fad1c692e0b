package admin_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/plugins/runtime"
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
		b.Run(sc.name, func(b *testing.B) { load(b, sc.method, sc.path, sc.body) })
	}
}

// BenchmarkHealthzUnderHostilePlugin measures /healthz with 32 concurrent clients, first on a quiet server, then
// while another goroutine keeps calling a plugin stuck in an infinite loop (each call stopped at its 100 ms
// deadline, its instance discarded, a fresh one started). The goal: the same latency within noise, because
// CloseOnContextDone stops the spinning guest without stalling the process (docs/RATIONALE.md).
func BenchmarkHealthzUnderHostilePlugin(b *testing.B) {
	dir := b.TempDir()
	wasm := filepath.Join(dir, "hostile.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, "main.go")
	build.Dir = "../plugins/runtime/testdata/hostile"
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the hostile guest: %v\n%s", err, out)
	}
	code, err := os.ReadFile(wasm)
	if err != nil {
		b.Fatal(err)
	}
	for _, spinning := range []bool{false, true} {
		name := "quiet"
		if spinning {
			name = "spinning-plugin"
		}
		b.Run(name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if spinning {
				rt, err := runtime.New(ctx, runtime.Options{CacheDir: filepath.Join(os.TempDir(), "crosscast-test-wasm-cache"), Timeout: 100 * time.Millisecond, Pool: 1})
				if err != nil {
					b.Fatal(err)
				}
				defer rt.Close(context.Background())
				p, err := rt.Load(ctx, "hostile", code)
				if err != nil {
					b.Fatal(err)
				}
				var stopped atomic.Int64
				done := make(chan struct{})
				go func() {
					defer close(done)
					for ctx.Err() == nil {
						if _, err := p.Call(ctx, 1, nil); errors.Is(err, runtime.ErrTimeout) {
							stopped.Add(1)
						}
					}
				}()
				defer func() {
					cancel()
					<-done
					b.ReportMetric(float64(stopped.Load()), "spins-stopped")
				}()
			}
			load(b, "GET", "/healthz", "")
		})
	}
}

// load drives one endpoint of a fresh fixture server with 32 keep-alive clients (the owner token on every request)
// and reports requests/s and the latency percentiles the clients saw.
func load(b *testing.B, method, path, body string) {
	f := newFixture(b)
	loadWith(b, f, 32, func(_ int64) (string, string, string, map[string]string) {
		return method, path, body, map[string]string{"Authorization": "Bearer " + bootstrap}
	}, 1)
}

// request builds the i-th request of a load run: method, path, body and headers.
type request func(i int64) (method, path, body string, headers map[string]string)

// loadWith sends b.N requests made by next from workers keep-alive clients to a real listener serving f, and reports
// requests/s, items/s (perRequest items in each request) and the latency percentiles the clients saw.
func loadWith(b *testing.B, f *fixture, workers int, next request, perRequest int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = f.srv.Serve(ln) }()
	defer f.srv.Shutdown(context.Background())
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers * 2}}
	var seq atomic.Int64
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := seq.Add(1)
				if i > int64(b.N) {
					return
				}
				method, path, body, headers := next(i)
				req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
				for k, v := range headers {
					req.Header.Set(k, v)
				}
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					b.Errorf("%s %s: status %d", method, path, resp.StatusCode)
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
		if perRequest > 1 {
			b.ReportMetric(float64(len(all)*perRequest)/b.Elapsed().Seconds(), "events/s")
		}
		b.ReportMetric(float64(all[len(all)*50/100].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkTrackingLoopback is the ingest scenario: Segment-format events over real TCP on loopback, the
// load generator in the same process on the same 2 cores, a real store with fsync on (a 200 answer means durable).
// Events come from 10,000 anonymous visitors with realistic properties and context. "batch" sends /v1/batch with
// 100 events per request from 8 clients; "track" sends one /v1/track per request from 128 clients. The collector's
// target is the server's (GOGC=400).
func BenchmarkTrackingLoopback(b *testing.B) {
	// As served: crosscast serve sets the collector's target to 400% (cmd/crosscast: serveGCPercent).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, sc := range []struct {
		name    string
		workers int
		per     int
	}{{"batch", 8, 100}, {"track", 128, 1}} {
		b.Run(sc.name, func(b *testing.B) {
			f := newFixture(b)
			f.reserve(admin.Options{}) // default server.max_body (4 MiB), as served
			w, err := f.deps.Workspaces.Get(context.Background(), "acme")
			if err != nil {
				b.Fatal(err)
			}
			auth := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(w.WriteKey+":")),
				"Content-Type": "application/json"}
			event := func(i int64) string {
				return fmt.Sprintf(`{"type":"track","event":"Product Viewed","messageId":"m-%d","anonymousId":"anon-%d",`+
					`"properties":{"product_id":"sku-%d","price":19.99,"currency":"EUR","category":"shoes"},`+
					`"context":{"ip":"203.0.113.7","userAgent":"Mozilla/5.0 (X11; Linux x86_64)","page":{"url":"https://shop.example/p/%d","path":"/p/%d"},"library":{"name":"analytics-node","version":"2.1.0"}},`+
					`"timestamp":"%s"}`, i, i%10000, i%500, i%500, i%500, time.Now().UTC().Format(time.RFC3339Nano))
			}
			loadWith(b, f, sc.workers, func(i int64) (string, string, string, map[string]string) {
				if sc.per == 1 {
					return "POST", "/v1/track", event(i), auth
				}
				var sb strings.Builder
				sb.WriteString(`{"batch":[`)
				for j := int64(0); j < int64(sc.per); j++ {
					if j > 0 {
						sb.WriteByte(',')
					}
					sb.WriteString(event(i*int64(sc.per) + j))
				}
				sb.WriteString(`],"sentAt":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`)
				return "POST", "/v1/batch", sb.String(), auth
			}, sc.per)
		})
	}
}
