/* worker.c — the worker process (worker.h).
 *
 * Data flow of one job, each arrow one Lua script call (batched: one call
 * carries every job that is ready at that moment):
 *
 *   claim.lua   queue -> lease (token, expiry)          slot FREE -> BEGIN
 *   begin.lua   dedupe by id, count the attempt         slot BEGIN -> HTTP
 *   (libcurl)   POST /v1/messages                       slot HTTP -> SETTLE
 *   settle.lua  result | retry | dead letter | requeue  slot SETTLE -> FREE
 *
 * Timers: renew (extends this worker's leases, heartbeat), reap (returns
 * expired leases of dead workers to the queue), idle (the next claim after
 * an empty queue), drain (the SIGTERM deadline). No sleeps, no threads.
 *
 * Not here: HTTP mechanics (http.c), Redis connection handling (rds.c),
 * job validation (job.c), classification of responses (outcome.c). */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "http.h"
#include "job.h"
#include "json.h"
#include "keys.h"
#include "log.h"
#include "outcome.h"
#include "price.h"
#include "rds.h"
#include "rurl.h"

#define MAX_FIELDS 40               /* result fields of one settle record */
#define NUMS 12                     /* formatted numbers of one record */
#define REAP_BATCH 200              /* leases reaped per call */
#define REAP_INTERVAL_MS 1000       /* how often the reaper runs */
#define SETTLE_RETRY_MS 500         /* retry delay when Redis is away */

#define NACCT 10                    /* attempt values of a settle record */
#define NOBS 7                      /* rate-limit observation values */
#define SETTLE_CALLS_MAX 1          /* settle calls in flight per worker */
#define LONG_WAIT_MS 2000           /* longer admission waits requeue the job */

typedef enum { SLOT_FREE, SLOT_BEGIN, SLOT_WAIT, SLOT_HTTP, SLOT_SETTLE } slotState;

struct worker;

/* One local concurrency slot: a leased job from claim to settle. */
typedef struct slot {
    struct worker *w;
    slotState state;
    int lost;                       /* renew said the lease is gone */
    char token[128];                /* lease token */
    buf raw;                        /* the job's bytes, as claimed */
    job job;                        /* parsed; points into raw */
    int attempt;                    /* attempt number from begin.lua */
    long long t_sent;               /* when the request went out (ms, mono) */
    long long latency_ms;           /* of the last attempt */
    long long wake;                 /* SLOT_WAIT: when to ask again (ms, mono) */
    int suspect;                    /* runs alone: lost with a worker before */
    httpReq http;                   /* the request and its response */
    /* The settle record, ready for settle.lua. */
    char op;                        /* 'R' result, 'D' dead, 'F' failed, 'Q' requeue */
    int nf;                         /* fields used */
    const char *fv[MAX_FIELDS];     /* field names and values */
    size_t fl[MAX_FIELDS];
    char nums[NUMS][32];            /* formatted numbers the fields point at */
    int nnums;
    char acct[NACCT][24];           /* the attempt's accounting (settle.lua) */
    char obs[NOBS][24];             /* its rate-limit headers (settle.lua) */
    int has_obs;                    /* the answer carried some */
    char errtype[64];               /* error type the fields point at */
    char errmsg[600];               /* error message the fields point at */
    buf dead;                       /* dead-letter entry for 'D' */
    struct slot *next;              /* in the pending-settle queue */
} slot;

/* A batch Redis call in flight and the slots it carries. */
typedef struct batch {
    struct worker *w;
    struct claimCall *cc;           /* settle: this call also claims */
    int n;
    slot *s[];
} batch;

typedef struct worker {
    const workerConfig *cfg;
    struct event_base *base;
    rds *redis;
    keySet keys;
    httpClient http;
    slot *slots;
    int nslots;
    int nfree;                      /* slots in SLOT_FREE */
    int claims_out;                 /* calls in flight that claim jobs */
    int promised;                   /* free slots those calls may fill */
    int calls;                      /* begin/settle calls in flight */
    int settles_out;                /* settle calls in flight */
    int draining;                   /* SIGTERM seen: no more claims */
    int drain_expired;              /* the drain deadline passed */
    unsigned long long seq;         /* claim calls made, for tokens */
    char name[96];                  /* worker name in results and leases */
    slot *pending, *pending_tail;   /* settle records waiting to be sent */
    struct event *idle_timer;       /* next claim after an empty queue */
    struct event *flush_ev;         /* send pending settles (zero-delay) */
    struct event *renew_timer;
    struct event *reap_timer;
    struct event *drain_timer;
    struct event *wait_timer;       /* wakes slots waiting on admission */
    long ceiling;                   /* last ceiling begin.lua reported */
    int solo;                       /* 0, 1 a suspect waits, 2 one runs */
    char wait_reason[160];          /* last reason the fleet made us wait */
    struct event *sig_term, *sig_int;
    long long done_ok, done_err, retries, dups, fenced;
    char warned_models[8][JOB_MODEL_MAX + 1];
    int nwarned;
} worker;

static void pump(worker *w);
static void maybeExit(worker *w);

/* A claim in flight. The script (claim.lua, or settle.lua claiming for the
 * slots it frees) answers with lease tokens; the raw jobs never pass
 * through Lua: they wait in the claim's own list, read with an LRANGE sent
 * right behind the script call, so both answers come in one round trip.
 * Should the script have gone out again as EVAL (NOSCRIPT), the LRANGE
 * ran first and found nothing: it is sent again once the tokens are in.
 * The slots promised to the claim stay promised until its jobs are in. */
typedef struct claimCall claimCall;
struct claimCall {
    worker *w;
    int promised;                   /* free slots promised to this claim */
    int replies;                    /* answers still to come */
    int scripted;                   /* the script answered */
    int early;                      /* the LRANGE answered before it */
    int failed;                     /* no usable answer: leases get reaped */
    long long wait;                 /* the script said: ask again after */
    char reason[160];
    int n;                          /* jobs claimed: tokens PREFIX1..PREFIXn */
    char list[192 + 160];           /* claimed:PREFIX */
    size_t prefix_at;               /* where PREFIX starts in list */
};
static claimCall *claimNew(worker *w, int promised, const char *prefix, size_t len);
static void claimSent(claimCall *cc);
static void claimScriptReply(claimCall *cc, redisReply *r);
static int claimArgs(worker *w, int n, char *nbuf, char *lease, char *prefix,
                     const char **v, size_t *vl);
