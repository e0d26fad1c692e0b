package rule

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/crosscast/crosscast/core/contacts"
)

// MaxJSONBytes bounds a rule given as JSON.
const MaxJSONBytes = 64 << 10

// maxJSONNesting bounds the nesting of JSON arrays and objects while reading, before the rule's own depth is
// measured: an and in an or costs four JSON levels and no text level.
const maxJSONNesting = 4*MaxDepth + 8

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *And) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *Or) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *Not) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *Compare) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *Score) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *HasTag) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *Consent) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *InSegment) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *Bucket) MarshalJSON() ([]byte, error) { return marshalNode(n) }

// MarshalJSON writes the JSON form of the rule (see the package documentation).
func (n *Performed) MarshalJSON() ([]byte, error) { return marshalNode(n) }

func marshalNode(n Node) ([]byte, error) {
	var e encoder
	e.node(n)
	return e.b, e.err
}

// encoder appends the JSON form of a rule to b; err is the first node that has no JSON form.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf("encoding a rule: "+format, args...)
	}
}

func (e *encoder) str(s string) { e.b = appendJSONString(e.b, s) }

func (e *encoder) num(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.fail("%v is not a number JSON can hold", f)
		f = 0
	}
	e.b = append(e.b, formatNumber(f)...)
}

func (e *encoder) key(k string) {
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, `":`...)
}

func (e *encoder) node(n Node) {
	switch n := n.(type) {
	case *And:
		e.list("and", n.Items)
	case *Or:
		e.list("or", n.Items)
	case *Not:
		e.b = append(e.b, `{"not":`...)
		e.node(n.Item)
		e.b = append(e.b, '}')
	case *Compare:
		e.b = append(e.b, '{')
		e.key("field")
		e.str(n.Field.Ref())
		e.b = append(e.b, ',')
		e.key("op")
		e.str(string(n.Op))
		if n.Value.Kind != 0 {
			e.b = append(e.b, ',')
			e.key("value")
			e.literal(n.Value)
		}
		e.b = append(e.b, '}')
	case *Score:
		e.b = append(e.b, '{')
		e.key("score")
		e.str(n.Name)
		e.b = append(e.b, ',')
		e.key("op")
		e.str(string(n.Op))
		e.b = append(e.b, ',')
		e.key("value")
		e.num(n.Value)
		e.b = append(e.b, '}')
	case *HasTag:
		e.single("has_tag", n.Tag)
	case *Consent:
		if n.Status != contacts.Subscribed && n.Status != contacts.Unsubscribed {
			e.fail("consent status %q has no rule form", n.Status)
		}
		e.single(string(n.Status), n.Channel)
	case *InSegment:
		e.single("in_segment", n.Ref)
	case *Bucket:
		e.b = append(e.b, `{"bucket":{"from":`...)
		e.num(n.From)
		e.b = append(e.b, `,"to":`...)
		e.num(n.To)
		if n.Seed != "" {
			e.b = append(e.b, `,"seed":`...)
			e.str(n.Seed)
		}
		e.b = append(e.b, "}}"...)
	case *Performed:
		e.b = append(e.b, `{"performed":{"event":`...)
		e.str(n.Event)
		if n.Within != nil {
			e.b = append(e.b, `,"within":`...)
			e.str(n.Within.String())
		}
		if n.Count != nil {
			e.b = append(e.b, `,"count":{"op":`...)
			e.str(string(n.Count.Op))
			e.b = append(e.b, `,"value":`...)
			e.b = strconv.AppendInt(e.b, n.Count.Value, 10)
			e.b = append(e.b, '}')
		}
		if n.Where != nil {
			e.b = append(e.b, `,"where":`...)
			e.node(n.Where)
		}
		e.b = append(e.b, "}}"...)
	default:
		e.fail("a nil condition has no JSON form")
		e.b = append(e.b, "null"...)
	}
}

func (e *encoder) list(key string, items []Node) {
	e.b = append(e.b, '{')
	e.key(key)
	e.b = append(e.b, '[')
	for i, it := range items {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.node(it)
	}
	e.b = append(e.b, "]}"...)
}

