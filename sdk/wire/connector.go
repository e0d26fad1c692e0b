package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// TrackType is the kind of a TrackEvent, as the Segment spec names its calls.
type TrackType string

// The kinds of TrackEvent.
const (
	TrackTypeTrack    TrackType = "track"    // a user did something: Event names it, Properties describe it
	TrackTypeIdentify TrackType = "identify" // who a user is: Traits
	TrackTypePage     TrackType = "page"     // a web page view: Event is the page's name, if any
	TrackTypeScreen   TrackType = "screen"   // a mobile screen view: Event is the screen's name
	TrackTypeGroup    TrackType = "group"    // a user joined a group (an account, a company): Traits are the group's
	TrackTypeAlias    TrackType = "alias"    // a user's previous id: Event carries it (Segment's previousId)
)

// Valid reports whether t is one of the defined kinds.
func (t TrackType) Valid() bool {
	switch t {
	case TrackTypeTrack, TrackTypeIdentify, TrackTypePage, TrackTypeScreen, TrackTypeGroup, TrackTypeAlias:
		return true
	}
	return false
}

// TrackEvent is an analytics event shaped after the Segment spec, as tag-management connectors exchange them.
// Properties, Traits and Context are JSON objects as raw bytes (nested data that a plugin decodes only when it
// needs to), or empty for none.
type TrackEvent struct {
	// MessageID identifies the event for deduplication (Segment's messageId); results are matched to events by it.
	MessageID string
	Type      TrackType
	// Event is the event's name for track ("Order Completed"), the page or screen name for page and screen, the
	// group id for group, and the previous id for alias.
	Event       string
	UserID      string
	AnonymousID string
	// TimestampUnixMilli is when the event happened, by the client's clock as corrected by the source.
	TimestampUnixMilli int64
	Properties         []byte
	Traits             []byte
	Context            []byte
}

// encode appends the event's encoding to w.
func (e *TrackEvent) encode(w *Writer) {
	w.String(e.MessageID)
	w.String(string(e.Type))
	w.String(e.Event)
	w.String(e.UserID)
	w.String(e.AnonymousID)
	w.I64(e.TimestampUnixMilli)
	w.Bytes32(e.Properties)
	w.Bytes32(e.Traits)
	w.Bytes32(e.Context)
}

// trackEventSize is the least bytes an encoded TrackEvent takes: five empty strings, a time, three empty objects.
const trackEventSize = 5*4 + 8 + 3*4

// decodeTrackEvents reads a list of TrackEvent, refusing unknown types. read reads each JSON field; checkJSON,
// when set, also refuses fields that are not empty or a JSON object.
func decodeTrackEvents(r *Reader, read func(*Reader) []byte, checkJSON bool) []TrackEvent {
	n := r.Count(trackEventSize)
	if n == 0 {
		return nil
	}
	events := make([]TrackEvent, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		e := &events[i]
		e.MessageID = r.String()
		e.Type = TrackType(r.String())
		if r.Err() == nil && !e.Type.Valid() {
			r.Fail(fmt.Errorf("wire: event %d has unknown type %q", i, e.Type))
		}
		e.Event = r.String()
		e.UserID = r.String()
		e.AnonymousID = r.String()
		e.TimestampUnixMilli = r.I64()
		e.Properties, e.Traits, e.Context = read(r), read(r), read(r)
		if checkJSON && r.Err() == nil {
			switch {
			case !isJSONObject(e.Properties):
				r.Fail(fmt.Errorf("wire: event %d: properties are not a JSON object", i))
			case !isJSONObject(e.Traits):
				r.Fail(fmt.Errorf("wire: event %d: traits are not a JSON object", i))
			case !isJSONObject(e.Context):
				r.Fail(fmt.Errorf("wire: event %d: context is not a JSON object", i))
			}
		}
	}
	return events
}

// isJSONObject reports whether b is empty or one JSON object.
func isJSONObject(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}

// InboundResponse is the output of a connector's inbound: the HTTP reply for the source that called the hook, and
// the events the plugin found in the request.
type InboundResponse struct {
	// Status is the HTTP status of the reply, 200 to 599: 401 or 403 for a request that does not authenticate.
	Status  uint32
	Headers Pairs
	Body    []byte
	Events  []TrackEvent
}

// Encode appends the response's encoding to w.
func (p *InboundResponse) Encode(w *Writer) {
	w.U32(p.Status)
	w.Pairs(p.Headers)
	w.Bytes32(p.Body)
	w.U32(uint32(len(p.Events)))
	for i := range p.Events {
		p.Events[i].encode(w)
	}
}

