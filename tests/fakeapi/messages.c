/* messages.c — POST /v1/messages and POST /v1/messages/count_tokens.
 *
 * A request goes through, in order: size, auth, anthropic-version, body
 * validation, model family, spend limit, org cap, faults, rate limits (the
 * buckets of its model class: classes.c). The
 * first that fails answers with the real API's error shape
 *   {"type":"error","error":{"type":T,"message":M},"request_id":R}
 * Admitted requests get a deterministic answer: the output token count and
 * the filler text depend only on --seed and a hash of the body. With no
 * latency configured the answer is sent inline; otherwise the request is
 * held in the scheduler (sched.c) until its deadline.
 *
 * Faults are drawn from the seeded PRNG before the rate limits, so a
 * faulted request consumes no quota. The same draw picks the malformed-
 * response faults (a body that is not JSON, a truncated body, no usage, a
 * huge text, garbage rate-limit headers); those are answers the API gave,
 * so they go through the rate limits and are charged and counted like any
 * success, and only the reply is spoiled. An admitted request counts toward
 * the spend limit and the org cap at once (input + output tokens), so both
 * trip exactly even with answers in flight; a client that leaves before its
 * answer is taken off again.
 *
 * With --caching the input is split at admission: the longest cached
 * prefix is read (not charged to ITPM), the prefix past it is written
 * (charged, and stored in the cache as the request is admitted, so a
 * request admitted while the first is still held already reads it), the
 * rest is plain input. With --headers-at admit the rate-limit headers are
 * taken right after the request is charged and sent with its answer
 * whenever that comes; otherwise they are taken as the answer is sent. */
#include "fakeapi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "json.h"
#include "log.h"

#define MSG_JSON_MAX_TOKENS (1 << 22)   /* tokens in a request body at most */
#define MSG_HUGE_BLOCK (256 * 1024)     /* bytes of huge text per reference */
#define MSG_LONG_HEADER 8000            /* length of the long bad header */

/* ---- Replies ------------------------------------------------------------- */

/* Bring class cls's buckets (-1: the global ones) up to now, so admission
 * and headers see the refill. */
static void msgRefill(int cls, double now) {
    fakeClassRefill(cls, now);
}

/* The garbage that --p-bad-headers sends instead of the rate-limit
 * headers: every name a client may read, none with a usable value. */
static void msgBadHeaders(struct evkeyvalq *h) {
    static const char *const bad[][2] = {
        {"anthropic-ratelimit-requests-limit", "NaN"},
        {"anthropic-ratelimit-requests-remaining", "-1"},
        {"anthropic-ratelimit-requests-reset", "2025-13-45T99:99:99Z"},
        {"anthropic-ratelimit-tokens-limit", "1e309"},
        {"anthropic-ratelimit-tokens-remaining", "lots"},
        {"anthropic-ratelimit-tokens-reset", "never"},
        {"anthropic-ratelimit-input-tokens-limit", "18446744073709551616"},
        {"anthropic-ratelimit-input-tokens-remaining", "12abc"},
        {"anthropic-ratelimit-input-tokens-reset", "yesterday"},
        {"anthropic-ratelimit-output-tokens-limit", "0x7fffffff"},
        {"anthropic-ratelimit-output-tokens-reset", "1712345678"},
        {"retry-after", "soon"},
    };
    char longValue[MSG_LONG_HEADER + 1];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        evhttp_add_header(h, bad[i][0], bad[i][1]);
    /* A number far past any integer type, in a line under 8 KiB so
     * ordinary clients still accept it and the parsing is what is tested. */
    memset(longValue, '9', MSG_LONG_HEADER);
    longValue[MSG_LONG_HEADER] = '\0';
    evhttp_add_header(h, "anthropic-ratelimit-output-tokens-remaining", longValue);
}

/* Send a /v1 response whose body is in fake.out, after anything already in
 * the request's output buffer. rid is its request id; 200s and 429s carry
 * the rate-limit headers of r's class (r NULL: the global buckets): those
 * stamped at its admission when r->snapped, else as they are now, or
 * garbage in their place for a 200 of the bad-headers shape. retryAfter > 0
 * adds retry-after. Counts the response and ends the request's
 * concurrency. */
