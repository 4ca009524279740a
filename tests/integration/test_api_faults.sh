# API faults: mixes of 500, 529, connection resets and hangs, then
# malformed answers (not JSON, truncated, no usage, huge, garbage
# rate-limit headers). Every job ends; hung requests time out and are
# retried; retries stay within the budget; nothing crashes; the fleet's
# spend never counts less than what the API served.
. "$(dirname "$0")/lib.sh"

start_redis
lf limits set retry_budget_per_min=2000 max_attempts=8 base_delay=20ms max_delay=200ms >/dev/null
start_fakeapi --latency-ms 20 --p500 0.05 --p529 0.05 --p-reset 0.05 --p-hang 0.05 --seed 11
n=400
gen_jobs $n f | lf submit - 2>/dev/null
for i in 1 2; do start_worker w$i --concurrency 32 --timeout-ms 1000; done
check "all $n jobs end" wait_until 60 results_at_least default $n
lf results --out "$T/r.jsonl" 2>/dev/null
okn=$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)
stats=$(fake_stats)
echo "# $okn of $n ok; API: $(jq -c '{status, resets, hangs}' <<<"$stats")"
check ">= 99 % ok ($okn)" test "$okn" -ge 396
check "hangs happened and were timed out" test "$(jq .hangs <<<"$stats")" -gt 0
check "workers logged timeouts" grep -q 'error_type="timeout"' "$T/w1.log" "$T/w2.log"
check "resets became connection errors and were retried" grep -qh 'error_type="connection_error"' "$T/w1.log" "$T/w2.log"
retries=$(( $(jq .requests_total <<<"$stats") - n ))
check "retries ($retries) within the budget (2000 a minute)" test "$retries" -le 2000
eq "one result per id" "$n" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
fleet_cleanup
PIDS=()
start_redis

# Malformed answers.
lf limits set retry_budget_per_min=2000 max_attempts=8 base_delay=20ms max_delay=200ms >/dev/null
start_fakeapi --latency-ms 10 --p-garbage 0.05 --p-truncated 0.05 --p-no-usage 0.05 \
    --p-huge 0.02 --huge-bytes 3000000 --p-bad-headers 0.05 --seed 12
n=400
gen_jobs $n m | lf submit - 2>/dev/null
start_worker m1 --concurrency 32 --max-response-bytes 1000000
check "all $n jobs end" wait_until 60 results_at_least default $n
check "the worker survived" kill -0 "$WORKER_PID"
lf results --out "$T/m.jsonl" 2>/dev/null
stats=$(fake_stats)
echo "# API: $(jq -c '{garbage, truncated, no_usage, huge, bad_headers}' <<<"$stats")"
eq "one result per id" "$n" "$(jq -r .id "$T/m.jsonl" | sort -u | wc -l)"
check "garbage, truncated and usage-less answers were retried (invalid_response)" grep -q 'error_type="invalid_response"' "$T/m1.log"
huge=$(jq -r 'select(.error_type == "response_too_large") | .id' "$T/m.jsonl" | wc -l)
eq "huge answers end as response_too_large" "$(jq .huge <<<"$stats")" "$huge"
okn=$(jq -r 'select(.status == "ok") | .id' "$T/m.jsonl" | wc -l)
check "the rest ends ok ($okn + $huge = $n)" test $((okn + huge)) -eq $n
check "garbage rate-limit headers were reported, not trusted" grep -q "event=bad_ratelimit_header" "$T/m1.log"
served=$(jq '(.input_tokens * 3000000 + .output_tokens * 15000000) / 1000000 | ceil' <<<"$stats")
spent=$(lf status --json | jq '.spent_usd * 1000000 | round')
echo "# spent $spent micro-USD; the API served $served"
check "spend ($spent) never under what the API served ($served)" test "$spent" -ge "$served"
finish
