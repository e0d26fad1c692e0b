package contacts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is the type of an attribute value.
type Kind uint8

// Attribute kinds. A string in RFC 3339 form ("2026-11-22T10:00:00Z") is a Time: Segment clients send dates that
// way (createdAt, birthday), and segments compare them as dates.
const (
	String Kind = iota + 1
	Number
	Bool
	Time
	List
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "bool"
	case Time:
		return "timestamp"
	case List:
		return "list"
	}
	return "invalid"
}

// Value is one typed attribute value. In JSON it is the plain value: a string, number, boolean, RFC 3339 string or
// array of strings.
type Value struct {
	Kind Kind
	Str  string
	Num  float64
	Bool bool
	Time time.Time
	List []string
}

// Limits on attributes, so that one contact cannot grow without bound.
const (
	MaxAttributes     = 500
	MaxAttributeName  = 128
	MaxStringValue    = 4096
	MaxListItems      = 100
	MaxNestingFlatten = 4
)

// StringValue, NumberValue, BoolValue, TimeValue and ListValue build values.
func StringValue(s string) Value     { return Value{Kind: String, Str: s} }
func NumberValue(n float64) Value    { return Value{Kind: Number, Num: n} }
func BoolValue(b bool) Value         { return Value{Kind: Bool, Bool: b} }
func TimeValue(t time.Time) Value    { return Value{Kind: Time, Time: t.UTC()} }
func ListValue(items []string) Value { return Value{Kind: List, List: items} }

// Equal reports whether two values are the same.
func (v Value) Equal(o Value) bool {
	if v.Kind != o.Kind {
		return false
	}
	switch v.Kind {
	case String:
		return v.Str == o.Str
	case Number:
		return v.Num == o.Num
	case Bool:
		return v.Bool == o.Bool
	case Time:
		return v.Time.Equal(o.Time)
	case List:
		if len(v.List) != len(o.List) {
			return false
		}
		for i := range v.List {
			if v.List[i] != o.List[i] {
				return false
			}
		}
		return true
	}
	return true
}

// Text renders the value for CSV export and templates: lists are joined with "|".
func (v Value) Text() string {
	switch v.Kind {
	case String:
		return v.Str
	case Number:
		return strconv.FormatFloat(v.Num, 'f', -1, 64)
	case Bool:
		return strconv.FormatBool(v.Bool)
	case Time:
		return v.Time.Format(time.RFC3339Nano)
	case List:
		return strings.Join(v.List, "|")
	}
	return ""
}

// MarshalJSON writes the plain JSON value.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Kind {
	case String:
		return json.Marshal(v.Str)
	case Number:
		return json.Marshal(v.Num)
	case Bool:
		return json.Marshal(v.Bool)
	case Time:
		return json.Marshal(v.Time.Format(time.RFC3339Nano))
	case List:
		if v.List == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(v.List)
	}
	return nil, fmt.Errorf("attribute value has no kind")
}

// UnmarshalJSON reads a plain JSON value with ParseValue's rules. Scalars take a fast path: contacts are decoded on
// every lookup of the tracking path.
func (v *Value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return fmt.Errorf("empty attribute value")
	}
	var out Value
	var err error
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		out, err = textValue(s)
	case 't', 'f':
		var x bool
		if err := json.Unmarshal(b, &x); err != nil {
			return err
		}
		out = BoolValue(x)
	case '[', '{', 'n':
		var raw any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		out, err = ParseValue(raw)
	default:
		out, err = ParseValue(json.Number(b))
	}
	if err != nil {
		return err
	}
	*v = out
	return nil
}

// ParseValue turns a decoded JSON value (from encoding/json, with or without UseNumber) into a typed value. null is
// refused here; callers treat it as "remove the attribute". Objects are refused: Flatten them first.
func ParseValue(raw any) (Value, error) {
	switch x := raw.(type) {
	case string:
		return textValue(x)
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return Value{}, fmt.Errorf("number %s is out of range", x)
		}
		return NumberValue(f), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return Value{}, fmt.Errorf("number is out of range")
		}
		return NumberValue(x), nil
	case int:
		return NumberValue(float64(x)), nil
	case int64:
		return NumberValue(float64(x)), nil
	case bool:
		return BoolValue(x), nil
	case time.Time:
		return TimeValue(x), nil
	case []string:
		return listValue(x)
	case []any:
		items := make([]string, 0, len(x))
		for i, it := range x {
			switch s := it.(type) {
			case string:
				items = append(items, s)
			case json.Number:
				items = append(items, s.String())
			case float64:
				items = append(items, strconv.FormatFloat(s, 'f', -1, 64))
			case bool:
				items = append(items, strconv.FormatBool(s))
			default:
				return Value{}, fmt.Errorf("list item %d must be a string, number or boolean", i)
			}
		}
		return listValue(items)
	case nil:
		return Value{}, fmt.Errorf("null is not a value (it removes the attribute)")
	case map[string]any:
		return Value{}, fmt.Errorf("an object is not a value; nested objects are flattened into dotted names")
	}
	return Value{}, fmt.Errorf("unsupported value of type %T", raw)
}

func textValue(s string) (Value, error) {
	if !utf8.ValidString(s) {
		return Value{}, fmt.Errorf("text is not valid UTF-8")
	}
	if len(s) > MaxStringValue {
		return Value{}, fmt.Errorf("text is %d bytes; the limit is %d", len(s), MaxStringValue)
	}
	if looksLikeTime(s) {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return TimeValue(t), nil
		}
	}
	return StringValue(s), nil
}

// looksLikeTime is a cheap test before time.Parse: "YYYY-MM-DDT...".
func looksLikeTime(s string) bool {
	return len(s) >= 20 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't')
}

func listValue(items []string) (Value, error) {
	if len(items) > MaxListItems {
		return Value{}, fmt.Errorf("list has %d items; the limit is %d", len(items), MaxListItems)
	}
	for i, s := range items {
		if !utf8.ValidString(s) || len(s) > MaxStringValue {
			return Value{}, fmt.Errorf("list item %d is not valid UTF-8 text of at most %d bytes", i, MaxStringValue)
		}
	}
	return ListValue(items), nil
}

// ValidateAttributeName reports whether name can name an attribute: 1-128 bytes of printable UTF-8.
func ValidateAttributeName(name string) error {
	if name == "" || len(name) > MaxAttributeName {
		return fmt.Errorf("attribute names are 1-%d bytes", MaxAttributeName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("attribute name is not valid UTF-8")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("attribute name contains a control character")
		}
	}
	return nil
}

// Flatten turns nested objects into dotted names ({"address":{"city":"Lyon"}} gives "address.city"), down to
// MaxNestingFlatten levels, calling fn for each leaf (nil leaves included: they remove attributes).
func Flatten(prefix string, obj map[string]any, depth int, fn func(name string, v any) error) error {
	for k, v := range obj {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if m, ok := v.(map[string]any); ok {
			if depth >= MaxNestingFlatten {
				return fmt.Errorf("%s: objects nest deeper than %d levels", name, MaxNestingFlatten)
			}
			if err := Flatten(name, m, depth+1, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(name, v); err != nil {
			return err
		}
	}
	return nil
}
