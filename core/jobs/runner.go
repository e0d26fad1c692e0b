package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/hashicorp/go-hclog"
)

// Func is the work of a job. input is the path of the file handed to Submit (the runner removes it once the job is
// over); p receives progress. A Func must return soon after ctx is cancelled (by Cancel or Close). Its error fails
// the job and becomes the job's message, so it must say what went wrong in words a user understands.
type Func func(ctx context.Context, input string, p *Progress) error

// Options tunes a Runner. Zero values take defaults.
type Options struct {
	// Dir holds the inputs of queued and running jobs, such as spooled uploads. It is created if needed, and the
	// files the runner puts there are removed at start-up, since the jobs they belonged to cannot resume.
	Dir string
	// Workers is how many jobs run at once (default 1: an import already keeps a core busy parsing and the store
	// writing; two imports would only share the same disk).
	Workers int
	// MaxQueued bounds the jobs waiting for a worker (default 16); Submit fails with errs.ErrUnavailable beyond.
	MaxQueued int
	// SaveEvery is how often a running job's progress is written to the store (default 1s).
	SaveEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Runner runs jobs in the background and keeps their records.
type Runner struct {
	store Store
	opts  Options
	log   hclog.Logger

	// base is the parent of every job's context; Close cancels it.
	base context.Context
	stop context.CancelFunc
	kick chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	live    map[string]*entry // queued and running jobs
	pending []*entry          // queued jobs in submission order
	closed  bool
}

// entry is a live job. Its fields are guarded by Runner.mu, except progress, which has its own lock.
type entry struct {
	job       Job
	input     string
	fn        Func
	progress  *Progress
	cancel    context.CancelFunc // set while running
	cancelled bool               // Cancel was called while running
	finishing bool               // its final record is being saved
}

const (
	inputSuffix   = ".input"
	partialSuffix = ".part"
)

// NewRunner returns a runner with its workers started. First it fails the jobs that a previous process left queued
// or running (their inputs are gone with the crash or the restart) and clears Dir of their files.
func NewRunner(ctx context.Context, store Store, opts Options, log hclog.Logger) (*Runner, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("jobs: Options.Dir is required")
	}
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = 16
	}
	if opts.SaveEvery <= 0 {
		opts.SaveEvery = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the jobs directory: %w", err)
	}
	r := &Runner{
		store: store, opts: opts, log: log.Named("jobs"),
		kick: make(chan struct{}, opts.Workers), live: map[string]*entry{},
	}
	if err := r.recoverLeftovers(ctx); err != nil {
		return nil, err
	}
	r.base, r.stop = context.WithCancel(context.Background())
	for range opts.Workers {
		r.wg.Add(1)
		go r.work()
	}
	return r, nil
}

func (r *Runner) now() time.Time { return r.opts.Now().UTC() }

// recoverLeftovers fails the jobs a previous process did not finish and removes their input files.
func (r *Runner) recoverLeftovers(ctx context.Context) error {
	all, err := r.store.ListJobs(ctx, "", "", 0)
	if err != nil {
		return fmt.Errorf("listing jobs: %w", err)
	}
	for _, j := range all {
		if j.Status.Done() {
			continue
		}
		j.Message = fmt.Sprintf("the server restarted before the job finished (%d of %d rows were processed and are kept); "+
			"run it again: imports upsert, so rows already imported are not duplicated", j.Processed, j.Total)
		j.Status = StatusFailed
		j.FinishedAt = r.now()
		if err := r.store.PutJob(ctx, j); errors.Is(err, errs.ErrNotFound) {
			// Its workspace is gone (the store refuses records of deleted workspaces): nothing to keep, and no
			// reason to refuse to start.
			r.log.Warn("job left unfinished by the previous run belongs to a deleted workspace", "job", j.ID)
			continue
		} else if err != nil {
			return fmt.Errorf("failing job %s left by the previous run: %w", j.ID, err)
		}
		r.log.Warn("job left unfinished by the previous run marked failed", "job", j.ID, "workspace", j.Workspace, "kind", j.Kind)
	}
	entries, err := os.ReadDir(r.opts.Dir)
	if err != nil {
		return fmt.Errorf("reading the jobs directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(name, inputSuffix) || strings.HasSuffix(name, partialSuffix)) {
			if err := os.Remove(filepath.Join(r.opts.Dir, name)); err != nil {
				r.log.Warn("removing a leftover job input", "file", name, "error", err)
			}
		}
	}
	return nil
}

// NewInput creates an empty file in Dir to receive a job's input (an upload), to hand to Submit. If the job is
// not submitted, the caller removes the file.
func (r *Runner) NewInput() (*os.File, error) {
	f, err := os.CreateTemp(r.opts.Dir, "upload-*"+partialSuffix)
	if err != nil {
		return nil, fmt.Errorf("creating a file for the upload: %w", err)
	}
	return f, nil
}

