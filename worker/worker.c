/* worker.c — the worker process (worker.h): slots, timers and the job
 * lifecycle.
 *
 * Data flow of one job, each arrow one Lua script call (batched: one call
 * carries every job that is ready at that moment):
 *
 *   claim.lua   queue -> lease (lease id, expiry)       slot FREE -> BEGIN
 *   admit.lua   admission: dedupe, pace, reserve        slot BEGIN -> HTTP
 *   (libcurl)   POST /v1/messages                       slot HTTP -> SETTLE
 *   settle.lua  result | retry | dead letter | requeue  slot SETTLE -> FREE
 *               (and claims for the slots it frees)
 *
 * Timers: renew (extends this worker's leases, heartbeat), reap (returns
 * expired leases of dead workers to the queue), idle (the next claim after
 * an empty queue), wait (slots admission told to wait), drain (the SIGTERM
 * deadline). No sleeps, no threads.
 *
 * Not here: what goes into a script call and what its reply means
 * (common/fleet/codec.c), HTTP mechanics (http.c), Redis connections
 * (rds.c), job validation and response classification (common/api). */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "outcome.h"
#include "price.h"
#include "wk.h"
static void sendAdmit(worker *w, batch *b);
static int claimWant(worker *w, int freeing);
static void dispatch(worker *w);
static void startRequest(slot *s);
static void handOver(slot *l);
static claimCall *claimNew(worker *w, int promised);
static void claimSent(claimCall *cc);
static void onClaimBodies(rds *c, redisReply *r, void *priv);

/* ---- Test hooks -------------------------------------------------------
 * Crash points for the reliability tests, off unless the environment asks:
 *   LLMFLEET_TEST_CRASH_ID=ID       die when a request for job ID starts
 *   LLMFLEET_TEST_CRASH_AT=after_response   die when a response arrives,
 *                                   before it is settled
 *   LLMFLEET_TEST_CRASH_AT=retry    die when a retryable failure arrives,
 *                                   before its retry is scheduled
 * The process exits at once (_exit), like a SIGKILL: nothing is flushed.
 *   LLMFLEET_TEST_CRASH_AT=stop_after_admit   SIGSTOP itself once, as an
 *                                   admission reply with a "go" arrives,
 *                                   before acting on it (a zombie-to-be) */
static const char *testCrashId, *testCrashAt;

void wkTestHooks(void) {
    testCrashId = getenv("LLMFLEET_TEST_CRASH_ID");
    testCrashAt = getenv("LLMFLEET_TEST_CRASH_AT");
}

static void testCrash(const char *point, const char *id) {
    lfLog(LF_WARN, "event=test_crash point=%s id=%s", point, lfQ(id));
    _exit(86);
}


/* ---- Slots ------------------------------------------------------------ */

