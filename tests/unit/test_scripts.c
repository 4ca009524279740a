/* test_scripts.c — the fleet's Lua scripts (scripts/lua/NAME.lua, as embedded
 * by the build) run against a real redis-server that this program starts
 * on a free loopback port and stops at the end.
 *
 * Each test flushes the server, crafts the fleet's state with plain
 * commands (key names from keysInit), runs a script exactly as
 * rdsScriptSync does (FCALL or EVAL of scriptFind()'s script, the fleet's
 * keys in proto.def's order, one more key for a claim) with arguments built by the
 * codec (claimArgs, admitArgs, settleArgs + recStart/recAttempt/recOk/
 * recError), parses the reply with the codec's parsers, and checks the
 * named verdicts and the state the script left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "codec.h"
#include "keys.h"
#include "rds.h"        /* rdsScriptCall: the call shape rdsScriptSync takes */
#include "scripts.h"

/* Slack for the time between this program reading Redis TIME and a script
 * reading it (ms). */
#define SLACK_MS 500

static pid_t serverPid = -1;
static char tmpDir[256];
static redisContext *rc;
static keySet ks;

/* How the group runs the scripts: as FCALLs of the function library (the
 * worker's way), or EVAL of each script alone (the fallback, and the
 * CLI's): main runs every test both ways. */
static int useEval;

#define KN(id) (ks.name[KEY_##id])

/* ---- The server ----------------------------------------------------------- */

static int freePort(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static long long monoMs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stopServer(void) {
    if (rc) redisFree(rc), rc = NULL;
    if (serverPid > 0) {
        kill(serverPid, SIGKILL);
        while (waitpid(serverPid, NULL, 0) < 0 && errno == EINTR) {}
        serverPid = -1;
    }
    if (tmpDir[0]) {
        DIR *d = opendir(tmpDir);
        if (d) {
            struct dirent *e;
            char p[512];
            while ((e = readdir(d))) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
                snprintf(p, sizeof(p), "%s/%s", tmpDir, e->d_name);
                unlink(p);
            }
            closedir(d);
        }
        rmdir(tmpDir);
        tmpDir[0] = '\0';
    }
}

/* Start redis-server on port; 0 when it answers PING within the deadline. */
static int startOn(int port) {
    char portS[16];
    snprintf(portS, sizeof(portS), "%d", port);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* Dies with this program, whatever way it ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char log[512];
        snprintf(log, sizeof(log), "%s/redis.log", tmpDir);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
        if (chdir(tmpDir) != 0) _exit(127);
        execlp("redis-server", "redis-server", "--port", portS, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", tmpDir, (char *)NULL);
        _exit(127);
    }
    serverPid = pid;
    long long deadline = monoMs() + 10000;
    while (monoMs() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {     /* it died (port taken?) */
            serverPid = -1;
            return -1;
        }
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
            if (r) freeReplyObject(r);
            if (ok) {
                rc = c;
                return 0;
            }
        }
        if (c) redisFree(c);
        usleep(20000);                          /* the bounded PING wait */
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    serverPid = -1;
    return -1;
}

static int groupSetup(void **state) {
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpDir, sizeof(tmpDir), "%s/test_scripts.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpDir)) {
        tmpDir[0] = '\0';
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    if (keysInit(&ks, "t") != 0) return stopServer(), -1;
    for (int tries = 0; tries < 3; tries++) {
        int port = freePort();
        if (port > 0 && startOn(port) == 0) {
            if (useEval) return 0;
            redisReply *r = redisCommand(rc, "FUNCTION LOAD %s", scriptLibrary);
            int ok = r && r->type == REDIS_REPLY_STRING;
            if (!ok) fprintf(stderr, "FUNCTION LOAD: %s\n", r ? r->str : rc->errstr);
            if (r) freeReplyObject(r);
            return ok ? 0 : (stopServer(), -1);
        }
    }
    fprintf(stderr, "could not start redis-server (see %s/redis.log)\n", tmpDir);
    stopServer();
    return -1;
}

static int groupTeardown(void **state) {
    (void)state;
    stopServer();
    return 0;
}

/* ---- Plain commands ---------------------------------------------------------- */

/* Run a command that must not fail; returns the reply (caller frees). */
static redisReply *cmdR(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    if (!r) fail_msg("redis: %s", rc->errstr);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("redis error for %s: %s", fmt, r->str);
    return r;
}

#define cmd(...) freeReplyObject(cmdR(__VA_ARGS__))

/* An integer reply. */
static long long cmdInt(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    if (!r) fail_msg("redis: %s", rc->errstr);
    if (r->type != REDIS_REPLY_INTEGER) fail_msg("not an integer reply for %s", fmt);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* HGET as a string ("" when absent; static storage, one at a time per slot). */
static const char *hget(const char *key, const char *field) {
    static char bufs[4][512];
    static int k;
    char *out = bufs[k++ & 3];
    redisReply *r = cmdR("HGET %s %s", key, field);
    snprintf(out, 512, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

/* HGET as a number; -1 when absent. */
static long long hgetN(const char *key, const char *field) {
    const char *s = hget(key, field);
    return *s ? atoll(s) : -1;
}

static long long hgetN0(const char *key, const char *field) {
    const char *s = hget(key, field);
    return *s ? atoll(s) : 0;
}

/* ZSCORE as a number; -1 when not a member. */
static long long zscore(const char *key, const char *member) {
    redisReply *r = cmdR("ZSCORE %s %s", key, member);
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    freeReplyObject(r);
    return v;
}

/* The member of `parked` for lease lid: CLASS|PLACE|LEASE (lib/pace.lua),
 * or lid itself as a version before the lines parked it; "" when none. */
static const char *parkedKey(const char *lid) {
    static char out[256];
    out[0] = '\0';
    redisReply *r = cmdR("ZRANGE %s 0 -1", KN(PARKED));
    size_t n = strlen(lid);
    for (size_t i = 0; i < r->elements; i++) {
        const char *m = r->element[i]->str;
        size_t ml = strlen(m);
        if (strcmp(m, lid) == 0 || (ml > n && m[ml - n - 1] == '|' && strcmp(m + ml - n, lid) == 0)) {
            snprintf(out, sizeof(out), "%s", m);
            break;
        }
    }
    freeReplyObject(r);
    return out;
}

/* Lease lid's place in its class's line (a member with a score: that
 * score, its due time); -1 when it is not parked. */
static long long parkedAt(const char *lid) {
    const char *m = parkedKey(lid);
    if (!*m) return -1;
    long long sc = zscore(KN(PARKED), m);
    if (sc > 0) return sc;
    const char *p = strchr(m, '|');
    return p ? atoll(p + 1) : -1;
}

/* Park lease lid in class c's line at place: body, and needs fact (NULL:
 * none kept). */
static void parkIn(const char *c, long long place, const char *lid, const char *body,
                   const char *fact) {
    char m[256];
    snprintf(m, sizeof(m), "%s|%015lld|%s", c, place, lid);
    cmd("ZADD %s 0 %s", KN(PARKED), m);
    cmd("HSET %s %s %s", KN(PARKEDJOB), m, body);
    if (fact) cmd("HSET %s %s %s", KN(PARKEDNEED), m, fact);
}

static const char *rawJob(const char *id);

/* Park n jobs P:1:1 .. P:1:n in class c's line at places place0 + i,
 * each with needs fact. */
static void parkRun(const char *c, const char *p, int n, long long place0, const char *fact) {
    char lid[32];
    for (int i = 1; i <= n; i++) {
        snprintf(lid, sizeof(lid), "%s:1:%d", p, i);
        parkIn(c, place0 + i, lid, rawJob(lid), fact);
    }
}

/* Move parked lease lid to place in its line (its member renamed). */
static void parkMove(const char *lid, long long place) {
    char m[256], c[64], body[512], fact[256];
    snprintf(m, sizeof(m), "%s", parkedKey(lid));
    assert_true(m[0] != '\0');
    snprintf(c, sizeof(c), "%.*s", (int)(strchr(m, '|') - m), m);
    snprintf(body, sizeof(body), "%s", hget(KN(PARKEDJOB), m));
    snprintf(fact, sizeof(fact), "%s", hget(KN(PARKEDNEED), m));
    cmd("ZREM %s %s", KN(PARKED), m);
    cmd("HDEL %s %s", KN(PARKEDJOB), m);
    cmd("HDEL %s %s", KN(PARKEDNEED), m);
    parkIn(c, place, lid, body, fact[0] ? fact : NULL);
}

/* Redis TIME in ms: the scripts' clock. */
static long long redisNow(void) {
    redisReply *r = cmdR("TIME");
    long long v = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return v;
}

static void assertNear(long long got, long long want, long long tol, const char *what) {
    if (got < want - tol || got > want + tol)
        fail_msg("%s: %lld, expected %lld +- %lld", what, got, want, tol);
}

static void assertHas(const char *s, const char *needle) {
    if (!strstr(s, needle)) fail_msg("\"%s\" lacks \"%s\"", s, needle);
}

/* A field of a stream entry (reply of XRANGE: {id, {f, v, ...}}), or NULL. */
static const char *entryField(const redisReply *e, const char *name) {
    const redisReply *kv = e->element[1];
    for (size_t i = 0; i + 1 < kv->elements; i += 2)
        if (!strcmp(kv->element[i]->str, name)) return kv->element[i + 1]->str;
    return NULL;
}

/* ---- Script calls (what rdsScriptSync does) --------------------------------- */

/* Call the embedded script with the fleet's keys in proto.def order (plus
 * extra_key), as worker/rds.c does: FCALL, or EVAL as rdsScriptSync. */
static redisReply *evalSync(const rdsScriptCall *sc) {
    const scriptSource *s = scriptFind(sc->name);
    if (!s) fail_msg("no embedded script %s", sc->name);
    const char *src = useEval ? s->src : s->fn;
    int nkeys = KEY_COUNT + (sc->extra_key != NULL);
    int argc = 3 + nkeys + sc->nargs;
    const char **v = malloc(sizeof(*v) * (size_t)argc);
    size_t *vl = malloc(sizeof(*vl) * (size_t)argc);
    assert_non_null(v);
    assert_non_null(vl);
    char nk[16];
    v[0] = useEval ? "EVAL" : "FCALL", vl[0] = strlen(v[0]);
    v[1] = src, vl[1] = strlen(src);
    vl[2] = (size_t)snprintf(nk, sizeof(nk), "%d", nkeys);
    v[2] = nk;
    int i = 3;
    for (int k = 0; k < KEY_COUNT; k++, i++) v[i] = sc->keys->argv[k], vl[i] = strlen(v[i]);
    if (sc->extra_key) v[i] = sc->extra_key, vl[i++] = strlen(sc->extra_key);
    for (int k = 0; k < sc->nargs; k++, i++) v[i] = sc->argv[k], vl[i] = sc->argvlen[k];
    redisReply *r = redisCommandArgv(rc, argc, v, vl);
    free(v);
    free(vl);
    if (!r) fail_msg("redis: %s", rc->errstr);
    return r;
}

/* A script with string arguments; must not answer an error. */
static redisReply *script(const char *name, int n, const char **argv) {
    size_t l[32];
    assert_true(n <= 32);
    for (int i = 0; i < n; i++) l[i] = strlen(argv[i]);
    rdsScriptCall sc = {name, &ks, NULL, n, argv, l};
    redisReply *r = evalSync(&sc);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("%s.lua: %s", name, r->str);
    return r;
}

/* The claim's list key for prefix. */
static const char *listKey(const char *prefix) {
    static char k[400];
    snprintf(k, sizeof(k), "%s:%s", KN(CLAIMED), prefix);
    return k;
}

/* A claim by worker `intake` (NULL: none): its intake goes back first; an
 * idle worker's poll while claimPoll is set (flush clears it). */
static int claimPoll;
static void runClaimBy(int n, long lease_ms, const char *prefix, const char *intake,
                       claimReply *out) {
    lfArgs a;
    argsInit(&a, CA_COUNT, CA_COUNT);
    claimArgs(&a, n, lease_ms, prefix, 0, intake, claimPoll);
    char list[400];
    snprintf(list, sizeof(list), "%s", listKey(prefix));
    rdsScriptCall sc = {"claim", &ks, list, a.n, a.v, a.l};
    redisReply *r = evalSync(&sc);
    argsFree(&a);
    if (claimParse(r, out) != 0)
        fail_msg("claim reply not a CR: %s", r->type == REDIS_REPLY_ERROR ? r->str : "shape");
    freeReplyObject(r);
}

static void runClaim(int n, long lease_ms, const char *prefix, claimReply *out) {
    runClaimBy(n, lease_ms, prefix, NULL, out);
}

/* Worker name's intake list (worker/wake.c's BLMOVE destination). */
static const char *intakeKey(const char *name) {
    static char k[400];
    snprintf(k, sizeof(k), "%s:intake:%s", KN(JOBS), name);
    return k;
}

static admitHead head(long long prices_ver) {
    admitHead h = {60000, 0, SOLO_NONE, prices_ver};
    return h;
}

/* The model of the tests' jobs unless they name one: class "sonnet-4". */
#define MODEL "claude-sonnet-4-5"
#define CLASS "sonnet-4"

/* A state field of class c: "c|name" (static storage, 4 slots). */
static const char *cfield(const char *c, const char *name) {
    static char bufs[4][128];
    static int k;
    char *out = bufs[k++ & 3];
    snprintf(out, 128, "%s|%s", c, name);
    return out;
}

/* A field of the default class. */
#define SF(name) cfield(CLASS, name)

static admitJob bjobM(const char *lease, const char *id, const char *model, long long input,
                      long long max_tokens, long long reserve, const char *prefix) {
    /* exact: as if counted, so that the spend rules below act at once
     * (test_admit_count_near_cap asks for the count). */
    admitJob j = {lease, id, model, input, max_tokens, reserve, prefix, 0, 0, 1, NULL,
                  NULL, -1, 0};
    return j;
}

static admitJob bjob(const char *lease, const char *id, long long input,
                     long long max_tokens, long long reserve) {
    return bjobM(lease, id, MODEL, input, max_tokens, reserve, "");
}

static void runBegin(const admitHead *h, const admitJob *jobs, int n,
                     admitReply *out, admitResult *res) {
    lfArgs a;
    argsInit(&a, AA_COUNT + n * AJ_COUNT, AA_COUNT + n * AJ_COUNT);
    admitArgs(&a, h, jobs, n);
    rdsScriptCall sc = {"admit", &ks, NULL, a.n, a.v, a.l};
    redisReply *r = evalSync(&sc);
    argsFree(&a);
    char err[256];
    if (admitParse(r, n, out, res, err, sizeof(err)) != 0) fail_msg("%s", err);
    freeReplyObject(r);
}

/* One job of model through admission; returns its verdict, value in *val. */
static admitVerdict admit1M(const char *model, const char *prefix, const char *lease,
                            const char *id, long long input, long long max_tokens,
                            long long *val, admitReply *br) {
    admitHead h = head(0);
    admitJob j = bjobM(lease, id, model, input, max_tokens, 1, prefix);
    admitReply tmp;
    admitResult res;
    runBegin(&h, &j, 1, br ? br : &tmp, &res);
    if (val) *val = res.value;
    return res.verdict;
}

/* One job through admission; returns its verdict, value in *val. */
static admitVerdict admit1(long long prices_ver, const char *lease, const char *id,
                           long long input, long long max_tokens, long long reserve,
                           long long *val, admitReply *br) {
    admitHead h = head(prices_ver);
    admitJob j = bjob(lease, id, input, max_tokens, reserve);
    admitReply tmp;
    admitResult res;
    runBegin(&h, &j, 1, br ? br : &tmp, &res);
    if (val) *val = res.value;
    return res.verdict;
}

#define assert_admit(got, want)                                                 \
    do {                                                                        \
        admitVerdict g_ = (got);                                                \
        if (g_ != (want))                                                       \
            fail_msg("verdict %s, expected %s", admitName(g_), admitName(want)); \
    } while (0)

static const char *settledName(settleVerdict v) {
    switch (v) {
#define X(N, val, doc) case SETTLED_##N: return #N;
    LF_SETTLED(X)
#undef X
    }
    return "UNKNOWN";
}

#define assert_settled(got, want)                                               \
    do {                                                                        \
        settleVerdict g_ = (got);                                               \
        if (g_ != (want))                                                       \
            fail_msg("settled %s, expected %s", settledName(g_), settledName(want)); \
    } while (0)

/* Settle items; claim_n > 0 claims afterwards with prefix. The claim's
 * reply goes to *claim when given. */
static void runSettle(const settleItem *items, int n, settleVerdict *out, int claim_n,
                      const char *prefix, claimReply *claim) {
    settleHead h = {1000, claim_n, 60000, prefix, 0, NULL};
    lfArgs a;
    int argc = settleArgc(items, n);
    argsInit(&a, argc, 8 + n);
    settleArgs(&a, &h, items, n);
    char list[400];
    if (prefix) snprintf(list, sizeof(list), "%s", listKey(prefix));
    rdsScriptCall sc = {"settle", &ks, prefix ? list : NULL, a.n, a.v, a.l};
    redisReply *r = evalSync(&sc);
    argsFree(&a);
    char err[256];
    const redisReply *cr;
    if (settleParse(r, n, out, &cr, err, sizeof(err)) != 0) fail_msg("%s", err);
    if (claim) {
        if (!cr || claimParse(cr, claim) != 0) fail_msg("settle: no claim reply");
    }
    freeReplyObject(r);
}

/* ---- Crafted state --------------------------------------------------------- */

static const char *rawJob(const char *id) {
    static char b[4][256];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 256, "{\"id\":\"%s\",\"request\":{\"model\":\"claude-sonnet-4-5\","
             "\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}}", id);
    return p;
}

/* A claim of n jobs (ids[i]) with leases PREFIX1..n expiring at exp, as
 * claim.lua leaves it. */
static void craftClaim(const char *prefix, int n, const char *const *ids, long long exp) {
    for (int i = 0; i < n; i++) {
        char lid[128];
        snprintf(lid, sizeof(lid), "%s%d", prefix, i + 1);
        cmd("RPUSH %s %s", listKey(prefix), rawJob(ids[i]));
        cmd("ZADD %s %lld %s", KN(LEASES), exp, lid);
    }
    cmd("HSET %s %s %d", KN(CLAIMED), prefix, n);
}

/* A reservation as admit.lua writes it (lib/lease.lua reservation()):
 * "class,in,out,cost,t_ms,r_cum,i_cum,o_cum,o_done,raw,max_tokens,prefix,
 * cache_1h,id", with the lease in inflight until exp and the state's
 * reserved and the class's o_inflight / n_inflight counting it. */
typedef struct resv {
    const char *cls;
    long long in, out, cost, t, r_cum, i_cum, o_cum, o_done, raw, max_tokens;
    const char *prefix;
    int cache_1h;
} resv;

static void craftResv(const char *lid, const char *id, const resv *v, long long exp) {
    cmd("ZADD %s %lld %s", KN(INFLIGHT), exp, lid);
    char r[512];
    snprintf(r, sizeof(r), "%s,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%s,%d,%s",
             v->cls, v->in, v->out, v->cost, v->t, v->r_cum, v->i_cum, v->o_cum, v->o_done,
             v->raw, v->max_tokens, v->prefix ? v->prefix : "", v->cache_1h, id);
    cmd("HSET %s %s %s", KN(RESERV), lid, r);
    cmd("HINCRBY %s reserved %lld", KN(STATE), v->cost);
    cmd("HINCRBY %s %s %lld", KN(STATE), cfield(v->cls, "o_inflight"), v->out);
    cmd("HINCRBY %s %s 1", KN(STATE), cfield(v->cls, "n_inflight"));
}

/* Lease lid of the default class admitted at now (as admit.lua leaves it):
 * inflight, reservation, and the state's reserved / o_inflight. */
static void craftAdmitted(const char *lid, const char *id, long long input,
                          long long output, long long cost, long long exp, long long now) {
    resv v = {CLASS, input, output, cost, now, 0, 0, 0, 0, input, output, "", 0};
    craftResv(lid, id, &v, exp);
}

/* ---- Settle records ---------------------------------------------------------- */

static job testJob(const char *id) {
    job j;
    memset(&j, 0, sizeof(j));
    snprintf(j.id, sizeof(j.id), "%s", id);
    snprintf(j.model, sizeof(j.model), "claude-sonnet-4-5");
    j.max_tokens = 50;
    return j;
}

static outcome okOutcome(long long in, long long out) {
    outcome o;
    memset(&o, 0, sizeof(o));
    o.ok = 1;
    o.http_status = 200;
    o.use.input_tokens = in;
    o.use.output_tokens = out;
    o.use.cache_5m_tokens = o.use.cache_1h_tokens = -1;
    o.retry_after_ms = -1;
    return o;
}

static outcome errOutcome(long status, long long retry_after_ms) {
    outcome o;
    memset(&o, 0, sizeof(o));
    o.retryable = 1;
    o.http_status = status;
    snprintf(o.error_type, sizeof(o.error_type), "%s",
             status == 429 ? "rate_limit_error" : "api_error");
    snprintf(o.error_message, sizeof(o.error_message), "boom %ld", status);
    o.retry_after_ms = retry_after_ms;
    return o;
}

static const char *BODY = "{\"type\":\"message\",\"content\":[]}";

/* A successful attempt's RESULT record costing cost micro-USD; rl may be
 * NULL (no headers). */
static void recSuccess(settleRec *r, const job *j, long long cost, int attempt,
                       const rlHeaders *rl) {
    recCtx c = {"tw", attempt, 120, NULL};
    outcome o = okOutcome(100, 20);
    rlHeaders none;
    rlInit(&none);
    memset(r, 0, sizeof(*r));
    recOk(r, j, BODY, strlen(BODY), &o, &c);
    recAttempt(r, &o, rl ? rl : &none, cost, &c, 500000);
}

/* A retryable failure: a FAILED record for attempt. */
static void recFailed(settleRec *r, const job *j, long status, long long retry_after_ms,
                      int attempt) {
    recCtx c = {"tw", attempt, 80, NULL};
    outcome o = errOutcome(status, retry_after_ms);
    rlHeaders none;
    rlInit(&none);
    memset(r, 0, sizeof(*r));
    recError(r, j, o.error_type, o.error_message, status, &c);
    r->op = OP_FAILED;
    recAttempt(r, &o, &none, -1, &c, 500000);
}

/* A 200's RESULT record with this usage (cost 10 micro-USD). */
static void recSuccessUse(settleRec *r, const job *j, long long in, long long out,
                          long long cw, long long cr, const rlHeaders *rl) {
    recCtx c = {"tw", 1, 120, NULL};
    outcome o = okOutcome(in, out);
    o.use.cache_creation_input_tokens = cw;
    o.use.cache_read_input_tokens = cr;
    rlHeaders none;
    rlInit(&none);
    memset(r, 0, sizeof(r[0]));
    recOk(r, j, BODY, strlen(BODY), &o, &c);
    recAttempt(r, &o, rl ? rl : &none, 10, &c, 500000);
}

/* Settle one record (lease, job id, its t_sent); returns its verdict. */
static settleVerdict settleOne(const char *lid, const char *id, settleRec *rec,
                               long long t_sent) {
    settleItem it = {lid, id, rec, MODEL, t_sent, NULL};
    settleVerdict out[1];
    runSettle(&it, 1, out, 0, NULL, NULL);
    return out[0];
}

/* n jobs on leases PREFIX1..n, each admitted with reservation v (t: now),
 * all answered 200 with this usage, settled in one call. */
#define MAXB 16
static void settleOks(const char *prefix, int n, resv v, long long in, long long out,
                      long long cw, long long cr) {
    static char idb[MAXB][32], lidb[MAXB][64];
    const char *ids[MAXB];
    settleRec *rs = calloc(MAXB, sizeof(*rs));
    settleItem items[MAXB];
    settleVerdict res[MAXB];
    assert_non_null(rs);
    assert_true(n <= MAXB);
    long long now = redisNow();
    if (!v.t) v.t = now;
    for (int i = 0; i < n; i++) {
        snprintf(idb[i], sizeof(idb[i]), "%s%d", prefix, i + 1);
        snprintf(lidb[i], sizeof(lidb[i]), "%s%d", prefix, i + 1);
        ids[i] = idb[i];
    }
    craftClaim(prefix, n, ids, now + 60000);
    static job jobs[MAXB];          /* the records' fields point into them */
    for (int i = 0; i < n; i++) {
        craftResv(lidb[i], ids[i], &v, now + 60000);
        jobs[i] = testJob(ids[i]);
        recSuccessUse(&rs[i], &jobs[i], in, out, cw, cr, NULL);
        items[i] = (settleItem){lidb[i], ids[i], &rs[i], MODEL, i, NULL};
    }
    runSettle(items, n, res, 0, NULL, NULL);
    for (int i = 0; i < n; i++) {
        assert_settled(res[i], SETTLED_DONE);
        recFree(&rs[i]);
    }
    free(rs);
}

/* batches x 10 answers with in / out tokens, each batch one settle (lease
 * prefixes TAG:B:). */
static void settleBatches(const char *tag, int batches, resv v, long long in, long long out) {
    char pre[16];
    for (int b = 0; b < batches; b++) {
        snprintf(pre, sizeof(pre), "%s:%d:", tag, b);
        settleOks(pre, 10, v, in, out, 0, 0);
    }
}

/* A state field as a double; -1 when absent. */
static double hgetD(const char *key, const char *field) {
    const char *s = hget(key, field);
    return *s ? atof(s) : -1;
}

/* Sleep ms milliseconds. */
static void sleepMs(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static long long xlen(void) { return cmdInt("XLEN %s", KN(RESULTS)); }

/* ---- Per test ---------------------------------------------------------------- */

static int flush(void **state) {
    (void)state;
    cmd("FLUSHALL");
    claimPoll = 0;
    return 0;
}

/* ============================== admit.lua =================================== */

/* A second live copy of an id is never sent: the same bytes are dropped
 * (the first copy has the job), other bytes get a duplicate_id dead
 * letter. Once the first copy's result is in, the id is done (DUP); a
 * copy whose twin is no longer in flight goes. */
static void test_admit_duplicate_ids(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 100, 50, 1, &v, NULL), ADMIT_GO);
    assert_string_equal(hget(KN(LIVE), "a"), "w:1:1");

    craftClaim("w:2:", 1, ids, now + 60000);            /* the same bytes */
    assert_admit(admit1(0, "w:2:1", "a", 100, 50, 1, &v, NULL), ADMIT_DUP);
    assert_int_equal(zscore(KN(LEASES), "w:2:1"), -1);  /* dropped */
    assert_int_equal(cmdInt("LLEN %s", KN(DEAD)), 0);

    cmd("RPUSH %s {\"id\":\"a\",\"other\":1}", listKey("w:3:"));
    cmd("ZADD %s %lld w:3:1", KN(LEASES), now + 60000);
    cmd("HSET %s w:3: 1", KN(CLAIMED));
    assert_admit(admit1(0, "w:3:1", "a", 100, 50, 1, &v, NULL), ADMIT_DUPID);
    assert_int_equal(zscore(KN(LEASES), "w:3:1"), -1);
    redisReply *r = cmdR("LINDEX %s 0", KN(DEAD));
    assertHas(r->str, "duplicate_id");
    assertHas(r->str, "\"id\":\"a\"");
    assertHas(r->str, "{\\\"id\\\":\\\"a\\\",\\\"other\\\":1}");  /* the job, quoted */
    freeReplyObject(r);
    assert_int_equal(cmdInt("SISMEMBER %s a", KN(DONE)), 0);  /* no result for it */
    assert_int_equal(xlen(), 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 1);

    /* The first copy is answered: its entry goes, the id is done. */
    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 10, 1, NULL);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_DONE);
    recFree(&rec);
    assert_int_equal(cmdInt("HEXISTS %s a", KN(LIVE)), 0);
    craftClaim("w:4:", 1, ids, now + 60000);
    assert_admit(admit1(0, "w:4:1", "a", 100, 50, 1, &v, NULL), ADMIT_DUP);

    /* A stale entry (its lease no longer in flight) does not hold a copy. */
    const char *idb[] = {"b"};
    cmd("HSET %s b w:0:1", KN(LIVE));
    craftClaim("w:5:", 1, idb, now + 60000);
    assert_admit(admit1(0, "w:5:1", "b", 100, 50, 1, &v, NULL), ADMIT_GO);
    assert_string_equal(hget(KN(LIVE), "b"), "w:5:1");
}

