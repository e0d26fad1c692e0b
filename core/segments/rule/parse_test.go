package rule

import (
	"cmp"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
)

// TestFormat parses the rules of testdata/format.txt and writes their canonical text and JSON form; each must read
// back as the same rule from both.
func TestFormat(t *testing.T) {
	runGolden(t, "testdata/format.txt", func(t *testing.T, input string) string {
		n, err := Parse(input)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		text := Format(n)
		back, err := Parse(text)
		if err != nil || !sameRule(n, back) || Format(back) != text {
			t.Errorf("the canonical text does not read back as the same rule (%v): %s", err, text)
		}
		data, err := marshalNode(n)
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := DecodeJSON(data)
		if err != nil || !sameRule(n, decoded) {
			t.Errorf("the JSON form does not read back as the same rule (%v): %s", err, data)
		}
		return text + "\n" + string(data)
	})
}

// TestParseErrors parses the rules of testdata/parse_errors.txt, which must all fail, and lists their errors.
func TestParseErrors(t *testing.T) {
	runGolden(t, "testdata/parse_errors.txt", func(t *testing.T, input string) string {
		n, err := Parse(input)
		if err == nil {
			t.Fatalf("Parse accepted it: %s", Format(n))
		}
		if n != nil {
			t.Errorf("Parse returned a rule with its error")
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("the error is %T, want Errors", err)
		}
		lines := make([]string, len(errs))
		for i, e := range errs {
			if e.Line < 1 || e.Column < 1 {
				t.Errorf("error without a position: %v", e)
			}
			lines[i] = e.Error()
		}
		return strings.Join(lines, "\n")
	})
}

func TestParseTree(t *testing.T) {
	n, err := Parse("country = \"FR\"\n  and not performed(\"Order Completed\", where: total > 100)")
	if err != nil {
		t.Fatal(err)
	}
	want := &And{At: Pos{Line: 1, Column: 1}, Items: []Node{
		&Compare{
			Field: Field{Name: "country", Scope: Attribute, At: Pos{Line: 1, Column: 1}},
			Op:    Eq, OpAt: Pos{Line: 1, Column: 9},
			Value: Literal{Kind: LitText, Text: "FR", At: Pos{Line: 1, Column: 11}},
		},
		&Not{At: Pos{Line: 2, Column: 7}, Item: &Performed{
			At: Pos{Line: 2, Column: 11}, Event: "Order Completed", EventAt: Pos{Line: 2, Column: 21},
			Where: &Compare{
				Field: Field{Name: "total", Scope: Property, At: Pos{Line: 2, Column: 47}},
				Op:    Gt, OpAt: Pos{Line: 2, Column: 53},
				Value: Literal{Kind: LitNumber, Number: 100, At: Pos{Line: 2, Column: 55}},
			},
		}},
	}}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("got  %#v\nwant %#v", n, want)
	}
}

func TestParseFieldScopes(t *testing.T) {
	tests := []struct {
		text   string
		want   Field
		format string // when Format writes it another way
	}{
		{"email", Field{Name: "email", Scope: Builtin}, ""},
		{"Email", Field{Name: "Email", Scope: Attribute}, ""},
		{"attributes.email", Field{Name: "email", Scope: Attribute}, ""},
		{"`email`", Field{Name: "email", Scope: Attribute}, "attributes.email"},
		{"attributes.plan", Field{Name: "plan", Scope: Attribute}, "plan"},
		{"attributes.attributes.x", Field{Name: "attributes.x", Scope: Attribute}, ""},
		{"`attributes.x`", Field{Name: "attributes.x", Scope: Attribute}, "attributes.attributes.x"},
		{"attributes", Field{Name: "attributes", Scope: Attribute}, ""},
		{"`first name`", Field{Name: "first name", Scope: Attribute}, ""},
		{"`in`", Field{Name: "in", Scope: Attribute}, ""},
		{"score", Field{Name: "score", Scope: Attribute}, ""},
		{"address.city", Field{Name: "address.city", Scope: Attribute}, ""},
		{"items.0.sku", Field{Name: "items.0.sku", Scope: Attribute}, ""},
		{"prénom", Field{Name: "prénom", Scope: Attribute}, ""},
	}
	for _, tt := range tests {
		n, err := Parse(tt.text + " exists")
		if err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		got := n.(*Compare).Field
		got.At = Pos{}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.text, got, tt.want)
		}
		want := cmp.Or(tt.format, tt.text)
		if f := fieldText(got); f != want {
			t.Errorf("%s: formats as %s, want %s", tt.text, f, want)
		}
	}
}

