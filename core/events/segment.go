package events

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/crosscast/crosscast/core/errs"
)

// Limits of the Segment HTTP Tracking API, which Crosscast keeps so that a client tuned for Segment never sends
// something Crosscast refuses (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size).
// Sizes are of the JSON as sent (after any Content-Encoding is undone), in KiB as analytics-node measures them.
const (
	// MaxEventBytes bounds one event: the body of a single call, or one item of a batch.
	MaxEventBytes = 32 << 10
	// MaxBatchBytes bounds the body of a batch request.
	MaxBatchBytes = 500 << 10
	// MaxIDBytes bounds messageId, userId, anonymousId, groupId and previousId.
	MaxIDBytes = 256
	// MaxNameBytes bounds a track call's event name and a page or screen name.
	MaxNameBytes = 1024
	// FutureTolerance is how far past the time received an event's (corrected) timestamp may be. A later timestamp
	// is replaced by the time received: a contact's "last seen" and "did X in the last N days" would otherwise be
	// wrong for as long as the clock was ahead, and a wrong clock tells nothing about when the event really happened.
	FutureTolerance = 5 * time.Minute
	// maxProblems bounds the problems a ValidationError lists for one request (a 500 KB batch of "{}" has 170k).
	maxProblems = 100
)

// Message is one parsed and validated Segment call.
type Message struct {
	// Event is the normalised event. Its Context holds the call's context (merged with a batch's context), with
	// context.ip as sent until SetIP decides what to keep of it. Its ContactID is empty.
	Event Event
	// Traits are an identify call's traits decoded with json.Number numbers; nil for other calls and when none.
	Traits map[string]any
	// Timezone and Locale are context.timezone and context.locale when they are strings.
	Timezone, Locale string
	// IP is context.ip when the client sent a valid IP address, "" otherwise.
	IP string

	ctx map[string]json.RawMessage // decoded context, so SetIP does not decode it again
}

// SetIP sets context.ip of the event to ip, or removes it when ip is "", and re-encodes Event.Context. The caller
// decides from the workspace's setting what to keep: the address as sent, an anonymised one (see AnonymizeIP), or
// nothing.
func (m *Message) SetIP(ip string) {
	if ip == "" {
		if _, ok := m.ctx["ip"]; !ok {
			return
		}
		delete(m.ctx, "ip")
	} else {
		q, _ := json.Marshal(ip)
		old, had := m.ctx["ip"]
		if had && bytes.Equal(old, q) {
			return // kept as sent: nothing to re-encode
		}
		if m.ctx == nil {
			m.ctx = map[string]json.RawMessage{}
		}
		m.ctx["ip"] = q
		if !had && len(m.Event.Context) >= 2 {
			// The common case (browsers never send an ip): add it to the object as sent instead of re-encoding it.
			m.Event.Context = spliceField(m.Event.Context, `"ip":`, q)
			return
		}
	}
	if len(m.ctx) == 0 {
		// The call sent no context, or only an ip that is now dropped: store none rather than "{}".
		m.Event.Context = nil
		return
	}
	// Every value of ctx is valid JSON (it was decoded from the request, or marshalled above), so this cannot fail.
	m.Event.Context, _ = json.Marshal(m.ctx)
}

// spliceField returns the JSON object obj with key (quoted, with its colon) and value added before its closing
// brace. obj is a valid object (the parser checked it); trailing whitespace is allowed.
func spliceField(obj json.RawMessage, key string, value []byte) json.RawMessage {
	end := bytes.LastIndexByte(obj, '}')
	body := bytes.TrimRight(obj[:end], " \t\r\n")
	out := make([]byte, 0, len(body)+len(key)+len(value)+2)
	out = append(out, body...)
	if body[len(body)-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, key...)
	out = append(out, value...)
	return append(out, '}')
}

// Batch is what one tracking request carries: one message for the single-call endpoints, any number for /v1/batch.
type Batch struct {
	Messages []Message
	// WriteKey is the writeKey of the body ("" if none), for clients that do not use Basic auth (analytics.js, the
	// mobile libraries).
	WriteKey string
	// Warnings list what was repaired rather than refused (an unreadable timestamp, a clock far in the future, an
	// invalid context.ip), as "field: what happened". They concern only what the request itself sent.
	Warnings []string
}

