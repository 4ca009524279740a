/* rds.c — Redis connections for the worker and the subcommands (rds.h).
 *
 * Not here: what the scripts do (scripts/lua) or when they are called
 * (worker.c). This file only moves calls and replies, and survives Redis
 * going away and coming back. */
#include "rds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "log.h"
#include "mono.h"
#include "scripts.h"

#define RDS_MAX_SCRIPTS 16
#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000

struct rds {
    struct event_base *base;
    rurl url;                       /* where to connect (holds secrets) */
    redisAsyncContext *ac;              /* NULL while disconnected */
    int ready;                          /* connected and set up */
    int closing;                        /* rdsFree() in progress */
    struct event *retry;                /* reconnect timer */
    long backoff_ms;                    /* next reconnect delay */
    rdsReadyProc *onready;
    void *priv;
    char sha[RDS_MAX_SCRIPTS][41];      /* loaded SHA per script, "" unknown */
    int no_fn;                          /* no function library here: EVALSHA */
    char load_refused[200];             /* FUNCTION LOAD's refusal ("" none) */
    int outstanding;                    /* calls sent, not answered */
    long long wait_since;               /* ms (mono): last reply, or first call sent */
    long long reply_at;                 /* ms (mono): the last reply (0 none) */
    long long rtt_avg_us;               /* round trips' moving average */
    long long rtt_low_us;               /* ... their low end: the link's own */
    struct event *deadline;             /* the reply deadline's check, every second */
    rdsStats stats;
    int moving;                         /* MOVED: reconnecting to the new owner */
    long penalty_ms;                    /* READONLY/not master: next backoff */
    int migrating_said;                 /* ASK/TRYAGAIN logged once per connection */
};

/* One in-flight call: a copy of its arguments, kept for a NOSCRIPT resend.
 * A script call may have a follower (rdsScriptThen): a read sent right
 * behind it, whose answer only counts when it ran after the script. */
typedef struct rdsCall {
    rds *c;
    int script;                         /* index in scriptSources, -1 plain */
    int as_fn;                          /* sent as FCALL */
    int resends;                        /* sent again for a missing script */
    int argc;
    const char **argv;
    size_t *argvlen;
    rdsCallback *cb;
    void *priv;
    char *data;                         /* all argument bytes */
    struct rdsCall *then;               /* the follower, until this answers */
    int stale;                          /* follower: answers to drop first */
    int orphan;                         /* follower: its script never ran */
    long long t_sent_us;                /* when it was (last) sent (mono) */
} rdsCall;

int rdsBusyReply(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ERROR &&
           (!strncmp(r->str, "LOADING ", 8) || !strncmp(r->str, "BUSY ", 5) ||
            !strncmp(r->str, "MASTERDOWN ", 11));
}

static void rdsConnect(rds *c);

/* ---- Sentinel ---------------------------------------------------------- */

/* redis+sentinel://: ask the Sentinels in turn for the master's address
 * (SENTINEL get-master-addr-by-name), 0.5 s each; the answer goes into u's
 * host and port. LLMFLEET_SENTINEL_PASSWORD authenticates to Sentinels
 * that require one. Returns 0, or -1 with err. Blocking: called at
 * (re)connect only. */
static int sentinelResolve(rurl *u, char *err, size_t errlen) {
    const char *spass = getenv("LLMFLEET_SENTINEL_PASSWORD");
    struct timeval tv = {0, 500000};
    snprintf(err, errlen, "no Sentinel answered for master %s", u->master);
    for (int i = 0; i < u->sentinels; i++) {
        redisContext *sc = redisConnectWithTimeout(u->sentinel[i].host, u->sentinel[i].port, tv);
        redisReply *r = NULL;
        if (!sc || sc->err || redisSetTimeout(sc, tv) != REDIS_OK) goto next;
        if (spass && *spass) {
            r = redisCommand(sc, "AUTH %s", spass);
            if (!r || r->type == REDIS_REPLY_ERROR) goto next;
            freeReplyObject(r);
        }
        r = redisCommand(sc, "SENTINEL get-master-addr-by-name %s", u->master);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
            r->element[0]->len < sizeof(u->host)) {
            memcpy(u->host, r->element[0]->str, r->element[0]->len + 1);
            u->port = atoi(r->element[1]->str);
            freeReplyObject(r);
            redisFree(sc);
            return 0;
        }
        if (r && r->type == REDIS_REPLY_NIL)
            snprintf(err, errlen, "Sentinel %s:%d does not know master %s", u->sentinel[i].host,
                     u->sentinel[i].port, u->master);
    next:
        if (r) freeReplyObject(r);
        if (sc) redisFree(sc);
        r = NULL;
    }
    return -1;
}

