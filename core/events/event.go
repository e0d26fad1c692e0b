// Package events owns what contacts do: the Event record (the Segment spec's identify, track, page, screen, group
// and alias calls, normalised), the parsing and validation of Segment-format messages, and clock-skew correction.
//
// It is a leaf: it imports only the standard library, core/errs and core/internal/jsonw. Storage of events, and the identity of the
// contact an event belongs to, are core/contacts' business.
package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/crosscast/crosscast/core/internal/jsonw"
)

// Encode returns the stored form of e: its JSON without the contact id. Callers encode before entering a store
// transaction, so that the single writer of a workspace file does not spend its time in encoding/json. It writes
// what json.Marshal would (TestEncodeMatchesEncodingJSON) at a fraction of the cost: the raw objects are copied, not
// re-validated and compacted.
func Encode(e Event) ([]byte, error) {
	for _, t := range [...]time.Time{e.Timestamp, e.OriginalTimestamp, e.SentAt, e.ReceivedAt} {
		if y := t.Year(); y < 1 || y > 9999 {
			return nil, fmt.Errorf("event time %s is outside the years 1-9999", t)
		}
	}
	for _, raw := range []json.RawMessage{e.Properties, e.Traits, e.Context} {
		if len(raw) > 0 && !json.Valid(raw) {
			e.ContactID = ""
			return json.Marshal(&e) // reports the invalid object as json.Marshal does
		}
	}
	b := make([]byte, 0, 160+len(e.Properties)+len(e.Traits)+len(e.Context))
	b = append(b, `{"message_id":`...)
	b = jsonw.String(b, e.MessageID)
	b = append(b, `,"type":`...)
	b = jsonw.String(b, string(e.Type))
	for _, f := range [...]struct {
		key, v string
	}{{`,"name":`, e.Name}, {`,"user_id":`, e.UserID}, {`,"anonymous_id":`, e.AnonymousID},
		{`,"group_id":`, e.GroupID}, {`,"previous_id":`, e.PreviousID}} {
		if f.v != "" {
			b = append(b, f.key...)
			b = jsonw.String(b, f.v)
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
	b = jsonw.Time(b, e.Timestamp)
	if !e.OriginalTimestamp.IsZero() {
		b = append(b, `,"original_timestamp":`...)
		b = jsonw.Time(b, e.OriginalTimestamp)
	}
	if !e.SentAt.IsZero() {
		b = append(b, `,"sent_at":`...)
		b = jsonw.Time(b, e.SentAt)
	}
	b = append(b, `,"received_at":`...)
	b = jsonw.Time(b, e.ReceivedAt)
	return append(b, '}'), nil
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
