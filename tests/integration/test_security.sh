# Security: the API key (a canary) never appears in logs at any level, in
# Redis (every key and value), in the AOF, in results or dead letters; the
# ACL user of scripts/redis-acl.txt gets NOPERM outside its commands and
# keys; the Redis password comes from the URL, LLMFLEET_REDIS_PASSWORD or a
# file and is never printed; http:// to a non-loopback host is refused.
. "$(dirname "$0")/lib.sh"

API_KEY="sk-ant-api03-CANARY$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
export API_KEY
start_redis --appendonly yes --appendfsync always
start_fakeapi --p500 0.1 --seed 4
{ gen_jobs 40 s; echo '{"id":"bad","request":{}}'; gen_jobs 2 nf gpt-4o; } | lf submit - --skip-invalid 2>/dev/null
rcli LPUSH 'llmfleet:{default}:jobs' 'not json at all' >/dev/null
LLMFLEET_LOG_LEVEL=debug start_worker w1 --log-level debug
check "jobs done" wait_until 30 results_at_least default 43
lf results --out "$T/results.jsonl" 2>/dev/null
lf dead list > "$T/dead.txt" 2>/dev/null
redis_dump > "$T/redis-dump.txt"
check "the Redis dump is not empty" test -s "$T/redis-dump.txt"
check "debug logging was on" grep -q "level=debug\|debug llmfleet" "$T/w1.log"
for f in "$T"/w1.log "$T/redis-dump.txt" "$T/results.jsonl" "$T/dead.txt"; do
    check "canary key not in $(basename "$f")" sh -c "! grep -qF '$API_KEY' '$f'"
done
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
check "canary key not in the AOF files" sh -c "! grep -rqF '$API_KEY' '$T/redis'"
check "the AOF holds the results (so the grep above saw data)" grep -rqa "claude-sonnet-4-5" "$T/redis"

# Every command the Lua scripts and their libraries call is allowed to the
# ACL user.
missing=$(grep -ho "rcall('[A-Z]*'\|bulk('[A-Z]*'" "$(dirname "$0")/../../scripts/lua/"*.lua \
        "$(dirname "$0")/../../scripts/lua/lib/"*.lua |
    sed "s/.*('//; s/'//" | tr A-Z a-z | sort -u | while read -r c; do
        grep -qE "(^| )\+$c( |\||$)" "$(dirname "$0")/../../scripts/redis-acl.txt" || echo "$c"; done)
eq "scripts use only commands of the ACL" "" "$missing"
acl() { redis-cli -p "$REDIS_PORT" --user llmfleet --pass "$REDIS_ACL_PASS" --no-auth-warning "$@" 2>&1; }
check "ACL: FLUSHALL is refused (NOPERM)" grep -q NOPERM <<<"$(acl FLUSHALL)"
check "ACL: CONFIG is refused" grep -q NOPERM <<<"$(acl CONFIG GET maxmemory)"
check "ACL: KEYS is refused" grep -q NOPERM <<<"$(acl KEYS '*')"
check "ACL: a key outside llmfleet:* is refused" grep -q NOPERM <<<"$(acl LPUSH other 1)"
check "ACL: its own keys are allowed" test "$(acl LLEN 'llmfleet:{default}:jobs')" = 0

# The Redis password: from the URL, LLMFLEET_REDIS_PASSWORD, or a file.
pw="s3cret-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
rcli CONFIG SET requirepass "$pw" >/dev/null
rcli() { redis-cli -p "$REDIS_PORT" -a "$pw" --no-auth-warning "$@"; }
plain="redis://127.0.0.1:$REDIS_PORT/0"
out=$(LLMFLEET_REDIS_PASSWORD=$pw "$BIN/llmfleet" status --redis-url "$plain" --json 2>&1)
check "LLMFLEET_REDIS_PASSWORD is used" jq -e '.queued == 0' <<<"$out"
printf '%s\n' "$pw" > "$T/pwfile"
out=$(LLMFLEET_REDIS_PASSWORD_FILE=$T/pwfile "$BIN/llmfleet" status --redis-url "$plain" --json 2>&1)
check "LLMFLEET_REDIS_PASSWORD_FILE is used" jq -e '.queued == 0' <<<"$out"
out=$("$BIN/llmfleet" status --redis-url "redis://:$pw@127.0.0.1:$REDIS_PORT/0" --json 2>&1)
check "a password in the URL is used" jq -e '.queued == 0' <<<"$out"
out=$("$BIN/llmfleet" status --redis-url "redis://:wrong-$pw@127.0.0.1:$REDIS_PORT/0" 2>&1); rc=$?
check "a wrong password fails clearly (exit $rc)" sh -c "[ $rc -ne 0 ] && grep -q 'refused AUTH' <<'E'
$out
E"
check "the wrong password is not printed" sh -c "! grep -qF '$pw' <<'E'
$out
E"
LLMFLEET_REDIS_PASSWORD=$pw ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=$FAKE_URL \
    "$BIN/llmfleet" worker --redis-url "$plain" --name pw --log-level debug >"$T/pw.log" 2>&1 &
pwpid=$!
PIDS+=("$pwpid")
gen_jobs 3 pw | LLMFLEET_REDIS_PASSWORD=$pw lf submit - 2>/dev/null
pwdone() { [ "$(rcli XLEN 'llmfleet:{default}:results')" -ge 46 ]; }
check "a worker authenticates with LLMFLEET_REDIS_PASSWORD" wait_until 20 pwdone
check "the Redis password is not in the worker log" sh -c "! grep -qF '$pw' '$T/pw.log'"

# Plain http:// is for loopback only.
out=$(ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=http://10.11.12.13:8080 \
      "$BIN/llmfleet" worker --redis-url "$plain" 2>&1); rc=$?
eq "http:// to a non-loopback host: exit 2" "2" "$rc"
check "and the message says why" grep -q "refusing plain http:// to a non-loopback host" <<<"$out"
check "and the key is not in it" sh -c "! grep -qF '$API_KEY' <<'E'
$out
E"
# Every configuration error exits 2 (systemd's unit does not restart on 2).
for bad in "ANTHROPIC_BASE_URL=ftp://api.example" "ANTHROPIC_API_KEY=$(printf 'a\nb')" \
           "LLMFLEET_LOG_FORMAT=yaml" "LLMFLEET_FLEET=a/b"; do
    env ANTHROPIC_API_KEY="$API_KEY" "$bad" "$BIN/llmfleet" worker --redis-url "$plain" \
        >/dev/null 2>&1
    eq "configuration error ${bad%%=*}: exit 2" "2" "$?"
done
finish
