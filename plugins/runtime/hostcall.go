package runtime

import (
	"bytes"
	"context"
	"errors"

	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/tetratelabs/wazero/api"
)

// HostFunc serves one capability import (sdk/ABI.md, "Host imports"). It receives the guest's encoded request and
// writes its answer to w; an error is a refusal or a failure, sent to the guest in the answer's envelope, never a
// trap. It must honour ctx, which carries the call's deadline and whatever the caller of Plugin.Call put in it.
type HostFunc func(ctx context.Context, req []byte, w *wire.Writer) error

// The capability imports of crosscast_v1, each served by Options.Host[name].
const (
	ImportHTTP = "http"
	ImportSMTP = "smtp"
	// ImportSMTPBatch sends several messages at once; it comes with the smtp grant.
	ImportSMTPBatch = "smtp_batch"
	ImportKV        = "kv"
	ImportSecret    = "secret"
	ImportMetric    = "metric"
)

// capabilityImports are the names of the imports that follow the request/answer/take protocol.
var capabilityImports = []string{ImportHTTP, ImportSMTP, ImportSMTPBatch, ImportKV, ImportSecret, ImportMetric}

// maxHostRequest caps the encoded request a guest may hand to a capability import (an email with attachments
// fits; a guest cannot make the host copy its whole memory).
const maxHostRequest = 32 << 20

// maxAnswerError caps the error text of an answer.
const maxAnswerError = 4 << 10

var errBadHostPointer = errors.New("host call: pointer and length outside guest memory")

// instanceKey carries the *instance running the current call, for host functions that keep per-instance state.
type instanceKey struct{}

func withInstance(ctx context.Context, inst *instance) context.Context {
	return context.WithValue(ctx, instanceKey{}, inst)
}

// capabilityFunc returns the wasm function of import name: it reads the request, runs the plugin's HostFunc (or
// refuses when the plugin has none for it), and keeps the answer for take; the result is the answer's length.
func capabilityFunc(name string) api.GoModuleFunc {
	notGranted := "the " + name + " capability is not granted to this plugin"
	switch name {
	case ImportSecret, ImportMetric:
		notGranted = "the " + name + "s capability is not granted to this plugin"
	case ImportSMTPBatch:
		notGranted = "the smtp capability is not granted to this plugin"
	}
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		ptr, n := uint32(stack[0]), uint32(stack[1])
		p, _ := ctx.Value(pluginKey{}).(*Plugin)
		inst, _ := ctx.Value(instanceKey{}).(*instance)
		if p == nil || inst == nil {
			panic(errors.New(name + " called outside a plugin call"))
		}
		w := wire.NewWriter(inst.answer[:0])
		w.String("")
		var err error
		if n > maxHostRequest {
			err = errors.New("request too large for the " + name + " capability")
		} else {
			b, ok := mod.Memory().Read(ptr, n)
			if !ok {
				panic(errBadHostPointer) // a broken guest: trap, whatever it asked for
			}
			if fn := p.hostFunc(name); fn == nil {
				err = errors.New(notGranted)
			} else {
				// A copy: what a host function keeps (an HTTP body a transport still reads) must not outlive the
				// instance's memory, which is unmapped when the instance closes.
				err = fn(ctx, bytes.Clone(b), w)
			}
		}
		if err != nil {
			msg, _ := truncateUTF8([]byte(err.Error()), maxAnswerError)
			if msg == "" {
				msg = name + " failed"
			}
			w.Reset()
			w.String(msg)
		}
		inst.answer = w.Bytes()
		inst.pending = inst.answer
		stack[0] = uint64(len(inst.pending))
	}
}

// hostTake implements crosscast_v1.take(ptr, len) -> i32: it copies the pending host answer into the guest's
// buffer, which must be exactly its length, and returns the bytes written (0 on a mismatch or nothing pending).
func hostTake(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := uint32(stack[0]), uint32(stack[1])
	inst, _ := ctx.Value(instanceKey{}).(*instance)
	if inst == nil || inst.pending == nil || int(n) != len(inst.pending) {
		stack[0] = 0
		return
	}
	if !mod.Memory().Write(ptr, inst.pending) {
		panic(errBadHostPointer)
	}
	inst.pending = nil
	stack[0] = uint64(n)
}
