package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/workspaces"
	bolt "go.etcd.io/bbolt"
)

// fixedTime is a timestamp without monotonic reading or location, so that it survives a JSON round trip unchanged.
var fixedTime = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// testWorkspace returns a valid workspace whose write key is derived from id.
func testWorkspace(id string) workspaces.Workspace {
	return workspaces.Workspace{
		ID: id, Name: "Workspace " + id, WriteKey: "wk_test_key_" + id,
		CreatedAt: fixedTime, UpdatedAt: fixedTime,
	}
}

func testToken(id, workspace string) auth.Token {
	return auth.Token{
		ID: id, Name: "token " + id, Role: auth.RoleEditor, Workspace: workspace,
		SecretHash: []byte("0123456789abcdef0123456789abcdef" + id), CreatedAt: fixedTime, CreatedBy: "system",
	}
}

func mustCreateWorkspaces(t testing.TB, s *Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.CreateWorkspace(context.Background(), testWorkspace(id)); err != nil {
			t.Fatalf("CreateWorkspace(%q): %v", id, err)
		}
	}
}

func workspaceIDsOf(ws []workspaces.Workspace) []string {
	ids := []string{}
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	return ids
}

// dumpBolt returns every key of a bbolt file, nested buckets included, as "bucket/sub/key" -> value. It opens the
// file read-only and changes nothing.
func dumpBolt(t testing.TB, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer db.Close()
	out := map[string]string{}
	var walk func(prefix string, b *bolt.Bucket) error
	walk = func(prefix string, b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				out[prefix+string(k)+"/"] = "<bucket>"
				return walk(prefix+string(k)+"/", b.Bucket(k))
			}
			out[prefix+string(k)] = string(v)
			return nil
		})
	}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out[string(name)+"/"] = "<bucket>"
			return walk(string(name)+"/", b)
		})
	})
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return out
}

// dumpDataDir dumps system.db and every workspaces/*.db of a closed data dir, keyed by file name.
func dumpDataDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	files := []string{systemFile}
	entries, err := os.ReadDir(filepath.Join(dir, workspaceDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") {
			files = append(files, workspaceDir+"/"+e.Name())
		}
	}
	for _, f := range files {
		for k, v := range dumpBolt(t, filepath.Join(dir, filepath.FromSlash(f))) {
			out[f+":"+k] = v
		}
	}
	return out
}

func diffDumps(want, got map[string]string) []string {
	var diffs []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k)
		} else if g != v {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+k)
		}
	}
	sort.Strings(diffs)
	return diffs
}

func TestOpenCreatesDataDirAndReopenPreservesData(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "not", "yet", "data")
	s := openTest(t, dir)
	for _, p := range []string{dir, filepath.Join(dir, workspaceDir)} {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			t.Fatalf("%s: want a directory, got %v, %v", p, fi, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, systemFile)); err != nil {
		t.Fatalf("system file: %v", err)
	}
	mustCreateWorkspaces(t, s, "acme")
	if err := s.CreateToken(ctx, testToken("t1", "acme")); err != nil {
		t.Fatal(err)
	}
	ws, _ := s.Workspace("acme")
	if err := ws.Update(ctx, incr("n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := openTest(t, dir)
	if got, err := s2.GetWorkspace(ctx, "acme"); err != nil || !reflect.DeepEqual(got, testWorkspace("acme")) {
		t.Errorf("after reopen GetWorkspace = %+v, %v", got, err)
	}
	if got, err := s2.GetToken(ctx, "t1"); err != nil || !reflect.DeepEqual(got, testToken("t1", "acme")) {
		t.Errorf("after reopen GetToken = %+v, %v", got, err)
	}
	ws2, err := s2.Workspace("acme")
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	_ = ws2.View(func(tx *bolt.Tx) error { n = counter(tx, "n"); return nil })
	if n != 1 {
		t.Errorf("after reopen workspace counter = %d, want 1", n)
	}
}

func TestOpenFailsWhileDataDirIsInUse(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first := openTest(t, dir)
	const lockTimeout = 200 * time.Millisecond
	start := time.Now()
	second, err := Open(ctx, Options{Dir: dir, LockTimeout: lockTimeout, Logger: testLogger(t)})
	elapsed := time.Since(start)
	if err == nil {
		_ = second.Close()
		t.Fatal("second Open of a data dir in use succeeded")
	}
	if !strings.Contains(err.Error(), "is in use by another crosscast process") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q should say that the data dir %s is in use", err, dir)
	}
	t.Logf("second Open failed after %s (lock timeout %s): %v", elapsed, lockTimeout, err)
	// Not a timing goal: only a guard that Open gives up instead of waiting for the lock forever.
	if elapsed > lockTimeout+10*time.Second {
		t.Errorf("second Open took %s to give up, lock timeout is %s", elapsed, lockTimeout)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third, err := Open(ctx, Options{Dir: dir, LockTimeout: lockTimeout, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	if err := third.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFailsOnDataDirNotWritable(t *testing.T) {
	// The tests run as root, for whom permission bits do not block writes: a path below a regular file cannot be
	// created by anyone.
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dir string }{
		{"below a regular file", filepath.Join(file, "data")},
		{"is a regular file", file},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), Options{Dir: tc.dir, LockTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%s) succeeded", tc.dir)
			}
			if !strings.Contains(err.Error(), "not writable") || !strings.Contains(err.Error(), tc.dir) {
				t.Errorf("error %q should say that %s is not writable", err, tc.dir)
			}
		})
	}
}

