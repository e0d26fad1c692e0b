package contacts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

type fixture struct {
	svc     *contacts.Service
	st      *store.Store
	changes []contacts.Change
	now     time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Warn})
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Fsync: false, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ws := workspaces.NewService(st, log, nil)
	if _, err := ws.Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	stream := contacts.NewStream()
	stream.Subscribe(func(_ context.Context, c contacts.Change) { f.changes = append(f.changes, c) })
	f.svc = contacts.NewService(st, nil, stream, log, func() time.Time { return f.now })
	return f
}

func ptr(s string) *string { return &s }

var ctx = context.Background()

func track(anon, user, name string, at time.Time) contacts.Incoming {
	return contacts.Incoming{Event: events.Event{
		MessageID: fmt.Sprintf("m-%s-%s-%s-%d", anon, user, name, at.UnixNano()), Type: events.Track, Name: name,
		AnonymousID: anon, UserID: user, Timestamp: at, ReceivedAt: at,
	}}
}

func identify(anon, user string, traits map[string]any, at time.Time) contacts.Incoming {
	in := track(anon, user, "identify", at)
	in.Event.Type = events.Identify
	in.Event.Name = ""
	in.Traits = traits
	return in
}

func (f *fixture) ingest(t testing.TB, in ...contacts.Incoming) contacts.IngestResult {
	t.Helper()
	res, err := f.svc.Ingest(ctx, "acme", in)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) events(t testing.TB, id string) []events.Event {
	t.Helper()
	evs, _, err := f.svc.Events(ctx, "acme", id, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func (f *fixture) byUser(t testing.TB, user string) contacts.Contact {
	t.Helper()
	items, _, err := f.svc.List(ctx, "acme", contacts.Filter{UserID: user})
	if err != nil || len(items) != 1 {
		t.Fatalf("contact with user id %q: %v %v", user, items, err)
	}
	return items[0]
}

func TestUpsertNormalisesAndFindsByEachIdentifier(t *testing.T) {
	f := newFixture(t)
	c, created, err := f.svc.Upsert(ctx, "acme", contacts.Fields{
		Email: ptr("  Ana@Example.COM "), Phone: ptr("+33 6 12-34.56 78"),
		Attributes: map[string]any{"plan": "pro", "seats": json.Number("12"), "vip": true,
			"signed_up_at": "2026-01-02T03:04:05Z", "langs": []any{"fr", "en"}, "address": map[string]any{"city": "Lyon"}},
		Tags: []string{"lead", "newsletter"}, Timezone: ptr("Europe/Paris"), Locale: ptr("fr_FR"),
		Consent: map[string]contacts.ConsentStatus{"email": contacts.Subscribed},
	}, "api")
	if err != nil || !created {
		t.Fatalf("upsert: created=%v err=%v", created, err)
	}
	if c.Email != "ana@example.com" || c.Phone != "+33612345678" || c.Locale != "fr-FR" {
		t.Errorf("not normalised: %+v", c)
	}
	want := map[string]contacts.Kind{"plan": contacts.String, "seats": contacts.Number, "vip": contacts.Bool,
		"signed_up_at": contacts.Time, "langs": contacts.List, "address.city": contacts.String}
	for k, kind := range want {
		if c.Attributes[k].Kind != kind {
			t.Errorf("attribute %s kind %v, want %v", k, c.Attributes[k].Kind, kind)
		}
	}
	if c.ConsentOn("email") != contacts.Subscribed || c.Consent["email"].Source != "api" || !c.Consent["email"].At.Equal(f.now) {
		t.Errorf("consent %+v", c.Consent)
	}
	// The same person by phone written differently: updated, not duplicated.
	c2, created, err := f.svc.Upsert(ctx, "acme", contacts.Fields{Phone: ptr("0033612345678"),
		Attributes: map[string]any{"plan": "enterprise", "vip": nil}}, "api")
	if err != nil || created || c2.ID != c.ID {
		t.Fatalf("second upsert: %v created=%v id %s vs %s", err, created, c2.ID, c.ID)
	}
	if c2.Attributes["plan"].Str != "enterprise" {
		t.Errorf("plan not updated: %+v", c2.Attributes["plan"])
	}
	if _, ok := c2.Attributes["vip"]; ok {
		t.Error("null did not remove the attribute")
	}
	got, err := f.svc.Get(ctx, "acme", c.ID)
	if err != nil || got.Attributes["seats"].Num != 12 || got.Attributes["signed_up_at"].Time.Year() != 2026 {
		t.Fatalf("reloaded: %+v %v", got, err)
	}
	for _, filter := range []contacts.Filter{{Email: "ANA@example.com"}, {Phone: "+33612345678"}, {Tag: "lead"}, {Q: "LYON"}} {
		items, _, err := f.svc.List(ctx, "acme", filter)
		if err != nil || len(items) != 1 || items[0].ID != c.ID {
			t.Errorf("list %+v: %v %v", filter, items, err)
		}
	}
	if n, _ := f.svc.Count(ctx, "acme"); n != 1 {
		t.Errorf("count %d", n)
	}
}

func TestInvalidInputIsRefusedWithFieldsAndWritesNothing(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		fields contacts.Fields
		field  string
	}{
		{"bad email", contacts.Fields{Email: ptr("not-an-email")}, "email"},
		{"display name", contacts.Fields{Email: ptr("Ana <ana@example.com>")}, "email"},
		{"national phone", contacts.Fields{Phone: ptr("06 12 34 56 78")}, "phone"},
		{"letters in phone", contacts.Fields{Phone: ptr("+33 6 CALL ME")}, "phone"},
		{"unknown channel", contacts.Fields{Email: ptr("a@b.co"), Consent: map[string]contacts.ConsentStatus{"fax": contacts.Subscribed}}, "consent.fax"},
		{"bad status", contacts.Fields{Email: ptr("a@b.co"), Consent: map[string]contacts.ConsentStatus{"email": "maybe"}}, "consent.email"},
		{"bad timezone", contacts.Fields{Email: ptr("a@b.co"), Timezone: ptr("Mars/Olympus")}, "timezone"},
		{"bad tag", contacts.Fields{Email: ptr("a@b.co"), Tags: []string{"  "}}, "tags.0"},
		{"object in list", contacts.Fields{Email: ptr("a@b.co"), Attributes: map[string]any{"x": []any{map[string]any{}}}}, "attributes.x"},
		{"no identifier", contacts.Fields{Attributes: map[string]any{"x": "y"}}, ""},
		{"invalid utf-8", contacts.Fields{Email: ptr("a@b.co"), Attributes: map[string]any{"x": "\xff\xfe"}}, "attributes.x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.svc.Upsert(ctx, "acme", tc.fields, "api")
			var v *errs.ValidationError
			if !errors.As(err, &v) {
				t.Fatalf("want a validation error, got %v", err)
			}
			if v.Fields[0].Field != tc.field {
				t.Errorf("field %q, want %q (%v)", v.Fields[0].Field, tc.field, err)
			}
		})
	}
	if n, _ := f.svc.Count(ctx, "acme"); n != 0 {
		t.Errorf("%d contacts written by refused input", n)
	}
}

