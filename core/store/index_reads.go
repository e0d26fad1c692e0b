package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
)

// Reads for the in-memory segment index: what it needs from a whole workspace file at start-up, read without
// decoding each record's JSON (CONVENTIONS.md: decoding dominates scans).

// ChangeSeq returns the last number of the workspace's change sequence (meta/change_seq) without advancing it; 0
// when none was taken yet.
func (t *contactsTx) ChangeSeq() uint64 {
	if v := t.meta.Get(keyChangeSeq); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Snapshot identifies the committed state the transaction reads: the bbolt transaction id (meta txid) of a read
// transaction, which only a committed write changes. Two transactions with the same Snapshot see the same data.
func (t *contactsTx) Snapshot() uint64 {
	return uint64(t.tx.ID())
}

// TrackEventNames returns the names of track events by code (TrackEventNames()[code]), as ScanTrackEvents gives
// them in the same transaction.
func (t *contactsTx) TrackEventNames() ([]string, error) { return t.eventNameTable() }

// ScanTrackEvents walks the stored track events contact by contact, in contact id order, without decoding them: fn
// gets a contact's events' times (Unix nanoseconds) and name codes (see TrackEventNames), in no particular order,
// and may keep neither slice (both are reused). It stops when fn returns false.
//
// It reads the digest (event_names, track_events; doc.go), not events/: event_names once, to check codes, then
// each chunk of track_events in key order, so a contact's chunks come together. A chunk that does not decode is
// an error naming its key.
func (t *contactsTx) ScanTrackEvents(fn func(contactID string, at []int64, codes []uint32) bool) error {
	table, err := t.eventNameTable()
	if err != nil {
		return err
	}
	var (
		contact string
		started bool
		ats     []int64
		codes   []uint32
	)
	c := t.trackEvents.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		nul := len(k) - chunkKeySuffix
		if nul < 0 || k[nul] != 0 {
			return fmt.Errorf("corrupt track_events key %q", k)
		}
		if id := k[:nul]; !started || contact != string(id) { // no allocation: the comparison does not copy
			if started && len(ats) > 0 && !fn(contact, ats, codes) {
				return nil
			}
			contact, started = string(id), true
			ats, codes = ats[:0], codes[:0]
		}
		for off := 0; off < len(v); {
			b := v[off:]
			if len(b) < 9 {
				return fmt.Errorf("corrupt track_events chunk %q: truncated entry at byte %d", k, off)
			}
			var code uint64
			w := 1
			if b[8] < 0x80 {
				code = uint64(b[8])
			} else if code, w = binary.Uvarint(b[8:]); w <= 0 {
				return fmt.Errorf("corrupt track_events chunk %q: truncated entry at byte %d", k, off)
			}
			if code >= uint64(len(table)) {
				return fmt.Errorf("corrupt track_events chunk %q: unknown event name code %d at byte %d", k, code, off)
			}
			ats = append(ats, int64(binary.BigEndian.Uint64(b)^(1<<63)))
			codes = append(codes, uint32(code))
			off += 8 + w
		}
	}
	if started && len(ats) > 0 {
		fn(contact, ats, codes)
	}
	return nil
}

// eventNameTable reads event_names into a table from code to name, checking that the codes are dense from 1 (0 is
// the empty name, not stored).
func (t *contactsTx) eventNameTable() ([]string, error) {
	type pair struct {
		name string
		code uint32
	}
	var pairs []pair
	err := t.eventNames.ForEach(func(k, v []byte) error {
		if len(v) != 4 {
			return fmt.Errorf("corrupt event name code for %q", k)
		}
		pairs = append(pairs, pair{string(k), binary.BigEndian.Uint32(v)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	table := make([]string, len(pairs)+1)
	seen := make([]bool, len(pairs)+1)
	for _, p := range pairs {
		if p.code == 0 || int64(p.code) > int64(len(pairs)) || seen[p.code] {
			return nil, fmt.Errorf("corrupt event name code %d for %q: codes are not dense", p.code, p.name)
		}
		table[p.code], seen[p.code] = p.name, true
	}
	return table, nil
}

var (
	encPrefix = []byte(`{"message_id":`)
	encType   = []byte(`,"type":`)
	encName   = []byte(`,"name":`)
)

// trackName reads an event value as events.Encode writes it. ok is false when v does not start as Encode's output
// does (the caller then decodes it in full); otherwise track tells whether it is a track event and name is its
// name (which may alias v).
func trackName(v []byte) (name []byte, track, ok bool) {
	if !bytes.HasPrefix(v, encPrefix) {
		return nil, false, false
	}
	i := len(encPrefix)
	_, n, ok := jsonString(v[i:])
	if !ok {
		return nil, false, false
	}
	i += n
	if !bytes.HasPrefix(v[i:], encType) {
		return nil, false, false
	}
	i += len(encType)
	typ, n, ok := jsonString(v[i:])
	if !ok {
		return nil, false, false
	}
	i += n
	if string(typ) != string(events.Track) {
		return nil, false, true
	}
	if !bytes.HasPrefix(v[i:], encName) {
		// Encode writes a non-empty name right after the type; anything else may be another key order.
		return nil, false, false
	}
	i += len(encName)
	name, _, ok = jsonString(v[i:])
	if !ok {
		return nil, false, false
	}
	return name, true, true
}

// jsonString reads the JSON string token at the start of b and returns its value, the token's length, and whether
// it is one. The value aliases b unless the token holds escapes, which json.Unmarshal then resolves.
func jsonString(b []byte) (s []byte, n int, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, 0, false
	}
	escaped := false
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++ // the escaped byte cannot end the string
		case '"':
			if !escaped {
				return b[1:i], i + 1, true
			}
			var out string
			if json.Unmarshal(b[:i+1], &out) != nil {
				return nil, 0, false
			}
			return []byte(out), i + 1, true
		}
	}
	return nil, 0, false
}

var _ segments.RebuildTx = (*contactsTx)(nil)
