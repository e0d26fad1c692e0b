package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/plugintest"
	"github.com/crosscast/crosscast/sdk/wire"
)

const (
	sid      = "AC0123456789abcdef0123456789abcdef"
	messages = "https://api.twilio.com/2010-04-01/Accounts/" + sid + "/Messages.json"
)

func host(t *testing.T, responses ...plugintest.Response) *plugintest.Host {
	return plugintest.New(t, plugintest.Options{Config: `account_sid = "` + sid + `"
auth_token = "tok_secret_123"
from = "+33700000000"
status_callback = "https://cc.example.com/hooks/acme/sms"
stop_words = ["basta"]`,
		Grants: plugintest.Grants{HTTPHosts: []string{"https://api.twilio.com"}}, HTTP: responses})
}

func sms(id, to, text string) sdk.Message {
	return sdk.Message{ID: id, IdempotencyKey: "key-" + id, To: to, Fields: wire.PairsOf(map[string]string{"text": text})}
}

func TestSendsThroughTwilio(t *testing.T) {
	h := host(t, plugintest.Response{Method: "POST", URL: messages, Status: 201, Body: `{"sid":"SM0123","status":"queued"}`, Repeat: true})
	long := strings.Repeat("Sale: -20% on everything. ", 7) // 182 GSM characters: 2 segments
	res := h.Send(sms("m1", "+33612345678", "Hello Ana, your code is 1234"), sms("m2", "+33612345679", long))
	for _, r := range res {
		if r.Status != sdk.Accepted || r.ProviderID != "SM0123" {
			t.Fatalf("results %+v", res)
		}
	}
	reqs := h.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	form, err := url.ParseQuery(r.Body)
	if err != nil || form.Get("To") != "+33612345678" || form.Get("From") != "+33700000000" || form.Get("Body") != "Hello Ana, your code is 1234" ||
		form.Get("StatusCallback") != "https://cc.example.com/hooks/acme/sms?m=m1" {
		t.Fatalf("form %v, %v", form, err)
	}
	if r.Header["Authorization"] != "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0b2tfc2VjcmV0XzEyMw==" ||
		r.Header["Content-Type"] != "application/x-www-form-urlencoded" || r.Header["I-Twilio-Idempotency-Token"] != "key-m1" {
		t.Fatalf("headers %v", r.Header)
	}
	if got := h.Metric("sms_segments_total"); got != 3 {
		t.Fatalf("segments counted %v, want 1+2", got)
	}
	if res[0].Units != 1 || res[1].Units != 2 {
		t.Fatalf("segments reported %d and %d, want 1 and 2", res[0].Units, res[1].Units)
	}
}

func TestAnswersAndBadNumbers(t *testing.T) {
	for _, tt := range []struct {
		name string
		resp plugintest.Response
		want sdk.Status
		text string
	}{
		{"invalid number at Twilio", plugintest.Response{Status: 400, Body: `{"code":21211,"message":"Invalid 'To' Phone Number"}`}, sdk.Failed, "21211"},
		{"rate limited", plugintest.Response{Status: 429, Body: `{"code":20429,"message":"Too Many Requests"}`}, sdk.Retry, "20429"},
		{"outage", plugintest.Response{Status: 503}, sdk.Retry, "HTTP 503"},
		{"network", plugintest.Response{Err: "connection reset"}, sdk.Retry, "connection reset"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.resp.Method, tt.resp.URL = "POST", messages
			res := host(t, tt.resp).Send(sms("m1", "+33612345678", "Hi"))
			if len(res) != 1 || res[0].Status != tt.want || !strings.Contains(res[0].Error, tt.text) {
				t.Fatalf("result %+v, want %v with %q", res, tt.want, tt.text)
			}
		})
	}
	h := host(t)
	res := h.Send(sms("a", "0612345678", "Hi"), sms("b", "+33 6 12 34 56 78", "Hi"), sms("c", "+33612345678", "  "))
	for _, r := range res {
		if r.Status != sdk.Failed {
			t.Errorf("%s: %+v", r.ID, r)
		}
	}
	if len(h.Requests()) != 0 {
		t.Fatalf("%d requests for refused messages", len(h.Requests()))
	}
}

func TestSegments(t *testing.T) {
	for _, tt := range []struct {
		text string
		want int
	}{
		{"", 1},
		{strings.Repeat("a", 160), 1},
		{strings.Repeat("a", 161), 2},
		{strings.Repeat("a", 306), 2},
		{strings.Repeat("a", 307), 3},
		{strings.Repeat("€", 80), 1},  // extension table: 2 septets each, 160
		{strings.Repeat("€", 81), 2},  // 162 septets
		{strings.Repeat("é", 160), 1}, // é is in the GSM alphabet
		{strings.Repeat("ç", 70), 1},  // ç is not (only Ç): UCS-2
		{strings.Repeat("ç", 71), 2},  // 71 units
		{strings.Repeat("😀", 35), 1},  // surrogate pairs: 70 units
		{strings.Repeat("😀", 36), 2},  // 72 units
		{strings.Repeat("a", 134), 1},
	} {
		if got := Segments(tt.text); got != tt.want {
			t.Errorf("Segments(%d x %q...) = %d, want %d", len([]rune(tt.text)), firstRune(tt.text), got, tt.want)
		}
	}
}

func firstRune(s string) string {
	for _, r := range s {
		return string(r)
	}
	return ""
}

func TestConfigIsChecked(t *testing.T) {
	for _, cfg := range []string{
		`account_sid = "nope"
auth_token = "t"
from = "+33700000000"`,
		`account_sid = "` + sid + `"
auth_token = "t"
from = "Acme"`,
		`provider = "nexmo"
account_sid = "` + sid + `"
auth_token = "t"
from = "+33700000000"`,
	} {
		if _, err := plugintest.Load(t, plugintest.Options{Config: cfg, Grants: plugintest.Grants{HTTPHosts: []string{"https://api.twilio.com"}}}); err == nil {
			t.Errorf("config loaded:\n%s", cfg)
		}
	}
}

