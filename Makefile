# SPDX-License-Identifier: MIT
# The two commands a newcomer needs:
#   make run   - install what is missing, build, start the broker, the example services and a
#                gateway (ports below, each a variable: make run GATEWAY_PORT=4100)
#   make test  - install what is missing, build with ASan/UBSan, run every test (the containers
#                test among them, and each fuzz target for 10 s)
#   make fuzz  - build the libFuzzer targets with clang and run each for FUZZ_SECONDS (60)
# Both call tools/install-deps.sh first. CMake does the real build; this file only names steps.

BUILD      ?= build
RUN_BUILD  ?= build-run
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc)

# Ports of `make run` (make run GATEWAY_PORT=4100 BROKER_WORKER_PORT=6570 ...): the gateway's
# WebSocket, the broker's worker, gateway, stream-in and stream-out sockets, and the gateway's
# and broker's metrics and health listeners (loopback).
GATEWAY_PORT       ?= 4000
BROKER_WORKER_PORT ?= 5570
BROKER_GATEWAY_PORT ?= 5571
STREAM_IN_PORT     ?= 5572
STREAM_OUT_PORT    ?= 5573
GATEWAY_METRICS_PORT ?= 9464
BROKER_METRICS_PORT  ?= 9465
export GATEWAY_PORT BROKER_WORKER_PORT BROKER_GATEWAY_PORT STREAM_IN_PORT STREAM_OUT_PORT \
       GATEWAY_METRICS_PORT BROKER_METRICS_PORT

.PHONY: all deps build build-run build-fuzz test test-unit test-js test-containers test-fuzz fuzz run \
        bench clean install

all: build

deps:
	@tools/install-deps.sh

# Debug build with AddressSanitizer and UBSan and warnings as errors: what the tests run.
build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Debug -DGA_SANITIZE=address,undefined \
	    -DGA_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Optimised build for `make run` (no sanitizers, no tests).
build-run: deps
	@cmake -S . -B $(RUN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGA_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(RUN_BUILD) -j $(JOBS)

# The libFuzzer targets (tests/fuzz): clang, coverage-instrumented, ASan/UBSan, only the
# libraries they link (docs/operations.md, "Fuzzing").
build-fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE= -DCMAKE_C_FLAGS="-O1 -g" \
	    -DGA_FUZZ=ON -DGA_BUILD_TESTS=OFF -DGA_WERROR=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) --target fuzz_targets -j $(JOBS)

test: build
	@$(MAKE) --no-print-directory test-unit test-js test-containers test-fuzz

test-unit:
	@cd $(BUILD) && ctest -L unit --output-on-failure

test-js:
	@GENAPI_BIN_DIR=$(CURDIR)/$(BUILD)/bin tools/run-with-sanitizers.sh npm run --silent test:js

# The Dockerfile and compose.yaml with podman and podman-compose (tests/containers; builds the
# base image with debootstrap the first time): part of `make test`, a step of its own so that
# its time shows.
test-containers:
	@node --test --test-concurrency=1 tests/containers/

# Each fuzz target for 10 s: part of `make test`.
test-fuzz:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# Each fuzz target for FUZZ_SECONDS on a copy of its seed corpus; fails on any finding.
fuzz: build-fuzz
	@tools/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

run: build-run
	@tools/run-dev.sh $(RUN_BUILD)/bin

# Installs the optimised build under $(DESTDIR)$(PREFIX): the programs in bin, libgenapi-worker
# and genapi-worker.pc in lib, the headers in include/genapi (docs/operations.md, "Installing").
PREFIX ?= /usr/local
install: build-run
	@DESTDIR="$(DESTDIR)" cmake --install $(RUN_BUILD) --prefix "$(PREFIX)"

# Benchmarks against the NATS peer (not part of `make test`); see docs/benchmarks.md.
bench: build-run
	@tools/bench/run-bench.sh $(RUN_BUILD)/bin

clean:
	rm -rf $(BUILD) $(RUN_BUILD) $(FUZZ_BUILD)
