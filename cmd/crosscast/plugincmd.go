package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/plugins/wasminfo"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// scaffoldFiles are the templates of `plugin new` (shared ones, and main.go and main_test.go per kind) and sdk.txtar, a snapshot of the SDK's source (sdk/go.mod,
// sdk/*.go and sdk/wire/*.go without tests) written into every new project. Go cannot embed sdk/ from here: it is
// another module. TestSDKSnapshotIsFresh fails when the snapshot differs from sdk/; -update-sdk rewrites it.
//
//go:embed scaffold/*.tmpl scaffold/channel/*.tmpl scaffold/scorer/*.tmpl scaffold/connector/*.tmpl scaffold/sdk.txtar
var scaffoldFiles embed.FS

const pluginUsage = `Usage: crosscast plugin <subcommand> [arguments] [flags]

Builds, inspects and tries Crosscast plugins (WebAssembly modules written with the Go SDK) outside the server.
Flags may come before or after the arguments.

Subcommands:
  new KIND NAME [-dir DIR]   scaffold a plugin project (KIND: channel, scorer, connector) that builds offline
  build DIR [-o FILE]        compile the project in DIR to wasm; print the file's sha256 and path
  test DIR [-config JSON]    go test natively, build, then load the module and run manifest and configure
  inspect FILE               print a module's size, sha256, ABI, exports, imports and manifest as JSON
  call FILE ENTRY [flags]    load a module under production limits, configure it, run one entry point

Run 'crosscast plugin <subcommand> -h' for its details. Exit codes: 0 ok, 1 the build, test or call failed,
2 the command line is wrong.
`

func pluginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, pluginUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, pluginUsage)
		return exitOK
	case "new":
		return pluginNewCmd(args[1:], stdout, stderr)
	case "build":
		return pluginBuildCmd(ctx, args[1:], stdout, stderr)
	case "test":
		return pluginTestCmd(ctx, args[1:], stdout, stderr)
	case "inspect":
		return pluginInspectCmd(ctx, args[1:], stdout, stderr)
	case "call":
		return pluginCallCmd(ctx, args[1:], stdout, stderr)
	case "host":
		return pluginHostCmd(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "crosscast plugin: unknown subcommand %q\n\n%s", args[0], pluginUsage)
	return exitUsage
}

// parseInterspersed parses flags placed before, between or after the positional arguments, which it returns. The
// exit code is as parseFlags's: -1 to go on. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, int) {
	var positional []string
	for {
		if code := parseFlags(fs, args, stdout); code >= 0 {
			return nil, code
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, -1
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), -1
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// Production limits of a plugin, as a plugin block without timeout and memory gets them (core/config).
const (
	defaultPluginTimeout = 5 * time.Second
	defaultPluginMemory  = "64MiB"
	minPluginMemory      = 4 << 20
	maxPluginMemory      = 4 << 30
)

// Entry points of ABI v1 (sdk/ABI.md) that `plugin call` knows by name (callEntryNamed).
const (
	entryManifest  = 1
	entryConfigure = 2
	entrySend      = 16
	entryReceive   = 17
	entryScore     = 32
	entryInbound   = 48
	entryOutbound  = 49
)

// pluginNamePattern is the shape of a plugin name in the configuration (core/config); a new plugin's NAME, module
// path element and manifest id follow it.
var pluginNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ---- new ----

const pluginNewAbout = `Scaffolds a plugin project in DIR (default ./NAME), which must not exist or be empty:

  main.go         the plugin, a small working example of its KIND:
                    channel    Send reports every message delivered
                    scorer     Score rates engagement from event counts, keeping points in the contact's state
                    connector  Inbound takes a JSON array of Segment events; Outbound marks every event done
  main_test.go    native Go tests of the plugin
  go.mod          module example.com/NAME, using the SDK from .crosscast/sdk
  .crosscast/sdk  the plugin SDK's source, written from this binary: the project builds offline, with Go alone
  README.md       the commands to test, build and try it; .gitignore

KIND is channel, scorer or connector. NAME is the plugin's id: a lower-case letter, then lower-case letters,
digits, '_' or '-'.`

func pluginNewCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin new", "plugin new KIND NAME [-dir DIR]", pluginNewAbout, stderr)
	dir := fs.String("dir", "", "project `DIR`ectory (default ./NAME)")
	pos, code := parseInterspersed(fs, args, stdout)
	if code >= 0 {
		return code
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "crosscast plugin new: give KIND and NAME, e.g. 'crosscast plugin new channel sms'")
		return exitUsage
	}
	kind, name := pos[0], pos[1]
	switch kind {
	case "channel", "scorer", "connector":
	default:
		fmt.Fprintf(stderr, "crosscast plugin new: unknown KIND %q: use channel, scorer or connector\n", kind)
		return exitUsage
	}
	if !pluginNamePattern.MatchString(name) {
		fmt.Fprintf(stderr, "crosscast plugin new: %q is not a valid plugin name: use a lower-case letter then lower-case letters, digits, '_' or '-'\n", name)
		return exitUsage
	}
	if *dir == "" {
		*dir = name
	}
	created, err := prepareEmptyDir(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "crosscast plugin new: %v\n", err)
		return exitUsage
	}
	if err := writeScaffold(*dir, kind, name); err != nil {
		if created {
			_ = os.RemoveAll(*dir)
		}
		fmt.Fprintf(stderr, "crosscast plugin new: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "created %s plugin %q in %s\n\nNext:\n  cd %s\n  crosscast plugin test .\n", kind, name, *dir, *dir)
	return exitOK
}

// prepareEmptyDir creates dir, or accepts it if it exists and is empty. created reports whether it made it.
func prepareEmptyDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("creating project directory: %w", err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("reading project directory: %w", err)
	case len(entries) > 0:
		return false, fmt.Errorf("%s is not empty: choose a new or empty directory with -dir", dir)
	}
	return false, nil
}

