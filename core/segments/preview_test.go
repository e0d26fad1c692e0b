package segments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/go-hclog"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*contacts.Service, *segments.Service) {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Output: t.Output(), Level: hclog.Warn})
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := workspaces.NewService(st, log, nil).Create(context.Background(), workspaces.CreateInput{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	stream := contacts.NewStream()
	ss := segments.NewService(st, stream, log, clock)
	t.Cleanup(ss.Close)
	return contacts.NewService(st, nil, stream, log, clock), ss
}

func TestPreviewCountsWithAttributesTagsConsentAndEvents(t *testing.T) {
	cs, ss := setup(t)
	ctx := context.Background()
	// 2,500 contacts: every 4th in France, every 3rd tagged vip, every 5th subscribed to email; every 2nd bought
	// twice in the last month with totals 80 and 150.
	var rows []contacts.Fields
	for i := range 2500 {
		email := fmt.Sprintf("p%d@example.com", i)
		country := []string{"FR", "DE", "ES", "IT"}[i%4]
		f := contacts.Fields{Email: &email, Attributes: map[string]any{"country": country, "age": json.Number(fmt.Sprint(18 + i%50))}}
		if i%3 == 0 {
			f.Tags = []string{"vip"}
		}
		if i%5 == 0 {
			f.Consent = map[string]contacts.ConsentStatus{"email": contacts.Subscribed}
		}
		rows = append(rows, f)
	}
	out, err := cs.UpsertMany(ctx, "acme", rows, "import")
	if err != nil {
		t.Fatal(err)
	}
	// Every 2nd contact is linked to a browser (identify with its email), which then bought twice in the last month,
	// for totals of 80 and 150.
	var links, orders []contacts.Incoming
	for i, o := range out {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if i%2 != 0 {
			continue
		}
		anon := "anon-" + o.Contact.ID
		links = append(links, contacts.Incoming{Event: events.Event{MessageID: "link-" + o.Contact.ID, Type: events.Identify,
			AnonymousID: anon, Timestamp: now.Add(-72 * time.Hour), ReceivedAt: now}, Traits: map[string]any{"email": *rows[i].Email}})
		for j, total := range []int{80, 150} {
			at := now.Add(-time.Duration(j+1) * 24 * time.Hour)
			orders = append(orders, contacts.Incoming{Event: events.Event{MessageID: fmt.Sprintf("o-%d-%d", i, j), Type: events.Track,
				Name: "Order Completed", AnonymousID: anon, Properties: json.RawMessage(fmt.Sprintf(`{"total":%d}`, total)),
				Timestamp: at, ReceivedAt: at}})
		}
	}
	for _, batch := range [][]contacts.Incoming{links, orders} {
		if _, err := cs.Ingest(ctx, "acme", batch); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		rule string
		want int
	}{
		{`country = "FR"`, 625},
		{`country = "FR" and has_tag("vip")`, 209},                // i%4==0 and i%3==0: i%12==0
		{`country in ["FR", "DE"] and age >= 60`, 0 + countAge()}, // ages 60..67 among FR/DE
		{`subscribed("email") and not has_tag("vip")`, 333},       // i%5==0 and i%3!=0
		{`performed("Order Completed", within: 30d, count >= 2)`, 1250},
		{`performed("Order Completed", where: total > 100)`, 1250},
		{`performed("Order Completed", within: 30d, count >= 2, where: total > 100)`, 0},
		{`country = "FR" and performed("Order Completed", within: 1d)`, 625},
		{`email exists and created_at within 1d`, 2500},
		{`bucket(10%)`, -1}, // checked below: about a tenth
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			raw, _ := json.Marshal(tt.rule)
			n, err := segments.ParseRule(raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ss.Preview(ctx, "acme", n, 5)
			if err != nil {
				t.Fatal(err)
			}
			if p.Scanned != 2500 {
				t.Errorf("scanned %d", p.Scanned)
			}
			if tt.want >= 0 && p.Count != tt.want {
				t.Errorf("count %d, want %d", p.Count, tt.want)
			}
			if tt.want < 0 && (p.Count < 180 || p.Count > 320) {
				t.Errorf("bucket(10%%) holds %d of 2500", p.Count)
			}
			if len(p.Sample) != min(5, p.Count) {
				t.Errorf("sample of %d", len(p.Sample))
			}
		})
	}
}

// countAge counts i in [0,2500) with i%4 in {0,1} and 18+i%50 >= 60.
func countAge() int {
	n := 0
	for i := range 2500 {
		if i%4 <= 1 && 18+i%50 >= 60 {
			n++
		}
	}
	return n
}

