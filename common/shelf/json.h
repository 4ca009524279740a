/* json.h — small helpers over the jsmn tokenizer.
 *
 * jsonParse() tokenizes a whole document (strict mode, growing the token
 * array on JSMN_ERROR_NOMEM up to a limit) and checks nesting depth, so
 * nothing downstream recurses on untrusted input. Tokens index into the
 * caller's buffer, which must outlive the jsonDoc. Values are read with the
 * getters; strings are unescaped on request. */
#ifndef LF_JSON_H
#define LF_JSON_H

#include <stddef.h>

#define JSMN_STRICT
#define JSMN_HEADER
/* Parent links let jsmn find the container a ',', ']' or '}' belongs to by
 * walking up from the last token instead of scanning back over all tokens,
 * which made a long flat array or object quadratic to tokenize. It adds a
 * field to jsmntok_t: json.c defines it too, before its own include. */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#define JSON_MAX_DEPTH 64           /* default nesting limit */

typedef struct jsonDoc {
    const char *js;                 /* the document, not owned */
    size_t len;                     /* its length */
    jsmntok_t *tok;                 /* JSON tokens (jsmn's), owned */
    int ntok;                       /* JSON tokens used */
} jsonDoc;

/* Tokenize js[0..len). At most max_tokens JSON tokens (0: no limit) and
 * max_depth levels of nesting. Returns 0, or -1 with a message in err
 * ("not JSON: ...", "JSON nested deeper than 64 levels", ...). On success
 * the caller frees with jsonFree(); on failure nothing is left to free. */
int jsonParse(jsonDoc *d, const char *js, size_t len, int max_tokens,
              int max_depth, char *err, size_t errlen);
void jsonFree(jsonDoc *d);

/* Index of the first token after token i and everything inside it. */
int jsonSkip(const jsonDoc *d, int i);

/* In the object at token obj, the value token of key (-1 when absent or
 * when obj is not an object). Keys are compared unescaped-naive: a key
 * written with escapes does not match. */
int jsonGet(const jsonDoc *d, int obj, const char *key);

/* How many times key appears in the object at token obj (0 when obj is not
 * an object). JSON allows duplicates; readers disagree on which one wins. */
int jsonKeyCount(const jsonDoc *d, int obj, const char *key);

/* Follow a dotted path of object keys from token obj ("usage.input_tokens").
 * Returns the value token or -1. */
int jsonPath(const jsonDoc *d, int obj, const char *path);

/* 1 when token i is a string equal to s (raw bytes, no unescaping). */
int jsonStrEq(const jsonDoc *d, int i, const char *s);

/* Integer value of a primitive token: 0, or -1 when i is not an integer
 * that fits in a long long (floats, booleans, null, strings are refused). */
int jsonInt(const jsonDoc *d, int i, long long *out);

/* Unescape string token i into out (at most outlen-1 bytes, NUL-terminated).
 * \uXXXX becomes UTF-8 (surrogate pairs joined). Returns the unescaped
 * length, or -1 when i is not a string, an escape is invalid, or it does not
 * fit. Embedded NULs ("\u0000") are refused (-1): our strings are C strings. */
int jsonStr(const jsonDoc *d, int i, char *out, size_t outlen);

/* Raw text of token i (strings without their quotes). */
static inline const char *jsonRaw(const jsonDoc *d, int i) { return d->js + d->tok[i].start; }
static inline int jsonRawLen(const jsonDoc *d, int i) { return d->tok[i].end - d->tok[i].start; }

/* Offset of the first byte of s[0..len) that is not valid UTF-8 (overlong
 * forms, surrogates, code points past U+10FFFF, truncated sequences) or is
 * NUL; -1 when all of it is valid. */
long jsonUtf8Invalid(const char *s, size_t len);

/* The raw text of a value including a string's quotes (for verbatim copies);
 * an index < 0 (a value not found) gives an empty span. */
void jsonSpan(const jsonDoc *d, int i, const char **p, size_t *len);

#endif
