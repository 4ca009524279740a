# A corpus of malformed jobs (more than 20 classes) pushed straight onto the
# queue between good jobs: each gets an error result naming the problem
# and a dead letter (with the raw bytes, base64 when not text); duplicate
# ids get one result; the good jobs all succeed; the worker stays up.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi
Q='llmfleet:{default}:jobs'
req='"request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"}]}'
nest=$(printf '%.0s[' $(seq 1 100))1$(printf '%.0s]' $(seq 1 100))
big=$(head -c 200000 /dev/zero | tr '\0' a)
longid=$(head -c 600 /dev/zero | tr '\0' i)
# class | expected error_message (extended regex) | job bytes (printf format)
corpus=(
  "not-json|not valid JSON|hello world"
  "truncated|not valid JSON: .*truncated|{\"id\":\"t1\",\"request\":{\"model\""
  "deep-nesting|nested deeper than 64|{\"id\":\"deep\",$req,\"meta\":$nest}"
  "huge-string|over the 100000 byte limit|{\"id\":\"huge\",$req,\"meta\":\"$big\"}"
  "nul-byte|not valid UTF-8 .byte 0x00|{\"id\":\"nul\\x00\",$req}"
  "invalid-utf8|not valid UTF-8 .byte 0xff|{\"id\":\"bad\\xff\",$req}"
  "id-number|\"id\" must be a string|{\"id\":17,$req}"
  "id-null|\"id\" must be a string|{\"id\":null,$req}"
  "id-empty|\"id\" must be a non-empty string|{\"id\":\"\",$req}"
  "id-object|\"id\" must be a string|{\"id\":{\"a\":1},$req}"
  "id-too-long|\"id\" must be a non-empty string of at most 512|{\"id\":\"$longid\",$req}"
  "no-id|job has no \"id\"|{$req}"
  "request-array|\"request\" must be an object|{\"id\":\"ra\",\"request\":[1]}"
  "request-null|\"request\" must be an object|{\"id\":\"rn\",\"request\":null}"
  "request-empty|request has no \"model\"|{\"id\":\"re\",\"request\":{}}"
  "model-number|request.model must be a non-empty string|{\"id\":\"mn\",\"request\":{\"model\":5,\"max_tokens\":5,\"messages\":[1]}}"
  "model-empty|request.model must be a non-empty string|{\"id\":\"me\",\"request\":{\"model\":\"\",\"max_tokens\":5,\"messages\":[1]}}"
  "max-tokens-string|max_tokens must be an integer >= 1|{\"id\":\"mts\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":\"5\",\"messages\":[1]}}"
  "max-tokens-float|max_tokens must be an integer >= 1|{\"id\":\"mtf\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1.5,\"messages\":[1]}}"
  "max-tokens-zero|max_tokens must be an integer >= 1|{\"id\":\"mt0\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":0,\"messages\":[1]}}"
  "max-tokens-negative|max_tokens must be an integer >= 1|{\"id\":\"mtn\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":-5,\"messages\":[1]}}"
  "messages-missing|messages must be a non-empty array|{\"id\":\"mm\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":5}}"
  "messages-empty|messages must be a non-empty array|{\"id\":\"mme\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":5,\"messages\":[]}}"
  "messages-string|messages must be a non-empty array|{\"id\":\"mms\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":5,\"messages\":\"hi\"}}"
  "top-array|not a JSON object|[1,2,3]"
  "top-string|not a JSON object|\"just a string\""
  "empty|not valid JSON|"
  "duplicate-max-tokens|request has the key \"max_tokens\" more than once|{\"id\":\"dmt\",\"request\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1,\"messages\":[1],\"max_tokens\":100000}}"
  "duplicate-id-key|job has the key \"id\" more than once|{\"id\":\"a\",\"id\":\"b\",$req}"
  "trailing-garbage|not valid JSON|{\"id\":\"tg\",$req} extra"
)
gen_jobs 10 good | while IFS= read -r l; do rcli LPUSH "$Q" "$l" >/dev/null; done
for c in "${corpus[@]}"; do
    job=${c#*|}; job=${job#*|}
    printf "$job" | rcli -x LPUSH "$Q" >/dev/null
done
# duplicates: the same id twice; an unknown model (the API's 404)
gen_jobs 1 dup | while IFS= read -r l; do rcli LPUSH "$Q" "$l" >/dev/null; rcli LPUSH "$Q" "$l" >/dev/null; done
gen_jobs 1 unknown gpt-4o | while IFS= read -r l; do rcli LPUSH "$Q" "$l" >/dev/null; done
gen_jobs 10 good2 | while IFS= read -r l; do rcli LPUSH "$Q" "$l" >/dev/null; done

nbad=${#corpus[@]}
total=$(( 20 + nbad + 1 + 1 ))
echo "# $nbad malformed classes + a duplicate id + an unknown model among 20 good jobs"
start_worker w --max-job-bytes 100000
check "every job ends ($total results)" wait_until 30 results_at_least default $total
lf results --out "$T/r.jsonl" 2>/dev/null
for c in "${corpus[@]}"; do
    name=${c%%|*}; rest=${c#*|}; want=${rest%%|*}
    got=$(jq -r --arg re "$want" 'select(.status == "error" and .error_type == "invalid_job" and (.error_message | test($re))) | .error_message' "$T/r.jsonl" | head -1)
    check "$name: error result \"$want\"" test -n "$got"
done
eq "20 good jobs ok" "20" "$(jq -r 'select(.status == "ok" and (.id | test("^good"))) | .id' "$T/r.jsonl" | sort -u | wc -l)"
eq "duplicate id: one result" "1" "$(jq -r 'select(.id == "dup-1") | .id' "$T/r.jsonl" | wc -l)"
eq "unknown model: the API's not_found_error" "error not_found_error 404" "$(jq -r 'select(.id == "unknown-1") | "\(.status) \(.error_type) \(.http_status)"' "$T/r.jsonl")"
eq "one dead letter per malformed job" "$nbad" "$(rcli LLEN 'llmfleet:{default}:dead')"
rcli LRANGE 'llmfleet:{default}:dead' 0 -1 > "$T/dead.txt"
eq "every dead letter is valid JSON with a reason" "$nbad" "$(jq -r '.reason' "$T/dead.txt" | wc -l)"
check "non-text jobs kept exactly as base64" test "$(jq -r 'select(.job_base64) | .job_base64' "$T/dead.txt" | head -1 | base64 -d | od -c | grep -c '377\|\\0')" -ge 1
check "the worker is still up" kill -0 "$WORKER_PID"
finish
