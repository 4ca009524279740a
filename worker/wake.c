/* wake.c — instant pickup on an idle worker. When a claim finds the queue
 * empty, a second connection (w->waker) blocks on the job list with
 * BLMOVE jobs jobs LEFT LEFT WAKE_S: when the list is empty it waits until a
 * producer pushes; when it is not, it takes the head and puts it straight
 * back at the head, so the list is never changed. Its answer (a job, not
 * nil) ends the idle wait and the worker claims at once, instead of at its
 * next idle poll. The idle poll stays (retries and parked jobs fall due
 * without a push); the waker only makes a push seen within a round trip.
 * Every idle worker wakes on a push and claims: one gets the job, the rest
 * find the queue empty and block again. A Redis that refuses BLMOVE (an ACL
 * without it, a server older than 6.2) leaves the worker polling, said once
 * in the log. */
#include <string.h>

#include "log.h"
#include "wk.h"

#define WAKE_S "5"                  /* longest block before asking again */

static void onWake(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c;
    w->waking = 0;
    if (!r || w->draining) return;      /* lost connection: onWakerReady */
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
    if (evtimer_pending(w->idle_timer, NULL)) {
        evtimer_del(w->idle_timer);
        pump(w);
    }
}

/* Block on the job list until a push, unless already blocked. */
void wakeArm(worker *w) {
    if (!w->waker || w->waking || w->wake_off || w->draining || !rdsReady(w->waker))
        return;
    const char *jobs = w->keys.name[KEY_JOBS];
    const char *v[] = {"BLMOVE", jobs, jobs, "LEFT", "LEFT", WAKE_S};
    size_t vl[] = {6, strlen(jobs), strlen(jobs), 4, 4, strlen(WAKE_S)};
    if (rdsCommand(w->waker, 6, v, vl, onWake, w) == 0) w->waking = 1;
}

/* The waker (re)connected: block again if the worker is idle. */
void onWakerReady(rds *c, void *priv) {
    worker *w = priv;
    (void)c;
    if (evtimer_pending(w->idle_timer, NULL)) wakeArm(w);
}