static slot *slotTake(worker *w) {
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state == SLOT_FREE) {
            w->nfree--;
            s->lost = 0;
            s->latency_ms = 0;          /* (a settle record's, and settleLinger's) */
            s->err_type[0] = '\0';
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

/* s is not to follow its lead after all: the lead goes on without it (its
 * record, held for s's verdict, goes now). */
static void unfollow(slot *s) {
    slot *l = s->lead;
    if (!l) return;
    l->follower = NULL;
    s->lead = NULL;
    if (l->state == SLOT_HELD) queueSettle(l);
}

static void slotRelease(slot *s) {
    worker *w = s->w;
    /* A suspect released without its answer (not sent after all): the
     * others need not wait for it. */
    if (s->suspect) w->solo = SOLO_NONE;
    if (s->follower) {
        /* It ended without handing over: its follower does not go. */
        slot *f = s->follower;
        s->follower = NULL;
        f->lead = NULL;
        if (f->state == SLOT_FOLLOW) slotRequeue(f);     /* settle.lua gives back its charges */
        else f->orphan = 1;
    }
    unfollow(s);
    s->orphan = 0;
    s->act[0] = '\0';
    s->state = SLOT_FREE;
    s->suspect = 0;
    s->go_wait = 0;
    s->resent = 0;
    s->landed = 0;
    s->unsure = 0;
    s->settle_fails = 0;
    s->settle_refused = 0;
    s->counted = 0;
    s->lease[0] = '\0';
    /* Keep small buffers for the next job; give big ones back. */
    if (s->raw.cap > 65536) bufFree(&s->raw); else bufReset(&s->raw);
    if (s->http.body.cap > 65536) bufFree(&s->http.body); else bufReset(&s->http.body);
    if (s->rec.dead.cap > 65536) bufFree(&s->rec.dead); else bufReset(&s->rec.dead);
    if (s->countbody.cap > 65536) bufFree(&s->countbody); else bufReset(&s->countbody);
    w->nfree++;
}

static batch *batchNew(worker *w, int n) {
    batch *b = malloc(sizeof(*b) + sizeof(slot *) * (size_t)n);
    if (!b) abort();
    b->w = w;
    b->n = 0;
    b->cc = NULL;
    b->t_sent = monoMs();
    return b;
}

static recCtx slotCtx(const slot *s) {
    recCtx c = {s->w->name, s->attempt, s->latency_ms, NULL};
    return c;
}

static void warnUnknownModel(worker *w, const char *model) {
    for (int i = 0; i < w->nwarned; i++)
        if (strcmp(w->warned_models[i], model) == 0) return;
    if (w->nwarned < 8) strcpy(w->warned_models[w->nwarned++], model);
    lfLog(LF_WARN, "event=unknown_price model=%s hint=\"add it with "
          "llmfleet prices set; results of this model carry no cost_usd\"", lfQ(model));
}

/* An error result for the slot's job. */
static void slotError(slot *s, const char *type, const char *msg, long status) {
    recCtx c = slotCtx(s);
    recError(&s->rec, &s->job, type, msg, status, &c);
    s->ends_ok = 0;
    snprintf(s->err_type, sizeof(s->err_type), "%s", type);
}

/* A job that can never run: error result + dead letter with the reason. */
static void slotDead(slot *s, const char *type, const char *reason) {
    s->latency_ms = 0;
    recCtx c = slotCtx(s);
    recDead(&s->rec, &s->job, s->raw.p, s->raw.len, type, reason, &c, -1);   /* Redis time */
    s->ends_ok = 0;
    snprintf(s->err_type, sizeof(s->err_type), "%s", type);
}

/* The claim's stand-in for a job too large to hand out (lib/claim.lua):
 * dead-lettered, pointing at the job Redis kept. Returns 0 when raw is
 * not one. */
static int slotOversized(slot *s) {
    static const char tag[] = "{\"llmfleet_oversized\":";
    if (s->raw.len < sizeof(tag) - 1 || memcmp(s->raw.p, tag, sizeof(tag) - 1) != 0) return 0;
    jsonDoc d;
    char err[64], ref[200] = "", msg[200];
    long long bytes = -1;
    memset(&s->job, 0, sizeof(s->job));
    if (jsonParse(&d, s->raw.p, s->raw.len, 16, 2, err, sizeof(err)) == 0) {
        jsonInt(&d, jsonGet(&d, 0, "llmfleet_oversized"), &bytes);
        jsonStr(&d, jsonGet(&d, 0, "ref"), ref, sizeof(ref));
        if (jsonStr(&d, jsonGet(&d, 0, "id"), s->job.id, sizeof(s->job.id)) < 0) s->job.id[0] = '\0';
        jsonFree(&d);
    }
    snprintf(msg, sizeof(msg), "job is %lld bytes, over the %zu byte limit (kept in Redis "
             "unread: its dead letter's job_ref)", bytes, s->w->cfg->max_job_bytes);
    lfLog(LF_WARN, "event=invalid_job id=%s error=%s", lfQ(s->job.id), lfQ(msg));
    s->latency_ms = 0;
    s->attempt = 0;
    recCtx c = slotCtx(s);
    recDeadRef(&s->rec, &s->job, ref, bytes, "invalid_job", msg, &c);
    s->ends_ok = 0;
    snprintf(s->err_type, sizeof(s->err_type), "invalid_job");
    queueSettle(s);
    return 1;
}

void slotRequeue(slot *s) {
    unfollow(s);                    /* a follower not sent */
    recStart(&s->rec, OP_REQUEUE);
    queueSettle(s);
}

/* ---- Settle ----------------------------------------------------------- */

static void onSettled(rds *c, redisReply *r, void *priv);
static void settleRelease(worker *w, batch *b, settleVerdict *v);
static void replWaitSend(worker *w, batch *b, settleVerdict *v);
static void goConfirmed(slot *s, long long call_sent);

/* One settle call at a time: records that become ready meanwhile wait for
 * its reply and go out together (group commit). Under load the batches
 * grow, and the scripts' per-call costs with them shrink per job; an idle
 * fleet sends each record at once. */
/* A record that was in a failed settle call is a suspect: it goes alone,
 * every other call (so that one record Redis refuses, say past its
 * proto-max-bulk-len, cannot fail the others' calls again and again). A
 * suspect that failed alone three times while other calls succeeded is
 * stored as recRefused (an error without its response); so is one that
 * Redis refused alone with a protocol error (an argument past its
 * proto-max-bulk-len): that is this record, not Redis's health. */
static slot *pickSuspect(worker *w, int *healthy) {
    slot *sus = NULL;
    *healthy = 0;
    for (slot *s = w->pending; s; s = s->next) {
        if (!s->settle_fails) (*healthy)++;
        else if (!sus) sus = s;
    }
    if (!sus || (*healthy && !w->suspect_turn)) {
        if (sus) w->suspect_turn = 1;
        return NULL;
    }
    w->suspect_turn = 0;
    if (sus->settle_refused || (sus->settle_fails >= 3 && w->redis_oks > sus->settle_ok_mark)) {
        recCtx c = slotCtx(sus);
        lfLog(LF_ERROR, "event=settle_refused id=%s fails=%d action=stored_without_response",
              lfQ(sus->job.id), sus->settle_fails);
        recRefused(&sus->rec, &sus->job, &c);
        sus->ends_ok = 0;
        snprintf(sus->err_type, sizeof(sus->err_type), "settle_refused");
    }
    return sus;
}

/* Take the batch's slots out of the pending list. */
static void unlinkPending(worker *w, slot *lone) {
    slot **pp = &w->pending;
    w->pending_tail = NULL;
    while (*pp) {
        slot *s = *pp;
        if (lone ? s == lone : !s->settle_fails) {
            *pp = s->next;
            continue;
        }
        w->pending_tail = s;
        pp = &s->next;
    }
}

/* Requests sent together (within SETTLE_MATE_MS: one admission's group)
 * are answered together. A settle whose records' group mates are still
 * out waits for them, at most a twentieth of the answers' latency
 * (SETTLE_LINGER_MAX_MS at most) after the first answer came, so that a
 * group settles in one call, not in one and then the rest behind it: each
 * call costs Redis far more than a record in it. Only while most seats and
 * most slots are free (a paced fleet: a busy worker's slots would wait).
 * Returns the ms to wait, 0 to send now (a record not from an answer:
 * latency 0; one sent again; a fast API; no mate out). */
static long long settleLinger(worker *w) {
    long long first = 0, win = SETTLE_LINGER_MAX_MS, now;
    if (w->draining || w->settles_out > 0 || seatsUsed(w) * 2 > w->seats ||
        (w->nslots - w->nfree) * 2 > w->nslots)
        return 0;
    for (slot *s = w->pending; s; s = s->next) {
        long long at = s->t_sent + s->latency_ms;
        if (s->settle_fails || s->latency_ms / SETTLE_LINGER_DIV < 1) return 0;
        if (s->latency_ms / SETTLE_LINGER_DIV < win) win = s->latency_ms / SETTLE_LINGER_DIV;
        if (!first || at < first) first = at;
    }
    now = monoMs();
    if (now >= first + win) return 0;
    for (int i = 0; i < w->nslots; i++) {
        const slot *h = &w->slots[i];
        if (h->state != SLOT_HTTP) continue;
        for (slot *s = w->pending; s; s = s->next)
            if (llabs(h->t_sent - s->t_sent) <= SETTLE_MATE_MS) return first + win - now;
    }
    return 0;
}

static void flushSettles(worker *w) {
    int n = 0;
    if (!w->pending || !w->seq_checked) return;
    long long linger = settleLinger(w);
    if (linger > 0) {
        if (!evtimer_pending(w->flush_ev, NULL)) {
            timerIn(w->flush_ev, (long)linger);
            w->lingering = 1;
        }
        return;
    }
    if (w->settles_out > 0) {
        /* One at a time (group commit), unless the round trip is long:
         * then another every SETTLE_PIPE_MS, so that a record does not
         * wait a round trip behind the call in flight. */
        long long age = monoMs() - w->settle_sent;
        if (w->settles_out >= SETTLE_CALLS_MAX || w->cfg->wait_replicas ||
            rdsRttLowUs(w->redis) < SETTLE_PIPE_RTT_US)
            return;
        if (age < SETTLE_PIPE_MS) {
            if (!evtimer_pending(w->flush_ev, NULL)) timerIn(w->flush_ev, (long)(SETTLE_PIPE_MS - age));
            return;
        }
    }
    slot *lone = pickSuspect(w, &n);
    if (lone) n = 1;

    settleItem *items = malloc(sizeof(*items) * (size_t)n);
    batch *b = batchNew(w, n);
    if (!items) abort();
    for (slot *s = w->pending; s; s = s->next) {
        if (lone ? s != lone : s->settle_fails != 0) continue;
        items[b->n] = (settleItem){s->lease, s->job.id, &s->rec, s->job.model, s->t_sent,
                                   s->act[0] ? s->act : NULL};
        b->s[b->n++] = s;
    }
    /* Claim for the slots this call frees, in the same call (not while
     * the slots wait for replicas: they are not free when the jobs come),
     * also while the worker waits on its idle timer (a drained queue:
     * settles are what serve the parked lines between due times). */
    int claim = !w->draining && !w->cfg->wait_replicas;
    int want = claim ? claimWant(w, n) : 0;
    claimCall *cc = claim ? claimNew(w, want) : NULL;
    settleHead h = {w->cfg->results_maxlen, want, w->cfg->lease_ms,
                    cc ? cc->list + cc->prefix_at : "", (long long)w->cfg->max_job_bytes,
                    w->name};
    lfArgs a;
    argsInit(&a, settleArgc(items, n), 8 + 2 * n);
    settleArgs(&a, &h, items, n);
    rdsScriptCall sc = scriptCall(w, "settle", cc ? cc->list : NULL, &a);
    int sent;
    if (cc) {
        const char *rv[] = {"LRANGE", cc->list, "0", "-1"};
        size_t rl[] = {6, strlen(cc->list), 1, 2};
        sent = rdsScriptThen(w->redis, &sc, onSettled, b, 4, rv, rl, onClaimBodies, cc);
    } else {
        sent = rdsScript(w->redis, &sc, onSettled, b);
    }
    if (sent == 0) {
        unlinkPending(w, lone);
        w->calls++;
        w->settles_out++;
        w->settle_sent = monoMs();
        b->cc = cc;
        if (cc) claimSent(cc);
    } else {
        free(cc);
        free(b);        /* not connected: keep them pending and retry */
        if (!evtimer_pending(w->flush_ev, NULL)) timerIn(w->flush_ev, SETTLE_RETRY_MS);
    }
    argsFree(&a);
    free(items);
}

/* A settle call's records whose fate is unknown go back to the front of
 * the pending list, to be sent again shortly (fenced: a copy that landed
 * changes nothing the second time). */
static void settleAgain(worker *w, batch *b) {
    for (int i = b->n - 1; i >= 0; i--) {
        slot *s = b->s[i];
        s->next = w->pending;
        w->pending = s;
        if (!w->pending_tail) w->pending_tail = s;
    }
    if (!evtimer_pending(w->flush_ev, NULL)) timerIn(w->flush_ev, SETTLE_RETRY_MS);
}

static void onSettled(rds *c, redisReply *r, void *priv) {
    batch *b = priv;
    worker *w = b->w;
    settleVerdict *v = malloc(sizeof(*v) * (size_t)b->n);
    const redisReply *claimed;
    char err[200];
    (void)c;
    if (!v) abort();
    w->calls--;
    w->settles_out--;
    if (settleParse(r, b->n, v, &claimed, err, sizeof(err)) < 0) {
        /* Unknown whether it ran: send again. A record that did run is
         * refused the second time by the lease check (fencing); jobs it
         * may have claimed are leased to nobody here and get reaped. */
        /* An error reply was logged where it arrived (rds.c). */
        if (r && r->type != REDIS_REPLY_ERROR)
            lfLog(LF_ERROR, "event=protocol_error %s", err);
        int refused = r && r->type == REDIS_REPLY_ERROR &&
                      strncmp(r->str, "ERR Protocol error", 18) == 0;
        for (int i = 0; i < b->n; i++) {
            slot *s = b->s[i];
            s->settle_fails++;
            if (!r) s->unsure = 1;
            if (refused && b->n == 1) s->settle_refused = 1;
            s->settle_ok_mark = w->redis_oks;
        }
        settleAgain(w, b);
        if (b->cc) b->cc->failed = 1;
        free(v);
        free(b);
        return;
    }
    w->redis_oks++;
    if (b->cc) {
        if (!claimed || claimParse(claimed, &b->cc->reply) < 0) b->cc->failed = 1;
    }
    if (w->cfg->wait_replicas > 0) {
        replWaitSend(w, b, v);
        return;
    }
    settleRelease(w, b, v);
}

/* The settle's verdicts are in (and on --wait-replicas replicas): count
 * them, free the slots. Frees b and v. */
static void settleRelease(worker *w, batch *b, settleVerdict *v) {
    for (int i = 0; i < b->n; i++) {
        slot *s = b->s[i];
        switch (v[i]) {
        case SETTLED_DONE:
            /* The worker_stop summary counts results written, as settled. */
            if (s->rec.op != OP_REQUEUE) {
                if (s->ends_ok) {
                    w->done_ok++;
                } else {
                    w->done_err++;
                    /* Once per job, when its error result is written. */
                    lfLog(LF_INFO, "event=job_error id=%s error_type=%s attempts=%d",
                          lfQ(s->job.id), lfQ(s->err_type[0] ? s->err_type : "unknown"), s->attempt);
                }
            }
            break;
        case SETTLED_RETRY:
            w->retries++;
            break;
        case SETTLED_DUP:
        case SETTLED_LOST:
            if (s->resent || (v[i] == SETTLED_LOST && s->unsure && monoMs() < s->lease_until)) {
                /* Sent again after a WAIT was lost: the first copy landed.
                 * Or after a copy got no reply (the link broke): the lease
                 * is gone while it surely lived, so that copy ended it (a
                 * DUP means the lease lived: the copy did not land). */
                lfLog(LF_INFO, "event=settle_resent_had_landed id=%s", lfQ(s->job.id));
                if (s->ends_ok) w->done_ok++; else w->done_err++;
            } else if (v[i] == SETTLED_DUP) {
                w->dups++;
                lfLog(LF_INFO, "event=duplicate_result_refused id=%s", lfQ(s->job.id));
            } else {
                w->fenced++;
                lfLog(LF_WARN, "event=lease_lost_at_settle id=%s lease=%s",
                      lfQ(s->job.id), s->lease);
            }
            break;
        }
        slotRelease(s);
    }
    free(v);
    free(b);
    if (w->pending) flushSettles(w);
    pump(w);
    maybeExit(w);
}

/* ---- Replicas (--wait-replicas N) --------------------------------------
 * What a failover must not lose waits until N replicas have it: a "go" is
 * acted on only once the admission that reserved its spend has reached
 * them, and settled slots are freed only once their results, spend and
 * lease ends have. WAIT on the worker's one connection covers every write
 * that connection made before it, so one WAIT is out at a time and covers
 * every group (an admission's gos, a settle's slots) whose reply came
 * before it was sent; groups done meanwhile go with the next. Short of N
 * within --wait-replicas-ms: asked again (a replica is behind; the slots
 * wait, and other calls pass between two WAITs). The connection lost, or a
 * WAIT that would go out on a new connection (it would cover nothing
 * written on the old one): the settles go out again (to the new master
 * after a failover; fenced by their leases, they change nothing where they
 * had landed), the gos are requeued unsent, as an admission without a
 * reply is: wherever the admission landed, settle.lua gives its
 * reservation back at no cost (a lease the new master lacks is fenced,
 * and its job never left the queue there). Left to expire, the reaper
 * would count the reservation as spent (an unknown outcome) for requests
 * that never went. */
typedef struct replGroup {
    batch *b;                   /* the slots */
    settleVerdict *v;           /* a settle's verdicts; NULL: admission gos */
    struct replGroup *next;
} replGroup;

static void onReplWaited(rds *c, redisReply *r, void *priv);

static void replAsk(worker *w) {
    char n[24], ms[24];
    const char *argv[] = {"WAIT", n, ms};
    size_t len[] = {4, (size_t)snprintf(n, sizeof(n), "%d", w->cfg->wait_replicas),
                    (size_t)snprintf(ms, sizeof(ms), "%ld", w->cfg->wait_replicas_ms)};
    /* The groups done since the last ask are covered from now on. */
    replGroup **tail = &w->repl_out;
    while (*tail) tail = &(*tail)->next;
    *tail = w->repl_next;
    w->repl_next = NULL;
    long long conn = rdsGetStats(w->redis)->connects;
    if (w->repl_asked == 0) w->repl_conn = conn;
    w->repl_asked++;
    if (conn == w->repl_conn && rdsCommand(w->redis, 3, argv, len, onReplWaited, w) == 0) {
        w->calls++;
        return;
    }
    onReplWaited(NULL, NULL, w);        /* another connection, or none: lost */
}

static void replAskAgain(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    replAsk(arg);
}

static void replWaitSend(worker *w, batch *b, settleVerdict *v) {
    replGroup *g = calloc(1, sizeof(*g));
    if (!g) abort();
    /* Settled: not renewed meanwhile (the lease is gone; renew.lua would
     * report it lost). */
    for (int i = 0; v && i < b->n; i++) b->s[i]->landed = 1;
    g->b = b;
    g->v = v;
    g->next = w->repl_next;
    w->repl_next = g;
    if (!w->repl_asked) replAsk(w);
}

/* The WAIT's groups are safe (ok) or their fate unknown. */
static void replDone(worker *w, int ok) {
    replGroup *g = w->repl_out;
    w->repl_out = NULL;
    w->repl_asked = 0;
    while (g) {
        replGroup *next = g->next;
        batch *b = g->b;
        if (g->v && ok) {
            settleRelease(w, b, g->v);
        } else if (g->v) {
            /* Unknown whether the settle survives: it goes out again. */
            for (int i = 0; i < b->n; i++) {
                b->s[i]->resent = 1;
                b->s[i]->landed = 0;        /* maybe leased still: renewed */
            }
            settleAgain(w, b);
            free(g->v);
            free(b);
        } else {
            for (int i = 0; i < b->n; i++) {
                slot *s = b->s[i];
                s->go_wait = 0;
                if (ok) goConfirmed(s, b->t_sent);
                else slotRequeue(s);    /* never sent: its reservation back at 0 */
            }
            free(b);
        }
        free(g);
        g = next;
    }
    if (w->repl_next) replAsk(w);
    pump(w);
    maybeExit(w);
}

static void onReplWaited(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    if (c) w->calls--;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer < w->cfg->wait_replicas) {
        if (w->repl_asked == 1 || w->repl_asked % 30 == 0)
            lfLog(LF_WARN, "event=replicas_behind acked=%lld want=%d asked=%d "
                  "action=requests_and_settled_slots_wait", r->integer,
                  w->cfg->wait_replicas, w->repl_asked);
        replAsk(w);
        return;
    }
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ERR WAIT cannot be used", 23) != 0) {
        /* Refused (an ACL without WAIT): nothing is confirmed, so nothing
         * goes on; said, and asked again a timeout later. (A demoted
         * master's refusal is a lost reply: see above.) */
        if (w->repl_asked == 1 || w->repl_asked % 30 == 0)
            lfLog(LF_ERROR, "event=wait_replicas_refused error=%s hint=\"allow WAIT to "
                  "the worker's Redis user, or run without --wait-replicas\"", lfQ(r->str));
        struct timeval tv = {w->cfg->wait_replicas_ms / 1000, (w->cfg->wait_replicas_ms % 1000) * 1000};
        event_base_once(w->base, -1, EV_TIMEOUT, replAskAgain, w, &tv);
        return;
    }
    replDone(w, r && r->type == REDIS_REPLY_INTEGER);
}

