package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var updateSDK = flag.Bool("update-sdk", false, "rewrite scaffold/sdk.txtar from ../../sdk")

// sdkSourceFiles reads the SDK files that plugin new copies: go.mod and the non-test Go files of sdk, sdk/wire and
// sdk/plugintest.
func sdkSourceFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for _, pattern := range []string{"go.mod", "*.go", "wire/*.go", "plugintest/*.go"} {
		matches, err := filepath.Glob(filepath.Join("..", "..", "sdk", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if strings.HasSuffix(m, "_test.go") {
				continue
			}
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(filepath.Join("..", "..", "sdk"), m)
			files[filepath.ToSlash(rel)] = b
		}
	}
	if len(files) < 3 {
		t.Fatalf("found only %d SDK files in ../../sdk", len(files))
	}
	return files
}

// The SDK that plugin new writes is a snapshot embedded in the binary (Go cannot embed another module's files):
// it must equal sdk/ on disk. After changing the SDK: go test ./cmd/crosscast -run TestSDKSnapshotIsFresh -update-sdk
func TestSDKSnapshotIsFresh(t *testing.T) {
	want := sdkSourceFiles(t)
	if *updateSDK {
		var buf bytes.Buffer
		buf.WriteString("Snapshot of the plugin SDK (sdk/go.mod, sdk/*.go, sdk/wire/*.go, sdk/plugintest/*.go, tests excluded) that 'crosscast plugin new'\n")
		buf.WriteString("writes into new projects. Generated: go test ./cmd/crosscast -run TestSDKSnapshotIsFresh -update-sdk\n")
		names := make([]string, 0, len(want))
		for name := range want {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			for _, line := range strings.Split(string(want[name]), "\n") {
				if _, ok := txtarMarker([]byte(line)); ok {
					t.Fatalf("%s has a line %q that reads as a txtar file marker", name, line)
				}
			}
			if !bytes.HasSuffix(want[name], []byte("\n")) {
				t.Fatalf("%s does not end with a newline", name)
			}
			buf.WriteString("-- " + name + " --\n")
			buf.Write(want[name])
		}
		if err := os.WriteFile(filepath.Join("scaffold", "sdk.txtar"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("rewrote scaffold/sdk.txtar; rebuild to embed it")
		return
	}
	b, err := os.ReadFile(filepath.Join("scaffold", "sdk.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	got := parseTxtar(b)
	for name, content := range want {
		if !bytes.Equal(got[name], content) {
			t.Errorf("scaffold/sdk.txtar: %s differs from sdk/%s", name, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("scaffold/sdk.txtar: %s is no longer in sdk/", name)
		}
	}
	if t.Failed() {
		t.Log("the SDK changed: go test ./cmd/crosscast -run TestSDKSnapshotIsFresh -update-sdk")
	}
}

// wasmModule assembles a tiny module by hand: it imports crosscast_v1.log, has a memory and exports it, and lacks
// every cc_ export.
func wasmModule() []byte {
	section := func(id byte, body ...byte) []byte { return append([]byte{id, byte(len(body))}, body...) }
	str := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, section(1, 1, 0x60, 3, 0x7f, 0x7f, 0x7f, 0)...) // type 0: (i32, i32, i32) -> ()
	imp := []byte{1}
	imp = append(imp, str("crosscast_v1")...)
	imp = append(imp, str("log")...)
	imp = append(imp, 0, 0) // function of type 0
	m = append(m, section(2, imp...)...)
	m = append(m, section(5, 1, 0, 1)...) // one memory, min 1 page
	exp := append([]byte{1}, str("memory")...)
	exp = append(exp, 2, 0) // memory 0
	return append(m, section(7, exp...)...)
}

// Every usage error exits 2 before any build or load; help exits 0 on stdout.
func TestPluginUsage(t *testing.T) {
	dir := t.TempDir()
	nonEmpty := filepath.Join(dir, "taken")
	os.MkdirAll(nonEmpty, 0o755)
	os.WriteFile(filepath.Join(nonEmpty, "keep.txt"), []byte("mine"), 0o600)
	notModule := filepath.Join(dir, "notmodule")
	os.MkdirAll(notModule, 0o755)
	inputFile := filepath.Join(dir, "input.json")
	os.WriteFile(inputFile, []byte(`{"messages":[{"id":"a","color":"red"}]}`), 0o600)
	tests := []cliCase{
		{"no subcommand", []string{"plugin"}, 2, nil, []string{"Usage: crosscast plugin", "new KIND NAME"}},
		{"help", []string{"plugin", "-h"}, 0, []string{"new KIND NAME", "build DIR", "test DIR", "inspect FILE", "call FILE ENTRY"}, nil},
		{"listed in crosscast help", []string{"-h"}, 0, []string{"plugin", "build, inspect and try plugins"}, nil},
		{"unknown subcommand", []string{"plugin", "publish"}, 2, nil, []string{`unknown subcommand "publish"`}},
		{"new help", []string{"plugin", "new", "-h"}, 0, []string{"-dir", ".crosscast/sdk", "offline"}, nil},
		{"new without name", []string{"plugin", "new", "channel"}, 2, nil, []string{"give KIND and NAME"}},
		{"new help lists kinds", []string{"plugin", "new", "-h"}, 0, []string{"channel", "scorer", "connector", "Segment events"}, nil},
		{"new unknown kind", []string{"plugin", "new", "widget", "x"}, 2, nil, []string{`unknown KIND "widget": use channel, scorer or connector`}},
		{"new bad name", []string{"plugin", "new", "channel", "My Plugin"}, 2, nil, []string{`"My Plugin" is not a valid plugin name`}},
		{"new into non-empty dir", []string{"plugin", "new", "channel", "x", "-dir", nonEmpty}, 2, nil, []string{"is not empty"}},
		{"build help", []string{"plugin", "build", "-h"}, 0, []string{"-buildmode=c-shared", "-o FILE", "sha256"}, nil},
		{"build without dir", []string{"plugin", "build"}, 2, nil, []string{"exactly one project DIR"}},
		{"build of a non-module", []string{"plugin", "build", notModule}, 2, nil, []string{"is not a Go module directory"}},
		{"test help", []string{"plugin", "test", "-h"}, 0, []string{"go test ./...", "manifest", "configure"}, nil},
		{"test bad config", []string{"plugin", "test", notModule, "-config", "[1]"}, 2, nil, []string{"-config must be a JSON object"}},
		{"inspect help", []string{"plugin", "inspect", "-h"}, 0, []string{"sha256", "exports", "manifest", "error"}, nil},
		{"inspect missing file", []string{"plugin", "inspect", filepath.Join(dir, "none.wasm")}, 2, nil, []string{"no such file"}},
		{"call help", []string{"plugin", "call", "-h"}, 0, []string{"manifest", "configure", "send", "-input", "-timeout", "-memory", "retry_after_ms"}, nil},
		{"call help lists every entry", []string{"plugin", "call", "-h"}, 0, []string{"receive    (17)", "score      (32)", "inbound    (48)", "outbound   (49)", "dead_letter", "anonymousId", "state_base64"}, nil},
		{"call without entry", []string{"plugin", "call", "x.wasm"}, 2, nil, []string{"give a wasm FILE and an ENTRY"}},
		{"call unknown entry", []string{"plugin", "call", "x.wasm", "deliver"}, 2, nil, []string{`unknown entry "deliver"`}},
		{"call malformed input", []string{"plugin", "call", "x.wasm", "send", "-input", `{"messages":[{"id":"a"`}, 2, nil, []string{"-input: invalid JSON"}},
		{"call unknown input field", []string{"plugin", "call", "x.wasm", "send", "-input", "@" + inputFile}, 2, nil, []string{`unknown field "color"`}},
		{"call missing input file", []string{"plugin", "call", "x.wasm", "send", "-input", "@" + filepath.Join(dir, "none.json")}, 2, nil, []string{"no such file"}},
		{"call send without input", []string{"plugin", "call", "x.wasm", "send"}, 2, nil, []string{"send needs -input"}},
		{"call receive without input", []string{"plugin", "call", "x.wasm", "receive"}, 2, nil, []string{"receive needs -input, e.g."}},
		{"call score without input", []string{"plugin", "call", "x.wasm", "score"}, 2, nil, []string{"score needs -input", "contact_id"}},
		{"call inbound without input", []string{"plugin", "call", "x.wasm", "inbound"}, 2, nil, []string{"inbound needs -input"}},
		{"call outbound without input", []string{"plugin", "call", "x.wasm", "outbound"}, 2, nil, []string{"outbound needs -input"}},
		{"call receive unknown field", []string{"plugin", "call", "x.wasm", "receive", "-input", `{"bdy":""}`}, 2, nil, []string{`unknown field "bdy"`}},
		{"call receive header twice", []string{"plugin", "call", "x.wasm", "receive", "-input", `{"headers":{"x-a":"1","X-A":"2"}}`}, 2, nil, []string{"header X-A is given twice"}},
		{"call score without items", []string{"plugin", "call", "x.wasm", "score", "-input", `{}`}, 2, nil, []string{`want {"items":[...]}`}},
		{"call score bad time", []string{"plugin", "call", "x.wasm", "score", "-input", `{"items":[{"events":[{"name":"x","at":"yesterday"}]}]}`}, 2, nil, []string{"item 0: event 0: at: want an RFC 3339 time"}},
		{"call score two states", []string{"plugin", "call", "x.wasm", "score", "-input", `{"items":[{"state":"a","state_base64":"YQ=="}]}`}, 2, nil, []string{"give state or state_base64, not both"}},
		{"call outbound bad type", []string{"plugin", "call", "x.wasm", "outbound", "-input", `{"events":[{"messageId":"e1","type":"click"}]}`}, 2, nil, []string{`event 0: type "click" is not track`}},
		{"call outbound properties not an object", []string{"plugin", "call", "x.wasm", "outbound", "-input", `{"events":[{"messageId":"e1","type":"track","properties":[1]}]}`}, 2, nil, []string{"event 0: properties must be a JSON object"}},
		{"call outbound without events", []string{"plugin", "call", "x.wasm", "outbound", "-input", `{"workspace":"acme"}`}, 2, nil, []string{`want {"events":[...]}`}},
		{"call manifest with input", []string{"plugin", "call", "x.wasm", "manifest", "-input", "{}"}, 2, nil, []string{"takes no -input"}},
		{"call bad config", []string{"plugin", "call", "x.wasm", "manifest", "-config", "nope"}, 2, nil, []string{"-config must be a JSON object"}},
		{"call bad memory", []string{"plugin", "call", "x.wasm", "manifest", "-memory", "1MiB"}, 2, nil, []string{"between 4MiB and 4GiB"}},
		{"call bad timeout", []string{"plugin", "call", "x.wasm", "manifest", "-timeout", "0s"}, 2, nil, []string{"between 1ms and 5m"}},
		{"call missing file", []string{"plugin", "call", filepath.Join(dir, "none.wasm"), "manifest"}, 2, nil, []string{"no such file"}},
	}
	runCases(t, tests)
	if entries, _ := os.ReadDir(nonEmpty); len(entries) != 1 {
		t.Errorf("plugin new wrote into a non-empty dir: %v", entries)
	}
}

// inspect prints what it can of a module that is not a plugin, with an error field, and exits 1.
func TestPluginInspectNotAPlugin(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name        string
		wasm        []byte
		wantExports []string
		wantImports []string
		wantError   []string
	}{
		{"corrupt", []byte("\x00asm\x01\x00\x00\x00\x07\xffgarbage"), []string{}, []string{}, []string{"decoding wasm", "invalid wasm module"}},
		{"not wasm", []byte("#!/bin/sh\necho hi\n"), []string{}, []string{}, []string{"bad magic number", "invalid wasm module"}},
		{"no ABI", wasmModule(), []string{"memory"}, []string{"crosscast_v1.log"}, []string{"does not implement ABI v1", "missing export cc_abi_v1", "missing export cc_call"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".wasm")
			os.WriteFile(path, tt.wasm, 0o600)
			code, stdout, stderr := runCLI(t, "plugin", "inspect", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			var rep inspectReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
			}
			if rep.Path != path || rep.Size != len(tt.wasm) || len(rep.SHA256) != 64 || rep.ABI != "none" || rep.Manifest != nil {
				t.Errorf("report %+v", rep)
			}
			if !slices.Equal(rep.Exports, tt.wantExports) || !slices.Equal(rep.Imports, tt.wantImports) {
				t.Errorf("exports %q imports %q, want %q %q", rep.Exports, rep.Imports, tt.wantExports, tt.wantImports)
			}
			for _, w := range tt.wantError {
				if !strings.Contains(rep.Error, w) {
					t.Errorf("error lacks %q: %s", w, rep.Error)
				}
			}
		})
	}
}

// offlineGo makes the go command that plugin builds run work offline: GOPROXY=off, GOFLAGS=-mod=mod and an empty
// module cache, so a scaffold must build from the SDK it carries. It skips the test when builds cannot run.
func offlineGo(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a plugin with the go command")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOTOOLCHAIN", "local")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOWORK", "off")
}

// mustRun runs the CLI and fails the test unless it exits with want.
func mustRun(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, args...)
	if code != want {
		t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, stdout, stderr)
	}
	return stdout, stderr
}

