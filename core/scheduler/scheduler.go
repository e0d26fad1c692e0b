// Package scheduler runs Crosscast's periodic jobs (segment re-evaluation as time passes, retention sweeps, ...)
// on cron specs, in UTC. It owns the cron library: github.com/robfig/cron/v3 is imported here and nowhere else, so
// that replacing it touches one package.
//
// A job never overlaps itself (a run due while the previous one is still going is skipped and logged), a panicking
// job is logged with its stack and does not stop the scheduler, and every run gets a context that is cancelled when
// the scheduler stops.
//
// It imports the standard library, go-hclog and robfig/cron only.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/robfig/cron/v3"
)

// parser reads standard five-field specs ("*/5 * * * *"), six-field specs with seconds first ("30 */5 * * * *"),
// and descriptors ("@hourly", "@every 90s").
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ErrStopped is returned by Every once Stop was called.
var ErrStopped = errors.New("scheduler stopped")

// Scheduler runs named jobs on cron specs. Construct it with New, add jobs with Every (before or after Start), and
// Stop it once.
type Scheduler struct {
	log  hclog.Logger
	cron *cron.Cron

	mu       sync.Mutex
	names    map[string]bool
	stopping chan struct{} // closed by Stop: cancels the contexts of running jobs
	stopOnce sync.Once
}

// New returns a stopped scheduler that logs through log.Named("scheduler").
func New(log hclog.Logger) *Scheduler {
	log = log.Named("scheduler")
	return &Scheduler{
		log:      log,
		cron:     cron.New(cron.WithParser(parser), cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{log})),
		names:    map[string]bool{},
		stopping: make(chan struct{}),
	}
}

// Every runs job on spec, a cron spec with optional seconds or a descriptor (see parser), in UTC. name identifies
// the job in logs and must be unique. Each run gets a context cancelled when the scheduler stops; a run due while
// the previous one is still going is skipped, and a panic is logged and recovered.
func (s *Scheduler) Every(name, spec string, job func(ctx context.Context)) error {
	if name == "" {
		return fmt.Errorf("scheduling a job: the name is empty")
	}
	if job == nil {
		return fmt.Errorf("scheduling job %q: the job is nil", name)
	}
	sched, err := parser.Parse(spec)
	if err != nil {
		return fmt.Errorf("scheduling job %q: invalid spec %q: %w", name, spec, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stopping:
		return fmt.Errorf("scheduling job %q: %w", name, ErrStopped)
	default:
	}
	if s.names[name] {
		return fmt.Errorf("scheduling job %q: a job of that name is already scheduled", name)
	}
	s.names[name] = true
	jl := cronLogger{s.log.With("job", name)}
	// Recover inside SkipIfStillRunning: cron's skip wrapper hands its token back only when the job returns, so a
	// panic crossing it would leave the job skipped forever (TestPanicIsLoggedAndSchedulerKeepsRunning).
	s.cron.Schedule(sched, cron.NewChain(cron.SkipIfStillRunning(jl), cron.Recover(jl)).Then(s.run(name, job)))
	s.log.Debug("job scheduled", "job", name, "spec", spec, "next", sched.Next(time.Now().UTC()))
	return nil
}

// run adapts job to cron: it gives each run a context that Stop cancels.
func (s *Scheduler) run(name string, job func(ctx context.Context)) cron.FuncJob {
	return func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		defer func() { close(done); cancel() }()
		go func() {
			select {
			case <-s.stopping:
				cancel()
			case <-done:
			}
		}()
		start := time.Now()
		job(ctx)
		s.log.Trace("job finished", "job", name, "duration", time.Since(start))
	}
}

// Start runs the scheduler in its own goroutine. It does nothing if the scheduler runs already or was stopped.
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stopping:
		s.log.Warn("start after stop ignored")
		return
	default:
	}
	s.cron.Start()
	s.log.Debug("started", "jobs", len(s.names))
}

// Stop stops starting runs, cancels the context of the running ones and waits for them to return, or for ctx. It
// may be called more than once; each call waits.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopOnce.Do(func() { close(s.stopping) })
	s.mu.Unlock()
	idle := s.cron.Stop()
	select {
	case <-idle.Done():
		s.log.Debug("stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping scheduler: waiting for running jobs: %w", ctx.Err())
	}
}

// cronLogger passes cron's own log lines to hclog: its routine chatter (wake, run) at trace, skipped runs at debug,
// errors (a job's panic, with its stack) at error.
type cronLogger struct{ log hclog.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		l.log.Debug("run skipped: the previous run is still going", kv...)
		return
	}
	l.log.Trace(msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	if msg == "panic" {
		msg = "job panicked"
	}
	l.log.Error(msg, append([]any{"error", err}, kv...)...)
}

// Next returns the first time after after that spec (as Every reads it) fires, reading wall-clock times in loc: what
// a durable schedule (a recurring campaign) stores as its next run, instead of keeping a job in memory.
func Next(spec string, loc *time.Location, after time.Time) (time.Time, error) {
	sched, err := parser.Parse(spec)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid cron spec %q: %w", spec, err)
	}
	next := sched.Next(after.In(loc))
	if next.IsZero() {
		return time.Time{}, fmt.Errorf("cron spec %q never fires", spec)
	}
	return next.UTC(), nil
}
