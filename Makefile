# Moonforge. `make help` lists the targets.

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin
ARGS ?=

# The version and commit that `moonforge version` prints ("dev" and "unknown" outside Git).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# The platforms moonforge is built, vetted and released for, all with CGO off.
PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## start the server: every role in one process, embedded store in ./data, hot reload on
	$(BIN)/moonforge run -dev $(ARGS)

.PHONY: build
build: ## build bin/moonforge, bin/bot and bin/loadtest
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ . ./tools/bot ./tools/loadtest

.PHONY: bot
bot: build ## play the demo scenario against a running server (ARGS="-ws": WebSocket, ARGS="-kcp": KCP)
	$(BIN)/bot $(ARGS)

.PHONY: test
test: sdk-deps ## vet, format check, build for every platform, every test with the race detector (SKIP_SDK_DEPS=1: install nothing)
	$(GO) vet ./...
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
	  echo "gofmt: these files are not formatted (gofmt -w fixes them):"; echo "$$unformatted"; exit 1; fi
	@$(MAKE) --no-print-directory cross
	$(GO) test -race -count=1 -timeout 9m ./...

.PHONY: cross
cross: ## build moonforge and vet every package for each of PLATFORMS (CGO off)
	@for p in $(PLATFORMS); do \
	  echo "cross: $$p"; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) build -o /dev/null . || exit 1; \
	  GOOS=$${p%/*} GOARCH=$${p#*/} CGO_ENABLED=0 $(GO) vet ./... || exit 1; \
	done

.PHONY: test-windows
test-windows: windows-deps ## run moonforge.exe under Wine: login, Ping, Echo, hot reload, Ctrl-C (tests/windows)
	MOONFORGE_TEST_WINDOWS=1 $(GO) test -count=1 -timeout 10m -v ./tests/windows

.PHONY: release
release: ## write dist/: an archive per platform (binary, lua/, proto/, config, README, LICENSE) and SHA256SUMS
	$(GO) run ./tools/release -go "$(GO)" -version "$(VERSION)" -ldflags "$(LDFLAGS)" -platforms "$(PLATFORMS)" -out dist

.PHONY: test-release
test-release: release ## make release, then check every archive's contents, binary and checksum
	MOONFORGE_DIST=$(CURDIR)/dist MOONFORGE_COMMIT=$(COMMIT) $(GO) test -count=1 -run TestDist -v ./tools/release

.PHONY: bench
bench: build ## run the benchmark suite (about 12 minutes): bench/results/<date>.json and .md, README table; store backends in bin/storebench.txt
	$(GO) test -run '^$$' -bench . -benchtime 1s ./engine/wire ./engine/luapb ./engine/script ./engine/room ./engine/bus | tee $(BIN)/gobench.txt
	$(BIN)/loadtest suite -server $(BIN)/moonforge -gobench $(BIN)/gobench.txt
	$(GO) test -run '^$$' -bench . -benchtime 2000x -timeout 20m ./engine/store/storebench | tee $(BIN)/storebench.txt

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
# System.Net.Http (sdk/csharp); and redis-server, which the store tests start on ports of their own
# (engine/store/storetest). make test installs the missing ones (as root, or with sudo) unless
# SKIP_SDK_DEPS=1; the tests then name what is missing, and fail under CI=true. The store tests
# also use the machine's MariaDB (127.0.0.1:3306) and PostgreSQL (127.0.0.1:5432, for FerretDB).
SDK_PACKAGES := lua5.1 lua5.4 lua-socket lua-sec mono-mcs mono-runtime libmono-system-net-http4.0-cil redis-server
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
sdk-demo: sdk-deps ## run the C# SDK's console sample on mono against a running server (ARGS="127.0.0.1 7002 ws", "127.0.0.1 7003 kcp")
	@mkdir -p $(BIN)/csharp
	mcs -langversion:7.2 -warnaserror+ -nologo -target:library -out:$(BIN)/csharp/Moonforge.Client.dll $$(find $(CSHARP)/Runtime -name '*.cs' | sort)
	mcs -langversion:7.2 -warnaserror+ -nologo -target:exe -out:$(BIN)/csharp/ConsoleDemo.exe -r:$(BIN)/csharp/Moonforge.Client.dll $(CSHARP)/Samples~/Console/*.cs
	mono $(BIN)/csharp/ConsoleDemo.exe $(ARGS)

# Debian packages of the Windows smoke test: Wine, and mingw-w64 for its ProcessPrng shim DLL.
WINDOWS_PACKAGES := wine64 gcc-mingw-w64-x86-64-win32

.PHONY: windows-deps
windows-deps: ## install Wine and mingw-w64 for make test-windows when missing (sdk-deps' recipe)
	@$(MAKE) --no-print-directory sdk-deps SDK_PACKAGES="$(WINDOWS_PACKAGES)"

.PHONY: clean
clean: ## remove build output, release archives and the local data directory
	rm -rf $(BIN) dist data
