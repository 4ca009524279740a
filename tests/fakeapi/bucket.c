/* bucket.c — the fake API's rate limits: token buckets refilled
 * continuously (not windows that reset), as the real API documents, and the
 * anthropic-ratelimit-* response headers that describe them.
 *
 * A bucket holds up to `limit` units and gains limit/60 per second. The
 * level is kept as a double so small refills are not lost; it may go
 * negative when output tokens are charged after the fact. Admission
 * decisions are made in messages.c; this file only does the arithmetic and
 * the headers. */
#include "fakeapi.h"

#include <math.h>
#include <stdio.h>

#include "rfc3339.h"

/* ---- Arithmetic ---------------------------------------------------------- */

/* Per-second refill rate of b (0 for an unlimited bucket). */
static double bucketRate(const fakeBucket *b) {
    return b->limit / 60.0;
}

/* Set the capacity. A bucket that was unlimited starts full; otherwise the
 * level is kept, clamped to the new capacity. */
void fakeBucketSetLimit(fakeBucket *b, long long limit, double now) {
    int wasUnlimited = b->limit <= 0;
    b->limit = limit > 0 ? (double)limit : 0;
    if (wasUnlimited || b->level > b->limit) b->level = b->limit;
    b->last = now;
}

void fakeBucketRefill(fakeBucket *b, double now) {
    if (b->limit <= 0) return;
    if (now > b->last) {
        b->level += (now - b->last) * bucketRate(b);
        if (b->level > b->limit) b->level = b->limit;
    }
    b->last = now;
}

double fakeBucketWait(const fakeBucket *b, double need) {
    if (b->limit <= 0) return 0;
    if (need > b->limit) need = b->limit;
    if (b->level >= need) return 0;
    return (need - b->level) / bucketRate(b);
}

double fakeBucketFullIn(const fakeBucket *b) {
    if (b->limit <= 0 || b->level >= b->limit) return 0;
    return (b->limit - b->level) / bucketRate(b);
}

/* ---- Headers ------------------------------------------------------------- */

/* Add anthropic-ratelimit-NAME-{limit,remaining,reset}. */
static void addTriple(struct evkeyvalq *h, const char *name, long long limit,
                      long long remaining, long long resetMs) {
    char key[64], val[32];

    snprintf(key, sizeof(key), "anthropic-ratelimit-%s-limit", name);
    snprintf(val, sizeof(val), "%lld", limit);
    evhttp_add_header(h, key, val);
    snprintf(key, sizeof(key), "anthropic-ratelimit-%s-remaining", name);
    snprintf(val, sizeof(val), "%lld", remaining);
    evhttp_add_header(h, key, val);
    snprintf(key, sizeof(key), "anthropic-ratelimit-%s-reset", name);
    rfc3339Format(resetMs, val, sizeof(val));
    evhttp_add_header(h, key, val);
}

/* Whole units left, never negative. Token counts are rounded to the
 * nearest thousand, as the real API does. */
static long long bucketRemaining(const fakeBucket *b, int tokens) {
    double v = b->level < 0 ? 0 : b->level;
    if (tokens) return (long long)llround(v / 1000.0) * 1000;
    return (long long)floor(v);
}

static void addBucket(struct evkeyvalq *h, const char *name,
                      const fakeBucket *b, int tokens, long long wallMs) {
    long long reset = wallMs + (long long)ceil(fakeBucketFullIn(b) * 1000.0);
    addTriple(h, name, (long long)b->limit, bucketRemaining(b, tokens), reset);
}

/* Fraction of b left, for choosing the most restrictive token bucket. */
static double bucketFraction(const fakeBucket *b) {
    return b->level / b->limit;
}

void fakeBucketAddHeaders(struct evkeyvalq *h, double now) {
    long long wallMs = fakeWallMs();
    const fakeBucket *in = &fake.input, *out = &fake.output, *tight = NULL;

    if (fake.requests.limit > 0)
        addBucket(h, "requests", &fake.requests, 0, wallMs);

    /* tokens-*: the org cap when tripped, else the tighter of in/out. */
    if (fake.orgCapUntil > now) {
        long long reset = wallMs + (long long)ceil((fake.orgCapUntil - now) * 1000.0);
        addTriple(h, "tokens", fake.cfg.orgCapTokens, 0, reset);
    } else {
        if (in->limit > 0) tight = in;
        if (out->limit > 0 && (!tight || bucketFraction(out) < bucketFraction(tight)))
            tight = out;
        if (tight) addBucket(h, "tokens", tight, 1, wallMs);
    }
    if (in->limit > 0) addBucket(h, "input-tokens", in, 1, wallMs);
    if (out->limit > 0) addBucket(h, "output-tokens", out, 1, wallMs);
}
