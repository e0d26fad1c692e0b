package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/crosscast/crosscast/core/events"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The track event digest: event_names and track_events (doc.go), a compact copy of every stored track event's
// contact, time and name, kept in step with events/ by every write, so that the segment index reads ~10 bytes per
// event at start instead of each event's JSON (ScanTrackEvents, index_reads.go).

// trackChunkMax is the size a track_events chunk grows to: an entry that would take a chunk past it starts the
// contact's next chunk, so appending to a heavy contact rewrites at most this much.
const trackChunkMax = 2048

// trackEntryMax is the longest entry: 8 bytes of time and a uvarint of a uint32 name code.
const trackEntryMax = 8 + 5

// chunkKeySuffix is the length of a track_events key after the contact id: NUL and the uint32 chunk number.
const chunkKeySuffix = 1 + 4

// trackDigest writes the digest in one transaction.
type trackDigest struct {
	names, chunks *bolt.Bucket
	codes         map[string]uint32 // the codes looked up or given in this transaction
}

// eventTrackName tells whether a stored event value is a track event and its name: trackName's fast path, else
// encoding/json, so that the digest says what decoding events/ says (the stored value decides, not the
// events.Event it was encoded from: Encode replaces invalid UTF-8, for one). name may alias data.
func eventTrackName(data []byte) (name []byte, track bool, err error) {
	name, track, ok := trackName(data)
	if ok {
		return name, track, nil
	}
	var e events.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, false, err
	}
	if e.Type != events.Track {
		return nil, false, nil
	}
	return []byte(e.Name), true, nil
}

// code returns the code of a track event name, giving it the next one (the bucket's sequence: 1, 2, ...) when it
// has none. Code 0 is the empty name, which is not stored (bbolt keys are never empty). Codes are never reused:
// names are never deleted.
func (d trackDigest) code(name []byte) (uint32, error) {
	if len(name) == 0 {
		return 0, nil
	}
	if code, ok := d.codes[string(name)]; ok {
		return code, nil
	}
	if v := d.names.Get(name); v != nil {
		if len(v) != 4 {
			return 0, fmt.Errorf("corrupt event name code for %q", name)
		}
		code := binary.BigEndian.Uint32(v)
		d.codes[string(name)] = code
		return code, nil
	}
	seq, err := d.names.NextSequence()
	if err != nil {
		return 0, err
	}
	if seq > math.MaxUint32 {
		return 0, fmt.Errorf("too many track event names")
	}
	code := uint32(seq)
	if err := d.names.Put(bytes.Clone(name), binary.BigEndian.AppendUint32(nil, code)); err != nil {
		return 0, err
	}
	d.codes[string(name)] = code
	return code, nil
}

// appendEntry appends one entry (an events key's time and a name code) to buf.
func appendEntry(buf []byte, at [8]byte, code uint32) []byte {
	buf = append(buf, at[:]...)
	return binary.AppendUvarint(buf, uint64(code))
}

// entryLen is the length of the entry at the start of b; 0 when b does not start with a whole entry.
func entryLen(b []byte) int {
	if len(b) < 9 {
		return 0
	}
	code, w := binary.Uvarint(b[8:])
	if w <= 0 || code > math.MaxUint32 {
		return 0
	}
	return 8 + w
}

// lastChunk finds a contact's last chunk: its number and value (bbolt's memory: copy it before a write), or ok
// false when it has none. key is <contact id> NUL and 4 bytes, which it overwrites.
func (d trackDigest) lastChunk(key []byte) (n uint32, v []byte, ok bool, err error) {
	prefix := key[:len(key)-4]
	end := binary.BigEndian.AppendUint32(prefix, math.MaxUint32)
	c := d.chunks.Cursor()
	k, v := c.Seek(end)
	switch {
	case k == nil:
		k, v = c.Last()
	case !bytes.Equal(k, end):
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return 0, nil, false, nil
	}
	if len(k) != len(prefix)+4 {
		return 0, nil, false, fmt.Errorf("corrupt track_events key %q", k)
	}
	return binary.BigEndian.Uint32(k[len(prefix):]), v, true, nil
}

