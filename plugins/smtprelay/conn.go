package smtprelay

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxPipeline is the most commands written before their replies are read. RFC 2920 asks clients not to fill the
// TCP window without reading, or client and server can block writing to each other; replies are ~50 bytes.
const maxPipeline = 100

// dataChunk is how much message data is written under one deadline.
const dataChunk = 64 << 10

// conn is one SMTP session with the relay, used by one Send at a time.
type conn struct {
	r    *Relay
	raw  net.Conn // the TCP connection: closing it stops any read or write, also under TLS
	nc   net.Conn // raw, or the TLS connection over it
	text *textproto.Conn

	ext       map[string]string // EHLO keywords (upper case) and their parameters
	maxSize   int64             // SIZE limit, 0 when none is announced
	uses      int               // transactions started on this connection
	idleSince time.Time
}

// staleError is a reused connection found closed by the relay at its first command: nothing was accepted, so the
// message can be sent again on a new connection.
type staleError struct {
	report *Error
	err    error
}

func (e *staleError) Error() string { return e.report.Error() }
func (e *staleError) Unwrap() error { return e.report }

// dial opens a connection and brings it to the point where MAIL FROM can be sent: greeting, EHLO, TLS, AUTH.
func (r *Relay) dial(ctx context.Context) (*conn, error) {
	c := &conn{r: r}
	dctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", r.addr)
	if err != nil {
		return nil, c.transportError(ctx, "connecting to", err)
	}
	c.raw, c.nc = raw, raw
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	err = c.open(ctx)
	if !stop() && err == nil {
		err = c.transportError(ctx, "connecting to", net.ErrClosed)
	}
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	r.log.Debug("connected", "addr", r.addr, "tls", r.cfg.TLS, "pipelining", c.has("PIPELINING"), "size", c.maxSize)
	return c, nil
}

func (c *conn) open(ctx context.Context) error {
	cfg := &c.r.cfg
	if cfg.TLS == TLSImplicit {
		if err := c.handshake(ctx); err != nil {
			return err
		}
	} else {
		c.text = textproto.NewConn(c.nc)
	}
	code, msg, err := c.readReply(ctx)
	if err != nil {
		return c.transportError(ctx, "reading the greeting of", err)
	}
	if code != 220 {
		return c.unexpected(code, msg, "greeting")
	}
	if err := c.hello(ctx); err != nil {
		return err
	}
	if cfg.TLS == TLSStartTLS {
		if !c.has("STARTTLS") {
			return &Error{Message: fmt.Sprintf("relay %q (%s) does not offer STARTTLS and tls = %q requires it; use tls = %q only for a relay on a trusted local network", cfg.Name, c.r.addr, TLSStartTLS, TLSNone)}
		}
		if err := c.writeLines(ctx, "STARTTLS"); err != nil {
			return c.transportError(ctx, "starting TLS with", err)
		}
		code, msg, err := c.readReply(ctx)
		if err != nil {
			return c.transportError(ctx, "starting TLS with", err)
		}
		if code != 220 {
			return c.unexpected(code, msg, "STARTTLS")
		}
		if c.text.R.Buffered() > 0 {
			// Anything sent before the handshake would be read as if it came over TLS (CVE-2011-0411).
			return &Error{Message: fmt.Sprintf("relay %q sent data after its STARTTLS reply: refusing the connection", cfg.Name)}
		}
		if err := c.handshake(ctx); err != nil {
			return err
		}
		if err := c.hello(ctx); err != nil {
			return err
		}
	}
	if cfg.Username != "" {
		return c.auth(ctx)
	}
	return nil
}

// handshake starts TLS over the raw connection.
func (c *conn) handshake(ctx context.Context) error {
	tc := tls.Client(c.raw, c.r.tls)
	if err := c.raw.SetDeadline(c.deadline(ctx)); err != nil {
		return c.transportError(ctx, "starting TLS with", err)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return c.transportError(ctx, "starting TLS with", err)
	}
	c.nc = tc
	c.text = textproto.NewConn(tc)
	return nil
}

