/* codec.c — argument vectors and replies of the fleet's scripts (codec.h).
 *
 * Every position comes from proto.def's enums; nothing here knows a number
 * that the Lua side could disagree with. Not here: when calls are made
 * (worker.c), how they travel (rds.c). */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "price.h"

/* ---- Argument vectors --------------------------------------------------- */

void argsInit(lfArgs *a, int cap, int numcap) {
    memset(a, 0, sizeof(*a));
    a->cap = cap;
    a->numcap = numcap;
    a->v = malloc(sizeof(*a->v) * (size_t)(cap ? cap : 1));
    a->l = malloc(sizeof(*a->l) * (size_t)(cap ? cap : 1));
    a->num = malloc(sizeof(*a->num) * (size_t)(numcap ? numcap : 1));
    if (!a->v || !a->l || !a->num) abort();
}

void argsFree(lfArgs *a) {
    free(a->v);
    free(a->l);
    free(a->num);
    memset(a, 0, sizeof(*a));
}

void argsAdd(lfArgs *a, const char *p, size_t len) {
    if (a->n >= a->cap) abort();    /* the caller sized it: a bug */
    a->v[a->n] = p;
    a->l[a->n++] = len;
}

void argsStr(lfArgs *a, const char *s) { argsAdd(a, s, strlen(s)); }

void argsNum(lfArgs *a, long long v) {
    if (a->nnum >= a->numcap) abort();
    char *p = a->num[a->nnum++];
    argsAdd(a, p, fmtLL(p, v));
}

/* ---- Replies ------------------------------------------------------------ */

static int isInt(const redisReply *r) { return r && r->type == REDIS_REPLY_INTEGER; }

static void copyStr(char *dst, size_t len, const redisReply *r) {
    snprintf(dst, len, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
}

/* ---- claim.lua ---------------------------------------------------------- */

void claimArgs(lfArgs *a, int n, long lease_ms, const char *prefix, long long max_job,
               const char *intake, int poll) {
    argsNum(a, n);                  /* CA_N */
    argsNum(a, lease_ms);           /* CA_LEASE_MS */
    argsStr(a, prefix);             /* CA_PREFIX */
    argsNum(a, max_job);            /* CA_MAX_JOB */
    argsStr(a, intake ? intake : "");   /* CA_INTAKE */
    argsNum(a, poll ? 1 : 0);       /* CA_POLL */
}

int claimParse(const redisReply *r, claimReply *out) {
    memset(out, 0, sizeof(*out));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < CR_N ||
        !isInt(r->element[CR_WAIT_MS]))
        return -1;
    out->wait_ms = r->element[CR_WAIT_MS]->integer;
    out->next_ms = -1;
    if (r->elements > CR_NEXT_MS && isInt(r->element[CR_NEXT_MS])) {
        out->next_ms = r->element[CR_NEXT_MS]->integer;
        out->drained = 1;
    }
    if (out->wait_ms > 0) {
        copyStr(out->reason, sizeof(out->reason), r->element[CR_REASON]);
    } else if (r->elements > CR_N) {
        if (!isInt(r->element[CR_N]) || r->element[CR_N]->integer < 0) return -1;
        out->n = (int)r->element[CR_N]->integer;
    }
    return 0;
}

/* ---- admit.lua ---------------------------------------------------------- */

