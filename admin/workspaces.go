package admin

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/gofiber/fiber/v2"
)

// list is the shape of every list response.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, Next: next}
}

// pageParams reads ?cursor= and ?limit= (default 50, at most 1000).
func pageParams(c *fiber.Ctx) (string, int, error) {
	limit := 50
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 1000 {
			return "", 0, errs.Invalid("limit", "%q must be a whole number between 1 and 1000", raw)
		}
		limit = n
	}
	return c.Query("cursor"), limit, nil
}

func (s *Server) whoami(c *fiber.Ctx) error {
	return c.JSON(principal(c))
}

func (s *Server) listWorkspaces(c *fiber.Ctx) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	p := principal(c)
	if p.Workspace != "" {
		// A scoped token sees exactly its workspace.
		var items []workspaces.Workspace
		if cursor < p.Workspace {
			w, err := s.deps.Workspaces.Get(c.UserContext(), p.Workspace)
			if err != nil {
				return err
			}
			items = append(items, w)
		}
		return c.JSON(newList(items, ""))
	}
	items, next, err := s.deps.Workspaces.List(c.UserContext(), cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, next))
}

func (s *Server) createWorkspace(c *fiber.Ctx) error {
	if err := principal(c).Require(auth.RoleOwner, ""); err != nil {
		return err
	}
	var in workspaces.CreateInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	w, err := s.deps.Workspaces.Create(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(w)
}

// visibleWorkspace checks the caller's right on the :id workspace. A caller scoped to another workspace gets 404,
// not 403, so that workspace ids do not leak across clients.
func (s *Server) visibleWorkspace(c *fiber.Ctx, min auth.Role) (string, error) {
	// A copy: fiber's params point into a request buffer it reuses, and services keep the workspace id beyond the
	// request (segment transitions recorded behind, campaign runners, trigger queues).
	id := strings.Clone(c.Params("id"))
	p := principal(c)
	if p.Workspace != "" && p.Workspace != id {
		return "", fmt.Errorf("workspace %q: %w", id, errs.ErrNotFound)
	}
	return id, p.Require(min, id)
}

func (s *Server) getWorkspace(c *fiber.Ctx) error {
	id, err := s.visibleWorkspace(c, auth.RoleViewer)
	if err != nil {
		return err
	}
	w, err := s.deps.Workspaces.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(w)
}

func (s *Server) updateWorkspace(c *fiber.Ctx) error {
	id, err := s.visibleWorkspace(c, auth.RoleAdmin)
	if err != nil {
		return err
	}
	var in workspaces.UpdateInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	w, err := s.deps.Workspaces.Update(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(w)
}

func (s *Server) rotateWriteKey(c *fiber.Ctx) error {
	id, err := s.visibleWorkspace(c, auth.RoleAdmin)
	if err != nil {
		return err
	}
	w, err := s.deps.Workspaces.RotateWriteKey(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(w)
}

func (s *Server) deleteWorkspace(c *fiber.Ctx) error {
	if err := principal(c).Require(auth.RoleOwner, ""); err != nil {
		return err
	}
	if err := s.deps.Workspaces.Delete(c.UserContext(), c.Params("id"), c.Query("confirm")); err != nil {
		return err
	}
	if s.deps.Segments != nil {
		// A workspace created again under the same id must not find the old one's index.
		s.deps.Segments.Forget(c.Params("id"))
	}
	return c.SendStatus(http.StatusNoContent)
}