/* ---- Calls ------------------------------------------------------------ */

static rdsCall *callNew(rds *c, int script, int argc, const char **argv,
                        const size_t *argvlen, rdsCallback *cb, void *priv) {
    size_t total = 0;
    for (int i = 0; i < argc; i++) total += argvlen[i];
    rdsCall *k = calloc(1, sizeof(*k));
    if (!k) abort();
    k->argv = malloc(sizeof(char *) * (size_t)argc);
    k->argvlen = malloc(sizeof(size_t) * (size_t)argc);
    k->data = malloc(total ? total : 1);
    if (!k->argv || !k->argvlen || !k->data) abort();
    char *p = k->data;
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        k->argv[i] = p;
        k->argvlen[i] = argvlen[i];
        p += argvlen[i];
    }
    k->c = c;
    k->script = script;
    k->argc = argc;
    k->cb = cb;
    k->priv = priv;
    return k;
}

static void callFree(rdsCall *k) {
    free(k->argv);
    free(k->argvlen);
    free(k->data);
    free(k);
}

static void callReply(redisAsyncContext *ac, void *r, void *priv);
static void onScriptLoaded(redisAsyncContext *ac, void *r, void *priv);
static void onLibraryLoaded(redisAsyncContext *ac, void *r, void *priv);

/* Send k: scripts go as FCALL of their function in the fleet's library
 * (loaded at connect: the libraries' prelude ran once, at load), or where
 * there is none (Redis before 7.0, a user without FUNCTION LOAD) as
 * EVALSHA when the SHA is known, else EVAL (which also caches the script
 * in Redis). argv[0..1] are reserved for that. */
static int callSend(rdsCall *k, int as_eval) {
    rds *c = k->c;
    if (!c->ac || !c->ready) return -1;
    if (k->script >= 0) {
        const scriptSource *s = &scriptSources[k->script];
        k->as_fn = !as_eval && !c->no_fn;
        if (k->as_fn) {
            k->argv[0] = "FCALL";
            k->argv[1] = s->fn;
            k->argvlen[1] = strlen(s->fn);
        } else if (as_eval || c->sha[k->script][0] == '\0') {
            k->argv[0] = "EVAL";
            k->argv[1] = s->src;
            k->argvlen[1] = strlen(s->src);
        } else {
            k->argv[0] = "EVALSHA";
            k->argv[1] = c->sha[k->script];
            k->argvlen[1] = 40;
        }
        k->argvlen[0] = strlen(k->argv[0]);
    }
    if (redisAsyncCommandArgv(c->ac, callReply, k, k->argc, k->argv,
                              k->argvlen) != REDIS_OK)
        return -1;
    if (c->outstanding++ == 0) c->wait_since = monoMs();
    k->t_sent_us = monoUs();
    return 0;
}

/* The library, loaded again (a FUNCTION FLUSH, a node that lacks it). */
static void libraryLoad(rds *c) {
    redisAsyncCommand(c->ac, onLibraryLoaded, NULL, "FUNCTION LOAD %s", scriptLibrary);
}

/* An FCALL whose function is not there: Function not found (flushed, or
 * the load failed), NOPERM (a user without FCALL), unknown command (Redis
 * before 7.0). The script did not run. */
static int fnMissing(const redisReply *r) {
    return r && r->type == REDIS_REPLY_ERROR &&
           (!strncmp(r->str, "ERR Function not found", 22) ||
            (!strncmp(r->str, "NOPERM", 6) && strstr(r->str, "'fcall'")) ||
            !strncmp(r->str, "ERR unknown command", 19));
}

/* NOSCRIPT, or a missing function: send k again (and its follower again
 * behind it): as FCALL once, after loading the library again, when the
 * library should be there; else as EVAL. Returns 0 when resent. */
