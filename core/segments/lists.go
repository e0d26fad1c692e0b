package segments

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// MemberInput names contacts to add to or remove from a static list, by id or by email.
type MemberInput struct {
	Contacts []string `json:"contacts"`
	Emails   []string `json:"emails"`
}

// MemberResult says what an edit of a static list did.
type MemberResult struct {
	// Changed counts the contacts added (or removed); Unchanged those already in (or out of) the list.
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	// NotFound lists the ids and emails that name no contact (at most 100).
	NotFound []string `json:"not_found"`
	Count    int      `json:"count"`
}

// maxMemberEdit bounds one call; imports go in chunks of it.
const maxMemberEdit = 10000

// EditMembers adds (add) or removes contacts of a static list. The list's change is durable when it returns; the
// segments that use the list are re-evaluated for those contacts.
func (s *Service) EditMembers(ctx context.Context, ws, id string, in MemberInput, add bool) (MemberResult, error) {
	if n := len(in.Contacts) + len(in.Emails); n == 0 || n > maxMemberEdit {
		return MemberResult{}, errs.Invalid("contacts", "give 1 to %d contact ids or emails in contacts and emails", maxMemberEdit)
	}
	ix, err := s.space(ctx, ws)
	if err != nil {
		return MemberResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return MemberResult{}, err
	}
	seg, ok := cat.byIDOnly(id)
	if !ok {
		return MemberResult{}, fmt.Errorf("segment %q: %w", id, errs.ErrNotFound)
	}
	if !seg.static() {
		return MemberResult{}, fmt.Errorf("segment %q follows its rule: only static lists take members by hand: %w", seg.Name, errs.ErrConflict)
	}
	var res MemberResult
	found, notFound, err := s.resolve(ctx, ws, in)
	if err != nil {
		return MemberResult{}, err
	}
	res.NotFound = notFound
	now := s.now().UTC()
	var ts []Transition
	var ids []string
	for _, cid := range found {
		if ix.IsMember(id, cid) == add {
			res.Unchanged++
			continue
		}
		ids = append(ids, cid)
		ts = append(ts, Transition{Segment: id, Contact: cid, Entered: add, At: now, Reason: ReasonManual})
	}
	res.Changed = len(ts)
	if len(ts) > 0 {
		// The list's own record is its truth: durable before the index shows it.
		if err := s.store.RecordTransitions(ctx, ws, ts); err != nil {
			return MemberResult{}, err
		}
		all := ix.SetMembers(ctx, id, ids, add, now)
		s.notify(ctx, ws, ts)
		var others []Transition
		for _, t := range all {
			if t.Segment != id {
				others = append(others, Transition{Segment: t.Segment, Contact: t.Contact, Entered: t.Entered, At: now, Reason: ReasonChange})
			}
		}
		s.publish(ctx, ws, others)
	}
	res.Count, _ = ix.Count(id)
	return res, nil
}

// resolve finds the contacts named by id (following merges) or email, each once.
func (s *Service) resolve(ctx context.Context, ws string, in MemberInput) (found, notFound []string, err error) {
	seen := map[string]bool{}
	miss := func(ref string) {
		if len(notFound) < 100 {
			notFound = append(notFound, ref)
		}
	}
	err = s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
		add := func(id string) {
			if !seen[id] {
				seen[id] = true
				found = append(found, id)
			}
		}
		for _, id := range in.Contacts {
			if !contacts.ValidID(id) {
				miss(id)
				continue
			}
			if m, ok := tx.MergedInto(id); ok {
				id = m.Into
			}
			_, ok, err := tx.Get(id)
			if err != nil {
				return err
			}
			if !ok {
				miss(id)
				continue
			}
			add(id)
		}
		for _, raw := range in.Emails {
			email, err := contacts.NormalizeEmail(raw)
			if err != nil {
				miss(raw)
				continue
			}
			id, ok := tx.Lookup(contacts.ByEmail, email)
			if !ok {
				miss(raw)
				continue
			}
			add(id)
		}
		return nil
	})
	return found, notFound, err
}

