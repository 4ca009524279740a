/* batches.c — the Message Batches endpoints:
 *
 *   POST   /v1/messages/batches               create
 *   GET    /v1/messages/batches               list, newest first (limit,
 *                                              after_id, before_id)
 *   GET    /v1/messages/batches/{id}          retrieve
 *   POST   /v1/messages/batches/{id}/cancel   cancel
 *   GET    /v1/messages/batches/{id}/results  the results, JSONL, streamed
 *   DELETE /v1/messages/batches/{id}          delete an ended batch
 *
 * A batch is checked whole at creation (the request list, each custom_id
 * and its uniqueness; a request's params are checked as /v1/messages
 * would, but a bad one only makes that request `errored`, as the API
 * validates params asynchronously). Each request gets a processing time,
 * a draw in (0, --batch-ms] from its body's hash, its place and the batches
 * created before; the batch ends when its
 * last request is processed, at --batch-expire-ms (the rest `expired`),
 * or just after a cancel (the rest `canceled`). As with the API, every
 * request counts as `processing` until the whole batch ends. Nothing runs
 * on a timer: the state follows from the clock whenever it is looked at,
 * and an ended batch is counted in /_stats (batches.*) the first time any
 * batch endpoint or /_stats looks.
 *
 * Results go out in an order that is not the request order (a stride
 * permutation), a chunk at a time as the client reads: a batch of any size
 * streams in bounded memory. Usage is that of the same request through
 * /v1/messages (prompt caching too, as at creation); the price is the
 * client's business.
 *
 * Limits (off by default): --batch-rpm, the HTTP rate of these endpoints
 * (429 with retry-after); --batch-queue, requests waiting to be processed
 * per model class (a create that would pass it: 429); --batch-max-requests
 * (100,000) and 256 MB per batch (400 / 413). Faults: --batch-p-errored, a
 * request that ends `errored` with an api_error (retryable). */
#include "fakeapi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "json.h"
#include "log.h"
#include "rfc3339.h"

#define BATCH_MAX_BYTES   (256LL * 1024 * 1024)
#define BATCH_JSON_TOKENS (1 << 27)
#define BATCH_CANCEL_S    0.1           /* a cancel ends the batch this soon */
#define BATCH_CHUNK       (256 * 1024)  /* results bytes queued per write */

enum { ITEM_OK = 0, ITEM_INVALID, ITEM_FAULT };
enum { CNT_PROCESSING, CNT_SUCCEEDED, CNT_ERRORED, CNT_CANCELED, CNT_EXPIRED, CNT_N };
static const char *const cntNames[CNT_N] = {
    "processing", "succeeded", "errored", "canceled", "expired",
};

/* One request of a batch: what its result needs, nothing more. */
typedef struct batchItem {
    char *customId;
    char *model;                /* NULL when its params were invalid */
    char *errMsg;               /* ITEM_INVALID: why */
    const char *errType;        /* ITEM_INVALID: the error's type */
    int kind;                   /* ITEM_* */
    int cls;
    float doneAt;               /* seconds after creation it is processed */
    long long inputTokens, cacheRead, cacheWrite5m, cacheWrite1h;
    long long outputTokens, maxTokens;
    uint64_t bodyHash;
} batchItem;

typedef struct fakeBatch {
    char id[48];
    long long createdMs;        /* unix ms */
    double created;             /* monotonic seconds */
    double processedAt;         /* monotonic: the last request is processed */
    double cancelAt;            /* monotonic, 0 = not canceled */
    long long cancelMs;         /* unix ms of the cancel */
    int ended;                  /* counted (batchEnd) */
    int deleted;                /* gone from list/retrieve; freed when unread */
    int readers;                /* results streams open on it */
    long long counts[CNT_N];    /* once ended */
    long long endedMs;
    int n;
    batchItem *items;
} fakeBatch;

