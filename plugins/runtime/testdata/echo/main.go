// Command echo is a test guest written against the raw ABI v1 (no sdk): entry 1 echoes its input, entry 2 answers
// with its input as an error message, entry 3 logs its input (first byte: level), entry 4 sleeps for the
// little-endian u32 milliseconds in its input, any other entry is an error.
package main

import (
	"encoding/binary"
	"time"
	"unsafe"
)

func main() {}

var (
	pinned = map[uintptr][]byte{}
	out    []byte
)

//go:wasmexport cc_abi_v1
func abi() {}

//go:wasmexport cc_alloc
func alloc(n uint32) uint32 {
	if n == 0 {
		n = 1
	}
	b := make([]byte, n)
	p := uintptr(unsafe.Pointer(&b[0]))
	pinned[p] = b
	return uint32(p)
}

//go:wasmimport crosscast_v1 log
func hostLog(level, ptr, n uint32)

//go:wasmexport cc_call
func call(entry, ptr, n uint32) uint64 {
	in := pinned[uintptr(ptr)]
	delete(pinned, uintptr(ptr))
	if uint32(len(in)) >= n {
		in = in[:n]
	} else {
		in = nil
	}
	out = out[:0]
	switch entry {
	case 1:
		out = append(append(out, 0), in...)
	case 2:
		out = append(append(out, 1), in...)
	case 3:
		if len(in) > 1 {
			msg := in[1:]
			hostLog(uint32(in[0]), uint32(uintptr(unsafe.Pointer(&msg[0]))), uint32(len(msg)))
		}
		out = append(out, 0)
	case 4:
		if len(in) == 4 {
			time.Sleep(time.Duration(binary.LittleEndian.Uint32(in)) * time.Millisecond)
		}
		out = append(out, 0)
	default:
		out = append(append(out, 1), "unknown entry"...)
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}
