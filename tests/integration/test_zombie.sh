# A zombie: a worker stopped (SIGSTOP) past its lease while its requests
# were at the API. Another worker finishes the jobs; when the zombie wakes
# (SIGCONT), its late settles are refused by the lease id (fencing): no
# second result, no double-counted spend or tokens.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 1500
n=30
start_worker zombie --concurrency 64 --lease-ms 1000
zombie=$WORKER_PID
warm_up
gen_jobs $n z | lf submit - 2>/dev/null
inflight() { [ "$(fake_stats | jq .concurrent)" -ge "$1" ]; }
check "zombie has its $n requests at the API" wait_until 10 inflight $n
kill -STOP "$zombie"
start_worker heir --concurrency 64 --lease-ms 1000
check "the heir finishes every job while the zombie sleeps" wait_until 30 results_at_least default $((n + 1))
spent_before=$(lf status --json | jq -r .spent_usd)
kill -CONT "$zombie"
check "the zombie's late settles are refused (fencing)" wait_until 10 grep -q "event=lease_lost" "$T/zombie.log"
lost_zero() { lf status --json | jq -e '.in_flight == 0 and .leased == 0'; }
wait_until 10 lost_zero
lf results 2>/dev/null | jq -c 'select(.id | test("^z-"))' > "$T/r.jsonl"
eq "one result per id" "$n" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "no second result" "$n" "$(wc -l < "$T/r.jsonl")"
eq "every result is the heir's" "$n" "$(jq -r 'select(.worker == "heir") | .id' "$T/r.jsonl" | wc -l)"
eq "spend unchanged by the zombie" "$spent_before" "$(lf status --json | jq -r .spent_usd)"
sum=$(jq -s 'map(.cost_usd | tonumber) | add * 1000000 | round' "$T/r.jsonl")
spent=$(lf status --json | jq '.spent_usd * 1000000 | round')
lost=$(lf status --json | jq .total_lost_in_flight)
echo "# spent $spent micro-USD = results $sum + $lost reservations lost with the zombie"
check "spend = results + reservations of the zombie's lost requests (counted once)" \
    test "$spent" -ge "$sum"
eq "the zombie's $n requests counted lost once" "$n" "$lost"
finish
