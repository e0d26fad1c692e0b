package rule

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/crosscast/crosscast/core/contacts"
)

// Limits on a rule, so that no input can make parsing or evaluation costly.
const (
	// MaxRuleBytes bounds the text of a rule.
	MaxRuleBytes = 16 << 10
	// MaxDepth bounds nesting: each parenthesis, not and where: adds a level.
	MaxDepth = 64
)

// reserved are the keywords, which cannot be bare field names (write `in` in backquotes for an attribute named in).
// Keywords are case-insensitive.
var reserved = []string{"and", "or", "not", "in", "contains", "starts_with", "exists", "within", "older_than", "true", "false"}

func isReserved(word string) bool {
	for _, k := range reserved {
		if strings.EqualFold(word, k) {
			return true
		}
	}
	return false
}

// functions are the function names, in the order messages list them.
var functions = []string{"has_tag", "subscribed", "unsubscribed", "score", "performed", "in_segment", "bucket"}

// Parse reads a rule's text. On failure the error is an Errors listing each problem with its line and column,
// several when they are independent; the Node is then nil. Parse checks syntax only: run Check on the result for
// types, arguments and windows (Compile does both).
func Parse(text string) (Node, error) {
	if len(text) > MaxRuleBytes {
		return nil, Errors{{Line: 1, Column: 1, Message: fmt.Sprintf("the rule is %d bytes long; the limit is %d bytes", len(text), MaxRuleBytes)}}
	}
	if !utf8.ValidString(text) {
		i := 0
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		return nil, Errors{errorAt(positionOf(text, i), "the rule is not valid UTF-8 text")}
	}
	toks, lexErrs := lex(text)
	p := &parser{toks: toks, errs: lexErrs, tok: toks[0]}
	if p.tok.kind == tEOF {
		if len(p.errs) == 0 {
			p.errs = append(p.errs, Error{Line: 1, Column: 1, Message: "the rule is empty"})
		}
		return nil, sortErrors(p.errs)
	}
	n := p.parseOr()
	if p.tok.kind != tEOF {
		if p.tok.kind == tRParen {
			p.fail("this ')' has no matching '('")
		} else {
			p.fail("expected 'and' or 'or' before %s", p.tok.describe())
		}
	}
	if len(p.errs) > 0 {
		errs := sortErrors(p.errs)
		return nil, errs[:min(len(errs), maxErrors)]
	}
	return n, nil
}

// positionOf returns the line and column (in characters) of byte offset off in text.
func positionOf(text string, off int) Pos {
	p := Pos{Line: 1, Column: 1}
	for i, r := range text {
		if i >= off {
			break
		}
		if r == '\n' {
			p.Line++
			p.Column = 1
		} else {
			p.Column++
		}
	}
	return p
}

// parser is a recursive-descent parser over the lexer's tokens. After an error it skips to the next place where
// parsing can resume (the next and/or, comma or closing bracket) so that independent mistakes are all reported.
type parser struct {
	toks    []token
	i       int
	tok     token
	errs    Errors
	depth   int
	where   bool // inside performed(..., where: ...): names are event properties
	stopped bool // a fatal error (too deep, too many errors): report nothing more
}

func (p *parser) next() {
	if p.i < len(p.toks)-1 {
		p.i++
	}
	p.tok = p.toks[p.i]
}

func (p *parser) peekKind() tokKind { return p.toks[min(p.i+1, len(p.toks)-1)].kind }

func (p *parser) errorf(at Pos, format string, args ...any) {
	// A second error at the same place is a consequence of the first.
	if p.stopped || len(p.errs) > 0 && p.errs[len(p.errs)-1].Line == at.Line && p.errs[len(p.errs)-1].Column == at.Column {
		return
	}
	p.errs = append(p.errs, errorAt(at, format, args...))
	if len(p.errs) >= maxErrors {
		p.stop()
	}
}

// fail reports a problem at the current token, unless the lexer already reported that token.
func (p *parser) fail(format string, args ...any) {
	if p.tok.kind != tIllegal {
		p.errorf(p.tok.pos, format, args...)
	}
}