/* Near the cap a bound is not enough: a job whose (bound) reservation
 * does not fit is asked to be counted (COUNT); counted (exact), the usual
 * spend rules apply. */
static void test_admit_count_near_cap(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    cmd("HSET %s max_spend_usd 0.5", KN(LIMITS));
    cmd("HSET %s spent 300000 %s 1", KN(STATE), SF("observed"));   /* past its cold start */
    admitHead h = head(0);
    admitJob j = bjob("w:1:1", "a", 100, 50, 250000);   /* 0.25 > 0.20 left */
    j.exact = 0;
    admitReply br;
    admitResult res;
    runBegin(&h, &j, 1, &br, &res);
    assert_admit(res.verdict, ADMIT_COUNT);
    assert_true(zscore(KN(LEASES), "w:1:1") > 0);          /* still leased */
    j.exact = 1;                                           /* counted: the same */
    runBegin(&h, &j, 1, &br, &res);
    assert_admit(res.verdict, ADMIT_BUDGET);
    j.reserve = 150000;                                    /* counted: it fits */
    runBegin(&h, &j, 1, &br, &res);
    assert_admit(res.verdict, ADMIT_GO);

    /* Unknown size (no bound, count failed): one at a time under a cap. */
    const char *ids2[] = {"u1", "u2"};
    craftClaim("w:2:", 2, ids2, now + 60000);
    admitJob u[2] = {bjob("w:2:1", "u1", 100, 50, 1000), bjob("w:2:2", "u2", 100, 50, 1000)};
    u[0].exact = u[1].exact = 2;
    admitResult r2[2];
    runBegin(&h, u, 2, &br, r2);
    assert_admit(r2[0].verdict, ADMIT_GO);
    assert_admit(r2[1].verdict, ADMIT_WAIT);
    assert_string_equal(hget(KN(STATE), "unknown_lease"), "w:2:1");
    runBegin(&h, &u[1], 1, &br, r2);
    assert_admit(r2[0].verdict, ADMIT_WAIT);               /* w:2:1 still out */
    cmd("ZREM %s w:2:1", KN(INFLIGHT));                    /* it settled */
    runBegin(&h, &u[1], 1, &br, r2);
    assert_admit(r2[0].verdict, ADMIT_GO);
}

static void test_admit_go(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 100, 50, 777, &v, NULL), ADMIT_GO);
    assert_int_equal(v, 1);                             /* attempt 1 */
    /* class, in, out, cost, t, r_cum, i_cum, o_cum, o_done (as the call
     * found them: before its own charges), raw, max_tokens, prefix,
     * cache_1h, id */
    const char *res = hget(KN(RESERV), "w:1:1");
    assert_int_equal(strncmp(res, "sonnet-4,100,50,777,", 20), 0);
    assertHas(res, ",0,0,0,0,100,50,,0,a");
    assert_int_equal(strcmp(res + strlen(res) - 2, ",a"), 0);
    long long t = atoll(res + 20);
    assertNear(t, now, SLACK_MS, "admitted at");
    assertNear(zscore(KN(INFLIGHT), "w:1:1"), now + 60000, SLACK_MS, "inflight expiry");
    assert_int_equal(hgetN(KN(STATE), "reserved"), 777);
    assert_int_equal(hgetN(KN(STATE), SF("o_inflight")), 50);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), 100);
    assert_int_equal(hgetN(KN(STATE), SF("r_cum")), 1);
    assert_int_equal(hgetN(KN(STATE), SF("o_cum")), 50);
    assert_int_equal(hgetN(KN(STATE), SF("n_inflight")), 1);
    assert_string_equal(hget(KN(STATE), "classes"), CLASS);
    assert_int_equal(hgetN(KN(STATE), "o_inflight"), -1);     /* no global one */

    /* A retried job: its attempt number counts the attempts retried. */
    const char *ids2[] = {"b"};
    craftClaim("w:2:", 1, ids2, now + 60000);
    cmd("HSET %s b 2", KN(ATTEMPTS));
    cmd("HSET %s sonnet-4|observed 1", KN(STATE));
    assert_admit(admit1(0, "w:2:1", "b", 10, 10, 1, &v, NULL), ADMIT_GO);
    assert_int_equal(v, 3);
}

static void test_admit_lost(void **state) {
    (void)state;
    long long v;
    assert_admit(admit1(0, "w:9:1", "a", 100, 50, 777, &v, NULL), ADMIT_LOST);
    assert_int_equal(cmdInt("HLEN %s", KN(RESERV)), 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);
    assert_int_equal(hgetN(KN(STATE), "reserved"), -1);

    /* Expired but not reaped yet: the reaper is about to requeue its job,
     * so it must not go out. */
    long long now = redisNow();
    const char *ids[] = {"e"};
    craftClaim("w:8:", 1, ids, now - 1);
    cmd("HSET %s sonnet-4|observed 1", KN(STATE));
    assert_admit(admit1(0, "w:8:1", "e", 10, 10, 1, &v, NULL), ADMIT_LOST);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);
}

static void test_admit_dup(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "b"};
    craftClaim("w:1:", 3, ids, now + 60000);
    cmd("SADD %s a", KN(DONE));
    admitHead h = head(0);
    admitJob j[3] = {bjob("w:1:1", "a", 10, 10, 1), bjob("w:1:2", "b", 10, 10, 1),
                     bjob("w:1:3", "b", 10, 10, 1)};
    admitReply br;
    admitResult res[3];
    runBegin(&h, j, 3, &br, res);
    assert_admit(res[0].verdict, ADMIT_DUP);            /* id done */
    assert_admit(res[1].verdict, ADMIT_GO);
    assert_admit(res[2].verdict, ADMIT_DUP);            /* twice in the batch */
    /* Dropped leases are gone; the admitted one stays. */
    assert_int_equal(zscore(KN(LEASES), "w:1:1"), -1);
    assert_int_equal(zscore(KN(LEASES), "w:1:3"), -1);
    assert_true(zscore(KN(LEASES), "w:1:2") > 0);
    assert_int_equal(cmdInt("HLEN %s", KN(RESERV)), 1);
    assert_int_equal(hgetN(KN(CLAIMED), "w:1:"), 1);
}

static void test_admit_wait_paused(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    cmd("HSET %s pause_until %lld pause_kind %d pause_reason %s", KN(STATE),
        now + 5000, PAUSE_SHORT, "test pause");
    long long v;
    admitReply br;
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 1, &v, &br), ADMIT_WAIT);
    assertNear(v, 5000, SLACK_MS, "wait ms");
    assert_true(v <= 5000);
    assert_string_equal(br.reason, "test pause");
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);

    /* Over: the same job goes. */
    cmd("HSET %s pause_until %lld", KN(STATE), now - 1);
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 1, &v, NULL), ADMIT_GO);
}

static void test_admit_long_pause_probe(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("HSET %s pause_until %lld pause_kind %d pause_reason %s probe_at %lld sonnet-4|observed 1",
        KN(STATE), now + 600000, PAUSE_LONG, "long one", now - 1);
    admitHead h = head(0);
    admitJob j[2] = {bjob("w:1:1", "a", 10, 10, 1), bjob("w:1:2", "b", 10, 10, 1)};
    admitReply br;
    admitResult res[2];
    runBegin(&h, j, 2, &br, res);
    assert_admit(res[0].verdict, ADMIT_GO);             /* the probe */
    assert_admit(res[1].verdict, ADMIT_WAIT);           /* exactly one */
    assertNear(res[1].value, 10000, SLACK_MS, "the rest wait for the next probe");
    assert_string_equal(hget(KN(STATE), "probe_lease"), "w:1:1");
    assertNear(hgetN(KN(STATE), "probe_at"), now + 10000, SLACK_MS, "next probe");

    /* The next call: no probe due, the wait runs to the next probe. */
    long long v;
    assert_admit(admit1(0, "w:1:2", "b", 10, 10, 1, &v, &br), ADMIT_WAIT);
    assertNear(v, 10000, SLACK_MS, "wait to the next probe");
    assert_string_equal(br.reason, "long one");
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 1);
}

static void test_admit_wait_ceiling(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    cmd("HSET %s max_in_flight 1", KN(LIMITS));
    cmd("HSET %s sonnet-4|observed 1", KN(STATE));
    cmd("ZADD %s %lld other:1:1", KN(INFLIGHT), now + 60000);
    long long v;
    admitReply br;
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 1, &v, &br), ADMIT_WAIT);
    assert_true(v > 0);
    assertHas(br.reason, "ceiling");
    assert_int_equal(br.ceiling, 1);

    /* An expired in-flight entry does not count. */
    cmd("ZADD %s %lld other:1:1", KN(INFLIGHT), now - 1);
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 1, &v, NULL), ADMIT_GO);
}

/* b as a's follower (AJ FOLLOW), and its answer. */
static admitVerdict admitFollow(const char *lid, const char *id, long long input,
                                long long max_tokens, long long reserve, const char *lead) {
    admitHead h = head(0);
    admitJob j = bjob(lid, id, input, max_tokens, reserve);
    j.follow = lead;
    admitReply br;
    admitResult res;
    runBegin(&h, &j, 1, &br, &res);
    return res.verdict;
}

/* A follower: admitted past the ceiling in its leader's in-flight unit,
 * one per leader; its charges wait in *_pend until the leader's record
 * says it went (ACT), then count from then (its snapshot too). */
static void test_admit_follow(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c"};
    craftClaim("w:1:", 3, ids, now + 60000);
    cmd("HSET %s max_in_flight 1", KN(LIMITS));
    cmd("HSET %s sonnet-4|observed 1", KN(STATE));
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 100, 50, 10, &v, NULL), ADMIT_GO);
    assert_admit(admit1(0, "w:1:2", "b", 200, 60, 20, &v, NULL), ADMIT_WAIT);   /* ceiling */
    assert_admit(admitFollow("w:1:2", "b", 200, 60, 20, "w:9:9"), ADMIT_WAIT);  /* no such lead */
    long long bAdmitted = redisNow();
    assert_admit(admitFollow("w:1:2", "b", 200, 60, 20, "w:1:1"), ADMIT_GO);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 1);
    assert_int_equal(hgetN(KN(STATE), SF("r_pend")), 1);
    assert_int_equal(hgetN(KN(STATE), SF("i_pend")), 200);
    assert_int_equal(hgetN(KN(STATE), SF("o_pend")), 60);
    assert_int_equal(hgetN(KN(STATE), SF("r_cum")), 1);
    assert_int_equal(hgetN(KN(STATE), SF("n_inflight")), 1);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 30);
    assert_string_equal(hget(KN(FOLLOW), "w:1:1"), "w:1:2");
    assert_string_equal(hget(KN(FOLLOW), ">w:1:2"), "w:1:1");
    /* One follower per leader; a second copy of b's id is not sent. */
    assert_admit(admitFollow("w:1:3", "c", 10, 10, 1, "w:1:1"), ADMIT_WAIT);

    /* Another worker's request of 500 input tokens admitted while b
     * waited for a. */
    cmd("HINCRBY %s %s 500", KN(STATE), SF("i_cum"));

    /* a answered; b went at once: a's record says so. */
    settleRec rec;
    job ja = testJob("a");
    recSuccessUse(&rec, &ja, 100, 40, 0, 0, NULL);
    settleItem it = {"w:1:1", "a", &rec, MODEL, 1, "w:1:2"};
    settleVerdict out[1];
    runSettle(&it, 1, out, 0, NULL, NULL);
    assert_settled(out[0], SETTLED_DONE);
    assertNear(zscore(KN(INFLIGHT), "w:1:2"), now + 60000, SLACK_MS, "follower in flight");
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 1);
    assert_int_equal(hgetN0(KN(STATE), SF("r_pend")), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("i_pend")), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("o_pend")), 0);
    assert_int_equal(hgetN(KN(STATE), SF("r_cum")), 2);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), 800);
    assert_int_equal(hgetN(KN(STATE), SF("n_inflight")), 1);
    assert_int_equal(hgetN(KN(STATE), SF("o_inflight")), 60);
    assert_int_equal(cmdInt("HLEN %s", KN(FOLLOW)), 0);
    /* Its snapshot: its admission's (time, counters) plus its own charges
     * (r 1 + 1, i 100 + 200, o 50 + 60, o_done 0). The 500 charged while
     * it waited may be after its reading (stamped when the API took it,
     * before this record came): they count as after, and are its
     * reading's uncertainty, with a's 40 output tokens reported meanwhile
     * ("/r/i/o/o_done"). */
    assertHas(hget(KN(RESERV), "w:1:2"), ",2,300,110,0/0/500/0/40,200,60,");
    {
        long long t = atoll(strchr(strchr(strchr(strchr(hget(KN(RESERV), "w:1:2"), ',') + 1, ',') + 1, ',') + 1, ',') + 1);
        assertNear(t, bAdmitted, SLACK_MS, "the follower's snapshot time: its admission");
    }
    /* The ceiling counts it now: c waits. */
    assert_admit(admit1(0, "w:1:3", "c", 10, 10, 1, &v, NULL), ADMIT_WAIT);
}

/* A follower that never went gives back all it was charged; one whose
 * worker died is charged as sent (it may have gone: the poison job that
 * killed it) and counts a lost delivery. */
static void test_follow_cancel_reap(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c"};
    craftClaim("w:1:", 3, ids, now + 60000);
    cmd("HSET %s sonnet-4|observed 1", KN(STATE));
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 100, 50, 10, &v, NULL), ADMIT_GO);
    assert_admit(admitFollow("w:1:2", "b", 200, 60, 20, "w:1:1"), ADMIT_GO);
    settleRec rec;
    recStart(&rec, OP_REQUEUE);                 /* not sent: the worker drains */
    assert_settled(settleOne("w:1:2", "b", &rec, 1), SETTLED_DONE);
    assert_int_equal(hgetN0(KN(STATE), SF("r_pend")), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("i_pend")), 0);
    assert_int_equal(hgetN(KN(STATE), SF("r_cum")), 1);
    assert_int_equal(hgetN(KN(STATE), SF("n_inflight")), 1);
    assert_int_equal(hgetN(KN(STATE), SF("o_inflight")), 50);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 10);
    assert_int_equal(cmdInt("HLEN %s", KN(FOLLOW)), 0);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 1);   /* b back on the queue */

    assert_admit(admitFollow("w:1:3", "c", 300, 70, 30, "w:1:1"), ADMIT_GO);
    cmd("ZADD %s %lld w:1:3", KN(LEASES), now - 1);      /* its worker died */
    const char *argv[] = {"100", "30000"};
    redisReply *r = script("reap", 2, argv);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(hgetN0(KN(STATE), SF("r_pend")), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("i_pend")), 0);
    assert_int_equal(hgetN(KN(STATE), SF("r_cum")), 2);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), 400);
    assert_int_equal(hgetN(KN(STATE), SF("n_inflight")), 1);     /* a's */
    assert_int_equal(hgetN(KN(STATE), SF("o_inflight")), 50);
    assert_int_equal(hgetN(KN(STATE), "spent"), 30);
    assert_int_equal(hgetN(KN(LOST), "c"), 1);
    assert_int_equal(cmdInt("HLEN %s", KN(FOLLOW)), 0);
}

static void test_admit_budget(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("HSET %s max_spend_usd 1", KN(LIMITS));
    cmd("HSET %s spent 999000 sonnet-4|observed 1", KN(STATE));

    long long v;
    /* Over the cap with reservations outstanding: wait for them. */
    cmd("HSET %s reserved 2000", KN(STATE));
    admitReply br;
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 5000, &v, &br), ADMIT_WAIT);
    assertHas(br.reason, "spend");
    assert_int_equal(xlen(), 0);

    /* Nothing reserved: the fleet stops, one budget_exceeded entry. */
    cmd("HSET %s reserved 0", KN(STATE));
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 5000, &v, NULL), ADMIT_BUDGET);
    assert_admit(admit1(0, "w:1:2", "b", 10, 10, 5000, &v, NULL), ADMIT_BUDGET);
    assert_int_equal(xlen(), 1);
    redisReply *r = cmdR("XRANGE %s - +", KN(RESULTS));
    assert_string_equal(entryField(r->element[0], "status"), "budget_exceeded");
    assert_string_equal(entryField(r->element[0], "max_spend_usd"), "1");
    freeReplyObject(r);
    assert_string_equal(hget(KN(STATE), "budget_cap"), "1");
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);

    /* A job that fits under the cap still goes. */
    assert_admit(admit1(0, "w:1:2", "b", 10, 10, 1000, &v, NULL), ADMIT_GO);
}

static void test_admit_noprice(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    cmd("HSET %s sonnet-4|observed 1", KN(STATE));
    cmd("HSET %s max_spend_usd 10", KN(LIMITS));
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, -1, &v, NULL), ADMIT_NOPRICE);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);

    /* Without a cap, no price is no obstacle (and reserves nothing). */
    cmd("HDEL %s max_spend_usd", KN(LIMITS));
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, -1, &v, NULL), ADMIT_GO);
    assertHas(hget(KN(RESERV), "w:1:1"), "10,10,0,");
    assert_int_equal(hgetN0(KN(STATE), "reserved"), 0);
}

static void test_admit_poison(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("HSET %s a 3 b 1", KN(LOST));                  /* max_deliveries 3 */
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 1, &v, NULL), ADMIT_POISON);
    assert_int_equal(v, 3);
    /* One lost delivery: still runs, as attempt 2. */
    assert_admit(admit1(0, "w:1:2", "b", 10, 10, 1, &v, NULL), ADMIT_GO);
    assert_int_equal(v, 2);
}

