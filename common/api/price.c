/* price.c — model prices and the cost of a response, in integer
 * micro-dollars.
 *
 * Prices are kept as USD per million tokens times 1,000,000, so a cost is
 * sum(tokens x price) / 1,000,000 micro-dollars: exact integer arithmetic
 * (128-bit for the products and the sum), one rounding, upwards, saturating
 * at LLONG_MAX. No floating point anywhere, so budgets add up to the last
 * micro-dollar.
 *
 * Two tables are searched: entries loaded from price files (one per model,
 * the latest loaded wins), then the built-in one. The loaded entries live in
 * one process-wide array; like the rest of a worker, this is not
 * thread-safe. Batch discounts
 * are not modelled here. */
#include "price.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRICE_MODEL_MAX 128         /* longest model id, with its NUL */

typedef struct priceEntry {
    char model[PRICE_MODEL_MAX];    /* model id */
    price p;                        /* its prices */
} priceEntry;

/* input / 5-minute cache write / 1-hour cache write / cache read / output,
 * USD per million tokens x 1,000,000 ($6.25 -> 6250000). */
#define OPUS_NEW  {5000000, 6250000, 10000000, 500000, 25000000}
#define OPUS_OLD  {15000000, 18750000, 30000000, 1500000, 75000000}
#define SONNET    {3000000, 3750000, 6000000, 300000, 15000000}
#define HAIKU_45  {1000000, 1250000, 2000000, 100000, 5000000}
#define HAIKU_35  {800000, 1000000, 1600000, 80000, 4000000}

static const priceEntry builtinPrices[] = {
    {"claude-opus-4-7", OPUS_NEW},
    {"claude-opus-4-6", OPUS_NEW},
    {"claude-opus-4-5", OPUS_NEW},
    {"claude-opus-4-1", OPUS_OLD},
    {"claude-opus-4-0", OPUS_OLD},
    {"claude-opus-4-20250514", OPUS_OLD},
    {"claude-sonnet-4-6", SONNET},
    {"claude-sonnet-4-5", SONNET},
    {"claude-sonnet-4-0", SONNET},
    {"claude-sonnet-4-20250514", SONNET},
    {"claude-haiku-4-5", HAIKU_45},
    {"claude-3-5-haiku-latest", HAIKU_35},
    {"claude-3-5-haiku-20241022", HAIKU_35},
};

static priceEntry *overrides;       /* entries from price files */
static size_t noverrides;

/* ---- Lookup ------------------------------------------------------------- */

static const price *findExact(const char *model, size_t len) {
    for (size_t i = 0; i < noverrides; i++) {
        const priceEntry *e = &overrides[i];
        if (strlen(e->model) == len && memcmp(e->model, model, len) == 0) return &e->p;
    }
    for (size_t i = 0; i < sizeof(builtinPrices) / sizeof(builtinPrices[0]); i++) {
        const priceEntry *e = &builtinPrices[i];
        if (strlen(e->model) == len && memcmp(e->model, model, len) == 0) return &e->p;
    }
    return NULL;
}

/* Length of model without a trailing "-YYYYMMDD", or len when there is none. */
static size_t stripDate(const char *model, size_t len) {
    if (len < 10 || model[len - 9] != '-') return len;
    for (size_t i = len - 8; i < len; i++)
        if (model[i] < '0' || model[i] > '9') return len;
    return len - 9;
}

int priceLookup(const char *model, size_t len, price *out) {
    const price *p;
    size_t alias;

    if (model == NULL) return -1;
    if ((p = findExact(model, len)) == NULL) {
        alias = stripDate(model, len);
        if (alias == len || (p = findExact(model, alias)) == NULL) return -1;
    }
    *out = *p;
    return 0;
}

/* ---- Cost --------------------------------------------------------------- */

typedef unsigned __int128 u128;

/* tokens x price, with garbage (negative) inputs counted as zero. Both
 * factors are below 2^63, so the product fits in 126 bits. */
static u128 term(long long tokens, long long unit_price) {
    if (tokens <= 0 || unit_price <= 0) return 0;
    return (u128)tokens * (u128)unit_price;
}

/* a + b, saturated: a handful of 126-bit terms could overflow 128 bits. */
static u128 addSat(u128 a, u128 b) {
    return a > ~(u128)0 - b ? ~(u128)0 : a + b;
}

/* sum / 1,000,000 rounded up, saturated at LLONG_MAX. */
static long long perMillionUp(u128 sum) {
    u128 q = sum / 1000000 + (sum % 1000000 != 0);
    return q > (u128)LLONG_MAX ? LLONG_MAX : (long long)q;
}

