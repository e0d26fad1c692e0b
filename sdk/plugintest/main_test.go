package plugintest_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMain builds the crosscast binary of this repository for the tests, unless CROSSCAST_BIN names one already
// (crosscast plugin test sets it). A build failure fails the run: these tests never skip.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("CROSSCAST_BIN") == "" {
		dir, err := os.MkdirTemp("", "plugintest-crosscast-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "crosscast")
		build := exec.Command("go", "build", "-o", bin, "./cmd/crosscast")
		build.Dir = filepath.Join("..", "..") // the repository: sdk/plugintest is two levels down
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building crosscast for the plugintest tests (or set CROSSCAST_BIN): %v\n", err)
			return 1
		}
		os.Setenv("CROSSCAST_BIN", bin)
	}
	return m.Run()
}
