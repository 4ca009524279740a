/* fuzz_job.c — libFuzzer target for jobParse() (common/api/job.c).
 *
 * The input is one raw job exactly as a producer could LPUSH it. libFuzzer
 * hands us an exactly sized heap copy, so ASan sees any read past the end.
 * Besides "does not crash", the target checks what a caller relies on:
 *   - success: a non-empty id, a model, 1 <= max_tokens, and request/meta
 *     spans that lie inside the input, request being an object;
 *   - failure: a non-empty, NUL-terminated message that fits its buffer
 *     (success leaves err alone);
 *   - always: id and model NUL-terminated within their arrays;
 *   - the size limit refuses a job one byte over it before parsing. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

#define ERR_LEN 160                 /* the worker uses buffers about this size */

/* Abort (a crash libFuzzer reports) when cond is false. */
#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static int inside(const char *p, size_t n, const char *raw, size_t len) {
    return p >= raw && n <= len && (size_t)(p - raw) <= len - n;
}

static void checkJob(const job *j, int rc, const char *raw, size_t len,
                     const char *err) {
    CHECK(memchr(j->id, '\0', sizeof(j->id)) != NULL);
    CHECK(memchr(j->model, '\0', sizeof(j->model)) != NULL);
    if (rc < 0) {
        CHECK(rc == -1);
        CHECK(err[0] != '\0' && memchr(err, '\0', ERR_LEN) != NULL);
        return;
    }
    CHECK(rc == 0);
    CHECK(j->id[0] != '\0' && strlen(j->id) <= JOB_ID_MAX);
    CHECK(j->model[0] != '\0' && strlen(j->model) <= JOB_MODEL_MAX);
    CHECK(j->max_tokens >= 1);
    CHECK(j->request != NULL && j->request_len >= 2);
    CHECK(inside(j->request, j->request_len, raw, len));
    CHECK(j->request[0] == '{' && j->request[j->request_len - 1] == '}');
    CHECK(j->input_estimate >= 1);
    if (j->meta) {
        CHECK(j->meta_len > 0);
        CHECK(inside(j->meta, j->meta_len, raw, len));
    } else {
        CHECK(j->meta_len == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *raw = (const char *)data;
    char *err = malloc(ERR_LEN);    /* exact size: ASan catches overruns */
    job *j = malloc(sizeof(*j));
    if (!err || !j) abort();

    memset(err, 'x', ERR_LEN);
    int rc = jobParse(j, raw, size, 0, err, ERR_LEN);
    checkJob(j, rc, raw, size, err);

    /* One byte over the limit is refused whatever the bytes are. */
    if (size > 0) {
        memset(err, 'x', ERR_LEN);
        CHECK(jobParse(j, raw, size, size - 1, err, ERR_LEN) == -1);
        CHECK(err[0] != '\0' && memchr(err, '\0', ERR_LEN) != NULL);
    }

    free(j);
    free(err);
    return 0;
}
