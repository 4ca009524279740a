/* metrics.c — the worker's Prometheus endpoint (--metrics-addr) and its
 * periodic summary log line (--summary-ms).
 *
 * The endpoint is an evhttp server on the worker's own loop. A scrape is
 * answered at once from memory, never waiting on Redis: the worker's own
 * counters, and the fleet's gauges from the last status.lua answer, which
 * the worker refreshes every METRICS_FLEET_MS while the endpoint is on
 * (llmfleet_fleet_status_age_seconds says how old it is; a worker that
 * cannot reach Redis keeps serving its own counters). /healthz answers
 * 200 while the worker's Redis connection is up, 503 otherwise. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "version.h"
#include "wk.h"

#define METRICS_FLEET_MS 5000

struct metrics {
    worker *w;
    struct evhttp *http;
    struct event *refresh;          /* the fleet snapshot's timer */
    int refreshing;                 /* a status.lua call is out */
    char **fleet;                   /* status.lua's answer, copied; NULL none */
    int nfleet;
    long long fleet_at;             /* when it arrived (ms, mono) */
    long long started;              /* process start (wall clock, s) */
};

/* ---- The fleet snapshot ------------------------------------------------ */

static void fleetFree(metrics *m) {
    for (int i = 0; i < m->nfleet; i++) free(m->fleet[i]);
    free(m->fleet);
    m->fleet = NULL;
    m->nfleet = 0;
}

static void onFleetStatus(rds *c, redisReply *r, void *priv) {
    metrics *m = priv;
    (void)c;
    m->refreshing = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < STATUS_COUNT) return;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) return;
    fleetFree(m);
    m->fleet = calloc(r->elements, sizeof(char *));
    if (!m->fleet) abort();
    for (size_t i = 0; i < r->elements; i++)
        if (!(m->fleet[i] = strdup(r->element[i]->str))) abort();
    m->nfleet = (int)r->elements;
    m->fleet_at = monoMs();
}

static void onRefresh(evutil_socket_t fd, short what, void *arg) {
    metrics *m = arg;
    worker *w = m->w;
    (void)fd; (void)what;
    timerIn(m->refresh, METRICS_FLEET_MS);
    if (m->refreshing || !rdsReady(w->redis)) return;
    rdsScriptCall sc = {"status", &w->keys, NULL, 0, NULL, NULL};
    if (rdsScript(w->redis, &sc, onFleetStatus, m) == 0) m->refreshing = 1;
}

/* ---- Exposition ---------------------------------------------------------- */

/* A label value: backslash, double quote and newline escaped. */
static void labelValue(struct evbuffer *o, const char *v) {
    for (; *v; v++) {
        if (*v == '\\') evbuffer_add(o, "\\\\", 2);
        else if (*v == '"') evbuffer_add(o, "\\\"", 2);
        else if (*v == '\n') evbuffer_add(o, "\\n", 2);
        else evbuffer_add(o, v, 1);
    }
}