func TestIdentifyAttachesAnonymousHistory(t *testing.T) {
	f := newFixture(t)
	t0 := f.now
	res := f.ingest(t, track("anon-1", "", "Viewed Product", t0), track("anon-1", "", "Added To Cart", t0.Add(time.Minute)))
	if res.Stored != 2 {
		t.Fatalf("stored %d", res.Stored)
	}
	f.ingest(t, identify("anon-1", "u-42", map[string]any{"email": "Bob@Example.com", "name": "Bob", "plan": "pro"}, t0.Add(2*time.Minute)))
	c := f.byUser(t, "u-42")
	if c.Email != "bob@example.com" || c.Attributes["name"].Str != "Bob" || len(c.AnonymousIDs) != 1 {
		t.Errorf("identified contact %+v", c)
	}
	if evs := f.events(t, c.ID); len(evs) != 3 || evs[0].Type != events.Identify || evs[2].Name != "Viewed Product" {
		t.Errorf("events newest first: %+v", evs)
	}
	// A second device seen anonymously, then identified: its history merges into the known contact.
	f.ingest(t, track("anon-2", "", "Viewed Product", t0.Add(3*time.Minute)))
	items, _, _ := f.svc.List(ctx, "acme", contacts.Filter{})
	if len(items) != 2 {
		t.Fatalf("want an anonymous contact beside the known one, got %d", len(items))
	}
	anonID := ""
	for _, it := range items {
		if it.ID != c.ID {
			anonID = it.ID
		}
	}
	f.ingest(t, identify("anon-2", "u-42", nil, t0.Add(4*time.Minute)))
	items, _, _ = f.svc.List(ctx, "acme", contacts.Filter{})
	if len(items) != 1 || items[0].ID != c.ID {
		t.Fatalf("after identify on the second device: %+v", items)
	}
	if evs := f.events(t, c.ID); len(evs) != 5 {
		t.Errorf("events lost in the merge: %d", len(evs))
	}
	// The merged-away id still resolves to the survivor.
	got, err := f.svc.Get(ctx, "acme", anonID)
	if err != nil || got.ID != c.ID {
		t.Errorf("merged id resolves to %v %v", got.ID, err)
	}
	doc, err := f.svc.GDPRExport(ctx, "acme", c.ID)
	if err != nil || len(doc.Merges) != 1 || doc.Merges[0].From != anonID || doc.Merges[0].Events != 1 || len(doc.Events) != 5 {
		t.Errorf("gdpr export: %+v %v", doc.Merges, err)
	}
	last := f.changes[len(f.changes)-1]
	if len(last.Merged) != 1 || len(last.Events) != 1 || last.Events[0].ContactID != c.ID {
		t.Errorf("change stream: %+v", last)
	}
}