func TestParseLimits(t *testing.T) {
	long := strings.Repeat(`has_tag("a") and `, MaxRuleBytes/17) + `has_tag("a")`
	if len(long) > MaxRuleBytes {
		t.Fatal("the test rule is too long")
	}
	if _, err := Parse(long); err != nil {
		t.Errorf("a rule of %d bytes: %v", len(long), err)
	}
	tooLong := long + strings.Repeat(" ", MaxRuleBytes)
	if _, err := Parse(tooLong); err == nil || !strings.Contains(err.Error(), "the limit is 16384 bytes") {
		t.Errorf("a rule over the limit: %v", err)
	}

	deep := strings.Repeat("not ", MaxDepth) + "a exists"
	if _, err := Parse(deep); err != nil {
		t.Errorf("%d levels: %v", MaxDepth, err)
	}
	for _, tooDeep := range []string{
		strings.Repeat("not ", MaxDepth+1) + "a exists",
		strings.Repeat("(", MaxDepth+1) + "a exists" + strings.Repeat(")", MaxDepth+1),
		strings.Repeat("(", 5000),
		strings.Repeat("not (", 40) + "performed(\"x\", where: " + strings.Repeat("(", 30) + "a exists",
	} {
		_, err := Parse(tooDeep)
		var errs Errors
		if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Message, "nests more than 64 levels") {
			t.Errorf("too deep: %v", err)
		}
	}

	_, err := Parse("country = \"FR\" and\xff")
	if err == nil || err.Error() != "1:19: the rule is not valid UTF-8 text" {
		t.Errorf("invalid UTF-8: %v", err)
	}

	// Many mistakes give at most ten errors.
	_, err = Parse(strings.Repeat("a = and ", 100) + "a = 1")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != maxErrors {
		t.Errorf("many mistakes: %d errors", len(errs))
	}
}

func TestParseCaseInsensitiveKeywords(t *testing.T) {
	a, err := Parse(`NOT Country IN ["FR"] AND Has_Tag("x") Or SUBSCRIBED("email") and x = TRUE and PERFORMED("e", WITHIN: 1d, COUNT > 1, Where: p Exists)`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(`not Country in ["FR"] and has_tag("x") or subscribed("email") and x = true and performed("e", within: 1d, count > 1, where: p exists)`)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRule(a, b) {
		t.Errorf("keywords are case-sensitive:\n%s\n%s", Format(a), Format(b))
	}
	if c := a.(*Or).Items[1].(*And).Items[0].(*Consent); c.Status != contacts.Subscribed {
		t.Errorf("SUBSCRIBED: %+v", c)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]string{
		"30d": "30d", "-3d": "-3d", "007w": "7w", "90m": "90m", "1h": "1h",
		"3": `"3" is not a duration such as 30d`, "d": `"d" is not a duration such as 30d`,
		"+3d": `"+3d" is not a duration such as 30d`, "3x": `"3x" is not a duration such as 30d: the unit is m, h, d or w`,
		"3 d": `"3 d" is not a duration such as 30d`, "99999999999999999999d": `"99999999999999999999d" is too long a duration`,
	} {
		d, err := ParseDuration(in)
		got := d.String()
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("ParseDuration(%q) = %s, want %s", in, got, want)
		}
	}
	for d, want := range map[Duration]time.Duration{
		{N: 90, Unit: Minute}:              90 * time.Minute,
		{N: 2, Unit: Week}:                 14 * 24 * time.Hour,
		{N: math.MaxInt64, Unit: Day}:      math.MaxInt64,
		{N: math.MinInt64 + 1, Unit: Hour}: math.MinInt64,
		{N: 5}:                             0,
	} {
		if got := d.Std(); got != want {
			t.Errorf("%v.Std() = %v, want %v", d, got, want)
		}
	}
}
