# Redis faults mid-run: FUNCTION FLUSH, a restart (AOF, appendfsync always),
# Redis down for 10 s while requests are at the API, and memory full
# (maxmemory, noeviction). Workers reconnect with backoff, redo AUTH (as
# the ACL user) and SELECT, reload their function library, keep their
# in-flight requests and settle them once Redis is back. Nothing is lost,
# nothing doubled.
. "$(dirname "$0")/lib.sh"

start_redis --appendonly yes --appendfsync always
start_fakeapi --latency-ms 500
REDIS_URL="${REDIS_URL%/0}/3"          # a non-zero db: SELECT must be redone
rcli() { redis-cli -p "$REDIS_PORT" -n 3 "$@"; }
export REDIS_URL
n=1500
gen_jobs $n r | lf submit - 2>/dev/null
ws=""
for i in 1 2; do start_worker w$i --concurrency 16; ws="$ws $WORKER_PID"; done
alive() { for p in $ws; do kill -0 "$p" || return 1; done; }

# A follower and a watcher outlive the Redis restarts below.
"$BIN/llmfleet" results --redis-url "$REDIS_URL" --follow > "$T/follow.jsonl" 2> "$T/follow.err" &   # not lf: $! must be llmfleet itself
follower=$!
"$BIN/llmfleet" status --redis-url "$REDIS_URL" --watch --interval 1 > "$T/watch.txt" 2> "$T/watch.err" &
watcher=$!
PIDS+=("$follower" "$watcher")
check "200 results" wait_until 30 results_at_least default 200
rcli FUNCTION FLUSH >/dev/null
rcli SCRIPT FLUSH >/dev/null
check "500 results after FUNCTION FLUSH and SCRIPT FLUSH" wait_until 30 results_at_least default 500
check "workers loaded their function library again" \
    grep -q "event=script_reload .*reason=function_missing" "$T/w1.log" "$T/w2.log"
check "... and went on as functions (no fall back to EVALSHA)" \
    sh -c "! grep -q event=redis_functions_unavailable '$T/w1.log' '$T/w2.log'"

stop_redis
start_redis_again
check "800 results after a restart" wait_until 60 results_at_least default 800

inflight() { [ "$(fake_stats | jq .concurrent)" -ge 10 ]; }
# Requests of 8 s for the outage, at least 10 of them sent after the change
# (the 500 ms ones in flight before it are gone by the time SHUTDOWN ends
# on a loaded machine: the Valkey leg of a CI run saw none left twice).
fake_config '{"latency_ms":8000}'
sent0=$(fake_stats | jq .requests_total)
slow_sent() { [ $(( $(fake_stats | jq .requests_total) - sent0 )) -ge 10 ]; }
wait_until 10 slow_sent
ts=$(now_ms)
stop_redis
t0=$(now_ms)
echo "# SHUTDOWN took $((t0 - ts)) ms"
check "requests still at the API while Redis is down" inflight
fake_config '{"latency_ms":500}'
down_10s() { [ $(( $(now_ms) - t0 )) -ge 10000 ]; }
wait_until 15 down_10s
start_redis_again
check "every job done after 10 s without Redis" wait_until 90 results_at_least default $n
for f in "$T"/w1.log "$T"/w2.log; do
    check "$(basename "$f"): reconnected" grep -q "event=redis_connected" "$f"
done
check "workers kept settles pending and sent them later (no lost lease)" \
    sh -c "! grep -q 'event=lease_lost_at_settle' '$T/w1.log' '$T/w2.log'"
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per id" "$n" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "no second result" "$n" "$(wc -l < "$T/r.jsonl")"
eq "all ok" "$n" "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | wc -l)"
followed() { [ "$(jq -r .id "$T/follow.jsonl" 2>/dev/null | sort -u | wc -l)" -ge "$n" ]; }
check "results --follow reconnected and followed every result" wait_until 20 followed
check "... and said it lost Redis" grep -q "lost Redis" "$T/follow.err"
eq "... each result once" "$(jq -r .id "$T/follow.jsonl" | sort -u | wc -l)" "$(wc -l < "$T/follow.jsonl")"
watched_after() { [ "$(grep -c '^fleet default' "$T/watch.txt")" -gt "$1" ]; }
w0=$(grep -c '^fleet default' "$T/watch.txt")
check "status --watch is still refreshing after the restarts" wait_until 10 watched_after "$w0"
check "... and said it lost Redis" grep -q "lost Redis" "$T/watch.err"
kill "$follower" "$watcher" 2>/dev/null

# Memory full: submit reports it; workers lose and corrupt nothing.
used=$(rcli INFO memory | awk -F: '/^used_memory:/ {print $2+0}')
rcli CONFIG SET maxmemory-policy noeviction >/dev/null
rcli CONFIG SET maxmemory $((used + 300000)) >/dev/null
gen_jobs 3000 big | lf submit - > /dev/null 2>"$T/oom.txt"; rc=$?
check "submit fails when Redis is out of memory (exit $rc)" test "$rc" -ne 0
check "and says so" grep -q "OOM" "$T/oom.txt"
pushed=$(sed -n 's/.*pushed \([0-9]*\) job.*/\1/p' "$T/oom.txt")
echo "# submit pushed $pushed jobs before Redis ran out of memory"
check "submit says how many it pushed" test -n "$pushed"
check "the workers keep running while Redis refuses writes" alive
# Full to the brim: every script's first write is refused. Redis refuses
# only a script's first write, never a later one, so such a call wrote
# nothing: the worker says so (redis_oom), it is no script error.
rcli CONFIG SET maxmemory 1 >/dev/null
oomed() { grep -q 'event=redis_oom' "$T"/w1.log "$T"/w2.log; }
check "a script refused for memory is logged as redis_oom" wait_until 20 oomed
check "... and the workers keep running" alive
rcli CONFIG SET maxmemory 0 >/dev/null
total=$((n + pushed))
check "after memory is freed every pushed job completes" wait_until 60 results_at_least default $total
lf results --out "$T/r2.jsonl" 2>/dev/null
eq "one result per id" "$total" "$(jq -r .id "$T/r2.jsonl" | sort -u | wc -l)"
eq "leases and in flight back to 0" "0 0" "$(lf status --json | jq -r '"\(.leased) \(.in_flight)"')"
finish
