/* test_codec.c — unit tests for common/fleet/codec.c: the argument vectors
 * of the fleet's scripts, the parsers of their replies and the settle
 * record builder. No Redis: replies are redisReply trees built by hand.
 *
 * Positions are checked through proto.h's enums (0-based here, 1-based in
 * the generated Lua prelude); a few tests read the vectors the way the Lua
 * scripts do, so a layout the scripts would misread fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "json.h"

/* ---- redisReply trees --------------------------------------------------- */

static redisReply *rNew(int type) {
    redisReply *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->type = type;
    return r;
}

static redisReply *rInt(long long v) {
    redisReply *r = rNew(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *rStrType(int type, const char *s) {
    redisReply *r = rNew(type);
    r->len = strlen(s);
    r->str = calloc(1, r->len + 1);
    assert_non_null(r->str);
    memcpy(r->str, s, r->len);
    return r;
}

static redisReply *rStr(const char *s) { return rStrType(REDIS_REPLY_STRING, s); }
static redisReply *rErr(const char *s) { return rStrType(REDIS_REPLY_ERROR, s); }
static redisReply *rNil(void) { return rNew(REDIS_REPLY_NIL); }

/* An array of n elements, all NULL: the caller fills them. */
static redisReply *rArrN(size_t n) {
    redisReply *r = rNew(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof(*r->element));
    assert_non_null(r->element);
    return r;
}

/* An array of the n elements given. */
static redisReply *rArr(size_t n, ...) {
    redisReply *r = rArrN(n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}

static void rFree(redisReply *r) {
    if (!r) return;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) rFree(r->element[i]);
        free(r->element);
    }
    free(r->str);
    free(r);
}

/* ---- Helpers ------------------------------------------------------------ */

/* Argument i of a as a NUL-terminated copy (arguments are not terminated). */
static const char *arg(const lfArgs *a, int i) {
    static char out[8][512];
    static int k;
    assert_true(i >= 0 && i < a->n);
    assert_true(a->l[i] < sizeof(out[0]));
    char *o = out[k++ % 8];
    memcpy(o, a->v[i], a->l[i]);
    o[a->l[i]] = '\0';
    return o;
}

/* Argument i equals s exactly (bytes and length). */
static void assertArg(const lfArgs *a, int i, const char *s) {
    if (i < 0 || i >= a->n) fail_msg("argument %d of %d", i, a->n);
    if (a->l[i] != strlen(s) || memcmp(a->v[i], s, a->l[i]) != 0)
        fail_msg("argument %d is \"%.*s\" (%zu bytes), want \"%s\"", i, (int)a->l[i],
                 a->v[i], a->l[i], s);
}

/* The value of field name in record r (NULL when absent); fails when the
 * name is there twice. */
static const char *fieldOf(const settleRec *r, const char *name, size_t *len) {
    const char *found = NULL;
    assert_int_equal(r->nf % 2, 0);
    for (int i = 0; i < r->nf; i += 2) {
        if (r->fl[i] == strlen(name) && memcmp(r->fv[i], name, r->fl[i]) == 0) {
            if (found) fail_msg("field %s twice", name);
            found = r->fv[i + 1];
            if (len) *len = r->fl[i + 1];
        }
    }
    return found;
}

static void assertField(const settleRec *r, const char *name, const char *want) {
    size_t len = 0;
    const char *v = fieldOf(r, name, &len);
    if (!v) fail_msg("no field %s", name);
    if (len != strlen(want) || memcmp(v, want, len) != 0)
        fail_msg("field %s is \"%.*s\", want \"%s\"", name, (int)len, v, want);
}

static void assertNoField(const settleRec *r, const char *name) {
    if (fieldOf(r, name, NULL)) fail_msg("unexpected field %s", name);
}

/* settle.lua finds a result's status among its first three field names. */
static void assertStatusEarly(const settleRec *r, const char *want) {
    for (int i = 0; i < 6 && i < r->nf; i += 2)
        if (r->fl[i] == 6 && memcmp(r->fv[i], "status", 6) == 0) {
            assert_int_equal(r->fl[i + 1], strlen(want));
            assert_memory_equal(r->fv[i + 1], want, strlen(want));
            return;
        }
    fail_msg("status is not among the first three fields");
}

static job mkJob(const char *id, const char *model, const char *meta) {
    job j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    snprintf(j.model, sizeof(j.model), "%s", model);
    j.max_tokens = 1024;
    j.request = "{}";
    j.request_len = 2;
    if (meta) {
        j.meta = meta;
        j.meta_len = strlen(meta);
    }
    return j;
}

static outcome okOutcome(void) {
    outcome o;
    memset(&o, 0, sizeof(o));
    o.ok = 1;
    o.http_status = 200;
    o.use.input_tokens = 1000;
    o.use.output_tokens = 500;
    o.use.cache_creation_input_tokens = 200;
    o.use.cache_5m_tokens = -1;
    o.use.cache_1h_tokens = -1;
    o.use.cache_read_input_tokens = 100;
    o.retry_after_ms = -1;
    return o;
}

static outcome errOutcome(long status) {
    outcome o;
    memset(&o, 0, sizeof(o));
    o.http_status = status;
    o.retryable = 1;
    snprintf(o.error_type, sizeof(o.error_type), "rate_limit_error");
    o.use.input_tokens = 77;      /* garbage an error must not report */
    o.use.output_tokens = 88;
    o.use.cache_creation_input_tokens = 66;
    o.use.cache_read_input_tokens = 55;
    o.retry_after_ms = 2500;
    o.spend_limit = 1;
    return o;
}

static const recCtx ctx = {"w-1", 2, 345, NULL};

/* Standard base64 decode (with padding); returns the length or -1. */
static long b64decode(const char *s, size_t len, unsigned char *out, size_t cap) {
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    if (len % 4) return -1;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = s[i + k];
            unsigned d = 0;
            if (c == '=') {
                if (i + 4 != len || k < 2) return -1;
                pad++;
            } else {
                const char *p = memchr(tab, c, 64);
                if (!p || pad) return -1;
                d = (unsigned)(p - tab);
            }
            v = v << 6 | d;
        }
        int bytes = 3 - pad;
        if (n + (size_t)bytes > cap) return -1;
        out[n++] = (unsigned char)(v >> 16);
        if (bytes > 1) out[n++] = (unsigned char)(v >> 8);
        if (bytes > 2) out[n++] = (unsigned char)v;
    }
    return (long)n;
}

/* ---- Argument vectors --------------------------------------------------- */

static void test_args_values(void **state) {
    (void)state;
    lfArgs a;
    argsInit(&a, 7, 4);
    assert_int_equal(a.n, 0);
    argsAdd(&a, "a\0b", 3);
    argsStr(&a, "hello");
    argsNum(&a, -42);
    argsNum(&a, 0);
    argsNum(&a, LLONG_MAX);
    argsNum(&a, LLONG_MIN);
    argsAdd(&a, "", 0);
    assert_int_equal(a.n, 7);
    assert_int_equal(a.nnum, 4);
    assert_int_equal(a.l[0], 3);
    assert_memory_equal(a.v[0], "a\0b", 3);
    assertArg(&a, 1, "hello");
    /* Each number has its own storage: later ones do not overwrite. */
    assertArg(&a, 2, "-42");
    assertArg(&a, 3, "0");
    assertArg(&a, 4, "9223372036854775807");
    assertArg(&a, 5, "-9223372036854775808");
    assert_int_equal(a.l[6], 0);
    argsFree(&a);
    assert_null(a.v);
    assert_int_equal(a.n, 0);
}

/* argsAdd keeps the caller's pointer (no copy): the vector is cheap. */
static void test_args_points_at_caller(void **state) {
    (void)state;
    lfArgs a;
    char s[] = "abc";
    argsInit(&a, 1, 0);
    argsStr(&a, s);
    assert_ptr_equal(a.v[0], s);
    argsFree(&a);
}

/* ---- claim.lua ---------------------------------------------------------- */

static void test_claim_args(void **state) {
    (void)state;
    lfArgs a;
    argsInit(&a, CA_COUNT, 4);
    claimArgs(&a, 16, 30000, "w-1:7:", 1024, "w-1", 1);
    assert_int_equal(a.n, CA_COUNT);
    assertArg(&a, CA_N, "16");
    assertArg(&a, CA_LEASE_MS, "30000");
    assertArg(&a, CA_PREFIX, "w-1:7:");
    assertArg(&a, CA_MAX_JOB, "1024");
    assertArg(&a, CA_INTAKE, "w-1");
    assertArg(&a, CA_POLL, "1");
    argsFree(&a);
}

static redisReply *claimReplyOf(long long now, redisReply *wait, redisReply *reason,
                                redisReply *n) {
    redisReply *r = rArrN(n ? CR_COUNT : CR_N);
    r->element[CR_NOW] = rInt(now);
    r->element[CR_WAIT_MS] = wait;
    r->element[CR_REASON] = reason;
    if (n) r->element[CR_N] = n;
    return r;
}

