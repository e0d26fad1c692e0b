package admin

import "github.com/gofiber/fiber/v2"

func (s *Server) contactRoutes(api fiber.Router) {}
