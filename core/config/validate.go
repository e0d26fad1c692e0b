package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/crosscast/crosscast/core/errs"
	"github.com/crosscast/crosscast/core/workspaces"
	"github.com/hashicorp/hcl/v2"
)

var pluginNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Validate checks every value, parses durations and sizes into their typed fields, and returns an
// *errs.ValidationError whose field paths ("server.listen", "workspace.acme.write_key") Load turns into positions.
func (c *Config) Validate() error {
	v := &errs.ValidationError{}
	c.Server.validate(v)
	c.Storage.validate(v)
	c.Log.validate(v)
	c.Admin.validate(v)

	ids := map[string]bool{}
	keys := map[string]string{}
	for i := range c.Workspaces {
		w := &c.Workspaces[i]
		path := "workspace." + w.ID
		if err := workspaces.ValidateID(w.ID); err != nil {
			v.Add(path, "%s", err)
		}
		if ids[w.ID] {
			v.Add(path, "workspace %q is declared twice", w.ID)
		}
		ids[w.ID] = true
		if err := workspaces.ValidateName(strings.TrimSpace(w.Name)); err != nil {
			v.Add(path+".name", "%s", err)
		}
		if w.WriteKey != "" {
			if err := workspaces.ValidateWriteKey(w.WriteKey); err != nil {
				v.Add(path+".write_key", "%s", err)
			} else if other, dup := keys[w.WriteKey]; dup {
				v.Add(path+".write_key", "the same write key is declared for workspace %q", other)
			}
			keys[w.WriteKey] = w.ID
		}
	}
	names := map[string]bool{}
	for i := range c.Plugins {
		p := &c.Plugins[i]
		path := "plugin." + p.Name
		if !pluginNamePattern.MatchString(p.Name) {
			v.Add(path, "%q is not a valid plugin name: use a lower-case letter then letters, digits, '_' or '-'", p.Name)
		}
		if names[p.Name] {
			v.Add(path, "plugin %q is declared twice", p.Name)
		}
		names[p.Name] = true
		p.validate(v, path)
	}

	relays := map[string]*SMTPRelay{}
	for i := range c.SMTPRelays {
		r := &c.SMTPRelays[i]
		path := "smtp." + r.Name
		if !pluginNamePattern.MatchString(r.Name) {
			v.Add(path, "%q is not a valid smtp block name: use a lower-case letter then letters, digits, '_' or '-'", r.Name)
		}
		if _, dup := relays[r.Name]; dup {
			v.Add(path, "smtp %q is declared twice%s", r.Name, declaredAt(r.DefRange))
			continue
		}
		relays[r.Name] = r
		r.validate(v, path)
	}
	// A grant must name a declared relay.
	for i := range c.Plugins {
		p := &c.Plugins[i]
		if p.Grants == nil || p.Grants.SMTPRelay == "" {
			continue
		}
		if _, ok := relays[p.Grants.SMTPRelay]; ok {
			continue
		}
		path := "plugin." + p.Name + ".grants.smtp_relay"
		if len(relays) == 0 {
			v.Add(path, "no smtp block is declared: add smtp %q { host = \"...\" } to send mail through it", p.Grants.SMTPRelay)
			continue
		}
		known := make([]string, 0, len(relays))
		for name := range relays {
			known = append(known, strconv.Quote(name))
		}
		sort.Strings(known)
		v.Add(path, "%q is not a declared smtp block (declared: %s)", p.Grants.SMTPRelay, strings.Join(known, ", "))
	}
	return v.OrNil()
}

// declaredAt says where a duplicate block is, when the blocks come from a file.
func declaredAt(again hcl.Range) string {
	if again.Filename == "" {
		return ""
	}
	return fmt.Sprintf(" (again at %s:%d)", again.Filename, again.Start.Line)
}

