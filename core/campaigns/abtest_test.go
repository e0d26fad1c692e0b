package campaigns_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
)

func TestABTestSendsTheWinnerToTheRest(t *testing.T) {
	w := newWorld(t, campaigns.Options{Tick: 10 * time.Millisecond})
	ctx := context.Background()
	for i := range 200 {
		w.contact(fmt.Sprintf("ab%03d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	in := emailCampaign("Subject test", seg)
	in.Variants = &[]campaigns.Variant{
		{Name: "A", Weight: 50, Content: map[string]map[string]string{"email": {"subject": "Subject A"}}},
		{Name: "B", Weight: 50, Content: map[string]map[string]string{"email": {"subject": "Subject B"}}},
	}
	in.Test = &campaigns.Test{Percent: 20, Window: "1h", Metric: "open"}
	c := w.create(in)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	// The test group (about 20%) gets A or B; the rest waits for the winner.
	var tested int
	eventually(t, "the test group to be sent", func() bool {
		v, _ := w.camp.Get(ctx, "acme", c.ID)
		tested = v.Progress.Sent
		return v.Progress.Planned == 200 && !v.Progress.Planning && tested > 0 && v.Progress.Queued == 200-tested
	})
	if tested < 20 || tested > 60 {
		t.Fatalf("%d in the test group of 200 at 20%%", tested)
	}
	// B's readers open it; A's do not.
	bySubject := map[string]int{}
	for _, m := range w.chans["email"].received() {
		subject := field(m, "subject")
		bySubject[subject]++
		if subject == "Subject B" {
			if _, err := w.st.RecordEngagement(ctx, "acme", m.ID, campaigns.Open); err != nil {
				t.Fatal(err)
			}
		}
	}
	if bySubject["Subject A"] == 0 || bySubject["Subject B"] == 0 || bySubject["Subject A"]+bySubject["Subject B"] != tested {
		t.Fatalf("test group subjects %v", bySubject)
	}
	testedA := bySubject["Subject A"]
	time.Sleep(50 * time.Millisecond)
	if v, _ := w.camp.Get(ctx, "acme", c.ID); v.Winner != "" || v.Progress.Sent != tested {
		t.Fatalf("before the window ends: winner %q, %d sent", v.Winner, v.Progress.Sent)
	}
	w.advance(time.Hour + time.Second)
	w.camp.Wake()
	v := w.wait(c.ID, "the rest to get the winner", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	if v.Winner != "B" || v.Progress.Sent != 200 {
		t.Fatalf("winner %q, progress %+v", v.Winner, v.Progress)
	}
	bySubject = map[string]int{}
	for _, m := range w.chans["email"].received() {
		bySubject[field(m, "subject")]++
	}
	if bySubject["Subject A"] != testedA || bySubject["Subject B"] != 200-testedA {
		t.Fatalf("subjects after the winner: %v (%d tested, %d with A)", bySubject, tested, testedA)
	}
	st, err := w.camp.Stats(ctx, "acme", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Winner != "B" || len(st.Variants) != 2 || st.Variants[0].Counts.Sent+st.Variants[1].Counts.Sent != 200 ||
		st.Variants[1].Counts.OpenedUnique == 0 || st.Variants[0].Counts.OpenedUnique != 0 || st.Channels["email"].Sent != 200 {
		t.Fatalf("stats %+v", st)
	}
	if st.Variants[0].Counts.Sent != bySubject["Subject A"] || st.Variants[1].Counts.Sent != bySubject["Subject B"] {
		t.Fatalf("variant counts %d/%d, subjects %v", st.Variants[0].Counts.Sent, st.Variants[1].Counts.Sent, bySubject)
	}
	// B's opens are all in the test group: about half of it, against none for A, is significant.
	if !st.Significant || st.Z <= 0 || math.IsNaN(st.Z) {
		t.Fatalf("significance: %v z=%.2f", st.Significant, st.Z)
	}
	audit, _ := w.camp.Audit(ctx, "acme", c.ID)
	found := false
	for _, e := range audit {
		found = found || e.Action == "winner chosen" && strings.HasPrefix(e.Detail, "B (open rate")
	}
	if !found {
		t.Fatalf("no winner in the audit trail: %+v", audit)
	}
}

func TestVariantsWithoutATestSplitTheAudience(t *testing.T) {
	w := newWorld(t, campaigns.Options{})
	ctx := context.Background()
	for i := range 100 {
		w.contact(fmt.Sprintf("sp%03d@example.com", i), "", map[string]contacts.ConsentStatus{"email": sub}, map[string]any{"country": "FR"})
	}
	seg := w.segment("France", `country = "FR"`)
	in := emailCampaign("Split", seg)
	in.Variants = &[]campaigns.Variant{
		{Name: "Short", Weight: 70, Content: map[string]map[string]string{"email": {"subject": "Short"}}},
		{Name: "Long", Weight: 30},
	}
	c := w.create(in)
	if _, err := w.camp.Launch(ctx, "acme", c.ID, "test"); err != nil {
		t.Fatal(err)
	}
	w.wait(c.ID, "completion", func(v campaigns.View) bool { return v.Status == campaigns.Completed })
	bySubject := map[string]int{}
	for _, m := range w.chans["email"].received() {
		bySubject[field(m, "subject")]++
	}
	// "Long" has no content of its own: it keeps the campaign's subject.
	if bySubject["Short"] < 55 || bySubject["Short"] > 85 || bySubject["Short"]+bySubject["Hello there"] != 100 {
		t.Fatalf("split %v", bySubject)
	}
	for _, tt := range []struct {
		variants []campaigns.Variant
		test     *campaigns.Test
		field    string
	}{
		{[]campaigns.Variant{{Name: "A", Weight: 100}}, nil, "variants"},
		{[]campaigns.Variant{{Name: "A", Weight: 50}, {Name: "B", Weight: 40}}, nil, "variants"},
		{[]campaigns.Variant{{Name: "A", Weight: 50}, {Name: "A", Weight: 50}}, nil, "variants[1].name"},
		{[]campaigns.Variant{{Name: "A", Weight: 50}, {Name: "B", Weight: 50, Content: map[string]map[string]string{"sms": {"text": "x"}}}}, nil, "variants[1].content.sms"},
		{[]campaigns.Variant{{Name: "A", Weight: 50}, {Name: "B", Weight: 50, Content: map[string]map[string]string{"email": {"subject": "{% if %}"}}}}, nil, "variants[1].content.email.subject"},
		{[]campaigns.Variant{{Name: "A", Weight: 50}, {Name: "B", Weight: 50}}, &campaigns.Test{Percent: 100, Window: "1h", Metric: "open"}, "test.percent"},
		{[]campaigns.Variant{{Name: "A", Weight: 50}, {Name: "B", Weight: 50}}, &campaigns.Test{Percent: 10, Window: "1h", Metric: "revenue"}, "test.metric"},
		{nil, &campaigns.Test{Percent: 10, Window: "1h", Metric: "open"}, "test"},
	} {
		bad := emailCampaign("Bad", seg)
		bad.Variants, bad.Test = &tt.variants, tt.test
		if _, err := w.camp.Create(ctx, "acme", bad, "test"); !isInvalid(err, tt.field) {
			t.Errorf("%+v %+v: %v, want a problem with %s", tt.variants, tt.test, err, tt.field)
		}
	}
}
