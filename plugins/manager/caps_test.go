package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/core/metrics"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/plugins/runtime"
	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/crosscast/crosscast/sdk/wire"
	"github.com/emersion/go-smtp"
	"github.com/hashicorp/go-hclog"
)

// mailSink is a real SMTP server's backend that keeps what it receives.
type mailSink struct {
	mu   sync.Mutex
	msgs []string
}

func (b *mailSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{b: b}, nil }

type sinkSession struct {
	b  *mailSink
	to string
}

func (s *sinkSession) AuthPlain(string, string) error       { return nil }
func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "nobody@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.to = to
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.to+"\n"+string(b))
	s.b.mu.Unlock()
	return err
}
func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

// capsHost runs the caps test plugin with real components behind its capabilities: a bbolt store with a
// workspace for kv, a relay pool talking to a real SMTP server over TCP, and the metrics registry.
type capsHost struct {
	m    *Manager
	reg  *metrics.Registry
	sink *mailSink
	logs *bytes.Buffer
	mu   *sync.Mutex
}

func newCapsHost(t *testing.T, quota string) *capsHost {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{Dir: t.TempDir(), Logger: hclog.NewNullLogger(), Metrics: metrics.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.CreateWorkspace(ctx, workspaces.Workspace{ID: "acme", Name: "Acme", WriteKey: "wk_acme_0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}

	sink := &mailSink{}
	srv := smtp.NewServer(sink)
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	ln, err := netListen(t)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	host, port := splitHostPort(t, ln.Addr().String())
	relay, err := smtprelay.New(smtprelay.Config{Name: "relay", Host: host, Port: port, TLS: "none", Pool: 2, Timeout: 5 * time.Second}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })

	b, err := os.ReadFile(capsWasm)
	if err != nil {
		t.Fatal(err)
	}
	_, sum := writeTemp(t, b)
	src := fmt.Sprintf(`plugin "caps" {
  source = %q
  sha256 = %q
  grants {
    smtp_relay = "relay"
    kv_quota   = %q
  }
  config {
    from    = "news@acme.test"
    api_key = "sk_live_abcdef123456"
  }
}
smtp "relay" {
  host = "localhost"
  tls  = "none"
}
`, capsWasm, sum, quota)
	logs, mu := &bytes.Buffer{}, &sync.Mutex{}
	reg := metrics.NewRegistry()
	o := opts(t)
	o.Logger = hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{w: logs, mu: mu}, Level: hclog.Info})
	o.Metrics, o.KV, o.Mailers = reg, st, map[string]capability.Mailer{"relay": relay}
	m, err := New(ctx, o, specs(t, src))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return &capsHost{m: m, reg: reg, sink: sink, logs: logs, mu: mu}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *capsHost) send(t *testing.T, workspace string, msgs ...wire.Message) []wire.Result {
	t.Helper()
	res, err := h.m.Send(context.Background(), workspace, "caps", time.Now(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func op(id, op string, extra ...string) wire.Message {
	f := map[string]string{"op": op}
	for i := 0; i+1 < len(extra); i += 2 {
		f[extra[i]] = extra[i+1]
	}
	to := "ana@example.test"
	if v, ok := f["to"]; ok {
		to = v
	}
	return wire.Message{ID: id, To: to, Fields: wire.PairsOf(f)}
}

// The capabilities end to end, each behind the real component it uses in production.
func TestCapabilitiesEndToEnd(t *testing.T) {
	h := newCapsHost(t, "4KiB")

	t.Run("smtp delivers through the relay pool to a real server", func(t *testing.T) {
		res := h.send(t, "acme", op("m1", "mail", "subject", "Hello", "text", "Spring sale"), op("m2", "mail", "to", "nobody@example.test"))
		if res[0].Status != wire.StatusDelivered || res[0].ProviderID != "250" {
			t.Fatalf("accepted mail: %+v", res[0])
		}
		if res[1].Status != wire.StatusFailed || !strings.Contains(res[1].Error, "550") {
			t.Fatalf("refused recipient should fail permanently: %+v", res[1])
		}
		h.sink.mu.Lock()
		defer h.sink.mu.Unlock()
		if len(h.sink.msgs) != 1 || !strings.HasPrefix(h.sink.msgs[0], "ana@example.test\n") || !strings.Contains(h.sink.msgs[0], "Subject: Hello") {
			t.Fatalf("server received %q", h.sink.msgs)
		}
	})

	t.Run("smtp batch: every message answered, in order, through the pool", func(t *testing.T) {
		h.sink.mu.Lock()
		before := len(h.sink.msgs)
		h.sink.mu.Unlock()
		res := h.send(t, "acme", op("b1", "mails", "to_list", "a1@example.test,nobody@example.test,a2@example.test,a3@example.test"))
		codes := strings.Split(res[0].ProviderID, ";")
		if res[0].Status != wire.StatusDelivered || len(codes) != 4 || codes[0] != "250" || codes[2] != "250" || codes[3] != "250" ||
			!strings.HasPrefix(codes[1], "permanent=true smtp 550") {
			t.Fatalf("batch outcomes %+v", res[0])
		}
		h.sink.mu.Lock()
		defer h.sink.mu.Unlock()
		got := map[string]bool{}
		for _, m := range h.sink.msgs[before:] {
			got[strings.SplitN(m, "\n", 2)[0]] = true
		}
		if len(h.sink.msgs)-before != 3 || !got["a1@example.test"] || !got["a2@example.test"] || !got["a3@example.test"] {
			t.Fatalf("server received %q", h.sink.msgs[before:])
		}
	})

	t.Run("a batch split in calls keeps the results of the calls before one that fails", func(t *testing.T) {
		pad := strings.Repeat("x", 40<<10)
		msgs := make([]wire.Message, 150) // about 6 MiB: two calls, the second of which traps
		for i := range msgs {
			msgs[i] = op(fmt.Sprintf("n%03d", i), "noop", "pad", pad)
		}
		msgs[140] = op("n140", "panic", "pad", pad)
		res, err := h.m.Send(context.Background(), "acme", "caps", time.Now(), msgs)
		var partial *PartialError
		if !errors.As(err, &partial) || len(res) != len(msgs) {
			t.Fatalf("error %v, %d results", err, len(res))
		}
		first := 0
		for first < len(res) && res[first].Status == wire.StatusDelivered {
			first++
		}
		if first == 0 || first == len(res) {
			t.Fatalf("%d delivered before the failure", first)
		}
		for _, r := range res[first:] {
			if r.Status != wire.StatusRetry || !strings.Contains(r.Error, `channel "caps" failed`) {
				t.Fatalf("after the failure: %+v", r)
			}
		}
	})

	t.Run("kv compare-and-swap counter survives concurrent batches", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5; i++ {
					if _, err := h.m.Send(context.Background(), "acme", "caps", time.Now(), []wire.Message{op(fmt.Sprint(g, i), "count")}); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		if res := h.send(t, "acme", op("last", "count")); res[0].ProviderID != "21" {
			t.Fatalf("after 20 concurrent increments the next is %q, want 21", res[0].ProviderID)
		}
	})

	t.Run("kv spaces are per workspace", func(t *testing.T) {
		res := h.send(t, "other-missing", op("x", "count"))
		if res[0].Status != wire.StatusRetry || !strings.Contains(res[0].Error, "not found") {
			t.Fatalf("a workspace without a file: %+v", res[0])
		}
	})

	t.Run("kv quota refuses a write and keeps the space", func(t *testing.T) {
		res := h.send(t, "acme", op("small", "fill", "size", "100"), op("big", "fill", "size", "8000"))
		if res[0].ProviderID != "stored" || res[1].ProviderID != "quota" {
			t.Fatalf("%+v", res)
		}
	})

	t.Run("secrets are readable, kept out of configure, masked in logs", func(t *testing.T) {
		res := h.send(t, "acme", op("s", "secret"))
		if res[0].ProviderID != "set=true len=20 config_sees_key=false" {
			t.Fatalf("%+v", res[0])
		}
		h.mu.Lock()
		logs := h.logs.String()
		h.mu.Unlock()
		if strings.Contains(logs, "sk_live_abcdef123456") || !strings.Contains(logs, "calling the provider with key [redacted]") {
			t.Fatalf("logs leak or lack the masked line:\n%s", logs)
		}
		res = h.send(t, "acme", op("u", "undeclared-secret"))
		if !strings.Contains(res[0].Error, "not a secret config field") {
			t.Fatalf("undeclared secret: %+v", res[0])
		}
	})

	t.Run("metrics are exported labelled by plugin", func(t *testing.T) {
		res := h.send(t, "acme", op("n", "undeclared-metric"))
		if !strings.Contains(res[0].Error, "not declared") {
			t.Fatalf("undeclared metric: %+v", res[0])
		}
		var out bytes.Buffer
		if err := h.reg.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), `crosscast_plugin_caps_ops_total{plugin="caps",op="mail"} 2`) {
			t.Fatalf("metrics:\n%s", grep(out.String(), "crosscast_plugin_caps"))
		}
	})
}

func grep(s, sub string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func netListen(t *testing.T) (net.Listener, error) {
	t.Helper()
	return net.Listen("tcp", "127.0.0.1:0")
}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, n
}

func TestCheckGrants(t *testing.T) {
	httpGrant := &config.Grants{HTTPHosts: []string{"https://sns.us-east-1.amazonaws.com"}}
	for _, tc := range []struct {
		name     string
		grants   *config.Grants
		required []string
		optional []string
		err      string // "" for none
	}{
		{name: "required and granted", grants: httpGrant, required: []string{"http"}},
		{name: "required, not granted", required: []string{"http"}, err: "requests the http capability, which is not granted"},
		{name: "optional, not granted", optional: []string{"http"}},
		{name: "optional and granted", grants: httpGrant, optional: []string{"http"}},
		{name: "granted, not requested", grants: httpGrant, err: "grants give it http, which it does not request"},
		{name: "unknown optional", optional: []string{"sockets"}, err: `unknown capability "sockets"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkGrants(config.Plugin{Name: "p", Grants: tc.grants}, Manifest{Capabilities: tc.required, OptionalCapabilities: tc.optional})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestOptionalCapabilityIsWiredOnlyWhenGranted(t *testing.T) {
	m := &Manager{log: hclog.NewNullLogger()}
	man := Manifest{OptionalCapabilities: []string{"http"}}
	g, client, err := m.grants(config.Plugin{Name: "p"}, man, nil)
	if err != nil || client != nil || g.Host[runtime.ImportHTTP] != nil {
		t.Fatalf("without a grant: %v, client %v, http %v", err, client != nil, g.Host[runtime.ImportHTTP] != nil)
	}
	g, client, err = m.grants(config.Plugin{Name: "p", Grants: &config.Grants{HTTPHosts: []string{"https://api.example.com"}}}, man, nil)
	if err != nil || client == nil || g.Host[runtime.ImportHTTP] == nil {
		t.Fatalf("with a grant: %v, client %v, http %v", err, client != nil, g.Host[runtime.ImportHTTP] != nil)
	}
	client.CloseIdleConnections()
}
