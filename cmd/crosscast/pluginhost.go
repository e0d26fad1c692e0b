package main

// `crosscast plugin host` is the host process of sdk/plugintest: it loads one plugin under the real manager, with
// the real config parsing, store and capabilities, and fakes only the outside world (recorded HTTP responses, an
// in-memory SMTP relay, a fixed clock). It speaks JSON lines on stdin and stdout; sdk/plugintest's client starts
// it, so plugin authors unit-test a built plugin with go test while the SDK stays standard-library only.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/crosscast/crosscast/plugins/netguard"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// hostProtocol is the version of the JSON-lines protocol; sdk/plugintest sends it in load.
const hostProtocol = 1

// Defaults of a load request that leaves them out, as sdk/plugintest documents them.
const (
	defaultHostWorkspace = "test"
	// hostConfigFile names the plugin block the host synthesises; positions in the author's config text are
	// reported against hostConfigName instead, with the text's own line numbers.
	hostConfigFile = "plugintest.hcl"
	hostConfigName = "Options.Config"
	// hostRelay is the smtp block the host declares for a plugin granted smtp.
	hostRelay = "test"
)

var defaultHostNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const pluginHostAbout = `Runs one plugin under the real host for sdk/plugintest, with fakes for the outside world: recorded HTTP
responses (checked against the grant first), an in-memory SMTP relay, a fixed clock, and a real store in a
temporary directory deleted on exit. It reads one JSON request per line on stdin and answers one JSON object per
line on stdout: {"ok":true,...} or {"error":"..."}. Logs are captured, never printed: ask with {"op":"logs"}.
It ends at {"op":"close"} or at the end of stdin (it ignores Ctrl-C, to clean up when its client stops).

Ops: load, send, call, set_now, set_http, refuse_mail, requests, mails, kv, kv_put, logs, metrics, reload, close.
It is an internal command: its protocol follows sdk/plugintest, not a compatibility promise.`

func pluginHostCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin host", "plugin host", pluginHostAbout, stderr)
	pos, code := parseInterspersed(fs, args, stdout)
	if code >= 0 {
		return code
	}
	if len(pos) != 0 {
		fmt.Fprintln(stderr, "crosscast plugin host: takes no arguments; it reads JSON requests on stdin")
		return exitUsage
	}
	// Ctrl-C in go test's terminal reaches this process too: keep serving until the test binary closes stdin (as
	// it does when it stops, however it stops), then clean up, rather than leave the temporary store behind.
	signal.Ignore(os.Interrupt)
	if err := serveHost(ctx, os.Stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "crosscast plugin host: %v\n", err)
		return exitError
	}
	return exitOK
}

// crosscastBinEnv is the environment `plugin test` gives go test: CROSSCAST_BIN names this executable, so
// sdk/plugintest runs the plugin under the same crosscast that tests it.
func crosscastBinEnv() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{"CROSSCAST_BIN=" + exe}
}

// ---- protocol ----

// hostRequest is one request line. Op selects the operation; each uses its own fields.
type hostRequest struct {
	Op string `json:"op"`

	// load
	Protocol  int                `json:"protocol,omitempty"`
	Wasm      string             `json:"wasm,omitempty"`
	Name      string             `json:"name,omitempty"`
	Config    string             `json:"config,omitempty"`
	Grants    hostGrants         `json:"grants,omitzero"`
	Pool      int                `json:"pool,omitempty"`
	Timeout   string             `json:"timeout,omitempty"`
	Memory    string             `json:"memory,omitempty"`
	Workspace string             `json:"workspace,omitempty"`
	Now       string             `json:"now,omitempty"`  // also send's and set_now's
	HTTP      []recordedResponse `json:"http,omitempty"` // also set_http's

	// send: the messages in the JSON form of `plugin call ... send -input`.
	Messages json.RawMessage `json:"messages,omitempty"`

	// call
	Entry string          `json:"entry,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`

	// kv_put
	Key   string `json:"key,omitempty"`
	Value []byte `json:"value,omitempty"`

	// refuse_mail
	Recipient string `json:"recipient,omitempty"`
	Code      int    `json:"code,omitempty"`
	Message   string `json:"message,omitempty"`
}

