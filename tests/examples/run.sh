#!/usr/bin/env bash
# The client examples of scripts/examples/ against a real fleet: a real
# redis-server, the fake API and 2 workers. For Python (Debian's
# python3-redis), Node (ioredis) and plain redis-cli: the producer pushes
# EXAMPLES_JOBS jobs (default 200) while the consumer follows the stream
# with XREAD BLOCK and must see exactly one result per id; for Python and
# Node, 2 group consumers (XREADGROUP + XACK) run in parallel while another
# batch goes through and must together print every result of the group
# exactly once, including those a dead consumer left unacknowledged
# (XAUTOCLAIM), and leave nothing pending. The clients connect as a
# least-privileged ACL user (scripts/examples/README.md), the producers of
# the second batch through a unix socket.
#
#   bash tests/examples/run.sh          (LLMFLEET_BIN defaults to ./bin)
#
# Installs what is missing: python3-redis and jq (apt-get), node_modules
# (npm ci in scripts/examples/node). Prints TAP-like lines and, last,
# "examples: N passed, N failed"; exits non-zero when any failed.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EX=$ROOT/scripts/examples
export LLMFLEET_BIN=${LLMFLEET_BIN:-$ROOT/bin}
N=${EXAMPLES_JOBS:-200}
PY=${EXAMPLES_PYTHON:-/usr/bin/python3}   # Debian's python3-redis is for Debian's python3
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
START_S=$SECONDS

# ---- dependencies ------------------------------------------------------------
apt_install() {
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=300)
    [ "$(id -u)" -eq 0 ] || apt=(sudo "${apt[@]}")
    export DEBIAN_FRONTEND=noninteractive
    "${apt[@]}" install "$@" >"$T/apt.log" 2>&1 ||
        { "${apt[@]}" update >>"$T/apt.log" 2>&1 && "${apt[@]}" install "$@" >>"$T/apt.log" 2>&1; } ||
        tail -n 20 "$T/apt.log"
}
if ! "$PY" -c 'import redis' 2>/dev/null; then
    echo "# installing python3-redis"
    apt_install python3-redis
fi
command -v jq >/dev/null || { echo "# installing jq"; apt_install jq; }
if ! command -v npm >/dev/null; then
    echo "# installing nodejs, npm"
    apt_install nodejs npm
fi
stamp=$EX/node/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$EX/node/package-lock.json" -nt "$stamp" ]; then
    echo "# npm ci in scripts/examples/node"
    (cd "$EX/node" && npm ci --silent --no-audit --no-fund) >"$T/npm.log" 2>&1 ||
        { cat "$T/npm.log"; }
fi
check "python3-redis importable by $PY" "$PY" -c 'import redis'
check "ioredis installed (npm ci)" test -f "$EX/node/node_modules/ioredis/package.json"
check "jq installed" test -n "$(command -v jq)"

# ---- the fleet ---------------------------------------------------------------
start_redis --unixsocket "$T/redis/redis.sock" --unixsocketperm 700 || exit 1
start_fakeapi || exit 1
start_worker w1
start_worker w2
check "fleet past its cold start" warm_up
RESULTS='llmfleet:{default}:results'

# The clients' own ACL user: what scripts/examples/README.md gives them.
CLIENT_PASS=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
# shellcheck disable=SC2046
rcli ACL SETUSER examples on ">$CLIENT_PASS" $(sed -n 's/^ *ACL SETUSER llmfleet-client on >PASSWORD //p' "$EX/README.md") >/dev/null
check "client ACL user created from the README's line" \
    test "$(rcli ACL GETUSER examples | grep -c 'xreadgroup')" -ge 1
export LLMFLEET_REDIS_URL="redis://examples:$CLIENT_PASS@127.0.0.1:$REDIS_PORT/0"
UNIX_URL="unix://$T/redis/redis.sock?db=0"
unset LLMFLEET_FLEET   # the default fleet, by each example's own default

# ---- helpers -----------------------------------------------------------------
not_running() { ! kill -0 "$1" 2>/dev/null; }

# bg OUT CMD...: CMD in the background, stdout to OUT, stderr to OUT.err;
# sets BG_PID (killed on exit with the fleet).
bg() {
    local out=$1; shift
    "$@" >"$out" 2>"$out.err" &
    BG_PID=$!
    PIDS+=("$BG_PID")
}

