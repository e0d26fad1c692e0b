package smtprelay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TLS modes of Config.TLS.
const (
	// TLSStartTLS connects in plain text and upgrades with STARTTLS; a relay that does not offer it is refused.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465, "submissions").
	TLSImplicit = "tls"
	// TLSNone never encrypts: only sensible for a relay on the same host or a trusted local network.
	TLSNone = "none"
)

// Defaults applied by New to zero fields.
const (
	DefaultPort        = 587
	DefaultImplicitTLS = 465
	DefaultPool        = 4
	DefaultTimeout     = 30 * time.Second
	DefaultMaxIdle     = 30 * time.Second
)

// Config is one relay.
type Config struct {
	// Name is the operator's label for the relay (the smtp block label), used in logs and errors.
	Name string
	Host string
	// Port defaults to 587, or 465 when TLS is "tls".
	Port int
	// TLS is "starttls" (the default: refuse to continue if the relay does not offer STARTTLS), "tls" (implicit
	// TLS) or "none" (plain text; only sensible for a local relay).
	TLS string
	// Username and Password, when set, authenticate with AUTH PLAIN (or LOGIN if only that is offered). They are
	// never sent over a plain connection except to a loopback host.
	Username, Password string
	// HELO is the name sent in EHLO; it defaults to os.Hostname().
	HELO string
	// Pool is the maximum number of open connections, 4 by default. Sends beyond it wait for a connection.
	Pool int
	// Timeout bounds every dial, SMTP command and reply (30s by default); the ctx deadline of Send applies too.
	Timeout time.Duration
	// RootCAs are the roots TLS certificates are verified against; nil means the system roots.
	RootCAs *x509.CertPool
	// ServerName is the name the relay's certificate must carry; it defaults to Host.
	ServerName string
	// MaxIdle closes connections idle for longer (30s by default).
	MaxIdle time.Duration
}

// Relay sends messages through one SMTP relay over a bounded pool of reused connections. It is safe for
// concurrent use. Construct it with New and release it with Close.
type Relay struct {
	cfg  Config
	addr string
	tls  *tls.Config
	log  hclog.Logger

	// slots holds one token per connection in use (or being closed by the reaper). A connection is either in use,
	// idle or being closed, and in-use plus idle never exceeds Pool, so at most Pool connections are ever open.
	slots chan struct{}
	done  chan struct{}
	// sends counts Sends in flight, so that Close can wait for them.
	sends  sync.WaitGroup
	reaper sync.WaitGroup

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

// New checks cfg, applies defaults and returns a Relay. It does not connect: the first Send does.
func New(cfg Config, log hclog.Logger) (*Relay, error) {
	if err := cfg.normalise(); err != nil {
		return nil, fmt.Errorf("configuring smtp relay %q: %w", cfg.Name, err)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	r := &Relay{
		cfg:   cfg,
		addr:  net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		log:   log.Named("smtp").With("relay", cfg.Name),
		slots: make(chan struct{}, cfg.Pool),
		done:  make(chan struct{}),
	}
	if cfg.TLS != TLSNone {
		r.tls = &tls.Config{ServerName: cfg.ServerName, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	r.reaper.Add(1)
	go r.reapIdle()
	return r, nil
}

func (c *Config) normalise() error {
	c.Host = strings.TrimSuffix(strings.TrimPrefix(c.Host, "["), "]")
	if c.Host == "" {
		return errors.New("host is required")
	}
	if strings.ContainsFunc(c.Host, func(r rune) bool { return r <= ' ' || r == '/' || r == 0x7f }) {
		return fmt.Errorf("host %q is not a host name or IP address", c.Host)
	}
	switch c.TLS {
	case "":
		c.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return fmt.Errorf("tls %q must be %q, %q or %q", c.TLS, TLSStartTLS, TLSImplicit, TLSNone)
	}
	switch {
	case c.Port == 0 && c.TLS == TLSImplicit:
		c.Port = DefaultImplicitTLS
	case c.Port == 0:
		c.Port = DefaultPort
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("port %d must be between 1 and 65535", c.Port)
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("username and password go together: set both or neither")
	}
	if strings.ContainsRune(c.Username, 0) || strings.ContainsRune(c.Password, 0) {
		return errors.New("username and password must not contain NUL")
	}
	if c.Password != "" && c.TLS == TLSNone && !isLoopback(c.Host) {
		return fmt.Errorf("refusing to send the password in clear text to %q: use tls = %q or %q, or a relay on a loopback address", c.Host, TLSStartTLS, TLSImplicit)
	}
	if c.HELO == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.HELO = h
		} else {
			c.HELO = "localhost"
		}
	}
	if strings.ContainsFunc(c.HELO, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("helo %q must be a host name without spaces or control characters", c.HELO)
	}
	switch {
	case c.Pool == 0:
		c.Pool = DefaultPool
	case c.Pool < 0:
		return fmt.Errorf("pool %d must be at least 1", c.Pool)
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	case c.Timeout < 0:
		return fmt.Errorf("timeout %s must be positive", c.Timeout)
	}
	switch {
	case c.MaxIdle == 0:
		c.MaxIdle = DefaultMaxIdle
	case c.MaxIdle < 0:
		return fmt.Errorf("max idle %s must be positive", c.MaxIdle)
	}
	if c.ServerName == "" {
		c.ServerName = c.Host
	}
	return nil
}

// isLoopback reports whether host is "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Send delivers data (a complete RFC 5322 message) from the reverse-path from ("" is the null reverse-path of
// bounces) to the recipients to. It returns the relay's Reply when the relay accepted the message for at least
// one recipient; refused recipients are listed in Reply.Rejected. Otherwise it returns an *Error: the first RCPT
// refusal when every recipient is refused, the refusal of MAIL FROM or of the data, or a transport failure.
//
// Send waits for a connection when Pool are in use, for as long as ctx allows.
func (r *Relay) Send(ctx context.Context, from string, to []string, data []byte) (Reply, error) {
	env, err := newEnvelope(from, to)
	if err != nil {
		return Reply{}, err
	}
	if err := r.begin(); err != nil {
		return Reply{}, err
	}
	defer r.sends.Done()
	msg := encodeData(data)

	c, err := r.acquire(ctx)
	if err != nil {
		return Reply{}, err
	}
	for retried := false; ; retried = true {
		if c == nil {
			if c, err = r.dial(ctx); err != nil {
				r.release(nil, false)
				return Reply{}, err
			}
		}
		reply, keep, err := c.send(ctx, env, msg)
		var stale *staleError
		if errors.As(err, &stale) {
			c.close()
			c = nil
			if !retried && ctx.Err() == nil {
				r.log.Debug("reused connection was closed by the relay; retrying on a new connection", "error", stale.err)
				continue
			}
			err = stale.report
		}
		r.release(c, keep)
		if err != nil {
			r.log.Debug("message not sent", "error_code", errorCode(err), "recipients", len(to))
		} else {
			r.log.Debug("message sent", "code", reply.Code, "recipients", len(to), "rejected", len(reply.Rejected), "bytes", msg.size)
		}
		return reply, err
	}
}

func errorCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// begin registers a Send in flight, or refuses it once Close has been called.
func (r *Relay) begin() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.closedError()
	}
	r.sends.Add(1)
	return nil
}