func TestParseRuleRefusesWithPositions(t *testing.T) {
	cases := []struct{ raw, want string }{
		{`"country = "`, `1:11: expected a value after '='`},
		{`"perfomed(\"x\")"`, `did you mean 'performed'`},
		{`"performed(\"x\", within: 0d)"`, `within`},
		{`{"field":"country","op":"=","valeu":"FR"}`, `valeu`},
		{`null`, `is required`},
	}
	for _, tc := range cases {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := segments.ParseRule(json.RawMessage(tc.raw), nil)
			var v *errs.ValidationError
			if !errors.As(err, &v) || v.Fields[0].Field != "rule" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one on rule containing %q", err, tc.want)
			}
		})
	}
}

func rawRule(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
func name(s string) *string            { return &s }

func TestSavedSegments(t *testing.T) {
	cs, ss := setup(t)
	ctx := context.Background()
	for i := range 30 {
		email := fmt.Sprintf("s%d@example.com", i)
		f := contacts.Fields{Email: &email, Attributes: map[string]any{"country": []string{"FR", "DE", "ES"}[i%3]}}
		if i%2 == 0 {
			f.Tags = []string{"vip"}
		}
		if _, _, err := cs.Upsert(ctx, "acme", f, "api"); err != nil {
			t.Fatal(err)
		}
	}
	fr, err := ss.Create(ctx, "acme", segments.Input{Name: name("France"), Rule: rawRule(`country = "FR"`)})
	if err != nil || fr.Count != 10 {
		t.Fatalf("create: %+v %v", fr, err)
	}
	vipFR, err := ss.Create(ctx, "acme", segments.Input{Name: name("VIP France"), Rule: rawRule(`in_segment("france") and has_tag("vip")`)})
	if err != nil || vipFR.Count != 5 || vipFR.Rule != `in_segment("france") and has_tag("vip")` {
		t.Fatalf("create with a reference: %+v %v", vipFR, err)
	}
	for _, tc := range []struct {
		in   segments.Input
		want string
		kind error
	}{
		{segments.Input{Name: name("france"), Rule: rawRule(`has_tag("x")`)}, "already exists", errs.ErrConflict},
		{segments.Input{Name: name("Ghost"), Rule: rawRule(`in_segment("nope")`)}, `unknown segment "nope"`, nil},
		{segments.Input{Rule: rawRule(`has_tag("x")`)}, "name", nil},
		{segments.Input{Name: name("Bad"), Rule: rawRule(`country =`)}, "1:10", nil},
	} {
		_, err := ss.Create(ctx, "acme", tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Errorf("create %+v: %v, want %q", tc.in, err, tc.want)
		}
	}
	// A cycle: France may not refer to VIP France, which refers to France.
	if _, err := ss.Update(ctx, "acme", fr.ID, segments.Input{Rule: rawRule(`in_segment("VIP France")`)}); err == nil ||
		!strings.Contains(err.Error(), "depend on themselves") {
		t.Errorf("cycle: %v", err)
	}
	if _, err := ss.Update(ctx, "acme", fr.ID, segments.Input{Rule: rawRule(`in_segment("France")`)}); err == nil {
		t.Error("self reference accepted")
	}
	// Deleting a segment another uses is refused, naming it.
	if err := ss.Delete(ctx, "acme", fr.ID); !errors.Is(err, errs.ErrConflict) || !strings.Contains(err.Error(), "VIP France") {
		t.Errorf("delete a used segment: %v", err)
	}
	// Editing a rule recomputes the count.
	up, err := ss.Update(ctx, "acme", fr.ID, segments.Input{Rule: rawRule(`country in ["FR", "DE"]`)})
	if err != nil || up.Count != 20 {
		t.Fatalf("update: %+v %v", up, err)
	}
	list, err := ss.List(ctx, "acme")
	counts := map[string]int{}
	for _, s := range list {
		counts[s.Name] = s.Count
	}
	if err != nil || len(list) != 2 || counts["France"] != 20 || counts["VIP France"] != 10 {
		t.Fatalf("list: %+v %v", list, err)
	}
	var members []string
	cursor := ""
	for {
		page, next, err := ss.Members(ctx, "acme", vipFR.ID, cursor, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			members = append(members, c.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(members) != 10 {
		t.Errorf("%d members across pages", len(members))
	}
	of, err := ss.OfContact(ctx, "acme", members[0])
	if err != nil || len(of) != 2 {
		t.Errorf("segments of a member: %+v %v", of, err)
	}
	if err := ss.Delete(ctx, "acme", vipFR.ID); err != nil {
		t.Fatal(err)
	}
	if err := ss.Delete(ctx, "acme", fr.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Get(ctx, "acme", fr.ID); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("get after delete: %v", err)
	}
}