// hostGrants are the grants of the plugin block, as sdk/plugintest's Grants.
type hostGrants struct {
	HTTPHosts    []string `json:"http_hosts,omitempty"`
	AllowPrivate bool     `json:"allow_private,omitempty"`
	KVQuota      string   `json:"kv_quota,omitempty"`
	SMTP         bool     `json:"smtp,omitempty"`
}

// hostResponse is one answer line: OK, or Error, with what the op returns.
type hostResponse struct {
	OK       bool              `json:"ok,omitempty"`
	Error    string            `json:"error,omitempty"`
	Name     string            `json:"name,omitempty"`     // load
	Results  []callResult      `json:"results,omitempty"`  // send
	Output   json.RawMessage   `json:"output,omitempty"`   // call
	Requests []recordedRequest `json:"requests,omitempty"` // requests
	Mails    []recordedMail    `json:"mails,omitempty"`    // mails
	KV       map[string][]byte `json:"kv,omitempty"`       // kv
	Logs     []string          `json:"logs,omitempty"`     // logs
	Metrics  []metricSample    `json:"metrics,omitempty"`  // metrics
}

// serveHost answers the requests read from in on out, one line each, until a close request or the end of in.
// Whatever it loaded is closed and deleted before it returns.
func serveHost(ctx context.Context, in io.Reader, out io.Writer) error {
	h := &pluginHost{}
	defer h.close()
	r := bufio.NewReader(in)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		line, readErr := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			resp, stop := h.handle(ctx, line)
			if err := enc.Encode(resp); err != nil {
				return fmt.Errorf("writing an answer: %w", err)
			}
			if stop {
				return nil
			}
		}
		switch {
		case errors.Is(readErr, io.EOF):
			return nil
		case readErr != nil:
			return fmt.Errorf("reading requests: %w", readErr)
		}
	}
}

// pluginHost is the state of one `plugin host` process: at most one loaded plugin.
type pluginHost struct {
	dir       string // temporary: the module's copy, the store; deleted by close
	name      string
	workspace string
	cfgLines  [2]int // first and last line of the author's config text in the synthesised file

	clock *hostClock
	http  *recordedHTTP
	mail  *memMailer
	logs  *logCapture
	reg   *metrics.Registry
	st    *store.Store
	mgr   *manager.Manager
}

func hostFail(format string, args ...any) hostResponse {
	return hostResponse{Error: fmt.Sprintf(format, args...)}
}

func hostErr(err error) hostResponse { return hostResponse{Error: err.Error()} }

var okResponse = hostResponse{OK: true}

// handle answers one request line; stop is true after close.
func (h *pluginHost) handle(ctx context.Context, line []byte) (resp hostResponse, stop bool) {
	var req hostRequest
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return hostFail("malformed request: %v", err), false
	}
	if dec.More() {
		return hostFail("malformed request: more than one JSON value on the line"), false
	}
	if req.Op == "close" {
		h.close()
		return okResponse, true
	}
	if req.Op == "load" {
		if h.mgr != nil {
			return hostFail("a plugin is already loaded: one host process serves one plugin"), false
		}
		return h.load(ctx, req), false
	}
	if _, known := hostOps[req.Op]; !known {
		return hostFail("unknown op %q (load, %s, close)", req.Op, strings.Join(hostOpNames(), ", ")), false
	}
	if h.mgr == nil {
		return hostFail("no plugin loaded: send a load request first"), false
	}
	return hostOps[req.Op](h, ctx, req), false
}

