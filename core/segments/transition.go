package segments

import (
	"context"
	"time"
)

// Transition is a contact entering or leaving a segment.
type Transition struct {
	Segment string `json:"segment"`
	Contact string `json:"contact"`
	// Entered is true when the contact entered the segment, false when it left.
	Entered bool      `json:"entered"`
	At      time.Time `json:"at"`
	// Reason says what caused it: one of the Reason... constants.
	Reason string `json:"reason"`
}

// Reasons for a transition.
const (
	// ReasonChange: a write to the contact or a new event.
	ReasonChange = "change"
	// ReasonTime: time passed (a window ended, a relative date moved), the contact unchanged.
	ReasonTime = "time"
	// ReasonRule: the segment was created or its rule edited.
	ReasonRule = "rule"
	// ReasonManual: a static list's member was added or removed through the API or an import.
	ReasonManual = "manual"
	// ReasonStart: found at start-up; it happened while the server was down, or its record was lost in a crash.
	ReasonStart = "start"
	// ReasonDeleted: the contact was deleted or erased, or merged into another.
	ReasonDeleted = "deleted"
)

// MemberStore keeps the recorded side of membership in the workspace's file: who is in each segment since when
// (the member set), and each contact's history of transitions. The in-memory index is the live truth for dynamic
// segments; the member set is what start-up compares the rebuilt index with, and the truth for static lists.
type MemberStore interface {
	// RecordTransitions applies ts in order in one durable commit: an entry adds the contact to the segment's member
	// set (since At), an exit removes it; each is appended to the contact's history.
	RecordTransitions(ctx context.Context, ws string, ts []Transition) error
	// StoredMembers calls fn with each recorded member of segment seg in contact id order, until fn returns false.
	StoredMembers(ctx context.Context, ws, seg string, fn func(contact string, since time.Time) bool) error
	// SegmentHistory calls fn with a contact's transitions from the newest, strictly below cursor ("" for the
	// newest), until fn returns false; cursor is what to pass to continue after t.
	SegmentHistory(ctx context.Context, ws, contact, cursor string, fn func(t Transition, cursor string) bool) error
	// ForgetContact removes the contact from the member sets of segs and deletes its whole history (erasure).
	ForgetContact(ctx context.Context, ws, contact string, segs []string) error
}
