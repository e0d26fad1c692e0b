package segments

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// Input is what a caller sets on a segment: a name and a rule (text, or the JSON form of its tree). In an update,
// absent fields are unchanged.
type Input struct {
	Name *string         `json:"name"`
	Rule json.RawMessage `json:"rule"`
}

// Counted is a segment with how many contacts match it now.
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

// Create saves a new segment. Names are unique in a workspace (ignoring case); in_segment references must name
// saved segments, without cycles.
func (s *Service) Create(ctx context.Context, ws string, in Input) (Counted, error) {
	if in.Name == nil {
		return Counted{}, errs.Invalid("name", "is required: 1-200 characters")
	}
	name, err := validateName(*in.Name)
	if err != nil {
		return Counted{}, err
	}
	n, err := ParseRule(in.Rule)
	if err != nil {
		return Counted{}, err
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
	seg := Segment{ID: "seg_" + contacts.NewID(now), Name: name, Rule: rule.Format(n), CreatedAt: now, UpdatedAt: now}
	if err := cat.check(seg.ID, n); err != nil {
		return Counted{}, err
	}
	if err := s.store.PutSegment(ctx, ws, seg); err != nil {
		return Counted{}, err
	}
	return s.Get(ctx, ws, seg.ID)
}

// Get returns a segment with its count.
func (s *Service) Get(ctx context.Context, ws, id string) (Counted, error) {
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return Counted{}, err
	}
	seg, ok := cat.byIDOnly(id)
	if !ok {
		return Counted{}, fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	counts, err := s.counts(ctx, ws, cat, []compiled{seg})
	if err != nil {
		return Counted{}, err
	}
	return Counted{Segment: seg.Segment, Count: counts[0]}, nil
}

// List returns every segment of the workspace with its count, computed in one pass over the contacts.
func (s *Service) List(ctx context.Context, ws string) ([]Counted, error) {
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return nil, err
	}
	counts, err := s.counts(ctx, ws, cat, cat.list)
	if err != nil {
		return nil, err
	}
	out := make([]Counted, len(cat.list))
	for i, seg := range cat.list {
		out[i] = Counted{Segment: seg.Segment, Count: counts[i]}
	}
	return out, nil
}

// counts evaluates segs over every contact in one scan.
func (s *Service) counts(ctx context.Context, ws string, cat *catalog, segs []compiled) ([]int, error) {
	counts := make([]int, len(segs))
	if len(segs) == 0 {
		return counts, nil
	}
	_, err := s.scan(ctx, ws, "", cat, func(_ *contacts.Contact, sub *subject) bool {
		for i, seg := range segs {
			if sub.InSegment(seg.ID) {
				counts[i]++
			}
		}
		return true
	})
	return counts, err
}

// Update changes a segment's name and/or rule.
func (s *Service) Update(ctx context.Context, ws, id string, in Input) (Counted, error) {
	var name string
	var n rule.Node
	var err error
	if in.Name != nil {
		if name, err = validateName(*in.Name); err != nil {
			return Counted{}, err
		}
	}
	if len(in.Rule) > 0 {
		if n, err = ParseRule(in.Rule); err != nil {
			return Counted{}, err
		}
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
	if n != nil {
		if err := cat.check(id, n); err != nil {
			return Counted{}, err
		}
		seg.Rule = rule.Format(n)
	}
	seg.UpdatedAt = s.now().UTC()
	if err := s.store.PutSegment(ctx, ws, seg.Segment); err != nil {
		return Counted{}, err
	}
	return s.Get(ctx, ws, id)
}

// Delete removes a segment, refusing when another segment's rule uses it (naming them).
func (s *Service) Delete(ctx context.Context, ws, id string) error {
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
	return s.store.DeleteSegment(ctx, ws, id)
}

// Members returns up to limit contacts of a segment after the cursor (a contact id), and the next cursor.
func (s *Service) Members(ctx context.Context, ws, id, cursor string, limit int) ([]contacts.Contact, string, error) {
	if limit < 1 || limit > 1000 {
		return nil, "", errs.Invalid("limit", "must be between 1 and 1000")
	}
	if cursor != "" && !contacts.ValidID(cursor) {
		return nil, "", errs.Invalid("cursor", "is not a cursor this API returned")
	}
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return nil, "", err
	}
	seg, ok := cat.byIDOnly(id)
	if !ok {
		return nil, "", fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	var out []contacts.Contact
	next := ""
	_, err = s.scan(ctx, ws, cursor, cat, func(c *contacts.Contact, sub *subject) bool {
		if !sub.InSegment(seg.ID) {
			return true
		}
		if len(out) == limit {
			next = out[len(out)-1].ID
			return false
		}
		out = append(out, *c)
		return true
	})
	return out, next, err
}

// OfContact returns the segments contact id is in now.
func (s *Service) OfContact(ctx context.Context, ws, id string) ([]Segment, error) {
	if !contacts.ValidID(id) {
		return nil, fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return nil, err
	}
	out := []Segment{}
	found := false
	err = s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		c, ok, err := tx.Get(id)
		if err != nil || !ok {
			return err
		}
		found = true
		sub := &subject{tx: tx, c: &c, cat: cat, now: s.now().UTC()}
		for _, seg := range cat.list {
			if sub.InSegment(seg.ID) {
				out = append(out, seg.Segment)
			}
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("contact %q: %w", id, errs.ErrNotFound)
	}
	return out, err
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
