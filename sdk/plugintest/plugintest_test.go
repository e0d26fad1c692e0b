package plugintest_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/sdk"
	"github.com/crosscast/crosscast/sdk/plugintest"
)

// The test channel in testdata/everything uses every capability, one per message, by the message's "op" field.
const (
	pluginDir = "testdata/everything"
	apiURL    = "https://api.example.com/v1/send"
	apiKey    = "sk-test-4f9a"
)

// options loads the test channel with every capability granted.
func options() plugintest.Options {
	return plugintest.Options{
		Dir:    pluginDir,
		Config: fmt.Sprintf("api_url = %q\napi_key = %q\nfrom    = \"news@example.com\"\n", apiURL, apiKey),
		Grants: plugintest.Grants{HTTPHosts: []string{"https://api.example.com"}, KVQuota: "64KiB", SMTP: true},
	}
}

// msg is a message for the op, with extra fields as name, value pairs.
func msg(id, to, op string, fields ...string) sdk.Message {
	m := sdk.Message{ID: id, To: to, Fields: sdk.Pairs{{Key: "op", Value: op}}}
	for i := 0; i+1 < len(fields); i += 2 {
		m.Fields = append(m.Fields, sdk.Pair{Key: fields[i], Value: fields[i+1]})
	}
	return m
}

func wantResult(t *testing.T, got sdk.Result, status sdk.Status, providerID, errPart string) {
	t.Helper()
	if got.Status != status || (providerID != "" && got.ProviderID != providerID) || !strings.Contains(got.Error, errPart) ||
		(errPart == "" && got.Error != "") {
		t.Errorf("result %+v, want status %s, provider id %q, error containing %q", got, status, providerID, errPart)
	}
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	opts := options()
	opts.HTTP = []plugintest.Response{
		{Method: "POST", URL: apiURL, Status: 202, Body: `{"id":"p-1"}`},
		{Method: "POST", URL: apiURL, Status: 422, Body: `bad address`},
		{Method: "GET", URL: "https://api.example.com/status", Body: "up", Repeat: true},
		{Method: "GET", URL: "https://api.example.com/down", Err: "connection refused"},
	}
	h := plugintest.New(t, opts)

	cases := []struct {
		name       string
		msg        sdk.Message
		status     sdk.Status
		providerID string
		err        string
	}{
		{"recorded response used", msg("m1", "ada@example.com", "post"), sdk.Accepted, "p-1", ""},
		{"next recorded response for the same request", msg("m2", "bob@example.com", "post"), sdk.Failed, "", "the API answered 422: bad address"},
		{"responses are used once", msg("m3", "cy@example.com", "post"), sdk.Retry, "", "no recorded response for POST " + apiURL},
		{"a repeating response serves every request", msg("m4", "https://api.example.com/status", "get"), sdk.Delivered, "200 up", ""},
		{"again", msg("m5", "https://api.example.com/status", "get"), sdk.Delivered, "200 up", ""},
		{"a network failure", msg("m6", "https://api.example.com/down", "get"), sdk.Failed, "", "connection refused"},
		{"origin not granted, as in production", msg("m7", "https://evil.example.net/steal?k=1", "get"), sdk.Failed, "", "requesting https://evil.example.net: origin not granted"},
		{"plain http to a granted https origin", msg("m8", "http://api.example.com/status", "get"), sdk.Failed, "", "requesting http://api.example.com: origin not granted"},
		{"a loopback literal", msg("m9", "http://127.0.0.1:8080/", "get"), sdk.Failed, "", "origin not granted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantResult(t, h.Send(tc.msg)[0], tc.status, tc.providerID, tc.err)
		})
	}

	reqs := h.Requests()
	if len(reqs) != 6 {
		t.Fatalf("recorded %d requests, want the 6 the grant allowed: %+v", len(reqs), reqs)
	}
	first := reqs[0]
	var body map[string]string
	if err := json.Unmarshal([]byte(first.Body), &body); err != nil {
		t.Fatalf("request body %q: %v", first.Body, err)
	}
	if first.Method != "POST" || first.URL != apiURL || first.Header["Authorization"] != "Bearer "+apiKey ||
		first.Header["Content-Type"] != "application/json" || body["to"] != "ada@example.com" || body["idempotency_key"] != "m1" {
		t.Errorf("first request %+v", first)
	}

	t.Run("SetHTTP replaces the recordings", func(t *testing.T) {
		h.SetHTTP(plugintest.Response{Method: "POST", URL: apiURL, Status: 200, Body: `{"id":"p-2"}`})
		wantResult(t, h.Send(msg("n1", "dee@example.com", "post"))[0], sdk.Accepted, "p-2", "")
		wantResult(t, h.Send(msg("n2", "https://api.example.com/status", "get"))[0], sdk.Failed, "", "no recorded response for GET https://api.example.com/status")
		if n := len(h.Requests()); n != 8 {
			t.Errorf("%d requests recorded, want 8: earlier ones stay", n)
		}
	})
}

