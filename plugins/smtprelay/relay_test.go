package smtprelay

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

const simple = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"

// Messages go through a real go-smtp server, over every TLS mode, with and without AUTH and extensions.
func TestSend(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name   string
		server serverOptions
		config func(c *Config)
		from   string
		to     []string
		data   string
		check  func(t *testing.T, reply Reply, got received)
	}{
		{
			name: "plain text to a loopback relay",
			from: "a@example.com", to: []string{"b@example.com", "c@example.com"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if got.From != "a@example.com" || !reflect.DeepEqual(got.To, []string{"b@example.com", "c@example.com"}) || string(got.Data) != simple {
					t.Errorf("received %+v", got)
				}
				if got.TLS || got.Body != "" || got.UTF8 || got.Size != int64(len(simple)) {
					t.Errorf("options %+v", got)
				}
			},
		},
		{
			name: "null reverse-path",
			from: "", to: []string{"b@example.com"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if got.From != "" {
					t.Errorf("from %q, want the null reverse-path", got.From)
				}
			},
		},
		{
			name:   "starttls with a private root",
			server: serverOptions{tls: cert.server},
			config: func(c *Config) { c.TLS, c.RootCAs = TLSStartTLS, cert.roots },
			from:   "a@example.com", to: []string{"b@example.com"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if !got.TLS {
					t.Error("message did not arrive over TLS")
				}
			},
		},
		{
			name:   "starttls verifies the server name, not the address dialled",
			server: serverOptions{tls: cert.server},
			config: func(c *Config) { c.TLS, c.RootCAs, c.ServerName = TLSStartTLS, cert.roots, "localhost" },
			from:   "a@example.com", to: []string{"b@example.com"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if !got.TLS {
					t.Error("message did not arrive over TLS")
				}
			},
		},
		{
			name:   "implicit tls",
			server: serverOptions{tls: cert.server, implicit: true},
			config: func(c *Config) { c.TLS, c.RootCAs = TLSImplicit, cert.roots },
			from:   "a@example.com", to: []string{"b@example.com"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if !got.TLS {
					t.Error("message did not arrive over TLS")
				}
			},
		},
		{
			name:   "auth plain after starttls",
			server: serverOptions{tls: cert.server, users: map[string]string{"app": "s3cret"}},
			config: func(c *Config) { c.TLS, c.RootCAs, c.Username, c.Password = TLSStartTLS, cert.roots, "app", "s3cret" },
			from:   "a@example.com", to: []string{"b@example.com"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if got.User != "app" || !got.TLS {
					t.Errorf("user %q tls %v", got.User, got.TLS)
				}
			},
		},
		{
			name:   "auth plain in clear text to loopback",
			server: serverOptions{users: map[string]string{"app": "s3cret"}},
			config: func(c *Config) { c.Username, c.Password = "app", "s3cret" },
			from:   "a@example.com", to: []string{"b@example.com"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if got.User != "app" {
					t.Errorf("user %q", got.User)
				}
			},
		},
		{
			name: "8-bit data is declared BODY=8BITMIME",
			from: "a@example.com", to: []string{"b@example.com"}, data: "Subject: café\r\n\r\nçà\r\n",
			check: func(t *testing.T, _ Reply, got received) {
				if got.Body != smtp.Body8BitMIME || string(got.Data) != "Subject: café\r\n\r\nçà\r\n" {
					t.Errorf("body %q data %q", got.Body, got.Data)
				}
			},
		},
		{
			name:   "non-ASCII address with SMTPUTF8",
			server: serverOptions{utf8: true},
			from:   "josé@exemple.fr", to: []string{"zoë@exemple.fr"}, data: simple,
			check: func(t *testing.T, _ Reply, got received) {
				if !got.UTF8 || got.From != "josé@exemple.fr" || got.To[0] != "zoë@exemple.fr" {
					t.Errorf("received %+v", got)
				}
			},
		},
		{
			name: "some recipients refused",
			server: serverOptions{refuse: map[string]*smtp.SMTPError{
				"gone@example.com": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
				"full@example.com": {Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"},
			}},
			from: "a@example.com", to: []string{"gone@example.com", "b@example.com", "full@example.com"}, data: simple,
			check: func(t *testing.T, reply Reply, got received) {
				if !reflect.DeepEqual(got.To, []string{"b@example.com"}) {
					t.Errorf("delivered to %v", got.To)
				}
				want := []Rejection{
					{Recipient: "gone@example.com", Code: 550, Message: "5.1.1 no such user"},
					{Recipient: "full@example.com", Code: 452, Message: "4.2.2 mailbox full"},
				}
				if !reflect.DeepEqual(reply.Rejected, want) {
					t.Errorf("rejected %+v\nwant %+v", reply.Rejected, want)
				}
			},
		},
		{
			name: "bare LF and CR become CRLF, dots survive stuffing, a last line gets its CRLF",
			from: "a@example.com", to: []string{"b@example.com"},
			data: "Subject: x\n\n.\n..two\r.three\r\nlast",
			check: func(t *testing.T, _ Reply, got received) {
				if want := "Subject: x\r\n\r\n.\r\n..two\r\n.three\r\nlast\r\n"; string(got.Data) != want {
					t.Errorf("data %q\nwant %q", got.Data, want)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, tt.server)
			cfg := ts.config()
			if tt.config != nil {
				tt.config(&cfg)
			}
			r := newRelay(t, cfg)
			reply, err := r.Send(t.Context(), tt.from, tt.to, []byte(tt.data))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if reply.Code != 250 || !strings.Contains(reply.Message, "OK") {
				t.Errorf("reply %+v", reply)
			}
			msgs := ts.messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages", len(msgs))
			}
			tt.check(t, reply, msgs[0])
		})
	}
}

