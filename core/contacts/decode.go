package contacts

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decode reads a stored profile into c, replacing whatever c held. It gives exactly what json.Unmarshal gives when
// decoding data into a zero Contact: the same contact for every input, and an error exactly when json.Unmarshal
// returns one (the error text may differ).
//
// It exists for the start of the server, when the segment index is rebuilt from every stored profile: with
// encoding/json that took ~4 s per million profiles (docs/RATIONALE.md). Decode reads the documents Encode writes
// in a single pass without reflection, allocating only the strings, slices and maps the contact keeps: about a
// quarter of encoding/json's time and 28 allocations instead of 73 for a typical profile (BenchmarkDecode). Key
// order does not matter, unknown keys are skipped, and escapes, null and every kind of attribute value are handled.
// Whatever the fast path does not handle (a syntax or type error, a duplicated field, a key that only matches a
// field without regard to case, deep nesting in an unknown value...) is decoded again by json.Unmarshal, so that
// results always agree; FuzzDecode checks this.
//
// Every string is a copy of its own: nothing refers to data once Decode returns (data may be a bbolt value, valid
// only during its transaction), and a caller that keeps one string of the contact, as an index does, does not keep
// the others alive with it.
func Decode(data []byte, c *Contact) error {
	if c == nil {
		return json.Unmarshal(data, c) // its error for a nil target
	}
	*c = Contact{}
	d := decoder{data: data}
	if d.contact(c) {
		return nil
	}
	*c = Contact{}
	return json.Unmarshal(data, c)
}

// decoder is the fast path of Decode. Each method reads one JSON value at d.i and reports whether it could: false
// means "hand the whole document to encoding/json", never "the document is wrong".
type decoder struct {
	data []byte
	i    int
}

// maxSkipDepth bounds the nesting of the unknown values the fast path skips; deeper ones go to encoding/json, which
// has its own (much higher) limit.
const maxSkipDepth = 64

// Fields of Contact, numbered for the set of fields seen.
const (
	fID = iota
	fEmail
	fPhone
	fUserID
	fAnonymousIDs
	fAttributes
	fTags
	fConsent
	fTimezone
	fLocale
	fCreatedAt
	fUpdatedAt
	fLastSeenAt
)

func contactField(name []byte) int {
	switch string(name) {
	case "id":
		return fID
	case "email":
		return fEmail
	case "phone":
		return fPhone
	case "user_id":
		return fUserID
	case "anonymous_ids":
		return fAnonymousIDs
	case "attributes":
		return fAttributes
	case "tags":
		return fTags
	case "consent":
		return fConsent
	case "timezone":
		return fTimezone
	case "locale":
		return fLocale
	case "created_at":
		return fCreatedAt
	case "updated_at":
		return fUpdatedAt
	case "last_seen_at":
		return fLastSeenAt
	}
	return -1
}

// foldsToField reports whether encoding/json would match name to one of fields without regard to case (it does
// so when no field has that exact name): the fast path leaves such documents to encoding/json.
func foldsToField(name []byte, fields ...string) bool {
	for _, f := range fields {
		if bytes.EqualFold(name, []byte(f)) {
			return true
		}
	}
	return false
}

func (d *decoder) contact(c *Contact) bool {
	d.ws()
	if !d.consume('{') {
		return false
	}
	var seen uint16
	d.ws()
	if d.consume('}') {
		return d.end()
	}
	for {
		name, ok := d.key()
		if !ok {
			return false
		}
		f := contactField(name)
		if f < 0 {
			if foldsToField(name, "id", "email", "phone", "user_id", "anonymous_ids", "attributes", "tags", "consent",
				"timezone", "locale", "created_at", "updated_at", "last_seen_at") {
				return false
			}
			ok = d.skip(0)
		} else {
			// A repeated field merges into the first one's map or slice in encoding/json: leave that to it.
			if seen&(1<<f) != 0 {
				return false
			}
			seen |= 1 << f
			switch f {
			case fID:
				ok = d.stringField(&c.ID)
			case fEmail:
				ok = d.stringField(&c.Email)
			case fPhone:
				ok = d.stringField(&c.Phone)
			case fUserID:
				ok = d.stringField(&c.UserID)
			case fAnonymousIDs:
				ok = d.stringsField(&c.AnonymousIDs)
			case fAttributes:
				ok = d.attributes(&c.Attributes)
			case fTags:
				ok = d.stringsField(&c.Tags)
			case fConsent:
				ok = d.consents(&c.Consent)
			case fTimezone:
				ok = d.stringField(&c.Timezone)
			case fLocale:
				ok = d.stringField(&c.Locale)
			case fCreatedAt:
				ok = d.timeField(&c.CreatedAt)
			case fUpdatedAt:
				ok = d.timeField(&c.UpdatedAt)
			case fLastSeenAt:
				ok = d.timeField(&c.LastSeenAt)
			}
		}
		if !ok {
			return false
		}
		if more, ok := d.next('}'); !ok {
			return false
		} else if !more {
			return d.end()
		}
	}
}

