package imports

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
)

// Mapping maps CSV column headers to contact fields, as an import request gives it. Each value is a target:
//
//	email, phone, user_id, timezone, locale    the contact's identifiers and settings
//	tags, remove_tags                          tags to add or remove, separated by "|"
//	consent.<channel>                          consent on a channel: subscribed, unsubscribed or unknown
//	                                           (also yes/no, true/false, 1/0)
//	attributes.<name>[:<type>]                 an attribute; type is string, number, bool, date or list
//	                                           ("|"-separated); without a type the value is inferred
//	-                                          skip the column
//
// Columns the mapping does not name map by their header (see DefaultTarget).
type Mapping map[string]string

// ParseMapping decodes a mapping from its JSON form, {"E-mail":"email","Age":"attributes.age:number","Notes":"-"},
// and checks every target. Problems come back together as an *errs.ValidationError with fields "mapping.<column>".
func ParseMapping(s string) (Mapping, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m Mapping
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&m); err != nil {
		return nil, errs.Invalid("mapping", "must be a JSON object of column header to target, such as "+
			`{"E-mail":"email","Age":"attributes.age:number","Notes":"-"}: %s`, err)
	}
	if dec.More() {
		return nil, errs.Invalid("mapping", "has data after the JSON object")
	}
	v := &errs.ValidationError{}
	for _, col := range sortedKeys(m) {
		if _, err := parseTarget(m[col]); err != nil {
			v.Add("mapping."+col, "%s", err)
		}
	}
	return m, v.OrNil()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// targetKind is what a column feeds.
type targetKind uint8

const (
	skip targetKind = iota
	toEmail
	toPhone
	toUserID
	toTimezone
	toLocale
	toTags
	toRemoveTags
	toConsent
	toAttribute
)

// valueType is the type a mapping gives an attribute column.
type valueType uint8

const (
	inferType valueType = iota
	stringType
	numberType
	boolType
	dateType
	listType
)

var typeNames = map[string]valueType{"string": stringType, "number": numberType, "bool": boolType, "date": dateType, "list": listType}

func (t valueType) String() string {
	for name, v := range typeNames {
		if v == t {
			return name
		}
	}
	return ""
}

// target is a parsed mapping target.
type target struct {
	kind targetKind
	name string // channel or attribute name
	typ  valueType
}

var fixedTargets = map[string]targetKind{
	"email": toEmail, "phone": toPhone, "user_id": toUserID, "timezone": toTimezone, "locale": toLocale,
	"tags": toTags, "remove_tags": toRemoveTags,
}

// field is the contacts.Fields path the target writes ("email", "consent.sms", "attributes.age"), as validation
// errors name it.
func (t target) field() string {
	switch t.kind {
	case toConsent:
		return "consent." + t.name
	case toAttribute:
		return "attributes." + t.name
	case skip:
		return ""
	}
	for name, k := range fixedTargets {
		if k == t.kind {
			return name
		}
	}
	return ""
}

// String is the target in mapping syntax.
func (t target) String() string {
	if t.kind == skip {
		return "-"
	}
	if t.typ != inferType {
		return t.field() + ":" + t.typ.String()
	}
	return t.field()
}

func parseTarget(spec string) (target, error) {
	s := strings.TrimSpace(spec)
	if s == "-" {
		return target{kind: skip}, nil
	}
	if k, ok := fixedTargets[s]; ok {
		return target{kind: k}, nil
	}
	if ch, ok := strings.CutPrefix(s, "consent."); ok {
		if ch == "" {
			return target{}, fmt.Errorf("%q names no channel: write consent.<channel>, such as consent.email", spec)
		}
		return target{kind: toConsent, name: ch}, nil
	}
	if name, ok := strings.CutPrefix(s, "attributes."); ok {
		t := target{kind: toAttribute, name: name}
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			typ, ok := typeNames[name[i+1:]]
			if !ok {
				return target{}, fmt.Errorf("unknown type %q in %q: use string, number, bool, date or list", name[i+1:], spec)
			}
			t.name, t.typ = name[:i], typ
		}
		if err := contacts.ValidateAttributeName(t.name); err != nil {
			return target{}, fmt.Errorf("%q: %w", spec, err)
		}
		return t, nil
	}
	return target{}, fmt.Errorf("unknown target %q: use email, phone, user_id, timezone, locale, tags, remove_tags, "+
		"consent.<channel>, attributes.<name>[:type] or - to skip the column", spec)
}

