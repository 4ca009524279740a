/* wk.h — the worker's own types and the functions its files share
 * (worker.c: the job lifecycle; lease.c: renewal and reaping; run.c:
 * setup, signals and drain). Not a public interface: see worker.h. */
#ifndef LF_WK_H
#define LF_WK_H

#include <time.h>

#include <event2/event.h>

#include "buf.h"
#include "codec.h"
#include "hist.h"
#include "http.h"
#include "job.h"
#include "keys.h"
#include "mono.h"
#include "rds.h"
#include "worker.h"

#define REAP_INTERVAL_MS 1000       /* how often the reaper runs */
#define SETTLE_RETRY_MS 500         /* retry delay when Redis is away */
#define SETTLE_CALLS_MAX 8          /* settle calls in flight per worker ... */
#define SETTLE_PIPE_MS 2            /* ... a second one only this long after the last */
#define SETTLE_PIPE_RTT_US 5000     /* ... and only over a link this long: near Redis,
                                     * more calls only cost more per-call work */
#define SETTLE_LINGER_DIV 20        /* a settle waits for the answers still out of
                                     * requests sent with its own, at most a
                                     * twentieth of their latency ... */
#define SETTLE_LINGER_MAX_MS 25     /* ... and at most this long */
#define SETTLE_MATE_MS 2            /* requests sent this close are a group */
#define FOLLOW_MIN_LAT_MS 50        /* followers only for an API this slow (average):
                                     * a faster one answers before the follower's
                                     * admission, whose verdict its record waits for */
#define FOLLOW_LEAD_MS 50           /* a follower is claimed this long (+ 3 round
                                     * trips) before its leader's expected answer */
#define FOLLOW_FRESH_MS 20          /* a follower goes only if Redis answered
                                     * this (+ 2 round trips) lately */
#define LONG_WAIT_MS 2000           /* longer admission waits requeue the job */
#define IDLE_MAX_MS 2000            /* an idle worker (queue empty, wake armed)
                                     * claims at least this often */

/* Answers to POST /v1/messages by HTTP status class (metrics). */
enum { API_2XX, API_4XX, API_429, API_5XX, API_NONE, API_NCLASS };

/* The counters at the last summary line (metrics.c). */
typedef struct summaryMark {
    long long requests, ok, err, r429, retries, lat_n, lat_sum_us;
} summaryMark;

/* READY: claimed, waiting for a request seat or a request to follow;
 * FOLLOW: admitted to follow `lead`, sent at its answer; HELD: answered,
 * its record waits for its follower's admission verdict. */
typedef enum {
    SLOT_FREE, SLOT_COUNT, SLOT_ADMIT, SLOT_WAIT, SLOT_HTTP, SLOT_SETTLE,
    SLOT_READY, SLOT_FOLLOW, SLOT_HELD, SLOT_NSTATES
} slotState;

struct worker;

/* One local concurrency slot: a leased job from claim to settle. */
typedef struct slot {
    struct worker *w;
    slotState state;
    int lost;                       /* renew said the lease is gone */
    char lease[128];                /* lease id */
    buf raw;                        /* the job's bytes, as claimed */
    job job;                        /* parsed; points into raw */
    int attempt;                    /* attempt number from admit.lua */
    long long t_sent;               /* when the request went out (ms, mono) */
    long long latency_ms;           /* of the last attempt (0 until its answer) */
    long long wake;                 /* SLOT_WAIT: when to ask again (ms, mono) */
    long long lease_until;          /* the lease surely lives until (ms, mono):
                                     * claim or last renew sent + lease_ms */
    int suspect;                    /* runs alone: lost with a worker before */
    int go_wait;                    /* admitted: waits for --wait-replicas */
    int resent;                     /* its settle went again (a WAIT lost) */
    int landed;                     /* settled: its lease is gone, waits for replicas */
    int unsure;                     /* a settle of it got no reply (the link
                                     * broke): maybe it ran */
    httpReq http;                   /* the request and its response */
    buf countbody;                  /* SLOT_COUNT: the count_tokens body */
    int counted;                    /* a count was tried for this job */
    settleRec rec;                  /* the settle record, once it ends */
    int settle_fails;               /* settle calls that failed carrying it */
    int settle_refused;             /* ... Redis refused with it alone (protocol error) */
    long long settle_ok_mark;       /* the worker's redis_oks at the last */
    char err_type[64];              /* the error result's error_type (its log line) */
    int ends_ok;                    /* 1: the record's result is ok, 0: an
                                     * error (counted when settle says done) */
    struct slot *next;              /* in the pending-settle queue */
    struct slot *lead;              /* admitted (or asked) to follow this one */
    struct slot *follower;          /* the job that follows this one */
    int orphan;                     /* its lead ended before its verdict came */
    char act[128];                  /* the record's ACT: the follower sent at
                                     * its answer ("" none) */
} slot;

/* A batch Redis call in flight and the slots it carries. */
typedef struct batch {
    struct worker *w;
    struct claimCall *cc;           /* settle: this call also claims */
    long long t_sent;               /* when the call went out (ms, mono) */
    int n;
    slot *s[];
} batch;

