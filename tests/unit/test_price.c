/* test_price.c — unit tests for common/api/price.c. All amounts are integer
 * micro-dollars (µ$): 1 USD = 1,000,000 µ$. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "price.h"

/* ---- Helpers ------------------------------------------------------------ */

static price lookup(const char *model) {
    price p;
    if (priceLookup(model, strlen(model), &p) != 0) fail_msg("no price for %s", model);
    return p;
}

static void assertPrice(const price *p, long long in, long long w5, long long w1h,
                        long long rd, long long out) {
    assert_int_equal(p->input, in);
    assert_int_equal(p->cache_write_5m, w5);
    assert_int_equal(p->cache_write_1h, w1h);
    assert_int_equal(p->cache_read, rd);
    assert_int_equal(p->output, out);
}

/* A usage with no cache breakdown. */
static usage plainUsage(long long in, long long out) {
    usage u = {in, out, 0, -1, -1, 0};
    return u;
}

/* Write text to a fresh temporary file; the caller unlinks path. */
static void writeTemp(char *path, size_t pathlen, const char *text) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, pathlen, "%s/test_price.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static int resetOverrides(void **state) {
    (void)state;
    priceResetOverrides();
    return 0;
}

/* ---- Table -------------------------------------------------------------- */

static void test_builtin_table(void **state) {
    (void)state;
    static const char *opusNew[] = {"claude-opus-4-5", "claude-opus-4-6", "claude-opus-4-7"};
    static const char *opusOld[] = {"claude-opus-4-1", "claude-opus-4-0", "claude-opus-4-20250514"};
    static const char *sonnet[] = {"claude-sonnet-4-5", "claude-sonnet-4-6",
                                   "claude-sonnet-4-0", "claude-sonnet-4-20250514"};
    static const char *haiku35[] = {"claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"};
    price p;
    for (size_t i = 0; i < 3; i++) {
        p = lookup(opusNew[i]);
        assertPrice(&p, 5000000, 6250000, 10000000, 500000, 25000000);
        p = lookup(opusOld[i]);
        assertPrice(&p, 15000000, 18750000, 30000000, 1500000, 75000000);
    }
    for (size_t i = 0; i < 4; i++) {
        p = lookup(sonnet[i]);
        assertPrice(&p, 3000000, 3750000, 6000000, 300000, 15000000);
    }
    p = lookup("claude-haiku-4-5");
    assertPrice(&p, 1000000, 1250000, 2000000, 100000, 5000000);
    for (size_t i = 0; i < 2; i++) {
        p = lookup(haiku35[i]);
        assertPrice(&p, 800000, 1000000, 1600000, 80000, 4000000);
    }
}

static void test_dated_alias(void **state) {
    (void)state;
    price p = lookup("claude-sonnet-4-5-20250929");
    assert_int_equal(p.input, 3000000);
    p = lookup("claude-haiku-4-5-20251001");
    assert_int_equal(p.output, 5000000);
    p = lookup("claude-opus-4-1-20250805");
    assert_int_equal(p.input, 15000000);
    p = lookup("claude-opus-4-5-20251101");
    assert_int_equal(p.input, 5000000);
    /* An exact dated entry wins over stripping ("claude-opus-4" is unknown). */
    p = lookup("claude-opus-4-20250514");
    assert_int_equal(p.input, 15000000);
}

static void test_unknown_model(void **state) {
    (void)state;
    static const char *unknown[] = {
        "", "gpt-4o", "claude-sonnet-9", "claude-opus-4", "claude-sonnet-4-5-2025092",
        "claude-sonnet-4-5-2025092x", "claude-sonnet-4-520250929", "-20250929",
        "claude-sonnet-4-5-20250929-20250929", "CLAUDE-SONNET-4-5", "claude-sonnet-4-5 ",
    };
    price p = {1, 2, 3, 4, 5};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        if (priceLookup(unknown[i], strlen(unknown[i]), &p) != -1)
            fail_msg("priced unknown model \"%s\"", unknown[i]);
    assert_int_equal(p.input, 1);   /* untouched */
    assert_int_equal(priceLookup(NULL, 0, &p), -1);
}

/* The model id is bounded by len, not by a NUL. */
static void test_lookup_length_bounded(void **state) {
    (void)state;
    const char *s = "claude-haiku-4-5XYZ";
    price p;
    assert_int_equal(priceLookup(s, 16, &p), 0);
    assert_int_equal(p.input, 1000000);
    assert_int_equal(priceLookup(s, 15, &p), -1);
    char *exact = malloc(26);
    assert_non_null(exact);
    memcpy(exact, "claude-sonnet-4-5-20250929", 26);      /* no NUL */
    assert_int_equal(priceLookup(exact, 26, &p), 0);
    assert_int_equal(p.input, 3000000);
    free(exact);
}