static void msgSendShaped(struct evhttp_request *req, int status, const char *reason,
                          const char *rid, long long retryAfter, const fakeReq *r) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    evhttp_add_header(h, "request-id", rid);
    if (r && status == 200 && r->shape == FAKE_SHAPE_BAD_HEADERS) {
        msgBadHeaders(h);
    } else if (r && r->snapped && (status == 200 || status == 429)) {
        fakeBucketEmit(h, &r->snap);
    } else if (status == 200 || status == 429) {
        double now = fakeNow();
        int cls = r ? r->cls : -1;
        fakeBucketSet bs;
        fakeRlSnap snap;
        msgRefill(cls, now);
        fakeClassBuckets(cls, &bs);
        fakeBucketSnap(&snap, &bs, now);
        fakeBucketEmit(h, &snap);
    }
    if (retryAfter > 0) {
        char v[24];
        snprintf(v, sizeof(v), "%lld", retryAfter);
        evhttp_add_header(h, "retry-after", v);
    }
    fakeStatsReply(status);
    fakeStatsLeave(req);
    if (r && status == 200 && r->shape == FAKE_SHAPE_TRICKLE)
        fakeSendTrickle(req, status, reason, fake.out.p, fake.out.len);
    else
        fakeSend(req, status, reason, fake.out.p, fake.out.len);
}

/* Start fake.out with the error body's common part, up to the message. */
static void msgErrorBody(const char *type, const char *msg) {
    bufReset(&fake.out);
    bufAppendStr(&fake.out, "{\"type\":\"error\",\"error\":{\"type\":\"");
    bufAppendStr(&fake.out, type);
    bufAppendStr(&fake.out, "\",\"message\":");
    bufAppendJsonString(&fake.out, msg, strlen(msg));
}

static const char *msgReason(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request Entity Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 529: return "Overloaded";
    default: return "Error";
    }
}

/* Answer r (NULL: a request not yet parsed) with an error. retryAfter > 0
 * adds a retry-after header; a 429 counts toward r's class. */
static void msgErrorFor(struct evhttp_request *req, const fakeReq *r, int status,
                        const char *type, const char *msg, long long retryAfter) {
    char rid[40];
    fakeNewId("req_", rid, sizeof(rid));
    msgErrorBody(type, msg);
    bufPrintf(&fake.out, "},\"request_id\":\"%s\"}", rid);
    if (r && status == 429 && r->cls >= 0) fake.classes[r->cls].stats.r429++;
    msgSendShaped(req, status, msgReason(status), rid, retryAfter, r);
}

static void msgError(struct evhttp_request *req, int status, const char *type,
                     const char *msg, long long retryAfter) {
    msgErrorFor(req, NULL, status, type, msg, retryAfter);
}

/* The spend-limit 429: error details, and no retry-after. */
static void msgSpendLimit(const fakeReq *r) {
    struct evhttp_request *req = r->req;
    char rid[40];
    fakeNewId("req_", rid, sizeof(rid));
    msgErrorBody("rate_limit_error", "You have reached your specified API "
                 "usage limits. You will regain access when the limit is "
                 "raised or the period ends.");
    bufPrintf(&fake.out, ",\"details\":{\"error_code\":"
              "\"enforced_spend_limit_reached\"}},\"request_id\":\"%s\"}", rid);
    if (r->cls >= 0) fake.classes[r->cls].stats.r429++;
    msgSendShaped(req, 429, msgReason(429), rid, 0, r);
}

/* ---- The generated answer ------------------------------------------------ */

static const char *const msgWords[32] = {
    "the", "fleet", "token", "bucket", "refill", "queue", "worker", "lease",
    "result", "retry", "model", "latency", "steady", "quiet", "river", "stone",
    "light", "paper", "cloud", "garden", "signal", "answer", "simple", "honest",
    "careful", "small", "green", "north", "window", "harbor", "lantern", "meadow",
};

/* An output length around --output-tokens, from the draw h: exponential
 * (rounded), uniform over [1, 2*mean-1], or the mean itself; at least 1,
 * at most lim. */
static long long msgOutputAround(uint64_t h, long long lim) {
    double u = (double)(h >> 11) / 9007199254740992.0;     /* [0,1) */
    double mean = fake.cfg.outputMean, v;
    long long n;

    switch (fake.cfg.outputDist) {
    case FAKE_DIST_FIXED: v = mean; break;
    case FAKE_DIST_UNIFORM: v = mean < 1 ? 1 : floor(1 + u * (2 * mean - 1)); break;
    default: v = -mean * log1p(-u); break;
    }
    n = v > 1e15 ? (long long)1e15 : llround(v);
    if (n < 1) n = 1;
    return n < lim ? n : lim;
}

/* Output tokens for a body: in [1, max_tokens] (and <= --max-output-tokens),
 * one request in eight running to the limit; with --output-tokens, drawn
 * around its mean whatever max_tokens is, then capped by it. */
static long long msgOutputTokens(uint64_t hash, long long maxTokens) {
    long long lim = maxTokens;
    uint64_t h = fakeMix(hash ^ fakeMix(fake.cfg.seed + 0x5eedULL));

    if (fake.cfg.maxOutputTokens > 0 && fake.cfg.maxOutputTokens < lim)
        lim = fake.cfg.maxOutputTokens;
    if (fake.cfg.outputMean > 0) return msgOutputAround(h, lim);
    if ((h & 7) == 0) return lim;
    return 1 + (long long)((h >> 3) % (uint64_t)lim);
}

