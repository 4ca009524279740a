/* outcome.h — what an API attempt came to, and the result it writes.
 *
 * outcomeClassify() turns an HTTP exchange (status, body, headers, curl
 * code) into: success with usage and cost, or an error with a type, a
 * message and whether the fleet may retry it. Pure functions: unit-testable
 * without a network. */
#ifndef LF_OUTCOME_H
#define LF_OUTCOME_H

#include <stddef.h>

#include <curl/curl.h>

#include "price.h"
#include "ratelimit.h"

/* The largest token count a usage field may hold (the largest context is
 * about 1M tokens): beyond it an answer is invalid_response. */
#define USAGE_MAX_TOKENS 100000000LL

typedef struct outcome {
    int ok;                     /* 1: a usable 200 response */
    int retryable;              /* errors only: the fleet may try again */
    long http_status;           /* 0 for transport errors */
    char error_type[64];        /* API error type or transport class */
    char error_message[512];    /* human message, never holds the key */
    char model[129];            /* model the response names, "" unknown */
    usage use;                  /* ok only */
    long long retry_after_ms;   /* from headers, -1 when absent */
    int spend_limit;            /* 429 enforced_spend_limit_reached */
} outcome;

/* Why the client cut a response short (outcomeClassify's cut). */
enum { CUT_NONE = 0, CUT_TOO_LARGE = 1, CUT_SLOW = 2 };

/* Classify one attempt. body may be NULL/0. cut: CUT_TOO_LARGE, the body
 * hit the response cap; CUT_SLOW, it trickled (curl_err says how).
 * Never fails: anything unexpected becomes an error. */
void outcomeClassify(outcome *o, CURLcode cc, const char *curl_err,
                     int cut, long status, const char *body,
                     size_t body_len, const rlHeaders *rl);

/* Remove credentials from a string an API or a gateway supplied (an error
 * may quote the refused key): the key itself (when at least 8 bytes) and
 * every "sk-ant-" token become "[redacted]". In place; s stays within cap. */
void scrubSecrets(char *s, size_t cap, const char *key);

/* scrubSecrets on every API-supplied string of an outcome. */
void outcomeScrub(outcome *o, const char *key);

/* Overwrite each occurrence of key in p[0..len) with '*' (the same length:
 * a JSON body stays valid). Returns the number of occurrences. */
int maskKey(char *p, size_t len, const char *key);

#endif
