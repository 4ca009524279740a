# Redis Cluster: a local 3-master cluster (real redis-server nodes on
# loopback). Two fleets on two shards; workers and the CLI pointed at the
# wrong node follow MOVED to their fleet's slot owner; then the fleet's
# slot is migrated to another node mid-run (SETSLOT IMPORTING/MIGRATING,
# MIGRATE, SETSLOT NODE): every job has exactly one result, and the API
# sees no request twice beyond the jobs genuinely in flight.
. "$(dirname "$0")/lib.sh"
# A slow suite of real extra servers: run once, in the release run (the
# sanitizer run, LLMFLEET_SHORT, skips it; its code paths are the
# reconnects that test_redis_faults covers there).
if [ -n "${LLMFLEET_SHORT:-}" ]; then echo "ok - skipped in the sanitizer run (run once, in make test)"; exit 0; fi

PORTS=()
start_node() {
    local port bus pid
    for _ in 1 2 3 4 5; do
        port=$("$BIN/freeport"); bus=$("$BIN/freeport")
        mkdir -p "$T/n$port"
        redis-server --port "$port" --cluster-enabled yes --cluster-port "$bus" \
            --cluster-config-file "$T/n$port/nodes.conf" --cluster-node-timeout 5000 \
            --bind 127.0.0.1 --dir "$T/n$port" --save '' --appendonly no \
            --logfile "$T/n$port/redis.log" &
        pid=$!
        if wait_until 10 redis-cli -p "$port" ping; then
            PIDS+=("$pid"); PORTS+=("$port")
            redis-cli -p "$port" ACL SETUSER llmfleet on ">$NODE_PASS" \
                $(cat "$(dirname "$0")/../../scripts/redis-acl.txt") >/dev/null
            return 0
        fi
        kill -9 "$pid" 2>/dev/null
    done
    return 1
}
NODE_PASS=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
for i in 1 2 3; do start_node || { echo "cannot start a cluster node" >&2; exit 1; }; done
redis-cli --cluster create "${PORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$T/create.log" 2>&1
cluster_ok() { for p in "${PORTS[@]}"; do redis-cli -p "$p" CLUSTER INFO | grep -q 'cluster_state:ok' || return 1; done; }
check "the 3-master cluster is up" wait_until 20 cluster_ok
url() { echo "redis://llmfleet:$NODE_PASS@127.0.0.1:$1/0"; }
# owner FLEET: the port of the node that serves the fleet's slot.
owner() {
    local r
    r=$(redis-cli -p "${PORTS[0]}" EXISTS "llmfleet:{$1}:state")
    case $r in *MOVED*) echo "${r##*:}" ;; *) echo "${PORTS[0]}" ;; esac
}
node_id() { redis-cli -p "$1" CLUSTER MYID; }
# Two fleet names on two different shards.
FA=; FB=
for i in $(seq 1 60); do
    o=$(owner "fleet$i")
    if [ -z "$FA" ]; then FA=fleet$i; OA=$o
    elif [ "$o" != "$OA" ]; then FB=fleet$i; OB=$o; break; fi
done
echo "# $FA on :$OA, $FB on :$OB"
for p in "${PORTS[@]}"; do [ "$p" != "$OA" ] && [ "$p" != "$OB" ] && OC=$p; done
check "two fleets on two shards" test -n "$FB"

start_fakeapi --latency-ms 30
lfc() { local p=$1; shift; "$BIN/llmfleet" "$1" --redis-url "$(url "$p")" "${@:2}"; }
gen_jobs 300 a | lfc "$OC" submit - --fleet "$FA" 2> "$T/sa.err"
eq "submit through the wrong node reaches the fleet's shard" 300 "$(redis-cli -p "$OA" LLEN "llmfleet:{$FA}:jobs")"
gen_jobs 300 b | lfc "$OA" submit - --fleet "$FB" 2>/dev/null
REDIS_URL=$(url "$OC") start_worker wa --fleet "$FA" --concurrency 32
WA=$WORKER_PID
REDIS_URL=$(url "$OA") start_worker wb --fleet "$FB" --concurrency 32
WB=$WORKER_PID
n_results() { redis-cli -p "$1" XLEN "llmfleet:{$2}:results"; }
both() { [ "$(n_results "$OA" "$FA")" -ge 300 ] && [ "$(n_results "$OB" "$FB")" -ge 300 ]; }
check "both fleets finish through workers pointed at the wrong node" wait_until 60 both
check "the worker said where it moved" grep -q "event=redis_moved" "$T/wa.log"
check "and did not spin on MOVED (<= 4 moves)" test "$(grep -c 'event=redis_moved' "$T/wa.log")" -le 4
eq "status through the wrong node" 300 "$(lfc "$OB" status --fleet "$FA" --json | jq .total_ok)"
uniq_ids() { lfc "$1" results --fleet "$2" 2>/dev/null | jq -r .id | sort -u | wc -l; }
eq "one result per id ($FA)" 300 "$(uniq_ids "$OC" "$FA")"
eq "one result per id ($FB)" 300 "$(uniq_ids "$OC" "$FB")"
eq "the API saw 600 requests for 600 jobs" 600 "$(fake_stats | jq .requests_total)"

# The fleet's slot moves from OA to OC mid-run.
gen_jobs 900 m | lfc "$OA" submit - --fleet "$FA" 2>/dev/null
midway() { [ "$(n_results "$OA" "$FA")" -ge 450 ]; }
check "the second batch is running" wait_until 60 midway
slot=$(redis-cli -p "$OA" CLUSTER KEYSLOT "$FA")
src=$(node_id "$OA"); dst=$(node_id "$OC")
redis-cli -p "$OC" CLUSTER SETSLOT "$slot" IMPORTING "$src" >/dev/null
redis-cli -p "$OA" CLUSTER SETSLOT "$slot" MIGRATING "$dst" >/dev/null
while :; do
    keys=$(redis-cli -p "$OA" CLUSTER GETKEYSINSLOT "$slot" 50)
    [ -z "$keys" ] && break
    # shellcheck disable=SC2086
    redis-cli -p "$OA" MIGRATE 127.0.0.1 "$OC" "" 0 5000 KEYS $keys >/dev/null
done
for p in "${PORTS[@]}"; do redis-cli -p "$p" CLUSTER SETSLOT "$slot" NODE "$dst" >/dev/null; done
echo "# slot $slot of $FA moved from :$OA to :$OC"
all_a() { [ "$(n_results "$OC" "$FA")" -ge 1200 ] 2>/dev/null; }
check "every job of $FA finishes on the new owner" wait_until 90 all_a
settled() { [ "$(redis-cli -p "$OC" ZCARD "llmfleet:{$FA}:leases")" -eq 0 ]; }
check "no lease is left" wait_until 30 settled
eq "one result per id after the move (1,200 ids)" 1200 "$(uniq_ids "$OB" "$FA")"
eq "and 1,200 entries" 1200 "$(n_results "$OC" "$FA")"
req=$(fake_stats | jq .requests_total)
echo "# the API saw $req requests for 1,500 jobs ($((req - 1500)) more)"
check "no request twice beyond the 32 a worker holds in flight ($req <= 1532)" test "$req" -le 1532
check "the worker followed the move" test "$(grep -c 'event=redis_moved' "$T/wa.log")" -ge 2
kill -TERM "$WA" "$WB"; wait "$WA"; ra=$?; wait "$WB"; rb=$?
eq "both workers stop cleanly" "0 0" "$ra $rb"
finish
