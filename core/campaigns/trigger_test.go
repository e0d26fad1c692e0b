package campaigns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/events"
)

func (w *world) track(contact contacts.Contact, name, id string, props map[string]any) {
	w.t.Helper()
	raw, _ := json.Marshal(props)
	at := w.now()
	_, err := w.cs.Ingest(context.Background(), "acme", []contacts.Incoming{{Event: events.Event{
		MessageID: id, Type: events.Track, Name: name, UserID: contact.UserID, Properties: raw, Timestamp: at, ReceivedAt: at}}})
	if err != nil {
		w.t.Fatal(err)
	}
}

// subjects returns the subjects an email receiver got, per contact, sorted.
func subjects(r *receiver) map[string][]string {
	out := map[string][]string{}
	for _, m := range r.received() {
		out[m.ContactID] = append(out[m.ContactID], field(m, "subject"))
	}
	for _, list := range out {
		sort.Strings(list)
	}
	return out
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *world) userContact(uid, email string) contacts.Contact {
	w.t.Helper()
	c, _, err := w.cs.Upsert(context.Background(), "acme", contacts.Fields{UserID: &uid, Email: &email,
		Consent: map[string]contacts.ConsentStatus{"email": sub}}, "api")
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func TestEventTriggeredCampaigns(t *testing.T) {
	for _, tt := range []struct {
		reentry string
		want    map[string][]string // contact name -> subjects
	}{
		{"once", map[string][]string{"ana": {"Your cart: 80 EUR (sku A-1)"}, "bob": {"Your cart: 15 EUR (sku B-2)"}}},
		{"always", map[string][]string{"ana": {"Your cart: 80 EUR (sku A-1)", "Your cart: 95 EUR (sku A-3)"}, "bob": {"Your cart: 15 EUR (sku B-2)"}}},
	} {
		t.Run(tt.reentry, func(t *testing.T) {
			w := newWorld(t, campaigns.Options{Tick: 10 * time.Millisecond})
			ctx := context.Background()
			ana, bob := w.userContact("u-ana", "ana@example.com"), w.userContact("u-bob", "bob@example.com")
			in := campaigns.Input{Name: ptr("Abandoned cart"), Audience: &campaigns.Audience{},
				Schedule: &campaigns.Schedule{Kind: campaigns.SendTriggered, Trigger: &campaigns.Trigger{Event: "Cart Abandoned", Delay: "2h", Reentry: tt.reentry}},
				Channels: &[]campaigns.Channel{{Plugin: "email", Content: map[string]string{
					"subject": "Your cart: {{ event.total }} {{ event.properties.currency }} (sku {{ event.sku }})"}}}}
			c := w.create(in)
			v, err := w.camp.Launch(ctx, "acme", c.ID, "test")
			if err != nil || v.Status != campaigns.Running {
				t.Fatalf("launch: %+v, %v", v, err)
			}
			w.track(ana, "Cart Abandoned", "e1", map[string]any{"total": 80, "currency": "EUR", "sku": "A-1"})
			w.track(ana, "Page Viewed", "e2", nil)
			w.track(bob, "Cart Abandoned", "e3", map[string]any{"total": 15, "currency": "EUR", "sku": "B-2"})
			w.track(ana, "Cart Abandoned", "e4", map[string]any{"total": 95, "currency": "EUR", "sku": "A-3"})
			wantMessages := len(tt.want["ana"]) + len(tt.want["bob"])
			eventually(t, "the triggers to be planned", func() bool {
				v, _ := w.camp.Get(ctx, "acme", c.ID)
				return v.Progress.Planned == wantMessages
			})
			if n := len(w.chans["email"].received()); n != 0 {
				t.Fatalf("%d messages sent before their 2 hours", n)
			}
			w.advance(2*time.Hour + time.Second)
			w.camp.Wake()
			eventually(t, "the delayed messages", func() bool { return len(w.chans["email"].received()) == wantMessages })
			got := subjects(w.chans["email"])
			if fmt.Sprint(got[ana.ID]) != fmt.Sprint(tt.want["ana"]) || fmt.Sprint(got[bob.ID]) != fmt.Sprint(tt.want["bob"]) {
				t.Fatalf("got %v, want ana %v and bob %v", got, tt.want["ana"], tt.want["bob"])
			}
			// The same event delivered again plans nothing; a paused campaign takes no trigger.
			w.track(bob, "Cart Abandoned", "e3", map[string]any{"total": 15})
			if _, err := w.camp.Pause(ctx, "acme", c.ID, "test"); err != nil {
				t.Fatal(err)
			}
			w.track(bob, "Cart Abandoned", "e5", map[string]any{"total": 1})
			time.Sleep(50 * time.Millisecond) // give a wrongly taken trigger the time to be planned
			if v, _ := w.camp.Get(ctx, "acme", c.ID); v.Progress.Planned != wantMessages || v.Status != campaigns.Paused {
				t.Fatalf("after a repeat and a paused trigger: %s %+v", v.Status, v.Progress)
			}
		})
	}
}

func TestSegmentEntryTriggersOnceAndChecksTheAudienceAtSendTime(t *testing.T) {
	w := newWorld(t, campaigns.Options{Tick: 10 * time.Millisecond})
	ctx := context.Background()
	pro := w.segment("Pro", `plan = "pro"`)
	fr := w.segment("France", `country = "FR"`)
	in := campaigns.Input{Name: ptr("Welcome to Pro"), Audience: &campaigns.Audience{Include: []string{fr}},
		Schedule: &campaigns.Schedule{Kind: campaigns.SendTriggered, Trigger: &campaigns.Trigger{Segment: pro}},
		Channels: &[]campaigns.Channel{{Plugin: "email", Content: map[string]string{"subject": "Welcome to {{ contact.plan }}"}}}}
	c := w.create(in)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	ana := w.contact("ana@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"plan": "pro", "country": "FR"})
	de := w.contact("de@example.com", "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"plan": "pro", "country": "DE"})
	eventually(t, "the welcome", func() bool {
		v, _ := w.camp.Get(ctx, "acme", c.ID)
		return v.Progress.Sent == 1 && v.Progress.Skipped == 1
	})
	// Leaving and entering again: once ever.
	w.contact("ana@example.com", "", nil, map[string]any{"plan": "free"})
	w.contact("ana@example.com", "", nil, map[string]any{"plan": "pro"})
	time.Sleep(50 * time.Millisecond)
	v, _ := w.camp.Get(ctx, "acme", c.ID)
	if v.Progress.Planned != 2 || len(w.chans["email"].received()) != 1 {
		t.Fatalf("after re-entering: %+v", v.Progress)
	}
	for _, m := range w.chans["email"].received() {
		if m.ContactID != ana.ID || field(m, "subject") != "Welcome to pro" {
			t.Fatalf("message %+v", m)
		}
	}
	skipped, _, _ := w.camp.Messages(ctx, "acme", c.ID, campaigns.Skipped, "", 10)
	if len(skipped) != 1 || skipped[0].Contact != de.ID || skipped[0].Error != "the contact is not in the audience" {
		t.Fatalf("skipped %+v", skipped)
	}
	// Validation of triggers.
	for _, tr := range []*campaigns.Trigger{nil, {}, {Event: "x", Segment: pro}, {Segment: pro, Reentry: "always"}, {Event: "x", Delay: "soon"}, {Event: "x", Reentry: "sometimes"}} {
		bad := in
		bad.Schedule = &campaigns.Schedule{Kind: campaigns.SendTriggered, Trigger: tr}
		if _, err := w.camp.Create(ctx, "acme", bad, "test"); !isInvalid(err, "schedule.trigger") && !isInvalid(err, "schedule.trigger.reentry") && !isInvalid(err, "schedule.trigger.delay") {
			t.Errorf("trigger %+v: %v", tr, err)
		}
	}
}
