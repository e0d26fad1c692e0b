package rule

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/crosscast/crosscast/core/contacts"
)

// Schema tells the checker the kinds of a workspace's attributes. Attributes it does not know are allowed (they may
// appear later) and checked only for what the rule itself says.
type Schema interface {
	AttributeKind(name string) (contacts.Kind, bool)
}

// Compile parses text and checks it against s: the one call for rules typed by a marketer. The error is an Errors.
func Compile(text string, s Schema) (Node, error) {
	n, err := Parse(text)
	if err != nil {
		return nil, err
	}
	if errs := Check(n, s); len(errs) > 0 {
		return nil, errs
	}
	return n, nil
}

// Check reports what would make a syntactically valid rule wrong or useless:
//   - a field compared with a value or an operator its kind does not take ("'country' is text, so it cannot be
//     compared with > 5"): the kinds of built-ins are fixed (BuiltinKind), those of attributes come from s (nil s
//     knows none), those of event properties are unknown;
//   - text that should be a date and is not one ("2024-13-01"), true or false with < or >, a list that mixes text
//     and numbers;
//   - a window that is zero, negative or longer than MaxWindow; a count that is negative, never or always true; a
//     bucket range outside 0%..100%, empty, or finer than 0.01%;
//   - a tag that contacts could not carry, a malformed channel name, an empty event, score or segment name;
//   - for ASTs built in Go code, the shapes Parse and DecodeJSON never produce (an and of one item, a nil node,
//     a property outside where...).
//
// It does not resolve segment references: the caller checks Segments(n) for unknown segments and cycles. Errors
// come in the order of the rule; nil means the rule is sound.
func Check(n Node, s Schema) Errors {
	c := &checker{schema: s}
	c.node(n, false)
	return sortErrors(c.errs)
}

type checker struct {
	schema Schema
	errs   Errors
}

func (c *checker) errorf(at Pos, format string, args ...any) {
	c.errs = append(c.errs, errorAt(at, format, args...))
}

func (c *checker) node(n Node, where bool) {
	switch n := n.(type) {
	case *And:
		c.items(n.At, n.Items, "and", where)
	case *Or:
		c.items(n.At, n.Items, "or", where)
	case *Not:
		c.node(n.Item, where)
	case *Compare:
		c.compare(n, where)
	case nil:
		c.errorf(Pos{}, "a condition is missing (nil)")
	default:
		if where {
			c.errorf(n.Pos(), "only conditions on the event's properties, such as total > 100, are allowed inside where:")
			return
		}
		c.function(n)
	}
}

func (c *checker) items(at Pos, items []Node, op string, where bool) {
	if len(items) < 2 {
		c.errorf(at, "'%s' needs at least two conditions", op)
	}
	for _, it := range items {
		c.node(it, where)
	}
}

func (c *checker) function(n Node) {
	switch n := n.(type) {
	case *Score:
		if n.Name == "" {
			c.errorf(n.NameAt, "score(...) needs the score's name, such as score(\"engagement\")")
		}
		if !n.Op.isComparison() {
			c.errorf(n.OpAt, "a score is compared with =, !=, <, <=, > or >=, not '%s'", n.Op)
		}
		if math.IsNaN(n.Value) || math.IsInf(n.Value, 0) {
			c.errorf(n.ValueAt, "%v is not a number a score can be compared with", n.Value)
		}
	case *HasTag:
		norm, err := contacts.NormalizeTag(n.Tag)
		switch {
		case err != nil:
			c.errorf(n.TagAt, "has_tag(%s) never matches: %v", quote(n.Tag), err)
		case norm != n.Tag:
			c.errorf(n.TagAt, "has_tag(%s) never matches: tags have no spaces around them, write has_tag(%s)", quote(n.Tag), quote(norm))
		}
	case *Consent:
		// ValidateChannel with the name itself as the only known channel checks the name's form alone.
		if err := contacts.ValidateChannel(n.Channel, []string{n.Channel}); err != nil {
			c.errorf(n.ChannelAt, "%s is not a channel name: channels are lower-case names such as \"email\" or \"sms\"", quote(n.Channel))
		}
		if n.Status != contacts.Subscribed && n.Status != contacts.Unsubscribed {
			c.errorf(n.At, "consent conditions are subscribed(...) and unsubscribed(...), not %q", n.Status)
		}
	case *InSegment:
		if strings.TrimSpace(n.Ref) == "" {
			c.errorf(n.RefAt, "in_segment(...) needs a segment's name or id, such as in_segment(\"churned\")")
		}
	case *Bucket:
		c.bucket(n)
	case *Performed:
		if n.Event == "" {
			c.errorf(n.EventAt, "performed(...) needs the event's name, such as performed(\"Order Completed\")")
		}
		if n.Within != nil {
			c.window(*n.Within, n.WithinAt, "within: ")
		}
		if n.Count != nil {
			c.count(n.Count)
		}
		if n.Where != nil {
			c.node(n.Where, true)
		}
	}
}

