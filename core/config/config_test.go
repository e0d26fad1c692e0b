package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	crosscast "github.com/crosscast/crosscast"
	"github.com/crosscast/crosscast/core/config"
	"github.com/hashicorp/hcl/v2"
)

func env(m map[string]string) config.Lookup {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := config.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig does not validate: %v", err)
	}
	if cfg.Server.MaxBodyBytes != 4<<20 || cfg.Storage.LockTimeoutDur != time.Second || cfg.Server.ShutdownTimeoutDur != 15*time.Second {
		t.Fatalf("parsed defaults wrong: %+v %+v", cfg.Server, cfg.Storage)
	}
}

// The embedded example must decode, validate, and set exactly the defaults for every key it shows, so that the file
// operators copy and the behaviour without a file never disagree.
func TestExampleConfigMatchesDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte(crosscast.ExampleConfig()), "config.example.hcl", env(nil))
	if err != nil {
		t.Fatalf("example config does not load:\n%v", err)
	}
	def := config.DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]any{
		"server": {cfg.Server, def.Server}, "storage": {cfg.Storage, def.Storage},
		"log": {cfg.Log, def.Log}, "admin": {cfg.Admin, def.Admin},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s block of the example differs from DefaultConfig:\n example %+v\n default %+v", name, pair[0], pair[1])
		}
	}
	if len(cfg.Workspaces) != 0 || len(cfg.Plugins) != 0 || len(cfg.SMTPRelays) != 0 {
		t.Errorf("the example declares workspaces, plugins or smtp relays, so it is not the defaults: %+v %+v %+v", cfg.Workspaces, cfg.Plugins, cfg.SMTPRelays)
	}
}

// Every attribute of the schema is documented in the example: a key added to the code without being shown to
// operators fails here.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	example := crosscast.ExampleConfig()
	for _, key := range hclKeys(reflect.TypeOf(config.Config{})) {
		if !strings.Contains(example, key+" ") && !strings.Contains(example, key+"\n") {
			t.Errorf("config.example.hcl does not document %q", key)
		}
	}
}

func hclKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("hcl")
		name, kind, _ := strings.Cut(tag, ",")
		switch kind {
		case "optional", "attr", "":
			if name != "" {
				keys = append(keys, name)
			}
		case "block":
			keys = append(keys, name)
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			keys = append(keys, hclKeys(ft)...)
		}
	}
	return keys
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		env   map[string]string
		check func(t *testing.T, c *config.Config)
	}{
		{
			name: "empty file keeps defaults",
			src:  "",
			check: func(t *testing.T, c *config.Config) {
				if c.Server.Listen != "127.0.0.1:8080" || c.Storage.DataDir != "./data" || !c.Storage.Fsync {
					t.Errorf("defaults lost: %+v %+v", c.Server, c.Storage)
				}
			},
		},
		{
			name: "partial block keeps other defaults",
			src:  "server {\n  listen = \"0.0.0.0:9090\"\n}\nstorage {\n  fsync = false\n  commit_max_delay = \"2ms\"\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if c.Server.Listen != "0.0.0.0:9090" || c.Server.PublicURL != "http://localhost:8080" {
					t.Errorf("server: %+v", c.Server)
				}
				if c.Storage.Fsync || c.Storage.CommitMaxDelayDur != 2*time.Millisecond || c.Storage.CommitMaxBatch != 1000 {
					t.Errorf("storage: %+v", c.Storage)
				}
			},
		},
		{
			name: "env with and without default",
			src:  "admin {\n  bootstrap_token = env(\"TOK\")\n}\nworkspace \"a\" {\n  write_key = env(\"NOPE\", \"wk_0123456789abcdef\")\n}\n",
			env:  map[string]string{"TOK": "0123456789abcdef0123456789"},
			check: func(t *testing.T, c *config.Config) {
				if c.Admin.BootstrapToken != "0123456789abcdef0123456789" || c.Workspaces[0].WriteKey != "wk_0123456789abcdef" {
					t.Errorf("env not applied: %+v %+v", c.Admin, c.Workspaces)
				}
			},
		},
		{
			name: "plugin with defaults, grants and a config body kept for the plugin platform",
			src:  "plugin \"email\" {\n  source = \"builtin:email-smtp\"\n  grants {\n    http_hosts = [\"https://api.example.com\"]\n    kv_quota = \"10MiB\"\n  }\n  config {\n    from = \"a@b.c\"\n  }\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if len(c.Plugins) != 1 || c.Plugins[0].Name != "email" || c.Plugins[0].Config == nil || c.Plugins[0].Config.Body == nil {
					t.Fatalf("plugin: %+v", c.Plugins)
				}
				p := c.Plugins[0]
				if p.DefRange.Start.Line != 1 || p.Config.DefRange.Start.Line != 7 {
					t.Errorf("plugin positions: %+v %+v", p.DefRange, p.Config.DefRange)
				}
				if p.Pool != 2 || p.TimeoutDur != 5*time.Second || p.MemoryBytes != 64<<20 || p.Grants.KVQuotaBytes != 10<<20 {
					t.Errorf("plugin defaults: %+v %+v", p, p.Grants)
				}
			},
		},
		{
			name: "trailing slash of public_url trimmed",
			src:  "server {\n  public_url = \"https://cc.example.com/\"\n}\n",
			check: func(t *testing.T, c *config.Config) {
				if c.Server.PublicURL != "https://cc.example.com" {
					t.Errorf("public_url %q", c.Server.PublicURL)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.src), "c.hcl", env(tt.env))
			if err != nil {
				t.Fatalf("unexpected problems:\n%v", err)
			}
			tt.check(t, c)
		})
	}
}

