/* batch.c — the Batch lane's driver: every worker runs one, and each
 * batch is driven by one worker at a time (batch.lua's take).
 *
 * Data flow (README: The Batch lane). admit.lua puts a batch job's lease
 * into its class's forming batch. Here, on a timer, a worker takes the
 * batch that is due, if any, and does what its state asks, one step at a
 * time, each an HTTP call or a script call:
 *
 *   sealed/submitting  read the items (batch.lua items, pages of
 *                      ITEMS_PAGE), build {"requests":[...]} with custom_id
 *                      NONCE-N for item N (a new nonce each POST), record
 *                      the send (batch.lua sending: when, how many, the
 *                      nonce), POST /v1/messages/batches, record the API's
 *                      id (submitted). A batch taken again in `submitting`
 *                      after a send was recorded (its driver died, or the
 *                      POST's answer was lost) is first looked for in GET
 *                      /v1/messages/batches: created while that POST could
 *                      have been, with as many requests, and no other
 *                      batch's; found, it is adopted, not sent twice (its
 *                      results prove it: lines of another nonce are never
 *                      settled, the adoption is undone).
 *   submitted          GET /v1/messages/batches/ID (cancel first when an
 *                      operator asked); not ended: polled again later
 *                      (10 s, doubling to 5 min).
 *   ended              GET .../results, streamed: lines are gathered into
 *                      chunks of CHUNK_LINES (or CHUNK_BYTES); while a
 *                      chunk is settled the transfer is paused, so memory
 *                      holds one chunk, whatever the results' size. A
 *                      chunk: its items read (lease, raw job, admission
 *                      time, attempt), one settle.lua call carrying a
 *                      record per line (succeeded: ok at the batch price;
 *                      errored: an error, retried when retryable;
 *                      canceled, expired: retried), fenced by the items'
 *                      leases: a line settled twice (a driver that died
 *                      mid-stream, the next one starting over) is refused
 *                      the second time. Then finish: items without a line
 *                      go back to the queue, the batch's keys go.
 *
 * The lane has its own HTTP request (never a sync slot) and its own
 * backoff: a 429 or a failure of a batch endpoint moves that batch's next
 * step later, nothing else waits for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "outcome.h"
#include "rfc3339.h"
#include "wk.h"

#define LANE_TICK_MS   5000         /* look for a due batch at least this often */
#define LANE_IDLE_MS   30000        /* ... or this often while there is none */
#define LANE_OWN_MS    300000       /* a take holds its batch this long (tests:
                                     * LLMFLEET_TEST_BATCH_HOLD_MS) */
#define LANE_RETRY_MS  30000        /* a failed step: the batch is due again then */
#define LANE_429_MS    5000         /* a 429 without retry-after: the lane waits (doubling) */
#define ITEMS_PAGE     500          /* items read per call */
#define CHUNK_LINES    256          /* results lines settled per call */
#define CHUNK_BYTES    (8u << 20)
#define API_TIMEOUT_MS 120000
#define LIST_PAGES     5            /* pages of the batch list looked through */

typedef enum { LANE_IDLE, LANE_TAKE, LANE_ITEMS, LANE_SENDING, LANE_POST, LANE_RECORD,
               LANE_LIST, LANE_CANCEL, LANE_POLL, LANE_POLLED, LANE_STREAM, LANE_FINISH,
               LANE_LATER } laneStep;

/* A results line waiting in the chunk: where its text is, its item. */
typedef struct laneLine {
    size_t at, len;                 /* in the chunk's text */
    long idx;                       /* item number (custom_id NONCE-N), -1 none */
    size_t lease_at, raw_at, raw_len;   /* its item's lease and job in `store` */
    int att;                        /* its attempt number */
    long long latency_ms;           /* claim (admission) to now */
    job job;                        /* parsed from the item's raw job */
    settleRec rec;
} laneLine;

typedef struct batchLane {
    worker *w;
    httpReq http;
    struct event *timer;
    long long tick_at;              /* when it fires (ms, mono) */
    long hold_ms;                   /* a take holds its batch this long */
    long api_timeout_ms;            /* a batch endpoint's call */
    laneStep step;
    int stopped;
    /* the batch taken */
    char bid[64], token[24], state[16], api_id[128], cls[128];
    char nonce[24];                 /* the POST's custom_id prefix (NONCE-N: item N) */
    int fresh, cancel, cancel_sent;
    int list_skip, list_skip0;      /* candidates found another batch's (skipped):
                                     * left on this pass, in all */
    long long n, sent_n, submit_ms;
    /* submission */
    buf body;
    long next_item;                 /* next item number to read */
    int list_pages;
    char list_after[128];
    /* results */
    buf text;                       /* the chunk's lines */
    buf partial;                    /* a line not yet ended */
    laneLine *lines;
    int nlines, caplines, nrecs, settling, stream_done;
    int stream_abort;               /* a chunk could not go: the transfer ends */
    int foreign;                    /* a line of another batch's (not this nonce) */
    buf store;                      /* the chunk's items: leases and raw jobs */
    long long extended;             /* last hold extension (ms, mono) */
    long long settled[5];           /* lines by settle verdict (SETTLED_*) */
} batchLane;

static void laneTick(batchLane *L, long ms);

/* Crash points for the tests (off unless asked): LLMFLEET_TEST_CRASH_AT=
 * batch_posted dies as the POST's answer arrives, before its id is
 * recorded; batch_before_post after a POST is recorded, before it goes;
 * batch_polled as a poll's answer arrives; batch_results after the first
 * chunk of results is settled.
 * Like a SIGKILL: nothing is flushed. */
