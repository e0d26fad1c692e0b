package rule

import (
	"hash/fnv"
	"math"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// Subject is what Eval reads of one contact.
type Subject interface {
	// ID is the contact's stable id, which bucket(...) hashes.
	ID() string
	// Field returns a built-in field's value (see BuiltinKind: email, phone, user_id, timezone, locale and
	// lifecycle as contacts.String, created_at and last_seen_at as contacts.Time); ok is false when the contact has
	// no value (an empty string, a zero time).
	Field(name string) (v contacts.Value, ok bool)
	// Attribute returns a custom attribute's value by its stored name; ok is false when the contact has none.
	Attribute(name string) (v contacts.Value, ok bool)
	HasTag(tag string) bool
	// Consent returns the contact's consent on a channel, contacts.Unknown when never given.
	Consent(channel string) contacts.ConsentStatus
	// Score returns a score by name; ok is false when the contact has not been scored.
	Score(name string) (score float64, ok bool)
	// InSegment reports membership of another segment, named as in_segment(...) names it.
	InSegment(ref string) bool
	// Events calls fn with the contact's events of that name, newest first, until fn returns false.
	Events(name string, fn func(at time.Time, properties map[string]any) bool)
}

// Eval reports whether the contact matches the rule at time now. It is the reference semantics, written for
// clarity; faster evaluators must agree with it. A rule should have passed Check: Eval never fails or panics, but
// it gives an unchecked rule's mistakes their plain meaning (a comparison of a number with text is false).
//
// Semantics, in full:
//   - and, or and not are Boolean logic; a nil node is false.
//   - A contact without the field (or property) matches no positive operator (= < <= > >= in contains
//     starts_with exists within older_than) and every negated one (!= "not in" "not contains" "not starts_with"
//     "not exists"): each negated operator is exactly not of its positive.
//   - = and in compare text exactly (case matters), numbers numerically, true/false as such; a value of another
//     kind than the literal never equals it.
//   - contains and starts_with ignore case; on a list, contains is true when an item equals the text, ignoring case.
//   - < <= > >= compare numbers, or dates: the literal is a date when the value is one (or is text holding a date,
//     YYYY-MM-DD or RFC 3339). A YYYY-MM-DD literal means that whole UTC day: = is "on that day", < "before it",
//     <= "on or before it", > "after it", >= "on or after it". An RFC 3339 literal is an instant.
//   - within d holds for a date in [now-d, now]; older_than d for a date before now-d. A future date matches neither.
//   - score(...) compares a score like a number field; a contact without the score is "without the field".
//   - subscribed/unsubscribed compare the consent status exactly (unknown matches neither).
//   - performed counts the events of that name at or after now-within (no upper bound: events stored in the future
//     count too) whose properties match where, and compares the count (default: count >= 1).
//   - bucket(from%..to%, seed) holds when from*100 <= BucketOf(seed, id) < to*100.
//
// Event properties are read as attribute values are written (contacts.ParseValue: RFC 3339 text is a date, a list
// of scalars a list); a property path is looked up as one key first ("product.price"), then through nested
// objects (properties["product"]["price"]).
func Eval(n Node, s Subject, now time.Time) bool {
	switch n := n.(type) {
	case *And:
		for _, it := range n.Items {
			if !Eval(it, s, now) {
				return false
			}
		}
		return true
	case *Or:
		for _, it := range n.Items {
			if Eval(it, s, now) {
				return true
			}
		}
		return false
	case *Not:
		return !Eval(n.Item, s, now)
	case *Compare:
		v, ok := fieldValue(n.Field, s, nil)
		return compare(n.Op, n.Value, v, ok, now)
	case *Score:
		v, ok := s.Score(n.Name)
		return compare(n.Op, Literal{Kind: LitNumber, Number: n.Value}, contacts.NumberValue(v), ok, now)
	case *HasTag:
		return s.HasTag(n.Tag)
	case *Consent:
		return s.Consent(n.Channel) == n.Status
	case *InSegment:
		return s.InSegment(n.Ref)
	case *Bucket:
		return n.Holds(s.ID())
	case *Performed:
		return performed(n, s, now)
	}
	return false
}

// BucketOf returns the contact's bucket for a seed, from 0 to 9999: the 64-bit FNV-1a hash of the seed, a zero
// byte and the contact id, modulo 10000. It never changes for a contact and seed; different seeds give
// independent buckets.
func BucketOf(seed, contactID string) int {
	h := fnv.New64a()
	h.Write([]byte(seed))
	h.Write([]byte{0})
	h.Write([]byte(contactID))
	return int(h.Sum64() % 10000)
}

// fieldValue reads a field: from the subject, or from an event's properties inside where.
func fieldValue(f Field, s Subject, props map[string]any) (contacts.Value, bool) {
	switch f.Scope {
	case Builtin:
		return s.Field(f.Name)
	case Attribute:
		return s.Attribute(f.Name)
	case Property:
		raw, ok := property(props, f.Name)
		if !ok {
			return contacts.Value{}, false
		}
		v, err := contacts.ParseValue(raw)
		if err != nil {
			// Present (exists holds) but not a value a rule compares: an object, or out-of-range text.
			return contacts.Value{}, true
		}
		return v, true
	}
	return contacts.Value{}, false
}

// property looks a property path up: as one key, then through nested objects. A null is absent.
func property(props map[string]any, path string) (any, bool) {
	if v, ok := props[path]; ok {
		return v, v != nil
	}
	var cur any = props
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// compare applies op to a value (ok false: the contact has none).
func compare(op Op, lit Literal, v contacts.Value, ok bool, now time.Time) bool {
	pos, negated := op.positive()
	return ok && holds(pos, lit, v, now) != negated || !ok && negated
}

// holds applies a positive operator to a present value.
func holds(op Op, lit Literal, v contacts.Value, now time.Time) bool {
	switch op {
	case Exists:
		return true
	case Eq, Lt, Le, Gt, Ge:
		switch {
		case lit.Kind == LitNumber && v.Kind == contacts.Number:
			return order(op, compareNumbers(v.Num, lit.Number)) && !math.IsNaN(v.Num) && !math.IsNaN(lit.Number)
		case lit.Kind == LitBool && v.Kind == contacts.Bool:
			return op == Eq && v.Bool == lit.Bool
		case lit.Kind == LitText && v.Kind == contacts.String && op == Eq:
			return v.Str == lit.Text
		case lit.Kind == LitText:
			t, ok := timeOf(v)
			from, day, isDate := parseDate(lit.Text)
			if !ok || !isDate {
				return false
			}
			if !day {
				return order(op, t.Compare(from))
			}
			// A day literal is the interval [from, from+24h): before it, in it, after it.
			switch {
			case t.Before(from):
				return order(op, -1)
			case t.Before(from.Add(24 * time.Hour)):
				return order(op, 0)
			}
			return order(op, 1)
		}
	case In:
		for _, it := range lit.List {
			if it.Kind == LitText && v.Kind == contacts.String && v.Str == it.Text ||
				it.Kind == LitNumber && v.Kind == contacts.Number && v.Num == it.Number {
				return true
			}
		}
	case Contains:
		switch v.Kind {
		case contacts.String:
			return strings.Contains(strings.ToLower(v.Str), strings.ToLower(lit.Text))
		case contacts.List:
			for _, it := range v.List {
				if strings.EqualFold(it, lit.Text) {
					return true
				}
			}
		}
	case StartsWith:
		return v.Kind == contacts.String && strings.HasPrefix(strings.ToLower(v.Str), strings.ToLower(lit.Text))
	case Within, OlderThan:
		t, ok := timeOf(v)
		if !ok || lit.Kind != LitDuration {
			return false
		}
		edge := now.Add(-lit.Duration.Std())
		if op == Within {
			return !t.Before(edge) && !t.After(now)
		}
		return t.Before(edge)
	}
	return false
}

// order turns a three-way comparison result into op's answer.
func order(op Op, c int) bool {
	switch op {
	case Eq:
		return c == 0
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	case Gt:
		return c > 0
	case Ge:
		return c >= 0
	}
	return false
}

func compareNumbers(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// timeOf reads a value as a date: a date, or text holding one.
func timeOf(v contacts.Value) (time.Time, bool) {
	switch v.Kind {
	case contacts.Time:
		return v.Time, true
	case contacts.String:
		t, _, ok := parseDate(v.Str)
		return t, ok
	}
	return time.Time{}, false
}

// parseDate reads a date literal: "2024-01-31" (day is true: the UTC day starting at t) or RFC 3339.
func parseDate(s string) (t time.Time, day bool, ok bool) {
	if len(s) == len(time.DateOnly) {
		t, err := time.Parse(time.DateOnly, s)
		return t, true, err == nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, false, err == nil
}

// performed counts matching events and compares the count.
func performed(n *Performed, s Subject, now time.Time) bool {
	count := Count{Op: Ge, Value: 1}
	if n.Count != nil {
		count = *n.Count
	}
	since, windowed := n.Since(now)
	// Counting can stop once the answer cannot change: past the window (events come newest first), or, for > and
	// >=, once the threshold is reached.
	var seen int64
	s.Events(n.Event, func(at time.Time, props map[string]any) bool {
		if windowed && at.Before(since) {
			return false
		}
		if n.Where == nil || evalWhere(n.Where, s, props, now) {
			seen++
		}
		return !(count.Op == Ge && seen >= count.Value || count.Op == Gt && seen > count.Value)
	})
	return n.CountHolds(seen)
}

func compareInts(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// evalWhere evaluates a where condition against one event's properties.
func evalWhere(n Node, s Subject, props map[string]any, now time.Time) bool {
	switch n := n.(type) {
	case *And:
		for _, it := range n.Items {
			if !evalWhere(it, s, props, now) {
				return false
			}
		}
		return true
	case *Or:
		for _, it := range n.Items {
			if evalWhere(it, s, props, now) {
				return true
			}
		}
		return false
	case *Not:
		return !evalWhere(n.Item, s, props, now)
	case *Compare:
		v, ok := fieldValue(n.Field, s, props)
		return compare(n.Op, n.Value, v, ok, now)
	}
	return false
}

// NextChange returns the earliest time after now at which the rule's result for this contact may change by the
// mere passing of time, with the contact and its events unchanged; the zero time when it never will. It is exact
// for each time-dependent condition (within and older_than, inside where: too, and performed(..., within: ...))
// and takes the earliest over the rule, so the result may also stay the same then: an index re-evaluates the
// contact at that time. Membership of referenced segments (in_segment) is left to the caller, which re-evaluates
// when that membership changes.
func NextChange(n Node, s Subject, now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	var visit func(n Node, props map[string]any)
	visit = func(n Node, props map[string]any) {
		switch n := n.(type) {
		case *And:
			for _, it := range n.Items {
				visit(it, props)
			}
		case *Or:
			for _, it := range n.Items {
				visit(it, props)
			}
		case *Not:
			visit(n.Item, props)
		case *Compare:
			if n.Op != Within && n.Op != OlderThan || n.Value.Kind != LitDuration {
				return
			}
			v, ok := fieldValue(n.Field, s, props)
			if !ok {
				return
			}
			if t, ok := timeOf(v); ok {
				// within holds while now is in [t, t+d]; older_than from just after t+d on.
				if n.Op == Within {
					consider(t)
				}
				consider(t.Add(n.Value.Duration.Std()).Add(time.Nanosecond))
			}
		case *Performed:
			timedWhere := n.Where != nil && Dependencies(n.Where).Time
			if n.Within == nil && !timedWhere {
				return
			}
			// An event counts from its time at until at+within, included; a where: condition on its properties may
			// change on its own.
			s.Events(n.Event, func(at time.Time, props map[string]any) bool {
				if n.Within != nil {
					end := at.Add(n.Within.Std())
					if end.Before(now) {
						return false
					}
					consider(end.Add(time.Nanosecond))
				}
				if timedWhere {
					visit(n.Where, props)
				}
				return true
			})
		}
	}
	visit(n, nil)
	return next
}

// The functions below give faster evaluators (the segment index) the reference semantics piece by piece, so that
// they read values their own way and never re-implement a comparison.

// Holds reports whether a field's value satisfies the comparison at time now (ok false: the contact has no value),
// exactly as Eval decides it.
func (n *Compare) Holds(v contacts.Value, ok bool, now time.Time) bool {
	return compare(n.Op, n.Value, v, ok, now)
}

// Holds reports whether the contact id falls in the bucket range, exactly as Eval decides it.
func (n *Bucket) Holds(contactID string) bool {
	b := BucketOf(n.Seed, contactID)
	return float64(b) >= math.Round(n.From*100) && float64(b) < math.Round(n.To*100)
}

// Since returns the start of the window at time now: events at or after it count. ok is false without a window.
func (n *Performed) Since(now time.Time) (since time.Time, ok bool) {
	if n.Within == nil {
		return time.Time{}, false
	}
	return now.Add(-n.Within.Std()), true
}

// CountHolds reports whether seen matching events satisfy the count condition (default: at least one).
func (n *Performed) CountHolds(seen int64) bool {
	count := Count{Op: Ge, Value: 1}
	if n.Count != nil {
		count = *n.Count
	}
	return order(count.Op, compareInts(seen, count.Value)) || count.Op == Ne && seen != count.Value
}

// CanHold reports whether the count condition could hold with at most max matching events: an evaluator that knows
// how many events of the name are in the window skips reading their properties when even all of them would fail.
func (n *Performed) CanHold(max int64) bool {
	count := Count{Op: Ge, Value: 1}
	if n.Count != nil {
		count = *n.Count
	}
	switch count.Op {
	case Ge:
		return max >= count.Value
	case Gt:
		return max > count.Value
	case Eq:
		return max >= count.Value
	}
	return true
}

// WhereHolds evaluates a performed(...) where: condition against one event's properties at time now.
func WhereHolds(where Node, s Subject, props map[string]any, now time.Time) bool {
	return evalWhere(where, s, props, now)
}

// TimeOf reads a value as a date, as comparisons and windows do: a date, or text holding one (YYYY-MM-DD or RFC
// 3339).
func TimeOf(v contacts.Value) (time.Time, bool) { return timeOf(v) }
