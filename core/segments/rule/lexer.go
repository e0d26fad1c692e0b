package rule

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a token.
type tokKind uint8

const (
	tEOF      tokKind = iota
	tIllegal          // already reported by the lexer
	tWord             // a name or keyword, possibly dotted: address.city
	tQuoted           // a backquoted name: `first name`
	tString           // "text"
	tNumber           // 12, -3.5, 1e6
	tDuration         // 30d
	tPercent          // 10%
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
	tColon
	tRange // ..
	tEq
	tNe
	tLt
	tLe
	tGt
	tGe
)

// token is one lexeme. text is the source for words and numbers, the decoded value for strings and quoted names.
type token struct {
	kind tokKind
	text string
	num  float64
	dur  Duration
	pos  Pos
}

var punct = map[tokKind]string{
	tLParen: "(", tRParen: ")", tLBrack: "[", tRBrack: "]", tComma: ",", tColon: ":", tRange: "..",
	tEq: "=", tNe: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">=",
}

// describe names a token for messages: 'and', "FR", 5, '('.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "the end of the rule"
	case tWord, tNumber, tDuration, tPercent, tIllegal:
		return "'" + clip(t.text) + "'"
	case tQuoted:
		return "`" + clip(t.text) + "`"
	case tString:
		return quote(clip(t.text))
	}
	return "'" + punct[t.kind] + "'"
}

// clip shortens s for a message.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	return string([]rune(s)[:37]) + "..."
}

// lexer turns rule text into tokens, reporting what it cannot read. It recovers from common slips (== for =,
// && for and, 'single' or “curly” quotes) by reporting them and going on as if they were written right, so the
// parser reports no second error for them.
type lexer struct {
	src       string
	off       int
	line, col int
	errs      Errors
	toks      []token
}

// lex reads all of src (valid UTF-8 of at most MaxRuleBytes).
func lex(src string) ([]token, Errors) {
	l := &lexer{src: src, line: 1, col: 1}
	for len(l.errs) < maxErrors {
		l.skipSpace()
		if l.off >= len(l.src) {
			break
		}
		l.next()
	}
	l.toks = append(l.toks, token{kind: tEOF, pos: l.pos()})
	return l.toks, l.errs
}

func (l *lexer) pos() Pos { return Pos{Line: l.line, Column: l.col} }

// peek returns the rune at the read offset plus n bytes-worth of runes ahead (n runes), or -1 at the end.
func (l *lexer) peekAt(n int) rune {
	off := l.off
	for ; n > 0 && off < len(l.src); n-- {
		_, size := utf8.DecodeRuneInString(l.src[off:])
		off += size
	}
	if off >= len(l.src) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(l.src[off:])
	return r
}

func (l *lexer) peek() rune { return l.peekAt(0) }

// advance consumes one rune.
func (l *lexer) advance() rune {
	r, size := utf8.DecodeRuneInString(l.src[l.off:])
	l.off += size
	if r == '\n' {
		l.line++
		l.col = 1
	} else {
		l.col++
	}
	return r
}

func (l *lexer) errorf(p Pos, format string, args ...any) {
	l.errs = append(l.errs, errorAt(p, format, args...))
}

func (l *lexer) emit(kind tokKind, text string, p Pos) {
	l.toks = append(l.toks, token{kind: kind, text: text, pos: p})
}

func (l *lexer) skipSpace() {
	for l.off < len(l.src) && unicode.IsSpace(l.peek()) {
		l.advance()
	}
}