static void testCrash(batchLane *L, const char *point) {
    const char *at = getenv("LLMFLEET_TEST_CRASH_AT");
    if (!at || strcmp(at, point) != 0) return;
    lfLog(LF_WARN, "event=test_crash point=%s batch=%s", point, L->bid);
    _exit(86);
}
static void laneTake(batchLane *L);
static void itemsRead(batchLane *L);

/* A batch.lua call with n string arguments (rds copies them). */
static int laneScript(batchLane *L, rdsCallback *cb, int n, const char **v) {
    size_t *vl = malloc(sizeof(*vl) * (size_t)n);
    if (!vl) abort();
    for (int i = 0; i < n; i++) vl[i] = strlen(v[i]);
    rdsScriptCall sc = {"batch", &L->w->keys, NULL, n, v, vl};
    int rc = rdsScript(L->w->redis, &sc, cb, L);
    free(vl);
    return rc;
}

/* A step that ends the lane's work on its batch (a `later`, an `unadopt`):
 * the lane looks for the next due batch shortly. */
static void onLater(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    (void)c; (void)r;
    L->step = LANE_IDLE;
    laneTick(L, 200);
}

/* unsent: the step was a POST the API refused (nothing created); hold: a
 * 429, the whole lane (1) or its creates (2) wait (batch.lua later). */
static void laneLaterAs(batchLane *L, long ms, const char *why, int unsent, int hold,
                        int guess) {
    char m[24];
    snprintf(m, sizeof(m), "%ld", ms);
    lfLog(hold ? LF_INFO : LF_WARN, "event=%s batch=%s api_id=%s state=%s reason=%s retry_ms=%ld",
          hold ? "batch_rate_limited" : "batch_step_failed", L->bid, lfQ(L->api_id), L->state,
          lfQ(why), ms);
    const char *hv[] = {"0", "1", "2"};
    const char *v[] = {"later", L->bid, L->token, m, unsent ? "1" : "0", hv[hold],
                       guess ? "1" : "0"};
    L->step = LANE_LATER;
    if (laneScript(L, onLater, 7, v) < 0) onLater(NULL, NULL, L);
}

static void laneLater(batchLane *L, long ms, const char *why) {
    laneLaterAs(L, ms, why, 0, 0, 0);
}

/* A batch endpoint's failure: a 429 holds the lane (a create's: the
 * lane's creates), fleet-wide; else the batch waits. */
static void laneFailed(batchLane *L, const httpReq *req, long ms, const char *why, int post) {
    int r429 = req->status == 429, guess = r429 && req->rl.retry_after_ms <= 0;
    if (guess) ms = LANE_429_MS;
    laneLaterAs(L, ms < 0 ? LANE_RETRY_MS : ms, why, post && r429, r429 ? 1 + post : 0, guess);
}

/* The step's call to the API (path after /v1/messages; body for a POST;
 * sink for a stream); one that cannot start ends the step. */
static void laneHttp(batchLane *L, laneStep step, const char *method, const char *path,
                     const char *body, size_t len, httpSinkProc *sink) {
    L->step = step;
    if (httpStartApi(&L->http, method, path, body, len, sink ? 0 : L->api_timeout_ms, sink) < 0)
        laneLater(L, LANE_RETRY_MS, "the request could not start");
}

/* ---- Taking a due batch ------------------------------------------------ */

static void laneTick(batchLane *L, long ms) {
    if (L->stopped) return;
    evtimer_del(L->timer);
    timerIn(L->timer, ms);
    L->tick_at = monoMs() + ms;
}

static void onLaneTimer(evutil_socket_t fd, short what, void *arg) {
    batchLane *L = arg;
    (void)fd; (void)what;
    if (L->step != LANE_IDLE || L->stopped) return;
    if (!rdsReady(L->w->redis) || !L->w->seq_checked) {
        laneTick(L, 1000);
        return;
    }
    laneTake(L);
}

static void copyEl(char *dst, size_t n, const redisReply *e) {
    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
        snprintf(dst, n, "%.*s", (int)e->len, e->str);
    else if (e->type == REDIS_REPLY_INTEGER)
        snprintf(dst, n, "%lld", e->integer);
    else
        dst[0] = '\0';
}

static long long elNum(const redisReply *e) {
    char t[32];
    copyEl(t, sizeof(t), e);
    return atoll(t);
}

static void startPoll(batchLane *L);
static void startStream(batchLane *L);
static void newSend(batchLane *L);
static void startList(batchLane *L);
static void laneFinish(batchLane *L);

static void onTaken(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    (void)c;
    L->step = LANE_IDLE;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        laneTick(L, LANE_TICK_MS);
        return;
    }
    if (elNum(r->element[0]) == 0) {
        /* None due: look when the next is; with no batch at all, seldom
         * (an idle fleet of 16 workers made 3 calls a second for nothing:
         * a batch this worker forms pokes its own lane, BATCHED). */
        long long next = elNum(r->element[1]);
        laneTick(L, next < 0 ? LANE_IDLE_MS : next > LANE_TICK_MS ? LANE_TICK_MS
                    : next < 50 ? 50 : (long)next);
        return;
    }
    if (r->elements < 15) {
        laneTick(L, LANE_TICK_MS);
        return;
    }
    copyEl(L->bid, sizeof(L->bid), r->element[1]);
    copyEl(L->state, sizeof(L->state), r->element[2]);
    copyEl(L->token, sizeof(L->token), r->element[3]);
    L->fresh = (int)elNum(r->element[4]);
    copyEl(L->cls, sizeof(L->cls), r->element[5]);
    L->n = elNum(r->element[7]);
    copyEl(L->api_id, sizeof(L->api_id), r->element[8]);
    L->submit_ms = elNum(r->element[9]);
    L->sent_n = elNum(r->element[10]);
    copyEl(L->nonce, sizeof(L->nonce), r->element[14]);
    L->cancel = elNum(r->element[12]) == 1;
    L->cancel_sent = 0;
    L->extended = monoMs();
    lfLog(LF_DEBUG, "event=batch_taken batch=%s state=%s n=%lld api_id=%s", L->bid,
          L->state, L->n, lfQ(L->api_id));
    if (strcmp(L->state, "submitting") == 0) {
        if (L->fresh || L->submit_ms <= 0) {     /* no POST went yet */
            newSend(L);
        } else {
            L->list_pages = 0;
            L->list_skip = L->list_skip0 = 0;
            L->list_after[0] = '\0';
            startList(L);
        }
    } else if (strcmp(L->state, "sealed") == 0) {
        laneFinish(L);              /* canceled before it was sent */
    } else if (strcmp(L->state, "submitted") == 0) {
        startPoll(L);
    } else if (strcmp(L->state, "ended") == 0) {
        startStream(L);
    } else {
        laneTick(L, LANE_TICK_MS);
    }
}

