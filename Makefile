# Build, test and benchmark entry points. `make test` is what CI runs (through .ci/run).

GO       ?= go
BIN      := bin/imagebadger
FUZZTIME ?= 30s
# Extra flags for `go test` in `make test`, e.g. TESTFLAGS='-run TestFoo -v'.
TESTFLAGS ?=
# The whole suite must stay well under 20 minutes on 2 cores; a hung package fails here.
TESTTIMEOUT ?= 10m

# go.mod names the toolchain (a patch release with the standard library's security
# fixes); let the go command fetch it through the module proxy even where the
# machine's go.env says GOTOOLCHAIN=local.
export GOTOOLCHAIN := auto

# crane is installed by `go install`, so put GOPATH/bin on PATH for the tests.
export PATH := $(PATH):$(shell $(GO) env GOPATH)/bin

.PHONY: all build run image deps generate lint check test test-deploy bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/imagebadger

run: build
	./$(BIN) serve

# The service's OCI image, built without a container daemon by internal/buildimage:
# static binaries for linux/amd64 and linux/arm64 (cgo cross-compiled with Debian's
# gcc-aarch64-linux-gnu), an SBOM and a provenance attached as BuildKit attaches them,
# written as an OCI image layout; `crane push $(OUT) REF` uploads it as one index.
#   OUT=DIR        where the layout goes (default bin/image; an existing layout is replaced)
#   VERSION=V      the version to stamp (default: git describe --tags --always --dirty)
#   PLATFORMS=P,…  a subset of linux/amd64,linux/arm64
#   SOURCE_DATE_EPOCH  (environment) every timestamp of the image; default the commit's time
# The same commit gives the same digests.
OUT       ?= bin/image
VERSION   ?=
PLATFORMS ?= linux/amd64,linux/arm64
image:
	$(GO) run ./internal/buildimage -go $(GO) -out $(OUT) -platforms $(PLATFORMS) $(if $(VERSION),-version $(VERSION))

deps:
	./scripts/deps.sh

generate:
	$(GO) tool templ generate

# The templ check: generated files must be what `templ generate` makes of the .templ
# sources. On a clean checkout (CI) this is "git status shows no *_templ.go change"; in
# a work tree with uncommitted templ changes it checks that generating changes nothing.
lint:
	@out="$$(gofmt -l .)"; \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@db="$$(./scripts/vulndb.sh)" && govulncheck -db "file://$$db" ./...
	@# deploy/ is a module of its own (its tests use the Kubernetes API types):
	@# the same checks there, with the staticcheck this module's go.mod pins.
	cd deploy && $(GO) vet ./...
	@sc="$$($(GO) tool -n staticcheck)" && cd deploy && echo "staticcheck ./... (in deploy)" && $$sc ./...
	@db="$$(./scripts/vulndb.sh)" && cd deploy && govulncheck -test -db "file://$$db" ./...
	@before="$$(git status --porcelain -- '*_templ.go'; git ls-files --cached --others --exclude-standard '*_templ.go' | xargs -r sha256sum)"; \
	$(GO) tool templ generate -log-level error || exit 1; \
	after="$$(git status --porcelain -- '*_templ.go'; git ls-files --cached --others --exclude-standard '*_templ.go' | xargs -r sha256sum)"; \
	if [ "$$before" != "$$after" ] || { [ -n "$$CI" ] && [ -n "$$(git status --porcelain -- '*_templ.go')" ]; }; then \
		echo "templ generate changed generated files; commit the result:"; git status --porcelain -- '*_templ.go'; exit 1; \
	fi

test: deps
	$(MAKE) --no-print-directory lint
	$(GO) test -race -count=1 -timeout $(TESTTIMEOUT) $(TESTFLAGS) ./...
	$(MAKE) --no-print-directory test-deploy
	@echo "== the store's suite again, on PostgreSQL"
	$(GO) test -race -count=1 -timeout $(TESTTIMEOUT) $(TESTFLAGS) ./store/ -args -store.engine=postgres

# The edit-test loop: lint, then the unit tests, which need no registry
# process, browser, database server or root (the end-to-end tests in e2e/
# and its subfolders, and the harness's own tests in internal/testing/testenv,
# are what `make test` adds). Under a minute once the build cache is warm.
UNITPKGS = $(shell $(GO) list ./... | grep -v -e '/e2e$$' -e '/e2e/' -e '/internal/testing/testenv$$')
check:
	./scripts/deps.sh --npm
	$(MAKE) --no-print-directory lint
	$(GO) test -count=1 -timeout 5m $(TESTFLAGS) $(UNITPKGS)
	$(MAKE) --no-print-directory test-deploy

# The deployment files (deploy/) against the Compose schema, the Kubernetes API
# types, systemd-analyze and the binary's flags; deploy/ is a module of its own.
test-deploy:
	cd deploy && $(GO) test -count=1 -timeout 5m $(TESTFLAGS) ./...

# Each program runs even when one before it failed; the target fails at the end,
# naming those that did. attackbench replays the hostile-load attacks against the
# real binary while a well-behaved client reads (its table says PASS or FAIL per
# attack; -strict makes a FAIL fail the target). soak is the load test (a minute of mixed traffic
# during a refresh storm; SOAKFLAGS='-duration 10s' for a short run).
SOAKFLAGS ?=
# BENCH_BASELINE is the revision bench/replicas measures beside this tree's
# (fan-out and push-to-delivery latency, the builds interleaved in one run):
# the change flow before the change log, whose figures the fan-out must keep.
# Empty measures this tree alone.
BENCH_BASELINE ?= 29f31af
bench:
	@failed=""; \
	for cmd in "$(GO) test -run ^$$ -bench . -benchmem ./..." \
		"$(GO) test -run ^$$ -bench . -benchmem ./store/ -args -store.engine=postgres" \
		"$(GO) run ./bench/benchcmp" \
		"$(GO) run ./bench/loadbench" \
		"$(GO) run ./bench/attackbench" \
		"$(GO) run ./bench/replicas -baseline=$(BENCH_BASELINE)" \
		"$(GO) run ./bench/soak $(SOAKFLAGS)"; do \
		echo "== $$cmd"; \
		$$cmd || failed="$$failed\n  $$cmd"; \
	done; \
	if [ -n "$$failed" ]; then printf "bench: these failed:$$failed\n"; exit 1; fi

# Runs every Fuzz* target of every package for FUZZTIME each (go test -fuzz takes one
# target of one package at a time).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin
