#!/usr/bin/env bash
# CI test of docker/Dockerfile, docker/build-base.sh and docker-compose.yml:
# real images, a real engine, a real fleet of 3 worker containers against the
# fake API container, all on the compose project's own bridge network.
#
#   bash tests/containers/test_compose.sh
#
# Needs root on a Debian 12 machine. Installs docker.io, docker-compose,
# debootstrap and nftables when missing (apt-get; no daemon is started by the
# install). When no engine answers, it starts its own dockerd with its state in a
# temporary directory, after saving the iptables rules and forwarding sysctls
# the engine changes, and at the end stops it and puts those back. With an
# engine already running it uses that one and leaves its settings alone.
# Images are tagged with a per-run tag and removed at the end, as is the
# base image when this run built it.
#
# Environment: CONTAINERS_KEEP=1 keeps the images, and the daemon this run
# started (its socket and data stay in the printed directory);
# CONTAINERS_JOBS (400) jobs in the first round, CONTAINERS_LOAD_JOBS (1000)
# in the SIGTERM-under-load round.
#
# Output: TAP-like `ok - ...` / `not ok - ...`, `# ...` notes, and a last
# line `containers: N passed, N failed[, N skipped]`; exit 1 on any failure.
# Every wait has a deadline.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
JOBS=${CONTAINERS_JOBS:-400}
LOAD_JOBS=${CONTAINERS_LOAD_JOBS:-1000}
KEEP=${CONTAINERS_KEEP:-0}
TAG=ci-$$
PROJECT=llmfleetci$$
BASE_IMAGE=llmfleet-base:bookworm
RESULTS_KEY='llmfleet:{default}:results'
JOBS_KEY='llmfleet:{default}:jobs'
T0=$SECONDS

PASS=0 FAIL=0
ok()     { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
note()   { echo "# $*"; }
check()  { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

TMP=$(mktemp -d /tmp/llmfleet-containers.XXXXXX)
chmod 755 "$TMP"

# wait_until SECONDS CMD...: run CMD every 0.5 s until it succeeds; 1 on timeout.
wait_until() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.5
    done
}

SKIPPED=0
skip_all() {
    note "$*"
    SKIPPED=1
    echo "containers: 0 passed, 0 failed, 1 skipped"
    rm -rf "$TMP"
    exit 0
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (apt-get, dockerd, debootstrap)"

# ---- packages ------------------------------------------------------------------
missing=""
# nftables: its nft tool deletes the tables the engine created (iptables can
# only empty them).
for p in docker.io docker-compose debootstrap nftables; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    note "installing$missing"
    # No service may start from a package's postinst: this script decides
    # whether a daemon runs and stops what it started.
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    # shellcheck disable=SC2086
    if ! { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
               --no-install-recommends $missing; } > "$TMP/apt.log" 2>&1; then
        [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
        tail -n 20 "$TMP/apt.log"
        skip_all "cannot install$missing (apt-get failed, log above)"
    fi
    [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# Debian's client, matching Debian's engine (another `docker` earlier in PATH
# may be a newer client that wants buildx for BuildKit builds).
DOCKER=${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || command -v docker )}
export DOCKER DOCKER_BUILDKIT=1
unset DOCKER_CONTEXT

# ---- the engine ------------------------------------------------------------------
STARTED_DOCKERD=0 DOCKERD_PID="" NET_SAVED=0
SYSCTLS="net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/ipv6/conf/default/forwarding
net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables"

save_net() {
    iptables-save  > "$TMP/ipt4.before" 2>/dev/null || :
    ip6tables-save > "$TMP/ipt6.before" 2>/dev/null || :
    if command -v nft >/dev/null 2>&1; then nft list tables > "$TMP/nft.before" 2>/dev/null || :; fi
    : > "$TMP/sysctl.before"
    for s in $SYSCTLS; do
        [ -r "/proc/sys/$s" ] && echo "$s $(cat "/proc/sys/$s")" >> "$TMP/sysctl.before"
    done
    ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' > "$TMP/links.before"
    # Directories the engine creates outside its own (plugin discovery,
    # containerd shim sockets, /etc/docker/key.json): removed at the end if new.
    : > "$TMP/rundirs.new"
    for d in /run/docker /run/containerd /etc/docker/key.json; do
        [ -e "$d" ] || echo "$d" >> "$TMP/rundirs.new"
    done
    NET_SAVED=1
}

# Each table the engine touched goes back to its saved contents; a table that
# did not exist before is emptied (ACCEPT policies, no rules, no chains), and
# deleted outright when the nft tool is there to do it.
restore_iptables() { # restore_iptables SAVE_CMD RESTORE_CMD SAVED_FILE FAMILY
    local save=$1 restore=$2 saved=$3 family=$4 now t
    command -v "$save" >/dev/null 2>&1 || return 0
    now=$("$save" 2>/dev/null) || return 0
    for t in $(printf '%s\n' "$now" | sed -n 's/^\*//p'); do
        if grep -q "^\*$t\$" "$saved"; then
            sed -n "/^\*$t\$/,/^COMMIT\$/p" "$saved"
        else
            echo "*$t"
            printf '%s\n' "$now" | sed -n "/^\*$t\$/,/^COMMIT\$/p" |
                awk '/^:/ && $2 != "-" { print $1 " ACCEPT [0:0]" }'
            echo "COMMIT"
        fi
    done > "$TMP/$family.restore"
    "$restore" < "$TMP/$family.restore" || echo "# $restore failed"
    if command -v nft >/dev/null 2>&1 && [ -f "$TMP/nft.before" ]; then
        for t in $(printf '%s\n' "$now" | sed -n 's/^\*//p'); do
            grep -q "^\*$t\$" "$saved" && continue
            grep -qx "table $family $t" "$TMP/nft.before" && continue
            nft delete table "$family" "$t" 2>/dev/null || :
        done
    fi
}

restore_net() {
    [ "$NET_SAVED" = 1 ] || return 0
    restore_iptables iptables-save iptables-restore "$TMP/ipt4.before" ip
    restore_iptables ip6tables-save ip6tables-restore "$TMP/ipt6.before" ip6
    while read -r s v; do
        [ "$(cat "/proc/sys/$s" 2>/dev/null)" = "$v" ] || echo "$v" > "/proc/sys/$s"
    done < "$TMP/sysctl.before"
    # The engine leaves its docker0 bridge behind when it stops.
    for l in $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        case $l in docker0 | br-* | veth*) ;; *) continue ;; esac
        grep -qx "$l" "$TMP/links.before" || ip link delete "$l" 2>/dev/null || :
    done
    local d
    while read -r d; do
        if [ "$d" = /etc/docker/key.json ]; then
            rm -f "$d"
        # Only directories and sockets are expected in the others.
        elif [ -d "$d" ] && [ -z "$(find "$d" ! -type d ! -type s)" ]; then
            rm -rf "$d"
        fi
    done < "$TMP/rundirs.new"
}

start_dockerd() {
    command -v dockerd >/dev/null 2>&1 || { echo "no dockerd binary"; return 1; }
    save_net
    # Everything of this engine lives in $TMP: state, images, sockets.
    mkdir -p "$TMP/engine/data" "$TMP/engine/exec"
    setsid dockerd --data-root "$TMP/engine/data" --exec-root "$TMP/engine/exec" \
        --pidfile "$TMP/engine/dockerd.pid" -H "unix://$TMP/engine/docker.sock" \
        > "$TMP/dockerd.log" 2>&1 < /dev/null &
    DOCKERD_PID=$!
    STARTED_DOCKERD=1
    export DOCKER_HOST="unix://$TMP/engine/docker.sock"
    wait_until 60 eval '"$DOCKER" info > /dev/null 2>&1 || ! kill -0 "$DOCKERD_PID" 2>/dev/null'
    if "$DOCKER" info > /dev/null 2>&1; then
        DOCKERD_PID=$(cat "$TMP/engine/dockerd.pid" 2>/dev/null || echo "$DOCKERD_PID")
    else
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            echo "dockerd did not answer within 60 s"
        else
            echo "dockerd exited"
        fi
        echo "its log says:"
        grep -E 'level=(error|fatal)|failed' "$TMP/dockerd.log" | tail -n 8
        return 1
    fi
}

stop_dockerd() {
    [ "$STARTED_DOCKERD" = 1 ] || return 0
    if [ "$KEEP" = 1 ]; then
        note "CONTAINERS_KEEP=1: dockerd (pid $DOCKERD_PID) keeps running: DOCKER_HOST=$DOCKER_HOST"
        return 0
    fi
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID"
        if ! wait_until 60 eval '! kill -0 "$DOCKERD_PID" 2>/dev/null'; then
            note "dockerd did not stop within 60 s: SIGKILL"
            kill -KILL "$DOCKERD_PID" 2>/dev/null
        fi
    fi
    wait "$DOCKERD_PID" 2>/dev/null
    wait_until 30 eval '! kill -0 "$DOCKERD_PID" 2>/dev/null' || note "dockerd $DOCKERD_PID still alive"
    # Its containerd goes with it; anything of this engine still mounted is
    # unmounted before its directory goes.
    local m
    for m in $(findmnt -rn -o TARGET | grep "^$TMP/" | sort -r); do umount -l "$m" 2>/dev/null; done
    restore_net
    STARTED_DOCKERD=0
}

# ---- compose -----------------------------------------------------------------------
# The test's own settings, whatever the caller's shell or an .env file says:
# never a real key, never a real URL.
: > "$TMP/empty.env"
dc() {
    local t=$1; shift
    timeout "$t" env -u LLMFLEET_REDIS_URL -u LLMFLEET_FLEET -u LLMFLEET_CONCURRENCY \
        -u COMPOSE_FILE -u COMPOSE_PROJECT_NAME -u LLMFLEET_REDIS_TLS_ADDR \
        -u LLMFLEET_REDIS_TLS_NAME \
        LLMFLEET_REDIS_URL="${DC_REDIS_URL:-redis://redis:6379/0}" LLMFLEET_TLS_DIR="$TMP/tls" \
        COMPOSE_PROFILES="${PROFILES:-fake}" LLMFLEET_TAG="$TAG" \
        LLMFLEET_BASE_IMAGE="$BASE_IMAGE" \
        ANTHROPIC_BASE_URL=http://fakeapi:8080 ANTHROPIC_API_KEY=ci-not-a-key \
        FAKEAPI_LATENCY_MS=500 FAKEAPI_PER_TOKEN_MS=0 \
        docker-compose --env-file "$TMP/empty.env" -f "$ROOT/docker-compose.yml" \
        -p "$PROJECT" "$@"
}

BUILT_BASE=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "${DOCKER_OK:-}" ]; then
        if [ "$KEEP" = 1 ]; then
            note "CONTAINERS_KEEP=1: project $PROJECT and images :$TAG kept"
        else
            PROFILES=fake,cli,tls dc 120 down -v --remove-orphans > "$TMP/down.log" 2>&1 ||
                { note "compose down failed:"; tail -n 5 "$TMP/down.log"; }
            "$DOCKER" rmi "llmfleet:$TAG" "llmfleet-fakeapi:$TAG" "llmfleet-redis:$TAG" \
                "llmfleet-tunnel:$TAG" > /dev/null 2>&1
            [ "$BUILT_BASE" = 1 ] && "$DOCKER" rmi "$BASE_IMAGE" > /dev/null 2>&1
            # Build cache only when the engine is this run's own.
            [ "$STARTED_DOCKERD" = 1 ] && "$DOCKER" builder prune -af > /dev/null 2>&1
        fi
    fi
    if [ "$STARTED_DOCKERD" = 1 ] && [ "$KEEP" != 1 ]; then
        local pid=$DOCKERD_PID
        stop_dockerd
        local left=""
        kill -0 "$pid" 2>/dev/null && left="$left dockerd"
        pgrep -f "containerd --config $TMP/" > /dev/null && left="$left containerd"
        findmnt -rn -o TARGET | grep -q "^$TMP/" && left="$left mounts"
        ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' |
            grep -E '^(docker0|br-|veth)' | grep -vxFf "$TMP/links.before" > /dev/null &&
            left="$left bridges"
        iptables-save 2>/dev/null | norm_ipt > "$TMP/ipt4.after"
        norm_ipt < "$TMP/ipt4.before" | cmp -s - "$TMP/ipt4.after" || left="$left iptables"
        ip6tables-save 2>/dev/null | norm_ipt > "$TMP/ipt6.after"
        norm_ipt < "$TMP/ipt6.before" | cmp -s - "$TMP/ipt6.after" || left="$left ip6tables"
        while read -r s v; do
            [ "$(cat "/proc/sys/$s")" = "$v" ] || left="$left $s"
        done < "$TMP/sysctl.before"
        while read -r d; do [ -e "$d" ] && left="$left $d"; done < "$TMP/rundirs.new"
        if [ -z "$left" ]; then
            ok "teardown: project down, images removed, dockerd stopped; iptables, forwarding sysctls and links as before"
        else
            not_ok "teardown: left behind:$left"
        fi
    elif [ -n "${DOCKER_OK:-}" ] && [ "$KEEP" != 1 ]; then
        if [ -z "$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT")" ] &&
           ! "$DOCKER" volume ls -q | grep -q "^${PROJECT}_"; then
            ok "teardown: no container or volume of the project left"
        else
            not_ok "teardown: containers or volumes of $PROJECT left"
        fi
    else
        stop_dockerd
    fi
    if [ "$KEEP" = 1 ] && [ -n "$DOCKERD_PID" ]; then
        note "state kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    [ "$SKIPPED" = 1 ] && exit 0
    note "total $((SECONDS - T0)) s"
    echo "containers: $PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ] && [ "$rc" = 0 ] && exit 0
    exit 1
}