// writeScaffold writes the project files of a plugin of kind (channel, scorer, connector) and the SDK snapshot
// into dir.
func writeScaffold(dir, kind, name string) error {
	sdkFiles, err := sdkSnapshot()
	if err != nil {
		return err
	}
	data := struct{ Name, Kind, GoVersion string }{name, kind, goDirective(sdkFiles["go.mod"])}
	for _, f := range []struct{ tmpl, out string }{
		{kind + "/main.go.tmpl", "main.go"},
		{kind + "/main_test.go.tmpl", "main_test.go"},
		{"go.mod.tmpl", "go.mod"},
		{"README.md.tmpl", "README.md"},
		{"gitignore.tmpl", ".gitignore"},
	} {
		t, err := template.ParseFS(scaffoldFiles, "scaffold/"+f.tmpl)
		if err != nil {
			return fmt.Errorf("reading template %s: %w", f.tmpl, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return fmt.Errorf("rendering %s: %w", f.out, err)
		}
		b := buf.Bytes()
		if strings.HasSuffix(f.out, ".go") {
			if b, err = format.Source(b); err != nil {
				return fmt.Errorf("formatting %s: %w", f.out, err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f.out), b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", f.out, err)
		}
	}
	for path, content := range sdkFiles {
		dst := filepath.Join(dir, ".crosscast", "sdk", filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("writing the SDK: %w", err)
		}
		if err := os.WriteFile(dst, content, 0o644); err != nil {
			return fmt.Errorf("writing the SDK: %w", err)
		}
	}
	return nil
}

// sdkSnapshot returns the SDK's files embedded in the binary, by slash-separated path relative to sdk/.
func sdkSnapshot() (map[string][]byte, error) {
	b, err := scaffoldFiles.ReadFile("scaffold/sdk.txtar")
	if err != nil {
		return nil, fmt.Errorf("reading the embedded SDK: %w", err)
	}
	files := parseTxtar(b)
	if _, ok := files["go.mod"]; !ok || len(files) < 2 {
		return nil, errors.New("the embedded SDK snapshot is empty: rebuild crosscast")
	}
	return files, nil
}

// parseTxtar splits a txtar archive (golang.org/x/tools/txtar): a comment, then files, each introduced by a
// "-- NAME --" line.
func parseTxtar(b []byte) map[string][]byte {
	files := map[string][]byte{}
	var name string
	var content []byte
	flush := func() {
		if name != "" {
			files[name] = content
		}
	}
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		if n, ok := txtarMarker(line); ok {
			flush()
			name, content = n, []byte{}
			continue
		}
		if name != "" {
			content = append(content, line...)
		}
	}
	flush()
	return files
}

// txtarMarker reports whether line is a txtar file marker and returns the file's name.
func txtarMarker(line []byte) (string, bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if !strings.HasPrefix(s, "-- ") || !strings.HasSuffix(s, " --") || len(s) < 7 {
		return "", false
	}
	return strings.TrimSpace(s[3 : len(s)-3]), true
}

// goDirective returns the version of the go line of a go.mod file.
func goDirective(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "1.26"
}

// ---- build ----

const pluginBuildAbout = `Compiles the plugin project in DIR to a WebAssembly reactor module with the go command found in $PATH:

  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o FILE .

go's output goes to stderr. On success it prints the module's lower-case hex SHA-256 and its path, as sha256sum
does: put the hash in the plugin block's sha256 of the server's configuration. FILE defaults to DIR/NAME.wasm,
NAME being DIR's base name.`

func pluginBuildCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin build", "plugin build DIR [-o FILE]", pluginBuildAbout, stderr)
	out := fs.String("o", "", "output `FILE` (default DIR/NAME.wasm)")
	pos, code := parseInterspersed(fs, args, stdout)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "crosscast plugin build: give exactly one project DIR")
		return exitUsage
	}
	dir, code := projectDir("plugin build", pos[0], stderr)
	if code >= 0 {
		return code
	}
	if _, _, err := buildPlugin(ctx, dir, *out, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "crosscast plugin build: %v\n", err)
		return exitError
	}
	return exitOK
}

// projectDir checks that dir is a directory with a go.mod and returns its absolute path, or an exit code.
func projectDir(cmd, dir string, stderr io.Writer) (string, int) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		_, err = os.Stat(filepath.Join(abs, "go.mod"))
	}
	if err != nil {
		fmt.Fprintf(stderr, "crosscast %s: %s is not a Go module directory: %v\n", cmd, dir, err)
		return "", exitUsage
	}
	return abs, -1
}

