package segments

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments/rule"
	"github.com/hashicorp/go-hclog"
)

// Service keeps segments: their definitions in the store, their live membership in one in-memory index per
// workspace (fed by the contacts change stream), and the record of who entered and left them.
type Service struct {
	store Store
	now   func() time.Time
	log   hclog.Logger
	// mu serialises changes to segments, so that two writes never make a cycle or a duplicate name together.
	mu sync.Mutex

	spacesMu sync.Mutex
	spaces   map[string]*space

	listenMu  sync.Mutex
	listeners []TransitionListener

	rec         *recorder
	unsubscribe func()
}

// NewService returns a Service over the store, subscribed to the contacts change stream (nil: none, for tests that
// only define segments). now may be nil for time.Now. Close it to record what is pending.
func NewService(store Store, stream *contacts.Stream, log hclog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Service{store: store, now: now, log: log.Named("segments"), spaces: map[string]*space{}}
	s.rec = newRecorder(store, s.log, func(ws string) []string {
		cat, err := s.catalog(context.Background(), ws)
		if err != nil {
			return nil
		}
		return cat.ids()
	})
	if stream != nil {
		s.unsubscribe = stream.Subscribe(s.onChange)
	}
	return s
}

// Close stops following the change stream and writes the transitions not yet recorded.
func (s *Service) Close() {
	if s.unsubscribe != nil {
		s.unsubscribe()
	}
	s.rec.close()
}

// catalog loads the workspace's segments.
func (s *Service) catalog(ctx context.Context, ws string) (*catalog, error) {
	list, err := s.store.ListSegments(ctx, ws)
	if err != nil {
		return nil, err
	}
	return newCatalog(list)
}

// Input is what a caller sets on a segment: a name, and a rule (text, or the JSON form of its tree) or the type
// "static" for a list. In an update, absent fields are unchanged.
type Input struct {
	Name *string         `json:"name"`
	Type *string         `json:"type"`
	Rule json.RawMessage `json:"rule"`
}

// Counted is a segment with how many contacts are in it now.
type Counted struct {
	Segment
	Count int `json:"count"`
}

func validateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return "", errs.Invalid("name", "is required: 1-200 characters")
	}
	return name, nil
}

// Create saves a new segment and computes its membership. Names are unique in a workspace (ignoring case);
// in_segment references must name saved segments, without cycles.
func (s *Service) Create(ctx context.Context, ws string, in Input) (Counted, error) {
	if in.Name == nil {
		return Counted{}, errs.Invalid("name", "is required: 1-200 characters")
	}
	name, err := validateName(*in.Name)
	if err != nil {
		return Counted{}, err
	}
	typ := TypeRule
	if in.Type != nil {
		typ = *in.Type
	}
	ix, err := s.space(ctx, ws)
	if err != nil {
		return Counted{}, err
	}
	var n rule.Node
	switch typ {
	case TypeRule:
		if n, err = ParseRule(in.Rule, ix); err != nil {
			return Counted{}, err
		}
	case TypeStatic:
		if len(in.Rule) > 0 && string(in.Rule) != "null" {
			return Counted{}, errs.Invalid("rule", "a static list has no rule: add members with POST .../members")
		}
	default:
		return Counted{}, errs.Invalid("type", "must be %q (the default) or %q", TypeRule, TypeStatic)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return Counted{}, err
	}
	if _, taken := cat.byName[strings.ToLower(name)]; taken {
		return Counted{}, fmt.Errorf("a segment named %q already exists: %w", name, errs.ErrConflict)
	}
	now := s.now().UTC()
	seg := compiled{Segment: Segment{ID: "seg_" + contacts.NewID(now), Name: name, Type: typ, CreatedAt: now, UpdatedAt: now}, node: n}
	if n != nil {
		seg.Rule = rule.Format(n)
		if err := cat.check(seg.ID, n); err != nil {
			return Counted{}, err
		}
	}
	if err := s.store.PutSegment(ctx, ws, seg.Segment); err != nil {
		return Counted{}, err
	}
	s.publish(ctx, ws, s.stamp(ix.PutSegment(ctx, seg.def(), now), now, ReasonRule))
	count, _ := ix.Count(seg.ID)
	return Counted{Segment: seg.Segment, Count: count}, nil
}

// Get returns a segment with its count.
func (s *Service) Get(ctx context.Context, ws, id string) (Counted, error) {
	list, err := s.counted(ctx, ws, id)
	if err != nil {
		return Counted{}, err
	}
	return list[0], nil
}

// List returns every segment of the workspace with its count.
func (s *Service) List(ctx context.Context, ws string) ([]Counted, error) {
	return s.counted(ctx, ws, "")
}

// counted returns one segment (id) or all ("") with their counts from the index.
func (s *Service) counted(ctx context.Context, ws, id string) ([]Counted, error) {
	ix, err := s.space(ctx, ws)
	if err != nil {
		return nil, err
	}
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return nil, err
	}
	list := cat.list
	if id != "" {
		seg, ok := cat.byIDOnly(id)
		if !ok {
			return nil, fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
		}
		list = []compiled{seg}
	}
	out := make([]Counted, len(list))
	for i, seg := range list {
		n, _ := ix.Count(seg.ID)
		out[i] = Counted{Segment: seg.Segment, Count: n}
	}
	return out, nil
}