static void laneTake(batchLane *L) {
    char own[24];
    snprintf(own, sizeof(own), "%ld", L->hold_ms);
    const char *v[] = {"take", own};
    L->step = LANE_TAKE;
    if (laneScript(L, onTaken, 2, v) < 0) {
        L->step = LANE_IDLE;
        laneTick(L, 1000);
    }
}

/* ---- Submitting ---------------------------------------------------------- */

/* A POST of the batch is built: its items read, under a new nonce: every
 * custom_id is NONCE-N (item N), so results that are not this POST's (an
 * API batch adopted by mistake: another of ours or another client's of the
 * same size, made at the same moment) are known as such, never settled. */
static void newSend(batchLane *L) {
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 12; i++) L->nonce[i] = digits[random() % 36];
    L->nonce[12] = '\0';
    L->next_item = 1;
    L->sent_n = 0;
    bufReset(&L->body);
    itemsRead(L);
}

static void onSending(rds *c, redisReply *r, void *priv);
static void onPosted(httpReq *req, void *priv);

/* Item numbers from..to as arguments of an items call. */
static int itemsArgs(batchLane *L, const char **v, char (*num)[24], long from, long to) {
    int n = 0;
    v[n++] = "items";
    v[n++] = L->bid;
    for (long i = from; i <= to; i++) {
        snprintf(num[n - 2], 24, "%ld", i);
        v[n] = num[n - 2];
        n++;
    }
    return n;
}

static void onItems(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    char err[200];
    (void)c;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 || (r->elements - 1) % 4) {
        laneLater(L, LANE_RETRY_MS, "the batch's items could not be read");
        return;
    }
    for (size_t k = 1; k + 3 < r->elements; k += 4) {
        long idx = L->next_item + (long)(k - 1) / 4;
        const redisReply *raw = r->element[k + 1];
        if (raw->type != REDIS_REPLY_STRING || raw->len == 0) continue;     /* gone */
        job j;
        if (jobParse(&j, raw->str, raw->len, 0, err, sizeof(err)) < 0) continue;
        bufAppendStr(&L->body, L->sent_n ? "," : "{\"requests\":[");
        bufPrintf(&L->body, "{\"custom_id\":\"%s-%ld\",\"params\":", L->nonce, idx);
        bufAppend(&L->body, j.request, j.request_len);
        bufAppendStr(&L->body, "}");
        L->sent_n++;
    }
    L->next_item += (long)(r->elements - 1) / 4;
    if (L->next_item <= L->n) {
        itemsRead(L);
        return;
    }
    if (L->sent_n == 0) {
        laneFinish(L);              /* every item gone: nothing to send */
        return;
    }
    bufAppendStr(&L->body, "]}");
    char n[24], own[24];
    snprintf(n, sizeof(n), "%lld", L->sent_n);
    snprintf(own, sizeof(own), "%ld", L->hold_ms);
    const char *v[] = {"sending", L->bid, L->token, n, L->nonce, own};
    L->step = LANE_SENDING;
    if (laneScript(L, onSending, 6, v) < 0) laneLater(L, LANE_RETRY_MS, "Redis away");
}

static void itemsRead(batchLane *L) {
    const char *v[2 + ITEMS_PAGE];
    char num[ITEMS_PAGE][24];
    long to = L->next_item + ITEMS_PAGE - 1;
    if (to > L->n) to = L->n;
    int n = itemsArgs(L, v, num, L->next_item, to);
    L->step = LANE_ITEMS;
    if (laneScript(L, onItems, n, v) < 0) {
        L->step = LANE_IDLE;
        laneTick(L, 1000);
    }
}

static void onSending(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    (void)c;
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
        L->step = LANE_IDLE;        /* fenced (or unknown): someone else has it */
        bufReset(&L->body);
        laneTick(L, 1000);
        return;
    }
    L->submit_ms = r->integer;
    testCrash(L, "batch_before_post");
    lfLog(LF_INFO, "event=batch_submit batch=%s class=%s requests=%lld bytes=%zu", L->bid,
          lfQ(L->cls), L->sent_n, L->body.len);
    laneHttp(L, LANE_POST, "POST", "/batches", L->body.p, L->body.len, NULL);
}

static void onRecorded(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    (void)c;
    L->step = LANE_IDLE;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        lfLog(LF_INFO, "event=batch_submitted batch=%s api_id=%s requests=%lld", L->bid,
              lfQ(L->api_id), L->sent_n);
    laneTick(L, 50);
}

static void recordSubmitted(batchLane *L, rdsCallback *cb) {
    const char *v[] = {"submitted", L->bid, L->token, L->api_id};
    L->step = LANE_RECORD;
    if (laneScript(L, cb, 4, v) < 0) laneLater(L, LANE_RETRY_MS, "Redis away");
}