// hostOps are the operations on a loaded plugin.
var hostOps = map[string]func(h *pluginHost, ctx context.Context, req hostRequest) hostResponse{
	"send":        (*pluginHost).send,
	"call":        (*pluginHost).call,
	"set_now":     (*pluginHost).setNow,
	"set_http":    (*pluginHost).setHTTP,
	"refuse_mail": (*pluginHost).refuseMail,
	"requests":    (*pluginHost).requests,
	"mails":       (*pluginHost).mails,
	"kv":          (*pluginHost).kv,
	"kv_put":      (*pluginHost).kvPut,
	"logs":        (*pluginHost).logLines,
	"metrics":     (*pluginHost).metrics,
	"reload":      (*pluginHost).reload,
}

func hostOpNames() []string {
	names := make([]string, 0, len(hostOps))
	for n := range hostOps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ---- load ----

// load builds the plugin block through core/config's parsing and validation, opens a store in a temporary dir
// with the workspace, and starts the real manager over the fakes. On failure nothing of it stays.
func (h *pluginHost) load(ctx context.Context, req hostRequest) (resp hostResponse) {
	if req.Protocol != 0 && req.Protocol != hostProtocol {
		return hostFail("protocol version %d is not this crosscast's (%d): use a crosscast and an sdk/plugintest of the same release", req.Protocol, hostProtocol)
	}
	if req.Wasm == "" {
		return hostFail("load needs wasm, the path of the plugin module")
	}
	now := defaultHostNow
	if req.Now != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Now)
		if err != nil {
			return hostFail("now: %v", err)
		}
		now = t
	}
	ws := req.Workspace
	if ws == "" {
		ws = defaultHostWorkspace
	}
	wasm, err := os.ReadFile(req.Wasm)
	if err != nil {
		return hostFail("reading the plugin module: %v", err)
	}
	dir, err := os.MkdirTemp("", "crosscast-plugin-host-")
	if err != nil {
		return hostFail("creating the host's temporary dir: %v", err)
	}
	h.dir = dir
	defer func() {
		if resp.Error != "" {
			h.close()
		}
	}()
	// The host loads (and reloads) its own copy, so a rebuild of the module cannot change it under the checksum.
	source := filepath.Join(dir, "plugin.wasm")
	if err := os.WriteFile(source, wasm, 0o600); err != nil {
		return hostFail("copying the plugin module: %v", err)
	}
	h.logs = &logCapture{}
	log := h.logs.logger()
	name := req.Name
	if name == "" {
		if name, err = manifestName(ctx, wasm, log); err != nil {
			return hostErr(err)
		}
	}
	spec, lines, err := pluginSpec(req, name, source, wasm)
	h.cfgLines = lines
	if err != nil {
		return hostErr(h.positions(err))
	}

	h.clock = &hostClock{now: now}
	h.http = &recordedHTTP{}
	h.http.set(req.HTTP)
	h.mail = &memMailer{refusals: map[string]smtprelay.Rejection{}}
	h.reg = metrics.NewRegistry()
	h.st, err = store.Open(ctx, store.Options{Dir: filepath.Join(dir, "data"), Logger: log})
	if err != nil {
		return hostErr(err)
	}
	if _, err := workspaces.NewService(h.st, log, h.clock.Now).Create(ctx, workspaces.CreateInput{ID: ws}); err != nil {
		return hostErr(err)
	}
	h.mgr, err = manager.New(ctx, manager.Options{
		CacheDir: userPluginCache(),
		Logger:   log,
		Now:      h.clock.Now,
		Metrics:  h.reg,
		KV:       h.st,
		Mailers:  map[string]capability.Mailer{hostRelay: h.mail},
		HTTP: func(_ string, grant netguard.Grant) capability.HTTPDoer {
			return &grantedHTTP{rec: h.http, grant: grant}
		},
	}, []config.Plugin{spec})
	if err != nil {
		return hostErr(h.positions(err))
	}
	h.name, h.workspace = name, ws
	return hostResponse{OK: true, Name: name}
}