static void test_admit_prices_ver(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    cmd("HSET %s prices_ver 3", KN(STATE));
    long long v;
    admitReply br;
    assert_admit(admit1(2, "w:1:1", "a", 10, 10, 1, &v, &br), ADMIT_WAIT);
    assert_int_equal(br.prices_ver, 3);
    assertHas(br.reason, "price");
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);
    assert_admit(admit1(3, "w:1:1", "a", 10, 10, 1, &v, NULL), ADMIT_GO);
}

/* ============================ the bucket estimate ============================ */

/* The status reply's class c (its fields in cv); fails when absent. */
static void statusOf(redisReply *r, const char *c, const char **vals, const char **cv) {
    int n = statusParse(r, vals);
    if (n < 0) fail_msg("not a status reply");
    assert_int_equal(atoi(vals[STATUS_classes]), n);
    for (int k = 0; k < n; k++) {
        statusClass(r, k, cv);
        if (!strcmp(cv[CSTATUS_class], c)) return;
    }
    fail_msg("class %s not in the status reply", c);
}

static void test_bucket_estimate(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1 "
        "classes sonnet-4", KN(STATE), now - 30000);

    /* status: estimate ~30000 (refilled 30 s at 1 token/ms). */
    redisReply *r = script("status", 0, NULL);
    const char *vals[STATUS_COUNT], *cv[CSTATUS_COUNT];
    statusOf(r, CLASS, vals, cv);
    assert_int_equal(statusParse(r, vals), 1);
    long long est = atoll(cv[CSTATUS_i_estimate]);
    assert_true(est >= 30000 && est <= 30000 + SLACK_MS);
    assert_string_equal(cv[CSTATUS_i_limit], "60000");
    assert_string_equal(cv[CSTATUS_i_soft_floor], "3000");   /* 5% */
    assert_string_equal(cv[CSTATUS_r_estimate], "");        /* not reported */
    freeReplyObject(r);

    /* need 40000 + soft 3000 - est 30000 = 13000 tokens at 1/ms: the job
     * waits that long, parked (over 250 ms). */
    long long v;
    admitReply br;
    assert_admit(admit1(0, "w:1:1", "a", 40000, 10, 1, &v, &br), ADMIT_PARKED);
    assert_true(v <= 13000 && v >= 13000 - SLACK_MS);
    assertHas(br.reason, "input bucket");

    /* need 20000 + 3000 <= 30000: goes, and the estimate drops by it. */
    assert_admit(admit1(0, "w:1:2", "b", 20000, 10, 1, &v, NULL), ADMIT_GO);
    r = script("status", 0, NULL);
    statusOf(r, CLASS, vals, cv);
    est = atoll(cv[CSTATUS_i_estimate]);
    assert_true(est >= 10000 && est <= 10000 + SLACK_MS);
    freeReplyObject(r);
}

static void test_bucket_wait_rate(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    /* 120000/min: 2 tokens/ms; est 60000, soft 6000; need 70000 waits
     * (70000 + 6000 - 60000) / 2 = 8000 ms. */
    cmd("HSET %s sonnet-4|i_lim 120000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1", KN(STATE), now - 30000);
    /* A worker waits for a time 20 s ahead (wake_at): a job parked sooner
     * drops it, so that the next claim, an idle poll's too, tells one. */
    cmd("HSET %s wake_at %lld wake_by w-other", KN(STATE), now + 20000);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 70000, 10, 1, &v, NULL), ADMIT_PARKED);
    assert_true(v <= 8000 && v >= 8000 - SLACK_MS);
    assert_int_equal(hgetN(KN(STATE), "wake_at"), 0);
    /* ... and one parked later than it leaves it. */
    cmd("HSET %s wake_at %lld", KN(STATE), now + 5000);

    /* A need over the whole bucket waits for a full one, not forever:
     * (120000 - 60000) / 2 = 30000 ms (not spaced behind the first). */
    cmd("HDEL %s sonnet-4|park_tail", KN(STATE));
    assert_admit(admit1(0, "w:1:2", "b", 500000, 10, 1, &v, NULL), ADMIT_PARKED);
    assert_true(v <= 30000 && v >= 30000 - SLACK_MS);
    assert_int_equal(hgetN(KN(STATE), "wake_at"), now + 5000);
}

/* ============================== settle.lua ================================== */

static void test_settle_result(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 100, 50, 5000, &v, NULL), ADMIT_GO);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 5000);
    assert_int_equal(hgetN(KN(STATE), SF("o_inflight")), 50);
    assert_int_equal(hgetN(KN(STATE), SF("n_inflight")), 1);

    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 1234, 1, NULL);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_DONE);
    assert_int_equal(xlen(), 1);
    redisReply *r = cmdR("XRANGE %s - +", KN(RESULTS));
    assert_string_equal(entryField(r->element[0], "id"), "a");
    assert_string_equal(entryField(r->element[0], "status"), "ok");
    assert_string_equal(entryField(r->element[0], "response"), BODY);
    freeReplyObject(r);
    assert_int_equal(cmdInt("SISMEMBER %s a", KN(DONE)), 1);
    assert_int_equal(hgetN0(KN(STATE), "reserved"), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("o_inflight")), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("n_inflight")), 0);
    assert_int_equal(hgetN(KN(STATE), SF("o_done")), 20);       /* reported */
    assert_int_equal(hgetN(KN(STATE), "spent"), 1234);
    assert_int_equal(cmdInt("HEXISTS %s w:1:1", KN(RESERV)), 0);
    assert_int_equal(zscore(KN(INFLIGHT), "w:1:1"), -1);
    assert_int_equal(zscore(KN(LEASES), "w:1:1"), -1);
    /* The claim's last lease ended: its list and count go. */
    assert_int_equal(cmdInt("EXISTS %s", listKey("w:1:")), 0);
    assert_int_equal(cmdInt("HEXISTS %s w:1:", KN(CLAIMED)), 0);
    assert_string_equal(hget(KN(STATE), "observed"), "1");
    assert_string_equal(hget(KN(STATE), SF("observed")), "1");
    recFree(&rec);

    /* The same id again on a new lease: refused, nothing written. */
    const char *ids2[] = {"a"};
    craftClaim("w:2:", 1, ids2, now + 60000);
    recSuccess(&rec, &j, 1234, 1, NULL);
    assert_settled(settleOne("w:2:1", "a", &rec, 0), SETTLED_DUP);
    assert_int_equal(xlen(), 1);
    assert_int_equal(cmdInt("SCARD %s", KN(DONE)), 1);
    recFree(&rec);
}

static void test_settle_lost(void **state) {
    (void)state;
    cmd("HSET %s spent 10 reserved 300", KN(STATE));
    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 1234, 1, NULL);
    settleItem it = {"w:1:1", "a", &rec, MODEL, 0, NULL};          /* never leased */
    settleVerdict out[1];
    runSettle(&it, 1, out, 0, NULL, NULL);
    assert_settled(out[0], SETTLED_LOST);
    assert_int_equal(xlen(), 0);
    assert_int_equal(cmdInt("SCARD %s", KN(DONE)), 0);
    assert_int_equal(hgetN(KN(STATE), "spent"), 10);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 300);
    recFree(&rec);

    /* A FAILED record for a lease that is gone: no retry scheduled. */
    recFailed(&rec, &j, 500, -1, 1);
    runSettle(&it, 1, out, 0, NULL, NULL);
    assert_settled(out[0], SETTLED_LOST);
    assert_int_equal(cmdInt("ZCARD %s", KN(DELAYED)), 0);
    assert_int_equal(cmdInt("EXISTS %s", KN(ATTEMPTS)), 0);
    recFree(&rec);
}

static void test_settle_429_short(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    job j = testJob("a");
    settleRec rec;
    recFailed(&rec, &j, 429, 5000, 1);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_RETRY);
    /* Within max_pause: the class pauses (its buckets unknown: the
     * retry-after), not the fleet. */
    assertNear(hgetN(KN(STATE), SF("pause_until")), now + 5000, SLACK_MS, "pause_until");
    assert_int_equal(hgetN(KN(STATE), SF("pause_kind")), PAUSE_SHORT);
    assert_int_equal(hgetN0(KN(STATE), "pause_until"), 0);
    /* An API error costs nothing: the reservation is released. */
    assert_int_equal(hgetN0(KN(STATE), "reserved"), 0);
    assert_int_equal(hgetN0(KN(STATE), "spent"), 0);
    /* The retry waits at least the retry-after. */
    long long due = zscore(KN(DELAYED), "w:1:1");
    assert_true(due >= now + 5000 && due <= now + 5000 + SLACK_MS);

    redisReply *r = script("status", 0, NULL);
    const char *vals[STATUS_COUNT], *cv[CSTATUS_COUNT];
    cmd("HSET %s classes sonnet-4", KN(STATE));
    freeReplyObject(r);
    r = script("status", 0, NULL);
    statusOf(r, CLASS, vals, cv);
    assert_string_equal(vals[STATUS_paused], "1");
    assert_string_equal(vals[STATUS_pause_kind], "short");
    assertHas(vals[STATUS_pause_reason], "sonnet-4: ");
    assert_string_equal(vals[STATUS_total_r429], "1");
    assert_string_equal(cv[CSTATUS_paused], "1");
    assert_string_equal(cv[CSTATUS_pause_kind], "short");
    assert_string_equal(cv[CSTATUS_r429], "1");
    assert_string_equal(cv[CSTATUS_requests], "1");
    freeReplyObject(r);

    /* The class's jobs wait while it is paused: claimed (the fleet is not
     * paused), then parked at admission for the rest of the pause. */
    claimReply cr;
    cmd("LPUSH %s %s", KN(JOBS), rawJob("z"));
    runClaim(4, 60000, "w:3:", &cr);
    assert_int_equal(cr.wait_ms, 0);
    assert_int_equal(cr.n, 1);
    long long v;
    assert_admit(admit1(0, "w:3:1", "z", 10, 10, 1, &v, NULL), ADMIT_PARKED);
    assert_true(v > 0 && v <= 5000);
    assertNear(v, 5000, SLACK_MS, "parked for the pause");
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);
    recFree(&rec);
}

static void test_settle_429_long(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    job j = testJob("a");
    settleRec rec;
    recFailed(&rec, &j, 429, 600000, 1);            /* max_pause 300000 */
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_RETRY);
    assertNear(hgetN(KN(STATE), "pause_until"), now + 600000, SLACK_MS, "pause_until");
    assert_int_equal(hgetN(KN(STATE), "pause_kind"), PAUSE_LONG);
    assertNear(hgetN(KN(STATE), "probe_at"), now + 10000, SLACK_MS, "probe_at");
    assertHas(hget(KN(STATE), "pause_reason"), "over max_pause");
    assert_int_equal(hgetN0(KN(STATE), SF("pause_until")), 0);    /* the fleet's */
    recFree(&rec);
    long long due = zscore(KN(DELAYED), "w:1:1");
    assert_true(due >= now + 600000);               /* pushed out by the cap */
    cmd("ZADD %s %lld w:9:1", KN(DELAYED), now + 7200000);     /* not the pause's */

    /* The cap lifts early: the probe's 200 ends the pause, and the retry
     * it had pushed out is due now, not in ten minutes. */
    const char *ids2[] = {"b"};
    craftClaim("w:2:", 1, ids2, now + 60000);
    craftAdmitted("w:2:1", "b", 100, 50, 5000, now + 60000, now);
    cmd("HSET %s probe_lease w:2:1", KN(STATE));
    job jb = testJob("b");
    recSuccess(&rec, &jb, 10, 1, NULL);
    assert_settled(settleOne("w:2:1", "b", &rec, 0), SETTLED_DONE);
    assert_int_equal(hgetN0(KN(STATE), "pause_until"), 0);
    long long now2 = redisNow();
    assert_true(zscore(KN(DELAYED), "w:1:1") <= now2);
    assert_int_equal(zscore(KN(DELAYED), "w:9:1"), now + 7200000);
    recFree(&rec);
}

static void test_settle_retry_until_max_attempts(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    cmd("HSET %s max_attempts 2 base_delay 1000", KN(LIMITS));
    /* A worker waits for a due time 5 s away (and idle polls trust it). */
    cmd("HSET %s wake_at %lld wake_by other", KN(STATE), now + 5000);
    job j = testJob("a");
    settleRec rec;
    recFailed(&rec, &j, 500, -1, 1);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_RETRY);
    /* Full jitter: rand 0.5 of base_delay 1000. */
    assertNear(zscore(KN(DELAYED), "w:1:1"), now + 500, SLACK_MS, "retry due");
    /* Due sooner than that time: dropped, the next poll looks. */
    assert_int_equal(hgetN(KN(STATE), "wake_at"), 0);
    assert_string_equal(hget(KN(DELAYEDJOB), "w:1:1"), rawJob("a"));
    assert_int_equal(hgetN(KN(ATTEMPTS), "a"), 1);
    assert_int_equal(xlen(), 0);
    assert_int_equal(cmdInt("SISMEMBER %s a", KN(DONE)), 0);
    assert_int_equal(zscore(KN(LEASES), "w:1:1"), -1);
    recFree(&rec);

    /* Attempt 2 of 2 fails: the error result, saying why. */
    const char *ids2[] = {"a"};
    craftClaim("w:2:", 1, ids2, now + 60000);
    craftAdmitted("w:2:1", "a", 100, 50, 5000, now + 60000, now);
    recFailed(&rec, &j, 500, -1, 2);
    assert_settled(settleOne("w:2:1", "a", &rec, 0), SETTLED_DONE);
    assert_int_equal(xlen(), 1);
    redisReply *r = cmdR("XRANGE %s - +", KN(RESULTS));
    assert_string_equal(entryField(r->element[0], "status"), "error");
    const char *msg = entryField(r->element[0], "error_message");
    assert_non_null(msg);
    assert_int_equal(strncmp(msg, "gave up after 2 attempts", 24), 0);
    assertHas(msg, "boom 500");
    freeReplyObject(r);
    assert_int_equal(zscore(KN(DELAYED), "w:2:1"), -1);
    assert_int_equal(cmdInt("SISMEMBER %s a", KN(DONE)), 1);
    assert_int_equal(cmdInt("HEXISTS %s a", KN(ATTEMPTS)), 0);
    recFree(&rec);
}

static void test_settle_retry_budget(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("HSET %s retry_budget_per_min 1", KN(LIMITS));
    job ja = testJob("a"), jb = testJob("b");
    settleRec rec;
    settleVerdict out[1];

    /* Budget free: retried. */
    recFailed(&rec, &ja, 503, -1, 1);
    settleItem it = {"w:1:1", "a", &rec, MODEL, 0, NULL};
    runSettle(&it, 1, out, 0, NULL, NULL);
    assert_settled(out[0], SETTLED_RETRY);
    recFree(&rec);

    /* One retry sent within the minute (and none waiting): spent. */
    cmd("DEL %s %s", KN(DELAYED), KN(DELAYEDJOB));
    cmd("ZADD %s %lld x:1:1", KN(RETRYLOG), now - 1000);
    recFailed(&rec, &jb, 503, -1, 1);
    assert_settled(settleOne("w:1:2", "b", &rec, 0), SETTLED_DONE);
    assert_int_equal(cmdInt("ZCARD %s", KN(DELAYED)), 0);
    redisReply *r = cmdR("XRANGE %s - +", KN(RESULTS));
    assert_int_equal(r->elements, 1);
    assert_string_equal(entryField(r->element[0], "id"), "b");
    assertHas(entryField(r->element[0], "error_message"), "retry budget is spent");
    freeReplyObject(r);
    assert_int_equal(hgetN(KN(STATS), "retry_budget_refusals"), 1);
    recFree(&rec);
}

/* A header that says the limit is 0 (an upstream that does not meter a
 * bucket) and nothing remains: no prediction to clamp to, and no script
 * error (it compared nil with nil). */
static void test_settle_observation_zero_limit(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s sonnet-4|i_lim 0 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1",
        KN(STATE), now);
    rlHeaders rl;
    rlInit(&rl);
    rl.input.limit = 0;
    rl.input.remaining = 0;
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 10, 1, &rl);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_DONE);
    assert_int_equal(xlen(), 1);
    assert_int_equal(hgetN(KN(STATE), "seq"), 1);   /* the write counter grew */
    /* A settle the fencing refuses writes nothing: the counter stays. */
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_LOST);
    assert_int_equal(hgetN(KN(STATE), "seq"), 1);
    recFree(&rec);
}

static void test_settle_observation_fenced(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 10000 sonnet-4|i_at %lld sonnet-4|observed 1",
        KN(STATE), now);
    rlHeaders rl;
    rlInit(&rl);
    rl.input.limit = 80000;
    rl.input.remaining = 70000;
    job j = testJob("a");
    settleRec rec;
    settleVerdict out[1];

    /* The answer of a lease that is gone: the bucket stays as it was. */
    recSuccess(&rec, &j, 10, 1, &rl);
    assert_true(rec.has_obs);
    settleItem it = {"w:9:1", "a", &rec, MODEL, 0, NULL};
    runSettle(&it, 1, out, 0, NULL, NULL);
    assert_settled(out[0], SETTLED_LOST);
    assert_int_equal(hgetN(KN(STATE), SF("i_lim")), 60000);
    assert_int_equal(hgetN(KN(STATE), SF("i_rem")), 10000);
    assert_int_equal(hgetN(KN(STATE), SF("i_at")), now);
    recFree(&rec);

    /* The same answer from a held lease is the new observation (the
     * prediction clamped to the header's +-500). */
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    recSuccess(&rec, &j, 10, 1, &rl);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_DONE);
    assert_int_equal(hgetN(KN(STATE), SF("i_lim")), 80000);
    long long rem = hgetN(KN(STATE), SF("i_rem"));
    assert_true(rem >= 69500 && rem <= 70500);
    assert_true(hgetN(KN(STATE), SF("i_at")) >= now);
    recFree(&rec);
}

static void test_settle_claims_freed_slots(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    cmd("LPUSH %s %s %s", KN(JOBS), rawJob("n1"), rawJob("n2"));
    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 10, 1, NULL);
    settleItem it = {"w:1:1", "a", &rec, MODEL, 0, NULL};
    settleVerdict out[1];
    claimReply cr;
    runSettle(&it, 1, out, 1, "w:2:", &cr);
    assert_settled(out[0], SETTLED_DONE);
    assert_int_equal(cr.wait_ms, 0);
    assert_int_equal(cr.n, 1);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:2:"));
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, rawJob("n1"));      /* oldest */
    freeReplyObject(r);
    assert_true(zscore(KN(LEASES), "w:2:1") > 0);
    recFree(&rec);
}

/* =============================== pause.lua ================================== */

static void pauseCall(int kind, const char *reason, long long *was, long long *stopped) {
    char k[16];
    snprintf(k, sizeof(k), "%d", kind);
    const char *argv[PA_COUNT];
    argv[PA_KIND] = k;
    argv[PA_REASON] = reason;
    redisReply *r = script("pause", PA_COUNT, argv);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    *was = r->element[0]->integer;
    *stopped = r->element[1]->integer;
    freeReplyObject(r);
}

static void test_pause_operator(void **state) {
    (void)state;
    long long now = redisNow();
    long long was, stopped;
    pauseCall(PAUSE_OPERATOR, "maintenance", &was, &stopped);
    assert_int_equal(was, 0);
    assert_int_equal(hgetN(KN(STATE), "pause_kind"), PAUSE_OPERATOR);
    assert_int_equal(hgetN(KN(STATE), "pause_until"), LF_FOREVER_MS);
    assert_string_equal(hget(KN(STATE), "pause_reason"), "maintenance");

    /* Admission waits with the operator's reason. */
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    const char *ids2[] = {"b"};
    craftClaim("w:2:", 1, ids2, now + 60000);
    long long v;
    admitReply br;
    assert_admit(admit1(0, "w:2:1", "b", 10, 10, 1, &v, &br), ADMIT_WAIT);
    assert_string_equal(br.reason, "maintenance");
    /* Whatever the class. */
    assert_admit(admit1M("claude-haiku-4-5", "", "w:2:1", "b", 10, 10, &v, &br), ADMIT_WAIT);
    assert_string_equal(br.reason, "maintenance");

    /* A 429 meanwhile neither shortens nor replaces it. */
    job j = testJob("a");
    settleRec rec;
    recFailed(&rec, &j, 429, 5000, 1);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_RETRY);
    assert_int_equal(hgetN(KN(STATE), "pause_kind"), PAUSE_OPERATOR);
    assert_int_equal(hgetN(KN(STATE), "pause_until"), LF_FOREVER_MS);
    assert_string_equal(hget(KN(STATE), "pause_reason"), "maintenance");
    recFree(&rec);

    /* Resume: over, not budget-stopped. */
    pauseCall(-1, "", &was, &stopped);
    assert_int_equal(was, 1);
    assert_int_equal(stopped, 0);
    assert_int_equal(hgetN0(KN(STATE), "pause_until"), 0);
    /* (The 429 paused sonnet-4 for 5 s: a job of another class goes.) */
    assert_admit(admit1M("claude-haiku-4-5", "", "w:2:1", "b", 10, 10, &v, NULL), ADMIT_GO);
}

static void test_pause_resume_budget_stopped(void **state) {
    (void)state;
    long long was, stopped;
    cmd("HSET %s max_spend_usd 1", KN(LIMITS));
    cmd("HSET %s budget_cap 1", KN(STATE));
    pauseCall(-1, "", &was, &stopped);
    assert_int_equal(was, 0);
    assert_int_equal(stopped, 1);

    /* A cap that has since changed does not stop the fleet. */
    cmd("HSET %s max_spend_usd 2", KN(LIMITS));
    pauseCall(-1, "", &was, &stopped);
    assert_int_equal(stopped, 0);
}

/* =============================== claim.lua ================================== */

static void test_claim_oldest_first(void **state) {
    (void)state;
    long long now = redisNow();
    /* Producers LPUSH: j1 is the oldest. */
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j1"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j2"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j3"));
    claimReply cr;
    runClaim(2, 30000, "w:1:", &cr);
    assert_int_equal(cr.wait_ms, 0);
    assert_int_equal(cr.n, 2);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:1:"));
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->str, rawJob("j1"));
    assert_string_equal(r->element[1]->str, rawJob("j2"));
    freeReplyObject(r);
    assertNear(zscore(KN(LEASES), "w:1:1"), now + 30000, SLACK_MS, "lease 1");
    assertNear(zscore(KN(LEASES), "w:1:2"), now + 30000, SLACK_MS, "lease 2");
    assert_int_equal(cmdInt("ZCARD %s", KN(LEASES)), 2);
    assert_int_equal(hgetN(KN(CLAIMED), "w:1:"), 2);
    r = cmdR("LRANGE %s 0 -1", KN(JOBS));
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, rawJob("j3"));
    freeReplyObject(r);

    /* Empty queue after the last one. */
    runClaim(5, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 1);
    runClaim(5, 30000, "w:3:", &cr);
    assert_int_equal(cr.wait_ms, 0);
    assert_int_equal(cr.n, 0);
    assert_int_equal(cmdInt("EXISTS %s", listKey("w:3:")), 0);
}