/* Append filler words, about 4 characters per output token, to fake.out. */
static void msgFiller(uint64_t hash, long long outputTokens) {
    size_t target = outputTokens * 4 > FAKE_MAX_TEXT ? FAKE_MAX_TEXT
                                                     : (size_t)outputTokens * 4;
    size_t len = 0;
    uint64_t x = fakeMix(hash + fake.cfg.seed);

    for (;;) {
        const char *w = msgWords[x >> 59];
        size_t wl = strlen(w);
        if (len > 0 && len + 1 + wl > target) break;
        if (len > 0) bufAppend(&fake.out, " ", 1);
        bufAppend(&fake.out, w, wl);
        len += wl + (len > 0);
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    }
}

/* Start the success body in fake.out, up to the opening quote of the text. */
static void msgSuccessStart(const fakeReq *r) {
    char id[40];

    fakeNewId("msg_", id, sizeof(id));
    bufReset(&fake.out);
    bufPrintf(&fake.out, "{\"id\":\"%s\",\"type\":\"message\",\"role\":"
              "\"assistant\",\"model\":", id);
    bufAppendJsonString(&fake.out, r->model, strlen(r->model));
    bufAppendStr(&fake.out, ",\"content\":[{\"type\":\"text\",\"text\":\"");
}

/* Append the rest of the success body after the text, with or without the
 * usage object. */
static void msgSuccessEnd(const fakeReq *r, int withUsage) {
    const char *stop = r->outputTokens == r->maxTokens ? "max_tokens" : "end_turn";

    bufPrintf(&fake.out, "\"}],\"stop_reason\":\"%s\",\"stop_sequence\":null", stop);
    if (withUsage && fake.cfg.caching)
        bufPrintf(&fake.out, ",\"usage\":{\"input_tokens\":%lld,\"output_tokens\":%lld,"
                  "\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld,"
                  "\"cache_creation\":{\"ephemeral_5m_input_tokens\":%lld,"
                  "\"ephemeral_1h_input_tokens\":%lld}}",
                  r->inputTokens, r->outputTokens, r->cacheWrite5m + r->cacheWrite1h,
                  r->cacheRead, r->cacheWrite5m, r->cacheWrite1h);
    else if (withUsage)
        bufPrintf(&fake.out, ",\"usage\":{\"input_tokens\":%lld,\"output_tokens\":%lld,"
                  "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}",
                  r->inputTokens, r->outputTokens);
    bufAppendStr(&fake.out, "}");
}

/* The key of the request being answered, for --leak-key. */
static char msgKey[600];

/* Build the success body into fake.out. */
static void msgSuccessBody(const fakeReq *r, int withUsage) {
    msgSuccessStart(r);
    msgFiller(r->bodyHash, r->outputTokens);
    if (fake.cfg.leakKey) {
        bufAppendStr(&fake.out, " key: ");
        bufAppendStr(&fake.out, msgKey);
    }
    msgSuccessEnd(r, withUsage);
}

/* A block of filler text that huge answers reference over and over: plain
 * ASCII words and spaces, so any prefix is a valid JSON string body. It is
 * static, so the references need no cleanup and nothing is copied. */
static const char *msgHugeText(void) {
    static char block[MSG_HUGE_BLOCK];
    static int ready;
    size_t len = 0;
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    if (ready) return block;
    while (len < sizeof(block)) {
        const char *w = msgWords[x >> 59];
        size_t wl = strlen(w);
        if (len + wl + 1 > sizeof(block)) wl = sizeof(block) - len - 1;
        memcpy(block + len, w, wl);
        block[len + wl] = ' ';
        len += wl + 1;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    }
    ready = 1;
    return block;
}

/* The huge success: its head goes straight into out, then
 * cfg.hugeBytes of text as references to the static block (nothing is
 * allocated but the chain links, which libevent frees once the bytes are
 * written or the connection goes away), and the tail is left in fake.out
 * for msgSend to append. */
static void msgHugeBody(const fakeReq *r, struct evbuffer *out) {
    const char *text = msgHugeText();
    long long left = fake.cfg.hugeBytes;

    msgSuccessStart(r);
    if (evbuffer_add(out, fake.out.p, fake.out.len) != 0) goto oom;
    while (left > 0) {
        size_t n = left > MSG_HUGE_BLOCK ? MSG_HUGE_BLOCK : (size_t)left;
        if (evbuffer_add_reference(out, text, n, NULL, NULL) != 0) goto oom;
        left -= (long long)n;
    }
    bufReset(&fake.out);
    msgSuccessEnd(r, 1);
    return;
oom:
    lfLog(LF_ERROR, "event=oom what=huge_body");
    abort();
}