static void onHttpDone(httpReq *req, void *priv);
static void queueSettle(slot *s);

/* ---- Test hooks -------------------------------------------------------
 * Crash points for the reliability tests, off unless the environment asks:
 *   LLMFLEET_TEST_CRASH_ID=ID       die when a request for job ID starts
 *   LLMFLEET_TEST_CRASH_AT=after_response   die when a response arrives,
 *                                   before it is settled
 *   LLMFLEET_TEST_CRASH_AT=retry    die when a retryable failure arrives,
 *                                   before its retry is scheduled
 * The process exits at once (_exit), like a SIGKILL: nothing is flushed. */
static const char *testCrashId, *testCrashAt;

static void testCrash(const char *point, const char *id) {
    lfLog(LF_WARN, "event=test_crash point=%s id=\"%s\"", point, id);
    _exit(86);
}

static long long monoMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wallMs(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void timerIn(struct event *ev, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- Slots ------------------------------------------------------------ */

static slot *slotTake(worker *w) {
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state == SLOT_FREE) {
            w->nfree--;
            s->lost = 0;
            if (!s->w) {
                /* First use: slots are set up lazily so that an idle worker
                 * with many slots stays small. */
                s->w = w;
                httpReqInit(&w->http, &s->http, onHttpDone, s);
            }
            return s;
        }
    }
    return NULL;
}

static void slotRelease(slot *s) {
    worker *w = s->w;
    s->state = SLOT_FREE;
    s->suspect = 0;
    s->token[0] = '\0';
    /* Keep small buffers for the next job; give big ones back. */
    if (s->raw.cap > 65536) bufFree(&s->raw); else bufReset(&s->raw);
    if (s->http.body.cap > 65536) bufFree(&s->http.body); else bufReset(&s->http.body);
    if (s->dead.cap > 65536) bufFree(&s->dead); else bufReset(&s->dead);
    w->nfree++;
}

static batch *batchNew(worker *w, int n) {
    batch *b = malloc(sizeof(*b) + sizeof(slot *) * (size_t)n);
    if (!b) abort();
    b->w = w;
    b->n = 0;
    b->cc = NULL;
    return b;
}

/* ---- Settle records --------------------------------------------------- */

static void field(slot *s, const char *name, const char *v, size_t len) {
    if (s->nf + 2 > MAX_FIELDS) return;
    s->fv[s->nf] = name;
    s->fl[s->nf++] = strlen(name);
    s->fv[s->nf] = v;
    s->fl[s->nf++] = len;
}

static void fieldStr(slot *s, const char *name, const char *v) {
    field(s, name, v, strlen(v));
}

static void fieldNum(slot *s, const char *name, long long v) {
    if (s->nnums >= NUMS) return;
    char *p = s->nums[s->nnums++];
    int n = (int)fmtLL(p, v);
    field(s, name, p, (size_t)n);
}

static void recordStart(slot *s, char op) {
    s->op = op;
    s->nf = 0;
    s->nnums = 0;
    for (int i = 0; i < NACCT; i++) s->acct[i][0] = '\0';
    s->acct[0][0] = '0';
    s->acct[0][1] = '\0';
    s->has_obs = 0;
}

/* The accounting of an attempt that went out: what settle.lua needs to
 * release the reservation, settle spend and observe the API's buckets. */
static void recordAttempt(slot *s, const outcome *o, const rlHeaders *rl,
                          long long cost_micro) {
    char (*a)[24] = s->acct;
    const rlBucket *in = rl->input.limit >= 0 ? &rl->input : &rl->tokens;
    long long reset = rl->tokens.reset_ms >= 0 ? rl->tokens.reset_ms : rl->input.reset_ms;
#define SETN(i, v) fmtLL(a[i], (long long)(v))
#define SETOPT(i, v) do { if ((v) >= 0) SETN(i, v); else a[i][0] = '\0'; } while (0)
    SETN(0, 1);
    SETN(1, o->http_status);
    SETN(2, cost_micro);
    SETN(3, s->latency_ms);
    SETOPT(4, o->ok ? o->use.input_tokens : -1);
    SETOPT(5, o->ok ? o->use.output_tokens : -1);
    SETN(6, o->retry_after_ms);
    SETN(7, o->spend_limit);
    /* rand in [0, 1) with 6 decimals, for the retry's jitter */
    long r = random() % 1000000;
    a[8][0] = '0', a[8][1] = '.';
    for (int d = 7; d >= 2; d--) a[8][d] = (char)('0' + r % 10), r /= 10;
    a[8][8] = '\0';
    SETN(9, s->attempt);
    a = s->obs;
    SETOPT(0, rl->requests.remaining >= 0 ? rl->requests.limit : -1);
    SETOPT(1, rl->requests.limit >= 0 ? rl->requests.remaining : -1);
    SETOPT(2, in->remaining >= 0 ? in->limit : -1);
    SETOPT(3, in->limit >= 0 ? in->remaining : -1);
    SETOPT(4, rl->output.remaining >= 0 ? rl->output.limit : -1);
    SETOPT(5, rl->output.limit >= 0 ? rl->output.remaining : -1);
    SETOPT(6, reset);
    s->has_obs = a[0][0] || a[2][0] || a[4][0] || a[6][0];
#undef SETN
#undef SETOPT
}

/* Fields every result carries. */
static void fieldsCommon(slot *s) {
    if (s->job.id[0]) fieldStr(s, "id", s->job.id);
}

static void fieldsTail(slot *s) {
    worker *w = s->w;
    fieldNum(s, "attempts", s->attempt);
    fieldNum(s, "latency_ms", s->latency_ms);
    if (s->job.model[0]) fieldStr(s, "model", s->job.model);
    fieldStr(s, "worker", w->name);
    if (s->job.meta) field(s, "meta", s->job.meta, s->job.meta_len);
}