func TestWorkspaceStoreCreateGetList(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	// Created out of order: listing must come back in id order.
	mustCreateWorkspaces(t, s, "delta", "alpha", "charlie", "bravo", "echo")
	all := []string{"alpha", "bravo", "charlie", "delta", "echo"}

	for _, id := range all {
		got, err := s.GetWorkspace(ctx, id)
		if err != nil || !reflect.DeepEqual(got, testWorkspace(id)) {
			t.Errorf("GetWorkspace(%q) = %+v, %v; want %+v", id, got, err, testWorkspace(id))
		}
	}
	if _, err := s.GetWorkspace(ctx, "nope"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("GetWorkspace(unknown): want ErrNotFound, got %v", err)
	}

	for _, tc := range []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, all},
		{"", 2, all[:2]},
		{"bravo", 2, []string{"charlie", "delta"}},
		{"bravo", 0, all[2:]},
		{"b", 1, []string{"bravo"}}, // a cursor that is not an id starts at the next id
		{"charlie-x", 0, []string{"delta", "echo"}},
		{"echo", 0, []string{}},
		{"zzz", 3, []string{}},
		{"", 100, all},
	} {
		t.Run(fmt.Sprintf("after=%q,limit=%d", tc.after, tc.limit), func(t *testing.T) {
			got, err := s.ListWorkspaces(ctx, tc.after, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if ids := workspaceIDsOf(got); !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("ListWorkspaces(%q, %d) = %v, want %v", tc.after, tc.limit, ids, tc.want)
			}
			for _, w := range got {
				if !reflect.DeepEqual(w, testWorkspace(w.ID)) {
					t.Errorf("listed %+v, want %+v", w, testWorkspace(w.ID))
				}
			}
		})
	}

	// Paging through with the cursor visits each workspace once.
	var paged []string
	after := ""
	for {
		page, err := s.ListWorkspaces(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, workspaceIDsOf(page)...)
		after = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(paged, all) {
		t.Errorf("paging by 2 visited %v, want %v", paged, all)
	}
}

