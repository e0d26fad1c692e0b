package netguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestDoGranted(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Token", r.Header.Get("X-Token"))
		w.Header().Set("X-Content-Type", r.Header.Get("Content-Type"))
		w.Header().Set("X-Query", r.URL.RawQuery)
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, "got %q", body)
	})
	c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true}, testLogger(t))
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"GET", Request{URL: srv.URL + "/v1/items?page=2", Header: map[string][]string{"X-Token": {"t1"}}}, `got ""`},
		{"POST", Request{Method: "POST", URL: srv.URL + "/v1/items?page=2", Body: []byte(`{"a":1}`),
			Header: map[string][]string{"X-Token": {"t1"}, "content-type": {"application/json"}}}, `got "{\"a\":1}"`},
		{"PUT empty body", Request{Method: "PUT", URL: srv.URL + "/v1/items?page=2", Header: map[string][]string{"X-Token": {"t1"}}}, `got ""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Do(t.Context(), tc.req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			wantMethod := tc.req.Method
			if wantMethod == "" {
				wantMethod = "GET"
			}
			h := http.Header(resp.Header)
			if resp.Status != http.StatusCreated || string(resp.Body) != tc.want || h.Get("X-Method") != wantMethod ||
				h.Get("X-Token") != "t1" || h.Get("X-Query") != "page=2" || resp.FinalURL != tc.req.URL {
				t.Fatalf("got %d %q headers %v final %q", resp.Status, resp.Body, resp.Header, resp.FinalURL)
			}
			if ct := tc.req.Header["content-type"]; ct != nil && h.Get("X-Content-Type") != ct[0] {
				t.Fatalf("Content-Type not forwarded: %v", resp.Header)
			}
		})
	}
}

func TestDoRefusesBeforeNetwork(t *testing.T) {
	srv := newServer(t, ok)
	tlsSrv := newTLSServer(t, ok)
	other := strconv.Itoa(mustAtoi(t, srv.port()) + 1)
	cases := []struct {
		name  string
		grant []string
		url   string
		want  error
	}{
		{"origin not granted", []string{"https://api.example.com"}, srv.URL + "/", ErrNotGranted},
		{"empty grant", nil, srv.URL + "/", ErrNotGranted},
		{"port mismatch", []string{"http://127.0.0.1:" + other}, srv.URL + "/", ErrNotGranted},
		{"default port does not cover another", []string{"http://127.0.0.1"}, srv.URL + "/", ErrNotGranted},
		{"scheme mismatch http granted, https asked", []string{srv.URL}, "https://127.0.0.1:" + srv.port() + "/", ErrNotGranted},
		{"scheme mismatch https granted, http asked", []string{tlsSrv.URL}, "http://127.0.0.1:" + tlsSrv.port() + "/", ErrNotGranted},
		{"wildcard does not cover an IP", []string{"http://*.example.com:" + srv.port()}, srv.URL + "/", ErrNotGranted},
		{"ftp scheme", []string{srv.URL}, "ftp://127.0.0.1:" + srv.port() + "/", ErrInvalidRequest},
		{"userinfo in URL", []string{srv.URL}, "http://u:p@127.0.0.1:" + srv.port() + "/", ErrInvalidRequest},
		{"relative URL", []string{srv.URL}, "/v1/items", ErrInvalidRequest},
		{"control character in URL", []string{srv.URL}, srv.URL + "/a\r\nX: y", ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(Grant{Hosts: tc.grant, AllowPrivate: true}, testLogger(t))
			_, err := c.Do(t.Context(), Request{URL: tc.url})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Do(%s) err = %v, want %v", tc.url, err, tc.want)
			}
			if n := srv.hits.Load() + tlsSrv.hits.Load(); n != 0 {
				t.Fatalf("servers received %d requests, want none", n)
			}
		})
	}
	for _, m := range []string{"TRACE", "CONNECT", "get", "FOO"} {
		t.Run("method "+m, func(t *testing.T) {
			c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true}, testLogger(t))
			if _, err := c.Do(t.Context(), Request{Method: m, URL: srv.URL}); !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("method %s: err = %v, want ErrInvalidRequest", m, err)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDoWildcard(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Host)) })
	res := mapResolver{"api.example.test": {"127.0.0.1"}, "a.b.example.test": {"127.0.0.1"}, "example.test": {"127.0.0.1"}}
	c := NewClient(Grant{Hosts: []string{"http://*.example.test:" + srv.port()}, AllowPrivate: true}, testLogger(t), WithResolver(res))
	for _, host := range []string{"api.example.test", "a.b.example.test"} {
		resp, err := c.Do(t.Context(), Request{URL: srv.at(host) + "/"})
		if err != nil || string(resp.Body) != host+":"+srv.port() {
			t.Fatalf("%s: %v %q", host, err, resp.Body)
		}
	}
	if _, err := c.Do(t.Context(), Request{URL: srv.at("example.test") + "/"}); !errors.Is(err, ErrNotGranted) {
		t.Fatalf("bare apex: err = %v, want ErrNotGranted", err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("hits = %d, want 2", n)
	}
}

func TestDoRedirects(t *testing.T) {
	type seen struct{ method, body, auth, cookie string }
	newTarget := func(t *testing.T) (*server, *seen) {
		var s seen
		return newServer(t, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			s = seen{r.Method, string(b), r.Header.Get("Authorization"), r.Header.Get("Cookie")}
			_, _ = w.Write([]byte("landed"))
		}), &s
	}
	redirectTo := func(code int, loc func() string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, loc(), code)
		}
	}

	t.Run("to granted origin is followed", func(t *testing.T) {
		b, got := newTarget(t)
		a := newServer(t, redirectTo(http.StatusFound, func() string { return b.URL + "/landing?x=1" }))
		c := NewClient(Grant{Hosts: []string{a.URL, b.URL}, AllowPrivate: true}, testLogger(t))
		resp, err := c.Do(t.Context(), Request{URL: a.URL + "/start", Header: map[string][]string{"Authorization": {"Bearer s3"}, "Cookie": {"c=1"}}})
		if err != nil || string(resp.Body) != "landed" || resp.FinalURL != b.URL+"/landing?x=1" {
			t.Fatalf("Do: %v %q final %q", err, resp.Body, resp.FinalURL)
		}
		if got.auth != "" || got.cookie != "" {
			t.Fatalf("credentials forwarded across origins: %+v", *got)
		}
	})

	t.Run("same origin keeps credentials, relative Location", func(t *testing.T) {
		var auth string
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/start" {
				http.Redirect(w, r, "/next", http.StatusFound)
				return
			}
			auth = r.Header.Get("Authorization")
		})
		c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true}, testLogger(t))
		if _, err := c.Do(t.Context(), Request{URL: srv.URL + "/start", Header: map[string][]string{"Authorization": {"Bearer s3"}}}); err != nil || auth != "Bearer s3" {
			t.Fatalf("Do: %v, auth %q", err, auth)
		}
	})

	t.Run("to non-granted origin is refused and never reached", func(t *testing.T) {
		b, _ := newTarget(t)
		a := newServer(t, redirectTo(http.StatusFound, func() string { return b.URL + "/steal" }))
		c := NewClient(Grant{Hosts: []string{a.URL}, AllowPrivate: true}, testLogger(t))
		_, err := c.Do(t.Context(), Request{URL: a.URL + "/start"})
		if !errors.Is(err, ErrNotGranted) {
			t.Fatalf("err = %v, want ErrNotGranted", err)
		}
		if a.hits.Load() != 1 || b.hits.Load() != 0 {
			t.Fatalf("hits a=%d b=%d, want 1 and 0", a.hits.Load(), b.hits.Load())
		}
	})

	t.Run("chain over the limit", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			http.Redirect(w, r, fmt.Sprintf("/loop?n=%d", n+1), http.StatusTemporaryRedirect)
		})
		c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true, MaxRedirects: 3}, testLogger(t))
		_, err := c.Do(t.Context(), Request{URL: srv.URL + "/loop?n=0"})
		if !errors.Is(err, ErrTooManyRedirects) {
			t.Fatalf("err = %v, want ErrTooManyRedirects", err)
		}
		if n := srv.hits.Load(); n != 4 {
			t.Fatalf("hits = %d, want 4 (first request + 3 redirects)", n)
		}
	})

	t.Run("chain at the limit", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			if n < 3 {
				http.Redirect(w, r, fmt.Sprintf("/loop?n=%d", n+1), http.StatusMovedPermanently)
			}
		})
		c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true, MaxRedirects: 3}, testLogger(t))
		if _, err := c.Do(t.Context(), Request{URL: srv.URL + "/loop?n=0"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("negative MaxRedirects returns the 3xx", func(t *testing.T) {
		b, _ := newTarget(t)
		a := newServer(t, redirectTo(http.StatusFound, func() string { return b.URL }))
		c := NewClient(Grant{Hosts: []string{a.URL, b.URL}, AllowPrivate: true, MaxRedirects: -1}, testLogger(t))
		resp, err := c.Do(t.Context(), Request{URL: a.URL})
		if err != nil || resp.Status != http.StatusFound || http.Header(resp.Header).Get("Location") != b.URL || b.hits.Load() != 0 {
			t.Fatalf("Do: %v %d %v", err, resp.Status, resp.Header)
		}
	})

	for _, tc := range []struct {
		code             int
		method, wantBody string
	}{
		{http.StatusSeeOther, "GET", ""},
		{http.StatusFound, "GET", ""},
		{http.StatusTemporaryRedirect, "POST", "payload"},
		{http.StatusPermanentRedirect, "POST", "payload"},
	} {
		t.Run(fmt.Sprintf("POST then %d", tc.code), func(t *testing.T) {
			b, got := newTarget(t)
			a := newServer(t, redirectTo(tc.code, func() string { return b.URL }))
			c := NewClient(Grant{Hosts: []string{a.URL, b.URL}, AllowPrivate: true}, testLogger(t))
			if _, err := c.Do(t.Context(), Request{Method: "POST", URL: a.URL, Body: []byte("payload")}); err != nil {
				t.Fatal(err)
			}
			if got.method != tc.method || got.body != tc.wantBody {
				t.Fatalf("target saw %+v, want %s %q", *got, tc.method, tc.wantBody)
			}
		})
	}
}

func TestDoRedirectToPrivateAddress(t *testing.T) {
	// public stands in for an Internet host: the test hook lets its exact address through the check. internal is
	// on loopback like every test server, and must stay unreachable although its name and literal are granted.
	internal := newServer(t, ok)
	for _, loc := range []string{internal.at("internal.example.test") + "/admin", internal.URL + "/admin"} {
		t.Run(loc, func(t *testing.T) {
			public := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, loc, http.StatusFound) })
			res := mapResolver{"public.example.test": {"127.0.0.1"}, "internal.example.test": {"127.0.0.1"}}
			g := Grant{Hosts: []string{public.at("public.example.test"), internal.at("internal.example.test"), internal.URL}}
			c := NewClient(g, testLogger(t), WithResolver(res),
				withTreatAsPublic(func(ap netip.AddrPort) bool { return ap == public.addrPort() }))
			_, err := c.Do(t.Context(), Request{URL: public.at("public.example.test") + "/"})
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("err = %v, want ErrForbiddenAddress", err)
			}
			if public.hits.Load() != 1 || internal.hits.Load() != 0 {
				t.Fatalf("hits public=%d internal=%d, want 1 and 0", public.hits.Load(), internal.hits.Load())
			}
		})
	}
}

func TestDoDowngradeRedirect(t *testing.T) {
	plain := newServer(t, ok)
	secure := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, plain.URL+"/", http.StatusFound) })
	pool := x509.NewCertPool()
	pool.AddCert(secure.Certificate())

	c := NewClient(Grant{Hosts: []string{secure.URL}, AllowPrivate: true}, testLogger(t), withRootCAs(pool))
	_, err := c.Do(t.Context(), Request{URL: secure.URL + "/"})
	if !errors.Is(err, ErrNotGranted) || !strings.Contains(err.Error(), "downgrading") {
		t.Fatalf("err = %v, want ErrNotGranted for a downgrade", err)
	}
	if secure.hits.Load() != 1 || plain.hits.Load() != 0 {
		t.Fatalf("hits secure=%d plain=%d, want 1 and 0", secure.hits.Load(), plain.hits.Load())
	}

	c = NewClient(Grant{Hosts: []string{secure.URL, plain.URL}, AllowPrivate: true}, testLogger(t), withRootCAs(pool))
	if resp, err := c.Do(t.Context(), Request{URL: secure.URL + "/"}); err != nil || string(resp.Body) != "ok" {
		t.Fatalf("with the http origin granted: %v %q", err, resp.Body)
	}
}

func TestDoTLS(t *testing.T) {
	t.Run("system roots only", func(t *testing.T) {
		srv := newTLSServer(t, ok)
		c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true}, testLogger(t))
		var uerr x509.UnknownAuthorityError
		if _, err := c.Do(t.Context(), Request{URL: srv.URL}); !errors.As(err, &uerr) {
			t.Fatalf("err = %v, want an unknown authority error", err)
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		srv := &server{}
		srv.Server = httptest.NewUnstartedServer(http.HandlerFunc(ok))
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		pool := x509.NewCertPool()
		pool.AddCert(srv.Certificate())
		c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true}, testLogger(t), withRootCAs(pool))
		if _, err := c.Do(t.Context(), Request{URL: srv.URL}); err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Fatalf("err = %v, want a protocol version failure", err)
		}
	})
}

func TestDoRebindingRefused(t *testing.T) {
	srv := newServer(t, ok)
	cases := []struct {
		name         string
		addrs        []string
		allowPrivate bool
	}{
		{"loopback", []string{"127.0.0.1"}, false},
		{"IPv6 loopback", []string{"::1"}, false},
		{"cloud metadata", []string{"169.254.169.254"}, false},
		{"cloud metadata IPv6", []string{"fd00:ec2::254"}, false},
		{"private", []string{"10.0.0.1"}, false},
		{"IPv4-mapped loopback", []string{"::ffff:127.0.0.1"}, false},
		{"CGNAT", []string{"100.64.0.1"}, false},
		{"unspecified", []string{"0.0.0.0"}, false},
		{"one bad among good", []string{"93.184.215.14", "127.0.0.1"}, false},
		{"metadata through a name even with AllowPrivate", []string{"169.254.169.254"}, true},
		{"unspecified even with AllowPrivate", []string{"0.0.0.0"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := mapResolver{"api.example.test": tc.addrs}
			c := NewClient(Grant{Hosts: []string{srv.at("api.example.test")}, AllowPrivate: tc.allowPrivate}, testLogger(t), WithResolver(res))
			_, err := c.Do(t.Context(), Request{URL: srv.at("api.example.test") + "/"})
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("err = %v, want ErrForbiddenAddress", err)
			}
		})
	}
	t.Run("granted literal loopback without AllowPrivate", func(t *testing.T) {
		c := NewClient(Grant{Hosts: []string{srv.URL}}, testLogger(t))
		if _, err := c.Do(t.Context(), Request{URL: srv.URL + "/"}); !errors.Is(err, ErrForbiddenAddress) {
			t.Fatalf("err = %v, want ErrForbiddenAddress", err)
		}
	})
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("loopback server received %d requests, want none", n)
	}
	t.Run("same name with AllowPrivate reaches the server", func(t *testing.T) {
		res := mapResolver{"api.example.test": {"127.0.0.1"}}
		c := NewClient(Grant{Hosts: []string{srv.at("api.example.test")}, AllowPrivate: true}, testLogger(t), WithResolver(res))
		if _, err := c.Do(t.Context(), Request{URL: srv.at("api.example.test") + "/"}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDoBodyCaps(t *testing.T) {
	const max = 1000
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for i := 0; i < n; i += 100 {
			_, _ = w.Write([]byte(strings.Repeat("x", min(100, n-i))))
			w.(http.Flusher).Flush()
		}
	})
	c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true, MaxRequest: max, MaxResponse: max}, testLogger(t))
	cases := []struct {
		name    string
		query   string
		body    int
		wantErr error
	}{
		{"response at the cap", "n=1000", 0, nil},
		{"response at the cap, chunked", "n=1000&chunked=1", 0, nil},
		{"response over the cap, Content-Length", "n=1001", 0, ErrTooLarge},
		{"response over the cap, chunked", "n=5000&chunked=1", 0, ErrTooLarge},
		{"request at the cap", "n=0", max, nil},
		{"request over the cap", "n=0", max + 1, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.hits.Load()
			resp, err := c.Do(t.Context(), Request{Method: "POST", URL: srv.URL + "/?" + tc.query, Body: make([]byte, tc.body)})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil && resp.Body != nil {
				t.Fatalf("a refused response carries a body of %d bytes", len(resp.Body))
			}
			if tc.body > max && srv.hits.Load() != before {
				t.Fatal("an over-cap request body reached the server")
			}
		})
	}
}

func TestDoTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stall-body" {
			w.Header().Set("Content-Length", "10")
			_, _ = w.Write([]byte("12345"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	redirect := newServer(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, srv.URL+"/", http.StatusFound) })
	c := NewClient(Grant{Hosts: []string{srv.URL, redirect.URL}, AllowPrivate: true, Timeout: 100 * time.Millisecond}, testLogger(t))
	for _, url := range []string{srv.URL + "/", srv.URL + "/stall-body", redirect.URL + "/"} {
		t.Run(url, func(t *testing.T) {
			_, err := c.Do(t.Context(), Request{URL: url})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
		})
	}
	t.Run("caller's cancellation", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := c.Do(ctx, Request{URL: srv.URL + "/"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestDoHeaders(t *testing.T) {
	var got http.Header
	var gotHost string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { got, gotHost = r.Header.Clone(), r.Host })
	res := mapResolver{"api.example.test": {"127.0.0.1"}, "alt.example.test": {"127.0.0.1"}}
	c := NewClient(Grant{Hosts: []string{srv.at("api.example.test"), srv.at("alt.example.test")}, AllowPrivate: true}, testLogger(t), WithResolver(res))
	url := srv.at("api.example.test") + "/"

	refused := []struct {
		name   string
		header map[string][]string
		want   error
	}{
		{"CRLF in value", map[string][]string{"X-A": {"v\r\nX-Injected: 1"}}, ErrInvalidRequest},
		{"LF in value", map[string][]string{"X-A": {"v\nX-Injected: 1"}}, ErrInvalidRequest},
		{"CR in value", map[string][]string{"X-A": {"v\rX"}}, ErrInvalidRequest},
		{"NUL in value", map[string][]string{"X-A": {"v\x00"}}, ErrInvalidRequest},
		{"CRLF in name", map[string][]string{"X-A\r\nX-Injected": {"1"}}, ErrInvalidRequest},
		{"space in name", map[string][]string{"X A": {"1"}}, ErrInvalidRequest},
		{"colon in name", map[string][]string{"X-A:": {"1"}}, ErrInvalidRequest},
		{"empty name", map[string][]string{"": {"1"}}, ErrInvalidRequest},
		{"Host to a non-granted host", map[string][]string{"Host": {"evil.test"}}, ErrNotGranted},
		{"Host to a granted name on another port", map[string][]string{"host": {"alt.example.test:1"}}, ErrNotGranted},
		{"two Host headers", map[string][]string{"Host": {"api.example.test", "alt.example.test"}}, ErrInvalidRequest},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Do(t.Context(), Request{URL: url, Header: tc.header}); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("server received %d requests with refused headers", n)
	}

	t.Run("Host to a granted origin", func(t *testing.T) {
		if _, err := c.Do(t.Context(), Request{URL: url, Header: map[string][]string{"Host": {"alt.example.test:" + srv.port()}}}); err != nil {
			t.Fatal(err)
		}
		if gotHost != "alt.example.test:"+srv.port() {
			t.Fatalf("server saw Host %q", gotHost)
		}
	})

	t.Run("hop-by-hop dropped, tab allowed", func(t *testing.T) {
		h := map[string][]string{
			"Connection": {"X-Secret-Hop"}, "X-Secret-Hop": {"1"}, "Keep-Alive": {"timeout=5"}, "Upgrade": {"websocket"},
			"Proxy-Authorization": {"Basic eA=="}, "Proxy-Connection": {"keep-alive"}, "Te": {"trailers"},
			"Trailer": {"X-T"}, "Transfer-Encoding": {"chunked"}, "Content-Length": {"999"}, "X-Kept": {"a\tb"},
		}
		if _, err := c.Do(t.Context(), Request{Method: "POST", URL: url, Header: h, Body: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"X-Secret-Hop", "Keep-Alive", "Upgrade", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding"} {
			if v := got.Get(k); v != "" {
				t.Errorf("server received hop-by-hop %s: %q", k, v)
			}
		}
		if got.Get("X-Kept") != "a\tb" || got.Get("Content-Length") != "3" {
			t.Errorf("server saw %v", got)
		}
	})
}

func TestDoIgnoresProxyEnvironment(t *testing.T) {
	proxy := newServer(t, ok)
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	srv := newServer(t, ok)
	res := mapResolver{"api.example.test": {"127.0.0.1"}}
	c := NewClient(Grant{Hosts: []string{srv.at("api.example.test")}, AllowPrivate: true}, testLogger(t), WithResolver(res))
	if _, err := c.Do(t.Context(), Request{URL: srv.at("api.example.test") + "/"}); err != nil {
		t.Fatal(err)
	}
	if proxy.hits.Load() != 0 || srv.hits.Load() != 1 {
		t.Fatalf("hits proxy=%d server=%d, want 0 and 1", proxy.hits.Load(), srv.hits.Load())
	}
}

func TestDoKeepsNoCookies(t *testing.T) {
	var cookies []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		cookies = append(cookies, r.Header.Get("Cookie"))
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/next", http.StatusFound)
		}
	})
	c := NewClient(Grant{Hosts: []string{srv.URL}, AllowPrivate: true}, testLogger(t))
	for range 2 {
		if _, err := c.Do(t.Context(), Request{URL: srv.URL + "/start"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, ck := range cookies {
		if ck != "" {
			t.Fatalf("request %d carried Cookie %q", i, ck)
		}
	}
}

func TestErrorsAndLogsNeverCarryQuery(t *testing.T) {
	const secret = "SECRET-TOKEN-42"
	big := newServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(make([]byte, 2000)) })
	away := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example.com/cb?token="+secret, http.StatusFound)
	})
	var logs syncBuffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	c := NewClient(Grant{Hosts: []string{big.URL, away.URL}, AllowPrivate: true, MaxResponse: 1000}, log)
	for _, url := range []string{
		"https://notgranted.example.com/x?key=" + secret,
		big.URL + "/x?key=" + secret,
		away.URL + "/x?key=" + secret,
		big.URL + "/x?key=" + secret + "\x7f\n",
	} {
		_, err := c.Do(t.Context(), Request{URL: url})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("err = %v: want an error without the query", err)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("logs carry the query:\n%s", logs.String())
	}
}
