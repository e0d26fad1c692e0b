package index

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// The property test: on random contacts, events and rules, the index (compiled rules, incremental updates, the
// time recheck, static lists) agrees with the reference evaluator (rule.Eval) run on plain copies of the data.

type refEvent struct {
	name  string
	at    time.Time
	props map[string]any
}

// world is the reference copy of the data.
type world struct {
	contacts map[string]*contacts.Contact
	events   map[string][]refEvent // oldest first
	segs     []Def
	static   map[string]map[string]bool
}

func (w *world) Events(_ context.Context, id, name string, fn func(time.Time, map[string]any) bool) {
	evs := w.events[id]
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].name == name && !fn(evs[i].at, evs[i].props) {
			return
		}
	}
}

type refSubject struct {
	w   *world
	c   *contacts.Contact
	now time.Time
}

func (s refSubject) ID() string { return s.c.ID }
func (s refSubject) Field(name string) (contacts.Value, bool) {
	text := func(v string) (contacts.Value, bool) { return contacts.StringValue(v), v != "" }
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
		return contacts.TimeValue(s.c.CreatedAt), !s.c.CreatedAt.IsZero()
	case "last_seen_at":
		return contacts.TimeValue(s.c.LastSeenAt), !s.c.LastSeenAt.IsZero()
	}
	return contacts.Value{}, false
}
func (s refSubject) Attribute(name string) (contacts.Value, bool) {
	v, ok := s.c.Attributes[name]
	return v, ok
}
func (s refSubject) HasTag(tag string) bool                   { return s.c.HasTag(tag) }
func (s refSubject) Consent(ch string) contacts.ConsentStatus { return s.c.ConsentOn(ch) }
func (s refSubject) Score(string) (float64, bool)             { return 0, false }
func (s refSubject) Events(name string, fn func(time.Time, map[string]any) bool) {
	s.w.Events(context.Background(), s.c.ID, name, fn)
}
func (s refSubject) InSegment(ref string) bool {
	for _, d := range s.w.segs {
		if d.ID == ref || d.Name == ref {
			if d.Rule == nil {
				return s.w.static[d.ID][s.c.ID]
			}
			return rule.Eval(d.Rule, s, s.now)
		}
	}
	return false
}

func (w *world) member(d Def, id string, now time.Time) bool {
	if d.Rule == nil {
		return w.static[d.ID][id]
	}
	return rule.Eval(d.Rule, refSubject{w: w, c: w.contacts[id], now: now}, now)
}

// gen makes random data and rules over one small vocabulary, so that rules and data meet.
type gen struct {
	r   *rand.Rand
	now time.Time
}

var (
	countries = []string{"FR", "DE", "fr", "US", "2024-05-01"}
	plans     = []string{"free", "pro", "Pro team", "team"}
	tagsVocab = []string{"vip", "beta", "churned"}
	channels  = []string{"email", "sms"}
	names     = []string{"Order Completed", "Cart Abandoned", "Signed Up"}
)

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *gen) when() time.Time {
	// Milliseconds, as trackers send them, around now (some in the future).
	return g.now.Add(time.Duration(g.r.Int64N(int64(90*24*time.Hour))) - 80*24*time.Hour).Truncate(time.Millisecond)
}

func (g *gen) contact(id string) *contacts.Contact {
	c := &contacts.Contact{ID: id, CreatedAt: g.when(), Attributes: map[string]contacts.Value{}}
	if g.r.IntN(2) == 0 {
		c.Email = id + "@example.com"
	}
	if g.r.IntN(4) == 0 {
		c.Timezone = "Europe/Paris"
	}
	if g.r.IntN(3) > 0 {
		c.Attributes["country"] = contacts.StringValue(g.pick(countries))
	}
	if g.r.IntN(3) > 0 {
		c.Attributes["plan"] = contacts.StringValue(g.pick(plans))
	}
	switch g.r.IntN(4) {
	case 0:
		c.Attributes["age"] = contacts.NumberValue(float64(g.r.IntN(80)))
	case 1:
		c.Attributes["age"] = contacts.StringValue("thirty")
	}
	if g.r.IntN(2) == 0 {
		c.Attributes["signed_up_at"] = contacts.TimeValue(g.when())
	}
	if g.r.IntN(3) == 0 {
		c.Attributes["interests"] = contacts.ListValue([]string{g.pick(plans), "Shoes"})
	}
	if g.r.IntN(3) == 0 {
		c.Attributes["vip"] = contacts.BoolValue(g.r.IntN(2) == 0)
	}
	for _, t := range tagsVocab {
		if g.r.IntN(3) == 0 {
			c.Tags = append(c.Tags, t)
		}
	}
	for _, ch := range channels {
		switch g.r.IntN(3) {
		case 0:
			c.Consent = map[string]contacts.Consent{ch: {Status: contacts.Subscribed}}
		case 1:
			c.Consent = map[string]contacts.Consent{ch: {Status: contacts.Unsubscribed}}
		}
	}
	return c
}

