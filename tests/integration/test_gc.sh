# `llmfleet gc --older-than D`: the fleet's retention. Redis's clock is
# stepped 3 h forward (tests/tools/clockshim.c) between an old and a new
# campaign; gc --older-than 2h forgets the old ids (and their kept failed
# jobs), trims their results, prunes expired prompt-cache entries, keeps an
# id with a copy at the API, and leaves the new campaign whole: its ids
# still drop a re-push, while a forgotten id runs again (the documented
# trade).
. "$(dirname "$0")/lib.sh"

shim="$BIN/clockshim.so"
echo 0 > "$T/clock"
REDIS_WRAP="env LD_PRELOAD=$shim CLOCKSHIM_FILE=$T/clock" start_redis
start_fakeapi --latency-ms 5 --p500 0.2 --seed 5
lf limits set max_attempts=1 >/dev/null
K='llmfleet:{default}'

lf gc 2>/dev/null; eq "gc without --older-than exits 2" 2 $?
lf gc --older-than 10m 2>/dev/null; eq "gc under 1h exits 2" 2 $?

gen_jobs 100 old | lf submit - 2>/dev/null
start_worker w1 --concurrency 16
check "the old campaign is done" wait_until 60 results_at_least default 100
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
old_err=$(lf status --json | jq .failed_kept)
echo "# old campaign: $old_err error results kept"
check "some old jobs failed (kept for retry)" test "$old_err" -gt 0
rcli HSET "$K:cache" expired "100,1" fresh "100,99999999999999" >/dev/null

echo $((3 * 3600 * 1000)) > "$T/clock"          # 3 h later
check "Redis's clock moved" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT TIME | head -1) -gt \$(( \$(date +%s) + 3 * 3600 - 60 )) ]"
kill -9 "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null
start_fakeapi --latency-ms 5
gen_jobs 50 new | lf submit - 2>/dev/null
start_worker w2 --concurrency 16
check "the new campaign is done" wait_until 60 results_at_least default 150
# An old failed job retried now: its old error result is superseded, its
# new result decides (gc must not forget the id with it).
# (Not old-1..3, pushed again below as forgotten ids, nor old-7, kept in flight.)
X=$(lf results --status error 2>/dev/null | jq -r .id | grep -v '^old-\(7\|1\|2\|3\)$' | head -1)
lf retry --id "$X" 2>/dev/null
x_ok() { lf results --id "$X" 2>/dev/null | jq -e 'select(.status == "ok")' >/dev/null; }
check "old failed job $X retried is ok now" wait_until 30 x_ok
# A copy of old-7 at the API right now: gc must not forget it.
rcli HSET "$K:live" old-7 "w9:1:1" >/dev/null

lf gc --older-than 2h 2> "$T/gc.err"
eq "gc exits 0" 0 $?
cat "$T/gc.err" | sed 's/^/# /'
check "gc deleted the 99 old results not in flight, forgot 98 ids ($X's is superseded)" grep -q "deleted 99 results older than 2h, forgot 98 ids" "$T/gc.err"
eq "$X is still done, its new ok result alone in the stream" "1 ok" \
    "$(rcli SISMEMBER "$K:done" "$X") $(lf results --id "$X" 2>/dev/null | jq -r .status | tr '\n' ' ' | sed 's/ $//')"
check "and kept the one with a copy at the API" grep -q "kept 1 (a copy in flight" "$T/gc.err"
check "and pruned the expired cache entry" grep -q "pruned 1 expired cache entry" "$T/gc.err"
eq "done holds the 50 new ids, old-7 and $X" 52 "$(rcli SCARD "$K:done")"
eq "old-7 is still done" 1 "$(rcli SISMEMBER "$K:done" old-7)"
eq "the fresh cache entry stays" 1 "$(rcli HEXISTS "$K:cache" fresh)"
eq "no failed job of the old campaign is kept (but old-7's, if it failed)" \
    "$(rcli ZSCORE "$K:failed" old-7 | grep -c .)" "$(lf status --json | jq .failed_kept)"
eq "of the old ids the stream keeps old-7's and $X's new one" "$(printf '%s\n' old-7 "$X" | sort | tr '\n' ' ')" \
    "$(lf results 2>/dev/null | jq -r .id | grep '^old-' | sort | tr '\n' ' ')"
eq "every new result stays" 50 "$(lf results 2>/dev/null | jq -r .id | grep -c '^new-')"

before=$(lf results 2>/dev/null | jq -r .id | grep -c '^old-[123]$')
# Pushed raw (submit itself drops ids that are done, as a careful producer
# would): new-1..3 are remembered and dropped; old-1..3 were forgotten.
gen_jobs 3 new | while IFS= read -r j; do rcli LPUSH "$K:jobs" "$j" >/dev/null; done
gen_jobs 3 old | while IFS= read -r j; do rcli LPUSH "$K:jobs" "$j" >/dev/null; done
again() { [ "$(lf results 2>/dev/null | jq -r .id | grep -c '^old-[123]$')" -ge $((before + 3)) ]; }
check "a forgotten id pushed again runs again" wait_until 30 again
settled() { [ "$(queued_count)" -eq 0 ] && [ "$(rcli ZCARD "$K:leases")" -eq 0 ]; }
check "the re-pushes are settled" wait_until 30 settled
eq "an id still remembered is dropped at a re-push" 50 "$(lf results 2>/dev/null | jq -r .id | grep -c '^new-')"
lf gc --older-than 2h 2> "$T/gc2.err"
check "a second gc finds nothing more to forget" grep -q "deleted 0 results .* forgot 0 ids" "$T/gc2.err"

# 3 h on, X's new result is old too: gc forgets it, and its redo mark.
echo $((6 * 3600 * 1000)) > "$T/clock"
check "Redis's clock moved again" wait_until 5 sh -c "[ \$(redis-cli -p $REDIS_PORT TIME | head -1) -gt \$(( \$(date +%s) + 6 * 3600 - 60 )) ]"
rcli HDEL "$K:live" old-7 >/dev/null
lf gc --older-than 2h 2> "$T/gc3.err"
sed 's/^/# /' "$T/gc3.err"
eq "then $X is forgotten" 0 "$(rcli SISMEMBER "$K:done" "$X")"
eq "and no redo mark is left" 0 "$(rcli HLEN "$K:redone")"
finish
