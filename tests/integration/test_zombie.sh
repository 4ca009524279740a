# A zombie: a worker stopped (SIGSTOP) past its lease while its requests
# were at the API. Another worker finishes the jobs; when the zombie wakes
# (SIGCONT), its late settles are refused by the lease id (fencing): no
# second result, no double-counted spend or tokens. Then a zombie stopped
# the instant its admission said "go" (before it sent anything): when it
# wakes, its leases are long reaped, and it must not send those requests.
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

# Stopped as the "go" arrives (the test hook raises SIGSTOP right there).
F=z2
LLMFLEET_TEST_CRASH_AT=stop_after_admit start_worker z2zombie --fleet $F --concurrency 64 --lease-ms 1000
z2=$WORKER_PID
gen_jobs 12 y | lf submit - --fleet $F 2>/dev/null
is_stopped() { [ "$(ps -o stat= -p "$1" | cut -c1)" = T ]; }
check "z2: the zombie stopped on its first go" wait_until 10 is_stopped "$z2"
start_worker z2heir --fleet $F --concurrency 64 --lease-ms 1000
check "z2: the heir finishes every job" wait_until 30 results_at_least $F 12
sent=$(fake_stats | jq .requests_total)
kill -CONT "$z2"
check "z2: the woken zombie drops its late go (not sent)" wait_until 10 grep -q "event=late_go" "$T/z2zombie.log"
z2idle() { lf status --fleet $F --json | jq -e '.in_flight == 0 and .leased == 0'; }
check "z2: nothing in flight or leased" wait_until 10 z2idle
eq "z2: no request sent by the zombie after it woke" "$sent" "$(fake_stats | jq .requests_total)"
lf results --fleet $F --out "$T/z2.jsonl" 2>/dev/null
eq "z2: one result per id" 12 "$(wc -l < "$T/z2.jsonl")"
eq "z2: every result the heir's" 12 "$(jq -r 'select(.worker == "z2heir") | .id' "$T/z2.jsonl" | wc -l)"
finish
