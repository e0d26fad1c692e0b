package campaigns

import (
	"testing"
	"time"
)

func TestLimiterSlidingSecond(t *testing.T) {
	var l limiter
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, step := range []struct {
		ms, n int
		fits  bool
	}{
		{0, 6, true},
		{50, 4, true},    // 10 in the second
		{99, 1, false},   // an 11th: wait
		{500, 1, false},  // still inside the second that began at 0
		{1000, 6, true},  // the bucket of 0-99 ms left the window
		{1050, 5, false}, // 6 + 5 > 10
		{1999, 4, true},  // buckets 1000-1099 (6) + 1900-1999 (4)
		{2100, 4, true},  // the 1000-1099 bucket left
	} {
		wait := l.try(at(step.ms), 10, step.n)
		if (wait == 0) != step.fits {
			t.Fatalf("at %d ms, %d more: wait %s, want fits=%v", step.ms, step.n, wait, step.fits)
		}
		if wait > limiterTick {
			t.Fatalf("at %d ms: asked to wait %s, more than a tick", step.ms, wait)
		}
	}
}