void admitArgs(lfArgs *a, const admitHead *h, const admitJob *jobs, int n) {
    argsNum(a, h->lease_ms);        /* AA_LEASE_MS */
    argsNum(a, h->busy);            /* AA_BUSY */
    argsNum(a, h->solo);            /* AA_SOLO */
    argsNum(a, h->prices_ver);      /* AA_PRICES_VER */
    for (int i = 0; i < n; i++) {
        const admitJob *j = &jobs[i];
        argsStr(a, j->lease);       /* AJ_LEASE */
        argsStr(a, j->id);          /* AJ_ID */
        argsStr(a, j->model);       /* AJ_MODEL */
        argsNum(a, j->input);       /* AJ_INPUT */
        argsNum(a, j->max_tokens);  /* AJ_MAX_TOKENS */
        argsNum(a, j->reserve);     /* AJ_RESERVE */
        argsStr(a, j->prefix ? j->prefix : "");   /* AJ_PREFIX */
        argsNum(a, j->prefix_tokens);             /* AJ_PREFIX_TOKENS */
        argsNum(a, j->cache_1h ? 1 : 0);          /* AJ_CACHE_1H */
        argsNum(a, j->exact < 0 ? 0 : j->exact > 2 ? 2 : j->exact);   /* AJ_EXACT */
        argsStr(a, j->follow ? j->follow : "");   /* AJ_FOLLOW */
        argsStr(a, j->lane ? j->lane : "");       /* AJ_LANE */
        argsNum(a, j->deadline_ms);               /* AJ_DEADLINE_MS */
        argsNum(a, j->bytes);                     /* AJ_BYTES */
    }
}

const char *admitName(admitVerdict v) {
    switch (v) {
#define X(N, val, doc) case ADMIT_##N: return #N;
    LF_ADMIT(X)
#undef X
    }
    return "UNKNOWN";
}

#define CODE(N, val, doc) val,
static const long long admitCodes[] = {LF_ADMIT(CODE)};
static const long long settledCodes[] = {LF_SETTLED(CODE)};
#undef CODE

/* v is one of the n codes of a proto.def list. */
static int known(long long v, const long long *codes, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (codes[i] == v) return 1;
    return 0;
}
#define KNOWN(v, list) known(v, list, sizeof(list) / sizeof(list[0]))

int admitParse(const redisReply *r, int n, admitReply *out, admitResult *res,
               char *err, size_t errlen) {
    size_t want = AR_COUNT + 2 * (size_t)n;
    memset(out, 0, sizeof(*out));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != want) {
        snprintf(err, errlen, "admit: expected an array of %zu, got %s", want,
                 !r ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str : "another shape");
        return -1;
    }
    if (!isInt(r->element[AR_CEILING]) || !isInt(r->element[AR_SOLO])) {
        snprintf(err, errlen, "admit: ceiling and solo must be integers");
        return -1;
    }
    out->ceiling = (long)r->element[AR_CEILING]->integer;
    copyStr(out->reason, sizeof(out->reason), r->element[AR_REASON]);
    out->solo = (soloState)r->element[AR_SOLO]->integer;
    const redisReply *pv = r->element[AR_PRICES_VER];
    out->prices_ver = pv->type == REDIS_REPLY_STRING ? atoll(pv->str)
                    : pv->type == REDIS_REPLY_INTEGER ? pv->integer : 0;
    for (int i = 0; i < n; i++) {
        const redisReply *c = r->element[AR_COUNT + 2 * i];
        const redisReply *v = r->element[AR_COUNT + 2 * i + 1];
        if (!isInt(c) || !isInt(v) || !KNOWN(c->integer, admitCodes)) {
            snprintf(err, errlen, "admit: job %d: unknown verdict %lld", i,
                     isInt(c) ? c->integer : -1LL);
            return -1;
        }
        res[i].verdict = (admitVerdict)c->integer;
        res[i].value = v->integer;
    }
    return 0;
}

/* ---- Settle records ----------------------------------------------------- */

static void field(settleRec *r, const char *name, const char *v, size_t len) {
    if (r->nf + 2 > REC_MAX_FIELDS) return;
    r->fv[r->nf] = name;
    r->fl[r->nf++] = strlen(name);
    r->fv[r->nf] = v;
    r->fl[r->nf++] = len;
}

static void fieldStr(settleRec *r, const char *name, const char *v) {
    field(r, name, v, strlen(v));
}

static char *numSlot(settleRec *r) {
    return r->nums[r->nnums < REC_NUMS ? r->nnums++ : REC_NUMS - 1];
}

