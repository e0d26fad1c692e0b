// Package manager runs the plugins an operator configured: it resolves each plugin's source (bundled in the binary,
// or a file whose SHA-256 must match), loads it under its own limits (plugins/runtime), checks its manifest and
// that the capabilities it requests are exactly those granted, validates its config block against the schema it
// declares, and configures it. It then serves calls behind a circuit breaker that quarantines a plugin that keeps
// failing, reloads plugins atomically, and reports their state for the API.
//
// It imports core (config, errs, metrics) and the plugin runtime; core never imports it.
package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/plugins/bundled"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/plugins/netguard"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/sdk"
	"github.com/hashicorp/go-hclog"
)

// Entry points of ABI v1 (sdk/ABI.md).
const (
	entryManifest  = 1
	entryConfigure = 2
)

// ErrQuarantined means the plugin failed too often and is resting; calls fail fast until its next trial.
var ErrQuarantined = fmt.Errorf("plugin quarantined: %w", errs.ErrUnavailable)

// Options configures the manager.
type Options struct {
	// CacheDir holds compiled plugins (wazero's compilation cache), so restarts skip compiling.
	CacheDir string
	Logger   hclog.Logger
	// Lookup resolves env() in plugin config blocks; nil means the process environment.
	Lookup config.Lookup
	// Now is the clock for quarantine backoff; nil means time.Now.
	Now func() time.Time
	// Metrics receives per-plugin call counts and latency, and the plugins' own metrics; nil uses a private
	// registry.
	Metrics *metrics.Registry
	// KV keeps the kv capability's spaces (core/store); nil leaves kv calls without storage (config validate).
	KV capability.KVStore
	// Mailers are the operator's SMTP relays by block name, for the smtp capability.
	Mailers map[string]capability.Mailer
	// HTTP, when set, replaces the network for the http capability: it gets each plugin's checked grant and
	// returns what serves its requests (sdk/plugintest's recorded responses). Nil means a netguard.Client.
	HTTP func(plugin string, grant netguard.Grant) capability.HTTPDoer
}

// The manifest types are the SDK's own: one definition of the manifest's JSON for plugins and host.
type (
	Manifest        = sdk.Manifest
	ConfigField     = sdk.ConfigField
	SelfTest        = sdk.SelfTest
	SelfTestMessage = sdk.SelfTestMessage
)

// Info is a plugin's state, as GET /api/v1/plugins shows it.
type Info struct {
	Name     string `json:"name"`
	ID       string `json:"id"` // the manifest's id: what the plugin is, whatever the operator named it
	Kind     string `json:"kind"`
	Version  string `json:"version"`
	Source   string `json:"source"`
	SHA256   string `json:"sha256"`
	Status   string `json:"status"` // ready, quarantined, error
	Error    string `json:"error"`
	Calls    uint64 `json:"calls"`
	Failures uint64 `json:"failures"`
}

// Manager owns the configured plugins.
type Manager struct {
	opts    Options
	log     hclog.Logger
	mu      sync.RWMutex
	plugins map[string]*managed
	closed  bool

	callsTotal  *metrics.CounterVec
	callSeconds *metrics.HistogramVec
	ownMetrics  *capability.Metrics
}

// managed is one configured plugin across reloads.
type managed struct {
	spec    config.Plugin
	current atomic.Pointer[loaded]
	breaker breaker
	calls   atomic.Uint64
	fails   atomic.Uint64

	mu      sync.Mutex // serialises reloads
	lastErr atomic.Pointer[string]
}

// loaded is one loaded version of a plugin.
type loaded struct {
	rt       *runtime.Runtime
	plugin   *runtime.Plugin
	manifest Manifest
	sha256   string
	http     *netguard.Client // nil without the http capability
}

// close drains the version's calls (until ctx ends) and frees its instances and connections.
func (l *loaded) close(ctx context.Context) error {
	err := l.rt.Close(ctx)
	if l.http != nil {
		l.http.CloseIdleConnections()
	}
	return err
}

// bundledGrants are the grants a bundled plugin gets when the operator declares no plugin blocks: what its
// manifest requests, sized for development.
func bundledGrants(name string) *config.Grants {
	switch name {
	case "capture":
		return &config.Grants{KVQuota: "64MiB", KVQuotaBytes: 64 << 20} // about 100,000 typical emails per workspace
	}
	return nil
}

// needsOperator lists the bundled plugins that cannot run without the operator's configuration (a relay, a
// provider's account): they run only when a plugin block declares them.
var needsOperator = map[string]bool{"email-smtp": true, "sms-http": true, "webhook": true}

