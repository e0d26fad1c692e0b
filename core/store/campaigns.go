package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	bolt "go.etcd.io/bbolt"
)

var _ campaigns.Store = (*Store)(nil)

// Limits of the outbox API.
const (
	// maxListMessages bounds ListMessages' limit.
	maxListMessages = 1000
	// cancelChunk is how many messages CancelMessages cancels per transaction, so that cancelling a campaign of
	// millions never builds one huge transaction; each chunk keeps the counts exact.
	cancelChunk = 10_000
	// deleteChunk is how many keys prefix deletes collect before deleting them and seeking again.
	deleteChunk = 1024
)

// The outbox value (see the bucket tree in doc.go): a format byte, a status code, three times, attempts, then four
// length-prefixed strings. Campaign, run, contact and slot are the key.
const (
	msgFormat1 = 1
	// msgHeader is the fixed part: format, status, due, planned at, sent at.
	msgHeader = 2 + 3*8
	// outboxSuffixMin is the shortest key suffix after "<campaign id> NUL": run, a one-byte contact, NUL, slot.
	outboxSuffixMin = 4 + 1 + 1 + 1
)

// Message status codes, as stored in byte 1 of an outbox value. 1 and 2 are the pending statuses.
const (
	codeQueued byte = 1 + iota
	codeSending
	codeSent
	codeFailed
	codeSkipped
	codeCancelled
)

var codeStatus = [...]campaigns.MessageStatus{
	codeQueued: campaigns.Queued, codeSending: campaigns.Sending, codeSent: campaigns.Sent,
	codeFailed: campaigns.Failed, codeSkipped: campaigns.Skipped, codeCancelled: campaigns.MessageCancelled,
}

func statusCode(s campaigns.MessageStatus) byte {
	switch s {
	case campaigns.Queued:
		return codeQueued
	case campaigns.Sending:
		return codeSending
	case campaigns.Sent:
		return codeSent
	case campaigns.Failed:
		return codeFailed
	case campaigns.Skipped:
		return codeSkipped
	case campaigns.MessageCancelled:
		return codeCancelled
	}
	return 0
}

func pendingCode(c byte) bool { return c == codeQueued || c == codeSending }

// statusOf is the status of a stored code; "" for a code this version does not know.
func statusOf(c byte) campaigns.MessageStatus {
	if int(c) < len(codeStatus) {
		return codeStatus[c]
	}
	return ""
}

// refusedWrite is a write function's error raised before it wrote anything: the group commit answers the caller
// with it and commits the others sharing the transaction instead of running them again.
type refusedWrite struct{ err error }

func (r refusedWrite) Error() string      { return r.err.Error() }
func (r refusedWrite) Unwrap() error      { return r.err }
func (refusedWrite) NothingWritten() bool { return true }

func refuse(err error) error { return refusedWrite{err} }

// validID reports whether id fits the NUL-separated key layout.
func validID(id string) bool { return id != "" && strings.IndexByte(id, 0) < 0 }

func checkCampaignID(id string) error {
	if !validID(id) {
		return errs.Invalid("campaign", "must be a non-empty id without NUL bytes")
	}
	return nil
}

// checkMessageKey refuses a message whose key fields do not fit the key layout.
func checkMessageKey(m *campaigns.Message) error {
	switch {
	case !validID(m.Campaign):
		return errs.Invalid("campaign", "must be a non-empty id without NUL bytes")
	case !validID(m.Contact):
		return errs.Invalid("contact_id", "must be a non-empty id without NUL bytes")
	case m.Run < 1 || int64(m.Run) > math.MaxUint32:
		return errs.Invalid("run", "must be between 1 and %d", uint32(math.MaxUint32))
	case m.Slot < 0 || m.Slot > math.MaxUint8:
		return errs.Invalid("slot", "must be between 0 and 255")
	}
	return nil
}

// arena hands out byte slices that stay untouched until the transaction ends. bbolt keeps the key and value slices
// given to Put until the commit, so each Put needs slices of its own; carving them out of large blocks saves an
// allocation per key and per value. A block that fills up is left to the slices in it, never written again.
type arena struct{ buf []byte }

// reserve makes room for n more bytes in the current block.
func (a *arena) reserve(n int) {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(n, 32<<10))
	}
}

// since returns the bytes appended since len(a.buf) was start, capped so that appending to them cannot reach
// into later slices.
func (a *arena) since(start int) []byte { return a.buf[start:len(a.buf):len(a.buf)] }

// outboxSuffix appends the part of a message's key after "<campaign id> NUL": run, contact, NUL, slot.
func outboxSuffix(dst []byte, run int, contact string, slot int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(run))
	dst = append(dst, contact...)
	return append(dst, 0, byte(slot))
}

// outboxKey appends a message's key in outbox/.
func outboxKey(dst []byte, m *campaigns.Message) []byte {
	dst = append(append(dst, m.Campaign...), 0)
	return outboxSuffix(dst, m.Run, m.Contact, m.Slot)
}

// dueKey appends a due entry's key: the campaign prefix, the ordered due time, the message's key suffix.
func dueKey(dst, prefix []byte, due [8]byte, suffix []byte) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, due[:]...)
	return append(dst, suffix...)
}

func planKey(campaign string, run int) []byte {
	k := make([]byte, 0, len(campaign)+5)
	k = append(append(k, campaign...), 0)
	return binary.BigEndian.AppendUint32(k, uint32(run))
}

// lookup is b.Get through a cursor the caller reuses: Bucket.Get makes a cursor, and allocates its stack, on each
// call. The value is nil when key is absent.
func lookup(c *bolt.Cursor, key []byte) []byte {
	k, v := c.Seek(key)
	if v == nil || !bytes.Equal(k, key) {
		return nil
	}
	return v
}

// deleteKey is b.Delete through a cursor of b the caller reuses, for the same reason as lookup.
func deleteKey(c *bolt.Cursor, key []byte) error {
	if k, _ := c.Seek(key); k != nil && bytes.Equal(k, key) {
		return c.Delete()
	}
	return nil
}

// splitSuffix reads an outbox key suffix.
func splitSuffix(s []byte) (run int, contact []byte, slot int, ok bool) {
	if len(s) < outboxSuffixMin || s[len(s)-2] != 0 {
		return 0, nil, 0, false
	}
	return int(binary.BigEndian.Uint32(s)), s[4 : len(s)-2], int(s[len(s)-1]), true
}