// Every refusal and failure is an *Error with the relay's code, or 0 for transport failures, and nothing is
// delivered.
func TestSendErrors(t *testing.T) {
	cert := newTestCert(t)
	refuse := map[string]*smtp.SMTPError{
		"gone@example.com":   {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"},
		"full@example.com":   {Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"},
		"banned@example.com": {Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "sender refused"},
	}
	dataErr := map[string]*smtp.SMTPError{
		"later@example.com": {Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"},
		"spam@example.com":  {Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "looks like spam"},
	}
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name      string
		server    serverOptions
		config    func(c *Config)
		from      string
		to        []string
		data      string
		code      int
		temporary bool
		contains  string
		noConnect bool // refused before any connection
		noMail    bool // refused before MAIL FROM
	}{
		{name: "starttls required but not offered", config: func(c *Config) { c.TLS = TLSStartTLS },
			code: 0, temporary: true, contains: "does not offer STARTTLS", noMail: true},
		{name: "certificate not trusted", server: serverOptions{tls: cert.server}, config: func(c *Config) { c.TLS = TLSStartTLS },
			code: 0, temporary: true, contains: "certificate", noMail: true},
		{name: "certificate for another name", server: serverOptions{tls: cert.server}, config: func(c *Config) { c.TLS, c.RootCAs, c.ServerName = TLSStartTLS, cert.roots, "smtp.example.com" },
			code: 0, temporary: true, contains: "smtp.example.com", noMail: true},
		{name: "implicit tls to a plain server", config: func(c *Config) { c.TLS, c.RootCAs = TLSImplicit, cert.roots },
			code: 0, temporary: true, contains: "starting TLS", noMail: true},
		{name: "auth failure is permanent", server: serverOptions{tls: cert.server, users: map[string]string{"app": "right"}},
			config: func(c *Config) { c.TLS, c.RootCAs, c.Username, c.Password = TLSStartTLS, cert.roots, "app", "wrong" },
			code:   535, contains: "smtp 535 5.7.8 Authentication failed", noMail: true},
		{name: "auth not offered", config: func(c *Config) { c.Username, c.Password = "app", "pw" },
			code: 0, temporary: true, contains: "does not offer AUTH", noMail: true},
		{name: "every recipient refused: first refusal, permanent", server: serverOptions{refuse: refuse},
			to: []string{"gone@example.com", "full@example.com"}, code: 550, contains: "smtp 550 5.1.1 no such user"},
		{name: "every recipient refused: first refusal, temporary", server: serverOptions{refuse: refuse},
			to: []string{"full@example.com", "gone@example.com"}, code: 452, temporary: true, contains: "smtp 452 4.2.2 mailbox full"},
		{name: "sender refused", server: serverOptions{refuse: refuse}, from: "banned@example.com",
			code: 553, contains: "smtp 553 5.7.1 sender refused"},
		{name: "4xx at the end of data", server: serverOptions{dataErr: dataErr}, from: "later@example.com",
			code: 451, temporary: true, contains: "smtp 451 4.3.0 try again later"},
		{name: "5xx at the end of data", server: serverOptions{dataErr: dataErr}, from: "spam@example.com",
			code: 554, contains: "smtp 554 5.7.1 looks like spam"},
		{name: "over the relay's SIZE", server: serverOptions{maxBytes: 1000}, data: big,
			code: 552, contains: "smtp 552 5.3.4 message of 2002 bytes exceeds the relay's limit of 1000 bytes", noMail: true},
		{name: "non-ASCII address without SMTPUTF8", to: []string{"zoë@exemple.fr"},
			code: 553, contains: "smtp 553 5.6.7", noMail: true},
		{name: "CRLF injection in the sender", from: "a@example.com>\r\nRCPT TO:<victim@example.com",
			code: 501, contains: "smtp 501 5.1.7 invalid sender address", noConnect: true},
		{name: "LF injection in a recipient", to: []string{"b@example.com\nDATA"},
			code: 501, contains: "line break", noConnect: true},
		{name: "angle brackets in a recipient", to: []string{"b@example.com> NOTIFY=NEVER"},
			code: 501, contains: "'<' or '>'", noConnect: true},
		{name: "a recipient that is <>", to: []string{"<>"},
			code: 501, contains: "smtp 501 5.1.3", noConnect: true},
		{name: "NUL in a recipient", to: []string{"b\x00@example.com"},
			code: 501, contains: "control character", noConnect: true},
		{name: "space in a recipient", to: []string{"b c@example.com"},
			code: 501, contains: "space", noConnect: true},
		{name: "no recipients", to: []string{},
			code: 501, contains: "no recipients", noConnect: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newServer(t, tt.server)
			cfg := ts.config()
			if tt.config != nil {
				tt.config(&cfg)
			}
			r := newRelay(t, cfg)
			from, to, data := "a@example.com", []string{"b@example.com"}, simple
			if tt.from != "" {
				from = tt.from
			}
			if tt.to != nil {
				to = tt.to
			}
			if tt.data != "" {
				data = tt.data
			}
			reply, err := r.Send(t.Context(), from, to, []byte(data))
			if err == nil {
				t.Fatalf("Send succeeded: %+v", reply)
			}
			e := asError(t, err)
			if e.Code != tt.code || e.Temporary() != tt.temporary || !strings.Contains(e.Error(), tt.contains) {
				t.Errorf("error %q: code %d temporary %v, want code %d temporary %v containing %q", e, e.Code, e.Temporary(), tt.code, tt.temporary, tt.contains)
			}
			prefix := fmt.Sprintf("smtp %d ", tt.code)
			if tt.code == 0 {
				prefix = "smtp: "
			}
			if !strings.HasPrefix(e.Error(), prefix) {
				t.Errorf("error %q does not start with %q", e, prefix)
			}
			if n := len(ts.messages()); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
			if n := ts.accepted.Load(); tt.noConnect && n != 0 {
				t.Errorf("relay was contacted (%d connections)", n)
			}
			if n := ts.mailCount(); tt.noMail && n != 0 {
				t.Errorf("server saw %d MAIL FROM", n)
			}
			if cfg.Password != "" && strings.Contains(e.Error(), cfg.Password) {
				t.Errorf("error shows the password: %q", e)
			}
		})
	}
}

// With PIPELINING, MAIL FROM, every RCPT TO and DATA go in one write: a server that answers only once the whole
// group has arrived still gets the message. Without it, the client waits for each reply: a server that hangs up
// on clients sending early still gets the message. Both send RSET before the next message on the connection.
func TestPipelining(t *testing.T) {
	for _, tt := range []struct {
		name   string
		server *fakeServer
		// groups are the commands that arrived together for each message.
		first, second []string
	}{
		{
			name:   "pipelining",
			server: &fakeServer{ext: []string{"PIPELINING", "8BITMIME", "SIZE 100000"}, batch: true},
			first:  []string{"EHLO client.test", "MAIL FROM:<a@example.com> SIZE=63", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>", "DATA"},
			second: []string{"RSET", "MAIL FROM:<a@example.com> SIZE=63", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>", "DATA", "QUIT"},
		},
		{
			name:   "one command at a time",
			server: &fakeServer{ext: []string{"8BITMIME"}, strict: true},
			first:  []string{"EHLO client.test", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>", "DATA"},
			second: []string{"RSET", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "RCPT TO:<c@example.com>", "DATA", "QUIT"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.server)
			cfg := f.config()
			cfg.Timeout = 2 * time.Second // a client that does not pipeline deadlocks against the batching server
			r := newRelay(t, cfg)
			for range 2 {
				if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com", "c@example.com"}, []byte(simple)); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if f.broken.Load() {
				t.Fatal("the client pipelined to a server that does not offer it")
			}
			waitFor(t, "the server to see the connection closed", func() bool { _, closed := f.counts(); return closed == 1 })
			want := append(append([]string(nil), tt.first...), tt.second...)
			if got := f.commands(0); !reflect.DeepEqual(got, want) {
				t.Errorf("commands\n got %q\nwant %q", got, want)
			}
		})
	}
}

// The bytes on the wire: CRLF everywhere, stuffed dots, the terminator, whatever the caller's line ends.
func TestDataOnTheWire(t *testing.T) {
	f := newFake(t, &fakeServer{ext: []string{"PIPELINING"}})
	r := newRelay(t, f.config())
	for i, tt := range []struct{ in, wire string }{
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{"a\nb", "a\r\nb\r\n.\r\n"},
		{".\n", "..\r\n.\r\n"},
		{"x\n.\ny", "x\r\n..\r\ny\r\n.\r\n"},
		{"x\r\n.\r\n", "x\r\n..\r\n.\r\n"},
		{"smuggle\n.\nMAIL FROM:<x@y>\n", "smuggle\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n"},
		{"cr\r.\rend", "cr\r\n..\r\nend\r\n.\r\n"},
		{"..dots", "...dots\r\n.\r\n"},
		{"", ".\r\n"},
	} {
		if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(tt.in)); err != nil {
			t.Fatalf("Send(%q): %v", tt.in, err)
		}
		if got := f.rawData()[i]; string(got) != tt.wire {
			t.Errorf("data %q went out as %q, want %q", tt.in, got, tt.wire)
		}
	}
}

func TestEncodeData(t *testing.T) {
	for _, tt := range []struct {
		in       string
		size     int64
		eightBit bool
	}{
		{"", 0, false}, {"a", 3, false}, {"a\n", 3, false}, {".\n", 3, false}, {"é\n", 4, true}, {"a\r\rb", 8, false},
	} {
		m := encodeData([]byte(tt.in))
		if m.size != tt.size || m.eightBit != tt.eightBit {
			t.Errorf("encodeData(%q): size %d 8bit %v, want %d %v", tt.in, m.size, m.eightBit, tt.size, tt.eightBit)
		}
		if !bytes.HasSuffix(m.wire, []byte(".\r\n")) {
			t.Errorf("encodeData(%q) = %q has no terminator", tt.in, m.wire)
		}
	}
}

func TestAuthLoginAndHeloFallback(t *testing.T) {
	for _, tt := range []struct {
		name   string
		server *fakeServer
		pass   string
		code   int
		want   []string
	}{
		{"login when only LOGIN is offered", &fakeServer{ext: []string{"AUTH LOGIN"}, login: "app:pw"}, "pw", 0,
			[]string{"EHLO client.test", "AUTH LOGIN", "YXBw", "cHc=", "MAIL FROM:<a@example.com>"}},
		{"login with a wrong password", &fakeServer{ext: []string{"AUTH LOGIN"}, login: "app:pw"}, "nope", 535,
			[]string{"EHLO client.test", "AUTH LOGIN", "YXBw", "bm9wZQ=="}},
		{"old servers' AUTH=LOGIN", &fakeServer{ext: []string{"AUTH=LOGIN"}, login: "app:pw"}, "pw", 0,
			[]string{"EHLO client.test", "AUTH LOGIN", "YXBw", "cHc=", "MAIL FROM:<a@example.com>"}},
		{"HELO when EHLO is not understood", &fakeServer{noEHLO: true}, "", 0,
			[]string{"EHLO client.test", "HELO client.test", "MAIL FROM:<a@example.com>"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.server)
			cfg := f.config()
			if tt.pass != "" {
				cfg.Username, cfg.Password = "app", tt.pass
			}
			r := newRelay(t, cfg)
			_, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple))
			if tt.code == 0 && err != nil {
				t.Fatalf("Send: %v", err)
			}
			if tt.code != 0 && (err == nil || asError(t, err).Code != tt.code) {
				t.Fatalf("Send: %v, want code %d", err, tt.code)
			}
			if got := f.commands(0); len(got) < len(tt.want) || !reflect.DeepEqual(got[:len(tt.want)], tt.want) {
				t.Errorf("commands %q, want them to start with %q", got, tt.want)
			}
		})
	}
}

