# Guarantee 4, retries: only the fleet retries. With 10 % 500/529 faults and
# max_attempts 5, >= 99.9 % of jobs end ok. Retries seen at the API stay
# within retry_budget_per_min; jobs that cannot retry end with the last
# error. Non-retryable errors end at once.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --p500 0.05 --p529 0.05 --seed 3
lf limits set max_attempts=5 base_delay=20ms max_delay=200ms retry_budget_per_min=2000 >/dev/null
n=2000
gen_jobs $n r | lf submit - 2>/dev/null
ws=()
for i in 1 2; do start_worker w$i --concurrency 32; ws+=("$WORKER_PID"); done
check "all $n jobs end" wait_until 60 results_at_least default $n
lf results --out "$T/r.jsonl" 2>/dev/null
okn=$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)
echo "# $okn of $n ok; $(fake_stats | jq -c .status) at the API"
check ">= 99.9 % ok ($okn of $n)" test "$okn" -ge 1998
check "some jobs needed retries" test "$(jq -r 'select(.attempts > 1) | .id' "$T/r.jsonl" | wc -l)" -gt 50
eq "one result per id" "$n" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"

# A small budget: 50 % faults, 20 retries a minute for the whole fleet.
kill -TERM "${ws[@]}"; wait "${ws[@]}" 2>/dev/null
rcli FLUSHALL >/dev/null
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --p500 0.5 --seed 5
lf limits set max_attempts=5 base_delay=10ms max_delay=50ms retry_budget_per_min=20 >/dev/null
bw=()
for i in 1 2; do start_worker b$i --concurrency 32; bw+=("$WORKER_PID"); done
gen_jobs 200 b | lf submit - 2>/dev/null
check "all 200 end" wait_until 40 results_at_least default 200
# every job goes out at least once: the rest of the API's requests are retries
retries=$(( $(fake_stats | jq .requests_total) - 200 ))
echo "# retries seen at the API: $retries (budget 20 a minute)"
check "retries at the API ($retries) <= budget 20" test "$retries" -le 20
check "retries at the API ($retries) use the budget (>= 15)" test "$retries" -ge 15
lf results --out "$T/b.jsonl" 2>/dev/null
check "jobs refused a retry carry the last error and why" \
    test "$(jq -r 'select(.status == "error" and (.error_message | test("retry budget is spent")) and .error_type == "api_error" and .http_status == 500) | .id' "$T/b.jsonl" | wc -l)" -gt 50
eq "one result per id" "200" "$(jq -r .id "$T/b.jsonl" | sort -u | wc -l)"
# The workers' stop summaries count the results they wrote, ok and error
# (errors after refused retries included), and add up to the stream's.
kill -TERM "${bw[@]}"; wait "${bw[@]}" 2>/dev/null
sum() { grep -h 'event=worker_stop' "$T"/b1.log "$T"/b2.log | grep -o " $1=[0-9]*" |
        awk -F= '{ s += $2 } END { print s + 0 }'; }
eq "worker_stop ok= adds up to the ok results" \
    "$(jq -r 'select(.status == "ok") | .id' "$T/b.jsonl" | wc -l)" "$(sum ok)"
eq "worker_stop error= adds up to the error results" \
    "$(jq -r 'select(.status == "error") | .id' "$T/b.jsonl" | wc -l)" "$(sum error)"

# Non-retryable: 401 ends at once, one attempt.
kill -TERM "${bw[@]}"; wait "${bw[@]}" 2>/dev/null
rcli FLUSHALL >/dev/null
ANTHROPIC_API_KEY=wrong-key ANTHROPIC_BASE_URL=$FAKE_URL "$BIN/llmfleet" worker \
    --redis-url "$REDIS_URL" --name bad >>"$T/bad.log" 2>&1 &
PIDS+=($!)
gen_jobs 5 k | lf submit - 2>/dev/null
check "401 ends the jobs" wait_until 10 results_at_least default 5
eq "401: error, one attempt, authentication_error" "5" \
    "$(lf results 2>/dev/null | jq -r 'select(.status == "error" and .attempts == 1 and .error_type == "authentication_error" and .http_status == 401) | .id' | wc -l)"
finish
