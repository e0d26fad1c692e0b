package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// keptAnswer is the largest capability answer buffer an instance keeps between calls.
const keptAnswer = 64 << 10

// Output status bytes (sdk/ABI.md).
const (
	statusOK    = 0
	statusError = 1
)

// Plugin is a loaded plugin: its compiled code and a pool of at most Options.Pool initialised instances. It is
// safe for concurrent use; each instance serves one call at a time.
type Plugin struct {
	name  string
	rt    *Runtime
	code  *compiledModule
	log   hclog.Logger
	logs  *logLimiter
	slots chan struct{} // one token per call holding an instance: bounds live instances to cap(slots)

	mu       sync.Mutex
	idle     []*instance
	closed   bool
	closing  chan struct{} // closed by Close: wakes calls waiting for a slot
	inflight int
	drained  chan struct{} // closed once closed and no call is in flight
	finished sync.Once
	// aborted ends every call and instance start still running (abort): the runtime closes only once they have
	// returned, as wazero must not close a module a guest still runs in.
	aborted context.Context
	abort   context.CancelFunc

	calls, failures, discarded, created atomic.Uint64
	live                                atomic.Int64

	// setup, once set by Configure, runs on every new instance before it serves a call.
	setup atomic.Pointer[setupCall]
	// grants are the capabilities the plugin may use, set by Grant.
	grants atomic.Pointer[Grants]
}

// Grants are what a plugin may use beyond logging.
type Grants struct {
	// Host serves the capability imports, by import name (ImportHTTP, ...). A missing one is not granted: the guest
	// gets a refusal in the answer, not a trap.
	Host map[string]HostFunc
	// Redact lists values (secrets) masked as "[redacted]" in the plugin's log lines and output tails.
	Redact []string
}

// Grant sets the plugin's capabilities. Call it once its manifest is known and before Configure; until then the
// plugin has none. The maps are not copied: do not change them afterwards.
func (p *Plugin) Grant(g Grants) { p.grants.Store(&g) }

func (p *Plugin) hostFunc(name string) HostFunc {
	if g := p.grants.Load(); g != nil {
		return g.Host[name]
	}
	return nil
}

// setupCall is an entry point every instance runs once, right after it starts.
type setupCall struct {
	entry uint32
	input []byte
}

// Configure makes every instance run entry with input right after it starts (the SDK's configure entry), replaces
// the idle instances that started without it, and runs it on a fresh instance now, so that a configuration the
// plugin refuses fails here rather than on a later call. Call it before the plugin serves calls: an instance busy
// meanwhile keeps its old configuration until it is discarded.
func (p *Plugin) Configure(ctx context.Context, entry uint32, input []byte) error {
	p.setup.Store(&setupCall{entry: entry, input: bytes.Clone(input)})
	p.mu.Lock()
	stale := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, inst := range stale {
		p.closeInstance(inst)
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.slots }()
	inst, err := p.take(ctx)
	if err != nil {
		return fmt.Errorf("configuring plugin %q: %w", p.name, err)
	}
	p.put(inst)
	return nil
}

// instance is one initialised wasm instance of a plugin, used by one call at a time.
type instance struct {
	mod api.Module
	mem api.Memory
	// memory is mem's backing store, held while a call runs (see memory.go); nil for a module without memory.
	memory         guestMemory
	alloc, call    api.Function
	stack          [3]uint64 // CallWithStack's parameters and results
	stdout, stderr *tailBuffer
	// done is the running call's ctx.Done(), set and read only on the goroutine that calls into the instance (host
	// functions run on it), so that a guest asleep in poll_oneoff wakes at the deadline.
	done <-chan struct{}
	// pending is a host function's answer waiting for the guest's take (same goroutine as done); answer is the
	// buffer it lives in, reused across calls.
	pending, answer []byte
}

// sleep is the instance's nanosleep (WASI poll_oneoff on a clock): it ends early when the call's deadline passes.
// wazero's own WithSysNanosleep does not, so a guest calling time.Sleep(time.Hour) would hold its caller, and a pool
// slot, for an hour whatever the deadline.
func (inst *instance) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-inst.done:
	}
}

// Stats are a plugin's counters, for metrics.
type Stats struct {
	Calls     uint64 // calls made, failed ones included
	Failures  uint64 // calls that returned an error, guest errors (status 1) included
	Discarded uint64 // instances closed after a trap, timeout, out-of-memory or protocol violation
	Created   uint64 // instances created, the one made at load included
	Live      int64  // instances alive now, idle or busy
	Busy      int64  // instances serving a call now (or being created for one)
	InFlight  int64  // calls in progress, those waiting for an instance included
}

