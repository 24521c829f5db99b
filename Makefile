# seclisten — build, run and test. Every target works offline once the Go
# module cache is filled (`go mod download`).

GO      ?= go
BIN     := bin/seclisten
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Arguments for `make run`.
RUN_ARGS ?= serve --plain --addr 127.0.0.1:65432
FUZZTIME ?= 10s

.PHONY: all build run test test-short fuzz lint fmt clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/seclisten

## run: build and serve plain TCP on 127.0.0.1:65432 (Ctrl-C stops it).
run: build
	./$(BIN) $(RUN_ARGS)

## test: formatting, vet and every test with the race detector.
test: lint
	$(GO) test -race -count=1 -timeout 10m ./...

## test-short: unit tests only, no integration tests against the binary.
test-short:
	$(GO) test -short -count=1 ./...

## fuzz: run every fuzz target for FUZZTIME each (seed corpora in testdata/).
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

## lint: gofmt, go vet and staticcheck (pinned as a tool in go.mod).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
	$(GO) clean -testcache
