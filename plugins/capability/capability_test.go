package capability

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// call runs a host function the way the runtime does and opens the answer's envelope.
func call(t *testing.T, ctx context.Context, fn runtime.HostFunc, encode func(*wire.Writer)) (string, *wire.Reader) {
	t.Helper()
	req := wire.NewWriter(nil)
	encode(req)
	w := wire.NewWriter(nil)
	w.String("")
	if err := fn(ctx, req.Bytes(), w); err != nil {
		return err.Error(), nil
	}
	msg, r, err := wire.OpenAnswer(w.Bytes())
	if err != nil {
		t.Fatalf("malformed answer: %v", err)
	}
	return msg, r
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Dir: t.TempDir(), Logger: hclog.NewNullLogger(), Metrics: metrics.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, id := range []string{"acme", "globex"} {
		if err := st.CreateWorkspace(ctx, workspaces.Workspace{ID: id, Name: id, WriteKey: "wk_" + id + "_0123456789abcdef"}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func kvDo(t *testing.T, fn runtime.HostFunc, ws string, ops ...wire.KVOp) (string, wire.KVAnswer) {
	t.Helper()
	ctx := context.Background()
	if ws != "" {
		ctx = WithWorkspace(ctx, ws)
	}
	q := wire.KVRequest{Ops: ops}
	msg, r := call(t, ctx, fn, q.Encode)
	if msg != "" {
		return msg, wire.KVAnswer{}
	}
	a, err := wire.DecodeKVAnswer(r)
	if err != nil {
		t.Fatal(err)
	}
	return "", a
}

func TestKV(t *testing.T) {
	st := openStore(t)
	kv := KV(st, "p", 1000)
	put := func(k, v string) wire.KVOp { return wire.KVOp{Kind: wire.KVPut, Key: k, Value: []byte(v)} }
	get := func(k string) wire.KVOp { return wire.KVOp{Kind: wire.KVGet, Key: k} }

	if msg, a := kvDo(t, kv, "acme", put("a", "1"), put("b", "2"), get("a"), get("zz")); msg != "" || !a.Results[2].OK || string(a.Results[2].Value) != "1" || a.Results[3].OK {
		t.Fatalf("put/get: %q %+v", msg, a)
	}
	cases := []struct {
		name    string
		ws      string
		ops     []wire.KVOp
		wantErr string
		check   func(wire.KVAnswer) bool
	}{
		{"no workspace", "", []wire.KVOp{get("a")}, "not made for a workspace", nil},
		{"unknown workspace", "nope", []wire.KVOp{put("a", "1")}, "not found", nil},
		{"workspaces are apart", "globex", []wire.KVOp{get("a")}, "", func(a wire.KVAnswer) bool { return !a.Results[0].OK }},
		{"cas holds", "acme", []wire.KVOp{{Kind: wire.KVCompareAndSwap, Key: "a", ExpectPresent: true, Expect: []byte("1"), Value: []byte("9")}, get("a")}, "",
			func(a wire.KVAnswer) bool { return a.Results[0].OK && string(a.Results[1].Value) == "9" }},
		{"cas fails and rolls back earlier writes", "acme", []wire.KVOp{put("c", "3"), {Kind: wire.KVCompareAndSwap, Key: "a", ExpectPresent: false, Value: []byte("x")}, get("a")}, "",
			func(a wire.KVAnswer) bool { return len(a.Results) == 2 && !a.Results[1].OK }},
		{"rolled back write is absent", "acme", []wire.KVOp{get("c")}, "", func(a wire.KVAnswer) bool { return !a.Results[0].OK }},
		{"list pages", "acme", []wire.KVOp{{Kind: wire.KVList, Key: "", Limit: 1}}, "",
			func(a wire.KVAnswer) bool { return len(a.Results[0].Entries) == 1 && a.Results[0].Next == "a" }},
		{"list next page", "acme", []wire.KVOp{{Kind: wire.KVList, Key: "", After: "a", Limit: 1}}, "",
			func(a wire.KVAnswer) bool { return a.Results[0].Entries[0].Key == "b" && a.Results[0].Next == "" }},
		{"quota refuses and writes nothing", "acme", []wire.KVOp{put("d", "4"), put("big", strings.Repeat("x", 1000))}, "kv: quota of 1000 bytes exceeded", nil},
		{"nothing of the refused request stayed", "acme", []wire.KVOp{get("d")}, "", func(a wire.KVAnswer) bool { return !a.Results[0].OK }},
		{"empty key refused", "acme", []wire.KVOp{put("", "x")}, "key", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, a := kvDo(t, kv, c.ws, c.ops...)
			if c.wantErr != "" {
				if !strings.Contains(msg, c.wantErr) {
					t.Fatalf("error %q, want %q", msg, c.wantErr)
				}
				return
			}
			if msg != "" || !c.check(a) {
				t.Fatalf("%q %+v", msg, a)
			}
		})
	}
	// Deleting makes room even when a lowered quota is already exceeded.
	small := KV(st, "p", 1)
	if msg, _ := kvDo(t, small, "acme", wire.KVOp{Kind: wire.KVDelete, Key: "b"}); msg != "" {
		t.Fatalf("a delete over quota was refused: %s", msg)
	}
	// The SDK recognises the quota error by its text.
	if !sdk.IsKVQuotaExceeded(errors.New(quotaError{quota: 1, usage: 2}.Error())) {
		t.Fatal("sdk.IsKVQuotaExceeded does not recognise the host's quota error")
	}
}

func TestMetricsDeclare(t *testing.T) {
	reg := metrics.NewRegistry()
	m := NewMetrics(reg)
	good := sdk.Metric{Name: "sent_total", Type: "counter", Help: "Sent.", Labels: []string{"provider"}}
	fn, err := m.Declare("a", []sdk.Metric{good, {Name: "latency_seconds", Type: "histogram", Help: "Latency.", Buckets: []float64{0.1, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Declare("b", []sdk.Metric{good}); err != nil {
		t.Fatalf("the same declaration from another plugin: %v", err)
	}
	refused := []struct {
		name string
		defs []sdk.Metric
		want string
	}{
		{"other labels", []sdk.Metric{{Name: "sent_total", Type: "counter", Help: "x"}}, "another plugin declares it"},
		{"bad name", []sdk.Metric{{Name: "Sent-Total", Type: "counter", Help: "x"}}, "lower_snake_case"},
		{"bad type", []sdk.Metric{{Name: "g", Type: "gauge", Help: "x"}}, "neither counter nor histogram"},
		{"no help", []sdk.Metric{{Name: "g", Type: "counter"}}, "help is empty"},
		{"reserved label", []sdk.Metric{{Name: "g", Type: "counter", Help: "x", Labels: []string{"plugin"}}}, "label"},
		{"buckets not increasing", []sdk.Metric{{Name: "h", Type: "histogram", Help: "x", Buckets: []float64{2, 1}}}, "strictly increasing"},
		{"twice", []sdk.Metric{{Name: "g", Type: "counter", Help: "x"}, {Name: "g", Type: "counter", Help: "x"}}, "twice"},
		{"host's own name", []sdk.Metric{{Name: "calls_total", Type: "counter", Help: "x"}}, "taken by one of the host's metrics"},
	}
	reg.Counter("crosscast_plugin_calls_total", "host", "plugin")
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			if _, err := m.Declare("c", c.defs); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	record := func(name string, v float64, labels wire.Pairs) string {
		q := wire.MetricRequest{Name: name, Value: v, Labels: labels}
		msg, _ := call(t, context.Background(), fn, q.Encode)
		return msg
	}
	for _, c := range []struct {
		name, metric string
		v            float64
		labels       wire.Pairs
		want         string
	}{
		{"counter", "sent_total", 2, wire.Pairs{{Key: "provider", Value: "x"}}, ""},
		{"histogram", "latency_seconds", 0.5, nil, ""},
		{"undeclared", "other_total", 1, nil, "not declared"},
		{"missing label", "sent_total", 1, wire.Pairs{{Key: "zone", Value: "x"}}, "missing"},
		{"negative counter", "sent_total", -1, wire.Pairs{{Key: "provider", Value: "x"}}, "cannot decrease"},
		{"long label value", "sent_total", 1, wire.Pairs{{Key: "provider", Value: strings.Repeat("x", 200)}}, "at most 128"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := record(c.metric, c.v, c.labels); !strings.Contains(got, c.want) || (c.want == "" && got != "") {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	var out bytes.Buffer
	_ = reg.WriteText(&out)
	for _, want := range []string{`crosscast_plugin_sent_total{plugin="a",provider="x"} 2`, `crosscast_plugin_latency_seconds_count{plugin="a"} 1`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestSecrets(t *testing.T) {
	fn := Secrets([]string{"api_key", "optional"}, map[string]string{"api_key": "k1"})
	for _, c := range []struct {
		name, want string
		set        bool
		err        string
	}{
		{"api_key", "k1", true, ""},
		{"optional", "", false, ""},
		{"from", "", false, "not a secret config field"},
	} {
		q := wire.SecretRequest{Name: c.name}
		msg, r := call(t, context.Background(), fn, q.Encode)
		if c.err != "" {
			if !strings.Contains(msg, c.err) {
				t.Fatalf("%s: %q", c.name, msg)
			}
			continue
		}
		a, err := wire.DecodeSecretAnswer(r)
		if err != nil || a.Set != c.set || a.Value != c.want {
			t.Fatalf("%s: %+v %v", c.name, a, err)
		}
	}
}
