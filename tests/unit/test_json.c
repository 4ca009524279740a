/* test_json.c — unit tests for common/shelf/json.c. */
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

static char err[256];

/* Parse a NUL-terminated document with the default limits. */
static int parse(jsonDoc *d, const char *js) {
    err[0] = '\0';
    return jsonParse(d, js, strlen(js), 0, 0, err, sizeof(err));
}

static void parseOk(jsonDoc *d, const char *js) {
    if (parse(d, js) != 0) fail_msg("refused %s: %s", js, err);
}

/* Expect js to be refused with a message containing needle. */
static void parseBad(const char *js, const char *needle) {
    jsonDoc d;
    if (parse(&d, js) != -1) {
        jsonFree(&d);
        fail_msg("accepted %s", js);
    }
    assert_null(d.tok);                         /* nothing left to free */
    if (strstr(err, needle) == NULL) fail_msg("message for %s lacks \"%s\": %s", js, needle, err);
}

/* Unescape the string at token i into a buffer; returns jsonStr's result. */
static int str(const jsonDoc *d, int i, char *out, size_t outlen) {
    memset(out, 0x7e, outlen);
    return jsonStr(d, i, out, outlen);
}

/* ---- Parsing ------------------------------------------------------------ */

static void test_nesting_and_navigation(void **state) {
    (void)state;
    jsonDoc d;
    const char *js =
        "{\"id\":\"msg_1\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
        "\"usage\":{\"input_tokens\":12,\"output_tokens\":34,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":5}},"
        "\"stop_reason\":null,\"b\":{\"usage\":1},\"usage2\":true}";
    parseOk(&d, js);
    assert_int_equal(d.tok[0].type, JSMN_OBJECT);
    assert_int_equal(jsonSkip(&d, 0), d.ntok);

    long long v;
    int i = jsonPath(&d, 0, "usage.input_tokens");
    assert_true(i > 0);
    assert_int_equal(jsonInt(&d, i, &v), 0);
    assert_int_equal(v, 12);
    assert_int_equal(jsonInt(&d, jsonPath(&d, 0, "usage.output_tokens"), &v), 0);
    assert_int_equal(v, 34);
    assert_int_equal(jsonInt(&d, jsonPath(&d, 0, "usage.cache_creation.ephemeral_5m_input_tokens"), &v), 0);
    assert_int_equal(v, 5);

    /* Misses: absent keys, paths through non-objects, a too-long part. */
    assert_int_equal(jsonPath(&d, 0, "usage.nope"), -1);
    assert_int_equal(jsonPath(&d, 0, "nope.input_tokens"), -1);
    assert_int_equal(jsonPath(&d, 0, "id.x"), -1);
    assert_int_equal(jsonPath(&d, 0, "content.type"), -1);       /* an array */
    char longpath[300];
    memset(longpath, 'k', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(jsonPath(&d, 0, longpath), -1);
    assert_int_equal(jsonPath(&d, 0, ""), 0);                   /* empty path: itself */

    /* jsonGet only looks at the object's own keys, not nested ones. */
    i = jsonGet(&d, 0, "b");
    assert_true(i > 0);
    assert_int_equal(jsonGet(&d, i, "usage") > 0, 1);
    assert_int_equal(jsonInt(&d, jsonGet(&d, i, "usage"), &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(jsonGet(&d, 0, "input_tokens"), -1);
    assert_int_equal(jsonGet(&d, 0, "usage2"), jsonGet(&d, 0, "usage2"));
    assert_true(jsonGet(&d, 0, "usage2") > jsonGet(&d, 0, "b"));
    assert_int_equal(jsonGet(&d, jsonGet(&d, 0, "content"), "type"), -1);
    assert_int_equal(jsonGet(&d, -1, "id"), -1);
    assert_int_equal(jsonGet(&d, d.ntok, "id"), -1);

    /* The array's element. */
    int arr = jsonGet(&d, 0, "content");
    assert_int_equal(d.tok[arr].type, JSMN_ARRAY);
    assert_int_equal(d.tok[arr].size, 1);
    assert_true(jsonStrEq(&d, jsonGet(&d, arr + 1, "type"), "text"));
    assert_false(jsonStrEq(&d, jsonGet(&d, arr + 1, "type"), "tex"));
    assert_false(jsonStrEq(&d, jsonGet(&d, 0, "stop_reason"), "null"));  /* not a string */
    assert_false(jsonStrEq(&d, jsonGet(&d, 0, "absent"), "x"));          /* a miss: -1 */
    assert_false(jsonStrEq(&d, d.ntok, "x"));

    /* Spans: strings with their quotes, containers whole. */
    const char *p;
    size_t n;
    jsonSpan(&d, jsonGet(&d, 0, "id"), &p, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(p, "\"msg_1\"", 7);
    jsonSpan(&d, arr, &p, &n);
    assert_int_equal(n, strlen("[{\"type\":\"text\",\"text\":\"hi\"}]"));
    assert_memory_equal(p, "[{\"type\":\"text\",\"text\":\"hi\"}]", n);
    jsonSpan(&d, 0, &p, &n);
    assert_int_equal(n, strlen(js));
    /* A value not found (-1), or past the tokens: an empty span. */
    jsonSpan(&d, jsonGet(&d, 0, "absent"), &p, &n);
    assert_int_equal(n, 0);
    jsonSpan(&d, d.ntok, &p, &n);
    assert_int_equal(n, 0);
    jsonFree(&d);
    assert_null(d.tok);
    jsonFree(&d);                               /* twice is harmless */
}

static void test_whitespace_and_scalars(void **state) {
    (void)state;
    jsonDoc d;
    parseOk(&d, " \t\r\n{ \"a\" : [ 1 , 2 ] }\r\n ");
    assert_int_equal(d.ntok, 5);
    jsonFree(&d);
    parseOk(&d, "[]");
    assert_int_equal(d.ntok, 1);
    jsonFree(&d);
    parseOk(&d, "{}");
    jsonFree(&d);
    /* A document that is just a string. */
    parseOk(&d, "\"just a string\"");
    assert_int_equal(d.tok[0].type, JSMN_STRING);
    jsonFree(&d);
    parseOk(&d, "\"s\"  \n");
    jsonFree(&d);
}

static void test_truncated(void **state) {
    (void)state;
    parseBad("", "truncated");
    parseBad("   ", "truncated");
    parseBad("{", "truncated");
    parseBad("{\"a\":1", "truncated");
    parseBad("{\"a\":", "truncated");
    parseBad("[1,2", "truncated");
    parseBad("{\"a\":\"b", "truncated");
    parseBad("\"abc", "truncated");
    parseBad("{\"a\":\"\\u00", "not JSON");
    parseBad("{\"a\":\"b\\", "not JSON");
}

/* The length bounds the parse: every prefix of a document, in an exact-size
 * heap copy, is refused without reading past the end (ASan checks). */
static void test_prefixes_bounded(void **state) {
    (void)state;
    const char *js = "{\"a\":[1,-2,true,null,\"x\\u00e9\\n\"],\"b\":{\"c\":{}}}";
    size_t len = strlen(js);
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n ? n : 1);
        jsonDoc d;
        assert_non_null(copy);
        memcpy(copy, js, n);
        if (jsonParse(&d, copy, n, 0, 0, err, sizeof(err)) != -1)
            fail_msg("accepted a %zu-byte prefix", n);
        free(copy);
    }
    char *copy = malloc(len);
    jsonDoc d;
    assert_non_null(copy);
    memcpy(copy, js, len);
    assert_int_equal(jsonParse(&d, copy, len, 0, 0, err, sizeof(err)), 0);
    char out[16];
    assert_int_equal(str(&d, jsonPath(&d, 0, "a") + 5, out, sizeof(out)), 4);
    assert_string_equal(out, "x\xc3\xa9\n");
    jsonFree(&d);
    free(copy);
}

static void test_trailing_garbage(void **state) {
    (void)state;
    parseBad("{} x", "not JSON");
    parseBad("{}x", "not JSON");
    parseBad("{}{}", "not JSON");
    parseBad("{} {}", "not JSON");
    parseBad("[1] 2", "not JSON");
    parseBad("\"a\" \"b\"", "not JSON");
    parseBad("\"a\"x", "not JSON");
    /* A NUL ends what jsmn reads; the rest is trailing data. */
    jsonDoc d;
    assert_int_equal(jsonParse(&d, "{}\0{}", 5, 0, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "trailing"));
    assert_int_equal(jsonParse(&d, "{\"a\":\"b\0c\"}", 11, 0, 0, err, sizeof(err)), -1);
}

static void test_invalid(void **state) {
    (void)state;
    parseBad("{a:1}", "not JSON");
    parseBad("[1,'x']", "not JSON");
    parseBad("{\"a\":\"\\x\"}", "not JSON");       /* invalid escape */
    parseBad("{\"a\":\"\\u12g4\"}", "not JSON");   /* bad hex */
    parseBad("{\"a\":\"\\U1234\"}", "not JSON");
    parseBad("[1,2]]", "not JSON");
    parseBad("{\"a\":1]", "not JSON");
    parseBad("{{}:1}", "not JSON");
    parseBad("@", "not JSON");
}

/* ---- Token array and limits --------------------------------------------- */

/* "[0,1,...,n-1]": n + 1 tokens. */
static char *bigArray(buf *b, int n) {
    bufReset(b);
    bufAppendStr(b, "[");
    for (int i = 0; i < n; i++) bufPrintf(b, "%s%d", i ? "," : "", i);
    bufAppendStr(b, "]");
    return b->p;
}

static void test_token_growth(void **state) {
    (void)state;
    buf b = {0};
    jsonDoc d;
    long long v;

    /* 64 tokens fit the first array; 65 and 5001 need it to grow. */
    static const int sizes[] = {63, 64, 65, 127, 128, 129, 5000};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int n = sizes[k];
        bigArray(&b, n);
        assert_int_equal(jsonParse(&d, b.p, b.len, 0, 0, err, sizeof(err)), 0);
        assert_int_equal(d.ntok, n + 1);
        assert_int_equal(d.tok[0].size, n);
        assert_int_equal(jsonInt(&d, n, &v), 0);
        assert_int_equal(v, n - 1);
        jsonFree(&d);
    }
    bufFree(&b);
}

