/* keys.h — the Redis key schema of a fleet.
 *
 * Every key is "llmfleet:{FLEET}:NAME": the {FLEET} hash tag puts all keys
 * of a fleet in one Cluster slot, so multi-key Lua scripts work there. The
 * names and their order come from proto.def (LF_KEYS), which every script
 * receives as KEYS in that order; the README's "Key schema" section
 * documents each key. */
#ifndef LF_KEYS_H
#define LF_KEYS_H

#include <stddef.h>

#include "proto.h"

typedef struct keySet {
    char name[KEY_COUNT][192];      /* full key names, in proto.def order */
    const char *argv[KEY_COUNT];    /* the same, as an argument vector */
} keySet;

/* Fill ks for fleet. Returns 0, or -1 when the fleet name is empty, too
 * long (> 100 bytes) or holds characters other than [A-Za-z0-9_.-]. */
int keysInit(keySet *ks, const char *fleet);

#endif
