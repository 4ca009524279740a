/* ratelimit.h — the API's rate-limit response headers.
 *
 * Feed every raw header line of a response to rlParseLine(); it keeps the
 * ones that matter: anthropic-ratelimit-{requests,tokens,input-tokens,
 * output-tokens}-{limit,remaining,reset}, retry-after, retry-after-ms,
 * x-should-retry and request-id. Names are case-insensitive, values are
 * trimmed. A garbage value never crashes and never poisons the rest: the
 * field stays unset and rlParseLine() says why. */
#ifndef LF_RATELIMIT_H
#define LF_RATELIMIT_H

#include <stddef.h>

typedef struct rlBucket {
    long long limit;        /* -1 when the header was absent or garbage */
    long long remaining;    /* -1 likewise */
    long long reset_ms;     /* epoch ms of full replenishment, -1 likewise */
} rlBucket;

typedef struct rlHeaders {
    rlBucket requests;      /* anthropic-ratelimit-requests-* */
    rlBucket tokens;        /* anthropic-ratelimit-tokens-* (most restrictive) */
    rlBucket input;         /* anthropic-ratelimit-input-tokens-* */
    rlBucket output;        /* anthropic-ratelimit-output-tokens-* */
    long long retry_after_ms;   /* retry-after-ms, else retry-after x 1000; -1 absent */
    int should_retry;       /* x-should-retry: 1 true, 0 false, -1 absent */
    char request_id[96];    /* request-id, "" when absent (truncated to fit) */
} rlHeaders;

/* Set every field to "absent". */
void rlInit(rlHeaders *h);

/* Parse one header line as libcurl's header callback delivers it
 * ("Name: value\r\n"; the status line and the blank line are fine too).
 * Returns 1 when the line was a known header and was stored, 0 when it is
 * not one of ours, -1 when it is ours but the value is garbage (err says
 * which header and why; the field stays absent). */
int rlParseLine(rlHeaders *h, const char *line, size_t len, char *err,
                size_t errlen);

#endif
