/* fakeapi.h — shared state of bin/llmfleet-fakeapi, a fake Anthropic
 * Messages API for tests, the demo and benchmarks.
 *
 * The server is one process, one libevent loop, no threads. It is split in
 * a few modules, each with its own name prefix:
 *
 *   fakeapi.c   main: options, listening socket, signals, the loop.
 *   messages.c  fakeMsg*: POST /v1/messages and /v1/messages/count_tokens:
 *               auth, validation, admission, faults, replies.
 *   sched.c     fakeSched*: the requests held for latency, in a min-heap of
 *               deadlines driven by a single timer.
 *   bucket.c    fakeBucket*: continuously refilled token buckets and the
 *               anthropic-ratelimit-* headers.
 *   classes.c   fakeClass*: model classes (opus, sonnet, haiku, or the id),
 *               their own buckets under --class-limits, their counters.
 *   tokens.c    fakeTok*: input token counts (--tokenizer chars|realistic)
 *               and the cache breakpoints of a request (--caching).
 *   cache.c     fakeCache*: the prompt cache, prefix hashes with expiries.
 *   batches.c   fakeBatch*: the Message Batches endpoints.
 *   stats.c     fakeStats*: counters, the per-second series, the set of
 *               body hashes, and the /_stats, /_reset, /_config endpoints.
 *
 * All state lives in the single global `fake` below, like redis' `server`. */
#ifndef LF_FAKEAPI_H
#define LF_FAKEAPI_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/http.h>

#include "buf.h"

#define FAKE_MAX_BODY      (32LL * 1024 * 1024)  /* the API's request limit */
#define FAKE_READ_BODY     (257LL * 1024 * 1024) /* what evhttp will read: a batch */
#define FAKE_MODEL_MAX     128                   /* longest model id echoed */
#define FAKE_SERIES_LEN    600                   /* seconds of /_stats series */
#define FAKE_SERIES_CLASSES 4                    /* classes with a series of their own */
#define FAKE_MAX_TEXT      4096                  /* cap on generated text */
#define FAKE_HUGE_DEFAULT  (8LL * 1024 * 1024)   /* --huge-bytes default */
#define FAKE_HUGE_MAX      (1LL << 30)           /* --huge-bytes at most */
#define FAKE_CLASSES_MAX   64                    /* model classes tracked */
#define FAKE_TOK_BREAKS    4                     /* cache breakpoints kept */
#define FAKE_CACHE_MIN     1024                  /* shortest cacheable prefix */

/* How --output-tokens draws an output length around its mean. */
enum { FAKE_DIST_EXP = 0, FAKE_DIST_UNIFORM = 1, FAKE_DIST_FIXED = 2 };

/* ---- Configuration ------------------------------------------------------- */

/* Everything the command line sets. /_config changes some of it at run
 * time. Probabilities are in [0,1]; 0 disables a limit or a fault. */
