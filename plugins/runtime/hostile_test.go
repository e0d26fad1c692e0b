package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/crosscast/crosscast/sdk/wire"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Entry points of testdata/hostile.
const (
	hostileOK          = 0
	hostileSpin        = 1
	hostileMemBomb     = 2
	hostilePanic       = 3
	hostileHugeLen     = 4
	hostilePtrOOB      = 5
	hostileLogFlood    = 6
	hostileBadStatus   = 7
	hostileEmpty       = 8
	hostileBadLogPtr   = 9
	hostileBigOutput   = 10
	hostileWrapPtr     = 11
	hostileSleep       = 12
	hostileBadHostPtr  = 13
	hostileHugeHostReq = 14
)

// hostileOptions are tight limits, so that every misbehaviour is met quickly.
func hostileOptions() Options {
	return Options{Timeout: 200 * time.Millisecond, MemoryLimit: 64 << 20, MaxOutput: 1 << 20}
}

// Each hostile guest is contained: its call fails with the right error, the instance is discarded, a healthy
// plugin in the same runtime answers at once, and the hostile plugin's next call gets a fresh instance.
func TestHostileGuestsAreContained(t *testing.T) {
	tests := []struct {
		name   string
		entry  uint32
		input  []byte
		want   error
		stderr string // expected in the logged stderr tail
		slow   bool   // needs more than 200ms to misbehave: growing to 64 MiB takes a Go guest ~1.5 s
	}{
		{name: "infinite loop", entry: hostileSpin, want: ErrTimeout},
		{name: "sleeps for an hour", entry: hostileSleep, want: ErrTimeout},
		{name: "memory bomb", entry: hostileMemBomb, want: ErrTrap, stderr: "out of memory", slow: true},
		{name: "go panic", entry: hostilePanic, want: ErrTrap, stderr: "hostile guest panics on purpose"},
		{name: "output length beyond memory and MaxOutput", entry: hostileHugeLen, want: ErrOutputTooLarge},
		{name: "real output over MaxOutput", entry: hostileBigOutput, want: ErrOutputTooLarge},
		{name: "output pointer out of bounds", entry: hostilePtrOOB, want: ErrProtocol},
		{name: "output pointer plus length wraps 4 GiB", entry: hostileWrapPtr, want: ErrProtocol},
		{name: "unknown status byte", entry: hostileBadStatus, want: ErrProtocol},
		{name: "empty output", entry: hostileEmpty, want: ErrProtocol},
		{name: "log with a pointer out of bounds", entry: hostileBadLogPtr, want: ErrTrap},
		{name: "capability request with a pointer out of bounds", entry: hostileBadHostPtr, want: ErrTrap},
		{name: "cc_alloc returns a pointer out of bounds", entry: hostileOK, input: make([]byte, 13), want: ErrProtocol},
		{name: "cc_alloc returns 0", entry: hostileOK, input: make([]byte, 14), want: ErrProtocol},
	}
	type setup struct {
		rec              *logRecorder
		hostile, healthy *Plugin
	}
	var setups [2]setup // fast: Timeout 200ms; slow: Timeout 30s
	for i := range setups {
		opts := hostileOptions()
		if i == 1 {
			opts.Timeout = 30 * time.Second
		}
		rt, rec := newTestRuntime(t, opts)
		setups[i] = setup{rec: rec, hostile: load(t, rt, "hostile"), healthy: load(t, rt, "echo")}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := setups[0]
			if tt.slow {
				s = setups[1]
			}
			hostile, healthy, rec := s.hostile, s.healthy, s.rec
			before := hostile.Stats()
			start := time.Now()
			out, err := hostile.Call(context.Background(), tt.entry, tt.input)
			took := time.Since(start)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %q, %v; want %v", out, err, tt.want)
			}
			mustContain(t, err, `plugin "hostile"`, fmt.Sprintf("entry %d", tt.entry))
			t.Logf("contained after %v: %v", took, err)
			if took > 2*time.Second && !tt.slow {
				t.Errorf("took %v to contain", took)
			}
			failed := hostile.Stats()
			if failed.Discarded != before.Discarded+1 || failed.Live != 0 {
				t.Errorf("stats %+v: the failed instance must be discarded", failed)
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if got, err := healthy.Call(ctx, echoEntry, []byte("still fine")); err != nil || string(got) != "still fine" {
				t.Fatalf("healthy plugin after the hostile call: %q, %v", got, err)
			}
			if got, err := hostile.Call(ctx, hostileOK, nil); err != nil || string(got) != "ok" {
				t.Fatalf("next call on the hostile plugin: %q, %v", got, err)
			}
			if st := hostile.Stats(); st.Created != failed.Created+1 || st.Live != 1 {
				t.Errorf("stats %+v: the next call must run on a fresh instance", st)
			}
			if tt.stderr != "" && !loggedStderr(rec, tt.stderr) {
				t.Errorf("no discarded instance logged a stderr tail containing %q", tt.stderr)
			}
		})
	}
	for _, s := range setups {
		if st := s.healthy.Stats(); st.Failures != 0 || st.Discarded != 0 || st.Created != 1 {
			t.Errorf("healthy plugin stats %+v: the hostile one must not have touched it", st)
		}
	}
}

