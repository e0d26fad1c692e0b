// Command hostile is a test guest written against the raw ABI v1 (no sdk) whose entry points misbehave in every way
// the host must contain. Entry 0 is healthy. cc_alloc misbehaves for two magic sizes.
package main

import (
	"strconv"
	"time"
	"unsafe"
)

func main() {}

var (
	pinned = map[uintptr][]byte{}
	out    []byte
	hoard  [][]byte
)

const (
	allocOutOfBounds = 13 // cc_alloc(13) returns a pointer past the end of memory
	allocNull        = 14 // cc_alloc(14) returns 0
)

//go:wasmexport cc_abi_v1
func abi() {}

//go:wasmexport cc_alloc
func alloc(n uint32) uint32 {
	switch n {
	case allocOutOfBounds:
		return 0xFFFF_FF00
	case allocNull:
		return 0
	case 0:
		n = 1
	}
	b := make([]byte, n)
	p := uintptr(unsafe.Pointer(&b[0]))
	pinned[p] = b
	return uint32(p)
}

//go:wasmimport crosscast_v1 log
func hostLog(level, ptr, n uint32)

//go:wasmimport crosscast_v1 kv
func hostKV(ptr, n uint32) uint64

//go:wasmimport crosscast_v1 take
func hostTake(ptr, n uint32) uint32

func packed(b []byte) uint64 {
	return uint64(uintptr(unsafe.Pointer(&b[0])))<<32 | uint64(len(b))
}

//go:wasmexport cc_call
func call(entry, ptr, n uint32) uint64 {
	delete(pinned, uintptr(ptr))
	out = append(out[:0], 0)
	switch entry {
	case 0: // healthy
		out = append(out, "ok"...)
	case 1: // infinite loop
		for {
		}
	case 2: // memory bomb: grow until the host's limit stops it
		for {
			hoard = append(hoard, make([]byte, 8<<20))
		}
	case 3: // Go panic
		panic("hostile guest panics on purpose")
	case 4: // output length far beyond memory and MaxOutput
		return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | 0xFFFF_FFF0
	case 5: // output pointer out of bounds
		return 0xFFFF_FF00<<32 | 16
	case 6: // log flood
		for i := 0; i < 100_000; i++ {
			line := []byte("flood line " + strconv.Itoa(i))
			hostLog(3, uint32(uintptr(unsafe.Pointer(&line[0]))), uint32(len(line)))
		}
	case 7: // unknown status byte
		out[0] = 7
	case 8: // empty output
		return 0
	case 9: // log with a pointer outside memory
		hostLog(3, 0xFFFF_FFF0, 100)
	case 10: // a real output of 2 MiB, over a 1 MiB MaxOutput
		out = append(out, make([]byte, 2<<20)...)
	case 11: // pointer + length wraps around 4 GiB
		return 0xFFFF_FFF0<<32 | 0x20
	case 12: // sleeps for an hour
		time.Sleep(time.Hour)
	case 13: // a capability request with a pointer outside memory
		hostKV(0xFFFF_FF00, 64)
	case 14: // a capability request claiming 2 GiB, then takes the answer with a wrong length first
		n := uint32(hostKV(0, 0x7FFF_FFFF))
		buf := make([]byte, n+1)
		if hostTake(uint32(uintptr(unsafe.Pointer(&buf[0]))), n+1) != 0 {
			out = append(out, "take accepted a wrong length"...)
			break
		}
		if hostTake(uint32(uintptr(unsafe.Pointer(&buf[0]))), n) != n {
			out = append(out, "take refused the right length"...)
			break
		}
		out = append(out, buf[:n]...)
	}
	return packed(out)
}
