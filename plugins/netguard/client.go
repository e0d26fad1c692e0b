package netguard

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Request is an HTTP request a plugin asks the host to make. Method defaults to GET; URL must be absolute http or
// https without userinfo.
type Request struct {
	Method string
	URL    string
	Header map[string][]string
	Body   []byte
}

// Response is the answer after redirects. FinalURL is the URL that produced it.
type Response struct {
	Status   int
	Header   map[string][]string
	Body     []byte
	FinalURL string
}

// Resolver resolves host names to addresses; *net.Resolver (and net.DefaultResolver) implements it. network is
// "ip", "ip4" or "ip6".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Option configures a Client beyond its Grant.
type Option func(*Client)

// WithResolver replaces the system resolver, for tests that make a granted name resolve where they need it.
func WithResolver(r Resolver) Option {
	return func(c *Client) { c.resolver = r }
}

// withRootCAs trusts pool instead of the system roots (tests with httptest TLS servers).
func withRootCAs(pool *x509.CertPool) Option {
	return func(c *Client) { c.rootCAs = pool }
}

// withTreatAsPublic makes the address check pass for the addresses f accepts, so tests can stand a loopback server
// in for a public one while everything else stays forbidden.
func withTreatAsPublic(f func(netip.AddrPort) bool) Option {
	return func(c *Client) { c.treatAsPublic = f }
}

// Client makes HTTP requests under one Grant. It is safe for concurrent use. It has no cookie jar, ignores proxy
// settings from the environment, and checks the grant on every request and every redirect and the destination
// address on every dial.
type Client struct {
	log          hclog.Logger
	origins      []origin
	allowPrivate bool
	maxRequest   int64
	maxResponse  int64
	timeout      time.Duration
	maxRedirects int
	resolver     Resolver
	transport    *http.Transport
	dialer       net.Dialer

	rootCAs       *x509.CertPool
	treatAsPublic func(netip.AddrPort) bool
}

// NewClient builds a client for g, applying the defaults to zero fields. Entries of g.Hosts that do not parse are
// logged and grant nothing (ParseGrant reports them to the operator first). log may be nil.
func NewClient(g Grant, log hclog.Logger, opts ...Option) *Client {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Client{
		log:          log.Named("netguard"),
		allowPrivate: g.AllowPrivate,
		maxRequest:   g.MaxRequest,
		maxResponse:  g.MaxResponse,
		timeout:      g.Timeout,
		maxRedirects: g.MaxRedirects,
		resolver:     net.DefaultResolver,
	}
	if c.maxRequest <= 0 {
		c.maxRequest = DefaultMaxRequest
	}
	if c.maxResponse <= 0 {
		c.maxResponse = DefaultMaxResponse
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxRedirects == 0 {
		c.maxRedirects = DefaultMaxRedirects
	}
	for _, h := range g.Hosts {
		o, err := parseOrigin(h)
		if err != nil {
			c.log.Error("ignoring invalid grant entry", "entry", h, "error", err)
			continue
		}
		c.origins = append(c.origins, o)
	}
	for _, opt := range opts {
		opt(c)
	}
	c.dialer = net.Dialer{
		KeepAlive: 30 * time.Second,
		// Second line of defence: whatever address the socket is about to connect to is checked again.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("unparseable dial address: %w", ErrForbiddenAddress)
			}
			return c.checkAddr(ap, true)
		},
	}
	c.transport = &http.Transport{
		Proxy:                  nil, // never from the environment
		DialContext:            c.dialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.rootCAs},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    c.timeout,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 256 << 10,
	}
	return c
}

// CloseIdleConnections closes pooled connections; call it when the plugin is unloaded.
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

func (c *Client) granted(o origin) bool {
	for _, g := range c.origins {
		if g.matches(o) {
			return true
		}
	}
	return false
}

