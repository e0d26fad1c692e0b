package store

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/workspaces"
	bolt "go.etcd.io/bbolt"
)

// Manifest describes a backup archive; it is the archive's last entry, backup.json.
type Manifest struct {
	Format     int       `json:"format"`
	CreatedAt  time.Time `json:"created_at"`
	Workspaces []string  `json:"workspaces"`
}

const manifestName = "backup.json"

// Backup writes a consistent snapshot of the whole data dir to w as a gzip-compressed tar holding system.db,
// workspaces/<id>.db for every workspace system.db lists, and backup.json. Each file is copied inside one read
// transaction (bbolt's Tx.WriteTo), so writes continue while it runs and each file in the archive is exactly a
// committed state; workspaces cannot be created or deleted meanwhile, so the files agree with each other.
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	return writeArchive(ctx, w, s.system.bolt, func(id string) (*bolt.DB, error) {
		db, err := s.Workspace(id)
		if err != nil {
			return nil, err
		}
		return db.bolt, nil
	})
}

// BackupDir is Backup for a data dir no server is running on (the command-line backup). It opens the files
// read-only and changes nothing. If a server holds the dir it fails with ErrInUse: back up through the server's API
// instead.
func BackupDir(ctx context.Context, dir string, lockTimeout time.Duration, w io.Writer) error {
	sysPath := filepath.Join(dir, systemFile)
	if _, err := os.Stat(sysPath); err != nil {
		return fmt.Errorf("no crosscast data in %s: %w", dir, err)
	}
	sys, err := openBolt(sysPath, lockTimeout, true, false)
	if err != nil {
		return fmt.Errorf("opening %s: %w", sysPath, err)
	}
	defer sys.Close()
	var opened []*bolt.DB
	defer func() {
		for _, db := range opened {
			_ = db.Close()
		}
	}()
	return writeArchive(ctx, w, sys, func(id string) (*bolt.DB, error) {
		db, err := openBolt(filepath.Join(dir, workspaceDir, id+".db"), lockTimeout, true, false)
		if err != nil {
			return nil, err
		}
		opened = append(opened, db)
		return db, nil
	})
}

func writeArchive(ctx context.Context, w io.Writer, system *bolt.DB, workspace func(id string) (*bolt.DB, error)) error {
	// BestSpeed: a backup holds the store's lifecycle lock while it runs, so speed matters more than size.
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	m := Manifest{Format: 1, CreatedAt: time.Now().UTC()}
	err = system.View(func(tx *bolt.Tx) error {
		m.Workspaces, _ = listedWorkspaces(tx)
		if err := checkIDs(m.Workspaces); err != nil {
			return err
		}
		return writeTx(tw, systemFile, tx)
	})
	if err != nil {
		return fmt.Errorf("backing up system.db: %w", err)
	}
	for _, id := range m.Workspaces {
		if err := ctx.Err(); err != nil {
			return err
		}
		db, err := workspace(id)
		if err != nil {
			return fmt.Errorf("backing up workspace %q: %w", id, err)
		}
		if err := db.View(func(tx *bolt.Tx) error { return writeTx(tw, workspaceDir+"/"+id+".db", tx) }); err != nil {
			return fmt.Errorf("backing up workspace %q: %w", id, err)
		}
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(data)), ModTime: m.CreatedAt}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeTx(tw *tar.Writer, name string, tx *bolt.Tx) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: tx.Size(), ModTime: time.Now().UTC()}); err != nil {
		return err
	}
	_, err := tx.WriteTo(tw)
	return err
}

// Restore unpacks a backup archive into dir, which must not hold a data dir already, and verifies the result: the
// manifest is present and agrees with the restored system.db, every workspace system.db lists has its file, every
// file passes bbolt's consistency check and belongs where it is, and nothing else was unpacked. On any error, the
// files it wrote are removed again.
func Restore(r io.Reader, dir string) (Manifest, error) {
	if _, err := os.Stat(filepath.Join(dir, systemFile)); err == nil {
		return Manifest{}, fmt.Errorf("%s already holds crosscast data; restore into an empty or new directory", dir)
	}
	created := missingDirs(dir, filepath.Join(dir, workspaceDir))
	if err := os.MkdirAll(filepath.Join(dir, workspaceDir), 0o700); err != nil {
		return Manifest{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	var written []string
	m, err := extract(r, dir, &written)
	if err == nil {
		err = verify(dir, m, written)
	}
	if err != nil {
		for _, f := range written {
			_ = os.Remove(f)
		}
		for i := len(created) - 1; i >= 0; i-- {
			_ = os.Remove(created[i]) // only removes it if still empty
		}
		return Manifest{}, err
	}
	return m, nil
}

// missingDirs returns those of dirs (parents first) that do not exist yet.
func missingDirs(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			out = append(out, d)
		}
	}
	return out
}

