#!/usr/bin/env bash
# Follow llmfleet results with plain redis-cli (XREAD BLOCK) and jq; JSONL out.
#
#   follow.sh [--from ID] [--count N] [--timeout S]
#
# Reads llmfleet:{FLEET}:results after stream id ID ("0", the default: from
# the beginning; "$": only results written from now on) and keeps following
# it, one `redis-cli --json XREAD COUNT 500 BLOCK 1000` a batch (or a second
# when idle). Each line is one result: its fields (README "Result format")
# with "response" and "meta" as JSON, the counts as numbers, and
# "stream_id": pass the last one to --from to resume where you stopped.
# --count N exits 0 after N results; --timeout S exits 1 when no result came
# for S seconds. Needs redis-cli 7 (--json) and jq.
#
# Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0;
# unix:///path?db=N too), LLMFLEET_FLEET (default "default").
set -euo pipefail

REDIS_URL=${LLMFLEET_REDIS_URL:-redis://127.0.0.1:6379/0}
FLEET=${LLMFLEET_FLEET:-default}
RESULTS="llmfleet:{$FLEET}:results"

cli_args() {
    case $1 in
        unix://*)
            local rest=${1#unix://} db=0
            case $rest in *'?db='*) db=${rest##*\?db=}; rest=${rest%%\?*} ;; esac
            echo "-s $rest -n $db" ;;
        *) echo "-u $1 --no-auth-warning" ;;
    esac
}
# shellcheck disable=SC2207
CLI=(redis-cli $(cli_args "$REDIS_URL"))

last=0 count=0 timeout=0
while [ $# -gt 0 ]; do
    case $1 in
        --from) last=$2; shift 2 ;;
        --count) count=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        *) sed -n '2,/^set/s/^# \{0,1\}//p' "$0"; exit 2 ;;
    esac
done

# One redis-cli call; its error replies (printed, exit status 0) fail the run.
cli() {
    local out
    out=$("${CLI[@]}" --json "$@") || exit 1
    case $out in error:*) echo "follow.sh: $out" >&2; exit 1 ;; esac
    printf '%s\n' "$out"
}

if [ "$last" = '$' ]; then
    # Resolve "$" once: XREAD BLOCK with "$" on every call would miss
    # whatever arrives between two calls.
    last=$(cli XREVRANGE "$RESULTS" + - COUNT 1 | jq -r '.[0][0] // "0"')
fi

# shellcheck disable=SC2016  # jq's variables, not the shell's
# XREAD's answer ({key: [[id, [field, value, ...]], ...]}) as JSONL.
to_jsonl='.[][] | .[0] as $id | .[1] as $f
    | [range(0; $f | length; 2) as $i | {key: $f[$i], value: $f[$i + 1]}]
    | map(if (.key == "response" or .key == "meta") and .value != "" then .value |= fromjson
          elif (.key | IN("attempts", "latency_ms", "http_status", "input_tokens", "output_tokens",
                          "cache_creation_input_tokens", "cache_read_input_tokens"))
               and (.value | test("^[0-9]+$")) then .value |= tonumber
          else . end)
    | {stream_id: $id} + from_entries'

seen=0 idle_since=$SECONDS
trap 'exit 0' INT TERM
while :; do
    n=500
    if [ "$count" -gt 0 ]; then
        [ "$seen" -lt "$count" ] || exit 0
        [ $((count - seen)) -ge $n ] || n=$((count - seen))
    fi
    batch=$(cli XREAD COUNT "$n" BLOCK 1000 STREAMS "$RESULTS" "$last")
    if [ "$batch" = null ]; then
        if [ "$timeout" -gt 0 ] && [ $((SECONDS - idle_since)) -ge "$timeout" ]; then
            echo "follow.sh: no result for $timeout s" >&2
            exit 1
        fi
        continue
    fi
    idle_since=$SECONDS
    jq -c "$to_jsonl" <<<"$batch"
    last=$(jq -r '[.[][]] | last | .[0]' <<<"$batch")
    seen=$((seen + $(jq '[.[][]] | length' <<<"$batch")))
done
