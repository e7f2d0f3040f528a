#!/usr/bin/env bash
# Runs the libFuzzer targets that `make fuzz-build` built (see README.md).
#
#   run.sh smoke BIN_DIR TARGET...  each target over its committed corpus, then
#                                   FUZZ_SMOKE_RUNS mutated inputs (fixed seed)
#   run.sh long BIN_DIR TARGET...   each target for FUZZ_SECS seconds, or
#                                   FUZZ_RUNS executions if set, one after the
#                                   other; what it learns is kept in build/fuzz/corpus
#
# Prints the executions of each target and the total, and stops with a
# non-zero status at the first crash, hang (FUZZ_TIMEOUT seconds for one
# input) or failed check; the input is left in build/fuzz/artifacts/TARGET/.
set -euo pipefail

mode=$1 bin=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
out=build/fuzz
smoke_runs=${FUZZ_SMOKE_RUNS:-5000}
secs=${FUZZ_SECS:-300}
timeout=${FUZZ_TIMEOUT:-10}
total=0

for t in "$@"; do
    seeds=$here/corpus/$t
    mkdir -p "$out/artifacts/$t" "$out/logs"
    log=$out/logs/$t.$mode.log
    args=(-max_len=4096 -timeout="$timeout" -print_final_stats=1
          -artifact_prefix="$out/artifacts/$t/")
    case $mode in
    smoke)
        # A scratch corpus first: libFuzzer adds what it finds to the first
        # directory, and the committed seeds must stay as they are.
        work=$out/smoke/$t
        rm -rf "$work" && mkdir -p "$work"
        args+=(-seed=1 -runs="$smoke_runs")
        ;;
    long)
        work=$out/corpus/$t
        mkdir -p "$work"
        if [ -n "${FUZZ_RUNS:-}" ]; then
            args+=(-runs="$FUZZ_RUNS")
        else
            args+=(-max_total_time="$secs")
        fi
        ;;
    *)
        echo "usage: run.sh smoke|long BIN_DIR TARGET..." >&2
        exit 2
        ;;
    esac
    if ! "$bin/$t" "${args[@]}" "$work" "$seeds" >"$log" 2>&1; then
        echo "fuzz $t: FAILED (input in $out/artifacts/$t/, log $log):" >&2
        grep -m1 -A4 "panicked at" "$log" >&2 || true
        grep -E "ERROR: libFuzzer|Test unit written" "$log" >&2 || tail -20 "$log" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    secs_used=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]*' || true)
    printf 'fuzz %-13s %12s executions in %4ss, %s, 0 crashes\n' "$t" "$runs" "$secs_used" "$cov"
    total=$((total + runs))
done
printf 'fuzz total         %12s executions, 0 crashes\n' "$total"