// SyntaxError is a request body that is not JSON (or not a JSON object); Offset is the byte where reading failed.
type SyntaxError struct {
	Msg    string
	Offset int64
}

func (e *SyntaxError) Error() string { return e.Msg }

// TooLargeError is a request body over its endpoint's limit.
type TooLargeError struct {
	Size, Limit int
	// What names the body: "an event" or "a batch".
	What string
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("request body is %d bytes; %s may be at most %d bytes (%d KB)", e.Size, e.What, e.Limit, e.Limit>>10)
}

// ParseMessage parses the body of a single call (POST /v1/track and the like) of type t, received at receivedAt.
// The body's "type" may be left out, and must be t if given. It returns a Batch of one message.
//
// Errors: *TooLargeError for a body over MaxEventBytes, *SyntaxError for one that is not a JSON object, and
// *errs.ValidationError listing every problem with its field path ("userId", "context"). On a ValidationError the
// returned Batch still carries the body's WriteKey, so that callers can authenticate before reporting problems.
func ParseMessage(body []byte, t Type, receivedAt time.Time) (Batch, error) {
	if !t.Valid() {
		return Batch{}, fmt.Errorf("parsing a %q call: not a Segment call type", t)
	}
	if len(body) > MaxEventBytes {
		return Batch{}, &TooLargeError{Size: len(body), Limit: MaxEventBytes, What: "an event"}
	}
	if err := checkObject(body); err != nil {
		return Batch{}, err
	}
	var w wireMessage
	if err := json.Unmarshal(bytes.Clone(body), &w); err != nil {
		return Batch{}, syntaxError(err)
	}
	p := parser{receivedAt: receivedAt.UTC(), v: &errs.ValidationError{}}
	b := Batch{Messages: make([]Message, 1)}
	b.WriteKey = p.str("", "writeKey", w.WriteKey)
	if !p.message("", &w, t, &b.Messages[0]) {
		b.Messages = nil
	}
	b.Warnings = p.warnings
	if err := p.err(); err != nil {
		return Batch{WriteKey: b.WriteKey}, err
	}
	return b, nil
}