void onFlush(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    ((worker *)arg)->lingering = 0;
    flushSettles(arg);
}

/* Queue a prepared record; all records ready in this loop iteration go out
 * in one settle.lua call. */
void queueSettle(slot *s) {
    worker *w = s->w;
    s->state = SLOT_SETTLE;
    s->next = NULL;
    if (w->pending_tail) w->pending_tail->next = s;
    else w->pending = s;
    w->pending_tail = s;
    flushSoon(w);                       /* (a mate came: look again now) */
}

/* The pending settles go out in this loop iteration (flushSettles decides
 * whether they wait): a linger's timer gives way; a retry's stays. */
void flushSoon(worker *w) {
    if (w->lingering) {
        evtimer_del(w->flush_ev);
        w->lingering = 0;
    }
    if (!evtimer_pending(w->flush_ev, NULL)) event_active(w->flush_ev, EV_TIMEOUT, 0);
}

/* ---- API requests ----------------------------------------------------- */

/* ---- count_tokens -------------------------------------------------------
 * A job whose input has no upper bound (a document by url or file: the
 * API fetches it) is counted before admission, so that its spend
 * reservation is the truth, not a guess; and so is a job that admission
 * finds near the spend cap (COUNT: its bound does not fit, the truth may):
 * POST /v1/messages/count_tokens (free, its own rate limit). Should the
 * count fail, the job goes on with its bound, or for an unbounded one its
 * estimate (event=count_failed). */

