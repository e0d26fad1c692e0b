// Command badimport is a test guest with the full ABI v1 exports that also imports env.foo, which no host provides.
package main

import "unsafe"

func main() {}

var out = []byte{0}

//go:wasmimport env foo
func foo() uint32

//go:wasmexport cc_abi_v1
func abi() {}

//go:wasmexport cc_alloc
func alloc(n uint32) uint32 { return uint32(uintptr(unsafe.Pointer(&out[0]))) }

//go:wasmexport cc_call
func call(entry, ptr, n uint32) uint64 {
	out[0] = byte(foo())
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | 1
}
