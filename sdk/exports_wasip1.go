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

// capabilityImports are the host imports behind each capability. Go links only the imports a plugin uses, so a
// plugin that never calls sdk.KV does not import crosscast_v1.kv.
var capabilityImports = map[capability]func(ptr, length uint32) uint64{
	capHTTP: hostHTTP, capSMTP: hostSMTP, capSMTPBatch: hostSMTPBatch, capKV: hostKV, capSecret: hostSecret, capMetric: hostMetric,
}

// hostCall hands an encoded request to a capability's import and takes the answer the host keeps for it.
func hostCall(c capability, req []byte) ([]byte, error) {
	var p uint32
	if len(req) > 0 {
		p = uint32(uintptr(unsafe.Pointer(&req[0])))
	}
	n := uint32(capabilityImports[c](p, uint32(len(req))))
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