// key reads an object key, the colon and the blanks around it, and returns the key's text. The text is a
// sub-slice of the input unless the key has escapes or invalid UTF-8.
func (d *decoder) key() ([]byte, bool) {
	raw, plain, ok := d.rawString()
	if !ok {
		return nil, false
	}
	d.ws()
	if !d.consume(':') {
		return nil, false
	}
	d.ws()
	if plain {
		return raw, true
	}
	return []byte(unquote(raw)), true
}

// next reads the blanks after a member or element, then either a comma (more is true) or the closing byte.
func (d *decoder) next(closing byte) (more, ok bool) {
	d.ws()
	if d.consume(',') {
		d.ws()
		return true, true
	}
	if d.consume(closing) {
		return false, true
	}
	return false, false
}

func (d *decoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *decoder) consume(b byte) bool {
	if d.i < len(d.data) && d.data[d.i] == b {
		d.i++
		return true
	}
	return false
}

func (d *decoder) literal(lit string) bool {
	if len(d.data)-d.i >= len(lit) && string(d.data[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// end reports whether only blanks are left.
func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.data)
}

// rawString reads a string and returns its bytes between the quotes. plain is true when they are the string's
// text as is: no escapes, valid UTF-8.
func (d *decoder) rawString() (raw []byte, plain, ok bool) {
	if !d.consume('"') {
		return nil, false, false
	}
	start := d.i
	plain = true
	ascii := true
	data := d.data
	for i := start; ; {
		// Skip eight ordinary bytes at a time (printable ASCII but the quote and the backslash): a term's high bit
		// is set in a word that has a byte < 0x20, '"', '\\' or >= 0x80, and only then.
		for i+8 <= len(data) {
			x := binary.LittleEndian.Uint64(data[i:])
			if ((x-0x20*lsb)|((x^'"'*lsb)-lsb)|((x^'\\'*lsb)-lsb)|x)&msb != 0 {
				break
			}
			i += 8
		}
		if i >= len(data) {
			return nil, false, false
		}
		switch c := data[i]; {
		case c == '"':
			raw = data[start:i]
			d.i = i + 1
			if !ascii && plain {
				plain = utf8.Valid(raw)
			}
			return raw, plain, true
		case c == '\\':
			plain = false
			if i+1 >= len(data) {
				return nil, false, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || hex4(data[i+2:i+6]) < 0 {
					return nil, false, false
				}
				i += 6
			default:
				return nil, false, false
			}
		case c < 0x20:
			return nil, false, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			i++
		}
	}
}

// lsb and msb are the low and the high bit of each byte of a word.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// text reads a string and returns its text.
func (d *decoder) text() (string, bool) {
	raw, plain, ok := d.rawString()
	if !ok {
		return "", false
	}
	if plain {
		return string(raw), true
	}
	return unquote(raw), true
}

// hex4 returns the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote returns the text of a string's raw bytes, already checked by rawString, as encoding/json unquotes it:
// invalid UTF-8 and unpaired surrogates become U+FFFD.
func unquote(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw) + utf8.UTFMax)
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '\\':
			switch raw[i+1] {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r := hex4(raw[i+2:])
				i += 6
				if r >= 0xd800 && r < 0xe000 {
					if r < 0xdc00 && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
						if r2 := hex4(raw[i+2:]); r2 >= 0xdc00 && r2 < 0xe000 {
							b.WriteRune(0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00))
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b.WriteRune(r)
				continue
			default: // '"', '\\', '/'
				b.WriteByte(raw[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRune(raw[i:])
			b.WriteRune(r) // U+FFFD for an invalid byte
			i += size
		}
	}
	return b.String()
}

// number reads a number and returns its text, with JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() ([]byte, bool) {
	data, start := d.data, d.i
	i := start
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && '1' <= data[i] && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return nil, false
	}
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			return nil, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			return nil, false
		}
		i = j
	}
	d.i = i
	return data[start:i], true
}

