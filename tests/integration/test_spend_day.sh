# max_spend_usd_per_day: the fleet stops when the UTC day's spend would
# pass the daily cap (one budget_exceeded entry saying when it resumes),
# resumes by itself when Redis's clock enters the next UTC day
# (tests/tools/clockshim.c steps it), stops again at the next day's cap,
# and resumes at once when the cap is raised. What the fake API served is
# the judge. Both readings of the docs' header timing are the fake's
# default one here (spend does not depend on them: test_spend_kinds).
. "$(dirname "$0")/lib.sh"

shim="$BIN/clockshim.so"
echo 0 > "$T/clock"
REDIS_WRAP="env LD_PRELOAD=$shim CLOCKSHIM_FILE=$T/clock" start_redis
start_fakeapi --latency-ms 50
served() { fake_stats | jq '(.input_tokens * 3 + .output_tokens * 15) / 1000000'; }
holds() { jq -ne "$1" >/dev/null; }
lf limits set max_spend_usd_per_day=0.05 >/dev/null
n=600
gen_jobs $n d | lf submit - 2>/dev/null
ws=()
for i in 1 2; do start_worker w$i --concurrency 32; ws+=("$WORKER_PID"); done

stopped() { lf status --json | jq -e '.day_stopped == 1 and .in_flight == 0 and .leased == 0' >/dev/null; }
check "the fleet stops at the daily cap" wait_until 30 stopped
s1=$(served)
echo "# day 1: served $s1 USD (cap 0.05 a day)"
check "day 1: served within the daily cap ($s1 <= 0.05)" holds "$s1 <= 0.05"
check "day 1: and the cap was used ($s1 >= 0.04)" holds "$s1 >= 0.04"
check "status says it is stopped for today" sh -c "'$BIN/llmfleet' status --redis-url '$REDIS_URL' | grep -q 'STOPPED for today (resumes at 00:00 UTC)'"
eq "one budget_exceeded entry names the daily cap" 1 \
    "$(lf results --status budget_exceeded 2>/dev/null | jq -r 'select((.max_spend_usd_per_day | tonumber) == 0.05) | .status' | wc -l)"
check "jobs stay queued" test "$(queued_count)" -gt 0
lf resume 2> "$T/resume.err"
check "resume says the fleet is still stopped at its cap" grep -q "still stopped at its spend cap" "$T/resume.err"

# Redis's clock into the next UTC day.
now=$(date +%s%3N)
echo $(( (now / 86400000 + 1) * 86400000 - now + 2000 )) > "$T/clock"
nextday() { lf status --json | jq -e '.day_stopped == 0 and (.spent_today_usd | tonumber) > 0' >/dev/null; }
check "at 00:00 UTC the fleet resumes by itself" wait_until 30 nextday
check "and stops again at the new day's cap" wait_until 30 stopped
s2=$(served)
echo "# day 2: served $s2 USD in all"
check "day 2: the day's spend within the cap ($s2 - $s1 <= 0.05)" holds "$s2 - $s1 <= 0.05"
check "day 2: and used ($s2 - $s1 >= 0.04)" holds "$s2 - $s1 >= 0.04"
eq "spent_today is day 2's alone" "$(jq -n "$s2 - $s1" | cut -c1-6)" "$(lf status --json | jq -r '.spent_today_usd | tonumber' | cut -c1-6)"

lf limits set max_spend_usd_per_day=100 >/dev/null
check "raising the cap finishes the rest" wait_until 60 results_at_least default $((n + 2))
eq "every job ok in the end" $n "$(lf results --status ok 2>/dev/null | jq -r .id | sort -u | wc -l)"
spent=$(lf status --json | jq -r .spent_usd)
check "the lifetime spend counts both days and after ($spent ~ $(served))" holds "($spent - $(served)) | fabs < 0.000001"

# Requests lost with a killed worker count as spent (their reservation):
# today's spend too, not only the lifetime one. The first workers leave
# first (they would take the new jobs, and their retries, to the fake API
# they know, which is gone: who held the jobs was a race).
kill -TERM "${ws[@]}"; wait "${ws[@]}" 2>/dev/null
diff0=$(lf status --json | jq -r '(.spent_usd | tonumber) - (.spent_today_usd | tonumber)')
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 5000
gen_jobs 20 k | lf submit - 2>/dev/null
start_worker wk --concurrency 20 --lease-ms 1000
inflight() { [ "$(lf status --json | jq .in_flight)" -gt 0 ]; }
check "requests in flight" wait_until 20 inflight
kill -9 "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 5
start_worker wk2 --concurrency 20
lost() { [ "$(lf status --json | jq .total_lost_in_flight)" -gt 0 ]; }
# The clock steps above made the fleet hold reaping a lease period (30 s)
# from the last step: the lost leases come back after it, plus a reap
# interval (the clean-clone CI once saw them 30.3 s in).
check "the reaper counted the lost requests" wait_until 60 lost
check "and their jobs finish" wait_until 60 results_at_least default $((n + 22))
diff1=$(lf status --json | jq -r '(.spent_usd | tonumber) - (.spent_today_usd | tonumber)')
check "today's spend took the lost reservations too ($diff0 = $diff1)" holds "($diff0 - $diff1) | fabs < 0.000001"
finish
