package plugintest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// plugintest is copied into scaffolded projects, which build offline: the standard library and the SDK only.
func TestImportsOnlyStdlibAndSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		if !strings.HasPrefix(imp, "github.com/crosscast/crosscast/sdk") {
			t.Errorf("plugintest depends on %s: only the standard library and the SDK are allowed", imp)
		}
	}
}
