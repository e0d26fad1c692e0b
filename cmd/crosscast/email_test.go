package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crosscast/crosscast/core/campaigns"
	"github.com/crosscast/crosscast/core/config"
	"github.com/crosscast/crosscast/core/contacts"
	"github.com/crosscast/crosscast/core/segments"
	"github.com/crosscast/crosscast/core/store"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/crosscast/crosscast/plugins/capability"
	"github.com/crosscast/crosscast/plugins/manager"
	"github.com/crosscast/crosscast/plugins/smtprelay"
	"github.com/emersion/go-smtp"
	"github.com/hashicorp/go-hclog"
)

// smtpSink is a real SMTP server (emersion/go-smtp over TCP) that counts the messages and connections it gets and
// keeps the messages when keep is set.
type smtpSink struct {
	keep bool
	// starttls makes the server offer STARTTLS with a self-signed certificate, which the relay then requires and
	// verifies (tls = "starttls").
	starttls bool
	// dropEvery, when set, drops the connection at the MAIL command of every dropEvery-th message (before any data:
	// the client cannot have been told it was accepted); busyEvery answers 451 to every busyEvery-th recipient.
	dropEvery, busyEvery int64
	mails, rcpts         atomic.Int64
	drops, busies        atomic.Int64
	received             atomic.Int64
	// connections counts TCP connections (go-smtp starts a new session on a connection after STARTTLS).
	connections atomic.Int64
	mu          sync.Mutex
	messages    map[string][]byte // by recipient
	peers       map[string]bool   // remote addresses seen
}

func (s *smtpSink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	if peer := c.Conn().RemoteAddr().String(); !s.peers[peer] {
		if s.peers == nil {
			s.peers = map[string]bool{}
		}
		s.peers[peer] = true
		s.connections.Add(1)
	}
	s.mu.Unlock()
	return &sinkSession{s: s, conn: c}, nil
}

type sinkSession struct {
	s    *smtpSink
	conn *smtp.Conn
	to   []string
}

func (x *sinkSession) AuthPlain(string, string) error { return nil }
func (x *sinkSession) Mail(string, *smtp.MailOptions) error {
	if n := x.s.mails.Add(1); x.s.dropEvery > 0 && n%x.s.dropEvery == 0 {
		x.s.drops.Add(1)
		_ = x.conn.Conn().Close() // the connection dies under the client
	}
	return nil
}

