# The Batch lane (Message Batches, half price), against the fake API's
# batch endpoints:
#   mixed   10,000 batch jobs and 1,000 sync jobs (the sanitizer run: a
#           fifth), 3 workers: one result per
#           id, batch costs at 50 %, the sync jobs done before any batch
#           ends, no request sent twice, spend recorded = the results'
#           costs = what the fake API served at each lane's price, under a
#           spend cap that is never passed.
#   crash   the worker that sends a batch dies as the API's answer arrives
#           (created, not recorded), as a poll's answer arrives, and, in
#           another fleet, before its POST
#           (recorded, not sent; once more with another client's batch of
#           the same size made meanwhile: adopted, its results refused by
#           their custom_ids, undone); the one streaming the results dies
#           after the first chunk: other workers finish each, no batch
#           created twice, every result once.
#   ended   expired requests, and a batch an operator cancels: their jobs
#           come back and finish.
#   limits  the batch endpoints' rate and queue limits (429s), lane auto by
#           deadline, and a spend cap across both lanes that stops the
#           fleet: never passed, against the fake API's accounting.
#   classes a create refused for one class's queue holds that class only:
#           another class's batch goes meanwhile.
#   rss     a results file of 200 MB: the worker's peak RSS (reported).
. "$(dirname "$0")/lib.sh"

start_redis
export LLMFLEET_TEST_BATCH_HOLD_MS=3000   # a dead actor's batch is due again after 3 s

# micro-USD of a result's usage at Sonnet 4.x prices ($3 in, $15 out per
# MTok, rounded up), halved (rounded up) for the batch lane.
COST_JQ='((.input_tokens * 3000000 + .output_tokens * 15000000) / 1000000 | ceil) as $m
    | (if .lane == "batch" then (($m + 1) / 2 | floor) else $m end)'

# results_of FLEET: the stream as JSONL in $T/FLEET.r.jsonl
results_of() { lf results --fleet "$1" --out "$T/$1.r.jsonl" 2>/dev/null; }

# section NAME: the seconds the one before took (CI's log shows where the
# time goes).
sec_name='' sec_t0=$SECONDS
section() {
    [ -n "$sec_name" ] && echo "# $sec_name took $((SECONDS - sec_t0)) s"
    sec_name=$1 sec_t0=$SECONDS
}

# lane_empty FLEET: nothing left leased, reserved or batched.
lane_empty() {
    local k="llmfleet:{$1}"
    [ "$(rcli ZCARD "$k:leases") $(rcli ZCARD "$k:batches") $(rcli HLEN "$k:reserv")" = "0 0 0" ]
}

# ---- mixed ---------------------------------------------------------------
section mixed
# The sanitizer run (LLMFLEET_SHORT) and valgrind (LLMFLEET_WRAP) run a fifth
# of it, with batches processed within 10 s instead of 4: the sync jobs must
# all end before the first batch does, and under valgrind beside CI's other
# legs (the CPU saturated) 200 of them through three wrapped workers can
# take more than 4 s.
NB=10000 NS=1000 BMS=4000
[ -n "${LLMFLEET_SHORT:-}${LLMFLEET_WRAP:-}" ] && NB=2000 NS=200 BMS=10000
start_fakeapi --seed 11 --batch-ms $BMS
NT=$((NB + NS))
lf limits set batch_max_wait=1s batch_poll=500ms batch_max_requests=$((NB * 2 / 5)) \
    max_spend_usd=50 --fleet mix >/dev/null
gen_jobs $NB bj | jq -c '. + {lane: "batch"}' > "$T/mix.b.jsonl"
gen_jobs $NS sj > "$T/mix.s.jsonl"
# interleaved: a sync job after every 10 batch jobs
awk 'NR == FNR { s[FNR] = $0; next } { print } FNR % 10 == 0 { print s[FNR / 10] }' \
    "$T/mix.s.jsonl" "$T/mix.b.jsonl" > "$T/mix.jsonl"
