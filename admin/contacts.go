package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/events"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) contactRoutes(api fiber.Router) {
	api.Get("/workspaces/:id/contacts", s.listContacts)
	api.Post("/workspaces/:id/contacts", s.upsertContact)
	api.Get("/workspaces/:id/contacts/:contact", s.getContact)
	api.Patch("/workspaces/:id/contacts/:contact", s.patchContact)
	api.Delete("/workspaces/:id/contacts/:contact", s.deleteContact)
	api.Get("/workspaces/:id/contacts/:contact/events", s.contactEvents)
	api.Post("/workspaces/:id/contacts/:contact/tags", s.tagContact)
	api.Put("/workspaces/:id/contacts/:contact/consent/:channel", s.setConsent)
	api.Get("/workspaces/:id/contacts/:contact/gdpr-export", s.gdprExport)
	api.Get("/workspaces/:id/audit", s.auditLog)
}

// auditLog lists the workspace's audit log: merges, deletions and erasures, by contact id and token.
func (s *Server) auditLog(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleAdmin)
	if err != nil {
		return err
	}
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := svc.AuditLog(c.UserContext(), ws, cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, next))
}

// contactsService answers 503 when the server runs without contacts (tests of other features).
func (s *Server) contactsService() (*contacts.Service, error) {
	if s.deps.Contacts == nil {
		return nil, fmt.Errorf("contacts are not served by this server: %w", errs.ErrUnavailable)
	}
	return s.deps.Contacts, nil
}

// contactScope is the workspace of the URL, checked for role min and existing, and the contacts service.
func (s *Server) contactScope(c *fiber.Ctx, min auth.Role) (string, *contacts.Service, error) {
	svc, err := s.contactsService()
	if err != nil {
		return "", nil, err
	}
	ws, err := s.existingWorkspace(c, min)
	if err != nil {
		return "", nil, err
	}
	return ws, svc, nil
}

// masker returns how to show contacts to the caller: unchanged for roles that see PII, masked per the workspace's
// PII setting otherwise.
func (s *Server) masker(c *fiber.Ctx, svc *contacts.Service, ws string) (func(contacts.Contact) contacts.Contact, []string, error) {
	if principal(c).SeesPII() {
		return func(ct contacts.Contact) contacts.Contact { return ct }, nil, nil
	}
	st, err := svc.Settings(c.UserContext(), ws)
	if err != nil {
		return nil, nil, err
	}
	return func(ct contacts.Contact) contacts.Contact { return contacts.Mask(ct, st.PII) }, st.PII, nil
}

// contactPage is what a paged read of a workspace's contacts or events needs: the workspace (viewer role), the
// service, the page asked for, and how to mask for the caller (pii is nil for callers who see everything).
type contactPage struct {
	ws     string
	svc    *contacts.Service
	cursor string
	limit  int
	mask   func(contacts.Contact) contacts.Contact
	pii    []string
}

func (s *Server) contactPage(c *fiber.Ctx) (contactPage, error) {
	var p contactPage
	var err error
	if p.ws, p.svc, err = s.contactScope(c, auth.RoleViewer); err != nil {
		return p, err
	}
	if p.cursor, p.limit, err = pageParams(c); err != nil {
		return p, err
	}
	p.mask, p.pii, err = s.masker(c, p.svc, p.ws)
	return p, err
}

func (s *Server) listContacts(c *fiber.Ctx) error {
	p, err := s.contactPage(c)
	if err != nil {
		return err
	}
	// A caller who sees PII masked must not recover it by searching: a substring search, or an exact filter on a
	// masked field, would answer "yes" or "no" about the hidden value.
	if p.pii != nil {
		if c.Query("q") != "" {
			return fmt.Errorf("searching with q needs a role that sees personal data (editor or above): %w", errs.ErrForbidden)
		}
		for _, f := range []string{"email", "phone", "user_id"} {
			if c.Query(f) != "" && slices.Contains(p.pii, f) {
				return fmt.Errorf("filtering on %s, which this workspace masks for your role, needs editor or above: %w", f, errs.ErrForbidden)
			}
		}
	}
	items, next, err := p.svc.List(c.UserContext(), p.ws, contacts.Filter{
		Email: c.Query("email"), Phone: c.Query("phone"), UserID: c.Query("user_id"), Q: c.Query("q"),
		Tag: c.Query("tag"), Cursor: p.cursor, Limit: p.limit,
	})
	if err != nil {
		return err
	}
	for i := range items {
		items[i] = p.mask(items[i])
	}
	return c.JSON(newList(items, next))
}