/* A batch endpoint's failure: the message, and how long to wait. */
static long apiFailure(const httpReq *req, char *why, size_t n) {
    outcome o;
    outcomeClassify(&o, req->result, req->errbuf, CUT_NONE, req->status, req->body.p,
                    req->body.len, &req->rl);
    snprintf(why, n, "HTTP %ld %s: %s", req->status, o.error_type, o.error_message);
    if (req->status == 429 || req->status >= 500 || req->status == 0)
        return o.retry_after_ms > 0 ? (long)o.retry_after_ms : LANE_RETRY_MS;
    return -1;
}

static void onPosted(httpReq *req, void *priv) {
    batchLane *L = priv;
    char why[800];
    bufFree(&L->body);
    if (req->result == CURLE_OK && req->status == 200) {
        jsonDoc d;
        char err[64];
        L->api_id[0] = '\0';
        if (jsonParse(&d, req->body.p, req->body.len, 4096, 8, err, sizeof(err)) == 0) {
            jsonStr(&d, jsonGet(&d, 0, "id"), L->api_id, sizeof(L->api_id));
            jsonFree(&d);
        }
        if (L->api_id[0]) {
            testCrash(L, "batch_posted");
            recordSubmitted(L, onRecorded);
            return;
        }
        laneLater(L, LANE_RETRY_MS, "the API's answer has no batch id");
        return;
    }
    long ms = apiFailure(req, why, sizeof(why));
    /* Refused whole (not a 429 or 5xx): said loudly; tried again later,
     * since a refusal of the whole batch (a limit changed, an API outage
     * answering 4xx) is the API's state, not one job's. */
    if (ms < 0) {
        lfLog(LF_ERROR, "event=batch_refused batch=%s error=%s", L->bid, lfQ(why));
        ms = LANE_RETRY_MS * 4;
    }
    laneFailed(L, req, ms, why, 1);
}

/* ---- Finding a batch that may have been created ------------------------- */

static void onListed(httpReq *req, void *priv);
static void onAdopted(rds *c, redisReply *r, void *priv);

/* Extend the take's hold (fire and forget: a stale token changes nothing). */
static void onHeld(rds *c, redisReply *r, void *priv);
static void laneHold(batchLane *L) {
    char own[24];
    snprintf(own, sizeof(own), "%ld", L->hold_ms);
    const char *hv[] = {"later", L->bid, L->token, own};
    laneScript(L, onHeld, 4, hv);
    L->extended = monoMs();
}

static void startList(batchLane *L) {
    char path[200];
    laneHold(L);                    /* (each page within the hold) */
    if (L->list_after[0]) snprintf(path, sizeof(path), "/batches?limit=100&after_id=%s", L->list_after);
    else snprintf(path, sizeof(path), "/batches?limit=100");
    laneHttp(L, LANE_LIST, "GET", path, NULL, 0, NULL);
}

/* Candidates, newest first, in the list answer: created since the send
 * was recorded (a minute's clock skew allowed), with sent_n requests. */
static int listMatch(batchLane *L, jsonDoc *d, int data, char *out, size_t outn, int *older) {
    int found = 0;
    *older = 0;
    for (int k = 0, e = data + 1; k < d->tok[data].size; k++, e = jsonSkip(d, e)) {
        char created[48], id[128];
        long long t = -1, total = 0, v;
        if (jsonStr(d, jsonGet(d, e, "id"), id, sizeof(id)) <= 0) continue;
        int cn = jsonStr(d, jsonGet(d, e, "created_at"), created, sizeof(created));
        if (cn <= 0 || rfc3339Parse(created, (size_t)cn, &t) < 0) continue;
        snprintf(L->list_after, sizeof(L->list_after), "%s", id);
        if (t < L->submit_ms - 60000) {
            *older = 1;
            continue;
        }
        if (t > L->submit_ms + L->api_timeout_ms + 60000) continue;  /* after our POST ended */
        int rc = jsonGet(d, e, "request_counts");
        static const char *const cnt[] = {"processing", "succeeded", "errored", "canceled",
                                          "expired"};
        for (int i = 0; i < 5; i++)
            if (jsonInt(d, jsonGet(d, rc, cnt[i]), &v) == 0) total += v;
        if (total != L->sent_n) continue;
        /* (the candidates refused as another batch's are skipped, over
         * every page: list_skip counts down as they are passed) */
        if (found++ == L->list_skip) {
            snprintf(out, outn, "%s", id);
            return 1;
        }
    }
    L->list_skip -= found;
    return 0;
}

static void onListed(httpReq *req, void *priv) {
    batchLane *L = priv;
    char why[800];
    if (req->result != CURLE_OK || req->status != 200) {
        laneFailed(L, req, apiFailure(req, why, sizeof(why)), why, 0);
        return;
    }
    jsonDoc d;
    char err[64];
    int older = 0, more = 0, hit = 0;
    if (jsonParse(&d, req->body.p, req->body.len, 1 << 20, 16, err, sizeof(err)) == 0) {
        int data = jsonGet(&d, 0, "data");
        if (data >= 0 && d.tok[data].type == JSMN_ARRAY)
            hit = listMatch(L, &d, data, L->api_id, sizeof(L->api_id), &older);
        int hm = jsonGet(&d, 0, "has_more");
        more = hm >= 0 && d.tok[hm].type == JSMN_PRIMITIVE && req->body.p[d.tok[hm].start] == 't';
        jsonFree(&d);
    }
    if (hit) {
        L->list_skip = L->list_skip0;   /* (onAdopted counts one more on a refusal) */
        lfLog(LF_INFO, "event=batch_found_at_api batch=%s api_id=%s action=adopted", L->bid,
              lfQ(L->api_id));
        recordSubmitted(L, onAdopted);
        return;
    }
    if (more && !older && ++L->list_pages < LIST_PAGES) {
        startList(L);
        return;
    }
    /* Not created: sent (again), unless an operator canceled it. */
    if (L->cancel) {
        laneFinish(L);
        return;
    }
    lfLog(LF_INFO, "event=batch_not_at_api batch=%s action=send", L->bid);
    newSend(L);
}

