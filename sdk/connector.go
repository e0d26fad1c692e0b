package sdk

import (
	"errors"

	"github.com/crosscast/crosscast/sdk/wire"
)

// The types a connector handles, from the shared wire package.
type (
	// TrackEvent is a Segment-shaped analytics event; Properties, Traits and Context are raw JSON objects (empty
	// for none): decode them with encoding/json only when you need them.
	TrackEvent = wire.TrackEvent
	TrackType  = wire.TrackType
	// InboundReply is the HTTP reply for the source that called the hook (a zero Status is sent as 200) and the
	// events found in the request.
	InboundReply   = wire.InboundResponse
	OutboundResult = wire.OutboundResult
	OutboundStatus = wire.OutboundStatus
)

// The kinds of TrackEvent.
const (
	TrackTypeTrack    = wire.TrackTypeTrack
	TrackTypeIdentify = wire.TrackTypeIdentify
	TrackTypePage     = wire.TrackTypePage
	TrackTypeScreen   = wire.TrackTypeScreen
	TrackTypeGroup    = wire.TrackTypeGroup
	TrackTypeAlias    = wire.TrackTypeAlias
)

// The per-event outcomes a connector's Outbound reports.
const (
	OutboundDone       = wire.OutboundDone
	OutboundRetry      = wire.OutboundRetry
	OutboundDeadLetter = wire.OutboundDeadLetter
)

// Connector is a tag-management connector: it turns requests from a tracking source (a tag manager, a CDP, an
// app's SDK) into events, and forwards events to an analytics or advertising tool.
type Connector interface {
	// Configure receives the plugin's config block (already checked against Manifest.Config), once per instance
	// before any other call. Return an error to refuse it.
	Configure(config map[string]any) error
	// Inbound handles one request a source sent to /hooks/{workspace}/{plugin}: verify it, then return the reply
	// and the events it carries. Answer a request that does not verify with a 401 or 403 reply and no events, not
	// an error: an error makes the host answer 500.
	Inbound(call Call, req HookRequest) (InboundReply, error)
	// Outbound forwards a batch of events and returns one result per event, matched by MessageID: OutboundDone,
	// OutboundRetry (with RetryAfterMillis, or 0 for the host's backoff) or OutboundDeadLetter. An event without a
	// result is retried. Return an error only when the whole batch failed.
	Outbound(call Call, events []TrackEvent) ([]OutboundResult, error)
}

// RegisterConnector registers the plugin's connector implementation. Call it exactly once, from an init function.
func RegisterConnector(m Manifest, c Connector) {
	m.Kind, m.ABI, m.Receives = KindConnector, ABIVersion, false
	register(&plugin{manifest: m, connector: c})
}

// inbound runs entry inbound.
func inbound(p *plugin, input []byte, out *wire.Writer) []byte {
	if p.connector == nil {
		return errorOutput(out, errors.New("this plugin is not a connector"))
	}
	req, err := wire.DecodeHookRequest(input)
	if err != nil {
		return errorOutput(out, err)
	}
	reply, err := p.connector.Inbound(hookCall(&req), req)
	if err != nil {
		return errorOutput(out, err)
	}
	if reply.Status == 0 {
		reply.Status = 200
	}
	reply.Encode(out)
	return out.Bytes()
}

// outbound runs entry outbound.
func outbound(p *plugin, input []byte, out *wire.Writer) []byte {
	if p.connector == nil {
		return errorOutput(out, errors.New("this plugin is not a connector"))
	}
	req, err := wire.DecodeOutboundRequest(input)
	if err != nil {
		return errorOutput(out, err)
	}
	results, err := p.connector.Outbound(Call{Now: timeOf(req.NowUnixMilli), Workspace: req.Workspace}, req.Events)
	if err != nil {
		return errorOutput(out, err)
	}
	resp := wire.OutboundResponse{Results: results}
	resp.Encode(out)
	return out.Bytes()
}
