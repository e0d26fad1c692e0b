package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/jobs"
)

func TestJobsPutGetList(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := context.Background()
	mustCreateWorkspaces(t, s, "acme", "globex")
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i, ws := range []string{"acme", "globex", "acme", "acme"} {
		j := jobs.Job{
			ID: jobs.NewID(base.Add(time.Duration(i) * time.Second)), Workspace: ws, Kind: "contacts.import",
			Status: jobs.StatusSucceeded, Total: int64(10 * i), Processed: int64(10 * i),
			Errors:    []jobs.RowError{{Line: 3, Column: "E-mail", Field: "email", Message: "not an email"}},
			CreatedAt: base,
		}
		if err := s.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	got, err := s.GetJob(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if got.Workspace != "globex" || got.Total != 10 || len(got.Errors) != 1 || got.Errors[0].Column != "E-mail" {
		t.Fatalf("GetJob = %+v", got)
	}
	if _, err := s.GetJob(ctx, "0000000000000000000000"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}

	listIDs := func(ws, before string, limit int) string {
		t.Helper()
		js, err := s.ListJobs(ctx, ws, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range js {
			for i, id := range ids {
				if id == j.ID {
					out = append(out, string(rune('0'+i)))
				}
			}
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		name, ws, before string
		limit            int
		want             string
	}{
		{"all newest first", "", "", 0, "3,2,1,0"},
		{"one workspace", "acme", "", 0, "3,2,0"},
		{"limit", "acme", "", 2, "3,2"},
		{"after a cursor", "acme", ids[2], 0, "0"},
		{"cursor between", "", ids[2], 1, "1"},
		{"cursor past the newest", "", "ffffffffffffffffffffff", 0, "3,2,1,0"},
		{"cursor before the oldest", "", "0", 0, ""},
		{"unknown workspace", "nope", "", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := listIDs(tt.ws, tt.before, tt.limit); got != tt.want {
				t.Fatalf("ListJobs(%q, %q, %d) = %s, want %s", tt.ws, tt.before, tt.limit, got, tt.want)
			}
		})
	}

	// Records survive a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir)
	if got, err := s2.GetJob(ctx, ids[3]); err != nil || got.Total != 30 {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
}

func TestPutJobNeedsAnID(t *testing.T) {
	s := openTest(t, t.TempDir())
	var v *errs.ValidationError
	if err := s.PutJob(context.Background(), jobs.Job{}); !errors.As(err, &v) {
		t.Fatalf("PutJob without id: %v", err)
	}
}

// Deleting a workspace removes its job records (they name its data) and leaves other workspaces' jobs alone.
func TestDeleteWorkspaceRemovesItsJobs(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	mustCreateWorkspaces(t, s, "acme", "globex")
	for i, ws := range []string{"acme", "globex", "acme"} {
		if err := s.PutJob(ctx, jobs.Job{ID: fmt.Sprintf("job-%d", i), Workspace: ws, Kind: "contacts.import"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteWorkspace(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	// A job still running saves its progress: not recorded again for a workspace that is gone.
	if err := s.PutJob(ctx, jobs.Job{ID: "job-0", Workspace: "acme", Kind: "contacts.import"}); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("job of a deleted workspace recorded: %v", err)
	}
	left, err := s.ListJobs(ctx, "", "", 0)
	if err != nil || len(left) != 1 || left[0].Workspace != "globex" {
		t.Fatalf("jobs left: %+v %v", left, err)
	}
}
