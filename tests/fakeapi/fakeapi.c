/* fakeapi.c — bin/llmfleet-fakeapi: a fake Anthropic Messages API.
 *
 * Speaks the wire format of POST /v1/messages and /v1/messages/count_tokens
 * (JSON shapes, error bodies, anthropic-ratelimit-* and retry-after
 * headers), enforces continuously refilled rate-limit buckets (global, or
 * per model class with --class-limits), simulates latency, injects faults
 * on request (500, 529, resets, hangs, an org cap, a spend limit, malformed
 * 200s) and reports what it saw on GET /_stats. Off by default, it can also
 * stamp the rate-limit headers at admission (--headers-at admit), count
 * tokens like the real API (--tokenizer realistic: CJK, images by their
 * pixels, PDF pages), cache prompt prefixes (--caching) and draw output
 * lengths whatever max_tokens (--output-tokens). Tests, the demo and the
 * benchmarks run it on a loopback port; the official SDK talks to it
 * unchanged (tests/sdk).
 *
 * This file holds main(): the options, the listening socket, signals and
 * the event loop, plus small helpers shared by the other modules (clocks,
 * the PRNG, hashing, ids). It is not a general HTTP server: one process,
 * one libevent loop, no threads, no TLS. */
#include "fakeapi.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "log.h"

fakeServer fake;

/* ---- Helpers ------------------------------------------------------------- */

