/* tokens.c — how many input tokens a request counts, and where its cache
 * breakpoints are.
 *
 * Two tokenizers (--tokenizer):
 *   chars      (default) the characters of every string value under tools,
 *              system and messages, raw as sent, over 4, rounded up. Image
 *              and document data count as text, byte for byte.
 *   code       realistic, but every ASCII punctuation character or symbol
 *              is a token of its own (as BPE tokenizers split code): an
 *              API that counts code far above 4 characters a token.
 *   realistic  text as the real API counts it: ASCII ~4 characters a token,
 *              CJK characters (raw UTF-8 or \uXXXX escapes) 1 token each,
 *              other non-ASCII 1 token per 2 characters. Only text the
 *              model reads counts: the values of type, role, id,
 *              tool_use_id, media_type and cache_control do not. An image
 *              block counts by its pixels, read from the PNG, JPEG, GIF or
 *              WebP header in its base64 data (fakeTokImage); a url or file
 *              image, or one whose header cannot be read, counts as the
 *              largest image. A base64 document counts TOK_PAGE tokens a
 *              page, pages found as "/Type /Page" objects in the PDF, else
 *              one page per TOK_PAGE_BYTES of data; a url or file document
 *              one page; a text or content document counts its text.
 *
 * Counting is done in quarter tokens ("units": an ASCII character is 1, a
 * CJK character 4, another character 2) plus whole tokens for images and
 * documents; a count is ceil(units / 4) + whole, at least 1.
 *
 * With --caching the same walk finds the blocks carrying cache_control
 * ({"type":"ephemeral"}, optionally "ttl":"1h") and, at the end of each,
 * records the tokens so far and a hash of the prefix: the model, then the
 * tools, system and messages in that order (the API's prefix order,
 * whatever the key order in the body), token by token, leaving out the
 * cache_control values themselves so moving a breakpoint keeps the prefix
 * before it. The hash sees the JSON tokens, not the bytes between them:
 * whitespace does not change it. Deciding hits and writes is messages.c's
 * job; this file does not touch the cache. */
#include "fakeapi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define TOK_PAGE        3000            /* tokens per document page */
#define TOK_PAGE_BYTES  (100 * 1024)    /* bytes a page when none found */
#define TOK_MAX_EDGE    1568.0          /* longest image edge kept */
#define TOK_MAX_PIXELS  1150000.0       /* pixels kept (~1.15 megapixels) */
#define TOK_JPEG_SEGS   1000            /* JPEG segments walked at most */
#define TOK_PENDING     16              /* open cache_control blocks */

/* ---- Text ---------------------------------------------------------------- */

/* 1 when code point cp is a CJK character: ideographs, kana, hangul,
 * CJK punctuation and fullwidth forms. */
static int tokIsCjk(unsigned cp) {
    return (cp >= 0x2E80 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7AF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFF00 && cp <= 0xFFEF) ||
           (cp >= 0x20000 && cp <= 0x3FFFF);
}

/* 1 when ASCII c is punctuation or a symbol (not a letter, digit, space
 * or control character). */