func TestAllowPrivateGrant(t *testing.T) {
	t.Parallel()
	opts := options()
	opts.Grants.HTTPHosts = append(opts.Grants.HTTPHosts, "http://127.0.0.1:8080", "http://10.0.0.5:9000")
	opts.HTTP = []plugintest.Response{{URL: "http://127.0.0.1:8080/health", Body: "ok", Repeat: true}}
	h := plugintest.New(t, opts)
	wantResult(t, h.Send(msg("m1", "http://127.0.0.1:8080/health", "get"))[0], sdk.Failed, "", "address 127.0.0.1 is loopback: forbidden address")

	opts.Grants.AllowPrivate = true
	h = plugintest.New(t, opts)
	wantResult(t, h.Send(msg("m1", "http://127.0.0.1:8080/health", "get"))[0], sdk.Delivered, "200 ok", "")
}

func TestSMTP(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, options())
	h.RefuseMail("gone@example.com", 550, "5.1.1 <gone@example.com>: user unknown")
	h.RefuseMail("full@example.com", 452, "4.2.2 mailbox full")

	cases := []struct {
		name       string
		to         string
		status     sdk.Status
		providerID string
		err        string
	}{
		{"accepted", "ada@example.com", sdk.Delivered, "250", ""},
		{"permanent refusal", "gone@example.com", sdk.Failed, "", "smtp 550 5.1.1 <gone@example.com>: user unknown"},
		{"temporary refusal", "full@example.com", sdk.Retry, "", "smtp 452 4.2.2 mailbox full"},
		{"some recipients refused", "bob@example.com,gone@example.com", sdk.Delivered, "250 rejected gone@example.com 550", ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantResult(t, h.Send(msg(fmt.Sprint("m", i), tc.to, "mail", "subject", tc.name))[0], tc.status, tc.providerID, tc.err)
		})
	}
	mails := h.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails accepted, want 2: %+v", len(mails), mails)
	}
	if m := mails[0]; m.From != "news@example.com" || !slices.Equal(m.To, []string{"ada@example.com"}) ||
		!strings.Contains(m.Data, "Subject: accepted\r\n") {
		t.Errorf("first mail %+v", m)
	}
	if m := mails[1]; !slices.Equal(m.To, []string{"bob@example.com"}) {
		t.Errorf("second mail went to %v, want only the accepted recipient", m.To)
	}
}

