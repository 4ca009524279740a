#!/usr/bin/env bash
# smoke.sh — black-box checks of bin/llmfleet-fakeapi over real HTTP (curl,
# jq): wire shapes, auth, validation, buckets and headers, org cap, spend
# limit, faults, malformed responses, latency, /_stats, /_reset, /_config,
# exit codes.
#
# usage: LLMFLEET_BIN=/path/to/bin bash tests/fakeapi/smoke.sh
#        FAKEAPI_WRAP="valgrind -q --leak-check=full --error-exitcode=9" ...
# Prints one line per check and "N passed, M failed"; exits 1 on failure.
set -uo pipefail

bin=${LLMFLEET_BIN:?set LLMFLEET_BIN to the directory holding llmfleet-fakeapi}
wrap=${FAKEAPI_WRAP:-}
tmp=$(mktemp -d)
pid=""
passed=0
failed=0

cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
# t NAME: report the status of the condition just evaluated.
t() { local rc=$?; if [ $rc -eq 0 ]; then ok "$1"; else fail "$1"; fi; }

# Wait up to $2 seconds for command $1 (a string) to succeed.
waitFor() {
    local deadline=$((SECONDS + $2))
    until eval "$1"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}

# start ARGS...: run the fake API with ARGS on an ephemeral port.
start() {
    rm -f "$tmp/port"
    $wrap "$bin/llmfleet-fakeapi" --port-file "$tmp/port" --quiet "$@" &
    pid=$!
    waitFor '[ -s "$tmp/port" ]' 30 || { echo "fake API did not start"; exit 1; }
    base="http://127.0.0.1:$(cat "$tmp/port")"
}

# stop: SIGTERM, expect exit status 0.
stop() {
    kill -TERM "$pid"
    wait "$pid"
    local rc=$?
    pid=""
    return $rc
}

KEY=test-key
BODY='{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"Hello, fleet. How are the buckets today?"}]}'

