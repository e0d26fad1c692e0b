package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/plugintest"
)

// The examples of docs/channels/sms-http.md are loaded as they are written: the page cannot show a configuration
// that does not load or does not read its provider's callbacks.
const docPage = "../../../docs/channels/sms-http.md"

// The values of the environment variables the examples read.
const (
	callbackSecret = "cb_secret_0123456789abcdef"
	signingKey     = "whsec_0123456789abcdef0123"
	vonageBasic    = "YWJjZDEyMzQ6czNjcjN0"                 // abcd1234:s3cr3t
	plivoBasic     = "TUFYWFhYWFhYWFhYWFhYWFhYWFg6dG9rZW4=" // MAXXXXXXXXXXXXXXXXXX:token
	msgID          = "cmp_0123456789abcdefghjkmnpqrs.1.0123456789abcdefghjkmnpqrs.0"
)

func exampleEnv(t *testing.T) {
	for k, v := range map[string]string{"SMS_CALLBACK_SECRET": callbackSecret, "SMS_WEBHOOK_SIGNING_KEY": signingKey,
		"VONAGE_BASIC_AUTH": vonageBasic, "PLIVO_BASIC_AUTH": plivoBasic, "SMS_API_KEY": "key_123", "TWILIO_AUTH_TOKEN": "tok"} {
		t.Setenv(k, v)
	}
}

// docExample is a plugin block of the docs page: its config body and its grants' origins.
type docExample struct {
	block, config string
	hosts         []string
}

var (
	hclBlock  = regexp.MustCompile("(?s)```hcl\n(.*?)```")
	httpHosts = regexp.MustCompile(`http_hosts\s*=\s*\[([^\]]*)\]`)
	quoted    = regexp.MustCompile(`"([^"]*)"`)
)

func docExamples(t *testing.T) []docExample {
	t.Helper()
	page, err := os.ReadFile(docPage)
	if err != nil {
		t.Fatalf("reading the docs page: %v", err)
	}
	var out []docExample
	for _, m := range hclBlock.FindAllStringSubmatch(string(page), -1) {
		block := m[1]
		if !strings.Contains(block, `"builtin:sms-http"`) {
			continue
		}
		start := strings.Index(block, "  config {\n")
		end := strings.LastIndex(block, "\n  }\n")
		if start < 0 || end < start {
			t.Fatalf("an example's config { } block is not where expected:\n%s", block)
		}
		ex := docExample{block: block, config: block[start+len("  config {\n") : end]}
		if h := httpHosts.FindStringSubmatch(block); h != nil {
			for _, q := range quoted.FindAllStringSubmatch(h[1], -1) {
				ex.hosts = append(ex.hosts, q[1])
			}
		}
		out = append(out, ex)
	}
	return out
}

// loadExample loads the example of the docs page that contains marker.
func loadExample(t *testing.T, marker string, responses ...plugintest.Response) *plugintest.Host {
	t.Helper()
	for _, ex := range docExamples(t) {
		if strings.Contains(ex.block, marker) {
			return plugintest.New(t, plugintest.Options{Config: ex.config, Grants: plugintest.Grants{HTTPHosts: ex.hosts}, HTTP: responses})
		}
	}
	t.Fatalf("no example of %s contains %q", docPage, marker)
	return nil
}

func TestDocExamplesLoad(t *testing.T) {
	exampleEnv(t)
	examples := docExamples(t)
	if len(examples) < 5 {
		t.Fatalf("%d examples found in %s", len(examples), docPage)
	}
	for _, ex := range examples {
		if _, err := plugintest.Load(t, plugintest.Options{Config: ex.config, Grants: plugintest.Grants{HTTPHosts: ex.hosts}}); err != nil {
			t.Errorf("an example does not load: %v\n%s", err, ex.block)
		}
	}
}

// event is a channel event as receive's output shows it.
type event struct {
	Type       string `json:"type"`
	MessageID  string `json:"message_id"`
	ProviderID string `json:"provider_id"`
	Address    string `json:"address"`
	Permanent  bool   `json:"permanent"`
	Detail     string `json:"detail"`
}

type hookReply struct {
	Status uint32  `json:"status"`
	Body   string  `json:"body"`
	Events []event `json:"events"`
}

func receive(t *testing.T, h *plugintest.Host, in hookIn) hookReply {
	t.Helper()
	var out hookReply
	if err := h.Call("receive", in, &out); err != nil {
		t.Fatalf("receive: %v", err)
	}
	return out
}

