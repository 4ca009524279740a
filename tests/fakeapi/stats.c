/* stats.c — what the fake API saw, for tests and benchmarks to check the
 * fleet from the outside, plus the small admin endpoints:
 *
 *   GET  /_stats    counters (malformed-response faults included), tokens
 *                   served (input, cache writes, cache reads, output, and
 *                   what counted toward ITPM), the same per model class,
 *                   concurrency, a per-second series of the last
 *                   FAKE_SERIES_LEN seconds, and how many /v1/messages
 *                   bodies were repeats (duplicate deliveries).
 *   POST /_reset    zero all that, refill the buckets (the classes' too),
 *                   empty the prompt cache, clear the org cap and the spend
 *                   limit.
 *   POST /_config   change limits, faults, latency, header stamping, the
 *                   tokenizer, caching and output lengths at run time (not
 *                   --class-limits: those are fixed at start).
 *
 * Body repeats are tracked by a 64-bit hash of each body in an
 * open-addressing set that grows up to FAKE_BODIES_MAX entries; past that,
 * new bodies are counted as untracked rather than growing memory forever. */
#include "fakeapi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "json.h"
#include "log.h"

#define FAKE_BODIES_MAX (1u << 22)  /* distinct bodies tracked at most */

/* ---- Counters ------------------------------------------------------------ */

/* The series slot for the current second, cleared when it is reused. */
static fakeSecond *statsSecond(void) {
    long long t = fakeWallMs() / 1000;
    fakeSecond *s = &fake.stats.series[t % FAKE_SERIES_LEN];
    if (s->t != t) {
        memset(s, 0, sizeof(*s));
        s->t = t;
    }
    return s;
}

/* Zero everything but what is in flight right now. */
void fakeStatsReset(void) {
    long long concurrent = fake.stats.concurrent, msg = fake.stats.msgConcurrent;
    free(fake.stats.bodies);
    memset(&fake.stats, 0, sizeof(fake.stats));
    fake.stats.concurrent = concurrent;
    fake.stats.peakConcurrent = concurrent;
    fake.stats.msgConcurrent = msg;
    fake.stats.peakMessages = msg;
}

void fakeStatsFree(void) {
    free(fake.stats.bodies);
    fake.stats.bodies = NULL;
    fake.stats.bodiesCap = 0;
}

void fakeStatsRequest(void) {
    fake.stats.requestsTotal++;
    statsSecond()->requests++;
}

void fakeStatsReply(int status) {
    if (status >= 0 && status < (int)(sizeof(fake.stats.status) / sizeof(fake.stats.status[0])))
        fake.stats.status[status]++;
    if (status == 429) statsSecond()->r429++;
}

/* A request to POST /v1/messages itself (not count_tokens, not a 404). */
static int isMessages(struct evhttp_request *req) {
    const char *uri = req ? evhttp_request_get_uri(req) : NULL;
    if (!uri || strncmp(uri, "/v1/messages", 12) != 0) return 0;
    return uri[12] == '\0' || uri[12] == '?';
}

void fakeStatsEnter(struct evhttp_request *req) {
    if (++fake.stats.concurrent > fake.stats.peakConcurrent)
        fake.stats.peakConcurrent = fake.stats.concurrent;
    if (isMessages(req) && ++fake.stats.msgConcurrent > fake.stats.peakMessages)
        fake.stats.peakMessages = fake.stats.msgConcurrent;
}

void fakeStatsLeave(struct evhttp_request *req) {
    fake.stats.concurrent--;
    if (isMessages(req)) fake.stats.msgConcurrent--;
}

/* ---- The set of body hashes ---------------------------------------------- */

