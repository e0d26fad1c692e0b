# Crosscast build, run and test. `make help` lists the targets.
SHELL       := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
BIN         := bin/crosscast
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
ARGS        ?=

BUILTIN     := $(patsubst plugins/builtin/%/main.go,%,$(wildcard plugins/builtin/*/main.go))
BUNDLED     := $(patsubst %,plugins/bundled/wasm/%.wasm,$(BUILTIN))

.PHONY: help build run test e2e bench lint fmt check clean plugins

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-7s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

plugins: $(BUNDLED) ## compile the bundled plugins (plugins/builtin/*) to wasm for embedding

plugins/bundled/wasm/%.wasm: plugins/builtin/%/*.go $(wildcard sdk/*.go sdk/wire/*.go) plugins/builtin/go.mod
	@mkdir -p $(@D)
	cd plugins/builtin && GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o ../bundled/wasm/$*.wasm ./$*

build: plugins ## build bin/crosscast (static, CGO off), bundled plugins included
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/crosscast

run: build ## build, then serve on 127.0.0.1:8080 with embedded defaults and data in ./data (ARGS="-config f.hcl")
	./$(BIN) serve $(ARGS)

test: plugins e2e ## the whole test suite, race detector on (what .ci/run runs): the server module, the plugin SDK, the browser tests
	$(GO) test -race -count=1 ./...
	cd sdk && $(GO) test -race -count=1 ./...
	cd plugins/builtin && CROSSCAST_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 ./...

E2E_DEPS := admin/e2e/node_modules/.package-lock.json

$(E2E_DEPS): admin/e2e/package.json admin/e2e/package-lock.json
	cd admin/e2e && npm ci --no-audit --no-fund --loglevel=error

e2e: build $(E2E_DEPS) ## browser tests of the website tag in headless Chromium (apt-get install chromium; CHROMIUM=path)
	@test -x "$${CHROMIUM:-/usr/bin/chromium}" || { echo "make e2e needs Chromium: apt-get install -y chromium (or set CHROMIUM=/path/to/chromium)"; exit 1; }
	cd admin/e2e && CROSSCAST_BIN=$(CURDIR)/$(BIN) node --test --test-reporter=spec --test-timeout=180000 tag.test.mjs

bench: plugins ## run every benchmark, print a table, write bench/results.json
	mkdir -p bench
	{ $(GO) test -run '^$$' -bench . -benchmem -count 1 -timeout 30m ./... && \
	  (cd sdk && $(GO) test -run '^$$' -bench . -benchmem -count 1 ./...); } | tee bench/raw.txt
	$(GO) run ./cmd/benchreport -in bench/raw.txt -out bench/results.json -command 'make bench'

lint: plugins ## go vet and staticcheck (pinned), on the server module and the plugin SDK
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd sdk && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	cd plugins/builtin && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

fmt: ## format the Go code
	gofmt -w $$(git ls-files '*.go')

check: ## fail if code is unformatted, go.mod untidy, or the tree dirty (run after make test)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) mod tidy -diff
	cd sdk && $(GO) mod tidy -diff
	cd plugins/builtin && $(GO) mod tidy -diff
	@test -z "$$(git status --porcelain)" || { echo "tree is dirty:"; git status --porcelain; exit 1; }

clean: ## remove build outputs
	rm -rf bin plugins/bundled/wasm