func TestDuplicateMessageIDsAreStoredOnce(t *testing.T) {
	f := newFixture(t)
	ev := track("a", "", "Clicked", f.now)
	res := f.ingest(t, ev, ev)
	if res.Stored != 1 || res.Duplicates != 1 {
		t.Errorf("same batch: %+v", res)
	}
	res = f.ingest(t, ev)
	if res.Stored != 0 || res.Duplicates != 1 {
		t.Errorf("retry: %+v", res)
	}
}

func TestAliasMergesTwoIdentities(t *testing.T) {
	f := newFixture(t)
	f.ingest(t, track("", "old-id", "Signed Up", f.now), track("", "new-id", "Logged In", f.now.Add(time.Second)))
	alias := track("", "new-id", "", f.now.Add(2*time.Second))
	alias.Event.Type, alias.Event.PreviousID = events.Alias, "old-id"
	f.ingest(t, alias)
	c := f.byUser(t, "new-id")
	if n, _ := f.svc.Count(ctx, "acme"); n != 1 {
		t.Fatalf("%d contacts after alias", n)
	}
	if evs := f.events(t, c.ID); len(evs) != 3 {
		t.Errorf("%d events after alias", len(evs))
	}
	// The old user id keeps resolving.
	f.ingest(t, track("", "old-id", "Came Back", f.now.Add(3*time.Second)))
	if n, _ := f.svc.Count(ctx, "acme"); n != 1 {
		t.Errorf("old id made a new contact")
	}
}

func TestClashingIdentifiersAreNeverMerged(t *testing.T) {
	f := newFixture(t)
	a, _, _ := f.svc.Upsert(ctx, "acme", contacts.Fields{UserID: ptr("u1"), Email: ptr("a@example.com")}, "api")
	b, _, _ := f.svc.Upsert(ctx, "acme", contacts.Fields{UserID: ptr("u2"), Email: ptr("b@example.com")}, "api")
	_, _, err := f.svc.Upsert(ctx, "acme", contacts.Fields{UserID: ptr("u1"), Email: ptr("b@example.com")}, "api")
	if !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), b.ID) {
		t.Fatalf("strict upsert: %v", err)
	}
	if _, err := f.svc.Update(ctx, "acme", a.ID, contacts.Fields{Email: ptr("b@example.com")}, "api"); !errors.Is(err, errs.ErrConflict) {
		t.Errorf("taking another contact's email: %v", err)
	}
	// Tracking is lenient: the event is kept on u1, the email stays with u2.
	res := f.ingest(t, identify("", "u1", map[string]any{"email": "b@example.com"}, f.now))
	if res.Stored != 1 || len(res.Warnings) == 0 {
		t.Errorf("lenient identify: %+v", res)
	}
	if got := f.byUser(t, "u1"); got.Email != "a@example.com" {
		t.Errorf("u1 email %q", got.Email)
	}
	if got := f.byUser(t, "u2"); got.Email != "b@example.com" {
		t.Errorf("u2 email %q", got.Email)
	}
}

