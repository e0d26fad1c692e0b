package manager

import (
	"context"
	"fmt"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/wire"
)

// HookReply is what a plugin made of a request to /hooks/{workspace}/{plugin}: the HTTP reply for the caller and
// the events it found (channel events from a channel's receive, tracking events from a connector's inbound).
type HookReply struct {
	Status        uint32
	Headers       wire.Pairs
	Body          []byte
	ChannelEvents []wire.ChannelEvent
	TrackEvents   []wire.TrackEvent
}

// ErrNoHooks means the plugin takes no webhooks: a scorer, or a channel that does not implement sdk.Receiver.
var ErrNoHooks = fmt.Errorf("plugin takes no webhooks: %w", errs.ErrNotFound)

// Hook hands a webhook request to the plugin name for workspace: a channel's receive or a connector's inbound.
func (m *Manager) Hook(ctx context.Context, workspace, name string, req wire.HookRequest) (HookReply, error) {
	mp, err := m.get(name)
	if err != nil {
		return HookReply{}, err
	}
	man := mp.current.Load().manifest
	var entry uint32
	switch {
	case man.Kind == sdk.KindChannel && man.Receives:
		entry = sdk.EntryReceive
	case man.Kind == sdk.KindConnector:
		entry = sdk.EntryInbound
	default:
		return HookReply{}, fmt.Errorf("plugin %q: %w", name, ErrNoHooks)
	}
	req.Workspace = workspace
	w := wire.NewWriter(nil)
	req.Encode(w)
	out, err := m.Call(capability.WithWorkspace(ctx, workspace), name, entry, w.Bytes())
	if err != nil {
		return HookReply{}, err
	}
	if entry == sdk.EntryReceive {
		resp, err := wire.DecodeReceiveResponse(out)
		if err != nil {
			return HookReply{}, fmt.Errorf("plugin %q answered receive with a malformed response: %w", name, err)
		}
		return HookReply{Status: resp.Status, Headers: resp.Headers, Body: resp.Body, ChannelEvents: resp.Events}, nil
	}
	resp, err := wire.DecodeInboundResponse(out)
	if err != nil {
		return HookReply{}, fmt.Errorf("plugin %q answered inbound with a malformed response: %w", name, err)
	}
	return HookReply{Status: resp.Status, Headers: resp.Headers, Body: resp.Body, TrackEvents: resp.Events}, nil
}
