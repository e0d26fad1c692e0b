// Command sms-http is the bundled SMS channel: it sends through an HTTP SMS provider with the host's http
// capability. It ships the Twilio Messages API (form-encoded To, From, Body, StatusCallback; HTTP Basic with the
// account SID and auth token). Numbers are checked as E.164 before anything is sent, and each message's length in
// SMS segments (GSM-7 or UCS-2) is reported with its result (the campaign's units) and counted in the
// sms_segments_total metric. Both modes receive callbacks:
// delivery receipts, naming our message by the ?m= its callback URL carries (or, for callbacks whose body alone is
// signed, by a field of that body), and inbound messages, where a stop word withdraws SMS consent. The generic
// mode reads any provider's callbacks as its config describes them (receive.go).
//
// Written with the public SDK only. See docs/channels/sms-http.md.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/crosscast/crosscast/sdk"
)

func main() {}

func init() {
	sdk.RegisterChannel(sdk.Manifest{
		ID: "sms-http", Version: "1.0.0",
		Capabilities: []string{"http", "secrets", "metrics"},
		Config: []sdk.ConfigField{
			{Name: "provider", Type: "string", Description: `"twilio" (the default) or "generic": the request described below.`},
			{Name: "account_sid", Type: "string", Description: "twilio: the account SID (AC...)."},
			{Name: "auth_token", Type: "string", Secret: true, Description: "twilio: the auth token. generic: the {{token}} of headers and body."},
			{Name: "from", Type: "string", Required: true, Description: "The sender: an E.164 number, an alphanumeric sender where allowed, or a Twilio Messaging Service SID (MG...)."},
			{Name: "url", Type: "string", Description: "generic: where to send (POST)."},
			{Name: "headers", Type: "map(string)", Description: "generic: request headers; {{token}} is replaced by auth_token."},
			{Name: "body", Type: "string", Description: "generic: the request body, with {{to}}, {{from}}, {{text}}, {{id}}, {{token}} and {{callback}} (status_callback with the message id, and the token when callback_auth_param is set) replaced (escaped for JSON or a form, by the Content-Type header)."},
			{Name: "id_field", Type: "string", Description: "generic: the field of the provider's JSON answer holding its message id; a dotted path reaches into objects and arrays (messages.0.message-id)."},
			{Name: "stop_words", Type: "list(string)", Description: "More replies that withdraw SMS consent, beside STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, ARRET, ARRÊT, STOPP."},
			{Name: "status_callback", Type: "string", Description: "This server's /hooks/{workspace}/{plugin}: where Twilio posts delivery statuses; generic: the URL {{callback}} is made of."},
			{Name: "receive_format", Type: "string", Description: `generic: how the provider's callbacks (delivery receipts, inbound messages) are encoded: "form" or "json" (an object, or an array of them); a callback without a body (GET) is read from its URL's query with callback_auth = "token", refused with "hmac-sha256". Unset: the generic provider takes no callbacks.`},
			{Name: "callback_auth", Type: "string", Description: `generic, required with receive_format: how a callback proves it is the provider's: "token" (callback_secret in the query parameter callback_auth_param or the header callback_auth_header) or "hmac-sha256" (the HMAC-SHA256 of the body under callback_secret, hex or base64, in the header callback_auth_header; only the body is signed, so nothing is read from the URL: receipts need message_id_field, and callbacks without a body are refused).`},
			{Name: "callback_secret", Type: "string", Secret: true, Description: "generic: the token or HMAC key of callback_auth, at least 16 bytes."},
			{Name: "callback_auth_param", Type: "string", Description: `generic, callback_auth = "token": the callback URL's query parameter holding the token; {{callback}} adds it.`},
			{Name: "callback_auth_header", Type: "string", Description: "generic: the request header holding the token, or the HMAC signature."},
			{Name: "status_field", Type: "string", Description: `generic: the callback field holding a delivery status (a dotted path reaches into JSON: "payload.status"); a callback with a status is a delivery receipt.`},
			{Name: "delivered_statuses", Type: "list(string)", Description: "generic: the status values (any case) meaning delivered."},
			{Name: "failed_statuses", Type: "list(string)", Description: "generic: the status values meaning the number will never work: a hard bounce, which withdraws SMS consent."},
			{Name: "soft_failed_statuses", Type: "list(string)", Description: "generic: the status values meaning not delivered this time: a soft bounce (three in a row withdraw consent), hard when the error code is in permanent_errors. Statuses in no list (queued, sent, buffered) are acknowledged and ignored."},
			{Name: "error_field", Type: "string", Description: "generic: the callback field holding a failure's error code."},
			{Name: "permanent_errors", Type: "list(string)", Description: "generic: the error codes that make a soft failure permanent (the number is invalid or gone)."},
			{Name: "message_id_field", Type: "string", Description: `generic: the callback field echoing a reference given at send as {{id}} (a client reference); when it is empty, the callback URL's ?m= names the message. Required for receipts with callback_auth = "hmac-sha256", whose URL is not signed (?m= is then ignored).`},
			{Name: "provider_id_field", Type: "string", Description: "generic: the callback field holding the provider's message id."},
			{Name: "from_field", Type: "string", Description: "generic: the inbound message's field holding the sender's number (a + is added to bare digits)."},
			{Name: "text_field", Type: "string", Description: "generic: the inbound message's field holding its text; a callback with a text and no status is an inbound message: a stop word withdraws SMS consent, any other text is a reply."},
			{Name: "callback_timestamp_field", Type: "string", Description: `generic, callback_auth = "hmac-sha256": the signed body field saying when the provider sent the callback (Unix seconds or RFC 3339); a callback without it, or more than callback_max_age away from this server's clock, is refused as a replay.`},
			{Name: "callback_max_age", Type: "string", Description: `generic: the replay window of callback_timestamp_field, a duration ("5m", the default; "1h").`},
			{Name: "api_base", Type: "string", Description: "The API's base URL (default https://api.twilio.com): a compatible provider, or a test server."},
		},
		Metrics: []sdk.Metric{{Name: "sms_segments_total", Type: "counter", Help: "SMS segments sent (a long or non-GSM message takes several)."}},
		Channel: &sdk.ChannelSpec{Address: "phone", Consent: "sms", Fields: []sdk.ContentField{
			{Name: "text", Required: true, Description: "The message."},
			{Name: "sender", Description: "The sender, replacing the configured one.", SingleLine: true},
		}},
		SelfTests: []sdk.SelfTest{{
			Name:     "refuses a number that is not E.164, without sending",
			Messages: []sdk.SelfTestMessage{{ID: "t1", To: "0612345678", Fields: map[string]string{"text": "Hi"}}},
			Want:     []string{"failed"},
		}},
	}, &channel{})
}

