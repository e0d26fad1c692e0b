package contacts

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/hashicorp/go-hclog"
)

// Settings are the per-workspace choices that shape contacts.
type Settings struct {
	// Channels are the channels consent is kept for.
	Channels []string
	// PII names what callers without PII permission see masked: attribute names, and "email", "phone", "user_id".
	PII []string
	// IP says what to keep of a tracking call's IP address.
	IP IPMode
}

// IPMode is what the tracking API keeps of a sender's IP address.
type IPMode string

// IP modes.
const (
	// IPStore keeps the address as sent.
	IPStore IPMode = "store"
	// IPAnonymize zeroes the last octet of IPv4 and the last 80 bits of IPv6 (as Google Analytics does).
	IPAnonymize IPMode = "anonymize"
	// IPDrop keeps nothing.
	IPDrop IPMode = "drop"
)

// Valid reports whether m is a known mode.
func (m IPMode) Valid() bool { return m == IPStore || m == IPAnonymize || m == IPDrop }

// DefaultChannels are the consent channels of a workspace that names none.
var DefaultChannels = []string{"email", "sms", "push", "webhook", "whatsapp"}

// DefaultPII is what is masked in a workspace that names nothing.
var DefaultPII = []string{"email", "phone"}

// SettingsFunc returns a workspace's settings (errs.ErrNotFound for an unknown workspace).
type SettingsFunc func(ctx context.Context, ws string) (Settings, error)

// Service is the contacts use-case layer.
type Service struct {
	store    Store
	settings SettingsFunc
	stream   *Stream
	log      hclog.Logger
	now      func() time.Time

	sectionsMu sync.RWMutex
	sections   []ExportSection
}

// NewService returns a Service. settings may be nil (defaults for every workspace); stream may be nil (no
// subscribers); now may be nil for time.Now.
func NewService(store Store, settings SettingsFunc, stream *Stream, log hclog.Logger, now func() time.Time) *Service {
	if settings == nil {
		settings = func(context.Context, string) (Settings, error) { return Settings{}, nil }
	}
	if stream == nil {
		stream = NewStream()
	}
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, settings: settings, stream: stream, log: log.Named("contacts"), now: now}
}

// Stream is the service's change stream.
func (s *Service) Stream() *Stream { return s.stream }

