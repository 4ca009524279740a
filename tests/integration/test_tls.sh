# TLS to Redis through stunnel (Debian's hiredis 0.14 has no TLS): Redis
# listens on loopback only; a server-side stunnel accepts TLS in front of
# it; a client-side stunnel next to the worker accepts plain connections
# on loopback and speaks TLS to the server side, verifying its certificate
# against our CA and the host name. The worker and the CLI use the client
# side's redis:// URL. A client that does not trust the certificate gets
# nothing through.
. "$(dirname "$0")/lib.sh"
# A slow suite of real extra servers: run once, in the release run (the
# sanitizer run, LLMFLEET_SHORT, skips it; its code paths are the
# reconnects that test_redis_faults covers there).
if [ -n "${LLMFLEET_SHORT:-}" ]; then echo "ok - skipped in the sanitizer run (run once, in make test)"; exit 0; fi
command -v stunnel4 >/dev/null || { echo "not ok - stunnel4 is missing (scripts/install-deps.sh installs it)"; exit 1; }

start_redis
# A CA, and a certificate for redis.test signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=llmfleet-test-ca \
    -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=redis.test -keyout "$T/server.key" \
    -out "$T/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:redis.test\n' > "$T/ext.cnf"
openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -days 2 -extfile "$T/ext.cnf" -out "$T/server.pem" 2>/dev/null
check "a CA and a server certificate" test -s "$T/server.pem"
SPORT=$("$BIN/freeport"); CPORT=$("$BIN/freeport"); BPORT=$("$BIN/freeport")
cat > "$T/server.conf" <<CONF
foreground = yes
pid =
output = $T/stunnel-server.log
[redis]
accept = 127.0.0.1:$SPORT
connect = 127.0.0.1:$REDIS_PORT
cert = $T/server.pem
key = $T/server.key
CONF
cat > "$T/client.conf" <<CONF
foreground = yes
pid =
output = $T/stunnel-client.log
[redis]
client = yes
accept = 127.0.0.1:$CPORT
connect = 127.0.0.1:$SPORT
verifyChain = yes
CAfile = $T/ca.pem
checkHost = redis.test
CONF
# A client that trusts another CA: its connections must fail.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca \
    -keyout "$T/other.key" -out "$T/other.pem" 2>/dev/null
sed -e "s|$CPORT|$BPORT|" -e "s|ca.pem|other.pem|" -e "s|stunnel-client.log|stunnel-bad.log|" \
    "$T/client.conf" > "$T/bad.conf"
for c in server client bad; do
    stunnel4 "$T/$c.conf" >>"$T/stunnel-$c.out" 2>&1 &
    PIDS+=("$!")
done
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
both_listen() { listening "$SPORT" && listening "$CPORT" && listening "$BPORT"; }
check "both stunnels listen" wait_until 10 both_listen
TLS_URL=${REDIS_URL/:$REDIS_PORT\//:$CPORT/}
BAD_URL=${REDIS_URL/:$REDIS_PORT\//:$BPORT/}

# The TLS port speaks TLS only.
eq "a plain client on the TLS port gets no PONG" "" "$(timeout 3 redis-cli -p "$SPORT" ping 2>/dev/null | grep PONG)"
check "the TLS port presents the certificate for redis.test" sh -c \
    "echo | timeout 5 openssl s_client -connect 127.0.0.1:$SPORT -CAfile '$T/ca.pem' -verify_hostname redis.test 2>/dev/null | grep -q 'Verify return code: 0 (ok)'"

gen_jobs 200 t | "$BIN/llmfleet" submit - --redis-url "$TLS_URL" 2>/dev/null
eq "submit through the tunnel" 200 "$(rcli LLEN 'llmfleet:{default}:jobs')"
start_fakeapi --latency-ms 10
REDIS_URL=$TLS_URL start_worker w1 --concurrency 16
check "every job done by a worker that reaches Redis only through TLS" wait_until 60 results_at_least default 200
eq "one result per id" 200 "$("$BIN/llmfleet" results --redis-url "$TLS_URL" 2>/dev/null | jq -r .id | sort -u | wc -l)"
check "the client side verified the server certificate" grep -q "Certificate accepted\|peer certificate\|verify" "$T/stunnel-client.log"

"$BIN/llmfleet" status --redis-url "$BAD_URL" > /dev/null 2> "$T/bad.err"
eq "a client that does not trust the certificate gets nothing (exit 1)" 1 $?
check "and says Redis closed the connection or timed out" grep -qi "redis" "$T/bad.err"
check "its stunnel refused the certificate" grep -qi "certificate verify failed\|CERT: .*rejected\|Rejected by CERT\|verify failed" "$T/stunnel-bad.log"
kill -TERM "$WORKER_PID"; wait "$WORKER_PID"
eq "the worker stops cleanly" 0 $?
finish
