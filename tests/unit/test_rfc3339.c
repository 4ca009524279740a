/* test_rfc3339.c — unit tests for common/shelf/rfc3339.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rfc3339.h"

#define T0 1795924800000LL          /* 2026-11-29T04:00:00Z */

/* Parse a NUL-terminated string; the length excludes the NUL. */
static int parse(const char *s, long long *ms) {
    return rfc3339Parse(s, strlen(s), ms);
}

/* Expect s to be refused, with *ms left alone. */
static void assertBad(const char *s) {
    long long ms = 42;
    if (parse(s, &ms) != -1) fail_msg("accepted \"%s\"", s);
    assert_int_equal(ms, 42);
}

static void test_utc_z(void **state) {
    (void)state;
    long long ms = 0;
    assert_int_equal(parse("2026-11-29T04:00:00Z", &ms), 0);
    assert_int_equal(ms, T0);
    assert_int_equal(parse("1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(parse("2000-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 946684800000LL);
    assert_int_equal(parse("1969-12-31T23:59:59Z", &ms), 0);
    assert_int_equal(ms, -1000);
}

static void test_lowercase(void **state) {
    (void)state;
    long long ms = 0;
    assert_int_equal(parse("2026-11-29t04:00:00z", &ms), 0);
    assert_int_equal(ms, T0);
    assert_int_equal(parse("2026-11-29T04:00:00z", &ms), 0);
    assert_int_equal(ms, T0);
}

static void test_offsets(void **state) {
    (void)state;
    long long ms = 0;
    assert_int_equal(parse("2026-11-29T06:00:00+02:00", &ms), 0);
    assert_int_equal(ms, T0);
    assert_int_equal(parse("2026-11-28T22:30:00-05:30", &ms), 0);
    assert_int_equal(ms, T0);
    assert_int_equal(parse("2026-11-29T04:00:00+00:00", &ms), 0);
    assert_int_equal(ms, T0);
    assert_int_equal(parse("2026-11-29T04:00:00-00:00", &ms), 0);
    assert_int_equal(ms, T0);
    /* An offset crossing midnight and a month boundary. */
    assert_int_equal(parse("2026-12-01T01:00:00+23:59", &ms), 0);
    assert_int_equal(ms, T0 + (2 * 86400LL - 3 * 3600 - 23 * 3600 - 59 * 60) * 1000);
}

static void test_fractions(void **state) {
    (void)state;
    static const struct { const char *s; long long add; } cases[] = {
        {"2026-11-29T04:00:00.1Z", 100},
        {"2026-11-29T04:00:00.12Z", 120},
        {"2026-11-29T04:00:00.123Z", 123},
        {"2026-11-29T04:00:00.1234Z", 123},
        {"2026-11-29T04:00:00.12345Z", 123},
        {"2026-11-29T04:00:00.123456Z", 123},
        {"2026-11-29T04:00:00.1234567Z", 123},
        {"2026-11-29T04:00:00.12345678Z", 123},
        {"2026-11-29T04:00:00.999999999Z", 999},     /* truncated, not rounded */
        {"2026-11-29T04:00:00.000000001Z", 0},
        {"2026-11-29T04:00:00.5+02:00", 500 - 2 * 3600 * 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long ms = 0;
        if (parse(cases[i].s, &ms) != 0) fail_msg("refused \"%s\"", cases[i].s);
        assert_int_equal(ms, T0 + cases[i].add);
    }
    assertBad("2026-11-29T04:00:00.Z");             /* dot without digits */
    assertBad("2026-11-29T04:00:00.");
    assertBad("2026-11-29T04:00:00,5Z");
}

static void test_leap_years(void **state) {
    (void)state;
    long long ms = 0;
    assert_int_equal(parse("2024-02-29T12:34:56Z", &ms), 0);
    assert_int_equal(ms, 1709210096000LL);
    assert_int_equal(parse("2000-02-29T00:00:00Z", &ms), 0);   /* /400: leap */
    assertBad("2100-02-29T00:00:00Z");                          /* /100: not */
    assertBad("2026-02-29T00:00:00Z");
    assert_int_equal(parse("2100-03-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 4107542400000LL);
    assert_int_equal(parse("0001-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, -62135596800000LL);
    assert_int_equal(parse("0000-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, -62167219200000LL);
    assert_int_equal(parse("9999-12-31T23:59:59Z", &ms), 0);
    assert_int_equal(ms, 253402300799000LL);
}

static void test_bad_fields(void **state) {
    (void)state;
    assertBad("2026-00-10T00:00:00Z");
    assertBad("2026-13-10T00:00:00Z");
    assertBad("2026-04-31T00:00:00Z");
    assertBad("2026-01-00T00:00:00Z");
    assertBad("2026-01-32T00:00:00Z");
    assertBad("2026-01-10T24:00:00Z");
    assertBad("2026-01-10T23:60:00Z");
    assertBad("2026-01-10T23:59:61Z");
    assertBad("2026-01-10T23:59:59+24:00");
    assertBad("2026-01-10T23:59:59+01:60");
    assertBad("2026-1-10T23:59:59Z");
    assertBad("2026-01-10 23:59:59Z");
    assertBad("2026-01-10T23:59:59");               /* no zone */
    assertBad("2026-01-10T23:59:59+0100");
    assertBad("2026-01-10T23:59:59+01");
    assertBad("+026-01-10T23:59:59Z");
    assertBad("2026-01-10T2a:59:59Z");
    assertBad("2026/01/10T23:59:59Z");
}

static void test_leap_second(void **state) {
    (void)state;
    long long ms = 0;
    assert_int_equal(parse("2016-12-31T23:59:60Z", &ms), 0);
    long long next = 0;
    assert_int_equal(parse("2017-01-01T00:00:00Z", &next), 0);
    assert_int_equal(ms, next);
}

static void test_trailing_and_short(void **state) {
    (void)state;
    assertBad("2026-11-29T04:00:00Zx");
    assertBad("2026-11-29T04:00:00Z ");
    assertBad("2026-11-29T04:00:00+02:00:00");
    assertBad("");
    assertBad("2");
    assertBad("2026-11-29");
    assertBad("2026-11-29T04:00");
    assertBad("2026-11-29T04:00:0");
    assertBad("2026-11-29T04:00:00+02:0");
    assertBad("garbage");
    assert_int_equal(rfc3339Parse(NULL, 0, &(long long){0}), -1);
}

/* The length bounds the parse: a valid prefix of a longer buffer parses,
 * and a cut never reads past len (ASan checks this with exact mallocs). */
static void test_length_bounded(void **state) {
    (void)state;
    const char *full = "2026-11-29T04:00:00.123+02:00 and more";
    long long ms = 0;
    assert_int_equal(rfc3339Parse(full, 29, &ms), 0);
    assert_int_equal(ms, T0 - 2 * 3600 * 1000 + 123);
    for (size_t n = 0; n < 29; n++) {
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, full, n);
        assert_int_equal(rfc3339Parse(copy, n, &ms), -1);
        free(copy);
    }
}

static void test_format(void **state) {
    (void)state;
    char out[32];
    assert_int_equal(rfc3339Format(T0, out, sizeof(out)), 20);
    assert_string_equal(out, "2026-11-29T04:00:00Z");
    assert_int_equal(rfc3339Format(0, out, sizeof(out)), 20);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    /* Whole seconds, rounded up. */
    rfc3339Format(T0 + 1, out, sizeof(out));
    assert_string_equal(out, "2026-11-29T04:00:01Z");
    rfc3339Format(T0 + 999, out, sizeof(out));
    assert_string_equal(out, "2026-11-29T04:00:01Z");
    rfc3339Format(-1, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    rfc3339Format(-1001, out, sizeof(out));
    assert_string_equal(out, "1969-12-31T23:59:59Z");
    rfc3339Format(1709210096000LL, out, sizeof(out));
    assert_string_equal(out, "2024-02-29T12:34:56Z");
    /* Out of the four-digit range: clamped, still 20 bytes. */
    assert_int_equal(rfc3339Format(9223372036854775807LL, out, sizeof(out)), 20);
    assert_string_equal(out, "9999-12-31T23:59:59Z");
    assert_int_equal(rfc3339Format(-9223372036854775807LL - 1, out, sizeof(out)), 20);
    assert_string_equal(out, "0000-01-01T00:00:00Z");
    /* Exactly 21 bytes is enough; less truncates without overflow. */
    char small[21];
    assert_int_equal(rfc3339Format(T0, small, sizeof(small)), 20);
    assert_string_equal(small, "2026-11-29T04:00:00Z");
    char tiny[5];
    assert_int_equal(rfc3339Format(T0, tiny, sizeof(tiny)), 4);
    assert_string_equal(tiny, "2026");
}

/* Format(Parse(x)) == x for whole-second UTC times, over many days. */
static void test_round_trip(void **state) {
    (void)state;
    static const char *samples[] = {
        "0000-03-01T00:00:00Z", "0400-02-29T23:59:59Z", "1899-12-31T12:00:00Z",
        "1970-01-01T00:00:01Z", "1999-12-31T23:59:59Z", "2024-02-29T00:00:00Z",
        "2026-11-29T04:00:00Z", "2038-01-19T03:14:08Z", "9999-12-31T23:59:59Z",
    };
    char out[32];
    long long ms;
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        assert_int_equal(parse(samples[i], &ms), 0);
        rfc3339Format(ms, out, sizeof(out));
        assert_string_equal(out, samples[i]);
    }
    /* Every day from 1900 to 2100 at a changing time of day. */
    long long start = 0, end = 0;
    assert_int_equal(parse("1900-01-01T00:00:00Z", &start), 0);
    assert_int_equal(parse("2100-12-31T00:00:00Z", &end), 0);
    for (long long t = start; t <= end; t += 86400000LL + 7000) {
        long long back;
        rfc3339Format(t, out, sizeof(out));
        if (parse(out, &back) != 0 || back != t)
            fail_msg("round trip of %lld gave \"%s\"", t, out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_z),
        cmocka_unit_test(test_lowercase),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_fractions),
        cmocka_unit_test(test_leap_years),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_leap_second),
        cmocka_unit_test(test_trailing_and_short),
        cmocka_unit_test(test_length_bounded),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
