package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/gofiber/fiber/v2"
)

// Hooks hands providers' webhooks to the plugins that understand them.
type Hooks interface {
	Hook(ctx context.Context, workspace, name string, req wire.HookRequest) (manager.HookReply, error)
}

// HookEvents receives the events plugins found in webhooks: delivery receipts, bounces, complaints and replies
// for the campaign engine, tracking events for the event store.
type HookEvents interface {
	HookEvents(ctx context.Context, workspace, plugin string, reply manager.HookReply) error
}

// hopHeaders are reply headers a plugin may not set: the server owns the connection and the framing.
var hopHeaders = map[string]bool{
	"Connection": true, "Content-Length": true, "Keep-Alive": true, "Transfer-Encoding": true, "Upgrade": true,
	"Trailer": true, "Te": true, "Proxy-Connection": true,
}

// hook serves /hooks/{workspace}/{plugin}: no API token (providers cannot send one); the plugin authenticates the
// request (signatures, shared secrets) and answers the provider. An unknown workspace or plugin, or a plugin that
// takes no webhooks, is 404; a plugin that fails or is quarantined is 503, so providers deliver again later.
func (s *Server) hook(c *fiber.Ctx) error {
	ws, name := c.Params("workspace"), c.Params("plugin")
	if _, err := s.deps.Workspaces.Get(c.UserContext(), ws); err != nil {
		return err
	}
	uri := c.Request().URI()
	req := wire.HookRequest{
		NowUnixMilli: time.Now().UnixMilli(),
		Method:       c.Method(),
		Path:         string(uri.PathOriginal()),
		RawQuery:     string(uri.QueryString()),
		Body:         c.Body(),
		RemoteAddr:   c.Context().RemoteAddr().String(),
	}
	if i := strings.IndexByte(req.Path, '?'); i >= 0 {
		req.Path = req.Path[:i]
	}
	headers := map[string]string{}
	c.Request().Header.VisitAll(func(k, v []byte) {
		key := http.CanonicalHeaderKey(string(k))
		if prev, ok := headers[key]; ok {
			headers[key] = prev + ", " + string(v)
			return
		}
		headers[key] = string(v)
	})
	req.Headers = wire.PairsOf(headers)
	reply, err := s.deps.Hooks.Hook(c.UserContext(), ws, name, req)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		return fmt.Errorf("no webhook here: the workspace, or a plugin of it that takes webhooks, does not exist: %w", errs.ErrNotFound)
	case err != nil:
		s.log.Warn("webhook failed in its plugin", "workspace", ws, "plugin", name, "error", err)
		return fmt.Errorf("the plugin could not handle this webhook now; deliver it again later: %w", errs.ErrUnavailable)
	}
	for _, e := range reply.ChannelEvents {
		s.hookEvents.With(name, e.Type.String()).Inc()
	}
	for _, e := range reply.TrackEvents {
		s.hookEvents.With(name, string(e.Type)).Inc()
	}
	if len(reply.TrackEvents) > 0 && s.deps.Contacts != nil {
		if err := s.keepTrackEvents(c, ws, name, reply.TrackEvents); err != nil {
			s.log.Warn("storing a connector's tracking events failed", "workspace", ws, "plugin", name, "error", err)
			return fmt.Errorf("the events of this webhook could not be stored; deliver it again later: %w", errs.ErrUnavailable)
		}
	}
	if s.deps.HookEvents != nil && (len(reply.ChannelEvents) > 0 || len(reply.TrackEvents) > 0) {
		if err := s.deps.HookEvents.HookEvents(c.UserContext(), ws, name, reply); err != nil {
			s.log.Warn("keeping webhook events failed", "workspace", ws, "plugin", name, "error", err)
			return fmt.Errorf("the events of this webhook could not be kept; deliver it again later: %w", errs.ErrUnavailable)
		}
	}
	for _, h := range reply.Headers {
		if !hopHeaders[http.CanonicalHeaderKey(h.Key)] {
			c.Set(h.Key, h.Value)
		}
	}
	return c.Status(int(reply.Status)).Send(reply.Body)
}

// keepTrackEvents stores the tracking events a connector plugin found in a webhook exactly as the tracking API
// stores Segment calls: each is written as the Segment message it stands for and goes through the same parser
// (validation, limits, clock handling), then the same ingestion (the workspace's IP setting, deduplication by
// message id, identity resolution, one durable group commit). An event the plugin got wrong is dropped and logged:
// the provider is not at fault, and refusing the webhook would only make it deliver the same thing again.
func (s *Server) keepTrackEvents(c *fiber.Ctx, ws, plugin string, evs []wire.TrackEvent) error {
	receivedAt := time.Now().UTC()
	ms := make([]events.Message, 0, len(evs))
	for i, e := range evs {
		body, err := segmentMessage(e)
		if err == nil {
			var b events.Batch
			if b, err = events.ParseMessage(body, events.Type(e.Type), receivedAt); err == nil {
				ms = append(ms, b.Messages...)
				continue
			}
		}
		s.hookDropped.With(plugin).Inc()
		s.log.Warn("dropping a connector event that is not a valid tracking call", "workspace", ws, "plugin", plugin,
			"index", i, "error", err)
	}
	if len(ms) == 0 || s.tracking == nil {
		return nil
	}
	return s.tracking.ingest(c.UserContext(), requestID(c), ws, ms, "")
}

// segmentMessage writes a connector's event as the Segment call it stands for.
func segmentMessage(e wire.TrackEvent) ([]byte, error) {
	m := map[string]any{"type": string(e.Type), "messageId": e.MessageID}
	if e.UserID != "" {
		m["userId"] = e.UserID
	}
	if e.AnonymousID != "" {
		m["anonymousId"] = e.AnonymousID
	}
	if e.TimestampUnixMilli != 0 {
		m["timestamp"] = time.UnixMilli(e.TimestampUnixMilli).UTC().Format(time.RFC3339Nano)
	}
	if e.Event != "" {
		switch e.Type {
		case wire.TrackTypeTrack:
			m["event"] = e.Event
		case wire.TrackTypePage, wire.TrackTypeScreen:
			m["name"] = e.Event
		case wire.TrackTypeGroup:
			m["groupId"] = e.Event
		case wire.TrackTypeAlias:
			m["previousId"] = e.Event
		}
	}
	for k, raw := range map[string][]byte{"properties": e.Properties, "traits": e.Traits, "context": e.Context} {
		if len(raw) > 0 {
			m[k] = json.RawMessage(raw)
		}
	}
	return json.Marshal(m)
}
