/* test_log.c — unit tests for common/shelf/log.c: one call is one line
 * whatever the values hold, lfQ's quoting, and --log-format json lines that
 * parse back to the values logged. stderr is captured in a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"

static char out[65536];

/* Run fn with stderr going to a file; out holds what it wrote. */
static void capture(void (*fn)(void)) {
    char path[] = "/tmp/llmfleet-test-log.XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    assert_true(fd >= 0 && saved >= 0);
    unlink(path);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
    close(fd);
    out[n > 0 ? n : 0] = '\0';
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* A hostile id: quotes, a newline that would forge a line, a backslash, a
 * control character. */
static const char *const HOSTILE =
    "a\"b\n2026-01-01T00:00:00.000Z error llmfleet[1] event=forged\\ \x01 end";

static void logHostile(void) {
    lfLog(LF_WARN, "event=invalid_job id=%s error=%s n=%d", lfQ(HOSTILE), lfQ("no \"model\""), 7);
}

static void test_text_one_line(void **state) {
    (void)state;
    lfLogJson = 0;
    capture(logHostile);
    assert_int_equal(lines(out), 1);
    assert_non_null(strstr(out, " warn llmfleet["));
    assert_non_null(strstr(out, "id=\"a\\\"b\\n2026-01-01T00:00:00.000Z error llmfleet[1] "
                                "event=forged\\\\ \\x01 end\""));
    assert_non_null(strstr(out, "error=\"no \\\"model\\\"\" n=7\n"));
}

static void logRawNewline(void) {
    lfLog(LF_INFO, "event=x raw=%s", "two\nlines\r");   /* not through lfQ */
}

static void test_text_raw_control_escaped(void **state) {
    (void)state;
    lfLogJson = 0;
    capture(logRawNewline);
    assert_int_equal(lines(out), 1);
    assert_non_null(strstr(out, "raw=two\\nlines\\r\n"));
}

static void test_json_round_trip(void **state) {
    (void)state;
    lfLogJson = 1;
    capture(logHostile);
    lfLogJson = 0;
    assert_int_equal(lines(out), 1);
    jsonDoc d;
    char err[200], v[400];
    long long n = 0;
    if (jsonParse(&d, out, strlen(out) - 1, 0, 16, err, sizeof(err)) != 0)
        fail_msg("not JSON: %s: %s", err, out);
    assert_int_equal(jsonStrEq(&d, jsonGet(&d, 0, "level"), "warn"), 1);
    assert_int_equal(jsonStrEq(&d, jsonGet(&d, 0, "event"), "invalid_job"), 1);
    assert_true(jsonStr(&d, jsonGet(&d, 0, "id"), v, sizeof(v)) > 0);
    assert_string_equal(v, HOSTILE);
    assert_true(jsonStr(&d, jsonGet(&d, 0, "error"), v, sizeof(v)) > 0);
    assert_string_equal(v, "no \"model\"");
    assert_int_equal(jsonInt(&d, jsonGet(&d, 0, "n"), &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(d.tok[jsonGet(&d, 0, "pid")].type, JSMN_PRIMITIVE);
    assert_true(jsonGet(&d, 0, "ts") > 0);
    jsonFree(&d);
}

static void logMixed(void) {
    lfLog(LF_ERROR, "event=y word=abc num=-12 zero=0 lead=007 frac=1.5 bad=1. "
          "empty= tail text without equals");
}

static void test_json_values(void **state) {
    (void)state;
    lfLogJson = 1;
    capture(logMixed);
    lfLogJson = 0;
    jsonDoc d;
    char err[200], v[200];
    if (jsonParse(&d, out, strlen(out) - 1, 0, 16, err, sizeof(err)) != 0)
        fail_msg("not JSON: %s: %s", err, out);
    /* Numbers stay numbers; what only looks like one is a string. */
    assert_int_equal(d.tok[jsonGet(&d, 0, "num")].type, JSMN_PRIMITIVE);
    assert_int_equal(d.tok[jsonGet(&d, 0, "zero")].type, JSMN_PRIMITIVE);
    assert_int_equal(d.tok[jsonGet(&d, 0, "frac")].type, JSMN_PRIMITIVE);
    assert_int_equal(d.tok[jsonGet(&d, 0, "lead")].type, JSMN_STRING);
    assert_int_equal(d.tok[jsonGet(&d, 0, "bad")].type, JSMN_STRING);
    assert_int_equal(jsonStrEq(&d, jsonGet(&d, 0, "word"), "abc"), 1);
    assert_int_equal(jsonStrEq(&d, jsonGet(&d, 0, "empty"), ""), 1);
    assert_true(jsonStr(&d, jsonGet(&d, 0, "msg"), v, sizeof(v)) > 0);
    assert_string_equal(v, "tail text without equals");
    jsonFree(&d);
}

static void test_q_cut_and_null(void **state) {
    (void)state;
    char big[LF_Q_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *q = lfQ(big);
    assert_int_equal(strlen(q), LF_Q_MAX + 2 + 3);
    assert_string_equal(q + LF_Q_MAX + 1, "...\"");
    assert_string_equal(lfQ(NULL), "\"\"");
    /* The slots rotate: LF_Q_SLOTS values in one line stay distinct. */
    const char *a = lfQ("a"), *b = lfQ("b"), *c = lfQ("c"), *e = lfQ("e");
    assert_string_equal(a, "\"a\"");
    assert_string_equal(b, "\"b\"");
    assert_string_equal(c, "\"c\"");
    assert_string_equal(e, "\"e\"");
    assert_int_equal(lfLogParseFormat("json"), 1);
    assert_int_equal(lfLogParseFormat("text"), 0);
    assert_int_equal(lfLogParseFormat("xml"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_one_line),
        cmocka_unit_test(test_text_raw_control_escaped),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_q_cut_and_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
