/* outcome.c — classify API attempts (outcome.h). */
#include "outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define RESPONSE_MAX_TOKENS 2000000

static void setError(outcome *o, const char *type, int retryable,
                     const char *fmt, const char *arg) {
    o->ok = 0;
    o->retryable = retryable;
    snprintf(o->error_type, sizeof(o->error_type), "%s", type);
    snprintf(o->error_message, sizeof(o->error_message), fmt, arg);
}

static int statusRetryable(long s) {
    return s == 408 || s == 409 || s == 429 || s == 500 || s == 502 ||
           s == 503 || s == 504 || s == 529;
}

static void transportError(outcome *o, CURLcode cc, const char *curl_err, int cut) {
    const char *msg = curl_err && *curl_err ? curl_err : curl_easy_strerror(cc);
    if (cut == CUT_TOO_LARGE) {
        setError(o, "response_too_large", 0, "%s",
                 "response body exceeded --max-response-bytes");
        return;
    }
    if (cut == CUT_SLOW) {
        setError(o, "slow_response", 1, "%s", msg);
        return;
    }
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        setError(o, "timeout", 1, "%s", msg);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        setError(o, "tls_or_config_error", 0, "%s", msg);
        break;
    default:
        setError(o, "connection_error", 1, "%s", msg);
    }
}

static long long getInt(const jsonDoc *d, int obj, const char *path) {
    long long v;
    int t = jsonPath(d, obj, path);
    if (t < 0 || jsonInt(d, t, &v) < 0 || v < 0) return -1;
    return v;
}

static void parseSuccess(outcome *o, const char *body, size_t len) {
    jsonDoc d;
    char err[128];
    if (jsonParse(&d, body, len, RESPONSE_MAX_TOKENS, JSON_MAX_DEPTH, err,
                  sizeof(err)) < 0) {
        setError(o, "invalid_response", 1, "API answered 200 with a body "
                 "that is not JSON: %s", err);
        return;
    }
    int u = jsonGet(&d, 0, "usage");
    usage *us = &o->use;
    us->input_tokens = getInt(&d, u, "input_tokens");
    us->output_tokens = getInt(&d, u, "output_tokens");
    if (u < 0 || us->input_tokens < 0 || us->output_tokens < 0) {
        setError(o, "invalid_response", 1, "%s",
                 "API answered 200 without a valid usage object");
        jsonFree(&d);
        return;
    }
    us->cache_creation_input_tokens = getInt(&d, u, "cache_creation_input_tokens");
    us->cache_read_input_tokens = getInt(&d, u, "cache_read_input_tokens");
    us->cache_5m_tokens = getInt(&d, u, "cache_creation.ephemeral_5m_input_tokens");
    us->cache_1h_tokens = getInt(&d, u, "cache_creation.ephemeral_1h_input_tokens");
    if (us->cache_creation_input_tokens < 0) us->cache_creation_input_tokens = 0;
    if (us->cache_read_input_tokens < 0) us->cache_read_input_tokens = 0;
    /* No real request comes near USAGE_MAX_TOKENS: a count beyond it is a
     * broken answer, not a bill (its cost would overflow the spend
     * counters; the reservation counts as spent instead). */
    const long long all[] = {us->input_tokens, us->output_tokens,
                             us->cache_creation_input_tokens, us->cache_read_input_tokens,
                             us->cache_5m_tokens, us->cache_1h_tokens};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
        if (all[k] > USAGE_MAX_TOKENS) {
            char m[160];
            snprintf(m, sizeof(m), "API answered 200 with a usage count of %lld "
                     "tokens, beyond any real request (%lld)", all[k], USAGE_MAX_TOKENS);
            setError(o, "invalid_response", 1, "%s", m);
            jsonFree(&d);
            return;
        }
    }
    int m = jsonGet(&d, 0, "model");
    if (m >= 0 && jsonStr(&d, m, o->model, sizeof(o->model)) < 0) o->model[0] = '\0';
    o->ok = 1;
    jsonFree(&d);
}

static void parseError(outcome *o, long status, const char *body, size_t len) {
    jsonDoc d;
    char err[128];
    char type[64] = "", msg[400] = "";
    if (body && jsonParse(&d, body, len, 100000, JSON_MAX_DEPTH, err,
                          sizeof(err)) == 0) {
        int e = jsonGet(&d, 0, "error");
        jsonStr(&d, jsonGet(&d, e, "type"), type, sizeof(type));
        jsonStr(&d, jsonGet(&d, e, "message"), msg, sizeof(msg));
        int code = jsonPath(&d, e, "details.error_code");
        if (code >= 0 && jsonStrEq(&d, code, "enforced_spend_limit_reached"))
            o->spend_limit = 1;
        jsonFree(&d);
    }
    o->ok = 0;
    o->retryable = statusRetryable(status) && !o->spend_limit;
    snprintf(o->error_type, sizeof(o->error_type), "%s",
             type[0] ? type : "http_error");
    if (msg[0])
        snprintf(o->error_message, sizeof(o->error_message), "%s", msg);
    else
        snprintf(o->error_message, sizeof(o->error_message),
                 "HTTP %ld without an API error body", status);
}

void outcomeClassify(outcome *o, CURLcode cc, const char *curl_err,
                     int cut, long status, const char *body,
                     size_t body_len, const rlHeaders *rl) {
    memset(o, 0, sizeof(*o));
    o->retry_after_ms = rl ? rl->retry_after_ms : -1;
    o->http_status = status;
    if (cc != CURLE_OK || cut) {
        transportError(o, cc, curl_err, cut);
        return;
    }
    if (status == 200) {
        parseSuccess(o, body, body_len);
    } else {
        parseError(o, status, body, body_len);
    }
    if (!o->ok && rl && rl->should_retry >= 0 && !o->spend_limit)
        o->retryable = rl->should_retry;
}

/* ---- Secrets ------------------------------------------------------------- */

#define REDACTED "[redacted]"

static int tokenChar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

void scrubSecrets(char *s, size_t cap, const char *key) {
    if (!s || cap == 0) return;
    size_t klen = key ? strlen(key) : 0, n = strlen(s), o = 0;
    char *out = malloc(cap);
    if (!out) { s[0] = '\0'; return; }    /* nothing rather than a leak */
    for (size_t i = 0; i < n && o + 1 < cap;) {
        size_t skip = 0;
        if (klen >= 8 && n - i >= klen && memcmp(s + i, key, klen) == 0) skip = klen;
        else if (n - i >= 7 && memcmp(s + i, "sk-ant-", 7) == 0)
            for (skip = 7; i + skip < n && tokenChar((unsigned char)s[i + skip]); skip++) {}
        if (skip) {
            size_t r = sizeof(REDACTED) - 1;
            if (r > cap - 1 - o) r = cap - 1 - o;
            memcpy(out + o, REDACTED, r);
            o += r;
            i += skip;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = '\0';
    memcpy(s, out, o + 1);
    free(out);
}

void outcomeScrub(outcome *o, const char *key) {
    scrubSecrets(o->error_type, sizeof(o->error_type), key);
    scrubSecrets(o->error_message, sizeof(o->error_message), key);
    scrubSecrets(o->model, sizeof(o->model), key);
}

int maskKey(char *p, size_t len, const char *key) {
    size_t klen = key ? strlen(key) : 0;
    int n = 0;
    if (!p || klen < 8) return 0;
    for (char *q = p; (size_t)(q - p) + klen <= len;) {
        char *hit = memmem(q, len - (size_t)(q - p), key, klen);
        if (!hit) break;
        memset(hit, '*', klen);
        q = hit + klen;
        n++;
    }
    return n;
}