// stop ends parsing: it moves to the end and silences further errors.
func (p *parser) stop() {
	p.stopped = true
	p.i = len(p.toks) - 1
	p.tok = p.toks[p.i]
}

// found completes a message about the current token: "but found 'x'" or "but the rule ends here".
func (p *parser) found() string {
	if p.tok.kind == tEOF {
		return "but the rule ends here"
	}
	return "but found " + p.tok.describe()
}

func (p *parser) isWord(word string) bool {
	return p.tok.kind == tWord && strings.EqualFold(p.tok.text, word)
}

// enter counts a nesting level, failing past MaxDepth.
func (p *parser) enter(at Pos) bool {
	p.depth++
	if p.depth > MaxDepth {
		p.errorf(at, "the rule nests more than %d levels deep (each parenthesis, not and where: adds one)", MaxDepth)
		p.stop()
		return false
	}
	return true
}

// skip moves past tokens until one that ends the broken part: at the current nesting level, a closing bracket, a
// comma, or (when atAndOr) an and/or. It stops before that token.
func (p *parser) skip(atAndOr bool) {
	nest := 0
	for p.tok.kind != tEOF {
		switch p.tok.kind {
		case tLParen, tLBrack:
			nest++
		case tRParen, tRBrack:
			if nest == 0 {
				return
			}
			nest--
		case tComma:
			if nest == 0 {
				return
			}
		case tWord:
			if nest == 0 && atAndOr && (p.isWord("and") || p.isWord("or")) {
				return
			}
		}
		p.next()
	}
}

// skipPast moves past the closing token of the current bracket (kind is tRParen or tRBrack).
func (p *parser) skipPast(kind tokKind) {
	for {
		p.skip(false)
		switch p.tok.kind {
		case tEOF:
			return
		case kind:
			p.next()
			return
		case tComma:
			p.next()
		default:
			return // the other kind of bracket: it closes an outer one
		}
	}
}

func (p *parser) parseOr() Node {
	at := p.tok.pos
	first := p.parseAnd()
	if !p.isWord("or") {
		return first
	}
	items := []Node{first}
	for p.isWord("or") {
		p.next()
		items = append(items, p.parseAnd())
	}
	return &Or{At: at, Items: items}
}

func (p *parser) parseAnd() Node {
	at := p.tok.pos
	first := p.parseUnary()
	if !p.isWord("and") {
		return first
	}
	items := []Node{first}
	for p.isWord("and") {
		p.next()
		items = append(items, p.parseUnary())
	}
	return &And{At: at, Items: items}
}

func (p *parser) parseUnary() Node {
	if !p.isWord("not") {
		return p.parsePrimary()
	}
	at := p.tok.pos
	p.next()
	if !p.enter(at) {
		return nil
	}
	x := p.parseUnary()
	p.depth--
	return &Not{At: at, Item: x}
}

func (p *parser) parsePrimary() Node {
	t := p.tok
	switch t.kind {
	case tLParen:
		p.next()
		if !p.enter(t.pos) {
			return nil
		}
		before := len(p.errs)
		x := p.parseOr()
		p.depth--
		switch p.tok.kind {
		case tRParen:
			p.next()
		case tEOF:
			if len(p.errs) == before {
				p.errorf(t.pos, "this '(' is not closed: expected ')' but the rule ends here")
			}
		default:
			p.fail("expected 'and', 'or' or ')' (closing the '(' at %d:%d) %s", t.pos.Line, t.pos.Column, p.found())
			p.skipPast(tRParen)
		}
		return x
	case tWord:
		if isReserved(t.text) {
			p.fail("expected a condition, such as country = \"FR\" or has_tag(\"vip\"), %s", p.found())
			p.skip(true)
			return nil
		}
		if p.peekKind() == tLParen {
			return p.parseCall()
		}
		return p.parseCompare(p.field(t))
	case tQuoted:
		return p.parseCompare(p.field(t))
	case tString:
		p.fail("expected a condition but found the text %s: write field names without double quotes, and names with spaces in `backquotes`", t.describe())
	default:
		p.fail("expected a condition, such as country = \"FR\" or has_tag(\"vip\"), %s", p.found())
	}
	p.skip(true)
	return nil
}

