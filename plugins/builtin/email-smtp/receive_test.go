package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crosscast/crosscast/sdk/plugintest"
)

// hookAnswer is the JSON form of receive's output (crosscast plugin call).
type hookAnswer struct {
	Status uint32 `json:"status"`
	Body   string `json:"body"`
	Events []struct {
		Type       string            `json:"type"`
		MessageID  string            `json:"message_id"`
		ProviderID string            `json:"provider_id"`
		Address    string            `json:"address"`
		At         string            `json:"at"`
		Permanent  bool              `json:"permanent"`
		Detail     string            `json:"detail"`
		Fields     map[string]string `json:"fields"`
	} `json:"events"`
}

// post hands a webhook request to the channel's receive.
func post(t *testing.T, h *plugintest.Host, body []byte, headers map[string]string) hookAnswer {
	t.Helper()
	var got hookAnswer
	if err := h.Call("receive", map[string]any{"method": "POST", "path": "/hooks/test/email", "body": string(body),
		"headers": headers}, &got); err != nil {
		t.Fatalf("receive: %v", err)
	}
	return got
}

// event is what a test expects of one channel event.
type event struct {
	typ, id, address string
	permanent        bool
	detail           string // a part of the detail
}

// checkEvents compares got's events with want, in order.
func checkEvents(t *testing.T, got hookAnswer, want []event) {
	t.Helper()
	if len(got.Events) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got.Events), len(want), got)
	}
	for i, w := range want {
		e := got.Events[i]
		if e.Type != w.typ || e.MessageID != w.id || e.Address != w.address || e.Permanent != w.permanent || !strings.Contains(e.Detail, w.detail) {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
	}
}

// ---- Amazon SES through SNS ----

const (
	snsTopic    = "arn:aws:sns:us-east-1:123456789012:crosscast-ses"
	snsOrigin   = "https://sns.us-east-1.amazonaws.com"
	snsCertURL  = snsOrigin + "/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
	snsTime     = "2026-01-01T00:00:00.000Z" // plugintest.DefaultNow
	snsConfirm  = snsOrigin + "/?Action=ConfirmSubscription&TopicArn=" + snsTopic + "&Token=2336412f37fb687f"
	sesTaggedID = "cmp__1-1-c1-0" // cmp_1.1.c1.0 in SES's tag characters
)

// snsSigner is a certificate authority standing for Amazon SNS: an RSA key and its self-signed certificate,
// valid through 2026.
type snsSigner struct {
	key     *rsa.PrivateKey
	certPEM string
}