/* ---- Completion ---------------------------------------------------------- */

/* Charge an admitted request: the buckets, the spend limit and the org cap
 * count it now, so they trip exactly, even with answers still in flight. */
static void msgCharge(fakeReq *r, double now) {
    fakeBucketSet bs;

    fakeClassBuckets(r->cls, &bs);
    fakeBucketCharge(bs.requests, 1);
    fakeBucketCharge(bs.input, (double)fakeReqItpm(r));
    if (fake.cfg.otpmReserve) fakeBucketCharge(bs.output, (double)r->maxTokens);
    fake.successes++;
    fake.orgServed += r->inputTokens + r->outputTokens;
    if (fake.cfg.orgCapTokens > 0 && fake.orgCapUntil == 0 &&
        fake.orgServed >= fake.cfg.orgCapTokens) {
        fake.orgCapUntil = now + fake.cfg.orgCapSeconds;
        lfLog(LF_INFO, "event=org_cap_tripped served=%lld seconds=%g",
              fake.orgServed, fake.cfg.orgCapSeconds);
    }
}

/* Settle the output bucket for a finished success and count it served. */
static void msgAccount(const fakeReq *r) {
    fakeBucketSet bs;
    fakeBucket *out;

    fakeClassBuckets(r->cls, &bs);
    out = bs.output;
    msgRefill(r->cls, fakeNow());
    if (fake.cfg.otpmReserve)
        fakeBucketCharge(out, -(double)(r->maxTokens - r->outputTokens));
    else
        fakeBucketCharge(out, (double)r->outputTokens);
    fakeStatsServed(r);
}

/* Answer an admitted request with its success, in its shape. The
 * malformed shapes are still served work: msgAccount counts their tokens in
 * the stats and the output bucket like any success (the API did the work
 * and would bill it, whatever reached the client), and their usage, where
 * they have one, reports the drawn output tokens, not the huge text. */
static void msgComplete(fakeReq *r) {
    char rid[40];
    fakeStats *st = &fake.stats;

    msgAccount(r);
    switch (r->shape) {
    case FAKE_SHAPE_GARBAGE:
        bufReset(&fake.out);
        bufAppendStr(&fake.out, "<html><head><title>upstream error</title></head>"
                     "<body>upstream error</body></html>\n");
        st->garbage++;
        break;
    case FAKE_SHAPE_TRUNCATED:
        msgSuccessBody(r, 1);
        fake.out.len /= 2;          /* Content-Length follows: only the JSON is cut */
        fake.out.p[fake.out.len] = '\0';
        st->truncated++;
        break;
    case FAKE_SHAPE_NO_USAGE:
        msgSuccessBody(r, 0);
        st->noUsage++;
        break;
    case FAKE_SHAPE_HUGE:
        msgHugeBody(r, evhttp_request_get_output_buffer(r->req));
        st->huge++;
        break;
    case FAKE_SHAPE_BAD_HEADERS:
        msgSuccessBody(r, 1);
        st->badHeaders++;
        break;
    default:
        msgSuccessBody(r, 1);
        break;
    }
    fakeNewId("req_", rid, sizeof(rid));
    msgSendShaped(r->req, 200, "OK", rid, 0, r);
}

/* Drop r's connection with a TCP reset, without a response. The request is
 * still attached to the connection, so freeing the connection frees it. */
static void msgReset(fakeReq *r) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct linger lg = {1, 0};

    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    fakeStatsLeave(r->req);
    evhttp_connection_free(r->conn);
}

void fakeMsgFire(fakeReq *r) {
    fakeSchedUnwatch(r);
    if (r->action == FAKE_ACT_RESET) msgReset(r);
    else msgComplete(r);
    free(r);
}

/* A client that leaves before its answer gets no success: the spend limit
 * and org cap forget it, and a reservation goes back to the bucket. */
void fakeMsgAbandon(fakeReq *r) {
    if (r->action != FAKE_ACT_REPLY) return;
    if (fake.successes > 0) fake.successes--;
    fake.orgServed -= r->inputTokens + r->outputTokens;
    if (fake.orgServed < 0) fake.orgServed = 0;
    fakeBucketSet bs;
    fakeClassBuckets(r->cls, &bs);
    if (fake.cfg.otpmReserve && bs.output->limit > 0) {
        fakeBucketRefill(bs.output, fakeNow());
        fakeBucketCharge(bs.output, -(double)r->maxTokens);
    }
}

void fakeMsgResetLimits(void) {
    fake.orgServed = 0;
    fake.orgCapUntil = 0;
    fake.successes = 0;
}

/* ---- Request checks ------------------------------------------------------ */

