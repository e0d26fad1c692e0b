package main

// SendGrid's Event Webhook, signed:
//
//   - https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
//   - https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event (the events)
//   - https://www.twilio.com/docs/sendgrid/for-developers/sending-email/building-an-x-smtpapi-header (unique_args)

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/sdk"
)

const (
	// sendgridMaxBody bounds a batch of events (the host's default server.max_body).
	sendgridMaxBody = 4 << 20
	// sendgridMaxEvents bounds the events of one batch, and so the memory of the reply.
	sendgridMaxEvents = 10000
	// sendgridMaxAge is how far a signature's timestamp may be from the host's clock: an older request is a replay.
	sendgridMaxAge = 10 * time.Minute
)

// The headers of a signed event webhook, in canonical form.
const (
	sendgridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	sendgridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// sendgridEvents reads SendGrid's signed event webhook with the verification key of the configuration.
type sendgridEvents struct {
	key *ecdsa.PublicKey
}

// newSendGridEvents reads the config fields of events = "sendgrid".
func newSendGridEvents(str func(string) string) (*eventsProvider, error) {
	text := str("sendgrid_verification_key")
	if text == "" {
		return nil, fmt.Errorf(`sendgrid_verification_key: required with events = "sendgrid": the verification key SendGrid shows when you enable the Signed Event Webhook`)
	}
	key, err := parseVerificationKey(text)
	if err != nil {
		return nil, fmt.Errorf("sendgrid_verification_key: %w", err)
	}
	s := &sendgridEvents{key: key}
	return &eventsProvider{tag: s.tag, receive: s.receive}, nil
}

// parseVerificationKey reads an ECDSA P-256 public key: base64 of its DER (SubjectPublicKeyInfo), as SendGrid
// shows it, or the same in a PEM "PUBLIC KEY" block.
func parseVerificationKey(text string) (*ecdsa.PublicKey, error) {
	var der []byte
	if block, _ := pem.Decode([]byte(text)); block != nil {
		der = block.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), "")); err != nil {
			return nil, fmt.Errorf("not base64 (%v): paste the key as SendGrid shows it", err)
		}
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a public key (%v): paste the key as SendGrid shows it", err)
	}
	key, ok := k.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("not an ECDSA P-256 key, as SendGrid's verification keys are")
	}
	return key, nil
}

// tag passes the message id as a unique argument of SendGrid's SMTP API, which every event returns.
func (s *sendgridEvents) tag(header func(name, value string), id string) {
	header("X-SMTPAPI", `{"unique_args":{"crosscast_id":`+jsonText(id)+`}}`)
}

// sendgridEvent is the part of a SendGrid event the channel reads. Unique arguments are fields of the event.
type sendgridEvent struct {
	Event       string `json:"event"` // processed, dropped, delivered, deferred, bounce, open, click, spamreport, ...
	Email       string `json:"email"`
	Timestamp   int64  `json:"timestamp"`
	Reason      string `json:"reason"`
	Type        string `json:"type"` // a bounce's: bounce (hard) or blocked (soft)
	Status      string `json:"status"`
	Response    string `json:"response"`
	URL         string `json:"url"`
	UserAgent   string `json:"useragent"`
	MachineOpen bool   `json:"sg_machine_open"`
	CrosscastID string `json:"crosscast_id"`
}

// sendgridDropped are the reasons of a dropped message that say something about the address (lower case); other
// drops (an over quota account, a bad header) are the sender's problem, not the contact's.
var sendgridDropped = map[string]sdk.EventType{
	"bounced address": sdk.EventBounced, "invalid": sdk.EventBounced, "invalid address": sdk.EventBounced,
	"unsubscribed address": sdk.EventUnsubscribed, "spam reporting address": sdk.EventComplained,
}

