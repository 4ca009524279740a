/* metrics.h — the worker's Prometheus endpoint and summary line
 * (metrics.c). */
#ifndef LF_METRICS_H
#define LF_METRICS_H

#include <stddef.h>

#include <event2/util.h>

struct worker;
typedef struct metrics metrics;

/* Listen on addr (HOST:PORT, [V6]:PORT, :PORT) on w's loop. Returns NULL
 * with err when the address is bad or cannot be bound. */
metrics *metricsStart(struct worker *w, const char *addr, char *err, size_t errlen);
void metricsStop(metrics *m);

/* The periodic summary log line (w->summary_timer). */
void onSummaryTimer(evutil_socket_t fd, short what, void *arg);

#endif