static int tokIsSymbol(unsigned char c) {
    return c > 0x20 && c < 0x7F && !(c >= '0' && c <= '9') &&
           !((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

static int tokCpUnits(unsigned cp) {
    if (cp < 0x80) return 1;
    return tokIsCjk(cp) ? 4 : 2;
}

/* Value of 4 hex digits at p, or -1. */
static long tokHex4(const char *p) {
    long v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

/* Units of a raw JSON string body s[0..n) (escapes not yet decoded). A
 * surrogate pair of escapes is one character. */
static long long tokTextUnits(const char *s, size_t n, int code) {
    long long u = 0;
    size_t i = 0;

    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' && i + 1 < n) {
            long cp;
            if (s[i + 1] != 'u' || i + 6 > n || (cp = tokHex4(s + i + 2)) < 0) {
                u += 1;                 /* \n, \", \\ ...: one character */
                i += 2;
                continue;
            }
            i += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= n && s[i] == '\\' &&
                s[i + 1] == 'u' && tokHex4(s + i + 2) >= 0xDC00) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (tokHex4(s + i + 2) - 0xDC00);
                i += 6;
            }
            u += tokCpUnits((unsigned)cp);
            continue;
        }
        if (c < 0x80) {
            /* --tokenizer code: a symbol is a token of its own. */
            u += code && tokIsSymbol(c) ? 4 : 1;
            i++;
            continue;
        }
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        unsigned cp = len == 4 ? c & 0x07u : len == 3 ? c & 0x0Fu : c & 0x1Fu;
        if (i + len > n) len = n - i;
        for (size_t k = 1; k < len; k++) cp = cp << 6 | ((unsigned char)s[i + k] & 0x3Fu);
        u += len == 1 ? 2 : tokCpUnits(cp);
        i += len;
    }
    return u;
}

/* ---- Base64 -------------------------------------------------------------- */

/* Base64 data, its escapes (if any) removed. */
typedef struct tokB64 {
    const char *s;              /* the characters */
    size_t n;                   /* how many */
    char *owned;                /* s when it had to be unescaped, else NULL */
} tokB64;

static int tokB64Val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    if (c == '=') return 0;
    return -1;
}

/* The data of string token i. Returns 0, or -1 when it is not a string. */
static int tokB64Open(const jsonDoc *d, int i, tokB64 *b) {
    b->owned = NULL;
    if (i < 0 || d->tok[i].type != JSMN_STRING) return -1;
    b->s = jsonRaw(d, i);
    b->n = (size_t)jsonRawLen(d, i);
    if (!memchr(b->s, '\\', b->n)) return 0;
    if (!(b->owned = malloc(b->n + 1))) return -1;
    int n = jsonStr(d, i, b->owned, b->n + 1);
    if (n < 0) {
        free(b->owned);
        b->owned = NULL;
        return -1;
    }
    b->s = b->owned;
    b->n = (size_t)n;
    return 0;
}

/* Bytes the data decodes to. */
static size_t tokB64Size(const tokB64 *b) {
    size_t n = b->n / 4 * 3;
    if (b->n >= 4 && b->s[b->n - 1] == '=') n--;
    if (b->n >= 4 && b->s[b->n - 2] == '=') n--;
    return n;
}

/* Decode len bytes at decoded offset off into out. Returns 0, or -1 when
 * they are past the end or the data is not base64 there. */
static int tokB64At(const tokB64 *b, size_t off, unsigned char *out, size_t len) {
    if (off + len > tokB64Size(b)) return -1;
    for (size_t k = 0; k < len; k++) {
        size_t pos = off + k, g = pos / 3 * 4;
        int v[4];
        for (int j = 0; j < 4; j++)
            if ((v[j] = tokB64Val(b->s[g + j])) < 0) return -1;
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
                     (unsigned)v[2] << 6 | (unsigned)v[3];
        out[k] = (unsigned char)(w >> (16 - 8 * (pos % 3)));
    }
    return 0;
}

/* ---- Images -------------------------------------------------------------- */

long long fakeTokImage(long long w, long long h) {
    double W = (double)w, H = (double)h, s = 1, edge;

    if (w <= 0 || h <= 0) return (long long)ceil(TOK_MAX_PIXELS / 750.0);  /* the largest */
    edge = W > H ? W : H;
    if (edge > TOK_MAX_EDGE) s = TOK_MAX_EDGE / edge;
    if (W * H * s * s > TOK_MAX_PIXELS) s = sqrt(TOK_MAX_PIXELS / (W * H));
    long long pw = (long long)floor(W * s), ph = (long long)floor(H * s);
    if (pw < 1) pw = 1;
    if (ph < 1) ph = 1;
    return (pw * ph + 749) / 750;
}

static unsigned tokBe16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned tokLe16(const unsigned char *p) { return (unsigned)p[1] << 8 | p[0]; }

