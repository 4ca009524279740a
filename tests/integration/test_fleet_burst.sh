# max_burst against the docs' own example: "a per-minute limit may be
# enforced over shorter intervals (60 RPM as 1 per second)". The fake API
# enforces its 60 requests a minute per second as well (--enforce-ms 1000:
# a bucket of one, refilled in a second, beside the minute's, which the
# headers describe and which starts full). 30 jobs, 2 workers: every job
# ok, no 429, about one a second (1.1 s apart: a tenth of the burst kept;
# the minute's bucket alone would let all 30 go at once). Then the same with max_burst=0, which trusts the
# minute's bucket: 429s within a few seconds (so the first part could
# fail).
. "$(dirname "$0")/lib.sh"

n=30
jobs() {
    for i in $(seq 1 $n); do
        printf '{"id":"%s-%d","request":{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi %d"}]}}\n' "$1" "$i" "$i"
    done
}
start_redis
start_fakeapi --rpm 60 --enforce-ms 1000 --latency-ms 100
jobs b | lf submit - 2>/dev/null
t0=$(now_ms)
ws=()
for i in 1 2; do start_worker w$i --concurrency 32; ws+=("$WORKER_PID"); done
check "all $n jobs done" wait_until 90 results_at_least default $n
secs=$(( ($(now_ms) - t0) / 1000 ))
fake_stats > "$T/stats.json"
r429=$(jq '.status["429"] // 0' "$T/stats.json")
echo "# $n jobs in $secs s, $r429 429s of $(jq .requests_total "$T/stats.json") requests"
eq "no 429 at 60 a minute enforced per second" 0 "$r429"
check "about one a second ($secs s >= $((n - 5)))" test "$secs" -ge $((n - 5))
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one ok result per id" "$n" "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)"

# The control: the minute's bucket alone.
kill -TERM "${ws[@]}" 2>/dev/null
wait "${ws[@]}" 2>/dev/null
curl -s -X POST "$FAKE_URL/_reset" >/dev/null
lf limits set max_burst=0 >/dev/null
jobs c | lf submit - 2>/dev/null
for i in 3 4; do start_worker w$i --concurrency 32; done
got429() { [ "$(fake_stats | jq '.status["429"] // 0')" -gt 0 ]; }
check "max_burst=0: 429s within 10 s" wait_until 10 got429
finish
