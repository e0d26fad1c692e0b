package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crosscast/crosscast/plugins/bundled"
	"github.com/crosscast/crosscast/plugins/netguard"
	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// hostExchange is one request line and what its answer must say: ok, or an error containing wantErr.
type hostExchange struct {
	name    string
	line    string
	wantErr string
	check   func(t *testing.T, a hostResponse)
}

// runHost feeds the lines of exchanges to serveHost and checks each answer in order; serveHost must answer one
// line per request and return without error.
func runHost(t *testing.T, exchanges []hostExchange) {
	t.Helper()
	var in strings.Builder
	for _, x := range exchanges {
		in.WriteString(x.line + "\n")
	}
	var out bytes.Buffer
	if err := serveHost(t.Context(), strings.NewReader(in.String()), &out); err != nil {
		t.Fatalf("serveHost: %v", err)
	}
	dec := json.NewDecoder(&out)
	for _, x := range exchanges {
		var a hostResponse
		if err := dec.Decode(&a); err != nil {
			t.Fatalf("%s: reading the answer: %v", x.name, err)
		}
		switch {
		case x.wantErr == "" && (!a.OK || a.Error != ""):
			t.Errorf("%s: answer %+v, want ok", x.name, a)
		case x.wantErr != "" && !strings.Contains(a.Error, x.wantErr):
			t.Errorf("%s: answer %+v, want an error containing %q", x.name, a, x.wantErr)
		case x.check != nil:
			x.check(t, a)
		}
	}
	if dec.More() {
		t.Errorf("serveHost answered more lines than requests")
	}
}

func TestPluginHostProtocolErrors(t *testing.T) {
	runHost(t, []hostExchange{
		{name: "malformed JSON", line: `{"op":`, wantErr: "malformed request"},
		{name: "not JSON", line: `send please`, wantErr: "malformed request"},
		{name: "two values", line: `{"op":"logs"} {"op":"logs"}`, wantErr: "more than one JSON value"},
		{name: "unknown field", line: `{"op":"load","wsam":"x.wasm"}`, wantErr: `unknown field "wsam"`},
		{name: "unknown op", line: `{"op":"explode"}`, wantErr: `unknown op "explode" (load, call, kv`},
		{name: "no op", line: `{}`, wantErr: `unknown op ""`},
		{name: "send before load", line: `{"op":"send","messages":[{"id":"m1"}]}`, wantErr: "no plugin loaded: send a load request first"},
		{name: "call before load", line: `{"op":"call","entry":"receive","input":{}}`, wantErr: "no plugin loaded"},
		{name: "kv before load", line: `{"op":"kv"}`, wantErr: "no plugin loaded"},
		{name: "load without wasm", line: `{"op":"load"}`, wantErr: "load needs wasm"},
		{name: "load of a missing module", line: `{"op":"load","wasm":"/nonexistent/p.wasm"}`, wantErr: "reading the plugin module"},
		{name: "another protocol", line: `{"op":"load","protocol":99,"wasm":"p.wasm"}`, wantErr: "protocol version 99"},
		{name: "blank lines are skipped, close stops", line: "\n\n" + `{"op":"close"}`},
	})
}