/* An empty queue with a parked job due later: the first idle worker to
 * ask is told when (NEXT_MS; again when it asks again), the others that
 * nothing is due (-1), until
 * that time has come (served, or its claimer late): then the next to ask
 * is told the next due time. */
static void test_claim_one_waker(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("ZADD %s %lld p:1:1", KN(PARKED), now + 800);
    cmd("HSET %s p:1:1 %s", KN(PARKEDJOB), rawJob("p"));
    claimReply cr;
    runClaim(4, 30000, "a:1:", &cr);
    assert_int_equal(cr.n, 0);
    assert_true(cr.next_ms > 0);        /* (not -1: nothing due) */
    assertNear(cr.next_ms, 800, SLACK_MS, "the first is told when");
    runClaim(4, 30000, "b:1:", &cr);
    assert_int_equal(cr.next_ms, -1);
    runClaim(4, 30000, "c:1:", &cr);
    assert_int_equal(cr.next_ms, -1);
    /* The one told asks again (a push woke it before): it hears it again. */
    runClaim(4, 30000, "a:2:", &cr);
    assertNear(cr.next_ms, 800, SLACK_MS, "the one told, again");
    /* An earlier due time gets a claimer of its own. */
    cmd("ZADD %s %lld p:1:2", KN(PARKED), now + 400);
    cmd("HSET %s p:1:2 %s", KN(PARKEDJOB), rawJob("q"));
    runClaim(4, 30000, "d:1:", &cr);
    assert_true(cr.next_ms > 0);        /* (not -1: nothing due) */
    assertNear(cr.next_ms, 400, SLACK_MS, "an earlier one");
    /* That time came (a claim served it, or its claimer is late): the
     * next to ask is told the next due time. */
    cmd("HSET %s wake_at %lld", KN(STATE), now - 1);
    runClaim(4, 30000, "e:1:", &cr);
    assert_true(cr.next_ms > 0);        /* (not -1: nothing due) */
    assertNear(cr.next_ms, 400, SLACK_MS, "the next due time has a claimer again");
    runClaim(4, 30000, "f:1:", &cr);
    assert_int_equal(cr.next_ms, -1);
}

/* A claim that gets fewer jobs than it asked for (the queue drained) says
 * when to look again, as an empty claim does, one waker per due time; one
 * that gets all it asked for says nothing (the worker asks again at once
 * when it has room). 16 paced workers made 0.16 empty claims a job, most
 * right after an admission freed a slot. */
static void test_claim_drained_says_next(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("ZADD %s %lld p:1:1", KN(PARKED), now + 800);
    cmd("HSET %s p:1:1 %s", KN(PARKEDJOB), rawJob("p"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j1"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j2"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j3"));
    claimReply cr;
    runClaim(2, 30000, "a:1:", &cr);
    assert_int_equal(cr.n, 2);
    assert_false(cr.drained);           /* all it asked for: nothing said */
    assert_int_equal(cr.next_ms, -1);
    runClaim(4, 30000, "a:2:", &cr);
    assert_int_equal(cr.n, 1);
    assert_true(cr.drained);
    assertNear(cr.next_ms, 800, SLACK_MS, "a drained claim is told when");
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j4"));
    runClaim(4, 30000, "b:1:", &cr);
    assert_int_equal(cr.n, 1);
    assert_int_equal(cr.next_ms, -1);   /* one waker: a was told */
    /* A retry due sooner than the parked job: the drained claim is told
     * the retry's time. */
    cmd("ZADD %s %lld r1", KN(DELAYED), now + 300);
    cmd("HSET %s r1 %s", KN(DELAYEDJOB), rawJob("r1"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j5"));
    runClaim(4, 30000, "c:1:", &cr);
    assert_int_equal(cr.n, 1);
    assertNear(cr.next_ms, 300, SLACK_MS, "the earlier due time has its claimer");
}

/* What a worker's waker took (the oldest jobs, moved into its intake at a
 * push) is claimed first, oldest first, by that worker's claim; a claim
 * that cannot take jobs (paused) and a claim of none give it back to the
 * consuming end of the queue: it is queued all along. */
static void test_claim_intake(void **state) {
    (void)state;
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j1"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j2"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j3"));
    /* The waker's move, twice: j1 then j2 into w's intake. */
    cmd("LMOVE %s %s RIGHT LEFT", KN(JOBS), intakeKey("w"));
    cmd("LMOVE %s %s RIGHT LEFT", KN(JOBS), intakeKey("w"));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j4"));
    claimReply cr;
    runClaimBy(3, 30000, "w:1:", "w", &cr);
    assert_int_equal(cr.n, 3);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:1:"));
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->str, rawJob("j1"));
    assert_string_equal(r->element[1]->str, rawJob("j2"));
    assert_string_equal(r->element[2]->str, rawJob("j3"));
    freeReplyObject(r);
    assert_int_equal(cmdInt("EXISTS %s", intakeKey("w")), 0);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 1);

    /* Another worker's intake is not this one's to claim. */
    cmd("LMOVE %s %s RIGHT LEFT", KN(JOBS), intakeKey("v"));
    runClaimBy(3, 30000, "w:2:", "w", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(cmdInt("LLEN %s", intakeKey("v")), 1);

    /* A claim of none gives it back and claims nothing. */
    runClaimBy(0, 30000, "", "v", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(cmdInt("EXISTS %s", intakeKey("v")), 0);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(LEASES)), 3);

    /* Paused: nothing claimed, the intake back in the queue. */
    long long now = redisNow();
    cmd("LMOVE %s %s RIGHT LEFT", KN(JOBS), intakeKey("w"));
    cmd("HSET %s pause_until %lld pause_kind %d pause_reason %s", KN(STATE),
        now + 4000, PAUSE_SHORT, "429 wait");
    runClaimBy(3, 30000, "w:3:", "w", &cr);
    assert_true(cr.wait_ms > 0);
    assert_int_equal(cmdInt("EXISTS %s", intakeKey("w")), 0);
    r = cmdR("LRANGE %s 0 -1", KN(JOBS));
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, rawJob("j4"));
    freeReplyObject(r);
}

static void test_claim_paused(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j1"));
    cmd("HSET %s pause_until %lld pause_kind %d pause_reason %s", KN(STATE),
        now + 4000, PAUSE_SHORT, "429 wait");
    claimReply cr;
    runClaim(3, 30000, "w:1:", &cr);
    assert_true(cr.wait_ms > 0 && cr.wait_ms <= 4000);
    assertNear(cr.wait_ms, 4000, SLACK_MS, "claim wait");
    assert_string_equal(cr.reason, "429 wait");
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(LEASES)), 0);

    /* A long pause with a probe due: one job. */
    cmd("LPUSH %s %s", KN(JOBS), rawJob("j2"));
    cmd("HSET %s pause_until %lld pause_kind %d probe_at %lld", KN(STATE),
        now + 600000, PAUSE_LONG, now - 1);
    runClaim(3, 30000, "w:2:", &cr);
    assert_int_equal(cr.wait_ms, 0);
    assert_int_equal(cr.n, 1);

    /* Stopped at the spend cap. */
    cmd("HSET %s pause_until 0", KN(STATE));
    cmd("HSET %s max_spend_usd 1", KN(LIMITS));
    cmd("HSET %s budget_cap 1", KN(STATE));
    runClaim(3, 30000, "w:3:", &cr);
    assert_true(cr.wait_ms > 0);
    assertHas(cr.reason, "spend cap");
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 1);
}

static void test_claim_due_retries(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s retry_budget_per_min 1", KN(LIMITS));
    cmd("ZADD %s %lld r:1:1 %lld r:1:2 %lld r:1:3", KN(DELAYED), now - 2000, now - 1000,
        now + 60000);
    cmd("HSET %s r:1:1 %s r:1:2 %s r:1:3 %s", KN(DELAYEDJOB), rawJob("d1"), rawJob("d2"),
        rawJob("d3"));
    claimReply cr;
    runClaim(5, 30000, "w:1:", &cr);
    /* Budget 1: only the first due retry moves, and is claimed. */
    assert_int_equal(cr.n, 1);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:1:"));
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, rawJob("d1"));
    freeReplyObject(r);
    assert_int_equal(zscore(KN(DELAYED), "r:1:1"), -1);
    assert_int_equal(cmdInt("HEXISTS %s r:1:1", KN(DELAYEDJOB)), 0);
    assert_true(zscore(KN(DELAYED), "r:1:2") > 0);          /* waits for budget */
    assert_true(zscore(KN(DELAYED), "r:1:3") > 0);          /* not due */
    assert_int_equal(cmdInt("ZCARD %s", KN(RETRYLOG)), 1);

    /* Budget raised: the other due retry moves; the later one stays. */
    cmd("HSET %s retry_budget_per_min 10", KN(LIMITS));
    runClaim(5, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 1);
    assert_int_equal(zscore(KN(DELAYED), "r:1:2"), -1);
    assert_true(zscore(KN(DELAYED), "r:1:3") > 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(RETRYLOG)), 2);
}

/* ================================ reap.lua ================================== */

/* Workers whose heartbeat ended (`intakes`: died, or left) have their
 * intakes given back at every reap, its oldest at the consuming end, until
 * WAKE_BLOCK_MS + 2 s past the end (a BLMOVE left blocked can still take a
 * push that long); then the entry goes. A live worker's intake stays (its
 * own claim takes it). */
static void test_reap_intake(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("ZADD %s %lld dead %lld live %lld old", KN(INTAKES), now - 1, now + 60000,
        now - LF_WAKE_BLOCK_MS - 3000);
    cmd("LPUSH %s %s", KN(JOBS), rawJob("q"));
    cmd("LPUSH %s %s", intakeKey("dead"), rawJob("d1"));     /* (the older) */
    cmd("LPUSH %s %s", intakeKey("dead"), rawJob("d2"));
    cmd("LPUSH %s %s", intakeKey("live"), rawJob("l"));
    cmd("LPUSH %s %s", intakeKey("old"), rawJob("o"));
    const char *argv[] = {"100", "30000"};
    freeReplyObject(script("reap", 2, argv));
    redisReply *r = cmdR("LRANGE %s 0 -1", KN(JOBS));
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[0]->str, rawJob("q"));
    assert_string_equal(r->element[3]->str, rawJob("d1"));
    freeReplyObject(r);
    assert_int_equal(cmdInt("EXISTS %s", intakeKey("dead")), 0);
    assert_int_equal(cmdInt("EXISTS %s", intakeKey("old")), 0);
    assert_int_equal(cmdInt("LLEN %s", intakeKey("live")), 1);
    /* The recently ended entry stays (its waker may still take a push),
     * the long ended one is gone. */
    assert_true(zscore(KN(INTAKES), "dead") > 0);
    assert_true(zscore(KN(INTAKES), "old") < 0);
    cmd("LPUSH %s %s", intakeKey("dead"), rawJob("late"));
    freeReplyObject(script("reap", 2, argv));
    assert_int_equal(cmdInt("EXISTS %s", intakeKey("dead")), 0);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 5);
}

/* A worker leaving (a claim of -1): its intake back, out of `workers`,
 * its `intakes` entry ended now (the reaper keeps looking a while). */
static void test_claim_leaves(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("ZADD %s %lld w", KN(WORKERS), now + 30000);
    cmd("ZADD %s %lld w", KN(INTAKES), now + 30000);
    cmd("LPUSH %s %s", intakeKey("w"), rawJob("x"));
    claimReply cr;
    runClaimBy(-1, 30000, "", "w", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 1);
    assert_int_equal(cmdInt("EXISTS %s", intakeKey("w")), 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(WORKERS)), 0);
    assertNear(zscore(KN(INTAKES), "w"), now, SLACK_MS, "ended now");
}

static void test_reap_expired(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("ZADD %s %lld w:1:1", KN(LEASES), now - 1);       /* a's expired */
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now - 1, now - 60000);
    craftAdmitted("w:1:2", "b", 100, 40, 3000, now + 60000, now);
    cmd("HSET %s spent 7", KN(STATE));
    cmd("LPUSH %s %s", KN(JOBS), rawJob("q"));
    const char *argv[] = {"100", "30000"};
    redisReply *r = script("reap", 2, argv);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    /* Back at the consuming end: the next claimed. */
    r = cmdR("LINDEX %s -1", KN(JOBS));
    assert_string_equal(r->str, rawJob("a"));
    freeReplyObject(r);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 2);
    assert_int_equal(hgetN(KN(LOST), "a"), 1);
    assert_int_equal(hgetN(KN(LOST), "b"), -1);
    assert_int_equal(hgetN(KN(STATE), "spent"), 5007);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 3000);
    assert_int_equal(hgetN(KN(STATE), SF("o_inflight")), 40);
    assert_int_equal(hgetN(KN(STATE), SF("n_inflight")), 1);
    assert_int_equal(zscore(KN(LEASES), "w:1:1"), -1);
    assert_int_equal(zscore(KN(INFLIGHT), "w:1:1"), -1);
    assert_int_equal(cmdInt("HEXISTS %s w:1:1", KN(RESERV)), 0);
    assert_true(zscore(KN(LEASES), "w:1:2") > 0);
    assert_int_equal(hgetN(KN(CLAIMED), "w:1:"), 1);
    assert_int_equal(hgetN(KN(STATS), "lost_in_flight"), 1);

    /* A settle for the reaped lease changes nothing. */
    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 10, 1, NULL);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_LOST);
    assert_int_equal(hgetN(KN(STATE), "spent"), 5007);
    assert_int_equal(xlen(), 0);
    recFree(&rec);
}

/* A record with a figure past 2^53 (a worker that did not bound usage):
 * settle writes none of it; the cost is unknown, so the reservation counts. */
static void test_settle_refuses_inexact_numbers(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    cmd("HSET %s spent 7", KN(STATE));
    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 10, 1, NULL);
    snprintf(rec.att[ATT_COST_MICRO], sizeof(rec.att[0]), "%s", "-9223372036854775807");
    snprintf(rec.att[ATT_INPUT_TOKENS], sizeof(rec.att[0]), "%s", "9223372036854775807");
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_DONE);
    assert_int_equal(hgetN(KN(STATE), "spent"), 5007);          /* the reservation */
    assert_int_equal(hgetN(KN(STATS), "refused_numbers"), 2);
    assert_true(hgetN0(KN(STATE), SF("i_cum")) < 1000000);
    recFree(&rec);
}

/* A dead letter the worker left unstamped (ts -1) gets Redis's time; one
 * it stamped keeps its own (and no second ts_ms). */
static void test_dead_letter_redis_time(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"d1", "d2"};
    craftClaim("w:9:", 2, ids, now + 60000);
    recCtx c = {"tw", 1, 0, NULL};
    for (int k = 0; k < 2; k++) {
        job j = testJob(ids[k]);
        settleRec rec;
        memset(&rec, 0, sizeof(rec));
        recDead(&rec, &j, "{\"x\":1}", 7, "invalid_job", "bad", &c, k == 0 ? -1 : 1234);
        char lid[16];
        snprintf(lid, sizeof(lid), "w:9:%d", k + 1);
        assert_settled(settleOne(lid, ids[k], &rec, 0), SETTLED_DONE);
        recFree(&rec);
    }
    redisReply *r = cmdR("LRANGE %s 0 -1", KN(DEAD));
    assert_int_equal(r->elements, 2);
    for (int k = 0; k < 2; k++) {
        const char *e = r->element[1 - k]->str;       /* LPUSH: newest first */
        long long ts = atoll(e + strlen("{\"ts_ms\":"));
        assert_true(strncmp(e, "{\"ts_ms\":", 9) == 0);
        assert_null(strstr(e + 9, "ts_ms"));
        if (k == 0) assert_true(ts >= now && ts < now + 5000);
        else assert_int_equal(ts, 1234);
    }
    freeReplyObject(r);
}

/* Redis did not run for 20 s (a stall, or its clock stepped): every lease
 * looks expired though its worker is alive. Reaping waits a lease period,
 * time for the workers to renew; a renew after the gap holds it too; the
 * in-flight count keeps the expired-looking entries meanwhile. */
static void test_reap_held_after_gap(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now - 1);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now - 1, now - 60000);
    cmd("HSET %s tick %lld", KN(STATE), now - 20000);
    const char *argv[] = {"100", "30000"};
    redisReply *r = script("reap", 2, argv);
    assert_int_equal(r->integer, -1);
    freeReplyObject(r);
    assert_true(zscore(KN(LEASES), "w:1:1") > 0);
    assert_int_equal(hgetN(KN(STATS), "lost_in_flight"), -1);
    long long after = hgetN(KN(STATE), "reap_after");
    assert_true(after >= now + 30000 && after < now + 40000);
    r = script("reap", 2, argv);
    assert_int_equal(r->integer, -2);
    freeReplyObject(r);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 0);

    /* The live worker renews one lease; the other's worker is gone. */
    const char *rargv[] = {"30000", "w", "30000", "w:1:1"};
    cmd("ZADD %s %lld dead %lld other", KN(WORKERS), now - 1, now + 60000);
    r = script("renew", 4, rargv);
    assert_int_equal(r->elements, 2);               /* nothing lost */
    assert_int_equal(r->element[0]->integer, 0);    /* the write counter */
    assert_int_equal(r->element[1]->integer, 2);    /* live heartbeats: w, other */
    freeReplyObject(r);
    assert_true(zscore(KN(LEASES), "w:1:1") >= now + 30000);

    /* The hold over: the dead worker's lease is reaped, the renewed one not. */
    cmd("HSET %s reap_after %lld", KN(STATE), now - 1);
    r = script("reap", 2, argv);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_true(zscore(KN(LEASES), "w:1:1") > 0);
    assert_int_equal(zscore(KN(LEASES), "w:1:2"), -1);

    /* A renew that is first to see a gap (the clock stepped back) holds
     * reaping as well. */
    cmd("HSET %s tick %lld", KN(STATE), now + 3600000);
    r = script("renew", 4, rargv);
    freeReplyObject(r);
    assert_true(hgetN(KN(STATE), "reap_after") >= now + 30000);
    r = script("reap", 2, argv);
    assert_int_equal(r->integer, -2);
    freeReplyObject(r);
}

/* ======================== limits.lua, purge.lua, prices.lua ================== */

/* The (value, set) of name in a limits reply. */
static int limitOf(const redisReply *r, const char *name, const char **val) {
    for (size_t i = 0; i + 2 < r->elements; i += 3)
        if (!strcmp(r->element[i]->str, name)) {
            *val = r->element[i + 1]->str;
            return (int)r->element[i + 2]->integer;
        }
    fail_msg("limit %s not in the reply", name);
    return -1;
}

static void test_limits(void **state) {
    (void)state;
    const char *set[] = {"max_in_flight", "7", "base_delay", "2000"};
    redisReply *r = script("limits", 4, set);
    assert_int_equal(r->elements, 3 * LIMIT_COUNT);
    const char *v;
    assert_int_equal(limitOf(r, "max_in_flight", &v), 1);
    assert_string_equal(v, "7");
    assert_int_equal(limitOf(r, "soft_token_floor", &v), 0);
    assert_string_equal(v, "5%");
    freeReplyObject(r);
    assert_string_equal(hget(KN(LIMITS), "max_in_flight"), "7");

    /* '' removes: the default again. */
    const char *unset[] = {"max_in_flight", ""};
    r = script("limits", 2, unset);
    assert_int_equal(limitOf(r, "max_in_flight", &v), 0);
    assert_string_equal(v, "100");
    assert_int_equal(limitOf(r, "base_delay", &v), 1);
    freeReplyObject(r);
    assert_int_equal(cmdInt("HEXISTS %s max_in_flight", KN(LIMITS)), 0);

    /* An unknown name is refused, and nothing of the call lands. */
    const char *bad[] = {"max_attempts", "9", "no_such_limit", "1"};
    size_t bl[4];
    for (int i = 0; i < 4; i++) bl[i] = strlen(bad[i]);
    rdsScriptCall sc = {"limits", &ks, NULL, 4, bad, bl};
    r = evalSync(&sc);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assertHas(r->str, "no_such_limit");
    freeReplyObject(r);
    assert_int_equal(cmdInt("HEXISTS %s max_attempts", KN(LIMITS)), 0);
}

static void test_purge(void **state) {
    (void)state;
    cmd("LPUSH %s x y z", KN(DEAD));
    redisReply *r = script("purge", 0, NULL);
    assert_int_equal(r->integer, 3);
    freeReplyObject(r);
    assert_int_equal(cmdInt("LLEN %s", KN(DEAD)), 0);
    r = script("purge", 0, NULL);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
}

static void test_prices(void **state) {
    (void)state;
    const char *get[] = {"get"};
    redisReply *r = script("prices", 1, get);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, "0");
    freeReplyObject(r);

    const char *set[] = {"set", "my-model", "1 2 3 4 5"};
    r = script("prices", 3, set);
    assert_string_equal(r->element[0]->str, "1");
    freeReplyObject(r);
    assert_string_equal(hget(KN(STATE), "prices_ver"), "1");
    assert_string_equal(hget(KN(PRICES), "my-model"), "1 2 3 4 5");

    r = script("prices", 1, get);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->str, "1");
    assert_string_equal(r->element[1]->str, "my-model");
    assert_string_equal(r->element[2]->str, "1 2 3 4 5");
    freeReplyObject(r);

    /* Admission now holds a worker on the old table. */
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 10, 10, 1, &v, NULL), ADMIT_WAIT);
    assert_admit(admit1(1, "w:1:1", "a", 10, 10, 1, &v, NULL), ADMIT_GO);

    const char *del[] = {"del", "my-model"};
    r = script("prices", 2, del);
    assert_string_equal(r->element[0]->str, "2");
    freeReplyObject(r);
    assert_int_equal(cmdInt("HLEN %s", KN(PRICES)), 0);

    const char *bad[] = {"frob"};
    size_t bl[1] = {4};
    rdsScriptCall sc = {"prices", &ks, NULL, 1, bad, bl};
    r = evalSync(&sc);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_string_equal(hget(KN(STATE), "prices_ver"), "2");
}

/* ============================ the token model ================================ */

/* Each class has its own buckets: a sonnet job waits for sonnet's, a haiku
 * job of the same batch goes on haiku's; a class's pause is its own. */
