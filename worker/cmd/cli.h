/* cli.h — the operator subcommands that talk to Redis with a blocking
 * connection: submit, results (cli.c); status, limits, pause, resume, dead
 * (admin.c). Each returns the process's exit status. */
#ifndef LF_CLI_H
#define LF_CLI_H

typedef struct cliCommon {
    const char *redis_url;      /* --redis-url / LLMFLEET_REDIS_URL */
    const char *fleet;          /* --fleet / LLMFLEET_FLEET */
} cliCommon;

struct redisContext;
struct keySet;

/* Connect to the fleet's Redis (AUTH, SELECT) and fill its key names.
 * Prints "llmfleet CMD: why" and returns NULL on failure. */
struct redisContext *cliConnect(const char *cmd, const cliCommon *cc,
                                struct keySet *ks);

int cliSubmit(const cliCommon *cc, int argc, char **argv);
int cliResults(const cliCommon *cc, int argc, char **argv);
int cliStatus(const cliCommon *cc, int argc, char **argv);
int cliLimits(const cliCommon *cc, int argc, char **argv);
int cliPause(const cliCommon *cc, int argc, char **argv, int resume);
int cliDead(const cliCommon *cc, int argc, char **argv);
/* cliConnect's failure as an exit status: 2 a configuration error (bad
 * fleet name or URL), 1 Redis unreachable or refusing (AUTH, a Sentinel
 * without the master). */
extern int cliConnectRc;

int cliWait(const cliCommon *cc, int argc, char **argv);
int cliRetry(const cliCommon *cc, int argc, char **argv);
int cliGc(const cliCommon *cc, int argc, char **argv);
int cliPrices(const cliCommon *cc, int argc, char **argv);
int cliFunctions(const cliCommon *cc, int argc, char **argv);
int cliBatches(const cliCommon *cc, int argc, char **argv);
/* status's lines for the Batch lane's open batches (at most max). */
void batchesPrint(struct redisContext *c, const struct keySet *ks, int max);

#endif