// Times in outbox values: unix nanos, big-endian; the zero time is math.MinInt64 and reads back as the zero time.
func putTime(b []byte, t time.Time) {
	n := int64(math.MinInt64)
	if !t.IsZero() {
		n = clampNanos(t)
	}
	binary.BigEndian.PutUint64(b, uint64(n))
}

func readTime(b []byte) time.Time {
	n := int64(binary.BigEndian.Uint64(b))
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// storedTime is t as it reads back from an outbox value.
func storedTime(t time.Time) time.Time {
	var b [8]byte
	putTime(b[:], t)
	return readTime(b[:])
}

func encodedSize(m *campaigns.Message) int {
	return msgHeader + 6*binary.MaxVarintLen64 + binary.MaxVarintLen64 +
		len(m.Channel) + len(m.To) + len(m.ProviderID) + len(m.Error) + len(m.Trigger) + binary.MaxVarintLen64
}

// appendMessage appends m's outbox value with status code st.
func appendMessage(dst []byte, m *campaigns.Message, st byte) []byte {
	dst = append(dst, msgFormat1, st)
	var ts [24]byte
	putTime(ts[0:], m.Due)
	putTime(ts[8:], m.PlannedAt)
	putTime(ts[16:], m.SentAt)
	dst = append(dst, ts[:]...)
	dst = binary.AppendUvarint(dst, uint64(max(m.Attempts, 0)))
	for _, s := range [...]string{m.Channel, m.To, m.ProviderID, m.Error} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	// Optional tail: the trigger (a fifth text), then the A/B variant (a zigzag varint), then the units (a
	// varint); a record ends after the last of them it needs, records without any after the fourth text.
	if m.Trigger != "" || m.Variant != 0 || m.Units > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(m.Trigger)))
		dst = append(dst, m.Trigger...)
	}
	if m.Variant != 0 || m.Units > 0 {
		dst = binary.AppendVarint(dst, int64(m.Variant))
	}
	if m.Units > 0 {
		dst = binary.AppendUvarint(dst, uint64(m.Units))
	}
	return dst
}

var errCorrupt = errors.New("corrupt outbox record")

// decodeMessage reads an outbox value; campaign and the key suffix give the key fields.
func decodeMessage(campaign string, suffix, v []byte) (campaigns.Message, error) {
	run, contact, slot, ok := splitSuffix(suffix)
	if !ok || len(v) < msgHeader || v[0] != msgFormat1 || statusOf(v[1]) == "" {
		return campaigns.Message{}, errCorrupt
	}
	m := campaigns.Message{
		Campaign: campaign, Run: run, Contact: string(contact), Slot: slot, Status: statusOf(v[1]),
		Due: readTime(v[2:]), PlannedAt: readTime(v[10:]), SentAt: readTime(v[18:]),
	}
	rest := v[msgHeader:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > math.MaxInt32 {
		return campaigns.Message{}, errCorrupt
	}
	m.Attempts, rest = int(n), rest[w:]
	// One string for the four texts; the fields are substrings of it.
	text := string(rest)
	var fields [4]string
	off := 0
	for i := range fields {
		n, w := binary.Uvarint(rest[off:])
		if w <= 0 || n > uint64(len(rest)-off-w) {
			return campaigns.Message{}, errCorrupt
		}
		off += w
		fields[i] = text[off : off+int(n)]
		off += int(n)
	}
	m.Channel, m.To, m.ProviderID, m.Error = fields[0], fields[1], fields[2], fields[3]
	if off < len(rest) {
		n, w := binary.Uvarint(rest[off:])
		if w <= 0 || n > uint64(len(rest)-off-w) {
			return campaigns.Message{}, errCorrupt
		}
		off += w
		m.Trigger = text[off : off+int(n)]
		off += int(n)
	}
	if off < len(rest) {
		v, w := binary.Varint(rest[off:])
		if w <= 0 || v < -1 || v > 255 {
			return campaigns.Message{}, errCorrupt
		}
		m.Variant, off = int(v), off+w
	}
	if off < len(rest) {
		u, w := binary.Uvarint(rest[off:])
		if w <= 0 || off+w != len(rest) || u > math.MaxInt32 {
			return campaigns.Message{}, errCorrupt
		}
		m.Units, off = int(u), off+w
	}
	if off != len(rest) {
		return campaigns.Message{}, errCorrupt
	}
	return m, nil
}

// countDeltas accumulates the counts changes of a transaction, per key: a campaign id (its totals, in
// campaign_counts) or a breakdown key (breakdownKey: by variant or by channel, in campaign_breakdown).
type countDeltas []struct {
	campaign string
	d        campaigns.Counts
}

// breakdownKey is the campaign_breakdown key of a campaign's counts for one variant ('v') or one channel ('c').
func breakdownKey(campaign string, kind byte, name string) string {
	return campaign + "\x00" + string(kind) + name
}

// addBreakdown adds d to the counts of m's variant (when it has one) and of its channel (when it has one).
func (cd *countDeltas) addBreakdown(m *campaigns.Message, d campaigns.Counts) {
	if m.Variant > 0 {
		cd.of(breakdownKey(m.Campaign, 'v', strconv.Itoa(m.Variant))).Merge(d)
	}
	if m.Channel != "" {
		cd.of(breakdownKey(m.Campaign, 'c', m.Channel)).Merge(d)
	}
}

func (cd *countDeltas) of(campaign string) *campaigns.Counts {
	for i := range *cd {
		if (*cd)[i].campaign == campaign {
			return &(*cd)[i].d
		}
	}
	*cd = append(*cd, struct {
		campaign string
		d        campaigns.Counts
	}{campaign: campaign})
	return &(*cd)[len(*cd)-1].d
}

// apply adds the deltas to the stored counts.
func (cd countDeltas) apply(tx *bolt.Tx) error {
	totals, breakdown := tx.Bucket(bucketCampaignCounts), tx.Bucket(bucketCampaignBreakdown)
	for _, e := range cd {
		b := totals
		if strings.IndexByte(e.campaign, 0) >= 0 {
			b = breakdown
		}
		var c campaigns.Counts
		if v := b.Get([]byte(e.campaign)); v != nil {
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decoding counts of campaign %q: %w", e.campaign, err)
			}
		}
		c.Merge(e.d)
		if err := putJSON(b, e.campaign, c); err != nil {
			return err
		}
	}
	return nil
}