// Settings returns the workspace's settings with defaults filled in.
func (s *Service) Settings(ctx context.Context, ws string) (Settings, error) {
	st, err := s.settings(ctx, ws)
	if err != nil {
		return Settings{}, err
	}
	if st.Channels == nil {
		st.Channels = DefaultChannels
	}
	if st.PII == nil {
		st.PII = DefaultPII
	}
	if st.IP == "" {
		st.IP = IPStore
	}
	return st, nil
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// Get returns a contact. An id merged into another contact returns the survivor.
func (s *Service) Get(ctx context.Context, ws, id string) (Contact, error) {
	if !ValidID(id) {
		return Contact{}, fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	var c Contact
	err := s.store.ViewContacts(ctx, ws, func(tx Tx) error {
		var ok bool
		var err error
		c, ok, err = tx.Get(follow(tx, id))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
		}
		return nil
	})
	return c, err
}

// Filter selects contacts for List. Email, Phone and UserID match exactly (after normalisation); Q matches a
// substring of the email, phone, user id or any text attribute, case-insensitively (a full scan); Tag restricts to
// a tag.
type Filter struct {
	Email, Phone, UserID, Q, Tag string
	Cursor                       string
	Limit                        int
}

// lookupKey is one identifier to look up.
type lookupKey struct {
	kind IdentifierKind
	v    string
}

// List returns a page of contacts in id order (creation order) and the cursor of the next page ("" at the end).
func (s *Service) List(ctx context.Context, ws string, f Filter) ([]Contact, string, error) {
	if f.Limit == 0 {
		f.Limit = 50
	}
	v := &errs.ValidationError{}
	if f.Limit < 1 || f.Limit > 1000 {
		v.Add("limit", "must be between 1 and 1000")
	}
	if f.Cursor != "" && !ValidID(f.Cursor) {
		v.Add("cursor", "is not a cursor this API returned")
	}
	var exact []lookupKey
	for _, l := range [...]struct {
		field, v string
		kind     IdentifierKind
		norm     func(string) (string, error)
	}{{"email", f.Email, ByEmail, NormalizeEmail}, {"phone", f.Phone, ByPhone, NormalizePhone}, {"user_id", f.UserID, ByUserID, nil}} {
		if l.v == "" {
			continue
		}
		val := l.v
		if l.norm != nil {
			var err error
			if val, err = l.norm(l.v); err != nil {
				v.Add(l.field, "%s", err)
			}
		}
		exact = append(exact, lookupKey{l.kind, val})
	}
	if f.Tag != "" {
		t, err := NormalizeTag(f.Tag)
		if err != nil {
			v.Add("tag", "%s", err)
		}
		f.Tag = t
	}
	if err := v.OrNil(); err != nil {
		return nil, "", err
	}
	q := strings.ToLower(f.Q)
	match := func(c *Contact) bool {
		if f.Tag != "" && !c.HasTag(f.Tag) {
			return false
		}
		return q == "" || matchesQuery(c, q)
	}
	var out []Contact
	next := ""
	err := s.store.ViewContacts(ctx, ws, func(tx Tx) error {
		if len(exact) > 0 {
			id := ""
			for _, e := range exact {
				got, ok := tx.Lookup(e.kind, e.v)
				if !ok || (id != "" && got != id) {
					return nil
				}
				id = got
			}
			if id <= f.Cursor {
				return nil
			}
			c, ok, err := tx.Get(id)
			if err != nil || !ok || !match(&c) {
				return err
			}
			out = append(out, c)
			return nil
		}
		var scanErr error
		visit := func(c Contact) bool {
			if ctx.Err() != nil {
				scanErr = ctx.Err()
				return false
			}
			if !match(&c) {
				return true
			}
			if len(out) == f.Limit {
				next = out[len(out)-1].ID
				return false
			}
			out = append(out, c)
			return true
		}
		var err error
		if f.Tag != "" {
			err = tx.ScanTag(f.Tag, f.Cursor, visit)
		} else {
			err = tx.Scan(f.Cursor, visit)
		}
		if err != nil {
			return err
		}
		return scanErr
	})
	return out, next, err
}

func matchesQuery(c *Contact, q string) bool {
	if strings.Contains(c.Email, q) || strings.Contains(c.Phone, q) || strings.Contains(strings.ToLower(c.UserID), q) {
		return true
	}
	for _, v := range c.Attributes {
		if v.Kind == String && strings.Contains(strings.ToLower(v.Str), q) {
			return true
		}
	}
	return false
}

// Count returns the number of contacts of the workspace.
func (s *Service) Count(ctx context.Context, ws string) (int, error) {
	n := 0
	err := s.store.ViewContacts(ctx, ws, func(tx Tx) error { n = tx.Count(); return nil })
	return n, err
}

// Upsert finds the contact by user id, email or phone (at least one is needed) and applies f to it, creating it if
// none matches. Identifiers that belong to different contacts merge them when nothing clashes; otherwise the
// upsert fails with errs.ErrConflict naming the clash. source says where the write came from ("api", "import").
func (s *Service) Upsert(ctx context.Context, ws string, f Fields, source string) (Contact, bool, error) {
	st, err := s.Settings(ctx, ws)
	if err != nil {
		return Contact{}, false, err
	}
	e, err := f.parse(st.Channels)
	if err != nil {
		return Contact{}, false, err
	}
	id := e.identity()
	if id.userID == "" && id.email == "" && id.phone == "" {
		return Contact{}, false, errs.Invalid("", "an email, phone or user_id is needed to find or create the contact")
	}
	var out Contact
	var created bool
	var change Change
	now := s.clock()
	err = s.store.UpdateContacts(ctx, ws, func(tx Tx) error {
		r := newResolver(tx, now, true, source)
		c, isNew, err := r.resolve(id)
		if err != nil {
			return err
		}
		if _, err := e.apply(c, now, source); err != nil {
			return err
		}
		c.UpdatedAt = now
		if err := r.flush(); err != nil {
			return err
		}
		out, created = *c, isNew
		seq, err := tx.NextChange()
		if err != nil {
			return err
		}
		change = Change{Workspace: ws, Seq: seq, Contacts: r.contacts(), Merged: r.merges}
		return nil
	})
	if err != nil {
		return Contact{}, false, fmt.Errorf("upserting contact: %w", err)
	}
	s.stream.Publish(ctx, change)
	return out, created, nil
}

// flush stores every contact the resolver touched.
func (r *resolver) flush() error {
	ids := make([]string, 0, len(r.touched))
	for id := range r.touched {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := r.tx.Put(*r.touched[id]); err != nil {
			return err
		}
	}
	return nil
}

func (r *resolver) contacts() []Contact {
	out := make([]Contact, 0, len(r.touched))
	for _, c := range r.touched {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Update applies f to contact id. Setting an identifier another contact holds fails with errs.ErrConflict (use
// Upsert to merge).
func (s *Service) Update(ctx context.Context, ws, id string, f Fields, source string) (Contact, error) {
	st, err := s.Settings(ctx, ws)
	if err != nil {
		return Contact{}, err
	}
	e, err := f.parse(st.Channels)
	if err != nil {
		return Contact{}, err
	}
	return s.modify(ctx, ws, id, func(tx Tx, c *Contact, now time.Time) error {
		for _, chk := range []struct {
			kind  string
			v     *string
			index IdentifierKind
		}{{"email", e.email, ByEmail}, {"phone", e.phone, ByPhone}} {
			if chk.v != nil && *chk.v != "" && tx.Suppressed(SuppressionHash(chk.kind, *chk.v)) {
				return fmt.Errorf("this %s belongs to an erased contact and is suppressed: %w", chk.kind, errs.ErrConflict)
			}
		}
		_, err := e.apply(c, now, source)
		return err
	})
}

// modify loads contact id (following merges), lets fn change it, and stores it.
func (s *Service) modify(ctx context.Context, ws, id string, fn func(tx Tx, c *Contact, now time.Time) error) (Contact, error) {
	if !ValidID(id) {
		return Contact{}, fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	var out Contact
	var seq uint64
	now := s.clock()
	err := s.store.UpdateContacts(ctx, ws, func(tx Tx) error {
		c, ok, err := tx.Get(follow(tx, id))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
		}
		if err := fn(tx, &c, now); err != nil {
			return err
		}
		c.UpdatedAt = now
		if err := tx.Put(c); err != nil {
			return err
		}
		out = c
		seq, err = tx.NextChange()
		return err
	})
	if err != nil {
		return Contact{}, err
	}
	s.stream.Publish(ctx, Change{Workspace: ws, Seq: seq, Contacts: []Contact{out}})
	return out, nil
}

// Tag adds and removes tags.
func (s *Service) Tag(ctx context.Context, ws, id string, add, remove []string) (Contact, error) {
	if len(add) == 0 && len(remove) == 0 {
		return Contact{}, errs.Invalid("add", "name at least one tag to add or remove")
	}
	return s.Update(ctx, ws, id, Fields{Tags: add, RemoveTags: remove}, "api")
}

// SetConsent sets the contact's consent on channel.
func (s *Service) SetConsent(ctx context.Context, ws, id, channel string, status ConsentStatus, source string) (Contact, error) {
	if source == "" {
		source = "api"
	}
	return s.Update(ctx, ws, id, Fields{Consent: map[string]ConsentStatus{channel: status}}, source)
}

// Delete removes a contact and its events. With erase, it also removes every record that names it (merge
// redirects), and lists its email and phone in the suppression list so they are never imported or messaged again.
// Both are written to the audit log (by names the caller, never the contact's data).
func (s *Service) Delete(ctx context.Context, ws, id string, erase bool, by string) error {
	if !ValidID(id) {
		return fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	now := s.clock()
	var gone string
	var seq uint64
	err := s.store.UpdateContacts(ctx, ws, func(tx Tx) error {
		target := follow(tx, id)
		c, ok, err := tx.Get(target)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
		}
		n, err := tx.DeleteEvents(c.ID)
		if err != nil {
			return err
		}
		if err := tx.Delete(c.ID); err != nil {
			return err
		}
		details := map[string]any{"events": n}
		action := "contact.deleted"
		if erase {
			action = "contact.erased"
			redirects, err := tx.DropRedirects(c.ID)
			if err != nil {
				return err
			}
			details["merge_records"] = redirects
			suppressed := 0
			for _, kv := range [][2]string{{"email", c.Email}, {"phone", c.Phone}} {
				if kv[1] == "" {
					continue
				}
				if err := tx.Suppress(SuppressionHash(kv[0], kv[1]), now); err != nil {
					return err
				}
				suppressed++
			}
			details["suppressed"] = suppressed
		}
		gone = c.ID
		if seq, err = tx.NextChange(); err != nil {
			return err
		}
		return tx.Audit(AuditEntry{At: now, Action: action, Contact: c.ID, By: by, Details: details})
	})
	if err != nil {
		return err
	}
	s.log.Info("contact deleted", "workspace", ws, "contact", gone, "erase", erase)
	s.stream.Publish(ctx, Change{Workspace: ws, Seq: seq, Deleted: []string{gone}})
	return nil
}

// IsSuppressed reports whether an email or phone (kind "email" or "phone", normalised) is on the suppression list.
func (s *Service) IsSuppressed(ctx context.Context, ws, kind, value string) (bool, error) {
	var out bool
	err := s.store.ViewContacts(ctx, ws, func(tx Tx) error {
		out = tx.Suppressed(SuppressionHash(kind, value))
		return nil
	})
	return out, err
}

// Events returns a page of a contact's events, newest first, and the cursor of the next page.
func (s *Service) Events(ctx context.Context, ws, id, cursor string, limit int) ([]events.Event, string, error) {
	if limit == 0 {
		limit = 50
	}
	if limit < 1 || limit > 1000 {
		return nil, "", errs.Invalid("limit", "must be between 1 and 1000")
	}
	if !ValidID(id) {
		return nil, "", fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	var out []events.Event
	next := ""
	err := s.store.ViewContacts(ctx, ws, func(tx Tx) error {
		target := follow(tx, id)
		if _, ok, err := tx.Get(target); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
			}
			return err
		}
		last := ""
		return tx.Events(target, cursor, func(e events.Event, cur string) bool {
			if len(out) == limit {
				next = last
				return false
			}
			out = append(out, e)
			last = cur
			return true
		})
	})
	return out, next, err
}

// UpsertOutcome is the result of one row of UpsertMany.
type UpsertOutcome struct {
	Contact Contact
	Created bool
	Err     error
}

// UpsertMany upserts rows like Upsert, each atomically on its own and all in as few group commits as possible: a
// row that fails (invalid, clashing, suppressed) is reported in its outcome and writes nothing; the others are
// kept. It returns an error only when the whole call fails (unknown workspace, store closed).
func (s *Service) UpsertMany(ctx context.Context, ws string, rows []Fields, source string) ([]UpsertOutcome, error) {
	st, err := s.Settings(ctx, ws)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	out := make([]UpsertOutcome, len(rows))
	fns := make([]func(Tx) error, 0, len(rows))
	idx := make([]int, 0, len(rows))
	changes := make([]Change, len(rows))
	for i := range rows {
		e, err := rows[i].parse(st.Channels)
		if err != nil {
			out[i].Err = err
			continue
		}
		id := e.identity()
		if id.userID == "" && id.email == "" && id.phone == "" {
			out[i].Err = errs.Invalid("", "an email, phone or user_id is needed to find or create the contact")
			continue
		}
		i := i
		idx = append(idx, i)
		fns = append(fns, func(tx Tx) error {
			r := newResolver(tx, now, true, source)
			c, isNew, err := r.resolve(id)
			if err != nil {
				return err
			}
			if _, err := e.apply(c, now, source); err != nil {
				return err
			}
			c.UpdatedAt = now
			if err := r.flush(); err != nil {
				return err
			}
			out[i].Contact, out[i].Created = *c, isNew
			seq, err := tx.NextChange()
			if err != nil {
				return err
			}
			changes[i] = Change{Workspace: ws, Seq: seq, Contacts: r.contacts(), Merged: r.merges}
			return nil
		})
	}
	if len(fns) > 0 {
		errsOut := s.store.UpdateContactsEach(ctx, ws, fns)
		for k, err := range errsOut {
			if err != nil {
				out[idx[k]] = UpsertOutcome{Err: err}
			}
		}
	}
	var all Change
	all.Workspace = ws
	for i := range changes {
		if out[i].Err == nil {
			all.Contacts = append(all.Contacts, changes[i].Contacts...)
			all.Merged = append(all.Merged, changes[i].Merged...)
			all.Seq = max(all.Seq, changes[i].Seq)
		}
	}
	s.stream.Publish(ctx, all)
	return out, nil
}
