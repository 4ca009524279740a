/* cli.c — submit, results and status (cli.h).
 *
 * These run on an operator's terminal or in a producer's script, so they
 * use a blocking Redis connection and plain stdio. They never change a
 * lease or a result: the only writes are LPUSHes of validated jobs. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "job.h"
#include "keys.h"
#include "opt.h"
#include "rds.h"

#define PUSH_CHUNK 500              /* jobs per LPUSH */
#define MAX_REPORTED 20             /* invalid lines listed before "...more" */

static double nowSec(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int cliConnectRc = 2;

redisContext *cliConnect(const char *cmd, const cliCommon *cc, keySet *ks) {
    rurl url;
    char err[300];
    cliConnectRc = 2;                   /* configuration, until it parses */
    if (keysInit(ks, cc->fleet) < 0) {
        fprintf(stderr, "llmfleet %s: bad fleet name \"%s\"\n", cmd, cc->fleet);
        return NULL;
    }
    if (rdsResolveUrl(cc->redis_url, &url, err, sizeof(err)) < 0) {
        fprintf(stderr, "llmfleet %s: %s\n", cmd, err);
        return NULL;
    }
    cliConnectRc = 1;                   /* from here: Redis is unreachable */
    redisContext *rc = rdsConnectFleet(&url, ks, err, sizeof(err));
    memset(&url, 0, sizeof(url));
    if (!rc) fprintf(stderr, "llmfleet %s: %s\n", cmd, err);
    return rc;
}

/* ---- A set of strings (job ids) --------------------------------------- */

typedef struct strSet {
    char **slot;
    size_t cap, n;
} strSet;

static unsigned long long hashStr(const char *s) {
    unsigned long long h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

/* Add s; returns 1 when added, 0 when it was there. Copies s. */
static int setAdd(strSet *set, const char *s) {
    if ((set->n + 1) * 2 > set->cap) {
        strSet bigger = {calloc(set->cap ? set->cap * 2 : 1024, sizeof(char *)),
                         set->cap ? set->cap * 2 : 1024, 0};
        if (!bigger.slot) abort();
        for (size_t i = 0; i < set->cap; i++) {
            if (!set->slot[i]) continue;
            size_t j = hashStr(set->slot[i]) & (bigger.cap - 1);
            while (bigger.slot[j]) j = (j + 1) & (bigger.cap - 1);
            bigger.slot[j] = set->slot[i];
            bigger.n++;
        }
        free(set->slot);
        *set = bigger;
    }
    size_t j = hashStr(s) & (set->cap - 1);
    while (set->slot[j]) {
        if (strcmp(set->slot[j], s) == 0) return 0;
        j = (j + 1) & (set->cap - 1);
    }
    set->slot[j] = strdup(s);
    if (!set->slot[j]) abort();
    set->n++;
    return 1;
}

/* 1 when s is in the set. */
static int setHas(const strSet *set, const char *s) {
    if (!set->cap) return 0;
    size_t j = hashStr(s) & (set->cap - 1);
    while (set->slot[j]) {
        if (strcmp(set->slot[j], s) == 0) return 1;
        j = (j + 1) & (set->cap - 1);
    }
    return 0;
}

static void setFree(strSet *set) {
    for (size_t i = 0; i < set->cap; i++) free(set->slot[i]);
    free(set->slot);
    memset(set, 0, sizeof(*set));
}

/* ---- submit ----------------------------------------------------------- */

typedef struct line {
    char *p;
    size_t len;
    int lineno;
    char id[JOB_ID_MAX + 1];
} line;

static int readAll(FILE *f, buf *b) {
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) bufAppend(b, chunk, n);
    return ferror(f) ? -1 : 0;
}

/* Why nothing is coming, when the fleet can tell: no live worker, a pause,
 * the spend cap. Empty when none of these. */
static void stallHint(redisContext *rc, const keySet *ks, char *out, size_t len) {
    out[0] = '\0';
    redisReply *t = redisCommand(rc, "TIME");
    if (!t || t->type != REDIS_REPLY_ARRAY || t->elements != 2) {
        if (t) freeReplyObject(t);
        return;
    }
    long long now = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    freeReplyObject(t);
    redisReply *w = redisCommand(rc, "ZCOUNT %s (%lld +inf", ks->name[KEY_WORKERS], now);
    redisReply *s = redisCommand(rc, "HMGET %s pause_until pause_reason budget_cap",
                                 ks->name[KEY_STATE]);
    if (w && w->type == REDIS_REPLY_INTEGER && w->integer == 0)
        snprintf(out, len, "no worker is alive in this fleet (start one: llmfleet worker)");
    else if (s && s->type == REDIS_REPLY_ARRAY && s->elements == 3 &&
             s->element[0]->type == REDIS_REPLY_STRING && atoll(s->element[0]->str) > now)
        snprintf(out, len, "the fleet is paused: %.200s",
                 s->element[1]->type == REDIS_REPLY_STRING ? s->element[1]->str : "");
    else if (s && s->type == REDIS_REPLY_ARRAY && s->elements == 3 &&
             s->element[2]->type == REDIS_REPLY_STRING)
        snprintf(out, len, "the fleet is stopped at its spend cap (max_spend_usd)");
    if (w) freeReplyObject(w);
    if (s) freeReplyObject(s);
}

/* Stream ids "MS-SEQ" in order: <0, 0, >0. */
static int streamIdCmp(const char *a, const char *b) {
    unsigned long long am = strtoull(a, NULL, 10), bm = strtoull(b, NULL, 10);
    if (am != bm) return am < bm ? -1 : 1;
    const char *ad = strchr(a, '-'), *bd = strchr(b, '-');
    unsigned long long as = ad ? strtoull(ad + 1, NULL, 10) : 0, bs = bd ? strtoull(bd + 1, NULL, 10) : 0;
    return as < bs ? -1 : as > bs;
}

/* An error result that an operator has since asked to run again (retry,
 * dead requeue: `redone` holds when, later than this entry): the id's next
 * result decides. Without read access to `redone` (a producer's ACL), an
 * id no longer done counts as requeued. */
static int superseded(redisContext *rc, const keySet *ks, const char *id, const char *entry) {
    redisReply *r = redisCommand(rc, "HGET %s %s", ks->name[KEY_REDONE], id);
    int sup = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        sup = strtoull(r->str, NULL, 10) > strtoull(entry, NULL, 10);
    } else if (!r || r->type != REDIS_REPLY_NIL) {
        const char *v[] = {"SMISMEMBER", ks->name[KEY_DONE], id};
        size_t vl[] = {10, strlen(v[1]), strlen(id)};
        redisReply *d = redisCommandArgv(rc, 3, v, vl);
        sup = d && d->type == REDIS_REPLY_ARRAY && d->elements == 1 &&
              d->element[0]->type == REDIS_REPLY_INTEGER && d->element[0]->integer == 0;
        if (d) freeReplyObject(d);
    }
    if (r) freeReplyObject(r);
    return sup;
}