static void countDone(slot *s, long long n, const char *why) {
    worker *w = s->w;
    if (n >= 0) {
        lfLog(LF_DEBUG, "event=counted id=%s input_tokens=%lld estimate=%lld",
              lfQ(s->job.id), n, s->job.spend_input);
        s->job.spend_input = n;
        s->job.spend_unbounded = 0;
    } else {
        lfLog(LF_WARN, "event=count_failed id=%s reason=%s spend_input=%lld "
              "hint=\"reserved from the estimate: the spend cap may be passed by it\"",
              lfQ(s->job.id), lfQ(why), s->job.spend_input);
    }
    batch *b = batchNew(w, 1);
    s->state = SLOT_ADMIT;
    b->s[b->n++] = s;
    sendAdmit(w, b);
}

static void startCount(slot *s) {
    s->counted = 1;
    if (jobCountBody(&s->job, &s->countbody) < 0) {
        countDone(s, -1, "the request could not be re-read");
        return;
    }
    s->state = SLOT_COUNT;
    s->w->count_calls++;
    if (httpStartCount(&s->http, s->countbody.p, s->countbody.len, 60000) < 0)
        countDone(s, -1, "the request could not start");
}

static void onCounted(slot *s, httpReq *req) {
    char why[CURL_ERROR_SIZE + 32];
    long long n = -1;
    if (req->result != CURLE_OK)
        snprintf(why, sizeof(why), "%s", req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->result));
    else if (req->status != 200)
        snprintf(why, sizeof(why), "HTTP %ld", req->status);
    else if ((n = jobCountParse(req->body.p, req->body.len)) < 0)
        snprintf(why, sizeof(why), "no input_tokens in the answer");
    countDone(s, n, why);
}