static void test_class_buckets_independent(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"s", "h", "s2", "h2"};
    craftClaim("w:1:", 4, ids, now + 60000);
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1 "
        "haiku-4|i_lim 60000 haiku-4|i_rem 60000 haiku-4|i_at %lld haiku-4|observed 1",
        KN(STATE), now, now);
    admitHead h = head(0);
    admitJob j[2] = {bjob("w:1:1", "s", 1000, 10, 1),
                     bjobM("w:1:2", "h", "claude-haiku-4-5", 1000, 10, 1, "")};
    admitReply br;
    admitResult res[2];
    runBegin(&h, j, 2, &br, res);
    /* sonnet: (1000 + soft 3000 - 0) at 1 token/ms. */
    assert_admit(res[0].verdict, ADMIT_PARKED);
    assertNear(res[0].value, 4000, SLACK_MS, "sonnet's wait");
    assert_admit(res[1].verdict, ADMIT_GO);
    assertHas(br.reason, "sonnet-4: ");
    assert_int_equal(hgetN(KN(STATE), "haiku-4|i_cum"), 1000);
    assert_int_equal(hgetN(KN(STATE), "haiku-4|n_inflight"), 1);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), -1);          /* nothing charged */
    assert_int_equal(hgetN0(KN(STATE), SF("n_inflight")), 0);
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:2"), "haiku-4,1000,", 13), 0);
    assert_true(parkedAt("w:1:1") > 0);
    assert_int_equal(parkedAt("w:1:2"), -1);
    const char *cl = hget(KN(STATE), "classes");
    assertHas(cl, "sonnet-4");
    assertHas(cl, "haiku-4");

    /* A haiku pause holds haiku's jobs, not sonnet's (bucket now full). */
    cmd("HSET %s haiku-4|pause_until %lld haiku-4|pause_kind %d haiku-4|pause_reason x "
        "sonnet-4|i_rem 60000 sonnet-4|park_tail 0", KN(STATE), now + 5000, PAUSE_SHORT);
    admitJob j2[2] = {bjobM("w:1:4", "h2", "claude-haiku-4-5", 1000, 10, 1, ""),
                      bjob("w:1:3", "s2", 1000, 10, 1)};
    runBegin(&h, j2, 2, &br, res);
    assert_admit(res[0].verdict, ADMIT_PARKED);
    assertNear(res[0].value, 5000, SLACK_MS, "haiku's pause");
    assert_admit(res[1].verdict, ADMIT_GO);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), 1000);
    assert_int_equal(hgetN(KN(STATE), "haiku-4|i_cum"), 1000);
}

/* model_classes overrides the built-in map; a model it does not know is a
 * class of its own. */
static void test_class_override(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c", "d", "e"};
    craftClaim("w:1:", 5, ids, now + 60000);
    cmd("HSET %s model_classes claude-haiku-4-5=sonnet-4,acme-x=haiku-4", KN(LIMITS));
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1 "
        "haiku-4|observed 1 opus-4|observed 1", KN(STATE), now);
    long long v;
    /* claude-haiku-4-5 counts as sonnet-4 here: its empty bucket. */
    assert_admit(admit1M("claude-haiku-4-5", "", "w:1:1", "a", 1000, 10, &v, NULL),
                 ADMIT_PARKED);
    assertNear(v, 4000, SLACK_MS, "the overridden class's wait");
    /* acme-x counts as haiku-4. */
    assert_admit(admit1M("acme-x", "", "w:1:2", "b", 700, 10, &v, NULL), ADMIT_GO);
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:2"), "haiku-4,700,", 12), 0);
    assert_int_equal(hgetN(KN(STATE), "haiku-4|i_cum"), 700);
    /* The built-in map: claude-opus-4-1 is opus-4. */
    assert_admit(admit1M("claude-opus-4-1", "", "w:1:3", "c", 300, 10, &v, NULL), ADMIT_GO);
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:3"), "opus-4,300,", 11), 0);

    /* Without the override, claude-haiku-4-5 is haiku-4 again. */
    cmd("HDEL %s model_classes", KN(LIMITS));
    assert_admit(admit1M("claude-haiku-4-5", "", "w:1:4", "d", 1000, 10, &v, NULL), ADMIT_GO);
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:4"), "haiku-4,1000,", 13), 0);
    assert_int_equal(hgetN(KN(STATE), "haiku-4|i_cum"), 1700);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), -1);
}

/* PARKED: the job leaves its lease for parked / parkedjob; claim brings it
 * back when due, not before. */
static void test_parked_claimed_back(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    /* est 3000 at 1 token/ms: need 1000 + soft 3000 waits ~1000 ms. */
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 3000 sonnet-4|i_at %lld "
        "sonnet-4|observed 1", KN(STATE), now);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 1000, 10, 1, &v, NULL), ADMIT_PARKED);
    assert_true(v > 250 && v <= 1000);
    assert_int_equal(zscore(KN(LEASES), "w:1:1"), -1);          /* lease ended */
    assert_true(zscore(KN(LEASES), "w:1:2") > 0);
    assert_int_equal(hgetN(KN(CLAIMED), "w:1:"), 1);
    assertNear(parkedAt("w:1:1"), now + v, SLACK_MS, "due");
    assert_string_equal(hget(KN(PARKEDJOB), parkedKey("w:1:1")), rawJob("a"));
    assert_int_equal(cmdInt("HEXISTS %s w:1:1", KN(RESERV)), 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), -1);
    redisReply *r = script("status", 0, NULL);
    const char *vals[STATUS_COUNT];
    assert_true(statusParse(r, vals) >= 0);
    assert_string_equal(vals[STATUS_parked], "1");
    freeReplyObject(r);
    /* Its lease is gone: admitting it again is LOST. */
    assert_admit(admit1(0, "w:1:1", "a", 1000, 10, 1, &v, NULL), ADMIT_LOST);

    /* Not due yet: claim leaves it. */
    claimReply cr;
    runClaim(1, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 0);
    assert_true(parkedAt("w:1:1") > 0);

    /* Due: back in the queue's consuming end, claimed. */
    sleepMs(1100);
    runClaim(1, 30000, "w:3:", &cr);
    assert_int_equal(cr.n, 1);
    r = cmdR("LRANGE %s 0 -1", listKey("w:3:"));
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, rawJob("a"));
    freeReplyObject(r);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 0);
    assert_int_equal(cmdInt("HLEN %s", KN(PARKEDJOB)), 0);
}

/* A due parked job is looked at by the claim with admission's pacing rule
 * and what admission knew of its needs: still waiting, it is parked again
 * in Redis (its body never leaves), at the due admission would give;
 * with room it is handed out, its needs taken from the estimate, so that
 * only what fits is handed out. */
static void test_parked_looked_at(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c"};
    craftClaim("w:1:", 3, ids, now + 60000);
    /* est 3000 at 1 token/ms: need 1000 + soft 3000 waits ~1000 ms. */
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 3000 sonnet-4|i_at %lld "
        "sonnet-4|observed 1", KN(STATE), now);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 1000, 10, 1, &v, NULL), ADMIT_PARKED);
    assert_string_equal(hget(KN(PARKEDNEED), parkedKey("w:1:1")), "sonnet-4,1000,10,");
    /* Due, the bucket no fuller: not handed out; its class's line slips
     * to the wait admission gives it, the job keeps its place. */
    cmd("HDEL %s sonnet-4|park_tail", KN(STATE));
    parkMove("w:1:1", now - 1);
    claimReply cr;
    runClaim(4, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(parkedAt("w:1:1"), now - 1);
    long long due = now - 1 + hgetN0(KN(STATE), SF("park_slip"));
    assert_true(due > redisNow() + 250);
    assertNear(due, redisNow() + 1000, SLACK_MS, "due as admission gives it");
    assertNear(cr.next_ms, due - redisNow(), SLACK_MS, "the next due: place plus slip");
    assert_string_equal(hget(KN(PARKEDJOB), parkedKey("w:1:1")), rawJob("a"));
    assert_true(hgetN(KN(STATE), SF("park_tail")) >= due);
    /* Room before its due: handed out early, its needs kept no more; with
     * nothing parked the slip goes. */
    cmd("HSET %s sonnet-4|i_rem 60000 sonnet-4|i_at %lld", KN(STATE), redisNow());
    runClaim(4, 30000, "w:3:", &cr);
    assert_int_equal(cr.n, 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 0);
    assert_int_equal(cmdInt("EXISTS %s", KN(PARKEDJOB)), 0);
    assert_int_equal(cmdInt("EXISTS %s", KN(PARKEDNEED)), 0);
    runClaim(4, 30000, "w:3b:", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(hgetN(KN(STATE), SF("park_slip")), -1);

    /* Two due, room for one (est 60000, soft 3000, 40000 each): one
     * handed out, the other's line slips behind the refill. */
    cmd("HSET %s sonnet-4|i_rem 0 sonnet-4|i_at %lld", KN(STATE), redisNow());
    assert_admit(admit1(0, "w:1:2", "b", 40000, 10, 1, &v, NULL), ADMIT_PARKED);
    assert_admit(admit1(0, "w:1:3", "c", 40000, 10, 1, &v, NULL), ADMIT_PARKED);
    cmd("HSET %s sonnet-4|i_rem 60000 sonnet-4|i_at %lld", KN(STATE), redisNow());
    cmd("HDEL %s sonnet-4|park_tail sonnet-4|park_slip", KN(STATE));
    parkMove("w:1:2", now - 2);
    parkMove("w:1:3", now - 1);
    runClaim(4, 30000, "w:4:", &cr);
    assert_int_equal(cr.n, 1);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:4:"));
    assert_string_equal(r->element[0]->str, rawJob("b"));
    freeReplyObject(r);
    assert_int_equal(parkedAt("w:1:3"), now - 1);
    assert_true(now - 1 + hgetN0(KN(STATE), SF("park_slip")) > redisNow() + 250);
}

/* A class's parked jobs are a line: when its head falls due and must
 * still wait, the line slips (one field), no job is written; a claim
 * before the new due looks at the head alone and hands out nothing; a
 * job of another class, due, is not held behind it. */
static void test_parked_line_slips(void **state) {
    (void)state;
    long long now = redisNow();
    /* 1 token/ms, empty: each job (1000 + soft 3000) waits ~4 s. */
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1 "
        "classes sonnet-4", KN(STATE), now);
    char lid[32], fact[64];
    parkRun("sonnet-4", "p", 20, now - 100, "sonnet-4,1000,10,");
    claimReply cr;
    runClaim(4, 30000, "w:1:", &cr);
    assert_int_equal(cr.n, 0);
    long long slip = hgetN0(KN(STATE), SF("park_slip"));
    assertNear(now - 99 + slip, redisNow() + 4000, SLACK_MS, "the head due at its wait");
    for (int i = 1; i <= 20; i++) {
        snprintf(lid, sizeof(lid), "p:1:%d", i);
        assert_int_equal(parkedAt(lid), now - 100 + i);
    }
    /* Again before that: nothing due, no slip more, no job written. */
    runClaim(4, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(hgetN0(KN(STATE), SF("park_slip")), slip);
    /* Another class, due, behind the line in place: handed out. */
    cmd("HSET %s haiku-4|observed 1 classes sonnet-4,haiku-4", KN(STATE));
    snprintf(fact, sizeof(fact), "haiku-4,10,10,");
    parkIn("haiku-4", now - 50, "h:1:1", rawJob("h"), fact);
    runClaim(4, 30000, "w:3:", &cr);
    assert_int_equal(cr.n, 1);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:3:"));
    assert_string_equal(r->element[0]->str, rawJob("h"));
    freeReplyObject(r);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 20);
}

/* A line moves in steps of its class's refill of 16 mean jobs, 250 ms to
 * 1 s: at 1,200 requests a minute (50 ms a request) the head that must
 * wait 450 ms slips the line by 800 ms, so that a step's 16 jobs go through
 * one claim, one admission and one settle (at 250 ms, 5 jobs each); at 600
 * a minute the step is 1 s (never more: a minute's limit may be enforced
 * a second at a time), at 6,000 it stays 250 ms, at 60 it is 1 s. The
 * early look comes at most once a step. */
static void test_parked_line_step(void **state) {
    (void)state;
    /* The refill of 16 jobs, 250 ms to 1 s; under max_burst (1 s by
     * default: 900 ms of refill at once) at most 800 ms. */
    static const struct { long rpm; double rem; long step; const char *burst; } c[] = {
        {1200, 52, 800, NULL}, {600, 26, 800, NULL}, {6000, 288, 250, NULL},
        {60, 3.5, 800, NULL}, {600, 26, 1000, "0"}, {60, 3.5, 1000, "0"},
        {600, 28, 350, "500"}};
    for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        cmd("FLUSHALL");
        if (c[k].burst) cmd("HSET %s max_burst %s", KN(LIMITS), c[k].burst);
        long long now = redisNow();
        /* Under the soft floor (5 %: 60, 30, 300, 3) by some requests: the
         * head waits ~450, 500, 130 and 500 ms, less than the step. */
        cmd("HSET %s sonnet-4|r_lim %ld sonnet-4|r_rem %.2f sonnet-4|r_at %lld "
            "sonnet-4|observed 1 classes sonnet-4", KN(STATE), c[k].rpm, c[k].rem, now);
        parkRun("sonnet-4", "p", 20, now - 100, "sonnet-4,1000,10,");
        claimReply cr;
        long long t0 = redisNow();
        runClaim(4, 30000, "w:1:", &cr);
        assert_int_equal(cr.n, 0);
        long long due = now - 99 + hgetN0(KN(STATE), SF("park_slip"));
        if (!(due - t0 >= c[k].step && due - redisNow() <= c[k].step))
            fail_msg("%ld a minute: the line slipped %lld ms, the step is %ld", c[k].rpm,
                     due - t0, c[k].step);
    }
    /* The early look: 600 a minute, the bucket full, 3 jobs not yet due:
     * one handed out early, then none within the step (1 s: not before
     * `look_at`; at 300 ms, where a 250 ms step looked again), then one
     * after it. */
    cmd("FLUSHALL");
    long long now = redisNow();
    cmd("HSET %s sonnet-4|r_lim 600 sonnet-4|r_rem 600 sonnet-4|r_at %lld "
        "sonnet-4|observed 1 classes sonnet-4", KN(STATE), now);
    parkRun("sonnet-4", "p", 3, now + 60000, "sonnet-4,1000,10,");
    claimReply cr;
    runClaim(1, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 1);
    assertNear(hgetN(KN(STATE), SF("look_at")), redisNow() + 800, SLACK_MS, "the next early look");
    cmd("HSET %s sonnet-4|look_at %lld", KN(STATE), redisNow() + 700);
    runClaim(1, 30000, "w:3:", &cr);
    assert_int_equal(cr.n, 0);
    cmd("HINCRBY %s sonnet-4|look_at -800", KN(STATE));
    runClaim(1, 30000, "w:4:", &cr);
    assert_int_equal(cr.n, 1);
    /* A look that finds no room counts too: the bucket empty, the next
     * claims within the step (a settle's, between two steps) look no
     * more: nothing handed out, `look_at` where the look left it. */
    cmd("HSET %s sonnet-4|r_rem 0 sonnet-4|r_at %lld sonnet-4|look_at 0", KN(STATE), redisNow());
    runClaim(1, 30000, "w:5:", &cr);
    assert_int_equal(cr.n, 0);
    long long at = hgetN(KN(STATE), SF("look_at"));
    assertNear(at, redisNow() + 800, SLACK_MS, "a look that found no room: the next");
    runClaim(1, 30000, "w:6:", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(hgetN(KN(STATE), SF("look_at")), at);
}

/* An idle worker's poll: while another worker waits for the next due
 * time, within a step (1 s), and nothing is queued, it hears so and
 * nothing more (a whole claim would look at the lines: here it hands a job
 * out early); the one told hears its own due time. A due time more than a
 * step ahead, a queued job, its intake's job, a retry due, a pause, a
 * spend cap, a due time that has come, each go through the whole claim
 * (the queue empty before each): a line slipped far, with room now, is
 * looked at early by the next poll, not left to its due time. */
static void test_claim_poll_quiet(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s sonnet-4|r_lim 600 sonnet-4|r_rem 600 sonnet-4|r_at %lld "
        "sonnet-4|observed 1 classes sonnet-4 wake_at %lld wake_by w-other",
        KN(STATE), now, now + 900, now + 60000);
    parkRun("sonnet-4", "p", 4, now + 60000, "sonnet-4,1000,10,");
    claimReply cr;
    claimPoll = 1;
    runClaimBy(1, 30000, "w-1:1:", "w-1", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(cr.next_ms, -1);
    assert_int_equal(cr.drained, 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 4);
    runClaimBy(1, 30000, "w-other:1:", "w-other", &cr);       /* the one told */
    assert_int_equal(cr.n, 0);
    assertNear(cr.next_ms, 900, SLACK_MS, "the one told, its due time");
    /* The due time a minute ahead: the poll is a whole claim, whose early
     * look finds room and hands the line's head out. */
    cmd("HSET %s wake_at %lld", KN(STATE), redisNow() + 60000);
    runClaimBy(1, 30000, "w-1:9:", "w-1", &cr);
    assert_int_equal(cr.n, 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 3);
    /* (no early look in the whole claims below until look_at is cleared;
     * the due time within a step again, set just before each) */
    cmd("HSET %s sonnet-4|look_at %lld", KN(STATE), now + 60000);
    cmd("HSET %s wake_at %lld", KN(STATE), redisNow() + 900);
    cmd("LPUSH %s %s", KN(JOBS), rawJob("q1"));
    runClaimBy(1, 30000, "w-1:2:", "w-1", &cr);
    assert_int_equal(cr.n, 1);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 0);
    cmd("HSET %s wake_at %lld", KN(STATE), redisNow() + 900);
    cmd("LPUSH %s %s", intakeKey("w-1"), rawJob("i1"));
    runClaimBy(1, 30000, "w-1:3:", "w-1", &cr);
    assert_int_equal(cr.n, 1);
    assert_int_equal(cmdInt("LLEN %s", intakeKey("w-1")), 0);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 0);
    cmd("HSET %s wake_at %lld", KN(STATE), redisNow() + 900);
    cmd("ZADD %s %lld r1", KN(DELAYED), redisNow() - 1);
    cmd("HSET %s r1 %s", KN(DELAYEDJOB), rawJob("r1"));
    runClaimBy(1, 30000, "w-1:4:", "w-1", &cr);
    assert_int_equal(cr.n, 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(DELAYED)), 0);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 0);
    cmd("HSET %s wake_at %lld", KN(STATE), redisNow() + 900);
    cmd("HSET %s pause_until %lld pause_kind %d", KN(STATE), redisNow() + 5000, PAUSE_SHORT);
    runClaimBy(1, 30000, "w-1:5:", "w-1", &cr);
    assert_true(cr.wait_ms > 0);
    cmd("HDEL %s pause_until pause_kind", KN(STATE));
    cmd("HSET %s max_spend_usd 1", KN(LIMITS));
    cmd("HSET %s wake_at %lld", KN(STATE), redisNow() + 900);
    cmd("HSET %s budget_cap 1", KN(STATE));
    runClaimBy(1, 30000, "w-1:6:", "w-1", &cr);
    assert_true(cr.wait_ms > 0);
    cmd("HDEL %s budget_cap", KN(STATE));
    cmd("HDEL %s max_spend_usd", KN(LIMITS));
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 3);
    cmd("HSET %s wake_at %lld sonnet-4|look_at 0", KN(STATE), redisNow() - 1);
    runClaimBy(1, 30000, "w-1:7:", "w-1", &cr);              /* whole: looks early */
    assert_int_equal(cr.n, 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 2);
    claimPoll = 0;
    cmd("HSET %s wake_at %lld sonnet-4|look_at 0", KN(STATE), redisNow() + 60000);
    runClaimBy(1, 30000, "w-1:8:", "w-1", &cr);              /* not a poll */
    assert_int_equal(cr.n, 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 1);
}

/* Two classes' lines do not mix: a class whose line slipped far keeps its
 * jobs' places far back, and another class's due job is not read behind
 * a hundred of them that are not due; idle workers are told the earliest
 * due head of any class. */
static void test_parked_lines_apart(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1 "
        "haiku-4|i_lim 60000 haiku-4|i_rem 60000 haiku-4|i_at %lld haiku-4|observed 1 "
        "sonnet-4|park_slip 10000 classes sonnet-4,haiku-4", KN(STATE), now, now);
    parkRun("sonnet-4", "s", 150, now - 9000, "sonnet-4,1000,10,");
    parkIn("haiku-4", now - 50, "h:1:1", rawJob("h"), "haiku-4,10,10,");
    claimReply cr;
    runClaim(4, 30000, "w:1:", &cr);
    assert_int_equal(cr.n, 1);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:1:"));
    assert_string_equal(r->element[0]->str, rawJob("h"));
    freeReplyObject(r);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 150);
    /* Haiku's next, no room for it, due before Sonnet's slipped head. */
    cmd("HSET %s haiku-4|i_rem 0 haiku-4|i_at %lld", KN(STATE), redisNow());
    parkIn("haiku-4", redisNow() + 300, "h:1:2", rawJob("h2"), "haiku-4,1000,10,");
    runClaim(4, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 0);
    assertNear(cr.next_ms, 300, SLACK_MS, "the earliest head of any class");
}

/* Members with a score (parked by a version before the lines, the score
 * their due time: a rolling upgrade has both): one due is handed out, one
 * not due moves into its class's line at its due less the class's slip,
 * its body and needs with it. */
static void test_parked_legacy_moved(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1 "
        "sonnet-4|park_slip 500 classes sonnet-4", KN(STATE), now);
    cmd("ZADD %s %lld old:1:1 %lld old:1:2", KN(PARKED), now + 3000, now - 10);
    cmd("HSET %s old:1:1 %s old:1:2 %s", KN(PARKEDJOB), rawJob("later"), rawJob("due"));
    cmd("HSET %s old:1:1 sonnet-4,1000,10,", KN(PARKEDNEED));
    claimReply cr;
    runClaim(4, 30000, "w:1:", &cr);
    assert_int_equal(cr.n, 1);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:1:"));
    assert_string_equal(r->element[0]->str, rawJob("due"));
    freeReplyObject(r);
    const char *m = parkedKey("old:1:1");
    assert_int_equal(strncmp(m, "sonnet-4|", 9), 0);
    assert_int_equal(zscore(KN(PARKED), m), 0);
    assert_int_equal(parkedAt("old:1:1"), now + 3000 - 500);
    assert_string_equal(hget(KN(PARKEDJOB), m), rawJob("later"));
    assert_string_equal(hget(KN(PARKEDNEED), m), "sonnet-4,1000,10,");
    assert_int_equal(cmdInt("HLEN %s", KN(PARKEDJOB)), 1);
    assert_int_equal(cmdInt("HLEN %s", KN(PARKEDNEED)), 1);
    assert_int_equal(hgetN(KN(STATE), SF("park_slip")), 500);
    runClaim(4, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 0);
    assert_int_equal(hgetN(KN(STATE), SF("park_slip")), 500);
    assertNear(cr.next_ms, 3000, SLACK_MS, "due as before");
}

/* Under output_rule=reserve a job the look hands out holds max_tokens and
 * gives back all it does not produce within a latency: the next head is
 * judged with that give-back, as admission judges it (handed out to wait in
 * its slot), not slipped by the refill's seconds while the bucket fills. */
static void test_parked_look_counts_holds(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s output_rule reserve", KN(LIMITS));
    /* 0.3 token/ms; room for one job of max_tokens 2048 over the soft
     * floor (900), 1,452 left after it: the next waits ~5 s for the
     * refill, or a latency for the first's 1,898 unproduced tokens. */
    cmd("HSET %s sonnet-4|o_lim 18000 sonnet-4|o_rem 3500 sonnet-4|o_at %lld "
        "sonnet-4|observed 1 sonnet-4|ewma_out 150 ewma_ms 500 classes sonnet-4",
        KN(STATE), now);
    parkRun("sonnet-4", "p", 3, now - 100, "sonnet-4,100,2048,");
    claimReply cr;
    runClaim(4, 30000, "w:1:", &cr);
    assert_int_equal(cr.n, 2);
    assert_int_equal(hgetN0(KN(STATE), SF("park_slip")), 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 1);
    assert_true(parkedAt("p:1:3") > 0);
    cmd("HSET %s output_rule actual", KN(LIMITS));
}

