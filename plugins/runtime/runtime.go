package runtime

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Defaults and bounds of Options.
const (
	DefaultPool        = 2 // more instances than cores gave no extra throughput (CONVENTIONS.md)
	DefaultTimeout     = 5 * time.Second
	DefaultMemoryLimit = 256 << 20 // per instance
	DefaultMaxOutput   = 16 << 20

	pageSize = 64 << 10
	// MinMemoryPages is the least a Go guest needs to load; smaller limits are refused.
	MinMemoryPages = 42
	maxMemoryPages = 65536 // 4 GiB, all a 32-bit wasm memory can address

	// outputTail is how much of each instance's stdout and stderr is kept, for the log when it fails.
	outputTail = 64 << 10
)

// Options configures a Runtime. The zero value is usable: every zero field takes its default.
type Options struct {
	// CacheDir keeps compiled plugins across restarts (wazero.NewCompilationCacheWithDir); "" keeps them in memory
	// only. A cold compile of a 3 MB Go guest takes ~1 s, a cached one ~0.1 s.
	CacheDir string
	// Pool is the most live instances per plugin (default 2: more than cores gave no throughput). Calls beyond it
	// wait for a free instance.
	Pool int
	// Timeout bounds each call, and each instance's initialisation (default 5s). A caller's earlier deadline wins.
	Timeout time.Duration
	// MemoryLimit is the most linear memory one instance may have, in bytes, rounded down to 64 KiB pages
	// (default 256 MiB). Limits under MinMemoryPages pages are refused: a Go guest cannot even start.
	MemoryLimit uint64
	// MaxOutput caps the output of one call, in bytes (default 16 MiB, at most 4 GiB - 1).
	MaxOutput int
	// Logger receives guest log lines and the stderr tail of failed instances, as Named("plugin") with a "plugin"
	// key. Nil discards them.
	Logger hclog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Pool < 0 || o.Timeout < 0 || o.MaxOutput < 0 {
		return o, errors.New("pool, timeout and max output must not be negative")
	}
	if o.Pool == 0 {
		o.Pool = DefaultPool
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MemoryLimit == 0 {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if pages := o.MemoryLimit / pageSize; pages < MinMemoryPages || pages > maxMemoryPages {
		return o, fmt.Errorf("memory limit %d bytes is %d pages; it must be %d to %d pages of 64 KiB",
			o.MemoryLimit, pages, MinMemoryPages, maxMemoryPages)
	}
	if o.MaxOutput == 0 {
		o.MaxOutput = DefaultMaxOutput
	}
	if uint64(o.MaxOutput) > 1<<32-1 {
		return o, fmt.Errorf("max output %d bytes is over 4 GiB - 1", o.MaxOutput)
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return o, nil
}

// Runtime runs plugins: one wazero runtime with WithCloseOnContextDone(true), a shared compilation cache, and
// wasi_snapshot_preview1 and crosscast_v1 instantiated once. It is safe for concurrent use.
type Runtime struct {
	opts  Options
	log   hclog.Logger
	wz    wazero.Runtime
	cache wazero.CompilationCache

	mu       sync.Mutex
	closed   bool
	compiled map[[sha256.Size]byte]*compiledModule
	plugins  map[*Plugin]struct{}
}

// compiledModule is a compiled wasm module shared by the plugins loaded from the same bytes.
type compiledModule struct {
	sum  [sha256.Size]byte
	cm   wazero.CompiledModule
	refs int
}

// New creates a Runtime. Close it to release its memory and compiled code.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("configuring plugin runtime: %w", err)
	}
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		if cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir); err != nil {
			return nil, fmt.Errorf("opening plugin compilation cache: %w", err)
		}
	} else {
		cache = wazero.NewCompilationCache()
	}
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true). // a spinning guest must stop at its deadline, or it stalls the process's GC
		WithMemoryLimitPages(uint32(opts.MemoryLimit / pageSize)).
		WithCompilationCache(cache)
	wz := wazero.NewRuntimeWithConfig(ctx, cfg)
	r := &Runtime{
		opts:     opts,
		log:      opts.Logger.Named("plugin"),
		wz:       wz,
		cache:    cache,
		compiled: map[[sha256.Size]byte]*compiledModule{},
		plugins:  map[*Plugin]struct{}{},
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		_ = r.closeWazero(ctx)
		return nil, fmt.Errorf("instantiating wasi: %w", err)
	}
	if err := instantiateHostModule(ctx, wz); err != nil {
		_ = r.closeWazero(ctx)
		return nil, fmt.Errorf("instantiating host module: %w", err)
	}
	return r, nil
}

func (r *Runtime) closeWazero(ctx context.Context) error {
	return errors.Join(r.wz.Close(ctx), r.cache.Close(ctx))
}

