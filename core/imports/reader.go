// Package imports owns bulk contact data in and out: streaming CSV and JSON Lines readers that turn an upload into
// rows of contacts.Fields with their line numbers (or a row error saying what is wrong and where), column mappings,
// the import loop that upserts rows in chunks and reports progress, and the CSV and JSON Lines export writers.
//
// It never holds a whole file: readers take an io.Reader and keep one row (and one chunk of rows) at a time. It
// imports the standard library, core/errs and core/contacts; running an import as a background job is for
// core/jobs, and HTTP for admin/.
package imports

import (
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// Format is an input or output format.
type Format string

// Formats.
const (
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// FormatFrom picks the format from a ?format= value (csv, jsonl or ndjson), or else from a Content-Type (text/csv,
// application/csv, application/x-ndjson, application/jsonl, application/x-jsonlines...). With neither, it fails.
func FormatFrom(query, contentType string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(query)) {
	case "csv":
		return CSV, nil
	case "jsonl", "ndjson", "jsonlines":
		return JSONL, nil
	case "":
	default:
		return "", errs.Invalid("format", "%q is not a format: use csv or jsonl", query)
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "text/csv", "application/csv", "text/comma-separated-values", "text/tab-separated-values":
		return CSV, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl",
		"application/jsonlines", "application/x-jsonlines", "application/json-seq":
		return JSONL, nil
	}
	return "", errs.Invalid("format", "cannot tell the format from Content-Type %q: send text/csv or application/x-ndjson, "+
		"or add ?format=csv or ?format=jsonl", contentType)
}

// ParseDelimiter reads a ?delimiter= value: "," ";" "|", "tab" (or a tab character); "" means detect.
func ParseDelimiter(s string) (rune, error) {
	switch s {
	case "":
		return 0, nil
	case ",", ";", "|", "\t":
		return rune(s[0]), nil
	case "tab", "\\t", "TAB":
		return '\t', nil
	case "comma":
		return ',', nil
	case "semicolon":
		return ';', nil
	}
	return 0, errs.Invalid("delimiter", "%q is not a delimiter: use , ; | or tab", s)
}

// Options say how to read an input.
type Options struct {
	Format Format
	// Delimiter separates CSV cells; 0 detects it from the header line (the most frequent of , ; and tab).
	Delimiter rune
	// Mapping maps CSV headers to fields; columns it does not name map by their header (DefaultTarget).
	Mapping Mapping
	// Channels are the workspace's consent channels: a consent.<channel> column must name one of them. nil skips
	// the check (rows then fail one by one).
	Channels []string
}

// Row is one input record read into contact fields. Line is the 1-based line where it starts.
type Row struct {
	Line   int64
	Fields contacts.Fields
}

// Problem is one thing wrong with a row: Column is the input column (CSV header) when known, Field the contact
// field ("email", "attributes.age", "" for the row as a whole).
type Problem struct {
	Column  string
	Field   string
	Message string
}

// RowError is a row that cannot be imported, with every problem found in it. Reading goes on after it.
type RowError struct {
	Line     int64
	Problems []Problem
}

func (e *RowError) Error() string {
	parts := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		switch {
		case p.Column != "":
			parts = append(parts, fmt.Sprintf("column %q: %s", p.Column, p.Message))
		case p.Field != "":
			parts = append(parts, p.Field+": "+p.Message)
		default:
			parts = append(parts, p.Message)
		}
	}
	return fmt.Sprintf("line %d: %s", e.Line, strings.Join(parts, "; "))
}

func rowError(line int64, column, field, format string, args ...any) *RowError {
	return &RowError{Line: line, Problems: []Problem{{Column: column, Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// Reader reads rows from an input.
type Reader interface {
	// Next returns the next row, or io.EOF after the last. A row that cannot be read gives a *RowError and reading
	// goes on; any other error is fatal (the input cannot be read further) and says where it stopped.
	Next() (Row, error)
	// Column names the input column a contact field came from ("attributes.age" from "Age"), or "".
	Column(field string) string
	// Columns describes how each input column is read, in mapping syntax (header -> target); nil for JSON Lines.
	Columns() Mapping
}

// NewReader starts reading an input. For CSV it reads the header row and checks it with the mapping: problems
// (no identifier column, a duplicate header, a mapping naming a missing column, an unknown consent channel, a file
// in UTF-16) come back together as an *errs.ValidationError before any row is read.
func NewReader(r io.Reader, opts Options) (Reader, error) {
	switch opts.Format {
	case CSV:
		return newCSVReader(r, opts)
	case JSONL:
		return newJSONLReader(r)
	}
	return nil, errs.Invalid("format", "%q is not a format: use csv or jsonl", opts.Format)
}

// MaxRowBytes bounds one row (a CSV record, a JSON line). A longer JSON line is a row error; a CSV record that
// runs longer almost always means a quote that is never closed, which ends the import with an error.
const MaxRowBytes = 1 << 20
