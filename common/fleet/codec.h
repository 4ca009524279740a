/* codec.h — the fleet protocol's codecs: what goes into each Lua script
 * call and what its reply means, in the names of proto.def.
 *
 * Pure functions: arguments in, argument vectors or named verdicts out; no
 * Redis connection, no clock, no randomness (callers pass them in), so
 * tests/unit/test_codec.c checks every layout without a server. The
 * orchestration (when to call what) is worker/worker.c's. */
#ifndef LF_CODEC_H
#define LF_CODEC_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "job.h"
#include "outcome.h"
#include "proto.h"
#include "ratelimit.h"

/* ---- Argument vectors ---------------------------------------------------
 * Pointers to the caller's bytes plus numbers formatted in the vector's
 * own storage. Capacities are fixed at argsInit: exceeding one is a bug
 * and aborts. */
typedef struct lfArgs {
    const char **v;
    size_t *l;
    int n, cap;
    char (*num)[24];                /* formatted numbers v points at */
    int nnum, numcap;
} lfArgs;

void argsInit(lfArgs *a, int cap, int numcap);
void argsFree(lfArgs *a);
void argsAdd(lfArgs *a, const char *p, size_t len);
void argsStr(lfArgs *a, const char *s);
void argsNum(lfArgs *a, long long v);

/* ---- claim.lua ---------------------------------------------------------- */

typedef struct claimReply {
    long long wait_ms;              /* > 0: nothing claimed, ask again after */
    char reason[160];               /* why, when waiting */
    int n;                          /* jobs claimed: lease ids PREFIX1..n */
    long long next_ms;              /* none claimed, or drained: the next
                                     * parked job or retry is due in this
                                     * many ms (0: now, -1: none) */
    int drained;                    /* fewer claimed than asked (the queue
                                     * ran dry), next_ms said: a claim at once
                                     * would find nothing */
} claimReply;

/* CA: n, lease_ms, prefix (copied by the rds call). */
/* max_job: jobs over this many bytes are not handed out but kept in Redis
 * (lib/claim.lua); 0: no limit. */
/* intake: the worker's name: its waker's intake (jobs:intake:NAME) goes
 * back to the queue before the claim (NULL or "": none). n = 0: only that.
 * poll: an idle worker's look (its idle timer): while another worker waits
 * for the next due time and the queue is empty, the reply says so at once
 * (lib/claim.lua's pollQuiet). */
void claimArgs(lfArgs *a, int n, long lease_ms, const char *prefix, long long max_job,
               const char *intake, int poll);

/* Parse a CR reply. Returns 0, or -1 when it is not one. */
int claimParse(const redisReply *r, claimReply *out);

/* ---- admit.lua ---------------------------------------------------------- */

typedef struct admitHead {
    long lease_ms;
    int busy;                       /* requests this worker has in flight */
    soloState solo;
    long long prices_ver;           /* the price table version it holds */
} admitHead;

typedef struct admitJob {
    const char *lease;              /* lease id */
    const char *id;                 /* job id */
    const char *model;              /* request.model (admission finds its class) */
    long long input;                /* input tokens, as the worker estimates */
    long long max_tokens;
    long long reserve;              /* worst-case cost, micro-USD; -1 no price */
    const char *prefix;             /* cacheable prompt prefix's hash, "" none */
    long long prefix_tokens;        /* its estimate */
    int cache_1h;                   /* the prefix asks a 1-hour cache */
    int exact;                      /* 0 a bound, 1 a count, 2 unknown (AJ_EXACT) */
    const char *follow;             /* the lease it follows (NULL: none) */
    const char *lane;               /* the job's lane name ("" or NULL: default) */
    long long deadline_ms;          /* its deadline, unix ms (-1 none) */
    long long bytes;                /* its request's size */
} admitJob;

typedef struct admitReply {
    long ceiling;
    char reason[160];               /* why some job waits ("" none) */
    soloState solo;
    long long prices_ver;           /* the fleet's price table version */
} admitReply;

typedef struct admitResult {
    admitVerdict verdict;
    long long value;                /* attempt number, wait ms, deliveries */
} admitResult;

/* BA, then BJ per job. a must hold AA_COUNT + n * AJ_COUNT values. */
void admitArgs(lfArgs *a, const admitHead *h, const admitJob *jobs, int n);

/* Parse a reply for n jobs into out and res[0..n). Returns 0, or -1 with
 * err naming what was wrong (shape, or a verdict proto.def does not know). */
int admitParse(const redisReply *r, int n, admitReply *out, admitResult *res,
               char *err, size_t errlen);

const char *admitName(admitVerdict v);

/* ---- settle records ----------------------------------------------------
 * One record per lease that ends: the op, the attempt's accounting, the
 * result's fields. Field values point into the job, the response body and
 * the record's own storage: they must outlive the settle call's sending. */
#define REC_MAX_FIELDS 40
#define REC_NUMS 12

