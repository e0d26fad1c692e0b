package rule

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// Pos locates a node or a part of one, for error messages. A node parsed from text has Line and Column (1-based,
// the column counted in characters); a node decoded from JSON has Path ("$.and[1].value"); a node built in Go code
// has neither.
type Pos struct {
	Line, Column int
	Path         string
}

// Node is a condition: *And, *Or, *Not, *Compare, *Score, *HasTag, *Consent, *InSegment, *Bucket or *Performed.
// The set is closed. Every node type encodes itself as JSON (see the package documentation for the form).
type Node interface {
	// Pos returns where the condition starts.
	Pos() Pos
	node()
}

// And holds when every item holds. It has at least two items.
type And struct {
	At    Pos
	Items []Node
}

// Or holds when any item holds. It has at least two items.
type Or struct {
	At    Pos
	Items []Node
}

// Not holds when Item does not.
type Not struct {
	At   Pos
	Item Node
}

// Compare tests one field against a literal: `country = "FR"`, `age >= 18`, `plan in ["pro", "team"]`,
// `phone exists`, `created_at within 7d`. Value is the zero Literal for Exists and NotExists.
type Compare struct {
	Field Field
	Op    Op
	OpAt  Pos
	Value Literal
}

// Score compares a score kept by a scoring plugin with a number: `score("engagement") > 50`. Op is one of the six
// comparison operators.
type Score struct {
	At      Pos
	Name    string
	NameAt  Pos
	Op      Op
	OpAt    Pos
	Value   float64
	ValueAt Pos
}

// HasTag holds when the contact carries Tag: `has_tag("vip")`.
type HasTag struct {
	At    Pos
	Tag   string
	TagAt Pos
}

// Consent holds when the contact's consent on Channel is Status: `subscribed("email")` (contacts.Subscribed) or
// `unsubscribed("sms")` (contacts.Unsubscribed). An unknown consent matches neither.
type Consent struct {
	At        Pos
	Channel   string
	ChannelAt Pos
	Status    contacts.ConsentStatus
}

// InSegment holds when the contact is a member of another segment, named by Ref (its name or id; the caller
// resolves it): `in_segment("churned")`.
type InSegment struct {
	At    Pos
	Ref   string
	RefAt Pos
}

// Bucket holds for a stable pseudo-random share of contacts: those whose BucketOf(Seed, id) falls in
// [From*100, To*100), From and To being percentages with at most two decimals. `bucket(10%)` is From 0, To 10;
// `bucket(10%..30%, seed: "spring")` is From 10, To 30.
type Bucket struct {
	At       Pos
	From, To float64
	RangeAt  Pos
	Seed     string
	SeedAt   Pos
}

// Performed counts the contact's events named Event, within the last Within (nil: any time) and matching Where
// (nil: every event), and compares the count as Count says (nil: at least once):
// `performed("Order Completed", within: 30d, count >= 2, where: total > 100)`.
type Performed struct {
	At       Pos
	Event    string
	EventAt  Pos
	Within   *Duration
	WithinAt Pos
	Count    *Count
	// Where is a condition on the event's properties: *And, *Or, *Not and *Compare whose fields have Scope
	// Property.
	Where Node
}

// Count is the count condition of Performed: `count >= 2`.
type Count struct {
	Op    Op
	Value int64
	At    Pos
}

func (n *And) Pos() Pos       { return n.At }
func (n *Or) Pos() Pos        { return n.At }
func (n *Not) Pos() Pos       { return n.At }
func (n *Compare) Pos() Pos   { return n.Field.At }
func (n *Score) Pos() Pos     { return n.At }
func (n *HasTag) Pos() Pos    { return n.At }
func (n *Consent) Pos() Pos   { return n.At }
func (n *InSegment) Pos() Pos { return n.At }
func (n *Bucket) Pos() Pos    { return n.At }
func (n *Performed) Pos() Pos { return n.At }

func (*And) node()       {}
func (*Or) node()        {}
func (*Not) node()       {}
func (*Compare) node()   {}
func (*Score) node()     {}
func (*HasTag) node()    {}
func (*Consent) node()   {}
func (*InSegment) node() {}
func (*Bucket) node()    {}
func (*Performed) node() {}

// Scope says what a Field names.
type Scope uint8

// Field scopes.
const (
	// Builtin is one of the contact's own fields (see BuiltinKind).
	Builtin Scope = iota + 1
	// Attribute is a custom attribute of the contact.
	Attribute
	// Property is a property of an event, inside performed(..., where: ...).
	Property
)

// Field names what a Compare reads.
type Field struct {
	// Name is the built-in's name, the attribute's name as stored, or the property path.
	Name  string
	Scope Scope
	At    Pos
}

// Ref returns the field's reference as the JSON form writes it: a built-in's name ("email"), an attribute's name
// ("plan", "first name"), prefixed with "attributes." when the name is a built-in's or itself starts with
// "attributes." ("attributes.email"), or a property path.
func (f Field) Ref() string {
	if f.Scope == Attribute && (isBuiltin(f.Name) || strings.HasPrefix(f.Name, attributesPrefix)) {
		return attributesPrefix + f.Name
	}
	return f.Name
}

const attributesPrefix = "attributes."