func TestEraseRemovesEverythingAndSuppresses(t *testing.T) {
	f := newFixture(t)
	f.ingest(t, track("anon-x", "", "Viewed", f.now), identify("anon-x", "", map[string]any{"email": "gone@example.com", "phone": "+4915112345678"}, f.now))
	items, _, _ := f.svc.List(ctx, "acme", contacts.Filter{Email: "gone@example.com"})
	if len(items) != 1 {
		t.Fatalf("contact: %+v", items)
	}
	id := items[0].ID
	if err := f.svc.Delete(ctx, "acme", id, true, "token:ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Get(ctx, "acme", id); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("get after erase: %v", err)
	}
	if _, _, err := f.svc.Events(ctx, "acme", id, "", 10); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("events after erase: %v", err)
	}
	for _, fl := range []contacts.Fields{{Email: ptr("GONE@example.com")}, {Phone: ptr("+49 151 12345678")}} {
		if _, _, err := f.svc.Upsert(ctx, "acme", fl, "import"); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "suppressed") {
			t.Errorf("re-import of an erased identifier: %v", err)
		}
	}
	if s, _ := f.svc.IsSuppressed(ctx, "acme", "email", "gone@example.com"); !s {
		t.Error("email not suppressed")
	}
	// The same anonymous id arriving again starts a fresh contact, and the suppressed email is not attached.
	f.ingest(t, identify("anon-x", "", map[string]any{"email": "gone@example.com"}, f.now))
	items, _, _ = f.svc.List(ctx, "acme", contacts.Filter{})
	if len(items) != 1 || items[0].Email != "" {
		t.Errorf("after erase: %+v", items)
	}
	var dump strings.Builder
	_ = f.svc.Export(ctx, "acme", func(c contacts.Contact) error { fmt.Fprintf(&dump, "%+v", c); return nil })
	if strings.Contains(dump.String(), "gone@") {
		t.Error("erased email still stored")
	}
}