/* ---- Cost --------------------------------------------------------------- */

static void test_cost_basic(void **state) {
    (void)state;
    price s = lookup("claude-sonnet-4-5");
    usage u = plainUsage(1000000, 0);
    assert_int_equal(priceCost(&s, &u), 3000000);           /* $3 */
    u = plainUsage(0, 1000000);
    assert_int_equal(priceCost(&s, &u), 15000000);          /* $15 */
    u = plainUsage(1000, 500);
    assert_int_equal(priceCost(&s, &u), 3000 + 7500);
    u = plainUsage(0, 0);
    assert_int_equal(priceCost(&s, &u), 0);
}

/* One rounding, upwards, on the total: never under-counts, never rounds
 * each part separately. */
static void test_cost_rounds_up(void **state) {
    (void)state;
    price s = lookup("claude-sonnet-4-5");
    usage u = plainUsage(0, 0);
    u.cache_read_input_tokens = 1;                  /* 0.3 µ$ */
    assert_int_equal(priceCost(&s, &u), 1);
    u.cache_read_input_tokens = 3;                  /* 0.9 µ$ */
    assert_int_equal(priceCost(&s, &u), 1);
    u.cache_read_input_tokens = 4;                  /* 1.2 µ$ */
    assert_int_equal(priceCost(&s, &u), 2);
    u.cache_read_input_tokens = 10;                 /* exactly 3 µ$ */
    assert_int_equal(priceCost(&s, &u), 3);
    price h = lookup("claude-3-5-haiku-20241022");
    u = plainUsage(0, 0);
    u.cache_read_input_tokens = 12;                 /* 0.96 µ$ */
    assert_int_equal(priceCost(&h, &u), 1);
    u.cache_read_input_tokens = 13;                 /* 1.04 µ$ */
    assert_int_equal(priceCost(&h, &u), 2);
    /* 0.3 + 0.3 + 3 = 3.6 µ$: summed first, then rounded once to 4. */
    u = plainUsage(1, 0);
    u.cache_read_input_tokens = 2;
    assert_int_equal(priceCost(&s, &u), 4);
}

static void test_cost_cache_breakdown(void **state) {
    (void)state;
    price s = lookup("claude-sonnet-4-5");
    usage u = plainUsage(0, 0);

    /* No breakdown: every write is a 5-minute one ($3.75/MTok). */
    u.cache_creation_input_tokens = 1000;
    assert_int_equal(priceCost(&s, &u), 3750);

    /* 400 x 3.75 + 600 x 6. */
    u.cache_5m_tokens = 400;
    u.cache_1h_tokens = 600;
    assert_int_equal(priceCost(&s, &u), 1500 + 3600);

    /* All 1-hour. */
    u.cache_5m_tokens = 0;
    u.cache_1h_tokens = 1000;
    assert_int_equal(priceCost(&s, &u), 6000);

    /* Only one side reported: the other counts as zero. */
    u.cache_5m_tokens = -1;
    u.cache_1h_tokens = 1000;
    assert_int_equal(priceCost(&s, &u), 6000);

    /* Writes the breakdown does not explain are priced as 5-minute ones. */
    u.cache_5m_tokens = 0;
    u.cache_1h_tokens = 600;
    assert_int_equal(priceCost(&s, &u), 3600 + 1500);

    /* A breakdown larger than the total is priced as given. */
    u.cache_creation_input_tokens = 0;
    u.cache_5m_tokens = 400;
    u.cache_1h_tokens = 600;
    assert_int_equal(priceCost(&s, &u), 1500 + 3600);
}

static void test_cost_everything(void **state) {
    (void)state;
    price o = lookup("claude-opus-4-5");
    usage u = {1234, 567, 2000, 1500, 500, 10000};
    /* 1234x5 + 567x25 + 1500x6.25 + 500x10 + 10000x0.5 */
    assert_int_equal(priceCost(&o, &u), 6170 + 14175 + 9375 + 5000 + 5000);
    price old = lookup("claude-opus-4-1");
    assert_int_equal(priceCost(&old, &u), 3 * (6170 + 14175 + 9375 + 5000 + 5000));
}