func post(query, contentType, body string, headers ...string) hookIn {
	in := hookIn{Method: "POST", Path: "/hooks/acme/sms", Query: query, Body: body, Headers: map[string]string{"Content-Type": contentType}}
	for i := 0; i+1 < len(headers); i += 2 {
		in.Headers[headers[i]] = headers[i+1]
	}
	return in
}

func postJSON(query string, v any, headers ...string) hookIn {
	b, _ := json.Marshal(v)
	return post(query, "application/json", string(b), headers...)
}

func postForm(query string, form url.Values) hookIn {
	return post(query, "application/x-www-form-urlencoded", form.Encode())
}

// signedJSON posts body with its HMAC-SHA256 under key in X-Signature, written by encode.
func signedJSON(body, key string, encode func([]byte) string) hookIn {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(body))
	return post("", "application/json", body, "X-Signature", encode(mac.Sum(nil)))
}

// signedWithQuery is signedJSON, in hex under the docs' signing key, posted to a URL with query.
func signedWithQuery(query, body string) hookIn {
	in := signedJSON(body, signingKey, hex.EncodeToString)
	in.Query = query
	return in
}

// sentAt is when the signed callbacks of the tests were sent: 30 s before the test host's clock
// (plugintest.DefaultNow), within the docs example's callback_max_age of 5 minutes.
const sentAt = "2025-12-31T23:59:30Z"

// vonageDLR is a delivery receipt of Vonage's SMS API
// (https://developer.vonage.com/messaging/sms/guides/delivery-receipts), JSON-encoded.
func vonageDLR(status, errCode string) map[string]string {
	return map[string]string{"msisdn": "447700900001", "to": "Acme", "network-code": "23410", "messageId": "0A0000000123ABCD1",
		"price": "0.03330000", "status": status, "scts": "2001011400", "err-code": errCode, "api-key": "abcd1234",
		"client-ref": msgID, "message-timestamp": "2020-01-01 12:00:00"}
}

// vonageInbound is an inbound message of Vonage's SMS API (https://developer.vonage.com/messaging/sms/guides/inbound-sms).
func vonageInbound(text string) map[string]string {
	return map[string]string{"msisdn": "447700900001", "to": "447700900000", "messageId": "0A0000001234567B", "text": text,
		"type": "text", "keyword": strings.ToUpper(strings.Fields(text + " x")[0]), "message-timestamp": "2020-01-01 12:00:00"}
}

// plivoStatus is a message status callback of Plivo
// (https://www.plivo.com/docs/messaging/api/message/message-status-callbacks), form-encoded.
func plivoStatus(status, errorCode string) url.Values {
	return url.Values{"MessageUUID": {"db3ce55a-7f1d-11e1-8ea7-1231380bc196"}, "To": {"14155550123"}, "From": {"14155550100"},
		"Type": {"sms"}, "Status": {status}, "Units": {"1"}, "TotalRate": {"0.0050"}, "TotalAmount": {"0.0050"},
		"MCC": {"310"}, "MNC": {"410"}, "ErrorCode": {errorCode}}
}

// plivoInbound is an inbound message of Plivo (https://www.plivo.com/docs/messaging/api/message/handling-incoming).
func plivoInbound(text string) url.Values {
	return url.Values{"From": {"14155550123"}, "To": {"14155550100"}, "Type": {"sms"}, "Text": {text},
		"MessageUUID": {"a1b2c3d4-7f1d-11e1-8ea7-1231380bc196"}, "Units": {"1"}, "TotalRate": {"0"}, "TotalAmount": {"0"}}
}