// mustDecode decodes the JSON an answer printed, failing the test if it is not JSON.
func mustDecode[T any](t *testing.T, stdout string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	return v
}

// receiveSource gives the scaffold's channel a Receive method (the scaffold has none: a channel receives only when
// its provider calls back), so that the channel's one build also serves receive.
const receiveSource = `package main

import (
	"strings"

	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/wire"
)

// Receive takes one event per line of the body, "TYPE PROVIDER_ID", from callers that know the token.
func (c *channel) Receive(call sdk.Call, req sdk.HookRequest) (sdk.HookReply, error) {
	if req.Headers.Get("X-Token") != "t0k" || req.Method != "POST" || req.Path != "/hooks/acme/hello" {
		return sdk.HookReply{Status: 401, Body: []byte("who are you?")}, nil
	}
	var reply sdk.HookReply
	for _, line := range strings.Split(strings.TrimSpace(string(req.Body)), "\n") {
		name, id, _ := strings.Cut(line, " ")
		typ, _ := wire.EventTypeOf(name)
		reply.Events = append(reply.Events, sdk.ChannelEvent{Type: typ, ProviderID: id, AtUnixMilli: call.Now.UnixMilli(),
			Permanent: typ == sdk.EventBounced, Detail: call.Workspace})
	}
	sdk.Log(sdk.LevelInfo, "received %d event(s)", len(reply.Events))
	return reply, nil
}
`