// ParseBatch parses the body of a batch request (POST /v1/batch), received at receivedAt: {"batch": [...],
// "writeKey", "sentAt", "context", "integrations"}. Each item needs a "type". The batch's context is merged into
// each item's (the item's keys win); the batch's sentAt, when given, is used for every item's skew correction
// (clients set it when the request is sent, and again on each retry).
//
// Validation is all or nothing: any invalid item fails the whole batch, with every problem listed by its path
// ("batch.3.userId"). Errors are as for ParseMessage, with MaxBatchBytes for the body and MaxEventBytes for each
// item (an item over it is a validation problem naming its index).
func ParseBatch(body []byte, receivedAt time.Time) (Batch, error) {
	if len(body) > MaxBatchBytes {
		return Batch{}, &TooLargeError{Size: len(body), Limit: MaxBatchBytes, What: "a batch"}
	}
	if err := checkObject(body); err != nil {
		return Batch{}, err
	}
	// One pass decodes the envelope and cuts the items out; each item is decoded on its own below, so that one
	// bad item is reported with its index rather than failing the whole decode.
	var w struct {
		Batch        []json.RawMessage `json:"batch"`
		WriteKey     json.RawMessage   `json:"writeKey"`
		SentAt       json.RawMessage   `json:"sentAt"`
		Context      json.RawMessage   `json:"context"`
		Integrations json.RawMessage   `json:"integrations"`
	}
	batchNotList := false
	if err := json.Unmarshal(body, &w); err != nil {
		// The body is a valid JSON object (checked above) and every field but batch takes any value: a type error
		// can only be batch's, and the other fields are decoded all the same.
		var typ *json.UnmarshalTypeError
		if !errors.As(err, &typ) {
			return Batch{}, syntaxError(err)
		}
		batchNotList = true
	}
	p := parser{receivedAt: receivedAt.UTC(), v: &errs.ValidationError{}}
	var b Batch
	b.WriteKey = p.str("", "writeKey", w.WriteKey)
	p.sentAt = p.time("", "sentAt", w.SentAt)
	if ctx := p.object("", "context", w.Context); ctx != nil {
		p.defaults = map[string]json.RawMessage{}
		if err := json.Unmarshal(ctx, &p.defaults); err != nil {
			p.v.Add("context", "must be an object")
		}
	}
	p.object("", "integrations", w.Integrations)
	items := w.Batch
	switch {
	case batchNotList:
		p.v.Add("batch", "must be a list of calls")
		items = nil
	case w.Batch == nil:
		p.v.Add("batch", "is required: a list of calls")
	}
	b.Messages = make([]Message, 0, len(items))
	keyFrom := ""
	for i, raw := range items {
		prefix := "batch." + strconv.Itoa(i) + "."
		if len(raw) > MaxEventBytes {
			p.add(prefix[:len(prefix)-1], "is %d bytes; an event may be at most %d bytes (%d KB)", len(raw), MaxEventBytes, MaxEventBytes>>10)
			continue
		}
		if raw[0] != '{' {
			p.add(prefix[:len(prefix)-1], "must be an object")
			continue
		}
		var iw wireMessage
		if err := json.Unmarshal(raw, &iw); err != nil {
			p.add(prefix[:len(prefix)-1], "must be an object")
			continue
		}
		// analytics.js in batching mode repeats the write key in every item; a batch must not mix workspaces.
		if k := p.str(prefix, "writeKey", iw.WriteKey); k != "" {
			switch {
			case b.WriteKey == "":
				b.WriteKey, keyFrom = k, prefix+"writeKey"
			case k != b.WriteKey:
				if keyFrom == "" {
					keyFrom = "writeKey"
				}
				p.add(prefix+"writeKey", "differs from %s: a batch goes to one workspace", keyFrom)
			}
		}
		b.Messages = append(b.Messages, Message{})
		if !p.message(prefix, &iw, "", &b.Messages[len(b.Messages)-1]) {
			b.Messages = b.Messages[:len(b.Messages)-1]
		}
	}
	b.Warnings = p.warnings
	if err := p.err(); err != nil {
		return Batch{WriteKey: b.WriteKey}, err
	}
	return b, nil
}

// Correct returns when an event happened, from the client's clock readings and the server's, following Segment
// (https://segment.com/docs/connections/spec/common/#timestamps):
//
//   - originalTimestamp (the call's "timestamp", or its "originalTimestamp" when it sent only that) and sentAt are
//     both known: timestamp = receivedAt - (sentAt - originalTimestamp). The client's clock may be wrong, but the
//     time between the call and the request on that clock is right, and sentAt and receivedAt are taken as the same
//     instant (the request's transit time, usually milliseconds, is the error).
//   - originalTimestamp alone (a server library or a historical import sending its own timestamps): it is used as is.
//   - otherwise (no timestamp, or only sentAt): receivedAt.
//
// Then a timestamp more than FutureTolerance after receivedAt is replaced by receivedAt, and clamped reports it.
// Nothing is refused for an odd clock: the client's readings stay in OriginalTimestamp and SentAt.
func Correct(originalTimestamp, sentAt, receivedAt time.Time) (timestamp time.Time, clamped bool) {
	switch {
	case !originalTimestamp.IsZero() && !sentAt.IsZero():
		// Sub saturates at about 292 years, so an absurd pair of readings cannot overflow.
		timestamp = receivedAt.Add(-sentAt.Sub(originalTimestamp))
	case !originalTimestamp.IsZero():
		timestamp = originalTimestamp
	default:
		timestamp = receivedAt
	}
	if timestamp.Sub(receivedAt) > FutureTolerance {
		return receivedAt, true
	}
	return timestamp.UTC(), false
}

// AnonymizeIP returns ip with its host part zeroed: the last octet of an IPv4 address (203.0.113.7 becomes
// 203.0.113.0), the last 80 bits of an IPv6 address (2001:db8:1:2:3:4:5:6 becomes 2001:db8:1::). An IPv4 address
// mapped into IPv6 is treated as IPv4, and a zone is dropped. It returns "" for anything that is not an IP address:
// what cannot be anonymised is not kept.
func AnonymizeIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.Addr().String()
}

