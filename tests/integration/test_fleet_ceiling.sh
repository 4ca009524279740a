# Guarantee 1: 4 workers x 64 local slots with max_in_flight 12: the fake
# API never sees more than 12 requests at once (and the fleet uses them).
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 300
lf limits set max_in_flight=12 >/dev/null
n=400
gen_jobs $n c | lf submit - 2>/dev/null
for i in 1 2 3 4; do start_worker w$i --concurrency 64; done
check "all $n jobs done" wait_until 60 results_at_least default $n
peak=$(fake_stats | jq .peak_concurrent)
check "peak concurrency $peak <= 12" test "$peak" -le 12
check "peak concurrency $peak >= 10 (the ceiling is used)" test "$peak" -ge 10
eq "in flight back to 0" "0" "$(lf status --json | jq .in_flight)"
eq "reservations back to 0" "0.000000" "$(lf status --json | jq -r '.reserved_usd | tostring | . + "" ' | awk '{printf "%.6f", $1}')"
check "ceiling logged" grep -q "event=ceiling max_in_flight=12" "$T/w1.log"

# A change of limit reaches running workers without a restart.
lf limits set max_in_flight=3 >/dev/null
curl -s -X POST "$FAKE_URL/_reset" >/dev/null
gen_jobs 60 c2 | lf submit - 2>/dev/null
check "60 more done" wait_until 60 results_at_least default $((n + 60))
peak=$(fake_stats | jq .peak_concurrent)
check "after limits set max_in_flight=3: peak $peak <= 3" test "$peak" -le 3
finish