func TestGenericReceive(t *testing.T) {
	exampleEnv(t)
	// The three examples of the docs page that receive, by a word of their block.
	hosts := map[string]*plugintest.Host{}
	for _, marker := range []string{"rest.nexmo.com", "api.plivo.com", "hmac-sha256"} {
		hosts[marker] = loadExample(t, marker)
	}
	key := "key=" + callbackSecret
	withID := key + "&m=" + url.QueryEscape(msgID)
	delivered := event{Type: "delivered", MessageID: msgID, ProviderID: "0A0000000123ABCD1"}
	plivoDelivered := event{Type: "delivered", MessageID: msgID, ProviderID: "db3ce55a-7f1d-11e1-8ea7-1231380bc196"}
	signedBody := func(status string) string {
		return `{"event":"message.status","sent_at":"` + sentAt + `","data":{"reference":"` + msgID + `","status":"` + status + `","to":"+33612345678"}}`
	}
	// dated is a signed receipt of msgID sent at ts (a JSON value).
	dated := func(ts string) string {
		return `{"event":"message.status","sent_at":` + ts + `,"data":{"reference":"` + msgID + `","status":"DELIVERED"}}`
	}
	victim := "m=" + url.QueryEscape("cmp_victim.1.c9.0")
	emptySig := hex.EncodeToString(hmac.New(sha256.New, []byte(signingKey)).Sum(nil)) // the signature of an empty body
	hexMAC := hex.EncodeToString
	withPrefix := func(b []byte) string { return "sha256=" + base64.StdEncoding.EncodeToString(b) }
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for _, tt := range []struct {
		name    string
		example string
		req     hookIn
		status  uint32
		events  []event
		body    string // in the reply's body
	}{
		// Vonage: JSON receipts and inbound messages, our id in client-ref, the token in the URL's query.
		{"vonage delivered", "rest.nexmo.com", postJSON(key, vonageDLR("delivered", "0")), 200, []event{delivered}, ""},
		{"vonage failed, number gone for good", "rest.nexmo.com", postJSON(key, vonageDLR("failed", "3")), 200,
			[]event{{Type: "bounced", MessageID: msgID, ProviderID: "0A0000000123ABCD1", Permanent: true, Detail: "status failed, error 3"}}, ""},
		{"vonage failed, phone off", "rest.nexmo.com", postJSON(key, vonageDLR("failed", "2")), 200,
			[]event{{Type: "bounced", MessageID: msgID, ProviderID: "0A0000000123ABCD1", Detail: "status failed, error 2"}}, ""},
		{"vonage expired", "rest.nexmo.com", postJSON(key, vonageDLR("expired", "1")), 200,
			[]event{{Type: "bounced", MessageID: msgID, ProviderID: "0A0000000123ABCD1", Detail: "status expired, error 1"}}, ""},
		{"vonage accepted is intermediate", "rest.nexmo.com", postJSON(key, vonageDLR("accepted", "0")), 200, nil, ""},
		{"vonage receipt by GET", "rest.nexmo.com", hookIn{Method: "GET", Path: "/hooks/acme/sms",
			Query: key + "&msisdn=447700900001&status=delivered&err-code=0&messageId=0A0000000123ABCD1&client-ref=" + url.QueryEscape(msgID)},
			200, []event{delivered}, ""},
		{"vonage receipts in an array", "rest.nexmo.com", postJSON(key, []any{vonageDLR("delivered", "0"), vonageDLR("failed", "9")}), 200,
			[]event{delivered, {Type: "bounced", MessageID: msgID, ProviderID: "0A0000000123ABCD1", Permanent: true, Detail: "status failed, error 9"}}, ""},
		{"vonage inbound STOP", "rest.nexmo.com", postJSON(key, vonageInbound("Stop")), 200,
			[]event{{Type: "unsubscribed", Address: "+447700900001", Detail: "Stop"}}, ""},
		{"vonage inbound reply", "rest.nexmo.com", postJSON(key, vonageInbound("Thanks, see you")), 200,
			[]event{{Type: "replied", Address: "+447700900001", Detail: "Thanks, see you"}}, ""},
		{"vonage long inbound text is cut", "rest.nexmo.com", postJSON(key, vonageInbound(strings.Repeat("é", 5000))), 200,
			[]event{{Type: "replied", Address: "+447700900001", Detail: strings.Repeat("é", 2048)}}, ""},
		{"vonage unknown fields are acknowledged", "rest.nexmo.com", postJSON(key, map[string]string{"hello": "world"}), 200, nil, ""},
		{"vonage wrong token", "rest.nexmo.com", postJSON("key=guessed_0123456789abcdef", vonageDLR("delivered", "0")), 403, nil, "wrong callback token"},
		{"vonage no token", "rest.nexmo.com", postJSON("", vonageDLR("delivered", "0")), 401, nil, "missing callback token"},
		{"vonage token in the body does not count", "rest.nexmo.com",
			postJSON("", map[string]string{"key": callbackSecret, "status": "delivered", "client-ref": msgID}), 401, nil, "query parameter key"},
		{"vonage not JSON", "rest.nexmo.com", post(key, "application/json", "status=delivered"), 400, nil, "not JSON"},
		{"vonage two JSON values", "rest.nexmo.com", post(key, "application/json", `{"status":"delivered"} {"status":"failed"}`), 400, nil, "not one JSON value"},
		{"vonage array of strings", "rest.nexmo.com", post(key, "application/json", `["delivered"]`), 400, nil, "item 0 is not an object"},
		{"vonage nesting bomb", "rest.nexmo.com", post(key, "application/json", deep), 400, nil, "not JSON"},
		{"vonage oversized body", "rest.nexmo.com", postJSON(key, vonageInbound(strings.Repeat("a", 70<<10))), 413, nil, "over 64 KiB"},

		// Plivo: form callbacks to the url given at send, which carries our id and the token.
		{"plivo delivered", "api.plivo.com", postForm(withID, plivoStatus("delivered", "")), 200, []event{plivoDelivered}, ""},
		{"plivo undelivered, invalid number", "api.plivo.com", postForm(withID, plivoStatus("undelivered", "50")), 200,
			[]event{{Type: "bounced", MessageID: msgID, ProviderID: plivoDelivered.ProviderID, Permanent: true, Detail: "status undelivered, error 50"}}, ""},
		{"plivo undelivered, phone off", "api.plivo.com", postForm(withID, plivoStatus("undelivered", "80")), 200,
			[]event{{Type: "bounced", MessageID: msgID, ProviderID: plivoDelivered.ProviderID, Detail: "status undelivered, error 80"}}, ""},
		{"plivo sent is intermediate", "api.plivo.com", postForm(withID, plivoStatus("sent", "")), 200, nil, ""},
		{"plivo inbound STOP", "api.plivo.com", postForm(key, plivoInbound("STOP ")), 200,
			[]event{{Type: "unsubscribed", Address: "+14155550123", Detail: "STOP "}}, ""},
		{"plivo inbound arrêt", "api.plivo.com", postForm(key, plivoInbound("arrêt")), 200,
			[]event{{Type: "unsubscribed", Address: "+14155550123", Detail: "arrêt"}}, ""},
		{"plivo inbound invalid UTF-8", "api.plivo.com", post(key, "application/x-www-form-urlencoded", "From=14155550123&Text=%FF%FEhello"), 200,
			[]event{{Type: "replied", Address: "+14155550123", Detail: "\uFFFDhello"}}, ""},
		{"plivo malformed form", "api.plivo.com", post(withID, "application/x-www-form-urlencoded", "Status=delivered&MessageUUID=%zz"), 400, nil, "not a form"},
		{"plivo wrong token", "api.plivo.com", postForm("key=x&m="+url.QueryEscape(msgID), plivoStatus("delivered", "")), 403, nil, "wrong callback token"},

		// A provider signing the body with HMAC-SHA256, nested JSON.
		{"signed delivered, hex", "hmac-sha256", signedJSON(signedBody("DELIVERED"), signingKey, hexMAC), 200,
			[]event{{Type: "delivered", MessageID: msgID}}, ""},
		{"signed delivered, base64 with prefix", "hmac-sha256", signedJSON(signedBody("delivered"), signingKey, withPrefix), 200,
			[]event{{Type: "delivered", MessageID: msgID}}, ""},
		{"signed invalid number is a hard bounce", "hmac-sha256", signedJSON(signedBody("INVALID_NUMBER"), signingKey, hexMAC), 200,
			[]event{{Type: "bounced", MessageID: msgID, Permanent: true, Detail: "status INVALID_NUMBER"}}, ""},
		{"signed expired is a soft bounce", "hmac-sha256", signedJSON(signedBody("EXPIRED"), signingKey, hexMAC), 200,
			[]event{{Type: "bounced", MessageID: msgID, Detail: "status EXPIRED"}}, ""},
		{"signed inbound configured stop word", "hmac-sha256",
			signedJSON(`{"event":"message.inbound","sent_at":"`+sentAt+`","data":{"from":"+33612345678","text":"basta"}}`, signingKey, hexMAC), 200,
			[]event{{Type: "unsubscribed", Address: "+33612345678", Detail: "basta"}}, ""},
		{"signed receipts in an array name their own messages", "hmac-sha256",
			signedJSON(`[{"sent_at":"`+sentAt+`","data":{"reference":"m1","status":"DELIVERED"}},{"sent_at":"`+sentAt+`","data":{"reference":"m2","status":"EXPIRED"}}]`, signingKey, hexMAC), 200,
			[]event{{Type: "delivered", MessageID: "m1"}, {Type: "bounced", MessageID: "m2", Detail: "status EXPIRED"}}, ""},
		{"signed with another key", "hmac-sha256", signedJSON(signedBody("DELIVERED"), "another_key_0123456789", hexMAC), 403, nil, "bad signature"},
		{"signature of another body", "hmac-sha256", func() hookIn {
			in := signedJSON(signedBody("EXPIRED"), signingKey, hexMAC)
			in.Body = signedBody("DELIVERED")
			return in
		}(), 403, nil, "bad signature"},
		{"signature neither hex nor base64", "hmac-sha256", post("", "application/json", signedBody("DELIVERED"), "X-Signature", "not-a-signature"), 403, nil, "bad signature"},
		{"no signature", "hmac-sha256", post("", "application/json", signedBody("DELIVERED")), 401, nil, "X-Signature"},
		{"signed but not JSON", "hmac-sha256", signedJSON(`{"data":`, signingKey, hexMAC), 400, nil, "not JSON"},

		// Only the body is signed: nothing that matters is read from the URL.
		{"signed empty body with a forged query", "hmac-sha256",
			signedWithQuery(victim+"&data.reference=cmp_victim.1.c9.0&data.status=INVALID_NUMBER&sent_at="+sentAt, ""), 401, nil, "its URL's query is not signed"},
		{"signed blank body with a forged query", "hmac-sha256",
			signedWithQuery(victim+"&data.status=INVALID_NUMBER", " \n "), 401, nil, "its URL's query is not signed"},
		{"signed GET with the record in its query", "hmac-sha256", hookIn{Method: "GET", Path: "/hooks/acme/sms",
			Query: "data.reference=" + url.QueryEscape(msgID) + "&data.status=DELIVERED&sent_at=" + sentAt, Headers: map[string]string{"X-Signature": emptySig}},
			401, nil, "its URL's query is not signed"},
		{"a signed receipt replayed with another ?m= still names its own message", "hmac-sha256",
			signedWithQuery(victim, signedBody("INVALID_NUMBER")), 200,
			[]event{{Type: "bounced", MessageID: msgID, Permanent: true, Detail: "status INVALID_NUMBER"}}, ""},
		{"a signed receipt without its reference is not named by ?m=", "hmac-sha256",
			signedWithQuery(victim, `{"sent_at":"`+sentAt+`","data":{"status":"INVALID_NUMBER"}}`), 200, nil, ""},

		// The replay window: sent_at, signed, within 5 minutes of the host's clock (2026-01-01T00:00:00Z).
		{"signed in Unix seconds", "hmac-sha256", signedJSON(dated("1767225570"), signingKey, hexMAC), 200,
			[]event{{Type: "delivered", MessageID: msgID}}, ""},
		{"signed 10 minutes ago", "hmac-sha256", signedJSON(dated(`"2025-12-31T23:50:00Z"`), signingKey, hexMAC), 403, nil, "stale callback"},
		{"signed 10 minutes ahead", "hmac-sha256", signedJSON(dated(`"2026-01-01T00:10:00+00:00"`), signingKey, hexMAC), 403, nil, "stale callback"},
		{"signed without a timestamp", "hmac-sha256",
			signedJSON(`{"data":{"reference":"`+msgID+`","status":"DELIVERED"}}`, signingKey, hexMAC), 401, nil, "missing timestamp"},
		{"signed with an unreadable timestamp", "hmac-sha256", signedJSON(dated(`"yesterday"`), signingKey, hexMAC), 400, nil, "not Unix seconds or an RFC 3339 time"},
		{"one stale receipt in an array refuses them all", "hmac-sha256",
			signedJSON(`[{"sent_at":"`+sentAt+`","data":{"reference":"m1","status":"DELIVERED"}},{"sent_at":"2025-12-31T23:00:00Z","data":{"reference":"m2","status":"INVALID_NUMBER"}}]`, signingKey, hexMAC),
			403, nil, "stale callback"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := receive(t, hosts[tt.example], tt.req)
			if len(got.Events) == 0 {
				got.Events = nil // none, however the answer writes it
			}
			if got.Status != tt.status || !reflect.DeepEqual(got.Events, tt.events) || !strings.Contains(got.Body, tt.body) {
				t.Fatalf("reply %d %q, events %+v\nwant %d with %q, events %+v", got.Status, got.Body, got.Events, tt.status, tt.body, tt.events)
			}
		})
	}
}

