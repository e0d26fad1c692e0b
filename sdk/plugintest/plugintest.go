// Package plugintest unit-tests a built Crosscast plugin under the real host, with fakes for the outside world:
// recorded HTTP responses, an in-memory SMTP relay, a fresh key-value store and a fixed clock. Write ordinary Go
// tests in the plugin's project and run them with go test (or crosscast plugin test, which runs go test too):
//
//	func TestSendPostsToTheAPI(t *testing.T) {
//		h := plugintest.New(t, plugintest.Options{
//			Config: `api_url = "https://api.example.com/v1/send"`,
//			Grants: plugintest.Grants{HTTPHosts: []string{"https://api.example.com"}},
//			HTTP: []plugintest.Response{{Method: "POST", URL: "https://api.example.com/v1/send", Status: 202,
//				Body: `{"id":"p-1"}`}},
//		})
//		res := h.Send(sdk.Message{ID: "m1", To: "ada@example.com"})
//		if res[0].Status != sdk.Accepted || res[0].ProviderID != "p-1" {
//			t.Fatalf("result %+v", res[0])
//		}
//		if req := h.Requests()[0]; req.Header["Authorization"] == "" {
//			t.Errorf("no Authorization header in %+v", req)
//		}
//	}
//
// New builds the project in Options.Dir for wasm (once per test binary and directory), starts the crosscast
// binary as `crosscast plugin host` and loads the module there: the manager, the config block's parsing and
// validation, the grant checks, the capabilities and the store are the production ones. Only the network, the
// SMTP relay and the clock are fakes. A request to an origin the grants do not cover is refused with the message
// production gives; a request with no recorded response fails with "no recorded response for METHOD URL".
//
// The host is found in $CROSSCAST_BIN (crosscast plugin test sets it), else as crosscast in $PATH; without it the
// test fails, saying so. It never skips: a skipped test hides a broken plugin.
//
// The package imports only the standard library and the SDK: it is copied into scaffolded projects, which build
// offline.
package plugintest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/sdk"
)

// protocol is the version of `crosscast plugin host`'s protocol this package speaks.
const protocol = 1

// DefaultNow is the clock of a Host whose Options.Now is zero.
var DefaultNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// answerTimeout bounds the wait for one answer of the host: loading compiles the module (about a second, much
// more under -race) and a call lasts at most the plugin's timeout.
const answerTimeout = 3 * time.Minute

// Options says what to load and how the world around the plugin behaves.
type Options struct {
	// Dir is the plugin's project directory, built with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
	// (default "."). The build is done once per test binary and directory.
	Dir string
	// Wasm is an already built module; when set, Dir is not built.
	Wasm string
	// Name is the plugin's name, as in the plugin "NAME" block (default: the manifest's id). The kv space, the
	// metrics' plugin label and the log lines use it.
	Name string
	// Config is the body of the plugin's config { } block, in HCL, e.g. "from = \"a@b.c\"\napi_key = \"k\"".
	// Positions in its errors are reported as Options.Config:LINE:COL.
	Config string
	// Grants are the plugin block's grants: they must match the capabilities the manifest requests, as in
	// production.
	Grants Grants
	// Workspace is the workspace calls are made for (default "test").
	Workspace string
	// Now is the host's clock, fixed until SetNow (default DefaultNow).
	Now time.Time
	// HTTP are the recorded responses the plugin's requests are served from.
	HTTP []Response
	// Pool, Timeout and Memory are the plugin block's limits; zero values keep production's defaults (2
	// instances, "5s", "64MiB").
	Pool    int
	Timeout time.Duration
	Memory  string
}

// Grants are what the operator grants the plugin.
type Grants struct {
	// HTTPHosts are the origins the plugin may request ("https://api.example.com", "https://*.example.com").
	HTTPHosts []string `json:"http_hosts,omitempty"`
	// AllowPrivate lets it reach loopback and private IP literals.
	AllowPrivate bool `json:"allow_private,omitempty"`
	// KVQuota grants the kv capability with this quota per workspace ("1MiB").
	KVQuota string `json:"kv_quota,omitempty"`
	// SMTP grants the smtp capability, through the host's in-memory relay.
	SMTP bool `json:"smtp,omitempty"`
}

