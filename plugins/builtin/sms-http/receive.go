package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crosscast/crosscast/sdk"
)

// What both modes share to read callbacks, and the generic mode's receive: the operator describes the provider's
// delivery receipts and inbound messages in config.

const (
	// idParam is the callback URL's query parameter carrying our message id: a provider calling back the URL it
	// was given at send names our message without keeping our id itself.
	idParam = "m"
	// maxCallbackBody caps a callback's body: a delivery receipt or an inbound SMS takes a few hundred bytes.
	maxCallbackBody = 64 << 10
	// maxIDLen and maxTextLen cap what a callback puts in an event.
	maxIDLen, maxTextLen = 256, 4096
	// minSecretLen is the shortest callback_secret accepted: a shorter token can be guessed.
	minSecretLen = 16
	// defaultMaxAge is callback_max_age when callback_timestamp_field is set alone.
	defaultMaxAge = 5 * time.Minute
)

// callbackURL is base with our message id added to its query.
func callbackURL(base, id string) string { return withQuery(base, idParam, id) }

// messageIDOf reads our message id back from the query of the URL a provider called.
func messageIDOf(rawQuery string) string {
	q, _ := url.ParseQuery(rawQuery) // a malformed pair elsewhere leaves the others readable
	return clip(q.Get(idParam), maxIDLen)
}

// inboundEvent is the event of an inbound message: a stop word (stopWords and config stop_words, any case,
// spaces around) withdraws SMS consent, any other text is a reply.
func (c *channel) inboundEvent(from, text string) sdk.ChannelEvent {
	ev := sdk.ChannelEvent{Type: sdk.EventReplied, Address: clip(phoneNumber(from), maxIDLen), Detail: clip(text, maxTextLen)}
	word := strings.ToUpper(strings.TrimSpace(text))
	if slices.Contains(stopWords, word) || slices.Contains(c.extraStops, word) {
		ev.Type = sdk.EventUnsubscribed
	}
	return ev
}

// phoneNumber puts back the + that providers such as Vonage and Plivo leave out of E.164 numbers
// ("447700900001"), so that the number matches the contact's phone.
func phoneNumber(s string) string {
	s = strings.TrimSpace(s)
	if e164.MatchString("+" + s) {
		return "+" + s
	}
	return s
}

// clip makes s valid UTF-8 of at most n bytes, cut on a character boundary.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// reply is a plain-text HTTP reply without events.
func reply(status uint32, text string) sdk.HookReply {
	return sdk.HookReply{Status: status, Headers: sdk.Pairs{{Key: "Content-Type", Value: "text/plain; charset=utf-8"}}, Body: []byte(text)}
}

// genericReceive is the operator's description of a provider's callbacks: delivery receipts and inbound messages.
type genericReceive struct {
	json bool
	// auth is authToken or authHMAC; authParam or authHeader says where the token or signature is.
	auth, authParam, authHeader                              string
	statusField, errorField, messageIDField, providerIDField string
	fromField, textField                                     string
	delivered, failed, softFailed                            []string
	permanentErrors                                          map[string]bool
	// timestampField is the signed body field saying when the callback was sent (hmac-sha256 only; "" when
	// unchecked); a callback more than maxAge away from the host's clock is refused as a replay.
	timestampField string
	maxAge         time.Duration
}

// The callback_auth values.
const (
	authToken = "token"
	authHMAC  = "hmac-sha256"
)

// receiveFields are the config fields of the generic receive, beside receive_format and callback_secret.
var receiveFields = []string{"callback_auth", "callback_auth_param", "callback_auth_header", "status_field",
	"delivered_statuses", "failed_statuses", "soft_failed_statuses", "error_field", "permanent_errors",
	"message_id_field", "provider_id_field", "from_field", "text_field", "callback_timestamp_field", "callback_max_age"}

// setReceiveField returns the first receive field cfg sets (an empty list counts as unset), or "".
func setReceiveField(cfg map[string]any) string {
	for _, name := range append([]string{"receive_format"}, receiveFields...) {
		switch v := cfg[name].(type) {
		case string:
			if v != "" {
				return name
			}
		case []any:
			if len(v) > 0 {
				return name
			}
		}
	}
	return ""
}

