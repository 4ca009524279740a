#!/usr/bin/env bash
# Push jobs onto an llmfleet queue with plain redis-cli.
#
#   push.sh [FILE...]                       JSONL jobs, one a line ("-" or none: stdin)
#   push.sh -n N [-p PREFIX] [-m MODEL]     N generated jobs
#
# Each line is LPUSHed onto llmfleet:{FLEET}:jobs as it is, through
# `redis-cli --pipe` (the Redis protocol written out, so any byte of a line
# is safe; one connection for all of them). Lines are not validated here:
# a bad job gets an invalid_job result and a dead letter (`llmfleet submit`
# validates the whole file first). Prints the count to stderr.
#
# Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0;
# unix:///path?db=N too), LLMFLEET_FLEET (default "default").
set -euo pipefail

REDIS_URL=${LLMFLEET_REDIS_URL:-redis://127.0.0.1:6379/0}
FLEET=${LLMFLEET_FLEET:-default}
JOBS="llmfleet:{$FLEET}:jobs"   # the {FLEET} hash tag is part of the name

# redis-cli's connection options for a URL.
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

n=0 prefix="sh-$(date +%s)" model=claude-haiku-4-5
while getopts 'n:p:m:h' o; do
    case $o in
        n) n=$OPTARG ;;
        p) prefix=$OPTARG ;;
        m) model=$OPTARG ;;
        *) sed -n '2,/^set/s/^# \{0,1\}//p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

jobs() {
    if [ "$n" -gt 0 ]; then
        awk -v n="$n" -v p="$prefix" -v m="$model" 'BEGIN {
            for (i = 1; i <= n; i++)
                printf "{\"id\":\"%s-%d\",\"request\":{\"model\":\"%s\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"Say something about the number %d.\"}]},\"meta\":{\"lang\":\"redis-cli\",\"n\":%d}}\n", p, i, m, i, i
        }'
    else
        cat -- "${@:--}"
    fi
}

# LPUSH KEY LINE in the Redis protocol, one command per non-empty line
# (LC_ALL=C: awk's length() counts bytes); --pipe answers with the count.
out=$(jobs "$@" | LC_ALL=C awk -v key="$JOBS" 'length($0) {
        printf "*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length($0), $0
    }' | "${CLI[@]}" --pipe 2>&1) || { echo "$out" >&2; exit 1; }
echo "pushed $(sed -n 's/.*replies: \([0-9]*\).*/\1/p' <<<"$out") jobs to $JOBS" >&2