static void warnUnknownModel(worker *w, const char *model) {
    for (int i = 0; i < w->nwarned; i++)
        if (strcmp(w->warned_models[i], model) == 0) return;
    if (w->nwarned < 8) strcpy(w->warned_models[w->nwarned++], model);
    lfLog(LF_WARN, "event=unknown_price model=\"%s\" hint=\"add it with "
          "--prices FILE; results of this model carry no cost_usd\"", model);
}

/* Fills the fields of a success; returns its cost (-1: no price). */
static long long recordOk(slot *s, const outcome *o) {
    worker *w = s->w;
    price p;
    long long cost = -1;
    recordStart(s, 'R');
    fieldsCommon(s);
    fieldStr(s, "status", "ok");
    field(s, "response", s->http.body.p, s->http.body.len);
    fieldsTail(s);
    fieldNum(s, "input_tokens", o->use.input_tokens);
    fieldNum(s, "output_tokens", o->use.output_tokens);
    fieldNum(s, "cache_creation_input_tokens", o->use.cache_creation_input_tokens);
    fieldNum(s, "cache_read_input_tokens", o->use.cache_read_input_tokens);
    if (priceLookup(s->job.model, strlen(s->job.model), &p) == 0) {
        char *c = s->nums[s->nnums < NUMS ? s->nnums++ : NUMS - 1];
        cost = priceCost(&p, &o->use);
        int n = priceFormatUsd(cost, c, 32);
        field(s, "cost_usd", c, (size_t)n);
    } else {
        warnUnknownModel(w, s->job.model);
    }
    w->done_ok++;
    return cost;
}

static void recordError(slot *s, const char *type, const char *msg, long status) {
    recordStart(s, 'R');
    fieldsCommon(s);
    fieldStr(s, "status", "error");
    snprintf(s->errtype, sizeof(s->errtype), "%s", type);
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", msg);
    fieldStr(s, "error_type", s->errtype);
    fieldStr(s, "error_message", s->errmsg);
    if (status > 0) fieldNum(s, "http_status", status);
    fieldsTail(s);
    s->w->done_err++;
}

/* A job that can never run: error result + dead letter with the reason. */
static void recordDead(slot *s, const char *type, const char *reason) {
    worker *w = s->w;
    s->latency_ms = 0;
    recordError(s, type, reason, 0);
    s->op = 'D';
    bufReset(&s->dead);
    bufAppendStr(&s->dead, "{\"id\":");
    if (s->job.id[0]) bufAppendJsonString(&s->dead, s->job.id, strlen(s->job.id));
    else bufAppendStr(&s->dead, "null");
    bufAppendStr(&s->dead, ",\"reason\":");
    bufAppendJsonString(&s->dead, reason, strlen(reason));
    bufPrintf(&s->dead, ",\"ts_ms\":%lld,\"worker\":", wallMs());
    bufAppendJsonString(&s->dead, w->name, strlen(w->name));
    if (jsonUtf8Invalid(s->raw.p, s->raw.len) < 0) {
        bufAppendStr(&s->dead, ",\"job\":");
        bufAppendJsonString(&s->dead, s->raw.p, s->raw.len);
    } else {
        /* Not text: kept exactly, as base64, so the entry stays JSON. */
        bufAppendStr(&s->dead, ",\"job_base64\":\"");
        bufAppendBase64(&s->dead, s->raw.p, s->raw.len);
        bufAppendStr(&s->dead, "\"");
    }
    bufAppendStr(&s->dead, "}");
}

static void recordRequeue(slot *s) {
    recordStart(s, 'Q');
}

/* ---- Settle ----------------------------------------------------------- */

static void onSettled(rds *c, redisReply *r, void *priv);

static void flushSettles(worker *w) {
    int n = 0, argc = 5 + NOBS;
    /* One settle call at a time: records that become ready meanwhile
     * wait for its reply and go out together (group commit). Under load
     * the batches grow, and the scripts' per-call costs with them shrink
     * per job; an idle fleet sends each record at once. */
    if (w->settles_out >= SETTLE_CALLS_MAX) return;
    /* The batch's observation: the freshest answer's rate-limit headers. */
    slot *o = NULL;
    int oidx = 0;
    for (slot *s = w->pending; s; s = s->next) {
        n++, argc += 5 + NACCT + s->nf;
        if (s->has_obs) o = s, oidx = n;
    }
    if (n == 0) return;

    const char **v = malloc(sizeof(char *) * (size_t)argc);
    size_t *vl = malloc(sizeof(size_t) * (size_t)argc);
    char maxlen[32], nfs[n][12], cn[16], lease[32], prefix[160], oi[12];
    static const char *ops[] = {"R", "D", "F", "Q"};
    batch *b = batchNew(w, n);
    if (!v || !vl) abort();

    int k = 0;
    vl[k] = (size_t)snprintf(maxlen, sizeof(maxlen), "%ld", w->cfg->results_maxlen);
    v[k++] = maxlen;
    /* Claim for the slots this call frees, in the same call. */
    int claim = !w->draining && !evtimer_pending(w->idle_timer, NULL);
    int extra = claim && w->nfree > w->promised ? w->nfree - w->promised : 0;
    claimArgs(w, claim ? n + extra : 0, cn, lease, prefix, v + k, vl + k);
    claimCall *cc = claim ? claimNew(w, extra, v[k + 2], vl[k + 2]) : NULL;
    k += 3;
    vl[k] = fmtLL(oi, oidx);
    v[k++] = oi;
    for (int a = 0; a < NOBS; a++) {
        v[k] = o ? o->obs[a] : "";
        vl[k++] = o ? strlen(o->obs[a]) : 0;
    }
    for (slot *s = w->pending; s; s = s->next) {
        int i = b->n;
        v[k] = ops[s->op == 'R' ? 0 : s->op == 'D' ? 1 : s->op == 'F' ? 2 : 3];
        vl[k++] = 1;
        v[k] = s->token, vl[k++] = strlen(s->token);
        v[k] = s->job.id, vl[k++] = strlen(s->job.id);
        if (s->op == 'D') v[k] = s->dead.p, vl[k++] = s->dead.len;
        else v[k] = "", vl[k++] = 0;
        for (int a = 0; a < NACCT; a++) v[k] = s->acct[a], vl[k++] = strlen(s->acct[a]);
        vl[k] = fmtLL(nfs[i], s->nf);
        v[k++] = nfs[i];
        for (int f = 0; f < s->nf; f++) v[k] = s->fv[f], vl[k++] = s->fl[f];
        b->s[b->n++] = s;
    }

    const char *keys[] = {
        w->keys.name[KEY_LEASES], w->keys.name[KEY_CLAIMED],
        w->keys.name[KEY_DONE], w->keys.name[KEY_ATTEMPTS],
        w->keys.name[KEY_RESULTS], w->keys.name[KEY_DEAD],
        w->keys.name[KEY_DELAYED], w->keys.name[KEY_DELAYEDJOB],
        w->keys.name[KEY_JOBS], w->keys.name[KEY_LIMITS],
        w->keys.name[KEY_STATE], w->keys.name[KEY_INFLIGHT],
        w->keys.name[KEY_RESERV], w->keys.name[KEY_RETRYLOG],
        w->keys.name[KEY_STATS], w->keys.name[KEY_LOST],
        cc ? cc->list : w->keys.name[KEY_CLAIMED],
    };
    if (rdsScript(w->redis, "settle", 17, keys, argc, v, vl, onSettled, b) == 0) {
        w->pending = w->pending_tail = NULL;
        w->calls++;
        w->settles_out++;
        if (cc) {
            b->cc = cc;
            claimSent(cc);
        }
    } else {
        free(cc);
        free(b);        /* not connected: keep them pending and retry */
        if (!evtimer_pending(w->flush_ev, NULL)) timerIn(w->flush_ev, SETTLE_RETRY_MS);
    }
    free(v);
    free(vl);
}