static int callResend(rdsCall *k) {
    static int said;
    rds *c = k->c;
    int as_eval = 1;
    if (k->as_fn && !c->no_fn && !c->load_refused[0] && k->resends++ == 0) {
        lfLog(LF_INFO, "event=script_reload script=%s reason=function_missing",
              scriptSources[k->script].name);
        libraryLoad(c);
        as_eval = 0;
    } else {
        if (k->as_fn && !c->no_fn) {
            /* No library, and this user may not load it (or this Redis has
             * no functions): EVALSHA on this connection, said once. */
            if (!said++)
                lfLog(LF_WARN, "event=redis_functions_unavailable error=%s action=evalsha "
                      "hint=\"run the scripts as functions (each call skips the libraries' "
                      "prelude): Redis 7.0+, and +fcall +function|load for the worker's user or "
                      "llmfleet functions load by an administrator (README: ACL)\"",
                      lfQ(c->load_refused[0] ? c->load_refused : "no function library"));
            c->no_fn = 1;
            for (long i = 0; scriptSources[i].name && i < RDS_MAX_SCRIPTS; i++)
                if (i != k->script)
                    redisAsyncCommand(c->ac, onScriptLoaded, (void *)(intptr_t)i,
                                      "SCRIPT LOAD %s", scriptSources[i].src);
        }
        if (c->sha[k->script][0])
            lfLog(LF_INFO, "event=script_reload script=%s reason=NOSCRIPT",
                  scriptSources[k->script].name);
        c->sha[k->script][0] = '\0';
        /* Relearn the SHA so that later calls are EVALSHA again. */
        redisAsyncCommand(c->ac, onScriptLoaded, (void *)(intptr_t)k->script,
                          "SCRIPT LOAD %s", scriptSources[k->script].src);
    }
    if (callSend(k, as_eval) < 0) return -1;
    if (k->then) {
        lfLog(LF_INFO, "event=read_again script=%s reason=\"the script ran after "
              "its read (sent again)\"", scriptSources[k->script].name);
        if (callSend(k->then, 0) == 0) k->then->stale++;
        else k->then->orphan = 1;
    }
    return 0;
}

/* "MOVED SLOT HOST:PORT" (Redis Cluster): the new address into u (TCP,
 * credentials and db kept). Returns 0, or -1 when reply is not one. */
int rdsParseMoved(const char *reply, rurl *u) {
    if (strncmp(reply, "MOVED ", 6) != 0) return -1;
    const char *addr = strchr(reply + 6, ' ');
    if (!addr) return -1;
    addr++;
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(u->host)) return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (port <= 0 || port > 65535 || (*end && *end != ' ')) return -1;
    size_t hl = (size_t)(colon - addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') addr++, hl -= 2;
    /* An empty host (cluster-preferred-endpoint-type unknown-endpoint):
     * the node we asked, another port. */
    if (hl > 0) {
        memcpy(u->host, addr, hl);
        u->host[hl] = '\0';
    }
    u->port = (int)port;
    u->is_unix = 0;
    return 0;
}

/* A node that cannot take our writes (a replica, a demoted master): the
 * reconnect backs off more each time until a call succeeds, instead of
 * the connect-time reset (no tight loop of connects and SCRIPT LOADs). */
static void penalize(rds *c) {
    c->penalty_ms = c->penalty_ms ? c->penalty_ms * 2 : RDS_BACKOFF_MIN_MS;
    if (c->penalty_ms > RDS_BACKOFF_MAX_MS) c->penalty_ms = RDS_BACKOFF_MAX_MS;
    c->backoff_ms = c->penalty_ms;
}

/* Redis Cluster: the fleet's slot is served elsewhere (MOVED: reconnect
 * there at once; every call in flight gets the same answer), or it is
 * being migrated (ASK, TRYAGAIN: a multi-key call cannot run until the
 * move ends) or the cluster is down. None of them ran the call: callers
 * see a failed call (NULL) and try again, as after a lost connection.
 * Returns 1 when reply is one of these. */
static int clusterRedirect(rds *c, const redisReply *reply) {
    if (!reply || reply->type != REDIS_REPLY_ERROR) return 0;
    if (strncmp(reply->str, "MOVED ", 6) == 0) {
        rurl to = c->url;
        if (rdsParseMoved(reply->str, &to) == 0 && !c->moving) {
            char where[300];
            rurlDescribe(&to, where, sizeof(where));
            lfLog(LF_INFO, "event=redis_moved to=%s reply=%s", lfQ(where), lfQ(reply->str));
            c->url = to;
            c->moving = 1;
            c->backoff_ms = 0;          /* reconnect at once */
            if (c->ac) redisAsyncDisconnect(c->ac);
        }
        return 1;
    }
    if (strncmp(reply->str, "READONLY", 8) == 0) {
        /* A replica (a failover happened, or the URL names one): drop the
         * connection; a Sentinel URL resolves the master again. */
        if (!c->moving) {
            penalize(c);
            lfLog(LF_WARN, "event=redis_readonly action=reconnect retry_ms=%ld%s",
                  c->backoff_ms, c->url.sentinels ? " resolve=sentinel" : "");
            c->moving = 1;
            if (c->ac) redisAsyncDisconnect(c->ac);
        }
        return 1;
    }
    if (strncmp(reply->str, "ASK ", 4) == 0 || strncmp(reply->str, "TRYAGAIN", 8) == 0 ||
        strncmp(reply->str, "CLUSTERDOWN", 11) == 0) {
        if (!c->migrating_said) {
            lfLog(LF_WARN, "event=redis_slot_busy reply=%s action=retry", lfQ(reply->str));
            c->migrating_said = 1;
        }
        return 1;
    }
    return 0;
}