static void family(struct evbuffer *o, const char *name, const char *type, const char *help) {
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample; labels: NULL, or "k1", "v1", "k2", "v2", ..., NULL. */
static void sample(struct evbuffer *o, const char *name, const char **labels, const char *value) {
    evbuffer_add_printf(o, "%s", name);
    if (labels && labels[0]) {
        evbuffer_add(o, "{", 1);
        for (int i = 0; labels[i]; i += 2) {
            evbuffer_add_printf(o, "%s%s=\"", i ? "," : "", labels[i]);
            labelValue(o, labels[i + 1]);
            evbuffer_add(o, "\"", 1);
        }
        evbuffer_add(o, "}", 1);
    }
    evbuffer_add_printf(o, " %s\n", value);
}

static void sampleLL(struct evbuffer *o, const char *name, const char **labels, long long v) {
    char s[32];
    snprintf(s, sizeof(s), "%lld", v);
    sample(o, name, labels, s);
}

static void sampleD(struct evbuffer *o, const char *name, const char **labels, double v) {
    char s[40];
    snprintf(s, sizeof(s), "%.9g", v);
    sample(o, name, labels, s);
}

static void histogram(struct evbuffer *o, const char *name, const char *help,
                      const char *lk, const char *lv, const hist *h) {
    char n[160], le[32];
    family(o, name, "histogram", help);
    snprintf(n, sizeof(n), "%s_bucket", name);
    long long cum = 0;
    for (int i = 0; i <= h->nb; i++) {
        cum += h->count[i];
        if (i < h->nb) snprintf(le, sizeof(le), "%.9g", (double)h->bound_us[i] / 1e6);
        else snprintf(le, sizeof(le), "+Inf");
        const char *l[] = {lk ? lk : "le", lk ? lv : le, lk ? "le" : NULL, le, NULL};
        sampleLL(o, n, l, cum);
    }
    const char *l[] = {lk, lv, NULL};
    snprintf(n, sizeof(n), "%s_sum", name);
    sampleD(o, n, lk ? l : NULL, (double)h->sum_us / 1e6);
    snprintf(n, sizeof(n), "%s_count", name);
    sampleLL(o, n, lk ? l : NULL, h->n);
}

static void workerMetrics(metrics *m, struct evbuffer *o) {
    worker *w = m->w;
    const char *info[] = {"version", LLMFLEET_VERSION, "name", w->name, "fleet", w->cfg->fleet, NULL};
    family(o, "llmfleet_worker_info", "gauge", "this worker: its release, name and fleet (always 1)");
    sample(o, "llmfleet_worker_info", info, "1");
    family(o, "llmfleet_worker_start_time_seconds", "gauge", "when the worker started (Unix time)");
    sampleLL(o, "llmfleet_worker_start_time_seconds", NULL, m->started);
    family(o, "llmfleet_worker_slots", "gauge", "requests at once (--concurrency: seats)");
    sampleLL(o, "llmfleet_worker_slots", NULL, w->seats);
    family(o, "llmfleet_worker_slots_busy", "gauge", "seats taken (a job on its way to, or at, the API)");
    sampleLL(o, "llmfleet_worker_slots_busy", NULL, seatsUsed(w));
    family(o, "llmfleet_worker_jobs_held", "gauge", "leased jobs held: claimed to settled, followers included");
    sampleLL(o, "llmfleet_worker_jobs_held", NULL, w->nslots - w->nfree);
    family(o, "llmfleet_worker_draining", "gauge", "1 after SIGTERM, while in-flight requests finish");
    sampleLL(o, "llmfleet_worker_draining", NULL, w->draining);

    static const char *cls[API_NCLASS] = {"2xx", "4xx", "429", "5xx", "none"};
    family(o, "llmfleet_worker_api_requests_total", "counter",
           "answers to POST /v1/messages by HTTP status class (none: no HTTP answer: "
           "connection error, timeout, cut)");
    for (int i = 0; i < API_NCLASS; i++) {
        const char *l[] = {"status", cls[i], NULL};
        sampleLL(o, "llmfleet_worker_api_requests_total", l, w->api_req[i]);
    }
    family(o, "llmfleet_worker_count_requests_total", "counter",
           "calls to POST /v1/messages/count_tokens (exact input counts under a spend cap)");
    sampleLL(o, "llmfleet_worker_count_requests_total", NULL, w->count_calls);
    family(o, "llmfleet_worker_results_total", "counter", "results this worker wrote");
    const char *ok[] = {"result", "ok", NULL}, *er[] = {"result", "error", NULL};
    sampleLL(o, "llmfleet_worker_results_total", ok, w->done_ok);
    sampleLL(o, "llmfleet_worker_results_total", er, w->done_err);
    family(o, "llmfleet_worker_batched_total", "counter", "jobs this worker admitted to the Batch lane");
    sampleLL(o, "llmfleet_worker_batched_total", NULL, w->batched);
    family(o, "llmfleet_worker_retries_total", "counter", "failed attempts sent back for a retry");
    sampleLL(o, "llmfleet_worker_retries_total", NULL, w->retries);
    family(o, "llmfleet_worker_duplicates_dropped_total", "counter",
           "jobs dropped because their id was done or live elsewhere");
    sampleLL(o, "llmfleet_worker_duplicates_dropped_total", NULL, w->dups);
    family(o, "llmfleet_worker_lost_leases_total", "counter",
           "jobs whose lease was reaped before they settled (their result is another worker's)");
    sampleLL(o, "llmfleet_worker_lost_leases_total", NULL, w->fenced);
    histogram(o, "llmfleet_worker_api_request_duration_seconds",
              "POST /v1/messages, request sent to answer", NULL, NULL, &w->api_latency);

    rds *conn[2] = {w->redis, w->waker};
    const char *cname[2] = {"main", "wake"};
    family(o, "llmfleet_worker_redis_up", "gauge", "1 while the Redis connection is ready");
    for (int i = 0; i < 2; i++) {
        const char *l[] = {"conn", cname[i], NULL};
        sampleLL(o, "llmfleet_worker_redis_up", l, conn[i] && rdsReady(conn[i]));
    }
    family(o, "llmfleet_worker_redis_connects_total", "counter", "Redis connections made ready");
    for (int i = 0; i < 2; i++) {
        const char *l[] = {"conn", cname[i], NULL};
        sampleLL(o, "llmfleet_worker_redis_connects_total", l, conn[i] ? rdsGetStats(conn[i])->connects : 0);
    }
    family(o, "llmfleet_worker_redis_disconnects_total", "counter",
           "Redis connections lost (closed, refused a call, or silent past the reply timeout)");
    for (int i = 0; i < 2; i++) {
        const char *l[] = {"conn", cname[i], NULL};
        sampleLL(o, "llmfleet_worker_redis_disconnects_total", l, conn[i] ? rdsGetStats(conn[i])->disconnects : 0);
    }
    if (w->redis)
        histogram(o, "llmfleet_worker_redis_call_duration_seconds",
                  "a Redis call on the main connection, sent to answer (scripts and reads)",
                  NULL, NULL, &rdsGetStats(w->redis)->rtt);
}

/* The fleet's gauges: one per status field that is a plain number. */
static const struct { int f; const char *name, *type, *help; } fleetNums[] = {
    {STATUS_queued, "llmfleet_queued_jobs", "gauge", "jobs in the queue"},
    {STATUS_oldest_queued_s, "llmfleet_oldest_queued_job_age_seconds", "gauge",
     "age of the oldest job in the queue (at least; absent: not counted yet)"},
    {STATUS_eta_s, "llmfleet_backlog_eta_seconds", "gauge", "until the backlog drains at the last minute's rate"},
    {STATUS_leased, "llmfleet_leased_jobs", "gauge", "jobs held by workers under a lease"},
    {STATUS_in_flight, "llmfleet_in_flight_requests", "gauge", "requests at the API, fleet-wide"},
    {STATUS_ceiling, "llmfleet_in_flight_ceiling", "gauge", "the fleet's in-flight ceiling now"},
    {STATUS_delayed, "llmfleet_delayed_jobs", "gauge", "retries waiting for their backoff or retry-after"},
    {STATUS_parked, "llmfleet_parked_jobs", "gauge", "jobs waiting for their model class's bucket"},
    {STATUS_dead, "llmfleet_dead_letters", "gauge", "dead letters (llmfleet dead list)"},
    {STATUS_done, "llmfleet_done_ids", "gauge", "ids that have their result"},
    {STATUS_results, "llmfleet_results_stream_entries", "gauge", "entries in the results stream"},
    {STATUS_failed_kept, "llmfleet_failed_jobs_kept", "gauge", "jobs whose result was an error, kept for llmfleet retry"},
    {STATUS_workers_alive, "llmfleet_workers_alive", "gauge", "workers with a live heartbeat"},
    {STATUS_spent_usd, "llmfleet_spent_usd_total", "counter", "money spent at the API, USD (what usage reported, priced)"},
    {STATUS_reserved_usd, "llmfleet_reserved_usd", "gauge", "money held by requests in flight, USD (their worst case)"},
    {STATUS_max_spend_usd, "llmfleet_max_spend_usd", "gauge", "the spend cap, USD (absent: no cap)"},
    {STATUS_budget_stopped, "llmfleet_budget_stopped", "gauge", "1 when the fleet stopped at the spend cap"},
    {STATUS_spent_today_usd, "llmfleet_spent_today_usd", "gauge", "money spent at the API this UTC day, USD"},
    {STATUS_max_spend_usd_per_day, "llmfleet_max_spend_usd_per_day", "gauge", "the daily spend cap, USD (absent: none)"},
    {STATUS_day_stopped, "llmfleet_day_stopped", "gauge", "1 when the fleet stopped at its daily cap (until 00:00 UTC)"},
    {STATUS_retries_last_min, "llmfleet_retries_last_minute", "gauge", "retries dispatched in the last 60 s"},
    {STATUS_retry_budget_per_min, "llmfleet_retry_budget_per_minute", "gauge", "the fleet's retry budget"},
    {STATUS_total_requests, "llmfleet_fleet_requests_total", "counter", "requests the fleet sent to the API"},
    {STATUS_total_r429, "llmfleet_fleet_rate_limited_total", "counter", "429 answers the fleet received"},
    {STATUS_total_retries, "llmfleet_fleet_retries_total", "counter", "retries the fleet scheduled"},
    {STATUS_total_hard_floor_hits, "llmfleet_fleet_hard_floor_hits_total", "counter",
     "admissions that found a bucket below its hard floor"},
    {STATUS_total_retry_budget_refusals, "llmfleet_fleet_retry_budget_refusals_total", "counter",
     "retries refused by the retry budget (their error result was written)"},
    {STATUS_total_lost_in_flight, "llmfleet_fleet_lost_in_flight_total", "counter",
     "requests in flight when their worker died (outcome unknown, reservation counted)"},
    {STATUS_batches_open, "llmfleet_batches_open", "gauge", "Batch lane: batches forming, sent or being settled"},
    {STATUS_batch_jobs, "llmfleet_batch_jobs", "gauge", "Batch lane: jobs in open batches"},
    {STATUS_batches_done, "llmfleet_batches_done_total", "counter", "Batch lane: batches finished"},
    {STATUS_batch_saved_usd, "llmfleet_batch_saved_usd_total", "counter",
     "Batch lane: money saved against the sync price, USD"},
};

/* Per model class: status field, metric, bucket label (or NULL). */
static const struct { int f; const char *name, *bucket, *type, *help; } classNums[] = {
    {CSTATUS_in_flight, "llmfleet_class_in_flight_requests", NULL, "gauge", "requests at the API of a model class"},
    {CSTATUS_ceiling, "llmfleet_class_in_flight_ceiling", NULL, "gauge", "a class's own in-flight ceiling (absent: none)"},
    {CSTATUS_r_estimate, "llmfleet_bucket_estimate", "requests", "gauge",
     "the fleet's estimate of what a rate-limit bucket holds now (requests or tokens)"},
    {CSTATUS_i_estimate, "llmfleet_bucket_estimate", "input_tokens", NULL, NULL},
    {CSTATUS_o_estimate, "llmfleet_bucket_estimate", "output_tokens", NULL, NULL},
    {CSTATUS_r_limit, "llmfleet_bucket_limit", "requests", "gauge", "a bucket's per-minute limit, as the API reported it"},
    {CSTATUS_i_limit, "llmfleet_bucket_limit", "input_tokens", NULL, NULL},
    {CSTATUS_o_limit, "llmfleet_bucket_limit", "output_tokens", NULL, NULL},
    {CSTATUS_r_soft_floor, "llmfleet_bucket_soft_floor", "requests", "gauge", "below it, admission slows to the refill"},
    {CSTATUS_i_soft_floor, "llmfleet_bucket_soft_floor", "input_tokens", NULL, NULL},
    {CSTATUS_o_soft_floor, "llmfleet_bucket_soft_floor", "output_tokens", NULL, NULL},
    {CSTATUS_r_hard_floor, "llmfleet_bucket_hard_floor", "requests", "gauge", "below it, admission stops until the refill"},
    {CSTATUS_i_hard_floor, "llmfleet_bucket_hard_floor", "input_tokens", NULL, NULL},
    {CSTATUS_o_hard_floor, "llmfleet_bucket_hard_floor", "output_tokens", NULL, NULL},
    {CSTATUS_input_calibration, "llmfleet_class_input_calibration_ratio", NULL, "gauge",
     "input tokens the API counted per estimated token (learned from usage)"},
    {CSTATUS_output_quantile, "llmfleet_class_output_quantile_ratio", NULL, "gauge",
     "95th percentile of output / max_tokens (paces the output bucket)"},
    {CSTATUS_requests, "llmfleet_class_requests_total", NULL, "counter", "requests sent for a model class"},
    {CSTATUS_r429, "llmfleet_class_rate_limited_total", NULL, "counter", "429 answers for a model class"},
};

static const char *kindName(const char *k) { return *k ? k : "none"; }

static void fleetMetrics(metrics *m, struct evbuffer *o) {
    char **v = m->fleet;
    family(o, "llmfleet_fleet_status_age_seconds", "gauge",
           "age of the fleet gauges below (read from Redis every 5 s)");
    sampleD(o, "llmfleet_fleet_status_age_seconds", NULL, (double)(monoMs() - m->fleet_at) / 1e3);
    for (size_t i = 0; i < sizeof(fleetNums) / sizeof(fleetNums[0]); i++) {
        if (!*v[fleetNums[i].f]) continue;
        family(o, fleetNums[i].name, fleetNums[i].type, fleetNums[i].help);
        sample(o, fleetNums[i].name, NULL, v[fleetNums[i].f]);
    }
    family(o, "llmfleet_jobs_total", "counter", "results the fleet wrote");
    const char *ok[] = {"result", "ok", NULL}, *er[] = {"result", "error", NULL};
    sample(o, "llmfleet_jobs_total", ok, v[STATUS_total_ok]);
    sample(o, "llmfleet_jobs_total", er, v[STATUS_total_error]);
    family(o, "llmfleet_paused", "gauge", "1 while the fleet is paused (kind: short, long, operator; "
           "the reason as status shows it)");
    const char *pl[] = {"kind", kindName(v[STATUS_pause_kind]), "reason", v[STATUS_pause_reason], NULL};
    sample(o, "llmfleet_paused", pl, *v[STATUS_paused] ? v[STATUS_paused] : "0");
    if (*v[STATUS_pause_until_ms]) {
        family(o, "llmfleet_pause_remaining_seconds", "gauge", "until the pause ends (an operator's: never)");
        sampleD(o, "llmfleet_pause_remaining_seconds", NULL,
                (atof(v[STATUS_pause_until_ms]) - atof(v[STATUS_now_ms])) / 1e3);
    }
    if (*v[STATUS_latency_ewma_ms]) {
        family(o, "llmfleet_api_latency_ewma_seconds", "gauge", "the fleet's moving average of API latency");
        sampleD(o, "llmfleet_api_latency_ewma_seconds", NULL, atof(v[STATUS_latency_ewma_ms]) / 1e3);
    }

    int nclass = atoi(v[STATUS_classes]);
    if (nclass < 0 || STATUS_COUNT + nclass * CSTATUS_COUNT > m->nfleet) nclass = 0;
    char **cv0 = v + STATUS_COUNT;
    for (size_t i = 0; i < sizeof(classNums) / sizeof(classNums[0]); i++) {
        if (classNums[i].type) family(o, classNums[i].name, classNums[i].type, classNums[i].help);
        for (int c = 0; c < nclass; c++) {
            char **cv = cv0 + c * CSTATUS_COUNT;
            if (!*cv[classNums[i].f]) continue;
            const char *l[] = {"class", cv[CSTATUS_class], classNums[i].bucket ? "bucket" : NULL,
                               classNums[i].bucket, NULL};
            sample(o, classNums[i].name, l, cv[classNums[i].f]);
        }
    }
    if (nclass) family(o, "llmfleet_class_paused", "gauge", "1 while a model class is paused");
    for (int c = 0; c < nclass; c++) {
        char **cv = cv0 + c * CSTATUS_COUNT;
        const char *l[] = {"class", cv[CSTATUS_class], "kind", kindName(cv[CSTATUS_pause_kind]),
                           "reason", cv[CSTATUS_pause_reason], NULL};
        sample(o, "llmfleet_class_paused", l, *cv[CSTATUS_paused] ? cv[CSTATUS_paused] : "0");
    }
}

/* ---- The server ----------------------------------------------------------- */

static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *ctype, struct evbuffer *body) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_send_reply(req, code, reason, body);
}

