# The worker's Prometheus endpoint (--metrics-addr) and summary line
# (--summary-ms), against the real fake API and Redis: the exposition is
# well formed (tests/tools/promcheck.py), the worker's counters agree with
# what the fake API served and the results stream holds, the fleet's gauges
# with `status --json`, a pause shows with its reason, /healthz follows the
# Redis connection, and bad addresses are configuration errors.
. "$(dirname "$0")/lib.sh"
PROM="python3 $(dirname "$0")/../tools/promcheck.py"

start_redis
start_fakeapi --latency-ms 20 --p500 0.2 --seed 3 --rpm 100000 --itpm 10000000 --otpm 1000000
MPORT=$("$BIN/freeport")
M="http://127.0.0.1:$MPORT"
scrape() { curl -s "$M/metrics"; }
metric() { scrape | $PROM "$@"; }

# Bad addresses: exit 2 and say what was wrong.
ANTHROPIC_API_KEY=$API_KEY "$BIN/llmfleet" worker --redis-url "$REDIS_URL" \
    --metrics-addr nonsense > "$T/bad.out" 2>&1
eq "a malformed --metrics-addr is a configuration error" 2 $?
check "and the error names it" grep -q -- "--metrics-addr must be HOST:PORT.*nonsense" "$T/bad.out"
ANTHROPIC_API_KEY=$API_KEY "$BIN/llmfleet" worker --redis-url "$REDIS_URL" \
    --metrics-addr "127.0.0.1:$REDIS_PORT" > "$T/busy.out" 2>&1
eq "a port in use is a configuration error" 2 $?
check "and the error says it cannot listen" grep -q "cannot listen there" "$T/busy.out"

lf limits set max_spend_usd=100 >/dev/null
gen_jobs 200 m | lf submit - 2>/dev/null
start_worker w1 --concurrency 16 --metrics-addr "127.0.0.1:$MPORT" --summary-ms 1000
check "the endpoint answers" wait_until 10 curl -sf -o /dev/null "$M/metrics"
check "Content-Type is the text exposition 0.0.4" \
    sh -c "curl -sI '$M/metrics' | grep -qi '^Content-Type: text/plain; version=0.0.4'"
check "all 200 jobs have their result" wait_until 60 results_at_least default 200

check "the exposition is well formed" sh -c "curl -s '$M/metrics' | $PROM"
ok_n=$(rcli XRANGE 'llmfleet:{default}:results' - + | grep -c '^ok$')
err_n=$(rcli XRANGE 'llmfleet:{default}:results' - + | grep -c '^error$')
read -r w_ok w_err a2 a5 a4 a429 anone hn < <(metric 'llmfleet_worker_results_total{result="ok"}' \
    'llmfleet_worker_results_total{result="error"}' 'llmfleet_worker_api_requests_total{status="2xx"}' \
    'llmfleet_worker_api_requests_total{status="5xx"}' 'llmfleet_worker_api_requests_total{status="4xx"}' \
    'llmfleet_worker_api_requests_total{status="429"}' 'llmfleet_worker_api_requests_total{status="none"}' \
    'llmfleet_worker_api_request_duration_seconds_count' | tr '\n' ' ')
echo "# worker: ok=$w_ok error=$w_err; API answers 2xx=$a2 5xx=$a5 4xx=$a4 429=$a429 none=$anone; stream ok=$ok_n error=$err_n"
eq "results_total{ok} is what the stream holds" "$ok_n" "$w_ok"
eq "results_total{error} is what the stream holds" "$err_n" "$w_err"
eq "2xx answers are what the fake API served" "$(fake_stats | jq '.status."200" // 0')" "$a2"
eq "5xx answers are what the fake API failed" "$(fake_stats | jq '.status."500" // 0')" "$a5"
check "some were 500s (the test exercises the class)" test "$a5" -gt 0
eq "the latency histogram counts every answer" $((a2 + a5 + a4 + a429 + anone)) "$hn"
check "the Redis call histogram counted calls" test "$(metric llmfleet_worker_redis_call_duration_seconds_count)" -gt 0
eq "one Redis connection made on the main conn" 1 "$(metric 'llmfleet_worker_redis_connects_total{conn="main"}')"