// PutCampaign creates or replaces a campaign.
func (s *Store) PutCampaign(ctx context.Context, ws string, c campaigns.Campaign, audit ...campaigns.AuditEntry) error {
	if err := checkCampaignID(c.ID); err != nil {
		return err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	entries := make([][]byte, len(audit))
	for i, e := range audit {
		if entries[i], err = json.Marshal(e); err != nil {
			return err
		}
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketCampaigns).Put([]byte(c.ID), data); err != nil {
			return err
		}
		for i, e := range audit {
			if err := putAudit(tx, c.ID, e.At, entries[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetCampaign returns a campaign, or errs.ErrNotFound.
func (s *Store) GetCampaign(_ context.Context, ws, id string) (campaigns.Campaign, error) {
	var c campaigns.Campaign
	db, err := s.Workspace(ws)
	if err != nil {
		return c, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCampaigns).Get([]byte(id))
		if v == nil || id == "" {
			return fmt.Errorf("campaign %q: %w", id, errs.ErrNotFound)
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decoding campaign %q: %w", id, err)
		}
		return nil
	})
	return c, err
}

// campaignIn reads a campaign in a transaction; ok is false when there is none.
func campaignIn(tx *bolt.Tx, id string) (c campaigns.Campaign, ok bool, err error) {
	v := tx.Bucket(bucketCampaigns).Get([]byte(id))
	if v == nil {
		return c, false, nil
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return c, false, fmt.Errorf("decoding campaign %q: %w", id, err)
	}
	return c, true, nil
}

// ListCampaigns returns the workspace's campaigns in id order.
func (s *Store) ListCampaigns(_ context.Context, ws string) ([]campaigns.Campaign, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, err
	}
	var out []campaigns.Campaign
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCampaigns).ForEach(func(k, v []byte) error {
			var c campaigns.Campaign
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decoding campaign %q: %w", k, err)
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// DeleteCampaign removes a campaign with its outbox, due entries, plan cursors, counts and audit trail, in one
// commit; errs.ErrNotFound when there is no such campaign (its rows, if any, then stay).
func (s *Store) DeleteCampaign(ctx context.Context, ws, id string) error {
	if err := checkCampaignID(id); err != nil {
		return err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCampaigns)
		if b.Get([]byte(id)) == nil {
			return refuse(fmt.Errorf("campaign %q: %w", id, errs.ErrNotFound))
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCampaignCounts).Delete([]byte(id)); err != nil {
			return err
		}
		prefix := idPrefix(id)
		for _, name := range [][]byte{bucketCampaignAudit, bucketOutbox, bucketOutboxDue, bucketOutboxPlan, bucketCampaignTriggers, bucketOutboxEngagement, bucketCampaignBreakdown} {
			if err := deletePrefixChunked(tx.Bucket(name), prefix); err != nil {
				return fmt.Errorf("deleting %s rows of campaign %q: %w", name, id, err)
			}
		}
		return nil
	})
}

// deletePrefixChunked removes every key of b that starts with prefix, deleteChunk keys at a time: it collects a
// chunk (deleting under a live cursor skips keys in bbolt), deletes it, and seeks again.
func deletePrefixChunked(b *bolt.Bucket, prefix []byte) error {
	keys := make([][]byte, 0, deleteChunk)
	var buf []byte
	for {
		keys, buf = keys[:0], buf[:0] // Delete keeps no reference to its key: the buffer is reused
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < deleteChunk; k, _ = c.Next() {
			start := len(buf)
			buf = append(buf, k...)
			keys = append(keys, buf[start:len(buf):len(buf)])
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		if len(keys) < deleteChunk {
			return nil
		}
	}
}

// putAudit appends an encoded audit entry of campaign id.
func putAudit(tx *bolt.Tx, id string, at time.Time, data []byte) error {
	b := tx.Bucket(bucketCampaignAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	ts := eventTime(at)
	k := idPrefix(id)
	k = append(k, ts[:]...)
	return b.Put(binary.BigEndian.AppendUint64(k, seq), data)
}

// Audit returns a campaign's audit trail, oldest first.
func (s *Store) Audit(_ context.Context, ws, id string) ([]campaigns.AuditEntry, error) {
	if err := checkCampaignID(id); err != nil {
		return nil, err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, err
	}
	var out []campaigns.AuditEntry
	prefix := idPrefix(id)
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCampaignAudit).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var e campaigns.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding audit entry of campaign %q: %w", id, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

type planRecord struct {
	After string `json:"after"`
	Done  bool   `json:"done"`
}

func getPlan(b *bolt.Bucket, key []byte) (planRecord, error) {
	var p planRecord
	if v := b.Get(key); v != nil {
		if err := json.Unmarshal(v, &p); err != nil {
			return p, fmt.Errorf("decoding plan cursor: %w", err)
		}
	}
	return p, nil
}

func putPlan(b *bolt.Bucket, key []byte, p planRecord) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// PlanMessages adds the messages whose key is not in the outbox yet, queued at their Due, and records after as the
// run's planning cursor (keeping its done flag), in one commit; it returns how many it added. A message already
// there is left as it is, so planning a page again after a crash adds nothing twice. All messages of one call
// belong to one campaign and run; with none, nothing is recorded.
func (s *Store) PlanMessages(ctx context.Context, ws string, msgs []campaigns.Message, after string) (int, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return 0, err
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	for i := range msgs {
		m := &msgs[i]
		if err := checkMessageKey(m); err != nil {
			return 0, fmt.Errorf("planning message %d: %w", i, err)
		}
		if m.Campaign != msgs[0].Campaign || m.Run != msgs[0].Run {
			return 0, fmt.Errorf("planning message %d: %w", i,
				errs.Invalid("messages", "belong to more than one campaign run (%s run %d, %s run %d)", msgs[0].Campaign, msgs[0].Run, m.Campaign, m.Run))
		}
	}
	campaign := msgs[0].Campaign
	pk := planKey(campaign, msgs[0].Run)
	var added int
	err = db.Update(ctx, func(tx *bolt.Tx) error {
		// Only a running campaign plans, and only its current run: a campaign cancelled or deleted while its
		// audience is being planned gets no more messages.
		c, ok, err := campaignIn(tx, campaign)
		if err != nil {
			return err
		}
		if !ok || c.Status != campaigns.Running || c.Runs != msgs[0].Run {
			return refuse(fmt.Errorf("campaign %s no longer plans run %d: %w", campaign, msgs[0].Run, errs.ErrConflict))
		}
		if added, err = planInTx(tx, msgs); err != nil {
			return err
		}
		plans := tx.Bucket(bucketOutboxPlan)
		p, err := getPlan(plans, pk)
		if err != nil {
			return err
		}
		p.After = after
		if err := putPlan(plans, pk, p); err != nil {
			return err
		}
		if added == 0 {
			return nil
		}
		return countDeltas{{campaign, campaigns.Counts{Planned: added, Queued: added}}}.apply(tx)
	})
	if err != nil {
		return 0, err
	}
	return added, nil
}

// planInTx adds the messages (of one campaign) whose keys are absent, as queued, with their due entries; it
// returns how many, and leaves the counts to the caller.
func planInTx(tx *bolt.Tx, msgs []campaigns.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	prefix := idPrefix(msgs[0].Campaign)
	box, due := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxDue)
	boxC := box.Cursor()
	var a arena
	var key []byte
	added := 0
	for i := range msgs {
		m := &msgs[i]
		key = outboxKey(key[:0], m)
		if lookup(boxC, key) != nil {
			continue
		}
		suffixLen := len(key) - len(prefix)
		a.reserve(2*len(key) + 8 + encodedSize(m))
		start := len(a.buf)
		a.buf = append(a.buf, key...)
		k := a.since(start)
		start = len(a.buf)
		a.buf = appendMessage(a.buf, m, codeQueued)
		v := a.since(start)
		if err := box.Put(k, v); err != nil {
			return 0, err
		}
		start = len(a.buf)
		a.buf = dueKey(a.buf, prefix, eventTime(m.Due), k[len(k)-suffixLen:])
		if err := due.Put(a.since(start), nil); err != nil {
			return 0, err
		}
		added++
	}
	return added, nil
}

// PlanTriggered plans the messages of triggered campaigns, one hit (a contact's trigger) at a time, in one
// transaction: a hit is dropped when its campaign's re-entry rule refuses it (campaign_triggers holds each
// contact's last accepted trigger), and its messages are otherwise planned like PlanMessages'. It returns how many
// hits were accepted.
func (s *Store) PlanTriggered(ctx context.Context, ws string, hits []campaigns.TriggerHit) (int, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return 0, err
	}
	for i, h := range hits {
		if h.Campaign == "" || h.Contact == "" || strings.IndexByte(h.Campaign, 0) >= 0 || strings.IndexByte(h.Contact, 0) >= 0 {
			return 0, fmt.Errorf("trigger %d: %w", i, errs.Invalid("hits", "a trigger needs a campaign and a contact id without NUL"))
		}
		for k := range h.Messages {
			m := &h.Messages[k]
			if err := checkMessageKey(m); err != nil {
				return 0, fmt.Errorf("trigger %d message %d: %w", i, k, err)
			}
			if m.Campaign != h.Campaign || m.Contact != h.Contact {
				return 0, fmt.Errorf("trigger %d message %d: %w", i, k, errs.Invalid("messages", "belong to another campaign or contact than their trigger"))
			}
		}
	}
	accepted := 0
	err = db.Update(ctx, func(tx *bolt.Tx) error {
		accepted = 0
		last := tx.Bucket(bucketCampaignTriggers)
		var deltas countDeltas
		running := map[string]bool{}
		for _, h := range hits {
			if _, seen := running[h.Campaign]; !seen {
				c, ok, err := campaignIn(tx, h.Campaign)
				if err != nil {
					return err
				}
				running[h.Campaign] = ok && c.Status == campaigns.Running // cancelled, paused or deleted: no trigger
			}
			if !running[h.Campaign] {
				continue
			}
			key := tagKey(h.Campaign, h.Contact)
			if v := last.Get(key); len(v) == 8 {
				prev := time.Unix(0, int64(binary.BigEndian.Uint64(v)))
				if h.Gap < 0 || h.Gap > 0 && h.At.Sub(prev) < h.Gap {
					continue
				}
			}
			var at [8]byte
			binary.BigEndian.PutUint64(at[:], uint64(h.At.UnixNano()))
			if err := last.Put(key, at[:]); err != nil {
				return err
			}
			added, err := planInTx(tx, h.Messages)
			if err != nil {
				return err
			}
			accepted++
			if added > 0 {
				d := deltas.of(h.Campaign)
				d.Planned += added
				d.Queued += added
			}
		}
		return deltas.apply(tx)
	})
	if err != nil {
		return 0, err
	}
	return accepted, nil
}

// TrackedEvent returns a stored event by its message id (a triggered message's event, for its template).
func (s *Store) TrackedEvent(ctx context.Context, ws, messageID string) (events.Event, bool, error) {
	var e events.Event
	found := false
	err := s.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		ct := tx.(*contactsTx)
		k := ct.eventIDs.Get([]byte(messageID))
		if k == nil {
			return nil
		}
		v := ct.events.Get(k)
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decoding event %q: %w", messageID, err)
		}
		if nul := bytes.IndexByte(k, 0); nul > 0 {
			e.ContactID = string(k[:nul])
		}
		found = true
		return nil
	})
	return e, found, err
}