func (x *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if n := x.s.rcpts.Add(1); x.s.busyEvery > 0 && n%x.s.busyEvery == 0 {
		x.s.busies.Add(1)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *sinkSession) Reset()        { x.to = nil }
func (x *sinkSession) Logout() error { return nil }
func (x *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.received.Add(1)
	if x.s.keep {
		x.s.mu.Lock()
		for _, to := range x.to {
			x.s.messages[to] = b
		}
		x.s.mu.Unlock()
	}
	return nil
}

// emailWorld is the campaign engine wired as serve wires it, sending through the bundled email-smtp channel and
// the host's relay pool to a real SMTP server.
type emailWorld struct {
	st   *store.Store
	segs *segments.Service
	svc  *campaigns.Service
	sink *smtpSink
	seg  string
}

func newEmailWorld(tb testing.TB, n int, sink *smtpSink) *emailWorld {
	tb.Helper()
	ctx := context.Background()
	log := hclog.NewNullLogger()
	dir := tb.TempDir()
	st, err := store.Open(ctx, store.Options{Dir: dir, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	if _, err := workspaces.NewService(st, log, nil).Create(ctx, workspaces.CreateInput{ID: "bench"}); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	for i := 0; i < n; i += 5000 {
		err := st.UpdateContacts(ctx, "bench", func(tx contacts.Tx) error {
			for k := i; k < min(n, i+5000); k++ {
				c := contacts.Contact{ID: contacts.NewID(now), Email: fmt.Sprintf("c%07d@example.com", k), CreatedAt: now, UpdatedAt: now,
					Attributes: map[string]contacts.Value{"first_name": contacts.StringValue(fmt.Sprint("Name", k))},
					Consent:    map[string]contacts.Consent{"email": {Status: contacts.Subscribed, At: now}}}
				if err := tx.Put(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	segs := segments.NewService(st, nil, log, nil)
	tb.Cleanup(segs.Close)
	if err := segs.Start(ctx, []string{"bench"}); err != nil {
		tb.Fatal(err)
	}
	name, raw := "All", json.RawMessage(`"email exists"`)
	seg, err := segs.Create(ctx, "bench", segments.Input{Name: &name, Rule: raw})
	if err != nil {
		tb.Fatal(err)
	}

	sink.messages = map[string][]byte{}
	srv := smtp.NewServer(sink)
	srv.Domain, srv.AllowInsecureAuth, srv.MaxRecipients = "localhost", true, 10
	relayTLS, roots := "none", (*x509.CertPool)(nil)
	if sink.starttls {
		srv.TLSConfig, roots = selfSigned(tb)
		relayTLS = "starttls"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	portN, _ := strconv.Atoi(port)
	relay, err := smtprelay.New(smtprelay.Config{Name: "relay", Host: "127.0.0.1", Port: portN, TLS: relayTLS, RootCAs: roots,
		Pool: 4, Timeout: 10 * time.Second}, log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = relay.Close() })
	cfg, err := config.Parse([]byte(fmt.Sprintf(`plugin "email" {
  source = "builtin:email-smtp"
  pool   = 4
  grants { smtp_relay = "relay" }
  config { from = "Acme News <news@acme.example>" }
}
smtp "relay" {
  host = "127.0.0.1"
  port = %d
  tls  = "none"
}
`, portN)), "email.hcl", func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatal(err)
	}
	plugins, err := manager.New(ctx, manager.Options{CacheDir: filepath.Join(dir, "plugin-cache"), Logger: log, KV: st,
		Mailers: map[string]capability.Mailer{"relay": relay}}, cfg.Plugins)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = plugins.Close(context.Background()) })
	linkKey, err := st.LinkKey(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	svc := campaigns.NewService(st, segs, manager.Campaigns{M: plugins}, log, nil, campaigns.Options{
		Links: campaigns.NewLinks("http://localhost:8080", linkKey), Workers: 4, RetryBase: 50 * time.Millisecond, Tick: 50 * time.Millisecond})
	run, stop := context.WithCancel(ctx)
	tb.Cleanup(func() { stop(); svc.Close() })
	if err := svc.Start(run, []string{"bench"}); err != nil {
		tb.Fatal(err)
	}
	return &emailWorld{st: st, segs: segs, svc: svc, sink: sink, seg: seg.ID}
}

// send runs one campaign to completion and returns it.
func (w *emailWorld) send(tb testing.TB, name string) campaigns.View {
	tb.Helper()
	ctx := context.Background()
	html := `<p>Hi {{ contact.first_name }}, <a href="https://shop.example.com/sale">our sale</a> is on.</p>`
	// CROSSCAST_BENCH_EMAIL_HTML_KB pads the HTML to about that many KiB of table rows, as newsletters are.
	if kb, err := strconv.Atoi(os.Getenv("CROSSCAST_BENCH_EMAIL_HTML_KB")); err == nil && kb > 0 {
		row := "<tr><td style=\"padding:8px;font-family:Arial,sans-serif;color:#333\">Spring sale: 20% off everything</td></tr>\n"
		html += "<table>\n" + strings.Repeat(row, kb<<10/len(row)) + "</table>\n"
	}
	c, err := w.svc.Create(ctx, "bench", campaigns.Input{Name: &name, Audience: &campaigns.Audience{Include: []string{w.seg}},
		Channels: &[]campaigns.Channel{{Plugin: "email", Content: map[string]string{
			"subject": "Hello {{ contact.first_name }}",
			"text":    "Hi {{ contact.first_name }}, our {{ campaign.name }} is on.",
			"html":    html,
		}}}}, "bench")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.svc.Launch(ctx, "bench", c.ID, "bench"); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		v, err := w.svc.Get(ctx, "bench", c.ID)
		if err != nil {
			tb.Fatal(err)
		}
		if v.Status == campaigns.Completed || v.Status == campaigns.Paused {
			return v
		}
		if time.Now().After(deadline) {
			tb.Fatalf("campaign still %s: %+v", v.Status, v.Progress)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A campaign through the bundled email-smtp channel and the relay pool reaches a real SMTP server over STARTTLS: one
// message per contact, the server's count equal to the outbox's, each message its contact's, with the unsubscribe
// headers.
func TestCampaignThroughRealSMTP(t *testing.T) {
	w := newEmailWorld(t, 300, &smtpSink{keep: true, starttls: true})
	v := w.send(t, "Sale")
	if v.Status != campaigns.Completed || v.Progress.Sent != 300 || v.Progress.Failed != 0 {
		t.Fatalf("campaign %s: %+v (%s)", v.Status, v.Progress, v.Reason)
	}
	if got := w.sink.received.Load(); got != 300 {
		t.Fatalf("the SMTP server received %d messages, the outbox says 300 sent", got)
	}
	w.sink.mu.Lock()
	m := w.sink.messages["c0000042@example.com"]
	w.sink.mu.Unlock()
	for _, want := range []string{"Subject: Hello Name42\r\n", "To: <c0000042@example.com>\r\n", "List-Unsubscribe: <http://localhost:8080/u/bench/",
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", "multipart/alternative", "href=\"http://localhost:8080/c/bench/", "Content-Transfer-Encoding: 7bit\r\n"} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("message lacks %q:\n%s", want, m)
		}
	}
	if c := w.sink.connections.Load(); c < 1 || c > 4 {
		t.Errorf("%d SMTP connections for a pool of 4", c)
	}
}

// BenchmarkCampaignEmail measures issue 6/7's email throughput goal (>= 5,000 messages/s): a campaign to
// CROSSCAST_BENCH_EMAIL_CONTACTS contacts (default 100,000) through the bundled email-smtp channel (wasm, default
// sandbox limits, a pool of 2 instances), the host's relay pool (4 connections, PIPELINING) and a real SMTP server
// over TCP on the same machine, with serve's wiring (signed links: tracked html, List-Unsubscribe). It reports the
// rate, the connections the server saw, and checks the server's count equals the outbox's sent count. Run:
//
//	go test -run '^$' -bench BenchmarkCampaignEmail -benchtime 1x -timeout 30m ./cmd/crosscast/
func BenchmarkCampaignEmail(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("CROSSCAST_BENCH_EMAIL_CONTACTS")); err == nil && v > 0 {
		n = v
	}
	w := newEmailWorld(b, n, &smtpSink{})
	liveStart := liveHeap()
	// The Go heap in use, sampled every 200 ms while campaigns send: flat means the outbox streams, not piles up.
	var peak, first atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			first.CompareAndSwap(0, ms.HeapInuse)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	b.ResetTimer()
	for i := range b.N {
		v := w.send(b, fmt.Sprint("Bench ", i))
		if v.Progress.Sent != n {
			b.Fatalf("campaign %s: %+v (%s)", v.Status, v.Progress, v.Reason)
		}
	}
	b.StopTimer()
	close(done)
	<-sampled
	b.ReportMetric(float64(first.Load())/(1<<20), "heap-start-MiB")
	b.ReportMetric(float64(peak.Load())/(1<<20), "heap-peak-MiB")
	// Live heap after a collection, before and after: what the campaign left behind.
	b.ReportMetric(float64(liveStart)/(1<<20), "live-start-MiB")
	b.ReportMetric(float64(liveHeap())/(1<<20), "live-end-MiB")
	if got := w.sink.received.Load(); got != int64(n*b.N) {
		b.Fatalf("the SMTP server received %d messages, the outbox says %d sent", got, n*b.N)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(w.sink.connections.Load()), "connections")
}

// liveHeap is the heap still reachable after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// The relay's connection dies under it now and then (before a message's data), and the server answers 451 to some
// recipients: every contact still gets exactly one message, the 4xx ones after a retry.
func TestRealSMTPDropsAndTemporaryFailures(t *testing.T) {
	w := newEmailWorld(t, 300, &smtpSink{keep: true, dropEvery: 37, busyEvery: 29})
	v := w.send(t, "Bumpy")
	if v.Status != campaigns.Completed || v.Progress.Sent != 300 || v.Progress.Failed != 0 {
		t.Fatalf("campaign %s: %+v (%s)", v.Status, v.Progress, v.Reason)
	}
	w.sink.mu.Lock()
	got := len(w.sink.messages)
	w.sink.mu.Unlock()
	if got != 300 || w.sink.received.Load() != 300 {
		t.Fatalf("%d recipients got %d messages, want 300 each once", got, w.sink.received.Load())
	}
	if w.sink.drops.Load() == 0 || w.sink.busies.Load() == 0 {
		t.Fatalf("the test dropped %d connections and refused %d recipients: it tested nothing", w.sink.drops.Load(), w.sink.busies.Load())
	}
	t.Logf("%d connections dropped, %d recipients answered 451, %d connections in all", w.sink.drops.Load(), w.sink.busies.Load(), w.sink.connections.Load())
}

// selfSigned is a server TLS configuration with a self-signed certificate for 127.0.0.1, and a pool trusting it.
func selfSigned(tb testing.TB) (*tls.Config, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crosscast test relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, roots
}
