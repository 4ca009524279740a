/* json.c — see json.h. The only file that compiles jsmn's implementation. */
#define JSMN_STRICT
#define JSMN_PARENT_LINKS           /* as in json.h: see there */
#include <jsmn.h>

#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Parsing ---------------------------------------------------------- */

#define DEPTH_CAP (JSON_MAX_DEPTH * 4)  /* deepest limit the checkers take */

/* Nesting depth of the raw text, checked before tokenizing: jsmn finds the
 * container a ']' or '}' closes by walking up from the last token, so a
 * document nested thousands deep would take quadratic time to tokenize.
 * Brackets count only where jsmn (strict) sees them: not inside strings,
 * not inside primitives (which run up to a delimiter and may hold '"').
 * Stops where jsmn would stop with an error, so that error is the one
 * reported. Returns -1 when deeper than max_depth. */
static int checkDepthRaw(const char *js, size_t len, int max_depth) {
    enum { VALUE, STRING, PRIMITIVE } st = VALUE;
    int depth = 0;
    size_t quote = 0;                   /* next '"' at or after i, when >= i */
    if (max_depth > DEPTH_CAP) max_depth = DEPTH_CAP;
    for (size_t i = 0; i < len && js[i] != '\0'; i++) {
        char c = js[i];
        if (st == STRING) {
            /* Jump to the next quote or backslash (memchr is vectorized:
             * most of a job's bytes are string contents). */
            if (quote < i) {            /* the next quote, found once */
                const char *q = memchr(js + i, '"', len - i);
                quote = q ? (size_t)(q - js) : len;
            }
            size_t end = quote;
            const char *bs = memchr(js + i, '\\', end - i);
            if (bs) {
                i = (size_t)(bs - js) + 1;  /* the escaped byte is skipped */
                continue;
            }
            i = end;
            st = VALUE;
            continue;
        }
        if (st == PRIMITIVE) {
            if (!strchr(",]} \t\r\n", c)) {
                if (c < 32 || c >= 127) return 0;
                continue;
            }
            st = VALUE;
        }
        if (c == '"') {
            st = STRING;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) return -1;
        } else if (c == ']' || c == '}') {
            if (depth > 0) depth--;
        } else if (strchr("-0123456789tfn", c)) {
            st = PRIMITIVE;
        } else if (!strchr(",: \t\r\n", c)) {
            return 0;
        }
    }
    return 0;
}

/* Nesting depth of a token list, without recursion: a stack of the end
 * offsets of the containers we are inside. */
static int checkDepth(const jsonDoc *d, int max_depth) {
    int stack[DEPTH_CAP + 1];
    int top = 0;
    if (max_depth > (int)(sizeof(stack) / sizeof(stack[0])) - 1)
        max_depth = (int)(sizeof(stack) / sizeof(stack[0])) - 1;
    for (int i = 0; i < d->ntok; i++) {
        const jsmntok_t *t = &d->tok[i];
        while (top > 0 && t->start >= stack[top - 1]) top--;
        if (t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) {
            if (top >= max_depth) return -1;
            stack[top++] = t->end;
        }
    }
    return 0;
}