// digits returns the index of the first non-digit at or after i.
func digits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

// skip reads and checks any value, keeping nothing.
func (d *decoder) skip(depth int) bool {
	switch d.peek() {
	case '"':
		_, _, ok := d.rawString()
		return ok
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '{':
		if depth >= maxSkipDepth {
			return false
		}
		d.i++
		d.ws()
		if d.consume('}') {
			return true
		}
		for {
			if _, _, ok := d.rawString(); !ok {
				return false
			}
			d.ws()
			if !d.consume(':') {
				return false
			}
			d.ws()
			if !d.skip(depth + 1) {
				return false
			}
			if more, ok := d.next('}'); !ok || !more {
				return ok
			}
		}
	case '[':
		if depth >= maxSkipDepth {
			return false
		}
		d.i++
		d.ws()
		if d.consume(']') {
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			if more, ok := d.next(']'); !ok || !more {
				return ok
			}
		}
	}
	_, ok := d.number()
	return ok
}

// stringField reads a string into dst; null leaves dst alone, as in encoding/json.
func (d *decoder) stringField(dst *string) bool {
	switch d.peek() {
	case '"':
		s, ok := d.text()
		*dst = s
		return ok
	case 'n':
		return d.literal("null")
	}
	return false
}

// timeField reads a time into dst with time.Time's UnmarshalJSON, as encoding/json does.
func (d *decoder) timeField(dst *time.Time) bool {
	switch d.peek() {
	case '"':
		start := d.i
		raw, plain, ok := d.rawString()
		if !ok {
			return false
		}
		if plain {
			if t, ok := canonicalTime(raw); ok { // what UnmarshalJSON gives for it, in less time
				*dst = t
				return true
			}
		}
		return dst.UnmarshalJSON(d.data[start:d.i]) == nil
	case 'n':
		return d.literal("null")
	}
	return false
}

// stringsField reads an array of strings into dst: [] is an empty slice, null a nil one, a null item "".
func (d *decoder) stringsField(dst *[]string) bool {
	switch d.peek() {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '[':
	default:
		return false
	}
	d.i++
	var buf [8]string
	items := buf[:0]
	d.ws()
	if !d.consume(']') {
		for {
			switch d.peek() {
			case '"':
				s, ok := d.text()
				if !ok {
					return false
				}
				items = append(items, s)
			case 'n':
				if !d.literal("null") {
					return false
				}
				items = append(items, "")
			default:
				return false
			}
			more, ok := d.next(']')
			if !ok {
				return false
			}
			if !more {
				break
			}
		}
	}
	*dst = make([]string, len(items))
	copy(*dst, items)
	return true
}

// attributes reads the attributes object into dst.
func (d *decoder) attributes(dst *map[string]Value) bool {
	switch d.peek() {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '{':
	default:
		return false
	}
	d.i++
	m := make(map[string]Value)
	*dst = m
	d.ws()
	if d.consume('}') {
		return true
	}
	for {
		name, ok := d.key()
		if !ok {
			return false
		}
		v, ok := d.value()
		if !ok {
			return false
		}
		m[string(name)] = v
		if more, ok := d.next('}'); !ok || !more {
			return ok
		}
	}
}

// value reads an attribute value as Value's UnmarshalJSON does.
func (d *decoder) value() (Value, bool) {
	switch c := d.peek(); {
	case c == '"':
		raw, plain, ok := d.rawString()
		if !ok {
			return Value{}, false
		}
		if plain {
			if t, ok := canonicalTime(raw); ok { // what textValue would find, without a string for it
				return TimeValue(t), true
			}
		}
		var s string
		if plain {
			s = string(raw)
		} else {
			s = unquote(raw)
		}
		v, err := textValue(s)
		return v, err == nil
	case c == 't':
		return BoolValue(true), d.literal("true")
	case c == 'f':
		return BoolValue(false), d.literal("false")
	case c == '-' || '0' <= c && c <= '9':
		raw, ok := d.number()
		if !ok {
			return Value{}, false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) {
			return Value{}, false
		}
		return NumberValue(f), true
	case c == '[':
		return d.list()
	}
	// null and objects are errors in UnmarshalJSON.
	return Value{}, false
}

