# A dead letter too large to quote. Redis refuses arguments past
# proto-max-bulk-len (lowered here to its 1 MiB minimum): a 600 KB job of
# control bytes without max_tokens, quoted in its dead letter, grew 6x to 3.6 MB (\u0001) and the
# refused settle was resent on every reconnect, wedging the worker. Now a
# job over 64 KiB is not quoted: the letter has its size, head and a
# job_ref, and the raw bytes stay in Redis (copied from the claim); `dead
# requeue` restores them exactly. Good jobs around it finish. And a record
# Redis refuses whatever its size (a 1.2 MB answer, the limit 1 MiB): the
# failed call's records go alone, one that fails alone three times while
# Redis answers other calls is stored as an error `settle_refused`, with
# its cost; the worker is not wedged.
. "$(dirname "$0")/lib.sh"

start_redis
rcli CONFIG SET proto-max-bulk-len 1048576 >/dev/null
start_fakeapi
Q='llmfleet:{default}:jobs'
{ printf '{"id":"huge","request":{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"'
  head -c 600000 /dev/zero | tr '\0' '\001'
  printf '"}]}}'; } > "$T/huge.json"
rcli -x LPUSH "$Q" < "$T/huge.json" >/dev/null
gen_jobs 20 g | lf submit - 2>/dev/null
start_worker w1
check "21 results" wait_until 30 results_at_least default 21
lf results --out "$T/r.jsonl" 2>/dev/null
eq "the 20 good jobs ok" 20 "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | wc -l)"
eq "huge: an invalid_job error naming its id" "invalid_job" "$(jq -r 'select(.id == "huge") | .error_type' "$T/r.jsonl")"
eq "no reconnect storm (Redis never closed the connection)" 0 \
    "$(grep -c 'event=redis_disconnected' "$T/w1.log")"
letter=$(rcli LINDEX 'llmfleet:{default}:dead' 0)
eq "the letter names its size" "$(wc -c < "$T/huge.json")" "$(jq -r .job_bytes <<<"$letter")"
check "the letter is small (its head only)" test "${#letter}" -lt 70000
ref=$(jq -r .job_ref <<<"$letter")
check "the letter points at the kept job" test -n "$ref"
eq "the kept job is the raw bytes" "$(md5sum < "$T/huge.json")" \
    "$(rcli --raw HGET 'llmfleet:{default}:deadjob' "$ref" | head -c -1 | md5sum)"
kill -TERM "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null
lf dead requeue --id huge 2> "$T/rq.txt"
check "requeue --id huge says 1" grep -q 'requeued 1 job' "$T/rq.txt"
eq "the job is back in the queue, bytes unchanged" "$(md5sum < "$T/huge.json")" \
    "$(rcli --raw LINDEX "$Q" -1 | head -c -1 | md5sum)"
eq "its kept copy is gone" 0 "$(rcli HLEN 'llmfleet:{default}:deadjob')"

# Answers too large for Redis to take in one argument.
start_fakeapi --p-huge 1 --huge-bytes 1200000
F=huge
gen_jobs 3 h | lf submit - --fleet $F 2>/dev/null
start_worker w2 --fleet $F
w2=$WORKER_PID
check "huge answers: 3 results" wait_until 60 results_at_least $F 3
lf results --fleet $F --out "$T/h.jsonl" 2>/dev/null
eq "each an error settle_refused" 3 "$(jq -r 'select(.error_type == "settle_refused") | .id' "$T/h.jsonl" | sort -u | wc -l)"
check "the worker said so" grep -q "event=settle_refused" "$T/w2.log"
spent=$(lf status --fleet $F --json | jq '.spent_usd * 1000000 | round')
check "their cost is counted ($spent micro-USD)" test "$spent" -gt 0
no_lease() { lf status --fleet $F --json | jq -e '.leased == 0 and .in_flight == 0'; }
check "no lease left" wait_until 10 no_lease
disc=$(grep -c 'event=redis_disconnected' "$T/w2.log")
echo "# $disc disconnects for 3 refused records"
check "bounded disconnects ($disc <= 15)" test "$disc" -le 15

# A job over --max-job-bytes is never read by a worker: the claim keeps it
# in Redis and hands out a stand-in. 64 MiB of job, a 1 MiB limit: the
# worker's peak memory stays far below the job's size.
rcli CONFIG SET proto-max-bulk-len 536870912 >/dev/null
F=big
{ printf '{"id":"giant","request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"'
  head -c 67108864 /dev/zero | tr '\0' a
  printf '"}]}}'; } > "$T/giant.json"
rcli -x LPUSH "llmfleet:{$F}:jobs" < "$T/giant.json" >/dev/null
gen_jobs 5 s | lf submit - --fleet $F 2>/dev/null
start_worker w3 --fleet $F --max-job-bytes 1048576
w3=$WORKER_PID
check "giant: 6 results" wait_until 60 results_at_least $F 6
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$w3/status")
base=$(awk '/^VmHWM/ {print $2}' "/proc/$w2/status")     # same build, no giant
echo "# worker peak RSS ${hwm} KiB with a 65536 KiB job in its claim; another worker ${base} KiB"
check "giant: the worker never held the job (peak ${hwm} < ${base} + 32768 KiB)" \
    test "$hwm" -lt $((base + 32768))
lf results --fleet $F --out "$T/giant.jsonl" 2>/dev/null
eq "giant: an invalid_job error naming its id" "invalid_job" \
    "$(jq -r 'select(.id == "giant") | .error_type' "$T/giant.jsonl")"
check "giant: the error says it was kept unread" \
    sh -c "jq -r 'select(.id == \"giant\") | .error_message' '$T/giant.jsonl' | grep -q 'kept in Redis unread'"
eq "giant: the 5 others ok" 5 "$(jq -r 'select(.status == "ok") | .id' "$T/giant.jsonl" | wc -l)"
gref=$(rcli LINDEX "llmfleet:{$F}:dead" 0 | jq -r .job_ref)
eq "giant: kept in Redis, bytes unchanged" "$(md5sum < "$T/giant.json")" \
    "$(rcli --raw HGET "llmfleet:{$F}:deadjob" "$gref" | head -c -1 | md5sum)"
rm -f "$T/giant.json"
finish
