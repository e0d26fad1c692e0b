package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	bolt "go.etcd.io/bbolt"
)

var _ contacts.Store = (*Store)(nil)

// UpdateContacts runs fn in a group commit on workspace ws's file (see contacts.Store).
func (s *Store) UpdateContacts(ctx context.Context, ws string, fn func(contacts.Tx) error) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error { return fn(newContactsTx(tx)) })
}

// UpdateContactsEach runs each function as its own atomic write, in as few group commits as possible.
func (s *Store) UpdateContactsEach(ctx context.Context, ws string, fns []func(contacts.Tx) error) []error {
	db, err := s.Workspace(ws)
	if err != nil {
		out := make([]error, len(fns))
		for i := range out {
			out[i] = err
		}
		return out
	}
	wrapped := make([]func(*bolt.Tx) error, len(fns))
	for i, fn := range fns {
		wrapped[i] = func(tx *bolt.Tx) error { return fn(newContactsTx(tx)) }
	}
	return db.UpdateEach(ctx, wrapped)
}

// ViewContacts runs fn on a read-only snapshot of workspace ws's file.
func (s *Store) ViewContacts(ctx context.Context, ws string, fn func(contacts.Tx) error) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.View(func(tx *bolt.Tx) error { return fn(newContactsTx(tx)) })
}

// contactsTx implements contacts.Tx on one bbolt transaction.
type contactsTx struct {
	tx                                       *bolt.Tx
	contacts, keys, lastSeen, email, phone   *bolt.Bucket
	user, anon                               *bolt.Bucket
	tags, events, eventIDs, merges, mergesTo *bolt.Bucket
	suppression, audit, meta                 *bolt.Bucket
	eventNames, trackEvents                  *bolt.Bucket // the track event digest (track_events.go)
	nameCodes                                map[string]uint32
	contactCount, eventCount                 int64
	countsLoaded                             bool
}

func newContactsTx(tx *bolt.Tx) *contactsTx {
	return &contactsTx{
		tx: tx, contacts: tx.Bucket(bucketContacts), keys: tx.Bucket(bucketContactKeys), lastSeen: tx.Bucket(bucketLastSeen),
		email: tx.Bucket(bucketIdxEmail), phone: tx.Bucket(bucketIdxPhone), user: tx.Bucket(bucketIdxUser),
		anon: tx.Bucket(bucketIdxAnon), tags: tx.Bucket(bucketIdxTag), events: tx.Bucket(bucketEvents),
		eventIDs: tx.Bucket(bucketEventIDs), merges: tx.Bucket(bucketMerges), mergesTo: tx.Bucket(bucketMergesInto),
		suppression: tx.Bucket(bucketSuppression), audit: tx.Bucket(bucketAudit), meta: tx.Bucket(bucketMeta),
		eventNames: tx.Bucket(bucketEventNames), trackEvents: tx.Bucket(bucketTrackEvents),
	}
}

func (t *contactsTx) digest() trackDigest {
	if t.nameCodes == nil {
		t.nameCodes = make(map[string]uint32)
	}
	return trackDigest{names: t.eventNames, chunks: t.trackEvents, codes: t.nameCodes}
}

// Index entry kinds in contact_keys.
const (
	keyKindEmail = 'e'
	keyKindPhone = 'p'
	keyKindUser  = 'u'
	keyKindAnon  = 'a'
	keyKindTag   = 't'
)

type indexEntry struct {
	kind  byte
	value string
}

func entriesOf(c *contacts.Contact) []indexEntry {
	out := make([]indexEntry, 0, 3+len(c.AnonymousIDs)+len(c.Tags))
	if c.Email != "" {
		out = append(out, indexEntry{keyKindEmail, c.Email})
	}
	if c.Phone != "" {
		out = append(out, indexEntry{keyKindPhone, c.Phone})
	}
	if c.UserID != "" {
		out = append(out, indexEntry{keyKindUser, c.UserID})
	}
	for _, a := range c.AnonymousIDs {
		out = append(out, indexEntry{keyKindAnon, a})
	}
	for _, t := range c.Tags {
		out = append(out, indexEntry{keyKindTag, t})
	}
	return out
}

func encodeEntries(es []indexEntry) []byte {
	n := 0
	for _, e := range es {
		n += 1 + binary.MaxVarintLen64 + len(e.value)
	}
	b := make([]byte, 0, n)
	for _, e := range es {
		b = append(b, e.kind)
		b = binary.AppendUvarint(b, uint64(len(e.value)))
		b = append(b, e.value...)
	}
	return b
}

