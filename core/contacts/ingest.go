package contacts

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/crosscast/crosscast/core/events"
)

// Incoming is one event to store with the identity and profile data it carries.
type Incoming struct {
	// Event is the event; its ContactID is filled in by Ingest.
	Event events.Event
	// Traits are an identify call's traits (email and phone are identifiers; the rest become attributes), decoded
	// with json.Number numbers. nil for other calls.
	Traits map[string]any
	// Timezone and Locale come from the call's context; they fill the contact's when it has none.
	Timezone, Locale string
}

// IngestResult says what Ingest did.
type IngestResult struct {
	// Stored counts events stored; Duplicates those skipped because their message id was already stored.
	Stored, Duplicates int
	// Warnings lists what could not be applied (a suppressed email, a trait that is not a valid value, an
	// identifier that clashes): the events are stored anyway, as Segment's API accepts them.
	Warnings []string
}

// lastSeenStep is how far an event must be past a contact's LastSeenAt to record it again: bursts of events then
// cost one small write a minute rather than one each.
const lastSeenStep = time.Minute

// Ingest stores events in one durable group commit: each is deduplicated by message id, resolved to its contact
// (created, merged or enriched by identify traits and alias calls as needed), and stored in time order under it.
// Once durable, the change goes to the stream.
func (s *Service) Ingest(ctx context.Context, ws string, in []Incoming) (IngestResult, error) {
	st, err := s.Settings(ctx, ws)
	if err != nil {
		return IngestResult{}, err
	}
	now := s.clock()
	encoded := make([][]byte, len(in))
	for i := range in {
		if encoded[i], err = events.Encode(in[i].Event); err != nil {
			return IngestResult{}, fmt.Errorf("encoding event %d: %w", i, err)
		}
	}
	var res IngestResult
	var change Change
	err = s.store.UpdateContacts(ctx, ws, func(tx Tx) error {
		// This function may run again after a rollback: start from nothing each time.
		res = IngestResult{}
		r := newResolver(tx, now, false, "tracking")
		changed := map[string]bool{}
		stored := make([]events.Event, 0, len(in))
		for i := range in {
			m := &in[i]
			if tx.HasEvent(m.Event.MessageID) {
				res.Duplicates++
				continue
			}
			if id, ok := r.known(m); ok {
				// A visitor already known under every identifier the event carries: no contact to load or write.
				if err := tx.SeenAt(id, m.Event.Timestamp, lastSeenStep); err != nil {
					return fmt.Errorf("event %d: %w", i, err)
				}
				ev := m.Event
				ev.ContactID = id
				if err := tx.PutEvent(ev, encoded[i]); err != nil {
					return fmt.Errorf("event %d: %w", i, err)
				}
				stored = append(stored, ev)
				continue
			}
			c, dirty, err := s.ingestOne(r, m, st, now)
			if err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
			// Write the contact now, so that the next event of the batch finds its identifiers in the indexes.
			if dirty {
				if err := tx.Put(*c); err != nil {
					return fmt.Errorf("event %d: %w", i, err)
				}
				changed[c.ID] = true
			} else if err := tx.SeenAt(c.ID, m.Event.Timestamp, lastSeenStep); err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
			ev := m.Event
			ev.ContactID = c.ID
			if err := tx.PutEvent(ev, encoded[i]); err != nil {
				return fmt.Errorf("event %d: %w", i, err)
			}
			stored = append(stored, ev)
		}
		// Events of a contact merged away later in the batch were moved by the merge; point the stream's copies at
		// the survivor.
		for i := range stored {
			stored[i].ContactID = follow(tx, stored[i].ContactID)
		}
		res.Stored = len(stored)
		res.Warnings = r.warnings
		seq, err := tx.NextChange()
		if err != nil {
			return err
		}
		change = Change{Workspace: ws, Seq: seq, Events: stored, Merged: r.merges}
		for id, c := range r.touched {
			if changed[id] {
				change.Contacts = append(change.Contacts, *c)
			}
		}
		sort.Slice(change.Contacts, func(i, j int) bool { return change.Contacts[i].ID < change.Contacts[j].ID })
		return nil
	})
	if err != nil {
		return IngestResult{}, fmt.Errorf("storing events: %w", err)
	}
	s.stream.Publish(ctx, change)
	return res, nil
}

// ingestOne resolves and updates the contact of one event; dirty says whether the contact must be written.
func (s *Service) ingestOne(r *resolver, m *Incoming, st Settings, now time.Time) (*Contact, bool, error) {
	ev := &m.Event
	id := identity{userID: ev.UserID, anonID: ev.AnonymousID}
	var e edit
	if ev.Type == events.Identify && m.Traits != nil {
		e = s.traitEdit(r, m.Traits, st)
		if e.email != nil {
			id.email = *e.email
		}
		if e.phone != nil {
			id.phone = *e.phone
		}
	}
	before := len(r.merges)
	var c *Contact
	var created bool
	var err error
	if ev.Type == events.Alias {
		c, created, err = r.alias(ev.PreviousID, ev.UserID)
	} else {
		c, created, err = r.resolve(id)
	}
	if err != nil {
		return nil, false, err
	}
	dirty := created || len(r.merges) > before || ev.Type == events.Alias
	if ev.Type == events.Identify {
		// The resolver attached new identifiers to c; the edit brings attributes (and an email or phone change).
		if e.email != nil && !r.usable(c, ByEmail, *e.email) {
			e.email = nil
		}
		if e.phone != nil && !r.usable(c, ByPhone, *e.phone) {
			e.phone = nil
		}
		if ok, err := e.apply(c, now, "tracking"); err != nil {
			r.warnings = append(r.warnings, err.Error())
		} else if ok {
			dirty = true
		}
		// Identifiers attached by resolve also count as a change.
		dirty = true
	}
	if c.Timezone == "" && m.Timezone != "" {
		if tz, err := NormalizeTimezone(m.Timezone); err == nil {
			c.Timezone, dirty = tz, true
		}
	}
	if c.Locale == "" && m.Locale != "" {
		if l, err := NormalizeLocale(m.Locale); err == nil {
			c.Locale, dirty = l, true
		}
	}
	if ev.Timestamp.After(c.LastSeenAt) {
		c.LastSeenAt = ev.Timestamp
	}
	if dirty {
		c.UpdatedAt = now
	}
	return c, dirty, nil
}

