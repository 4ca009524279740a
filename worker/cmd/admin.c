/* admin.c — operator subcommands on the fleet's shared state: limits,
 * status, pause, resume, dead.
 *
 * Values are validated here, before anything is written; a `limits set`
 * writes all its keys in one HSET, so workers never see half a change.
 * Defaults live in scripts/lua/_lib.lua only; `limits show` and `status`
 * read them through limits.lua and status.lua. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "cli.h"
#include "keys.h"
#include "opt.h"
#include "price.h"
#include "rds.h"

/* ---- limits ----------------------------------------------------------- */

typedef enum { LIM_INT, LIM_FLOOR, LIM_USD, LIM_DURATION, LIM_ENUM } limKind;

static const struct limitDef {
    const char *name;
    limKind kind;
    long long min;
    const char *choices;        /* LIM_ENUM: "a|b" */
    const char *help;
} limitDefs[] = {
    {"max_in_flight", LIM_INT, 1, NULL, "requests in flight across the fleet"},
    {"soft_token_floor", LIM_FLOOR, 0, NULL, "tokens (or N%) under which dispatches are paced to the refill"},
    {"hard_token_floor", LIM_FLOOR, 0, NULL, "tokens (or N%) under which the fleet stops until the reset"},
    {"max_spend_usd", LIM_USD, 0, NULL, "spend cap in USD; 'none' removes it"},
    {"max_attempts", LIM_INT, 1, NULL, "API attempts per job"},
    {"base_delay", LIM_DURATION, 0, NULL, "retry backoff base (500ms, 2s, 1m; bare numbers are seconds)"},
    {"max_delay", LIM_DURATION, 0, NULL, "retry backoff cap"},
    {"retry_budget_per_min", LIM_INT, 0, NULL, "retries the whole fleet may send per minute"},
    {"ceiling", LIM_ENUM, 0, "fixed|auto", "in-flight ceiling: max_in_flight, or Little's law under it"},
    {"max_pause", LIM_DURATION, 1, NULL, "longest wait sat out as a short pause; longer ones probe"},
    {"probe_interval", LIM_DURATION, 100, NULL, "one probe per interval during a long pause"},
    {"output_rule", LIM_ENUM, 0, "actual|reserve", "how the API counts output tokens (2026 docs: actual)"},
    {"max_deliveries", LIM_INT, 1, NULL, "deliveries lost with their worker before a job is dead-lettered"},
    {NULL, 0, 0, NULL, NULL},
};

/* Parse "500ms", "2s", "1.5m", "1h" or bare seconds into ms. */
static int parseDuration(const char *v, long long *ms) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || x < 0 || !isfinite(x)) return -1;
    double mul = 1000;
    if (strcmp(end, "ms") == 0) mul = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0') mul = 1000;
    else if (strcmp(end, "m") == 0) mul = 60000;
    else if (strcmp(end, "h") == 0) mul = 3600000;
    else return -1;
    if (x * mul > 9e15) return -1;
    *ms = (long long)llround(x * mul);
    return 0;
}

/* Validate name=value; the normalized value goes to out. Returns 0 or -1
 * with a message naming the key. */
