package workspaces_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Debug})
}

// clock is a test clock that advances one second on every reading.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

// env is a workspaces service on a real store in a temporary data dir.
type env struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	store *store.Store
	svc   *workspaces.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(t.Context(), store.Options{Dir: dir, LockTimeout: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	c := &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	return &env{t: t, ctx: t.Context(), dir: dir, store: st, svc: workspaces.NewService(st, testLogger(t), c.Now)}
}

func (e *env) create(in workspaces.CreateInput) workspaces.Workspace {
	e.t.Helper()
	w, err := e.svc.Create(e.ctx, in)
	if err != nil {
		e.t.Fatalf("Create(%+v): %v", in, err)
	}
	return w
}

// stored returns the stored workspace, or ok false when there is none.
func (e *env) stored(id string) (workspaces.Workspace, bool) {
	e.t.Helper()
	w, err := e.store.GetWorkspace(e.ctx, id)
	if errors.Is(err, errs.ErrNotFound) {
		return workspaces.Workspace{}, false
	}
	if err != nil {
		e.t.Fatalf("GetWorkspace(%q): %v", id, err)
	}
	return w, true
}

func (e *env) mustStored(id string) workspaces.Workspace {
	e.t.Helper()
	w, ok := e.stored(id)
	if !ok {
		e.t.Fatalf("workspace %q does not exist", id)
	}
	return w
}

// keyOwner returns the workspace a write key resolves to, or "" when it resolves to none.
func (e *env) keyOwner(key string) string {
	e.t.Helper()
	id, err := e.store.WorkspaceByWriteKey(e.ctx, key)
	if errors.Is(err, errs.ErrNotFound) {
		return ""
	}
	if err != nil {
		e.t.Fatalf("WorkspaceByWriteKey: %v", err)
	}
	return id
}

func (e *env) allIDs() []string {
	e.t.Helper()
	all, err := e.store.ListWorkspaces(e.ctx, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, len(all))
	for i, w := range all {
		out[i] = w.ID
	}
	return out
}

func wantValidation(t *testing.T, err error, fields ...string) {
	t.Helper()
	var v *errs.ValidationError
	if !errors.As(err, &v) {
		t.Fatalf("err = %v (%T), want *errs.ValidationError on %v", err, err, fields)
	}
	var got []string
	for _, f := range v.Fields {
		if f.Message == "" {
			t.Errorf("field %q has an empty message", f.Field)
		}
		got = append(got, f.Field)
	}
	slices.Sort(got)
	want := slices.Clone(fields)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("validation error names fields %v, want %v (%v)", got, want, err)
	}
}

func sameWorkspace(a, b workspaces.Workspace) bool {
	return a.ID == b.ID && a.Name == b.Name && a.WriteKey == b.WriteKey && a.Managed == b.Managed &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"0", true},
		{"acme", true},
		{"acme-2", true},
		{"a-b-c", true},
		{"a--b", true},
		{"123", true},
		{strings.Repeat("a", 48), true},
		{"a" + strings.Repeat("-", 46) + "b", true},
		{"", false},
		{"Acme", false},
		{"ACME", false},
		{"ac me", false},
		{" acme", false},
		{"acme ", false},
		{"-acme", false},
		{"acme-", false},
		{"-", false},
		{"a_b", false},
		{"a.b", false},
		{"a/b", false},
		{"../x", false},
		{"..", false},
		{"acme\n", false},
		{"café", false},
		{strings.Repeat("a", 49), false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := workspaces.ValidateID(tt.id)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
		})
	}
}

func TestValidateWriteKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"16 chars", strings.Repeat("k", 16), true},
		{"128 chars", strings.Repeat("K", 128), true},
		{"all allowed characters", "Az09_-Az09_-Az09_-", true},
		{"generated", workspaces.NewWriteKey(), true},
		{"empty", "", false},
		{"15 chars", strings.Repeat("k", 15), false},
		{"129 chars", strings.Repeat("k", 129), false},
		{"space", "wk_0123456789 abcdef", false},
		{"bang", "wk_0123456789!abcdef", false},
		{"slash", "wk_0123456789/abcdef", false},
		{"dot", "wk_0123456789.abcdef", false},
		{"non-ASCII letter", "wk_0123456789éabcdef", false},
		{"trailing newline", "wk_0123456789abcdef\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := workspaces.ValidateWriteKey(tt.key)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateWriteKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
			}
		})
	}
}

func TestNewWriteKeyUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		k := workspaces.NewWriteKey()
		if err := workspaces.ValidateWriteKey(k); err != nil {
			t.Fatalf("NewWriteKey() = %q: %v", k, err)
		}
		if !strings.HasPrefix(k, "wk_") || len(k) != 3+26 {
			t.Fatalf("NewWriteKey() = %q, want wk_ and 26 characters", k)
		}
		if seen[k] {
			t.Fatalf("NewWriteKey repeated %q", k)
		}
		seen[k] = true
	}
}

func TestCreate(t *testing.T) {
	const key = "wk_given_0123456789"
	tests := []struct {
		name     string
		in       workspaces.CreateInput
		wantName string
		wantKey  string // "" means generated
	}{
		{"name defaults to id", workspaces.CreateInput{ID: "acme"}, "acme", ""},
		{"blank name defaults to id", workspaces.CreateInput{ID: "acme", Name: "   "}, "acme", ""},
		{"name is trimmed", workspaces.CreateInput{ID: "acme", Name: "  Acme Inc.  "}, "Acme Inc.", ""},
		{"given write key", workspaces.CreateInput{ID: "acme", Name: "Acme", WriteKey: key}, "Acme", key},
		{"48 character id", workspaces.CreateInput{ID: strings.Repeat("x", 48)}, strings.Repeat("x", 48), ""},
		{"200 character name", workspaces.CreateInput{ID: "acme", Name: strings.Repeat("n", 200)}, strings.Repeat("n", 200), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.create(tt.in)
			if w.ID != tt.in.ID || w.Name != tt.wantName || w.Managed {
				t.Errorf("created %+v, want id %q name %q unmanaged", w, tt.in.ID, tt.wantName)
			}
			if tt.wantKey != "" && w.WriteKey != tt.wantKey {
				t.Errorf("write key = %q, want %q", w.WriteKey, tt.wantKey)
			}
			if tt.wantKey == "" && !strings.HasPrefix(w.WriteKey, "wk_") {
				t.Errorf("generated write key %q lacks the wk_ prefix", w.WriteKey)
			}
			if err := workspaces.ValidateWriteKey(w.WriteKey); err != nil {
				t.Errorf("write key %q: %v", w.WriteKey, err)
			}
			if w.CreatedAt.IsZero() || !w.CreatedAt.Equal(w.UpdatedAt) || w.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt %v UpdatedAt %v, want equal, set, UTC", w.CreatedAt, w.UpdatedAt)
			}
			if got := e.mustStored(w.ID); !sameWorkspace(got, w) {
				t.Errorf("stored %+v, returned %+v", got, w)
			}
			if got := e.keyOwner(w.WriteKey); got != w.ID {
				t.Errorf("write key resolves to %q, want %q", got, w.ID)
			}
			if _, err := e.store.Workspace(w.ID); err != nil {
				t.Errorf("workspace file not open: %v", err)
			}
			if _, err := os.Stat(filepath.Join(e.dir, "workspaces", w.ID+".db")); err != nil {
				t.Errorf("workspace file: %v", err)
			}
		})
	}
}

func TestCreateGeneratedKeysUnique(t *testing.T) {
	e := newEnv(t)
	keys := map[string]string{}
	for i := range 40 {
		id := "ws-" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
		w := e.create(workspaces.CreateInput{ID: id})
		if err := workspaces.ValidateWriteKey(w.WriteKey); err != nil {
			t.Fatalf("generated key %q: %v", w.WriteKey, err)
		}
		if other, dup := keys[w.WriteKey]; dup {
			t.Fatalf("workspaces %q and %q got the same write key", other, id)
		}
		keys[w.WriteKey] = id
	}
	for key, id := range keys {
		if got := e.keyOwner(key); got != id {
			t.Errorf("key of %q resolves to %q", id, got)
		}
	}
}