// DefaultSpecs are the plugin blocks in force when the operator declares none: every bundled plugin that needs no
// configuration under its own name, with the default limits and the grants it needs.
func DefaultSpecs() []config.Plugin {
	var specs []config.Plugin
	for _, name := range bundled.Names() {
		if needsOperator[name] {
			continue
		}
		spec := config.Plugin{Name: name, Source: "builtin:" + name, Pool: 2, TimeoutDur: 5 * time.Second, MemoryBytes: 64 << 20}
		spec.Grants = bundledGrants(name)
		specs = append(specs, spec)
	}
	return specs
}

// New loads every plugin in specs. A plugin that fails to load fails New, with every problem found, so a bad
// plugin is reported at start; plugins already loaded are closed again.
func New(ctx context.Context, opts Options, specs []config.Plugin) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewRegistry()
	}
	m := &Manager{opts: opts, log: opts.Logger.Named("plugins"), plugins: map[string]*managed{}}
	m.callsTotal = opts.Metrics.Counter("crosscast_plugin_calls_total",
		"Plugin calls by plugin and result: ok, guest_error (the plugin's own error answer), failed (trap, timeout, protocol), quarantined (refused while resting).",
		"plugin", "result")
	m.callSeconds = opts.Metrics.Histogram("crosscast_plugin_call_seconds",
		"Plugin call latency, waiting for a free instance included.", metrics.LatencyBuckets, "plugin")
	opts.Metrics.GaugeFunc("crosscast_plugins_quarantined", "Plugins in quarantine now.", m.quarantined)
	m.ownMetrics = capability.NewMetrics(opts.Metrics)
	var problems []string
	for _, spec := range specs {
		l, err := m.load(ctx, spec)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		mp := &managed{spec: spec}
		mp.current.Store(l)
		m.plugins[spec.Name] = mp
		m.log.Info("plugin ready", "plugin", spec.Name, "id", l.manifest.ID, "version", l.manifest.Version, "kind", l.manifest.Kind)
	}
	if len(problems) > 0 {
		_ = m.Close(context.Background())
		return nil, fmt.Errorf("loading plugins:\n  %s", strings.Join(problems, "\n  "))
	}
	return m, nil
}

