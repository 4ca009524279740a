# Guarantee 3, pacing: an input-token bucket with a backlog of 1.2x its
# per-minute quota (paced by the refill from the start: max_burst sends no
# more than a second's refill at once, so the full bucket is not spent;
# ~75 s). In steady state the fleet uses >= 95 % of the refill and draws
# <= 0.5 % 429s. (2.5x, 150 s, when the window began once a bucketful was
# spent; 4x, 3 minutes, before that: test_workloads paces twenty cases to
# >= 97 % besides. It runs in the sanitizer run too, LLMFLEET_SHORT=1.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../../scripts/workloads.sh"

itpm=60000
mult=1.2
start_redis
start_fakeapi --itpm $itpm --latency-ms 200 --jitter-ms 100
# ~100 input tokens a job (the fake counts ~4 characters a token)
text=$(head -c 400 /dev/zero | tr '\0' y)
n=$(awk -v i=$itpm -v m=$mult 'BEGIN {printf "%d", i * m / 100}')
for i in $(seq 1 $n); do
    printf '{"id":"p-%d","request":{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"%s %d"}]}}\n' $i "$text" $i
done | lf submit - 2>/dev/null
for i in 1 2 3 4; do start_worker w$i --concurrency 64; done
check "all $n jobs done" wait_until $(awk -v m=$mult 'BEGIN {printf "%d", 60 * m + 60}') results_at_least default $n
fake_stats > "$T/stats.json"
# Steady state (wl_metrics, scripts/workloads.sh): from 5 s after the
# bucket's level, simulated from what the fake served, first falls to half
# (or after the first request, when it never does) to 3 s before the last
# request; what was served there less any drawdown of the level, as a
# share of the window's refill. A fleet that spent the full bucket at
# once would leave too short a window (below).
WL_COL='.input' WL_CAP=$itpm
m=$(wl_metrics "$T/stats.json")
util=$(jq '.used * 10 | round / 10' <<<"$m")
secs=$(jq .secs <<<"$m")
echo "# steady state: $util % of the refill over $secs s ($m)"
check "steady-state use $util % >= 95 %" awk "BEGIN {exit !($util >= 95)}"
r429=$(jq '.status["429"] // 0' "$T/stats.json")
req=$(jq .requests_total "$T/stats.json")
echo "# 429s: $r429 of $req requests"
check "429s $r429 <= 0.5 % of $req requests" awk "BEGIN {exit !($r429 <= 0.005 * $req)}"
check "a steady state of >= 50 s ($secs s)" test "$secs" -ge 50
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one ok result per id" "$n" "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)"
finish
