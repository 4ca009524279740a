/* opt.h — a small command-line option parser shared by the subcommands.
 *
 * Options are "--name VALUE", "--name=VALUE" or, for flags, "--name".
 * Everything else is a positional argument, kept in order. Errors name the
 * option and the value that was wrong. */
#ifndef LF_OPT_H
#define LF_OPT_H

#include <stddef.h>

typedef enum { OPT_FLAG, OPT_STR, OPT_INT, OPT_LONG, OPT_SIZE } optType;

typedef struct optSpec {
    const char *name;       /* without the leading "--" */
    optType type;
    void *ptr;              /* int* (FLAG, INT), const char** (STR), long*, size_t* */
    long min;               /* smallest accepted number */
    const char *help;       /* one line for --help */
} optSpec;

/* Parse argv[0..argc) against specs (terminated by a {NULL} entry).
 * Positional arguments go to pos[0..*npos) (at most maxpos). Returns 0, or
 * -1 after printing "llmfleet CMD: ..." to stderr. "--help" prints the
 * option list and returns 1. */
int optParse(const char *cmd, int argc, char **argv, const optSpec *specs,
             char **pos, int maxpos, int *npos);

void optUsage(const char *cmd, const char *synopsis, const optSpec *specs);

#endif