static void test_cost_garbage_and_overflow(void **state) {
    (void)state;
    price s = lookup("claude-sonnet-4-5");
    usage u = {-5, -1, -7, -1, -1, -9};
    assert_int_equal(priceCost(&s, &u), 0);
    u = (usage){-5, -1, -7, -3, -4, -9};
    assert_int_equal(priceCost(&s, &u), 0);
    /* Products past 64 bits are exact; totals past LLONG_MAX saturate. */
    u = plainUsage(LLONG_MAX, 0);
    assert_int_equal(priceCost(&s, &u), LLONG_MAX);
    u = (usage){LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX};
    price big = {LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX, LLONG_MAX};
    assert_int_equal(priceCost(&big, &u), LLONG_MAX);
    /* 4e12 tokens x $3/MTok = $12M: over 2^63 as a product, fine as a cost. */
    u = plainUsage(4000000000000LL, 0);
    assert_int_equal(priceCost(&s, &u), 12000000000000LL);
}

static void test_reserve(void **state) {
    (void)state;
    price s = lookup("claude-sonnet-4-5");
    assert_int_equal(priceReserve(&s, 1000, 4096), 3000 + 61440);
    assert_int_equal(priceReserve(&s, 0, 0), 0);
    price h = lookup("claude-3-5-haiku-latest");
    assert_int_equal(priceReserve(&h, 1, 1), 5);                /* 0.8 + 4 = 4.8 */
    assert_int_equal(priceReserve(&s, -10, 1), 15);
    assert_int_equal(priceReserve(&s, LLONG_MAX, LLONG_MAX), LLONG_MAX);
    /* Input that may be a cache write is reserved at the write's price:
     * $3.75 (5 min) or $6 (1 h) per MTok for Sonnet, never less. */
    assert_int_equal(priceReserveCached(&s, 1000, 4096, 0), 3000 + 61440);
    assert_int_equal(priceReserveCached(&s, 1000, 4096, 1), 3750 + 61440);
    assert_int_equal(priceReserveCached(&s, 1000, 4096, 2), 6000 + 61440);
}

/* ---- USD strings -------------------------------------------------------- */