static int validateLimit(const char *name, const char *v, char *out, size_t outlen,
                         char *err, size_t errlen) {
    const struct limitDef *d = limitDefs;
    for (; d->name; d++)
        if (strcmp(d->name, name) == 0) break;
    if (!d->name) {
        snprintf(err, errlen, "unknown limit \"%s\" (see llmfleet limits show)", name);
        return -1;
    }
    char *end;
    long long n;
    switch (d->kind) {
    case LIM_INT:
        errno = 0;
        n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < d->min) {
            snprintf(err, errlen, "%s must be an integer >= %lld, got \"%s\"", name, d->min, v);
            return -1;
        }
        snprintf(out, outlen, "%lld", n);
        return 0;
    case LIM_FLOOR: {
        size_t len = strlen(v);
        int pct = len > 0 && v[len - 1] == '%';
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || end != v + len - (size_t)pct || x < 0 ||
            (pct && x > 100) || (!pct && x != floor(x))) {
            snprintf(err, errlen, "%s must be a whole number of tokens or a "
                     "percentage like 10%%, got \"%s\"", name, v);
            return -1;
        }
        if (pct) snprintf(out, outlen, "%g%%", x);
        else snprintf(out, outlen, "%.0f", x);
        return 0;
    }
    case LIM_USD:
        if (strcmp(v, "none") == 0 || *v == '\0') {
            out[0] = '\0';
            return 0;
        }
        if (priceParseUsd(v, &n) < 0) {
            snprintf(err, errlen, "%s must be an amount in USD like 250 or 12.50 "
                     "(or none), got \"%s\"", name, v);
            return -1;
        }
        priceFormatUsd(n, out, outlen);
        return 0;
    case LIM_DURATION:
        if (parseDuration(v, &n) < 0 || n < d->min) {
            snprintf(err, errlen, "%s must be a duration like 500ms, 2s, 5m or 1h "
                     "(at least %lld ms), got \"%s\"", name, d->min, v);
            return -1;
        }
        snprintf(out, outlen, "%lld", n);
        return 0;
    case LIM_ENUM: {
        size_t len = strlen(v);
        const char *c = d->choices;
        while (c && *c) {
            const char *bar = strchr(c, '|');
            size_t cl = bar ? (size_t)(bar - c) : strlen(c);
            if (cl == len && strncmp(c, v, len) == 0) {
                snprintf(out, outlen, "%s", v);
                return 0;
            }
            c = bar ? bar + 1 : NULL;
        }
        snprintf(err, errlen, "%s must be one of %s, got \"%s\"", name, d->choices, v);
        return -1;
    }
    }
    return -1;
}

static int limitsShow(redisContext *c, const keySet *ks) {
    const char *keys[] = {ks->name[KEY_LIMITS]};
    redisReply *r = rdsScriptSync(c, "limits", 1, keys, 0, NULL, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "llmfleet limits: %s\n", r ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return 1;
    }
    for (size_t i = 0; i + 2 < r->elements; i += 3) {
        const char *name = r->element[i]->str, *val = r->element[i + 1]->str;
        const char *unit = "";
        for (const struct limitDef *d = limitDefs; d->name; d++)
            if (strcmp(d->name, name) == 0 && d->kind == LIM_DURATION) unit = " ms";
        printf("%-22s %s%s%s\n", name, *val ? val : "none", *val ? unit : "",
               r->element[i + 2]->integer ? "" : "   (default)");
    }
    freeReplyObject(r);
    return 0;
}

int cliLimits(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    char *pos[64];
    int npos;
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("limits", argc, argv, specs, pos, 64, &npos);
    if (r == 1 || (r == 0 && npos == 0)) {
        optUsage("limits", "show | set KEY=VALUE...", specs);
        printf("\nlimits:\n");
        for (const struct limitDef *d = limitDefs; d->name; d++)
            printf("  %-22s %s\n", d->name, d->help);
        return r == 1 ? 0 : 2;
    }
    if (r < 0) return 2;
    int set = strcmp(pos[0], "set") == 0;
    if (!set && strcmp(pos[0], "show") != 0) {
        fprintf(stderr, "llmfleet limits: expected show or set, got \"%s\"\n", pos[0]);
        return 2;
    }
    if (set && npos < 2) {
        fprintf(stderr, "llmfleet limits set: give at least one KEY=VALUE\n");
        return 2;
    }
    /* Validate everything before writing anything. */
    char vals[64][64], err[300];
    const char *hv[2 + 2 * 64], *dv[2 + 64];
    int nh = 2, nd = 2;
    for (int i = 1; set && i < npos; i++) {
        char *eq = strchr(pos[i], '=');
        if (!eq) {
            fprintf(stderr, "llmfleet limits set: expected KEY=VALUE, got \"%s\"\n", pos[i]);
            return 2;
        }
        *eq = '\0';
        if (validateLimit(pos[i], eq + 1, vals[i], sizeof(vals[i]), err, sizeof(err)) < 0) {
            fprintf(stderr, "llmfleet limits set: %s\n", err);
            return 2;
        }
        if (vals[i][0]) hv[nh++] = pos[i], hv[nh++] = vals[i];
        else dv[nd++] = pos[i];
    }
    keySet ks;
    redisContext *c = cliConnect("limits", &cc, &ks);
    if (!c) return 2;
    int rc = 0;
    if (set) {
        /* One MULTI/EXEC: workers see the whole change or none of it. */
        redisAppendCommand(c, "MULTI");
        hv[0] = "HSET", hv[1] = ks.name[KEY_LIMITS];
        dv[0] = "HDEL", dv[1] = ks.name[KEY_LIMITS];
        if (nh > 2) redisAppendCommandArgv(c, nh, hv, NULL);
        if (nd > 2) redisAppendCommandArgv(c, nd, dv, NULL);
        redisAppendCommand(c, "EXEC");
        int n = 2 + (nh > 2) + (nd > 2);
        for (int i = 0; i < n; i++) {
            redisReply *rr;
            if (redisGetReply(c, (void **)&rr) != REDIS_OK) {
                fprintf(stderr, "llmfleet limits: %s\n", c->errstr);
                rc = 1;
                break;
            }
            if (rr->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "llmfleet limits: Redis refused: %s\n", rr->str);
                rc = 1;
            }
            freeReplyObject(rr);
        }
    }
    if (rc == 0) rc = limitsShow(c, &ks);
    redisFree(c);
    return rc;
}