// validate checks an smtp block and applies its defaults. Problems never show the password.
func (r *SMTPRelay) validate(v *errs.ValidationError, path string) {
	host := strings.TrimSuffix(strings.TrimPrefix(r.Host, "["), "]")
	switch {
	case strings.TrimSpace(r.Host) == "":
		v.Add(path+".host", "must not be empty: the relay's host name or IP address")
	case strings.ContainsFunc(r.Host, func(c rune) bool { return c <= ' ' || c == '/' || c == 0x7f }):
		v.Add(path+".host", "%q is not a host name or IP address", r.Host)
	case strings.Contains(host, ":") && net.ParseIP(host) == nil:
		v.Add(path+".host", "%q must be a host name or IP address only: give the port with port = N", r.Host)
	}
	switch r.TLS {
	case "":
		r.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		v.Add(path+".tls", "%q must be \"starttls\" (upgrade a plain connection, the default), \"tls\" (TLS from the first byte, usually port 465) or \"none\" (plain text, for a relay on this host)", r.TLS)
	}
	switch {
	case r.Port == 0 && r.TLS == "tls":
		r.Port = 465
	case r.Port == 0:
		r.Port = 587
	case r.Port < 1 || r.Port > 65535:
		v.Add(path+".port", "%d must be between 1 and 65535", r.Port)
	}
	switch {
	case r.Username != "" && r.Password == "":
		v.Add(path+".username", "username is set without password: set both (password = env(\"SMTP_PASSWORD\")) or neither")
	case r.Password != "" && r.Username == "":
		v.Add(path+".password", "password is set without username: set both or neither")
	case r.Password != "" && r.TLS == "none" && !isLoopbackHost(host):
		v.Add(path+".password", "with tls = \"none\" the password would cross the network in clear text to %q: use tls = \"starttls\" or \"tls\" (plain text is only allowed to a relay on a loopback address)", r.Host)
	}
	if strings.ContainsRune(r.Username, 0) || strings.ContainsRune(r.Password, 0) {
		v.Add(path+".username", "username and password must not contain NUL characters")
	}
	if strings.ContainsFunc(r.HELO, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		v.Add(path+".helo", "%q must be a host name without spaces or control characters", r.HELO)
	}
	if r.Pool == 0 {
		r.Pool = 4
	} else if r.Pool < 1 || r.Pool > 64 {
		v.Add(path+".pool", "%d must be between 1 and 64", r.Pool)
	}
	if r.Timeout == "" {
		r.Timeout = "30s"
	}
	r.TimeoutDur = durationField(v, path+".timeout", r.Timeout, time.Second, 10*time.Minute)
	if r.CAFile != "" {
		if r.TLS == "none" {
			v.Add(path+".ca_file", "is only used with tls = \"starttls\" or \"tls\"")
		}
		if pem, err := os.ReadFile(r.CAFile); err != nil {
			v.Add(path+".ca_file", "reading the CA bundle: %s", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.Add(path+".ca_file", "%s holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)", r.CAFile)
		}
	}
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (p *Plugin) validate(v *errs.ValidationError, path string) {
	switch {
	case strings.HasPrefix(p.Source, "builtin:"):
		if p.SHA256 != "" {
			v.Add(path+".sha256", "bundled plugins are verified by the binary itself: remove sha256")
		}
	case strings.HasSuffix(p.Source, ".wasm"):
		if !sha256Pattern.MatchString(p.SHA256) {
			v.Add(path+".sha256", "a plugin file needs its lower-case hex SHA-256 (crosscast plugin build prints it; or: sha256sum %s)", p.Source)
		}
	default:
		v.Add(path+".source", "%q must be \"builtin:NAME\" or the path of a .wasm file", p.Source)
	}
	if p.RateLimit < 0 || p.RateLimit > 1_000_000 {
		v.Add(path+".rate_limit", "%d must be between 0 (no cap) and 1000000 messages per second", p.RateLimit)
	}
	if p.Pool == 0 {
		p.Pool = 2
	} else if p.Pool < 1 || p.Pool > 64 {
		v.Add(path+".pool", "%d must be between 1 and 64", p.Pool)
	}
	if p.Timeout == "" {
		p.Timeout = "5s"
	}
	p.TimeoutDur = durationField(v, path+".timeout", p.Timeout, time.Millisecond, 5*time.Minute)
	if p.Memory == "" {
		p.Memory = "64MiB"
	}
	p.MemoryBytes = sizeField(v, path+".memory", p.Memory, 4<<20, 4<<30)
	if g := p.Grants; g != nil {
		for _, h := range g.HTTPHosts {
			if u, err := url.Parse(h); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				v.Add(path+".grants.http_hosts", "%q must be an origin such as \"https://api.example.com\" or \"https://*.example.com:8443\"", h)
			}
		}
		if g.KVQuota != "" {
			g.KVQuotaBytes = sizeField(v, path+".grants.kv_quota", g.KVQuota, 1<<10, 1<<30)
		}
	}
}

func (s *Server) validate(v *errs.ValidationError) {
	if host, port, err := net.SplitHostPort(s.Listen); err != nil {
		v.Add("server.listen", "%q is not host:port (for example \"127.0.0.1:8080\" or \"0.0.0.0:8080\")", s.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.Add("server.listen", "port %q must be a number between 0 and 65535", port)
	} else if strings.ContainsAny(host, " /") {
		v.Add("server.listen", "host %q is not a host name or IP address", host)
	}
	if u, err := url.Parse(s.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Add("server.public_url", "%q must be an absolute http:// or https:// URL", s.PublicURL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		v.Add("server.public_url", "%q must not have a query or fragment", s.PublicURL)
	} else {
		s.PublicURL = strings.TrimRight(s.PublicURL, "/")
	}
	s.MaxBodyBytes = sizeField(v, "server.max_body", s.MaxBody, 1<<10, 1<<30)
	s.MaxImportBytes = sizeField(v, "server.max_import", s.MaxImport, 1<<10, 1<<40)
	for i, p := range s.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				v.Add(fmt.Sprintf("server.trusted_proxies.%d", i), "%q is not an IP address or a CIDR range such as 10.0.0.0/8", p)
			}
		}
	}
	s.ReadTimeoutDur = durationField(v, "server.read_timeout", s.ReadTimeout, time.Second, time.Hour)
	s.WriteTimeoutDur = durationField(v, "server.write_timeout", s.WriteTimeout, time.Second, time.Hour)
	s.ShutdownTimeoutDur = durationField(v, "server.shutdown_timeout", s.ShutdownTimeout, 0, 10*time.Minute)
}