// appendEntries appends whole entries to a contact's chunks: to its last chunk while it has room, then to new
// ones. Each chunk is written once.
func (d trackDigest) appendEntries(contactID []byte, entries []byte) error {
	if len(entries) == 0 {
		return nil
	}
	key := make([]byte, len(contactID)+chunkKeySuffix) // bbolt copies a key it is given to Put
	copy(key, contactID)
	n, last, ok, err := d.lastChunk(key)
	if err != nil {
		return err
	}
	if !ok {
		last = nil
	}
	for len(entries) > 0 {
		// Take the entries that fit in the chunk, at least one when it is empty.
		take := 0
		for take < len(entries) {
			l := entryLen(entries[take:])
			if l == 0 {
				return fmt.Errorf("corrupt track event entries of contact %q", contactID)
			}
			if len(last)+take+l > trackChunkMax && (len(last) > 0 || take > 0) {
				break
			}
			take += l
		}
		if take > 0 {
			v := make([]byte, 0, len(last)+take)
			v = append(append(v, last...), entries[:take]...)
			binary.BigEndian.PutUint32(key[len(contactID)+1:], n)
			if err := d.chunks.Put(key, v); err != nil {
				return err
			}
			entries = entries[take:]
		}
		if len(entries) > 0 {
			if n == math.MaxUint32 {
				return fmt.Errorf("contact %q has too many track event chunks", contactID)
			}
			n, last = n+1, nil
		}
	}
	return nil
}

// put records a stored event: nothing unless data (its value in events/) is a track event.
func (d trackDigest) put(contactID string, at [8]byte, data []byte) error {
	name, track, err := eventTrackName(data)
	if err != nil {
		return fmt.Errorf("decoding event: %w", err)
	}
	if !track {
		return nil
	}
	code, err := d.code(name)
	if err != nil {
		return err
	}
	var buf [trackEntryMax]byte
	return d.appendEntries([]byte(contactID), appendEntry(buf[:0], at, code))
}

// take removes a contact's chunks and returns their entries (a copy), in chunk order.
func (d trackDigest) take(contactID string) ([]byte, error) {
	prefix := eventPrefix(contactID)
	var keys [][]byte
	var entries []byte
	c := d.chunks.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+4 {
			return nil, fmt.Errorf("corrupt track_events key %q", k)
		}
		keys = append(keys, bytes.Clone(k))
		entries = append(entries, v...)
	}
	for _, k := range keys {
		if err := d.chunks.Delete(k); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

// move gives from's entries to to: appended to to's chunks, from's chunks deleted.
func (d trackDigest) move(from, to string) error {
	if from == to {
		return nil
	}
	entries, err := d.take(from)
	if err != nil {
		return err
	}
	return d.appendEntries([]byte(to), entries)
}

// buildTrackDigest (re)creates event_names and track_events from events/, contact by contact, each chunk written
// once. It is schema 5's migration.
func buildTrackDigest(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketEventNames, bucketTrackEvents} {
		if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("dropping bucket %s: %w", b, err)
		}
	}
	if err := createBuckets(tx, bucketEventNames, bucketTrackEvents); err != nil {
		return err
	}
	d := trackDigest{names: tx.Bucket(bucketEventNames), chunks: tx.Bucket(bucketTrackEvents), codes: map[string]uint32{}}
	evs := tx.Bucket(bucketEvents)
	if evs == nil {
		return nil
	}
	var contact, entries []byte
	flush := func() error {
		err := d.appendEntries(contact, entries)
		entries = entries[:0]
		return err
	}
	c := evs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		nul := bytes.IndexByte(k, 0)
		if nul < 0 || len(k) < nul+1+8 {
			return fmt.Errorf("corrupt event key %q", k)
		}
		name, track, err := eventTrackName(v)
		if err != nil {
			return fmt.Errorf("decoding event %q: %w", k, err)
		}
		if !track {
			continue
		}
		if !bytes.Equal(contact, k[:nul]) {
			if err := flush(); err != nil {
				return err
			}
			contact = append(contact[:0], k[:nul]...)
		}
		code, err := d.code(name)
		if err != nil {
			return err
		}
		entries = appendEntry(entries, [8]byte(k[nul+1:nul+9]), code)
	}
	return flush()
}
