#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per request of one process of a genapi stack (broker, user_service, gateway with
# delivery=reply), counted by callgrind: repeatable whatever the machine's load, unlike the
# wall-clock figures of ab.sh. The process named by WHICH runs under
# `valgrind --tool=callgrind`; after a warm-up of WARMUP requests its counters are zeroed, N
# requests are driven by genapi-bench (--requests N at CONNECTIONS x INFLIGHT), and the counters
# are dumped. Prints instructions per request and keeps callgrind.out in OUT_DIR for
# callgrind_annotate.
#
#   tools/bench/callgrind.sh BIN_DIR gateway|broker|worker [N] [CONNECTIONS] [INFLIGHT] [OUT_DIR]
#
# METRICS=off runs the broker and the gateway without their metrics listener (metrics_listen
# empty); otherwise a binary that has the listener gets an ephemeral port, as `make bench` does.
set -euo pipefail
BIN="$(cd "$1" && pwd)"
WHICH="$2"
N="${3:-4000}"
CONNS="${4:-10}"
INFLIGHT="${5:-8}"
OUT="${6:-$(mktemp -d -t genapi-cg.XXXXXX)}"
WARMUP="${WARMUP:-1000}"
BENCH="${BENCH:-$BIN/genapi-bench}"
mkdir -p "$OUT"
work="$(mktemp -d -t genapi-cgrun.XXXXXX)"
BENCH_PROG=callgrind.sh
WAIT_SECONDS=60 # a process under valgrind starts slowly
# shellcheck source=tools/bench/lib.sh
. "$(dirname "$0")/lib.sh"
trap 'cleanup; rm -rf "$work"' EXIT

cg() {
    if [ "$WHICH" = "$1" ]; then
        echo valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.$1" --dump-line=no
    fi
}

# shellcheck disable=SC2046
$(cg broker) "$BIN/genapi-broker" --set worker_endpoint=tcp://127.0.0.1:* --set gateway_endpoint=tcp://127.0.0.1:* \
    --set stream_in_endpoint=tcp://127.0.0.1:* --set stream_out_endpoint=tcp://127.0.0.1:* \
    $(metrics_set "$BIN/genapi-broker") --set log_level=warn >"$work/broker.out" 2>"$work/broker.log" &
pids+=("$!")
ready=$(wait_line "$work/broker.out" "^READY")
workers=$(sed -E 's/.*workers=([^ ]+).*/\1/' <<<"$ready")
gateways=$(sed -E 's/.*gateways=([^ ]+).*/\1/' <<<"$ready")
# shellcheck disable=SC2046
$(cg worker) "$BIN/user_service" --set broker="$workers" --set queue_max=100000 --set log_level=warn \
    >"$work/user.out" 2>"$work/user.log" &
pids+=("$!")
wait_line "$work/user.out" "^READY" >/dev/null
# shellcheck disable=SC2046
$(cg gateway) "$BIN/genapi-gateway" --set broker="$gateways" --set listen=127.0.0.1:0 --set delivery=reply \
    $(metrics_set "$BIN/genapi-gateway") --set log_level=warn >"$work/gateway.out" 2>"$work/gateway.log" &
pids+=("$!")
url="$(wait_line "$work/gateway.out" "^READY" | sed -E 's/READY gateway ([^ ]+).*/\1/')/websocket?vsn=2.0.0"
case "$WHICH" in broker) target=${pids[0]} ;; worker) target=${pids[1]} ;; gateway) target=${pids[2]} ;; esac

"$BENCH" --url "$url" --mode sync --connections "$CONNS" --inflight "$INFLIGHT" --requests "$WARMUP" \
    --duration 120 --json >/dev/null
callgrind_control -z "$target" >/dev/null 2>&1
"$BENCH" --url "$url" --mode sync --connections "$CONNS" --inflight "$INFLIGHT" --requests "$N" \
    --duration 300 --json | tail -n 1 >"$work/run.json"
callgrind_control -d "$target" >/dev/null 2>&1
sleep 0.5
dump=$(ls -t "$OUT"/callgrind.out."$WHICH".* 2>/dev/null | head -1)
node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const txt = require("fs").readFileSync(process.argv[2], "utf8");
    const m = txt.match(/^summary: (\d+)/m) || txt.match(/^totals: (\d+)/m);
    const ir = Number(m[1]);
    console.log(`${process.argv[3]}: ${r.requests} requests, errors ${r.errors.total}, ` +
        `${ir} Ir, ${(ir / r.requests).toFixed(0)} Ir/request; dump ${process.argv[2]}`);
' "$work/run.json" "$dump" "$WHICH"
