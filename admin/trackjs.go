package admin

import "github.com/gofiber/fiber/v2"

func (s *Server) tagRoutes(app *fiber.App, api fiber.Router) {}
