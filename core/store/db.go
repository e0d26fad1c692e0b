package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrInUse means another process holds the data dir.
var ErrInUse = errors.New("in use by another crosscast process")

// DB is one bbolt file with its group-commit writer.
type DB struct {
	path string
	bolt *bolt.DB
	c    *committer
}

// Update runs fn in a group commit and returns once it is durable (see the package doc). fn may run more than once
// and must only touch tx.
func (d *DB) Update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return d.c.write(ctx, fn)
}

// UpdateEach runs each function as its own atomic write (one that fails writes nothing and leaves the others
// alone), in as few group commits as possible, and returns one outcome per function once all are durable.
func (d *DB) UpdateEach(ctx context.Context, fns []func(tx *bolt.Tx) error) []error {
	return d.c.writeEach(ctx, fns)
}

// View runs fn in a read-only transaction over a consistent snapshot. A file closed meanwhile (shutdown, a
// deleted workspace) gives ErrClosed.
func (d *DB) View(fn func(tx *bolt.Tx) error) error {
	err := d.bolt.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Path is the file's location.
func (d *DB) Path() string { return d.path }

// close stops the writer after the writes in flight and closes the file.
func (d *DB) close() error {
	d.c.close()
	return d.bolt.Close()
}

// openBolt opens (creating if needed) a bbolt file, failing after lockTimeout with ErrInUse when another process
// holds it.
func openBolt(path string, lockTimeout time.Duration, readOnly bool, fsync bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      lockTimeout,
		ReadOnly:     readOnly,
		NoSync:       !fsync,
		FreelistType: bolt.FreelistMapType,
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, ErrInUse
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("%s is not writable: %w", path, err)
	case err != nil:
		return nil, err
	}
	return db, nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