const char *fakeAuthError(struct evhttp_request *req, char *m, size_t mlen) {
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *key = evhttp_find_header(h, "x-api-key");
    const char *auth = evhttp_find_header(h, "authorization");

    if ((!key || !*key) && auth && strncasecmp(auth, "Bearer ", 7) == 0)
        key = auth + 7;
    if (!key || !*key) return "x-api-key header is required";
    snprintf(msgKey, sizeof(msgKey), "%s", strpbrk(key, "\"\\") ? "?" : key);
    if (fake.cfg.apiKey && strcmp(key, fake.cfg.apiKey) != 0) {
        snprintf(m, mlen, "invalid x-api-key%s%s", fake.cfg.leakKey ? ": " : "",
                 fake.cfg.leakKey ? msgKey : "");
        return m;
    }
    return NULL;
}

/* 1 when the request carries an acceptable key, else answers 401 and
 * returns 0. */
static int msgAuth(struct evhttp_request *req) {
    char m[700];
    const char *err = fakeAuthError(req, m, sizeof(m));

    if (err) msgError(req, 401, "authentication_error", err, 0);
    return err == NULL;
}

/* 1 when model names a known family (claude-opus-, claude-sonnet-,
 * claude-haiku-, claude-3-). */
static int msgKnownModel(const char *model) {
    static const char *const families[] = {
        "claude-opus-", "claude-sonnet-", "claude-haiku-", "claude-3-",
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        if (strncmp(model, families[i], strlen(families[i])) == 0 &&
            model[strlen(families[i])] != '\0')
            return 1;
    return 0;
}

/* The parsed, validated parts of a request body. */
typedef struct msgBody {
    jsonDoc doc;                    /* tokens over the body */
    long long maxTokens;            /* max_tokens, 0 when not required */
    char model[FAKE_MODEL_MAX];     /* unescaped model id */
} msgBody;

/* Check the parsed body mb->doc of a /v1/messages (needMax) or count_tokens
 * request. Returns NULL when it is valid (mb->model and mb->maxTokens
 * set), else the error's message, with *status 400 or 404 (an unknown
 * model, reported once the rest is known valid). */
static const char *msgCheck(msgBody *mb, int needMax, int *status, char *err, size_t errlen) {
    const jsonDoc *d = &mb->doc;
    const char *msg = NULL;
    int i, model = -1;

    *status = 400;
    mb->maxTokens = 0;
    if (d->tok[0].type != JSMN_OBJECT) {
        msg = "request body: Input should be a JSON object";
    } else if ((i = jsonGet(d, 0, "model")) < 0) {
        msg = "model: Field required";
    } else if (d->tok[i].type != JSMN_STRING) {
        msg = "model: Input should be a valid string";
    } else if (jsonStr(d, i, mb->model, sizeof(mb->model)) < 0 ||
               !msgKnownModel(mb->model)) {
        model = i;
    }
    if (!msg && needMax) {
        if ((i = jsonGet(d, 0, "max_tokens")) < 0)
            msg = "max_tokens: Field required";
        else if (jsonInt(d, i, &mb->maxTokens) != 0)
            msg = "max_tokens: Input should be a valid integer";
        else if (mb->maxTokens < 1)
            msg = "max_tokens: Input should be greater than or equal to 1";
    }
    if (!msg) {
        if ((i = jsonGet(d, 0, "messages")) < 0)
            msg = "messages: Field required";
        else if (d->tok[i].type != JSMN_ARRAY)
            msg = "messages: Input should be a valid list";
        else if (d->tok[i].size == 0)
            msg = "messages: List should have at least 1 item";
    }
    if (!msg && model >= 0) {
        int n = jsonRawLen(d, model);
        snprintf(err, errlen, "model: %.*s", n > 100 ? 100 : n, jsonRaw(d, model));
        msg = err;
        *status = 404;
    }
    return msg;
}

/* Parse body into mb->doc and check it. Returns 0 (the caller frees
 * mb->doc), or -1 with the message in err and *status; nothing to free. */
static int msgParse(const char *body, size_t len, int needMax, msgBody *mb, int *status,
                    char *err, size_t errlen) {
    char perr[200];
    const char *msg;

    *status = 400;
    if (jsonParse(&mb->doc, body, len, MSG_JSON_MAX_TOKENS, 0, perr, sizeof(perr)) != 0) {
        snprintf(err, errlen, "request body: %s", perr);
        return -1;
    }
    if ((msg = msgCheck(mb, needMax, status, err, errlen)) != NULL) {
        if (msg != err) snprintf(err, errlen, "%s", msg);
        jsonFree(&mb->doc);
        return -1;
    }
    return 0;
}

/* Validate the headers and body of a /v1/messages (needMax) or count_tokens
 * request. Returns 0 with mb->doc to free, or -1 after answering. */
static int msgValidate(struct evhttp_request *req, const char *body, size_t len,
                       int needMax, msgBody *mb) {
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    char err[260];
    int status;

    if (!evhttp_find_header(h, "anthropic-version")) {
        msgError(req, 400, "invalid_request_error", "anthropic-version: header is required", 0);
        return -1;
    }
    if (msgParse(body, len, needMax, mb, &status, err, sizeof(err)) != 0) {
        msgError(req, status, status == 404 ? "not_found_error" : "invalid_request_error", err, 0);
        return -1;
    }
    return 0;
}

/* The body of req, contiguous. Answers 413 (and returns NULL) when it is
 * larger than the API accepts. */
static const char *msgBodyOf(struct evhttp_request *req, size_t *len) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *p;

    *len = evbuffer_get_length(in);
    if (*len > (size_t)FAKE_MAX_BODY) {
        msgError(req, 413, "request_too_large",
                 "Request exceeds the maximum allowed number of bytes.", 0);
        return NULL;
    }
    p = *len ? (const char *)evbuffer_pullup(in, -1) : "";
    return p ? p : "";
}

