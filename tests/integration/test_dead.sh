# `llmfleet dead requeue`: an operator sends dead letters back to the queue.
# The entry leaves the dead list, the exact job bytes go back (text and
# base64 entries alike), the id is forgotten, and the new run writes a new
# result after the dead letter's error result. Entries that are not
# llmfleet dead letters are left alone.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi
Q='llmfleet:{default}:jobs'
D='llmfleet:{default}:dead'
big=$(head -c 3000 /dev/zero | tr '\0' a)
rcli LPUSH "$Q" '{"id":"big","request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"'"$big"'"}]}}' >/dev/null
printf '{"id":"bin","request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"\377x"}]}}' |
    rcli -x LPUSH "$Q" >/dev/null
rcli LPUSH "$Q" '{"id":"mt0","request":{"model":"claude-sonnet-4-5","max_tokens":0,"messages":[{"role":"user","content":"x"}]}}' >/dev/null
gen_jobs 5 good | while IFS= read -r l; do rcli LPUSH "$Q" "$l" >/dev/null; done

start_worker w1 --max-job-bytes 2048
check "8 results" wait_until 20 results_at_least default 8
eq "3 dead letters" "3" "$(rcli LLEN "$D")"
bin_b64=$(rcli LRANGE "$D" 0 -1 | jq -r 'select(.job_base64) | .job_base64')
check "the non-text job is kept as base64" test -n "$bin_b64"
rcli LPUSH "$D" 'not a dead letter' >/dev/null
kill -TERM "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null

# Requeue one id: the oversized job (refused unparsed, its id read from its
# head) now fits the default size limit.
lf dead requeue --id big 2> "$T/rq1.txt"
check "requeue --id says 1" grep -q 'requeued 1 job' "$T/rq1.txt"
eq "its dead letter is gone, the others stay" "3" "$(rcli LLEN "$D")"
eq "its job is back in the queue, bytes unchanged" "$(printf '%s' '{"id":"big","request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"'"$big"'"}]}}' | md5sum)" \
    "$(rcli --raw LINDEX "$Q" -1 | head -c -1 | md5sum)"
start_worker w2
check "the requeued job runs" wait_until 20 results_at_least default 9
lf results --out "$T/r.jsonl" 2>/dev/null
eq "big: its error result named it (id read from the job's head), then ok" "error ok" \
    "$(jq -r 'select(.id == "big") | .status' "$T/r.jsonl" | tr '\n' ' ' | sed 's/ $//')"

# An id with a result is forgotten: its new run writes a second result
# (still invalid: an error and a dead letter again); without the requeue
# the id would be done and the rerun refused.
lf dead requeue --id mt0 2>/dev/null
check "mt0 ends again" wait_until 20 results_at_least default 10
lf results --out "$T/r.jsonl" 2>/dev/null
eq "mt0: two error results" "error error" "$(jq -r 'select(.id == "mt0") | .status' "$T/r.jsonl" | tr '\n' ' ' | sed 's/ $//')"
eq "results --id finds an id's results" 2 "$(lf results --id mt0 2>/dev/null | wc -l)"
eq "results --status error: the error results" "$(jq -r 'select(.status == "error") | .id' "$T/r.jsonl" | wc -l)" \
    "$(lf results --status error 2>/dev/null | jq -r .id | wc -l)"
eq "results --id --status combine" 0 "$(lf results --id mt0 --status ok 2>/dev/null | wc -l)"
mt0_again() { rcli LRANGE "$D" 0 -1 | grep -v '^not a dead letter$' | jq -e -s 'map(select(.id == "mt0")) | length == 1' >/dev/null; }
check "mt0 is dead-lettered again" wait_until 10 mt0_again

# Requeue the rest: the binary job comes back byte for byte (and is
# dead-lettered again, being still invalid), so does mt0; the foreign entry
# stays.
lf dead requeue 2> "$T/rq2.txt"
check "requeue names the foreign entry" grep -q '(1 entries are not' "$T/rq2.txt"
check "requeue says 2 (mt0, bin)" grep -q 'requeued 2 jobs' "$T/rq2.txt"
check "the binary job and mt0 end again" wait_until 20 results_at_least default 12
again() { [ "$(rcli LLEN "$D")" = 3 ]; }
check "dead-lettered again" wait_until 10 again
eq "same bytes as before" "$bin_b64" "$(rcli LRANGE "$D" 0 -1 | grep -v '^not a dead letter$' | jq -r 'select(.job_base64) | .job_base64')"
eq "the foreign entry is left alone" "1" "$(rcli LRANGE "$D" 0 -1 | grep -c '^not a dead letter$')"
lf dead requeue --id nothing-like-this 2> "$T/rq3.txt"
check "an unknown id requeues nothing" grep -q 'requeued 0 jobs' "$T/rq3.txt"
finish
