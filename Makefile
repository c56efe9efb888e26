# trainwrap. `make demo` and `make test` do everything on a fresh machine with Go.
export CGO_CFLAGS ?= -Wno-deprecated-declarations
GO ?= go
BIN ?= bin/trainwrap
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test bench demo lint fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) .

# The race detector on every package; then the output tests again without it: the
# 1 GB one is too slow under the race detector, and the 64 MB memory bound can only be
# measured without the detector's shadow memory.
# GORACE: a race-built process sleeps atexit_sleep_ms (1 s by default) before it exits,
# so that other goroutines can finish a race report. The tests re-execute the race-built
# test binary as supervisor, guard and sentinel, and wait for them to exit: 1 s each, ~3 s
# of every `trainwrap run` in a test (a trivial run: 4.0 s -> 0.7 s). 20 ms still lets a
# report that is being written finish.
test:
	GORACE="atexit_sleep_ms=20 $(GORACE)" $(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -count=1 -run 'TestOutput' -timeout 10m ./shim
	@# The classifier's per-class accuracy on its corpus, printed: go test hides a
	@# passing test's log.
	@out=$$($(GO) test -count=1 -run '^TestCorpus$$' -v ./classify 2>&1); rc=$$?; \
	  echo "$$out" | sed -n 's/^ *corpus_test.go:[0-9]*: //p' | grep -v '^misclassified'; exit $$rc

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2x ./...
	@rows=$$(mktemp); for s in bench/shim.sh bench/classify.sh bench/checkpoints.sh; do \
		echo "== $$s"; { bash "$$s" $(BIN) || echo "ROW|$$s FAILED (exit $$?): its rows are missing|-|-|-|-|-"; } | \
			tee -a "$$rows" | grep -v '^ROW|'; \
	done; echo "== issue 12: trainwrap against its anchors, same run"; bash bench/summary.sh "$$rows"; rm -f "$$rows"

demo: build
	bash scripts/demo.sh $(BIN)

# staticcheck at a pinned version, installed under bin/ (ignored) so every machine runs
# the same checks; a newer release may add checks that fail CI without a code change.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := bin/tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck

$(STATICCHECK):
	GOBIN=$(abspath $(dir $(STATICCHECK))) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# go mod tidy -diff changes nothing; it fails and prints the diff when go.mod or go.sum
# is not what tidy would write.
lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy and commit the result"; exit 1; }

fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
