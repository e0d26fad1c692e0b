package admin

import "github.com/gofiber/fiber/v2"

// Jobs runs and reports background jobs.
type Jobs interface{}

func (s *Server) importRoutes(api fiber.Router) {}