// strings of a list(string) config field, trimmed, without empty items.
func stringList(cfg map[string]any, name string) []string {
	items, _ := cfg[name].([]any)
	var out []string
	for _, it := range items {
		if s, _ := it.(string); strings.TrimSpace(s) != "" {
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}

// configureReceive reads the generic receive's config; nil when receive_format is unset. Each error names the
// field at fault.
func configureReceive(cfg map[string]any, str func(string) string) (*genericReceive, error) {
	format := str("receive_format")
	switch format {
	case "":
		if name := setReceiveField(cfg); name != "" {
			return nil, fmt.Errorf(`%s: only read with receive_format: set receive_format = "form" or "json" for the generic provider to take callbacks`, name)
		}
		return nil, nil
	case "form", "json":
	default:
		return nil, fmt.Errorf(`receive_format: %q is not "form" or "json"`, format)
	}
	r := &genericReceive{json: format == "json", auth: str("callback_auth"), authParam: str("callback_auth_param"),
		statusField: str("status_field"), errorField: str("error_field"), messageIDField: str("message_id_field"),
		providerIDField: str("provider_id_field"), fromField: str("from_field"), textField: str("text_field"),
		delivered: stringList(cfg, "delivered_statuses"), failed: stringList(cfg, "failed_statuses"),
		softFailed: stringList(cfg, "soft_failed_statuses"), permanentErrors: map[string]bool{}}
	if h := str("callback_auth_header"); h != "" {
		r.authHeader = textproto.CanonicalMIMEHeaderKey(h)
	}
	for _, code := range stringList(cfg, "permanent_errors") {
		r.permanentErrors[code] = true
	}
	if err := r.checkAuth(); err != nil {
		return nil, err
	}
	if err := r.configureReplay(str("callback_timestamp_field"), str("callback_max_age")); err != nil {
		return nil, err
	}
	secret, ok, err := sdk.Secret("callback_secret")
	switch {
	case err != nil:
		return nil, fmt.Errorf("callback_secret: reading it: %w", err)
	case !ok || len(secret) < minSecretLen:
		return nil, fmt.Errorf("callback_secret: callback_auth = %q needs a secret of at least %d bytes (the operator's, e.g. env(\"SMS_CALLBACK_SECRET\")); it is missing or shorter", r.auth, minSecretLen)
	}
	return r, r.checkFields()
}

// checkAuth checks callback_auth and where it looks.
func (r *genericReceive) checkAuth() error {
	switch r.auth {
	case authToken:
		switch {
		case r.authParam == "" && r.authHeader == "":
			return errors.New("callback_auth_param: callback_auth = \"token\" needs the query parameter (callback_auth_param) or the header (callback_auth_header) holding the token")
		case r.authParam != "" && r.authHeader != "":
			return errors.New("callback_auth_header: set either callback_auth_param or callback_auth_header, not both")
		case r.authParam == idParam:
			return fmt.Errorf("callback_auth_param: %q carries the message id; choose another name", idParam)
		}
	case authHMAC:
		switch {
		case r.authHeader == "":
			return errors.New(`callback_auth_header: callback_auth = "hmac-sha256" needs the header holding the signature`)
		case r.authParam != "":
			return errors.New(`callback_auth_param: only for callback_auth = "token"; an HMAC signature is read from callback_auth_header`)
		}
	case "":
		return errors.New(`callback_auth: receive_format is set, so callbacks must be authenticated: "token" (callback_secret in a query parameter or header) or "hmac-sha256" (a signature of the body in a header)`)
	default:
		return fmt.Errorf(`callback_auth: %q is not "token" or "hmac-sha256"`, r.auth)
	}
	return nil
}

// configureReplay reads callback_timestamp_field and callback_max_age: the replay window of signed callbacks.
func (r *genericReceive) configureReplay(field, maxAge string) error {
	switch {
	case field != "" && r.auth != authHMAC:
		return errors.New(`callback_timestamp_field: only for callback_auth = "hmac-sha256", where it names a signed body field; a token vouches for the whole request`)
	case field == "" && maxAge != "":
		return errors.New("callback_max_age: only read with callback_timestamp_field, the signed body field saying when the callback was sent")
	case field == "":
		return nil
	}
	r.timestampField, r.maxAge = field, defaultMaxAge
	if maxAge != "" {
		d, err := time.ParseDuration(maxAge)
		if err != nil || d <= 0 {
			return fmt.Errorf(`callback_max_age: %q is not a positive duration ("5m", "1h")`, maxAge)
		}
		r.maxAge = d
	}
	return nil
}

// checkFields checks that the fields read make sense together.
func (r *genericReceive) checkFields() error {
	lists := []struct {
		name   string
		values []string
	}{{"delivered_statuses", r.delivered}, {"failed_statuses", r.failed}, {"soft_failed_statuses", r.softFailed}}
	mapped := false
	for i, l := range lists {
		if len(l.values) == 0 {
			continue
		}
		mapped = true
		if r.statusField == "" {
			return fmt.Errorf("%s: needs status_field, the callback field holding the status", l.name)
		}
		for _, other := range lists[i+1:] {
			for _, v := range other.values {
				if containsFold(l.values, v) {
					return fmt.Errorf("%s: %q is also in %s; a status means one thing", other.name, v, l.name)
				}
			}
		}
	}
	switch {
	case r.statusField == "" && r.textField == "":
		return errors.New("status_field: receive_format is set but neither status_field (delivery receipts) nor text_field (inbound messages) says what to read")
	case r.statusField != "" && !mapped:
		return fmt.Errorf("delivered_statuses: status_field %q is read, but no status value is listed in delivered_statuses, failed_statuses or soft_failed_statuses", r.statusField)
	case r.textField != "" && r.fromField == "":
		return errors.New("from_field: text_field is read, so from_field must name the sender's number (whose consent a STOP withdraws)")
	case r.fromField != "" && r.textField == "":
		return errors.New("text_field: from_field is read, so text_field must name the inbound message's text")
	case len(r.permanentErrors) > 0 && r.errorField == "":
		return errors.New("permanent_errors: needs error_field, the callback field holding the error code")
	}
	for _, f := range []struct{ name, value string }{{"error_field", r.errorField}, {"message_id_field", r.messageIDField}, {"provider_id_field", r.providerIDField}} {
		if f.value != "" && r.statusField == "" {
			return fmt.Errorf("%s: only read from delivery receipts; set status_field", f.name)
		}
	}
	if r.auth == authHMAC && r.statusField != "" && r.messageIDField == "" {
		return errors.New(`message_id_field: callback_auth = "hmac-sha256" signs only the body, so a delivery receipt must name its message in a body field (a reference given at send as {{id}}); the callback URL's ?m= is not signed, and a captured receipt replayed with another ?m= would bounce any message`)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(v string) bool { return strings.EqualFold(v, s) })
}

// receiveGeneric reads a callback of the generic provider: authenticated first, then parsed into records, each a
// delivery receipt (a status) or an inbound message (a text and no status). now is the host's clock.
//
// With callback_auth = "hmac-sha256" only the body is signed, so nothing is read from the URL: a callback without
// a body is refused (its record would come from the query), ?m= is ignored (receipts name their message in
// message_id_field), and with callback_timestamp_field a callback signed too long ago is refused as a replay.
func (c *channel) receiveGeneric(req sdk.HookRequest, now time.Time) (sdk.HookReply, error) {
	r := c.generic.receive
	if r == nil {
		return reply(404, "this channel's generic provider has no receive_format: it takes no callbacks"), nil
	}
	if r.auth == authHMAC && len(bytes.TrimSpace(req.Body)) == 0 {
		return reply(401, `callback_auth = "hmac-sha256" signs the body, and this callback has none: its URL's query is not signed, so it is not read`), nil
	}
	secret, ok, err := sdk.Secret("callback_secret")
	if err != nil || !ok {
		// Configure checked it: the host cannot give it now. An error makes the provider deliver again later.
		return sdk.HookReply{}, fmt.Errorf("reading callback_secret: %v", err)
	}
	if status, why := r.authenticate(req, secret); status != 0 {
		return reply(status, why), nil
	}
	records, err := r.records(req)
	if err != nil {
		return reply(400, err.Error()), nil
	}
	if r.timestampField != "" {
		for _, get := range records {
			if status, why := r.fresh(get, now); status != 0 {
				return reply(status, why), nil
			}
		}
	}
	msgID := ""
	if r.auth == authToken {
		msgID = messageIDOf(req.RawQuery) // the token vouches for the whole URL; a signature only for the body
	}
	var events []sdk.ChannelEvent
	for _, get := range records {
		ev, known, ok := c.eventOf(get, msgID)
		if ok {
			events = append(events, ev)
		}
		if !known {
			sdk.Log(sdk.LevelWarn, "a callback has neither status_field %q nor text_field %q: ignored; check the field names against the provider's format", r.statusField, r.textField)
		}
	}
	return sdk.HookReply{Status: 200, Events: events}, nil
}

// authenticate checks the callback's token or signature: 0 when it verifies, else the status and text of the
// refusal (401 when missing, 403 when wrong).
func (r *genericReceive) authenticate(req sdk.HookRequest, secret string) (uint32, string) {
	if r.auth == authToken {
		var got, where string
		if r.authParam != "" {
			q, _ := url.ParseQuery(req.RawQuery)
			got, where = q.Get(r.authParam), "query parameter "+r.authParam
		} else {
			got, where = req.Headers.Get(r.authHeader), "header "+r.authHeader
		}
		if got == "" {
			return 401, "missing callback token: the " + where + " is empty"
		}
		// Hashes of equal length: the comparison takes the same time whatever the token's length.
		a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return 403, "wrong callback token in the " + where
		}
		return 0, ""
	}
	sig := req.Headers.Get(r.authHeader)
	if sig == "" {
		return 401, "missing signature: the header " + r.authHeader + " is empty"
	}
	got, ok := decodeMAC(sig)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(req.Body)
	if !ok || !hmac.Equal(got, mac.Sum(nil)) {
		return 403, "bad signature in the header " + r.authHeader + ": not the HMAC-SHA256 of the body under callback_secret"
	}
	return 0, ""
}

// fresh checks a signed record's timestamp against now: 0 when it is within maxAge either way (a clock may be a
// little ahead), else the status and text of the refusal (401 missing, 400 unreadable, 403 stale).
func (r *genericReceive) fresh(get record, now time.Time) (uint32, string) {
	raw := strings.TrimSpace(get(r.timestampField))
	if raw == "" {
		return 401, "missing timestamp: the signed field " + r.timestampField + " (callback_timestamp_field) is empty"
	}
	at, ok := parseTimestamp(raw)
	if !ok {
		return 400, fmt.Sprintf("the signed field %s is %q: not Unix seconds or an RFC 3339 time", r.timestampField, clip(raw, 64))
	}
	if age := now.Sub(at); age > r.maxAge || age < -r.maxAge {
		return 403, fmt.Sprintf("stale callback: its signed field %s says %s, more than callback_max_age (%s) from this server's clock %s: a replay, or a clock that is off",
			r.timestampField, at.UTC().Format(time.RFC3339), r.maxAge, now.UTC().Format(time.RFC3339))
	}
	return 0, ""
}

// parseTimestamp reads a time written as Unix seconds (an integer) or in RFC 3339.
func parseTimestamp(s string) (time.Time, bool) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// decodeMAC reads a SHA-256 MAC written in hex (64 digits) or base64 (44 characters), with an optional
// "sha256=" prefix.
func decodeMAC(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 7 && strings.EqualFold(s[:7], "sha256=") {
		s = s[7:]
	}
	var b []byte
	var err error
	switch len(s) {
	case 64:
		b, err = hex.DecodeString(s)
	case 44:
		b, err = base64.StdEncoding.DecodeString(s)
	default:
		return nil, false
	}
	return b, err == nil && len(b) == sha256.Size
}

// record reads one field of a callback ("" when absent).
type record func(field string) string

// records parses the callback: one record for a form or a JSON object, one per item of a JSON array. A callback
// without a body (a GET) is read from its URL's query, whatever the format (callback_auth = "token" only:
// receiveGeneric refuses it before, under "hmac-sha256", as the query is not signed).
func (r *genericReceive) records(req sdk.HookRequest) ([]record, error) {
	body := bytes.TrimSpace(req.Body)
	if len(body) == 0 || !r.json {
		raw, what := string(body), `the body is not a form (receive_format = "form")`
		if len(body) == 0 {
			raw, what = req.RawQuery, "the URL's query is not a valid query"
		}
		form, err := url.ParseQuery(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		return []record{func(f string) string {
			if f == "" {
				return ""
			}
			return form.Get(f)
		}}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf(`the body is not JSON (receive_format = "json"): %v`, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New(`the body is not one JSON value (receive_format = "json"): something follows it`)
	}
	items := []any{v}
	if list, ok := v.([]any); ok {
		items = list
	}
	out := make([]record, 0, len(items))
	for i, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("the body is not a JSON object or an array of objects (item %d is not an object)", i)
		}
		out = append(out, func(f string) string { return jsonField(obj, f) })
	}
	return out, nil
}

// jsonField reads a field of a JSON object by its name, or by a dotted path into nested objects and arrays
// ("payload.status", "messages.0.message-id"). Strings, numbers (as written) and booleans are read; a
// one-item array is read as its item; anything else is "".
func jsonField(obj map[string]any, field string) string {
	if field == "" {
		return ""
	}
	if v, ok := obj[field]; ok {
		return scalar(v)
	}
	var cur any = obj
	for _, part := range strings.Split(field, ".") {
		switch t := cur.(type) {
		case map[string]any:
			cur = t[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(t) {
				return ""
			}
			cur = t[i]
		default:
			return ""
		}
	}
	return scalar(cur)
}

func scalar(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	case []any:
		if len(t) == 1 {
			return scalar(t[0])
		}
	}
	return ""
}

// eventOf reads one record. known is false when it has neither a status nor a text (a misconfigured field
// name, most likely); ok is false when it makes no event (also an intermediate status: queued, sent,
// buffered).
func (c *channel) eventOf(get record, msgID string) (ev sdk.ChannelEvent, known, ok bool) {
	r := c.generic.receive
	if status := strings.TrimSpace(get(r.statusField)); status != "" {
		if ref := get(r.messageIDField); ref != "" {
			msgID = clip(ref, maxIDLen) // the item's own reference: in an array of receipts, each names its message
		}
		if msgID == "" && r.auth == authHMAC {
			sdk.Log(sdk.LevelWarn, "a signed delivery receipt has no message_id_field %q: ignored (the URL's ?m= is not signed, so it is not read)", r.messageIDField)
			return sdk.ChannelEvent{}, true, false
		}
		ev = sdk.ChannelEvent{MessageID: msgID, ProviderID: clip(get(r.providerIDField), maxIDLen)}
		code := clip(strings.TrimSpace(get(r.errorField)), maxIDLen)
		ev.Detail = "status " + clip(status, maxIDLen)
		if code != "" {
			ev.Detail += ", error " + code
		}
		switch {
		case containsFold(r.delivered, status):
			ev.Type, ev.Detail = sdk.EventDelivered, ""
		case containsFold(r.failed, status):
			ev.Type, ev.Permanent = sdk.EventBounced, true
		case containsFold(r.softFailed, status):
			ev.Type, ev.Permanent = sdk.EventBounced, r.permanentErrors[code]
		default:
			return sdk.ChannelEvent{}, true, false
		}
		return ev, true, true
	}
	if text := get(r.textField); strings.TrimSpace(text) != "" {
		return c.inboundEvent(get(r.fromField), text), true, true
	}
	return sdk.ChannelEvent{}, false, false
}