// TestSignedCallbackReplayedLater sends the same signed callback twice, as a provider and then as someone who
// captured it: accepted within callback_max_age of its sent_at, refused with no event once the host's clock is
// past it, whatever ?m= the replay carries.
func TestSignedCallbackReplayedLater(t *testing.T) {
	exampleEnv(t)
	h := loadExample(t, "hmac-sha256")
	body := `{"event":"message.status","sent_at":"` + sentAt + `","data":{"reference":"` + msgID + `","status":"INVALID_NUMBER"}}`
	for _, tt := range []struct {
		name   string
		after  time.Duration // past plugintest.DefaultNow
		query  string
		status uint32
		events int
	}{
		{"first delivery", 0, "", 200, 1},
		{"a retry 4 minutes later", 4 * time.Minute, "", 200, 1},
		{"a replay 6 minutes later", 6 * time.Minute, "", 403, 0},
		{"a replay 6 minutes later naming another message", 6 * time.Minute, "m=cmp_victim.1.c9.0", 403, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.SetNow(plugintest.DefaultNow.Add(tt.after))
			got := receive(t, h, signedWithQuery(tt.query, body))
			if got.Status != tt.status || len(got.Events) != tt.events || tt.events == 1 && got.Events[0].MessageID != msgID {
				t.Fatalf("reply %+v, want %d with %d events of %s", got, tt.status, tt.events, msgID)
			}
		})
	}
}

