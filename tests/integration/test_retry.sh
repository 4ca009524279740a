# `llmfleet retry`: a job whose result was an error is kept (its exact
# bytes, in Redis) and runs again on request, by id or all of them (of an
# error_type); the new result follows the error in the stream; nothing is
# requeued twice, a dead letter is not touched, bad usage exits 2.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 10 --p500 0.3 --seed 11
lf limits set max_attempts=1 >/dev/null
n=100
gen_jobs $n r > "$T/jobs.jsonl"
lf submit "$T/jobs.jsonl" 2>/dev/null
start_worker w1 --concurrency 16
check "every job has its result" wait_until 60 results_at_least default $n
errs=$(lf results --status error 2>/dev/null | wc -l)
echo "# $errs of $n ended in an error (500 with max_attempts=1)"
check "some jobs ended in an error" test "$errs" -gt 1
logged() { [ "$(grep -c 'event=job_error' "$T/w1.log")" -eq "$errs" ]; }
check "each error result is logged once, at info (event=job_error)" wait_until 5 logged
eq "status counts them as kept" "$errs" "$(lf status --json | jq .failed_kept)"
check "status says how to retry them" sh -c "'$BIN/llmfleet' status --redis-url '$REDIS_URL' | grep -q '$errs failed kept (llmfleet retry --failed)'"

# Bad usage.
lf retry 2>/dev/null; eq "retry without --id or --failed exits 2" 2 $?
lf retry --id x --failed 2>/dev/null; eq "both exits 2" 2 $?
lf retry --id x --error-type api_error 2>/dev/null; eq "--error-type without --failed exits 2" 2 $?
lf retry --id r-nope 2> "$T/nope.err"; eq "an id with no kept job exits 1" 1 $?
check "and says why" grep -q "no failed job kept for id" "$T/nope.err"
ok_id=$(lf results --status ok 2>/dev/null | jq -r .id | head -1)
lf retry --id "$ok_id" 2>/dev/null; eq "an ok id is not retried" 1 $?

# The API is healthy again: retry one by id, then the rest by type.
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
start_fakeapi --latency-ms 10
start_worker w2 --concurrency 16
first=$(lf results --status error 2>/dev/null | jq -r .id | head -1)
lf retry --id "$first" 2> "$T/one.err"
eq "retry --id requeues it" 0 $?
check "and says so" grep -q "requeued 1 job$" "$T/one.err"
one_ok() { lf results --id "$first" 2>/dev/null | jq -e 'select(.status == "ok")' >/dev/null; }
check "its new result is ok" wait_until 30 one_ok
eq "its error result stays first, the ok after it" "error ok" \
    "$(lf results --id "$first" 2>/dev/null | jq -r .status | tr '\n' ' ' | sed 's/ $//')"
lf retry --id "$first" 2>/dev/null; eq "a second retry of it finds nothing" 1 $?
lf retry --failed --error-type no_such_type 2> "$T/type.err"
check "another error_type requeues nothing" grep -q "requeued 0 jobs ($((errs - 1)) kept jobs left" "$T/type.err"
etype=$(lf results --status error 2>/dev/null | jq -r .error_type | sort -u | head -1)
lf retry --failed --error-type "$etype" 2> "$T/all.err"
check "retry --failed --error-type $etype requeues the rest" grep -q "requeued $((errs - 1)) jobs" "$T/all.err"
all_ok() { [ "$(lf results --status ok 2>/dev/null | jq -r .id | sort -u | wc -l)" -eq $n ]; }
check "every id now has an ok result" wait_until 60 all_ok
eq "the stream: one result per run ($n + $errs)" $((n + errs)) "$(results_count default)"
eq "nothing kept any more" 0 "$(lf status --json | jq .failed_kept)"
eq "the healthy API saw each retried job once" "$errs" "$(fake_stats | jq .requests_total)"
# Exact bytes: the meta of a retried job came back whole.
eq "a retried job's meta is intact" '{"n":' "$(lf results --id "$first" 2>/dev/null | jq -c .meta | tail -1 | cut -c1-5)"
lf retry --failed 2> "$T/none.err"
check "with nothing kept, retry --failed says 0" grep -q "requeued 0 jobs" "$T/none.err"
finish