typedef struct fakeConfig {
    const char *listen;         /* HOST:PORT to bind, port 0 = ephemeral */
    const char *portFile;       /* where to write the bound port, or NULL */
    const char *apiKey;         /* the only key accepted, NULL = any key */
    long long rpm;              /* requests per minute, 0 = unlimited */
    long long itpm;             /* input tokens per minute, 0 = unlimited */
    long long otpm;             /* output tokens per minute, 0 = unlimited */
    int otpmReserve;            /* 1: reserve max_tokens at admission */
    double latencyMs;           /* fixed latency of a success */
    double perTokenMs;          /* extra latency per output token */
    double jitterMs;            /* uniform extra latency in [0, jitterMs) */
    uint64_t seed;              /* seeds the fault PRNG and all outputs */
    double p500;                /* probability of a 500 api_error */
    double p529;                /* probability of a 529 overloaded_error */
    double pReset;              /* probability of a dropped connection */
    double pHang;               /* probability of never answering */
    double pGarbage;            /* probability of a 200 whose body is not JSON */
    double pTruncated;          /* probability of a 200 cut at half its body */
    double pNoUsage;            /* probability of a 200 without usage */
    double pHuge;               /* probability of a 200 of hugeBytes of text */
    double pBadHeaders;         /* probability of garbage rate-limit headers */
    double pTrickle;            /* probability of a body sent a byte a second */
    long long urlDocTokens;     /* tokens a url/file document counts (0: a page) */
    long long countStatus;      /* count_tokens answers this error status (0: counts) */
    long long hugeBytes;        /* text length of a huge answer */
    long long orgCapTokens;     /* org cap: tokens served before it trips */
    double orgCapSeconds;       /* org cap: how long it stays tripped */
    long long spendLimitAfter;  /* successes before the spend limit, 0=off */
    long long maxOutputTokens;  /* cap on generated tokens, 0 = none */
    int headersAtAdmit;         /* 1: rate-limit headers stamped at admission */
    double enforceMs;           /* a minute's limits also enforced over this
                                 * many ms (0 = the minute only) */
    int tokRealistic;           /* 1: --tokenizer realistic, 2: code, 0: chars / 4 */
    int caching;                /* 1: honour cache_control (prompt caching) */
    int leakKey;            /* quote the key: in 401 messages and 200 texts */
    double outputMean;          /* --output-tokens mean, 0 = drawn up to max_tokens */
    int outputDist;             /* FAKE_DIST_* of --output-tokens */
    int quiet;                  /* no informational log lines */
    double batchMs;             /* a batch request is processed within this */
    double batchExpireMs;       /* a batch expires this long after creation */
    double batchPErrored;       /* probability a batch request ends errored */
    long long batchQueue;       /* batch requests processing per class, 0 = any */
    long long batchQueueRetry;  /* retry-after (s) of a create refused for it */
    long long batchRpm;         /* HTTP rate of the batch endpoints, 0 = any */
    long long batchMaxRequests; /* requests in one batch at most */
} fakeConfig;

/* ---- Token buckets ------------------------------------------------------- */

/* A bucket refilled continuously at limit/60 per second up to limit. The
 * level is a double and may go negative when actual output tokens are
 * charged after the fact: later requests then wait for the refill. */
typedef struct fakeBucket {
    double limit;               /* capacity = per-minute limit, 0 = none */
    double level;               /* available now (after the last refill) */
    double last;                /* monotonic time of the last refill */
    double burst;               /* --enforce-ms: the short interval's level */
} fakeBucket;

void fakeBucketSetLimit(fakeBucket *b, long long limit, double now);
/* Full again (a /_reset). */
void fakeBucketFill(fakeBucket *b);
/* Take n units (n < 0 gives them back, up to the capacities). */
void fakeBucketCharge(fakeBucket *b, double n);
void fakeBucketRefill(fakeBucket *b, double now);
/* Seconds until the bucket holds `need` (need is clamped to the limit, so
 * a request larger than the bucket fits when it is full). 0 = fits now. */
double fakeBucketWait(const fakeBucket *b, double need);
/* Seconds until the bucket is full again. */
double fakeBucketFullIn(const fakeBucket *b);

/* The three buckets a request is admitted against: its class's own, or the
 * global --rpm/--itpm/--otpm ones (classes.c, fakeClassBuckets). */
typedef struct fakeBucketSet {
    fakeBucket *requests;       /* rpm */
    fakeBucket *input;          /* itpm */
    fakeBucket *output;         /* otpm */
} fakeBucketSet;

/* The anthropic-ratelimit-* values at one moment: taken when a request is
 * admitted (--headers-at admit) or when it is answered, sent with its
 * answer. */