func (e *encoder) single(key, value string) {
	e.b = append(e.b, '{')
	e.key(key)
	e.str(value)
	e.b = append(e.b, '}')
}

func (e *encoder) literal(l Literal) {
	switch l.Kind {
	case LitText:
		e.str(l.Text)
	case LitNumber:
		e.num(l.Number)
	case LitBool:
		e.b = strconv.AppendBool(e.b, l.Bool)
	case LitDuration:
		e.str(l.Duration.String())
	case LitList:
		e.b = append(e.b, '[')
		for i, it := range l.List {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.literal(it)
		}
		e.b = append(e.b, ']')
	}
}

// appendJSONString appends s as a JSON string, escaping only what JSON requires (and U+2028/U+2029, which break
// JavaScript), so that rules with < or & stay readable.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b = append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// DecodeJSON reads a rule in its JSON form, strictly: unknown keys, duplicate keys, missing keys, values of the
// wrong type and data after the rule are errors. On failure the error is an Errors whose items carry the JSON path
// of each problem ("$.and[1].op"), or the line and column of a JSON syntax error. Like Parse, DecodeJSON checks
// form only: run Check on the result.
func DecodeJSON(data []byte) (Node, error) {
	if len(data) > MaxJSONBytes {
		return nil, Errors{{Path: "$", Message: fmt.Sprintf("the rule is %d bytes long; the limit is %d bytes", len(data), MaxJSONBytes)}}
	}
	v, err := readJSON(data)
	if err != nil {
		return nil, Errors{*err}
	}
	d := &decoder{}
	n := d.node(v, "$", false)
	if len(d.errs) == 0 {
		if depth := textDepth(n, nil); depth > MaxDepth {
			d.errorf("$", "the rule nests %d levels deep; the limit is %d (each not, where and parenthesised and/or adds one)", depth, MaxDepth)
		} else if size := len(Format(n)); size > MaxRuleBytes {
			d.errorf("$", "the rule's text form is %d bytes long; the limit is %d bytes", size, MaxRuleBytes)
		}
	}
	if len(d.errs) > 0 {
		return nil, d.errs[:min(len(d.errs), maxErrors)]
	}
	return n, nil
}

// textDepth is the nesting depth the rule's canonical text has, as Parse counts it.
func textDepth(n, parent Node) int {
	d := 0
	if needsParens(n, parent) {
		d = 1
	}
	switch n := n.(type) {
	case *And:
		return d + maxDepth(n.Items, n)
	case *Or:
		return d + maxDepth(n.Items, n)
	case *Not:
		return d + 1 + textDepth(n.Item, n)
	case *Performed:
		if n.Where != nil {
			return d + 1 + textDepth(n.Where, nil)
		}
	}
	return d
}

func maxDepth(items []Node, parent Node) int {
	m := 0
	for _, it := range items {
		m = max(m, textDepth(it, parent))
	}
	return m
}

// jsonValue is a JSON value with its object keys in order, as readJSON builds it.
type jsonValue struct {
	kind byte // '{', '[', 's' (string), 'n' (number), 'b' (boolean), '0' (null)
	obj  []jsonMember
	arr  []jsonValue
	str  string
	num  json.Number
	b    bool
}

type jsonMember struct {
	key string
	val jsonValue
}

func (v jsonValue) get(key string) (jsonValue, bool) {
	for _, m := range v.obj {
		if m.key == key {
			return m.val, true
		}
	}
	return jsonValue{}, false
}

// describe names the value's type for messages.
func (v jsonValue) describe() string {
	switch v.kind {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case 's':
		return "text"
	case 'n':
		return "a number"
	case 'b':
		return "true or false"
	}
	return "null"
}

