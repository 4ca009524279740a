/* job.c — job validation (see job.h). Shared by the worker and `submit`,
 * so a producer using `submit` sees the same verdict a worker would give. */
#include "job.h"

#include <stdio.h>
#include <string.h>

#include "estimate.h"
#include "json.h"
#include "rfc3339.h"

/* FNV-1a 64 of a string: mixed into a prompt prefix's hash, since a cache
 * belongs to one model. */
static unsigned long long fnv(const char *s) {
    unsigned long long h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The input estimates of the request at token req (see job.h). */
static void estimateJob(job *j, const jsonDoc *d, int req) {
    inputEstimate e;
    estimateRequest(d, req, &e);
    j->input_estimate = e.tokens > 0 ? e.tokens : 1;
    /* The spend reservation takes the upper bound (estimate.h): it must
     * never under-count. A request with a document the walk cannot measure
     * has none: the largest of the estimate and the bytes / 4, flagged
     * (spend_unbounded) for the worker to count it. */
    if (e.bound >= 0) {
        j->spend_input = e.bound > j->input_estimate ? e.bound : j->input_estimate;
    } else {
        long long bytes = (long long)(j->request_len / 4) + 1;
        j->spend_input = bytes > j->input_estimate ? bytes : j->input_estimate;
        j->spend_unbounded = 1;
    }
    j->has_cache = e.prefix_hash != 0;
    if (e.prefix_hash) {
        snprintf(j->prefix, sizeof(j->prefix), "%016llx", e.prefix_hash ^ fnv(j->model));
        j->prefix_tokens = e.prefix_tokens;
        j->cache_1h = e.cache_1h;
    }
}

/* The id of a job too large to parse (or not JSON, or not UTF-8 past its
 * head), when it is the job's first key
 * (`{"id":"..."`, as producers write it): read from the head only, so the
 * error result can name its job. Leaves j->id "" otherwise. */
static void headId(job *j, const char *raw, size_t len) {
    size_t i = 0, lim = len < 4096 ? len : 4096;
    while (i < lim && strchr(" \t\r\n", raw[i])) i++;
    if (i >= lim || raw[i++] != '{') return;
    while (i < lim && strchr(" \t\r\n", raw[i])) i++;
    if (lim - i < 4 || memcmp(raw + i, "\"id\"", 4) != 0) return;
    i += 4;
    while (i < lim && strchr(" \t\r\n", raw[i])) i++;
    if (i >= lim || raw[i++] != ':') return;
    while (i < lim && strchr(" \t\r\n", raw[i])) i++;
    size_t start = i;
    if (i >= lim || raw[i++] != '"') return;
    while (i < lim && raw[i] != '"') i += raw[i] == '\\' ? 2 : 1;
    if (i >= lim) return;
    char obj[4200];
    int n = snprintf(obj, sizeof(obj), "{\"id\":%.*s}", (int)(i + 1 - start), raw + start);
    jsonDoc d;
    char perr[64];
    if (n < 0 || (size_t)n >= sizeof(obj) || jsonUtf8Invalid(obj, (size_t)n) >= 0 ||
        jsonParse(&d, obj, (size_t)n, 8, 2, perr, sizeof(perr)) < 0)
        return;
    if (jsonStr(&d, jsonGet(&d, 0, "id"), j->id, sizeof(j->id)) <= 0) j->id[0] = '\0';
    jsonFree(&d);
}

const char *const jobLaneNames[4] = {"", "sync", "batch", "auto"};

/* "lane" (sync, batch, auto) and "deadline" (RFC 3339), both optional. */
static int laneParse(job *j, jsonDoc *d, char *err, size_t errlen) {
    char v[64];
    j->deadline_ms = -1;
    int t = jsonGet(d, 0, "lane");
    if (t >= 0) {
        j->lane = -1;
        if (d->tok[t].type == JSMN_STRING && jsonStr(d, t, v, sizeof(v)) > 0)
            for (int k = 1; k < 4; k++)
                if (strcmp(v, jobLaneNames[k]) == 0) j->lane = k;
        if (j->lane < 0) {
            j->lane = JOB_LANE_DEFAULT;
            snprintf(err, errlen, "job \"lane\" must be \"sync\", \"batch\" or \"auto\"");
            return -1;
        }
    }
    t = jsonGet(d, 0, "deadline");
    if (t >= 0) {
        int n = d->tok[t].type == JSMN_STRING ? jsonStr(d, t, v, sizeof(v)) : -1;
        if (n <= 0 || rfc3339Parse(v, (size_t)n, &j->deadline_ms) < 0) {
            j->deadline_ms = -1;
            snprintf(err, errlen, "job \"deadline\" must be an RFC 3339 time "
                     "(e.g. \"2026-12-03T06:00:00Z\")");
            return -1;
        }
    }
    return 0;
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
        headId(j, raw, len);
        return -1;
    }
    long bad = jsonUtf8Invalid(raw, len);
    if (bad >= 0) {
        snprintf(err, errlen, "job is not valid UTF-8 (byte 0x%02x at offset %ld)",
                 (unsigned char)raw[bad], bad);
        headId(j, raw, (size_t)bad);
        return -1;
    }
    if (jsonParse(&d, raw, len, JOB_MAX_JSON_TOKENS, JSON_MAX_DEPTH, perr,
                  sizeof(perr)) < 0) {
        snprintf(err, errlen, "job is not valid JSON: %s", perr);
        headId(j, raw, len);
        return -1;
    }
    if (d.tok[0].type != JSMN_OBJECT) {
        snprintf(err, errlen, "job is not a JSON object");
        goto out;
    }

    /* A key twice is refused where it matters: we would read the first,
     * the API may use the last (a max_tokens of 1 reserved, 100000 sent). */
    static const char *const topKeys[] = {"id", "request", "meta", "lane", "deadline"};
    for (int k = 0; k < 5; k++) {
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
    estimateJob(j, &d, req);

    int meta = jsonGet(&d, 0, "meta");
    if (meta >= 0) jsonSpan(&d, meta, &j->meta, &j->meta_len);
    if (laneParse(j, &d, err, errlen) < 0) goto out;
    rc = 0;
out:
    jsonFree(&d);
    return rc;
}

/* ---- count_tokens ------------------------------------------------------- */

int jobCountBody(const job *j, buf *out) {
    static const char *const keep[] = {"model", "system", "tools", "tool_choice",
                                       "thinking", "messages", NULL};
    jsonDoc d;
    char err[64];
    if (jsonParse(&d, j->request, j->request_len, JOB_MAX_JSON_TOKENS, JSON_MAX_DEPTH,
                  err, sizeof(err)) < 0)
        return -1;
    bufReset(out);
    bufAppendStr(out, "{");
    int first = 1;
    for (int k = 0; keep[k]; k++) {
        int v = jsonGet(&d, 0, keep[k]);
        if (v < 0) continue;
        const char *p;
        size_t n;
        jsonSpan(&d, v, &p, &n);
        bufPrintf(out, "%s\"%s\":", first ? "" : ",", keep[k]);
        bufAppend(out, p, n);
        first = 0;
    }
    bufAppendStr(out, "}");
    jsonFree(&d);
    return 0;
}

long long jobCountParse(const char *body, size_t len) {
    jsonDoc d;
    char err[64];
    long long n = -1;
    if (!body || jsonParse(&d, body, len, 64, 4, err, sizeof(err)) < 0) return -1;
    int t = jsonGet(&d, 0, "input_tokens");
    if (t < 0 || jsonInt(&d, t, &n) < 0 || n < 0 || n > 100000000LL) n = -1;
    jsonFree(&d);
    return n;
}
