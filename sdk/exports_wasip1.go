//go:build wasip1

package sdk

import (
	"errors"
	"runtime"
	"unsafe"

	"github.com/crosscast/crosscast/sdk/wire"
)

// Memory handed to the host: cc_alloc pins a buffer here until the guest gets it back through cc_call.
var (
	pinned = map[uintptr][]byte{}
	output = wire.NewWriter(make([]byte, 0, 64<<10))
	// inputSinceGC counts input bytes since the last forced collection.
	inputSinceGC int
)

// gcEvery is how much input the guest takes in between forced collections. Go's collector keeps a reactor's
// memory bounded on its own (measured flat at 7 MiB over 200,000 calls); collecting after every MiB of input keeps
// the heap small (3 MiB) where big batches arrive, at no cost to small calls (docs/RATIONALE.md).
const gcEvery = 1 << 20

//go:wasmexport cc_abi_v1
func ccABIv1() {}

//go:wasmexport cc_alloc
func ccAlloc(size uint32) uint32 {
	if size == 0 {
		size = 1
	}
	b := make([]byte, size)
	p := uintptr(unsafe.Pointer(&b[0]))
	pinned[p] = b
	return uint32(p)
}

//go:wasmexport cc_call
func ccCall(entry, ptr, length uint32) uint64 {
	input := pinned[uintptr(ptr)]
	delete(pinned, uintptr(ptr))
	if uint32(len(input)) < length {
		input = nil // not a buffer of ours: treat as empty rather than read stray memory
	} else {
		input = input[:length]
	}
	out := dispatch(registered, entry, input, output)
	if inputSinceGC += len(input); inputSinceGC >= gcEvery {
		inputSinceGC = 0
		runtime.GC()
	}
	if len(out) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}

//go:wasmimport crosscast_v1 log
func hostLog(level, ptr, length uint32)

func logLine(level Level, msg string) {
	if msg == "" {
		return
	}
	b := []byte(msg)
	hostLog(uint32(level), uint32(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b)))
	runtime.KeepAlive(b)
}

//go:wasmimport crosscast_v1 http
func hostHTTP(ptr, length uint32) uint64

//go:wasmimport crosscast_v1 smtp
func hostSMTP(ptr, length uint32) uint64

//go:wasmimport crosscast_v1 smtp_batch
func hostSMTPBatch(ptr, length uint32) uint64

//go:wasmimport crosscast_v1 kv
func hostKV(ptr, length uint32) uint64

//go:wasmimport crosscast_v1 secret
func hostSecret(ptr, length uint32) uint64

//go:wasmimport crosscast_v1 metric
func hostMetric(ptr, length uint32) uint64

//go:wasmimport crosscast_v1 take
func hostTake(ptr, length uint32) uint32

// The calls of each capability's import. Each SDK function names its own, and Go links only the functions a plugin
// reaches: a plugin that never calls sdk.KV does not import crosscast_v1.kv, and loads on hosts that lack an import
// it does not use.
func callHTTP(req []byte) ([]byte, error)      { return hostCall(capHTTP, hostHTTP, req) }
func callSMTP(req []byte) ([]byte, error)      { return hostCall(capSMTP, hostSMTP, req) }
func callSMTPBatch(req []byte) ([]byte, error) { return hostCall(capSMTPBatch, hostSMTPBatch, req) }
func callKV(req []byte) ([]byte, error)        { return hostCall(capKV, hostKV, req) }
func callSecret(req []byte) ([]byte, error)    { return hostCall(capSecret, hostSecret, req) }
func callMetric(req []byte) ([]byte, error)    { return hostCall(capMetric, hostMetric, req) }

// hostCall hands an encoded request to a capability's import and takes the answer the host keeps for it.
func hostCall(c capability, imp func(ptr, length uint32) uint64, req []byte) ([]byte, error) {
	var p uint32
	if len(req) > 0 {
		p = uint32(uintptr(unsafe.Pointer(&req[0])))
	}
	n := uint32(imp(p, uint32(len(req))))
	runtime.KeepAlive(req)
	if n == 0 {
		return nil, errors.New(string(c) + ": empty answer from the host")
	}
	out := make([]byte, n)
	if hostTake(uint32(uintptr(unsafe.Pointer(&out[0]))), n) != n {
		return nil, errors.New(string(c) + ": the host's answer could not be taken")
	}
	return out, nil
}