static void onAdopted(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        /* Another batch's (ours, or one found foreign): the next candidate. */
        L->list_skip = ++L->list_skip0;
        L->list_pages = 0;
        L->list_after[0] = '\0';
        startList(L);
        return;
    }
    onRecorded(c, r, priv);
}

/* ---- Polling ------------------------------------------------------------ */

static void laneFinish(batchLane *L);

/* The API does not know the batch (deleted, or another workspace's key):
 * its jobs without a result go back to the queue. */
static void batchGone(batchLane *L, const httpReq *req) {
    char why[800];
    apiFailure(req, why, sizeof(why));
    lfLog(LF_ERROR, "event=batch_gone_at_api batch=%s api_id=%s error=%s action=jobs_requeued",
          L->bid, lfQ(L->api_id), lfQ(why));
    laneFinish(L);
}

static void onPolled(httpReq *req, void *priv);

static void startPoll(batchLane *L) {
    char path[200];
    if (L->cancel && !L->cancel_sent) {
        snprintf(path, sizeof(path), "/batches/%s/cancel", L->api_id);
        L->cancel_sent = 1;
        lfLog(LF_INFO, "event=batch_cancel batch=%s api_id=%s", L->bid, lfQ(L->api_id));
        laneHttp(L, LANE_CANCEL, "POST", path, "", 0, NULL);
        return;
    }
    snprintf(path, sizeof(path), "/batches/%s", L->api_id);
    laneHttp(L, LANE_POLL, "GET", path, NULL, 0, NULL);
}

static void onPollRecorded(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    (void)c;
    L->step = LANE_IDLE;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        snprintf(L->state, sizeof(L->state), "ended");
        startStream(L);
        return;
    }
    laneTick(L, 50);
}

static void onPolled(httpReq *req, void *priv) {
    batchLane *L = priv;
    char why[800];
    if (L->step == LANE_CANCEL) {
        if (req->result != CURLE_OK || req->status != 200) {
            apiFailure(req, why, sizeof(why));
            lfLog(LF_WARN, "event=batch_cancel_failed batch=%s error=%s", L->bid, lfQ(why));
        }
        startPoll(L);
        return;
    }
    if (req->status == 404) {
        batchGone(L, req);
        return;
    }
    if (req->result != CURLE_OK || req->status != 200) {
        laneFailed(L, req, apiFailure(req, why, sizeof(why)), why, 0);
        return;
    }
    jsonDoc d;
    char err[64], status[32] = "", counts[200] = "";
    if (jsonParse(&d, req->body.p, req->body.len, 4096, 8, err, sizeof(err)) == 0) {
        jsonStr(&d, jsonGet(&d, 0, "processing_status"), status, sizeof(status));
        int rc = jsonGet(&d, 0, "request_counts");
        static const char *const cnt[] = {"processing", "succeeded", "errored", "canceled",
                                          "expired"};
        size_t at = 0;
        for (int i = 0; i < 5; i++) {
            long long v = 0;
            jsonInt(&d, jsonGet(&d, rc, cnt[i]), &v);
            at += (size_t)snprintf(counts + at, sizeof(counts) - at, "%s%lld", i ? "," : "", v);
        }
        jsonFree(&d);
    }
    if (!status[0]) {
        laneLater(L, LANE_RETRY_MS, "the batch's answer has no processing_status");
        return;
    }
    testCrash(L, "batch_polled");
    const char *v[] = {"polled", L->bid, L->token, status, counts};
    L->step = LANE_POLLED;
    if (laneScript(L, onPollRecorded, 5, v) < 0) laneLater(L, LANE_RETRY_MS, "Redis away");
}

/* ---- Results -------------------------------------------------------------- */

static size_t onResultBytes(httpReq *req, const char *p, size_t len, void *priv);
static void chunkSend(batchLane *L);
static void streamTail(batchLane *L);
static void onStreamAbort(evutil_socket_t fd, short what, void *arg);
static void onChunkSettled(rds *c, redisReply *r, void *priv);

static void chunkReset(batchLane *L) {
    for (int i = 0; i < L->nlines; i++) recFree(&L->lines[i].rec);
    L->nlines = 0;
    L->nrecs = 0;
    bufReset(&L->text);
    bufReset(&L->store);
}

static void startStream(batchLane *L) {
    char path[200];
    snprintf(path, sizeof(path), "/batches/%s/results", L->api_id);
    chunkReset(L);
    bufReset(&L->partial);
    bufReset(&L->http.body);
    L->settling = L->stream_done = L->stream_abort = L->foreign = 0;
    memset(L->settled, 0, sizeof(L->settled));
    lfLog(LF_INFO, "event=batch_results batch=%s api_id=%s", L->bid, lfQ(L->api_id));
    laneHttp(L, LANE_STREAM, "GET", path, NULL, 0, onResultBytes);
}

/* One complete line into the chunk (blank lines are skipped). */
static void chunkLine(batchLane *L, const char *p, size_t n) {
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ')) n--;
    if (!n) return;
    if (L->nlines == L->caplines) {
        L->caplines = L->caplines ? 2 * L->caplines : CHUNK_LINES + 64;
        L->lines = realloc(L->lines, sizeof(*L->lines) * (size_t)L->caplines);
        if (!L->lines) abort();
        memset(L->lines + L->nlines, 0, sizeof(*L->lines) * (size_t)(L->caplines - L->nlines));
    }
    laneLine *ln = &L->lines[L->nlines++];
    ln->at = L->text.len;
    ln->len = n;
    ln->idx = -1;
    bufAppend(&L->text, p, n);
}