func TestCreateInvalid(t *testing.T) {
	tests := []struct {
		name   string
		in     workspaces.CreateInput
		fields []string
	}{
		{"uppercase id", workspaces.CreateInput{ID: "Acme"}, []string{"id"}},
		{"space in id", workspaces.CreateInput{ID: "ac me"}, []string{"id"}},
		{"leading dash", workspaces.CreateInput{ID: "-acme"}, []string{"id"}},
		{"trailing dash", workspaces.CreateInput{ID: "acme-"}, []string{"id"}},
		{"49 characters", workspaces.CreateInput{ID: strings.Repeat("a", 49)}, []string{"id"}},
		{"empty id", workspaces.CreateInput{ID: ""}, []string{"id"}},
		{"path traversal", workspaces.CreateInput{ID: "../x"}, []string{"id"}},
		{"short write key", workspaces.CreateInput{ID: "acme", WriteKey: "short"}, []string{"write_key"}},
		{"write key with bad character", workspaces.CreateInput{ID: "acme", WriteKey: "wk_0123456789!abcdef"}, []string{"write_key"}},
		{"name too long", workspaces.CreateInput{ID: "acme", Name: strings.Repeat("n", 201)}, []string{"name"}},
		{"every problem at once", workspaces.CreateInput{ID: "Bad Id", Name: strings.Repeat("n", 201), WriteKey: "short"}, []string{"id", "name", "write_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w, err := e.svc.Create(e.ctx, tt.in)
			wantValidation(t, err, tt.fields...)
			if w.ID != "" || w.WriteKey != "" {
				t.Errorf("failed Create returned %+v", w)
			}
			if ids := e.allIDs(); len(ids) != 0 {
				t.Errorf("workspaces after a refused Create: %v", ids)
			}
			entries, err := os.ReadDir(filepath.Join(e.dir, "workspaces"))
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 0 {
				t.Errorf("files left in workspaces/: %v", entries)
			}
			if _, err := os.Stat(filepath.Join(e.dir, "x.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a file escaped the workspaces dir: %v", err)
			}
		})
	}
}

func TestCreateConflicts(t *testing.T) {
	const key = "wk_taken_0123456789"
	t.Run("duplicate id", func(t *testing.T) {
		e := newEnv(t)
		first := e.create(workspaces.CreateInput{ID: "acme", Name: "First", WriteKey: key})
		_, err := e.svc.Create(e.ctx, workspaces.CreateInput{ID: "acme", Name: "Second"})
		if !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("Create duplicate id = %v, want ErrConflict", err)
		}
		if got := e.mustStored("acme"); !sameWorkspace(got, first) {
			t.Errorf("first workspace changed: %+v", got)
		}
		if got := e.keyOwner(key); got != "acme" {
			t.Errorf("key resolves to %q", got)
		}
	})
	t.Run("duplicate write key", func(t *testing.T) {
		e := newEnv(t)
		e.create(workspaces.CreateInput{ID: "acme", WriteKey: key})
		_, err := e.svc.Create(e.ctx, workspaces.CreateInput{ID: "beta", WriteKey: key})
		if !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("Create duplicate write key = %v, want ErrConflict", err)
		}
		if _, ok := e.stored("beta"); ok {
			t.Error("beta was created")
		}
		if _, err := e.store.Workspace("beta"); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("beta's file is open: %v", err)
		}
		if got := e.keyOwner(key); got != "acme" {
			t.Errorf("key resolves to %q, want acme", got)
		}
		// The refused creation left nothing behind: the id is free with another key.
		if w := e.create(workspaces.CreateInput{ID: "beta"}); w.WriteKey == key {
			t.Error("beta got acme's key")
		}
	})
}

