package main

// Amazon SES events, published to an Amazon SNS topic that an HTTPS subscription delivers to the channel's hook:
//
//   - https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html (signatures);
//   - https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html (confirmations);
//   - https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html (event publishing,
//     "eventType") and https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html (identity
//     notifications, "notificationType").

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/wire"
)

const (
	// sesMaxBody bounds an SNS request: SNS messages are at most 256 KiB, and JSON escaping can double that.
	sesMaxBody = 1 << 20
	// snsMaxCertificates bounds the certificate cache of an instance: SNS signs with one certificate per region,
	// changed every few months.
	snsMaxCertificates = 8
	// snsMaxCertificateBytes bounds a fetched certificate (a PEM certificate is about 2 KiB).
	snsMaxCertificateBytes = 64 << 10
	// sesTagName is the SES message tag that carries the Crosscast message id.
	sesTagName = "crosscast_id"
	// sesMaxTagValue is the longest value SES accepts in a message tag.
	sesMaxTagValue = 256
)

// sesEvents reads SES events from SNS for one instance: the topic they must come from, and the SNS signing
// certificates already fetched, by URL.
type sesEvents struct {
	topicARN         string
	configurationSet string
	certificates     map[string]*x509.Certificate
}

// newSESEvents reads the config fields of events = "ses".
func newSESEvents(str func(string) string) (*eventsProvider, error) {
	arn := str("sns_topic_arn")
	if arn == "" {
		return nil, fmt.Errorf(`sns_topic_arn: required with events = "ses": the ARN of the SNS topic SES publishes its events to (arn:aws:sns:<region>:<account>:<topic>)`)
	}
	if !validTopicARN(arn) {
		return nil, fmt.Errorf("sns_topic_arn: %q is not an SNS topic ARN (arn:aws:sns:<region>:<12-digit account>:<topic name>)", arn)
	}
	set := str("ses_configuration_set")
	if set != "" && (len(set) > 64 || !tagSafe(set)) {
		return nil, fmt.Errorf("ses_configuration_set: %q is not a configuration set name (at most 64 ASCII letters, digits, '_' and '-')", set)
	}
	s := &sesEvents{topicARN: arn, configurationSet: set, certificates: map[string]*x509.Certificate{}}
	return &eventsProvider{tag: s.tag, receive: s.receive}, nil
}

// validTopicARN reports whether arn has the form arn:<partition>:sns:<region>:<account>:<topic>.
func validTopicARN(arn string) bool {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "sns" ||
		!regionName(parts[3]) || len(parts[4]) != 12 || len(parts[5]) == 0 || len(parts[5]) > 256 {
		return false
	}
	for _, c := range parts[4] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return tagSafe(strings.TrimSuffix(parts[5], ".fifo")) && tagSafe(strings.TrimPrefix(parts[1], "aws"))
}

// regionName reports whether s can be an AWS region ("us-east-1"): lower-case letters, digits and dashes.
func regionName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// tagSafe reports whether s has only the characters SES allows in tag names and values: ASCII letters, digits,
// '_' and '-'.
func tagSafe(s string) bool {
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// tag names the configuration set, when configured, and tags the message with its id: SES returns message tags
// in the events a configuration set publishes (mail.tags).
func (s *sesEvents) tag(header func(name, value string), id string) {
	if s.configurationSet != "" {
		header("X-SES-CONFIGURATION-SET", s.configurationSet)
	}
	if v := encodeSESTag(id); len(v) <= sesMaxTagValue {
		header("X-SES-MESSAGE-TAGS", sesTagName+"="+v)
	} // else: too long for a tag; the X-Crosscast-Message-ID header, in mail.headers, still names it
}

// encodeSESTag writes id with the characters SES allows in a tag value, reversibly and readably: letters and
// digits stay, '.' becomes '-', '_' becomes "__", and any other byte '_' and two upper-case hex digits
// ("cmp_1.1.c1.0" -> "cmp__1-1-c1-0").
func encodeSESTag(id string) string {
	var b strings.Builder
	b.Grow(len(id) + 8)
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '.':
			b.WriteByte('-')
		case c == '_':
			b.WriteString("__")
		default:
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	return b.String()
}

// decodeSESTag reads back a value encodeSESTag wrote; false when v is not one.
func decodeSESTag(v string) (string, bool) {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '-':
			b.WriteByte('.')
		case c == '_' && i+1 < len(v) && v[i+1] == '_':
			b.WriteByte('_')
			i++
		case c == '_' && i+2 < len(v) && hexDigit(v[i+1]) && hexDigit(v[i+2]):
			b.WriteByte(unhex(v[i+1])<<4 | unhex(v[i+2]))
			i += 2
		default:
			return "", false
		}
	}
	return b.String(), true
}