/* Wanted ids not seen that are done though the stream read so far (to
 * its end) held no result for them: gc or the stream's MAXLEN took it.
 * Checked in this order: the ids' done flags, then that the stream has
 * nothing after last (so no result was written in between). They are
 * counted as gone and no longer waited for. */
static size_t countGone(redisContext *rc, const keySet *ks, strSet *want, strSet *seen,
                        const char *last) {
    strSet cand = {0};
    const char *v[2 + 500];
    size_t vl[2 + 500], m = 0;
    v[0] = "SMISMEMBER", vl[0] = 10;
    v[1] = ks->name[KEY_DONE], vl[1] = strlen(v[1]);
    for (size_t i = 0; i <= want->cap; i++) {      /* in SMISMEMBERs of 500 */
        const char *id = i < want->cap ? want->slot[i] : NULL;
        if (id && !setHas(seen, id)) v[2 + m] = id, vl[2 + m] = strlen(id), m++;
        if (m == 500 || (i == want->cap && m > 0)) {
            redisReply *r = redisCommandArgv(rc, (int)m + 2, v, vl);
            if (r && r->type == REDIS_REPLY_ARRAY && r->elements == m)
                for (size_t k = 0; k < m; k++)
                    if (r->element[k]->integer == 1) setAdd(&cand, v[2 + k]);
            if (r) freeReplyObject(r);
            m = 0;
        }
    }
    size_t gone = 0;
    redisReply *r = cand.n ? redisCommand(rc, "XREAD COUNT 1 STREAMS %s %s",
                                          ks->name[KEY_RESULTS], last) : NULL;
    if (r && r->type == REDIS_REPLY_NIL) {
        for (size_t i = 0; i < cand.cap; i++)
            if (cand.slot[i] && setAdd(seen, cand.slot[i])) gone++;
    }
    if (r) freeReplyObject(r);
    setFree(&cand);
    return gone;
}

