/* clockshim.c — LD_PRELOAD into redis-server to step its wall clock.
 *
 * The file named by CLOCKSHIM_FILE holds an offset in milliseconds (a
 * signed integer); gettimeofday(), clock_gettime(CLOCK_REALTIME) and time()
 * return the real time plus that offset. The file is read again at most
 * every 20 ms, so a test steps the clock by rewriting it. The monotonic
 * clock is left alone, as a real clock step leaves it. Test use only. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*cgt_fn)(clockid_t, struct timespec *);

static cgt_fn realClock(void) {
    static cgt_fn f;
    if (!f) f = (cgt_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return f;
}

static long long offsetMs(void) {
    static long long off, readAt;
    struct timespec m;
    realClock()(CLOCK_MONOTONIC, &m);
    long long nowMs = (long long)m.tv_sec * 1000 + m.tv_nsec / 1000000;
    if (readAt && nowMs - readAt < 20) return off;
    readAt = nowMs;
    const char *path = getenv("CLOCKSHIM_FILE");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        long long v;
        if (fscanf(f, "%lld", &v) == 1) off = v;
        fclose(f);
    }
    return off;
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + offsetMs() * 1000000LL;
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = realClock()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
