#!/usr/bin/env bash
# make bench: the worker's speed and memory, each beside a baseline
# measured in the same run, reported as ratios. Figures go in README.md.
#
#   BENCH_JOBS=50000 BENCH_RUNS=3 make bench
#   BENCH_WORKER_ARGS=--no-follow ...     extra worker options (throughput)
#   BENCH_ONLY=throughput|memory|pickup|fleet|rtt|paced|trickle|lanes|estimate make bench     one part only
#   BENCH_STATS=1 ...       the paced part also prints where Redis's CPU went
#                           in each window, per job: every command's calls and
#                           time (INFO commandstats), each script's (SLOWLOG
#                           at 0 for the window), user and system time
#   BENCH_PERF=FILE ...     with BENCH_STATS, perf record -g of redis-server
#                           over the window into FILE (needs perf)
#   BENCH_CAPTURE=DIR ...   the paced part saves Redis as its window opens and
#                           records BENCH_CAPTURE_S (4) seconds of MONITOR, in
#                           DIR/WORKERS/, for tests/bench/replay.py
#   BENCH_JOB_BYTES=1400 ...  each job's prompt text, bytes (the paced part:
#                           what a job's size costs Redis while it waits)
#   BENCH_FLOOR_GROUPS="1 2 4 8 2p 8p" BENCH_FLOOR_S=10 ...   the paced part's floor:
#                           tests/bench/floor.py after each fleet, at its rate,
#                           GROUP jobs a call (Np: with the least pacing; ping: a
#                           PING a job, the cost of a wake), S s each
#                           (the defaults add ~2 min a round)
#
# 1. Throughput: N jobs through 1 worker against the fake API at zero
#    latency; end-to-end jobs/s, worker CPU us/job, Redis CPU us/job.
#    Baseline: wrk posting the same body to the same fake API over the same
#    number of connections (the HTTP path alone, no Redis, no JSON).
# 2. Memory: 1 worker holding 2,000 requests in flight against a 2 s
#    latency fake API; RSS per in-flight request. Baseline: the same worker
#    idle (same --concurrency, empty queue).
# 3. Pickup: LPUSH -> result readable on an idle fleet, one job at a time
#    (tests/bench/pickup.py), p50 / p99. Baseline: the same worker against a
#    Redis without BLMOVE, which polls every --idle-poll-ms.
# 4. Fleet: quota use on real workloads (scripts/bench-fleet.sh).
# 5. Lanes: the cost of one workload through the sync lane, the Batch lane,
#    and lane auto with deadlines (half of them a week away, half an hour
#    away); baseline: the sync lane, in the same run.
# 7. Estimate: the input estimate per request (tests/bench/estspeed.c);
#    baseline: the JSON parse of the same request, interleaved.
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${LLMFLEET_BIN:-$PWD/bin}
T=$(mktemp -d "${TMPDIR:-/tmp}/llmfleet-bench.XXXXXX")
. scripts/fleet-lib.sh
trap 'fleet_cleanup; rm -rf "$T"' EXIT
API_KEY="sk-ant-bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
N=${BENCH_JOBS:-50000}
CONC=${BENCH_CONCURRENCY:-64}
RUNS=${BENCH_RUNS:-3}
INFLIGHT=${BENCH_INFLIGHT:-2000}
TICK=$(getconf CLK_TCK)
PY=${BENCH_PYTHON:-/usr/bin/python3}    # Debian's python3-redis

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# Private memory (USS): what the process costs beyond shared library pages.
uss_kib() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
# CPU (us) the redis-server on port $1 (default: the fleet's) has used.
redis_cpu_us() {
    redis-cli -p "${1:-$REDIS_PORT}" INFO cpu |
        awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%d", s * 1000000}'
}
# An idle redis-server beside the fleet's, the baseline of the per-job
# Redis figures: its own timers (hz 10) cost CPU with no client at all, and
# its CPU over the same spans, per job, is the floor no fleet can go under.
# Sets IDLE_PORT.
idle_redis() {
    IDLE_PORT=$("$BIN/freeport")
    mkdir -p "$T/idle$IDLE_PORT"
    redis-server --port "$IDLE_PORT" --bind 127.0.0.1 --dir "$T/idle$IDLE_PORT" --save '' \
        --appendonly no --logfile "$T/idle$IDLE_PORT/redis.log" &
    PIDS+=("$!")
    wait_until 10 redis-cli -p "$IDLE_PORT" ping >/dev/null || { echo "bench: idle redis"; exit 1; }
}
# The median of the numbers on stdin; medOf FILE COL KEY...: of column COL
# over FILE's lines whose first fields are KEY...
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
medOf() {
    local f=$1 c=$2; shift 2
    awk -v c="$c" -v k="$*" 'BEGIN {n = split(k, key, " ")}
        {for (i = 1; i <= n; i++) if ($i != key[i]) next; print $c}' "$f" | median
}
# Calls so far of the fleet Redis's commands whose INFO commandstats name
# matches the regex $1.
cmdcalls() {
    rcli INFO commandstats | tr -d '\r' |
        awk -F'[:=,]' -v re="$1" '$1 ~ re {n += $3} END {print n + 0}'
}
# BENCH_STATS=1: where a paced window's Redis CPU went, per job: each
# command's calls and time inside it (INFO commandstats), and the process's
# user and system time ($T/cs0, cs1, cpu0, cpu1 snapshots around it).
stats_delta() {
    echo "  stats, $1 workers, $2 jobs: per job"
    awk -F'[:=,]' -v n="$2" 'FNR == NR && /^cmdstat_/ {c[$1] = $3; u[$1] = $5; next}
        /^cmdstat_/ && $3 > c[$1] {printf "    %-22s %6.2f calls %7.1f us (%.0f us a call)\n", substr($1, 9), ($3 - c[$1]) / n, ($5 - u[$1]) / n, ($5 - u[$1]) / ($3 - c[$1])}' "$T/cs0" "$T/cs1"
    awk -F: -v n="$2" 'FNR == NR {a[$1] = $2; next} /^used_cpu_(sys|user):/ {printf "    %-22s %7.1f us\n", $1, ($2 - a[$1]) * 1e6 / n}' "$T/cpu0" "$T/cpu1"
}
# ... and each script's calls and time per job, from SLOWLOG (every call
# logged in the window).
slowlog_by_script() {
    redis-cli -p "$REDIS_PORT" --json SLOWLOG GET -1 2>/dev/null | "$PY" -c '
import json, sys, collections
n = int(sys.argv[1]); c = collections.Counter(); u = collections.Counter()
for e in json.load(sys.stdin):
    a = e[3]; k = a[0].lower()
    if k in ("fcall", "fcall_ro") and len(a) > 1: k = a[1].rsplit("_", 1)[-1]
    c[k] += 1; u[k] += e[2]
for k, v in sorted(u.items(), key=lambda x: -x[1]):
    print("    %-22s %6.2f calls %7.1f us (%.0f us a call)" % (k, c[k] / n, v / n, v / c[k]))
' "$1"
}
# BENCH_CAPTURE=DIR: the paced window's traffic for tests/bench/replay.py,
# per fleet size: Redis saved (DIR/N/dump.rdb, its TIME in savetime), then
# MONITOR for BENCH_CAPTURE_S seconds (mon.txt).
paced_capture() {
    mkdir -p "$1"
    rcli SAVE >/dev/null
    rcli TIME | tr '\n' ' ' > "$1/savetime"
    cp "$T/redis/dump.rdb" "$1/dump.rdb"
    timeout "${BENCH_CAPTURE_S:-4}" redis-cli -p "$REDIS_PORT" MONITOR > "$1/mon.txt"
}
# Script calls so far: FCALL (the function library) and EVALSHA (a Redis
# without it).
script_calls() { cmdcalls '^cmdstat_(fcall|evalsha|eval)$'; }
# Reads from clients so far (INFO stats total_reads_processed): the round
# trips Redis served, each a read of a client's socket.
reads_processed() { rcli INFO stats | tr -d '\r' | awk -F: '/^total_reads_processed:/ {print $2}'; }
# A job whose request body is about 1.6 KB, like the issue's wrk test.
text=$(head -c "${BENCH_JOB_BYTES:-1400}" /dev/zero | tr '\0' x)
job() { printf '{"id":"b-%d","request":{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"%s %d"}]}}\n' "$1" "$text" "$1"; }

