/* test_outcome.c — unit tests for common/api/outcome.c: usage bounds. */
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_ok),
        cmocka_unit_test(test_usage_absurd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
