# Dead links (real network namespaces): a worker in a namespace of its own
# reaches Redis and the fake API over a veth pair; its link to Redis is cut
# silently (iptables DROP inside the namespace: no reset, no error; the API
# stays reachable).
#  0. A 20 ms round trip to Redis (a delaying proxy in the namespace): every
#     id one result, no request twice.
#  1. A worker cut off while holding leases (lease 8 s, cut 25 s): a second
#     worker reaps them and runs the jobs; the cut worker's settles are
#     refused when it is back (fenced); every id one result, requests twice
#     at most the cut worker's slots.
#  2. A silent 40 s partition of the only worker: it notices within the
#     reply deadline (10 s), its requests in flight finish at the API and
#     settle once Redis is back; it reconnects within seconds of the heal;
#     every id one result, no request twice. (Second: a fleet whose every
#     worker went silent for over half a lease then holds reaping a lease
#     period, as after a Redis stall: lease.lua's fleetTick.)
. "$(dirname "$0")/lib.sh"
# A slow suite (two partitions, 65 s): run once, in the release run.
if [ -n "${LLMFLEET_SHORT:-}" ]; then echo "ok - skipped in the sanitizer run (run once, in make test)"; exit 0; fi
if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1 || ! command -v iptables >/dev/null; then
    echo "ok - skipped: needs root, ip netns and iptables"; exit 0
fi

NS=lfpart$$
VA=lfa$$; VB=lfb$$
NET=10.$((RANDOM % 200 + 20)).$((RANDOM % 250)); HOST=$NET.1; PEER=$NET.2
trap 'ip netns del "$NS" 2>/dev/null; ip link del "$VA" 2>/dev/null; cleanup' EXIT
ip netns add "$NS"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VB" netns "$NS"
ip addr add "$HOST/30" dev "$VA"
ip link set "$VA" up
ip netns exec "$NS" ip addr add "$PEER/30" dev "$VB"
ip netns exec "$NS" ip link set "$VB" up
ip netns exec "$NS" ip link set lo up

# Protected mode off: the test's own namespace reaches Redis on the veth
# address (the fleet's ACL user has a password).
start_redis --bind 127.0.0.1 "$HOST" --protected-mode no
reach() { ip netns exec "$NS" redis-cli -h "$HOST" -p "$REDIS_PORT" ping | grep -q PONG; }
check "the namespace reaches Redis over the veth link" reach
start_fakeapi --listen "$HOST:0" --latency-ms 300
FAKE_URL=${FAKE_URL/127.0.0.1/$HOST}
NS_REDIS_URL=${REDIS_URL/127.0.0.1/$HOST}
requests() { fake_stats | jq .requests_total; }

# ns_worker NAME ARGS...: a worker inside the namespace; sets WORKER_PID.
ns_worker() {
    local name=$1; shift
    ip netns exec "$NS" env ANTHROPIC_API_KEY="$API_KEY" ANTHROPIC_BASE_URL="$FAKE_URL" \
        "$BIN/llmfleet" worker --redis-url "$NS_REDIS_URL" --name "$name" \
        --allow-insecure-http "$@" >>"$T/$name.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
}
# cut A: drop the namespace's traffic to Redis from now (t_cut); cut D:
# let it through again; heal_after S: cut D once the cut has lasted S s.
cut()  { ip netns exec "$NS" iptables -"$1" OUTPUT -d "$HOST" -p tcp --dport "$REDIS_PORT" -j DROP &&
         ip netns exec "$NS" iptables -"$1" INPUT -s "$HOST" -p tcp --sport "$REDIS_PORT" -j DROP &&
         { [ "$1" != A ] || t_cut=$(now_ms); }; }
cut_lasted() { [ "$(since "$t_cut")" -ge "$1" ]; }
heal_after() { wait_until $(($1 + 5)) cut_lasted "$1"; cut D; }
since() { echo $(( ($(now_ms) - $1) / 1000 )); }

# ---- 0. a 20 ms round trip ---------------------------------------------------
# The kernel here has no netem: a proxy in the namespace hands every chunk
# on 10 ms late each way (tests/tools/delayproxy.py).
ip netns exec "$NS" python3 "$(dirname "$0")/../tools/delayproxy.py" 127.0.0.1 0 \
    "$HOST" "$REDIS_PORT" 10 "$T/delay.port" >>"$T/delay.log" 2>&1 &