/* Dimensions from a JPEG: the first start-of-frame segment. */
static int tokJpegSize(const tokB64 *b, long long *w, long long *h) {
    unsigned char m[9];
    size_t pos = 2;

    for (int seg = 0; seg < TOK_JPEG_SEGS; seg++) {
        if (tokB64At(b, pos, m, 2) != 0 || m[0] != 0xFF) return -1;
        if (m[1] == 0xFF) {             /* fill byte */
            pos++;
            continue;
        }
        if (m[1] == 0x01 || (m[1] >= 0xD0 && m[1] <= 0xD8)) {
            pos += 2;                   /* markers without a length */
            continue;
        }
        if (tokB64At(b, pos, m, 9) != 0) return -1;
        if (m[1] >= 0xC0 && m[1] <= 0xCF && m[1] != 0xC4 && m[1] != 0xC8 && m[1] != 0xCC) {
            *h = tokBe16(m + 5);
            *w = tokBe16(m + 7);
            return 0;
        }
        pos += 2 + tokBe16(m + 2);
    }
    return -1;
}

/* Width and height from the header of the image in b. Returns 0 or -1. */
static int tokImageSize(const tokB64 *b, long long *w, long long *h) {
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    unsigned char p[30];

    if (tokB64At(b, 0, p, 2) != 0) return -1;
    if (p[0] == 0xFF && p[1] == 0xD8) return tokJpegSize(b, w, h);
    if (tokB64At(b, 0, p, 10) != 0) return -1;
    if (memcmp(p, "GIF8", 4) == 0) {
        *w = tokLe16(p + 6);
        *h = tokLe16(p + 8);
        return 0;
    }
    if (tokB64At(b, 0, p, 24) != 0) return -1;
    if (memcmp(p, png, 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0) {
        *w = (long long)tokBe16(p + 16) << 16 | tokBe16(p + 18);
        *h = (long long)tokBe16(p + 20) << 16 | tokBe16(p + 22);
        return 0;
    }
    if (memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WEBP", 4) != 0 ||
        tokB64At(b, 0, p, 30) != 0)
        return -1;
    if (memcmp(p + 12, "VP8X", 4) == 0) {
        *w = 1 + (p[24] | p[25] << 8 | (long long)p[26] << 16);
        *h = 1 + (p[27] | p[28] << 8 | (long long)p[29] << 16);
    } else if (memcmp(p + 12, "VP8L", 4) == 0) {
        *w = 1 + (((p[22] & 0x3F) << 8) | p[21]);
        *h = 1 + (((p[24] & 0x0F) << 10) | p[23] << 2 | (p[22] & 0xC0) >> 6);
    } else if (memcmp(p + 12, "VP8 ", 4) == 0) {
        *w = tokLe16(p + 26) & 0x3FFF;
        *h = tokLe16(p + 28) & 0x3FFF;
    } else {
        return -1;
    }
    return 0;
}

/* Tokens of the image block at obj. */
static long long tokImageBlock(const jsonDoc *d, int obj) {
    int src = jsonGet(d, obj, "source");
    long long w = 0, h = 0;
    tokB64 b;

    if (src < 0 || !jsonStrEq(d, jsonGet(d, src, "type"), "base64") ||
        tokB64Open(d, jsonGet(d, src, "data"), &b) != 0)
        return fakeTokImage(0, 0);
    if (tokImageSize(&b, &w, &h) != 0) w = h = 0;
    free(b.owned);
    return fakeTokImage(w, h);
}

/* ---- Documents ----------------------------------------------------------- */

/* Pages of the PDF in b: "/Type /Page" objects (not /Pages), else one per
 * TOK_PAGE_BYTES of data; at least 1. */
static long long tokPdfPages(const tokB64 *b) {
    size_t n = tokB64Size(b);
    unsigned char *pdf = n ? malloc(n) : NULL;
    long long pages = 0;

    if (pdf && tokB64At(b, 0, pdf, n) == 0) {
        const unsigned char *p = pdf, *end = pdf + n;
        while ((p = memmem(p, (size_t)(end - p), "/Type", 5)) != NULL) {
            p += 5;
            while (p < end && (*p == ' ' || *p == '\r' || *p == '\n' || *p == '\t')) p++;
            if (end - p >= 5 && memcmp(p, "/Page", 5) == 0 &&
                (end - p == 5 || p[5] != 's'))
                pages++;
        }
    }
    free(pdf);
    if (pages == 0) pages = ((long long)n + TOK_PAGE_BYTES - 1) / TOK_PAGE_BYTES;
    return pages > 0 ? pages : 1;
}

/* Whole tokens of the document block at obj, or -1 when its text is to be
 * counted as text (a text or content source). */
static long long tokDocumentBlock(const jsonDoc *d, int obj) {
    int src = jsonGet(d, obj, "source"), type;
    long long pages = 1;
    tokB64 b;

    if (src < 0) return TOK_PAGE;
    type = jsonGet(d, src, "type");
    if (jsonStrEq(d, type, "text") || jsonStrEq(d, type, "content")) return -1;
    if (jsonStrEq(d, type, "base64") && tokB64Open(d, jsonGet(d, src, "data"), &b) == 0) {
        pages = tokPdfPages(&b);
        free(b.owned);
    } else if (fake.cfg.urlDocTokens > 0) {
        return fake.cfg.urlDocTokens;   /* a url or file: what the fetched file holds */
    }
    return pages * TOK_PAGE;
}

/* ---- The walk ------------------------------------------------------------ */

typedef struct tokWalk {
    const jsonDoc *d;
    int realistic;              /* --tokenizer realistic (1) or code (2) */
    int caching;                /* find breakpoints, keep the hash */
    long long units;            /* quarter tokens of text so far */
    long long whole;            /* whole tokens of images and documents */
    int quietUntil;             /* tokens before this index are not text */
    uint64_t h;                 /* hash of the prefix so far */
    int pendEnd[TOK_PENDING];   /* ends of open cache_control blocks */
    int pendTtl[TOK_PENDING];   /* their ttl: 1 = 1h */
    int npend;
    fakeTokCount *tc;
} tokWalk;

static long long tokSoFar(const tokWalk *w) {
    return (w->units + 3) / 4 + w->whole;
}

static void tokMix(tokWalk *w, uint64_t x) {
    w->h = fakeMix(w->h ^ x);
}

/* Record the breakpoints whose block ends at or before token i. */
static void tokFlush(tokWalk *w, int i) {
    fakeTokCount *tc = w->tc;

    for (int k = 0; k < w->npend;) {
        if (w->pendEnd[k] > i) {
            k++;
            continue;
        }
        if (tc->nbreaks == FAKE_TOK_BREAKS) {
            memmove(tc->breaks, tc->breaks + 1, sizeof(tc->breaks[0]) * (FAKE_TOK_BREAKS - 1));
            tc->nbreaks--;
        }
        fakeTokBreak *bk = &tc->breaks[tc->nbreaks++];
        bk->tokens = tokSoFar(w);
        bk->hash = w->h;
        bk->ttl1h = w->pendTtl[k];
        w->pendEnd[k] = w->pendEnd[--w->npend];
        w->pendTtl[k] = w->pendTtl[w->npend];
    }
}

/* 1 when the key at token i names a value the model does not read. */
static int tokStructural(const jsonDoc *d, int i) {
    static const char *const keys[] = {
        "type", "role", "id", "tool_use_id", "media_type",
    };
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        if (jsonStrEq(d, i, keys[k])) return 1;
    return 0;
}

/* An object at token i: a cache_control block opens a breakpoint; in the
 * realistic count, an image or document block counts whole tokens and
 * silences its text. */
static void tokObject(tokWalk *w, int i) {
    const jsonDoc *d = w->d;
    int end = jsonSkip(d, i), cc, type;

    if (w->caching && (cc = jsonGet(d, i, "cache_control")) >= 0 &&
        jsonStrEq(d, jsonGet(d, cc, "type"), "ephemeral") && w->npend < TOK_PENDING) {
        w->pendEnd[w->npend] = end;
        w->pendTtl[w->npend++] = jsonStrEq(d, jsonGet(d, cc, "ttl"), "1h");
    }
    if (!w->realistic || i < w->quietUntil || (type = jsonGet(d, i, "type")) < 0) return;
    if (jsonStrEq(d, type, "image")) {
        w->whole += tokImageBlock(d, i);
        w->quietUntil = end;
    } else if (jsonStrEq(d, type, "document")) {
        long long t = tokDocumentBlock(d, i);
        if (t >= 0) {
            w->whole += t;
            w->quietUntil = end;
        }
    }
}

/* Walk the value at token i (the field seg of the body). */
static void tokSegment(tokWalk *w, int i, uint64_t seg) {
    const jsonDoc *d = w->d;
    int end = jsonSkip(d, i);

    tokMix(w, seg);
    while (i < end) {
        const jsmntok_t *t = &d->tok[i];
        tokFlush(w, i);
        if (t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) {
            if (t->type == JSMN_OBJECT) tokObject(w, i);
            if (w->caching) tokMix(w, (uint64_t)t->type << 32 | (uint32_t)t->size);
            i++;
            continue;
        }
        if (t->type == JSMN_STRING && t->size == 1) {     /* a key */
            if ((w->caching || w->realistic) && jsonStrEq(d, i, "cache_control")) {
                i = jsonSkip(d, i + 1);
                continue;
            }
            if (w->caching) tokMix(w, fakeHash(jsonRaw(d, i), (size_t)jsonRawLen(d, i)) ^ 0x6b);
            if (w->realistic && tokStructural(d, i)) {
                int v = jsonSkip(d, i + 1);
                if (v > w->quietUntil) w->quietUntil = v;
            }
            i++;
            continue;
        }
        if (w->caching)
            tokMix(w, fakeHash(jsonRaw(d, i), (size_t)jsonRawLen(d, i)) ^ (uint64_t)t->type);
        if (t->type == JSMN_STRING && i >= w->quietUntil)
            w->units += w->realistic ? tokTextUnits(jsonRaw(d, i), (size_t)jsonRawLen(d, i),
                                                    w->realistic == 2)
                                     : jsonRawLen(d, i);
        i++;
    }
    tokFlush(w, end);
}

/* The historical count (chars, no caching), on its own fast path: the
 * characters of every string value under messages, system and tools. */
static long long tokChars(const jsonDoc *d) {
    static const char *const fields[] = {"messages", "system", "tools"};
    long long chars = 0;

    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        int i = jsonGet(d, 0, fields[f]);
        if (i < 0) continue;
        for (int end = jsonSkip(d, i); i < end; i++)
            if (d->tok[i].type == JSMN_STRING && d->tok[i].size == 0)
                chars += jsonRawLen(d, i);
    }
    return chars > 0 ? (chars + 3) / 4 : 1;
}

void fakeTokCountDoc(const jsonDoc *d, const char *model, fakeTokCount *tc) {
    static const char *const fields[] = {"tools", "system", "messages"};
    tokWalk w;

    memset(tc, 0, sizeof(*tc));
    if (!fake.cfg.tokRealistic && !fake.cfg.caching) {
        tc->total = tokChars(d);
        return;
    }
    memset(&w, 0, sizeof(w));
    w.d = d;
    w.realistic = fake.cfg.tokRealistic;
    w.caching = fake.cfg.caching;
    w.tc = tc;
    w.h = fakeHash(model, strlen(model));
    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        int i = jsonGet(d, 0, fields[f]);
        if (i >= 0) tokSegment(&w, i, 0x5e9 + f);
    }
    tc->total = tokSoFar(&w);
    if (tc->total < 1) tc->total = 1;
}