func decodeEntries(b []byte) ([]indexEntry, error) {
	var out []indexEntry
	for len(b) > 0 {
		kind := b[0]
		n, w := binary.Uvarint(b[1:])
		if w <= 0 || uint64(len(b)-1-w) < n {
			return nil, fmt.Errorf("corrupt contact index record")
		}
		start := 1 + w
		out = append(out, indexEntry{kind, string(b[start : start+int(n)])})
		b = b[start+int(n):]
	}
	return out, nil
}

func (t *contactsTx) indexBucket(kind byte) *bolt.Bucket {
	switch kind {
	case keyKindEmail:
		return t.email
	case keyKindPhone:
		return t.phone
	case keyKindUser:
		return t.user
	case keyKindAnon:
		return t.anon
	}
	return t.tags
}

func tagKey(tag, id string) []byte {
	k := make([]byte, 0, len(tag)+1+len(id))
	k = append(k, tag...)
	k = append(k, 0)
	return append(k, id...)
}

func (t *contactsTx) loadCounts() {
	if t.countsLoaded {
		return
	}
	t.countsLoaded = true
	if v := t.meta.Get(keyContactCount); len(v) == 8 {
		t.contactCount = int64(binary.BigEndian.Uint64(v))
	}
	if v := t.meta.Get(keyEventCount); len(v) == 8 {
		t.eventCount = int64(binary.BigEndian.Uint64(v))
	}
}

func (t *contactsTx) addContacts(n int64) error {
	t.loadCounts()
	t.contactCount = max(t.contactCount+n, 0)
	return putUint64(t.meta, keyContactCount, uint64(t.contactCount))
}

func (t *contactsTx) addEvents(n int64) error {
	t.loadCounts()
	t.eventCount = max(t.eventCount+n, 0)
	return putUint64(t.meta, keyEventCount, uint64(t.eventCount))
}

// Get returns a stored contact.
func (t *contactsTx) Get(id string) (contacts.Contact, bool, error) {
	v := t.contacts.Get([]byte(id))
	if v == nil {
		return contacts.Contact{}, false, nil
	}
	var c contacts.Contact
	if err := contacts.Decode(v, &c); err != nil {
		return contacts.Contact{}, false, fmt.Errorf("decoding contact %s: %w", id, err)
	}
	c.LastSeenAt = t.seen(id)
	return c, true, nil
}

func (t *contactsTx) seen(id string) time.Time {
	v := t.lastSeen.Get([]byte(id))
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
}

// SeenAt records activity at at, when it is at least step after what is recorded.
func (t *contactsTx) SeenAt(id string, at time.Time, step time.Duration) error {
	if at.IsZero() || at.Year() < 1678 || at.Year() > 2261 {
		return nil
	}
	if prev := t.seen(id); !prev.IsZero() && at.Sub(prev) < step {
		return nil
	}
	return putUint64(t.lastSeen, []byte(id), uint64(at.UnixNano()))
}

// Put stores c and updates the indexes from the difference with what c held before. Every unique identifier is
// checked before anything is written, so a conflict leaves the transaction as it was.
func (t *contactsTx) Put(c contacts.Contact) error {
	id := []byte(c.ID)
	var old []indexEntry
	existed := false
	if raw := t.keys.Get(id); raw != nil {
		existed = true
		var err error
		if old, err = decodeEntries(raw); err != nil {
			return fmt.Errorf("contact %s: %w", c.ID, err)
		}
	} else if t.contacts.Get(id) != nil {
		existed = true
	}
	next := entriesOf(&c)
	had := make(map[indexEntry]bool, len(old))
	for _, e := range old {
		had[e] = true
	}
	for _, e := range next {
		if had[e] || e.kind == keyKindTag {
			continue
		}
		if owner := t.indexBucket(e.kind).Get([]byte(e.value)); owner != nil && string(owner) != c.ID {
			return fmt.Errorf("%s %q belongs to contact %s: %w", kindName(e.kind), e.value, owner, errs.ErrConflict)
		}
	}
	keep := make(map[indexEntry]bool, len(next))
	for _, e := range next {
		keep[e] = true
	}
	for _, e := range old {
		if keep[e] {
			continue
		}
		if err := t.dropIndex(c.ID, e); err != nil {
			return err
		}
	}
	for _, e := range next {
		if had[e] {
			continue
		}
		var err error
		if e.kind == keyKindTag {
			err = t.tags.Put(tagKey(e.value, c.ID), nil)
		} else {
			err = t.indexBucket(e.kind).Put([]byte(e.value), id)
		}
		if err != nil {
			return err
		}
	}
	seen := c.LastSeenAt
	c.LastSeenAt = time.Time{} // kept in last_seen
	data, err := contacts.Encode(&c)
	if err != nil {
		return fmt.Errorf("encoding contact %s: %w", c.ID, err)
	}
	if err := t.contacts.Put(id, data); err != nil {
		return err
	}
	if err := t.SeenAt(c.ID, seen, 0); err != nil {
		return err
	}
	if err := t.keys.Put(id, encodeEntries(next)); err != nil {
		return err
	}
	if !existed {
		return t.addContacts(1)
	}
	return nil
}