long long priceCost(const price *p, const usage *u) {
    u128 sum = term(u->input_tokens, p->input);
    sum = addSat(sum, term(u->cache_read_input_tokens, p->cache_read));
    sum = addSat(sum, term(u->output_tokens, p->output));

    if (u->cache_5m_tokens >= 0 || u->cache_1h_tokens >= 0) {
        long long t5 = u->cache_5m_tokens > 0 ? u->cache_5m_tokens : 0;
        long long t1 = u->cache_1h_tokens > 0 ? u->cache_1h_tokens : 0;
        long long all = u->cache_creation_input_tokens;
        sum = addSat(sum, term(t5, p->cache_write_5m));
        sum = addSat(sum, term(t1, p->cache_write_1h));
        /* Writes the breakdown does not explain are priced as 5-minute
         * ones, the same rule as when there is no breakdown at all. */
        if (all > t5 && all - t5 > t1)
            sum = addSat(sum, term(all - t5 - t1, p->cache_write_5m));
    } else {
        sum = addSat(sum, term(u->cache_creation_input_tokens, p->cache_write_5m));
    }
    return perMillionUp(sum);
}

long long priceReserve(const price *p, long long input_tokens, long long max_tokens) {
    return perMillionUp(addSat(term(input_tokens, p->input), term(max_tokens, p->output)));
}

long long priceReserveCached(const price *p, long long input_tokens, long long max_tokens,
                             int cache) {
    long long rate = p->input;
    if (cache >= 1 && p->cache_write_5m > rate) rate = p->cache_write_5m;
    if (cache >= 2 && p->cache_write_1h > rate) rate = p->cache_write_1h;
    return perMillionUp(addSat(term(input_tokens, rate), term(max_tokens, p->output)));
}

/* ---- USD strings -------------------------------------------------------- */

int priceFormatUsd(long long micros, char *out, size_t outlen) {
    /* Unsigned magnitude, so LLONG_MIN formats too. */
    unsigned long long mag = micros < 0 ? 0ULL - (unsigned long long)micros
                                        : (unsigned long long)micros;
    int n;

    if (out == NULL || outlen == 0) return 0;
    n = snprintf(out, outlen, "%s%llu.%06llu", micros < 0 ? "-" : "",
                 mag / 1000000, mag % 1000000);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < outlen ? n : (int)outlen - 1;
}

int priceParseUsd(const char *s, long long *micros) {
    long long whole = 0, frac = 0;
    int nfrac = 0;
    const char *p = s;

    if (s == NULL || !isdigit((unsigned char)*p)) return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (whole > (LLONG_MAX / 1000000 - (*p - '0')) / 10) return -1;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        for (; isdigit((unsigned char)*p); p++) {
            if (++nfrac > 6) return -1;
            frac = frac * 10 + (*p - '0');
        }
        if (nfrac == 0) return -1;
    }
    if (*p != '\0') return -1;
    for (int i = nfrac; i < 6; i++) frac *= 10;
    if (whole * 1000000 > LLONG_MAX - frac) return -1;
    *micros = whole * 1000000 + frac;
    return 0;
}

/* ---- Price files -------------------------------------------------------- */

/* Split line (modified in place) into at most max whitespace-separated
 * fields, a '#' ending it. Returns the number of fields found, which is
 * max + 1 when there are more than max. */
static int splitFields(char *line, char **field, int max) {
    int n = 0;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    for (char *p = line;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p == '\0') break;
        if (n == max) return max + 1;
        field[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') p++;
        if (*p) *p++ = '\0';
    }
    return n;
}

/* A model id: printable ASCII, short enough to store. */
static int validModel(const char *m) {
    size_t n = strlen(m);
    if (n == 0 || n >= PRICE_MODEL_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)m[i] <= ' ' || (unsigned char)m[i] >= 0x7f) return 0;
    return 1;
}

/* Parse one non-blank line into e. Returns 0, 1 for a line with nothing on
 * it, or -1 with err describing the problem (without the file:line). */
static int parsePriceLine(char *line, size_t linelen, priceEntry *e, char *err,
                          size_t errlen) {
    static const char *names[5] = {"INPUT", "CACHE_WRITE_5M", "CACHE_WRITE_1H",
                                   "CACHE_READ", "OUTPUT"};
    long long *slot[5] = {&e->p.input, &e->p.cache_write_5m, &e->p.cache_write_1h,
                          &e->p.cache_read, &e->p.output};
    char *f[6];
    int n;

    if (strlen(line) != linelen) {
        snprintf(err, errlen, "NUL byte in line");
        return -1;
    }
    n = splitFields(line, f, 6);
    if (n == 0) return 1;
    if (n != 6) {
        if (n > 6)
            snprintf(err, errlen, "expected 6 fields (MODEL INPUT CACHE_WRITE_5M "
                     "CACHE_WRITE_1H CACHE_READ OUTPUT), got more");
        else
            snprintf(err, errlen, "expected 6 fields (MODEL INPUT CACHE_WRITE_5M "
                     "CACHE_WRITE_1H CACHE_READ OUTPUT), got %d", n);
        return -1;
    }
    if (!validModel(f[0])) {
        snprintf(err, errlen, "bad model id (printable, at most %d bytes)",
                 PRICE_MODEL_MAX - 1);
        return -1;
    }
    strcpy(e->model, f[0]);
    for (int i = 0; i < 5; i++) {
        if (priceParseUsd(f[i + 1], slot[i]) < 0 || *slot[i] > PRICE_MAX_MICROS) {
            snprintf(err, errlen, "bad %s price \"%.32s\" for %s (want USD per "
                     "million tokens, at most 6 decimals, at most 1000000)", names[i], f[i + 1], f[0]);
            return -1;
        }
    }
    return 0;
}

