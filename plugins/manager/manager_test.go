package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/plugins/bundled"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

func opts(t testing.TB) Options {
	return Options{CacheDir: filepath.Join(os.TempDir(), "crosscast-test-wasm-cache"), Logger: hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: hclog.Info})}
}

// specs parses plugin blocks the way the server does.
func specs(t *testing.T, src string) []config.Plugin {
	t.Helper()
	cfg, err := config.Parse([]byte(src), "test.hcl", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.Plugins
}

func nullFile(t *testing.T) (string, string) {
	t.Helper()
	b, err := bundled.Wasm("null")
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, b)
}

// writeTemp writes a module to a temp file and returns its path and SHA-256.
func writeTemp(t *testing.T, b []byte) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.wasm")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return path, hex.EncodeToString(h[:])
}

func send(t *testing.T, m *Manager, name string) error {
	t.Helper()
	w := wire.NewWriter(nil)
	(&wire.SendRequest{Messages: []wire.Message{{ID: "a"}}}).Encode(w)
	out, err := m.Call(context.Background(), name, 16, w.Bytes())
	if err != nil {
		return err
	}
	resp, err := wire.DecodeSendResponse(out)
	if err != nil || len(resp.Results) != 1 || resp.Results[0].Status != wire.StatusDelivered {
		t.Fatalf("send: %+v %v", resp, err)
	}
	return nil
}

// With no plugin blocks, the bundled plugins run under their own names.
func TestDefaultsLoadBundledPlugins(t *testing.T) {
	m, err := New(context.Background(), opts(t), DefaultSpecs())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	list := m.List()
	if len(list) != 2 || list[0].Name != "capture" || list[1].Name != "null" {
		t.Fatalf("bundled plugins %+v", list)
	}
	for _, p := range list {
		if p.Status != "ready" || p.Kind != "channel" || p.ID != p.Name || len(p.SHA256) != 64 {
			t.Fatalf("%+v", p)
		}
	}
	if err := send(t, m, "null"); err != nil {
		t.Fatal(err)
	}
	if got := m.List()[1]; got.Calls != 1 || got.Failures != 0 {
		t.Fatalf("counters %+v", got)
	}
	var text strings.Builder
	if err := m.opts.Metrics.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`crosscast_plugin_calls_total{plugin="null",result="ok"} 1`, `crosscast_plugin_call_seconds_count{plugin="null"} 1`, `crosscast_plugins_quarantined 0`} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if _, err := m.Call(context.Background(), "nope", 16, nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown plugin: %v", err)
	}
}

