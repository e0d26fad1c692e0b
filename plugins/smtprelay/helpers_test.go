package smtprelay

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/hashicorp/go-hclog"
)

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: t.Output(), Level: hclog.Debug})
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testCert is a self-signed certificate for 127.0.0.1 and localhost, and a pool that trusts it.
type testCert struct {
	server *tls.Config
	roots  *x509.CertPool
}

func newTestCert(t testing.TB) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtprelay test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return testCert{
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}},
		roots:  roots,
	}
}

// received is one message the go-smtp server accepted.
type received struct {
	From string
	To   []string
	Data []byte
	Body smtp.BodyType
	UTF8 bool
	Size int64
	TLS  bool
	User string
}

// serverOptions shape a real go-smtp server.
type serverOptions struct {
	tls      *tls.Config // offered through STARTTLS, or from the first byte when implicit
	implicit bool
	maxBytes int64
	utf8     bool
	users    map[string]string // AUTH PLAIN accounts; AUTH is offered only when set
	// refuse maps a sender or recipient address to the error its MAIL FROM or RCPT TO gets.
	refuse map[string]*smtp.SMTPError
	// dataErr maps a sender to the error the end of its data gets.
	dataErr map[string]*smtp.SMTPError
	// discard counts messages instead of keeping them (benchmarks).
	discard bool
}

// testServer is a real go-smtp server on 127.0.0.1 that records what it accepts and counts its connections.
type testServer struct {
	opts serverOptions
	port int

	mu    sync.Mutex
	msgs  []received
	mails int // MAIL FROM commands seen

	open, maxOpen, accepted atomic.Int64
}

func newServer(t testing.TB, opts serverOptions) *testServer {
	t.Helper()
	ts := &testServer{opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{ts: ts, tls: isTLS}, nil
	}))
	srv.Domain = "localhost"
	srv.MaxMessageBytes = opts.maxBytes
	srv.EnableSMTPUTF8 = opts.utf8
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	if !opts.implicit {
		srv.TLSConfig = opts.tls
	}
	srv.AllowInsecureAuth = opts.tls == nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.port = ln.Addr().(*net.TCPAddr).Port
	var l net.Listener = &countingListener{Listener: ln, ts: ts}
	if opts.implicit {
		l = tls.NewListener(l, opts.tls)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = ln.Close() // Serve may not have registered the listener with srv yet
		<-done
	})
	return ts
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

func (ts *testServer) mailCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.mails
}

// config is a relay Config for this server, plain text on loopback unless changed.
func (ts *testServer) config() Config {
	return Config{Name: "test", Host: "127.0.0.1", Port: ts.port, TLS: TLSNone, HELO: "client.test", Timeout: 5 * time.Second}
}

type countingListener struct {
	net.Listener
	ts *testServer
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.ts.accepted.Add(1)
	n := l.ts.open.Add(1)
	for {
		m := l.ts.maxOpen.Load()
		if n <= m || l.ts.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	return &countedConn{Conn: c, ts: l.ts}, nil
}

type countedConn struct {
	net.Conn
	ts   *testServer
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.ts.open.Add(-1) })
	return c.Conn.Close()
}

type session struct {
	ts   *testServer
	tls  bool
	user string
	msg  received
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string {
	if s.ts.opts.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if want, ok := s.ts.opts.users[username]; !ok || want != password {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.ts.mu.Lock()
	s.ts.mails++
	s.ts.mu.Unlock()
	if e := s.ts.opts.refuse[from]; e != nil {
		return e
	}
	s.msg = received{From: from, Body: opts.Body, UTF8: opts.UTF8, Size: opts.Size, TLS: s.tls, User: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.ts.opts.refuse[to]; e != nil {
		return e
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if e := s.ts.opts.dataErr[s.msg.From]; e != nil {
		return e
	}
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	if s.ts.opts.discard {
		return nil
	}
	s.msg.Data = b
	s.ts.msgs = append(s.ts.msgs, s.msg)
	return nil
}

func (s *session) Reset()        { s.msg = received{} }
func (s *session) Logout() error { return nil }

// fakeServer is a small scripted SMTP server over real TCP for what go-smtp cannot be made to do: not offering
// PIPELINING (and failing clients that pipeline anyway), answering a pipelined batch only once all of it has
// arrived, AUTH LOGIN, no EHLO, closing or stalling at chosen points, malformed replies. It records every command
// and the raw DATA bytes as they came off the wire.
type fakeServer struct {
	ln net.Listener

	// ext are the EHLO keywords offered.
	ext []string
	// noEHLO answers EHLO with 502, so the client must fall back to HELO.
	noEHLO bool
	// batch holds every reply until DATA (or another command that ends a pipelined group) arrives: a client that
	// waits for the reply to MAIL FROM before sending more never gets it.
	batch bool
	// strict answers 500 and hangs up when a command arrives before the reply to the previous one was sent.
	strict bool
	// silent accepts connections but never greets.
	silent bool
	// login is the AUTH LOGIN account, "user:password".
	login string
	// endOfData returns the reply to the end of the data of message msg (0-based, over all connections):
	// "close" hangs up without replying, "stall" never replies, anything else is sent as the reply line.
	endOfData func(msg int) string
	// hangUp closes the connection right after accepting a message.
	hangUp bool

	mu     sync.Mutex
	conns  int
	closed int
	cmds   [][]string // per connection
	raw    [][]byte   // DATA bytes, terminator included, per message
	wg     sync.WaitGroup
	broken atomic.Bool // a client pipelined to a strict server
}

func newFake(t testing.TB, f *fakeServer) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			n := f.conns
			f.conns++
			f.cmds = append(f.cmds, nil)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c, n)
				f.mu.Lock()
				f.closed++
				f.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeServer) config() Config {
	return Config{Name: "fake", Host: "127.0.0.1", Port: f.ln.Addr().(*net.TCPAddr).Port, TLS: TLSNone, HELO: "client.test", Timeout: 5 * time.Second}
}

func (f *fakeServer) counts() (conns, closed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns, f.closed
}

func (f *fakeServer) commands(conn int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds[conn]...)
}

func (f *fakeServer) rawData() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.raw...)
}