// field resolves a name: inside where: a property path; else a backquoted name is an attribute as written, a name
// starting with "attributes." the attribute named by the rest, a built-in's name the built-in, any other name an
// attribute.
func (p *parser) field(t token) Field {
	f := Field{Name: t.text, Scope: Attribute, At: t.pos}
	switch {
	case p.where:
		f.Scope = Property
	case t.kind == tQuoted:
	case strings.HasPrefix(t.text, attributesPrefix):
		f.Name = t.text[len(attributesPrefix):]
	case isBuiltin(t.text):
		f.Scope = Builtin
	}
	return f
}

var compareOps = map[tokKind]Op{tEq: Eq, tNe: Ne, tLt: Lt, tLe: Le, tGt: Gt, tGe: Ge}

// operatorWords are the operators written as words, for suggestions.
var operatorWords = []string{"in", "not", "contains", "starts_with", "exists", "within", "older_than"}

func (p *parser) parseCompare(f Field) Node {
	name := p.tok.describe()
	p.next()
	c := &Compare{Field: f, OpAt: p.tok.pos}
	var ok bool
	if op, isOp := compareOps[p.tok.kind]; isOp {
		c.Op = op
		opTok := p.tok
		p.next()
		c.Value, ok = p.scalar(opTok)
	} else if p.tok.kind == tWord {
		word := strings.ToLower(p.tok.text)
		p.next()
		switch word {
		case "in":
			c.Op = In
			c.Value, ok = p.list()
		case "contains", "starts_with":
			c.Op = Op(word)
			c.Value, ok = p.textOperand(word)
		case "exists":
			c.Op, ok = Exists, true
		case "within", "older_than":
			c.Op = Op(word)
			c.Value, ok = p.durationOperand(word)
		case "not":
			ok = p.negated(c, name)
		default:
			p.i--
			p.tok = p.toks[p.i]
			hint := suggest(word, operatorWords...)
			if word == "is" || word == "equals" || word == "eq" {
				hint = ": write '=' to compare"
			}
			p.fail("expected an operator such as =, in, contains or exists after %s, but found %s%s", name, p.tok.describe(), hint)
		}
	} else {
		p.fail("expected an operator such as =, in, contains or exists after %s, %s", name, p.found())
	}
	if !ok {
		p.skip(true)
		return nil
	}
	return c
}

// negated reads the operator after "not" in `x not in [...]`, `x not exists`...
func (p *parser) negated(c *Compare, name string) bool {
	word := ""
	if p.tok.kind == tWord {
		word = strings.ToLower(p.tok.text)
	}
	switch word {
	case "in":
		p.next()
		c.Op = NotIn
		var ok bool
		c.Value, ok = p.list()
		return ok
	case "contains", "starts_with":
		p.next()
		c.Op = Op("not " + word)
		var ok bool
		c.Value, ok = p.textOperand(word)
		return ok
	case "exists":
		p.next()
		c.Op = NotExists
		return true
	case "within", "older_than":
		dur := "30d"
		if next := p.toks[min(p.i+1, len(p.toks)-1)]; next.kind == tDuration {
			dur = next.text
		}
		other := map[string]string{"within": "older_than", "older_than": "within"}[word]
		p.fail("'not %s' is not an operator: write 'not %s %s %s' (which also holds without a date) or '%s %s %s'",
			word, strings.Trim(name, "'"), word, dur, strings.Trim(name, "'"), other, dur)
	default:
		p.fail("expected in, contains, starts_with or exists after 'not' %s", p.found())
	}
	return false
}