static fakeBatch **batches;     /* in creation order */
static int nbatches, capbatches;
static fakeBucket batchRate;    /* --batch-rpm */
static long long batchRateLimit = -1;

/* ---- State over time ----------------------------------------------------- */

static double expireAt(const fakeBatch *b) {
    return b->created + fake.cfg.batchExpireMs / 1000.0;
}

/* Monotonic time the batch ends (or ended). */
static double endAt(const fakeBatch *b) {
    double t = b->processedAt, e = expireAt(b);
    if (e < t) t = e;
    if (b->cancelAt > 0 && b->cancelAt + BATCH_CANCEL_S < t) t = b->cancelAt + BATCH_CANCEL_S;
    return t;
}

/* The result kind of item it of an ended batch (CNT_*): requests not
 * processed by the cancel (when it came before the expiry) or the expiry
 * are canceled or expired. */
static int itemResult(const fakeBatch *b, const batchItem *it) {
    int canceled = b->cancelAt > 0 && b->cancelAt < expireAt(b);
    double cut = (canceled ? b->cancelAt : expireAt(b)) - b->created;
    if (it->kind == ITEM_INVALID) return CNT_ERRORED;
    if (it->doneAt > cut) return canceled ? CNT_CANCELED : CNT_EXPIRED;
    return it->kind == ITEM_FAULT ? CNT_ERRORED : CNT_SUCCEEDED;
}

/* Count an ended batch once: its request counts and what it served. */
static void batchEnd(fakeBatch *b, double now) {
    fakeBatchStats *st = &fake.batchStats;
    if (b->ended || now < endAt(b)) return;
    b->ended = 1;
    b->endedMs = b->createdMs + (long long)((endAt(b) - b->created) * 1000);
    memset(b->counts, 0, sizeof(b->counts));
    for (int i = 0; i < b->n; i++) {
        const batchItem *it = &b->items[i];
        int k = itemResult(b, it);
        b->counts[k]++;
        if (k != CNT_SUCCEEDED) continue;
        st->inputTokens += it->inputTokens;
        st->outputTokens += it->outputTokens;
        st->cacheWrite += it->cacheWrite5m + it->cacheWrite1h;
        st->cacheRead += it->cacheRead;
    }
    st->succeeded += b->counts[CNT_SUCCEEDED];
    st->errored += b->counts[CNT_ERRORED];
    st->canceled += b->counts[CNT_CANCELED];
    st->expired += b->counts[CNT_EXPIRED];
}

void fakeBatchTick(void) {
    double now = fakeNow();
    for (int i = 0; i < nbatches; i++) batchEnd(batches[i], now);
}

static void batchFree(fakeBatch *b) {
    for (int i = 0; i < b->n; i++) {
        free(b->items[i].customId);
        free(b->items[i].model);
        free(b->items[i].errMsg);
    }
    free(b->items);
    free(b);
}

/* Drop b from the list; freed now, or by its last results reader. */
static void batchDrop(fakeBatch *b) {
    for (int i = 0; i < nbatches; i++)
        if (batches[i] == b) {
            memmove(&batches[i], &batches[i + 1], sizeof(*batches) * (size_t)(nbatches - i - 1));
            nbatches--;
            break;
        }
    b->deleted = 1;
    if (!b->readers) batchFree(b);
}

void fakeBatchReset(void) {
    while (nbatches) batchDrop(batches[nbatches - 1]);
    memset(&fake.batchStats, 0, sizeof(fake.batchStats));
    batchRateLimit = -1;
}

static fakeBatch *batchFind(const char *id, size_t len) {
    for (int i = 0; i < nbatches; i++)
        if (strlen(batches[i]->id) == len && memcmp(batches[i]->id, id, len) == 0)
            return batches[i];
    return NULL;
}

/* Requests of class cls in batches still processing. */
static long long queued(int cls, double now) {
    long long n = 0;
    for (int i = 0; i < nbatches; i++) {
        fakeBatch *b = batches[i];
        batchEnd(b, now);
        if (b->ended) continue;
        for (int k = 0; k < b->n; k++) n += b->items[k].cls == cls;
    }
    return n;
}

