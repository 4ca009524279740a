/* ratelimit.c — pick the rate-limit headers out of an API response.
 *
 * rlParseLine() sees one raw header line at a time, as libcurl's header
 * callback delivers it. A table maps each header name we keep to the field
 * it fills and the kind of value it carries; everything else is ignored.
 * Values come from the network, so every parser here is bounded by the
 * line length, checks for overflow and leaves the field alone on garbage.
 * This module only records what the server said; deciding what to do with
 * it (waiting, backing off) is the caller's business. */
#include "ratelimit.h"

#include "rfc3339.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* What kind of value a header carries. */
typedef enum {
    RL_COUNT,       /* non-negative integer: -limit, -remaining */
    RL_RESET,       /* RFC 3339 timestamp: -reset */
    RL_RETRY_S,     /* retry-after: whole seconds */
    RL_RETRY_MS,    /* retry-after-ms: milliseconds, maybe with a fraction */
    RL_BOOL,        /* x-should-retry: true / false */
    RL_ID           /* request-id: printable token */
} rlKind;

typedef struct rlField {
    const char *name;   /* header name, lowercase */
    rlKind kind;        /* how to parse the value */
    size_t off;         /* where the value goes in rlHeaders */
} rlField;

#define RL_BUCKET(prefix, member) \
    {"anthropic-ratelimit-" prefix "-limit", RL_COUNT, offsetof(rlHeaders, member.limit)}, \
    {"anthropic-ratelimit-" prefix "-remaining", RL_COUNT, offsetof(rlHeaders, member.remaining)}, \
    {"anthropic-ratelimit-" prefix "-reset", RL_RESET, offsetof(rlHeaders, member.reset_ms)}

static const rlField rlFields[] = {
    RL_BUCKET("requests", requests),
    RL_BUCKET("tokens", tokens),
    RL_BUCKET("input-tokens", input),
    RL_BUCKET("output-tokens", output),
    {"retry-after", RL_RETRY_S, offsetof(rlHeaders, retry_after_ms)},
    {"retry-after-ms", RL_RETRY_MS, offsetof(rlHeaders, retry_after_ms)},
    {"x-should-retry", RL_BOOL, offsetof(rlHeaders, should_retry)},
    {"request-id", RL_ID, offsetof(rlHeaders, request_id)},
};

static void bucketInit(rlBucket *b) {
    b->limit = b->remaining = b->reset_ms = -1;
}

void rlInit(rlHeaders *h) {
    bucketInit(&h->requests);
    bucketInit(&h->tokens);
    bucketInit(&h->input);
    bucketInit(&h->output);
    h->retry_after_ms = -1;
    h->should_retry = -1;
    h->request_id[0] = '\0';
}

/* ---- Value parsers -------------------------------------------------------
 * Each takes the trimmed value v[0..n), returns 0 with the result set or
 * -1 with *why saying what is wrong. */

/* A non-negative decimal integer, digits only. */
static int parseCount(const char *v, size_t n, long long *out, const char **why) {
    long long x = 0;
    if (n == 0) {
        *why = "missing value";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            *why = "not a non-negative integer";
            return -1;
        }
        if (x > (LLONG_MAX - (v[i] - '0')) / 10) {
            *why = "integer out of range";
            return -1;
        }
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 0;
}

/* Milliseconds, "1500" or "1500.25" (a fraction rounds up to the next ms). */
static int parseMillis(const char *v, size_t n, long long *out, const char **why) {
    const char *dot = memchr(v, '.', n);
    size_t ilen = dot ? (size_t)(dot - v) : n;
    long long ms;
    if (parseCount(v, ilen, &ms, why) < 0) return -1;
    if (dot) {
        int frac = 0;
        size_t flen = n - ilen - 1;
        if (flen == 0) {
            *why = "not a number";
            return -1;
        }
        for (size_t i = ilen + 1; i < n; i++) {
            if (v[i] < '0' || v[i] > '9') {
                *why = "not a number";
                return -1;
            }
            if (v[i] != '0') frac = 1;
        }
        if (frac) {
            if (ms == LLONG_MAX) {
                *why = "integer out of range";
                return -1;
            }
            ms++;
        }
    }
    *out = ms;
    return 0;
}

