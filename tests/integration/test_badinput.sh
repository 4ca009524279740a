# Bad input pushed straight onto the queue (not through `submit`): each
# class gets an `error` result (with the id when one can be read) and a
# dead letter naming the reason; the good jobs around them succeed; the
# worker stays up.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi
Q='llmfleet:{default}:jobs'
push() { rcli LPUSH "$Q" "$1" >/dev/null; }

gen_jobs 20 good | while IFS= read -r l; do push "$l"; done
push 'this is not json'
push '[1,2,3]'
push '{"request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"}]}}'
push '{"id":17,"request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"}]}}'
push '{"id":"no-request"}'
push '{"id":"request-string","request":"hello"}'
push '{"id":"no-model","request":{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}}'
push '{"id":"no-max-tokens","request":{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}}'
push '{"id":"zero-max-tokens","request":{"model":"claude-sonnet-4-5","max_tokens":0,"messages":[{"role":"user","content":"x"}]}}'
push '{"id":"truncated","request":{"model":"claude-sonnet-4-5","max_tok'
big=$(head -c 3000 /dev/zero | tr '\0' a)
push '{"id":"oversized","request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"'"$big"'"}]}}'
gen_jobs 20 good2 | while IFS= read -r l; do push "$l"; done

start_worker w --max-job-bytes 2048
check "all 51 jobs end" wait_until 20 results_at_least default 51
lf results --out "$T/r.jsonl" 2>/dev/null

reason() { jq -r --arg id "$1" 'select(.id == $id) | .error_message' "$T/r.jsonl"; }
errtype() { jq -r --arg id "$1" 'select(.id == $id) | "\(.status) \(.error_type)"' "$T/r.jsonl"; }
eq "good jobs all ok" "40" "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | wc -l)"
eq "bad jobs all error" "11" "$(jq -r 'select(.status == "error" and .error_type == "invalid_job") | .error_message' "$T/r.jsonl" | wc -l)"
eq "not JSON" "1" "$(jq -r 'select(.error_message // "" | test("not valid JSON: .*invalid character")) | .status' "$T/r.jsonl" | grep -c error)"
eq "not an object" "1" "$(jq -r 'select(.error_message == "job is not a JSON object") | .status' "$T/r.jsonl" | wc -l)"
eq "no id" "1" "$(jq -r 'select(.error_message == "job has no \"id\"") | .status' "$T/r.jsonl" | wc -l)"
eq "id not a string" "1" "$(jq -r 'select(.error_message == "job \"id\" must be a string") | .status' "$T/r.jsonl" | wc -l)"
eq "no request" "job has no \"request\"" "$(reason no-request)"
eq "request not an object" "job \"request\" must be an object" "$(reason request-string)"
eq "no model" "request has no \"model\"" "$(reason no-model)"
eq "no max_tokens" "request has no \"max_tokens\"" "$(reason no-max-tokens)"
eq "max_tokens 0" "request.max_tokens must be an integer >= 1" "$(reason zero-max-tokens)"
eq "truncated" "1" "$(jq -r 'select(.error_message // "" | test("not valid JSON: .*truncated")) | .status' "$T/r.jsonl" | wc -l)"
eq "oversized names its size and the limit" "1" "$(jq -r 'select(.error_message // "" | startswith("job is 3115 bytes, over the 2048 byte limit")) | .status' "$T/r.jsonl" | wc -l)"
eq "error type on a readable id" "error invalid_job" "$(errtype no-model)"
eq "11 dead letters" "11" "$(rcli LLEN 'llmfleet:{default}:dead')"
rcli LRANGE 'llmfleet:{default}:dead' 0 -1 > "$T/dead.txt"
eq "dead letters are JSON with reason and the raw job (quoted, or kept: job_ref)" "11" \
    "$(jq -r 'select(.reason != null and ((.job | type == "string") or (.job_ref | type == "string"))) | .reason' "$T/dead.txt" | wc -l)"
eq "the oversized one kept in Redis, unread by the worker" "3115" \
    "$(rcli --raw HGET 'llmfleet:{default}:deadjob' "$(jq -r 'select(.job_ref) | .job_ref' "$T/dead.txt")" | head -c -1 | wc -c)"
check "dead letter keeps the raw bytes" grep -q 'this is not json' "$T/dead.txt"
check "worker still alive" kill -0 "$WORKER_PID"
eq "nothing left leased or queued" "0 0" "$(rcli ZCARD 'llmfleet:{default}:leases') $(rcli LLEN "$Q")"
finish