func hexDigit(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}

// snsMessage is an Amazon SNS message as an HTTPS subscription receives it.
type snsMessage struct {
	Type      string  `json:"Type"` // Notification, SubscriptionConfirmation, UnsubscribeConfirmation
	MessageID string  `json:"MessageId"`
	Token     string  `json:"Token"`
	TopicArn  string  `json:"TopicArn"`
	Subject   *string `json:"Subject"` // signed only when present
	Message   string  `json:"Message"`
	Timestamp string  `json:"Timestamp"`
	// SignatureVersion 1 is SHA1withRSA, 2 SHA256withRSA, of the canonical string (stringToSign).
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	SubscribeURL     string `json:"SubscribeURL"`
}

// stringToSign is the text SNS signs: name and value lines, in this order, of the fields of the message's type.
func (m *snsMessage) stringToSign() string {
	var b strings.Builder
	field := func(name, value string) {
		b.WriteString(name)
		b.WriteByte('\n')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	field("Message", m.Message)
	field("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != nil {
			field("Subject", *m.Subject)
		}
	} else {
		field("SubscribeURL", m.SubscribeURL)
	}
	field("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		field("Token", m.Token)
	}
	field("TopicArn", m.TopicArn)
	field("Type", m.Type)
	return b.String()
}

// receive reads an SNS message: the topic and the signature are checked first; a subscription confirmation is
// then confirmed, and a notification's SES event read.
func (s *sesEvents) receive(_ sdk.Call, req sdk.HookRequest, _ string) sdk.HookReply {
	if len(req.Body) > sesMaxBody {
		return reply(413, "an SNS message is at most %d bytes", sesMaxBody)
	}
	var m snsMessage
	if err := json.Unmarshal(req.Body, &m); err != nil {
		return reply(400, "not an Amazon SNS message: %v", err)
	}
	switch m.Type {
	case "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation":
	case "":
		return reply(400, "not an Amazon SNS message (no Type): if the SNS subscription has raw message delivery on, turn it off, the channel needs SNS's signature")
	default:
		return reply(400, "SNS message type %.64q is not one the channel reads", m.Type)
	}
	if m.TopicArn != s.topicARN {
		return reply(403, "topic %.300q is not the configured sns_topic_arn", m.TopicArn)
	}
	if refused := s.verify(&m); refused != nil {
		return *refused
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		return s.confirm(&m)
	case "UnsubscribeConfirmation":
		sdk.Log(sdk.LevelWarn, "the SNS subscription to %s was removed: SES events stop until it is subscribed again", m.TopicArn)
		return reply(200, "unsubscription noted")
	}
	return readSESEvent(m.Message)
}

