# Instant pickup: an idle worker blocks on the job list (BLMOVE jobs
# jobs:intake:NAME RIGHT LEFT) and claims as soon as a job is pushed, not at
# its next idle poll: with --idle-poll-ms 10000, pushed jobs end within 3 s,
# one at a time, and several idle workers share them (each job run once). A
# push wakes one idle worker, not all: three idle workers re-block once per
# push (every one did, and claimed, when the move left the job in the list).
# What a waker took is never lost: given back when its worker cannot claim
# (paused), or leaves (SIGTERM), or by the reaper when its worker died
# holding it (SIGSTOP, push, SIGKILL). A Redis without BLMOVE (renamed away
# here, like an ACL without it or a server before 6.2): the worker says so
# once and polls.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi
Q='llmfleet:{default}:jobs'
R='llmfleet:{default}:results'
ws=()
for i in 1 2 3; do start_worker "w$i" --idle-poll-ms 10000; ws+=("$WORKER_PID"); done
# Idle and blocked: three clients blocked in BLMOVE.
blocked() { [ "$(rcli INFO clients | tr -d '\r' | sed -n 's/^blocked_clients://p')" -ge 3 ]; }
check "three idle workers block on the list" wait_until 10 blocked
blmoves() { rcli INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_blmove:calls=\([0-9]*\),.*/\1/p'; }
rcli CONFIG RESETSTAT >/dev/null
t0=$(now_ms)
for k in 1 2 3 4 5; do
    gen_jobs 1 "wake$k" | lf submit - >/dev/null
    check "job $k ends within 3 s of its push (idle poll 10 s)" \
        wait_until 3 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN '$R') -ge $k ]"
    check "and the workers block again" wait_until 5 blocked
done
# One push, one waker: 5 re-blocks, and each waker's 5 s timeout (at most
# one each per 5 s); all three re-blocking at each push made 15 and more.
n=$(blmoves); el=$(( $(now_ms) - t0 ))
echo "# $n BLMOVEs in $el ms for 5 pushes"
check "a push wakes one idle worker" \
    test "$n" -le $(( 5 + 3 * (el / 5000 + 1) ))
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per job" "5" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "every job sent once" "5" "$(fake_stats | jq .requests_total)"

# Paused (claims stop, the workers still block): what the wakers take at
# the pushes goes back to the queue at once (their claims give it back),
# none is lost or left in an intake.
lf pause --reason test >/dev/null
for x in a b c d; do rcli LPUSH "$Q" "$x" >/dev/null; done
four() { [ "$(rcli LLEN "$Q")" = 4 ]; }
check "paused: the four pushed jobs are all in the queue" wait_until 5 four
eq "paused: no intake holds a job" "" "$(rcli --scan --pattern "$Q:intake:*")"
eq "paused: the same four jobs" "a b c d" "$(rcli LRANGE "$Q" 0 -1 | sort | tr '\n' ' ' | sed 's/ $//')"
rcli DEL "$Q" >/dev/null
lf resume >/dev/null
for p in "${ws[@]}"; do kill -TERM "$p"; done
for p in "${ws[@]}"; do wait "$p"; eq "SIGTERM while blocked: clean exit" "0" "$?"; done

# A worker dies holding what its waker took: stopped while blocked, the
# push moves a job into its intake; killed, its heartbeat (1 s here) ends
# and another worker's reaper gives the job back: it runs once.
start_worker dies --idle-poll-ms 10000 --lease-ms 3000; dies=$WORKER_PID
one_blocked() { [ "$(rcli INFO clients | tr -d '\r' | sed -n 's/^blocked_clients://p')" -ge 1 ]; }
check "a worker blocks" wait_until 10 one_blocked
kill -STOP "$dies"
gen_jobs 1 held | lf submit - >/dev/null
held() { [ "$(rcli LLEN "$Q:intake:dies")" = 1 ]; }
check "stopped, its waker took the pushed job into its intake" wait_until 5 held
eq "the list is empty" "0" "$(rcli LLEN "$Q")"
eq "and status counts the job queued" "1" "$(lf status --json | jq .queued)"
kill -KILL "$dies"; wait "$dies" 2>/dev/null
start_worker reaper --idle-poll-ms 10000
check "the reaper gives the dead worker's intake back: the job runs" \
    wait_until 20 results_at_least default 6
check "and no intake is left" test -z "$(rcli --scan --pattern "$Q:intake:*")"

# A worker told to stop while its waker holds a job (stopped, then SIGTERM
# and SIGCONT at once): it runs the job or gives it back as it leaves;
# either way the job runs once (another idle worker takes it).
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
start_worker leaves --idle-poll-ms 10000; leaves=$WORKER_PID
check "a worker blocks" wait_until 10 one_blocked
kill -STOP "$leaves"
gen_jobs 1 leaving | lf submit - >/dev/null
held2() { [ "$(rcli LLEN "$Q:intake:leaves")" = 1 ]; }
check "stopped, its waker took the pushed job into its intake" wait_until 5 held2
start_worker taker --idle-poll-ms 10000
check "another worker blocks" wait_until 10 one_blocked
kill -TERM "$leaves"; kill -CONT "$leaves"
wait "$leaves"; eq "SIGTERM with a job in its intake: clean exit" "0" "$?"
check "the job runs" wait_until 20 results_at_least default 7
lf results --out "$T/r2.jsonl" 2>/dev/null
eq "one result per job, none twice" "7 7" \
    "$(jq -r .id "$T/r2.jsonl" | sort -u | wc -l) $(jq -r .id "$T/r2.jsonl" | wc -l)"
check "and no intake is left" test -z "$(rcli --scan --pattern "$Q:intake:*")"

# The worker's name names its intake: an empty one is refused.
ANTHROPIC_API_KEY=$API_KEY "$BIN/llmfleet" worker --redis-url "$REDIS_URL" --name "" \
    > "$T/noname.log" 2>&1
eq "an empty --name is refused" "2" "$?"
check "saying so" grep -q "name must not be empty" "$T/noname.log"

# No BLMOVE: said once, then polling.
stop_redis
LLMFLEET_ACL=0 start_redis --rename-command BLMOVE '""' >/dev/null
start_worker nb --idle-poll-ms 200
gen_jobs 3 nb | lf submit - >/dev/null
check "without BLMOVE the jobs still run (polling)" wait_until 10 results_at_least default 3
eq "and the worker said why once" "1" "$(grep -c 'event=wake_unavailable' "$T/nb.log")"
finish