// receive checks the signature (ECDSA P-256 over SHA-256 of the timestamp header then the body, under the
// verification key) and the timestamp, then reads the batch of events.
func (s *sendgridEvents) receive(call sdk.Call, req sdk.HookRequest, _ string) sdk.HookReply {
	if len(req.Body) > sendgridMaxBody {
		return reply(413, "a batch of events is at most %d bytes", sendgridMaxBody)
	}
	sig, ts := req.Headers.Get(sendgridSignatureHeader), req.Headers.Get(sendgridTimestampHeader)
	if sig == "" || ts == "" {
		return reply(403, "unsigned: enable the Signed Event Webhook in SendGrid (%s, %s)", sendgridSignatureHeader, sendgridTimestampHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return reply(403, "%s %.32q is not a Unix time", sendgridTimestampHeader, ts)
	}
	if age := call.Now.Sub(time.Unix(sec, 0)); age > sendgridMaxAge || age < -sendgridMaxAge {
		return reply(403, "signed at %s, more than %s from now (%s): a replay, or a clock to fix",
			time.Unix(sec, 0).UTC().Format(time.RFC3339), sendgridMaxAge, call.Now.UTC().Format(time.RFC3339))
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return reply(403, "bad signature: not base64")
	}
	h := sha256.New()
	h.Write([]byte(ts))
	h.Write(req.Body)
	if !ecdsa.VerifyASN1(s.key, h.Sum(nil), der) {
		return reply(403, "bad signature")
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(req.Body, &batch); err != nil {
		return reply(400, "not a batch of SendGrid events (a JSON array): %v", err)
	}
	if len(batch) > sendgridMaxEvents {
		return reply(413, "a batch has at most %d events", sendgridMaxEvents)
	}
	var events []sdk.ChannelEvent
	skipped := 0
	for _, raw := range batch {
		var e sendgridEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			skipped++ // one odd event does not lose the others
			continue
		}
		if ev, ok := readSendGridEvent(&e); ok {
			events = append(events, ev)
		}
	}
	if skipped > 0 {
		sdk.Log(sdk.LevelWarn, "sendgrid: %d events of a batch of %d are not SendGrid events; skipped", skipped, len(batch))
	}
	return sdk.HookReply{Status: 200, Events: events}
}

// readSendGridEvent turns e into a channel event; false for an event the campaign engine does not use.
func readSendGridEvent(e *sendgridEvent) (sdk.ChannelEvent, bool) {
	ev := sdk.ChannelEvent{MessageID: e.CrosscastID, Address: e.Email}
	if e.Timestamp > 0 {
		ev.AtUnixMilli = e.Timestamp * 1000
	}
	switch e.Event {
	case "delivered":
		ev.Type, ev.Detail = sdk.EventDelivered, e.Response
	case "deferred":
		ev.Type, ev.Detail = sdk.EventDeferred, e.Response // SendGrid keeps trying: not a bounce
	case "bounce":
		// type "bounce": the receiving server refused the address for good; "blocked": this message, for now.
		ev.Type, ev.Permanent = sdk.EventBounced, e.Type != "blocked"
		ev.Detail = strings.TrimSpace(e.Type + " " + e.Status + " " + e.Reason)
		ev.Fields = fieldsOf(map[string]string{"bounce_type": e.Type, "status": e.Status})
	case "dropped":
		t, ok := sendgridDropped[strings.ToLower(e.Reason)]
		if !ok {
			sdk.Log(sdk.LevelWarn, "sendgrid dropped a message: %.200s", e.Reason)
			return ev, false
		}
		ev.Type, ev.Permanent, ev.Detail = t, t == sdk.EventBounced, "dropped: "+e.Reason
	case "spamreport":
		ev.Type = sdk.EventComplained
	case "unsubscribe", "group_unsubscribe":
		ev.Type = sdk.EventUnsubscribed
	case "open":
		ev.Type = sdk.EventOpened
		if e.MachineOpen {
			ev.Fields = sdk.Pairs{{Key: "machine_open", Value: "true"}} // a mail client's prefetch (Apple Mail)
		}
	case "click":
		ev.Type, ev.Detail = sdk.EventClicked, e.URL
	default: // processed, group_resubscribe (consent is the contact's to give again), account events
		return ev, false
	}
	return ev, true
}