func TestKV(t *testing.T) {
	t.Parallel()
	opts := options()
	opts.Grants.KVQuota = "1KiB"
	h := plugintest.New(t, opts)

	t.Run("compare-and-swap counter persists across sends", func(t *testing.T) {
		res := h.Send(msg("a", "", "count"), msg("b", "", "count"))
		wantResult(t, res[0], sdk.Delivered, "1", "")
		wantResult(t, res[1], sdk.Delivered, "2", "")
		wantResult(t, h.Send(msg("c", "", "count"))[0], sdk.Delivered, "3", "")
	})
	t.Run("put, get and list", func(t *testing.T) {
		res := h.Send(msg("a", "", "put", "key", "user/1", "value", "ada"), msg("b", "", "put", "key", "user/2", "value", "bob"),
			msg("c", "", "get_key", "key", "user/2"), msg("d", "", "get_key", "key", "user/3"), msg("e", "", "list", "prefix", "user/"))
		for i, want := range []string{"ok", "ok", "bob", "absent", "user/1,user/2"} {
			wantResult(t, res[i], sdk.Delivered, want, "")
		}
	})
	t.Run("seeded keys", func(t *testing.T) {
		h.PutKV("seeded", []byte("from the test"))
		wantResult(t, h.Send(msg("a", "", "get_key", "key", "seeded"))[0], sdk.Delivered, "from the test", "")
	})
	t.Run("quota exceeded", func(t *testing.T) {
		res := h.Send(msg("a", "", "put", "key", "big", "value", strings.Repeat("x", 2000)))
		wantResult(t, res[0], sdk.Failed, "", "quota exceeded: kv: quota of 1024 bytes exceeded")
	})
	kv := h.KV()
	want := map[string]string{"count": "3", "user/1": "ada", "user/2": "bob", "seeded": "from the test"}
	if len(kv) != len(want) {
		t.Errorf("kv space %q, want %q", kv, want)
	}
	for k, v := range want {
		if string(kv[k]) != v {
			t.Errorf("kv[%q] = %q, want %q", k, kv[k], v)
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, options())
	wantResult(t, h.Send(msg("m1", "", "secret"))[0], sdk.Delivered, fmt.Sprintf("set=true len=%d configure_saw_it=false", len(apiKey)), "")
	logs := h.Logs()
	if !slices.Contains(logs, "INFO calling the API with key [redacted]") {
		t.Errorf("the plugin's log line is missing or not masked:\n%s", strings.Join(logs, "\n"))
	}
	for _, l := range logs {
		if strings.Contains(l, apiKey) {
			t.Errorf("a log line shows the secret: %s", l)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, options())
	h.Send(msg("a", "", "now"), msg("b", "", "now"), msg("c", "", "count"))
	cases := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"everything_ops_total", []string{"op", "now"}, 2},
		{"everything_ops_total", []string{"op", "count"}, 1},
		{"everything_ops_total", nil, 3},
		{"everything_ops_total", []string{"op", "mail"}, 0},
		{"not_declared_total", nil, 0},
	}
	for _, tc := range cases {
		if got := h.Metric(tc.name, tc.labels...); got != tc.want {
			t.Errorf("Metric(%q, %q) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, options())
	wantResult(t, h.Send(msg("m1", "", "now"))[0], sdk.Delivered, plugintest.DefaultNow.Format(time.RFC3339Nano), "")

	opts := options()
	opts.Now = time.Date(2027, 3, 4, 5, 6, 7, 8e6, time.UTC)
	h = plugintest.New(t, opts)
	wantResult(t, h.Send(msg("m1", "", "now"))[0], sdk.Delivered, "2027-03-04T05:06:07.008Z", "")
	later := opts.Now.Add(36 * time.Hour)
	h.SetNow(later)
	wantResult(t, h.Send(msg("m2", "", "now"))[0], sdk.Delivered, later.Format(time.RFC3339Nano), "")
	if !slices.Contains(h.Logs(), "DEBUG now is 2027-03-05T17:06:07Z") {
		t.Errorf("the plugin's debug line is missing:\n%s", strings.Join(h.Logs(), "\n"))
	}
}

func TestLoadRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		modify func(*plugintest.Options)
		want   []string
	}{
		{"unknown config attribute, with its position in Options.Config",
			func(o *plugintest.Options) {
				o.Config = "api_url = \"https://api.example.com\"\napi_ur = \"x\"\napi_key = \"k\"\n"
			},
			[]string{`Options.Config:2:1: Unsupported argument`, `"api_ur"`}},
		{"missing required attribute",
			func(o *plugintest.Options) { o.Config = `api_url = "https://api.example.com"` },
			[]string{`Options.Config: Missing required argument`, `"api_key"`}},
		{"wrong type",
			func(o *plugintest.Options) { o.Config = "api_url = [1]\napi_key = \"k\"" },
			[]string{`Options.Config:1:11: Incorrect attribute value type`}},
		{"Configure refuses",
			func(o *plugintest.Options) { o.Config = "api_url = \"http://api.example.com\"\napi_key = \"k\"" },
			[]string{`the plugin refused its configuration`, `api_url "http://api.example.com" must start with https://`}},
		{"capability not granted",
			func(o *plugintest.Options) { o.Grants.SMTP = false },
			[]string{`it requests the smtp capability, which is not granted`}},
		{"invalid origin",
			func(o *plugintest.Options) { o.Grants.HTTPHosts = []string{"https://api.example.com/v1"} },
			[]string{`plugin.everything.grants.http_hosts`, `must be an origin`}},
		{"invalid quota",
			func(o *plugintest.Options) { o.Grants.KVQuota = "lots" },
			[]string{`plugin.everything.grants.kv_quota`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := options()
			tc.modify(&opts)
			h, err := plugintest.Load(t, opts)
			if err == nil {
				t.Fatalf("Load succeeded (plugin %q), want a refusal", h.Name())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNameAndReload(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, options())
	if h.Name() != "everything" {
		t.Errorf("default name %q, want the manifest's id", h.Name())
	}
	opts := options()
	opts.Name = "mychannel"
	opts.Workspace = "acme"
	h = plugintest.New(t, opts)
	if h.Name() != "mychannel" {
		t.Errorf("name %q, want mychannel", h.Name())
	}
	wantResult(t, h.Send(msg("a", "", "count"))[0], sdk.Delivered, "1", "")
	if err := h.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	wantResult(t, h.Send(msg("b", "", "count"))[0], sdk.Delivered, "2", "") // the store outlives the reload
	if h.Metric("everything_ops_total", "op", "count") != 2 {
		t.Errorf("metric %v, want 2 under the plugin's name", h.Metric("everything_ops_total"))
	}
}

func TestSendErr(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, options())
	_, err := h.SendErr(msg("m1", "", "now"), msg("m2", "", "fail_batch"))
	if err == nil || !strings.Contains(err.Error(), "the whole batch failed on purpose") {
		t.Errorf("SendErr error %v, want the plugin's answer", err)
	}
	res := h.Send(sdk.Message{To: "x", Fields: sdk.Pairs{{Key: "op", Value: "nope"}}}, msg("", "", "now"))
	if res[0].ID != "m1" || res[1].ID != "m2" {
		t.Errorf("messages without ids got %q and %q, want m1 and m2", res[0].ID, res[1].ID)
	}
	wantResult(t, res[0], sdk.Failed, "", `unknown op "nope"`)
}

func TestCallReceive(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, options())
	type event struct {
		Type       string `json:"type"`
		ProviderID string `json:"provider_id"`
		Address    string `json:"address"`
		At         string `json:"at"`
		Detail     string `json:"detail"`
	}
	var out struct {
		Status uint32  `json:"status"`
		Events []event `json:"events"`
	}
	in := map[string]any{"headers": map[string]string{"x-token": "t0ken"}, "body": `{"ID":"p-1","To":"ada@example.com"}`}
	if err := h.Call("receive", in, &out); err != nil {
		t.Fatal(err)
	}
	want := event{Type: "delivered", ProviderID: "p-1", Address: "ada@example.com", At: "2026-01-01T00:00:00.000Z", Detail: "workspace test"}
	if out.Status != 200 || len(out.Events) != 1 || out.Events[0] != want {
		t.Errorf("receive answered %+v, want status 200 and %+v", out, want)
	}
	if err := h.Call("receive", map[string]any{"body": "{}"}, &out); err != nil || out.Status != 401 || len(out.Events) != 0 {
		t.Errorf("an unsigned hook: %+v, %v; want 401 without events", out, err)
	}
	if err := h.Call("score", map[string]any{"items": []any{}}, nil); err == nil || !strings.Contains(err.Error(), "not a scorer") {
		t.Errorf("score on a channel: %v, want the plugin's refusal", err)
	}
}

// Without a crosscast binary the test fails, saying what to do; it never skips.
func TestNoHostFailsTheTest(t *testing.T) {
	t.Setenv("CROSSCAST_BIN", "")
	t.Setenv("PATH", t.TempDir())
	opts := options()
	opts.Wasm = "testdata/none.wasm" // not built: the host is looked for first
	rec := &recorder{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		plugintest.New(rec, opts)
	}()
	wg.Wait()
	if rec.skipped || !strings.Contains(rec.fatal, "crosscast plugin test") || !strings.Contains(rec.fatal, "CROSSCAST_BIN") {
		t.Errorf("without a host: fatal %q, skipped %v; want a failure saying how to get one", rec.fatal, rec.skipped)
	}
}

// recorder is a testing.TB whose failures and skips are recorded; they end the goroutine as testing's do.
type recorder struct {
	testing.TB
	fatal   string
	skipped bool
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skip(...any)          { r.skipped = true; runtime.Goexit() }
func (r *recorder) Skipf(string, ...any) { r.skipped = true; runtime.Goexit() }
func (r *recorder) SkipNow()             { r.skipped = true; runtime.Goexit() }