// manifestName is the id the module's manifest declares, when it is a valid plugin name, or "plugin".
func manifestName(ctx context.Context, wasm []byte, log hclog.Logger) (string, error) {
	rt, err := runtime.New(ctx, runtime.Options{CacheDir: userPluginCache(), Pool: 1, Logger: log})
	if err != nil {
		return "", err
	}
	defer closeRuntime(rt)
	p, err := rt.Load(ctx, "plugin", wasm)
	if err != nil {
		return "", err
	}
	out, err := p.Call(ctx, entryManifest, nil)
	if err != nil {
		return "", fmt.Errorf("reading its manifest: %w", err)
	}
	var m struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(out, &m) == nil && pluginNamePattern.MatchString(m.ID) {
		return m.ID, nil
	}
	return "plugin", nil
}

// pluginSpec writes the plugin block an operator would write for req and parses it with core/config, so every
// check (names, limits, origins, quota, the config block's positions) is the production one. lines are the first
// and last line of req.Config in the synthesised file.
func pluginSpec(req hostRequest, name, source string, wasm []byte) (config.Plugin, [2]int, error) {
	sum := sha256.Sum256(wasm)
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s {\n", hclString(name))
	fmt.Fprintf(&b, "  source = %s\n  sha256 = %s\n", hclString(source), hclString(hex.EncodeToString(sum[:])))
	if req.Pool != 0 {
		fmt.Fprintf(&b, "  pool = %d\n", req.Pool)
	}
	if req.Timeout != "" {
		fmt.Fprintf(&b, "  timeout = %s\n", hclString(req.Timeout))
	}
	if req.Memory != "" {
		fmt.Fprintf(&b, "  memory = %s\n", hclString(req.Memory))
	}
	g := req.Grants
	if len(g.HTTPHosts) > 0 || g.AllowPrivate || g.KVQuota != "" || g.SMTP {
		b.WriteString("  grants {\n")
		if len(g.HTTPHosts) > 0 {
			quoted := make([]string, len(g.HTTPHosts))
			for i, host := range g.HTTPHosts {
				quoted[i] = hclString(host)
			}
			fmt.Fprintf(&b, "    http_hosts = [%s]\n", strings.Join(quoted, ", "))
		}
		if g.AllowPrivate {
			b.WriteString("    allow_private = true\n")
		}
		if g.KVQuota != "" {
			fmt.Fprintf(&b, "    kv_quota = %s\n", hclString(g.KVQuota))
		}
		if g.SMTP {
			fmt.Fprintf(&b, "    smtp_relay = %s\n", hclString(hostRelay))
		}
		b.WriteString("  }\n")
	}
	b.WriteString("  config {\n")
	first := strings.Count(b.String(), "\n") + 1
	text := strings.TrimSuffix(req.Config, "\n")
	last := first - 1
	if text != "" {
		b.WriteString(text)
		b.WriteString("\n")
		last = first + strings.Count(text, "\n")
	}
	b.WriteString("  }\n}\n")
	if g.SMTP {
		fmt.Fprintf(&b, "smtp %s {\n  host = \"localhost\"\n}\n", hclString(hostRelay))
	}
	cfg, err := config.Parse([]byte(b.String()), hostConfigFile, nil)
	if err != nil {
		return config.Plugin{}, [2]int{first, last}, err
	}
	if len(cfg.Plugins) != 1 {
		return config.Plugin{}, [2]int{first, last}, fmt.Errorf("the config text declares blocks of its own: give only the attributes of the config { } block")
	}
	return cfg.Plugins[0], [2]int{first, last}, nil
}

// hclString quotes s as an HCL string literal: escapes, and no template interpolation.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var hostPosition = regexp.MustCompile(regexp.QuoteMeta(hostConfigFile) + `:(\d+):(\d+)`)

// positions rewrites positions inside the author's config text as positions in that text (Options.Config:LINE:COL),
// the lines the author wrote; other positions, in lines the host wrote from the other options, become "Options".
func (h *pluginHost) positions(err error) error {
	msg := hostPosition.ReplaceAllStringFunc(err.Error(), func(m string) string {
		sub := hostPosition.FindStringSubmatch(m)
		line, _ := strconv.Atoi(sub[1])
		switch {
		case line == h.cfgLines[0]-1 || line == h.cfgLines[1]+1:
			return hostConfigName // the block itself: "config {" or its "}" (a missing attribute)
		case line < h.cfgLines[0] || line > h.cfgLines[1]:
			return "Options" // a line the host wrote: the key path that follows names the option
		}
		return fmt.Sprintf("%s:%d:%s", hostConfigName, line-h.cfgLines[0]+1, sub[2])
	})
	return errors.New(msg)
}

// close closes the manager and the store and deletes the temporary dir. It may be called more than once.
func (h *pluginHost) close() {
	if h.mgr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = h.mgr.Close(ctx)
		cancel()
		h.mgr = nil
	}
	if h.st != nil {
		_ = h.st.Close()
		h.st = nil
	}
	if h.dir != "" {
		_ = os.RemoveAll(h.dir)
		h.dir = ""
	}
}