/* Follow the results stream from `from` until every id of want has its
 * result. tail: the stream's newest entry when the wait began, when ids
 * that already had a result are among want (read from the start): once
 * the read passes it, such ids whose entry is gone stop being waited for. */
static int waitResults(const char *cmd, redisContext *rc, const keySet *ks, strSet *want,
                       const char *from, const char *tail, long timeout_s) {
    char last[64], hint[300], said[300] = "";
    size_t total = want->n, ok = 0, failed = 0, gone = 0;
    int tty = isatty(STDERR_FILENO);
    double t0 = nowSec(), lastPrint = 0, lastNew = t0, lastGone = 0;
    strSet seen = {0}, bad = {0}, fixed = {0};  /* fixed: bad, then ok */

    snprintf(last, sizeof(last), "%s", from);
    while (ok + failed + gone < total) {
        if (timeout_s > 0 && nowSec() - t0 >= (double)timeout_s) {
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "llmfleet %s: --timeout %ld s: %zu of %zu results (%zu ok, "
                    "%zu error); the rest are still queued: llmfleet results --from %s "
                    "follows on\n", cmd, timeout_s, ok + failed, total, ok, failed, last);
            setFree(&seen);
            setFree(&bad);
            setFree(&fixed);
            return 3;
        }
        if (nowSec() - lastNew >= 10) {         /* nothing for 10 s: say why, once */
            stallHint(rc, ks, hint, sizeof(hint));
            if (hint[0] && strcmp(hint, said) != 0) {
                fprintf(stderr, "%sllmfleet %s: waiting: %s\n", tty ? "\n" : "", cmd, hint);
                snprintf(said, sizeof(said), "%s", hint);
            }
            lastNew = nowSec();
        }
        redisReply *r = redisCommand(rc, "XREAD COUNT 1000 BLOCK 1000 STREAMS %s %s",
                                     ks->name[KEY_RESULTS], last);
        if (!r) {
            fprintf(stderr, "llmfleet %s: lost Redis while waiting: %s\n", cmd, rdsSyncErr(rc));
            setFree(&seen);
            setFree(&bad);
            setFree(&fixed);
            return 1;
        }
        if (r->type != REDIS_REPLY_ARRAY && tail && streamIdCmp(last, tail) >= 0 &&
            nowSec() - lastGone >= 5) {
            /* Caught up with the stream: ids that had their result before
             * the wait began and still have none here lost it. */
            lastGone = nowSec();
            size_t g = countGone(rc, ks, want, &seen, last);
            if (g)
                fprintf(stderr, "%sllmfleet %s: %zu id%s done, but %s result is no longer in "
                        "the stream (gc, or --results-maxlen): not waited for\n", tty ? "\n" : "",
                        cmd, g, g == 1 ? " is" : "s are", g == 1 ? "its" : "their");
            gone += g;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
            redisReply *entries = r->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *e = entries->element[i];
                snprintf(last, sizeof(last), "%s", e->element[0]->str);
                redisReply *f = e->element[1];
                const char *id = NULL, *status = NULL;
                for (size_t k = 0; k + 1 < f->elements; k += 2) {
                    if (strcmp(f->element[k]->str, "id") == 0) id = f->element[k + 1]->str;
                    if (strcmp(f->element[k]->str, "status") == 0) status = f->element[k + 1]->str;
                }
                if (status && strcmp(status, "budget_exceeded") == 0)
                    fprintf(stderr, "%sllmfleet %s: the fleet stopped at its spend "
                            "cap; jobs stay queued until the cap is raised\n", tty ? "\n" : "", cmd);
                if (!id || !setHas(want, id)) continue;
                int is_ok = status && strcmp(status, "ok") == 0;
                if (!is_ok && !setHas(&seen, id) && superseded(rc, ks, id, e->element[0]->str))
                    continue;   /* requeued since (retry): its next result decides */
                if (!setAdd(&seen, id)) {
                    /* A later result of the id (an operator's retry) decides. */
                    if (is_ok && setHas(&bad, id) && setAdd(&fixed, id)) failed--, ok++;
                    continue;
                }
                if (is_ok) ok++;
                else failed++, setAdd(&bad, id);
                lastNew = nowSec();
            }
        }
        freeReplyObject(r);
        double t = nowSec();
        if (t - lastPrint >= (tty ? 0.1 : 1.0) || ok + failed + gone == total) {
            double rate = (double)(ok + failed) / (t - t0 > 0.001 ? t - t0 : 0.001);
            if (tty) {
                int width = 30, fill = (int)((double)width * (double)(ok + failed) / (double)total);
                char bar[64];
                for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
                bar[width] = '\0';
                double left = rate > 0 ? (double)(total - ok - failed) / rate : -1;
                fprintf(stderr, "\r[%s] %zu/%zu ok=%zu error=%zu %.1f jobs/s %.0f s", bar,
                        ok + failed, total, ok, failed, rate, t - t0);
                if (left >= 0 && ok + failed < total) fprintf(stderr, ", ~%.0f s left ", left);
                else fputc(' ', stderr);
            } else {
                fprintf(stderr, "progress done=%zu total=%zu ok=%zu error=%zu jobs_per_s=%.1f "
                        "elapsed_s=%.0f\n", ok + failed, total, ok, failed, rate, t - t0);
            }
            lastPrint = t;
        }
    }
    if (tty) fputc('\n', stderr);
    fprintf(stderr, "llmfleet %s: %zu results: %zu ok, %zu error", cmd, ok + failed, ok, failed);
    if (gone) fprintf(stderr, ", %zu no longer in the stream", gone);
    fprintf(stderr, " in %.1f s\n", nowSec() - t0);
    setFree(&seen);
    setFree(&bad);
    setFree(&fixed);
    return failed ? 1 : 0;
}

