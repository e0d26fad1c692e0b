package main

import (
	"slices"
	"unsafe"
)

// Body encodings, written for a wasm guest. Under the host's deadline checks every loop iteration of a Go guest
// costs several nanoseconds more, so a byte-at-a-time encoder spent 1.5 ms on a 20 KB newsletter (7bit) and 5.5 ms
// once it needed quoted-printable. These scan 8 bytes per iteration and copy runs of plain bytes in one copy
// (memory.copy in wasm), and handle the few bytes that need work one by one.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
	// maxLine7bit is RFC 5322's limit on a line, CRLF excluded.
	maxLine7bit = 998
	// maxLineQP is RFC 2045's limit on an encoded line, CRLF excluded; a soft break's "=" counts.
	maxLineQP = 76
)

// word loads the 8 bytes of s at i (i+8 <= len(s)).
func word(s string, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.StringData(s)), i))
}

// hasZero reports whether a byte of w is 0.
func hasZero(w uint64) bool { return (w-ones)&^w&highs != 0 }

// hasByte reports whether a byte of w is c.
func hasByte(w uint64, c byte) bool { return hasZero(w ^ (ones * uint64(c))) }

// hasLess reports whether a byte of w is below n (n <= 128), for w without high bits.
func hasLess(w uint64, n byte) bool { return (w-ones*uint64(n))&^w&highs != 0 }

// run7bit is the end of the run of bytes from i that 7bit copies as they are: ASCII but NUL, CR and LF.
func run7bit(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if w := word(s, i); w&highs != 0 || hasZero(w) || hasByte(w, '\n') || hasByte(w, '\r') {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c == 0 || c == '\n' || c == '\r' {
			break
		}
	}
	return i
}

// runQP is the end of the run of bytes from i that quoted-printable copies as they are: printable ASCII and space,
// but "=".
func runQP(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if w := word(s, i); w&highs != 0 || hasLess(w, ' ') || hasByte(w, 0x7f) || hasByte(w, '=') {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f || c == '=' {
			break
		}
	}
	return i
}

// append7bit appends body with CRLF line ends and reports true when body is ASCII without NUL or lone CR, in lines
// of at most 998 bytes; otherwise it reports false, and what it returns holds part of the body.
func append7bit(b []byte, body string) ([]byte, bool) {
	line := 0
	for i := 0; i < len(body); {
		j := run7bit(body, i)
		if line += j - i; line > maxLine7bit {
			return b, false
		}
		b = append(b, body[i:j]...)
		if j == len(body) {
			break
		}
		switch body[j] {
		case '\n':
			i = j + 1
		case '\r':
			if j+1 >= len(body) || body[j+1] != '\n' {
				return b, false
			}
			i = j + 2
		default:
			return b, false
		}
		b = append(b, "\r\n"...)
		line = 0
	}
	return b, true
}

const hexDigits = "0123456789ABCDEF"

// appendQP appends body quoted-printable (RFC 2045 6.7) with CRLF line ends: a line break of the body (LF or CRLF)
// is a line break; a lone CR, "=", control characters, bytes of 0x7F and above, and a space or tab ending a line
// are =XX; encoded lines are at most 76 characters, soft line breaks included.
func appendQP(b []byte, body string) []byte {
	b = slices.Grow(b, len(body)+len(body)/8)
	col := 0 // characters on the encoded line
	for i := 0; i < len(body); {
		j := runQP(body, i)
		// The run, in pieces that fit the line; a space or tab that ends a line of the body is escaped, as
		// transports may strip trailing white space.
		end := j
		if end > i && (j == len(body) || body[j] == '\n' || body[j] == '\r') && (body[end-1] == ' ' || body[end-1] == '\t') {
			end--
		}
		for i < end {
			if col >= maxLineQP-1 {
				b = append(b, "=\r\n"...)
				col = 0
			}
			n := min(maxLineQP-1-col, end-i)
			b = append(b, body[i:i+n]...)
			col += n
			i += n
		}
		if end < j {
			b, col = appendEscaped(b, col, body[end])
			i = j
		}
		if i == len(body) {
			break
		}
		switch c := body[i]; {
		case c == '\n':
			b = append(b, "\r\n"...)
			col = 0
			i++
		case c == '\r' && i+1 < len(body) && body[i+1] == '\n':
			b = append(b, "\r\n"...)
			col = 0
			i += 2
		case c == '\t' && i+1 < len(body) && body[i+1] != '\n' && body[i+1] != '\r':
			if col >= maxLineQP-1 {
				b = append(b, "=\r\n"...)
				col = 0
			}
			b = append(b, '\t')
			col++
			i++
		default:
			b, col = appendEscaped(b, col, c)
			i++
		}
	}
	return b
}

// appendEscaped appends c as =XX, after a soft line break when it would not fit on the line.
func appendEscaped(b []byte, col int, c byte) ([]byte, int) {
	if col+3 > maxLineQP-1 {
		b = append(b, "=\r\n"...)
		col = 0
	}
	return append(b, '=', hexDigits[c>>4], hexDigits[c&0x0f]), col + 3
}
