package jobs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/jobs"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Debug})
}

type env struct {
	dir    string
	store  *store.Store
	runner *jobs.Runner
}

func newEnv(t *testing.T, opts jobs.Options) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), store.Options{Dir: dir, Fsync: false, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// Job records belong to a workspace that exists (the store refuses others).
	if _, err := workspaces.NewService(st, testLogger(t), nil).Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	opts.Dir = filepath.Join(dir, "jobs")
	r, err := jobs.NewRunner(context.Background(), st, opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return &env{dir: dir, store: st, runner: r}
}

// input makes an input file the way the HTTP layer does.
func (e *env) input(t *testing.T, content string) string {
	t.Helper()
	f, err := e.runner.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// waitFor polls the job until cond holds or the deadline passes.
func waitFor(t *testing.T, r *jobs.Runner, id string, cond func(jobs.Job) bool) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := r.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never reached the expected state: %+v", id, j)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func done(j jobs.Job) bool { return j.Status.Done() }

func TestJobSucceedsWithProgressAndRowErrors(t *testing.T) {
	e := newEnv(t, jobs.Options{})
	var sawInput string
	j, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test", Total: 5, Params: map[string]any{"format": "csv"}},
		e.input(t, "hello"), func(ctx context.Context, input string, p *jobs.Progress) error {
			data, err := os.ReadFile(input)
			if err != nil {
				return err
			}
			sawInput = string(data)
			p.Add(2, 2, 1)
			p.RowError(4, "E-mail", "email", "not an email")
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != jobs.StatusQueued || !jobs.ValidID(j.ID) || j.Total != 5 || j.CreatedAt.IsZero() {
		t.Fatalf("submitted job = %+v", j)
	}
	got := waitFor(t, e.runner, j.ID, done)
	if got.Status != jobs.StatusSucceeded || got.Processed != 5 || got.Created != 2 || got.Updated != 2 || got.Failed != 1 {
		t.Fatalf("finished job = %+v", got)
	}
	if got.ErrorCount != 1 || len(got.Errors) != 1 || got.Errors[0] != (jobs.RowError{Line: 4, Column: "E-mail", Field: "email", Message: "not an email"}) {
		t.Fatalf("errors = %+v (count %d)", got.Errors, got.ErrorCount)
	}
	if got.StartedAt.IsZero() || got.FinishedAt.IsZero() || !strings.Contains(got.Message, "2 created") {
		t.Fatalf("times or message missing: %+v", got)
	}
	if sawInput != "hello" {
		t.Fatalf("job read %q from its input", sawInput)
	}
	// The record in the store is the final one, and the input is gone.
	stored, err := e.store.GetJob(context.Background(), j.ID)
	if err != nil || stored.Status != jobs.StatusSucceeded || stored.Processed != 5 {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	if left := files(t, filepath.Join(e.dir, "jobs")); len(left) != 0 {
		t.Fatalf("inputs left behind: %v", left)
	}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestJobFailures(t *testing.T) {
	e := newEnv(t, jobs.Options{})
	for _, tt := range []struct {
		name string
		fn   jobs.Func
		want string
	}{
		{"error", func(context.Context, string, *jobs.Progress) error {
			return errors.New("workspace \"acme\" was deleted during the import")
		}, "was deleted during the import"},
		{"panic", func(context.Context, string, *jobs.Progress) error { panic("boom") }, "internal error"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, "x"), tt.fn)
			if err != nil {
				t.Fatal(err)
			}
			got := waitFor(t, e.runner, j.ID, done)
			if got.Status != jobs.StatusFailed || !strings.Contains(got.Message, tt.want) {
				t.Fatalf("job = %+v", got)
			}
			if strings.Contains(got.Message, "boom") {
				t.Fatalf("panic value leaked into the job: %s", got.Message)
			}
		})
	}
}

func TestRowErrorsAreCapped(t *testing.T) {
	e := newEnv(t, jobs.Options{})
	j, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, ""),
		func(_ context.Context, _ string, p *jobs.Progress) error {
			for i := range 1500 {
				p.RowError(int64(i+2), "", "", "bad")
			}
			p.Add(0, 0, 1500)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, e.runner, j.ID, done)
	if len(got.Errors) != jobs.MaxRowErrors || got.ErrorCount != 1500 || got.Errors[0].Line != 2 || got.Errors[999].Line != 1001 {
		t.Fatalf("kept %d errors (first line %d), count %d", len(got.Errors), got.Errors[0].Line, got.ErrorCount)
	}
}

// blocker is a job function that reports one row and then waits for its context or release.
func blocker(release <-chan struct{}) jobs.Func {
	return func(ctx context.Context, _ string, p *jobs.Progress) error {
		p.Add(1, 0, 0)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-release:
			return nil
		}
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, jobs.Options{Workers: 1})
	release := make(chan struct{})
	running, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, "a"), blocker(release))
	if err != nil {
		t.Fatal(err)
	}
	queued, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, "b"), blocker(release))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.runner, running.ID, func(j jobs.Job) bool { return j.Status == jobs.StatusRunning && j.Processed == 1 })

	// A queued job is cancelled at once and never runs.
	got, err := e.runner.Cancel(context.Background(), queued.ID)
	if err != nil || got.Status != jobs.StatusCancelled || got.Processed != 0 {
		t.Fatalf("cancel queued: %+v %v", got, err)
	}
	// A running one stops at its next look at its context.
	if _, err := e.runner.Cancel(context.Background(), running.ID); err != nil {
		t.Fatal(err)
	}
	got = waitFor(t, e.runner, running.ID, done)
	if got.Status != jobs.StatusCancelled || got.Processed != 1 || !strings.Contains(got.Message, "cancelled after 1 rows") {
		t.Fatalf("cancelled running job = %+v", got)
	}
	// Cancelling a finished job is a conflict; an unknown one is not found.
	if _, err := e.runner.Cancel(context.Background(), running.ID); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("cancel finished: %v", err)
	}
	if _, err := e.runner.Cancel(context.Background(), jobs.NewID(time.Now())); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
	if _, err := e.runner.Get(context.Background(), "../etc"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("get invalid id: %v", err)
	}
	if left := files(t, filepath.Join(e.dir, "jobs")); len(left) != 0 {
		t.Fatalf("inputs left behind: %v", left)
	}
	close(release)
}