# wait_exit PID SECONDS: waits for PID with a deadline; sets RC (124 when
# it is still running at the deadline: it is killed then).
wait_exit() {
    if wait_until "$2" not_running "$1"; then
        wait "$1"; RC=$?
    else
        kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; RC=124
    fi
}

# last_id: the stream's newest entry id ("0" when empty).
last_id() { rcli XREVRANGE "$RESULTS" + - COUNT 1 | head -n 1 | grep . || echo 0; }

# seq_ids PREFIX N: the ids PREFIX-1 .. PREFIX-N, a line each.
seq_ids() { seq 1 "$2" | sed "s/^/$1-/"; }

# same_ids NAME EXPECTED_FILE JSONL...: the results' ids are exactly the
# expected ones, each once.
same_ids() {
    local name=$1 want=$2; shift 2
    local got; got=$(cat "$@" | jq -r '.id' | sort)
    local dup missing extra
    dup=$(uniq -d <<<"$got" | grep -c .)
    missing=$(comm -23 <(sort "$want") <(uniq <<<"$got") | grep -c .)
    extra=$(comm -13 <(sort "$want") <(uniq <<<"$got") | grep -c .)
    if [ "$dup$missing$extra" = 000 ]; then
        ok "$name"
    else
        fail "$name ($dup duplicated, $missing missing, $extra unexpected of $(grep -c . "$want"))"
    fi
}

# all_ok JSONL LANG: every result ok, with a response and its meta back.
all_ok() {
    jq -e -s --arg lang "$2" 'length > 0 and all(.[];
        .status == "ok" and .response.type == "message" and .attempts >= 1
        and (.stream_id | test("^[0-9]+-[0-9]+$"))
        and (.meta.n | type) == "number" and (.meta.n as $n | .id | endswith("-\($n)"))
        and ($lang == "" or .meta.lang == $lang))' "$1" >/dev/null
}

jq_true() { jq -e "$@" >/dev/null; }

# pending GROUP: entries the group delivered and nobody acknowledged.
pending() { rcli XPENDING "$RESULTS" "$1" | head -n 1; }
group_done() { # GROUP WANT FILES...: WANT lines printed and nothing pending
    local g=$1 want=$2; shift 2
    [ "$(cat "$@" | grep -c .)" -ge "$want" ] && [ "$(pending "$g")" = 0 ]
}

# group_ready GROUP WANT FILES...: consumers c1 and c2 known to the group
# and WANT lines printed.
group_ready() {
    local g=$1 want=$2; shift 2
    local names; names=$(rcli XINFO CONSUMERS "$RESULTS" "$g")
    grep -qx c1 <<<"$names" && grep -qx c2 <<<"$names" &&
        [ "$(cat "$@" | grep -c .)" -ge "$want" ]
}

EXPECTED_ALL=$T/expected-all.ids
: >"$EXPECTED_ALL"