# post PATH BODY [curl args...]: POST, headers in $tmp/h, body in $tmp/b,
# status in $code.
post() {
    local path=$1 body=$2; shift 2
    code=$(curl -s -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' -X POST \
        -H 'content-type: application/json' "$@" --data-binary "$body" "$base$path")
}
msg() { post /v1/messages "$1" -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' "${@:2}"; }
hdr() { tr -d '\r' < "$tmp/h" | awk -v k="$(echo "$1" | tr A-Z a-z)" \
    'BEGIN{FS=": "} tolower($1)==k {print $2; exit}'; }
jb() { jq -r "$1" < "$tmp/b"; }
isError() {
    [ "$code" = "$1" ] && [ "$(jb .type)" = error ] && [ "$(jb .error.type)" = "$2" ] &&
        [ "$(jb .request_id)" = "$(hdr request-id)" ] && [[ "$(hdr request-id)" == req_* ]]
}
stat() { curl -s "$base/_stats" | jq -r "$1"; }

# ---- options ------------------------------------------------------------------
"$bin/llmfleet-fakeapi" --bogus 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- --bogus "$tmp/err"
t "unknown flag exits 2 naming it"
"$bin/llmfleet-fakeapi" --p500 1.5 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- --p500 "$tmp/err"
t "bad value exits 2 naming the flag"

# ---- wire format, auth, validation ---------------------------------------------
start --api-key "$KEY" --seed 7

msg "$BODY"
[ "$code" = 200 ] && [ "$(jb .type)" = message ] &&
    [ "$(jb .role)" = assistant ] && [ "$(jb .model)" = claude-sonnet-4-6 ] &&
    [[ "$(jb .id)" == msg_* ]] && [ "$(jb '.content[0].type')" = text ] &&
    [ "$(jb .stop_sequence)" = null ] &&
    [ "$(jb '.usage.cache_read_input_tokens')" = 0 ] &&
    [ "$(jb '.usage.cache_creation_input_tokens')" = 0 ]
t "success: 200 message shape"
[[ "$(hdr content-type)" == application/json* ]] &&
    [[ "$(hdr request-id)" == req_* ]]
t "success: content-type and request-id"
out1=$(jb .usage.output_tokens); text1=$(jb '.content[0].text'); in1=$(jb .usage.input_tokens)
[ "$out1" -ge 1 ] && [ "$out1" -le 64 ] && [ "$in1" -ge 1 ]
t "success: tokens in range"
stop1=$(jb .stop_reason)
if [ "$out1" = 64 ]; then want=max_tokens; else want=end_turn; fi
[ "$stop1" = "$want" ]
t "success: stop_reason matches output"
msg "$BODY"
[ "$(jb .usage.output_tokens)" = "$out1" ] &&
    [ "$(jb '.content[0].text')" = "$text1" ]
t "success: deterministic per body"
post /v1/messages "$BODY" -H "authorization: Bearer $KEY" -H 'anthropic-version: 2023-06-01'
[ "$code" = 200 ]
t "Authorization: Bearer accepted"
post /v1/messages "$BODY" -H 'anthropic-version: 2023-06-01'
isError 401 authentication_error
t "missing key: 401"
post /v1/messages "$BODY" -H "x-api-key: nope" -H 'anthropic-version: 2023-06-01'
isError 401 authentication_error
t "wrong key: 401"
post /v1/messages "$BODY" -H "x-api-key: $KEY"
isError 400 invalid_request_error &&
    jb .error.message | grep -q anthropic-version
t "no anthropic-version: 400 naming it"
msg '{"model":'
isError 400 invalid_request_error
t "bad JSON: 400"
msg '[1,2]'
isError 400 invalid_request_error
t "non-object body: 400"
msg '{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}'
isError 400 invalid_request_error && jb .error.message | grep -q model
t "no model: 400 naming it"
msg '{"model":"claude-opus-4-7","max_tokens":0,"messages":[{"role":"user","content":"x"}]}'
isError 400 invalid_request_error &&
    jb .error.message | grep -q max_tokens
t "max_tokens 0: 400 naming it"
msg '{"model":"claude-opus-4-7","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]}'
isError 400 invalid_request_error
t "max_tokens float: 400"
msg '{"model":"claude-opus-4-7","max_tokens":5,"messages":[]}'
isError 400 invalid_request_error &&
    jb .error.message | grep -q messages
t "empty messages: 400 naming it"
msg '{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"x"}]}'
isError 404 not_found_error
t "unknown model: 404"
post /v1/messages/count_tokens '{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"abcdefghijklmnop"}]}' \
    -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01'
[ "$code" = 200 ] && [ "$(jb .input_tokens)" = 5 ]    # (4 + 16 chars) / 4
t "count_tokens"
head -c $((32 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' > "$tmp/big"
code=$(curl -s -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' -H "x-api-key: $KEY" \
    -H 'anthropic-version: 2023-06-01' --data-binary @"$tmp/big" "$base/v1/messages")
rm -f "$tmp/big"
isError 413 request_too_large
t "body over 32 MB: 413 request_too_large"
[ "$(stat '.status["200"]')" = 4 ]     # 3 messages + count_tokens &&
    [ "$(stat '.status["401"]')" = 2 ] && [ "$(stat '.status["404"]')" = 1 ] &&
    [ "$(stat .repeated_bodies)" -ge 2 ] && [ "$(stat .concurrent)" = 0 ]
t "/_stats counts statuses"

# ---- buckets and headers ---------------------------------------------------------
curl -s -X POST "$base/_reset" >/dev/null
curl -s -X POST -d '{"rpm":2,"itpm":100000,"otpm":5000}' "$base/_config" >/dev/null
msg "$BODY"
[ "$(hdr anthropic-ratelimit-requests-limit)" = 2 ] &&
    [ "$(hdr anthropic-ratelimit-requests-remaining)" = 1 ] &&
    [ "$(hdr anthropic-ratelimit-input-tokens-limit)" = 100000 ] &&
    [ "$(hdr anthropic-ratelimit-output-tokens-limit)" = 5000 ] &&
    [ "$(hdr anthropic-ratelimit-tokens-limit)" = 5000 ] &&
    [[ "$(hdr anthropic-ratelimit-requests-reset)" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] &&
    [ $(( $(hdr anthropic-ratelimit-input-tokens-remaining) % 1000 )) = 0 ]
t "ratelimit headers on 200"
msg "$BODY"; msg "$BODY"
ra=$(hdr retry-after)
isError 429 rate_limit_error &&
    [ "$ra" -ge 1 ] && [ "$ra" -le 30 ] && [ "$(hdr anthropic-ratelimit-requests-remaining)" = 0 ]
t "rpm exceeded: 429 with retry-after and headers"
curl -s -X POST -d '{"rpm":0}' "$base/_config" >/dev/null
msg "$BODY"
[ "$code" = 200 ] && [ -z "$(hdr anthropic-ratelimit-requests-limit)" ]
t "/_config lifts rpm"
curl -s -X POST -d '{"otpm":1000,"otpm_mode":"reserve","itpm":0}' "$base/_config" >/dev/null
curl -s -X POST "$base/_reset" >/dev/null
msg '{"model":"claude-sonnet-4-6","max_tokens":1000,"messages":[{"role":"user","content":"reserve"}]}'
c1=$code
curl -s -X POST -d '{"latency_ms":1500}' "$base/_config" >/dev/null
curl -s -o /dev/null -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' \
    -d '{"model":"claude-sonnet-4-6","max_tokens":900,"messages":[{"role":"user","content":"reserve 2"}]}' \
    "$base/v1/messages" &
bg=$!
waitFor '[ "$(stat .concurrent)" = 1 ]' 5
msg '{"model":"claude-sonnet-4-6","max_tokens":900,"messages":[{"role":"user","content":"reserve 3"}]}'
[ "$c1" = 200 ] && [ "$code" = 429 ]
t "reserve mode: max_tokens held while in flight"
wait $bg
curl -s -X POST -d '{"otpm":0,"latency_ms":0,"otpm_mode":"actual"}' "$base/_config" >/dev/null
post /_config '{"rpm":-1}'
[ "$code" = 400 ]
t "/_config refuses bad values"
post /_config '{"nope":1}'
[ "$code" = 400 ]
t "/_config refuses unknown keys"

# ---- spend limit and org cap --------------------------------------------------------
curl -s -X POST -d '{"spend_limit_after":1}' "$base/_config" >/dev/null
curl -s -X POST "$base/_reset" >/dev/null
msg "$BODY"; c1=$code
msg "$BODY"
[ "$c1" = 200 ] &&
    isError 429 rate_limit_error && [ "$(jb .error.details.error_code)" = enforced_spend_limit_reached ] &&
    [ -z "$(hdr retry-after)" ]
t "spend limit: 429 with error_code, no retry-after"
curl -s -X POST "$base/_reset" >/dev/null
msg "$BODY"
[ "$code" = 200 ]
t "/_reset clears the spend limit"
curl -s -X POST -d '{"spend_limit_after":0,"org_cap_tokens":1,"org_cap_seconds":2}' "$base/_config" >/dev/null
curl -s -X POST "$base/_reset" >/dev/null
msg "$BODY"; c1=$code
msg "$BODY"
[ "$c1" = 200 ] && isError 429 rate_limit_error &&
    [ "$(hdr retry-after)" -ge 1 ] && [ "$(hdr retry-after)" -le 2 ] &&
    [ "$(hdr anthropic-ratelimit-tokens-remaining)" = 0 ]
t "org cap: 429, retry-after, tokens-remaining 0"
waitFor 'msg "$BODY"; [ "$code" = 200 ]' 5
t "org cap: serves again after its seconds"
curl -s -X POST -d '{"org_cap_tokens":0}' "$base/_config" >/dev/null

# ---- faults and latency ----------------------------------------------------------------
curl -s -X POST -d '{"p500":1}' "$base/_config" >/dev/null
msg "$BODY"
isError 500 api_error
t "p500: 500 api_error"
curl -s -X POST -d '{"p500":0,"p529":1}' "$base/_config" >/dev/null
msg "$BODY"
isError 529 overloaded_error
t "p529: 529 overloaded_error"
curl -s -X POST -d '{"p529":0,"p_reset":1}' "$base/_config" >/dev/null
msg "$BODY"; rc=$?
[ "$code" = 000 ]
t "p_reset: connection closed without a response"
curl -s -X POST -d '{"p_reset":0,"p_hang":1}' "$base/_config" >/dev/null
msg "$BODY" -m 1
[ "$code" = 000 ]
t "p_hang: no answer"
waitFor '[ "$(stat .concurrent)" = 0 ]' 5
t "p_hang: freed when the client leaves"
[ "$(stat .resets)" = 1 ] && [ "$(stat .hangs)" = 1 ]
t "/_stats counts resets and hangs"
curl -s -X POST -d '{"p_hang":0,"latency_ms":300}' "$base/_config" >/dev/null
t0=$(date +%s%N); msg "$BODY"; t1=$(date +%s%N)
[ "$code" = 200 ] && [ $(( (t1 - t0) / 1000000 )) -ge 290 ]
t "latency: answer after latency_ms"
curl -s -X POST -d '{"latency_ms":0}' "$base/_config" >/dev/null
[ "$(stat '.series | length')" -ge 1 ] &&
    [ "$(stat '.series[-1] | has("t") and has("input") and has("output") and has("requests") and has("r429")')" = true ]
t "/_stats series"

# ---- malformed responses ----------------------------------------------------------------
# Each mode at probability 1 through /_config; all answer BODY, whose
# well-formed answer is known (in1, out1), so the tokens served can be checked.
curl -s -X POST "$base/_reset" >/dev/null
msg "$BODY"
normal=$(wc -c < "$tmp/b")      # bytes of a well-formed answer to BODY
curl -s -X POST -d '{"p_garbage":1,"rpm":1}' "$base/_config" >/dev/null
msg "$BODY"; rc=$?
[ $rc = 0 ] && [ "$code" = 200 ] && [[ "$(hdr content-type)" == application/json* ]] &&
    ! jq . < "$tmp/b" >/dev/null 2>&1 && grep -q upstream "$tmp/b" &&
    [[ "$(hdr request-id)" == req_* ]] && [ "$(hdr anthropic-ratelimit-requests-limit)" = 1 ] &&
    [ "$(hdr anthropic-ratelimit-requests-remaining)" = 0 ]
t "p_garbage: 200, application/json, body not JSON, real headers"
msg "$BODY"
isError 429 rate_limit_error
t "p_garbage: the answer consumed the rpm bucket"
curl -s -X POST -d '{"p_garbage":0,"rpm":0,"p_truncated":1}' "$base/_config" >/dev/null
msg "$BODY"; rc=$?
size=$(wc -c < "$tmp/b")
[ $rc = 0 ] && [ "$code" = 200 ] && [ "$(hdr content-length)" = "$size" ] &&
    [ "$size" = $((normal / 2)) ] && [ "$(head -c 11 "$tmp/b")" = '{"id":"msg_' ] &&
    ! jq . < "$tmp/b" >/dev/null 2>&1
t "p_truncated: 200, framing intact, JSON cut at half"
curl -s -X POST -d '{"p_truncated":0,"p_no_usage":1}' "$base/_config" >/dev/null
msg "$BODY"
[ "$code" = 200 ] && [ "$(jb .type)" = message ] && [ "$(jb 'has("usage")')" = false ] &&
    [ "$(jb '.content[0].text')" = "$text1" ] && [ "$(jb .stop_reason)" = "$stop1" ]
t "p_no_usage: 200, valid message without usage"
curl -s -X POST -d '{"p_no_usage":0,"p_huge":1}' "$base/_config" >/dev/null
msg "$BODY"; rc=$?
[ $rc = 0 ] && [ "$code" = 200 ] && [ "$(wc -c < "$tmp/b")" -ge 8388608 ] &&
    [ "$(jb '.content[0].text | length')" = 8388608 ] && [ "$(jb .usage.output_tokens)" = "$out1" ]
t "p_huge: 200, valid message with 8 MiB of text (default)"
curl -s -X POST -d '{"huge_bytes":1000}' "$base/_config" >/dev/null
msg "$BODY"
[ "$code" = 200 ] && [ "$(jb '.content[0].text | length')" = 1000 ]
t "huge_bytes set through /_config"
post /_config '{"huge_bytes":2147483648}'
[ "$code" = 400 ]
t "/_config refuses huge_bytes over 1 GiB"
curl -s -X POST -d '{"p_huge":0,"p_bad_headers":1,"rpm":1000,"itpm":100000}' "$base/_config" >/dev/null
msg "$BODY"
long=$(hdr anthropic-ratelimit-output-tokens-remaining)
[ "$code" = 200 ] && [ "$(jb .usage.output_tokens)" = "$out1" ] &&
    [ "$(hdr anthropic-ratelimit-tokens-remaining)" = lots ] &&
    [ "$(hdr anthropic-ratelimit-input-tokens-reset)" = yesterday ] &&
    [ "$(hdr anthropic-ratelimit-requests-limit)" = NaN ] &&
    [ "$(hdr retry-after)" = soon ] && [ "${#long}" -ge 8000 ] &&
    [ "$(grep -ci '^anthropic-ratelimit-requests-limit:' "$tmp/h")" = 1 ]
t "p_bad_headers: 200, valid message, garbage rate-limit headers instead"
curl -s -X POST -d '{"p_bad_headers":0,"rpm":0,"itpm":0}' "$base/_config" >/dev/null
stat 'del(.series)' > "$tmp/s"
s() { jq -r "$1" < "$tmp/s"; }
[ "$(s .garbage)" = 1 ] && [ "$(s .truncated)" = 1 ] && [ "$(s .no_usage)" = 1 ] &&
    [ "$(s .huge)" = 2 ] && [ "$(s .bad_headers)" = 1 ]
t "/_stats counts garbage, truncated, no_usage, huge, bad_headers"
[ "$(s '.status["200"]')" = 7 ] && [ "$(s .input_tokens)" = $((7 * in1)) ] &&
    [ "$(s .output_tokens)" = $((7 * out1)) ]
t "/_stats counts malformed answers as tokens served"
stop
t "SIGTERM: exit 0"

# ---- malformed responses from the command line, held for latency ----------------------
"$bin/llmfleet-fakeapi" --help > "$tmp/help"
grep -q -- --p-garbage "$tmp/help" && grep -q -- --p-truncated "$tmp/help" &&
    grep -q -- --p-no-usage "$tmp/help" && grep -q -- --p-huge "$tmp/help" &&
    grep -q -- --huge-bytes "$tmp/help" && grep -q -- --p-bad-headers "$tmp/help"
t "--help lists the malformed-response flags"
"$bin/llmfleet-fakeapi" --huge-bytes 2147483648 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- --huge-bytes "$tmp/err"
t "--huge-bytes over 1 GiB exits 2"
start --api-key "$KEY" --seed 11 --latency-ms 20 --p-garbage 0.2 --p-truncated 0.2 \
    --p-no-usage 0.2 --p-huge 0.2 --p-bad-headers 0.2 --huge-bytes 5000
curl -s "$base/_config" > "$tmp/c"
[ "$(jq -c '[.p_garbage,.p_truncated,.p_no_usage,.p_huge,.p_bad_headers,.huge_bytes]' < "$tmp/c")" = \
    '[0.2,0.2,0.2,0.2,0.2,5000]' ]
t "flags set p_garbage p_truncated p_no_usage p_huge p_bad_headers huge_bytes"
codes=""
for i in $(seq 1 40); do
    msg "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"malformed $i\"}]}"
    codes="$codes$code "
done
stat 'del(.series)' > "$tmp/s"
[ "$(echo $codes | tr ' ' '\n' | sort -u)" = 200 ] && [ "$(s .garbage)" -ge 1 ] &&
    [ "$(s .truncated)" -ge 1 ] && [ "$(s .no_usage)" -ge 1 ] && [ "$(s .huge)" -ge 1 ] &&
    [ "$(s .bad_headers)" -ge 1 ] &&
    [ $(( $(s .garbage) + $(s .truncated) + $(s .no_usage) + $(s .huge) + $(s .bad_headers) )) = 40 ] &&
    [ "$(s .concurrent)" = 0 ]
t "mixed modes: every answer a 200, each mode seen, all counted"
stop
t "SIGTERM: exit 0 (malformed modes)"

# ---- new flags: --help, bad values ----------------------------------------------------
for f in --headers-at --class-limits --tokenizer --caching --output-tokens --output-dist; do
    grep -q -- "$f" "$tmp/help" || echo "missing $f in --help"
done | { ! grep -q .; }
t "--help lists --headers-at --class-limits --tokenizer --caching --output-tokens --output-dist"
bad=0
for a in "--headers-at later" "--class-limits sonnet=1,2" "--class-limits =1,2,3" \
         "--class-limits sonnet=1,-2,3" "--tokenizer bpe" "--output-tokens -5" "--output-dist normal"; do
    "$bin/llmfleet-fakeapi" $a 2>"$tmp/err"; rc=$?
    { [ $rc -eq 2 ] && grep -q -- "${a%% *}" "$tmp/err"; } || { echo "not refused: $a"; bad=1; }
done
[ $bad = 0 ]
t "bad values of the new flags exit 2 naming the flag"

# ---- --headers-at admit|answer -------------------------------------------------------
# rpm 5 refills 1 request in 12 s, so over a 0.8 s latency the count barely
# moves. A is admitted (4 left), then B while A is held (3 left). Stamped at
# admission A says 4 and B 3; stamped at the answer both say 3: A is answered
# after B's admission.
start --api-key "$KEY" --rpm 5 --latency-ms 800
[ "$(curl -s "$base/_config" | jq -r .headers_at)" = answer ]
t "--headers-at: answer by default"
# overlap NAME: A then B, B sent while A is held; remaining of each in $ra $rb.
overlap() {
    curl -s -o /dev/null -D "$tmp/hA" -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' \
        -d "$BODY" "$base/v1/messages" & local a=$!
    waitFor '[ "$(stat .concurrent)" = 1 ]' 5
    curl -s -o /dev/null -D "$tmp/hB" -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' \
        -d "$BODY" "$base/v1/messages" & local b=$!
    wait $a $b
    ra=$(tr -d '\r' < "$tmp/hA" | awk -F': ' 'tolower($1)=="anthropic-ratelimit-requests-remaining"{print $2}')
    rb=$(tr -d '\r' < "$tmp/hB" | awk -F': ' 'tolower($1)=="anthropic-ratelimit-requests-remaining"{print $2}')
}
overlap
[ "$ra" = 3 ] && [ "$rb" = 3 ]
t "--headers-at answer: the first answer already counts the second admission ($ra, $rb)"
stop
start --api-key "$KEY" --rpm 5 --latency-ms 800 --headers-at admit
overlap
[ "$ra" = 4 ] && [ "$rb" = 3 ]
t "--headers-at admit: each answer shows the bucket as it was admitted ($ra, $rb)"
curl -s -X POST -d '{"headers_at":"answer"}' "$base/_config" >/dev/null
curl -s -X POST "$base/_reset" >/dev/null
overlap
[ "$ra" = 3 ] && [ "$rb" = 3 ]
t "/_config headers_at switches back to answer"
stop

# ---- --class-limits ------------------------------------------------------------------
start --api-key "$KEY" --rpm 50 --class-limits sonnet=1,0,0 --class-limits haiku=3,100000,0
mbody() { echo "{\"model\":\"$1\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"${2:-class test}\"}]}"; }
msg "$(mbody claude-sonnet-4-6)"; c1=$code
msg "$(mbody claude-sonnet-4-5-20250929 other)"
[ "$c1" = 200 ] && isError 429 rate_limit_error && [ "$(hdr anthropic-ratelimit-requests-limit)" = 1 ] &&
    [ "$(hdr anthropic-ratelimit-requests-remaining)" = 0 ]
t "class limits: second sonnet request is refused by the sonnet bucket"
msg "$(mbody claude-opus-4-7)"
[ "$code" = 200 ] && [ "$(hdr anthropic-ratelimit-requests-limit)" = 50 ] &&
    [ "$(hdr anthropic-ratelimit-requests-remaining)" = 49 ] &&
    [ -z "$(hdr anthropic-ratelimit-input-tokens-limit)" ]
t "class limits: opus still passes, headers of the global buckets"
msg "$(mbody claude-haiku-4-5)"; c1=$code
msg "$(mbody claude-3-5-haiku-20241022)"
[ "$c1" = 200 ] && [ "$code" = 200 ] && [ "$(hdr anthropic-ratelimit-requests-limit)" = 3 ] &&
    [ "$(hdr anthropic-ratelimit-requests-remaining)" = 1 ] &&
    [ "$(hdr anthropic-ratelimit-input-tokens-limit)" = 100000 ]
t "class limits: claude-haiku-* and claude-3-5-haiku-* share the haiku buckets"
msg "$(mbody claude-3-opus-20240229)"
[ "$code" = 200 ] && [ "$(hdr anthropic-ratelimit-requests-limit)" = 50 ] &&
    [ "$(hdr anthropic-ratelimit-requests-remaining)" = 48 ]
t "class limits: a model of no family is its own class, on the global buckets"
stat 'del(.series)' > "$tmp/s"
[ "$(s .classes.sonnet.requests)" = 2 ] && [ "$(s .classes.sonnet.ok)" = 1 ] &&
    [ "$(s .classes.sonnet.r429)" = 1 ] && [ "$(s .classes.sonnet.own_buckets)" = true ] &&
    [ "$(s .classes.haiku.ok)" = 2 ] && [ "$(s .classes.haiku.rpm)" = 3 ] &&
    [ "$(s .classes.opus.ok)" = 1 ] && [ "$(s .classes.opus.own_buckets)" = false ] &&
    [ "$(s '.classes["claude-3-opus-20240229"].ok')" = 1 ] &&
    [ "$(s '[.classes[].input_tokens] | add')" = "$(s .input_tokens)" ] &&
    [ "$(s '[.classes[].output_tokens] | add')" = "$(s .output_tokens)" ] &&
    [ "$(s '.status["429"]')" = 1 ] &&
    [ "$(s '.classes.haiku.level.requests >= 1 and .classes.haiku.level.requests < 1.5')" = true ] &&
    [ "$(s '(100000 - .classes.haiku.level.input - .classes.haiku.input_tokens) | fabs < 100')" = true ]
t "/_stats per class: requests, ok, r429, tokens adding up to the totals; exact levels"
curl -s -X POST "$base/_reset" >/dev/null
msg "$(mbody claude-sonnet-4-6)"
[ "$code" = 200 ] && [ "$(stat .classes.sonnet.ok)" = 1 ] && [ "$(stat .classes.sonnet.r429)" = 0 ]
t "/_reset refills class buckets and zeroes class counters"
stop

# ---- --tokenizer realistic -----------------------------------------------------------
start --api-key "$KEY" --tokenizer realistic
# ctok BODY: input_tokens from count_tokens.
ctok() {
    post /v1/messages/count_tokens "$1" -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01'
    jb .input_tokens
}
rep() { local out="" i; for ((i = 0; i < $2; i++)); do out+=$1; done; printf '%s' "$out"; }
cjk=$(rep '漢字かな한' 20)             # 100 CJK characters, 300 bytes of UTF-8
cbody() { echo "{\"model\":\"claude-sonnet-4-6\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"$1\"}]}"; }
n=$(ctok "$(cbody "$cjk")")
[ "$n" = 100 ]
t "realistic: 100 CJK characters count 100 tokens ($n)"
msg "$(cbody "$cjk")"
[ "$code" = 200 ] && [ "$(jb .usage.input_tokens)" = 100 ]
t "realistic: usage.input_tokens of the CJK prompt is 100"
n=$(ctok "$(cbody "$(rep '\u6f22\u5b57\u304b\u306a\ud55c' 20)")")
[ "$n" = 100 ]
t "realistic: CJK as \\uXXXX escapes count 1 token each ($n)"
n=$(ctok "$(cbody "$(rep 'abcd' 100)")")
m=$(ctok "$(cbody "$(rep 'Привет мир' 20)")")       # 180 Cyrillic + 20 spaces
[ "$n" = 100 ] && [ "$m" = 95 ]
t "realistic: ASCII 4 characters a token ($n), other non-ASCII 2 a token ($m)"
# --tokenizer code (here through /_config): a symbol is a token; letters,
# digits and spaces as before.
curl -s -X POST -d '{"tokenizer":"code"}' "$base/_config" >/dev/null
n=$(ctok "$(cbody "$(rep 'f(x);  ' 20)")")            # 60 symbols, 80 others
m=$(ctok "$(cbody "$(rep 'abcd' 100)")")
[ "$n" = 80 ] && [ "$m" = 100 ]
t "code: f(x);  counts its 3 symbols a token each ($n = 60 + 80/4), letters as before ($m)"
curl -s -X POST -d '{"tokenizer":"realistic"}' "$base/_config" >/dev/null
# An image: a PNG header of W x H, then junk so its base64 is far longer
# than the image's token count times 4.
png() {
    { printf '\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR'
      printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' 0 0 $(($1 >> 8)) $(($1 & 255)))"
      printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' 0 0 $(($2 >> 8)) $(($2 & 255)))"
      printf '\x08\x02\x00\x00\x00\x00\x00\x00\x00'
      head -c 60000 /dev/urandom; } | base64 -w0
}
ibody() { echo "{\"model\":\"claude-sonnet-4-6\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"$1\",\"data\":\"$2\"}},{\"type\":\"text\",\"text\":\"abcdefghijklmnop\"}]}]}"; }
img=$(png 300 250)
n=$(ctok "$(ibody image/png "$img")")
[ "$n" = 104 ] && [ "${#img}" -gt 80000 ]
t "realistic: a 300x250 PNG counts 300*250/750 = 100 tokens, not ${#img}/4 ($n - 4 of text)"
msg "$(ibody image/png "$img")"
[ "$code" = 200 ] && [ "$(jb .usage.input_tokens)" = 104 ]
t "realistic: usage.input_tokens of the PNG message"
n=$(ctok "$(ibody image/png "$(png 4000 3000)")")
[ "$n" -ge 1500 ] && [ "$n" -le 1604 ]
t "realistic: a 4000x3000 PNG is scaled down to at most ~1,600 tokens ($n)"
jpg=$({ printf '\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00'
        printf '\xff\xdb\x00\x04\x00\x00'
        printf '\xff\xc0\x00\x11\x08\x01\xf4\x02\x58\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01'
        head -c 30000 /dev/urandom; } | base64 -w0)       # 600 x 500 (SOF0 after APP0, DQT)
n=$(ctok "$(ibody image/jpeg "$jpg")")
[ "$n" = 404 ]
t "realistic: a 600x500 JPEG counts 400 tokens ($n - 4 of text)"
pdf=$(printf '%%PDF-1.4\n1 0 obj << /Type /Pages /Count 2 >> endobj\n2 0 obj << /Type /Page >> endobj\n3 0 obj <</Type/Page>> endobj\n%%%%EOF\n' | base64 -w0)
n=$(ctok "{\"model\":\"claude-sonnet-4-6\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\",\"data\":\"$pdf\"}}]}]}")
[ "$n" = 6000 ]
t "realistic: a 2-page PDF document counts 3000 tokens a page ($n)"
curl -s -X POST -d '{"tokenizer":"chars"}' "$base/_config" >/dev/null
n=$(ctok "$(cbody "$cjk")")
[ "$n" = 76 ]       # (300 bytes + "user") / 4: today's count, bytes not characters
t "/_config tokenizer chars: the historical count again ($n)"
stop

# ---- --caching -----------------------------------------------------------------------
# A system block of 4096 characters marked cache_control: with the chars
# tokenizer the prefix is ("text" + 4096) / 4 = 1025 tokens, >= 1024.
start --api-key "$KEY" --caching --itpm 1100
long=$(rep 'abcdefgh' 512)
kbody() {   # kbody SYSTEM-TEXT USER-TEXT [TTL]
    local cc='{"type":"ephemeral"}'
    [ -n "${3:-}" ] && cc="{\"type\":\"ephemeral\",\"ttl\":\"$3\"}"
    echo "{\"model\":\"claude-sonnet-4-6\",\"max_tokens\":16,\"system\":[{\"type\":\"text\",\"text\":\"$1\",\"cache_control\":$cc}],\"messages\":[{\"role\":\"user\",\"content\":\"$2\"}]}"
}
total=$(ctok "$(kbody "$long" "first question")")
msg "$(kbody "$long" "first question")"
w1=$(jb .usage.cache_creation_input_tokens); i1=$(jb .usage.input_tokens)
[ "$code" = 200 ] && [ "$w1" = 1025 ] && [ "$(jb .usage.cache_read_input_tokens)" = 0 ] &&
    [ "$(jb .usage.cache_creation.ephemeral_5m_input_tokens)" = 1025 ] &&
    [ "$(jb .usage.cache_creation.ephemeral_1h_input_tokens)" = 0 ] &&
    [ $((w1 + i1)) = "$total" ]
t "caching: first request writes the prefix (write $w1, input $i1, total $total)"
# The bucket now holds ~75 tokens: a read of 1025 fits only if reads are free.
msg "$(kbody "$long" "second question")"
[ "$code" = 200 ] && [ "$(jb .usage.cache_read_input_tokens)" = 1025 ] &&
    [ "$(jb .usage.cache_creation_input_tokens)" = 0 ] &&
    [ "$(jb .usage.input_tokens)" -le 10 ]
t "caching: a later request reads it, admitted while ITPM holds far less than the prefix"
r2=$(jb .usage.input_tokens)
msg "$(kbody "${long}X" "second question")"
isError 429 rate_limit_error && jb .error.message | grep -q "input tokens"
t "caching: a new prefix is a write and is charged to ITPM: 429"
stat 'del(.series)' > "$tmp/s"
[ "$(s .cache_creation_input_tokens)" = 1025 ] && [ "$(s .cache_read_input_tokens)" = 1025 ] &&
    [ "$(s .itpm_input_tokens)" = $((1025 + i1 + r2)) ] && [ "$(s .input_tokens)" = $((i1 + r2)) ] &&
    [ "$(s .classes.sonnet.cache_read_input_tokens)" = 1025 ] &&
    [ "$(s .classes.sonnet.itpm_input_tokens)" = $((1025 + i1 + r2)) ]
t "/_stats: cache writes, reads, ITPM tokens, in total and per class"
curl -s -X POST -d '{"itpm":0}' "$base/_config" >/dev/null
msg "$(kbody "$long" "third question" 1h)"
[ "$code" = 200 ] && [ "$(jb .usage.cache_read_input_tokens)" = 1025 ]
t "caching: another ttl keeps the prefix (cache_control is not content)"
msg "$(kbody "${long}Y" "q" 1h)"
[ "$code" = 200 ] && [ "$(jb .usage.cache_creation.ephemeral_1h_input_tokens)" = 1026 ] &&
    [ "$(jb .usage.cache_creation.ephemeral_5m_input_tokens)" = 0 ]
t "caching: ttl 1h writes count as ephemeral_1h_input_tokens"
# Two breakpoints: the system prefix is read, the stretch up to the message
# block is written; sent again, all of it is read.
long2=$(rep 'ijklmnop' 512)
tbody="{\"model\":\"claude-sonnet-4-6\",\"max_tokens\":16,\"system\":[{\"type\":\"text\",\"text\":\"$long\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"$long2\",\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"and?\"}]}]}"
msg "$tbody"
[ "$code" = 200 ] && [ "$(jb .usage.cache_read_input_tokens)" = 1025 ] &&
    [ "$(jb .usage.cache_creation_input_tokens)" = 1026 ] && [ "$(jb .usage.input_tokens)" = 2 ]
t "caching: two breakpoints, the first cached: read 1025, write the 1026 after it"
msg "$tbody"
[ "$code" = 200 ] && [ "$(jb .usage.cache_read_input_tokens)" = 2051 ] &&
    [ "$(jb .usage.cache_creation_input_tokens)" = 0 ]
t "caching: sent again, the whole 2051-token prefix is read"
msg "$(kbody "$(rep 'abcdefgh' 100)" "short")"; c1=$(jb .usage.cache_creation_input_tokens)
msg "$(kbody "$(rep 'abcdefgh' 100)" "short")"
[ "$code" = 200 ] && [ "$c1" = 0 ] && [ "$(jb .usage.cache_read_input_tokens)" = 0 ] &&
    [ "$(jb .usage.cache_creation_input_tokens)" = 0 ]
t "caching: a prefix under 1024 tokens is not cached"
curl -s -X POST "$base/_reset" >/dev/null
msg "$(kbody "$long" "after reset")"
[ "$code" = 200 ] && [ "$(jb .usage.cache_creation_input_tokens)" = 1025 ]
t "/_reset empties the prompt cache"
curl -s -X POST -d '{"caching":false}' "$base/_config" >/dev/null
msg "$(kbody "$long" "after reset")"
[ "$code" = 200 ] && [ "$(jb .usage.cache_creation_input_tokens)" = 0 ] &&
    [ "$(jb .usage.cache_read_input_tokens)" = 0 ] && [ "$(jb '.usage | has("cache_creation")')" = false ]
t "/_config caching false: cache_control ignored, usage as without --caching"
stop

# ---- --output-tokens -----------------------------------------------------------------
start --api-key "$KEY" --output-tokens 50 --seed 5
# outs N MAX: output_tokens of N distinct requests with max_tokens MAX, one
# a line in $tmp/outs; the stop reasons in $tmp/stops.
outs() {
    : > "$tmp/outs"; : > "$tmp/stops"
    for ((i = 0; i < $1; i++)); do
        msg "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":$2,\"messages\":[{\"role\":\"user\",\"content\":\"length $i\"}]}"
        jb .usage.output_tokens >> "$tmp/outs"
        jb .stop_reason >> "$tmp/stops"
    done
}
outs 300 4096
mean=$(awk '{s += $1} END {printf "%d", s / NR}' "$tmp/outs")
[ "$mean" -ge 43 ] && [ "$mean" -le 57 ] && [ "$(sort -n "$tmp/outs" | tail -1)" -gt 150 ] &&
    [ "$(sort -n "$tmp/outs" | head -1)" -ge 1 ]
t "--output-tokens 50: mean of 300 within 15% ($mean), exponential tail, none 0"
outs 100 20
[ "$(sort -n "$tmp/outs" | tail -1)" = 20 ] && [ "$(grep -c '^20$' "$tmp/outs")" -ge 50 ] &&
    [ "$(grep -c max_tokens "$tmp/stops")" = "$(grep -c '^20$' "$tmp/outs")" ]
t "--output-tokens: capped at max_tokens, stop_reason max_tokens there"
curl -s -X POST -d '{"output_dist":"uniform"}' "$base/_config" >/dev/null
outs 300 4096
mean=$(awk '{s += $1} END {printf "%d", s / NR}' "$tmp/outs")
[ "$mean" -ge 45 ] && [ "$mean" -le 55 ] && [ "$(sort -n "$tmp/outs" | tail -1)" -le 99 ]
t "--output-dist uniform: mean within 10% ($mean), at most 2*MEAN-1"
curl -s -X POST -d '{"output_dist":"fixed","output_tokens":37}' "$base/_config" >/dev/null
outs 5 4096
[ "$(sort -u "$tmp/outs")" = 37 ]
t "--output-dist fixed through /_config: every answer 37 tokens"
stop

# ---- Message Batches -----------------------------------------------------------------
start --api-key "$KEY" --batch-ms 1500 --batch-queue 5 --seed 3
AH=(-H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01')
bpost() { post "/v1/messages/batches$1" "$2" "${AH[@]}"; }
bget() {
    code=$(curl -s -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' "${AH[@]}" "${@:2}" \
        "$base/v1/messages/batches$1")
}
breq() { # breq CUSTOM_ID MODEL MAX_TOKENS TEXT
    printf '{"custom_id":"%s","params":{"model":"%s","max_tokens":%s,"messages":[{"role":"user","content":"%s"}]}}' "$@"
}
reqs="$(breq ok-1 claude-sonnet-4-6 64 'first'),$(breq ok-2 claude-haiku-4-5 64 'second'),$(breq bad-model nope 8 'x'),$(breq no_max claude-sonnet-4-6 0 'y')"
bpost "" "{\"requests\":[$reqs]}"
bid=$(jb .id)
[ "$code" = 200 ] && [[ "$bid" == msgbatch_* ]] && [ "$(jb .type)" = message_batch ] &&
    [ "$(jb .processing_status)" = in_progress ] && [ "$(jb .request_counts.processing)" = 4 ] &&
    [ "$(jb .results_url)" = null ] && [ "$(jb .ended_at)" = null ] &&
    [[ "$(jb .created_at)" == 20*Z ]] && [[ "$(jb .expires_at)" == 20*Z ]]
t "batches: create answers an in_progress message_batch, all requests processing"
bget "/$bid/results"
isError 404 not_found_error
t "batches: no results before the batch ends (404)"
ended() { bget "/$1"; [ "$(jb .processing_status)" = ended ]; }   # ended ID
waitFor "ended $bid" 10 && [ "$(jb .request_counts.succeeded)" = 2 ] &&
    [ "$(jb .request_counts.errored)" = 2 ] && [ "$(jb .request_counts.processing)" = 0 ] &&
    [[ "$(jb .results_url)" == "$base/v1/messages/batches/$bid/results" ]]
t "batches: ends within --batch-ms, counts 2 succeeded / 2 errored, results_url set"
bget "/$bid/results"
[ "$code" = 200 ] && [ "$(wc -l < "$tmp/b")" = 4 ] &&
    [ "$(jq -r 'select(.result.type == "succeeded") | .custom_id' "$tmp/b" | sort | tr '\n' ' ')" = "ok-1 ok-2 " ] &&
    [ "$(jq -r 'select(.custom_id == "ok-1") | .result.message.type' "$tmp/b")" = message ] &&
    [ "$(jq -r 'select(.custom_id == "ok-2") | .result.message.model' "$tmp/b")" = claude-haiku-4-5 ] &&
    [ "$(jq -r 'select(.custom_id == "bad-model") | .result.error.error.type' "$tmp/b")" = not_found_error ] &&
    [ "$(jq -r 'select(.custom_id == "no_max") | .result.error.error.type' "$tmp/b")" = invalid_request_error ]
t "batches: results JSONL, one line per request, succeeded messages, errored with the API's error"
msg "$(jq -c '.requests[0].params' <<<"{\"requests\":[$reqs]}")"
sync_out=$(jb .usage.output_tokens); sync_in=$(jb .usage.input_tokens)
bget "/$bid/results"
[ "$(jq -r 'select(.custom_id == "ok-1") | "\(.result.message.usage.input_tokens) \(.result.message.usage.output_tokens)"' "$tmp/b")" = "$sync_in $sync_out" ]
t "batches: a request's usage is what /v1/messages gives the same params"
[ "$(stat .batches.succeeded)" = 2 ] && [ "$(stat .batches.errored)" = 2 ] &&
    [ "$(stat .batches.created)" = 1 ] && [ "$(stat .batches.requests)" = 4 ] &&
    [ "$(stat .batches.input_tokens)" -gt 0 ] && [ "$(stat .batches.output_tokens)" -gt 0 ] &&
    [ "$(stat .input_tokens)" = "$sync_in" ]
t "batches: /_stats counts batch work apart from /v1/messages"
ids=""; for i in $(seq 1 40); do ids="$ids${ids:+,}$(breq "r-$i" claude-opus-4-6 16 "n $i")"; done
post /_config '{"batch_queue":0}' >/dev/null
bpost "" "{\"requests\":[$ids]}"; big=$(jb .id)
waitFor "ended $big" 10
bget "/$big/results"
[ "$(jq -r .custom_id "$tmp/b" | sort -u | wc -l)" = 40 ] &&
    [ "$(jq -r .custom_id "$tmp/b" | head -5 | tr '\n' ' ')" != "r-1 r-2 r-3 r-4 r-5 " ]
t "batches: every result once, not in request order"
post /_config '{"batch_queue":5,"batch_ms":60000}' >/dev/null
bpost "" "{\"requests\":[$(breq q1 claude-opus-4-6 8 a),$(breq q2 claude-opus-4-6 8 b),$(breq q3 claude-opus-4-6 8 c),$(breq q4 claude-opus-4-6 8 d)]}"; q=$(jb .id)
bpost "" "{\"requests\":[$(breq q5 claude-opus-4-6 8 e),$(breq q6 claude-opus-4-6 8 f)]}"
isError 429 rate_limit_error && jb .error.message | grep -q opus
t "batches: --batch-queue refuses a batch that would pass the class's processing queue (429)"
bpost "" "{\"requests\":[$(breq h1 claude-haiku-4-5 8 e),$(breq h2 claude-haiku-4-5 8 f)]}"
[ "$code" = 200 ]
t "batches: another class's queue is its own"
bpost "/$q/cancel" ""
[ "$code" = 200 ] && [ "$(jb .processing_status)" = canceling ] && [ "$(jb .cancel_initiated_at)" != null ]
t "batches: cancel answers canceling"
waitFor "ended $q" 5 &&
    [ "$(jb .request_counts.canceled)" = 4 ]
t "batches: a canceled batch ends; its unprocessed requests canceled"
post /_config '{"batch_expire_ms":200}' >/dev/null
bpost "" "{\"requests\":[$(breq e1 claude-sonnet-4-6 8 a),$(breq e2 claude-sonnet-4-6 8 b)]}"; e=$(jb .id)
waitFor "ended $e" 5 && [ "$(jb .request_counts.expired)" = 2 ]
t "batches: requests not processed by the expiry end expired"
bget "/$e/results"
[ "$(jq -r .result.type "$tmp/b" | sort -u)" = expired ]
t "batches: expired results say so"
bget "?limit=2"
[ "$code" = 200 ] && [ "$(jb '.data | length')" = 2 ] && [ "$(jb .has_more)" = true ] &&
    [ "$(jb .first_id)" = "$e" ]
after=$(jb .last_id)
bget "?limit=20&after_id=$after"
[ "$(jb '.data | length')" = 3 ] && [ "$(jb .has_more)" = false ] && [ "$(jb .last_id)" = "$bid" ]
t "batches: list pages newest first (limit, after_id, has_more)"
code=$(curl -s -o "$tmp/b" -w '%{http_code}' -X DELETE "${AH[@]}" "$base/v1/messages/batches/$bid")
bget "/$bid"
[ "$code" = 404 ]
t "batches: delete an ended batch; it is gone"
bpost "" '{"requests":[{"custom_id":"a b","params":{}}]}'
isError 400 invalid_request_error && jb .error.message | grep -q custom_id
t "batches: a custom_id outside [a-zA-Z0-9_-]{1,64} is refused naming it"
bpost "" "{\"requests\":[$(breq d claude-sonnet-4-6 8 a),$(breq d claude-sonnet-4-6 8 b)]}"
isError 400 invalid_request_error && jb .error.message | grep -q unique
t "batches: duplicate custom_ids refused"
bpost "" '{"requests":[]}'
isError 400 invalid_request_error
t "batches: an empty batch refused"
code=$(curl -s -o "$tmp/b" -w '%{http_code}' -X POST -H 'anthropic-version: 2023-06-01' \
    -d '{"requests":[]}' "$base/v1/messages/batches")
[ "$code" = 401 ]
t "batches: no key, 401"
bget "/msgbatch_nope"
isError 404 not_found_error
t "batches: an unknown id, 404"
post /_config '{"batch_rpm":3}' >/dev/null
for i in 1 2 3 4; do bget ""; done
isError 429 rate_limit_error && [ -n "$(hdr retry-after)" ]
t "batches: --batch-rpm limits the endpoints (429, retry-after)"
stop

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