// Response is a recorded HTTP response. A request gets the first unused response with its method and exact URL
// (query included), or one marked Repeat, which serves any number of requests.
type Response struct {
	Method string            `json:"method"` // default GET
	URL    string            `json:"url"`
	Status int               `json:"status,omitempty"` // default 200
	Header map[string]string `json:"headers,omitempty"`
	Body   string            `json:"body,omitempty"`
	// Err fails the request as the network would ("connection refused"): the plugin gets this error, no response.
	Err    string `json:"error,omitempty"`
	Repeat bool   `json:"repeat,omitempty"`
}

// Request is an HTTP request the plugin made that its grants allowed. Header names are in canonical form
// ("Content-Type"), repeated values joined with ", ".
type Request struct {
	Method string
	URL    string
	Header map[string]string
	Body   string
}

// Mail is a message the in-memory relay accepted: To lists the recipients it accepted it for; Data is the whole
// message, as the plugin gave it.
type Mail struct {
	From string
	To   []string
	Data string
}

// Host is a plugin loaded under a `crosscast plugin host` process. Its methods fail the test (t.Fatal) when the
// host cannot be reached; the ...Err methods and Call return what the plugin or the host refused. Use it from the
// test's goroutine. The process stops when the test ends.
type Host struct {
	t    testing.TB
	name string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stdin   *os.File
	stdout  *os.File
	answers *bufio.Reader
	stderr  *tailBuffer
	exited  chan struct{}
	waitErr error
	stopped bool
}

// New loads the plugin and returns its Host; any failure, a refused configuration included, fails the test.
func New(t testing.TB, opts Options) *Host {
	t.Helper()
	h, err := Load(t, opts)
	if err != nil {
		t.Fatalf("plugintest: loading the plugin: %v", err)
	}
	return h
}

// Load is New, but returns the host's refusal to load the plugin (a bad manifest, grants that do not match, a
// config block the plugin's schema or Configure refuses, a failing self-test) as an error, to test it. Building
// the module or starting the host still fails the test.
func Load(t testing.TB, opts Options) (*Host, error) {
	t.Helper()
	wasm := opts.Wasm
	if wasm == "" {
		dir := opts.Dir
		if dir == "" {
			dir = "."
		}
		var err error
		if wasm, err = build(dir); err != nil {
			t.Fatalf("plugintest: %v", err)
		}
	}
	wasm, err := filepath.Abs(wasm)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	h := start(t)
	now := opts.Now
	if now.IsZero() {
		now = DefaultNow
	}
	req := request{
		Op: "load", Protocol: protocol, Wasm: wasm, Name: opts.Name, Config: opts.Config, Grants: opts.Grants,
		Pool: opts.Pool, Memory: opts.Memory, Workspace: opts.Workspace, Now: now.Format(time.RFC3339Nano),
		HTTP: opts.HTTP,
	}
	if opts.Timeout != 0 {
		req.Timeout = opts.Timeout.String()
	}
	a, err := h.do(req)
	if err != nil {
		h.stop()
		return nil, err
	}
	h.name = a.Name
	return h, nil
}

// Name is the name the plugin is loaded under.
func (h *Host) Name() string { return h.name }

// Send hands a batch to the channel's send, as the campaign engine does, and returns one result per message, in
// order. A message without an ID gets "m1", "m2"..., without an IdempotencyKey its ID. A whole-batch failure (the
// plugin's error answer, a trap, a timeout) fails the test: use SendErr to test one.
func (h *Host) Send(msgs ...sdk.Message) []sdk.Result {
	h.t.Helper()
	res, err := h.SendErr(msgs...)
	if err != nil {
		h.t.Fatalf("plugintest: send: %v", err)
	}
	return res
}

// SendErr is Send, returning a whole-batch failure as an error.
func (h *Host) SendErr(msgs ...sdk.Message) ([]sdk.Result, error) {
	h.t.Helper()
	in := make([]message, len(msgs))
	for i, m := range msgs {
		id := m.ID
		if id == "" {
			id = fmt.Sprintf("m%d", i+1)
		}
		in[i] = message{ID: id, IdempotencyKey: m.IdempotencyKey, ContactID: m.ContactID, To: m.To,
			Fields: m.Fields.Map(), Headers: m.Headers.Map()}
		if in[i].IdempotencyKey == "" {
			in[i].IdempotencyKey = id
		}
	}
	raw, err := json.Marshal(in)
	if err != nil {
		h.t.Fatalf("plugintest: send: %v", err)
	}
	a, err := h.do(request{Op: "send", Messages: raw})
	if err != nil {
		return nil, err
	}
	out := make([]sdk.Result, len(a.Results))
	for i, r := range a.Results {
		out[i] = sdk.Result{ID: r.ID, Status: statusOf(r.Status), ProviderID: r.ProviderID, Error: r.Error, RetryAfterMillis: r.RetryAfterMS, Units: r.Units}
	}
	return out, nil
}

