package imports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// column is one CSV column and how it is read.
type column struct {
	header string
	target target
}

type csvReader struct {
	cr      *csv.Reader
	guard   *guardReader
	cols    []column
	byField map[string]string // contact field -> header
	mapping Mapping           // effective mapping, for display
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func newCSVReader(r io.Reader, opts Options) (*csvReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, utf8BOM):
		_, _ = br.Discard(len(utf8BOM))
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return nil, errs.Invalid("file", "the file is UTF-16 text; save it as UTF-8 (in Excel: \"CSV UTF-8\") and import it again")
	}
	delim := opts.Delimiter
	if delim == 0 {
		// Peek returns what it could read along with its error (EOF on a short file); what it returned is enough.
		first, _ := br.Peek(br.Size())
		delim = detectDelimiter(first)
	}
	g := &guardReader{r: br}
	cr := csv.NewReader(g)
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // rows with the wrong number of cells are reported one by one, not fatal
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errs.Invalid("file", "the file is empty: a CSV import needs a header row naming its columns")
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, errs.Invalid("header", "%s", describeParseError(pe))
		}
		return nil, errs.Invalid("header", "%s", err)
	}
	header = slices.Clone(header)
	rd := &csvReader{cr: cr, guard: g, byField: map[string]string{}, mapping: Mapping{}}
	if err := rd.plan(header, opts); err != nil {
		return nil, err
	}
	return rd, nil
}

// detectDelimiter picks the most frequent of , ; and tab outside quotes in the first line (comma on a tie or when
// none appears).
func detectDelimiter(b []byte) rune {
	counts := map[byte]int{}
	inQuote := false
	for _, c := range b {
		if c == '"' {
			inQuote = !inQuote
			continue
		}
		if inQuote {
			continue
		}
		if c == '\n' {
			break
		}
		if c == ',' || c == ';' || c == '\t' {
			counts[c]++
		}
	}
	best := byte(',')
	for _, c := range []byte{';', '\t'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return rune(best)
}

// plan maps every header to a target and checks the whole: problems come back together.
func (r *csvReader) plan(header []string, opts Options) error {
	v := &errs.ValidationError{}
	seen := map[string]int{}
	for i, h := range header {
		if !utf8.ValidString(h) {
			v.Add("header", "column %d's header is not valid UTF-8: save the file as UTF-8 and import it again", i+1)
			header[i] = strings.ToValidUTF8(h, "\uFFFD")
		}
		h = strings.TrimSpace(header[i])
		header[i] = h
		if h == "" {
			continue
		}
		if j, dup := seen[h]; dup {
			v.Add("header", "columns %d and %d are both named %q: rename one, or the mapping cannot tell them apart", j+1, i+1, h)
		}
		seen[h] = i
	}
	for _, col := range sortedKeys(opts.Mapping) {
		if _, ok := seen[strings.TrimSpace(col)]; !ok {
			v.Add("mapping."+col, "the header has no column %q (it has %s)", col, quoteList(header))
		}
	}
	mapped := map[string]string{} // target field -> header
	r.cols = make([]column, len(header))
	for i, h := range header {
		var t target
		var err error
		if spec, ok := opts.Mapping[h]; ok {
			t, err = parseTarget(spec)
		} else if spec, ok := lookupTrimmed(opts.Mapping, h); ok {
			t, err = parseTarget(spec)
		} else {
			t, err = defaultTarget(h)
			if err != nil {
				err = fmt.Errorf("the header %q cannot name an attribute (%w): map the column to a target or to \"-\" to skip it", h, err)
			}
		}
		if err != nil {
			v.Add("columns."+columnName(h, i), "%s", err)
			continue
		}
		r.cols[i] = column{header: h, target: t}
		if t.kind == skip {
			if h != "" {
				r.mapping[h] = "-"
			}
			continue
		}
		field := t.field()
		if other, dup := mapped[field]; dup {
			v.Add("columns."+columnName(h, i), "columns %q and %q both map to %s: map one of them elsewhere or to \"-\"", other, h, field)
			continue
		}
		mapped[field] = h
		r.byField[field] = h
		r.mapping[h] = t.String()
		if t.kind == toConsent && opts.Channels != nil {
			if err := contacts.ValidateChannel(t.name, opts.Channels); err != nil {
				v.Add("columns."+columnName(h, i), "%s", err)
			}
		}
	}
	if mapped["email"] == "" && mapped["phone"] == "" && mapped["user_id"] == "" {
		v.Add("header", "no column maps to email, phone or user_id, which find or create each contact (the header has %s); "+
			"name one of them in the header or the mapping, such as mapping={\"E-mail\":\"email\"}", quoteList(header))
	}
	return v.OrNil()
}

func lookupTrimmed(m Mapping, h string) (string, bool) {
	for k, v := range m {
		if strings.TrimSpace(k) == h {
			return v, true
		}
	}
	return "", false
}

func columnName(h string, i int) string {
	if h == "" {
		return fmt.Sprintf("%d", i+1)
	}
	return h
}

func quoteList(header []string) string {
	const max = 20
	var parts []string
	for i, h := range header {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(header)-max))
			break
		}
		parts = append(parts, fmt.Sprintf("%q", h))
	}
	if len(parts) == 0 {
		return "no columns"
	}
	return strings.Join(parts, ", ")
}