func TestQueueIsBounded(t *testing.T) {
	e := newEnv(t, jobs.Options{Workers: 1, MaxQueued: 1})
	release := make(chan struct{})
	defer close(release)
	first, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, ""), blocker(release))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.runner, first.ID, func(j jobs.Job) bool { return j.Status == jobs.StatusRunning })
	if _, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, ""), blocker(release)); err != nil {
		t.Fatal(err)
	}
	in := e.input(t, "")
	if _, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, in, blocker(release)); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("third job: %v", err)
	}
	if _, err := os.Stat(in); !os.IsNotExist(err) {
		t.Fatalf("refused job's input kept: %v", err)
	}
}

// Progress reaches the store while the job runs, not only at its end.
func TestProgressIsSavedWhileRunning(t *testing.T) {
	e := newEnv(t, jobs.Options{SaveEvery: 10 * time.Millisecond})
	release := make(chan struct{})
	defer close(release)
	j, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test", Total: 9}, e.input(t, ""), blocker(release))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored, err := e.store.GetJob(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Status == jobs.StatusRunning && stored.Processed == 1 && stored.Total == 9 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored progress never showed the running row: %+v", stored)
		}
		time.Sleep(5 * time.Millisecond)
	}
	list, next, err := e.runner.List(context.Background(), "acme", "", 10)
	if err != nil || len(list) != 1 || next != "" || list[0].Processed != 1 {
		t.Fatalf("List = %+v %q %v", list, next, err)
	}
}