static void callReply(redisAsyncContext *ac, void *r, void *priv) {
    rdsCall *k = priv;
    redisReply *reply = r;
    (void)ac;
    if (k->c->outstanding > 0) k->c->outstanding--;
    k->c->wait_since = k->c->reply_at = monoMs();
    if (reply) {
        long long us = monoUs() - k->t_sent_us;
        histAdd(&k->c->stats.rtt, us);
        k->c->rtt_avg_us = k->c->rtt_avg_us ? (7 * k->c->rtt_avg_us + us) / 8 : us;
        /* The low end creeps up slowly: a busy Redis's queueing does not
         * move it, a farther link does. */
        if (!k->c->rtt_low_us || us < k->c->rtt_low_us) k->c->rtt_low_us = us;
        else k->c->rtt_low_us += (us - k->c->rtt_low_us) / 256;
    }
    if (k->stale > 0) {                 /* ran before its script: drop */
        k->stale--;
        return;
    }
    if (reply && reply->type != REDIS_REPLY_ERROR) k->c->penalty_ms = 0;
    if (clusterRedirect(k->c, reply)) {
        reply = NULL;
        if (k->then) k->then->orphan = 1;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && k->script >= 0 &&
        (strncmp(reply->str, "NOSCRIPT", 8) == 0 || (k->as_fn && fnMissing(reply)))) {
        if (callResend(k) == 0) return;
        reply = NULL;
        if (k->then) k->then->orphan = 1;
    }
    /* A script's error is a bug or a broken Redis: logged here. A plain
     * command's goes to its caller, which knows what it means. */
    if (reply && reply->type == REDIS_REPLY_ERROR && k->script >= 0) {
        /* A protocol error: Redis refused the call itself (an argument
         * past proto-max-bulk-len) and closes the connection; the script
         * never ran. Anything else is the script's own error. */
        if (strncmp(reply->str, "ERR Protocol error", 18) == 0)
            lfLog(LF_WARN, "event=redis_refused_call script=%s error=%s",
                  scriptSources[k->script].name, lfQ(reply->str));
        /* Out of memory (maxmemory, noeviction): Redis refuses a script's
         * first write only, never one after it, so nothing was written. */
        else if (strncmp(reply->str, "OOM ", 4) == 0)
            lfLog(LF_WARN, "event=redis_oom script=%s error=%s",
                  scriptSources[k->script].name, lfQ(reply->str));
        /* Not serving scripts now (loading its data after a restart,
         * another script running, a replica cut off from its master):
         * refused before running, nothing written; the caller retries. */
        else if (rdsBusyReply(reply))
            lfLog(LF_WARN, "event=redis_unavailable script=%s error=%s",
                  scriptSources[k->script].name, lfQ(reply->str));
        else
            lfLog(LF_WARN, "event=redis_error script=%s error=%s",
                  scriptSources[k->script].name, lfQ(reply->str));
    }
    k->cb(k->c, k->orphan ? NULL : reply, k->priv);
    rdsCall *t = k->then;
    if (t && t->stale < 0) {            /* the read never went out */
        t->cb(t->c, NULL, t->priv);
        callFree(t);
    }
    callFree(k);
}

static int scriptIndex(const char *name) {
    for (int i = 0; scriptSources[i].name; i++)
        if (strcmp(scriptSources[i].name, name) == 0)
            return i < RDS_MAX_SCRIPTS ? i : -1;
    return -1;
}

/* The argument vector of a script call: EVAL, (script), numkeys, keys,
 * args. argv[1] is filled at send time; the caller frees v and vl. */
