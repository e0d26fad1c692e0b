package wire

import "fmt"

// HookRequest is an HTTP request the host received from a provider at /hooks/{workspace}/{plugin} and hands to the
// plugin: a channel's receive (delivery receipts, bounces, complaints, inbound replies) or a connector's inbound.
// The plugin verifies it (a signature over Body, a token) before believing any of it.
type HookRequest struct {
	// NowUnixMilli is the host's clock when the request arrived.
	NowUnixMilli int64
	// Workspace is the workspace of the hook's URL.
	Workspace string
	// Method is the HTTP method, upper case ("POST").
	Method string
	// Path is the URL's path as received, not unescaped ("/hooks/acme/sms"); signature schemes that sign the URL
	// need it exactly.
	Path string
	// RawQuery is the URL's query without the '?', as received.
	RawQuery string
	// Headers are the request's headers, names in canonical form ("Content-Type"), repeated values joined with
	// ", ".
	Headers Pairs
	// Body is the request's body, byte for byte: verify signatures over it before parsing it.
	Body []byte
	// RemoteAddr is the client's address as "ip:port" (after the host's trusted-proxy rules), for plugins that
	// check a provider's published address ranges.
	RemoteAddr string
}

// Encode appends the request's encoding to w.
func (q *HookRequest) Encode(w *Writer) {
	w.I64(q.NowUnixMilli)
	w.String(q.Workspace)
	w.String(q.Method)
	w.String(q.Path)
	w.String(q.RawQuery)
	w.Pairs(q.Headers)
	w.Bytes32(q.Body)
	w.String(q.RemoteAddr)
}

// DecodeHookRequest decodes a HookRequest and checks nothing follows it. Each string and the body are copies of
// their own: one shared copy would duplicate a large body.
func DecodeHookRequest(b []byte) (HookRequest, error) {
	r := NewFieldReader(b)
	q := HookRequest{NowUnixMilli: r.I64(), Workspace: r.String(), Method: r.String(), Path: r.String(),
		RawQuery: r.String(), Headers: r.Pairs()}
	q.Body = copyBytes(r.Bytes32())
	q.RemoteAddr = r.String()
	return q, r.End()
}

// EventType is what happened to a message, as a channel's provider reports it.
type EventType uint8

// The events a channel reports through receive.
const (
	EventDelivered    EventType = 1 // the recipient's server or handset accepted the message
	EventBounced      EventType = 2 // it was refused; Permanent tells a hard bounce from a soft one
	EventDeferred     EventType = 3 // delivery is delayed; the provider keeps trying
	EventComplained   EventType = 4 // the recipient reported it as spam
	EventOpened       EventType = 5 // the recipient opened it
	EventClicked      EventType = 6 // the recipient followed a link; Detail is the URL
	EventUnsubscribed EventType = 7 // the recipient unsubscribed through the provider (an SMS "STOP", a provider's link)
	EventReplied      EventType = 8 // the recipient answered; Detail is the reply's text
)

// Valid reports whether t is one of the defined event types.
func (t EventType) Valid() bool { return t >= EventDelivered && t <= EventReplied }

