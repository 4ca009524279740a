/* cache.c — the fake API's prompt cache: which prefixes were written, and
 * until when they can be read.
 *
 * A prefix is known only by its 64-bit hash (tokens.c computes it from the
 * model and the content up to a cache_control block). Entries live in an
 * open-addressing table; every lookup of a live entry may refresh it, as
 * the real cache's reads do. When the table fills up it is rebuilt without
 * its expired entries, and doubled only if that did not free enough room,
 * up to CACHE_MAX entries: past that, new prefixes are simply not cached.
 * What a hit or a write costs is decided in messages.c. */
#include "fakeapi.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_MIN_CAP 1024u
#define CACHE_MAX     (1u << 18)    /* live entries held at most */

typedef struct cacheEntry {
    uint64_t hash;              /* prefix hash, 0 = empty slot */
    double expires;             /* monotonic time it stops being readable */
} cacheEntry;

static struct {
    cacheEntry *tab;            /* slots, a power of two of them */
    size_t cap;                 /* slots allocated */
    size_t used;                /* slots holding an entry, expired or not */
} cache;

/* 0 marks an empty slot, so hash 0 is stored as 1. */
static uint64_t cacheKey(uint64_t hash) {
    return hash ? hash : 1;
}

/* The slot holding key, or the empty slot where it would go. */
static cacheEntry *cacheSlot(cacheEntry *tab, size_t cap, uint64_t key) {
    size_t i = (size_t)key & (cap - 1);
    while (tab[i].hash != 0 && tab[i].hash != key) i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* Rebuild the table with the live entries only, in a table of a size that
 * leaves them at most a quarter full (doubling when needed). Returns 0, or
 * -1 when there is no room (CACHE_MAX reached or out of memory). */
static int cacheRebuild(double now) {
    size_t live = 0, cap = CACHE_MIN_CAP;
    cacheEntry *tab;

    for (size_t i = 0; i < cache.cap; i++)
        if (cache.tab[i].hash && cache.tab[i].expires > now) live++;
    if (live + 1 > CACHE_MAX) return -1;
    while (cap < (live + 1) * 4) cap *= 2;
    if (!(tab = calloc(cap, sizeof(*tab)))) return -1;
    for (size_t i = 0; i < cache.cap; i++) {
        const cacheEntry *e = &cache.tab[i];
        if (e->hash && e->expires > now) *cacheSlot(tab, cap, e->hash) = *e;
    }
    free(cache.tab);
    cache.tab = tab;
    cache.cap = cap;
    cache.used = live;
    return 0;
}

int fakeCacheLive(uint64_t hash, double now) {
    const cacheEntry *e;

    if (!cache.cap) return 0;
    e = cacheSlot(cache.tab, cache.cap, cacheKey(hash));
    return e->hash && e->expires > now;
}

void fakeCacheStore(uint64_t hash, double ttl, double now) {
    uint64_t key = cacheKey(hash);
    cacheEntry *e;

    if ((cache.used + 1) * 2 > cache.cap && cacheRebuild(now) != 0) {
        /* Full of live entries: refresh an existing one, add nothing. */
        if (!cache.cap) return;
        e = cacheSlot(cache.tab, cache.cap, key);
        if (e->hash && e->expires < now + ttl) e->expires = now + ttl;
        return;
    }
    e = cacheSlot(cache.tab, cache.cap, key);
    if (!e->hash) {
        e->hash = key;
        e->expires = 0;
        cache.used++;
    }
    if (e->expires < now + ttl) e->expires = now + ttl;
}

void fakeCacheClear(void) {
    free(cache.tab);
    memset(&cache, 0, sizeof(cache));
}

long long fakeCacheEntries(void) {
    return (long long)cache.used;
}
