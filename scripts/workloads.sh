# workloads.sh — the workloads real batch users send, each run against the
# fake API under a chosen reading of the API's docs (sourced, bash; needs
# fleet-lib.sh, BIN, T, API_KEY). Used by tests/integration/test_workloads.sh
# (assertions) and scripts/bench-fleet.sh (the table beside naive SDK loops).
#
#   wl_case WORKLOAD HEADERS RULE [WHO]   one run; prints one JSON line
#
# WORKLOAD  english   uniform English text; the input bucket binds
#           output    max_tokens 2,048, real output ~150; the output bucket
#                     binds
#           cached    an 8k-token system prompt with cache_control and short
#                     user turns; reads do not count toward ITPM, so the
#                     request bucket binds
#           mixed     Sonnet and Haiku jobs in one queue, each class with its
#                     own limits; Sonnet's input bucket binds, Haiku's is
#                     roomy (and is also run alone, for its unconstrained time)
#           images    20 images of ~1.6 MB base64 among 100 text jobs, a roomy
#                     bucket (and the same jobs with no limit at all)
#           japanese  Japanese prompts as raw UTF-8; the input bucket binds
#           counted   english, but the fake counts tokens otherwise than the
#                     docs say (string characters / 4): calibration at work
# HEADERS   admit | answer: when the fake stamps -remaining
# RULE      actual | reserve: how the fake counts output (2026 / 2025 docs)
# WHO       llmfleet (default: 4 workers x 32 slots, soft floor 10 %, hard
#           floor 1 %) | naive (8 loops of the official SDK, default retries)
#
# The JSON line: workload, headers, rule, who, jobs, ok, failed, unique
# (result ids), bucket (the binding one), used (its steady-state use, % of
# the window's refill, see wl_metrics),
# secs (the window), drawdown (the level's fall over it), requests, r429,
# r429_pct (whole run),
# secs429 (seconds of the window with a 429: time at the hard floor),
# hard_floor_hits, est_err_pct (the input estimate's error after warm-up,
# per the fleet's status), and per workload: alone_s / mixed_s (Haiku's
# finish time alone and in the mix), free_s / roomy_s (images; refill_s:
# the roomy bucket's refill of what the API counted, which max_burst
# never outruns).
# Env: WL_ENFORCE_MS (the fake API also enforces each per-minute limit
# over that many ms, the docs' shorter intervals: --enforce-ms),
# WL_SECONDS (45: steady seconds a paced run lasts), WL_SKIP (5),
# WL_TAIL (3), WL_TRACE=1 samples the fleet's
# estimates of class WL_TRACE_CLASS (sonnet-4, from `llmfleet status`)
# beside the fake API's exact levels into $T/trace.jsonl (tests/tools/pacetrace.py; its
# `summary` prints the estimate's largest excess over the level).

WL_SECONDS=${WL_SECONDS:-45}
WL_PAD=${WL_PAD:-10}
WL_SKIP=${WL_SKIP:-5}
WL_TAIL=${WL_TAIL:-3}
WL_KEYP='llmfleet:{default}'

# A text of n ASCII characters; a text of n Japanese characters.
wl_ascii() { head -c "$1" /dev/zero | tr '\0' a | sed 's/aaaaa/word /g'; }
# Source code of about n characters, JSON-escaped (newlines as \n).
wl_code() {
    local l='    if (buf[i] != 0 && n < max) { n += emit(&out, buf[i], i); }\n' out=""
    while [ "${#out}" -lt "$1" ]; do out="$out$l"; done
    printf '%s' "$out"
}
wl_japanese() {
    local s="東京の天気は晴れです。明日は雨が降るでしょう。" out=""
    while [ "${#out}" -lt "$1" ]; do out="$out$s"; done
    printf '%s' "${out:0:$1}"
}

# A base64 PNG of w x h pixels padded to about n bytes (the header is
# real, the rest is filler: only the size matters to token counts).
wl_png() {
    local w=$1 h=$2 n=$3
    { printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR'
      printf "%08x%08x" "$w" "$h" | xxd -r -p
      printf '\x08\x02\x00\x00\x00\x00\x00\x00\x00'
      head -c $(( n * 3 / 4 )) /dev/urandom; } | base64 -w0
}

