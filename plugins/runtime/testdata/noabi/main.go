// Command noabi is a test guest that lacks cc_abi_v1 and exports cc_call with the wrong result type.
package main

import "unsafe"

func main() {}

var buf = make([]byte, 64)

//go:wasmexport cc_alloc
func alloc(n uint32) uint32 { return uint32(uintptr(unsafe.Pointer(&buf[0]))) }

//go:wasmexport cc_call
func call(entry, ptr, n uint32) uint32 { return 0 }
