# The token model on the workloads real batch users send (scripts/workloads.sh),
# under both readings of when the API stamps its -remaining headers (at
# admission, at the answer): each paced workload uses >= 97 % of its binding
# bucket with <= 0.1 % of requests drawing a 429 and no stop at the hard
# floor (soft floor 10 %, hard floor 1 %), no job fails, and every id
# has exactly one result. Mixed models: the roomy class (Haiku) finishes
# within 1.2x its time alone. Images: a roomy bucket costs no more than
# 1.5x the time with no limit at all, or, when longer, than the time its
# refill takes for what the API counted (+1 s): max_burst (1 s) sends no
# class's buckets faster than their refill, however full they read (the
# docs allow a limit per minute to be enforced per second). An estimate
# that took an image for its base64 size would show as many times that. The input estimate is within
# 10 % of the API's count after 50 answers (English, Japanese, images, source
# code counted a token per symbol, and English counted otherwise than the
# docs say). The output-bound workload
# runs under both output rules (the 2026 'actual' and the 2025 'reserve':
# max_tokens held while a request runs); the others, where the output
# bucket does not bind, under 'actual'. Three more run with every limit
# also enforced per second (the docs: "a per-minute limit may be enforced
# over shorter intervals (60 RPM as 1 per second)", a bucket no header
# shows; the fake's --enforce-ms 1000): English, the mixed queue and
# source code, same bars. (Not the output-bound workload: the 2026 rule
# charges output at the answer, 150 tokens on average against a
# per-second bucket of 300, so answers of random length overdraw it
# whatever the client sends; nor the cached one: its first request, an
# 8k-token cache write, holds a per-second input bucket of 667 for 11 s,
# which no client can use.) The cases run four at a time (WL_PARALLEL).
# A slow suite (~5.5 min here, 20 cases): it runs once, in the release run; the sanitizer
# run (LLMFLEET_SHORT=1) skips it (the estimator's C paths run sanitized in
# test_estimate and test_spend_kinds). WL_SECONDS shortens the steady state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../../scripts/workloads.sh"

if [ -n "${LLMFLEET_SHORT:-}" ]; then echo "ok - skipped in the sanitizer run (run once, in make test)"; exit 0; fi
cases=()
for wl in english output cached mixed images japanese code; do
    for hd in admit answer; do cases+=("$wl $hd actual"); done
done
cases+=("output admit reserve" "output answer reserve" "counted admit actual")
cases+=("english answer actual 1000" "mixed admit actual 1000" "code answer actual 1000")

run_one() {
    local wl=$1 hd=$2 rule=$3 enf=${4:-}
    (
        T=$T/$wl-$hd-$rule${enf:+-$enf}; mkdir -p "$T"; PIDS=()
        trap fleet_cleanup EXIT
        WL_ENFORCE_MS=$enf wl_case "$wl" "$hd" "$rule" > "$T/case.json" 2> "$T/case.err"
    )
}
# Four at a time, the next starting as soon as one ends (in groups of
# three, each group waited for its slowest: 426 s in a CI run; three at a
# time, 442 s). Five at a time kept both CPUs busy while the harness polled
# every 50 ms (one case then used 96.0 % of its bucket); with wait_until's
# slower polls after 5 s, 299 s, every case >= 97.9 %, ~35 % of the CPU
# idle. Four leaves more room.
running=0
for c in "${cases[@]}"; do
    if [ "$running" -ge "${WL_PARALLEL:-4}" ]; then wait -n; running=$((running - 1)); fi
    # shellcheck disable=SC2086
    run_one $c &
    running=$((running + 1))
done
wait

for c in "${cases[@]}"; do
    set -- $c
    d=$T/$1-$2-$3${4:+-$4}
    f=$d/case.json
    if [ ! -s "$f" ]; then
        fail "$1/$2/$3${4:+/per-second}: no result ($(tail -n 3 "$d/case.err" 2>/dev/null | tr '\n' ' '))"
        continue
    fi
    [ -n "${4:-}" ] && set -- "$1" "$2/$3/per-second"
    [ "${3:-actual}" = actual ] || set -- "$1" "$2/$3"
    echo "# $(cat "$f")"
    j=$(cat "$f")
    n=$(jq .jobs <<<"$j")
    eq "$1/$2: every job ok" "$n" "$(jq .ok <<<"$j")"
    eq "$1/$2: no failed job" "0" "$(jq .failed <<<"$j")"
    eq "$1/$2: one result per id" "$n" "$(jq .unique <<<"$j")"
    case $1 in
    images)
        check "$1/$2: 429s $(jq .r429 <<<"$j") = 0" test "$(jq .r429 <<<"$j")" -eq 0
        check "$1/$2: roomy $(jq .roomy_s <<<"$j") s <= 1.5 x max(free $(jq .free_s <<<"$j") s, refill $(jq .refill_s <<<"$j") s) + 1" \
            jq -e '.refill_s > 0 and .roomy_s <= 1.5 * ([.free_s, .refill_s] | max) + 1' <<<"$j" ;;
    *)
        check "$1/$2: binding bucket used $(jq .used <<<"$j") % >= 97 %" jq -e '.used >= 97' <<<"$j"
        check "$1/$2: 429s $(jq .r429 <<<"$j") of $(jq .requests <<<"$j") <= 0.1 %" \
            jq -e '.r429_pct <= 0.1' <<<"$j"
        check "$1/$2: no stop at the hard floor ($(jq .hard_floor_hits <<<"$j"))" \
            jq -e '.hard_floor_hits == 0' <<<"$j" ;;
    esac
    case $1 in english|counted|japanese|images|code)
        check "$1/$2: input estimate error after 50 answers $(jq .est_err_pct <<<"$j") % <= 10 %" \
            jq -e '.est_err_pct != null and .est_err_pct <= 10' <<<"$j" ;;
    esac
    [ "$1" = mixed ] && check "$1/$2: Haiku mixed $(jq .mixed_s <<<"$j") s <= 1.2 x alone $(jq .alone_s <<<"$j") s" \
        jq -e '.mixed_s <= 1.2 * .alone_s' <<<"$j"
done
finish
