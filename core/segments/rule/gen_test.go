package rule

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// gen builds random rules of every shape Parse and DecodeJSON can return, with awkward names and values: keywords,
// built-in names, the attributes. prefix, quotes, backslashes, control and invisible characters, extreme numbers.
type gen struct {
	r *rand.Rand
}

var awkward = []string{
	"", "a", "FR", "and", "NOT", "in", "true", "email", "attributes.email", "attributes.", "attributes", "first name",
	"a.b", "a..b", ".a", "a.", "9lives", "_x", "prénom", "日本", "x`y", `say "hi"`, `back\slash`, "tab\there",
	"line\nbreak", "nul\x00", "bell\a", "\u202eevil", "nbsp\u00a0", "emoji 🎉", "\U0001F600", "del\x7f", "\ufeffbom",
	"a-b", "score", "performed", "has_tag", "count", "where", "within", "%", "..", "(", ")", "[", "]", ",", ":",
}

func (g *gen) text() string {
	if g.r.IntN(3) > 0 {
		return awkward[g.r.IntN(len(awkward))]
	}
	var b strings.Builder
	for range g.r.IntN(8) {
		var r rune
		switch g.r.IntN(4) {
		case 0:
			r = rune(g.r.IntN(0x80))
		case 1:
			r = rune(g.r.IntN(0x3000))
		default:
			r = rune(g.r.IntN(0x110000))
		}
		if r >= 0xd800 && r <= 0xdfff {
			r = 'x'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (g *gen) name() string {
	for {
		if s := g.text(); s != "" {
			return s
		}
	}
}

func (g *gen) number() float64 {
	pool := []float64{0, 1, -1, 0.5, -0.5, 12.25, 100, 1e6, 1e21, 1e-7, 1e-6, 123456789.125, math.MaxFloat64,
		math.SmallestNonzeroFloat64, -1e300}
	if g.r.IntN(2) == 0 {
		return pool[g.r.IntN(len(pool))]
	}
	for {
		if f := math.Float64frombits(g.r.Uint64()); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	}
}

func (g *gen) int64() int64 {
	pool := []int64{0, 1, 2, -1, 30, math.MaxInt64, math.MinInt64}
	if g.r.IntN(2) == 0 {
		return pool[g.r.IntN(len(pool))]
	}
	return int64(g.r.Uint64())
}

func (g *gen) duration() Duration {
	units := []Unit{Minute, Hour, Day, Week}
	return Duration{N: g.int64(), Unit: units[g.r.IntN(len(units))]}
}

var comparisonOps = []Op{Eq, Ne, Lt, Le, Gt, Ge}

func (g *gen) comparisonOp() Op { return comparisonOps[g.r.IntN(len(comparisonOps))] }

func (g *gen) scalar() Literal {
	switch g.r.IntN(3) {
	case 0:
		return Literal{Kind: LitText, Text: g.text()}
	case 1:
		return Literal{Kind: LitNumber, Number: g.number()}
	}
	return Literal{Kind: LitBool, Bool: g.r.IntN(2) == 0}
}

func (g *gen) field(where bool) Field {
	if where {
		return Field{Name: g.name(), Scope: Property}
	}
	if g.r.IntN(3) == 0 {
		names := make([]string, 0, len(builtins))
		for n := range builtins {
			names = append(names, n)
		}
		slices.Sort(names)
		return Field{Name: names[g.r.IntN(len(names))], Scope: Builtin}
	}
	return Field{Name: g.name(), Scope: Attribute}
}

func (g *gen) compare(where bool) *Compare {
	c := &Compare{Field: g.field(where)}
	ops := []Op{Eq, Ne, Lt, Le, Gt, Ge, In, NotIn, Contains, NotContains, StartsWith, NotStartsWith, Exists, NotExists, Within, OlderThan}
	c.Op = ops[g.r.IntN(len(ops))]
	pos, _ := c.Op.positive()
	switch {
	case c.Op.isComparison():
		c.Value = g.scalar()
	case pos == In:
		c.Value = Literal{Kind: LitList}
		for range 1 + g.r.IntN(3) {
			if g.r.IntN(2) == 0 {
				c.Value.List = append(c.Value.List, Literal{Kind: LitText, Text: g.text()})
			} else {
				c.Value.List = append(c.Value.List, Literal{Kind: LitNumber, Number: g.number()})
			}
		}
	case pos == Contains || pos == StartsWith:
		c.Value = Literal{Kind: LitText, Text: g.text()}
	case pos == Exists:
	default:
		c.Value = Literal{Kind: LitDuration, Duration: g.duration()}
	}
	return c
}

// node returns a random rule at most depth levels deep; inside where it only makes property conditions.
func (g *gen) node(depth int, where bool) Node {
	leaves := 7
	if where {
		leaves = 1
	}
	k := g.r.IntN(leaves + 3)
	if depth <= 0 {
		k = g.r.IntN(leaves)
	}
	if k >= leaves {
		switch k - leaves {
		case 0:
			return &Not{Item: g.node(depth-1, where)}
		case 1:
			return &And{Items: g.items(depth, where)}
		}
		return &Or{Items: g.items(depth, where)}
	}
	switch k {
	case 0:
		return g.compare(where)
	case 1:
		return &Score{Name: g.text(), Op: g.comparisonOp(), Value: g.number()}
	case 2:
		return &HasTag{Tag: g.text()}
	case 3:
		st := contacts.Subscribed
		if g.r.IntN(2) == 0 {
			st = contacts.Unsubscribed
		}
		return &Consent{Channel: g.text(), Status: st}
	case 4:
		return &InSegment{Ref: g.text()}
	case 5:
		b := &Bucket{To: g.number(), Seed: []string{"", "", "holdout-1", g.text()}[g.r.IntN(4)]}
		if g.r.IntN(2) == 0 {
			b.From = g.number()
		}
		return b
	case 6:
		p := &Performed{Event: g.text()}
		if g.r.IntN(2) == 0 {
			d := g.duration()
			p.Within = &d
		}
		if g.r.IntN(2) == 0 {
			p.Count = &Count{Op: g.comparisonOp(), Value: g.int64()}
		}
		if g.r.IntN(2) == 0 {
			p.Where = g.node(depth-1, true)
		}
		return p
	}
	panic("unreachable")
}

func (g *gen) items(depth int, where bool) []Node {
	items := make([]Node, 2+g.r.IntN(3))
	for i := range items {
		items[i] = g.node(depth-1, where)
	}
	return items
}

// TestRoundTripRandom checks, on random rules, that the text and JSON forms both read back as the same rule, that
// canonical text is stable, and that checking and evaluating never panic.
func TestRoundTripRandom(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	subject := sampleSubject()
	for i := range 3000 {
		n := g.node(5, false)
		text := Format(n)
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("rule %d: Parse(Format(n)) failed: %v\ntext: %s", i, err, text)
		}
		if !sameRule(n, back) {
			t.Fatalf("rule %d: Parse(Format(n)) differs\ntext: %s\nback: %s", i, text, Format(back))
		}
		if again := Format(back); again != text {
			t.Fatalf("rule %d: Format is not stable:\n%s\n%s", i, text, again)
		}
		data, err := marshalNode(n)
		if err != nil {
			t.Fatalf("rule %d: encoding: %v", i, err)
		}
		decoded, err := DecodeJSON(data)
		if err != nil {
			t.Fatalf("rule %d: DecodeJSON failed: %v\njson: %s", i, err, data)
		}
		if !sameRule(n, decoded) {
			t.Fatalf("rule %d: DecodeJSON(json) differs\njson: %s\nback: %s", i, data, Format(decoded))
		}
		Check(n, testSchema)
		Eval(n, subject, now)
		NextChange(n, subject, now)
		Dependencies(n)
	}
}
