package wire

import (
	"bytes"
	"fmt"
	"math"
)

// ScoreRequest is the input of a scorer's score: a batch of contacts of one workspace to score.
type ScoreRequest struct {
	// NowUnixMilli is the host's clock: scorers use it, not their own, to age events, so a batch is scored at one
	// instant and tests can fix it.
	NowUnixMilli int64
	Workspace    string
	Items        []ScoreItem
}

// ScoreItem is one contact to score.
type ScoreItem struct {
	ContactID string
	// Traits are the contact's attributes (plan, country, created_at...), as the host stores them.
	Traits Pairs
	// Events are the contact's events since the previous scoring of this contact by this plugin (all of them the
	// first time, within the host's retention), oldest first.
	Events []ScoreEvent
	// State is what the plugin returned for this contact last time (ScoreResult.State), or empty the first time:
	// running counts, decayed sums, a model's features.
	State []byte
}

// ScoreEvent is an event of a contact's history.
type ScoreEvent struct {
	Name        string // "email_opened", "page_viewed", "Signed Up"
	AtUnixMilli int64
	Properties  Pairs
}

// ScoreResponse is the output of score: one result per item, in any order, matched by ContactID.
type ScoreResponse struct {
	Results []ScoreResult
}

// ScoreResult is a scorer's answer for one contact.
type ScoreResult struct {
	ContactID string
	// Scores are the contact's new scores, by name; segments and the admin read them. A finite value and a
	// non-empty name each, no name twice.
	Scores []Score
	// Reasons explain the scores to a human ("opened 3 emails this week"), most important first.
	Reasons []string
	// State is opaque bytes the host stores for this contact and plugin and gives back as ScoreItem.State next
	// time; empty clears it.
	State []byte
}

// Score is one named score.
type Score struct {
	Name  string
	Value float64
}

// Encode appends the request's encoding to w.
func (q *ScoreRequest) Encode(w *Writer) {
	w.I64(q.NowUnixMilli)
	w.String(q.Workspace)
	w.U32(uint32(len(q.Items)))
	for i := range q.Items {
		it := &q.Items[i]
		w.String(it.ContactID)
		w.Pairs(it.Traits)
		w.U32(uint32(len(it.Events)))
		for j := range it.Events {
			e := &it.Events[j]
			w.String(e.Name)
			w.I64(e.AtUnixMilli)
			w.Pairs(e.Properties)
		}
		w.Bytes32(it.State)
	}
}

// DecodeScoreRequest decodes a ScoreRequest and checks nothing follows it. It reads from one private copy of b:
// strings share one copy (as with NewReader) and each State is a slice of the other, so a batch costs a few
// allocations rather than several per item, and nothing aliases b.
func DecodeScoreRequest(b []byte) (ScoreRequest, error) {
	r := NewReader(bytes.Clone(b))
	q := ScoreRequest{NowUnixMilli: r.I64(), Workspace: r.String()}
	n := r.Count(4 + 4 + 4 + 4) // an empty id, map, list and state
	if n > 0 {
		q.Items = make([]ScoreItem, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		it := &q.Items[i]
		it.ContactID = r.String()
		it.Traits = r.Pairs()
		if m := r.Count(4 + 8 + 4); m > 0 { // an empty name, a time, an empty map
			it.Events = make([]ScoreEvent, m)
			for j := 0; j < m && r.Err() == nil; j++ {
				e := &it.Events[j]
				e.Name = r.String()
				e.AtUnixMilli = r.I64()
				e.Properties = r.Pairs()
			}
		}
		it.State = sharedBytes(r)
	}
	return q, r.End()
}

// Encode appends the response's encoding to w.
func (p *ScoreResponse) Encode(w *Writer) {
	w.U32(uint32(len(p.Results)))
	for i := range p.Results {
		res := &p.Results[i]
		w.String(res.ContactID)
		w.U32(uint32(len(res.Scores)))
		for _, s := range res.Scores {
			w.String(s.Name)
			w.F64(s.Value)
		}
		w.U32(uint32(len(res.Reasons)))
		for _, reason := range res.Reasons {
			w.String(reason)
		}
		w.Bytes32(res.State)
	}
}

// DecodeScoreResponse decodes a ScoreResponse, refusing scores without a name, named twice in a result, or whose
// value is NaN or infinite, and trailing bytes. Each string and state is a copy of its own: the host keeps them
// after the plugin's output buffer is gone.
func DecodeScoreResponse(b []byte) (ScoreResponse, error) {
	r := NewFieldReader(b)
	var p ScoreResponse
	n := r.Count(4 + 4 + 4 + 4) // an empty id, two empty lists, an empty state
	if n > 0 {
		p.Results = make([]ScoreResult, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		res := &p.Results[i]
		res.ContactID = r.String()
		if m := r.Count(4 + 8); m > 0 { // an empty name and a value
			res.Scores = make([]Score, m)
			for j := 0; j < m && r.Err() == nil; j++ {
				s := Score{Name: r.String(), Value: r.F64()}
				res.Scores[j] = s
				if r.Err() != nil {
					break
				}
				if err := checkScore(res.Scores[:j], s); err != nil {
					r.Fail(fmt.Errorf("wire: result %d (contact %q): %w", i, res.ContactID, err))
				}
			}
		}
		if m := r.Count(4); m > 0 {
			res.Reasons = make([]string, m)
			for j := 0; j < m && r.Err() == nil; j++ {
				res.Reasons[j] = r.String()
			}
		}
		res.State = copyBytes(r.Bytes32())
	}
	return p, r.End()
}

// checkScore reports why s cannot follow the scores before it in a result. Results carry a handful of scores: a
// linear search is the cheapest check.
func checkScore(before []Score, s Score) error {
	if s.Name == "" {
		return fmt.Errorf("a score has no name")
	}
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return fmt.Errorf("score %q is %v, not a finite number", s.Name, s.Value)
	}
	for _, b := range before {
		if b.Name == s.Name {
			return fmt.Errorf("score %q is given twice", s.Name)
		}
	}
	return nil
}
