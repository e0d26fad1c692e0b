package admin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/gofiber/fiber/v2"
)

// WriteKeys finds the workspace a tracking write key belongs to (errs.ErrNotFound for none).
type WriteKeys interface {
	WorkspaceByWriteKey(ctx context.Context, key string) (string, error)
}

// trackingCalls are the single-call endpoints of the Segment HTTP Tracking API, under the names the Segment
// libraries use: the full ones (the HTTP API, server libraries) and analytics.js's one-letter ones (its segmentio
// plugin posts to {apiHost}/{first letter of the type}, apiHost being "api.segment.io/v1").
var trackingCalls = []struct {
	typ   events.Type
	paths []string
}{
	{events.Identify, []string{"/v1/identify", "/v1/i"}},
	{events.Track, []string{"/v1/track", "/v1/t"}},
	{events.Page, []string{"/v1/page", "/v1/p"}},
	{events.Screen, []string{"/v1/screen", "/v1/s"}},
	{events.Group, []string{"/v1/group", "/v1/g"}},
	{events.Alias, []string{"/v1/alias", "/v1/a"}},
}

// trackingBatchPaths take batches: /v1/batch (the HTTP API, analytics-node, analytics-python...) and /v1/b
// (analytics.js in batching mode, analytics-swift, analytics-kotlin).
var trackingBatchPaths = []string{"/v1/batch", "/v1/b"}

// trackingPreflightMaxAge is how long browsers may cache a CORS preflight answer (Chromium caps it at 2 hours).
const trackingPreflightMaxAge = 24 * time.Hour

// tracking serves the Segment-compatible tracking API: unmodified Segment clients send here by changing only their
// host. docs/tracking.md describes it for operators and developers.
type tracking struct {
	s          *Server
	events     *metrics.CounterVec
	duplicates *metrics.Counter
}

func (s *Server) trackingRoutes(app *fiber.App) {
	t := &tracking{
		s: s,
		events: s.deps.Metrics.Counter("crosscast_tracking_events_total",
			"Events accepted by the tracking API, by type (duplicates included).", "type"),
		duplicates: s.deps.Metrics.Counter("crosscast_tracking_duplicates_total",
			"Events the tracking API accepted but did not store again: their messageId was already stored.").With(),
	}
	s.tracking = t
	for _, call := range trackingCalls {
		typ := call.typ
		handler := func(c *fiber.Ctx) error { return t.serve(c, typ) }
		for _, path := range call.paths {
			app.Options(path, t.preflight)
			app.Post(path, t.cors, handler)
		}
	}
	for _, path := range trackingBatchPaths {
		app.Options(path, t.preflight)
		app.Post(path, t.cors, func(c *fiber.Ctx) error { return t.serve(c, "") })
	}
}

// cors lets browsers read the answer of a cross-origin call (analytics.js on the customer's site). The write key is
// public and no cookie is involved, so any origin may call.
func (t *tracking) cors(c *fiber.Ctx) error {
	c.Vary(fiber.HeaderOrigin)
	if origin := c.Get(fiber.HeaderOrigin); origin != "" {
		c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	}
	return c.Next()
}

// preflight answers a browser's CORS preflight (sent when a page posts JSON or an Authorization header).
func (t *tracking) preflight(c *fiber.Ctx) error {
	c.Vary(fiber.HeaderOrigin, fiber.HeaderAccessControlRequestMethod, fiber.HeaderAccessControlRequestHeaders)
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" {
		origin = "*"
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, origin)
	c.Set(fiber.HeaderAccessControlAllowMethods, "POST, OPTIONS")
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type, Authorization")
	c.Set(fiber.HeaderAccessControlMaxAge, strconv.Itoa(int(trackingPreflightMaxAge/time.Second)))
	c.Set(fiber.HeaderAllow, "POST, OPTIONS")
	return c.SendStatus(fiber.StatusNoContent)
}

// serve handles one call of type typ, or a batch when typ is "". The order of checks: the body's size (413), the
// Basic auth key when sent (401), the JSON (400), the body's writeKey when no Basic auth was sent (401), then every
// field (400). Only then are the events stored, in one durable group commit, and {"success":true} answered.
func (t *tracking) serve(c *fiber.Ctx, typ events.Type) error {
	receivedAt := time.Now().UTC()
	ctx := c.UserContext()
	limit, what := events.MaxEventBytes, "an event"
	if typ == "" {
		limit, what = events.MaxBatchBytes, "a batch"
	}
	body, err := trackingBody(c, limit, what)
	if err != nil {
		return err
	}
	key, fromHeader := basicUser(c.Get(fiber.HeaderAuthorization))
	var ws string
	if fromHeader {
		if ws, err = t.workspace(ctx, key); err != nil {
			return err
		}
	}
	var b events.Batch
	if typ == "" {
		b, err = events.ParseBatch(body, receivedAt)
	} else {
		b, err = events.ParseMessage(body, typ, receivedAt)
	}
	var (
		syn *events.SyntaxError
		tl  *events.TooLargeError
	)
	switch {
	case errors.As(err, &syn):
		return &malformedJSON{msg: syn.Msg, details: position(body, syn.Offset)}
	case errors.As(err, &tl):
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, tl.Error())
	}
	if !fromHeader {
		if b.WriteKey == "" {
			return fmt.Errorf("no write key: send it as the username of Basic auth or as writeKey in the body: %w", errs.ErrUnauthorized)
		}
		var aerr error
		if ws, aerr = t.workspace(ctx, b.WriteKey); aerr != nil {
			return aerr
		}
	}
	if err != nil {
		return err
	}
	if len(b.Messages) > 0 {
		if err := t.ingest(ctx, requestID(c), ws, b.Messages, c.IP()); err != nil {
			return err
		}
	}
	if len(b.Warnings) > 0 {
		return c.JSON(fiber.Map{"success": true, "warnings": b.Warnings})
	}
	return c.JSON(fiber.Map{"success": true})
}