/* The id of the newest stream entry, "0-0" when empty. */
static void streamTail(redisContext *rc, const keySet *ks, char *out, size_t len) {
    redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT 1", ks->name[KEY_RESULTS]);
    snprintf(out, len, "0-0");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1)
        snprintf(out, len, "%s", r->element[0]->element[0]->str);
    if (r) freeReplyObject(r);
}

/* Ids (of n lines) that already have a result: marked by id[0] = 0. */
static size_t dropDone(redisContext *rc, const keySet *ks, line *lines, size_t n) {
    size_t dropped = 0;
    for (size_t i = 0; i < n; i += PUSH_CHUNK) {
        size_t m = n - i < PUSH_CHUNK ? n - i : PUSH_CHUNK;
        const char **v = malloc(sizeof(char *) * (m + 2));
        size_t *vl = malloc(sizeof(size_t) * (m + 2));
        if (!v || !vl) abort();
        v[0] = "SMISMEMBER", vl[0] = 10;
        v[1] = ks->name[KEY_DONE], vl[1] = strlen(v[1]);
        for (size_t k = 0; k < m; k++) v[2 + k] = lines[i + k].id, vl[2 + k] = strlen(lines[i + k].id);
        redisReply *r = redisCommandArgv(rc, (int)m + 2, v, vl);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == m) {
            for (size_t k = 0; k < m; k++)
                if (r->element[k]->integer == 1) lines[i + k].len = 0, dropped++;
        }
        if (r) freeReplyObject(r);
        free(v);
        free(vl);
    }
    return dropped;
}

/* Validate every line of in (from path); the good ones go to *lines
 * (*n of them), their ids to ids. Returns the number of bad lines, the
 * first MAX_REPORTED said on stderr. */
static size_t validateLines(const buf *in, const char *path, size_t max_job,
                            line **lines, size_t *n, strSet *ids) {
    size_t cap = 1024, bad = 0;
    char err[300];
    int lineno = 0;
    char *p = in->p, *end = in->p + in->len;
    *lines = malloc(sizeof(line) * cap);
    *n = 0;
    while (p && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        lineno++;
        size_t len = (size_t)(e - p);
        if (len && p[len - 1] == '\r') len--;
        size_t k = 0;
        while (k < len && (p[k] == ' ' || p[k] == '\t')) k++;
        if (k < len) {
            job j;
            if (*n == cap) *lines = realloc(*lines, sizeof(line) * (cap *= 2));
            if (!*lines) abort();
            const char *why = NULL;
            if (jobParse(&j, p, len, max_job, err, sizeof(err)) < 0) why = err;
            else if (!setAdd(ids, j.id)) why = "duplicate id (an earlier line has it)";
            if (why) {
                if (bad < MAX_REPORTED)
                    fprintf(stderr, "%s:%d: %s\n", path, lineno, why);
                bad++;
            } else {
                line *l = &(*lines)[(*n)++];
                l->p = p;
                l->len = len;
                l->lineno = lineno;
                memcpy(l->id, j.id, sizeof(l->id));
            }
        }
        p = nl ? nl + 1 : end;
    }
    if (bad > MAX_REPORTED)
        fprintf(stderr, "... and %zu more invalid lines\n", bad - MAX_REPORTED);
    return bad;
}

