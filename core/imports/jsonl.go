package imports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/crosscast/crosscast/core/contacts"
)

// jsonlReader reads one contacts.Fields object per line; blank lines are skipped.
type jsonlReader struct {
	br   *bufio.Reader
	line int64
	buf  []byte
}

func newJSONLReader(r io.Reader) (*jsonlReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(3); bytes.Equal(head, utf8BOM) {
		_, _ = br.Discard(3)
	}
	return &jsonlReader{br: br}, nil
}

func (r *jsonlReader) Column(string) string { return "" }

func (r *jsonlReader) Columns() Mapping { return nil }

func (r *jsonlReader) Next() (Row, error) {
	for {
		line, tooLong, err := r.readLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return Row{}, fmt.Errorf("reading line %d: %w", r.line+1, err)
		}
		if len(line) == 0 && !tooLong && errors.Is(err, io.EOF) {
			return Row{}, io.EOF
		}
		r.line++
		n := r.line
		if tooLong {
			return Row{Line: n}, rowError(n, "", "", "the line is longer than %d bytes", MaxRowBytes)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if !utf8.Valid(line) {
			return Row{Line: n}, rowError(n, "", "", "the line is not valid UTF-8 text (%s); save the file as UTF-8", invalidAt(string(line)))
		}
		f, err := decodeFields(line)
		if err != nil {
			return Row{Line: n}, &RowError{Line: n, Problems: []Problem{jsonProblem(err)}}
		}
		return Row{Line: n, Fields: f}, nil
	}
}

// readLine returns the next line without its line end. A line longer than MaxRowBytes is skipped to its end and
// reported as tooLong.
func (r *jsonlReader) readLine() (line []byte, tooLong bool, err error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if !tooLong {
			if len(r.buf)+len(chunk) > MaxRowBytes+2 {
				tooLong = true
				r.buf = r.buf[:0]
			} else {
				r.buf = append(r.buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(r.buf, "\r\n"), tooLong, err
	}
}

// decodeFields decodes a line strictly, as contacts.DecodeFields does (exact numbers, no unknown keys), and also
// refuses anything after the object.
func decodeFields(b []byte) (contacts.Fields, error) {
	var f contacts.Fields
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return contacts.Fields{}, err
	}
	if dec.More() {
		return contacts.Fields{}, errTrailing{offset: dec.InputOffset()}
	}
	return f, nil
}

type errTrailing struct{ offset int64 }

func (e errTrailing) Error() string {
	return fmt.Sprintf("data after the JSON object at column %d: a line holds one object", e.offset+1)
}

// jsonProblem describes a decoding error of one line, with the field or column it concerns.
func jsonProblem(err error) Problem {
	if syn, ok := errorsAs[*json.SyntaxError](err); ok {
		return Problem{Message: fmt.Sprintf("not valid JSON at column %d: %s", syn.Offset, syn.Error())}
	}
	if typ, ok := errorsAs[*json.UnmarshalTypeError](err); ok {
		if typ.Field == "" {
			return Problem{Message: fmt.Sprintf("a line must be a JSON object, not %s", typ.Value)}
		}
		return Problem{Field: typ.Field, Message: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.String()), typ.Value)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return Problem{Message: "the JSON object is cut short"}
	}
	const unknown = "json: unknown field "
	if s := err.Error(); strings.HasPrefix(s, unknown) {
		if name, uerr := strconv.Unquote(s[len(unknown):]); uerr == nil {
			return Problem{Field: name, Message: "unknown field: a line holds email, phone, user_id, timezone, locale, " +
				"attributes, tags, remove_tags and consent"}
		}
	}
	return Problem{Message: err.Error()}
}

func jsonKind(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "an object"
	case goType == "contacts.ConsentStatus":
		return "a consent status string"
	}
	return "a value of another type"
}