int jsonParse(jsonDoc *d, const char *js, size_t len, int max_tokens,
              int max_depth, char *err, size_t errlen) {
    jsmn_parser p;
    int cap = 64, r;

    memset(d, 0, sizeof(*d));
    if (len > 0x7fffffff) {
        snprintf(err, errlen, "JSON document too large (%zu bytes)", len);
        return -1;
    }
    if (max_depth <= 0) max_depth = JSON_MAX_DEPTH;
    if (max_tokens > 0 && max_tokens < cap) cap = max_tokens;
    if (checkDepthRaw(js, len, max_depth) < 0) {
        snprintf(err, errlen, "JSON nested deeper than %d levels", max_depth);
        return -1;
    }
    for (;;) {
        jsmntok_t *t = realloc(d->tok, sizeof(*t) * (size_t)cap);
        if (!t) {
            snprintf(err, errlen, "out of memory parsing JSON");
            goto fail;
        }
        d->tok = t;
        jsmn_init(&p);
        r = jsmn_parse(&p, js, len, d->tok, (unsigned)cap);
        if (r != JSMN_ERROR_NOMEM) break;
        if (max_tokens > 0 && cap >= max_tokens) {
            snprintf(err, errlen, "JSON has more than %d tokens", max_tokens);
            goto fail;
        }
        cap *= 2;
        if (max_tokens > 0 && cap > max_tokens) cap = max_tokens;
    }
    if (r == JSMN_ERROR_INVAL) {
        snprintf(err, errlen, "not JSON: invalid character at offset %u", p.pos);
        goto fail;
    }
    if (r == JSMN_ERROR_PART || r == 0) {
        snprintf(err, errlen, "not JSON: truncated or empty document");
        goto fail;
    }
    d->js = js;
    d->len = len;
    d->ntok = r;
    /* One value only: anything but whitespace after it is garbage. A
     * string token ends before its closing quote. */
    for (size_t i = (size_t)d->tok[0].end + (d->tok[0].type == JSMN_STRING); i < len; i++) {
        if (js[i] != ' ' && js[i] != '\t' && js[i] != '\n' && js[i] != '\r') {
            snprintf(err, errlen, "not JSON: trailing data at offset %zu", i);
            goto fail;
        }
    }
    if (jsonSkip(d, 0) != d->ntok) {
        snprintf(err, errlen, "not JSON: more than one value");
        goto fail;
    }
    if (checkDepth(d, max_depth) < 0) {
        snprintf(err, errlen, "JSON nested deeper than %d levels", max_depth);
        goto fail;
    }
    return 0;
fail:
    jsonFree(d);
    return -1;
}

void jsonFree(jsonDoc *d) {
    free(d->tok);
    memset(d, 0, sizeof(*d));
}

/* ---- Navigation ------------------------------------------------------- */

int jsonSkip(const jsonDoc *d, int i) {
    int end = d->tok[i].end;
    int j = i + 1;
    while (j < d->ntok && d->tok[j].start < end) j++;
    return j;
}

int jsonGet(const jsonDoc *d, int obj, const char *key) {
    if (obj < 0 || obj >= d->ntok || d->tok[obj].type != JSMN_OBJECT) return -1;
    int n = d->tok[obj].size;
    int k = obj + 1;
    for (int i = 0; i < n; i++) {
        int v = k + 1;
        if (v >= d->ntok) return -1;
        if (jsonStrEq(d, k, key)) return v;
        k = jsonSkip(d, v);
    }
    return -1;
}

int jsonKeyCount(const jsonDoc *d, int obj, const char *key) {
    if (obj < 0 || obj >= d->ntok || d->tok[obj].type != JSMN_OBJECT) return 0;
    int n = d->tok[obj].size, k = obj + 1, count = 0;
    for (int i = 0; i < n && k + 1 < d->ntok; i++) {
        count += jsonStrEq(d, k, key);
        k = jsonSkip(d, k + 1);
    }
    return count;
}

int jsonPath(const jsonDoc *d, int obj, const char *path) {
    char part[128];
    while (obj >= 0 && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(part)) return -1;
        memcpy(part, path, n);
        part[n] = '\0';
        obj = jsonGet(d, obj, part);
        path += n + (dot ? 1 : 0);
    }
    return obj;
}

int jsonStrEq(const jsonDoc *d, int i, const char *s) {
    if (i < 0 || i >= d->ntok) return 0;    /* e.g. a jsonGet() miss */
    const jsmntok_t *t = &d->tok[i];
    size_t n = strlen(s);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(d->js + t->start, s, n) == 0;
}

/* ---- Values ----------------------------------------------------------- */

