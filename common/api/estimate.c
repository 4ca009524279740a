/* estimate.c — input token estimate of a Messages API request (see
 * estimate.h).
 *
 * One walk over the request's JSON tokens, in the API's order (tools,
 * system, messages), adding what the model reads to a tally. Blocks are
 * read key by key in one pass whatever the key order: a block's "type"
 * may come after its "source", so the source is noted and measured when
 * the block ends. At the end of each block carrying cache_control the
 * tally is copied (the prefix estimate) and the prefix hash brought up to
 * that byte; hashing never goes back, so it is linear too.
 *
 * Base64 is decoded only where a number hides in it: the first bytes of an
 * image (its pixel size) and the body of a PDF (its page objects), both
 * through a fixed stack buffer. Nothing is allocated; recursion is bounded
 * by ESTIMATE_MAX_NEST block levels.
 *
 * Not done here: exact tokenization (count_tokens does it), text inside
 * compressed PDF streams, image formats other than PNG, JPEG, GIF, WebP. */
#include "estimate.h"

#include <stdint.h>
#include <string.h>

/* ---- Tally ------------------------------------------------------------- */

/* What has been counted so far; copied whole at each cache_control. */
typedef struct tally {
    long long ascii, cjk, other;
    long long images, image_tokens, images_unknown;
    long long documents, doc_pages, docs_unknown;
    long long messages;
} tally;

static long long tallyTokens(const tally *t, int tools) {
    return (t->ascii + ESTIMATE_ASCII_PER_TOKEN - 1) / ESTIMATE_ASCII_PER_TOKEN +
           t->cjk + (t->other + ESTIMATE_OTHER_PER_TOKEN - 1) / ESTIMATE_OTHER_PER_TOKEN +
           t->image_tokens + t->images_unknown * ESTIMATE_IMAGE_MAX +
           t->doc_pages * ESTIMATE_PAGE + t->docs_unknown * ESTIMATE_DOC_UNKNOWN +
           t->messages * ESTIMATE_MESSAGE_OVERHEAD +
           (tools ? ESTIMATE_TOOLS_OVERHEAD : 0);
}

/* The upper bound (estimate.h): -1 when a document could not be measured. */
static long long tallyBound(const tally *t, int tools) {
    if (t->docs_unknown > 0) return -1;
    return t->ascii + 4 * t->cjk + 4 * t->other +
           t->images * ESTIMATE_IMAGE_MAX + t->doc_pages * ESTIMATE_PAGE_BOUND +
           t->messages * ESTIMATE_MESSAGE_BOUND + (tools ? ESTIMATE_TOOLS_BOUND : 0);
}

/* ---- Text -------------------------------------------------------------- */

/* CJK: Hangul Jamo, CJK radicals and punctuation, kana, Bopomofo, Hangul
 * compatibility jamo, enclosed and compatibility forms, the unified
 * ideographs (and extension A), Hangul syllables, compatibility
 * ideographs, vertical and small forms, halfwidth/fullwidth forms, and the
 * supplementary ideographic planes (extensions B and later). */
static int isCjk(uint32_t cp) {
    if (cp < 0x1100) return 0;
    if (cp <= 0x11FF) return 1;
    if (cp < 0x2E80) return 0;
    if (cp <= 0x9FFF) return cp < 0x2FE0 || cp >= 0x2FF0;
    if (cp >= 0xA960 && cp <= 0xA97F) return 1;
    if (cp >= 0xAC00 && cp <= 0xD7FF) return 1;
    if (cp >= 0xF900 && cp <= 0xFAFF) return 1;
    if (cp >= 0xFE30 && cp <= 0xFE4F) return 1;
    if (cp >= 0xFF00 && cp <= 0xFFEF) return 1;
    return cp >= 0x20000 && cp <= 0x3FFFF;
}