// verify checks m's signature with the SNS certificate it names, refusing a certificate URL that is not SNS's
// before fetching anything. It returns the reply when m is refused, nil when it verifies.
func (s *sesEvents) verify(m *snsMessage) *sdk.HookReply {
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		r := reply(403, "SNS SignatureVersion %.16q is not 1 or 2", m.SignatureVersion)
		return &r
	}
	certURL, err := snsURL(m.SigningCertURL, true)
	if err != nil {
		r := reply(403, "SigningCertURL: %v", err)
		return &r
	}
	signature, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(signature) == 0 {
		r := reply(403, "bad signature: not base64")
		return &r
	}
	at, err := time.Parse(time.RFC3339, m.Timestamp)
	if err != nil {
		r := reply(400, "SNS Timestamp %.64q is not an RFC 3339 time", m.Timestamp)
		return &r
	}
	cert, refused := s.certificate(certURL)
	if refused != nil {
		return refused
	}
	if at.Before(cert.NotBefore) || at.After(cert.NotAfter) {
		r := reply(403, "the SNS signing certificate is not valid at the message's time %s (valid %s to %s)",
			m.Timestamp, cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		return &r
	}
	var digest []byte
	if hash == crypto.SHA1 {
		sum := sha1.Sum([]byte(m.stringToSign()))
		digest = sum[:]
	} else {
		sum := sha256.Sum256([]byte(m.stringToSign()))
		digest = sum[:]
	}
	if err := rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), hash, digest, signature); err != nil {
		r := reply(403, "bad signature")
		return &r
	}
	return nil
}

// snsURL parses raw and checks it is an Amazon SNS endpoint: https, host sns.<region>.amazonaws.com (or
// amazonaws.com.cn), no credentials nor port; a certificate's path ends with .pem and has no query.
func snsURL(raw string, certificate bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%.300q is not a URL", raw)
	}
	if u.Scheme != "https" || u.Opaque != "" || u.User != nil || u.Port() != "" || !snsHost(u.Host) {
		return "", fmt.Errorf("%.300q is not an https://sns.<region>.amazonaws.com URL: refused", raw)
	}
	if certificate && (!strings.HasSuffix(u.Path, ".pem") || u.RawQuery != "" || u.Fragment != "") {
		return "", fmt.Errorf("%.300q is not a .pem certificate URL: refused", raw)
	}
	return u.String(), nil
}

// snsHost reports whether host is sns.<region>.amazonaws.com or sns.<region>.amazonaws.com.cn.
func snsHost(host string) bool {
	rest, ok := strings.CutSuffix(host, ".amazonaws.com")
	if !ok {
		if rest, ok = strings.CutSuffix(host, ".amazonaws.com.cn"); !ok {
			return false
		}
	}
	region, ok := strings.CutPrefix(rest, "sns.")
	return ok && regionName(region)
}

// grantHint says which grant lets the channel reach the SNS host of rawURL.
func grantHint(rawURL string) string {
	host := "sns.<region>.amazonaws.com"
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Host
	}
	return fmt.Sprintf(`grant it in the plugin block: grants { http_hosts = ["https://%s"] }`, host)
}

// certificate returns the SNS certificate at certURL, from the cache or fetched with the http capability (the
// host's TLS check of the amazonaws.com host is what makes the certificate Amazon's). It returns the reply when
// it cannot.
func (s *sesEvents) certificate(certURL string) (*x509.Certificate, *sdk.HookReply) {
	if c := s.certificates[certURL]; c != nil {
		return c, nil
	}
	resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "GET", URL: certURL})
	if err != nil {
		sdk.Log(sdk.LevelWarn, "fetching the SNS signing certificate %s: %v; %s", certURL, err, grantHint(certURL))
		r := reply(503, "fetching the SNS signing certificate %s: %v; %s", certURL, err, grantHint(certURL))
		return nil, &r
	}
	fail := func(format string, args ...any) (*x509.Certificate, *sdk.HookReply) {
		r := reply(502, "the SNS signing certificate %s: %s", certURL, fmt.Sprintf(format, args...))
		return nil, &r
	}
	if resp.Status != 200 {
		return fail("answered HTTP %d", resp.Status)
	}
	if len(resp.Body) > snsMaxCertificateBytes {
		return fail("over %d bytes", snsMaxCertificateBytes)
	}
	block, _ := pem.Decode(resp.Body)
	if block == nil || block.Type != "CERTIFICATE" {
		return fail("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fail("%v", err)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return fail("not an RSA key")
	}
	if len(s.certificates) >= snsMaxCertificates {
		for u := range s.certificates { // any one: they are few, and fetched again when needed
			delete(s.certificates, u)
			break
		}
	}
	s.certificates[certURL] = cert
	return cert, nil
}