func (t *contactsTx) dropIndex(id string, e indexEntry) error {
	if e.kind == keyKindTag {
		return t.tags.Delete(tagKey(e.value, id))
	}
	b := t.indexBucket(e.kind)
	// Only the owner's entry is removed: never another contact's.
	if owner := b.Get([]byte(e.value)); owner != nil && string(owner) == id {
		return b.Delete([]byte(e.value))
	}
	return nil
}

func kindName(k byte) string {
	switch k {
	case keyKindEmail:
		return "email"
	case keyKindPhone:
		return "phone"
	case keyKindUser:
		return "user id"
	case keyKindAnon:
		return "anonymous id"
	}
	return "tag"
}

// Delete removes a contact and its index entries.
func (t *contactsTx) Delete(id string) error {
	k := []byte(id)
	if t.contacts.Get(k) == nil {
		return nil
	}
	if raw := t.keys.Get(k); raw != nil {
		old, err := decodeEntries(raw)
		if err != nil {
			return fmt.Errorf("contact %s: %w", id, err)
		}
		for _, e := range old {
			if err := t.dropIndex(id, e); err != nil {
				return err
			}
		}
	}
	for _, b := range []*bolt.Bucket{t.contacts, t.keys, t.lastSeen} {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return t.addContacts(-1)
}

// Lookup returns the contact holding an identifier.
func (t *contactsTx) Lookup(kind contacts.IdentifierKind, value string) (string, bool) {
	if value == "" {
		return "", false
	}
	var b *bolt.Bucket
	switch kind {
	case contacts.ByEmail:
		b = t.email
	case contacts.ByPhone:
		b = t.phone
	case contacts.ByUserID:
		b = t.user
	case contacts.ByAnonymousID:
		b = t.anon
	default:
		return "", false
	}
	v := b.Get([]byte(value))
	if v == nil {
		return "", false
	}
	return string(v), true
}

// Scan walks contacts in id order after after.
func (t *contactsTx) Scan(after string, fn func(contacts.Contact) bool) error {
	c := t.contacts.Cursor()
	k, v := c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, v = c.Next()
	}
	// last_seen has the same keys: a second cursor walks it in step instead of a lookup per contact.
	seen := t.lastSeen.Cursor()
	sk, sv := seen.Seek(k)
	for ; k != nil; k, v = c.Next() {
		var ct contacts.Contact
		if err := contacts.Decode(v, &ct); err != nil {
			return fmt.Errorf("decoding contact %s: %w", k, err)
		}
		for sk != nil && bytes.Compare(sk, k) < 0 {
			sk, sv = seen.Next()
		}
		if sk != nil && bytes.Equal(sk, k) && len(sv) == 8 {
			ct.LastSeenAt = time.Unix(0, int64(binary.BigEndian.Uint64(sv))).UTC()
		}
		if !fn(ct) {
			return nil
		}
	}
	return nil
}

// ScanTag walks the contacts carrying tag in id order after after.
func (t *contactsTx) ScanTag(tag, after string, fn func(contacts.Contact) bool) error {
	prefix := tagKey(tag, "")
	c := t.tags.Cursor()
	k, _ := c.Seek(tagKey(tag, after))
	if k != nil && after != "" && string(k[len(prefix):]) == after {
		k, _ = c.Next()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ct, ok, err := t.Get(string(k[len(prefix):]))
		if err != nil {
			return err
		}
		if ok && !fn(ct) {
			return nil
		}
	}
	return nil
}

// Count is the number of contacts.
func (t *contactsTx) Count() int {
	t.loadCounts()
	return int(t.contactCount)
}

