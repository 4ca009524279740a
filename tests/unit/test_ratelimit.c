/* test_ratelimit.c — unit tests for common/api/ratelimit.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define T0 1795924800000LL          /* 2026-11-29T04:00:00Z */

static char err[256];

/* Feed a NUL-terminated line (length without the NUL). */
static int feed(rlHeaders *h, const char *line) {
    err[0] = '\0';
    return rlParseLine(h, line, strlen(line), err, sizeof(err));
}

static void assertBucketAbsent(const rlBucket *b) {
    assert_int_equal(b->limit, -1);
    assert_int_equal(b->remaining, -1);
    assert_int_equal(b->reset_ms, -1);
}

static void test_init(void **state) {
    (void)state;
    rlHeaders h;
    memset(&h, 0x5a, sizeof(h));
    rlInit(&h);
    assertBucketAbsent(&h.requests);
    assertBucketAbsent(&h.tokens);
    assertBucketAbsent(&h.input);
    assertBucketAbsent(&h.output);
    assert_int_equal(h.retry_after_ms, -1);
    assert_int_equal(h.should_retry, -1);
    assert_string_equal(h.request_id, "");
}

/* A full response as libcurl delivers it, one line per call. */
static void test_full_response(void **state) {
    (void)state;
    static const char *lines[] = {
        "HTTP/1.1 429 Too Many Requests\r\n",
        "date: Sun, 29 Nov 2026 03:59:00 GMT\r\n",
        "content-type: application/json\r\n",
        "anthropic-ratelimit-requests-limit: 4000\r\n",
        "anthropic-ratelimit-requests-remaining: 3999\r\n",
        "anthropic-ratelimit-requests-reset: 2026-11-29T04:00:00Z\r\n",
        "anthropic-ratelimit-tokens-limit: 2400000\r\n",
        "anthropic-ratelimit-tokens-remaining: 0\r\n",
        "anthropic-ratelimit-tokens-reset: 2026-11-29T04:00:30Z\r\n",
        "anthropic-ratelimit-input-tokens-limit: 2000000\r\n",
        "anthropic-ratelimit-input-tokens-remaining: 1000\r\n",
        "anthropic-ratelimit-input-tokens-reset: 2026-11-29T04:00:00.5Z\r\n",
        "anthropic-ratelimit-output-tokens-limit: 400000\r\n",
        "anthropic-ratelimit-output-tokens-remaining: 399000\r\n",
        "anthropic-ratelimit-output-tokens-reset: 2026-11-29T05:00:00+01:00\r\n",
        "retry-after: 30\r\n",
        "x-should-retry: true\r\n",
        "request-id: req_011CSHoEeqs5C35K2UUqR7Fy\r\n",
        "\r\n",
    };
    static const int want[] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    rlHeaders h;
    rlInit(&h);
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        int r = feed(&h, lines[i]);
        if (r != want[i]) fail_msg("line %zu \"%s\": got %d (%s)", i, lines[i], r, err);
    }
    assert_int_equal(h.requests.limit, 4000);
    assert_int_equal(h.requests.remaining, 3999);
    assert_int_equal(h.requests.reset_ms, T0);
    assert_int_equal(h.tokens.limit, 2400000);
    assert_int_equal(h.tokens.remaining, 0);
    assert_int_equal(h.tokens.reset_ms, T0 + 30000);
    assert_int_equal(h.input.limit, 2000000);
    assert_int_equal(h.input.remaining, 1000);
    assert_int_equal(h.input.reset_ms, T0 + 500);
    assert_int_equal(h.output.limit, 400000);
    assert_int_equal(h.output.remaining, 399000);
    assert_int_equal(h.output.reset_ms, T0);
    assert_int_equal(h.retry_after_ms, 30000);
    assert_int_equal(h.should_retry, 1);
    assert_string_equal(h.request_id, "req_011CSHoEeqs5C35K2UUqR7Fy");
}

