package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

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

// Receive reads the events of the provider set in config events, after checking its signature. Mailgun signs each
// webhook: hex HMAC-SHA256, under the webhook signing key, of the timestamp and the token.
func (c *channel) Receive(call sdk.Call, req sdk.HookRequest) (sdk.HookReply, error) {
	if c.events != "mailgun" {
		return sdk.HookReply{Status: 404, Body: []byte("no events provider is configured")}, nil
	}
	key, ok, err := sdk.Secret("webhook_signing_key")
	if err != nil || !ok || key == "" {
		return sdk.HookReply{Status: 503, Body: []byte("the webhook signing key is not configured")}, nil
	}
	var e mailgunEvent
	if err := json.Unmarshal(req.Body, &e); err != nil {
		return sdk.HookReply{Status: 400, Body: []byte("not a Mailgun event")}, nil
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(e.Signature.Timestamp + e.Signature.Token))
	if e.Signature.Token == "" || !hmac.Equal([]byte(e.Signature.Signature), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		return sdk.HookReply{Status: 403, Body: []byte("bad signature")}, nil
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
		return sdk.HookReply{Status: 200}, nil // an event the campaign engine does not use: acknowledged
	}
	return sdk.HookReply{Status: 200, Events: []sdk.ChannelEvent{ev}}, nil
}