// ---- ops ----

// send hands the messages to the plugin through manager.Send, at req.Now or the host's clock.
func (h *pluginHost) send(ctx context.Context, req hostRequest) hostResponse {
	if len(req.Messages) == 0 {
		return hostFail(`send needs messages: [{"id":"m1","to":"ada@example.com","fields":{...}}]`)
	}
	now := h.clock.Now()
	if req.Now != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Now)
		if err != nil {
			return hostFail("now: %v", err)
		}
		now = t
	}
	// One JSON form with `plugin call ... send`: its conversion, then the messages it encoded.
	enc, err := sendInput(append(append([]byte(`{"messages":`), req.Messages...), '}'), callEnv{now: now, plugin: h.name})
	if err != nil {
		return hostFail("messages: %v", err)
	}
	q, err := wire.DecodeSendRequest(enc)
	if err != nil {
		return hostFail("messages: %v", err)
	}
	results, err := h.mgr.Send(ctx, h.workspace, h.name, now, q.Messages)
	if err != nil {
		return hostErr(err)
	}
	out := make([]callResult, len(results))
	for i, r := range results {
		out[i] = callResult{ID: r.ID, Status: r.Status.String(), ProviderID: r.ProviderID, Error: r.Error, RetryAfterMS: r.RetryAfterMillis, Units: r.Units}
	}
	return hostResponse{OK: true, Results: out}
}