type hookIn struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type hookOut struct {
	Status uint32 `json:"status"`
	Events []struct {
		Type      string `json:"type"`
		MessageID string `json:"message_id"`
		Address   string `json:"address"`
		Detail    string `json:"detail"`
		Permanent bool   `json:"permanent"`
	} `json:"events"`
}

func TestReceiveStatusesAndStop(t *testing.T) {
	h := host(t)
	call := func(query string, form url.Values, signWith string) hookOut {
		t.Helper()
		full := "https://cc.example.com/hooks/acme/sms"
		if query != "" {
			full += "?" + query
		}
		var out hookOut
		err := h.Call("receive", hookIn{Method: "POST", Path: "/hooks/acme/sms", Query: query, Body: form.Encode(),
			Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": TwilioSignature(signWith, full, form)}}, &out)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	delivered := call("m=cmp_1.1.c1.0", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}, "To": {"+33612345678"}}, "tok_secret_123")
	if delivered.Status != 200 || len(delivered.Events) != 1 || delivered.Events[0].Type != "delivered" || delivered.Events[0].MessageID != "cmp_1.1.c1.0" {
		t.Fatalf("delivered: %+v", delivered)
	}
	failed := call("m=cmp_1.1.c2.0", url.Values{"MessageSid": {"SM2"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30006"}}, "tok_secret_123")
	if len(failed.Events) != 1 || failed.Events[0].Type != "bounced" || !failed.Events[0].Permanent {
		t.Fatalf("a landline: %+v", failed)
	}
	stop := call("", url.Values{"MessageSid": {"SM3"}, "From": {"+33612345678"}, "Body": {" arret "}}, "tok_secret_123")
	if len(stop.Events) != 1 || stop.Events[0].Type != "unsubscribed" || stop.Events[0].Address != "+33612345678" {
		t.Fatalf("STOP: %+v", stop)
	}
	custom := call("", url.Values{"MessageSid": {"SM5"}, "From": {"+33612345678"}, "Body": {"Basta"}}, "tok_secret_123")
	if len(custom.Events) != 1 || custom.Events[0].Type != "unsubscribed" {
		t.Fatalf("a configured stop word: %+v", custom)
	}
	reply := call("", url.Values{"MessageSid": {"SM4"}, "From": {"+33612345678"}, "Body": {"thanks!"}}, "tok_secret_123")
	if len(reply.Events) != 1 || reply.Events[0].Type != "replied" {
		t.Fatalf("a reply: %+v", reply)
	}
	forged := call("m=cmp_1.1.c1.0", url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}}, "not the token")
	if forged.Status != 403 || len(forged.Events) != 0 {
		t.Fatalf("a forged callback: %+v", forged)
	}
}

func TestGenericProvider(t *testing.T) {
	const api = "https://sms.example.net/v1/send"
	load := func(t *testing.T, headers, body string, responses ...plugintest.Response) *plugintest.Host {
		return plugintest.New(t, plugintest.Options{Config: `provider = "generic"
from = "Acme"
url = "` + api + `"
auth_token = "key_123"
headers = ` + headers + `
body = ` + body + `
id_field = "id"`, Grants: plugintest.Grants{HTTPHosts: []string{"https://sms.example.net"}}, HTTP: responses})
	}
	t.Run("json", func(t *testing.T) {
		h := load(t, `{ "Content-Type" = "application/json", "Authorization" = "Bearer {{token}}" }`,
			`"{\"to\":\"{{to}}\",\"from\":\"{{from}}\",\"text\":\"{{text}}\"}"`,
			plugintest.Response{Method: "POST", URL: api, Status: 200, Body: `{"id":"msg-42","status":"queued"}`})
		res := h.Send(sms("m1", "+33612345678", "Line \"one\"\nline two"))
		if len(res) != 1 || res[0].Status != sdk.Accepted || res[0].ProviderID != "msg-42" {
			t.Fatalf("results %+v", res)
		}
		r := h.Requests()[0]
		if r.Body != `{"to":"+33612345678","from":"Acme","text":"Line \"one\"\nline two"}` || r.Header["Authorization"] != "Bearer key_123" ||
			r.Header["Idempotency-Key"] != "key-m1" {
			t.Fatalf("request %+v", r)
		}
	})
	t.Run("form", func(t *testing.T) {
		h := load(t, `{ "Content-Type" = "application/x-www-form-urlencoded" }`, `"user=acme&key={{token}}&to={{to}}&msg={{text}}"`,
			plugintest.Response{Method: "POST", URL: api, Status: 500, Body: "down"})
		res := h.Send(sms("m1", "+33612345678", "a&b=c é"))
		if res[0].Status != sdk.Retry {
			t.Fatalf("results %+v", res)
		}
		form, err := url.ParseQuery(h.Requests()[0].Body)
		if err != nil || form.Get("msg") != "a&b=c é" || form.Get("key") != "key_123" || form.Get("to") != "+33612345678" {
			t.Fatalf("form %v, %v", form, err)
		}
	})
	for _, cfg := range []string{
		`provider = "generic"
from = "Acme"
body = "to={{to}}&msg={{text}}"`,
		`provider = "generic"
from = "Acme"
url = "` + api + `"
body = "msg={{text}}"`,
	} {
		if _, err := plugintest.Load(t, plugintest.Options{Config: cfg, Grants: plugintest.Grants{HTTPHosts: []string{"https://sms.example.net"}}}); err == nil {
			t.Errorf("config loaded:\n%s", cfg)
		}
	}
}
