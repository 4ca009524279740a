# A trickling upstream: the status line and headers come, then the body a
# byte a second (fake API p_trickle). The worker cuts such an answer after
# one rate window (10 s under 1 KiB) as a retryable slow_response, rather
# than holding the slot and its reservation for the request timeout (here
# 10 minutes); once the upstream heals, the retries finish every job once.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --p-trickle 1
start_worker w1 --timeout-ms 600000
t0=$(now_ms)
gen_jobs 4 t | lf submit - 2>/dev/null
cut_all() { [ "$(grep -c 'error_type="slow_response"' "$T/w1.log")" -ge 4 ]; }
check "the 4 trickling answers are cut" wait_until 60 cut_all
dt=$(( $(now_ms) - t0 ))
echo "# cut after $dt ms (request timeout 600000 ms)"
check "... within 45 s, not at the request timeout" test "$dt" -lt 45000
check "... after the rate window, not before" test "$dt" -ge 10000
fake_config '{"p_trickle":0}'
check "every job finishes once the upstream heals" wait_until 60 results_at_least default 4
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per id" 4 "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "all ok" 4 "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | wc -l)"
check "the attempts' error says why" grep -q "event=attempt_failed.*slow_response" "$T/w1.log"
no_lease() { lf status --json | jq -e '.leased == 0 and .in_flight == 0'; }
check "no lease left" wait_until 10 no_lease
finish
