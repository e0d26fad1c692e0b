package main

import (
	"sort"
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