static void fieldNum(settleRec *r, const char *name, long long v) {
    char *p = numSlot(r);
    field(r, name, p, fmtLL(p, v));
}

void recStart(settleRec *r, recOp op) {
    r->op = op;
    r->nf = 0;
    r->nnums = 0;
    for (int i = 0; i < ATT_COUNT; i++) r->att[i][0] = '\0';
    r->att[ATT_SENT][0] = '0';
    r->att[ATT_SENT][1] = '\0';
    r->has_obs = 0;
}

static void setNum(char *dst, long long v) { fmtLL(dst, v); }

static void setOpt(char *dst, long long v) {
    if (v >= 0) fmtLL(dst, v);
    else dst[0] = '\0';
}

static long long wallNowMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The API's buckets refill continuously over a minute: a reading whose
 * full replenishment is further away than MINUTE_RESET_MAX_MS is no such
 * bucket (an organisation's cap of an hour reported in tokens-*, say).
 * Learned as one it would pace the class at that limit per minute long
 * after the cap lifted; the 429's retry-after covers it. Absent then. */
#define MINUTE_RESET_MAX_MS 600000   /* (10 min: a worker clock minutes off still learns) */
static const rlBucket noBucket = {-1, -1, -1};
static const rlBucket *minuteBucket(const rlBucket *b, long long wall) {
    return b->reset_ms > wall + MINUTE_RESET_MAX_MS ? &noBucket : b;
}

void recAttempt(settleRec *r, const outcome *o, const rlHeaders *rl,
                long long cost_micro, const recCtx *ctx, long rand6) {
    char (*a)[24] = r->att;
    setNum(a[ATT_SENT], 1);
    setNum(a[ATT_HTTP_STATUS], o->http_status);
    setNum(a[ATT_COST_MICRO], cost_micro);
    setNum(a[ATT_LATENCY_MS], ctx->latency_ms);
    setOpt(a[ATT_INPUT_TOKENS], o->ok ? o->use.input_tokens : -1);
    setOpt(a[ATT_OUTPUT_TOKENS], o->ok ? o->use.output_tokens : -1);
    setOpt(a[ATT_CACHE_WRITE_TOKENS], o->ok ? o->use.cache_creation_input_tokens : -1);
    setOpt(a[ATT_CACHE_READ_TOKENS], o->ok ? o->use.cache_read_input_tokens : -1);
    setNum(a[ATT_RETRY_AFTER_MS], o->retry_after_ms);
    setNum(a[ATT_SPEND_LIMIT], o->spend_limit);
    /* rand in [0, 1) with 6 decimals, for the retry's jitter */
    char *d = a[ATT_RAND];
    d[0] = '0', d[1] = '.';
    for (int i = 7; i >= 2; i--) d[i] = (char)('0' + rand6 % 10), rand6 /= 10;
    d[8] = '\0';
    setNum(a[ATT_ATTEMPT], ctx->attempt);

    long long wall = wallNowMs();
    const rlBucket *rq = minuteBucket(&rl->requests, wall), *out = minuteBucket(&rl->output, wall);
    const rlBucket *in = rl->input.limit >= 0 ? minuteBucket(&rl->input, wall)
                                              : minuteBucket(&rl->tokens, wall);
    long long reset = rl->tokens.reset_ms >= 0 ? rl->tokens.reset_ms : rl->input.reset_ms;
    char (*b)[24] = r->obs;
    setOpt(b[OBS_R_LIM], rq->remaining >= 0 ? rq->limit : -1);
    setOpt(b[OBS_R_REM], rq->limit >= 0 ? rq->remaining : -1);
    setOpt(b[OBS_I_LIM], in->remaining >= 0 ? in->limit : -1);
    setOpt(b[OBS_I_REM], in->limit >= 0 ? in->remaining : -1);
    setOpt(b[OBS_O_LIM], out->remaining >= 0 ? out->limit : -1);
    setOpt(b[OBS_O_REM], out->limit >= 0 ? out->remaining : -1);
    setOpt(b[OBS_RESET_MS], reset);
    r->has_obs = b[OBS_R_LIM][0] || b[OBS_I_LIM][0] || b[OBS_O_LIM][0] ||
                 b[OBS_RESET_MS][0];
}

void recRequeueUnknown(settleRec *r) {
    recStart(r, OP_REQUEUE);
    setNum(r->att[ATT_SENT], 1);
    setNum(r->att[ATT_HTTP_STATUS], 0);
}

static void fieldsHead(settleRec *r, const job *j) {
    if (j->id[0]) fieldStr(r, "id", j->id);
}

static void fieldsTail(settleRec *r, const job *j, const recCtx *ctx) {
    fieldNum(r, "attempts", ctx->attempt);
    fieldNum(r, "latency_ms", ctx->latency_ms);
    if (j->model[0]) fieldStr(r, "model", j->model);
    fieldStr(r, "worker", ctx->worker);
    if (j->meta) field(r, "meta", j->meta, j->meta_len);
    if (ctx->batch_id) {
        fieldStr(r, "lane", "batch");
        fieldStr(r, "batch_id", ctx->batch_id);
    }
}

long long recOk(settleRec *r, const job *j, const char *body, size_t len,
                const outcome *o, const recCtx *ctx) {
    price p;
    long long cost = -1;
    recStart(r, OP_RESULT);
    fieldsHead(r, j);
    fieldStr(r, "status", "ok");
    field(r, "response", body, len);
    fieldsTail(r, j, ctx);
    fieldNum(r, "input_tokens", o->use.input_tokens);
    fieldNum(r, "output_tokens", o->use.output_tokens);
    fieldNum(r, "cache_creation_input_tokens", o->use.cache_creation_input_tokens);
    fieldNum(r, "cache_read_input_tokens", o->use.cache_read_input_tokens);
    if (priceLookup(j->model, strlen(j->model), &p) == 0) {
        char *c = numSlot(r);
        cost = priceCost(&p, &o->use);
        if (ctx->batch_id) cost = priceBatch(cost);
        field(r, "cost_usd", c, (size_t)priceFormatUsd(cost, c, 32));
    }
    return cost;
}

void recError(settleRec *r, const job *j, const char *type, const char *msg,
              long status, const recCtx *ctx) {
    recStart(r, OP_RESULT);
    fieldsHead(r, j);
    fieldStr(r, "status", "error");
    snprintf(r->errtype, sizeof(r->errtype), "%s", type);
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", msg);
    fieldStr(r, "error_type", r->errtype);
    fieldStr(r, "error_message", r->errmsg);
    if (status > 0) fieldNum(r, "http_status", status);
    fieldsTail(r, j, ctx);
}

/* A dead letter's "id", "reason" and "worker" members. */
static void deadHead(buf *d, const job *j, const char *reason, const recCtx *ctx) {
    bufAppendStr(d, "\"id\":");
    if (j->id[0]) bufAppendJsonString(d, j->id, strlen(j->id));
    else bufAppendStr(d, "null");
    bufAppendStr(d, ",\"reason\":");
    bufAppendJsonString(d, reason, strlen(reason));
    bufAppendStr(d, ",\"worker\":");
    bufAppendJsonString(d, ctx->worker, strlen(ctx->worker));
}

void recDeadRef(settleRec *r, const job *j, const char *ref, long long bytes,
                const char *type, const char *reason, const recCtx *ctx) {
    recError(r, j, type, reason, 0, ctx);
    r->op = OP_DEAD;
    buf *d = &r->dead;
    bufReset(d);
    bufAppendStr(d, "{\"job_ref\":");
    bufAppendJsonString(d, ref, strlen(ref));
    bufAppendStr(d, ",");
    deadHead(d, j, reason, ctx);
    bufPrintf(d, ",\"job_bytes\":%lld}", bytes);
}

void recRefused(settleRec *r, const job *j, const recCtx *ctx) {
    char att[ATT_COUNT][24];
    recOp op = r->op == OP_DEAD ? OP_DEAD : OP_RESULT;
    memcpy(att, r->att, sizeof(att));
    recStart(r, op);
    memcpy(r->att, att, sizeof(att));
    fieldsHead(r, j);
    fieldStr(r, "status", "error");
    snprintf(r->errtype, sizeof(r->errtype), "settle_refused");
    snprintf(r->errmsg, sizeof(r->errmsg), "Redis refused to store this job's record "
             "again and again while it stored others (too large for proto-max-bulk-len?): "
             "stored without its response and meta");
    fieldStr(r, "error_type", r->errtype);
    fieldStr(r, "error_message", r->errmsg);
    fieldNum(r, "attempts", ctx->attempt);
    fieldStr(r, "worker", ctx->worker);
}

void recDead(settleRec *r, const job *j, const char *raw, size_t rawlen,
             const char *type, const char *reason, const recCtx *ctx,
             long long ts_ms) {
    recError(r, j, type, reason, 0, ctx);
    r->op = OP_DEAD;
    buf *d = &r->dead;
    bufReset(d);
    bufAppendStr(d, "{");
    if (rawlen > DEAD_QUOTE_MAX) bufAppendStr(d, "\"job_ref\":\"\",");   /* settle.lua fills it */
    if (ts_ms >= 0) bufPrintf(d, "\"ts_ms\":%lld,", ts_ms);
    deadHead(d, j, reason, ctx);
    if (rawlen > DEAD_QUOTE_MAX) {
        /* The head as text: cut at a character boundary, invalid bytes
         * (not UTF-8) shown as U+FFFD by stopping before them. */
        size_t h = rawlen < DEAD_HEAD_MAX ? rawlen : DEAD_HEAD_MAX;
        while (h > 0 && ((unsigned char)raw[h] & 0xC0) == 0x80) h--;
        long bad = jsonUtf8Invalid(raw, h);
        if (bad >= 0) h = (size_t)bad;
        bufPrintf(d, ",\"job_bytes\":%zu,\"job_head\":", rawlen);
        bufAppendJsonString(d, raw, h);
    } else if (jsonUtf8Invalid(raw, rawlen) < 0) {
        bufAppendStr(d, ",\"job\":");
        bufAppendJsonString(d, raw, rawlen);
    } else {
        /* Not text: kept exactly, as base64, so the entry stays JSON. */
        bufAppendStr(d, ",\"job_base64\":\"");
        bufAppendBase64(d, raw, rawlen);
        bufAppendStr(d, "\"");
    }
    bufAppendStr(d, "}");
}

void recFree(settleRec *r) { bufFree(&r->dead); }

/* ---- settle.lua --------------------------------------------------------- */

/* The items whose headers the batch reports: per model, the one sent
 * last of those that carried some. out[] gets their indexes (< n);
 * returns how many. */
static int observations(const settleItem *items, int n, int *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!items[i].rec->has_obs) continue;
        int j = 0;
        while (j < k && strcmp(items[out[j]].model, items[i].model) != 0) j++;
        if (j == k) out[k++] = i;
        else if (items[i].t_sent >= items[out[j]].t_sent) out[j] = i;
    }
    return k;
}

