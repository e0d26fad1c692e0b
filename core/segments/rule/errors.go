package rule

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem with a rule, located in its text (Line and Column, 1-based, the column counted in
// characters) or, for a rule given as JSON, by Path ("$.and[1].op"). Message is written for the marketer who wrote
// the rule.
type Error struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Error returns "line:column: message", "path: message" or the message alone.
func (e Error) Error() string {
	switch {
	case e.Path != "":
		return e.Path + ": " + e.Message
	case e.Line > 0:
		return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message)
	}
	return e.Message
}

// Errors lists the problems found in a rule, in the order they appear. Parse and DecodeJSON return it as their
// error; Check returns it directly (nil when the rule is sound).
type Errors []Error

// Error joins the problems with "; ".
func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, x := range e {
		parts[i] = x.Error()
	}
	return strings.Join(parts, "; ")
}

// maxErrors bounds the problems reported for one rule: past a few, they are mostly consequences of the first ones.
const maxErrors = 10

// errorAt builds an Error at p.
func errorAt(p Pos, format string, args ...any) Error {
	return Error{Line: p.Line, Column: p.Column, Path: p.Path, Message: fmt.Sprintf(format, args...)}
}

// sortErrors orders text errors by position (path errors keep their order) and drops exact duplicates.
func sortErrors(errs Errors) Errors {
	slices.SortStableFunc(errs, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return slices.Compact(errs)
}

// suggest returns ": did you mean 'x'?" for the candidate closest to word, when one is close enough to be a
// likely typo, and "" otherwise.
func suggest(word string, candidates ...string) string {
	word = strings.ToLower(word)
	best, bestD := "", -1
	for _, c := range candidates {
		d := editDistance(word, c)
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len([]rune(word))/3) || bestD >= len([]rune(word)) {
		return ""
	}
	return fmt.Sprintf(": did you mean '%s'?", best)
}

// editDistance is the Levenshtein distance between a and b, in characters.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