// list reads a list value: strings, numbers (their text) and booleans, as ParseValue takes them.
func (d *decoder) list() (Value, bool) {
	d.i++
	var buf [8]string
	items := buf[:0]
	d.ws()
	if !d.consume(']') {
		for {
			switch c := d.peek(); {
			case c == '"':
				s, ok := d.text()
				if !ok {
					return Value{}, false
				}
				items = append(items, s)
			case c == 't':
				if !d.literal("true") {
					return Value{}, false
				}
				items = append(items, "true")
			case c == 'f':
				if !d.literal("false") {
					return Value{}, false
				}
				items = append(items, "false")
			case c == '-' || '0' <= c && c <= '9':
				raw, ok := d.number()
				if !ok {
					return Value{}, false
				}
				items = append(items, string(raw))
			default:
				return Value{}, false
			}
			more, ok := d.next(']')
			if !ok {
				return Value{}, false
			}
			if !more {
				break
			}
		}
	}
	out := make([]string, len(items))
	copy(out, items)
	v, err := listValue(out)
	return v, err == nil
}

// consents reads the consent object into dst.
func (d *decoder) consents(dst *map[string]Consent) bool {
	switch d.peek() {
	case 'n':
		*dst = nil
		return d.literal("null")
	case '{':
	default:
		return false
	}
	d.i++
	m := make(map[string]Consent)
	*dst = m
	d.ws()
	if d.consume('}') {
		return true
	}
	for {
		name, ok := d.key()
		if !ok {
			return false
		}
		var cs Consent
		switch d.peek() {
		case 'n': // a zero Consent, as encoding/json stores it
			ok = d.literal("null")
		case '{':
			ok = d.consent(&cs)
		default:
			ok = false
		}
		if !ok {
			return false
		}
		m[string(name)] = cs
		if more, ok := d.next('}'); !ok || !more {
			return ok
		}
	}
}

// consent reads one channel's consent object.
func (d *decoder) consent(cs *Consent) bool {
	d.i++
	d.ws()
	if d.consume('}') {
		return true
	}
	for {
		name, ok := d.key()
		if !ok {
			return false
		}
		switch string(name) {
		case "status":
			ok = d.status(&cs.Status)
		case "at":
			ok = d.timeField(&cs.At)
		case "source":
			ok = d.stringField(&cs.Source)
		default:
			ok = !foldsToField(name, "status", "at", "source") && d.skip(0)
		}
		if !ok {
			return false
		}
		if more, ok := d.next('}'); !ok || !more {
			return ok
		}
	}
}

// status reads a consent status, without allocating for the known ones.
func (d *decoder) status(dst *ConsentStatus) bool {
	if d.peek() != '"' {
		return d.stringField((*string)(dst))
	}
	raw, plain, ok := d.rawString()
	if !ok {
		return false
	}
	switch {
	case !plain:
		*dst = ConsentStatus(unquote(raw))
	case string(raw) == string(Subscribed):
		*dst = Subscribed
	case string(raw) == string(Unsubscribed):
		*dst = Unsubscribed
	case string(raw) == string(Unknown):
		*dst = Unknown
	default:
		*dst = ConsentStatus(raw)
	}
	return true
}

// canonicalTime parses, without allocating, the form Encode writes for times in UTC: "2006-01-02T15:04:05Z" with
// 1 to 9 digits of fraction or none. When it says ok, both time.Parse(time.RFC3339Nano, ...) (attribute values)
// and time.Time's UnmarshalJSON (the contact's times) give the same time; for anything else it says no and the
// text goes to them.
func canonicalTime(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(s []byte) int {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(b[0:4]), num(b[5:7]), num(b[8:10])
	hour, minute, sec := num(b[11:13]), num(b[14:16]), num(b[17:19])
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		nsec = num(frac[1:])
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	if !ok || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	days := daysSinceEpoch(year, month, day)
	return time.Unix(int64(days)*86400+int64(hour*3600+minute*60+sec), int64(nsec)).UTC(), true
}

// daysSinceEpoch returns the number of days from 1970-01-01 to the given date of the proleptic Gregorian calendar
// (Howard Hinnant's days_from_civil), cheaper than time.Date.
func daysSinceEpoch(year, month, day int) int {
	if month <= 2 {
		year--
	}
	era := year / 400
	if year < 0 {
		era = (year - 399) / 400
	}
	yoe := year - era*400
	doy := (153*((month+9)%12)+2)/5 + day - 1
	return era*146097 + yoe*365 + yoe/4 - yoe/100 + doy - 719468
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