int settleArgc(const settleItem *items, int n) {
    int *o = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!o) abort();
    int argc = SA_COUNT + OBS_COUNT * observations(items, n, o);
    free(o);
    for (int i = 0; i < n; i++) argc += REC_COUNT + ATT_COUNT + 1 + items[i].rec->nf;
    return argc;
}

static char opByte[][2] = {
#define X(N, v, doc) {v, 0},
    LF_OPS(X)
#undef X
};

static const char *opStr(recOp op) {
    int i = 0;
#define X(N, v, doc) if (op == OP_##N) return opByte[i]; i++;
    LF_OPS(X)
#undef X
    abort();                        /* not an op of proto.def: a bug */
}

void settleArgs(lfArgs *a, const settleHead *h, const settleItem *items, int n) {
    int *o = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!o) abort();
    int nobs = observations(items, n, o);
    argsNum(a, h->results_maxlen);  /* SA_MAXLEN */
    argsNum(a, h->claim_n);         /* SA_CLAIM_N */
    argsNum(a, h->lease_ms);        /* SA_LEASE_MS */
    argsStr(a, h->prefix ? h->prefix : "");   /* SA_PREFIX */
    argsNum(a, h->max_job);         /* SA_MAX_JOB */
    argsStr(a, h->intake ? h->intake : "");   /* SA_INTAKE */
    argsNum(a, nobs);               /* SA_NOBS */
    for (int g = 0; g < nobs; g++) {
        argsNum(a, o[g] + 1);       /* OBS_INDEX, 1-based */
        for (int k = OBS_INDEX + 1; k < OBS_COUNT; k++) argsStr(a, items[o[g]].rec->obs[k]);
    }
    free(o);
    for (int i = 0; i < n; i++) {
        const settleRec *r = items[i].rec;
        argsAdd(a, opStr(r->op), 1);            /* REC_OP */
        argsStr(a, items[i].lease);             /* REC_LEASE */
        argsStr(a, items[i].id);                /* REC_ID */
        if (r->op == OP_DEAD) argsAdd(a, r->dead.p, r->dead.len);
        else argsAdd(a, "", 0);                 /* REC_DEAD */
        argsStr(a, items[i].act ? items[i].act : "");   /* REC_ACT */
        for (int k = 0; k < ATT_COUNT; k++) argsStr(a, r->att[k]);
        argsNum(a, r->nf);                      /* NFIELDS */
        for (int f = 0; f < r->nf; f++) argsAdd(a, r->fv[f], r->fl[f]);
    }
}

