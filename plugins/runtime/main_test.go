package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testGuests are the guests under testdata/, each a raw-ABI Go program (no sdk) built as a wasip1 reactor.
var testGuests = []string{"echo", "hostile", "noabi", "badimport", "bigstart"}

// Filled by TestMain, read-only afterwards.
var (
	guestWasm      = map[string][]byte{}
	sharedCacheDir string // compilation cache shared by the tests' runtimes, so each guest is compiled once
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crosscast-runtime-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := buildGuests(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		sharedCacheDir = filepath.Join(dir, "cache")
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildGuests compiles every test guest in parallel into dir and reads them into guestWasm.
func buildGuests(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("finding the go command to build test guests: %w", err)
	}
	errs := make([]error, len(testGuests))
	var wg sync.WaitGroup
	for i, name := range testGuests {
		wg.Go(func() {
			out := filepath.Join(dir, name+".wasm")
			cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, filepath.Join("testdata", name, "main.go"))
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if msg, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("building test guest %s: %v\n%s", name, err, msg)
			}
		})
	}
	wg.Wait()
	for i, name := range testGuests {
		if errs[i] != nil {
			return errs[i]
		}
		b, err := os.ReadFile(filepath.Join(dir, name+".wasm"))
		if err != nil {
			return err
		}
		guestWasm[name] = b
	}
	return nil
}

// logRecorder captures a runtime's logs as JSON lines, and prints them if the test fails.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// records returns the log records whose message is msg ("" for all).
func (r *logRecorder) records(msg string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var recs []map[string]any
	for _, line := range bytes.Split(r.buf.Bytes(), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && (msg == "" || rec["@message"] == msg) {
			recs = append(recs, rec)
		}
	}
	return recs
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// newTestRuntime returns a Runtime closed at the end of the test, logging to a recorder, and using the shared
// compilation cache unless opts names another.
func newTestRuntime(t testing.TB, opts Options) (*Runtime, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	if opts.Logger == nil {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Output: rec, JSONFormat: true, Level: hclog.Trace})
	}
	if opts.CacheDir == "" {
		opts.CacheDir = sharedCacheDir
	}
	rt, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("closing runtime: %v", err)
		}
		if t.Failed() {
			t.Logf("runtime log:\n%s", rec)
		}
	})
	return rt, rec
}

func load(t testing.TB, rt *Runtime, guest string) *Plugin {
	t.Helper()
	p, err := rt.Load(context.Background(), guest, guestWasm[guest])
	if err != nil {
		t.Fatalf("loading %s: %v", guest, err)
	}
	return p
}

// waitFor polls cond every few milliseconds until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// mustContain fails unless err's text contains every part.
func mustContain(t testing.TB, err error, parts ...string) {
	t.Helper()
	for _, part := range parts {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("error %v does not contain %q", err, part)
		}
	}
}