// nullModule writes the bundled null channel to a file.
func nullModule(t *testing.T) string {
	t.Helper()
	wasm, err := bundled.Wasm("null")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "null.wasm")
	if err := os.WriteFile(path, wasm, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPluginHostServesAPlugin(t *testing.T) {
	wasm := nullModule(t)
	var dataDir string // the store's, from the logs
	load := `{"op":"load","protocol":1,"wasm":` + jsonString(wasm) + `,"now":"2026-05-01T10:00:00Z","workspace":"acme"}`
	runHost(t, []hostExchange{
		{name: "load", line: load, check: func(t *testing.T, a hostResponse) {
			if a.Name != "null" {
				t.Errorf("loaded as %q, want the manifest's id", a.Name)
			}
		}},
		{name: "load twice", line: load, wantErr: "already loaded"},
		{name: "send", line: `{"op":"send","messages":[{"id":"a","to":"ada@example.com"},{"id":"b","to":"+33600000000"}]}`,
			check: func(t *testing.T, a hostResponse) {
				if len(a.Results) != 2 || a.Results[0].ID != "a" || a.Results[1].ID != "b" ||
					a.Results[0].Status != "delivered" || a.Results[1].Status != "delivered" {
					t.Errorf("results %+v, want a and b delivered", a.Results)
				}
			}},
		{name: "send without messages", line: `{"op":"send"}`, wantErr: "send needs messages"},
		{name: "send with a bad message", line: `{"op":"send","messages":[{"id":"a","colour":"red"}]}`, wantErr: `unknown field "colour"`},
		{name: "call of an entry the plugin lacks", line: `{"op":"call","entry":"receive","input":{"body":"{}"}}`, wantErr: "this channel does not receive webhooks"},
		{name: "call of send", line: `{"op":"call","entry":"send","input":{}}`, wantErr: "use the send op"},
		{name: "call of an unknown entry", line: `{"op":"call","entry":"teleport","input":{}}`, wantErr: `unknown entry "teleport"`},
		{name: "kv of a space never written", line: `{"op":"kv"}`, check: func(t *testing.T, a hostResponse) {
			if len(a.KV) != 0 {
				t.Errorf("kv %q, want empty", a.KV)
			}
		}},
		{name: "kv_put", line: `{"op":"kv_put","key":"k","value":"dmFsdWU="}`},
		{name: "kv_put with an empty key", line: `{"op":"kv_put","key":"","value":"eA=="}`, wantErr: `kv_put ""`},
		{name: "kv", line: `{"op":"kv"}`, check: func(t *testing.T, a hostResponse) {
			if len(a.KV) != 1 || string(a.KV["k"]) != "value" {
				t.Errorf("kv %q, want k=value", a.KV)
			}
		}},
		{name: "set_now", line: `{"op":"set_now","now":"2026-06-01T00:00:00Z"}`},
		{name: "set_now with a bad time", line: `{"op":"set_now","now":"tomorrow"}`, wantErr: "RFC 3339"},
		{name: "refuse_mail with a success code", line: `{"op":"refuse_mail","recipient":"a@b.c","code":250}`, wantErr: "4xx (temporary) or 5xx (permanent)"},
		{name: "set_http", line: `{"op":"set_http","http":[{"method":"GET","url":"https://x.example.com/"}]}`},
		{name: "requests", line: `{"op":"requests"}`},
		{name: "mails", line: `{"op":"mails"}`},
		{name: "metrics of a plugin without any", line: `{"op":"metrics"}`, check: func(t *testing.T, a hostResponse) {
			if len(a.Metrics) != 0 {
				t.Errorf("metrics %+v, want none: the host's own are left out", a.Metrics)
			}
		}},
		{name: "reload", line: `{"op":"reload"}`},
		{name: "logs", line: `{"op":"logs"}`, check: func(t *testing.T, a hostResponse) {
			if !slices.ContainsFunc(a.Logs, func(l string) bool { return strings.HasPrefix(l, "INFO host: plugin reloaded") }) {
				t.Errorf("logs lack the reload:\n%s", strings.Join(a.Logs, "\n"))
			}
			for _, l := range a.Logs {
				if _, rest, ok := strings.Cut(l, "INFO host: store open dir="); ok {
					dataDir, _, _ = strings.Cut(rest, " ")
				}
			}
		}},
		{name: "close", line: `{"op":"close"}`},
	})
	if dataDir == "" {
		t.Fatal("the logs do not say where the store was")
	}
	if _, err := os.Stat(filepath.Dir(dataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the host's temporary dir %s is still there after close (%v)", filepath.Dir(dataDir), err)
	}
}

func TestPluginHostLoadRefusals(t *testing.T) {
	wasm := jsonString(nullModule(t))
	cases := []struct {
		name, line, want string
	}{
		{"config attribute the manifest does not declare",
			`{"op":"load","wasm":` + wasm + `,"config":"# a comment\ncolour = \"red\""}`,
			`config block: Options.Config:2:1: Unsupported argument`},
		{"config syntax error", `{"op":"load","wasm":` + wasm + `,"config":"colour = "}`, `Options.Config:1:`},
		{"grant the plugin does not request", `{"op":"load","wasm":` + wasm + `,"grants":{"kv_quota":"1MiB"}}`,
			`grants give it kv, which it does not request`},
		{"invalid limit", `{"op":"load","wasm":` + wasm + `,"timeout":"forever"}`, `Options: plugin.null.timeout`},
		{"invalid name", `{"op":"load","wasm":` + wasm + `,"name":"Bad Name"}`, `is not a valid plugin name`},
		{"bad clock", `{"op":"load","wasm":` + wasm + `,"now":"noon"}`, `now: `},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runHost(t, []hostExchange{
				{name: "load", line: tc.line, wantErr: tc.want},
				{name: "nothing loaded after a refusal", line: `{"op":"logs"}`, wantErr: "no plugin loaded"},
			})
		})
	}
}