lf submit "$T/mix.jsonl" --fleet mix 2>/dev/null
for i in 1 2 3; do start_worker "mix-w$i" --fleet mix --concurrency 32; done
check "mixed: $NT results within 90 s" wait_until 90 results_at_least mix $NT
check "mixed: the lane is empty (no lease, batch or reservation left)" wait_until 10 lane_empty mix
results_of mix
r="$T/mix.r.jsonl"
eq "mixed: one result per id" "$NT $NT" "$(jq -r .id "$r" | sort -u | wc -l) $(wc -l < "$r")"
eq "mixed: all ok" "$NT" "$(jq -r 'select(.status == "ok") | .id' "$r" | wc -l)"
eq "mixed: batch jobs went batch, sync jobs sync" "$NB $NS" \
    "$(jq -r 'select(.lane == "batch" and (.batch_id | startswith("msgbatch_")) and (.id | startswith("bj-"))) | .id' "$r" | wc -l) $(jq -r 'select(.lane == null and .batch_id == null and (.id | startswith("sj-"))) | .id' "$r" | wc -l)"
eq "mixed: every cost is usage x price (batch: half, rounded up)" "0" \
    "$(jq -r "($COST_JQ) as \$want | select(((.cost_usd | tonumber) * 1000000 | round) != \$want) | .id" "$r" | wc -l)"
eq "mixed: meta echoed in batch results" "0" \
    "$(jq -r 'select(.lane == "batch" and .meta.n != (.id | split("-") | last | tonumber)) | .id' "$r" | wc -l)"
last_sync=$(jq -rs '[.[] | .id] | map(startswith("sj-")) | rindex(true)' "$r")
first_batch=$(jq -rs '[.[] | .id] | map(startswith("bj-")) | index(true)' "$r")
check "mixed: the sync jobs were not held by the batch lane (all $NS before the first batch result: $last_sync < $first_batch)" \
    test "$last_sync" -lt "$first_batch"
st=$(fake_stats)
eq "mixed: the API saw each sync request once" "$NS" "$(echo "$st" | jq .requests_total)"
eq "mixed: the API saw each batch request once" "$NB" "$(echo "$st" | jq .batches.requests)"
batches=$(echo "$st" | jq .batches.created)
eq "mixed: batches created at the API = batches finished" "$batches" \
    "$(rcli HGET 'llmfleet:{mix}:stats' batches_done)"
check "mixed: batches of at most $((NB * 2 / 5)) requests ($batches for $NB)" test "$batches" -ge 3
spent=$(rcli HGET 'llmfleet:{mix}:state' spent)
sum=$(jq -s "map($COST_JQ) | add" "$r")
eq "mixed: spend recorded = the results' costs (micro-USD)" "$sum" "$spent"
# The fake's own accounting: tokens served per lane at that lane's price
# (per-request rounding: within 1 micro-USD a request).
served=$(echo "$st" | jq '(.input_tokens * 3 + .output_tokens * 15) + ((.batches.input_tokens * 3 + .batches.output_tokens * 15) / 2)')
check "mixed: spend recorded ($spent) = served at each lane's price ($served) within rounding" \
    awk -v a="$spent" -v b="$served" -v n="$NT" 'BEGIN { d = a - b; exit !(d >= 0 && d <= n) }'
check "mixed: spend under the cap (50 USD)" test "$spent" -le 50000000
lf status --fleet mix > "$T/mix.status" 2>&1
check "mixed: status shows the lane's savings" grep -qE 'batch lane +0 batches open \(0 jobs\), [0-9]+ done, \$[0-9.]+ saved' "$T/mix.status"