// Submit records j as queued and runs fn on input when a worker is free. It sets j's ID, Status and CreatedAt;
// Workspace, Kind, Params, CreatedBy and Total come from the caller. The runner owns input from then on (even when
// Submit fails) and removes it when the job is over. It fails with errs.ErrUnavailable when MaxQueued jobs already
// wait or the runner is closed.
func (r *Runner) Submit(ctx context.Context, j Job, input string, fn Func) (Job, error) {
	if err := r.admit(); err != nil {
		_ = os.Remove(input)
		return Job{}, err
	}
	now := r.now()
	j.ID = NewID(now)
	j.Status = StatusQueued
	j.CreatedAt = now
	j.StartedAt, j.FinishedAt = time.Time{}, time.Time{}
	j.Processed, j.Created, j.Updated, j.Failed, j.ErrorCount, j.Rate = 0, 0, 0, 0, 0, 0
	j.Errors = []RowError{}
	path := filepath.Join(r.opts.Dir, j.ID+inputSuffix)
	if err := os.Rename(input, path); err != nil {
		_ = os.Remove(input)
		return Job{}, fmt.Errorf("moving the job's input into place: %w", err)
	}
	if err := r.store.PutJob(ctx, j); err != nil {
		_ = os.Remove(path)
		return Job{}, fmt.Errorf("recording job: %w", err)
	}
	e := &entry{job: j, input: path, fn: fn, progress: &Progress{}}
	e.progress.SetTotal(j.Total)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.finish(e, StatusFailed, "the server shut down before the job started")
		return Job{}, fmt.Errorf("the server is shutting down: %w", errs.ErrUnavailable)
	}
	r.live[j.ID] = e
	r.pending = append(r.pending, e)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default: // every worker has a wake-up waiting already
	}
	r.log.Info("job queued", "job", j.ID, "workspace", j.Workspace, "kind", j.Kind, "total", j.Total)
	return j, nil
}

func (r *Runner) admit() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("the server is shutting down: %w", errs.ErrUnavailable)
	}
	if len(r.pending) >= r.opts.MaxQueued {
		return fmt.Errorf("%d jobs are already waiting; try again once one has finished: %w", len(r.pending), errs.ErrUnavailable)
	}
	return nil
}

// Get returns a job; a live one with its latest progress.
func (r *Runner) Get(ctx context.Context, id string) (Job, error) {
	if !ValidID(id) {
		return Job{}, fmt.Errorf("job %q: %w", id, errs.ErrNotFound)
	}
	r.mu.Lock()
	if e, ok := r.live[id]; ok {
		j := r.snapshot(e)
		r.mu.Unlock()
		return j, nil
	}
	r.mu.Unlock()
	j, err := r.store.GetJob(ctx, id)
	if err != nil {
		return Job{}, err
	}
	return j, nil
}

// List returns a page of the jobs of workspace ws ("" for all), newest first, below the cursor before, and the
// cursor of the next page ("" at the end).
func (r *Runner) List(ctx context.Context, ws, before string, limit int) ([]Job, string, error) {
	if limit <= 0 {
		limit = 50
	}
	out, err := r.store.ListJobs(ctx, ws, before, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	r.mu.Lock()
	for i := range out {
		if e, ok := r.live[out[i].ID]; ok {
			out[i] = r.snapshot(e)
		}
	}
	r.mu.Unlock()
	return out, next, nil
}

// Cancel stops a job: a queued one never starts, a running one stops at its next check of its context (an import
// after the chunk it is writing; the rows written before are kept). It returns the job as it is then: a running job
// still shows running until it has stopped. Cancelling a finished job fails with errs.ErrConflict.
func (r *Runner) Cancel(ctx context.Context, id string) (Job, error) {
	if !ValidID(id) {
		return Job{}, fmt.Errorf("job %q: %w", id, errs.ErrNotFound)
	}
	r.mu.Lock()
	e, ok := r.live[id]
	if ok && e.finishing {
		j := r.snapshot(e)
		r.mu.Unlock()
		return j, nil
	}
	if ok && e.job.Status == StatusQueued {
		r.unqueue(e)
		e.finishing = true
		r.mu.Unlock()
		return r.finish(e, StatusCancelled, "cancelled before it started"), nil
	}
	if ok {
		e.cancelled = true
		e.cancel()
		j := r.snapshot(e)
		j.Message = "cancelling"
		r.mu.Unlock()
		r.log.Info("job cancel requested", "job", id)
		return j, nil
	}
	r.mu.Unlock()
	j, err := r.store.GetJob(ctx, id)
	if err != nil {
		return Job{}, err
	}
	return j, fmt.Errorf("job %s is already %s: %w", id, j.Status, errs.ErrConflict)
}

// unqueue removes e from the pending list; the caller holds r.mu.
func (r *Runner) unqueue(e *entry) {
	for i, p := range r.pending {
		if p == e {
			r.pending = append(r.pending[:i:i], r.pending[i+1:]...)
			return
		}
	}
}

// Close stops taking jobs, fails the queued ones, cancels the running ones (they are recorded failed, with how far
// they got) and waits for them until ctx ends. The store must stay open until Close returns.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	queued := r.pending
	r.pending = nil
	for _, e := range queued {
		e.finishing = true
	}
	r.mu.Unlock()
	for _, e := range queued {
		r.finish(e, StatusFailed, "the server shut down before the job started; submit it again")
	}
	r.stop()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for running jobs to stop: %w", ctx.Err())
	}
}