static void onSettled(rds *c, redisReply *r, void *priv) {
    batch *b = priv;
    worker *w = b->w;
    (void)c;
    w->calls--;
    w->settles_out--;
    redisReply *st = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[0] : NULL;
    redisReply *claimed = st ? r->element[1] : NULL;
    if (!st || st->type != REDIS_REPLY_ARRAY || st->elements != (size_t)b->n) {
        /* Unknown whether it ran: send again. A record that did run is
         * refused the second time by the lease check (fencing); jobs it
         * may have claimed are leased to nobody here and get reaped. */
        for (int i = b->n - 1; i >= 0; i--) {
            slot *s = b->s[i];
            s->next = w->pending;
            w->pending = s;
            if (!w->pending_tail) w->pending_tail = s;
        }
        if (!evtimer_pending(w->flush_ev, NULL)) timerIn(w->flush_ev, SETTLE_RETRY_MS);
        if (b->cc) claimScriptReply(b->cc, NULL);
        free(b);
        return;
    }
    if (b->cc) {
        /* The slots freed below are the claim's until its jobs are in. */
        b->cc->promised += b->n;
        w->promised += b->n;
    }
    for (int i = 0; i < b->n; i++) {
        slot *s = b->s[i];
        long long code = st->element[i]->integer;
        if (code == 2) {
            w->retries++;
        } else if (code == 0) {
            w->dups++;
            lfLog(LF_INFO, "event=duplicate_result_refused id=\"%s\"", s->job.id);
        } else if (code < 0) {
            w->fenced++;
            lfLog(LF_WARN, "event=lease_lost_at_settle id=\"%s\" token=%s",
                  s->job.id, s->token);
        }
        slotRelease(s);
    }
    if (b->cc) claimScriptReply(b->cc, claimed);
    free(b);
    if (w->pending) flushSettles(w);
    pump(w);
    maybeExit(w);
}

static void onFlush(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    flushSettles(arg);
}

/* Queue a prepared record; all records ready in this loop iteration go out
 * in one settle.lua call. */
static void queueSettle(slot *s) {
    worker *w = s->w;
    s->state = SLOT_SETTLE;
    s->next = NULL;
    if (w->pending_tail) w->pending_tail->next = s;
    else w->pending = s;
    w->pending_tail = s;
    if (!evtimer_pending(w->flush_ev, NULL)) event_active(w->flush_ev, EV_TIMEOUT, 0);
}

/* ---- API requests ----------------------------------------------------- */

static void onHttpDone(httpReq *req, void *priv) {
    slot *s = priv;
    worker *w = s->w;
    outcome o;
    s->latency_ms = monoMs() - s->t_sent;
    if (s->suspect) {
        /* The job that ran alone is back: the others may go now. */
        s->suspect = 0;
        w->solo = 0;
        for (int i = 0; i < w->nslots; i++)
            if (w->slots[i].state == SLOT_WAIT) w->slots[i].wake = 0;
        evtimer_del(w->wait_timer);
        timerIn(w->wait_timer, 0);
    }
    outcomeClassify(&o, req->result, req->errbuf, req->too_large, req->status,
                    req->body.p, req->body.len, &req->rl);
    if (testCrashAt && strcmp(testCrashAt, "after_response") == 0)
        testCrash(testCrashAt, s->job.id);
    if (testCrashAt && strcmp(testCrashAt, "retry") == 0 && !o.ok && o.retryable)
        testCrash(testCrashAt, s->job.id);
    long long cost = -1;       /* -1: unknown (settle counts the reservation) */
    if (o.ok) {
        cost = recordOk(s, &o);
        if (cost < 0) cost = 0;    /* no price: nothing to count */
    } else if (o.retryable && w->draining) {
        recordRequeue(s);
    } else {
        /* Retryable: settle.lua decides (attempts, retry budget) and writes
         * this error result only if it does not retry. */
        recordError(s, o.error_type, o.error_message, o.http_status);
        if (o.retryable) {
            s->op = 'F';
            w->done_err--;
            lfLog(LF_INFO, "event=attempt_failed id=\"%s\" attempt=%d error_type=%s "
                  "http_status=%ld", s->job.id, s->attempt, o.error_type, o.http_status);
        }
    }
    recordAttempt(s, &o, &req->rl, cost);
    queueSettle(s);
}

static long requestTimeout(const workerConfig *cfg, const job *j) {
    if (cfg->timeout_ms > 0) return cfg->timeout_ms;
    long long t = 60000 + j->max_tokens * cfg->timeout_per_token_ms;
    return t > 3600000 ? 3600000 : (long)t;
}