// scalar reads the value after a comparison operator: text, a number, true or false.
func (p *parser) scalar(op token) (Literal, bool) {
	t := p.tok
	lit := Literal{At: t.pos}
	switch {
	case t.kind == tString:
		lit.Kind, lit.Text = LitText, t.text
	case t.kind == tNumber:
		lit.Kind, lit.Number = LitNumber, t.num
	case p.isWord("true") || p.isWord("false"):
		lit.Kind, lit.Bool = LitBool, p.isWord("true")
	case t.kind == tWord && !isReserved(t.text):
		p.fail("expected a value after '%s' but found %s: write text in double quotes: %s", punct[op.kind], t.describe(), quote(t.text))
		return lit, false
	case t.kind == tQuoted:
		p.fail("expected a value after '%s' but found %s: backquotes are for names, text goes in double quotes: %s", punct[op.kind], t.describe(), quote(t.text))
		return lit, false
	case t.kind == tDuration:
		p.fail("a duration such as %s goes with within or older_than (created_at within 30d), not with '%s'", t.text, punct[op.kind])
		return lit, false
	case t.kind == tLBrack:
		p.fail("a list of values goes with in, such as country in [\"FR\", \"DE\"], not with '%s'", punct[op.kind])
		return lit, false
	default:
		p.fail("expected a value after '%s' %s", punct[op.kind], p.found())
		return lit, false
	}
	p.next()
	return lit, true
}

// textOperand reads the text after contains or starts_with.
func (p *parser) textOperand(op string) (Literal, bool) {
	t := p.tok
	if t.kind != tString {
		p.fail("expected text in double quotes after '%s' %s", op, p.found())
		return Literal{}, false
	}
	p.next()
	return Literal{Kind: LitText, Text: t.text, At: t.pos}, true
}

// durationOperand reads the duration after within or older_than.
func (p *parser) durationOperand(op string) (Literal, bool) {
	t := p.tok
	switch t.kind {
	case tDuration:
		p.next()
		return Literal{Kind: LitDuration, Duration: t.dur, At: t.pos}, true
	case tNumber:
		p.fail("expected a duration such as 30d after '%s' but found %s: add a unit, m (minutes), h (hours), d (days) or w (weeks)", op, t.describe())
	case tString:
		p.fail("'%s' takes a duration such as 30d, not %s: compare with a date using < or >", op, t.describe())
	default:
		p.fail("expected a duration such as 30d after '%s' %s", op, p.found())
	}
	return Literal{}, false
}

// list reads [item, ...] of text and numbers; a trailing comma is allowed.
func (p *parser) list() (Literal, bool) {
	open := p.tok
	if open.kind != tLBrack {
		p.fail("expected a list such as [\"FR\", \"DE\"] after 'in' %s", p.found())
		return Literal{}, false
	}
	p.next()
	lit := Literal{Kind: LitList, At: open.pos}
	for {
		t := p.tok
		switch t.kind {
		case tRBrack:
			p.next()
			if len(lit.List) == 0 {
				p.errorf(open.pos, "the list is empty: put at least one value between [ and ]")
				return lit, false
			}
			return lit, true
		case tString:
			lit.List = append(lit.List, Literal{Kind: LitText, Text: t.text, At: t.pos})
		case tNumber:
			lit.List = append(lit.List, Literal{Kind: LitNumber, Number: t.num, At: t.pos})
		case tEOF:
			p.errorf(open.pos, "this '[' is not closed: expected ']' but the rule ends here")
			return lit, false
		default:
			p.fail("expected text or a number in the list %s", p.found())
			p.skipPast(tRBrack)
			return lit, false
		}
		p.next()
		switch p.tok.kind {
		case tComma:
			p.next()
		case tRBrack:
		default:
			p.fail("expected ',' or ']' in the list %s", p.found())
			p.skipPast(tRBrack)
			return lit, false
		}
	}
}

