package netguard

import (
	"os/exec"
	"strings"
	"testing"
)

// The policy must stay readable on its own: standard library and go-hclog only, never wazero, fiber or core.
func TestImportsOnlyStdlibAndHclog(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/hashicorp/go-hclog" {
			t.Errorf("netguard imports %s: only the standard library and go-hclog are allowed", imp)
		}
	}
}
