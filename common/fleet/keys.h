/* keys.h — the Redis key schema of a fleet.
 *
 * Every key is "llmfleet:{FLEET}:NAME": the {FLEET} hash tag puts all keys
 * of a fleet in one Cluster slot, so multi-key Lua scripts work there. The
 * README's "Key schema" section documents each key. */
#ifndef LF_KEYS_H
#define LF_KEYS_H

#include <stddef.h>

typedef enum {
    KEY_JOBS,           /* LIST    producers LPUSH, workers take from the right */
    KEY_LEASES,         /* ZSET    lease token -> expiry (ms, Redis clock) */
    KEY_CLAIMED,        /* HASH    claim prefix -> its leases not yet ended;
                         * LIST    claimed:PREFIX, the claim's raw jobs */
    KEY_DELAYED,        /* ZSET    retry token -> due time (ms) */
    KEY_DELAYEDJOB,     /* HASH    retry token -> raw job */
    KEY_DONE,           /* SET     job ids that have their one result */
    KEY_ATTEMPTS,       /* HASH    job id -> API attempts so far */
    KEY_RESULTS,        /* STREAM  one entry per job id */
    KEY_DEAD,           /* LIST    dead letters (JSON: reason, id, job) */
    KEY_WORKERS,        /* ZSET    worker name -> heartbeat expiry (ms) */
    KEY_LIMITS,         /* HASH    fleet-wide limits */
    KEY_STATE,          /* HASH    fleet state: token estimate, pause, spend */
    KEY_STATS,          /* HASH    counters for status */
    KEY_INFLIGHT,       /* ZSET    admitted lease token -> expiry (ms) */
    KEY_RESERV,         /* HASH    admitted lease token -> "in,out,cost,t" */
    KEY_RETRYLOG,       /* ZSET    retries dispatched in the last 60 s */
    KEY_LOST,           /* HASH    job id -> deliveries lost with their worker */
    KEY_COUNT           /* number of keys */
} keyId;

typedef struct keySet {
    char name[KEY_COUNT][192];  /* full key names */
} keySet;

/* Fill ks for fleet. Returns 0, or -1 when the fleet name is empty, too
 * long (> 100 bytes) or holds characters other than [A-Za-z0-9_.-]. */
int keysInit(keySet *ks, const char *fleet);

#endif