static int scriptArgv(const rdsScriptCall *sc, const char ***v, size_t **vl,
                      char *nk, size_t nklen) {
    int nkeys = KEY_COUNT + (sc->extra_key != NULL);
    int argc = 3 + nkeys + sc->nargs;
    *v = malloc(sizeof(char *) * (size_t)argc);
    *vl = malloc(sizeof(size_t) * (size_t)argc);
    if (!*v || !*vl) abort();
    (*v)[0] = "EVAL", (*vl)[0] = 4;
    (*v)[1] = "", (*vl)[1] = 0;
    (*vl)[2] = (size_t)snprintf(nk, nklen, "%d", nkeys);
    (*v)[2] = nk;
    int i = 3;
    for (int k = 0; k < KEY_COUNT; k++, i++)
        (*v)[i] = sc->keys->argv[k], (*vl)[i] = strlen(sc->keys->argv[k]);
    if (sc->extra_key) (*v)[i] = sc->extra_key, (*vl)[i++] = strlen(sc->extra_key);
    for (int k = 0; k < sc->nargs; k++, i++) (*v)[i] = sc->argv[k], (*vl)[i] = sc->argvlen[k];
    return argc;
}

static rdsCall *scriptCallNew(rds *c, const rdsScriptCall *sc, rdsCallback *cb,
                              void *priv) {
    int script = scriptIndex(sc->name);
    if (script < 0) {
        lfLog(LF_ERROR, "event=bug unknown_script=%s", sc->name);
        abort();
    }
    const char **v;
    size_t *vl;
    char nk[16];
    int argc = scriptArgv(sc, &v, &vl, nk, sizeof(nk));
    rdsCall *k = callNew(c, script, argc, v, vl, cb, priv);
    free(v);
    free(vl);
    return k;
}

int rdsScript(rds *c, const rdsScriptCall *sc, rdsCallback *cb, void *priv) {
    if (!c->ready) return -1;
    rdsCall *k = scriptCallNew(c, sc, cb, priv);
    if (callSend(k, 0) < 0) {
        callFree(k);
        return -1;
    }
    return 0;
}

int rdsScriptThen(rds *c, const rdsScriptCall *sc, rdsCallback *cb, void *priv,
                  int rargc, const char **rargv, const size_t *rargvlen,
                  rdsCallback *rcb, void *rpriv) {
    if (!c->ready) return -1;
    rdsCall *k = scriptCallNew(c, sc, cb, priv);
    rdsCall *t = callNew(c, -1, rargc, rargv, rargvlen, rcb, rpriv);
    if (callSend(k, 0) < 0) {
        callFree(k);
        callFree(t);
        return -1;
    }
    k->then = t;
    /* Sending right behind a sent call fails only when the context is
     * going away: then the read's answer is NULL, after the script's. */
    if (callSend(t, 0) < 0) {
        t->orphan = 1;
        t->stale = -1;
    }
    return 0;
}

int rdsCommand(rds *c, int argc, const char **argv, const size_t *argvlen,
               rdsCallback *cb, void *priv) {
    if (!c->ready) return -1;
    rdsCall *k = callNew(c, -1, argc, argv, argvlen, cb, priv);
    if (callSend(k, 0) < 0) {
        callFree(k);
        return -1;
    }
    return 0;
}

/* ---- Connection ------------------------------------------------------- */

static void onScriptLoaded(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    rds *c = ac->data;
    long idx = (long)(intptr_t)priv;
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len == 40)
        memcpy(c->sha[idx], reply->str, 41);
}

/* FUNCTION LOAD's answer: the library's name, or that it is there already
 * (another worker of this build loaded it). Refused for good (a user
 * without FUNCTION LOAD, Redis before 7.0): remembered; the library may
 * still be there (an administrator's `llmfleet functions load`), and the
 * first call that finds no function goes to EVALSHA for good
 * (callResend). A passing refusal (a replica's READONLY, LOADING, OOM,
 * BUSY) changes nothing: a call that finds no function loads it again. */
static void onLibraryLoaded(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    rds *c = ac->data;
    (void)priv;
    if (!reply || reply->type != REDIS_REPLY_ERROR || strstr(reply->str, "already exists") ||
        !strncmp(reply->str, "READONLY", 8) || !strncmp(reply->str, "LOADING", 7) ||
        !strncmp(reply->str, "OOM", 3) || !strncmp(reply->str, "BUSY", 4) ||
        !strncmp(reply->str, "MASTERDOWN", 10))
        return;
    snprintf(c->load_refused, sizeof(c->load_refused), "%s", reply->str);
}

static void onSetupReply(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        /* Without AUTH or SELECT every later call would fail: start over. */
        lfLog(LF_ERROR, "event=redis_setup_failed step=%s error=%s",
              (const char *)priv, lfQ(reply->str));
        ((rds *)ac->data)->ready = 0;
        redisAsyncDisconnect(ac);
    }
}

/* Sentinel URLs: what the Sentinels named must be a master now (a stale
 * answer during a failover names the old one). */
