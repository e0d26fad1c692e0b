# Crosscast configuration: an annotated example.
#
# Every key is optional: Crosscast runs with the values shown here when no file is given (`crosscast serve`), so
# start from this file and keep only what you change. Print it any time with `crosscast config example`, check your
# own with `crosscast config validate FILE` (it prints every problem as FILE:LINE:COL and exits 2).
#
# Values can come from the environment: env("NAME") fails with a clear error when NAME is unset, env("NAME", "x")
# falls back to "x". Durations are strings such as "500ms", "5s", "2m"; sizes are strings such as "512KiB", "64MiB".

server {
  # Address and port the HTTP server (API, tracking, admin panel, health, metrics) listens on. Use "0.0.0.0:8080"
  # to accept connections from other hosts (for example inside a container).
  listen = "127.0.0.1:8080"

  # The address contacts and browsers reach this server at. Used to build absolute links: open-tracking pixels,
  # click redirects, unsubscribe pages. Set it to your public https:// address in production.
  public_url = "http://localhost:8080"

  # Largest request body accepted; larger requests are refused with 413.
  max_body = "4MiB"

  # Reverse proxies (addresses or CIDR ranges) trusted to name the client in X-Forwarded-For. Behind a proxy, list
  # it here, or every tracked visitor's IP is the proxy's. Empty: the TCP peer is the client.
  trusted_proxies = []

  # Largest contact import (POST /api/v1/workspaces/{ws}/contacts/import). Imports stream to disk and are read
  # row by row, so this bounds disk use, not memory.
  max_import = "4GiB"

  # How long a client may take to send a request, and the server to write a response.
  read_timeout  = "30s"
  write_timeout = "30s"

  # On SIGINT/SIGTERM: stop accepting, then wait this long for in-flight requests before closing the stores.
  shutdown_timeout = "15s"
}

storage {
  # Where Crosscast keeps its data: system.db (workspaces, API tokens, plugin state) and one file per workspace in
  # workspaces/<id>.db. Only one Crosscast process may use a data dir at a time.
  data_dir = "./data"

  # With fsync on, a 2xx answer means the write is on disk and survives a power cut. Turning it off makes writes
  # faster but a crash of the machine (not of Crosscast) can lose the last moments of writes.
  fsync = true

  # Group commit: concurrent writes are gathered into one transaction of at most this many writes, so that one
  # disk sync serves many requests.
  commit_max_batch = 1000

  # How long the writer may wait for more writes to join a transaction. "0s" commits as soon as the previous
  # commit ends, which is already well batched under load; raise it (e.g. "2ms") only on slow disks.
  commit_max_delay = "0s"

  # How long to wait for the data dir lock before failing with "data dir ... is in use by another crosscast
  # process".
  lock_timeout = "1s"
}

log {
  # trace, debug, info, warn or error. Personal data (emails, phone numbers) is never logged at info or above.
  level = "info"

  # text for people, json for log collectors.
  format = "text"
}

admin {
  # An API token with owner rights on every workspace, for automation and first access. Keep it secret; at least
  # 24 characters (try: openssl rand -hex 24). When unset, Crosscast generates an owner token on first start and
  # prints it once.
  bootstrap_token = env("CROSSCAST_BOOTSTRAP_TOKEN", "")
}

# Workspaces can be declared here (GitOps) or created through the API. A declared workspace is created at start if
# missing; its name is then owned by this file (the API refuses to rename or delete it), and so is its write key
# when the file sets one. Removing a block does not delete the workspace: it becomes an API-managed workspace.
# With no workspace at all, Crosscast creates one named "default".
#
# workspace "acme" {
#   # Display name.
#   name = "Acme Corp"
#
#   # The tracking write key websites and apps send events with (16-128 letters, digits, '_' or '-'). Leave it out
#   # to have one generated (and rotatable through the API); read it with GET /api/v1/workspaces/acme.
#   write_key = env("ACME_WRITE_KEY")
# }

# Plugins (message channels, scoring models, tag connectors) are sandboxed WebAssembly modules. Each block runs
# one plugin under a name. With no plugin block at all, every plugin bundled in the binary runs under its own name
# with the defaults below (today: "null", a channel that accepts every message and sends nothing).
#
# plugin "email" {
#   # "builtin:NAME" for a plugin bundled in the binary, or the path of a .wasm file.
#   source = "/etc/crosscast/plugins/email.wasm"
#
#   # For a file: its hex SHA-256 (printed by `crosscast plugin build`), checked before the module is compiled.
#   sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
#
#   # At most this many instances of the plugin run at once (each ~5-8 MB).
#   pool = 2
#
#   # A call that runs longer is stopped and its instance discarded.
#   timeout = "5s"
#
#   # Memory cap per instance (Go plugins need at least 4MiB).
#   memory = "64MiB"
#
#   # For a channel: at most this many messages per second, over a sliding second, across every campaign and
#   # workspace (a provider's own limit, say 14 per second for a new Amazon SES account). 0, the default: no cap.
#   rate_limit = 100
#
#   # Capabilities. A plugin gets only what it requests in its manifest AND is granted here; a grant the plugin
#   # did not request, or a request not granted, is an error at load.
#   grants {
#     # Origins the plugin may send HTTP requests to; every redirect is checked again.
#     http_hosts = ["https://api.example-sms.com"]
#     # Let those requests reach loopback, private or link-local addresses (on-premise providers). Off by default.
#     allow_private = false
#     # The smtp "relay" block the plugin may send mail through.
#     smtp_relay = "relay"
#     # Size of the plugin's key-value space per workspace.
#     kv_quota = "10MiB"
#   }
#
#   # The plugin's own settings, checked against the schema it declares (crosscast plugin inspect shows it).
#   config {
#     from = "news@example.com"
#   }
# }

# Mail relays plugins send email through. A plugin may use a relay only when its grants name it
# (smtp_relay = "relay" above). Crosscast owns the connections: it keeps a small pool open per relay, encrypts them,
# authenticates, and pipelines commands when the relay allows it; plugins never see the password. Declare as many
# relays as you need (a transactional one, a bulk one), each under its own name.
#
# smtp "relay" {
#   # Host name or IP address of your relay (your provider's submission server, or Postfix on this machine).
#   host = "smtp.example.com"
#
#   # 587 by default (465 when tls = "tls").
#   port = 587
#
#   # "starttls" (default): connect in plain text, then upgrade; a relay that does not offer STARTTLS is refused,
#   #   so a network attacker cannot strip the encryption.
#   # "tls": TLS from the first byte, usually on port 465.
#   # "none": plain text. Only for a relay on this host (127.0.0.1) or a trusted private network; a password is
#   #   refused with "none" unless host is a loopback address.
#   tls = "starttls"
#
#   # Credentials for AUTH (PLAIN, or LOGIN when the relay offers only that). Set both or neither. Keep the
#   # password out of this file: read it from the environment.
#   username = "crosscast@example.com"
#   password = env("SMTP_PASSWORD")
#
#   # Name announced in EHLO; defaults to this machine's host name. Some relays want a name that resolves.
#   helo = "crosscast.example.com"
#
#   # At most this many connections open to the relay at once; more messages wait their turn. Idle connections
#   # are closed after 30s.
#   pool = 4
#
#   # How long to wait for the relay at each step (connect, each command, the end of a message).
#   timeout = "30s"
#
#   # A PEM bundle to trust instead of the system's certificate authorities: for a relay with a private CA or a
#   # self-signed certificate. Read at start; a missing or empty file is an error.
#   ca_file = "/etc/crosscast/relay-ca.pem"
# }