func TestPluginHostCommandLine(t *testing.T) {
	runCases(t, []cliCase{
		{name: "help", args: []string{"plugin", "host", "-h"}, wantCode: exitOK, wantStdout: []string{"sdk/plugintest", "JSON"}},
		{name: "arguments", args: []string{"plugin", "host", "x"}, wantCode: exitUsage, wantStderr: []string{"takes no arguments"}},
	})
	exe, _ := os.Executable()
	if env := crosscastBinEnv(); !slices.Equal(env, []string{"CROSSCAST_BIN=" + exe}) {
		t.Errorf("plugin test's environment %q, want CROSSCAST_BIN naming this executable", env)
	}
}

func TestRecordedHTTP(t *testing.T) {
	rec := &recordedHTTP{}
	rec.set([]recordedResponse{
		{Method: "POST", URL: "https://api.example.com/send", Status: 202, Headers: map[string]string{"x-id": "1"}, Body: "first"},
		{Method: "POST", URL: "https://api.example.com/send", Body: "second"},
		{URL: "https://api.example.com/ping", Body: "pong", Repeat: true},
		{Method: "GET", URL: "https://api.example.com/down", Error: "connection refused"},
	})
	grant, err := netguard.ParseGrant([]string{"https://api.example.com", "http://127.0.0.1:9000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	doer := &grantedHTTP{rec: rec, grant: grant}
	cases := []struct {
		name       string
		method     string
		url        string
		wantStatus int
		wantBody   string
		wantErr    string
	}{
		{"first recorded response", "POST", "https://api.example.com/send", 202, "first", ""},
		{"second, status defaults to 200", "POST", "https://api.example.com/send", 200, "second", ""},
		{"used up", "POST", "https://api.example.com/send", 0, "", "no recorded response for POST https://api.example.com/send"},
		{"method defaults to GET, repeat", "", "https://api.example.com/ping", 200, "pong", ""},
		{"repeat again", "GET", "https://api.example.com/ping", 200, "pong", ""},
		{"method must match", "POST", "https://api.example.com/ping", 0, "", "no recorded response for POST https://api.example.com/ping"},
		{"URL must match exactly", "GET", "https://api.example.com/ping?x=1", 0, "", "no recorded response for GET https://api.example.com/ping?x=1"},
		{"recorded failure", "GET", "https://api.example.com/down", 0, "", "connection refused"},
		{"origin not granted", "GET", "https://evil.example.net/ping", 0, "", "requesting https://evil.example.net: origin not granted"},
		{"private address without allow_private", "GET", "http://127.0.0.1:9000/", 0, "", "forbidden address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := doer.Do(t.Context(), netguard.Request{Method: tc.method, URL: tc.url,
				Header: map[string][]string{"authorization": {"Bearer k"}}, Body: []byte("b")})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || resp.Status != tc.wantStatus || string(resp.Body) != tc.wantBody {
				t.Fatalf("response %d %q, err %v; want %d %q", resp.Status, resp.Body, err, tc.wantStatus, tc.wantBody)
			}
		})
	}
	reqs := rec.made()
	if len(reqs) != 8 { // the refused two never left
		t.Fatalf("%d requests recorded, want 8", len(reqs))
	}
	if r := reqs[0]; r.Method != "POST" || r.Headers["Authorization"] != "Bearer k" || string(r.Body) != "b" {
		t.Errorf("first request recorded as %+v", r)
	}
	if reqs[3].Method != "GET" {
		t.Errorf("a request without method is recorded as %q, want GET", reqs[3].Method)
	}
}

