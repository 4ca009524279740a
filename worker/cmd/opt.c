/* opt.c — command-line options (opt.h). */
#include "opt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parseNumber(const char *cmd, const optSpec *o, const char *v) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < o->min) {
        fprintf(stderr, "llmfleet %s: --%s wants an integer >= %ld, got \"%s\"\n",
                cmd, o->name, o->min, v);
        return -1;
    }
    switch (o->type) {
    case OPT_INT:
        if (n > 1000000000) {
            fprintf(stderr, "llmfleet %s: --%s is too large: %s\n", cmd, o->name, v);
            return -1;
        }
        *(int *)o->ptr = (int)n;
        break;
    case OPT_LONG: *(long *)o->ptr = (long)n; break;
    case OPT_SIZE: *(size_t *)o->ptr = (size_t)n; break;
    default: break;
    }
    return 0;
}

void optUsage(const char *cmd, const char *synopsis, const optSpec *specs) {
    printf("usage: llmfleet %s %s\n\noptions:\n", cmd, synopsis);
    for (const optSpec *o = specs; o->name; o++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "%s%s", o->name,
                 o->type == OPT_FLAG ? "" : o->type == OPT_STR ? " VALUE" : " N");
        printf("  --%-24s %s\n", flag, o->help ? o->help : "");
    }
}

int optParse(const char *cmd, int argc, char **argv, const optSpec *specs,
             char **pos, int maxpos, int *npos) {
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "-") == 0) {
            if (*npos >= maxpos) {
                fprintf(stderr, "llmfleet %s: unexpected argument \"%s\"\n", cmd, a);
                return -1;
            }
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + 2, *val = NULL;
        size_t nlen = strlen(name);
        const char *eq = strchr(name, '=');
        if (eq) nlen = (size_t)(eq - name), val = eq + 1;
        const optSpec *o = specs;
        for (; o->name; o++)
            if (strlen(o->name) == nlen && strncmp(o->name, name, nlen) == 0) break;
        if (!o->name) {
            fprintf(stderr, "llmfleet %s: unknown option \"%s\" (see --help)\n", cmd, a);
            return -1;
        }
        if (o->type == OPT_FLAG) {
            if (val) {
                fprintf(stderr, "llmfleet %s: --%s takes no value\n", cmd, o->name);
                return -1;
            }
            *(int *)o->ptr = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "llmfleet %s: --%s needs a value\n", cmd, o->name);
                return -1;
            }
            val = argv[++i];
        }
        if (o->type == OPT_STR) *(const char **)o->ptr = val;
        else if (parseNumber(cmd, o, val) < 0) return -1;
    }
    return 0;
}