/* ---- status ----------------------------------------------------------- */

static volatile sig_atomic_t stopWatch;
static void onStop(int sig) { (void)sig; stopWatch = 1; }

static const char *get(redisReply *r, const char *name) {
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, name) == 0) return r->element[i + 1]->str;
    return NULL;
}

static void printBucket(redisReply *r, const char *b, const char *label) {
    char k[32];
    snprintf(k, sizeof(k), "%s_estimate", b);
    const char *est = get(r, k);
    if (!est) {
        printf("  %-16s (no rate-limit headers seen yet)\n", label);
        return;
    }
    snprintf(k, sizeof(k), "%s_limit", b);
    const char *lim = get(r, k);
    snprintf(k, sizeof(k), "%s_soft_floor", b);
    const char *soft = get(r, k);
    snprintf(k, sizeof(k), "%s_hard_floor", b);
    const char *hard = get(r, k);
    printf("  %-16s %s of %s per min (soft floor %s, hard floor %s)\n", label, est,
           lim, soft, hard);
}

static void printStatus(const char *fleet, redisReply *r) {
    long long now = atoll(get(r, "now_ms"));
    printf("fleet %s\n", fleet);
    printf("  queue            %s queued, %s leased, %s delayed (retries), %s dead\n",
           get(r, "queued"), get(r, "leased"), get(r, "delayed"), get(r, "dead"));
    printf("  in flight        %s / ceiling %s (%s)\n", get(r, "in_flight"),
           get(r, "ceiling"), get(r, "ceiling_mode"));
    printf("  results          %s done, %s in stream (%s ok, %s error)\n", get(r, "done"),
           get(r, "results"), get(r, "total_ok"), get(r, "total_error"));
    printBucket(r, "r", "requests");
    printBucket(r, "i", "input tokens");
    printBucket(r, "o", "output tokens");
    if (atoi(get(r, "paused"))) {
        long long until = atoll(get(r, "pause_until_ms"));
        long long left = (until - now) / 1000;
        if (left > 10LL * 365 * 86400)
            printf("  PAUSED           %s (%s)\n", get(r, "pause_reason"), get(r, "pause_kind"));
        else
            printf("  PAUSED           %s (%s; resumes in %lld s)\n", get(r, "pause_reason"),
                   get(r, "pause_kind"), left);
    } else {
        printf("  pause            no\n");
    }
    const char *cap = get(r, "max_spend_usd");
    printf("  spend            $%s spent + $%s reserved / cap %s%s%s\n", get(r, "spent_usd"),
           get(r, "reserved_usd"), *cap ? "$" : "", *cap ? cap : "none",
           atoi(get(r, "budget_stopped")) ? "  STOPPED at the cap" : "");
    printf("  retries          %s in the last minute / budget %s (%s total, %s refused)\n",
           get(r, "retries_last_min"), get(r, "retry_budget_per_min"),
           get(r, "total_retries"), get(r, "total_retry_budget_refusals"));
    printf("  API              %s requests, %s x 429, %s hard-floor stops, latency ~%s ms\n",
           get(r, "total_requests"), get(r, "total_r429"), get(r, "total_hard_floor_hits"),
           get(r, "latency_ewma_ms"));
    printf("  workers alive    %s\n", get(r, "workers_alive"));
    printf("  last minute      %s jobs/s, %s req/s, %s input tok/s, %s output tok/s\n",
           get(r, "jobs_per_s"), get(r, "requests_per_s"), get(r, "input_tokens_per_s"),
           get(r, "output_tokens_per_s"));
}

