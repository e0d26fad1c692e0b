package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/sdk/wire"
)

type testChannel struct {
	configured map[string]any
	failBatch  bool
	panicOn    string
}

func (c *testChannel) Configure(cfg map[string]any) error {
	if cfg["bad"] != nil {
		return errors.New("bad config")
	}
	c.configured = cfg
	return nil
}

func (c *testChannel) Send(call Call, msgs []Message) ([]Result, error) {
	if c.failBatch {
		return nil, errors.New("provider down")
	}
	out := make([]Result, len(msgs))
	for i, m := range msgs {
		if m.ID == c.panicOn {
			panic("boom")
		}
		out[i] = Result{ID: m.ID, Status: Delivered, ProviderID: "t-" + m.ID + "-" + call.Now.UTC().Format("2006")}
	}
	return out, nil
}

func run(t *testing.T, p *plugin, entry uint32, input []byte) (byte, []byte) {
	t.Helper()
	out := dispatch(p, entry, input, wire.NewWriter(nil))
	if len(out) == 0 {
		t.Fatal("empty output: the status byte is missing")
	}
	return out[0], out[1:]
}

func TestDispatch(t *testing.T) {
	ch := &testChannel{}
	p := &plugin{manifest: Manifest{ID: "t", Version: "1.0.0", Kind: KindChannel, ABI: 1}, channel: ch}

	status, body := run(t, p, EntryManifest, nil)
	var m Manifest
	if status != statusOK || json.Unmarshal(body, &m) != nil || m.ID != "t" || m.ABI != 1 {
		t.Fatalf("manifest: %d %s", status, body)
	}
	if status, body := run(t, p, EntryConfigure, []byte(`{"from":"a@b.c"}`)); status != statusOK || ch.configured["from"] != "a@b.c" {
		t.Fatalf("configure: %d %s", status, body)
	}
	for name, in := range map[string][]byte{"refused": []byte(`{"bad":1}`), "malformed": []byte(`{`)} {
		if status, body := run(t, p, EntryConfigure, in); status != statusError || len(body) == 0 {
			t.Errorf("configure %s: %d %s", name, status, body)
		}
	}

	w := wire.NewWriter(nil)
	(&wire.SendRequest{NowUnixMilli: 1_790_000_000_000, Messages: []Message{{ID: "a"}, {ID: "b"}}}).Encode(w)
	status, body = run(t, p, EntrySend, w.Bytes())
	resp, err := wire.DecodeSendResponse(body)
	want := []Result{{ID: "a", Status: Delivered, ProviderID: "t-a-2026"}, {ID: "b", Status: Delivered, ProviderID: "t-b-2026"}}
	if status != statusOK || err != nil || !reflect.DeepEqual(resp.Results, want) {
		t.Fatalf("send: %d %v %+v", status, err, resp)
	}

	tests := []struct {
		name  string
		entry uint32
		input []byte
		setup func()
		want  string
	}{
		{"batch failure", EntrySend, w.Bytes(), func() { ch.failBatch = true }, "provider down"},
		{"panic becomes an error", EntrySend, w.Bytes(), func() { ch.failBatch, ch.panicOn = false, "b" }, "plugin panicked: boom"},
		{"malformed input", EntrySend, []byte{1, 2, 3}, nil, "truncated"},
		{"unknown entry", 99, nil, nil, "unknown entry point 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			status, body := run(t, p, tt.entry, tt.input)
			if status != statusError || !strings.Contains(string(body), tt.want) {
				t.Fatalf("got %d %q, want error containing %q", status, body, tt.want)
			}
		})
	}
	if status, body := run(t, nil, EntrySend, nil); status != statusError || !strings.Contains(string(body), "RegisterChannel") {
		t.Fatalf("unregistered: %d %s", status, body)
	}
}

// BenchmarkDispatchSend is the native cost of the guest side of a send of 100 two-field messages (decode, a
// null-like channel, encode): the baseline the in-wasm figure in docs/RATIONALE.md is compared with.
func BenchmarkDispatchSend(b *testing.B) {
	msgs := make([]Message, 100)
	for i := range msgs {
		msgs[i] = Message{ID: fmt.Sprint(i), To: "a@b.c", Fields: wire.Pairs{{Key: "subject", Value: "hi"}, {Key: "text", Value: "hello there"}}}
	}
	w := wire.NewWriter(nil)
	(&wire.SendRequest{Messages: msgs}).Encode(w)
	in := w.Bytes()
	p := &plugin{manifest: Manifest{ID: "bench"}, channel: &testChannel{}}
	out := wire.NewWriter(nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := dispatch(p, EntrySend, in, out); res[0] != statusOK {
			b.Fatal(string(res[1:]))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/item")
}