func describeParseError(pe *csv.ParseError) string {
	msg := fmt.Sprintf("%v at line %d, column %d", pe.Err, pe.Line, pe.Column)
	if errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote) {
		msg += ": a cell holding the delimiter, a quote or a line break must be enclosed in double quotes, with quotes inside it doubled (\"\")"
	}
	return msg
}

func (r *csvReader) Column(field string) string {
	if h, ok := r.byField[field]; ok {
		return h
	}
	for _, list := range []string{"tags", "remove_tags"} {
		if strings.HasPrefix(field, list+".") {
			return r.byField[list]
		}
	}
	return ""
}

func (r *csvReader) Columns() Mapping { return r.mapping }

func (r *csvReader) Next() (Row, error) {
	rec, err := r.cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && !errorsIsTooLong(pe.Err) {
			return Row{Line: int64(pe.StartLine)}, rowError(int64(pe.StartLine), "", "", "%s", describeParseError(pe))
		}
		if tl, ok := errorsAs[*tooLongError](err); ok {
			return Row{}, tl
		}
		return Row{}, fmt.Errorf("reading the CSV input: %w", err)
	}
	l, _ := r.cr.FieldPos(0)
	line := int64(l)
	if len(rec) != len(r.cols) {
		return Row{Line: line}, rowError(line, "", "", "the row has %d cells; the header has %d", len(rec), len(r.cols))
	}
	var f contacts.Fields
	var problems []Problem
	bad := func(col *column, format string, args ...any) {
		problems = append(problems, Problem{Column: col.header, Field: col.target.field(), Message: fmt.Sprintf(format, args...)})
	}
	for i := range rec {
		col := &r.cols[i]
		if col.target.kind == skip {
			continue
		}
		cell := strings.TrimSpace(rec[i])
		if cell == "" {
			continue // an empty cell leaves the value as it is
		}
		if !utf8.ValidString(cell) {
			bad(col, "is not valid UTF-8 text (%s); save the file as UTF-8 and import it again", invalidAt(cell))
			continue
		}
		switch col.target.kind {
		case toEmail:
			f.Email = &cell
		case toPhone:
			f.Phone = &cell
		case toUserID:
			f.UserID = &cell
		case toTimezone:
			f.Timezone = &cell
		case toLocale:
			f.Locale = &cell
		case toTags:
			f.Tags = splitList(cell)
		case toRemoveTags:
			f.RemoveTags = splitList(cell)
		case toConsent:
			st, err := parseConsent(cell)
			if err != nil {
				bad(col, "%s", err)
				continue
			}
			if f.Consent == nil {
				f.Consent = map[string]contacts.ConsentStatus{}
			}
			f.Consent[col.target.name] = st
		case toAttribute:
			v, err := convert(cell, col.target.typ)
			if err != nil {
				bad(col, "%s", err)
				continue
			}
			if f.Attributes == nil {
				f.Attributes = make(map[string]any, len(rec)-i)
			}
			f.Attributes[col.target.name] = v
		}
	}
	if len(problems) > 0 {
		return Row{Line: line}, &RowError{Line: line, Problems: problems}
	}
	return Row{Line: line, Fields: f}, nil
}

func errorsIsTooLong(err error) bool {
	_, ok := errorsAs[*tooLongError](err)
	return ok
}

// invalidAt says where the first invalid byte of s is.
func invalidAt(s string) string {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("byte 0x%02X at position %d of the cell", s[i], i+1)
		}
		i += n
	}
	return "an invalid byte"
}
