# The key (a canary) does not leak through what comes back from the API,
# nor through the process: a gateway that quotes the refused key in its 401
# message, one that echoes the key in its answers (fake API --leak-key);
# a crashing worker (SIGABRT) writes no core unless --allow-core-dump, and its
# environment no longer holds the key once it runs.
. "$(dirname "$0")/lib.sh"

API_KEY="sk-ant-api03-CANARY$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export API_KEY
start_redis --appendonly yes --appendfsync always

# A gateway refusing the key, quoting it.
start_fakeapi --api-key "sk-ant-api03-SOMEONE-ELSE" --leak-key
gen_jobs 5 r | lf submit - --fleet refused 2>/dev/null
start_worker refused --fleet refused
check "refused: 5 results" wait_until 20 results_at_least refused 5
lf results --fleet refused --out "$T/refused.jsonl" 2>/dev/null
check "the gateway did quote the key (fake API log of the answer)" \
    sh -c "curl -s -H 'x-api-key: $API_KEY' -H 'content-type: application/json' \
           -d '{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}' \
           '$FAKE_URL/v1/messages' | grep -qF '$API_KEY'"
eq "refused: every result an authentication_error" 5 \
    "$(jq -r 'select(.error_type == "authentication_error") | .id' "$T/refused.jsonl" | wc -l)"
check "refused: the message says the key was redacted" \
    grep -qF "invalid x-api-key: [redacted]" "$T/refused.jsonl"

# A gateway echoing the key in its answers.
start_fakeapi --leak-key
gen_jobs 5 e | lf submit - --fleet echo 2>/dev/null
start_worker echo --fleet echo
check "echo: 5 results" wait_until 20 results_at_least echo 5
lf results --fleet echo --out "$T/echo.jsonl" 2>/dev/null
eq "echo: all ok" 5 "$(jq -r 'select(.status == "ok") | .id' "$T/echo.jsonl" | wc -l)"
check "echo: the key masked in the stored response" \
    grep -qF "key: $(printf '%*s' ${#API_KEY} '' | tr ' ' '*')" "$T/echo.jsonl"
check "echo: the worker said so" grep -q "event=key_in_response" "$T/echo.log"

redis_dump > "$T/redis-dump.txt"
lf dead list --fleet refused > "$T/dead.txt" 2>/dev/null
for f in "$T/redis-dump.txt" "$T/refused.jsonl" "$T/echo.jsonl" "$T/dead.txt" \
         "$T/refused.log" "$T/echo.log"; do
    check "canary key not in $(basename "$f")" sh -c "! grep -qF '$API_KEY' '$f'"
done
check "the dump holds the results (so the grep saw data)" grep -q "authentication_error" "$T/redis-dump.txt"
rcli BGREWRITEAOF >/dev/null
check "canary key not in the AOF" sh -c "! grep -rqaF '$API_KEY' '$T/redis'"
rcli CONFIG SET rdbcompression no >/dev/null       # so that a grep could see it
rcli SAVE >/dev/null
check "an RDB snapshot was written" test -s "$T/redis/dump.rdb"
check "canary key not in the RDB" sh -c "! grep -qaF '$API_KEY' '$T/redis/dump.rdb'"
check "the RDB holds the results (so the grep saw data)" grep -qa "authentication_error" "$T/redis/dump.rdb"

# Core files. The shell allows them (ulimit -c unlimited); the worker
# refuses them unless --allow-core-dump. The kernel writes a core as a
# file in the worker's directory when core_pattern is a plain name.
pattern=$(cat /proc/sys/kernel/core_pattern)
sanitized=0
readelf -d "$BIN/llmfleet" | grep -q 'libasan' && sanitized=1
core_worker() {   # DIR NAME ARGS...
    local dir=$1 name=$2
    shift 2
    mkdir -p "$dir"
    (cd "$dir" && ulimit -c unlimited &&
     exec env -u API_KEY ANTHROPIC_API_KEY="$API_KEY" ANTHROPIC_BASE_URL="$FAKE_URL" \
         "$BIN/llmfleet" worker --redis-url "$REDIS_URL" --fleet cores --name "$name" "$@") \
        >>"$T/$name.log" 2>&1 &
    WORKER_PID=$!
    PIDS+=("$WORKER_PID")
    wait_until 10 grep -q "event=prices_loaded" "$T/$name.log"
}
core_file() { ls "$1" | grep -q '^core'; }
core_worker "$T/c1" guarded
pid=$WORKER_PID
check "the key is gone from the worker's environment" \
    sh -c "! grep -qaF '$API_KEY' /proc/$pid/environ"
check "the worker is not dumpable" \
    sh -c "[ \"\$(stat -c %u /proc/$pid/environ)\" = 0 ] || ! cat /proc/$pid/environ >/dev/null 2>&1"
kill -ABRT "$pid"; wait "$pid" 2>/dev/null
check "a crash of the guarded worker writes no core" sh -c "! ls '$T/c1' | grep -q '^core'"
case $pattern in
'|'*|*/*) echo "# core_pattern '$pattern' is not a file in the cwd: no positive control" ;;
*)
    if [ "$sanitized" = 1 ]; then
        echo "# sanitizer build (ASan turns cores off itself): no positive control"
    else
        core_worker "$T/c2" allowed --allow-core-dump
        kill -ABRT "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null
        check "with --allow-core-dump the same crash does write a core" \
            wait_until 10 core_file "$T/c2"
    fi
    ;;
esac
rm -rf "$T/c1" "$T/c2"
finish