static void countCp(tally *t, uint32_t cp) {
    if (cp < 0x80) t->ascii++;
    else if (isCjk(cp)) t->cjk++;
    else t->other++;
}

static int hexVal(unsigned c) {
    if (c - '0' < 10) return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6) return (int)(c - 'a' + 10);
    return -1;
}

/* The 4 hex digits at s (which has at least 4 bytes) as a number, or -1. */
static long hex4(const unsigned char *s) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexVal(s[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Count the characters of raw JSON string contents s[0..n), escapes
 * decoded. Malformed input (which a strict parse does not let through)
 * is counted byte by byte, never read past n. */
static void countText(tally *t, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* Plain ASCII, 8 bytes at a time: no high bit and no backslash. */
        while (i + 8 <= n) {
            uint64_t x, y;
            memcpy(&x, s + i, 8);
            y = x ^ (ONES * '\\');
            if ((x | ((y - ONES) & ~y)) & HIGHS) break;
            t->ascii += 8;
            i += 8;
        }
        if (i >= n) break;
        unsigned c = s[i];
        if (c < 0x80) {
            if (c != '\\' || i + 1 >= n) {
                t->ascii++;
                i++;
                continue;
            }
            long cp;
            if (s[i + 1] != 'u' || i + 6 > n || (cp = hex4(s + i + 2)) < 0) {
                t->ascii++;             /* \n, \", \\, \/ ...: one character */
                i += 2;
                continue;
            }
            i += 6;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= n && s[i] == '\\' &&
                s[i + 1] == 'u') {
                long lo = hex4(s + i + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            countCp(t, (uint32_t)cp);
            continue;
        }
        /* A UTF-8 sequence (validated by the caller; if not, a stray byte
         * is one other character). */
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (len == 1 || i + len > n) {
            t->other++;
            i++;
            continue;
        }
        uint32_t cp = c & (0x7F >> len);
        for (size_t k = 1; k < len; k++) cp = cp << 6 | (s[i + k] & 0x3F);
        countCp(t, cp);
        i += len;
    }
}

/* ---- Base64 ----------------------------------------------------------- */

#define B64_CHUNK 3072                  /* decoded bytes per refill */

/* A base64 JSON string read as a byte stream. JSON may escape '/' as "\/"
 * and break lines with "\n" / "\r\n"; both are read through. Decoding stops
 * at padding, at the end, or at the first byte that is not base64. */
typedef struct b64 {
    const unsigned char *p, *end;       /* text still to decode */
    uint32_t acc;                       /* bits of a partial quad */
    int nq;                             /* sextets in acc */
    int done;                           /* no more bytes will come */
    size_t len, pos;                    /* bytes in buf, next one to hand out */
    long long off;                      /* offset in the decoded data of buf[pos] */
    unsigned char buf[B64_CHUNK];
} b64;

enum { B64_BAD = -1, B64_SPACE = -2 };

/* Sextet of each byte; B64_SPACE for whitespace, B64_BAD for the rest. */
static const signed char b64Val[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -2, -2, -1, -1, -2, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static void b64Init(b64 *r, const char *s, size_t n) {
    r->p = (const unsigned char *)s;
    r->end = r->p + n;
    r->acc = 0;
    r->nq = 0;
    r->done = 0;
    r->len = r->pos = 0;
    r->off = 0;
}

/* The value of the next base64 character of the text, with JSON escapes
 * read through: 0..63, B64_SPACE, or B64_BAD (also at the end). Advances. */
static int b64Next(b64 *r) {
    unsigned c = *r->p;
    if (c != '\\') {
        r->p++;
        return b64Val[c];
    }
    if (r->end - r->p < 2) return B64_BAD;
    unsigned e = r->p[1];
    if (e == 'u') {
        long cp = r->end - r->p >= 6 ? hex4(r->p + 2) : -1;
        if (cp < 0 || cp >= 0x80) return B64_BAD;
        r->p += 6;
        return b64Val[cp];
    }
    r->p += 2;
    switch (e) {
    case '/': return 63;
    case 'n': case 'r': case 't': return B64_SPACE;
    default: return B64_BAD;
    }
}

/* Decode up to want (<= B64_CHUNK) more bytes into buf, dropping those
 * already handed out. Returns the bytes now available. */
static size_t b64Fill(b64 *r, size_t want) {
    r->off += (long long)r->pos;
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
    if (want > B64_CHUNK) want = B64_CHUNK;
    while (!r->done && r->len + 3 <= want) {
        /* Fast path: whole quads of plain base64. */
        while (r->nq == 0 && r->end - r->p >= 4 && r->len + 3 <= want) {
            int a = b64Val[r->p[0]], b = b64Val[r->p[1]], c = b64Val[r->p[2]],
                d = b64Val[r->p[3]];
            if ((a | b | c | d) < 0) break;
            uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
            r->buf[r->len++] = (unsigned char)(v >> 16);
            r->buf[r->len++] = (unsigned char)(v >> 8);
            r->buf[r->len++] = (unsigned char)v;
            r->p += 4;
        }
        if (r->len + 3 > want) break;
        int v = r->p < r->end ? b64Next(r) : B64_BAD;
        if (v == B64_SPACE) continue;
        if (v < 0) {                    /* end, padding or garbage: flush */
            if (r->nq >= 2) r->buf[r->len++] = (unsigned char)(r->acc >> (r->nq * 6 - 8));
            if (r->nq == 3) r->buf[r->len++] = (unsigned char)(r->acc >> 2);
            r->done = 1;
            break;
        }
        r->acc = r->acc << 6 | (uint32_t)v;
        if (++r->nq == 4) {
            r->buf[r->len++] = (unsigned char)(r->acc >> 16);
            r->buf[r->len++] = (unsigned char)(r->acc >> 8);
            r->buf[r->len++] = (unsigned char)r->acc;
            r->acc = 0;
            r->nq = 0;
        }
    }
    return r->len;
}

/* The next decoded byte, or -1 at the end. */
static int b64Byte(b64 *r) {
    if (r->pos == r->len && b64Fill(r, 512) == 0) return -1;
    return r->buf[r->pos++];
}

/* Skip n decoded bytes. When the skip starts on a quad boundary and the
 * text ahead is plain base64 (no escape, no space), whole quads are
 * stepped over without decoding. Returns 0, or -1 when the data ends. */
static int b64Skip(b64 *r, long long n) {
    long long have = (long long)(r->len - r->pos);
    if (n <= have) {
        r->pos += (size_t)n;
        return 0;
    }
    n -= have;
    r->pos = r->len;
    if (r->nq == 0 && !r->done && n >= 3) {
        long long quads = n / 3;
        if (quads <= (r->end - r->p) / 4) {
            size_t chars = (size_t)quads * 4;
            if (!memchr(r->p, '\\', chars) && !memchr(r->p, ' ', chars)) {
                r->p += chars;
                r->off += quads * 3;
                n -= quads * 3;
            }
        }
    }
    while (n > 0) {
        if (b64Fill(r, B64_CHUNK) == 0) return -1;
        long long take = (long long)r->len < n ? (long long)r->len : n;
        r->pos = (size_t)take;
        n -= take;
    }
    return 0;
}

/* ---- Images -------------------------------------------------------------- */

static uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const unsigned char *p) { return be16(p) << 16 | be16(p + 2); }
static uint32_t le16(const unsigned char *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t le24(const unsigned char *p) { return le16(p) | (uint32_t)p[2] << 16; }

/* JPEG: walk the segments from just after SOI to the first SOFn. */
static int jpegSize(b64 *r, uint32_t *w, uint32_t *h) {
    for (;;) {
        if (r->off + (long long)r->pos > ESTIMATE_JPEG_SCAN) return -1;
        int c = b64Byte(r);
        if (c != 0xFF) return -1;
        while (c == 0xFF && r->off + (long long)r->pos <= ESTIMATE_JPEG_SCAN)
            c = b64Byte(r);             /* fill bytes */
        if (c < 0) return -1;
        if (c == 0x01 || (c >= 0xD0 && c <= 0xD8)) continue;   /* no length */
        if (c == 0xD9 || c == 0xDA) return -1;  /* image ends, scan starts */
        int hi = b64Byte(r), lo = b64Byte(r);
        if (hi < 0 || lo < 0) return -1;
        long long seg = (long long)(hi << 8 | lo) - 2;
        if (seg < 0) return -1;
        if (c >= 0xC0 && c <= 0xCF && c != 0xC4 && c != 0xC8 && c != 0xCC) {
            unsigned char f[5];
            for (int k = 0; k < 5; k++) {
                int b = b64Byte(r);
                if (b < 0) return -1;
                f[k] = (unsigned char)b;
            }
            *h = be16(f + 1);
            *w = be16(f + 3);
            return 0;
        }
        if (b64Skip(r, seg) < 0) return -1;
    }
}

/* Pixel size of the base64 image data[0..n), from its header only.
 * Returns 0, or -1 when the format is unknown or the data too short. */
static int imageSize(const char *data, size_t n, uint32_t *w, uint32_t *h) {
    b64 r;
    b64Init(&r, data, n);
    size_t got = b64Fill(&r, 36);
    const unsigned char *b = r.buf;
    if (got >= 24 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 &&
        memcmp(b + 12, "IHDR", 4) == 0) {
        *w = be32(b + 16);
        *h = be32(b + 20);
        return 0;
    }
    if (got >= 10 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) {
        *w = le16(b + 6);
        *h = le16(b + 8);
        return 0;
    }
    if (got >= 30 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) {
        if (memcmp(b + 12, "VP8X", 4) == 0) {
            *w = le24(b + 24) + 1;
            *h = le24(b + 27) + 1;
            return 0;
        }
        if (memcmp(b + 12, "VP8L", 4) == 0 && b[20] == 0x2F) {
            uint32_t bits = le16(b + 21) | (uint32_t)le16(b + 23) << 16;
            *w = (bits & 0x3FFF) + 1;
            *h = (bits >> 14 & 0x3FFF) + 1;
            return 0;
        }
        if (memcmp(b + 12, "VP8 ", 4) == 0 && memcmp(b + 23, "\x9d\x01\x2a", 3) == 0) {
            *w = le16(b + 26) & 0x3FFF;
            *h = le16(b + 28) & 0x3FFF;
            return 0;
        }
        return -1;
    }
    if (got >= 2 && b[0] == 0xFF && b[1] == 0xD8) {
        r.pos = 2;
        return jpegSize(&r, w, h);
    }
    return -1;
}

/* Tokens of a w x h image after the API's resize. */
static long long imageTokens(uint32_t w, uint32_t h) {
    double pixels = (double)w * (double)h;
    uint32_t edge = w > h ? w : h;
    if (edge > ESTIMATE_IMAGE_MAX_EDGE) {
        double s = (double)ESTIMATE_IMAGE_MAX_EDGE / edge;
        pixels *= s * s;
    }
    if (pixels > ESTIMATE_IMAGE_MAX_PIXELS) pixels = ESTIMATE_IMAGE_MAX_PIXELS;
    long long px = (long long)pixels;
    return (px + ESTIMATE_IMAGE_PIXELS_PER_TOKEN - 1) / ESTIMATE_IMAGE_PIXELS_PER_TOKEN;
}

/* ---- PDF ------------------------------------------------------------------ */

/* A byte that ends a PDF name: whitespace or a delimiter. */
static int pdfNameEnd(int c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0 ||
           c == '/' || c == '<' || c == '>' || c == '[' || c == ']' || c == '(' ||
           c == ')' || c == '{' || c == '}' || c == '%';
}

static int pdfSpace(int c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0;
}

/* Page objects in the base64 PDF data[0..n): occurrences of "/Type",
 * optional whitespace, "/Page" ending the name (so not "/Pages"). A match
 * may straddle chunks: the matcher is a state machine over the bytes. */
static long long pdfPages(const char *data, size_t n) {
    enum { IDLE, TYPE, GAP, PAGE, END } st = IDLE;
    static const char type[] = "/Type", page[] = "/Page";
    int m = 0;
    long long pages = 0;
    b64 r;
    b64Init(&r, data, n);
    while (r.off < ESTIMATE_PDF_SCAN) {
        r.pos = r.len;                  /* the whole chunk was scanned */
        size_t len = b64Fill(&r, B64_CHUNK);
        if (len == 0) break;
        const unsigned char *b = r.buf;
        for (size_t i = 0; i < len; i++) {
            int c = b[i];
            switch (st) {
            case IDLE:
                if (c != '/') {
                    const unsigned char *q = memchr(b + i, '/', len - i);
                    if (!q) {
                        i = len;
                        continue;
                    }
                    i = (size_t)(q - b);
                }
                st = TYPE;
                m = 1;
                continue;
            case TYPE:
                if (c == type[m]) {
                    if (++m == 5) st = GAP;
                    continue;
                }
                break;
            case GAP:
                if (pdfSpace(c)) continue;
                if (c == '/') {
                    st = PAGE;
                    m = 1;
                    continue;
                }
                break;
            case PAGE:
                if (c == page[m]) {
                    if (++m == 5) st = END;
                    continue;
                }
                break;
            case END:
                if (pdfNameEnd(c)) pages++;
                break;
            }
            st = IDLE;                  /* no match: this byte may start one */
            if (c == '/') {
                st = TYPE;
                m = 1;
            }
        }
    }
    if (st == END) pages++;             /* "/Type /Page" at the very end */
    return pages;
}

/* ---- Walk ----------------------------------------------------------------- */

/* The sections in the API's order: the order of the cacheable prefix. */
enum { SEC_TOOLS, SEC_SYSTEM, SEC_MESSAGES, SEC_N };

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

/* Sections are walked in the order the request's keys come, each into its
 * own tally, so the prefix (in API order) is the tallies of the sections
 * before the cut plus the cut section's tally at the cut. */
typedef struct walk {
    const jsonDoc *d;
    tally t;                            /* the section being walked */
    int sec;                            /* which one */
    tally full[SEC_N];                  /* each section, once walked */
    int sec_tok[SEC_N];                 /* its value token, -1 when absent */
    int cut_sec;                        /* section of the last cut, -1: none */
    size_t cut_end;                     /* byte just after the cut block */
    tally cut;                          /* w->t at that cut */
    int cache_1h;
} walk;

/* The block of the current section ending at byte end carries
 * cache_control. Within a section blocks come in order, so the latest cut
 * of the latest section (in API order) is the last one. */
static void walkCut(walk *w, size_t end) {
    if (w->sec < w->cut_sec) return;
    w->cut_sec = w->sec;
    w->cut_end = end;
    w->cut = w->t;
}

static void tallyAdd(tally *a, const tally *b) {
    a->ascii += b->ascii;
    a->cjk += b->cjk;
    a->other += b->other;
    a->images += b->images;
    a->image_tokens += b->image_tokens;
    a->images_unknown += b->images_unknown;
    a->documents += b->documents;
    a->doc_pages += b->doc_pages;
    a->docs_unknown += b->docs_unknown;
    a->messages += b->messages;
}

static unsigned long long fnv(unsigned long long h, const char *p, size_t n) {
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

/* FNV-1a 64 of the prefix: a tag byte and the verbatim bytes of each
 * section up to the cut. Never 0 (0 means "no prefix"). */
static unsigned long long prefixHash(const walk *w) {
    static const char tags[SEC_N] = {'t', 's', 'm'};
    unsigned long long h = FNV_OFFSET;
    for (int s = 0; s <= w->cut_sec; s++) {
        if (w->sec_tok[s] < 0) continue;
        const char *p;
        size_t len;
        jsonSpan(w->d, w->sec_tok[s], &p, &len);
        if (s == w->cut_sec) len = w->cut_end - (size_t)(p - w->d->js);
        h = fnv(h, &tags[s], 1);
        h = fnv(h, p, len);
    }
    return h ? h : 1;
}

/* Key token k equals the literal lit. */
#define KEY(k, lit) (jsonRawLen(d, k) == (int)sizeof(lit) - 1 && \
                     memcmp(jsonRaw(d, k), lit, sizeof(lit) - 1) == 0)

/* 1 when the value at v is a cache_control object; notes a 1h ttl. */
static int cacheControl(walk *w, int v) {
    const jsonDoc *d = w->d;
    if (d->tok[v].type != JSMN_OBJECT) return 0;
    if (jsonStrEq(d, jsonGet(d, v, "ttl"), "1h")) w->cache_1h = 1;
    return 1;
}

static void countString(walk *w, int i) {
    countText(&w->t, jsonRaw(w->d, i), (size_t)jsonRawLen(w->d, i));
}

/* Count the value at token i as JSON text (tool definitions, tool_use
 * input): strings with their quotes, primitives, and the punctuation of
 * containers (roughly: braces, colons, commas). Returns the next token. */
static int countJson(walk *w, int i) {
    const jsonDoc *d = w->d;
    int end = d->tok[i].end, j = i;
    for (; j < d->ntok && d->tok[j].start < end; j++) {
        const jsmntok_t *t = &d->tok[j];
        switch (t->type) {
        case JSMN_STRING:
            countString(w, j);
            w->t.ascii += 2;
            break;
        case JSMN_OBJECT: w->t.ascii += 1 + 2 * (long long)t->size + (t->size == 0); break;
        case JSMN_ARRAY: w->t.ascii += 1 + (long long)t->size + (t->size == 0); break;
        default: w->t.ascii += t->end - t->start; break;
        }
    }
    return j;
}

/* Next token after the value at i (a string or primitive has no children). */
static int next(const jsonDoc *d, int i) {
    int ty = d->tok[i].type;
    return ty == JSMN_STRING || ty == JSMN_PRIMITIVE ? i + 1 : jsonSkip(d, i);
}

static int walkContent(walk *w, int i, int depth);

/* What a block's "source" turned out to be. */
typedef struct source {
    enum { SRC_NONE, SRC_BASE64, SRC_TEXT, SRC_CONTENT, SRC_OTHER } kind;
    int data;                           /* the data string token, -1 if none */
} source;

/* Read a source object: its type and data; content blocks are walked. */
static int walkSource(walk *w, int i, int depth, source *src) {
    const jsonDoc *d = w->d;
    int n = d->tok[i].size, k = i + 1, type = -1;
    src->kind = SRC_OTHER;
    src->data = -1;
    for (int m = 0; m < n && k + 1 < d->ntok; m++) {
        int v = k + 1;
        if (KEY(k, "type")) {
            type = v;
        } else if (KEY(k, "data") && d->tok[v].type == JSMN_STRING) {
            src->data = v;
        } else if (KEY(k, "content")) {
            k = walkContent(w, v, depth + 1);
            if (src->kind == SRC_OTHER) src->kind = SRC_CONTENT;
            continue;
        }
        k = next(d, v);
    }
    if (jsonStrEq(d, type, "base64")) src->kind = SRC_BASE64;
    else if (jsonStrEq(d, type, "text")) src->kind = SRC_TEXT;
    else if (jsonStrEq(d, type, "content")) src->kind = SRC_CONTENT;
    else if (type >= 0) src->kind = SRC_OTHER;  /* url, file */
    return k;
}

/* One content block (system, message, tool_result, document content).
 * Returns the next token. */
static int walkBlock(walk *w, int i, int depth) {
    const jsonDoc *d = w->d;
    if (d->tok[i].type != JSMN_OBJECT) {
        if (d->tok[i].type == JSMN_STRING) {
            countString(w, i);
            return i + 1;
        }
        return jsonSkip(d, i);
    }
    if (depth > ESTIMATE_MAX_NEST) return countJson(w, i);
    int n = d->tok[i].size, k = i + 1, type = -1, cc = 0;
    source src = {SRC_NONE, -1};
    for (int m = 0; m < n && k + 1 < d->ntok; m++) {
        int v = k + 1, ty = d->tok[v].type;
        if (KEY(k, "type")) {
            type = v;
        } else if (KEY(k, "cache_control")) {
            cc = cacheControl(w, v);
        } else if (ty == JSMN_STRING &&
                   (KEY(k, "text") || KEY(k, "thinking") || KEY(k, "title") ||
                    KEY(k, "context") || KEY(k, "name"))) {
            countString(w, v);
        } else if (KEY(k, "input")) {
            k = countJson(w, v);
            continue;
        } else if (KEY(k, "content")) {
            k = walkContent(w, v, depth + 1);
            continue;
        } else if (KEY(k, "source")) {
            if (ty == JSMN_OBJECT) {
                k = walkSource(w, v, depth, &src);
                continue;
            }
            if (ty == JSMN_STRING) countString(w, v);  /* search_result */
        }
        k = next(d, v);
    }

    const char *data = src.data >= 0 ? jsonRaw(d, src.data) : NULL;
    size_t dlen = src.data >= 0 ? (size_t)jsonRawLen(d, src.data) : 0;
    if (jsonStrEq(d, type, "image")) {
        uint32_t wd, ht;
        w->t.images++;
        if (src.kind == SRC_BASE64 && data && imageSize(data, dlen, &wd, &ht) == 0 &&
            wd > 0 && ht > 0)
            w->t.image_tokens += imageTokens(wd, ht);
        else
            w->t.images_unknown++;
    } else if (jsonStrEq(d, type, "document")) {
        w->t.documents++;
        if (src.kind == SRC_TEXT && data) {
            countText(&w->t, data, dlen);
        } else if (src.kind == SRC_CONTENT) {
            /* its blocks were counted */
        } else {
            long long pages = src.kind == SRC_BASE64 && data ? pdfPages(data, dlen) : 0;
            if (pages > 0) w->t.doc_pages += pages;
            else w->t.docs_unknown++;
        }
    }
    if (cc) walkCut(w, (size_t)d->tok[i].end);
    return k;
}

/* Content: a string, or an array of blocks. Returns the next token. */
static int walkContent(walk *w, int i, int depth) {
    const jsonDoc *d = w->d;
    if (d->tok[i].type == JSMN_STRING) {
        countString(w, i);
        return i + 1;
    }
    if (d->tok[i].type != JSMN_ARRAY) return next(d, i);
    int n = d->tok[i].size, k = i + 1;
    for (int m = 0; m < n && k < d->ntok; m++) k = walkBlock(w, k, depth);
    return k;
}

/* A tool definition, read as JSON text except its cache_control. */
static int walkTool(walk *w, int i) {
    const jsonDoc *d = w->d;
    if (d->tok[i].type != JSMN_OBJECT) return countJson(w, i);
    int n = d->tok[i].size, k = i + 1, cc = 0;
    w->t.ascii += 1 + (n == 0);         /* braces, less the last comma */
    for (int m = 0; m < n && k + 1 < d->ntok; m++) {
        int v = k + 1;
        if (KEY(k, "cache_control")) {
            cc = cacheControl(w, v);
            k = next(d, v);
            continue;
        }
        k = countJson(w, k);            /* the key, quoted */
        w->t.ascii += 2;                /* colon, comma */
        k = countJson(w, v);
    }
    if (cc) walkCut(w, (size_t)d->tok[i].end);
    return k;
}

static int walkTools(walk *w, int i) {
    const jsonDoc *d = w->d;
    if (d->tok[i].type != JSMN_ARRAY) return countJson(w, i);
    int n = d->tok[i].size, k = i + 1;
    for (int m = 0; m < n && k < d->ntok; m++) k = walkTool(w, k);
    return k;
}

static int walkMessages(walk *w, int i) {
    const jsonDoc *d = w->d;
    if (d->tok[i].type != JSMN_ARRAY) return next(d, i);
    int n = d->tok[i].size, k = i + 1;
    for (int m = 0; m < n && k < d->ntok; m++) {
        w->t.messages++;
        if (d->tok[k].type != JSMN_OBJECT) {
            k = next(d, k);
            continue;
        }
        int keys = d->tok[k].size, kk = k + 1;
        for (int q = 0; q < keys && kk + 1 < d->ntok; q++) {
            int v = kk + 1;
            kk = KEY(kk, "content") ? walkContent(w, v, 0) : next(d, v);
        }
        k = kk;
    }
    return k;
}

void estimateRequest(const jsonDoc *d, int req, inputEstimate *out) {
    memset(out, 0, sizeof(*out));
    if (!d || req < 0 || req >= d->ntok || d->tok[req].type != JSMN_OBJECT) return;

    walk w;
    memset(&w, 0, sizeof(w));
    w.d = d;
    w.cut_sec = -1;
    for (int s = 0; s < SEC_N; s++) w.sec_tok[s] = -1;

    /* One pass over the request's keys, walking each section where it
     * stands (the first of a repeated key) and skipping everything else. */
    int n = d->tok[req].size, k = req + 1;
    for (int m = 0; m < n && k + 1 < d->ntok; m++) {
        int v = k + 1, s = -1;
        if (KEY(k, "tools")) s = SEC_TOOLS;
        else if (KEY(k, "system")) s = SEC_SYSTEM;
        else if (KEY(k, "messages")) s = SEC_MESSAGES;
        if (s < 0 || w.sec_tok[s] >= 0) {
            k = next(d, v);
            continue;
        }
        w.sec_tok[s] = v;
        w.sec = s;
        memset(&w.t, 0, sizeof(w.t));
        if (s == SEC_TOOLS) k = walkTools(&w, v);
        else if (s == SEC_SYSTEM) k = walkContent(&w, v, 0);
        else k = walkMessages(&w, v);
        w.full[s] = w.t;
    }

    int tools = w.sec_tok[SEC_TOOLS];
    out->has_tools = tools >= 0 && d->tok[tools].type == JSMN_ARRAY && d->tok[tools].size > 0;
    tally all = {0};
    for (int s = 0; s < SEC_N; s++) tallyAdd(&all, &w.full[s]);
    out->text_ascii = all.ascii;
    out->text_cjk = all.cjk;
    out->text_other = all.other;
    out->images = (int)all.images;
    out->image_tokens = all.image_tokens;
    out->images_unknown = (int)all.images_unknown;
    out->documents = (int)all.documents;
    out->doc_pages = all.doc_pages;
    out->docs_unknown = (int)all.docs_unknown;
    out->tokens = tallyTokens(&all, out->has_tools);
    out->bound = tallyBound(&all, out->has_tools);
    out->cache_1h = w.cache_1h;
    if (w.cut_sec >= 0) {
        tally pre = w.cut;              /* tools come first: any prefix has them */
        for (int s = 0; s < w.cut_sec; s++) tallyAdd(&pre, &w.full[s]);
        out->prefix_hash = prefixHash(&w);
        out->prefix_tokens = tallyTokens(&pre, out->has_tools);
    }
}
