package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments"
	bolt "go.etcd.io/bbolt"
)

var (
	_ segments.Store       = (*Store)(nil)
	_ segments.MemberStore = (*Store)(nil)
)

// PutSegment creates or replaces a segment in the workspace's file.
func (s *Store) PutSegment(ctx context.Context, ws string, seg segments.Segment) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	data, err := json.Marshal(seg)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bucketSegments).Put([]byte(seg.ID), data) })
}

// DeleteSegment removes a segment and its recorded member set, in one commit. The contacts' history of
// transitions in and out of it stays: it is a record of the past, erased only with the contact (ForgetContact).
func (s *Store) DeleteSegment(ctx context.Context, ws, id string) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSegments)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		return deletePrefix(tx.Bucket(bucketSegmentMembers), idPrefix(id))
	})
}

// ListSegments returns the workspace's segments in id order.
func (s *Store) ListSegments(_ context.Context, ws string) ([]segments.Segment, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, err
	}
	var out []segments.Segment
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSegments).ForEach(func(k, v []byte) error {
			var seg segments.Segment
			if err := json.Unmarshal(v, &seg); err != nil {
				return fmt.Errorf("decoding segment %q: %w", k, err)
			}
			out = append(out, seg)
			return nil
		})
	})
	return out, err
}

// memberScanPage is how many rows StoredMembers and SegmentHistory read in one read transaction before releasing
// it and seeking again after the last key: a long scan never pins one bbolt snapshot (and the pages the writer
// would otherwise reuse) for seconds, and fn runs outside any transaction. A variable so tests can page small.
var memberScanPage = 10_000

// History values start with one of these bytes; the reason follows.
const (
	historyEntered = 'e'
	historyExited  = 'x'
)

// idPrefix is id followed by NUL: the prefix of a segment's rows in segment_members and of a contact's rows in
// segment_history.
func idPrefix(id string) []byte {
	p := make([]byte, 0, len(id)+1)
	p = append(p, id...)
	return append(p, 0)
}

func memberKey(seg, contact string) []byte {
	k := make([]byte, 0, len(seg)+1+len(contact))
	k = append(k, seg...)
	k = append(k, 0)
	return append(k, contact...)
}

// clampNanos is ts in unix nanoseconds, with times outside what an int64 of nanoseconds holds (the years 1678 to
// 2261 are always inside) clamped to its extremes, as eventTime does.
func clampNanos(ts time.Time) int64 {
	switch {
	case ts.Year() < 1678:
		return math.MinInt64
	case ts.Year() > 2261:
		return math.MaxInt64
	}
	return ts.UnixNano()
}

// orderedTime encodes ts so that byte order is time order: the same encoding as eventTime (contacts.go), unix
// nanos with the sign bit flipped, big-endian.
func orderedTime(ts time.Time) [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(clampNanos(ts))^(1<<63))
	return b
}

// decodeOrderedTime is the inverse of orderedTime (and eventTime); clamped times come back as the extremes.
func decodeOrderedTime(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}

// historySuffixMin is the length of a history key after the contact prefix: time and sequence; the segment id
// follows.
const historySuffixMin = 16

func historyKey(contact string, at time.Time, seq uint64, seg string) []byte {
	ts := orderedTime(at)
	k := make([]byte, 0, len(contact)+1+historySuffixMin+len(seg))
	k = append(k, contact...)
	k = append(k, 0)
	k = append(k, ts[:]...)
	k = binary.BigEndian.AppendUint64(k, seq)
	return append(k, seg...)
}

// checkTransitionIDs refuses ids that would break the NUL-separated key layout.
func checkTransitionIDs(seg, contact string) error {
	switch {
	case seg == "" || strings.IndexByte(seg, 0) >= 0:
		return errs.Invalid("segment", "must be a non-empty id without NUL bytes")
	case contact == "" || strings.IndexByte(contact, 0) >= 0:
		return errs.Invalid("contact", "must be a non-empty id without NUL bytes")
	}
	return nil
}

