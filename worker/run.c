/* run.c — a worker's life from start to stop: setup (configuration
 * checks, the event loop, timers and signals), SIGTERM's drain and its
 * deadline, the final summary. The job lifecycle itself is worker.c's. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "price.h"
#include "rurl.h"
#include "version.h"
#include "wk.h"

/* ---- Shutdown --------------------------------------------------------- */

static void onFarewell(rds *c, redisReply *r, void *priv) {
    worker *w = priv;
    (void)c; (void)r;
    event_base_loopexit(w->base, NULL);
}

/* Drained: leave. One call gives back what the waker took and takes the
 * heartbeat out of `workers`, so that `status` stops counting this worker
 * at once, not a heartbeat later; its `intakes` entry ends now, and the
 * reaper gives its intake back again for WAKE_BLOCK_MS (a push the waker
 * took after this, its close not yet seen by Redis: nothing is lost). */
void maybeExit(worker *w) {
    if (!w->draining) return;
    if (w->nfree != w->nslots || w->claims_out || w->calls || w->pending) return;
    if (w->farewell) return;
    w->farewell = 1;
    if (wakeGiveBack(w, 1, onFarewell) < 0) event_base_loopexit(w->base, NULL);
}

static void onDrainDeadline(evutil_socket_t fd, short what, void *arg) {
    worker *w = arg;
    (void)fd; (void)what;
    if (w->drain_expired) {
        /* Redis is not taking our settles: leave, the leases expire. */
        lfLog(LF_WARN, "event=drain_abandoned pending_slots=%d", w->nslots - w->nfree);
        event_base_loopexit(w->base, NULL);
        return;
    }
    w->drain_expired = 1;
    int n = 0;
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state == SLOT_COUNT) {       /* not sent: back to the queue */
            httpCancel(&s->http);
            slotRequeue(s);
            continue;
        }
        if (s->state != SLOT_HTTP) continue;
        httpCancel(&s->http);
        /* Sent, outcome unknown: settle.lua counts its reservation. */
        recRequeueUnknown(&s->rec);
        queueSettle(s);
        n++;
    }
    lfLog(LF_WARN, "event=drain_deadline requeued=%d", n);
    timerIn(w->drain_timer, 5000);
    maybeExit(w);
}

static void onSignal(evutil_socket_t sig, short what, void *arg) {
    worker *w = arg;
    (void)what;
    if (w->draining) {
        lfLog(LF_WARN, "event=exit_now signal=%d", (int)sig);
        _exit(1);
    }
    w->draining = 1;
    rdsFree(w->waker);          /* blocked no more */
    w->waker = NULL;
    wakeGiveBack(w, 0, NULL);   /* what it took meanwhile (and the farewell again) */
    batchStop(w);               /* a batch step cut here is due again after its hold */
    evtimer_del(w->idle_timer);
    evtimer_del(w->wait_timer);
    evtimer_del(w->follow_timer);
    if (w->lingering) flushSoon(w);     /* settles wait for nothing now */
    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];
        if (s->state != SLOT_WAIT && s->state != SLOT_READY && s->state != SLOT_FOLLOW) continue;
        slotRequeue(s);
    }
    lfLog(LF_INFO, "event=draining signal=%d in_flight=%d deadline_ms=%ld",
          (int)sig, w->nslots - w->nfree, w->cfg->drain_timeout_ms);
    timerIn(w->drain_timer, w->cfg->drain_timeout_ms);
    maybeExit(w);
}

/* ---- Setup ------------------------------------------------------------ */

void workerConfigDefaults(workerConfig *cfg) {
    memset(cfg, 0, sizeof(*cfg));
    cfg->version = "2023-06-01";
    cfg->concurrency = 64;
    cfg->lease_ms = 30000;
    cfg->connect_timeout_ms = 10000;
    cfg->timeout_per_token_ms = 60;
    cfg->idle_poll_ms = 100;
    cfg->drain_timeout_ms = 30000;
    cfg->results_maxlen = 1000000;
    cfg->max_job_bytes = 32u << 20;
    cfg->max_response_bytes = 16u << 20;   /* x 64 slots: 1 GiB at worst */
    cfg->summary_ms = 60000;
    cfg->wait_replicas_ms = 1000;
}

