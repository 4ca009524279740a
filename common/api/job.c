/* job.c — job validation (see job.h). Shared by the worker and `submit`,
 * so a producer using `submit` sees the same verdict a worker would give. */
#include "job.h"

#include <stdio.h>
#include <string.h>

#include "json.h"

/* Input tokens of a request, estimated from its size: about 4 bytes a token
 * for text, which JSON syntax only inflates. Used for reservations, and
 * settled later from the response's usage. */
static long long estimateInput(size_t request_len) {
    return (long long)(request_len / 4) + 1;
}

int jobParse(job *j, const char *raw, size_t len, size_t max_bytes, char *err,
             size_t errlen) {
    jsonDoc d;
    char perr[128];
    int rc = -1;

    memset(j, 0, sizeof(*j));
    if (max_bytes && len > max_bytes) {
        snprintf(err, errlen, "job is %zu bytes, over the %zu byte limit", len,
                 max_bytes);
        return -1;
    }
    long bad = jsonUtf8Invalid(raw, len);
    if (bad >= 0) {
        snprintf(err, errlen, "job is not valid UTF-8 (byte 0x%02x at offset %ld)",
                 (unsigned char)raw[bad], bad);
        return -1;
    }
    if (jsonParse(&d, raw, len, JOB_MAX_JSON_TOKENS, JSON_MAX_DEPTH, perr,
                  sizeof(perr)) < 0) {
        snprintf(err, errlen, "job is not valid JSON: %s", perr);
        return -1;
    }
    if (d.tok[0].type != JSMN_OBJECT) {
        snprintf(err, errlen, "job is not a JSON object");
        goto out;
    }

    /* A key twice is refused where it matters: we would read the first,
     * the API may use the last (a max_tokens of 1 reserved, 100000 sent). */
    static const char *const topKeys[] = {"id", "request", "meta"};
    for (int k = 0; k < 3; k++) {
        if (jsonKeyCount(&d, 0, topKeys[k]) > 1) {
            snprintf(err, errlen, "job has the key \"%s\" more than once", topKeys[k]);
            goto out;
        }
    }
    int id = jsonGet(&d, 0, "id");
    if (id < 0) {
        snprintf(err, errlen, "job has no \"id\"");
        goto out;
    }
    if (d.tok[id].type != JSMN_STRING) {
        snprintf(err, errlen, "job \"id\" must be a string");
        goto out;
    }
    int idlen = jsonStr(&d, id, j->id, sizeof(j->id));
    if (idlen <= 0) {
        j->id[0] = '\0';
        snprintf(err, errlen, "job \"id\" must be a non-empty string of at "
                 "most %d bytes without NUL characters", JOB_ID_MAX);
        goto out;
    }

    int req = jsonGet(&d, 0, "request");
    if (req < 0) {
        snprintf(err, errlen, "job has no \"request\"");
        goto out;
    }
    if (d.tok[req].type != JSMN_OBJECT) {
        snprintf(err, errlen, "job \"request\" must be an object");
        goto out;
    }
    static const char *const reqKeys[] = {"model", "max_tokens", "messages"};
    for (int k = 0; k < 3; k++) {
        if (jsonKeyCount(&d, req, reqKeys[k]) > 1) {
            snprintf(err, errlen, "request has the key \"%s\" more than once", reqKeys[k]);
            goto out;
        }
    }
    int model = jsonGet(&d, req, "model");
    if (model < 0) {
        snprintf(err, errlen, "request has no \"model\"");
        goto out;
    }
    if (d.tok[model].type != JSMN_STRING ||
        jsonStr(&d, model, j->model, sizeof(j->model)) <= 0) {
        snprintf(err, errlen, "request.model must be a non-empty string of at "
                 "most %d bytes", JOB_MODEL_MAX);
        goto out;
    }
    int mt = jsonGet(&d, req, "max_tokens");
    if (mt < 0) {
        snprintf(err, errlen, "request has no \"max_tokens\"");
        goto out;
    }
    if (jsonInt(&d, mt, &j->max_tokens) < 0 || j->max_tokens < 1 ||
        j->max_tokens > 100000000) {
        snprintf(err, errlen, "request.max_tokens must be an integer >= 1");
        goto out;
    }
    int msgs = jsonGet(&d, req, "messages");
    if (msgs < 0 || d.tok[msgs].type != JSMN_ARRAY || d.tok[msgs].size == 0) {
        snprintf(err, errlen, "request.messages must be a non-empty array");
        goto out;
    }
    jsonSpan(&d, req, &j->request, &j->request_len);
    j->input_estimate = estimateInput(j->request_len);

    int meta = jsonGet(&d, 0, "meta");
    if (meta >= 0) jsonSpan(&d, meta, &j->meta, &j->meta_len);
    rc = 0;
out:
    jsonFree(&d);
    return rc;
}
