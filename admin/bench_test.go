package admin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = f.srv.Serve(ln) }()
	defer f.srv.Shutdown(context.Background())
	url := "http://" + ln.Addr().String() + path
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
				req, _ := http.NewRequest(method, url, strings.NewReader(body))
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
		b.ReportMetric(float64(all[len(all)*50/100].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}
