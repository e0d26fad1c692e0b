package sdk

import (
	"errors"

	"github.com/crosscast/crosscast/sdk/wire"
)

// The types of a channel's receive, from the shared wire package.
type (
	// HookRequest is an HTTP request a provider sent to /hooks/{workspace}/{plugin}.
	HookRequest = wire.HookRequest
	// HookReply is the HTTP reply for the provider (a zero Status is sent as 200) and the events found in the
	// request.
	HookReply    = wire.ReceiveResponse
	ChannelEvent = wire.ChannelEvent
	EventType    = wire.EventType
)

// The events a channel reports through Receive.
const (
	EventDelivered    = wire.EventDelivered
	EventBounced      = wire.EventBounced
	EventDeferred     = wire.EventDeferred
	EventComplained   = wire.EventComplained
	EventOpened       = wire.EventOpened
	EventClicked      = wire.EventClicked
	EventUnsubscribed = wire.EventUnsubscribed
	EventReplied      = wire.EventReplied
)

// Receiver is implemented by channels whose provider calls back: delivery receipts, bounces, complaints, opens and
// clicks, inbound replies (an SMS "STOP"). The host receives the provider's request at
// /hooks/{workspace}/{plugin} and hands it to Receive, which must verify it (a signature over req.Body with a
// secret read with Secret, a token) before believing it, and returns the reply for the provider with the
// normalised events.
type Receiver interface {
	// Receive handles one webhook. Answer a request that does not verify with a 401 or 403 reply and no events,
	// not an error: an error makes the host answer 500, which most providers retry.
	Receive(call Call, req HookRequest) (HookReply, error)
}

// receive runs entry receive.
func receive(p *plugin, input []byte, out *wire.Writer) []byte {
	if p.channel == nil {
		return errorOutput(out, errors.New("this plugin is not a channel"))
	}
	rc, ok := p.channel.(Receiver)
	if !ok {
		return errorOutput(out, errors.New("this channel does not receive webhooks"))
	}
	req, err := wire.DecodeHookRequest(input)
	if err != nil {
		return errorOutput(out, err)
	}
	reply, err := rc.Receive(hookCall(&req), req)
	if err != nil {
		return errorOutput(out, err)
	}
	if reply.Status == 0 {
		reply.Status = 200
	}
	reply.Encode(out)
	return out.Bytes()
}