/* Append e to the array *v of *n entries. Returns 0, or -1 out of memory
 * (and then *v is unchanged). */
static int pushEntry(priceEntry **v, size_t *n, const priceEntry *e) {
    priceEntry *nv = realloc(*v, sizeof(**v) * (*n + 1));
    if (nv == NULL) return -1;
    nv[(*n)++] = *e;
    *v = nv;
    return 0;
}

/* Add add[0..nadd) to the overrides, replacing entries with the same model
 * id (so reloading a file does not grow the table; a later entry wins).
 * Returns 0, or -1 out of memory, and then nothing changed. */
static int applyEntries(const priceEntry *add, size_t nadd) {
    priceEntry *nv;
    if (nadd == 0) return 0;
    if ((nv = realloc(overrides, sizeof(*nv) * (noverrides + nadd))) == NULL) return -1;
    overrides = nv;
    for (size_t i = 0; i < nadd; i++) {
        size_t j = 0;
        while (j < noverrides && strcmp(overrides[j].model, add[i].model) != 0) j++;
        overrides[j] = add[i];
        if (j == noverrides) noverrides++;
    }
    return 0;
}

int priceLoadFile(const char *path, char *err, size_t errlen) {
    char *line = NULL, why[384];
    size_t cap = 0, nnew = 0;
    priceEntry *fresh = NULL, e;
    long lineno = 0;
    ssize_t r;
    int rc = -1;
    FILE *fp;

    if ((fp = fopen(path, "r")) == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while ((r = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        memset(&e, 0, sizeof(e));
        int k = parsePriceLine(line, (size_t)r, &e, why, sizeof(why));
        if (k < 0) {
            snprintf(err, errlen, "%s:%ld: %s", path, lineno, why);
            goto done;
        }
        if (k == 0 && pushEntry(&fresh, &nnew, &e) < 0) {
            snprintf(err, errlen, "%s:%ld: out of memory", path, lineno);
            goto done;
        }
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    /* All good: apply the whole file at once. */
    if (applyEntries(fresh, nnew) < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    rc = 0;
done:
    free(fresh);
    free(line);
    fclose(fp);
    return rc;
}

int priceParseLine(const char *line, char *model, size_t modellen, price *p,
                   char *err, size_t errlen) {
    priceEntry e;
    size_t len = strlen(line);
    char *copy = malloc(len + 1);
    if (!copy) abort();
    memcpy(copy, line, len + 1);
    memset(&e, 0, sizeof(e));
    int k = parsePriceLine(copy, len, &e, err, errlen);
    free(copy);
    if (k == 1) snprintf(err, errlen, "empty price line");
    if (k != 0) return -1;
    snprintf(model, modellen, "%s", e.model);
    *p = e.p;
    return 0;
}

int priceAdd(const char *model, const price *p) {
    priceEntry e;
    if (!validModel(model)) return -1;
    memset(&e, 0, sizeof(e));
    strcpy(e.model, model);
    e.p = *p;
    return applyEntries(&e, 1);
}

void priceEach(priceVisit *fn, void *arg) {
    for (size_t i = 0; i < noverrides; i++) fn(overrides[i].model, &overrides[i].p, 0, arg);
    for (size_t i = 0; i < sizeof(builtinPrices) / sizeof(builtinPrices[0]); i++) {
        const char *m = builtinPrices[i].model;
        if (findExact(m, strlen(m)) == &builtinPrices[i].p)
            fn(m, &builtinPrices[i].p, 1, arg);
    }
}

int priceFormatLine(const char *model, const price *p, char *out, size_t outlen) {
    char f[5][32];
    priceFormatUsd(p->input, f[0], 32);
    priceFormatUsd(p->cache_write_5m, f[1], 32);
    priceFormatUsd(p->cache_write_1h, f[2], 32);
    priceFormatUsd(p->cache_read, f[3], 32);
    priceFormatUsd(p->output, f[4], 32);
    return snprintf(out, outlen, "%s %s %s %s %s %s", model, f[0], f[1], f[2], f[3], f[4]);
}

void priceResetOverrides(void) {
    free(overrides);
    overrides = NULL;
    noverrides = 0;
}