// Every bad input yields a problem at the right file:line:col that names the key.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each must appear, in order, one per problem
	}{
		{"syntax error", "server {\n  listen = \n}\n", []string{"c.hcl:2:"}},
		{"unknown attribute", "server {\n  lisen = \"x\"\n}\n", []string{`c.hcl:2:3: Unsupported argument: An argument named "lisen" is not expected here. Did you mean "listen"?`}},
		{"unknown block", "sever {\n}\n", []string{`c.hcl:1:1: Unsupported block type: Blocks of type "sever" are not expected here. Did you mean "server"?`}},
		{"wrong type", "storage {\n  commit_max_batch = \"many\"\n}\n", []string{"c.hcl:2:23: storage.commit_max_batch: Unsuitable value type"}},
		{"missing env var", "admin {\n  bootstrap_token = env(\"CC_MISSING\")\n}\n", []string{"c.hcl:2:", "admin.bootstrap_token: ", "environment variable CC_MISSING is not set"}},
		{"bad duration", "storage {\n  lock_timeout = \"5x\"\n}\n", []string{`c.hcl:2:18: storage.lock_timeout: "5x" is not a duration`}},
		{"bad size", "server {\n  max_body = \"64\"\n}\n", []string{`c.hcl:2:14: server.max_body: "64" is not a size`}},
		{"bad trusted proxy", "server {\n  trusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\n}\n", []string{`c.hcl:2:21: server.trusted_proxies.1: "proxy.local" is not an IP address or a CIDR range`}},
		{"size out of range", "server {\n  max_body = \"2GiB\"\n}\n", []string{`c.hcl:2:14: server.max_body: 2GiB must be between 1KiB and 1GiB`}},
		{"bad listen", "server {\n  listen = \"8080\"\n}\n", []string{`c.hcl:2:12: server.listen: "8080" is not host:port`}},
		{"bad level and format together", "log {\n  level = \"loud\"\n  format = \"xml\"\n}\n", []string{`c.hcl:2:11: log.level: "loud" must be one of`, `c.hcl:3:12: log.format: "xml" must be text or json`}},
		{"duplicate block", "server {\n}\nserver {\n}\n", []string{"c.hcl:3:1: Duplicate server block"}},
		{"bad workspace id", "workspace \"Acme Corp\" {\n}\n", []string{`c.hcl:1:1: workspace.Acme Corp: "Acme Corp" is not a valid workspace id`}},
		{"duplicate workspace", "workspace \"a\" {\n}\nworkspace \"a\" {\n}\n", []string{`c.hcl:1:1: workspace.a: workspace "a" is declared twice`}},
		{"short write key", "workspace \"a\" {\n  write_key = \"short\"\n}\n", []string{"c.hcl:2:15: workspace.a.write_key: write key must be 16-128"}},
		{"short bootstrap token", "admin {\n  bootstrap_token = \"abc\"\n}\n", []string{"c.hcl:2:21: admin.bootstrap_token: must be at least 24 characters"}},
		{"workspace without label", "workspace {\n}\n", []string{"c.hcl:1:11: Missing id for workspace"}},
		{"plugin without source", "plugin \"x\" {\n}\n", []string{`c.hcl:1:`, `Missing required argument`, `"source"`}},
		{"plugin file without sha256", "plugin \"x\" {\n  source = \"/p/x.wasm\"\n}\n", []string{`c.hcl:1:1: plugin.x.sha256: a plugin file needs its lower-case hex SHA-256`}},
		{"plugin bad source", "plugin \"x\" {\n  source = \"x.so\"\n}\n", []string{`c.hcl:2:12: plugin.x.source: "x.so" must be`}},
		{"plugin bad limits", "plugin \"x\" {\n  source = \"builtin:null\"\n  pool = 0\n  timeout = \"forever\"\n  memory = \"1KiB\"\n}\n", []string{`c.hcl:4:13: plugin.x.timeout`, `c.hcl:5:12: plugin.x.memory: 1KiB must be between 4MiB and 4GiB`}},
		{"plugin bad rate limit", "plugin \"x\" {\n  source = \"builtin:null\"\n  rate_limit = -5\n}\n", []string{`c.hcl:3:16: plugin.x.rate_limit: -5 must be between 0 (no cap) and 1000000 messages per second`}},
		{"plugin bad grant", "plugin \"x\" {\n  source = \"builtin:null\"\n  grants {\n    http_hosts = [\"ftp://a\", \"https://a/path\"]\n    colour = 1\n  }\n}\n", []string{`An argument named "colour" is not expected here`, `c.hcl:4:18: plugin.x.grants.http_hosts: "ftp://a" must be an origin`, `"https://a/path" must be an origin`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.src), "c.hcl", env(nil))
			if err == nil {
				t.Fatalf("no problem reported; got %+v", c)
			}
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, want config.Problems: %v", err, err)
			}
			text := ps.Error()
			for _, w := range tt.want {
				i := strings.Index(text, w)
				if i < 0 {
					t.Fatalf("problems do not contain %q:\n%s", w, text)
				}
				text = text[i+len(w):]
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.hcl"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"64MiB", 64 << 20, true}, {"10MB", 10e6, true}, {"512KiB", 512 << 10, true}, {"1GiB", 1 << 30, true},
		{"100B", 100, true}, {" 2 KiB ", 2048, true},
		{"64", 0, false}, {"-1MiB", 0, false}, {"1.5MiB", 0, false}, {"MiB", 0, false}, {"9999999999TiB", 0, false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseSize(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

// The configuration baked into the container image must load, and must listen on every interface.
func TestDockerConfigLoads(t *testing.T) {
	cfg, err := config.Load("../../deploy/docker/config.hcl", env(nil))
	if err != nil {
		t.Fatalf("deploy/docker/config.hcl does not load:\n%v", err)
	}
	if cfg.Server.Listen != "0.0.0.0:8080" || cfg.Storage.DataDir != "/data" {
		t.Fatalf("container config: listen %q data %q", cfg.Server.Listen, cfg.Storage.DataDir)
	}
}

// commentedBlock returns the block of the example that starts with the commented line "# "+header, uncommented.
func commentedBlock(t *testing.T, header string) string {
	t.Helper()
	example := crosscast.ExampleConfig()
	start := strings.Index(example, "# "+header)
	if start < 0 {
		t.Fatalf("the example has no commented %q block", header)
	}
	var out []string
	for _, line := range strings.Split(example[start:], "\n") {
		line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		out = append(out, line)
		if line == "}" {
			return strings.Join(out, "\n") + "\n"
		}
	}
	t.Fatalf("the commented %q block of the example does not end", header)
	return ""
}

// The commented smtp block of the example is a working block once uncommented, and the values it shows are the
// defaults.
func TestExampleSMTPBlockLoads(t *testing.T) {
	src := commentedBlock(t, `smtp "relay" {`)
	src = strings.Replace(src, `"/etc/crosscast/relay-ca.pem"`, `"testdata/relay-ca.pem"`, 1)
	cfg, err := config.Parse([]byte(src), "example-smtp.hcl", env(map[string]string{"SMTP_PASSWORD": "pw"}))
	if err != nil {
		t.Fatalf("the example smtp block does not load:\n%v\n%s", err, src)
	}
	r := cfg.SMTPRelays[0]
	if r.Name != "relay" || r.Port != 587 || r.TLS != "starttls" || r.Pool != 4 || r.TimeoutDur != 30*time.Second || r.Password != "pw" {
		t.Errorf("example smtp block: %+v", r)
	}
	def := config.SMTPRelay{Name: "relay", Host: r.Host}
	cfg.SMTPRelays = []config.SMTPRelay{def}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := cfg.SMTPRelays[0]
	if d.Port != r.Port || d.TLS != r.TLS || d.Pool != r.Pool || d.Timeout != r.Timeout {
		t.Errorf("the example shows port %d tls %q pool %d timeout %q, the defaults are %d %q %d %q", r.Port, r.TLS, r.Pool, r.Timeout, d.Port, d.TLS, d.Pool, d.Timeout)
	}
}

func TestSMTPRelay(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		env   map[string]string
		check func(t *testing.T, rs []config.SMTPRelay)
	}{
		{
			name: "defaults",
			src:  "smtp \"relay\" {\n  host = \"smtp.example.com\"\n}\n",
			check: func(t *testing.T, rs []config.SMTPRelay) {
				r := rs[0]
				if r.Name != "relay" || r.Port != 587 || r.TLS != "starttls" || r.Pool != 4 || r.Timeout != "30s" || r.TimeoutDur != 30*time.Second || r.DefRange.Start.Line != 1 {
					t.Errorf("relay %+v", r)
				}
			},
		},
		{
			name: "implicit tls defaults to port 465",
			src:  "smtp \"relay\" {\n  host = \"smtp.example.com\"\n  tls = \"tls\"\n}\n",
			check: func(t *testing.T, rs []config.SMTPRelay) {
				if rs[0].Port != 465 {
					t.Errorf("port %d", rs[0].Port)
				}
			},
		},
		{
			name: "every key, password from the environment",
			src: `smtp "bulk" {
  host     = "mx.example.com"
  port     = 2525
  tls      = "starttls"
  username = "crosscast"
  password = env("SMTP_PASSWORD")
  helo     = "cc.example.com"
  pool     = 16
  timeout  = "10s"
  ca_file  = "testdata/relay-ca.pem"
}
`,
			env: map[string]string{"SMTP_PASSWORD": "s3cret"},
			check: func(t *testing.T, rs []config.SMTPRelay) {
				want := config.SMTPRelay{Name: "bulk", Host: "mx.example.com", Port: 2525, TLS: "starttls", Username: "crosscast",
					Password: "s3cret", HELO: "cc.example.com", Pool: 16, Timeout: "10s", CAFile: "testdata/relay-ca.pem", TimeoutDur: 10 * time.Second}
				got := rs[0]
				got.DefRange = hcl.Range{}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("relay\n got %+v\nwant %+v", got, want)
				}
			},
		},
		{
			name: "password in clear text to a loopback relay",
			src:  "smtp \"local\" {\n  host = \"127.0.0.1\"\n  port = 25\n  tls = \"none\"\n  username = \"u\"\n  password = \"p\"\n}\nsmtp \"local6\" {\n  host = \"::1\"\n  tls = \"none\"\n  username = \"u\"\n  password = \"p\"\n}\nsmtp \"localhost\" {\n  host = \"localhost\"\n  tls = \"none\"\n  username = \"u\"\n  password = \"p\"\n}\n",
			check: func(t *testing.T, rs []config.SMTPRelay) {
				if len(rs) != 3 || rs[0].Port != 25 || rs[1].Port != 587 {
					t.Errorf("relays %+v", rs)
				}
			},
		},
		{
			name: "plugin granted a declared relay",
			src:  "smtp \"relay\" {\n  host = \"smtp.example.com\"\n}\nplugin \"email\" {\n  source = \"builtin:email-smtp\"\n  grants {\n    smtp_relay = \"relay\"\n  }\n}\n",
			check: func(t *testing.T, rs []config.SMTPRelay) {
				if len(rs) != 1 {
					t.Errorf("relays %+v", rs)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.src), "c.hcl", env(tt.env))
			if err != nil {
				t.Fatalf("unexpected problems:\n%v", err)
			}
			tt.check(t, c.SMTPRelays)
		})
	}
}

