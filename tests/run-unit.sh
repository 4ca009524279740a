#!/bin/sh
# Run cmocka unit test binaries and add up their results.
#
#   sh tests/run-unit.sh bin/tests/test_json bin/tests/test_price ...
#
# Each binary runs on its own; its output is shown only when something went
# wrong. The last line is exactly "N passed, N failed", counting cmocka test
# cases over all binaries. A binary that dies before cmocka's summary (a
# crash, a sanitizer report, a hang cut by the timeout) counts the tests it
# finished, plus one failure for the test that died. Exits 1 when anything
# failed.
set -u

TIMEOUT=${UNIT_TIMEOUT:-300}        # seconds per binary
# UNIT_WRAP: a wrapper each binary runs under (make test-valgrind).
total_pass=0
total_fail=0
bad=0

out=$(mktemp "${TMPDIR:-/tmp}/run-unit.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT INT TERM

# The numbers in cmocka's "[  PASSED  ] N test(s)." style lines $1, added
# up (a binary may run its group more than once), or empty.
summary() {
    sed -n "s/^\[  $1  \] \([0-9][0-9]*\) test(s).*/\1/p" "$out" |
        awk '{ n += $1; seen = 1 } END { if (seen) print n }'
}

for t in "$@"; do
    name=$(basename "$t")
    if command -v timeout >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        CMOCKA_MESSAGE_OUTPUT=stdout timeout "$TIMEOUT" ${UNIT_WRAP:-} "$t" >"$out" 2>&1
    else
        # shellcheck disable=SC2086
        CMOCKA_MESSAGE_OUTPUT=stdout ${UNIT_WRAP:-} "$t" >"$out" 2>&1
    fi
    rc=$?
    pass=$(summary PASSED)
    fail=$(summary FAILED)
    [ -n "$fail" ] || fail=0
    if [ -z "$pass" ]; then
        # No summary: it died mid-run. Count what finished, and the death.
        pass=$(grep -c '^\[       OK \]' "$out")
        fail=$(($(grep -c '^\[  FAILED  \]' "$out") + 1))
        status="CRASHED (exit $rc)"
    elif [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
        # A summary but a bad exit: died after the tests (leak check, atexit).
        fail=1
        status="FAILED (exit $rc after the tests)"
    elif [ "$fail" -ne 0 ]; then
        status="FAILED"
    else
        status="ok"
    fi
    if [ "$status" != ok ]; then
        bad=1
        cat "$out"
    fi
    printf '%-24s %s passed, %s failed  %s\n' "$name" "$pass" "$fail" "$status"
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done

echo "$total_pass passed, $total_fail failed"
[ "$bad" -eq 0 ] && [ "$total_fail" -eq 0 ]
