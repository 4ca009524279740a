# A settle that ran in Redis but whose reply never reached the worker (the
# connection closed after the script, before the answer): the worker sends
# it again, the copy finds the lease gone, and that is the first copy having
# landed (the lease surely lived until then), not a lost lease. Redis's own
# output-buffer limit closes each client whose reply passes it, after the
# command ran: with jobs of ~20 KB every call that hands out jobs (a settle
# that claims for its freed slots, with the job list read in the same
# round trip) loses its reply while it is set. The API answers in 30 ms,
# under the worker's claim-ahead threshold (FOLLOW_MIN_LAT_MS): the jobs
# ride with the settles. Fails when the worker logs the resend as
# event=lease_lost_at_settle (as it did: a Redis restart in the middle of a
# settle made test_redis_faults fail now and then).
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --latency-ms 30
n=120
pad=$(head -c 20000 /dev/zero | tr '\0' 'x')
gen_jobs $n rl | jq -c --arg pad "$pad" '.request.messages[0].content += " " + $pad' |
    lf submit - 2>/dev/null
start_worker w1 --concurrency 4 --lease-ms 4000
check "20 results" wait_until 30 results_at_least default 20
# Any reply past Redis's 16 KB reply buffer now closes its connection.
rcli CONFIG SET client-output-buffer-limit "normal 1 0 0" >/dev/null
# Three cuts: a claim alone (no settle in it) is cut too; the settles ride
# with most of the claims.
cut() { [ "$(grep -c "event=redis_disconnected" "$T/w1.log")" -ge 3 ]; }
check "the worker lost replies (its connection closed by Redis 3 times)" wait_until 10 cut
rcli CONFIG SET client-output-buffer-limit "normal 0 0 0" >/dev/null
check "every job done (the jobs of a lost claim reaped)" wait_until 60 results_at_least default $n
lf results --out "$T/r.jsonl" 2>/dev/null
eq "one result per id" "$n" "$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)"
eq "no second result" "$n" "$(wc -l < "$T/r.jsonl")"
eq "all ok" "$n" "$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | wc -l)"
check "a settle whose reply was lost went again, and was known to have landed" \
    grep -q "event=settle_resent_had_landed" "$T/w1.log"
check "... not reported as a lost lease" \
    sh -c "! grep -q 'event=lease_lost_at_settle\|event=lease_lost ' '$T/w1.log'"
finish
