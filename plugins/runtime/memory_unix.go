//go:build unix

package runtime

import (
	"sync"
	"syscall"
)

// reservedMemory is a memory mapped at its maximum size, outside the Go heap. The kernel gives it zeroed pages as
// the guest first touches them (MAP_NORESERVE: the reservation itself takes no memory).
type reservedMemory struct {
	mu    sync.Mutex
	buf   []byte
	holds int
	freed bool
}

// newMemory reserves max bytes, or falls back to a Go slice when it cannot.
func newMemory(capacity, max uint64) guestMemory {
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
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed || size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

// Free unmaps the memory, or marks it to be unmapped when the last hold ends. It may be called more than once.
func (m *reservedMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.freed = true
	if m.holds == 0 {
		m.unmap()
	}
}

func (m *reservedMemory) hold() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed {
		return false
	}
	m.holds++
	return true
}

func (m *reservedMemory) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holds--; m.holds == 0 && m.freed {
		m.unmap()
	}
}

func (m *reservedMemory) unmap() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}