st() { lf status --json | jq -r "$1"; }
fleet_agrees() {
    read -r q ok d w < <(metric llmfleet_queued_jobs 'llmfleet_jobs_total{result="ok"}' \
        llmfleet_done_ids llmfleet_workers_alive | tr '\n' ' ')
    [ "$q" = "$(st .queued)" ] && [ "$ok" = "$(st .total_ok)" ] && [ "$d" = "$(st .done)" ] && [ "$w" = 1 ]
}
check "the fleet gauges agree with status --json (queued, ok, done, workers)" wait_until 15 fleet_agrees
scrape > "$T/scrape.txt"
check "every bucket the API reported has an estimate and a limit" \
    test "$(scrape | grep -c '^llmfleet_bucket_limit{class="sonnet-4",bucket=')" -ge 1

# The Grafana dashboard queries only what a worker exports.
scrape | sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' > "$T/families"
jq -r '.panels[].targets[].expr' "$(dirname "$0")/../../scripts/grafana/llmfleet.json" |
    grep -o 'llmfleet_[a-z_]*' | sed 's/_\(bucket\|sum\|count\)$//' | sort -u > "$T/queried"
eq "every metric the dashboard queries is exported" "" "$(comm -23 "$T/queried" <(sort -u "$T/families") | tr '\n' ' ')"
check "the dashboard queries a dozen metrics" test "$(wc -l < "$T/queried")" -ge 12

lf pause --reason 'maintenance "window"' >/dev/null
paused_shows() { [ "$(metric 'llmfleet_paused{kind="operator",reason="operator: maintenance \"window\""}')" = 1 ]; }
check "an operator pause shows with its kind and (escaped) reason" wait_until 15 paused_shows
scrape > "$T/scrape-paused.txt"
lf resume >/dev/null

eq "an unknown path is 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$M/nope")"
eq "POST is refused (501: the server implements GET and HEAD)" 501 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "$M/metrics")"
eq "/healthz is 200 while Redis is up" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$M/healthz")"

# The summary line: one a second while busy; its ok counts add up.
summed=$(grep 'event=summary' "$T/w1.log" | sed -n 's/.* ok=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
eq "the summary lines' ok counts add up to the worker's" "$w_ok" "$summed"
check "a summary line carries requests and latency" grep -q 'event=summary interval_s=1 requests=[1-9].*latency_mean_ms=' "$T/w1.log"
slots_add_up() {
    grep 'event=summary' "$T/w1.log" | awk '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        if (v["slots_count"] + v["slots_admit"] + v["slots_wait"] + v["slots_http"] + v["slots_settle"] + v["slots_ready"] + v["slots_follow"] + v["slots_held"] != v["busy_slots"]) bad++
        n++ } END { exit !(n > 0 && bad == 0) }'
}
check "each summary line says where its busy slots are (they add up)" slots_add_up
# Idle: no more lines (at most one, covering the last busy second); an
# absence needs a window, hence the sleep.
n_before=$(grep -c 'event=summary' "$T/w1.log")
sleep 3
check "an idle worker logs no summary" test "$(grep -c 'event=summary' "$T/w1.log")" -le $((n_before + 1))
check "the key is nowhere in the exposition" sh -c "! curl -s '$M/metrics' | grep -q '$API_KEY'"

stop_redis
down() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$M/healthz")" = 503 ]; }
check "/healthz is 503 once Redis is gone" wait_until 15 down
eq "redis_up{main} says 0" 0 "$(metric 'llmfleet_worker_redis_up{conn="main"}')"
check "and the worker's own counters are still served" test "$(metric 'llmfleet_worker_results_total{result="ok"}')" = "$w_ok"
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
eq "the worker stops cleanly with the endpoint on" 0 $?
finish