func extract(r io.Reader, dir string, written *[]string) (Manifest, error) {
	var m Manifest
	gz, err := gzip.NewReader(r)
	if err != nil {
		return m, fmt.Errorf("reading backup: not a gzip archive: %w", err)
	}
	tr := tar.NewReader(gz)
	seenManifest := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("reading backup (truncated or corrupt?): %w", err)
		}
		if h.Name == manifestName {
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
				return m, fmt.Errorf("reading %s: %w", manifestName, err)
			}
			seenManifest = true
			continue
		}
		if !validEntry(h.Name) || h.Typeflag != tar.TypeReg {
			return m, fmt.Errorf("backup holds an unexpected entry %q", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return m, fmt.Errorf("restoring %s: %w", h.Name, err)
		}
		*written = append(*written, dst)
		_, err = io.Copy(f, tr)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return m, fmt.Errorf("restoring %s: %w", h.Name, err)
		}
	}
	if !seenManifest {
		return m, fmt.Errorf("backup has no %s: it is incomplete", manifestName)
	}
	return m, nil
}

// validEntry accepts only the names a backup contains, so an archive cannot write outside the data dir.
func validEntry(name string) bool {
	if name == systemFile {
		return true
	}
	dir, file := path.Split(name)
	id, ok := strings.CutSuffix(file, ".db")
	return dir == workspaceDir+"/" && ok && workspaces.ValidateID(id) == nil
}

// verify checks the restored files against the restored system.db, which is what the server will trust: every
// workspace it lists must have a sound file that belongs to it, the manifest must list the same workspaces, and no
// workspace file may be there that system.db does not list.
func verify(dir string, m Manifest, written []string) error {
	check := func(p, kind, id string, fn func(tx *bolt.Tx) error) error {
		db, err := openBolt(p, time.Second, true, false)
		if err != nil {
			return fmt.Errorf("verifying %s: %w", p, err)
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			var first error
			for err := range tx.Check() { // drain: the checker goroutine blocks until read
				if first == nil {
					first = fmt.Errorf("verifying %s: %w", p, err)
				}
			}
			if first != nil {
				return first
			}
			meta := tx.Bucket(bucketMeta)
			if meta == nil || string(meta.Get(keyKind)) != kind || (id != "" && string(meta.Get(keyWorkspaceID)) != id) {
				return fmt.Errorf("verifying %s: not the %s file it claims to be", p, kind)
			}
			if fn != nil {
				return fn(tx)
			}
			return nil
		})
	}
	var listed []string
	err := check(filepath.Join(dir, systemFile), kindSystem, "", func(tx *bolt.Tx) error {
		ids, ok := listedWorkspaces(tx)
		if !ok {
			return fmt.Errorf("verifying system.db: it has no workspaces bucket")
		}
		listed = ids
		return checkIDs(ids)
	})
	if err != nil {
		return err
	}
	if strings.Join(listed, ",") != strings.Join(sorted(m.Workspaces), ",") {
		return fmt.Errorf("backup is inconsistent: %s lists workspaces %v but system.db holds %v", manifestName, m.Workspaces, listed)
	}
	want := map[string]bool{filepath.Join(dir, systemFile): true}
	for _, id := range listed {
		p := filepath.Join(dir, workspaceDir, id+".db")
		want[p] = true
		if err := check(p, kindWorkspace, id, nil); err != nil {
			return err
		}
	}
	for _, p := range written {
		if !want[p] {
			return fmt.Errorf("backup holds %s, which no workspace in system.db owns", filepath.Base(p))
		}
	}
	return nil
}

func sorted(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

// SpoolBackup writes a Backup into an anonymous temporary file in the data dir and returns it positioned at its
// start, with its size. Serving a backup from the spool means a slow or stalled client never holds the store's
// locks or read transactions: those last only as long as the local write. The file has no name (it is unlinked at
// once), so closing it frees the space even after a crash.
func (s *Store) SpoolBackup(ctx context.Context) (*os.File, int64, error) {
	f, err := os.CreateTemp(s.opts.Dir, ".backup-*.tmp")
	if err != nil {
		return nil, 0, fmt.Errorf("creating backup spool: %w", err)
	}
	_ = os.Remove(f.Name())
	if err := s.Backup(ctx, f); err != nil {
		f.Close()
		return nil, 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("rewinding backup spool: %w", err)
	}
	return f, size, nil
}
