# Every target installs what it needs: on a fresh clone, `make run` and `make test` are the whole set-up.
SHELL := /usr/bin/env bash
BIN := node_modules/.bin
# buf finds the local protoc-gen-es plugin on PATH.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
DEPS := node_modules/.package-lock.json
SOURCES := $(shell find src gen bench -name '*.ts' 2>/dev/null)

.PHONY: run test lint generate check-generated bench simulate build image clean system-deps

$(DEPS): package.json package-lock.json
	npm ci --no-audit --no-fund

dist/.built: $(DEPS) $(SOURCES) tsconfig.json tsconfig.base.json
	$(BIN)/tsc -p tsconfig.json
	@touch $@

build: dist/.built

## run: build and start the sidecar on its embedded defaults (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:8080)
run: build
	node dist/src/main.js $(ARGS)

## system-deps: Debian packages the tests use as independent peers (python3-grpcio, python3-zmq, python3-msgpack)
PYTHON_PEERS := python3-grpcio python3-zmq python3-msgpack
system-deps:
	@if ! /usr/bin/python3 -c 'import grpc, zmq, msgpack' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(PYTHON_PEERS); \
	  else echo "the tests need Debian's $(PYTHON_PEERS): sudo apt-get install -y $(PYTHON_PEERS)" >&2; exit 1; fi; \
	fi

## test: lint, then every test; writes .test-results/vitest.json for CI's summary line
test: lint system-deps  # test/global-setup.ts compiles dist/ for the end-to-end tests
	@mkdir -p .test-results
	$(BIN)/vitest run --reporter=default --reporter=json --outputFile.json=.test-results/vitest.json

## lint: formatting and lint rules, type checks (the core compiled without Node types), the proto
## contract (buf lint, buf breaking against main) and generated code in step with proto/
lint: $(DEPS) check-generated
	$(BIN)/biome check .
	$(BIN)/tsc -p src/core/tsconfig.json
	$(BIN)/tsc -p src/kv-events/tsconfig.json
	$(BIN)/tsc -p test/tsconfig.json
	$(BIN)/buf lint
	@if git rev-parse --verify -q main >/dev/null; then \
	  $(BIN)/buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no local main branch to compare against; skipped"; fi

## generate: regenerate gen/ from proto/
generate: $(DEPS)
	$(BIN)/buf generate

## check-generated: fail when gen/ differs from what proto/ generates
check-generated: $(DEPS)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  $(BIN)/buf generate -o "$$tmp" && \
	  if ! diff -r gen "$$tmp/gen"; then echo "gen/ is stale: run 'make generate' and commit" >&2; exit 1; fi

## bench: benchmarks; results go to bench/RESULTS.md
bench: build
	node dist/bench/run-benchmarks.js

## simulate: routing quality per policy on the Mooncake trace (deterministic); writes bench/SIMULATION.md and the README table
simulate: build
	node dist/bench/simulate.js

## image: build the container image (needs a Docker engine)
image:
	docker build -t inference-cache-index:dev .

clean:
	rm -rf dist .test-results
