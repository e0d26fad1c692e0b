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

// bbolt stays inside core/store and robfig/cron inside core/scheduler: every other package reaches storage through
// interfaces and schedules through the scheduler.
func TestOneOwnerPerLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	owners := map[string]string{
		"go.etcd.io/bbolt":          "github.com/crosscast/crosscast/core/store",
		"github.com/robfig/cron/v3": "github.com/crosscast/crosscast/core/scheduler",
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for lib, owner := range owners {
			if strings.Contains(" "+imports+" ", " "+lib+" ") && pkg != owner {
				t.Errorf("%s imports %s; only %s may", pkg, lib, owner)
			}
		}
	}
}
