/* test_outcome.c — unit tests for common/api/outcome.c: usage bounds,
 * scrubbing credentials from what the API sends back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "outcome.h"

static void classify200(outcome *o, const char *body) {
    rlHeaders rl;
    rlInit(&rl);
    outcomeClassify(o, CURLE_OK, NULL, 0, 200, body, strlen(body), &rl);
}

static void test_usage_ok(void **state) {
    (void)state;
    outcome o;
    classify200(&o, "{\"model\":\"m\",\"usage\":{\"input_tokens\":100000000,"
                    "\"output_tokens\":5,\"cache_read_input_tokens\":7}}");
    assert_int_equal(o.ok, 1);
    assert_int_equal(o.use.input_tokens, USAGE_MAX_TOKENS);
    assert_int_equal(o.use.cache_read_input_tokens, 7);
}

/* Each usage field past the bound (2^63 - 1 among them) is invalid. */
static void test_usage_absurd(void **state) {
    (void)state;
    const char *fields[] = {"input_tokens", "output_tokens", "cache_creation_input_tokens",
                            "cache_read_input_tokens"};
    const char *vals[] = {"100000001", "9223372036854775807"};
    for (size_t f = 0; f < 4; f++) {
        for (size_t v = 0; v < 2; v++) {
            char body[400];
            int n = snprintf(body, sizeof(body), "{\"usage\":{");
            for (size_t g = 0; g < 4; g++)
                n += snprintf(body + n, sizeof(body) - (size_t)n, "%s\"%s\":%s",
                              g ? "," : "", fields[g], g == f ? vals[v] : "1");
            snprintf(body + n, sizeof(body) - (size_t)n, "}}");
            outcome o;
            classify200(&o, body);
            if (o.ok) fail_msg("accepted %s", body);
            assert_string_equal(o.error_type, "invalid_response");
            if (!strstr(o.error_message, "beyond any real request"))
                fail_msg("%s: %s", body, o.error_message);
        }
    }
    outcome o;
    classify200(&o, "{\"usage\":{\"input_tokens\":1,\"output_tokens\":1,\"cache_creation\":"
                    "{\"ephemeral_1h_input_tokens\":200000000}}}");
    assert_int_equal(o.ok, 0);
    assert_string_equal(o.error_type, "invalid_response");
}

/* A gateway quoting the refused key, a partial key, a key of another
 * format: none survives into the outcome. */
static void test_scrub_error(void **state) {
    (void)state;
    const char *key = "sk-ant-api03-SECRETsecret_0123-xyz";
    outcome o;
    const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                       "\"message\":\"invalid x-api-key: sk-ant-api03-SECRETsecret_0123-xyz "
                       "(also tried sk-ant-admin01-OTHER, prefix sk-ant-api03-SEC)\"}}";
    outcomeClassify(&o, CURLE_OK, NULL, 0, 401, body, strlen(body), NULL);
    outcomeScrub(&o, key);
    assert_string_equal(o.error_message, "invalid x-api-key: [redacted] (also tried "
                        "[redacted], prefix [redacted])");
    assert_string_equal(o.error_type, "authentication_error");

    char s[64] = "gw says KEY-1234567890 refused";
    scrubSecrets(s, sizeof(s), "KEY-1234567890");
    assert_string_equal(s, "gw says [redacted] refused");
    /* A key shorter than 8 bytes is not searched (it would eat words). */
    char t[32] = "a b c";
    scrubSecrets(t, sizeof(t), "b");
    assert_string_equal(t, "a b c");
    /* The replacement is longer than "sk-ant-": it stays within cap. */
    char u[12] = "x sk-ant- y";
    scrubSecrets(u, sizeof(u), NULL);
    assert_string_equal(u, "x [redacted");
}

static void test_mask_key(void **state) {
    (void)state;
    const char *key = "sk-ant-api03-SECRET";
    char b[] = "{\"text\":\"sk-ant-api03-SECRET and sk-ant-api03-SECRET\"}";
    assert_int_equal(maskKey(b, strlen(b), key), 2);
    assert_null(strstr(b, key));
    assert_string_equal(b, "{\"text\":\"******************* and *******************\"}");
    char c[] = "sk-ant-api03-SECRE";        /* cut short: no match past the end */
    assert_int_equal(maskKey(c, strlen(c), key), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_ok),
        cmocka_unit_test(test_usage_absurd),
        cmocka_unit_test(test_scrub_error),
        cmocka_unit_test(test_mask_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