func newPlugin(r *Runtime, name string, code *compiledModule) *Plugin {
	p := &Plugin{
		name:    name,
		rt:      r,
		code:    code,
		log:     r.log.With("plugin", name),
		slots:   make(chan struct{}, r.opts.Pool),
		closing: make(chan struct{}),
		drained: make(chan struct{}),
	}
	p.aborted, p.abort = context.WithCancel(context.Background())
	p.logs = newLogLimiter(func(n uint64) {
		p.log.Warn("guest log lines dropped by rate limit", "dropped", n)
	})
	return p
}

// redact masks the runtime's Redact values (secrets) in s.
func (p *Plugin) redact(s string) string {
	g := p.grants.Load()
	if g == nil {
		return s
	}
	for _, v := range g.Redact {
		if v != "" && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// Name is the name the plugin was loaded with.
func (p *Plugin) Name() string { return p.name }

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Stats {
	p.mu.Lock()
	inflight := p.inflight
	p.mu.Unlock()
	return Stats{
		Calls:     p.calls.Load(),
		Failures:  p.failures.Load(),
		Discarded: p.discarded.Load(),
		Created:   p.created.Load(),
		Live:      p.live.Load(),
		Busy:      int64(len(p.slots)),
		InFlight:  int64(inflight),
	}
}

// Call runs entry point entry on input and returns the output that follows the status byte. It takes an idle
// instance, creates one if fewer than Options.Pool are alive, or waits for one (until ctx is done). The guest runs
// under a deadline of Options.Timeout or ctx's, whichever comes first. An empty input is passed as (0, 0) without
// calling cc_alloc.
//
// A status-1 answer is a *GuestError and the instance stays in the pool. Any other failure (ErrTimeout, ErrTrap,
// ErrProtocol, ErrOutputTooLarge, or the cancellation of ctx while the guest ran) discards the instance: the next
// call gets a fresh one. Errors are wrapped with the plugin's name and the entry point, never with the input.
func (p *Plugin) Call(ctx context.Context, entry uint32, input []byte) (out []byte, err error) {
	p.calls.Add(1)
	defer func() {
		if err != nil {
			p.failures.Add(1)
			err = fmt.Errorf("calling plugin %q entry %d: %w", p.name, entry, err)
		}
	}()
	if uint64(len(input)) > math.MaxUint32 {
		return nil, fmt.Errorf("input of %d bytes does not fit in wasm32 memory", len(input))
	}
	if !p.enter() {
		return nil, ErrClosed
	}
	defer p.leave()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a free instance: %w", ctx.Err())
	case <-p.closing:
		return nil, ErrClosed
	}
	defer func() { <-p.slots }()
	if err := ctx.Err(); err != nil { // don't lose an instance to a call that cannot run
		return nil, fmt.Errorf("waiting for a free instance: %w", err)
	}

	inst, err := p.take(ctx)
	if err != nil {
		return nil, err
	}
	out, reusable, err := p.invoke(ctx, inst, entry, input)
	if reusable {
		p.put(inst)
	} else {
		p.discard(inst, fmt.Sprintf("entry %d", entry), err)
	}
	var guestErr *GuestError
	if errors.As(err, &guestErr) {
		p.log.Debug("guest returned an error", "entry", entry, "message", guestErr.Message)
	}
	return out, err
}

// invoke runs one call on inst. reusable is false when inst must not serve another call.
func (p *Plugin) invoke(ctx context.Context, inst *instance, entry uint32, input []byte) (out []byte, reusable bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, p.rt.opts.Timeout)
	defer cancel()
	defer context.AfterFunc(p.aborted, cancel)()
	cctx = withInstance(withPlugin(cctx, p), inst)
	if inst.memory != nil {
		if !inst.memory.hold() {
			return nil, false, ErrClosed
		}
		defer inst.memory.release()
	}
	inst.done = cctx.Done()
	defer func() {
		inst.done, inst.pending = nil, nil
		if cap(inst.answer) > keptAnswer {
			inst.answer = nil // a big HTTP body: don't keep it for the instance's life
		}
	}()
	inst.stdout.Reset()
	inst.stderr.Reset()

	var ptr uint32
	if len(input) > 0 {
		inst.stack[0] = uint64(len(input))
		if err := inst.alloc.CallWithStack(cctx, inst.stack[:]); err != nil {
			return nil, false, p.classify(ctx, cctx, err)
		}
		ptr = uint32(inst.stack[0])
		if ptr == 0 {
			return nil, false, fmt.Errorf("%w: cc_alloc(%d) returned 0", ErrProtocol, len(input))
		}
		if !inst.mem.Write(ptr, input) {
			return nil, false, fmt.Errorf("%w: cc_alloc(%d) returned %#x, outside memory of %d bytes",
				ErrProtocol, len(input), ptr, inst.mem.Size())
		}
	}
	inst.stack[0], inst.stack[1], inst.stack[2] = uint64(entry), uint64(ptr), uint64(len(input))
	if err := inst.call.CallWithStack(cctx, inst.stack[:]); err != nil {
		return nil, false, p.classify(ctx, cctx, err)
	}
	// A deadline reached just as the guest returned may still close the instance: keep the answer, not the instance.
	reusable = cctx.Err() == nil && !inst.mod.IsClosed()

	outPtr, outLen := uint32(inst.stack[0]>>32), uint32(inst.stack[0])
	if uint64(outLen) > uint64(p.rt.opts.MaxOutput) {
		return nil, false, fmt.Errorf("%w: %d bytes, limit %d", ErrOutputTooLarge, outLen, p.rt.opts.MaxOutput)
	}
	if outLen == 0 {
		return nil, false, fmt.Errorf("%w: empty output, no status byte", ErrProtocol)
	}
	b, ok := inst.mem.Read(outPtr, outLen)
	if !ok {
		return nil, false, fmt.Errorf("%w: output of %d bytes at %#x is outside memory of %d bytes",
			ErrProtocol, outLen, outPtr, inst.mem.Size())
	}
	switch b[0] {
	case statusOK:
		return bytes.Clone(b[1:]), reusable, nil
	case statusError:
		msg, _ := truncateUTF8(b[1:], maxLogLine)
		return nil, reusable, &GuestError{Message: msg}
	}
	return nil, false, fmt.Errorf("%w: unknown status byte %d", ErrProtocol, b[0])
}