static void startRequest(slot *s) {
    worker *w = s->w;
    if (testCrashId && strcmp(testCrashId, s->job.id) == 0) testCrash("start", s->job.id);
    s->state = SLOT_HTTP;
    s->t_sent = monoMs();
    if (httpStart(&s->http, s->job.request, s->job.request_len,
                  requestTimeout(w->cfg, &s->job)) < 0) {
        s->latency_ms = 0;
        recordRequeue(s);
        queueSettle(s);
    }
}

/* ---- Begin (admission) ---------------------------------------------- */

static void sendBegin(worker *w, batch *b);

static void endWithError(slot *s, const char *type, const char *msg) {
    s->latency_ms = 0;
    recordError(s, type, msg, 0);
    queueSettle(s);
}

/* Arm the wait timer for the earliest waiting slot. */
static void armWaitTimer(worker *w) {
    long long first = 0, now = monoMs();
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state == SLOT_WAIT && (!first || s->wake < first)) first = s->wake;
    }
    if (!first) return;
    evtimer_del(w->wait_timer);
    timerIn(w->wait_timer, first > now ? (long)(first - now) : 0);
}

static void onWaitTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    long long now = monoMs();
    int n = 0;
    (void)fd; (void)what;
    for (int i = 0; i < w->nslots; i++)
        if (w->slots[i].state == SLOT_WAIT && w->slots[i].wake <= now + 2) n++;
    if (n) {
        batch *b = batchNew(w, n);
        for (int i = 0; i < w->nslots; i++) {
            slot *s = &w->slots[i];
            if (s->state != SLOT_WAIT || s->wake > now + 2) continue;
            s->state = SLOT_BEGIN;
            b->s[b->n++] = s;
        }
        sendBegin(w, b);
    }
    armWaitTimer(w);
}

static void noteWait(worker *w, const char *reason, long long ms) {
    if (!reason[0] || strcmp(reason, w->wait_reason) == 0) return;
    snprintf(w->wait_reason, sizeof(w->wait_reason), "%s", reason);
    lfLog(LF_INFO, "event=fleet_wait reason=\"%s\" wait_ms=%lld", reason, ms);
}

static void onBegun(rds *c, redisReply *r, void *priv) {
    batch *b = priv;
    worker *w = b->w;
    int waiting = 0;
    (void)c;
    w->calls--;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3 + 2 * (size_t)b->n) {
        /* Unknown state: forget these jobs here. Their leases are no
         * longer renewed, expire, and the reaper puts the jobs back. */
        for (int i = 0; i < b->n; i++) slotRelease(b->s[i]);
        free(b);
        pump(w);
        maybeExit(w);
        return;
    }
    long ceiling = (long)r->element[0]->integer;
    if (ceiling != w->ceiling) {
        lfLog(LF_INFO, "event=ceiling max_in_flight=%ld", ceiling);
        w->ceiling = ceiling;
    }
    const char *reason = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "";
    if (w->solo != 2 || r->element[2]->integer == 2) w->solo = (int)r->element[2]->integer;
    for (int i = 0; i < b->n; i++) {
        slot *s = b->s[i];
        long long code = r->element[3 + 2 * i]->integer;
        long long val = r->element[4 + 2 * i]->integer;
        if (code == 7) {
            s->suspect = 1;
            lfLog(LF_INFO, "event=suspect_runs_alone id=\"%s\"", s->job.id);
            code = 1;
        } else if (code == 8) {
            code = 2;
        }
        char msg[300];
        switch (code) {
        case 1:                                 /* go */
            if (w->wait_reason[0]) w->wait_reason[0] = '\0';
            s->attempt = (int)val;
            if (w->draining) {
                recordRequeue(s);
                queueSettle(s);
            } else {
                startRequest(s);
            }
            break;
        case 0:                                 /* duplicate delivery */
            w->dups++;
            lfLog(LF_INFO, "event=duplicate_delivery_dropped id=\"%s\"", s->job.id);
            slotRelease(s);
            break;
        case 2:                                 /* wait */
            noteWait(w, reason, val);
            if (w->draining || val > LONG_WAIT_MS) {
                /* A long wait: the job waits in the queue, not here. */
                recordRequeue(s);
                queueSettle(s);
                if (!w->draining) {
                    evtimer_del(w->idle_timer);
                    timerIn(w->idle_timer, val < 5000 ? (long)val : 5000);
                }
            } else {
                s->state = SLOT_WAIT;
                s->wake = monoMs() + val + random() % (val / 10 + 2);
                waiting = 1;
            }
            break;
        case 4:                                 /* spend cap */
            noteWait(w, "spend cap reached (max_spend_usd)", 0);
            recordRequeue(s);
            queueSettle(s);
            break;
        case 5:                                 /* no price under a cap */
            snprintf(msg, sizeof(msg), "model \"%s\" has no price and the fleet "
                     "has a spend cap (max_spend_usd): refused; add the model with "
                     "--prices FILE", s->job.model);
            endWithError(s, "no_price", msg);
            break;
        case 6:                                 /* a poison job */
            snprintf(msg, sizeof(msg), "poison job: its worker was lost %lld times "
                     "while running it (max_deliveries); not sent again", val);
            lfLog(LF_WARN, "event=poison_job id=\"%s\" deliveries_lost=%lld",
                  s->job.id, val);
            recordDead(s, "worker_lost", msg);
            queueSettle(s);
            break;
        default:                                /* lease lost */
            w->fenced++;
            slotRelease(s);
        }
    }
    free(b);
    if (waiting) armWaitTimer(w);
    pump(w);
    maybeExit(w);
}

