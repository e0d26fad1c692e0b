// Command bigstart is a test guest with the full ABI v1 exports that allocates 128 MiB while it initialises, more
// than the memory limit the tests give it.
package main

import "unsafe"

func main() {}

var (
	ballast []byte
	out     = []byte{0}
)

func init() {
	ballast = make([]byte, 128<<20)
	ballast[len(ballast)-1] = 1
}

//go:wasmexport cc_abi_v1
func abi() {}

//go:wasmexport cc_alloc
func alloc(n uint32) uint32 { return uint32(uintptr(unsafe.Pointer(&out[0]))) }

//go:wasmexport cc_call
func call(entry, ptr, n uint32) uint64 {
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out)+int(ballast[0]))
}
