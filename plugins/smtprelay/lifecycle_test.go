package smtprelay

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// With Pool = 1, concurrent Sends all succeed, one at a time over a single connection.
func TestPoolBound(t *testing.T) {
	for _, pool := range []int{1, 3} {
		t.Run(fmt.Sprintf("pool %d", pool), func(t *testing.T) {
			ts := newServer(t, serverOptions{})
			cfg := ts.config()
			cfg.Pool = pool
			r := newRelay(t, cfg)
			const senders, each = 8, 5
			var wg sync.WaitGroup
			errs := make(chan error, senders*each)
			for i := range senders {
				wg.Go(func() {
					for j := range each {
						to := fmt.Sprintf("user%d.%d@example.com", i, j)
						if _, err := r.Send(t.Context(), "a@example.com", []string{to}, []byte(simple)); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Send: %v", err)
			}
			if n := len(ts.messages()); n != senders*each {
				t.Errorf("server got %d messages, want %d", n, senders*each)
			}
			if n := ts.maxOpen.Load(); n > int64(pool) {
				t.Errorf("server saw %d concurrent connections, pool is %d", n, pool)
			}
		})
	}
}

// A Send waiting for a pool slot gives up when its ctx ends; cancelling a Send closes its connection.
func TestContext(t *testing.T) {
	f := newFake(t, &fakeServer{silent: true}) // accepts, never greets
	cfg := f.config()
	cfg.Pool = 1
	r := newRelay(t, cfg)

	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := r.Send(ctx, "a@example.com", []string{"b@example.com"}, []byte(simple))
		first <- err
	}()
	waitFor(t, "the first Send to connect", func() bool { conns, _ := f.counts(); return conns == 1 })

	wctx, wcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer wcancel()
	_, err := r.Send(wctx, "a@example.com", []string{"b@example.com"}, []byte(simple))
	if e := asError(t, err); e.Code != 0 || !e.Temporary() || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(e.Error(), "waiting for a connection") {
		t.Errorf("waiting Send: %v, want a transport error wrapping context.DeadlineExceeded", err)
	}
	if conns, _ := f.counts(); conns != 1 {
		t.Errorf("the waiting Send connected (%d connections)", conns)
	}

	cancel()
	err = <-first
	if e := asError(t, err); e.Code != 0 || !errors.Is(err, context.Canceled) || !strings.HasPrefix(e.Error(), "smtp: ") {
		t.Errorf("cancelled Send: %v, want a transport error wrapping context.Canceled", err)
	}
	waitFor(t, "the cancelled connection to close", func() bool { _, closed := f.counts(); return closed == 1 })

	// The slot is free again.
	sctx, scancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer scancel()
	if _, err := r.Send(sctx, "a@example.com", []string{"b@example.com"}, []byte(simple)); !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "waiting for a connection") {
		t.Errorf("Send after the cancel: %v, want a deadline while talking to the relay", err)
	}
}

func TestIdleConnectionsClosed(t *testing.T) {
	ts := newServer(t, serverOptions{})
	cfg := ts.config()
	cfg.MaxIdle = 20 * time.Millisecond
	r := newRelay(t, cfg)
	if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection to close", func() bool { return ts.open.Load() == 0 })
	if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple)); err != nil {
		t.Fatal(err)
	}
	if n := ts.accepted.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestClose(t *testing.T) {
	f := newFake(t, &fakeServer{ext: []string{"PIPELINING"}})
	cfg := f.config()
	cfg.Pool = 2
	r, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	conns, closed := f.counts()
	waitFor(t, "every connection to close", func() bool { _, closed = f.counts(); return closed == conns })
	for i := range conns {
		if cmds := f.commands(i); cmds[len(cmds)-1] != "QUIT" {
			t.Errorf("connection %d ended with %q, want QUIT", i, cmds[len(cmds)-1])
		}
	}
	_, err = r.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(simple))
	if !errors.Is(err, ErrClosed) || !strings.HasPrefix(err.Error(), "smtp: ") {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		err   string
		check func(t *testing.T, c Config)
	}{
		{name: "defaults", cfg: Config{Name: "r", Host: "smtp.example.com"}, check: func(t *testing.T, c Config) {
			if c.Port != 587 || c.TLS != TLSStartTLS || c.Pool != 4 || c.Timeout != 30*time.Second || c.MaxIdle != 30*time.Second || c.HELO == "" || c.ServerName != "smtp.example.com" {
				t.Errorf("defaults %+v", c)
			}
		}},
		{name: "implicit tls defaults to 465", cfg: Config{Host: "smtp.example.com", TLS: TLSImplicit}, check: func(t *testing.T, c Config) {
			if c.Port != 465 {
				t.Errorf("port %d", c.Port)
			}
		}},
		{name: "bracketed IPv6", cfg: Config{Host: "[::1]", TLS: TLSNone, Username: "u", Password: "p"}, check: func(t *testing.T, c Config) {
			if c.Host != "::1" {
				t.Errorf("host %q", c.Host)
			}
		}},
		{name: "password in clear text to localhost", cfg: Config{Host: "localhost", TLS: TLSNone, Username: "u", Password: "p"}},
		{name: "no host", cfg: Config{}, err: "host is required"},
		{name: "bad host", cfg: Config{Host: "smtp example"}, err: "not a host name"},
		{name: "bad tls", cfg: Config{Host: "h", TLS: "ssl"}, err: `tls "ssl" must be`},
		{name: "bad port", cfg: Config{Host: "h", Port: 70000}, err: "port 70000"},
		{name: "username without password", cfg: Config{Host: "h", Username: "u"}, err: "go together"},
		{name: "password in clear text", cfg: Config{Host: "smtp.example.com", TLS: TLSNone, Username: "u", Password: "hunter2"}, err: "clear text"},
		{name: "bad helo", cfg: Config{Host: "h", HELO: "a\r\nMAIL"}, err: "helo"},
		{name: "negative pool", cfg: Config{Host: "h", Pool: -1}, err: "pool"},
		{name: "negative timeout", cfg: Config{Host: "h", Timeout: -time.Second}, err: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, nil)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("New: %v, want an error containing %q", err, tt.err)
				}
				if tt.cfg.Password != "" && strings.Contains(err.Error(), tt.cfg.Password) {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if tt.check != nil {
				tt.check(t, r.cfg)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	for _, tt := range []struct {
		err       *Error
		text      string
		temporary bool
	}{
		{&Error{Code: 550, Message: "5.1.1 no such user"}, "smtp 550 5.1.1 no such user", false},
		{&Error{Code: 451, Message: "4.3.0 later"}, "smtp 451 4.3.0 later", true},
		{&Error{Message: "connecting to relay \"r\": refused", cause: cause}, "smtp: connecting to relay \"r\": refused", true},
	} {
		if tt.err.Error() != tt.text || tt.err.Temporary() != tt.temporary {
			t.Errorf("%#v: %q temporary %v, want %q %v", tt.err, tt.err.Error(), tt.err.Temporary(), tt.text, tt.temporary)
		}
	}
	if err := error(&Error{Message: "x", cause: cause}); !errors.Is(err, cause) {
		t.Error("Error does not unwrap to its cause")
	}
}

// The client must stay readable and embeddable on its own: standard library and go-hclog only.
func TestImportsOnlyStdlibAndHclog(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/hashicorp/go-hclog" {
			t.Errorf("smtprelay imports %s: only the standard library and go-hclog are allowed", imp)
		}
	}
}
