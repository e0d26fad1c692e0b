//go:build !unix

package runtime

func newMemory(capacity, _ uint64) guestMemory {
	return &heapMemory{buf: make([]byte, 0, capacity)}
}