// PlanCursor returns a run's planning cursor: the last contact id planned ("" before any) and whether planning
// finished.
func (s *Store) PlanCursor(_ context.Context, ws, campaign string, run int) (string, bool, error) {
	if err := checkPlanArgs(campaign, run); err != nil {
		return "", false, err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return "", false, err
	}
	var p planRecord
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = getPlan(tx.Bucket(bucketOutboxPlan), planKey(campaign, run))
		return err
	})
	return p.After, p.Done, err
}

// FinishPlan records that a run's planning finished; its cursor stays.
func (s *Store) FinishPlan(ctx context.Context, ws, campaign string, run int) error {
	if err := checkPlanArgs(campaign, run); err != nil {
		return err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	pk := planKey(campaign, run)
	return db.Update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutboxPlan)
		p, err := getPlan(b, pk)
		if err != nil {
			return err
		}
		p.Done = true
		return putPlan(b, pk, p)
	})
}

func checkPlanArgs(campaign string, run int) error {
	if err := checkCampaignID(campaign); err != nil {
		return err
	}
	if run < 1 || int64(run) > math.MaxUint32 {
		return errs.Invalid("run", "must be between 1 and %d", uint32(math.MaxUint32))
	}
	return nil
}

// firstDue reports whether the campaign has a due entry at or before now (ts: now as eventTime encodes it).
func firstDue(tx *bolt.Tx, prefix []byte, ts [8]byte) bool {
	k, _ := tx.Bucket(bucketOutboxDue).Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix) &&
		(len(k) < len(prefix)+8 || bytes.Compare(k[len(prefix):len(prefix)+8], ts[:]) <= 0)
}

