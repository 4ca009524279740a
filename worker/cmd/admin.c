/* admin.c — operator subcommands on the fleet's shared state: limits,
 * status, pause, resume, dead.
 *
 * Values are validated here, before anything is written, against
 * proto.def's LF_LIMITS (names, kinds, minimums; the defaults there are the
 * Lua side's). Shared state changes only inside scripts: `limits set`
 * (limits.lua: all keys of one call land together), pause and resume
 * (pause.lua), dead requeue and purge (requeue.lua, purge.lua). */
#include <ctype.h>
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
#include "log.h"
#include "opt.h"
#include "codec.h"
#include "price.h"
#include "proto.h"
#include "rds.h"
#include "scripts.h"

/* ---- limits ----------------------------------------------------------- */

typedef enum { LIM_INT, LIM_FLOOR, LIM_USD, LIM_DURATION, LIM_ENUM, LIM_MAP } limKind;

static const struct limitDef {
    const char *name;
    limKind kind;
    long long min;
    const char *choices;        /* LIM_ENUM: "a|b" */
    const char *help;
} limitDefs[] = {
#define X(name, kind, min, choices, def, help) {#name, LIM_##kind, min, choices, help},
    LF_LIMITS(X)
#undef X
    {NULL, 0, 0, NULL, NULL},
};

/* Parse "500ms", "2s", "1.5m", "1h", "7d" or bare seconds into ms. */
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
    else if (strcmp(end, "d") == 0) mul = 86400000;
    else return -1;
    if (x * mul > 9e15) return -1;
    *ms = (long long)llround(x * mul);
    return 0;
}

/* KEY=VALUE,... (or none): keys printable without ',' '=' or spaces;
 * values class names ([A-Za-z0-9._-]) or, when min > 0, integers >= min. */
static int validateMap(const char *name, const char *v, long long min, char *out,
                       size_t outlen, char *err, size_t errlen) {
    if (strcmp(v, "none") == 0 || *v == '\0') {
        out[0] = '\0';
        return 0;
    }
    if (strlen(v) >= outlen) {
        snprintf(err, errlen, "%s is too long (at most %zu bytes)", name, outlen - 1);
        return -1;
    }
    for (const char *p = v; *p;) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        if (!comma) comma = p + strlen(p);
        int ok = eq && eq > p && eq < comma - 1;
        for (const char *q = p; ok && q < eq; q++)
            ok = (unsigned char)*q > ' ' && (unsigned char)*q < 0x7f;
        for (const char *q = eq ? eq + 1 : p; ok && q < comma; q++)
            ok = min > 0 ? (*q >= '0' && *q <= '9')
                         : (isalnum((unsigned char)*q) || *q == '.' || *q == '_' || *q == '-');
        if (ok && min > 0 && atoll(eq + 1) < min) ok = 0;
        if (!ok) {
            snprintf(err, errlen, "%s must be KEY=%s,... (or none), got \"%s\"", name,
                     min > 0 ? "N" : "CLASS", v);
            return -1;
        }
        p = *comma ? comma + 1 : comma;
    }
    snprintf(out, outlen, "%s", v);
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
        if (priceParseUsd(v, &n) < 0 || n > SPEND_MAX_MICROS) {
            snprintf(err, errlen, "%s must be an amount in USD like 250 or 12.50, "
                     "at most 1000000000 (or none), got \"%s\"", name, v);
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
    case LIM_MAP:
        return validateMap(name, v, d->min, out, outlen, err, errlen);
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

/* Set (pairs name, value; value "" removes) then show, in one script. */
static int limitsCall(redisContext *c, const keySet *ks, int n, const char **v) {
    size_t vl[2 * 64];
    for (int i = 0; i < n; i++) vl[i] = strlen(v[i]);
    rdsScriptCall sc = {"limits", ks, NULL, n, v, vl};
    redisReply *r = rdsScriptSync(c, &sc);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "llmfleet limits: %s\n", r ? r->str : rdsSyncErr(c));
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
    static char vals[64][1024];
    char err[300];
    const char *kv[2 * 64];
    int nkv = 0;
    for (int i = 1; set && i < npos && i < 64; i++) {
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
        kv[nkv++] = pos[i];
        kv[nkv++] = vals[i];
    }
    keySet ks;
    redisContext *c = cliConnect("limits", &cc, &ks);
    if (!c) return cliConnectRc;
    int rc = limitsCall(c, &ks, nkv, kv);
    redisFree(c);
    return rc;
}