// buildPlugin compiles the project in dir (absolute) to out (default dir/NAME.wasm), streaming go's output to
// stderr, and prints the module's sha256 and path on stdout.
func buildPlugin(ctx context.Context, dir, out string, stdout, stderr io.Writer) (path string, wasm []byte, err error) {
	if out == "" {
		out = filepath.Join(dir, filepath.Base(dir)+".wasm")
	}
	if out, err = filepath.Abs(out); err != nil {
		return "", nil, err
	}
	fmt.Fprintf(stderr, "crosscast plugin build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o %s . (in %s)\n", out, dir)
	if err := runGo(ctx, dir, []string{"GOOS=wasip1", "GOARCH=wasm"}, stderr, "build", "-buildmode=c-shared", "-trimpath", "-o", out, "."); err != nil {
		return "", nil, err
	}
	wasm, err = os.ReadFile(out)
	if err != nil {
		return "", nil, fmt.Errorf("reading the module: %w", err)
	}
	sum := sha256.Sum256(wasm)
	fmt.Fprintf(stdout, "%s  %s\n", hex.EncodeToString(sum[:]), out)
	return out, wasm, nil
}

// runGo runs the go command in dir with extra environment variables, its output going to w.
func runGo(ctx context.Context, dir string, env []string, w io.Writer, args ...string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("finding the go command (plugins are built with Go; install it from https://go.dev/dl): %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", args[0], err)
	}
	return nil
}

// ---- test ----

const pluginTestAbout = `Tests the plugin project in DIR, stopping at the first failure:

  1. go test ./... natively in DIR (the plugin's own tests);
  2. plugin build DIR (to DIR/NAME.wasm), printing the sha256 and path;
  3. loads the module under production limits (5s per call, 64MiB) and calls manifest, checking it declares an id
     and ABI v1, then configure with -config.

go's output and the plugin's log lines go to stderr.`

func pluginTestCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin test", "plugin test DIR [-config JSON|@FILE]", pluginTestAbout, stderr)
	configArg := fs.String("config", "{}", "the plugin's config block as a JSON object, or @FILE to read it from FILE")
	pos, code := parseInterspersed(fs, args, stdout)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "crosscast plugin test: give exactly one project DIR")
		return exitUsage
	}
	cfg, err := jsonObjectArg("-config", *configArg)
	if err != nil {
		fmt.Fprintf(stderr, "crosscast plugin test: %v\n", err)
		return exitUsage
	}
	dir, code := projectDir("plugin test", pos[0], stderr)
	if code >= 0 {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "crosscast plugin test: FAIL: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stderr, "crosscast plugin test: go test ./... (in %s)\n", dir)
	if err := runGo(ctx, dir, crosscastBinEnv(), stderr, "test", "./..."); err != nil { // sdk/plugintest finds this crosscast
		return fail(err)
	}
	path, wasm, err := buildPlugin(ctx, dir, "", stdout, stderr)
	if err != nil {
		return fail(err)
	}
	logw := &syncWriter{w: stderr}
	rt, p, err := loadPlugin(ctx, path, wasm, defaultPluginTimeout, mustParseSize(defaultPluginMemory), logw)
	if err != nil {
		return fail(err)
	}
	defer closeRuntime(rt)
	raw, err := p.Call(ctx, entryManifest, nil)
	if err != nil {
		return fail(err)
	}
	var m struct {
		ID      string `json:"id"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
		ABI     int    `json:"abi"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fail(fmt.Errorf("decoding the manifest: %w", err))
	}
	if m.ID == "" || m.ABI != 1 {
		return fail(fmt.Errorf("the manifest must declare an id and abi 1, got %s", raw))
	}
	if _, err := p.Call(ctx, entryConfigure, cfg); err != nil {
		return fail(err)
	}
	fmt.Fprintf(logw, "crosscast plugin test: ok: %s %s (%s, abi %d): manifest and configure passed\n", m.ID, m.Version, m.Kind, m.ABI)
	fmt.Fprintf(stdout, "ok  %s\n", path)
	return exitOK
}

// ---- inspect ----

const pluginInspectAbout = `Prints what a plugin module is, as JSON on stdout:

  path, size, sha256   the file, its size in bytes and its hex SHA-256
  abi                  "v1" when the module exports cc_abi_v1, else "none"
  exports, imports     exported names; imports as module.name
  manifest             the manifest the plugin returns, loaded under the real runtime (entry 1)
  error                why the module cannot run, when it cannot (then the exit code is 1)

Loading compiles the module in memory, with the runtime's default limits; nothing else of the plugin runs.`

// inspectReport is the output of plugin inspect.
type inspectReport struct {
	Path     string          `json:"path"`
	Size     int             `json:"size"`
	SHA256   string          `json:"sha256"`
	ABI      string          `json:"abi"`
	Exports  []string        `json:"exports"`
	Imports  []string        `json:"imports"`
	Manifest json.RawMessage `json:"manifest,omitempty"`
	Error    string          `json:"error,omitempty"`
}

func pluginInspectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin inspect", "plugin inspect FILE", pluginInspectAbout, stderr)
	pos, code := parseInterspersed(fs, args, stdout)
	if code >= 0 {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "crosscast plugin inspect: give exactly one wasm FILE")
		return exitUsage
	}
	path := pos[0]
	wasm, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "crosscast plugin inspect: %v\n", err)
		return exitUsage
	}
	sum := sha256.Sum256(wasm)
	rep := inspectReport{Path: path, Size: len(wasm), SHA256: hex.EncodeToString(sum[:]), ABI: "none"}
	var problems []string
	info, err := wasminfo.Read(wasm)
	rep.Exports, rep.Imports = info.Exports, info.Imports
	if err != nil {
		problems = append(problems, "decoding wasm: "+err.Error())
	}
	for _, e := range rep.Exports {
		if e == "cc_abi_v1" {
			rep.ABI = "v1"
		}
	}
	rt, p, err := loadPlugin(ctx, path, wasm, 0, 0, &syncWriter{w: stderr})
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		defer closeRuntime(rt)
		switch raw, err := p.Call(ctx, entryManifest, nil); {
		case err != nil:
			problems = append(problems, err.Error())
		case !json.Valid(raw):
			problems = append(problems, fmt.Sprintf("the manifest is not JSON: %.200q", raw))
		default:
			rep.Manifest = raw
		}
	}
	if problems != nil {
		rep.Error = strings.Join(problems, "; ")
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "crosscast plugin inspect: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s\n", b)
	if rep.Error != "" {
		fmt.Fprintf(stderr, "crosscast plugin inspect: %s\n", rep.Error)
		return exitError
	}
	return exitOK
}

// ---- call ----

const pluginCallAbout = `Loads a plugin module under production limits (one instance; -timeout per call; -memory), calls configure
(entry 2) with -config, then ENTRY, and prints its output on stdout. The plugin's log lines, and how long the call
took, go to stderr.

ENTRY is a name or an entry point number (sdk/ABI.md). Requests are stamped with the current time; "workspace"
defaults to "default"; times are RFC 3339 ("2026-05-01T10:00:00Z").
  manifest    (1) prints the manifest as JSON; takes no -input
  configure   (2) only configures; takes no -input
  send       (16) channels. -input {"messages":[{"id":"m1","to":"ada@example.com","fields":{"subject":"Hi"},
              "headers":{...}, "idempotency_key":"", "workspace":"", "contact_id":""}]}
              prints {"results":[{"id","status":"delivered|accepted|retry|failed","provider_id","error",
              "retry_after_ms"}]}
  receive    (17) channels that receive webhooks. -input is a hook request: {"body":"...","headers":{...},
              "method":"POST","path":"/hooks/WORKSPACE/NAME","query":"","workspace":"","remote_addr":""}
              (method and path default to these; NAME is FILE's base name)
              prints {"status","headers","body","events":[{"type":"delivered|bounced|deferred|complained|opened|
              clicked|unsubscribed|replied","message_id","provider_id","address","at","permanent","detail",
              "fields"}]}
  score      (32) scorers. -input {"workspace":"","items":[{"contact_id":"k1","traits":{"plan":"pro"},
              "events":[{"name":"email_opened","at":"...","properties":{...}}],"state":"" or "state_base64":""}]}
              prints {"results":[{"contact_id","scores":[{"name","value"}],"reasons":[...],"state"}]}
  inbound    (48) connectors. -input is a hook request, as for receive
              prints {"status","headers","body","events":[EVENT...]}
  outbound   (49) connectors. -input {"workspace":"","events":[EVENT...]}
              prints {"results":[{"message_id","status":"done|retry|dead_letter","retry_after_ms","error"}]}
  NUMBER      any other entry: -input is passed as raw bytes and the raw output is printed

EVENT is a Segment-shaped event: {"messageId","type":"track|identify|page|screen|group|alias","event","userId",
"anonymousId","timestamp","properties":{...},"traits":{...},"context":{...}}. Byte fields (body, state) are text;
an output that is not UTF-8 is printed as body_base64 or state_base64 instead.

A plugin's error answer, a trap, a timeout or an out-of-memory exits 1 with the runtime's error.`

// callEntry is an entry point that plugin call knows by name, with the conversions of its input and output.
type callEntry struct {
	id uint32
	// input turns -input's JSON into the encoded request; nil when the entry takes no -input.
	input func(b []byte, env callEnv) ([]byte, error)
	// output decodes the plugin's answer into a value printed as JSON; nil prints the answer as it is.
	output func(out []byte) (any, error)
	// example is a minimal -input, for the error that says one is needed.
	example string
}

// callEnv is what input conversions fill defaults from.
type callEnv struct {
	now    time.Time
	plugin string // the plugin's name, from the file's base name
}

// defaultWorkspace is the workspace of requests whose -input names none (core/workspaces.DefaultID).
const defaultWorkspace = "default"

