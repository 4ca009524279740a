/* proto.h — the fleet protocol's names and numbers for C, from proto.def
 * (the Lua side gets the same list from genproto). Enums only: no code. */
#ifndef LF_PROTO_H
#define LF_PROTO_H

#include "proto.def"

#define LF_ENUM_NAME(p, n, ...) p##n,
#define LF_ENUM_VAL(p, n, v, ...) p##n = v,

/* Keys, in the order every script receives them. */
typedef enum {
#define X(N, name, doc) KEY_##N,
    LF_KEYS(X)
#undef X
    KEY_COUNT
} keyId;

/* Argument positions (0-based) and counts. */
typedef enum {
#define X(N) CA_##N,
    LF_CLAIM_ARGS(X)
#undef X
    CA_COUNT
} claimArg;
typedef enum {
#define X(N) CR_##N,
    LF_CLAIM_REPLY(X)
#undef X
    CR_COUNT
} claimReplyField;
typedef enum {
#define X(N) AA_##N,
    LF_ADMIT_ARGS(X)
#undef X
    AA_COUNT
} admitArg;
typedef enum {
#define X(N) AJ_##N,
    LF_ADMIT_JOB(X)
#undef X
    AJ_COUNT
} admitJobArg;
typedef enum {
#define X(N) AR_##N,
    LF_ADMIT_REPLY(X)
#undef X
    AR_COUNT
} admitReplyField;
typedef enum {
#define X(N) SA_##N,
    LF_SETTLE_ARGS(X)
#undef X
    SA_COUNT
} settleArg;
typedef enum {
#define X(N) OBS_##N,
    LF_OBS(X)
#undef X
    OBS_COUNT
} obsField;
typedef enum {
#define X(N) REC_##N,
    LF_REC(X)
#undef X
    REC_COUNT
} recField;
typedef enum {
#define X(N) ATT_##N,
    LF_ATTEMPT(X)
#undef X
    ATT_COUNT
} attemptField;
typedef enum {
#define X(N) PA_##N,
    LF_PAUSE_ARGS(X)
#undef X
    PA_COUNT
} pauseArg;

/* Codes. */
typedef enum {
#define X(N, v, doc) ADMIT_##N = v,
    LF_ADMIT(X)
#undef X
} admitVerdict;
typedef enum {
#define X(N, v) SOLO_##N = v,
    LF_SOLO(X)
#undef X
} soloState;
typedef enum {
#define X(N, v, doc) OP_##N = v,
    LF_OPS(X)
#undef X
} recOp;
typedef enum {
#define X(N, v, doc) SETTLED_##N = v,
    LF_SETTLED(X)
#undef X
} settleVerdict;
typedef enum {
#define X(N, v, name, doc) PAUSE_##N = v,
    LF_PAUSE(X)
#undef X
} pauseKind;

typedef enum {
#define X(name, kind, min, choices, def, help) LIMIT_##name,
    LF_LIMITS(X)
#undef X
    LIMIT_COUNT
} limitId;

typedef enum {
#define X(name) STATUS_##name,
    LF_STATUS(X)
#undef X
    STATUS_COUNT
} statusField;

/* Per-class status fields, 1-based offsets in Lua, 0-based here. */
typedef enum {
#define X(name) CSTATUS_##name,
    LF_CLASS_STATUS(X)
#undef X
    CSTATUS_COUNT
} classStatusField;

#define X(N, v, doc) static const long long LF_##N = v##LL;
LF_CONSTS(X)
#undef X

#endif
