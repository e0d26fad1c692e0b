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

// receivingChannel is a channel whose provider calls back: it checks a token, then reports one event per line of
// the body ("delivered m1").
type receivingChannel struct {
	testChannel
}

func (c *receivingChannel) Receive(call Call, req HookRequest) (HookReply, error) {
	if req.Headers.Get("X-Token") != "t0k" {
		return HookReply{Status: 401, Body: []byte("bad token")}, nil
	}
	if string(req.Body) == "fail" {
		return HookReply{}, errors.New("cannot parse")
	}
	var reply HookReply // Status 0: sent as 200
	for _, line := range strings.Split(strings.TrimSpace(string(req.Body)), "\n") {
		name, id, _ := strings.Cut(line, " ")
		typ, ok := wire.EventTypeOf(name)
		if !ok {
			return HookReply{Status: 400}, nil
		}
		reply.Events = append(reply.Events, ChannelEvent{Type: typ, MessageID: id, AtUnixMilli: call.Now.UnixMilli(),
			Fields: Pairs{{Key: "workspace", Value: call.Workspace}}})
	}
	return reply, nil
}

type testScorer struct{ configured map[string]any }

func (s *testScorer) Configure(cfg map[string]any) error { s.configured = cfg; return nil }

func (s *testScorer) Score(call Call, items []ScoreItem) ([]ScoreResult, error) {
	out := make([]ScoreResult, len(items))
	for i, it := range items {
		if it.ContactID == "panic" {
			panic("scorer bug")
		}
		out[i] = ScoreResult{ContactID: it.ContactID, Scores: []Score{{Name: "events", Value: float64(len(it.Events))}},
			Reasons: []string{call.Workspace}, State: append(it.State, '+')}
	}
	return out, nil
}

type testConnector struct{ configured map[string]any }

func (c *testConnector) Configure(cfg map[string]any) error { c.configured = cfg; return nil }

func (c *testConnector) Inbound(call Call, req HookRequest) (InboundReply, error) {
	return InboundReply{Status: 202, Events: []TrackEvent{{MessageID: "e1", Type: TrackTypeTrack, Event: string(req.Body),
		UserID: call.Workspace, TimestampUnixMilli: call.Now.UnixMilli()}}}, nil
}

func (c *testConnector) Outbound(call Call, events []TrackEvent) ([]OutboundResult, error) {
	out := make([]OutboundResult, len(events))
	for i, e := range events {
		out[i] = OutboundResult{MessageID: e.MessageID, Status: OutboundDone}
		if e.Type != TrackTypeTrack {
			out[i] = OutboundResult{MessageID: e.MessageID, Status: OutboundDeadLetter, Error: "only track in " + call.Workspace}
		}
	}
	return out, nil
}

func encode(enc func(*wire.Writer)) []byte {
	w := wire.NewWriter(nil)
	enc(w)
	return w.Bytes()
}

const testNow = 1_790_000_000_000

func TestDispatchReceive(t *testing.T) {
	p := &plugin{manifest: Manifest{ID: "t"}, channel: &receivingChannel{}}
	hook := func(token, body string) []byte {
		q := HookRequest{NowUnixMilli: testNow, Workspace: "acme", Method: "POST", Path: "/hooks/acme/t",
			Headers: Pairs{{Key: "X-Token", Value: token}}, Body: []byte(body)}
		return encode(q.Encode)
	}
	status, body := run(t, p, EntryReceive, hook("t0k", "delivered m1\nbounced m2"))
	got, err := wire.DecodeReceiveResponse(body)
	ws := Pairs{{Key: "workspace", Value: "acme"}}
	want := HookReply{Status: 200, Events: []ChannelEvent{
		{Type: EventDelivered, MessageID: "m1", AtUnixMilli: testNow, Fields: ws},
		{Type: EventBounced, MessageID: "m2", AtUnixMilli: testNow, Fields: ws},
	}}
	if status != statusOK || err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("receive: %d %v %+v", status, err, got)
	}
	status, body = run(t, p, EntryReceive, hook("wrong", "delivered m1"))
	if got, err := wire.DecodeReceiveResponse(body); status != statusOK || err != nil || got.Status != 401 || got.Events != nil {
		t.Fatalf("refused hook: %d %v %+v", status, err, got)
	}

	tests := []struct {
		name  string
		p     *plugin
		input []byte
		want  string
	}{
		{"plugin error", p, hook("t0k", "fail"), "cannot parse"},
		{"malformed input", p, []byte{1}, "truncated"},
		{"channel without Receive", &plugin{channel: &testChannel{}}, hook("t0k", ""), "this channel does not receive webhooks"},
		{"not a channel", &plugin{scorer: &testScorer{}}, hook("t0k", ""), "this plugin is not a channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := run(t, tt.p, EntryReceive, tt.input)
			if status != statusError || !strings.Contains(string(body), tt.want) {
				t.Fatalf("got %d %q, want an error containing %q", status, body, tt.want)
			}
		})
	}
}