// String names the event type as the API shows it.
func (t EventType) String() string {
	switch t {
	case EventDelivered:
		return "delivered"
	case EventBounced:
		return "bounced"
	case EventDeferred:
		return "deferred"
	case EventComplained:
		return "complained"
	case EventOpened:
		return "opened"
	case EventClicked:
		return "clicked"
	case EventUnsubscribed:
		return "unsubscribed"
	case EventReplied:
		return "replied"
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// EventTypeOf returns the event type a name (as String returns it) stands for.
func EventTypeOf(name string) (EventType, bool) {
	for t := EventDelivered; t <= EventReplied; t++ {
		if t.String() == name {
			return t, true
		}
	}
	return 0, false
}

// ChannelEvent is one normalised event a channel found in a provider's webhook.
type ChannelEvent struct {
	Type EventType
	// MessageID is the host's message id (sdk.Message.ID), when the provider echoes it back (from metadata, a
	// custom argument, a header of the message); "" when it does not.
	MessageID string
	// ProviderID is the provider's id of the message, as Result.ProviderID gave it at send: the host finds the
	// message by it when MessageID is empty.
	ProviderID string
	// Address is the email address or phone number the event is about: the sender of a reply, the recipient of a
	// bounce.
	Address string
	// AtUnixMilli is when the event happened, by the provider's clock; 0 when the provider does not say.
	AtUnixMilli int64
	// Permanent marks a hard bounce (the address will never work) or a permanent failure.
	Permanent bool
	// Detail is the bounce reason, the clicked URL, or the reply's text.
	Detail string
	// Fields are other provider data worth keeping (a bounce's SMTP code, a carrier, a user agent).
	Fields Pairs
}

// ReceiveResponse is the output of a channel's receive: the HTTP reply the host gives the provider, and the events
// the plugin found in the request.
type ReceiveResponse struct {
	// Status is the HTTP status of the reply, 200 to 599. Answer 401 or 403 to a request whose signature does not
	// verify, with no events; a 5xx makes most providers deliver the webhook again later.
	Status uint32
	// Headers are the reply's headers (Content-Type when there is a body).
	Headers Pairs
	// Body is the reply's body: empty for most providers, TwiML or a challenge's echo for others.
	Body []byte
	// Events are what the request reports, in order.
	Events []ChannelEvent
}

// validReplyStatus reports whether status can be a webhook's final HTTP reply.
func validReplyStatus(status uint32) bool { return status >= 200 && status <= 599 }

// Encode appends the response's encoding to w.
func (p *ReceiveResponse) Encode(w *Writer) {
	w.U32(p.Status)
	w.Pairs(p.Headers)
	w.Bytes32(p.Body)
	w.U32(uint32(len(p.Events)))
	for i := range p.Events {
		e := &p.Events[i]
		w.U8(uint8(e.Type))
		w.String(e.MessageID)
		w.String(e.ProviderID)
		w.String(e.Address)
		w.I64(e.AtUnixMilli)
		w.Bool(e.Permanent)
		w.String(e.Detail)
		w.Pairs(e.Fields)
	}
}

// DecodeReceiveResponse decodes a ReceiveResponse, refusing a status outside 200-599, unknown event types and
// trailing bytes. Each string and the body are copies of their own: the host keeps events after the plugin's
// output buffer is gone.
func DecodeReceiveResponse(b []byte) (ReceiveResponse, error) {
	r := NewFieldReader(b)
	p := ReceiveResponse{Status: r.U32()}
	if r.Err() == nil && !validReplyStatus(p.Status) {
		r.Fail(fmt.Errorf("wire: reply status %d is not an HTTP status from 200 to 599", p.Status))
	}
	p.Headers = r.Pairs()
	p.Body = copyBytes(r.Bytes32())
	n := r.Count(1 + 4 + 4 + 4 + 8 + 1 + 4 + 4) // a type, three empty strings, a time, a bool, an empty string and map
	if n > 0 {
		p.Events = make([]ChannelEvent, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		e := &p.Events[i]
		e.Type = EventType(r.U8())
		if r.Err() == nil && !e.Type.Valid() {
			r.Fail(fmt.Errorf("wire: event %d has unknown type %d", i, uint8(e.Type)))
		}
		e.MessageID = r.String()
		e.ProviderID = r.String()
		e.Address = r.String()
		e.AtUnixMilli = r.I64()
		e.Permanent = r.Bool()
		e.Detail = r.String()
		e.Fields = r.Pairs()
	}
	return p, r.End()
}

// copyBytes returns a copy of b that owns its memory, nil when b is empty.
func copyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// sharedBytes reads a byte string from r as a slice of r's input, nil when empty. Its capacity ends with it: an
// append by the caller copies rather than overwriting the fields that follow. Decoders that use it read from a
// private copy of their input, so byte fields cost one allocation per payload rather than one each.
func sharedBytes(r *Reader) []byte {
	b := r.Bytes32()
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}
