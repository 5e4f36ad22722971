# The README's two commands: `make run` starts the reference server, `make test`
# runs everything CI runs. Tool versions come from go.mod (tool directives), so a
# fresh machine needs only Go (and, for `make generate`, Debian's protoc).

GO        ?= go
BIN       := bin
LISTEN    ?= 127.0.0.1:7878
FRAMING   ?= raw
TARGET    ?=
GOFLAGS_TEST ?= -race -count=1 -timeout 9m

.PHONY: all build run test check-fmt vet check-tidy check-generate generate conform bench fuzz docs clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

## run: build and start the reference server on $(LISTEN) ($(FRAMING) framing)
run: build
	$(BIN)/echoadd-server --listen $(LISTEN) --framing $(FRAMING)

## test: formatting, vet, tidy go.mod, generated code current, every test with -race
test: check-fmt vet check-tidy check-generate
	$(GO) test $(GOFLAGS_TEST) ./...

check-fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change these files (run gofmt -w):"; echo "$$out"; exit 1; fi

# ./... leaves out testdata, which holds the malformed-input corpus's parser.
# The goroutine engine is there for systems without epoll: the module must
# at least build for one (macOS).
vet:
	$(GO) vet ./... ./testdata/malformed
	GOOS=darwin $(GO) vet ./...

check-tidy:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result"; $(GO) mod tidy -diff; exit 1; }

# Regenerates into a temporary tree and compares, ignoring the protoc version
# line (Debian's protoc may differ from the one that generated the committed file).
check-generate:
	@if ! command -v protoc >/dev/null 2>&1; then \
		echo "check-generate: protoc not installed, skipping (apt-get install protobuf-compiler to enable)"; exit 0; fi; \
	tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) --go_out=$$tmp --go_opt=module=echoadd protocol/messages.proto && \
	if ! diff -q -I '^// 	protoc ' $$tmp/protocol/messages.pb.go protocol/messages.pb.go >/dev/null; then \
		echo "protocol/messages.pb.go is stale: run 'make generate' and commit the result"; \
		diff -I '^// 	protoc ' $$tmp/protocol/messages.pb.go protocol/messages.pb.go | head -20; exit 1; fi

## generate: regenerate protocol/messages.pb.go (needs protoc: apt-get install protobuf-compiler)
generate:
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) --go_out=. --go_opt=module=echoadd protocol/messages.proto

## conform: run the conformance suite against the reference binary in every framing,
## or against TARGET=HOST:PORT in FRAMING
conform: build
ifeq ($(TARGET),)
	@for f in raw len32 varint; do echo "== conformance, bundled reference, $$f framing"; \
		$(BIN)/echoadd-conform --framing $$f || exit $$?; done
else
	$(BIN)/echoadd-conform --target $(TARGET) --framing $(FRAMING)
endif

## bench: reference against the in-tree comparator, standard matrix
bench: build
	$(BIN)/echoadd-bench --server-bin $(BIN)/echoadd-server --sweep --baseline

## fuzz: run every fuzz target of every package briefly (FUZZTIME each)
FUZZTIME ?= 20s
fuzz:
	@for p in $$($(GO) list ./...); do \
		for t in $$($(GO) test $$p -list '^Fuzz' | grep '^Fuzz' | sort -u); do \
			echo "== $$p $$t"; $(GO) test $$p -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done; done

## docs: regenerate docs/REQUIREMENTS.md from the suite (echoadd-conform --list)
docs:
	$(GO) generate ./suite/selftest

clean:
	rm -rf $(BIN)
