#!/usr/bin/env bash
# SDK fidelity test: the official Anthropic TypeScript SDK (pinned in
# package.json) talks to bin/llmfleet-fakeapi unchanged.
#
# usage: LLMFLEET_BIN=/path/to/bin bash tests/sdk/run.sh
# Installs the SDK with `npm ci` when node_modules is missing or older than
# package-lock.json, starts the fake API on an ephemeral port, runs
# fidelity.mjs against it and exits with node's status.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${LLMFLEET_BIN:?set LLMFLEET_BIN to the directory holding llmfleet-fakeapi}
fakeapi="$bin/llmfleet-fakeapi"
[ -x "$fakeapi" ] || { echo "sdk: $fakeapi not found or not executable" >&2; exit 1; }

# ---- dependencies --------------------------------------------------------------
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ]; then
    (cd "$here" && npm ci --silent --no-audit --no-fund)
fi

# ---- the fake API --------------------------------------------------------------
tmp=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"$fakeapi" --listen 127.0.0.1:0 --port-file "$tmp/port" --api-key test-key \
    --rpm 3 --batch-ms 300 --quiet &
pid=$!

# Wait for the port file, with a deadline.
deadline=$((SECONDS + 10))
while [ ! -s "$tmp/port" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "sdk: llmfleet-fakeapi exited early" >&2
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "sdk: llmfleet-fakeapi did not write its port file in 10 s" >&2
        exit 1
    fi
    sleep 0.05
done
port=$(cat "$tmp/port")

# ---- the test --------------------------------------------------------------------
status=0
(cd "$here" && node fidelity.mjs "http://127.0.0.1:$port") || status=$?
exit "$status"
