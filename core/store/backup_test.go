package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketItems = []byte("items")
	bucketLoad  = []byte("load")
	keyCount    = []byte("count")
	itemValue   = bytes.Repeat([]byte("i"), 100)
)

// appendItem adds one item and sets load/count to the number of items, in the caller's transaction: in any
// committed state, count equals the number of items.
func appendItem(tx *bolt.Tx) error {
	items, err := tx.CreateBucketIfNotExists(bucketItems)
	if err != nil {
		return err
	}
	load, err := tx.CreateBucketIfNotExists(bucketLoad)
	if err != nil {
		return err
	}
	seq, err := items.NextSequence()
	if err != nil {
		return err
	}
	if err := items.Put(be64(seq), itemValue); err != nil {
		return err
	}
	var n uint64
	if v := load.Get(keyCount); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return putUint64(load, keyCount, n+1)
}

// loadState returns load/count and the number of items.
func loadState(tx *bolt.Tx) (count, items uint64) {
	if b := tx.Bucket(bucketLoad); b != nil {
		if v := b.Get(keyCount); len(v) == 8 {
			count = binary.BigEndian.Uint64(v)
		}
	}
	if b := tx.Bucket(bucketItems); b != nil {
		_ = b.ForEach(func(_, _ []byte) error { items++; return nil })
	}
	return count, items
}

func countsOf(t *testing.T, s *Store, ids []string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, id := range ids {
		db, err := s.Workspace(id)
		if err != nil {
			t.Fatal(err)
		}
		_ = db.View(func(tx *bolt.Tx) error { out[id], _ = loadState(tx); return nil })
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for an outcome
	}
}

func TestBackupUnderWriteLoadRestoresConsistentState(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir())
	ids := []string{"acme", "globex", "initech"}
	mustCreateWorkspaces(t, s, ids...)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	const writers = 4
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, id := range ids {
					db, err := s.Workspace(id)
					if err != nil {
						t.Error(err)
						return
					}
					if err := db.Update(ctx, appendItem); err != nil {
						t.Errorf("write to %s: %v", id, err)
						return
					}
				}
			}
		}()
	}
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriters()

	waitFor(t, "a first write in every workspace", func() bool {
		for _, n := range countsOf(t, s, ids) {
			if n == 0 {
				return false
			}
		}
		return true
	})
	var archives [2]bytes.Buffer
	var atBackup [2]map[string]uint64
	for i := range archives {
		if err := s.Backup(ctx, &archives[i]); err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		atBackup[i] = countsOf(t, s, ids)
		// Let the writers move on, so that the second backup is taken from a different state.
		waitFor(t, "more writes", func() bool {
			now := countsOf(t, s, ids)
			for _, id := range ids {
				if now[id] <= atBackup[i][id] {
					return false
				}
			}
			return true
		})
	}
	stopWriters()
	if t.Failed() {
		t.FailNow()
	}

	var restored [2]map[string]uint64
	for i := range archives {
		dir := t.TempDir()
		m, err := Restore(bytes.NewReader(archives[i].Bytes()), dir)
		if err != nil {
			t.Fatalf("restoring backup %d: %v", i, err)
		}
		if !reflect.DeepEqual(m.Workspaces, ids) || m.Format != 1 {
			t.Errorf("backup %d manifest = %+v, want format 1 and workspaces %v", i, m, ids)
		}
		r := openTest(t, dir)
		list, err := r.ListWorkspaces(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for j, w := range list {
			if j >= len(ids) || !reflect.DeepEqual(w, testWorkspace(ids[j])) {
				t.Errorf("backup %d: restored workspace %+v, want %+v", i, w, testWorkspace(ids[min(j, len(ids)-1)]))
			}
		}
		if len(list) != len(ids) {
			t.Errorf("backup %d: %d workspaces restored, want %d", i, len(list), len(ids))
		}
		restored[i] = map[string]uint64{}
		for _, id := range ids {
			db, err := r.Workspace(id)
			if err != nil {
				t.Fatalf("backup %d: %v", i, err)
			}
			_ = db.View(func(tx *bolt.Tx) error {
				count, items := loadState(tx)
				if count != items || count == 0 {
					t.Errorf("backup %d, workspace %s: count %d, items %d: want equal and > 0", i, id, count, items)
				}
				restored[i][id] = count
				return nil
			})
		}
		// Restored data still accepts writes.
		db, _ := r.Workspace(ids[0])
		if err := db.Update(ctx, appendItem); err != nil {
			t.Errorf("backup %d: write after restore: %v", i, err)
		}
	}
	for _, id := range ids {
		if restored[0][id] > atBackup[0][id] || restored[1][id] <= restored[0][id] {
			t.Errorf("workspace %s: counts %d then %d in the backups (%d after the first): want a state no later than the backup's end, and progress between backups",
				id, restored[0][id], restored[1][id], atBackup[0][id])
		}
	}
	t.Logf("counts in backups: %v, %v", restored[0], restored[1])
}