type channel struct {
	sid, from, callback, base string
	// generic is the request described in config, for any provider.
	generic *genericRequest
	// extraStops are the operator's stop words, upper case.
	extraStops []string
}

// genericRequest is the operator's description of a provider's send request, and of its callbacks.
type genericRequest struct {
	url, body, idField string
	headers            map[string]string
	json               bool
	// callback is status_callback, the URL {{callback}} is made of.
	callback string
	// receive reads the provider's callbacks; nil when the operator described none.
	receive *genericReceive
}

var (
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	accountSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
)

func (c *channel) Configure(cfg map[string]any) error {
	str := func(name string) string { s, _ := cfg[name].(string); return s }
	if words, ok := cfg["stop_words"].([]any); ok {
		for _, w := range words {
			if s, _ := w.(string); strings.TrimSpace(s) != "" {
				c.extraStops = append(c.extraStops, strings.ToUpper(strings.TrimSpace(s)))
			}
		}
	}
	switch p := str("provider"); p {
	case "", "twilio":
	case "generic":
		return c.configureGeneric(cfg, str)
	default:
		return fmt.Errorf("provider: %q is not twilio or generic", p)
	}
	if name := setReceiveField(cfg); name != "" {
		return fmt.Errorf(`%s: only read by provider = "generic"; the twilio preset reads Twilio's own callbacks`, name)
	}
	c.sid = str("account_sid")
	if !accountSID.MatchString(c.sid) {
		return fmt.Errorf("account_sid: %q is not a Twilio account SID (AC and 32 hex digits)", c.sid)
	}
	c.from = str("from")
	if !e164.MatchString(c.from) && !strings.HasPrefix(c.from, "MG") {
		return fmt.Errorf("from: %q is neither an E.164 number (+33612345678) nor a Messaging Service SID (MG...)", c.from)
	}
	c.callback = str("status_callback")
	c.base = strings.TrimRight(str("api_base"), "/")
	if c.base == "" {
		c.base = "https://api.twilio.com"
	}
	if u, err := url.Parse(c.base); err != nil || u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("api_base: %q is not an http(s) URL", c.base)
	}
	return nil
}