/* Common start of both endpoints: counts the request, checks method, size
 * and key. Returns the body, or NULL after answering. */
static const char *msgBegin(struct evhttp_request *req, size_t *len) {
    fakeStatsRequest();
    fakeStatsEnter(req);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        msgError(req, 405, "invalid_request_error", "Method Not Allowed", 0);
        return NULL;
    }
    const char *body = msgBodyOf(req, len);
    if (!body || !msgAuth(req)) return NULL;
    return body;
}

/* ---- Admission ----------------------------------------------------------- */

/* Seconds until the org cap lets requests through again (0 = it does). */
static double msgOrgCapWait(double now) {
    if (fake.cfg.orgCapTokens <= 0) return 0;
    if (fake.orgCapUntil > 0 && now >= fake.orgCapUntil) {
        fake.orgCapUntil = 0;
        fake.orgServed = 0;
    }
    if (fake.orgCapUntil == 0 && fake.orgServed >= fake.cfg.orgCapTokens)
        fake.orgCapUntil = now + fake.cfg.orgCapSeconds;
    return fake.orgCapUntil > now ? fake.orgCapUntil - now : 0;
}

/* Seconds until a request with these needs fits the buckets bs (0 = now);
 * *which names the bucket that is furthest. */
static double msgLimitWait(const fakeBucketSet *bs, long long in, long long maxTokens,
                           const char **which) {
    double w, worst = fakeBucketWait(bs->requests, 1);

    *which = "requests per minute";
    if ((w = fakeBucketWait(bs->input, (double)in)) > worst) {
        worst = w;
        *which = "input tokens per minute";
    }
    w = fake.cfg.otpmReserve ? fakeBucketWait(bs->output, (double)maxTokens)
                             : fakeBucketWait(bs->output, 1e-9);
    if (w > worst) {
        worst = w;
        *which = "output tokens per minute";
    }
    return worst;
}

/* Whole seconds for retry-after: rounded up, at least 1. */
static long long msgRetryAfter(double wait) {
    long long s = (long long)ceil(wait);
    return s < 1 ? 1 : s;
}

/* Draw the fault for this request: returns 500, 529, FAKE_ACT_RESET,
 * FAKE_ACT_HANG or 0 for none, and sets *shape to the FAKE_SHAPE_* its
 * success will have if it is admitted. One PRNG draw per request when any
 * fault is enabled; the probabilities are consecutive bands of it, so at
 * most one fault applies (when they sum past 1 the later ones get what is
 * left). With only the older faults enabled the sequence is as it was. */
static int msgFault(int *shape) {
    const fakeConfig *c = &fake.cfg;
    double u;

    *shape = FAKE_SHAPE_OK;
    if (c->p500 <= 0 && c->p529 <= 0 && c->pReset <= 0 && c->pHang <= 0 &&
        c->pGarbage <= 0 && c->pTruncated <= 0 && c->pNoUsage <= 0 &&
        c->pHuge <= 0 && c->pBadHeaders <= 0 && c->pTrickle <= 0)
        return 0;
    u = fakeRandomUnit();
    if ((u -= c->p500) < 0) return 500;
    if ((u -= c->p529) < 0) return 529;
    if ((u -= c->pReset) < 0) return FAKE_ACT_RESET;
    if ((u -= c->pHang) < 0) return FAKE_ACT_HANG;
    if ((u -= c->pGarbage) < 0) *shape = FAKE_SHAPE_GARBAGE;
    else if ((u -= c->pTruncated) < 0) *shape = FAKE_SHAPE_TRUNCATED;
    else if ((u -= c->pNoUsage) < 0) *shape = FAKE_SHAPE_NO_USAGE;
    else if ((u -= c->pHuge) < 0) *shape = FAKE_SHAPE_HUGE;
    else if ((u -= c->pBadHeaders) < 0) *shape = FAKE_SHAPE_BAD_HEADERS;
    else if ((u -= c->pTrickle) < 0) *shape = FAKE_SHAPE_TRICKLE;
    return 0;
}

