# Configuration baked into the container image at /etc/crosscast/config.hcl. Mount your own file over it for more;
# `crosscast config example` documents every key.
server {
  # Inside a container, listen on every interface; publish the port with `docker run -p 8080:8080`.
  listen     = "0.0.0.0:8080"
  public_url = env("CROSSCAST_PUBLIC_URL", "http://localhost:8080")
}

storage {
  # The image declares /data as a volume: keep it on a named volume or a bind mount.
  data_dir = "/data"
}

log {
  level  = env("CROSSCAST_LOG_LEVEL", "info")
  format = env("CROSSCAST_LOG_FORMAT", "json")
}

admin {
  # Set CROSSCAST_BOOTSTRAP_TOKEN (openssl rand -hex 24) for a known owner token; otherwise the first start prints
  # a generated one in the container log.
  bootstrap_token = env("CROSSCAST_BOOTSTRAP_TOKEN", "")
}