// Update changes a segment's name and/or rule; a new rule recomputes its membership (and that of the segments
// using it) and publishes the transitions.
func (s *Service) Update(ctx context.Context, ws, id string, in Input) (Counted, error) {
	var name string
	var err error
	if in.Name != nil {
		if name, err = validateName(*in.Name); err != nil {
			return Counted{}, err
		}
	}
	ix, err := s.space(ctx, ws)
	if err != nil {
		return Counted{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return Counted{}, err
	}
	seg, ok := cat.byIDOnly(id)
	if !ok {
		return Counted{}, fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	if in.Type != nil && *in.Type != seg.Type {
		return Counted{}, errs.Invalid("type", "cannot change: create a new segment instead")
	}
	if in.Name != nil {
		if other, taken := cat.byName[strings.ToLower(name)]; taken && cat.list[other].ID != id {
			return Counted{}, fmt.Errorf("a segment named %q already exists: %w", name, errs.ErrConflict)
		}
		if deps := cat.dependants(seg); len(deps) > 0 && !strings.EqualFold(name, seg.Name) {
			// References by name would silently point elsewhere.
			return Counted{}, fmt.Errorf("segment %q is used by name in %s; change those rules first (or reference it by id %s): %w",
				seg.Name, strings.Join(deps, ", "), seg.ID, errs.ErrConflict)
		}
		seg.Name = name
	}
	if len(in.Rule) > 0 {
		if seg.static() {
			return Counted{}, errs.Invalid("rule", "a static list has no rule")
		}
		n, err := ParseRule(in.Rule, ix)
		if err != nil {
			return Counted{}, err
		}
		if err := cat.check(id, n); err != nil {
			return Counted{}, err
		}
		seg.node, seg.Rule = n, rule.Format(n)
	}
	now := s.now().UTC()
	seg.UpdatedAt = now
	if err := s.store.PutSegment(ctx, ws, seg.Segment); err != nil {
		return Counted{}, err
	}
	s.publish(ctx, ws, s.stamp(ix.PutSegment(ctx, seg.def(), now), now, ReasonRule))
	count, _ := ix.Count(seg.ID)
	return Counted{Segment: seg.Segment, Count: count}, nil
}

// Delete removes a segment, refusing when another segment's rule uses it (naming them).
func (s *Service) Delete(ctx context.Context, ws, id string) error {
	ix, err := s.space(ctx, ws)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return err
	}
	seg, ok := cat.byIDOnly(id)
	if !ok {
		return fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	if deps := cat.dependants(seg); len(deps) > 0 {
		return fmt.Errorf("segment %q is used by %s: change or delete those first: %w", seg.Name, strings.Join(deps, ", "), errs.ErrConflict)
	}
	if err := s.store.DeleteSegment(ctx, ws, id); err != nil {
		return err
	}
	ix.RemoveSegment(id)
	return nil
}

// Members returns up to limit contacts of a segment after the cursor (a contact id), in id order, and the next
// cursor.
func (s *Service) Members(ctx context.Context, ws, id, cursor string, limit int) ([]contacts.Contact, string, error) {
	if limit < 1 || limit > 1000 {
		return nil, "", errs.Invalid("limit", "must be between 1 and 1000")
	}
	if cursor != "" && !contacts.ValidID(cursor) {
		return nil, "", errs.Invalid("cursor", "is not a cursor this API returned")
	}
	ix, err := s.space(ctx, ws)
	if err != nil {
		return nil, "", err
	}
	if _, ok := ix.Count(id); !ok || !idPattern.MatchString(id) {
		return nil, "", fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	ids, next := ix.Members(id, cursor, limit)
	out, err := s.load(ctx, ws, ids)
	return out, next, err
}

// MemberIDs returns up to limit ids of a segment's members after after, in id order, and the id to continue after
// ("" at the end): what a campaign plans its audience from, without reading the profiles.
func (s *Service) MemberIDs(ctx context.Context, ws, id, after string, limit int) ([]string, string, error) {
	ix, err := s.space(ctx, ws)
	if err != nil {
		return nil, "", err
	}
	if _, ok := ix.Count(id); !ok {
		return nil, "", fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	ids, next := ix.Members(id, after, limit)
	return ids, next, nil
}

// IsMember tells whether a contact is in a segment now (errs.ErrNotFound when there is no such segment).
func (s *Service) IsMember(ctx context.Context, ws, id, contactID string) (bool, error) {
	ix, err := s.space(ctx, ws)
	if err != nil {
		return false, err
	}
	if _, ok := ix.Count(id); !ok {
		return false, fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	return ix.IsMember(id, contactID), nil
}

// load reads contacts by id in one snapshot, skipping those deleted since.
func (s *Service) load(ctx context.Context, ws string, ids []string) ([]contacts.Contact, error) {
	out := make([]contacts.Contact, 0, len(ids))
	err := s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		for _, id := range ids {
			c, ok, err := tx.Get(id)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, c)
			}
		}
		return nil
	})
	return out, err
}

// OfContact returns the segments contact id is in now.
func (s *Service) OfContact(ctx context.Context, ws, id string) ([]Segment, error) {
	if !contacts.ValidID(id) {
		return nil, fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	ix, err := s.space(ctx, ws)
	if err != nil {
		return nil, err
	}
	ids, ok := ix.OfContact(id)
	if !ok {
		return nil, fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return nil, err
	}
	out := []Segment{}
	for _, sid := range ids {
		if seg, ok := cat.byIDOnly(sid); ok {
			out = append(out, seg.Segment)
		}
	}
	return out, nil
}

// byIDOnly finds a segment by id.
func (c *catalog) byIDOnly(id string) (compiled, bool) {
	if !idPattern.MatchString(id) {
		return compiled{}, false
	}
	i, ok := c.byID[id]
	if !ok {
		return compiled{}, false
	}
	return c.list[i], true
}