// EventCount is the number of events.
func (t *contactsTx) EventCount() int {
	t.loadCounts()
	return int(t.eventCount)
}

// eventTime encodes a time so that byte order is time order, for any time Go can hold in nanoseconds (the years
// 1678 to 2262; times outside are clamped).
func eventTime(ts time.Time) [8]byte {
	var b [8]byte
	var n int64
	switch {
	case ts.Year() < 1678:
		n = math.MinInt64
	case ts.Year() > 2261:
		n = math.MaxInt64
	default:
		n = ts.UnixNano()
	}
	binary.BigEndian.PutUint64(b[:], uint64(n)^(1<<63))
	return b
}

func eventPrefix(contactID string) []byte {
	p := make([]byte, 0, len(contactID)+1)
	p = append(p, contactID...)
	return append(p, 0)
}

func eventKey(contactID string, ts time.Time, messageID string) []byte {
	t := eventTime(ts)
	k := make([]byte, 0, len(contactID)+1+8+len(messageID))
	k = append(k, contactID...)
	k = append(k, 0)
	k = append(k, t[:]...)
	return append(k, messageID...)
}

// HasEvent reports whether a message id is stored.
func (t *contactsTx) HasEvent(messageID string) bool {
	return messageID != "" && t.eventIDs.Get([]byte(messageID)) != nil
}

// PutEvent stores an event under its contact, in time order, and records its message id; a track event (as data
// says) is added to the track event digest too.
func (t *contactsTx) PutEvent(e events.Event, data []byte) error {
	if e.ContactID == "" || e.MessageID == "" {
		return fmt.Errorf("event needs a contact id and a message id")
	}
	if t.HasEvent(e.MessageID) {
		return fmt.Errorf("message id %q is already stored: %w", e.MessageID, errs.ErrConflict)
	}
	if data == nil {
		var err error
		if data, err = events.Encode(e); err != nil {
			return fmt.Errorf("encoding event: %w", err)
		}
	}
	k := eventKey(e.ContactID, e.Timestamp, e.MessageID)
	if err := t.digest().put(e.ContactID, eventTime(e.Timestamp), data); err != nil {
		return fmt.Errorf("event %q: %w", e.MessageID, err)
	}
	if err := t.events.Put(k, data); err != nil {
		return err
	}
	if err := t.eventIDs.Put([]byte(e.MessageID), k); err != nil {
		return err
	}
	return t.addEvents(1)
}

// Events walks a contact's events from the newest, strictly below cursor.
func (t *contactsTx) Events(contactID, cursor string, fn func(events.Event, string) bool) error {
	prefix := eventPrefix(contactID)
	c := t.events.Cursor()
	var k, v []byte
	if cursor == "" {
		end := append(bytes.Clone(prefix[:len(prefix)-1]), 1)
		k, _ = c.Seek(end)
	} else {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(raw) < 8 {
			return errs.Invalid("cursor", "is not a cursor this API returned")
		}
		k, _ = c.Seek(append(bytes.Clone(prefix), raw...))
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
		var e events.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decoding event %q: %w", k, err)
		}
		e.ContactID = contactID
		if !fn(e, base64.RawURLEncoding.EncodeToString(k[len(prefix):])) {
			return nil
		}
	}
	return nil
}

type rawKV struct{ k, v []byte }

func (t *contactsTx) eventsOf(contactID string) []rawKV {
	prefix := eventPrefix(contactID)
	var out []rawKV
	c := t.events.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		out = append(out, rawKV{bytes.Clone(k), bytes.Clone(v)})
	}
	return out
}

