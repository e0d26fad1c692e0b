package contacts

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/crosscast/crosscast/core/events"
)

// Store gives transactions on one workspace's contacts. core/store implements it on the workspace's bbolt file.
type Store interface {
	// UpdateContacts runs fn in a group commit on workspace ws and returns once it is durable. fn may run more than
	// once and must depend only on the Tx it is given; its error rolls back its writes and is returned.
	UpdateContacts(ctx context.Context, ws string, fn func(Tx) error) error
	// UpdateContactsEach runs each function atomically on its own, in as few group commits as possible: a function
	// that fails writes nothing and does not undo the others. It returns one error per function (nil for success)
	// once all are durable. Imports use it to keep good rows and report bad ones.
	UpdateContactsEach(ctx context.Context, ws string, fns []func(Tx) error) []error
	// ViewContacts runs fn on a consistent read-only snapshot; writes through the Tx fail.
	ViewContacts(ctx context.Context, ws string, fn func(Tx) error) error
}

// IdentifierKind names one of the unique indexes of contacts.
type IdentifierKind uint8

// Identifier kinds. AnonymousID also holds old user ids kept as aliases by an alias call.
const (
	ByEmail IdentifierKind = iota + 1
	ByPhone
	ByUserID
	ByAnonymousID
)

func (k IdentifierKind) String() string {
	switch k {
	case ByEmail:
		return "email"
	case ByPhone:
		return "phone"
	case ByUserID:
		return "user_id"
	case ByAnonymousID:
		return "anonymous_id"
	}
	return "identifier"
}

// Tx is one transaction on one workspace's contacts, events, merges, suppression list and audit log.
type Tx interface {
	// Get returns the stored contact id (merges are not followed: see Redirect).
	Get(id string) (Contact, bool, error)
	// Put stores c and brings every index (email, phone, user id, anonymous ids, tags) in step with it. It fails
	// with errs.ErrConflict, writing nothing, when one of c's identifiers belongs to another contact.
	Put(c Contact) error
	// Delete removes the contact and its index entries; its events stay until DeleteEvents.
	Delete(id string) error
	// Lookup returns the id of the contact holding an identifier.
	Lookup(kind IdentifierKind, value string) (string, bool)
	// Scan calls fn with each contact whose id is greater than after, in id order, until fn returns false.
	Scan(after string, fn func(Contact) bool) error
	// ScanTag is Scan restricted to the contacts carrying tag.
	ScanTag(tag, after string, fn func(Contact) bool) error
	// Count is the number of contacts.
	Count() int
	// SeenAt records that contact id was active at t, if t is later than what is recorded by at least step (so that
	// a burst of events costs one write). Get reports it as LastSeenAt.
	SeenAt(id string, t time.Time, step time.Duration) error

	// HasEvent reports whether an event with this message id is stored.
	HasEvent(messageID string) bool
	// PutEvent stores e under e.ContactID in time order and records its message id. encoded is events.Encode(e),
	// made before the transaction; nil lets the store encode.
	PutEvent(e events.Event, encoded []byte) error
	// Events calls fn with contactID's events from the newest, starting below cursor ("" for the newest), until fn
	// returns false; cursor is what to pass to continue after e.
	Events(contactID, cursor string, fn func(e events.Event, cursor string) bool) error
	// MoveEvents gives every event of from to contact to, keeping their times; it returns how many moved.
	MoveEvents(from, to string) (int, error)
	// DeleteEvents removes every event of contactID and their message ids; it returns how many.
	DeleteEvents(contactID string) (int, error)
	// EventCount is the number of stored events of the workspace.
	EventCount() int

	// Redirect records that contact from was merged into to, so that from's id keeps resolving.
	Redirect(m Merge) error
	// MergedInto returns the merge record of a merged-away id.
	MergedInto(id string) (Merge, bool)
	// MergesInto lists the merge records that point to id, oldest first.
	MergesInto(id string) ([]Merge, error)
	// DropRedirects removes every merge record that points to id (erasure).
	DropRedirects(id string) (int, error)

	// Suppressed reports whether a suppression hash is listed.
	Suppressed(hash string) bool
	// Suppress lists a hash.
	Suppress(hash string, at time.Time) error

	// NextChange returns the next number of the workspace's change sequence, which increases in commit order.
	NextChange() (uint64, error)

	// Audit appends an entry to the workspace's audit log.
	Audit(e AuditEntry) error
	// AuditLog calls fn with the audit entries from the newest, strictly below cursor ("" for the newest), until
	// fn returns false; cursor is what to pass to continue after e.
	AuditLog(cursor string, fn func(e AuditEntry, cursor string) bool) error
}

// Merge records that contact From was merged into contact Into.
type Merge struct {
	From   string    `json:"from"`
	Into   string    `json:"into"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	// Events is how many events moved.
	Events int `json:"events"`
}

// AuditEntry is one line of a workspace's audit log. It names contacts by id only: the log must not keep the
// personal data an erasure removed.
type AuditEntry struct {
	At      time.Time      `json:"at"`
	Action  string         `json:"action"`
	Contact string         `json:"contact,omitempty"`
	By      string         `json:"by,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns a new contact id: 26 characters of lower-case Crockford base32 holding the creation time in
// milliseconds (48 bits) and 80 random bits, so ids sort by creation time and never collide in practice.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether id has the form of a contact id, so that ids from URLs are checked before lookups.
func ValidID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') || c == 'i' || c == 'l' || c == 'o' || c == 'u' {
			return false
		}
	}
	return true
}
