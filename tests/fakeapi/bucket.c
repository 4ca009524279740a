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

/* Whole units left, never negative. Token counts are rounded to the
 * nearest thousand, as the real API does. */
static long long bucketRemaining(const fakeBucket *b, int tokens) {
    double v = b->level < 0 ? 0 : b->level;
    if (tokens) return (long long)llround(v / 1000.0) * 1000;
    return (long long)floor(v);
}

/* Put b's line in s as line k. */
static void snapBucket(fakeRlSnap *s, int k, const fakeBucket *b, int tokens,
                       long long wallMs) {
    s->has |= 1u << k;
    s->limit[k] = (long long)b->limit;
    s->remaining[k] = bucketRemaining(b, tokens);
    s->resetMs[k] = wallMs + (long long)ceil(fakeBucketFullIn(b) * 1000.0);
}

/* Fraction of b left, for choosing the most restrictive token bucket. */
static double bucketFraction(const fakeBucket *b) {
    return b->level / b->limit;
}

void fakeBucketSnap(fakeRlSnap *s, const fakeBucketSet *bs, double now) {
    long long wallMs = fakeWallMs();
    const fakeBucket *in = bs->input, *out = bs->output, *tight = NULL;

    s->has = 0;
    if (bs->requests->limit > 0)
        snapBucket(s, FAKE_RL_REQUESTS, bs->requests, 0, wallMs);

    /* tokens-*: the org cap when tripped, else the tighter of in/out. */
    if (fake.orgCapUntil > now) {
        s->has |= 1u << FAKE_RL_TOKENS;
        s->limit[FAKE_RL_TOKENS] = fake.cfg.orgCapTokens;
        s->remaining[FAKE_RL_TOKENS] = 0;
        s->resetMs[FAKE_RL_TOKENS] = wallMs + (long long)ceil((fake.orgCapUntil - now) * 1000.0);
    } else {
        if (in->limit > 0) tight = in;
        if (out->limit > 0 && (!tight || bucketFraction(out) < bucketFraction(tight)))
            tight = out;
        if (tight) snapBucket(s, FAKE_RL_TOKENS, tight, 1, wallMs);
    }
    if (in->limit > 0) snapBucket(s, FAKE_RL_INPUT, in, 1, wallMs);
    if (out->limit > 0) snapBucket(s, FAKE_RL_OUTPUT, out, 1, wallMs);
}

void fakeBucketEmit(struct evkeyvalq *h, const fakeRlSnap *s) {
    static const char *const names[FAKE_RL_N] = {
        "requests", "tokens", "input-tokens", "output-tokens",
    };
    char key[64], val[32];

    for (int k = 0; k < FAKE_RL_N; k++) {
        if (!(s->has & (1u << k))) continue;
        snprintf(key, sizeof(key), "anthropic-ratelimit-%s-limit", names[k]);
        snprintf(val, sizeof(val), "%lld", s->limit[k]);
        evhttp_add_header(h, key, val);
        snprintf(key, sizeof(key), "anthropic-ratelimit-%s-remaining", names[k]);
        snprintf(val, sizeof(val), "%lld", s->remaining[k]);
        evhttp_add_header(h, key, val);
        snprintf(key, sizeof(key), "anthropic-ratelimit-%s-reset", names[k]);
        rfc3339Format(s->resetMs[k], val, sizeof(val));
        evhttp_add_header(h, key, val);
    }
}
