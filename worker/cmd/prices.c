/* prices.c — `llmfleet prices`: the fleet's one price table (prices.lua).
 *
 *   show                      every model in force, built-in or the fleet's
 *   set MODEL IN C5M C1H CR OUT   add or change one model (USD per MTok)
 *   unset MODEL...            back to the built-in price (or none)
 *   load FILE                 a price file (as priceLoadFile reads it), all
 *                             of it or nothing
 *   reset                     the built-in table only
 *
 * Every worker reloads the table when its version changes: admission holds
 * a worker's jobs until it has, so the spend cap's reservations and the
 * results' costs come from one table fleet-wide. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cli.h"
#include "keys.h"
#include "opt.h"
#include "price.h"
#include "rds.h"

/* Values of prices.lua set: "IN C5M C1H CR OUT" per model. */
typedef struct setList {
    const char **v;
    size_t *vl;
    int n, cap;
    char (*vals)[200];
} setList;

static void collect(const char *model, const price *p, int builtin, void *arg) {
    setList *s = arg;
    char line[400];
    if (builtin || s->n + 2 > s->cap) return;
    priceFormatLine(model, p, line, sizeof(line));
    char *val = s->vals[s->n / 2];
    snprintf(val, 200, "%s", line + strlen(model) + 1);
    s->v[s->n] = model, s->vl[s->n++] = strlen(model);
    s->v[s->n] = val, s->vl[s->n++] = strlen(val);
}

static void show(const char *model, const price *p, int builtin, void *arg) {
    char line[400];
    (void)arg;
    priceFormatLine(model, p, line, sizeof(line));
    printf("%s%s\n", line, builtin ? "" : "   (fleet)");
}

/* The fleet's entries into this process's table. Returns the version. */
static int fetch(redisContext *c, const keySet *ks, long long *ver) {
    const char *v[] = {"get"};
    size_t vl[] = {3};
    rdsScriptCall sc = {"prices", ks, NULL, 1, v, vl};
    redisReply *r = rdsScriptSync(c, &sc);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        fprintf(stderr, "llmfleet prices: %s\n",
                r && r->type == REDIS_REPLY_ERROR ? r->str : rdsSyncErr(c));
        if (r) freeReplyObject(r);
        return -1;
    }
    *ver = atoll(r->element[0]->str);
    for (size_t i = 1; i + 1 < r->elements; i += 2) {
        char line[512], model[160], err[300];
        price p;
        snprintf(line, sizeof(line), "%s %s", r->element[i]->str, r->element[i + 1]->str);
        if (priceParseLine(line, model, sizeof(model), &p, err, sizeof(err)) == 0)
            priceAdd(model, &p);
        else
            fprintf(stderr, "llmfleet prices: fleet entry %s ignored: %s\n",
                    r->element[i]->str, err);
    }
    freeReplyObject(r);
    return 0;
}

static int change(redisContext *c, const keySet *ks, int argc, const char **v) {
    size_t *vl = malloc(sizeof(size_t) * (size_t)argc);
    if (!vl) abort();
    for (int i = 0; i < argc; i++) vl[i] = strlen(v[i]);
    rdsScriptCall sc = {"prices", ks, NULL, argc, v, vl};
    redisReply *r = rdsScriptSync(c, &sc);
    free(vl);
    int rc = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "llmfleet prices: %s\n",
                r && r->type == REDIS_REPLY_ERROR ? r->str : rdsSyncErr(c));
        rc = 1;
    } else {
        fprintf(stderr, "llmfleet prices: fleet price table version %s\n",
                r->element[0]->str);
    }
    if (r) freeReplyObject(r);
    return rc;
}

int cliPrices(const cliCommon *cc0, int argc, char **argv) {
    cliCommon cc = *cc0;
    char *pos[128];
    int npos;
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cc.redis_url, 0, "Redis URL"},
        {"fleet", OPT_STR, &cc.fleet, 0, "fleet name"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("prices", argc, argv, specs, pos, 128, &npos);
    if (r == 1 || (r == 0 && npos == 0)) {
        optUsage("prices", "show | set MODEL INPUT CACHE_5M CACHE_1H CACHE_READ OUTPUT"
                 " | unset MODEL... | load FILE | reset   (USD per million tokens)", specs);
        return r == 1 ? 0 : 2;
    }
    if (r < 0) return 2;
    const char *op = pos[0];
    char err[400], model[160], line[1024] = "";
    price p;
    /* Validate before connecting. */
    if (strcmp(op, "set") == 0) {
        for (int i = 1; i < npos; i++)
            snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s ", pos[i]);
        if (priceParseLine(line, model, sizeof(model), &p, err, sizeof(err)) < 0) {
            fprintf(stderr, "llmfleet prices set: %s\n", err);
            return 2;
        }
    } else if (strcmp(op, "load") == 0) {
        if (npos != 2) {
            fprintf(stderr, "llmfleet prices load: give one FILE\n");
            return 2;
        }
        if (priceLoadFile(pos[1], err, sizeof(err)) < 0) {
            fprintf(stderr, "llmfleet prices load: %s\n", err);
            return 2;
        }
    } else if (strcmp(op, "unset") == 0 ? npos < 2
               : strcmp(op, "show") != 0 && strcmp(op, "reset") != 0) {
        fprintf(stderr, "llmfleet prices: expected show, set, unset MODEL..., load "
                "FILE or reset, got \"%s\"\n", op);
        return 2;
    }
    keySet ks;
    redisContext *c = cliConnect("prices", &cc, &ks);
    if (!c) return cliConnectRc;
    int rc = 0;
    if (strcmp(op, "show") == 0) {
        long long ver;
        if (fetch(c, &ks, &ver) < 0) rc = 1;
        else {
            printf("# MODEL INPUT CACHE_WRITE_5M CACHE_WRITE_1H CACHE_READ OUTPUT "
                   "(USD per MTok); fleet table version %lld\n", ver);
            priceEach(show, NULL);
        }
    } else if (strcmp(op, "set") == 0 || strcmp(op, "load") == 0) {
        if (strcmp(op, "set") == 0) priceAdd(model, &p);
        setList s = {0};
        s.cap = 2 * 4096 + 1;
        s.v = malloc(sizeof(char *) * (size_t)s.cap);
        s.vl = malloc(sizeof(size_t) * (size_t)s.cap);
        s.vals = malloc(sizeof(*s.vals) * 4096);
        if (!s.v || !s.vl || !s.vals) abort();
        s.v[s.n] = "set", s.vl[s.n++] = 3;
        priceEach(collect, &s);
        rc = change(c, &ks, s.n, s.v);
        free(s.v);
        free(s.vl);
        free(s.vals);
    } else {
        pos[0] = strcmp(op, "unset") == 0 ? "del" : "reset";
        rc = change(c, &ks, npos, (const char **)pos);
    }
    redisFree(c);
    return rc;
}