# ---- crash ----------------------------------------------------------------
section crash
# crash_case FLEET POINT: worker A dies at POINT; B finishes.
crash_case() {
    local fleet=$1 point=$2 n=600
    curl -s -X POST "$FAKE_URL/_reset" >/dev/null
    lf limits set batch_max_wait=300ms batch_poll=300ms --fleet "$fleet" >/dev/null
    gen_jobs $n "$fleet" | jq -c '. + {lane: "batch"}' | lf submit - --fleet "$fleet" 2>/dev/null
    LLMFLEET_TEST_CRASH_AT=$point start_worker "$fleet-a" --fleet "$fleet" --concurrency 32
    local a=$WORKER_PID
    check "$fleet: worker A died at $point" wait_until 30 sh -c "! kill -0 $a 2>/dev/null"
    grep -q "event=test_crash point=$point" "$T/$fleet-a.log" || fail "$fleet: A's log shows no crash at $point"
    [ -n "${3:-}" ] && "$3"
    start_worker "$fleet-b" --fleet "$fleet" --concurrency 32
    # (A's batch is due again 3 s after its take; the bound is wide for a
    # worker under valgrind beside CI's other legs.)
    check "$fleet: $n results within 75 s" wait_until 75 results_at_least "$fleet" $n
    check "$fleet: the lane is empty" wait_until 10 lane_empty "$fleet"
    results_of "$fleet"
    local r="$T/$fleet.r.jsonl"
    eq "$fleet: one result per id, all ok" "$n $n $n" \
        "$(jq -r .id "$r" | sort -u | wc -l) $(wc -l < "$r") $(jq -r 'select(.status == "ok") | .id' "$r" | wc -l)"
    local st
    st=$(fake_stats)
    eq "$fleet: one batch created at the API, each request once" "$((1 + ${FOREIGN:-0})) $((n * (1 + ${FOREIGN:-0})))" \
        "$(echo "$st" | jq '"\(.batches.created) \(.batches.requests)"' -r)"
}
# Another client of the key makes a batch of the same size at the same
# moment (Haiku requests, custom_ids of its own).
foreign_batch() {
    local n=600
    jq -nc --argjson n $n '{requests: [range(1; $n + 1) | {custom_id: "other-\(.)", params:
        {model: "claude-haiku-4-5", max_tokens: 9, messages: [{role: "user", content: "other \(.)"}]}}]}' |
        curl -s -o /dev/null -w '%{http_code}' -H "x-api-key: $API_KEY" -H 'anthropic-version: 2023-06-01' \
            -H 'content-type: application/json' --data-binary @- "$FAKE_URL/v1/messages/batches" > "$T/foreign.code"
}
crash_case cposted batch_posted
grep -q "event=batch_found_at_api" "$T/cposted-b.log" && ok "cposted: B found A's batch at the API and adopted it" \
    || fail "cposted: B did not find A's batch at the API"
crash_case cbefore batch_before_post
grep -q "event=batch_not_at_api" "$T/cbefore-b.log" && ok "cbefore: B looked at the API, found nothing, sent it" \
    || fail "cbefore: B did not look for the batch at the API"
FOREIGN=1 crash_case cforeign batch_before_post foreign_batch
eq "cforeign: the other client's batch was created" "200" "$(cat "$T/foreign.code")"
grep -q "event=batch_foreign_results" "$T/cforeign-b.log" && ok "cforeign: B adopted the other batch (its size and time), saw its custom_ids were not its own, undid it" \
    || fail "cforeign: B did not adopt and undo the other batch"
eq "cforeign: no result holds the other batch's answers" "0" \
    "$(jq -r 'select(.response.model != "claude-sonnet-4-5") | .id' "$T/cforeign.r.jsonl" | wc -l)"
crash_case cpolled batch_polled
crash_case cresults batch_results
check "cresults: B settled the rest, A's lines refused as settled" \
    grep -q 'event=batch_done .*already_settled=[1-9]' "$T/cresults-b.log"

# A new fake API for the next section: the old one is killed outright (a
# results stream may be open; the fake is not under test here).
fresh_fake() { kill -9 "$FAKE_PID" 2>/dev/null; start_fakeapi "$@"; }

# ---- ended: expired, canceled ---------------------------------------------
section ended
fresh_fake --seed 5 --batch-ms 1500 --batch-expire-ms 1000
# a third of the requests expire each time: 12 attempts leave ~1 in 500,000
lf limits set batch_max_wait=300ms batch_poll=300ms max_attempts=12 base_delay=100ms \
    max_delay=1s --fleet exp >/dev/null
