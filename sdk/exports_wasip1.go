//go:build wasip1

package sdk

import (
	"runtime"
	"unsafe"

	"github.com/crosscast/crosscast/sdk/wire"
)

// Memory handed to the host: cc_alloc pins a buffer here until the guest gets it back through cc_call.
var (
	pinned = map[uintptr][]byte{}
	output = wire.NewWriter(make([]byte, 0, 64<<10))
	calls  uint32
)

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
	calls++
	// A reactor's goroutines only run inside calls, so the collector's background work would starve: collect
	// every 64 calls (measured cost in docs/RATIONALE.md).
	if calls%64 == 0 {
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