func (f *fakeServer) serve(c net.Conn, n int) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // a stuck test ends, never hangs
	br := bufio.NewReader(c)
	if f.silent {
		_, _ = io.Copy(io.Discard, br)
		return
	}
	var pending strings.Builder
	flush := func() bool {
		_, err := io.WriteString(c, pending.String())
		pending.Reset()
		return err == nil
	}
	reply := func(lines ...string) {
		for _, l := range lines {
			pending.WriteString(l + "\r\n")
		}
	}
	reply("220 fake.test ESMTP")
	flush()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if f.strict && br.Buffered() > 0 {
			f.broken.Store(true)
			reply("500 5.5.0 PIPELINING is not offered")
			flush()
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f.mu.Lock()
		f.cmds[n] = append(f.cmds[n], line)
		f.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		deferred := false
		switch strings.ToUpper(verb) {
		case "EHLO":
			if f.noEHLO {
				reply("502 5.5.2 EHLO not understood")
				break
			}
			lines := []string{"fake.test"}
			lines = append(lines, f.ext...)
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply("250" + sep + l)
			}
		case "HELO":
			reply("250 fake.test")
		case "MAIL", "RCPT", "RSET":
			reply("250 2.0.0 ok")
			deferred = f.batch
		case "NOOP":
			reply("250 2.0.0 ok")
		case "AUTH":
			if !f.authLogin(c, br, n, arg) {
				return
			}
			continue
		case "DATA":
			reply("354 go ahead")
			if !flush() {
				return
			}
			var raw []byte
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				raw = append(raw, l...)
				if l == ".\r\n" {
					break
				}
			}
			f.mu.Lock()
			msg := len(f.raw)
			f.raw = append(f.raw, raw)
			end := f.endOfData
			f.mu.Unlock()
			r := "250 2.0.0 queued as " + strconv.Itoa(msg)
			if end != nil {
				r = end(msg)
			}
			switch r {
			case "close":
				return
			case "stall":
				_, _ = io.Copy(io.Discard, br)
				return
			}
			reply(r)
			if f.hangUp {
				flush()
				return
			}
		case "QUIT":
			reply("221 2.0.0 bye")
			flush()
			return
		default:
			reply("500 5.5.1 unknown command")
		}
		if !deferred && !flush() {
			return
		}
	}
}

func (f *fakeServer) authLogin(c net.Conn, br *bufio.Reader, n int, arg string) bool {
	if !strings.EqualFold(arg, "LOGIN") {
		_, err := io.WriteString(c, "504 5.5.4 only LOGIN\r\n")
		return err == nil
	}
	var got []string
	for _, prompt := range []string{"VXNlcm5hbWU6", "UGFzc3dvcmQ6"} {
		if _, err := io.WriteString(c, "334 "+prompt+"\r\n"); err != nil {
			return false
		}
		l, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		l = strings.TrimRight(l, "\r\n")
		f.mu.Lock()
		f.cmds[n] = append(f.cmds[n], l)
		f.mu.Unlock()
		b, err := base64.StdEncoding.DecodeString(l)
		if err != nil {
			return false
		}
		got = append(got, string(b))
	}
	r := "535 5.7.8 authentication failed"
	if strings.Join(got, ":") == f.login {
		r = "235 2.7.0 authenticated"
	}
	_, err := io.WriteString(c, r+"\r\n")
	return err == nil
}

// asError returns err as *Error, failing the test when it is not one.
func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e
}

func newRelay(t testing.TB, cfg Config) *Relay {
	t.Helper()
	r, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}