func (s *Server) upsertContact(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in contacts.Fields
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ct, created, err := svc.Upsert(c.UserContext(), ws, in, "api")
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.Status(status).JSON(ct)
}

func (s *Server) getContact(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	mask, _, err := s.masker(c, svc, ws)
	if err != nil {
		return err
	}
	ct, err := svc.Get(c.UserContext(), ws, c.Params("contact"))
	if err != nil {
		return err
	}
	return c.JSON(mask(ct))
}

func (s *Server) patchContact(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in contacts.Fields
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ct, err := svc.Update(c.UserContext(), ws, c.Params("contact"), in, "api")
	if err != nil {
		return err
	}
	return c.JSON(ct)
}

// deleteContact deletes a contact and its events; with ?erase=true it also erases every trace and suppresses its
// email and phone (GDPR right to erasure).
func (s *Server) deleteContact(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	erase := false
	if raw := c.Query("erase"); raw != "" {
		if erase, err = strconv.ParseBool(raw); err != nil {
			return errs.Invalid("erase", "%q must be true or false", raw)
		}
	}
	p := principal(c)
	if err := svc.Delete(c.UserContext(), ws, c.Params("contact"), erase, "token:"+p.TokenID); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (s *Server) contactEvents(c *fiber.Ctx) error {
	p, err := s.contactPage(c)
	if err != nil {
		return err
	}
	items, next, err := p.svc.Events(c.UserContext(), p.ws, c.Params("contact"), p.cursor, p.limit)
	if err != nil {
		return err
	}
	if p.pii != nil {
		for i := range items {
			items[i] = maskEvent(items[i], p.pii)
		}
	}
	return c.JSON(newList(items, next))
}

// maskEvent hides, for callers without PII permission, the traits and properties the workspace marks as PII, and
// the sender's IP address.
func maskEvent(e events.Event, pii []string) events.Event {
	if slices.Contains(pii, "user_id") {
		for _, id := range []*string{&e.UserID, &e.PreviousID} {
			if *id != "" {
				*id = contacts.Masked
			}
		}
	}
	if slices.Contains(pii, "anonymous_id") && e.AnonymousID != "" {
		e.AnonymousID = contacts.Masked
	}
	e.Traits = maskObject(e.Traits, pii)
	e.Properties = maskObject(e.Properties, pii)
	if len(e.Context) > 0 {
		var ctx map[string]json.RawMessage
		if json.Unmarshal(e.Context, &ctx) == nil {
			if _, ok := ctx["ip"]; ok {
				ctx["ip"] = json.RawMessage(`"` + contacts.Masked + `"`)
			}
			if _, ok := ctx["traits"]; ok {
				ctx["traits"] = maskObject(ctx["traits"], pii)
			}
			e.Context, _ = json.Marshal(ctx)
		}
	}
	return e
}

func maskObject(raw json.RawMessage, pii []string) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	changed := false
	for _, name := range pii {
		if _, ok := m[name]; ok {
			m[name] = json.RawMessage(`"` + contacts.Masked + `"`)
			changed = true
		}
	}
	if !changed {
		return raw
	}
	out, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return out
}

// tagInput adds and removes tags; "tags" is a synonym of "add".
type tagInput struct {
	Add    []string `json:"add"`
	Tags   []string `json:"tags"`
	Remove []string `json:"remove"`
}

func (s *Server) tagContact(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in tagInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ct, err := svc.Tag(c.UserContext(), ws, c.Params("contact"), append(in.Add, in.Tags...), in.Remove)
	if err != nil {
		return err
	}
	return c.JSON(ct)
}

type consentInput struct {
	Status contacts.ConsentStatus `json:"status"`
	Source string                 `json:"source"`
}

func (s *Server) setConsent(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	var in consentInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Status == "" {
		return errs.Invalid("status", "is required: subscribed, unsubscribed or unknown")
	}
	if len(in.Source) > 128 {
		return errs.Invalid("source", "must be at most 128 characters")
	}
	ct, err := svc.SetConsent(c.UserContext(), ws, c.Params("contact"), c.Params("channel"), in.Status, in.Source)
	if err != nil {
		return err
	}
	return c.JSON(ct)
}

// gdprExport answers everything stored about one contact, as a download.
func (s *Server) gdprExport(c *fiber.Ctx) error {
	ws, svc, err := s.contactScope(c, auth.RoleEditor)
	if err != nil {
		return err
	}
	doc, err := svc.GDPRExport(c.UserContext(), ws, c.Params("contact"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="contact-%s.json"`, doc.Contact.ID))
	return c.JSON(doc)
}