// wireMessage is a Segment call as sent. Fields stay raw so that each is checked with its own path and message.
// They alias the bytes decoded from, which must therefore belong to the parser (see rawValue).
type wireMessage struct {
	Type              rawValue `json:"type"`
	MessageID         rawValue `json:"messageId"`
	UserID            rawValue `json:"userId"`
	AnonymousID       rawValue `json:"anonymousId"`
	GroupID           rawValue `json:"groupId"`
	PreviousID        rawValue `json:"previousId"`
	Event             rawValue `json:"event"`
	Name              rawValue `json:"name"`
	Properties        rawValue `json:"properties"`
	Traits            rawValue `json:"traits"`
	Context           rawValue `json:"context"`
	Integrations      rawValue `json:"integrations"`
	Timestamp         rawValue `json:"timestamp"`
	OriginalTimestamp rawValue `json:"originalTimestamp"`
	SentAt            rawValue `json:"sentAt"`
	WriteKey          rawValue `json:"writeKey"`
}

// rawValue is a json.RawMessage that aliases the input of json.Unmarshal instead of copying it: a call's fields
// (a dozen per event) then cost no allocation. encoding/json passes UnmarshalJSON a subslice of the []byte given to
// Unmarshal, so this is safe exactly when that []byte is the parser's own copy: ParseMessage clones the body, and
// ParseBatch decodes each item from the copy the envelope's decoding made.
type rawValue []byte

// UnmarshalJSON keeps data without copying it.
func (r *rawValue) UnmarshalJSON(data []byte) error {
	*r = data
	return nil
}

// parser collects the problems and warnings of one request.
type parser struct {
	receivedAt time.Time
	sentAt     time.Time                  // the batch's, zero if none
	defaults   map[string]json.RawMessage // the batch's context
	v          *errs.ValidationError
	dropped    int // problems beyond maxProblems
	warnings   []string
}

func (p *parser) add(field, format string, args ...any) {
	if len(p.v.Fields) >= maxProblems {
		p.dropped++
		return
	}
	p.v.Add(field, format, args...)
}

func (p *parser) warn(field, format string, args ...any) {
	if len(p.warnings) >= maxProblems {
		return
	}
	p.warnings = append(p.warnings, field+": "+fmt.Sprintf(format, args...))
}

func (p *parser) err() error {
	if p.dropped > 0 {
		p.v.Add("", "and %d more problems", p.dropped)
	}
	return p.v.OrNil()
}