/* Due parked jobs come back before the queue, the earliest due first, as
 * many as the claim takes. */
static void test_parked_oldest_due_first(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("LPUSH %s %s", KN(JOBS), rawJob("q"));
    cmd("ZADD %s %lld p:1:1 %lld p:1:2 %lld p:1:3", KN(PARKED), now - 1000, now - 2000,
        now + 60000);
    cmd("HSET %s p:1:1 %s p:1:2 %s p:1:3 %s", KN(PARKEDJOB), rawJob("old"), rawJob("older"),
        rawJob("later"));
    claimReply cr;
    runClaim(5, 30000, "w:1:", &cr);
    assert_int_equal(cr.n, 3);
    redisReply *r = cmdR("LRANGE %s 0 -1", listKey("w:1:"));
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->str, rawJob("older"));
    assert_string_equal(r->element[1]->str, rawJob("old"));
    assert_string_equal(r->element[2]->str, rawJob("q"));
    freeReplyObject(r);
    /* The one not due stays. */
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 1);
    assert_true(zscore(KN(PARKED), "p:1:3") > 0);
    assert_string_equal(hget(KN(PARKEDJOB), "p:1:3"), rawJob("later"));
    assert_int_equal(cmdInt("HLEN %s", KN(PARKEDJOB)), 1);

    /* A claim of one takes the earliest due, the other stays parked. */
    cmd("ZADD %s %lld p:2:1 %lld p:2:2", KN(PARKED), now - 1000, now - 2000);
    cmd("HSET %s p:2:1 %s p:2:2 %s", KN(PARKEDJOB), rawJob("old"), rawJob("older"));
    runClaim(1, 30000, "w:2:", &cr);
    assert_int_equal(cr.n, 1);
    r = cmdR("LRANGE %s 0 -1", listKey("w:2:"));
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, rawJob("older"));
    freeReplyObject(r);
    assert_int_equal(zscore(KN(PARKED), "p:2:2"), -1);
    assert_true(zscore(KN(PARKED), "p:2:1") > 0);
}

/* A class's waiting jobs are spaced by the refill their needs take, never
 * more than 2 s past their own wait. */
static void test_parked_spacing(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c", "d"};
    craftClaim("w:1:", 4, ids, now + 60000);
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|observed 1",
        KN(STATE), now);
    admitHead h = head(0);
    /* Each needs 1500 at 1 token/ms: 1500 ms of refill. */
    admitJob j[3] = {bjob("w:1:1", "a", 1500, 10, 1), bjob("w:1:2", "b", 1500, 10, 1),
                     bjob("w:1:3", "c", 1500, 10, 1)};
    admitReply br;
    admitResult res[3];
    runBegin(&h, j, 3, &br, res);
    for (int i = 0; i < 3; i++) assert_admit(res[i].verdict, ADMIT_PARKED);
    assertNear(res[0].value, 4500, SLACK_MS, "own wait (1500 + 3000 soft)");
    assertNear(res[1].value - res[0].value, 1500, 2, "second behind the first");
    /* The third would be 3 s past its own wait: 2 s at most. */
    assertNear(res[2].value - res[0].value, 2000, 2, "third capped at 2 s");
    assertNear(parkedAt("w:1:2") - parkedAt("w:1:1"), 1500, 2,
               "parked due times");
    assertNear(parkedAt("w:1:3") - parkedAt("w:1:1"), 2000, 2,
               "parked due times (capped)");
    /* The tail: behind the third. */
    assertNear(hgetN(KN(STATE), SF("park_tail")), now + 8000, SLACK_MS, "park_tail");

    /* A later call: behind the stored tail, capped likewise. */
    long long v;
    assert_admit(admit1(0, "w:1:4", "d", 1500, 10, 1, &v, NULL), ADMIT_PARKED);
    assertNear(parkedAt("w:1:4"), now + 4500 + 2000, SLACK_MS, "capped at 2 s");
}

/* settle for one 200 on lease lid (job id) with these input headers. */
static void settleObs(const char *lid, const char *id, long long lim, long long rem,
                      long long reset_ms) {
    rlHeaders rl;
    rlInit(&rl);
    rl.input = (rlBucket){lim, rem, reset_ms};
    job j = testJob(id);
    settleRec rec;
    recSuccessUse(&rec, &j, 100, 20, 0, 0, &rl);
    assert_true(rec.has_obs);
    assert_settled(settleOne(lid, id, &rec, 1), SETTLED_DONE);
    recFree(&rec);
}

/* A class's burst (max_burst, lib/pace.lua): however full its buckets, at
 * most 0.9 x max_burst of their refill goes at once (the docs allow a limit
 * per minute to be enforced per second, a bucket no header shows). 600 a
 * minute, 10 a second, the bucket full: 9 go, the tenth waits ~100 ms,
 * the burst's time (r_tat) ~900 ms ahead; with max_burst 0 all 12 go. A
 * bucket's first reading seeds the burst with the cold start's request,
 * which went with no limit known (settle.lua): 100 input tokens at 60,000
 * a minute hold it 100 ms, and a next job of 850 waits ~50 ms; a first
 * request of over max_burst seeds it with max_burst (12,000: 1 s). A job
 * of over the burst goes when it has caught up and counts in full
 * (30,000: 30 s); 60 requests a minute go 1.1 s apart. */
static void test_pace_burst(void **state) {
    (void)state;
    const char *ids[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"};
    long long v = 0;
    for (int off = 0; off < 2; off++) {
        cmd("FLUSHALL");
        if (off) cmd("HSET %s max_burst 0", KN(LIMITS));
        long long now = redisNow();
        craftClaim("w:1:", 12, ids, now + 60000);
        cmd("HSET %s sonnet-4|r_lim 600 sonnet-4|r_rem 600 sonnet-4|r_at %lld "
            "sonnet-4|observed 1 classes sonnet-4", KN(STATE), now);
        int went = 0;
        admitVerdict last = ADMIT_GO;
        for (int k = 0; k < 12 && last == ADMIT_GO; k++) {
            char lid[16];
            snprintf(lid, sizeof(lid), "w:1:%d", k + 1);
            last = admit1(0, lid, ids[k], 10, 10, 1, &v, NULL);
            if (last == ADMIT_GO) went++;
        }
        if (off) {
            assert_int_equal(went, 12);
            assert_int_equal(hgetN(KN(STATE), SF("r_tat")), -1);
            continue;
        }
        assert_int_equal(went, 9);
        assert_admit(last, ADMIT_WAIT);
        assert_true(v > 0 && v <= 100);
        assertNear(hgetN(KN(STATE), SF("r_tat")), now + 900, SLACK_MS, "the burst's time");
    }
    for (int big = 0; big < 2; big++) {
        cmd("FLUSHALL");
        long long now = redisNow();
        craftClaim("w:2:", 3, ids, now + 60000);
        assert_admit(admit1(0, "w:2:1", "a", big ? 12000 : 100, 10, 1, &v, NULL), ADMIT_GO);
        assert_int_equal(hgetN(KN(STATE), SF("i_tat")), -1);
        settleObs("w:2:1", "a", 60000, 48000, 12000);
        long long tat = hgetN(KN(STATE), SF("i_tat"));
        assertNear(tat, now + (big ? 1000 : 100), 100, "seeded by the cold start");
        if (big) continue;
        assert_admit(admit1(0, "w:2:2", "b", 850, 10, 1, &v, NULL), ADMIT_WAIT);
        assert_true(v > 0 && v <= 50);
        /* ... and a job over the burst counts as the burst. */
        cmd("HSET %s sonnet-4|i_tat 0", KN(STATE));
        assert_admit(admit1(0, "w:2:3", "c", 30000, 10, 1, &v, NULL), ADMIT_GO);
        assertNear(hgetN(KN(STATE), SF("i_tat")), redisNow() + 30000, 100, "a job over the burst");
    }
    /* 60 a minute, the bucket full: one goes, the next parks ~1.1 s (a
     * request is all of a per-second bucket: the tenth kept). */
    cmd("FLUSHALL");
    long long now = redisNow();
    craftClaim("w:3:", 2, ids, now + 60000);
    cmd("HSET %s sonnet-4|r_lim 60 sonnet-4|r_rem 60 sonnet-4|r_at %lld "
        "sonnet-4|observed 1 classes sonnet-4", KN(STATE), now);
    assert_admit(admit1(0, "w:3:1", "a", 10, 10, 1, &v, NULL), ADMIT_GO);
    assert_admit(admit1(0, "w:3:2", "b", 10, 10, 1, &v, NULL), ADMIT_PARKED);
    assertNear(v, 1100, 100, "60 a minute: 1.1 s apart");
}

/* A follower's reading is uncertain by what was charged while it waited
 * (its snapshot's "/r/i/o/o_done", settle.lua activate): the truth may be
 * that much over its admission reading, so it does not pull the estimate
 * down within that; a plain reading does. */
static void test_follower_reading_uncertain(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    resv v = {CLASS, 200, 60, 20, now, 1, 1000, 60, 0, 200, 60, "", 0};
    /* Estimate 30,000; 8,000 charged since the request's snapshot; the
     * header says 22,000: as of its admission 14,000. */
    for (int k = 0; k < 2; k++) {
        const char *lid = k ? "w:1:2" : "w:1:1";
        cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 30000 sonnet-4|i_at %lld "
            "sonnet-4|i_cum 9000 sonnet-4|i_base 9000 sonnet-4|observed 1", KN(STATE), now);
        craftResv(lid, ids[k], &v, now + 60000);
        if (k) cmd("HSET %s %s sonnet-4,200,60,20,%lld,1,1000,60,0/0/8000/0/0,200,60,,0,%s",
                   KN(RESERV), lid, now, ids[k]);
        settleObs(lid, ids[k], 60000, 22000, 1000);
        /* plain: 14,000 + 500 at most; 8,000 uncertain: 22,000 + 500 */
        assertNear(hgetN(KN(STATE), SF("i_rem")), k ? 22500 : 14500, 200,
                   k ? "a follower's reading, 8,000 uncertain" : "a plain reading");
    }
}

/* A wait of the class of 250 ms or less is a WAIT: the job keeps its
 * lease. */
static void test_short_wait_not_parked(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    /* est 3900: need 1000 + soft 3000 waits ~100 ms. */
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 3900 sonnet-4|i_at %lld "
        "sonnet-4|observed 1", KN(STATE), now);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 1000, 10, 1, &v, NULL), ADMIT_WAIT);
    assert_true(v > 0 && v <= 100);
    assert_true(zscore(KN(LEASES), "w:1:1") > 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(PARKED)), 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);
}

/* One observation per model in a batch: each class takes its own. */
static void test_observe_per_class(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"s", "h"};
    craftClaim("w:1:", 2, ids, now + 60000);
    resv vs = {CLASS, 100, 50, 5, now, 1, 0, 0, 0, 100, 50, "", 0};
    resv vh = {"haiku-4", 100, 50, 5, now, 1, 0, 0, 0, 100, 50, "", 0};
    craftResv("w:1:1", "s", &vs, now + 60000);
    craftResv("w:1:2", "h", &vh, now + 60000);
    rlHeaders rs, rh;
    rlInit(&rs);
    rlInit(&rh);
    rs.input = (rlBucket){60000, 20000, now + 40000};
    rh.input = (rlBucket){90000, 50000, now + 40000};
    job js = testJob("s"), jh = testJob("h");
    snprintf(jh.model, sizeof(jh.model), "claude-haiku-4-5");
    settleRec rec[2];
    recSuccessUse(&rec[0], &js, 100, 20, 0, 0, &rs);
    recSuccessUse(&rec[1], &jh, 100, 20, 0, 0, &rh);
    settleItem it[2] = {{"w:1:1", "s", &rec[0], MODEL, 1, NULL},
                        {"w:1:2", "h", &rec[1], "claude-haiku-4-5", 2, NULL}};
    settleVerdict out[2];
    runSettle(it, 2, out, 0, NULL, NULL);
    assert_settled(out[0], SETTLED_DONE);
    assert_settled(out[1], SETTLED_DONE);
    assert_int_equal(hgetN(KN(STATE), SF("i_lim")), 60000);
    assertNear(hgetN(KN(STATE), SF("i_rem")), 20000, 500, "sonnet's");
    assert_int_equal(hgetN(KN(STATE), "haiku-4|i_lim"), 90000);
    assertNear(hgetN(KN(STATE), "haiku-4|i_rem"), 50000, 500, "haiku's");
    assert_string_equal(hget(KN(STATE), "haiku-4|observed"), "1");
    recFree(&rec[0]);
    recFree(&rec[1]);
}

/* A 429 that says the spend limit is reached pauses the fleet, long. */
static void test_429_spend_limit(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    craftAdmitted("w:1:1", "a", 100, 50, 5000, now + 60000, now);
    job j = testJob("a");
    settleRec rec;
    recCtx c = {"tw", 1, 80, NULL};
    outcome o = errOutcome(429, 1000);
    o.spend_limit = 1;
    rlHeaders none;
    rlInit(&none);
    memset(&rec, 0, sizeof(rec));
    recError(&rec, &j, o.error_type, o.error_message, 429, &c);
    rec.op = OP_FAILED;
    recAttempt(&rec, &o, &none, -1, &c, 500000);
    settleItem it = {"w:1:1", "a", &rec, MODEL, 0, NULL};
    settleVerdict out[1];
    runSettle(&it, 1, out, 0, NULL, NULL);
    assert_int_equal(hgetN(KN(STATE), "pause_kind"), PAUSE_LONG);
    assertNear(hgetN(KN(STATE), "pause_until"), now + 300000, SLACK_MS, "max_pause");
    assertHas(hget(KN(STATE), "pause_reason"), "spend limit");
    assert_int_equal(hgetN0(KN(STATE), SF("pause_until")), 0);
    recFree(&rec);
}

/* The +-500 rounding clamp, plus the time between crafting and settling. */
#define OBS_TOL (500 + SLACK_MS)

/* The observation keeps the lower of: rem + refill since the request's
 * admission - charged since; rem. Within the +-500 rounding clamp. One
 * admitted before the class's obs_t is ignored. */
static void test_observe_lower_reading(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c", "d"};
    craftClaim("w:1:", 4, ids, now + 60000);
    /* The prediction says ~40000 (i_cum = i_base); i_cum 100000 now. */
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 40000 sonnet-4|i_at %lld "
        "sonnet-4|i_cum 100000 sonnet-4|i_base 100000 sonnet-4|observed 1", KN(STATE), now);

    /* Admitted 10 s ago at i_cum 75000: 25000 charged since. rem 30000:
     * at admission 30000 + 10000 - 25000 = 15000 < 30000. */
    resv v = {CLASS, 100, 50, 5, now - 10000, 1, 75000, 0, 0, 100, 50, "", 0};
    craftResv("w:1:1", "a", &v, now + 60000);
    settleObs("w:1:1", "a", 60000, 30000, now + 30000);
    assertNear(hgetN(KN(STATE), SF("i_rem")), 15000, OBS_TOL, "kept: the admission reading");
    assert_int_equal(hgetN(KN(STATE), SF("i_lim")), 60000);
    assert_int_equal(hgetN(KN(STATE), SF("i_base")), 100000);
    assertNear(hgetN(KN(STATE), SF("i_at")), now, SLACK_MS, "i_at");
    assert_int_equal(hgetN(KN(STATE), SF("obs_t")), now - 10000);

    /* Admitted 10 s ago at i_cum 98000: 2000 charged since. rem 20000:
     * at admission 20000 + 10000 - 2000 = 28000 > 20000. */
    cmd("HSET %s sonnet-4|i_rem 40000 sonnet-4|i_at %lld sonnet-4|i_base 100000 "
        "sonnet-4|obs_t 0", KN(STATE), now);
    resv v2 = {CLASS, 100, 50, 5, now - 10000, 1, 98000, 0, 0, 100, 50, "", 0};
    craftResv("w:1:2", "b", &v2, now + 60000);
    settleObs("w:1:2", "b", 60000, 20000, now + 30000);
    assertNear(hgetN(KN(STATE), SF("i_rem")), 20000, OBS_TOL, "kept: the answer's reading");

    /* The observation in force came from a request admitted 5 s ago: one
     * admitted 10 s ago is older, ignored. */
    cmd("HSET %s sonnet-4|i_rem 40000 sonnet-4|i_at %lld sonnet-4|obs_t %lld", KN(STATE),
        now - 1, now - 5000);
    resv v3 = {CLASS, 100, 50, 5, now - 10000, 1, 100000, 0, 0, 100, 50, "", 0};
    craftResv("w:1:3", "c", &v3, now + 60000);
    settleObs("w:1:3", "c", 80000, 5000, now + 30000);
    assert_int_equal(hgetN(KN(STATE), SF("i_lim")), 60000);
    assert_int_equal(hgetN(KN(STATE), SF("i_rem")), 40000);
    assert_int_equal(hgetN(KN(STATE), SF("i_at")), now - 1);
    assert_int_equal(hgetN(KN(STATE), SF("obs_t")), now - 5000);
    /* One admitted after it counts. */
    resv v4 = {CLASS, 100, 50, 5, now - 1000, 1, 100000, 0, 0, 100, 50, "", 0};
    craftResv("w:1:4", "d", &v4, now + 60000);
    settleObs("w:1:4", "d", 80000, 5000, now + 30000);
    assert_int_equal(hgetN(KN(STATE), SF("i_lim")), 80000);
    assertNear(hgetN(KN(STATE), SF("i_rem")), 5000, OBS_TOL, "taken");
    assert_int_equal(hgetN(KN(STATE), SF("obs_t")), now - 1000);
}

/* Under the hard floor the class pauses until refilled to the soft floor,
 * (soft - observed) / (lim / 60000) ms, not until the reset. */
static void test_hard_floor_refill(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("HSET %s hard_token_floor 10%% soft_token_floor 20%%", KN(LIMITS));
    cmd("HSET %s sonnet-4|i_lim 120000 sonnet-4|i_rem 50000 sonnet-4|i_at %lld "
        "sonnet-4|observed 1", KN(STATE), now);
    resv v = {CLASS, 100, 50, 5, now - 1000, 1, 0, 0, 0, 100, 50, "", 0};
    craftResv("w:1:1", "a", &v, now + 60000);
    /* rem 2000 < hard 12000: (soft 24000 - 2000) / 2 per ms = 11000 ms;
     * the reset is 55 s away. */
    settleObs("w:1:1", "a", 120000, 2000, now + 55000);
    assertNear(hgetN(KN(STATE), SF("pause_until")), now + 11000, SLACK_MS, "hard floor pause");
    assert_int_equal(hgetN(KN(STATE), SF("pause_kind")), PAUSE_SHORT);
    assertHas(hget(KN(STATE), SF("pause_reason")), "hard floor");
    assert_int_equal(hgetN0(KN(STATE), "pause_until"), 0);      /* the class's only */
    assert_int_equal(hgetN(KN(STATS), "hard_floor_hits"), 1);
    long long w;
    assert_admit(admit1(0, "w:1:2", "b", 10, 10, 1, &w, NULL), ADMIT_PARKED);
    assertNear(w, 11000, SLACK_MS, "parked for the pause");
}

/* Lease lid (job id), admitted at now, answered 429 with retry-after ra
 * ms (-1: none): the class pauses until now + want ms, the fleet not. */
static void settle429(const char *lid, const char *id, long long now, long long ra,
                      long long want, const char *what) {
    craftAdmitted(lid, id, 100, 50, 5000, now + 60000, now);
    job j = testJob(id);
    settleRec rec;
    recFailed(&rec, &j, 429, ra, 1);
    assert_settled(settleOne(lid, id, &rec, 0), SETTLED_RETRY);
    assertNear(hgetN(KN(STATE), SF("pause_until")), now + want, SLACK_MS, what);
    assert_int_equal(hgetN(KN(STATE), SF("pause_kind")), PAUSE_SHORT);
    assert_int_equal(hgetN0(KN(STATE), "pause_until"), 0);
    recFree(&rec);
}

/* A 429 within max_pause pauses the class until its buckets refill to the
 * soft floor, or for retry-after when that is longer. */
static void test_429_class_pause(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c", "d"};
    craftClaim("w:1:", 4, ids, now + 60000);
    /* Buckets full: the retry-after (2 s) counts. */
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 60000 sonnet-4|i_at %lld "
        "sonnet-4|observed 1", KN(STATE), now);
    settle429("w:1:1", "a", now, 2000, 2000, "retry-after pause");
    assert_int_equal(hgetN(KN(STATS), SF("r429")), 1);

    /* No retry-after, the input bucket at 0: until refilled to the soft
     * floor (10%: 6000 tokens at 1 per ms). */
    cmd("DEL %s", KN(STATE));
    cmd("HSET %s soft_token_floor 10%%", KN(LIMITS));
    now = redisNow();
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld "
        "sonnet-4|observed 1", KN(STATE), now);
    settle429("w:1:2", "b", now, -1, 6000, "refill pause");

    /* An estimate far under zero (50000 charged since a reading of 0: the
     * requests in flight counted twice): the API's bucket is never below
     * empty, so a refill from empty to the soft floor (6 s), not 56 s. */
    cmd("DEL %s", KN(STATE));
    now = redisNow();
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld sonnet-4|i_cum 50000 "
        "sonnet-4|i_base 0 sonnet-4|observed 1", KN(STATE), now);
    settle429("w:1:3", "c", now, -1, 6000, "never past a refill from empty");

    /* Under output_rule=reserve the holds in flight come back at their
     * answers (0.9 of each, oq 0.1): 10000 left less 20000 held is -10000,
     * with 18000 coming back 8000, over the soft floor: the 1 s of a 429
     * that says nothing, not a refill. */
    cmd("HSET %s output_rule reserve", KN(LIMITS));
    cmd("DEL %s", KN(STATE));
    now = redisNow();
    cmd("HSET %s sonnet-4|o_lim 60000 sonnet-4|o_rem 10000 sonnet-4|o_at %lld sonnet-4|o_cum 20000 "
        "sonnet-4|o_base 0 sonnet-4|o_inflight 20000 sonnet-4|oq 0.1 sonnet-4|observed 1",
        KN(STATE), now);
    settle429("w:1:4", "d", now, -1, 1000, "holds coming back");
    cmd("HSET %s output_rule actual", KN(LIMITS));
}

/* 50 answers with actual input = 2 x the worker's estimate: calibration
 * ~2, and admission charges ~2 x raw. */