static void onRequest(struct evhttp_request *req, void *arg) {
    metrics *m = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evbuffer *o = evbuffer_new();
    if (!o) abort();
    if (path && strcmp(path, "/metrics") == 0) {
        workerMetrics(m, o);
        if (m->fleet) fleetMetrics(m, o);
        reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", o);
    } else if (path && strcmp(path, "/healthz") == 0) {
        int up = rdsReady(m->w->redis);
        evbuffer_add_printf(o, "%s\n", up ? "ok" : "redis: not connected");
        reply(req, up ? 200 : 503, up ? "OK" : "Service Unavailable", "text/plain", o);
    } else {
        evbuffer_add_printf(o, "not found: try /metrics or /healthz\n");
        reply(req, 404, "Not Found", "text/plain", o);
    }
    evbuffer_free(o);
}

/* HOST:PORT, [V6]:PORT or :PORT (every interface). */
static int splitAddr(const char *addr, char *host, size_t hostlen, unsigned short *port) {
    const char *colon = strrchr(addr, ':');
    if (!colon || colon[1] == '\0') return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (*end || errno || p < 0 || p > 65535) return -1;
    size_t hl = (size_t)(colon - addr);
    const char *h = addr;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { h++; hl -= 2; }
    if (hl == 0) { h = "0.0.0.0"; hl = 7; }
    if (hl >= hostlen) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (unsigned short)p;
    return 0;
}

