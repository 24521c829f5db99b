# seclisten — build, run and test. `make test` needs nothing but Go and
# make: it installs what the tests call when it is missing (`make deps`).
# Every target works offline once that is done.

GO      ?= go
BIN     := bin/seclisten
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Arguments for `make run`: TLS on 127.0.0.1:8443 with the development PKI
# in certs/, client certificates verified when given (and checked against
# the CRL), so both `openssl s_client` with and without -cert work; a
# refused client is told why over TLS (--explain).
RUN_ARGS ?= serve --addr 127.0.0.1:8443 \
	--cert certs/server.pem --key certs/server-key.pem \
	--client-ca certs/ca.pem --crl certs/crl.pem --client-auth verify-if-given --explain
FUZZTIME ?= 10s

.PHONY: all build run testbed certs deps test test-short fuzz lint fmt clean bench bench-fleet

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/seclisten

## run: build, make the test PKI if missing, serve TLS on 127.0.0.1:8443.
run: build certs
	./$(BIN) $(RUN_ARGS)

## testbed: misbehaving TLS servers on 127.0.0.1:8600-8614 that grade the
## client you point at them; Ctrl-C prints the report card.
testbed: build
	./$(BIN) testbed

## certs: the development PKI in certs/ (kept if certs/ca.pem exists).
certs: build
	@if [ -f certs/ca.pem ]; then echo "certs/ already holds a PKI (seclisten certs init --dir certs --force remakes it)"; \
	  else ./$(BIN) certs init --dir certs; fi

## deps: what the tests call, installed if missing (scripts/test-deps.sh:
## Debian packages with apt-get as root, otherwise the one command to run;
## the Go modules and the tools pinned in go.mod). Quick when all is there.
deps:
	GO='$(GO)' ./scripts/test-deps.sh test

## test: formatting, vet and every test with the race detector. The
## timeout is a hang guard only: cmd/seclisten's tests take about 5 minutes
## on an idle 2-core machine, and must pass with both cores busy too.
test: deps lint
	$(GO) test -race -count=1 -timeout 25m ./...

## test-short: unit tests only, no integration tests against the binary.
test-short: deps
	$(GO) test -short -count=1 ./...

## fuzz: run every fuzz target for FUZZTIME each (seed corpora in testdata/).
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## lint: gofmt, go vet and staticcheck (pinned as a tool in go.mod), and
## builds for CROSS_OS (a Linux-only call outside a build-tagged file
## breaks them).
CROSS_OS ?= windows darwin freebsd netbsd openbsd
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@for os in $(CROSS_OS); do echo "GOOS=$$os $(GO) build ./..."; GOOS=$$os $(GO) build ./... || exit 1; done

## bench: seclisten with its default defences against tlsref (the bare
## crypto/tls reference) on loopback, server and load generator pinned to
## one core each: rates and operations per server-CPU-second (full,
## resumed, mTLS and ML-KEM handshakes, connect + one line + close, echo;
## a second tlsref, the control, for resumed handshakes),
## the flood, idle connections at scale beside tlsref and HAProxy (KiB
## per connection, slope, time to open them), the first line's latency
## after parking and the exchange loop's allocations (Go benchmarks); then
## BENCHMARKS.md (about 16 minutes; RUNS=idle or RUNS="cpu flood" for a part, and ROUNDS,
## DURATION, IDLE_SIZES, OUT_DIR, BENCHMARKS_MD ... from the environment,
## see scripts/bench.sh), then bench-fleet. Installs haproxy, taskset and
## redis-server first if they are missing, as deps does.
bench:
	GO='$(GO)' ./scripts/test-deps.sh bench
	GO='$(GO)' ./scripts/bench.sh
	GO='$(GO)' ./scripts/bench-fleet.sh

