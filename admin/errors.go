package admin

import (
	"errors"
	"net/http"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
)

// apiError is the one error body of the API: {"error":{"code","message","details","request_id"}}.
type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Details   any    `json:"details"`
	RequestID string `json:"request_id,omitempty"`
}

// errRouteNotFound marks a request no route matched.
var errRouteNotFound = errors.New("no such route")

// malformedJSON is a request body that is not the JSON the endpoint expects; Details locates the problem.
type malformedJSON struct {
	msg     string
	details map[string]any
}

func (e *malformedJSON) Error() string { return e.msg }

// classify maps an error to its HTTP status and API error. It is the only place that knows this mapping.
func classify(err error) (int, apiError) {
	var (
		validation *errs.ValidationError
		badJSON    *malformedJSON
		fiberErr   *fiber.Error
	)
	switch {
	case errors.As(err, &validation):
		return http.StatusBadRequest, apiError{Code: "validation_failed", Message: err.Error(), Details: map[string]any{"fields": validation.Fields}}
	case errors.As(err, &badJSON):
		details := badJSON.details
		if details == nil {
			details = map[string]any{}
		}
		return http.StatusBadRequest, apiError{Code: "malformed_json", Message: badJSON.msg, Details: details}
	case errors.Is(err, errRouteNotFound):
		return http.StatusNotFound, apiError{Code: "route_not_found", Message: "no such endpoint; the API lives under /api/v1"}
	case errors.Is(err, errs.ErrNotFound):
		return http.StatusNotFound, apiError{Code: "not_found", Message: err.Error()}
	case errors.Is(err, errs.ErrConflict):
		return http.StatusConflict, apiError{Code: "conflict", Message: err.Error()}
	case errors.Is(err, errs.ErrUnauthorized):
		return http.StatusUnauthorized, apiError{Code: "unauthorized", Message: err.Error()}
	case errors.Is(err, errs.ErrForbidden):
		return http.StatusForbidden, apiError{Code: "forbidden", Message: err.Error()}
	case errors.Is(err, errs.ErrUnavailable):
		return http.StatusServiceUnavailable, apiError{Code: "unavailable", Message: err.Error()}
	case errors.As(err, &fiberErr):
		switch fiberErr.Code {
		case http.StatusRequestEntityTooLarge:
			msg := "request body is larger than server.max_body"
			if fiberErr.Message != utils.StatusMessage(http.StatusRequestEntityTooLarge) {
				msg = fiberErr.Message // a handler's own limit (a tracking batch, an import) says which
			}
			return fiberErr.Code, apiError{Code: "body_too_large", Message: msg}
		case http.StatusNotFound:
			return fiberErr.Code, apiError{Code: "route_not_found", Message: "no such endpoint; the API lives under /api/v1"}
		}
		return fiberErr.Code, apiError{Code: codeFor(fiberErr.Code), Message: fiberErr.Message}
	}
	return http.StatusInternalServerError, apiError{Code: "internal", Message: "internal error; the server log has the details under this request id"}
}

func codeFor(status int) string {
	switch status {
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusRequestTimeout:
		return "request_timeout"
	case http.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad_request"
}

// writeError is fiber's ErrorHandler and the end of every failed request: it writes the JSON error and logs
// server-side failures with the request id.
func (s *Server) writeError(c *fiber.Ctx, err error) error {
	status, body := classify(err)
	if body.Details == nil {
		body.Details = map[string]any{}
	}
	body.RequestID = requestID(c)
	if status >= 500 {
		s.log.Error("request failed", "request_id", body.RequestID, "method", c.Method(), "route", c.Route().Path, "error", err)
	}
	if status == http.StatusUnauthorized {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="crosscast"`)
	}
	return c.Status(status).JSON(fiber.Map{"error": body})
}