// load runs every step of loading one plugin version; on failure nothing of it stays open.
func (m *Manager) load(ctx context.Context, spec config.Plugin) (_ *loaded, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("plugin %q: %w", spec.Name, err)
		}
	}()
	wasm, sum, err := readSource(spec)
	if err != nil {
		return nil, err
	}
	rt, err := runtime.New(ctx, runtime.Options{
		CacheDir: m.opts.CacheDir, Pool: spec.Pool, Timeout: spec.TimeoutDur,
		MemoryLimit: uint64(spec.MemoryBytes), Logger: m.opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	var httpClient *netguard.Client
	defer func() {
		if err != nil {
			_ = rt.Close(context.Background())
			if httpClient != nil {
				httpClient.CloseIdleConnections()
			}
		}
	}()
	p, err := rt.Load(ctx, spec.Name, wasm)
	if err != nil {
		return nil, err
	}
	out, err := p.Call(ctx, entryManifest, nil)
	if err != nil {
		return nil, fmt.Errorf("reading its manifest: %w", err)
	}
	var man Manifest
	if err := json.Unmarshal(out, &man); err != nil {
		return nil, fmt.Errorf("its manifest is not valid JSON: %w", err)
	}
	if err := checkManifest(man); err != nil {
		return nil, err
	}
	if err := checkGrants(spec, man); err != nil {
		return nil, err
	}
	cfg, secrets, err := decodeConfig(spec, man, config.EvalContext(m.opts.Lookup))
	if err != nil {
		return nil, err
	}
	grants, client, err := m.grants(spec, man, secrets)
	if err != nil {
		return nil, err
	}
	httpClient = client
	p.Grant(grants)
	if err := p.Configure(ctx, entryConfigure, cfg); err != nil {
		return nil, fmt.Errorf("the plugin refused its configuration: %w", err)
	}
	if err := runSelfTests(ctx, p, man, m.opts.Now()); err != nil {
		return nil, err
	}
	return &loaded{rt: rt, plugin: p, manifest: man, sha256: sum, http: httpClient}, nil
}

// readSource returns the module's bytes and their SHA-256, checking a file's against the configured one before
// anything compiles it.
func readSource(spec config.Plugin) ([]byte, string, error) {
	var wasm []byte
	if name, ok := strings.CutPrefix(spec.Source, "builtin:"); ok {
		b, err := bundled.Wasm(name)
		if err != nil {
			return nil, "", err
		}
		wasm = b
	} else {
		b, err := os.ReadFile(spec.Source)
		if err != nil {
			return nil, "", fmt.Errorf("reading %s: %w", spec.Source, err)
		}
		wasm = b
	}
	h := sha256.Sum256(wasm)
	sum := hex.EncodeToString(h[:])
	if spec.SHA256 != "" && sum != spec.SHA256 {
		return nil, "", fmt.Errorf("%s has SHA-256 %s, but the configuration expects %s: refusing to load it", spec.Source, sum, spec.SHA256)
	}
	return wasm, sum, nil
}

var semver = regexp.MustCompile(`^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$`)

func checkManifest(man Manifest) error {
	var problems []string
	if man.ABI != 1 {
		problems = append(problems, fmt.Sprintf("it implements ABI version %d; this crosscast implements version 1", man.ABI))
	}
	switch man.Kind {
	case "channel", "scorer", "connector":
	default:
		problems = append(problems, fmt.Sprintf("unknown kind %q", man.Kind))
	}
	if man.ID == "" {
		problems = append(problems, "its manifest has no id")
	}
	if !semver.MatchString(man.Version) {
		problems = append(problems, fmt.Sprintf("version %q is not semver (1.2.3)", man.Version))
	}
	secretFields := false
	for _, f := range man.Config {
		if f.Secret {
			secretFields = true
			if f.Type != "string" {
				problems = append(problems, fmt.Sprintf("secret config field %q must have type string", f.Name))
			}
		}
	}
	if secretFields && !slices.Contains(man.Capabilities, "secrets") {
		problems = append(problems, `it declares secret config fields without requesting the "secrets" capability`)
	}
	if len(man.Metrics) > 0 && !slices.Contains(man.Capabilities, "metrics") {
		problems = append(problems, `it declares metrics without requesting the "metrics" capability`)
	}
	if ch := man.Channel; ch != nil {
		if man.Kind != "channel" {
			problems = append(problems, "it describes channel messages but is not a channel")
		}
		switch ch.Address {
		case "email", "phone", "none":
		default:
			problems = append(problems, fmt.Sprintf("channel address %q is not one of email, phone, none", ch.Address))
		}
		seen := map[string]bool{}
		for _, f := range ch.Fields {
			if !contentField.MatchString(f.Name) || seen[f.Name] {
				problems = append(problems, fmt.Sprintf("channel field %q is not a unique name of 1-64 letters, digits or _", f.Name))
			}
			seen[f.Name] = true
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("bad manifest: %s", strings.Join(problems, "; "))
	}
	return nil
}

var contentField = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// checkGrants requires the plugin's requested capabilities and the operator's grants to match: a plugin gets no
// capability it did not ask for, and an operator learns at once when a grant is missing or useless. Optional
// capabilities may go without a grant.
func checkGrants(spec config.Plugin, man Manifest) error {
	granted := grantedCapabilities(spec)
	requested := map[string]bool{}
	var problems []string
	check := func(c string, optional bool) {
		requested[c] = true
		switch c {
		case "http", "smtp", "kv", "secrets", "metrics":
		default:
			problems = append(problems, fmt.Sprintf("it requests an unknown capability %q", c))
			return
		}
		if !optional && !granted[c] && c != "secrets" && c != "metrics" {
			problems = append(problems, fmt.Sprintf("it requests the %s capability, which is not granted: add it to grants { } (%s)", c, grantHint(c)))
		}
	}
	for _, c := range man.Capabilities {
		check(c, false)
	}
	for _, c := range man.OptionalCapabilities {
		check(c, true)
	}
	for c := range granted {
		if !requested[c] {
			problems = append(problems, fmt.Sprintf("grants give it %s, which it does not request: remove that grant", c))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// grantedCapabilities are the capabilities the operator's grants block gives a plugin ("secrets" and "metrics"
// need no grant).
func grantedCapabilities(spec config.Plugin) map[string]bool {
	granted := map[string]bool{}
	if g := spec.Grants; g != nil {
		if len(g.HTTPHosts) > 0 {
			granted["http"] = true
		}
		if g.SMTPRelay != "" {
			granted["smtp"] = true
		}
		if g.KVQuota != "" {
			granted["kv"] = true
		}
	}
	return granted
}

func grantHint(c string) string {
	switch c {
	case "http":
		return `http_hosts = ["https://..."]`
	case "smtp":
		return `smtp_relay = "relay"`
	}
	return `kv_quota = "10MiB"`
}
