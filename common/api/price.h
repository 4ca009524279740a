/* price.h — model prices and the cost of a response, in integer
 * micro-dollars (1 USD = 1,000,000 micro-dollars).
 *
 * A built-in table covers current Claude models; priceLoadFile() adds or
 * overrides models. Lookups match the model id exactly, then as an alias
 * with a "-YYYYMMDD" date suffix removed ("claude-sonnet-4-5-20250929"
 * prices like "claude-sonnet-4-5"). */
#ifndef LF_PRICE_H
#define LF_PRICE_H

#include <stddef.h>

/* USD per million tokens, times 1,000,000 ($3/MTok -> 3000000). */
typedef struct price {
    long long input;
    long long cache_write_5m;
    long long cache_write_1h;
    long long cache_read;
    long long output;
} price;

typedef struct usage {
    long long input_tokens;
    long long output_tokens;
    long long cache_creation_input_tokens;  /* total cache writes */
    long long cache_5m_tokens;              /* -1 when the breakdown is absent */
    long long cache_1h_tokens;              /* -1 likewise */
    long long cache_read_input_tokens;
} usage;

/* Price of a model: 0 and *out set, or -1 when unknown. model need not be
 * NUL-terminated. */
int priceLookup(const char *model, size_t len, price *out);

/* Cost of a usage in micro-dollars, rounded up (never under-counts).
 * Without the cache breakdown all cache writes are priced as 5-minute ones. */
long long priceCost(const price *p, const usage *u);

/* The Message Batches price of a cost (priceCost, priceReserve...): half,
 * rounded up (never under-counts). */
static inline long long priceBatch(long long micro) {
    return micro < 0 ? micro : micro / 2 + micro % 2;
}

/* Worst-case cost of a request before it is sent: input_tokens at the input
 * price plus max_tokens at the output price, rounded up. */
long long priceReserve(const price *p, long long input_tokens, long long max_tokens);
/* The same, the input priced at the highest rate it can be charged: a
 * request with cache_control may be charged a cache write (cache: 1 a
 * 5-minute one, 2 a 1-hour one) for all of its input. */
long long priceReserveCached(const price *p, long long input_tokens, long long max_tokens,
                             int cache);

/* Load a price file: one model a line,
 *     MODEL INPUT CACHE_WRITE_5M CACHE_WRITE_1H CACHE_READ OUTPUT
 * in USD per million tokens (decimals allowed, at most 6 places); '#'
 * starts a comment, blank lines are skipped. Entries add to or replace
 * built-in ones. Returns 0, or -1 with err naming the file, line and
 * problem (nothing from a bad file is applied). */
int priceLoadFile(const char *path, char *err, size_t errlen);

/* Forget entries loaded from files or added (a worker reloading the
 * fleet's table starts from the built-in one). */
void priceResetOverrides(void);

/* Parse one price line ("MODEL INPUT CACHE_WRITE_5M CACHE_WRITE_1H
 * CACHE_READ OUTPUT", USD per MTok) into model and p. Returns 0, or -1
 * with err naming the problem. */
int priceParseLine(const char *line, char *model, size_t modellen, price *p,
                   char *err, size_t errlen);

/* Add or replace one model's prices. Returns 0, or -1 for a bad model id
 * or out of memory. */
int priceAdd(const char *model, const price *p);

/* Every model in force: added/loaded ones (builtin 0), then the built-in
 * ones they do not replace (builtin 1). */
typedef void priceVisit(const char *model, const price *p, int builtin, void *arg);
void priceEach(priceVisit *fn, void *arg);

/* Format a price line as priceParseLine reads it. Returns its length. */
int priceFormatLine(const char *model, const price *p, char *out, size_t outlen);

/* Format micro-dollars as a decimal USD string ("0.012345"). Returns length. */
int priceFormatUsd(long long micros, char *out, size_t outlen);

/* Bounds that keep every cost the fleet counts an exact integer in Lua
 * (under 2^53 micro-USD): a price at most $1,000,000 per million tokens
 * (x at most 1e8 tokens a usage field, outcome.h), a spend cap at most
 * $1,000,000,000. */
#define PRICE_MAX_MICROS 1000000000000LL
#define SPEND_MAX_MICROS 1000000000000000LL

/* Parse a decimal USD string ("12.5", "0.000001") into micro-dollars.
 * Returns 0, or -1 for anything else (negative, >6 decimals, garbage). */
int priceParseUsd(const char *s, long long *micros);

#endif