// hello sends EHLO, falling back to HELO (no extensions) when the relay does not know EHLO.
func (c *conn) hello(ctx context.Context) error {
	if err := c.writeLines(ctx, "EHLO "+c.r.cfg.HELO); err != nil {
		return c.transportError(ctx, "greeting", err)
	}
	code, msg, err := c.readReplyLines(ctx)
	if err != nil {
		return c.transportError(ctx, "greeting", err)
	}
	c.ext, c.maxSize = map[string]string{}, 0
	if code == 250 {
		for _, line := range strings.Split(msg, "\n")[1:] {
			kw, param, _ := strings.Cut(strings.TrimSpace(line), " ")
			if k, v, ok := strings.Cut(kw, "="); ok && strings.EqualFold(k, "AUTH") { // "AUTH=LOGIN" of old servers
				kw, param = k, v+" "+param
			}
			c.ext[strings.ToUpper(kw)] = strings.TrimSpace(param)
		}
		if n, err := strconv.ParseInt(c.ext["SIZE"], 10, 64); err == nil && n > 0 {
			c.maxSize = n
		}
		return nil
	}
	if code/100 != 5 {
		return c.unexpected(code, strings.ReplaceAll(msg, "\n", " "), "EHLO")
	}
	if err := c.writeLines(ctx, "HELO "+c.r.cfg.HELO); err != nil {
		return c.transportError(ctx, "greeting", err)
	}
	if code, msg, err = c.readReply(ctx); err != nil {
		return c.transportError(ctx, "greeting", err)
	}
	if code != 250 {
		return c.unexpected(code, msg, "HELO")
	}
	return nil
}

func (c *conn) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// auth authenticates with PLAIN, or LOGIN when only that is offered. Credentials are never logged.
func (c *conn) auth(ctx context.Context) error {
	cfg := &c.r.cfg
	if _, isTLS := c.nc.(*tls.Conn); !isTLS && !isLoopback(cfg.Host) {
		return &Error{Message: fmt.Sprintf("refusing to authenticate to relay %q over a plain connection", cfg.Name)}
	}
	params, ok := c.ext["AUTH"]
	if !ok {
		return &Error{Message: fmt.Sprintf("relay %q does not offer AUTH: remove username and password, or enable authentication on the relay", cfg.Name)}
	}
	mechs := map[string]bool{}
	for _, m := range strings.Fields(strings.ToUpper(params)) {
		mechs[m] = true
	}
	enc := base64.StdEncoding.EncodeToString
	var steps []string // what to send after "AUTH MECH", one per 334 challenge
	var first string
	switch {
	case mechs["PLAIN"]:
		ir := enc([]byte("\x00" + cfg.Username + "\x00" + cfg.Password))
		first, steps = "AUTH PLAIN "+ir, []string{ir}
	case mechs["LOGIN"]:
		first, steps = "AUTH LOGIN", []string{enc([]byte(cfg.Username)), enc([]byte(cfg.Password))}
	default:
		return &Error{Message: fmt.Sprintf("relay %q offers AUTH %s but neither PLAIN nor LOGIN", cfg.Name, params)}
	}
	line := first
	for {
		if err := c.writeLines(ctx, line); err != nil {
			return c.transportError(ctx, "authenticating with", err)
		}
		code, msg, err := c.readReply(ctx)
		if err != nil {
			return c.transportError(ctx, "authenticating with", err)
		}
		switch {
		case code == 235:
			return nil
		case code == 334 && len(steps) > 0:
			line, steps = steps[0], steps[1:]
		case code == 334:
			_ = c.writeLines(ctx, "*") // cancel an exchange longer than the mechanism's
			return &Error{Message: fmt.Sprintf("relay %q asked for more than %s authentication needs", cfg.Name, strings.Fields(first)[1])}
		default:
			return c.unexpected(code, msg, "AUTH")
		}
	}
}

// step kinds of a transaction.
const (
	stepRSET = iota
	stepMAIL
	stepRCPT
	stepDATA
)

type step struct {
	kind int
	line string
	rcpt string
}

