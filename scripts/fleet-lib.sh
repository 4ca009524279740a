# fleet-lib.sh — start and stop the pieces of a local fleet (sourced, bash).
# Used by the integration tests, the demo and the benchmarks: a real
# redis-server on a free loopback port, the fake API, workers. Everything
# started is killed on exit. Needs BIN (the bin/ directory) and T (a temp
# dir owned by the caller).
PIDS=()
WPIDS=()
FLEET_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

fleet_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
} 2>/dev/null

# now_ms: the wall clock, read without a process (bash's
# EPOCHREALTIME; its decimal mark is the locale's).
now_ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $(( t / 1000 )); }

# wait_until SECONDS CMD...: poll CMD until it succeeds or the deadline
# passes (returns 1 then): every 50 ms for the first 5 s, then every 100 ms,
# and every 200 ms after 30 s (WAIT_POLL seconds, when set, throughout).
# Each poll starts a few processes: at a steady 50 ms, five of
# test_workloads' waiting cases alone kept both CPUs of this machine busy
# (55 % of it in the kernel), the fleets under test among them.
wait_until() {
    local t=${EPOCHREALTIME//[!0-9]/}
    local t0=$t deadline=$(( t + $1 * 1000000 )); shift
    while ! "$@" >/dev/null 2>&1; do
        t=${EPOCHREALTIME//[!0-9]/}
        [ "$t" -lt "$deadline" ] || return 1
        if [ -n "${WAIT_POLL:-}" ]; then sleep "$WAIT_POLL"
        elif [ $(( t - t0 )) -lt 5000000 ]; then sleep 0.05
        elif [ $(( t - t0 )) -lt 30000000 ]; then sleep 0.1
        else sleep 0.2; fi
    done
}

# start_redis [redis-server options...]: sets REDIS_PORT, REDIS_URL,
# REDIS_PID. Unless LLMFLEET_ACL=0, llmfleet runs as the least-privileged
# user of scripts/redis-acl.txt (the README's ACL SETUSER line); rcli stays
# the default user, for inspection. REDIS_WRAP (words) goes before
# redis-server, e.g. "env LD_PRELOAD=..."; LLMFLEET_REDIS_SERVER runs
# another server binary (tests/valkey/run.sh: Valkey).
start_redis() {
    local port pid
    mkdir -p "$T/redis"
    REDIS_ACL_PASS=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    REDIS_ARGS=(--bind 127.0.0.1 --dir "$T/redis" --save '' --appendonly no
                --logfile "$T/redis/redis.log")
    REDIS_ARGS+=("$@")
    for _ in 1 2 3 4 5; do
        port=$("$BIN/freeport")
        ${REDIS_WRAP:-} "${LLMFLEET_REDIS_SERVER:-redis-server}" --port "$port" "${REDIS_ARGS[@]}" &
        pid=$!
        if wait_until 10 redis-cli -p "$port" ping; then
            PIDS+=("$pid")
            REDIS_PID=$pid
            REDIS_PORT=$port
            REDIS_URL="redis://127.0.0.1:$port/0"
            if [ "${LLMFLEET_ACL:-1}" = 1 ]; then
                redis_acl_user
                REDIS_URL="redis://llmfleet:$REDIS_ACL_PASS@127.0.0.1:$port/0"
            fi
            export REDIS_URL
            return 0
        fi
        kill -9 "$pid" 2>/dev/null
    done
    echo "cannot start redis-server" >&2
    return 1
}

redis_acl_user() {
    # shellcheck disable=SC2046
    redis-cli -p "$REDIS_PORT" ACL SETUSER llmfleet on ">$REDIS_ACL_PASS" \
        $(cat "$FLEET_LIB_DIR/redis-acl.txt") >/dev/null
}

# stop_redis: SHUTDOWN (the AOF, when on, is synced); start_redis_again:
# the same port, directory and options.
stop_redis() {
    redis-cli -p "$REDIS_PORT" SHUTDOWN >/dev/null 2>&1
    wait "$REDIS_PID" 2>/dev/null
}
start_redis_again() {
    ${REDIS_WRAP:-} "${LLMFLEET_REDIS_SERVER:-redis-server}" --port "$REDIS_PORT" "${REDIS_ARGS[@]}" &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    wait_until 10 redis-cli -p "$REDIS_PORT" ping || return 1
    if [ "${LLMFLEET_ACL:-1}" = 1 ]; then redis_acl_user; fi
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

# start_fakeapi ARGS...: sets FAKE_URL and FAKE_PID.
start_fakeapi() {
    local pf="$T/fake.$RANDOM.port"
    "$BIN/llmfleet-fakeapi" --port-file "$pf" --api-key "$API_KEY" "$@" \
        >>"$T/fakeapi.log" 2>&1 &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    if ! wait_until 10 test -s "$pf"; then
        echo "fake API did not start:" >&2
        cat "$T/fakeapi.log" >&2
        return 1
    fi
    FAKE_URL="http://127.0.0.1:$(cat "$pf")"
    export FAKE_URL
}

fake_stats() { curl -s "$FAKE_URL/_stats"; }
# fake_config JSON: change the fake API's settings at run time (POST /_config).
fake_config() { curl -s -X POST -d "$1" "$FAKE_URL/_config" >/dev/null; }

# start_worker NAME ARGS...: a worker in the background, log in $T/NAME.log;
# sets WORKER_PID. LLMFLEET_WRAP runs it under a wrapper (make
# test-valgrind: valgrind, whose reports land in the log).
start_worker() {
    local name=$1; shift
    # shellcheck disable=SC2086
    ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=$FAKE_URL \
        ${LLMFLEET_WRAP:-} "$BIN/llmfleet" worker --redis-url "$REDIS_URL" --name "$name" "$@" \
        >>"$T/$name.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
    WPIDS+=("$WORKER_PID")
}

# workers_stop [SECONDS]: SIGTERM the workers start_worker started and wait
# up to SECONDS (30) for them to drain and exit (a wrapper's exit checks,
# valgrind's leak check, run then; cleanup's SIGKILL skips them).
workers_stop() {
    local p deadline=$(( $(now_ms) + ${1:-30} * 1000 ))
    for p in "${WPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${WPIDS[@]}"; do
        while running "$p" && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.1; done
        running "$p" && echo "# worker $p still running after ${1:-30} s: killed at the cleanup, unchecked at exit"
    done
    return 0
}
# running PID: the process runs (a child that exited and was not waited for
# is a zombie: kill -0 still finds it).
running() {
    local s
    s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "${s:0:1}" != Z ]
}

lf() { "$BIN/llmfleet" "$1" --redis-url "$REDIS_URL" "${@:2}"; }