// statusOf parses a status as the host names it.
func statusOf(s string) sdk.Status {
	for st := sdk.Delivered; st <= sdk.Failed; st++ {
		if st.String() == s {
			return st
		}
	}
	return 0
}

// Call runs another entry point, "receive", "score", "inbound" or "outbound", with the JSON forms of
// `crosscast plugin call` (see crosscast plugin call -h): input is encoded with encoding/json (a map, a struct
// with json tags, or a json.RawMessage) and the answer is decoded into output, unless it is nil. The host's clock
// stamps the request; its workspace is Options.Workspace unless input names one. The plugin's error answer or a
// failure of the call is returned.
func (h *Host) Call(entry string, input, output any) error {
	h.t.Helper()
	raw, err := json.Marshal(input)
	if err != nil {
		return fmt.Errorf("encoding the input of %s: %w", entry, err)
	}
	a, err := h.do(request{Op: "call", Entry: entry, Input: raw})
	if err != nil {
		return err
	}
	if output == nil {
		return nil
	}
	if err := json.Unmarshal(a.Output, output); err != nil {
		return fmt.Errorf("decoding the answer of %s (%s): %w", entry, a.Output, err)
	}
	return nil
}

// SetNow sets the host's clock: the Now of the calls that follow.
func (h *Host) SetNow(now time.Time) {
	h.t.Helper()
	h.must(request{Op: "set_now", Now: now.Format(time.RFC3339Nano)})
}

// SetHTTP replaces the recorded responses; the requests made so far stay in Requests.
func (h *Host) SetHTTP(responses ...Response) {
	h.t.Helper()
	if responses == nil {
		responses = []Response{}
	}
	h.must(request{Op: "set_http", HTTP: responses})
}

// RefuseMail makes the relay refuse recipient from now on, as a relay does at RCPT TO, with an SMTP code (4xx:
// temporary, 5xx: permanent, as sdk.IsPermanent tells the plugin) and message. A message whose recipients are all
// refused fails with the first refusal; otherwise it is accepted for the others and the reply lists the refused.
func (h *Host) RefuseMail(recipient string, code int, msg string) {
	h.t.Helper()
	h.must(request{Op: "refuse_mail", Recipient: recipient, Code: code, Message: msg})
}

// Requests returns the HTTP requests the plugin made that its grants allowed, in order.
func (h *Host) Requests() []Request {
	h.t.Helper()
	a := h.must(request{Op: "requests"})
	out := make([]Request, len(a.Requests))
	for i, r := range a.Requests {
		out[i] = Request{Method: r.Method, URL: r.URL, Header: r.Headers, Body: string(r.Body)}
	}
	return out
}

// Mails returns the messages the relay accepted, in order.
func (h *Host) Mails() []Mail {
	h.t.Helper()
	a := h.must(request{Op: "mails"})
	out := make([]Mail, len(a.Mails))
	for i, m := range a.Mails {
		out[i] = Mail{From: m.From, To: m.To, Data: string(m.Data)}
	}
	return out
}

// KV returns every key of the plugin's kv space in the workspace, with its value.
func (h *Host) KV() map[string][]byte {
	h.t.Helper()
	a := h.must(request{Op: "kv"})
	if a.KV == nil {
		return map[string][]byte{}
	}
	return a.KV
}

// PutKV sets key in the plugin's kv space, before a call that expects it; the quota does not apply.
func (h *Host) PutKV(key string, value []byte) {
	h.t.Helper()
	if value == nil {
		value = []byte{}
	}
	h.must(request{Op: "kv_put", Key: key, Value: value})
}

// Logs returns the log lines so far: the plugin's as "LEVEL line" ("INFO sent 2 messages"), with secrets masked
// as in production, and the host's as "LEVEL host: message key=value ...".
func (h *Host) Logs() []string {
	h.t.Helper()
	return h.must(request{Op: "logs"}).Logs
}