static void test_case_and_whitespace(void **state) {
    (void)state;
    rlHeaders h;
    rlInit(&h);
    assert_int_equal(feed(&h, "Anthropic-RateLimit-Requests-Limit: 50\r\n"), 1);
    assert_int_equal(h.requests.limit, 50);
    assert_int_equal(feed(&h, "ANTHROPIC-RATELIMIT-REQUESTS-REMAINING:\t 49 \t\r\n"), 1);
    assert_int_equal(h.requests.remaining, 49);
    assert_int_equal(feed(&h, "anthropic-ratelimit-tokens-limit:8000"), 1);   /* no CRLF */
    assert_int_equal(h.tokens.limit, 8000);
    assert_int_equal(feed(&h, "anthropic-ratelimit-tokens-remaining : 7000\n"), 1);
    assert_int_equal(h.tokens.remaining, 7000);
    assert_int_equal(feed(&h, "X-Should-Retry: FALSE\r\n"), 1);
    assert_int_equal(h.should_retry, 0);
    assert_int_equal(feed(&h, "Request-Id:   abc  \r\n"), 1);
    assert_string_equal(h.request_id, "abc");
}

static void test_not_ours(void **state) {
    (void)state;
    rlHeaders h, before;
    memset(&h, 0, sizeof(h));
    rlInit(&h);
    memcpy(&before, &h, sizeof(h));
    assert_int_equal(feed(&h, "HTTP/2 200\r\n"), 0);
    assert_int_equal(feed(&h, "\r\n"), 0);
    assert_int_equal(feed(&h, ""), 0);
    assert_int_equal(feed(&h, "content-length: 12\r\n"), 0);
    assert_int_equal(feed(&h, "anthropic-ratelimit-requests: 5\r\n"), 0);
    assert_int_equal(feed(&h, "anthropic-ratelimit-requests-limitx: 5\r\n"), 0);
    assert_int_equal(feed(&h, "x-anthropic-ratelimit-requests-limit: 5\r\n"), 0);
    assert_int_equal(feed(&h, "anthropic-priority-input-tokens-limit: 5\r\n"), 0);
    assert_int_equal(feed(&h, "retry-after-s: 5\r\n"), 0);
    assert_int_equal(feed(&h, ": 5\r\n"), 0);
    assert_int_equal(feed(&h, "no colon at all"), 0);
    assert_memory_equal(&h, &before, sizeof(h));
    assert_int_equal(rlParseLine(&h, NULL, 0, err, sizeof(err)), 0);
}

/* Each bad value: -1, a message naming the header, the field unchanged. */
static void test_garbage_values(void **state) {
    (void)state;
    static const char *bad[] = {
        "anthropic-ratelimit-requests-limit: abc\r\n",
        "anthropic-ratelimit-requests-limit: -5\r\n",
        "anthropic-ratelimit-requests-limit: +5\r\n",
        "anthropic-ratelimit-requests-limit: 5.0\r\n",
        "anthropic-ratelimit-requests-limit: 5 6\r\n",
        "anthropic-ratelimit-requests-limit: 0x10\r\n",
        "anthropic-ratelimit-requests-limit: 99999999999999999999\r\n",
        "anthropic-ratelimit-requests-limit:\r\n",
        "anthropic-ratelimit-requests-limit:   \r\n",
        "anthropic-ratelimit-requests-limit",      /* no colon: not a header */
    };
    rlHeaders h;
    rlInit(&h);
    for (size_t i = 0; i + 1 < sizeof(bad) / sizeof(bad[0]); i++) {
        if (feed(&h, bad[i]) != -1) fail_msg("accepted \"%s\"", bad[i]);
        if (strstr(err, "anthropic-ratelimit-requests-limit") == NULL)
            fail_msg("message for \"%s\" does not name the header: %s", bad[i], err);
        assert_int_equal(h.requests.limit, -1);
    }
    assert_int_equal(feed(&h, bad[sizeof(bad) / sizeof(bad[0]) - 1]), 0);

    assert_int_equal(feed(&h, "anthropic-ratelimit-tokens-reset: tomorrow\r\n"), -1);
    assert_non_null(strstr(err, "anthropic-ratelimit-tokens-reset"));
    assert_int_equal(h.tokens.reset_ms, -1);
    assert_int_equal(feed(&h, "anthropic-ratelimit-tokens-reset: 2026-11-29T04:00:00\r\n"), -1);
    assert_int_equal(feed(&h, "anthropic-ratelimit-tokens-reset:\r\n"), -1);
    assert_int_equal(h.tokens.reset_ms, -1);

    assert_int_equal(feed(&h, "x-should-retry: yes\r\n"), -1);
    assert_non_null(strstr(err, "x-should-retry"));
    assert_int_equal(h.should_retry, -1);
    assert_int_equal(feed(&h, "x-should-retry: truex\r\n"), -1);

    assert_int_equal(feed(&h, "retry-after: soon\r\n"), -1);
    assert_non_null(strstr(err, "retry-after"));
    assert_int_equal(feed(&h, "retry-after: Wed, 21 Oct 2026 07:28:00 GMT\r\n"), -1);
    assert_int_equal(feed(&h, "retry-after: 99999999999999999\r\n"), -1);   /* x1000 overflows */
    assert_int_equal(feed(&h, "retry-after-ms: 1.\r\n"), -1);
    assert_int_equal(feed(&h, "retry-after-ms: .5\r\n"), -1);
    assert_int_equal(feed(&h, "retry-after-ms: 1.5.5\r\n"), -1);
    assert_int_equal(feed(&h, "retry-after-ms: -1\r\n"), -1);
    assert_non_null(strstr(err, "retry-after-ms"));
    assert_int_equal(h.retry_after_ms, -1);

    assert_int_equal(feed(&h, "request-id:\r\n"), -1);
    assert_int_equal(feed(&h, "request-id: has space\r\n"), -1);
    assert_int_equal(feed(&h, "request-id: \x1b[31mred\r\n"), -1);
    assert_non_null(strstr(err, "request-id"));
    assert_string_equal(h.request_id, "");
    /* The quoted value in the message is sanitized. */
    assert_null(strchr(err, '\x1b'));

    /* None of that poisoned the rest. */
    assert_int_equal(feed(&h, "anthropic-ratelimit-requests-limit: 50\r\n"), 1);
    assert_int_equal(h.requests.limit, 50);
}

