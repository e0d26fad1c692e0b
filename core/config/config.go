// Package config owns Crosscast's operator configuration: the HCL schema, its embedded defaults, env() interpolation,
// strict decoding and validation with file:line:col positions.
//
// The order is DefaultConfig(), then the file (Load), then command-line flags, then Validate. The package imports
// hashicorp/hcl and go-cty for decoding and must not import HTTP, storage or wasm libraries.
package config

import (
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Config is the whole operator configuration. Block and attribute names are a public contract: operators' files
// and later features rely on them.
type Config struct {
	Server     *Server     `hcl:"server,block"`
	Storage    *Storage    `hcl:"storage,block"`
	Log        *Log        `hcl:"log,block"`
	Admin      *Admin      `hcl:"admin,block"`
	Workspaces []Workspace `hcl:"workspace,block"`
	Plugins    []Plugin    `hcl:"plugin,block"`
	SMTPRelays []SMTPRelay `hcl:"smtp,block"`

	// Source is the file the configuration was read from, "" for embedded defaults only.
	Source string
}

// Server configures the HTTP listener.
type Server struct {
	Listen    string `hcl:"listen,optional"`
	PublicURL string `hcl:"public_url,optional"`
	MaxBody   string `hcl:"max_body,optional"`
	MaxImport string `hcl:"max_import,optional"`
	// TrustedProxies are the addresses or CIDR ranges of reverse proxies whose X-Forwarded-For header names the
	// real client (the IP the tracking API stores); requests from elsewhere are taken at their TCP address.
	TrustedProxies  []string `hcl:"trusted_proxies,optional"`
	ReadTimeout     string   `hcl:"read_timeout,optional"`
	WriteTimeout    string   `hcl:"write_timeout,optional"`
	ShutdownTimeout string   `hcl:"shutdown_timeout,optional"`

	// Parsed by Validate.
	MaxBodyBytes       int64
	MaxImportBytes     int64
	ReadTimeoutDur     time.Duration
	WriteTimeoutDur    time.Duration
	ShutdownTimeoutDur time.Duration
}

// Storage configures the embedded bbolt store and its group commit.
type Storage struct {
	DataDir        string `hcl:"data_dir,optional"`
	Fsync          bool   `hcl:"fsync,optional"`
	CommitMaxBatch int    `hcl:"commit_max_batch,optional"`
	CommitMaxDelay string `hcl:"commit_max_delay,optional"`
	LockTimeout    string `hcl:"lock_timeout,optional"`

	// Parsed by Validate.
	CommitMaxDelayDur time.Duration
	LockTimeoutDur    time.Duration
}

// Log configures the root logger.
type Log struct {
	Level  string `hcl:"level,optional"`
	Format string `hcl:"format,optional"`
}

// Admin configures access to the API and the admin panel.
type Admin struct {
	// BootstrapToken, when set, is accepted as an owner API token for every workspace. It is never stored.
	BootstrapToken string `hcl:"bootstrap_token,optional"`
}

// Workspace declares a workspace in the file (GitOps). Declared workspaces are created at start if missing and
// their declared fields win over API edits, which are refused for them.
type Workspace struct {
	ID       string `hcl:"id,label"`
	Name     string `hcl:"name,optional"`
	WriteKey string `hcl:"write_key,optional"`
}

// Plugin is a plugin block: which wasm module runs under this name, with which limits and grants. Its config
// block is kept undecoded; the plugin platform decodes it against the schema the plugin declares, so those
// diagnostics still point into the operator's file.
type Plugin struct {
	Name string `hcl:"name,label"`
	// Source is "builtin:NAME" for a plugin bundled in the binary, or the path of a .wasm file.
	Source string `hcl:"source"`
	// SHA256 is the hex SHA-256 of the file; required for files, checked before compiling.
	SHA256  string `hcl:"sha256,optional"`
	Pool    int    `hcl:"pool,optional"`
	Timeout string `hcl:"timeout,optional"`
	Memory  string `hcl:"memory,optional"`
	// RateLimit caps a channel's messages per second across every campaign and workspace (0: no cap).
	RateLimit int           `hcl:"rate_limit,optional"`
	Grants    *Grants       `hcl:"grants,block"`
	Config    *PluginConfig `hcl:"config,block"`

	DefRange hcl.Range `hcl:",def_range"`

	// Parsed by Validate.
	TimeoutDur  time.Duration
	MemoryBytes int64
}

// Grants are the capabilities the operator gives a plugin. A plugin gets nothing it does not request and is
// granted; a mismatch either way is reported at load.
type Grants struct {
	// HTTPHosts are the origins ("https://api.example.com") the plugin may call.
	HTTPHosts []string `hcl:"http_hosts,optional"`
	// AllowPrivate lets those calls reach loopback, private and link-local addresses (on-premise providers, tests).
	AllowPrivate bool `hcl:"allow_private,optional"`
	// SMTPRelay names the smtp "relay" block the plugin may send through.
	SMTPRelay string `hcl:"smtp_relay,optional"`
	// KVQuota is the size of the plugin's key-value space per workspace ("10MiB").
	KVQuota string `hcl:"kv_quota,optional"`

	KVQuotaBytes int64
}

// SMTPRelay is an smtp block: a mail relay plugins may send through when a plugin's grants name it
// (smtp_relay = "NAME"). Crosscast owns the connections to it (a bounded pool), TLS and authentication; plugins
// only hand over messages.
type SMTPRelay struct {
	Name string `hcl:"name,label"`
	Host string `hcl:"host"`
	// Port defaults to 587, or 465 when TLS is "tls".
	Port int `hcl:"port,optional"`
	// TLS is "starttls" (the default; a relay that does not offer STARTTLS is refused), "tls" (implicit TLS from
	// the first byte) or "none" (plain text, for a relay on the same host).
	TLS      string `hcl:"tls,optional"`
	Username string `hcl:"username,optional"`
	// Password is usually env("SMTP_PASSWORD"). It never appears in problems or logs.
	Password string `hcl:"password,optional"`
	// HELO is the name sent in EHLO; empty means the host name of the machine.
	HELO string `hcl:"helo,optional"`
	// Pool is the maximum number of connections open to the relay (default 4).
	Pool int `hcl:"pool,optional"`
	// Timeout bounds each SMTP command and the connection (default "30s").
	Timeout string `hcl:"timeout,optional"`
	// CAFile is a PEM bundle to trust instead of the system roots (a private CA, a self-signed relay).
	CAFile string `hcl:"ca_file,optional"`

	DefRange hcl.Range `hcl:",def_range"`

	// Parsed by Validate.
	TimeoutDur time.Duration
}

// PluginConfig is a plugin's own config block, decoded later against the plugin's declared schema.
type PluginConfig struct {
	Body     hcl.Body  `hcl:",remain"`
	DefRange hcl.Range `hcl:",def_range"`
}

// DefaultConfig returns the configuration Crosscast runs with when no file is given: listen on loopback port 8080,
// data in ./data, fsync on, text logs at info level.
func DefaultConfig() *Config {
	return &Config{
		Server: &Server{
			Listen:          "127.0.0.1:8080",
			PublicURL:       "http://localhost:8080",
			MaxBody:         "4MiB",
			MaxImport:       "4GiB",
			TrustedProxies:  []string{},
			ReadTimeout:     "30s",
			WriteTimeout:    "30s",
			ShutdownTimeout: "15s",
		},
		Storage: &Storage{
			DataDir:        "./data",
			Fsync:          true,
			CommitMaxBatch: 1000,
			CommitMaxDelay: "0s",
			LockTimeout:    "1s",
		},
		Log:   &Log{Level: "info", Format: "text"},
		Admin: &Admin{},
	}
}