// ClaimMessages marks up to limit of the campaign's messages due at now as sending, with attempts+1 and a lease
// until now+lease (their new Due), and returns them in due order, in one commit. lease must be positive: a claimed
// message then leaves the due range at once. A due entry whose message is missing or final is deleted and skipped.
// When nothing is due, no write is made.
func (s *Store) ClaimMessages(ctx context.Context, ws, campaign string, now time.Time, lease time.Duration, limit int) ([]campaigns.Message, error) {
	if err := checkCampaignID(campaign); err != nil {
		return nil, err
	}
	if lease <= 0 {
		return nil, errs.Invalid("lease", "must be positive")
	}
	if limit < 1 {
		return nil, errs.Invalid("limit", "must be at least 1")
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, err
	}
	prefix := idPrefix(campaign)
	nowTS := eventTime(now)
	var anyDue bool
	if err := db.View(func(tx *bolt.Tx) error { anyDue = firstDue(tx, prefix, nowTS); return nil }); err != nil || !anyDue {
		return nil, err
	}
	leaseEnd := storedTime(now.Add(lease))
	leaseTS := eventTime(leaseEnd)
	var out []campaigns.Message
	err = db.Update(ctx, func(tx *bolt.Tx) error {
		out = make([]campaigns.Message, 0, min(limit, 1024))
		box, due := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxDue)
		boxC := box.Cursor()
		var a arena
		var scratch, key []byte
		keys := make([][]byte, 0, min(limit, 1024))
		var d campaigns.Counts
		for len(out) < limit {
			// Collect due keys first: writing under a live cursor moves it unpredictably. Each one is then
			// either moved past now (claimed) or deleted (repaired), so seeking again finds the next ones.
			keys, scratch = keys[:0], scratch[:0]
			c := due.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < limit-len(out); k, _ = c.Next() {
				if len(k) >= len(prefix)+8 && bytes.Compare(k[len(prefix):len(prefix)+8], nowTS[:]) > 0 {
					break
				}
				start := len(scratch)
				scratch = append(scratch, k...)
				keys = append(keys, scratch[start:len(scratch):len(scratch)])
			}
			if len(keys) == 0 {
				break
			}
			for _, dk := range keys {
				if err := deleteKey(c, dk); err != nil {
					return err
				}
				if len(dk) < len(prefix)+8+outboxSuffixMin {
					continue
				}
				suffix := dk[len(prefix)+8:]
				key = append(append(key[:0], prefix...), suffix...)
				v := lookup(boxC, key)
				if len(v) < msgHeader || !pendingCode(v[1]) {
					continue
				}
				m, err := decodeMessage(campaign, suffix, v)
				if err != nil {
					return fmt.Errorf("claiming message %q: %w", key, err)
				}
				d.Add(m.Status, -1)
				d.Sending++
				m.Status, m.Attempts, m.Due = campaigns.Sending, m.Attempts+1, leaseEnd
				a.reserve(2*len(key) + 8 + encodedSize(&m))
				start := len(a.buf)
				a.buf = append(a.buf, key...)
				k := a.since(start)
				start = len(a.buf)
				a.buf = appendMessage(a.buf, &m, codeSending)
				if err := box.Put(k, a.since(start)); err != nil {
					return err
				}
				start = len(a.buf)
				a.buf = dueKey(a.buf, prefix, leaseTS, k[len(prefix):])
				if err := due.Put(a.since(start), nil); err != nil {
					return err
				}
				out = append(out, m)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return countDeltas{{campaign, d}}.apply(tx)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReleaseClaims makes every sending message of the campaign claimable at now: a lease ending after now is cut to
// now (Due and due entry move; the counts stay, the messages are still sending). It returns how many messages were
// sending. The outbox is read in a read transaction; the moves are written cancelChunk per commit, each checking
// that the message is still sending.
func (s *Store) ReleaseClaims(ctx context.Context, ws, campaign string, now time.Time) (int, error) {
	if err := checkCampaignID(campaign); err != nil {
		return 0, err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return 0, err
	}
	prefix := idPrefix(campaign)
	now = storedTime(now)
	var nowVal [8]byte
	putTime(nowVal[:], now)
	var keys [][]byte // outbox keys of sending messages whose lease ends after now
	sending := 0
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(v) < msgHeader || v[1] != codeSending {
				continue
			}
			sending++
			if int64(binary.BigEndian.Uint64(v[2:])) > int64(binary.BigEndian.Uint64(nowVal[:])) {
				keys = append(keys, bytes.Clone(k))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	nowTS := eventTime(now)
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), cancelChunk)]
		keys = keys[len(chunk):]
		err := db.Update(ctx, func(tx *bolt.Tx) error {
			box, due := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxDue)
			var a arena
			var dk []byte
			for _, k := range chunk {
				v := box.Get(k)
				if len(v) < msgHeader || v[1] != codeSending {
					continue // saved or cancelled since the read
				}
				var oldDue [8]byte
				binary.BigEndian.PutUint64(oldDue[:], binary.BigEndian.Uint64(v[2:])^(1<<63))
				dk = dueKey(dk[:0], prefix, oldDue, k[len(prefix):])
				if err := due.Delete(dk); err != nil {
					return err
				}
				a.reserve(len(v) + len(k) + 8)
				start := len(a.buf)
				a.buf = append(a.buf, v...)
				nv := a.since(start)
				copy(nv[2:10], nowVal[:])
				if err := box.Put(k, nv); err != nil {
					return err
				}
				start = len(a.buf)
				a.buf = dueKey(a.buf, prefix, nowTS, k[len(prefix):])
				if err := due.Put(a.since(start), nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return sending, nil
}

// SaveMessages writes messages' new state by key, in one commit: the record, its due entry (one at the new Due
// while pending, none once final) and the counts. A message not in the outbox fails the whole call
// (errs.ErrNotFound) and nothing is written.
func (s *Store) SaveMessages(ctx context.Context, ws string, msgs []campaigns.Message) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	for i := range msgs {
		m := &msgs[i]
		if err := checkMessageKey(m); err != nil {
			return fmt.Errorf("saving message %d: %w", i, err)
		}
		if statusCode(m.Status) == 0 {
			return fmt.Errorf("saving message %d: %w", i, errs.Invalid("status", "%q is not a message status", m.Status))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return db.Update(ctx, func(tx *bolt.Tx) error {
		box, due := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxDue)
		boxC := box.Cursor()
		// Read every old state first (status code and due, from the value's header), so that an unknown key fails
		// before anything is written; then write in key order, which keeps bbolt on the same leaves. A key given
		// twice is applied in the order given: the later one's old state is the earlier one's new state.
		var a arena
		rows := make([]saveRow, len(msgs))
		for i := range msgs {
			m := &msgs[i]
			a.reserve(2*(len(m.Campaign)+len(m.Contact)+7) + 8 + encodedSize(m))
			start := len(a.buf)
			a.buf = outboxKey(a.buf, m)
			r := &rows[i]
			r.i, r.key = i, a.since(start)
			v := lookup(boxC, r.key)
			switch {
			case v == nil:
				return refuse(fmt.Errorf("saving message %s: %w", m.ID(), errs.ErrNotFound))
			case len(v) < msgHeader:
				return refuse(fmt.Errorf("saving message %s: %w", m.ID(), errCorrupt))
			}
			r.oldCode = v[1]
			binary.BigEndian.PutUint64(r.oldDue[:], binary.BigEndian.Uint64(v[2:])^(1<<63)) // as eventTime encodes it
		}
		slices.SortStableFunc(rows, func(x, y saveRow) int { return bytes.Compare(x.key, y.key) })
		var deltas countDeltas
		var dk []byte
		dueC := due.Cursor()
		for j := range rows {
			r := &rows[j]
			m := &msgs[r.i]
			if j > 0 && bytes.Equal(rows[j-1].key, r.key) {
				prev := &msgs[rows[j-1].i]
				r.oldCode, r.oldDue = statusCode(prev.Status), eventTime(prev.Due)
			}
			pl := len(m.Campaign) + 1
			if !pendingCode(r.oldCode) && pendingCode(statusCode(m.Status)) {
				// A final message never goes back to the queue: a batch claimed before a Cancel answered "retry".
				m.Status = statusOf(r.oldCode)
				continue
			}
			if pendingCode(r.oldCode) {
				dk = dueKey(dk[:0], r.key[:pl], r.oldDue, r.key[pl:])
				if err := deleteKey(dueC, dk); err != nil {
					return err
				}
			}
			code := statusCode(m.Status)
			start := len(a.buf)
			a.buf = appendMessage(a.buf, m, code)
			if err := box.Put(r.key, a.since(start)); err != nil {
				return err
			}
			if pendingCode(code) {
				start = len(a.buf)
				a.buf = dueKey(a.buf, r.key[:pl], eventTime(m.Due), r.key[pl:])
				if err := due.Put(a.since(start), nil); err != nil {
					return err
				}
			}
			if r.oldCode != code {
				d := deltas.of(m.Campaign)
				d.Add(statusOf(r.oldCode), -1)
				d.Add(m.Status, 1)
				if m.Status == campaigns.Sent {
					d.Units += m.Units
				}
				if m.Status.Final() && (!statusOf(r.oldCode).Final() || statusOf(r.oldCode) == campaigns.MessageCancelled) {
					// Breakdowns count outcomes only: a message's variant and channel are known once it is settled.
					var o campaigns.Counts
					o.Add(m.Status, 1)
					if m.Status == campaigns.Sent {
						o.Units = m.Units
					}
					deltas.addBreakdown(m, o)
				}
				if m.Status == campaigns.Sent {
					if err := logSend(tx, m); err != nil {
						return err
					}
				}
			}
		}
		return deltas.apply(tx)
	})
}

// logSend records a message sent in contact_sends: what frequency caps count.
func logSend(tx *bolt.Tx, m *campaigns.Message) error {
	at := eventTime(m.SentAt)
	k := make([]byte, 0, len(m.Contact)+1+8+len(m.Campaign)+1+4+1)
	k = append(append(k, m.Contact...), 0)
	k = append(k, at[:]...)
	k = append(append(k, m.Campaign...), 0)
	k = binary.BigEndian.AppendUint32(k, uint32(m.Run))
	k = append(k, byte(m.Slot))
	kind := byte('m')
	if m.Transactional {
		kind = 't'
	}
	return tx.Bucket(bucketContactSends).Put(k, []byte{kind})
}

// CountSends returns, for each contact, how many marketing messages it was sent at or after since (contacts without
// any are absent).
func (s *Store) CountSends(ctx context.Context, ws string, contactIDs []string, since time.Time) (map[string]int, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketContactSends).Cursor()
		from := eventTime(since)
		for _, id := range contactIDs {
			if _, done := out[id]; done || id == "" {
				continue
			}
			prefix := append([]byte(id), 0)
			n := 0
			for k, v := c.Seek(append(bytes.Clone(prefix), from[:]...)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(v) == 1 && v[0] == 'm' {
					n++
				}
			}
			if n > 0 {
				out[id] = n
			}
		}
		return nil
	})
	return out, err
}

// SentSince returns the messages a contact was sent at or after since (both kinds), oldest first.
func (s *Store) SentSince(_ context.Context, ws, contactID string, since time.Time) ([]campaigns.SentMessage, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, err
	}
	var out []campaigns.SentMessage
	prefix := append([]byte(contactID), 0)
	from := eventTime(since)
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketContactSends).Cursor()
		for k, _ := c.Seek(append(bytes.Clone(prefix), from[:]...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rest := k[len(prefix):]
			nul := bytes.IndexByte(rest[min(8, len(rest)):], 0)
			if len(rest) < 8 || nul < 0 || len(rest) != 8+nul+1+4+1 {
				return fmt.Errorf("corrupt contact_sends key %q", k)
			}
			campaign := string(rest[8 : 8+nul])
			tail := rest[8+nul+1:]
			out = append(out, campaigns.SentMessage{Message: campaigns.Message{Campaign: campaign, Run: int(binary.BigEndian.Uint32(tail)),
				Contact: contactID, Slot: int(tail[4])}, At: decodeOrderedTime(rest[:8])})
		}
		return nil
	})
	return out, err
}