func (c *channel) configureGeneric(cfg map[string]any, str func(string) string) error {
	g := &genericRequest{url: str("url"), body: str("body"), idField: str("id_field"), headers: map[string]string{}}
	if u, err := url.Parse(g.url); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("url: %q is not an http(s) URL (the generic provider needs one)", g.url)
	}
	if g.body == "" || !strings.Contains(g.body, "{{to}}") || !strings.Contains(g.body, "{{text}}") {
		return fmt.Errorf("body: the generic provider's body must hold {{to}} and {{text}}")
	}
	if hs, ok := cfg["headers"].(map[string]any); ok {
		for k, v := range hs {
			s, _ := v.(string)
			g.headers[k] = s
		}
	}
	for k, v := range g.headers {
		if strings.EqualFold(k, "Content-Type") && strings.Contains(v, "json") {
			g.json = true
		}
	}
	g.callback = str("status_callback")
	if g.callback != "" {
		if u, err := url.Parse(g.callback); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("status_callback: %q is not an http(s) URL", g.callback)
		}
	} else if strings.Contains(g.body, "{{callback}}") {
		return fmt.Errorf("body: {{callback}} needs status_callback, this server's /hooks/{workspace}/{plugin} URL")
	}
	var err error
	if g.receive, err = configureReceive(cfg, str); err != nil {
		return err
	}
	c.from, c.generic = str("from"), g
	return nil
}

// sendGeneric sends a message with the operator's request; callback is the base of its {{callback}}.
func (c *channel) sendGeneric(m sdk.Message, text, from, token, callback string) sdk.Result {
	r := sdk.Result{ID: m.ID}
	g := c.generic
	escape := url.QueryEscape
	if g.json {
		escape = func(s string) string { b, _ := json.Marshal(s); return string(b[1 : len(b)-1]) }
	}
	fill := func(tmpl string, esc func(string) string) string {
		return strings.NewReplacer("{{to}}", esc(m.To), "{{from}}", esc(from), "{{text}}", esc(text), "{{id}}", esc(m.ID),
			"{{token}}", esc(token), "{{callback}}", esc(callbackURL(callback, m.ID))).Replace(tmpl)
	}
	var headers sdk.Pairs
	for k, v := range g.headers {
		headers = append(headers, sdk.Pair{Key: textproto.CanonicalMIMEHeaderKey(k), Value: fill(v, func(s string) string { return s })})
	}
	if !slices.ContainsFunc(headers, func(p sdk.Pair) bool { return p.Key == "Idempotency-Key" }) {
		headers = append(headers, sdk.Pair{Key: "Idempotency-Key", Value: m.IdempotencyKey})
	}
	slices.SortFunc(headers, func(a, b sdk.Pair) int { return strings.Compare(a.Key, b.Key) }) // pairs go sorted by key
	resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "POST", URL: g.url, Headers: headers, Body: []byte(fill(g.body, escape))})
	switch {
	case err != nil:
		r.Status, r.Error = sdk.Retry, err.Error()
	case resp.Status >= 200 && resp.Status < 300:
		r.Status = sdk.Accepted
		if g.idField != "" {
			dec := json.NewDecoder(bytes.NewReader(resp.Body))
			dec.UseNumber() // a numeric id as written, not as a float
			var answer map[string]any
			if dec.Decode(&answer) == nil {
				r.ProviderID = clip(jsonField(answer, g.idField), maxIDLen)
			}
		}
		r.Units = uint32(Segments(text))
		_ = sdk.Count("sms_segments_total", float64(r.Units))
	case resp.Status == 408 || resp.Status == 429 || resp.Status >= 500:
		r.Status, r.Error = sdk.Retry, fmt.Sprintf("HTTP %d: %s", resp.Status, snippet(resp.Body))
	default:
		r.Status, r.Error = sdk.Failed, fmt.Sprintf("HTTP %d: %s", resp.Status, snippet(resp.Body))
	}
	return r
}