start_redis || exit 1
start_fakeapi --quiet || exit 1

part() { [ -z "${BENCH_ONLY:-}" ] || [ "$BENCH_ONLY" = "$1" ]; }

if part throughput; then
echo "# 1. throughput: $N jobs, 1 worker, --concurrency $CONC, fake API at 0 ms"
body=$(job 0 | jq -c .request)
cat > "$T/post.lua" <<LUA
wrk.method = "POST"
wrk.body = [[$body]]
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "$API_KEY"
wrk.headers["anthropic-version"] = "2023-06-01"
LUA
wrk -t1 -c"$CONC" -d5s -s "$T/post.lua" "$FAKE_URL/v1/messages" > "$T/wrk.txt" 2>&1
wrk_rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$T/wrk.txt")
curl -s -X POST "$FAKE_URL/_reset" >/dev/null

for i in $(seq 1 "$N"); do job "$i"; done > "$T/jobs.jsonl"
# RUNS runs of the same N jobs into a fresh fleet; the figures are the
# runs' medians (the machine's speed drifts between runs: the spread is
# printed too).
: > "$T/runs.txt"
for run in $(seq 1 "$RUNS"); do
    rcli FLUSHALL >/dev/null
    lf submit "$T/jobs.jsonl" 2>/dev/null
    r0=$(redis_cpu_us)
    f0=$(cpu_ticks "$FAKE_PID")
    read -r _ u0 n0 s0 i0 _ < /proc/stat
    t0=$(now_ms)
    # shellcheck disable=SC2086
    start_worker "bench$run" --concurrency "$CONC" --log-level warn ${BENCH_WORKER_ARGS:-}
    w=$WORKER_PID
    # BENCH_PERF=FILE: a 3 s CPU profile of redis-server and the worker
    # in the first run (perf report -i FILE --sort comm,dso,sym).
    [ -n "${BENCH_PERF:-}" ] && [ "$run" = 1 ] && { sleep 1; perf record -q -F 4000 -p "$REDIS_PID,$w" -o "$BENCH_PERF" -- sleep 3 >/dev/null 2>&1; }
    # Polled twice a second only (each poll is a redis-cli process on the
    # same 2 cores); the end time is the last result's stream ID (ms).
    all_done() { [ "$(rcli XLEN 'llmfleet:{default}:results')" -ge "$N" ]; }
    WAIT_POLL=0.5 wait_until 600 all_done || { echo "bench: timed out"; exit 1; }
    t1=$(rcli XREVRANGE 'llmfleet:{default}:results' + - COUNT 1 | head -1)
    t1=${t1%-*}
    wcpu=$(cpu_ticks "$w")
    r1=$(redis_cpu_us)
    f1=$(cpu_ticks "$FAKE_PID")
    read -r _ u1 n1 s1 i1 _ < /proc/stat
    [ -n "${BENCH_STATS:-}" ] && echo "  run $run: fake API CPU per job $(( (f1 - f0) * 1000000 / TICK / N )) us; machine busy $(( 100 * ((u1 + n1 + s1) - (u0 + n0 + s0)) / ((u1 + n1 + s1 + i1) - (u0 + n0 + s0 + i0)) )) %"
    kill -TERM "$w"; wait "$w" 2>/dev/null
    ok=$(rcli XLEN 'llmfleet:{default}:results')
    [ "$ok" = "$N" ] || { echo "bench: $ok results for $N jobs"; exit 1; }
    echo "$(( N * 1000 / (t1 - t0) )) $(( wcpu * 1000000 / TICK / N )) $(( (r1 - r0) / N ))" >> "$T/runs.txt"
