/* fuzz_response.c — libFuzzer target for outcomeClassify() (common/api/outcome.c).
 *
 * Input: one selector byte, then the response body. The body is classified
 * twice: as a 200 (the success parser: usage, model) and as an error status
 * (the error parser: error.type, error.message, details.error_code). The
 * selector byte b picks the rest:
 *   b & 0x0f         the error status, from statuses[] below
 *   (b >> 4) & 3     x-should-retry: 1 false, 2 true, else absent
 *   b & 0x40         retry-after-ms: 2000 present
 *   b & 0x80         no rate-limit headers at all (rl NULL)
 * So a seed "7{...}" is a 429 with no headers of note, "g{...}" a 429 with
 * x-should-retry: true and retry-after-ms, "0{...}" a 400.
 *
 * Checked after each call: every string NUL-terminated within its array;
 * ok only for 200, and then usage counts >= 0 and no error set; an error
 * always has a type and a message; a spend-limit error is never retryable;
 * retry_after_ms passed through from the headers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outcome.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static const long statuses[16] = {
    400, 401, 403, 404, 408, 409, 413, 429,
    500, 502, 503, 504, 529, 201, 302, 599,
};

static void checkOutcome(const outcome *o, long status, const rlHeaders *rl) {
    CHECK(TERMINATED(o->error_type));
    CHECK(TERMINATED(o->error_message));
    CHECK(TERMINATED(o->model));
    CHECK(o->http_status == status);
    CHECK(o->retry_after_ms == (rl ? rl->retry_after_ms : -1));
    CHECK(o->ok == 0 || o->ok == 1);
    CHECK(o->retryable == 0 || o->retryable == 1);
    if (o->ok) {
        CHECK(status == 200);
        CHECK(o->retryable == 0 && o->spend_limit == 0);
        CHECK(o->error_type[0] == '\0' && o->error_message[0] == '\0');
        CHECK(o->use.input_tokens >= 0 && o->use.output_tokens >= 0);
        CHECK(o->use.cache_creation_input_tokens >= 0);
        CHECK(o->use.cache_read_input_tokens >= 0);
        CHECK(o->use.cache_5m_tokens >= -1 && o->use.cache_1h_tokens >= -1);
        return;
    }
    CHECK(o->error_type[0] != '\0' && o->error_message[0] != '\0');
    if (o->spend_limit) CHECK(o->retryable == 0);
    if (status == 200) CHECK(o->spend_limit == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned b = data[0];
    long status = statuses[b & 0x0f];
    rlHeaders rl;
    rlInit(&rl);
    if (((b >> 4) & 3) == 1) rl.should_retry = 0;
    if (((b >> 4) & 3) == 2) rl.should_retry = 1;
    if (b & 0x40) rl.retry_after_ms = 2000;
    const rlHeaders *rlp = (b & 0x80) ? NULL : &rl;

    /* The body in its own exactly sized buffer, NULL when empty as the
     * worker passes it for an empty response. */
    size_t len = size - 1;
    char *body = NULL;
    if (len) {
        body = malloc(len);
        if (!body) abort();
        memcpy(body, data + 1, len);
    }
    outcome *o = malloc(sizeof(*o));
    if (!o) abort();

    outcomeClassify(o, CURLE_OK, NULL, 0, 200, body, len, rlp);
    checkOutcome(o, 200, rlp);

    outcomeClassify(o, CURLE_OK, NULL, 0, status, body, len, rlp);
    checkOutcome(o, status, rlp);
    CHECK(o->ok == 0);
    if (rlp && rlp->should_retry >= 0 && !o->spend_limit)
        CHECK(o->retryable == rlp->should_retry);

    free(o);
    free(body);
    return 0;
}
