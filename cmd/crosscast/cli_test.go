package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	crosscast "github.com/crosscast/crosscast"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliCase is one command line and what it must answer: the exit code and texts stdout and stderr contain.
type cliCase struct {
	name       string
	args       []string
	wantCode   int
	wantStdout []string
	wantStderr []string
}

// runCases runs each case as a subtest.
func runCases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	pluginBad := filepath.Join(dir, "plugin-bad.hcl")
	os.WriteFile(pluginBad, []byte("plugin \"n\" {\n  source = \"builtin:null\"\n  config {\n    colour = \"red\"\n  }\n}\n"), 0o600)
	pluginGood := filepath.Join(dir, "plugin-good.hcl")
	os.WriteFile(pluginGood, []byte("plugin \"n\" {\n  source = \"builtin:null\"\n}\n"), 0o600)
	good := filepath.Join(dir, "good.hcl")
	bad := filepath.Join(dir, "bad.hcl")
	os.WriteFile(good, []byte("server {\n  listen = \"0.0.0.0:9000\"\n}\n"), 0o600)
	os.WriteFile(bad, []byte("server {\n  lisen = \"x\"\n  max_body = \"huge\"\n}\nlog {\n  level = \"loud\"\n}\n"), 0o600)
	tests := []cliCase{
		{"no args", nil, 2, nil, []string{"Usage: crosscast <command>"}},
		{"help", []string{"-h"}, 0, []string{"serve", "config", "backup", "restore", "version"}, nil},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}},
		{"version", []string{"version"}, 0, []string{"crosscast dev", "commit ", "go1."}, nil},
		{"version extra arg", []string{"version", "x"}, 2, nil, []string{"unexpected argument"}},
		{"serve help", []string{"serve", "-h"}, 0, []string{"-config", "-listen", "-data"}, nil},
		{"serve unknown flag", []string{"serve", "-port", "80"}, 2, nil, []string{"flag provided but not defined: -port"}},
		{"serve bad listen flag", []string{"serve", "-listen", "nonsense"}, 2, nil, []string{"server.listen"}},
		{"serve bad config", []string{"serve", "-config", bad}, 2, nil, []string{bad + ":2:3:"}},
		{"config no subcommand", []string{"config"}, 2, nil, []string{"validate FILE"}},
		{"config unknown subcommand", []string{"config", "lint"}, 2, nil, []string{`unknown subcommand "lint"`}},
		{"config validate ok", []string{"config", "validate", good}, 0, []string{good + ": ok"}, nil},
		{"config validate loads plugins", []string{"config", "validate", pluginGood}, 0, []string{pluginGood + ": ok"}, nil},
		{"config validate plugin config block", []string{"config", "validate", pluginBad}, 2, nil, []string{`plugin "n"`, pluginBad + `:4:5: Unsupported argument: An argument named "colour" is not expected here`}},
		{"config validate problems", []string{"config", "validate", bad}, 2, nil, []string{
			bad + `:2:3: Unsupported argument: An argument named "lisen" is not expected here. Did you mean "listen"?`,
			bad + `:3:14: server.max_body: "huge" is not a size`,
			bad + `:6:11: log.level: "loud" must be one of`,
			"3 problem(s)",
		}},
		{"config validate missing file", []string{"config", "validate", filepath.Join(dir, "nope.hcl")}, 2, nil, []string{"no such file"}},
		{"config validate no file", []string{"config", "validate"}, 2, nil, []string{"exactly one FILE"}},
		{"config example", []string{"config", "example"}, 0, []string{"server {", "bootstrap_token"}, nil},
		{"backup needs a source", []string{"backup", "-out", "x"}, 2, nil, []string{"exactly one of -data or -url"}},
		{"backup of missing dir", []string{"backup", "-data", filepath.Join(dir, "none"), "-out", filepath.Join(dir, "b.tgz")}, 1, nil, []string{"no crosscast data"}},
		{"restore needs flags", []string{"restore"}, 2, nil, []string{"-in FILE and -data DIR"}},
		{"healthcheck unreachable", []string{"healthcheck", "-url", "http://127.0.0.1:1/healthz"}, 1, nil, []string{"connection refused"}},
	}
	runCases(t, tests)
}

// -h prints usage once, on stdout; errors print on stderr only.
func TestHelpGoesToStdoutOnce(t *testing.T) {
	for _, args := range [][]string{{"serve", "-h"}, {"backup", "-h"}, {"config", "validate", "-h"}, {"version", "-h"}} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 || stderr != "" || strings.Count(stdout, "Usage: crosscast") != 1 {
			t.Errorf("%v: exit %d, usage printed %d times on stdout, stderr %q", args, code, strings.Count(stdout, "Usage: crosscast"), stderr)
		}
	}
}

// The API token never shows up in help or error output (found by review: it was a flag default).
func TestBackupTokenNeverPrinted(t *testing.T) {
	const secret = "cct_aaaaaaaaaaaaaaaa_thisisasecretthatmustnotleak00"
	t.Setenv("CROSSCAST_TOKEN", secret)
	for _, args := range [][]string{{"backup", "-h"}, {"backup", "-bogus"}, {"backup", "-url", "http://127.0.0.1:1", "-out", filepath.Join(t.TempDir(), "b")}} {
		_, stdout, stderr := runCLI(t, args...)
		if strings.Contains(stdout+stderr, "thisisasecret") {
			t.Errorf("%v printed the token:\n%s%s", args, stdout, stderr)
		}
	}
}

func TestConfigExamplePrintsEmbeddedFile(t *testing.T) {
	code, stdout, _ := runCLI(t, "config", "example")
	if code != 0 || stdout != crosscast.ExampleConfig() {
		t.Fatalf("config example does not print the embedded file (exit %d)", code)
	}
	onDisk, err := os.ReadFile("../../config.example.hcl")
	if err != nil || string(onDisk) != stdout {
		t.Fatalf("embedded example differs from config.example.hcl on disk: %v", err)
	}
}
