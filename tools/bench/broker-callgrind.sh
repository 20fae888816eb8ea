#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The broker's instructions per routed request, a figure that does not depend on the machine's
# load: a stack (broker under `valgrind --tool=callgrind`, user_service, gateway with
# delivery=reply) from BIN_DIR is driven with genapi-bench for N1 and then, on a fresh stack,
# N2 sync requests at CONNECTIONS x INFLIGHT; the broker's total instruction count (Ir) of each
# run is read from callgrind's output, and (Ir(N2) - Ir(N1)) / (N2 - N1) is printed: start-up
# and idle work cancel out. With CG_KEEP=DIR the callgrind files are kept there (for
# callgrind_annotate --inclusive=yes).
#
#   tools/bench/broker-callgrind.sh BIN_DIR [N1] [N2] [CONNECTIONS] [INFLIGHT]
#
# For example, main's build against this one (both RelWithDebInfo):
#   tools/bench/broker-callgrind.sh /tmp/base/build-run/bin 2000 12000
#   tools/bench/broker-callgrind.sh build-run/bin 2000 12000
set -euo pipefail
BIN="$(cd "$1" && pwd)"
N1="${2:-2000}"
N2="${3:-12000}"
CONNS="${4:-50}"
INFLIGHT="${5:-8}"
work="$(mktemp -d -t genapi-cg.XXXXXX)"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'cleanup; rm -rf "$work"' EXIT

wait_line() { # wait_line FILE REGEX (60 s at most: valgrind starts slowly)
    local deadline=$((SECONDS + 60))
    until grep -m1 -E "$2" "$1" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "broker-callgrind: no /$2/ in $1" >&2
            cat "$1" "${1%.out}.log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

# instructions N: the broker's Ir over a run of N requests.
instructions() {
    local n="$1" out="$work/callgrind.$1"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN/genapi-broker" \
        --set worker_endpoint=tcp://127.0.0.1:* --set gateway_endpoint=tcp://127.0.0.1:* \
        --set stream_in_endpoint=tcp://127.0.0.1:* --set stream_out_endpoint=tcp://127.0.0.1:* \
        --set metrics_listen=127.0.0.1:0 --set log_level=warn >"$work/broker.out" 2>"$work/broker.log" &
    local broker=$!
    pids+=("$broker")
    local ready workers gateways
    ready=$(wait_line "$work/broker.out" "^READY")
    workers=$(sed -E 's/.*workers=([^ ]+).*/\1/' <<<"$ready")
    gateways=$(sed -E 's/.*gateways=([^ ]+).*/\1/' <<<"$ready")
    "$BIN/user_service" --set broker="$workers" --set queue_max=100000 --set log_level=warn \
        >"$work/user.out" 2>"$work/user.log" &
    pids+=("$!")
    wait_line "$work/user.out" "^READY" >/dev/null
    "$BIN/genapi-gateway" --set broker="$gateways" --set listen=127.0.0.1:0 --set delivery=reply \
        --set metrics_listen=127.0.0.1:0 --set log_level=warn >"$work/gateway.out" 2>"$work/gateway.log" &
    pids+=("$!")
    local url
    url="$(wait_line "$work/gateway.out" "^READY" | sed -E 's/READY gateway ([^ ]+).*/\1/')/websocket?vsn=2.0.0"
    "$BIN/genapi-bench" --url "$url" --mode sync --connections "$CONNS" --inflight "$INFLIGHT" \
        --requests "$n" --duration 600 --json | tail -n 1 >"$work/run.$n.json"
    cleanup
    local done errors
    done=$(node -e 'console.log(require(process.argv[1]).requests)' "$work/run.$n.json")
    errors=$(node -e 'console.log(require(process.argv[1]).errors.total)' "$work/run.$n.json")
    if [ "$done" -lt "$n" ] || [ "$errors" -ne 0 ]; then
        echo "broker-callgrind: $done of $n requests done, $errors errors: $(cat "$work/run.$n.json")" >&2
        exit 1
    fi
    if [ -n "${CG_KEEP:-}" ]; then
        cp "$out" "$CG_KEEP/" # for callgrind_annotate
    fi
    awk '/^summary:/ {print $2}' "$out"
}

a=$(instructions "$N1")
b=$(instructions "$N2")
awk -v a="$a" -v b="$b" -v n1="$N1" -v n2="$N2" -v bin="$BIN" 'BEGIN {
    printf "broker-callgrind: %s: Ir %d at %d requests, %d at %d: %.0f instructions per request\n",
        bin, a, n1, b, n2, (b - a) / (n2 - n1) }'
