// Package wasminfo reads what a WebAssembly binary module imports and exports, without compiling it, so tools can
// describe modules that the runtime would refuse. It imports only the standard library.
package wasminfo

import (
	"errors"
	"fmt"
)

// Info is what a module's binary says about its interface, read without compiling it.
type Info struct {
	// Exports are the names the module exports (functions, memory, globals, tables).
	Exports []string
	// Imports are "module.name" for everything the module imports.
	Imports []string
}

// Read reads the import and export sections of a WebAssembly binary module. On malformed input it returns what it
// read before the problem, and the problem: `crosscast plugin inspect` shows as much as it can of a module the
// runtime refuses.
func Read(b []byte) (Info, error) {
	info := Info{Exports: []string{}, Imports: []string{}}
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return info, errors.New("not a WebAssembly module: bad magic number")
	}
	if v := uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24; v != 1 {
		return info, fmt.Errorf("unsupported binary format version %d", v)
	}
	r := &wasmReader{b: b, off: 8}
	for r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err == nil && uint64(size) > uint64(len(r.b)-r.off) {
			r.err = fmt.Errorf("section %d of %d bytes at offset %d runs past the end of the file", id, size, r.off)
		}
		if r.err != nil {
			return info, r.err
		}
		sec := &wasmReader{b: r.b[:r.off+int(size)], off: r.off}
		r.off += int(size)
		switch id {
		case 2: // import section
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				mod, name := sec.name(), sec.name()
				sec.importDesc()
				if sec.err == nil {
					info.Imports = append(info.Imports, mod+"."+name)
				}
			}
		case 7: // export section
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				name := sec.name()
				sec.byte() // kind
				sec.u32()  // index
				if sec.err == nil {
					info.Exports = append(info.Exports, name)
				}
			}
		}
		if sec.err != nil {
			return info, fmt.Errorf("section %d: %w", id, sec.err)
		}
	}
	return info, nil
}

// wasmReader decodes the parts of the WebAssembly binary format that readWasmInfo needs. The first error sticks.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("offset %d: "+format, append([]any{r.off}, args...)...)
	}
}

func (r *wasmReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// uleb reads an unsigned LEB128 number of at most bits bits.
func (r *wasmReader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); r.err == nil; shift += 7 {
		if shift >= bits+7 {
			r.fail("integer too long")
			return 0
		}
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	return 0
}

func (r *wasmReader) u32() uint32 { return uint32(r.uleb(32)) }

func (r *wasmReader) name() string {
	n := r.u32()
	if r.err != nil {
		return ""
	}
	if uint64(n) > uint64(len(r.b)-r.off) {
		r.fail("name of %d bytes runs past the end", n)
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

func (r *wasmReader) limits() {
	flags := r.byte()
	r.uleb(64) // minimum
	if flags&1 != 0 {
		r.uleb(64) // maximum
	}
}

func (r *wasmReader) importDesc() {
	switch kind := r.byte(); kind {
	case 0: // function: type index
		r.u32()
	case 1: // table: reference type, limits
		r.byte()
		r.limits()
	case 2: // memory: limits
		r.limits()
	case 3: // global: value type, mutability
		r.byte()
		r.byte()
	case 4: // tag: attribute, type index
		r.byte()
		r.u32()
	default:
		r.fail("unknown import kind %d", kind)
	}
}