func TestLoadRefuses(t *testing.T) {
	path, sum := nullFile(t)
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"sha256 mismatch", `plugin "n" {
  source = "` + path + `"
  sha256 = "` + strings.Repeat("0", 64) + `"
}`, "refusing to load it"},
		{"missing file", `plugin "n" {
  source = "/nonexistent/x.wasm"
  sha256 = "` + sum + `"
}`, "no such file"},
		{"unknown bundled plugin", `plugin "n" {
  source = "builtin:nope"
}`, "no bundled plugin"},
		{"grant not requested", `plugin "n" {
  source = "builtin:null"
  grants {
    http_hosts = ["https://api.example.com"]
  }
}`, "grants give it http, which it does not request"},
		{"config attribute the plugin does not declare", `plugin "n" {
  source = "builtin:null"
  config {
    colour = "blue"
  }
}`, `test.hcl:4:5: Unsupported argument: An argument named "colour" is not expected here`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(context.Background(), opts(t), specs(t, tt.src))
			if err == nil {
				m.Close(context.Background())
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `plugin "n"`) {
				t.Fatalf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestFileSourceAndReload(t *testing.T) {
	path, sum := nullFile(t)
	m, err := New(context.Background(), opts(t), specs(t, `plugin "mail" {
  source = "`+path+`"
  sha256 = "`+sum+`"
  pool = 1
}`))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	if err := send(t, m, "mail"); err != nil {
		t.Fatal(err)
	}
	// A good reload swaps versions and keeps serving.
	info, err := m.Reload(context.Background(), "mail")
	if err != nil || info.Status != "ready" || info.Error != "" {
		t.Fatalf("reload: %+v %v", info, err)
	}
	if err := send(t, m, "mail"); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	// The file changes under us: the reload fails on the checksum, the previous version keeps serving.
	if err := os.WriteFile(path, []byte("\x00asm garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, err = m.Reload(context.Background(), "mail")
	if err == nil || !strings.Contains(err.Error(), "SHA-256") || !strings.Contains(info.Error, "previous version still serving") {
		t.Fatalf("bad reload: %+v %v", info, err)
	}
	if err := send(t, m, "mail"); err != nil {
		t.Fatalf("old version stopped serving after a failed reload: %v", err)
	}
}

// The breaker quarantines after repeated failures, from the moment of the failure; ignores calls that started
// before a quarantine; lets one trial through after the backoff; doubles the backoff when the trial fails.
func TestBreaker(t *testing.T) {
	var b breaker
	t0 := time.Unix(1000, 0)
	boom := errors.New("trap")
	for i := 0; i < breakerThreshold-1; i++ {
		if !b.allow(t0) || b.record(t0, t0, boom) {
			t.Fatalf("quarantined after %d failures", i+1)
		}
	}
	end := t0.Add(5 * time.Second) // a call that timed out after 5 s: the quarantine starts when it ends
	if !b.allow(t0) || !b.record(t0, end, boom) {
		t.Fatal("not quarantined at the threshold")
	}
	if q, _ := b.state(end); !q || b.allow(end.Add(breakerMin-time.Millisecond)) {
		t.Fatal("call allowed during quarantine")
	}
	// Calls that started before the quarantine neither extend it nor lift it.
	if b.record(t0, end.Add(time.Second), boom) || b.record(t0, end.Add(time.Second), nil) {
		t.Fatal("a pre-quarantine failure escalated")
	}
	if q, _ := b.state(end.Add(time.Second)); !q {
		t.Fatal("a pre-quarantine success lifted the quarantine")
	}
	trial := end.Add(breakerMin)
	if !b.allow(trial) || b.allow(trial) {
		t.Fatal("want exactly one trial after the backoff")
	}
	if !b.record(trial, trial, boom) || b.allow(trial.Add(breakerMin)) || !b.allow(trial.Add(2*breakerMin)) {
		t.Fatal("a failed trial should double the backoff")
	}
	later := trial.Add(2 * breakerMin)
	b.record(later, later, nil)
	if q, _ := b.state(later); q || !b.allow(later) {
		t.Fatal("a successful trial should close the breaker")
	}
}

// A plugin built against ABI v1 by an earlier SDK (committed in testdata/abi-v1, never rebuilt) still loads and
// sends under the current host: plugins in the field keep working across host upgrades.
func TestABIv1FixtureStillLoads(t *testing.T) {
	b, err := os.ReadFile("testdata/abi-v1/null.wasm")
	if err != nil {
		t.Fatal(err)
	}
	path, sum := writeTemp(t, b)
	m, err := New(context.Background(), opts(t), specs(t, "plugin \"old\" {\n  source = \""+path+"\"\n  sha256 = \""+sum+"\"\n}\n"))
	if err != nil {
		t.Fatalf("the ABI v1 fixture no longer loads: %v", err)
	}
	defer m.Close(context.Background())
	if err := send(t, m, "old"); err != nil {
		t.Fatalf("the ABI v1 fixture no longer sends: %v", err)
	}
	if info := m.List()[0]; info.Version != "1.0.0" || info.Kind != "channel" {
		t.Fatalf("%+v", info)
	}
}

func TestCompareSelfTest(t *testing.T) {
	st := SelfTest{Name: "t", Messages: []SelfTestMessage{{ID: "a"}, {ID: "b"}}, Want: []string{"delivered", "failed"}}
	ok := []wire.Result{{ID: "b", Status: wire.StatusFailed}, {ID: "a", Status: wire.StatusDelivered}}
	if p := compareSelfTest(st, ok); len(p) != 0 {
		t.Fatalf("matching results reported: %v", p)
	}
	bad := []wire.Result{{ID: "a", Status: wire.StatusRetry, Error: "421 later"}}
	p := compareSelfTest(st, bad)
	if len(p) != 2 || !strings.Contains(p[0], `message "a" is retry, want delivered (421 later)`) || !strings.Contains(p[1], `no result for message "b"`) {
		t.Fatalf("%v", p)
	}
}

// Self-tests run against the real plugin: the null channel's own self-test passes at every load (the other tests
// load it), and a wrong expectation is reported with the message and both statuses.
func TestSelfTestsRunUnderTheHost(t *testing.T) {
	ctx := context.Background()
	rt, err := runtime.New(ctx, runtime.Options{CacheDir: opts(t).CacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	code, _ := bundled.Wasm("null")
	p, err := rt.Load(ctx, "null", code)
	if err != nil {
		t.Fatal(err)
	}
	man := Manifest{Kind: "channel", SelfTests: []SelfTest{{Name: "expects a failure", Messages: []SelfTestMessage{{ID: "x", To: "a@b.c"}}, Want: []string{"failed"}}}}
	err = runSelfTests(ctx, p, man, time.Now())
	if err == nil || !strings.Contains(err.Error(), `self-test "expects a failure": message "x" is delivered, want failed`) {
		t.Fatalf("wrong expectation: %v", err)
	}
	man.SelfTests[0].Want = []string{"delivered"}
	if err := runSelfTests(ctx, p, man, time.Now()); err != nil {
		t.Fatalf("right expectation: %v", err)
	}
	man.SelfTests[0].Want = nil
	if err := runSelfTests(ctx, p, man, time.Now()); err == nil || !strings.Contains(err.Error(), "declares 1 messages but 0 expected statuses") {
		t.Fatalf("malformed self-test: %v", err)
	}
}

// A batch over maxSendInput goes in several calls, each message answered once, in order.
func TestLargeBatchesGoInSeveralCalls(t *testing.T) {
	m, err := New(context.Background(), opts(t), DefaultSpecs())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	body := strings.Repeat("<p>20 KB of newsletter</p>\n", 20<<10/27)
	msgs := make([]wire.Message, 300) // about 6 MiB
	for i := range msgs {
		msgs[i] = wire.Message{ID: fmt.Sprintf("m%03d", i), To: "ana@example.com", Fields: wire.Pairs{{Key: "html", Value: body}}}
	}
	before := m.List()[1].Calls
	res, err := m.Send(context.Background(), "acme", "null", time.Now(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	for i, r := range res {
		if r.ID != msgs[i].ID || r.Status != wire.StatusDelivered {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if calls := m.List()[1].Calls - before; calls != 2 {
		t.Fatalf("%d calls for 6 MiB of messages, want 2", calls)
	}
}
