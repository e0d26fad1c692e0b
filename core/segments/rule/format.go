package rule

import (
	"math"
	"strconv"
	"strings"
)

// Format writes a rule in its canonical text: keywords and functions in lower case, one space around operators,
// ", " between arguments and list items, named arguments in the order within, count, where, parentheses only where
// precedence needs them (an and inside an or needs none; an and or or directly inside another, or under not, gets
// them, so the tree is kept as it is). Text is double-quoted with invisible characters escaped. For any rule that
// Parse or DecodeJSON returned, Parse(Format(n)) gives n back, positions aside; two rules with the same canonical
// text are the same rule.
func Format(n Node) string {
	var b strings.Builder
	writeNode(&b, n, nil)
	return b.String()
}

// needsParens reports whether child, written directly under parent, needs parentheses to parse back as itself.
func needsParens(child, parent Node) bool {
	switch child.(type) {
	case *Or:
		switch parent.(type) {
		case *And, *Or, *Not:
			return true
		}
	case *And:
		switch parent.(type) {
		case *And, *Not:
			return true
		}
	}
	return false
}

func writeNode(b *strings.Builder, n, parent Node) {
	if needsParens(n, parent) {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch n := n.(type) {
	case *And:
		writeList(b, n.Items, " and ", n)
	case *Or:
		writeList(b, n.Items, " or ", n)
	case *Not:
		b.WriteString("not ")
		writeNode(b, n.Item, n)
	case *Compare:
		writeField(b, n.Field)
		b.WriteByte(' ')
		b.WriteString(string(n.Op))
		if n.Value.Kind != 0 {
			b.WriteByte(' ')
			writeLiteral(b, n.Value)
		}
	case *Score:
		b.WriteString("score(" + quote(n.Name) + ") " + string(n.Op) + " " + formatNumber(n.Value))
	case *HasTag:
		b.WriteString("has_tag(" + quote(n.Tag) + ")")
	case *Consent:
		b.WriteString(string(n.Status) + "(" + quote(n.Channel) + ")")
	case *InSegment:
		b.WriteString("in_segment(" + quote(n.Ref) + ")")
	case *Bucket:
		b.WriteString("bucket(")
		if n.From != 0 {
			b.WriteString(formatNumber(n.From) + "%..")
		}
		b.WriteString(formatNumber(n.To) + "%")
		if n.Seed != "" {
			b.WriteString(", seed: " + quote(n.Seed))
		}
		b.WriteByte(')')
	case *Performed:
		b.WriteString("performed(" + quote(n.Event))
		if n.Within != nil {
			b.WriteString(", within: " + n.Within.String())
		}
		if n.Count != nil {
			b.WriteString(", count " + string(n.Count.Op) + " " + strconv.FormatInt(n.Count.Value, 10))
		}
		if n.Where != nil {
			b.WriteString(", where: ")
			writeNode(b, n.Where, nil)
		}
		b.WriteByte(')')
	}
}

func writeList(b *strings.Builder, items []Node, sep string, parent Node) {
	for i, it := range items {
		if i > 0 {
			b.WriteString(sep)
		}
		writeNode(b, it, parent)
	}
}

// writeField writes a field reference: a built-in or property bare, an attribute bare when it reads back as itself,
// with the attributes. prefix when its name is a built-in's or starts with "attributes.", and any other name in
// backquotes.
func writeField(b *strings.Builder, f Field) {
	if !isPlainName(f.Name) {
		b.WriteString(quoteWith(f.Name, '`'))
		return
	}
	if f.Scope == Attribute && (isBuiltin(f.Name) || strings.HasPrefix(f.Name, attributesPrefix)) {
		b.WriteString(attributesPrefix)
	}
	b.WriteString(f.Name)
}

// isPlainName reports whether name lexes as one word that is not a keyword: identifier parts joined by single dots.
func isPlainName(name string) bool {
	if name == "" || isReserved(name) {
		return false
	}
	for i, part := range strings.Split(name, ".") {
		if part == "" {
			return false
		}
		for j, r := range part {
			if i == 0 && j == 0 && !isIdentStart(r) || !isIdentPart(r) {
				return false
			}
		}
	}
	return true
}

func writeLiteral(b *strings.Builder, l Literal) {
	switch l.Kind {
	case LitText:
		b.WriteString(quote(l.Text))
	case LitNumber:
		b.WriteString(formatNumber(l.Number))
	case LitBool:
		b.WriteString(strconv.FormatBool(l.Bool))
	case LitDuration:
		b.WriteString(l.Duration.String())
	case LitList:
		b.WriteByte('[')
		for i, it := range l.List {
			if i > 0 {
				b.WriteString(", ")
			}
			writeLiteral(b, it)
		}
		b.WriteByte(']')
	}
}

// formatNumber writes f in the shortest form that reads back as f: plain digits for ordinary magnitudes, an
// exponent for very large and very small ones.
func formatNumber(f float64) string {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