double fakeNow(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

long long fakeWallMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t fakeMix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t fakeRandom(void) {
    fake.rng += 0x9e3779b97f4a7c15ULL;
    return fakeMix(fake.rng);
}

double fakeRandomUnit(void) {
    return (double)(fakeRandom() >> 11) / 9007199254740992.0;  /* 2^53 */
}

/* 64-bit hash of a byte string, eight bytes at a time. Not cryptographic;
 * good enough to tell request bodies apart. */
uint64_t fakeHash(const void *p, size_t len) {
    const unsigned char *s = p;
    uint64_t h = 0x243f6a8885a308d3ULL ^ (len * 0x9e3779b97f4a7c15ULL);
    uint64_t w;

    for (; len >= 8; s += 8, len -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ (w * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s, len);
    h = (h ^ (w * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
    return fakeMix(h);
}

void fakeNewId(const char *prefix, char *out, size_t outlen) {
    static const char digits[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint64_t x = fakeMix(fake.cfg.seed * 0x9e3779b97f4a7c15ULL + ++fake.idCounter);
    char tail[25];

    /* Three 64-bit draws of 8 base62 digits each (62^8 < 2^48). */
    for (int i = 0; i < 24; i++) {
        if (i % 8 == 0 && i > 0) x = fakeMix(x ^ 0x6a09e667f3bcc909ULL);
        tail[i] = digits[x % 62];
        x /= 62;
    }
    tail[24] = '\0';
    snprintf(out, outlen, "%s%s", prefix, tail);
}

void fakeSend(struct evhttp_request *req, int status, const char *reason,
              const char *body, size_t len) {
    if (len) evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    evhttp_send_reply(req, status, reason, NULL);
}

/* A reply whose body goes out one byte a second (chunked): a trickling
 * upstream. Freed when the last byte is out or the client hangs up. */
typedef struct fakeTrickle {
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    struct evbuffer *rest;
    struct event *ev;
} fakeTrickle;

static void trickleFree(fakeTrickle *t) {
    if (t->conn) evhttp_connection_set_closecb(t->conn, NULL, NULL);
    event_free(t->ev);
    evbuffer_free(t->rest);
    free(t);
}

static void trickleClosed(struct evhttp_connection *c, void *arg) {
    fakeTrickle *t = arg;
    (void)c;
    t->conn = NULL;
    trickleFree(t);
}

static void trickleTick(evutil_socket_t fd, short what, void *arg) {
    fakeTrickle *t = arg;
    (void)fd; (void)what;
    struct evbuffer *one = evbuffer_new();
    if (one) {
        evbuffer_remove_buffer(t->rest, one, 1);
        evhttp_send_reply_chunk(t->req, one);
        evbuffer_free(one);
    }
    if (!one || evbuffer_get_length(t->rest) == 0) {
        evhttp_send_reply_end(t->req);
        trickleFree(t);
        return;
    }
    struct timeval tv = {1, 0};
    evtimer_add(t->ev, &tv);
}

void fakeSendTrickle(struct evhttp_request *req, int status, const char *reason,
                     const char *body, size_t len) {
    fakeTrickle *t = calloc(1, sizeof(*t));
    if (!t || !(t->rest = evbuffer_new()) ||
        !(t->ev = evtimer_new(fake.base, trickleTick, t))) {
        if (t && t->rest) evbuffer_free(t->rest);
        free(t);
        fakeSend(req, status, reason, body, len);
        return;
    }
    t->req = req;
    t->conn = evhttp_request_get_connection(req);
    evbuffer_add(t->rest, body, len);
    evhttp_connection_set_closecb(t->conn, trickleClosed, t);
    evhttp_send_reply_start(req, status, reason);
    trickleTick(-1, 0, t);
}

/* ---- Options ------------------------------------------------------------- */

enum { OPT_STR, OPT_COUNT, OPT_MS, OPT_PROB, OPT_U64, OPT_FLAG, OPT_MODE,
       OPT_CHOICE, OPT_CLASS };

/* The values of the OPT_CHOICE options, value i sets the field to i. */
static const char *const fakeHeadersAt[] = {"answer", "admit", NULL};
static const char *const fakeTokenizers[] = {"chars", "realistic", "code", NULL};
static const char *const fakeDists[] = {"exponential", "uniform", "fixed", NULL};

static const struct {
    const char *name;           /* without the leading dashes */
    int kind;                   /* OPT_*: how to parse and check it */
    size_t off;                 /* field offset in fakeConfig */
    const char *const *choices; /* OPT_CHOICE: the names of its values */
} fakeOpts[] = {
    {"listen", OPT_STR, offsetof(fakeConfig, listen), NULL},
    {"port-file", OPT_STR, offsetof(fakeConfig, portFile), NULL},
    {"api-key", OPT_STR, offsetof(fakeConfig, apiKey), NULL},
    {"rpm", OPT_COUNT, offsetof(fakeConfig, rpm), NULL},
    {"itpm", OPT_COUNT, offsetof(fakeConfig, itpm), NULL},
    {"otpm", OPT_COUNT, offsetof(fakeConfig, otpm), NULL},
    {"otpm-mode", OPT_MODE, offsetof(fakeConfig, otpmReserve), NULL},
    {"latency-ms", OPT_MS, offsetof(fakeConfig, latencyMs), NULL},
    {"per-token-ms", OPT_MS, offsetof(fakeConfig, perTokenMs), NULL},
    {"jitter-ms", OPT_MS, offsetof(fakeConfig, jitterMs), NULL},
    {"seed", OPT_U64, offsetof(fakeConfig, seed), NULL},
    {"p500", OPT_PROB, offsetof(fakeConfig, p500), NULL},
    {"p529", OPT_PROB, offsetof(fakeConfig, p529), NULL},
    {"p-reset", OPT_PROB, offsetof(fakeConfig, pReset), NULL},
    {"p-hang", OPT_PROB, offsetof(fakeConfig, pHang), NULL},
    {"p-garbage", OPT_PROB, offsetof(fakeConfig, pGarbage), NULL},
    {"p-truncated", OPT_PROB, offsetof(fakeConfig, pTruncated), NULL},
    {"p-no-usage", OPT_PROB, offsetof(fakeConfig, pNoUsage), NULL},
    {"p-huge", OPT_PROB, offsetof(fakeConfig, pHuge), NULL},
    {"p-bad-headers", OPT_PROB, offsetof(fakeConfig, pBadHeaders), NULL},
    {"p-trickle", OPT_PROB, offsetof(fakeConfig, pTrickle), NULL},
    {"url-doc-tokens", OPT_COUNT, offsetof(fakeConfig, urlDocTokens), NULL},
    {"count-status", OPT_COUNT, offsetof(fakeConfig, countStatus), NULL},
    {"huge-bytes", OPT_COUNT, offsetof(fakeConfig, hugeBytes), NULL},
    {"org-cap-tokens", OPT_COUNT, offsetof(fakeConfig, orgCapTokens), NULL},
    {"org-cap-seconds", OPT_MS, offsetof(fakeConfig, orgCapSeconds), NULL},
    {"spend-limit-after", OPT_COUNT, offsetof(fakeConfig, spendLimitAfter), NULL},
    {"max-output-tokens", OPT_COUNT, offsetof(fakeConfig, maxOutputTokens), NULL},
    {"headers-at", OPT_CHOICE, offsetof(fakeConfig, headersAtAdmit), fakeHeadersAt},
    {"enforce-ms", OPT_MS, offsetof(fakeConfig, enforceMs), NULL},
    {"class-limits", OPT_CLASS, 0, NULL},
    {"tokenizer", OPT_CHOICE, offsetof(fakeConfig, tokRealistic), fakeTokenizers},
    {"caching", OPT_FLAG, offsetof(fakeConfig, caching), NULL},
    {"leak-key", OPT_FLAG, offsetof(fakeConfig, leakKey), NULL},
    {"output-tokens", OPT_MS, offsetof(fakeConfig, outputMean), NULL},
    {"output-dist", OPT_CHOICE, offsetof(fakeConfig, outputDist), fakeDists},
    {"quiet", OPT_FLAG, offsetof(fakeConfig, quiet), NULL},
    {"batch-ms", OPT_MS, offsetof(fakeConfig, batchMs), NULL},
    {"batch-expire-ms", OPT_MS, offsetof(fakeConfig, batchExpireMs), NULL},
    {"batch-p-errored", OPT_PROB, offsetof(fakeConfig, batchPErrored), NULL},
    {"batch-queue", OPT_COUNT, offsetof(fakeConfig, batchQueue), NULL},
    {"batch-queue-retry", OPT_COUNT, offsetof(fakeConfig, batchQueueRetry), NULL},
    {"batch-rpm", OPT_COUNT, offsetof(fakeConfig, batchRpm), NULL},
    {"batch-max-requests", OPT_COUNT, offsetof(fakeConfig, batchMaxRequests), NULL},
};

static void fakeUsage(FILE *f) {
    fprintf(f,
        "usage: llmfleet-fakeapi [options]\n"
        "  --listen HOST:PORT        address to listen on (127.0.0.1:0)\n"
        "  --port-file FILE          write the bound port to FILE\n"
        "  --api-key K               accept only this key (default: any)\n"
        "  --p-trickle P             a success's body sent a byte a second\n"
        "  --count-status N          count_tokens fails with HTTP N (an outage)\n"
        "  --url-doc-tokens N        a document by url or file counts N tokens\n"
        "                            (realistic tokenizer; default one page)\n"
        "  --leak-key                a careless gateway: quote the refused key in\n"
        "                            401 messages, the request's key in 200 texts\n"
        "  --rpm N --itpm N --otpm N per-minute limits (0 = unlimited)\n"
        "  --enforce-ms N            the per-minute limits also enforced over N\n"
        "                            ms (the docs: 60 RPM as 1 per second):\n"
        "                            a bucket of limit*N/60000 beside each, the\n"
        "                            headers describing the minute's only\n"
        "  --otpm-mode reserve|actual  charge max_tokens up front or\n"
        "                            produced tokens at the end (actual)\n"
        "  --latency-ms N --per-token-ms F --jitter-ms N   simulated latency\n"
        "  --seed N                  seeds faults, ids and outputs (1)\n"
        "  --p500 F --p529 F --p-reset F --p-hang F   fault probabilities\n"
        "  malformed 200s (admitted and charged like a success):\n"
        "  --p-garbage F             body that is not JSON\n"
        "  --p-truncated F           JSON body cut at half its length\n"
        "  --p-no-usage F            message without its usage object\n"
        "  --p-huge F                message whose text is --huge-bytes long\n"
        "  --huge-bytes N            text length of --p-huge (8388608)\n"
        "  --p-bad-headers F         garbage anthropic-ratelimit-* and\n"
        "                            retry-after values, one ~8 KB long\n"
        "                            (all fault probabilities share one draw\n"
        "                            per request: they should sum to <= 1)\n"
        "  --org-cap-tokens N --org-cap-seconds S     org cap (S = 3600)\n"
        "  --spend-limit-after N     spend limit after N successes\n"
        "  --max-output-tokens N     cap on generated output tokens\n"
        "  --headers-at admit|answer when anthropic-ratelimit-*-remaining (and\n"
        "                            -reset) describe the buckets: as the request\n"
        "                            was admitted, before its latency, or as it\n"
        "                            is answered (answer)\n"
        "  --class-limits CLASS=RPM,ITPM,OTPM   buckets of its own for a model\n"
        "                            class (repeatable; 0 = unlimited). Classes:\n"
        "                            opus (claude-opus-*), sonnet\n"
        "                            (claude-sonnet-*), haiku (claude-haiku-*,\n"
        "                            claude-3-5-haiku-*), else the model id.\n"
        "                            Other classes share --rpm/--itpm/--otpm;\n"
        "                            headers describe the request's class\n"
        "  --tokenizer chars|realistic|code   input tokens: characters / 4\n"
        "                            (chars, the default), or ASCII ~4 chars a\n"
        "                            token, CJK 1 token a character, other\n"
        "                            non-ASCII 1 per 2 characters, images\n"
        "                            width*height/750 from the PNG/JPEG/GIF/WebP\n"
        "                            header (scaled to <= 1.15 MP and a 1568 px\n"
        "                            edge: <= 1534 tokens), PDF documents 3000\n"
        "                            tokens a page (\"/Type /Page\" objects, else\n"
        "                            1 page per 100 KiB), url/file sources as\n"
        "                            the largest image or 1 page (realistic);\n"
        "                            code: realistic, and every ASCII symbol or\n"
        "                            punctuation character is a token of its own\n"
        "  --caching                 prompt caching: the prefix up to the last\n"
        "                            block with cache_control (tools, system,\n"
        "                            messages), >= 1024 tokens, is written on\n"
        "                            first sight and read for 5 min (ttl 1h: 1\n"
        "                            hour) after each use; reads do not count\n"
        "                            toward ITPM, writes and the rest do\n"
        "  --output-tokens MEAN      output length drawn around MEAN per body,\n"
        "                            whatever max_tokens (which still caps it)\n"
        "  --output-dist exponential|uniform|fixed   its distribution\n"
        "                            (exponential; uniform = [1, 2*MEAN-1])\n"
        "  Message Batches (/v1/messages/batches):\n"
        "  --batch-ms N              a request is processed within N ms of its\n"
        "                            batch's creation (1000)\n"
        "  --batch-expire-ms N       a batch expires N ms after its creation;\n"
        "                            requests not processed by then: expired\n"
        "                            (86400000)\n"
        "  --batch-p-errored F       a request ends errored (api_error)\n"
        "  --batch-queue N           batch requests processing per model\n"
        "                            class at most (0 = no limit)\n"
        "  --batch-queue-retry N     the retry-after (s) of a create refused\n"
        "                            for that limit (60; the docs give none)\n"
        "  --batch-rpm N             requests per minute to the batch\n"
        "                            endpoints (0 = no limit)\n"
        "  --batch-max-requests N    requests in one batch at most (100000)\n"
        "  --quiet                   warnings and errors only\n");
}

/* Parse one value into field kind at p (choices: the names of an
 * OPT_CHOICE). Returns 0 or -1. */
static int fakeOptValue(int kind, void *p, const char *v, const char *const *choices) {
    char *end;
    errno = 0;
    switch (kind) {
    case OPT_CHOICE:
        for (int i = 0; choices[i]; i++)
            if (strcmp(v, choices[i]) == 0) {
                *(int *)p = i;
                return 0;
            }
        return -1;
    case OPT_CLASS:
        return fakeClassParse(v);
    case OPT_STR:
        *(const char **)p = v;
        return 0;
    case OPT_COUNT: {
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < 0) return -1;
        *(long long *)p = n;
        return 0;
    }
    case OPT_U64: {
        if (*v == '-') return -1;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || end == v || *end) return -1;
        *(uint64_t *)p = n;
        return 0;
    }
    case OPT_MS:
    case OPT_PROB: {
        double d = strtod(v, &end);
        if (errno || end == v || *end || !(d >= 0) || d > 1e12) return -1;
        if (kind == OPT_PROB && d > 1) return -1;
        *(double *)p = d;
        return 0;
    }
    case OPT_MODE:
        if (strcmp(v, "reserve") == 0) *(int *)p = 1;
        else if (strcmp(v, "actual") == 0) *(int *)p = 0;
        else return -1;
        return 0;
    }
    return -1;
}

/* Fill c from argv. Exits 2 with a message naming the option on error. */
static void fakeParseOptions(fakeConfig *c, int argc, char **argv) {
    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:0";
    c->seed = 1;
    c->orgCapSeconds = 3600;
    c->hugeBytes = FAKE_HUGE_DEFAULT;
    c->batchMs = 1000;
    c->batchExpireMs = 86400000;
    c->batchMaxRequests = 100000;
    c->batchQueueRetry = 60;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = NULL, *eq;
        size_t nlen, k, nopts = sizeof(fakeOpts) / sizeof(fakeOpts[0]);

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fakeUsage(stdout);
            exit(0);
        }
        if (strncmp(arg, "--", 2) != 0) goto unknown;
        arg += 2;
        eq = strchr(arg, '=');
        nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        for (k = 0; k < nopts; k++)
            if (strlen(fakeOpts[k].name) == nlen && strncmp(fakeOpts[k].name, arg, nlen) == 0)
                break;
        if (k == nopts) goto unknown;
        void *field = (char *)c + fakeOpts[k].off;
        if (fakeOpts[k].kind == OPT_FLAG) {
            if (eq) goto badval;
            *(int *)field = 1;
            continue;
        }
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else {
            fprintf(stderr, "llmfleet-fakeapi: --%s needs a value\n", fakeOpts[k].name);
            exit(2);
        }
        if (fakeOptValue(fakeOpts[k].kind, field, val, fakeOpts[k].choices) != 0 ||
            (field == (void *)&c->hugeBytes && c->hugeBytes > FAKE_HUGE_MAX)) {
            fprintf(stderr, "llmfleet-fakeapi: bad value for --%s: '%s'\n",
                    fakeOpts[k].name, val);
            exit(2);
        }
        continue;
    badval:
        fprintf(stderr, "llmfleet-fakeapi: --%.*s takes no value\n", (int)nlen, arg);
        exit(2);
    unknown:
        fprintf(stderr, "llmfleet-fakeapi: unknown option '%s' (see --help)\n", argv[i]);
        exit(2);
    }
}

/* ---- Listening socket ---------------------------------------------------- */

/* Bind and listen on HOST:PORT (HOST may be [v6]). Returns the socket and
 * sets *port to the bound port, or returns -1 after printing why. */
static int fakeListen(const char *spec, int *port) {
    char host[256];
    const char *colon = strrchr(spec, ':'), *portStr;
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, one = 1, rc;

    if (!colon || colon - spec >= (long)sizeof(host)) {
        fprintf(stderr, "llmfleet-fakeapi: bad value for --listen: '%s' (want HOST:PORT)\n", spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    portStr = colon + 1;
    if (host[0] == '[') {                       /* [::1] -> ::1 */
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']') goto bad;
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(host[0] ? host : NULL, portStr, &hints, &res)) != 0) {
        fprintf(stderr, "llmfleet-fakeapi: bad value for --listen: '%s': %s\n",
                spec, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        fprintf(stderr, "llmfleet-fakeapi: cannot listen on '%s': %s\n", spec, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char pbuf[16];
    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, pbuf, sizeof(pbuf), NI_NUMERICSERV);
    *port = atoi(pbuf);
    return fd;
bad:
    fprintf(stderr, "llmfleet-fakeapi: bad value for --listen: '%s'\n", spec);
    return -1;
}

/* Write "PORT\n" to path atomically (write a temporary, then rename). */
static int fakeWritePortFile(const char *path, int port) {
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (!(f = fopen(tmp, "w"))) goto fail;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "llmfleet-fakeapi: cannot write --port-file '%s': %s\n",
            path, strerror(errno));
    return -1;
}

/* ---- Main ---------------------------------------------------------------- */

static void fakeOnSignal(evutil_socket_t sig, short what, void *arg) {
    (void)what; (void)arg;
    lfLog(LF_INFO, "event=shutdown signal=%d", (int)sig);
    event_base_loopexit(fake.base, NULL);
}

/* Allow as many descriptors as the hard limit: thousands of held
 * connections are the point of the concurrency tests. */
static void fakeRaiseFdLimit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The event base. With epoll, the changelist folds the add/del pairs evhttp
 * makes on every request into one epoll_ctl per loop iteration; we never
 * dup() sockets, the one case where it misbehaves. */
static struct event_base *fakeNewBase(void) {
    struct event_config *cfg = event_config_new();
    struct event_base *base;

    if (!cfg) return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

/* Paths with a variable part: the Message Batches ones (ids), else 404. */
static void fakeRoute(struct evhttp_request *req, void *arg) {
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path && strncmp(path, "/v1/messages/batches", 20) == 0 &&
        (path[20] == '\0' || path[20] == '/'))
        fakeBatchHandle(req, arg);
    else
        fakeNotFoundHandle(req, arg);
}

/* Create the HTTP server on fd with every route. Returns 0 or -1. */
static int fakeSetupHttp(int fd) {
    fake.http = evhttp_new(fake.base);
    if (!fake.http) return -1;
    evhttp_set_max_body_size(fake.http, FAKE_READ_BODY);
    evhttp_set_default_content_type(fake.http, "application/json");
    evhttp_set_cb(fake.http, "/v1/messages", fakeMsgHandle, NULL);
    evhttp_set_cb(fake.http, "/v1/messages/count_tokens", fakeCountHandle, NULL);
    evhttp_set_cb(fake.http, "/_stats", fakeStatsHandle, NULL);
    evhttp_set_cb(fake.http, "/_reset", fakeResetHandle, NULL);
    evhttp_set_cb(fake.http, "/_config", fakeConfigHandle, NULL);
    evhttp_set_gencb(fake.http, fakeRoute, NULL);
    return evhttp_accept_socket_with_handle(fake.http, fd) ? 0 : -1;
}

int main(int argc, char **argv) {
    struct event *sigterm = NULL, *sigint = NULL;
    int fd, port, rc = 1;
    double now;

    lfLogName = "llmfleet-fakeapi";
    fakeParseOptions(&fake.cfg, argc, argv);
    if (fake.cfg.quiet) lfLogLevel = LF_WARN;
    fake.rng = fake.cfg.seed;
    now = fakeNow();
    fakeBucketSetLimit(&fake.requests, fake.cfg.rpm, now);
    fakeBucketSetLimit(&fake.input, fake.cfg.itpm, now);
    fakeBucketSetLimit(&fake.output, fake.cfg.otpm, now);
    fakeClassFill(now);

    signal(SIGPIPE, SIG_IGN);
    fakeRaiseFdLimit();
    if ((fd = fakeListen(fake.cfg.listen, &port)) < 0) return 2;
    if (!(fake.base = fakeNewBase()) || fakeSchedInit() != 0 || fakeSetupHttp(fd) != 0) {
        lfLog(LF_ERROR, "event=init_failed");
        goto done;
    }
    sigterm = evsignal_new(fake.base, SIGTERM, fakeOnSignal, NULL);
    sigint = evsignal_new(fake.base, SIGINT, fakeOnSignal, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    if (fake.cfg.portFile && fakeWritePortFile(fake.cfg.portFile, port) != 0) goto done;
    lfLog(LF_INFO, "event=listening listen=%s port=%d rpm=%lld itpm=%lld otpm=%lld",
          fake.cfg.listen, port, fake.cfg.rpm, fake.cfg.itpm, fake.cfg.otpm);

    event_base_dispatch(fake.base);
    rc = 0;
done:
    if (fake.http) evhttp_free(fake.http);      /* closes held requests too */
    else close(fd);
    fakeSchedFree();
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    if (fake.base) event_base_free(fake.base);
    fakeStatsFree();
    bufFree(&fake.out);
    return rc;
}
