#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A/B comparison of two genapi builds on this machine: each round starts a fresh stack (broker,
# user_service, gateway with delivery=reply) from A's binaries, drives it with genapi-bench,
# stops it, then does the same with B's, so slow drifts of a shared machine hit both alike.
# Prints requests/s, p50/p99 and each process's CPU per request (from /proc/PID/stat). A build
# with metrics listeners gets them on ephemeral ports (METRICS=off: none), as in `make bench`.
#
#   tools/bench/ab.sh A_BIN_DIR B_BIN_DIR [CONNECTIONS] [INFLIGHT] [ROUNDS] [SECONDS]
#
# For example, the previous commit against the working tree:
#   git worktree add /tmp/prev HEAD~1 && cmake -S /tmp/prev -B /tmp/prev/build-run \
#       -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGA_BUILD_TESTS=OFF && cmake --build /tmp/prev/build-run
#   make build-run && tools/bench/ab.sh /tmp/prev/build-run/bin build-run/bin 50 8 3
#
# AB_MODE=stream measures the stream path instead: genapi-test-worker's test_service.count with
# n=AB_STREAM_N (1000) chunks per stream, one stream at a time on each of CONNECTIONS
# connections (INFLIGHT is ignored), and prints chunks/s and each process's CPU per chunk
# (gateway, broker, worker, and the load generator):
#   AB_MODE=stream tools/bench/ab.sh /tmp/prev/build-run/bin build-run/bin 100 1 3
set -euo pipefail
A="$(cd "$1" && pwd)"
B="$(cd "$2" && pwd)"
CONNS="${3:-50}"
INFLIGHT="${4:-8}"
ROUNDS="${5:-3}"
SECS="${6:-5}"
MODE="${AB_MODE:-sync}"
STREAM_N="${AB_STREAM_N:-1000}"
case "$MODE" in
sync | stream) ;;
*) echo "ab: AB_MODE must be sync or stream, not $MODE" >&2; exit 2 ;;
esac
BENCH="$B/genapi-bench" # one load generator for both sides
work="$(mktemp -d -t genapi-ab.XXXXXX)"
BENCH_PROG=ab
# shellcheck source=tools/bench/lib.sh
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$work"' EXIT

# one NAME BIN_DIR: one round against a fresh stack from BIN_DIR.
one() {
    local name="$1" bin="$2"
    # The previous round's READY lines must go first: the shell truncates a redirect in the
    # child, after the fork, so wait_line could read the old line and the old ports.
    rm -f "$work"/*.out "$work"/*.log
    # shellcheck disable=SC2046
    "$bin/genapi-broker" --set worker_endpoint=tcp://127.0.0.1:* --set gateway_endpoint=tcp://127.0.0.1:* \
        --set stream_in_endpoint=tcp://127.0.0.1:* --set stream_out_endpoint=tcp://127.0.0.1:* \
        $(metrics_set "$bin/genapi-broker") --set log_level=warn >"$work/broker.out" 2>"$work/broker.log" &
    local broker=$!
    pids+=("$broker")
    local ready
    ready=$(wait_line "$work/broker.out" "^READY")
    local workers gateways
    workers=$(sed -E 's/.*workers=([^ ]+).*/\1/' <<<"$ready")
    gateways=$(sed -E 's/.*gateways=([^ ]+).*/\1/' <<<"$ready")
    if [ "$MODE" = stream ]; then
        "$bin/genapi-test-worker" --set broker="$workers" --set log_level=warn \
            >"$work/user.out" 2>"$work/user.log" &
    else
        "$bin/user_service" --set broker="$workers" --set queue_max=100000 --set log_level=warn \
            >"$work/user.out" 2>"$work/user.log" &
    fi
    local worker=$!
    pids+=("$worker")
    wait_line "$work/user.out" "^READY" >/dev/null
    # shellcheck disable=SC2046
    "$bin/genapi-gateway" --set broker="$gateways" --set listen=127.0.0.1:0 --set delivery=reply \
        $(metrics_set "$bin/genapi-gateway") --set log_level=warn >"$work/gateway.out" 2>"$work/gateway.log" &
    local gateway=$!
    pids+=("$gateway")
    local url
    url="$(wait_line "$work/gateway.out" "^READY" | sed -E 's/READY gateway ([^ ]+).*/\1/')/websocket?vsn=2.0.0"
    local load=(--mode sync --inflight "$INFLIGHT")
    if [ "$MODE" = stream ]; then
        load=(--mode stream --service test_service --function count --args "{\"n\":$STREAM_N}")
    fi
    # The gateway says READY before its registry copy has the worker's functions: one call at a
    # time until one succeeds (30 s at most), so the run measures calls, not "Unknown function".
    local deadline=$((SECONDS + 30))
    until "$BENCH" --url "$url" "${load[@]}" --connections 1 --requests 1 --duration 10 --json \
        | tail -n 1 | grep -q '"errors":{"total":0,'; do
        if [ $SECONDS -ge $deadline ]; then
            echo "ab: the gateway never answered a call without an error" >&2
            exit 1
        fi
        sleep 0.2
    done
    local g0 b0 w0 g1 b1 w1
    g0=$(cpu_ticks "$gateway") b0=$(cpu_ticks "$broker") w0=$(cpu_ticks "$worker")
    "$BENCH" --url "$url" "${load[@]}" --connections "$CONNS" --duration "$SECS" --json \
        | tail -n 1 >"$work/run.json"
    g1=$(cpu_ticks "$gateway") b1=$(cpu_ticks "$broker") w1=$(cpu_ticks "$worker")
    local tick_us=$((1000000 / $(getconf CLK_TCK)))
    node -e '
        const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const [name, tick, dg, db, dw] = process.argv.slice(2);
        if (r.mode === "stream") {
            const per = (d) => (r.chunks ? (d * tick) / r.chunks : 0).toFixed(2);
            const bench = r.chunks ? (r.bench_cpu_us_per_request * r.requests) / r.chunks : 0;
            console.log(`${name} ${r.connections} streams: ${r.chunks_per_s.toFixed(0)} chunks/s, ` +
                `errors ${r.errors.total ? JSON.stringify(r.errors) : 0}; ` +
                `us/chunk: gateway ${per(dg)} broker ${per(db)} ` +
                `worker ${per(dw)} bench ${bench.toFixed(2)}`);
            process.exit(0);
        }
        const per = (d) => (r.requests ? (d * tick) / r.requests : 0).toFixed(1);
        console.log(`${name} ${r.connections}x${r.inflight}: ${r.throughput.toFixed(0)} req/s, ` +
            `p50 ${r.latency_us.p50} p99 ${r.latency_us.p99} us, errors ${r.errors.total}; ` +
            `us/request: gateway ${per(dg)} broker ${per(db)} worker ${per(dw)}`);
    ' "$work/run.json" "$name" "$tick_us" $((g1 - g0)) $((b1 - b0)) $((w1 - w0))
    cleanup
}

if [ "$MODE" = stream ]; then
    echo "ab: A=$A B=$B, $ROUNDS rounds of ${SECS}s, $CONNS streams of $STREAM_N chunks"
else
    echo "ab: A=$A B=$B, $ROUNDS rounds of ${SECS}s at $CONNS x $INFLIGHT"
fi
for _ in $(seq 1 "$ROUNDS"); do
    one A "$A"
    one B "$B"
done