// call runs one of the other entries (receive, score, inbound, outbound) with the JSON input and output of
// `plugin call`, at the host's clock, in the host's workspace unless the input names one.
func (h *pluginHost) call(ctx context.Context, req hostRequest) hostResponse {
	switch req.Entry {
	case "receive", "score", "inbound", "outbound":
	case "send":
		return hostFail(`call: use the send op for send`)
	default:
		return hostFail("call: unknown entry %q: use receive, score, inbound or outbound", req.Entry)
	}
	entry, _ := callEntryNamed(req.Entry)
	input, err := withDefaultWorkspace(req.Input, h.workspace)
	if err != nil {
		return hostFail("call %s: input: %v", req.Entry, err)
	}
	enc, err := entry.input(input, callEnv{now: h.clock.Now(), plugin: h.name})
	if err != nil {
		return hostFail("call %s: input: %v", req.Entry, err)
	}
	out, err := h.mgr.Call(capability.WithWorkspace(ctx, h.workspace), h.name, entry.id, enc)
	if err != nil {
		return hostErr(err)
	}
	v, err := entry.output(out)
	if err != nil {
		return hostFail("call %s: decoding the answer: %v", req.Entry, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return hostFail("call %s: encoding the answer: %v", req.Entry, err)
	}
	return hostResponse{OK: true, Output: b}
}

// withDefaultWorkspace sets the "workspace" of a JSON object input that names none to ws.
func withDefaultWorkspace(input json.RawMessage, ws string) ([]byte, error) {
	if len(bytes.TrimSpace(input)) == 0 {
		input = json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(input, &obj); err != nil || obj == nil {
		return nil, errors.New("want a JSON object")
	}
	if w, ok := obj["workspace"]; ok && string(w) != `""` && string(w) != "null" {
		return input, nil
	}
	obj["workspace"], _ = json.Marshal(ws)
	return json.Marshal(obj)
}

func (h *pluginHost) setNow(_ context.Context, req hostRequest) hostResponse {
	t, err := time.Parse(time.RFC3339Nano, req.Now)
	if err != nil {
		return hostFail("set_now needs now in RFC 3339: %v", err)
	}
	h.clock.set(t)
	return okResponse
}

func (h *pluginHost) setHTTP(_ context.Context, req hostRequest) hostResponse {
	h.http.set(req.HTTP)
	return okResponse
}

func (h *pluginHost) refuseMail(_ context.Context, req hostRequest) hostResponse {
	if req.Recipient == "" {
		return hostFail("refuse_mail needs a recipient")
	}
	if req.Code < 400 || req.Code > 599 {
		return hostFail("refuse_mail: code %d must be an SMTP refusal, 4xx (temporary) or 5xx (permanent)", req.Code)
	}
	msg := req.Message
	if msg == "" {
		msg = fmt.Sprintf("<%s>: recipient refused by the plugintest relay", req.Recipient)
	}
	h.mail.refuse(req.Recipient, req.Code, msg)
	return okResponse
}

func (h *pluginHost) requests(context.Context, hostRequest) hostResponse {
	return hostResponse{OK: true, Requests: h.http.made()}
}

func (h *pluginHost) mails(context.Context, hostRequest) hostResponse {
	return hostResponse{OK: true, Mails: h.mail.sent()}
}

func (h *pluginHost) logLines(context.Context, hostRequest) hostResponse {
	return hostResponse{OK: true, Logs: h.logs.lines()}
}

// kv dumps the plugin's space in the workspace.
func (h *pluginHost) kv(ctx context.Context, _ hostRequest) hostResponse {
	space := map[string][]byte{}
	err := h.st.ViewPluginKV(ctx, h.workspace, h.name, func(tx *store.PluginKVTx) error {
		return tx.Scan("", "", func(key string, value []byte) bool {
			space[key] = value
			return true
		})
	})
	if err != nil {
		return hostFail("reading the kv space: %v", err)
	}
	return hostResponse{OK: true, KV: space}
}

// kvPut seeds a key of the plugin's space, outside its quota.
func (h *pluginHost) kvPut(ctx context.Context, req hostRequest) hostResponse {
	err := h.st.UpdatePluginKV(ctx, h.workspace, h.name, func(tx *store.PluginKVTx) error {
		return tx.Put(req.Key, req.Value)
	})
	if err != nil {
		return hostFail("kv_put %q: %v", req.Key, err)
	}
	return okResponse
}

func (h *pluginHost) reload(ctx context.Context, _ hostRequest) hostResponse {
	if _, err := h.mgr.Reload(ctx, h.name); err != nil {
		return hostErr(h.positions(err))
	}
	return okResponse
}

// ---- clock ----

// hostClock is the fixed clock of the manager and of sends: it moves only with set_now.
type hostClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *hostClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *hostClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// ---- recorded HTTP ----

// recordedResponse is a response the plugin's requests are served from, matched by method and exact URL.
type recordedResponse struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Status  int               `json:"status,omitempty"` // default 200
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// Error fails the request as the network would ("connection refused"): the plugin gets an error, no response.
	Error string `json:"error,omitempty"`
	// Repeat serves every matching request; otherwise a response serves one request.
	Repeat bool `json:"repeat,omitempty"`
}

// recordedRequest is a request the plugin made that passed its grant.
type recordedRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    []byte            `json:"body,omitempty"`
}

// recordedHTTP serves requests from recorded responses and records the requests.
type recordedHTTP struct {
	mu        sync.Mutex
	responses []recordedResponse
	used      []bool
	requests  []recordedRequest
}