// TestVonageExampleSends checks the request of the docs' Vonage example against the SMS API's documented form
// (https://developer.vonage.com/en/api/sms): from, to, text, client-ref; HTTP Basic with the key and secret.
func TestVonageExampleSends(t *testing.T) {
	exampleEnv(t)
	h := loadExample(t, "rest.nexmo.com", plugintest.Response{Method: "POST", URL: "https://rest.nexmo.com/sms/json", Status: 200,
		Body: `{"message-count":"1","messages":[{"to":"447700900001","message-id":"0A0000000123ABCD1","status":"0","remaining-balance":"3.14159265","message-price":"0.03330000","network":"23410"}]}`})
	res := h.Send(sms(msgID, "+447700900001", "Hello Ana & co, -20%"))
	if len(res) != 1 || res[0].Status != sdk.Accepted || res[0].ProviderID != "0A0000000123ABCD1" {
		t.Fatalf("results %+v", res)
	}
	r := h.Requests()[0]
	form, err := url.ParseQuery(r.Body)
	if err != nil || form.Get("from") != "Acme" || form.Get("to") != "+447700900001" || form.Get("text") != "Hello Ana & co, -20%" ||
		form.Get("client-ref") != msgID || len(form) != 4 {
		t.Fatalf("form %v, %v", form, err)
	}
	if r.Header["Authorization"] != "Basic "+vonageBasic || r.Header["Content-Type"] != "application/x-www-form-urlencoded" {
		t.Fatalf("headers %v", r.Header)
	}
}