enum { FAKE_RL_REQUESTS, FAKE_RL_TOKENS, FAKE_RL_INPUT, FAKE_RL_OUTPUT, FAKE_RL_N };
typedef struct fakeRlSnap {
    unsigned has;               /* bit 1<<FAKE_RL_* set: that line is sent */
    long long limit[FAKE_RL_N];     /* -limit */
    long long remaining[FAKE_RL_N]; /* -remaining, tokens rounded to 1000s */
    long long resetMs[FAKE_RL_N];   /* -reset, unix milliseconds */
} fakeRlSnap;

/* Describe bs (refilled by the caller) in s. When the org cap is tripped,
 * tokens-* report it (remaining 0). */
void fakeBucketSnap(fakeRlSnap *s, const fakeBucketSet *bs, double now);
/* Add the anthropic-ratelimit-* headers of s to h. */
void fakeBucketEmit(struct evkeyvalq *h, const fakeRlSnap *s);

/* ---- Held requests ------------------------------------------------------- */

/* What to do with a held request when its deadline comes. */
enum { FAKE_ACT_REPLY = 0, FAKE_ACT_RESET = 1, FAKE_ACT_HANG = 2 };

/* The shape of a success: well formed, or one of the malformed-response
 * faults. A malformed answer is still a success for the buckets, the spend
 * limit, the org cap and the tokens served: the API did the work. */
enum {
    FAKE_SHAPE_OK = 0,          /* a normal message */
    FAKE_SHAPE_GARBAGE,         /* a body that is not JSON */
    FAKE_SHAPE_TRUNCATED,       /* the body cut at half its length */
    FAKE_SHAPE_NO_USAGE,        /* a message without its usage object */
    FAKE_SHAPE_HUGE,            /* text of cfg.hugeBytes bytes */
    FAKE_SHAPE_BAD_HEADERS,     /* garbage in the rate-limit headers */
    FAKE_SHAPE_TRICKLE,         /* headers, then the body a byte a second */
};

/* A /v1/messages request the server holds: waiting for its latency, to be
 * reset, or hung. Answered inline requests never allocate one. It is freed
 * when answered, reset, or when the client's connection goes away: evhttp
 * stops reading a connection while its request is being handled, so it
 * would not notice; closeEv (EV_CLOSED on the socket) does, and the
 * connection's close callback points at the request while it is held. */
typedef struct fakeReq {
    struct evhttp_request *req;     /* libevent's request */
    struct evhttp_connection *conn; /* its connection */
    double deadline;                /* monotonic seconds to act at */
    int heapIdx;                    /* slot in the deadline heap, -1 = none */
    int action;                     /* FAKE_ACT_* */
    int shape;                      /* FAKE_SHAPE_* of a reply */
    long long inputTokens;          /* usage.input_tokens (uncached input) */
    long long cacheRead;            /* usage.cache_read_input_tokens */
    long long cacheWrite5m;         /* cache writes with the 5-minute ttl */
    long long cacheWrite1h;         /* cache writes with the 1-hour ttl */
    long long outputTokens;         /* what the reply will report */
    long long maxTokens;            /* the request's max_tokens */
    uint64_t bodyHash;              /* for the repeated-bodies stats */
    struct event closeEv;           /* fires when the client hangs up */
    int closeWatched;               /* closeEv is added */
    int cls;                        /* index in fake.classes, -1 = global */
    int snapped;                    /* snap holds the admission's headers */
    fakeRlSnap snap;                /* --headers-at admit: what to send */
    char model[FAKE_MODEL_MAX];     /* model id to echo, NUL-terminated */
} fakeReq;

/* Tokens a request charges to the ITPM bucket: uncached input and cache
 * writes; cache reads do not count. */
static inline long long fakeReqItpm(const fakeReq *r) {
    return r->inputTokens + r->cacheWrite5m + r->cacheWrite1h;
}

int fakeSchedInit(void);
void fakeSchedFree(void);
void fakeSchedAdd(fakeReq *r);          /* r->deadline must be set */
void fakeSchedRemove(fakeReq *r);       /* no-op when not scheduled */
/* Hold r until its connection closes; frees r then. */
void fakeSchedWatchClose(fakeReq *r);
/* Forget the close callback once r is answered. */
void fakeSchedUnwatch(fakeReq *r);