func TestDispatchScore(t *testing.T) {
	s := &testScorer{}
	p := &plugin{manifest: Manifest{ID: "s", Kind: KindScorer}, scorer: s}
	if status, body := run(t, p, EntryConfigure, []byte(`{"half_life":"7d"}`)); status != statusOK || s.configured["half_life"] != "7d" {
		t.Fatalf("configure: %d %s", status, body)
	}
	q := wire.ScoreRequest{NowUnixMilli: testNow, Workspace: "acme", Items: []ScoreItem{
		{ContactID: "k1", Events: []ScoreEvent{{Name: "email_opened"}, {Name: "email_clicked"}}, State: []byte("s")},
		{ContactID: "k2"},
	}}
	status, body := run(t, p, EntryScore, encode(q.Encode))
	got, err := wire.DecodeScoreResponse(body)
	want := []ScoreResult{
		{ContactID: "k1", Scores: []Score{{Name: "events", Value: 2}}, Reasons: []string{"acme"}, State: []byte("s+")},
		{ContactID: "k2", Scores: []Score{{Name: "events", Value: 0}}, Reasons: []string{"acme"}, State: []byte("+")},
	}
	if status != statusOK || err != nil || !reflect.DeepEqual(got.Results, want) {
		t.Fatalf("score: %d %v %+v", status, err, got)
	}
	q.Items[1].ContactID = "panic"
	if status, body := run(t, p, EntryScore, encode(q.Encode)); status != statusError || string(body) != "plugin panicked: scorer bug" {
		t.Fatalf("panic: %d %s", status, body)
	}
	if status, body := run(t, &plugin{channel: &testChannel{}}, EntryScore, encode(q.Encode)); status != statusError || string(body) != "this plugin is not a scorer" {
		t.Fatalf("channel asked to score: %d %s", status, body)
	}
}

