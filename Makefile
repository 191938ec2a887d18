# Moonforge. `make help` lists the targets.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin
ARGS ?=

# The version and commit that `moonforge version` prints ("dev" and "unknown" outside Git).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## start the server: every role in one process, embedded store in ./data, hot reload on
	$(BIN)/moonforge run -dev $(ARGS)

.PHONY: build
build: ## build bin/moonforge, bin/bot and bin/loadtest
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ . ./tools/bot ./tools/loadtest

.PHONY: bot
bot: build ## play the demo scenario against a running server (ARGS="-ws" for WebSocket)
	$(BIN)/bot $(ARGS)

.PHONY: test
test: sdk-deps ## vet, format check, every test with the race detector (SKIP_SDK_DEPS=1: install nothing)
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
	  echo "gofmt: these files are not formatted (gofmt -w fixes them):"; echo "$$unformatted"; exit 1; fi
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
# System.Net.Http (sdk/csharp). make test installs the missing ones (as root, or with sudo) unless
# SKIP_SDK_DEPS=1; the SDK tests then name what is missing, and fail under CI=true.
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
	if [ -n "$(SKIP_SDK_DEPS)" ]; then \
	  echo "sdk-deps: SKIP_SDK_DEPS is set; not installing" $$missing; exit 0; \
	fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "sdk-deps: not a Debian system; install by hand:" $$missing; exit 0; \
	fi; \
	if [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null; then \
	  echo "sdk-deps: installing" $$missing "needs root or sudo; or run with SKIP_SDK_DEPS=1"; exit 1; \
	fi; \
	echo "sdk-deps: installing" $$missing "(apt-get$(if $(SUDO), with sudo))"; \
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing

# The C# SDK's console sample, built with mono's mcs (C# 7.2, as Unity) into $(BIN)/csharp.
CSHARP := sdk/csharp

.PHONY: sdk-demo
sdk-demo: sdk-deps ## run the C# SDK's console sample on mono against a running server (ARGS="127.0.0.1 7002 ws")
	@mkdir -p $(BIN)/csharp
	mcs -langversion:7.2 -warnaserror+ -nologo -target:library -out:$(BIN)/csharp/Moonforge.Client.dll $$(find $(CSHARP)/Runtime -name '*.cs' | sort)
	mcs -langversion:7.2 -warnaserror+ -nologo -target:exe -out:$(BIN)/csharp/ConsoleDemo.exe -r:$(BIN)/csharp/Moonforge.Client.dll $(CSHARP)/Samples~/Console/*.cs
	mono $(BIN)/csharp/ConsoleDemo.exe $(ARGS)

.PHONY: clean
clean: ## remove build output and the local data directory
	rm -rf $(BIN) data