func TestList(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"ws-3", "ws-1", "ws-5", "ws-2", "ws-4"} {
		e.create(workspaces.CreateInput{ID: id})
	}
	type page struct {
		ids  []string
		next string
	}
	walk := func(t *testing.T, after string, limit int) []page {
		t.Helper()
		var pages []page
		for range 10 {
			items, next, err := e.svc.List(e.ctx, after, limit)
			if err != nil {
				t.Fatalf("List(%q, %d): %v", after, limit, err)
			}
			p := page{next: next}
			for _, w := range items {
				p.ids = append(p.ids, w.ID)
			}
			pages = append(pages, p)
			if next == "" {
				return pages
			}
			after = next
		}
		t.Fatal("paging does not end")
		return nil
	}
	tests := []struct {
		name  string
		after string
		limit int
		want  []page
	}{
		{"limit 2", "", 2, []page{{[]string{"ws-1", "ws-2"}, "ws-2"}, {[]string{"ws-3", "ws-4"}, "ws-4"}, {[]string{"ws-5"}, ""}}},
		{"limit 5", "", 5, []page{{[]string{"ws-1", "ws-2", "ws-3", "ws-4", "ws-5"}, ""}}},
		{"limit 1000", "", 1000, []page{{[]string{"ws-1", "ws-2", "ws-3", "ws-4", "ws-5"}, ""}}},
		{"limit 4", "", 4, []page{{[]string{"ws-1", "ws-2", "ws-3", "ws-4"}, "ws-4"}, {[]string{"ws-5"}, ""}}},
		{"after an id", "ws-3", 2, []page{{[]string{"ws-4", "ws-5"}, ""}}},
		{"after an absent id", "ws-25", 10, []page{{[]string{"ws-3", "ws-4", "ws-5"}, ""}}},
		{"after the last", "ws-5", 2, []page{{nil, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := walk(t, tt.after, tt.limit)
			if len(got) != len(tt.want) {
				t.Fatalf("pages = %v, want %v", got, tt.want)
			}
			for i := range got {
				if !slices.Equal(got[i].ids, tt.want[i].ids) || got[i].next != tt.want[i].next {
					t.Errorf("page %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
	for _, limit := range []int{0, -1, 1001} {
		t.Run("invalid limit", func(t *testing.T) {
			items, next, err := e.svc.List(e.ctx, "", limit)
			wantValidation(t, err, "limit")
			if items != nil || next != "" {
				t.Errorf("List(%d) returned %v, %q", limit, items, next)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestUpdate(t *testing.T) {
	const (
		oldKey   = "wk_old_0123456789ab"
		newKey   = "wk_new_0123456789ab"
		otherKey = "wk_other_0123456789"
	)
	tests := []struct {
		name     string
		id       string
		in       workspaces.UpdateInput
		wantName string // on success
		wantKey  string // on success
		field    string // want a validation error on this field
		wantErr  error
	}{
		{"rename, trimmed", "acme", workspaces.UpdateInput{Name: ptr("  Acme Corp  ")}, "Acme Corp", oldKey, "", nil},
		{"nothing", "acme", workspaces.UpdateInput{}, "Acme", oldKey, "", nil},
		{"change write key", "acme", workspaces.UpdateInput{WriteKey: ptr(newKey)}, "Acme", newKey, "", nil},
		{"same write key", "acme", workspaces.UpdateInput{WriteKey: ptr(oldKey)}, "Acme", oldKey, "", nil},
		{"both", "acme", workspaces.UpdateInput{Name: ptr("New"), WriteKey: ptr(newKey)}, "New", newKey, "", nil},
		{"empty name", "acme", workspaces.UpdateInput{Name: ptr("")}, "", "", "name", nil},
		{"blank name", "acme", workspaces.UpdateInput{Name: ptr("   ")}, "", "", "name", nil},
		{"name too long", "acme", workspaces.UpdateInput{Name: ptr(strings.Repeat("n", 201))}, "", "", "name", nil},
		{"short write key", "acme", workspaces.UpdateInput{WriteKey: ptr("short")}, "", "", "write_key", nil},
		{"empty write key", "acme", workspaces.UpdateInput{WriteKey: ptr("")}, "", "", "write_key", nil},
		{"write key of another workspace", "acme", workspaces.UpdateInput{WriteKey: ptr(otherKey)}, "", "", "", errs.ErrConflict},
		{"managed workspace", "managed", workspaces.UpdateInput{Name: ptr("x")}, "", "", "", errs.ErrConflict},
		{"write key declared in the file", "managedkey", workspaces.UpdateInput{WriteKey: ptr(newKey)}, "", "", "", errs.ErrConflict},
		{"unknown workspace", "nope", workspaces.UpdateInput{Name: ptr("x")}, "", "", "", errs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			declared := []workspaces.Declared{{ID: "managed", Name: "Managed"}, {ID: "managedkey", WriteKey: "wk_declared_in_the_file"}}
			if err := e.svc.Reconcile(e.ctx, declared); err != nil {
				t.Fatal(err)
			}
			e.create(workspaces.CreateInput{ID: "acme", Name: "Acme", WriteKey: oldKey})
			e.create(workspaces.CreateInput{ID: "other", WriteKey: otherKey})
			before, _ := e.stored(tt.id)

			w, err := e.svc.Update(e.ctx, tt.id, tt.in)
			if tt.field != "" || tt.wantErr != nil {
				if tt.field != "" {
					wantValidation(t, err, tt.field)
				} else if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Update = %v, want %v", err, tt.wantErr)
				}
				if after, _ := e.stored(tt.id); !sameWorkspace(after, before) {
					t.Errorf("refused Update changed %+v to %+v", before, after)
				}
				if e.keyOwner(oldKey) != "acme" || e.keyOwner(otherKey) != "other" || e.keyOwner(newKey) != "" {
					t.Error("refused Update moved write keys")
				}
				return
			}
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if w.Name != tt.wantName || w.WriteKey != tt.wantKey || w.Managed {
				t.Errorf("updated = %+v, want name %q key %q", w, tt.wantName, tt.wantKey)
			}
			if !w.UpdatedAt.After(before.UpdatedAt) || !w.CreatedAt.Equal(before.CreatedAt) {
				t.Errorf("times: created %v -> %v, updated %v -> %v", before.CreatedAt, w.CreatedAt, before.UpdatedAt, w.UpdatedAt)
			}
			if got := e.mustStored(tt.id); !sameWorkspace(got, w) {
				t.Errorf("stored %+v, returned %+v", got, w)
			}
			if got := e.keyOwner(tt.wantKey); got != "acme" {
				t.Errorf("new key resolves to %q, want acme", got)
			}
			if tt.wantKey != oldKey {
				if got := e.keyOwner(oldKey); got != "" {
					t.Errorf("old key still resolves to %q", got)
				}
			}
			if e.keyOwner(otherKey) != "other" {
				t.Error("other workspace lost its key")
			}
		})
	}
}

func TestRotateWriteKey(t *testing.T) {
	t.Run("changes the key", func(t *testing.T) {
		e := newEnv(t)
		w := e.create(workspaces.CreateInput{ID: "acme"})
		old := w.WriteKey
		seen := map[string]bool{old: true}
		for range 3 {
			r, err := e.svc.RotateWriteKey(e.ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if seen[r.WriteKey] {
				t.Fatalf("rotated key %q was used before", r.WriteKey)
			}
			seen[r.WriteKey] = true
			if err := workspaces.ValidateWriteKey(r.WriteKey); err != nil {
				t.Errorf("rotated key: %v", err)
			}
			if got := e.mustStored("acme").WriteKey; got != r.WriteKey {
				t.Errorf("stored key %q, returned %q", got, r.WriteKey)
			}
			if e.keyOwner(r.WriteKey) != "acme" || e.keyOwner(old) != "" {
				t.Errorf("after rotation new key -> %q, old key -> %q", e.keyOwner(r.WriteKey), e.keyOwner(old))
			}
			old = r.WriteKey
		}
	})
	t.Run("write key declared in the file", func(t *testing.T) {
		e := newEnv(t)
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme", WriteKey: "wk_declared_in_the_file"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.RotateWriteKey(e.ctx, "acme"); !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("RotateWriteKey(declared key) = %v, want ErrConflict", err)
		}
		if e.mustStored("acme").WriteKey != "wk_declared_in_the_file" {
			t.Error("declared key changed")
		}
	})
	// A workspace declared without a write key has a generated one, which must stay rotatable (a leaked key).
	t.Run("declared workspace with a generated key", func(t *testing.T) {
		e := newEnv(t)
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme"}}); err != nil {
			t.Fatal(err)
		}
		key := e.mustStored("acme").WriteKey
		r, err := e.svc.RotateWriteKey(e.ctx, "acme")
		if err != nil || r.WriteKey == key || e.mustStored("acme").WriteKey != r.WriteKey {
			t.Fatalf("RotateWriteKey = %+v, %v; want a new stored key", r, err)
		}
		// The next start keeps the rotated key: the file does not declare one.
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme"}}); err != nil || e.mustStored("acme").WriteKey != r.WriteKey {
			t.Fatalf("restart reverted the rotated key: %v", err)
		}
	})
	// Rotations racing with renames never bring an old key back: found by review, where a rename's stale copy of
	// the record restored the key a rotation had just replaced.
	t.Run("concurrent with renames", func(t *testing.T) {
		e := newEnv(t)
		original := e.create(workspaces.CreateInput{ID: "acme"}).WriteKey
		var wg sync.WaitGroup
		answered := make(chan string, 20)
		for i := 0; i < 20; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				r, err := e.svc.RotateWriteKey(e.ctx, "acme")
				if err != nil {
					t.Error(err)
					return
				}
				answered <- r.WriteKey
			}()
			go func(i int) {
				defer wg.Done()
				if _, err := e.svc.Update(e.ctx, "acme", workspaces.UpdateInput{Name: ptr(fmt.Sprint("name ", i))}); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		close(answered)
		final := e.mustStored("acme").WriteKey
		live := 0
		for key := range answered {
			if key == final {
				live++
			} else if owner := e.keyOwner(key); owner != "" {
				t.Errorf("a replaced key still resolves to %q", owner)
			}
		}
		if live != 1 || e.keyOwner(original) != "" {
			t.Fatalf("final key %q is not the one live answered key (live=%d), or the original came back", final, live)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.svc.RotateWriteKey(e.ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
			t.Fatalf("RotateWriteKey(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		confirm string
		field   string
		wantErr error
	}{
		{"correct confirm", "acme", "acme", "", nil},
		{"empty confirm", "acme", "", "confirm", nil},
		{"other id", "acme", "beta", "confirm", nil},
		{"case differs", "acme", "ACME", "confirm", nil},
		{"surrounding space", "acme", " acme", "confirm", nil},
		{"managed", "managed", "managed", "", errs.ErrConflict},
		{"unknown", "nope", "nope", "", errs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "managed"}}); err != nil {
				t.Fatal(err)
			}
			e.create(workspaces.CreateInput{ID: "acme"})
			e.create(workspaces.CreateInput{ID: "beta"})
			// A token scoped to the workspace goes with it.
			tokID := strings.Repeat("t", 16)
			if tt.id != "nope" {
				if err := e.store.CreateToken(e.ctx, auth.Token{ID: tokID, Name: "t", Role: auth.RoleViewer, Workspace: tt.id, SecretHash: []byte{1}}); err != nil {
					t.Fatal(err)
				}
			}
			before, existed := e.stored(tt.id)
			idsBefore := e.allIDs()

			err := e.svc.Delete(e.ctx, tt.id, tt.confirm)
			if tt.field != "" || tt.wantErr != nil {
				if tt.field != "" {
					wantValidation(t, err, tt.field)
				} else if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Delete = %v, want %v", err, tt.wantErr)
				}
				if ids := e.allIDs(); !slices.Equal(ids, idsBefore) {
					t.Errorf("workspaces %v after a refused Delete, want %v", ids, idsBefore)
				}
				if existed {
					if e.keyOwner(before.WriteKey) != tt.id {
						t.Error("write key no longer resolves after a refused Delete")
					}
					if _, err := e.store.Workspace(tt.id); err != nil {
						t.Errorf("file closed after a refused Delete: %v", err)
					}
					if _, err := e.store.GetToken(e.ctx, tokID); err != nil {
						t.Errorf("token gone after a refused Delete: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, ok := e.stored(tt.id); ok {
				t.Error("workspace still stored")
			}
			if _, err := e.svc.Get(e.ctx, tt.id); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("Get after Delete = %v, want ErrNotFound", err)
			}
			if got := e.keyOwner(before.WriteKey); got != "" {
				t.Errorf("deleted workspace's key resolves to %q", got)
			}
			if _, err := e.store.Workspace(tt.id); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("file still open: %v", err)
			}
			if _, err := os.Stat(filepath.Join(e.dir, "workspaces", tt.id+".db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("file still on disk: %v", err)
			}
			if _, err := e.store.GetToken(e.ctx, tokID); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("scoped token after Delete: %v, want ErrNotFound", err)
			}
			want := slices.DeleteFunc(slices.Clone(idsBefore), func(id string) bool { return id == tt.id })
			if ids := e.allIDs(); !slices.Equal(ids, want) {
				t.Errorf("workspaces after Delete = %v, want %v", ids, want)
			}
		})
	}
}

func TestReconcile(t *testing.T) {
	const (
		key1 = "wk_acme_0123456789ab"
		key2 = "wk_acme_rotated_0123"
	)
	t.Run("empty store creates default", func(t *testing.T) {
		e := newEnv(t)
		for range 2 { // idempotent
			if err := e.svc.Reconcile(e.ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
		if ids := e.allIDs(); !slices.Equal(ids, []string{workspaces.DefaultID}) {
			t.Fatalf("workspaces = %v, want [default]", ids)
		}
		w := e.mustStored(workspaces.DefaultID)
		if w.Managed || w.Name != "Default" || workspaces.ValidateWriteKey(w.WriteKey) != nil || e.keyOwner(w.WriteKey) != "default" {
			t.Errorf("default workspace = %+v", w)
		}
	})
	t.Run("existing workspace prevents default", func(t *testing.T) {
		e := newEnv(t)
		e.create(workspaces.CreateInput{ID: "acme"})
		if err := e.svc.Reconcile(e.ctx, nil); err != nil {
			t.Fatal(err)
		}
		if ids := e.allIDs(); !slices.Equal(ids, []string{"acme"}) {
			t.Fatalf("workspaces = %v, want [acme]", ids)
		}
		if e.mustStored("acme").Managed {
			t.Error("undeclared workspace became managed")
		}
	})
	t.Run("declared lifecycle", func(t *testing.T) {
		e := newEnv(t)
		// 1. Declarations create managed workspaces; no default.
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{
			{ID: "acme", Name: "Acme", WriteKey: key1},
			{ID: "beta"},
		}); err != nil {
			t.Fatal(err)
		}
		if ids := e.allIDs(); !slices.Equal(ids, []string{"acme", "beta"}) {
			t.Fatalf("workspaces = %v, want [acme beta]", ids)
		}
		acme := e.mustStored("acme")
		if !acme.Managed || acme.Name != "Acme" || acme.WriteKey != key1 || e.keyOwner(key1) != "acme" {
			t.Errorf("acme = %+v", acme)
		}
		beta := e.mustStored("beta")
		if !beta.Managed || beta.Name != "beta" || workspaces.ValidateWriteKey(beta.WriteKey) != nil {
			t.Errorf("beta = %+v", beta)
		}

		// 2. Unchanged declarations change nothing.
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme", Name: "Acme", WriteKey: key1}, {ID: "beta"}}); err != nil {
			t.Fatal(err)
		}
		if got := e.mustStored("acme"); !sameWorkspace(got, acme) {
			t.Errorf("unchanged declaration rewrote acme: %+v -> %+v", acme, got)
		}

		// 3. A changed name and key are applied.
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme", Name: "Acme Corp", WriteKey: key2}, {ID: "beta"}}); err != nil {
			t.Fatal(err)
		}
		got := e.mustStored("acme")
		if !got.Managed || got.Name != "Acme Corp" || got.WriteKey != key2 || !got.UpdatedAt.After(acme.UpdatedAt) {
			t.Errorf("acme after rename = %+v", got)
		}
		if e.keyOwner(key2) != "acme" || e.keyOwner(key1) != "" {
			t.Errorf("keys: new -> %q, old -> %q", e.keyOwner(key2), e.keyOwner(key1))
		}
		if _, err := e.svc.Update(e.ctx, "acme", workspaces.UpdateInput{Name: ptr("x")}); !errors.Is(err, errs.ErrConflict) {
			t.Errorf("API Update of a declared workspace = %v, want ErrConflict", err)
		}

		// 4. No longer declared: released, not deleted; the API may change it now.
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "beta"}}); err != nil {
			t.Fatal(err)
		}
		released := e.mustStored("acme")
		if released.Managed || released.Name != "Acme Corp" || released.WriteKey != key2 {
			t.Errorf("released acme = %+v, want unmanaged with its fields kept", released)
		}
		if !e.mustStored("beta").Managed {
			t.Error("beta, still declared, is no longer managed")
		}
		if ids := e.allIDs(); !slices.Equal(ids, []string{"acme", "beta"}) {
			t.Errorf("workspaces = %v, want [acme beta]", ids)
		}
		if _, err := e.svc.Update(e.ctx, "acme", workspaces.UpdateInput{Name: ptr("Edited")}); err != nil {
			t.Errorf("API Update of a released workspace: %v", err)
		}

		// 5. Nothing declared: everything released, no default added.
		if err := e.svc.Reconcile(e.ctx, nil); err != nil {
			t.Fatal(err)
		}
		if e.mustStored("beta").Managed {
			t.Error("beta still managed")
		}
		if _, ok := e.stored(workspaces.DefaultID); ok {
			t.Error("default created although workspaces exist")
		}
	})
	t.Run("declaring an API workspace takes it over", func(t *testing.T) {
		e := newEnv(t)
		before := e.create(workspaces.CreateInput{ID: "acme", Name: "From API"})
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme"}}); err != nil {
			t.Fatal(err)
		}
		got := e.mustStored("acme")
		if !got.Managed || got.Name != "From API" || got.WriteKey != before.WriteKey {
			t.Errorf("acme = %+v, want managed with its fields kept", got)
		}
	})
	t.Run("declared invalid id", func(t *testing.T) {
		for _, id := range []string{"Bad", "../x", "", strings.Repeat("a", 49)} {
			e := newEnv(t)
			err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: id}})
			if err == nil {
				t.Fatalf("Reconcile with id %q: no error", id)
			}
			wantValidation(t, err, "id")
			if _, ok := e.stored(id); ok {
				t.Errorf("workspace %q created", id)
			}
		}
	})
	t.Run("declared invalid write key for a new workspace", func(t *testing.T) {
		e := newEnv(t)
		err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme", WriteKey: "short"}})
		wantValidation(t, err, "write_key")
		if _, ok := e.stored("acme"); ok {
			t.Error("acme created")
		}
	})
	t.Run("declared write key taken by another workspace", func(t *testing.T) {
		e := newEnv(t)
		e.create(workspaces.CreateInput{ID: "other", WriteKey: key1})
		e.create(workspaces.CreateInput{ID: "acme"})
		for _, d := range []workspaces.Declared{{ID: "acme", WriteKey: key1}, {ID: "new", WriteKey: key1}} {
			if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{d}); !errors.Is(err, errs.ErrConflict) {
				t.Errorf("Reconcile(%+v) = %v, want ErrConflict", d, err)
			}
		}
		if e.keyOwner(key1) != "other" {
			t.Error("key moved")
		}
	})

	// The next two expose a bug: for a workspace that already exists, Reconcile copies the declared name and
	// write key without the trimming and validation that Create applies to the same declaration.
	t.Run("declared name is trimmed on every run", func(t *testing.T) {
		e := newEnv(t)
		decl := []workspaces.Declared{{ID: "acme", Name: "  Acme  "}}
		for run := 1; run <= 2; run++ {
			if err := e.svc.Reconcile(e.ctx, decl); err != nil {
				t.Fatal(err)
			}
			if got := e.mustStored("acme").Name; got != "Acme" {
				t.Errorf("run %d: name = %q, want %q", run, got, "Acme")
			}
		}
	})
	t.Run("declared invalid write key for an existing workspace", func(t *testing.T) {
		e := newEnv(t)
		if err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme", WriteKey: key1}}); err != nil {
			t.Fatal(err)
		}
		err := e.svc.Reconcile(e.ctx, []workspaces.Declared{{ID: "acme", WriteKey: "bad key!"}})
		var v *errs.ValidationError
		if !errors.As(err, &v) {
			t.Errorf("Reconcile with an invalid write key = %v, want *errs.ValidationError", err)
		}
		if got := e.mustStored("acme").WriteKey; got != key1 {
			t.Errorf("stored write key = %q, want %q unchanged", got, key1)
		}
	})
}

