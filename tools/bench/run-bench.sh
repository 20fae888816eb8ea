#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench`: measures genapi against its peer, nats-server with WebSocket enabled and a cnats
# responder, with the same load, pair by pair, alternating runs (the machine is shared and
# noisy), and prints one table: genapi figure, NATS figure, ratio. Every process runs on
# loopback with ephemeral ports and is stopped at the end. Results also go to
# $BIN/../bench-results.txt.
#
# BENCH_ONLY=stream runs only the stream scenarios (5: one stream, 100 streams) and prints only
# their rows: for measuring the stream path alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${1:-build-run/bin}"
SECS="${BENCH_SECONDS:-5}"
PAIRS="${BENCH_PAIRS:-3}"
IDLE_CONNS="${BENCH_IDLE_CONNECTIONS:-10000}"
ONLY="${BENCH_ONLY:-all}"
case "$ONLY" in
all | stream) ;;
*) echo "run-bench: BENCH_ONLY must be all or stream, not $ONLY" >&2; exit 2 ;;
esac

missing=()
for p in nats-server libnats-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    # The responder is built only when libnats is present: configure again.
    cmake -S . -B build-run >/dev/null && cmake --build build-run -j "$(nproc)" >/dev/null
fi

work="$(mktemp -d -t genapi-bench.XXXXXX)"
BENCH_PROG=run-bench
WAIT_SECONDS=10
# shellcheck source=tools/bench/lib.sh
. tools/bench/lib.sh
trap cleanup EXIT

# NATS: random ports for clients and websocket, read back from its log.
cat >"$work/nats.conf" <<EOF
listen: 127.0.0.1:-1
websocket { listen: "127.0.0.1:-1", no_tls: true }
EOF
nats-server -c "$work/nats.conf" -l "$work/nats.log" &
pids+=("$!")
nats_pid=$!
nats_client=$(wait_line "$work/nats.log" "Listening for client connections on" | sed -E 's/.* on ([0-9.]+:[0-9]+).*/\1/')
nats_ws=$(wait_line "$work/nats.log" "Listening for websocket clients on" | sed -E 's/.* on ws:\/\/([0-9.]+:[0-9]+).*/\1/')
# One responder serves both peers: get_user (scenarios 1-4) and, on test_service.count, streams
# of N chunks like genapi's test_service.count (scenario 5).
"$BIN/genapi-nats-responder" "nats://$nats_client" user_service.get_user --stream test_service.count \
    >"$work/responder.out" &
pids+=("$!")
responder_pid=$!
wait_line "$work/responder.out" "^READY" >/dev/null

# genapi: broker, user_service, gateway. delivery=reply so each request gets one message back,
# as with NATS request/reply (the default `both` also pushes a copy on the api event).
"$BIN/genapi-broker" --set worker_endpoint=tcp://127.0.0.1:* --set gateway_endpoint=tcp://127.0.0.1:* \
    --set stream_in_endpoint=tcp://127.0.0.1:* --set stream_out_endpoint=tcp://127.0.0.1:* \
    --set metrics_listen=127.0.0.1:0 --set log_level=warn >"$work/broker.out" 2>"$work/broker.log" &
pids+=("$!")
broker_pid=$!
ready=$(wait_line "$work/broker.out" "^READY")
workers=$(sed -E 's/.*workers=([^ ]+).*/\1/' <<<"$ready")
gateways=$(sed -E 's/.*gateways=([^ ]+).*/\1/' <<<"$ready")
"$BIN/user_service" --set broker="$workers" --set queue_max=100000 --set log_level=warn >"$work/user.out" 2>"$work/user.log" &
pids+=("$!")
user_pid=$!
wait_line "$work/user.out" "^READY" >/dev/null
"$BIN/genapi-test-worker" --set broker="$workers" --set log_level=warn >"$work/test.out" 2>"$work/test.log" &
pids+=("$!")
wait_line "$work/test.out" "^READY" >/dev/null
"$BIN/genapi-gateway" --set broker="$gateways" --set listen=127.0.0.1:0 --set delivery=reply \
    --set metrics_listen=127.0.0.1:0 --set log_level=warn >"$work/gateway.out" \
    2>"$work/gateway.log" &
