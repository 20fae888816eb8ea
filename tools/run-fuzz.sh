#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the libFuzzer targets of BUILD_DIR (configured with GA_FUZZ=ON, see `make fuzz`) one
# after the other, each for SECONDS, with ASan/UBSan/LSan and a memory limit, on a copy of its
# seed corpus (tests/fuzz/corpus/NAME) kept in BUILD_DIR/fuzz/NAME: inputs found along the way
# stay there, never in the repository. Exits non-zero when any target finds a crash, leak,
# timeout or out-of-memory; the reproducing input is BUILD_DIR/fuzz/NAME/crash-* (or leak-*,
# timeout-*, oom-*): run BUILD_DIR/bin/fuzz_NAME on that file to see the report again.
#   usage: tools/run-fuzz.sh BUILD_DIR SECONDS [NAME...]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "$1" && pwd)"
seconds="$2"
shift 2
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(phx wire frames worker_cmd jwt config argspec)

# Longest input per target: a few KiB reaches every path of these decoders.
declare -A max_len=([phx]=4096 [wire]=4096 [frames]=2048 [worker_cmd]=4096 [jwt]=2048 [config]=2048
                    [argspec]=1024)

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for t in "${targets[@]}"; do
    bin="$build/bin/fuzz_$t"
    work="$build/fuzz/$t"
    mkdir -p "$work/corpus"
    cp "$here/tests/fuzz/corpus/$t/"* "$work/corpus/"
    log="$work/last-run.log"
    status=0
    "$bin" "$work/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -max_len="${max_len[$t]:-4096}" -print_final_stats=1 -artifact_prefix="$work/" \
        >"$log" 2>&1 || status=$?
    # "#N DONE cov: C ft: F corp: ..." and "stat::number_of_executed_units: N"
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    runs=$(grep -Eo 'number_of_executed_units: [0-9]+' "$log" | cut -d' ' -f2)
    rate=$(grep -Eo 'average_exec_per_sec: +[0-9]+' "$log" | grep -Eo '[0-9]+$')
    if [ "$status" -eq 0 ]; then
        printf 'fuzz %-11s ok   %4ss  cov %-5s runs %-9s exec/s %s\n' "$t" "$seconds" \
            "${cov:-?}" "${runs:-?}" "${rate:-?}"
    else
        printf 'fuzz %-11s FAIL (exit %s): %s\n' "$t" "$status" "$log"
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written|abort' "$log" | head -8 || true
        failed+=("$t")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: findings in ${failed[*]} (inputs in $build/fuzz/NAME/)"
    exit 1
fi