func (r *Relay) closedError() *Error {
	return &Error{Message: fmt.Sprintf("relay %q is closed", r.cfg.Name), cause: ErrClosed}
}

// acquire takes a slot and, when there is one, an idle connection (most recently used first). A nil conn with a
// nil error means the caller holds a slot and must dial.
func (r *Relay) acquire(ctx context.Context) (*conn, error) {
	select {
	case r.slots <- struct{}{}:
	case <-r.done:
		return nil, r.closedError()
	case <-ctx.Done():
		return nil, &Error{Message: fmt.Sprintf("waiting for a connection to relay %q: %v", r.cfg.Name, ctx.Err()), cause: ctx.Err()}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		<-r.slots
		return nil, r.closedError()
	}
	if n := len(r.idle); n > 0 {
		c := r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		return c, nil
	}
	return nil, nil
}

// release gives the slot back, keeping c for reuse when keep is true and the relay is open, and closing it
// otherwise.
func (r *Relay) release(c *conn, keep bool) {
	defer func() { <-r.slots }()
	if c == nil {
		return
	}
	if keep {
		r.mu.Lock()
		if !r.closed {
			c.idleSince = time.Now()
			r.idle = append(r.idle, c)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		c.quit()
		return
	}
	c.close()
}

// reapIdle closes connections idle for longer than MaxIdle, until Close.
func (r *Relay) reapIdle() {
	defer r.reaper.Done()
	every := r.cfg.MaxIdle / 2
	if every < time.Millisecond {
		every = time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			for _, c := range r.expired(now) {
				r.log.Debug("closing idle connection")
				c.quit()
				<-r.slots
			}
		}
	}
}

// expired removes from the idle list the connections idle for MaxIdle or more, taking a slot for each so that a
// connection being closed still counts against Pool.
func (r *Relay) expired(now time.Time) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*conn
	kept := r.idle[:0]
	for _, c := range r.idle {
		if now.Sub(c.idleSince) < r.cfg.MaxIdle {
			kept = append(kept, c)
			continue
		}
		select {
		case r.slots <- struct{}{}:
			out = append(out, c)
		default:
			kept = append(kept, c) // every slot is taken: try again at the next tick
		}
	}
	clear(r.idle[len(kept):])
	r.idle = kept
	return out
}

// Close refuses new Sends, ends every idle connection with QUIT, waits for the Sends in flight (which close their
// connections when they finish) and stops the idle reaper. It is safe to call more than once.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	idle := r.idle
	r.idle = nil
	close(r.done)
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Go(c.quit)
	}
	wg.Wait()
	r.sends.Wait()
	r.reaper.Wait()
	r.log.Debug("closed", "connections", len(idle))
	return nil
}