// headerAliases are header spellings that map to a field by default, after lower-casing and turning spaces and
// dashes into underscores.
var headerAliases = map[string]string{
	"email": "email", "e_mail": "email", "email_address": "email",
	"phone": "phone", "phone_number": "phone",
	"user_id": "user_id", "userid": "user_id",
	"timezone": "timezone", "time_zone": "timezone",
	"locale":      "locale",
	"tags":        "tags",
	"remove_tags": "remove_tags",
}

// DefaultTarget is how a column the mapping does not name is read, from its header: the field names (and a few
// spellings of them, any case: "E-mail", "Email Address", "Phone Number", "Time Zone") map to their field;
// "consent.<channel>" to consent; "attributes.<name>" to that attribute; "id" (a Crosscast contact id, which an
// import cannot set) and empty headers are skipped; every other header names an attribute.
func DefaultTarget(header string) string {
	h := strings.TrimSpace(header)
	if h == "" {
		return "-"
	}
	norm := strings.NewReplacer(" ", "_", "-", "_").Replace(strings.ToLower(h))
	if f, ok := headerAliases[norm]; ok {
		return f
	}
	if norm == "id" {
		return "-"
	}
	lower := strings.ToLower(h)
	if strings.HasPrefix(lower, "consent.") {
		return "consent." + strings.ToLower(strings.TrimSpace(h[len("consent."):]))
	}
	if strings.HasPrefix(lower, "attributes.") {
		return "attributes." + strings.TrimSpace(h[len("attributes."):])
	}
	return "attributes." + h
}

// defaultTarget parses DefaultTarget; an attribute header with a ':' keeps it in the name (no type).
func defaultTarget(header string) (target, error) {
	spec := DefaultTarget(header)
	if name, ok := strings.CutPrefix(spec, "attributes."); ok {
		if err := contacts.ValidateAttributeName(name); err != nil {
			return target{}, err
		}
		return target{kind: toAttribute, name: name}, nil
	}
	return parseTarget(spec)
}

// convert turns a non-empty, trimmed cell into an attribute value for contacts.Fields.
func convert(cell string, typ valueType) (any, error) {
	switch typ {
	case inferType:
		switch strings.ToLower(cell) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		if looksNumeric(cell) {
			if f, err := strconv.ParseFloat(cell, 64); err == nil {
				return f, nil
			}
		}
		return cell, nil
	case stringType:
		return cell, nil
	case numberType:
		f, err := strconv.ParseFloat(cell, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%q is not a number", clip(cell))
		}
		return f, nil
	case boolType:
		if b, ok := parseBool(cell); ok {
			return b, nil
		}
		return nil, fmt.Errorf("%q is not a boolean: use true/false, yes/no or 1/0", clip(cell))
	case dateType:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
			if t, err := time.Parse(layout, cell); err == nil {
				return t, nil
			}
		}
		return nil, fmt.Errorf("%q is not a date: use 2026-03-01, 2026-03-01 14:30:00 or RFC 3339 (2026-03-01T14:30:00Z)", clip(cell))
	case listType:
		return splitList(cell), nil
	}
	return nil, fmt.Errorf("unknown type")
}

// looksNumeric accepts plain decimal numbers without leading zeros, signs other than '-', or more than 15
// integer digits: "0612345678", "+33", "007" and long ids stay text, as a person reading them expects.
func looksNumeric(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	digits := i - start
	if digits == 0 || digits > 15 || (digits > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		frac := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == frac {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == exp || i-exp > 3 {
			return false
		}
	}
	return i == len(s)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "y", "1":
		return true, true
	case "false", "no", "n", "0":
		return false, true
	}
	return false, false
}

// parseConsent reads a consent cell.
func parseConsent(s string) (contacts.ConsentStatus, error) {
	switch strings.ToLower(s) {
	case "subscribed", "opted_in", "opt-in", "optin":
		return contacts.Subscribed, nil
	case "unsubscribed", "opted_out", "opt-out", "optout":
		return contacts.Unsubscribed, nil
	case "unknown":
		return contacts.Unknown, nil
	}
	if b, ok := parseBool(s); ok {
		if b {
			return contacts.Subscribed, nil
		}
		return contacts.Unsubscribed, nil
	}
	return "", fmt.Errorf("%q is not a consent status: use subscribed, unsubscribed or unknown (or yes/no)", clip(s))
}

// splitList splits a "|"-separated cell, trimming items and dropping empty ones.
func splitList(s string) []string {
	parts := strings.Split(s, "|")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// errorsAs is errors.As for a target type, returning the match.
func errorsAs[T error](err error) (T, bool) {
	var t T
	ok := errors.As(err, &t)
	return t, ok
}