// A capability request claiming more than the host reads is refused in the answer, not read and not a trap; take
// hands the answer over only at its exact length; and a plugin without grants is told it has none.
func TestCapabilityRequestsAreBounded(t *testing.T) {
	rt, _ := newTestRuntime(t, hostileOptions())
	p := load(t, rt, "hostile")
	out, err := p.Call(context.Background(), hostileHugeHostReq, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, _, err := wire.OpenAnswer(out)
	if err != nil || msg != "request too large for the kv capability" {
		t.Fatalf("answer %q (%q, %v)", out, msg, err)
	}
	if st := p.Stats(); st.Discarded != 0 {
		t.Fatalf("a refused request discarded the instance: %+v", st)
	}
}

func loggedStderr(rec *logRecorder, want string) bool {
	for _, r := range rec.records("discarding plugin instance") {
		if s, _ := r["stderr"].(string); strings.Contains(s, want) {
			return true
		}
	}
	return false
}

// A guest logging 100,000 lines in one call completes, a bounded number of lines reach the logger, and every
// dropped line is accounted for in the dropped counts that are logged.
func TestLogFloodIsRateLimited(t *testing.T) {
	rt, rec := newTestRuntime(t, Options{})
	p := load(t, rt, "hostile")
	start := time.Now()
	if _, err := p.Call(context.Background(), hostileLogFlood, nil); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	count := func() (delivered, dropped int) {
		for _, r := range rec.records("log") {
			if s, _ := r["line"].(string); strings.HasPrefix(s, "flood line ") {
				delivered++
			}
		}
		for _, r := range rec.records("guest log lines dropped by rate limit") {
			n, _ := r["dropped"].(float64)
			dropped += int(n)
		}
		return delivered, dropped
	}
	waitFor(t, 5*time.Second, "the dropped count to be logged", func() bool {
		delivered, dropped := count()
		return delivered+dropped == 100_000
	})
	delivered, dropped := count()
	reports := len(rec.records("guest log lines dropped by rate limit"))
	t.Logf("call took %v: %d lines delivered, %d dropped, in %d reports", took, delivered, dropped, reports)
	if limit := logBurst + int(took.Seconds()*logRatePerSec) + 1; delivered > limit {
		t.Errorf("%d lines reached the logger, over the bucket's %d", delivered, limit)
	}
	if reports > 1+int(time.Since(start)/dropReportGap) {
		t.Errorf("%d dropped-count reports in %v: more than one a second", reports, time.Since(start))
	}
}

// The server's GC keeps running while a guest spins, and the spinning call stops at its deadline: with
// WithCloseOnContextDone off, the first stop-the-world after the guest started spinning would freeze the process.
func TestSpinningGuestDoesNotStallGC(t *testing.T) {
	rt, _ := newTestRuntime(t, hostileOptions())
	p := load(t, rt, "hostile")
	var gcs atomic.Int64
	stop := make(chan struct{})
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for {
			select {
			case <-stop:
				return
			default:
				goruntime.GC()
				gcs.Add(1)
			}
		}
	}()
	defer func() { close(stop); <-gcDone }()

	const timeout, margin = 200 * time.Millisecond, 2 * time.Second
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i := range 3 {
		result := make(chan error, 1)
		start := time.Now()
		gcBefore := gcs.Load()
		go func() {
			_, err := p.Call(context.Background(), hostileSpin, nil)
			result <- err
		}()
		var err error
	poll:
		for {
			select {
			case err = <-result:
				break poll
			case <-tick.C:
				if time.Since(start) > timeout+margin {
					t.Fatalf("spin %d: still running %v after a %v deadline", i, time.Since(start), timeout)
				}
			}
		}
		took, ran := time.Since(start), gcs.Load()-gcBefore
		t.Logf("spin %d stopped after %v; %d GCs completed meanwhile", i, took, ran)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("spin %d: %v, want ErrTimeout", i, err)
		}
		if ran == 0 {
			t.Errorf("spin %d: no GC completed while the guest spun", i)
		}
	}
	if out, err := p.Call(context.Background(), hostileOK, nil); err != nil || !bytes.Equal(out, []byte("ok")) {
		t.Fatalf("after the spins: %q, %v", out, err)
	}
}