static void onRole(redisAsyncContext *ac, void *r, void *priv) {
    redisReply *reply = r;
    rds *c = ac->data;
    (void)priv;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING) return;
    if (strcmp(reply->element[0]->str, "master") == 0) return;
    penalize(c);
    lfLog(LF_WARN, "event=redis_not_master role=%s action=resolve_again retry_ms=%ld",
          lfQ(reply->element[0]->str), c->backoff_ms);
    c->ready = 0;
    redisAsyncDisconnect(ac);
}

static void scheduleReconnect(rds *c) {
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    if (c->closing) return;
    evtimer_add(c->retry, &tv);
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : RDS_BACKOFF_MIN_MS;
    if (c->backoff_ms > RDS_BACKOFF_MAX_MS) c->backoff_ms = RDS_BACKOFF_MAX_MS;
}

static void onConnect(const redisAsyncContext *ac, int status) {
    rds *c = ac->data;
    if (status != REDIS_OK) {
        lfLog(LF_WARN, "event=redis_connect_failed error=%s retry_ms=%ld",
              lfQ(ac->errstr), c->backoff_ms);
        c->ac = NULL;           /* hiredis frees it after this callback */
        scheduleReconnect(c);
        return;
    }
    redisAsyncContext *a = c->ac;
    if (c->url.pass[0]) {
        if (c->url.user[0])
            redisAsyncCommand(a, onSetupReply, "AUTH", "AUTH %s %s",
                              c->url.user, c->url.pass);
        else
            redisAsyncCommand(a, onSetupReply, "AUTH", "AUTH %s", c->url.pass);
    }
    if (c->url.db) redisAsyncCommand(a, onSetupReply, "SELECT", "SELECT %d", c->url.db);
    /* The scripts as one function library: the calls go as FCALL (as
     * EVALSHA if Redis refuses it: onLibraryLoaded). */
    c->no_fn = 0;
    c->load_refused[0] = '\0';
    memset(c->sha, 0, sizeof(c->sha));
    libraryLoad(c);
    if (c->url.sentinels) redisAsyncCommand(a, onRole, NULL, "ROLE");
    c->ready = 1;
    c->backoff_ms = c->penalty_ms ? c->penalty_ms : RDS_BACKOFF_MIN_MS;
    c->outstanding = 0;
    /* A silent peer (a partition that drops packets) is found by the reply
     * deadline; keepalive also ends a connection idle through one. */
    redisEnableKeepAlive((redisContext *)&a->c);
    lfLog(LF_INFO, "event=redis_connected");
    c->stats.connects++;
    c->moving = 0;
    c->migrating_said = 0;
    if (c->onready) c->onready(c, c->priv);
}

static void onDisconnect(const redisAsyncContext *ac, int status) {
    rds *c = ac->data;
    c->ac = NULL;
    c->ready = 0;
    c->outstanding = 0;
    if (c->closing) return;
    c->stats.disconnects++;
    if (c->moving)              /* MOVED: said already, on to the new owner */
        lfLog(LF_INFO, "event=redis_disconnected error=%s reason=moved",
              lfQ(status == REDIS_OK ? "closed" : ac->errstr));
    else
        lfLog(LF_WARN, "event=redis_disconnected error=%s",
              lfQ(status == REDIS_OK ? "closed" : ac->errstr));
    scheduleReconnect(c);
}

/* The reply deadline: calls outstanding and no reply for the reply timeout
 * (LLMFLEET_REDIS_TIMEOUT_MS, 10 s): Redis is gone without a word (a
 * partition dropping packets, a host that died). Drop the connection: the
 * calls' callbacks get NULL (settles are sent again, fenced) and the usual
 * reconnect follows, instead of waiting for the kernel's TCP timeout. */
static void onDeadline(evutil_socket_t fd, short what, void *arg) {
    rds *c = arg;
    (void)fd; (void)what;
    long long silent = monoMs() - c->wait_since;
    if (!c->ac || !c->ready || c->outstanding == 0 || silent < rdsSyncTimeoutMs()) return;
    lfLog(LF_WARN, "event=redis_reply_deadline silent_ms=%lld calls=%d action=reconnect",
          silent, c->outstanding);
    redisAsyncContext *ac = c->ac;
    redisAsyncFree(ac);                 /* onDisconnect schedules the reconnect */
}

static void onRetry(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    rdsConnect(arg);
}