static void raiseFdLimit(int want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t need = (rlim_t)want;
    if (rl.rlim_cur >= need) return;
    rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void defaultName(char *out, size_t len) {
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(out, len, "%.40s:%d:%04lx", host, (int)getpid(), random() & 0xffff);
}

/* The configuration a worker cannot run without. Returns 0, or 2 (a
 * configuration error, said on stderr). */
static int checkConfig(worker *w, const workerConfig *cfg, rurl *url) {
    char err[300];
    if (rdsResolveUrl(cfg->redis_url, url, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmfleet worker: %s\n", err);
        return 2;
    }
    if (keysInit(&w->keys, cfg->fleet) < 0) {
        fprintf(stderr, "llmfleet worker: bad fleet name \"%s\" (1-100 of "
                "A-Z a-z 0-9 _ - .)\n", cfg->fleet);
        return 2;
    }
    if (!cfg->api_key || !*cfg->api_key) {
        fprintf(stderr, "llmfleet worker: ANTHROPIC_API_KEY is not set\n");
        return 2;
    }
    if (httpIsInsecureRemote(cfg->base_url) && !cfg->allow_insecure_http) {
        fprintf(stderr, "llmfleet worker: refusing plain http:// to a "
                "non-loopback host (ANTHROPIC_BASE_URL); use https:// or "
                "--allow-insecure-http\n");
        return 2;
    }
    if (cfg->wait_replicas > 0 && cfg->wait_replicas_ms * 2 > rdsSyncTimeoutMs()) {
        fprintf(stderr, "llmfleet worker: --wait-replicas-ms %ld is over half the Redis "
                "reply deadline (%ld ms, LLMFLEET_REDIS_TIMEOUT_MS): a WAIT would look "
                "like a dead link\n", cfg->wait_replicas_ms, rdsSyncTimeoutMs());
        return 2;
    }
    if (cfg->prices) {
        fprintf(stderr, "llmfleet worker: --prices is gone: prices are fleet "
                "state, one table for every worker; load the file with "
                "`llmfleet prices load %s`\n", cfg->prices);
        return 2;
    }
    return 0;
}

/* Slots, timers and signals on w->base. */
static void setupLoop(worker *w) {
    const workerConfig *cfg = w->cfg;
    w->seats = cfg->concurrency;
    w->nslots = w->nfree = cfg->no_follow || cfg->wait_replicas ? cfg->concurrency
                                                              : 3 * cfg->concurrency;
    w->slots = calloc((size_t)w->nslots, sizeof(slot));
    if (!w->slots) abort();
    w->idle_timer = evtimer_new(w->base, onIdleTimer, w);
    w->flush_ev = evtimer_new(w->base, onFlush, w);
    w->renew_timer = evtimer_new(w->base, onRenewTimer, w);
    w->reap_timer = evtimer_new(w->base, onReapTimer, w);
    w->drain_timer = evtimer_new(w->base, onDrainDeadline, w);
    w->wait_timer = evtimer_new(w->base, onWaitTimer, w);
    w->follow_timer = evtimer_new(w->base, onIdle, w);     /* a claim for followers due */
    w->summary_timer = evtimer_new(w->base, onSummaryTimer, w);
    static const double api_s[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
    histInit(&w->api_latency, api_s, (int)(sizeof(api_s) / sizeof(api_s[0])));
    w->sig_term = evsignal_new(w->base, SIGTERM, onSignal, w);
    w->sig_int = evsignal_new(w->base, SIGINT, onSignal, w);
    evsignal_add(w->sig_term, NULL);
    evsignal_add(w->sig_int, NULL);
    timerIn(w->renew_timer, cfg->lease_ms / 3);
    timerIn(w->reap_timer, REAP_INTERVAL_MS);
    if (cfg->summary_ms > 0) timerIn(w->summary_timer, cfg->summary_ms);
}

static void teardown(worker *w) {
    batchStop(w);               /* (its callbacks, called NULL by rdsFree, do nothing) */
    rdsFree(w->redis);          /* first: a metrics refresh still out gets its NULL */
    rdsFree(w->waker);
    batchFree(w);
    metricsStop(w->metrics);
    for (int i = 0; i < w->nslots; i++) {
        if (!w->slots[i].w) continue;
        httpReqFree(&w->slots[i].http);
        bufFree(&w->slots[i].raw);
        bufFree(&w->slots[i].countbody);
        recFree(&w->slots[i].rec);
    }
    free(w->slots);
    struct event *evs[] = {w->idle_timer, w->flush_ev, w->renew_timer, w->reap_timer,
                           w->drain_timer, w->wait_timer, w->summary_timer, w->follow_timer,
                           w->sig_term, w->sig_int};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) event_free(evs[i]);
    httpShutdown(&w->http);
}

/* Keep the key out of core files and other processes' reach: unless
 * --allow-core-dump, the worker is not dumpable (no core, no ptrace or
 * /proc/PID/environ for other processes of the user) and RLIMIT_CORE is
 * 0. The key moves to a page excluded from any core (MADV_DONTDUMP) and
 * its copy in the environment is wiped. (libcurl keeps its own copy in the
 * request header list: with --allow-core-dump a core may hold it.)
 * Returns the key's new home, or the old one if no page could be had. */
static const char *guardKey(const workerConfig *cfg) {
    if (!cfg->allow_core_dump) {
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_CORE, &rl) != 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
            lfLog(LF_WARN, "event=core_guard_failed errno=%d", errno);
    }
    size_t len = strlen(cfg->api_key), page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = (len + page) / page * page;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return cfg->api_key;
    madvise(p, size, MADV_DONTDUMP);
    memcpy(p, cfg->api_key, len + 1);
    char *env = getenv("ANTHROPIC_API_KEY");
    if (env == cfg->api_key) memset(env, 0, len);
    return p;
}

int workerRun(const workerConfig *given) {
    workerConfig guarded = *given;
    const workerConfig *cfg = &guarded;
    worker w;
    rurl url;
    char err[300];
    int rc = 1;

    memset(&w, 0, sizeof(w));
    w.cfg = cfg;
    w.prices_ver = -1;
    wkTestHooks();
    srandom((unsigned)(time(NULL) ^ getpid() ^ (monoMs() << 8)));
    if (checkConfig(&w, cfg, &url) != 0) return 2;
    guarded.api_key = guardKey(cfg);
    if (cfg->name && !*cfg->name) {
        fprintf(stderr, "llmfleet worker: --name must not be empty\n");
        return 2;
    }
    if (cfg->name) snprintf(w.name, sizeof(w.name), "%s", cfg->name);
    else defaultName(w.name, sizeof(w.name));
    snprintf(w.intake, sizeof(w.intake), "%s:intake:%s", w.keys.name[KEY_JOBS], w.name);

    raiseFdLimit(cfg->concurrency * 2 + 256);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    w.base = event_base_new();
    if (httpInit(&w.http, w.base, cfg->base_url, cfg->api_key, cfg->version,
                 cfg->connect_timeout_ms, cfg->max_response_bytes,
                 cfg->concurrency, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmfleet worker: %s\n", err);
        rc = 2;                 /* the base URL or the key: configuration */
        goto out_base;
    }
    setupLoop(&w);
    if (cfg->metrics_addr && !(w.metrics = metricsStart(&w, cfg->metrics_addr, err, sizeof(err)))) {
        fprintf(stderr, "llmfleet worker: %s\n", err);
        rc = 2;
        teardown(&w);
        goto out_base;
    }

    char where[300];
    rurlDescribe(&url, where, sizeof(where));
    lfLog(LF_INFO, "event=worker_start version=%s name=%s fleet=%s redis=%s concurrency=%d "
          "lease_ms=%ld", LLMFLEET_VERSION, lfQ(w.name), lfQ(cfg->fleet), lfQ(where), cfg->concurrency,
          cfg->lease_ms);
    batchStart(&w);
    w.redis = rdsCreate(w.base, &url, onReady, &w);
    w.waker = rdsCreate(w.base, &url, onWakerReady, &w);
    memset(&url, 0, sizeof(url));

    event_base_dispatch(w.base);

    lfLog(LF_INFO, "event=worker_stop name=%s ok=%lld error=%lld retries=%lld "
          "duplicates=%lld lost_leases=%lld late_go=%lld", lfQ(w.name), w.done_ok,
          w.done_err, w.retries, w.dups, w.fenced, w.late_go);
    rc = 0;
    teardown(&w);
out_base:
    event_base_free(w.base);
    curl_global_cleanup();
    return rc;
}
