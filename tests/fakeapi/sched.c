/* sched.c — requests the fake API holds on to: the ones waiting for their
 * simulated latency (or for a deliberate reset), and the hung ones.
 *
 * Deadlines live in one binary min-heap driven by a single libevent timer
 * armed at the earliest deadline, so thousands of held requests cost one
 * pointer each in the heap and no timer of their own. A held request also
 * watches its socket for the client hanging up (EV_CLOSED) and registers
 * itself as its connection's close callback, so a request whose client
 * went away first, hung ones included, is freed then and does not leak. */
#include "fakeapi.h"

#include <math.h>
#include <stdlib.h>

#include <event2/bufferevent.h>

#include "log.h"

/* ---- State --------------------------------------------------------------- */

static struct {
    fakeReq **heap;             /* min-heap of held requests by deadline */
    int len;                    /* requests in the heap */
    int cap;                    /* slots allocated */
    struct event *timer;        /* fires at heap[0]->deadline */
} sched;

/* ---- Heap ---------------------------------------------------------------- */

static void heapSet(int i, fakeReq *r) {
    sched.heap[i] = r;
    r->heapIdx = i;
}

static void heapUp(int i) {
    fakeReq *r = sched.heap[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (sched.heap[parent]->deadline <= r->deadline) break;
        heapSet(i, sched.heap[parent]);
        i = parent;
    }
    heapSet(i, r);
}

static void heapDown(int i) {
    fakeReq *r = sched.heap[i];
    for (;;) {
        int child = 2 * i + 1;
        if (child >= sched.len) break;
        if (child + 1 < sched.len &&
            sched.heap[child + 1]->deadline < sched.heap[child]->deadline)
            child++;
        if (sched.heap[child]->deadline >= r->deadline) break;
        heapSet(i, sched.heap[child]);
        i = child;
    }
    heapSet(i, r);
}

static void heapRemoveAt(int i) {
    fakeReq *r = sched.heap[i];
    fakeReq *last = sched.heap[--sched.len];

    r->heapIdx = -1;
    if (i == sched.len) return;
    heapSet(i, last);
    heapUp(i);
    heapDown(last->heapIdx);
}

/* ---- Timer --------------------------------------------------------------- */

/* Arm the timer for the earliest deadline, or disarm it. */
static void schedArm(double now) {
    struct timeval tv;
    double wait;

    if (sched.len == 0) {
        evtimer_del(sched.timer);
        return;
    }
    wait = sched.heap[0]->deadline - now;
    if (wait < 0) wait = 0;
    tv.tv_sec = (time_t)wait;
    tv.tv_usec = (suseconds_t)((wait - (double)tv.tv_sec) * 1e6);
    evtimer_add(sched.timer, &tv);
}

/* Act on every request whose deadline has come (within half a
 * millisecond: libevent's timers are millisecond-grained). */
static void schedTimer(evutil_socket_t fd, short what, void *arg) {
    double now = fakeNow();
    (void)fd; (void)what; (void)arg;

    while (sched.len > 0 && sched.heap[0]->deadline <= now + 0.0005) {
        fakeReq *r = sched.heap[0];
        heapRemoveAt(0);
        fakeMsgFire(r);
    }
    schedArm(fakeNow());
}

/* ---- Public API ---------------------------------------------------------- */

int fakeSchedInit(void) {
    sched.timer = evtimer_new(fake.base, schedTimer, NULL);
    return sched.timer ? 0 : -1;
}

/* Free the heap and the timer. Held requests themselves are freed by their
 * connections' close callbacks when evhttp_free() closes the connections. */
void fakeSchedFree(void) {
    if (sched.timer) event_free(sched.timer);
    free(sched.heap);
    sched.timer = NULL;
    sched.heap = NULL;
    sched.len = sched.cap = 0;
}

void fakeSchedAdd(fakeReq *r) {
    if (sched.len == sched.cap) {
        int cap = sched.cap ? sched.cap * 2 : 256;
        fakeReq **h = realloc(sched.heap, sizeof(*h) * (size_t)cap);
        if (!h) {
            lfLog(LF_ERROR, "event=oom what=heap");
            abort();
        }
        sched.heap = h;
        sched.cap = cap;
    }
    sched.heap[sched.len] = r;
    r->heapIdx = sched.len++;
    heapUp(r->heapIdx);
    if (r->heapIdx == 0) schedArm(fakeNow());
}

void fakeSchedRemove(fakeReq *r) {
    int wasTop;
    if (r->heapIdx < 0) return;
    wasTop = r->heapIdx == 0;
    heapRemoveAt(r->heapIdx);
    if (wasTop) schedArm(fakeNow());
}

/* r's connection is going away: the client hung up (schedOnHangup), or the
 * whole server is being freed. libevent frees the attached request with the
 * connection; a request it already detached (its own EOF handling) is ours
 * to free. */
static void schedOnClose(struct evhttp_connection *conn, void *arg) {
    fakeReq *r = arg;
    (void)conn;

    if (r->closeWatched) event_del(&r->closeEv);
    fakeSchedRemove(r);
    fakeMsgAbandon(r);
    fakeStatsLeave(r->req);
    if (evhttp_request_get_connection(r->req) == NULL)
        evhttp_request_free(r->req);
    free(r);
}

/* The client closed the socket of a held request: free the connection,
 * whose close callback then frees r. */
static void schedOnHangup(evutil_socket_t fd, short what, void *arg) {
    fakeReq *r = arg;
    (void)fd; (void)what;
    lfLog(LF_DEBUG, "event=client_gone action=%d", r->action);
    evhttp_connection_free(r->conn);
}

void fakeSchedWatchClose(fakeReq *r) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(r->conn);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

    evhttp_connection_set_closecb(r->conn, schedOnClose, r);
    r->closeWatched = 0;
    if (fd < 0 || !(event_base_get_features(fake.base) & EV_FEATURE_EARLY_CLOSE))
        return;
    if (event_assign(&r->closeEv, fake.base, fd, EV_CLOSED, schedOnHangup, r) == 0 &&
        event_add(&r->closeEv, NULL) == 0)
        r->closeWatched = 1;
}

void fakeSchedUnwatch(fakeReq *r) {
    if (r->closeWatched) event_del(&r->closeEv);
    r->closeWatched = 0;
    evhttp_connection_set_closecb(r->conn, NULL, NULL);
}
