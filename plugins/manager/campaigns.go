package manager

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/wire"
)

// Campaigns is the manager as the campaign engine reaches channels (campaigns.Channels): the channel's declared
// messages, and Send with the engine's types.
type Campaigns struct{ M *Manager }

var _ campaigns.Channels = Campaigns{}

// Channel describes a loaded channel plugin from its manifest. A channel that declares nothing sends to the
// contact's email under email consent and takes any content field.
func (c Campaigns) Channel(name string) (campaigns.ChannelInfo, bool) {
	mp, err := c.M.get(name)
	if err != nil {
		return campaigns.ChannelInfo{}, false
	}
	l := mp.current.Load()
	if l == nil || l.manifest.Kind != sdk.KindChannel {
		return campaigns.ChannelInfo{}, false
	}
	spec := l.manifest.Channel
	if spec == nil {
		return campaigns.ChannelInfo{Address: "email", Consent: "email", Rate: mp.spec.RateLimit}, true
	}
	info := campaigns.ChannelInfo{Address: spec.Address, Consent: spec.Consent, Rate: mp.spec.RateLimit}
	for _, f := range spec.Fields {
		info.Fields = append(info.Fields, campaigns.ContentField{Name: f.Name, Required: f.Required, SingleLine: f.SingleLine})
	}
	return info, true
}

// sortPairs sorts by key, as wire.Pairs must be (the engine's fields usually are already).
func sortPairs(p wire.Pairs) {
	if !slices.IsSortedFunc(p, comparePairs) {
		slices.SortFunc(p, comparePairs)
	}
}

func comparePairs(a, b wire.Pair) int { return strings.Compare(a.Key, b.Key) }

// Send hands a batch to the channel and maps its results to outcomes, in order.
func (c Campaigns) Send(ctx context.Context, ws, channel string, now time.Time, msgs []campaigns.Outgoing) ([]campaigns.Outcome, error) {
	batch := make([]wire.Message, len(msgs))
	for i, m := range msgs {
		w := wire.Message{ID: m.ID, IdempotencyKey: m.IdempotencyKey, ContactID: m.ContactID, To: m.To}
		for _, f := range m.Fields {
			w.Fields = append(w.Fields, wire.Pair{Key: f.Name, Value: f.Value})
		}
		for _, h := range m.Headers {
			w.Headers = append(w.Headers, wire.Pair{Key: h.Name, Value: h.Value})
		}
		sortPairs(w.Fields)
		sortPairs(w.Headers)
		batch[i] = w
	}
	results, err := c.M.Send(ctx, ws, channel, now, batch)
	var partial *PartialError
	if err != nil && !errors.As(err, &partial) {
		return nil, err
	}
	out := make([]campaigns.Outcome, len(results))
	for i, r := range results {
		o := campaigns.Outcome{ProviderID: r.ProviderID, Error: r.Error, RetryAfter: time.Duration(r.RetryAfterMillis) * time.Millisecond,
			Units: int(r.Units)}
		switch r.Status {
		case wire.StatusDelivered:
			o.Status = campaigns.Delivered
		case wire.StatusAccepted:
			o.Status = campaigns.Accepted
		case wire.StatusFailed:
			o.Status = campaigns.Refused
		default:
			o.Status = campaigns.Retry
		}
		out[i] = o
	}
	if partial != nil {
		return out, &campaigns.PartialError{Err: partial.Err}
	}
	return out, nil
}

// CampaignFeedback hands the delivery feedback channels find in their webhooks to the campaign engine (admin's
// HookEvents).
type CampaignFeedback struct{ S *campaigns.Service }

// HookEvents passes a webhook's channel events on; track events (connectors') are not the campaign engine's.
func (f CampaignFeedback) HookEvents(ctx context.Context, workspace, plugin string, reply HookReply) error {
	if len(reply.ChannelEvents) == 0 {
		return nil
	}
	events := make([]campaigns.Feedback, len(reply.ChannelEvents))
	for i, e := range reply.ChannelEvents {
		events[i] = campaigns.Feedback{Type: e.Type.String(), MessageID: e.MessageID, Address: e.Address, Permanent: e.Permanent, Detail: e.Detail}
	}
	return f.S.Feedback(ctx, workspace, plugin, events)
}
