# Redis itself does not run for longer than a lease (SIGSTOP: a stalled VM,
# a long fork, a healed partition), or its clock steps 60 s ahead, while
# every request is at the API. Every lease looks expired; none of the
# workers failed. The reaper must hold (reap.lua: a gap in the fleet's
# tick) until the live workers have renewed: no job runs twice, nothing
# counts as lost, one result per id. And the CLI does not hang with Redis;
# a silence past the reply deadline makes the workers redial.
. "$(dirname "$0")/lib.sh"

shim="$BIN/clockshim.so"
if [ ! -f "$shim" ]; then
    fail "$shim missing (make $shim)"
    finish
fi
echo 0 > "$T/clock"
REDIS_WRAP="env LD_PRELOAD=$shim CLOCKSHIM_FILE=$T/clock" start_redis
start_fakeapi --latency-ms 7000
for w in w1 w2; do start_worker $w --concurrency 16 --lease-ms 3000; done
warm_up
inflight() { [ "$(fake_stats | jq .concurrent)" -ge "$1" ]; }
elapsed_since() { [ $(( $(now_ms) - $1 )) -ge "$2" ]; }
no_lease() { lf status --json | jq -e '.leased == 0 and .in_flight == 0'; }
done_ids() {   # PREFIX N: N distinct ids with PREFIX have a result
    [ "$(lf results 2>/dev/null | jq -r "select(.id | startswith(\"$1-\")) | .id" |
         sort -u | wc -l)" -ge "$2" ]
}

# One round: 24 jobs at the API, then FAULT, then every job must finish
# once. $1 names the round, $2 its ids' prefix, $3.. the fault.
round() {
    local name=$1 p=$2 n=24 base
    shift 2
    base=$(fake_stats | jq .requests_total)
    gen_jobs $n "$p" | lf submit - 2>/dev/null
    check "$name: $n requests at the API" wait_until 10 inflight $n
    "$@"
    check "$name: every job done" wait_until 40 done_ids "$p" $n
    lf results 2>/dev/null | jq -c "select(.id | startswith(\"$p-\"))" > "$T/$p.jsonl"
    eq "$name: one result per id" "$n" "$(wc -l < "$T/$p.jsonl")"
    eq "$name: all ok" "$n" "$(jq -r 'select(.status == "ok") | .id' "$T/$p.jsonl" | wc -l)"
    eq "$name: each job paid once at the API" "$n" \
        "$(( $(fake_stats | jq .requests_total) - base ))"
    eq "$name: no request counted lost" 0 "$(lf status --json | jq .total_lost_in_flight)"
    check "$name: no lease left" wait_until 10 no_lease
}

# Redis stopped 4.5 s (leases of 3 s, renewed every second): the CLI gives
# up after its reply timeout with a clear error instead of hanging.
stall() {
    local t0
    kill -STOP "$REDIS_PID"
    t0=$(now_ms)
    LLMFLEET_REDIS_TIMEOUT_MS=1000 lf status > "$T/st.out" 2> "$T/st.err"
    echo "$?" > "$T/st.rc"
    wait_until 10 elapsed_since "$t0" 4500
    kill -CONT "$REDIS_PID"
}
round "SIGSTOP 4.5 s" s stall
check "the CLI gave up on a stopped Redis (exit $(cat "$T/st.rc"))" test "$(cat "$T/st.rc")" -ne 0
check "... and said why" grep -qi "timed out\|timeout" "$T/st.err"
check "the reaper held after the gap" grep -q "event=reap_held" "$T/w1.log" "$T/w2.log"

step() { echo 60000 > "$T/clock"; }
round "clock +60 s" c step

# Silent for longer than the reply deadline (LLMFLEET_REDIS_TIMEOUT_MS,
# 10 s): to a worker that is what a partition dropping packets looks like.
# It gives up on the connection and redials, instead of waiting for TCP.
long_stall() {
    local t0
    kill -STOP "$REDIS_PID"
    t0=$(now_ms)
    wait_until 20 grep -q "event=redis_reply_deadline" "$T/w1.log" "$T/w2.log"
    echo "$(( $(now_ms) - t0 ))" > "$T/deadline.ms"
    kill -CONT "$REDIS_PID"
}
round "silent 10+ s" q long_stall
dl=$(cat "$T/deadline.ms")
echo "# the reply deadline fired ${dl} ms into the silence"
check "a worker noticed the silence after the deadline, within 15 s ($dl ms)" \
    sh -c "[ $dl -ge 9000 ] && [ $dl -le 15000 ]"

finish