func TestWorkspaceStoreCreateConflicts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		w    workspaces.Workspace
	}{
		{"duplicate id", func() workspaces.Workspace {
			w := testWorkspace("acme")
			w.WriteKey = "wk_a_fresh_unused_key"
			return w
		}()},
		{"duplicate write key", func() workspaces.Workspace {
			w := testWorkspace("other")
			w.WriteKey = testWorkspace("acme").WriteKey
			return w
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir())
			mustCreateWorkspaces(t, s, "acme")
			if err := s.CreateWorkspace(ctx, tc.w); !errors.Is(err, errs.ErrConflict) {
				t.Fatalf("CreateWorkspace(%+v): want ErrConflict, got %v", tc.w, err)
			}
			// Nothing of the refused workspace is left behind, and the existing one is intact.
			if got, err := s.GetWorkspace(ctx, "acme"); err != nil || !reflect.DeepEqual(got, testWorkspace("acme")) {
				t.Errorf("existing workspace = %+v, %v", got, err)
			}
			if id, err := s.WorkspaceByWriteKey(ctx, testWorkspace("acme").WriteKey); err != nil || id != "acme" {
				t.Errorf("WorkspaceByWriteKey(acme's key) = %q, %v", id, err)
			}
			if tc.w.ID != "acme" {
				if _, err := s.Workspace(tc.w.ID); !errors.Is(err, errs.ErrNotFound) {
					t.Errorf("Workspace(%q) after refused create: want ErrNotFound, got %v", tc.w.ID, err)
				}
				if _, err := os.Stat(s.workspacePath(tc.w.ID)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("file of refused workspace: want none, got %v", err)
				}
			}
			if _, err := s.WorkspaceByWriteKey(ctx, tc.w.WriteKey); tc.w.ID == "acme" && !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("write key of refused workspace is indexed: %v", err)
			}
			list, err := s.ListWorkspaces(ctx, "", 0)
			if err != nil || !reflect.DeepEqual(workspaceIDsOf(list), []string{"acme"}) {
				t.Errorf("ListWorkspaces = %v, %v; want [acme]", workspaceIDsOf(list), err)
			}
		})
	}
}

// replaceWorkspace stores w over the record with its id.
func replaceWorkspace(ctx context.Context, s *Store, w workspaces.Workspace) error {
	_, err := s.UpdateWorkspace(ctx, w.ID, func(x *workspaces.Workspace) error { *x = w; return nil })
	return err
}

// Concurrent read-modify-write updates never undo each other: each sees the result of the ones before.
func TestWorkspaceStoreUpdateIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	mustCreateWorkspaces(t, s, "acme")
	const n = 64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateWorkspace(ctx, "acme", func(w *workspaces.Workspace) error {
				w.Name += "x"
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := s.GetWorkspace(ctx, "acme")
	if want := testWorkspace("acme").Name + strings.Repeat("x", n); got.Name != want {
		t.Fatalf("after %d concurrent appends the name has %d: lost updates", n, len(got.Name)-len(testWorkspace("acme").Name))
	}
	// An error from fn aborts the update and is returned as is.
	boom := errors.New("refused")
	if _, err := s.UpdateWorkspace(ctx, "acme", func(w *workspaces.Workspace) error { w.Name = "changed"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("want fn's error, got %v", err)
	}
	if after, _ := s.GetWorkspace(ctx, "acme"); after.Name != got.Name {
		t.Fatalf("an aborted update changed the name to %q", after.Name)
	}
}

func TestWorkspaceStoreUpdate(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	mustCreateWorkspaces(t, s, "acme", "globex")
	oldKey := testWorkspace("acme").WriteKey

	t.Run("name only keeps the write key", func(t *testing.T) {
		w := testWorkspace("acme")
		w.Name, w.Managed, w.UpdatedAt = "Acme Corp", true, fixedTime.Add(time.Hour)
		if err := replaceWorkspace(ctx, s, w); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetWorkspace(ctx, "acme"); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("GetWorkspace = %+v, %v; want %+v", got, err, w)
		}
		if id, err := s.WorkspaceByWriteKey(ctx, oldKey); err != nil || id != "acme" {
			t.Errorf("WorkspaceByWriteKey(unchanged key) = %q, %v", id, err)
		}
	})

	t.Run("new write key moves the index", func(t *testing.T) {
		w, _ := s.GetWorkspace(ctx, "acme")
		w.WriteKey = "wk_rotated_key_for_acme"
		if err := replaceWorkspace(ctx, s, w); err != nil {
			t.Fatal(err)
		}
		if id, err := s.WorkspaceByWriteKey(ctx, w.WriteKey); err != nil || id != "acme" {
			t.Errorf("WorkspaceByWriteKey(new key) = %q, %v; want acme", id, err)
		}
		if id, err := s.WorkspaceByWriteKey(ctx, oldKey); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("WorkspaceByWriteKey(old key) = %q, %v; want ErrNotFound", id, err)
		}
		if got, _ := s.GetWorkspace(ctx, "acme"); got.WriteKey != w.WriteKey {
			t.Errorf("stored write key %q, want %q", got.WriteKey, w.WriteKey)
		}
	})

	t.Run("another workspace's key is a conflict", func(t *testing.T) {
		before, _ := s.GetWorkspace(ctx, "acme")
		w := before
		w.Name, w.WriteKey = "Stolen", testWorkspace("globex").WriteKey
		if err := replaceWorkspace(ctx, s, w); !errors.Is(err, errs.ErrConflict) {
			t.Fatalf("want ErrConflict, got %v", err)
		}
		if got, _ := s.GetWorkspace(ctx, "acme"); !reflect.DeepEqual(got, before) {
			t.Errorf("refused update changed the record: %+v, want %+v", got, before)
		}
		for key, want := range map[string]string{before.WriteKey: "acme", testWorkspace("globex").WriteKey: "globex"} {
			if id, err := s.WorkspaceByWriteKey(ctx, key); err != nil || id != want {
				t.Errorf("WorkspaceByWriteKey(%q) = %q, %v; want %q", key, id, err, want)
			}
		}
	})

	t.Run("unknown workspace", func(t *testing.T) {
		if err := replaceWorkspace(ctx, s, testWorkspace("nope")); !errors.Is(err, errs.ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
		if _, err := s.WorkspaceByWriteKey(ctx, testWorkspace("nope").WriteKey); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("update of an unknown workspace indexed its key: %v", err)
		}
	})
}

func TestWorkspaceStoreDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme", "globex")
	for _, tok := range []auth.Token{
		testToken("acme-1", "acme"), testToken("acme-2", "acme"), testToken("globex-1", "globex"), testToken("global", ""),
	} {
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	acmeDB, _ := s.Workspace("acme")
	if err := acmeDB.Update(ctx, incr("n")); err != nil {
		t.Fatal(err)
	}
	acmePath := filepath.Join(dir, workspaceDir, "acme.db")
	if acmeDB.Path() != acmePath {
		t.Fatalf("workspace file at %s, want %s", acmeDB.Path(), acmePath)
	}

	if err := s.DeleteWorkspace(ctx, "acme"); err != nil {
		t.Fatal(err)
	}

	if _, err := s.GetWorkspace(ctx, "acme"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("GetWorkspace after delete: want ErrNotFound, got %v", err)
	}
	if _, err := s.Workspace("acme"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("Workspace after delete: want ErrNotFound, got %v", err)
	}
	if _, err := s.WorkspaceByWriteKey(ctx, testWorkspace("acme").WriteKey); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("write key after delete: want ErrNotFound, got %v", err)
	}
	if _, err := os.Stat(acmePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace file after delete: want it gone, got %v", err)
	}
	if err := acmeDB.Update(ctx, incr("n")); !errors.Is(err, ErrClosed) {
		t.Errorf("write to a deleted workspace's DB: want ErrClosed, got %v", err)
	}
	tokens, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tok := range tokens {
		ids = append(ids, tok.ID)
	}
	if want := []string{"global", "globex-1"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("tokens after delete = %v, want %v", ids, want)
	}
	// The other workspace is untouched.
	if got, err := s.GetWorkspace(ctx, "globex"); err != nil || !reflect.DeepEqual(got, testWorkspace("globex")) {
		t.Errorf("other workspace = %+v, %v", got, err)
	}
	if id, err := s.WorkspaceByWriteKey(ctx, testWorkspace("globex").WriteKey); err != nil || id != "globex" {
		t.Errorf("other workspace's write key = %q, %v", id, err)
	}
	if _, err := s.Workspace("globex"); err != nil {
		t.Errorf("other workspace's file: %v", err)
	}

	for _, id := range []string{"acme", "nope"} {
		if err := s.DeleteWorkspace(ctx, id); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("DeleteWorkspace(%q) again/unknown: want ErrNotFound, got %v", id, err)
		}
	}

	// The deletion survives a restart, and the id can be used again from scratch.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir)
	if list, _ := s2.ListWorkspaces(ctx, "", 0); !reflect.DeepEqual(workspaceIDsOf(list), []string{"globex"}) {
		t.Errorf("after reopen workspaces = %v, want [globex]", workspaceIDsOf(list))
	}
	mustCreateWorkspaces(t, s2, "acme")
	db, _ := s2.Workspace("acme")
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketTest) != nil {
			t.Error("recreated workspace inherited the deleted one's data")
		}
		return nil
	})
}