static void test_calibration(void **state) {
    (void)state;
    resv v = {CLASS, 1000, 100, 5, 0, 1, 0, 0, 0, 1000, 100, "", 0};
    settleBatches("c", 5, v, 2000, 10);
    assertNear((long long)(hgetD(KN(STATE), SF("cal")) * 1000), 2000, 20, "cal x1000");
    assert_int_equal(hgetN(KN(STATE), SF("ncal")), 50);
    cmd("HSET %s classes sonnet-4", KN(STATE));
    redisReply *r = script("status", 0, NULL);
    const char *vals[STATUS_COUNT], *cv[CSTATUS_COUNT];
    statusOf(r, CLASS, vals, cv);
    assert_string_equal(cv[CSTATUS_input_calibration], "2.000");
    freeReplyObject(r);

    long long now = redisNow();
    const char *ids[] = {"a"};
    craftClaim("w:1:", 1, ids, now + 60000);
    long long i0 = hgetN0(KN(STATE), SF("i_cum")), w;
    assert_admit(admit1(0, "w:1:1", "a", 1000, 10, 1, &w, NULL), ADMIT_GO);
    assertNear(hgetN0(KN(STATE), SF("i_cum")) - i0, 2000, 20, "charged ~2 x raw");
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:1"), "sonnet-4,2000,", 14), 0);
}

/* Output ~10 % of max_tokens: admission charges about that share under
 * 'actual', max_tokens under 'reserve'. */
static void test_output_quantile(void **state) {
    (void)state;
    resv v = {CLASS, 100, 1000, 5, 0, 1, 0, 0, 0, 100, 1000, "", 0};
    settleOks("q:1:", 10, v, 100, 100, 0, 0);
    settleOks("q:2:", 10, v, 100, 100, 0, 0);
    double oq = hgetD(KN(STATE), SF("oq"));
    if (oq < 0.09 || oq > 0.13) fail_msg("oq %f, expected ~0.1", oq);
    assert_int_equal(hgetN0(KN(STATE), SF("o_inflight")), 0);

    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    long long w;
    assert_admit(admit1(0, "w:1:1", "a", 100, 1000, 1, &w, NULL), ADMIT_GO);
    long long o = hgetN0(KN(STATE), SF("o_inflight"));
    if (o < 100 || o > 130) fail_msg("o_inflight %lld, expected ~100 (10%% of 1000)", o);
    cmd("HSET %s output_rule reserve", KN(LIMITS));
    assert_admit(admit1(0, "w:1:2", "b", 100, 1000, 1, &w, NULL), ADMIT_GO);
    assert_int_equal(hgetN0(KN(STATE), SF("o_inflight")) - o, 1000);
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:2"), "sonnet-4,100,1000,", 18), 0);
}

/* The output quantile's gain falls with the answers: after 250 answers at
 * 10 % of max_tokens, one above it lifts oq by e^(0.15 x 0.95) (1.15x; a
 * fixed gain of 0.5 gave 1.61x, and the reserve the fleet holds per request
 * in flight with it); a second in a row starts the gain over, so the third
 * lifts it by e^(0.49 x 0.95) again (0.5 / sqrt(1 + 1/20): outputs that
 * grew are caught up). */
static void test_output_quantile_gain(void **state) {
    (void)state;
    resv v = {CLASS, 100, 1000, 5, 0, 1, 0, 0, 0, 100, 1000, "", 0};
    settleBatches("g", 25, v, 100, 100);
    double q0 = hgetD(KN(STATE), SF("oq"));
    if (q0 < 0.09 || q0 > 0.13) fail_msg("oq %f after 250 answers, expected ~0.1", q0);
    /* Then one answer at a time: each moves oq by the ratio in its row. */
    static const struct { const char *lease; long long out; double lo, hi; const char *what; } step[] = {
        {"up:1:", 500, 1.14, 1.16, "one answer above (e^(0.15 x 0.95): 1.153)"},
        {"up:2:", 500, 1.14, 1.16, "second above (1.153)"},
        {"up:3:", 500, 1.58, 1.60, "third above, the gain restarted (1.590)"},
        {"dn:1:", 100, 0.974, 0.979, "below, by the restarted gain (e^(-0.48 x 0.05): 0.976)"},
    };
    double q = q0;
    for (size_t i = 0; i < sizeof(step) / sizeof(step[0]); i++) {
        settleOks(step[i].lease, 1, v, 100, step[i].out, 0, 0);
        double x = hgetD(KN(STATE), SF("oq")) / q;
        if (x < step[i].lo || x > step[i].hi) fail_msg("%s: oq x%.4f", step[i].what, x);
        q *= x;
    }
}

/* Under output_rule=reserve, what an answer gives back is counted once: a
 * request answered before the reading in force (headers stamped at a later
 * answer hold its refund already) and settled after it leaves the
 * estimate where it is (the reading's base moves with it); one answered
 * after the reading raises it by what it gave back. */
static void test_reserve_refund_once(void **state) {
    (void)state;
    cmd("HSET %s output_rule reserve", KN(LIMITS));
    long long now = redisNow();
    cmd("HSET %s sonnet-4|o_lim 60000 sonnet-4|o_rem 10000 sonnet-4|o_at %lld "
        "sonnet-4|o_cum 4000 sonnet-4|o_base 4000 sonnet-4|observed 1", KN(STATE), now);
    /* Admitted 1 s before the reading, answered 120 ms later. */
    resv v = {CLASS, 100, 2000, 5, now - 1000, 0, 0, 2000, 0, 100, 2000, "", 0};
    settleOks("rf:1:", 1, v, 100, 100, 0, 0);
    assert_int_equal(hgetN(KN(STATE), SF("o_cum")), 4000 - 1900);
    assert_int_equal(hgetN(KN(STATE), SF("o_cum")) - hgetN(KN(STATE), SF("o_base")), 0);
    /* Admitted after the reading: its refund is news. */
    v.t = now + 1;
    settleOks("rf:2:", 1, v, 100, 100, 0, 0);
    assert_int_equal(hgetN(KN(STATE), SF("o_cum")) - hgetN(KN(STATE), SF("o_base")), -1900);
    cmd("HSET %s output_rule actual", KN(LIMITS));
}

/* An estimate far under zero while the class has requests in flight (the
 * admission reading counts them twice when the API stamps at the answer):
 * the wait is at most a refill from empty; with nothing in flight the
 * whole wait stands. */
static void test_wait_capped_while_in_flight(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    /* 60000/min: 1 token/ms; est -20000 (0 left, 20000 charged since);
     * need 1000 + soft 3000. */
    cmd("HSET %s sonnet-4|i_lim 60000 sonnet-4|i_rem 0 sonnet-4|i_at %lld "
        "sonnet-4|i_cum 20000 sonnet-4|i_base 0 sonnet-4|observed 1 sonnet-4|n_inflight 5",
        KN(STATE), now);
    long long v;
    assert_admit(admit1(0, "w:1:1", "a", 1000, 10, 1, &v, NULL), ADMIT_PARKED);
    assertNear(v, 4000, SLACK_MS, "capped at a refill from empty (1000 + 3000)");
    cmd("HSET %s sonnet-4|n_inflight 0 sonnet-4|park_tail 0", KN(STATE));
    assert_admit(admit1(0, "w:1:2", "b", 1000, 10, 1, &v, NULL), ADMIT_PARKED);
    assertNear(v, 24000, SLACK_MS, "nothing in flight: the whole wait");
}

/* Under output_rule=reserve the holds of the requests in flight come back
 * (all but their output, at most oq of each) when they are answered: a job
 * the refill would make wait, but the give-back would not, waits in its
 * slot for a moment instead of being parked for the refill; parked jobs
 * are spaced by the output they are expected to use (oq x max_tokens), not
 * by the max_tokens they hold while they run. */
static void test_reserve_give_back(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b", "c", "d"};
    craftClaim("w:1:", 4, ids, now + 60000);
    cmd("HSET %s output_rule reserve", KN(LIMITS));
    /* 60000/min (1 token/ms), 10000 left, 20000 held by requests in flight;
     * nothing learned yet (oq 1: nothing is sure to come back). Need 10000
     * + soft 3000: 3000 ms of refill, parked. */
    cmd("HSET %s sonnet-4|o_lim 60000 sonnet-4|o_rem 10000 sonnet-4|o_at %lld "
        "sonnet-4|o_inflight 20000 sonnet-4|n_inflight 10 sonnet-4|observed 1 ewma_ms 400",
        KN(STATE), now);
    long long v;
    admitReply br;
    assert_admit(admit1(0, "w:1:1", "a", 10, 10000, 1, &v, &br), ADMIT_PARKED);
    assertNear(v, 3000, SLACK_MS, "refill wait with nothing learned");
    /* The next parked job is spaced by the whole 10000 (oq 1). */
    assert_admit(admit1(0, "w:1:2", "b", 10, 10000, 1, &v, NULL), ADMIT_PARKED);
    assertNear(v, 3000 + 2000, SLACK_MS, "behind the first, capped at 2 s");
    assertNear(hgetN(KN(STATE), SF("park_tail")), now + 5000 + 10000, SLACK_MS,
               "spaced by max_tokens");

    /* Learned: oq 0.1, so 18000 of the holds come back: a short wait in the
     * slot (ewma 400 ms / 4), not 3 s parked. */
    cmd("HSET %s sonnet-4|oq 0.1 sonnet-4|park_tail 0", KN(STATE));
    assert_admit(admit1(0, "w:1:3", "c", 10, 10000, 1, &v, &br), ADMIT_WAIT);
    assert_true(v > 0 && v <= 100);
    assertHas(br.reason, "output bucket");
    /* ... also with the class's parked jobs far ahead: tokens that come
     * back within a latency are not queued behind the refill (parked up to
     * 2 s while the bucket stays full), and the tail stays where it was. */
    cmd("HSET %s sonnet-4|park_tail %lld", KN(STATE), now + 10000);
    assert_admit(admit1(0, "w:1:3", "c", 10, 10000, 1, &v, &br), ADMIT_WAIT);
    assert_true(v > 0 && v <= 100);
    assertHas(br.reason, "holds in flight coming back");
    assert_int_equal(hgetN(KN(STATE), SF("park_tail")), now + 10000);
    /* Holds that cannot cover the need (est 10000 + 0.9 x 2000 < 13000):
     * parked for the refill of the rest (1200 ms; what they give back
     * comes within a latency), and the tail moves by 0.1 x 10000 only. */
    cmd("HSET %s sonnet-4|o_inflight 2000 sonnet-4|park_tail 0", KN(STATE));
    assert_admit(admit1(0, "w:1:3", "c", 10, 10000, 1, &v, NULL), ADMIT_PARKED);
    assertNear(v, 1200, SLACK_MS, "refill wait for what the holds do not give back");
    assertNear(hgetN(KN(STATE), SF("park_tail")), now + 1200 + 1000, SLACK_MS,
               "spaced by oq x max_tokens");
    /* ... but when the refill of the rest takes no longer than a latency
     * (ewma 2000 ms), the job waits in its slot: the holds come back
     * meanwhile. */
    const char *ids5[] = {"h"};
    craftClaim("w:5:", 1, ids5, now + 60000);
    cmd("HSET %s ewma_ms 2000 sonnet-4|park_tail 0", KN(STATE));
    assert_admit(admit1(0, "w:5:1", "h", 10, 10000, 1, &v, NULL), ADMIT_WAIT);
    assert_true(v > 0 && v <= 200);
    cmd("HSET %s ewma_ms 400 sonnet-4|park_tail %lld", KN(STATE), now + 1200 + 1000);
    /* With the class's mean output known (ewma_out 300, under the 0.1 x
     * 10000 of the quantile), by that: the bucket serves mean outputs. */
    const char *ids3[] = {"e"};
    craftClaim("w:3:", 1, ids3, now + 60000);
    cmd("HSET %s sonnet-4|park_tail 0 sonnet-4|ewma_out 300", KN(STATE));
    assert_admit(admit1(0, "w:3:1", "e", 10, 10000, 1, &v, NULL), ADMIT_PARKED);
    assertNear(hgetN(KN(STATE), SF("park_tail")), now + 1200 + 300, SLACK_MS,
               "spaced by the mean output");
    /* What comes back is the holds less the mean output once known: 2
     * requests holding 4000 with oq 0.5 promise 2000 (12000 < 13000:
     * parked), but at a mean output of 100 they give back 3800 (13800):
     * the job waits in its slot. */
    const char *ids4[] = {"f", "g"};
    craftClaim("w:4:", 2, ids4, now + 60000);
    cmd("HSET %s sonnet-4|park_tail 0 sonnet-4|o_inflight 4000 sonnet-4|n_inflight 2 "
        "sonnet-4|oq 0.5 sonnet-4|o_rem 10000 sonnet-4|o_at %lld", KN(STATE), now);
    cmd("HDEL %s sonnet-4|ewma_out", KN(STATE));
    assert_admit(admit1(0, "w:4:1", "f", 10, 10000, 1, &v, NULL), ADMIT_PARKED);
    cmd("HSET %s sonnet-4|park_tail 0 sonnet-4|ewma_out 100 sonnet-4|o_at %lld", KN(STATE), now);
    assert_admit(admit1(0, "w:4:2", "g", 10, 10000, 1, &v, NULL), ADMIT_WAIT);
    assert_true(v > 0 && v <= 200);
    cmd("HDEL %s sonnet-4|ewma_out", KN(STATE));
    cmd("HSET %s sonnet-4|n_inflight 10 sonnet-4|oq 0.1", KN(STATE));

    /* Under 'actual' the in-flight reservations are the expected output
     * itself: nothing comes back, the refill wait stands. */
    cmd("HSET %s output_rule actual", KN(LIMITS));
    cmd("HSET %s sonnet-4|o_inflight 20000 sonnet-4|park_tail 0 sonnet-4|o_done 0 "
        "sonnet-4|o_base 0 sonnet-4|o_rem 30000", KN(STATE));
    /* est 30000 - 20000 in flight = 10000; need 0.1 x 100000 = 10000. */
    assert_admit(admit1(0, "w:1:4", "d", 10, 100000, 1, &v, NULL), ADMIT_PARKED);
    assertNear(v, 3000, SLACK_MS, "no give-back under actual");
}

/* A prefix the API reported cached is recorded with its TTL; admission
 * then charges only the uncached input. */
static void test_cached_prefix(void **state) {
    (void)state;
    long long now = redisNow();
    resv v = {CLASS, 8100, 50, 5, 0, 1, 0, 0, 0, 8100, 50, "P", 0};
    settleOks("k:1:", 1, v, 100, 10, 0, 8000);
    char tokS[32];
    long long exp = 0;
    const char *c = hget(KN(CACHE), "P");
    if (sscanf(c, "%31[^,],%lld", tokS, &exp) != 2) fail_msg("cache P is \"%s\"", c);
    assert_string_equal(tokS, "8000");
    assertNear(exp, now + 300000, SLACK_MS, "5-minute TTL");

    /* A 1-hour cache: written 5000, kept an hour. */
    resv v1 = {CLASS, 5100, 50, 5, 0, 1, 0, 0, 0, 5100, 50, "Q", 1};
    settleOks("k:2:", 1, v1, 100, 10, 5000, 0);
    c = hget(KN(CACHE), "Q");
    if (sscanf(c, "%31[^,],%lld", tokS, &exp) != 2) fail_msg("cache Q is \"%s\"", c);
    assert_string_equal(tokS, "5000");
    assertNear(exp, now + 3600000, SLACK_MS, "1-hour TTL");

    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    long long i0 = hgetN0(KN(STATE), SF("i_cum")), w;
    assert_admit(admit1M(MODEL, "P", "w:1:1", "a", 8100, 10, &w, NULL), ADMIT_GO);
    assertNear(hgetN0(KN(STATE), SF("i_cum")) - i0, 100, 5, "uncached input only");
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:1"), "sonnet-4,100,", 13), 0);

    /* An expired entry does not count. */
    cmd("HSET %s R 8000,%lld", KN(CACHE), now - 1);
    i0 = hgetN0(KN(STATE), SF("i_cum"));
    assert_admit(admit1M(MODEL, "R", "w:1:2", "b", 8100, 10, &w, NULL), ADMIT_GO);
    assertNear(hgetN0(KN(STATE), SF("i_cum")) - i0, 8100, 5, "all of it");
}

/* A need over a bucket's limit is capped at the limit: the job goes when
 * the bucket is full, charged the limit. */
static void test_need_capped(void **state) {
    (void)state;
    long long now = redisNow();
    const char *ids[] = {"a", "b"};
    craftClaim("w:1:", 2, ids, now + 60000);
    /* 10000/min: 1/6 token per ms; 9000 left: 6000 ms to full. */
    cmd("HSET %s sonnet-4|i_lim 10000 sonnet-4|i_rem 9000 sonnet-4|i_at %lld "
        "sonnet-4|observed 1", KN(STATE), now);
    long long w;
    assert_admit(admit1(0, "w:1:1", "a", 50000, 10, 1, &w, NULL), ADMIT_PARKED);
    assertNear(w, 6000, SLACK_MS, "waits for a full bucket");

    /* Full: goes, charged 10000. */
    cmd("HSET %s sonnet-4|i_rem 10000 sonnet-4|park_tail 0", KN(STATE));
    assert_admit(admit1(0, "w:1:2", "b", 50000, 10, 1, &w, NULL), ADMIT_GO);
    assert_int_equal(hgetN(KN(STATE), SF("i_cum")), 10000);
    assert_int_equal(strncmp(hget(KN(RESERV), "w:1:2"), "sonnet-4,10000,", 15), 0);
}

/* status: the fixed fields, then per class its own. */
static void test_status_classes(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s class_max_in_flight sonnet-4=7", KN(LIMITS));
    cmd("HSET %s classes sonnet-4,haiku-4 sonnet-4|i_lim 60000 sonnet-4|i_rem 30000 "
        "sonnet-4|i_at %lld sonnet-4|n_inflight 2 sonnet-4|cal 1.5 sonnet-4|oq 0.25 "
        "haiku-4|pause_until %lld haiku-4|pause_kind %d haiku-4|pause_reason slow",
        KN(STATE), now, now + 5000, PAUSE_SHORT);
    cmd("HSET %s sonnet-4|requests 5 sonnet-4|r429 2 sonnet-4|est_n 4 "
        "sonnet-4|est_err_ppm 400000", KN(STATS));
    cmd("ZADD %s %lld p:1:1", KN(PARKED), now + 5000);
    redisReply *r = script("status", 0, NULL);
    const char *vals[STATUS_COUNT], *cv[CSTATUS_COUNT];
    assert_int_equal(statusParse(r, vals), 2);
    assert_string_equal(vals[STATUS_classes], "2");
    assert_string_equal(vals[STATUS_parked], "1");
    /* The fleet is not paused, the longest class pause shows. */
    assert_string_equal(vals[STATUS_paused], "1");
    assertHas(vals[STATUS_pause_reason], "haiku-4: slow");
    statusOf(r, CLASS, vals, cv);
    assert_string_equal(cv[CSTATUS_in_flight], "2");
    assert_string_equal(cv[CSTATUS_ceiling], "7");
    assertNear(atoll(cv[CSTATUS_i_estimate]), 30000, SLACK_MS, "i_estimate");
    assert_string_equal(cv[CSTATUS_i_limit], "60000");
    assert_string_equal(cv[CSTATUS_i_soft_floor], "3000");
    assert_string_equal(cv[CSTATUS_i_hard_floor], "0");
    assert_string_equal(cv[CSTATUS_o_limit], "");
    assert_string_equal(cv[CSTATUS_paused], "0");
    assert_string_equal(cv[CSTATUS_input_calibration], "1.500");
    assert_string_equal(cv[CSTATUS_output_quantile], "0.250");
    assert_string_equal(cv[CSTATUS_estimate_error_pct], "10.0");
    assert_string_equal(cv[CSTATUS_requests], "5");
    assert_string_equal(cv[CSTATUS_r429], "2");
    statusOf(r, "haiku-4", vals, cv);
    assert_string_equal(cv[CSTATUS_paused], "1");
    assert_string_equal(cv[CSTATUS_pause_kind], "short");
    assert_string_equal(cv[CSTATUS_pause_reason], "slow");
    assertNear(atoll(cv[CSTATUS_pause_until_ms]), now + 5000, SLACK_MS, "pause_until_ms");
    assert_string_equal(cv[CSTATUS_in_flight], "0");
    assert_string_equal(cv[CSTATUS_ceiling], "");
    assert_string_equal(cv[CSTATUS_i_limit], "");
    assert_string_equal(cv[CSTATUS_input_calibration], "1.000");
    freeReplyObject(r);
}

/* ---- The Batch lane (admit.lua BATCHED, batch.lua, settle.lua) ------------ */

/* One job of lane (deadline: ms from now, or -1) through admission. */
static admitVerdict admitLane(const char *lease, const char *id, const char *lane,
                              long long deadline_in, long long reserve, long long *val) {
    admitHead h = head(0);
    admitJob j = bjob(lease, id, 100, 50, reserve);
    j.lane = lane;
    j.deadline_ms = deadline_in < 0 ? -1 : redisNow() + deadline_in;
    j.bytes = 200;
    admitReply br;
    admitResult res;
    runBegin(&h, &j, 1, &br, &res);
    if (val) *val = res.value;
    return res.verdict;
}

/* A field of batch bid's record. */
static const char *bfield(const char *bid, const char *f) {
    static char key[300];
    snprintf(key, sizeof(key), "%s:%s", KN(BATCHES), bid);
    return hget(key, f);
}

static void test_batch_admit(void **state) {
    (void)state;
    const char *ids[] = {"a", "b", "c", "d", "e", "f"};
    long long now = redisNow(), v;
    craftClaim("w:1:", 6, ids, now + 60000);
    cmd("HSET %s batch_max_requests 4 batch_max_wait 60000", KN(LIMITS));
    cmd("HSET %s %s 1", KN(STATE), SF("observed"));   /* (no cold start for the sync ones) */
    /* lane batch: half the reservation (rounded up), a lease far out, the
     * class's forming batch, nothing in flight */
    assert_admit(admitLane("w:1:1", "a", "batch", -1, 1001, &v), ADMIT_BATCHED);
    assertNear(v, 60000, SLACK_MS, "BATCHED's value: ms until the batch is due");
    assertHas(hget(KN(RESERV), "w:1:1"), "b:" CLASS ",0,0,501,");
    assert_int_equal(hgetN(KN(STATE), "reserved"), 501);
    assert_true(zscore(KN(LEASES), "w:1:1") > now + 24 * 3600000LL);
    /* a renew that was on its way (the worker still held the slot) does
     * not shorten it */
    const char *rargv[] = {"30000", "w", "60000", "w:1:1"};
    freeReplyObject(script("renew", 4, rargv));
    assert_true(zscore(KN(LEASES), "w:1:1") > now + 24 * 3600000LL);
    assert_int_equal(cmdInt("ZCARD %s", KN(INFLIGHT)), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("n_inflight")), 0);
    assert_string_equal(hget(KN(BATCHFORM), CLASS), "b1");
    assert_string_equal(bfield("b1", "state"), "forming");
    /* lane auto: batch when the deadline is batch_margin (24 h) away or
     * absent; sync (a GO) when it is nearer */
    assert_admit(admitLane("w:1:2", "b", "auto", 48 * 3600000LL, 10, NULL), ADMIT_BATCHED);
    assert_admit(admitLane("w:1:3", "c", "auto", -1, 10, NULL), ADMIT_BATCHED);
    assert_admit(admitLane("w:1:4", "d", "auto", 3600000LL, 10, NULL), ADMIT_GO);
    /* no lane: the fleet's default_lane (sync unless set) */
    assert_admit(admitLane("w:1:5", "e", "", -1, 10, NULL), ADMIT_GO);
    cmd("HSET %s default_lane batch", KN(LIMITS));
    /* the 4th request seals the batch: due now, value 0 */
    assert_admit(admitLane("w:1:6", "f", "", -1, 10, &v), ADMIT_BATCHED);
    assert_int_equal(v, 0);
    assert_string_equal(bfield("b1", "state"), "sealed");
    assert_string_equal(bfield("b1", "n"), "4");
    assert_string_equal(hget(KN(BATCHFORM), CLASS), "");
    assertNear(zscore(KN(BATCHES), "b1"), now, SLACK_MS, "a sealed batch is due now");
    assert_int_equal(cmdInt("LLEN %s:b1:items", KN(BATCHES)), 4);
    /* a second copy of a batched id is not sent: DUP */
    const char *again[] = {"a"};
    craftClaim("w:2:", 1, again, now + 60000);
    assert_admit(admitLane("w:2:1", "a", "sync", -1, 10, NULL), ADMIT_DUP);
}

