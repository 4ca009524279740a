/* fuzz_ratelimit.c — libFuzzer target for rlParseLine() (common/api/ratelimit.c)
 * and, through the -reset headers, rfc3339Parse() (common/shelf/rfc3339.c).
 *
 * The input is a header block: it is split after each '\n' and every line
 * (with its line ending, as libcurl's header callback delivers it) is fed
 * to rlParseLine() on one rlHeaders, each line from its own exactly sized
 * heap buffer so ASan sees a read past the line. Checked after each line:
 *   - the return value is -1, 0 or 1; on 0 and -1 nothing changed;
 *   - on -1 the message is non-empty and NUL-terminated (the buffer is
 *     small on purpose, so long messages are truncated);
 *   - counts are >= -1, x-should-retry is -1/0/1, request-id is a
 *     NUL-terminated printable token;
 *   - every reset time that rfc3339Format() can express formats and parses
 *     back to itself rounded up to the second. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "rfc3339.h"

#define ERR_LEN 64

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static long long min_ms, max_ms;    /* rfc3339Format()'s range, whole seconds */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    static const char lo[] = "0000-01-01T00:00:00Z", hi[] = "9999-12-31T23:59:59Z";
    if (rfc3339Parse(lo, sizeof(lo) - 1, &min_ms) < 0 ||
        rfc3339Parse(hi, sizeof(hi) - 1, &max_ms) < 0)
        abort();
    return 0;
}

/* Ceiling division by 1000, then back to ms: what rfc3339Format() shows. */
static long long ceilSecond(long long ms) {
    long long s = ms / 1000;
    if (ms % 1000 > 0) s++;
    return s * 1000;
}

static void checkReset(long long ms) {
    char text[32], again[32];
    long long back;
    if (ms == -1) return;
    long long want = ceilSecond(ms);
    if (want < min_ms || want > max_ms) return;
    int n = rfc3339Format(ms, text, sizeof(text));
    CHECK(n == 20 && text[20] == '\0');
    CHECK(rfc3339Parse(text, (size_t)n, &back) == 0);
    CHECK(back == want);
    CHECK(rfc3339Format(back, again, sizeof(again)) == n);
    CHECK(memcmp(text, again, (size_t)n + 1) == 0);
}

static void checkBucket(const rlBucket *b) {
    CHECK(b->limit >= -1 && b->remaining >= -1);
    checkReset(b->reset_ms);
}

static void checkHeaders(const rlHeaders *h) {
    checkBucket(&h->requests);
    checkBucket(&h->tokens);
    checkBucket(&h->input);
    checkBucket(&h->output);
    CHECK(h->retry_after_ms >= -1);
    CHECK(h->should_retry >= -1 && h->should_retry <= 1);
    const char *nul = memchr(h->request_id, '\0', sizeof(h->request_id));
    CHECK(nul != NULL);
    for (const char *p = h->request_id; p < nul; p++)
        CHECK(*p > ' ' && *p < 0x7f);
}

static void feedLine(rlHeaders *h, const uint8_t *p, size_t n, char *err) {
    char *line = malloc(n ? n : 1);
    rlHeaders before;
    if (!line) abort();
    memcpy(line, p, n);
    memcpy(&before, h, sizeof(before));
    memset(err, 'x', ERR_LEN);

    int rc = rlParseLine(h, line, n, err, ERR_LEN);
    CHECK(rc >= -1 && rc <= 1);
    if (rc <= 0) CHECK(memcmp(&before, h, sizeof(before)) == 0);
    if (rc == -1) CHECK(err[0] != 'x' && err[0] != '\0' &&
                        memchr(err, '\0', ERR_LEN) != NULL);
    checkHeaders(h);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *err = malloc(ERR_LEN);
    rlHeaders h;
    if (!err) abort();
    rlInit(&h);

    size_t start = 0;
    while (start < size) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) + 1 : size;
        feedLine(&h, data + start, end - start, err);
        start = end;
    }
    /* A NULL or empty line is "not ours". */
    CHECK(rlParseLine(&h, NULL, 0, err, ERR_LEN) == 0);
    free(err);
    return 0;
}