func (r *recordedHTTP) set(responses []recordedResponse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responses = responses
	r.used = make([]bool, len(responses))
}

func (r *recordedHTTP) made() []recordedRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedRequest(nil), r.requests...)
}

// serve records req and returns the first unused (or repeating) recorded response for its method and URL.
func (r *recordedHTTP) serve(req netguard.Request, method string) (netguard.Response, error) {
	header := make(map[string]string, len(req.Header))
	for k, vs := range req.Header {
		header[textproto.CanonicalMIMEHeaderKey(k)] = strings.Join(vs, ", ")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, recordedRequest{Method: method, URL: req.URL, Headers: header, Body: req.Body})
	for i, rr := range r.responses {
		m := rr.Method
		if m == "" {
			m = "GET"
		}
		if m != method || rr.URL != req.URL || (r.used[i] && !rr.Repeat) {
			continue
		}
		r.used[i] = true
		if rr.Error != "" {
			return netguard.Response{}, errors.New(rr.Error)
		}
		status := rr.Status
		if status == 0 {
			status = 200
		}
		h := make(map[string][]string, len(rr.Headers))
		for k, v := range rr.Headers {
			h[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
		}
		return netguard.Response{Status: status, Header: h, Body: []byte(rr.Body), FinalURL: req.URL}, nil
	}
	return netguard.Response{}, fmt.Errorf("no recorded response for %s %s", method, req.URL)
}

// grantedHTTP is one plugin version's http capability: the production grant check, then the recordings.
type grantedHTTP struct {
	rec   *recordedHTTP
	grant netguard.Grant
}

var _ capability.HTTPDoer = (*grantedHTTP)(nil)

func (g *grantedHTTP) Do(_ context.Context, req netguard.Request) (netguard.Response, error) {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	if err := g.grant.Allows(req.URL); err != nil {
		return netguard.Response{}, err
	}
	return g.rec.serve(req, method)
}

// ---- in-memory SMTP relay ----

// recordedMail is a message the relay accepted, with the recipients it accepted it for.
type recordedMail struct {
	From string   `json:"from"`
	To   []string `json:"to"`
	Data []byte   `json:"data"`
}

// memMailer is an SMTP relay in memory: it accepts every recipient but those it was told to refuse, as a relay
// refuses at RCPT TO, and answers like smtprelay.Relay: a Reply listing the refused recipients, or an
// *smtprelay.Error with the first refusal when every recipient is refused.
type memMailer struct {
	mu       sync.Mutex
	refusals map[string]smtprelay.Rejection // by lower-case recipient
	mails    []recordedMail
}

var _ capability.Mailer = (*memMailer)(nil)

func (m *memMailer) refuse(recipient string, code int, msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refusals[strings.ToLower(recipient)] = smtprelay.Rejection{Recipient: recipient, Code: code, Message: msg}
}

func (m *memMailer) sent() []recordedMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]recordedMail(nil), m.mails...)
}

func (m *memMailer) Send(_ context.Context, from string, to []string, data []byte) (smtprelay.Reply, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var accepted []string
	var rejected []smtprelay.Rejection
	for _, rcpt := range to {
		if rj, ok := m.refusals[strings.ToLower(rcpt)]; ok {
			rj.Recipient = rcpt
			rejected = append(rejected, rj)
			continue
		}
		accepted = append(accepted, rcpt)
	}
	if len(accepted) == 0 {
		return smtprelay.Reply{}, &smtprelay.Error{Code: rejected[0].Code, Message: rejected[0].Message}
	}
	m.mails = append(m.mails, recordedMail{From: from, To: accepted, Data: bytes.Clone(data)})
	return smtprelay.Reply{Code: 250, Message: fmt.Sprintf("2.0.0 Ok: queued as PLUGINTEST%d", len(m.mails)), Rejected: rejected}, nil
}

// ---- logs ----

// logCapture keeps every log line of the host and the plugin, for the logs op; nothing reaches stdout.
type logCapture struct {
	mu      sync.Mutex
	partial []byte
	entries []string
}

