# `llmfleet submit`: validation with line numbers, nothing pushed from a bad
# file unless --skip-invalid, --wait's exit status.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi
Q='llmfleet:{default}:jobs'
{
    gen_jobs 3 a
    echo '{"id":"x","request":{"model":"claude-sonnet-4-5"}}'
    echo
    echo 'nope'
    gen_jobs 1 a
} > "$T/mixed.jsonl"
lf submit "$T/mixed.jsonl" 2>"$T/err.txt"; rc=$?
eq "bad file exits 1" "1" "$rc"
check "line 4 reported" grep -q 'mixed.jsonl:4: request has no "max_tokens"' "$T/err.txt"
check "line 6 reported" grep -q 'mixed.jsonl:6: job is not valid JSON' "$T/err.txt"
check "duplicate id reported (line 7)" grep -q 'mixed.jsonl:7: duplicate id' "$T/err.txt"
eq "nothing pushed" "0" "$(rcli LLEN "$Q")"
lf submit "$T/mixed.jsonl" --skip-invalid 2>/dev/null; rc=$?
eq "--skip-invalid exits 0" "0" "$rc"
eq "--skip-invalid pushes the 3 valid lines" "3" "$(rcli LLEN "$Q")"
rcli DEL "$Q" >/dev/null

start_worker w
gen_jobs 50 ok | lf submit - --wait > /dev/null 2>"$T/wait.txt"; rc=$?
eq "--wait exits 0 when all ok" "0" "$rc"
check "--wait reports the count" grep -q '50 results: 50 ok, 0 error' "$T/wait.txt"
{ gen_jobs 5 mix; gen_jobs 2 unknown claude-nonexistent-9; } | lf submit - --wait >/dev/null 2>"$T/wait2.txt"; rc=$?
eq "--wait exits 1 when a job failed" "1" "$rc"
check "--wait counts the failures" grep -q '7 results: 5 ok, 2 error' "$T/wait2.txt"
gen_jobs 5 mix | lf submit - 2>"$T/again.txt"
check "resubmitting done ids is refused" grep -q '5 jobs already have a result' "$T/again.txt"
eq "unknown model: error result with the API's type" "not_found_error 404" \
    "$(lf results 2>/dev/null | jq -r 'select(.id == "unknown-1") | "\(.error_type) \(.http_status)"')"

# No worker: --wait says why nothing comes, and --timeout gives up (exit 3).
kill -TERM "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null
gen_jobs 3 late | lf submit - --wait --timeout 12 >/dev/null 2>"$T/late.txt"; rc=$?
eq "--wait --timeout: exit 3" 3 "$rc"
check "--wait says no worker is alive" grep -q 'waiting: no worker is alive' "$T/late.txt"
check "--timeout says how far it got and how to follow on" grep -q '0 of 3 results.*results --from' "$T/late.txt"
finish
