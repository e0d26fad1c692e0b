package campaigns

import (
	"context"
	"sync"
	"time"
)

// limiter caps a channel's messages per second over a sliding second, shared by every campaign and workspace
// sending on that channel in this process. The second is ten buckets of 100 ms; a batch that does not fit waits
// for the oldest bucket to leave the window. It uses the real clock: a rate is about the provider's real second.
type limiter struct {
	mu      sync.Mutex
	buckets [10]struct {
		tick int64 // 100 ms ticks since the epoch
		n    int
	}
}

const limiterTick = 100 * time.Millisecond

// take waits until n more messages fit under rate in the last second, and counts them; n must not exceed rate.
func (l *limiter) take(ctx context.Context, rate, n int) error {
	for {
		wait := l.try(time.Now(), rate, n)
		if wait == 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// try counts n messages at now if they fit, and returns 0; otherwise how long to wait before trying again.
func (l *limiter) try(now time.Time, rate, n int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	tick := now.UnixNano() / int64(limiterTick)
	used := 0
	for _, b := range l.buckets {
		if b.tick > tick-int64(len(l.buckets)) {
			used += b.n
		}
	}
	if used+n > rate {
		next := time.Unix(0, (tick+1)*int64(limiterTick))
		return max(next.Sub(now), time.Millisecond)
	}
	b := &l.buckets[tick%int64(len(l.buckets))]
	if b.tick != tick {
		b.tick, b.n = tick, 0
	}
	b.n += n
	return 0
}

// limiters holds a limiter per channel name.
type limiters struct {
	mu sync.Mutex
	m  map[string]*limiter
}

func (ls *limiters) of(channel string) *limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*limiter{}
	}
	l := ls.m[channel]
	if l == nil {
		l = &limiter{}
		ls.m[channel] = l
	}
	return l
}