func TestMemMailer(t *testing.T) {
	m := &memMailer{refusals: map[string]smtprelay.Rejection{}}
	m.refuse("Gone@Example.com", 550, "5.1.1 user unknown")
	m.refuse("busy@example.com", 451, "4.3.0 try later")
	cases := []struct {
		name     string
		to       []string
		wantCode int // of the *smtprelay.Error; 0: accepted
		rejected []string
	}{
		{"accepted", []string{"ada@example.com"}, 0, nil},
		{"permanent, any case", []string{"gone@example.com"}, 550, nil},
		{"temporary", []string{"busy@example.com"}, 451, nil},
		{"all refused: the first refusal", []string{"busy@example.com", "gone@example.com"}, 451, nil},
		{"some refused", []string{"gone@example.com", "bob@example.com"}, 0, []string{"gone@example.com"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := m.Send(t.Context(), "news@example.com", tc.to, []byte("Subject: x\r\n\r\nhi\r\n"))
			if tc.wantCode != 0 {
				var se *smtprelay.Error
				if !errors.As(err, &se) || se.Code != tc.wantCode || !strings.HasPrefix(err.Error(), fmt.Sprintf("smtp %d ", tc.wantCode)) {
					t.Fatalf("err %v, want an *smtprelay.Error with code %d", err, tc.wantCode)
				}
				return
			}
			var rejected []string
			for _, r := range reply.Rejected {
				rejected = append(rejected, r.Recipient)
			}
			if err != nil || reply.Code != 250 || !slices.Equal(rejected, tc.rejected) {
				t.Fatalf("reply %+v, err %v; want 250 rejecting %v", reply, err, tc.rejected)
			}
		})
	}
	mails := m.sent()
	if len(mails) != 2 || !slices.Equal(mails[1].To, []string{"bob@example.com"}) || mails[0].From != "news@example.com" {
		t.Errorf("mails %+v, want the two accepted, each with the recipients that took it", mails)
	}
}

func TestPluginSamples(t *testing.T) {
	text := `# HELP crosscast_plugin_calls_total Plugin calls.
# TYPE crosscast_plugin_calls_total counter
crosscast_plugin_calls_total{plugin="p",result="ok"} 3
crosscast_plugin_call_seconds_bucket{plugin="p",le="0.005"} 3
crosscast_plugin_call_seconds_sum{plugin="p"} 0.01
crosscast_plugins_quarantined 0
crosscast_plugin_sent_total{plugin="p",status="delivered"} 2
crosscast_plugin_sent_total{plugin="p",status="quote \" back \\ nl \n"} 1
crosscast_plugin_sent_total{plugin="other",status="delivered"} 7
crosscast_plugin_latency_seconds_bucket{plugin="p",le="+Inf"} 4
crosscast_plugin_latency_seconds_count{plugin="p"} 4
crosscast_plugin_calls_totally{plugin="p"} 5
crosscast_store_commit_writes_count 9
`
	got, err := pluginSamples(text, "p")
	if err != nil {
		t.Fatal(err)
	}
	want := []metricSample{
		{Name: "sent_total", Labels: map[string]string{"status": "delivered"}, Value: 2},
		{Name: "sent_total", Labels: map[string]string{"status": "quote \" back \\ nl \n"}, Value: 1},
		{Name: "latency_seconds_bucket", Labels: map[string]string{"le": "+Inf"}, Value: 4},
		{Name: "latency_seconds_count", Labels: map[string]string{}, Value: 4},
		{Name: "calls_totally", Labels: map[string]string{}, Value: 5},
	}
	if len(got) != len(want) {
		t.Fatalf("samples %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Value != want[i].Value || !mapsEqual(got[i].Labels, want[i].Labels) {
			t.Errorf("sample %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := pluginSamples(`crosscast_plugin_x{plugin="p" 1`+"\n", "p"); err == nil {
		t.Error("a malformed sample was accepted")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestHCLString(t *testing.T) {
	for _, s := range []string{"", "plain", `quo"te`, `back\slash`, "new\nline\r\ttab", "${var.x}", "%{ if true }x%{ endif }",
		"$ and % alone, $${ already", "ctl\x01\x1f", "ünïcödé ✓"} {
		expr, diags := hclsyntax.ParseExpression([]byte(hclString(s)), "t.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("hclString(%q) = %s: %v", s, hclString(s), diags)
			continue
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || v.AsString() != s {
			t.Errorf("hclString(%q) = %s reads back as %#v (%v)", s, hclString(s), v, diags)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
