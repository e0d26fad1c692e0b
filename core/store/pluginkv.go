package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/crosscast/crosscast/core/errs"
	bolt "go.etcd.io/bbolt"
)

// Plugin key-value spaces live in the workspace file, under
//
//	plugin_kv/<plugin>/data/<key> -> value
//	plugin_kv/<plugin>/meta/usage -> uint64 big-endian: len(key)+len(value) summed over data
//	plugin_kv/<plugin>/meta/keys  -> uint64 big-endian: number of keys in data
//
// The buckets are created by the first write of a plugin in a workspace (no migration); reads never create them.
var (
	// bucketPluginKV is the top bucket of a workspace file holding one bucket per plugin name.
	bucketPluginKV = []byte("plugin_kv")
	// bucketPluginKVData is the bucket of a plugin's space holding its keys and values.
	bucketPluginKVData = []byte("data")
	// bucketPluginKVMeta is the bucket of a plugin's space holding its usage and key count.
	bucketPluginKVMeta = []byte("meta")
	// keyPluginKVUsage is, in a space's meta bucket, the bytes the space holds (len(key)+len(value) summed), as a
	// uint64 big-endian.
	keyPluginKVUsage = []byte("usage")
	// keyPluginKVKeys is, in a space's meta bucket, the number of keys the space holds, as a uint64 big-endian.
	keyPluginKVKeys = []byte("keys")
)

// Limits of one entry of a plugin's key-value space.
const (
	// MaxPluginKVKey is the longest key, in bytes.
	MaxPluginKVKey = 1024
	// MaxPluginKVValue is the largest value, in bytes.
	MaxPluginKVValue = 8 << 20
	// maxPluginName is the longest plugin name, in bytes, that can own a space.
	maxPluginName = 64
)

// errPluginKVReadOnly is returned by writes in a transaction from ViewPluginKV.
var errPluginKVReadOnly = errors.New("plugin kv: writing in a read-only transaction")

// errPluginKVDone is returned by a PluginKVTx used after the function it was given to returned.
var errPluginKVDone = errors.New("plugin kv: transaction used after it ended")

// PluginKVTx is one transaction on one plugin's key-value space in one workspace. It is valid only during the
// function it is given to, and is not safe for concurrent use.
type PluginKVTx struct {
	tx       *bolt.Tx
	writable bool
	done     bool
	plugin   []byte

	// space, data and meta are nil while the space does not exist in the file; the first Put creates them.
	space, data, meta *bolt.Bucket

	// usage and keys are the space's current totals; storedUsage and storedKeys what meta held when the
	// transaction began. meta is rewritten at the end only when they differ.
	usage, keys             int64
	storedUsage, storedKeys int64

	// writes counts Puts and Deletes, so that Scan knows to reposition its cursor after its callback wrote.
	writes uint64
}

// validatePluginName reports whether name can own a key-value space: 1 to 64 bytes, with no "/" and no NUL.
func validatePluginName(name string) error {
	switch {
	case name == "":
		return errs.Invalid("plugin", "must not be empty")
	case len(name) > maxPluginName:
		return errs.Invalid("plugin", "is %d bytes, over the limit of %d", len(name), maxPluginName)
	case strings.ContainsAny(name, "/\x00"):
		return errs.Invalid("plugin", "must not contain \"/\" or NUL")
	}
	return nil
}

// newPluginKVTx opens plugin's space in tx, without creating anything.
func newPluginKVTx(tx *bolt.Tx, plugin string) (*PluginKVTx, error) {
	t := &PluginKVTx{tx: tx, writable: tx.Writable(), plugin: []byte(plugin)}
	if top := tx.Bucket(bucketPluginKV); top != nil {
		t.space = top.Bucket(t.plugin)
	}
	if t.space == nil {
		return t, nil
	}
	t.data, t.meta = t.space.Bucket(bucketPluginKVData), t.space.Bucket(bucketPluginKVMeta)
	if t.data == nil || t.meta == nil {
		return nil, fmt.Errorf("reading plugin kv space of %q: data or meta bucket missing", plugin)
	}
	var err error
	if t.usage, err = readCounter(t.meta, keyPluginKVUsage); err != nil {
		return nil, fmt.Errorf("reading plugin kv space of %q: %w", plugin, err)
	}
	if t.keys, err = readCounter(t.meta, keyPluginKVKeys); err != nil {
		return nil, fmt.Errorf("reading plugin kv space of %q: %w", plugin, err)
	}
	t.storedUsage, t.storedKeys = t.usage, t.keys
	return t, nil
}

// readCounter reads a uint64 big-endian counter of a meta bucket; absent reads as 0.
func readCounter(b *bolt.Bucket, key []byte) (int64, error) {
	v := b.Get(key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta/%s is %d bytes, not 8", key, len(v))
	}
	n := binary.BigEndian.Uint64(v)
	if n > 1<<62 {
		return 0, fmt.Errorf("meta/%s holds an impossible %d", key, n)
	}
	return int64(n), nil
}