// message checks one call into m and reports whether it is valid; t is the endpoint's type ("" in a batch, where
// the call names its own).
func (p *parser) message(prefix string, w *wireMessage, t Type, m *Message) bool {
	before := len(p.v.Fields) + p.dropped
	typ := Type(p.str(prefix, "type", w.Type))
	switch {
	case t == "" && typ == "" && isAbsent(w.Type):
		p.add(prefix+"type", "is required: one of identify, track, page, screen, group, alias")
	case t == "" && !typ.Valid():
		p.add(prefix+"type", "unknown type %q: one of identify, track, page, screen, group, alias", typ)
	case t != "" && typ != "" && typ != t:
		p.add(prefix+"type", "is %q but this endpoint takes %s calls", typ, t)
	case t != "":
		typ = t
	}
	e := &m.Event
	e.Type = typ
	e.MessageID = p.id(prefix, "messageId", w.MessageID)
	e.UserID = p.id(prefix, "userId", w.UserID)
	e.AnonymousID = p.id(prefix, "anonymousId", w.AnonymousID)
	e.GroupID = p.id(prefix, "groupId", w.GroupID)
	e.PreviousID = p.id(prefix, "previousId", w.PreviousID)
	switch typ {
	case Track:
		e.Name = p.name(prefix, "event", w.Event)
		if e.Name == "" && !isPresent(w.Event) {
			p.add(prefix+"event", "is required: the name of the action (\"Order Completed\")")
		}
	case Page, Screen:
		e.Name = p.name(prefix, "name", w.Name)
	}
	switch typ {
	case Alias:
		if e.PreviousID == "" && !isPresent(w.PreviousID) {
			p.add(prefix+"previousId", "is required: the identity to alias (an anonymousId or an old userId)")
		}
		if e.UserID == "" && !isPresent(w.UserID) {
			p.add(prefix+"userId", "is required: the new identity")
		}
	case Group:
		if e.GroupID == "" && !isPresent(w.GroupID) {
			p.add(prefix+"groupId", "is required: the account the user belongs to")
		}
		fallthrough
	default:
		if e.UserID == "" && e.AnonymousID == "" && !isPresent(w.UserID) && !isPresent(w.AnonymousID) && typ.Valid() {
			p.add(prefix+"userId", "a %s call needs a userId or an anonymousId", typ)
		}
	}
	e.Properties = p.object(prefix, "properties", w.Properties)
	e.Traits = p.object(prefix, "traits", w.Traits)
	p.object(prefix, "integrations", w.Integrations)
	if typ == Identify && e.Traits != nil {
		dec := json.NewDecoder(bytes.NewReader(e.Traits))
		dec.UseNumber()
		if err := dec.Decode(&m.Traits); err != nil {
			p.add(prefix+"traits", "must be an object")
		}
	}
	p.context(prefix, w.Context, m)

	orig := p.time(prefix, "timestamp", w.Timestamp)
	if orig.IsZero() {
		orig = p.time(prefix, "originalTimestamp", w.OriginalTimestamp)
	}
	sent := p.sentAt
	if sent.IsZero() {
		sent = p.time(prefix, "sentAt", w.SentAt)
	}
	var clamped bool
	e.Timestamp, clamped = Correct(orig, sent, p.receivedAt)
	if clamped {
		p.warn(prefix+"timestamp", "is more than %s after the time received (the client's clock is ahead); the time received is used", FutureTolerance)
	}
	e.OriginalTimestamp, e.SentAt, e.ReceivedAt = orig, sent, p.receivedAt
	if !p.ok(before) {
		return false
	}
	if e.MessageID == "" {
		e.MessageID = newMessageID()
	}
	return true
}

// ok reports whether no problem was added since before.
func (p *parser) ok(before int) bool { return len(p.v.Fields)+p.dropped == before }

// context decodes the call's context, merges the batch's into it and reads ip, timezone and locale.
func (p *parser) context(prefix string, raw []byte, m *Message) {
	obj := p.object(prefix, "context", raw)
	if obj == nil && len(p.defaults) == 0 {
		return
	}
	ctx := map[string]json.RawMessage{}
	if obj != nil {
		if err := json.Unmarshal(obj, &ctx); err != nil {
			p.add(prefix+"context", "must be an object")
			return
		}
	}
	merged := false
	for k, v := range p.defaults {
		if _, ok := ctx[k]; !ok {
			ctx[k], merged = v, true
		}
	}
	m.ctx = ctx
	m.Timezone = optString(ctx["timezone"])
	m.Locale = optString(ctx["locale"])
	if ip, ok := ctx["ip"]; ok && !isAbsent(ip) {
		s := optString(ip)
		if a, err := netip.ParseAddr(s); err == nil {
			m.IP = a.WithZone("").String()
		} else {
			p.warn(prefix+"context.ip", "is not an IP address; the request's address is used")
		}
	}
	if merged {
		m.Event.Context, _ = json.Marshal(ctx)
	} else {
		m.Event.Context = obj
	}
}

// str reads an optional string ("" when absent or null).
// The readers below take a field's path as prefix and name, joined only to report a problem (a batch has many).

func (p *parser) str(prefix, name string, raw []byte) string {
	if isAbsent(raw) {
		return ""
	}
	s, ok := unquote(raw)
	if !ok {
		p.add(prefix+name, "must be a string")
		return ""
	}
	return s
}

// id reads an optional identifier: a string, or a number kept as written (clients send numeric user ids).
func (p *parser) id(prefix, name string, raw []byte) string {
	if isAbsent(raw) {
		return ""
	}
	var s string
	switch c := raw[0]; {
	case c == '"':
		s, _ = unquote(raw)
	case c == '-' || c >= '0' && c <= '9':
		s = string(raw)
	default:
		p.add(prefix+name, "must be a string or a number")
		return ""
	}
	if len(s) > MaxIDBytes {
		p.add(prefix+name, "is %d bytes; an id may be at most %d", len(s), MaxIDBytes)
		return ""
	}
	return s
}