/* LPUSH the lines in chunks; their ids go to want. Returns 0, or 1 when
 * Redis refused a chunk (said on stderr); *pushed counts what went in. */
static int pushLines(redisContext *c, const keySet *ks, const line *lines, size_t n,
                     strSet *want, size_t *pushed) {
    int rc = 0;
    const char **v = malloc(sizeof(char *) * (PUSH_CHUNK + 2));
    size_t *vl = malloc(sizeof(size_t) * (PUSH_CHUNK + 2));
    if (!v || !vl) abort();
    *pushed = 0;
    for (size_t i = 0; i < n && rc == 0; i += PUSH_CHUNK) {
        size_t m = 0;
        v[0] = "LPUSH", vl[0] = 5;
        v[1] = ks->name[KEY_JOBS], vl[1] = strlen(v[1]);
        for (size_t k = i; k < n && k < i + PUSH_CHUNK; k++) {
            if (!lines[k].len) continue;
            v[2 + m] = lines[k].p, vl[2 + m] = lines[k].len;
            m++;
            setAdd(want, lines[k].id);
        }
        if (!m) continue;
        redisReply *rr = redisCommandArgv(c, (int)m + 2, v, vl);
        if (!rr || rr->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "llmfleet submit: Redis refused the push after %zu "
                    "jobs: %s\n", *pushed, rr ? rr->str : rdsSyncErr(c));
            rc = 1;
        } else {
            *pushed += m;
        }
        if (rr) freeReplyObject(rr);
    }
    free(v);
    free(vl);
    return rc;
}

int cliSubmit(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    int skip = 0, wait = 0, npos;
    long timeout_s = 0;
    size_t max_job = 32u << 20;
    char *pos[1];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"skip-invalid", OPT_FLAG, &skip, 0, "push the valid lines even if some are invalid"},
        {"wait", OPT_FLAG, &wait, 0, "follow the results; exit 1 if any job failed"},
        {"timeout", OPT_LONG, &timeout_s, 0, "with --wait: give up after N s (exit 3)"},
        {"max-job-bytes", OPT_SIZE, &max_job, 1, "largest job accepted (33554432)"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("submit", argc, argv, specs, pos, 1, &npos);
    if (r == 1) {
        optUsage("submit", "[FILE|-] [options]   (one JSON job per line)", specs);
        return 0;
    }
    if (r < 0) return 2;

    const char *path = npos ? pos[0] : "-";
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "llmfleet submit: cannot open %s: %s\n", path, strerror(errno));
        return 2;
    }
    buf in = {0};
    int rd = readAll(f, &in);
    if (f != stdin) fclose(f);
    if (rd < 0) {
        fprintf(stderr, "llmfleet submit: error reading %s\n", path);
        bufFree(&in);
        return 2;
    }

    /* Validate every line first: nothing is pushed from a bad file. */
    line *lines;
    size_t n, pushed = 0;
    strSet ids = {0}, want = {0};
    size_t bad = validateLines(&in, path, max_job, &lines, &n, &ids);
    int rc = 0;
    if (bad && !skip) {
        fprintf(stderr, "llmfleet submit: %zu invalid line%s; nothing pushed "
                "(--skip-invalid pushes the valid ones)\n", bad, bad == 1 ? "" : "s");
        rc = 1;
        goto out;
    }

    keySet ks;
    redisContext *c = cliConnect("submit", &cc, &ks);
    if (!c) {
        rc = cliConnectRc;
        goto out;
    }
    char from[64];
    streamTail(c, &ks, from, sizeof(from));
    size_t already = dropDone(c, &ks, lines, n);
    if (already)
        fprintf(stderr, "llmfleet submit: %zu job%s already have a result; not "
                "pushed again%s\n", already, already == 1 ? "" : "s",
                wait ? " (their results count for --wait)" : "");
    rc = pushLines(c, &ks, lines, n, &want, &pushed);
    fprintf(stderr, "llmfleet submit: pushed %zu job%s to %s\n", pushed,
            pushed == 1 ? "" : "s", ks.name[KEY_JOBS]);
    if (rc == 0 && wait && already) {
        /* The results of the ids already done are older: read from the
         * start (an error among them fails the wait like a new one). */
        for (size_t i = 0; i < n; i++)
            if (!lines[i].len) setAdd(&want, lines[i].id);
        rc = waitResults("submit", c, &ks, &want, "0-0", from, timeout_s);
    } else if (rc == 0 && wait && want.n) {
        rc = waitResults("submit", c, &ks, &want, from, NULL, timeout_s);
    }
    redisFree(c);