static int chunkFull(const batchLane *L) {
    return L->nlines >= CHUNK_LINES || L->text.len >= CHUNK_BYTES;
}

/* The results, as they come: whole lines into the chunk; while a chunk is
 * being settled the transfer waits (paused), so at most one chunk and one
 * write of libcurl's are held. */
static size_t onResultBytes(httpReq *req, const char *p, size_t len, void *priv) {
    batchLane *L = priv;
    if (L->stream_abort) return 0;  /* (libcurl ends the transfer: a write error) */
    if (L->settling) return CURL_WRITEFUNC_PAUSE;
    if (req->status == 0) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    if (req->status != 200) {
        if (req->body.len < 65536) bufAppend(&req->body, p, len);   /* the error's body */
        return len;
    }
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\n') continue;
        if (L->partial.len) {
            bufAppend(&L->partial, p + start, i - start);
            chunkLine(L, L->partial.p, L->partial.len);
            bufReset(&L->partial);
        } else {
            chunkLine(L, p + start, i - start);
        }
        start = i + 1;
    }
    bufAppend(&L->partial, p + start, len - start);
    if (chunkFull(L)) chunkSend(L);
    return len;
}

/* The line's custom_id (NONCE-N) as an item number; -1 unreadable, -2
 * another nonce's: a line of another POST's batch. */
static long lineItem(const batchLane *L, const char *p, size_t n) {
    jsonDoc d;
    char err[64], cid[80];
    long idx = -1;
    size_t k = strlen(L->nonce);
    if (jsonParse(&d, p, n, JOB_MAX_JSON_TOKENS, 64, err, sizeof(err)) < 0) return -1;
    if (jsonStr(&d, jsonGet(&d, 0, "custom_id"), cid, sizeof(cid)) > 0) {
        if (strncmp(cid, L->nonce, k) != 0 || cid[k] != '-') {
            idx = -2;
        } else {
            char *end;
            long v = strtol(cid + k + 1, &end, 10);
            if (!*end && v >= 1) idx = v;
        }
    }
    jsonFree(&d);
    return idx;
}

/* Error types of an errored request worth another attempt. */
static int batchRetryable(const char *type) {
    return strcmp(type, "api_error") == 0 || strcmp(type, "overloaded_error") == 0 ||
           strcmp(type, "rate_limit_error") == 0 || strcmp(type, "timeout_error") == 0;
}

/* Line ln's record, its item read (ln->job parsed). */
static int lineRecord(batchLane *L, laneLine *ln) {
    worker *w = L->w;
    char err[64];
    jsonDoc d;
    char *text = L->text.p + ln->at;
    if (jsonParse(&d, text, ln->len, JOB_MAX_JSON_TOKENS, 64, err, sizeof(err)) < 0) return -1;
    int res = jsonGet(&d, 0, "result");
    char type[32] = "";
    jsonStr(&d, jsonGet(&d, res, "type"), type, sizeof(type));
    recCtx c = {w->name, ln->att, ln->latency_ms, L->api_id};
    outcome o;
    rlHeaders rl;
    rlInit(&rl);
    const char *p;
    size_t n;
    int m = jsonGet(&d, res, strcmp(type, "errored") == 0 ? "error" : "message");
    if (strcmp(type, "succeeded") == 0) {
        jsonSpan(&d, m, &p, &n);
        outcomeClassify(&o, CURLE_OK, "", CUT_NONE, 200, p, n, NULL);
        if (m >= 0 && o.ok) {
            /* (p is in the chunk's text, which outlives the settle call) */
            if (maskKey((char *)p, n, w->cfg->api_key) > 0)
                lfLog(LF_WARN, "event=key_in_response id=%s action=masked", lfQ(ln->job.id));
            long long cost = recOk(&ln->rec, &ln->job, p, n, &o, &c);
            recAttempt(&ln->rec, &o, &rl, cost < 0 ? 0 : cost, &c, random() % 1000000);
            jsonFree(&d);
            return 0;
        }
        recError(&ln->rec, &ln->job, "bad_response", "the batch result's message could "
                 "not be read", 0, &c);
    } else if (strcmp(type, "errored") == 0 && m >= 0) {
        jsonSpan(&d, m, &p, &n);
        outcomeClassify(&o, CURLE_OK, "", CUT_NONE, 400, p, n, NULL);
        outcomeScrub(&o, w->cfg->api_key);
        recError(&ln->rec, &ln->job, o.error_type, o.error_message, 0, &c);
        if (batchRetryable(o.error_type)) ln->rec.op = OP_FAILED;
    } else {
        char t[48], m[160];
        int known = strcmp(type, "canceled") == 0 || strcmp(type, "expired") == 0;
        snprintf(t, sizeof(t), "batch_%s", known ? type : "unknown_result");
        snprintf(m, sizeof(m), "the batch %s before this request ran", known ? type :
                 "reported a result type llmfleet does not know");
        recError(&ln->rec, &ln->job, t, m, 0, &c);
        ln->rec.op = OP_FAILED;
    }
    memset(&o, 0, sizeof(o));
    o.retry_after_ms = -1;
    recAttempt(&ln->rec, &o, &rl, 0, &c, random() % 1000000);
    /* Not charged (the API bills succeeded requests only): settle gives
     * the reservation back. */
    snprintf(ln->rec.att[ATT_SENT], sizeof(ln->rec.att[ATT_SENT]), "0");
    jsonFree(&d);
    return 0;
}