/* ---- status ----------------------------------------------------------- */

static volatile sig_atomic_t stopWatch;
static void onStop(int sig) { (void)sig; stopWatch = 1; }

/* The buckets' four status fields follow each other in proto.def. */
static void printBucket(const char **v, classStatusField est, const char *label) {
    if (!*v[est]) {
        printf("    %-14s (no rate-limit headers seen yet)\n", label);
        return;
    }
    printf("    %-14s %s of %s per min (soft floor %s, hard floor %s)\n", label,
           v[est], v[est + 1], v[est + 2], v[est + 3]);
}

static void printPause(const char *indent, long long now, const char *until,
                       const char *reason, const char *kind) {
    long long left = (atoll(until) - now) / 1000;
    if (left > 10LL * 365 * 86400)
        printf("%sPAUSED%*s%s (%s)\n", indent, (int)(17 - strlen(indent)), "", reason, kind);
    else
        printf("%sPAUSED%*s%s (%s; resumes in %lld s)\n", indent, (int)(17 - strlen(indent)),
               "", reason, kind, left);
}

static void printClass(const char **c, long long now) {
    printf("  class %-10s %s in flight%s%s, %s requests, %s x 429; input x%s of the "
           "estimate", c[CSTATUS_class], c[CSTATUS_in_flight], *c[CSTATUS_ceiling] ?
           " / ceiling " : "", c[CSTATUS_ceiling], c[CSTATUS_requests], c[CSTATUS_r429],
           c[CSTATUS_input_calibration]);
    if (*c[CSTATUS_estimate_error_pct])
        printf(" (error %s %%)", c[CSTATUS_estimate_error_pct]);
    printf(", output q95 %s of max_tokens\n", c[CSTATUS_output_quantile]);
    printBucket(c, CSTATUS_r_estimate, "requests");
    printBucket(c, CSTATUS_i_estimate, "input tokens");
    printBucket(c, CSTATUS_o_estimate, "output tokens");
    if (atoi(c[CSTATUS_paused]))
        printPause("    ", now, c[CSTATUS_pause_until_ms], c[CSTATUS_pause_reason],
                   c[CSTATUS_pause_kind]);
}

#define S(f) v[STATUS_##f]

static void printStatus(const char *fleet, const char **v, redisReply *r, int nclass) {
    long long now = atoll(S(now_ms));
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&secs, &tm)) strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("fleet %s   (%s, Redis clock)\n", fleet, when);
    printf("  queue            %s queued, %s leased, %s delayed (retries), %s dead",
           S(queued), S(leased), S(delayed), S(dead));
    if (*S(oldest_queued_s)) printf("; oldest queued %s s", S(oldest_queued_s));
    else if (atoll(S(queued)) > 0) printf("; oldest queued: not counted yet (no claim since its push)");
    if (*S(eta_s)) printf("; ~%s s to drain at the last minute's rate", S(eta_s));
    putchar('\n');
    printf("  in flight        %s / ceiling %s (%s)\n", S(in_flight), S(ceiling),
           S(ceiling_mode));
    printf("  results          %s done, %s in stream (%s ok, %s error)", S(done),
           S(results), S(total_ok), S(total_error));
    if (atoll(S(failed_kept)) > 0)
        printf("; %s failed kept (llmfleet retry --failed)", S(failed_kept));
    putchar('\n');
    if (atoi(S(paused)))
        printPause("  ", now, S(pause_until_ms), S(pause_reason), S(pause_kind));
    else
        printf("  pause            no\n");
    const char *cap = S(max_spend_usd);
    printf("  spend            $%s spent + $%s reserved / cap %s%s%s\n", S(spent_usd),
           S(reserved_usd), *cap ? "$" : "", *cap ? cap : "none",
           atoi(S(budget_stopped)) ? "  STOPPED at the cap" : "");
    if (*S(max_spend_usd_per_day))
        printf("  spend today      $%s / cap per UTC day $%s%s\n", S(spent_today_usd),
               S(max_spend_usd_per_day), atoi(S(day_stopped)) ?
               "  STOPPED for today (resumes at 00:00 UTC)" : "");
    printf("  retries          %s in the last minute / budget %s (%s total, %s refused)\n",
           S(retries_last_min), S(retry_budget_per_min), S(total_retries),
           S(total_retry_budget_refusals));
    printf("  API              %s requests, %s x 429, %s hard-floor stops, latency ~%s ms\n",
           S(total_requests), S(total_r429), S(total_hard_floor_hits), S(latency_ewma_ms));
    if (atoll(S(batches_open)) > 0 || atoll(S(batches_done)) > 0)
        printf("  batch lane       %s batches open (%s jobs), %s done, $%s saved against "
               "the sync price (llmfleet batches)\n", S(batches_open), S(batch_jobs),
               S(batches_done), S(batch_saved_usd));
    printf("  workers alive    %s\n", S(workers_alive));
    printf("  last minute      %s jobs/s, %s req/s, %s input tok/s, %s output tok/s\n",
           S(jobs_per_s), S(requests_per_s), S(input_tokens_per_s), S(output_tokens_per_s));
    printf("  last 10 s        %s jobs/s, %s req/s\n", S(jobs_per_s_10s), S(requests_per_s_10s));
    if (nclass == 0) printf("  classes          none seen yet\n");
    for (int k = 0; k < nclass; k++) {
        const char *c[CSTATUS_COUNT];
        statusClass(r, k, c);
        printClass(c, now);
    }
}