func TestAuthStoreTokens(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	mustCreateWorkspaces(t, s, "acme")

	for _, tc := range []struct {
		name string
		tok  auth.Token
		want error
	}{
		{"scoped", testToken("b-scoped", "acme"), nil},
		{"global", testToken("a-global", ""), nil},
		{"owner without secret", auth.Token{ID: "c-owner", Role: auth.RoleOwner, CreatedAt: fixedTime}, nil},
		{"missing workspace", testToken("d-orphan", "nope"), errs.ErrNotFound},
		{"duplicate id", testToken("a-global", "acme"), errs.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateToken(ctx, tc.tok)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("CreateToken: want %v, got %v", tc.want, err)
			}
			if tc.want != nil {
				return
			}
			got, err := s.GetToken(ctx, tc.tok.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.tok) {
				t.Errorf("GetToken = %+v, want %+v", got, tc.tok)
			}
			if !bytes.Equal(got.SecretHash, tc.tok.SecretHash) {
				t.Errorf("SecretHash = %x, want %x", got.SecretHash, tc.tok.SecretHash)
			}
		})
	}

	if _, err := s.GetToken(ctx, "d-orphan"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("token for a missing workspace was stored: %v", err)
	}
	if got, _ := s.GetToken(ctx, "a-global"); got.Workspace != "" {
		t.Errorf("duplicate CreateToken overwrote the token: %+v", got)
	}
	list, err := s.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tok := range list {
		ids = append(ids, tok.ID)
	}
	if want := []string{"a-global", "b-scoped", "c-owner"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ListTokens = %v, want %v (id order)", ids, want)
	}

	if err := s.DeleteToken(ctx, "b-scoped"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx, "b-scoped"); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("GetToken after delete: want ErrNotFound, got %v", err)
	}
	for _, id := range []string{"b-scoped", "nope"} {
		if err := s.DeleteToken(ctx, id); !errors.Is(err, errs.ErrNotFound) {
			t.Errorf("DeleteToken(%q): want ErrNotFound, got %v", id, err)
		}
	}
}

// removeRecordByHand deletes a workspace's record and write key from a closed data dir's system.db, leaving its
// file: the state an interrupted deletion leaves behind.
func removeRecordByHand(t *testing.T, dir, id string) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, systemFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketWorkspaces).Delete([]byte(id)); err != nil {
			return err
		}
		return tx.Bucket(bucketWriteKeys).Delete([]byte(testWorkspace(id).WriteKey))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func orphanedFiles(t *testing.T, dir, id string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, workspaceDir, id+".db.orphaned-*"))
	if err != nil {
		t.Fatal(err)
	}
	return matches
}