static void test_batch_take_and_fence(void **state) {
    (void)state;
    const char *ids[] = {"a", "b"};
    long long now = redisNow();
    craftClaim("w:1:", 2, ids, now + 60000);
    cmd("HSET %s batch_max_wait 0 batch_poll 1000", KN(LIMITS));
    assert_admit(admitLane("w:1:1", "a", "batch", -1, 10, NULL), ADMIT_BATCHED);
    assert_admit(admitLane("w:1:2", "b", "batch", -1, 10, NULL), ADMIT_BATCHED);
    const char *take[] = {"take", "5000"};
    redisReply *r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 1);
    assert_string_equal(r->element[1]->str, "b1");
    assert_string_equal(r->element[2]->str, "submitting");     /* sealed and taken */
    assert_string_equal(r->element[3]->str, "1");              /* the token */
    assert_int_equal(r->element[4]->integer, 1);               /* fresh: no POST yet */
    freeReplyObject(r);
    /* held: nobody else takes it meanwhile */
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 0);
    assertNear(r->element[1]->integer, 5000, SLACK_MS, "next due");
    freeReplyObject(r);
    /* the items: lease, raw job, admission time, attempt */
    const char *items[] = {"items", "b1", "2", "1"};
    r = script("batch", 4, items);
    assert_int_equal(r->elements, 9);
    assert_string_equal(r->element[1]->str, "w:1:2");
    assertHas(r->element[2]->str, "\"id\":\"b\"");
    assertNear(atoll(r->element[3]->str), now, SLACK_MS, "admitted at");
    assert_int_equal(r->element[4]->integer, 1);
    assert_string_equal(r->element[5]->str, "w:1:1");
    freeReplyObject(r);
    /* a stale token changes nothing */
    const char *stale[] = {"sending", "b1", "0", "2", "n0nce", "5000"};
    r = script("batch", 6, stale);
    assert_int_equal(r->integer, -1);
    freeReplyObject(r);
    const char *sending[] = {"sending", "b1", "1", "2", "n0nce", "8000"};
    r = script("batch", 6, sending);
    assert_true(r->integer >= now);
    freeReplyObject(r);
    assert_string_equal(bfield("b1", "sent_n"), "2");
    assert_string_equal(bfield("b1", "nonce"), "n0nce");
    assertNear(zscore(KN(BATCHES), "b1"), now + 8000, SLACK_MS, "the hold renewed at the send");
    const char *sub[] = {"submitted", "b1", "1", "msgbatch_x"};
    r = script("batch", 4, sub);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_string_equal(hget(KN(BATCHAPI), "msgbatch_x"), "b1");
    assertNear(zscore(KN(BATCHES), "b1"), now + 1000, SLACK_MS, "first poll after batch_poll");
    assertNear(zscore(KN(LEASES), "w:1:1"), now + 36 * 3600000LL, SLACK_MS,
               "the items' leases run 36 h from the creation at the API");
    /* the API id is b1's: another batch cannot adopt it */
    cmd("HSET %s:b9 state submitting token 4", KN(BATCHES));
    const char *steal[] = {"submitted", "b9", "4", "msgbatch_x"};
    r = script("batch", 4, steal);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    cmd("DEL %s:b9", KN(BATCHES));
    /* polled, not ended: again after poll_ms, which doubles */
    const char *polled[] = {"polled", "b1", "1", "in_progress", "2,0,0,0,0"};
    r = script("batch", 5, polled);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_string_equal(bfield("b1", "poll_ms"), "2000");
    const char *ended[] = {"polled", "b1", "1", "ended", "0,2,0,0,0"};
    r = script("batch", 5, ended);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_string_equal(bfield("b1", "state"), "ended");
    /* results of another POST (another nonce): that API batch is marked
     * nobody's, and the batch looks for its own again */
    const char *un[] = {"unadopt", "b1", "1"};
    r = script("batch", 3, un);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_string_equal(bfield("b1", "state"), "submitting");
    assert_string_equal(bfield("b1", "api_id"), "");
    assert_string_equal(hget(KN(BATCHAPI), "msgbatch_x"), "-");
    r = script("batch", 4, sub);
    assert_int_equal(r->integer, 0);                /* never adopted again */
    freeReplyObject(r);
}

/* A create refused for room (a 429 holding the lane's creates): at the
 * hold's end that batch goes before any younger one, even one due first
 * (the small batches formed meanwhile took the room at each hold's end, and
 * a batch of the queue's size was refused again and again); after
 * FIRST_MAX (3) refusals it gives up its place. */
static void test_batch_first_refused(void **state) {
    (void)state;
    const char *ids[] = {"a", "b", "c"};
    long long now = redisNow();
    craftClaim("w:1:", 3, ids, now + 60000);
    cmd("HSET %s batch_max_requests 2 batch_max_wait 0", KN(LIMITS));
    assert_admit(admitLane("w:1:1", "a", "batch", -1, 10, NULL), ADMIT_BATCHED);
    assert_admit(admitLane("w:1:2", "b", "batch", -1, 10, NULL), ADMIT_BATCHED);
    assert_admit(admitLane("w:1:3", "c", "batch", -1, 10, NULL), ADMIT_BATCHED);
    const char *take[] = {"take", "5000"};
    redisReply *r = script("batch", 2, take);
    assert_string_equal(r->element[1]->str, "b1");
    freeReplyObject(r);
    const char *refused[] = {"later", "b1", "1", "60000", "1", "2", "0"};
    freeReplyObject(script("batch", 7, refused));
    assert_string_equal(hget(KN(STATE), CLASS "|bfirst"), "b1");
    r = script("batch", 2, take);                   /* the hold: nothing goes */
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    /* the hold's end: b2 (formed meanwhile) is due before b1; b1 goes */
    cmd("HSET %s %s %lld", KN(STATE), CLASS "|bhold", now - 1);
    cmd("ZADD %s %lld b1 %lld b2", KN(BATCHES), now - 10, now - 1000);
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 1);
    assert_string_equal(r->element[1]->str, "b1");
    freeReplyObject(r);
    /* while b1's POST is out, b2 waits for it (asked again at b1's hold) */
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 0);
    assertNear(r->element[1]->integer, 5000, SLACK_MS, "b2 waits for b1's send");
    freeReplyObject(r);
    /* refused twice more: b1 gives up its place, b2 may go */
    const char *again[] = {"later", "b1", "2", "10", "1", "2", "0"};
    freeReplyObject(script("batch", 7, again));
    const char *third[] = {"later", "b1", "2", "60000", "1", "2", "0"};
    freeReplyObject(script("batch", 7, third));
    assert_string_equal(hget(KN(STATE), CLASS "|bfirst"), "");
    cmd("HSET %s %s %lld", KN(STATE), CLASS "|bhold", now - 1);
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 1);
    assert_string_equal(r->element[1]->str, "b2");
    freeReplyObject(r);
    /* a refusal of a batch that gave up its place does not take it back */
    const char *fourth[] = {"later", "b1", "2", "10", "1", "2", "0"};
    freeReplyObject(script("batch", 7, fourth));
    assert_string_equal(hget(KN(STATE), CLASS "|bfirst"), "");
}

/* After a create refused for room, a younger batch waits while ours in the
 * API's queue and it would pass the most the queue took at once since (a
 * create sent into a queue known to be full is refused, and holds every
 * create for the API's retry-after); when ours end, it goes. */
static void test_batch_room_wait(void **state) {
    (void)state;
    const char *ids[] = {"a", "b", "c", "d", "e"};
    long long now = redisNow();
    craftClaim("w:1:", 5, ids, now + 60000);
    cmd("HSET %s batch_max_requests 2 batch_max_wait 0 batch_poll 1000", KN(LIMITS));
    for (int i = 0; i < 5; i++) {
        char lease[16];
        snprintf(lease, sizeof(lease), "w:1:%d", i + 1);
        assert_admit(admitLane(lease, ids[i], "batch", -1, 10, NULL), ADMIT_BATCHED);
    }
    const char *take[] = {"take", "5000"};
    redisReply *r = script("batch", 2, take);
    assert_string_equal(r->element[1]->str, "b1");
    freeReplyObject(r);
    const char *sub1[] = {"submitted", "b1", "1", "msgbatch_1"};
    freeReplyObject(script("batch", 4, sub1));
    r = script("batch", 2, take);
    assert_string_equal(r->element[1]->str, "b2");
    freeReplyObject(r);
    const char *refused[] = {"later", "b2", "1", "10", "1", "2", "0"};
    freeReplyObject(script("batch", 7, refused));
    assert_string_equal(hget(KN(STATE), CLASS "|broom"), "");
    cmd("HSET %s %s %lld", KN(STATE), CLASS "|bhold", now - 1);
    cmd("ZADD %s %lld b2", KN(BATCHES), now - 1);
    r = script("batch", 2, take);                   /* nothing known: asked */
    assert_string_equal(r->element[1]->str, "b2");
    freeReplyObject(r);
    const char *sub2[] = {"submitted", "b2", "2", "msgbatch_2"};
    freeReplyObject(script("batch", 4, sub2));
    assert_string_equal(hget(KN(STATE), CLASS "|broom"), "4");   /* b1's 2 and b2's 2 */
    /* b3 (1 request): ours 4 in the queue, 5 > 4: it waits a poll */
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 0);
    assert_true(r->element[1]->integer > 0 && r->element[1]->integer <= 1000);
    freeReplyObject(r);
    /* b1 ended: 2 + 1 fit */
    const char *ended[] = {"polled", "b1", "1", "ended", "0,2,0,0,0"};
    freeReplyObject(script("batch", 5, ended));
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 1);
    assert_string_equal(r->element[1]->str, "b3");
    freeReplyObject(r);
    const char *sub3[] = {"submitted", "b3", "1", "msgbatch_3"};
    r = script("batch", 4, sub3);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_string_equal(hget(KN(STATE), CLASS "|broom"), "4");  /* took 3 */
    /* b8 (1 request): ours 3 in the queue, 3 + 1 = 4 fit exactly; and
     * taken again with its POST out (its taker died), its own request is
     * not counted twice: 3 + 1 still fit */
    cmd("HSET %s:b8 state sealed class %s n 1 token 0", KN(BATCHES), CLASS);
    for (int k = 0; k < 2; k++) {
        if (k) cmd("HSET %s:b8 submit_ms %lld sent_n 1", KN(BATCHES), now);
        cmd("ZADD %s %lld b8", KN(BATCHES), now - 1);
        r = script("batch", 2, take);
        assert_int_equal(r->element[0]->integer, 1);
        assert_string_equal(r->element[1]->str, "b8");
        freeReplyObject(r);
    }
    /* what the queue took is remembered 5 minutes after the refusal, then
     * the API is asked again */
    cmd("HSET %s:b9 state sealed class %s n 5 token 0", KN(BATCHES), CLASS);
    cmd("ZADD %s %lld b9", KN(BATCHES), now - 1);
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    cmd("HSET %s %s %lld", KN(STATE), CLASS "|broom_t", redisNow() - 300001);
    r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, 1);
    assert_string_equal(r->element[1]->str, "b9");
    freeReplyObject(r);
}

/* A batch take (OWN_MS 5000) hands out bid, or (bid NULL) nothing, asked
 * again in about wait ms (wait < 0: not checked). */
static void assertTake(const char *bid, long long wait, const char *what) {
    const char *take[] = {"take", "5000"};
    redisReply *r = script("batch", 2, take);
    assert_int_equal(r->element[0]->integer, bid ? 1 : 0);
    if (bid) assert_string_equal(r->element[1]->str, bid);
    else if (wait >= 0) assertNear(r->element[1]->integer, wait, SLACK_MS, what);
    freeReplyObject(r);
}

/* A create refused holds the creates of its batch's class only (the API's
 * queue of batch requests is per model class): another class's batch due
 * meanwhile goes at once, and the refused batch keeps its place in its
 * class alone; the refused class's batches wait for its hold. A 429 of the
 * endpoints' rate (HOLD 1) holds every class, and so does the fleet-wide
 * `batch_hold_send` a version before wrote. */
static void test_batch_hold_per_class(void **state) {
    (void)state;
    long long now = redisNow();
    cmd("HSET %s batch_poll 1000", KN(LIMITS));
    cmd("HSET %s:b1 state sealed class %s n 2 token 0", KN(BATCHES), CLASS);
    cmd("HSET %s:b2 state sealed class haiku-4 n 2 token 0", KN(BATCHES));
    cmd("HSET %s:b3 state sealed class %s n 2 token 0", KN(BATCHES), CLASS);
    cmd("ZADD %s %lld b1 %lld b2 %lld b3", KN(BATCHES), now - 30, now + 90000, now - 10);
    assertTake("b1", 0, NULL);
    const char *refused[] = {"later", "b1", "1", "60000", "1", "2", "0"};
    freeReplyObject(script("batch", 7, refused));
    assertNear(hgetN(KN(STATE), CLASS "|bhold"), now + 60000, SLACK_MS, "the class's hold");
    assert_string_equal(hget(KN(STATE), CLASS "|bfirst"), "b1");
    assert_string_equal(hget(KN(STATE), "batch_hold_send"), "");
    /* b3 (the same class) waits; told when the hold ends */
    assertTake(NULL, 60000, "b3 waits for its class's hold");
    /* b2 (another class) due: it goes, the hold and b1's place are not its */
    cmd("ZADD %s %lld b2", KN(BATCHES), now - 1);
    assertTake("b2", 0, NULL);
    /* the old fleet-wide hold holds every class (b4 held: b2's take is next) */
    cmd("HSET %s:b4 state sealed class haiku-4 n 2 token 0", KN(BATCHES));
    cmd("ZADD %s %lld b4", KN(BATCHES), now - 1);
    cmd("HSET %s batch_hold_send %lld", KN(STATE), redisNow() + 30000);
    assertTake(NULL, -1, NULL);
    cmd("HDEL %s batch_hold_send", KN(STATE));
    /* a 429 of the endpoints' rate (b2's poll, say) holds the whole lane */
    const char *rate[] = {"later", "b2", "1", "5000", "0", "1", "0"};
    freeReplyObject(script("batch", 7, rate));
    assertTake(NULL, 5000, "the endpoints' hold");
    cmd("HSET %s batch_hold %lld", KN(STATE), now - 1);
    assertTake("b4", 0, NULL);
}

static void test_batch_settle_finish(void **state) {
    (void)state;
    const char *ids[] = {"a", "b"};
    long long now = redisNow();
    craftClaim("w:1:", 2, ids, now + 60000);
    assert_admit(admitLane("w:1:1", "a", "batch", -1, 1000, NULL), ADMIT_BATCHED);
    assert_admit(admitLane("w:1:2", "b", "batch", -1, 1000, NULL), ADMIT_BATCHED);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 1000);
    /* a's result: its cost spent, its reservation back, no class counter */
    job j = testJob("a");
    settleRec rec;
    recSuccess(&rec, &j, 123, 1, NULL);
    assert_settled(settleOne("w:1:1", "a", &rec, 0), SETTLED_DONE);
    recFree(&rec);
    assert_int_equal(hgetN(KN(STATE), "spent"), 123);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 500);
    assert_int_equal(hgetN0(KN(STATE), SF("n_inflight")), 0);
    assert_int_equal(hgetN0(KN(STATE), SF("o_inflight")), 0);
    assert_int_equal(hgetN(KN(STATS), "batch_saved"), 123);
    /* finish: b had no result line: back to the queue, at no cost */
    cmd("HSET %s:b1 token 7", KN(BATCHES));
    const char *fin[] = {"finish", "b1", "7"};
    redisReply *r = script("batch", 3, fin);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(hgetN(KN(STATE), "reserved"), 0);
    assert_int_equal(hgetN(KN(STATE), "spent"), 123);
    assert_int_equal(cmdInt("LLEN %s", KN(JOBS)), 1);
    assert_int_equal(cmdInt("ZCARD %s", KN(LEASES)), 0);
    assert_int_equal(cmdInt("EXISTS %s:b1 %s:b1:items", KN(BATCHES), KN(BATCHES)), 0);
    assert_int_equal(cmdInt("ZCARD %s", KN(BATCHES)), 0);
    assert_int_equal(cmdInt("EXISTS %s", KN(CLAIMED)), 0);
    assert_int_equal(hgetN(KN(STATS), "batches_done"), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_admit_go, flush),
        cmocka_unit_test_setup(test_admit_lost, flush),
        cmocka_unit_test_setup(test_admit_dup, flush),
        cmocka_unit_test_setup(test_admit_wait_paused, flush),
        cmocka_unit_test_setup(test_admit_long_pause_probe, flush),
        cmocka_unit_test_setup(test_admit_wait_ceiling, flush),
        cmocka_unit_test_setup(test_admit_follow, flush),
        cmocka_unit_test_setup(test_claim_one_waker, flush),
        cmocka_unit_test_setup(test_claim_drained_says_next, flush),
        cmocka_unit_test_setup(test_follow_cancel_reap, flush),
        cmocka_unit_test_setup(test_follower_reading_uncertain, flush),
        cmocka_unit_test_setup(test_admit_budget, flush),
        cmocka_unit_test_setup(test_admit_noprice, flush),
        cmocka_unit_test_setup(test_admit_poison, flush),
        cmocka_unit_test_setup(test_admit_prices_ver, flush),
        cmocka_unit_test_setup(test_bucket_estimate, flush),
        cmocka_unit_test_setup(test_bucket_wait_rate, flush),
        cmocka_unit_test_setup(test_settle_result, flush),
        cmocka_unit_test_setup(test_settle_lost, flush),
        cmocka_unit_test_setup(test_settle_429_short, flush),
        cmocka_unit_test_setup(test_settle_429_long, flush),
        cmocka_unit_test_setup(test_settle_retry_until_max_attempts, flush),
        cmocka_unit_test_setup(test_settle_retry_budget, flush),
        cmocka_unit_test_setup(test_settle_observation_fenced, flush),
        cmocka_unit_test_setup(test_settle_claims_freed_slots, flush),
        cmocka_unit_test_setup(test_pause_operator, flush),
        cmocka_unit_test_setup(test_pause_resume_budget_stopped, flush),
        cmocka_unit_test_setup(test_claim_oldest_first, flush),
        cmocka_unit_test_setup(test_claim_intake, flush),
        cmocka_unit_test_setup(test_claim_paused, flush),
        cmocka_unit_test_setup(test_claim_due_retries, flush),
        cmocka_unit_test_setup(test_reap_intake, flush),
        cmocka_unit_test_setup(test_claim_leaves, flush),
        cmocka_unit_test_setup(test_reap_expired, flush),
        cmocka_unit_test_setup(test_reap_held_after_gap, flush),
        cmocka_unit_test_setup(test_dead_letter_redis_time, flush),
        cmocka_unit_test_setup(test_settle_refuses_inexact_numbers, flush),
        cmocka_unit_test_setup(test_admit_duplicate_ids, flush),
        cmocka_unit_test_setup(test_admit_count_near_cap, flush),
        cmocka_unit_test_setup(test_settle_observation_zero_limit, flush),
        cmocka_unit_test_setup(test_limits, flush),
        cmocka_unit_test_setup(test_purge, flush),
        cmocka_unit_test_setup(test_prices, flush),
        cmocka_unit_test_setup(test_class_buckets_independent, flush),
        cmocka_unit_test_setup(test_class_override, flush),
        cmocka_unit_test_setup(test_parked_claimed_back, flush),
        cmocka_unit_test_setup(test_parked_looked_at, flush),
        cmocka_unit_test_setup(test_parked_line_slips, flush),
        cmocka_unit_test_setup(test_parked_line_step, flush),
        cmocka_unit_test_setup(test_pace_burst, flush),
        cmocka_unit_test_setup(test_claim_poll_quiet, flush),
        cmocka_unit_test_setup(test_parked_look_counts_holds, flush),
        cmocka_unit_test_setup(test_parked_lines_apart, flush),
        cmocka_unit_test_setup(test_parked_legacy_moved, flush),
        cmocka_unit_test_setup(test_parked_oldest_due_first, flush),
        cmocka_unit_test_setup(test_parked_spacing, flush),
        cmocka_unit_test_setup(test_reserve_give_back, flush),
        cmocka_unit_test_setup(test_wait_capped_while_in_flight, flush),
        cmocka_unit_test_setup(test_reserve_refund_once, flush),
        cmocka_unit_test_setup(test_short_wait_not_parked, flush),
        cmocka_unit_test_setup(test_observe_per_class, flush),
        cmocka_unit_test_setup(test_429_spend_limit, flush),
        cmocka_unit_test_setup(test_observe_lower_reading, flush),
        cmocka_unit_test_setup(test_hard_floor_refill, flush),
        cmocka_unit_test_setup(test_429_class_pause, flush),
        cmocka_unit_test_setup(test_calibration, flush),
        cmocka_unit_test_setup(test_output_quantile, flush),
        cmocka_unit_test_setup(test_output_quantile_gain, flush),
        cmocka_unit_test_setup(test_cached_prefix, flush),
        cmocka_unit_test_setup(test_need_capped, flush),
        cmocka_unit_test_setup(test_status_classes, flush),
        cmocka_unit_test_setup(test_batch_admit, flush),
        cmocka_unit_test_setup(test_batch_take_and_fence, flush),
        cmocka_unit_test_setup(test_batch_first_refused, flush),
        cmocka_unit_test_setup(test_batch_hold_per_class, flush),
        cmocka_unit_test_setup(test_batch_room_wait, flush),
        cmocka_unit_test_setup(test_batch_settle_finish, flush),
    };
    int failed = cmocka_run_group_tests(tests, groupSetup, groupTeardown);
    useEval = 1;
    return failed + cmocka_run_group_tests(tests, groupSetup, groupTeardown);
}
