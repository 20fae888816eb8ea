#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Scenario 7 of `make bench`, the relay fan-out (run by run-bench.sh, or alone):
# BENCH_RELAY_MEMBERS WebSocket members (default 1000) of one relay group spread over two genapi
# gateways, against as many subscribers of one NATS subject spread over two nats-servers joined
# in a cluster; the first BENCH_RELAY_SENDERS of them publish as fast as every member takes the
# messages (at most BENCH_RELAY_WINDOW messages waiting for a member). Alternating pairs,
# medians. Writes the
# table rows to WORK/relay-rows.txt and prints them.
#
#   tools/bench/relay-bench.sh [BIN [WORK]]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${1:-build-run/bin}"
work="${2:-$(mktemp -d -t genapi-relay-bench.XXXXXX)}"
SECS="${BENCH_SECONDS:-5}"
PAIRS="${BENCH_PAIRS:-3}"
MEMBERS="${BENCH_RELAY_MEMBERS:-1000}"
SENDERS="${BENCH_RELAY_SENDERS:-10}"
WINDOW="${BENCH_RELAY_WINDOW:-32}"

# Every member is a socket in genapi-bench and one in a server: the bench raises its own soft
# limit to the hard one; raise ours (inherited by the servers) as well.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((MEMBERS + 200)) ]; then
    echo "relay-bench: ulimit -n is $(ulimit -n), below $MEMBERS members + 200: lower BENCH_RELAY_MEMBERS" >&2
    exit 1
fi

BENCH_PROG=relay-bench
WAIT_SECONDS=10
# shellcheck source=tools/bench/lib.sh
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT

# NATS: two servers in one cluster (B routes to A), each with WebSocket.
nats_conf() { # NAME ROUTES
    cat >"$work/nats-$1.conf" <<EOF
listen: 127.0.0.1:-1
websocket { listen: "127.0.0.1:-1", no_tls: true }
cluster { name: genapi_bench, listen: "127.0.0.1:-1"$2 }
EOF
}
nats_conf a ""
nats-server -c "$work/nats-a.conf" -l "$work/nats-a.log" &
pids+=("$!")
nats_a_pid=$!
route_a=$(wait_line "$work/nats-a.log" "Listening for route connections on" | sed -E 's/.* on ([0-9.]+:[0-9]+).*/\1/')
nats_conf b ", routes: [\"nats-route://$route_a\"]"
nats-server -c "$work/nats-b.conf" -l "$work/nats-b.log" &
pids+=("$!")
nats_b_pid=$!
ws_a=$(wait_line "$work/nats-a.log" "Listening for websocket clients on" | sed -E 's/.* on ws:\/\/([0-9.]+:[0-9]+).*/\1/')
ws_b=$(wait_line "$work/nats-b.log" "Listening for websocket clients on" | sed -E 's/.* on ws:\/\/([0-9.]+:[0-9]+).*/\1/')
wait_line "$work/nats-b.log" "Route connection created" >/dev/null
wait_line "$work/nats-a.log" "Route connection created" >/dev/null

# genapi: a broker, genapi-test-worker (its authenticate names each member: token user:NAME),
# two gateways with auth=service.
"$BIN/genapi-broker" --set worker_endpoint=tcp://127.0.0.1:* --set gateway_endpoint=tcp://127.0.0.1:* \
    --set stream_in_endpoint=tcp://127.0.0.1:* --set stream_out_endpoint=tcp://127.0.0.1:* \
    --set metrics_listen=127.0.0.1:0 --set log_level=warn >"$work/relay-broker.out" 2>"$work/relay-broker.log" &
pids+=("$!")
broker_pid=$!
ready=$(wait_line "$work/relay-broker.out" "^READY")
workers=$(sed -E 's/.*workers=([^ ]+).*/\1/' <<<"$ready")
gateways=$(sed -E 's/.*gateways=([^ ]+).*/\1/' <<<"$ready")
"$BIN/genapi-test-worker" --set broker="$workers" --set queue_max=100000 --set log_level=warn >"$work/relay-worker.out" 2>"$work/relay-worker.log" &
pids+=("$!")
wait_line "$work/relay-worker.out" "^READY" >/dev/null
gw_pids=()
gw_urls=()
for g in a b; do
    "$BIN/genapi-gateway" --set broker="$gateways" --set listen=127.0.0.1:0 \
        --set auth=service --set auth_service=test_service.authenticate \
        --set metrics_listen=127.0.0.1:0 --set log_level=warn >"$work/relay-gw-$g.out" \
        2>"$work/relay-gw-$g.log" &
    pids+=("$!")
    gw_pids+=("$!")
    gw_urls+=("$(wait_line "$work/relay-gw-$g.out" "^READY" | sed -E 's/READY gateway ([^ ]+).*/\1/')/websocket?vsn=2.0.0")
done

run() { # NAME ARGS...: one genapi-bench run, its JSON in $work/NAME.json
    local name="$1"
    shift
    "$BIN/genapi-bench" "$@" --json >"$work/$name.txt" 2>&1 || true
    tail -n 1 "$work/$name.txt" >"$work/$name.json"
}
field() { node -e "const r=require('$1');console.log(eval('r.'+process.argv[1]))" "$2" 2>/dev/null || echo 0; }
med() { for i in $(seq 1 "$PAIRS"); do field "$work/$1-$2$i.json" "$3"; done | median; }

common=(--connections "$MEMBERS" --senders "$SENDERS" --inflight "$WINDOW" --duration "$SECS")
for i in $(seq 1 "$PAIRS"); do
    run "relay-g$i" --mode relay --group bench --url "${gw_urls[0]}" --url2 "${gw_urls[1]}" \
        --gateway-pid "${gw_pids[0]}" --also-pid "${gw_pids[1]}" --also-pid "$broker_pid" "${common[@]}"
    sleep 1 # the members of a run leave their group as their sockets close
    run "relay-n$i" --mode nats-relay --group relay.bench --url "ws://$ws_a/" --url2 "ws://$ws_b/" \
        --gateway-pid "$nats_a_pid" --also-pid "$nats_b_pid" "${common[@]}"
    sleep 1
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
label="7: relay, $MEMBERS members on 2 servers, $SENDERS senders"
{
    row "$label, deliveries/s" "$(med relay g 'relay.deliveries_per_s')" "$(med relay n 'relay.deliveries_per_s')"
    row "$label, p99 delivery latency (us)" "$(med relay g 'latency_us.p99')" "$(med relay n 'latency_us.p99')"
    row "$label, p50 delivery latency (us)" "$(med relay g 'latency_us.p50')" "$(med relay n 'latency_us.p50')"
    row "$label, server CPU us/delivery" "$(med relay g 'relay.server_cpu_us_per_delivery')" "$(med relay n 'relay.server_cpu_us_per_delivery')"
} >"$work/relay-rows.txt"
echo "relay (7): members ready genapi $(med relay g ready) / NATS $(med relay n ready); errors genapi $(med relay g 'errors.total') / NATS $(med relay n 'errors.total'); messages given up genapi $(med relay g 'relay.messages_given_up') / NATS $(med relay n 'relay.messages_given_up'); NATS: two nats-servers in a cluster" >"$work/relay-notes.txt"
cat "$work/relay-rows.txt" "$work/relay-notes.txt"