# N jobs whose one user message is TEXT and the job's number, as JSONL.
wl_text_jobs() {
    local wl=$1 n=$2 model=$3 maxtok=$4 text=$5 i
    for i in $(seq 1 "$n"); do
        printf '{"id":"%s-%d","request":{"model":"%s","max_tokens":%d,"messages":[{"role":"user","content":"%s %d"}]}}\n' "$wl" "$i" "$model" "$maxtok" "$text" "$i"
    done
}

# wl_jobs WORKLOAD N [MODEL]: N jobs of the workload as JSONL.
wl_jobs() {
    local wl=$1 n=$2 model=${3:-claude-sonnet-4-5} i text
    case $wl in
    english|counted) wl_text_jobs "$wl" "$n" "$model" 16 "$(wl_ascii 400)" ;;
    output)   wl_text_jobs "$wl" "$n" "$model" 2048 "$(wl_ascii 200)" ;;
    japanese) wl_text_jobs "$wl" "$n" "$model" 16 "$(wl_japanese 100)" ;;
    code)     wl_text_jobs "$wl" "$n" "$model" 16 "$(wl_code 400)" ;;
    cached)
        text=$(wl_ascii 32000)
        for i in $(seq 1 "$n"); do
            printf '{"id":"%s-%d","request":{"model":"%s","max_tokens":16,"system":[{"type":"text","text":"%s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"Question %d: what does the text say about item %d?"}]}}\n' "$wl" "$i" "$model" "$text" "$i" "$i"
        done ;;
    images)
        text=$(wl_ascii 400)
        local png; png=$(wl_png 1092 1092 1600000)
        for i in $(seq 1 "$n"); do
            if [ $(( i % 6 )) -eq 0 ]; then
                printf '{"id":"%s-%d","request":{"model":"%s","max_tokens":16,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"%s"}},{"type":"text","text":"Describe image %d."}]}]}}\n' "$wl" "$i" "$model" "$png" "$i"
            else
                printf '{"id":"%s-%d","request":{"model":"%s","max_tokens":16,"messages":[{"role":"user","content":"%s %d"}]}}\n' "$wl" "$i" "$model" "$text" "$i"
            fi
        done ;;
    esac
}

# The fake API's options, the binding bucket (a jq path into a /_stats
# series second), its limit per minute and the job count of a workload:
# WL_SECONDS + WL_PAD (10) s of the binding bucket's refill (the window,
# WL_SKIP and WL_TAIL around it). Not the first minute's bucketful on top:
# a class goes at its refill rate from the start (max_burst), so that
# bucketful made every case a minute longer. The output bucket is outside
# the burst (lib/pace.lua) and its first bucketful still goes at once:
# 60 + s whatever WL_PAD. bench-fleet.sh sets WL_PAD=60: its naive
# clients spend the first bucketful at once, and would otherwise never
# meet the limit.
wl_params() {
    local s=$WL_SECONDS p=$WL_PAD
    WL_FAKE=(--latency-ms 200 --jitter-ms 100 --tokenizer realistic --caching --seed 7 --quiet)
    WL_WORKERS=4; WL_SLOTS=32
    case $1 in
    english)  WL_FAKE+=(--itpm 60000); WL_COL='.itpm'; WL_CAP=60000
              WL_N=$(( 60000 * (p + s) / 60 / 105 )) ;;
    counted)  # english, but the API counts otherwise than the docs say
              # (every string character / 4, keys and roles included): the
              # fleet's calibration has to find the ratio.
              WL_FAKE+=(--itpm 60000 --tokenizer chars); WL_COL='.itpm'; WL_CAP=60000
              WL_N=$(( 60000 * (p + s) / 60 / 105 )) ;;
    code)     # source code, counted as BPE tokenizers count it (a token
              # per symbol): far from 4 characters a token, calibrated.
              WL_FAKE+=(--itpm 60000 --tokenizer code); WL_COL='.itpm'; WL_CAP=60000
              WL_N=$(( 60000 * (p + s) / 60 / 223 )) ;;   # 223 tokens a job (113 as text)
    output)   WL_FAKE+=(--itpm 1000000 --otpm 18000 --output-tokens 150 --per-token-ms 2)
              WL_COL='.output'; WL_CAP=18000; WL_N=$(( 18000 * (60 + s) / 60 / 150 )) ;;
    cached)   WL_FAKE+=(--rpm 600 --itpm 40000); WL_COL='(.requests - .r429)'; WL_CAP=600
              WL_N=$(( 600 * (p + s) / 60 )) ;;
    mixed)    WL_FAKE+=(--class-limits sonnet=100000,30000,1000000
                        --class-limits haiku=100000,300000,1000000)
              WL_COL='(.classes.sonnet.itpm // 0)'; WL_CAP=30000
              WL_N=$(( 30000 * (p + s) / 60 / 105 )); WL_NH=$(( WL_N * 8 )) ;;
    images)   WL_FAKE+=(--itpm 200000); WL_COL='.itpm'; WL_CAP=0; WL_N=120 ;;
    japanese) WL_FAKE+=(--itpm 60000); WL_COL='.itpm'; WL_CAP=60000
              WL_N=$(( 60000 * (p + s) / 60 / 105 )) ;;
    *) echo "workloads: unknown workload $1" >&2; return 1 ;;
    esac
    [ -n "${WL_ENFORCE_MS:-}" ] && WL_FAKE+=(--enforce-ms "$WL_ENFORCE_MS")
    return 0
}

