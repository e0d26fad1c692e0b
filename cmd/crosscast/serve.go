package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"

	"github.com/crosscast/crosscast/admin"
	"github.com/crosscast/crosscast/core/auth"
	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/jobs"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/scheduler"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/crosscast/crosscast/plugins/outbox"
	"github.com/hashicorp/go-hclog"
)

const serveAbout = `Runs the Crosscast server: the API under /api/v1, /healthz, /readyz and /metrics.

With no -config, it runs on the embedded defaults (see 'crosscast config example'): listen on 127.0.0.1:8080, data
in ./data, and the owner token from $CROSSCAST_BOOTSTRAP_TOKEN if set. On first start without a bootstrap token it
creates the "default" workspace and prints a generated owner token once. SIGINT or SIGTERM stop it gracefully.`

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "serve [-config FILE] [-listen ADDR] [-data DIR]", serveAbout, stderr)
	configPath := fs.String("config", "", "configuration `FILE` (HCL); embedded defaults when empty")
	listen := fs.String("listen", "", "listen `ADDR`ess, overrides server.listen (e.g. 0.0.0.0:8080; port 0 picks a free port)")
	dataDir := fs.String("data", "", "data `DIR`, overrides storage.data_dir")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "crosscast serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cfg, code := loadConfig(*configPath, stderr)
	if code >= 0 {
		return code
	}
	if *listen != "" {
		cfg.Server.Listen = *listen
	}
	if *dataDir != "" {
		cfg.Storage.DataDir = *dataDir
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "crosscast serve: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, stop, cfg, log, stdout); err != nil {
		if cfg.Log.Format == "json" {
			log.Error("crosscast stopped with an error", "error", err)
		}
		fmt.Fprintf(stderr, "crosscast serve: %v\n", err)
		return exitError
	}
	return exitOK
}

// loadConfig returns DefaultConfig (with $CROSSCAST_BOOTSTRAP_TOKEN, as the example file does) when path is empty,
// or the file's configuration; on problems it prints them and returns exit code 2.
func loadConfig(path string, stderr io.Writer) (*config.Config, int) {
	if path == "" {
		cfg := config.DefaultConfig()
		cfg.Admin.BootstrapToken = os.Getenv("CROSSCAST_BOOTSTRAP_TOKEN")
		return cfg, -1
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		printProblems(stderr, "crosscast serve", err)
		return nil, exitUsage
	}
	return cfg, -1
}

// printProblems prints configuration problems one per line as FILE:LINE:COL: message, or any other error plainly,
// and returns how many problems there were.
func printProblems(w io.Writer, cmd string, err error) int {
	var ps config.Problems
	if !errors.As(err, &ps) {
		fmt.Fprintf(w, "%s: %v\n", cmd, err)
		return 1
	}
	for _, p := range ps {
		fmt.Fprintln(w, p.String())
	}
	return len(ps)
}

func newLogger(c *config.Log, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "crosscast",
		Level:      hclog.LevelFromString(c.Level),
		JSONFormat: c.Format == "json",
		Output:     w,
	})
}

