package manager

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/crosscast/crosscast/sdk/wire"
)

// The test plugins, built once for the package's tests.
var fetchWasm, capsWasm string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crosscast-manager-")
	if err != nil {
		panic(err)
	}
	fetchWasm = filepath.Join(dir, "fetch.wasm")
	capsWasm = filepath.Join(dir, "caps.wasm")
	for src, out := range map[string]string{"testdata/fetch": fetchWasm, "testdata/caps": capsWasm} {
		build := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
		build.Dir = src
		build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building test plugin", src+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func fetchSpec(t *testing.T, grants string) string {
	t.Helper()
	b, err := os.ReadFile(fetchWasm)
	if err != nil {
		t.Fatal(err)
	}
	_, sum := writeTemp(t, b)
	return fmt.Sprintf("plugin \"fetch\" {\n  source = %q\n  sha256 = %q\n%s}\n", fetchWasm, sum, grants)
}

// The http capability end to end: a plugin built with the public SDK reaches a granted origin, and only that.
func TestHTTPCapability(t *testing.T) {
	var hits, otherHits atomic.Int32
	var gotBody atomic.Value
	granted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		gotBody.Store(string(b))
		fmt.Fprint(w, "provider-42")
	}))
	defer granted.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) }))
	defer other.Close()

	src := fetchSpec(t, fmt.Sprintf("  grants {\n    http_hosts = [%q]\n    allow_private = true\n  }\n", granted.URL))
	m, err := New(context.Background(), opts(t), specs(t, src))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())

	results := sendTo(t, m, granted.URL+"/send", other.URL+"/send")
	if r := results[0]; r.Status != wire.StatusDelivered || r.ProviderID != "provider-42" || gotBody.Load() != "hello" {
		t.Fatalf("granted origin: %+v, body %v", r, gotBody.Load())
	}
	if r := results[1]; r.Status != wire.StatusFailed || !strings.Contains(r.Error, "not granted") || otherHits.Load() != 0 {
		t.Fatalf("other origin: %+v, hits %d", r, otherHits.Load())
	}

	// Granted by name but loopback, without allow_private: refused at dial time.
	m2, err := New(context.Background(), opts(t), specs(t, fetchSpec(t, fmt.Sprintf("  grants {\n    http_hosts = [%q]\n  }\n", granted.URL))))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close(context.Background())
	before := hits.Load()
	if r := sendTo(t, m2, granted.URL+"/send")[0]; r.Status != wire.StatusFailed || !strings.Contains(r.Error, "forbidden") || hits.Load() != before {
		t.Fatalf("loopback without allow_private: %+v", r)
	}

	// Requesting http without a grant fails at load.
	if _, err := New(context.Background(), opts(t), specs(t, fetchSpec(t, ""))); err == nil || !strings.Contains(err.Error(), "requests the http capability, which is not granted") {
		t.Fatalf("load without grant: %v", err)
	}
}

func sendTo(t *testing.T, m *Manager, urls ...string) []wire.Result {
	t.Helper()
	msgs := make([]wire.Message, len(urls))
	for i, u := range urls {
		msgs[i] = wire.Message{ID: fmt.Sprint(i), To: u, Fields: wire.Pairs{{Key: "text", Value: "hello"}}}
	}
	w := wire.NewWriter(nil)
	(&wire.SendRequest{Messages: msgs}).Encode(w)
	out, err := m.Call(context.Background(), "fetch", 16, w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wire.DecodeSendResponse(out)
	if err != nil || len(resp.Results) != len(urls) {
		t.Fatalf("%+v %v", resp, err)
	}
	return resp.Results
}