static void test_max_tokens(void **state) {
    (void)state;
    buf b = {0};
    jsonDoc d;

    bigArray(&b, 1000);                                 /* 1001 tokens */
    assert_int_equal(jsonParse(&d, b.p, b.len, 1001, 0, err, sizeof(err)), 0);
    assert_int_equal(d.ntok, 1001);
    jsonFree(&d);
    assert_int_equal(jsonParse(&d, b.p, b.len, 1000, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than 1000 tokens"));
    assert_null(d.tok);
    assert_int_equal(jsonParse(&d, b.p, b.len, 500, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than 500 tokens"));

    /* Limits below the initial 64-token array hold too. */
    bigArray(&b, 3);                                    /* 4 tokens */
    assert_int_equal(jsonParse(&d, b.p, b.len, 4, 0, err, sizeof(err)), 0);
    jsonFree(&d);
    assert_int_equal(jsonParse(&d, b.p, b.len, 3, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "more than 3 tokens"));
    assert_int_equal(jsonParse(&d, b.p, b.len, 1, 0, err, sizeof(err)), -1);
    bigArray(&b, 63);                                   /* 64 tokens */
    assert_int_equal(jsonParse(&d, b.p, b.len, 63, 0, err, sizeof(err)), -1);
    assert_int_equal(jsonParse(&d, b.p, b.len, 64, 0, err, sizeof(err)), 0);
    jsonFree(&d);
    bufFree(&b);
}

/* n nested arrays around a 1: "[[[1]]]". */
static char *nested(buf *b, int n, char open, char close) {
    bufReset(b);
    for (int i = 0; i < n; i++) {
        if (open == '{') bufAppendStr(b, "{\"k\":");
        else bufAppend(b, &open, 1);
    }
    bufAppendStr(b, "1");
    for (int i = 0; i < n; i++) bufAppend(b, &close, 1);
    return b->p;
}

static void test_depth(void **state) {
    (void)state;
    buf b = {0};
    jsonDoc d;

    nested(&b, JSON_MAX_DEPTH, '[', ']');
    assert_int_equal(jsonParse(&d, b.p, b.len, 0, 0, err, sizeof(err)), 0);
    jsonFree(&d);
    nested(&b, JSON_MAX_DEPTH + 1, '[', ']');
    assert_int_equal(jsonParse(&d, b.p, b.len, 0, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nested deeper than 64"));
    assert_null(d.tok);

    nested(&b, 3, '{', '}');
    assert_int_equal(jsonParse(&d, b.p, b.len, 0, 3, err, sizeof(err)), 0);
    long long v;
    assert_int_equal(jsonInt(&d, jsonPath(&d, 0, "k.k.k"), &v), 0);
    assert_int_equal(v, 1);
    jsonFree(&d);
    assert_int_equal(jsonParse(&d, b.p, b.len, 0, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "deeper than 2"));

    /* Depth counts nesting, not containers side by side. */
    const char *wide = "[[1],[2],{\"a\":[3]},[[4]]]";
    assert_int_equal(jsonParse(&d, wide, strlen(wide), 0, 3, err, sizeof(err)), 0);
    jsonFree(&d);
    assert_int_equal(jsonParse(&d, wide, strlen(wide), 0, 2, err, sizeof(err)), -1);

    /* Brackets in strings are not nesting, whatever the escapes around
     * them (the pre-check skips string contents in jumps). */
    const char *strs = "[\"[[[{{\", \"\\\"[[[\\\\\", \"a\\\\\\\"[[\", \"\\\\\"]";
    assert_int_equal(jsonParse(&d, strs, strlen(strs), 0, 1, err, sizeof(err)), 0);
    assert_int_equal(d.ntok, 5);
    jsonFree(&d);
    const char *deep = "[\"\\\\\", [\"]\\\"]\"]]";
    assert_int_equal(jsonParse(&d, deep, strlen(deep), 0, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "deeper than 1"));

    /* A huge limit is capped by the checker's own stack. */
    nested(&b, 1000, '[', ']');
    assert_int_equal(jsonParse(&d, b.p, b.len, 0, 1000000, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nested deeper"));
    bufFree(&b);
}

/* ---- Values ------------------------------------------------------------- */

static void test_int(void **state) {
    (void)state;
    jsonDoc d;
    long long v;
    parseOk(&d, "[0,123,-45,9223372036854775807,-9223372036854775808,"
                "9223372036854775808,-9223372036854775809,99999999999999999999,"
                "1.5,1e3,-,true,null,\"12\",-0,{}]");
    static const struct { int ok; long long v; } want[] = {
        {1, 0}, {1, 123}, {1, -45}, {1, LLONG_MAX}, {1, LLONG_MIN},
        {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0},
        {1, 0}, {0, 0},
    };
    for (int i = 0; i < (int)(sizeof(want) / sizeof(want[0])); i++) {
        v = 777;
        int r = jsonInt(&d, i + 1, &v);
        if (r != (want[i].ok ? 0 : -1)) fail_msg("element %d: jsonInt gave %d", i, r);
        assert_int_equal(v, want[i].ok ? want[i].v : 777);
    }
    assert_int_equal(jsonInt(&d, -1, &v), -1);
    assert_int_equal(jsonInt(&d, d.ntok, &v), -1);
    jsonFree(&d);
}

static void test_string_escapes(void **state) {
    (void)state;
    jsonDoc d;
    char out[64];
    parseOk(&d, "[\"plain\",\"q\\\"b\\\\s\\/\",\"\\b\\f\\n\\r\\t\","
                "\"\\u0041\\u00e9\\u20AC\",\"\\ud83d\\ude00\",\"\\uD83D\\uDE00x\","
                "\"\",\"caf\xc3\xa9\"]");
    assert_int_equal(str(&d, 1, out, sizeof(out)), 5);
    assert_string_equal(out, "plain");
    assert_int_equal(str(&d, 2, out, sizeof(out)), 6);
    assert_string_equal(out, "q\"b\\s/");
    assert_int_equal(str(&d, 3, out, sizeof(out)), 5);
    assert_string_equal(out, "\b\f\n\r\t");
    assert_int_equal(str(&d, 4, out, sizeof(out)), 6);
    assert_string_equal(out, "A\xc3\xa9\xe2\x82\xac");
    assert_int_equal(str(&d, 5, out, sizeof(out)), 4);      /* U+1F600 */
    assert_string_equal(out, "\xf0\x9f\x98\x80");
    assert_int_equal(str(&d, 6, out, sizeof(out)), 5);
    assert_string_equal(out, "\xf0\x9f\x98\x80x");
    assert_int_equal(str(&d, 7, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(str(&d, 8, out, sizeof(out)), 5);      /* raw UTF-8 passes */
    assert_string_equal(out, "caf\xc3\xa9");
    /* Not a string. */
    assert_int_equal(str(&d, 0, out, sizeof(out)), -1);
    assert_int_equal(str(&d, -1, out, sizeof(out)), -1);
    assert_int_equal(str(&d, 1, out, 0), -1);
    jsonFree(&d);
}

static void test_string_bad_unicode(void **state) {
    (void)state;
    jsonDoc d;
    char out[64];
    parseOk(&d, "[\"\\ud83d\",\"\\ude00\",\"\\ud83d\\u0041\",\"\\ud83dx\","
                "\"\\u0000\",\"a\\u0000b\",\"\\ud83d\\ud83d\",\"\\ud83d\\\"\"]");
    for (int i = 1; i <= 8; i++) {
        if (str(&d, i, out, sizeof(out)) != -1)
            fail_msg("element %d unescaped to \"%s\"", i - 1, out);
    }
    jsonFree(&d);
}

/* Output must fit with its NUL; one byte short is refused, never overrun. */
static void test_string_fit(void **state) {
    (void)state;
    jsonDoc d;
    parseOk(&d, "[\"abcd\",\"\\u20ac\"]");
    char *out = malloc(5);
    assert_non_null(out);
    assert_int_equal(jsonStr(&d, 1, out, 5), 4);
    assert_string_equal(out, "abcd");
    assert_int_equal(jsonStr(&d, 1, out, 4), -1);
    assert_int_equal(jsonStr(&d, 2, out, 4), 3);            /* 3-byte UTF-8 */
    assert_int_equal(jsonStr(&d, 2, out, 3), -1);
    assert_int_equal(jsonStr(&d, 1, out, 1), -1);
    free(out);
    jsonFree(&d);
}

/* Keys written with escapes do not match (documented). */
static void test_get_escaped_key(void **state) {
    (void)state;
    jsonDoc d;
    parseOk(&d, "{\"\\u0061\":1,\"b\\\"\":2}");
    assert_int_equal(jsonGet(&d, 0, "a"), -1);
    assert_true(jsonGet(&d, 0, "b\\\"") > 0);
    jsonFree(&d);
}

/* Random mutations of a real document never crash the parser or getters. */
static void test_random_mutations(void **state) {
    (void)state;
    static const char base[] =
        "{\"type\":\"message\",\"usage\":{\"input_tokens\":12,\"output_tokens\":3},"
        "\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9\\ud83d\\ude00\"}]}";
    static const char junk[] = "{}[]\",:\\u0123456789-.etn \t";
    unsigned seed = 4242;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = sizeof(base) - 1;
        char *js = malloc(len);
        assert_non_null(js);
        memcpy(js, base, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            js[at] = junk[(seed >> 8) % (sizeof(junk) - 1)];
        }
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 8) % 4 ? len : (seed >> 12) % len;  /* sometimes cut */
        jsonDoc d;
        if (jsonParse(&d, js, n, 200, 8, err, sizeof(err)) == 0) {
            long long v;
            char out[64];
            jsonInt(&d, jsonPath(&d, 0, "usage.input_tokens"), &v);
            for (int i = 0; i < d.ntok; i++) {
                jsonStr(&d, i, out, sizeof(out));
                jsonInt(&d, i, &v);
                assert_true(jsonSkip(&d, i) > i && jsonSkip(&d, i) <= d.ntok);
            }
            jsonFree(&d);
        }
        free(js);
    }
}

/* UTF-8: valid text passes; each kind of bad sequence is found at its
 * offset; NUL is refused. */
static void test_utf8(void **state) {
    (void)state;
    static const struct { const char *s; size_t len; long bad; } cases[] = {
        {"plain ascii", 11, -1},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, -1},
        {"a\x00" "b", 3, 1},                       /* NUL */
        {"ab\x80", 3, 2},                       /* lone continuation */
        {"\xc0\xaf", 2, 0},                     /* overlong '/' */
        {"\xe0\x80\xaf", 3, 0},                 /* overlong, 3 bytes */
        {"x\xed\xa0\x80", 4, 1},                /* surrogate D800 */
        {"\xf4\x90\x80\x80", 4, 0},             /* past U+10FFFF */
        {"ok\xe2\x82", 4, 2},                   /* truncated at the end */
        {"\xe2(\xa1", 3, 0},                    /* bad continuation */
        {"\xff", 1, 0},
        {"0123456789abcdef\xff" "gh", 19, 16},      /* after the 8-byte path */
        {"012345678\x00" "abcdefghij", 20, 9},     /* NUL inside a word */
        {"0123456789abcdef\xc3\xa9xyz01234567", 29, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(jsonUtf8Invalid(cases[i].s, cases[i].len), cases[i].bad);
}

/* Duplicate keys are counted per object, not in nested ones. */
static void test_key_count(void **state) {
    (void)state;
    const char *js = "{\"a\":1,\"b\":{\"a\":2},\"a\":[3],\"c\":\"a\"}";
    jsonDoc d;
    char err[128];
    assert_int_equal(jsonParse(&d, js, strlen(js), 0, 0, err, sizeof(err)), 0);
    assert_int_equal(jsonKeyCount(&d, 0, "a"), 2);
    assert_int_equal(jsonKeyCount(&d, 0, "b"), 1);
    assert_int_equal(jsonKeyCount(&d, 0, "c"), 1);
    assert_int_equal(jsonKeyCount(&d, 0, "z"), 0);
    assert_int_equal(jsonKeyCount(&d, jsonGet(&d, 0, "b"), "a"), 1);
    assert_int_equal(jsonKeyCount(&d, jsonGet(&d, 0, "c"), "a"), 0);   /* not an object */
    jsonFree(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_count),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_nesting_and_navigation),
        cmocka_unit_test(test_whitespace_and_scalars),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_prefixes_bounded),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_token_growth),
        cmocka_unit_test(test_max_tokens),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_string_bad_unicode),
        cmocka_unit_test(test_string_fit),
        cmocka_unit_test(test_get_escaped_key),
        cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
