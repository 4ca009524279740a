/* genproto.c — build tool: writes proto.def as a Lua prelude (stdout),
 * which scripts/embed-lua.sh puts in front of every script. Positions
 * become 1-based; codes and names stay as proto.def says. */
#include <stdio.h>

#include "proto.h"

static void list(const char *table, const char **names, int n, int base) {
    printf("local %s = {", table);
    for (int i = 0; i < n; i++) printf("%s%s = %d", i ? ", " : "", names[i], base + i);
    printf("}\n");
}

#define NAMES(M, arr) static const char *arr[] = { M(STR1) }
#define STR1(N) #N,

NAMES(LF_CLAIM_ARGS, claimArgs);
NAMES(LF_CLAIM_REPLY, claimReply);
NAMES(LF_ADMIT_ARGS, admitArgs);
NAMES(LF_ADMIT_JOB, admitJob);
NAMES(LF_ADMIT_REPLY, admitReply);
NAMES(LF_SETTLE_ARGS, settleArgs);
NAMES(LF_OBS, obs);
NAMES(LF_REC, rec);
NAMES(LF_ATTEMPT, attempt);
NAMES(LF_PAUSE_ARGS, pauseArgs);

#define N_OF(a) ((int)(sizeof(a) / sizeof(a[0])))

int main(void) {
    printf("-- Generated from common/fleet/proto.def by genproto: do not edit.\n");
    /* Set per call (scripts/embed-lua.sh): a function library's top
     * level runs once, at FUNCTION LOAD, where neither exists. */
    printf("local rcall, K\n");
    /* Keys by name: K.jobs is KEYS[1], ... ; K.list the claim's list.
     * Every key is named after the fleet, as KEYS[1] is: a function
     * library keeps the table of the fleet it served last and builds it
     * again only for another (a new table of 34 fields each call was ~5 %
     * of the scripts' time in a paced run). MEMO holds what a function
     * library keeps from call to call (one local: a script's main
     * function holds at most 200, the libraries' included). */
    printf("local MEMO = {}\n");
    printf("local function keysOf(KEYS)\n");
    printf("    if KEYS[1] ~= MEMO.fleet then\n        MEMO.keys = {");
#define X(N, name, doc) printf("%s = KEYS[%d], ", #name, KEY_##N + 1);
    LF_KEYS(X)
#undef X
    printf("}\n        MEMO.fleet = KEYS[1]\n    end\n");
    printf("    MEMO.keys.list = KEYS[%d]\n    return MEMO.keys\nend\n", KEY_COUNT + 1);
    printf("local NKEYS = %d\n", KEY_COUNT);
    list("CA", claimArgs, N_OF(claimArgs), 1);
    list("CR", claimReply, N_OF(claimReply), 1);
    list("AA", admitArgs, N_OF(admitArgs), 1);
    list("AJ", admitJob, N_OF(admitJob), 0);      /* offsets in a job group */
    printf("local AJ_N = %d\n", N_OF(admitJob));
    list("AR", admitReply, N_OF(admitReply), 1);
    list("SA", settleArgs, N_OF(settleArgs), 1);
    list("OBS", obs, N_OF(obs), 0);               /* offsets in a group */
    printf("local OBS_N = %d\n", N_OF(obs));
    printf("local OBS0 = %d\n", N_OF(settleArgs) + 1);   /* first group */
    list("REC", rec, N_OF(rec), 0);               /* offsets in a record */
    list("ATT", attempt, N_OF(attempt), N_OF(rec)); /* offsets in a record */
    printf("local REC_NF = %d\n", N_OF(rec) + N_OF(attempt));
    list("PA", pauseArgs, N_OF(pauseArgs), 1);
    printf("local ADMIT = {");
#define X(N, v, doc) printf("%s = %d, ", #N, v);
    LF_ADMIT(X)
#undef X
    printf("}\nlocal SOLO = {");
#define X(N, v) printf("%s = %d, ", #N, v);
    LF_SOLO(X)
#undef X
    printf("}\nlocal OP = {");
#define X(N, v, doc) printf("%s = '%c', ", #N, v);
    LF_OPS(X)
#undef X
    printf("}\nlocal SETTLED = {");
#define X(N, v, doc) printf("%s = %d, ", #N, v);
    LF_SETTLED(X)
#undef X
    printf("}\nlocal PAUSE = {");
#define X(N, v, name, doc) printf("%s = %d, ", #N, v);
    LF_PAUSE(X)
#undef X
    printf("}\nlocal PAUSE_NAME = {");
#define X(N, v, name, doc) printf("[%d] = '%s', ", v, #name);
    LF_PAUSE(X)
#undef X
    printf("}\nlocal LIMIT_DEFAULTS = {");
#define X(name, kind, min, choices, def, help) printf("%s = '%s', ", #name, def);
    LF_LIMITS(X)
#undef X
    printf("}\nlocal STATUS = {");
#define X(name) printf("%s = %d, ", #name, STATUS_##name + 1);
    LF_STATUS(X)
#undef X
    printf("}\nlocal NSTATUS = %d\n", STATUS_COUNT);
    printf("local CSTATUS = {");
#define X(name) printf("%s = %d, ", #name, CSTATUS_##name);
    LF_CLASS_STATUS(X)
#undef X
    printf("}\nlocal NCSTATUS = %d\n", CSTATUS_COUNT);
#define X(N, v, doc) printf("local %s = %lld\n", #N, (long long)v##LL);
    LF_CONSTS(X)
#undef X
    return 0;
}