func isIdentStart(r rune) bool { return r == '_' || unicode.IsLetter(r) }
func isIdentPart(r rune) bool  { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
func isDigit(r rune) bool      { return r >= '0' && r <= '9' }

// next reads one token at a non-space character.
func (l *lexer) next() {
	p := l.pos()
	r := l.peek()
	switch {
	case isIdentStart(r):
		l.word(p)
		return
	case isDigit(r) || (r == '-' && isDigit(l.peekAt(1))):
		l.number(p)
		return
	}
	l.advance()
	switch r {
	case '"':
		l.str(p, '"', '"')
	case '\'':
		l.errorf(p, "text goes in double quotes: \"...\", not single quotes")
		l.str(p, '\'', '\'')
	case '“', '”', '„', '«', '»', '‘', '’':
		l.errorf(p, "use straight double quotes (\") around text, not %c", r)
		l.str(p, r, closingQuote(r))
	case '`':
		l.quotedName(p)
	case '(':
		l.emit(tLParen, "(", p)
	case ')':
		l.emit(tRParen, ")", p)
	case '[':
		l.emit(tLBrack, "[", p)
	case ']':
		l.emit(tRBrack, "]", p)
	case ',':
		l.emit(tComma, ",", p)
	case ':':
		l.emit(tColon, ":", p)
	case '.':
		if l.peek() == '.' {
			l.advance()
			l.emit(tRange, "..", p)
			return
		}
		l.errorf(p, "unexpected '.': a name cannot start or end with a dot")
		l.emit(tIllegal, ".", p)
	case '=':
		if l.peek() == '=' {
			l.advance()
			l.errorf(p, "write '=' to compare, not '=='")
		}
		l.emit(tEq, "=", p)
	case '!':
		if l.peek() == '=' {
			l.advance()
			l.emit(tNe, "!=", p)
			return
		}
		l.errorf(p, "write 'not' instead of '!'")
		l.emit(tWord, "not", p)
	case '<':
		switch l.peek() {
		case '=':
			l.advance()
			l.emit(tLe, "<=", p)
		case '>':
			l.advance()
			l.errorf(p, "write '!=' for 'is not', not '<>'")
			l.emit(tNe, "!=", p)
		default:
			l.emit(tLt, "<", p)
		}
	case '>':
		if l.peek() == '=' {
			l.advance()
			l.emit(tGe, ">=", p)
			return
		}
		l.emit(tGt, ">", p)
	case '&', '|':
		word, written := map[rune]string{'&': "and", '|': "or"}[r], string(r)
		if l.peek() == r {
			l.advance()
			written += written
		}
		l.errorf(p, "write '%s' instead of '%s'", word, written)
		l.emit(tWord, word, p)
	default:
		l.errorf(p, "unexpected character %s", describeRune(r))
		l.emit(tIllegal, string(r), p)
	}
}

func describeRune(r rune) string {
	if unicode.IsPrint(r) {
		return "'" + string(r) + "'"
	}
	return fmt.Sprintf("U+%04X", r)
}

func closingQuote(open rune) rune {
	switch open {
	case '“', '„':
		return '”'
	case '«':
		return '»'
	case '‘':
		return '’'
	}
	return open
}

// word reads a name or keyword: identifier parts joined by single dots (address.city, items.0.sku).
func (l *lexer) word(p Pos) {
	start := l.off
	for {
		for isIdentPart(l.peek()) {
			l.advance()
		}
		if l.peek() == '.' && isIdentPart(l.peekAt(1)) {
			l.advance()
			continue
		}
		break
	}
	l.emit(tWord, l.src[start:l.off], p)
}

// number reads a number, a duration (30d) or a percentage (10%).
func (l *lexer) number(p Pos) {
	start := l.off
	if l.peek() == '-' {
		l.advance()
	}
	integer := true
	for isDigit(l.peek()) {
		l.advance()
	}
	if l.peek() == '.' && isDigit(l.peekAt(1)) {
		integer = false
		l.advance()
		for isDigit(l.peek()) {
			l.advance()
		}
	}
	if e := l.peek(); e == 'e' || e == 'E' {
		n := 1
		if s := l.peekAt(1); s == '+' || s == '-' {
			n = 2
		}
		if isDigit(l.peekAt(n)) {
			integer = false
			for ; n > 0; n-- {
				l.advance()
			}
			for isDigit(l.peek()) {
				l.advance()
			}
		}
	}
	text := l.src[start:l.off]
	switch {
	case l.peek() == '%':
		l.advance()
		f, ok := l.float(p, text)
		if !ok {
			return
		}
		l.toks = append(l.toks, token{kind: tPercent, text: text + "%", num: f, pos: p})
	case isIdentPart(l.peek()):
		ustart := l.off
		for isIdentPart(l.peek()) {
			l.advance()
		}
		unit := l.src[ustart:l.off]
		all := l.src[start:l.off]
		if !integer {
			l.errorf(p, "a duration is a whole number and a unit, such as 90m or 36h, not %s", all)
			l.emit(tIllegal, all, p)
			return
		}
		if len(unit) != 1 || Unit(unit[0]).size() == 0 {
			l.errorf(p, "unknown unit '%s' in %s: durations use m (minutes), h (hours), d (days) or w (weeks), such as 30d", clip(unit), clip(all))
			l.emit(tIllegal, all, p)
			return
		}
		d, err := ParseDuration(all)
		if err != nil {
			l.errorf(p, "%s", err)
			l.emit(tIllegal, all, p)
			return
		}
		l.toks = append(l.toks, token{kind: tDuration, text: all, dur: d, pos: p})
	default:
		f, ok := l.float(p, text)
		if !ok {
			return
		}
		l.toks = append(l.toks, token{kind: tNumber, text: text, num: f, pos: p})
	}
}

func (l *lexer) float(p Pos, text string) (float64, bool) {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		l.errorf(p, "the number %s is too large", clip(text))
		l.emit(tIllegal, text, p)
		return 0, false
	}
	return f, true
}

