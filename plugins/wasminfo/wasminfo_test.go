package wasminfo

import (
	"os"
	"slices"
	"testing"
)

func TestReadPluginModule(t *testing.T) {
	b, err := os.ReadFile("../manager/testdata/abi-v1/null.wasm")
	if err != nil {
		t.Fatal(err)
	}
	info, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cc_abi_v1", "cc_alloc", "cc_call", "memory", "_initialize"} {
		if !slices.Contains(info.Exports, want) {
			t.Errorf("exports %v lack %s", info.Exports, want)
		}
	}
	// null never logs nor calls the host, and Go's linker drops unused imports: only WASI remains.
	if !slices.Contains(info.Imports, "wasi_snapshot_preview1.fd_write") || slices.Contains(info.Imports, "crosscast_v1.log") {
		t.Errorf("imports %v", info.Imports)
	}
	// A truncated module: an error, and what could be read before the cut.
	partial, err := Read(b[:len(b)/2])
	if err == nil {
		t.Fatal("truncated module read without error")
	}
	if len(partial.Imports) == 0 {
		t.Errorf("nothing read before the cut")
	}
	for _, bad := range [][]byte{nil, []byte("not wasm at all"), []byte("\x00asm\x02\x00\x00\x00")} {
		if _, err := Read(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
