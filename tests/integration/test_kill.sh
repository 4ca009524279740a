# A worker killed with SIGKILL mid-request: its leases expire, the reaper
# of another worker puts the jobs back, and they finish there. Still
# exactly one result per id.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 2000
n=40
start_worker victim --concurrency 64 --lease-ms 1500
victim=$WORKER_PID
warm_up
gen_jobs $n k > "$T/jobs.jsonl"
lf submit "$T/jobs.jsonl" 2>/dev/null
inflight() { [ "$(fake_stats | jq .concurrent)" -ge "$1" ]; }
check "victim has all $n requests in flight" wait_until 10 inflight $n
kill -9 "$victim"
eq "no result yet (but the warm-up)" "1" "$(results_count)"

start_worker heir --concurrency 64 --lease-ms 1500
check "heir finishes every job" wait_until 30 results_at_least default $((n + 1))
lf results 2>/dev/null | jq -c 'select(.id | test("^k-"))' > "$T/r.jsonl"
eq "one result per id" "$n" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "no second result" "$n" "$(wc -l < "$T/r.jsonl")"
eq "all done by the heir" "$n" "$(jq -r 'select(.worker == "heir" and .status == "ok") | .id' "$T/r.jsonl" | wc -l)"
check "heir logged the reaped leases" grep -q "event=reaped_expired_leases" "$T/heir.log"
eq "each body sent twice (victim + heir)" "$n" "$(fake_stats | jq .repeated_bodies)"
eq "leases and queue empty" "0 0" "$(rcli ZCARD 'llmfleet:{default}:leases') $(rcli LLEN 'llmfleet:{default}:jobs')"
finish
