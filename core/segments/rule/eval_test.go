package rule

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// event is one event of a memSubject.
type event struct {
	name  string
	at    time.Time
	props map[string]any
}

// memSubject is a contact held in memory.
type memSubject struct {
	id       string
	fields   map[string]contacts.Value
	attrs    map[string]contacts.Value
	tags     []string
	consent  map[string]contacts.ConsentStatus
	scores   map[string]float64
	segments []string
	events   []event // any order; Events sorts them newest first
}

var _ Subject = (*memSubject)(nil)

func (s *memSubject) ID() string { return s.id }

func (s *memSubject) Field(name string) (contacts.Value, bool) {
	v, ok := s.fields[name]
	return v, ok
}

func (s *memSubject) Attribute(name string) (contacts.Value, bool) {
	v, ok := s.attrs[name]
	return v, ok
}

func (s *memSubject) HasTag(tag string) bool { return slices.Contains(s.tags, tag) }

func (s *memSubject) Consent(channel string) contacts.ConsentStatus {
	if st, ok := s.consent[channel]; ok {
		return st
	}
	return contacts.Unknown
}

func (s *memSubject) Score(name string) (float64, bool) {
	v, ok := s.scores[name]
	return v, ok
}

func (s *memSubject) InSegment(ref string) bool { return slices.Contains(s.segments, ref) }

func (s *memSubject) Events(name string, fn func(time.Time, map[string]any) bool) {
	evs := slices.Clone(s.events)
	slices.SortStableFunc(evs, func(a, b event) int { return b.at.Compare(a.at) })
	for _, e := range evs {
		if e.name == name && !fn(e.at, e.props) {
			return
		}
	}
}

var evalNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(d float64) time.Time { return evalNow.Add(-time.Duration(d * float64(24*time.Hour))) }

func sampleSubject() *memSubject {
	return &memSubject{
		id: "c_123",
		fields: map[string]contacts.Value{
			"email":        contacts.StringValue("marie@example.com"),
			"locale":       contacts.StringValue("fr-FR"),
			"lifecycle":    contacts.StringValue("customer"),
			"created_at":   contacts.TimeValue(time.Date(2024, 1, 31, 15, 0, 0, 0, time.UTC)),
			"last_seen_at": contacts.TimeValue(daysAgo(2)),
		},
		attrs: map[string]contacts.Value{
			"country":      contacts.StringValue("FR"),
			"age":          contacts.NumberValue(34),
			"vip":          contacts.BoolValue(true),
			"interests":    contacts.ListValue([]string{"Golf", "tennis"}),
			"signed_up_at": contacts.TimeValue(daysAgo(5)),
			"birthday":     contacts.StringValue("1990-05-01"),
			"email":        contacts.StringValue("attribute@example.com"),
			"first name":   contacts.StringValue("Marie"),
			"address.city": contacts.StringValue("Lyon"),
		},
		tags:     []string{"vip", "beta"},
		consent:  map[string]contacts.ConsentStatus{"email": contacts.Subscribed, "sms": contacts.Unsubscribed},
		scores:   map[string]float64{"engagement": 72.5},
		segments: []string{"newsletter"},
		events: []event{
			{"Order Completed", daysAgo(3), map[string]any{"total": 120.0, "currency": "EUR", "product": map[string]any{"sku": "A-1"}}},
			{"Order Completed", daysAgo(10), map[string]any{"total": 80.0, "currency": "EUR"}},
			{"Order Completed", daysAgo(20), map[string]any{"total": 150.0, "currency": "USD", "delivered_at": "2026-02-10T08:00:00Z"}},
			{"Order Completed", daysAgo(60), map[string]any{"total": 500.0, "currency": "EUR"}},
			{"Page Viewed", daysAgo(0.5), map[string]any{"path": "/pricing", "tags": []any{"a", "b"}, "note": nil}},
		},
	}
}