// classify turns an error from wazero into one of the package's errors. ctx is the caller's, cctx the call's.
func (p *Plugin) classify(ctx, cctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrTimeout, ctxErr)
		}
		return fmt.Errorf("call canceled: %w", ctxErr)
	}
	if cctx.Err() != nil {
		return fmt.Errorf("%w after %s", ErrTimeout, p.rt.opts.Timeout)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		if p.isClosed() {
			return ErrClosed
		}
		// The guest called proc_exit (os.Exit in Go). A Go panic or fatal error (running out of memory included)
		// is a trap instead: runtime.abort executes unreachable, after writing the reason to stderr.
		return &trapError{short: fmt.Errorf("%w: guest exited with code %d", ErrTrap, exit.ExitCode())}
	}
	msg := err.Error()
	first, detail, _ := strings.Cut(msg, "\n")
	if errors.Is(err, errBadLogPointer) {
		first = errBadLogPointer.Error()
	}
	return &trapError{short: fmt.Errorf("%w: %s", ErrTrap, first), detail: detail}
}

// trapError is a trap's short message, returned to callers, and wazero's wasm stack trace, only logged.
type trapError struct {
	short  error
	detail string
}

func (e *trapError) Error() string { return e.short.Error() }
func (e *trapError) Unwrap() error { return e.short }

func (p *Plugin) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// enter counts a call in flight, unless the plugin is closed.
func (p *Plugin) enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.inflight++
	return true
}

// leave ends a call; the last one to leave a closed plugin releases it.
func (p *Plugin) leave() {
	p.mu.Lock()
	p.inflight--
	last := p.closed && p.inflight == 0
	if last {
		close(p.drained)
	}
	p.mu.Unlock()
	if last {
		p.finish()
	}
}

// take returns an idle instance, or a new one. The caller holds a slot, so no more than Pool instances exist.
func (p *Plugin) take(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.mu.Unlock()
	return p.newInstance(ctx)
}

