# 2,000 jobs through 1 worker, then 2,000 through 3 worker processes:
# exactly one result per id, every field as DESIGN.md says, cost equal to
# usage x price, meta echoed, response the API's body.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi --seed 7

# run_fleet FLEET NWORKERS
run_fleet() {
    local fleet=$1 nw=$2 n=2000
    gen_jobs $n "$fleet" > "$T/$fleet.jsonl"
    lf submit "$T/$fleet.jsonl" --fleet "$fleet" 2>"$T/$fleet.submit.log"
    eq "$fleet: submit pushed all jobs" "$n" "$(rcli LLEN "llmfleet:{$fleet}:jobs")"
    for i in $(seq 1 "$nw"); do start_worker "$fleet-w$i" --fleet "$fleet" --concurrency 32; done
    check "$fleet: $n results within 60 s" wait_until 60 results_at_least "$fleet" $n
    lf results --fleet "$fleet" --out "$T/$fleet.results.jsonl" 2>/dev/null
    local r="$T/$fleet.results.jsonl"
    eq "$fleet: one result per id" "$n" "$(jq -r .id "$r" | sort -u | wc -l)"
    eq "$fleet: no duplicate result" "$n" "$(wc -l < "$r")"
    eq "$fleet: all ok" "$n" "$(jq -r 'select(.status == "ok") | .id' "$r" | wc -l)"
    eq "$fleet: queue and leases empty" "0 0" \
        "$(rcli LLEN "llmfleet:{$fleet}:jobs") $(rcli ZCARD "llmfleet:{$fleet}:leases")"
    # every field, and the response is the API's own body
    eq "$fleet: fields present and consistent" "0" "$(jq -r '
        select((.response.type != "message")
            or (.response.usage.input_tokens != .input_tokens)
            or (.response.usage.output_tokens != .output_tokens)
            or (.cache_creation_input_tokens != 0) or (.cache_read_input_tokens != 0)
            or (.attempts != 1) or (.latency_ms | type != "number")
            or (.model != "claude-sonnet-4-5")
            or ((.worker | test("^'"$fleet"'-w")) | not)
            or (.cost_usd | type != "string")) | .id' "$r" | wc -l)"
    # cost = usage x price (Sonnet 4.x: $3 in, $15 out per MTok), rounded up
    eq "$fleet: cost equals usage x price" "0" "$(jq -r '
        ((.input_tokens * 3000000 + .output_tokens * 15000000) / 1000000 | ceil) as $micro
        | select(((.cost_usd | tonumber) * 1000000 | round) != $micro) | .id' "$r" | wc -l)"
    eq "$fleet: meta echoed verbatim" "0" "$(jq -r '
        select(.meta.n != (.id | split("-") | last | tonumber) or .meta.tag != "tést") | .id' \
        "$r" | wc -l)"
    # the worker sent each request body as it was in the job
    eq "$fleet: the API saw each body once" "$n" "$(fake_stats | jq .distinct_bodies)"
    curl -s -X POST "$FAKE_URL/_reset" >/dev/null
}

run_fleet one 1
run_fleet three 3
finish