/* Milliseconds until the answer of a success with this many tokens. */
static double msgDelayMs(long long outputTokens) {
    double ms = fake.cfg.latencyMs + fake.cfg.perTokenMs * (double)outputTokens;
    if (fake.cfg.jitterMs > 0) ms += fakeRandomUnit() * fake.cfg.jitterMs;
    return ms;
}

/* A held copy of the request, scheduled at now + delayMs unless hung. */
static void msgHold(const fakeReq *tmpl, int action, double delayMs) {
    fakeReq *r = malloc(sizeof(*r));
    if (!r) {
        lfLog(LF_ERROR, "event=oom what=request");
        abort();
    }
    *r = *tmpl;
    r->action = action;
    r->heapIdx = -1;
    r->deadline = fakeNow() + delayMs / 1000.0;
    /* The body is no longer needed: free its memory while we wait. */
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    evbuffer_drain(in, evbuffer_get_length(in));
    fakeSchedWatchClose(r);
    if (action != FAKE_ACT_HANG) fakeSchedAdd(r);
}

/* Split r's input between the cache and the rest, from its breakpoints
 * tc: the longest cached prefix is read, the prefix past it up to the last
 * breakpoint is written (each stretch at the ttl of the breakpoint that
 * ends it), the rest is plain input. Prefixes under FAKE_CACHE_MIN tokens
 * are neither read nor written. Nothing is stored yet (msgCacheStore). */
static void msgCacheSplit(fakeReq *r, const fakeTokCount *tc, double now) {
    long long done = 0;
    int k, hit = -1;

    r->cacheRead = r->cacheWrite5m = r->cacheWrite1h = 0;
    for (k = tc->nbreaks - 1; k >= 0; k--)
        if (tc->breaks[k].tokens >= FAKE_CACHE_MIN && fakeCacheLive(tc->breaks[k].hash, now)) {
            hit = k;
            done = r->cacheRead = tc->breaks[k].tokens;
            break;
        }
    for (k = hit + 1; k < tc->nbreaks; k++) {
        const fakeTokBreak *bk = &tc->breaks[k];
        if (bk->tokens < FAKE_CACHE_MIN || bk->tokens <= done) continue;
        if (bk->ttl1h) r->cacheWrite1h += bk->tokens - done;
        else r->cacheWrite5m += bk->tokens - done;
        done = bk->tokens;
    }
    r->inputTokens = tc->total - done;
}

/* An admitted request writes its prefixes, and refreshes those it read. */
static void msgCacheStore(const fakeTokCount *tc, double now) {
    for (int k = 0; k < tc->nbreaks; k++)
        if (tc->breaks[k].tokens >= FAKE_CACHE_MIN)
            fakeCacheStore(tc->breaks[k].hash, tc->breaks[k].ttl1h ? 3600 : 300, now);
}

/* Faults, then the spend limit, org cap and buckets; admit or refuse.
 * r has model, class, tokens and hash filled in; tc holds its cache
 * breakpoints. */
static void msgAdmit(fakeReq *r, const fakeTokCount *tc) {
    double now = fakeNow(), wait;
    const char *which;
    char m[200];
    int fault, shape;
    fakeBucketSet bs;

    if (r->cls >= 0) fake.classes[r->cls].stats.requests++;
    if (fake.cfg.spendLimitAfter > 0 && fake.successes >= fake.cfg.spendLimitAfter) {
        msgSpendLimit(r);
        return;
    }
    if ((wait = msgOrgCapWait(now)) > 0) {
        msgErrorFor(r->req, r, 429, "rate_limit_error", "This request would exceed "
                    "your organization's token limit. Please try again later.",
                    msgRetryAfter(wait));
        return;
    }
    fault = msgFault(&shape);
    if (fault == 500) {
        msgError(r->req, 500, "api_error", "Internal server error", 0);
        return;
    }
    if (fault == 529) {
        msgError(r->req, 529, "overloaded_error", "Overloaded", 0);
        return;
    }
    if (fault == FAKE_ACT_RESET || fault == FAKE_ACT_HANG) {
        if (fault == FAKE_ACT_RESET) fake.stats.resets++;
        else fake.stats.hangs++;
        msgHold(r, fault, fault == FAKE_ACT_RESET ? fake.cfg.latencyMs : 0);
        return;
    }
    msgRefill(r->cls, now);
    fakeClassBuckets(r->cls, &bs);
    if (fake.cfg.caching) msgCacheSplit(r, tc, now);
    if ((wait = msgLimitWait(&bs, fakeReqItpm(r), r->maxTokens, &which)) > 0) {
        snprintf(m, sizeof(m), "This request would exceed your organization's "
                 "rate limit of %s. Please try again later.", which);
        msgErrorFor(r->req, r, 429, "rate_limit_error", m, msgRetryAfter(wait));
        return;
    }
    r->shape = shape;           /* a malformed answer is charged all the same */
    r->outputTokens = msgOutputTokens(r->bodyHash, r->maxTokens);
    msgCharge(r, now);
    if (fake.cfg.caching) msgCacheStore(tc, now);
    if (fake.cfg.headersAtAdmit) {
        fakeBucketSnap(&r->snap, &bs, now);
        r->snapped = 1;
    }
    double delay = msgDelayMs(r->outputTokens);
    if (delay <= 0) msgComplete(r);
    else msgHold(r, FAKE_ACT_REPLY, delay);
}