// The whole author's path, on one real build shared by every step (Go builds are slow): new, test, build, inspect,
// call. The go command runs offline (offlineGo).
func TestPluginScaffoldToCall(t *testing.T) {
	offlineGo(t)
	dir := t.TempDir()
	project := filepath.Join(dir, "hello")
	wasmPath := filepath.Join(dir, "hello.wasm")

	stdout, _ := mustRun(t, 0, "plugin", "new", "channel", "hello", "-dir", project)
	if !strings.Contains(stdout, "crosscast plugin test .") {
		t.Errorf("plugin new does not say what to do next:\n%s", stdout)
	}
	for _, f := range []string{"main.go", "main_test.go", "go.mod", "README.md", ".gitignore", ".crosscast/sdk/go.mod", ".crosscast/sdk/sdk.go", ".crosscast/sdk/exports_wasip1.go", ".crosscast/sdk/wire/wire.go"} {
		if _, err := os.Stat(filepath.Join(project, f)); err != nil {
			t.Errorf("scaffold lacks %s: %v", f, err)
		}
	}
	if tests, _ := filepath.Glob(filepath.Join(project, ".crosscast", "sdk", "*_test.go")); len(tests) > 0 {
		t.Errorf("the SDK copy has test files: %v", tests)
	}
	gomod, _ := os.ReadFile(filepath.Join(project, "go.mod"))
	for _, w := range []string{"module example.com/hello", "require github.com/crosscast/crosscast/sdk v0.0.0", "replace github.com/crosscast/crosscast/sdk => ./.crosscast/sdk"} {
		if !strings.Contains(string(gomod), w) {
			t.Errorf("go.mod lacks %q:\n%s", w, gomod)
		}
	}
	mustRun(t, 2, "plugin", "new", "channel", "hello", "-dir", project) // now non-empty

	stdout, stderr := mustRun(t, 0, "plugin", "test", project)
	if !strings.Contains(stderr, "ok  \texample.com/hello") || !strings.Contains(stderr, "hello 0.1.0 (channel, abi 1)") {
		t.Errorf("plugin test did not report the go test and smoke test results:\n%s", stderr)
	}
	if !strings.Contains(stdout, filepath.Join(project, "hello.wasm")) {
		t.Errorf("plugin test did not print the module it built:\n%s", stdout)
	}

	if err := os.WriteFile(filepath.Join(project, "receive.go"), []byte(receiveSource), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _ = mustRun(t, 0, "plugin", "build", project, "-o", wasmPath)
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(stdout)
	if len(fields) != 2 || len(fields[0]) != 64 || fields[1] != wasmPath {
		t.Fatalf("plugin build printed %q, want SHA256  PATH", stdout)
	}

	t.Run("test fails on a failing go test", func(t *testing.T) {
		failing := filepath.Join(project, "fail_test.go")
		os.WriteFile(failing, []byte("package main\n\nimport \"testing\"\n\nfunc TestFails(t *testing.T) { t.Fatal(\"boom\") }\n"), 0o644)
		defer os.Remove(failing)
		_, stderr := mustRun(t, 1, "plugin", "test", project)
		if !strings.Contains(stderr, "boom") || !strings.Contains(stderr, "FAIL: go test") {
			t.Errorf("stderr:\n%s", stderr)
		}
	})

	// Each load compiles the module (~1 s; ~11 s under -race): the loads run in parallel.
	t.Run("inspect", func(t *testing.T) {
		t.Parallel()
		stdout, _ := mustRun(t, 0, "plugin", "inspect", wasmPath)
		var rep inspectReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		var m struct {
			ID, Kind string
			Receives bool
		}
		json.Unmarshal(rep.Manifest, &m)
		if rep.ABI != "v1" || !slices.Contains(rep.Exports, "cc_call") || !slices.Contains(rep.Imports, "crosscast_v1.log") ||
			m.ID != "hello" || m.Kind != "channel" || !m.Receives || rep.SHA256 != fields[0] || rep.Size != len(wasm) || rep.Error != "" {
			t.Errorf("report:\n%s", stdout)
		}
	})
	t.Run("call send", func(t *testing.T) {
		t.Parallel()
		stdout, stderr := mustRun(t, 0, "plugin", "call", wasmPath, "send", "-config", `{"prefix":"p-"}`,
			"-input", `{"messages":[{"id":"a","to":"x@y.z","fields":{"subject":"Hi"}},{"id":"b","to":"w@y.z"}]}`)
		var out struct{ Results []callResult }
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("%v\n%s", err, stdout)
		}
		want := []callResult{{ID: "a", Status: "delivered", ProviderID: "p-a"}, {ID: "b", Status: "delivered", ProviderID: "p-b"}}
		if !slices.Equal(out.Results, want) {
			t.Errorf("results %+v, want %+v", out.Results, want)
		}
		if !strings.Contains(stderr, "delivered 2 message(s)") || !strings.Contains(stderr, "send took ") {
			t.Errorf("stderr lacks the guest's log line or the duration:\n%s", stderr)
		}
	})
	t.Run("call refused config", func(t *testing.T) {
		t.Parallel()
		_, stderr := mustRun(t, 1, "plugin", "call", wasmPath, "configure", "-config", `{"prefix":5}`)
		if !strings.Contains(stderr, "plugin returned an error: prefix must be a string, not float64") {
			t.Errorf("stderr lacks the guest's error:\n%s", stderr)
		}
	})
	t.Run("call receive", func(t *testing.T) {
		t.Parallel()
		before := time.Now().UnixMilli()
		stdout, stderr := mustRun(t, 0, "plugin", "call", wasmPath, "receive",
			"-input", `{"workspace":"acme","headers":{"x-token":"t0k"},"body":"delivered p-1\nbounced p-2"}`)
		out := mustDecode[struct {
			Status  uint32
			Headers map[string]string
			Body    string
			Events  []callChannelEvent
		}](t, stdout)
		if out.Status != 200 || len(out.Events) != 2 {
			t.Fatalf("reply:\n%s", stdout)
		}
		at, err := time.Parse(time.RFC3339, out.Events[0].At)
		if err != nil || at.UnixMilli() < before-1 || at.After(time.Now()) {
			t.Errorf("event time %q is not the call's: %v", out.Events[0].At, err)
		}
		out.Events[0].At, out.Events[1].At = "", ""
		want := []callChannelEvent{
			{Type: "delivered", ProviderID: "p-1", Detail: "acme"},
			{Type: "bounced", ProviderID: "p-2", Permanent: true, Detail: "acme"},
		}
		if !reflect.DeepEqual(out.Events, want) {
			t.Errorf("events %+v, want %+v", out.Events, want)
		}
		if !strings.Contains(stderr, "received 2 event(s)") {
			t.Errorf("stderr lacks the guest's log line:\n%s", stderr)
		}
		// A request that does not verify is a reply, not a failure.
		stdout, _ = mustRun(t, 0, "plugin", "call", wasmPath, "receive", "-input", `{"workspace":"acme","body":"delivered p-1"}`)
		if out := mustDecode[callReply](t, stdout); out.Status != 401 || out.Body != "who are you?" {
			t.Errorf("unverified request:\n%s", stdout)
		}
	})
	t.Run("call an entry of another kind", func(t *testing.T) {
		t.Parallel()
		_, stderr := mustRun(t, 1, "plugin", "call", wasmPath, "score", "-input", `{"items":[{"contact_id":"k1"}]}`)
		if !strings.Contains(stderr, "this plugin is not a scorer") {
			t.Errorf("stderr lacks the guest's error:\n%s", stderr)
		}
	})
}