// ImportMembers reads a CSV with a header naming an "id" (or "contact_id") or an "email" column, and adds (or
// removes) the contacts of every row, in chunks. A file without such a column is refused before anything changes.
func (s *Service) ImportMembers(ctx context.Context, ws, id string, r io.Reader, add bool) (MemberResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return MemberResult{}, errs.Invalid("file", "is not a CSV file with a header line: %v", err)
	}
	col, byEmail := -1, false
	for i, h := range head {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "id", "contact_id":
			col, byEmail = i, false
		case "email":
			if col < 0 {
				col, byEmail = i, true
			}
		}
	}
	if col < 0 {
		return MemberResult{}, errs.Invalid("file", "the header has no id, contact_id or email column")
	}
	var total MemberResult
	var chunk MemberInput
	flush := func() error {
		if len(chunk.Contacts)+len(chunk.Emails) == 0 {
			return nil
		}
		res, err := s.EditMembers(ctx, ws, id, chunk, add)
		if err != nil {
			return err
		}
		total.Changed += res.Changed
		total.Unchanged += res.Unchanged
		total.Count = res.Count
		for _, nf := range res.NotFound {
			if len(total.NotFound) < 100 {
				total.NotFound = append(total.NotFound, nf)
			}
		}
		chunk = MemberInput{}
		return nil
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, errs.Invalid("file", "line %d: %v (rows before it were applied)", line, err)
		}
		if col >= len(rec) || strings.TrimSpace(rec[col]) == "" {
			continue
		}
		v := strings.TrimSpace(rec[col])
		if byEmail {
			chunk.Emails = append(chunk.Emails, v)
		} else {
			chunk.Contacts = append(chunk.Contacts, v)
		}
		if len(chunk.Contacts)+len(chunk.Emails) == maxMemberEdit {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	if total.NotFound == nil {
		total.NotFound = []string{}
	}
	if total.Count == 0 {
		ix, err := s.space(ctx, ws)
		if err != nil {
			return total, err
		}
		total.Count, _ = ix.Count(id)
	}
	return total, nil
}

// HistoryItem is a transition with the segment's name (empty once the segment is deleted).
type HistoryItem struct {
	Transition
	SegmentName string `json:"segment_name,omitempty"`
}

// History returns a contact's segment transitions from the newest, up to limit after cursor, and the next cursor.
func (s *Service) History(ctx context.Context, ws, contactID, cursor string, limit int) ([]HistoryItem, string, error) {
	if !contacts.ValidID(contactID) {
		return nil, "", fmt.Errorf("contact %q: %w", contactID, errs.ErrNotFound)
	}
	if limit < 1 || limit > 1000 {
		return nil, "", errs.Invalid("limit", "must be between 1 and 1000")
	}
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return nil, "", err
	}
	out := []HistoryItem{}
	next, last := "", ""
	err = s.store.SegmentHistory(ctx, ws, contactID, cursor, func(t Transition, c string) bool {
		if len(out) == limit {
			next = last
			return false
		}
		item := HistoryItem{Transition: t}
		if seg, ok := cat.byIDOnly(t.Segment); ok {
			item.SegmentName = seg.Name
		}
		out = append(out, item)
		last = c
		return true
	})
	return out, next, err
}

// ExportSection is the segments part of a contact's GDPR export: the segments it is in, and its history.
func (s *Service) ExportSection() contacts.ExportSection {
	return contacts.ExportSection{Name: "segments", Fn: func(ctx context.Context, ws, id string) (any, error) {
		member, err := s.OfContact(ctx, ws, id)
		if err != nil && !errors.Is(err, errs.ErrNotFound) {
			return nil, err
		}
		history := []HistoryItem{}
		cursor := ""
		for {
			page, next, err := s.History(ctx, ws, id, cursor, 1000)
			if err != nil {
				return nil, err
			}
			history = append(history, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		if member == nil {
			member = []Segment{}
		}
		return map[string]any{"member_of": member, "history": history}, nil
	}}
}