/* The slot holding hash, or the empty slot where it would go. */
static fakeBody *bodySlot(fakeBody *tab, size_t cap, uint64_t hash) {
    size_t i = (size_t)hash & (cap - 1);
    while (tab[i].hash != 0 && tab[i].hash != hash) i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* Double the table (or create it). Returns 0, or -1 when out of memory. */
static int bodyGrow(void) {
    size_t cap = fake.stats.bodiesCap ? fake.stats.bodiesCap * 2 : 1024;
    fakeBody *tab = calloc(cap, sizeof(*tab));
    if (!tab) return -1;
    for (size_t i = 0; i < fake.stats.bodiesCap; i++) {
        fakeBody *b = &fake.stats.bodies[i];
        if (b->hash) *bodySlot(tab, cap, b->hash) = *b;
    }
    free(fake.stats.bodies);
    fake.stats.bodies = tab;
    fake.stats.bodiesCap = cap;
    return 0;
}

/* 0 is the empty-slot marker, so hash 0 is stored as 1. */
static uint64_t bodyKey(uint64_t hash) {
    return hash ? hash : 1;
}

void fakeStatsBody(uint64_t hash) {
    fakeStats *st = &fake.stats;
    fakeBody *b;

    hash = bodyKey(hash);
    if ((size_t)(st->distinctBodies + 1) * 2 > st->bodiesCap) {
        if (st->distinctBodies >= FAKE_BODIES_MAX || bodyGrow() != 0) {
            b = st->bodiesCap ? bodySlot(st->bodies, st->bodiesCap, hash) : NULL;
            if (b && b->hash) {
                b->seen++;
                st->repeatedBodies++;
            } else {
                st->untrackedBodies++;
            }
            return;
        }
    }
    b = bodySlot(st->bodies, st->bodiesCap, hash);
    if (b->hash) {
        st->repeatedBodies++;
    } else {
        b->hash = hash;
        st->distinctBodies++;
    }
    b->seen++;
}

void fakeStatsServed(const fakeReq *r) {
    fakeStats *st = &fake.stats;
    fakeSecond *s = statsSecond();
    long long in = r->inputTokens, out = r->outputTokens;
    long long write = r->cacheWrite5m + r->cacheWrite1h;

    st->inputTokens += in;
    st->outputTokens += out;
    st->cacheWrite += write;
    st->cacheRead += r->cacheRead;
    s->input += in;
    s->output += out;
    s->itpm += in + write;
    if (r->cls >= 0 && r->cls < FAKE_SERIES_CLASSES) {
        s->cls_itpm[r->cls] += in + write;
        s->cls_output[r->cls] += out;
    }
    if (r->cls >= 0 && r->cls < fake.nclasses) {
        fakeClassStats *cs = &fake.classes[r->cls].stats;
        cs->ok++;
        cs->inputTokens += in;
        cs->outputTokens += out;
        cs->cacheWrite += write;
        cs->cacheRead += r->cacheRead;
    }
    if (st->bodiesCap == 0) return;
    fakeBody *b = bodySlot(st->bodies, st->bodiesCap, bodyKey(r->bodyHash));
    if (!b->hash) return;
    if (b->served > 0) st->repeatedServed++;
    b->served++;
}

/* ---- GET /_stats --------------------------------------------------------- */

static void statsSeriesJson(buf *o) {
    long long now = fakeWallMs() / 1000;
    int first = 1;

    bufAppendStr(o, "\"series\":[");
    for (long long t = now - FAKE_SERIES_LEN + 1; t <= now; t++) {
        const fakeSecond *s = &fake.stats.series[t % FAKE_SERIES_LEN];
        if (s->t != t) continue;
        bufPrintf(o, "%s{\"t\":%lld,\"input\":%lld,\"output\":%lld,"
                  "\"requests\":%lld,\"r429\":%lld,\"itpm\":%lld,\"classes\":{",
                  first ? "" : ",", s->t, s->input, s->output, s->requests, s->r429, s->itpm);
        for (int c = 0; c < fake.nclasses && c < FAKE_SERIES_CLASSES; c++)
            bufPrintf(o, "%s\"%s\":{\"itpm\":%lld,\"output\":%lld}", c ? "," : "",
                      fake.classes[c].name, s->cls_itpm[c], s->cls_output[c]);
        bufAppendStr(o, "}}");
        first = 0;
    }
    bufAppendStr(o, "]");
}

static void statsJson(buf *o) {
    const fakeStats *st = &fake.stats;
    int first = 1;

    bufPrintf(o, "{\"requests_total\":%lld,\"status\":{", st->requestsTotal);
    for (int i = 0; i < (int)(sizeof(st->status) / sizeof(st->status[0])); i++) {
        if (!st->status[i]) continue;
        bufPrintf(o, "%s\"%d\":%lld", first ? "" : ",", i, st->status[i]);
        first = 0;
    }
    bufPrintf(o, "},\"resets\":%lld,\"hangs\":%lld,\"garbage\":%lld,"
              "\"truncated\":%lld,\"no_usage\":%lld,\"huge\":%lld,"
              "\"bad_headers\":%lld,\"concurrent\":%lld,"
              "\"peak_concurrent\":%lld,\"peak_messages\":%lld,\"input_tokens\":%lld,"
              "\"output_tokens\":%lld,\"distinct_bodies\":%lld,"
              "\"repeated_bodies\":%lld,\"repeated_served_bodies\":%lld,"
              "\"untracked_bodies\":%lld,",
              st->resets, st->hangs, st->garbage, st->truncated, st->noUsage,
              st->huge, st->badHeaders, st->concurrent, st->peakConcurrent,
              st->peakMessages, st->inputTokens, st->outputTokens, st->distinctBodies,
              st->repeatedBodies, st->repeatedServed, st->untrackedBodies);
    bufPrintf(o, "\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld,"
              "\"itpm_input_tokens\":%lld,\"cache_entries\":%lld,",
              st->cacheWrite, st->cacheRead, st->inputTokens + st->cacheWrite,
              fakeCacheEntries());
    fakeClassJson(o);
    bufAppendStr(o, ",");
    fakeBatchStatsJson(o);
    bufAppendStr(o, ",");
    statsSeriesJson(o);
    bufAppendStr(o, "}\n");
}

void fakeStatsHandle(struct evhttp_request *req, void *arg) {
    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        fakeSend(req, 405, "Method Not Allowed", "{\"error\":\"use GET\"}\n", 19);
        return;
    }
    bufReset(&fake.out);
    statsJson(&fake.out);
    fakeSend(req, 200, "OK", fake.out.p, fake.out.len);
}

