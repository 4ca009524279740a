/* clockshim.c — LD_PRELOAD into redis-server to step its wall clock.
 *
 * The file named by CLOCKSHIM_FILE holds an offset in milliseconds (a
 * signed integer); gettimeofday(), clock_gettime(CLOCK_REALTIME) and time()
 * return the real time plus that offset. The file is read again at most
 * every 20 ms, so a test steps the clock by rewriting it. "=MS" instead
 * stops the clock at MS (ms since the epoch); with CLOCKSHIM_EVERY set the
 * file is read at every call (tests/bench/replay.py gives each command its
 * captured time so). The monotonic clock is left alone, as a real clock
 * step leaves it. Test use only. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*cgt_fn)(clockid_t, struct timespec *);

static cgt_fn realClock(void) {
    static cgt_fn f;
    if (!f) f = (cgt_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return f;
}

/* The offset in ns to add to the real time real (ns). */
static long long offsetNs(long long real) {
    static long long off, stop, readAt;
    static const char *path;
    static int every = -1;
    if (every < 0) path = getenv("CLOCKSHIM_FILE"), every = getenv("CLOCKSHIM_EVERY") != NULL;
    struct timespec m;
    realClock()(CLOCK_MONOTONIC, &m);
    long long nowMs = (long long)m.tv_sec * 1000 + m.tv_nsec / 1000000;
    if (!readAt || nowMs - readAt >= 20 || every) {
        readAt = nowMs;
        /* (open and read, not stdio: a profiler counting the server's
         * instructions sees a few dozen per call here) */
        int fd = path ? open(path, O_RDONLY) : -1;
        if (fd >= 0) {
            char b[32];
            ssize_t n = read(fd, b, sizeof(b) - 1);
            close(fd);
            if (n > 0) {
                b[n] = 0;
                char *e, *p = b + (b[0] == '=');
                long long v = strtoll(p, &e, 10);
                if (e != p) {
                    if (b[0] == '=') stop = v;
                    else off = v, stop = 0;
                }
            }
        }
    }
    if (stop) return stop * 1000000LL - real;
    return off * 1000000LL;
}

static void shift(struct timespec *ts) {
    long long real = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec;
    long long ns = real + offsetNs(real);
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