done
jobs_s=$(cut -d' ' -f1 "$T/runs.txt" | median)
w_us=$(cut -d' ' -f2 "$T/runs.txt" | median)
r_us=$(cut -d' ' -f3 "$T/runs.txt" | median)
spread() { cut -d' ' -f"$1" "$T/runs.txt" | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {print lo "-" hi}'; }
printf "  %-44s %10s\n" "baseline: wrk -> fake API, req/s" "$wrk_rps"
printf "  %-44s %10s  (runs: %s)\n" "llmfleet: end-to-end jobs/s" "$jobs_s" "$(spread 1)"
printf "  %-44s %10s\n" "ratio llmfleet / wrk" "$(awk "BEGIN {printf \"%.2f\", $jobs_s / $wrk_rps}")"
printf "  %-44s %10s  (runs: %s)\n" "worker CPU per job (us)" "$w_us" "$(spread 2)"
printf "  %-44s %10s  (runs: %s)\n" "Redis CPU per job (us)" "$r_us" "$(spread 3)"
printf "  %-44s %10s\n" "runs, each with one result per job" "$RUNS"
# BENCH_STATS=1: where Redis spent its time (calls, usec per call).
[ -n "${BENCH_STATS:-}" ] && rcli INFO commandstats | grep -v '^#' | tr -d '\r'

fi

if part memory; then
echo "# 2. memory: 1 worker, $INFLIGHT requests in flight, fake API at 2 s"
rcli FLUSHALL >/dev/null
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 2000 --quiet || exit 1
lf limits set max_in_flight="$INFLIGHT" >/dev/null
start_worker mem --concurrency "$INFLIGHT" --log-level warn
w=$WORKER_PID
connected() { grep -q redis_connected "$T/mem.log" || [ "$(rcli CLIENT LIST | wc -l)" -ge 2 ]; }
wait_until 10 connected
idle_kib=$(rss_kib "$w")
idle_uss=$(uss_kib "$w")
for i in $(seq 1 "$INFLIGHT"); do job "$i"; done | lf submit - 2>/dev/null
# (the first request goes alone, cold start: it is done by the time the rest are up)
inflight() { [ "$(fake_stats | jq .concurrent)" -ge $(( INFLIGHT - 1 )) ]; }
wait_until 30 inflight || echo "  (only $(fake_stats | jq .concurrent) in flight)"
busy_kib=$(rss_kib "$w")
busy_uss=$(uss_kib "$w")
per=$(( (busy_kib - idle_kib) * 1024 / INFLIGHT ))
# Idle again once the burst is over: what the worker keeps.
burst_done() { [ "$(rcli XLEN 'llmfleet:{default}:results')" -ge "$INFLIGHT" ]; }
wait_until 60 burst_done || echo "  (burst not finished)"
after_kib=$(rss_kib "$w")
# The floor: the worker's libraries loaded and set up, nothing else.
read -r floor_kib floor_priv < <("$BIN/libfloor")
printf "  %-44s %10s\n" "baseline: libraries alone, RSS (KiB)" "$floor_kib"
printf "  %-44s %10s\n" "baseline: libraries alone, private (KiB)" "$floor_priv"
printf "  %-44s %10s\n" "idle worker RSS (KiB)" "$idle_kib"
printf "  %-44s %10s\n" "idle worker private/USS (KiB)" "$idle_uss"
printf "  %-44s %10s\n" "idle worker above the libraries (KiB)" "$(( idle_kib - floor_kib ))"
printf "  %-44s %10s\n" "idle again after the burst: RSS (KiB)" "$after_kib"
printf "  %-44s %10s\n" "$INFLIGHT in flight: RSS (KiB)" "$busy_kib"
printf "  %-44s %10s\n" "$INFLIGHT in flight: private/USS (KiB)" "$busy_uss"
printf "  %-44s %10s\n" "ratio busy / idle" "$(awk "BEGIN {printf \"%.2f\", $busy_kib / $idle_kib}")"
printf "  %-44s %10s\n" "bytes per in-flight request" "$per"
fi

if part pickup; then
ROUNDS=${BENCH_PICKUP_ROUNDS:-5}
echo "# 3. pickup on an idle fleet: LPUSH -> result readable, 1 job at a time, fake API at 0 ms"
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --quiet || exit 1
# A: Redis as shipped (the worker blocks in BLMOVE); B, the baseline: the
# same worker against a Redis without BLMOVE, polling every --idle-poll-ms
# (100 ms), as before. One worker each (2 workers: --concurrency 8).
start_redis >/dev/null || exit 1; url_a=$REDIS_URL
start_worker pka --concurrency 8 --log-level warn
start_redis --rename-command BLMOVE '""' >/dev/null || exit 1; url_b=$REDIS_URL
start_worker pkb --concurrency 8 --log-level warn
# C: BullMQ (tests/bench/bullmq, pinned; npm ci when missing) on its own
# Redis (default user: BullMQ's scripts), its worker POSTing to the same
# fake API, when node is here.
bq=""
if command -v node >/dev/null 2>&1; then
    bqdir=tests/bench/bullmq
    [ -f "$bqdir/node_modules/.package-lock.json" ] || (cd "$bqdir" && npm ci --silent --no-audit --no-fund)
    LLMFLEET_ACL=0 start_redis >/dev/null || exit 1; url_c=$REDIS_URL
    node "$bqdir/pickup.mjs" worker "$url_c" pk "$FAKE_URL" "$API_KEY" > "$T/bq.log" 2>&1 &
    PIDS+=("$!")
    wait_until 30 grep -q ready "$T/bq.log" && bq=c
fi
: > "$T/pk.txt"
for r in $(seq 1 "$ROUNDS"); do         # interleaved, the order rotating
    case $((r % 3)) in 1) order="a b $bq" ;; 2) order="b $bq a" ;; *) order="$bq a b" ;; esac
    for x in $order; do
        if [ "$x" = c ]; then
            echo "c $(node tests/bench/bullmq/pickup.mjs producer "$url_c" pk 100 | jq -r '"\(.p50_ms) \(.p99_ms)"')" >> "$T/pk.txt"
            continue
        fi
        u=$url_a; [ "$x" = b ] && u=$url_b
        echo "$x $("$PY" tests/bench/pickup.py "$u" 100 | jq -r '"\(.p50_ms) \(.p99_ms)"')" >> "$T/pk.txt"
    done
