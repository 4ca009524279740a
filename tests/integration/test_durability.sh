# Durability: a Redis without the append-only file is flagged by every
# worker at connect; when Redis comes back with older data (here: crashed,
# restarted from a snapshot taken earlier), the workers see the fleet's
# write counter go back, pause the fleet with that reason, and wait for the
# operator's `llmfleet resume` (the pause lands though the workers'
# connections drop for 2 s as Redis comes back); then every job gets its
# result.
. "$(dirname "$0")/lib.sh"

start_redis --appendonly no --save ''
start_fakeapi --latency-ms 100
n=600
gen_jobs $n d | lf submit - 2>/dev/null
for i in 1 2; do start_worker w$i --concurrency 8 --lease-ms 1500; done
check "a worker warns that persistence is off" \
    wait_until 10 grep -q "event=redis_persistence_weak" "$T/w1.log"
check "100 results" wait_until 60 results_at_least default 100
rcli SAVE >/dev/null                        # the snapshot Redis will come back from
saved=$(results_count)
check "then 150 more" wait_until 60 results_at_least default $((saved + 150))
kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null
start_redis_again
# A Redis coming back is often reconfigured meanwhile (ACL users set
# again close their clients): its clients are dropped for 2 s, so the
# pause call that follows the rewind's discovery may be lost with its
# connection; it must land all the same.
for _ in $(seq 1 20); do rcli CLIENT KILL USER llmfleet >/dev/null 2>&1; sleep 0.1; done
back=$(results_count)
echo "# snapshot at $saved results; Redis came back with $back"
check "Redis came back rewound" test "$back" -lt $((saved + 150))
paused() { lf status --json | jq -e '.paused == 1 and (.pause_reason | test("lost acknowledged writes"))'; }
check "the fleet pauses, saying Redis lost acknowledged writes" wait_until 20 paused
check "the workers logged the rewind" grep -q "event=redis_rewind" "$T/w1.log" "$T/w2.log"
r0=$(results_count)
t0=$(now_ms)
wait_until 10 sh -c "[ \$(( \$(date +%s%N) / 1000000 - $t0 )) -ge 2000 ]"
in_flight_zero() { [ "$(lf status --json | jq .in_flight)" = 0 ]; }
check "nothing is sent while paused" wait_until 10 in_flight_zero
lf resume 2>/dev/null
check "after resume every job has a result" wait_until 90 results_at_least default $n
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per id" $n "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
echo "# paused at $r0 results; $(wc -l < "$T/r.jsonl") in the stream at the end"
check "no second pause after the resume" sh -c "[ \$(grep -c 'event=redis_rewind' '$T/w1.log') -le 1 ]"
finish