func TestTagsConsentAndPaging(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i := range 7 {
		c, _, err := f.svc.Upsert(ctx, "acme", contacts.Fields{Email: ptr(fmt.Sprintf("p%d@example.com", i))}, "api")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
		f.now = f.now.Add(time.Millisecond)
	}
	for _, id := range ids[:5] {
		if _, err := f.svc.Tag(ctx, "acme", id, []string{"vip"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.svc.Tag(ctx, "acme", ids[0], nil, []string{"vip"}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	cursor := ""
	for {
		page, next, err := f.svc.List(ctx, "acme", contacts.Filter{Tag: "vip", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			seen = append(seen, c.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(seen, ",") != strings.Join(ids[1:5], ",") {
		t.Errorf("tag pages %v, want %v", seen, ids[1:5])
	}
	c, err := f.svc.SetConsent(ctx, "acme", ids[0], "sms", contacts.Unsubscribed, "")
	if err != nil || c.ConsentOn("sms") != contacts.Unsubscribed {
		t.Fatalf("consent: %v %+v", err, c.Consent)
	}
	if _, err := f.svc.SetConsent(ctx, "acme", ids[0], "pigeon", contacts.Subscribed, ""); err == nil {
		t.Error("unknown channel accepted")
	}
}

func TestUpsertManyKeepsGoodRowsAndReportsBadOnes(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.svc.Upsert(ctx, "acme", contacts.Fields{UserID: ptr("taken"), Email: ptr("taken@example.com")}, "api"); err != nil {
		t.Fatal(err)
	}
	rows := []contacts.Fields{
		{Email: ptr("ok1@example.com"), Attributes: map[string]any{"n": json.Number("1")}},
		{Email: ptr("broken")},
		{UserID: ptr("other"), Email: ptr("taken@example.com"), Attributes: map[string]any{"half": "written?"}},
		{Email: ptr("ok2@example.com")},
		{Email: ptr("OK1@example.com"), Tags: []string{"again"}},
	}
	out, err := f.svc.UpsertMany(ctx, "acme", rows, "import")
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Err != nil || out[3].Err != nil || out[4].Err != nil {
		t.Fatalf("good rows failed: %v %v %v", out[0].Err, out[3].Err, out[4].Err)
	}
	var v *errs.ValidationError
	if !errors.As(out[1].Err, &v) || !errors.Is(out[2].Err, errs.ErrConflict) {
		t.Errorf("bad rows: %v / %v", out[1].Err, out[2].Err)
	}
	if out[4].Contact.ID != out[0].Contact.ID || !out[4].Contact.HasTag("again") {
		t.Errorf("rows of one batch did not see each other: %+v", out[4].Contact)
	}
	if n, _ := f.svc.Count(ctx, "acme"); n != 3 {
		t.Errorf("%d contacts, want 3", n)
	}
	if got := f.byUser(t, "taken"); got.Attributes["half"].Kind != 0 {
		t.Error("the conflicting row was half written")
	}
	if items, _, _ := f.svc.List(ctx, "acme", contacts.Filter{UserID: "other"}); len(items) != 0 {
		t.Error("the conflicting row created a contact")
	}
}

func TestMaskHidesPII(t *testing.T) {
	c := contacts.Contact{Email: "ana@example.com", Phone: "+33612345678", UserID: "u1",
		Attributes: map[string]contacts.Value{"salary": contacts.NumberValue(1), "address.city": contacts.StringValue("Lyon"), "plan": contacts.StringValue("pro")}}
	m := contacts.Mask(c, []string{"email", "phone", "user_id", "salary", "address"})
	if m.Email != "a***@example.com" || m.Phone != "***78" || m.UserID != "***" ||
		m.Attributes["salary"].Str != "***" || m.Attributes["address.city"].Str != "***" || m.Attributes["plan"].Str != "pro" {
		t.Errorf("masked: %+v", m)
	}
	if c.Email != "ana@example.com" || c.Attributes["salary"].Num != 1 {
		t.Error("Mask changed its input")
	}
}

// TestRandomTrafficKeepsIdentityInvariants sends random identify, track and alias calls and checks, after each
// batch, what identity resolution promises: no event is lost or duplicated, every identifier resolves to exactly
// the contact holding it, no two contacts share one, and every event belongs to an existing contact.
func TestRandomTrafficKeepsIdentityInvariants(t *testing.T) {
	f := newFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(prefix string, n int) string { return fmt.Sprintf("%s%d", prefix, rng.IntN(n)) }
	sent := 0
	for batch := range 60 {
		var in []contacts.Incoming
		for i := range 1 + rng.IntN(20) {
			at := f.now.Add(time.Duration(batch*100+i) * time.Second)
			switch rng.IntN(4) {
			case 0:
				in = append(in, identify(pick("anon", 30), pick("user", 10), map[string]any{"email": pick("e", 15) + "@example.com", "score": json.Number(fmt.Sprint(rng.IntN(100)))}, at))
			case 1:
				a := track("", pick("user", 10), "", at)
				a.Event.Type, a.Event.PreviousID, a.Event.MessageID = events.Alias, pick("anon", 30), fmt.Sprintf("alias-%d-%d", batch, i)
				in = append(in, a)
			default:
				ev := track(pick("anon", 30), "", "Viewed", at)
				ev.Event.MessageID = fmt.Sprintf("t-%d-%d", batch, i)
				in = append(in, ev)
			}
		}
		res := f.ingest(t, in...)
		sent += res.Stored
		checkInvariants(t, f, sent)
		if t.Failed() {
			t.Fatalf("invariants broken after batch %d", batch)
		}
	}
}

func checkInvariants(t *testing.T, f *fixture, wantEvents int) {
	t.Helper()
	total := 0
	owners := map[string]string{}
	err := f.st.ViewContacts(ctx, "acme", func(tx contacts.Tx) error {
		return tx.Scan("", func(c contacts.Contact) bool {
			ids := map[contacts.IdentifierKind][]string{contacts.ByEmail: {c.Email}, contacts.ByPhone: {c.Phone}, contacts.ByUserID: {c.UserID}, contacts.ByAnonymousID: c.AnonymousIDs}
			for kind, vals := range ids {
				for _, v := range vals {
					if v == "" {
						continue
					}
					key := kind.String() + ":" + v
					if other, ok := owners[key]; ok {
						t.Errorf("%s held by %s and %s", key, other, c.ID)
					}
					owners[key] = c.ID
					if got, ok := tx.Lookup(kind, v); !ok || got != c.ID {
						t.Errorf("%s resolves to %q, held by %s", key, got, c.ID)
					}
				}
			}
			_ = tx.Events(c.ID, "", func(e events.Event, _ string) bool {
				total++
				if e.ContactID != c.ID {
					t.Errorf("event %s of %s says contact %s", e.MessageID, c.ID, e.ContactID)
				}
				return true
			})
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != wantEvents {
		t.Errorf("%d events reachable through contacts, %d stored", total, wantEvents)
	}
	_ = f.st.ViewContacts(ctx, "acme", func(tx contacts.Tx) error {
		if tx.EventCount() != wantEvents {
			t.Errorf("event counter %d, want %d", tx.EventCount(), wantEvents)
		}
		return nil
	})
}

// Review finding: two identifiers of one call pointing to the same contact, which the first one merges away, must
// not fail the call (it made Ingest return a conflict and lose the batch).
func TestTwoIdentifiersOfOneMergedContact(t *testing.T) {
	f := newFixture(t)
	f.ingest(t, track("", "U1", "Signed Up", f.now))
	f.ingest(t, identify("X1", "", map[string]any{"email": "b@example.com"}, f.now.Add(time.Second)))
	res := f.ingest(t, identify("X1", "U1", map[string]any{"email": "b@example.com"}, f.now.Add(2*time.Second)))
	if res.Stored != 1 {
		t.Fatalf("%+v", res)
	}
	c := f.byUser(t, "U1")
	if c.Email != "b@example.com" || len(f.events(t, c.ID)) != 3 {
		t.Fatalf("merged contact %+v with %d events", c, len(f.events(t, c.ID)))
	}
	// The same through an upsert with user id, email and phone.
	if _, _, err := f.svc.Upsert(ctx, "acme", contacts.Fields{Email: ptr("p@example.com"), Phone: ptr("+33611111111")}, "api"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Upsert(ctx, "acme", contacts.Fields{UserID: ptr("U2")}, "api"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Upsert(ctx, "acme", contacts.Fields{UserID: ptr("U2"), Email: ptr("p@example.com"), Phone: ptr("+33611111111")}, "api"); err != nil {
		t.Fatalf("upsert naming one contact twice: %v", err)
	}
}

// Review finding: an alias refused for a clash must change neither contact, so the old user id keeps resolving.
func TestRefusedAliasChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.ingest(t, identify("", "OLD", map[string]any{"email": "old@example.com"}, f.now),
		identify("", "NEW", map[string]any{"email": "new@example.com"}, f.now))
	alias := track("", "NEW", "", f.now.Add(time.Second))
	alias.Event.Type, alias.Event.PreviousID = events.Alias, "OLD"
	res := f.ingest(t, alias, identify("", "OLD", nil, f.now.Add(2*time.Second)))
	if len(res.Warnings) == 0 {
		t.Error("the clash was not reported")
	}
	old, fresh := f.byUser(t, "OLD"), f.byUser(t, "NEW")
	if old.Email != "old@example.com" || len(fresh.AnonymousIDs) != 0 || len(f.events(t, old.ID)) != 2 {
		t.Errorf("after a refused alias: old %+v, new %+v", old, fresh)
	}
}

// Every committed change carries the next number of the workspace's sequence, so subscribers can order them.
func TestChangesAreNumberedInCommitOrder(t *testing.T) {
	f := newFixture(t)
	c, _, err := f.svc.Upsert(ctx, "acme", contacts.Fields{Email: ptr("seq@example.com")}, "api")
	if err != nil {
		t.Fatal(err)
	}
	f.ingest(t, track("anon-s", "", "x", f.now), identify("anon-s", "", map[string]any{"email": "seq@example.com"}, f.now))
	if _, err := f.svc.Tag(ctx, "acme", c.ID, []string{"t"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UpsertMany(ctx, "acme", []contacts.Fields{{Email: ptr("m1@example.com")}, {Email: ptr("m2@example.com")}}, "import"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, "acme", c.ID, false, "test"); err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i, ch := range f.changes {
		if ch.Seq <= last {
			t.Fatalf("change %d has seq %d after %d", i, ch.Seq, last)
		}
		last = ch.Seq
	}
	if len(f.changes) != 5 {
		t.Errorf("%d changes published, want 5", len(f.changes))
	}
}

// Deduplication is per contact, and survives merges: a retry of an event stored on a contact that was merged away
// since is recognised on the survivor (its markers moved with its events). After an erasure, it is new again.
func TestDuplicatesAfterMergeAndErasure(t *testing.T) {
	f := newFixture(t)
	f.ingest(t, identify("", "U", map[string]any{"email": "u@example.com"}, f.now))
	ev := track("anon-m", "", "Viewed", f.now.Add(time.Second))
	f.ingest(t, ev)
	f.ingest(t, identify("anon-m", "U", nil, f.now.Add(2*time.Second))) // merges anon-m's contact into U's
	if res := f.ingest(t, ev); res.Stored != 0 || res.Duplicates != 1 {
		t.Fatalf("retry after the merge: %+v", res)
	}
	c := f.byUser(t, "U")
	if n := len(f.events(t, c.ID)); n != 3 {
		t.Fatalf("%d events", n)
	}
	if err := f.svc.Delete(ctx, "acme", c.ID, true, "test"); err != nil {
		t.Fatal(err)
	}
	if res := f.ingest(t, ev); res.Stored != 1 {
		t.Fatalf("after erasure: %+v", res)
	}
	checkInvariants(t, f, 1)
}