void onHttpDone(httpReq *req, void *priv) {
    slot *s = priv;
    worker *w = s->w;
    outcome o;
    if (s->state == SLOT_COUNT) {
        onCounted(s, req);
        return;
    }
    s->latency_ms = monoMs() - s->t_sent;
    histAdd(&w->api_latency, s->latency_ms * 1000);
    w->lat_ms = w->lat_ms ? (7 * w->lat_ms + s->latency_ms) / 8 : s->latency_ms;
    w->api_req[req->status == 429 ? API_429 : req->status >= 500 ? API_5XX :
               req->status >= 400 ? API_4XX : req->status >= 200 && !req->too_large &&
               !req->too_slow && req->result == CURLE_OK ? API_2XX : API_NONE]++;
    if (s->suspect) {
        /* The job that ran alone is back: the others may go now. */
        s->suspect = 0;
        w->solo = SOLO_NONE;
        for (int i = 0; i < w->nslots; i++)
            if (w->slots[i].state == SLOT_WAIT) w->slots[i].wake = 0;
        evtimer_del(w->wait_timer);
        timerIn(w->wait_timer, 0);
    }
    outcomeClassify(&o, req->result, req->errbuf,
                    req->too_large ? CUT_TOO_LARGE : req->too_slow ? CUT_SLOW : CUT_NONE, req->status,
                    req->body.p, req->body.len, &req->rl);
    /* Nothing the API (or a gateway before it) sends back may carry the
     * key into Redis: error texts lose it and any sk-ant- token, a stored
     * response has it masked. */
    outcomeScrub(&o, w->cfg->api_key);
    if (o.ok && maskKey(req->body.p, req->body.len, w->cfg->api_key) > 0)
        lfLog(LF_WARN, "event=key_in_response id=%s action=masked", lfQ(s->job.id));
    if (testCrashAt && strcmp(testCrashAt, "after_response") == 0)
        testCrash(testCrashAt, s->job.id);
    if (testCrashAt && strcmp(testCrashAt, "retry") == 0 && !o.ok && o.retryable)
        testCrash(testCrashAt, s->job.id);
    long long cost = -1;       /* -1: unknown (settle counts the reservation) */
    recCtx c = slotCtx(s);
    if (o.ok) {
        cost = recOk(&s->rec, &s->job, req->body.p, req->body.len, &o, &c);
        if (cost < 0) {
            warnUnknownModel(w, s->job.model);
            cost = 0;           /* no price: nothing to count */
        }
        s->ends_ok = 1;
    } else if (o.retryable && w->draining) {
        recStart(&s->rec, OP_REQUEUE);
    } else if (o.retryable) {
        /* settle.lua decides (attempts, retry budget) and writes this
         * error result only if it does not retry. */
        recError(&s->rec, &s->job, o.error_type, o.error_message, o.http_status, &c);
        s->rec.op = OP_FAILED;
        s->ends_ok = 0;
        snprintf(s->err_type, sizeof(s->err_type), "%s", o.error_type);
        lfLog(LF_INFO, "event=attempt_failed id=%s attempt=%d error_type=%s "
              "http_status=%ld", lfQ(s->job.id), s->attempt, lfQ(o.error_type), o.http_status);
    } else {
        slotError(s, o.error_type, o.error_message, o.http_status);
    }
    recAttempt(&s->rec, &o, &req->rl, cost, &c, random() % 1000000);
    slot *f = s->follower;
    if (f && f->state == SLOT_ADMIT) {
        /* Its follower's verdict is on its way: the record waits for it
         * (its ACT says whether the follower went). */
        s->state = SLOT_HELD;
        return;
    }
    if (f) handOver(s);
    queueSettle(s);
    dispatch(w);
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
        slotRequeue(s);
    }
}

/* ---- Admission (admit.lua) --------------------------------------------- */

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

void onWaitTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    long long now = monoMs();
    int n = 0;
    (void)fd; (void)what;
    for (int i = 0; i < w->nslots; i++)
        if (w->slots[i].state == SLOT_WAIT && w->slots[i].wake <= now + 2) {
            w->slots[i].state = SLOT_READY;
            n++;
        }
    if (n) dispatch(w);
    armWaitTimer(w);
}

static void noteWait(worker *w, const char *reason, long long ms) {
    if (!reason[0] || strcmp(reason, w->wait_reason) == 0) return;
    snprintf(w->wait_reason, sizeof(w->wait_reason), "%s", reason);
    if (ms >= 86400000LL)       /* an operator's pause: until resumed */
        lfLog(LF_INFO, "event=fleet_wait reason=%s until=resumed", lfQ(reason));
    else
        lfLog(LF_INFO, "event=fleet_wait reason=%s wait_ms=%lld", lfQ(reason), ms);
}

/* Admission said wait: here (short waits), or back in the queue. */
static int admitWait(slot *s, const char *reason, long long ms) {
    worker *w = s->w;
    noteWait(w, reason, ms);
    if (w->draining || ms > LONG_WAIT_MS) {
        slotRequeue(s);
        if (!w->draining) {
            evtimer_del(w->idle_timer);
            timerIn(w->idle_timer, ms < 5000 ? (long)ms : 5000);
        }
        return 0;
    }
    s->state = SLOT_WAIT;
    s->wake = monoMs() + ms + random() % (ms / 10 + 2);
    return 1;
}

/* A "go" is acted on only while the lease surely lives: a worker that was
 * stopped (SIGSTOP, a frozen VM) between the call and its reply would
 * otherwise send requests for leases reaped long ago, which someone else
 * runs. At least a tenth of a lease must be left, and the reply must not
 * come later than half a lease after the call. */
static int goTooLate(const slot *s, long long call_sent) {
    long long now = monoMs(), lease = s->w->cfg->lease_ms;
    return now > s->lease_until - lease / 10 || now - call_sent > lease / 2;
}

/* A go whose admission stands (on --wait-replicas replicas too). */
/* A go too late to act on (goTooLate): not sent, the job goes back
 * (fenced if its lease is gone). Returns 1 then. */
static int lateGo(slot *s, long long call_sent) {
    if (!goTooLate(s, call_sent)) return 0;
    s->w->late_go++;
    lfLog(LF_WARN, "event=late_go id=%s lease=%s call_age_ms=%lld lease_left_ms=%lld "
          "action=not_sent", lfQ(s->job.id), s->lease, monoMs() - call_sent,
          s->lease_until - monoMs());
    slotRequeue(s);
    return 1;
}

static void goConfirmed(slot *s, long long call_sent) {
    if (s->w->cfg->wait_replicas > 0 && lateGo(s, call_sent)) return;
    if (s->w->draining) slotRequeue(s);
    else startRequest(s);
}

