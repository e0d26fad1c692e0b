package wire

import (
	"reflect"
	"testing"
)

func sampleTrackEvents() []TrackEvent {
	return []TrackEvent{
		{MessageID: "e1", Type: TrackTypeTrack, Event: "Order Completed", UserID: "u1", TimestampUnixMilli: 1_789_999_000_000,
			Properties: []byte(`{"total":42.5,"items":[{"sku":"A"}]}`), Context: []byte(`{"ip":"203.0.113.7","library":{"name":"x"}}`)},
		{MessageID: "e2", Type: TrackTypeIdentify, AnonymousID: "a-9", Traits: []byte(` {"email":"ana@example.com"}`)},
		{MessageID: "e3", Type: TrackTypePage, Event: "Pricing", UserID: "u1"},
		{MessageID: "e4", Type: TrackTypeScreen, Event: "Home", UserID: "u1"},
		{MessageID: "e5", Type: TrackTypeGroup, Event: "acme-inc", UserID: "u1", Traits: []byte(`{}`)},
		{MessageID: "e6", Type: TrackTypeAlias, Event: "a-9", UserID: "u1", TimestampUnixMilli: -5},
	}
}

func TestOutboundRequestCodec(t *testing.T) {
	tests := []struct {
		name string
		q    OutboundRequest
	}{
		{"events", OutboundRequest{NowUnixMilli: 1_790_000_000_000, Workspace: "acme", Events: sampleTrackEvents()}},
		{"empty", OutboundRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCodec(t, tt.q, (*OutboundRequest).Encode, DecodeOutboundRequest)
		})
	}
	// The JSON fields are slices of a private copy, capped so an append cannot overwrite what follows.
	q := OutboundRequest{Events: sampleTrackEvents()[:2]}
	in := encodeBytes(q, (*OutboundRequest).Encode)
	got, _ := DecodeOutboundRequest(in)
	for i := range in {
		in[i] = 0
	}
	_ = append(got.Events[0].Properties, "XXXXXXXXXXXXXXXXXXXX"...)
	if !reflect.DeepEqual(got, q) {
		t.Fatalf("got %+v, want %+v", got, q)
	}
}

func TestInboundResponseCodec(t *testing.T) {
	tests := []struct {
		name string
		p    InboundResponse
	}{
		{"events", InboundResponse{Status: 200, Headers: Pairs{{"Content-Type", "application/json"}}, Body: []byte(`{"accepted":6}`), Events: sampleTrackEvents()}},
		{"refusal", InboundResponse{Status: 401}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkCodec(t, tt.p, (*InboundResponse).Encode, DecodeInboundResponse)
		})
	}
}

func TestTrackEventsRefuseBadValues(t *testing.T) {
	ok := TrackEvent{MessageID: "e", Type: TrackTypeTrack}
	tests := []struct {
		name    string
		e       TrackEvent
		want    string
		inbound bool // refused by DecodeInboundResponse only: the guest does not check JSON
	}{
		{"no type", TrackEvent{MessageID: "e"}, `event 1 has unknown type ""`, false},
		{"unknown type", TrackEvent{Type: "Track"}, `event 1 has unknown type "Track"`, false},
		{"properties not JSON", TrackEvent{Type: TrackTypeTrack, Properties: []byte(`{"a":`)}, "event 1: properties are not a JSON object", true},
		{"traits an array", TrackEvent{Type: TrackTypeIdentify, Traits: []byte(`[1]`)}, "event 1: traits are not a JSON object", true},
		{"context a string", TrackEvent{Type: TrackTypePage, Context: []byte(`"x"`)}, "event 1: context is not a JSON object", true},
		{"context two objects", TrackEvent{Type: TrackTypePage, Context: []byte(`{}{}`)}, "event 1: context is not a JSON object", true},
		{"context blank", TrackEvent{Type: TrackTypePage, Context: []byte(` `)}, "event 1: context is not a JSON object", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := []TrackEvent{ok, tt.e}
			wantRefused(t, InboundResponse{Status: 200, Events: events}, (*InboundResponse).Encode, DecodeInboundResponse, tt.want)
			q := OutboundRequest{Events: events}
			if tt.inbound {
				checkCodec(t, q, (*OutboundRequest).Encode, DecodeOutboundRequest)
			} else {
				wantRefused(t, q, (*OutboundRequest).Encode, DecodeOutboundRequest, tt.want)
			}
		})
	}
	for _, status := range []uint32{0, 199, 600} {
		wantRefused(t, InboundResponse{Status: status}, (*InboundResponse).Encode, DecodeInboundResponse, "is not an HTTP status")
	}
	if _, err := DecodeOutboundRequest([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x0f, 0}); err == nil {
		t.Fatal("huge event count accepted")
	}
}

func TestOutboundResponseCodec(t *testing.T) {
	p := OutboundResponse{Results: []OutboundResult{
		{MessageID: "e1", Status: OutboundDone},
		{MessageID: "e2", Status: OutboundRetry, RetryAfterMillis: 60_000, Error: "429 rate limited"},
		{MessageID: "e3", Status: OutboundDeadLetter, Error: "400 invalid event"},
	}}
	checkCodec(t, p, (*OutboundResponse).Encode, DecodeOutboundResponse)
	checkCodec(t, OutboundResponse{}, (*OutboundResponse).Encode, DecodeOutboundResponse)
	for _, status := range []OutboundStatus{0, 4, 255} {
		bad := OutboundResponse{Results: []OutboundResult{{MessageID: "e1", Status: OutboundDone}, {MessageID: "e2", Status: status}}}
		wantRefused(t, bad, (*OutboundResponse).Encode, DecodeOutboundResponse, "result 1 has unknown status")
	}
	if OutboundDeadLetter.String() != "dead_letter" || OutboundStatus(9).String() != "outbound-status(9)" {
		t.Fatal("names")
	}
}

func FuzzDecodeOutboundRequest(f *testing.F) {
	f.Add(encodeBytes(OutboundRequest{Workspace: "acme", Events: sampleTrackEvents()}, (*OutboundRequest).Encode))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeOutboundRequest(b)
		if err != nil {
			return
		}
		again, err := DecodeOutboundRequest(encodeBytes(q, (*OutboundRequest).Encode))
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("re-encoding changed the request: %v", err)
		}
	})
}

func FuzzDecodeInboundResponse(f *testing.F) {
	f.Add(encodeBytes(InboundResponse{Status: 200, Events: sampleTrackEvents()}, (*InboundResponse).Encode))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeInboundResponse(b) // must not panic or allocate without bound
	})
}
