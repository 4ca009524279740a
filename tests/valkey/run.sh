#!/usr/bin/env bash
# The integration tests that start their own server, run on Valkey instead
# of Redis: Debian 12 has Valkey only in bookworm-backports, so the package
# is fetched from the machine's own Debian mirror (its bookworm source) with
# a private apt state (the machine's apt sources are not touched) and
# unpacked under build/valkey, nothing installed. Prints the tests' lines and "valkey: N passed, N failed".
#
#   LLMFLEET_BIN=/path/to/bin bash tests/valkey/run.sh
#   VALKEY_SERVER=/path/to/valkey-server ...   (a Valkey already at hand)
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
: "${LLMFLEET_BIN:?set LLMFLEET_BIN to the bin/ directory}"
if [ ! -f "$LLMFLEET_BIN/clockshim.so" ]; then
    # (make test builds it; a tree built with plain make has none, and the
    # clock-moving tests then failed one by one, 18 of them)
    echo "not ok - $LLMFLEET_BIN/clockshim.so is missing (the clock-moving tests preload it): make bin/clockshim.so"
    echo "valkey: 0 passed, 1 failed"
    exit 1
fi
dir=$root/build/valkey
server=${VALKEY_SERVER:-$dir/root/usr/bin/valkey-server}
if [ ! -x "$server" ]; then
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/root"
    # The machine's own Debian mirror (the one serving bookworm), its
    # backports suite.
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null |
             awk '$2 == "bookworm" { print $1; exit }')
    if [ -z "$mirror" ]; then
        echo "not ok - no apt source serves bookworm here: cannot fetch Valkey"
        echo "valkey: 0 passed, 1 failed"
        exit 1
    fi
    cat > "$dir/apt/backports.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt_opts=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$dir/apt"
              -o "Dir::State::Lists=$dir/apt/lists" -o "Dir::Cache=$dir/apt/cache"
              -o APT::Sandbox::User=root)
    if ! apt-get "${apt_opts[@]}" update -qq >"$dir/apt.log" 2>&1 ||
       ! (cd "$dir" && apt-get "${apt_opts[@]}" download valkey-server valkey-tools >>"$dir/apt.log" 2>&1); then
        echo "not ok - valkey-server from bookworm-backports could not be fetched:"
        tail -n 5 "$dir/apt.log"
        echo "valkey: 0 passed, 1 failed"
        exit 1
    fi
    for deb in "$dir"/valkey-*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
fi
if ! "$server" --version >/dev/null 2>&1; then
    echo "not ok - $server does not run"
    echo "valkey: 0 passed, 1 failed"
    exit 1
fi
echo "# $("$server" --version)"
export LLMFLEET_REDIS_SERVER=$server
pass=0; fail=0
for t in test_jobs test_duplicates test_kill test_crash_points test_fleet_spend \
         test_fleet_ceiling test_fleet_retry test_wake test_acl_roles test_redis_faults \
         test_redis_stall test_dead test_poison test_gc test_wait test_queue_age; do
    echo "# $t (Valkey)"
    out=$(bash "$root/tests/integration/$t.sh" 2>&1); rc=$?
    echo "$out"
    p=$(grep -c '^ok - ' <<<"$out"); f=$(grep -c '^not ok - ' <<<"$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $t exited $rc"; fi
    pass=$((pass + p)); fail=$((fail + f))
done
echo "valkey: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