func TestDispatchConnector(t *testing.T) {
	c := &testConnector{}
	p := &plugin{manifest: Manifest{ID: "c", Kind: KindConnector}, connector: c}
	if status, body := run(t, p, EntryConfigure, []byte(`{"api_key_name":"x"}`)); status != statusOK || c.configured["api_key_name"] != "x" {
		t.Fatalf("configure: %d %s", status, body)
	}
	hook := HookRequest{NowUnixMilli: testNow, Workspace: "acme", Method: "POST", Body: []byte("Signed Up")}
	status, body := run(t, p, EntryInbound, encode(hook.Encode))
	in, err := wire.DecodeInboundResponse(body)
	wantIn := InboundReply{Status: 202, Events: []TrackEvent{{MessageID: "e1", Type: TrackTypeTrack, Event: "Signed Up", UserID: "acme", TimestampUnixMilli: testNow}}}
	if status != statusOK || err != nil || !reflect.DeepEqual(in, wantIn) {
		t.Fatalf("inbound: %d %v %+v", status, err, in)
	}
	q := wire.OutboundRequest{NowUnixMilli: testNow, Workspace: "acme", Events: []TrackEvent{
		{MessageID: "e1", Type: TrackTypeTrack, Event: "Signed Up", Properties: []byte(`{"plan":"pro"}`)},
		{MessageID: "e2", Type: TrackTypeIdentify, UserID: "u1"},
	}}
	status, body = run(t, p, EntryOutbound, encode(q.Encode))
	out, err := wire.DecodeOutboundResponse(body)
	wantOut := []OutboundResult{{MessageID: "e1", Status: OutboundDone}, {MessageID: "e2", Status: OutboundDeadLetter, Error: "only track in acme"}}
	if status != statusOK || err != nil || !reflect.DeepEqual(out.Results, wantOut) {
		t.Fatalf("outbound: %d %v %+v", status, err, out)
	}
	for _, entry := range []uint32{EntryInbound, EntryOutbound} {
		if status, body := run(t, &plugin{channel: &testChannel{}}, entry, nil); status != statusError || string(body) != "this plugin is not a connector" {
			t.Errorf("entry %d of a channel: %d %s", entry, status, body)
		}
	}
	if status, body := run(t, p, EntrySend, nil); status != statusError || string(body) != "this plugin is not a channel" {
		t.Errorf("send to a connector: %d %s", status, body)
	}
	if status, body := run(t, p, EntryOutbound, []byte{0}); status != statusError || !strings.Contains(string(body), "truncated") {
		t.Errorf("malformed outbound: %d %s", status, body)
	}
}

// Call.Workspace of a send is the batch's workspace, when its messages agree on one.
func TestSendCallWorkspace(t *testing.T) {
	var got []string
	ch := &workspaceChannel{seen: &got}
	p := &plugin{channel: ch}
	for _, msgs := range [][]Message{
		{{ID: "a", Workspace: "acme"}, {ID: "b", Workspace: "acme"}},
		{{ID: "a", Workspace: "acme"}, {ID: "b", Workspace: "other"}},
		nil,
	} {
		q := wire.SendRequest{Messages: msgs}
		if status, body := run(t, p, EntrySend, encode(q.Encode)); status != statusOK {
			t.Fatalf("send: %s", body)
		}
	}
	if !reflect.DeepEqual(got, []string{"acme", "", ""}) {
		t.Fatalf("workspaces %q", got)
	}
}

type workspaceChannel struct {
	testChannel
	seen *[]string
}

func (c *workspaceChannel) Send(call Call, msgs []Message) ([]Result, error) {
	*c.seen = append(*c.seen, call.Workspace)
	return nil, nil
}

// Each Register function sets the manifest's kind and ABI; RegisterChannel says whether the channel receives.
func TestRegister(t *testing.T) {
	defer func(saved *plugin) { registered = saved }(registered)
	tests := []struct {
		name         string
		register     func(Manifest)
		wantKind     Kind
		wantReceives bool
	}{
		{"channel", func(m Manifest) { RegisterChannel(m, &testChannel{}) }, KindChannel, false},
		{"receiving channel", func(m Manifest) { RegisterChannel(m, &receivingChannel{}) }, KindChannel, true},
		{"scorer", func(m Manifest) { RegisterScorer(m, &testScorer{}) }, KindScorer, false},
		{"connector", func(m Manifest) { RegisterConnector(m, &testConnector{}) }, KindConnector, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			registered = nil
			tt.register(Manifest{ID: "x", Version: "1.0.0", Kind: "wrong", ABI: 7, Receives: true})
			status, body := run(t, registered, EntryManifest, nil)
			var m map[string]any
			if status != statusOK || json.Unmarshal(body, &m) != nil {
				t.Fatalf("manifest: %d %s", status, body)
			}
			if m["kind"] != string(tt.wantKind) || m["abi"] != 1.0 || (m["receives"] == true) != tt.wantReceives {
				t.Fatalf("manifest %s", body)
			}
			if _, present := m["receives"]; present != tt.wantReceives {
				t.Fatalf("receives is omitted unless true: %s", body)
			}
			defer func() {
				if recover() == nil {
					t.Fatal("a second registration did not panic")
				}
			}()
			RegisterScorer(Manifest{}, &testScorer{})
		})
	}
}