#undef S

static int isNumeric(const char *s) {
    if (!*s) return 0;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

/* name:value pairs; fields that do not apply ("") are left out, except
 * max_spend_usd (an unset cap) and the reason of a pause in force. With
 * comma, each pair is preceded by one. The fleet's `classes` (a count) is
 * written as the array that follows instead. */
static void jsonFields(buf *b, const char **v, const char *const *names, int n, int comma) {
    int first = !comma;
    for (int i = 0; i < n; i++) {
        if (names == statusNames && i == STATUS_classes) continue;
        int keep = *v[i] || (names == statusNames && (i == STATUS_max_spend_usd ||
                   i == STATUS_max_spend_usd_per_day ||
                   (i == STATUS_pause_reason && atoi(v[STATUS_paused]))));
        if (!keep) continue;
        if (!first) bufAppend(b, ",", 1);
        first = 0;
        bufAppendJsonString(b, names[i], strlen(names[i]));
        bufAppend(b, ":", 1);
        if (!*v[i]) bufAppendStr(b, "null");           /* an unset cap */
        else if (isNumeric(v[i])) bufAppendStr(b, v[i]);
        else bufAppendJsonString(b, v[i], strlen(v[i]));
    }
}

/* `status workers`: every live worker, its requests in flight (lease ids
 * are NAME:SEQ:I) and when its heartbeat runs out. */
static int statusWorkers(redisContext *c, const keySet *ks, int json) {
    redisReply *t = redisCommand(c, "TIME");
    redisReply *w = redisCommand(c, "ZRANGEBYSCORE %s -inf +inf WITHSCORES", ks->name[KEY_WORKERS]);
    redisReply *f = redisCommand(c, "ZRANGEBYSCORE %s -inf +inf", ks->name[KEY_INFLIGHT]);
    int rc = 0;
    if (!t || !w || !f || t->type != REDIS_REPLY_ARRAY || w->type != REDIS_REPLY_ARRAY ||
        f->type != REDIS_REPLY_ARRAY || t->elements != 2) {
        fprintf(stderr, "llmfleet status: %s\n", rdsSyncErr(c));
        rc = 1;
        goto out;
    }
    long long now = atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000;
    buf b = {0};
    int n = 0;
    if (json) bufAppendStr(&b, "[");
    else printf("%-40s %10s  %s\n", "worker", "in flight", "heartbeat");
    for (size_t i = 0; i + 1 < w->elements; i += 2) {
        const char *name = w->element[i]->str;
        long long exp = atoll(w->element[i + 1]->str);
        if (exp <= now) continue;                   /* gone: the reaper's */
        size_t nl = strlen(name);
        int inflight = 0;
        for (size_t k = 0; k < f->elements; k++)
            if (!strncmp(f->element[k]->str, name, nl) && f->element[k]->str[nl] == ':' &&
                strchr(f->element[k]->str + nl + 1, ':') &&
                !strchr(strchr(f->element[k]->str + nl + 1, ':') + 1, ':'))
                inflight++;
        if (json) {
            if (n) bufAppendStr(&b, ",");
            bufAppendStr(&b, "{\"name\":");
            bufAppendJsonString(&b, name, nl);
            bufPrintf(&b, ",\"in_flight\":%d,\"heartbeat_expires_ms\":%lld}", inflight, exp - now);
        } else {
            printf("%-40s %10d  expires in %.1f s\n", name, inflight, (double)(exp - now) / 1000);
        }
        n++;
    }
    if (json) {
        bufAppendStr(&b, "]\n");
        fwrite(b.p, 1, b.len, stdout);
    } else if (n == 0) {
        printf("(no worker alive)\n");
    }
    bufFree(&b);
out:
    if (t) freeReplyObject(t);
    if (w) freeReplyObject(w);
    if (f) freeReplyObject(f);
    return rc;
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
    int r = optParse("status", argc, argv, specs, pos, 1, &npos);
    if (r == 1) {
        optUsage("status", "[workers] [options]   (workers: each live worker)", specs);
        return 0;
    }
    if (r < 0) return 2;
    if (npos && strcmp(pos[0], "workers") != 0) {
        fprintf(stderr, "llmfleet status: unknown view \"%s\" (workers)\n", pos[0]);
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("status", &cc, &ks);
    if (!c) return cliConnectRc;
    if (npos) {
        int wrc = statusWorkers(c, &ks, json);
        redisFree(c);
        return wrc;
    }
    rdsScriptCall sc = {"status", &ks, NULL, 0, NULL, NULL};
    signal(SIGINT, onStop);
    signal(SIGTERM, onStop);
    int rc = 0, tty = isatty(STDOUT_FILENO);
    do {
        redisReply *rr = rdsScriptSync(c, &sc);
        const char *v[STATUS_COUNT];
        int nclass = statusParse(rr, v);
        if (!rr && watch) {
            /* --watch outlives a Redis restart: say so and reconnect. */
            fprintf(stderr, "llmfleet status: lost Redis (%s); reconnecting\n", rdsSyncErr(c));
            redisFree(c);
            c = NULL;
            for (int k = 0; !c && !stopWatch; k++) {
                sleep(k < 5 ? 1 : 5);
                c = cliConnect("status", &cc, &ks);
            }
            if (!c) break;
            continue;
        }
        if (nclass < 0 && watch && rdsBusyReply(rr)) {
            /* Redis back but still loading (a restart): said, asked again. */
            fprintf(stderr, "llmfleet status: %s; asking again\n", rr->str);
            freeReplyObject(rr);
            sleep(1);
            continue;
        }
        if (nclass < 0) {
            fprintf(stderr, "llmfleet status: %s\n", !rr ? rdsSyncErr(c)
                    : rr->type == REDIS_REPLY_ERROR ? rr->str : "unexpected reply from status.lua");
            if (rr) freeReplyObject(rr);
            rc = 1;
            break;
        }
        static int warned;
        if (!warned && nclass == 0 && !strcmp(v[STATUS_queued], "0") && !strcmp(v[STATUS_done], "0") &&
            !strcmp(v[STATUS_results], "0") && !strcmp(v[STATUS_dead], "0") &&
            !strcmp(v[STATUS_leased], "0") && !strcmp(v[STATUS_workers_alive], "0") &&
            !strcmp(v[STATUS_total_requests], "0")) {
            fprintf(stderr, "llmfleet status: warning: fleet \"%s\" has no data in this Redis "
                    "(a fleet not used yet, or a typo in --fleet / LLMFLEET_FLEET?)\n", cc.fleet);
            warned = 1;
        }
        if (json) {
            buf b = {0};
            bufAppendStr(&b, "{\"fleet\":");
            bufAppendJsonString(&b, cc.fleet, strlen(cc.fleet));
            jsonFields(&b, v, statusNames, STATUS_COUNT, 1);
            bufAppendStr(&b, ",\"classes\":[");
            for (int k = 0; k < nclass; k++) {
                const char *cv[CSTATUS_COUNT];
                statusClass(rr, k, cv);
                bufAppendStr(&b, k ? ",{" : "{");
                jsonFields(&b, cv, classStatusNames, CSTATUS_COUNT, 0);
                bufAppendStr(&b, "}");
            }
            bufAppendStr(&b, "]}\n");
            fwrite(b.p, 1, b.len, stdout);
            bufFree(&b);
        } else {
            if (watch && tty) printf("\033[H\033[J");
            printStatus(cc.fleet, v, rr, nclass);
            if (atoll(v[STATUS_batches_open]) > 0) batchesPrint(c, &ks, 5);
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
        {"reason", OPT_STR, &reason, 0, "shown by status (pause only)"},
        {NULL, 0, NULL, 0, NULL},
    };
    const char *noReason = reason;
    int r = optParse(cmd, argc, argv, specs, pos, 0, &npos);
    if (r == 1) {
        optUsage(cmd, "[options]", specs);
        return 0;
    }
    if (r < 0) return 2;
    if (resume && reason != noReason) {
        fprintf(stderr, "llmfleet resume: --reason is for pause (a resume has none)\n");
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect(cmd, &cc, &ks);
    if (!c) return cliConnectRc;
    char why[300], kind[8];
    snprintf(why, sizeof(why), "operator: %s", reason);
    const char *v[PA_COUNT];
    size_t vl[PA_COUNT];
    v[PA_KIND] = kind;
    vl[PA_KIND] = fmtLL(kind, resume ? -1 : PAUSE_OPERATOR);
    v[PA_REASON] = why;
    vl[PA_REASON] = strlen(why);
    rdsScriptCall sc = {"pause", &ks, NULL, PA_COUNT, v, vl};
    redisReply *rr = rdsScriptSync(c, &sc);
    int rc = 0;
    if (!rr || rr->type != REDIS_REPLY_ARRAY || rr->elements != 2) {
        fprintf(stderr, "llmfleet %s: %s\n", cmd,
                rr && rr->type == REDIS_REPLY_ERROR ? rr->str : rdsSyncErr(c));
        rc = 1;
    } else if (!resume) {
        fprintf(stderr, "llmfleet pause: fleet %s paused; in-flight requests finish, "
                "jobs stay queued\n", cc.fleet);
    } else {
        int was = (int)rr->element[0]->integer, stopped = (int)rr->element[1]->integer;
        if (!stopped)
            fprintf(stderr, "llmfleet resume: fleet %s %s\n", cc.fleet,
                    was ? "resumed" : "was not paused");
        else
            fprintf(stderr, "llmfleet resume: fleet %s %sstill stopped at its spend cap "
                    "(max_spend_usd): raise or remove the cap to go on\n", cc.fleet,
                    was ? "no longer paused, but " : "was not paused; it is ");
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
    const char *v[] = {n, id};
    size_t vl[] = {fmtLL(n, count), strlen(id)};
    rdsScriptCall sc = {"requeue", ks, NULL, 2, v, vl};
    redisReply *rr = rdsScriptSync(c, &sc);
    int rc = 0;
    if (!rr || rr->type != REDIS_REPLY_ARRAY || rr->elements != 2) {
        fprintf(stderr, "llmfleet dead: %s\n",
                rr && rr->type == REDIS_REPLY_ERROR ? rr->str : rdsSyncErr(c));
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
    if (!c) return cliConnectRc;
    if (requeue) {
        int rc = deadRequeue(c, &ks, count < 0 ? LONG_MAX : count, id);
        redisFree(c);
        return rc;
    }
    if (count < 0) count = 100;
    rdsScriptCall sc = {"purge", &ks, NULL, 0, NULL, NULL};
    redisReply *rr = purge ? rdsScriptSync(c, &sc)
                           : redisCommand(c, "LRANGE %s 0 %ld", ks.name[KEY_DEAD], count - 1);
    int rc = 0;
    if (!rr || rr->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "llmfleet dead: %s\n", rr ? rr->str : rdsSyncErr(c));
        rc = 1;
    } else if (purge) {
        fprintf(stderr, "llmfleet dead: purged %lld dead letter%s\n", rr->integer,
                rr->integer == 1 ? "" : "s");
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

/* ---- retry ------------------------------------------------------------ */

/* Jobs whose result was an error, back to the queue (redo.lua): by id, or
 * every kept one (of an error_type), a page at a time. */
int cliRetry(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    const char *id = "", *etype = "";
    int failed = 0, npos;
    char *pos[1];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"id", OPT_STR, &id, 0, "the job with this id"},
        {"failed", OPT_FLAG, &failed, 0, "every job whose result was an error (kept ones)"},
        {"error-type", OPT_STR, &etype, 0, "with --failed: only those with this error_type"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("retry", argc, argv, specs, pos, 0, &npos);
    if (r == 1) {
        optUsage("retry", "--id ID | --failed [--error-type T]   (run failed jobs again)", specs);
        return 0;
    }
    if (r < 0) return 2;
    if (!!*id == failed) {
        fprintf(stderr, "llmfleet retry: give --id ID or --failed (one of them)\n");
        return 2;
    }
    if (*etype && !failed) {
        fprintf(stderr, "llmfleet retry: --error-type goes with --failed\n");
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("retry", &cc, &ks);
    if (!c) return cliConnectRc;
    long long requeued = 0, skipped = 0, missing = 0, more = 1;
    int rc = 0;
    char cutoff[32] = "";
    while (more && rc == 0) {
        char page[24], skip[24];
        const char *v[] = {id, etype, page, skip, cutoff};
        size_t vl[] = {strlen(id), strlen(etype), fmtLL(page, 1000), fmtLL(skip, skipped),
                       strlen(cutoff)};
        rdsScriptCall sc = {"redo", &ks, NULL, 5, v, vl};
        redisReply *rr = rdsScriptSync(c, &sc);
        if (!rr || rr->type != REDIS_REPLY_ARRAY || rr->elements != 5 ||
            rr->element[4]->type != REDIS_REPLY_STRING) {
            fprintf(stderr, "llmfleet retry: %s\n",
                    rr && rr->type == REDIS_REPLY_ERROR ? rr->str : rdsSyncErr(c));
            rc = 1;
        } else {
            requeued += rr->element[0]->integer;
            skipped += rr->element[1]->integer;
            missing += rr->element[2]->integer;
            more = rr->element[3]->integer;
            snprintf(cutoff, sizeof(cutoff), "%s", rr->element[4]->str);
        }
        if (rr) freeReplyObject(rr);
    }
    redisFree(c);
    if (rc) return rc;
    if (*id && missing) {
        fprintf(stderr, "llmfleet retry: no failed job kept for id %s (its result was ok, "
                "it was retried already, gc dropped it, or it is a dead letter: llmfleet "
                "dead requeue --id)\n", lfQ(id));
        return 1;
    }
    if (*id && skipped) {
        fprintf(stderr, "llmfleet retry: %s has a copy at the API now; not requeued\n", lfQ(id));
        return 1;
    }
    fprintf(stderr, "llmfleet retry: requeued %lld job%s", requeued, requeued == 1 ? "" : "s");
    if (skipped) fprintf(stderr, " (%lld kept job%s left: %s)", skipped, skipped == 1 ? "" : "s",
                         *etype ? "another error_type, or a copy at the API" : "a copy at the API");
    fputc('\n', stderr);
    return 0;
}

/* ---- gc --------------------------------------------------------------- */

/* The fleet's retention (gc.lua), a bounded step per call. */
int cliGc(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    const char *older = NULL;
    int npos;
    char *pos[1];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"older-than", OPT_STR, &older, 0, "forget ids and results older than this (7d, 12h; at least 1h)"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("gc", argc, argv, specs, pos, 0, &npos);
    if (r == 1) {
        optUsage("gc", "--older-than D   (forget done ids, trim results, prune the cache)", specs);
        return 0;
    }
    if (r < 0) return 2;
    long long ms;
    if (!older || parseDuration(older, &ms) < 0 || ms < 3600000) {
        fprintf(stderr, "llmfleet gc: --older-than needs a duration of at least 1h "
                "(e.g. 7d, 36h), got %s\n", older ? lfQ(older) : "nothing");
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("gc", &cc, &ks);
    if (!c) return cliConnectRc;
    long long forgot = 0, kept = 0, trimmed = 0, pruned = 0, more = 1;
    char cursor[64] = "0", last[64] = "";
    int rc = 0;
    while (more && rc == 0) {
        char d[24], n[24];
        const char *v[] = {d, n, last, cursor};
        size_t vl[] = {fmtLL(d, ms), fmtLL(n, 1000), strlen(last), strlen(cursor)};
        rdsScriptCall sc = {"gc", &ks, NULL, 4, v, vl};
        redisReply *rr = rdsScriptSync(c, &sc);
        if (!rr || rr->type != REDIS_REPLY_ARRAY || rr->elements != 7 ||
            rr->element[4]->type != REDIS_REPLY_STRING || rr->element[5]->type != REDIS_REPLY_STRING) {
            fprintf(stderr, "llmfleet gc: %s\n",
                    rr && rr->type == REDIS_REPLY_ERROR ? rr->str : rdsSyncErr(c));
            rc = 1;
        } else {
            forgot += rr->element[0]->integer;
            kept += rr->element[1]->integer;
            trimmed += rr->element[2]->integer;
            pruned += rr->element[3]->integer;
            snprintf(last, sizeof(last), "%s", rr->element[4]->str);
            snprintf(cursor, sizeof(cursor), "%s", rr->element[5]->str);
            more = rr->element[6]->integer;
        }
        if (rr) freeReplyObject(rr);
    }
    redisFree(c);
    if (rc) return rc;
    fprintf(stderr, "llmfleet gc: deleted %lld result%s older than %s, forgot %lld id%s, "
            "pruned %lld expired cache entr%s", trimmed, trimmed == 1 ? "" : "s", older,
            forgot, forgot == 1 ? "" : "s", pruned, pruned == 1 ? "y" : "ies");
    if (kept) fprintf(stderr, "; kept %lld (a copy in flight or waiting for a retry)", kept);
    fputc('\n', stderr);
    return 0;
}

/* ---- functions ---------------------------------------------------------
 * The scripts as one Redis function library per llmfleet version
 * (llmfleet_HASH): workers whose user may FUNCTION LOAD load it at
 * connect; per-fleet users may not (functions are server-wide), so an
 * administrator loads it once per version. Old versions' libraries stay
 * until pruned. */
int cliFunctions(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    int npos;
    char *pos[1];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("functions", argc, argv, specs, pos, 1, &npos);
    if (r == 1) {
        optUsage("functions", "load|list|prune   (this version's Redis function library)", specs);
        return 0;
    }
    if (r < 0) return 2;
    const char *what = npos ? pos[0] : "";
    if (strcmp(what, "load") && strcmp(what, "list") && strcmp(what, "prune")) {
        fprintf(stderr, "llmfleet functions: load, list or prune, got %s\n", lfQ(what));
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("functions", &cc, &ks);
    if (!c) return cliConnectRc;
    int rc = 0;
    if (!strcmp(what, "load")) {
        redisReply *rr = redisCommand(c, "FUNCTION LOAD %s", scriptLibrary);
        if (rr && (rr->type == REDIS_REPLY_STRING ||
                   (rr->type == REDIS_REPLY_ERROR && strstr(rr->str, "already exists")))) {
            printf("%s %s\n", scriptLibraryName,
                   rr->type == REDIS_REPLY_STRING ? "loaded" : "was loaded already");
        } else {
            fprintf(stderr, "llmfleet functions: FUNCTION LOAD refused: %s\n",
                    rr ? rr->str : rdsSyncErr(c));
            rc = 1;
        }
        if (rr) freeReplyObject(rr);
    } else {
        redisReply *rr = redisCommand(c, "FUNCTION LIST LIBRARYNAME llmfleet_*");
        if (!rr || rr->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "llmfleet functions: FUNCTION LIST: %s\n",
                    rr && rr->type == REDIS_REPLY_ERROR ? rr->str : rdsSyncErr(c));
            rc = 1;
        }
        for (size_t i = 0; rc == 0 && i < rr->elements; i++) {
            const redisReply *lib = rr->element[i];
            const char *name = NULL;
            for (size_t j = 0; lib->type == REDIS_REPLY_ARRAY && j + 1 < lib->elements; j += 2)
                if (lib->element[j]->type == REDIS_REPLY_STRING &&
                    !strcmp(lib->element[j]->str, "library_name") &&
                    lib->element[j + 1]->type == REDIS_REPLY_STRING)
                    name = lib->element[j + 1]->str;
            if (!name || strncmp(name, "llmfleet_", 9) != 0) continue;
            int mine = !strcmp(name, scriptLibraryName);
            if (!strcmp(what, "list")) {
                printf("%s%s\n", name, mine ? "  (this version)" : "");
            } else if (!mine) {
                redisReply *d = redisCommand(c, "FUNCTION DELETE %s", name);
                if (d && d->type != REDIS_REPLY_ERROR) {
                    printf("%s deleted\n", name);
                } else {
                    fprintf(stderr, "llmfleet functions: FUNCTION DELETE %s: %s\n", name,
                            d ? d->str : rdsSyncErr(c));
                    rc = 1;
                }
                if (d) freeReplyObject(d);
            }
        }
        if (rr) freeReplyObject(rr);
    }
    redisFree(c);
    return rc;
}
