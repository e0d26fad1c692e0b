package events

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestEncodeMatchesEncodingJSON: the hand-written encoder gives the same JSON document as json.Marshal for the stored
// form (contact id dropped), for tricky strings and random events. Byte for byte except inside the raw objects, which
// it copies where json.Marshal re-escapes <, > and & (the same JSON values).
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	tricky := []string{"", "plain", `quote " back \ slash`, "ctl \x00\x01\x1f\t\n\r", "<html>&amp;", "é ü 日本 🎉",
		"bad \xff\xfe utf8", "line\u2028sep\u2029", "\x7f del"}
	rng := rand.New(rand.NewPCG(3, 4))
	at := time.Date(2026, 11, 22, 10, 11, 12, 130000000, time.UTC)
	var cases []Event
	for i, s := range tricky {
		cases = append(cases, Event{MessageID: s, Type: Track, Name: s, UserID: s, AnonymousID: tricky[(i+1)%len(tricky)],
			Timestamp: at, ReceivedAt: at.Add(time.Second)})
	}
	for range 500 {
		pick := func() string { return tricky[rng.IntN(len(tricky))] }
		e := Event{MessageID: pick(), Type: []Type{Track, Page, Identify, Alias}[rng.IntN(4)], Name: pick(), UserID: pick(),
			AnonymousID: pick(), GroupID: pick(), PreviousID: pick(), ContactID: "01m81b5h805kjnnaeh604xke91",
			Timestamp: at.Add(time.Duration(rng.Int64N(1e15))), ReceivedAt: at}
		if rng.IntN(2) == 0 {
			e.Properties = json.RawMessage(`{"price":19.99,"tags":["a","b"],"nested":{"x":null}}`)
		}
		if rng.IntN(2) == 0 {
			e.Traits = json.RawMessage(`{"email":"a@b.co"}`)
		}
		if rng.IntN(2) == 0 {
			e.Context = json.RawMessage(`{"ip":"203.0.113.7","page":{"url":"https://x.example/?a=1&b=<2>"}}`)
		}
		if rng.IntN(2) == 0 {
			e.OriginalTimestamp, e.SentAt = at.Add(-time.Minute), at.Add(-time.Second)
		}
		cases = append(cases, e)
	}
	for i, e := range cases {
		got, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		e.ContactID = ""
		want, _ := json.Marshal(&e)
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("case %d: not JSON: %v\n%s", i, err, got)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
		if e.Properties == nil && e.Traits == nil && e.Context == nil && !bytes.Equal(got, want) {
			t.Fatalf("case %d: bytes differ:\n got %s\nwant %s", i, got, want)
		}
	}
	// A time JSON cannot write is refused, as json.Marshal refuses it: stored, it could never be read back.
	for _, bad := range []time.Time{time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := Encode(Event{MessageID: "x", Timestamp: bad, ReceivedAt: at}); err == nil {
			t.Errorf("time %v encoded", bad)
		}
	}
	// An invalid raw object is refused, as json.Marshal refuses it.
	if _, err := Encode(Event{MessageID: "x", Properties: json.RawMessage(`{"a":`)}); err == nil {
		t.Error("invalid properties encoded")
	}
}

func BenchmarkEncode(b *testing.B) {
	at := time.Now()
	e := Event{MessageID: "ajs-next-1f9e0a3b6c1d4e5f", Type: Track, Name: "Product Viewed", AnonymousID: "c0ffee-1234",
		Properties: json.RawMessage(`{"product_id":"sku-123","price":19.99,"currency":"EUR","category":"shoes"}`),
		Context:    json.RawMessage(`{"ip":"203.0.113.7","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/p/123","path":"/p/123"}}`),
		Timestamp:  at, SentAt: at, OriginalTimestamp: at, ReceivedAt: at}
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			_, _ = Encode(e)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(&e)
		}
	})
}
