// Package wire is the binary encoding of Crosscast plugin calls (ABI v1): little-endian integers and
// length-prefixed byte strings, with no reflection, so that a Go guest, whose loops run several times slower under
// the host's interruptible mode, spends little time encoding. Host and guest share this package; sdk/ABI.md
// describes the same format for guests in other languages.
//
// It imports only the standard library and must stay that way: it is compiled into every plugin.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrShort means the input ended in the middle of a value: a truncated or corrupt payload.
var ErrShort = errors.New("wire: payload truncated")

// Limits that decoding enforces, so a hostile payload cannot make the reader allocate without bound.
const (
	MaxItems = 1 << 20 // items in one list
	MaxBytes = 1 << 30 // bytes in one string
)

// Writer appends values to a byte slice.
type Writer struct {
	buf []byte
}

// NewWriter returns a Writer that appends to buf (which may be nil or a reused slice with length 0).
func NewWriter(buf []byte) *Writer { return &Writer{buf: buf[:0]} }

// Bytes returns what was written.
func (w *Writer) Bytes() []byte { return w.buf }

// Reset empties the writer, keeping its memory.
func (w *Writer) Reset() { w.buf = w.buf[:0] }

// U8 writes one byte.
func (w *Writer) U8(v uint8) { w.buf = append(w.buf, v) }

// Bool writes 1 or 0.
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// U32 writes a little-endian uint32.
func (w *Writer) U32(v uint32) { w.buf = binary.LittleEndian.AppendUint32(w.buf, v) }

// U64 writes a little-endian uint64.
func (w *Writer) U64(v uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }

// I64 writes a little-endian int64 (two's complement).
func (w *Writer) I64(v int64) { w.U64(uint64(v)) }

// F64 writes an IEEE 754 float64.
func (w *Writer) F64(v float64) { w.U64(math.Float64bits(v)) }

// Bytes32 writes a u32 length then the bytes.
func (w *Writer) Bytes32(b []byte) {
	w.U32(uint32(len(b)))
	w.buf = append(w.buf, b...)
}

// String writes a u32 length then the UTF-8 bytes.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.buf = append(w.buf, s...)
}

// Pairs writes a u32 count then the key/value pairs, in their order (Pairs are kept sorted by key).
func (w *Writer) Pairs(ps Pairs) {
	w.U32(uint32(len(ps)))
	for _, p := range ps {
		w.String(p.Key)
		w.String(p.Value)
	}
}

// Reader consumes values from a byte slice. The first error sticks: later reads return zero values and Err
// reports it, so decoders can read a whole record and check once.
type Reader struct {
	buf []byte
	str string // buf as one string, made on the first String call: every string read is a slice of it
	off int
	err error
	// perField makes String copy each string on its own (see NewFieldReader).
	perField bool
}

// NewReader reads from buf. Bytes32 results alias buf. String results are slices of a single copy of buf, made
// once per Reader: decoding a batch costs one string allocation instead of one per field (allocation loops are
// what a guest pays most for), and the strings stay valid after buf is reused.
func NewReader(buf []byte) *Reader { return &Reader{buf: buf} }

// NewFieldReader is NewReader with one copy per string: for payloads whose strings outlive them one by one (a
// provider id kept from a whole batch of results) or that carry large byte fields (HTTP bodies), where one shared
// copy would pin, or duplicate, the whole payload.
func NewFieldReader(buf []byte) *Reader { return &Reader{buf: buf, perField: true} }

// Err is the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.buf) - r.off }

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > r.Len() {
		r.err = fmt.Errorf("%w: need %d bytes at offset %d, have %d", ErrShort, n, r.off, r.Len())
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

// Fail records err as the reader's error if none is recorded yet (for decoders that find a bad value).
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Bool reads a byte written by Writer.Bool; any value other than 0 or 1 is an error.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.Fail(fmt.Errorf("wire: invalid bool %d at offset %d", v, r.off-1))
	}
	return v == 1
}