// fileBytes reads every regular file under dir, keyed by path relative to dir.
func fileBytes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.Type().IsRegular() {
			out[rel] = "<" + d.Type().String() + ">"
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// populatedDataDir returns a closed data dir with two workspaces, tokens and data in each workspace file.
func populatedDataDir(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir)
	mustCreateWorkspaces(t, s, "acme", "globex")
	for _, tok := range []string{"acme", ""} {
		if err := s.CreateToken(ctx, testToken("tok-"+tok, tok)); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{"acme", "globex"} {
		db, _ := s.Workspace(id)
		for j := 0; j < 10*(i+1); j++ {
			if err := db.Update(ctx, appendItem); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBackupDirOfClosedDataDirRestoresIdentically(t *testing.T) {
	ctx := context.Background()
	dir := populatedDataDir(t)
	filesBefore := fileBytes(t, dir)
	want := dumpDataDir(t, dir)

	var archive bytes.Buffer
	if err := BackupDir(ctx, dir, 100*time.Millisecond, &archive); err != nil {
		t.Fatalf("BackupDir: %v", err)
	}
	if after := fileBytes(t, dir); !reflect.DeepEqual(after, filesBefore) {
		t.Error("BackupDir changed the data dir")
	}

	restoredDir := filepath.Join(t.TempDir(), "restored")
	m, err := Restore(&archive, restoredDir)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !reflect.DeepEqual(m.Workspaces, []string{"acme", "globex"}) || m.Format != 1 || m.CreatedAt.IsZero() {
		t.Errorf("manifest = %+v", m)
	}
	if got := dumpDataDir(t, restoredDir); !reflect.DeepEqual(got, want) {
		t.Errorf("restored data differs: %v", diffDumps(want, got))
	}
	s := openTest(t, restoredDir)
	if list, _ := s.ListWorkspaces(ctx, "", 0); len(list) != 2 {
		t.Errorf("restored data dir lists %d workspaces, want 2", len(list))
	}
}

func TestBackupDirFails(t *testing.T) {
	ctx := context.Background()
	t.Run("data dir in use", func(t *testing.T) {
		dir := t.TempDir()
		s := openTest(t, dir)
		mustCreateWorkspaces(t, s, "acme")
		err := BackupDir(ctx, dir, 100*time.Millisecond, io.Discard)
		if !errors.Is(err, ErrInUse) {
			t.Fatalf("want ErrInUse, got %v", err)
		}
	})
	t.Run("no data", func(t *testing.T) {
		dir := t.TempDir()
		err := BackupDir(ctx, dir, 100*time.Millisecond, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "no crosscast data") {
			t.Fatalf("want a no-data error, got %v", err)
		}
		if files := fileBytes(t, dir); len(files) != 0 {
			t.Errorf("BackupDir created files: %v", files)
		}
	})
}

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

func readEntries(t *testing.T, archive []byte) []tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{*h, data})
	}
}

func buildArchive(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg || h.Typeflag == 0 {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func regularEntry(name string, data []byte) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: fixedTime}, data}
}