/* One job's verdict. Returns 1 when the slot now waits here. */
static int admitOne(slot *s, const admitResult *a, const char *reason, long long call_sent) {
    worker *w = s->w;
    char msg[300];
    slot *lead = s->lead;
    int go = a->verdict == ADMIT_GO || a->verdict == ADMIT_GO_ALONE;
    if (s->orphan) {
        /* Its lead ended before this verdict: a go is not sent. */
        s->orphan = 0;
        if (go) {
            slotRequeue(s);
            return 0;
        }
    } else if (lead && (!go || goTooLate(s, call_sent))) {
        unfollow(s);
    }
    switch (a->verdict) {
    case ADMIT_GO_ALONE:
    case ADMIT_GO:
        if (lateGo(s, call_sent)) return 0;
        if (s->lead) {
            s->attempt = (int)a->value;
            w->wait_reason[0] = '\0';
            if (lead->state == SLOT_HELD) {
                handOver(lead);
                queueSettle(lead);
            } else {
                s->state = SLOT_FOLLOW;
            }
            return 0;
        }
        if (a->verdict == ADMIT_GO_ALONE) {
            s->suspect = 1;
            lfLog(LF_INFO, "event=suspect_runs_alone id=%s", lfQ(s->job.id));
        }
        w->wait_reason[0] = '\0';
        s->attempt = (int)a->value;
        if (w->cfg->wait_replicas > 0) s->go_wait = 1;  /* onAdmitted asks WAIT */
        else goConfirmed(s, call_sent);
        return 0;
    case ADMIT_DUP:
        w->dups++;
        lfLog(LF_INFO, "event=duplicate_delivery_dropped id=%s", lfQ(s->job.id));
        slotRelease(s);
        return 0;
    case ADMIT_LOST:
        w->fenced++;
        slotRelease(s);
        return 0;
    case ADMIT_COUNT:
        startCount(s);
        return 0;
    case ADMIT_DUPID:
        w->dups++;
        lfLog(LF_WARN, "event=duplicate_id id=%s action=dead_lettered "
              "hint=\"another job with this id and other contents is running\"",
              lfQ(s->job.id));
        slotRelease(s);
        return 0;
    case ADMIT_WAIT:
    case ADMIT_WAIT_ALONE:
        return admitWait(s, reason, a->value);
    case ADMIT_BATCHED:
        /* The Batch lane has it (batch.c): its lease, pushed to the
         * batch's horizon, is the forming batch's now, not this slot's. */
        w->wait_reason[0] = '\0';
        w->batched++;
        lfLog(LF_DEBUG, "event=batched id=%s", lfQ(s->job.id));
        slotRelease(s);
        batchPoke(w, a->value);
        return 0;
    case ADMIT_PARKED:                  /* its class waits; the slot is free */
        noteWait(w, reason, a->value);
        slotRelease(s);
        return 0;
    case ADMIT_BUDGET:
        noteWait(w, reason && *reason ? reason : "spend cap reached (max_spend_usd)", 0);
        slotRequeue(s);
        return 0;
    case ADMIT_NOPRICE:
        snprintf(msg, sizeof(msg), "model \"%s\" has no price and the fleet has a "
                 "spend cap (max_spend_usd): refused; add the model with "
                 "llmfleet prices set", s->job.model);
        s->latency_ms = 0;
        slotError(s, "no_price", msg, 0);
        queueSettle(s);
        return 0;
    case ADMIT_POISON:
        snprintf(msg, sizeof(msg), "poison job: its worker was lost %lld times "
                 "while running it (max_deliveries); not sent again", a->value);
        lfLog(LF_WARN, "event=poison_job id=%s deliveries_lost=%lld",
              lfQ(s->job.id), a->value);
        slotDead(s, "worker_lost", msg);
        queueSettle(s);
        return 0;
    }
    return 0;
}

static void onAdmitted(rds *c, redisReply *r, void *priv) {
    batch *b = priv;
    worker *w = b->w;
    admitReply h;
    admitResult *res = malloc(sizeof(*res) * (size_t)(b->n ? b->n : 1));
    char err[200];
    int waiting = 0;
    (void)c;
    if (!res) abort();
    w->calls--;
    if (admitParse(r, b->n, &h, res, err, sizeof(err)) < 0) {
        /* Unknown whether the admission ran; no request went: the jobs
         * go back unsent (a reservation, if any, is given back at no
         * cost; a lease that is gone fences the record). Left to expire,
         * the reaper would count each reservation as spent and a lost
         * delivery towards the poison limit. */
        /* An error reply was logged where it arrived (rds.c). */
        if (r && r->type != REDIS_REPLY_ERROR)
            lfLog(LF_ERROR, "event=protocol_error %s", err);
        for (int i = 0; i < b->n; i++) slotRequeue(b->s[i]);
    } else {
        w->redis_oks++;
        if (h.ceiling != w->ceiling) {
            lfLog(LF_INFO, "event=ceiling max_in_flight=%ld", h.ceiling);
            w->ceiling = h.ceiling;
        }
        if (w->solo != SOLO_RUNS || h.solo == SOLO_RUNS) w->solo = h.solo;
        if (h.prices_ver != w->prices_ver) pricesLoad(w);
        static int stopped;
        if (testCrashAt && !stopped && strcmp(testCrashAt, "stop_after_admit") == 0) {
            for (int i = 0; i < b->n && !stopped; i++)
                if (res[i].verdict == ADMIT_GO || res[i].verdict == ADMIT_GO_ALONE) {
                    stopped = 1;
                    lfLog(LF_WARN, "event=test_stop point=stop_after_admit");
                    raise(SIGSTOP);
                }
        }
        batch *gos = NULL;
        for (int i = 0; i < b->n; i++) {
            waiting |= admitOne(b->s[i], &res[i], h.reason, b->t_sent);
            if (!b->s[i]->go_wait) continue;
            if (!gos) {
                gos = batchNew(w, b->n);
                gos->t_sent = b->t_sent;
            }
            gos->s[gos->n++] = b->s[i];
        }
        if (gos) replWaitSend(w, gos, NULL);
    }
    free(res);
    free(b);
    if (waiting) armWaitTimer(w);
    pump(w);
    maybeExit(w);
}

static void sendAdmit(worker *w, batch *b) {
    admitJob *jobs = malloc(sizeof(*jobs) * (size_t)(b->n ? b->n : 1));
    admitHead h = {w->cfg->lease_ms, 0, w->solo, w->prices_ver};
    if (!jobs) abort();
    for (int i = 0; i < w->nslots; i++)
        h.busy += w->slots[i].state == SLOT_HTTP || w->slots[i].go_wait;
    for (int i = 0; i < b->n; i++) {
        slot *s = b->s[i];
        price p;
        long long reserve = -1;
        if (priceLookup(s->job.model, strlen(s->job.model), &p) == 0)
            reserve = priceReserveCached(&p, s->job.spend_input, s->job.max_tokens,
                                         s->job.cache_1h ? 2 : s->job.has_cache);
        jobs[i] = (admitJob){s->lease, s->job.id, s->job.model, s->job.input_estimate,
                             s->job.max_tokens, reserve, s->job.prefix,
                             s->job.prefix_tokens, s->job.cache_1h,
                             !s->counted ? 0 : s->job.spend_unbounded ? 2 : 1,
                             s->lead ? s->lead->lease : NULL, jobLaneNames[s->job.lane],
                             s->job.deadline_ms, (long long)s->job.request_len};
    }
    lfArgs a;
    argsInit(&a, AA_COUNT + AJ_COUNT * b->n, AA_COUNT + 8 * b->n);
    admitArgs(&a, &h, jobs, b->n);
    rdsScriptCall sc = scriptCall(w, "admit", NULL, &a);
    if (rdsScript(w->redis, &sc, onAdmitted, b) == 0) {
        w->calls++;
    } else {
        /* Not connected: the jobs go back once it is (settle retries). */
        for (int i = 0; i < b->n; i++) slotRequeue(b->s[i]);
        free(b);
    }
    argsFree(&a);
    free(jobs);
}

