#!/usr/bin/env bash
# bench-fleet.sh — quota use on the workloads real batch users send
# (scripts/workloads.sh), under every reading of the API's docs: rate-limit
# headers stamped at admission or at the answer, output counted as produced
# (2026 docs) or from max_tokens (2025 docs); llmfleet (4 workers x 32
# slots) and, beside it in the same run on the same fake API, 8 naive loops
# of the official SDK (tests/sdk/naive.mjs, default retries).
#
#   bash scripts/bench-fleet.sh                      # the whole table
#   BENCH_FLEET_WORKLOADS="english cached" BENCH_FLEET_HEADERS=admit \
#   BENCH_FLEET_RULES=actual BENCH_FLEET_WHO=llmfleet bash scripts/bench-fleet.sh
#
# Each row is one run: used % is the binding bucket's steady-state use (what
# was served over the window from WL_SKIP s after the initial bucket is
# drawn to half to WL_TAIL s before the last request, less any drawdown of
# the bucket's simulated level, as a share of the window's refill, see
# wl_metrics in scripts/workloads.sh); 429 % over the whole run; s at the hard floor: the
# window's seconds with any 429; est. error: the fleet's input estimate
# against usage after its first 50 answers (status, per class). Mixed: the
# roomy class's time in the mix / alone; images: a roomy bucket / no limit.
# Runs go BENCH_FLEET_PARALLEL (3) at a time. Env: WL_SECONDS (45),
# BENCH_FLEET_WORKLOADS, BENCH_FLEET_HEADERS ("admit answer"),
# BENCH_FLEET_RULES ("actual reserve": reserve only for the workloads in
# BENCH_FLEET_RULE_WORKLOADS, "output", unless BENCH_FLEET_ALL_RULES=1),
# BENCH_FLEET_WHO ("llmfleet naive").
set -u
cd "$(dirname "$0")/.."
BIN=${LLMFLEET_BIN:-$PWD/bin}
TOP=$(mktemp -d "${TMPDIR:-/tmp}/llmfleet-bench-fleet.XXXXXX")
T=$TOP
# Jobs for the first minute's bucketful and WL_SECONDS of refill: the naive
# clients spend that bucketful at once (scripts/workloads.sh, wl_params).
WL_PAD=${WL_PAD:-60}
. scripts/fleet-lib.sh
. scripts/workloads.sh
trap 'rm -rf "$TOP"' EXIT
API_KEY="sk-ant-bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
WORKLOADS=${BENCH_FLEET_WORKLOADS:-english output cached mixed images japanese code counted}
HEADERS=${BENCH_FLEET_HEADERS:-admit answer}
RULES=${BENCH_FLEET_RULES:-actual reserve}
# The output rule matters where the output bucket binds: the other
# workloads run under `actual` only unless BENCH_FLEET_ALL_RULES=1.
RULE_WORKLOADS=${BENCH_FLEET_RULE_WORKLOADS:-output}
WHO=${BENCH_FLEET_WHO:-llmfleet naive}
PAR=${BENCH_FLEET_PARALLEL:-3}

t_start=$(now_ms)
runs=()
for wl in $WORKLOADS; do for hd in $HEADERS; do for rule in $RULES; do for who in $WHO; do
    if [ "$rule" != actual ] && [ -z "${BENCH_FLEET_ALL_RULES:-}" ] &&
       [[ " $RULE_WORKLOADS " != *" $wl "* ]]; then continue; fi
    runs+=("$wl $hd $rule $who")
done; done; done; done
echo "# bench-fleet: ${#runs[@]} runs, $PAR at a time, up to ~$(( WL_SECONDS + WL_PAD + 10 )) s each"

one() {
    local d="$TOP/$1-$2-$3-$4"
    mkdir -p "$d"
    ( T=$d; PIDS=(); trap fleet_cleanup EXIT; wl_case "$@" > "$d/row.json" 2> "$d/err" )
}
i=0
for r in "${runs[@]}"; do
    # shellcheck disable=SC2086
    one $r &
    i=$((i + 1))
    [ $((i % PAR)) -eq 0 ] && wait
done
wait

echo
echo "| workload | headers | output rule | client | binding bucket | used % | 429 % | s at hard floor | jobs ok / failed | est. error % | notes |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for r in "${runs[@]}"; do
    set -- $r
    f="$TOP/$1-$2-$3-$4/row.json"
    if [ ! -s "$f" ]; then
        echo "| $1 | $2 | $3 | $4 | | run failed: $(tail -n 1 "$TOP/$1-$2-$3-$4/err" 2>/dev/null) | | | | | |"
        continue
    fi
    jq -r 'def r: if . == null then "n/a" else . * 10 | round / 10 end;
        "| \(.workload) | \(.headers) | \(.rule) | \(.who) | \(.bucket) | \(.used | r) | \(.r429_pct * 100 | round / 100) | \(.secs429) / \(.secs) | \(.ok) / \(.failed) | \(.est_err_pct | r) | \(
            if .alone_s then "Haiku \(.mixed_s) s mixed / \(.alone_s) s alone"
            elif .free_s then "\(.roomy_s) s roomy / \(.free_s) s no limit"
            elif .roomy_s then "\(.roomy_s) s" else "" end) |"' "$f"
done
echo
echo "# bench-fleet took $(( ($(now_ms) - t_start) / 1000 )) s"