static void test_claim_parse_wait(void **state) {
    (void)state;
    claimReply c;
    redisReply *r = claimReplyOf(1000, rInt(2500), rStr("paused: 429"), NULL);
    memset(&c, 0x55, sizeof(c));
    assert_int_equal(claimParse(r, &c), 0);
    assert_int_equal(c.wait_ms, 2500);
    assert_string_equal(c.reason, "paused: 429");
    assert_int_equal(c.n, 0);
    rFree(r);
}

static void test_claim_parse_claimed(void **state) {
    (void)state;
    claimReply c;
    redisReply *r = claimReplyOf(1000, rInt(0), rStr(""), rInt(7));
    assert_int_equal(claimParse(r, &c), 0);
    assert_int_equal(c.wait_ms, 0);
    assert_int_equal(c.n, 7);
    assert_string_equal(c.reason, "");
    rFree(r);
}

/* Nothing queued: claim.lua returns {now, 0, ''} without the count. */
static void test_claim_parse_empty(void **state) {
    (void)state;
    claimReply c;
    redisReply *r = claimReplyOf(1000, rInt(0), rStr(""), NULL);
    memset(&c, 0x55, sizeof(c));
    assert_int_equal(claimParse(r, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(c.wait_ms, 0);
    rFree(r);
}

static void test_claim_parse_malformed(void **state) {
    (void)state;
    claimReply c;
    assert_int_equal(claimParse(NULL, &c), -1);
    redisReply *r = rStr("0");
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
    r = rErr("ERR boom");
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
    r = rArr(2, rInt(1000), rInt(0));               /* too short */
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
    r = rArrN(0);
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
    r = claimReplyOf(1000, rStr("2500"), rStr("x"), NULL);    /* wait not an int */
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
    r = claimReplyOf(1000, rNil(), rStr("x"), NULL);
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
    r = claimReplyOf(1000, rInt(0), rStr(""), rStr("7"));     /* n not an int */
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
    r = claimReplyOf(1000, rInt(0), rStr(""), rInt(-1));      /* negative n */
    assert_int_equal(claimParse(r, &c), -1);
    rFree(r);
}

/* ---- admit.lua ---------------------------------------------------------- */

static void test_admit_args(void **state) {
    (void)state;
    const admitHead h = {45000, 3, SOLO_RUNS, 12};
    const admitJob jobs[3] = {
        {"w:1:1", "job-a", "claude-sonnet-4-5", 1200, 4096, 65000, "a1b2c3", 900, 0, 0, NULL,
         "batch", 1796000000000LL, 5120},
        {"w:1:2", "job-b", "claude-haiku-4-5", 0, 1, -1, NULL, 0, 7, 1, "w:1:1", NULL, -1, 0},
        {"w:1:3", "job-c", "", LLONG_MAX, 7, 0, "", -1, 1, 3, NULL, "", -1, 17},
    };
    lfArgs a;
    /* Exactly the capacity codec.h promises: more would abort. Numbers per
     * job: INPUT, MAX_TOKENS, RESERVE, PREFIX_TOKENS, CACHE_1H, EXACT,
     * DEADLINE_MS, BYTES. */
    argsInit(&a, AA_COUNT + 3 * AJ_COUNT, AA_COUNT + 3 * 8);
    admitArgs(&a, &h, jobs, 3);
    assert_int_equal(a.n, AA_COUNT + 3 * AJ_COUNT);
    assertArg(&a, AA_LEASE_MS, "45000");
    assertArg(&a, AA_BUSY, "3");
    assertArg(&a, AA_SOLO, "2");
    assertArg(&a, AA_PRICES_VER, "12");
    static const char *want[3][AJ_COUNT] = {
        {"w:1:1", "job-a", "claude-sonnet-4-5", "1200", "4096", "65000", "a1b2c3", "900", "0", "0",
         "w:1:1", "batch", "1796000000000", "5120"},
        /* NULL prefix: ""; any non-zero cache_1h: "1"; exact clamped to 0..2;
         * NULL lane: "" (the fleet's default). */
        {"w:1:2", "job-b", "claude-haiku-4-5", "0", "1", "-1", "", "0", "1", "1", "w:1:1", "", "-1", "0"},
        {"w:1:3", "job-c", "", "9223372036854775807", "7", "0", "", "-1", "1", "2", "", "", "-1", "17"},
    };
    for (int i = 0; i < 3; i++) {
        int g = AA_COUNT + i * AJ_COUNT;
        assertArg(&a, g + AJ_LEASE, want[i][0]);
        assertArg(&a, g + AJ_ID, want[i][1]);
        assertArg(&a, g + AJ_MODEL, want[i][2]);
        assertArg(&a, g + AJ_INPUT, want[i][3]);
        assertArg(&a, g + AJ_MAX_TOKENS, want[i][4]);
        assertArg(&a, g + AJ_RESERVE, want[i][5]);
        assertArg(&a, g + AJ_PREFIX, want[i][6]);
        assertArg(&a, g + AJ_PREFIX_TOKENS, want[i][7]);
        assertArg(&a, g + AJ_CACHE_1H, want[i][8]);
        assertArg(&a, g + AJ_EXACT, want[i][9]);
        assertArg(&a, g + AJ_LANE, want[i][11]);
        assertArg(&a, g + AJ_DEADLINE_MS, want[i][12]);
        assertArg(&a, g + AJ_BYTES, want[i][13]);
    }
    /* The model is the caller's string, not a copy. */
    assert_ptr_equal(a.v[AA_COUNT + AJ_MODEL], jobs[0].model);
    argsFree(&a);

    /* No jobs: the fixed arguments only. */
    argsInit(&a, AA_COUNT, AA_COUNT);
    admitArgs(&a, &h, NULL, 0);
    assert_int_equal(a.n, AA_COUNT);
    argsFree(&a);
}

static const admitVerdict allAdmit[] = {
#define X(N, v, doc) ADMIT_##N,
    LF_ADMIT(X)
#undef X
};
#define NADMIT ((int)(sizeof(allAdmit) / sizeof(allAdmit[0])))

/* An admission reply: head, then (verdict, value) per job from codes/values. */
static redisReply *admitReplyOf(redisReply *pv, int n, redisReply **codes,
                                redisReply **values) {
    redisReply *r = rArrN(AR_COUNT + 2 * (size_t)n);
    r->element[AR_CEILING] = rInt(64);
    r->element[AR_REASON] = rStr("job-b waits: tokens");
    r->element[AR_SOLO] = rInt(SOLO_WAITS);
    r->element[AR_PRICES_VER] = pv;
    for (int i = 0; i < n; i++) {
        r->element[AR_COUNT + 2 * i] = codes[i];
        r->element[AR_COUNT + 2 * i + 1] = values[i];
    }
    return r;
}

static void test_admit_parse_good(void **state) {
    (void)state;
    redisReply *codes[NADMIT], *values[NADMIT];
    for (int i = 0; i < NADMIT; i++) {
        codes[i] = rInt(allAdmit[i]);
        values[i] = rInt(1000 + i);
    }
    redisReply *r = admitReplyOf(rStr("17"), NADMIT, codes, values);
    admitReply out;
    admitResult res[NADMIT];
    char err[256] = "";
    memset(res, 0, sizeof(res));
    assert_int_equal(admitParse(r, NADMIT, &out, res, err, sizeof(err)), 0);
    assert_int_equal(out.ceiling, 64);
    assert_string_equal(out.reason, "job-b waits: tokens");
    assert_int_equal(out.solo, SOLO_WAITS);
    assert_int_equal(out.prices_ver, 17);
    for (int i = 0; i < NADMIT; i++) {
        assert_int_equal(res[i].verdict, allAdmit[i]);
        assert_int_equal(res[i].value, 1000 + i);
        assert_string_not_equal(admitName(res[i].verdict), "UNKNOWN");
    }
    rFree(r);
}

/* Lua's HGET gives prices_ver as a string; a number works too. */
static void test_admit_parse_prices_ver(void **state) {
    (void)state;
    redisReply *code = rInt(ADMIT_GO), *value = rInt(1);
    redisReply *r = admitReplyOf(rInt(99), 1, &code, &value);
    admitReply out;
    admitResult res[1];
    char err[256];
    assert_int_equal(admitParse(r, 1, &out, res, err, sizeof(err)), 0);
    assert_int_equal(out.prices_ver, 99);
    assert_int_equal(res[0].verdict, ADMIT_GO);
    assert_int_equal(res[0].value, 1);
    rFree(r);
    r = admitReplyOf(rStr("1234567890123"), 0, NULL, NULL);
    assert_int_equal(admitParse(r, 0, &out, res, err, sizeof(err)), 0);
    assert_int_equal(out.prices_ver, 1234567890123LL);
    rFree(r);
}

static void test_admit_parse_count(void **state) {
    (void)state;
    redisReply *codes[2] = {rInt(ADMIT_GO), rInt(ADMIT_DUP)};
    redisReply *values[2] = {rInt(1), rInt(0)};
    redisReply *r = admitReplyOf(rStr("1"), 2, codes, values);
    admitReply out;
    admitResult res[3];
    char err[256];
    /* Asked for 1 or 3 jobs, the reply has 2. */
    err[0] = '\0';
    assert_int_equal(admitParse(r, 1, &out, res, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "admit"));
    assert_non_null(strstr(err, "6"));            /* the size it expected */
    err[0] = '\0';
    assert_int_equal(admitParse(r, 3, &out, res, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "10"));
    rFree(r);

    err[0] = '\0';
    assert_int_equal(admitParse(NULL, 0, &out, res, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    r = rErr("NOSCRIPT No matching script");
    err[0] = '\0';
    assert_int_equal(admitParse(r, 0, &out, res, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "NOSCRIPT No matching script"));
    rFree(r);
    r = rInt(4);
    err[0] = '\0';
    assert_int_equal(admitParse(r, 0, &out, res, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    rFree(r);
}

static void test_admit_parse_unknown_verdict(void **state) {
    (void)state;
    /* 14: one past the last verdict (BATCHED, 13). */
    static const long long bad[] = {42, 0, -1, 14};
    assert_int_equal(ADMIT_BATCHED, 13);
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        redisReply *codes[2] = {rInt(ADMIT_GO), rInt(bad[k])};
        redisReply *values[2] = {rInt(1), rInt(5)};
        redisReply *r = admitReplyOf(rStr("1"), 2, codes, values);
        admitReply out;
        admitResult res[2];
        char err[256] = "", want[32];
        assert_int_equal(admitParse(r, 2, &out, res, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "verdict %lld", bad[k]);
        if (!strstr(err, want)) fail_msg("err \"%s\" does not name %lld", err, bad[k]);
        rFree(r);
    }
}

static void test_admit_parse_wrong_types(void **state) {
    (void)state;
    admitReply out;
    admitResult res[1];
    char err[256];

    /* Verdict as a string. */
    redisReply *code = rStr("1"), *value = rInt(1);
    redisReply *r = admitReplyOf(rStr("1"), 1, &code, &value);
    err[0] = '\0';
    assert_int_equal(admitParse(r, 1, &out, res, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    rFree(r);

    /* Value not an integer. */
    code = rInt(ADMIT_WAIT), value = rStr("100");
    r = admitReplyOf(rStr("1"), 1, &code, &value);
    err[0] = '\0';
    assert_int_equal(admitParse(r, 1, &out, res, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    rFree(r);

    /* Ceiling, solo not integers. */
    r = admitReplyOf(rStr("1"), 0, NULL, NULL);
    rFree(r->element[AR_CEILING]);
    r->element[AR_CEILING] = rStr("64");
    err[0] = '\0';
    assert_int_equal(admitParse(r, 0, &out, res, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    rFree(r);
    r = admitReplyOf(rStr("1"), 0, NULL, NULL);
    rFree(r->element[AR_SOLO]);
    r->element[AR_SOLO] = rNil();
    assert_int_equal(admitParse(r, 0, &out, res, err, sizeof(err)), -1);
    rFree(r);
}

/* ---- Settle records ----------------------------------------------------- */

static void test_rec_start(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0x7a, sizeof(r));
    r.dead = (buf){0};
    recStart(&r, OP_FAILED);
    assert_int_equal(r.op, OP_FAILED);
    assert_int_equal(r.nf, 0);
    assert_int_equal(r.has_obs, 0);
    assert_string_equal(r.att[ATT_SENT], "0");
    for (int k = 0; k < ATT_COUNT; k++)
        if (k != ATT_SENT) assert_string_equal(r.att[k], "");
}

static void test_rec_ok_priced(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("essay-17", "claude-sonnet-4-5", "{\"k\":1}");
    outcome o = okOutcome();
    const char *body = "{\"content\":[]}";
    long long cost = recOk(&r, &j, body, strlen(body), &o, &ctx);
    /* $3 in, $15 out, $3.75 cache write (no breakdown: 5 m), $0.30 read,
     * per MTok: 3000 + 7500 + 750 + 30 micro-USD. */
    assert_int_equal(cost, 11280);
    assert_int_equal(r.op, OP_RESULT);
    assertField(&r, "id", "essay-17");
    assertField(&r, "status", "ok");
    assertField(&r, "response", body);
    assertField(&r, "attempts", "2");
    assertField(&r, "latency_ms", "345");
    assertField(&r, "model", "claude-sonnet-4-5");
    assertField(&r, "worker", "w-1");
    assertField(&r, "meta", "{\"k\":1}");
    assertField(&r, "input_tokens", "1000");
    assertField(&r, "output_tokens", "500");
    assertField(&r, "cache_creation_input_tokens", "200");
    assertField(&r, "cache_read_input_tokens", "100");
    assertField(&r, "cost_usd", "0.011280");
    assertNoField(&r, "error_type");
    assertNoField(&r, "error_message");
    assertStatusEarly(&r, "ok");
    assert_int_equal(r.nf, 2 * 13);
    /* The response is the caller's bytes, not a copy. */
    size_t len;
    assert_ptr_equal(fieldOf(&r, "response", &len), body);
    recFree(&r);
}

static void test_rec_ok_unpriced(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("", "no-such-model-x", NULL);
    outcome o = okOutcome();
    /* The body may hold NULs: its length counts, not strlen. */
    long long cost = recOk(&r, &j, "ab\0cd", 5, &o, &ctx);
    assert_int_equal(cost, -1);
    assertNoField(&r, "cost_usd");
    assertNoField(&r, "id");           /* no id read from the job */
    assertNoField(&r, "meta");
    assertField(&r, "model", "no-such-model-x");
    size_t len = 0;
    const char *v = fieldOf(&r, "response", &len);
    assert_non_null(v);
    assert_int_equal(len, 5);
    assert_memory_equal(v, "ab\0cd", 5);
    assertStatusEarly(&r, "ok");
    recFree(&r);

    /* No model at all: no model field, no price. */
    memset(&r, 0, sizeof(r));
    j = mkJob("x", "", NULL);
    assert_int_equal(recOk(&r, &j, "{}", 2, &o, &ctx), -1);
    assertNoField(&r, "model");
    assertNoField(&r, "cost_usd");
    recFree(&r);
}

static void test_rec_error(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("e-1", "claude-haiku-4-5", "[1,2]");
    recError(&r, &j, "overloaded_error", "Overloaded", 529, &ctx);
    assert_int_equal(r.op, OP_RESULT);
    assertField(&r, "id", "e-1");
    assertField(&r, "status", "error");
    assertField(&r, "error_type", "overloaded_error");
    assertField(&r, "error_message", "Overloaded");
    assertField(&r, "http_status", "529");
    assertField(&r, "attempts", "2");
    assertField(&r, "latency_ms", "345");
    assertField(&r, "model", "claude-haiku-4-5");
    assertField(&r, "worker", "w-1");
    assertField(&r, "meta", "[1,2]");
    assertNoField(&r, "response");
    assertNoField(&r, "cost_usd");
    assertNoField(&r, "input_tokens");
    assertStatusEarly(&r, "error");
    recFree(&r);

    /* status 0 (transport error): no http_status; the strings are copied. */
    memset(&r, 0, sizeof(r));
    char type[32] = "connection_error", msg[64] = "couldn't connect";
    recError(&r, &j, type, msg, 0, &ctx);
    memset(type, 'X', sizeof(type) - 1);
    memset(msg, 'Y', sizeof(msg) - 1);
    assertNoField(&r, "http_status");
    assertField(&r, "error_type", "connection_error");
    assertField(&r, "error_message", "couldn't connect");
    recFree(&r);
}

/* Dead letter text parsed as JSON: value of key as a string (or NULL when
 * null), into out. */
static int deadStr(const jsonDoc *d, const char *key, char *out, size_t outlen) {
    int t = jsonGet(d, 0, key);
    if (t < 0) return -1;
    if (d->tok[t].type == JSMN_PRIMITIVE && jsonRawLen(d, t) == 4 &&
        memcmp(jsonRaw(d, t), "null", 4) == 0)
        return -2;
    return jsonStr(d, t, out, outlen);
}

static void parseDead(const settleRec *r, jsonDoc *d) {
    char err[128];
    assert_non_null(r->dead.p);
    if (jsonParse(d, r->dead.p, r->dead.len, 0, JSON_MAX_DEPTH, err, sizeof(err)) != 0)
        fail_msg("dead letter is not JSON (%s): %s", err, r->dead.p);
    assert_int_equal(d->tok[0].type, JSMN_OBJECT);
    /* The whole letter is one value. */
    assert_int_equal(jsonSkip(d, 0), d->ntok);
}

static void test_rec_dead_text(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("d-\"1\"", "claude-sonnet-4-5", NULL);
    /* Quotes, a backslash, a raw newline and tab, UTF-8: all kept exactly. */
    const char raw[] = "{\"id\":\"d-\\\"1\\\"\",\"request\":\"x\ny\tz\",\"n\":\"\xc3\xa9\"}";
    recDead(&r, &j, raw, strlen(raw), "invalid_job", "request.max_tokens missing",
            &ctx, 1700000000123LL);
    assert_int_equal(r.op, OP_DEAD);
    /* The result side: an error result like recError's. */
    assertField(&r, "status", "error");
    assertField(&r, "error_type", "invalid_job");
    assertField(&r, "error_message", "request.max_tokens missing");
    assertField(&r, "id", "d-\"1\"");
    assertStatusEarly(&r, "error");

    jsonDoc d;
    parseDead(&r, &d);
    char s[512];
    long long ts;
    assert_int_equal(deadStr(&d, "id", s, sizeof(s)), 5);
    assert_string_equal(s, "d-\"1\"");
    assert_true(deadStr(&d, "reason", s, sizeof(s)) >= 0);
    assert_string_equal(s, "request.max_tokens missing");
    assert_true(deadStr(&d, "worker", s, sizeof(s)) >= 0);
    assert_string_equal(s, "w-1");
    assert_int_equal(jsonInt(&d, jsonGet(&d, 0, "ts_ms"), &ts), 0);
    assert_int_equal(ts, 1700000000123LL);
    assert_int_equal(deadStr(&d, "job", s, sizeof(s)), (int)strlen(raw));
    assert_string_equal(s, raw);
    assert_int_equal(jsonGet(&d, 0, "job_base64"), -1);
    jsonFree(&d);

    /* Settled again as something else, then dead again: the letter is
     * rebuilt, not appended to. */
    recError(&r, &j, "x", "y", 0, &ctx);
    recDead(&r, &j, "{}", 2, "invalid_job", "again", &ctx, 5);
    parseDead(&r, &d);
    assert_true(deadStr(&d, "reason", s, sizeof(s)) >= 0);
    assert_string_equal(s, "again");
    assert_true(deadStr(&d, "job", s, sizeof(s)) >= 0);
    assert_string_equal(s, "{}");
    jsonFree(&d);
    recFree(&r);
}

static void test_rec_dead_no_id(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("", "", NULL);
    recDead(&r, &j, "not json", 8, "invalid_job", "job is not valid JSON", &ctx, 0);
    jsonDoc d;
    parseDead(&r, &d);
    char s[64];
    assert_int_equal(deadStr(&d, "id", s, sizeof(s)), -2);     /* null */
    assert_true(deadStr(&d, "job", s, sizeof(s)) >= 0);
    assert_string_equal(s, "not json");
    jsonFree(&d);
    assertNoField(&r, "id");
    recFree(&r);
}

static void test_rec_dead_binary(void **state) {
    (void)state;
    static const struct {
        const char *raw;
        size_t len;
    } cases[] = {
        {"\xff\xfe\x00\x01", 4},                /* not UTF-8, with a NUL */
        {"{\"id\":\"a\xc3\"}", 11},             /* truncated sequence */
        {"ok\0", 3},                            /* valid bytes but a NUL */
        {"\xed\xa0\x80", 3},                    /* a surrogate */
        {"\xc0\xaf", 2},                        /* overlong */
        {"\x80", 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        settleRec r;
        memset(&r, 0, sizeof(r));
        job j = mkJob("bin-1", "", NULL);
        recDead(&r, &j, cases[k].raw, cases[k].len, "invalid_job", "job is not valid UTF-8",
                &ctx, 42);
        jsonDoc d;
        parseDead(&r, &d);
        assert_int_equal(jsonGet(&d, 0, "job"), -1);
        int t = jsonGet(&d, 0, "job_base64");
        if (t < 0) fail_msg("case %zu: no job_base64 in %s", k, r.dead.p);
        assert_int_equal(d.tok[t].type, JSMN_STRING);
        unsigned char back[64];
        long n = b64decode(jsonRaw(&d, t), (size_t)jsonRawLen(&d, t), back, sizeof(back));
        assert_int_equal(n, (long)cases[k].len);
        assert_memory_equal(back, cases[k].raw, cases[k].len);
        char s[64];
        assert_true(deadStr(&d, "id", s, sizeof(s)) >= 0);
        assert_string_equal(s, "bin-1");
        /* The letter itself is valid UTF-8 text. */
        assert_int_equal(jsonUtf8Invalid(r.dead.p, r.dead.len), -1);
        jsonFree(&d);
        recFree(&r);
    }
}

static rlHeaders fullHeaders(void) {
    rlHeaders h;
    rlInit(&h);
    h.requests = (rlBucket){50, 49, 111};
    h.tokens = (rlBucket){5000, 4000, 123};
    h.input = (rlBucket){1000, 900, 456};
    h.output = (rlBucket){200, 150, 789};
    return h;
}

static void test_rec_attempt_ok(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("a-1", "claude-sonnet-4-5", NULL);
    outcome o = okOutcome();
    long long cost = recOk(&r, &j, "{}", 2, &o, &ctx);
    int nf = r.nf;
    rlHeaders h = fullHeaders();
    recAttempt(&r, &o, &h, cost, &ctx, 123456);
    assert_int_equal(r.nf, nf);                  /* fields untouched */
    assert_string_equal(r.att[ATT_SENT], "1");
    assert_string_equal(r.att[ATT_HTTP_STATUS], "200");
    assert_string_equal(r.att[ATT_COST_MICRO], "11280");
    assert_string_equal(r.att[ATT_LATENCY_MS], "345");
    assert_string_equal(r.att[ATT_INPUT_TOKENS], "1000");
    assert_string_equal(r.att[ATT_OUTPUT_TOKENS], "500");
    assert_string_equal(r.att[ATT_CACHE_WRITE_TOKENS], "200");
    assert_string_equal(r.att[ATT_CACHE_READ_TOKENS], "100");
    assert_string_equal(r.att[ATT_RETRY_AFTER_MS], "-1");
    assert_string_equal(r.att[ATT_SPEND_LIMIT], "0");
    assert_string_equal(r.att[ATT_RAND], "0.123456");
    assert_string_equal(r.att[ATT_ATTEMPT], "2");
    assert_int_equal(r.has_obs, 1);
    assert_string_equal(r.obs[OBS_R_LIM], "50");
    assert_string_equal(r.obs[OBS_R_REM], "49");
    /* The input bucket wins over the combined tokens one when present. */
    assert_string_equal(r.obs[OBS_I_LIM], "1000");
    assert_string_equal(r.obs[OBS_I_REM], "900");
    assert_string_equal(r.obs[OBS_O_LIM], "200");
    assert_string_equal(r.obs[OBS_O_REM], "150");
    assert_string_equal(r.obs[OBS_RESET_MS], "123");
    recFree(&r);
}

/* A reading whose full replenishment is hours away is not a per-minute
 * bucket (an org cap reported in tokens-*): not learned; one a minute
 * away (or a few, a worker's clock off) is. */
static void test_rec_attempt_far_reset(void **state) {
    (void)state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long wall = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("a-3", "claude-sonnet-4-5", NULL);
    outcome o = errOutcome(429);
    recCtx c1 = {"w-9", 1, 0, NULL};
    rlHeaders h;
    rlInit(&h);
    h.tokens = (rlBucket){1500, 0, wall + 3600000};
    h.requests = (rlBucket){50, 0, wall + 3600000};
    h.output = (rlBucket){200, 150, wall + 50000};
    recError(&r, &j, "rate_limit_error", "cap", 429, &c1);
    recAttempt(&r, &o, &h, -1, &c1, 0);
    assert_string_equal(r.obs[OBS_I_LIM], "");
    assert_string_equal(r.obs[OBS_I_REM], "");
    assert_string_equal(r.obs[OBS_R_LIM], "");
    assert_string_equal(r.obs[OBS_O_LIM], "200");
    assert_string_equal(r.obs[OBS_O_REM], "150");
    /* Five minutes away (a clock off by some): still a bucket. */
    h.tokens = (rlBucket){1500, 0, wall + 300000};
    recAttempt(&r, &o, &h, -1, &c1, 0);
    assert_string_equal(r.obs[OBS_I_LIM], "1500");
    assert_string_equal(r.obs[OBS_I_REM], "0");
    recFree(&r);
}

static void test_rec_attempt_error(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("a-2", "claude-sonnet-4-5", NULL);
    outcome o = errOutcome(429);
    rlHeaders h;
    rlInit(&h);
    recCtx c1 = {"w-9", 1, 0, NULL};
    recError(&r, &j, "rate_limit_error", "slow down", 429, &c1);
    r.op = OP_FAILED;
    recAttempt(&r, &o, &h, -1, &c1, 0);
    assert_int_equal(r.op, OP_FAILED);
    assert_string_equal(r.att[ATT_SENT], "1");
    assert_string_equal(r.att[ATT_HTTP_STATUS], "429");
    assert_string_equal(r.att[ATT_COST_MICRO], "-1");
    assert_string_equal(r.att[ATT_LATENCY_MS], "0");
    /* Not ok: token counts absent, whatever the usage says. */
    assert_string_equal(r.att[ATT_INPUT_TOKENS], "");
    assert_string_equal(r.att[ATT_OUTPUT_TOKENS], "");
    assert_string_equal(r.att[ATT_CACHE_WRITE_TOKENS], "");
    assert_string_equal(r.att[ATT_CACHE_READ_TOKENS], "");
    assert_string_equal(r.att[ATT_RETRY_AFTER_MS], "2500");
    assert_string_equal(r.att[ATT_SPEND_LIMIT], "1");
    assert_string_equal(r.att[ATT_RAND], "0.000000");
    assert_string_equal(r.att[ATT_ATTEMPT], "1");    /* settle.lua compares with '1' */
    /* No header at all: no observation. */
    assert_int_equal(r.has_obs, 0);
    for (int k = OBS_INDEX + 1; k < OBS_COUNT; k++)
        if (r.obs[k][0]) fail_msg("obs %d is \"%s\" with no headers", k, r.obs[k]);

    /* A transport error: status 0. */
    o = errOutcome(0);
    recAttempt(&r, &o, &h, 0, &c1, 1);
    assert_string_equal(r.att[ATT_HTTP_STATUS], "0");
    assert_string_equal(r.att[ATT_COST_MICRO], "0");
    recFree(&r);
}

static void test_rec_attempt_rand(void **state) {
    (void)state;
    static const struct {
        long in;
        const char *want;
    } cases[] = {
        {0, "0.000000"},      {42, "0.000042"}, {999999, "0.999999"},
        {100000, "0.100000"}, {7, "0.000007"},  {500000, "0.500000"},
    };
    outcome o = okOutcome();
    rlHeaders h;
    rlInit(&h);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        settleRec r;
        memset(&r, 0, sizeof(r));
        recStart(&r, OP_RESULT);
        recAttempt(&r, &o, &h, 0, &ctx, cases[k].in);
        assert_string_equal(r.att[ATT_RAND], cases[k].want);
    }
}

static void test_rec_attempt_obs(void **state) {
    (void)state;
    outcome o = errOutcome(429);
    settleRec r;
    rlHeaders h;

    /* No input bucket: the combined tokens bucket stands in for it. */
    memset(&r, 0, sizeof(r));
    recStart(&r, OP_FAILED);
    h = fullHeaders();
    h.input = (rlBucket){-1, -1, -1};
    recAttempt(&r, &o, &h, 0, &ctx, 1);
    assert_int_equal(r.has_obs, 1);
    assert_string_equal(r.obs[OBS_I_LIM], "5000");
    assert_string_equal(r.obs[OBS_I_REM], "4000");
    assert_string_equal(r.obs[OBS_RESET_MS], "123");

    /* Only the input bucket: its reset is the one. */
    recStart(&r, OP_FAILED);
    rlInit(&h);
    h.input = (rlBucket){1000, 10, 456};
    recAttempt(&r, &o, &h, 0, &ctx, 1);
    assert_int_equal(r.has_obs, 1);
    assert_string_equal(r.obs[OBS_I_LIM], "1000");
    assert_string_equal(r.obs[OBS_I_REM], "10");
    assert_string_equal(r.obs[OBS_RESET_MS], "456");
    assert_string_equal(r.obs[OBS_R_LIM], "");
    assert_string_equal(r.obs[OBS_R_REM], "");
    assert_string_equal(r.obs[OBS_O_LIM], "");
    assert_string_equal(r.obs[OBS_O_REM], "");

    /* Only the requests pair. */
    recStart(&r, OP_FAILED);
    assert_int_equal(r.has_obs, 0);
    rlInit(&h);
    h.requests = (rlBucket){50, 0, -1};
    recAttempt(&r, &o, &h, 0, &ctx, 1);
    assert_int_equal(r.has_obs, 1);
    assert_string_equal(r.obs[OBS_R_LIM], "50");
    assert_string_equal(r.obs[OBS_R_REM], "0");
    assert_string_equal(r.obs[OBS_I_LIM], "");
    assert_string_equal(r.obs[OBS_RESET_MS], "");

    /* Only the output pair. */
    recStart(&r, OP_FAILED);
    rlInit(&h);
    h.output = (rlBucket){200, 3, -1};
    recAttempt(&r, &o, &h, 0, &ctx, 1);
    assert_int_equal(r.has_obs, 1);
    assert_string_equal(r.obs[OBS_O_LIM], "200");
    assert_string_equal(r.obs[OBS_O_REM], "3");

    /* Only a reset time. */
    recStart(&r, OP_FAILED);
    rlInit(&h);
    h.tokens.reset_ms = 1700000000000LL;
    recAttempt(&r, &o, &h, 0, &ctx, 1);
    assert_int_equal(r.has_obs, 1);
    assert_string_equal(r.obs[OBS_RESET_MS], "1700000000000");
    assert_string_equal(r.obs[OBS_R_LIM], "");
    assert_string_equal(r.obs[OBS_I_LIM], "");

    /* Headers that are not rate limits (retry-after, request-id): none. */
    recStart(&r, OP_FAILED);
    rlInit(&h);
    h.retry_after_ms = 1000;
    h.should_retry = 1;
    snprintf(h.request_id, sizeof(h.request_id), "req_1");
    recAttempt(&r, &o, &h, 0, &ctx, 1);
    assert_int_equal(r.has_obs, 0);
}

static void test_rec_requeue_unknown(void **state) {
    (void)state;
    settleRec r;
    memset(&r, 0, sizeof(r));
    job j = mkJob("q-1", "claude-sonnet-4-5", NULL);
    outcome o = okOutcome();
    rlHeaders h = fullHeaders();
    /* A record that had fields and an observation is reset. */
    recOk(&r, &j, "{}", 2, &o, &ctx);
    recAttempt(&r, &o, &h, 5, &ctx, 9);
    recRequeueUnknown(&r);
    assert_int_equal(r.op, OP_REQUEUE);
    assert_int_equal(r.nf, 0);
    assert_int_equal(r.has_obs, 0);
    assert_string_equal(r.att[ATT_SENT], "1");
    assert_string_equal(r.att[ATT_HTTP_STATUS], "0");
    assert_string_equal(r.att[ATT_COST_MICRO], "");
    assert_string_equal(r.att[ATT_INPUT_TOKENS], "");
    recFree(&r);
}

/* ---- settle.lua --------------------------------------------------------- */

/* NOBS as the vector says it. */
static int nobsOf(const lfArgs *a) {
    char *end;
    const char *s = arg(a, SA_NOBS);
    long n = strtol(s, &end, 10);
    if (*end || n < 0) fail_msg("SA_NOBS is \"%s\"", s);
    return (int)n;
}

/* Observation group g (0-based) of a: its record index (1-based, as sent)
 * and headers equal those of record `from` (1-based index idx). */
static void assertObsGroup(const lfArgs *a, int g, int idx, const settleRec *from) {
    int at = SA_COUNT + g * OBS_COUNT;
    char is[16];
    snprintf(is, sizeof(is), "%d", idx);
    assertArg(a, at + OBS_INDEX, is);
    for (int k = OBS_INDEX + 1; k < OBS_COUNT; k++) assertArg(a, at + k, from->obs[k]);
}

/* The group (0-based) whose OBS_INDEX is idx, or -1. */
static int groupOf(const lfArgs *a, int idx) {
    char is[16];
    snprintf(is, sizeof(is), "%d", idx);
    int found = -1, n = nobsOf(a);
    for (int g = 0; g < n; g++) {
        if (!strcmp(arg(a, SA_COUNT + g * OBS_COUNT + OBS_INDEX), is)) {
            if (found >= 0) fail_msg("record %d observed twice", idx);
            found = g;
        }
    }
    return found;
}

/* The records at REC0 of a as settle.lua walks them (REC0 = OBS0 + NOBS *
 * OBS_N): each record's first argument (0-based) in starts[], returns how
 * many. Fails unless the walk ends exactly at the last argument. */
static int walkRecords(const lfArgs *a, int *starts, int max) {
    int i = SA_COUNT + nobsOf(a) * OBS_COUNT, n = 0;
    while (i < a->n) {
        assert_true(n < max);
        starts[n++] = i;
        int nfAt = i + REC_COUNT + ATT_COUNT;          /* Lua: i + REC_NF */
        assert_true(nfAt < a->n);
        char *end;
        const char *s = arg(a, nfAt);
        long nf = strtol(s, &end, 10);
        if (*end || nf < 0) fail_msg("NFIELDS at %d is \"%s\"", nfAt, s);
        i = nfAt + 1 + (int)nf;
    }
    assert_int_equal(i, a->n);
    return n;
}

static void assertRecArgs(const lfArgs *a, int at, const settleItem *it, char op) {
    const settleRec *r = it->rec;
    char opS[2] = {op, 0};
    assertArg(a, at + REC_OP, opS);
    assertArg(a, at + REC_LEASE, it->lease);
    assertArg(a, at + REC_ID, it->id);
    if (op == 'D') {
        assert_int_equal(a->l[at + REC_DEAD], r->dead.len);
        assert_memory_equal(a->v[at + REC_DEAD], r->dead.p, r->dead.len);
    } else {
        assert_int_equal(a->l[at + REC_DEAD], 0);
    }
    for (int k = 0; k < ATT_COUNT; k++) assertArg(a, at + REC_COUNT + k, r->att[k]);
    char nf[16];
    snprintf(nf, sizeof(nf), "%d", r->nf);
    assertArg(a, at + REC_COUNT + ATT_COUNT, nf);
    for (int f = 0; f < r->nf; f++) {
        int p = at + REC_COUNT + ATT_COUNT + 1 + f;
        assert_int_equal(a->l[p], r->fl[f]);
        assert_memory_equal(a->v[p], r->fv[f], r->fl[f]);
    }
}

/* Numbers settleArgs formats: SA's MAXLEN, CLAIM_N, LEASE_MS, NOBS, one
 * OBS_INDEX per observation and one NFIELDS per record. */
#define SETTLE_NUMS(nobs, n) (5 + (nobs) + (n))

static void test_settle_args_layout(void **state) {
    (void)state;
    settleRec rs[5];
    memset(rs, 0, sizeof(rs));
    outcome ok = okOutcome(), e429 = errOutcome(429);
    job ja = mkJob("A", "claude-sonnet-4-5", "{\"m\":true}");
    job jb = mkJob("B", "claude-sonnet-4-5", NULL);
    job jc = mkJob("C", "", NULL);
    job je = mkJob("E", "claude-sonnet-4-5", NULL);
    rlHeaders h1 = fullHeaders(), h2, none;
    rlInit(&h2);
    rlInit(&none);
    h2.requests = (rlBucket){60, 7, 1};
    h2.tokens = (rlBucket){8000, 6000, 999};

    /* 1: ok, observed (sent earlier). */
    long long cost = recOk(&rs[0], &ja, "{\"r\":1}", 7, &ok, &ctx);
    recAttempt(&rs[0], &ok, &h1, cost, &ctx, 11);
    /* 2: 429, retryable, observed (sent last of the model). */
    recError(&rs[1], &jb, "rate_limit_error", "429", 429, &ctx);
    rs[1].op = OP_FAILED;
    recAttempt(&rs[1], &e429, &h2, -1, &ctx, 22);
    /* 3: dead, never sent. */
    recDead(&rs[2], &jc, "{bad", 4, "invalid_job", "not JSON", &ctx, 77);
    /* 4: requeued, outcome unknown. */
    recRequeueUnknown(&rs[3]);
    /* 5: an answer without rate-limit headers (sent even later). */
    recError(&rs[4], &je, "api_error", "boom", 500, &ctx);
    rs[4].op = OP_FAILED;
    recAttempt(&rs[4], &e429, &none, -1, &ctx, 33);

    const char *S = "claude-sonnet-4-5";
    const settleItem items[5] = {
        {"p:1", "A", &rs[0], S, 100, NULL}, {"p:2", "B", &rs[1], S, 200, "w:9:1"},
        {"p:3", "C", &rs[2], "", 0, NULL},  {"p:4", "D", &rs[3], S, 300, NULL},
        {"p:5", "E", &rs[4], S, 400, NULL},
    };
    const settleHead head = {100000, 3, 30000, "w-1:9:", 0, "w-1"};
    int argc = settleArgc(items, 5);
    /* One observation group. */
    assert_int_equal(argc, SA_COUNT + OBS_COUNT + 5 * (REC_COUNT + ATT_COUNT + 1) +
                               rs[0].nf + rs[1].nf + rs[2].nf + rs[3].nf + rs[4].nf);
    lfArgs a;
    argsInit(&a, argc, SETTLE_NUMS(1, 5));
    settleArgs(&a, &head, items, 5);
    assert_int_equal(a.n, argc);

    assertArg(&a, SA_MAXLEN, "100000");
    assertArg(&a, SA_CLAIM_N, "3");
    assertArg(&a, SA_LEASE_MS, "30000");
    assertArg(&a, SA_PREFIX, "w-1:9:");
    assertArg(&a, SA_MAX_JOB, "0");
    assertArg(&a, SA_INTAKE, "w-1");
    assertArg(&a, SA_NOBS, "1");
    /* The model's latest request with headers is the second (1-based 2). */
    assertObsGroup(&a, 0, 2, &rs[1]);
    assertArg(&a, SA_COUNT + OBS_R_LIM, "60");
    assertArg(&a, SA_COUNT + OBS_I_LIM, "8000");
    assertArg(&a, SA_COUNT + OBS_RESET_MS, "999");
    assertArg(&a, SA_COUNT + OBS_O_LIM, "");

    int starts[8];
    assert_int_equal(walkRecords(&a, starts, 8), 5);
    assert_int_equal(starts[0], SA_COUNT + OBS_COUNT);
    static const char ops[5] = {'R', 'F', 'D', 'Q', 'F'};
    for (int i = 0; i < 5; i++) assertRecArgs(&a, starts[i], &items[i], ops[i]);
    assertArg(&a, starts[0] + REC_COUNT + ATT_SENT, "1");
    assertArg(&a, starts[0] + REC_COUNT + ATT_CACHE_WRITE_TOKENS, "200");
    assertArg(&a, starts[0] + REC_COUNT + ATT_CACHE_READ_TOKENS, "100");
    assertArg(&a, starts[2] + REC_COUNT + ATT_SENT, "0");
    assertArg(&a, starts[3] + REC_COUNT + ATT_SENT, "1");
    assertArg(&a, starts[3] + REC_COUNT + ATT_HTTP_STATUS, "0");
    assertArg(&a, starts[3] + REC_COUNT + ATT_COUNT, "0");
    argsFree(&a);

    for (int i = 0; i < 5; i++) recFree(&rs[i]);
}

/* The op bytes are proto.def's, whatever their order. */
static void test_settle_args_ops(void **state) {
    (void)state;
    static const struct {
        recOp op;
        char byte;
    } ops[] = {
#define X(N, v, doc) {OP_##N, v},
        LF_OPS(X)
#undef X
    };
    assert_int_equal(OP_RESULT, 'R');
    assert_int_equal(OP_DEAD, 'D');
    assert_int_equal(OP_FAILED, 'F');
    assert_int_equal(OP_REQUEUE, 'Q');
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        settleRec r;
        memset(&r, 0, sizeof(r));
        recStart(&r, ops[k].op);
        if (ops[k].op == OP_DEAD) {
            job j = mkJob("x", "", NULL);
            recDead(&r, &j, "{}", 2, "t", "m", &ctx, 1);
        }
        settleItem it = {"L", "x", &r, "m", 1, NULL};
        settleHead h = {10, 0, 0, NULL, 0, NULL};
        lfArgs a;
        argsInit(&a, settleArgc(&it, 1), SETTLE_NUMS(0, 1));
        settleArgs(&a, &h, &it, 1);
        assert_int_equal(a.n, settleArgc(&it, 1));
        assertArg(&a, SA_NOBS, "0");
        char want[2] = {ops[k].byte, 0};
        assertArg(&a, SA_COUNT + REC_OP, want);
        argsFree(&a);
        recFree(&r);
    }
}

static void test_settle_args_no_obs(void **state) {
    (void)state;
    settleRec rs[2];
    memset(rs, 0, sizeof(rs));
    job j = mkJob("n", "", NULL);
    outcome o = errOutcome(500);
    rlHeaders none;
    rlInit(&none);
    recError(&rs[0], &j, "api_error", "x", 500, &ctx);
    recAttempt(&rs[0], &o, &none, 0, &ctx, 1);
    recError(&rs[1], &j, "api_error", "y", 0, &ctx);
    /* Stale obs text in a record without has_obs must not be sent. */
    snprintf(rs[1].obs[OBS_R_LIM], sizeof(rs[1].obs[0]), "999");
    const settleItem items[2] = {{"l1", "n", &rs[0], "m", 1, NULL}, {"l2", "n", &rs[1], "m", 2, NULL}};
    const settleHead h = {5, 0, 0, NULL, 0, NULL};
    lfArgs a;
    assert_int_equal(settleArgc(items, 2),
                     SA_COUNT + 2 * (REC_COUNT + ATT_COUNT + 1) + rs[0].nf + rs[1].nf);
    argsInit(&a, settleArgc(items, 2), SETTLE_NUMS(0, 2));
    settleArgs(&a, &h, items, 2);
    assert_int_equal(a.n, settleArgc(items, 2));
    assertArg(&a, SA_PREFIX, "");                /* NULL prefix: empty */
    assertArg(&a, SA_CLAIM_N, "0");
    assertArg(&a, SA_NOBS, "0");
    int starts[4];
    assert_int_equal(walkRecords(&a, starts, 4), 2);
    assert_int_equal(starts[0], SA_COUNT);       /* records right after SA */
    assertRecArgs(&a, starts[1], &items[1], 'R');
    argsFree(&a);

    /* No records at all: the fixed part, NOBS 0. */
    argsInit(&a, settleArgc(NULL, 0), 5);
    assert_int_equal(settleArgc(NULL, 0), SA_COUNT);
    settleArgs(&a, &h, NULL, 0);
    assert_int_equal(a.n, SA_COUNT);
    assertArg(&a, SA_NOBS, "0");
    argsFree(&a);
    for (int i = 0; i < 2; i++) recFree(&rs[i]);
}

/* One model: the observation is that of its request sent last (t_sent),
 * wherever its record is in the batch, among those with headers. */
static void test_settle_args_obs_latest(void **state) {
    (void)state;
    settleRec rs[3];
    memset(rs, 0, sizeof(rs));
    outcome o = errOutcome(429);
    rlHeaders h[3];
    for (int i = 0; i < 3; i++) {
        h[i] = fullHeaders();
        h[i].requests.limit = 10 * (i + 1);
        recStart(&rs[i], OP_FAILED);
        recAttempt(&rs[i], &o, &h[i], 0, &ctx, 1);
        assert_int_equal(rs[i].has_obs, 1);
    }
    const char *M = "claude-sonnet-4-5";
    settleItem items[3] = {{"a", "a", &rs[0], M, 10, NULL}, {"b", "b", &rs[1], M, 20, NULL},
                           {"c", "c", &rs[2], M, 30, NULL}};
    const settleHead hd = {1, 0, 0, "", 0, NULL};
    lfArgs a;
    argsInit(&a, settleArgc(items, 3), SETTLE_NUMS(1, 3));
    settleArgs(&a, &hd, items, 3);
    assert_int_equal(a.n, settleArgc(items, 3));
    assertArg(&a, SA_NOBS, "1");
    assertObsGroup(&a, 0, 3, &rs[2]);
    assertArg(&a, SA_COUNT + OBS_R_LIM, "30");
    argsFree(&a);

    /* Sent in the reverse order of the batch: the first record is the
     * latest. */
    items[0].t_sent = 50;
    argsInit(&a, settleArgc(items, 3), SETTLE_NUMS(1, 3));
    settleArgs(&a, &hd, items, 3);
    assertArg(&a, SA_NOBS, "1");
    assertObsGroup(&a, 0, 1, &rs[0]);
    argsFree(&a);

    /* The latest has no headers: the latest of those that have. */
    items[0].t_sent = 10;
    recStart(&rs[2], OP_RESULT);
    argsInit(&a, settleArgc(items, 3), SETTLE_NUMS(1, 3));
    settleArgs(&a, &hd, items, 3);
    assertArg(&a, SA_NOBS, "1");
    assertObsGroup(&a, 0, 2, &rs[1]);
    assertArg(&a, SA_COUNT + OBS_R_LIM, "20");
    argsFree(&a);

    /* First only. */
    recStart(&rs[1], OP_RESULT);
    argsInit(&a, settleArgc(items, 3), SETTLE_NUMS(1, 3));
    settleArgs(&a, &hd, items, 3);
    assertArg(&a, SA_NOBS, "1");
    assertObsGroup(&a, 0, 1, &rs[0]);
    assertArg(&a, SA_COUNT + OBS_R_LIM, "10");
    argsFree(&a);
}

/* Several models: one observation per model that has headers, each the
 * latest of its model; records without headers are never chosen. */
static void test_settle_args_obs_per_model(void **state) {
    (void)state;
    settleRec rs[6];
    memset(rs, 0, sizeof(rs));
    outcome o = errOutcome(429);
    rlHeaders none;
    rlInit(&none);
    for (int i = 0; i < 6; i++) {
        rlHeaders h = fullHeaders();
        h.requests.limit = 10 * (i + 1);
        recStart(&rs[i], OP_FAILED);
        recAttempt(&rs[i], &o, (i == 2 || i == 5) ? &none : &h, 0, &ctx, 1);
    }
    assert_int_equal(rs[2].has_obs, 0);
    assert_int_equal(rs[5].has_obs, 0);
    const char *S = "claude-sonnet-4-5", *H = "claude-haiku-4-5", *O = "claude-opus-4-1";
    const settleItem items[6] = {
        {"l1", "a", &rs[0], S, 300, NULL},    /* sonnet, older */
        {"l2", "b", &rs[1], H, 100, NULL},    /* haiku: the latest with headers */
        {"l3", "c", &rs[2], S, 900, NULL},    /* sonnet, latest, no headers */
        {"l4", "d", &rs[3], S, 400, NULL},    /* sonnet: the latest with headers */
        {"l5", "e", &rs[4], H, 50, NULL},     /* haiku, older (later in the batch) */
        {"l6", "f", &rs[5], O, 700, NULL},    /* opus: no headers at all */
    };
    const settleHead hd = {1, 0, 0, "", 0, NULL};
    int argc = settleArgc(items, 6);
    int recs = 0;
    for (int i = 0; i < 6; i++) recs += REC_COUNT + ATT_COUNT + 1 + rs[i].nf;
    assert_int_equal(argc, SA_COUNT + 2 * OBS_COUNT + recs);
    lfArgs a;
    argsInit(&a, argc, SETTLE_NUMS(2, 6));
    settleArgs(&a, &hd, items, 6);
    assert_int_equal(a.n, argc);
    assertArg(&a, SA_NOBS, "2");
    int gs = groupOf(&a, 4), gh = groupOf(&a, 2);
    assert_true(gs >= 0 && gh >= 0 && gs != gh);
    assertObsGroup(&a, gs, 4, &rs[3]);
    assertObsGroup(&a, gh, 2, &rs[1]);
    assertArg(&a, SA_COUNT + gs * OBS_COUNT + OBS_R_LIM, "40");
    assertArg(&a, SA_COUNT + gh * OBS_COUNT + OBS_R_LIM, "20");
    for (int idx = 1; idx <= 6; idx++)
        if (idx != 4 && idx != 2) assert_int_equal(groupOf(&a, idx), -1);
    int starts[8];
    assert_int_equal(walkRecords(&a, starts, 8), 6);
    assert_int_equal(starts[0], SA_COUNT + 2 * OBS_COUNT);
    for (int i = 0; i < 6; i++) assertRecArgs(&a, starts[i], &items[i], 'F');
    argsFree(&a);
}

static settleVerdict allSettled[] = {
#define X(N, v, doc) SETTLED_##N,
    LF_SETTLED(X)
#undef X
};
#define NSETTLED ((int)(sizeof(allSettled) / sizeof(allSettled[0])))

static redisReply *settleReplyOf(const long long *v, int n, redisReply *claim) {
    redisReply *st = rArrN((size_t)n);
    for (int i = 0; i < n; i++) st->element[i] = rInt(v[i]);
    return rArr(2, st, claim);
}

static void test_settle_parse_good(void **state) {
    (void)state;
    long long v[NSETTLED];
    for (int i = 0; i < NSETTLED; i++) v[i] = allSettled[NSETTLED - 1 - i];
    redisReply *r = settleReplyOf(v, NSETTLED, rArrN(0));
    settleVerdict out[NSETTLED];
    const redisReply *claim = (const redisReply *)1;
    char err[256];
    assert_int_equal(settleParse(r, NSETTLED, out, &claim, err, sizeof(err)), 0);
    for (int i = 0; i < NSETTLED; i++) assert_int_equal(out[i], v[i]);
    assert_null(claim);                          /* empty claim: none */
    rFree(r);

    /* A claim sub-reply: handed back as it is, for claimParse. */
    redisReply *cr = claimReplyOf(5, rInt(0), rStr(""), rInt(2));
    long long one = SETTLED_DONE;
    r = settleReplyOf(&one, 1, cr);
    assert_int_equal(settleParse(r, 1, out, &claim, err, sizeof(err)), 0);
    assert_ptr_equal(claim, cr);
    claimReply c;
    assert_int_equal(claimParse(claim, &c), 0);
    assert_int_equal(c.n, 2);
    rFree(r);

    /* No records, no claim. */
    r = settleReplyOf(NULL, 0, rArrN(0));
    claim = (const redisReply *)1;
    assert_int_equal(settleParse(r, 0, out, &claim, err, sizeof(err)), 0);
    assert_null(claim);
    rFree(r);
}

static void test_settle_parse_bad(void **state) {
    (void)state;
    settleVerdict out[3];
    const redisReply *claim;
    char err[256];

    static const long long bad[] = {42, 0, -1, 5};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        long long v[2] = {SETTLED_DONE, bad[k]};
        redisReply *r = settleReplyOf(v, 2, rArrN(0));
        char want[32];
        err[0] = '\0';
        assert_int_equal(settleParse(r, 2, out, &claim, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "verdict %lld", bad[k]);
        if (!strstr(err, want)) fail_msg("err \"%s\" does not name %lld", err, bad[k]);
        rFree(r);
    }

    /* Wrong count of verdicts. */
    long long v[2] = {SETTLED_DONE, SETTLED_RETRY};
    redisReply *r = settleReplyOf(v, 2, rArrN(0));
    err[0] = '\0';
    assert_int_equal(settleParse(r, 3, out, &claim, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    err[0] = '\0';
    assert_int_equal(settleParse(r, 1, out, &claim, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    rFree(r);

    /* A verdict that is not an integer. */
    r = settleReplyOf(v, 2, rArrN(0));
    rFree(r->element[0]->element[1]);
    r->element[0]->element[1] = rStr("1");
    assert_int_equal(settleParse(r, 2, out, &claim, err, sizeof(err)), -1);
    rFree(r);

    /* Other shapes. */
    err[0] = '\0';
    assert_int_equal(settleParse(NULL, 0, out, &claim, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    r = rErr("ERR script failed");
    assert_int_equal(settleParse(r, 0, out, &claim, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ERR script failed"));
    rFree(r);
    r = rArr(1, rArrN(0));                         /* no claim element */
    assert_int_equal(settleParse(r, 0, out, &claim, err, sizeof(err)), -1);
    rFree(r);
    r = rArr(2, rInt(1), rArrN(0));                /* verdicts not an array */
    assert_int_equal(settleParse(r, 1, out, &claim, err, sizeof(err)), -1);
    rFree(r);
}

/* ---- status.lua --------------------------------------------------------- */

static void test_status_parse(void **state) {
    (void)state;
    const char *vals[STATUS_COUNT];
    redisReply *r = rArrN(STATUS_COUNT);
    for (int i = 0; i < STATUS_COUNT; i++) {
        char s[16];
        snprintf(s, sizeof(s), "v%d", i);
        r->element[i] = i == STATUS_paused ? rNil() : rStr(s);
    }
    /* No classes seen: the fixed fields only, 0 classes. */
    assert_int_equal(statusParse(r, vals), 0);
    assert_string_equal(vals[STATUS_now_ms], "v0");
    char want[16];
    snprintf(want, sizeof(want), "v%d", STATUS_prices_ver);
    assert_string_equal(vals[STATUS_prices_ver], want);
    snprintf(want, sizeof(want), "v%d", STATUS_parked);
    assert_string_equal(vals[STATUS_parked], want);
    assert_string_equal(vals[STATUS_paused], "");
    assert_string_equal(statusNames[STATUS_queued], "queued");
    assert_string_equal(statusNames[STATUS_prices_ver], "prices_ver");
    assert_string_equal(statusNames[STATUS_parked], "parked");
    assert_string_equal(statusNames[STATUS_classes], "classes");
    rFree(r);
    r = rArrN(STATUS_COUNT - 1);
    for (int i = 0; i < STATUS_COUNT - 1; i++) r->element[i] = rStr("");
    assert_int_equal(statusParse(r, vals), -1);
    rFree(r);
    assert_int_equal(statusParse(NULL, vals), -1);
    r = rErr("ERR x");
    assert_int_equal(statusParse(r, vals), -1);
    rFree(r);
}

/* The fixed fields, then CLASS_STATUS fields per class. */
static void test_status_classes(void **state) {
    (void)state;
    const char *vals[STATUS_COUNT];
    const char *cv[CSTATUS_COUNT];
    size_t n = STATUS_COUNT + 2 * CSTATUS_COUNT;
    redisReply *r = rArrN(n);
    for (int i = 0; i < STATUS_COUNT; i++) {
        char s[16];
        snprintf(s, sizeof(s), "v%d", i);
        r->element[i] = rStr(s);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < CSTATUS_COUNT; i++) {
            char s[16];
            snprintf(s, sizeof(s), "c%d.%d", k, i);
            r->element[STATUS_COUNT + k * CSTATUS_COUNT + i] =
                (k == 1 && i == CSTATUS_i_limit) ? rNil() : rStr(s);
        }
    assert_int_equal(statusParse(r, vals), 2);
    char want[16];
    snprintf(want, sizeof(want), "v%d", STATUS_classes);
    assert_string_equal(vals[STATUS_classes], want);
    statusClass(r, 0, cv);
    assert_string_equal(cv[CSTATUS_class], "c0.0");
    snprintf(want, sizeof(want), "c0.%d", CSTATUS_r429);
    assert_string_equal(cv[CSTATUS_r429], want);
    statusClass(r, 1, cv);
    assert_string_equal(cv[CSTATUS_class], "c1.0");
    snprintf(want, sizeof(want), "c1.%d", CSTATUS_input_calibration);
    assert_string_equal(cv[CSTATUS_input_calibration], want);
    snprintf(want, sizeof(want), "c1.%d", CSTATUS_r429);
    assert_string_equal(cv[CSTATUS_r429], want);
    assert_string_equal(cv[CSTATUS_i_limit], "");      /* nil: "" */
    assert_string_equal(classStatusNames[CSTATUS_class], "class");
    assert_string_equal(classStatusNames[CSTATUS_i_estimate], "i_estimate");
    assert_string_equal(classStatusNames[CSTATUS_output_quantile], "output_quantile");
    assert_string_equal(classStatusNames[CSTATUS_COUNT - 1], "r429");
    rFree(r);

    /* A partial class group: not a status reply. */
    r = rArrN(STATUS_COUNT + CSTATUS_COUNT + 1);
    for (size_t i = 0; i < r->elements; i++) r->element[i] = rStr("");
    assert_int_equal(statusParse(r, vals), -1);
    rFree(r);
    r = rArrN(STATUS_COUNT + CSTATUS_COUNT - 1);
    for (size_t i = 0; i < r->elements; i++) r->element[i] = rStr("");
    assert_int_equal(statusParse(r, vals), -1);
    rFree(r);
}

/* ---- What the Lua scripts assume of proto.def --------------------------
 * genproto derives every position from the same enums, so those cannot
 * disagree. These are the assumptions the scripts make by hand. */
static void test_lua_assumptions(void **state) {
    (void)state;
    /* lib/claim.lua builds {now, wait, reason} and {now, 0, ''} literally,
     * then sets out[CR.N] (and out[CR.NEXT_MS] when it claimed nothing):
     * the reply's order is fixed. */
    assert_int_equal(CR_NOW, 0);
    assert_int_equal(CR_WAIT_MS, 1);
    assert_int_equal(CR_REASON, 2);
    assert_int_equal(CR_N, 3);
    assert_int_equal(CR_NEXT_MS, 4);
    assert_int_equal(CR_COUNT, 5);
    /* admit.lua: local out = {ceiling, '', 0, pricesVer}, then appends
     * (verdict, value) pairs: AR_COUNT head elements in that order. */
    assert_int_equal(AR_CEILING, 0);
    assert_int_equal(AR_REASON, 1);
    assert_int_equal(AR_SOLO, 2);
    assert_int_equal(AR_PRICES_VER, 3);
    assert_int_equal(AR_COUNT, 4);
    /* admit.lua: J0 = AA.PRICES_VER + 1, the job groups follow the last
     * fixed argument. */
    assert_int_equal(AA_PRICES_VER, AA_COUNT - 1);
    /* settle.lua's observe(): ARGV[OBS.R_LIM + 2 * (i - 1)] and the next
     * one for BUCKETS = {'r', 'i', 'o'}: limit/remaining pairs in a row. */
    assert_int_equal(OBS_INDEX, 0);
    assert_int_equal(OBS_R_REM, OBS_R_LIM + 1);
    assert_int_equal(OBS_I_LIM, OBS_R_LIM + 2);
    assert_int_equal(OBS_I_REM, OBS_R_LIM + 3);
    assert_int_equal(OBS_O_LIM, OBS_R_LIM + 4);
    assert_int_equal(OBS_O_REM, OBS_R_LIM + 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args_values),
        cmocka_unit_test(test_args_points_at_caller),
        cmocka_unit_test(test_claim_args),
        cmocka_unit_test(test_claim_parse_wait),
        cmocka_unit_test(test_claim_parse_claimed),
        cmocka_unit_test(test_claim_parse_empty),
        cmocka_unit_test(test_claim_parse_malformed),
        cmocka_unit_test(test_admit_args),
        cmocka_unit_test(test_admit_parse_good),
        cmocka_unit_test(test_admit_parse_prices_ver),
        cmocka_unit_test(test_admit_parse_count),
        cmocka_unit_test(test_admit_parse_unknown_verdict),
        cmocka_unit_test(test_admit_parse_wrong_types),
        cmocka_unit_test(test_rec_start),
        cmocka_unit_test(test_rec_ok_priced),
        cmocka_unit_test(test_rec_ok_unpriced),
        cmocka_unit_test(test_rec_error),
        cmocka_unit_test(test_rec_dead_text),
        cmocka_unit_test(test_rec_dead_no_id),
        cmocka_unit_test(test_rec_dead_binary),
        cmocka_unit_test(test_rec_attempt_ok),
        cmocka_unit_test(test_rec_attempt_error),
        cmocka_unit_test(test_rec_attempt_far_reset),
        cmocka_unit_test(test_rec_attempt_rand),
        cmocka_unit_test(test_rec_attempt_obs),
        cmocka_unit_test(test_rec_requeue_unknown),
        cmocka_unit_test(test_settle_args_layout),
        cmocka_unit_test(test_settle_args_ops),
        cmocka_unit_test(test_settle_args_no_obs),
        cmocka_unit_test(test_settle_args_obs_latest),
        cmocka_unit_test(test_settle_args_obs_per_model),
        cmocka_unit_test(test_settle_parse_good),
        cmocka_unit_test(test_settle_parse_bad),
        cmocka_unit_test(test_status_parse),
        cmocka_unit_test(test_status_classes),
        cmocka_unit_test(test_lua_assumptions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
