//go:build !unix

package runtime

import "github.com/tetratelabs/wazero/experimental"

func newMemory(capacity, _ uint64) experimental.LinearMemory {
	return &heapMemory{buf: make([]byte, 0, capacity)}
}
