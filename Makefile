# The two commands of the README: `make run` and `make test`.
GO       ?= go
BIN      := bin/cocaine
PYTHON   ?= /usr/bin/python3
# Where `make install` puts bin/cocaine ($(DESTDIR)$(PREFIX)/bin).
PREFIX   ?= /usr/local
# The release `cocaine version` prints; the commit comes from git.
VERSION  ?=
LDFLAGS  := $(if $(VERSION),-X github.com/cocaine-cloud/cocaine/internal/buildinfo.Version=$(VERSION))
# Fuzz time per target for `make fuzz`.
FUZZTIME ?= 30s

.PHONY: all build install run test test-go test-python vet deps deps-test npm-deps fuzz bench image-test clean

all: build

deps:
	@scripts/deps.sh run
	@$(MAKE) --no-print-directory npm-deps

deps-test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory npm-deps

# npm packages, each folder from its lock file: the Node runtime's own and
# the Express example's. npm ci reuses its cache (~/.npm) before the
# network, and runs again only when a lock file changes.
NPM_DIRS := slaves/node examples/express
npm-deps: $(addsuffix /node_modules/.package-lock.json,$(NPM_DIRS))

%/node_modules/.package-lock.json: %/package-lock.json
	cd $* && npm ci --prefer-offline --no-audit --no-fund --loglevel=error

# -buildvcs=auto: the commit for `cocaine version`, even where GOFLAGS
# turns VCS stamping off.
build: deps
	$(GO) build -buildvcs=auto -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/cocaine

# One file: the language runtimes and the Go SDK travel inside the binary.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/cocaine

# The whole cloud in one process on the embedded default, with ./examples.
run: build
	./$(BIN) dev

vet:
	$(GO) vet ./...

test: deps-test vet test-go test-python

test-go:
	$(GO) test -race -timeout 15m ./...

test-python:
	@if [ -d slaves/python/tests ]; then $(PYTHON) -m unittest discover -s slaves/python/tests; fi

# Short runs of every fuzz target; FUZZTIME=5m for a real session.
fuzz:
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$spec/*_test.go | sed 's/func //'); do \
	    echo "fuzz $$spec $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=10x $$spec || exit 1; \
	  done; \
	done

# Numbers and method: docs/benchmarks.md. Takes about 7 minutes; run it on
# an otherwise idle machine.
bench: build
	@scripts/deps.sh bench
	$(GO) test -run='^$$' -bench=RoundTrip -benchtime=20000x ./engine/
	$(GO) test -run='^$$' -bench=SmartVsRoundRobin -benchtime=4000x ./gateway/
	bench/run.sh

# Builds the Dockerfile with podman (base images made locally with
# debootstrap), runs it and gets the echo example's answer through the
# container's front. Not part of `make test`: cold it takes several
# minutes (docs/operations.md, "Container image").
image-test:
	scripts/image-test.sh

clean:
	rm -rf bin var