// U32 reads a little-endian uint32.
func (r *Reader) U32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// U64 reads a little-endian uint64.
func (r *Reader) U64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// I64 reads an int64.
func (r *Reader) I64() int64 { return int64(r.U64()) }

// F64 reads a float64.
func (r *Reader) F64() float64 { return math.Float64frombits(r.U64()) }

// Count reads a u32 list length and checks it against MaxItems and against the bytes left (each item takes at
// least minItemSize bytes), so a hostile count cannot make the caller preallocate a huge slice.
func (r *Reader) Count(minItemSize int) int {
	n := r.U32()
	if r.err != nil {
		return 0
	}
	if n > MaxItems || (minItemSize > 0 && int(n) > r.Len()/minItemSize) {
		r.Fail(fmt.Errorf("%w: a list of %d items does not fit the %d bytes left", ErrShort, n, r.Len()))
		return 0
	}
	return int(n)
}

// Bytes32 reads a length-prefixed byte string, aliasing the input.
func (r *Reader) Bytes32() []byte {
	n := r.U32()
	if n > MaxBytes {
		r.Fail(fmt.Errorf("wire: string of %d bytes is over the limit", n))
		return nil
	}
	return r.take(int(n))
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.U32()
	if n > MaxBytes {
		r.Fail(fmt.Errorf("wire: string of %d bytes is over the limit", n))
		return ""
	}
	start := r.off
	b := r.take(int(n))
	if b == nil || n == 0 {
		return ""
	}
	if r.perField {
		return string(b)
	}
	if r.str == "" {
		r.str = string(r.buf)
	}
	return r.str[start : start+int(n)]
}

// Pairs reads pairs written by Writer.Pairs; nil when empty. Keys must be strictly ascending (sorted, no
// duplicates), which is what makes Pairs.Get a binary search and the encoding canonical.
func (r *Reader) Pairs() Pairs {
	n := r.Count(8)
	if n == 0 {
		return nil
	}
	ps := make(Pairs, n)
	for i := 0; i < n && r.err == nil; i++ {
		ps[i] = Pair{Key: r.String(), Value: r.String()}
		if i > 0 && r.err == nil && ps[i].Key <= ps[i-1].Key {
			r.Fail(fmt.Errorf("wire: pair keys not strictly ascending at %q", ps[i].Key))
		}
	}
	return ps
}

// Pair is one named value.
type Pair struct {
	Key, Value string
}

// Pairs is a small string-to-string mapping kept sorted by key. Plugins receive message fields and headers this
// way rather than as Go maps: building a map costs a guest several microseconds per message (measured in
// docs/RATIONALE.md), a sorted slice one allocation.
type Pairs []Pair

// PairsOf returns m's entries as Pairs, sorted by key.
func PairsOf(m map[string]string) Pairs {
	if len(m) == 0 {
		return nil
	}
	ps := make(Pairs, 0, len(m))
	for k, v := range m {
		ps = append(ps, Pair{k, v})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Key < ps[j].Key })
	return ps
}

// Get returns the value of key, or "".
func (ps Pairs) Get(key string) string {
	v, _ := ps.Lookup(key)
	return v
}

// Lookup returns the value of key and whether it is present.
func (ps Pairs) Lookup(key string) (string, bool) {
	i := sort.Search(len(ps), func(i int) bool { return ps[i].Key >= key })
	if i < len(ps) && ps[i].Key == key {
		return ps[i].Value, true
	}
	return "", false
}

// Map returns the pairs as a map, for code that prefers one.
func (ps Pairs) Map() map[string]string {
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		m[p.Key] = p.Value
	}
	return m
}

// End checks that the input was consumed exactly: trailing bytes mean the two sides disagree on the format.
func (r *Reader) End() error {
	if r.err == nil && r.Len() != 0 {
		r.err = fmt.Errorf("wire: %d unexpected bytes after the payload", r.Len())
	}
	return r.err
}
