package contacts

import (
	"fmt"
	"slices"
	"time"

	"github.com/crosscast/crosscast/core/errs"
)

// identity is the set of identifiers a write carries. Precedence, strongest first: user id, email, phone,
// anonymous id.
type identity struct {
	userID, email, phone, anonID string
}

func (id identity) empty() bool {
	return id.userID == "" && id.email == "" && id.phone == "" && id.anonID == ""
}

// MaxAnonymousIDs bounds the anonymous ids a contact keeps; the oldest are forgotten (and stop resolving) beyond it.
const MaxAnonymousIDs = 100

// resolver finds or creates the contact of an identity inside one transaction, merging contacts the identity proves
// to be the same person. It records what it did for the change stream.
//
// The rules, deterministic for a given order of writes:
//   - the contact found by the strongest identifier is the survivor;
//   - each other identifier that belongs to another contact merges that contact into the survivor, unless the two
//     hold different values of the same kind (two user ids, two emails, two phones): two people are never merged on
//     a weak link. Then the identifier is a conflict: strict writes (API upserts, imports) fail with
//     errs.ErrConflict, tracking calls keep it where it is and go on;
//   - an identifier nobody holds is given to the survivor (replacing a different email or phone, which is an
//     address change; a different user id is a conflict);
//   - a suppressed (erased) email or phone is never attached: strict writes fail, tracking calls drop it.
type resolver struct {
	tx      Tx
	now     time.Time
	strict  bool
	reason  string
	merges  []Merge
	touched map[string]*Contact
	// warnings counts identifiers a lenient write could not apply.
	warnings []string
}

func newResolver(tx Tx, now time.Time, strict bool, reason string) *resolver {
	return &resolver{tx: tx, now: now, strict: strict, reason: reason, touched: map[string]*Contact{}}
}

// load returns the contact id from the touched set or the store.
func (r *resolver) load(id string) (*Contact, error) {
	if c, ok := r.touched[id]; ok {
		return c, nil
	}
	c, ok, err := r.tx.Get(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("index points to missing contact %s: %w", id, errs.ErrConflict)
	}
	r.touched[id] = &c
	return &c, nil
}

// lookup finds the contact holding a user id (also as an alias), email, phone or anonymous id.
func (r *resolver) lookup(kind IdentifierKind, v string) (string, bool) {
	if v == "" {
		return "", false
	}
	if id, ok := r.tx.Lookup(kind, v); ok {
		return id, true
	}
	if kind == ByUserID {
		// Old user ids renamed by an alias call are kept as anonymous ids.
		return r.tx.Lookup(ByAnonymousID, v)
	}
	return "", false
}

// refusal is a strict write's error found before anything was written: the store's group commit then leaves the
// other writes of its transaction alone (core/store: NothingWritten).
type refusal struct{ error }

func (refusal) NothingWritten() bool { return true }
func (e refusal) Unwrap() error      { return e.error }

func (r *resolver) conflict(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if r.strict {
		return fmt.Errorf("%s: %w", msg, errs.ErrConflict)
	}
	r.warnings = append(r.warnings, msg)
	return nil
}

// resolve returns the contact of id, created if needed (created reports it). It never writes the contact: the
// caller edits it and calls flush.
func (r *resolver) resolve(id identity) (*Contact, bool, error) {
	if id.empty() {
		return nil, false, errs.Invalid("", "a user id, email, phone or anonymous id is needed to find the contact")
	}
	for _, s := range []struct {
		kind string
		v    *string
	}{{"email", &id.email}, {"phone", &id.phone}} {
		if *s.v != "" && r.tx.Suppressed(SuppressionHash(s.kind, *s.v)) {
			if r.strict {
				return nil, false, refusal{fmt.Errorf("this %s belongs to an erased contact and is suppressed: %w", s.kind, errs.ErrConflict)}
			}
			r.warnings = append(r.warnings, s.kind+" is suppressed")
			*s.v = ""
		}
	}
	order := []struct {
		kind IdentifierKind
		v    string
	}{{ByUserID, id.userID}, {ByEmail, id.email}, {ByPhone, id.phone}, {ByAnonymousID, id.anonID}}
	// The survivor is the contact of the strongest identifier anyone holds; a new contact only if nobody holds any.
	found := make([]string, len(order))
	var c *Contact
	for i, o := range order {
		if o.v == "" {
			continue
		}
		found[i], _ = r.lookup(o.kind, o.v)
		if c == nil && found[i] != "" {
			oc, err := r.load(found[i])
			if err != nil {
				return nil, false, err
			}
			c = oc
		}
	}
	if r.strict {
		// Find every clash before merging anything: a refused write then has written nothing.
		if err := r.precheck(c, order[:], found); err != nil {
			return nil, false, refusal{err}
		}
	}
	created := false
	if c == nil {
		c = &Contact{ID: NewID(r.now), CreatedAt: r.now, UpdatedAt: r.now}
		r.touched[c.ID] = c
		created = true
	}
	for i, o := range order {
		if found[i] != "" {
			// An earlier identifier of this call may have merged that contact into c already.
			found[i] = follow(r.tx, found[i])
		}
		switch {
		case o.v == "" || found[i] == c.ID:
		case found[i] == "":
			if err := r.attach(c, o.kind, o.v); err != nil {
				return nil, false, err
			}
		default:
			oc, err := r.load(found[i])
			if err != nil {
				return nil, false, err
			}
			if why := clash(c, oc); why != "" {
				if err := r.conflict("%s %q belongs to contact %s, which has a different %s", o.kind, o.v, oc.ID, why); err != nil {
					return nil, false, err
				}
				continue
			}
			if err := r.merge(c, oc); err != nil {
				return nil, false, err
			}
		}
	}
	return c, created, nil
}