static int isNumeric(const char *s) {
    if (!*s) return 0;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

int cliStatus(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    int json = 0, watch = 0, npos;
    long interval = 2;
    char *pos[1];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"json", OPT_FLAG, &json, 0, "one JSON object"},
        {"watch", OPT_FLAG, &watch, 0, "refresh until interrupted"},
        {"interval", OPT_LONG, &interval, 1, "seconds between refreshes with --watch (2)"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("status", argc, argv, specs, pos, 0, &npos);
    if (r == 1) {
        optUsage("status", "[options]", specs);
        return 0;
    }
    if (r < 0) return 2;
    keySet ks;
    redisContext *c = cliConnect("status", &cc, &ks);
    if (!c) return 2;
    const char *keys[] = {
        ks.name[KEY_JOBS], ks.name[KEY_LEASES], ks.name[KEY_INFLIGHT],
        ks.name[KEY_DELAYED], ks.name[KEY_DEAD], ks.name[KEY_DONE],
        ks.name[KEY_RESULTS], ks.name[KEY_WORKERS], ks.name[KEY_LIMITS],
        ks.name[KEY_STATE], ks.name[KEY_STATS], ks.name[KEY_RETRYLOG],
    };
    signal(SIGINT, onStop);
    signal(SIGTERM, onStop);
    int rc = 0, tty = isatty(STDOUT_FILENO);
    do {
        redisReply *rr = rdsScriptSync(c, "status", 12, keys, 0, NULL, NULL);
        if (!rr || rr->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "llmfleet status: %s\n", rr ? rr->str : c->errstr);
            if (rr) freeReplyObject(rr);
            rc = 1;
            break;
        }
        if (json) {
            buf b = {0};
            bufAppendStr(&b, "{\"fleet\":");
            bufAppendJsonString(&b, cc.fleet, strlen(cc.fleet));
            for (size_t i = 0; i + 1 < rr->elements; i += 2) {
                redisReply *k = rr->element[i], *v = rr->element[i + 1];
                bufAppend(&b, ",", 1);
                bufAppendJsonString(&b, k->str, k->len);
                bufAppend(&b, ":", 1);
                if (isNumeric(v->str)) bufAppend(&b, v->str, v->len);
                else bufAppendJsonString(&b, v->str, v->len);
            }
            bufAppendStr(&b, "}\n");
            fwrite(b.p, 1, b.len, stdout);
            bufFree(&b);
        } else {
            if (watch && tty) printf("\033[H\033[J");
            printStatus(cc.fleet, rr);
        }
        fflush(stdout);
        freeReplyObject(rr);
        for (long t = 0; watch && !stopWatch && t < interval * 10; t++) usleep(100000);
    } while (watch && !stopWatch);
    redisFree(c);
    return rc;
}

/* ---- pause, resume ---------------------------------------------------- */