// create makes the space's buckets if they do not exist yet.
func (t *PluginKVTx) create() error {
	if t.space != nil {
		return nil
	}
	top, err := t.tx.CreateBucketIfNotExists(bucketPluginKV)
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucketPluginKV, err)
	}
	space, err := top.CreateBucketIfNotExists(t.plugin)
	if err != nil {
		return fmt.Errorf("creating plugin kv space of %q: %w", t.plugin, err)
	}
	data, err := space.CreateBucketIfNotExists(bucketPluginKVData)
	if err != nil {
		return fmt.Errorf("creating plugin kv space of %q: %w", t.plugin, err)
	}
	meta, err := space.CreateBucketIfNotExists(bucketPluginKVMeta)
	if err != nil {
		return fmt.Errorf("creating plugin kv space of %q: %w", t.plugin, err)
	}
	t.space, t.data, t.meta = space, data, meta
	return nil
}

// finish writes the space's usage and key count if this transaction changed them.
func (t *PluginKVTx) finish() error {
	if t.usage == t.storedUsage && t.keys == t.storedKeys {
		return nil
	}
	if err := putUint64(t.meta, keyPluginKVUsage, uint64(t.usage)); err != nil {
		return fmt.Errorf("writing plugin kv usage of %q: %w", t.plugin, err)
	}
	if err := putUint64(t.meta, keyPluginKVKeys, uint64(t.keys)); err != nil {
		return fmt.Errorf("writing plugin kv key count of %q: %w", t.plugin, err)
	}
	t.storedUsage, t.storedKeys = t.usage, t.keys
	return nil
}

// Get returns a copy of key's value and whether it exists (it sees this tx's earlier writes).
func (t *PluginKVTx) Get(key string) ([]byte, bool) {
	if t.done || t.data == nil || key == "" || len(key) > MaxPluginKVKey {
		return nil, false
	}
	v := t.data.Get([]byte(key))
	if v == nil {
		return nil, false
	}
	return bytes.Clone(v), true
}

// checkWrite refuses writes in a read-only or ended transaction and keys the space cannot hold.
func (t *PluginKVTx) checkWrite(key string) error {
	switch {
	case t.done:
		return errPluginKVDone
	case !t.writable:
		return errPluginKVReadOnly
	case key == "":
		return errs.Invalid("key", "must not be empty")
	case len(key) > MaxPluginKVKey:
		return errs.Invalid("key", "is %d bytes, over the limit of %d", len(key), MaxPluginKVKey)
	}
	return nil
}

// Put sets key to value. It fails with a *errs.ValidationError for an empty key, a key over MaxPluginKVKey bytes or
// a value over MaxPluginKVValue bytes, and with an error in a read-only transaction. value may be reused by the
// caller once Put returns.
func (t *PluginKVTx) Put(key string, value []byte) error {
	if err := t.checkWrite(key); err != nil {
		return err
	}
	if len(value) > MaxPluginKVValue {
		return errs.Invalid("value", "is %d bytes, over the limit of %d", len(value), MaxPluginKVValue)
	}
	if err := t.create(); err != nil {
		return err
	}
	// bbolt keeps the slices it is given until the commit: hand it a copy of both. An empty value stays non-nil so
	// that Get tells it apart from an absent key.
	buf := make([]byte, len(key)+len(value))
	copy(buf, key)
	copy(buf[len(key):], value)
	k, v := buf[:len(key):len(key)], buf[len(key):]
	old := t.data.Get(k)
	if err := t.data.Put(k, v); err != nil {
		return fmt.Errorf("putting plugin kv key: %w", err)
	}
	t.writes++
	if old == nil {
		t.keys++
		t.usage += int64(len(key) + len(value))
	} else {
		t.usage += int64(len(value) - len(old))
	}
	return nil
}

// Delete removes key; absent is fine.
func (t *PluginKVTx) Delete(key string) error {
	if err := t.checkWrite(key); err != nil {
		return err
	}
	if t.data == nil {
		return nil
	}
	k := []byte(key)
	old := t.data.Get(k)
	if old == nil {
		return nil
	}
	size := int64(len(key) + len(old)) // old is only valid until the delete
	if err := t.data.Delete(k); err != nil {
		return fmt.Errorf("deleting plugin kv key: %w", err)
	}
	t.writes++
	t.keys--
	t.usage -= size
	return nil
}

// Scan calls fn for each key starting with prefix and strictly after `after` ("" = from the first), in byte order,
// until fn returns false. Values passed to fn are copies. fn may write to the transaction; the scan then continues
// after the last key it passed to fn and sees those writes.
func (t *PluginKVTx) Scan(prefix, after string, fn func(key string, value []byte) bool) error {
	p := []byte(prefix)
	if after != "" && after >= prefix {
		return t.walk(p, true, []byte(after), false, fn)
	}
	return t.walk(p, true, p, true, fn)
}

