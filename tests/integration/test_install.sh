# make install into a DESTDIR: the binary and its --version, the systemd
# template unit pointing at the installed binary with a stop timeout longer
# than the worker's drain, the example environment file holding no key; the
# libraries the binary links come from scripts/runtime-deps.txt (or libc6);
# an installed worker started as the unit starts it (environment file,
# LLMFLEET_WORKER_ARGS) runs jobs and drains on SIGTERM; uninstall removes
# it all.
. "$(dirname "$0")/lib.sh"
TOP=$(cd "$(dirname "$0")/../.." && pwd)
R=$T/root
make -s -C "$TOP" install DESTDIR="$R" PREFIX=/usr INSTALL_FROM="$LLMFLEET_BIN" \
    > "$T/install.out" 2>&1
eq "make install exits 0" "0" "$?"
unit=$R/usr/lib/systemd/system/llmfleet-worker@.service
check "binary installed, executable" test -x "$R/usr/bin/llmfleet"
want=$(sed -n 's/^#define LLMFLEET_VERSION "\(.*\)"/\1/p' "$TOP/common/fleet/version.h")
eq "--version prints the release" "llmfleet $want" "$("$R/usr/bin/llmfleet" --version)"
check "unit installed" test -f "$unit"
check "ExecStart is the installed binary" grep -qx 'ExecStart=/usr/bin/llmfleet worker $LLMFLEET_WORKER_ARGS' "$unit"
check "no placeholder left" sh -c "! grep -q @BINDIR@ '$unit'"
stop=$(sed -n 's/^TimeoutStopSec=//p' "$unit")
drain=$("$R/usr/bin/llmfleet" worker --help | sed -n 's/.*--drain-timeout-ms.*(\([0-9]*\)).*/\1/p')
check "TimeoutStopSec $stop s > default drain ${drain} ms + 5 s" test "$stop" -gt $(( drain / 1000 + 5 ))
check "Restart=on-failure, config errors (2) not restarted" \
    sh -c "grep -qx Restart=on-failure '$unit' && grep -qx RestartPreventExitStatus=2 '$unit'"
env=$R/usr/share/doc/llmfleet/worker.env.example
check "environment example installed, key empty" grep -qx 'ANTHROPIC_API_KEY=' "$env"
if command -v systemd-analyze >/dev/null 2>&1; then
    # The unit as it would stand at / (its binary where DESTDIR put it).
    mkdir -p "$T/unit"
    sed "s|/usr/bin/llmfleet|$R/usr/bin/llmfleet|" "$unit" > "$T/unit/llmfleet-worker@.service"
    check "systemd-analyze verify" systemd-analyze verify "$T/unit/llmfleet-worker@.service"
fi

# Every library the binary needs directly is in the runtime list (or libc).
deps=$(grep -v '^#' "$TOP/scripts/runtime-deps.txt" | tr -s ' \n' ' ')
# The sanitizer build (make test-san) links the sanitizer runtimes: those
# are the test build's, never shipped.
for lib in $(readelf -d "$R/usr/bin/llmfleet" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    case $lib in libasan.so.*|libubsan.so.*|liblsan.so.*|libtsan.so.*) continue ;; esac
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    case " libc6 $deps " in
    *" $pkg "*) ok "$lib from $pkg, in runtime-deps.txt" ;;
    *) fail "$lib (package '${pkg:-?}') not in scripts/runtime-deps.txt" ;;
    esac
done

# The unit's way of starting: the environment file (read as systemd reads
# it: KEY=the rest of the line), then the arguments split on spaces.
start_redis
start_fakeapi
cat > "$T/worker.env" <<EOT
ANTHROPIC_API_KEY=$API_KEY
LLMFLEET_REDIS_URL=$REDIS_URL
ANTHROPIC_BASE_URL=$FAKE_URL
LLMFLEET_LOG_FORMAT=json
LLMFLEET_WORKER_ARGS=--concurrency 4 --drain-timeout-ms 5000 --allow-insecure-http
EOT
( while IFS= read -r line; do
      case $line in ''|'#'*) continue ;; esac
      export "${line%%=*}=${line#*=}"
  done < "$T/worker.env"
  # shellcheck disable=SC2086
  exec "$R/usr/bin/llmfleet" worker $LLMFLEET_WORKER_ARGS ) > "$T/unitw.log" 2>&1 &
upid=$!
PIDS+=("$upid")
gen_jobs 20 inst | lf submit - >/dev/null
# A producer's hostile id (a newline that would forge a log line, quotes)
# on a job the worker refuses, and so logs.
bad='{"id":"x\n2026-01-01T00:00:00.000Z error llmfleet[1] event=forged \"q\"","request":{"model":"claude-sonnet-4-5"}}'
rcli LPUSH 'llmfleet:{default}:jobs' "$bad" >/dev/null
check "the installed worker runs the jobs" wait_until 30 sh -c "[ \$(redis-cli -p $REDIS_PORT XLEN 'llmfleet:{default}:results') -ge 21 ]"
check "--log-format json: every line is one JSON object" sh -c "jq -e -s 'length > 1' '$T/unitw.log' >/dev/null"
eq "worker_start logs the version" "$want" \
    "$(jq -r 'select(.event == "worker_start") | .version' "$T/unitw.log")"
eq "the hostile id logged as one value, unforged" \
    "$(printf 'x\n2026-01-01T00:00:00.000Z error llmfleet[1] event=forged "q"')" \
    "$(jq -r 'select(.event == "invalid_job") | .id' "$T/unitw.log")"
check "no forged line" sh -c "! jq -r .event '$T/unitw.log' | grep -qx forged"
kill -TERM "$upid"
wait "$upid"; rc=$?
eq "SIGTERM: a clean exit" "0" "$rc"

make -s -C "$TOP" uninstall DESTDIR="$R" PREFIX=/usr >/dev/null 2>&1
check "uninstall removes the binary, unit and docs" \
    sh -c "[ ! -e '$R/usr/bin/llmfleet' ] && [ ! -e '$unit' ] && [ ! -e '$R/usr/share/doc/llmfleet' ]"
finish
