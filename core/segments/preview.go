package segments

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// Service keeps segments and evaluates their rules over a workspace's stored contacts.
type Service struct {
	store Store
	now   func() time.Time
	// mu serialises changes to segments, so that two writes never make a cycle or a duplicate name together.
	mu sync.Mutex
}

// NewService returns a Service over the store. now may be nil for time.Now.
func NewService(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// catalog loads the workspace's segments.
func (s *Service) catalog(ctx context.Context, ws string) (*catalog, error) {
	list, err := s.store.ListSegments(ctx, ws)
	if err != nil {
		return nil, err
	}
	return newCatalog(list)
}

// ParseRule reads a rule given as text (a JSON string) or as the JSON form of its syntax tree (an object), and
// checks it (segment references are checked against the workspace by the service). Problems come back as an *errs.ValidationError whose fields are "rule" and whose messages start with
// the line and column (text) or the JSON path (object) of each problem.
func ParseRule(raw json.RawMessage) (rule.Node, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errs.Invalid("rule", "is required: a rule such as country = \"FR\" and has_tag(\"vip\")")
	}
	var n rule.Node
	var err error
	var text string
	if json.Unmarshal(raw, &text) == nil {
		n, err = rule.Parse(text)
	} else {
		n, err = rule.DecodeJSON(raw)
	}
	if err == nil {
		if problems := rule.Check(n, nil); len(problems) > 0 {
			err = problems
		}
	}
	return n, ruleProblems(err)
}

// ruleProblems turns rule errors into one validation error on the field "rule".
func ruleProblems(err error) error {
	var list rule.Errors
	if err == nil || !errors.As(err, &list) {
		return err
	}
	v := &errs.ValidationError{}
	for _, e := range list {
		v.Add("rule", "%s", e.Error())
	}
	return v
}

// Preview is the result of evaluating a rule without saving it.
type Preview struct {
	// Count is how many contacts match.
	Count int `json:"count"`
	// Sample holds up to the requested number of matching contacts, oldest first.
	Sample []contacts.Contact `json:"sample"`
	// Scanned is how many contacts were evaluated.
	Scanned int `json:"scanned"`
}

// scanPage is how many contacts one read transaction evaluates: short snapshots, so that a long scan never keeps
// bbolt from growing the file for writers.
const scanPage = 1000

// Preview evaluates n against every contact of the workspace, now, and returns the count and a sample.
func (s *Service) Preview(ctx context.Context, ws string, n rule.Node, sample int) (Preview, error) {
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return Preview{}, err
	}
	if err := cat.check("", n); err != nil {
		return Preview{}, err
	}
	out := Preview{Sample: []contacts.Contact{}}
	out.Scanned, err = s.scan(ctx, ws, "", cat, func(c *contacts.Contact, sub *subject) bool {
		if rule.Eval(n, sub, sub.now) {
			out.Count++
			if len(out.Sample) < sample {
				out.Sample = append(out.Sample, *c)
			}
		}
		return true
	})
	if err != nil {
		return Preview{}, err
	}
	return out, nil
}

// scan calls fn with every contact whose id is above after, in id order, and a subject to evaluate rules on it,
// until fn returns false; it returns how many contacts it visited. It reads in pages of short snapshots.
func (s *Service) scan(ctx context.Context, ws, after string, cat *catalog, fn func(*contacts.Contact, *subject) bool) (int, error) {
	visited := 0
	now := s.now().UTC() // one instant for the whole scan, so every contact is judged at the same time
	for {
		seen, stop := 0, false
		err := s.store.ViewContacts(ctx, ws, func(tx contacts.Tx) error {
			var evalErr error
			err := tx.Scan(after, func(c contacts.Contact) bool {
				if evalErr = ctx.Err(); evalErr != nil {
					return false
				}
				seen++
				after = c.ID
				if !fn(&c, &subject{tx: tx, c: &c, cat: cat, now: now}) {
					stop = true
					return false
				}
				return seen < scanPage
			})
			if err != nil {
				return err
			}
			return evalErr
		})
		visited += seen
		if err != nil || stop || seen < scanPage {
			return visited, err
		}
	}
}

// subject is a stored contact as the reference evaluator reads it; its events come from the same snapshot.
type subject struct {
	tx  contacts.Tx
	c   *contacts.Contact
	cat *catalog
	now time.Time
	// memo holds the results of in_segment(...) for this contact, by segment id.
	memo map[string]bool
}

var _ rule.Subject = (*subject)(nil)

func (s *subject) ID() string { return s.c.ID }

func (s *subject) Field(name string) (contacts.Value, bool) {
	text := func(v string) (contacts.Value, bool) { return contacts.StringValue(v), v != "" }
	when := func(t time.Time) (contacts.Value, bool) { return contacts.TimeValue(t), !t.IsZero() }
	switch name {
	case "email":
		return text(s.c.Email)
	case "phone":
		return text(s.c.Phone)
	case "user_id":
		return text(s.c.UserID)
	case "timezone":
		return text(s.c.Timezone)
	case "locale":
		return text(s.c.Locale)
	case "created_at":
		return when(s.c.CreatedAt)
	case "last_seen_at":
		return when(s.c.LastSeenAt)
	}
	// lifecycle is filled by scoring (a later issue): no contact has one yet.
	return contacts.Value{}, false
}

func (s *subject) Attribute(name string) (contacts.Value, bool) {
	v, ok := s.c.Attributes[name]
	return v, ok
}

func (s *subject) HasTag(tag string) bool { return s.c.HasTag(tag) }

func (s *subject) Consent(channel string) contacts.ConsentStatus { return s.c.ConsentOn(channel) }

// Score: scores arrive with the scoring issue; no contact has one yet.
func (s *subject) Score(string) (float64, bool) { return 0, false }

// InSegment evaluates the referenced segment's rule on the same contact (saved rules have no cycles).
func (s *subject) InSegment(ref string) bool {
	seg, ok := s.cat.find(ref)
	if !ok {
		return false
	}
	if v, ok := s.memo[seg.ID]; ok {
		return v
	}
	if s.memo == nil {
		s.memo = map[string]bool{}
	}
	v := rule.Eval(seg.node, s, s.now)
	s.memo[seg.ID] = v
	return v
}

func (s *subject) Events(name string, fn func(time.Time, map[string]any) bool) {
	_ = s.tx.Events(s.c.ID, "", func(e events.Event, _ string) bool {
		if e.Type != events.Track || e.Name != name {
			return true
		}
		var props map[string]any
		if len(e.Properties) > 0 {
			dec := json.NewDecoder(bytes.NewReader(e.Properties))
			dec.UseNumber()
			_ = dec.Decode(&props)
		}
		return fn(e.Timestamp, props)
	})
}