PIDS+=("$!")
wait_until 10 test -s "$T/delay.port" || { echo "not ok - the delay proxy did not start"; exit 1; }
SLOW_REDIS_URL=${NS_REDIS_URL/$HOST:$REDIS_PORT/127.0.0.1:$(cat "$T/delay.port")}
t0=$(now_ms); ip netns exec "$NS" redis-cli -p "$(cat "$T/delay.port")" ping >/dev/null; rtt=$(( $(now_ms) - t0 ))
check "the proxied link's round trip is at least 20 ms ($rtt ms, with redis-cli's start)" test "$rtt" -ge 20
req0=$(requests)
gen_jobs 500 r | lf submit - 2>/dev/null
t0=$(now_ms)
NS_REDIS_URL=$SLOW_REDIS_URL ns_worker w0 --concurrency 32
W0=$WORKER_PID
check "every job done at a 20 ms round trip to Redis" wait_until 120 results_at_least default 500
echo "# 500 jobs at 20 ms RTT, 32 slots, API 300 ms: $(( 500000 / ($(now_ms) - t0) )) jobs/s (at most 106 with 32 slots)"
eq "every id one result" 500 "$(lf results 2>/dev/null | jq -r .id | sort -u | wc -l)"
eq "no request twice" 500 "$(( $(requests) - req0 ))"
kill -TERM "$W0"; wait "$W0"
eq "the worker stops cleanly" 0 $?
rcli DEL 'llmfleet:{default}:results' >/dev/null
base0=$(requests)
requests() { echo $(( $(fake_stats | jq .requests_total) - base0 )); }

# ---- 1. cut off while holding leases -------------------------------------------
gen_jobs 300 q | lf submit - 2>/dev/null
ns_worker w2 --concurrency 16 --lease-ms 8000
W2=$WORKER_PID
check "the namespaced worker runs the second batch" wait_until 30 results_at_least default 60
cut A
start_worker w3 --concurrency 16 --allow-insecure-http
W3=$WORKER_PID
reaped() { grep -q 'event=reaped_expired_leases' "$T/w3.log"; }
check "another worker reaps the cut worker's leases" wait_until 30 reaped
heal_after 25
check "every job done" wait_until 90 results_at_least default 300
fenced() { grep -q 'event=lease_lost_at_settle\|event=lease_lost ' "$T/w2.log"; }
check "the cut worker's late settles are refused (fenced)" wait_until 20 fenced
eq "every id one result" 300 "$(lf results 2>/dev/null | jq -r .id | sort -u | wc -l)"
eq "one result entry per id" 300 "$(results_count default)"
twice=$(( $(requests) - 300 ))
# At most the cut worker's 16 requests in flight, and the followers it
# sent at their answers before it could tell Redis was silent (a follower
# goes only while Redis answered within 20 ms + 2 round trips: at 16 seats
# of a 300 ms API, one answer every ~19 ms, so one or two).
echo "# requests sent twice: $twice (the cut worker had 16 seats)"
check "requests twice at most the cut worker's requests in flight and 2 followers ($twice)" test "$twice" -le 18
kill -TERM "$W2" "$W3"; wait "$W2"; r2=$?; wait "$W3"; r3=$?
eq "both workers stop cleanly" "0 0" "$r2 $r3"

# ---- 2. a silent 40 s partition ---------------------------------------------
req0=$(requests)
gen_jobs 400 p | lf submit - 2>/dev/null
ns_worker w1 --concurrency 16 --lease-ms 90000
W1=$WORKER_PID
check "the namespaced worker runs jobs" wait_until 30 results_at_least default 360
cut A
noticed() { grep -q 'event=redis_reply_deadline\|event=redis_disconnected' "$T/w1.log"; }
check "the worker notices the silent partition within 15 s" wait_until 15 noticed
echo "# noticed after $(since "$t_cut") s: $(grep -m1 -o 'event=redis_reply_deadline.*' "$T/w1.log")"
calm() { a=$(requests); sleep 1; [ "$a" = "$(requests)" ]; }
check "its requests in flight finish at the API, and nothing new goes out" wait_until 20 calm
at_api=$(requests); in_redis=$(results_count default)
echo "# during the partition: the API saw $at_api requests, Redis holds $in_redis results"
heal_after 40
t_heal=$(now_ms)
back() { [ "$(results_count default)" -gt "$in_redis" ]; }
check "healed: the worker settles again within 15 s" wait_until 15 back
echo "# settling again $(since "$t_heal") s after the heal"
check "every job done" wait_until 90 results_at_least default 700
eq "every id one result" 700 "$(lf results 2>/dev/null | jq -r .id | sort -u | wc -l)"
eq "no request twice" 400 "$(( $(requests) - req0 ))"
kill -TERM "$W1"; wait "$W1"
eq "the worker stops cleanly" 0 $?
finish
