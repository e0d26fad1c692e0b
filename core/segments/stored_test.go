package segments_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// storedSubject is a contact read back from the store, for the reference evaluator: the plain path the index must
// agree with.
type storedSubject struct {
	tx   contacts.Tx
	c    contacts.Contact
	segs map[string]rule.Node
	now  time.Time
}

func (s storedSubject) ID() string { return s.c.ID }
func (s storedSubject) Field(name string) (contacts.Value, bool) {
	text := func(v string) (contacts.Value, bool) { return contacts.StringValue(v), v != "" }
	switch name {
	case "email":
		return text(s.c.Email)
	case "user_id":
		return text(s.c.UserID)
	case "created_at":
		return contacts.TimeValue(s.c.CreatedAt), true
	case "last_seen_at":
		return contacts.TimeValue(s.c.LastSeenAt), !s.c.LastSeenAt.IsZero()
	}
	return contacts.Value{}, false
}
func (s storedSubject) Attribute(name string) (contacts.Value, bool) {
	v, ok := s.c.Attributes[name]
	return v, ok
}
func (s storedSubject) HasTag(tag string) bool                   { return s.c.HasTag(tag) }
func (s storedSubject) Consent(ch string) contacts.ConsentStatus { return s.c.ConsentOn(ch) }
func (s storedSubject) Score(string) (float64, bool)             { return 0, false }
func (s storedSubject) InSegment(ref string) bool                { return rule.Eval(s.segs[ref], s, s.now) }
func (s storedSubject) Events(name string, fn func(time.Time, map[string]any) bool) {
	_ = s.tx.Events(s.c.ID, "", func(e events.Event, _ string) bool {
		if e.Type != events.Track || e.Name != name {
			return true
		}
		var props map[string]any
		dec := json.NewDecoder(bytes.NewReader(e.Properties))
		dec.UseNumber()
		_ = dec.Decode(&props)
		return fn(e.Timestamp, props)
	})
}

// TestIndexAgreesWithStoredContacts drives random traffic through the contacts service (profile writes, tracked
// events, identity merges, deletions) with saved segments live, then compares every membership with the reference
// evaluator run on the contacts and events read back from the store, before and after a restart (a rebuild).
func TestIndexAgreesWithStoredContacts(t *testing.T) {
	w := newLiveWorld(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 9))
	rules := map[string]string{
		"FR":         `country = "FR"`,
		"Buyers":     `performed("Order Completed", within: 7d, count >= 2)`,
		"Big buyers": `performed("Order Completed", where: total > 100)`,
		"VIP or FR":  `has_tag("vip") or in_segment("FR")`,
		"Quiet":      `not performed("Page Viewed", within: 3d) and email exists`,
		"Half":       `bucket(50%) and not in_segment("Buyers")`,
		"Seen":       `last_seen_at within 2d`,
	}
	nodes := map[string]rule.Node{}
	ids := map[string]string{}
	for _, name := range []string{"FR", "Buyers", "Big buyers", "VIP or FR", "Quiet", "Half", "Seen"} {
		seg := w.create(name, rules[name])
		ids[name] = seg.ID
		nodes[name], _ = rule.Parse(rules[name])
	}
	emails := make([]string, 60)
	for i := range emails {
		emails[i] = fmt.Sprintf("p%d@example.com", i)
	}
	for step := range 400 {
		email := emails[r.IntN(len(emails))]
		switch k := r.IntN(10); {
		case k < 3:
			var tags []string
			if r.IntN(3) == 0 {
				tags = []string{"vip"}
			}
			w.upsert(email, map[string]any{"country": []string{"FR", "DE", "ES"}[r.IntN(3)]}, tags...)
		case k < 8:
			at := w.now().Add(-time.Duration(r.IntN(10*24)) * time.Hour).Truncate(time.Millisecond)
			name := []string{"Order Completed", "Page Viewed"}[r.IntN(2)]
			_, err := w.cs.Ingest(ctx, "acme", []contacts.Incoming{{Event: events.Event{
				MessageID: fmt.Sprint("m", step), Type: events.Track, Name: name, AnonymousID: "anon-" + email,
				Properties: json.RawMessage(fmt.Sprintf(`{"total":%d}`, r.IntN(200))), Timestamp: at, ReceivedAt: at}}})
			if err != nil {
				t.Fatal(err)
			}
		case k < 9:
			// identify links the browser to the email: the anonymous contact merges into the known one.
			_, err := w.cs.Ingest(ctx, "acme", []contacts.Incoming{{Event: events.Event{MessageID: fmt.Sprint("i", step),
				Type: events.Identify, AnonymousID: "anon-" + email, Timestamp: w.now(), ReceivedAt: w.now()},
				Traits: map[string]any{"email": email}}})
			if err != nil {
				t.Fatal(err)
			}
		default:
			if found, _, err := w.cs.List(ctx, "acme", contacts.Filter{Email: email, Limit: 1}); err == nil && len(found) == 1 {
				if err := w.cs.Delete(ctx, "acme", found[0].ID, false, "test"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if step%37 == 0 {
			w.advance(time.Duration(r.IntN(48)) * time.Hour)
			w.ss.Recheck(ctx)
		}
	}
	compare := func(when string) {
		t.Helper()
		now := w.now()
		want := map[string]int{}
		err := w.st.ViewContacts(ctx, "acme", func(tx contacts.Tx) error {
			return tx.Scan("", func(c contacts.Contact) bool {
				sub := storedSubject{tx: tx, c: c, segs: nodes, now: now}
				for name, n := range nodes {
					if rule.Eval(n, sub, now) {
						want[name]++
					}
				}
				return true
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		for name, id := range ids {
			if got := w.count(id); got != want[name] {
				t.Errorf("%s: segment %s counts %d, the stored contacts give %d", when, name, got, want[name])
			}
			n, _ := segments.ParseRule(rawRule(rules[name]), nil)
			if p, err := w.ss.Preview(ctx, "acme", n, 0); err != nil || p.Count != want[name] {
				t.Errorf("%s: preview of %s: %d %v, want %d", when, name, p.Count, err, want[name])
			}
		}
	}
	w.ss.Recheck(ctx)
	compare("live")
	w.close()
	w.open()
	compare("after a restart")
}