func TestEval(t *testing.T) {
	tests := []struct {
		rule string
		want bool
	}{
		// the example
		{`country = "FR" and score("engagement") > 50 and performed("Order Completed", within: 30d, count >= 2, where: total > 100) and not in_segment("churned") and subscribed("email")`, true},

		// boolean logic
		{`country = "FR" and age > 40`, false},
		{`country = "DE" or age > 30`, true},
		{`not country = "FR"`, false},
		{`not not country = "FR"`, true},
		{`country = "DE" or age > 30 and vip = false`, false},
		{`(country = "DE" or age > 30) and vip = true`, true},

		// text: = is exact, contains and starts_with ignore case
		{`country = "FR"`, true},
		{`country = "fr"`, false},
		{`country != "FR"`, false},
		{`country in ["DE", "FR"]`, true},
		{`country not in ["DE", "IT"]`, true},
		{`email contains "EXAMPLE"`, true},
		{`email starts_with "MARIE@"`, true},
		{`email not starts_with "bob"`, true},
		{`email not contains "gmail"`, true},
		{`lifecycle = "customer"`, true},

		// attributes: shadowing built-ins, backquoted and dotted names
		{`email = "marie@example.com"`, true},
		{`attributes.email = "attribute@example.com"`, true},
		{"`email` = \"attribute@example.com\"", true},
		{"`first name` = \"Marie\"", true},
		{`address.city = "Lyon"`, true},

		// missing fields: positive operators false, negated ones true
		{`phone exists`, false},
		{`phone not exists`, true},
		{`phone = "+33"`, false},
		{`phone != "+33"`, true},
		{`plan in ["pro"]`, false},
		{`plan not in ["pro"]`, true},
		{`plan contains "p"`, false},
		{`plan not contains "p"`, true},
		{`plan starts_with "p"`, false},
		{`plan not starts_with "p"`, true},
		{`shoe_size > 3`, false},
		{`not shoe_size > 3`, true},
		{`trial_ends_at within 7d`, false},
		{`trial_ends_at older_than 7d`, false},
		{`score("churn") > 1`, false},
		{`score("churn") != 1`, true},

		// numbers and booleans
		{`age = 34`, true},
		{`age >= 34 and age <= 34 and age < 34.5 and age > 33.9`, true},
		{`age in [18, 34]`, true},
		{`age = "34"`, false},
		{`vip = true`, true},
		{`vip != true`, false},
		{`score("engagement") = 72.5`, true},
		{`score("engagement") <= 72`, false},

		// lists
		{`interests contains "golf"`, true},
		{`interests contains "gol"`, false},
		{`interests not contains "chess"`, true},
		{`interests = "golf"`, false},

		// dates: a day literal is the whole UTC day
		{`created_at = "2024-01-31"`, true},
		{`created_at <= "2024-01-31"`, true},
		{`created_at < "2024-01-31"`, false},
		{`created_at >= "2024-01-31"`, true},
		{`created_at > "2024-01-31"`, false},
		{`created_at > "2024-01-30"`, true},
		{`created_at = "2024-01-31T15:00:00Z"`, true},
		{`created_at > "2024-01-31T14:59:59Z"`, true},
		{`created_at < "2024-01-31T17:00:00+02:00"`, false},
		{`created_at > "not a date"`, false},
		{`birthday < "2000-01-01"`, true},
		{`birthday = "1990-05-01"`, true},

		// relative dates
		{`signed_up_at within 7d`, true},
		{`signed_up_at within 5d`, true},
		{`signed_up_at within 4d`, false},
		{`signed_up_at older_than 4d`, true},
		{`signed_up_at older_than 1w`, false},
		{`last_seen_at within 72h`, true},
		{`last_seen_at within 2880m`, true},
		{`last_seen_at within 2879m`, false},
		{`birthday older_than 520w`, true},

		// tags, consent, segments
		{`has_tag("vip")`, true},
		{`has_tag("VIP")`, false},
		{`subscribed("email")`, true},
		{`unsubscribed("email")`, false},
		{`unsubscribed("sms")`, true},
		{`subscribed("push") or unsubscribed("push")`, false},
		{`in_segment("newsletter")`, true},

		// performed
		{`performed("Order Completed")`, true},
		{`performed("Refund")`, false},
		{`not performed("Refund")`, true},
		{`performed("Order Completed", within: 2d)`, false},
		{`performed("Order Completed", within: 3d)`, true},
		{`performed("Order Completed", count = 4)`, true},
		{`performed("Order Completed", within: 30d, count = 3)`, true},
		{`performed("Order Completed", within: 30d, count > 3)`, false},
		{`performed("Order Completed", within: 30d, count != 3)`, false},
		{`performed("Order Completed", count < 5)`, true},
		{`performed("Refund", count = 0)`, true},
		{`performed("Order Completed", where: total > 100 and currency = "EUR", count >= 2)`, true},
		{`performed("Order Completed", within: 30d, where: total > 100 and currency = "EUR", count >= 2)`, false},
		{`performed("Order Completed", where: currency in ["USD"] or total >= 500, count = 2)`, true},
		{`performed("Order Completed", where: product.sku = "A-1")`, true},
		{`performed("Order Completed", where: delivered_at > "2026-02-09")`, true},
		{`performed("Order Completed", where: delivered_at within 30d)`, true},
		{`performed("Order Completed", where: coupon exists)`, false},
		{`performed("Order Completed", where: coupon not exists, count = 4)`, true},
		{`performed("Page Viewed", where: note exists)`, false},
		{`performed("Page Viewed", where: tags contains "B")`, true},
		{`performed("Page Viewed", where: path starts_with "/PRICING")`, true},
	}
	s := sampleSubject()
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			n, err := Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if got := Eval(n, s, evalNow); got != tt.want {
				t.Errorf("Eval = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEvalUncheckedRules checks that rules Check refuses still evaluate to their plain meaning, without panics.
func TestEvalUncheckedRules(t *testing.T) {
	s := sampleSubject()
	for _, rule := range []string{`country > 5`, `age = "34"`, `vip > true`, `interests starts_with "g"`,
		`created_at within -3d`, `created_at older_than 9223372036854775807w`, `bucket(150%..-3%)`, `country > "FR"`} {
		n, err := Parse(rule)
		if err != nil {
			t.Fatal(err)
		}
		if len(Check(n, testSchema)) == 0 {
			t.Errorf("%s: Check found nothing wrong", rule)
		}
		if Eval(n, s, evalNow) {
			t.Errorf("%s: Eval = true", rule)
		}
	}
}

// TestEvalStopsEarly checks that performed reads no further than it needs: past the window, or past the count.
func TestEvalStopsEarly(t *testing.T) {
	s := sampleSubject()
	for i := range 1000 {
		s.events = append(s.events, event{"Page Viewed", daysAgo(float64(i + 1)), nil})
	}
	counting := &countingSubject{memSubject: s}
	for rule, maxRead := range map[string]int{
		`performed("Page Viewed")`:                        1,
		`performed("Page Viewed", count >= 3)`:            3,
		`performed("Page Viewed", count > 3)`:             4,
		`performed("Page Viewed", within: 7d)`:            1,
		`performed("Page Viewed", within: 7d, count = 5)`: 9,
	} {
		n, err := Parse(rule)
		if err != nil {
			t.Fatal(err)
		}
		counting.read = 0
		Eval(n, counting, evalNow)
		if counting.read > maxRead {
			t.Errorf("%s read %d events, want at most %d", rule, counting.read, maxRead)
		}
	}
}

type countingSubject struct {
	*memSubject
	read int
}

func (c *countingSubject) Events(name string, fn func(time.Time, map[string]any) bool) {
	c.memSubject.Events(name, func(at time.Time, p map[string]any) bool {
		c.read++
		return fn(at, p)
	})
}

func TestBucket(t *testing.T) {
	// Pinned values, computed independently (FNV-1a 64 of seed, 0x00, id; modulo 10000): changing the hash would
	// move contacts between A/B groups and holdouts.
	for _, c := range []struct {
		seed, id string
		want     int
	}{{"", "c_1", 6912}, {"holdout-1", "c_1", 5999}, {"", "c_2", 1545}} {
		if got := BucketOf(c.seed, c.id); got != c.want {
			t.Errorf("BucketOf(%q, %q) = %d, want %d", c.seed, c.id, got, c.want)
		}
	}
	parse := func(rule string) Node {
		n, err := Compile(rule, nil)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ten, split, rest := parse(`bucket(10%)`), parse(`bucket(10%..30%)`), parse(`bucket(30%..100%)`)
	seeded := parse(`bucket(10%, seed: "holdout-1")`)
	const n = 20000
	var inTen, inSplit, inSeeded, both int
	for i := range n {
		s := &memSubject{id: fmt.Sprintf("c_%d", i)}
		a, b, c := Eval(ten, s, evalNow), Eval(split, s, evalNow), Eval(rest, s, evalNow)
		if a && b || a && c || b && c || !a && !b && !c {
			t.Fatalf("%s: the ranges 0-10, 10-30 and 30-100 must partition contacts (%v %v %v)", s.id, a, b, c)
		}
		d := Eval(seeded, s, evalNow)
		inTen += b2i(a)
		inSplit += b2i(b)
		inSeeded += b2i(d)
		both += b2i(a && d)
	}
	near := func(name string, got int, share float64) {
		if want := share * n; math.Abs(float64(got)-want) > 4*math.Sqrt(want) {
			t.Errorf("%s: %d of %d contacts, want about %.0f", name, got, n, want)
		}
	}
	near("bucket(10%)", inTen, 0.1)
	near("bucket(10%..30%)", inSplit, 0.2)
	near("bucket(10%, seed)", inSeeded, 0.1)
	near("both seeds (independent)", both, 0.01)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestNextChange(t *testing.T) {
	s := sampleSubject()
	signed := daysAgo(5)
	tests := []struct {
		rule string
		want time.Time
	}{
		{`country = "FR"`, time.Time{}},
		{`created_at > "2024-01-01"`, time.Time{}},
		{`signed_up_at within 7d`, signed.Add(7*24*time.Hour + 1)},
		{`signed_up_at older_than 7d`, signed.Add(7*24*time.Hour + 1)},
		{`signed_up_at within 3d`, time.Time{}},
		{`not signed_up_at older_than 3d`, time.Time{}},
		{`phone within 3d`, time.Time{}},
		{`performed("Order Completed")`, time.Time{}},
		// the oldest event in the window (20 days ago) leaves it first
		{`performed("Order Completed", within: 30d)`, daysAgo(20).Add(30*24*time.Hour + 1)},
		{`performed("Order Completed", within: 4d) and signed_up_at within 7d`, daysAgo(3).Add(4*24*time.Hour + 1)},
		// delivered_at (2026-02-10T08:00:00Z) leaves the 30 days of where: on 2026-03-12
		{`performed("Order Completed", where: delivered_at within 30d)`, time.Date(2026, 3, 12, 8, 0, 0, 1, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			n, err := Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			got := NextChange(n, s, evalNow)
			if !got.Equal(tt.want) {
				t.Fatalf("NextChange = %v, want %v", got, tt.want)
			}
			if got.IsZero() {
				return
			}
			// Just before, the result is the same as now; at that time it may differ (here it does, as each rule
			// has one time-dependent condition that decides).
			before, at := Eval(n, s, got.Add(-1)), Eval(n, s, got)
			if before != Eval(n, s, evalNow) {
				t.Errorf("the result changed before NextChange")
			}
			if before == at && tt.rule != `performed("Order Completed", within: 30d)` {
				t.Errorf("the result did not change at NextChange")
			}
		})
	}
	// A future date enters a within window when the clock reaches it.
	future := &memSubject{attrs: map[string]contacts.Value{"trial_ends_at": contacts.TimeValue(evalNow.Add(time.Hour))}}
	n, _ := Parse(`trial_ends_at within 1d`)
	if got := NextChange(n, future, evalNow); !got.Equal(evalNow.Add(time.Hour)) {
		t.Errorf("future date: NextChange = %v", got)
	}
	if Eval(n, future, evalNow) || !Eval(n, future, evalNow.Add(time.Hour)) {
		t.Errorf("future date: within should hold from the date on")
	}
}