// ingest applies the workspace's IP setting to each message (peer is the sender's address, used when a message
// names none) and stores them all in one durable group commit.
func (t *tracking) ingest(ctx context.Context, reqID, ws string, ms []events.Message, peer string) error {
	st, err := t.s.deps.Contacts.Settings(ctx, ws)
	if err != nil {
		return err
	}
	in := make([]contacts.Incoming, len(ms))
	for i := range ms {
		m := &ms[i]
		ip := m.IP
		if ip == "" {
			ip = peer
		}
		switch st.IP {
		case contacts.IPAnonymize:
			ip = events.AnonymizeIP(ip)
		case contacts.IPDrop:
			ip = ""
		}
		m.SetIP(ip)
		in[i] = contacts.Incoming{Event: m.Event, Traits: m.Traits, Timezone: m.Timezone, Locale: m.Locale}
	}
	res, err := t.s.deps.Contacts.Ingest(ctx, ws, in)
	if err != nil {
		return err
	}
	for i := range ms {
		t.events.With(string(ms[i].Event.Type)).Inc()
	}
	if res.Duplicates > 0 {
		t.duplicates.Add(float64(res.Duplicates))
	}
	if len(res.Warnings) > 0 {
		// Warnings can name identifiers: debug level only, and never echoed to the caller (a write key is public,
		// and "this email is suppressed" is not the sender's business).
		t.s.log.Debug("tracking events stored with warnings", "request_id", reqID, "workspace", ws,
			"warnings", len(res.Warnings), "first", res.Warnings[0])
	}
	return nil
}

// workspace returns the workspace of a write key, or errs.ErrUnauthorized.
func (t *tracking) workspace(ctx context.Context, key string) (string, error) {
	if workspaces.ValidateWriteKey(key) != nil {
		return "", fmt.Errorf("not a write key: %w", errs.ErrUnauthorized)
	}
	ws, err := t.s.deps.WriteKeys.WorkspaceByWriteKey(ctx, key)
	if errors.Is(err, errs.ErrNotFound) {
		return "", fmt.Errorf("unknown write key: %w", errs.ErrUnauthorized)
	}
	if err != nil {
		return "", fmt.Errorf("finding the write key's workspace: %w", err)
	}
	return ws, nil
}

// basicUser returns the username of a Basic Authorization header: Segment's write key, the password being empty.
// ok is false when the header is absent or another scheme (a Bearer token is Segment's OAuth, with the write key in
// the body). A Basic header without a colon is taken whole, as Segment still accepts.
func basicUser(header string) (user string, ok bool) {
	scheme, creds, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	creds = strings.TrimSpace(creds)
	raw, err := base64.StdEncoding.DecodeString(creds)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(creds); err != nil {
			return "", true // sent but unreadable: refused as a wrong key
		}
	}
	user, _, _ = strings.Cut(string(raw), ":")
	return user, true
}

// trackingBody returns the request body with any gzip encoding undone (analytics-ios and analytics-python can
// compress), refusing with 413 what exceeds limit either way.
func trackingBody(c *fiber.Ctx, limit int, what string) ([]byte, error) {
	raw := c.Request().Body()
	if len(raw) > limit {
		return nil, fiber.NewError(fiber.StatusRequestEntityTooLarge, (&events.TooLargeError{Size: len(raw), Limit: limit, What: what}).Error())
	}
	switch enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding))); enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, &malformedJSON{msg: "request body is not valid gzip: " + err.Error()}
		}
		// Read one byte past the limit to tell "at the limit" from "over it" without inflating a gzip bomb.
		data, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
		if len(data) > limit {
			return nil, fiber.NewError(fiber.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body is over %d bytes once decompressed; %s may be at most %d bytes (%d KB)", limit, what, limit, limit>>10))
		}
		if err != nil {
			return nil, &malformedJSON{msg: "request body is not valid gzip: " + err.Error()}
		}
		return data, nil
	default:
		return nil, fiber.NewError(fiber.StatusUnsupportedMediaType, fmt.Sprintf("Content-Encoding %q is not supported; send the body as is or gzip it", enc))
	}
}