# ---- one language ------------------------------------------------------------
# run_lang LANG PRODUCER CONSUMER GROUP_CONSUMER (commands as strings,
# word-split; GROUP_CONSUMER empty: none).
run_lang() {
    local lang=$1 producer=$2 consumer=$3 group=$4
    local d=$T/$lang id0 pid rc pfx
    mkdir -p "$d"
    echo "# $lang"

    # A consumer following the stream while a producer pushes N jobs.
    id0=$(last_id)
    # shellcheck disable=SC2086
    bg "$d/consumer.jsonl" $consumer --from "$id0" --count "$N" --timeout 60
    pid=$BG_PID
    pfx="$lang-a$RANDOM"
    seq_ids "$pfx" "$N" >"$d/a.ids"
    if [ "$lang" = redis-cli ]; then
        # Half generated (-n), half from a JSONL file on stdin.
        local half=$((N / 2))
        # shellcheck disable=SC2086
        $producer -n "$half" -p "$pfx" 2>"$d/producer.err" && \
            gen_jobs "$N" "$pfx" | tail -n +$((half + 1)) | $producer 2>>"$d/producer.err"
        rc=$?
        eq "$lang: producer exits 0" 0 "$rc"
        eq "$lang: producer reports $half + $((N - half)) pushed to llmfleet:{default}:jobs" \
            "pushed $half jobs to llmfleet:{default}:jobs
pushed $((N - half)) jobs to llmfleet:{default}:jobs" "$(cat "$d/producer.err")"
    else
        # shellcheck disable=SC2086
        $producer -n "$N" --prefix "$pfx" >"$d/producer.out" 2>"$d/producer.err"
        eq "$lang: producer exits 0" 0 "$?"
        check "$lang: producer prints the $N ids it pushed" diff -q "$d/a.ids" "$d/producer.out"
    fi
    cat "$d/a.ids" >>"$EXPECTED_ALL"
    wait_exit "$pid" 120
    eq "$lang: consumer (XREAD BLOCK) exits 0 after $N results" 0 "$RC"
    same_ids "$lang: consumer read exactly one result per id" "$d/a.ids" "$d/consumer.jsonl"
    if [ "$lang" = redis-cli ]; then
        check "$lang: results ok, response and meta as JSON" all_ok "$d/consumer.jsonl" ""
        check "$lang: non-ASCII meta comes back intact" \
            test "$(jq -r 'select(.meta.tag) | .meta.tag' "$d/consumer.jsonl" | sort -u)" = "tést"
    else
        check "$lang: results ok, response and meta as JSON, counts as numbers" \
            all_ok "$d/consumer.jsonl" "$lang"
    fi

    # The consumer resumes from a stream id: the rest after the first half.
    local mid; mid=$(sed -n "$((N / 2))p" "$d/consumer.jsonl" | jq -r .stream_id)
    # shellcheck disable=SC2086
    timeout 60 $consumer --from "$mid" --count $((N - N / 2)) >"$d/resume.jsonl" 2>"$d/resume.err"
    eq "$lang: consumer --from STREAM_ID resumes after it" \
        "$(tail -n +$((N / 2 + 1)) "$d/consumer.jsonl" | jq -r .id)" "$(jq -r .id "$d/resume.jsonl")"

    # "$" means results from now on; --timeout ends an idle wait with 1.
    # shellcheck disable=SC2086
    timeout 60 $consumer --from '$' --timeout 1 >"$d/idle.jsonl" 2>"$d/idle.err"
    eq "$lang: consumer --from \$ --timeout 1 on an idle stream exits 1, nothing printed" \
        "1 0" "$? $(grep -c . "$d/idle.jsonl")"

    [ -n "$group" ] || return 0

    # The group is created with MKSTREAM where the stream does not exist yet.
    # shellcheck disable=SC2086
    LLMFLEET_FLEET="empty-$lang" bg "$d/mk.jsonl" $group --group mk --count 1
    pid=$BG_PID
    if wait_until 20 sh -c "redis-cli -p $REDIS_PORT XINFO GROUPS 'llmfleet:{empty-$lang}:results' | grep -qx mk"; then
        ok "$lang: group consumer creates its group with MKSTREAM"
    else
        fail "$lang: group consumer creates its group with MKSTREAM"
    fi
    rcli XADD "llmfleet:{empty-$lang}:results" '*' id probe status ok >/dev/null
    wait_exit "$pid" 20
    eq "$lang: group consumer --count 1 prints the entry and exits 0" "0 probe" \
        "$RC $(jq -r .id "$d/mk.jsonl" 2>/dev/null)"
    eq "$lang: ... and acknowledged it" 0 \
        "$(rcli XPENDING "llmfleet:{empty-$lang}:results" mk | head -n 1)"
    # A consumer started again takes back what it read and did not
    # acknowledge (one entry of which was trimmed meanwhile), then goes on.
    local ek="llmfleet:{empty-$lang}:results" e1
    e1=$(rcli XADD "$ek" '*' id r1 status ok)
    rcli XADD "$ek" '*' id r2 status ok >/dev/null
    rcli XADD "$ek" '*' id r3 status ok >/dev/null
    rcli XREADGROUP GROUP mk again COUNT 2 STREAMS "$ek" '>' >/dev/null
    rcli XDEL "$ek" "$e1" >/dev/null
    # shellcheck disable=SC2086
    LLMFLEET_FLEET="empty-$lang" timeout 20 $group --group mk --name again --count 2 \
        >"$d/again.jsonl" 2>"$d/again.err"
    eq "$lang: restarted group consumer prints its own pending entry, then new ones" \
        "0 r2 r3 0" "$? $(jq -r .id "$d/again.jsonl" | tr '\n' ' ')$(rcli XPENDING "$ek" mk | head -n 1)"
    rcli DEL "$ek" >/dev/null

    # A group reading after id0: a dead consumer ("ghost") took 10 entries
    # and never acknowledged them; 2 consumers share the rest, the ghost's
    # entries (once idle 1 s) and a new batch pushed while they run.
    local g="g-$lang" ghost_n=10 p1 p2
    rcli XGROUP CREATE "$RESULTS" "$g" "$id0" >/dev/null
    eq "$lang: ghost holds $ghost_n unacknowledged entries" "$ghost_n" \
        "$(rcli XREADGROUP GROUP "$g" ghost COUNT "$ghost_n" STREAMS "$RESULTS" '>' >/dev/null; pending "$g")"
    # shellcheck disable=SC2086
    bg "$d/g1.jsonl" $group --group "$g" --name c1 --claim-idle-ms 1000; p1=$BG_PID
    # shellcheck disable=SC2086
    bg "$d/g2.jsonl" $group --group "$g" --name c2 --claim-idle-ms 1000; p2=$BG_PID
    # Both in the group and the first batch's rest taken (by either): then
    # both wait in XREADGROUP BLOCK, and Redis serves blocked readers in turn.
    check "$lang: both group consumers joined and took the first batch" \
        wait_until 30 group_ready "$g" $((N - ghost_n)) "$d/g1.jsonl" "$d/g2.jsonl"
    pfx="$lang-b$RANDOM"
    seq_ids "$pfx" "$N" >"$d/b.ids"
    # shellcheck disable=SC2086
    LLMFLEET_REDIS_URL=$UNIX_URL $producer -n "$N" --prefix "$pfx" >"$d/producer-b.out" 2>"$d/producer-b.err"
    eq "$lang: producer over a unix:// URL exits 0" 0 "$?"
    cat "$d/b.ids" >>"$EXPECTED_ALL"
    cat "$d/a.ids" "$d/b.ids" >"$d/group.ids"
    check "$lang: 2 group consumers print $((2 * N)) results, none pending" \
        wait_until 120 group_done "$g" $((2 * N)) "$d/g1.jsonl" "$d/g2.jsonl"
    kill -TERM "$p1" "$p2" 2>/dev/null
    wait_exit "$p1" 20; rc=$RC
    wait_exit "$p2" 20
    eq "$lang: group consumers stop on SIGTERM with status 0" "0 0" "$rc $RC"
    same_ids "$lang: the group read every result exactly once" "$d/group.ids" "$d/g1.jsonl" "$d/g2.jsonl"
    check "$lang: both consumers got a share ($(grep -c . "$d/g1.jsonl") + $(grep -c . "$d/g2.jsonl"))" \
        test -s "$d/g1.jsonl" -a -s "$d/g2.jsonl"
    check "$lang: the ghost's entries were claimed (XAUTOCLAIM)" \
        test "$(rcli XPENDING "$RESULTS" "$g" - + 100 ghost | grep -c .)" = 0
    eq "$lang: XPENDING ends at 0" 0 "$(pending "$g")"
    eq "$lang: no consumer wrote to stderr (warnings, errors)" "" \
        "$(cat "$d/consumer.jsonl.err" "$d/resume.err" "$d/mk.jsonl.err" "$d/again.err" "$d/g1.jsonl.err" "$d/g2.jsonl.err")"
    check "$lang: group results ok, each names its consumer" \
        jq_true -s 'all(.[]; .status == "ok" and (.consumer == "c1" or .consumer == "c2"))' \
        "$d/g1.jsonl" "$d/g2.jsonl"
}

run_lang python "$PY $EX/python/producer.py" "$PY $EX/python/consumer.py" \
    "$PY $EX/python/group_consumer.py"
run_lang node "node $EX/node/producer.mjs" "node $EX/node/consumer.mjs" \
    "node $EX/node/group_consumer.mjs"
run_lang redis-cli "$EX/redis-cli/push.sh" "$EX/redis-cli/follow.sh" ""

# ---- the whole stream, read by llmfleet itself ---------------------------------
echo "# all"
lf results >"$T/all.jsonl" 2>/dev/null
jq -c 'select(.id | startswith("warmup") | not)' "$T/all.jsonl" >"$T/all-examples.jsonl"
same_ids "llmfleet results: exactly one result per pushed id, nothing else" \
    "$EXPECTED_ALL" "$T/all-examples.jsonl"
eq "queue drained" 0 "$(rcli LLEN 'llmfleet:{default}:jobs')"
eq "no dead letter" 0 "$(rcli LLEN 'llmfleet:{default}:dead')"

finish || true
echo "# $((SECONDS - START_S)) s"
echo "examples: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
