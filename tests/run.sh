#!/usr/bin/env bash
# The whole suite: unit tests (cmocka), integration tests (real redis-server,
# real fake API), SDK fidelity. Prints each part's count and, last, the
# total as "N passed, N failed".
#   bash tests/run.sh UNIT_BINARIES...      (LLMFLEET_BIN set by make)
set -u
here=$(cd "$(dirname "$0")" && pwd)
pass=0; fail=0

part() {
    local name=$1; shift
    echo "## $name"
    local log; log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line; line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    rm -f "$log"
    local p f
    p=$(sed -nE 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\2/p' <<<"$line")
    f=$(sed -nE 's/^([A-Za-z-]+: )?([0-9]+) passed, ([0-9]+) failed.*/\3/p' <<<"$line")
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "## $name exited $rc"; fi
    pass=$((pass + p)); fail=$((fail + f))
}

part unit sh "$here/run-unit.sh" "$@"
part integration bash "$here/integration/run.sh"
part fakeapi bash "$here/fakeapi/smoke.sh"
part sdk bash "$here/sdk/run.sh"
part examples bash "$here/examples/run.sh"
echo "total: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
