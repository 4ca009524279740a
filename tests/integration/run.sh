#!/usr/bin/env bash
# Run every tests/integration/test_*.sh; print "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
pass=0; fail=0; failed=()
for t in "$here"/test_*.sh; do
    if [ -n "${ONLY:-}" ]; then         # (names, or parts of them, space-separated)
        keep=; for o in $ONLY; do [[ "$t" == *"$o"* ]] && keep=1; done
        [ -n "$keep" ] || continue
    fi
    echo "# $(basename "$t")"
    t0=$SECONDS
    out=$(bash "$t" 2>&1); rc=$?
    echo "$out"
    echo "# $(basename "$t") took $((SECONDS - t0)) s"
    p=$(grep -c '^ok - ' <<<"$out"); f=$(grep -c '^not ok - ' <<<"$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $(basename "$t") exited $rc"; fi
    pass=$((pass + p)); fail=$((fail + f))
    [ "$f" -gt 0 ] && failed+=("$(basename "$t")")
done
[ "${#failed[@]}" -gt 0 ] && echo "# failed: ${failed[*]}"
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
