package rule_test

import (
	"fmt"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/segments/rule"
)

func ExampleParse() {
	n, err := rule.Parse(`Country = "FR" AND (plan = "pro" or PLAN = "team") and performed("Order Completed", where: total > 100, within: 30d)`)
	if err != nil {
		panic(err)
	}
	fmt.Println(rule.Format(n))

	_, err = rule.Parse(`country = and performd("Signed Up")`)
	fmt.Println(err)
	// Output:
	// Country = "FR" and (plan = "pro" or PLAN = "team") and performed("Order Completed", within: 30d, where: total > 100)
	// 1:11: expected a value after '=' but found 'and'; 1:15: unknown function 'performd': did you mean 'performed'?
}

// schema says country is text.
type schema struct{}

func (schema) AttributeKind(name string) (contacts.Kind, bool) {
	if name == "country" {
		return contacts.String, true
	}
	return 0, false
}

func ExampleCompile() {
	_, err := rule.Compile(`country > 5 and created_at within 0d`, schema{})
	for _, e := range err.(rule.Errors) {
		fmt.Printf("line %d, column %d: %s\n", e.Line, e.Column, e.Message)
	}
	// Output:
	// line 1, column 9: 'country' is text, so it cannot be compared with > 5
	// line 1, column 35: 'within 0d' is an empty window: use a duration of at least 1m
}

func ExampleDecodeJSON() {
	n, err := rule.DecodeJSON([]byte(`{"and": [{"field": "country", "op": "in", "value": ["FR", "BE"]}, {"not": {"has_tag": "vip"}}]}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(rule.Format(n))

	_, err = rule.DecodeJSON([]byte(`{"and": [{"has_tag": "vip"}, {"feild": "country"}]}`))
	fmt.Println(err)
	// Output:
	// country in ["FR", "BE"] and not has_tag("vip")
	// $.and[1].feild: unknown key "feild": did you mean 'field'?
}

func ExampleDependencies() {
	n, _ := rule.Parse(`last_seen_at older_than 30d and has_tag("vip") and not in_segment("churned") and bucket(10%)`)
	d := rule.Dependencies(n)
	fmt.Println(d.Fields, d.Tags, d.Segments, d.Time)
	// Output: [last_seen_at] [vip] [churned] true
}

// contact is a Subject with a country and one recent order.
type contact struct{ now time.Time }

func (c contact) ID() string                            { return "c_1" }
func (c contact) Field(string) (contacts.Value, bool)   { return contacts.Value{}, false }
func (c contact) HasTag(string) bool                    { return false }
func (c contact) Consent(string) contacts.ConsentStatus { return contacts.Unknown }
func (c contact) Score(string) (float64, bool)          { return 0, false }
func (c contact) InSegment(string) bool                 { return false }
func (c contact) Attribute(name string) (contacts.Value, bool) {
	if name == "country" {
		return contacts.StringValue("FR"), true
	}
	return contacts.Value{}, false
}
func (c contact) Events(name string, fn func(time.Time, map[string]any) bool) {
	if name == "Order Completed" {
		fn(c.now.Add(-48*time.Hour), map[string]any{"total": 120.0})
	}
}

func ExampleEval() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n, _ := rule.Parse(`country = "FR" and performed("Order Completed", within: 7d, where: total > 100) and phone not exists`)
	fmt.Println(rule.Eval(n, contact{now}, now))
	fmt.Println(rule.NextChange(n, contact{now}, now)) // the order leaves the 7-day window
	// Output:
	// true
	// 2026-03-06 12:00:00.000000001 +0000 UTC
}