// DecodeInboundResponse decodes an InboundResponse, refusing a status outside 200-599, unknown event types,
// properties, traits or context that are not a JSON object, and trailing bytes. Each string and byte field is a
// copy of its own: the host keeps events after the plugin's output buffer is gone.
func DecodeInboundResponse(b []byte) (InboundResponse, error) {
	r := NewFieldReader(b)
	p := InboundResponse{Status: r.U32()}
	if r.Err() == nil && !validReplyStatus(p.Status) {
		r.Fail(fmt.Errorf("wire: reply status %d is not an HTTP status from 200 to 599", p.Status))
	}
	p.Headers = r.Pairs()
	p.Body = copyBytes(r.Bytes32())
	p.Events = decodeTrackEvents(r, func(r *Reader) []byte { return copyBytes(r.Bytes32()) }, true)
	return p, r.End()
}

// OutboundRequest is the input of a connector's outbound: events of one workspace to forward to the tool the
// connector feeds.
type OutboundRequest struct {
	// NowUnixMilli is the host's clock.
	NowUnixMilli int64
	Workspace    string
	Events       []TrackEvent
}

// Encode appends the request's encoding to w.
func (q *OutboundRequest) Encode(w *Writer) {
	w.I64(q.NowUnixMilli)
	w.String(q.Workspace)
	w.U32(uint32(len(q.Events)))
	for i := range q.Events {
		q.Events[i].encode(w)
	}
}

// DecodeOutboundRequest decodes an OutboundRequest, refusing unknown event types and trailing bytes. It reads from
// one private copy of b, as DecodeScoreRequest does. It does not check that the JSON fields are JSON: the host
// that encodes them does, and a guest's loops are slow.
func DecodeOutboundRequest(b []byte) (OutboundRequest, error) {
	r := NewReader(bytes.Clone(b))
	q := OutboundRequest{NowUnixMilli: r.I64(), Workspace: r.String()}
	q.Events = decodeTrackEvents(r, sharedBytes, false)
	return q, r.End()
}

// OutboundStatus is the outcome of forwarding one event.
type OutboundStatus uint8

// The outcomes a connector reports per event.
const (
	OutboundDone       OutboundStatus = 1 // the tool accepted the event (or already had it)
	OutboundRetry      OutboundStatus = 2 // failed for now; retry after RetryAfterMillis (0: the host's backoff)
	OutboundDeadLetter OutboundStatus = 3 // failed for good (the tool refused it): keep it aside, never retry
)

// Valid reports whether s is one of the defined outcomes.
func (s OutboundStatus) Valid() bool { return s >= OutboundDone && s <= OutboundDeadLetter }

// String names the outcome as the API shows it.
func (s OutboundStatus) String() string {
	switch s {
	case OutboundDone:
		return "done"
	case OutboundRetry:
		return "retry"
	case OutboundDeadLetter:
		return "dead_letter"
	}
	return fmt.Sprintf("outbound-status(%d)", uint8(s))
}

// OutboundResult is a connector's answer for one event.
type OutboundResult struct {
	MessageID        string
	Status           OutboundStatus
	RetryAfterMillis uint32
	Error            string
}

// OutboundResponse is the output of outbound: one result per event, in any order, matched by MessageID.
type OutboundResponse struct {
	Results []OutboundResult
}

// Encode appends the response's encoding to w.
func (p *OutboundResponse) Encode(w *Writer) {
	w.U32(uint32(len(p.Results)))
	for i := range p.Results {
		res := &p.Results[i]
		w.String(res.MessageID)
		w.U8(uint8(res.Status))
		w.U32(res.RetryAfterMillis)
		w.String(res.Error)
	}
}

// DecodeOutboundResponse decodes an OutboundResponse, refusing unknown statuses and trailing bytes. Each string is
// its own copy.
func DecodeOutboundResponse(b []byte) (OutboundResponse, error) {
	r := NewFieldReader(b)
	var p OutboundResponse
	n := r.Count(4 + 1 + 4 + 4)
	if n > 0 {
		p.Results = make([]OutboundResult, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		res := &p.Results[i]
		res.MessageID = r.String()
		res.Status = OutboundStatus(r.U8())
		if r.Err() == nil && !res.Status.Valid() {
			r.Fail(fmt.Errorf("wire: result %d has unknown status %d", i, res.Status))
		}
		res.RetryAfterMillis = r.U32()
		res.Error = r.String()
	}
	return p, r.End()
}