int settleParse(const redisReply *r, int n, settleVerdict *out,
                const redisReply **claim, char *err, size_t errlen) {
    *claim = NULL;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != (size_t)n) {
        snprintf(err, errlen, "settle: expected {%d verdicts, claim}, got %s", n,
                 !r ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str : "another shape");
        return -1;
    }
    const redisReply *st = r->element[0];
    for (int i = 0; i < n; i++) {
        if (!isInt(st->element[i]) || !KNOWN(st->element[i]->integer, settledCodes)) {
            snprintf(err, errlen, "settle: record %d: unknown verdict %lld", i,
                     isInt(st->element[i]) ? st->element[i]->integer : -1LL);
            return -1;
        }
        out[i] = (settleVerdict)st->element[i]->integer;
    }
    if (r->element[1]->type == REDIS_REPLY_ARRAY && r->element[1]->elements > 0)
        *claim = r->element[1];
    return 0;
}

/* ---- status.lua --------------------------------------------------------- */

const char *const statusNames[STATUS_COUNT] = {
#define X(name) #name,
    LF_STATUS(X)
#undef X
};

const char *const classStatusNames[CSTATUS_COUNT] = {
#define X(name) #name,
    LF_CLASS_STATUS(X)
#undef X
};

static const char *replyStr(const redisReply *e) {
    return e->type == REDIS_REPLY_STRING ? e->str : "";
}

int statusParse(const redisReply *r, const char **vals) {
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < STATUS_COUNT ||
        (r->elements - STATUS_COUNT) % CSTATUS_COUNT != 0)
        return -1;
    for (int i = 0; i < STATUS_COUNT; i++) vals[i] = replyStr(r->element[i]);
    return (int)((r->elements - STATUS_COUNT) / CSTATUS_COUNT);
}

void statusClass(const redisReply *r, int k, const char **vals) {
    size_t base = STATUS_COUNT + (size_t)k * CSTATUS_COUNT;
    for (int i = 0; i < CSTATUS_COUNT; i++) vals[i] = replyStr(r->element[base + (size_t)i]);
}