## bench-fleet: one replica with --redis against the same without, on
## loopback with a temporary redis-server: handshakes/s and Redis commands
## per accepted connection (under a minute; ROUNDS, DURATION, RATE and
## OUT_DIR from the environment, see scripts/bench-fleet.sh). Prints the
## lines to paste into BENCHMARKS.md.
bench-fleet:
	GO='$(GO)' ./scripts/test-deps.sh bench
	GO='$(GO)' ./scripts/bench-fleet.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
	$(GO) clean -testcache

## install: the binary, the systemd units (service and socket) and (only if absent) the
## environment file. DESTDIR stages into a directory (packaging, tests);
## PREFIX (default /usr/local) is where the binary goes, and the unit is
## rewritten to run it from there. Never runs systemctl.
PREFIX  ?= /usr/local
DESTDIR ?=
UNITDIR ?= /etc/systemd/system
CONFDIR := /etc/seclisten
INSTALL ?= install

.PHONY: install uninstall

install: build
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(PREFIX)/bin' '$(DESTDIR)$(UNITDIR)'
	$(INSTALL) -m 0755 $(BIN) '$(DESTDIR)$(PREFIX)/bin/seclisten'
	sed 's|/usr/local/bin/seclisten|$(PREFIX)/bin/seclisten|g' scripts/seclisten.service > bin/seclisten.service
	$(INSTALL) -m 0644 bin/seclisten.service '$(DESTDIR)$(UNITDIR)/seclisten.service'
	$(INSTALL) -m 0644 scripts/seclisten.socket '$(DESTDIR)$(UNITDIR)/seclisten.socket'
	@if [ -e '$(DESTDIR)$(CONFDIR)/seclisten.env' ]; then \
	  echo "kept $(DESTDIR)$(CONFDIR)/seclisten.env (compare with scripts/seclisten.env for new settings)"; \
	else \
	  echo "$(INSTALL) -d -m 0755 '$(DESTDIR)$(CONFDIR)'"; $(INSTALL) -d -m 0755 '$(DESTDIR)$(CONFDIR)' && \
	  echo "$(INSTALL) -m 0640 scripts/seclisten.env '$(DESTDIR)$(CONFDIR)/seclisten.env'" && \
	  $(INSTALL) -m 0640 scripts/seclisten.env '$(DESTDIR)$(CONFDIR)/seclisten.env'; \
	fi
	@if [ -e '$(DESTDIR)$(CONFDIR)/seclisten.toml' ]; then \
	  echo "kept $(DESTDIR)$(CONFDIR)/seclisten.toml (compare with scripts/seclisten.toml for new keys)"; \
	else \
	  $(INSTALL) -d -m 0755 '$(DESTDIR)$(CONFDIR)' && \
	  echo "$(INSTALL) -m 0644 scripts/seclisten.toml '$(DESTDIR)$(CONFDIR)/seclisten.toml'" && \
	  $(INSTALL) -m 0644 scripts/seclisten.toml '$(DESTDIR)$(CONFDIR)/seclisten.toml'; \
	fi
	@echo
	@echo "Next:"
	@echo "  1. edit $(CONFDIR)/seclisten.toml or $(CONFDIR)/seclisten.env (domains, e-mail; staging first),"
	@echo "     then: $(PREFIX)/bin/seclisten check --config $(CONFDIR)/seclisten.toml"
	@echo "  2. systemctl daemon-reload"
	@echo "  3. systemctl enable --now seclisten.socket seclisten"
	@echo "  4. journalctl -u seclisten -f"

## uninstall: remove the binary and the units; keep $(CONFDIR) and the state
## (/var/lib/private/seclisten: the ACME account, keys and certificates).
## Run `systemctl disable --now seclisten.socket seclisten` first.
uninstall:
	rm -f '$(DESTDIR)$(PREFIX)/bin/seclisten' '$(DESTDIR)$(UNITDIR)/seclisten.service' '$(DESTDIR)$(UNITDIR)/seclisten.socket'
	@echo "kept $(CONFDIR) and /var/lib/private/seclisten; now: systemctl daemon-reload"
