package runtime

import (
	"context"
	"errors"

	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/tetratelabs/wazero/api"
)

// HTTPFunc performs a plugin's HTTP request under the operator's grants (plugins/netguard in production). It
// reports refusals and failures in the response's Error; it must honour ctx, the call's deadline.
type HTTPFunc func(ctx context.Context, req wire.HTTPRequest) wire.HTTPResponse

// maxHTTPRequest caps the encoded request a guest may hand to the http import.
const maxHTTPRequest = 8 << 20

var errBadHostPointer = errors.New("host call: pointer and length outside guest memory")

// instanceKey carries the *instance running the current call, for host functions that keep per-instance state.
type instanceKey struct{}

func withInstance(ctx context.Context, inst *instance) context.Context {
	return context.WithValue(ctx, instanceKey{}, inst)
}

// hostHTTP implements crosscast_v1.http(req_ptr, req_len) -> i64: it performs the request and keeps the encoded
// wire.HTTPResponse for take; the result is its length. Refusals (capability not granted, origin not granted,
// forbidden address) are responses with Error set, never traps: the plugin decides what they mean for a message.
func hostHTTP(ctx context.Context, mod api.Module, stack []uint64) {
	ptr, n := uint32(stack[0]), uint32(stack[1])
	p, _ := ctx.Value(pluginKey{}).(*Plugin)
	inst, _ := ctx.Value(instanceKey{}).(*instance)
	if p == nil || inst == nil {
		panic(errors.New("http called outside a plugin call"))
	}
	var resp wire.HTTPResponse
	switch {
	case n > maxHTTPRequest:
		resp.Error = "request too large for the http capability"
	case p.rt.opts.HTTP == nil:
		resp.Error = "the http capability is not granted to this plugin"
	default:
		b, ok := mod.Memory().Read(ptr, n)
		if !ok {
			panic(errBadHostPointer)
		}
		req, err := wire.DecodeHTTPRequest(b)
		if err != nil {
			resp.Error = "malformed http request: " + err.Error()
			break
		}
		resp = p.rt.opts.HTTP(ctx, req)
	}
	w := wire.NewWriter(nil)
	resp.Encode(w)
	inst.pending = w.Bytes()
	stack[0] = uint64(len(inst.pending))
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