// confirm confirms a subscription to the configured topic (its signature verified): a GET of its SubscribeURL,
// which must be an SNS URL too.
func (s *sesEvents) confirm(m *snsMessage) sdk.HookReply {
	u, err := snsURL(m.SubscribeURL, false)
	if err != nil {
		return reply(403, "SubscribeURL: %v", err)
	}
	resp, err := sdk.HTTP(sdk.HTTPRequest{Method: "GET", URL: u})
	if err != nil {
		sdk.Log(sdk.LevelWarn, "confirming the SNS subscription to %s: %v; %s", m.TopicArn, err, grantHint(u))
		return reply(503, "confirming the SNS subscription: %v; %s", err, grantHint(u))
	}
	if resp.Status != 200 {
		sdk.Log(sdk.LevelWarn, "confirming the SNS subscription to %s: SNS answered HTTP %d", m.TopicArn, resp.Status)
		return reply(502, "confirming the SNS subscription: SNS answered HTTP %d", resp.Status)
	}
	sdk.Log(sdk.LevelInfo, "confirmed the SNS subscription to %s", m.TopicArn)
	return reply(200, "subscription confirmed")
}

// sesEvent is the part of an SES event (event publishing: eventType; identity notifications: notificationType)
// the channel reads.
type sesEvent struct {
	EventType        string  `json:"eventType"`
	NotificationType string  `json:"notificationType"`
	Mail             sesMail `json:"mail"`
	Bounce           struct {
		BounceType        string `json:"bounceType"` // Permanent, Transient, Undetermined
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
		Timestamp string `json:"timestamp"`
	} `json:"bounce"`
	Complaint struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		FeedbackType string `json:"complaintFeedbackType"`
		Timestamp    string `json:"timestamp"`
	} `json:"complaint"`
	Delivery struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		Timestamp    string   `json:"timestamp"`
	} `json:"delivery"`
	DeliveryDelay struct {
		DelayType         string `json:"delayType"`
		DelayedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"delayedRecipients"`
		Timestamp string `json:"timestamp"`
	} `json:"deliveryDelay"`
	Open struct {
		Timestamp string `json:"timestamp"`
		UserAgent string `json:"userAgent"`
	} `json:"open"`
	Click struct {
		Link      string `json:"link"`
		Timestamp string `json:"timestamp"`
		UserAgent string `json:"userAgent"`
	} `json:"click"`
	Subscription struct {
		Timestamp           string `json:"timestamp"`
		Source              string `json:"source"`
		NewTopicPreferences struct {
			UnsubscribeAll bool `json:"unsubscribeAll"`
		} `json:"newTopicPreferences"`
	} `json:"subscription"`
}

// sesMail is the message an SES event is about.
type sesMail struct {
	Destination []string            `json:"destination"`
	Tags        map[string][]string `json:"tags"` // event publishing only
	Headers     []struct {          // with event publishing, or identity notifications that include headers
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
}

// ids returns the Crosscast message id (the crosscast_id tag, else the X-Crosscast-Message-ID header, else the
// tag in the X-SES-MESSAGE-TAGS header) and the Message-ID header (the result's provider id), as far as the event
// carries them.
func (m *sesMail) ids() (id, providerID string) {
	if v := m.Tags[sesTagName]; len(v) > 0 {
		id, _ = decodeSESTag(v[0])
	}
	for _, h := range m.Headers {
		switch {
		case strings.EqualFold(h.Name, "X-Crosscast-Message-ID") && id == "":
			id = h.Value
		case strings.EqualFold(h.Name, "Message-ID"):
			providerID = h.Value
		case strings.EqualFold(h.Name, "X-SES-MESSAGE-TAGS") && id == "":
			for _, tag := range strings.Split(h.Value, ",") {
				if name, v, ok := strings.Cut(strings.TrimSpace(tag), "="); ok && name == sesTagName {
					id, _ = decodeSESTag(v)
				}
			}
		}
	}
	return id, providerID
}

// readSESEvent reads the SES event of an SNS notification (its signature verified): one channel event per
// recipient it names.
func readSESEvent(message string) sdk.HookReply {
	var e sesEvent
	if err := json.Unmarshal([]byte(message), &e); err != nil {
		return reply(400, "the SNS message is not an SES event: %v", err)
	}
	kind := e.EventType
	if kind == "" {
		kind = e.NotificationType
	}
	id, providerID := e.Mail.ids()
	var events []sdk.ChannelEvent
	add := func(t sdk.EventType, address, at, detail string, fields map[string]string) {
		events = append(events, sdk.ChannelEvent{Type: t, MessageID: id, ProviderID: providerID, Address: address,
			AtUnixMilli: unixMilli(at), Detail: strings.TrimSpace(detail), Fields: fieldsOf(fields)})
	}
	firstDestination := ""
	if len(e.Mail.Destination) > 0 {
		firstDestination = e.Mail.Destination[0]
	}
	switch kind {
	case "Delivery":
		for _, r := range e.Delivery.Recipients {
			add(sdk.EventDelivered, r, e.Delivery.Timestamp, e.Delivery.SMTPResponse, nil)
		}
	case "Bounce":
		b := &e.Bounce
		for _, r := range b.BouncedRecipients {
			add(sdk.EventBounced, r.EmailAddress, b.Timestamp, b.BounceType+"/"+b.BounceSubType+" "+r.DiagnosticCode,
				map[string]string{"bounce_type": b.BounceType, "bounce_subtype": b.BounceSubType, "status": r.Status})
			events[len(events)-1].Permanent = b.BounceType == "Permanent" // Transient, Undetermined: soft
		}
	case "Complaint":
		for _, r := range e.Complaint.ComplainedRecipients {
			add(sdk.EventComplained, r.EmailAddress, e.Complaint.Timestamp, e.Complaint.FeedbackType, nil)
		}
	case "DeliveryDelay":
		d := &e.DeliveryDelay
		for _, r := range d.DelayedRecipients {
			add(sdk.EventDeferred, r.EmailAddress, d.Timestamp, d.DelayType+" "+r.DiagnosticCode, map[string]string{"status": r.Status})
		}
	case "Open":
		add(sdk.EventOpened, firstDestination, e.Open.Timestamp, "", map[string]string{"user_agent": e.Open.UserAgent})
	case "Click":
		add(sdk.EventClicked, firstDestination, e.Click.Timestamp, e.Click.Link, map[string]string{"user_agent": e.Click.UserAgent})
	case "Subscription":
		// Only an unsubscription from the whole list withdraws consent: a topic's is narrower than the channel.
		if e.Subscription.NewTopicPreferences.UnsubscribeAll {
			for _, r := range e.Mail.Destination {
				add(sdk.EventUnsubscribed, r, e.Subscription.Timestamp, e.Subscription.Source, nil)
			}
		}
	}
	// Send, Reject, Rendering Failure, AmazonSnsSubscriptionSucceeded...: acknowledged, nothing the engine uses.
	return sdk.HookReply{Status: 200, Events: events}
}

// unixMilli is an SES time in Unix milliseconds; 0 when it is not one.
func unixMilli(at string) int64 {
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return 0
	}
	return t.UnixMilli()
}

// fieldsOf is an event's fields without the empty ones, sorted as the wire wants them.
func fieldsOf(m map[string]string) sdk.Pairs {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return wire.PairsOf(m)
}
