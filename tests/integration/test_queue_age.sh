# status's oldest queued job and backlog ETA. Redis's clock is stepped
# 100 s forward (tests/tools/clockshim.c) between two pushes; one slow
# worker drains the queue: while jobs of the first push remain, the oldest
# is ~100 s old; once they are taken, it is one of the second push's. The
# API answers in 1 s: the first push takes the worker ~12 s, the second
# ~30 s, so the checks that need a backlog have one however slowly the test
# itself runs (the ETA needs a whole 10 s of rates after the step: 10-20 s).
. "$(dirname "$0")/lib.sh"

shim="$BIN/clockshim.so"
echo 0 > "$T/clock"
REDIS_WRAP="env LD_PRELOAD=$shim CLOCKSHIM_FILE=$T/clock" start_redis
start_fakeapi --latency-ms 1000
st() { lf status --json | jq -r "$1"; }

gen_jobs 12 a | lf submit - 2>/dev/null
eq "before any claim the age is not counted" null "$(st .oldest_queued_s)"
check "and status says so" sh -c "'$BIN/llmfleet' status --redis-url '$REDIS_URL' | grep -q 'oldest queued: not counted yet'"
start_worker w1 --concurrency 1 --lease-ms 3000 --summary-ms 5000
counted() { [ "$(st .oldest_queued_s)" != null ]; }
check "a claim counts the queue" wait_until 10 counted
echo 100000 > "$T/clock"
check "Redis's clock moved 100 s" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT TIME | head -1) -ge \$(( \$(date +%s) + 95 )) ]"
gen_jobs 30 b | lf submit - 2>/dev/null
old_a() { a=$(st .oldest_queued_s); [ "$a" != null ] && [ "$a" -ge 100 ] && [ "$a" -le 115 ]; }
check "while first-push jobs remain, the oldest is ~100 s old ($(st .oldest_queued_s) s)" wait_until 5 old_a
check "status shows it" sh -c "'$BIN/llmfleet' status --redis-url '$REDIS_URL' | grep -q 'oldest queued 1[01][0-9] s'"
eta_ok() { e=$(st .eta_s); [ "$e" != null ] && [ "$e" -gt 0 ]; }
check "an ETA for the backlog is shown" wait_until 25 eta_ok
a_taken() { [ "$(lf results 2>/dev/null | jq -r .id | grep -c '^a-')" -ge 12 ] && [ "$(st .queued)" -gt 0 ]; }
check "the first push is done, the second still queued" wait_until 30 a_taken
young() { a=$(st .oldest_queued_s); [ "$a" != null ] && [ "$a" -le 60 ]; }
check "then the oldest is a second-push job (<= 60 s: $(st .oldest_queued_s))" wait_until 5 young
check "every job done" wait_until 60 results_at_least default 42
empty() { [ "$(st .oldest_queued_s)" = null ] && [ "$(st .eta_s)" = null ]; }
check "an empty queue has no age and no ETA" wait_until 5 empty
eq "the marks are trimmed to what the queue needs" 1 "$(( $(rcli ZCARD 'llmfleet:{default}:qmarks') <= 2 ))"
finish