gen_jobs 200 ex | jq -c '. + {lane: "batch"}' | lf submit - --fleet exp 2>/dev/null
start_worker exp-w1 --fleet exp --concurrency 16
check "expired: 200 results within 60 s" wait_until 60 results_at_least exp 200
results_of exp
r="$T/exp.r.jsonl"
eq "expired: one result per id, all ok" "200 200 200" \
    "$(jq -r .id "$r" | sort -u | wc -l) $(wc -l < "$r") $(jq -r 'select(.status == "ok") | .id' "$r" | wc -l)"
check "expired: the API expired requests ($(fake_stats | jq .batches.expired)), and they came back (results with attempts > 1: $(jq -r 'select(.attempts > 1) | .id' "$r" | wc -l))" \
    test "$(jq -r 'select(.attempts > 1) | .id' "$r" | wc -l)" -gt 0 -a "$(fake_stats | jq .batches.expired)" -gt 0
check "expired: the lane is empty" wait_until 10 lane_empty exp

# Each request is processed at a draw within --batch-ms: over 10 minutes,
# one of the 100 was now and then done in the seconds before the cancel
# (more often under the sanitizers); over ~24 h (the API's own window),
# about one run in 200 sees one. One done before the cancel is a batch
# result, not a failure: the checks count both ways.
fresh_fake --seed 6 --batch-ms 86000000
lf limits set batch_max_wait=300ms batch_poll=300ms default_lane=batch --fleet can >/dev/null
gen_jobs 100 cn | lf submit - --fleet can 2>/dev/null
start_worker can-w1 --fleet can --concurrency 16
submitted() { lf batches --fleet can --json | grep -q '"state":"submitted"'; }
check "canceled: the batch went to the API" wait_until 20 submitted
bid=$(lf batches --fleet can --json | jq -r .batch | head -1)
lf status --fleet can > "$T/can.status" 2>&1
check "canceled: status lists the batch in progress (state, requests, age)" \
    grep -qE "^  $bid +msgbatch_[A-Za-z0-9]+ +sonnet-4 +submitted +100 " "$T/can.status"
lf limits set default_lane=sync --fleet can >/dev/null     # what comes back goes sync
check "canceled: llmfleet batches cancel $bid" lf batches cancel "$bid" --fleet can
check "canceled: 100 results within 30 s" wait_until 30 results_at_least can 100
results_of can
r="$T/can.r.jsonl"
eq "canceled: one result per id, all ok" "100 100 100" \
    "$(jq -r .id "$r" | sort -u | wc -l) $(wc -l < "$r") $(jq -r 'select(.status == "ok") | .id' "$r" | wc -l)"
read -r ncan nsuc < <(fake_stats | jq -r '"\(.batches.canceled) \(.batches.succeeded)"')
eq "canceled: each request the API canceled ($ncan) came back through the sync lane, each it processed first ($nsuc) is a batch result" \
    "$ncan $nsuc" "$(jq -r 'select(.lane == null and .attempts == 2) | .id' "$r" | wc -l) $(jq -r 'select(.lane == "batch") | .id' "$r" | wc -l)"
check "canceled: the API canceled the batch's requests ($ncan of 100, $nsuc processed before the cancel)" \
    test "$ncan" -ge 98 -a $((ncan + nsuc)) -eq 100
check "canceled: the lane is empty" wait_until 10 lane_empty can

# ---- limits: the batch endpoints' rate and queue, auto lanes, a spend cap ----
section limits
# The fake API allows 60 calls a minute to its batch endpoints and 300
# batch requests processing per class; 900 jobs, some with deadlines
# (lane auto), under a spend cap that stops the fleet: the lane waits out
# the 429s, creates no batch twice, the sync jobs flow meanwhile, the cap
# holds against the fake API's own accounting. A create refused for the
# queue's room is told to retry after 15 s (the fake's default, 60 s, kept
# this section a minute longer in each of CI's three runs of it).
fresh_fake --seed 9 --batch-ms 1500 --batch-rpm 60 --batch-queue 300 --batch-queue-retry 15
lf limits set batch_max_wait=300ms batch_poll=1s batch_max_requests=300 \
    max_spend_usd=0.12 --fleet lim >/dev/null
