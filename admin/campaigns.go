package admin

import (
	"context"
	"fmt"
	"strings"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) campaignRoutes(api fiber.Router) {
	api.Get("/workspaces/:id/campaigns", s.listCampaigns)
	api.Post("/workspaces/:id/campaigns", s.createCampaign)
	api.Get("/workspaces/:id/campaigns/:campaign", s.getCampaign)
	api.Patch("/workspaces/:id/campaigns/:campaign", s.updateCampaign)
	api.Delete("/workspaces/:id/campaigns/:campaign", s.deleteCampaign)
	api.Post("/workspaces/:id/campaigns/:campaign/launch", s.campaignAction((*campaigns.Service).Launch))
	api.Post("/workspaces/:id/campaigns/:campaign/pause", s.campaignAction((*campaigns.Service).Pause))
	api.Post("/workspaces/:id/campaigns/:campaign/resume", s.campaignAction((*campaigns.Service).Resume))
	api.Post("/workspaces/:id/campaigns/:campaign/cancel", s.campaignAction((*campaigns.Service).Cancel))
	api.Post("/workspaces/:id/campaigns/:campaign/preview", s.previewCampaign)
	api.Post("/workspaces/:id/campaigns/:campaign/test", s.testCampaign)
	api.Get("/workspaces/:id/campaigns/:campaign/messages", s.campaignMessages)
	api.Get("/workspaces/:id/campaigns/:campaign/audit", s.campaignAudit)
	api.Get("/workspaces/:id/campaigns/:campaign/stats", s.campaignStats)
}

// campaignScope is the workspace of the URL (checked for role min) and the campaigns service.
func (s *Server) campaignScope(c *fiber.Ctx, min auth.Role) (string, *campaigns.Service, error) {
	if s.deps.Campaigns == nil {
		return "", nil, fmt.Errorf("campaigns are not served by this server: %w", errs.ErrUnavailable)
	}
	ws, err := s.existingWorkspace(c, min)
	return ws, s.deps.Campaigns, err
}

// actor names who made a change in a campaign's audit trail: the API token.
func actor(c *fiber.Ctx) string {
	if id := principal(c).TokenID; id != "" {
		return "token " + id
	}
	return "api"
}

func (s *Server) listCampaigns(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	items, err := svc.List(c.UserContext(), ws)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, ""))
}

func (s *Server) createCampaign(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in campaigns.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := svc.Create(c.UserContext(), ws, in, actor(c))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (s *Server) getCampaign(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	v, err := svc.Get(c.UserContext(), ws, c.Params("campaign"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) updateCampaign(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in campaigns.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := svc.Update(c.UserContext(), ws, c.Params("campaign"), in, actor(c))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (s *Server) deleteCampaign(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	if err := svc.Delete(c.UserContext(), ws, c.Params("campaign")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// campaignAction serves launch, pause, resume and cancel: each idempotent, each answering the campaign.
func (s *Server) campaignAction(do func(*campaigns.Service, context.Context, string, string, string) (campaigns.View, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ws, svc, err := s.campaignScope(c, auth.RoleEditor)
		if err != nil {
			return err
		}
		v, err := do(svc, c.UserContext(), ws, c.Params("campaign"), actor(c))
		if err != nil {
			return err
		}
		return c.JSON(v)
	}
}

// previewCampaign renders each channel's message for a contact: {"contact_id"}. Rendering shows the contact's
// data, so it needs PII access.
func (s *Server) previewCampaign(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	if !principal(c).SeesPII() {
		return fmt.Errorf("previewing a message shows a contact's data: this token has no PII access: %w", errs.ErrForbidden)
	}
	var in struct {
		ContactID string `json:"contact_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := svc.Preview(c.UserContext(), ws, c.Params("campaign"), in.ContactID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"messages": out})
}

// testCampaign sends the campaign's message now to an address: {"to", "contact_id"?, "channel"?}.
func (s *Server) testCampaign(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in campaigns.TestInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.ContactID != "" && !principal(c).SeesPII() {
		return fmt.Errorf("a test with a contact's data needs PII access: %w", errs.ErrForbidden)
	}
	out, err := svc.Test(c.UserContext(), ws, c.Params("campaign"), in)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"messages": out})
}

// campaignMessages pages through a campaign's outbox: ?status=&cursor=&limit=.
func (s *Server) campaignMessages(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := svc.Messages(c.UserContext(), ws, c.Params("campaign"), campaigns.MessageStatus(strings.ToLower(c.Query("status"))), cursor, limit)
	if err != nil {
		return err
	}
	type item struct {
		ID string `json:"id"`
		campaigns.Message
	}
	// Addresses are masked as the workspace masks contacts' emails and phones for this token.
	mask := func(ct contacts.Contact) contacts.Contact { return ct }
	if s.deps.Contacts != nil {
		if mask, _, err = s.masker(c, s.deps.Contacts, ws); err != nil {
			return err
		}
	}
	out := make([]item, len(items))
	for i, m := range items {
		if strings.Contains(m.To, "@") {
			m.To = mask(contacts.Contact{Email: m.To}).Email
		} else {
			m.To = mask(contacts.Contact{Phone: m.To}).Phone
		}
		out[i] = item{m.ID(), m}
	}
	return c.JSON(newList(out, next))
}

func (s *Server) campaignAudit(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	items, err := svc.Audit(c.UserContext(), ws, c.Params("campaign"))
	if err != nil {
		return err
	}
	return c.JSON(newList(items, ""))
}

// campaignStats answers a campaign's results: totals with rates, by A/B variant (with the winner and whether its
// lead is significant), by channel.
func (s *Server) campaignStats(c *fiber.Ctx) error {
	ws, svc, err := s.campaignScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	st, err := svc.Stats(c.UserContext(), ws, c.Params("campaign"))
	if err != nil {
		return err
	}
	return c.JSON(st)
}