static void rdsConnect(rds *c) {
    if (c->url.sentinels) {
        char err[300], where[300];
        if (sentinelResolve(&c->url, err, sizeof(err)) < 0) {
            lfLog(LF_WARN, "event=redis_connect_failed error=%s", lfQ(err));
            scheduleReconnect(c);
            return;
        }
        snprintf(where, sizeof(where), "%s:%d", c->url.host, c->url.port);
        lfLog(LF_INFO, "event=sentinel_master master=%s addr=%s", lfQ(c->url.master), lfQ(where));
    }
    redisAsyncContext *ac = c->url.is_unix ? redisAsyncConnectUnix(c->url.path)
                                           : redisAsyncConnect(c->url.host, c->url.port);
    if (!ac || ac->err) {
        lfLog(LF_WARN, "event=redis_connect_failed error=%s",
              lfQ(ac ? ac->errstr : "out of memory"));
        if (ac) redisAsyncFree(ac);
        scheduleReconnect(c);
        return;
    }
    ac->data = c;
    c->ac = ac;
    redisLibeventAttach(ac, c->base);
    redisAsyncSetConnectCallback(ac, onConnect);
    redisAsyncSetDisconnectCallback(ac, onDisconnect);
}

rds *rdsCreate(struct event_base *base, const rurl *url,
               rdsReadyProc *ready, void *priv) {
    rds *c = calloc(1, sizeof(*c));
    if (!c) abort();
    c->base = base;
    c->url = *url;
    c->onready = ready;
    c->priv = priv;
    c->backoff_ms = RDS_BACKOFF_MIN_MS;
    static const double rtt_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1, 0.25, 0.5, 1, 2.5, 10};
    histInit(&c->stats.rtt, rtt_s, (int)(sizeof(rtt_s) / sizeof(rtt_s[0])));
    c->retry = evtimer_new(base, onRetry, c);
    c->deadline = event_new(base, -1, EV_PERSIST, onDeadline, c);
    struct timeval sec = {1, 0};
    evtimer_add(c->deadline, &sec);
    rdsConnect(c);
    return c;
}

const rdsStats *rdsGetStats(const rds *c) { return &c->stats; }

void rdsFree(rds *c) {
    if (!c) return;
    c->closing = 1;
    if (c->ac) redisAsyncFree(c->ac);   /* pending callbacks get NULL */
    event_free(c->retry);
    event_free(c->deadline);
    memset(&c->url, 0, sizeof(c->url));
    free(c);
}

int rdsReady(const rds *c) { return c->ready; }

long long rdsSinceReplyMs(const rds *c) {
    if (!rdsReady(c) || !c->reply_at) return -1;
    return monoMs() - c->reply_at;
}

long long rdsRttUs(const rds *c) { return c->rtt_avg_us; }

long long rdsRttLowUs(const rds *c) { return c->rtt_low_us; }

/* ---- Blocking connection ---------------------------------------------- */

/* The reply timeout of the CLI's connection: LLMFLEET_REDIS_TIMEOUT_MS,
 * 10 s by default. A Redis that stops answering (stopped, partitioned)
 * fails the command with an error instead of hanging the CLI. */
long rdsSyncTimeoutMs(void) {
    const char *s = getenv("LLMFLEET_REDIS_TIMEOUT_MS");
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : 0;
    return s && *s && *end == '\0' && v > 0 && v <= 3600000 ? v : 10000;
}

/* The error of a failed command on a blocking connection, in words: a
 * reply timeout says so (hiredis 0.14 reports it as EAGAIN). */
const char *rdsSyncErr(const redisContext *c) {
    static char msg[160];
    if (c->err == REDIS_ERR_IO && (!strcmp(c->errstr, strerror(EAGAIN)) ||
                                   !strcmp(c->errstr, strerror(ETIMEDOUT)))) {
        snprintf(msg, sizeof(msg), "Redis did not answer within %ld ms (timed out; "
                 "LLMFLEET_REDIS_TIMEOUT_MS sets the limit)", rdsSyncTimeoutMs());
        return msg;
    }
    return c->errstr;
}

