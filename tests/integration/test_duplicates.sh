# Duplicate ids. A producer's retry re-pushes 100 jobs while the first
# copies are at the API, and reuses 5 of the ids for other jobs: no id is
# sent twice (the same bytes are dropped at admission, the first copy has
# the job), the 5 others get a dead letter `duplicate_id` (no second
# result), every id has exactly one result.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 3000
for i in 1 2; do start_worker w$i --concurrency 128; done
warm_up
base=$(fake_stats | jq .requests_total)
gen_jobs 100 p > "$T/jobs.jsonl"
lf submit "$T/jobs.jsonl" 2>/dev/null
inflight() { [ "$(fake_stats | jq .concurrent)" -ge "$1" ]; }
check "the first copies are at the API" wait_until 10 inflight 100
# The producer's retry (any language: plain LPUSH, here the redis-cli
# example producer), and 5 ids reused: all in one pipe, within the first
# copies' 3 s at the API (205 redis-cli runs one by one took longer on a
# loaded CI machine: the first copies were done, and a reused id whose job
# is done is dropped, not dead-lettered). As rcli's user: the fleet's ACL
# user lacks ECHO, which --pipe sends last (it then waits out 30 s).
{ head -n 5 "$T/jobs.jsonl" | sed 's/say something/say something else/'
  cat "$T/jobs.jsonl"; } |
    LLMFLEET_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 bash "$FLEET_LIB_DIR/examples/redis-cli/push.sh" 2>/dev/null
check "the second copies were pushed while the first are at the API" inflight 100
check "every id has its result" wait_until 30 results_at_least default 101
drained() { [ "$(queued_count)" = 0 ] && lf status --json | jq -e '.in_flight == 0 and .leased == 0'; }
check "queue drained, nothing in flight" wait_until 20 drained
eq "each id sent once: 100 requests for 205 pushes" 100 "$(( $(fake_stats | jq .requests_total) - base ))"
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per id" 100 "$(jq -r 'select(.id | startswith("p-")) | .id' "$T/r.jsonl" | sort | uniq | wc -l)"
eq "no second result" 100 "$(jq -r 'select(.id | startswith("p-")) | .id' "$T/r.jsonl" | wc -l)"
lf dead list > "$T/dead.txt" 2>/dev/null
rcli LRANGE 'llmfleet:{default}:dead' 0 -1 > "$T/dead.raw"
eq "5 dead letters duplicate_id" 5 "$(jq -r 'select(.reason | startswith("duplicate_id")) | .id' "$T/dead.raw" | sort -u | wc -l)"
check "each quotes the other job (its bytes)" sh -c "[ \$(jq -r .job '$T/dead.raw' | grep -c 'say something else') -eq 5 ]"
check "the workers said so" grep -q "event=duplicate_id" "$T/w1.log" "$T/w2.log"
finish