// ForgetAddresses blanks the address of every outbox message to a contact (erasure). It walks the whole outbox:
// keys lead with the campaign and the run, not the contact; erasures are rare.
func (s *Store) ForgetAddresses(ctx context.Context, ws, contactID string) (int, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return 0, err
	}
	var keys [][]byte
	var vals [][]byte
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			nul := bytes.IndexByte(k, 0)
			if nul < 0 {
				return nil
			}
			if _, contact, _, ok := splitSuffix(k[nul+1:]); ok && string(contact) == contactID {
				m, err := decodeMessage(string(k[:nul]), k[nul+1:], v)
				if err != nil || m.To == "" {
					return nil
				}
				m.To = ""
				keys = append(keys, bytes.Clone(k))
				vals = append(vals, appendMessage(nil, &m, v[1]))
			}
			return nil
		})
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	err = db.Update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for i, k := range keys {
			if cur := b.Get(k); cur == nil || cur[1] != vals[i][1] {
				continue // changed meanwhile (a retry was recorded): left for the next erasure pass
			}
			if err := b.Put(k, vals[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return len(keys), err
}

// SoftBounce counts one more soft bounce of a contact on a consent channel and returns the count since the last
// delivery (ClearSoftBounces).
func (s *Store) SoftBounce(ctx context.Context, ws, contactID, channel string) (int, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return 0, err
	}
	key := tagKey(contactID, channel)
	n := 0
	err = db.Update(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSoftBounces)
		n = 1
		if v := b.Get(key); len(v) == 4 {
			n = int(binary.BigEndian.Uint32(v)) + 1
		}
		return b.Put(key, binary.BigEndian.AppendUint32(nil, uint32(n)))
	})
	return n, err
}