gen_jobs 600 lb | jq -c '. + {lane: "batch"}' > "$T/lim.jsonl"
# deadlines: a week away (batch), and an hour away (sync)
gen_jobs 300 la | jq -c --arg far "$(date -u -d '+7 days' +%FT%TZ)" --arg near "$(date -u -d '+1 hour' +%FT%TZ)" \
    '. + {lane: "auto", deadline: (if (.meta.n % 2) == 0 then $far else $near end)}' >> "$T/lim.jsonl"
lf submit "$T/lim.jsonl" --fleet lim 2>/dev/null
start_worker lim-w1 --fleet lim --concurrency 16
start_worker lim-w2 --fleet lim --concurrency 16
stopped() { rcli HEXISTS 'llmfleet:{lim}:state' budget_cap | grep -q 1; }
lim_done() { stopped && [ "$(rcli HGET 'llmfleet:{lim}:state' reserved)" = "0" ] && lane_empty lim; }
check "limits: the lane ran to the cap, and everything admitted settled (90 s: a create refused holds creates the 15 s the API says)" wait_until 90 lim_done
results_of lim
r="$T/lim.r.jsonl"
st=$(fake_stats)
eq "limits: no id twice" "0" "$(jq -r 'select(.id) | .id' "$r" | sort | uniq -d | wc -l)"
auto() { jq -r "select(.id and (.id | startswith(\"la-\")) and $1) | .id" "$r" | wc -l; }
eq "limits: the auto jobs went by their deadlines (none the other way)" "0 0" \
    "$(auto '.lane == "batch" and (.meta.n % 2) == 1') $(auto '.lane == null and (.meta.n % 2) == 0')"
check "limits: ... both ways ($(auto '.lane == "batch"') batch, $(auto '.lane == null') sync)" \
    test "$(auto '.lane == "batch"')" -gt 0 -a "$(auto '.lane == null')" -gt 0
# A create refused for room goes first at the hold's end, and none goes into
# a queue known to be full: no batch is refused twice (a batch of the
# queue's size was, behind the small ones formed during each hold).
eq "limits: no batch refused twice for the queue's room" "0" \
    "$(cat "$T"/lim-w*.log | grep 'event=batch_rate_limited' | grep 'processing queue' |
       grep -o 'batch=b[0-9]*' | sort | uniq -d | wc -l)"
check "limits: the endpoints' limits answered 429 ($(echo "$st" | jq .batches.rate_limited)) and the lane waited them out" \
    test "$(echo "$st" | jq .batches.rate_limited)" -gt 0
eq "limits: each request created once at the API" "0" \
    "$(echo "$st" | jq '.batches.requests - ([.batches.succeeded, .batches.errored, .batches.canceled, .batches.expired, .batches.processing] | add)')"
eq "limits: batch results = requests the API took" "$(echo "$st" | jq .batches.requests)" \
    "$(jq -r 'select(.lane == "batch") | .id' "$r" | wc -l)"
spent=$(rcli HGET 'llmfleet:{lim}:state' spent)
served=$(echo "$st" | jq '(.input_tokens * 3 + .output_tokens * 15) + ((.batches.input_tokens * 3 + .batches.output_tokens * 15) / 2)')
check "limits: spend ($spent micro-USD) never passed the cap (120000)" test "$spent" -le 120000
check "limits: spend recorded ($spent) = served by the fake API at each lane's price ($served) within rounding" \
    awk -v a="$spent" -v b="$served" -v n=900 'BEGIN { d = a - b; exit !(d >= 0 && d <= n) }'
eq "limits: one budget_exceeded entry" "1" "$(jq -r 'select(.status == "budget_exceeded") | .status' "$r" | wc -l)"