// window checks a duration used as a window: positive and at most MaxWindow.
func (c *checker) window(d Duration, at Pos, prefix string) {
	switch {
	case d.Unit.size() == 0:
		c.errorf(at, "'%s' has no unit: durations use m (minutes), h (hours), d (days) or w (weeks)", d.String())
	case d.N == 0:
		c.errorf(at, "'%s%s' is an empty window: use a duration of at least 1m", prefix, d)
	case d.N < 0:
		c.errorf(at, "'%s%s' is a negative window: use a positive duration such as %d%c", prefix, d, uint64(-d.N), d.Unit)
	case d.Std() > MaxWindow:
		c.errorf(at, "'%s%s' is longer than 10 years, the longest window (3653d)", prefix, d)
	}
}

func (c *checker) count(n *Count) {
	switch {
	case !n.Op.isComparison():
		c.errorf(n.At, "a count is compared with =, !=, <, <=, > or >=, not '%s'", n.Op)
	case n.Value < 0:
		c.errorf(n.At, "a count cannot be negative (%d)", n.Value)
	case n.Op == Lt && n.Value == 0:
		c.errorf(n.At, "count < 0 is never true")
	case n.Op == Ge && n.Value == 0:
		c.errorf(n.At, "count >= 0 is always true: leave count out for 'at least once'")
	}
}

func (c *checker) bucket(n *Bucket) {
	from, to := n.From, n.To
	switch {
	case math.IsNaN(from) || math.IsNaN(to) || from < 0 || to > 100:
		c.errorf(n.RangeAt, "bucket percentages go from 0%% to 100%%, not %s%%..%s%%", formatNumber(from), formatNumber(to))
	case from == to:
		c.errorf(n.RangeAt, "the bucket range %s%%..%s%% is empty: it holds no contact", formatNumber(from), formatNumber(to))
	case from > to:
		c.errorf(n.RangeAt, "the bucket range %s%%..%s%% is backwards: write the lower percentage first", formatNumber(from), formatNumber(to))
	case !hundredths(from) || !hundredths(to):
		c.errorf(n.RangeAt, "bucket percentages have at most two decimals (contacts fall in 10,000 buckets of 0.01%%)")
	}
}

// hundredths reports whether p is a whole number of hundredths of a percent.
func hundredths(p float64) bool { return math.Abs(p*100-math.Round(p*100)) < 1e-6 }

// kindOf returns the kind of a field, when the checker knows it.
func (c *checker) kindOf(f Field) (contacts.Kind, bool) {
	switch f.Scope {
	case Builtin:
		return BuiltinKind(f.Name)
	case Attribute:
		if c.schema != nil {
			return c.schema.AttributeKind(f.Name)
		}
	}
	return 0, false
}

func describeKind(k contacts.Kind) string {
	switch k {
	case contacts.String:
		return "text"
	case contacts.Number:
		return "a number"
	case contacts.Bool:
		return "true or false"
	case contacts.Time:
		return "a date"
	case contacts.List:
		return "a list"
	}
	return "of an unknown kind"
}

// fieldText writes a field as the rule's text does.
func fieldText(f Field) string {
	var b strings.Builder
	writeField(&b, f)
	return b.String()
}

func literalText(l Literal) string {
	var b strings.Builder
	writeLiteral(&b, l)
	return b.String()
}

const dateHint = `write a date as "2024-01-31" or "2024-01-31T09:00:00Z"`