// dialContext resolves the host, checks every resolved address before dialing any, and dials the checked
// addresses (never the name again), so a name cannot rebind between check and connect.
func (c *Client) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: bad port %q", host, portStr)
	}
	var addrs []netip.Addr
	literal := false
	if a, err := netip.ParseAddr(host); err == nil {
		addrs, literal = []netip.Addr{a}, true
	} else {
		ipNet := "ip"
		switch network {
		case "tcp4":
			ipNet = "ip4"
		case "tcp6":
			ipNet = "ip6"
		}
		if addrs, err = c.resolver.LookupNetIP(ctx, ipNet, host); err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("resolving %s: no addresses", host)
		}
	}
	for _, a := range addrs {
		if err := c.checkAddr(netip.AddrPortFrom(a, uint16(port)), literal); err != nil {
			return nil, fmt.Errorf("dialing %s: %w", host, err)
		}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := c.dialer.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var allowedMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// hopByHop headers concern one connection, not the request: they are dropped, with any header a Connection header
// names. Content-Length is computed from the body.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true,
}

// crossOriginSensitive headers are not forwarded when a redirect changes origin.
var crossOriginSensitive = []string{"Authorization", "Cookie", "Proxy-Authorization", "Www-Authenticate"}

func (c *Client) refuse(o origin, reason string, err error) error {
	c.log.Warn("request refused", "origin", o.String(), "reason", reason)
	return err
}

// Do makes the request under the grant, following redirects that pass the same checks, and returns the final
// response with its whole body. Refusals wrap ErrNotGranted, ErrForbiddenAddress, ErrTooLarge,
// ErrTooManyRedirects or ErrInvalidRequest; a timeout wraps context.DeadlineExceeded. Errors name origins, never
// full URLs.
func (c *Client) Do(ctx context.Context, r Request) (Response, error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	if !allowedMethods[method] {
		return Response{}, fmt.Errorf("method %q not allowed: %w", method, ErrInvalidRequest)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return Response{}, fmt.Errorf("parsing request URL: %w: %w", urlError(err), ErrInvalidRequest)
	}
	o, err := requestOrigin(u)
	if err != nil {
		return Response{}, fmt.Errorf("request URL: %w: %w", err, ErrInvalidRequest)
	}
	if !c.granted(o) {
		return Response{}, c.refuse(o, "origin not granted", fmt.Errorf("requesting %s: %w", o, ErrNotGranted))
	}
	if int64(len(r.Body)) > c.maxRequest {
		return Response{}, c.refuse(o, "request body too large",
			fmt.Errorf("requesting %s: request body of %d bytes is over the %d-byte cap: %w", o, len(r.Body), c.maxRequest, ErrTooLarge))
	}
	header, host, err := c.requestHeader(r.Header, o)
	if err != nil {
		return Response{}, c.refuse(o, "bad header", fmt.Errorf("requesting %s: %w", o, err))
	}
	u.Fragment, u.RawFragment = "", ""

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	body := r.Body
	for redirects := 0; ; redirects++ {
		req := &http.Request{Method: method, URL: u, Header: header.Clone(), Host: host}
		if body != nil || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
			b := body
			req.ContentLength = int64(len(b))
			req.Body = io.NopCloser(bytes.NewReader(b))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
			if len(b) == 0 {
				req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
			}
		}
		resp, err := c.transport.RoundTrip(req.WithContext(ctx))
		if err != nil {
			if errors.Is(err, ErrForbiddenAddress) {
				c.log.Warn("request refused", "origin", o.String(), "reason", "forbidden address")
			}
			return Response{}, fmt.Errorf("requesting %s: %w", o, withCtxErr(ctx, err))
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" || c.maxRedirects < 0 {
			out, err := c.readResponse(ctx, resp, o)
			if err != nil {
				return Response{}, err
			}
			out.FinalURL = u.String()
			c.log.Debug("request done", "method", method, "origin", o.String(), "status", out.Status,
				"bytes", len(out.Body), "redirects", redirects, "duration", time.Since(start))
			return out, nil
		}
		drain(resp.Body)
		if redirects >= c.maxRedirects {
			return Response{}, c.refuse(o, "too many redirects",
				fmt.Errorf("requesting %s: stopped after %d redirects: %w", o, redirects, ErrTooManyRedirects))
		}
		next, err := u.Parse(loc)
		if err != nil {
			return Response{}, fmt.Errorf("redirect from %s: bad Location: %w: %w", o, urlError(err), ErrInvalidRequest)
		}
		no, err := requestOrigin(next)
		if err != nil {
			return Response{}, fmt.Errorf("redirect from %s: bad Location: %w: %w", o, err, ErrInvalidRequest)
		}
		if !c.granted(no) {
			what := "redirect"
			if o.scheme == "https" && no.scheme == "http" {
				what = "redirect downgrading to http"
			}
			return Response{}, c.refuse(no, what+" not granted",
				fmt.Errorf("%s from %s to %s: %w", what, o, no, ErrNotGranted))
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
			if method != http.MethodGet && method != http.MethodHead {
				method = http.MethodGet
			}
			body = nil
			for _, h := range []string{"Content-Type", "Content-Encoding", "Content-Language"} {
				header.Del(h)
			}
		}
		if no != o {
			for _, h := range crossOriginSensitive {
				header.Del(h)
			}
			host = ""
		}
		next.Fragment, next.RawFragment = "", ""
		c.log.Debug("following redirect", "from", o.String(), "to", no.String(), "status", resp.StatusCode)
		u, o = next, no
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// drain reads a little of a body we discard so the connection can be reused, then closes it.
func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	_ = rc.Close()
}

