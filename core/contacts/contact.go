// Package contacts owns a workspace's people: the unified contact profile (identifiers, typed attributes, tags,
// consent per channel), identity resolution (identify, alias and upsert merge anonymous and known identities
// deterministically and never lose events), the suppression list of erased contacts, the GDPR export and erasure,
// PII masking, and the in-process stream of changes that segments, scoring and campaign triggers subscribe to.
//
// It imports the standard library, go-hclog, core/errs, core/events and core/internal/jsonw. Storage is reached
// through the Store and Tx interfaces below, implemented in core/store; HTTP lives in admin/.
package contacts

import (
	"slices"
	"time"
)

// Contact is one person in a workspace.
type Contact struct {
	// ID is stable: it never changes, and a contact merged into another answers lookups with the survivor's id.
	ID     string `json:"id"`
	Email  string `json:"email,omitempty"`
	Phone  string `json:"phone,omitempty"`
	UserID string `json:"user_id,omitempty"`
	// AnonymousIDs are the device/browser ids this contact has been seen with, oldest first.
	AnonymousIDs []string         `json:"anonymous_ids,omitempty"`
	Attributes   map[string]Value `json:"attributes,omitempty"`
	Tags         []string         `json:"tags,omitempty"`
	// Consent maps a channel ("email", "sms", ...) to the contact's consent on it; absent means unknown.
	Consent   map[string]Consent `json:"consent,omitempty"`
	Timezone  string             `json:"timezone,omitempty"`
	Locale    string             `json:"locale,omitempty"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
	// LastSeenAt is the time of the contact's latest event.
	LastSeenAt time.Time `json:"last_seen_at,omitzero"`
}

// Known reports whether the contact has an identifier beyond anonymous ids.
func (c *Contact) Known() bool { return c.UserID != "" || c.Email != "" || c.Phone != "" }

// HasTag reports whether the contact carries tag.
func (c *Contact) HasTag(tag string) bool { return slices.Contains(c.Tags, tag) }

// Clone returns a deep copy, so that a caller can change it without touching the original.
func (c Contact) Clone() Contact {
	c.AnonymousIDs = slices.Clone(c.AnonymousIDs)
	c.Tags = slices.Clone(c.Tags)
	if c.Attributes != nil {
		m := make(map[string]Value, len(c.Attributes))
		for k, v := range c.Attributes {
			v.List = slices.Clone(v.List)
			m[k] = v
		}
		c.Attributes = m
	}
	if c.Consent != nil {
		m := make(map[string]Consent, len(c.Consent))
		for k, v := range c.Consent {
			m[k] = v
		}
		c.Consent = m
	}
	return c
}

// ConsentStatus is a contact's consent on one channel.
type ConsentStatus string

// Consent statuses.
const (
	Subscribed   ConsentStatus = "subscribed"
	Unsubscribed ConsentStatus = "unsubscribed"
	Unknown      ConsentStatus = "unknown"
)

// Valid reports whether s is a known status.
func (s ConsentStatus) Valid() bool { return s == Subscribed || s == Unsubscribed || s == Unknown }

// Consent is one channel's consent, with when and where it was given or withdrawn.
type Consent struct {
	Status ConsentStatus `json:"status"`
	At     time.Time     `json:"at"`
	// Source says where the change came from: "api", "import", "tracking", "unsubscribe link", a plugin name...
	Source string `json:"source,omitempty"`
}

// ConsentOn returns the contact's consent status on channel (Unknown when never set).
func (c *Contact) ConsentOn(channel string) ConsentStatus {
	if s, ok := c.Consent[channel]; ok {
		return s.Status
	}
	return Unknown
}