static void sendBegin(worker *w, batch *b) {
    int argc = 3 + b->n * 5;
    const char **v = malloc(sizeof(char *) * (size_t)argc);
    size_t *vl = malloc(sizeof(size_t) * (size_t)argc);
    char (*nums)[3][24] = malloc(sizeof(*nums) * (size_t)(b->n ? b->n : 1));
    char lease[32], busy[16], solo[8];
    int nbusy = 0;
    if (!v || !vl || !nums) abort();
    for (int i = 0; i < w->nslots; i++) nbusy += w->slots[i].state == SLOT_HTTP;
    vl[0] = (size_t)snprintf(lease, sizeof(lease), "%ld", w->cfg->lease_ms);
    vl[1] = (size_t)snprintf(busy, sizeof(busy), "%d", nbusy);
    vl[2] = (size_t)snprintf(solo, sizeof(solo), "%d", w->solo);
    v[0] = lease, v[1] = busy, v[2] = solo;
    for (int i = 0; i < b->n; i++) {
        slot *s = b->s[i];
        price p;
        long long reserve = -1;
        if (priceLookup(s->job.model, strlen(s->job.model), &p) == 0)
            reserve = priceReserve(&p, s->job.input_estimate, s->job.max_tokens);
        const char **a = v + 3 + 5 * i;
        size_t *al = vl + 3 + 5 * i;
        a[0] = s->token, al[0] = strlen(s->token);
        a[1] = s->job.id, al[1] = strlen(s->job.id);
        al[2] = fmtLL(nums[i][0], s->job.input_estimate);
        al[3] = fmtLL(nums[i][1], s->job.max_tokens);
        al[4] = fmtLL(nums[i][2], reserve);
        a[2] = nums[i][0], a[3] = nums[i][1], a[4] = nums[i][2];
    }
    const char *keys[] = {
        w->keys.name[KEY_LEASES], w->keys.name[KEY_CLAIMED],
        w->keys.name[KEY_DONE], w->keys.name[KEY_ATTEMPTS],
        w->keys.name[KEY_LIMITS], w->keys.name[KEY_STATE],
        w->keys.name[KEY_INFLIGHT], w->keys.name[KEY_RESERV],
        w->keys.name[KEY_RESULTS], w->keys.name[KEY_LOST],
    };
    if (rdsScript(w->redis, "begin", 10, keys, argc, v, vl, onBegun, b) == 0) {
        w->calls++;
    } else {
        for (int i = 0; i < b->n; i++) slotRelease(b->s[i]);
        free(b);
    }
    free(nums);
    free(v);
    free(vl);
}

/* ---- Claim ------------------------------------------------------------ */


static void onClaimBodies(rds *c, redisReply *r, void *priv);

static claimCall *claimNew(worker *w, int promised, const char *prefix, size_t len) {
    claimCall *cc = calloc(1, sizeof(*cc));
    if (!cc) abort();
    cc->w = w;
    cc->promised = promised;
    cc->prefix_at = strlen(w->keys.name[KEY_CLAIMED]) + 1;
    snprintf(cc->list, sizeof(cc->list), "%s:%.*s", w->keys.name[KEY_CLAIMED],
             (int)len, prefix);
    return cc;
}

static void claimFetch(claimCall *cc) {
    const char *v[] = {"LRANGE", cc->list, "0", "-1"};
    size_t vl[] = {6, strlen(cc->list), 1, 2};
    if (rdsCommand(cc->w->redis, 4, v, vl, onClaimBodies, cc) == 0) cc->replies++;
    else cc->failed = 1;
}

/* The script call went out: its list follows it. */
static void claimSent(claimCall *cc) {
    worker *w = cc->w;
    w->claims_out++;
    w->promised += cc->promised;
    cc->replies = 1;
    claimFetch(cc);
}

/* Both answers are in (or lost): the jobs take their slots. */
static void claimDone(claimCall *cc, redisReply *bodies) {
    worker *w = cc->w;
    char err[300];
    w->claims_out--;
    w->promised -= cc->promised;
    if (cc->failed || cc->wait > 0 || cc->n == 0) {
        if (cc->wait > 0) {
            /* Paused or stopped at the spend cap: ask again when it may
             * end, and at least every second (limits can change). */
            noteWait(w, cc->reason, cc->wait);
            timerIn(w->idle_timer, cc->wait < 1000 ? (long)cc->wait : 1000);
        } else {
            timerIn(w->idle_timer, w->cfg->idle_poll_ms);
        }
        maybeExit(w);
        return;
    }
    if (!bodies || bodies->type != REDIS_REPLY_ARRAY || bodies->elements != (size_t)cc->n) {
        /* The list is not what the script left: nobody here holds these
         * leases, the reaper puts the jobs back. */
        lfLog(LF_WARN, "event=claim_list_unreadable list=\"%s\" tokens=%d", cc->list, cc->n);
        timerIn(w->idle_timer, w->cfg->idle_poll_ms);
        maybeExit(w);
        return;
    }
    batch *b = batchNew(w, cc->n);
    for (int i = 0; i < cc->n; i++) {
        redisReply *raw = bodies->element[i];
        slot *s = slotTake(w);
        if (!s) abort();    /* claim asked for at most nfree jobs */
        snprintf(s->token, sizeof(s->token), "%s%d", cc->list + cc->prefix_at, i + 1);
        bufReset(&s->raw);
        if (raw->type == REDIS_REPLY_STRING) bufAppend(&s->raw, raw->str, raw->len);
        if (jobParse(&s->job, s->raw.p, s->raw.len, w->cfg->max_job_bytes, err,
                     sizeof(err)) < 0) {
            lfLog(LF_WARN, "event=invalid_job id=\"%s\" error=\"%s\"", s->job.id, err);
            s->attempt = 0;
            recordDead(s, "invalid_job", err);
            queueSettle(s);
            continue;
        }
        s->state = SLOT_BEGIN;
        b->s[b->n++] = s;
    }
    if (b->n) sendBegin(w, b);
    else free(b);
    pump(w);
}

static void claimFinish(claimCall *cc, redisReply *bodies) {
    if (cc->replies > 0) return;
    claimDone(cc, bodies);
    free(cc);
}

/* The script's answer: {now, wait_ms, reason[, n]}. */
static void claimScriptReply(claimCall *cc, redisReply *r) {
    cc->replies--;
    cc->scripted = 1;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[1]->type != REDIS_REPLY_INTEGER) {
        cc->failed = 1;
    } else if (r->element[1]->integer > 0) {
        cc->wait = r->element[1]->integer;
        snprintf(cc->reason, sizeof(cc->reason), "%s",
                 r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "");
    } else if (r->elements > 3 && r->element[3]->type == REDIS_REPLY_INTEGER &&
               r->element[3]->integer > 0) {
        cc->n = (int)r->element[3]->integer;
        if (cc->early) {
            lfLog(LF_INFO, "event=claim_list_read_again list=\"%s\" reason=\"the script "
                  "ran after the LRANGE (resent as EVAL)\"", cc->list);
            claimFetch(cc);
        }
    }
    claimFinish(cc, NULL);
}

