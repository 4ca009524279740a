# lib.sh — shared setup for the integration tests (sourced, bash).
#
# Every test gets its own temp dir, a real redis-server on a free loopback
# port and, when asked, the real fake API; all of them are stopped on exit,
# also when the test fails. Waits are conditions with a deadline.
set -u

BIN=${LLMFLEET_BIN:?LLMFLEET_BIN must point at the bin/ directory}
T=$(mktemp -d "${TMPDIR:-/tmp}/llmfleet-test.XXXXXX")
PIDS=()
PASS=0
FAIL=0
API_KEY="sk-ant-test-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
export API_KEY

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
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

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds or the
# deadline passes (returns 1 then).
wait_until() {
    local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
    while ! "$@" >/dev/null 2>&1; do
        [ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# Print counts at the end; the exit status says whether all passed.
finish() {
    # Sanitizer builds report into the process logs: any report fails.
    if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log >/dev/null 2>&1; then
        fail "sanitizer report in $(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log | xargs -n1 basename | tr '\n' ' ')"
        grep -hE -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/*.log | head -60
    else
        ok "no sanitizer report in the logs"
    fi
    echo "# $(basename "$0"): $PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

start_redis() {
    local port
    for _ in 1 2 3 4 5; do
        port=$("$BIN/freeport")
        mkdir -p "$T/redis"
        redis-server --port "$port" --bind 127.0.0.1 --dir "$T/redis" \
            --save '' --appendonly no --logfile "$T/redis/redis.log" "$@" &
        local pid=$!
        if wait_until 10 redis-cli -p "$port" ping; then
            PIDS+=("$pid")
            REDIS_PID=$pid
            REDIS_PORT=$port
            REDIS_URL="redis://127.0.0.1:$port/0"
            export REDIS_URL
            return 0
        fi
        kill -9 "$pid" 2>/dev/null
    done
    echo "cannot start redis-server" >&2
    exit 1
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# start_fakeapi ARGS...: sets FAKE_URL.
start_fakeapi() {
    local pf="$T/fake.$RANDOM.port"
    "$BIN/llmfleet-fakeapi" --port-file "$pf" --api-key "$API_KEY" "$@" \
        >>"$T/fakeapi.log" 2>&1 &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    wait_until 10 test -s "$pf" || { echo "fake API did not start" >&2; cat "$T/fakeapi.log" >&2; exit 1; }
    FAKE_URL="http://127.0.0.1:$(cat "$pf")"
    export FAKE_URL
}

fake_stats() { curl -s "$FAKE_URL/_stats"; }

# start_worker NAME ARGS...: a worker in the background, log in $T/NAME.log;
# sets WORKER_PID.
start_worker() {
    local name=$1; shift
    ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=$FAKE_URL \
        "$BIN/llmfleet" worker --redis-url "$REDIS_URL" --name "$name" "$@" \
        >>"$T/$name.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
}

lf() { "$BIN/llmfleet" "$1" --redis-url "$REDIS_URL" "${@:2}"; }

# gen_jobs N PREFIX [MODEL]: N valid jobs as JSONL on stdout.
gen_jobs() {
    local n=$1 prefix=$2 model=${3:-claude-sonnet-4-5}
    awk -v n="$n" -v p="$prefix" -v m="$model" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"id\":\"%s-%d\",\"request\":{\"model\":\"%s\",\"max_tokens\":%d,\"messages\":[{\"role\":\"user\",\"content\":\"Question %d: say something about the number %d.\"}]},\"meta\":{\"n\":%d,\"tag\":\"t\\u00e9st\"}}\n", p, i, m, 16 + i % 48, i, i * 7, i
    }'
}

# results_count FLEET: entries in the results stream.
results_count() { rcli XLEN "llmfleet:{${1:-default}}:results"; }

# results_at_least FLEET N: the stream holds at least N entries.
results_at_least() { [ "$(results_count "$1")" -ge "$2" ]; }