typedef struct settleRec {
    recOp op;
    int nf;                         /* field names and values used */
    const char *fv[REC_MAX_FIELDS];
    size_t fl[REC_MAX_FIELDS];
    char nums[REC_NUMS][32];        /* formatted numbers fields point at */
    int nnums;
    char att[ATT_COUNT][24];        /* the attempt's values (ATT) */
    char obs[OBS_COUNT][24];        /* its rate-limit headers (OBS, 1..) */
    int has_obs;                    /* the answer carried some */
    char errtype[64];               /* error type the fields point at */
    char errmsg[600];               /* error message the fields point at */
    buf dead;                       /* dead letter (OP_DEAD) */
} settleRec;

/* What every result carries besides its outcome. */
typedef struct recCtx {
    const char *worker;             /* worker name */
    int attempt;                    /* attempt number admit.lua gave */
    long long latency_ms;           /* of the last attempt */
    const char *batch_id;           /* the Batch lane's batch (NULL: sync): the
                                     * result says lane=batch, batch_id, and
                                     * costs the batch price */
} recCtx;

/* A record with no attempt values yet (ATT_SENT 0). */
void recStart(settleRec *r, recOp op);

/* The accounting of an attempt that went out: what settle.lua needs to
 * release the reservation, settle spend and observe the API's buckets.
 * cost_micro -1: unknown (the reservation counts). rand6: a number in
 * [0, 999999] for the retry's jitter. */
void recAttempt(settleRec *r, const outcome *o, const rlHeaders *rl,
                long long cost_micro, const recCtx *ctx, long rand6);

/* Sent, outcome unknown (the drain deadline cut it): requeue, and the
 * reservation counts as spent. */
void recRequeueUnknown(settleRec *r);

/* A success: the result's fields. Returns its cost in micro-USD, -1 when
 * the model has no price. */
long long recOk(settleRec *r, const job *j, const char *body, size_t len,
                const outcome *o, const recCtx *ctx);

/* An error result (op stays RESULT; a retryable one is set to FAILED by
 * the caller). status 0: none. */
void recError(settleRec *r, const job *j, const char *type, const char *msg,
              long status, const recCtx *ctx);

/* A job that can never run: error result + dead letter quoting the raw
 * job (as text, or base64 when it is not UTF-8). ts_ms: the letter's
 * time; -1 leaves it to settle.lua, which stamps Redis's clock. */
/* A job the claim kept in Redis, too large to hand out (lib/claim.lua):
 * an error result like recDead's and a dead letter {job_ref, id, reason,
 * worker, job_bytes} pointing at it. */
void recDeadRef(settleRec *r, const job *j, const char *ref, long long bytes,
                const char *type, const char *reason, const recCtx *ctx);

/* The last resort for a record Redis keeps refusing (settle calls failing
 * with it alone, while others succeed): an error result `settle_refused`
 * without the response or meta; the attempt's figures (cost, tokens) and
 * a dead letter, if it had one, are kept. */
void recRefused(settleRec *r, const job *j, const recCtx *ctx);

/* A job larger than this is not quoted in its dead letter: the letter
 * carries job_bytes, job_head (its first DEAD_HEAD_MAX bytes, as text) and
 * job_ref, and settle.lua keeps the raw bytes in Redis (`deadjob`),
 * copied there from the claim, never through the worker again. */
#define DEAD_QUOTE_MAX (64 * 1024)
#define DEAD_HEAD_MAX  4096
void recDead(settleRec *r, const job *j, const char *raw, size_t rawlen,
             const char *type, const char *reason, const recCtx *ctx,
             long long ts_ms);

void recFree(settleRec *r);

/* ---- settle.lua --------------------------------------------------------- */

typedef struct settleHead {
    long results_maxlen;
    int claim_n;                    /* > 0: claim that many afterwards */
    long lease_ms;
    const char *prefix;             /* the claim's lease id prefix */
    long long max_job;              /* as claimArgs's */
    const char *intake;             /* as claimArgs's (NULL: none) */
} settleHead;

/* One record to send: its lease, its job id, the record, and for the
 * batch's observations its model and when its request went out. */
typedef struct settleItem {
    const char *lease;
    const char *id;
    const settleRec *rec;
    const char *model;
    long long t_sent;               /* any clock, only compared */
    const char *act;                /* its follower, sent at its answer (NULL none) */
} settleItem;

/* Capacity settleArgs needs for these items. */
int settleArgc(const settleItem *items, int n);

/* SA, the observations (per model among the items: the headers of the
 * answer to the request sent last, of those that carried some), then each
 * record. */
void settleArgs(lfArgs *a, const settleHead *h, const settleItem *items, int n);

/* Parse a reply for n records: out[0..n) and the claim's reply (*claim
 * NULL when none). Returns 0, or -1 with err. */
int settleParse(const redisReply *r, int n, settleVerdict *out,
                const redisReply **claim, char *err, size_t errlen);

/* ---- status.lua --------------------------------------------------------- */

extern const char *const statusNames[STATUS_COUNT];

extern const char *const classStatusNames[CSTATUS_COUNT];

/* vals[i] = the reply's string for STATUS field i ("" when absent).
 * Returns the number of model classes that follow, or -1 when the reply is
 * not a status reply. */
int statusParse(const redisReply *r, const char **vals);

/* vals[i] = class k's string for CLASS_STATUS field i. */
void statusClass(const redisReply *r, int k, const char **vals);

#endif
