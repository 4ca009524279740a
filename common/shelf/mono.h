/* mono.h — milliseconds on the monotonic clock (deadlines, timeouts:
 * never the wall clock, which steps). */
#ifndef LF_MONO_H
#define LF_MONO_H

#include <time.h>

static inline long long monoMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long long monoUs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
