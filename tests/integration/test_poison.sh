# A poison job (it kills its worker every time) goes to the dead letters
# after max_deliveries (default 3) lost deliveries, with the reason; the
# jobs around it all succeed.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 20
{ gen_jobs 20 ok; gen_jobs 1 poison; gen_jobs 20 ok2; } | lf submit - 2>/dev/null
deaths=0
# Workers that crash on the poison job, replaced each time they die.
until results_at_least default 41; do
    LLMFLEET_TEST_CRASH_ID=poison-1 start_worker "w$deaths" --concurrency 8 --lease-ms 800
    w=$WORKER_PID
    done_or_dead() { ! kill -0 "$w" 2>/dev/null || results_at_least default 41; }
    wait_until 30 done_or_dead || break
    kill -0 "$w" 2>/dev/null || deaths=$((deaths + 1))
    [ "$deaths" -gt 6 ] && break
done
echo "# workers killed by the poison job: $deaths"
eq "the poison job killed exactly max_deliveries=3 workers" "3" "$deaths"
lf results --out "$T/r.jsonl" 2>/dev/null
eq "40 good jobs ok" "40" "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)"
eq "poison: error result" "error worker_lost" "$(jq -r 'select(.id == "poison-1") | "\(.status) \(.error_type)"' "$T/r.jsonl")"
check "poison: the message says why" grep -q "poison job: its worker was lost 3 times" <<<"$(jq -r 'select(.id == "poison-1") | .error_message' "$T/r.jsonl")"
eq "poison: one dead letter with the job" "poison-1" "$(rcli LRANGE 'llmfleet:{default}:dead' 0 -1 | jq -r 'select(.reason | test("poison")) | (.job | fromjson | .id)')"
lost=$(lf status --json | jq .total_lost_in_flight)
echo "# deliveries lost in flight (poison + bystanders): $lost"
check "status counts the lost deliveries (>= 3)" test "$lost" -ge 3

# max_deliveries is a fleet limit. The last loop worker stops first, so
# that the crashing worker is the one that gets the job.
kill -TERM "$w" 2>/dev/null
gone() { ! kill -0 "$1" 2>/dev/null; }
wait_until 30 gone "$w"
lf limits set max_deliveries=1 >/dev/null
gen_jobs 1 poison2 | lf submit - 2>/dev/null
LLMFLEET_TEST_CRASH_ID=poison2-1 start_worker x1 --lease-ms 800
check "the crashing worker dies on the job" wait_until 30 gone "$WORKER_PID"
start_worker x2 --lease-ms 800
check "with max_deliveries=1 one loss is enough" wait_until 20 results_at_least default 42
finish
