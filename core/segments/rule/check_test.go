package rule

import (
	"reflect"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/core/contacts"
)

// schemaMap is a Schema from a map.
type schemaMap map[string]contacts.Kind

func (m schemaMap) AttributeKind(name string) (contacts.Kind, bool) {
	k, ok := m[name]
	return k, ok
}

var testSchema = schemaMap{
	"country":      contacts.String,
	"birthday":     contacts.String,
	"email":        contacts.String,
	"first name":   contacts.String,
	"address.city": contacts.String,
	"age":          contacts.Number,
	"vip":          contacts.Bool,
	"signed_up_at": contacts.Time,
	"interests":    contacts.List,
}

// TestCheck runs the checker on testdata/check.txt against testSchema: each case's output is "ok" or the errors,
// one per line.
func TestCheck(t *testing.T) {
	runGolden(t, "testdata/check.txt", func(t *testing.T, input string) string {
		n, err := Parse(input)
		if err != nil {
			t.Fatalf("the rule does not parse: %v", err)
		}
		errs := Check(n, testSchema)
		if len(errs) == 0 {
			return "ok"
		}
		lines := make([]string, len(errs))
		for i, e := range errs {
			lines[i] = e.Error()
		}
		return strings.Join(lines, "\n")
	})
}

func TestCheckWithoutSchema(t *testing.T) {
	// Unknown attributes are allowed; what the rule itself says is still checked.
	for rule, want := range map[string]string{
		`country > 5 and age = "x" and vip = true`: "",
		`country > "FR"`: `1:11: only numbers and dates can be compared with '>', and "FR" is not a date: write a date as "2024-01-31" or "2024-01-31T09:00:00Z"`,
		`email > 5`:      "1:7: 'email' is text, so it cannot be compared with > 5",
	} {
		n, err := Parse(rule)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if errs := Check(n, nil); errs != nil {
			got = errs.Error()
		}
		if got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", rule, got, want)
		}
	}
}

// TestCheckGoCode checks the shapes only an AST built in Go code can have.
func TestCheckGoCode(t *testing.T) {
	tests := []struct {
		n    Node
		want string
	}{
		{nil, "a condition is missing (nil)"},
		{&And{Items: []Node{&HasTag{Tag: "a"}}}, "'and' needs at least two conditions"},
		{&Compare{Field: Field{Name: "total", Scope: Property}, Op: Exists}, "event properties such as 'total' are only available inside performed(..., where: ...)"},
		{&Performed{Event: "x", Where: &HasTag{Tag: "a"}}, "only conditions on the event's properties, such as total > 100, are allowed inside where:"},
		{&Performed{Event: "x", Where: &Compare{Field: Field{Name: "country", Scope: Attribute}, Op: Exists}}, "inside where:, names are the event's properties"},
		{&Compare{Field: Field{Name: "nope", Scope: Builtin}, Op: Exists}, "'nope' is not a built-in field"},
		{&Compare{Field: Field{Name: "x", Scope: Attribute}, Op: "~"}, "'~' is not an operator"},
		{&Compare{Field: Field{Name: "x", Scope: Attribute}, Op: In, Value: Literal{Kind: LitText, Text: "a"}}, `'in' does not take the value "a"`},
		{&Compare{Field: Field{Name: "x", Scope: Attribute}, Op: Exists, Value: Literal{Kind: LitBool}}, "'exists' does not take the value false"},
		{&Compare{Field: Field{Name: "bad\x01", Scope: Attribute}, Op: Exists}, "`bad\\u0001` cannot name an attribute: attribute name contains a control character"},
		{&Consent{Channel: "email", Status: contacts.Unknown}, `consent conditions are subscribed(...) and unsubscribed(...), not "unknown"`},
		{&Score{Name: "s", Op: In, Value: 1}, "a score is compared with =, !=, <, <=, > or >=, not 'in'"},
	}
	for _, tt := range tests {
		errs := Check(tt.n, nil)
		if len(errs) != 1 || errs[0].Message != tt.want {
			t.Errorf("Check(%#v) = %v, want %q", tt.n, errs, tt.want)
		}
	}
}

func TestCompile(t *testing.T) {
	if _, err := Compile(`country = "FR"`, testSchema); err != nil {
		t.Fatal(err)
	}
	_, err := Compile(`country > 5`, testSchema)
	errs, ok := err.(Errors)
	if !ok || len(errs) != 1 || errs[0].Line != 1 || errs[0].Column != 9 {
		t.Fatalf("Compile = %#v", err)
	}
	if _, err := Compile(`country >`, testSchema); err == nil {
		t.Fatal("a parse error passed")
	}
}

func TestDependencies(t *testing.T) {
	n, err := Parse(`country = "FR" and score("engagement") > 50 and (performed("Order Completed", within: 30d, count >= 2, where: total > 100 and email exists) or performed("Signed Up"))
		and not in_segment("churned") and subscribed("email") and not unsubscribed("sms") and has_tag("vip") and has_tag("vip")
		and email exists and attributes.email exists and last_seen_at older_than 90d and bucket(10%) and in_segment("a")`)
	if err != nil {
		t.Fatal(err)
	}
	want := Deps{
		Fields:     []string{"email", "last_seen_at"},
		Attributes: []string{"country", "email"},
		Tags:       []string{"vip"},
		Channels:   []string{"email", "sms"},
		Events:     []string{"Order Completed", "Signed Up"},
		Scores:     []string{"engagement"},
		Segments:   []string{"a", "churned"},
		Time:       true,
	}
	if got := Dependencies(n); !reflect.DeepEqual(got, want) {
		t.Errorf("Dependencies =\n%+v\nwant\n%+v", got, want)
	}
	if got := Segments(n); !reflect.DeepEqual(got, []string{"a", "churned"}) {
		t.Errorf("Segments = %v", got)
	}
	for rule, timed := range map[string]bool{
		`created_at > "2024-01-01"`:                            false,
		`performed("x", where: at within 3d)`:                  true,
		`performed("x", within: 3d)`:                           true,
		`not created_at within 3d`:                             true,
		`bucket(50%) and has_tag("a") and performed("Signup")`: false,
	} {
		n, err := Parse(rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := Dependencies(n).Time; got != timed {
			t.Errorf("%s: Time = %v, want %v", rule, got, timed)
		}
	}
	if d := Dependencies(&Bucket{To: 10}); !reflect.DeepEqual(d, Deps{}) {
		t.Errorf("bucket depends on %+v", d)
	}
}
