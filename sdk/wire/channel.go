package wire

import (
	"fmt"
	"slices"
)

// Message is one rendered message handed to a channel plugin's send.
type Message struct {
	// ID identifies the message in the outbox; results are matched to messages by it.
	ID string
	// IdempotencyKey is stable across retries of the same message: providers that accept one get it, so a retry
	// after a crash never sends twice.
	IdempotencyKey string
	Workspace      string
	ContactID      string
	// To is the address: an email address, an E.164 phone number, a URL.
	To string
	// Fields is the channel's rendered content: subject, html, text, from, reply_to for email; body, sender for
	// SMS; payload for webhooks; or whatever a plugin's manifest declares. Read one with m.Fields.Get("subject").
	Fields Pairs
	// Headers are extra headers the campaign engine asks for (List-Unsubscribe, ...).
	Headers Pairs
}

// Status is the outcome of sending one message.
type Status uint8

// The outcomes a channel reports per message.
const (
	StatusDelivered Status = 1 // handed over for good (to the provider, relay or endpoint)
	StatusAccepted  Status = 2 // accepted and queued by the provider; a receipt may follow through receive
	StatusRetry     Status = 3 // failed for now; retry after RetryAfterMillis (0: the host's backoff)
	StatusFailed    Status = 4 // failed for good: do not retry
)

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool { return s >= StatusDelivered && s <= StatusFailed }

// String names the status as the API shows it.
func (s Status) String() string {
	switch s {
	case StatusDelivered:
		return "delivered"
	case StatusAccepted:
		return "accepted"
	case StatusRetry:
		return "retry"
	case StatusFailed:
		return "failed"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Result is a channel's answer for one message.
type Result struct {
	ID               string
	Status           Status
	ProviderID       string
	Error            string
	RetryAfterMillis uint32
	// Units is what the provider bills the message as, when the channel counts it: SMS segments (a long or
	// non-GSM text takes several). 0: not counted.
	Units uint32
}

// SendRequest is the input of a channel's send: a batch of messages.
type SendRequest struct {
	// NowUnixMilli is the host's clock: plugins use it rather than their own for anything that matters.
	NowUnixMilli int64
	Messages     []Message
}

// SendResponse is the output of send: one result per message, in any order.
type SendResponse struct {
	Results []Result
}

// Encode appends the request's encoding to w.
func (q *SendRequest) Encode(w *Writer) {
	w.I64(q.NowUnixMilli)
	w.U32(uint32(len(q.Messages)))
	for i := range q.Messages {
		m := &q.Messages[i]
		w.String(m.ID)
		w.String(m.IdempotencyKey)
		w.String(m.Workspace)
		w.String(m.ContactID)
		w.String(m.To)
		w.Pairs(m.Fields)
		w.Pairs(m.Headers)
	}
}

// DecodeSendRequest decodes a SendRequest and checks nothing follows it.
func DecodeSendRequest(b []byte) (SendRequest, error) {
	r := NewReader(b)
	q := SendRequest{NowUnixMilli: r.I64()}
	n := r.Count(5*4 + 2*4) // five empty strings and two empty maps
	if n > 0 {
		q.Messages = make([]Message, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		m := &q.Messages[i]
		m.ID = r.String()
		m.IdempotencyKey = r.String()
		m.Workspace = r.String()
		m.ContactID = r.String()
		m.To = r.String()
		m.Fields = r.Pairs()
		m.Headers = r.Pairs()
	}
	return q, r.End()
}

// Encode appends the response's encoding to w.
func (p *SendResponse) Encode(w *Writer) {
	w.U32(uint32(len(p.Results)))
	for i := range p.Results {
		res := &p.Results[i]
		w.String(res.ID)
		w.U8(uint8(res.Status))
		w.String(res.ProviderID)
		w.String(res.Error)
		w.U32(res.RetryAfterMillis)
	}
	// Units follow the results, one per result, only when one is counted: plugins built before units existed
	// end here.
	if slices.ContainsFunc(p.Results, func(r Result) bool { return r.Units != 0 }) {
		w.U32(uint32(len(p.Results)))
		for i := range p.Results {
			w.U32(p.Results[i].Units)
		}
	}
}

// DecodeSendResponse decodes a SendResponse, refusing unknown statuses and trailing bytes. Each string is its own
// copy: the host keeps results (provider ids, errors) long after the plugin's output buffer is gone.
func DecodeSendResponse(b []byte) (SendResponse, error) {
	r := NewFieldReader(b)
	var p SendResponse
	n := r.Count(4 + 1 + 4 + 4 + 4)
	if n > 0 {
		p.Results = make([]Result, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		res := &p.Results[i]
		res.ID = r.String()
		res.Status = Status(r.U8())
		if r.Err() == nil && !res.Status.Valid() {
			r.Fail(fmt.Errorf("wire: result %d has unknown status %d", i, res.Status))
		}
		res.ProviderID = r.String()
		res.Error = r.String()
		res.RetryAfterMillis = r.U32()
	}
	if r.Err() == nil && r.Len() > 0 {
		if m := r.Count(4); m != n && r.Err() == nil {
			r.Fail(fmt.Errorf("wire: %d units for %d results", m, n))
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			p.Results[i].Units = r.U32()
		}
	}
	return p, r.End()
}