func (g *gen) event(id string) (events.Event, map[string]any) {
	props := map[string]any{"total": float64(g.r.IntN(300)), "sku": g.pick(plans)}
	if g.r.IntN(5) == 0 {
		delete(props, "total")
	}
	return events.Event{ContactID: id, Type: events.Track, Name: g.pick(names), Timestamp: g.when(), MessageID: fmt.Sprint(g.r.Int64())}, props
}

func (g *gen) condition(segs []Def) string {
	switch g.r.IntN(14) {
	case 0:
		return fmt.Sprintf("country = %q", g.pick(countries))
	case 1:
		return fmt.Sprintf("plan in [%q, %q]", g.pick(plans), g.pick(plans))
	case 2:
		return fmt.Sprintf("plan contains %q", []string{"pro", "TEAM", "e"}[g.r.IntN(3)])
	case 3:
		return fmt.Sprintf("age %s %d", []string{">", "<=", "=", "!="}[g.r.IntN(4)], g.r.IntN(80))
	case 4:
		return fmt.Sprintf("signed_up_at %s %dd", []string{"within", "older_than"}[g.r.IntN(2)], 1+g.r.IntN(60))
	case 5:
		return fmt.Sprintf("has_tag(%q)", g.pick(tagsVocab))
	case 6:
		return fmt.Sprintf("%s(%q)", []string{"subscribed", "unsubscribed"}[g.r.IntN(2)], g.pick(channels))
	case 7:
		return fmt.Sprintf("performed(%q)", g.pick(names))
	case 8:
		return fmt.Sprintf("performed(%q, within: %dd, count >= %d)", g.pick(names), 1+g.r.IntN(40), g.r.IntN(3))
	case 9:
		return fmt.Sprintf("performed(%q, within: %dd, where: total > %d)", g.pick(names), 1+g.r.IntN(40), g.r.IntN(300))
	case 10:
		return fmt.Sprintf("bucket(%d%%)", 1+g.r.IntN(99))
	case 11:
		if len(segs) > 0 {
			return fmt.Sprintf("in_segment(%q)", segs[g.r.IntN(len(segs))].Name)
		}
		return "email exists"
	case 12:
		return fmt.Sprintf("last_seen_at within %dd", 1+g.r.IntN(30))
	}
	return fmt.Sprintf("not performed(%q, within: %dd)", g.pick(names), 1+g.r.IntN(30))
}

func (g *gen) rule(segs []Def, depth int) string {
	if depth == 0 || g.r.IntN(3) == 0 {
		return g.condition(segs)
	}
	op := []string{"and", "or"}[g.r.IntN(2)]
	s := "(" + g.rule(segs, depth-1) + " " + op + " " + g.rule(segs, depth-1) + ")"
	if g.r.IntN(4) == 0 {
		s = "not " + s
	}
	return s
}

func parse(t *testing.T, text string) rule.Node {
	t.Helper()
	n, err := rule.Parse(text)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return n
}

// check compares every membership and count of the index with the reference at now.
func check(t *testing.T, ix *Index, w *world, now time.Time, step string) {
	t.Helper()
	for _, d := range w.segs {
		want := 0
		for id := range w.contacts {
			in := w.member(d, id, now)
			if in {
				want++
			}
			if got := ix.IsMember(d.ID, id); got != in {
				t.Fatalf("%s: segment %s (%v) contact %s: index says %v, reference %v", step, d.Name, d.Rule, id, got, in)
			}
		}
		if got, _ := ix.Count(d.ID); got != want {
			t.Fatalf("%s: segment %s count %d, reference %d", step, d.Name, got, want)
		}
	}
}