// put returns a healthy instance to the pool, or closes it if the plugin is closing.
func (p *Plugin) put(inst *instance) {
	p.mu.Lock()
	if !p.closed {
		p.idle = append(p.idle, inst)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.closeInstance(inst)
}

// discard closes an instance that failed, logging why with the tail of its stdout and stderr.
func (p *Plugin) discard(inst *instance, during string, err error) {
	p.discarded.Add(1)
	args := []any{"during", during}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	var trap *trapError
	if errors.As(err, &trap) && trap.detail != "" {
		detail, _ := truncateUTF8([]byte(trap.detail), maxLogLine)
		args = append(args, "trace", detail)
	}
	if s := inst.stderr.String(); s != "" {
		args = append(args, "stderr", p.redact(s))
	}
	if s := inst.stdout.String(); s != "" {
		args = append(args, "stdout", p.redact(s))
	}
	p.log.Warn("discarding plugin instance", args...)
	p.closeInstance(inst)
}

func (p *Plugin) closeInstance(inst *instance) {
	_ = inst.mod.Close(context.Background())
	if inst.memory != nil {
		inst.memory.Free() // wazero frees it too, except when the instance was closed by a call's deadline
	}
	p.live.Add(-1)
}

// newInstance instantiates the plugin and runs its _initialize under the call deadline.
func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	ictx, cancel := context.WithTimeout(ctx, p.rt.opts.Timeout)
	defer cancel()
	defer context.AfterFunc(p.aborted, cancel)()
	ictx = withPlugin(ictx, p)
	inst := &instance{stdout: newTailBuffer(outputTail), stderr: newTailBuffer(outputTail), done: ictx.Done()}
	defer func() { inst.done = nil }()
	cfg := wazero.NewModuleConfig().
		WithName("").         // anonymous, so one compiled module can have many instances
		WithStartFunctions(). // _initialize runs below, under the deadline
		WithStdout(inst.stdout).
		WithStderr(inst.stderr).
		WithSysNanotime(). // wazero's fake clocks made Go guests' memory grow without bound
		WithSysWalltime().
		WithNanosleep(inst.sleep).
		WithRandSource(rand.Reader) // the default source is deterministic: no good for nonces or boundaries
	// The memory is held until the instance is set up: the runtime may close meanwhile.
	ictx = withMemory(ictx, func(m guestMemory) {
		m.hold()
		inst.memory = m
	})
	defer func() {
		if inst.memory != nil {
			inst.memory.release()
		}
	}()
	mod, err := p.rt.wz.InstantiateModule(ictx, p.code.cm, cfg)
	if err != nil {
		if inst.memory != nil {
			inst.memory.Free() // wazero does not, when instantiation fails after making the memory
		}
		if ctx.Err() != nil || ictx.Err() != nil {
			return nil, p.classify(ctx, ictx, err)
		}
		return nil, &ABIError{Problems: []string{"linking: " + strings.SplitN(err.Error(), "\n", 2)[0]}}
	}
	inst.mod = mod
	inst.mem = mod.Memory()
	inst.alloc = mod.ExportedFunction("cc_alloc")
	inst.call = mod.ExportedFunction("cc_call")
	p.created.Add(1)
	p.live.Add(1)
	if init := mod.ExportedFunction("_initialize"); init != nil {
		if _, err := init.Call(ictx); err != nil {
			err = p.classify(ctx, ictx, err)
			p.discard(inst, "_initialize", err)
			return nil, fmt.Errorf("initialising instance: %w", err)
		}
	}
	if ictx.Err() != nil || mod.IsClosed() {
		err := fmt.Errorf("%w while initialising", ErrTimeout)
		p.discard(inst, "_initialize", err)
		return nil, err
	}
	if s := p.setup.Load(); s != nil {
		_, reusable, err := p.invoke(ctx, inst, s.entry, s.input)
		if err == nil && !reusable {
			err = fmt.Errorf("%w while configuring", ErrTimeout)
		}
		if err != nil {
			p.discard(inst, "configure", err)
			// A refusal here is a fault of the instance's start, not the plugin's answer to a call: %v keeps it from
			// matching ErrGuest, so callers count it against the plugin.
			return nil, fmt.Errorf("%w: configuring a new instance failed: %v", ErrProtocol, err)
		}
	}
	return inst, nil
}

// Close stops new calls, waits until the calls in flight end or ctx is done, and closes the instances. If ctx ends
// first, Close returns its error and the last call to finish closes the instances.
func (p *Plugin) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.closing)
		if p.inflight == 0 {
			close(p.drained)
		}
	}
	p.mu.Unlock()
	select {
	case <-p.drained:
	default:
		select {
		case <-p.drained:
		case <-ctx.Done():
			return fmt.Errorf("closing plugin %q with calls in flight: %w", p.name, ctx.Err())
		}
	}
	p.finish()
	return nil
}

// finish closes the idle instances and releases the compiled code, once.
func (p *Plugin) finish() {
	p.finished.Do(func() {
		p.logs.stop()
		p.mu.Lock()
		idle := p.idle
		p.idle = nil
		p.mu.Unlock()
		for _, inst := range idle {
			p.closeInstance(inst)
		}
		p.rt.release(p)
	})
}
