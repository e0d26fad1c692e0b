package imports

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"

	"github.com/crosscast/crosscast/core/contacts"
)

// Exporter walks every contact of a workspace; *contacts.Service implements it.
type Exporter interface {
	Export(ctx context.Context, ws string, fn func(contacts.Contact) error) error
}

// Columns walks the workspace's contacts once and returns, sorted, the attribute names and the consent channels
// they hold: the first pass of a CSV export, whose header must name every column before the first row. The
// channels always include the given ones (the workspace's), so the header is stable from one export to the next.
func Columns(ctx context.Context, src Exporter, ws string, channels []string) (attrs, chans []string, err error) {
	seenA := map[string]bool{}
	seenC := map[string]bool{}
	for _, ch := range channels {
		seenC[ch] = true
	}
	err = src.Export(ctx, ws, func(c contacts.Contact) error {
		for name := range c.Attributes {
			seenA[name] = true
		}
		for ch := range c.Consent {
			seenC[ch] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return sortedKeys(seenA), sortedKeys(seenC), nil
}

// CSVWriter writes contacts as CSV. Its columns, in this order: id, email, phone, user_id, timezone, locale, tags
// ("|"-separated), consent.<channel> for each channel, then one column per attribute (lists "|"-separated, times
// in RFC 3339). An attribute column is headed by the attribute's name, or by attributes.<name> when the bare name
// would import as something else (an attribute called "email", say): an exported file imports back as it was.
type CSVWriter struct {
	w        *csv.Writer
	channels []string
	attrs    []string
	rec      []string
}

// fixedColumns are the first columns of a CSV export.
var fixedColumns = []string{"id", "email", "phone", "user_id", "timezone", "locale", "tags"}

// NewCSVWriter writes the header row for the given consent channels and attribute names and returns the writer.
func NewCSVWriter(w io.Writer, channels, attrs []string) (*CSVWriter, error) {
	cw := &CSVWriter{w: csv.NewWriter(w), channels: channels, attrs: attrs}
	header := make([]string, 0, len(fixedColumns)+len(channels)+len(attrs))
	header = append(header, fixedColumns...)
	for _, ch := range channels {
		header = append(header, "consent."+ch)
	}
	for _, a := range attrs {
		header = append(header, AttributeHeader(a))
	}
	cw.rec = make([]string, len(header))
	return cw, cw.w.Write(header)
}

// AttributeHeader is the CSV header of an attribute column: its name, or attributes.<name> when the bare name
// would map to another field on import.
func AttributeHeader(name string) string {
	if DefaultTarget(name) == "attributes."+name {
		return name
	}
	return "attributes." + name
}

// Write writes one contact.
func (cw *CSVWriter) Write(c contacts.Contact) error {
	r := cw.rec
	r[0], r[1], r[2], r[3], r[4], r[5] = c.ID, c.Email, c.Phone, c.UserID, c.Timezone, c.Locale
	r[6] = strings.Join(c.Tags, "|")
	i := len(fixedColumns)
	for _, ch := range cw.channels {
		r[i] = ""
		if s, ok := c.Consent[ch]; ok {
			r[i] = string(s.Status)
		}
		i++
	}
	for _, a := range cw.attrs {
		r[i] = ""
		if v, ok := c.Attributes[a]; ok {
			r[i] = v.Text()
		}
		i++
	}
	return cw.w.Write(r)
}

// Flush writes what is buffered and reports any write error.
func (cw *CSVWriter) Flush() error {
	cw.w.Flush()
	return cw.w.Error()
}

// JSONLWriter writes contacts as JSON Lines: one contacts.Contact object per line.
type JSONLWriter struct{ enc *json.Encoder }

// NewJSONLWriter returns a writer to w.
func NewJSONLWriter(w io.Writer) *JSONLWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONLWriter{enc: enc}
}

// Write writes one contact and its line end.
func (jw *JSONLWriter) Write(c contacts.Contact) error { return jw.enc.Encode(c) }
