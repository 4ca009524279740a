# Instant pickup: an idle worker blocks on the job list (BLMOVE jobs jobs
# LEFT LEFT, which leaves the list as it is) and claims as soon as a job is
# pushed, not at its next idle poll: with --idle-poll-ms 10000, pushed jobs
# end within 3 s, one at a time, and several idle workers share them
# (each job run once). The list's order is untouched by the waiting
# workers. A Redis without BLMOVE (renamed away here, like an ACL without
# it or a server before 6.2): the worker says so once and polls.
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
for k in 1 2 3 4 5; do
    gen_jobs 1 "wake$k" | lf submit - >/dev/null
    check "job $k ends within 3 s of its push (idle poll 10 s)" \
        wait_until 3 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN '$R') -ge $k ]"
    check "and the workers block again" wait_until 5 blocked
done
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per job" "5" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "every job sent once" "5" "$(fake_stats | jq .requests_total)"

# The waiting workers leave the list as pushed: pause the fleet (claims
# stop, the workers still block), push in order, read it back.
lf pause --reason test >/dev/null
for x in a b c d; do rcli LPUSH "$Q" "$x" >/dev/null; done
# (BLMOVE is atomic: no reader ever sees the head out of place.)
eq "list order unchanged under the waiting workers" "d c b a" "$(rcli LRANGE "$Q" 0 -1 | tr '\n' ' ' | sed 's/ $//')"
rcli DEL "$Q" >/dev/null
lf resume >/dev/null
for p in "${ws[@]}"; do kill -TERM "$p"; done
for p in "${ws[@]}"; do wait "$p"; eq "SIGTERM while blocked: clean exit" "0" "$?"; done

# No BLMOVE: said once, then polling.
stop_redis
LLMFLEET_ACL=0 start_redis --rename-command BLMOVE '""' >/dev/null
start_worker nb --idle-poll-ms 200
gen_jobs 3 nb | lf submit - >/dev/null
check "without BLMOVE the jobs still run (polling)" wait_until 10 results_at_least default 3
eq "and the worker said why once" "1" "$(grep -c 'event=wake_unavailable' "$T/nb.log")"
finish