// Connections are reused; a reused connection the relay had closed is replaced once, transparently.
func TestConnectionReuse(t *testing.T) {
	t.Run("reused", func(t *testing.T) {
		ts := newServer(t, serverOptions{})
		r := newRelay(t, ts.config())
		for range 5 {
			if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple)); err != nil {
				t.Fatal(err)
			}
		}
		if n := ts.accepted.Load(); n != 1 {
			t.Errorf("%d connections for 5 sequential messages, want 1", n)
		}
	})
	for _, tt := range []struct {
		name string
		ext  []string
	}{{"dead reused connection, pipelining", []string{"PIPELINING"}}, {"dead reused connection, one at a time", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			// The relay hangs up right after accepting each message, as relays with a short idle timeout or a
			// limit of one message per connection do.
			f := newFake(t, &fakeServer{ext: tt.ext, hangUp: true})
			r := newRelay(t, f.config())
			if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the relay to hang up", func() bool { _, closed := f.counts(); return closed == 1 })
			if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple)); err != nil {
				t.Fatalf("second Send on a dead connection: %v", err)
			}
			if conns, _ := f.counts(); conns != 2 {
				t.Errorf("%d connections, want 2 (the dead one and its replacement)", conns)
			}
			if n := len(f.rawData()); n != 2 {
				t.Errorf("server got %d messages, want 2", n)
			}
			if got := f.commands(1); len(got) < 2 || got[1] != "MAIL FROM:<a@example.com>" {
				t.Errorf("the replacement connection got %q, want a fresh transaction without RSET", got)
			}
		})
	}
}

