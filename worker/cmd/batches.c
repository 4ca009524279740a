/* batches.c — `llmfleet batches list|show ID|cancel ID`: the Batch lane's
 * batches as Redis holds them (batch.lua list / cancel). ID: ours (b17)
 * or the API's (msgbatch_...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "cli.h"
#include "keys.h"
#include "opt.h"
#include "rds.h"

/* A batch record's field, "" when absent. */
static const char *field(const redisReply *h, const char *name) {
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1]->str : "";
    return "";
}

/* "processing,succeeded,errored,canceled,expired" as the last poll saw them. */
static void counts(const char *c, long long v[5]) {
    memset(v, 0, 5 * sizeof(v[0]));
    for (int i = 0; i < 5 && c && *c; i++) {
        v[i] = atoll(c);
        c = strchr(c, ',');
        if (c) c++;
    }
}

static void printJson(const char *bid, const redisReply *h, long long due, long long now) {
    buf b = {0};
    bufAppendStr(&b, "{\"batch\":");
    bufAppendJsonString(&b, bid, strlen(bid));
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (strcmp(k, "token") == 0) continue;
        bufAppendStr(&b, ",");
        bufAppendJsonString(&b, k, strlen(k));
        bufAppendStr(&b, ":");
        bufAppendJsonString(&b, v, strlen(v));
    }
    bufPrintf(&b, ",\"next_step_in_ms\":%lld}\n", due - now);
    fwrite(b.p, 1, b.len, stdout);
    bufFree(&b);
}

static void printRow(const char *bid, const redisReply *h, long long due, long long now) {
    long long c[5];
    counts(field(h, "counts"), c);
    long long opened = atoll(field(h, "opened_ms"));
    const char *api = field(h, "api_id");
    printf("%-8s %-34s %-14s %-11s %8s %9lld %8lld %8lld %7llds %7llds%s\n", bid,
           *api ? api : "-", field(h, "class"), field(h, "state"), field(h, "n"), c[1], c[2],
           c[3] + c[4], (now - opened) / 1000, due > now ? (due - now) / 1000 : 0,
           !strcmp(field(h, "cancel"), "1") ? "  cancel asked" : "");
}

static const char *listHeader = "%-8s %-34s %-14s %-11s %8s %9s %8s %8s %8s %8s\n";

/* batch.lua list: {now, [bid, record, due]...}; NULL (err set) when the
 * reply is not one. */
static redisReply *listCall(redisContext *c, const keySet *ks, char *err, size_t errlen) {
    const char *v[] = {"list"};
    size_t vl[] = {4};
    rdsScriptCall sc = {"batch", ks, NULL, 1, v, vl};
    redisReply *rr = rdsScriptSync(c, &sc);
    if (rr && rr->type == REDIS_REPLY_ARRAY && rr->elements == 2 &&
        rr->element[1]->type == REDIS_REPLY_ARRAY)
        return rr;
    snprintf(err, errlen, "%s", rr && rr->type == REDIS_REPLY_ERROR ? rr->str : rdsSyncErr(c));
    if (rr) freeReplyObject(rr);
    return NULL;
}

void batchesPrint(redisContext *c, const keySet *ks, int max) {
    char err[300];
    redisReply *rr = listCall(c, ks, err, sizeof(err));
    if (!rr) return;
    long long now = rr->element[0]->integer;
    const redisReply *all = rr->element[1];
    printf("  batches (llmfleet batches):\n  ");
    printf(listHeader, "BATCH", "API ID", "CLASS", "STATE", "REQUESTS", "SUCCEEDED", "ERRORED",
           "ENDED", "AGE", "NEXT");
    int k = 0;
    for (size_t i = 0; i + 2 < all->elements; i += 3) {
        const redisReply *h = all->element[i + 1];
        if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) continue;
        if (k++ == max) {
            printf("  ... %zu in all\n", all->elements / 3);
            break;
        }
        printf("  ");
        printRow(all->element[i]->str, h, atoll(all->element[i + 2]->str), now);
    }
    freeReplyObject(rr);
}

int cliBatches(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    int json = 0, npos;
    char *pos[2];
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {"json", OPT_FLAG, &json, 0, "one JSON object a batch"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("batches", argc, argv, specs, pos, 2, &npos);
    if (r == 1) {
        optUsage("batches", "list | show ID | cancel ID   (ID: b17 or the API's msgbatch_...)",
                 specs);
        return 0;
    }
    if (r < 0) return 2;
    const char *op = npos ? pos[0] : "list";
    int list = !strcmp(op, "list"), show = !strcmp(op, "show"), cancel = !strcmp(op, "cancel");
    if ((!list && !show && !cancel) || (list && npos > 1) || ((show || cancel) && npos != 2)) {
        fprintf(stderr, "llmfleet batches: list | show ID | cancel ID\n");
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("batches", &cc, &ks);
    if (!c) return cliConnectRc;
    int rc = 0;
    if (cancel) {
        const char *v[] = {"cancel", pos[1]};
        size_t vl[] = {6, strlen(pos[1])};
        rdsScriptCall sc = {"batch", &ks, NULL, 2, v, vl};
        redisReply *rr = rdsScriptSync(c, &sc);
        if (!rr || rr->type != REDIS_REPLY_INTEGER) {
            fprintf(stderr, "llmfleet batches: %s\n", rr && rr->type == REDIS_REPLY_ERROR
                    ? rr->str : rdsSyncErr(c));
            rc = 1;
        } else if (rr->integer == 0) {
            fprintf(stderr, "llmfleet batches: no batch \"%s\" in fleet %s\n", pos[1], cc.fleet);
            rc = 1;
        } else {
            fprintf(stderr, "llmfleet batches: cancel of %s asked: a worker cancels it at the "
                    "API; its jobs that did not run come back to the queue\n", pos[1]);
        }
        if (rr) freeReplyObject(rr);
        redisFree(c);
        return rc;
    }
    char err[300];
    redisReply *rr = listCall(c, &ks, err, sizeof(err));
    if (!rr) {
        fprintf(stderr, "llmfleet batches: %s\n", err);
        redisFree(c);
        return 1;
    }
    long long now = rr->element[0]->integer;
    const redisReply *all = rr->element[1];
    int found = 0;
    if (list && !json)
        printf(listHeader, "BATCH", "API ID", "CLASS", "STATE", "REQUESTS", "SUCCEEDED",
               "ERRORED", "ENDED", "AGE", "NEXT");
    for (size_t i = 0; i + 2 < all->elements; i += 3) {
        const char *bid = all->element[i]->str;
        const redisReply *h = all->element[i + 1];
        long long due = atoll(all->element[i + 2]->str);
        if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) continue;
        if (show && strcmp(bid, pos[1]) != 0 && strcmp(field(h, "api_id"), pos[1]) != 0) continue;
        found++;
        if (json || show) printJson(bid, h, due, now);
        else printRow(bid, h, due, now);
    }
    if (show && !found) {
        fprintf(stderr, "llmfleet batches: no open batch \"%s\" in fleet %s (a finished "
                "batch's results are in the results stream, batch_id)\n", pos[1], cc.fleet);
        rc = 1;
    }
    freeReplyObject(rr);
    redisFree(c);
    return rc;
}
