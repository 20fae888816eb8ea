# SPDX-License-Identifier: MIT
# Helpers shared by the benchmark scripts (run-bench.sh, relay-bench.sh, ab.sh, callgrind.sh),
# sourced by each. The sourcing script sets BENCH_PROG (its name, for messages) and may set
# WAIT_SECONDS (how long wait_line waits; default 30 s: the machine may be shared and busy).
# Processes it starts go into `pids`; `cleanup` stops them all (installed as the EXIT trap by
# the script, which may add its own clean-up).

pids=()
# Stops every process in `pids` (TERM, then waits for each).
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}

# wait_line FILE REGEX: prints the first line of FILE matching REGEX, waiting WAIT_SECONDS at
# most; otherwise prints FILE (and FILE's .log twin) and exits 1.
wait_line() {
    local deadline=$((SECONDS + ${WAIT_SECONDS:-30}))
    until grep -m1 -E "$2" "$1" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "${BENCH_PROG:-bench}: timed out waiting for /$2/ in $1" >&2
            cat "$1" "${1%.out}.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
}

# cpu_ticks PID: CPU ticks (user + system) the process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# median: the median of the numbers on standard input, one per line (0 when none).
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else print a[int((NR+1)/2)]}'; }

# metrics_set BINARY: the --set for the metrics listener, if BINARY has one: an ephemeral port
# (the default port would collide with any other stack on the machine), as `make bench` does;
# METRICS=off turns it off (metrics_listen empty).
metrics_set() {
    if "$1" --help 2>&1 | grep -q metrics_listen; then
        if [ "${METRICS:-on}" = off ]; then echo "--set metrics_listen="; else echo "--set metrics_listen=127.0.0.1:0"; fi
    fi
}
