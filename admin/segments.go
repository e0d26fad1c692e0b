package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/crosscast/crosscast/core/auth"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) segmentRoutes(api fiber.Router) {
	api.Post("/workspaces/:id/segments/preview", s.previewSegment)
	api.Get("/workspaces/:id/segments", s.listSegments)
	api.Post("/workspaces/:id/segments", s.createSegment)
	api.Get("/workspaces/:id/segments/:segment", s.getSegment)
	api.Patch("/workspaces/:id/segments/:segment", s.updateSegment)
	api.Delete("/workspaces/:id/segments/:segment", s.deleteSegment)
	api.Get("/workspaces/:id/segments/:segment/members", s.segmentMembers)
	api.Post("/workspaces/:id/segments/:segment/members", s.addMembers)
	api.Delete("/workspaces/:id/segments/:segment/members", s.removeMembers)
	api.Post("/workspaces/:id/segments/:segment/members/import", s.importMembers)
	api.Get("/workspaces/:id/contacts/:contact/segments", s.contactSegments)
	api.Get("/workspaces/:id/contacts/:contact/segment-history", s.segmentHistory)
}

func (s *Server) addMembers(c *fiber.Ctx) error    { return s.editMembers(c, true) }
func (s *Server) removeMembers(c *fiber.Ctx) error { return s.editMembers(c, false) }

// editMembers adds contacts to, or removes them from, a static list: {"contacts":[ids]} and/or {"emails":[...]}.
func (s *Server) editMembers(c *fiber.Ctx, add bool) error {
	ws, svc, err := s.segmentScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in segments.MemberInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := svc.EditMembers(c.UserContext(), ws, c.Params("segment"), in, add)
	if err != nil {
		return err
	}
	if res.NotFound == nil {
		res.NotFound = []string{}
	}
	return c.JSON(res)
}

// importMembers adds (or, with ?remove=true, removes) the contacts of a CSV file to a static list.
func (s *Server) importMembers(c *fiber.Ctx) error {
	ws, svc, err := s.segmentScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	add := c.Query("remove") != "true"
	res, err := svc.ImportMembers(c.UserContext(), ws, c.Params("segment"), bytes.NewReader(c.Body()), add)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

// segmentHistory lists a contact's segment entries and exits, newest first.
func (s *Server) segmentHistory(c *fiber.Ctx) error {
	p, svc, err := s.segmentPage(c)
	if err != nil {
		return err
	}
	items, next, err := svc.History(c.UserContext(), p.ws, c.Params("contact"), p.cursor, p.limit)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, next))
}

// segmentsService answers 503 when the server runs without segments (tests of other features).
func (s *Server) segmentsService() (*segments.Service, error) {
	if s.deps.Segments == nil {
		return nil, fmt.Errorf("segments are not served by this server: %w", errs.ErrUnavailable)
	}
	return s.deps.Segments, nil
}

// segmentScope is the workspace of the URL (checked for role min) and the segments service.
func (s *Server) segmentScope(c *fiber.Ctx, min auth.Role) (string, *segments.Service, error) {
	svc, err := s.segmentsService()
	if err != nil {
		return "", nil, err
	}
	ws, err := s.existingWorkspace(c, min)
	return ws, svc, err
}

// segmentPage is a paged, masked read of contacts (contactPage) through the segments service.
func (s *Server) segmentPage(c *fiber.Ctx) (contactPage, *segments.Service, error) {
	svc, err := s.segmentsService()
	if err != nil {
		return contactPage{}, nil, err
	}
	p, err := s.contactPage(c)
	return p, svc, err
}

func (s *Server) listSegments(c *fiber.Ctx) error {
	ws, svc, err := s.segmentScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	items, err := svc.List(c.UserContext(), ws)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, ""))
}

func (s *Server) createSegment(c *fiber.Ctx) error {
	ws, svc, err := s.segmentScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in segments.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	seg, err := svc.Create(c.UserContext(), ws, in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(seg)
}

func (s *Server) getSegment(c *fiber.Ctx) error {
	ws, svc, err := s.segmentScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	seg, err := svc.Get(c.UserContext(), ws, c.Params("segment"))
	if err != nil {
		return err
	}
	return c.JSON(seg)
}

func (s *Server) updateSegment(c *fiber.Ctx) error {
	ws, svc, err := s.segmentScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in segments.Input
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	seg, err := svc.Update(c.UserContext(), ws, c.Params("segment"), in)
	if err != nil {
		return err
	}
	return c.JSON(seg)
}

func (s *Server) deleteSegment(c *fiber.Ctx) error {
	ws, svc, err := s.segmentScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	if err := svc.Delete(c.UserContext(), ws, c.Params("segment")); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (s *Server) segmentMembers(c *fiber.Ctx) error {
	p, svc, err := s.segmentPage(c)
	if err != nil {
		return err
	}
	items, next, err := svc.Members(c.UserContext(), p.ws, c.Params("segment"), p.cursor, p.limit)
	if err != nil {
		return err
	}
	for i := range items {
		items[i] = p.mask(items[i])
	}
	return c.JSON(newList(items, next))
}

func (s *Server) contactSegments(c *fiber.Ctx) error {
	ws, svc, err := s.segmentScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	items, err := svc.OfContact(c.UserContext(), ws, c.Params("contact"))
	if err != nil {
		return err
	}
	return c.JSON(newList(items, ""))
}

// previewInput is a rule to evaluate without saving it: text, or the JSON form of its tree.
type previewInput struct {
	Rule   json.RawMessage `json:"rule"`
	Sample *int            `json:"sample"`
}

// previewSegment counts the contacts a rule matches now and returns a sample (masked for roles without PII).
func (s *Server) previewSegment(c *fiber.Ctx) error {
	p, svc, err := s.segmentPage(c)
	if err != nil {
		return err
	}
	var in previewInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	sample := 10
	if in.Sample != nil {
		if *in.Sample < 0 || *in.Sample > 100 {
			return errs.Invalid("sample", "must be between 0 and 100")
		}
		sample = *in.Sample
	}
	n, err := svc.ParseRule(c.UserContext(), p.ws, in.Rule)
	if err != nil {
		return err
	}
	out, err := svc.Preview(c.UserContext(), p.ws, n, sample)
	if err != nil {
		return err
	}
	for i := range out.Sample {
		out.Sample[i] = p.mask(out.Sample[i])
	}
	return c.JSON(out)
}
