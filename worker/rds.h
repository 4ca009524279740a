/* rds.h — the worker's Redis connections: one async (hiredis + libevent)
 * for the event loop, and a blocking one for the operator subcommands.
 *
 * The async side owns reconnection: on a lost connection it reconnects with
 * backoff, redoes AUTH and SELECT, and (re)loads the Lua scripts. Scripts
 * are called by name with rdsScript(): EVALSHA when the SHA is known, EVAL
 * otherwise, and a NOSCRIPT answer (after SCRIPT FLUSH or a restart) is
 * answered by resending the same call as EVAL. Every script receives the
 * fleet's keys in proto.def's one order (plus, for a claim, its list). */
#ifndef LF_RDS_H
#define LF_RDS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "hist.h"
#include "keys.h"
#include "rurl.h"

struct event_base;
typedef struct rds rds;

/* A reply callback. r is NULL when the call failed (not connected, lost
 * connection); r is only valid inside the callback (hiredis frees it). */
typedef void rdsCallback(rds *c, redisReply *r, void *priv);

/* Called each time the connection is (re)established and ready. */
typedef void rdsReadyProc(rds *c, void *priv);

/* Create an async connection on base and start connecting. The url is
 * copied. Never returns NULL (aborts on OOM); connection errors are logged
 * and retried. */
rds *rdsCreate(struct event_base *base, const rurl *url,
               rdsReadyProc *ready, void *priv);

/* What a connection has seen, for the metrics endpoint. */
typedef struct rdsStats {
    hist rtt;                       /* call sent -> its reply */
    long long connects;             /* connections made ready */
    long long disconnects;          /* lost (closed, errors, reply deadline) */
} rdsStats;

const rdsStats *rdsGetStats(const rds *c);

/* Stop reconnecting, fail pending calls (callbacks get NULL), free. */
void rdsFree(rds *c);

/* 1 when connected and ready (AUTH/SELECT sent). */
int rdsReady(const rds *c);

/* How fresh the link is: ms since the last reply (-1: none yet, or not
 * connected), and the round trip's moving average (us). */
long long rdsSinceReplyMs(const rds *c);
long long rdsRttUs(const rds *c);
long long rdsRttLowUs(const rds *c);    /* the round trip's low end (us) */

/* A script call: the embedded script `name` (scripts/lua/NAME.lua), the
 * fleet's keys, one more key when extra_key is not NULL, and nargs
 * arguments (binary safe; copied by the call, so the caller's memory may
 * go once it returns). */
typedef struct rdsScriptCall {
    const char *name;
    const keySet *keys;
    const char *extra_key;
    int nargs;
    const char **argv;
    const size_t *argvlen;
} rdsScriptCall;

/* Send a script call. Returns 0 when sent; -1 when not connected, in which
 * case cb is NOT called. */
int rdsScript(rds *c, const rdsScriptCall *sc, rdsCallback *cb, void *priv);

/* A script call, then a plain command that reads what the script left
 * (pipelined: one round trip). rds keeps the order whatever happens: the
 * read's callback always comes after the script's, and its reply is from
 * a read that ran after the script (a NOSCRIPT resend sends the read
 * again and drops the first read's answer); if the script could not be
 * sent again, the read's callback gets NULL. Returns 0 when sent (both
 * callbacks will be called), -1 when not connected (neither is). */
int rdsScriptThen(rds *c, const rdsScriptCall *sc, rdsCallback *cb, void *priv,
                  int rargc, const char **rargv, const size_t *rargvlen,
                  rdsCallback *rcb, void *rpriv);

/* A plain command (binary safe, copied). Same return rule as rdsScript.
 * An error reply goes to cb unlogged (a script's is logged). */
int rdsCommand(rds *c, int argc, const char **argv, const size_t *argvlen,
               rdsCallback *cb, void *priv);

/* 1 when r is Redis refusing for now, before running anything: loading
 * its data after a restart (LOADING), another script running (BUSY), a
 * replica cut off from its master (MASTERDOWN). */
int rdsBusyReply(const redisReply *r);

/* ---- Blocking connection (subcommands) ---- */

/* Connect, AUTH, SELECT. Returns a context, or NULL with err set (the
 * message never contains the password). Commands on it fail after the
 * reply timeout (rdsSyncTimeoutMs: LLMFLEET_REDIS_TIMEOUT_MS, default 10 s). */
long rdsSyncTimeoutMs(void);
const char *rdsSyncErr(const redisContext *c);
redisContext *rdsConnectSync(const rurl *url, char *err, size_t errlen);

/* Run a script call on a blocking connection (EVAL). Returns the reply
 * (the caller frees it), or NULL on a connection error (rc->errstr says
 * why). */
redisReply *rdsScriptSync(redisContext *rc, const rdsScriptCall *sc);

/* Redis Cluster: the node named by a "MOVED SLOT HOST:PORT" error into u
 * (credentials and db kept). Returns 0, or -1 when reply is not one. */
int rdsParseMoved(const char *reply, rurl *u);

/* Connect for the fleet whose keys are ks: in a Redis Cluster, where
 * its slot lives (a probe of one of its keys answered MOVED: the
 * connection moves there, up to 5 hops). Same contract as
 * rdsConnectSync. */
redisContext *rdsConnectFleet(const rurl *url, const keySet *ks, char *err, size_t errlen);

/* Resolve the Redis URL from --redis-url / LLMFLEET_REDIS_URL, adding the
 * password from LLMFLEET_REDIS_PASSWORD or LLMFLEET_REDIS_PASSWORD_FILE when
 * the URL has none. Returns 0 or -1 with err. */
int rdsResolveUrl(const char *url, rurl *out, char *err, size_t errlen);

#endif
