# SIGTERM: stop claiming, let in-flight requests finish, exit 0, lose
# nothing. A second signal exits at once.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 800
n=300
gen_jobs $n s > "$T/jobs.jsonl"
lf submit "$T/jobs.jsonl" 2>/dev/null

alive() { [ "$(lf status --json | jq .workers_alive)" = "$1" ]; }
t0=$(now_ms)
start_worker w1 --concurrency 50
w1=$WORKER_PID
check "status counts the worker from its start (heartbeat at connect)" wait_until 3 alive 1
echo "# counted alive $(( $(now_ms) - t0 )) ms after the start (lease 30 s: renew every 10 s)"
inflight() { [ "$(fake_stats | jq .concurrent)" -ge "$1" ]; }
check "requests in flight" wait_until 10 inflight 50
eq "status workers: w1 with its 50 requests in flight" "w1 50" \
    "$(lf status workers --json | jq -r '.[] | "\(.name) \(.in_flight)"')"
check "status workers: a table" sh -c "'$BIN/llmfleet' status workers --redis-url '$REDIS_URL' | grep -q '^w1 .* 50  expires in'"
kill -TERM "$w1"
wait "$w1"; rc=$?
eq "drained worker exits 0" "0" "$rc"
eq "status no longer counts it once it is gone" 1 "$(alive 0 && echo 1)"
eq "status --json: an unset cap is null" null "$(lf status --json | jq -c .max_spend_usd)"
check "status: a 10 s rate beside the minute's" sh -c "'$BIN/llmfleet' status --redis-url '$REDIS_URL' | grep -q 'last 10 s'"
lf status --fleet tpyo > /dev/null 2> "$T/typo.err"
check "status: a fleet with no data gets a warning" grep -q 'has no data in this Redis' "$T/typo.err"
check "drain logged" grep -q "event=draining" "$T/w1.log"
done_n=$(results_count)
check "in-flight requests finished before exit (>= 50 results)" test "$done_n" -ge 50
eq "nothing leased after the drain" "0" "$(rcli ZCARD 'llmfleet:{default}:leases')"
eq "queue + results = all jobs" "$n" "$(( $(queued_count) + done_n ))"

start_worker w2 --concurrency 100
w2=$WORKER_PID
check "the rest finishes on another worker" wait_until 30 results_at_least default $n
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per id" "$n" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "no second result" "$n" "$(wc -l < "$T/r.jsonl")"

kill -TERM "$w2"; wait "$w2"

# A second signal during the drain exits at once, non-zero.
gen_jobs 50 s2 | lf submit - 2>/dev/null
start_fakeapi --latency-ms 30000
start_worker w3 --concurrency 10 --drain-timeout-ms 60000
w3=$WORKER_PID
check "w3 has requests in flight" wait_until 10 inflight 10
kill -TERM "$w3"
check "w3 draining" wait_until 5 grep -q "event=draining" "$T/w3.log"
kill -INT "$w3"
wait "$w3"; rc=$?
eq "second signal exits at once with status 1" "1" "$rc"
finish
