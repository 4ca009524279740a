/* rds.h — the worker's Redis connections: one async (hiredis + libevent)
 * for the event loop, and a blocking one for the operator subcommands.
 *
 * The async side owns reconnection: on a lost connection it reconnects with
 * backoff, redoes AUTH and SELECT, and (re)loads the Lua scripts. Scripts
 * are called by name with rdsScript(): EVALSHA when the SHA is known, EVAL
 * otherwise, and a NOSCRIPT answer (after SCRIPT FLUSH or a restart) is
 * answered by resending the same call as EVAL. */
#ifndef LF_RDS_H
#define LF_RDS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

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

/* Stop reconnecting, fail pending calls (callbacks get NULL), free. */
void rdsFree(rds *c);

/* 1 when connected and ready (AUTH/SELECT sent). */
int rdsReady(const rds *c);

/* Call the embedded script `name` (scripts/lua/NAME.lua) with nkeys keys
 * and nargs arguments (binary safe; copied, so the caller's memory may go
 * once this returns). Returns 0 when sent; -1 when not connected, in which
 * case cb is NOT called. */
int rdsScript(rds *c, const char *name, int nkeys, const char **keys,
              int nargs, const char **argv, const size_t *argvlen,
              rdsCallback *cb, void *priv);

/* A plain command (binary safe, copied). Same return rule as rdsScript. */
int rdsCommand(rds *c, int argc, const char **argv, const size_t *argvlen,
               rdsCallback *cb, void *priv);

/* ---- Blocking connection (subcommands) ---- */

/* Connect, AUTH, SELECT. Returns a context, or NULL with err set (the
 * message never contains the password). */
redisContext *rdsConnectSync(const rurl *url, char *err, size_t errlen);

/* Run a script on a blocking connection (EVAL). Caller frees the reply.
 * NULL on connection error (err set). */
redisReply *rdsScriptSync(redisContext *rc, const char *name, int nkeys,
                          const char **keys, int nargs, const char **argv,
                          const size_t *argvlen);

/* Resolve the Redis URL from --redis-url / LLMFLEET_REDIS_URL, adding the
 * password from LLMFLEET_REDIS_PASSWORD or LLMFLEET_REDIS_PASSWORD_FILE when
 * the URL has none. Returns 0 or -1 with err. */
int rdsResolveUrl(const char *url, rurl *out, char *err, size_t errlen);

#endif
