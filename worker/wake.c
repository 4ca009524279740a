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
 * back the intake of a worker whose heartbeat ended (`intakes`), for
 * WAKE_BLOCK_MS past the end: a BLMOVE blocks no longer, and the waker
 * blocks only while the worker's own connection answers (so while its
 * heartbeat is renewed), never for a worker cut off. The idle poll stays
 * (retries and parked jobs fall due without a push). A Redis that refuses
 * BLMOVE (an ACL without it, a server older than 6.2) leaves the worker
 * polling, said once in the log. */
#include <string.h>

#include "codec.h"
#include "log.h"
#include "wk.h"

static void onGivenBack(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c; (void)r;
    w->calls--;
    maybeExit(w);
}

/* Put what the waker took back in the queue (a claim of none); leaving:
 * and the worker leaves (lib/claim.lua), cb called then. Returns 0 when
 * sent. */
int wakeGiveBack(worker *w, int leaving, rdsCallback *cb) {
    lfArgs a;
    argsInit(&a, CA_COUNT, 4);
    claimArgs(&a, leaving ? -1 : 0, w->cfg->lease_ms, "", 0, w->name, 0);
    rdsScriptCall sc = scriptCall(w, "claim", NULL, &a);
    int rc = rdsScript(w->redis, &sc, cb ? cb : onGivenBack, w);
    if (rc == 0 && !cb) w->calls++;
    argsFree(&a);
    return rc;
}

static void onWake(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c;
    w->waking = 0;
    if (!r) return;                     /* lost connection: onWakerReady */
    if (r->type == REDIS_REPLY_ERROR) {
        /* Refused for good (no such command, not allowed): poll. Else
         * (LOADING, BUSY, OOM, a demoted master's UNBLOCKED...): the next
         * empty claim blocks again. */
        if (strncmp(r->str, "NOPERM", 6) != 0 && strncmp(r->str, "ERR unknown command", 19) != 0) {
            lfLog(LF_DEBUG, "event=wake_error error=%s", lfQ(r->str));
            return;
        }
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
    if (w->claims_out == out) wakeGiveBack(w, 0, NULL);   /* busy: not ours to run */
}

/* Block on the job list until a push, unless already blocked, or the
 * worker's own connection has not answered within half a lease (its
 * heartbeat may be ending: the idle poll claims meanwhile). */
void wakeArm(worker *w) {
    if (!w->waker || w->waking || w->wake_off || w->draining || !rdsReady(w->waker))
        return;
    long long since = rdsSinceReplyMs(w->redis);
    if (!rdsReady(w->redis) || since < 0 || since > w->cfg->lease_ms / 2) return;
    char secs[24];
    snprintf(secs, sizeof(secs), "%lld", LF_WAKE_BLOCK_MS / 1000);
    const char *jobs = w->keys.name[KEY_JOBS];
    const char *v[] = {"BLMOVE", jobs, w->intake, "RIGHT", "LEFT", secs};
    size_t vl[] = {6, strlen(jobs), strlen(w->intake), 5, 4, strlen(secs)};
    if (rdsCommand(w->waker, 6, v, vl, onWake, w) == 0) w->waking = 1;
}

/* The waker (re)connected: block again if the worker is idle. */
void onWakerReady(rds *c, void *priv) {
    worker *w = priv;
    (void)c;
    if (evtimer_pending(w->idle_timer, NULL)) wakeArm(w);
}
