# Moonforge. `make help` lists the targets.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin
ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## start the server: every role in one process, embedded store in ./data, hot reload on
	$(BIN)/moonforge run -dev $(ARGS)

.PHONY: build
build: ## build bin/moonforge, bin/bot and bin/loadtest
	$(GO) build -o $(BIN)/ . ./tools/bot ./tools/loadtest

.PHONY: bot
bot: build ## play the demo scenario against a running server (ARGS="-ws" for WebSocket)
	$(BIN)/bot $(ARGS)

.PHONY: test
test: sdk-deps ## vet, check generated code, run every test with the race detector
	$(GO) vet ./...
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: the files above are not formatted" && false)
	$(GO) test -race -count=1 -timeout 9m ./...

.PHONY: bench
bench: build ## run the benchmark suite (about 4 minutes): bench/results/<date>.json and .md, README table
	$(GO) test -run '^$$' -bench . -benchtime 1s ./engine/wire ./engine/schema ./engine/script ./engine/room | tee $(BIN)/gobench.txt
	$(BIN)/loadtest suite -server $(BIN)/moonforge -gobench $(BIN)/gobench.txt

.PHONY: fuzz
fuzz: ## run every fuzz test for FUZZTIME each (default 30s)
	@for target in $$($(GO) test -list '^Fuzz' ./... | grep '^Fuzz'); do \
	  pkg=$$(grep -rl "func $$target(" --include='*_test.go' . | head -1 | xargs dirname); \
	  echo "== $$pkg $$target"; \
	  $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$${FUZZTIME:-30s} $$pkg || exit 1; \
	done

.PHONY: generate
generate: sdk ## regenerate everything generated from proto/ (same as make sdk)

# Debian packages the SDK tests run on: Lua 5.1 and 5.4 with LuaSocket and LuaSec (sdk/lua), mono with
# System.Net.Http (sdk/csharp).
SDK_PACKAGES := lua5.1 lua5.4 lua-socket lua-sec mono-mcs mono-runtime libmono-system-net-http4.0-cil
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: sdk
sdk: ## regenerate code from proto/ (engine/protocol, the SDKs' schemas) and tests/vectors
	$(GO) run ./tools/protogen
	$(GO) run ./tools/vectorgen

.PHONY: sdk-deps
sdk-deps: ## install the SDK tests' Debian packages (Lua 5.1, 5.4, LuaSocket, mono) when missing
	@missing=$$(for p in $(SDK_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "sdk-deps: not a Debian system; install by hand:" $$missing; exit 0; \
	fi; \
	echo "sdk-deps: installing" $$missing; \
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing

.PHONY: clean
clean: ## remove build output and the local data directory
	rm -rf $(BIN) data