func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func (c *channel) Send(call sdk.Call, msgs []sdk.Message) ([]sdk.Result, error) {
	token, ok, err := sdk.Secret("auth_token")
	if err != nil {
		return nil, fmt.Errorf("reading the auth token: %w", err)
	}
	if !ok && c.generic == nil {
		return nil, fmt.Errorf("the auth token is missing")
	}
	if c.generic != nil {
		callback, err := c.genericCallback()
		if err != nil {
			return nil, err
		}
		out := make([]sdk.Result, len(msgs))
		for i, m := range msgs {
			text, from, fail := c.check(m)
			if fail != "" {
				out[i] = sdk.Result{ID: m.ID, Status: sdk.Failed, Error: fail}
				continue
			}
			out[i] = c.sendGeneric(m, text, from, token, callback)
		}
		return out, nil
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.sid+":"+token))
	out := make([]sdk.Result, len(msgs))
	for i, m := range msgs {
		out[i] = c.send(m, auth)
	}
	return out, nil
}

// genericCallback is the base of {{callback}}: status_callback, with the token when callbacks carry it in the query.
func (c *channel) genericCallback() (string, error) {
	g := c.generic
	if g.callback == "" || g.receive == nil || g.receive.authParam == "" || !strings.Contains(g.body, "{{callback}}") {
		return g.callback, nil
	}
	secret, _, err := sdk.Secret("callback_secret")
	if err != nil {
		return "", fmt.Errorf("reading callback_secret: %w", err)
	}
	return withQuery(g.callback, g.receive.authParam, secret), nil
}

// check reads a message's text and sender, or says why it cannot be sent.
func (c *channel) check(m sdk.Message) (text, from, fail string) {
	text = m.Fields.Get("text")
	switch {
	case !e164.MatchString(m.To):
		return "", "", fmt.Sprintf("%q is not an E.164 number (+33612345678)", m.To)
	case strings.TrimSpace(text) == "":
		return "", "", "the text is empty"
	}
	from = c.from
	if s := m.Fields.Get("sender"); s != "" {
		from = s
	}
	return text, from, ""
}

