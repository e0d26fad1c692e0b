package wire

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func sampleRequest() SendRequest {
	return SendRequest{NowUnixMilli: 1_790_000_000_000, Messages: []Message{
		{ID: "m1", IdempotencyKey: "c1:s1:k1:email", Workspace: "acme", ContactID: "k1", To: "ana@example.com",
			Fields:  PairsOf(map[string]string{"subject": "Hello Ana", "html": "<p>Hi</p>", "text": "Hi ✓"}),
			Headers: Pairs{{"List-Unsubscribe", "<https://x/u/1>"}}},
		{ID: "m2", To: "+33612345678", Fields: Pairs{{"body", ""}}},
		{},
	}}
}

func TestSendRoundTrip(t *testing.T) {
	q := sampleRequest()
	w := NewWriter(nil)
	q.Encode(w)
	got, err := DecodeSendRequest(w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, q) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, q)
	}
	p := SendResponse{Results: []Result{
		{ID: "m1", Status: StatusDelivered, ProviderID: "p-1"},
		{ID: "m2", Status: StatusRetry, Error: "421 try later", RetryAfterMillis: 30000},
		{ID: "m3", Status: StatusFailed, Error: "550 no such user"},
	}}
	w.Reset()
	p.Encode(w)
	gotp, err := DecodeSendResponse(w.Bytes())
	if err != nil || !reflect.DeepEqual(gotp, p) {
		t.Fatalf("response round trip: %+v %v", gotp, err)
	}
	// Units (SMS segments) ride after the results; a response without any is what plugins built before them send.
	withoutUnits := len(w.Bytes())
	p.Results[0].Units, p.Results[2].Units = 2, 1
	w.Reset()
	p.Encode(w)
	if gotp, err = DecodeSendResponse(w.Bytes()); err != nil || !reflect.DeepEqual(gotp, p) || len(w.Bytes()) != withoutUnits+4+3*4 {
		t.Fatalf("response with units: %+v %v (%d bytes)", gotp, err, len(w.Bytes()))
	}
	// A units list that does not match the results.
	bad := append(w.Bytes()[:withoutUnits:withoutUnits], 2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
	if _, err := DecodeSendResponse(bad); err == nil {
		t.Fatal("2 units for 3 results decoded")
	}
}

// Encoding is deterministic: maps are written in key order.
func TestEncodingIsDeterministic(t *testing.T) {
	var first []byte
	for i := 0; i < 20; i++ {
		w := NewWriter(nil)
		q := sampleRequest()
		q.Encode(w)
		if first == nil {
			first = w.Bytes()
		} else if string(first) != string(w.Bytes()) {
			t.Fatal("two encodings of the same request differ")
		}
	}
}

func TestPairs(t *testing.T) {
	ps := PairsOf(map[string]string{"text": "t", "html": "h", "subject": "s"})
	if ps[0].Key != "html" || ps.Get("subject") != "s" || ps.Get("nope") != "" {
		t.Fatalf("%+v", ps)
	}
	if _, ok := ps.Lookup("text"); !ok {
		t.Fatal("Lookup missed a key")
	}
	if m := ps.Map(); len(m) != 3 || m["html"] != "h" {
		t.Fatalf("Map: %v", m)
	}
	// Unsorted or duplicate keys are refused on decode: the encoding is canonical.
	for _, bad := range []Pairs{{{"b", ""}, {"a", ""}}, {{"a", "1"}, {"a", "2"}}} {
		w := NewWriter(nil)
		(&SendRequest{Messages: []Message{{Fields: bad}}}).Encode(w)
		if _, err := DecodeSendRequest(w.Bytes()); err == nil {
			t.Errorf("accepted pairs %+v", bad)
		}
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	w := NewWriter(nil)
	q := sampleRequest()
	q.Encode(w)
	full := w.Bytes()
	// Every truncation is an error, never a panic or a silently short request.
	for n := 0; n < len(full); n++ {
		if _, err := DecodeSendRequest(full[:n]); !errors.Is(err, ErrShort) {
			t.Fatalf("truncated at %d/%d: err %v", n, len(full), err)
		}
	}
	if _, err := DecodeSendRequest(append(append([]byte(nil), full...), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"huge count", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}},
		{"huge string", append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeSendRequest(tt.in); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// A result with an unknown status is refused: a plugin cannot invent outcomes.
	w.Reset()
	(&SendResponse{Results: []Result{{ID: "m1", Status: 9}}}).Encode(w)
	if _, err := DecodeSendResponse(w.Bytes()); err == nil {
		t.Fatal("unknown status accepted")
	}
}

func FuzzDecodeSendRequest(f *testing.F) {
	w := NewWriter(nil)
	q := sampleRequest()
	q.Encode(w)
	f.Add(w.Bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodeSendRequest(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to an input that decodes to the same request.
		w := NewWriter(nil)
		q.Encode(w)
		again, err := DecodeSendRequest(w.Bytes())
		if err != nil || !reflect.DeepEqual(again, q) {
			t.Fatalf("re-encoding changed the request: %v", err)
		}
	})
}

func FuzzDecodeSendResponse(f *testing.F) {
	w := NewWriter(nil)
	(&SendResponse{Results: []Result{{ID: "m1", Status: StatusAccepted, ProviderID: "x"}}}).Encode(w)
	f.Add(w.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeSendResponse(b) // must not panic or allocate without bound
	})
}

func BenchmarkSendRequestDecode(b *testing.B) {
	msgs := make([]Message, 100)
	for i := range msgs {
		msgs[i] = sampleRequest().Messages[0]
	}
	w := NewWriter(nil)
	(&SendRequest{Messages: msgs}).Encode(w)
	in := w.Bytes()
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		if _, err := DecodeSendRequest(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/item")
}

func TestHTTPRoundTrip(t *testing.T) {
	q := HTTPRequest{Method: "POST", URL: "https://api.example.com/v1/messages?x=1", Headers: Pairs{{"Authorization", "Bearer t"}, {"Content-Type", "application/json"}}, Body: []byte(`{"to":"+33"}`)}
	w := NewWriter(nil)
	q.Encode(w)
	got, err := DecodeHTTPRequest(w.Bytes())
	if err != nil || !reflect.DeepEqual(got, q) {
		t.Fatalf("request: %+v %v", got, err)
	}
	p := HTTPResponse{Status: 201, Headers: Pairs{{"Content-Type", "application/json"}}, Body: []byte(`{"sid":"SM1"}`)}
	w.Reset()
	EncodeAnswer(w, "", p.Encode)
	decode := func(b []byte) (HTTPResponse, error) {
		msg, r, err := OpenAnswer(b)
		if err != nil || msg != "" {
			return HTTPResponse{}, fmt.Errorf("envelope %q %v", msg, err)
		}
		return DecodeHTTPResponse(r)
	}
	if got, err := decode(w.Bytes()); err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("response: %+v %v", got, err)
	}
	for n := 0; n < len(w.Bytes()); n++ {
		if _, err := decode(w.Bytes()[:n]); err == nil {
			t.Fatalf("truncated response accepted at %d", n)
		}
	}
}