// ClearSoftBounces forgets a contact's soft bounces on a channel (a message was delivered).
func (s *Store) ClearSoftBounces(ctx context.Context, ws, contactID, channel string) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	key := tagKey(contactID, channel)
	var found bool
	_ = db.View(func(tx *bolt.Tx) error { found = tx.Bucket(bucketSoftBounces).Get(key) != nil; return nil })
	if !found {
		return nil // the usual case: no write
	}
	return db.Update(ctx, func(tx *bolt.Tx) error { return tx.Bucket(bucketSoftBounces).Delete(key) })
}

// ForgetSends deletes a contact's send log and soft bounce counts (erasure).
func (s *Store) ForgetSends(ctx context.Context, ws, contactID string) error {
	db, err := s.Workspace(ws)
	if err != nil {
		return err
	}
	prefix := append([]byte(contactID), 0)
	return db.Update(ctx, func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketContactSends, bucketSoftBounces} {
			c := tx.Bucket(name).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// saveRow is one message of a SaveMessages call: its index, key and old state.
type saveRow struct {
	i       int
	key     []byte
	oldCode byte
	oldDue  [8]byte
}

// CancelMessages marks every pending message of a campaign cancelled and removes their due entries, cancelChunk
// messages per commit (each keeps the counts exact), and returns how many it cancelled.
func (s *Store) CancelMessages(ctx context.Context, ws, campaign string) (int, error) {
	if err := checkCampaignID(campaign); err != nil {
		return 0, err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return 0, err
	}
	prefix := idPrefix(campaign)
	total := 0
	for {
		var seen, cancelled int
		err := db.Update(ctx, func(tx *bolt.Tx) error {
			seen, cancelled = 0, 0
			box, due := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutboxDue)
			var keys [][]byte
			var scratch []byte
			c := due.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(keys) < cancelChunk; k, _ = c.Next() {
				start := len(scratch)
				scratch = append(scratch, k...)
				keys = append(keys, scratch[start:len(scratch):len(scratch)])
			}
			seen = len(keys)
			boxC := box.Cursor()
			var a arena
			var key []byte
			var d campaigns.Counts
			for _, dk := range keys {
				if err := deleteKey(c, dk); err != nil {
					return err
				}
				if len(dk) < len(prefix)+8+outboxSuffixMin {
					continue
				}
				key = append(append(key[:0], prefix...), dk[len(prefix)+8:]...)
				v := lookup(boxC, key)
				if len(v) < msgHeader || !pendingCode(v[1]) {
					continue
				}
				d.Add(statusOf(v[1]), -1)
				d.Cancelled++
				a.reserve(len(key) + len(v))
				start := len(a.buf)
				a.buf = append(a.buf, key...)
				k := a.since(start)
				start = len(a.buf)
				a.buf = append(a.buf, v...)
				nv := a.since(start)
				nv[1] = codeCancelled
				if err := box.Put(k, nv); err != nil {
					return err
				}
				cancelled++
			}
			if cancelled == 0 {
				return nil
			}
			return countDeltas{{campaign, d}}.apply(tx)
		})
		if err != nil {
			return total, err
		}
		total += cancelled
		if seen < cancelChunk {
			return total, nil
		}
	}
}

// CampaignCounts returns a campaign's messages by status (all zero before any is planned).
func (s *Store) CampaignCounts(_ context.Context, ws, campaign string) (campaigns.Counts, error) {
	var c campaigns.Counts
	if err := checkCampaignID(campaign); err != nil {
		return c, err
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return c, err
	}
	err = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketCampaignCounts).Get([]byte(campaign)); v != nil {
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decoding counts of campaign %q: %w", campaign, err)
			}
		}
		return nil
	})
	return c, err
}