static void onClaimBodies(rds *c, redisReply *r, void *priv) {
    claimCall *cc = priv;
    (void)c;
    cc->replies--;
    if (!cc->scripted) {
        cc->early = 1;          /* ran before the script: ask again after it */
        return;
    }
    if (!r) cc->failed = 1;
    claimFinish(cc, r);
}

static void onClaimed(rds *c, redisReply *r, void *priv) {
    (void)c;
    claimScriptReply(priv, r);
}

static void pump(worker *w) {
    if (w->draining || w->claims_out > 0 || w->nfree <= w->promised) return;
    if (!rdsReady(w->redis) || evtimer_pending(w->idle_timer, NULL)) return;
    char n[16], lease[32], prefix[160];
    const char *v[3];
    size_t vl[3];
    int ask = claimArgs(w, w->nfree - w->promised, n, lease, prefix, v, vl);
    claimCall *cc = claimNew(w, ask, prefix, vl[2]);
    const char *keys[] = {
        w->keys.name[KEY_JOBS], w->keys.name[KEY_LEASES],
        w->keys.name[KEY_CLAIMED], w->keys.name[KEY_DELAYED],
        w->keys.name[KEY_DELAYEDJOB], w->keys.name[KEY_LIMITS],
        w->keys.name[KEY_STATE], w->keys.name[KEY_RETRYLOG], cc->list,
    };
    lfLog(LF_DEBUG, "event=claim_call n=%d", w->nfree);
    if (rdsScript(w->redis, "claim", 9, keys, 3, v, vl, onClaimed, cc) == 0) claimSent(cc);
    else free(cc);
}

/* The three claim arguments (n, lease_ms, unique token prefix) into
 * v/vl, formatted in the caller's buffers. */
static int claimArgs(worker *w, int n, char *nbuf, char *lease, char *prefix,
                     const char **v, size_t *vl) {
    vl[0] = (size_t)snprintf(nbuf, 16, "%d", n);
    vl[1] = (size_t)snprintf(lease, 32, "%ld", w->cfg->lease_ms);
    vl[2] = (size_t)snprintf(prefix, 160, "%s:%llu:", w->name, ++w->seq);
    v[0] = nbuf, v[1] = lease, v[2] = prefix;
    return n;
}

static void onIdle(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    pump(arg);
}

static void onReady(rds *c, void *priv) {
    (void)c;
    pump(priv);
}

/* ---- Lease renewal and reaping ---------------------------------------- */

static void onRenewed(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c;
    if (!r || r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *t = r->element[i];
        for (int k = 0; k < w->nslots; k++) {
            slot *s = &w->slots[k];
            if (s->state != SLOT_FREE && strlen(s->token) == t->len &&
                memcmp(s->token, t->str, t->len) == 0 && !s->lost) {
                s->lost = 1;
                lfLog(LF_WARN, "event=lease_lost id=\"%s\" token=%s",
                      s->job.id, s->token);
            }
        }
    }
}

static void onRenewTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    timerIn(w->renew_timer, w->cfg->lease_ms / 3);
    int n = 0;
    const char **v = malloc(sizeof(char *) * (size_t)(w->nslots + 3));
    size_t *vl = malloc(sizeof(size_t) * (size_t)(w->nslots + 3));
    char lease[32], ttl[32];
    if (!v || !vl) abort();
    vl[0] = (size_t)snprintf(lease, sizeof(lease), "%ld", w->cfg->lease_ms);
    vl[2] = (size_t)snprintf(ttl, sizeof(ttl), "%ld", w->cfg->lease_ms);
    v[0] = lease, v[1] = w->name, vl[1] = strlen(w->name), v[2] = ttl;
    n = 3;
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state == SLOT_FREE || s->lost || !s->token[0]) continue;
        v[n] = s->token;
        vl[n++] = strlen(s->token);
    }
    const char *keys[] = {w->keys.name[KEY_LEASES], w->keys.name[KEY_WORKERS],
                          w->keys.name[KEY_INFLIGHT]};
    rdsScript(w->redis, "renew", 3, keys, n, v, vl, onRenewed, w);
    free(v);
    free(vl);
}

static void onReaped(rds *c, redisReply *r, void *priv) {
    (void)c; (void)priv;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        lfLog(LF_WARN, "event=reaped_expired_leases n=%lld", r->integer);
}

static void onReapTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    timerIn(w->reap_timer, REAP_INTERVAL_MS * 4 / 5 + random() % (REAP_INTERVAL_MS * 2 / 5));
    if (w->draining) return;
    char n[16];
    const char *v[1] = {n};
    size_t vl[1];
    vl[0] = (size_t)snprintf(n, sizeof(n), "%d", REAP_BATCH);
    const char *keys[] = {
        w->keys.name[KEY_LEASES], w->keys.name[KEY_CLAIMED],
        w->keys.name[KEY_JOBS], w->keys.name[KEY_WORKERS],
        w->keys.name[KEY_INFLIGHT], w->keys.name[KEY_RESERV],
        w->keys.name[KEY_STATE], w->keys.name[KEY_LOST], w->keys.name[KEY_STATS],
    };
    rdsScript(w->redis, "reap", 9, keys, 1, v, vl, onReaped, w);
}

/* ---- Shutdown --------------------------------------------------------- */

static void maybeExit(worker *w) {
    if (!w->draining) return;
    if (w->nfree == w->nslots && w->claims_out == 0 && w->calls == 0 && !w->pending)
        event_base_loopexit(w->base, NULL);
}

static void onDrainDeadline(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    if (w->drain_expired) {
        /* Redis is not taking our settles: leave, the leases expire. */
        lfLog(LF_WARN, "event=drain_abandoned pending_slots=%d", w->nslots - w->nfree);
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->drain_expired = 1;
    int n = 0;
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state != SLOT_HTTP) continue;
        httpCancel(&s->http);
        recordRequeue(s);
        /* Sent, outcome unknown: settle.lua counts its reservation. */
        snprintf(s->acct[0], sizeof(s->acct[0]), "1");
        snprintf(s->acct[1], sizeof(s->acct[1]), "0");
        queueSettle(s);
        n++;
    }
    lfLog(LF_WARN, "event=drain_deadline requeued=%d", n);
    timerIn(w->drain_timer, 5000);
    maybeExit(w);
}