// A connection that saw a malformed reply or a timeout is closed, never reused: the next message opens another.
func TestBrokenConnectionNotReused(t *testing.T) {
	for _, tt := range []struct {
		name     string
		reply    string
		timeout  time.Duration
		contains string
	}{
		{"malformed reply", "hello there", 5 * time.Second, "malformed reply"},
		{"timeout", "stall", 100 * time.Millisecond, "no answer within 100ms"},
		{"421 at the end of data", "421 4.3.2 shutting down", 5 * time.Second, "smtp 421 4.3.2 shutting down"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, &fakeServer{ext: []string{"PIPELINING"}, endOfData: func(msg int) string {
				if msg == 0 {
					return tt.reply
				}
				return "250 2.0.0 queued"
			}})
			cfg := f.config()
			cfg.Timeout = tt.timeout
			r := newRelay(t, cfg)
			_, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if e := asError(t, err); !e.Temporary() || !strings.Contains(e.Error(), tt.contains) {
				t.Errorf("error %q: temporary %v, want temporary containing %q", e, e.Temporary(), tt.contains)
			}
			if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple)); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			if conns, _ := f.counts(); conns != 2 {
				t.Errorf("%d connections, want 2", conns)
			}
		})
	}
}

// A refusal leaves the connection usable: the next message goes over it after RSET. Multi-line reply texts are
// joined with spaces.
func TestRefusalKeepsConnection(t *testing.T) {
	f := newFake(t, &fakeServer{ext: []string{"PIPELINING"}, endOfData: func(msg int) string {
		if msg == 0 {
			return "554-5.7.1 refused by policy\r\n554 5.7.1 see https://example.com/policy"
		}
		return "250 2.0.0 queued"
	}})
	r := newRelay(t, f.config())
	_, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple))
	if e := asError(t, err); e.Error() != "smtp 554 5.7.1 refused by policy 5.7.1 see https://example.com/policy" || e.Temporary() {
		t.Errorf("error %q temporary %v", e, e.Temporary())
	}
	reply, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple))
	if err != nil || reply.Code != 250 || reply.Message != "2.0.0 queued" {
		t.Fatalf("second Send: %+v %v", reply, err)
	}
	if conns, _ := f.counts(); conns != 1 {
		t.Errorf("%d connections, want 1", conns)
	}
	if cmds := f.commands(0); !reflect.DeepEqual(cmds[4:6], []string{"RSET", "MAIL FROM:<a@example.com>"}) {
		t.Errorf("commands %q", cmds)
	}
}
