package wire

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// checkCodec checks one encoding on one value: it round-trips exactly, every truncation is refused as ErrShort
// (never a panic or a silently short value), and a trailing byte is refused.
func checkCodec[T any](t *testing.T, v T, encode func(*T, *Writer), decode func([]byte) (T, error)) {
	t.Helper()
	w := NewWriter(nil)
	encode(&v, w)
	full := w.Bytes()
	got, err := decode(full)
	if err != nil {
		t.Fatalf("decoding: %v", err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, v)
	}
	for n := 0; n < len(full); n++ {
		if _, err := decode(full[:n]); !errors.Is(err, ErrShort) {
			t.Fatalf("truncated at %d/%d: err %v", n, len(full), err)
		}
	}
	if _, err := decode(append(append([]byte(nil), full...), 0)); err == nil || !strings.Contains(err.Error(), "unexpected bytes") {
		t.Fatalf("trailing byte: err %v", err)
	}
}

// encodeBytes returns v's encoding.
func encodeBytes[T any](v T, encode func(*T, *Writer)) []byte {
	w := NewWriter(nil)
	encode(&v, w)
	return w.Bytes()
}

// wantRefused checks that decode refuses v's encoding with an error containing want.
func wantRefused[T any](t *testing.T, v T, encode func(*T, *Writer), decode func([]byte) (T, error), want string) {
	t.Helper()
	if _, err := decode(encodeBytes(v, encode)); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err %v, want one containing %q", err, want)
	}
}

func sampleHook() HookRequest {
	return HookRequest{NowUnixMilli: 1_790_000_000_000, Workspace: "acme", Method: "POST", Path: "/hooks/acme/sms",
		RawQuery: "sig=a%2Fb&x=1",
		Headers:  Pairs{{"Content-Type", "application/x-www-form-urlencoded"}, {"X-Twilio-Signature", "abc="}},
		Body:     []byte("MessageSid=SM1&From=%2B33612345678&Body=STOP"), RemoteAddr: "203.0.113.7:41234"}
}

func TestHookRequestCodec(t *testing.T) {
	tests := []struct {
		name string
		q    HookRequest
	}{
		{"full", sampleHook()},
		{"empty", HookRequest{}},
		{"negative time, binary body", HookRequest{NowUnixMilli: -1, Method: "PUT", Body: []byte{0, 0xff, '\n'}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCodec(t, tt.q, (*HookRequest).Encode, DecodeHookRequest)
		})
	}
	// The decoded body is a copy: the host may reuse its buffer.
	in := encodeBytes(sampleHook(), (*HookRequest).Encode)
	q, _ := DecodeHookRequest(in)
	for i := range in {
		in[i] = 'x'
	}
	if !reflect.DeepEqual(q, sampleHook()) {
		t.Fatalf("the decoded request aliases its input: %+v", q)
	}
	wantRefused(t, HookRequest{Headers: Pairs{{"X-B", ""}, {"X-A", ""}}}, (*HookRequest).Encode, DecodeHookRequest, "not strictly ascending")
}

func sampleReceive() ReceiveResponse {
	return ReceiveResponse{Status: 200, Headers: Pairs{{"Content-Type", "text/xml"}}, Body: []byte("<Response/>"),
		Events: []ChannelEvent{
			{Type: EventDelivered, MessageID: "m1", ProviderID: "SM1", Address: "+33612345678", AtUnixMilli: 1_790_000_000_123},
			{Type: EventBounced, ProviderID: "p-2", Address: "bob@example.com", Permanent: true, Detail: "550 5.1.1 no such user",
				Fields: Pairs{{"smtp_code", "550"}}},
			{Type: EventReplied, Address: "+33612345678", Detail: "STOP ✓"},
			{Type: EventUnsubscribed},
		}}
}

func TestReceiveResponseCodec(t *testing.T) {
	tests := []struct {
		name string
		p    ReceiveResponse
	}{
		{"events", sampleReceive()},
		{"no events", ReceiveResponse{Status: 204}},
		{"refusal", ReceiveResponse{Status: 401, Body: []byte("bad signature")}},
		{"highest status", ReceiveResponse{Status: 599}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCodec(t, tt.p, (*ReceiveResponse).Encode, DecodeReceiveResponse)
		})
	}
	for typ := EventType(1); typ <= 8; typ++ {
		checkCodec(t, ReceiveResponse{Status: 200, Events: []ChannelEvent{{Type: typ}}}, (*ReceiveResponse).Encode, DecodeReceiveResponse)
	}
}

func TestReceiveResponseRefusesBadValues(t *testing.T) {
	tests := []struct {
		name string
		p    ReceiveResponse
		want string
	}{
		{"status 0", ReceiveResponse{}, "reply status 0"},
		{"informational status", ReceiveResponse{Status: 101}, "reply status 101"},
		{"status 600", ReceiveResponse{Status: 600}, "reply status 600"},
		{"event type 0", ReceiveResponse{Status: 200, Events: []ChannelEvent{{}}}, "event 0 has unknown type 0"},
		{"event type 9", ReceiveResponse{Status: 200, Events: []ChannelEvent{{Type: EventDelivered}, {Type: 9}}}, "event 1 has unknown type 9"},
		{"unsorted fields", ReceiveResponse{Status: 200, Events: []ChannelEvent{{Type: EventBounced, Fields: Pairs{{"b", ""}, {"a", ""}}}}}, "not strictly ascending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRefused(t, tt.p, (*ReceiveResponse).Encode, DecodeReceiveResponse, tt.want)
		})
	}
	// A bool other than 0 or 1 is refused: Permanent is the byte after the event's time.
	in := encodeBytes(ReceiveResponse{Status: 200, Events: []ChannelEvent{{Type: EventBounced}}}, (*ReceiveResponse).Encode)
	in[4+4+4+4+1+4+4+4+8] = 2
	if _, err := DecodeReceiveResponse(in); err == nil || !strings.Contains(err.Error(), "invalid bool") {
		t.Fatalf("bool 2: err %v", err)
	}
	// A hostile count cannot make the decoder allocate: it is checked against the bytes left.
	huge := []byte{200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x0f, 0}
	if _, err := DecodeReceiveResponse(huge); !errors.Is(err, ErrShort) {
		t.Fatalf("huge count: err %v", err)
	}
}

func TestEventTypeNames(t *testing.T) {
	for typ := EventType(0); typ <= 9; typ++ {
		got, ok := EventTypeOf(typ.String())
		if ok != typ.Valid() || (ok && got != typ) {
			t.Errorf("EventTypeOf(%q) = %d, %v", typ.String(), got, ok)
		}
	}
	if EventComplained.String() != "complained" || EventType(42).String() != "event(42)" {
		t.Fatal("names")
	}
}

func FuzzDecodeHookRequest(f *testing.F) {
	f.Add(encodeBytes(sampleHook(), (*HookRequest).Encode))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeHookRequest(b)
		if err != nil {
			return
		}
		again, err := DecodeHookRequest(encodeBytes(q, (*HookRequest).Encode))
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("re-encoding changed the request: %v", err)
		}
	})
}

func FuzzDecodeReceiveResponse(f *testing.F) {
	f.Add(encodeBytes(sampleReceive(), (*ReceiveResponse).Encode))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeReceiveResponse(b) // must not panic or allocate without bound
	})
}