// builtins are the contact's own fields and their kinds.
var builtins = map[string]contacts.Kind{
	"email":        contacts.String,
	"phone":        contacts.String,
	"user_id":      contacts.String,
	"timezone":     contacts.String,
	"locale":       contacts.String,
	"lifecycle":    contacts.String,
	"created_at":   contacts.Time,
	"last_seen_at": contacts.Time,
}

// BuiltinKind returns the kind of a built-in field: email, phone, user_id, timezone, locale and lifecycle are text
// (contacts.String), created_at and last_seen_at dates (contacts.Time). ok is false for any other name.
func BuiltinKind(name string) (kind contacts.Kind, ok bool) {
	kind, ok = builtins[name]
	return kind, ok
}

func isBuiltin(name string) bool {
	_, ok := builtins[name]
	return ok
}

// Op is a comparison operator, written as in rule text.
type Op string

// Operators. Each negated operator (Ne, NotIn, NotContains, NotStartsWith, NotExists) holds exactly when its
// positive form does not, so a contact without the field matches it.
const (
	Eq            Op = "="
	Ne            Op = "!="
	Lt            Op = "<"
	Le            Op = "<="
	Gt            Op = ">"
	Ge            Op = ">="
	In            Op = "in"
	NotIn         Op = "not in"
	Contains      Op = "contains"
	NotContains   Op = "not contains"
	StartsWith    Op = "starts_with"
	NotStartsWith Op = "not starts_with"
	Exists        Op = "exists"
	NotExists     Op = "not exists"
	// Within holds for a date in the last Value (a duration), now included.
	Within Op = "within"
	// OlderThan holds for a date more than Value (a duration) ago.
	OlderThan Op = "older_than"
)

// positive returns the operator that op negates, and whether op is a negation.
func (op Op) positive() (Op, bool) {
	switch op {
	case Ne:
		return Eq, true
	case NotIn:
		return In, true
	case NotContains:
		return Contains, true
	case NotStartsWith:
		return StartsWith, true
	case NotExists:
		return Exists, true
	}
	return op, false
}

// isComparison reports whether op is one of = != < <= > >=.
func (op Op) isComparison() bool {
	switch op {
	case Eq, Ne, Lt, Le, Gt, Ge:
		return true
	}
	return false
}

func (op Op) isOrdering() bool { return op == Lt || op == Le || op == Gt || op == Ge }

// valid reports whether op is a known operator.
func (op Op) valid() bool {
	switch op {
	case Eq, Ne, Lt, Le, Gt, Ge, In, NotIn, Contains, NotContains, StartsWith, NotStartsWith, Exists, NotExists,
		Within, OlderThan:
		return true
	}
	return false
}

// LiteralKind is the type of a Literal.
type LiteralKind uint8

// Literal kinds. The zero kind is "no value" (the exists operators).
const (
	LitText LiteralKind = iota + 1
	LitNumber
	LitBool
	LitDuration
	// LitList is a list of LitText and LitNumber items, for In and NotIn.
	LitList
)

// Literal is a value written in a rule. A text literal compared with a date is a date: "2024-01-31" (a whole UTC
// day) or RFC 3339 ("2024-01-31T09:00:00Z").
type Literal struct {
	Kind     LiteralKind
	Text     string
	Number   float64
	Bool     bool
	Duration Duration
	List     []Literal
	At       Pos
}

// Unit is a duration unit.
type Unit byte

// Duration units.
const (
	Minute Unit = 'm'
	Hour   Unit = 'h'
	Day    Unit = 'd'
	Week   Unit = 'w'
)

// size returns the unit's length.
func (u Unit) size() time.Duration {
	switch u {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	case Week:
		return 7 * 24 * time.Hour
	}
	return 0
}

// Duration is a length of time as written in a rule: N units ("30d"). A day is 24 hours and a week 7 days.
type Duration struct {
	N    int64
	Unit Unit
}

// MaxWindow is the longest window a rule may use: ten years, leap days included. Longer, zero and negative windows
// are checker errors.
const MaxWindow = 3653 * 24 * time.Hour

// String returns the duration as written in rules ("30d").
func (d Duration) String() string { return strconv.FormatInt(d.N, 10) + string(d.Unit) }

// Std returns the duration as a time.Duration, saturated at the largest and smallest ones.
func (d Duration) Std() time.Duration {
	u := d.Unit.size()
	if u == 0 {
		return 0
	}
	if d.N > int64(math.MaxInt64/u) {
		return math.MaxInt64
	}
	if d.N < int64(math.MinInt64/u) {
		return math.MinInt64
	}
	return time.Duration(d.N) * u
}

// ParseDuration parses a duration as rules write it: an optional minus sign, digits and one unit of m (minutes),
// h (hours), d (days) or w (weeks), such as "30d".
func ParseDuration(s string) (Duration, error) {
	if len(s) < 2 {
		return Duration{}, fmt.Errorf("%q is not a duration such as 30d", s)
	}
	u := Unit(s[len(s)-1])
	if u.size() == 0 {
		return Duration{}, fmt.Errorf("%q is not a duration such as 30d: the unit is m, h, d or w", s)
	}
	digits := s[:len(s)-1]
	if strings.HasPrefix(digits, "+") {
		return Duration{}, fmt.Errorf("%q is not a duration such as 30d", s)
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return Duration{}, fmt.Errorf("%q is too long a duration", s)
		}
		return Duration{}, fmt.Errorf("%q is not a duration such as 30d", s)
	}
	return Duration{N: n, Unit: u}, nil
}
