#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts the development system on localhost: broker (workers :5570, gateways :5571), the
# walkthrough's example services, and a gateway on :4000. Waits for each READY line, prints
# where everything listens, and stops all of them on Ctrl-C.
set -euo pipefail
bin="${1:-build-run/bin}"
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
            exit 1
        fi
        sleep 0.05
    done
    echo "  $name: $(grep -m1 '^READY' "$logs/$name.out" | cut -d' ' -f2-)"
}

echo "genapi development system (logs in $logs):"
start broker "$bin/genapi-broker"
for service in user_service blog_service search_service admin_service report_service event_service; do
    start "$service" "$bin/$service" --set broker=tcp://127.0.0.1:5570
done
# The development config accepts anonymous connections and HS256 tokens signed with the
# development secret written in config/gateway.dev.json (see the README).
start gateway "$bin/genapi-gateway" --config config/gateway.dev.json
echo
echo "Phoenix socket: ws://localhost:4000/socket  (channel api:lobby, event \"api\")"
echo "A development token: $bin/genapi-ctl token --sub user_42 --roles admin --config config/gateway.dev.json"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}" || true
if [ "$stopping" -eq 0 ]; then
    echo "a process exited unexpectedly; see $logs" >&2
    exit 1
fi