/* ---- Statistics ---------------------------------------------------------- */

/* One second of the /_stats series. */
typedef struct fakeSecond {
    long long t;                /* unix second, 0 = slot unused */
    long long input;            /* input tokens served (200s) */
    long long output;           /* output tokens served (200s) */
    long long requests;         /* /v1 requests received */
    long long r429;             /* 429s sent */
    long long itpm;             /* tokens counted toward ITPM (input + cache writes) */
    long long cls_itpm[FAKE_SERIES_CLASSES];   /* the same per class (by index) */
    long long cls_output[FAKE_SERIES_CLASSES]; /* output tokens per class */
} fakeSecond;

/* One distinct /v1/messages body seen. */
typedef struct fakeBody {
    uint64_t hash;              /* body hash, 0 = empty slot */
    uint32_t seen;              /* requests with this body */
    uint32_t served;            /* 200s for this body */
} fakeBody;

typedef struct fakeStats {
    long long requestsTotal;    /* /v1 requests received */
    long long status[600];      /* responses sent, by status code */
    long long resets;           /* connections dropped on purpose */
    long long hangs;            /* requests never answered on purpose */
    long long garbage;          /* 200s sent with a body that is not JSON */
    long long truncated;        /* 200s sent with a truncated body */
    long long noUsage;          /* 200s sent without usage */
    long long huge;             /* 200s sent with huge text */
    long long badHeaders;       /* 200s sent with garbage rate-limit headers */
    long long concurrent;       /* /v1 requests in flight now */
    long long peakConcurrent;   /* highest concurrent since reset */
    long long msgConcurrent;    /* of them POST /v1/messages (no count_tokens) */
    long long peakMessages;     /* highest msgConcurrent since reset */
    long long inputTokens;      /* served on 200s, malformed ones too */
    long long outputTokens;     /* served on 200s, malformed ones too */
    long long cacheWrite;       /* cache_creation_input_tokens served */
    long long cacheRead;        /* cache_read_input_tokens served */
    long long distinctBodies;   /* distinct /v1/messages bodies */
    long long repeatedBodies;   /* requests whose body was seen before */
    long long repeatedServed;   /* 200s for a body already served a 200 */
    long long untrackedBodies;  /* bodies not tracked: the set was full */
    fakeSecond series[FAKE_SERIES_LEN]; /* ring indexed by t % LEN */
    fakeBody *bodies;           /* open-addressing set of body hashes */
    size_t bodiesCap;           /* slots in bodies, a power of two */
} fakeStats;

void fakeStatsReset(void);
void fakeStatsFree(void);
void fakeStatsRequest(void);                /* a /v1 request arrived */
void fakeStatsReply(int status);            /* a /v1 response was sent */
void fakeStatsServed(const fakeReq *r);     /* a 200's tokens, r->cls too */
void fakeStatsBody(uint64_t hash);          /* a /v1/messages body seen */
void fakeStatsEnter(struct evhttp_request *req); /* concurrent++ */
void fakeStatsLeave(struct evhttp_request *req); /* concurrent-- */

void fakeStatsHandle(struct evhttp_request *req, void *arg);   /* GET /_stats */
void fakeResetHandle(struct evhttp_request *req, void *arg);   /* POST /_reset */
void fakeConfigHandle(struct evhttp_request *req, void *arg);  /* POST /_config */

/* ---- Model classes ------------------------------------------------------ */

/* What one class was served. Tokens count on 200s, malformed ones too. */
typedef struct fakeClassStats {
    long long requests;         /* /v1/messages requests of this class */
    long long ok;               /* 200s */
    long long r429;             /* 429s */
    long long inputTokens;      /* usage.input_tokens (uncached input) */
    long long cacheWrite;       /* cache_creation_input_tokens */
    long long cacheRead;        /* cache_read_input_tokens */
    long long outputTokens;     /* output_tokens */
} fakeClassStats;