// parseCall reads a function call; the current token is its name, followed by '('.
func (p *parser) parseCall() Node {
	name := p.tok
	fn := strings.ToLower(name.text)
	p.next()
	open := p.tok
	p.next()
	if p.where {
		p.errorf(name.pos, "%s(...) cannot be used inside where:, which tests the event's properties, such as total > 100", name.text)
		p.skipPast(tRParen)
		return nil
	}
	var n Node
	switch fn {
	case "has_tag":
		if tag, at, ok := p.oneText(fn, "a tag", `has_tag("vip")`); ok {
			n = &HasTag{At: name.pos, Tag: tag, TagAt: at}
		}
	case "subscribed", "unsubscribed":
		if ch, at, ok := p.oneText(fn, "a channel", fn+`("email")`); ok {
			n = &Consent{At: name.pos, Channel: ch, ChannelAt: at, Status: consentStatus(fn)}
		}
	case "in_segment":
		if ref, at, ok := p.oneText(fn, "a segment's name or id", `in_segment("churned")`); ok {
			n = &InSegment{At: name.pos, Ref: ref, RefAt: at}
		}
	case "score":
		n = p.score(name)
	case "performed":
		n = p.performed(name, open)
	case "bucket":
		n = p.bucket(name)
	default:
		hint := suggest(fn, functions...)
		if hint == "" {
			hint = ": the functions are " + strings.Join(functions[:len(functions)-1], ", ") + " and " + functions[len(functions)-1]
		}
		p.errorf(name.pos, "unknown function '%s'%s", clip(name.text), hint)
		p.skipPast(tRParen)
		p.skip(true)
	}
	return n
}

// oneText reads the single text argument and the closing parenthesis of fn(...).
func (p *parser) oneText(fn, what, example string) (string, Pos, bool) {
	t := p.tok
	if t.kind != tString {
		p.fail("%s needs %s in double quotes, such as %s, %s", fn, what, example, p.found())
		p.skipPast(tRParen)
		return "", Pos{}, false
	}
	p.next()
	if p.tok.kind != tRParen {
		p.fail("%s takes only %s: expected ')' %s", fn, what, p.found())
		p.skipPast(tRParen)
		return "", Pos{}, false
	}
	p.next()
	return t.text, t.pos, true
}

// score reads `score("name") op number`, after "score(".
func (p *parser) score(name token) Node {
	scoreName, at, ok := p.oneText("score", "the score's name", `score("engagement") > 50`)
	s := &Score{At: name.pos, Name: scoreName, NameAt: at, OpAt: p.tok.pos}
	op, isOp := compareOps[p.tok.kind]
	if !ok {
		p.skip(true) // the comparison, if any, of the broken call
		return nil
	}
	if !isOp {
		p.fail("a score is compared with a number, such as score(%s) > 50: expected =, !=, <, <=, > or >= %s", quote(scoreName), p.found())
		p.skip(true)
		return nil
	}
	s.Op = op
	opTok := p.tok
	p.next()
	v := p.tok
	if v.kind != tNumber {
		p.fail("expected a number after '%s' %s", punct[opTok.kind], p.found())
		p.skip(true)
		return nil
	}
	p.next()
	s.Value, s.ValueAt = v.num, v.pos
	return s
}

// performed reads the arguments of performed(...), after "performed(".
func (p *parser) performed(name, open token) Node {
	t := p.tok
	if t.kind != tString {
		p.fail("performed needs the event's name in double quotes first, such as performed(\"Order Completed\"), %s", p.found())
		p.skipPast(tRParen)
		return nil
	}
	p.next()
	pf := &Performed{At: name.pos, Event: t.text, EventAt: t.pos}
	ok := true
	seen := map[string]Pos{}
	for p.tok.kind == tComma {
		p.next()
		a := p.tok
		key := strings.ToLower(a.text)
		if a.kind != tWord {
			p.fail("expected within:, count or where: %s", p.found())
			ok = false
			p.skip(false)
			continue
		}
		if first, dup := seen[key]; dup {
			p.errorf(a.pos, "'%s' is given twice in performed(...) (first at %d:%d)", key, first.Line, first.Column)
			ok = false
			p.skip(false)
			continue
		}
		p.next()
		var good bool
		switch key {
		case "within":
			if good = p.colon(key); good {
				var lit Literal
				lit, good = p.durationOperand("within:")
				pf.Within, pf.WithinAt = &lit.Duration, lit.At
			}
		case "count":
			good = p.count(pf)
		case "where":
			if good = p.colon(key); good {
				if !p.enter(a.pos) {
					return nil
				}
				p.where = true
				before := len(p.errs)
				pf.Where = p.parseOr()
				p.where = false
				p.depth--
				good = len(p.errs) == before
			}
		default:
			hint := suggest(key, "within", "count", "where")
			if hint == "" {
				hint = ": it takes within:, count and where:"
			}
			p.errorf(a.pos, "performed(...) has no argument '%s'%s", clip(a.text), hint)
		}
		seen[key] = a.pos
		if !good {
			ok = false
			p.skip(false)
		}
	}
	if p.tok.kind != tRParen {
		if p.tok.kind == tEOF {
			p.errorf(open.pos, "this '(' is not closed: expected ')' but the rule ends here")
		} else {
			p.fail("expected ',' or ')' in performed(...) %s", p.found())
		}
		p.skipPast(tRParen)
		return nil
	}
	p.next()
	if !ok {
		return nil
	}
	return pf
}

