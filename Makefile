# SPDX-License-Identifier: MIT
# The two commands a newcomer needs:
#   make run   - install what is missing, build, start the broker, the example services and a
#                gateway (ports below, each a variable: make run GATEWAY_PORT=4100)
#   make test  - install what is missing, build with ASan/UBSan, run every test
# Both call tools/install-deps.sh first. CMake does the real build; this file only names steps.

BUILD      ?= build
RUN_BUILD  ?= build-run
JOBS       ?= $(shell nproc)

# Ports of `make run` (make run GATEWAY_PORT=4100 BROKER_WORKER_PORT=6570 ...): the gateway's
# WebSocket, and the broker's worker, gateway, stream-in and stream-out sockets.
GATEWAY_PORT       ?= 4000
BROKER_WORKER_PORT ?= 5570
BROKER_GATEWAY_PORT ?= 5571
STREAM_IN_PORT     ?= 5572
STREAM_OUT_PORT    ?= 5573
export GATEWAY_PORT BROKER_WORKER_PORT BROKER_GATEWAY_PORT STREAM_IN_PORT STREAM_OUT_PORT

.PHONY: all deps build build-run test test-unit test-js run bench clean

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

test: build
	@$(MAKE) --no-print-directory test-unit test-js

test-unit:
	@cd $(BUILD) && ctest -L unit --output-on-failure

test-js:
	@GENAPI_BIN_DIR=$(CURDIR)/$(BUILD)/bin tools/run-with-sanitizers.sh npm run --silent test:js

run: build-run
	@tools/run-dev.sh $(RUN_BUILD)/bin

# Benchmarks against the NATS peer (not part of `make test`); see docs/benchmarks.md.
bench: build-run
	@tools/bench/run-bench.sh $(RUN_BUILD)/bin

clean:
	rm -rf $(BUILD) $(RUN_BUILD)