/* ---- Replies ------------------------------------------------------------- */

/* Send fake.out with status; rid: its request-id (NULL: a new one). */
static void batchSend(struct evhttp_request *req, int status, const char *reason,
                      const char *rid, long long retryAfter) {
    char id[40];
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (!rid) {
        fakeNewId("req_", id, sizeof(id));
        rid = id;
    }
    evhttp_add_header(h, "request-id", rid);
    if (retryAfter > 0) {
        char v[24];
        snprintf(v, sizeof(v), "%lld", retryAfter);
        evhttp_add_header(h, "retry-after", v);
    }
    fake.batchStats.status[status < 600 ? status : 599]++;
    fakeSend(req, status, reason, fake.out.p, fake.out.len);
}

/* An error in the API's shape, its request_id in the body and the header. */
static void batchError(struct evhttp_request *req, int status, const char *type,
                       const char *msg, long long retryAfter) {
    static const struct { int status; const char *reason; } reasons[] = {
        {400, "Bad Request"}, {401, "Unauthorized"}, {404, "Not Found"},
        {405, "Method Not Allowed"}, {413, "Request Entity Too Large"},
        {429, "Too Many Requests"},
    };
    const char *reason = "Error";
    char rid[40];
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status) reason = reasons[i].reason;
    fakeNewId("req_", rid, sizeof(rid));
    fakeMsgErrorJson(type, msg);
    fake.out.len--;                                     /* the closing brace */
    bufPrintf(&fake.out, ",\"request_id\":\"%s\"}", rid);
    batchSend(req, status, reason, rid, retryAfter);
}

static void timeField(buf *o, const char *name, long long ms) {
    char t[40];
    bufPrintf(o, ",\"%s\":", name);
    if (ms <= 0 || rfc3339Format(ms, t, sizeof(t)) < 0) bufAppendStr(o, "null");
    else bufPrintf(o, "\"%s\"", t);
}

/* The message_batch object of b into o. host: the Host header, for the
 * results_url. */
static void batchJson(buf *o, fakeBatch *b, const char *host) {
    double now = fakeNow();
    batchEnd(b, now);
    const char *status = b->ended ? "ended" : b->cancelAt > 0 ? "canceling" : "in_progress";
    bufPrintf(o, "{\"id\":\"%s\",\"type\":\"message_batch\",\"processing_status\":\"%s\","
              "\"request_counts\":{", b->id, status);
    for (int k = 0; k < CNT_N; k++)
        bufPrintf(o, "%s\"%s\":%lld", k ? "," : "", cntNames[k],
                  b->ended ? b->counts[k] : k == CNT_PROCESSING ? b->n : 0);
    bufAppendStr(o, "}");
    timeField(o, "ended_at", b->ended ? b->endedMs : 0);
    timeField(o, "created_at", b->createdMs);
    timeField(o, "expires_at", b->createdMs + (long long)fake.cfg.batchExpireMs);
    timeField(o, "archived_at", 0);
    timeField(o, "cancel_initiated_at", b->cancelMs);
    if (b->ended)
        bufPrintf(o, ",\"results_url\":\"http://%s/v1/messages/batches/%s/results\"}",
                  host, b->id);
    else
        bufAppendStr(o, ",\"results_url\":null}");
}

/* The Host the client called, for results_url (one that would break the
 * JSON string: the loopback address instead). */
static const char *hostOf(struct evhttp_request *req) {
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "host");
    return host && !strpbrk(host, "\"\\") ? host : "127.0.0.1";
}

static void batchReply(struct evhttp_request *req, fakeBatch *b) {
    bufReset(&fake.out);
    batchJson(&fake.out, b, hostOf(req));
    batchSend(req, 200, "OK", NULL, 0);
}