/* ---- POST /_reset -------------------------------------------------------- */

void fakeResetHandle(struct evhttp_request *req, void *arg) {
    double now = fakeNow();
    (void)arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        fakeSend(req, 405, "Method Not Allowed", "{\"error\":\"use POST\"}\n", 20);
        return;
    }
    fakeStatsReset();
    fakeBucketFill(&fake.requests);
    fakeBucketFill(&fake.input);
    fakeBucketFill(&fake.output);
    fake.requests.last = fake.input.last = fake.output.last = now;
    fakeClassFill(now);
    fakeClassStatsReset();
    fakeCacheClear();
    fakeMsgResetLimits();
    fakeBatchReset();
    fakeSend(req, 200, "OK", "{\"ok\":true}\n", 12);
}

/* ---- POST /_config ------------------------------------------------------- */

/* The run-time settable options, by JSON key. */
enum { CFG_COUNT, CFG_PROB, CFG_MS };
static const struct {
    const char *key;            /* JSON key */
    int kind;                   /* CFG_*: how to validate it */
    size_t off;                 /* field offset in fakeConfig */
} cfgKeys[] = {
    {"rpm", CFG_COUNT, offsetof(fakeConfig, rpm)},
    {"itpm", CFG_COUNT, offsetof(fakeConfig, itpm)},
    {"otpm", CFG_COUNT, offsetof(fakeConfig, otpm)},
    {"max_output_tokens", CFG_COUNT, offsetof(fakeConfig, maxOutputTokens)},
    {"org_cap_tokens", CFG_COUNT, offsetof(fakeConfig, orgCapTokens)},
    {"spend_limit_after", CFG_COUNT, offsetof(fakeConfig, spendLimitAfter)},
    {"p500", CFG_PROB, offsetof(fakeConfig, p500)},
    {"p529", CFG_PROB, offsetof(fakeConfig, p529)},
    {"p_reset", CFG_PROB, offsetof(fakeConfig, pReset)},
    {"p_hang", CFG_PROB, offsetof(fakeConfig, pHang)},
    {"p_garbage", CFG_PROB, offsetof(fakeConfig, pGarbage)},
    {"p_truncated", CFG_PROB, offsetof(fakeConfig, pTruncated)},
    {"p_no_usage", CFG_PROB, offsetof(fakeConfig, pNoUsage)},
    {"p_huge", CFG_PROB, offsetof(fakeConfig, pHuge)},
    {"p_bad_headers", CFG_PROB, offsetof(fakeConfig, pBadHeaders)},
    {"p_trickle", CFG_PROB, offsetof(fakeConfig, pTrickle)},
    {"huge_bytes", CFG_COUNT, offsetof(fakeConfig, hugeBytes)},
    {"latency_ms", CFG_MS, offsetof(fakeConfig, latencyMs)},
    {"per_token_ms", CFG_MS, offsetof(fakeConfig, perTokenMs)},
    {"jitter_ms", CFG_MS, offsetof(fakeConfig, jitterMs)},
    {"org_cap_seconds", CFG_MS, offsetof(fakeConfig, orgCapSeconds)},
    {"output_tokens", CFG_MS, offsetof(fakeConfig, outputMean)},
    {"batch_ms", CFG_MS, offsetof(fakeConfig, batchMs)},
    {"batch_expire_ms", CFG_MS, offsetof(fakeConfig, batchExpireMs)},
    {"batch_p_errored", CFG_PROB, offsetof(fakeConfig, batchPErrored)},
    {"batch_queue", CFG_COUNT, offsetof(fakeConfig, batchQueue)},
    {"batch_queue_retry", CFG_COUNT, offsetof(fakeConfig, batchQueueRetry)},
    {"batch_rpm", CFG_COUNT, offsetof(fakeConfig, batchRpm)},
};

