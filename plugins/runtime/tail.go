package runtime

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// tailBuffer keeps the last max bytes written to it: a guest's stdout or stderr, so that a Go crash dump (~4 KB)
// is visible while a guest printing without end costs bounded memory.
type tailBuffer struct {
	mu        sync.Mutex
	buf       []byte
	max       int
	truncated bool
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

// Write keeps the tail. The buffer grows to twice max before it drops its front, so a stream of small writes costs
// amortised constant time per byte.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if n >= t.max {
		t.buf = append(t.buf[:0], p[n-t.max:]...)
		t.truncated = true
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.truncated = true
	}
	return n, nil
}

// Reset empties the buffer, keeping its memory.
func (t *tailBuffer) Reset() {
	t.mu.Lock()
	t.buf = t.buf[:0]
	t.truncated = false
	t.mu.Unlock()
}

// String returns at most the last max bytes as valid UTF-8, marked when older output was dropped.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	cut := t.truncated
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		cut = true
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if cut {
		return "[...]" + s
	}
	return s
}

// truncateUTF8 cuts b to at most n bytes without splitting a rune and replaces invalid UTF-8, so guest text is
// safe to log.
func truncateUTF8(b []byte, n int) (s string, truncated bool) {
	if len(b) > n {
		b = b[:n]
		truncated = true
		for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
			if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size > 1 {
				break
			}
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), truncated
}