// callEntryNamed returns the entry of a name, or of a decimal number (raw input and output).
func callEntryNamed(s string) (callEntry, bool) {
	switch s {
	case "manifest":
		return callEntry{id: entryManifest}, true
	case "configure":
		return callEntry{id: entryConfigure}, true
	case "send":
		return callEntry{id: entrySend, input: sendInput, output: sendOutput,
			example: `{"messages":[{"id":"m1","to":"ada@example.com"}]}`}, true
	case "receive":
		return callEntry{id: entryReceive, input: hookInput, output: receiveOutput,
			example: `{"headers":{"Content-Type":"application/json"},"body":"{}"}`}, true
	case "score":
		return callEntry{id: entryScore, input: scoreInput, output: scoreOutput,
			example: `{"items":[{"contact_id":"k1","events":[{"name":"email_opened"}]}]}`}, true
	case "inbound":
		return callEntry{id: entryInbound, input: hookInput, output: inboundOutput,
			example: `{"body":"[{\"messageId\":\"e1\",\"type\":\"track\",\"event\":\"Signed Up\",\"userId\":\"u1\"}]"}`}, true
	case "outbound":
		return callEntry{id: entryOutbound, input: outboundInput, output: outboundOutput,
			example: `{"events":[{"messageId":"e1","type":"track","event":"Signed Up","userId":"u1"}]}`}, true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return callEntry{id: uint32(n)}, err == nil
}

func pluginCallCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin call", "plugin call FILE ENTRY [-input JSON|@FILE] [-config JSON|@FILE] [-timeout 5s] [-memory 64MiB]", pluginCallAbout, stderr)
	inputArg := fs.String("input", "", "the entry's input (see above), or @FILE to read it from FILE")
	configArg := fs.String("config", "{}", "the plugin's config block as a JSON object, or @FILE to read it from FILE")
	timeout := fs.Duration("timeout", defaultPluginTimeout, "limit of each call (1ms to 5m)")
	memoryArg := fs.String("memory", defaultPluginMemory, "memory limit of the instance (4MiB to 4GiB)")
	pos, code := parseInterspersed(fs, args, stdout)
	if code >= 0 {
		return code
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "crosscast plugin call: "+format+"\n", args...)
		return exitUsage
	}
	const entryNames = "manifest, configure, send, receive, score, inbound, outbound"
	if len(pos) != 2 {
		return usageErr("give a wasm FILE and an ENTRY (%s or a number)", entryNames)
	}
	path, entryArg := pos[0], pos[1]
	entry, ok := callEntryNamed(entryArg)
	if !ok {
		return usageErr("unknown entry %q: use %s or an entry point number", entryArg, entryNames)
	}
	if *timeout < time.Millisecond || *timeout > 5*time.Minute {
		return usageErr("-timeout %s must be between 1ms and 5m", *timeout)
	}
	memory, err := config.ParseSize(*memoryArg)
	if err != nil {
		return usageErr("-memory: %v", err)
	}
	if memory < minPluginMemory || memory > maxPluginMemory {
		return usageErr("-memory %s must be between 4MiB and 4GiB", *memoryArg)
	}
	cfg, err := jsonObjectArg("-config", *configArg)
	if err != nil {
		return usageErr("%v", err)
	}
	input, err := fileOrLiteral(*inputArg)
	if err != nil {
		return usageErr("-input: %v", err)
	}
	name := pluginNameOf(path)
	switch {
	case entry.id == entryManifest || entry.id == entryConfigure:
		if *inputArg != "" {
			return usageErr("entry %s takes no -input (configure's input is -config)", entryArg)
		}
	case entry.input != nil:
		if *inputArg == "" {
			return usageErr("%s needs -input, e.g. '%s'", entryArg, entry.example)
		}
		if input, err = entry.input(input, callEnv{now: time.Now(), plugin: name}); err != nil {
			return usageErr("-input: %v", err)
		}
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return usageErr("%v", err)
	}

	logw := &syncWriter{w: stderr}
	rt, p, err := loadPlugin(ctx, path, wasm, *timeout, memory, logw)
	if err != nil {
		fmt.Fprintf(logw, "crosscast plugin call: %v\n", err)
		return exitError
	}
	defer closeRuntime(rt)
	if _, err := p.Call(ctx, entryConfigure, cfg); err != nil {
		fmt.Fprintf(logw, "crosscast plugin call: configuring: %v\n", err)
		return exitError
	}
	if entry.id == entryConfigure {
		fmt.Fprintln(logw, "crosscast plugin call: configure: ok")
		return exitOK
	}
	start := time.Now()
	out, err := p.Call(ctx, entry.id, input)
	fmt.Fprintf(logw, "crosscast plugin call: %s took %s\n", entryArg, time.Since(start).Round(time.Microsecond))
	if err != nil {
		fmt.Fprintf(logw, "crosscast plugin call: %v\n", err)
		return exitError
	}
	switch {
	case entry.id == entryManifest:
		var buf bytes.Buffer
		if err := json.Indent(&buf, out, "", "  "); err != nil {
			fmt.Fprintf(logw, "crosscast plugin call: the manifest is not JSON (%v): %.200q\n", err, out)
			return exitError
		}
		fmt.Fprintf(stdout, "%s\n", buf.Bytes())
	case entry.output != nil:
		v, err := entry.output(out)
		if err != nil {
			fmt.Fprintf(logw, "crosscast plugin call: decoding the %s answer: %v\n", entryArg, err)
			return exitError
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			fmt.Fprintf(logw, "crosscast plugin call: printing the %s answer: %v\n", entryArg, err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s\n", b)
	default:
		_, _ = stdout.Write(out)
	}
	return exitOK
}

// pluginNameOf is the name a module is loaded under: its file's base name without .wasm.
func pluginNameOf(path string) string {
	name := strings.TrimSuffix(filepath.Base(path), ".wasm")
	if name == "" {
		name = "plugin"
	}
	return name
}

// encodeRequest returns a request's encoding.
func encodeRequest(encode func(*wire.Writer)) []byte {
	w := wire.NewWriter(nil)
	encode(w)
	return w.Bytes()
}

// jsonTimeLayout is how plugin call prints times: RFC 3339 in UTC, to the millisecond.
const jsonTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// unixMilliOf parses an RFC 3339 time of -input; "" is def.
func unixMilliOf(field, s string, def time.Time) (int64, error) {
	if s == "" {
		return def.UnixMilli(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%s: want an RFC 3339 time such as 2026-05-01T10:00:00Z: %w", field, err)
	}
	return t.UnixMilli(), nil
}

// jsonTime formats a time of an answer; 0 (unknown) is "".
func jsonTime(unixMilli int64) string {
	if unixMilli == 0 {
		return ""
	}
	return time.UnixMilli(unixMilli).UTC().Format(jsonTimeLayout)
}

// textOrBase64 returns b as text when it is UTF-8, or else as base64 in the second result.
func textOrBase64(b []byte) (text, b64 string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// -- send --

// callMessage is a message of send's -input.
type callMessage struct {
	ID             string            `json:"id"`
	IdempotencyKey string            `json:"idempotency_key"`
	Workspace      string            `json:"workspace"`
	ContactID      string            `json:"contact_id"`
	To             string            `json:"to"`
	Fields         map[string]string `json:"fields"`
	Headers        map[string]string `json:"headers"`
}

// callResult is a result in send's output.
type callResult struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ProviderID   string `json:"provider_id"`
	Error        string `json:"error"`
	RetryAfterMS uint32 `json:"retry_after_ms"`
	Units        uint32 `json:"units,omitempty"`
}

// sendInput converts send's JSON -input to an encoded wire.SendRequest.
func sendInput(b []byte, env callEnv) ([]byte, error) {
	var in struct {
		Messages []callMessage `json:"messages"`
	}
	if err := decodeStrict(b, &in); err != nil {
		return nil, err
	}
	if in.Messages == nil {
		return nil, errors.New(`want {"messages":[...]}`)
	}
	req := wire.SendRequest{NowUnixMilli: env.now.UnixMilli(), Messages: make([]wire.Message, len(in.Messages))}
	for i, m := range in.Messages {
		req.Messages[i] = wire.Message{
			ID: m.ID, IdempotencyKey: m.IdempotencyKey, Workspace: m.Workspace, ContactID: m.ContactID, To: m.To,
			Fields: wire.PairsOf(m.Fields), Headers: wire.PairsOf(m.Headers),
		}
	}
	return encodeRequest(req.Encode), nil
}

func sendOutput(out []byte) (any, error) {
	resp, err := wire.DecodeSendResponse(out)
	if err != nil {
		return nil, err
	}
	results := make([]callResult, len(resp.Results))
	for i, r := range resp.Results {
		results[i] = callResult{ID: r.ID, Status: r.Status.String(), ProviderID: r.ProviderID, Error: r.Error, RetryAfterMS: r.RetryAfterMillis, Units: r.Units}
	}
	return struct {
		Results []callResult `json:"results"`
	}{results}, nil
}

// -- receive and inbound --

// callHook is the -input of receive and inbound: an HTTP request to /hooks/{workspace}/{plugin}.
type callHook struct {
	Workspace  string            `json:"workspace"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      string            `json:"query"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	RemoteAddr string            `json:"remote_addr"`
}

// hookInput converts a hook's JSON -input to an encoded wire.HookRequest. Header names are put in canonical form,
// as the host's HTTP server gives them.
func hookInput(b []byte, env callEnv) ([]byte, error) {
	var in callHook
	if err := decodeStrict(b, &in); err != nil {
		return nil, err
	}
	ws := orDefault(in.Workspace, defaultWorkspace)
	headers := make(map[string]string, len(in.Headers))
	for k, v := range in.Headers {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if _, dup := headers[ck]; dup {
			return nil, fmt.Errorf("header %s is given twice", ck)
		}
		headers[ck] = v
	}
	req := wire.HookRequest{
		NowUnixMilli: env.now.UnixMilli(), Workspace: ws,
		Method:   strings.ToUpper(orDefault(in.Method, "POST")),
		Path:     orDefault(in.Path, "/hooks/"+ws+"/"+env.plugin),
		RawQuery: strings.TrimPrefix(in.Query, "?"), Headers: wire.PairsOf(headers), Body: []byte(in.Body),
		RemoteAddr: in.RemoteAddr,
	}
	return encodeRequest(req.Encode), nil
}

// callReply is the HTTP reply part of receive's and inbound's output.
type callReply struct {
	Status     uint32            `json:"status"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	BodyBase64 string            `json:"body_base64,omitempty"`
}

func replyOf(status uint32, headers wire.Pairs, body []byte) callReply {
	r := callReply{Status: status, Headers: headers.Map()}
	r.Body, r.BodyBase64 = textOrBase64(body)
	return r
}

// callChannelEvent is an event in receive's output.
type callChannelEvent struct {
	Type       string            `json:"type"`
	MessageID  string            `json:"message_id"`
	ProviderID string            `json:"provider_id"`
	Address    string            `json:"address"`
	At         string            `json:"at,omitempty"`
	Permanent  bool              `json:"permanent"`
	Detail     string            `json:"detail"`
	Fields     map[string]string `json:"fields,omitempty"`
}

func receiveOutput(out []byte) (any, error) {
	resp, err := wire.DecodeReceiveResponse(out)
	if err != nil {
		return nil, err
	}
	events := make([]callChannelEvent, len(resp.Events))
	for i, e := range resp.Events {
		events[i] = callChannelEvent{Type: e.Type.String(), MessageID: e.MessageID, ProviderID: e.ProviderID,
			Address: e.Address, At: jsonTime(e.AtUnixMilli), Permanent: e.Permanent, Detail: e.Detail}
		if len(e.Fields) > 0 {
			events[i].Fields = e.Fields.Map()
		}
	}
	return struct {
		callReply
		Events []callChannelEvent `json:"events"`
	}{replyOf(resp.Status, resp.Headers, resp.Body), events}, nil
}

func inboundOutput(out []byte) (any, error) {
	resp, err := wire.DecodeInboundResponse(out)
	if err != nil {
		return nil, err
	}
	return struct {
		callReply
		Events []callTrackEvent `json:"events"`
	}{replyOf(resp.Status, resp.Headers, resp.Body), trackEventsJSON(resp.Events)}, nil
}

// -- connectors' events --

// callTrackEvent is a wire.TrackEvent in JSON, with the Segment spec's names.
type callTrackEvent struct {
	MessageID   string          `json:"messageId"`
	Type        string          `json:"type"`
	Event       string          `json:"event,omitempty"`
	UserID      string          `json:"userId,omitempty"`
	AnonymousID string          `json:"anonymousId,omitempty"`
	Timestamp   string          `json:"timestamp,omitempty"`
	Properties  json.RawMessage `json:"properties,omitempty"`
	Traits      json.RawMessage `json:"traits,omitempty"`
	Context     json.RawMessage `json:"context,omitempty"`
}

func trackEventsJSON(events []wire.TrackEvent) []callTrackEvent {
	out := make([]callTrackEvent, len(events))
	for i, e := range events {
		out[i] = callTrackEvent{MessageID: e.MessageID, Type: string(e.Type), Event: e.Event, UserID: e.UserID,
			AnonymousID: e.AnonymousID, Timestamp: jsonTime(e.TimestampUnixMilli),
			Properties: e.Properties, Traits: e.Traits, Context: e.Context}
	}
	return out
}

// trackEventOf converts an event of -input; its timestamp defaults to now.
func trackEventOf(i int, e callTrackEvent, now time.Time) (wire.TrackEvent, error) {
	te := wire.TrackEvent{MessageID: e.MessageID, Type: wire.TrackType(e.Type), Event: e.Event, UserID: e.UserID,
		AnonymousID: e.AnonymousID}
	if !te.Type.Valid() {
		return te, fmt.Errorf("event %d: type %q is not track, identify, page, screen, group or alias", i, e.Type)
	}
	var err error
	if te.TimestampUnixMilli, err = unixMilliOf(fmt.Sprintf("event %d: timestamp", i), e.Timestamp, now); err != nil {
		return te, err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *[]byte
	}{{"properties", e.Properties, &te.Properties}, {"traits", e.Traits, &te.Traits}, {"context", e.Context, &te.Context}} {
		raw := bytes.TrimSpace(f.raw)
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		if raw[0] != '{' {
			return te, fmt.Errorf("event %d: %s must be a JSON object", i, f.name)
		}
		*f.dst = raw
	}
	return te, nil
}

// -- outbound --

// callOutboundResult is a result in outbound's output.
type callOutboundResult struct {
	MessageID    string `json:"message_id"`
	Status       string `json:"status"`
	RetryAfterMS uint32 `json:"retry_after_ms"`
	Error        string `json:"error"`
}

func outboundInput(b []byte, env callEnv) ([]byte, error) {
	var in struct {
		Workspace string           `json:"workspace"`
		Events    []callTrackEvent `json:"events"`
	}
	if err := decodeStrict(b, &in); err != nil {
		return nil, err
	}
	if in.Events == nil {
		return nil, errors.New(`want {"events":[...]}`)
	}
	req := wire.OutboundRequest{NowUnixMilli: env.now.UnixMilli(), Workspace: orDefault(in.Workspace, defaultWorkspace),
		Events: make([]wire.TrackEvent, len(in.Events))}
	for i, e := range in.Events {
		var err error
		if req.Events[i], err = trackEventOf(i, e, env.now); err != nil {
			return nil, err
		}
	}
	return encodeRequest(req.Encode), nil
}

func outboundOutput(out []byte) (any, error) {
	resp, err := wire.DecodeOutboundResponse(out)
	if err != nil {
		return nil, err
	}
	results := make([]callOutboundResult, len(resp.Results))
	for i, r := range resp.Results {
		results[i] = callOutboundResult{MessageID: r.MessageID, Status: r.Status.String(), RetryAfterMS: r.RetryAfterMillis, Error: r.Error}
	}
	return struct {
		Results []callOutboundResult `json:"results"`
	}{results}, nil
}

// -- score --

// callScoreItem is an item of score's -input.
type callScoreItem struct {
	ContactID string            `json:"contact_id"`
	Traits    map[string]string `json:"traits"`
	Events    []struct {
		Name       string            `json:"name"`
		At         string            `json:"at"`
		Properties map[string]string `json:"properties"`
	} `json:"events"`
	State       string `json:"state"`
	StateBase64 string `json:"state_base64"`
}

// callScoreResult is a result in score's output.
type callScoreResult struct {
	ContactID   string      `json:"contact_id"`
	Scores      []callScore `json:"scores"`
	Reasons     []string    `json:"reasons"`
	State       string      `json:"state"`
	StateBase64 string      `json:"state_base64,omitempty"`
}

// callScore is a score in score's output.
type callScore struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

func scoreInput(b []byte, env callEnv) ([]byte, error) {
	var in struct {
		Workspace string          `json:"workspace"`
		Items     []callScoreItem `json:"items"`
	}
	if err := decodeStrict(b, &in); err != nil {
		return nil, err
	}
	if in.Items == nil {
		return nil, errors.New(`want {"items":[...]}`)
	}
	req := wire.ScoreRequest{NowUnixMilli: env.now.UnixMilli(), Workspace: orDefault(in.Workspace, defaultWorkspace),
		Items: make([]wire.ScoreItem, len(in.Items))}
	for i, it := range in.Items {
		item := wire.ScoreItem{ContactID: it.ContactID, Traits: wire.PairsOf(it.Traits), State: []byte(it.State)}
		if it.StateBase64 != "" {
			if it.State != "" {
				return nil, fmt.Errorf("item %d: give state or state_base64, not both", i)
			}
			state, err := base64.StdEncoding.DecodeString(it.StateBase64)
			if err != nil {
				return nil, fmt.Errorf("item %d: state_base64: %w", i, err)
			}
			item.State = state
		}
		for j, e := range it.Events {
			at, err := unixMilliOf(fmt.Sprintf("item %d: event %d: at", i, j), e.At, env.now)
			if err != nil {
				return nil, err
			}
			item.Events = append(item.Events, wire.ScoreEvent{Name: e.Name, AtUnixMilli: at, Properties: wire.PairsOf(e.Properties)})
		}
		req.Items[i] = item
	}
	return encodeRequest(req.Encode), nil
}

func scoreOutput(out []byte) (any, error) {
	resp, err := wire.DecodeScoreResponse(out)
	if err != nil {
		return nil, err
	}
	results := make([]callScoreResult, len(resp.Results))
	for i, r := range resp.Results {
		results[i] = callScoreResult{ContactID: r.ContactID, Scores: make([]callScore, len(r.Scores)), Reasons: r.Reasons}
		for j, sc := range r.Scores {
			results[i].Scores[j] = callScore{Name: sc.Name, Value: sc.Value}
		}
		if results[i].Reasons == nil {
			results[i].Reasons = []string{}
		}
		results[i].State, results[i].StateBase64 = textOrBase64(r.State)
	}
	return struct {
		Results []callScoreResult `json:"results"`
	}{results}, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: data after the value")
	}
	return nil
}

// fileOrLiteral returns arg, or the content of the file it names if it starts with '@'.
func fileOrLiteral(arg string) ([]byte, error) {
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		return os.ReadFile(name)
	}
	return []byte(arg), nil
}

// jsonObjectArg reads a JSON object flag (literal or @FILE) and returns it as given.
func jsonObjectArg(flagName, arg string) ([]byte, error) {
	b, err := fileOrLiteral(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	var obj map[string]any
	if err := decodeStrict(b, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("%s must be a JSON object such as {\"key\":\"value\"}: %v", flagName, err)
	}
	return b, nil
}

// ---- runtime ----

// loadPlugin starts a plugin runtime with one instance per plugin (timeout and memory 0: the runtime's defaults)
// whose logs, guest log lines included, go to logw, and loads wasm in it, named after path. Close rt when done.
func loadPlugin(ctx context.Context, path string, wasm []byte, timeout time.Duration, memory int64, logw io.Writer) (*runtime.Runtime, *runtime.Plugin, error) {
	log := hclog.New(&hclog.LoggerOptions{
		Name:        "crosscast",
		Level:       hclog.Trace, // guest lines at every level: this is a developer's tool
		Output:      logw,
		DisableTime: true,
	})
	rt, err := runtime.New(ctx, runtime.Options{Pool: 1, Timeout: timeout, MemoryLimit: uint64(memory), Logger: log})
	if err != nil {
		return nil, nil, err
	}
	p, err := rt.Load(ctx, pluginNameOf(path), wasm)
	if err != nil {
		closeRuntime(rt)
		return nil, nil, err
	}
	return rt, p, nil
}

func closeRuntime(rt *runtime.Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = rt.Close(ctx)
}

func mustParseSize(s string) int64 {
	n, err := config.ParseSize(s)
	if err != nil {
		panic(err)
	}
	return n
}

// syncWriter serialises writes: the runtime may report dropped guest log lines from a timer's goroutine.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *syncWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
