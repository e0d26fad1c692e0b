package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/sdk"
)

// Outbox keys list oldest first (eviction takes the first page), and never collide for different messages captured at the same millisecond.
func TestMsgKeysSortOldestFirst(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	keys := []string{
		msgKey(sdk.Call{Now: t0}, "m1"),
		msgKey(sdk.Call{Now: t0.Add(time.Millisecond)}, "m2"),
		msgKey(sdk.Call{Now: t0.Add(time.Hour)}, "m3"),
		msgKey(sdk.Call{Now: t0.Add(time.Hour)}, "m4"),
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	want := keys
	for i := range want {
		if sorted[i] != want[i] {
			t.Fatalf("order %v, want %v", sorted, want)
		}
	}
}

func TestDedupeKeyPrefersIdempotencyKey(t *testing.T) {
	if got := dedupeKey(sdk.Message{ID: "m1", IdempotencyKey: "c1:k1"}); got != "id/c1:k1" {
		t.Fatal(got)
	}
	if got := dedupeKey(sdk.Message{ID: "m1"}); got != "id/m1" {
		t.Fatal(got)
	}
}

// The hand-written record encoding is exactly what encoding/json makes of a Record, for every kind of string.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	nasty := []string{"", "plain", `quo"te\back`, "new\nline\ttab\r", "ctl\x00\x1f\x7f", "<b>&amp;</b>", "é ü 日本 🎉",
		"bad utf8 \xff\xfe end", "line\u2028sep\u2029", strings.Repeat("x", 300)}
	for i, s := range nasty {
		m := sdk.Message{ID: "m" + s, IdempotencyKey: s, ContactID: s, To: s,
			Fields: sdk.Pairs{{Key: "a" + s, Value: s}, {Key: "b", Value: s}}, Headers: sdk.Pairs{{Key: "X-" + s, Value: s}}}
		at := "2026-11-22T10:00:00.000Z"
		want, err := json.Marshal(Record{ID: m.ID, IdempotencyKey: m.IdempotencyKey, ContactID: m.ContactID, To: m.To,
			Fields: m.Fields.Map(), Headers: m.Headers.Map(), CapturedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, m, at); string(got) != string(want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