static int parseSeconds(const char *v, size_t n, long long *out, const char **why) {
    long long s;
    if (parseCount(v, n, &s, why) < 0) return -1;
    if (s > LLONG_MAX / 1000) {
        *why = "integer out of range";
        return -1;
    }
    *out = s * 1000;
    return 0;
}

static int parseBool(const char *v, size_t n, int *out, const char **why) {
    if (n == 4 && strncasecmp(v, "true", 4) == 0) {
        *out = 1;
    } else if (n == 5 && strncasecmp(v, "false", 5) == 0) {
        *out = 0;
    } else {
        *why = n ? "not true or false" : "missing value";
        return -1;
    }
    return 0;
}

/* A request id: printable ASCII without spaces, truncated to fit. Anything
 * else is refused, so an id can be logged as it is. */
static int parseId(const char *v, size_t n, char *out, size_t outlen, const char **why) {
    if (n == 0) {
        *why = "missing value";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= ' ' || v[i] >= 0x7f) {
            *why = "not a printable token";
            return -1;
        }
    }
    if (n >= outlen) n = outlen - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* ---- Lines -------------------------------------------------------------- */

static int isSpace(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim p[0..*n) of whitespace on both sides; returns the new start. */
static const char *trim(const char *p, size_t *n) {
    while (*n > 0 && isSpace(p[0])) p++, (*n)--;
    while (*n > 0 && isSpace(p[*n - 1])) (*n)--;
    return p;
}

static const rlField *findField(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof(rlFields) / sizeof(rlFields[0]); i++) {
        const rlField *f = &rlFields[i];
        if (strlen(f->name) == n && strncasecmp(f->name, name, n) == 0) return f;
    }
    return NULL;
}

/* Copy v[0..n) into out for an error message: at most 40 bytes, anything
 * unprintable as '?', so a hostile value cannot mangle a log line. */
static void quoteForError(const char *v, size_t n, char *out, size_t outlen) {
    size_t max = outlen - 4, o = 0;     /* room for "..." and the NUL */
    for (size_t i = 0; i < n && o < max; i++)
        out[o++] = (v[i] >= ' ' && v[i] < 0x7f && v[i] != '"') ? v[i] : '?';
    if (n > max) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Parse value v[0..n) as field f into h. */
static int store(rlHeaders *h, const rlField *f, const char *v, size_t n, const char **why) {
    char *dst = (char *)h + f->off;
    long long x;
    int b;

    switch (f->kind) {
    case RL_COUNT:
        if (parseCount(v, n, &x, why) < 0) return -1;
        *(long long *)dst = x;
        return 0;
    case RL_RESET:
        if (n == 0) {
            *why = "missing value";
            return -1;
        }
        if (rfc3339Parse(v, n, &x) < 0) {
            *why = "not an RFC 3339 timestamp";
            return -1;
        }
        *(long long *)dst = x;
        return 0;
    case RL_RETRY_S:
        if (parseSeconds(v, n, &x, why) < 0) return -1;
        /* retry-after-ms is the more precise of the two: it wins whichever
         * comes first. */
        if (h->retry_after_ms < 0) h->retry_after_ms = x;
        return 0;
    case RL_RETRY_MS:
        if (parseMillis(v, n, &x, why) < 0) return -1;
        h->retry_after_ms = x;
        return 0;
    case RL_BOOL:
        if (parseBool(v, n, &b, why) < 0) return -1;
        h->should_retry = b;
        return 0;
    case RL_ID:
        return parseId(v, n, h->request_id, sizeof(h->request_id), why);
    }
    *why = "unknown field kind";
    return -1;
}

int rlParseLine(rlHeaders *h, const char *line, size_t len, char *err,
                size_t errlen) {
    const char *colon, *name, *value, *why = NULL;
    size_t nlen, vlen;
    const rlField *f;

    if (line == NULL || len == 0) return 0;
    colon = memchr(line, ':', len);
    if (colon == NULL) return 0;            /* status line, blank line */
    nlen = (size_t)(colon - line);
    name = trim(line, &nlen);
    if ((f = findField(name, nlen)) == NULL) return 0;

    vlen = len - (size_t)(colon + 1 - line);
    value = trim(colon + 1, &vlen);
    if (store(h, f, value, vlen, &why) == 0) return 1;

    if (err && errlen > 0) {
        char shown[48];
        quoteForError(value, vlen, shown, sizeof(shown));
        snprintf(err, errlen, "bad %s header \"%s\": %s", f->name, shown, why);
    }
    return -1;
}