func newSNSSigner(t *testing.T) *snsSigner {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &snsSigner{key: key, certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// sign signs an SNS message as Amazon documents it: "name\nvalue\n" for the fields of its type that are present,
// in this order, SHA1withRSA (version 1) or SHA256withRSA (2). It returns the request body.
func (s *snsSigner) sign(t *testing.T, m map[string]string, version string) []byte {
	t.Helper()
	fields := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if m["Type"] != "Notification" {
		fields = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var text strings.Builder
	for _, f := range fields {
		if v, ok := m[f]; ok {
			text.WriteString(f + "\n" + v + "\n")
		}
	}
	var sig []byte
	var err error
	if version == "1" {
		sum := sha1.Sum([]byte(text.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, sum[:])
	} else {
		sum := sha256.Sum256([]byte(text.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m["SignatureVersion"], m["Signature"] = version, base64.StdEncoding.EncodeToString(sig)
	if _, ok := m["SigningCertURL"]; !ok {
		m["SigningCertURL"] = snsCertURL
	}
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// notification is an SNS notification of topic carrying an SES event.
func notification(topic, sesEvent string) map[string]string {
	return map[string]string{"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
		"TopicArn": topic, "Message": sesEvent, "Timestamp": snsTime,
		"UnsubscribeURL": snsOrigin + "/?Action=Unsubscribe&SubscriptionArn=" + snsTopic + ":c9135db0"}
}

// sesHost loads the channel with events = "ses", the http grant for SNS in us-east-1, and the signer's
// certificate served at snsCertURL.
func sesHost(t *testing.T, s *snsSigner, extra ...plugintest.Response) *plugintest.Host {
	return plugintest.New(t, plugintest.Options{Config: `from = "news@acme.example"
events = "ses"
sns_topic_arn = "` + snsTopic + `"
ses_configuration_set = "crosscast-events"`,
		Pool:   1,
		Grants: plugintest.Grants{SMTP: true, HTTPHosts: []string{snsOrigin}},
		HTTP:   append([]plugintest.Response{{URL: snsCertURL, Body: s.certPEM, Repeat: true}}, extra...)})
}

var snsHeaders = map[string]string{"Content-Type": "text/plain; charset=UTF-8", "X-Amz-Sns-Message-Type": "Notification"}

func TestReceivesSESEvents(t *testing.T) {
	s := newSNSSigner(t)
	h := sesHost(t, s)
	tags := `"tags":{"ses:configuration-set":["crosscast-events"],"crosscast_id":["` + sesTaggedID + `"]}`
	mail := `"mail":{"timestamp":"2025-12-31T23:59:00.000Z","messageId":"0100018c-ses","destination":["ana@example.com"],` + tags + `}`
	for _, tt := range []struct {
		name, sesEvent string
		subject        *string
		want           []event
	}{
		{"hard bounce (event publishing)", `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
			"bouncedRecipients":[{"emailAddress":"ana@example.com","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],
			"timestamp":"2025-12-31T23:59:30.000Z"},` + mail + `}`, nil,
			[]event{{"bounced", "cmp_1.1.c1.0", "ana@example.com", true, "550 5.1.1 user unknown"}}},
		{"soft bounces, one per recipient (identity notification, original headers)", `{"notificationType":"Bounce","bounce":{"bounceType":"Transient","bounceSubType":"MailboxFull",
			"bouncedRecipients":[{"emailAddress":"ana@example.com","status":"4.2.2"},{"emailAddress":"bob@example.com"}],"timestamp":"2025-12-31T23:59:30.000Z"},
			"mail":{"destination":["ana@example.com","bob@example.com"],"headersTruncated":false,"headers":[{"name":"From","value":"news@acme.example"},
			{"name":"X-Crosscast-Message-ID","value":"cmp_1.1.c2.0"}]}}`, nil,
			[]event{{"bounced", "cmp_1.1.c2.0", "ana@example.com", false, "MailboxFull"}, {"bounced", "cmp_1.1.c2.0", "bob@example.com", false, "Transient"}}},
		{"undetermined bounce: soft", `{"eventType":"Bounce","bounce":{"bounceType":"Undetermined","bounceSubType":"Undetermined",
			"bouncedRecipients":[{"emailAddress":"ana@example.com"}]},` + mail + `}`, nil,
			[]event{{"bounced", "cmp_1.1.c1.0", "ana@example.com", false, "Undetermined"}}},
		{"complaint", `{"eventType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"ana@example.com"}],
			"complaintFeedbackType":"abuse","timestamp":"2025-12-31T23:59:30.000Z"},` + mail + `}`, nil,
			[]event{{"complained", "cmp_1.1.c1.0", "ana@example.com", false, "abuse"}}},
		{"delivery, with a subject", `{"eventType":"Delivery","delivery":{"recipients":["ana@example.com"],"smtpResponse":"250 2.6.0 Message received",
			"timestamp":"2025-12-31T23:59:30.000Z"},` + mail + `}`, ptr("Amazon SES Email Event Notification"),
			[]event{{"delivered", "cmp_1.1.c1.0", "ana@example.com", false, "250 2.6.0"}}},
		{"open", `{"eventType":"Open","open":{"ipAddress":"192.0.2.1","timestamp":"2025-12-31T23:59:40.000Z","userAgent":"Mozilla/5.0"},` + mail + `}`, nil,
			[]event{{"opened", "cmp_1.1.c1.0", "ana@example.com", false, ""}}},
		{"click", `{"eventType":"Click","click":{"ipAddress":"192.0.2.1","link":"https://shop.example.com/sale","timestamp":"2025-12-31T23:59:50.000Z"},` + mail + `}`, nil,
			[]event{{"clicked", "cmp_1.1.c1.0", "ana@example.com", false, "https://shop.example.com/sale"}}},
		{"unsubscription from the whole list", `{"eventType":"Subscription","subscription":{"contactList":"News","timestamp":"2025-12-31T23:59:50.000Z",
			"source":"UnsubscribeHeader","newTopicPreferences":{"unsubscribeAll":true,"topicSubscriptionStatus":[{"topicName":"t","subscriptionStatus":"OptOut"}]}},` + mail + `}`, nil,
			[]event{{"unsubscribed", "cmp_1.1.c1.0", "ana@example.com", false, "UnsubscribeHeader"}}},
		{"delivery delay: deferred, not a bounce", `{"eventType":"DeliveryDelay","deliveryDelay":{"delayType":"MailboxFull",
			"delayedRecipients":[{"emailAddress":"ana@example.com","status":"4.2.2"}]},` + mail + `}`, nil,
			[]event{{"deferred", "cmp_1.1.c1.0", "ana@example.com", false, "MailboxFull"}}},
		{"id from the tags header when SES sends no tags", `{"notificationType":"Delivery","delivery":{"recipients":["ana@example.com"]},
			"mail":{"headers":[{"name":"X-SES-MESSAGE-TAGS","value":"other=x, crosscast_id=` + sesTaggedID + `"}]}}`, nil,
			[]event{{"delivered", "cmp_1.1.c1.0", "ana@example.com", false, ""}}},
		{"send: nothing the engine uses", `{"eventType":"Send","send":{},` + mail + `}`, nil, nil},
		{"SES's test message", `{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"You have successfully subscribed"}`, nil, nil},
	} {
		for _, version := range []string{"1", "2"} {
			t.Run(tt.name+", SignatureVersion "+version, func(t *testing.T) {
				m := notification(snsTopic, tt.sesEvent)
				if tt.subject != nil {
					m["Subject"] = *tt.subject
				}
				got := post(t, h, s.sign(t, m, version), snsHeaders)
				if got.Status != 200 {
					t.Fatalf("status %d: %s", got.Status, got.Body)
				}
				checkEvents(t, got, tt.want)
			})
		}
	}
	// The time of an event is the provider's, and a bounce keeps its enhanced status code.
	got := post(t, h, s.sign(t, notification(snsTopic, `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
		"bouncedRecipients":[{"emailAddress":"ana@example.com","status":"5.1.1"}],"timestamp":"2025-12-31T23:59:30.000Z"},`+mail+`}`), "2"), snsHeaders)
	if len(got.Events) != 1 || got.Events[0].Fields["status"] != "5.1.1" || got.Events[0].Fields["bounce_type"] != "Permanent" {
		t.Fatalf("fields: %+v", got)
	}
	if at, err := time.Parse(time.RFC3339, got.Events[0].At); err != nil || !at.Equal(time.Date(2025, 12, 31, 23, 59, 30, 0, time.UTC)) {
		t.Errorf("at %q (%v)", got.Events[0].At, err)
	}
	// The certificate was fetched once for all these messages (one instance, Pool 1): it is cached.
	if n := countRequests(h, "GET", snsCertURL); n != 1 {
		t.Errorf("the certificate was fetched %d times, want 1", n)
	}
}

func ptr(s string) *string { return &s }

// countRequests counts the requests the plugin made to url with method.
func countRequests(h *plugintest.Host, method, url string) int {
	n := 0
	for _, r := range h.Requests() {
		if r.Method == method && r.URL == url {
			n++
		}
	}
	return n
}

func TestRefusesForgedSNSMessages(t *testing.T) {
	s := newSNSSigner(t)
	h := sesHost(t, s)
	bounce := `{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"ana@example.com"}]},` +
		`"mail":{"destination":["ana@example.com"],"tags":{"crosscast_id":["` + sesTaggedID + `"]}}}`
	impostor := newSNSSigner(t)
	tampered := func() []byte {
		body := s.sign(t, notification(snsTopic, bounce), "2")
		return []byte(strings.Replace(string(body), "ana@example.com", "bob@example.com", 2))
	}
	withCert := func(certURL string) []byte {
		m := notification(snsTopic, bounce)
		m["SigningCertURL"] = certURL
		return s.sign(t, m, "2")
	}
	withField := func(name, value string) []byte {
		m := notification(snsTopic, bounce)
		body := s.sign(t, m, "2")
		m[name] = value
		if b, err := json.Marshal(m); err == nil {
			return b
		}
		return body
	}
	for _, tt := range []struct {
		name   string
		body   []byte
		status uint32
		// fetches says whether the request may fetch the certificate (false: refused before any request).
		fetches bool
		says    string
	}{
		{"signed with another key", impostor.sign(t, notification(snsTopic, bounce), "2"), 403, true, "bad signature"},
		{"signed with another key, SHA1", impostor.sign(t, notification(snsTopic, bounce), "1"), 403, true, "bad signature"},
		{"altered after signing", tampered(), 403, true, "bad signature"},
		{"signature version changed after signing", withField("SignatureVersion", "1"), 403, true, "bad signature"},
		{"another topic, validly signed", s.sign(t, notification("arn:aws:sns:us-east-1:999999999999:theirs", bounce), "2"), 403, false, "sns_topic_arn"},
		{"unknown signature version", withField("SignatureVersion", "3"), 403, false, "SignatureVersion"},
		{"signature not base64", withField("Signature", "%%%"), 403, false, "base64"},
		{"certificate on another host", withCert("https://evil.example/SimpleNotificationService-1.pem"), 403, false, "refused"},
		{"certificate on a look-alike host", withCert("https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem"), 403, false, "refused"},
		{"certificate on another AWS service", withCert("https://s3.us-east-1.amazonaws.com/SimpleNotificationService-1.pem"), 403, false, "refused"},
		{"certificate over http", withCert("http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem"), 403, false, "refused"},
		{"certificate with credentials", withCert("https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem"), 403, false, "refused"},
		{"certificate on another port", withCert("https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem"), 403, false, "refused"},
		{"certificate that is not a .pem", withCert(snsOrigin + "/SimpleNotificationService-1.txt"), 403, false, "refused"},
		{"certificate URL with a query", withCert(snsCertURL + "?x=1"), 403, false, "refused"},
		{"not JSON", []byte(`{"Type":"Notification",`), 400, false, "not an Amazon SNS message"},
		{"not an object", []byte(`[1,2,3]`), 400, false, "not an Amazon SNS message"},
		{"a field of the wrong type", []byte(`{"Type":"Notification","Message":{"a":1}}`), 400, false, "not an Amazon SNS message"},
		{"raw message delivery (SES JSON without SNS's envelope)", []byte(bounce), 400, false, "raw message delivery"},
		{"unknown message type", withField("Type", "Surprise"), 400, false, "not one the channel reads"},
		{"bad timestamp", withField("Timestamp", "yesterday"), 400, false, "RFC 3339"},
		{"certificate not valid at the message's time", func() []byte {
			m := notification(snsTopic, bounce)
			m["Timestamp"] = "2030-01-01T00:00:00.000Z"
			return s.sign(t, m, "2")
		}(), 403, true, "not valid at the message's time"},
		{"signed, but the Message is not an SES event", s.sign(t, notification(snsTopic, `{"eventType":"Bounce","bounce":"nope"}`), "2"), 400, true, "not an SES event"},
		{"signed, but the Message is not JSON", s.sign(t, notification(snsTopic, "hello"), "1"), 400, true, "not an SES event"},
		{"huge", []byte(`{"Type":"Notification","Message":"` + strings.Repeat("x", 2<<20) + `"}`), 413, false, "at most"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.Requests())
			got := post(t, h, tt.body, snsHeaders)
			if got.Status != tt.status || len(got.Events) != 0 || !strings.Contains(got.Body, tt.says) {
				t.Errorf("status %d (%q), %d events; want %d saying %q and no events", got.Status, got.Body, len(got.Events), tt.status, tt.says)
			}
			after := h.Requests()
			if !tt.fetches && len(after) != before {
				t.Errorf("requests made: %+v", after[before:])
			}
			for _, r := range after[before:] {
				if r.URL != snsCertURL {
					t.Errorf("a request to %s", r.URL)
				}
			}
		})
	}
	// Nothing was ever asked of another host: the grant would have refused it, but the channel did not even try.
	for _, r := range h.Requests() {
		if !strings.HasPrefix(r.URL, snsOrigin+"/") {
			t.Errorf("a request to %s", r.URL)
		}
	}
}

func TestSESWithoutTheHTTPGrant(t *testing.T) {
	s := newSNSSigner(t)
	h := plugintest.New(t, plugintest.Options{Config: `from = "news@acme.example"
events = "ses"
sns_topic_arn = "` + snsTopic + `"`, Grants: plugintest.Grants{SMTP: true}})
	got := post(t, h, s.sign(t, notification(snsTopic, `{"eventType":"Delivery","delivery":{"recipients":["ana@example.com"]}}`), "2"), snsHeaders)
	if got.Status != 503 || len(got.Events) != 0 || !strings.Contains(got.Body, `http_hosts = ["https://sns.us-east-1.amazonaws.com"]`) {
		t.Fatalf("status %d, body %q, %d events: want 503 naming the grant", got.Status, got.Body, len(got.Events))
	}
}

func TestConfirmsTheSNSSubscription(t *testing.T) {
	s := newSNSSigner(t)
	h := sesHost(t, s, plugintest.Response{URL: snsConfirm, Body: `<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"/>`})
	confirmation := func(topic, subscribeURL string) map[string]string {
		return map[string]string{"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
			"Token": "2336412f37fb687f", "TopicArn": topic, "SubscribeURL": subscribeURL, "Timestamp": snsTime,
			"Message": "You have chosen to subscribe to the topic " + topic + ".\nTo confirm the subscription, visit the SubscribeURL included in this message."}
	}
	headers := map[string]string{"Content-Type": "text/plain; charset=UTF-8", "X-Amz-Sns-Message-Type": "SubscriptionConfirmation"}

	// Refused before any confirmation: forged, another topic, a SubscribeURL elsewhere.
	forged := confirmation(snsTopic, snsConfirm)
	body := s.sign(t, forged, "1")
	forged["Token"] = "another"
	body2, _ := json.Marshal(forged)
	for _, tt := range []struct {
		name   string
		body   []byte
		status uint32
	}{
		{"token altered after signing", body2, 403},
		{"another topic", s.sign(t, confirmation("arn:aws:sns:us-east-1:999999999999:theirs", snsConfirm), "2"), 403},
		{"SubscribeURL on another host, validly signed", s.sign(t, confirmation(snsTopic, "https://evil.example/?Action=ConfirmSubscription"), "2"), 403},
	} {
		got := post(t, h, tt.body, headers)
		if got.Status != tt.status {
			t.Errorf("%s: status %d (%s), want %d", tt.name, got.Status, got.Body, tt.status)
		}
	}
	if n := countRequests(h, "GET", snsConfirm); n != 0 {
		t.Fatalf("confirmed %d times before a valid confirmation", n)
	}
	for _, r := range h.Requests() {
		if r.URL != snsCertURL {
			t.Errorf("a request to %s", r.URL)
		}
	}

	// Signed by SNS for the configured topic: confirmed with a GET of its SubscribeURL.
	got := post(t, h, body, headers)
	if got.Status != 200 || len(got.Events) != 0 {
		t.Fatalf("status %d (%s), %d events", got.Status, got.Body, len(got.Events))
	}
	if n := countRequests(h, "GET", snsConfirm); n != 1 {
		t.Fatalf("the SubscribeURL was fetched %d times, want once: %+v", n, h.Requests())
	}

	// An unsubscription confirmation is acknowledged, without re-subscribing.
	unsub := confirmation(snsTopic, snsConfirm)
	unsub["Type"] = "UnsubscribeConfirmation"
	if got := post(t, h, s.sign(t, unsub, "2"), headers); got.Status != 200 || countRequests(h, "GET", snsConfirm) != 1 {
		t.Fatalf("unsubscribe confirmation: status %d, %d confirmations", got.Status, countRequests(h, "GET", snsConfirm))
	}
}

func TestSESTagValues(t *testing.T) {
	for _, id := range []string{"cmp_1.1.c1.0", "cmp_01jfz3q9x2v8k7m6n5p4r3s2t1.12.c_01jfz3q9x2v8k7m6n5p4r3s2t1.3", "a-b/c d~é", "__", "-.", ""} {
		v := encodeSESTag(id)
		if !tagSafe(v) {
			t.Errorf("%q -> %q: not in SES's tag characters", id, v)
		}
		if back, ok := decodeSESTag(v); !ok || back != id {
			t.Errorf("%q -> %q -> %q, %v", id, v, back, ok)
		}
	}
	if v := encodeSESTag("cmp_1.1.c1.0"); v != sesTaggedID {
		t.Errorf("cmp_1.1.c1.0 -> %q, want %q", v, sesTaggedID)
	}
	for _, v := range []string{"a_", "a_4", "a_4g", "a.b", "a b"} {
		if id, ok := decodeSESTag(v); ok {
			t.Errorf("%q decoded to %q: not a value the channel writes", v, id)
		}
	}
}

// ---- SendGrid ----

// sendgridKey is a P-256 key standing for SendGrid's, and its public half as SendGrid shows it (base64 DER).
func sendgridKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, base64.StdEncoding.EncodeToString(der)
}

// sendgridSign returns the signed event webhook's headers for body: ECDSA over SHA-256 of timestamp then body.
func sendgridSign(t *testing.T, key *ecdsa.PrivateKey, at time.Time, body []byte) map[string]string {
	t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	sum := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": base64.StdEncoding.EncodeToString(sig),
		"X-Twilio-Email-Event-Webhook-Timestamp": ts}
}

func sendgridHost(t *testing.T, publicKey string) *plugintest.Host {
	return plugintest.New(t, plugintest.Options{Config: `from = "news@acme.example"
events = "sendgrid"
sendgrid_verification_key = "` + publicKey + `"`, Grants: plugintest.Grants{SMTP: true}})
}

const sendgridBatch = `[
{"email":"ana@example.com","timestamp":1767225500,"event":"processed","sg_message_id":"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0","crosscast_id":"cmp_1.1.c1.0"},
{"email":"ana@example.com","timestamp":1767225510,"event":"deferred","response":"400 try again later","attempt":"5","crosscast_id":"cmp_1.1.c1.0"},
{"email":"ana@example.com","timestamp":1767225520,"event":"delivered","response":"250 OK","crosscast_id":"cmp_1.1.c1.0"},
{"email":"ana@example.com","timestamp":1767225530,"event":"open","sg_machine_open":false,"useragent":"Mozilla/4.0","ip":"255.255.255.255","crosscast_id":"cmp_1.1.c1.0"},
{"email":"ana@example.com","timestamp":1767225540,"event":"click","url":"https://shop.example.com/sale","url_offset":{"index":0,"type":"html"},"crosscast_id":"cmp_1.1.c1.0"},
{"email":"bob@example.com","timestamp":1767225550,"event":"bounce","type":"bounce","status":"5.1.1","reason":"550 5.1.1 no such user","bounce_classification":"Invalid Address","crosscast_id":"cmp_1.1.c2.0"},
{"email":"carl@example.com","timestamp":1767225560,"event":"bounce","type":"blocked","status":"4.0.0","reason":"451 try later","crosscast_id":"cmp_1.1.c3.0"},
{"email":"dan@example.com","timestamp":1767225570,"event":"dropped","reason":"Bounced Address","status":"5.0.0","crosscast_id":"cmp_1.1.c4.0"},
{"email":"eve@example.com","timestamp":1767225575,"event":"dropped","reason":"Recipient List over Package Quota","crosscast_id":"cmp_1.1.c5.0"},
{"email":"fay@example.com","timestamp":1767225580,"event":"spamreport","crosscast_id":"cmp_1.1.c6.0"},
{"email":"gus@example.com","timestamp":1767225590,"event":"unsubscribe","crosscast_id":"cmp_1.1.c7.0"},
{"email":"hal@example.com","timestamp":1767225595,"event":"group_unsubscribe","asm_group_id":10,"crosscast_id":"cmp_1.1.c8.0"},
{"email":"ivy@example.com","timestamp":"not a number","event":"delivered","crosscast_id":"cmp_1.1.c9.0"},
{"email":"jo@example.com","timestamp":1767225599,"event":"group_resubscribe","crosscast_id":"cmp_1.1.c10.0"}
]`

func TestReceivesSendGridEvents(t *testing.T) {
	key, public := sendgridKey(t)
	h := sendgridHost(t, public)
	now := plugintest.DefaultNow
	got := post(t, h, []byte(sendgridBatch), sendgridSign(t, key, now.Add(-time.Minute), []byte(sendgridBatch)))
	if got.Status != 200 {
		t.Fatalf("status %d: %s", got.Status, got.Body)
	}
	checkEvents(t, got, []event{
		{"deferred", "cmp_1.1.c1.0", "ana@example.com", false, "400 try again later"},
		{"delivered", "cmp_1.1.c1.0", "ana@example.com", false, "250 OK"},
		{"opened", "cmp_1.1.c1.0", "ana@example.com", false, ""},
		{"clicked", "cmp_1.1.c1.0", "ana@example.com", false, "https://shop.example.com/sale"},
		{"bounced", "cmp_1.1.c2.0", "bob@example.com", true, "550 5.1.1 no such user"},
		{"bounced", "cmp_1.1.c3.0", "carl@example.com", false, "451 try later"},
		{"bounced", "cmp_1.1.c4.0", "dan@example.com", true, "Bounced Address"},
		{"complained", "cmp_1.1.c6.0", "fay@example.com", false, ""},
		{"unsubscribed", "cmp_1.1.c7.0", "gus@example.com", false, ""},
		{"unsubscribed", "cmp_1.1.c8.0", "hal@example.com", false, ""},
	})
	if at, err := time.Parse(time.RFC3339, got.Events[1].At); err != nil || at.Unix() != 1767225520 {
		t.Errorf("at %q (%v)", got.Events[1].At, err)
	}

	other, _ := sendgridKey(t)
	one := []byte(`[{"email":"ana@example.com","timestamp":1767225520,"event":"bounce","type":"bounce","crosscast_id":"cmp_1.1.c1.0"}]`)
	altered := sendgridSign(t, key, now, one)
	for _, tt := range []struct {
		name    string
		body    []byte
		headers map[string]string
		status  uint32
		says    string
	}{
		{"signed with another key", one, sendgridSign(t, other, now, one), 403, "bad signature"},
		{"altered after signing", []byte(strings.Replace(string(one), `"type":"bounce"`, `"type":"blocked"`, 1)), altered, 403, "bad signature"},
		{"another timestamp than signed", one, map[string]string{"X-Twilio-Email-Event-Webhook-Signature": altered["X-Twilio-Email-Event-Webhook-Signature"],
			"X-Twilio-Email-Event-Webhook-Timestamp": strconv.FormatInt(now.Unix()-1, 10)}, 403, "bad signature"},
		{"signed 11 minutes ago: a replay", one, sendgridSign(t, key, now.Add(-11*time.Minute), one), 403, "replay"},
		{"signed 11 minutes ahead", one, sendgridSign(t, key, now.Add(11*time.Minute), one), 403, "replay"},
		{"unsigned", one, map[string]string{"Content-Type": "application/json"}, 403, "Signed Event Webhook"},
		{"timestamp not a number", one, map[string]string{"X-Twilio-Email-Event-Webhook-Signature": altered["X-Twilio-Email-Event-Webhook-Signature"],
			"X-Twilio-Email-Event-Webhook-Timestamp": "soon"}, 403, "Unix time"},
		{"signature not base64", one, map[string]string{"X-Twilio-Email-Event-Webhook-Signature": "%%%",
			"X-Twilio-Email-Event-Webhook-Timestamp": altered["X-Twilio-Email-Event-Webhook-Timestamp"]}, 403, "base64"},
		{"signed, but not JSON", []byte(`[{"event":`), sendgridSign(t, key, now, []byte(`[{"event":`)), 400, "JSON array"},
		{"signed, but an object", []byte(`{"event":"bounce"}`), sendgridSign(t, key, now, []byte(`{"event":"bounce"}`)), 400, "JSON array"},
		{"huge", []byte("[" + strings.Repeat(" ", 5<<20) + "]"), nil, 413, "at most"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := post(t, h, tt.body, tt.headers)
			if got.Status != tt.status || len(got.Events) != 0 || !strings.Contains(got.Body, tt.says) {
				t.Errorf("status %d (%q), %d events; want %d saying %q and no events", got.Status, got.Body, len(got.Events), tt.status, tt.says)
			}
		})
	}
}

// ---- config and tags ----

func TestEventsConfigIsChecked(t *testing.T) {
	_, public := sendgridKey(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pemKey := "-----BEGIN PUBLIC KEY-----\n" + public + "\n-----END PUBLIC KEY-----\n"
	// configureEvents directly (the same code the instance runs), so that the table stays fast; the host's load
	// of a few of them is checked below.
	for _, tt := range []struct {
		name   string
		config map[string]string
		says   string // "" when the config is fine
	}{
		{"ses without a topic", map[string]string{"events": "ses"}, "sns_topic_arn: required"},
		{"an SQS queue", map[string]string{"events": "ses", "sns_topic_arn": "arn:aws:sqs:us-east-1:123456789012:queue"}, "sns_topic_arn:"},
		{"a short account", map[string]string{"events": "ses", "sns_topic_arn": "arn:aws:sns:us-east-1:1234:topic"}, "sns_topic_arn:"},
		{"no topic name", map[string]string{"events": "ses", "sns_topic_arn": "arn:aws:sns:us-east-1:123456789012:"}, "sns_topic_arn:"},
		{"a China region topic", map[string]string{"events": "ses", "sns_topic_arn": "arn:aws-cn:sns:cn-north-1:123456789012:crosscast"}, ""},
		{"a bad configuration set", map[string]string{"events": "ses", "sns_topic_arn": snsTopic, "ses_configuration_set": "bad name!"}, "ses_configuration_set:"},
		{"sendgrid without a key", map[string]string{"events": "sendgrid"}, "sendgrid_verification_key: required"},
		{"a key that is not base64", map[string]string{"events": "sendgrid", "sendgrid_verification_key": "not base64!"}, "sendgrid_verification_key: not base64"},
		{"base64 that is not a key", map[string]string{"events": "sendgrid", "sendgrid_verification_key": base64.StdEncoding.EncodeToString([]byte("not a key"))}, "sendgrid_verification_key: not a public key"},
		{"an RSA key", map[string]string{"events": "sendgrid", "sendgrid_verification_key": base64.StdEncoding.EncodeToString(rsaDER)}, "not an ECDSA P-256 key"},
		{"a key pasted as PEM", map[string]string{"events": "sendgrid", "sendgrid_verification_key": pemKey}, ""},
		{"a key pasted over lines", map[string]string{"events": "sendgrid", "sendgrid_verification_key": public[:40] + "\n  " + public[40:]}, ""},
		{"another provider's field", map[string]string{"events": "mailgun", "sns_topic_arn": snsTopic}, `sns_topic_arn: only read with events = "ses"`},
		{"a field without events", map[string]string{"sendgrid_verification_key": public}, `sendgrid_verification_key: only read with events = "sendgrid"`},
	} {
		err := new(channel).configureEvents(func(name string) string { return tt.config[name] })
		if tt.says == "" && err != nil || tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.says)
		}
	}
	for _, tt := range []struct{ config, says string }{
		{`events = "ses"
sns_topic_arn = "arn:aws:sqs:us-east-1:123456789012:queue"`, "sns_topic_arn:"},
		{`events = "sendgrid"
sendgrid_verification_key = "not base64!"`, "sendgrid_verification_key:"},
		{`events = "mailgun"
sns_topic_arn = "` + snsTopic + `"`, "sns_topic_arn:"},
	} {
		_, err := plugintest.Load(t, plugintest.Options{Config: "from = \"news@acme.example\"\n" + tt.config, Grants: plugintest.Grants{SMTP: true}})
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("loading %s: %v, want an error saying %q", tt.config, err, tt.says)
		}
	}
}

func TestTagsNameTheMessage(t *testing.T) {
	_, public := sendgridKey(t)
	s := newSNSSigner(t)
	for _, tt := range []struct {
		name string
		h    *plugintest.Host
		want map[string]string
	}{
		{"ses", sesHost(t, s), map[string]string{"X-Ses-Message-Tags": "crosscast_id=" + sesTaggedID, "X-Ses-Configuration-Set": "crosscast-events"}},
		{"sendgrid", sendgridHost(t, public), map[string]string{"X-Smtpapi": `{"unique_args":{"crosscast_id":"cmp_1.1.c1.0"}}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.h.Send(message("cmp_1.1.c1.0", "ana@example.com", map[string]string{"subject": "x", "text": "x"}))
			if res[0].Error != "" {
				t.Fatalf("send: %+v", res)
			}
			msg, err := mail.ReadMessage(strings.NewReader(tt.h.Mails()[0].Data))
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				if got := msg.Header.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			if v := msg.Header.Get("X-Smtpapi"); v != "" {
				var api struct {
					UniqueArgs map[string]string `json:"unique_args"`
				}
				if err := json.Unmarshal([]byte(v), &api); err != nil || api.UniqueArgs["crosscast_id"] != "cmp_1.1.c1.0" {
					t.Errorf("X-SMTPAPI %q: %+v, %v", v, api, err)
				}
			}
		})
	}
}

func TestJSONTextIsASCII(t *testing.T) {
	for in, want := range map[string]string{
		"cmp_1.1.c1.0": `"cmp_1.1.c1.0"`,
		"a\"b\\c":      `"a\"b\\c"`,
		"line\r\nBcc:": `"line\r\nBcc:"`,
		"é😀":           `"\u00e9\ud83d\ude00"`,
	} {
		got := jsonText(in)
		if got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != in {
			t.Errorf("%s reads back as %q, %v", got, back, err)
		}
	}
}
