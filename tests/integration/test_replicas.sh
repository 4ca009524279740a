# --wait-replicas N: what a failover must not lose waits for N replicas. A
# master and a replica (real redis-server processes on loopback); the
# replica is frozen (SIGSTOP) mid-run. A worker without the option goes on
# writing what only the master holds; one with --wait-replicas 1 sends no
# new request and frees no settled slot until the replica has caught up,
# then finishes: every id one result, no request twice.
. "$(dirname "$0")/lib.sh"

start_redis
R=$("$BIN/freeport")
mkdir -p "$T/replica"
redis-server --port "$R" --bind 127.0.0.1 --dir "$T/replica" --save '' --appendonly no \
    --logfile "$T/replica/redis.log" --replicaof 127.0.0.1 "$REDIS_PORT" &
RPID=$!
PIDS+=("$RPID")
linked() { redis-cli -p "$R" INFO replication | grep -q 'master_link_status:up'; }
check "the replica follows the master" wait_until 20 linked
start_fakeapi --latency-ms 100
requests() { fake_stats | jq .requests_total; }

# Without the option: the frozen replica changes nothing.
kill -STOP "$RPID"
gen_jobs 40 plain | lf submit - 2>/dev/null
start_worker w0 --concurrency 8
check "without --wait-replicas the fleet runs on with the replica frozen" \
    wait_until 30 results_at_least default 40
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
kill -CONT "$RPID"
check "the replica catches up" wait_until 20 sh -c "[ \$(redis-cli -p $R XLEN 'llmfleet:{default}:results') -ge 40 ]"

# With it.
gen_jobs 300 safe | lf submit - 2>/dev/null
start_worker w1 --concurrency 8 --wait-replicas 1 --wait-replicas-ms 200 --lease-ms 6000
W1=$WORKER_PID
check "with --wait-replicas 1 the fleet runs while the replica keeps up" \
    wait_until 30 results_at_least default 100
kill -STOP "$RPID"
# What was admitted before the freeze may still go out; then nothing new.
settled() { a=$(requests); sleep 0.5; [ "$a" = "$(requests)" ]; }
check "the replica frozen: the requests stop" wait_until 10 settled
before=$(requests)
res_before=$(results_count default)
check "... and the worker says why" wait_until 10 grep -q 'event=replicas_behind acked=0 want=1' "$T/w1.log"
sleep 2     # the frozen period itself: nothing may happen in it
eq "two seconds later the API has seen no new request" "$before" "$(requests)"
check "... and at most the requests admitted before the freeze settled ($res_before results, $(( $(results_count default) - res_before )) more)" \
    test $(( $(results_count default) - res_before )) -le 8
kill -CONT "$RPID"
check "the replica back: every job done" wait_until 60 results_at_least default 340
eq "every id one result" 340 "$(lf results 2>/dev/null | jq -r .id | sort -u | wc -l)"
eq "no request twice" 340 "$(requests)"
eq "no lease reported lost (a settled slot waiting for the replica is not renewed)" 0 "$(grep -c 'event=lease_lost' "$T/w1.log")"
eq "the replica holds every result" 340 "$(redis-cli -p "$R" XLEN 'llmfleet:{default}:results')"

# The worker's link cut while its admissions wait for the replica: those
# gos never went out, and whether Redis kept them is unknown. They go back
# to the queue unsent, their reservations given back at no cost (left to
# expire, the reaper would count each as spent and a lost delivery).
kill -STOP "$RPID"
before=$(requests)
gen_jobs 8 cut | lf submit - 2>/dev/null
admitted() { [ "$(lf status --json | jq .in_flight)" = 8 ]; }
check "the replica frozen, 8 new jobs admitted" wait_until 10 admitted
eq "... none of them sent" "$before" "$(requests)"
redis-cli -p "$REDIS_PORT" CLIENT KILL TYPE normal SKIPME yes >/dev/null
reconnected() { grep -q 'event=redis_disconnected' "$T/w1.log" && [ "$(grep -c 'event=redis_connected' "$T/w1.log")" -ge 4 ]; }
check "the link cut: the worker reconnects" wait_until 10 reconnected
kill -CONT "$RPID"
check "the replica back: the 8 jobs done" wait_until 30 results_at_least default 348
eq "... each sent once" $((before + 8)) "$(requests)"
eq "... no delivery lost (the gos were given back, not reaped)" 0 "$(lf status --json | jq .total_lost_in_flight)"
spent=$(lf status --json | jq -r .spent_usd)
served=$(fake_stats | jq '(.input_tokens * 3 + .output_tokens * 15) / 1000000')
check "... spend recorded = served ($spent / $served USD)" \
    awk -v a="$spent" -v b="$served" 'BEGIN { d = a - b; exit !(d < 0.000002 && d > -0.000002) }'
kill -TERM "$W1"; wait "$W1"
eq "the worker stops cleanly" 0 $?
ANTHROPIC_API_KEY=$API_KEY "$BIN/llmfleet" worker --redis-url "$REDIS_URL" --wait-replicas 1 \
    --wait-replicas-ms 6000 >"$T/bad.out" 2>&1
eq "a WAIT timeout over half the reply deadline exits 2" 2 $?
check "... saying why" grep -q 'wait-replicas-ms 6000 is over half the Redis reply deadline' "$T/bad.out"
finish