func (c *logCapture) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: c, JSONFormat: true})
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 {
			break
		}
		c.entries = append(c.entries, formatLogEntry(c.partial[:i]))
		c.partial = c.partial[i+1:]
	}
	return len(p), nil
}

func (c *logCapture) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.entries...)
}

// formatLogEntry renders one hclog JSON entry: a guest's line as "LEVEL line", a host's as
// "LEVEL host: message key=value ...".
func formatLogEntry(b []byte) string {
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil {
		return string(b)
	}
	level := strings.ToUpper(fmt.Sprint(e["@level"]))
	msg := fmt.Sprint(e["@message"])
	if line, ok := e["line"].(string); ok && msg == "log" && e["plugin"] != nil {
		if e["truncated"] == true {
			line += " (truncated)"
		}
		return level + " " + line
	}
	var keys []string
	for k := range e {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var s strings.Builder
	s.WriteString(level + " host: " + msg)
	for _, k := range keys {
		fmt.Fprintf(&s, " %s=%v", k, e[k])
	}
	return s.String()
}

// ---- metrics ----

// metricSample is one series of the plugin's own metrics: Name as the manifest declares it (plus _bucket, _sum or
// _count for histograms), its labels but plugin, and its value.
type metricSample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// metrics parses the registry's text output for the plugin's own series.
func (h *pluginHost) metrics(_ context.Context, _ hostRequest) hostResponse {
	var buf bytes.Buffer
	if err := h.reg.WriteText(&buf); err != nil {
		return hostFail("reading metrics: %v", err)
	}
	samples, err := pluginSamples(buf.String(), h.name)
	if err != nil {
		return hostErr(err)
	}
	return hostResponse{OK: true, Metrics: samples}
}

// hostPluginMetrics are the host's own per-plugin series, which share the plugins' prefix.
var hostPluginMetrics = []string{"crosscast_plugin_calls_total", "crosscast_plugin_call_seconds"}

// pluginSamples returns plugin's series of the Prometheus text exposition text whose names start with
// capability.MetricPrefix, the host's own per-plugin series excluded.
func pluginSamples(text, plugin string) ([]metricSample, error) {
	var out []metricSample
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, capability.MetricPrefix) {
			continue
		}
		own := false
		for _, m := range hostPluginMetrics {
			if rest, ok := strings.CutPrefix(line, m); ok && (rest == "" || strings.IndexByte("{ _", rest[0]) >= 0) {
				own = true
			}
		}
		if own {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("reading metrics: %w", err)
		}
		if s.Labels["plugin"] != plugin {
			continue
		}
		delete(s.Labels, "plugin")
		s.Name = strings.TrimPrefix(s.Name, capability.MetricPrefix)
		out = append(out, s)
	}
	return out, nil
}

// parseSample parses `name{l="v",...} value`.
func parseSample(line string) (metricSample, error) {
	s := metricSample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, fmt.Errorf("malformed sample %q", line)
	}
	s.Name, line = line[:i], line[i:]
	if strings.HasPrefix(line, "{") {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return s, fmt.Errorf("malformed labels in a sample of %s", s.Name)
			}
			name := line[:eq]
			line = line[eq+2:]
			var v strings.Builder
			for {
				if line == "" {
					return s, fmt.Errorf("unterminated label value in a sample of %s", s.Name)
				}
				c := line[0]
				line = line[1:]
				if c == '"' {
					break
				}
				if c == '\\' && line != "" {
					c, line = line[0], line[1:]
					if c == 'n' {
						c = '\n'
					}
				}
				v.WriteByte(c)
			}
			s.Labels[name] = v.String()
			line = strings.TrimPrefix(line, ",")
		}
		line = line[1:]
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line), 64)
	if err != nil {
		return s, fmt.Errorf("malformed value in a sample of %s: %w", s.Name, err)
	}
	s.Value = v
	return s, nil
}
