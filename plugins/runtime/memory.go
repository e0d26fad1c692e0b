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

// withMemory makes the instances created with ctx use reserved memories.
func withMemory(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(newMemory))
}

// heapMemory is a memory in the Go heap, grown by appending: wazero's own way, for when reserving fails.
type heapMemory struct{ buf []byte }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if n := uint64(len(m.buf)); size > n {
		m.buf = append(m.buf, make([]byte, size-n)...)
	}
	return m.buf[:size]
}

func (m *heapMemory) Free() { m.buf = nil }
