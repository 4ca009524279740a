/* job.h — parse and validate one job, as LPUSHed by a producer.
 *
 *   {"id": "essay-17", "request": {...}, "meta": {...}}
 *
 * jobParse() checks everything a job must satisfy before any request goes
 * out: JSON object, string id, object request with a string model and an
 * integer max_tokens >= 1, size within the limit. On success the job
 * points into the caller's bytes (which must outlive it) and owns nothing:
 * there is nothing to free. */
#ifndef LF_JOB_H
#define LF_JOB_H

#include <stddef.h>
#include "buf.h"

#define JOB_ID_MAX 512              /* longest id, bytes after unescaping */
#define JOB_MODEL_MAX 128           /* longest model name */
#define JOB_MAX_JSON_TOKENS 4000000 /* jsmn (JSON) tokens in one job */

typedef struct job {
    char id[JOB_ID_MAX + 1];        /* unescaped id, "" when unreadable */
    char model[JOB_MODEL_MAX + 1];  /* request.model */
    long long max_tokens;           /* request.max_tokens */
    const char *request;            /* request object, verbatim */
    size_t request_len;
    const char *meta;               /* meta value, verbatim; NULL when absent */
    size_t meta_len;
    long long input_estimate;       /* input tokens, estimated (estimate.h) */
    long long spend_input;          /* input tokens the spend reservation
                                     * assumes: the upper bound (estimate.h) */
    int spend_unbounded;            /* no bound (a document by url...): count it */
    int has_cache;                  /* some cache_control: input may be
                                     * charged at a cache write's price */
    char prefix[17];                /* cacheable prefix's hash, hex; "" none */
    long long prefix_tokens;        /* its estimate */
    int cache_1h;                   /* a cache_control asks a 1-hour TTL */
    int lane;                       /* JOB_LANE_*: the job's "lane" */
    long long deadline_ms;          /* "deadline" (unix ms), -1 none */
} job;

/* A job's "lane": absent (the fleet's default_lane), or as written. */
enum { JOB_LANE_DEFAULT, JOB_LANE_SYNC, JOB_LANE_BATCH, JOB_LANE_AUTO };
extern const char *const jobLaneNames[4];   /* "", "sync", "batch", "auto" */

/* Parse raw[0..len). Returns 0, or -1 with err set to a clear reason
 * ("job is not JSON: ...", "job has no \"id\"", "request.max_tokens must be
 * an integer >= 1", "job \"lane\" must be ...", ...). Even on failure, j->id holds the id when one could
 * be read, so the error result can carry it. max_bytes 0 = no limit. */
int jobParse(job *j, const char *raw, size_t len, size_t max_bytes, char *err,
             size_t errlen);

/* The body of POST /v1/messages/count_tokens for j: its request's model,
 * system, tools, tool_choice, thinking and messages (the endpoint takes
 * no max_tokens, sampling or metadata). Returns 0, or -1. */
int jobCountBody(const job *j, buf *out);

/* input_tokens of a count_tokens answer, or -1 when it has none (or an
 * absurd one: over 1e8). */
long long jobCountParse(const char *body, size_t len);

#endif
