/* cli.h — the operator subcommands that talk to Redis with a blocking
 * connection: submit, results, status. Each returns the process's exit
 * status. */
#ifndef LF_CLI_H
#define LF_CLI_H

typedef struct cliCommon {
    const char *redis_url;      /* --redis-url / LLMFLEET_REDIS_URL */
    const char *fleet;          /* --fleet / LLMFLEET_FLEET */
} cliCommon;

int cliSubmit(const cliCommon *cc, int argc, char **argv);
int cliResults(const cliCommon *cc, int argc, char **argv);
int cliStatus(const cliCommon *cc, int argc, char **argv);

#endif