/* A bad value leaves an earlier good one in place. */
static void test_garbage_keeps_previous(void **state) {
    (void)state;
    rlHeaders h;
    rlInit(&h);
    assert_int_equal(feed(&h, "anthropic-ratelimit-output-tokens-remaining: 10\r\n"), 1);
    assert_int_equal(feed(&h, "anthropic-ratelimit-output-tokens-remaining: x\r\n"), -1);
    assert_int_equal(h.output.remaining, 10);
}

static void test_long_garbage_message(void **state) {
    (void)state;
    char line[4096];
    rlHeaders h;
    rlInit(&h);
    int n = snprintf(line, sizeof(line), "anthropic-ratelimit-input-tokens-limit: ");
    memset(line + n, 'z', sizeof(line) - (size_t)n - 1);
    line[sizeof(line) - 1] = '\0';
    assert_int_equal(feed(&h, line), -1);
    assert_true(strlen(err) < 200);
    /* A tiny or absent error buffer is fine too. */
    char small[8];
    assert_int_equal(rlParseLine(&h, line, strlen(line), small, sizeof(small)), -1);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(rlParseLine(&h, line, strlen(line), NULL, 0), -1);
}

static void test_retry_after(void **state) {
    (void)state;
    rlHeaders h;
    rlInit(&h);
    assert_int_equal(feed(&h, "retry-after: 7\r\n"), 1);
    assert_int_equal(h.retry_after_ms, 7000);
    assert_int_equal(feed(&h, "retry-after: 0\r\n"), 1);

    /* retry-after-ms wins, whichever order they come in. */
    rlInit(&h);
    assert_int_equal(feed(&h, "retry-after: 2\r\n"), 1);
    assert_int_equal(feed(&h, "retry-after-ms: 1500\r\n"), 1);
    assert_int_equal(h.retry_after_ms, 1500);
    rlInit(&h);
    assert_int_equal(feed(&h, "Retry-After-Ms: 1500\r\n"), 1);
    assert_int_equal(feed(&h, "Retry-After: 2\r\n"), 1);
    assert_int_equal(h.retry_after_ms, 1500);

    /* A fraction of a millisecond rounds up; zeros do not. */
    rlInit(&h);
    assert_int_equal(feed(&h, "retry-after-ms: 1500.25\r\n"), 1);
    assert_int_equal(h.retry_after_ms, 1501);
    assert_int_equal(feed(&h, "retry-after-ms: 1500.000\r\n"), 1);
    assert_int_equal(h.retry_after_ms, 1500);
    assert_int_equal(feed(&h, "retry-after-ms: 0\r\n"), 1);
    assert_int_equal(h.retry_after_ms, 0);
    assert_int_equal(feed(&h, "retry-after-ms: 9223372036854775807.5\r\n"), -1);
    assert_int_equal(h.retry_after_ms, 0);
}