// Jobs a crash left queued or running are failed at the next start, and their inputs removed.
func TestRestartFailsUnfinishedJobs(t *testing.T) {
	dir := t.TempDir()
	jobsDir := filepath.Join(dir, "jobs")
	st, err := store.Open(context.Background(), store.Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := workspaces.NewService(st, testLogger(t), nil).Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	left := map[jobs.Status]string{}
	for i, s := range []jobs.Status{jobs.StatusRunning, jobs.StatusQueued, jobs.StatusSucceeded} {
		j := jobs.Job{ID: jobs.NewID(now.Add(time.Duration(i) * time.Millisecond)), Workspace: "acme", Kind: "contacts.import",
			Status: s, Total: 100, Processed: 40, CreatedAt: now}
		if err := st.PutJob(context.Background(), j); err != nil {
			t.Fatal(err)
		}
		left[s] = j.ID
	}
	if err := os.MkdirAll(jobsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{left[jobs.StatusRunning] + ".input", "upload-123.part", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(jobsDir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, err := jobs.NewRunner(context.Background(), st, jobs.Options{Dir: jobsDir}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	for _, s := range []jobs.Status{jobs.StatusRunning, jobs.StatusQueued} {
		j, err := r.Get(context.Background(), left[s])
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != jobs.StatusFailed || !strings.Contains(j.Message, "server restarted") || !strings.Contains(j.Message, "40 of 100") || j.FinishedAt.IsZero() {
			t.Fatalf("job left %s = %+v", s, j)
		}
	}
	if j, _ := r.Get(context.Background(), left[jobs.StatusSucceeded]); j.Status != jobs.StatusSucceeded {
		t.Fatalf("finished job changed: %+v", j)
	}
	if got := strings.Join(files(t, jobsDir), ","); got != "keep.txt" {
		t.Fatalf("jobs dir after restart: %s", got)
	}
}

func TestCloseFailsQueuedAndRunningJobs(t *testing.T) {
	e := newEnv(t, jobs.Options{Workers: 1})
	release := make(chan struct{})
	defer close(release)
	running, _ := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, ""), blocker(release))
	queued, _ := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, ""), blocker(release))
	waitFor(t, e.runner, running.ID, func(j jobs.Job) bool { return j.Status == jobs.StatusRunning })
	if err := e.runner.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{running.ID: "shut down during the job, after 1 rows", queued.ID: "shut down before the job started"} {
		j, err := e.store.GetJob(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != jobs.StatusFailed || !strings.Contains(j.Message, want) {
			t.Fatalf("after Close: %+v", j)
		}
	}
	if _, err := e.runner.Submit(context.Background(), jobs.Job{Workspace: "acme", Kind: "test"}, e.input(t, ""), blocker(release)); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("submit after Close: %v", err)
	}
}

func TestIDsSortByTime(t *testing.T) {
	a := jobs.NewID(time.UnixMilli(1_000))
	b := jobs.NewID(time.UnixMilli(2_000))
	if !(a < b) || !jobs.ValidID(a) || jobs.ValidID(a[:21]) || jobs.ValidID(strings.ToUpper(a)) {
		t.Fatalf("ids %s %s", a, b)
	}
}

// core/jobs imports only the standard library, go-hclog and core/errs.
func TestJobsImportsOnlyStdlibHclogAndErrs(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "github.com/crosscast/crosscast/core/jobs").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		if !strings.Contains(first, ".") {
			continue // standard library
		}
		if imp != "github.com/hashicorp/go-hclog" && imp != "github.com/crosscast/crosscast/core/errs" {
			t.Errorf("core/jobs imports %s", imp)
		}
	}
}

// leftoverStore holds one job left running by a previous process for a workspace deleted since; like core/store,
// it refuses to record jobs of a workspace that does not exist.
type leftoverStore struct{ job jobs.Job }

func (s leftoverStore) PutJob(context.Context, jobs.Job) error { return errs.ErrNotFound }
func (s leftoverStore) GetJob(context.Context, string) (jobs.Job, error) {
	return jobs.Job{}, errs.ErrNotFound
}
func (s leftoverStore) ListJobs(context.Context, string, string, int) ([]jobs.Job, error) {
	return []jobs.Job{s.job}, nil
}

// A job left unfinished whose workspace is gone must not keep the server from starting.
func TestRestartWithAJobOfADeletedWorkspace(t *testing.T) {
	st := leftoverStore{job: jobs.Job{ID: jobs.NewID(time.Now()), Workspace: "gone", Kind: "contacts.import", Status: jobs.StatusRunning}}
	r, err := jobs.NewRunner(context.Background(), st, jobs.Options{Dir: t.TempDir()}, testLogger(t))
	if err != nil {
		t.Fatalf("start refused: %v", err)
	}
	_ = r.Close(context.Background())
}
