/* worker.h — `llmfleet worker`: claim jobs, call the API, settle results.
 *
 * A worker is one libevent loop. It sends at most N requests at once
 * (--concurrency) and holds up to 3N leased jobs: each request in flight
 * may have a follower, a job already admitted to go out at its answer,
 * and an answered job waits for its settle. All shared state lives in
 * Redis and changes only through the Lua scripts of scripts/lua; the
 * worker's memory holds nothing that a crash could lose. */
#ifndef LF_WORKER_H
#define LF_WORKER_H

#include <stddef.h>

typedef struct workerConfig {
    const char *redis_url;          /* --redis-url / LLMFLEET_REDIS_URL */
    const char *fleet;              /* --fleet / LLMFLEET_FLEET */
    const char *name;               /* --name, default host:pid:random */
    const char *base_url;           /* ANTHROPIC_BASE_URL */
    const char *api_key;            /* ANTHROPIC_API_KEY (never logged) */
    const char *version;            /* --anthropic-version */
    const char *prices;             /* --prices FILE, or NULL */
    int concurrency;                /* --concurrency: local slots */
    long lease_ms;                  /* --lease-ms: lease duration */
    long connect_timeout_ms;        /* --connect-timeout-ms */
    long timeout_ms;                /* --timeout-ms: 0 = grows with max_tokens */
    long timeout_per_token_ms;      /* --timeout-per-token-ms (auto timeout) */
    long idle_poll_ms;              /* --idle-poll-ms (>= 100) */
    long drain_timeout_ms;          /* --drain-timeout-ms on SIGTERM */
    long results_maxlen;            /* --results-maxlen (XADD MAXLEN ~) */
    size_t max_job_bytes;           /* --max-job-bytes */
    size_t max_response_bytes;      /* --max-response-bytes */
    int allow_insecure_http;        /* --allow-insecure-http */
    int allow_core_dump;            /* --allow-core-dump */
    const char *metrics_addr;       /* --metrics-addr HOST:PORT, or NULL */
    long summary_ms;                /* --summary-ms: summary log line (0 off) */
    int wait_replicas;              /* --wait-replicas: confirm writes on N replicas */
    long wait_replicas_ms;          /* --wait-replicas-ms: one WAIT's timeout */
    int no_follow;                  /* --no-follow: no job admitted to follow a request */
} workerConfig;

/* Defaults for every field. */
void workerConfigDefaults(workerConfig *cfg);

/* Run until SIGTERM/SIGINT and a clean drain. Returns the exit status. */
int workerRun(const workerConfig *cfg);

#endif