func (c *checker) compare(x *Compare, where bool) {
	f := x.Field
	name := fieldText(f)
	switch {
	case f.Name == "":
		c.errorf(f.At, "the field's name is empty")
		return
	case where && f.Scope != Property:
		c.errorf(f.At, "inside where:, names are the event's properties")
		return
	case !where && f.Scope == Property:
		c.errorf(f.At, "event properties such as '%s' are only available inside performed(..., where: ...)", name)
		return
	case f.Scope == Builtin && !isBuiltin(f.Name):
		c.errorf(f.At, "'%s' is not a built-in field", f.Name)
		return
	case f.Scope == Attribute:
		if err := contacts.ValidateAttributeName(f.Name); err != nil {
			c.errorf(f.At, "%s cannot name an attribute: %v", name, err)
			return
		}
	case f.Scope != Builtin && f.Scope != Property && f.Scope != Attribute:
		c.errorf(f.At, "the field %s has no scope", name)
		return
	}
	if !c.shape(x) {
		return
	}
	kind, known := c.kindOf(f)
	lit := x.Value
	// cannot builds the two messages for a field of the wrong kind.
	cannot := func(at Pos, hint string) {
		if x.Op.isComparison() || x.Op == In || x.Op == NotIn {
			c.errorf(at, "'%s' is %s, so it cannot be compared with %s %s%s", name, describeKind(kind), x.Op, literalText(lit), hint)
		} else {
			c.errorf(at, "'%s' is %s, so '%s' does not apply to it%s", name, describeKind(kind), x.Op, hint)
		}
	}
	listHint := ""
	if kind == contacts.List {
		listHint = ": use contains to test whether the list holds a value"
	}
	builtinText := f.Scope == Builtin && kind == contacts.String
	pos, _ := x.Op.positive()
	switch {
	case x.Op.isComparison():
		ordering := x.Op.isOrdering()
		switch lit.Kind {
		case LitBool:
			if ordering {
				c.errorf(x.OpAt, "true and false cannot be compared with '%s': use = or !=", x.Op)
			} else if known && kind != contacts.Bool {
				cannot(lit.At, listHint)
			}
		case LitNumber:
			switch {
			case math.IsNaN(lit.Number) || math.IsInf(lit.Number, 0):
				c.errorf(lit.At, "%v is not a number a rule can hold", lit.Number)
			case !known || kind == contacts.Number:
			case kind == contacts.String && !ordering:
				cannot(lit.At, ": write text in double quotes")
			case kind == contacts.Time:
				cannot(x.OpAt, `: compare it with a date such as "2024-01-31", or use within or older_than`)
			case ordering:
				cannot(x.OpAt, listHint)
			default:
				cannot(lit.At, listHint)
			}
		case LitText:
			_, _, isDate := parseDate(lit.Text)
			switch {
			case known && kind == contacts.Number:
				hint := ""
				if _, err := strconv.ParseFloat(lit.Text, 64); err == nil {
					hint = fmt.Sprintf(": write %s without quotes", lit.Text)
				}
				cannot(lit.At, hint)
			case known && kind == contacts.Bool:
				cannot(lit.At, ": write true or false without quotes")
			case known && kind == contacts.List:
				cannot(x.OpAt, listHint)
			case known && kind == contacts.Time && !isDate:
				c.errorf(lit.At, "'%s' is a date, and %s is not one: %s", name, quote(lit.Text), dateHint)
			case !ordering:
			case builtinText || known && kind == contacts.String && !isDate:
				cannot(x.OpAt, ": only numbers and dates can be compared with "+string(x.Op))
			case !isDate:
				c.errorf(lit.At, "only numbers and dates can be compared with '%s', and %s is not a date: %s", x.Op, quote(lit.Text), dateHint)
			}
		}
	case pos == In:
		first := lit.List[0].Kind
		for _, it := range lit.List[1:] {
			if it.Kind != first {
				c.errorf(it.At, "the list mixes text and numbers: a field holds one or the other")
				return
			}
		}
		switch {
		case !known:
		case kind == contacts.String && first == LitNumber, kind == contacts.Number && first == LitText:
			cannot(lit.At, "")
		case kind != contacts.String && kind != contacts.Number:
			cannot(x.OpAt, listHint)
		}
	case pos == Contains:
		if known && kind != contacts.String && kind != contacts.List {
			cannot(x.OpAt, "")
		} else if lit.Text == "" {
			c.errorf(lit.At, "%s \"\" is true of any text: put the text to look for between the quotes", x.Op)
		}
	case pos == StartsWith:
		if known && kind != contacts.String {
			cannot(x.OpAt, listHint)
		} else if lit.Text == "" {
			c.errorf(lit.At, "%s \"\" is true of any text: put the start to look for between the quotes", x.Op)
		}
	case x.Op == Within || x.Op == OlderThan:
		if builtinText || known && kind != contacts.Time && kind != contacts.String {
			cannot(x.OpAt, ": within and older_than take dates")
			return
		}
		c.window(lit.Duration, lit.At, string(x.Op)+" ")
	}
}

// shape checks that the literal suits the operator, as Parse and DecodeJSON guarantee; only ASTs built in Go code
// fail here.
func (c *checker) shape(x *Compare) bool {
	lit := x.Value
	pos, _ := x.Op.positive()
	ok := true
	switch {
	case !x.Op.valid():
		c.errorf(x.OpAt, "'%s' is not an operator", x.Op)
		return false
	case x.Op.isComparison():
		ok = lit.Kind == LitText || lit.Kind == LitNumber || lit.Kind == LitBool
	case pos == In:
		ok = lit.Kind == LitList && len(lit.List) > 0
		for _, it := range lit.List {
			ok = ok && (it.Kind == LitText || it.Kind == LitNumber)
		}
	case pos == Contains || pos == StartsWith:
		ok = lit.Kind == LitText
	case pos == Exists:
		ok = lit.Kind == 0
	default:
		ok = lit.Kind == LitDuration
	}
	if !ok {
		c.errorf(x.OpAt, "'%s' does not take the value %s", x.Op, literalText(lit))
	}
	return ok
}
