// Package admin is Crosscast's HTTP surface on fiber: the REST API under /api/v1, health, readiness and metrics
// endpoints, and (later) the admin panel. It turns requests into calls on core services and core errors into HTTP
// answers, in one place (errors.go).
//
// It imports core packages; core never imports it. It must not import bbolt or wazero.
package admin

import (
	"context"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/gofiber/fiber/v2"
	"github.com/hashicorp/go-hclog"
)

// Store is what the HTTP layer needs from storage directly: health and backups. Domain data goes through services.
type Store interface {
	// Health maps each data file ("system", "workspace:<id>") to its write health; nil means healthy.
	Health(ctx context.Context) map[string]error
	// SpoolBackup writes a consistent tar.gz snapshot of the whole data dir to an anonymous temporary file and
	// returns it at its start, with its size.
	SpoolBackup(ctx context.Context) (*os.File, int64, error)
}

// Deps are the services the server calls.
type Deps struct {
	Workspaces *workspaces.Service
	Auth       *auth.Service
	Store      Store
	Plugins    Plugins
	Channels   Channels
	Outboxes   Outboxes
	Hooks      Hooks
	// HookEvents receives webhook events; nil drops them after counting.
	HookEvents HookEvents
	// Contacts owns contacts and events (REST under /workspaces/{id}/contacts, tracking under /v1).
	Contacts *contacts.Service
	// WriteKeys finds the workspace of a tracking write key.
	WriteKeys WriteKeys
	// Jobs runs and reports background jobs (contact imports).
	Jobs Jobs
	// Segments evaluates segment rules.
	Segments *segments.Service
	// Campaigns manages campaigns and their delivery.
	Campaigns *campaigns.Service
	Metrics   *metrics.Registry
	Logger    hclog.Logger
	// Version is reported by /healthz.
	Version string
}

// Options tunes the HTTP server; zero values take config.DefaultConfig's.
type Options struct {
	MaxBody int64
	// MaxImport bounds a contact import upload.
	MaxImport int64
	// PublicURL is where browsers reach this server (the JS tag's snippet points there).
	PublicURL string
	// TrustedProxies are the reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For names the client.
	TrustedProxies []string
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
}

// Server is the HTTP server.
type Server struct {
	app   *fiber.App
	deps  Deps
	log   hclog.Logger
	ready atomic.Bool
	// base is cancelled by Shutdown; long responses (backups) stream under it rather than under a request
	// context that fasthttp recycles once the handler returns.
	base   context.Context
	cancel context.CancelFunc

	writeTimeout time.Duration
	// opts are the options the server was built with, defaults filled in.
	opts  Options
	table []route // registered routes, for 405 answers

	// tracking is the tracking API, which connectors' webhooks feed too.
	tracking *tracking

	requests    *metrics.CounterVec
	latency     *metrics.HistogramVec
	hookEvents  *metrics.CounterVec
	hookDropped *metrics.CounterVec
}

// New builds the server and its routes. It is not ready (readyz 503) until SetReady(true).
func New(deps Deps, opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 4 << 20
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	s := &Server{deps: deps, log: deps.Logger.Named("http"), writeTimeout: opts.WriteTimeout, opts: opts}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.requests = deps.Metrics.Counter("crosscast_http_requests_total",
		"HTTP requests by route, method and status.", "route", "method", "status")
	s.latency = deps.Metrics.Histogram("crosscast_http_request_duration_seconds",
		"HTTP request latency by route, method and status.", metrics.LatencyBuckets, "route", "method", "status")
	s.hookEvents = deps.Metrics.Counter("crosscast_hook_events_total",
		"Events plugins found in webhooks, by plugin and event type.", "plugin", "type")
	s.hookDropped = deps.Metrics.Counter("crosscast_hook_events_dropped_total",
		"Tracking events from connector plugins that were not valid tracking calls and were not stored.", "plugin")
	s.app = fiber.New(fiber.Config{
		AppName:               "crosscast",
		BodyLimit:             int(opts.MaxBody),
		ReadTimeout:           opts.ReadTimeout,
		WriteTimeout:          opts.WriteTimeout,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
		ErrorHandler:          s.writeError,
		JSONEncoder:           encodeJSON,
		// Request bodies stream, so that a contact import of gigabytes goes to disk rather than memory. fasthttp
		// then stops enforcing BodyLimit itself: limitBodies (imports.go) holds every other route to it, and
		// multipart forms are not pre-parsed (that would spool any size to disk before any handler ran).
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// Behind trusted reverse proxies, the client is the first valid address of X-Forwarded-For; from anywhere
		// else the TCP peer (a forged header from the internet is ignored).
		EnableTrustedProxyCheck: len(opts.TrustedProxies) > 0,
		TrustedProxies:          opts.TrustedProxies,
		ProxyHeader:             proxyHeader(opts.TrustedProxies),
		EnableIPValidation:      true,
	})
	s.routes()
	return s
}

// proxyHeader is X-Forwarded-For when proxies are trusted, and no header otherwise.
func proxyHeader(trusted []string) string {
	if len(trusted) == 0 {
		return ""
	}
	return fiber.HeaderXForwardedFor
}

func (s *Server) routes() {
	app := s.app
	app.Use(s.observe)
	app.Use(s.limitBodies)
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metrics)
	app.All("/hooks/:workspace/:plugin", s.hook)
	s.linkRoutes(app)

	api := app.Group("/api/v1", s.authenticate)
	api.Get("/whoami", s.whoami)
	api.Get("/workspaces", s.listWorkspaces)
	api.Post("/workspaces", s.createWorkspace)
	api.Get("/workspaces/:id", s.getWorkspace)
	api.Patch("/workspaces/:id", s.updateWorkspace)
	api.Delete("/workspaces/:id", s.deleteWorkspace)
	api.Post("/workspaces/:id/write-key/rotate", s.rotateWriteKey)
	api.Get("/tokens", s.listTokens)
	api.Post("/tokens", s.createToken)
	api.Delete("/tokens/:id", s.revokeToken)
	api.Get("/backup", s.backup)
	api.Get("/plugins", s.listPlugins)
	api.Post("/plugins/:name/reload", s.reloadPlugin)
	api.Post("/workspaces/:id/channels/:plugin/test", s.testSend)
	api.Get("/workspaces/:id/outbox", s.listOutbox)
	api.Delete("/workspaces/:id/outbox", s.clearOutbox)
	// Imports first: /contacts/import and /contacts/export must win over /contacts/:contact.
	s.importRoutes(api)
	s.contactRoutes(api)
	s.segmentRoutes(api)
	s.campaignRoutes(api)
	s.trackingRoutes(app)
	s.tagRoutes(app, api)

	app.Use(s.unmatched)
	s.indexRoutes()
}

// App exposes the fiber app, for tests (app.Test) and for later features that add routes.
func (s *Server) App() *fiber.App { return s.app }

// SetReady switches /readyz between 200 and 503.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown marks the server not ready, stops accepting connections and waits for in-flight requests until ctx
// ends; streams still running then (a backup to a stalled client) are cut off.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetReady(false)
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	defer s.cancel()
	return s.app.ShutdownWithContext(ctx)
}
