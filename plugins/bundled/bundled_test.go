package bundled

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestBundledPluginsAreWasm(t *testing.T) {
	names := Names()
	if !slices.Contains(names, "null") {
		t.Fatalf("bundled plugins %v lack null", names)
	}
	for _, n := range names {
		b, err := Wasm(n)
		if err != nil || !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) {
			t.Errorf("%s: not a wasm module (%v)", n, err)
		}
	}
	if _, err := Wasm("nope"); err == nil || !strings.Contains(err.Error(), "null") {
		t.Errorf("unknown plugin error should list the bundled ones: %v", err)
	}
}