redisContext *rdsConnectSync(const rurl *given, char *err, size_t errlen) {
    rurl resolved, *u = (rurl *)given;
    if (given->sentinels) {
        resolved = *given;
        if (sentinelResolve(&resolved, err, errlen) < 0) return NULL;
        u = &resolved;
    }
    long ms = rdsSyncTimeoutMs();
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *rc = u->is_unix ? redisConnectUnixWithTimeout(u->path, tv)
                                  : redisConnectWithTimeout(u->host, u->port, tv);
    char where[300];
    rurlDescribe(u, where, sizeof(where));
    if (!rc || rc->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s: %s", where,
                 rc ? rc->errstr : "out of memory");
        if (rc) redisFree(rc);
        return NULL;
    }
    if (redisSetTimeout(rc, tv) != REDIS_OK) {
        snprintf(err, errlen, "cannot set a reply timeout on Redis at %s: %s", where, rc->errstr);
        redisFree(rc);
        return NULL;
    }
    redisReply *r = NULL;
    if (u->pass[0]) {
        r = u->user[0] ? redisCommand(rc, "AUTH %s %s", u->user, u->pass)
                       : redisCommand(rc, "AUTH %s", u->pass);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis at %s refused AUTH: %s", where,
                     r ? r->str : rdsSyncErr(rc));
            goto fail;
        }
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(rc, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis at %s refused SELECT %d: %s", where,
                     u->db, r ? r->str : rdsSyncErr(rc));
            goto fail;
        }
        freeReplyObject(r);
    }
    if (u->sentinels) {
        r = redisCommand(rc, "ROLE");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
            r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") != 0) {
            snprintf(err, errlen, "Redis at %s:%d, named by the Sentinels as master %s, is a %s "
                     "(a failover in progress?)", u->host, u->port, u->master, r->element[0]->str);
            goto fail;
        }
        if (r) freeReplyObject(r);
        r = NULL;
    }
    if (u == &resolved) memset(&resolved, 0, sizeof(resolved));
    return rc;
fail:
    if (u == &resolved) memset(&resolved, 0, sizeof(resolved));
    if (r) freeReplyObject(r);
    redisFree(rc);
    return NULL;
}

/* As FCALL when the library is there (an administrator's `llmfleet
 * functions load`, or a worker's), else as EVAL. */
redisReply *rdsScriptSync(redisContext *rc, const rdsScriptCall *sc) {
    const scriptSource *s = scriptFind(sc->name);
    const char **v;
    size_t *vl;
    char nk[16];
    if (!s) abort();
    int argc = scriptArgv(sc, &v, &vl, nk, sizeof(nk));
    v[0] = "FCALL", vl[0] = 5;
    v[1] = s->fn, vl[1] = strlen(s->fn);
    redisReply *r = redisCommandArgv(rc, argc, v, vl);
    if (fnMissing(r)) {
        freeReplyObject(r);
        v[0] = "EVAL", vl[0] = 4;
        v[1] = s->src, vl[1] = strlen(s->src);
        r = redisCommandArgv(rc, argc, v, vl);
    }
    free(v);
    free(vl);
    return r;
}

static int readSecretFile(const char *path, char *out, size_t outlen,
                          char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read LLMFLEET_REDIS_PASSWORD_FILE %s: %s",
                 path, strerror(errno));
        return -1;
    }
    size_t n = fread(out, 1, outlen - 1, f);
    fclose(f);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) n--;
    out[n] = '\0';
    return 0;
}

int rdsResolveUrl(const char *url, rurl *out, char *err, size_t errlen) {
    if (rurlParse(url, out, err, errlen) < 0) return -1;
    if (out->pass[0]) return 0;
    const char *pw = getenv("LLMFLEET_REDIS_PASSWORD");
    const char *file = getenv("LLMFLEET_REDIS_PASSWORD_FILE");
    if (pw && *pw) {
        if (strlen(pw) >= sizeof(out->pass)) {
            snprintf(err, errlen, "LLMFLEET_REDIS_PASSWORD is too long");
            return -1;
        }
        strcpy(out->pass, pw);
    } else if (file && *file) {
        return readSecretFile(file, out->pass, sizeof(out->pass), err, errlen);
    }
    return 0;
}

/* A probe that any role of the ACL guide may send: the first of these its
 * user is allowed (NOPERM: the next). */
redisContext *rdsConnectFleet(const rurl *url, const keySet *ks, char *err, size_t errlen) {
    rurl u = *url;
    redisContext *rc = rdsConnectSync(&u, err, errlen);
    for (int hop = 0; rc && hop < 5; hop++) {
        const char *probes[][2] = {{"EXISTS", ks->name[KEY_STATE]}, {"LLEN", ks->name[KEY_JOBS]},
                                   {"XLEN", ks->name[KEY_RESULTS]}};
        redisReply *r = NULL;
        for (size_t i = 0; i < 3; i++) {
            if (r) freeReplyObject(r);
            r = redisCommand(rc, "%s %s", probes[i][0], probes[i][1]);
            if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOPERM", 6) != 0) break;
        }
        int moved = r && r->type == REDIS_REPLY_ERROR && rdsParseMoved(r->str, &u) == 0;
        if (r) freeReplyObject(r);
        if (!moved) break;
        redisFree(rc);
        rc = rdsConnectSync(&u, err, errlen);
    }
    memset(&u, 0, sizeof(u));
    return rc;
}