// send runs one mail transaction. keep reports whether the connection can be reused. A reused connection found
// dead at its first command yields a *staleError.
func (c *conn) send(ctx context.Context, env envelope, msg message) (reply Reply, keep bool, err error) {
	stop := context.AfterFunc(ctx, func() { _ = c.raw.Close() })
	reply, keep, err = c.transact(ctx, env, msg)
	if !stop() {
		keep = false // ctx ended: its AfterFunc closed the connection
	}
	return reply, keep, err
}

func (c *conn) transact(ctx context.Context, env envelope, msg message) (Reply, bool, error) {
	if env.utf8 && !c.has("SMTPUTF8") {
		return Reply{}, true, replyError(553, fmt.Sprintf("5.6.7 an address is not ASCII and relay %q does not support SMTPUTF8", c.r.cfg.Name))
	}
	if c.maxSize > 0 && msg.size > c.maxSize {
		return Reply{}, true, replyError(552, fmt.Sprintf("5.3.4 message of %d bytes exceeds the relay's limit of %d bytes", msg.size, c.maxSize))
	}
	mail := "MAIL FROM:<" + env.from + ">"
	if c.has("SIZE") {
		mail += " SIZE=" + strconv.FormatInt(msg.size, 10)
	}
	if msg.eightBit && c.has("8BITMIME") {
		mail += " BODY=8BITMIME"
	}
	if env.utf8 {
		mail += " SMTPUTF8"
	}
	steps := make([]step, 0, len(env.to)+3)
	reused := c.uses > 0
	if reused {
		steps = append(steps, step{kind: stepRSET, line: "RSET"})
	}
	steps = append(steps, step{kind: stepMAIL, line: mail})
	for _, to := range env.to {
		steps = append(steps, step{kind: stepRCPT, line: "RCPT TO:<" + to + ">", rcpt: to})
	}
	steps = append(steps, step{kind: stepDATA, line: "DATA"})
	c.uses++

	batch := 1
	if c.has("PIPELINING") {
		batch = maxPipeline
	}
	var (
		mailErr, rcptErr *Error
		closing          *Error // the relay said 421: it is closing the connection
		rejected         []Rejection
		accepted         int
		dataCode         int
		dataMsg          string
		first            = true
	)
	// ioError turns a failed read or write into the error to return: a *staleError when it is the first command of
	// a reused connection and the relay had simply closed it.
	ioError := func(err error) error {
		e := c.transportError(ctx, "sending to", err)
		if first && reused && isConnClosed(err) {
			return &staleError{report: e, err: err}
		}
		return e
	}
	lines := make([]string, 0, batch)
	for i := 0; i < len(steps); {
		if mailErr != nil || closing != nil || (steps[i].kind == stepDATA && accepted == 0) {
			break
		}
		j := min(i+batch, len(steps))
		lines = lines[:0]
		for _, s := range steps[i:j] {
			lines = append(lines, s.line)
		}
		if err := c.writeLines(ctx, lines...); err != nil {
			return Reply{}, false, ioError(err)
		}
		for _, s := range steps[i:j] {
			code, text, err := c.readReply(ctx)
			if err != nil {
				return Reply{}, false, ioError(err)
			}
			if code == 421 {
				if first && reused {
					return Reply{}, false, &staleError{report: replyError(code, text), err: io.EOF}
				}
				closing = replyError(code, text)
				break // the relay sends nothing more
			}
			first = false
			switch s.kind {
			case stepRSET:
				if code/100 != 2 {
					return Reply{}, false, c.unexpected(code, text, "RSET")
				}
			case stepMAIL:
				if code/100 != 2 {
					mailErr = c.refusal(code, text, "MAIL FROM")
				}
			case stepRCPT:
				if code/100 == 2 {
					accepted++
					continue
				}
				rejected = append(rejected, Rejection{Recipient: s.rcpt, Code: code, Message: text})
				if rcptErr == nil {
					rcptErr = c.refusal(code, text, "RCPT TO")
				}
			case stepDATA:
				dataCode, dataMsg = code, text
			}
		}
		i = j
	}
	// A relay that says 354 although no transaction is open waits for data we will not send: drop the connection.
	keep := dataCode != 354
	switch {
	case mailErr != nil:
		return Reply{}, keep && mailErr.Code != 0, mailErr
	case closing != nil:
		return Reply{}, false, closing
	case accepted == 0:
		return Reply{}, keep && rcptErr.Code != 0, rcptErr
	case dataCode != 354:
		e := c.refusal(dataCode, dataMsg, "DATA")
		return Reply{}, e.Code != 0, e
	}

	for off := 0; off < len(msg.wire); off += dataChunk {
		if err := c.nc.SetWriteDeadline(c.deadline(ctx)); err != nil {
			return Reply{}, false, c.transportError(ctx, "sending data to", err)
		}
		if _, err := c.nc.Write(msg.wire[off:min(off+dataChunk, len(msg.wire))]); err != nil {
			return Reply{}, false, c.transportError(ctx, "sending data to", err)
		}
	}
	code, text, err := c.readReply(ctx)
	if err != nil {
		return Reply{}, false, c.transportError(ctx, "reading the reply to the data from", err)
	}
	if code/100 != 2 {
		e := c.refusal(code, text, "end of data")
		return Reply{}, code != 421 && e.Code != 0, e
	}
	return Reply{Code: code, Message: text, Rejected: rejected}, true, nil
}

