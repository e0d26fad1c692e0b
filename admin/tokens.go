package admin

import (
	"net/http"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/gofiber/fiber/v2"
)

// issuedToken is the answer to POST /tokens: the only time the secret is shown.
type issuedToken struct {
	Token  auth.Token `json:"token"`
	Secret string     `json:"secret"`
}

func (s *Server) createToken(c *fiber.Ctx) error {
	var in auth.IssueInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	t, secret, err := s.deps.Auth.Issue(c.UserContext(), principal(c), in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(issuedToken{Token: t, Secret: secret})
}

func (s *Server) listTokens(c *fiber.Ctx) error {
	cursor, limit, err := pageParams(c)
	if err != nil {
		return err
	}
	items, next, err := s.deps.Auth.List(c.UserContext(), principal(c), cursor, limit)
	if err != nil {
		return err
	}
	return c.JSON(newList(items, next))
}

func (s *Server) revokeToken(c *fiber.Ctx) error {
	if err := s.deps.Auth.Revoke(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}
