# Chaos: CHAOS_JOBS (2,000) jobs, 4 workers, a random worker SIGKILLed
# every ~2 s and replaced. Every id has exactly one result; in flight,
# leases and reservations return to zero; spend equals the results' costs
# plus the reservations of requests lost with their worker (unknown
# outcomes count their reservation), and never less than what the API
# served. `make chaos` runs it long (CHAOS_JOBS=20000).
. "$(dirname "$0")/lib.sh"

n=${CHAOS_JOBS:-2000}
start_redis
start_fakeapi --latency-ms 150 --jitter-ms 100
# Kills here are not a poison job's doing.
lf limits set max_deliveries=20 >/dev/null
gen_jobs "$n" c | lf submit - 2>/dev/null
declare -A live
spawn() { start_worker "w$1" --concurrency 16 --lease-ms 1000; live[$1]=$WORKER_PID; }
for i in 1 2 3 4; do spawn $i; done
next=5 kills=0
deadline=$(( $(now_ms) + ${CHAOS_SECONDS:-600} * 1000 ))
until results_at_least default "$n" || [ "$(now_ms)" -gt "$deadline" ]; do
    sleep "1.$(( RANDOM % 10 ))"                # the chaos: ~every 2 s
    results_at_least default "$n" && break
    keys=("${!live[@]}")
    victim=${keys[RANDOM % ${#keys[@]}]}
    kill -9 "${live[$victim]}" 2>/dev/null
    unset "live[$victim]"
    kills=$((kills + 1))
    spawn $next
    next=$((next + 1))
done
check "all $n jobs done" results_at_least default "$n"
zero() { lf status --json | jq -e '.in_flight == 0 and .leased == 0 and .reserved_usd == 0'; }
check "in flight, leases and reservations back to zero" wait_until 10 zero
lf results --out "$T/r.jsonl" 2>/dev/null
ids=$(jq -r .id "$T/r.jsonl" | sort -u | wc -l)
lines=$(wc -l < "$T/r.jsonl")
okn=$(jq -r 'select(.status == "ok") | .id' "$T/r.jsonl" | wc -l)
st=$(lf status --json)
lost=$(jq .total_lost_in_flight <<<"$st")
spent=$(jq '.spent_usd * 1000000 | round' <<<"$st")
sum=$(jq -s 'map(.cost_usd // "0" | tonumber) | add * 1000000 | round' "$T/r.jsonl")
served=$(fake_stats | jq '(.input_tokens * 3000000 + .output_tokens * 15000000) / 1000000 | ceil')
retries=$(jq .total_retries <<<"$st")
echo "# chaos: jobs=$n kills=$kills results=$lines unique=$ids ok=$okn duplicates=$((lines - ids)) lost_deliveries=$lost retries=$retries"
echo "# spend: fleet $spent micro-USD = results $sum + lost reservations $((spent - sum)); API served $served"
eq "one result per id" "$n" "$ids"
eq "no duplicate" "$n" "$lines"
eq "all ok" "$n" "$okn"
check "workers were killed ($kills)" test "$kills" -ge 3
# Each lost request reserved at most (input + 64 output tokens) at Sonnet
# prices: about 1,200 micro-USD.
check "spend >= results' costs" test "$spent" -ge "$sum"
check "spend - results' costs <= lost deliveries x max reservation" test $((spent - sum)) -le $((lost * 1300))
check "spend never under what the API served" test "$spent" -ge "$served"
finish