# wl_metrics STATS_JSON: the steady-window figures of column WL_COL. The
# bucket's level is simulated from the fake's own count (full at the first
# request, + limit/60 a second up to the limit, - what it served); the
# window runs from WL_SKIP s after the level first falls to half the limit
# (the initial full bucket drawn down: a client that holds a reserve
# between 10 and 50 % is as steady as one at the floor) to WL_TAIL s before
# the last request.
# used = what was served in the window, less any drawdown of the level over
# it, as a share of the window's refill: 100 % means every token that
# refilled was used; a level built up (or refill lost to a full bucket)
# counts against it; a reserve drawn down does not count for it. In the
# formula, served less the exact drawdown (draw1: the level's one-second
# samples at the ends) is the refill not lost at a full bucket; a build-up
# is judged on the level's mean over the 5 s around each end (draw): the
# level is a sawtooth of single requests (under output_rule=reserve each
# answer is a tooth of max_tokens), and a single second's sample of it
# would measure where in its tooth the window happened to end, not a
# reserve built up.
wl_metrics() {
    jq -c --argjson cap "$WL_CAP" --argjson skip "$WL_SKIP" --argjson tail "$WL_TAIL" "
        def v: $WL_COL;
        {requests: 0, r429: 0, itpm: 0, input: 0, output: 0, classes: {}} as \$zero
        | (.series | sort_by(.t)) as \$s
        | (\$s | map({key: (.t | tostring), value: .}) | from_entries) as \$by
        | (\$s | map(select(.requests > 0) | .t)) as \$rt
        | (\$rt | min) as \$t0 | (\$rt | max) as \$tl
        | (\$cap / 60) as \$rate
        | (reduce range(\$t0; \$tl + 1) as \$t ({l: \$cap, tb: null, lv: {}};
            .lv[\$t | tostring] = .l
            | ((\$by[\$t | tostring] // \$zero) | v // 0) as \$x
            | .l = ([.l + \$rate, \$cap] | min) - \$x
            | if .tb == null and \$cap > 0 and .l <= 0.5 * \$cap then .tb = \$t else . end)) as \$sim
        | (\$sim.tb // \$t0) as \$tb
        | (\$tb + \$skip + 1) as \$ts | (\$tl - \$tail) as \$te | (\$te - \$ts) as \$secs
        | ([range(\$ts; \$te) | ((\$by[tostring] // \$zero) | v // 0)] | add // 0) as \$sw
        | ((\$sim.lv[\$ts | tostring] // 0) - (\$sim.lv[\$te | tostring] // 0)) as \$draw1
        | def lvl(\$t): [range(\$t - 2; \$t + 3) | \$sim.lv[tostring] // empty]
                        | if length > 0 then add / length else 0 end;
          (lvl(\$ts) - lvl(\$te)) as \$draw
        | [range(\$ts; \$te) | (\$by[tostring] // {r429: 0})] as \$w
        | {used: (if \$cap > 0 and \$secs > 1
                  then 100 * (\$sw - \$draw1 + ([\$draw, 0] | min)) / (\$rate * \$secs) else null end),
           secs: \$secs, drawdown: \$draw, secs429: ([\$w[] | select(.r429 > 0)] | length),
           requests: .requests_total, r429: (.status[\"429\"] // 0),
           r429_pct: (if .requests_total > 0 then 100 * (.status[\"429\"] // 0) / .requests_total else 0 end),
           run_s: (\$tl - \$t0 + 1)}" "$1"
}

# Seconds from t0_ms to the stream id of the last result matching PREFIX.
wl_finish_s() {
    local prefix=$1 t0=$2
    "$BIN/llmfleet" results --redis-url "$REDIS_URL" 2>/dev/null |
        jq -rs --arg p "$prefix" --argjson t0 "$t0" '
            [.[] | select((.id // "") | startswith($p)) | .stream_id // empty] |
            if length == 0 then -1 else (map(split("-")[0] | tonumber) | max - $t0) / 1000 end'
}

# Run the fleet over jobs file $1 (n jobs) on the running fake; waits for
# every result. Sets WL_T0 (ms, when the jobs were pushed).
wl_fleet() {
    local jobs=$1 n=$2 rule=$3 i pids=()
    rcli FLUSHALL >/dev/null
    lf limits set soft_token_floor=10% hard_token_floor=1% "output_rule=$rule" \
        "max_in_flight=$(( WL_WORKERS * WL_SLOTS ))" >/dev/null || return 1
    local trace=
    if [ -n "${WL_TRACE:-}" ]; then
        python3 "$FLEET_LIB_DIR/../tests/tools/pacetrace.py" sample "$BIN/llmfleet" "$REDIS_URL" \
            "$FAKE_URL" "${WL_TRACE_CLASS:-sonnet-4}" "$T/trace.jsonl" & trace=$!
        wait_until 10 test -s "$T/trace.jsonl"
    fi
    WL_T0=$(now_ms)
    lf submit "$jobs" >/dev/null 2>&1 || { echo "workloads: submit failed" >&2; return 1; }
    for i in $(seq 1 "$WL_WORKERS"); do
        start_worker "w$i" --concurrency "$WL_SLOTS" --log-level warn
        pids+=("$WORKER_PID")
    done
    wait_until $(( WL_SECONDS * 4 + 180 )) sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN '$WL_KEYP:results') -ge $n ]"
    local rc=$?
    lf status --json > "$T/status.json" 2>/dev/null
    for i in "${pids[@]}"; do kill -TERM "$i" 2>/dev/null; done
    for i in "${pids[@]}"; do wait "$i" 2>/dev/null; done
    if [ -n "$trace" ]; then kill "$trace"; wait "$trace" 2>/dev/null; fi
    return $rc
}

wl_naive() {
    local jobs=$1 sdk
    sdk=$(cd "$FLEET_LIB_DIR/../tests/sdk" && pwd)
    if [ ! -f "$sdk/node_modules/.package-lock.json" ]; then
        (cd "$sdk" && npm ci --silent --no-audit --no-fund) || return 1
    fi
    ANTHROPIC_API_KEY=$API_KEY ANTHROPIC_BASE_URL=$FAKE_URL \
        node "$sdk/naive.mjs" "$jobs" 8 > "$T/naive.out" 2> "$T/naive.err"
}

# wl_case WORKLOAD HEADERS RULE [WHO]
wl_case() {
    local wl=$1 hd=$2 rule=$3 who=${4:-llmfleet} extra='{}'
    wl_params "$wl" || return 1
    start_redis >/dev/null || return 1
    if [ "$wl" = mixed ]; then
        { wl_jobs english "$WL_NH" claude-haiku-4-5 | sed 's/"id":"english-/"id":"haiku-/'
        } > "$T/haiku.jsonl"
        if [ "$who" = llmfleet ]; then
            start_fakeapi "${WL_FAKE[@]}" --headers-at "$hd" --otpm-mode "$rule" || return 1
            wl_fleet "$T/haiku.jsonl" "$WL_NH" "$rule"
            local alone; alone=$(wl_finish_s haiku- "$WL_T0")
            kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
            extra=$(jq -nc --argjson a "$alone" '{alone_s: $a}')
        fi
        # One Sonnet job in nine, spread through the queue.
        wl_jobs english "$WL_N" claude-sonnet-4-5 | sed 's/"id":"english-/"id":"sonnet-/' > "$T/sonnet.jsonl"
        awk 'NR == FNR { s[NR] = $0; ns = NR; next }
             { print; if (FNR % 8 == 0 && ++k <= ns) print s[k] }
             END { while (++k <= ns) print s[k] }' "$T/sonnet.jsonl" "$T/haiku.jsonl" > "$T/jobs.jsonl"
    elif [ "$wl" = images ]; then
        wl_jobs images "$WL_N" > "$T/jobs.jsonl"
        if [ "$who" = llmfleet ]; then
            start_fakeapi --latency-ms 200 --jitter-ms 100 --tokenizer realistic --seed 7 --quiet \
                --headers-at "$hd" --otpm-mode "$rule" || return 1
            wl_fleet "$T/jobs.jsonl" "$WL_N" "$rule"
            local free; free=$(wl_finish_s images- "$WL_T0")
            kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
            extra=$(jq -nc --argjson a "$free" '{free_s: $a}')
        fi
    else
        wl_jobs "$wl" "$WL_N" > "$T/jobs.jsonl"
    fi
    local n; n=$(wc -l < "$T/jobs.jsonl")
    start_fakeapi "${WL_FAKE[@]}" --headers-at "$hd" --otpm-mode "$rule" || return 1
    local ok failed unique hits="null" err="null"
    if [ "$who" = llmfleet ]; then
        wl_fleet "$T/jobs.jsonl" "$n" "$rule"
        lf results --out "$T/results.jsonl" 2>/dev/null
        ok=$(jq -r 'select(.status == "ok") | .id' "$T/results.jsonl" | sort -u | wc -l)
        failed=$(jq -r 'select(.status == "error") | .id' "$T/results.jsonl" | wc -l)
        unique=$(jq -r '.id // empty' "$T/results.jsonl" | sort | uniq | wc -l)
        local dup; dup=$(jq -r '.id // empty' "$T/results.jsonl" | sort | uniq -d | wc -l)
        hits=$(jq '.total_hard_floor_hits // 0' "$T/status.json")
        err=$(jq '[.classes[] | .estimate_error_pct // empty] | if length > 0 then max else null end' "$T/status.json")
        [ "$dup" -eq 0 ] || unique=$(( unique - dup * 1000000 ))
        case $wl in
        mixed)  extra=$(jq -c --argjson m "$(wl_finish_s haiku- "$WL_T0")" '. + {mixed_s: $m}' <<<"$extra") ;;
        images) extra=$(jq -c --argjson m "$(wl_finish_s images- "$WL_T0")" \
                        --argjson t "$(fake_stats | jq .itpm_input_tokens)" \
                        '. + {roomy_s: $m, refill_s: ($t * 60 / 200000)}' <<<"$extra") ;;
        esac
    else
        wl_naive "$T/jobs.jsonl" || return 1
        ok=$(jq .ok "$T/naive.out"); failed=$(jq .failed "$T/naive.out"); unique=$ok
    fi
    fake_stats > "$T/stats.json"
    wl_metrics "$T/stats.json" | jq -c --arg wl "$wl" --arg hd "$hd" --arg rule "$rule" \
        --arg who "$who" --argjson n "$n" --argjson ok "$ok" --argjson failed "$failed" \
        --argjson unique "$unique" --argjson hits "$hits" --argjson err "$err" \
        --argjson extra "$extra" --arg col "$WL_COL" \
        '{workload: $wl, headers: $hd, rule: $rule, who: $who, jobs: $n, ok: $ok,
          failed: $failed, unique: $unique, bucket: $col, hard_floor_hits: $hits,
          est_err_pct: $err} + . + $extra'
}