// Scorer and connector scaffolds, one build each (run in parallel): new, then plugin test (the scaffold's own go
// test, a build, manifest and configure under the runtime), then plugin call of each of the kind's entries.
func TestPluginScaffoldKinds(t *testing.T) {
	offlineGo(t)
	dir := t.TempDir()
	build := func(t *testing.T, kind, name string) string {
		t.Helper()
		project := filepath.Join(dir, name)
		mustRun(t, 0, "plugin", "new", kind, name, "-dir", project)
		_, stderr := mustRun(t, 0, "plugin", "test", project)
		if !strings.Contains(stderr, "ok  \texample.com/"+name) || !strings.Contains(stderr, name+" 0.1.0 ("+kind+", abi 1)") {
			t.Errorf("plugin test did not report the go test and smoke test results:\n%s", stderr)
		}
		return filepath.Join(project, name+".wasm")
	}

	t.Run("scorer", func(t *testing.T) {
		t.Parallel()
		wasmPath := build(t, "scorer", "engagement")
		stdout, stderr := mustRun(t, 0, "plugin", "call", wasmPath, "score", "-config", `{"cap":50}`, "-input",
			`{"workspace":"acme","items":[{"contact_id":"k1","traits":{"plan":"pro"},"state":"4",
			  "events":[{"name":"email_opened","at":"2026-05-01T10:00:00Z","properties":{"campaign":"c1"}},{"name":"email_clicked"}]},
			 {"contact_id":"k2"}]}`)
		out := mustDecode[struct{ Results []callScoreResult }](t, stdout)
		want := []callScoreResult{
			{ContactID: "k1", Scores: []callScore{{Name: "engagement", Value: 8}}, Reasons: []string{"2 new event(s), 1 of them click(s)"}, State: "8"},
			{ContactID: "k2", Scores: []callScore{{Name: "engagement", Value: 0}}, Reasons: []string{"0 new event(s), 0 of them click(s)"}, State: "0"},
		}
		if !reflect.DeepEqual(out.Results, want) {
			t.Errorf("results %+v, want %+v", out.Results, want)
		}
		if !strings.Contains(stderr, "scored 2 contact(s)") || !strings.Contains(stderr, "score took ") {
			t.Errorf("stderr lacks the guest's log line or the duration:\n%s", stderr)
		}
		// State that is not UTF-8 goes in as base64 and comes back as it: the scaffold starts over from it.
		stdout, _ = mustRun(t, 0, "plugin", "call", wasmPath, "score", "-input", `{"items":[{"contact_id":"k1","state_base64":"/w=="}]}`)
		if out := mustDecode[struct{ Results []callScoreResult }](t, stdout); len(out.Results) != 1 || out.Results[0].State != "0" {
			t.Errorf("results:\n%s", stdout)
		}
		_, stderr = mustRun(t, 1, "plugin", "call", wasmPath, "outbound", "-input", `{"events":[]}`)
		if !strings.Contains(stderr, "this plugin is not a connector") {
			t.Errorf("stderr lacks the guest's error:\n%s", stderr)
		}
	})

	t.Run("connector", func(t *testing.T) {
		t.Parallel()
		wasmPath := build(t, "connector", "tags")
		body, _ := json.Marshal(`[{"messageId":"e1","type":"track","event":"Signed Up","userId":"u1",
			"timestamp":"2026-05-01T09:00:00Z","properties":{"plan":"pro"}}]`)
		stdout, _ := mustRun(t, 0, "plugin", "call", wasmPath, "inbound",
			"-input", `{"workspace":"acme","headers":{"content-type":"application/json"},"body":`+string(body)+`}`)
		in := mustDecode[struct {
			callReply
			Events []callTrackEvent
		}](t, stdout)
		for i, e := range in.Events { // printed indented: compare the objects' compact forms
			var buf bytes.Buffer
			if json.Compact(&buf, e.Properties) == nil {
				in.Events[i].Properties = buf.Bytes()
			}
		}
		wantEvents := []callTrackEvent{{MessageID: "e1", Type: "track", Event: "Signed Up", UserID: "u1",
			Timestamp: "2026-05-01T09:00:00.000Z", Properties: json.RawMessage(`{"plan":"pro"}`)}}
		if in.Status != 200 || in.Body != `{"accepted":1}` || in.Headers["Content-Type"] != "application/json" ||
			!reflect.DeepEqual(in.Events, wantEvents) {
			t.Errorf("inbound:\n%s", stdout)
		}
		// A request the connector cannot take is a reply for the source, not a failure.
		stdout, _ = mustRun(t, 0, "plugin", "call", wasmPath, "inbound", "-input", `{"body":"{"}`)
		if out := mustDecode[callReply](t, stdout); out.Status != 400 || !strings.Contains(out.Body, "want a JSON array of events") {
			t.Errorf("bad request:\n%s", stdout)
		}

		stdout, stderr := mustRun(t, 0, "plugin", "call", wasmPath, "outbound", "-input",
			`{"workspace":"acme","events":[{"messageId":"e1","type":"track","event":"Signed Up","userId":"u1","properties":{"plan":"pro"}},
			  {"messageId":"e2","type":"identify","anonymousId":"a1","traits":null}]}`)
		out := mustDecode[struct{ Results []callOutboundResult }](t, stdout)
		want := []callOutboundResult{{MessageID: "e1", Status: "done"}, {MessageID: "e2", Status: "done"}}
		if !slices.Equal(out.Results, want) {
			t.Errorf("results %+v, want %+v", out.Results, want)
		}
		if !strings.Contains(stderr, "forwarded 2 event(s) of workspace acme") {
			t.Errorf("stderr lacks the guest's log line:\n%s", stderr)
		}
	})
}
