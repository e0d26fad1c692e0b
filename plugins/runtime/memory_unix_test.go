//go:build unix

package runtime

import "testing"

func TestReservedMemory(t *testing.T) {
	m, ok := newMemory(0, 4<<16).(*reservedMemory)
	if !ok {
		t.Fatal("not a reserved memory")
	}
	b := m.Reallocate(1 << 16)
	if len(b) != 1<<16 {
		t.Fatalf("%d bytes", len(b))
	}
	b[len(b)-1] = 7
	if b = m.Reallocate(3 << 16); len(b) != 3<<16 || b[1<<16-1] != 7 {
		t.Fatal("growing lost what was written")
	}
	if m.Reallocate(5<<16) != nil {
		t.Fatal("grown past the reservation")
	}
	// Freed while held: still mapped until the hold ends, then unmapped; no hold after.
	if !m.hold() {
		t.Fatal("hold refused")
	}
	m.Free()
	if m.buf == nil {
		t.Fatal("unmapped while held")
	}
	b[0] = 1 // still writable
	m.release()
	if m.buf != nil || m.hold() || m.Reallocate(1) != nil {
		t.Fatal("a freed memory is still usable")
	}
	m.Free() // twice is fine
}