done
med() { medOf "$T/pk.txt" "$2" "$1"; }
printf "  %-44s %10s\n" "baseline (polling, 100 ms): p50 ms" "$(med b 2)"
printf "  %-44s %10s\n" "baseline (polling, 100 ms): p99 ms" "$(med b 3)"
printf "  %-44s %10s\n" "llmfleet (BLMOVE wake): p50 ms" "$(med a 2)"
printf "  %-44s %10s\n" "llmfleet (BLMOVE wake): p99 ms" "$(med a 3)"
printf "  %-44s %10s\n" "ratio p50 baseline / llmfleet" "$(awk "BEGIN {printf \"%.1f\", $(med b 2) / $(med a 2)}")"
if [ -n "$bq" ]; then
    printf "  %-44s %10s\n" "BullMQ 5 (its worker, same fake API): p50 ms" "$(med c 2)"
    printf "  %-44s %10s\n" "BullMQ 5 (its worker, same fake API): p99 ms" "$(med c 3)"
    printf "  %-44s %10s\n" "ratio p50 BullMQ / llmfleet" "$(awk "BEGIN {printf \"%.2f\", $(med c 2) / $(med a 2)}")"
fi
printf "  %-44s %10s\n" "rounds of 100 jobs each, medians" "$ROUNDS"
fi