// runServer wires the store, the core services and the HTTP server, serves until ctx ends, then shuts down in
// order: stop accepting and drain requests, flush group commits, close the files. Once shutdown begins,
// releaseSignals restores the default signal handling, so a second Ctrl-C ends the process at once.
func runServer(ctx context.Context, releaseSignals func(), cfg *config.Config, log hclog.Logger, stdout io.Writer) (err error) {
	tuneGC(log)
	// Take the port first: failing after the first-start token was generated would lose it.
	ln, err := listen(cfg.Server.Listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	reg := metrics.NewRegistry()
	st, err := store.Open(ctx, store.Options{
		Dir:            cfg.Storage.DataDir,
		Fsync:          cfg.Storage.Fsync,
		CommitMaxBatch: cfg.Storage.CommitMaxBatch,
		CommitMaxDelay: cfg.Storage.CommitMaxDelayDur,
		LockTimeout:    cfg.Storage.LockTimeoutDur,
		Logger:         log,
		Metrics:        reg,
	})
	if err != nil {
		return err
	}
	defer func() {
		// Runs on every return: after a clean shutdown its error is the command's.
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	wsSvc := workspaces.NewService(st, log, nil)
	declared := make([]workspaces.Declared, len(cfg.Workspaces))
	for i, w := range cfg.Workspaces {
		declared[i] = workspaces.Declared{ID: w.ID, Name: w.Name, WriteKey: w.WriteKey}
	}
	if err := wsSvc.Reconcile(ctx, declared); err != nil {
		return err
	}
	authSvc := auth.NewService(st, cfg.Admin.BootstrapToken, log, nil)
	generated, err := authSvc.EnsureOwner(ctx)
	if err != nil {
		return err
	}

	specs := cfg.Plugins
	if len(specs) == 0 {
		specs = manager.DefaultSpecs()
	}
	mailers, closeMailers, err := newMailers(cfg, log)
	if err != nil {
		return err
	}
	defer closeMailers() // deferred first, so it runs after the plugins are closed
	plugins, err := manager.New(ctx, manager.Options{
		CacheDir: filepath.Join(cfg.Storage.DataDir, "plugin-cache"), Logger: log, Metrics: reg,
		KV: st, Mailers: mailers,
	}, specs)
	if err != nil {
		return err
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeoutDur)
		defer cancel()
		if err := plugins.Close(closing); err != nil {
			log.Warn("closing plugins", "error", err)
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	go func() {
		for range hup {
			log.Info("SIGHUP: reloading plugins")
			for _, err := range plugins.ReloadAll(ctx) {
				log.Error("plugin reload failed; previous version still serving", "error", err)
			}
		}
	}()

	stream := contacts.NewStream()
	contactSvc := contacts.NewService(st, contactSettings(wsSvc), stream, log, nil)
	segSvc := segments.NewService(st, stream, log, nil)
	defer segSvc.Close() // idempotent: covers early returns; the shutdown below closes it before the store
	contactSvc.AddExportSection(segSvc.ExportSection())
	wsIDs, err := workspaceIDs(ctx, wsSvc)
	if err != nil {
		return err
	}
	// The campaign engine stops when the HTTP server has drained (campaignsCtx), before the store closes; a batch
	// it is sending then finishes. It starts before the segment index, so that the entries the index finds at
	// start (changes while the server was down) reach triggered campaigns.
	linkKey, err := st.LinkKey(ctx)
	if err != nil {
		return err
	}
	campaignsCtx, stopCampaigns := context.WithCancel(context.WithoutCancel(ctx))
	campSvc := campaigns.NewService(st, segSvc, manager.Campaigns{M: plugins}, log, nil, campaigns.Options{
		Rules: func(ctx context.Context, ws string) (workspaces.CampaignRules, error) {
			w, err := wsSvc.Get(ctx, ws)
			return w.Settings.Campaigns, err
		},
		Links: campaigns.NewLinks(cfg.Server.PublicURL, linkKey),
		Consent: func(ctx context.Context, ws, id, channel string, status contacts.ConsentStatus, source string) error {
			_, err := contactSvc.SetConsent(ctx, ws, id, channel, status, source)
			return err
		},
		SetAttributes: func(ctx context.Context, ws, id string, attrs map[string]any, source string) error {
			_, err := contactSvc.Update(ctx, ws, id, contacts.Fields{Attributes: attrs}, source)
			return err
		},
	})
	defer func() { stopCampaigns(); campSvc.Close() }() // covers early returns; the shutdown below does it first
	stream.Subscribe(campSvc.OnChange)                  // events trigger campaigns
	segSvc.Subscribe(campSvc.OnTransitions)             // so do segment entries
	if err := campSvc.Start(campaignsCtx, wsIDs); err != nil {
		return err
	}
	if err := segSvc.Start(ctx, wsIDs); err != nil {
		return err
	}
	sched := scheduler.New(log)
	if err := sched.Every("segments-recheck", segmentRecheck, segSvc.Recheck); err != nil {
		return err
	}
	sched.Start()
	defer func() { _ = sched.Stop(context.Background()) }()
	runner, err := jobs.NewRunner(ctx, st, jobs.Options{Dir: filepath.Join(cfg.Storage.DataDir, "jobs")}, log)
	if err != nil {
		return err
	}
	defer runner.Close(context.Background()) // idempotent: covers early returns; the shutdown below closes it first

	v, _, _ := buildInfo()
	srv := admin.New(admin.Deps{
		Workspaces: wsSvc, Auth: authSvc, Store: st, Plugins: plugins, Channels: plugins,
		Outboxes: outbox.New(st), Hooks: plugins, Metrics: reg, Logger: log, Version: v,
		Contacts: contactSvc, WriteKeys: st, Jobs: runner, Segments: segSvc, Campaigns: campSvc,
		HookEvents: manager.CampaignFeedback{S: campSvc},
	}, admin.Options{
		MaxBody: cfg.Server.MaxBodyBytes, MaxImport: cfg.Server.MaxImportBytes, PublicURL: cfg.Server.PublicURL,
		TrustedProxies: cfg.Server.TrustedProxies,
		ReadTimeout:    cfg.Server.ReadTimeoutDur, WriteTimeout: cfg.Server.WriteTimeoutDur,
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	srv.SetReady(true)
	printBanner(stdout, "http://"+ln.Addr().String(), cfg, generated)
	log.Info("serving", "addr", ln.Addr().String(), "data_dir", cfg.Storage.DataDir)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serving HTTP: %w", err)
	}
	releaseSignals()
	log.Info("shutting down", "grace", cfg.Server.ShutdownTimeoutDur)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeoutDur)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("in-flight requests did not finish in time", "error", err)
	}
	// Jobs and segment transitions write their final records: before the store closes.
	if err := sched.Stop(shutdownCtx); err != nil {
		log.Warn("scheduled jobs did not stop in time", "error", err)
	}
	if err := runner.Close(shutdownCtx); err != nil {
		log.Warn("background jobs did not stop in time", "error", err)
	}
	stopCampaigns()
	campSvc.Close()
	segSvc.Close()
	if err := st.Close(); err != nil {
		return fmt.Errorf("closing the store: %w", err)
	}
	log.Info("stopped")
	return nil
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("cannot listen on %s: address already in use; stop the other process or choose another address with -listen or server.listen", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

func printBanner(w io.Writer, base string, cfg *config.Config, generated string) {
	fmt.Fprintf(w, "Crosscast %s listening on %s (data in %s)\n", version, base, cfg.Storage.DataDir)
	fmt.Fprintf(w, "  health:  curl %s/healthz\n", base)
	fmt.Fprintf(w, "  API:     curl -H \"Authorization: Bearer $CROSSCAST_TOKEN\" %s/api/v1/workspaces\n", base)
	switch {
	case generated != "":
		fmt.Fprintf(w, "\nAn owner API token was generated. It is shown only this once; keep it somewhere safe:\n\n")
		fmt.Fprintf(w, "  export CROSSCAST_TOKEN=%s\n\n", generated)
	case cfg.Admin.BootstrapToken != "":
		fmt.Fprintln(w, "  token:   the bootstrap token from the configuration (admin.bootstrap_token) is an owner token")
	default:
		fmt.Fprintln(w, "  token:   use the owner token printed on first start, or set CROSSCAST_BOOTSTRAP_TOKEN and restart")
	}
}

// segmentRecheck is how often timed segment conditions (windows, relative dates) are re-checked: a contact leaves
// performed(..., within: 30d) at most this long after its 30 days end.
const segmentRecheck = "@every 1m"

// workspaceIDs lists every workspace, for the services that start per workspace (segments, campaigns).
func workspaceIDs(ctx context.Context, wsSvc *workspaces.Service) ([]string, error) {
	var ids []string
	after := ""
	for {
		page, next, err := wsSvc.List(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, w := range page {
			ids = append(ids, w.ID)
		}
		if next == "" {
			return ids, nil
		}
		after = next
	}
}

// contactSettings reads the contacts settings of a workspace from its record.
func contactSettings(ws *workspaces.Service) contacts.SettingsFunc {
	return func(ctx context.Context, id string) (contacts.Settings, error) {
		w, err := ws.Get(ctx, id)
		if err != nil {
			return contacts.Settings{}, err
		}
		return contacts.Settings{
			Channels: w.Settings.Channels, PII: w.Settings.PII, IP: contacts.IPMode(w.Settings.IP),
		}, nil
	}
}

// serveGCPercent is the garbage collector's target when GOGC is not set. The server's live heap is small (profiles
// stay on disk: 18 MiB after importing a million contacts), so collecting less often costs little memory and gave
// +35% on imports and +30% on single tracking calls (docs/RATIONALE.md).
const serveGCPercent = 400

// tuneGC applies serveGCPercent unless the operator set GOGC.
func tuneGC(log hclog.Logger) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(serveGCPercent)
	log.Debug("garbage collector target set", "gogc", serveGCPercent)
}