func (c *channel) send(m sdk.Message, auth string) sdk.Result {
	r := sdk.Result{ID: m.ID}
	text, from, fail := c.check(m)
	if fail != "" {
		r.Status, r.Error = sdk.Failed, fail
		return r
	}
	form := url.Values{"To": {m.To}, "Body": {text}}
	if strings.HasPrefix(from, "MG") {
		form.Set("MessagingServiceSid", from)
	} else {
		form.Set("From", from)
	}
	if c.callback != "" {
		// Our message id rides in the callback's query: Twilio's status callback then names it.
		form.Set("StatusCallback", callbackURL(c.callback, m.ID))
	}
	resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "POST", URL: c.base + "/2010-04-01/Accounts/" + c.sid + "/Messages.json",
		Body: []byte(form.Encode()), Headers: sdk.Pairs{
			{Key: "Authorization", Value: auth},
			{Key: "Content-Type", Value: "application/x-www-form-urlencoded"},
			{Key: "I-Twilio-Idempotency-Token", Value: m.IdempotencyKey},
		}})
	if err != nil {
		r.Status, r.Error = sdk.Retry, err.Error()
		return r
	}
	var answer struct {
		SID     string `json:"sid"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(resp.Body, &answer)
	switch {
	case resp.Status >= 200 && resp.Status < 300 && answer.SID != "":
		r.Status, r.ProviderID = sdk.Accepted, answer.SID // queued by Twilio: the status callback says delivered
		r.Units = uint32(Segments(text))
		_ = sdk.Count("sms_segments_total", float64(r.Units))
	case resp.Status == 429 || resp.Status >= 500:
		r.Status, r.Error = sdk.Retry, fmt.Sprintf("HTTP %d %d: %s", resp.Status, answer.Code, answer.Message)
	default:
		r.Status, r.Error = sdk.Failed, fmt.Sprintf("HTTP %d %d: %s", resp.Status, answer.Code, answer.Message)
	}
	return r
}

// gsm7 holds the characters of the GSM 03.38 default alphabet; gsm7Ext those its extension table encodes with an
// escape (two septets).
const (
	gsm7    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext = "^{}\\[~]|€\f"
)

// Segments is the number of SMS a text takes: GSM-7 (160 septets, 153 per part when split) when every character is
// in the GSM alphabet, else UCS-2 (70 UTF-16 units, 67 per part).
func Segments(text string) int {
	septets, gsm := 0, true
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsm7, r):
			septets++
		case strings.ContainsRune(gsm7Ext, r):
			septets += 2
		default:
			gsm = false
		}
	}
	if gsm {
		if septets <= 160 {
			return 1
		}
		return (septets + 152) / 153
	}
	units := 0
	for _, r := range text {
		units++
		if r > 0xFFFF {
			units++ // a surrogate pair
		}
	}
	if units <= 70 {
		return 1
	}
	return (units + 66) / 67
}

// stopWords are the replies that withdraw SMS consent (Twilio's own, and French, German and Scandinavian ones);
// config stop_words adds more.
var stopWords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "ARRÊT", "STOPP"}

// Receive takes the provider's callbacks: the generic mode's as config describes them (receiveGeneric), or
// Twilio's status callbacks (the message id rides in the callback URL's query) and inbound messages (a stop word
// withdraws SMS consent), after checking X-Twilio-Signature: base64 HMAC-SHA1, under the auth token, of the URL
// Twilio called and the form's keys and values sorted by key.
func (c *channel) Receive(call sdk.Call, req sdk.HookRequest) (sdk.HookReply, error) {
	if len(req.Body) > maxCallbackBody {
		return reply(413, fmt.Sprintf("the body is over %d KiB: not an SMS callback", maxCallbackBody>>10)), nil
	}
	if c.generic != nil {
		return c.receiveGeneric(req, call.Now)
	}
	if c.callback == "" {
		return sdk.HookReply{Status: 404, Body: []byte("no status_callback is configured")}, nil
	}
	token, ok, err := sdk.Secret("auth_token")
	if err != nil || !ok {
		return sdk.HookReply{}, fmt.Errorf("reading the auth token: %v", err)
	}
	form, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return sdk.HookReply{Status: 400, Body: []byte("not a form")}, nil
	}
	called := c.callback
	if i := strings.IndexByte(called, '?'); i >= 0 {
		called = called[:i]
	}
	if req.RawQuery != "" {
		called += "?" + req.RawQuery
	}
	if !hmac.Equal([]byte(req.Headers.Get("X-Twilio-Signature")), []byte(TwilioSignature(token, called, form))) {
		return sdk.HookReply{Status: 403, Body: []byte("bad signature")}, nil
	}
	var events []sdk.ChannelEvent
	msgID := messageIDOf(req.RawQuery)
	switch status := form.Get("MessageStatus"); {
	case status == "delivered":
		events = append(events, sdk.ChannelEvent{Type: sdk.EventDelivered, MessageID: msgID, ProviderID: form.Get("MessageSid"), Address: form.Get("To")})
	case status == "undelivered" || status == "failed":
		code := form.Get("ErrorCode")
		events = append(events, sdk.ChannelEvent{Type: sdk.EventBounced, MessageID: msgID, ProviderID: form.Get("MessageSid"),
			Address: form.Get("To"), Permanent: permanentCodes[code], Detail: "Twilio error " + code})
	case status == "" && form.Get("Body") != "":
		events = append(events, c.inboundEvent(form.Get("From"), form.Get("Body")))
	}
	return sdk.HookReply{Status: 200, Headers: sdk.Pairs{{Key: "Content-Type", Value: "text/xml"}}, Body: []byte("<Response></Response>"), Events: events}, nil
}

// permanentCodes are Twilio's error codes for a number that will not work again (unknown, unreachable for good, a
// landline, blocked).
var permanentCodes = map[string]bool{"21211": true, "21614": true, "30005": true, "30006": true, "30004": true}

// TwilioSignature is X-Twilio-Signature for a request to fullURL with form.
func TwilioSignature(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// withQuery adds a query parameter to a URL.
func withQuery(u, key, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + url.QueryEscape(key) + "=" + url.QueryEscape(value)
}
