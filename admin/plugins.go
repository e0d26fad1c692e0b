package admin

import (
	"context"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/gofiber/fiber/v2"
)

// Plugins is what the API needs from the plugin manager.
type Plugins interface {
	List() []manager.Info
	Reload(ctx context.Context, name string) (manager.Info, error)
}

// listPlugins shows every plugin's state to server-wide tokens: plugins serve every workspace.
func (s *Server) listPlugins(c *fiber.Ctx) error {
	if err := principal(c).Require(auth.RoleViewer, ""); err != nil {
		return err
	}
	return c.JSON(newList(s.deps.Plugins.List(), ""))
}

// reloadPlugin loads the plugin's source again and swaps it in; on failure the previous version keeps serving and
// the answer says why.
func (s *Server) reloadPlugin(c *fiber.Ctx) error {
	if err := principal(c).Require(auth.RoleOwner, ""); err != nil {
		return err
	}
	info, err := s.deps.Plugins.Reload(c.UserContext(), c.Params("name"))
	if err != nil {
		return err
	}
	return c.JSON(info)
}
