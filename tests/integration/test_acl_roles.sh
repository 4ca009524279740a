# Per-fleet ACL users (scripts/acl-users.sh): each role reaches only its own
# fleet's keys, and only with its own commands. A worker and a producer run
# a fleet with them; a second fleet's keys stay out of reach, also from
# inside a script; a producer cannot read prompts or forge results; a
# consumer cannot push jobs or forge results.
. "$(dirname "$0")/lib.sh"

LLMFLEET_ACL=0 start_redis
start_fakeapi
pw() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }
for f in a b; do
    p=$(pw)
    eval "PW_$f=$p"
    sh "$(dirname "$0")/../../scripts/acl-users.sh" "$f" | sed "s/>CHANGE-ME/>$p/" |
        redis-cli -p "$REDIS_PORT" > "$T/acl-$f.out"
    eq "fleet $f: 4 users created" "OK OK OK OK" "$(tr '\n' ' ' < "$T/acl-$f.out" | sed 's/ $//')"
done
as() {   # ROLE FLEET COMMAND...: run a command as that fleet's role
    local role=$1 f=$2 p
    shift 2
    eval "p=\$PW_$f"
    redis-cli -p "$REDIS_PORT" --user "llmfleet-$f-$role" --pass "$p" --no-auth-warning "$@" 2>&1
}
url() { eval "echo redis://llmfleet-$2-$1:\$PW_$2@127.0.0.1:$REDIS_PORT/0"; }
# Refused: NOPERM, or inside a script "can't access at least one of the keys".
denied() { grep -q "NOPERM\|can't access\|No permissions" <<<"$(as "$@")"; }   # Redis | Valkey
allowed() { ! grep -q "NOPERM\|ERR" <<<"$(as "$@")"; }

# The fleet runs with its own users.
gen_jobs 20 r | "$BIN/llmfleet" submit - --fleet a --redis-url "$(url producer a)" 2>"$T/submit.err"
check "submit as the producer" grep -q "pushed 20" "$T/submit.err"
ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=$FAKE_URL \
    "$BIN/llmfleet" worker --fleet a --redis-url "$(url worker a)" --name wa >"$T/wa.log" 2>&1 &
PIDS+=("$!")
WA=$!
done20() { [ "$(as reader a XLEN 'llmfleet:{a}:results')" = 20 ]; }
check "the worker runs the fleet's 20 jobs" wait_until 30 done20
"$BIN/llmfleet" results --fleet a --redis-url "$(url reader a)" --out "$T/r.jsonl" 2>/dev/null
eq "the reader reads them" 20 "$(wc -l < "$T/r.jsonl")"
check "the operator (worker role) runs status" \
    sh -c "'$BIN/llmfleet' status --fleet a --redis-url '$(url worker a)' --json | jq -e '.done == 20' >/dev/null"

# Functions are server-wide: a fleet's worker may not load them (its code
# would run in every fleet's workers), so it runs the scripts as EVALSHA
# until an administrator loads this version's library; then as FCALL.
check "worker a without FUNCTION LOAD: its scripts ran as EVALSHA, and it said so" \
    grep -q 'event=redis_functions_unavailable error="NOPERM' "$T/wa.log"
check "worker a: FUNCTION LOAD refused" \
    denied worker a FUNCTION LOAD "$(printf '#!lua name=x\nredis.register_function("x", function() return 1 end)')"
check "an administrator loads the library" \
    sh -c "'$BIN/llmfleet' functions load --redis-url redis://127.0.0.1:$REDIS_PORT/0 | grep -q 'llmfleet_.* loaded'"
# Defence in depth: with the library loaded, a worker user without EVAL
# runs only llmfleet's functions (and the commands they call).
PW_f=$(pw)
sh "$(dirname "$0")/../../scripts/acl-users.sh" a llmfleet-f | head -1 |
    sed -e "s/>CHANGE-ME/>$PW_f/" -e 's/ +eval +evalsha +script|load//' | redis-cli -p "$REDIS_PORT" >/dev/null
check "the FCALL-only worker user cannot EVAL" denied worker f EVAL "return 1" 0
fcalls() { redis-cli -p "$REDIS_PORT" INFO commandstats | sed -n 's/^cmdstat_fcall:calls=\([0-9]*\),.*/\1/p'; }
kill -TERM "$WA"; wait "$WA"
before=$(fcalls)
gen_jobs 20 f | "$BIN/llmfleet" submit - --fleet a --redis-url "$(url producer a)" 2>/dev/null
ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=$FAKE_URL \
    "$BIN/llmfleet" worker --fleet a --redis-url "$(url worker f)" --name wa2 >"$T/wa2.log" 2>&1 &
PIDS+=("$!")
done40() { [ "$(as reader a XLEN 'llmfleet:{a}:results')" = 40 ]; }
check "a new worker a, as the FCALL-only user, runs 20 more jobs" wait_until 30 done40
check "... as FCALLs ($before before, $(fcalls) now)" test "$(fcalls)" -gt "${before:-0}"
check "... without falling back" sh -c "! grep -q event=redis_functions_unavailable '$T/wa2.log'"
check "... and status runs as that user (FCALL)" \
    sh -c "'$BIN/llmfleet' status --fleet a --redis-url '$(url worker f)' --json | jq -e '.done == 40' >/dev/null"

# Another fleet's keys are out of reach.
check "worker a: fleet b's queue refused" denied worker a LLEN 'llmfleet:{b}:jobs'
check "worker a: fleet b's results refused" denied worker a XRANGE 'llmfleet:{b}:results' - +
check "worker a: a script naming fleet b's key refused" \
    denied worker a EVAL "return redis.call('LLEN', KEYS[1])" 1 'llmfleet:{b}:jobs'
check "worker a: a script reaching fleet b's key undeclared refused" \
    denied worker a EVAL "return redis.call('LLEN', 'llmfleet:{b}:jobs')" 0
check "worker a: the old fleet-wide pattern is not granted (llmfleet:other)" denied worker a LLEN 'llmfleet:other'
check "producer a: fleet b's queue refused" denied producer a LPUSH 'llmfleet:{b}:jobs' x
# The producer: pushes, reads done and results, nothing else.
check "producer a: LPUSH allowed" allowed producer a LPUSH 'llmfleet:{a}:jobs' '{"id":"p"}'
check "producer a: cannot read the queue (prompts)" denied producer a LRANGE 'llmfleet:{a}:jobs' 0 -1
check "producer a: cannot forge a result" denied producer a XADD 'llmfleet:{a}:results' '*' id x
check "producer a: cannot run scripts" denied producer a EVAL "return 1" 0
check "producer a: cannot change the cap" denied producer a HSET 'llmfleet:{a}:limits' max_spend_usd 1e9
# The consumers.
check "reader a: cannot push jobs" denied reader a LPUSH 'llmfleet:{a}:jobs' x
check "reader a: cannot forge a result" denied reader a XADD 'llmfleet:{a}:results' '*' id x
check "group a: creates its group" allowed group a XGROUP CREATE 'llmfleet:{a}:results' g 0
check "group a: reads as a group member" allowed group a XREADGROUP GROUP g c1 COUNT 1 STREAMS 'llmfleet:{a}:results' '>'
check "group a: cannot forge a result" denied group a XADD 'llmfleet:{a}:results' '*' id x
check "group a: cannot delete the stream" denied group a DEL 'llmfleet:{a}:results'
check "group a: cannot push jobs" denied group a LPUSH 'llmfleet:{a}:jobs' x
finish