out:
    setFree(&want);
    setFree(&ids);
    free(lines);
    bufFree(&in);
    return rc;
}

/* `llmfleet wait FILE`: follow the results of a file's jobs again (after
 * a Ctrl-C of submit --wait, or from another terminal), from the start of
 * the stream: exit 0 when all are ok, 1 when one failed, 3 on --timeout. */
int cliWait(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    long timeout_s = 0;
    size_t max_job = 32u << 20;
    int npos;
    char *pos[1];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"timeout", OPT_LONG, &timeout_s, 0, "give up after N s (exit 3)"},
        {"max-job-bytes", OPT_SIZE, &max_job, 1, "largest job accepted (33554432)"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("wait", argc, argv, specs, pos, 1, &npos);
    if (r == 1 || (r == 0 && npos == 0)) {
        optUsage("wait", "FILE|- [options]   (the jobs' results, as submit --wait follows them)", specs);
        return r == 1 ? 0 : 2;
    }
    if (r < 0) return 2;
    FILE *f = strcmp(pos[0], "-") == 0 ? stdin : fopen(pos[0], "rb");
    if (!f) {
        fprintf(stderr, "llmfleet wait: cannot open %s: %s\n", pos[0], strerror(errno));
        return 2;
    }
    buf in = {0};
    int rd = readAll(f, &in);
    if (f != stdin) fclose(f);
    line *lines = NULL;
    size_t n = 0;
    strSet ids = {0};
    int rc = 2;
    if (rd < 0) {
        fprintf(stderr, "llmfleet wait: error reading %s\n", pos[0]);
        goto out;
    }
    size_t bad = validateLines(&in, pos[0], max_job, &lines, &n, &ids);
    if (bad)
        fprintf(stderr, "llmfleet wait: %zu invalid line%s skipped (they were never pushed "
                "by submit)\n", bad, bad == 1 ? "" : "s");
    if (n == 0) {
        fprintf(stderr, "llmfleet wait: no job in %s\n", pos[0]);
        goto out;
    }
    keySet ks;
    redisContext *c = cliConnect("wait", &cc, &ks);
    if (!c) {
        rc = cliConnectRc;
        goto out;
    }
    char tail[64];
    streamTail(c, &ks, tail, sizeof(tail));
    rc = waitResults("wait", c, &ks, &ids, "0-0", tail, timeout_s);
    redisFree(c);
out:
    setFree(&ids);
    free(lines);
    bufFree(&in);
    return rc;
}

/* ---- results ---------------------------------------------------------- */

static int isNumberField(const char *name) {
    static const char *nums[] = {
        "attempts", "latency_ms", "http_status", "input_tokens", "output_tokens",
        "cache_creation_input_tokens", "cache_read_input_tokens", "resumes_at_ms", NULL,
    };
    for (int i = 0; nums[i]; i++)
        if (strcmp(nums[i], name) == 0) return 1;
    return 0;
}

