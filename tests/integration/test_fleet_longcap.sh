# Guarantee 3, long caps: an org cap (429 with a retry-after far past
# max_pause) pauses the fleet with the reason shown by `status`; while it
# lasts the fleet sends at most one probe per probe interval; once the cap
# lifts, every job completes. Then a spend-limit 429 (no retry-after). Then
# an hour's cap lifted after seconds (an admin raised it): the retries the
# cap pushed out for the hour run as soon as the probe gets through.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 100 --org-cap-tokens 15000 --org-cap-seconds 20
lf limits set max_pause=5s probe_interval=2s max_attempts=10 >/dev/null
n=500
gen_jobs $n o | lf submit - 2>/dev/null
ws=()
for i in 1 2 3; do start_worker w$i --concurrency 32; ws+=("$WORKER_PID"); done

long_paused() { lf status --json | jq -e '.paused == 1 and .pause_kind == "long"'; }
check "the fleet pauses (long) after the cap's first 429" wait_until 30 long_paused
lf status > "$T/status.txt"
check "status shows the pause and why" grep -q "PAUSED *rate limit: the API asked to wait" "$T/status.txt"
# Let the requests that were in flight at the first 429 come back.
in_flight_zero() { [ "$(lf status --json | jq .in_flight)" -le 1 ]; }
wait_until 10 in_flight_zero
a=$(fake_stats | jq .requests_total)
t0=$(now_ms)
check "still paused 8 s later" wait_until 15 sh -c "[ \$(( \$(date +%s%N) / 1000000 - $t0 )) -ge 8000 ]"
b=$(fake_stats | jq .requests_total)
secs=$(( ($(now_ms) - t0) / 1000 ))
max=$(( secs / 2 + 1 ))
echo "# during the pause: $((b - a)) requests in ${secs} s (probe interval 2 s)"
check "at most one probe per interval ($((b - a)) <= $max)" test $((b - a)) -le $max
check "every job completes after the cap lifts" wait_until 90 results_at_least default $n
lf results --out "$T/r.jsonl" 2>/dev/null
eq "all ok" "$n" "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)"
eq "pause cleared" "0" "$(lf status --json | jq .paused)"

# Spend-limit 429: no retry-after; long pause with the reason, probes.
kill -TERM "${ws[@]}"; wait "${ws[@]}" 2>/dev/null
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 50 --spend-limit-after 30
for i in 1 2; do start_worker s$i --concurrency 16; done
gen_jobs 200 sp | lf submit - 2>/dev/null
spend_paused() { lf status --json | jq -e '.paused == 1 and (.pause_reason | test("spend limit"))'; }
check "a spend-limit 429 pauses the fleet with its reason" wait_until 30 spend_paused
wait_until 10 in_flight_zero
a=$(fake_stats | jq .requests_total)
t0=$(now_ms)
wait_until 15 sh -c "[ \$(( \$(date +%s%N) / 1000000 - $t0 )) -ge 6000 ]"
b=$(fake_stats | jq .requests_total)
check "spend-limit pause: at most one probe per interval ($((b - a)) in 6 s)" test $((b - a)) -le 4
check "jobs stay queued (or parked), none lost" test "$(( $(queued_count) + $(rcli ZCARD 'llmfleet:{default}:leases') + $(results_count) ))" -ge $((n + 200))

# An hour's cap that lifts early.
start_fakeapi --latency-ms 50 --org-cap-tokens 1500 --org-cap-seconds 3600
F=early
lf limits set --fleet $F max_pause=5s probe_interval=1s max_attempts=10 >/dev/null
gen_jobs 100 e | lf submit - --fleet $F 2>/dev/null
for i in 1 2; do start_worker e$i --fleet $F --concurrency 16; done
early_paused() { lf status --fleet $F --json | jq -e '.paused == 1 and .pause_kind == "long"'; }
check "early: the hour's cap pauses the fleet" wait_until 30 early_paused
delayed=$(rcli ZCARD "llmfleet:{$F}:delayed")
echo "# $delayed retries pushed out by the cap"
check "early: some jobs met the cap (retries delayed)" test "$delayed" -gt 0
fake_config '{"org_cap_tokens":0}'
t0=$(now_ms)
check "early: every job completes within 10 s of the lift" wait_until 10 results_at_least $F 100
echo "# all 100 done $(( $(now_ms) - t0 )) ms after the lift (the cap said 3600 s)"
lf results --fleet $F --out "$T/e.jsonl" 2>/dev/null
eq "early: all ok, one result per id" 100 "$(jq -r 'select(.status == "ok") | .id' "$T/e.jsonl" | sort -u | wc -l)"
eq "early: no retry left delayed" 0 "$(rcli ZCARD "llmfleet:{$F}:delayed")"
finish
