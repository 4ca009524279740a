# lib.sh — shared setup for the integration tests (sourced, bash).
#
# Every test gets its own temp dir, a real redis-server on a free loopback
# port and, when asked, the real fake API; all of them are stopped on exit,
# also when the test fails. Waits are conditions with a deadline.
set -u

BIN=${LLMFLEET_BIN:?LLMFLEET_BIN must point at the bin/ directory}
T=$(mktemp -d "${TMPDIR:-/tmp}/llmfleet-test.XXXXXX")
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/fleet-lib.sh"
PASS=0
FAIL=0
API_KEY="sk-ant-test-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export API_KEY

cleanup() {
    fleet_cleanup
    if [ "$FAIL" -gt 0 ] || [ -n "${KEEP_TMP:-}" ]; then
        echo "# logs kept in $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

ok()   { PASS=$((PASS + 1)); echo "ok - $*"; }
fail() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }

# check NAME CMD...: passes when CMD exits 0.
check() {
    local name=$1; shift
    if "$@"; then ok "$name"; else fail "$name"; fi
}

# eq NAME EXPECTED ACTUAL
eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1 (expected '$2', got '$3')"; fi
}

# Print counts at the end; the exit status says whether all passed.
finish() {
    # Under a wrapper (make test-valgrind) or a sanitizer build (make
    # test-san: LeakSanitizer checks at exit) the workers exit first, so
    # that the exit report (leaks) is in their logs.
    [ -n "${LLMFLEET_WRAP:-}${LLMFLEET_SAN:-}" ] && workers_stop 60
    # Sanitizer builds report into the process logs: any report fails.
    if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log >/dev/null 2>&1; then
        fail "sanitizer report in $(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log | xargs -n1 basename | tr '\n' ' ')"
        grep -hE -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log | head -60
    else
        ok "no sanitizer report in the logs"
    fi
    # Under valgrind (LLMFLEET_WRAP, make test-valgrind, run with -q): any
    # line it writes is a report.
    if grep -lE '^==[0-9]+== ' "$T"/*.log >/dev/null 2>&1; then
        fail "valgrind report in $(grep -lE '^==[0-9]+== ' "$T"/*.log | xargs -n1 basename | tr '\n' ' ')"
        grep -hE -A20 '^==[0-9]+== ' "$T"/*.log | head -60
    elif [ -n "${LLMFLEET_WRAP:-}" ]; then
        ok "no valgrind report in the logs"
    fi
    # A Lua script that fails halfway keeps its partial writes: never allowed.
    if grep -h 'event=redis_error' "$T"/*.log 2>/dev/null | head -5 | grep .; then
        fail "Redis script errors in the worker logs"
    else
        ok "no Redis script error in the logs"
    fi
    echo "# $(basename "$0"): $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

# gen_jobs N PREFIX [MODEL]: N valid jobs as JSONL on stdout.
gen_jobs() {
    local n=$1 prefix=$2 model=${3:-claude-sonnet-4-5}
    awk -v n="$n" -v p="$prefix" -v m="$model" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"id\":\"%s-%d\",\"request\":{\"model\":\"%s\",\"max_tokens\":%d,\"messages\":[{\"role\":\"user\",\"content\":\"Question %d of %s: say something about the number %d.\"}]},\"meta\":{\"n\":%d,\"tag\":\"t\\u00e9st\"}}\n", p, i, m, 16 + i % 48, i, p, i * 7, i
    }'
}

# warm_up: one job through the running workers first, so that the fleet
# has seen the API's headers and is past its cold start (one request alone).
warm_up() {
    local before
    before=$(results_count "${1:-default}")
    gen_jobs 1 "warmup$RANDOM" | lf submit - --fleet "${1:-default}" 2>/dev/null
    wait_until 30 results_at_least "${1:-default}" $((before + 1))
}

# queued_count [FLEET]: jobs waiting anywhere but a lease: the queue, the
# workers' wake intakes, parked (their class made them wait) and delayed
# (retries).
queued_count() {
    local k="llmfleet:{${1:-default}}" n w
    n=$(( $(rcli LLEN "$k:jobs") + $(rcli ZCARD "$k:parked") + $(rcli ZCARD "$k:delayed") ))
    for w in $(rcli ZRANGEBYSCORE "$k:intakes" -inf +inf); do n=$(( n + $(rcli LLEN "$k:jobs:intake:$w") )); done
    echo "$n"
}

# results_count FLEET: entries in the results stream.
results_count() { rcli XLEN "llmfleet:{${1:-default}}:results"; }

# results_at_least FLEET N: the stream holds at least N entries.
results_at_least() { [ "$(results_count "$1")" -ge "$2" ]; }

# redis_dump: everything Redis holds (db of rcli), key by key, as text.
redis_dump() {
    rcli --scan --pattern '*' | while IFS= read -r k; do
        case $(rcli TYPE "$k") in
            string) rcli GET "$k" ;;
            list) rcli LRANGE "$k" 0 -1 ;;
            hash) rcli HGETALL "$k" ;;
            set) rcli SMEMBERS "$k" ;;
            zset) rcli ZRANGE "$k" 0 -1 WITHSCORES ;;
            stream) rcli XRANGE "$k" - + ;;
        esac
    done
}