metrics *metricsStart(worker *w, const char *addr, char *err, size_t errlen) {
    char host[256];
    unsigned short port;
    if (splitAddr(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "--metrics-addr must be HOST:PORT, [IPV6]:PORT or :PORT, got %s", lfQ(addr));
        return NULL;
    }
    metrics *m = calloc(1, sizeof(*m));
    if (!m) abort();
    m->w = w;
    m->started = (long long)time(NULL);
    m->http = evhttp_new(w->base);
    if (!m->http) abort();
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(m->http, 16384);
    evhttp_set_max_body_size(m->http, 4096);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_gencb(m->http, onRequest, m);
    if (!evhttp_bind_socket_with_handle(m->http, host, port)) {
        snprintf(err, errlen, "--metrics-addr %s: cannot listen there (%s)", lfQ(addr),
                 strerror(errno ? errno : EADDRINUSE));
        evhttp_free(m->http);
        free(m);
        return NULL;
    }
    m->refresh = evtimer_new(w->base, onRefresh, m);
    timerIn(m->refresh, 0);
    lfLog(LF_INFO, "event=metrics_listening addr=%s", lfQ(addr));
    return m;
}

void metricsStop(metrics *m) {
    if (!m) return;
    evhttp_free(m->http);
    event_free(m->refresh);
    fleetFree(m);
    free(m);
}

