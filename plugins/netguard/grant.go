package netguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by NewClient to zero (or negative, for the caps and the timeout) Grant fields.
const (
	DefaultMaxRequest   int64         = 1 << 20
	DefaultMaxResponse  int64         = 4 << 20
	DefaultTimeout      time.Duration = 10 * time.Second
	DefaultMaxRedirects int           = 5
)

// Grant is what the operator allows one plugin to reach over HTTP.
type Grant struct {
	// Hosts is the allow-list of origins: "https://api.example.com", "https://api.example.com:8443",
	// "http://10.0.0.5:9000". Scheme, host and port must match a request exactly (80 and 443 are implied for http
	// and https). A leading "*." label grants every subdomain at any depth ("https://*.twilio.com" matches
	// "https://api.twilio.com" but not "https://twilio.com"); a bare "*" is never accepted. Use ParseGrant to
	// validate operator input: entries NewClient cannot parse are logged and grant nothing.
	Hosts []string
	// AllowPrivate permits loopback, private (RFC 1918), link-local, IPv6 unique-local, CGNAT and other
	// non-globally-routable unicast destinations (tests, on-prem providers). Cloud metadata endpoints stay refused
	// when reached through a name; only an origin granted as that IP literal reaches them. Unspecified, multicast
	// and broadcast addresses are refused whatever the grant.
	AllowPrivate bool
	// MaxRequest caps the request body in bytes (default 1 MiB).
	MaxRequest int64
	// MaxResponse caps the response body in bytes (default 4 MiB); a larger body is an ErrTooLarge error, never a
	// truncated body. It applies to the decoded body when the transport decompresses gzip.
	MaxResponse int64
	// Timeout bounds the whole exchange: dials, TLS, every redirect and reading the body (default 10s).
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed (default 5 when zero). Negative means none are followed:
	// the 3xx response is returned to the caller as is.
	MaxRedirects int
}

// ParseGrant validates and normalises the operator's origins. Each entry must be scheme://host[:port] with scheme
// http or https and no userinfo, path (a lone "/" is tolerated), query or fragment; a wildcard only as a leading
// "*." label over a name of at least two labels. Every bad entry is reported, each error naming it and wrapping
// ErrInvalidGrant. The returned Grant has canonical, de-duplicated Hosts and default caps left at zero.
func ParseGrant(hosts []string, allowPrivate bool) (Grant, error) {
	g := Grant{AllowPrivate: allowPrivate}
	seen := make(map[string]bool, len(hosts))
	var errs []error
	for i, h := range hosts {
		o, err := parseOrigin(h)
		if err != nil {
			errs = append(errs, fmt.Errorf("grant entry %d %q: %w: %w", i, h, err, ErrInvalidGrant))
			continue
		}
		if s := o.String(); !seen[s] {
			seen[s] = true
			g.Hosts = append(g.Hosts, s)
		}
	}
	if len(errs) > 0 {
		return Grant{}, errors.Join(errs...)
	}
	return g, nil
}