// traitEdit turns identify traits into an edit; what is invalid becomes a warning, not a failure.
func (s *Service) traitEdit(r *resolver, traits map[string]any, st Settings) edit {
	var f Fields
	attrs := map[string]any{}
	for k, v := range traits {
		switch k {
		case "email", "phone":
			str, ok := v.(string)
			if !ok || str == "" {
				continue
			}
			if k == "email" {
				f.Email = &str
			} else {
				f.Phone = &str
			}
		case "id", "userId", "anonymousId":
			// Identifiers of the call itself, repeated in traits by some clients.
		default:
			attrs[k] = v
		}
	}
	f.Attributes = attrs
	e, err := f.parse(st.Channels)
	if err != nil {
		r.warnings = append(r.warnings, err.Error())
		// Keep the valid parts: parse again without what failed.
		e, _ = f.parseLenient(st.Channels)
	}
	return e
}

// parseLenient parses f dropping every field that fails validation.
func (f *Fields) parseLenient(channels []string) (edit, error) {
	var e edit
	keep := func(in *string, fn func(string) (string, error)) *string {
		if in == nil || *in == "" {
			return nil
		}
		out, err := fn(*in)
		if err != nil {
			return nil
		}
		return &out
	}
	e.email = keep(f.Email, NormalizeEmail)
	e.phone = keep(f.Phone, NormalizePhone)
	e.attrs = map[string]*Value{}
	_ = Flatten("", f.Attributes, 1, func(name string, raw any) error {
		if ValidateAttributeName(name) != nil {
			return nil
		}
		if raw == nil {
			e.attrs[name] = nil
			return nil
		}
		if v, err := ParseValue(raw); err == nil {
			e.attrs[name] = &v
		}
		return nil
	})
	return e, nil
}

// known returns the contact of an event that only needs a lookup: not an identify or alias call, and every
// identifier it carries already held by one same contact that this batch has not changed. (Such events do not fill
// an empty timezone or locale from their context: identify calls and new contacts do.)
func (r *resolver) known(m *Incoming) (string, bool) {
	ev := &m.Event
	if ev.Type == events.Identify || ev.Type == events.Alias {
		return "", false
	}
	id := ""
	for _, p := range [...]struct {
		kind IdentifierKind
		v    string
	}{{ByUserID, ev.UserID}, {ByAnonymousID, ev.AnonymousID}} {
		if p.v == "" {
			continue
		}
		got, ok := r.lookup(p.kind, p.v)
		if !ok || (id != "" && got != id) {
			return "", false
		}
		id = got
	}
	if id == "" {
		return "", false
	}
	if _, touched := r.touched[id]; touched {
		return "", false
	}
	return id, true
}

// usable reports whether c may take an email or phone: nobody else holds it and it is not suppressed.
func (r *resolver) usable(c *Contact, kind IdentifierKind, v string) bool {
	if id, ok := r.tx.Lookup(kind, v); ok && id != c.ID {
		return false
	}
	return !r.tx.Suppressed(SuppressionHash(kind.String(), v))
}

// alias links previousID (an anonymous id or an old user id) to userID: the two are the same person from now on.
func (r *resolver) alias(previousID, userID string) (*Contact, bool, error) {
	prev, prevFound := r.lookup(ByUserID, previousID)
	if !prevFound {
		prev, prevFound = r.lookup(ByAnonymousID, previousID)
	}
	cur, curFound := r.lookup(ByUserID, userID)
	switch {
	case !prevFound:
		c, created, err := r.resolve(identity{userID: userID})
		if err != nil {
			return nil, false, err
		}
		addAnonymous(c, previousID)
		return c, created, nil
	case !curFound:
		c, err := r.load(prev)
		if err != nil {
			return nil, false, err
		}
		if c.UserID != "" && c.UserID != userID {
			addAnonymous(c, c.UserID)
		}
		c.UserID = userID
		return c, false, nil
	case prev == cur:
		c, err := r.load(cur)
		return c, false, err
	}
	into, err := r.load(cur)
	if err != nil {
		return nil, false, err
	}
	from, err := r.load(prev)
	if err != nil {
		return nil, false, err
	}
	// Check on a copy first: a refused alias changes neither contact.
	probe := *from
	renamed := from.UserID == previousID
	if renamed {
		probe.UserID = ""
	}
	if why := clash(into, &probe); why != "" {
		return into, false, r.conflict("alias of %q to %q: the contacts have different %s", previousID, userID, why)
	}
	if renamed {
		// The old user id becomes an alias of the survivor.
		addAnonymous(into, from.UserID)
		from.UserID = ""
	}
	return into, false, r.merge(into, from)
}