static void test_should_retry(void **state) {
    (void)state;
    rlHeaders h;
    rlInit(&h);
    assert_int_equal(feed(&h, "x-should-retry: true\r\n"), 1);
    assert_int_equal(h.should_retry, 1);
    assert_int_equal(feed(&h, "x-should-retry: false\r\n"), 1);
    assert_int_equal(h.should_retry, 0);
    assert_int_equal(feed(&h, "x-should-retry: True\r\n"), 1);
    assert_int_equal(h.should_retry, 1);
}

static void test_request_id_truncated(void **state) {
    (void)state;
    char line[300];
    rlHeaders h;
    rlInit(&h);
    int n = snprintf(line, sizeof(line), "request-id: ");
    memset(line + n, 'a', 200);
    strcpy(line + n + 200, "\r\n");
    assert_int_equal(feed(&h, line), 1);
    assert_int_equal(strlen(h.request_id), sizeof(h.request_id) - 1);
    assert_int_equal(h.request_id[0], 'a');
}

static void test_reset_offsets(void **state) {
    (void)state;
    rlHeaders h;
    rlInit(&h);
    assert_int_equal(feed(&h, "anthropic-ratelimit-requests-reset: 2026-11-28T22:30:00-05:30\r\n"), 1);
    assert_int_equal(h.requests.reset_ms, T0);
    assert_int_equal(feed(&h, "anthropic-ratelimit-requests-reset: 2026-11-29t04:00:00.123456z\r\n"), 1);
    assert_int_equal(h.requests.reset_ms, T0 + 123);
}

/* The length is the bound, not a NUL: feed exact-size heap copies of every
 * prefix of some lines (ASan catches any read past the end). */
static void test_length_bounded(void **state) {
    (void)state;
    static const char *lines[] = {
        "anthropic-ratelimit-requests-reset: 2026-11-29T04:00:00.123+02:00\r\n",
        "retry-after-ms: 1500.25\r\n",
        "x-should-retry: false\r\n",
        "request-id: req_abc\r\n",
        "anthropic-ratelimit-tokens-limit: 123456\r\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        size_t len = strlen(lines[i]);
        for (size_t n = 0; n <= len; n++) {
            char *copy = malloc(n ? n : 1);
            rlHeaders h;
            assert_non_null(copy);
            memcpy(copy, lines[i], n);
            rlInit(&h);
            int r = rlParseLine(&h, copy, n, err, sizeof(err));
            assert_true(r >= -1 && r <= 1);
            free(copy);
        }
    }
}

/* Random bytes never crash and never return anything but -1, 0 or 1. */
static void test_random_garbage(void **state) {
    (void)state;
    static const char *names[] = {
        "anthropic-ratelimit-requests-limit:", "anthropic-ratelimit-tokens-reset:",
        "retry-after:", "retry-after-ms:", "x-should-retry:", "request-id:", "",
    };
    unsigned seed = 12345;
    for (int iter = 0; iter < 5000; iter++) {
        char line[128];
        const char *name = names[iter % (sizeof(names) / sizeof(names[0]))];
        size_t nlen = strlen(name);
        memcpy(line, name, nlen);
        seed = seed * 1103515245u + 12345u;
        size_t n = nlen + (seed >> 16) % (sizeof(line) - nlen);
        for (size_t k = nlen; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            line[k] = (char)(seed >> 16);
        }
        char *copy = malloc(n ? n : 1);
        rlHeaders h;
        assert_non_null(copy);
        memcpy(copy, line, n);
        rlInit(&h);
        int r = rlParseLine(&h, copy, n, err, sizeof(err));
        assert_true(r >= -1 && r <= 1);
        free(copy);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_full_response),
        cmocka_unit_test(test_case_and_whitespace),
        cmocka_unit_test(test_not_ours),
        cmocka_unit_test(test_garbage_values),
        cmocka_unit_test(test_garbage_keeps_previous),
        cmocka_unit_test(test_long_garbage_message),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_should_retry),
        cmocka_unit_test(test_request_id_truncated),
        cmocka_unit_test(test_reset_offsets),
        cmocka_unit_test(test_length_bounded),
        cmocka_unit_test(test_random_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
