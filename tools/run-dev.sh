#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts the development system on localhost: the broker, the example services (the
# PhoenixGenApi walkthrough's, see docs/walkthrough.md) and a gateway. Every port is a variable
# (the Makefile passes them: make run GATEWAY_PORT=4100): GATEWAY_PORT (4000),
# BROKER_WORKER_PORT (5570), BROKER_GATEWAY_PORT (5571), STREAM_IN_PORT (5572),
# STREAM_OUT_PORT (5573). Waits for each READY line, prints where everything really listens,
# and stops all of them on Ctrl-C.
set -euo pipefail
bin="${1:-build-run/bin}"
gateway_port="${GATEWAY_PORT:-4000}"
worker_port="${BROKER_WORKER_PORT:-5570}"
broker_gateway_port="${BROKER_GATEWAY_PORT:-5571}"
stream_in_port="${STREAM_IN_PORT:-5572}"
stream_out_port="${STREAM_OUT_PORT:-5573}"
gateway_metrics_port="${GATEWAY_METRICS_PORT:-9464}"
broker_metrics_port="${BROKER_METRICS_PORT:-9465}"
logs="$(mktemp -d -t genapi-run.XXXXXX)"
pids=()

stopping=0
stop() {
    trap - INT TERM EXIT
    stopping=1
    echo
    echo "stopping..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "stopped (logs in $logs)"
}
trap stop INT TERM EXIT

# port_hint LOG: when a program could not bind, names the make variable that moves it.
port_hint() {
    local var=""
    case "$(grep -m1 -oE 'option (listen|worker_endpoint|gateway_endpoint|stream_in_endpoint|stream_out_endpoint)' "$1")" in
        "option listen") var=GATEWAY_PORT ;;
        "option worker_endpoint") var=BROKER_WORKER_PORT ;;
        "option gateway_endpoint") var=BROKER_GATEWAY_PORT ;;
        "option stream_in_endpoint") var=STREAM_IN_PORT ;;
        "option stream_out_endpoint") var=STREAM_OUT_PORT ;;
    esac
    if [ -z "$var" ] && grep -q 'metrics_listen: cannot listen' "$1"; then
        case "$(basename "$1")" in
            gateway.log) var=GATEWAY_METRICS_PORT ;;
            broker.log) var=BROKER_METRICS_PORT ;;
        esac
    fi
    if [ -n "$var" ]; then
        echo "That port is taken: choose another with make run $var=PORT" \
             "(ports: GATEWAY_PORT, BROKER_WORKER_PORT, BROKER_GATEWAY_PORT, STREAM_IN_PORT," \
             "STREAM_OUT_PORT, GATEWAY_METRICS_PORT, BROKER_METRICS_PORT)." >&2
    fi
}

# start NAME ARGS...: runs a program with stdout in $logs/NAME.out and waits for its READY line.
start() {
    local name="$1"
    shift
    "$@" >"$logs/$name.out" 2>"$logs/$name.log" &
    pids+=("$!")
    local deadline=$((SECONDS + 15))
    until grep -q '^READY' "$logs/$name.out" 2>/dev/null; do
        if ! kill -0 "${pids[-1]}" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            echo "$name failed to start; its log:" >&2
            cat "$logs/$name.log" >&2
            port_hint "$logs/$name.log"
            exit 1
        fi
        sleep 0.05
    done
    echo "  $name: $(grep -m1 '^READY' "$logs/$name.out" | cut -d' ' -f2-)"
}

services=(user_service blog_service search_service admin_service report_service event_service
          versioned_user_service data_service hooks_service)
# data_service (the walkthrough's section 9) runs as three workers, node1..node3, sharing the
# service's key; the others run once each.
instances() { if [ "$1" = data_service ]; then echo node1 node2 node3; else echo "$1"; fi; }
admin_actions=status,functions,stop_stream,versions,get,get_latest,disable,enable,delete,add_config,verify,rate_limit_config,rate_limit_status,rate_limit_reset,rate_limit_add,rate_limit_remove,rate_limit_set

