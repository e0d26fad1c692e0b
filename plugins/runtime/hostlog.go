package runtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// HostModule is the name of the host module every plugin may import (sdk/ABI.md).
const HostModule = "crosscast_v1"

// Limits of the log host function.
const (
	maxLogLine    = 4 << 10 // bytes kept of one guest log line
	logRatePerSec = 100     // guest log lines per second and plugin, sustained
	logBurst      = 200     // guest log lines a plugin may send at once
	dropReportGap = time.Second
)

// hostImports are the functions of crosscast_v1 and their signatures, checked at load.
var hostImports = map[string]funcSig{
	"log":  {params: []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}},
	"take": {params: []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, results: []api.ValueType{api.ValueTypeI32}},
	// The capability imports: (req_ptr, req_len) -> answer length.
	ImportHTTP: capabilitySig,
	ImportSMTP: capabilitySig,
	// smtp_batch came after ABI 1's first hosts: a plugin that imports it needs this host or a later one.
	ImportSMTPBatch: capabilitySig,
	ImportKV:        capabilitySig,
	ImportSecret:    capabilitySig,
	ImportMetric:    capabilitySig,
}

var capabilitySig = funcSig{params: []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, results: []api.ValueType{api.ValueTypeI64}}

// errBadLogPointer is raised (as a panic, which wazero turns into the call's error) when a guest passes log a
// range outside its memory: the guest is broken, the host carries on.
var errBadLogPointer = errors.New("log: pointer and length outside guest memory")

// pluginKey carries the calling *Plugin in the context of every call into a guest, so host functions know which
// plugin called them.
type pluginKey struct{}

func withPlugin(ctx context.Context, p *Plugin) context.Context {
	return context.WithValue(ctx, pluginKey{}, p)
}

// instantiateHostModule defines crosscast_v1 in rt.
func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(HostModule)
	funcs := map[string]api.GoModuleFunc{"log": hostLog, "take": hostTake}
	for _, name := range capabilityImports {
		funcs[name] = capabilityFunc(name)
	}
	for name, fn := range funcs {
		sig := hostImports[name]
		b = b.NewFunctionBuilder().WithGoModuleFunction(fn, sig.params, sig.results).Export(name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// hostLog implements crosscast_v1.log(level, ptr, len).
func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	level, ptr, n := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	mem := mod.Memory()
	if mem == nil {
		panic(errBadLogPointer)
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		panic(errBadLogPointer)
	}
	p, _ := ctx.Value(pluginKey{}).(*Plugin)
	if p == nil || !p.logs.allow(time.Now()) {
		return
	}
	line, truncated := truncateUTF8(b, maxLogLine)
	line = p.redact(line)
	if truncated {
		p.log.Log(guestLevel(level), "log", "line", line, "truncated", true)
		return
	}
	p.log.Log(guestLevel(level), "log", "line", line)
}

// guestLevel maps ABI levels 1 (trace) to 5 (error) to hclog, clamping anything outside.
func guestLevel(l uint32) hclog.Level {
	switch {
	case l <= 1:
		return hclog.Trace
	case l == 2:
		return hclog.Debug
	case l == 3:
		return hclog.Info
	case l == 4:
		return hclog.Warn
	default:
		return hclog.Error
	}
}

// logLimiter is a token bucket over one plugin's guest log lines. Dropped lines are counted and reported through
// report at most once per dropReportGap, by a timer, so a count is never lost even if the plugin falls silent.
type logLimiter struct {
	report func(dropped uint64)

	mu         sync.Mutex
	tokens     float64
	refilled   time.Time
	dropped    uint64
	lastReport time.Time
	timer      *time.Timer
	stopped    bool
}

func newLogLimiter(report func(uint64)) *logLimiter {
	return &logLimiter{report: report, tokens: logBurst, refilled: time.Now()}
}

// allow takes a token, or counts a dropped line and makes sure a report is scheduled.
func (l *logLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := now.Sub(l.refilled); d > 0 {
		l.tokens = min(logBurst, l.tokens+d.Seconds()*logRatePerSec)
		l.refilled = now
	}
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	l.dropped++
	if l.timer == nil && !l.stopped {
		l.timer = time.AfterFunc(max(0, l.lastReport.Add(dropReportGap).Sub(now)), l.flush)
	}
	return false
}

func (l *logLimiter) flush() {
	l.mu.Lock()
	n := l.dropped
	l.dropped, l.timer, l.lastReport = 0, nil, time.Now()
	l.mu.Unlock()
	if n > 0 {
		l.report(n)
	}
}

// stop cancels a pending report and reports what it would have.
func (l *logLimiter) stop() {
	l.mu.Lock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	n := l.dropped
	l.dropped = 0
	l.mu.Unlock()
	if n > 0 {
		l.report(n)
	}
}
