#!/usr/bin/env bash
# make demo: a real fleet against the fake API.
#
# Starts an embedded redis-server (temp dir, free port) unless
# LLMFLEET_REDIS_URL is set, the fake API with tier-4-like limits and
# latency, and 4 workers; submits scripts/demo/prompts.jsonl with a progress
# bar; prints a summary; writes results.jsonl; stops everything it started.
set -u
cd "$(dirname "$0")/.."
BIN=${LLMFLEET_BIN:-$PWD/bin}
T=$(mktemp -d "${TMPDIR:-/tmp}/llmfleet-demo.XXXXXX")
. scripts/fleet-lib.sh
trap 'fleet_cleanup; rm -rf "$T"' EXIT
API_KEY="sk-ant-demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
FLEET="demo-$$"
PROMPTS=scripts/demo/prompts.jsonl
WORKERS=${DEMO_WORKERS:-4}

if [ -n "${LLMFLEET_REDIS_URL:-}" ]; then
    REDIS_URL=$LLMFLEET_REDIS_URL
    echo "demo: using Redis at LLMFLEET_REDIS_URL, fleet $FLEET"
else
    start_redis || exit 1
    echo "demo: started redis-server on 127.0.0.1:$REDIS_PORT (temp dir)"
fi
start_fakeapi --rpm 4000 --itpm 2000000 --otpm 400000 --latency-ms 250 \
    --per-token-ms 4 --jitter-ms 100 --p529 0.01 --seed 42 --quiet || exit 1
echo "demo: fake API at $FAKE_URL (4,000 RPM, 2M ITPM, 400k OTPM, ~0.25-1.3 s latency, 1% overloaded)"
for i in $(seq 1 "$WORKERS"); do
    start_worker "worker$i" --fleet "$FLEET" --concurrency 32
done
echo "demo: $WORKERS workers x 32 slots; submitting $(wc -l < "$PROMPTS") jobs"

t0=$(now_ms)
lf submit "$PROMPTS" --fleet "$FLEET" --wait
rc=$?
t1=$(now_ms)
lf results --fleet "$FLEET" --out results.jsonl
stats=$(fake_stats)

jq -rs --argjson secs "$(( t1 - t0 ))" --argjson fake "$stats" '
    def pct(p): (sort | .[((length - 1) * p | floor)]);
    (map(select(.status == "ok"))) as $ok
    | "",
      "summary",
      "  jobs            \(length) (\($ok | length) ok, \(length - ($ok | length)) error)",
      "  wall time       \($secs / 1000) s, \((length / ($secs / 1000)) * 10 | round / 10) jobs/s",
      "  latency p50     \(map(.latency_ms) | pct(0.5)) ms, p99 \(map(.latency_ms) | pct(0.99)) ms",
      "  attempts        \(map(.attempts) | add) for \(length) jobs (retries \(map(.attempts) | add - length))",
      "  API saw         \($fake.requests_total) requests, \($fake.status["429"] // 0) x 429, \($fake.status["529"] // 0) x 529, peak \($fake.peak_concurrent) concurrent",
      "  tokens          \($ok | map(.input_tokens) | add) in, \($ok | map(.output_tokens) | add) out",
      "  spend           $\($ok | map(.cost_usd | tonumber) | add * 1000000 | round / 1000000)",
      "  results         results.jsonl"
' results.jsonl
exit $rc