func TestIndexAgreesWithReference(t *testing.T) {
	// Full passes in blocks of 64 slots, so that these small indexes are filled on several goroutines too.
	defer func(n int) { fillMinBlock = n }(fillMinBlock)
	fillMinBlock = 64
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ctx := context.Background()
			g := &gen{r: rand.New(rand.NewPCG(seed, 7)), now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
			w := &world{contacts: map[string]*contacts.Contact{}, events: map[string][]refEvent{}, static: map[string]map[string]bool{}}
			ix := New(w)
			addEvent := func(e events.Event, props map[string]any) {
				w.events[e.ContactID] = append(w.events[e.ContactID], refEvent{name: e.Name, at: e.Timestamp, props: props})
				sort.SliceStable(w.events[e.ContactID], func(i, j int) bool {
					return w.events[e.ContactID][i].at.Before(w.events[e.ContactID][j].at)
				})
				c := w.contacts[e.ContactID]
				if inNanos(e.Timestamp) && (c.LastSeenAt.IsZero() || e.Timestamp.Sub(c.LastSeenAt) >= lastSeenStep) {
					c.LastSeenAt = e.Timestamp
				}
			}
			// Start: contacts and events loaded as a rebuild does.
			for i := range 150 {
				c := g.contact(fmt.Sprintf("c%04d", i*37%150)) // slots not in id order
				w.contacts[c.ID] = c
				// A contact's events in one call and in no particular order, as the store hands them.
				var at []int64
				var names []string
				for range g.r.IntN(6) {
					e, props := g.event(c.ID)
					addEvent(e, props)
					at, names = append(at, eventNanos(e.Timestamp)), append(names, e.Name)
				}
				g.r.Shuffle(len(at), func(i, j int) { at[i], at[j], names[i], names[j] = at[j], at[i], names[j], names[i] })
				ix.LoadEvents(c.ID, at, ix.EventCodes(names))
				ix.Load(*c)
			}
			// Segments, each possibly referencing earlier ones; one static list.
			list := Def{ID: "seg_list", Name: "List"}
			w.segs = append(w.segs, list)
			w.static[list.ID] = map[string]bool{}
			ix.PutSegment(ctx, list, g.now)
			// Even seeds put them all at once, as a start does (PutSegments: full passes on several goroutines);
			// odd seeds one at a time, as the API does.
			var defs []Def
			for i := range 8 {
				d := Def{ID: fmt.Sprintf("seg_%02d", i), Name: fmt.Sprintf("S%d", i)}
				d.Rule = parse(t, g.rule(w.segs, 3))
				w.segs = append(w.segs, d)
				if seed%2 == 1 {
					ix.PutSegment(ctx, d, g.now)
				}
				defs = append(defs, d)
			}
			if seed%2 == 0 {
				ix.PutSegments(ctx, defs, g.now)
			}
			check(t, ix, w, g.now, "start")
			ids := slices.Sorted(func(yield func(string) bool) {
				for id := range w.contacts {
					if !yield(id) {
						return
					}
				}
			})
			seq := uint64(0)
			for step := range 120 {
				seq++
				id := ids[g.r.IntN(len(ids))]
				if _, live := w.contacts[id]; !live {
					continue
				}
				var ch contacts.Change
				ch.Seq = seq
				name := ""
				switch k := g.r.IntN(10); {
				case k < 4: // a tracked event, sometimes with a profile change
					e, props := g.event(id)
					addEvent(e, props)
					ch.Events = []events.Event{e}
					name = "event " + e.Name
				case k < 7: // a profile write
					c := g.contact(id)
					c.LastSeenAt = w.contacts[id].LastSeenAt
					w.contacts[id] = c
					ch.Contacts = []contacts.Contact{*c}
					name = "profile"
				case k < 8: // static list edit
					in := g.r.IntN(2) == 0
					w.static[list.ID][id] = in
					ix.SetMembers(ctx, list.ID, []string{id}, in, g.now)
					check(t, ix, w, g.now, fmt.Sprintf("step %d static", step))
					continue
				case k < 9: // time passes
					g.now = g.now.Add(time.Duration(g.r.Int64N(int64(5 * 24 * time.Hour))))
					ix.Recheck(ctx, g.now)
					check(t, ix, w, g.now, fmt.Sprintf("step %d recheck", step))
					continue
				default: // deletion or merge into another contact
					other := ids[g.r.IntN(len(ids))]
					if _, live := w.contacts[other]; live && other != id && g.r.IntN(2) == 0 {
						w.events[other] = append(w.events[other], w.events[id]...)
						sort.SliceStable(w.events[other], func(i, j int) bool { return w.events[other][i].at.Before(w.events[other][j].at) })
						ch.Merged = []contacts.Merge{{From: id, Into: other}}
						ch.Contacts = []contacts.Contact{*w.contacts[other]}
						name = "merge"
					} else {
						ch.Deleted = []string{id}
						name = "delete"
					}
					delete(w.contacts, id)
					delete(w.events, id)
					delete(w.static[list.ID], id)
				}
				ix.Apply(ctx, ch, g.now)
				check(t, ix, w, g.now, fmt.Sprintf("step %d %s of %s", step, name, id))
			}
			// Previews of random rules agree too.
			for range 30 {
				n := parse(t, g.rule(w.segs, 3))
				var matching []string
				for id := range w.contacts {
					if rule.Eval(n, refSubject{w: w, c: w.contacts[id], now: g.now}, g.now) {
						matching = append(matching, id)
					}
				}
				slices.Sort(matching)
				got, sample := ix.Preview(ctx, n, g.now, 5)
				if got != len(matching) {
					t.Fatalf("preview of %s: %d, reference %d", rule.Format(n), got, len(matching))
				}
				if want := matching[:min(5, len(matching))]; !slices.Equal(sample, want) {
					t.Fatalf("preview sample of %s: %v, want the first matching ids %v", rule.Format(n), sample, want)
				}
			}
		})
	}
}