if part rtt; then
# A row named like "100nf" runs at that RTT with --no-follow (each slot's
# next job admitted only after its answer: the design before followers).
RTTS=${BENCH_RTTS:-0 20 50 100 100nf}
RTT_JOBS=${BENCH_RTT_JOBS:-8000}
RTT_ROUNDS=${BENCH_RTT_ROUNDS:-3}
echo "# 5. throughput vs round trip to Redis: 3 workers x 128 slots, fake API at 300 ms, $RTT_JOBS jobs, RTT $RTTS ms (nf: --no-follow)"
# Each worker reaches Redis through tests/tools/delayproxy.py (every chunk
# handed on RTT/2 later, both ways; the 0 ms row goes through the same
# proxy at 0 ms, so the proxy's own cost is in the baseline too). The
# ceiling (max_in_flight) is the slots': 384 requests at 300 ms is 1,280
# jobs/s at best. jobs/s is taken between the 10th and the 90th percentile
# result (stream IDs), leaving out the ramp-up and the tail.
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 300 --quiet || exit 1
LLMFLEET_ACL=0 start_redis >/dev/null || exit 1
for i in $(seq 1 "$RTT_JOBS"); do job "$i"; done > "$T/rttjobs.jsonl"
declare -A PURL
for rtt in $RTTS; do     # a proxy to this Redis per RTT
    pf="$T/proxy.$rtt.port"
    python3 tests/tools/delayproxy.py 127.0.0.1 0 127.0.0.1 "$REDIS_PORT" $((${rtt%nf} / 2)) "$pf" >/dev/null 2>&1 &
    PIDS+=("$!")
    wait_until 10 test -s "$pf" || { echo "bench: delayproxy did not start"; exit 1; }
    PURL[$rtt]="redis://127.0.0.1:$(cat "$pf")/0"
done
nth_ms() {      # the time (ms) of the Nth result
    local id
    id=$(rcli EVAL "local r = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[1]) return r[#r][1]" 1 'llmfleet:{default}:results' "$1")
    echo "${id%-*}"
}
: > "$T/rtt.txt"
for r in $(seq 1 "$RTT_ROUNDS"); do
    # shellcheck disable=SC2086
    order=$(echo $RTTS | tr ' ' '\n' | awk -v r="$r" '{v[NR] = $0} END {for (i = 0; i < NR; i++) print v[(i + r) % NR + 1]}')
    for rtt in $order; do
        rcli FLUSHALL >/dev/null
        lf limits set max_in_flight=384 >/dev/null
        lf submit "$T/rttjobs.jsonl" 2>/dev/null
        r0=$(redis_cpu_us)
        ws=()
        nf=(); [ "${rtt%nf}" != "$rtt" ] && nf=(--no-follow)
        for k in 1 2 3; do
            ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=$FAKE_URL \
                "$BIN/llmfleet" worker --redis-url "${PURL[$rtt]}" --name "rtt$k" \
                --concurrency 128 --log-level warn "${nf[@]}" >> "$T/rtt$k.log" 2>&1 &
            ws+=("$!"); PIDS+=("$!")
        done
        all_done() { [ "$(rcli XLEN 'llmfleet:{default}:results')" -ge "$RTT_JOBS" ]; }
        WAIT_POLL=0.5 wait_until 300 all_done || { echo "bench: rtt $rtt timed out"; exit 1; }
        r1=$(redis_cpu_us)
        kill -TERM "${ws[@]}"; wait "${ws[@]}" 2>/dev/null
        lo=$(( RTT_JOBS / 10 )); hi=$(( RTT_JOBS * 9 / 10 ))
        t_lo=$(nth_ms "$lo"); t_hi=$(nth_ms "$hi")
        reqs=$(fake_stats | jq .requests_total)
        peak=$(fake_stats | jq .peak_concurrent)
        curl -s -X POST "$FAKE_URL/_reset" >/dev/null
        echo "$rtt $(( (hi - lo) * 1000 / (t_hi - t_lo) )) $(( (r1 - r0) / RTT_JOBS )) $reqs $peak" >> "$T/rtt.txt"
    done
done
med() { medOf "$T/rtt.txt" "$2" "$1"; }
base=$(med "${RTTS%% *}" 2)
printf "  %-12s %10s %10s %14s %12s %14s\n" "RTT (ms)" "jobs/s" "x RTT ${RTTS%% *}" "Redis us/job" "requests" "peak at API"
for rtt in $RTTS; do
    printf "  %-12s %10s %10s %14s %12s %14s\n" "$rtt" "$(med "$rtt" 2)" \
        "$(awk "BEGIN {printf \"%.2f\", $(med "$rtt" 2) / $base}")" "$(med "$rtt" 3)" "$(med "$rtt" 4)" "$(med "$rtt" 5)"
done
printf "  %-44s %10s\n" "rounds, interleaved, medians (ideal 1280 jobs/s)" "$RTT_ROUNDS"
fi

