package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the crosscast binary built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crosscast-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "crosscast")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building crosscast:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a crosscast serve process.
type server struct {
	cmd    *exec.Cmd
	base   string
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
	exited chan error
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.String() + s.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var (
	listeningRE = regexp.MustCompile(`listening on (http://[0-9.:]+)`)
	// bannerEndRE matches the banner's last line: the generated token, or how to get one.
	bannerEndRE = regexp.MustCompile(`export CROSSCAST_TOKEN=|^  token: `)
)

// start runs crosscast with args and waits until it has printed its whole banner, or has exited.
func start(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(binary, args...), exited: make(chan error, 1)}
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stderr = lockedWriter{&s.mu, &s.stderr}
	pipe, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		base := ""
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stdout.WriteString(line + "\n")
			s.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				base = m[1]
			}
			if base != "" && bannerEndRE.MatchString(line) {
				found <- base
			}
		}
		s.exited <- s.cmd.Wait()
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
		}
	})
	select {
	case s.base = <-found:
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start in time:\n%s", s.output())
	}
	return s
}

// wait returns the exit code once the process ends.
func (s *server) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not exit in time:\n%s", s.output())
		return -1
	}
}

func (s *server) call(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	return s.callWith(t, method, path, token, body, "")
}

// callWith is call with a Content-Type.
func (s *server) callWith(t *testing.T, method, path, token, body, contentType string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

var tokenRE = regexp.MustCompile(`export CROSSCAST_TOKEN=(cct_\S+)`)

// A fresh start with no configuration creates ./data and the default workspace, prints an owner token once, serves,
// and stops cleanly on SIGTERM with everything it acknowledged still there on the next start.
func TestServeFirstStartAndGracefulRestart(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := start(t, nil, "serve", "-listen", "127.0.0.1:0", "-data", data)
	m := tokenRE.FindStringSubmatch(s.output())
	if m == nil {
		t.Fatalf("no owner token printed on first start:\n%s", s.output())
	}
	token := m[1]
	if code, body := s.call(t, "GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d %s", code, body)
	}
	if code, body := s.call(t, "GET", "/api/v1/workspaces", token, ""); code != 200 || !strings.Contains(body, `"id":"default"`) {
		t.Fatalf("default workspace missing: %d %s", code, body)
	}
	if code, body := s.call(t, "POST", "/api/v1/workspaces", token, `{"id":"acme","name":"Acme"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("SIGTERM exit code %d:\n%s", code, s.output())
	}
	if !strings.Contains(s.output(), "stopped") {
		t.Errorf("no clean stop logged:\n%s", s.output())
	}

	s2 := start(t, nil, "serve", "-listen", "127.0.0.1:0", "-data", data)
	if tokenRE.MatchString(s2.output()) {
		t.Fatalf("a second owner token was printed on restart:\n%s", s2.output())
	}
	if code, body := s2.call(t, "GET", "/api/v1/workspaces/acme", token, ""); code != 200 || !strings.Contains(body, `"name":"Acme"`) {
		t.Fatalf("workspace lost across restart: %d %s", code, body)
	}
	_ = s2.cmd.Process.Signal(syscall.SIGINT)
	if code := s2.wait(t); code != 0 {
		t.Fatalf("SIGINT exit code %d", code)
	}
}

func TestServeFailsClearly(t *testing.T) {
	dir := t.TempDir()
	// Hold a data dir with a running server, and a port with a plain listener.
	held := filepath.Join(dir, "held")
	holder := start(t, nil, "serve", "-listen", "127.0.0.1:0", "-data", held)
	defer func() { _ = holder.cmd.Process.Signal(syscall.SIGTERM); holder.wait(t) }()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	file := filepath.Join(dir, "a-file")
	os.WriteFile(file, []byte("x"), 0o600)
	badCfg := filepath.Join(dir, "bad.hcl")
	os.WriteFile(badCfg, []byte("storage {\n  data_dir = env(\"CROSSCAST_TEST_UNSET_VAR\")\n}\n"), 0o600)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
		noData   string // a data dir that must not have been created
	}{
		{"data dir in use", []string{"-listen", "127.0.0.1:0", "-data", held}, 1, "data dir " + held + " is in use by another crosscast process", ""},
		{"port in use", []string{"-listen", busy.Addr().String(), "-data", filepath.Join(dir, "p")}, 1, "address already in use", filepath.Join(dir, "p")},
		{"data dir not writable", []string{"-listen", "127.0.0.1:0", "-data", filepath.Join(file, "data")}, 1, "not writable", ""},
		{"missing env var", []string{"-config", badCfg}, 2, badCfg + ":2:", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, nil, append([]string{"serve"}, tt.args...)...)
			if code := s.wait(t); code != tt.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.wantCode, s.output())
			}
			if !strings.Contains(s.output(), tt.want) {
				t.Fatalf("output lacks %q:\n%s", tt.want, s.output())
			}
			if tt.noData != "" {
				if _, err := os.Stat(tt.noData); err == nil {
					t.Fatalf("a failed start created %s (a first-start token would be lost)", tt.noData)
				}
			}
		})
	}
}

// Backups of a running server through the API, then restored and served.
func TestBackupAndRestoreCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const tok = "e2e-bootstrap-token-0123456789abcdef"
	s := start(t, []string{"CROSSCAST_BOOTSTRAP_TOKEN=" + tok}, "serve", "-listen", "127.0.0.1:0", "-data", data)
	for _, id := range []string{"one", "two"} {
		if code, body := s.call(t, "POST", "/api/v1/workspaces", tok, `{"id":"`+id+`"}`); code != 201 {
			t.Fatalf("%d %s", code, body)
		}
	}
	// Offline backup of a running server's dir is refused with the way out.
	code, _, stderr := runCLI(t, "backup", "-data", data, "-out", filepath.Join(dir, "x.tgz"))
	if code != 1 || !strings.Contains(stderr, "-url") {
		t.Fatalf("offline backup of a live dir: exit %d %s", code, stderr)
	}
	archive := filepath.Join(dir, "live.tar.gz")
	if code, _, stderr := runCLI(t, "backup", "-url", s.base, "-token", tok, "-out", archive); code != 0 {
		t.Fatalf("online backup: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "backup", "-url", s.base, "-token", "wrong-token-wrong-token-wrong", "-out", filepath.Join(dir, "no.tgz")); code != 1 || !strings.Contains(stderr, "401") {
		t.Fatalf("backup with a bad token: exit %d %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "no.tgz")); err == nil {
		t.Fatalf("a failed backup left a file behind")
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.wait(t)

	offline := filepath.Join(dir, "offline.tar.gz")
	if code, _, stderr := runCLI(t, "backup", "-data", data, "-out", offline); code != 0 {
		t.Fatalf("offline backup: exit %d %s", code, stderr)
	}
	for _, a := range []string{archive, offline} {
		restored := filepath.Join(dir, "restored-"+filepath.Base(a))
		code, stdout, stderr := runCLI(t, "restore", "-in", a, "-data", restored)
		if code != 0 || !strings.Contains(stdout, "3 workspaces") {
			t.Fatalf("restore %s: exit %d %s %s", a, code, stdout, stderr)
		}
		if code, _, stderr := runCLI(t, "restore", "-in", a, "-data", restored); code != 1 || !strings.Contains(stderr, "already holds crosscast data") {
			t.Fatalf("restore over data: exit %d %s", code, stderr)
		}
		r := start(t, []string{"CROSSCAST_BOOTSTRAP_TOKEN=" + tok}, "serve", "-listen", "127.0.0.1:0", "-data", restored)
		code, body := r.call(t, "GET", "/api/v1/workspaces", tok, "")
		var list struct {
			Items []struct{ ID string } `json:"items"`
		}
		_ = json.Unmarshal([]byte(body), &list)
		if code != 200 || len(list.Items) != 3 {
			t.Fatalf("restored server lists %d %s", code, body)
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		r.wait(t)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	s := start(t, nil, "serve", "-listen", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "d"))
	defer func() { _ = s.cmd.Process.Signal(syscall.SIGTERM); s.wait(t) }()
	code, stdout, stderr := runCLI(t, "healthcheck", "-url", s.base+"/healthz")
	if code != 0 || !strings.Contains(stdout, `"status":"ok"`) {
		t.Fatalf("healthcheck: exit %d %s %s", code, stdout, stderr)
	}
}

// A data dir the server's user may not write (a root-owned bind mount, say) fails at start with a clear message.
// As root, the server runs as nobody against a root-owned 0700 dir; otherwise against a read-only dir of our own.
func TestServeDataDirPermissionDenied(t *testing.T) {
	parent := t.TempDir()
	data := filepath.Join(parent, "data")
	cmd := exec.Command(binary, "serve", "-listen", "127.0.0.1:0", "-data", data)
	if os.Geteuid() == 0 {
		if err := os.Chmod(parent, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(data, 0o700); err != nil {
			t.Fatal(err)
		}
		// nobody must be able to run the binary itself.
		if err := os.Chmod(filepath.Dir(binary), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	} else if err := os.Mkdir(data, 0o500); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v:\n%s", err, out)
	}
	if !strings.Contains(string(out), "data dir "+data+" is not writable") || !strings.Contains(string(out), "permission denied") {
		t.Fatalf("unclear error:\n%s", out)
	}
}
