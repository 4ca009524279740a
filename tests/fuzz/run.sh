#!/usr/bin/env bash
# Run libFuzzer targets: first replay every regression input once, then fuzz
# for a while from a scratch copy of the seed corpus. Builds nothing; the
# binaries come from `make fuzz-build`.
#
#   bash tests/fuzz/run.sh build/fuzz/fuzz_job build/fuzz/fuzz_response ...
#
# A binary named fuzz_NAME uses, under tests/fuzz/:
#   corpus/NAME/    seed inputs (copied to a temp dir, never written to)
#   regress/NAME/   inputs that once crashed (replayed before fuzzing)
#   NAME.dict       libFuzzer dictionary, when present
#
# Environment:
#   FUZZ_SECONDS  fuzzing time per target (60)
#   FUZZ_MAX_LEN  largest input, bytes (65536)
#   FUZZ_TIMEOUT  seconds one input may take before it counts as a hang (25)
#   FUZZ_REGRESS_TIMEOUT  the same for regression inputs (2): some of them
#                 once took seconds (quadratic parsing) and now take ms
#
# A crash, leak, hang or out-of-memory fails the target: its log and the
# input that did it are kept in the temp dir and their paths printed. The
# last line is "N passed, N failed", one count per target; exit status is
# non-zero when any target failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
max_len=${FUZZ_MAX_LEN:-65536}
timeout=${FUZZ_TIMEOUT:-25}
regress_timeout=${FUZZ_REGRESS_TIMEOUT:-2}
pass=0
fail=0

if [ $# -eq 0 ]; then
    echo "usage: $0 FUZZ_BINARY..." >&2
    exit 2
fi

# Inputs libFuzzer saved in dir ($1) after a failure.
artifacts() {
    find "$1" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
           -o -name 'oom-*' -o -name 'slow-unit-*' \) 2>/dev/null
}

# Print the tail of a failed run's log and the saved inputs.
report() {
    local name=$1 log=$2 dir=$3
    echo "--- $name: last lines of $log"
    tail -n 40 "$log" | sed 's/^/    /'
    local a
    for a in $(artifacts "$dir"); do
        echo "$name: crashing input: $a"
    done
}

# Replay tests/fuzz/regress/NAME/* once each. Returns non-zero on failure.
replay() {
    local name=$1 bin=$2 work=$3
    local dir="$here/regress/$name"
    local files=()
    [ -d "$dir" ] && while IFS= read -r f; do files+=("$f"); done \
        < <(find "$dir" -type f | sort)
    if [ ${#files[@]} -eq 0 ]; then
        echo "$name: no regression inputs"
        return 0
    fi
    local log="$work/regress.log"
    if "$bin" -timeout="$regress_timeout" -artifact_prefix="$work/" "${files[@]}" \
            >"$log" 2>&1; then
        echo "$name: ${#files[@]} regression inputs ok"
        return 0
    fi
    echo "$name: FAILED replaying regression inputs"
    report "$name" "$log" "$work"
    grep -E '^Running: ' "$log" | tail -n 1 | sed "s/^Running: /$name: crashing input: /"
    return 1
}

# Fuzz for $seconds from a scratch copy of the seeds. Returns non-zero on failure.
fuzz() {
    local name=$1 bin=$2 work=$3
    local corpus="$work/corpus" log="$work/fuzz.log"
    local args=(-max_len="$max_len" -max_total_time="$seconds"
                -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1
                -artifact_prefix="$work/")
    mkdir -p "$corpus"
    [ -d "$here/corpus/$name" ] && cp -R "$here/corpus/$name/." "$corpus/"
    [ -f "$here/$name.dict" ] && args+=(-dict="$here/$name.dict")
    "$bin" "${args[@]}" "$corpus" >"$log" 2>&1
    local rc=$?
    local runs eps
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -z "$(artifacts "$work")" ]; then
        echo "$name: ok, ${runs:-?} runs in ${seconds}s (${eps:-?} exec/s)," \
             "corpus $(find "$corpus" -type f | wc -l) inputs"
        return 0
    fi
    echo "$name: FAILED after ${runs:-?} runs (exit $rc)"
    report "$name" "$log" "$work"
    return 1
}

for bin in "$@"; do
    base=$(basename "$bin")
    name=${base##*fuzz_}
    if [ ! -x "$bin" ]; then
        echo "$name: $bin is not an executable (run make fuzz-build)"
        fail=$((fail + 1))
        continue
    fi
    work=$(mktemp -d "${TMPDIR:-/tmp}/llmfleet-fuzz-$name.XXXXXX")
    if replay "$name" "$bin" "$work" && fuzz "$name" "$bin" "$work"; then
        pass=$((pass + 1))
        rm -rf "$work"
    else
        fail=$((fail + 1))
        echo "$name: kept $work"
    fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
