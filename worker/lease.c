/* lease.c — a worker's leases over time: renewal (its leases and its
 * heartbeat, every lease_ms / 3) and reaping (any live worker returns the
 * expired leases of dead ones to the queue, about once a second). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "wk.h"

#define REAP_BATCH 200              /* leases reaped per call */
#define REAP_SPREAD_MAX 16          /* intervals between one worker's reaps, at most */

/* The fleet's write counter went back: Redis lost writes it had
 * acknowledged (a crash without AOF, a failover to a replica that lagged,
 * a restore). Results may come twice and spend was rewound (the cap
 * counts from less than was spent): the fleet stops until an operator
 * has looked and resumes (llmfleet resume). */
static void onRewindPaused(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        w->rewind_unsaid = 0;
        lfLog(LF_WARN, "event=fleet_paused reason=redis_rewind until=resumed");
    }
    /* Else lost with the connection (a Redis coming back is often
     * reconfigured meanwhile: its ACL users set again close their
     * clients) or refused: the next renew's reply sends it again. */
}

#define REWIND_TRIES 20             /* pause calls before giving up */

static void sendRewindPause(worker *w) {
    const char *v[PA_COUNT];
    size_t vl[PA_COUNT];
    char kind[8];
    w->rewind_unsaid--;
    v[PA_KIND] = kind;
    vl[PA_KIND] = fmtLL(kind, PAUSE_OPERATOR);
    v[PA_REASON] = w->rewind_why;
    vl[PA_REASON] = strlen(w->rewind_why);
    rdsScriptCall sc = {"pause", &w->keys, NULL, PA_COUNT, v, vl};
    rdsScript(w->redis, &sc, onRewindPaused, w);
}

/* The pause is the point: seen once (seq_seen follows the counter down),
 * it is sent until Redis confirms it, not only in the call that found
 * the rewind: that call is often lost with its connection. */
static void checkRewind(worker *w, long long seq) {
    if (seq >= w->seq_seen) {
        w->seq_seen = seq;
        if (w->rewind_unsaid > 0) sendRewindPause(w);
        return;
    }
    snprintf(w->rewind_why, sizeof(w->rewind_why), "Redis lost acknowledged writes (the "
             "fleet's write counter went back from %lld to %lld): results may repeat and "
             "spend was rewound; check Redis persistence (README: Durability), then "
             "llmfleet resume", w->seq_seen, seq);
    lfLog(LF_ERROR, "event=redis_rewind seq_seen=%lld seq=%lld action=pause_fleet",
          w->seq_seen, seq);
    w->seq_seen = seq;
    w->rewind_unsaid = REWIND_TRIES;
    /* A settle that got no reply may have been lost with the rest: its
     * lease gone says nothing of it landing. */
    for (int k = 0; k < w->nslots; k++) w->slots[k].unsure = 0;
    sendRewindPause(w);
}

/* A renew call: when it went out. The leases it renewed live at least
 * until then + lease_ms (the slots' lease_until). */
typedef struct renewCall {
    worker *w;
    long long t_sent;
} renewCall;

static void onRenewed(rds *c, redisReply *r, void *priv) {
    renewCall *rc = priv;
    worker *w = rc->w;
    long long until = rc->t_sent + w->cfg->lease_ms;
    (void)c;
    free(rc);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        /* Not checked yet since (re)connecting: ask again soon (a
         * restarted Redis answers LOADING while it reads its data). */
        if (!w->seq_checked) {
            evtimer_del(w->renew_timer);
            timerIn(w->renew_timer, 100);
        }
        return;
    }
    w->redis_oks++;
    checkRewind(w, r->element[0]->integer);
    if (r->elements > 1 && r->element[1]->type == REDIS_REPLY_INTEGER)
        w->fleet_live = (int)r->element[1]->integer;
    for (size_t i = 1; i < r->elements; i++) {
        redisReply *t = r->element[i];
        if (t->type != REDIS_REPLY_STRING) continue;
        for (int k = 0; k < w->nslots; k++) {
            slot *s = &w->slots[k];
            if (s->state == SLOT_FREE || strlen(s->lease) != t->len ||
                memcmp(s->lease, t->str, t->len) != 0 || s->lost)
                continue;
            s->lost = 1;
            /* Not lost but settled: a slot whose settle ran before this
             * renew (sent first, queued behind a WAIT) and now waits for
             * the replicas, or one whose settle goes again after a lost
             * WAIT (the first copy landed; the copy's reply tells), or
             * one whose settle got no reply (it may have landed: the copy
             * sent again tells). */
            if (!s->landed && !s->resent && !s->unsure)
                lfLog(LF_WARN, "event=lease_lost id=%s lease=%s", lfQ(s->job.id), s->lease);
        }
    }
    /* A lease reported gone is not extended: an unsure settle's verdict
     * reads lease_until (settleRelease). */
    for (int k = 0; k < w->nslots; k++) {
        slot *s = &w->slots[k];
        if (s->state != SLOT_FREE && !s->lost && s->lease_until < until) s->lease_until = until;
    }
    if (!w->seq_checked) {
        /* Checked: what waited for it goes now. */
        w->seq_checked = 1;
        if (w->pending) onFlush(-1, 0, w);
        pump(w);
    }
}

void onRenewTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    timerIn(w->renew_timer, w->cfg->lease_ms / 3);
    lfArgs a;
    argsInit(&a, 3 + w->nslots, 2);
    argsNum(&a, w->cfg->lease_ms);
    argsStr(&a, w->name);
    argsNum(&a, w->cfg->lease_ms);          /* heartbeat ttl */
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state != SLOT_FREE && !s->lost && !s->landed && s->lease[0]) argsStr(&a, s->lease);
    }
    renewCall *rc = malloc(sizeof(*rc));
    if (!rc) abort();
    rc->w = w;
    rc->t_sent = monoMs();
    rdsScriptCall sc = scriptCall(w, "renew", NULL, &a);
    if (rdsScript(w->redis, &sc, onRenewed, rc) < 0) free(rc);
    argsFree(&a);
}

static void onReaped(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c;
    if (!r || r->type != REDIS_REPLY_INTEGER) return;
    if (r->integer > 0)
        lfLog(LF_WARN, "event=reaped_expired_leases n=%lld", r->integer);
    /* Held: -1 this call saw the gap, -2 another call did (a renew, or
     * another worker's reap); said once a hold by each worker. */
    int held = r->integer == -1 || r->integer == -2;
    if (held && !w->reap_held)
        lfLog(LF_WARN, "event=reap_held reason=redis_time_gap for_ms=%ld "
              "(Redis did not run, or its clock stepped: live workers renew first)",
              w->cfg->lease_ms);
    w->reap_held = held;
}

/* A worker of a larger fleet does what the whole fleet needs done only a
 * few times a second (reap, look for work when idle) less often: interval
 * `base` times half the live workers as the last renew counted, at most
 * REAP_SPREAD_MAX times, and at most a quarter lease (the count falls only
 * as the dead's heartbeats expire: survivors of a fleet that shrank at
 * once still look in within that). */
long fleetSpreadMs(const worker *w, long base) {
    long spread = w->fleet_live / 2;
    if (spread > REAP_SPREAD_MAX) spread = REAP_SPREAD_MAX;
    if (spread < 1) spread = 1;
    long ms = base * spread, cap = w->cfg->lease_ms / 4;
    if (ms > cap) ms = cap > base ? cap : base;
    return ms;
}

void onReapTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    /* Jittered; an idle worker reaps half as often (others' dead leases
     * still come back within two intervals), and so does each of a larger
     * fleet: about two reaps a second in all (one when idle), each worker
     * at most every REAP_SPREAD_MAX intervals and a quarter lease (16
     * workers reaped 8-16 times a second, each call ~100 us of Redis's
     * CPU: 18 us per paced job; 4 a second with at most 4 intervals). */
    long every = w->nfree == w->nslots && !w->claims_out ? 2 * REAP_INTERVAL_MS : REAP_INTERVAL_MS;
    every = fleetSpreadMs(w, every);
    timerIn(w->reap_timer, every * 4 / 5 + random() % (every * 2 / 5));
    if (w->draining) return;
    lfArgs a;
    argsInit(&a, 2, 2);
    argsNum(&a, REAP_BATCH);
    argsNum(&a, w->cfg->lease_ms);
    rdsScriptCall sc = scriptCall(w, "reap", NULL, &a);
    rdsScript(w->redis, &sc, onReaped, w);
    argsFree(&a);
}

