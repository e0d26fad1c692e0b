package runtime

import (
	"context"

	"github.com/tetratelabs/wazero/experimental"
)

// Linear memories. By default wazero keeps an instance's memory in a Go slice and grows it by appending: each
// growth past the slice's capacity copies the whole memory, and the old copy is garbage for the Go collector. A Go
// guest grows its memory many times while it warms up (to 64 MiB each for a batch of 20 KB emails), and the
// copying and collecting cost a fifth of a campaign's CPU. Where the system allows it, each memory is reserved at
// its maximum instead (virtual address space; pages cost only once touched) outside the Go heap, and growing it
// only lengthens the slice.
//
// Such a memory must not be unmapped while a guest runs on it: wazero frees memories when the runtime closes,
// from whichever goroutine closes it. So the runtime holds an instance's memory for as long as a call (or the
// instance's start) runs, and a Free that comes meanwhile takes effect when the last hold ends.

// guestMemory is an instance's linear memory as the runtime holds it.
type guestMemory interface {
	experimental.LinearMemory
	// hold marks the memory in use, and reports false once it is freed (the instance is closed).
	hold() bool
	// release ends a hold; the memory is unmapped now if it was freed meanwhile.
	release()
}

// withMemory makes the instance created with ctx use a reserved memory, handed to created.
func withMemory(ctx context.Context, created func(guestMemory)) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		m := newMemory(capacity, max)
		created(m)
		return m
	}))
}

// heapMemory is a memory in the Go heap, grown by appending: wazero's own way, for when reserving fails. The
// collector keeps it while anything uses it, so holds are free.
type heapMemory struct{ buf []byte }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if n := uint64(len(m.buf)); size > n {
		m.buf = append(m.buf, make([]byte, size-n)...)
	}
	return m.buf[:size]
}

func (m *heapMemory) Free()      { m.buf = nil }
func (m *heapMemory) hold() bool { return true }
func (m *heapMemory) release()   {}