/* ---- Endpoints ----------------------------------------------------------- */

void fakeMsgHandle(struct evhttp_request *req, void *arg) {
    size_t len;
    const char *body;
    msgBody mb;
    fakeReq r;
    fakeTokCount tc;
    (void)arg;

    if (!(body = msgBegin(req, &len))) return;
    if (msgValidate(req, body, len, 1, &mb) != 0) return;
    memset(&r, 0, sizeof(r));
    r.req = req;
    r.conn = evhttp_request_get_connection(req);
    r.maxTokens = mb.maxTokens;
    fakeTokCountDoc(&mb.doc, mb.model, &tc);
    r.inputTokens = tc.total;
    r.bodyHash = fakeHash(body, len);
    r.cls = fakeClassOf(mb.model);
    memcpy(r.model, mb.model, sizeof(r.model));
    jsonFree(&mb.doc);
    fakeStatsBody(r.bodyHash);
    msgAdmit(&r, &tc);
}

void fakeCountHandle(struct evhttp_request *req, void *arg) {
    size_t len;
    const char *body;
    msgBody mb;
    char rid[40];
    fakeTokCount tc;
    fakeReq r;
    (void)arg;

    if (!(body = msgBegin(req, &len))) return;
    if (fake.cfg.countStatus >= 400 && fake.cfg.countStatus <= 599) {
        msgError(req, (int)fake.cfg.countStatus, "api_error", "count_tokens is down (--count-status)", 0);
        return;
    }
    if (msgValidate(req, body, len, 0, &mb) != 0) return;
    fakeTokCountDoc(&mb.doc, mb.model, &tc);
    jsonFree(&mb.doc);
    memset(&r, 0, sizeof(r));
    r.cls = fakeClassOf(mb.model);
    fakeNewId("req_", rid, sizeof(rid));
    bufReset(&fake.out);
    bufPrintf(&fake.out, "{\"input_tokens\":%lld}", tc.total);
    msgSendShaped(req, 200, "OK", rid, 0, &r);
}

void fakeNotFoundHandle(struct evhttp_request *req, void *arg) {
    (void)arg;
    fakeStatsRequest();
    fakeStatsEnter(req);
    msgError(req, 404, "not_found_error", "Not Found", 0);
}

/* ---- For the Message Batches endpoints (batches.c) ------------------------ */

int fakeMsgPrepare(const char *body, size_t len, fakeReq *r, const char **type,
                   char *err, size_t errlen) {
    msgBody mb;
    fakeTokCount tc;
    int status;

    memset(r, 0, sizeof(*r));
    r->cls = -1;
    if (msgParse(body, len, 1, &mb, &status, err, errlen) != 0) {
        *type = status == 404 ? "not_found_error" : "invalid_request_error";
        return -1;
    }
    fakeTokCountDoc(&mb.doc, mb.model, &tc);
    jsonFree(&mb.doc);
    r->maxTokens = mb.maxTokens;
    r->inputTokens = tc.total;
    r->bodyHash = fakeHash(body, len);
    r->cls = fakeClassOf(mb.model);
    memcpy(r->model, mb.model, sizeof(r->model));
    r->outputTokens = msgOutputTokens(r->bodyHash, r->maxTokens);
    if (fake.cfg.caching) {
        double now = fakeNow();
        msgCacheSplit(r, &tc, now);
        msgCacheStore(&tc, now);
    }
    return 0;
}

void fakeMsgAnswer(const fakeReq *r) {
    msgSuccessBody(r, 1);
}

void fakeMsgErrorJson(const char *type, const char *msg) {
    msgErrorBody(type, msg);
    bufAppendStr(&fake.out, "}}");
}