// str reads text up to the closing quote, the opening quote being consumed already.
func (l *lexer) str(p Pos, open, close rune) {
	s, ok := l.escaped(p, close, "text")
	if ok {
		l.emit(tString, s, p)
		return
	}
	l.emit(tIllegal, string(open)+s, p)
}

// quotedName reads a backquoted name, the opening backquote being consumed already.
func (l *lexer) quotedName(p Pos) {
	s, ok := l.escaped(p, '`', "name")
	switch {
	case !ok:
		l.emit(tIllegal, "`"+s, p)
	case s == "":
		l.errorf(p, "a name between backquotes cannot be empty")
		l.emit(tIllegal, "``", p)
	default:
		l.emit(tQuoted, s, p)
	}
}

// escaped reads characters up to close, decoding the escapes \" \` \\ \n \r \t \uXXXX and \UXXXXXXXX. A line
// break or the end of the rule before close is an error, as are raw control characters other than a tab and
// unknown escapes (reported, then skipped, so that one slip gives one error).
func (l *lexer) escaped(p Pos, close rune, what string) (string, bool) {
	var b strings.Builder
	ok := true
	for {
		r := l.peek()
		switch {
		case r < 0:
			l.errorf(p, "this %s has no closing %c", what, close)
			return b.String(), false
		case r == '\n' || r == '\r':
			l.errorf(p, "this %s has no closing %c before the end of the line (write \\n for a line break)", what, close)
			return b.String(), false
		}
		ep := l.pos()
		l.advance()
		switch {
		case r == close:
			return b.String(), ok
		case r < 0x20 && r != '\t' || r == 0x7f:
			l.errorf(ep, "a control character (%s) cannot appear in %s: write it as \\u%04x", describeRune(r), what, r)
			ok = false
			continue
		case r != '\\':
			b.WriteRune(r)
			continue
		}
		e := l.peek()
		switch e {
		case '"', '`', '\\':
			b.WriteRune(l.advance())
		case 'n':
			l.advance()
			b.WriteByte('\n')
		case 'r':
			l.advance()
			b.WriteByte('\r')
		case 't':
			l.advance()
			b.WriteByte('\t')
		case 'u', 'U':
			l.advance()
			n := 4
			if e == 'U' {
				n = 8
			}
			hex := l.src[l.off:min(l.off+n, len(l.src))]
			v, err := strconv.ParseUint(hex, 16, 32)
			if len(hex) < n || err != nil || !utf8.ValidRune(rune(v)) {
				l.errorf(ep, "\\%c needs %d hexadecimal digits of a valid character, such as \\u00e9", e, n)
				ok = false
				continue
			}
			for range n {
				l.advance()
			}
			b.WriteRune(rune(v))
		default:
			found := "the end of the rule"
			if e >= 0 {
				found = describeRune(e)
			}
			l.errorf(ep, "unknown escape: a backslash goes before \", `, \\, n, r, t or u, not %s (write \\\\ for a backslash)", found)
			ok = false
		}
	}
}

// quote writes s as a rule's text literal: in double quotes, with \ and " escaped, and line breaks, control and
// other invisible characters (such as bidirectional overrides) as escapes, so that the text shows what it holds.
func quote(s string) string { return quoteWith(s, '"') }

func quoteWith(s string, q rune) string {
	var b strings.Builder
	b.WriteRune(q)
	for _, r := range s {
		switch {
		case r == q || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		case r > 0xffff:
			fmt.Fprintf(&b, `\U%08x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	b.WriteRune(q)
	return b.String()
}
