package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Options configures Open. Zero CommitMaxBatch, LockTimeout, Logger and Metrics take defaults; Fsync has no default
// (false means no fsync), so callers set it from config.Storage.Fsync, which defaults to true.
type Options struct {
	Dir            string
	Fsync          bool
	CommitMaxBatch int
	CommitMaxDelay time.Duration
	LockTimeout    time.Duration
	Logger         hclog.Logger
	// Metrics receives store commit latency and batch size; nil uses a private registry.
	Metrics *metrics.Registry
}

func (o *Options) defaults() {
	if o.CommitMaxBatch <= 0 {
		o.CommitMaxBatch = 1000
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
}

// Store is the data dir: the system file and every workspace file.
type Store struct {
	opts   Options
	log    hclog.Logger
	system *DB

	commitSeconds *metrics.HistogramVec
	batchSize     *metrics.HistogramVec

	// lifecycle serialises creating and deleting workspace files with each other and with backups, so a backup
	// never misses a file its system snapshot lists. Lookups only take mu, briefly.
	lifecycle  sync.Mutex
	mu         sync.RWMutex
	workspaces map[string]*DB

	probeMu  sync.Mutex
	probeAt  time.Time
	probed   map[string]error
	probeTTL time.Duration
}

const systemFile = "system.db"
const workspaceDir = "workspaces"

// Open opens the data dir, creating it if needed, runs migrations and opens every workspace file. A data dir held by
// another process fails with an error that says so; a data dir that cannot be created or written fails with the
// operating system's reason.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts.defaults()
	if err := os.MkdirAll(filepath.Join(opts.Dir, workspaceDir), 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w", opts.Dir, err)
	}
	s := &Store{
		opts: opts, log: opts.Logger.Named("store"), workspaces: map[string]*DB{}, probeTTL: time.Second,
		commitSeconds: opts.Metrics.Histogram("crosscast_store_commit_seconds",
			"Time to run and commit one group-commit transaction (including fsync).", metrics.LatencyBuckets, "file"),
		batchSize: opts.Metrics.Histogram("crosscast_store_commit_writes",
			"Writes per group-commit transaction.", []float64{1, 2, 5, 10, 50, 100, 500, 1000, 5000}, "file"),
	}
	opts.Metrics.GaugeFunc("crosscast_store_commit_queue",
		"Writes waiting for the group-commit writer, over every data file.", s.queueDepth)
	sys, err := s.openDB(filepath.Join(opts.Dir, systemFile), kindSystem, "", systemMigrations())
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("data dir %s is in use by another crosscast process (waited %s for its lock)", opts.Dir, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", filepath.Join(opts.Dir, systemFile), err)
	}
	s.system = sys
	ids, err := s.workspaceIDs()
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			_ = s.Close()
			return nil, err
		}
		db, err := s.openDB(s.workspacePath(id), kindWorkspace, id, workspaceMigrations())
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("opening workspace %q: %w", id, err)
		}
		s.workspaces[id] = db
	}
	s.log.Info("store open", "dir", opts.Dir, "workspaces", len(ids), "fsync", opts.Fsync)
	return s, nil
}

func (s *Store) openDB(path, kind, id string, ms []migration) (*DB, error) {
	b, err := openBolt(path, s.opts.LockTimeout, false, s.opts.Fsync)
	if err != nil {
		return nil, err
	}
	if err := migrate(b, kind, id, ms); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("migrating %s: %w", path, err)
	}
	return &DB{
		path: path,
		bolt: b,
		c: newCommitter(b, s.opts.CommitMaxBatch, s.opts.CommitMaxDelay,
			s.commitSeconds.With(kind), s.batchSize.With(kind)),
	}, nil
}

func (s *Store) workspacePath(id string) string {
	return filepath.Join(s.opts.Dir, workspaceDir, id+".db")
}

func (s *Store) workspaceIDs() ([]string, error) {
	var ids []string
	err := s.system.View(func(tx *bolt.Tx) error { ids, _ = listedWorkspaces(tx); return nil })
	if err != nil {
		return nil, err
	}
	return ids, checkIDs(ids)
}

// listedWorkspaces returns the workspace ids system.db lists, in order; false if it has no workspaces bucket.
func listedWorkspaces(tx *bolt.Tx) ([]string, bool) {
	b := tx.Bucket(bucketWorkspaces)
	if b == nil {
		return nil, false
	}
	var ids []string
	_ = b.ForEach(func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	})
	return ids, true
}