if part paced; then
PACED_RPM=${BENCH_PACED_RPM:-600}
PACED_EXTRA=${BENCH_PACED_EXTRA:-300}
PACED_ROUNDS=${BENCH_PACED_ROUNDS:-2}
PACED_FLEETS=${BENCH_PACED_FLEETS:-2 16}
NP=$(( PACED_RPM + PACED_EXTRA ))
echo "# 6. Redis CPU per job while paced: fake API at $PACED_RPM RPM (300 ms), $NP jobs, fleets of $PACED_FLEETS workers x 32 slots"
# The bucket starts full: with max_burst=0 the first $PACED_RPM jobs (and
# what refills meanwhile) go at once, at max_in_flight; by default
# (max_burst 1 s) no more than a second's refill goes at once, and the
# first $PACED_RPM + 50 results come at the refill rate. The figure is
# Redis's CPU from the end of that phase (a second with results at most
# 1.5 x the refill rate) to the last result, divided by the jobs settled
# meanwhile: every one of them waited for the refill (about
# $(( PACED_RPM / 60 )) jobs/s).
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 300 --rpm "$PACED_RPM" --quiet || exit 1
LLMFLEET_ACL=0 start_redis >/dev/null || exit 1
for i in $(seq 1 "$NP"); do job "$i"; done > "$T/pacedjobs.jsonl"
: > "$T/paced.txt"; : > "$T/floor.txt"
FLOOR_S=${BENCH_FLOOR_S:-10}
FLOOR_GROUPS=${BENCH_FLOOR_GROUPS:-1 2 4 8 2p 8p}
idle_redis                          # the baseline in the same run
for r in $(seq 1 "$PACED_ROUNDS"); do
    for nw in $PACED_FLEETS; do
        rcli FLUSHALL >/dev/null
        lf submit "$T/pacedjobs.jsonl" 2>/dev/null
        ws=()
        for k in $(seq 1 "$nw"); do
            start_worker "paced$k" --concurrency 32 --log-level warn
            ws+=("$WORKER_PID")
        done
        at_least() { [ "$(rcli XLEN 'llmfleet:{default}:results')" -ge "$1" ]; }
        WAIT_POLL=0.2 wait_until 120 at_least $(( PACED_RPM + 50 )) || { echo "bench: paced burst timed out"; exit 1; }
        # The burst goes on while the bucket refills (at max_in_flight):
        # the window opens once a second's results are within half again
        # the bucket's rate, every job after it paced by the refill.
        paced() {
            local a b
            a=$(rcli XLEN 'llmfleet:{default}:results'); sleep 1; b=$(rcli XLEN 'llmfleet:{default}:results')
            [ $(( (b - a) * 60 * 2 )) -le $(( PACED_RPM * 3 )) ]
        }
        wait_until 120 paced || { echo "bench: the burst did not end"; exit 1; }
        [ -n "${BENCH_CAPTURE:-}" ] && paced_capture "$BENCH_CAPTURE/$nw"
        c0=$(redis_cpu_us); i0=$(redis_cpu_us "$IDLE_PORT"); n0=$(rcli XLEN 'llmfleet:{default}:results'); t0=$(now_ms)
        calls0=$(script_calls); reads0=$(reads_processed)
        [ -n "${BENCH_STATS:-}" ] && { rcli INFO commandstats | tr -d '\r' > "$T/cs0"; rcli INFO cpu | tr -d '\r' > "$T/cpu0"
            rcli CONFIG SET slowlog-max-len 1000000 >/dev/null; rcli CONFIG SET slowlog-log-slower-than 0 >/dev/null; rcli SLOWLOG RESET >/dev/null
            [ -n "${BENCH_PERF:-}" ] && { perf record -F 4000 -g -o "$BENCH_PERF" -p "$REDIS_PID" >/dev/null 2>&1 & PERF_PID=$!; }; }
        WAIT_POLL=0.5 wait_until 300 at_least "$NP" || { echo "bench: paced run timed out"; exit 1; }
        c1=$(redis_cpu_us); i1=$(redis_cpu_us "$IDLE_PORT"); n1=$(rcli XLEN 'llmfleet:{default}:results'); t1=$(now_ms)
        calls1=$(script_calls); reads1=$(reads_processed)
        [ "$n1" -gt "$n0" ] || { echo "bench: no job settled in the paced window (the burst took them all: raise BENCH_PACED_EXTRA)"; exit 1; }
        [ -n "${BENCH_STATS:-}" ] && { rcli INFO commandstats | tr -d '\r' > "$T/cs1"; rcli INFO cpu | tr -d '\r' > "$T/cpu1"; [ -n "${BENCH_PERF:-}" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID"; }; stats_delta "$nw" $(( n1 - n0 ))
            rcli CONFIG SET slowlog-log-slower-than 10000 >/dev/null; slowlog_by_script $(( n1 - n0 )); }
        kill -TERM "${ws[@]}"; wait "${ws[@]}" 2>/dev/null
        r429=$(fake_stats | jq '.status["429"] // 0')
        curl -s -X POST "$FAKE_URL/_reset" >/dev/null
        rate=$(awk "BEGIN {printf \"%.2f\", ($n1 - $n0) * 1000 / ($t1 - $t0)}")
        echo "$nw $(( (c1 - c0) / (n1 - n0) )) $(awk "BEGIN {printf \"%.1f\", ($calls1 - $calls0) / ($n1 - $n0)}") ${rate%.*} $r429 $(( (i1 - i0) / (n1 - n0) )) $(awk "BEGIN {printf \"%.2f\", ($reads1 - $reads0) / ($n1 - $n0)}")" >> "$T/paced.txt"
        # The floor beside it: the least a queue does with a job (taken,
        # its result written: tests/bench/floor.py), at this fleet's rate
        # and connections, GROUP jobs a call.
        # shellcheck disable=SC2086
        "$PY" tests/bench/floor.py "$REDIS_PORT" "$IDLE_PORT" "$nw" "$rate" \
            "$FLOOR_S" "$T/pacedjobs.jsonl" $FLOOR_GROUPS > "$T/floor1.txt" || { echo "bench: floor.py failed"; exit 1; }
        sed "s/^/$nw /" "$T/floor1.txt" >> "$T/floor.txt"
    done
done
med() { medOf "$T/paced.txt" "$2" "$1"; }
printf "  %-10s %16s %16s %16s %16s %10s %8s\n" "workers" "Redis us/job" "idle Redis us/job" "script calls/job" "reads/job (a)" "jobs/s" "429s"
for nw in $PACED_FLEETS; do
    printf "  %-10s %16s %16s %16s %16s %10s %8s\n" "$nw" "$(med "$nw" 2)" "$(med "$nw" 6)" "$(med "$nw" 3)" "$(med "$nw" 7)" "$(med "$nw" 4)" "$(med "$nw" 5)"
done
printf "  %-44s %10s\n" "rounds, interleaved, medians" "$PACED_ROUNDS"
echo "  (a) the bench's own polls (XLEN every 0.5 s) among them"
echo "  the floor, same rate and connections: one call takes GROUP jobs and writes the results of the last (tests/bench/floor.py, ${FLOOR_S} s)"
printf "  %-10s %16s %16s %16s %16s\n" "workers" "jobs a call" "Redis us/job" "idle Redis us/job" "reads/job"
for nw in $PACED_FLEETS; do
    for g in $FLOOR_GROUPS; do
        printf "  %-10s %16s %16s %16s %16s\n" "$nw" "$g" "$(medOf "$T/floor.txt" 3 "$nw" "$g")" "$(medOf "$T/floor.txt" 4 "$nw" "$g")" "$(medOf "$T/floor.txt" 5 "$nw" "$g")"
    done
done
fi

if part trickle; then
TR_RATE=${BENCH_TRICKLE_RATE:-50}
TR_S=${BENCH_TRICKLE_S:-20}
TR_ROUNDS=${BENCH_TRICKLE_ROUNDS:-2}
TR_FLEETS=${BENCH_TRICKLE_FLEETS:-2 16}
NT=$(( TR_RATE * TR_S ))
echo "# 7. Redis CPU per job, jobs pushed one at a time: $TR_RATE a second for $TR_S s into idle fleets of $TR_FLEETS workers x 32 slots (fake API 300 ms, unpaced)"
# Every push finds the fleet idle (its wakers blocked): what a push costs
# Redis with many idle workers against few. Baseline in the same run: an
# idle redis-server's own CPU over the same span, per job.
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 300 --quiet || exit 1
LLMFLEET_ACL=0 start_redis >/dev/null || exit 1
idle_redis
TIDLE=$IDLE_PORT
: > "$T/trickle.txt"
for r in $(seq 1 "$TR_ROUNDS"); do
    for nw in $TR_FLEETS; do
        rcli FLUSHALL >/dev/null
        for i in $(seq 1 "$NT"); do job "$i"; done > "$T/trickle.jsonl"
        ws=()
        for k in $(seq 1 "$nw"); do
            start_worker "tr$k" --concurrency 32 --log-level warn
            ws+=("$WORKER_PID")
        done
        blocked() { [ "$(rcli INFO clients | tr -d '\r' | sed -n 's/^blocked_clients://p')" -ge "$nw" ]; }
        wait_until 20 blocked || { echo "bench: the workers did not block"; exit 1; }
        c0=$(redis_cpu_us); i0=$(redis_cpu_us "$TIDLE"); f0=$(script_calls); b0=$(cmdcalls '^cmdstat_blmove$')
        "$PY" tests/bench/trickle.py "$REDIS_URL" "$T/trickle.jsonl" "$TR_RATE" || exit 1
        done_all() { [ "$(rcli XLEN 'llmfleet:{default}:results')" -ge "$NT" ]; }
        WAIT_POLL=0.2 wait_until 60 done_all || { echo "bench: trickle run timed out"; exit 1; }
        c1=$(redis_cpu_us); i1=$(redis_cpu_us "$TIDLE"); f1=$(script_calls); b1=$(cmdcalls '^cmdstat_blmove$')
        kill -TERM "${ws[@]}"; wait "${ws[@]}" 2>/dev/null
        echo "$nw $(( (c1 - c0) / NT )) $(( (i1 - i0) / NT )) $(awk "BEGIN {printf \"%.1f\", ($f1 - $f0) / $NT}") $(awk "BEGIN {printf \"%.1f\", ($b1 - $b0) / $NT}")" >> "$T/trickle.txt"
    done
done
tmed() { medOf "$T/trickle.txt" "$2" "$1"; }
printf "  %-10s %16s %18s %18s %14s\n" "workers" "Redis us/job" "idle Redis us/job" "script calls/job" "BLMOVEs/job"
for nw in $TR_FLEETS; do
    printf "  %-10s %16s %18s %18s %14s\n" "$nw" "$(tmed "$nw" 2)" "$(tmed "$nw" 3)" "$(tmed "$nw" 4)" "$(tmed "$nw" 5)"
done
printf "  %-44s %10s\n" "rounds, interleaved, medians" "$TR_ROUNDS"
fi

if part lanes; then
# ---- 5. Lanes: what a workload costs through each lane -------------------
NL=${BENCH_LANE_JOBS:-2000}
echo "lanes: $NL jobs (about 1.6 KB each, max_tokens 256) through 3 workers; the fake API"
echo "       processes a batch request within 2 s; cost as settled (micro-USD exact)"
fleet_cleanup 2>/dev/null
start_fakeapi --batch-ms 2000 --quiet || exit 1
LLMFLEET_ACL=0 start_redis >/dev/null || exit 1
far=$(date -u -d '+7 days' +%FT%TZ); near=$(date -u -d '+1 hour' +%FT%TZ)
for i in $(seq 1 "$NL"); do job "$i"; done | jq -c '.request.max_tokens = 256' > "$T/lanejobs.jsonl"
: > "$T/lanes.txt"
for lane in sync batch auto; do
    rcli FLUSHALL >/dev/null
    lf limits set batch_max_wait=1s batch_poll=1s >/dev/null
    case $lane in
        sync) cp "$T/lanejobs.jsonl" "$T/in.jsonl" ;;
        batch) jq -c '. + {lane: "batch"}' "$T/lanejobs.jsonl" > "$T/in.jsonl" ;;
        auto) jq -c --arg far "$far" --arg near "$near" \
                  '. + {lane: "auto", deadline: (if (.id | ltrimstr("b-") | tonumber) % 2 == 0 then $far else $near end)}' \
                  "$T/lanejobs.jsonl" > "$T/in.jsonl" ;;
    esac
    t0=$(now_ms)
    lf submit "$T/in.jsonl" 2>/dev/null
    ws=()
    for k in 1 2 3; do start_worker "lane$k" --concurrency 64 --log-level warn; ws+=("$WORKER_PID"); done
    done_all() { [ "$(rcli XLEN 'llmfleet:{default}:results')" -ge "$NL" ]; }
    WAIT_POLL=0.2 wait_until 300 done_all || { echo "bench: lanes $lane timed out"; exit 1; }
    t1=$(now_ms)
    kill -TERM "${ws[@]}"; wait "${ws[@]}" 2>/dev/null
    spent=$(rcli HGET 'llmfleet:{default}:state' spent)
    nb=$(lf results 2>/dev/null | jq -r 'select(.lane == "batch") | .id' | wc -l)
    echo "$lane $spent $nb $(( t1 - t0 ))" >> "$T/lanes.txt"
    curl -s -X POST "$FAKE_URL/_reset" >/dev/null
done
base=$(awk '$1 == "sync" {print $2}' "$T/lanes.txt")
printf "  %-8s %14s %10s %12s %14s\n" "lane" "cost (USD)" "vs sync" "batch jobs" "wall (s)"
while read -r lane spent nb ms; do
    printf "  %-8s %14s %10s %12s %14s\n" "$lane" "$(awk "BEGIN {printf \"%.6f\", $spent / 1e6}")" \
        "$(awk "BEGIN {printf \"%.3f\", $spent / $base}")" "$nb" "$(awk "BEGIN {printf \"%.1f\", $ms / 1000}")"
done < "$T/lanes.txt"
fi

if part fleet; then bash scripts/bench-fleet.sh; fi

if part estimate; then
echo "# 7. the input estimate beside the JSON parse it follows: a 1.6 KB request, 7 rounds interleaved (tests/bench/estspeed.c)"
read -r parse_ns est_ns ratio < <("$BIN/estspeed" 7)
printf "  %-44s %10s\n" "baseline: jsonParse (ns)" "$parse_ns"
printf "  %-44s %10s\n" "estimateRequest (ns)" "$est_ns"
printf "  %-44s %10s\n" "ratio estimate / parse" "$ratio"
fi