func (s *Storage) validate(v *errs.ValidationError) {
	if strings.TrimSpace(s.DataDir) == "" {
		v.Add("storage.data_dir", "must not be empty")
	}
	if s.CommitMaxBatch < 1 || s.CommitMaxBatch > 100000 {
		v.Add("storage.commit_max_batch", "%d must be between 1 and 100000", s.CommitMaxBatch)
	}
	s.CommitMaxDelayDur = durationField(v, "storage.commit_max_delay", s.CommitMaxDelay, 0, time.Second)
	s.LockTimeoutDur = durationField(v, "storage.lock_timeout", s.LockTimeout, time.Millisecond, time.Minute)
}

func (l *Log) validate(v *errs.ValidationError) {
	switch l.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		v.Add("log.level", "%q must be one of trace, debug, info, warn, error", l.Level)
	}
	switch l.Format {
	case "text", "json":
	default:
		v.Add("log.format", "%q must be text or json", l.Format)
	}
}

func (a *Admin) validate(v *errs.ValidationError) {
	if a.BootstrapToken == "" {
		return
	}
	if len(a.BootstrapToken) < 24 || strings.ContainsAny(a.BootstrapToken, " \t\r\n") {
		v.Add("admin.bootstrap_token", "must be at least 24 characters without spaces (try: openssl rand -hex 24)")
	}
}

func durationField(v *errs.ValidationError, path, s string, min, max time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		v.Add(path, "%q is not a duration (examples: \"500ms\", \"5s\", \"2m\")", s)
	case d < min || d > max:
		v.Add(path, "%s must be between %s and %s", s, min, max)
	}
	return d
}

func sizeField(v *errs.ValidationError, path, s string, min, max int64) int64 {
	n, err := ParseSize(s)
	switch {
	case err != nil:
		v.Add(path, "%s", err)
	case n < min || n > max:
		v.Add(path, "%s must be between %s and %s", s, FormatSize(min), FormatSize(max))
	}
	return n
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ParseSize parses a byte size such as "512KiB", "64MiB", "10MB" or "1024B". Binary (KiB, MiB, GiB, TiB) and
// decimal (KB, MB, GB, TB) units are accepted; a unit is required so that "64" is never ambiguous.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	for _, u := range sizeUnits {
		if !strings.HasSuffix(t, u.suffix) {
			continue
		}
		num := strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n < 0 {
			break
		}
		if n > (1<<62)/u.mult {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return n * u.mult, nil
	}
	return 0, fmt.Errorf("%q is not a size (examples: \"512KiB\", \"64MiB\", \"10MB\")", s)
}

// FormatSize renders n bytes with the largest binary unit that divides it exactly.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.m && n%u.m == 0 {
			return fmt.Sprintf("%d%s", n/u.m, u.s)
		}
	}
	return fmt.Sprintf("%dB", n)
}