// ListMessages returns up to limit (1 to 1000) of a campaign's messages after the message id after, in key order
// (run, contact, slot), only those of status when it is not empty. The next cursor is the last message's id when
// more may follow (a last page may then come back empty), "" at the end.
func (s *Store) ListMessages(_ context.Context, ws, campaign string, status campaigns.MessageStatus, after string, limit int) ([]campaigns.Message, string, error) {
	if err := checkCampaignID(campaign); err != nil {
		return nil, "", err
	}
	if limit < 1 || limit > maxListMessages {
		return nil, "", errs.Invalid("limit", "must be between 1 and %d", maxListMessages)
	}
	var want byte
	if status != "" {
		if want = statusCode(status); want == 0 {
			return nil, "", errs.Invalid("status", "%q is not a message status", status)
		}
	}
	prefix := idPrefix(campaign)
	from := prefix
	if after != "" {
		c, run, contact, slot, ok := campaigns.ParseMessageID(after)
		if !ok || c != campaign {
			return nil, "", errs.Invalid("cursor", "is not a message id of campaign %q", campaign)
		}
		from = outboxSuffix(bytes.Clone(prefix), run, contact, slot)
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, "", err
	}
	var out []campaigns.Message
	var more bool
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		k, v := c.Seek(from)
		if k != nil && bytes.Equal(k, from) {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(out) == limit {
				more = true
				break
			}
			if want != 0 && (len(v) < 2 || v[1] != want) {
				continue
			}
			m, err := decodeMessage(campaign, k[len(prefix):], v)
			if err != nil {
				return fmt.Errorf("reading message %q: %w", k, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil || !more {
		return out, "", err
	}
	return out, out[len(out)-1].ID(), nil
}

// GetMessage returns one message by id (campaigns.Message.ID).
func (s *Store) GetMessage(_ context.Context, ws, id string) (campaigns.Message, error) {
	campaign, run, contact, slot, ok := campaigns.ParseMessageID(id)
	if !ok {
		return campaigns.Message{}, errs.Invalid("id", "is not a message id")
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return campaigns.Message{}, err
	}
	prefix := idPrefix(campaign)
	key := outboxSuffix(bytes.Clone(prefix), run, contact, slot)
	var m campaigns.Message
	err = db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOutbox).Get(key)
		if v == nil {
			return fmt.Errorf("message %q: %w", id, errs.ErrNotFound)
		}
		var err error
		if m, err = decodeMessage(campaign, key[len(prefix):], v); err != nil {
			return fmt.Errorf("reading message %q: %w", id, err)
		}
		return nil
	})
	return m, err
} // CampaignBreakdown returns a campaign's outcome and engagement counts by A/B variant (1-based) and by channel.
func (s *Store) CampaignBreakdown(_ context.Context, ws, campaign string) (map[int]campaigns.Counts, map[string]campaigns.Counts, error) {
	db, err := s.Workspace(ws)
	if err != nil {
		return nil, nil, err
	}
	variants, channels := map[int]campaigns.Counts{}, map[string]campaigns.Counts{}
	prefix := idPrefix(campaign)
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCampaignBreakdown).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rest := k[len(prefix):]
			if len(rest) < 2 {
				return fmt.Errorf("corrupt campaign_breakdown key %q", k)
			}
			var counts campaigns.Counts
			if err := json.Unmarshal(v, &counts); err != nil {
				return fmt.Errorf("decoding campaign_breakdown %q: %w", k, err)
			}
			switch rest[0] {
			case 'v':
				n, err := strconv.Atoi(string(rest[1:]))
				if err != nil {
					return fmt.Errorf("corrupt campaign_breakdown key %q", k)
				}
				variants[n] = counts
			case 'c':
				channels[string(rest[1:])] = counts
			default:
				return fmt.Errorf("corrupt campaign_breakdown key %q", k)
			}
		}
		return nil
	})
	return variants, channels, err
}

// RecordEngagement counts an open, a click or an unsubscribe of a message, in outbox_engagement (per message) and
// campaign_counts, in one transaction.
func (s *Store) RecordEngagement(ctx context.Context, ws, msgID string, kind campaigns.Engagement) (bool, error) {
	campaign, run, contact, slot, ok := campaigns.ParseMessageID(msgID)
	if !ok {
		return false, errs.Invalid("id", "is not a message id")
	}
	field := map[campaigns.Engagement]int{campaigns.Open: 0, campaigns.Click: 1, campaigns.Unsubscribe: 2,
		campaigns.Delivery: 3, campaigns.HardBounce: 4, campaigns.SoftBounce: 5, campaigns.Complaint: 6, campaigns.Conversion: 7}
	i, known := field[kind]
	if !known {
		return false, errs.Invalid("kind", "%q is not an engagement", kind)
	}
	db, err := s.Workspace(ws)
	if err != nil {
		return false, err
	}
	prefix := idPrefix(campaign)
	key := outboxSuffix(bytes.Clone(prefix), run, contact, slot)
	first := false
	err = db.Update(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOutbox).Get(key)
		if v == nil {
			return fmt.Errorf("message %q: %w", msgID, errs.ErrNotFound)
		}
		m, err := decodeMessage(campaign, key[len(prefix):], v)
		if err != nil {
			return fmt.Errorf("reading message %q: %w", msgID, err)
		}
		b := tx.Bucket(bucketOutboxEngagement)
		var n [4 * 8]byte
		copy(n[:], b.Get(key)) // older values are shorter: their later counters are 0
		c := binary.BigEndian.Uint32(n[4*i:])
		first = c == 0
		if kind != campaigns.Open && kind != campaigns.Click && !first {
			return nil // once per message
		}
		binary.BigEndian.PutUint32(n[4*i:], c+1)
		if err := b.Put(key, n[:]); err != nil {
			return err
		}
		var d campaigns.Counts
		switch kind {
		case campaigns.Open:
			d.Opened = 1
			if first {
				d.OpenedUnique = 1
			}
		case campaigns.Click:
			d.Clicked = 1
			if first {
				d.ClickedUnique = 1
			}
		case campaigns.Unsubscribe:
			d.Unsubscribed = 1
		case campaigns.Delivery:
			d.Delivered = 1
		case campaigns.HardBounce:
			d.BouncedHard = 1
		case campaigns.SoftBounce:
			d.BouncedSoft = 1
		case campaigns.Complaint:
			d.Complained = 1
		case campaigns.Conversion:
			d.Converted = 1
		}
		deltas := countDeltas{{campaign, d}}
		deltas.addBreakdown(&m, d)
		return deltas.apply(tx)
	})
	return first, err
}