// ScanReverse is Scan backwards: it calls fn for each key starting with prefix and strictly before `before` ("" =
// from the last), in descending byte order, until fn returns false.
func (t *PluginKVTx) ScanReverse(prefix, before string, fn func(key string, value []byte) bool) error {
	p := []byte(prefix)
	bound := prefixEnd(p) // nil: no key is above the prefix's range
	if before != "" {
		if before <= prefix {
			return nil // every key with the prefix is >= prefix >= before
		}
		if bound == nil || before < string(bound) {
			bound = []byte(before)
		}
	}
	return t.walk(p, false, bound, false, fn)
}

// walk calls fn for the keys starting with p from bound on, forwards or backwards, until fn returns false or the
// keys leave the prefix. Forwards it starts at bound (inclusive) or just after it; backwards just before it (nil:
// from the last key). After fn writes, the cursor may be stale: walk repositions it past the last key it passed.
func (t *PluginKVTx) walk(p []byte, forward bool, bound []byte, inclusive bool, fn func(key string, value []byte) bool) error {
	if t.done {
		return errPluginKVDone
	}
	if t.data == nil {
		return nil
	}
	c := t.data.Cursor()
	past := func(bound []byte, inclusive bool) ([]byte, []byte) {
		if forward {
			k, v := c.Seek(bound)
			if !inclusive && k != nil && bytes.Equal(k, bound) {
				return c.Next()
			}
			return k, v
		}
		if bound == nil {
			return c.Last()
		}
		if k, _ := c.Seek(bound); k == nil {
			return c.Last()
		}
		return c.Prev()
	}
	step := func() ([]byte, []byte) {
		if forward {
			return c.Next()
		}
		return c.Prev()
	}
	k, v := past(bound, inclusive)
	for k != nil && bytes.HasPrefix(k, p) {
		key := string(k)
		writes := t.writes
		if !fn(key, bytes.Clone(v)) {
			return nil
		}
		if t.done {
			return errPluginKVDone
		}
		if t.writes != writes {
			c = t.data.Cursor()
			k, v = past([]byte(key), false)
			continue
		}
		k, v = step()
	}
	return nil
}

// prefixEnd is the smallest key greater than every key starting with p, or nil when there is none (p is empty or
// all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Usage is the bytes (len(key)+len(value) summed) the space holds, this tx's writes included.
func (t *PluginKVTx) Usage() int64 { return t.usage }

// Len is the number of keys the space holds, this tx's writes included.
func (t *PluginKVTx) Len() int64 { return t.keys }

// UpdatePluginKV runs fn in a write transaction of the workspace's file, through the group committer: fn may run
// more than once and must depend only on the PluginKVTx it is given. If fn returns an error (or panics) nothing it
// did is written, and its error is returned as is. It returns when the write is durable. An unknown workspace gives
// an errs.ErrNotFound, an invalid plugin name a *errs.ValidationError.
func (s *Store) UpdatePluginKV(ctx context.Context, workspace, plugin string, fn func(*PluginKVTx) error) error {
	if err := validatePluginName(plugin); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db, err := s.Workspace(workspace)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		t, err := newPluginKVTx(tx, plugin)
		if err != nil {
			return err
		}
		defer func() { t.done = true }()
		if err := fn(t); err != nil {
			return err
		}
		return t.finish()
	})
}

// ViewPluginKV runs fn in a read-only transaction over a consistent snapshot; Put and Delete return an error. A
// space never written reads as empty. An unknown workspace gives an errs.ErrNotFound, an invalid plugin name a
// *errs.ValidationError.
func (s *Store) ViewPluginKV(ctx context.Context, workspace, plugin string, fn func(*PluginKVTx) error) error {
	if err := validatePluginName(plugin); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db, err := s.Workspace(workspace)
	if err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error {
		t, err := newPluginKVTx(tx, plugin)
		if err != nil {
			return err
		}
		defer func() { t.done = true }()
		return fn(t)
	})
}

// DeletePluginKV drops a plugin's whole space in a workspace (operator clean-up; the outbox "clear" uses it). A
// space that does not exist is not an error; an unknown workspace is an errs.ErrNotFound.
func (s *Store) DeletePluginKV(ctx context.Context, workspace, plugin string) error {
	if err := validatePluginName(plugin); err != nil {
		return err
	}
	db, err := s.Workspace(workspace)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		top := tx.Bucket(bucketPluginKV)
		if top == nil || top.Bucket([]byte(plugin)) == nil {
			return nil
		}
		if err := top.DeleteBucket([]byte(plugin)); err != nil {
			return fmt.Errorf("deleting plugin kv space of %q: %w", plugin, err)
		}
		return nil
	})
}
