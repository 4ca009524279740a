# Guarantee 2, spend cap: spent (per the results) and served (per the fake
# API's token counts x prices) both stay under max_spend_usd; one
# budget_exceeded entry marks the stop; no job is lost; raising the cap
# finishes the rest. A model without a price is refused under a cap.
# SPEND_FAKE_ARGS: the fake API's reading of the docs (test_fleet_spend_admit
# runs this with headers stamped at admission and max_tokens held).
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 50 ${SPEND_FAKE_ARGS:-}
lf limits set max_spend_usd=0.05 >/dev/null
n=300
gen_jobs $n s | lf submit - 2>/dev/null
for i in 1 2; do start_worker w$i --concurrency 32; done

stopped() { lf status --json | jq -e '.budget_stopped == 1 and .in_flight == 0'; }
check "the fleet stops at the cap" wait_until 30 stopped
marker() { [ "$(lf results 2>/dev/null | jq -r 'select(.status == "budget_exceeded") | .status' | wc -l)" -ge 1 ]; }
check "a budget_exceeded marker is in the stream" wait_until 5 marker
# Jobs that waited in a worker's slot meanwhile have their next admission
# (back to the queue, or, when one still fits under the cap, sent): wait for
# every lease to end before reading the results.
no_leases() { [ "$(rcli ZCARD 'llmfleet:{default}:leases')" -eq 0 ]; }
check "every lease ends after the stop" wait_until 10 no_leases
lf results --out "$T/r.jsonl" 2>/dev/null
eq "exactly one marker" "1" "$(jq -r 'select(.status == "budget_exceeded") | .status' "$T/r.jsonl" | wc -l)"
spent=$(jq -s 'map(select(.status == "ok") | .cost_usd | tonumber) | add * 1000000 | round' "$T/r.jsonl")
served=$(fake_stats | jq '(.input_tokens * 3000000 + .output_tokens * 15000000) / 1000000 | ceil')
echo "# spent per results: $spent micro-USD; served per the API: $served micro-USD; cap 50000"
check "spent $spent <= cap" test "$spent" -le 50000
check "served $served <= cap" test "$served" -le 50000
check "the cap was nearly used (spent >= 80 %)" test "$spent" -ge 40000
okn=$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | wc -l)
eq "no job lost: ok + queued (or parked) = all" "$n" "$(( okn + $(queued_count) ))"
check "status shows the stop" sh -c "lf() { \"$BIN/llmfleet\" \"\$@\"; }; \"$BIN/llmfleet\" status --redis-url $REDIS_URL | grep -q 'STOPPED at the cap'"

# The operator's resume tells the truth at the cap.
lf pause --reason "look at the cap" 2>/dev/null
lf resume 2> "$T/resume.err"
check "resume at the cap says the fleet is still stopped" grep -q "no longer paused, but still stopped at its spend cap" "$T/resume.err"
check "... and does not say resumed" sh -c "! grep -q 'resumed' '$T/resume.err'"
lf resume --reason x 2>/dev/null
eq "resume --reason is refused (exit 2)" 2 "$?"

lf limits set max_spend_usd=100 >/dev/null
check "raising the cap finishes the rest" wait_until 60 results_at_least default $((n + 1))
lf results --out "$T/r2.jsonl" 2>/dev/null
eq "all ok after the raise" "$n" "$(jq -r 'select(.status == "ok") | .id' "$T/r2.jsonl" | sort -u | wc -l)"
spent=$(lf status --json | jq -r .spent_usd)
sum=$(jq -s 'map(select(.status == "ok") | .cost_usd | tonumber) | add' "$T/r2.jsonl")
check "fleet spend $spent equals the sum of result costs $sum" awk "BEGIN {d = $spent - $sum; exit !(d < 0.0000005 && d > -0.0000005)}"

gen_jobs 1 np claude-sonnet-9-unpriced | lf submit - 2>/dev/null
check "unpriced model refused under a cap" wait_until 10 sh -c "\"$BIN/llmfleet\" results --redis-url $REDIS_URL | jq -e 'select(.id == \"np-1\" and .error_type == \"no_price\")'"
finish