/* The run-time settable choices between names, by JSON key. */
static const struct {
    const char *key;            /* JSON key */
    const char *names[3];       /* values 0, 1, 2 (NULL: no such value) */
    size_t off;                 /* int field offset in fakeConfig */
} cfgModes[] = {
    {"otpm_mode", {"actual", "reserve", NULL}, offsetof(fakeConfig, otpmReserve)},
    {"headers_at", {"answer", "admit", NULL}, offsetof(fakeConfig, headersAtAdmit)},
    {"tokenizer", {"chars", "realistic", "code"}, offsetof(fakeConfig, tokRealistic)},
    {"output_dist", {"exponential", "uniform", "fixed"}, offsetof(fakeConfig, outputDist)},
};

/* The name of value v of the mode key. */
static const char *cfgModeName(const char *key, int v) {
    for (size_t k = 0; k < sizeof(cfgModes) / sizeof(cfgModes[0]); k++)
        if (strcmp(cfgModes[k].key, key) == 0 && v >= 0 && v < 3 && cfgModes[k].names[v])
            return cfgModes[k].names[v];
    return "?";
}

/* Number value of token i, or -1 when it is not a plain number. */
static int cfgNumber(const jsonDoc *d, int i, double *out) {
    char tmp[64], *end;
    int n = jsonRawLen(d, i);

    if (d->tok[i].type != JSMN_PRIMITIVE || n <= 0 || n >= (int)sizeof(tmp)) return -1;
    memcpy(tmp, jsonRaw(d, i), (size_t)n);
    tmp[n] = '\0';
    *out = strtod(tmp, &end);
    return (*end == '\0' && isfinite(*out)) ? 0 : -1;
}