// deletePrefix removes every key of b that starts with prefix. Keys are collected first: deleting under a live
// cursor skips keys in bbolt.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// RecordTransitions applies ts in order in one group commit (see segments.MemberStore). An entry writes the member
// row with since = At, replacing the since of a contact already recorded as a member (the caller reports entries,
// so a repeated one is a newer fact); an exit deletes the row. Each transition is appended to the contact's
// history under a key made unique by the bucket's sequence. An empty ts commits nothing.
func (s *Store) RecordTransitions(ctx context.Context, ws string, ts []segments.Transition) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	if len(ts) == 0 {
		return nil
	}
	for i, t := range ts {
		if err := checkTransitionIDs(t.Segment, t.Contact); err != nil {
			return fmt.Errorf("recording transition %d: %w", i, err)
		}
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		members, history := tx.Bucket(bucketSegmentMembers), tx.Bucket(bucketSegmentHistory)
		// bbolt keeps the key and value slices of a Put until the commit: every Put gets slices of its own.
		for _, t := range ts {
			mk := memberKey(t.Segment, t.Contact)
			kind := byte(historyExited)
			if t.Entered {
				kind = historyEntered
				if err := members.Put(mk, binary.BigEndian.AppendUint64(nil, uint64(clampNanos(t.At)))); err != nil {
					return err
				}
			} else if err := members.Delete(mk); err != nil {
				return err
			}
			seq, err := history.NextSequence()
			if err != nil {
				return err
			}
			val := make([]byte, 0, 1+len(t.Reason))
			val = append(append(val, kind), t.Reason...)
			if err := history.Put(historyKey(t.Contact, t.At, seq, t.Segment), val); err != nil {
				return err
			}
		}
		return nil
	})
}

type storedMember struct {
	contact string
	since   time.Time
}

// StoredMembers calls fn with each recorded member of seg in contact id order, reading at most memberScanPage rows
// per read transaction; fn runs between transactions, so a slow fn holds no snapshot. A write between two pages is
// seen from the next page on: each page is consistent, the whole walk is not one snapshot.
func (s *Store) StoredMembers(ctx context.Context, ws, seg string, fn func(contact string, since time.Time) bool) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	prefix := idPrefix(seg)
	after := prefix // the last key returned; the first page starts at the prefix itself, which is never a row
	page := make([]storedMember, 0, min(memberScanPage, 1024))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page = page[:0]
		err := db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketSegmentMembers).Cursor()
			k, v := c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(page) < memberScanPage; k, v = c.Next() {
				var since time.Time
				if len(v) == 8 {
					since = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
				}
				page = append(page, storedMember{string(k[len(prefix):]), since})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading members of segment %q: %w", seg, err)
		}
		for _, m := range page {
			if !fn(m.contact, m.since) {
				return nil
			}
		}
		if len(page) < memberScanPage {
			return nil
		}
		after = memberKey(seg, page[len(page)-1].contact)
	}
}

type historyRow struct {
	t      segments.Transition
	cursor string
}

// SegmentHistory calls fn with a contact's transitions from the newest, strictly below cursor (see
// segments.MemberStore). The cursor is the base64url of the key after the contact's prefix (time, sequence,
// segment id); one that does not decode to at least a time and a sequence is an errs.ValidationError on "cursor".
// Rows are read in pages like StoredMembers.
func (s *Store) SegmentHistory(ctx context.Context, ws, contact, cursor string, fn func(t segments.Transition, cursor string) bool) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	prefix := idPrefix(contact)
	var below []byte // the key to stay strictly below; nil for the newest
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(raw) < historySuffixMin {
			return errs.Invalid("cursor", "is not a cursor this API returned")
		}
		below = append(bytes.Clone(prefix), raw...)
	} else {
		// Just past the contact's last possible row: its id followed by 0x01.
		below = append(bytes.Clone(prefix[:len(prefix)-1]), 1)
	}
	page := make([]historyRow, 0, min(memberScanPage, 256))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page = page[:0]
		var last []byte
		err := db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketSegmentHistory).Cursor()
			var k, v []byte
			if k, _ = c.Seek(below); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(page) < memberScanPage; k, v = c.Prev() {
				suffix := k[len(prefix):]
				if len(suffix) < historySuffixMin || len(v) < 1 {
					return fmt.Errorf("corrupt segment history row %q", k)
				}
				page = append(page, historyRow{
					t: segments.Transition{
						Segment: string(suffix[historySuffixMin:]), Contact: contact, Entered: v[0] == historyEntered,
						At: decodeOrderedTime(suffix[:8]), Reason: string(v[1:]),
					},
					cursor: base64.RawURLEncoding.EncodeToString(suffix),
				})
				last = k
			}
			if last != nil {
				last = bytes.Clone(last)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("reading segment history: %w", err)
		}
		for _, r := range page {
			if !fn(r.t, r.cursor) {
				return nil
			}
		}
		if len(page) < memberScanPage {
			return nil
		}
		below = last
	}
}

// ForgetContact removes the contact's member rows in segs and its whole segment history, in one commit.
func (s *Store) ForgetContact(ctx context.Context, ws, contact string, segs []string) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	if contact == "" || strings.IndexByte(contact, 0) >= 0 {
		return errs.Invalid("contact", "must be a non-empty id without NUL bytes")
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		members := tx.Bucket(bucketSegmentMembers)
		for _, seg := range segs {
			if err := members.Delete(memberKey(seg, contact)); err != nil {
				return err
			}
		}
		return deletePrefix(tx.Bucket(bucketSegmentHistory), idPrefix(contact))
	})
}
