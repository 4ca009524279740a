/* test_buf.c — unit tests for common/shelf/buf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"

/* Expect b to hold exactly the n bytes want, NUL-terminated. */
static void assertBuf(const buf *b, const char *want, size_t n) {
    assert_int_equal(b->len, n);
    assert_true(b->cap > b->len);
    assert_memory_equal(b->p, want, n);
    assert_int_equal(b->p[n], '\0');
}

/* Encode s[0..n) as a JSON string and return the buffer's text. */
static void encode(buf *b, const char *s, size_t n) {
    bufReset(b);
    bufAppendJsonString(b, s, n);
}

/* ---- Basics ------------------------------------------------------------- */

static void test_zeroed_is_empty(void **state) {
    (void)state;
    buf b = {0};
    assert_int_equal(b.len, 0);
    bufReset(&b);                               /* fine before any memory */
    bufFree(&b);                                /* and so is freeing */
    bufAppend(&b, "", 0);
    assertBuf(&b, "", 0);
    bufFree(&b);
    assert_null(b.p);
    assert_int_equal(b.cap, 0);
}

static void test_append(void **state) {
    (void)state;
    buf b = {0};
    bufAppend(&b, "abc", 3);
    assertBuf(&b, "abc", 3);
    bufAppendStr(&b, "def");
    assertBuf(&b, "abcdef", 6);
    bufAppend(&b, "x\0y", 3);                   /* binary-safe */
    assertBuf(&b, "abcdefx\0y", 9);
    bufFree(&b);
}

static void test_growth(void **state) {
    (void)state;
    buf b = {0};
    char want[10000];
    for (size_t i = 0; i < sizeof(want); i++) {
        want[i] = (char)('a' + i % 26);
        bufAppend(&b, &want[i], 1);
    }
    assertBuf(&b, want, sizeof(want));
    bufFree(&b);

    /* One big append past the initial capacity. */
    bufAppend(&b, want, sizeof(want));
    assertBuf(&b, want, sizeof(want));
    bufFree(&b);
}

static void test_reset_keeps_memory(void **state) {
    (void)state;
    buf b = {0};
    bufAppendStr(&b, "hello world");
    char *p = b.p;
    size_t cap = b.cap;
    bufReset(&b);
    assertBuf(&b, "", 0);
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.cap, cap);
    bufAppendStr(&b, "hi");
    assertBuf(&b, "hi", 2);
    bufFree(&b);
}

static void test_reserve(void **state) {
    (void)state;
    buf b = {0};
    bufReserve(&b, 1000);
    assert_true(b.cap >= 1001);
    assert_int_equal(b.len, 0);
    char *p = b.p;
    bufAppend(&b, "0123456789", 10);            /* fits: no move */
    assert_ptr_equal(b.p, p);
    bufReserve(&b, 0);
    assertBuf(&b, "0123456789", 10);
    bufFree(&b);
}

static void test_printf(void **state) {
    (void)state;
    buf b = {0};
    bufPrintf(&b, "%d-%s", 42, "x");
    assertBuf(&b, "42-x", 4);
    bufPrintf(&b, "%s", "");                    /* nothing to add */
    assertBuf(&b, "42-x", 4);
    char big[300];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bufPrintf(&b, "[%s]", big);                 /* grows mid-printf */
    assert_int_equal(b.len, 4 + 2 + 299);
    assert_int_equal(b.p[4], '[');
    assert_int_equal(b.p[b.len - 1], ']');
    assert_int_equal(b.p[b.len], '\0');
    bufFree(&b);
}

/* ---- JSON strings ------------------------------------------------------- */

static void test_json_plain(void **state) {
    (void)state;
    buf b = {0};
    encode(&b, "", 0);
    assertBuf(&b, "\"\"", 2);
    encode(&b, "hello, world/x", 14);           /* '/' needs no escape */
    assertBuf(&b, "\"hello, world/x\"", 16);
    bufFree(&b);
}

static void test_json_quotes_backslash(void **state) {
    (void)state;
    buf b = {0};
    encode(&b, "a\"b\\c", 5);
    assertBuf(&b, "\"a\\\"b\\\\c\"", 9);
    encode(&b, "\"\"\\\\", 4);
    assertBuf(&b, "\"\\\"\\\"\\\\\\\\\"", 10);
    bufFree(&b);
}