// insertAfterSystem puts e right after system.db, so that Restore has already written a file when it meets e.
func insertAfterSystem(entries []tarEntry, e tarEntry) []tarEntry {
	var out []tarEntry
	for _, x := range entries {
		out = append(out, x)
		if x.hdr.Name == systemFile {
			out = append(out, e)
		}
	}
	return out
}

func withoutEntry(entries []tarEntry, name string) []tarEntry {
	var out []tarEntry
	for _, x := range entries {
		if x.hdr.Name != name {
			out = append(out, x)
		}
	}
	return out
}

func withManifest(t *testing.T, entries []tarEntry, edit func(*Manifest)) []tarEntry {
	t.Helper()
	var out []tarEntry
	for _, x := range entries {
		if x.hdr.Name == manifestName {
			var m Manifest
			if err := json.Unmarshal(x.data, &m); err != nil {
				t.Fatal(err)
			}
			edit(&m)
			data, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			x.data = data
		}
		out = append(out, x)
	}
	return out
}

func TestRestoreRefusesBadArchivesAndLeavesNothing(t *testing.T) {
	ctx := context.Background()
	src := openTest(t, t.TempDir())
	mustCreateWorkspaces(t, src, "acme", "globex")
	var good bytes.Buffer
	if err := src.Backup(ctx, &good); err != nil {
		t.Fatal(err)
	}
	entries := readEntries(t, good.Bytes())
	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
	}
	if want := []string{systemFile, "workspaces/acme.db", "workspaces/globex.db", manifestName}; !reflect.DeepEqual(names, want) {
		t.Fatalf("archive entries %v, want %v", names, want)
	}

	for _, tc := range []struct {
		name    string
		archive func(outer string) []byte
		wantErr string // "" means Restore must succeed
	}{
		{"control: rebuilt archive restores", func(string) []byte { return buildArchive(t, entries) }, ""},
		{"truncated", func(string) []byte { return good.Bytes()[:good.Len()/2] }, "EOF"},
		{"not gzip", func(string) []byte { return []byte("system.db\x00hello") }, "not a gzip archive"},
		{"parent dir entry", func(string) []byte {
			return buildArchive(t, insertAfterSystem(entries, regularEntry("../evil.db", []byte("evil"))))
		}, "unexpected entry"},
		{"escape through workspaces", func(string) []byte {
			return buildArchive(t, insertAfterSystem(entries, regularEntry("workspaces/../../x.db", []byte("evil"))))
		}, "unexpected entry"},
		{"absolute path", func(outer string) []byte {
			return buildArchive(t, insertAfterSystem(entries, regularEntry(filepath.Join(outer, "abs.db"), []byte("evil"))))
		}, "unexpected entry"},
		{"symlink entry", func(outer string) []byte {
			link := tarEntry{hdr: tar.Header{Name: "workspaces/zzz.db", Typeflag: tar.TypeSymlink, Linkname: filepath.Join(outer, "outside.db"), Mode: 0o600}}
			return buildArchive(t, insertAfterSystem(entries, link))
		}, "unexpected entry"},
		{"symlink in place of system.db", func(outer string) []byte {
			link := tarEntry{hdr: tar.Header{Name: systemFile, Typeflag: tar.TypeSymlink, Linkname: "../outside.db", Mode: 0o600}}
			return buildArchive(t, append([]tarEntry{link}, withoutEntry(entries, systemFile)...))
		}, "unexpected entry"},
		{"hard link entry", func(string) []byte {
			link := tarEntry{hdr: tar.Header{Name: "workspaces/zzz.db", Typeflag: tar.TypeLink, Linkname: systemFile, Mode: 0o600}}
			return buildArchive(t, insertAfterSystem(entries, link))
		}, "unexpected entry"},
		{"no manifest", func(string) []byte { return buildArchive(t, withoutEntry(entries, manifestName)) }, "backup.json"},
		{"manifest lists a workspace without file", func(string) []byte {
			return buildArchive(t, withManifest(t, entries, func(m *Manifest) { m.Workspaces = append(m.Workspaces, "ghost") }))
		}, "ghost"},
		{"listed workspace's file missing", func(string) []byte {
			return buildArchive(t, withoutEntry(entries, "workspaces/globex.db"))
		}, "globex.db"},
		{"workspace file under another id", func(string) []byte {
			var out []tarEntry
			for _, e := range withoutEntry(entries, "workspaces/globex.db") {
				if e.hdr.Name == "workspaces/acme.db" {
					out = append(out, e)
					e.hdr.Name = "workspaces/globex.db"
				}
				out = append(out, e)
			}
			return buildArchive(t, out)
		}, "not the workspace file"},
		// Restore promises that every file it restores passes the consistency check, not only the files the
		// manifest lists: a corrupt file the manifest does not list would otherwise be restored and then fail Open
		// (system.db lists the workspace).
		{"corrupt workspace file the manifest does not list", func(string) []byte {
			var out []tarEntry
			for _, e := range withManifest(t, entries, func(m *Manifest) { m.Workspaces = []string{"acme"} }) {
				if e.hdr.Name == "workspaces/globex.db" {
					e.data = bytes.Repeat([]byte{0xAB}, len(e.data))
				}
				out = append(out, e)
			}
			return buildArchive(t, out)
		}, "globex"},
		// system.db lists globex but neither the manifest nor the archive has its file: a restore reported as
		// verified would start with an empty globex (Open creates the missing file), silently losing its data.
		{"workspace of system.db missing from manifest and archive", func(string) []byte {
			return buildArchive(t, withoutEntry(withManifest(t, entries, func(m *Manifest) { m.Workspaces = []string{"acme"} }), "workspaces/globex.db"))
		}, "globex"},
		{"system.db that is not a bbolt file", func(string) []byte {
			var out []tarEntry
			for _, e := range entries {
				if e.hdr.Name == systemFile {
					e.data = bytes.Repeat([]byte{0xAB}, len(e.data))
				}
				out = append(out, e)
			}
			return buildArchive(t, out)
		}, "system.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outer := t.TempDir()
			dir := filepath.Join(outer, "data", "restore")
			_, err := Restore(bytes.NewReader(tc.archive(outer)), dir)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Restore: %v", err)
				}
				if got := dumpDataDir(t, dir); len(got) == 0 {
					t.Error("nothing restored")
				}
				return
			}
			if err == nil {
				// Show what the "verified" result does to the server.
				s, oerr := Open(context.Background(), Options{Dir: dir, LockTimeout: 100 * time.Millisecond, Logger: testLogger(t)})
				if oerr == nil {
					list, _ := s.ListWorkspaces(context.Background(), "", 0)
					oerr = fmt.Errorf("Open succeeded with workspaces %v", workspaceIDsOf(list))
					_ = s.Close()
				}
				t.Fatalf("Restore succeeded; then Open of the restored dir: %v", oerr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q should contain %q", err, tc.wantErr)
			}
			if files := fileBytes(t, outer); len(files) != 0 {
				var left []string
				for f := range files {
					left = append(left, f)
				}
				t.Errorf("failed Restore left files behind: %v", left)
			}
		})
	}

	t.Run("data dir already holds system.db", func(t *testing.T) {
		dir := populatedDataDir(t)
		before := fileBytes(t, dir)
		_, err := Restore(bytes.NewReader(good.Bytes()), dir)
		if err == nil || !strings.Contains(err.Error(), "already holds crosscast data") {
			t.Fatalf("want a refusal, got %v", err)
		}
		if after := fileBytes(t, dir); !reflect.DeepEqual(after, before) {
			t.Error("refused Restore changed the data dir")
		}
	})
}