// Close closes every plugin (waiting for their calls up to ctx, see Plugin.Close), stops the calls still running
// then (as at their deadline: the guest stops within a millisecond or so, a host function at its next check of the
// call's ctx) and waits for them, up to abortWait, then closes the wazero runtime. Closing wazero under a running
// guest raced with it and unmapped the memory it ran on. The Runtime is unusable afterwards.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	plugins := make([]*Plugin, 0, len(r.plugins))
	for p := range r.plugins {
		plugins = append(plugins, p)
	}
	r.mu.Unlock()
	var errs []error
	for _, p := range plugins {
		errs = append(errs, p.Close(ctx))
	}
	wait, stop := context.WithTimeout(context.Background(), abortWait)
	defer stop()
	for _, p := range plugins {
		p.abort()
		select {
		case <-p.drained:
		case <-wait.Done():
			r.log.Warn("closing the plugin runtime with calls still running", "plugin", p.name)
		}
	}
	errs = append(errs, r.closeWazero(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing plugin runtime: %w", err)
	}
	return nil
}

// abortWait bounds how long Close waits for the calls it stopped.
const abortWait = 5 * time.Second

// Load compiles wasm (once per content: the same bytes share compiled code, and the cache makes a restart cheap),
// checks it implements ABI v1, and creates and initialises one instance, so a plugin that cannot start fails here
// rather than at its first call. name identifies the plugin in logs and errors.
func (r *Runtime) Load(ctx context.Context, name string, wasm []byte) (*Plugin, error) {
	if name == "" {
		return nil, errors.New("loading plugin: empty name")
	}
	cm, err := r.compile(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("loading plugin %q: %w", name, err)
	}
	p := newPlugin(r, name, cm)
	if err := checkABI(cm.cm); err != nil {
		p.finish()
		return nil, fmt.Errorf("loading plugin %q: %w", name, err)
	}
	inst, err := p.newInstance(ctx)
	if err != nil {
		p.finish()
		return nil, fmt.Errorf("loading plugin %q: %w", name, err)
	}
	p.idle = append(p.idle, inst)

	r.mu.Lock()
	closed := r.closed
	if !closed {
		r.plugins[p] = struct{}{}
	}
	r.mu.Unlock()
	if closed {
		p.finish()
		return nil, fmt.Errorf("loading plugin %q: %w", name, ErrClosed)
	}
	return p, nil
}

// compile returns the compiled module for wasm, compiling it only if no loaded plugin already uses the same bytes.
func (r *Runtime) compile(ctx context.Context, wasm []byte) (*compiledModule, error) {
	sum := sha256.Sum256(wasm)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if c, ok := r.compiled[sum]; ok {
		c.refs++
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()

	cm, err := r.wz.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidWasm, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.compiled[sum]; ok { // compiled concurrently by another Load
		_ = cm.Close(ctx)
		c.refs++
		return c, nil
	}
	c := &compiledModule{sum: sum, cm: cm, refs: 1}
	r.compiled[sum] = c
	return c, nil
}

// release drops a plugin's reference to its compiled module and forgets the plugin.
func (r *Runtime) release(p *Plugin) {
	r.mu.Lock()
	delete(r.plugins, p)
	c := p.code
	c.refs--
	last := c.refs == 0
	if last {
		delete(r.compiled, c.sum)
	}
	r.mu.Unlock()
	if last {
		_ = c.cm.Close(context.Background())
	}
}

// funcSig is a wasm function type.
type funcSig struct {
	params, results []api.ValueType
}

func (s funcSig) String() string {
	return fmt.Sprintf("(%s) -> (%s)", typeNames(s.params), typeNames(s.results))
}

func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// guestExports are the functions an ABI v1 module must export, with their types.
var guestExports = []struct {
	name string
	sig  funcSig
}{
	{"cc_abi_v1", funcSig{}},
	{"cc_alloc", funcSig{params: []api.ValueType{i32}, results: []api.ValueType{i32}}},
	{"cc_call", funcSig{params: []api.ValueType{i32, i32, i32}, results: []api.ValueType{i64}}},
}

// checkABI lists every way cm falls short of ABI v1, or returns nil.
func checkABI(cm wazero.CompiledModule) error {
	var problems []string
	exports := cm.ExportedFunctions()
	for _, want := range guestExports {
		def, ok := exports[want.name]
		if !ok {
			problems = append(problems, "missing export "+want.name)
			continue
		}
		if got := (funcSig{def.ParamTypes(), def.ResultTypes()}); !got.equal(want.sig) {
			problems = append(problems, fmt.Sprintf("export %s is %s, want %s", want.name, got, want.sig))
		}
	}
	if def, ok := exports["_initialize"]; ok && (len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0) {
		problems = append(problems, "export _initialize must take and return nothing")
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		problems = append(problems, "missing export memory")
	}
	for _, def := range cm.ImportedMemories() {
		mod, name, _ := def.Import()
		problems = append(problems, fmt.Sprintf("imports memory %s.%s", mod, name))
	}
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		switch mod {
		case wasi_snapshot_preview1.ModuleName: // wazero checks names and types when it links
		case HostModule:
			want, ok := hostImports[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("imports unknown host function %s.%s", mod, name))
			} else if got := (funcSig{def.ParamTypes(), def.ResultTypes()}); !got.equal(want) {
				problems = append(problems, fmt.Sprintf("imports %s.%s as %s, want %s", mod, name, got, want))
			}
		default:
			problems = append(problems, fmt.Sprintf("imports %s.%s from an unknown module", mod, name))
		}
	}
	if problems != nil {
		return &ABIError{Problems: problems}
	}
	return nil
}

func (s funcSig) equal(o funcSig) bool {
	return slices.Equal(s.params, o.params) && slices.Equal(s.results, o.results)
}
