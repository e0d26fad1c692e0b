package manager

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// decodeConfig checks the plugin's config block against the schema its manifest declares and returns it as the
// JSON object the plugin's configure entry receives, without the secret fields, which it returns apart (name ->
// value) for the secrets capability. Problems come with the operator's file:line:col, never with a value.
func decodeConfig(spec config.Plugin, man Manifest, ctx *hcl.EvalContext) ([]byte, map[string]string, error) {
	obj := hcldec.ObjectSpec{}
	secret := map[string]bool{}
	for _, f := range man.Config {
		t, err := ctyType(f.Type)
		if err != nil {
			return nil, nil, fmt.Errorf("its manifest declares config %q with %w", f.Name, err)
		}
		obj[f.Name] = &hcldec.AttrSpec{Name: f.Name, Type: t, Required: f.Required}
		secret[f.Name] = f.Secret
	}
	body := hcl.EmptyBody()
	if spec.Config != nil {
		body = spec.Config.Body
	}
	val, diags := hcldec.Decode(body, obj, ctx)
	if diags.HasErrors() {
		var lines []string
		for _, d := range diags {
			line := d.Summary
			if d.Detail != "" {
				line += ": " + d.Detail
			}
			if d.Subject != nil {
				line = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, line)
			}
			lines = append(lines, line)
		}
		return nil, nil, fmt.Errorf("config block: %s", strings.Join(lines, "; "))
	}
	// Absent optional attributes are null: leave them out rather than send nulls.
	kept := map[string]cty.Value{}
	secrets := map[string]string{}
	for name, v := range val.AsValueMap() {
		switch {
		case v.IsNull():
		case secret[name]:
			secrets[name] = v.AsString()
		default:
			kept[name] = v
		}
	}
	out := cty.EmptyObjectVal
	if len(kept) > 0 {
		out = cty.ObjectVal(kept)
	}
	js, err := ctyjson.Marshal(out, out.Type())
	return js, secrets, err
}

func ctyType(t string) (cty.Type, error) {
	switch t {
	case "string":
		return cty.String, nil
	case "number":
		return cty.Number, nil
	case "bool":
		return cty.Bool, nil
	case "list(string)":
		return cty.List(cty.String), nil
	case "map(string)":
		return cty.Map(cty.String), nil
	}
	return cty.NilType, fmt.Errorf("an unknown type %q (string, number, bool, list(string), map(string))", t)
}

// breaker quarantines a plugin after consecutive failures, for a backoff that doubles up to a ceiling; once the
// backoff ends, one trial call decides between ready and a longer quarantine. Outcomes of calls that started
// before the current quarantine began change nothing: they say nothing about the plugin since.
type breaker struct {
	mu        sync.Mutex
	failures  int
	since     time.Time // when the current quarantine began
	until     time.Time // zero when not in quarantine
	backoff   time.Duration
	trial     bool
	lastError string
}

const (
	breakerThreshold = 5
	breakerMin       = 5 * time.Second
	breakerMax       = 5 * time.Minute
)

// allow reports whether a call may go ahead now.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until.IsZero() {
		return true
	}
	if now.Before(b.until) || b.trial {
		return false
	}
	b.trial = true // one trial call after the backoff
	return true
}

// record notes the outcome of a call that started at started and ended at now, and reports whether it just put
// the plugin in quarantine. err is nil for outcomes that are not the plugin's fault.
func (b *breaker) record(started, now time.Time, err error) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.until.IsZero() && started.Before(b.since) {
		return false
	}
	if err == nil {
		if b.until.IsZero() || b.trial {
			b.failures, b.since, b.until, b.backoff, b.trial = 0, time.Time{}, time.Time{}, 0, false
		}
		return false
	}
	b.lastError = err.Error()
	b.failures++
	switch {
	case b.trial: // the trial failed: rest longer
		b.backoff = min(2*b.backoff, breakerMax)
	case b.until.IsZero() && b.failures >= breakerThreshold:
		b.backoff = breakerMin
	default:
		return false
	}
	b.since, b.until, b.trial = now, now.Add(b.backoff), false
	return true
}

func (b *breaker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures, b.since, b.until, b.backoff, b.trial, b.lastError = 0, time.Time{}, time.Time{}, 0, false, ""
}

func (b *breaker) state(now time.Time) (quarantined bool, lastError string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.until.IsZero() && now.Before(b.until), b.lastError
}

