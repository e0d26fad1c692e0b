package admin

import (
	"encoding/json"
	"fmt"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/gofiber/fiber/v2"
)

func (s *Server) segmentRoutes(api fiber.Router) {
	api.Post("/workspaces/:id/segments/preview", s.previewSegment)
}

// previewInput is a rule to evaluate without saving it: text, or the JSON form of its tree.
type previewInput struct {
	Rule   json.RawMessage `json:"rule"`
	Sample *int            `json:"sample"`
}

// previewSegment counts the contacts a rule matches now and returns a sample (masked for roles without PII).
func (s *Server) previewSegment(c *fiber.Ctx) error {
	if s.deps.Segments == nil {
		return fmt.Errorf("segments are not served by this server: %w", errs.ErrUnavailable)
	}
	p, err := s.contactPage(c)
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
	n, err := segments.ParseRule(in.Rule)
	if err != nil {
		return err
	}
	out, err := s.deps.Segments.Preview(c.UserContext(), p.ws, n, sample)
	if err != nil {
		return err
	}
	for i := range out.Sample {
		out.Sample[i] = p.mask(out.Sample[i])
	}
	return c.JSON(out)
}