static void onSignal(evutil_socket_t sig, short what, void *arg) {
    worker *w = arg;
    (void)what;
    if (w->draining) {
        lfLog(LF_WARN, "event=exit_now signal=%d", (int)sig);
        _exit(1);
    }
    w->draining = 1;
    evtimer_del(w->idle_timer);
    evtimer_del(w->wait_timer);
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state != SLOT_WAIT) continue;
        recordRequeue(s);
        queueSettle(s);
    }
    lfLog(LF_INFO, "event=draining signal=%d in_flight=%d deadline_ms=%ld",
          (int)sig, w->nslots - w->nfree, w->cfg->drain_timeout_ms);
    timerIn(w->drain_timer, w->cfg->drain_timeout_ms);
    maybeExit(w);
}

/* ---- Setup ------------------------------------------------------------ */

void workerConfigDefaults(workerConfig *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->version = "2023-06-01";
    cfg->concurrency = 64;
    cfg->lease_ms = 30000;
    cfg->connect_timeout_ms = 10000;
    cfg->timeout_per_token_ms = 60;
    cfg->idle_poll_ms = 100;
    cfg->drain_timeout_ms = 30000;
    cfg->results_maxlen = 1000000;
    cfg->max_job_bytes = 32u << 20;
    cfg->max_response_bytes = 64u << 20;
}

static void raiseFdLimit(int want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t need = (rlim_t)want;
    if (rl.rlim_cur >= need) return;
    rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void defaultName(char *out, size_t len) {
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(out, len, "%.40s:%d:%04lx", host, (int)getpid(), random() & 0xffff);
}

int workerRun(const workerConfig *cfg) {
    worker w;
    rurl url;
    char err[300];
    int rc = 1;

    memset(&w, 0, sizeof(w));
    w.cfg = cfg;
    testCrashId = getenv("LLMFLEET_TEST_CRASH_ID");
    testCrashAt = getenv("LLMFLEET_TEST_CRASH_AT");
    srandom((unsigned)(time(NULL) ^ getpid() ^ (monoMs() << 8)));
    if (rdsResolveUrl(cfg->redis_url, &url, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmfleet worker: %s\n", err);
        return 2;
    }
    if (keysInit(&w.keys, cfg->fleet) < 0) {
        fprintf(stderr, "llmfleet worker: bad fleet name \"%s\" (1-100 of "
                "A-Z a-z 0-9 _ - .)\n", cfg->fleet);
        return 2;
    }
    if (!cfg->api_key || !*cfg->api_key) {
        fprintf(stderr, "llmfleet worker: ANTHROPIC_API_KEY is not set\n");
        return 2;
    }
    if (httpIsInsecureRemote(cfg->base_url) && !cfg->allow_insecure_http) {
        fprintf(stderr, "llmfleet worker: refusing plain http:// to a "
                "non-loopback host (ANTHROPIC_BASE_URL); use https:// or "
                "--allow-insecure-http\n");
        return 2;
    }
    if (cfg->prices && priceLoadFile(cfg->prices, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmfleet worker: %s\n", err);
        return 2;
    }
    if (cfg->name) snprintf(w.name, sizeof(w.name), "%s", cfg->name);
    else defaultName(w.name, sizeof(w.name));

    raiseFdLimit(cfg->concurrency * 2 + 256);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    w.base = event_base_new();
    if (httpInit(&w.http, w.base, cfg->base_url, cfg->api_key, cfg->version,
                 cfg->connect_timeout_ms, cfg->max_response_bytes,
                 cfg->concurrency, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmfleet worker: %s\n", err);
        goto out_base;
    }
    w.nslots = w.nfree = cfg->concurrency;
    w.slots = calloc((size_t)w.nslots, sizeof(slot));
    if (!w.slots) abort();
    w.idle_timer = evtimer_new(w.base, onIdle, &w);
    w.flush_ev = evtimer_new(w.base, onFlush, &w);
    w.renew_timer = evtimer_new(w.base, onRenewTimer, &w);
    w.reap_timer = evtimer_new(w.base, onReapTimer, &w);
    w.drain_timer = evtimer_new(w.base, onDrainDeadline, &w);
    w.wait_timer = evtimer_new(w.base, onWaitTimer, &w);
    w.sig_term = evsignal_new(w.base, SIGTERM, onSignal, &w);
    w.sig_int = evsignal_new(w.base, SIGINT, onSignal, &w);
    evsignal_add(w.sig_term, NULL);
    evsignal_add(w.sig_int, NULL);
    timerIn(w.renew_timer, cfg->lease_ms / 3);
    timerIn(w.reap_timer, REAP_INTERVAL_MS);

    char where[300];
    rurlDescribe(&url, where, sizeof(where));
    lfLog(LF_INFO, "event=worker_start name=%s fleet=%s redis=%s concurrency=%d "
          "lease_ms=%ld", w.name, cfg->fleet, where, cfg->concurrency, cfg->lease_ms);
    w.redis = rdsCreate(w.base, &url, onReady, &w);
    memset(&url, 0, sizeof(url));

    event_base_dispatch(w.base);

    lfLog(LF_INFO, "event=worker_stop name=%s ok=%lld error=%lld retries=%lld "
          "duplicates=%lld lost_leases=%lld", w.name, w.done_ok, w.done_err,
          w.retries, w.dups, w.fenced);
    rc = 0;
    rdsFree(w.redis);
    for (int i = 0; i < w.nslots; i++) {
        if (!w.slots[i].w) continue;
        httpReqFree(&w.slots[i].http);
        bufFree(&w.slots[i].raw);
        bufFree(&w.slots[i].dead);
    }
    free(w.slots);
    event_free(w.idle_timer);
    event_free(w.flush_ev);
    event_free(w.renew_timer);
    event_free(w.reap_timer);
    event_free(w.drain_timer);
    event_free(w.wait_timer);
    event_free(w.sig_term);
    event_free(w.sig_int);
    httpShutdown(&w.http);
out_base:
    event_base_free(w.base);
    curl_global_cleanup();
    return rc;
}