// Call runs entry on the named plugin. A plugin in quarantine fails fast with ErrQuarantined; a plugin's own
// error answers (status 1) do not count against it, traps, timeouts and protocol violations do.
func (m *Manager) Call(ctx context.Context, name string, entry uint32, input []byte) ([]byte, error) {
	mp, err := m.get(name)
	if err != nil {
		return nil, err
	}
	now := m.opts.Now()
	if !mp.breaker.allow(now) {
		m.callsTotal.With(name, "quarantined").Inc()
		return nil, fmt.Errorf("plugin %q: %w", name, ErrQuarantined)
	}
	l := mp.current.Load()
	mp.calls.Add(1)
	start := time.Now()
	out, err := l.plugin.Call(ctx, entry, input)
	if errors.Is(err, runtime.ErrClosed) {
		if next := mp.current.Load(); next != l {
			out, err = next.plugin.Call(ctx, entry, input) // a reload closed the version we took: use the new one
		}
	}
	m.callSeconds.With(name).ObserveDuration(time.Since(start))
	switch {
	case err == nil:
		m.callsTotal.With(name, "ok").Inc()
	case isGuestAnswer(err):
		m.callsTotal.With(name, "guest_error").Inc()
	default:
		m.callsTotal.With(name, "failed").Inc()
	}
	counted := err
	if ctx.Err() != nil || errors.Is(err, errs.ErrUnavailable) || errors.Is(err, runtime.ErrClosed) || isGuestAnswer(err) {
		// The caller's own deadline or cancellation, a closed version, or the plugin's considered answer: not a
		// fault of the plugin.
		counted = nil
	}
	if err != nil {
		mp.fails.Add(1)
	}
	if mp.breaker.record(now, m.opts.Now(), counted) {
		m.log.Warn("plugin quarantined after repeated failures", "plugin", name, "error", counted)
	}
	return out, err
}

func isGuestAnswer(err error) bool {
	return errors.Is(err, runtime.ErrGuest)
}

func (m *Manager) get(name string) (*managed, error) {
	m.mu.RLock()
	mp := m.plugins[name]
	m.mu.RUnlock()
	if mp == nil {
		return nil, fmt.Errorf("plugin %q: %w", name, errs.ErrNotFound)
	}
	return mp, nil
}

// Reload loads the plugin's source again (checking its SHA-256, compiling, starting an instance, reading its
// manifest, checking grants and config), swaps it in atomically, then drains and closes the old version. If any
// step fails, the old version keeps serving and the error is returned and shown in List.
func (m *Manager) Reload(ctx context.Context, name string) (Info, error) {
	mp, err := m.get(name)
	if err != nil {
		return Info{}, err
	}
	mp.mu.Lock()
	defer mp.mu.Unlock()
	l, err := m.load(ctx, mp.spec)
	if err != nil {
		msg := "reload failed, previous version still serving: " + err.Error()
		mp.lastErr.Store(&msg)
		m.log.Error("plugin reload failed; previous version still serving", "plugin", name, "error", err)
		return m.info(name, mp), err
	}
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		_ = l.close(ctx)
		return Info{}, fmt.Errorf("plugin %q: %w", name, runtime.ErrClosed)
	}
	old := mp.current.Swap(l)
	mp.lastErr.Store(nil)
	mp.breaker.reset() // a new version starts with a clean record
	m.log.Info("plugin reloaded", "plugin", name, "version", l.manifest.Version, "sha256", l.sha256)
	drain, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := old.close(drain); err != nil {
		m.log.Warn("closing the previous version of a plugin", "plugin", name, "error", err)
	}
	return m.info(name, mp), nil
}

// ReloadAll reloads every plugin (SIGHUP); each keeps its previous version if its reload fails.
func (m *Manager) ReloadAll(ctx context.Context) []error {
	var failed []error
	for _, info := range m.List() {
		if _, err := m.Reload(ctx, info.Name); err != nil {
			failed = append(failed, err)
		}
	}
	return failed
}

// List reports every plugin's state, by name.
func (m *Manager) List() []Info {
	m.mu.RLock()
	names := make([]string, 0, len(m.plugins))
	for n := range m.plugins {
		names = append(names, n)
	}
	m.mu.RUnlock()
	sort.Strings(names)
	out := make([]Info, 0, len(names))
	for _, n := range names {
		if mp, err := m.get(n); err == nil {
			out = append(out, m.info(n, mp))
		}
	}
	return out
}

func (m *Manager) info(name string, mp *managed) Info {
	l := mp.current.Load()
	in := Info{
		Name: name, ID: l.manifest.ID, Kind: string(l.manifest.Kind), Version: l.manifest.Version, Source: mp.spec.Source, SHA256: l.sha256,
		Status: "ready", Calls: mp.calls.Load(), Failures: mp.fails.Load(),
	}
	if q, last := mp.breaker.state(m.opts.Now()); q {
		in.Status, in.Error = "quarantined", last
	}
	if e := mp.lastErr.Load(); e != nil {
		in.Error = *e // a failed reload: the previous version is still the one serving
	}
	return in
}

func (m *Manager) quarantined() float64 {
	n := 0
	for _, info := range m.List() {
		if info.Status == "quarantined" {
			n++
		}
	}
	return float64(n)
}

// Close drains and closes every plugin.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	plugins := m.plugins
	m.plugins = map[string]*managed{}
	m.closed = true
	m.mu.Unlock()
	var errsOut []string
	for name, mp := range plugins {
		mp.mu.Lock() // waits for a reload in progress, which then sees closed and closes its own version
		err := mp.current.Load().close(ctx)
		mp.mu.Unlock()
		if err != nil {
			errsOut = append(errsOut, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(errsOut) > 0 {
		return fmt.Errorf("closing plugins: %s", strings.Join(errsOut, "; "))
	}
	return nil
}