/* ---- The summary line ------------------------------------------------------- */

void onSummaryTimer(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    timerIn(w->summary_timer, w->cfg->summary_ms);
    long long req = 0;
    for (int i = 0; i < API_NCLASS; i++) req += w->api_req[i];
    summaryMark *p = &w->summary;
    long long d_req = req - p->requests, d_ok = w->done_ok - p->ok, d_err = w->done_err - p->err;
    long long d_429 = w->api_req[API_429] - p->r429, d_retry = w->retries - p->retries;
    long long d_n = w->api_latency.n - p->lat_n, d_sum = w->api_latency.sum_us - p->lat_sum_us;
    int busy = w->nslots - w->nfree;
    /* Under load only: a quiet worker says nothing. */
    if (d_req || d_ok || d_err || busy) {
        /* Where the busy slots are: a worker that stalls says where. */
        int st[SLOT_NSTATES] = {0};
        for (int i = 0; i < w->nslots; i++) st[w->slots[i].state]++;
        lfLog(LF_INFO, "event=summary interval_s=%.0f requests=%lld ok=%lld error=%lld r429=%lld "
              "retries=%lld busy_slots=%d latency_mean_ms=%lld jobs_per_s=%.1f wait_reason=%s "
              "slots_count=%d slots_admit=%d slots_wait=%d slots_http=%d slots_settle=%d "
              "slots_ready=%d slots_follow=%d slots_held=%d claims_out=%d",
              w->cfg->summary_ms / 1e3, d_req, d_ok, d_err, d_429, d_retry, busy,
              d_n ? d_sum / d_n / 1000 : 0, (double)(d_ok + d_err) * 1e3 / (double)w->cfg->summary_ms,
              lfQ(w->wait_reason[0] ? w->wait_reason : "none"), st[SLOT_COUNT], st[SLOT_ADMIT],
              st[SLOT_WAIT], st[SLOT_HTTP], st[SLOT_SETTLE], st[SLOT_READY], st[SLOT_FOLLOW],
              st[SLOT_HELD], w->claims_out);
    }
    p->requests = req;
    p->ok = w->done_ok;
    p->err = w->done_err;
    p->r429 = w->api_req[API_429];
    p->retries = w->retries;
    p->lat_n = w->api_latency.n;
    p->lat_sum_us = w->api_latency.sum_us;
}