func TestCreateWorkspaceMovesOrphanedFileAside(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme")
	db, _ := s.Workspace("acme")
	if err := db.Update(ctx, incr("old-data")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	removeRecordByHand(t, dir, "acme")

	s2 := openTest(t, dir)
	if _, err := s2.Workspace("acme"); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("workspace without record was opened: %v", err)
	}
	if n := len(orphanedFiles(t, dir, "acme")); n != 0 {
		t.Fatalf("%d files moved aside before the id was reused", n)
	}
	mustCreateWorkspaces(t, s2, "acme")

	fresh, err := s2.Workspace("acme")
	if err != nil {
		t.Fatal(err)
	}
	_ = fresh.View(func(tx *bolt.Tx) error {
		if counter(tx, "old-data") != 0 || tx.Bucket(bucketTest) != nil {
			t.Error("new workspace inherited the orphaned file's data")
		}
		return nil
	})
	aside := orphanedFiles(t, dir, "acme")
	if len(aside) != 1 {
		t.Fatalf("files moved aside: %v, want exactly one", aside)
	}
	old := dumpBolt(t, aside[0])
	if old["test/old-data"] != "\x00\x00\x00\x00\x00\x00\x00\x01" || old["meta/workspace_id"] != "acme" {
		t.Errorf("moved-aside file lost the old data: %v", old)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	// The aside file is ignored on the next start; the new workspace is still empty.
	s3 := openTest(t, dir)
	db3, err := s3.Workspace("acme")
	if err != nil {
		t.Fatal(err)
	}
	_ = db3.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketTest) != nil {
			t.Error("after reopen the workspace holds the orphaned data")
		}
		return nil
	})
}

// An orphaned file is "never reused, never deleted": when the same id is orphaned and reused twice in quick
// succession, both old files are kept, each with its own data.
func TestCreateWorkspaceKeepsEveryOrphan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme")
	for round := 1; round <= 2; round++ {
		db, _ := s.Workspace("acme")
		if err := db.Update(ctx, incr(fmt.Sprintf("round-%d", round))); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		removeRecordByHand(t, dir, "acme")
		s = openTest(t, dir)
		mustCreateWorkspaces(t, s, "acme")
	}
	aside := orphanedFiles(t, dir, "acme")
	if len(aside) != 2 {
		t.Fatalf("files moved aside: %v, want 2", aside)
	}
	seen := map[string]bool{}
	for _, p := range aside {
		for k := range dumpBolt(t, p) {
			if strings.HasPrefix(k, "test/round-") {
				seen[k] = true
			}
		}
	}
	if !seen["test/round-1"] || !seen["test/round-2"] || len(seen) != 2 {
		t.Errorf("moved-aside files hold %v, want the data of both rounds, one each", seen)
	}
}

func TestHealthOnHealthyStore(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustCreateWorkspaces(t, s, "acme", "globex")
	got := s.Health(context.Background())
	want := map[string]error{"system": nil, "workspace:acme": nil, "workspace:globex": nil}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Health = %v, want %v", got, want)
	}
	var probe []byte
	_ = s.System().View(func(tx *bolt.Tx) error {
		probe = append(probe, tx.Bucket(bucketMeta).Get(keyHealthProbe)...)
		return nil
	})
	if _, err := time.Parse(time.RFC3339Nano, string(probe)); err != nil {
		t.Errorf("health probe not committed to meta/health_probe: %q (%v)", probe, err)
	}
}

func TestWorkspaceWritesDurableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme", "globex")
	want := map[string]uint64{"acme": 25, "globex": 7}
	for id, n := range want {
		db, err := s.Workspace(id)
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(0); i < n; i++ {
			if err := db.Update(ctx, incr("n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir)
	for id, n := range want {
		db, err := s2.Workspace(id)
		if err != nil {
			t.Fatal(err)
		}
		var got uint64
		_ = db.View(func(tx *bolt.Tx) error { got = counter(tx, "n"); return nil })
		if got != n {
			t.Errorf("workspace %s: counter %d after reopen, want %d", id, got, n)
		}
	}
}

// Workspace ids read back from system.db become file names: a crafted one must not reach the file system.
func TestOpenRefusesInvalidWorkspaceIDs(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if err := s.System().Update(context.Background(), func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWorkspaces).Put([]byte("../evil"), []byte(`{"id":"../evil"}`))
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Options{Dir: dir, LockTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "invalid workspace") {
		t.Fatalf("Open with a crafted workspace id: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "evil.db")); err == nil {
		t.Fatalf("a file was created outside the data dir")
	}
}
