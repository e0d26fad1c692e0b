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
status_callback = "https://cc.example.com/hooks/acme/sms"`,
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
		form.Get("StatusCallback") != "https://cc.example.com/hooks/acme/sms" {
		t.Fatalf("form %v, %v", form, err)
	}
	if r.Header["Authorization"] != "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjp0b2tfc2VjcmV0XzEyMw==" ||
		r.Header["Content-Type"] != "application/x-www-form-urlencoded" || r.Header["I-Twilio-Idempotency-Token"] != "key-m1" {
		t.Fatalf("headers %v", r.Header)
	}
	if got := h.Metric("sms_segments_total"); got != 3 {
		t.Fatalf("segments counted %v, want 1+2", got)
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