static void onChunkItems(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    char err[300];
    (void)c;
    int n = 0;
    for (int i = 0; i < L->nlines; i++) n += L->lines[i].idx > 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 1 + 4 * (size_t)n) {
        httpCancel(&L->http);
        laneLater(L, LANE_RETRY_MS, "the batch's items could not be read");
        return;
    }
    /* The reply goes when this returns: what the records need is copied. */
    long long now = elNum(r->element[0]);
    int k = 0;
    for (int i = 0; i < L->nlines; i++) {
        laneLine *ln = &L->lines[i];
        if (ln->idx <= 0) continue;
        const redisReply *lid = r->element[1 + 4 * k], *raw = r->element[2 + 4 * k];
        long long t = elNum(r->element[3 + 4 * k]);
        ln->att = (int)elNum(r->element[4 + 4 * k]);
        k++;
        if (lid->type != REDIS_REPLY_STRING || raw->type != REDIS_REPLY_STRING || raw->len == 0) {
            ln->idx = -1;           /* settled before, or gone */
            L->settled[SETTLED_LOST]++;
            continue;
        }
        ln->latency_ms = t > 0 && now > t ? now - t : 0;
        ln->lease_at = L->store.len;
        bufAppend(&L->store, lid->str, lid->len);
        bufAppend(&L->store, "", 1);
        ln->raw_at = L->store.len;
        ln->raw_len = raw->len;
        bufAppend(&L->store, raw->str, raw->len);
    }
    settleItem *items = malloc(sizeof(*items) * (size_t)(L->nlines + 1));
    if (!items) abort();
    int m = 0;
    for (int i = 0; i < L->nlines; i++) {
        laneLine *ln = &L->lines[i];
        if (ln->idx <= 0) continue;
        if (jobParse(&ln->job, L->store.p + ln->raw_at, ln->raw_len, 0, err, sizeof(err)) < 0 ||
            lineRecord(L, ln) < 0) {
            lfLog(LF_WARN, "event=batch_result_unreadable batch=%s item=%ld", L->bid, ln->idx);
            ln->idx = -1;
            continue;
        }
        items[m++] = (settleItem){L->store.p + ln->lease_at, ln->job.id, &ln->rec,
                                  ln->job.model, 0, NULL};
    }
    L->nrecs = m;
    if (m == 0) {
        free(items);
        onChunkSettled(NULL, NULL, L);
        return;
    }
    settleHead h = {L->w->cfg->results_maxlen, 0, L->w->cfg->lease_ms, "",
                    (long long)L->w->cfg->max_job_bytes, NULL};
    lfArgs a;
    argsInit(&a, settleArgc(items, m), 8 + 2 * m);
    settleArgs(&a, &h, items, m);
    rdsScriptCall sc = scriptCall(L->w, "settle", NULL, &a);
    if (rdsScript(L->w->redis, &sc, onChunkSettled, L) < 0) {
        httpCancel(&L->http);
        laneLater(L, LANE_RETRY_MS, "Redis away");
    }
    argsFree(&a);
    free(items);
}

/* The chunk's lines to their items (custom_id), then their items read. */
static void chunkSend(batchLane *L) {
    /* (a chunk may pass CHUNK_LINES by the lines of libcurl's last write) */
    size_t cap = (size_t)L->nlines + 2;
    const char **v = malloc(sizeof(*v) * cap);
    char (*num)[24] = malloc(24 * cap);
    int n = 0;
    if (!v || !num) abort();
    v[n++] = "items";
    v[n++] = L->bid;
    L->settling = 1;
    for (int i = 0; i < L->nlines; i++) {
        laneLine *ln = &L->lines[i];
        ln->idx = lineItem(L, L->text.p + ln->at, ln->len);
        if (ln->idx == -2) {
            L->foreign = 1;         /* none of this batch is settled */
            break;
        }
        if (ln->idx <= 0 || ln->idx > L->n) {
            lfLog(LF_WARN, "event=batch_result_unknown batch=%s reason=%s", L->bid,
                  ln->idx <= 0 ? "no_custom_id" : "custom_id_out_of_range");
            ln->idx = -1;
            continue;
        }
        snprintf(num[n], 24, "%ld", ln->idx);
        v[n] = num[n];
        n++;
    }
    int rc = 0;
    if (n > 2 && !L->foreign) rc = laneScript(L, onChunkItems, n, v);
    free(num);
    free(v);
    if (L->foreign || rc < 0) {
        /* The transfer ends (here maybe inside libcurl's write callback,
         * where it cannot be removed: the callback refuses the next bytes,
         * and the step ends from the loop). */
        chunkReset(L);
        L->settling = 0;
        L->stream_abort = 1;
        struct timeval tv = {0, 0};
        event_base_once(L->w->base, -1, EV_TIMEOUT, onStreamAbort, L, &tv);
    } else if (n == 2) {
        onChunkSettled(NULL, NULL, L);
    }
}

static void onHeld(rds *c, redisReply *r, void *priv) { (void)c; (void)r; (void)priv; }

/* A stream ended early (from the loop: never inside a libcurl callback):
 * a chunk that could not go (Redis away), or lines of another POST's
 * batch: that API batch was adopted by mistake; it is marked foreign and
 * the batch looks for its own again (or is sent). */
static void onStreamAbort(evutil_socket_t fd, short what, void *arg) {
    batchLane *L = arg;
    (void)fd; (void)what;
    if (L->stopped || L->step != LANE_STREAM) return;
    if (L->http.active) httpCancel(&L->http);
    L->stream_abort = 0;
    if (!L->foreign) {
        laneLater(L, LANE_RETRY_MS, "Redis away");
        return;
    }
    L->foreign = 0;
    lfLog(LF_ERROR, "event=batch_foreign_results batch=%s api_id=%s action=unadopted "
          "hint=\"another batch of the same size was made at the API at the same moment\"",
          L->bid, lfQ(L->api_id));
    const char *v[] = {"unadopt", L->bid, L->token};
    L->step = LANE_LATER;
    if (laneScript(L, onLater, 3, v) < 0) onLater(NULL, NULL, L);
}