// withCtxErr makes a failure caused by the deadline or a cancellation match context errors with errors.Is.
func withCtxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %v", cerr, err)
	}
	return err
}

func (c *Client) readResponse(ctx context.Context, resp *http.Response, o origin) (Response, error) {
	defer resp.Body.Close()
	if resp.ContentLength > c.maxResponse {
		return Response{}, c.refuse(o, "response body too large",
			fmt.Errorf("response from %s: Content-Length %d is over the %d-byte cap: %w", o, resp.ContentLength, c.maxResponse, ErrTooLarge))
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength) + 1)
	}
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, c.maxResponse+1)); err != nil {
		return Response{}, fmt.Errorf("reading response from %s: %w", o, withCtxErr(ctx, err))
	}
	if int64(buf.Len()) > c.maxResponse {
		return Response{}, c.refuse(o, "response body too large",
			fmt.Errorf("response from %s: body over the %d-byte cap: %w", o, c.maxResponse, ErrTooLarge))
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}, nil
}

// requestHeader validates and copies the caller's headers: names must be tokens, values free of control characters
// (CR, LF, NUL...), hop-by-hop headers are dropped, and a Host header must name a granted origin; it is returned
// separately as the Host to send ("" for the URL's).
func (c *Client) requestHeader(in map[string][]string, o origin) (http.Header, string, error) {
	h := make(http.Header, len(in))
	drop := map[string]bool{}
	for k, vs := range in {
		if !validHeaderName(k) {
			return nil, "", fmt.Errorf("header name %q is not a valid token: %w", k, ErrInvalidRequest)
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, "", fmt.Errorf("header %q: value contains a control character (CR, LF, NUL...): %w", k, ErrInvalidRequest)
			}
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if ck == "Connection" {
			for _, v := range vs {
				for _, f := range strings.Split(v, ",") {
					drop[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(f))] = true
				}
			}
		}
		h[ck] = append(h[ck], vs...)
	}
	host := ""
	if vs := h["Host"]; len(vs) > 0 {
		if len(vs) > 1 {
			return nil, "", fmt.Errorf("more than one Host header: %w", ErrInvalidRequest)
		}
		ho, err := hostHeaderOrigin(o.scheme, vs[0])
		if err != nil {
			return nil, "", fmt.Errorf("%w: %w", err, ErrInvalidRequest)
		}
		if ho != o {
			if !c.granted(ho) {
				return nil, "", fmt.Errorf("host header %s: %w", ho, ErrNotGranted)
			}
			host = vs[0]
		}
		delete(h, "Host")
	}
	for k := range h {
		if hopByHop[k] || drop[k] {
			delete(h, k)
		}
	}
	return h, host, nil
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