// colon reads the ':' after a named argument.
func (p *parser) colon(arg string) bool {
	if p.tok.kind != tColon {
		p.fail("expected ':' after '%s' %s", arg, p.found())
		return false
	}
	p.next()
	return true
}

// count reads `count op n` (after the word count) into pf.
func (p *parser) count(pf *Performed) bool {
	if p.tok.kind == tColon {
		p.fail("write the count as a comparison, such as count >= 2, not with ':'")
		return false
	}
	op, isOp := compareOps[p.tok.kind]
	if !isOp {
		p.fail("expected a comparison after 'count', such as count >= 2, %s", p.found())
		return false
	}
	p.next()
	t := p.tok
	if t.kind != tNumber {
		p.fail("expected a whole number after 'count %s' %s", op, p.found())
		return false
	}
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		p.fail("a count is a whole number, such as 2, not %s", t.text)
		return false
	}
	p.next()
	pf.Count = &Count{Op: op, Value: n, At: t.pos}
	return true
}

// bucket reads the arguments of bucket(...), after "bucket(".
func (p *parser) bucket(name token) Node {
	t := p.tok
	if t.kind != tPercent {
		hint := ""
		if t.kind == tNumber {
			hint = " (add %)"
		}
		p.fail("bucket needs a percentage, such as bucket(10%%) or bucket(10%%..30%%), %s%s", p.found(), hint)
		p.skipPast(tRParen)
		return nil
	}
	b := &Bucket{At: name.pos, To: t.num, RangeAt: t.pos}
	p.next()
	if p.tok.kind == tRange {
		p.next()
		if p.tok.kind != tPercent {
			p.fail("expected a percentage after '..', such as bucket(10%%..30%%), %s", p.found())
			p.skipPast(tRParen)
			return nil
		}
		b.From, b.To = b.To, p.tok.num
		p.next()
	}
	ok := true
	seeded := false
	for p.tok.kind == tComma {
		p.next()
		a := p.tok
		good := false
		switch {
		case a.kind == tWord && strings.EqualFold(a.text, "seed") && seeded:
			p.fail("'seed' is given twice in bucket(...)")
		case a.kind == tWord && strings.EqualFold(a.text, "seed"):
			p.next()
			seeded = true
			if good = p.colon("seed"); good {
				if p.tok.kind != tString {
					p.fail("expected the seed in double quotes, such as seed: \"holdout-1\", %s", p.found())
					good = false
				} else {
					b.Seed, b.SeedAt = p.tok.text, p.tok.pos
					p.next()
				}
			}
		case a.kind == tWord:
			p.fail("bucket(...) has no argument '%s'%s", clip(a.text), cmp.Or(suggest(a.text, "seed"), ": it takes a percentage and seed:"))
		default:
			p.fail("expected seed: %s", p.found())
		}
		if !good {
			ok = false
			p.skip(false)
		}
	}
	if p.tok.kind != tRParen {
		p.fail("expected ',' or ')' in bucket(...) %s", p.found())
		p.skipPast(tRParen)
		return nil
	}
	p.next()
	if !ok {
		return nil
	}
	return b
}

func consentStatus(fn string) contacts.ConsentStatus {
	if fn == "subscribed" {
		return contacts.Subscribed
	}
	return contacts.Unsubscribed
}
