# syntax=docker/dockerfile:1
# Crosscast in a container: a static binary on a slim Debian base, run as a non-root user, data on the /data volume.
#   docker build -t crosscast .
#   export CROSSCAST_BOOTSTRAP_TOKEN=$(openssl rand -hex 24)
#   docker run -d -p 8080:8080 -v crosscast-data:/data -e CROSSCAST_BOOTSTRAP_TOKEN crosscast

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so source edits do not re-download them. The SDK is a local module (replace ./sdk), and the
# bundled plugins' module depends on it too.
COPY go.mod go.sum ./
COPY sdk/go.mod sdk/
COPY plugins/builtin/go.mod plugins/builtin/
RUN go mod download
COPY . .
ARG VERSION=dev
RUN make build VERSION=${VERSION}

FROM debian:bookworm-slim
# CA roots for plugins' outbound HTTPS; tzdata for contacts' time zones.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin crosscast \
 && mkdir -p /data /etc/crosscast \
 && chown crosscast:crosscast /data
COPY --from=build /src/bin/crosscast /usr/local/bin/crosscast
COPY deploy/docker/config.hcl /etc/crosscast/config.hcl
USER crosscast:crosscast
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["crosscast", "healthcheck", "-url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["crosscast"]
CMD ["serve", "-config", "/etc/crosscast/config.hcl"]