// Every bad smtp block yields a problem at the right file:line:col naming the key; the password never shows.
func TestSMTPRelayProblems(t *testing.T) {
	const secret = "hunter2-do-not-print"
	block := func(body string) string { return "smtp \"relay\" {\n" + body + "}\n" }
	tests := []struct {
		name string
		src  string
		want []string // each must appear, in order
	}{
		{"missing host", "smtp \"relay\" {\n}\n", []string{"c.hcl:1:", `Missing required argument`, `"host"`}},
		{"empty host", block("  host = \"\"\n"), []string{`c.hcl:2:10: smtp.relay.host: must not be empty`}},
		{"host with a port", block("  host = \"smtp.example.com:587\"\n"), []string{`c.hcl:2:10: smtp.relay.host: "smtp.example.com:587" must be a host name or IP address only: give the port with port = N`}},
		{"unknown key", block("  host = \"h\"\n  hots = \"h\"\n"), []string{`c.hcl:3:3: Unsupported argument: An argument named "hots" is not expected here.`}},
		{"bad tls", block("  host = \"h\"\n  tls = \"ssl\"\n"), []string{`c.hcl:3:9: smtp.relay.tls: "ssl" must be "starttls"`}},
		{"bad port", block("  host = \"h\"\n  port = 70000\n"), []string{`c.hcl:3:10: smtp.relay.port: 70000 must be between 1 and 65535`}},
		{"bad pool", block("  host = \"h\"\n  pool = 65\n"), []string{`c.hcl:3:10: smtp.relay.pool: 65 must be between 1 and 64`}},
		{"bad timeout", block("  host = \"h\"\n  timeout = \"soon\"\n"), []string{`c.hcl:3:13: smtp.relay.timeout: "soon" is not a duration`}},
		{"timeout out of range", block("  host = \"h\"\n  timeout = \"1h\"\n"), []string{`c.hcl:3:13: smtp.relay.timeout: 1h must be between 1s and 10m0s`}},
		{"bad helo", block("  host = \"h\"\n  helo = \"my host\"\n"), []string{`c.hcl:3:10: smtp.relay.helo: "my host" must be a host name`}},
		{"username without password", block("  host = \"h\"\n  username = \"u\"\n"), []string{`c.hcl:3:14: smtp.relay.username: username is set without password`}},
		{"password without username", block("  host = \"h\"\n  password = \"" + secret + "\"\n"), []string{`c.hcl:3:14: smtp.relay.password: password is set without username`}},
		{"password in clear text over the network", block("  host = \"smtp.example.com\"\n  tls = \"none\"\n  username = \"u\"\n  password = \"" + secret + "\"\n"),
			[]string{`c.hcl:5:14: smtp.relay.password: with tls = "none" the password would cross the network in clear text to "smtp.example.com"`}},
		{"missing password variable", block("  host = \"h\"\n  username = \"u\"\n  password = env(\"SMTP_PASSWORD\")\n"),
			[]string{"c.hcl:4:", "smtp.relay.password: ", "environment variable SMTP_PASSWORD is not set"}},
		{"missing ca_file", block("  host = \"h\"\n  ca_file = \"testdata/nope.pem\"\n"), []string{`c.hcl:3:13: smtp.relay.ca_file: reading the CA bundle: open testdata/nope.pem: no such file or directory`}},
		{"ca_file that is not PEM", block("  host = \"h\"\n  ca_file = \"testdata/not-a-cert.pem\"\n"), []string{`c.hcl:3:13: smtp.relay.ca_file: testdata/not-a-cert.pem holds no PEM certificate`}},
		{"ca_file without tls", block("  host = \"127.0.0.1\"\n  tls = \"none\"\n  ca_file = \"testdata/relay-ca.pem\"\n"), []string{`c.hcl:4:13: smtp.relay.ca_file: is only used with tls = "starttls" or "tls"`}},
		{"bad name", "smtp \"Main Relay\" {\n  host = \"h\"\n}\n", []string{`c.hcl:1:1: smtp.Main Relay: "Main Relay" is not a valid smtp block name`}},
		{"declared twice", "smtp \"a\" {\n  host = \"h\"\n}\n\nsmtp \"a\" {\n  host = \"g\"\n}\n", []string{`c.hcl:1:1: smtp.a: smtp "a" is declared twice (again at c.hcl:5)`}},
		{"grant without any smtp block", "plugin \"email\" {\n  source = \"builtin:email-smtp\"\n  grants {\n    smtp_relay = \"mail\"\n  }\n}\n",
			[]string{`c.hcl:4:18: plugin.email.grants.smtp_relay: no smtp block is declared: add smtp "mail" { host = "..." }`}},
		{"grant naming an undeclared relay", "smtp \"relay\" {\n  host = \"h\"\n}\nsmtp \"bulk\" {\n  host = \"h\"\n}\nplugin \"email\" {\n  source = \"builtin:email-smtp\"\n  grants {\n    smtp_relay = \"mail\"\n  }\n}\n",
			[]string{`c.hcl:10:18: plugin.email.grants.smtp_relay: "mail" is not a declared smtp block (declared: "bulk", "relay")`}},
		{"several problems at once, in file order", block("  host = \"\"\n  tls = \"ssl\"\n  pool = 0\n  timeout = \"x\"\n"),
			[]string{`c.hcl:2:10: smtp.relay.host`, `c.hcl:3:9: smtp.relay.tls`, `c.hcl:5:13: smtp.relay.timeout`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tt.src), "c.hcl", env(nil))
			if err == nil {
				t.Fatalf("no problem reported; got %+v", c)
			}
			var ps config.Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, want config.Problems: %v", err, err)
			}
			full := ps.Error()
			if strings.Contains(full, secret) {
				t.Errorf("problems show the password:\n%s", full)
			}
			text := full
			for _, w := range tt.want {
				i := strings.Index(text, w)
				if i < 0 {
					t.Fatalf("problems do not contain %q:\n%s", w, full)
				}
				text = text[i+len(w):]
			}
		})
	}
}