# iptables-save output without comments, and without the tables that hold
# nothing (built-in chains with ACCEPT policies only): what a table that did
# not exist before is restored to when it cannot be deleted.
norm_ipt() {
    awk '/^#/ { next }
         /^\*/ { blk = $0 "\n"; empty = 1; next }
         /^COMMIT/ { if (!empty) printf "%sCOMMIT\n", blk; blk = ""; next }
         { blk = blk $0 "\n"; if (!($0 ~ /^:/ && $2 == "ACCEPT")) empty = 0 }'
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! "$DOCKER" info > /dev/null 2>&1; then
    if ! start_dockerd > "$TMP/why" 2>&1; then
        why=$(cat "$TMP/why")
        stop_dockerd
        skip_all "this machine cannot run containers: $why"
    fi
    note "started dockerd (pid $DOCKERD_PID, state in $TMP/engine)"
else
    note "using the running engine ($("$DOCKER" version -f '{{.Server.Version}}' 2>/dev/null))"
fi
DOCKER_OK=1

# ---- images ------------------------------------------------------------------------
"$DOCKER" image inspect "$BASE_IMAGE" > /dev/null 2>&1 || BUILT_BASE=1
t=$SECONDS
if timeout 900 sh "$ROOT/docker/build-base.sh" "$BASE_IMAGE" > "$TMP/base.log" 2>&1; then
    ok "base image $BASE_IMAGE ($( [ "$BUILT_BASE" = 1 ] && echo "debootstrap + import, $((SECONDS - t)) s" || echo "present"))"
else
    not_ok "base image $BASE_IMAGE"; sed 's/^/#   /' "$TMP/base.log" | tail -n 20
    exit 1
fi

build() { # build TARGET IMAGE
    timeout 1200 "$DOCKER" build --progress=plain -f "$ROOT/docker/Dockerfile" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" --target "$1" -t "$2" "$ROOT" \
        > "$TMP/build-$1.log" 2>&1
}
t=$SECONDS
for target in runtime:llmfleet fakeapi:llmfleet-fakeapi redis:llmfleet-redis tunnel:llmfleet-tunnel; do
    if build "${target%%:*}" "${target#*:}:$TAG"; then
        ok "docker build --target ${target%%:*} (${target#*:}:$TAG)"
    else
        not_ok "docker build --target ${target%%:*}"
        grep -v '^#[0-9]* sha256' "$TMP/build-${target%%:*}.log" | tail -n 25 | sed 's/^/#   /'
        exit 1
    fi
done
note "images built in $((SECONDS - t)) s"
size=$("$DOCKER" image inspect -f '{{.Size}}' "llmfleet:$TAG")
note "runtime image llmfleet:$TAG: $((size / 1000000)) MB ($size bytes; base $(( $("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE") / 1000000 )) MB)"

check "docker-compose config -q" dc 60 config -q

# No library missing in the runtime images, and they run as a non-root user.
for img in llmfleet:$TAG:/usr/local/bin/llmfleet llmfleet-fakeapi:$TAG:/usr/local/bin/llmfleet-fakeapi; do
    image=${img%:*}; bin=${img##*:}
    if out=$(timeout 60 "$DOCKER" run --rm --entrypoint ldd "$image" "$bin" 2>&1) &&
       ! printf '%s\n' "$out" | grep -q 'not found'; then
        ok "ldd $bin in $image: every library found"
    else
        not_ok "ldd $bin in $image"; printf '%s\n' "$out" | grep 'not found' | sed 's/^/#   /'
    fi
done
uid=$(timeout 60 "$DOCKER" run --rm --entrypoint id "llmfleet:$TAG" -u 2>&1)
check "runtime image runs as a non-root user (uid $uid)" eval '[[ $uid =~ ^[1-9][0-9]*$ ]]'
env_in_image=$("$DOCKER" image inspect -f '{{join .Config.Env " "}}' "llmfleet:$TAG")
check "no API key, base URL or Redis URL in the image's environment" \
    eval '! printf "%s" "$env_in_image" | grep -Eq "ANTHROPIC|LLMFLEET_REDIS"'

# ---- the fleet -----------------------------------------------------------------------
if dc 180 up -d --no-build --scale worker=3 > "$TMP/up.log" 2>&1; then
    ok "docker-compose up -d --scale worker=3 (redis, fakeapi, 3 workers)"
else
    not_ok "docker-compose up -d --scale worker=3"; tail -n 20 "$TMP/up.log" | sed 's/^/#   /'
    exit 1
fi
REDIS_CID=$(dc 30 ps -q redis)
workers() { dc 30 ps -q worker; }
rcli() { timeout 20 "$DOCKER" exec "$REDIS_CID" redis-cli "$@"; }
n_running() {
    local n=0 c
    for c in $(workers); do
        [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$c")" = true ] && n=$((n + 1))
    done
    echo "$n"
}
check "3 worker containers running" wait_until 30 eval '[ "$(n_running)" = 3 ]'

# The worker adds --allow-insecure-http for the fake API only: plain http to
# any other host is refused (exit 2) before it connects anywhere.
out=$(dc 60 run --rm --no-deps -T -e ANTHROPIC_BASE_URL=http://redis:6379 worker 2>&1); rc=$?
check "worker refuses plain http to a host other than the fake API (exit $rc)" \
    eval '[ "$rc" = 2 ] && printf "%s" "$out" | grep -q "refusing plain http"'

# jobs FILE PREFIX N: N small jobs with ids PREFIX-1..N and a meta to echo.
jobs() {
    local i
    for i in $(seq 1 "$3"); do
        printf '{"id":"%s-%d","request":{"model":"claude-haiku-4-5","max_tokens":24,"messages":[{"role":"user","content":"container job %d"}]},"meta":{"n":%d}}\n' \
            "$2" "$i" "$i" "$i"
    done > "$1"
}

# verify N: the results stream, read with `llmfleet results` from a one-off
# container, holds exactly one ok result per submitted id, meta echoed.
verify() {
    local want=$1
    if ! dc 120 run --rm -T cli results > "$TMP/results.jsonl" 2> "$TMP/results.err"; then
        echo "llmfleet results failed: $(tail -n 3 "$TMP/results.err")"; return 1
    fi
    sed -n 's/^{"id":"\([^"]*\)","status":"\([^"]*\)".*/\1 \2/p' "$TMP/results.jsonl" > "$TMP/got"
    local lines parsed uniq okc
    lines=$(wc -l < "$TMP/results.jsonl"); parsed=$(wc -l < "$TMP/got")
    uniq=$(cut -d' ' -f1 "$TMP/got" | sort -u | wc -l)
    okc=$(grep -c ' ok$' "$TMP/got")
    cat "$TMP"/submitted-* | sed 's/^{"id":"\([^"]*\)".*/\1/' | sort > "$TMP/want"
    cut -d' ' -f1 "$TMP/got" | sort > "$TMP/have"
    echo "$lines results, $uniq distinct ids, $okc ok, $want submitted"
    [ "$lines" = "$parsed" ] && [ "$lines" = "$want" ] && [ "$uniq" = "$want" ] &&
        [ "$okc" = "$want" ] && cmp -s "$TMP/want" "$TMP/have" &&
        grep -q '"id":"a-7",.*"meta":{"n":7}' "$TMP/results.jsonl"
}

jobs "$TMP/submitted-a" a "$JOBS"
t=$SECONDS
if dc 300 run --rm -T cli submit - --wait < "$TMP/submitted-a" > "$TMP/submit-a.log" 2>&1; then
    ok "submit $JOBS jobs --wait from a one-off container ($((SECONDS - t)) s: $(tail -n 1 "$TMP/submit-a.log"))"
else
    not_ok "submit $JOBS jobs --wait"; tail -n 5 "$TMP/submit-a.log" | sed 's/^/#   /'
fi
if msg=$(verify "$JOBS"); then ok "exactly one ok result per job id ($msg)"; else not_ok "one result per job id: $msg"; fi

healthy() {
    local c
    for c in $(workers) $(dc 30 ps -q fakeapi) "$REDIS_CID"; do
        [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$c")" = healthy ] || return 1
    done
}
check "health checks: redis, fakeapi and the 3 workers healthy" wait_until 90 healthy

# SIGTERM under load: stop the workers while jobs are in flight; each must
# drain and exit 0; started again, the fleet finishes every job, once.
jobs "$TMP/submitted-b" b "$LOAD_JOBS"
dc 120 run --rm -T cli submit - < "$TMP/submitted-b" > "$TMP/submit-b.log" 2>&1 ||
    { not_ok "submit $LOAD_JOBS jobs"; tail -n 5 "$TMP/submit-b.log" | sed 's/^/#   /'; }
wait_until 60 eval '[ "$(rcli XLEN "$RESULTS_KEY")" -ge $((JOBS + 100)) ]' ||
    note "fewer than 100 results of the second round after 60 s"
queued=$(rcli LLEN "$JOBS_KEY")
t=$SECONDS
dc 120 stop worker > "$TMP/stop.log" 2>&1
codes=""
for c in $(workers); do codes="$codes $("$DOCKER" inspect -f '{{.State.ExitCode}}' "$c")"; done
drained=$(dc 30 logs --no-color worker 2>/dev/null | grep -c 'event=draining .*in_flight=[1-9]')
check "docker-compose stop worker under load: every worker exits 0 on SIGTERM (exit codes:$codes; $queued jobs queued, $drained workers drained requests in flight, $((SECONDS - t)) s)" \
    eval '[ -n "$codes" ] && [ -z "$(printf "%s\n" $codes | grep -vx 0)" ]'

dc 120 up -d --no-build --scale worker=3 > "$TMP/up2.log" 2>&1
total=$((JOBS + LOAD_JOBS))
if wait_until 180 eval '[ "$(rcli XLEN "$RESULTS_KEY")" -ge "$total" ] && [ "$(rcli LLEN "$JOBS_KEY")" = 0 ]'; then
    ok "restarted workers finish the queue ($total results)"
else
    not_ok "restarted workers finish the queue (results $(rcli XLEN "$RESULTS_KEY") / $total)"
fi
if msg=$(verify "$total"); then ok "exactly one ok result per job id after the SIGTERM ($msg)"; else not_ok "one result per job id after the SIGTERM: $msg"; fi

dc 120 stop worker > "$TMP/stop2.log" 2>&1
codes=""
for c in $(workers); do codes="$codes $("$DOCKER" inspect -f '{{.State.ExitCode}}' "$c")"; done
check "docker-compose stop worker: clean exit 0 of every idle worker (exit codes:$codes)" \
    eval '[ -n "$codes" ] && [ -z "$(printf "%s\n" $codes | grep -vx 0)" ]'

# Durability of the redis service: AOF on with fsync every second, in the
# named volume. Redis killed with SIGKILL (no shutdown save) and its
# container replaced: the new one loads every result from the AOF.
aof=$(rcli CONFIG GET appendonly | tail -n 1); fsync=$(rcli CONFIG GET appendfsync | tail -n 1)
check "redis: appendonly $aof, appendfsync $fsync" [ "$aof/$fsync" = yes/everysec ]
if dc 60 kill -s SIGKILL redis > "$TMP/kill.log" 2>&1 && dc 60 rm -f redis >> "$TMP/kill.log" 2>&1 &&
   dc 120 up -d --no-build redis >> "$TMP/kill.log" 2>&1; then
    new_cid=$(dc 30 ps -q redis)
    [ "$new_cid" != "$REDIS_CID" ] || note "redis container was not replaced"
    REDIS_CID=$new_cid
    wait_until 60 eval '[ "$(rcli PING 2>/dev/null)" = PONG ]'
    n=$(rcli XLEN "$RESULTS_KEY")
    check "redis SIGKILLed and its container replaced: all $n of $total results back from the AOF in the volume" \
        [ "$n" = "$total" ]
else
    not_ok "redis SIGKILL and replacement"; tail -n 5 "$TMP/kill.log" | sed 's/^/#   /'
fi

# ---- TLS to Redis (--profile tls) ---------------------------------------------------
# A CA and a certificate for redis-tls; the workers and the CLI reach Redis
# only through redis-tunnel (stunnel, client side), which speaks TLS to
# redis-tls (server side, in front of redis) and verifies its certificate.
mkdir -p "$TMP/tls"
if openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=llmfleet-ci-ca \
       -keyout "$TMP/tls/ca.key" -out "$TMP/tls/ca.pem" > "$TMP/tls.log" 2>&1 &&
   openssl req -newkey rsa:2048 -nodes -subj /CN=redis-tls -keyout "$TMP/tls/server.key" \
       -out "$TMP/tls/server.csr" >> "$TMP/tls.log" 2>&1 &&
   printf 'subjectAltName=DNS:redis-tls\n' > "$TMP/tls/ext.cnf" &&
   openssl x509 -req -in "$TMP/tls/server.csr" -CA "$TMP/tls/ca.pem" -CAkey "$TMP/tls/ca.key" \
       -CAcreateserial -days 2 -extfile "$TMP/tls/ext.cnf" -out "$TMP/tls/server.pem" >> "$TMP/tls.log" 2>&1; then
    chmod 644 "$TMP"/tls/*     # a test key: readable by the containers' uid 10001
    export PROFILES=fake,tls DC_REDIS_URL=redis://redis-tunnel:6379/0
    if dc 180 up -d --no-build --scale worker=2 > "$TMP/up-tls.log" 2>&1; then
        ok "docker-compose --profile tls up: redis-tls, redis-tunnel, 2 workers on redis://redis-tunnel:6379/0"
    else
        not_ok "docker-compose --profile tls up"; tail -n 20 "$TMP/up-tls.log" | sed 's/^/#   /'
    fi
    plain=$(timeout 20 "$DOCKER" exec "$REDIS_CID" sh -c 'timeout 5 redis-cli -h redis-tls -p 6380 ping' 2>&1)
    check "redis-tls speaks TLS only: a plain client gets no PONG" eval '! printf "%s" "$plain" | grep -q PONG'
    jobs "$TMP/submitted-c" c 100
    before=$(rcli XLEN "$RESULTS_KEY")
    if dc 300 run --rm -T cli submit - --wait < "$TMP/submitted-c" > "$TMP/submit-c.log" 2>&1; then
        ok "100 jobs submitted and done through the TLS tunnel ($(tail -n 1 "$TMP/submit-c.log"))"
    else
        not_ok "jobs through the TLS tunnel"; tail -n 5 "$TMP/submit-c.log" | sed 's/^/#   /'
    fi
    check "... 100 more results in redis ($(rcli XLEN "$RESULTS_KEY") of $((before + 100)))" \
        eval '[ "$(rcli XLEN "$RESULTS_KEY")" = $((before + 100)) ]'
    env_of=$(for c in $(workers); do "$DOCKER" inspect -f '{{join .Config.Env " "}}' "$c"; done)
    check "the workers' Redis URL is the tunnel" \
        eval 'printf "%s" "$env_of" | grep -q "LLMFLEET_REDIS_URL=redis://redis-tunnel:6379/0"'
    unset PROFILES DC_REDIS_URL
else
    not_ok "a CA and a certificate (openssl)"; tail -n 5 "$TMP/tls.log" | sed 's/^/#   /'
fi

note "fleet tests done at $((SECONDS - T0)) s; teardown"
exit 0