// readJSON reads one JSON value, refusing duplicate keys, excessive nesting and trailing data.
func readJSON(data []byte) (jsonValue, *Error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	r := &jsonReader{dec: dec, data: data}
	v, err := r.value("$", 0)
	if err != nil {
		return v, err
	}
	if _, tokErr := dec.Token(); tokErr != io.EOF {
		if tokErr != nil {
			return v, r.syntax(tokErr)
		}
		p := positionOf(string(data), int(dec.InputOffset()))
		return v, &Error{Line: p.Line, Column: p.Column, Message: "unexpected data after the rule"}
	}
	return v, nil
}

type jsonReader struct {
	dec  *json.Decoder
	data []byte
}

// syntax turns a decoder error into an Error at its line and column.
func (r *jsonReader) syntax(err error) *Error {
	var se *json.SyntaxError
	off := len(r.data)
	msg := "the JSON ends too early"
	if errors.As(err, &se) {
		off = int(se.Offset)
		msg = "invalid JSON: " + se.Error()
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "invalid JSON: " + err.Error()
	}
	p := positionOf(string(r.data), off)
	return &Error{Line: p.Line, Column: p.Column, Message: msg}
}

func (r *jsonReader) value(path string, depth int) (jsonValue, *Error) {
	tok, err := r.dec.Token()
	if err != nil {
		return jsonValue{}, r.syntax(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxJSONNesting {
			return jsonValue{}, &Error{Path: path, Message: fmt.Sprintf("the JSON nests more than %d levels deep", maxJSONNesting)}
		}
		if t == '[' {
			v := jsonValue{kind: '['}
			for r.dec.More() {
				item, err := r.value(fmt.Sprintf("%s[%d]", path, len(v.arr)), depth+1)
				if err != nil {
					return v, err
				}
				v.arr = append(v.arr, item)
			}
			_, err := r.dec.Token()
			if err != nil {
				return v, r.syntax(err)
			}
			return v, nil
		}
		v := jsonValue{kind: '{'}
		for r.dec.More() {
			kt, err := r.dec.Token()
			if err != nil {
				return v, r.syntax(err)
			}
			key, _ := kt.(string)
			kpath := jsonPath(path, key)
			if _, dup := v.get(key); dup {
				return v, &Error{Path: kpath, Message: fmt.Sprintf("the key %q appears twice", key)}
			}
			val, verr := r.value(kpath, depth+1)
			if verr != nil {
				return v, verr
			}
			v.obj = append(v.obj, jsonMember{key: key, val: val})
		}
		if _, err := r.dec.Token(); err != nil {
			return v, r.syntax(err)
		}
		return v, nil
	case string:
		return jsonValue{kind: 's', str: t}, nil
	case json.Number:
		return jsonValue{kind: 'n', num: t}, nil
	case bool:
		return jsonValue{kind: 'b', b: t}, nil
	}
	return jsonValue{kind: '0'}, nil
}

// jsonPath appends key to path: $.and, or $["first name"] for a key that is not a plain name.
func jsonPath(path, key string) string {
	plain := key != ""
	for i, r := range key {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// decoder turns a jsonValue into a rule, collecting errors.
type decoder struct {
	errs Errors
}

func (d *decoder) errorf(path, format string, args ...any) {
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, Error{Path: path, Message: fmt.Sprintf(format, args...)})
	}
}

// nodeKeys are the keys that say what a condition object is.
var nodeKeys = []string{"and", "or", "not", "field", "score", "has_tag", "subscribed", "unsubscribed", "in_segment", "bucket", "performed"}

func (d *decoder) node(v jsonValue, path string, where bool) Node {
	if v.kind != '{' {
		d.errorf(path, "expected a condition object, such as {\"field\": \"country\", \"op\": \"=\", \"value\": \"FR\"}, not %s", v.describe())
		return nil
	}
	kind := ""
	for _, m := range v.obj {
		if !slices.Contains(nodeKeys, m.key) {
			continue
		}
		if kind != "" {
			d.errorf(path, "the object has both %q and %q: write one condition per object", kind, m.key)
			return nil
		}
		kind = m.key
	}
	if kind == "" {
		if len(v.obj) == 0 {
			d.errorf(path, "an empty object is not a condition: use one of the keys %s", strings.Join(nodeKeys, ", "))
			return nil
		}
		key := v.obj[0].key
		d.errorf(jsonPath(path, key), "unknown key %q%s", key, cmp.Or(suggest(key, nodeKeys...), ": a condition has one of the keys "+strings.Join(nodeKeys, ", ")))
		return nil
	}
	allowed := []string{kind}
	if kind == "field" || kind == "score" {
		allowed = append(allowed, "op", "value")
	}
	bad := false
	for _, m := range v.obj {
		if !slices.Contains(allowed, m.key) {
			d.errorf(jsonPath(path, m.key), "unknown key %q%s", m.key, cmp.Or(suggest(m.key, allowed...), fmt.Sprintf(": a %q condition has the keys %s", kind, strings.Join(allowed, ", "))))
			bad = true
		}
	}
	if where && kind != "and" && kind != "or" && kind != "not" && kind != "field" {
		d.errorf(jsonPath(path, kind), "only and, or, not and field conditions (on the event's properties) are allowed inside where")
		return nil
	}
	val, _ := v.get(kind)
	vpath := jsonPath(path, kind)
	at := Pos{Path: path}
	var n Node
	switch kind {
	case "and", "or":
		items := d.items(val, vpath, where)
		if items == nil {
			return nil
		}
		if kind == "and" {
			n = &And{At: at, Items: items}
		} else {
			n = &Or{At: at, Items: items}
		}
	case "not":
		item := d.node(val, vpath, where)
		if item == nil {
			return nil
		}
		n = &Not{At: at, Item: item}
	case "field":
		n = d.compare(v, path, where)
	case "score":
		n = d.score(v, path)
	case "has_tag":
		if s, ok := d.text(val, vpath); ok {
			n = &HasTag{At: at, Tag: s, TagAt: Pos{Path: vpath}}
		}
	case "subscribed", "unsubscribed":
		if s, ok := d.text(val, vpath); ok {
			n = &Consent{At: at, Channel: s, ChannelAt: Pos{Path: vpath}, Status: consentStatus(kind)}
		}
	case "in_segment":
		if s, ok := d.text(val, vpath); ok {
			n = &InSegment{At: at, Ref: s, RefAt: Pos{Path: vpath}}
		}
	case "bucket":
		n = d.bucket(val, vpath, at)
	case "performed":
		n = d.performed(val, vpath, at)
	}
	if bad {
		return nil
	}
	return n
}

// items decodes the items of an and or an or: a list of at least two conditions.
func (d *decoder) items(v jsonValue, path string, where bool) []Node {
	if v.kind != '[' || len(v.arr) < 2 {
		what := v.describe()
		if v.kind == '[' {
			what = fmt.Sprintf("a list of %d", len(v.arr))
		}
		d.errorf(path, "expected a list of at least two conditions, not %s", what)
		return nil
	}
	items := make([]Node, len(v.arr))
	ok := true
	for i, it := range v.arr {
		items[i] = d.node(it, fmt.Sprintf("%s[%d]", path, i), where)
		ok = ok && items[i] != nil
	}
	if !ok {
		return nil
	}
	return items
}

func (d *decoder) text(v jsonValue, path string) (string, bool) {
	if v.kind != 's' {
		d.errorf(path, "expected text, not %s", v.describe())
		return "", false
	}
	return v.str, true
}

func (d *decoder) number(v jsonValue, path string) (float64, bool) {
	if v.kind != 'n' {
		d.errorf(path, "expected a number, not %s", v.describe())
		return 0, false
	}
	f, err := strconv.ParseFloat(v.num.String(), 64)
	if err != nil {
		d.errorf(path, "the number %s is too large", v.num)
		return 0, false
	}
	return f, true
}

// op decodes the "op" member of v, which must be one of allowed.
func (d *decoder) op(v jsonValue, path string, allowed func(Op) bool, list string) (Op, bool) {
	ov, ok := v.get("op")
	opath := jsonPath(path, "op")
	if !ok {
		d.errorf(path, "the key \"op\" is missing: it is one of %s", list)
		return "", false
	}
	s, ok := d.text(ov, opath)
	if !ok {
		return "", false
	}
	if op := Op(s); op.valid() && allowed(op) {
		return op, true
	}
	d.errorf(opath, "%q is not an operator here: use one of %s", s, list)
	return "", false
}

const comparisonList = "=, !=, <, <=, >, >="

func (d *decoder) compare(v jsonValue, path string, where bool) Node {
	fv, _ := v.get("field")
	fpath := jsonPath(path, "field")
	ref, ok := d.text(fv, fpath)
	if !ok {
		return nil
	}
	f := Field{Name: ref, Scope: Attribute, At: Pos{Path: fpath}}
	switch {
	case where:
		f.Scope = Property
	case strings.HasPrefix(ref, attributesPrefix):
		f.Name = ref[len(attributesPrefix):]
	case isBuiltin(ref):
		f.Scope = Builtin
	}
	if f.Name == "" {
		d.errorf(fpath, "the field's name is empty")
		return nil
	}
	op, ok := d.op(v, path, Op.valid, "=, !=, <, <=, >, >=, in, not in, contains, not contains, starts_with, not starts_with, exists, not exists, within, older_than")
	if !ok {
		return nil
	}
	c := &Compare{Field: f, Op: op, OpAt: Pos{Path: jsonPath(path, "op")}}
	vpath := jsonPath(path, "value")
	val, has := v.get("value")
	if op == Exists || op == NotExists {
		if has {
			d.errorf(vpath, "%q takes no value", op)
			return nil
		}
		return c
	}
	if !has {
		d.errorf(path, "the key \"value\" is missing")
		return nil
	}
	c.Value, ok = d.literal(val, vpath, op)
	if !ok {
		return nil
	}
	return c
}

// literal decodes the value of a comparison with op.
func (d *decoder) literal(v jsonValue, path string, op Op) (Literal, bool) {
	lit := Literal{At: Pos{Path: path}}
	pos, _ := op.positive()
	switch {
	case op.isComparison():
		switch v.kind {
		case 's':
			lit.Kind, lit.Text = LitText, v.str
		case 'n':
			var ok bool
			lit.Kind = LitNumber
			if lit.Number, ok = d.number(v, path); !ok {
				return lit, false
			}
		case 'b':
			lit.Kind, lit.Bool = LitBool, v.b
		default:
			d.errorf(path, "expected text, a number, true or false, not %s", v.describe())
			return lit, false
		}
	case pos == In:
		if v.kind != '[' || len(v.arr) == 0 {
			what := v.describe()
			if v.kind == '[' {
				what = "an empty list"
			}
			d.errorf(path, "expected a list of at least one text or number, not %s", what)
			return lit, false
		}
		lit.Kind = LitList
		for i, it := range v.arr {
			ipath := fmt.Sprintf("%s[%d]", path, i)
			item := Literal{At: Pos{Path: ipath}}
			switch it.kind {
			case 's':
				item.Kind, item.Text = LitText, it.str
			case 'n':
				var ok bool
				item.Kind = LitNumber
				if item.Number, ok = d.number(it, ipath); !ok {
					return lit, false
				}
			default:
				d.errorf(ipath, "expected text or a number, not %s", it.describe())
				return lit, false
			}
			lit.List = append(lit.List, item)
		}
	case pos == Contains || pos == StartsWith:
		s, ok := d.text(v, path)
		if !ok {
			return lit, false
		}
		lit.Kind, lit.Text = LitText, s
	default: // within, older_than
		dur, ok := d.duration(v, path)
		if !ok {
			return lit, false
		}
		lit.Kind, lit.Duration = LitDuration, dur
	}
	return lit, true
}

func (d *decoder) duration(v jsonValue, path string) (Duration, bool) {
	if v.kind != 's' {
		d.errorf(path, "expected a duration such as \"30d\", not %s", v.describe())
		return Duration{}, false
	}
	s := v.str
	dur, err := ParseDuration(s)
	if err != nil {
		d.errorf(path, "%s", err)
		return Duration{}, false
	}
	return dur, true
}

func (d *decoder) score(v jsonValue, path string) Node {
	sv, _ := v.get("score")
	spath := jsonPath(path, "score")
	name, ok := d.text(sv, spath)
	if !ok {
		return nil
	}
	op, ok := d.op(v, path, Op.isComparison, comparisonList)
	if !ok {
		return nil
	}
	vpath := jsonPath(path, "value")
	val, has := v.get("value")
	if !has {
		d.errorf(path, "the key \"value\" is missing")
		return nil
	}
	f, ok := d.number(val, vpath)
	if !ok {
		return nil
	}
	return &Score{At: Pos{Path: path}, Name: name, NameAt: Pos{Path: spath}, Op: op, OpAt: Pos{Path: jsonPath(path, "op")}, Value: f, ValueAt: Pos{Path: vpath}}
}

// object checks that v is an object with only the allowed keys and every required one.
func (d *decoder) object(v jsonValue, path string, allowed, required []string) bool {
	if v.kind != '{' {
		d.errorf(path, "expected an object with the keys %s, not %s", strings.Join(allowed, ", "), v.describe())
		return false
	}
	ok := true
	for _, m := range v.obj {
		if !slices.Contains(allowed, m.key) {
			d.errorf(jsonPath(path, m.key), "unknown key %q%s", m.key, cmp.Or(suggest(m.key, allowed...), ": the keys are "+strings.Join(allowed, ", ")))
			ok = false
		}
	}
	for _, k := range required {
		if _, has := v.get(k); !has {
			d.errorf(path, "the key %q is missing", k)
			ok = false
		}
	}
	return ok
}

func (d *decoder) bucket(v jsonValue, path string, at Pos) Node {
	if !d.object(v, path, []string{"from", "to", "seed"}, []string{"to"}) {
		return nil
	}
	b := &Bucket{At: at, RangeAt: Pos{Path: path}}
	ok := true
	if fv, has := v.get("from"); has {
		b.From, ok = d.number(fv, jsonPath(path, "from"))
	}
	tv, _ := v.get("to")
	to, tok := d.number(tv, jsonPath(path, "to"))
	b.To = to
	if sv, has := v.get("seed"); has {
		var sok bool
		b.SeedAt = Pos{Path: jsonPath(path, "seed")}
		b.Seed, sok = d.text(sv, b.SeedAt.Path)
		ok = ok && sok
	}
	if !ok || !tok {
		return nil
	}
	return b
}

func (d *decoder) performed(v jsonValue, path string, at Pos) Node {
	if !d.object(v, path, []string{"event", "within", "count", "where"}, []string{"event"}) {
		return nil
	}
	pf := &Performed{At: at}
	ok := true
	ev, _ := v.get("event")
	pf.EventAt = Pos{Path: jsonPath(path, "event")}
	pf.Event, ok = d.text(ev, pf.EventAt.Path)
	if wv, has := v.get("within"); has {
		pf.WithinAt = Pos{Path: jsonPath(path, "within")}
		dur, dok := d.duration(wv, pf.WithinAt.Path)
		pf.Within = &dur
		ok = ok && dok
	}
	if cv, has := v.get("count"); has {
		cpath := jsonPath(path, "count")
		if !d.object(cv, cpath, []string{"op", "value"}, []string{"op", "value"}) {
			ok = false
		} else {
			op, opOK := d.op(cv, cpath, Op.isComparison, comparisonList)
			vv, _ := cv.get("value")
			vpath := jsonPath(cpath, "value")
			n, err := strconv.ParseInt(vv.num.String(), 10, 64)
			if vv.kind != 'n' || err != nil {
				d.errorf(vpath, "expected a whole number, not %s", cmp.Or(vv.num.String(), vv.describe()))
				opOK = false
			}
			pf.Count = &Count{Op: op, Value: n, At: Pos{Path: vpath}}
			ok = ok && opOK
		}
	}
	if wv, has := v.get("where"); has {
		pf.Where = d.node(wv, jsonPath(path, "where"), true)
		ok = ok && pf.Where != nil
	}
	if !ok {
		return nil
	}
	return pf
}
