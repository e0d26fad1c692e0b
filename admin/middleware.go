package admin

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/gofiber/fiber/v2"
)

const (
	localRequestID  = "request_id"
	localPrincipal  = "principal"
	localUnmatched  = "unmatched"
	headerRequestID = "X-Request-ID"
)

// requestID returns the request's id, assigning one if the request has none yet (errors raised by the HTTP server
// itself, such as an oversized body, reach the error handler before any middleware ran).
func requestID(c *fiber.Ctx) string {
	if id, ok := c.Locals(localRequestID).(string); ok && id != "" {
		return id
	}
	id := c.Get(headerRequestID)
	if !validRequestID(id) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Locals(localRequestID, id)
	c.Set(headerRequestID, id)
	return id
}

// validRequestID accepts a caller's id (a proxy's, say) only if it is short and plain, so it is safe in logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// observe gives every request an id, and after it ran, counts it and its latency by route template (never by raw
// path, so metrics stay bounded) and logs it at debug level without personal data.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	id := requestID(c)
	err := s.next(c)
	if err != nil {
		// Write the error now so the status below is the one the client gets.
		if werr := s.writeError(c, err); werr != nil {
			s.log.Error("writing error response", "request_id", id, "error", werr)
		}
	}
	route := c.Route().Path
	if c.Locals(localUnmatched) != nil {
		route = "unmatched"
	}
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	s.requests.With(route, c.Method(), strconv.Itoa(status)).Inc()
	s.latency.With(route, c.Method(), strconv.Itoa(status)).ObserveDuration(elapsed)
	s.log.Debug("request", "request_id", id, "method", c.Method(), "route", route, "status", status, "duration", elapsed)
	return nil
}

// next runs the rest of the chain and turns a panic into an error: a bug in one handler answers 500 to one
// request instead of taking the server, and every client workspace with it, down.
func (s *Server) next(c *fiber.Ctx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "request_id", requestID(c), "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return c.Next()
}

// unmatched ends requests no route took: 405 with an Allow header when the path exists under other methods, 404
// otherwise.
func (s *Server) unmatched(c *fiber.Ctx) error {
	c.Locals(localUnmatched, true)
	if allowed := s.allowedMethods(c.Path()); len(allowed) > 0 {
		c.Set(fiber.HeaderAllow, strings.Join(allowed, ", "))
		return fiber.NewError(fiber.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed here; use %s", c.Method(), strings.Join(allowed, ", ")))
	}
	return errRouteNotFound
}

// route is a registered method and path pattern, split into segments (":id" matches any one segment).
type route struct {
	method   string
	segments []string
}

// indexRoutes records the registered routes for allowedMethods. It runs once, after routes() registered them.
func (s *Server) indexRoutes() {
	for _, r := range s.app.GetRoutes(true) {
		if r.Method == fiber.MethodHead || r.Method == fiber.MethodConnect || r.Method == fiber.MethodTrace {
			continue
		}
		s.table = append(s.table, route{method: r.Method, segments: strings.Split(strings.Trim(r.Path, "/"), "/")})
	}
}

func (s *Server) allowedMethods(path string) []string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	seen := map[string]bool{}
	var out []string
	for _, r := range s.table {
		if len(r.segments) != len(segs) || seen[r.method] {
			continue
		}
		match := true
		for i, seg := range r.segments {
			if !strings.HasPrefix(seg, ":") && seg != segs[i] || segs[i] == "" {
				match = false
				break
			}
		}
		if match {
			seen[r.method] = true
			out = append(out, r.method)
		}
	}
	sort.Strings(out)
	return out
}

// authenticate resolves the bearer token of /api/v1 requests into a principal, or answers 401.
func (s *Server) authenticate(c *fiber.Ctx) error {
	header := c.Get(fiber.HeaderAuthorization)
	scheme, token, _ := strings.Cut(header, " ")
	if header != "" && !strings.EqualFold(scheme, "Bearer") {
		token = ""
	}
	p, err := s.deps.Auth.Authenticate(c.UserContext(), strings.TrimSpace(token))
	if err != nil {
		return err
	}
	c.Locals(localPrincipal, p)
	return c.Next()
}

// principal is the authenticated caller; only valid under /api/v1.
func principal(c *fiber.Ctx) auth.Principal {
	p, _ := c.Locals(localPrincipal).(auth.Principal)
	return p
}
