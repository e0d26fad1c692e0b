package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

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

// nameCacheMax bounds the strings ScanEventNames keeps to hand out the same name without allocating: event names
// are few (a product's tracking plan), so the cache is a small map; past the bound, names are allocated as usual.
const nameCacheMax = 4096

// ScanEventNames walks every stored event in key order (contact id, then time) and calls fn with the contact, the
// time from the key and the name of each track event, until fn returns false. Values are not decoded: the name is
// read from the prefix events.Encode writes ({"message_id":...,"type":...,"name":...}); a value that does not
// start that way (another writer's key order, whitespace) is decoded with encoding/json instead.
func (t *contactsTx) ScanEventNames(fn func(contactID string, at time.Time, name string) bool) error {
	names := make(map[string]string)
	var contact string
	c := t.events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		nul := bytes.IndexByte(k, 0)
		if nul < 0 || len(k) < nul+1+8 {
			return fmt.Errorf("corrupt event key %q", k)
		}
		name, track, ok := trackName(v)
		if !ok {
			var e events.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding event %q: %w", k, err)
			}
			track, ok = e.Type == events.Track, true
			name = nil
			if track {
				name = []byte(e.Name)
			}
		}
		if !track {
			continue
		}
		if id := k[:nul]; contact != string(id) { // no allocation: the comparison does not copy
			contact = string(id)
		}
		s, hit := names[string(name)]
		if !hit {
			s = string(name)
			if len(names) < nameCacheMax {
				names[s] = s
			}
		}
		if !fn(contact, decodeOrderedTime(k[nul+1:nul+9]), s) {
			return nil
		}
	}
	return nil
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