/* Apply one key = value. Returns 0, or -1 with a message in err. */
static int cfgApply(const jsonDoc *d, int key, int val, char *err, size_t errlen) {
    double v;
    fakeConfig *c = &fake.cfg;

    for (size_t k = 0; k < sizeof(cfgModes) / sizeof(cfgModes[0]); k++) {
        if (!jsonStrEq(d, key, cfgModes[k].key)) continue;
        for (int m = 0; m < 3; m++)
            if (cfgModes[k].names[m] && jsonStrEq(d, val, cfgModes[k].names[m])) {
                *(int *)((char *)c + cfgModes[k].off) = m;
                return 0;
            }
        goto bad;
    }
    if (jsonStrEq(d, key, "caching")) {
        if (d->tok[val].type != JSMN_PRIMITIVE) goto bad;
        if (jsonRawLen(d, val) == 4 && memcmp(jsonRaw(d, val), "true", 4) == 0) c->caching = 1;
        else if (jsonRawLen(d, val) == 5 && memcmp(jsonRaw(d, val), "false", 5) == 0) c->caching = 0;
        else goto bad;
        return 0;
    }
    for (size_t k = 0; k < sizeof(cfgKeys) / sizeof(cfgKeys[0]); k++) {
        if (!jsonStrEq(d, key, cfgKeys[k].key)) continue;
        if (cfgNumber(d, val, &v) != 0 || v < 0) goto bad;
        if (cfgKeys[k].kind == CFG_PROB && v > 1) goto bad;
        if (cfgKeys[k].kind == CFG_COUNT) {
            if (v != floor(v) || v > 1e15) goto bad;
            if (cfgKeys[k].off == offsetof(fakeConfig, hugeBytes) &&
                v > (double)FAKE_HUGE_MAX)
                goto bad;
            *(long long *)((char *)c + cfgKeys[k].off) = (long long)v;
        } else {
            *(double *)((char *)c + cfgKeys[k].off) = v;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown key \"%.*s\"", jsonRawLen(d, key), jsonRaw(d, key));
    return -1;
bad:
    snprintf(err, errlen, "bad value for \"%.*s\"", jsonRawLen(d, key), jsonRaw(d, key));
    return -1;
}

/* The current run-time settings, as JSON. */
static void cfgJson(buf *o) {
    const fakeConfig *c = &fake.cfg;
    bufPrintf(o, "{\"rpm\":%lld,\"itpm\":%lld,\"otpm\":%lld,\"otpm_mode\":\"%s\","
              "\"max_output_tokens\":%lld,\"org_cap_tokens\":%lld,"
              "\"org_cap_seconds\":%g,\"spend_limit_after\":%lld,"
              "\"p500\":%g,\"p529\":%g,\"p_reset\":%g,\"p_hang\":%g,"
              "\"p_garbage\":%g,\"p_truncated\":%g,\"p_no_usage\":%g,"
              "\"p_huge\":%g,\"p_bad_headers\":%g,\"p_trickle\":%g,\"huge_bytes\":%lld,"
              "\"latency_ms\":%g,\"per_token_ms\":%g,\"jitter_ms\":%g,"
              "\"headers_at\":\"%s\",\"tokenizer\":\"%s\",\"caching\":%s,"
              "\"output_tokens\":%g,\"output_dist\":\"%s\"}\n",
              c->rpm, c->itpm, c->otpm, c->otpmReserve ? "reserve" : "actual",
              c->maxOutputTokens, c->orgCapTokens, c->orgCapSeconds,
              c->spendLimitAfter, c->p500, c->p529, c->pReset, c->pHang,
              c->pGarbage, c->pTruncated, c->pNoUsage, c->pHuge, c->pBadHeaders,
              c->pTrickle, c->hugeBytes, c->latencyMs, c->perTokenMs, c->jitterMs,
              cfgModeName("headers_at", c->headersAtAdmit),
              cfgModeName("tokenizer", c->tokRealistic),
              c->caching ? "true" : "false", c->outputMean,
              cfgModeName("output_dist", c->outputDist));
}

static void cfgError(struct evhttp_request *req, const char *msg) {
    bufReset(&fake.out);
    bufAppendStr(&fake.out, "{\"error\":");
    bufAppendJsonString(&fake.out, msg, strlen(msg));
    bufAppendStr(&fake.out, "}\n");
    fakeSend(req, 400, "Bad Request", fake.out.p, fake.out.len);
}

void fakeConfigHandle(struct evhttp_request *req, void *arg) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    fakeConfig saved = fake.cfg;
    char err[160];
    jsonDoc d;
    double now = fakeNow();
    (void)arg;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        if (jsonParse(&d, body ? body : "", len, 4096, 0, err, sizeof(err)) != 0) {
            cfgError(req, err);
            return;
        }
        if (d.tok[0].type != JSMN_OBJECT) {
            jsonFree(&d);
            cfgError(req, "body must be a JSON object");
            return;
        }
        for (int i = 1; i < d.ntok; i = jsonSkip(&d, i + 1)) {
            if (cfgApply(&d, i, i + 1, err, sizeof(err)) != 0) {
                fake.cfg = saved;
                jsonFree(&d);
                cfgError(req, err);
                return;
            }
        }
        jsonFree(&d);
        fakeBucketRefill(&fake.requests, now);
        fakeBucketRefill(&fake.input, now);
        fakeBucketRefill(&fake.output, now);
        fakeBucketSetLimit(&fake.requests, fake.cfg.rpm, now);
        fakeBucketSetLimit(&fake.input, fake.cfg.itpm, now);
        fakeBucketSetLimit(&fake.output, fake.cfg.otpm, now);
        lfLog(LF_INFO, "event=config rpm=%lld itpm=%lld otpm=%lld",
              fake.cfg.rpm, fake.cfg.itpm, fake.cfg.otpm);
    }
    bufReset(&fake.out);
    cfgJson(&fake.out);
    fakeSend(req, 200, "OK", fake.out.p, fake.out.len);
}
