package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/crosscast/crosscast/sdk"
)

// mailgunEvent is the part of a Mailgun webhook (https://documentation.mailgun.com/docs/mailgun/user-manual/events/)
// the channel reads.
type mailgunEvent struct {
	Signature struct {
		Timestamp string `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	} `json:"signature"`
	EventData struct {
		Event         string            `json:"event"` // delivered, failed, complained, unsubscribed, opened, clicked
		Severity      string            `json:"severity"`
		Recipient     string            `json:"recipient"`
		Reason        string            `json:"reason"`
		UserVariables map[string]string `json:"user-variables"`
		Delivery      struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"delivery-status"`
	} `json:"event-data"`
}

// eventsConfig are the config fields of event webhooks.
var eventsConfig = []sdk.ConfigField{
	{Name: "events", Type: "string", Description: `The provider whose event webhooks receive reads: ` + providerNames() + ` (deliveries, bounces, complaints, unsubscribes, opens, clicks); empty: none.`},
	{Name: "webhook_signing_key", Type: "string", Secret: true, Description: "Mailgun: its HTTP webhook signing key. Postmark: the password of the Basic auth in the webhook URL you give it (user crosscast). Not used by ses (Amazon signs SNS messages, checked with its certificate) nor sendgrid (see sendgrid_verification_key)."},
	{Name: "sns_topic_arn", Type: "string", Description: `events = "ses" (required): the ARN of the Amazon SNS topic SES publishes its events to, arn:aws:sns:<region>:<account>:<topic>. Messages from any other topic are refused, however well signed. Grant http_hosts = ["https://sns.<region>.amazonaws.com"] so that the channel can fetch SNS's signing certificate and confirm the subscription.`},
	{Name: "ses_configuration_set", Type: "string", Description: `events = "ses" (optional): the SES configuration set every message names (header X-SES-CONFIGURATION-SET), whose SNS event destination publishes the events; empty: the sending identity's default configuration set, if any.`},
	{Name: "sendgrid_verification_key", Type: "string", Description: `events = "sendgrid" (required): the verification key SendGrid shows when you enable the Signed Event Webhook (base64 of an ECDSA P-256 public key; a public key, not a secret). Requests whose signature does not verify with it, or signed more than 10 minutes from the host's clock, are refused.`},
}

// eventsProvider is an email provider whose event webhooks (delivery, bounces, complaints...) Receive reads, as
// one instance's configuration set it up.
type eventsProvider struct {
	// tag writes the headers that make the provider hand the Crosscast message id back in its events.
	tag func(header func(name, value string), id string)
	// signingKey says that receive needs the secret webhook_signing_key (Receive answers 503 without it).
	signingKey bool
	// receive checks that req is the provider's and reads its events; key is webhook_signing_key when signingKey
	// is set.
	receive func(call sdk.Call, req sdk.HookRequest, key string) sdk.HookReply
}

// eventsProviders are the providers config events can name, each with the constructor that reads its config
// fields (str) and refuses a bad one, naming the field.
var eventsProviders = map[string]func(str func(string) string) (*eventsProvider, error){
	"mailgun": func(func(string) string) (*eventsProvider, error) {
		return &eventsProvider{
			// Mailgun hands custom variables back in its events: the message id comes back with a bounce.
			tag: func(header func(name, value string), id string) {
				header("X-Mailgun-Variables", `{"crosscast_id":`+jsonText(id)+`}`)
			},
			signingKey: true,
			receive:    func(_ sdk.Call, req sdk.HookRequest, key string) sdk.HookReply { return receiveMailgun(req, key) },
		}, nil
	},
	"postmark": func(func(string) string) (*eventsProvider, error) {
		return &eventsProvider{
			// So does Postmark with metadata headers.
			tag:        func(header func(name, value string), id string) { header("X-PM-Metadata-crosscast_id", id) },
			signingKey: true,
			receive:    func(_ sdk.Call, req sdk.HookRequest, key string) sdk.HookReply { return receivePostmark(req, key) },
		}, nil
	},
	"ses":      newSESEvents,
	"sendgrid": newSendGridEvents,
}

// providerFields are the config fields only one provider reads: set with another, they are a mistake.
var providerFields = []struct{ field, provider string }{
	{"sns_topic_arn", "ses"}, {"ses_configuration_set", "ses"}, {"sendgrid_verification_key", "sendgrid"},
}

