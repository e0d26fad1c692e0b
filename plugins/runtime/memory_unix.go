//go:build unix

package runtime

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// reservedMemory is a memory mapped at its maximum size, outside the Go heap. The kernel gives it zeroed pages as
// the guest first touches them (MAP_NORESERVE: the reservation itself takes no memory).
type reservedMemory struct{ buf []byte }

// newMemory reserves max bytes, or falls back to a Go slice when it cannot.
func newMemory(capacity, max uint64) experimental.LinearMemory {
	if max > 0 && max <= 1<<32 {
		buf, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON|mapNoReserve)
		if err == nil {
			return &reservedMemory{buf: buf}
		}
	}
	return &heapMemory{buf: make([]byte, 0, capacity)}
}

// Reallocate returns the first size bytes of the reservation; nil past it (the guest's memory.grow fails).
func (m *reservedMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

// Free unmaps the memory. The runtime never hands guest memory to code that may outlive the instance: host
// functions get a copy of their request, and outputs are copied.
func (m *reservedMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}