static int allDigits(const char *s, size_t n) {
    if (n == 0 || n > 18) return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* One stream entry as a JSON object line, its stream id last (what
 * --from takes to resume after it). response and meta are JSON already
 * (validated when the job was claimed / the response parsed). */
static void entryJson(buf *b, redisReply *e) {
    redisReply *f = e->element[1];
    bufReset(b);
    bufAppend(b, "{", 1);
    for (size_t k = 0; k + 1 < f->elements; k += 2) {
        redisReply *name = f->element[k], *val = f->element[k + 1];
        if (k) bufAppend(b, ",", 1);
        bufAppendJsonString(b, name->str, name->len);
        bufAppend(b, ":", 1);
        int raw = (strcmp(name->str, "response") == 0 || strcmp(name->str, "meta") == 0) &&
                  val->len > 0;
        if (raw || (isNumberField(name->str) && allDigits(val->str, val->len)))
            bufAppend(b, val->str, val->len);
        else
            bufAppendJsonString(b, val->str, val->len);
    }
    bufAppendStr(b, f->elements ? ",\"stream_id\":" : "\"stream_id\":");
    bufAppendJsonString(b, e->element[0]->str, e->element[0]->len);
    bufAppend(b, "}\n", 2);
}

/* 1 when stream entry e's field `name` is `want` (want NULL: any). */
static int entryHas(const redisReply *e, const char *name, const char *want) {
    if (!want) return 1;
    const redisReply *f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (!strcmp(f->element[i]->str, name)) return !strcmp(f->element[i + 1]->str, want);
    return 0;
}

int cliResults(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    int follow = 0, npos;
    const char *out = NULL, *from = "-", *id = NULL, *status = NULL;
    char *pos[1];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"follow", OPT_FLAG, &follow, 0, "keep printing new results"},
        {"out", OPT_STR, &out, 0, "write to FILE instead of stdout"},
        {"from", OPT_STR, &from, 0, "start after this stream id (default: the beginning)"},
        {"id", OPT_STR, &id, 0, "only the results of this job id"},
        {"status", OPT_STR, &status, 0, "only these: ok, error, budget_exceeded"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("results", argc, argv, specs, pos, 0, &npos);
    if (r == 1) {
        optUsage("results", "[options]", specs);
        return 0;
    }
    if (r < 0) return 2;
    FILE *o = out ? fopen(out, "w") : stdout;
    if (!o) {
        fprintf(stderr, "llmfleet results: cannot write %s: %s\n", out, strerror(errno));
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("results", &cc, &ks);
    if (!c) {
        if (out) fclose(o);
        return cliConnectRc;
    }
    char last[64];
    buf b = {0};
    int rc = 0;
    size_t count = 0;
    snprintf(last, sizeof(last), "%s", strcmp(from, "-") == 0 ? "0-0" : from);
    for (;;) {
        redisReply *rr = follow
            ? redisCommand(c, "XREAD COUNT 1000 BLOCK 2000 STREAMS %s %s",
                           ks.name[KEY_RESULTS], last)
            : redisCommand(c, "XREAD COUNT 1000 STREAMS %s %s", ks.name[KEY_RESULTS], last);
        if (!rr && follow) {
            /* Redis went away (a restart, a failover): follow on from the
             * last entry read once it is back. */
            fprintf(stderr, "llmfleet results: lost Redis (%s); reconnecting, then on "
                    "from %s\n", rdsSyncErr(c), last);
            redisFree(c);
            c = NULL;
            for (int k = 0; !c; k++) {
                sleep(k < 5 ? 1 : 5);
                c = cliConnect("results", &cc, &ks);
            }
            continue;
        }
        if (!rr || rr->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "llmfleet results: %s\n", rr ? rr->str : rdsSyncErr(c));
            if (rr) freeReplyObject(rr);
            rc = 1;
            break;
        }
        size_t got = 0;
        if (rr->type == REDIS_REPLY_ARRAY && rr->elements == 1) {
            redisReply *entries = rr->element[0]->element[1];
            for (size_t i = 0; i < entries->elements; i++) {
                redisReply *e = entries->element[i];
                snprintf(last, sizeof(last), "%s", e->element[0]->str);
                if (!entryHas(e, "id", id) || !entryHas(e, "status", status)) continue;
                entryJson(&b, e);
                fwrite(b.p, 1, b.len, o);
                count++;
            }
            got = entries->elements;
        }
        freeReplyObject(rr);
        if (follow) fflush(o);
        else if (got == 0) break;
    }
    if (out) {
        fclose(o);
        fprintf(stderr, "llmfleet results: wrote %zu results to %s\n", count, out);
    }
    bufFree(&b);
    redisFree(c);
    return rc;
}