func TestCampaignRulesValidation(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rules  workspaces.CampaignRules
		fields []string
	}{
		{"none", workspaces.CampaignRules{}, nil},
		{"valid", workspaces.CampaignRules{FrequencyCap: &workspaces.FrequencyCap{Messages: 3, Period: "7d"},
			QuietHours: &workspaces.QuietHours{Start: "21:00", End: "08:00", Timezone: "Europe/Paris"}}, nil},
		{"cap of zero, period unreadable", workspaces.CampaignRules{FrequencyCap: &workspaces.FrequencyCap{Messages: 0, Period: "weekly"}},
			[]string{"settings.campaigns.frequency_cap.messages", "settings.campaigns.frequency_cap.period"}},
		{"quiet hours unreadable", workspaces.CampaignRules{QuietHours: &workspaces.QuietHours{Start: "9pm", End: "25:00", Timezone: "Nowhere/City"}},
			[]string{"settings.campaigns.quiet_hours.start", "settings.campaigns.quiet_hours.end", "settings.campaigns.quiet_hours.timezone"}},
		{"quiet hours of no length", workspaces.CampaignRules{QuietHours: &workspaces.QuietHours{Start: "08:00", End: "08:00"}},
			[]string{"settings.campaigns.quiet_hours"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var v errs.ValidationError
			workspaces.Settings{Campaigns: tt.rules}.Validate(&v)
			var got []string
			for _, f := range v.Fields {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("problems %v (%v), want %v", got, v.Fields, tt.fields)
			}
		})
	}
}