/* A model class: opus, sonnet, haiku, or a model id of no family. With
 * --class-limits it has buckets of its own; otherwise it shares the global
 * ones. Classes are never removed: /_reset only zeroes their counters. */
typedef struct fakeClass {
    char name[FAKE_MODEL_MAX];  /* class name, NUL-terminated */
    int own;                    /* 1: --class-limits gave it its buckets */
    long long rpm, itpm, otpm;  /* its limits when own (0 = unlimited) */
    fakeBucket requests;        /* its own rpm bucket (own only) */
    fakeBucket input;           /* its own itpm bucket (own only) */
    fakeBucket output;          /* its own otpm bucket (own only) */
    fakeClassStats stats;       /* what /_stats reports for it */
} fakeClass;

/* Parse one --class-limits CLASS=RPM,ITPM,OTPM. Returns 0 or -1. */
int fakeClassParse(const char *spec);
/* Fill every own bucket to its limit (start and /_reset). */
void fakeClassFill(double now);
/* Index of model's class, created on first sight. Never fails: past
 * FAKE_CLASSES_MAX classes, new ones share one slot named "_other". */
int fakeClassOf(const char *model);
/* The buckets of class cls (-1: the global ones). */
void fakeClassBuckets(int cls, fakeBucketSet *bs);
/* Refill the buckets of class cls up to now. */
void fakeClassRefill(int cls, double now);
void fakeClassStatsReset(void);
/* Append "classes":{...} to o. */
void fakeClassJson(buf *o);

/* ---- Input tokens and cache breakpoints ---------------------------------- */

struct jsonDoc;                 /* json.h */

/* A block carrying cache_control: the prefix up to and including it. */
typedef struct fakeTokBreak {
    long long tokens;           /* input tokens of the prefix */
    uint64_t hash;              /* of the model and the prefix's content */
    int ttl1h;                  /* 1: "ttl":"1h", 0: 5 minutes */
} fakeTokBreak;

typedef struct fakeTokCount {
    long long total;            /* input tokens of the request, >= 1 */
    int nbreaks;                /* breakpoints (only with cfg.caching) */
    fakeTokBreak breaks[FAKE_TOK_BREAKS]; /* the last ones, in order */
} fakeTokCount;

/* Count the input tokens of the validated request body d for model, with
 * the configured tokenizer, and with cfg.caching its cache breakpoints.
 * The default (chars, no caching) is the historical count: characters of
 * every string value under messages, system and tools, over 4. */
void fakeTokCountDoc(const struct jsonDoc *d, const char *model, fakeTokCount *tc);
/* Tokens of an image of w x h pixels (after the API's downscaling). */
long long fakeTokImage(long long w, long long h);

/* ---- Prompt cache -------------------------------------------------------- */

/* 1 when the prefix with this hash is cached and not expired at now. */
int fakeCacheLive(uint64_t hash, double now);
/* Write or refresh a prefix for ttl seconds from now. */
void fakeCacheStore(uint64_t hash, double ttl, double now);
/* Forget every prefix (/_reset); frees the table. */
void fakeCacheClear(void);
/* Live and expired entries held. */
long long fakeCacheEntries(void);

/* ---- Messages ------------------------------------------------------------ */

void fakeMsgHandle(struct evhttp_request *req, void *arg);     /* /v1/messages */
void fakeCountHandle(struct evhttp_request *req, void *arg);   /* count_tokens */
void fakeNotFoundHandle(struct evhttp_request *req, void *arg);/* anything else */
/* Act on a held request whose deadline came (called by the scheduler). */
void fakeMsgFire(fakeReq *r);
/* Undo what a held request reserved when its client went away first. */
void fakeMsgAbandon(fakeReq *r);
/* Drop the org cap and spend limit state (for /_reset). */
void fakeMsgResetLimits(void);
/* Parse and check one request body (a batch request's params) as
 * /v1/messages would. Returns 0 with r's model, class, tokens (split by
 * the prompt cache with --caching), output tokens and body hash set; or -1
 * with the error's type and message (err). */
