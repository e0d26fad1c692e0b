package segments

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments/rule"
)

// ParseRule reads a rule given as text (a JSON string) or as the JSON form of its syntax tree (an object), and
// checks it against the attribute kinds schema knows (nil: none). Segment references are checked against the
// workspace by the service. Problems come back as an *errs.ValidationError whose fields are "rule" and whose
// messages start with the line and column (text) or the JSON path (object) of each problem.
func ParseRule(raw json.RawMessage, schema rule.Schema) (rule.Node, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errs.Invalid("rule", "is required: a rule such as country = \"FR\" and has_tag(\"vip\")")
	}
	var n rule.Node
	var err error
	var text string
	if json.Unmarshal(raw, &text) == nil {
		n, err = rule.Parse(text)
	} else {
		n, err = rule.DecodeJSON(raw)
	}
	if err == nil {
		if problems := rule.Check(n, schema); len(problems) > 0 {
			err = problems
		}
	}
	return n, ruleProblems(err)
}

// ParseRule reads and checks a rule for workspace ws, knowing the kinds of its attributes (country > 5 is refused
// when every contact's country is text).
func (s *Service) ParseRule(ctx context.Context, ws string, raw json.RawMessage) (rule.Node, error) {
	ix, err := s.space(ctx, ws)
	if err != nil {
		return nil, err
	}
	return ParseRule(raw, ix)
}

// ruleProblems turns rule errors into one validation error on the field "rule".
func ruleProblems(err error) error {
	var list rule.Errors
	if err == nil || !errors.As(err, &list) {
		return err
	}
	v := &errs.ValidationError{}
	for _, e := range list {
		v.Add("rule", "%s", e.Error())
	}
	return v
}

// Preview is the result of evaluating a rule without saving it.
type Preview struct {
	// Count is how many contacts match.
	Count int `json:"count"`
	// Sample holds up to the requested number of matching contacts, oldest first.
	Sample []contacts.Contact `json:"sample"`
	// Scanned is how many contacts were evaluated.
	Scanned int `json:"scanned"`
}

// Preview evaluates n against every contact of the workspace, now, and returns the count and a sample.
func (s *Service) Preview(ctx context.Context, ws string, n rule.Node, sample int) (Preview, error) {
	ix, err := s.space(ctx, ws)
	if err != nil {
		return Preview{}, err
	}
	cat, err := s.catalog(ctx, ws)
	if err != nil {
		return Preview{}, err
	}
	if err := cat.check("", n); err != nil {
		return Preview{}, err
	}
	out := Preview{Scanned: ix.Len()}
	var ids []string
	out.Count, ids = ix.Preview(ctx, n, s.now().UTC(), sample)
	if out.Sample, err = s.load(ctx, ws, ids); err != nil {
		return Preview{}, err
	}
	return out, nil
}