// origin is scheme://host:port in canonical form: lower-case scheme and name without a trailing dot, canonical IP
// literal without brackets, explicit port.
type origin struct {
	scheme   string
	host     string // for a wildcard, the suffix after "*."
	port     string
	wildcard bool
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// String renders the origin as it would be written in a grant, omitting the default port.
func (o origin) String() string {
	host := o.host
	if o.wildcard {
		host = "*." + host
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if o.port == defaultPort(o.scheme) {
		return o.scheme + "://" + host
	}
	return o.scheme + "://" + host + ":" + o.port
}

// matches reports whether the concrete origin r (never a wildcard) is covered by the granted origin o.
func (o origin) matches(r origin) bool {
	if o.scheme != r.scheme || o.port != r.port {
		return false
	}
	if o.wildcard {
		return len(r.host) > len(o.host)+1 && strings.HasSuffix(r.host, "."+o.host)
	}
	return o.host == r.host
}

// urlError strips the URL from a net/url error: the URL may carry secrets in its query.
func urlError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func parseOrigin(raw string) (origin, error) {
	switch {
	case raw == "":
		return origin{}, errors.New("empty origin")
	case raw == "*" || strings.HasSuffix(raw, "://*") || strings.Contains(raw, "://*:") || strings.Contains(raw, "://*/"):
		return origin{}, errors.New(`a bare "*" is not allowed: grant explicit origins such as https://api.example.com or https://*.example.com`)
	case !strings.Contains(raw, "://"):
		return origin{}, errors.New("missing scheme: write it as https://host or http://host:port")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return origin{}, fmt.Errorf("not a valid URL: %w", urlError(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return origin{}, fmt.Errorf("scheme %q not allowed: only http and https", u.Scheme)
	case u.Opaque != "":
		return origin{}, errors.New("not an origin: expected scheme://host[:port]")
	case u.User != nil:
		return origin{}, errors.New("userinfo (user:password@) not allowed in an origin: keep credentials in the plugin's config")
	case u.Path != "" && u.Path != "/":
		return origin{}, fmt.Errorf("path %q not allowed: an origin is scheme://host[:port]", u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return origin{}, errors.New("query not allowed: an origin is scheme://host[:port]")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return origin{}, errors.New("fragment not allowed: an origin is scheme://host[:port]")
	}
	o := origin{scheme: u.Scheme}
	host := u.Hostname()
	if host == "" {
		return origin{}, errors.New("missing host")
	}
	if o.port, err = parsePort(u); err != nil {
		return origin{}, err
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if strings.Contains(rest, "*") {
			return origin{}, errors.New(`only one wildcard, as the leading "*." label`)
		}
		rest = strings.TrimSuffix(strings.ToLower(rest), ".")
		if _, err := netip.ParseAddr(rest); err == nil {
			return origin{}, errors.New("a wildcard cannot cover an IP address")
		}
		if err := validHostname(rest); err != nil {
			return origin{}, err
		}
		if !strings.Contains(rest, ".") {
			return origin{}, fmt.Errorf("wildcard over a top-level domain %q is too broad: name at least two labels (*.example.com)", rest)
		}
		o.host, o.wildcard = rest, true
		return o, nil
	}
	if strings.Contains(host, "*") {
		return origin{}, errors.New(`a wildcard is only allowed as the leading "*." label`)
	}
	if o.host, err = canonicalHost(host); err != nil {
		return origin{}, err
	}
	return o, nil
}

// parsePort returns the URL's port, explicit or implied by its scheme, in canonical decimal form.
func parsePort(u *url.URL) (string, error) {
	p := u.Port()
	if p == "" {
		if strings.HasSuffix(u.Host, ":") {
			return "", errors.New("empty port after ':'")
		}
		return defaultPort(u.Scheme), nil
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q out of range 1-65535", p)
	}
	return strconv.FormatUint(n, 10), nil
}

// canonicalHost returns an IP literal in canonical form or a validated lower-case name without a trailing dot.
func canonicalHost(host string) (string, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", errors.New("IPv6 zones are not allowed")
		}
		return a.String(), nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if err := validHostname(name); err != nil {
		return "", err
	}
	return name, nil
}

// validHostname accepts DNS names made of letters, digits, '-' and '_' (ASCII only: use punycode), and refuses a
// numeric last label, which is no DNS name but an IP address in a form resolvers disagree on ("0177.0.0.1").
func validHostname(name string) error {
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host name %q: empty or longer than 253 characters", name)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host name %q: invalid label %q", name, l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host name %q: invalid character %q (ASCII letters, digits, '-' and '_' only; use punycode)", name, c)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("host name %q looks like a non-canonical IP address", name)
	}
	return nil
}

// requestOrigin parses and validates a request or redirect URL and returns it with its concrete origin. Errors
// never contain the URL.
func requestOrigin(u *url.URL) (origin, error) {
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return origin{}, fmt.Errorf("scheme %q not allowed: only http and https", u.Scheme)
	case u.Opaque != "":
		return origin{}, errors.New("URL is not absolute (scheme://host/...)")
	case u.User != nil:
		return origin{}, errors.New("userinfo (user:password@) not allowed in URLs: send an Authorization header")
	}
	host := u.Hostname()
	if host == "" {
		return origin{}, errors.New("URL has no host")
	}
	port, err := parsePort(u)
	if err != nil {
		return origin{}, err
	}
	h, err := canonicalHost(host)
	if err != nil {
		return origin{}, err
	}
	return origin{scheme: u.Scheme, host: h, port: port}, nil
}

// hostHeaderOrigin is the origin a Host header value names under scheme.
func hostHeaderOrigin(scheme, value string) (origin, error) {
	host, port := value, ""
	if h, p, err := net.SplitHostPort(value); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(value, "[") && strings.HasSuffix(value, "]") {
		host = value[1 : len(value)-1]
	}
	if port == "" {
		port = defaultPort(scheme)
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return origin{}, fmt.Errorf("host header port %q out of range", port)
	} else {
		port = strconv.FormatUint(n, 10)
	}
	h, err := canonicalHost(host)
	if err != nil {
		return origin{}, fmt.Errorf("host header: %w", err)
	}
	return origin{scheme: scheme, host: h, port: port}, nil
}