/* ---- Seats and followers -------------------------------------------------
 * A worker sends at most `seats` requests at once (--concurrency), and
 * holds up to three times as many jobs (answered ones keep theirs until
 * their settle is in): a job ready while every seat is taken is
 * admitted to follow a request in flight (FOLLOW: admit.lua charges it and
 * lets it take over that request's in-flight unit) and goes out the
 * moment that request's answer arrives, not a Redis round trip later. The
 * answer's settle record says it went (ACT). */

/* Requests (and the jobs on their way to becoming one) holding a seat. */
int seatsUsed(worker *w) {
    int n = 0;
    for (int i = 0; i < w->nslots; i++) {
        const slot *s = &w->slots[i];
        if (s->lead) continue;
        switch (s->state) {
        case SLOT_COUNT: case SLOT_ADMIT: case SLOT_WAIT: case SLOT_HTTP: case SLOT_HELD:
            n++;
            break;
        default:
            break;
        }
    }
    return n;
}

/* Ready jobs to admission: into free seats, else to follow a request in
 * flight that has no follower yet; the rest wait for one. */
static void dispatch(worker *w) {
    int ready = 0, li = 0;
    if (!w->seq_checked) return;            /* (the renew's reply dispatches) */
    for (int i = 0; i < w->nslots; i++) ready += w->slots[i].state == SLOT_READY;
    if (!ready) return;
    if (w->draining) {
        for (int i = 0; i < w->nslots; i++)
            if (w->slots[i].state == SLOT_READY) slotRequeue(&w->slots[i]);
        return;
    }
    int used = seatsUsed(w);
    batch *b = batchNew(w, ready);
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state != SLOT_READY) continue;
        if (used < w->seats || w->nslots == w->seats) {     /* (no followers: a seat each) */
            used++;
        } else {
            slot *l = NULL;
            /* (To an API faster than FOLLOW_MIN_LAT_MS none: they wait.) */
            for (; li < w->nslots && !l && w->lat_ms >= FOLLOW_MIN_LAT_MS; li++) {
                slot *c = &w->slots[li];
                if (c->state == SLOT_HTTP && !c->follower && !c->suspect && !c->lost &&
                    w->solo == SOLO_NONE)
                    l = c;
            }
            if (!l) break;
            s->lead = l;
            l->follower = s;
        }
        s->state = SLOT_ADMIT;
        b->s[b->n++] = s;
    }
    if (b->n) sendAdmit(w, b);
    else free(b);
}

/* Jobs to claim now (freeing: slots the call that claims frees): one per
 * free seat, and one per request in flight due a follower (its answer
 * expected within FOLLOW_LEAD_MS and three round trips: a claim and an
 * admission take two, the third is slack; claimed earlier, a follower
 * would sit idle here while another worker has free seats), less the
 * jobs ready and promised; at most the free slots. Arms the follow timer
 * for the next one due. */
static int claimWant(worker *w, int freeing) {
    int room = w->nfree + freeing - w->promised;
    if (room <= 0) return 0;
    if (w->nslots == w->seats) return room;         /* no followers */
    long long now = monoMs(), next = 0;
    long long lead = FOLLOW_LEAD_MS + 3 * rdsRttUs(w->redis) / 1000;
    int want = w->seats - seatsUsed(w) - w->promised;
    for (int i = 0; i < w->nslots; i++) {
        const slot *s = &w->slots[i];
        if (s->state == SLOT_READY) {
            want--;
        } else if (s->state == SLOT_HTTP && !s->follower && w->lat_ms >= FOLLOW_MIN_LAT_MS &&
                   !w->draining) {
            long long due = s->t_sent + w->lat_ms - lead;
            if (due <= now) want++;
            else if (!next || due < next) next = due;
        }
    }
    if (next) {
        evtimer_del(w->follow_timer);
        timerIn(w->follow_timer, (long)(next - now));
    }
    return want < 0 ? 0 : want > room ? room : want;
}

/* Redis answered lately: within FOLLOW_FRESH_MS and two round trips.
 * Otherwise it may be cut off (a silent partition is noticed only at the
 * reply deadline): a follower sent now could run twice, once here and
 * once after its lease is reaped, so it is not. */
static int redisFresh(worker *w) {
    long long since = rdsSinceReplyMs(w->redis);
    return since >= 0 && since <= FOLLOW_FRESH_MS + 2 * rdsRttUs(w->redis) / 1000;
}

/* l's answer is in: its follower goes now, and l's record says so. */
static void handOver(slot *l) {
    worker *w = l->w;
    slot *f = l->follower;
    l->follower = NULL;
    f->lead = NULL;
    /* (Nor while a suspect waits or runs alone: it waits for nothing
     * else to be in flight.) */
    if (w->draining || f->lost || monoMs() > f->lease_until - w->cfg->lease_ms / 10 ||
        w->solo != SOLO_NONE || !redisFresh(w)) {
        slotRequeue(f);
        return;
    }
    snprintf(l->act, sizeof(l->act), "%s", f->lease);
    startRequest(f);
}

/* ---- Claim ------------------------------------------------------------ */

static claimCall *claimNew(worker *w, int promised) {
    claimCall *cc = calloc(1, sizeof(*cc));
    if (!cc) abort();
    cc->w = w;
    cc->promised = promised;
    cc->t_sent = monoMs();
    cc->prefix_at = strlen(w->keys.name[KEY_CLAIMED]) + 1;
    snprintf(cc->list, sizeof(cc->list), "%s:%s:%llu:", w->keys.name[KEY_CLAIMED],
             w->name, ++w->seq);
    return cc;
}

/* The claim went out with the script call that carries it. */
static void claimSent(claimCall *cc) {
    cc->w->claims_out++;
    cc->w->promised += cc->promised;
}

/* The queue is empty: a push wakes the worker (wake.c); else ask again
 * when the next parked job or retry is due (next_ms > 0: the one worker
 * told it, wake_at), and at least every IDLE_MAX_MS (jobs other workers
 * park or delay), jittered, times the fleet's spread: 16 idle workers
 * looked 8 times a second in all (~0.16 empty claims per paced job), now
 * about twice. */
static void drained(worker *w, long long next_ms) {
    long t = w->cfg->idle_poll_ms > IDLE_MAX_MS ? w->cfg->idle_poll_ms : IDLE_MAX_MS;
    long spread = fleetSpreadMs(w, t);
    if (spread > t) t = spread * 4 / 5 + random() % (spread * 2 / 5);
    if (next_ms > 0 && next_ms < t) t = (long)next_ms;
    timerIn(w->idle_timer, t);
    wakeArm(w);
}

