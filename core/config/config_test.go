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
	if len(cfg.Workspaces) != 0 || len(cfg.Plugins) != 0 {
		t.Errorf("the example declares workspaces or plugins, so it is not the defaults: %+v %+v", cfg.Workspaces, cfg.Plugins)
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