int cliPause(const cliCommon *cc0, int argc, char **argv, int resume) {
    cliCommon cc = *cc0;
    const char *reason = "no reason given";
    char *pos[1];
    int npos;
    const char *cmd = resume ? "resume" : "pause";
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"reason", OPT_STR, &reason, 0, "shown by status"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse(cmd, argc, argv, specs, pos, 0, &npos);
    if (r == 1) {
        optUsage(cmd, "[options]", specs);
        return 0;
    }
    if (r < 0) return 2;
    keySet ks;
    redisContext *c = cliConnect(cmd, &cc, &ks);
    if (!c) return 2;
    char why[300];
    snprintf(why, sizeof(why), "operator: %s", reason);
    redisReply *rr = resume
        ? redisCommand(c, "HSET %s pause_until 0 pause_long 0 pause_reason %s",
                       ks.name[KEY_STATE], "")
        : redisCommand(c, "HSET %s pause_until 99999999999999 pause_long 2 pause_reason %s",
                       ks.name[KEY_STATE], why);
    int rc = 0;
    if (!rr || rr->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "llmfleet %s: %s\n", cmd, rr ? rr->str : c->errstr);
        rc = 1;
    } else {
        fprintf(stderr, "llmfleet %s: fleet %s %s\n", cmd, cc.fleet,
                resume ? "resumed" : "paused; in-flight requests finish, jobs stay queued");
    }
    if (rr) freeReplyObject(rr);
    redisFree(c);
    return rc;
}

/* ---- dead ------------------------------------------------------------- */

/* Dead letters back to the queue (requeue.lua): the operator asks for a
 * new result. */
static int deadRequeue(redisContext *c, const keySet *ks, long count, const char *id) {
    char n[24];
    const char *keys[] = {ks->name[KEY_DEAD], ks->name[KEY_JOBS], ks->name[KEY_DONE],
                          ks->name[KEY_ATTEMPTS], ks->name[KEY_LOST]};
    const char *v[] = {n, id};
    size_t vl[] = {fmtLL(n, count), strlen(id)};
    redisReply *rr = rdsScriptSync(c, "requeue", 5, keys, 2, v, vl);
    int rc = 0;
    if (!rr || rr->type != REDIS_REPLY_ARRAY || rr->elements != 2) {
        fprintf(stderr, "llmfleet dead: %s\n",
                rr && rr->type == REDIS_REPLY_ERROR ? rr->str : c->errstr);
        rc = 1;
    } else {
        fprintf(stderr, "llmfleet dead: requeued %lld job%s", rr->element[0]->integer,
                rr->element[0]->integer == 1 ? "" : "s");
        if (rr->element[1]->integer > 0)
            fprintf(stderr, " (%lld entries are not llmfleet dead letters: left alone)",
                    rr->element[1]->integer);
        fputc('\n', stderr);
    }
    if (rr) freeReplyObject(rr);
    return rc;
}

int cliDead(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    long count = -1;
    const char *id = "";
    char *pos[1];
    int npos;
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"count", OPT_LONG, &count, 1, "entries to list (100) or requeue (all)"},
        {"id", OPT_STR, &id, 0, "requeue: only the dead letters of this job id"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("dead", argc, argv, specs, pos, 1, &npos);
    if (r == 1 || (r == 0 && npos == 0)) {
        optUsage("dead", "list | requeue | purge", specs);
        return r == 1 ? 0 : 2;
    }
    if (r < 0) return 2;
    int purge = strcmp(pos[0], "purge") == 0;
    int requeue = strcmp(pos[0], "requeue") == 0;
    if (!purge && !requeue && strcmp(pos[0], "list") != 0) {
        fprintf(stderr, "llmfleet dead: expected list, requeue or purge, got \"%s\"\n", pos[0]);
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("dead", &cc, &ks);
    if (!c) return 2;
    if (requeue) {
        int rc = deadRequeue(c, &ks, count < 0 ? LONG_MAX : count, id);
        redisFree(c);
        return rc;
    }
    if (count < 0) count = 100;
    redisReply *rr = purge ? redisCommand(c, "DEL %s", ks.name[KEY_DEAD])
                           : redisCommand(c, "LRANGE %s 0 %ld", ks.name[KEY_DEAD], count - 1);
    int rc = 0;
    if (!rr || rr->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "llmfleet dead: %s\n", rr ? rr->str : c->errstr);
        rc = 1;
    } else if (purge) {
        fprintf(stderr, "llmfleet dead: purged %s\n", rr->integer ? "the dead letters" : "nothing");
    } else {
        for (size_t i = 0; i < rr->elements; i++) {
            fwrite(rr->element[i]->str, 1, rr->element[i]->len, stdout);
            fputc('\n', stdout);
        }
    }
    if (rr) freeReplyObject(rr);
    redisFree(c);
    return rc;
}
