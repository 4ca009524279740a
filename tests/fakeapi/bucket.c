/* bucket.c — the fake API's rate limits: token buckets refilled
 * continuously (not windows that reset), as the real API documents, and the
 * anthropic-ratelimit-* response headers that describe them.
 *
 * A bucket holds up to `limit` units and gains limit/60 per second. The
 * level is kept as a double so small refills are not lost; it may go
 * negative when output tokens are charged after the fact. Admission
 * decisions are made in messages.c; this file only does the arithmetic and
 * the headers.
 *
 * --enforce-ms N plays the docs' "a per-minute limit may be enforced over
 * shorter intervals (60 RPM as 1 per second)": each bucket also holds
 * `burst`, at most limit * N / 60000 units, refilled at the same rate and
 * charged alike; a request must fit both. The headers still describe the
 * minute's bucket (what a client sees says nothing of the short one). */
#include "fakeapi.h"

#include <math.h>
#include <stdio.h>

#include "rfc3339.h"

/* ---- Arithmetic ---------------------------------------------------------- */

/* Per-second refill rate of b (0 for an unlimited bucket). */
static double bucketRate(const fakeBucket *b) {
    return b->limit / 60.0;
}

/* Capacity of the short interval's bucket (--enforce-ms), 0 when off. */
static double burstCap(const fakeBucket *b) {
    double ms = fake.cfg.enforceMs;
    return ms > 0 && ms < 60000 ? b->limit * ms / 60000.0 : 0;
}

/* Set the capacity. A bucket that was unlimited starts full; otherwise the
 * level is kept, clamped to the new capacity. */
void fakeBucketSetLimit(fakeBucket *b, long long limit, double now) {
    int wasUnlimited = b->limit <= 0;
    b->limit = limit > 0 ? (double)limit : 0;
    if (wasUnlimited || b->level > b->limit) b->level = b->limit;
    if (wasUnlimited || b->burst > burstCap(b)) b->burst = burstCap(b);
    b->last = now;
}

void fakeBucketFill(fakeBucket *b) {
    b->level = b->limit;
    b->burst = burstCap(b);
}

void fakeBucketCharge(fakeBucket *b, double n) {
    if (b->limit <= 0) return;
    b->level -= n;
    if (b->level > b->limit) b->level = b->limit;
    double cap = burstCap(b);
    if (cap > 0) {
        b->burst -= n;
        if (b->burst > cap) b->burst = cap;
    }
}

void fakeBucketRefill(fakeBucket *b, double now) {
    if (b->limit <= 0) return;
    if (now > b->last) {
        double add = (now - b->last) * bucketRate(b), cap = burstCap(b);
        b->level += add;
        if (b->level > b->limit) b->level = b->limit;
        if (cap > 0) {
            b->burst += add;
            if (b->burst > cap) b->burst = cap;
        }
    }
    b->last = now;
}

/* Seconds until level reaches need (clamped to cap) at b's rate. */
static double waitFor(const fakeBucket *b, double level, double cap, double need) {
    if (need > cap) need = cap;
    return level >= need ? 0 : (need - level) / bucketRate(b);
}

double fakeBucketWait(const fakeBucket *b, double need) {
    if (b->limit <= 0) return 0;
    double w = waitFor(b, b->level, b->limit, need), cap = burstCap(b);
    if (cap > 0) {
        double ws = waitFor(b, b->burst, cap, need);
        if (ws > w) w = ws;
    }
    return w;
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