pids+=("$!")
gateway_pid=$!
gw_url=$(wait_line "$work/gateway.out" "^READY" | sed -E 's/READY gateway ([^ ]+).*/\1/')
GENAPI_URL="$gw_url/websocket?vsn=2.0.0"
NATS_URL="ws://$nats_ws/"
# The gateway says READY before its registry copy has the workers' functions: one call of each
# kind until it succeeds (30 s at most), so that no run measures "Unknown function" answers.
warm_deadline=$((SECONDS + 30))
for warm in "--mode sync" "--mode stream --service test_service --function count --args {\"n\":1}"; do
    # shellcheck disable=SC2086 # the words of $warm are separate options
    until "$BIN/genapi-bench" --url "$GENAPI_URL" $warm --connections 1 --requests 1 --duration 10 \
        --json 2>/dev/null | tail -n 1 | grep -q '"errors":{"total":0,'; do
        if [ $SECONDS -ge $warm_deadline ]; then
            echo "run-bench: the gateway never answered $warm without an error" >&2
            exit 1
        fi
        sleep 0.2
    done
done

# Scenario 6: the cost of the rate-limit check. Two more gateways on the same broker, identical
# but for rate_limits: JWT auth, and every bench connection presents one token (user
# bench-user, device bench-device) so that per-user and per-device limits apply to each request.
# The limits are the walkthrough's (per user and per device on every request, generate_report
# per user) with max_requests raised so that the bench's load is never refused: what is measured
# is the check, not refusals (refusals would show as errors in the on runs).
rl_secret="bench-secret-$RANDOM$RANDOM"
rl_token=$(node -e '
const c = require("crypto"), b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const h = b({alg: "HS256", typ: "JWT"});
const p = b({sub: "bench-user", device_id: "bench-device", exp: Math.floor(Date.now() / 1000) + 86400});
console.log(h + "." + p + "." + c.createHmac("sha256", process.argv[1]).update(h + "." + p).digest("base64url"));
' "$rl_secret")
RL_LIMITS='{"enabled":true,"global_limits":[{"key":"user_id","max_requests":1000000,"window_ms":10000},{"key":"device_id","max_requests":1000000,"window_ms":10000}],"api_limits":[{"service":"report_service","request_type":"generate_report","key":"user_id","max_requests":10,"window_ms":60000}]}'
declare -A rl_pid rl_url rl_metrics
for side in on off; do
    limits='{}'
    [ "$side" = on ] && limits="$RL_LIMITS"
    "$BIN/genapi-gateway" --set broker="$gateways" --set listen=127.0.0.1:0 --set delivery=reply \
        --set metrics_listen=127.0.0.1:0 --set log_level=warn --set auth=jwt \
        --set jwt_secret="$rl_secret" --set rate_limits="$limits" >"$work/gateway-rl-$side.out" \
        2>"$work/gateway-rl-$side.log" &
    pids+=("$!")
    rl_pid[$side]=$!
    rl_ready=$(wait_line "$work/gateway-rl-$side.out" "^READY")
    rl_url[$side]="$(sed -E 's/READY gateway ([^ ]+).*/\1/' <<<"$rl_ready")/websocket?vsn=2.0.0&token=$rl_token"
    rl_metrics[$side]=$(sed -E 's/.*metrics_port=([0-9]+).*/\1/' <<<"$rl_ready")
done

# run NAME ARGS...: one genapi-bench run, its JSON kept in $work/NAME.json.
run() {
    local name="$1"
    shift
    "$BIN/genapi-bench" "$@" --json >"$work/$name.txt" 2>&1 || true
    tail -n 1 "$work/$name.txt" >"$work/$name.json"
}
# field FILE EXPR: reads a number from a run's JSON (jq-free: node is on the machine).
field() {
    node -e "const r=require('$1');console.log(eval('r.'+process.argv[1]))" "$2" 2>/dev/null || echo 0
}
# Microseconds per CPU tick (cpu_ticks, tools/bench/lib.sh).
tick_us=$((1000000 / $(getconf CLK_TCK)))

# pair SCENARIO GENAPI_ARGS -- NATS_ARGS: alternating runs; medians of each figure. The NATS
# side runs in mode nats unless NATS_ARGS names another (the last --mode wins). With SETTLE=S,
# waits S seconds after each run: a stream run ends with streams still being sent (NATS has no
# cancel: the responder finishes every stream it started), which must not load the next run.
declare -A result
pair() {
    local scenario="$1"
    shift
    local g_args=() n_args=()
    while [ "$1" != "--" ]; do g_args+=("$1"); shift; done
    shift
    n_args=("$@")
    for i in $(seq 1 "$PAIRS"); do
        # The broker's and user_service's CPU over the run, per request (the gateway's is
        # genapi-bench's own server_cpu_us_per_request).
        local b0 w0 b1 w1
        b0=$(cpu_ticks "$broker_pid") w0=$(cpu_ticks "$user_pid")
        run "$scenario-g$i" --url "$GENAPI_URL" --gateway-pid "$gateway_pid" "${g_args[@]}"
        b1=$(cpu_ticks "$broker_pid") w1=$(cpu_ticks "$user_pid")
        node -e '
            const fs = require("fs");
            const [file, out, tick, db, dw] = process.argv.slice(1);
            let n = 0;
            try { n = JSON.parse(fs.readFileSync(file, "utf8")).requests || 0; } catch (e) {}
            const per = (d) => (n ? (d * tick) / n : 0).toFixed(2);
            fs.writeFileSync(out, JSON.stringify({ broker_cpu_us_per_request: per(db),
                worker_cpu_us_per_request: per(dw) }));
        ' "$work/$scenario-g$i.json" "$work/$scenario-g$i.cpu.json" "$tick_us" $((b1 - b0)) $((w1 - w0))
        sleep "${SETTLE:-0}"
        # The responder's CPU over the NATS run, per request (nats-server's is genapi-bench's
        # server_cpu_us_per_request).
        local r0 r1
        r0=$(cpu_ticks "$responder_pid")
        run "$scenario-n$i" --url "$NATS_URL" --mode nats --gateway-pid "$nats_pid" "${n_args[@]}"
        r1=$(cpu_ticks "$responder_pid")
        node -e '
            const fs = require("fs");
            const [file, out, tick, dr] = process.argv.slice(1);
            let n = 0;
            try { n = JSON.parse(fs.readFileSync(file, "utf8")).requests || 0; } catch (e) {}
            fs.writeFileSync(out, JSON.stringify({ responder_cpu_us_per_request: (n ? (dr * tick) / n : 0).toFixed(2) }));
        ' "$work/$scenario-n$i.json" "$work/$scenario-n$i.cpu.json" "$tick_us" $((r1 - r0))
        sleep "${SETTLE:-0}"
    done
}
med() { # med SCENARIO SIDE EXPR
    for i in $(seq 1 "$PAIRS"); do field "$work/$1-$2$i.json" "$3"; done | median
}
medcpu() { # medcpu SCENARIO EXPR [SIDE]: genapi's broker or worker (side g), or NATS's
    # responder (side n), CPU per request
    for i in $(seq 1 "$PAIRS"); do field "$work/$1-${3:-g}$i.cpu.json" "$2"; done | median
}

echo "genapi-bench: ${SECS}s runs, $PAIRS alternating pairs per scenario (logs in $work)"
if [ "$ONLY" = all ]; then
    pair s1 --mode sync --connections 1 --inflight 1 --duration "$SECS" -- --connections 1 --inflight 1 --duration "$SECS"
    pair s2 --mode sync --connections 50 --inflight 8 --duration "$SECS" -- --connections 50 --inflight 8 --duration "$SECS"
    pair s2b --mode sync --connections 50 --inflight 1 --duration "$SECS" -- --connections 50 --inflight 1 --duration "$SECS"
    half=$(awk -v t="$(med s2 g throughput)" 'BEGIN {printf "%d", t / 2}')
    pair s3 --mode sync --connections 50 --inflight 8 --rate "$half" --duration "$SECS" -- --connections 50 --inflight 8 --rate "$half" --duration "$SECS"
    run s4-g --url "$GENAPI_URL" --mode idle --connections "$IDLE_CONNS" --duration 3 --gateway-pid "$gateway_pid"
    run s4-n --url "$NATS_URL" --mode nats --connections "$IDLE_CONNS" --inflight 1 --requests 1 --duration 3 --gateway-pid "$nats_pid"
fi
stream_g=(--mode stream --service test_service --function count --args '{"n":1000}' --duration "$SECS")
stream_n=(--mode nats-stream --subject test_service.count --args '{"n":1000}' --duration "$SECS")
SETTLE=1 pair s5a "${stream_g[@]}" --connections 1 -- "${stream_n[@]}" --connections 1
SETTLE=1 pair s5b "${stream_g[@]}" --connections 100 -- "${stream_n[@]}" --connections 100
if [ "$ONLY" = all ]; then
    for i in $(seq 1 "$PAIRS"); do # scenario 6: limits on, off, alternating
        for side in on off; do
            run "s6$side$i" --url "${rl_url[$side]}" --gateway-pid "${rl_pid[$side]}" --mode sync \
                --connections 50 --inflight 8 --duration "$SECS"
        done
    done
    # The checks the limits-on gateway made (its /metrics), to show that every request was checked.
    rl_checks=$(curl -s "http://127.0.0.1:${rl_metrics[on]}/metrics" |
        awk '/^genapi_rate_limit_checks_total/ {n += $NF} END {printf "%d", n}')
fi
s6() { for i in $(seq 1 "$PAIRS"); do field "$work/s6$1$i.json" "$2"; done | median; }
# 7: relay fan-out, with its own processes (two gateways, two nats-servers in a cluster).
if [ "$ONLY" = all ]; then
    tools/bench/relay-bench.sh "$BIN" "$work" >/dev/null
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
{
    echo "| scenario | genapi | NATS | genapi / NATS |"
    echo "| --- | --- | --- | --- |"
    if [ "$ONLY" = all ]; then
        row "1: 1 conn x 1, p50 latency (us)" "$(med s1 g 'latency_us.p50')" "$(med s1 n 'latency_us.p50')"
        row "1: 1 conn x 1, p99 latency (us)" "$(med s1 g 'latency_us.p99')" "$(med s1 n 'latency_us.p99')"
        row "1: 1 conn x 1, round trips/s" "$(med s1 g throughput)" "$(med s1 n throughput)"
        row "2: 50 conns x 8, requests/s" "$(med s2 g throughput)" "$(med s2 n throughput)"
        row "2: 50 conns x 8, p99 (us)" "$(med s2 g 'latency_us.p99')" "$(med s2 n 'latency_us.p99')"
        row "2b: 50 conns x 1, requests/s" "$(med s2b g throughput)" "$(med s2b n throughput)"
        row "3: p99 at $half req/s open loop (us)" "$(med s3 g 'latency_us.p99')" "$(med s3 n 'latency_us.p99')"
        row "server CPU us/request (50 x 8)" "$(med s2 g server_cpu_us_per_request)" "$(med s2 n server_cpu_us_per_request)"
        row "server CPU us/request (50 x 1)" "$(med s2b g server_cpu_us_per_request)" "$(med s2b n server_cpu_us_per_request)"
        row "broker CPU us/request (50 x 8)" "$(medcpu s2 broker_cpu_us_per_request)" "-"
        row "worker CPU us/request (50 x 8)" "$(medcpu s2 worker_cpu_us_per_request)" "-"
        row "responder CPU us/request (50 x 8)" "-" "$(medcpu s2 responder_cpu_us_per_request n)"
        row "load generator CPU us/request (50 x 8)" "$(med s2 g bench_cpu_us_per_request)" "$(med s2 n bench_cpu_us_per_request)"
        # The whole system's cost of one request: genapi's gateway, broker and worker, NATS's
        # server and responder (the load generator is the same program on both sides, apart).
        all_g=$(awk -v a="$(med s2 g server_cpu_us_per_request)" -v b="$(medcpu s2 broker_cpu_us_per_request)" -v c="$(medcpu s2 worker_cpu_us_per_request)" 'BEGIN {printf "%.2f", a + b + c}')
        all_n=$(awk -v a="$(med s2 n server_cpu_us_per_request)" -v b="$(medcpu s2 responder_cpu_us_per_request n)" 'BEGIN {printf "%.2f", a + b}')
        row "all servers CPU us/request (50 x 8)" "$all_g" "$all_n"
        row "4: server RSS bytes/idle conn ($IDLE_CONNS)" "$(field "$work/s4-g.json" server_rss_bytes_per_connection)" "$(field "$work/s4-n.json" server_rss_bytes_per_connection)"
    fi
    row "5: stream chunks/s, 1 stream" "$(med s5a g chunks_per_s)" "$(med s5a n chunks_per_s)"
    row "5: stream chunks/s, 100 streams" "$(med s5b g chunks_per_s)" "$(med s5b n chunks_per_s)"
    if [ "$ONLY" = all ]; then
        row "6: 50 x 8 requests/s, rate limits on vs off (not NATS)" "$(s6 on throughput)" "$(s6 off throughput)"
        row "6: gateway CPU us/request, rate limits on vs off (not NATS)" "$(s6 on server_cpu_us_per_request)" "$(s6 off server_cpu_us_per_request)"
        cat "$work/relay-rows.txt"
    fi
    echo
    if [ "$ONLY" = all ]; then
        echo "errors: genapi s2 $(med s2 g 'errors.total'), NATS s2 $(med s2 n 'errors.total'); streams (1 / 100): genapi $(med s5a g 'errors.total') / $(med s5b g 'errors.total'), NATS $(med s5a n 'errors.total') / $(med s5b n 'errors.total'); idle ready: genapi $(field "$work/s4-g.json" ready), NATS $(field "$work/s4-n.json" ready)"
    else
        echo "errors: streams (1 / 100): genapi $(med s5a g 'errors.total') / $(med s5b g 'errors.total'), NATS $(med s5a n 'errors.total') / $(med s5b n 'errors.total')"
    fi
    if [ "$ONLY" = all ]; then
        echo "rate limits (6): columns are limits on, limits off, on / off; errors with limits on $(s6 on 'errors.total') (a refusal would be one), off $(s6 off 'errors.total'); checks counted by the limits-on gateway: $rl_checks"
        cat "$work/relay-notes.txt"
    fi
} | tee "$BIN/../bench-results.txt"