static void test_json_control_bytes(void **state) {
    (void)state;
    buf b = {0};
    encode(&b, "\n\r\t", 3);
    assertBuf(&b, "\"\\n\\r\\t\"", 8);
    encode(&b, "\x00\x01\x08\x0c\x1b\x1f", 6);
    const char *want = "\"\\u0000\\u0001\\u0008\\u000c\\u001b\\u001f\"";
    assertBuf(&b, want, strlen(want));
    /* Every byte below 0x20 is escaped, one escape each. */
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c;
        encode(&b, &in, 1);
        assert_true(b.len == 4 || b.len == 8);
        assert_int_equal(b.p[1], '\\');
        assert_null(memchr(b.p, c, b.len));
    }
    bufFree(&b);
}

static void test_json_high_bytes(void **state) {
    (void)state;
    buf b = {0};
    /* UTF-8, a lone continuation byte, 0xff and DEL pass through as they are. */
    const char in[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x80\xff\x7f";
    encode(&b, in, sizeof(in) - 1);
    assert_int_equal(b.len, sizeof(in) - 1 + 2);
    assert_int_equal(b.p[0], '"');
    assert_memory_equal(b.p + 1, in, sizeof(in) - 1);
    assert_int_equal(b.p[b.len - 1], '"');
    bufFree(&b);
}

static void test_json_appends(void **state) {
    (void)state;
    buf b = {0};
    bufAppendStr(&b, "{\"k\":");
    bufAppendJsonString(&b, "v\n", 2);
    bufAppendStr(&b, "}");
    assertBuf(&b, "{\"k\":\"v\\n\"}", 11);
    bufFree(&b);
}

/* What we encode, json.c decodes back to the same bytes, for every byte
 * value but NUL (which jsonStr refuses by design) and in long runs. */
static void test_json_round_trip(void **state) {
    (void)state;
    buf b = {0};
    char in[5000], out[5001], err[128];
    for (size_t i = 0; i < sizeof(in); i++) in[i] = (char)(1 + (i * 7) % 255);
    encode(&b, in, sizeof(in));
    jsonDoc d;
    assert_int_equal(jsonParse(&d, b.p, b.len, 0, 0, err, sizeof(err)), 0);
    assert_int_equal(jsonStr(&d, 0, out, sizeof(out)), (int)sizeof(in));
    assert_memory_equal(out, in, sizeof(in));
    jsonFree(&d);

    encode(&b, "a\0b", 3);
    assert_int_equal(jsonParse(&d, b.p, b.len, 0, 0, err, sizeof(err)), 0);
    assert_int_equal(jsonStr(&d, 0, out, sizeof(out)), -1);
    jsonFree(&d);
    bufFree(&b);
}

/* The input is read by length: an exact-size heap copy with no NUL. */
static void test_json_length_bounded(void **state) {
    (void)state;
    buf b = {0};
    char *in = malloc(3);
    assert_non_null(in);
    memcpy(in, "a\"\n", 3);
    bufAppendJsonString(&b, in, 3);
    assertBuf(&b, "\"a\\\"\\n\"", 7);
    free(in);
    bufFree(&b);
}

/* RFC 4648 section 10 test vectors, and bytes that are not text. */
static void test_base64(void **state) {
    (void)state;
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        buf b = {0};
        bufAppendBase64(&b, in[i], strlen(in[i]));
        assert_string_equal(b.p ? b.p : "", out[i]);
        bufFree(&b);
    }
    buf b = {0};
    bufAppendStr(&b, "x:");
    bufAppendBase64(&b, "\x00\xff\xfe", 3);
    assert_string_equal(b.p, "x:AP/+");
    assert_int_equal(b.len, 6);
    bufFree(&b);
}

static void test_fmtll(void **state) {
    (void)state;
    const long long v[] = {0, 7, -7, 10, 1234567890123LL, -1000, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char want[32], got[32];
        snprintf(want, sizeof(want), "%lld", v[i]);
        memset(got, 'x', sizeof(got));
        assert_int_equal(fmtLL(got, v[i]), strlen(want));
        assert_string_equal(got, want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_is_empty),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_reset_keeps_memory),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_json_plain),
        cmocka_unit_test(test_json_quotes_backslash),
        cmocka_unit_test(test_json_control_bytes),
        cmocka_unit_test(test_json_high_bytes),
        cmocka_unit_test(test_json_appends),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_length_bounded),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_fmtll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