# ---- classes: a create refused for one class's queue holds that class ----
section classes
# The fake API takes 100 batch requests processing per model class (each
# done at a draw within 10 s). Sonnet's 200 jobs make two batches: the
# second is refused (429, retry-after 60 s) while the first runs. Haiku's
# batch, formed after that refusal, goes at once: the API's queue is per
# class (a hold of every class kept it back the whole minute). The fleet
# stops before Sonnet's hold ends: sending after a hold is `limits`'s.
# (Scripts only: not in the sanitizer and valgrind runs, whose worker paths
# the other sections take.)
if [ -z "${LLMFLEET_SHORT:-}${LLMFLEET_WRAP:-}" ]; then
fresh_fake --seed 7 --batch-ms 10000 --batch-queue 100
lf limits set batch_max_wait=300ms batch_poll=500ms batch_max_requests=100 --fleet cls >/dev/null
gen_jobs 200 cs | jq -c '. + {lane: "batch"}' | lf submit - --fleet cls 2>/dev/null
start_worker cls-w1 --fleet cls --concurrency 8
cls=("$WORKER_PID")
start_worker cls-w2 --fleet cls --concurrency 8
cls+=("$WORKER_PID")
refused() { cat "$T"/cls-w*.log | grep 'event=batch_rate_limited' | grep -q 'processing queue'; }
check "classes: a Sonnet batch refused for the queue's room" wait_until 30 refused
c0=$(fake_stats | jq .batches.created)
gen_jobs 50 ch claude-haiku-4-5 | jq -c '. + {lane: "batch"}' | lf submit - --fleet cls 2>/dev/null
t0=$(date +%s)
haiku_done() {
    [ "$(rcli XRANGE 'llmfleet:{cls}:results' - + | grep -c '^ch-[0-9]*$')" -ge 50 ]
}
check "classes: Haiku's 50 batch results within 50 s" wait_until 50 haiku_done
echo "# classes: Haiku's results $(( $(date +%s) - t0 )) s after their submit"
eq "classes: ... while Sonnet's creates waited out their hold (60 s): one batch created since the refusal, Haiku's" \
    "$((c0 + 1))" "$(fake_stats | jq .batches.created)"
kill -TERM "${cls[@]}"; wait "${cls[@]}" 2>/dev/null
results_of cls
r="$T/cls.r.jsonl"
eq "classes: Haiku's results one per id, from the batch lane" "50 50" \
    "$(jq -r 'select(.id | startswith("ch-")) | .id' "$r" | sort -u | wc -l) $(jq -r 'select((.id | startswith("ch-")) and .lane == "batch") | .id' "$r" | wc -l)"
fi

# ---- rss: 200 MB of results ------------------------------------------------
section rss
fresh_fake --seed 8 --batch-ms 100 --output-tokens 1024 --output-dist fixed
# One batch of 48,000 answers of 1,024 tokens (the fake's text is 4 KB at
# most): a results file of ~210 MB.
N=${BATCH_RSS_JOBS:-48000}
[ -n "${LLMFLEET_SHORT:-}${LLMFLEET_WRAP:-}" ] && N=4000     # (sanitizer, valgrind: its paths, not its size)
lf limits set batch_max_wait=120s batch_poll=300ms batch_max_requests=$N --fleet rss >/dev/null
gen_jobs "$N" rs | jq -c '. + {lane: "batch"} | .request.max_tokens = 1024' | lf submit - --fleet rss 2>/dev/null
start_worker rss-w1 --fleet rss --concurrency 64
pid=$WORKER_PID
check "rss: $N results within 180 s" wait_until 180 results_at_least rss "$N"
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
bytes=$(fake_stats | jq '.batches.result_bytes // 0')
lines=$(rcli XLEN 'llmfleet:{rss}:results')
echo "# rss: $lines results, $(fake_stats | jq .batches.created) batch, $((bytes / 1048576)) MB of result lines streamed; worker peak RSS $((hwm / 1024)) MB"
if [ -z "${LLMFLEET_SHORT:-}${LLMFLEET_WRAP:-}" ]; then
    check "rss: the results were over 200 MB" test "$bytes" -ge 209715200
    check "rss: the worker's peak RSS stayed under 64 MB ($((hwm / 1024)) MB)" test "$hwm" -lt 65536
fi

section ""
finish
