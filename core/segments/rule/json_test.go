package rule

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// TestDecodeJSONErrors decodes the JSON of testdata/json_errors.txt, which must all fail, and lists the errors.
func TestDecodeJSONErrors(t *testing.T) {
	runGolden(t, "testdata/json_errors.txt", func(t *testing.T, input string) string {
		n, err := DecodeJSON([]byte(input))
		if err == nil {
			t.Fatalf("DecodeJSON accepted it: %s", Format(n))
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("the error is %T, want Errors", err)
		}
		lines := make([]string, len(errs))
		for i, e := range errs {
			lines[i] = e.Error()
		}
		return strings.Join(lines, "\n")
	})
}

// TestJSONExample pins the JSON form of the example, and that json.Marshal uses it for a Node in a struct.
func TestJSONExample(t *testing.T) {
	n, err := Parse(`country = "FR" and score("engagement") > 50 and performed("Order Completed", within: 30d, count >= 2, where: total > 100) and not in_segment("churned") and subscribed("email") and bucket(10%, seed: "holdout-1")`)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"and":[` +
		`{"field":"country","op":"=","value":"FR"},` +
		`{"score":"engagement","op":">","value":50},` +
		`{"performed":{"event":"Order Completed","within":"30d","count":{"op":">=","value":2},"where":{"field":"total","op":">","value":100}}},` +
		`{"not":{"in_segment":"churned"}},` +
		`{"subscribed":"email"},` +
		`{"bucket":{"from":0,"to":10,"seed":"holdout-1"}}]}`
	got, err := marshalNode(n)
	if err != nil || string(got) != want {
		t.Fatalf("JSON form:\n%s\nwant\n%s (%v)", got, want, err)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Rule Node `json:"rule"`
	}{n}); err != nil {
		t.Fatal(err)
	}
	if b.String() != `{"rule":`+want+"}\n" {
		t.Errorf("in a struct: %s", b.String())
	}
	back, err := DecodeJSON([]byte(want))
	if err != nil || !sameRule(n, back) {
		t.Fatalf("DecodeJSON: %v", err)
	}
	if p := back.(*And).Items[2].(*Performed).Where.(*Compare).Value.At.Path; p != "$.and[2].performed.where.value" {
		t.Errorf("JSON positions: %q", p)
	}
}

func TestJSONCheckPaths(t *testing.T) {
	n, err := DecodeJSON([]byte(`{"and": [{"field": "country", "op": ">", "value": 5}, {"performed": {"event": "x", "within": "0d"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := Check(n, testSchema).Error()
	want := "$.and[0].op: 'country' is text, so it cannot be compared with > 5; " +
		"$.and[1].performed.within: 'within: 0d' is an empty window: use a duration of at least 1m"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestJSONLimits(t *testing.T) {
	// The deepest rule Parse takes decodes from JSON, and one level more is refused by both.
	for depth, ok := range map[int]bool{MaxDepth: true, MaxDepth + 1: false} {
		text := strings.Repeat("not ", depth) + "a exists"
		var b strings.Builder
		b.WriteString(strings.Repeat(`{"not":`, depth) + `{"field":"a","op":"exists"}` + strings.Repeat("}", depth))
		_, perr := Parse(text)
		_, jerr := DecodeJSON([]byte(b.String()))
		if (perr == nil) != ok || (jerr == nil) != ok {
			t.Errorf("depth %d: Parse %v, DecodeJSON %v", depth, perr, jerr)
		}
	}
	// Alternating and/or: the text needs parentheses only for an or inside an and.
	inner := `{"field":"a","op":"exists"}`
	for range 2 * MaxDepth {
		inner = `{"and":[{"or":[` + inner + `,{"has_tag":"x"}]},{"has_tag":"y"}]}`
	}
	if _, err := DecodeJSON([]byte(inner)); err == nil || !strings.Contains(err.Error(), "levels deep") {
		t.Errorf("alternating and/or: %v", err)
	}
	if _, err := DecodeJSON([]byte(strings.Repeat("[", 100000))); err == nil {
		t.Error("deep JSON accepted")
	}
	big := `{"has_tag":"` + strings.Repeat("a", MaxJSONBytes) + `"}`
	if _, err := DecodeJSON([]byte(big)); err == nil || !strings.Contains(err.Error(), "the limit is 65536 bytes") {
		t.Errorf("big JSON: %v", err)
	}
	wide := `{"has_tag":"` + strings.Repeat("a", MaxRuleBytes) + `"}`
	if _, err := DecodeJSON([]byte(wide)); err == nil || !strings.Contains(err.Error(), "text form is 16395 bytes") {
		t.Errorf("JSON with a long text form: %v", err)
	}
}

func TestMarshalInvalid(t *testing.T) {
	for _, n := range []Node{
		&And{Items: []Node{&HasTag{Tag: "a"}, nil}},
		&Score{Name: "s", Op: Gt, Value: math.Inf(1)},
	} {
		if _, err := json.Marshal(n); err == nil {
			t.Errorf("%#v encoded", n)
		}
	}
}