// snapshot is the live job with its progress; the caller holds r.mu.
func (r *Runner) snapshot(e *entry) Job {
	j := e.job
	if j.Params != nil {
		params := make(map[string]any, len(j.Params))
		for k, v := range j.Params {
			params[k] = v
		}
		j.Params = params
	}
	e.progress.fill(&j, r.now())
	return j
}

func (r *Runner) work() {
	defer r.wg.Done()
	for {
		if e, ctx := r.take(); e != nil {
			r.run(ctx, e)
			continue
		}
		select {
		case <-r.kick:
		case <-r.base.Done():
			return
		}
	}
}

// take pops the next queued job, marks it running and returns it with its context, or returns nil.
func (r *Runner) take() (*entry, context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 || r.base.Err() != nil {
		return nil, nil
	}
	e := r.pending[0]
	r.pending = r.pending[1:]
	ctx, cancel := context.WithCancel(r.base)
	e.cancel = cancel
	e.job.Status = StatusRunning
	e.job.StartedAt = r.now()
	return e, ctx
}

func (r *Runner) run(ctx context.Context, e *entry) {
	defer e.cancel()
	r.mu.Lock()
	first := r.snapshot(e)
	r.mu.Unlock()
	r.save(first)
	r.log.Info("job started", "job", e.job.ID, "workspace", e.job.Workspace, "kind", e.job.Kind)

	stopSaver := make(chan struct{})
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		t := time.NewTicker(r.opts.SaveEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.mu.Lock()
				j := r.snapshot(e)
				r.mu.Unlock()
				r.save(j)
			case <-stopSaver:
				return
			}
		}
	}()
	err := r.call(ctx, e)
	close(stopSaver)
	<-saverDone

	r.mu.Lock()
	cancelled := e.cancelled
	r.mu.Unlock()
	n := e.progress.Processed()
	switch {
	case cancelled:
		r.finish(e, StatusCancelled, fmt.Sprintf("cancelled after %d rows; the rows processed before were kept", n))
	case err == nil:
		r.finish(e, StatusSucceeded, "")
	case r.base.Err() != nil:
		r.finish(e, StatusFailed, fmt.Sprintf("the server shut down during the job, after %d rows (they are kept); "+
			"run it again: imports upsert, so rows already imported are not duplicated", n))
	default:
		r.finish(e, StatusFailed, err.Error())
	}
}

// call runs the job's function, turning a panic into a failure so that one bad job cannot take the server down.
func (r *Runner) call(ctx context.Context, e *entry) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("job panicked", "job", e.job.ID, "panic", p, "stack", string(debug.Stack()))
			err = errors.New("internal error; the server log has the details under this job's id")
		}
	}()
	return e.fn(ctx, e.input, e.progress)
}

// finish records e's final status, removes its input and forgets it; it returns the final record. The final
// status shows (in Get) only once it is saved, so that whoever sees it also finds it in the store.
func (r *Runner) finish(e *entry, st Status, msg string) Job {
	_ = os.Remove(e.input)
	r.mu.Lock()
	e.finishing = true
	final := *e
	final.job.Status = st
	final.job.FinishedAt = r.now()
	j := r.snapshot(&final)
	r.mu.Unlock()
	if msg == "" && st == StatusSucceeded {
		msg = fmt.Sprintf("%d rows: %d created, %d updated, %d failed", j.Processed, j.Created, j.Updated, j.Failed)
	}
	j.Message = msg
	r.save(j)
	r.mu.Lock()
	e.job = j
	delete(r.live, e.job.ID)
	r.mu.Unlock()
	r.log.Info("job finished", "job", j.ID, "workspace", j.Workspace, "kind", j.Kind, "status", j.Status,
		"processed", j.Processed, "failed", j.Failed, "rate", j.Rate)
	return j
}

// save writes a job record, under its own deadline: progress and final states are saved even while the runner
// shuts down.
func (r *Runner) save(j Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.store.PutJob(ctx, j); err != nil {
		r.log.Error("saving job", "job", j.ID, "status", j.Status, "error", err)
	}
}
