#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a command with the sanitizer settings the tests use: any ASan, LSan or UBSan report
# makes the reporting process exit non-zero (the test harness asserts exit status 0).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$here/tests/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
exec "$@"
