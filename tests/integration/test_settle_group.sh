# Answers of requests sent together settle together: a group of 16 jobs,
# admitted in one call and sent at once to an API whose answers spread
# over 18 ms (400 ms latency), settles in one or two calls, not one per
# answer or two that came close: a worker with most seats free waits for
# the group's answers still out, at most a twentieth of their latency
# (the build before it made 5-9 calls here).
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 400 --jitter-ms 18
start_worker w1 --concurrency 64
warm_up

# Settle calls from now on (every call in SLOWLOG).
rcli CONFIG SET slowlog-max-len 100000 >/dev/null
rcli CONFIG SET slowlog-log-slower-than 0 >/dev/null
settles() {
    rcli SLOWLOG RESET >/dev/null
    "$@"
    redis-cli -p "$REDIS_PORT" --json SLOWLOG GET -1 |
        jq '[.[] | select(.[3][0] == "FCALL" and (.[3][1] | endswith("_settle")))] | length'
}
group() {
    gen_jobs 16 "$1" | lf submit - 2>/dev/null
    wait_until 30 results_at_least default "$2"
}
n=$(settles group g 17)
echo "# 16 answers over 18 ms, 64 seats: $n settle calls"
check "a group of 16 settles in 1 or 2 calls" test "$n" -ge 1 -a "$n" -le 2
lf results --out "$T/r.jsonl" 2>/dev/null
eq "every job of the group has its result, ok" 16 "$(jq -r 'select(.id | startswith("g-")) | select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)"

# 16 seats: the group takes them all, and the first answers settle at
# once (a settle waits only while most seats are free: here from the 9th
# answer on).
kill -TERM "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null
start_worker w2 --concurrency 16
n=$(settles group h 33)
echo "# 16 answers over 18 ms, 16 seats: $n settle calls"
check "with most seats taken, the first answer settles without waiting (2 calls or more)" test "$n" -ge 2
lf results --out "$T/r.jsonl" 2>/dev/null
eq "every job of the second group has its result, ok" 16 "$(jq -r 'select(.id | startswith("h-")) | select(.status == "ok") | .id' "$T/r.jsonl" | sort -u | wc -l)"
no_lease() { lf status --json | jq -e '.leased == 0 and .in_flight == 0'; }
check "no lease left" wait_until 10 no_lease
finish
