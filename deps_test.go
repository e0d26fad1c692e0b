package crosscast

import (
	"os/exec"
	"strings"
	"testing"
)

// core/ is the domain: it must never depend on HTTP or wasm. HTTP (admin/) and the plugin host (plugins/) import
// core, never the reverse. This walks the real dependency graph, so an indirect import fails too.
func TestCoreDoesNotImportHTTPOrWasm(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./core/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"github.com/gofiber/", "github.com/valyala/fasthttp", "github.com/tetratelabs/wazero", "github.com/crosscast/crosscast/admin", "github.com/crosscast/crosscast/plugins"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("core depends on %s", dep)
			}
		}
	}
}

// bbolt stays inside core/store: every other core package reaches storage through interfaces.
func TestOnlyStoreImportsBbolt(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./core/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if strings.Contains(imports, "go.etcd.io/bbolt") && pkg != "github.com/crosscast/crosscast/core/store" {
			t.Errorf("%s imports bbolt; only core/store may", pkg)
		}
	}
}
