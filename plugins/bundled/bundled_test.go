package bundled

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/plugins/wasminfo"
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

// A plugin imports only the host functions its code uses (the SDK calls each capability's import from its own
// function): one that never sends mail loads on a host without smtp_batch, and null imports no capability at all.
func TestBundledPluginsImportOnlyWhatTheyUse(t *testing.T) {
	want := map[string][]string{
		"null":       nil,
		"capture":    {"kv", "metric", "take"},
		"email-smtp": {"http", "log", "secret", "smtp_batch", "take"},
		"sms-http":   {"http", "log", "metric", "secret", "take"},
		"webhook":    {"http", "secret", "take"},
	}
	for name, imports := range want {
		b, err := Wasm(name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := wasminfo.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, imp := range info.Imports {
			if host, ok := strings.CutPrefix(imp, "crosscast_v1."); ok {
				got = append(got, host)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, imports) {
			t.Errorf("%s imports %v from the host, want %v", name, got, imports)
		}
	}
}