/* The claim's jobs are in (or lost): they take their slots. */
static void claimDone(claimCall *cc, redisReply *bodies) {
    worker *w = cc->w;
    const claimReply *cr = &cc->reply;
    char err[300];
    w->claims_out--;
    w->promised -= cc->promised;
    if (cc->failed || cr->wait_ms > 0 || cr->n == 0) {
        if (!cc->failed && cr->wait_ms > 0) {
            /* Paused or stopped at the spend cap: ask again when it may
             * end, and at least every second (limits can change). */
            noteWait(w, cr->reason, cr->wait_ms);
            timerIn(w->idle_timer, cr->wait_ms < 1000 ? (long)cr->wait_ms : 1000);
        } else if (cc->failed || w->wake_off || cr->next_ms == 0) {
            timerIn(w->idle_timer, w->cfg->idle_poll_ms);
            if (!cc->failed) wakeArm(w);
        } else {
            drained(w, cr->next_ms);
        }
        return;
    }
    /* Fewer jobs than asked: the queue is drained for now. The slots left
     * wait like an idle worker's (a push, the next due time, the poll),
     * not for a claim at once when admission frees one: 16 paced workers
     * made 0.16 empty claims a job so. Settles still claim. */
    if (cr->drained && !w->wake_off && cr->next_ms != 0) drained(w, cr->next_ms);
    if (!bodies || bodies->type != REDIS_REPLY_ARRAY || bodies->elements != (size_t)cr->n) {
        /* The list is not what the script left: nobody here holds these
         * leases, the reaper puts the jobs back. */
        lfLog(LF_WARN, "event=claim_list_unreadable list=%s leases=%d", lfQ(cc->list), cr->n);
        timerIn(w->idle_timer, w->cfg->idle_poll_ms);
        return;
    }
    for (int i = 0; i < cr->n; i++) {
        redisReply *raw = bodies->element[i];
        slot *s = slotTake(w);
        if (!s) abort();    /* claim asked for at most nfree jobs */
        snprintf(s->lease, sizeof(s->lease), "%s%d", cc->list + cc->prefix_at, i + 1);
        s->lease_until = cc->t_sent + w->cfg->lease_ms;
        bufReset(&s->raw);
        if (raw->type == REDIS_REPLY_STRING) bufAppend(&s->raw, raw->str, raw->len);
        if (slotOversized(s)) continue;
        if (jobParse(&s->job, s->raw.p, s->raw.len, w->cfg->max_job_bytes, err,
                     sizeof(err)) < 0) {
            lfLog(LF_WARN, "event=invalid_job id=%s error=%s", lfQ(s->job.id), lfQ(err));
            s->attempt = 0;
            slotDead(s, "invalid_job", err);
            queueSettle(s);
            continue;
        }
        if (s->job.spend_unbounded) {
            startCount(s);
            continue;
        }
        s->state = SLOT_READY;
    }
    dispatch(w);
}

static void onClaimed(rds *c, redisReply *r, void *priv) {
    claimCall *cc = priv;
    (void)c;
    if (claimParse(r, &cc->reply) < 0) cc->failed = 1;
}

static void onClaimBodies(rds *c, redisReply *r, void *priv) {
    claimCall *cc = priv;
    worker *w = cc->w;
    (void)c;
    claimDone(cc, r);
    free(cc);
    pump(w);
    maybeExit(w);
}

void pump(worker *w) {
    dispatch(w);
    if (!w->seq_checked) return;
    if (w->draining || w->claims_out > 0 || w->nfree <= w->promised) return;
    if (!rdsReady(w->redis) || evtimer_pending(w->idle_timer, NULL)) return;
    int ask = claimWant(w, 0);
    if (ask <= 0) return;
    claimCall *cc = claimNew(w, ask);
    lfArgs a;
    argsInit(&a, CA_COUNT, 4);
    claimArgs(&a, ask, w->cfg->lease_ms, cc->list + cc->prefix_at,
              (long long)w->cfg->max_job_bytes, w->name, w->polling);
    rdsScriptCall sc = scriptCall(w, "claim", cc->list, &a);
    const char *rv[] = {"LRANGE", cc->list, "0", "-1"};
    size_t rl[] = {6, strlen(cc->list), 1, 2};
    lfLog(LF_DEBUG, "event=claim_call n=%d", ask);
    if (rdsScriptThen(w->redis, &sc, onClaimed, cc, 4, rv, rl, onClaimBodies, cc) == 0)
        claimSent(cc);
    else
        free(cc);
    argsFree(&a);
}

void onIdle(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    pump(arg);
}

/* The idle timer: the claim is a poll (a due time it was told, a wait, a
 * look while the queue seemed empty); a claim that finds another worker
 * waiting for the next due time and nothing queued answers at once. */
void onIdleTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    w->polling = 1;
    pump(w);
    w->polling = 0;
}

/* INFO persistence: a Redis without the append-only file loses, when it
 * crashes, jobs it acknowledged, results, and spend (README: Durability).
 * Said once per connection; a Redis that refuses INFO is not checked. */
static void onPersistence(rds *c, redisReply *r, void *priv) {
    (void)c; (void)priv;
    if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return;
    if (strstr(r->str, "aof_enabled:0"))
        lfLog(LF_WARN, "event=redis_persistence_weak aof_enabled=0 hint=\"a Redis crash "
              "loses acknowledged jobs, repeats results and rewinds spend: run it with "
              "appendonly yes (README: Durability)\"");
}

void onReady(rds *c, void *priv) {
    ((worker *)priv)->seq_checked = 0;
    const char *argv[] = {"INFO", "persistence"};
    size_t len[] = {4, 11};
    rdsCommand(c, 2, argv, len, onPersistence, NULL);
    /* The heartbeat at once, not a renew period after the start: `status`
     * counts this worker from now. */
    evtimer_del(((worker *)priv)->renew_timer);
    onRenewTimer(-1, 0, priv);
    pricesLoad(priv);
    pump(priv);
}

/* ---- Prices -------------------------------------------------------------
 * The fleet's price table (prices.lua): the built-in one with the
 * operator's models over it. Loaded at connect and whenever admission
 * reports a version other than the one held; admission holds this
 * worker's jobs meanwhile. */

static void onPrices(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c;
    w->prices_loading = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;                     /* admission asks again */
    priceResetOverrides();
    for (size_t i = 1; i + 1 < r->elements; i += 2) {
        char line[512], model[160], err[300];
        price p;
        snprintf(line, sizeof(line), "%s %s", r->element[i]->str, r->element[i + 1]->str);
        if (priceParseLine(line, model, sizeof(model), &p, err, sizeof(err)) < 0 ||
            priceAdd(model, &p) < 0)
            lfLog(LF_WARN, "event=bad_fleet_price model=%s error=%s",
                  lfQ(r->element[i]->str), lfQ(err));
    }
    w->prices_ver = atoll(r->element[0]->str);
    lfLog(LF_INFO, "event=prices_loaded version=%lld fleet_models=%zu", w->prices_ver,
          (r->elements - 1) / 2);
}

void pricesLoad(worker *w) {
    const char *v[] = {"get"};
    size_t vl[] = {3};
    rdsScriptCall sc = {"prices", &w->keys, NULL, 1, v, vl};
    if (w->prices_loading) return;
    if (rdsScript(w->redis, &sc, onPrices, w) == 0) w->prices_loading = 1;
}

