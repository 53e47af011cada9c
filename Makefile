# Ferry: `make run` starts the server with embedded defaults; `make test` runs
# every test, installing what the tests need first. See README.md.

GO      ?= go
NPM     ?= npm
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/ferry
AGENT   := bin/ferry-agent
# Debian packages the tests use: a real Redis for queue tests, Chromium for the
# browser tests, rsync and GNU time for the benchmarks, mkfs/sfdisk for real disk images;
# qemu, debootstrap and friends for the launch tests, which boot a Debian image built
# by scripts/testimage/build.sh (ntfs-3g makes the Windows disk the adaptation refuses);
# btrfs, qemu-img, qemu-storage-daemon (qemu-system-common) and lvm2 for the
# point-in-time snapshot tests (engine/snapshot); poppler-utils to read the PDF report
# back and a CJK font so Chinese renders in Chromium (reports, UI screenshots);
# PostgreSQL for the suites that claim database behaviour (internal/pgtest runs a
# throwaway cluster of it; make generate's PostgreSQL diff needs one too).
APT_PKGS := redis-server chromium rsync time e2fsprogs fdisk dosfstools \
	qemu-system-x86 qemu-utils debootstrap util-linux mount ntfs-3g \
	btrfs-progs qemu-system-common lvm2 poppler-utils fonts-wqy-microhei postgresql

.PHONY: run build agent ui test test-go test-postgres test-ui deps generate check-generated bench lint fuzz clean

run: ui
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/ferry serve

build: ui agent
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ferry

# agent is the slim binary for source hosts: `ferry agent …` and `ferry seed`
# without the server (11 MB on disk, ≈ 12 MiB RSS per inventory pass).
agent:
	$(GO) build -tags agent -ldflags "$(LDFLAGS)" -o $(AGENT) ./cmd/ferry

# The UI is built into frontend/dist and embedded by go:embed. `npm ci` refuses
# a lock file without entries for other platforms' optional packages (rollup's
# android/darwin builds), which is what npm writes against a registry mirror
# that lacks them; `npm install --no-save` then installs the same locked
# versions without rewriting the lock.
ui:
	@if [ -f frontend/package.json ]; then \
		cd frontend && { [ -d node_modules ] || $(NPM) ci --no-audit --no-fund || $(NPM) install --no-save --no-audit --no-fund; } && $(NPM) run build; \
	fi

deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: deps check-generated test-go test-ui

# test-go runs every package (the database, app and store suites on SQLite;
# internal/database's replay test on SQLite and PostgreSQL), then the app
# suite again on PostgreSQL.
test-go:
	$(GO) vet ./...
	$(GO) test -p 2 -count=1 -timeout 20m ./...
	$(MAKE) -s test-postgres

# test-postgres runs the whole internal/app suite with every server on a
# PostgreSQL database (a throwaway cluster that internal/pgtest starts).
test-postgres:
	FERRY_TEST_DATABASE=postgres $(GO) test -count=1 -timeout 20m ./internal/app/

test-ui: build
	@if [ -f frontend/package.json ]; then \
		cd frontend && $(NPM) test && FERRY_BIN=$(CURDIR)/$(BIN) $(NPM) run test:e2e; \
	fi

# generate regenerates ent, the GraphQL schema and resolvers, and a new
# migration when ent/schema changed (none otherwise).
generate: deps
	cd ent && $(GO) run entc.go
	$(GO) run github.com/99designs/gqlgen generate
	$(GO) run ./ent/migrate/diff.go auto
	@if [ -f frontend/package.json ] && [ -d frontend/node_modules ]; then cd frontend && $(NPM) run codegen; fi

# check-generated proves that the committed generated code is what
# `make generate` produces, byte for byte.
check-generated:
	@scripts/check-generated.sh

# bench runs every benchmark (docs/benchmarks.md); ONLY=api|go|queue|worker|limits|topology|planner|engine|discovery|launch|ui
# runs one part, QUICK=1 shrinks the inputs.
bench: deps build
	@scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# fuzz runs every fuzz target briefly (FUZZTIME=30s for longer).
FUZZTIME ?= 10s
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin var frontend/dist/assets frontend/dist/index.html