# CurveZMQ keys (docs/security.md), made on the first run next to the binaries: the broker's
# own, and one for the gateway, the operator (genapi-ctl) and each service, whose public halves
# the broker admits. A service added since is given its key on the next run.
keys="$(cd "$bin/.." && pwd)/keys"
if [ ! -f "$keys/broker_secret" ]; then
    mkdir -p "$keys/peers"
    chmod 700 "$keys"
    "$bin/genapi-ctl" keygen --role broker --out "$keys/broker" >/dev/null
    "$bin/genapi-ctl" keygen --role gateway --name dev-gateway --out "$keys/peers/gateway" >/dev/null
    "$bin/genapi-ctl" keygen --role operator --name dev-operator --out "$keys/peers/operator" >/dev/null
    echo "CURVE keys made in $keys"
fi
for service in "${services[@]}"; do
    if [ ! -f "$keys/peers/${service}_secret" ]; then
        "$bin/genapi-ctl" keygen --role worker --name "$service" --services "$service" \
            --out "$keys/peers/$service" >/dev/null
    fi
done
# The admin token genapi-ctl presents (docs/security.md), made once like the keys.
if [ ! -f "$keys/admin_token" ]; then
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$keys/admin_token")
fi
admin_token="$(cat "$keys/admin_token")"
client_keys() { echo "--set" "curve_secret_file=$keys/peers/$1" "--set" "curve_broker_file=$keys/broker"; }

echo "genapi development system (logs in $logs):"
# Loopback only, and CURVE on: the development system runs as it would be deployed.
start broker "$bin/genapi-broker" \
    --set "worker_endpoint=tcp://127.0.0.1:$worker_port" \
    --set "gateway_endpoint=tcp://127.0.0.1:$broker_gateway_port" \
    --set "stream_in_endpoint=tcp://127.0.0.1:$stream_in_port" \
    --set "stream_out_endpoint=tcp://127.0.0.1:$stream_out_port" \
    --set "curve_secret_file=$keys/broker" --set "curve_peers_dir=$keys/peers" \
    --set "metrics_listen=127.0.0.1:$broker_metrics_port" \
    --set "admin_token=$admin_token" --set "admin_actions=$admin_actions"
for service in "${services[@]}"; do
    for instance in $(instances "$service"); do
        if [ "$instance" = "$service" ]; then
            # shellcheck disable=SC2046 # client_keys prints separate words on purpose
            start "$service" "$bin/$service" --set "broker=tcp://127.0.0.1:$worker_port" \
                $(client_keys "$service")
        else
            # shellcheck disable=SC2046
            start "$service.$instance" "$bin/$service" --set "node=$instance" \
                --set "broker=tcp://127.0.0.1:$worker_port" $(client_keys "$service")
        fi
    done
done
# The development config accepts anonymous connections and HS256 tokens signed with the
# development secret written in config/gateway.dev.json (see the README).
# shellcheck disable=SC2046
start gateway "$bin/genapi-gateway" --config config/gateway.dev.json \
    --set "listen=0.0.0.0:$gateway_port" --set "broker=tcp://127.0.0.1:$broker_gateway_port" \
    --set "metrics_listen=127.0.0.1:$gateway_metrics_port" \
    $(client_keys gateway)
socket_url="$(grep -m1 '^READY gateway' "$logs/gateway.out" | cut -d' ' -f3)"
echo
echo "Phoenix socket: $socket_url  (channel api:lobby, event \"api\")"
echo "A development token: $bin/genapi-ctl token --sub user_42 --roles admin --config config/gateway.dev.json"
echo "Broker status:       export GENAPI_CURVE_SECRET_FILE=$keys/peers/operator GENAPI_CURVE_BROKER_FILE=$keys/broker"
echo "                     export GENAPI_ADMIN_TOKEN=\$(cat $keys/admin_token)"
echo "                     $bin/genapi-ctl status --broker tcp://127.0.0.1:$broker_gateway_port"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}" || true
if [ "$stopping" -eq 0 ]; then
    echo "a process exited unexpectedly; see $logs" >&2
    exit 1
fi
