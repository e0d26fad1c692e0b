package admin

import (
	"context"

	"github.com/gofiber/fiber/v2"
)

// WriteKeys finds the workspace a tracking write key belongs to (errs.ErrNotFound for none).
type WriteKeys interface {
	WorkspaceByWriteKey(ctx context.Context, key string) (string, error)
}

func (s *Server) trackingRoutes(app *fiber.App) {}
