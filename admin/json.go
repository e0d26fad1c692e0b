package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/gofiber/fiber/v2"
)

// encodeJSON is fiber's JSON encoder without HTML escaping (clients read "<token>", not "\u003ctoken\u003e"), ending
// with a newline so that curl output stays readable.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeJSON strictly decodes the request body into v: one JSON value, no unknown fields, nothing after it. Errors
// say what and where (line and column), as a *malformedJSON.
func decodeJSON(c *fiber.Ctx, v any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return &malformedJSON{msg: "request body is empty; send a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(body, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &malformedJSON{msg: "request body has data after the JSON value", details: position(body, dec.InputOffset())}
	}
	return nil
}

func jsonProblem(body []byte, err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return &malformedJSON{msg: "request body is not valid JSON: " + syntax.Error(), details: position(body, syntax.Offset)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &malformedJSON{msg: fmt.Sprintf("request body must be a JSON object, not %s", typ.Value), details: position(body, typ.Offset)}
		}
		return errs.Invalid(field, "must be %s, not %s", jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &malformedJSON{msg: "request body is truncated JSON", details: position(body, int64(len(body)))}
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "nmae"`.
	if name, ok := cutQuoted(err.Error(), "json: unknown field "); ok {
		return errs.Invalid(name, "unknown field")
	}
	return &malformedJSON{msg: "request body is not valid JSON: " + err.Error()}
}

func cutQuoted(s, prefix string) (string, bool) {
	if len(s) <= len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	name, err := strconv.Unquote(s[len(prefix):])
	return name, err == nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "struct", "map":
		return "an object"
	case "ptr":
		return "a value of another type"
	}
	return "a number"
}

// position turns a byte offset into line and column for error details.
func position(body []byte, offset int64) map[string]any {
	if offset > int64(len(body)) {
		offset = int64(len(body))
	}
	line, col := 1, 1
	for _, b := range body[:offset] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return map[string]any{"offset": offset, "line": line, "column": col}
}