// Metric returns the value of one of the plugin's own metrics, by its declared name (histograms: name_count,
// name_sum, name_bucket), summed over the series whose labels include labels (name, value pairs); 0 when none
// has been recorded.
func (h *Host) Metric(name string, labels ...string) float64 {
	h.t.Helper()
	if len(labels)%2 != 0 {
		h.t.Fatalf("plugintest: Metric(%q): labels are name, value pairs", name)
	}
	var sum float64
	for _, s := range h.must(request{Op: "metrics"}).Metrics {
		if s.Name != name {
			continue
		}
		match := true
		for i := 0; i < len(labels); i += 2 {
			if v, ok := s.Labels[labels[i]]; !ok || v != labels[i+1] {
				match = false
			}
		}
		if match {
			sum += s.Value
		}
	}
	return sum
}

// Reload loads the module again as a reload of the server does (manifest, grants, config, self-tests), keeping
// the kv store; it returns the refusal, and the previous version keeps serving.
func (h *Host) Reload() error {
	h.t.Helper()
	_, err := h.do(request{Op: "reload"})
	return err
}

// must sends req and fails the test on any error.
func (h *Host) must(req request) answer {
	h.t.Helper()
	a, err := h.do(req)
	if err != nil {
		h.t.Fatalf("plugintest: %s: %v", req.Op, err)
	}
	return a
}

// ---- protocol ----

// request is one line to `crosscast plugin host`.
type request struct {
	Op        string          `json:"op"`
	Protocol  int             `json:"protocol,omitempty"`
	Wasm      string          `json:"wasm,omitempty"`
	Name      string          `json:"name,omitempty"`
	Config    string          `json:"config,omitempty"`
	Grants    Grants          `json:"grants,omitzero"`
	Pool      int             `json:"pool,omitempty"`
	Timeout   string          `json:"timeout,omitempty"`
	Memory    string          `json:"memory,omitempty"`
	Workspace string          `json:"workspace,omitempty"`
	Now       string          `json:"now,omitempty"`
	HTTP      []Response      `json:"http,omitempty"`
	Messages  json.RawMessage `json:"messages,omitempty"`
	Entry     string          `json:"entry,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	Key       string          `json:"key,omitempty"`
	Value     []byte          `json:"value,omitempty"`
	Recipient string          `json:"recipient,omitempty"`
	Code      int             `json:"code,omitempty"`
	Message   string          `json:"message,omitempty"`
}

// message is a message in the JSON form of `crosscast plugin call ... send`.
type message struct {
	ID             string            `json:"id"`
	IdempotencyKey string            `json:"idempotency_key"`
	ContactID      string            `json:"contact_id,omitempty"`
	To             string            `json:"to"`
	Fields         map[string]string `json:"fields,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
}

// answer is one line from the host.
type answer struct {
	OK      bool            `json:"ok"`
	Error   string          `json:"error"`
	Name    string          `json:"name"`
	Output  json.RawMessage `json:"output"`
	Results []struct {
		ID           string `json:"id"`
		Status       string `json:"status"`
		ProviderID   string `json:"provider_id"`
		Error        string `json:"error"`
		RetryAfterMS uint32 `json:"retry_after_ms"`
		Units        uint32 `json:"units,omitempty"`
	} `json:"results"`
	Requests []struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    []byte            `json:"body"`
	} `json:"requests"`
	Mails []struct {
		From string   `json:"from"`
		To   []string `json:"to"`
		Data []byte   `json:"data"`
	} `json:"mails"`
	KV      map[string][]byte `json:"kv"`
	Logs    []string          `json:"logs"`
	Metrics []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		Value  float64           `json:"value"`
	} `json:"metrics"`
}