/* The chunk is settled (r: the verdicts; NULL: nothing to settle): the
 * stream goes on, or, at its end, the batch is finished. */
static void onChunkSettled(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    (void)c;
    if (L->nrecs > 0) {
        settleVerdict *v = malloc(sizeof(*v) * (size_t)L->nrecs);
        const redisReply *claimed;
        char err[200];
        if (!v) abort();
        if (settleParse(r, L->nrecs, v, &claimed, err, sizeof(err)) < 0) {
            free(v);
            chunkReset(L);
            L->settling = 0;
            httpCancel(&L->http);
            laneLater(L, LANE_RETRY_MS, "a settle of the batch's results failed");
            return;
        }
        for (int i = 0; i < L->nrecs; i++)
            if (v[i] >= 1 && v[i] <= 4) L->settled[v[i]]++;
        free(v);
        L->w->redis_oks++;
        testCrash(L, "batch_results");
    }
    chunkReset(L);
    L->settling = 0;
    if (monoMs() - L->extended > L->hold_ms / 4) {
        /* A long stream: the hold is renewed, nobody else starts over. */
        laneHold(L);
    }
    if (L->stream_done) streamTail(L);
    else httpResume(&L->http);
}

/* The stream is over and no chunk is settling: what is left (a last line
 * without its newline, a chunk not full) goes, then the batch finishes. */
static void streamTail(batchLane *L) {
    if (L->partial.len) {
        chunkLine(L, L->partial.p, L->partial.len);
        bufReset(&L->partial);
    }
    if (L->nlines) chunkSend(L);
    else laneFinish(L);
}

static void onStreamDone(batchLane *L, httpReq *req) {
    char why[800];
    if (L->stream_abort) return;    /* (onStreamAbort ends the step) */
    if (req->status == 404) {
        batchGone(L, req);
        return;
    }
    if (req->result != CURLE_OK || req->status != 200) {
        chunkReset(L);
        L->settling = 0;
        laneFailed(L, req, apiFailure(req, why, sizeof(why)), why, 0);
        return;
    }
    L->stream_done = 1;
    if (!L->settling) streamTail(L);    /* (else onChunkSettled goes on) */
}

/* ---- Finish ----------------------------------------------------------------- */

static void onFinished(rds *c, redisReply *r, void *priv) {
    batchLane *L = priv;
    if (L->stopped) return;         /* (teardown: Redis is gone) */
    (void)c;
    L->step = LANE_IDLE;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
        lfLog(LF_INFO, "event=batch_done batch=%s api_id=%s results=%lld retries=%lld "
              "already_settled=%lld requeued=%lld", L->bid, lfQ(L->api_id),
              L->settled[SETTLED_DONE], L->settled[SETTLED_RETRY],
              L->settled[SETTLED_DUP] + L->settled[SETTLED_LOST], r->integer);
    laneTick(L, 50);
}

static void laneFinish(batchLane *L) {
    const char *v[] = {"finish", L->bid, L->token};
    L->step = LANE_FINISH;
    if (laneScript(L, onFinished, 3, v) < 0) {
        L->step = LANE_IDLE;
        laneTick(L, 1000);
    }
}

/* ---- The lane's HTTP request --------------------------------------------- */

static void onLaneHttp(httpReq *req, void *priv) {
    batchLane *L = priv;
    switch (L->step) {
    case LANE_POST: onPosted(req, L); break;
    case LANE_LIST: onListed(req, L); break;
    case LANE_CANCEL: case LANE_POLL: onPolled(req, L); break;
    case LANE_STREAM: onStreamDone(L, req); break;
    default: break;
    }
}

void batchStart(worker *w) {
    batchLane *L = calloc(1, sizeof(*L));
    if (!L) abort();
    L->w = w;
    w->lane = L;
    httpReqInit(&w->http, &L->http, onLaneHttp, L);
    L->timer = evtimer_new(w->base, onLaneTimer, L);
    const char *t = getenv("LLMFLEET_TEST_BATCH_HOLD_MS");
    L->hold_ms = t && atol(t) >= 1000 ? atol(t) : LANE_OWN_MS;
    /* A call ends well within the hold: nobody takes the batch while a
     * POST of it may still be on its way. */
    L->api_timeout_ms = L->hold_ms / 2 < API_TIMEOUT_MS ? L->hold_ms / 2 : API_TIMEOUT_MS;
    laneTick(L, 1000);
}

/* Stop: no new step; a request in flight is cut (the batch is due again
 * when its hold passes: a POST cut is looked for in the API's list). */
void batchStop(worker *w) {
    batchLane *L = w->lane;
    if (!L) return;
    L->stopped = 1;
    evtimer_del(L->timer);
    if (L->http.active) {
        httpCancel(&L->http);
        L->step = LANE_IDLE;
    }
}

void batchFree(worker *w) {
    batchLane *L = w->lane;
    if (!L) return;
    batchStop(w);
    chunkReset(L);
    free(L->lines);
    bufFree(&L->text);
    bufFree(&L->store);
    bufFree(&L->partial);
    bufFree(&L->body);
    httpReqFree(&L->http);
    event_free(L->timer);
    free(L);
    w->lane = NULL;
}

void batchPoke(worker *w, long long ms) {
    batchLane *L = w->lane;
    if (!L || L->step != LANE_IDLE || L->stopped) return;
    if (ms < 0) ms = 0;
    if (!evtimer_pending(L->timer, NULL) || L->tick_at > monoMs() + ms + 20)
        laneTick(L, (long)ms + 10);
}

int batchBusy(worker *w) {
    batchLane *L = w->lane;
    return L && L->step != LANE_IDLE && !L->stopped;
}