int fakeMsgPrepare(const char *body, size_t len, fakeReq *r, const char **type,
                   char *err, size_t errlen);
/* NULL when req carries an acceptable key, else the 401's message (in m,
 * or static). */
const char *fakeAuthError(struct evhttp_request *req, char *m, size_t mlen);
/* The success message r gets, usage included, into fake.out. */
void fakeMsgAnswer(const fakeReq *r);
/* {"type":"error","error":{"type":T,"message":M}} into fake.out. */
void fakeMsgErrorJson(const char *type, const char *msg);

/* ---- Message Batches (batches.c) ---------------------------------------- */

typedef struct fakeBatchStats {
    long long http;             /* requests to the batch endpoints */
    long long status[600];      /* their responses, by status */
    long long created;          /* batches created */
    long long requests;         /* requests in them */
    long long succeeded, errored, canceled, expired;   /* of ended batches */
    long long inputTokens;      /* served by succeeded requests */
    long long outputTokens;
    long long cacheWrite;
    long long cacheRead;
    long long r429;             /* 429s of the batch endpoints */
    long long resultLines;      /* result lines sent (downloads repeat them) */
    long long resultBytes;      /* ... and their bytes */
} fakeBatchStats;

/* /v1/messages/batches and everything under it. */
void fakeBatchHandle(struct evhttp_request *req, void *arg);
/* Count the batches that ended by now. */
void fakeBatchTick(void);
/* Forget every batch and the counters (/_reset). */
void fakeBatchReset(void);
/* Append "batches":{...} (the counters) to o. */
void fakeBatchStatsJson(buf *o);

/* ---- The server ---------------------------------------------------------- */

typedef struct fakeServer {
    fakeConfig cfg;             /* options, some changeable at run time */
    struct event_base *base;    /* the one event loop */
    struct evhttp *http;        /* the HTTP server */
    fakeBucket requests;        /* rpm bucket */
    fakeBucket input;           /* itpm bucket */
    fakeBucket output;          /* otpm bucket */
    uint64_t rng;               /* fault / jitter PRNG state */
    uint64_t idCounter;         /* feeds request and message ids */
    long long orgServed;        /* tokens admitted toward the org cap */
    double orgCapUntil;         /* monotonic end of a tripped cap, 0 = none */
    long long successes;        /* admitted successes, for the spend limit */
    fakeStats stats;            /* what /_stats reports */
    fakeBatchStats batchStats;  /* what /_stats reports of batches */
    fakeClass classes[FAKE_CLASSES_MAX]; /* model classes seen or limited */
    int nclasses;               /* classes used */
    buf out;                    /* scratch for building replies */
} fakeServer;

extern fakeServer fake;

/* ---- Helpers (fakeapi.c) ------------------------------------------------- */

double fakeNow(void);                   /* monotonic seconds */
long long fakeWallMs(void);             /* unix time in milliseconds */
uint64_t fakeRandom(void);              /* next PRNG value */
double fakeRandomUnit(void);            /* uniform in [0,1) */
uint64_t fakeMix(uint64_t x);           /* a 64-bit finalizer */
uint64_t fakeHash(const void *p, size_t len);
/* Write "PREFIX" + 24 base62 characters + NUL into out (>= 29 + prefix). */
void fakeNewId(const char *prefix, char *out, size_t outlen);
/* Send len bytes of body with status and reason. */
void fakeSend(struct evhttp_request *req, int status, const char *reason,
              const char *body, size_t len);
/* The same, the body trickled a byte a second (the p_trickle fault). */
void fakeSendTrickle(struct evhttp_request *req, int status, const char *reason,
                     const char *body, size_t len);

#endif