// do sends one request and reads its answer. The host's refusal is the error; a host that cannot be reached, or
// answers garbage, fails the test.
func (h *Host) do(req request) (answer, error) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		h.t.Fatalf("plugintest: %s: the host is stopped (the test has ended)", req.Op)
	}
	line, err := json.Marshal(req)
	if err != nil {
		h.t.Fatalf("plugintest: encoding %s: %v", req.Op, err)
	}
	if _, err := h.stdin.Write(append(line, '\n')); err != nil {
		h.t.Fatalf("plugintest: %s: writing to the host: %v%s", req.Op, err, h.diagnostics())
	}
	_ = h.stdout.SetReadDeadline(time.Now().Add(answerTimeout))
	b, err := h.answers.ReadBytes('\n')
	if err != nil {
		h.t.Fatalf("plugintest: %s: reading the host's answer: %v%s", req.Op, err, h.diagnostics())
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		h.t.Fatalf("plugintest: %s: the host answered %.200q: %v", req.Op, b, err)
	}
	if a.Error != "" {
		return a, errors.New(a.Error)
	}
	if !a.OK {
		h.t.Fatalf("plugintest: %s: the host answered neither ok nor an error: %.200q", req.Op, b)
	}
	return a, nil
}

// diagnostics says how the host ended, when it did, with the end of its stderr.
func (h *Host) diagnostics() string {
	var b strings.Builder
	select {
	case <-h.exited:
		fmt.Fprintf(&b, "\nthe host exited: %v", h.waitErr)
	default:
	}
	if tail := h.stderr.String(); tail != "" {
		fmt.Fprintf(&b, "\nits stderr:\n%s", tail)
	}
	return b.String()
}

// ---- process ----

// hostBinary finds the crosscast binary, or fails the test saying how to provide it.
func hostBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("CROSSCAST_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("plugintest: CROSSCAST_BIN names %s: %v", bin, err)
		}
		return bin
	}
	bin, err := exec.LookPath("crosscast")
	if err != nil {
		t.Fatalf("plugintest: the crosscast binary runs the plugin under the real host, and there is none: " +
			"run the tests with `crosscast plugin test .`, put crosscast in $PATH, or set CROSSCAST_BIN to its path " +
			"(make build puts it in the Crosscast repository's bin/)")
	}
	return bin
}

// start starts `crosscast plugin host` and stops it when the test ends.
func start(t testing.TB) *Host {
	t.Helper()
	bin := hostBinary(t)
	// Own pipes rather than cmd's: Wait closes those, racing with the reading of the last answer.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		t.Fatalf("plugintest: %v", err)
	}
	h := &Host{t: t, stdin: inW, stdout: outR, answers: bufio.NewReaderSize(outR, 64<<10), stderr: &tailBuffer{max: 16 << 10}, exited: make(chan struct{})}
	h.cmd = exec.Command(bin, "plugin", "host")
	h.cmd.Stdin, h.cmd.Stdout, h.cmd.Stderr = inR, outW, h.stderr
	err = h.cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatalf("plugintest: starting %s plugin host: %v", bin, err)
	}
	go func() {
		h.waitErr = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(h.stop)
	return h
}

// stop asks the host to close (it deletes its store), then waits for it to exit, killing it if it does not.
func (h *Host) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	h.stopped = true
	_, _ = h.stdin.Write([]byte("{\"op\":\"close\"}\n"))
	h.stdin.Close()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-h.exited:
	case <-timer.C:
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
	h.stdout.Close()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// ---- build ----

// builds holds one build per project directory for the life of the test binary.
var builds sync.Map // absolute dir -> *moduleBuild

type moduleBuild struct {
	once sync.Once
	path string
	err  error
}

// build compiles the project in dir to wasm, once per test binary, and returns the module's path.
func build(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	v, _ := builds.LoadOrStore(abs, &moduleBuild{})
	b := v.(*moduleBuild)
	b.once.Do(func() { b.path, b.err = compile(abs) })
	return b.path, b.err
}

// compile runs the wasm build of dir into the user's cache dir (crosscast/plugintest/), under a name of its own
// per directory: written to a temporary file then renamed, so test binaries building the same project at once
// never read a partial module.
func compile(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building %s: finding the go command: %w", dir, err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	outDir := filepath.Join(cache, "crosscast", "plugintest")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", fmt.Errorf("building %s: %w", dir, err)
	}
	sum := sha256.Sum256([]byte(dir))
	final := filepath.Join(outDir, filepath.Base(dir)+"-"+hex.EncodeToString(sum[:8])+".wasm")
	tmp, err := os.CreateTemp(outDir, ".build-*.wasm")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", dir, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-trimpath", "-o", tmp.Name(), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building %s (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared .): %v\n%s", dir, err, out.Bytes())
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("building %s: %w", dir, err)
	}
	return final, nil
}
