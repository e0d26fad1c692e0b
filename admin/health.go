package admin

import (
	"bytes"
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/crosscast/crosscast/core/metrics"
	"github.com/gofiber/fiber/v2"
)

// healthz answers 200 when every data file accepts writes and 503 otherwise. The body is unauthenticated, so it
// says only whether the system file and the workspace files are healthy, and how many fail: workspace ids (client
// names) never appear in it. Failing files are logged with their cause.
func (s *Server) healthz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
	defer cancel()
	results := s.deps.Store.Health(ctx)
	names := make([]string, 0, len(results))
	for name := range results {
		names = append(names, name)
	}
	sort.Strings(names)
	checks := map[string]string{"system": "ok", "workspaces": "ok"}
	failing := 0
	for _, name := range names {
		err := results[name]
		if err == nil {
			continue
		}
		failing++
		if name == "system" {
			checks["system"] = "failing"
		} else {
			checks["workspaces"] = "failing"
		}
		s.log.Error("health check failing", "file", name, "error", err)
	}
	status, code := "ok", http.StatusOK
	if failing > 0 {
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	return c.Status(code).JSON(fiber.Map{"status": status, "version": s.deps.Version, "checks": checks, "failing": failing})
}

// readyz answers 200 once the server has started and until it begins shutting down.
func (s *Server) readyz(c *fiber.Ctx) error {
	if !s.ready.Load() {
		return c.Status(http.StatusServiceUnavailable).JSON(fiber.Map{"status": "not ready"})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// metrics serves every metric in the Prometheus text format.
func (s *Server) metrics(c *fiber.Ctx) error {
	var buf bytes.Buffer
	if err := s.deps.Metrics.WriteText(&buf); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, metrics.ContentType)
	return c.Send(buf.Bytes())
}
