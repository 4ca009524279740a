# Crash points (test hooks, like a SIGKILL at that instant): a worker dies
# between response and settle, and while a retry is being scheduled. Its
# leases expire, another worker finishes the jobs: exactly one result per
# id, nothing lost, in flight and reservations back to zero. (Claim and
# lease are one step, claim.lua: there is no point between them.)
. "$(dirname "$0")/lib.sh"

start_redis
run_point() {
    local point=$1 fake_args=$2 n=60
    rcli FLUSHALL >/dev/null
    start_fakeapi $fake_args
    gen_jobs $n "$point" | lf submit - 2>/dev/null
    LLMFLEET_TEST_CRASH_AT=$point start_worker "crash-$point" --concurrency 16 --lease-ms 1000
    local victim=$WORKER_PID
    wait "$victim"; local rc=$?
    eq "$point: the worker died at the crash point" "86" "$rc"
    check "$point: it logged the crash" grep -q "event=test_crash point=$point" "$T/crash-$point.log"
    start_worker "heir-$point" --concurrency 16 --lease-ms 1000
    local heir=$WORKER_PID
    check "$point: the heir finishes every job" wait_until 30 results_at_least default $n
    lf results --out "$T/$point.jsonl" 2>/dev/null
    eq "$point: one result per id" "$n" "$(jq -r .id "$T/$point.jsonl" | sort -u | wc -l)"
    eq "$point: no second result" "$n" "$(wc -l < "$T/$point.jsonl")"
    zero() { lf status --json | jq -e '.in_flight == 0 and .leased == 0 and .reserved_usd == 0'; }
    check "$point: in flight, leases and reservations back to 0" wait_until 10 zero
    kill -TERM "$heir"; wait "$heir"
    kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
}
run_point after_response "--latency-ms 20"
run_point retry "--latency-ms 20 --p500 0.3 --seed 9"
finish