// checkIDs refuses ids that are not valid workspace ids: they become file names, and a crafted system.db (from a
// restored archive, say) must not point outside the data dir.
func checkIDs(ids []string) error {
	for _, id := range ids {
		if err := workspaces.ValidateID(id); err != nil {
			return fmt.Errorf("system.db lists an invalid workspace: %w", err)
		}
	}
	return nil
}

func (s *Store) queueDepth() float64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := int64(0)
	if s.system != nil {
		n += s.system.c.waiting.Load()
	}
	for _, db := range s.workspaces {
		n += db.c.waiting.Load()
	}
	return float64(n)
}

// System is the system file.
func (s *Store) System() *DB { return s.system }

// Workspace returns the open file of workspace id, or errs.ErrNotFound.
func (s *Store) Workspace(id string) (*DB, error) {
	s.mu.RLock()
	db, ok := s.workspaces[id]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("workspace %q: %w", id, errs.ErrNotFound)
	}
	return db, nil
}

// Dir is the data dir.
func (s *Store) Dir() string { return s.opts.Dir }

// Health reports whether the store accepts writes. It commits a probe to the system file, and to every workspace
// file whose last commit failed (so a file recovers its health once writes work again, without waiting for real
// traffic); other workspace files report their last commit. Probes run at most once per second; later calls
// reuse the result. Keys are "system" and "workspace:<id>"; a nil value means healthy.
func (s *Store) Health(ctx context.Context) map[string]error {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if s.probed != nil && time.Since(s.probeAt) < s.probeTTL {
		return s.probed
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := map[string]error{"system": probe(ctx, s.system)}
	s.mu.RLock()
	dbs := make(map[string]*DB, len(s.workspaces))
	for id, db := range s.workspaces {
		dbs[id] = db
	}
	s.mu.RUnlock()
	for id, db := range dbs {
		err := db.c.health()
		if err != nil {
			err = probe(ctx, db)
		}
		out["workspace:"+id] = err
	}
	s.probed, s.probeAt = out, time.Now()
	return out
}

// probe commits a small write to db's meta bucket through its group commit.
func probe(ctx context.Context, db *DB) error {
	now := time.Now().UTC()
	return db.Update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyHealthProbe, []byte(now.Format(time.RFC3339Nano)))
	})
}

// createWorkspaceFile creates and opens the file of a new workspace. A file left on disk by an interrupted
// deletion is moved aside (never reused, never deleted) so that a new workspace never inherits old data.
func (s *Store) createWorkspaceFile(id string) (*DB, error) {
	path := s.workspacePath(id)
	if _, err := os.Stat(path); err == nil {
		aside := fmt.Sprintf("%s.orphaned-%d", path, time.Now().UnixNano())
		if err := os.Rename(path, aside); err != nil {
			return nil, fmt.Errorf("moving aside old file of workspace %q: %w", id, err)
		}
		s.log.Warn("moved aside a workspace file that no workspace owned", "file", aside)
	}
	return s.openDB(path, kindWorkspace, id, workspaceMigrations())
}

// dropWorkspaceFile closes and removes the file of a deleted workspace.
func (s *Store) dropWorkspaceFile(id string) {
	s.mu.Lock()
	db := s.workspaces[id]
	delete(s.workspaces, id)
	s.mu.Unlock()
	if db == nil {
		return
	}
	if err := db.close(); err != nil {
		s.log.Error("closing deleted workspace file", "workspace", id, "error", err)
	}
	if err := removeFile(db.path); err != nil {
		s.log.Error("removing deleted workspace file; it will be moved aside if the id is reused", "workspace", id, "error", err)
	}
}

// Close flushes pending group commits and closes every file. It is safe to call more than once.
func (s *Store) Close() error {
	// A workspace being created or deleted finishes first, so no file is left open behind Close.
	s.lifecycle.Lock()
	defer s.lifecycle.Unlock()
	s.mu.Lock()
	dbs := s.workspaces
	s.workspaces = map[string]*DB{}
	s.mu.Unlock()
	ids := make([]string, 0, len(dbs))
	for id := range dbs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var errsOut []string
	for _, id := range ids {
		if err := dbs[id].close(); err != nil {
			errsOut = append(errsOut, fmt.Sprintf("workspace %q: %v", id, err))
		}
	}
	if s.system != nil {
		if err := s.system.close(); err != nil && !errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			errsOut = append(errsOut, fmt.Sprintf("system: %v", err))
		}
	}
	if len(errsOut) > 0 {
		return fmt.Errorf("closing store: %s", strings.Join(errsOut, "; "))
	}
	return nil
}