// TestPlivoExampleSendsAndHearsBack checks the request of the docs' Plivo example against Plivo's documented send
// API (src, dst, text, url, method; HTTP Basic), then answers as Plivo does: a status callback to the url it was
// given names the message.
func TestPlivoExampleSendsAndHearsBack(t *testing.T) {
	exampleEnv(t)
	const api = "https://api.plivo.com/v1/Account/MAXXXXXXXXXXXXXXXXXX/Message/"
	h := loadExample(t, "api.plivo.com", plugintest.Response{Method: "POST", URL: api, Status: 202,
		Body: `{"api_id":"db342550-7f1d-11e1-8ea7-1231380bc196","message":"message(s) queued","message_uuid":["db3ce55a-7f1d-11e1-8ea7-1231380bc196"]}`})
	res := h.Send(sms(msgID, "+14155550123", `Say "hi" \o/`))
	if len(res) != 1 || res[0].Status != sdk.Accepted || res[0].ProviderID != "db3ce55a-7f1d-11e1-8ea7-1231380bc196" {
		t.Fatalf("results %+v", res)
	}
	r := h.Requests()[0]
	var sent map[string]string
	if err := json.Unmarshal([]byte(r.Body), &sent); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	wantURL := "https://crosscast.example.com/hooks/acme/sms?key=" + callbackSecret + "&m=" + url.QueryEscape(msgID)
	if sent["src"] != "+14155550100" || sent["dst"] != "+14155550123" || sent["text"] != `Say "hi" \o/` || sent["url"] != wantURL ||
		sent["method"] != "POST" || r.Header["Authorization"] != "Basic "+plivoBasic {
		t.Fatalf("request %+v", r)
	}
	callback, _ := url.Parse(sent["url"])
	got := receive(t, h, postForm(callback.RawQuery, plivoStatus("delivered", "")))
	if got.Status != 200 || len(got.Events) != 1 || got.Events[0].Type != "delivered" || got.Events[0].MessageID != msgID {
		t.Fatalf("the callback to the url sent: %+v", got)
	}
}

