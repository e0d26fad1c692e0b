package admin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/gofiber/fiber/v2"
)

// Channels is what the API needs to send through channel plugins.
type Channels interface {
	Send(ctx context.Context, workspace, name string, now time.Time, msgs []wire.Message) ([]wire.Result, error)
}

// Outboxes reads and clears the development outboxes kept by capture channels (their key-value spaces).
type Outboxes interface {
	// Outbox returns up to limit captured messages of the plugin in the workspace, newest first, before the
	// cursor ("" for the newest), and the cursor of the next page ("" at the end).
	Outbox(ctx context.Context, workspace, plugin, cursor string, limit int) ([]json.RawMessage, string, error)
	// ClearOutbox deletes every captured message of the plugin in the workspace.
	ClearOutbox(ctx context.Context, workspace, plugin string) error
}

// testSendInput is a message to send through a channel from the API (Mautic's "send test email").
type testSendInput struct {
	To      string            `json:"to"`
	Fields  map[string]string `json:"fields"`
	Headers map[string]string `json:"headers"`
}

// testSendResult is one message's outcome as the API shows it.
type testSendResult struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	ProviderID      string `json:"provider_id"`
	Error           string `json:"error"`
	RetryAfterMilli uint32 `json:"retry_after_ms"`
}

// testSend sends one message through a channel plugin for the workspace, now, and answers with its result.
func (s *Server) testSend(c *fiber.Ctx) error {
	ws, err := s.existingWorkspace(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in testSendInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.To == "" {
		return errs.Invalid("to", "is required: the address to send the test to")
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	msg := wire.Message{
		ID: "test-" + hex.EncodeToString(id[:]), To: in.To,
		Fields: wire.PairsOf(in.Fields), Headers: wire.PairsOf(in.Headers),
	}
	msg.IdempotencyKey = msg.ID
	results, err := s.deps.Channels.Send(c.UserContext(), ws, c.Params("plugin"), time.Now(), []wire.Message{msg})
	if err != nil {
		return err
	}
	r := results[0]
	return c.JSON(testSendResult{ID: r.ID, Status: r.Status.String(), ProviderID: r.ProviderID, Error: r.Error, RetryAfterMilli: r.RetryAfterMillis})
}

// existingWorkspace is the workspace of the URL, which the caller must see with role min and which must exist.
func (s *Server) existingWorkspace(c *fiber.Ctx, min auth.Role) (string, error) {
	ws, err := s.visibleWorkspace(c, min)
	if err != nil {
		return "", err
	}
	if _, err := s.deps.Workspaces.Get(c.UserContext(), ws); err != nil {
		return "", err
	}
	return ws, nil
}

// outbox is the workspace of the URL (seen with role min) and the capture channel named by ?plugin= (default
// "capture").
func (s *Server) outbox(c *fiber.Ctx, min auth.Role) (ws, plugin string, err error) {
	if ws, err = s.existingWorkspace(c, min); err != nil {
		return "", "", err
	}
	plugin, err = s.outboxPlugin(c.Query("plugin", "capture"))
	return ws, plugin, err
}

// outboxPlugin checks that the plugin name is a capture channel.
func (s *Server) outboxPlugin(name string) (string, error) {
	for _, p := range s.deps.Plugins.List() {
		if p.Name == name {
			if p.ID != "capture" {
				return "", errs.Invalid("plugin", "plugin %q is %q, not a capture channel: it keeps no outbox", name, p.ID)
			}
			return name, nil
		}
	}
	return "", errs.Invalid("plugin", "no plugin named %q: configure a capture channel (source = \"builtin:capture\")", name)
}

// listOutbox shows the messages a capture channel kept for the workspace, newest first.
func (s *Server) listOutbox(c *fiber.Ctx) error {
	ws, plugin, err := s.outbox(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := s.deps.Outboxes.Outbox(c.UserContext(), ws, plugin, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, next))
}

// clearOutbox deletes a capture channel's messages for the workspace.
func (s *Server) clearOutbox(c *fiber.Ctx) error {
	ws, plugin, err := s.outbox(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	if err := s.deps.Outboxes.ClearOutbox(c.UserContext(), ws, plugin); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
