# Prices are fleet state: one table in Redis for every worker. A model the
# built-in table lacks is refused under a cap until `prices set` adds it;
# then running workers price it (reservation and cost_usd) without a
# restart; a price change reaches every worker before its next admission;
# `prices load` takes a whole file or nothing; the worker's old --prices
# is refused.
. "$(dirname "$0")/lib.sh"

start_redis
start_fakeapi
for i in 1 2; do start_worker w$i --concurrency 8; done
warm_up
lf limits set max_spend_usd=10 >/dev/null

gen_jobs 1 a claude-sonnet-9-test | lf submit - 2>/dev/null
refused() { lf results 2>/dev/null | jq -e 'select(.id == "a-1" and .error_type == "no_price")' >/dev/null; }
check "an unpriced model is refused under a cap" wait_until 10 refused

check "prices set accepts a price line" lf prices set claude-sonnet-9-test 2 2.5 4 0.2 10
out=$(lf prices set claude-sonnet-9-test 2 2.5 4 zero 10 2>&1); rc=$?
eq "a bad price exits 2" "2" "$rc"
check "and names the field" grep -q "CACHE_READ" <<<"$out"
check "show marks the fleet's entry" sh -c "\"$BIN/llmfleet\" prices show --redis-url $REDIS_URL | grep -q '^claude-sonnet-9-test 2.000000 2.500000 4.000000 0.200000 10.000000   (fleet)'"

gen_jobs 20 b claude-sonnet-9-test | lf submit - 2>/dev/null
check "the newly priced model runs on the running workers" wait_until 20 results_at_least default 22
lf results --out "$T/r.jsonl" 2>/dev/null
# cost = (in x 2 + out x 10) / 1e6 USD, rounded up to the micro-dollar
bad=$(jq -r 'select(.id | startswith("b-")) | select(.status != "ok" or
      ((.input_tokens * 2 + .output_tokens * 10) | . / 1000000 | . * 1000000 | ceil) !=
      (.cost_usd | tonumber * 1000000 | round)) | .id' "$T/r.jsonl" | wc -l)
eq "every result is costed with the fleet's price" "0" "$bad"
grep -h "event=prices_loaded" "$T"/w1.log | tail -n 1 | grep -q "fleet_models=1"
check "worker w1 loaded the fleet table" test $? -eq 0

lf prices set claude-sonnet-9-test 4 5 8 0.4 20 >/dev/null
gen_jobs 10 c claude-sonnet-9-test | lf submit - 2>/dev/null
check "jobs after a price change finish" wait_until 20 results_at_least default 32
lf results --out "$T/r2.jsonl" 2>/dev/null
bad=$(jq -r 'select(.id | startswith("c-")) | select(((.input_tokens * 4 + .output_tokens * 20) | . / 1000000 | . * 1000000 | ceil) !=
      (.cost_usd | tonumber * 1000000 | round)) | .id' "$T/r2.jsonl" | wc -l)
eq "no job after the change is costed with the old price" "0" "$bad"

printf 'm-ok 1 1 1 1 1\nm-bad 1 1 1\n' > "$T/p.txt"
ver=$(lf status --json | jq -r .prices_ver)
lf prices load "$T/p.txt" 2>/dev/null; rc=$?
eq "a file with a bad line exits 2" "2" "$rc"
eq "and changes nothing" "$ver" "$(lf status --json | jq -r .prices_ver)"
check "unset goes back to the built-in table" lf prices unset claude-sonnet-9-test
check "the model is gone from the fleet table" sh -c "! \"$BIN/llmfleet\" prices show --redis-url $REDIS_URL | grep -q claude-sonnet-9-test"

ANTHROPIC_API_KEY=$API_KEY "$BIN/llmfleet" worker --redis-url "$REDIS_URL" --prices "$T/p.txt" 2>"$T/old.err"; rc=$?
eq "worker --prices is refused" "2" "$rc"
check "with a pointer to prices load" grep -q "llmfleet prices load" "$T/old.err"
finish