static void test_parse_usd(void **state) {
    (void)state;
    static const struct { const char *s; long long v; } good[] = {
        {"0", 0}, {"3", 3000000}, {"12.5", 12500000}, {"0.000001", 1},
        {"6.25", 6250000}, {"0.08", 80000}, {"007", 7000000}, {"1.000000", 1000000},
        {"9223372036854.775807", LLONG_MAX},
    };
    static const char *bad[] = {
        "", "-1", "+1", "1.", ".5", "1.1234567", "1e3", " 1", "1 ", "1,5", "abc",
        "0x10", "1..2", "9223372036854.775808", "9223372036855", "99999999999999999999",
        "1.2.3", "$3",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        long long v = -42;
        if (priceParseUsd(good[i].s, &v) != 0) fail_msg("refused \"%s\"", good[i].s);
        assert_int_equal(v, good[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long long v = -42;
        if (priceParseUsd(bad[i], &v) != -1) fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(v, -42);
    }
    long long v;
    assert_int_equal(priceParseUsd(NULL, &v), -1);
}

/* A price line past $1,000,000 per million tokens is refused: every cost
 * stays an exact integer in Lua (< 2^53 micro-USD). */
static void test_price_line_bound(void **state) {
    (void)state;
    char model[128], err[200];
    price p;
    assert_int_equal(priceParseLine("m 1000000 1 1 1 1", model, sizeof(model), &p, err,
                                    sizeof(err)), 0);
    assert_int_equal(p.input, PRICE_MAX_MICROS);
    assert_int_equal(priceParseLine("m 1 1 1 1 1000000.000001", model, sizeof(model), &p,
                                    err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad OUTPUT price"));
    /* The worst cost under both bounds is exact in Lua. */
    usage u = {0};
    u.input_tokens = u.output_tokens = u.cache_read_input_tokens = 100000000;
    price worst = {PRICE_MAX_MICROS, PRICE_MAX_MICROS, PRICE_MAX_MICROS, PRICE_MAX_MICROS,
                   PRICE_MAX_MICROS};
    long long c = priceCost(&worst, &u);
    assert_true(c > 0 && c < (1LL << 53));
}

static void test_format_usd(void **state) {
    (void)state;
    char out[32];
    assert_int_equal(priceFormatUsd(12345, out, sizeof(out)), 8);
    assert_string_equal(out, "0.012345");
    priceFormatUsd(0, out, sizeof(out));
    assert_string_equal(out, "0.000000");
    priceFormatUsd(3000000, out, sizeof(out));
    assert_string_equal(out, "3.000000");
    priceFormatUsd(1, out, sizeof(out));
    assert_string_equal(out, "0.000001");
    priceFormatUsd(-1, out, sizeof(out));
    assert_string_equal(out, "-0.000001");
    priceFormatUsd(-12500000, out, sizeof(out));
    assert_string_equal(out, "-12.500000");
    priceFormatUsd(LLONG_MAX, out, sizeof(out));
    assert_string_equal(out, "9223372036854.775807");
    priceFormatUsd(LLONG_MIN, out, sizeof(out));
    assert_string_equal(out, "-9223372036854.775808");
    char small[5];
    assert_int_equal(priceFormatUsd(12345, small, sizeof(small)), 4);
    assert_string_equal(small, "0.01");
    assert_int_equal(priceFormatUsd(12345, small, 0), 0);
}

static void test_usd_round_trip(void **state) {
    (void)state;
    static const long long values[] = {0, 1, 999999, 1000000, 1000001, 12345678901LL, LLONG_MAX};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char out[32];
        long long back = -1;
        priceFormatUsd(values[i], out, sizeof(out));
        assert_int_equal(priceParseUsd(out, &back), 0);
        assert_int_equal(back, values[i]);
    }
}

/* ---- Price files -------------------------------------------------------- */

static void test_load_file(void **state) {
    (void)state;
    char path[512], err[512];
    writeTemp(path, sizeof(path),
              "# model input write5m write1h read output\n"
              "\n"
              "   \t\n"
              "claude-opus-4-8 5 6.25 10 0.5 25\n"
              "claude-sonnet-4-5\t1 1.25 2 0.1 5   # cheaper now\n"
              "new-model 0.000001 0 0 0 0.000002\r\n"
              "claude-opus-4-8 6 7 8 9 10\n");         /* later line wins */
    assert_int_equal(priceLoadFile(path, err, sizeof(err)), 0);
    price p = lookup("claude-opus-4-8");
    assertPrice(&p, 6000000, 7000000, 8000000, 9000000, 10000000);
    p = lookup("claude-opus-4-8-20260101");                 /* alias of a loaded id */
    assert_int_equal(p.input, 6000000);
    p = lookup("claude-sonnet-4-5-20250929");               /* overrides a built-in */
    assertPrice(&p, 1000000, 1250000, 2000000, 100000, 5000000);
    p = lookup("new-model");
    assertPrice(&p, 1, 0, 0, 0, 2);
    usage u = plainUsage(1, 1);
    assert_int_equal(priceCost(&p, &u), 1);                 /* 3e-6 µ$ rounds up */

    /* A second file overrides the first. */
    char path2[512];
    writeTemp(path2, sizeof(path2), "claude-opus-4-8 1 1 1 1 1\n");
    assert_int_equal(priceLoadFile(path2, err, sizeof(err)), 0);
    p = lookup("claude-opus-4-8");
    assert_int_equal(p.input, 1000000);

    priceResetOverrides();
    assert_int_equal(priceLookup("claude-opus-4-8", 15, &p), -1);
    p = lookup("claude-sonnet-4-5");
    assert_int_equal(p.input, 3000000);
    unlink(path);
    unlink(path2);
}

static void test_load_empty_file(void **state) {
    (void)state;
    char path[512], err[256];
    writeTemp(path, sizeof(path), "");
    assert_int_equal(priceLoadFile(path, err, sizeof(err)), 0);
    unlink(path);
    writeTemp(path, sizeof(path), "# only comments\n\n");
    assert_int_equal(priceLoadFile(path, err, sizeof(err)), 0);
    unlink(path);
}

/* Each bad file: -1, err says "path:line:", and nothing from it applies. */
static void test_load_bad_lines(void **state) {
    (void)state;
    static const struct { const char *line; const char *needle; } bad[] = {
        {"x-model 1 2 3 4\n", "got 5"},
        {"x-model 1 2 3 4 5 6\n", "got more"},
        {"x-model\n", "got 1"},
        {"x-model 1 2 3 4 abc\n", "OUTPUT"},
        {"x-model -1 2 3 4 5\n", "INPUT"},
        {"x-model 1 2 3 4 1.1234567\n", "OUTPUT"},
        {"x-model 1 2 3 1e3 5\n", "CACHE_READ"},
        {"x-model 1 2 $3 4 5\n", "CACHE_WRITE_1H"},
        {"x-model 1 2,5 3 4 5\n", "CACHE_WRITE_5M"},
        {"bad\x01model 1 2 3 4 5\n", "model id"},
        {"x-model 1 2 3\0 4 5\n", "NUL"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[512], err[512], text[256], want[600];
        /* A good line first: it must not be applied either. */
        int n = snprintf(text, sizeof(text), "# prices\ngood-model 1 1 1 1 1\n");
        size_t blen = strlen(bad[i].line);
        if (strstr(bad[i].needle, "NUL")) blen = 19;      /* the line holds a NUL */
        memcpy(text + n, bad[i].line, blen);
        text[n + (int)blen] = '\0';

        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/test_price.XXXXXX", dir && *dir ? dir : "/tmp");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, (size_t)n + blen), (ssize_t)((size_t)n + blen));
        close(fd);

        err[0] = '\0';
        if (priceLoadFile(path, err, sizeof(err)) != -1)
            fail_msg("accepted bad line %zu", i);
        snprintf(want, sizeof(want), "%s:3: ", path);
        if (strncmp(err, want, strlen(want)) != 0 || strstr(err, bad[i].needle) == NULL)
            fail_msg("case %zu: message \"%s\" lacks \"%s\" or \"%s\"", i, err, want,
                     bad[i].needle);
        price p;
        assert_int_equal(priceLookup("good-model", 10, &p), -1);
        assert_int_equal(priceLookup("x-model", 7, &p), -1);
        unlink(path);
    }
}

/* Loading the same file again replaces its entries rather than piling them
 * up; the last load wins. */
static void test_reload(void **state) {
    (void)state;
    char path[512], path2[512], err[256];
    price p;
    writeTemp(path, sizeof(path), "m-a 1 1 1 1 1\nm-b 2 2 2 2 2\n");
    writeTemp(path2, sizeof(path2), "m-a 3 3 3 3 3\n");
    for (int i = 0; i < 100; i++) {
        assert_int_equal(priceLoadFile(path, err, sizeof(err)), 0);
        p = lookup("m-a");
        assert_int_equal(p.input, 1000000);
        assert_int_equal(priceLoadFile(path2, err, sizeof(err)), 0);
        p = lookup("m-a");
        assert_int_equal(p.input, 3000000);
    }
    p = lookup("m-b");
    assert_int_equal(p.input, 2000000);
    unlink(path);
    unlink(path2);
}

static void test_load_missing_file(void **state) {
    (void)state;
    char err[256] = "";
    assert_int_equal(priceLoadFile("nonexistent-dir/prices.txt", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nonexistent-dir/prices.txt"));
}

static void test_load_long_model(void **state) {
    (void)state;
    char text[400], path[512], err[512];
    memset(text, 'm', 200);
    strcpy(text + 200, " 1 1 1 1 1\n");
    writeTemp(path, sizeof(path), text);
    assert_int_equal(priceLoadFile(path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":1: "));
    unlink(path);
    /* 127 bytes is the longest id that fits. */
    memset(text, 'm', 127);
    strcpy(text + 127, " 1 1 1 1 1\n");
    writeTemp(path, sizeof(path), text);
    assert_int_equal(priceLoadFile(path, err, sizeof(err)), 0);
    price p;
    assert_int_equal(priceLookup(text, 127, &p), 0);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_table),
        cmocka_unit_test(test_dated_alias),
        cmocka_unit_test(test_unknown_model),
        cmocka_unit_test(test_lookup_length_bounded),
        cmocka_unit_test(test_cost_basic),
        cmocka_unit_test(test_cost_rounds_up),
        cmocka_unit_test(test_cost_cache_breakdown),
        cmocka_unit_test(test_cost_everything),
        cmocka_unit_test(test_cost_garbage_and_overflow),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_parse_usd),
        cmocka_unit_test(test_price_line_bound),
        cmocka_unit_test(test_format_usd),
        cmocka_unit_test(test_usd_round_trip),
        cmocka_unit_test_teardown(test_load_file, resetOverrides),
        cmocka_unit_test_teardown(test_load_empty_file, resetOverrides),
        cmocka_unit_test_teardown(test_load_bad_lines, resetOverrides),
        cmocka_unit_test_teardown(test_reload, resetOverrides),
        cmocka_unit_test_teardown(test_load_missing_file, resetOverrides),
        cmocka_unit_test_teardown(test_load_long_model, resetOverrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