func TestReceiveConfigIsChecked(t *testing.T) {
	const send = `provider = "generic"
from = "Acme"
url = "https://sms.example.net/v1/send"
headers = { "Content-Type" = "application/x-www-form-urlencoded" }
body = "to={{to}}&msg={{text}}"
`
	const token = `callback_auth = "token"
callback_auth_param = "key"
callback_secret = "cb_secret_0123456789abcdef"
`
	const statuses = `status_field = "status"
delivered_statuses = ["delivered"]
`
	const signed = `callback_auth = "hmac-sha256"
callback_auth_header = "X-Signature"
callback_secret = "cb_secret_0123456789abcdef"
`
	for _, tt := range []struct{ name, config, want string }{
		{"unknown format", `receive_format = "xml"` + "\n" + token + statuses, `receive_format: "xml" is not "form" or "json"`},
		{"no authentication", `receive_format = "json"` + "\n" + statuses, "callback_auth: receive_format is set, so callbacks must be authenticated"},
		{"unknown authentication", `receive_format = "json"
callback_auth = "basic"
callback_secret = "cb_secret_0123456789abcdef"
` + statuses, `callback_auth: "basic" is not "token" or "hmac-sha256"`},
		{"token nowhere", `receive_format = "json"
callback_auth = "token"
callback_secret = "cb_secret_0123456789abcdef"
` + statuses, `callback_auth_param: callback_auth = "token" needs the query parameter`},
		{"token in two places", `receive_format = "json"
callback_auth_header = "X-Token"
` + token + statuses, "callback_auth_header: set either callback_auth_param or callback_auth_header, not both"},
		{"token in the id's parameter", `receive_format = "json"
callback_auth = "token"
callback_auth_param = "m"
callback_secret = "cb_secret_0123456789abcdef"
` + statuses, `callback_auth_param: "m" carries the message id`},
		{"hmac without header", `receive_format = "json"
callback_auth = "hmac-sha256"
callback_secret = "cb_secret_0123456789abcdef"
` + statuses, `callback_auth_header: callback_auth = "hmac-sha256" needs the header`},
		{"no secret", `receive_format = "json"
callback_auth = "token"
callback_auth_param = "key"
` + statuses, "callback_secret: callback_auth = \"token\" needs a secret of at least 16 bytes"},
		{"short secret", `receive_format = "json"
callback_auth = "token"
callback_auth_param = "key"
callback_secret = "hunter2"
` + statuses, "callback_secret: callback_auth = \"token\" needs a secret of at least 16 bytes"},
		{"nothing to read", `receive_format = "json"` + "\n" + token, "status_field: receive_format is set but neither status_field"},
		{"status not mapped", `receive_format = "json"
status_field = "status"
` + token, `delivered_statuses: status_field "status" is read, but no status value is listed`},
		{"statuses without their field", `receive_format = "json"
delivered_statuses = ["delivered"]
text_field = "text"
from_field = "from"
` + token, "delivered_statuses: needs status_field"},
		{"a status meaning two things", `receive_format = "json"
failed_statuses = ["failed"]
soft_failed_statuses = ["FAILED"]
` + token + statuses, `soft_failed_statuses: "FAILED" is also in failed_statuses`},
		{"text without sender", `receive_format = "json"
text_field = "text"
` + token, "from_field: text_field is read, so from_field must name the sender's number"},
		{"permanent errors without their field", `receive_format = "json"
soft_failed_statuses = ["failed"]
permanent_errors = ["3"]
` + token + statuses, "permanent_errors: needs error_field"},
		{"receipt field without receipts", `receive_format = "json"
text_field = "text"
from_field = "from"
message_id_field = "ref"
` + token, "message_id_field: only read from delivery receipts; set status_field"},
		{"signed receipts without message_id_field", `receive_format = "json"` + "\n" + signed + statuses,
			`message_id_field: callback_auth = "hmac-sha256" signs only the body, so a delivery receipt must name its message in a body field`},
		{"timestamp with a token", `receive_format = "json"
callback_timestamp_field = "sent_at"
` + token + statuses, `callback_timestamp_field: only for callback_auth = "hmac-sha256"`},
		{"max age without timestamp", `receive_format = "json"
message_id_field = "ref"
callback_max_age = "5m"
` + signed + statuses, "callback_max_age: only read with callback_timestamp_field"},
		{"max age not a duration", `receive_format = "json"
message_id_field = "ref"
callback_timestamp_field = "sent_at"
callback_max_age = "5 minutes"
` + signed + statuses, `callback_max_age: "5 minutes" is not a positive duration`},
		{"max age negative", `receive_format = "json"
message_id_field = "ref"
callback_timestamp_field = "sent_at"
callback_max_age = "-5m"
` + signed + statuses, `callback_max_age: "-5m" is not a positive duration`},
		{"timestamp without receive_format", `callback_timestamp_field = "sent_at"` + "\n", "callback_timestamp_field: only read with receive_format"},
		{"receive config without receive_format", token + statuses, "callback_auth: only read with receive_format"},
		{"callback without status_callback", `body = "to={{to}}&msg={{text}}&dlr={{callback}}"`, "body: {{callback}} needs status_callback"},
		{"status_callback not a URL", `status_callback = "hooks/acme/sms"`, `status_callback: "hooks/acme/sms" is not an http(s) URL`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			config := send + tt.config
			if strings.HasPrefix(tt.config, "body =") {
				config = strings.Replace(send, `body = "to={{to}}&msg={{text}}"`+"\n", "", 1) + tt.config
			}
			_, err := plugintest.Load(t, plugintest.Options{Config: config, Grants: plugintest.Grants{HTTPHosts: []string{"https://sms.example.net"}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loading:\n%s\nerror %v, want %q", config, err, tt.want)
			}
		})
	}
	t.Run("signed inbound messages need no message_id_field", func(t *testing.T) {
		t.Parallel()
		h := plugintest.New(t, plugintest.Options{Config: send + `receive_format = "json"
text_field = "text"
from_field = "from"
` + signed, Grants: plugintest.Grants{HTTPHosts: []string{"https://sms.example.net"}}})
		mac := hmac.New(sha256.New, []byte("cb_secret_0123456789abcdef"))
		body := `{"from":"+33612345678","text":"STOP"}`
		mac.Write([]byte(body))
		got := receive(t, h, post("", "application/json", body, "X-Signature", hex.EncodeToString(mac.Sum(nil))))
		if got.Status != 200 || len(got.Events) != 1 || got.Events[0].Type != "unsubscribed" || got.Events[0].Address != "+33612345678" {
			t.Fatalf("reply %+v", got)
		}
	})
	t.Run("twilio reads no generic receive config", func(t *testing.T) {
		t.Parallel()
		_, err := plugintest.Load(t, plugintest.Options{Config: `account_sid = "` + sid + `"
auth_token = "t"
from = "+33700000000"
receive_format = "json"`, Grants: plugintest.Grants{HTTPHosts: []string{"https://api.twilio.com"}}})
		if err == nil || !strings.Contains(err.Error(), `receive_format: only read by provider = "generic"`) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestTokenInAHeader(t *testing.T) {
	h := plugintest.New(t, plugintest.Options{Config: `provider = "generic"
from = "Acme"
url = "https://sms.example.net/v1/send"
headers = { "Content-Type" = "application/x-www-form-urlencoded" }
body = "to={{to}}&msg={{text}}&ref={{id}}"
receive_format = "form"
callback_auth = "token"
callback_auth_header = "x-webhook-token"
callback_secret = "` + callbackSecret + `"
status_field = "state"
delivered_statuses = ["ok"]
message_id_field = "ref"`, Grants: plugintest.Grants{HTTPHosts: []string{"https://sms.example.net"}}})
	form := url.Values{"state": {"ok"}, "ref": {msgID}}
	for _, tt := range []struct {
		name   string
		req    hookIn
		status uint32
		events int
	}{
		{"right token", post("", "application/x-www-form-urlencoded", form.Encode(), "X-Webhook-Token", callbackSecret), 200, 1},
		{"wrong token", post("", "application/x-www-form-urlencoded", form.Encode(), "X-Webhook-Token", callbackSecret+"x"), 403, 0},
		{"token in the query instead", post("x-webhook-token="+callbackSecret, "application/x-www-form-urlencoded", form.Encode()), 401, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := receive(t, h, tt.req)
			if got.Status != tt.status || len(got.Events) != tt.events || tt.events == 1 && got.Events[0].MessageID != msgID {
				t.Fatalf("reply %+v, want %d with %d events", got, tt.status, tt.events)
			}
		})
	}
}

func TestGenericWithoutReceiveFormatTakesNoCallbacks(t *testing.T) {
	exampleEnv(t)
	h := loadExample(t, `\"ref\"`) // the page's first generic example: sending only
	got := receive(t, h, postForm("", plivoInbound("STOP")))
	if got.Status != 404 || len(got.Events) != 0 || !strings.Contains(got.Body, "receive_format") {
		t.Fatalf("reply %+v", got)
	}
}
