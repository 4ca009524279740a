/* wake.c — instant pickup on an idle worker. When a claim finds the queue
 * empty, a second connection (w->waker) blocks on the job list with
 * BLMOVE jobs jobs:intake:NAME RIGHT LEFT WAKE_S: when the list is empty it
 * waits until a producer pushes; then Redis moves the oldest job into this
 * worker's intake and answers this one blocked client only (a move that
 * left the job in the list would wake every idle worker: 16 idle workers
 * made 17 claims per pushed job). The worker claims at once; its claim
 * puts the intake back at the consuming end of the queue first and takes
 * it from there (lib/claim.lua), so the job is never anywhere but queued
 * or leased: a worker that cannot claim now gives it back (a claim of
 * none), a drained one gives it back as it leaves, and the reaper gives
 * back the intake of a worker whose heartbeat ended. The idle poll stays
 * (retries and parked jobs fall due without a push). A Redis that refuses
 * BLMOVE (an ACL without it, a server older than 6.2) leaves the worker
 * polling, said once in the log. */
#include <string.h>

#include "codec.h"
#include "log.h"
#include "wk.h"

#define WAKE_S "5"                  /* longest block before asking again */

static void onGivenBack(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c; (void)r;
    w->calls--;
    maybeExit(w);
}

/* Put what the waker took back in the queue (a claim of none). */
void wakeGiveBack(worker *w) {
    lfArgs a;
    argsInit(&a, CA_COUNT, 3);
    claimArgs(&a, 0, w->cfg->lease_ms, "", 0, w->name);
    rdsScriptCall sc = scriptCall(w, "claim", NULL, &a);
    if (rdsScript(w->redis, &sc, onGivenBack, w) == 0) w->calls++;
    argsFree(&a);
}

static void onWake(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c;
    w->waking = 0;
    if (!r) return;                     /* lost connection: onWakerReady */
    if (r->type == REDIS_REPLY_ERROR) {
        lfLog(LF_WARN, "event=wake_unavailable error=%s hint=\"the worker polls the "
              "queue every --idle-poll-ms instead (allow BLMOVE to react at once)\"",
              lfQ(r->str));
        w->wake_off = 1;
        return;
    }
    if (r->type == REDIS_REPLY_NIL) {   /* nothing pushed for WAKE_S s */
        if (evtimer_pending(w->idle_timer, NULL)) wakeArm(w);
        return;
    }
    lfLog(LF_DEBUG, "event=woken");
    int out = w->claims_out;
    if (!w->draining && evtimer_pending(w->idle_timer, NULL)) {
        evtimer_del(w->idle_timer);
        pump(w);                        /* its claim takes the intake */
        if (w->claims_out == out) timerIn(w->idle_timer, w->cfg->idle_poll_ms);
    }
    if (w->claims_out == out) wakeGiveBack(w);  /* busy, or leaving: not ours */
}

/* Block on the job list until a push, unless already blocked. */
void wakeArm(worker *w) {
    if (!w->waker || w->waking || w->wake_off || w->draining || !rdsReady(w->waker))
        return;
    const char *jobs = w->keys.name[KEY_JOBS];
    const char *v[] = {"BLMOVE", jobs, w->intake, "RIGHT", "LEFT", WAKE_S};
    size_t vl[] = {6, strlen(jobs), strlen(w->intake), 5, 4, strlen(WAKE_S)};
    if (rdsCommand(w->waker, 6, v, vl, onWake, w) == 0) w->waking = 1;
}

/* The waker (re)connected: block again if the worker is idle. */
void onWakerReady(rds *c, void *priv) {
    worker *w = priv;
    (void)c;
    if (evtimer_pending(w->idle_timer, NULL)) wakeArm(w);
}