typedef struct worker {
    const workerConfig *cfg;
    struct event_base *base;
    rds *redis;
    rds *waker;                     /* blocks on the empty queue (wake.c) */
    int waking;                     /* its BLMOVE is in flight */
    int wake_off;                   /* Redis refused it: poll only */
    keySet keys;
    httpClient http;
    slot *slots;
    int nslots;                     /* 3 x seats: a follower per request, and
                                     * answered ones until their settle is in */
    int seats;                      /* requests at once (--concurrency) */
    long long settle_sent;          /* when the last settle call went out */
    int lingering;                  /* flush_ev armed by settleLinger */
    int nfree;                      /* slots in SLOT_FREE */
    int claims_out;                 /* calls in flight that claim jobs */
    int polling;                    /* pump() runs for the idle timer */
    int promised;                   /* free slots those calls may fill */
    int calls;                      /* admit/settle calls in flight */
    int settles_out;                /* settle calls in flight */
    int draining;                   /* SIGTERM seen: no more claims */
    int drain_expired;              /* the drain deadline passed */
    int farewell;                   /* drained: its heartbeat removal sent */
    unsigned long long seq;         /* claim calls made, for lease ids */
    char name[96];                  /* worker name in results and leases */
    char intake[320];               /* its waker's intake list, jobs:intake:NAME */
    slot *pending, *pending_tail;   /* settle records waiting to be sent */
    struct event *idle_timer;       /* next claim after an empty queue */
    struct event *flush_ev;         /* send pending settles (zero-delay) */
    struct event *renew_timer;
    struct event *reap_timer;
    struct event *drain_timer;
    struct event *wait_timer;       /* wakes slots waiting on admission */
    struct event *follow_timer;     /* claims when a follower is due */
    long long lat_ms;               /* the API's answers: moving average (ms) */
    long ceiling;                   /* last ceiling admit.lua reported */
    soloState solo;                 /* a suspect waits or runs here */
    long long prices_ver;           /* the fleet price table held (-1 none) */
    int prices_loading;             /* a prices.lua get is in flight */
    char wait_reason[160];          /* last reason the fleet made us wait */
    struct event *sig_term, *sig_int;
    long long done_ok, done_err, retries, dups, fenced, late_go, batched;
    struct batchLane *lane;         /* the Batch lane's driver (batch.c) */
    int reap_held;                  /* the last reap found reaping held (said once) */
    int fleet_live;                 /* live workers in the fleet, as the last renew saw */
    long long seq_seen;             /* highest fleet write counter seen (renew) */
    char rewind_why[300];           /* the rewind pause's reason ... */
    int rewind_unsaid;              /* ... not yet confirmed by Redis: sent
                                     * again at each renew (tries left) */
    int seq_checked;                /* ... read since the last (re)connect: until
                                     * then no claim, admission or settle goes,
                                     * so none can carry the counter past what
                                     * a rewound Redis lost before it is seen */
    long long redis_oks;            /* script calls answered (Redis is healthy) */
    int suspect_turn;               /* the next settle call is a suspect's, alone */
    char warned_models[8][JOB_MODEL_MAX + 1];
    int nwarned;
    long long api_req[API_NCLASS];  /* answers by status class */
    long long count_calls;          /* count_tokens calls */
    hist api_latency;               /* request sent -> answer */
    struct metrics *metrics;        /* --metrics-addr (metrics.c) */
    struct event *summary_timer;    /* --summary-ms */
    summaryMark summary;
    struct replGroup *repl_out;     /* --wait-replicas: covered by the WAIT out */
    struct replGroup *repl_next;    /* ... done since: for the next WAIT */
    int repl_asked;                 /* WAITs asked for the groups out */
    long long repl_conn;            /* the connection they were asked on */
} worker;

/* A claim in flight. The script (claim.lua, or settle.lua claiming for the
 * slots it frees) answers with a count; the raw jobs never pass through
 * Lua: they wait in the claim's own list, read with an LRANGE that rds
 * sends right behind the script (rdsScriptThen: one round trip, and the
 * read's answer always comes second and from after the script). The
 * slots promised to the claim stay promised until its jobs are in. */
typedef struct claimCall {
    struct worker *w;
    int promised;                   /* free slots promised to this claim */
    int failed;                     /* no usable answer: leases get reaped */
    claimReply reply;               /* the script's answer */
    char list[192 + 160];           /* claimed:PREFIX */
    size_t prefix_at;               /* where PREFIX starts in list */
    long long t_sent;               /* when the call went out (ms, mono) */
} claimCall;

/* worker.c */
void pump(worker *w);
void slotRequeue(slot *s);
void queueSettle(slot *s);
void onHttpDone(httpReq *req, void *priv);
void onIdle(evutil_socket_t fd, short what, void *arg);
void onIdleTimer(evutil_socket_t fd, short what, void *arg);
void onFlush(evutil_socket_t fd, short what, void *arg);
void onWaitTimer(evutil_socket_t fd, short what, void *arg);
void onReady(rds *c, void *priv);
void wkTestHooks(void);
void pricesLoad(worker *w);
int seatsUsed(worker *w);          /* seats taken: requests and jobs on their way */
void flushSoon(worker *w);          /* send the pending settles now (ends a linger) */

/* lease.c */
void onRenewTimer(evutil_socket_t fd, short what, void *arg);
void onReapTimer(evutil_socket_t fd, short what, void *arg);
long fleetSpreadMs(const worker *w, long base); /* a larger fleet's interval for a poll */

/* wake.c */
void wakeArm(worker *w);
int wakeGiveBack(worker *w, int leaving, rdsCallback *cb);
void onWakerReady(rds *c, void *priv);

/* batch.c */
void batchStart(worker *w);
void batchStop(worker *w);
void batchFree(worker *w);
void batchPoke(worker *w, long long ms);    /* a batch is due in ms: look then */
int batchBusy(worker *w);          /* a batch call or transfer is running */

/* run.c */
void maybeExit(worker *w);

static inline void timerIn(struct event *ev, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static inline rdsScriptCall scriptCall(worker *w, const char *name, const char *extra,
                                       const lfArgs *a) {
    rdsScriptCall sc = {name, &w->keys, extra, a->n, a->v, a->l};
    return sc;
}

#endif
