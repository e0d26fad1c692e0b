// Package events owns what contacts do: the Event record (the Segment spec's identify, track, page, screen, group
// and alias calls, normalised), the parsing and validation of Segment-format messages, and clock-skew correction.
//
// It is a leaf: it imports only the standard library and core/errs. Storage of events, and the identity of the
// contact an event belongs to, are core/contacts' business.
package events

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Encode returns the stored form of e: its JSON without the contact id. Callers encode before entering a store
// transaction, so that the single writer of a workspace file does not spend its time in encoding/json. It writes
// what json.Marshal would (TestEncodeMatchesEncodingJSON) at a fraction of the cost: the raw objects are copied, not
// re-validated and compacted.
func Encode(e Event) ([]byte, error) {
	for _, raw := range []json.RawMessage{e.Properties, e.Traits, e.Context} {
		if len(raw) > 0 && !json.Valid(raw) {
			e.ContactID = ""
			return json.Marshal(&e) // reports the invalid object as json.Marshal does
		}
	}
	b := make([]byte, 0, 160+len(e.Properties)+len(e.Traits)+len(e.Context))
	b = append(b, `{"message_id":`...)
	b = appendString(b, e.MessageID)
	b = append(b, `,"type":`...)
	b = appendString(b, string(e.Type))
	for _, f := range [...]struct {
		key, v string
	}{{`,"name":`, e.Name}, {`,"user_id":`, e.UserID}, {`,"anonymous_id":`, e.AnonymousID},
		{`,"group_id":`, e.GroupID}, {`,"previous_id":`, e.PreviousID}} {
		if f.v != "" {
			b = append(b, f.key...)
			b = appendString(b, f.v)
		}
	}
	for _, f := range [...]struct {
		key string
		v   json.RawMessage
	}{{`,"properties":`, e.Properties}, {`,"traits":`, e.Traits}, {`,"context":`, e.Context}} {
		if len(f.v) > 0 {
			b = append(b, f.key...)
			b = append(b, f.v...)
		}
	}
	b = append(b, `,"timestamp":`...)
	b = appendTime(b, e.Timestamp)
	if !e.OriginalTimestamp.IsZero() {
		b = append(b, `,"original_timestamp":`...)
		b = appendTime(b, e.OriginalTimestamp)
	}
	if !e.SentAt.IsZero() {
		b = append(b, `,"sent_at":`...)
		b = appendTime(b, e.SentAt)
	}
	b = append(b, `,"received_at":`...)
	b = appendTime(b, e.ReceivedAt)
	return append(b, '}'), nil
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does (invalid UTF-8 becomes U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Type is the kind of a Segment call.
type Type string

// The Segment spec's call types.
const (
	Identify Type = "identify"
	Track    Type = "track"
	Page     Type = "page"
	Screen   Type = "screen"
	Group    Type = "group"
	Alias    Type = "alias"
)

// Valid reports whether t is one of the spec's call types.
func (t Type) Valid() bool {
	switch t {
	case Identify, Track, Page, Screen, Group, Alias:
		return true
	}
	return false
}

// Event is one stored event, normalised from whatever sent it (the tracking API, the JS tag, an import).
//
// Properties, Traits and Context are kept as the JSON objects the sender gave (Context with the IP handled per the
// workspace's setting), so nothing a client sent is lost and ingestion does not pay to rebuild them.
type Event struct {
	// MessageID identifies the event for deduplication: a client's retry with the same messageId is stored once.
	MessageID string `json:"message_id"`
	Type      Type   `json:"type"`
	// Name is the event name of a track call ("Order Completed") or the page/screen name.
	Name string `json:"name,omitempty"`
	// ContactID is the contact the event belongs to, set when it is stored (after identity resolution). Stored
	// events do not repeat it (it is in their key), so merges move events without rewriting them.
	ContactID   string `json:"contact_id,omitempty"`
	UserID      string `json:"user_id,omitempty"`
	AnonymousID string `json:"anonymous_id,omitempty"`
	// GroupID is the account of a group call; PreviousID the old identity of an alias call.
	GroupID    string          `json:"group_id,omitempty"`
	PreviousID string          `json:"previous_id,omitempty"`
	Properties json.RawMessage `json:"properties,omitempty"`
	Traits     json.RawMessage `json:"traits,omitempty"`
	Context    json.RawMessage `json:"context,omitempty"`
	// Timestamp is when the event happened, corrected for the sender's clock skew (see Correct).
	Timestamp time.Time `json:"timestamp"`
	// OriginalTimestamp and SentAt are the sender's clock readings, kept as sent.
	OriginalTimestamp time.Time `json:"original_timestamp,omitzero"`
	SentAt            time.Time `json:"sent_at,omitzero"`
	// ReceivedAt is the server's clock when the event arrived.
	ReceivedAt time.Time `json:"received_at"`
}
