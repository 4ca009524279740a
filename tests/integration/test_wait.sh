# `llmfleet wait FILE` and `submit --wait` over ids that already have a
# result: a submitted file followed again from another terminal; an error
# among the old results fails the wait (exit 1), an operator's retry that
# ends ok fixes it (exit 0); --timeout exits 3; ids whose results left the
# stream are said and not waited for.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 5 --p500 0.25 --seed 9
lf limits set max_attempts=1 >/dev/null
gen_jobs 60 w > "$T/a.jsonl"
lf submit "$T/a.jsonl" 2>/dev/null

lf wait "$T/a.jsonl" --timeout 2 2> "$T/to.err"
eq "wait with no worker and --timeout 2 exits 3" 3 $?
check "and says how far it got" grep -q "timeout 2 s: 0 of 60 results" "$T/to.err"
lf wait 2>/dev/null; eq "wait without a file exits 2" 2 $?
lf wait "$T/none.jsonl" 2>/dev/null; eq "wait on a missing file exits 2" 2 $?

start_worker w1 --concurrency 16
lf wait "$T/a.jsonl" 2> "$T/w1.err"
eq "wait exits 1: some jobs failed" 1 $?
errs=$(lf results --status error 2>/dev/null | wc -l)
check "it counts every result ($((60 - errs)) ok, $errs error)" grep -q "60 results: $((60 - errs)) ok, $errs error" "$T/w1.err"
check "some failed (the case is exercised)" test "$errs" -gt 0

lf submit "$T/a.jsonl" --wait 2> "$T/again.err"
eq "submit --wait of the same file, all done already, exits 1 too" 1 $?
check "it pushed nothing and said why" grep -q "60 jobs already have a result; not pushed again (their results count for --wait)" "$T/again.err"

kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
start_fakeapi --latency-ms 5
start_worker w2 --concurrency 16
lf retry --failed 2> "$T/retry.err"; sed "s/^/# /" "$T/retry.err"
lf wait "$T/a.jsonl" 2> "$T/w2.err"
eq "after the retries end ok, wait exits 0" 0 $?
check "the later ok result decides" grep -q "60 results: 60 ok, 0 error" "$T/w2.err"

rcli XTRIM 'llmfleet:{default}:results' MAXLEN 0 >/dev/null
lf wait "$T/a.jsonl" --timeout 20 2> "$T/gone.err"
eq "wait over results gone from the stream exits 0" 0 $?
check "and says they are no longer there" grep -q "60 ids are done, but their result is no longer in the stream" "$T/gone.err"
finish