func providerNames() string {
	names := make([]string, 0, len(eventsProviders))
	for n := range eventsProviders {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// configureEvents reads config events and the fields of the provider it names.
func (c *channel) configureEvents(str func(string) string) error {
	c.events = nil
	name := str("events")
	for _, f := range providerFields {
		if str(f.field) != "" && name != f.provider {
			return fmt.Errorf("%s: only read with events = %q (events is %q): remove it, or set events", f.field, f.provider, name)
		}
	}
	if name == "" {
		return nil
	}
	newProvider, ok := eventsProviders[name]
	if !ok {
		return fmt.Errorf("events: %q is not a provider this channel reads (%s)", name, providerNames())
	}
	p, err := newProvider(str)
	if err != nil {
		return err
	}
	c.events = p
	return nil
}

// Receive reads the events of the provider set in config events, after checking the request is the provider's.
func (c *channel) Receive(call sdk.Call, req sdk.HookRequest) (sdk.HookReply, error) {
	if c.events == nil {
		return sdk.HookReply{Status: 404, Body: []byte("no events provider is configured")}, nil
	}
	key := ""
	if c.events.signingKey {
		k, ok, err := sdk.Secret("webhook_signing_key")
		if err != nil || !ok || k == "" {
			return sdk.HookReply{Status: 503, Body: []byte("the webhook signing key is not configured")}, nil
		}
		key = k
	}
	return c.events.receive(call, req, key), nil
}

// reply is a webhook reply with a plain-text body saying what happened.
func reply(status uint32, format string, args ...any) sdk.HookReply {
	return sdk.HookReply{Status: status, Headers: sdk.Pairs{{Key: "Content-Type", Value: "text/plain; charset=utf-8"}},
		Body: []byte(fmt.Sprintf(format, args...))}
}

// jsonText is s as a JSON string, quotes included, in ASCII only (other characters as \u escapes): safe in a
// header value, with no line break and no 8-bit byte.
func jsonText(s string) string {
	b, _ := json.Marshal(s) // cannot fail for a string; invalid UTF-8 becomes U+FFFD
	var out strings.Builder
	out.Grow(len(b))
	for _, r := range string(b) {
		if r < utf8.RuneSelf {
			out.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&out, `\u%04x`, u)
		}
	}
	return out.String()
}

// receiveMailgun reads a Mailgun webhook, signed: hex HMAC-SHA256, under the webhook signing key, of the
// timestamp and the token.
func receiveMailgun(req sdk.HookRequest, key string) sdk.HookReply {
	var e mailgunEvent
	if err := json.Unmarshal(req.Body, &e); err != nil {
		return sdk.HookReply{Status: 400, Body: []byte("not a Mailgun event")}
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(e.Signature.Timestamp + e.Signature.Token))
	if e.Signature.Token == "" || !hmac.Equal([]byte(e.Signature.Signature), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		return sdk.HookReply{Status: 403, Body: []byte("bad signature")}
	}
	d := e.EventData
	ev := sdk.ChannelEvent{MessageID: d.UserVariables["crosscast_id"], Address: d.Recipient, Detail: strings.TrimSpace(d.Reason + " " + d.Delivery.Message)}
	switch d.Event {
	case "delivered":
		ev.Type = sdk.EventDelivered
	case "failed":
		ev.Type, ev.Permanent = sdk.EventBounced, d.Severity == "permanent"
	case "complained":
		ev.Type = sdk.EventComplained
	case "unsubscribed":
		ev.Type = sdk.EventUnsubscribed
	case "opened":
		ev.Type = sdk.EventOpened
	case "clicked":
		ev.Type = sdk.EventClicked
	default:
		return sdk.HookReply{Status: 200} // an event the campaign engine does not use: acknowledged
	}
	return sdk.HookReply{Status: 200, Events: []sdk.ChannelEvent{ev}}
}

// postmarkEvent is the part of a Postmark webhook (https://postmarkapp.com/developer/webhooks/webhooks-overview)
// the channel reads.
type postmarkEvent struct {
	RecordType      string            `json:"RecordType"` // Delivery, Bounce, SpamComplaint, Open, Click, SubscriptionChange
	Type            string            `json:"Type"`       // a bounce's type: HardBounce, SoftBounce, ...
	Email           string            `json:"Email"`
	Recipient       string            `json:"Recipient"`
	Description     string            `json:"Description"`
	Metadata        map[string]string `json:"Metadata"`
	SuppressSending bool              `json:"SuppressSending"`
}

// postmarkPermanent are the bounce types of an address that will not work again.
var postmarkPermanent = map[string]bool{"HardBounce": true, "BadEmailAddress": true, "ManuallyDeactivated": true, "Blocked": true}

// receivePostmark reads a Postmark webhook. Postmark does not sign its webhooks: give it a URL with Basic auth
// credentials (https://crosscast:<key>@host/hooks/...), and the channel checks them.
func receivePostmark(req sdk.HookRequest, key string) sdk.HookReply {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("crosscast:"+key))
	if !hmac.Equal([]byte(req.Headers.Get("Authorization")), []byte(want)) {
		return sdk.HookReply{Status: 401, Headers: sdk.Pairs{{Key: "Www-Authenticate", Value: `Basic realm="crosscast"`}}, Body: []byte("bad credentials")}
	}
	var e postmarkEvent
	if err := json.Unmarshal(req.Body, &e); err != nil {
		return sdk.HookReply{Status: 400, Body: []byte("not a Postmark event")}
	}
	address := e.Email
	if address == "" {
		address = e.Recipient
	}
	ev := sdk.ChannelEvent{MessageID: e.Metadata["crosscast_id"], Address: address, Detail: e.Description}
	switch e.RecordType {
	case "Delivery":
		ev.Type = sdk.EventDelivered
	case "Bounce":
		ev.Type, ev.Permanent = sdk.EventBounced, postmarkPermanent[e.Type]
		ev.Detail = strings.TrimSpace(e.Type + " " + e.Description)
	case "SpamComplaint":
		ev.Type = sdk.EventComplained
	case "Open":
		ev.Type = sdk.EventOpened
	case "Click":
		ev.Type = sdk.EventClicked
	case "SubscriptionChange":
		if !e.SuppressSending {
			return sdk.HookReply{Status: 200} // a reactivation: consent is the contact's to give again
		}
		ev.Type = sdk.EventUnsubscribed
	default:
		return sdk.HookReply{Status: 200}
	}
	return sdk.HookReply{Status: 200, Events: []sdk.ChannelEvent{ev}}
}
