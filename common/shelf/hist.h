/* hist.h — a fixed-bucket histogram of durations, the shape Prometheus
 * exposes (cumulative buckets, a sum and a count). Bounds are in seconds,
 * ascending; observations in microseconds (no float on the hot path but
 * one add). */
#ifndef LF_HIST_H
#define LF_HIST_H

#define HIST_MAX_BOUNDS 16

typedef struct hist {
    int nb;                             /* bounds in use */
    long long bound_us[HIST_MAX_BOUNDS];
    long long count[HIST_MAX_BOUNDS + 1];   /* per bucket, not cumulative; last: > every bound */
    long long sum_us;
    long long n;
} hist;

/* bounds: seconds, ascending, at most HIST_MAX_BOUNDS of them. */
static inline void histInit(hist *h, const double *bounds, int nb) {
    h->nb = nb > HIST_MAX_BOUNDS ? HIST_MAX_BOUNDS : nb;
    for (int i = 0; i < h->nb; i++) h->bound_us[i] = (long long)(bounds[i] * 1e6 + 0.5);
    for (int i = 0; i <= HIST_MAX_BOUNDS; i++) h->count[i] = 0;
    h->sum_us = h->n = 0;
}

static inline void histAdd(hist *h, long long us) {
    int i = 0;
    if (us < 0) us = 0;
    while (i < h->nb && us > h->bound_us[i]) i++;
    h->count[i]++;
    h->sum_us += us;
    h->n++;
}

#endif
