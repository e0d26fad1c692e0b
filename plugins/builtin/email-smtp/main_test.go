package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/plugintest"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/emersion/go-msgauth/dkim"
)

func host(t *testing.T) *plugintest.Host {
	return plugintest.New(t, plugintest.Options{Config: `from = "Acme News <news@acme.example>"
reply_to = "help@acme.example"`, Grants: plugintest.Grants{SMTP: true}})
}

func message(id, to string, fields map[string]string, headers ...wire.Pair) sdk.Message {
	return sdk.Message{ID: id, IdempotencyKey: id, To: to, Fields: wire.PairsOf(fields), Headers: headers}
}

func TestBuildsAStandardMessage(t *testing.T) {
	h := host(t)
	res := h.Send(message("cmp_1.1.c1.0", "Ana <ana@example.com>", map[string]string{
		"subject":   "Ça va? Your -20% ✓",
		"preheader": "Only this week",
		"html":      "<p>Hello Ana,</p><p>" + strings.Repeat("long line ", 20) + "</p>",
		"text":      "Hello Ana,\nsee you",
	}, wire.Pair{Key: "List-Unsubscribe", Value: "<https://cc.example.com/u/acme/x/y>"},
		wire.Pair{Key: "List-Unsubscribe-Post", Value: "List-Unsubscribe=One-Click"}))
	if len(res) != 1 || res[0].Status != sdk.Delivered || !strings.HasSuffix(res[0].ProviderID, "@acme.example>") {
		t.Fatalf("results %+v", res)
	}
	mails := h.Mails()
	if len(mails) != 1 || mails[0].From != "news@acme.example" || len(mails[0].To) != 1 || mails[0].To[0] != "ana@example.com" {
		t.Fatalf("envelope %+v", mails)
	}
	if strings.Contains(strings.ReplaceAll(mails[0].Data, "\r\n", ""), "\n") {
		t.Fatal("a bare LF in the message: every line must end with CRLF")
	}
	msg, err := mail.ReadMessage(strings.NewReader(mails[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "Ça va? Your -20% ✓" {
		t.Fatalf("subject %q, %v (raw %q)", subject, err, msg.Header.Get("Subject"))
	}
	for name, want := range map[string]string{
		"From": `"Acme News" <news@acme.example>`, "To": `"Ana" <ana@example.com>`, "Reply-To": "<help@acme.example>",
		"MIME-Version": "1.0", "List-Unsubscribe": "<https://cc.example.com/u/acme/x/y>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "X-Crosscast-Message-ID": "cmp_1.1.c1.0",
		"Date": "Thu, 01 Jan 2026 00:00:00 +0000", // plugintest.DefaultNow
	} {
		if got := msg.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if id := msg.Header.Get("Message-ID"); id != res[0].ProviderID {
		t.Errorf("Message-ID %q, provider id %q", id, res[0].ProviderID)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("content type %q, %v", mediaType, err)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	var got []string
	for {
		p, err := parts.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		got = append(got, p.Header.Get("Content-Type")+": "+string(body))
	}
	if len(got) != 2 || got[0] != "text/plain; charset=utf-8: Hello Ana,\r\nsee you" ||
		!strings.HasPrefix(got[1], `text/html; charset=utf-8: <div style="display:none;max-height:0;overflow:hidden;mso-hide:all">Only this week</div><p>Hello Ana,</p>`) {
		t.Fatalf("parts %q", got)
	}
}

func TestRelayAnswersAndBadInput(t *testing.T) {
	h := host(t)
	h.RefuseMail("gone@example.com", 550, "5.1.1 no such user")
	h.RefuseMail("full@example.com", 452, "4.2.2 mailbox full")
	res := h.Send(
		message("m1", "gone@example.com", map[string]string{"subject": "x", "text": "x"}),
		message("m2", "full@example.com", map[string]string{"subject": "x", "text": "x"}),
		message("m3", "not an address", map[string]string{"subject": "x", "text": "x"}),
		message("m4", "ok@example.com", map[string]string{"subject": "no body"}),
		message("m5", "ok@example.com", map[string]string{"subject": "x", "text": "x"}, wire.Pair{Key: "X-Evil", Value: "a\r\nBcc: victim@example.com"}),
		message("m6", "ok@example.com", map[string]string{"subject": "Line\r\nBcc: victim@example.com", "text": "x", "from": "Sales <sales@acme.example>"}),
	)
	want := []sdk.Status{sdk.Failed, sdk.Retry, sdk.Failed, sdk.Failed, sdk.Failed, sdk.Delivered}
	for i, r := range res {
		if r.Status != want[i] {
			t.Errorf("%s: %v (%s), want %v", r.ID, r.Status, r.Error, want[i])
		}
	}
	mails := h.Mails()
	last := mails[len(mails)-1].Data
	if strings.Contains(last, "\r\nBcc:") || !strings.Contains(last, "From: \"Sales\" <sales@acme.example>\r\n") {
		t.Fatalf("header injection or from: %s", last)
	}
}

func TestConfigIsChecked(t *testing.T) {
	_, err := plugintest.Load(t, plugintest.Options{Config: `from = "nobody"`, Grants: plugintest.Grants{SMTP: true}})
	if err == nil || !strings.Contains(err.Error(), "from") {
		t.Fatalf("a bad from: %v", err)
	}
}

func TestReceivesMailgunEvents(t *testing.T) {
	h := plugintest.New(t, plugintest.Options{Config: `from = "news@acme.example"
events = "mailgun"
webhook_signing_key = "key-0123456789abcdef"`, Grants: plugintest.Grants{SMTP: true}})
	// The variables header rides with the message, so that Mailgun's events name it.
	h.Send(message("cmp_1.1.c1.0", "ana@example.com", map[string]string{"subject": "x", "text": "x"}))
	if data := h.Mails()[0].Data; !strings.Contains(data, "X-Mailgun-Variables: {\"crosscast_id\":\"cmp_1.1.c1.0\"}\r\n") {
		t.Fatalf("no variables header:\n%s", data)
	}
	event := func(kind, severity, key string) map[string]any {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte("1795368401" + "tok123"))
		return map[string]any{
			"signature":  map[string]string{"timestamp": "1795368401", "token": "tok123", "signature": hex.EncodeToString(mac.Sum(nil))},
			"event-data": map[string]any{"event": kind, "severity": severity, "recipient": "ana@example.com", "reason": "bounce", "user-variables": map[string]string{"crosscast_id": "cmp_1.1.c1.0"}},
		}
	}
	type out struct {
		Status uint32 `json:"status"`
		Events []struct {
			Type      string `json:"type"`
			MessageID string `json:"message_id"`
			Permanent bool   `json:"permanent"`
		} `json:"events"`
	}
	for _, tt := range []struct {
		kind, severity, key string
		status              uint32
		want                string
		permanent           bool
	}{
		{"delivered", "", "key-0123456789abcdef", 200, "delivered", false},
		{"failed", "permanent", "key-0123456789abcdef", 200, "bounced", true},
		{"failed", "temporary", "key-0123456789abcdef", 200, "bounced", false},
		{"complained", "", "key-0123456789abcdef", 200, "complained", false},
		{"accepted", "", "key-0123456789abcdef", 200, "", false},
		{"delivered", "", "another key", 403, "", false},
	} {
		body, _ := json.Marshal(event(tt.kind, tt.severity, tt.key))
		var got out
		if err := h.Call("receive", map[string]any{"method": "POST", "path": "/hooks/acme/email", "body": string(body),
			"headers": map[string]string{"Content-Type": "application/json"}}, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != tt.status || tt.want == "" && len(got.Events) != 0 ||
			tt.want != "" && (len(got.Events) != 1 || got.Events[0].Type != tt.want || got.Events[0].MessageID != "cmp_1.1.c1.0" || got.Events[0].Permanent != tt.permanent) {
			t.Errorf("%s %s (%s): %+v", tt.kind, tt.severity, tt.key, got)
		}
	}
}

func TestSignsWithDKIM(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	h := plugintest.New(t, plugintest.Options{Config: `from = "news@acme.example"
dkim_domain = "acme.example"
dkim_selector = "cc2026"
dkim_key = <<EOT
` + keyPEM + `EOT
`, Grants: plugintest.Grants{SMTP: true}})
	res := h.Send(message("m1", "ana@example.com", map[string]string{"subject": "Signed", "html": "<p>Hi</p>", "text": "Hi"},
		wire.Pair{Key: "List-Unsubscribe", Value: "<https://cc.example.com/u/acme/x/y>"}))
	if res[0].Status != sdk.Delivered {
		t.Fatalf("result %+v", res)
	}
	data := h.Mails()[0].Data
	lookup := func(domain string) ([]string, error) {
		if domain != "cc2026._domainkey.acme.example" {
			return nil, fmt.Errorf("no record for %s", domain)
		}
		return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
	}
	verifications, err := dkim.VerifyWithOptions(strings.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(verifications) != 1 || verifications[0].Err != nil || verifications[0].Domain != "acme.example" {
		t.Fatalf("verification: %+v, %v\n%s", verifications, err, data)
	}
	// Altered in transit: the signature no longer verifies.
	altered := strings.Replace(data, "Subject: Signed", "Subject: Changed", 1)
	if v, err := dkim.VerifyWithOptions(strings.NewReader(altered), &dkim.VerifyOptions{LookupTXT: lookup}); err != nil || len(v) != 1 || v[0].Err == nil {
		t.Fatalf("an altered message verified: %+v, %v", v, err)
	}
}

func TestReceivesPostmarkEvents(t *testing.T) {
	h := plugintest.New(t, plugintest.Options{Config: `from = "news@acme.example"
events = "postmark"
webhook_signing_key = "pm-hook-secret"`, Grants: plugintest.Grants{SMTP: true}})
	h.Send(message("cmp_1.1.c1.0", "ana@example.com", map[string]string{"subject": "x", "text": "x"}))
	if data := h.Mails()[0].Data; !strings.Contains(data, "X-PM-Metadata-crosscast_id: cmp_1.1.c1.0\r\n") {
		t.Fatalf("no metadata header:\n%s", data)
	}
	type out struct {
		Status uint32 `json:"status"`
		Events []struct {
			Type      string `json:"type"`
			MessageID string `json:"message_id"`
			Permanent bool   `json:"permanent"`
		} `json:"events"`
	}
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("crosscast:pm-hook-secret"))
	for _, tt := range []struct {
		body, auth string
		status     uint32
		want       string
		permanent  bool
	}{
		{`{"RecordType":"Delivery","Recipient":"ana@example.com","Metadata":{"crosscast_id":"cmp_1.1.c1.0"}}`, good, 200, "delivered", false},
		{`{"RecordType":"Bounce","Type":"HardBounce","Email":"ana@example.com","Metadata":{"crosscast_id":"cmp_1.1.c1.0"}}`, good, 200, "bounced", true},
		{`{"RecordType":"Bounce","Type":"SoftBounce","Email":"ana@example.com","Metadata":{"crosscast_id":"cmp_1.1.c1.0"}}`, good, 200, "bounced", false},
		{`{"RecordType":"SpamComplaint","Email":"ana@example.com","Metadata":{"crosscast_id":"cmp_1.1.c1.0"}}`, good, 200, "complained", false},
		{`{"RecordType":"SubscriptionChange","SuppressSending":true,"Recipient":"ana@example.com","Metadata":{"crosscast_id":"cmp_1.1.c1.0"}}`, good, 200, "unsubscribed", false},
		{`{"RecordType":"SubscriptionChange","SuppressSending":false,"Recipient":"ana@example.com"}`, good, 200, "", false},
		{`{"RecordType":"Delivery","Metadata":{"crosscast_id":"cmp_1.1.c1.0"}}`, "Basic " + base64.StdEncoding.EncodeToString([]byte("crosscast:guess")), 401, "", false},
		{`{"RecordType":"Delivery"}`, "", 401, "", false},
	} {
		var got out
		if err := h.Call("receive", map[string]any{"method": "POST", "path": "/hooks/acme/email", "body": tt.body,
			"headers": map[string]string{"Content-Type": "application/json", "Authorization": tt.auth}}, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != tt.status || tt.want == "" && len(got.Events) != 0 ||
			tt.want != "" && (len(got.Events) != 1 || got.Events[0].Type != tt.want || got.Events[0].MessageID != "cmp_1.1.c1.0" || got.Events[0].Permanent != tt.permanent) {
			t.Errorf("%s: %+v", tt.body, got)
		}
	}
}

func TestCustomHeaders(t *testing.T) {
	h := plugintest.New(t, plugintest.Options{Config: `from = "news@acme.example"
headers = { "Feedback-ID" = "spring:acme:crosscast", "X-Mailer" = "Crosscast" }`, Grants: plugintest.Grants{SMTP: true}})
	res := h.Send(
		message("m1", "ana@example.com", map[string]string{"subject": "x", "text": "x", "headers": "X-Campaign: spring\r\n\nX-Mailer: Édition printemps"}),
		message("m2", "ana@example.com", map[string]string{"subject": "x", "text": "x", "headers": "X-Campaign: spring\nno colon here"}),
		message("m3", "ana@example.com", map[string]string{"subject": "x", "text": "x", "headers": "Bcc: spy@example.com"}),
		message("m5", "ana@example.com", map[string]string{"subject": "x", "text": "x", "headers": `X-SMTPAPI: {"to":["spy@example.com"]}`}),
		message("m6", "ana@example.com", map[string]string{"subject": "x", "text": "x", "headers": "X-PM-Metadata-crosscast_id: forged"}),
		message("m4", "ana@example.com", map[string]string{"subject": "x", "text": "x"}),
	)
	if len(res) != 6 || res[0].Status != sdk.Delivered || res[5].Status != sdk.Delivered {
		t.Fatalf("results %+v", res)
	}
	if res[1].Status != sdk.Failed || !strings.Contains(res[1].Error, "headers line 2") {
		t.Errorf("a line without a colon: %+v", res[1])
	}
	if res[2].Status != sdk.Failed || !strings.Contains(res[2].Error, `"Bcc"`) {
		t.Errorf("a reserved header: %+v", res[2])
	}
	if res[3].Status != sdk.Failed || !strings.Contains(res[3].Error, `"X-SMTPAPI"`) || res[4].Status != sdk.Failed {
		t.Errorf("a provider's control header: %+v %+v", res[3], res[4])
	}
	mails := h.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails sent, want 2", len(mails))
	}
	byID := map[string]*mail.Message{} // the relay sends a batch at once: mails arrive in any order
	for _, m := range mails {
		msg, err := mail.ReadMessage(strings.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		byID[msg.Header.Get("X-Crosscast-Message-ID")] = msg
	}
	first, second := byID["m1"], byID["m4"]
	if first == nil || second == nil {
		t.Fatalf("mails %v", byID)
	}
	mailer, _ := new(mime.WordDecoder).DecodeHeader(first.Header.Get("X-Mailer"))
	if first.Header.Get("Feedback-ID") != "spring:acme:crosscast" || first.Header.Get("X-Campaign") != "spring" ||
		mailer != "Édition printemps" || len(first.Header["X-Mailer"]) != 1 {
		t.Fatalf("headers %v", first.Header)
	}
	if second.Header.Get("X-Mailer") != "Crosscast" || second.Header.Get("X-Campaign") != "" {
		t.Fatalf("configured headers only: %v", second.Header)
	}

	_, err := plugintest.Load(t, plugintest.Options{Config: `from = "news@acme.example"
headers = { "Subject" = "mine" }`, Grants: plugintest.Grants{SMTP: true}})
	if err == nil || !strings.Contains(err.Error(), `headers: "Subject"`) {
		t.Fatalf("a reserved configured header: %v", err)
	}
}