int jsonInt(const jsonDoc *d, int i, long long *out) {
    if (i < 0 || i >= d->ntok || d->tok[i].type != JSMN_PRIMITIVE) return -1;
    const char *p = jsonRaw(d, i);
    int n = jsonRawLen(d, i), k = 0, neg = 0;
    unsigned long long v = 0, max = 9223372036854775807ULL;
    if (n > 0 && p[0] == '-') neg = 1, k = 1, max++;    /* LLONG_MIN fits */
    if (k >= n) return -1;
    for (; k < n; k++) {
        if (p[k] < '0' || p[k] > '9') return -1;
        if (v > (max - (unsigned)(p[k] - '0')) / 10) return -1;
        v = v * 10 + (unsigned)(p[k] - '0');
    }
    *out = neg ? (v ? -(long long)(v - 1) - 1 : 0) : (long long)v;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *p, const char *end, unsigned *out) {
    unsigned v = 0;
    if (end - p < 4) return -1;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0) return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

int jsonStr(const jsonDoc *d, int i, char *out, size_t outlen) {
    if (i < 0 || i >= d->ntok || d->tok[i].type != JSMN_STRING || outlen == 0)
        return -1;
    const char *p = jsonRaw(d, i), *end = p + jsonRawLen(d, i);
    size_t o = 0;
    while (p < end) {
        unsigned char enc[4];
        size_t n = 1;
        if (*p != '\\') {
            enc[0] = (unsigned char)*p++;
        } else {
            if (++p >= end) return -1;
            char c = *p++;
            switch (c) {
            case '"': case '\\': case '/': enc[0] = (unsigned char)c; break;
            case 'b': enc[0] = '\b'; break;
            case 'f': enc[0] = '\f'; break;
            case 'n': enc[0] = '\n'; break;
            case 'r': enc[0] = '\r'; break;
            case 't': enc[0] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (hex4(p, end, &cp) < 0) return -1;
                p += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                        hex4(p + 2, end, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return -1;
                }
                if (cp == 0) return -1;
                if (cp < 0x80) {
                    enc[0] = (unsigned char)cp;
                } else if (cp < 0x800) {
                    enc[0] = (unsigned char)(0xC0 | cp >> 6);
                    enc[1] = (unsigned char)(0x80 | (cp & 0x3F));
                    n = 2;
                } else if (cp < 0x10000) {
                    enc[0] = (unsigned char)(0xE0 | cp >> 12);
                    enc[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                    enc[2] = (unsigned char)(0x80 | (cp & 0x3F));
                    n = 3;
                } else {
                    enc[0] = (unsigned char)(0xF0 | cp >> 18);
                    enc[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
                    enc[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                    enc[3] = (unsigned char)(0x80 | (cp & 0x3F));
                    n = 4;
                }
                break;
            }
            default:
                return -1;
            }
        }
        if (o + n >= outlen) return -1;
        memcpy(out + o, enc, n);
        o += n;
    }
    out[o] = '\0';
    return (int)o;
}

void jsonSpan(const jsonDoc *d, int i, const char **p, size_t *len) {
    if (i < 0 || i >= d->ntok) {        /* (no such value: an empty span) */
        *p = d->js;
        *len = 0;
        return;
    }
    int s = d->tok[i].start, e = d->tok[i].end;
    if (d->tok[i].type == JSMN_STRING) s--, e++;
    *p = d->js + s;
    *len = (size_t)(e - s);
}

/* ---- UTF-8 ------------------------------------------------------------ */

long jsonUtf8Invalid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* Fast path: eight ASCII bytes, none of them NUL, at a time. */
        while (len - i >= 8) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            if ((v & 0x8080808080808080ULL) ||
                ((v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL))
                break;
            i += 8;
        }
        if (i >= len) break;
        unsigned c = p[i];
        if (c >= 0x01 && c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07, min = 0x10000;
        else return (long)i;                    /* NUL, continuation, C0/C1, F5+ */
        if (len - i <= n) return (long)i;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return (long)i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += n + 1;
    }
    return -1;
}