/* ---- Create -------------------------------------------------------------- */

static int customIdOk(const jsonDoc *d, int i) {
    if (d->tok[i].type != JSMN_STRING) return 0;
    int n = jsonRawLen(d, i);
    const char *s = jsonRaw(d, i);
    if (n < 1 || n > 64) return 0;
    for (int k = 0; k < n; k++) {
        char c = s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Fill it from the params at token p of d. */
static void itemPrepare(batchItem *it, const jsonDoc *d, int p, int idx, double span) {
    const char *body, *type;
    size_t len;
    char err[300];
    fakeReq r;

    jsonSpan(d, p, &body, &len);
    if (fakeMsgPrepare(body, len, &r, &type, err, sizeof(err)) != 0) {
        it->kind = ITEM_INVALID;
        it->errType = type;
        it->errMsg = strdup(err);
        it->cls = -1;
        it->bodyHash = fakeHash(body, len);
    } else {
        it->model = strdup(r.model);
        it->cls = r.cls;
        it->inputTokens = r.inputTokens;
        it->cacheRead = r.cacheRead;
        it->cacheWrite5m = r.cacheWrite5m;
        it->cacheWrite1h = r.cacheWrite1h;
        it->outputTokens = r.outputTokens;
        it->maxTokens = r.maxTokens;
        it->bodyHash = r.bodyHash;
        if (fake.cfg.batchPErrored > 0 && fakeRandomUnit() < fake.cfg.batchPErrored)
            it->kind = ITEM_FAULT;
    }
    /* (the batches created before this one count too: a request sent
     * again in another batch gets another time, as load differs) */
    uint64_t h = fakeMix(it->bodyHash ^ fakeMix(fake.cfg.seed + 0xba7c4ULL + (uint64_t)idx +
                                                ((uint64_t)fake.batchStats.created << 32)));
    double u = (double)((h >> 11) + 1) / 9007199254740992.0;       /* (0,1] */
    it->doneAt = (float)(span * u);
}

/* Why the requests at token reqs of d cannot form a batch, or NULL. */
static const char *checkRequests(const jsonDoc *d, int reqs, char *m, size_t mlen) {
    if (reqs < 0) return "requests: Field required";
    if (d->tok[reqs].type != JSMN_ARRAY) return "requests: Input should be a valid list";
    if (d->tok[reqs].size == 0) return "requests: List should have at least 1 item";
    if (d->tok[reqs].size > fake.cfg.batchMaxRequests) {
        snprintf(m, mlen, "requests: List should have at most %lld items",
                 fake.cfg.batchMaxRequests);
        return m;
    }
    int i = reqs + 1;
    for (int k = 0; k < d->tok[reqs].size; k++, i = jsonSkip(d, i)) {
        int c = d->tok[i].type == JSMN_OBJECT ? jsonGet(d, i, "custom_id") : -1;
        int p = d->tok[i].type == JSMN_OBJECT ? jsonGet(d, i, "params") : -1;
        if (d->tok[i].type != JSMN_OBJECT)
            snprintf(m, mlen, "requests.%d: Input should be a valid object", k);
        else if (c < 0)
            snprintf(m, mlen, "requests.%d.custom_id: Field required", k);
        else if (!customIdOk(d, c))
            snprintf(m, mlen, "requests.%d.custom_id: String should match pattern "
                     "'^[a-zA-Z0-9_-]{1,64}$'", k);
        else if (p < 0)
            snprintf(m, mlen, "requests.%d.params: Field required", k);
        else if (d->tok[p].type != JSMN_OBJECT)
            snprintf(m, mlen, "requests.%d.params: Input should be a valid object", k);
        else
            continue;
        return m;
    }
    return NULL;
}

static int cmpStr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A custom_id used twice in b, or NULL. */
static const char *duplicateId(const fakeBatch *b) {
    char **ids = malloc(sizeof(*ids) * (size_t)b->n);
    const char *dup = NULL;
    if (!ids) abort();
    for (int i = 0; i < b->n; i++) ids[i] = b->items[i].customId;
    qsort(ids, (size_t)b->n, sizeof(*ids), cmpStr);
    for (int i = 1; i < b->n && !dup; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0) dup = ids[i];
    free(ids);
    return dup;
}

/* 0, or -1 after a 429: the new batch would pass --batch-queue for a class. */
static int queueRoom(struct evhttp_request *req, const fakeBatch *b, double now) {
    if (fake.cfg.batchQueue <= 0) return 0;
    for (int i = 0; i < b->n; i++) {
        int cls = b->items[i].cls, seen = 0;
        long long add = 0;
        for (int k = 0; k < i && !seen; k++) seen = b->items[k].cls == cls;
        if (seen || cls < 0) continue;
        for (int k = i; k < b->n; k++) add += b->items[k].cls == cls;
        if (queued(cls, now) + add > fake.cfg.batchQueue) {
            char m[300];
            snprintf(m, sizeof(m), "Number of batch requests in the processing queue "
                     "for %s would exceed your organization's limit of %lld.",
                     fake.classes[cls].name, fake.cfg.batchQueue);
            fake.batchStats.r429++;
            batchError(req, 429, "rate_limit_error", m, fake.cfg.batchQueueRetry);
            return -1;
        }
    }
    return 0;
}

static void batchCreate(struct evhttp_request *req) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char err[200], m[300];
    const char *msg;
    jsonDoc d;
    double now = fakeNow();

    if ((long long)len > BATCH_MAX_BYTES) {
        batchError(req, 413, "request_too_large", "A batch is at most 256 MB.", 0);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (jsonParse(&d, body ? body : "", len, BATCH_JSON_TOKENS, 0, err, sizeof(err)) != 0) {
        snprintf(m, sizeof(m), "request body: %s", err);
        batchError(req, 400, "invalid_request_error", m, 0);
        return;
    }
    int reqs = d.tok[0].type == JSMN_OBJECT ? jsonGet(&d, 0, "requests") : -1;
    if (d.tok[0].type != JSMN_OBJECT) msg = "request body: Input should be a JSON object";
    else msg = checkRequests(&d, reqs, m, sizeof(m));
    if (msg) {
        jsonFree(&d);
        batchError(req, 400, "invalid_request_error", msg, 0);
        return;
    }
    fakeBatch *b = calloc(1, sizeof(*b));
    if (!b || !(b->items = calloc((size_t)d.tok[reqs].size, sizeof(*b->items)))) abort();
    b->n = d.tok[reqs].size;
    fakeNewId("msgbatch_", b->id, sizeof(b->id));
    b->createdMs = fakeWallMs();
    b->created = now;
    double span = fake.cfg.batchMs / 1000.0, last = 0;
    int i = reqs + 1;
    for (int k = 0; k < b->n; k++, i = jsonSkip(&d, i)) {
        batchItem *it = &b->items[k];
        int c = jsonGet(&d, i, "custom_id");
        if (!(it->customId = strndup(jsonRaw(&d, c), (size_t)jsonRawLen(&d, c)))) abort();
        itemPrepare(it, &d, jsonGet(&d, i, "params"), k, span);
        if (it->doneAt > last) last = it->doneAt;
    }
    jsonFree(&d);
    evbuffer_drain(in, len);
    b->processedAt = now + last;
    const char *dup = duplicateId(b);
    if (dup) {
        snprintf(m, sizeof(m), "requests: custom_id values must be unique "
                 "(\"%s\" is used more than once)", dup);
        batchFree(b);
        batchError(req, 400, "invalid_request_error", m, 0);
        return;
    }
    if (queueRoom(req, b, now) != 0) {
        batchFree(b);
        return;
    }
    if (nbatches == capbatches) {
        capbatches = capbatches ? capbatches * 2 : 16;
        batches = realloc(batches, sizeof(*batches) * (size_t)capbatches);
        if (!batches) abort();
    }
    batches[nbatches++] = b;
    fake.batchStats.created++;
    fake.batchStats.requests += b->n;
    lfLog(LF_INFO, "event=batch_created id=%s requests=%d", b->id, b->n);
    batchReply(req, b);
}

/* ---- List ---------------------------------------------------------------- */

static void batchList(struct evhttp_request *req) {
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    long long limit = 20;
    int from = nbatches - 1, to = 0;        /* newest first */

    if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
        batchError(req, 400, "invalid_request_error", "query: not a valid query string", 0);
        return;
    }
    const char *v = evhttp_find_header(&q, "limit");
    const char *after = evhttp_find_header(&q, "after_id");
    const char *before = evhttp_find_header(&q, "before_id");
    if (v) {
        char *end;
        limit = strtoll(v, &end, 10);
        if (*end || limit < 1 || limit > 1000) {
            evhttp_clear_headers(&q);
            batchError(req, 400, "invalid_request_error",
                       "limit: Input should be between 1 and 1000", 0);
            return;
        }
    }
    for (int i = 0; i < nbatches; i++) {
        if (after && strcmp(batches[i]->id, after) == 0) from = i - 1;
        if (before && strcmp(batches[i]->id, before) == 0) to = i + 1;
    }
    bufReset(&fake.out);
    bufAppendStr(&fake.out, "{\"data\":[");
    int shown = 0, first = -1, lastShown = -1;
    if (before && !after) {                 /* the page just newer than before_id */
        from = to + (int)limit - 1 < nbatches - 1 ? to + (int)limit - 1 : nbatches - 1;
    }
    for (int i = from; i >= to && shown < limit; i--, shown++) {
        if (shown) bufAppendStr(&fake.out, ",");
        batchJson(&fake.out, batches[i], hostOf(req));
        if (first < 0) first = i;
        lastShown = i;
    }
    int more = lastShown > to;
    bufPrintf(&fake.out, "],\"has_more\":%s", more ? "true" : "false");
    if (first >= 0)
        bufPrintf(&fake.out, ",\"first_id\":\"%s\",\"last_id\":\"%s\"}",
                  batches[first]->id, batches[lastShown]->id);
    else
        bufAppendStr(&fake.out, ",\"first_id\":null,\"last_id\":null}");
    evhttp_clear_headers(&q);
    batchSend(req, 200, "OK", NULL, 0);
}

/* ---- Results ------------------------------------------------------------- */

/* A results download in progress: lines are made a chunk at a time, the
 * next when the last has been written to the socket. */
typedef struct resultStream {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    fakeBatch *b;
    int next;                   /* results sent */
    unsigned long stride;       /* the order: item (k * stride + 7) % n */
} resultStream;

static unsigned long gcd(unsigned long a, unsigned long b) {
    while (b) {
        unsigned long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static void streamFree(resultStream *s) {
    if (s->conn) evhttp_connection_set_closecb(s->conn, NULL, NULL);
    fakeBatch *b = s->b;
    if (--b->readers == 0 && b->deleted) batchFree(b);
    free(s);
}

static void streamClosed(struct evhttp_connection *c, void *arg) {
    resultStream *s = arg;
    (void)c;
    s->conn = NULL;
    streamFree(s);
}

/* Append the result line of item it to out (custom_ids need no escaping:
 * creation checked their characters). */
static void resultLine(struct evbuffer *out, const fakeBatch *b, const batchItem *it) {
    int k = itemResult(b, it);
    fakeReq r;

    evbuffer_add_printf(out, "{\"custom_id\":\"%s\",\"result\":", it->customId);
    if (k == CNT_SUCCEEDED) {
        memset(&r, 0, sizeof(r));
        snprintf(r.model, sizeof(r.model), "%s", it->model);
        r.inputTokens = it->inputTokens;
        r.cacheRead = it->cacheRead;
        r.cacheWrite5m = it->cacheWrite5m;
        r.cacheWrite1h = it->cacheWrite1h;
        r.outputTokens = it->outputTokens;
        r.maxTokens = it->maxTokens;
        r.bodyHash = it->bodyHash;
        fakeMsgAnswer(&r);
        evbuffer_add_printf(out, "{\"type\":\"succeeded\",\"message\":");
    } else if (k == CNT_ERRORED) {
        if (it->kind == ITEM_INVALID) fakeMsgErrorJson(it->errType, it->errMsg);
        else fakeMsgErrorJson("api_error", "Internal server error");
        evbuffer_add_printf(out, "{\"type\":\"errored\",\"error\":");
    } else {
        evbuffer_add_printf(out, "{\"type\":\"%s\"}}\n", cntNames[k]);
        return;
    }
    evbuffer_add(out, fake.out.p, fake.out.len);
    evbuffer_add(out, "}}\n", 3);
}

static void streamMore(struct evhttp_connection *c, void *arg) {
    resultStream *s = arg;
    fakeBatch *b = s->b;
    struct evbuffer *chunk = evbuffer_new();
    (void)c;
    if (!chunk) abort();
    while (s->next < b->n && evbuffer_get_length(chunk) < BATCH_CHUNK) {
        unsigned long k = ((unsigned long)s->next * s->stride + 7) % (unsigned long)b->n;
        resultLine(chunk, b, &b->items[k]);
        s->next++;
        fake.batchStats.resultLines++;
    }
    fake.batchStats.resultBytes += (long long)evbuffer_get_length(chunk);
    if (evbuffer_get_length(chunk) > 0) {
        evhttp_send_reply_chunk_with_cb(s->req, chunk, streamMore, s);
        evbuffer_free(chunk);
        return;
    }
    evbuffer_free(chunk);
    evhttp_send_reply_end(s->req);
    streamFree(s);
}

static void batchResults(struct evhttp_request *req, fakeBatch *b) {
    batchEnd(b, fakeNow());
    if (!b->ended) {
        batchError(req, 404, "not_found_error",
                   "Batch results are not available until processing has ended.", 0);
        return;
    }
    resultStream *s = calloc(1, sizeof(*s));
    if (!s) abort();
    s->req = req;
    s->conn = evhttp_request_get_connection(req);
    s->b = b;
    b->readers++;
    s->stride = 7919;
    while (b->n > 1 && gcd(s->stride % (unsigned long)b->n, (unsigned long)b->n) != 1) s->stride++;
    evhttp_add_header(evhttp_request_get_output_headers(req), "content-type",
                      "application/binary");
    fake.batchStats.status[200]++;
    evhttp_connection_set_closecb(s->conn, streamClosed, s);
    evhttp_send_reply_start(req, 200, "OK");
    streamMore(NULL, s);
}

/* ---- Routing ------------------------------------------------------------- */

/* 0, or -1 after a 429: the endpoints' own request rate (--batch-rpm). */
static int rateOk(struct evhttp_request *req) {
    double now = fakeNow();
    if (batchRateLimit != fake.cfg.batchRpm) {
        fakeBucketSetLimit(&batchRate, fake.cfg.batchRpm, now);
        batchRateLimit = fake.cfg.batchRpm;
    }
    if (batchRate.limit <= 0) return 0;
    fakeBucketRefill(&batchRate, now);
    double wait = fakeBucketWait(&batchRate, 1);
    if (wait > 0) {
        fake.batchStats.r429++;
        batchError(req, 429, "rate_limit_error", "This request would exceed your "
                   "organization's rate limit for the Message Batches API.",
                   (long long)ceil(wait));
        return -1;
    }
    fakeBucketCharge(&batchRate, 1);
    return 0;
}

void fakeBatchHandle(struct evhttp_request *req, void *arg) {
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    static const char root[] = "/v1/messages/batches";
    char m[700];
    const char *err;
    (void)arg;

    fake.batchStats.http++;
    fakeBatchTick();
    if ((err = fakeAuthError(req, m, sizeof(m))) != NULL) {
        batchError(req, 401, "authentication_error", err, 0);
        return;
    }
    if (!evhttp_find_header(evhttp_request_get_input_headers(req), "anthropic-version")) {
        batchError(req, 400, "invalid_request_error", "anthropic-version: header is required", 0);
        return;
    }
    if (rateOk(req) != 0) return;
    /* fakeRoute sends only root and root/... here. */
    const char *rest = path + sizeof(root) - 1;
    if (*rest == '/') rest++;
    if (!*rest) {
        if (cmd == EVHTTP_REQ_POST) batchCreate(req);
        else if (cmd == EVHTTP_REQ_GET) batchList(req);
        else batchError(req, 405, "invalid_request_error", "Method Not Allowed", 0);
        return;
    }
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    fakeBatch *b = batchFind(rest, idlen);
    if (!b) {
        snprintf(m, sizeof(m), "message_batch: %.*s not found", (int)(idlen > 64 ? 64 : idlen), rest);
        batchError(req, 404, "not_found_error", m, 0);
        return;
    }
    const char *op = slash ? slash + 1 : "";
    if (!*op && cmd == EVHTTP_REQ_GET) {
        batchReply(req, b);
    } else if (!*op && cmd == EVHTTP_REQ_DELETE) {
        batchEnd(b, fakeNow());
        if (!b->ended) {
            batchError(req, 400, "invalid_request_error",
                       "Batches must be ended before they can be deleted.", 0);
            return;
        }
        bufReset(&fake.out);
        bufPrintf(&fake.out, "{\"id\":\"%s\",\"type\":\"message_batch_deleted\"}", b->id);
        batchDrop(b);
        batchSend(req, 200, "OK", NULL, 0);
    } else if (strcmp(op, "cancel") == 0 && cmd == EVHTTP_REQ_POST) {
        batchEnd(b, fakeNow());
        if (!b->ended && b->cancelAt == 0) {
            b->cancelAt = fakeNow();
            b->cancelMs = fakeWallMs();
            lfLog(LF_INFO, "event=batch_canceled id=%s", b->id);
        }
        batchReply(req, b);
    } else if (strcmp(op, "results") == 0 && cmd == EVHTTP_REQ_GET) {
        batchResults(req, b);
    } else {
        goto notfound;
    }
    return;
notfound:
    batchError(req, 404, "not_found_error", "Not Found", 0);
}

void fakeBatchStatsJson(buf *o) {
    const fakeBatchStats *st = &fake.batchStats;
    long long processing = 0;
    fakeBatchTick();
    for (int i = 0; i < nbatches; i++)
        if (!batches[i]->ended) processing += batches[i]->n;
    bufPrintf(o, "\"batches\":{\"http_requests\":%lld,\"created\":%lld,\"requests\":%lld,"
              "\"processing\":%lld,\"succeeded\":%lld,\"errored\":%lld,\"canceled\":%lld,"
              "\"expired\":%lld,\"input_tokens\":%lld,\"output_tokens\":%lld,"
              "\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld,"
              "\"rate_limited\":%lld,\"result_lines\":%lld,\"result_bytes\":%lld,\"status\":{",
              st->http, st->created, st->requests, processing, st->succeeded, st->errored,
              st->canceled, st->expired, st->inputTokens, st->outputTokens, st->cacheWrite,
              st->cacheRead, st->r429, st->resultLines, st->resultBytes);
    int n = 0;
    for (int s = 0; s < 600; s++)
        if (st->status[s]) bufPrintf(o, "%s\"%d\":%lld", n++ ? "," : "", s, st->status[s]);
    bufAppendStr(o, "}}");
}