// MoveEvents gives every event of from to contact to. Stored events do not name their contact, so only keys move;
// from's track event digest entries are appended to to's.
func (t *contactsTx) MoveEvents(from, to string) (int, error) {
	if err := t.digest().move(from, to); err != nil {
		return 0, fmt.Errorf("moving track events of %q: %w", from, err)
	}
	list := t.eventsOf(from)
	prefix := len(from) + 1
	for _, kv := range list {
		nk := append(eventPrefix(to), kv.k[prefix:]...)
		if err := t.events.Delete(kv.k); err != nil {
			return 0, err
		}
		if err := t.events.Put(nk, kv.v); err != nil {
			return 0, err
		}
		if err := t.eventIDs.Put(nk[len(to)+1+8:], nk); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// DeleteEvents removes every event of a contact, their message ids and the contact's track event digest entries.
func (t *contactsTx) DeleteEvents(contactID string) (int, error) {
	if _, err := t.digest().take(contactID); err != nil {
		return 0, fmt.Errorf("deleting track events of %q: %w", contactID, err)
	}
	list := t.eventsOf(contactID)
	prefix := len(contactID) + 1 + 8
	for _, kv := range list {
		if err := t.events.Delete(kv.k); err != nil {
			return 0, err
		}
		if err := t.eventIDs.Delete(kv.k[prefix:]); err != nil {
			return 0, err
		}
	}
	if len(list) > 0 {
		if err := t.addEvents(-int64(len(list))); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// Redirect records a merge. Ids earlier merged into m.From are re-pointed at m.Into, so every redirect is one hop.
func (t *contactsTx) Redirect(m contacts.Merge) error {
	earlier, err := t.MergesInto(m.From)
	if err != nil {
		return err
	}
	for _, e := range earlier {
		if err := t.mergesTo.Delete(tagKey(m.From, e.From)); err != nil {
			return err
		}
		e.Into = m.Into
		if err := t.putMerge(e); err != nil {
			return err
		}
	}
	return t.putMerge(m)
}

func (t *contactsTx) putMerge(m contacts.Merge) error {
	data, err := json.Marshal(&m)
	if err != nil {
		return err
	}
	if err := t.merges.Put([]byte(m.From), data); err != nil {
		return err
	}
	return t.mergesTo.Put(tagKey(m.Into, m.From), nil)
}

// MergedInto returns the merge record of a merged-away id.
func (t *contactsTx) MergedInto(id string) (contacts.Merge, bool) {
	v := t.merges.Get([]byte(id))
	if v == nil {
		return contacts.Merge{}, false
	}
	var m contacts.Merge
	if json.Unmarshal(v, &m) != nil {
		return contacts.Merge{}, false
	}
	return m, true
}

// MergesInto lists the merges into id, oldest first.
func (t *contactsTx) MergesInto(id string) ([]contacts.Merge, error) {
	prefix := tagKey(id, "")
	var out []contacts.Merge
	c := t.mergesTo.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if m, ok := t.MergedInto(string(k[len(prefix):])); ok {
			out = append(out, m)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].At.Before(out[j-1].At); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// DropRedirects removes every merge record pointing to id.
func (t *contactsTx) DropRedirects(id string) (int, error) {
	prefix := tagKey(id, "")
	var keys [][]byte
	c := t.mergesTo.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := t.merges.Delete(k[len(prefix):]); err != nil {
			return 0, err
		}
		if err := t.mergesTo.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Suppressed reports whether a hash is on the suppression list.
func (t *contactsTx) Suppressed(hash string) bool {
	return t.suppression.Get([]byte(hash)) != nil
}

// Suppress lists a hash.
func (t *contactsTx) Suppress(hash string, at time.Time) error {
	return t.suppression.Put([]byte(hash), []byte(at.UTC().Format(time.RFC3339Nano)))
}

// NextChange returns the next number of the workspace's change sequence (meta/change_seq).
func (t *contactsTx) NextChange() (uint64, error) {
	var n uint64
	if v := t.meta.Get(keyChangeSeq); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n++
	return n, putUint64(t.meta, keyChangeSeq, n)
}

// Audit appends to the audit log.
func (t *contactsTx) Audit(e contacts.AuditEntry) error {
	seq, err := t.audit.NextSequence()
	if err != nil {
		return err
	}
	data, err := json.Marshal(&e)
	if err != nil {
		return err
	}
	ts := eventTime(e.At)
	k := make([]byte, 0, 16)
	k = append(k, ts[:]...)
	k = binary.BigEndian.AppendUint64(k, seq)
	return t.audit.Put(k, data)
}

// AuditLog walks the audit log from the newest entry, strictly below cursor.
func (t *contactsTx) AuditLog(cursor string, fn func(contacts.AuditEntry, string) bool) error {
	c := t.audit.Cursor()
	var k, v []byte
	if cursor == "" {
		k, v = c.Last()
	} else {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(raw) != 16 {
			return errs.Invalid("cursor", "is not a cursor this API returned")
		}
		if k, _ = c.Seek(raw); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
	}
	for ; k != nil; k, v = c.Prev() {
		var e contacts.AuditEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decoding audit entry: %w", err)
		}
		if !fn(e, base64.RawURLEncoding.EncodeToString(k)) {
			return nil
		}
	}
	return nil
}
