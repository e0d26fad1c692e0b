package scheduler

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// syncBuffer is a log sink that tests read while jobs write to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTest returns a scheduler logging to t and to the returned buffer, stopped when the test ends.
func newTest(t *testing.T) (*Scheduler, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: io.MultiWriter(t.Output(), logs), Level: hclog.Debug})
	s := New(log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s, logs
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustEvery(t *testing.T, s *Scheduler, name, spec string, job func(context.Context)) {
	t.Helper()
	if err := s.Every(name, spec, job); err != nil {
		t.Fatal(err)
	}
}

func TestEverySpecs(t *testing.T) {
	nop := func(context.Context) {}
	for _, tc := range []struct {
		name, job, spec string
		fn              func(context.Context)
		wantErr         string // "" for success
	}{
		{"five fields", "a", "*/5 * * * *", nop, ""},
		{"six fields, seconds first", "a", "30 */5 * * * *", nop, ""},
		{"descriptor", "a", "@hourly", nop, ""},
		{"every", "a", "@every 1m30s", nop, ""},
		{"empty spec", "sweep", "", nop, `job "sweep": invalid spec ""`},
		{"too few fields", "sweep", "* * *", nop, `job "sweep": invalid spec "* * *"`},
		{"seconds out of range", "sweep", "61 * * * * *", nop, `job "sweep": invalid spec "61 * * * * *"`},
		{"bad duration", "sweep", "@every soon", nop, `job "sweep": invalid spec "@every soon"`},
		{"unknown descriptor", "sweep", "@fortnightly", nop, `job "sweep": invalid spec "@fortnightly"`},
		{"no name", "", "@hourly", nop, "name is empty"},
		{"nil job", "sweep", "@hourly", nil, `job "sweep": the job is nil`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newTest(t)
			err := s.Every(tc.job, tc.spec, tc.fn)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Every(%q): %v", tc.spec, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Every(%q) = %v, want an error containing %q", tc.spec, err, tc.wantErr)
			}
		})
	}
}

func TestEveryRefusesDuplicatesAndJobsAfterStop(t *testing.T) {
	s, _ := newTest(t)
	nop := func(context.Context) {}
	mustEvery(t, s, "sweep", "@hourly", nop)
	if err := s.Every("sweep", "@daily", nop); err == nil || !strings.Contains(err.Error(), `"sweep": a job of that name`) {
		t.Errorf("duplicate name: %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Every("late", "@hourly", nop); !errors.Is(err, ErrStopped) {
		t.Errorf("Every after Stop: %v, want ErrStopped", err)
	}
}

func TestJobRuns(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t)
	var runs atomic.Int32
	var ctxOK atomic.Bool
	mustEvery(t, s, "tick", "@every 1s", func(ctx context.Context) {
		ctxOK.Store(ctx != nil && ctx.Err() == nil)
		runs.Add(1)
	})
	s.Start()
	eventually(t, 5*time.Second, "the job never ran", func() bool { return runs.Load() >= 1 })
	if !ctxOK.Load() {
		t.Error("the job got a nil or cancelled context")
	}
}

func TestPanicIsLoggedAndSchedulerKeepsRunning(t *testing.T) {
	t.Parallel()
	s, logs := newTest(t)
	var panics, others atomic.Int32
	mustEvery(t, s, "boom", "@every 1s", func(context.Context) {
		panics.Add(1)
		panic("kaboom")
	})
	mustEvery(t, s, "calm", "@every 1s", func(context.Context) { others.Add(1) })
	s.Start()
	eventually(t, 8*time.Second, "the panicking job did not run again", func() bool { return panics.Load() >= 2 })
	eventually(t, 5*time.Second, "the other job stopped running", func() bool { return others.Load() >= 2 })
	out := logs.String()
	for _, want := range []string{"job panicked", "job=boom", "kaboom", "stack="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestStopCancelsAndWaitsForRunningJob(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t)
	started := make(chan struct{})
	var once sync.Once
	var finished atomic.Bool
	var jobErr atomic.Value
	mustEvery(t, s, "slow", "@every 1s", func(ctx context.Context) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		jobErr.Store(ctx.Err())
		time.Sleep(50 * time.Millisecond) // cleanup work after cancellation, which Stop must wait for
		finished.Store(true)
	})
	s.Start()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the job never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !finished.Load() {
		t.Error("Stop returned before the running job did")
	}
	if err, _ := jobErr.Load().(error); !errors.Is(err, context.Canceled) {
		t.Errorf("the job's context ended with %v, want context.Canceled", err)
	}
}

func TestStopGivesUpAtItsDeadline(t *testing.T) {
	t.Parallel()
	s, _ := newTest(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	mustEvery(t, s, "stubborn", "@every 1s", func(context.Context) {
		once.Do(func() { close(started) })
		<-release // ignores its context
	})
	s.Start()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the job never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop with a job that ignores its context: %v, want context.DeadlineExceeded", err)
	}
	close(release) // the cleanup's Stop then returns
}

func TestSlowJobDoesNotOverlapItself(t *testing.T) {
	t.Parallel()
	s, logs := newTest(t)
	var running, maxRunning, runs atomic.Int32
	release := make(chan struct{})
	mustEvery(t, s, "slow", "@every 1s", func(ctx context.Context) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		if runs.Add(1) == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
	})
	s.Start()
	// The first run holds on until a later one was due and skipped.
	eventually(t, 8*time.Second, "no run was skipped", func() bool {
		return strings.Contains(logs.String(), "run skipped") && strings.Contains(logs.String(), "job=slow")
	})
	close(release)
	eventually(t, 5*time.Second, "the job did not run again after the slow run", func() bool { return runs.Load() >= 2 })
	if m := maxRunning.Load(); m != 1 {
		t.Errorf("%d runs of the job overlapped", m)
	}
}

func TestNext(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	after := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	for _, tt := range []struct {
		spec string
		loc  *time.Location
		want time.Time
		err  string
	}{
		{"0 9 * * *", time.UTC, time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), ""},
		{"0 9 * * *", paris, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), ""}, // 09:00 in Paris (UTC+1)
		{"@every 2h", time.UTC, after.Add(2 * time.Hour), ""},
		{"*/15 * * * *", time.UTC, time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC), ""},
		{"0 0 30 2 *", time.UTC, time.Time{}, "never fires"},
		{"61 * * * *", time.UTC, time.Time{}, "invalid cron spec"},
		{"every day", time.UTC, time.Time{}, "invalid cron spec"},
	} {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := Next(tt.spec, tt.loc, after)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