func (p *parser) name(prefix, name string, raw []byte) string {
	s := p.str(prefix, name, raw)
	if len(s) > MaxNameBytes {
		p.add(prefix+name, "is %d bytes; a name may be at most %d", len(s), MaxNameBytes)
		return ""
	}
	return s
}

// object reads an optional object, returned as sent (nil when absent or null).
func (p *parser) object(prefix, name string, raw []byte) json.RawMessage {
	if isAbsent(raw) {
		return nil
	}
	if raw[0] != '{' {
		p.add(prefix+name, "must be an object")
		return nil
	}
	return json.RawMessage(raw)
}

// time reads an optional ISO-8601 time. One that cannot be read is a warning, not a refusal: the call is still
// worth keeping, with the time received.
func (p *parser) time(prefix, name string, raw []byte) time.Time {
	if isAbsent(raw) {
		return time.Time{}
	}
	s, ok := unquote(raw)
	if !ok {
		p.warn(prefix+name, "is not an ISO-8601 time string; it is ignored")
		return time.Time{}
	}
	t, ok := ParseTime(s)
	if !ok {
		p.warn(prefix+name, "is not an ISO-8601 time; it is ignored")
		return time.Time{}
	}
	return t
}

// timeLayouts are the ISO-8601 forms clients send. "1" and "2" take one or two digits (Segment's own docs show
// "2015-2-02T00:30:08.276Z"); a fraction of a second is accepted after the seconds in any of them.
var timeLayouts = []string{
	"2006-1-2T15:04:05Z07:00",
	"2006-1-2T15:04:05Z0700",
	"2006-1-2T15:04:05",
	"2006-1-2 15:04:05Z07:00",
	"2006-1-2 15:04:05Z0700",
	"2006-1-2 15:04:05",
	"2006-1-2T15:04Z07:00",
	"2006-1-2T15:04",
	"2006-1-2",
}

// ParseTime reads an ISO-8601 date or date-time as clients send them, in UTC. A time without a zone is taken as UTC.
func ParseTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(t.UTC())
	}
	if len(s) < len("2006-1-2") || len(s) > 64 {
		return time.Time{}, false
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return inRange(t.UTC())
		}
	}
	return time.Time{}, false
}

// inRange refuses times whose UTC year is outside 1-9999: JSON (RFC 3339) cannot write them, so a stored event
// holding one could never be read back ("0000-01-01T00:00:00+01:00" is the year -1 in UTC).
func inRange(t time.Time) (time.Time, bool) {
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// checkObject refuses an empty body and one that is not a JSON object, with the offset of the problem.
func checkObject(body []byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return &SyntaxError{Msg: "request body is empty; send a JSON object", Offset: 0}
	}
	if trimmed[0] != '{' {
		if !json.Valid(body) {
			return syntaxError(json.Unmarshal(body, new(any)))
		}
		return &SyntaxError{Msg: "request body must be a JSON object", Offset: int64(len(body) - len(trimmed))}
	}
	return nil
}

func syntaxError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return &SyntaxError{Msg: "request body is not valid JSON: " + syn.Error(), Offset: syn.Offset}
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return &SyntaxError{Msg: "request body must be a JSON object", Offset: typ.Offset}
	}
	return &SyntaxError{Msg: "request body is not valid JSON: " + err.Error()}
}

func isAbsent(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// isPresent reports whether a field was sent with a value, for not reporting "missing" on top of "wrong type".
func isPresent(raw []byte) bool { return !isAbsent(raw) && string(raw) != `""` }

func optString(raw []byte) string {
	s, _ := unquote(raw)
	return s
}

// unquote decodes a JSON string value (ok is false for any other kind). raw is valid JSON, as every value the
// parser sees was cut out of a decoded body; a valid UTF-8 string without escapes, the usual case, is copied without
// a decoder (which would also turn invalid UTF-8 into U+FFFD, as it does here for the rest).
func unquote(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// newMessageID returns an id for a call sent without one: "cc-" and a random UUID (version 4), so that it never
// collides with a client's and is recognisable as generated.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return "cc-" + string(out[:])
}