// precheck plays the second loop of resolve on the identifiers alone and returns its first conflict. It reads, never
// writes.
func (r *resolver) precheck(c *Contact, order []struct {
	kind IdentifierKind
	v    string
}, found []string) error {
	var probe Contact
	if c != nil {
		probe = Contact{ID: c.ID, UserID: c.UserID, Email: c.Email, Phone: c.Phone}
	}
	absorbed := map[string]bool{probe.ID: true}
	for i, o := range order {
		switch {
		case o.v == "" || absorbed[found[i]] && found[i] != "":
		case found[i] == "":
			switch o.kind {
			case ByUserID:
				if probe.UserID != "" && probe.UserID != o.v {
					return fmt.Errorf("user id %q cannot be added to contact %s, which has another user id: %w", o.v, probe.ID, errs.ErrConflict)
				}
				probe.UserID = o.v
			case ByEmail:
				probe.Email = o.v
			case ByPhone:
				probe.Phone = o.v
			}
		default:
			oc, err := r.load(found[i])
			if err != nil {
				return err
			}
			if why := clash(&probe, oc); why != "" {
				return fmt.Errorf("%s %q belongs to contact %s, which has a different %s: %w", o.kind, o.v, oc.ID, why, errs.ErrConflict)
			}
			absorbed[oc.ID] = true
			if probe.UserID == "" {
				probe.UserID = oc.UserID
			}
			if probe.Email == "" {
				probe.Email = oc.Email
			}
			if probe.Phone == "" {
				probe.Phone = oc.Phone
			}
		}
	}
	return nil
}

// attach gives a free identifier to c.
func (r *resolver) attach(c *Contact, kind IdentifierKind, v string) error {
	switch kind {
	case ByUserID:
		if c.UserID != "" && c.UserID != v {
			return r.conflict("user id %q cannot be added to contact %s, which has another user id", v, c.ID)
		}
		c.UserID = v
	case ByEmail:
		c.Email = v
	case ByPhone:
		c.Phone = v
	case ByAnonymousID:
		addAnonymous(c, v)
	}
	return nil
}

func addAnonymous(c *Contact, v string) {
	if slices.Contains(c.AnonymousIDs, v) {
		return
	}
	c.AnonymousIDs = append(c.AnonymousIDs, v)
	if n := len(c.AnonymousIDs); n > MaxAnonymousIDs {
		c.AnonymousIDs = slices.Clone(c.AnonymousIDs[n-MaxAnonymousIDs:])
	}
}

// clash names the kind of identifier two contacts hold different values of, or "".
func clash(a, b *Contact) string {
	switch {
	case a.UserID != "" && b.UserID != "" && a.UserID != b.UserID:
		return "user id"
	case a.Email != "" && b.Email != "" && a.Email != b.Email:
		return "email"
	case a.Phone != "" && b.Phone != "" && a.Phone != b.Phone:
		return "phone"
	}
	return ""
}

// merge folds from into into: identifiers, anonymous ids, attributes into does not have, tags, the most recent
// consent per channel, the earliest creation time; from's events move to into and from's id redirects to into.
func (r *resolver) merge(into, from *Contact) error {
	if into.UserID == "" {
		into.UserID = from.UserID
	}
	if into.Email == "" {
		into.Email = from.Email
	}
	if into.Phone == "" {
		into.Phone = from.Phone
	}
	if into.Timezone == "" {
		into.Timezone = from.Timezone
	}
	if into.Locale == "" {
		into.Locale = from.Locale
	}
	for _, a := range from.AnonymousIDs {
		addAnonymous(into, a)
	}
	for k, v := range from.Attributes {
		if _, ok := into.Attributes[k]; !ok {
			if into.Attributes == nil {
				into.Attributes = map[string]Value{}
			}
			into.Attributes[k] = v
		}
	}
	for _, t := range from.Tags {
		if !into.HasTag(t) {
			into.Tags = append(into.Tags, t)
		}
	}
	slices.Sort(into.Tags)
	for ch, cs := range from.Consent {
		if cur, ok := into.Consent[ch]; !ok || cs.At.After(cur.At) {
			if into.Consent == nil {
				into.Consent = map[string]Consent{}
			}
			into.Consent[ch] = cs
		}
	}
	if !from.CreatedAt.IsZero() && from.CreatedAt.Before(into.CreatedAt) {
		into.CreatedAt = from.CreatedAt
	}
	if from.LastSeenAt.After(into.LastSeenAt) {
		into.LastSeenAt = from.LastSeenAt
	}
	// from's index entries go first, so that into can take its identifiers.
	if err := r.tx.Delete(from.ID); err != nil {
		return fmt.Errorf("merging contact %s: %w", from.ID, err)
	}
	delete(r.touched, from.ID)
	moved, err := r.tx.MoveEvents(from.ID, into.ID)
	if err != nil {
		return fmt.Errorf("moving events of contact %s: %w", from.ID, err)
	}
	m := Merge{From: from.ID, Into: into.ID, At: r.now, Reason: r.reason, Events: moved}
	if err := r.tx.Redirect(m); err != nil {
		return err
	}
	r.merges = append(r.merges, m)
	return r.tx.Audit(AuditEntry{At: r.now, Action: "contact.merged", Contact: into.ID,
		Details: map[string]any{"from": from.ID, "reason": r.reason, "events": moved}})
}

// follow returns the id a possibly merged-away id now resolves to.
func follow(tx Tx, id string) string {
	for range 32 {
		m, ok := tx.MergedInto(id)
		if !ok {
			return id
		}
		id = m.Into
	}
	return id
}