// refusal is the *Error for a refusal: the relay's 4xx/5xx reply, or a transport error for a reply that makes no
// sense at that point (the connection is then not reused).
func (c *conn) refusal(code int, text, what string) *Error {
	if code >= 400 && code < 600 {
		return replyError(code, text)
	}
	return c.unexpected(code, text, what)
}

// unexpected is the error for a reply that is not the one the protocol calls for: the relay's refusal when it is
// 4xx/5xx, otherwise a transport error.
func (c *conn) unexpected(code int, text, what string) *Error {
	if code >= 400 && code < 600 {
		return replyError(code, text)
	}
	return &Error{Message: fmt.Sprintf("relay %q answered %s with an unexpected %d %s", c.r.cfg.Name, what, code, text)}
}

// writeLines writes the lines, each ended by CRLF, in one flush.
func (c *conn) writeLines(ctx context.Context, lines ...string) error {
	if err := c.nc.SetWriteDeadline(c.deadline(ctx)); err != nil {
		return err
	}
	for _, l := range lines {
		_, _ = c.text.W.WriteString(l)
		_, _ = c.text.W.WriteString("\r\n")
	}
	return c.text.W.Flush()
}

// readReply reads one (possibly multi-line) reply; the lines of its text are joined with spaces.
func (c *conn) readReply(ctx context.Context) (int, string, error) {
	code, msg, err := c.readReplyLines(ctx)
	return code, strings.ReplaceAll(msg, "\n", " "), err
}

// readReplyLines reads one reply; the lines of its text are joined with "\n".
func (c *conn) readReplyLines(ctx context.Context) (int, string, error) {
	if err := c.nc.SetReadDeadline(c.deadline(ctx)); err != nil {
		return 0, "", err
	}
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		return 0, "", err
	}
	return code, msg, nil
}

// deadline is min(ctx deadline, now + Timeout).
func (c *conn) deadline(ctx context.Context) time.Time {
	d := time.Now().Add(c.r.cfg.Timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// transportError is the *Error for a failed dial, read or write. When the ctx ended, its error is the cause.
func (c *conn) transportError(ctx context.Context, op string, err error) *Error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	} else if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		err = context.DeadlineExceeded // the connection deadline fired a moment before the ctx's timer
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		err = fmt.Errorf("no answer within %s: %w", c.r.cfg.Timeout, err)
	} else if pe, ok := err.(textproto.ProtocolError); ok {
		err = fmt.Errorf("malformed reply: %w", pe)
	}
	return &Error{Message: fmt.Sprintf("%s relay %q (%s): %v", op, c.r.cfg.Name, c.r.addr, err), cause: err}
}

// isConnClosed reports whether err means the peer had closed or reset the connection.
func isConnClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// quit ends the session politely and closes the connection.
func (c *conn) quit() {
	ctx := context.Background()
	if c.writeLines(ctx, "QUIT") == nil {
		_, _, _ = c.readReply(ctx)
	}
	c.close()
}

func (c *conn) close() {
	_ = c.nc.Close()
	_ = c.raw.Close()
}
