/* test_estimate.c — unit tests for common/api/estimate.c: text by kind,
 * images read from their headers, PDF pages, the cacheable prefix, and a
 * speed figure. Images and PDFs are built here byte by byte and base64ed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "estimate.h"
#include "job.h"
#include "json.h"
#include "sample_request.h"

/* ---- Helpers ------------------------------------------------------------ */

/* Estimate the request js (the whole document is the request). */
static void est(const char *js, inputEstimate *e) {
    jsonDoc d;
    char err[128];
    if (jsonParse(&d, js, strlen(js), 0, 0, err, sizeof(err)) != 0)
        fail_msg("test request is not JSON (%s): %.200s", err, js);
    memset(e, 0x5a, sizeof(*e));                /* estimateRequest must set all */
    estimateRequest(&d, 0, e);
    jsonFree(&d);
}

/* Request with one user message whose content is the JSON value content. */
static void estContent(const char *content, inputEstimate *e) {
    size_t n = strlen(content) + 200;
    char *js = malloc(n);
    assert_non_null(js);
    snprintf(js, n, "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,"
             "\"messages\":[{\"role\":\"user\",\"content\":%s}]}", content);
    est(js, e);
    free(js);
}

/* Base64 of b[0..n) into a malloc'd string. */
static char *b64(const unsigned char *b, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    assert_non_null(out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) |
                     (i + 2 < n ? b[i + 2] : 0);
        *o++ = a[v >> 18 & 63];
        *o++ = a[v >> 12 & 63];
        *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* Estimate one image block whose base64 data is b64data; returns tokens
 * of the image part (the request has no text, one message). */
static void estImage(const char *data, inputEstimate *e) {
    size_t n = strlen(data) + 200;
    char *c = malloc(n);
    assert_non_null(c);
    snprintf(c, n, "[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
             "\"media_type\":\"image/png\",\"data\":\"%s\"}}]", data);
    estContent(c, e);
    free(c);
}

static void estImageBytes(const unsigned char *b, size_t n, inputEstimate *e) {
    char *s = b64(b, n);
    estImage(s, e);
    free(s);
}

/* Expect an image that was read: images 1, none unknown, tok tokens. */
static void imageIs(const inputEstimate *e, long long tok) {
    assert_int_equal(e->images, 1);
    assert_int_equal(e->images_unknown, 0);
    assert_int_equal(e->image_tokens, tok);
    assert_int_equal(e->tokens, tok + ESTIMATE_MESSAGE_OVERHEAD);
}

static void imageUnknown(const inputEstimate *e) {
    assert_int_equal(e->images, 1);
    assert_int_equal(e->images_unknown, 1);
    assert_int_equal(e->image_tokens, 0);
    assert_int_equal(e->tokens, ESTIMATE_IMAGE_MAX + ESTIMATE_MESSAGE_OVERHEAD);
}

static void put32be(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put16le(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put24le(unsigned char *p, uint32_t v) {
    put16le(p, v);
    p[2] = (unsigned char)(v >> 16);
}

/* A PNG signature and IHDR chunk (CRC not checked), then a few IDAT bytes. */
static size_t makePng(unsigned char *b, uint32_t w, uint32_t h) {
    memcpy(b, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
    put32be(b + 16, w);
    put32be(b + 20, h);
    memcpy(b + 24, "\x08\x02\0\0\0" "\0\0\0\0" "\0\0\0\x04IDATxxxx", 21);
    return 45;
}

/* A baseline JPEG: SOI, APP0 (JFIF), an optional APP1 of app1 bytes,
 * DQT, SOF0 with the size, SOS. Returns its length. */
static size_t makeJpeg(unsigned char *b, uint32_t w, uint32_t h, size_t app1) {
    size_t n = 0;
    memcpy(b, "\xff\xd8\xff\xe0\x00\x10JFIF\0\x01\x01\0\0\x48\0\x48\0\0", 20);
    n = 20;
    if (app1) {
        b[n++] = 0xff;
        b[n++] = 0xe1;
        b[n++] = (unsigned char)((app1 + 2) >> 8);
        b[n++] = (unsigned char)(app1 + 2);
        for (size_t i = 0; i < app1; i++) b[n++] = (unsigned char)(i * 7 + 0xC0);
    }
    memcpy(b + n, "\xff\xdb\x00\x43\x00", 5);
    n += 5;
    for (int i = 0; i < 64; i++) b[n++] = (unsigned char)(i + 1);
    memcpy(b + n, "\xff\xc0\x00\x11\x08", 5);
    n += 5;
    b[n++] = (unsigned char)(h >> 8);
    b[n++] = (unsigned char)h;
    b[n++] = (unsigned char)(w >> 8);
    b[n++] = (unsigned char)w;
    memcpy(b + n, "\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
    n += 10;
    memcpy(b + n, "\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x12\x34\xff\xd9", 14);
    return n + 14;
}

/* ---- Text --------------------------------------------------------------- */

static void test_english_text(void **state) {
    (void)state;
    inputEstimate e;
    /* Only the content counts: not keys, model, role, metadata, stop
     * sequences, temperature. 26 characters: 7 tokens, plus a message. */
    est("{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,"
        "\"metadata\":{\"user_id\":\"user-0123456789\"},"
        "\"stop_sequences\":[\"STOP HERE PLEASE\"],\"temperature\":0.5,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hello world, this is text.\"}]}",
        &e);
    assert_int_equal(e.text_ascii, 26);
    assert_int_equal(e.text_cjk, 0);
    assert_int_equal(e.text_other, 0);
    assert_int_equal(e.tokens, 7 + ESTIMATE_MESSAGE_OVERHEAD);
    assert_int_equal(e.bound, 26 + ESTIMATE_MESSAGE_BOUND);     /* a token a byte at most */
    assert_int_equal(e.images, 0);
    assert_int_equal(e.documents, 0);
    assert_int_equal(e.prefix_hash, 0);
    assert_int_equal(e.prefix_tokens, 0);
    assert_int_equal(e.has_tools, 0);
    assert_int_equal(e.cache_1h, 0);

    /* 4 characters a token: 4000 characters are 1000 tokens. */
    char *big = malloc(4100);
    assert_non_null(big);
    big[0] = '"';
    for (int i = 1; i <= 4000; i++) big[i] = "The quick brown fox "[i % 20];
    strcpy(big + 4001, "\"");
    estContent(big, &e);
    assert_int_equal(e.text_ascii, 4000);
    assert_int_equal(e.tokens, 1000 + ESTIMATE_MESSAGE_OVERHEAD);
    big[4000] = '"';                            /* 3999 characters: rounds up */
    big[4001] = '\0';
    estContent(big, &e);
    assert_int_equal(e.tokens, 1000 + ESTIMATE_MESSAGE_OVERHEAD);
    free(big);

    /* Two messages, two overheads. */
    est("{\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"},"
        "{\"role\":\"assistant\",\"content\":\"efgh\"}]}", &e);
    assert_int_equal(e.text_ascii, 8);
    assert_int_equal(e.tokens, 2 + 2 * ESTIMATE_MESSAGE_OVERHEAD);
}

static void test_cjk(void **state) {
    (void)state;
    inputEstimate e;
    /* Raw UTF-8: Han, Hiragana, Katakana, Hangul, CJK punctuation,
     * fullwidth forms: 4 + 4 + 4 + 3 + 3 + 2 = 20 characters. */
    estContent("\"中文字符ひらがなカタカナ한국어。「」ＡＢ\"", &e);
    assert_int_equal(e.text_cjk, 20);
    assert_int_equal(e.text_ascii, 0);
    assert_int_equal(e.text_other, 0);
    assert_int_equal(e.tokens, 20 + ESTIMATE_MESSAGE_OVERHEAD);

    /* The same kinds \u-escaped (lower and upper case hex), and a CJK
     * extension B ideograph (U+20000) as a surrogate pair. */
    estContent("\"\\u4e2d\\u6587\\u3072\\u30AB\\uD55C\\u3002\\uff21\\ud840\\udc00\"", &e);
    assert_int_equal(e.text_cjk, 8);
    assert_int_equal(e.text_ascii, 0);
    assert_int_equal(e.text_other, 0);
    assert_int_equal(e.tokens, 8 + ESTIMATE_MESSAGE_OVERHEAD);

    /* Other non-ASCII: accents raw and escaped, Cyrillic, an emoji raw
     * (4 bytes) and as a surrogate pair: 6 characters, 3 tokens. */
    estContent("\"é\\u00e9жЖ😀\\ud83d\\ude00\"", &e);
    assert_int_equal(e.text_other, 6);
    assert_int_equal(e.text_cjk, 0);
    assert_int_equal(e.text_ascii, 0);
    assert_int_equal(e.tokens, 3 + ESTIMATE_MESSAGE_OVERHEAD);
}

static void test_mixed_text(void **state) {
    (void)state;
    inputEstimate e;
    /* 5 ASCII (2 tokens), 3 CJK (3), 3 other (2). */
    estContent("\"Hi 中\\u6587 日 éü\\u00f1\"", &e);
    assert_int_equal(e.text_ascii, 5);
    assert_int_equal(e.text_cjk, 3);
    assert_int_equal(e.text_other, 3);
    assert_int_equal(e.tokens, 2 + 3 + 2 + ESTIMATE_MESSAGE_OVERHEAD);
    /* The ASCII fast path (8 bytes at a time) stops at a multibyte
     * character or an escape anywhere in the word. */
    estContent("\"abcdefg中hijklmn\\\"opqrstu\"", &e);
    assert_int_equal(e.text_ascii, 7 + 7 + 1 + 7);
    assert_int_equal(e.text_cjk, 1);
}

static void test_escapes_decoded(void **state) {
    (void)state;
    inputEstimate e;
    /* a \n b \" c \\ d \/ e \t \u0041: 11 characters, not 19 bytes. */
    estContent("\"a\\nb\\\"c\\\\d\\/e\\t\\u0041\"", &e);
    assert_int_equal(e.text_ascii, 11);
    assert_int_equal(e.text_cjk, 0);
    assert_int_equal(e.text_other, 0);
    assert_int_equal(e.tokens, 3 + ESTIMATE_MESSAGE_OVERHEAD);
    /* A lone surrogate escape is one other character. */
    estContent("\"\\ud800x\"", &e);
    assert_int_equal(e.text_other, 1);
    assert_int_equal(e.text_ascii, 1);
}

static void test_system_and_blocks(void **state) {
    (void)state;
    inputEstimate e;
    /* System as an array of text blocks, messages with block arrays and a
     * string: "type" values, roles, ids, signatures are not read. */
    est("{\"model\":\"m\",\"max_tokens\":5,"
        "\"system\":[{\"type\":\"text\",\"text\":\"abcd\"},{\"type\":\"text\",\"text\":\"efgh\"}],"
        "\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"12345678\"}]},"
        "{\"role\":\"assistant\",\"content\":["
        "{\"type\":\"thinking\",\"thinking\":\"hmm.\",\"signature\":\"c2lnbmF0dXJlc2lnbmF0dXJl\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_0123456789abcdef\",\"name\":\"calc\",\"input\":{\"x\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"toolu_0123456789abcdef\",\"content\":\"42\",\"is_error\":false}]},"
        "{\"role\":\"user\",\"content\":\"ijkl\"}]}", &e);
    /* 4 + 4 + 8 + 4 (thinking) + 4 (name) + 7 ({"x":1}) + 2 + 4 = 37 */
    assert_int_equal(e.text_ascii, 37);
    assert_int_equal(e.tokens, 10 + 4 * ESTIMATE_MESSAGE_OVERHEAD);

    /* System as a string; the same key order reversed changes nothing. */
    est("{\"system\":\"You are terse.\",\"messages\":[{\"role\":\"user\",\"content\":\"ok\"}]}", &e);
    assert_int_equal(e.text_ascii, 16);
    est("{\"messages\":[{\"content\":\"ok\",\"role\":\"user\"}],\"system\":\"You are terse.\"}", &e);
    assert_int_equal(e.text_ascii, 16);
    assert_int_equal(e.tokens, 4 + ESTIMATE_MESSAGE_OVERHEAD);

    /* A repeated section key: the first is read (jobParse refuses a
     * repeated "messages"; this only must not count twice). */
    est("{\"system\":\"abcd\",\"messages\":[{\"role\":\"user\",\"content\":\"efgh\"}],"
        "\"system\":\"0123456789\",\"messages\":[{\"role\":\"user\",\"content\":\"ijklmnopqrstu\"}]}", &e);
    assert_int_equal(e.text_ascii, 8);
    assert_int_equal(e.tokens, 2 + ESTIMATE_MESSAGE_OVERHEAD);

    /* Inside a job: the request is a nested object. */
    const char *job = "{\"id\":\"j\",\"request\":{\"messages\":[{\"role\":\"user\","
                      "\"content\":\"abcdefgh\"}]},\"meta\":{\"text\":\"not me\"}}";
    jsonDoc d;
    char err[64];
    assert_int_equal(jsonParse(&d, job, strlen(job), 0, 0, err, sizeof(err)), 0);
    estimateRequest(&d, jsonGet(&d, 0, "request"), &e);
    assert_int_equal(e.text_ascii, 8);
    assert_int_equal(e.tokens, 2 + ESTIMATE_MESSAGE_OVERHEAD);
    /* Not an object, or no token: an all-zero estimate, no crash. */
    estimateRequest(&d, jsonGet(&d, 0, "id"), &e);
    assert_int_equal(e.tokens, 0);
    estimateRequest(&d, -1, &e);
    assert_int_equal(e.tokens, 0);
    estimateRequest(&d, d.ntok, &e);
    assert_int_equal(e.tokens, 0);
    jsonFree(&d);
}

static void test_tools(void **state) {
    (void)state;
    inputEstimate e;
    const char *tool = "{\"name\":\"get_weather\",\"description\":\"Weather in a city\","
                       "\"input_schema\":{\"type\":\"object\",\"properties\":"
                       "{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}";
    char js[1024];
    snprintf(js, sizeof(js), "{\"tools\":[%s],\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"}]}",
             tool);
    est(js, &e);
    /* The definition is read as JSON: compact, every byte of it counts. */
    assert_int_equal(e.has_tools, 1);
    assert_int_equal(e.text_ascii, (long long)strlen(tool) + 4);
    assert_int_equal(e.tokens, ((long long)strlen(tool) + 4 + 3) / 4 +
                     ESTIMATE_MESSAGE_OVERHEAD + ESTIMATE_TOOLS_OVERHEAD);
    /* An empty tools array adds nothing. */
    est("{\"tools\":[],\"messages\":[{\"role\":\"user\",\"content\":\"abcd\"}]}", &e);
    assert_int_equal(e.has_tools, 0);
    assert_int_equal(e.tokens, 1 + ESTIMATE_MESSAGE_OVERHEAD);
}

/* ---- Images ------------------------------------------------------------- */

static void test_png(void **state) {
    (void)state;
    unsigned char b[64];
    inputEstimate e;
    estImageBytes(b, makePng(b, 200, 150), &e);  /* 30000 px: 40 tokens */
    imageIs(&e, 40);
    estImageBytes(b, makePng(b, 201, 150), &e);  /* 30150 px: 40.2, rounds up */
    imageIs(&e, 41);
    /* Over 1.15 megapixels: scaled down to it (1150000 / 750 = 1533.3). */
    estImageBytes(b, makePng(b, 4000, 3000), &e);
    imageIs(&e, 1534);
    /* Under 1.15 megapixels but the long edge over 1568: scaled to that
     * edge, 500x2000 -> 392x1568 = 614656 px (820, not 1334 unscaled). */
    estImageBytes(b, makePng(b, 500, 2000), &e);
    imageIs(&e, 820);
    /* Absurd sizes do not overflow. */
    estImageBytes(b, makePng(b, 0x7fffffff, 0x7fffffff), &e);
    imageIs(&e, 1534);
    /* Only the header is decoded: data after it may be anything. */
    char *s = b64(b, makePng(b, 75, 100));
    size_t n = strlen(s);
    char *t = malloc(n + 10);
    memcpy(t, s, n);
    strcpy(t + n - 4, "!!!!~~");                /* garbage after byte 30 */
    estImage(t, &e);
    imageIs(&e, 10);
    free(t);
    free(s);
}

static void test_jpeg(void **state) {
    (void)state;
    unsigned char *b = malloc(70000);
    assert_non_null(b);
    inputEstimate e;
    /* APP0 then SOF0: 640x480 = 307200 px, 409.6 -> 410. */
    estImageBytes(b, makeJpeg(b, 640, 480, 0), &e);
    imageIs(&e, 410);
    /* A 60 KB APP1 (an EXIF thumbnail) before SOF0 is skipped. */
    estImageBytes(b, makeJpeg(b, 1024, 768, 60000), &e);
    imageIs(&e, 1049);                          /* 786432 / 750 = 1048.6 */
    /* Every segment length mod 3, so the skip starts off a quad. */
    for (size_t app1 = 1; app1 <= 6; app1++) {
        estImageBytes(b, makeJpeg(b, 30, 25, app1), &e);
        imageIs(&e, 1);
    }

    /* The same base64 as a JSON writer may send it: "/" escaped as "\/",
     * lines broken with "\n" every 76 characters. */
    size_t n = makeJpeg(b, 1024, 768, 5000);
    char *s = b64(b, n);
    size_t sl = strlen(s);
    char *t = malloc(sl * 3 + 16), *o = t;
    for (size_t i = 0; i < sl; i++) {
        if (i && i % 76 == 0) o += sprintf(o, "\\n");
        if (s[i] == '/') *o++ = '\\';
        *o++ = s[i];
    }
    *o = '\0';
    assert_non_null(strstr(t, "\\/"));          /* the test escapes something */
    estImage(t, &e);
    imageIs(&e, 1049);
    free(t);
    free(s);

    /* Truncated before the SOF: unknown. */
    n = makeJpeg(b, 640, 480, 100);
    estImageBytes(b, n - 40, &e);
    imageUnknown(&e);
    free(b);

    /* APPn segments up to an offset, then the SOF: found before the scan
     * bound, not looked for past it. */
    b = malloc(ESTIMATE_JPEG_SCAN + 70000);
    assert_non_null(b);
    long targets[2] = {ESTIMATE_JPEG_SCAN - 70000, ESTIMATE_JPEG_SCAN + 10};
    for (int t2 = 0; t2 < 2; t2++) {
        size_t k = 2;
        memcpy(b, "\xff\xd8", 2);
        while (k < (size_t)targets[t2]) {       /* APP2 segments of 60000 bytes */
            memcpy(b + k, "\xff\xe2\xea\x62", 4);
            memset(b + k + 4, 0xAB, 60000);
            k += 60004;
        }
        memcpy(b + k, "\xff\xc0\x00\x11\x08\x00\x10\x00\x10", 9);
        estImageBytes(b, k + 9, &e);
        if (t2 == 0) imageIs(&e, 1);
        else imageUnknown(&e);
    }
    free(b);
}

static void test_gif_webp(void **state) {
    (void)state;
    unsigned char b[64] = {0};
    inputEstimate e;
    memcpy(b, "GIF89a", 6);
    put16le(b + 6, 100);
    put16le(b + 8, 75);
    estImageBytes(b, 13, &e);                   /* 7500 px: 10 */
    imageIs(&e, 10);
    memcpy(b, "GIF87a", 6);
    estImageBytes(b, 13, &e);
    imageIs(&e, 10);

    /* WebP extended (VP8X): canvas 1000x800 stored minus one, 24-bit. */
    memset(b, 0, sizeof(b));
    memcpy(b, "RIFF\x40\0\0\0WEBPVP8X\x0a\0\0\0\x10\0\0\0", 24);
    put24le(b + 24, 1000 - 1);
    put24le(b + 27, 800 - 1);
    estImageBytes(b, 40, &e);                   /* 800000 / 750 = 1066.7 */
    imageIs(&e, 1067);
    /* Lossless (VP8L): 14-bit sizes minus one after the 0x2f signature. */
    memset(b, 0, sizeof(b));
    memcpy(b, "RIFF\x40\0\0\0WEBPVP8L\x20\0\0\0\x2f", 21);
    /* 301x200 with the alpha bit set (bit 28, not part of the height). */
    uint32_t bits = (301 - 1) | (uint32_t)(200 - 1) << 14 | 1u << 28;
    put16le(b + 21, bits & 0xffff);
    put16le(b + 23, bits >> 16);
    estImageBytes(b, 40, &e);                   /* 60200 px: 80.3 -> 81 */
    imageIs(&e, 81);
    /* Lossy (VP8): frame tag, start code, 14-bit sizes. */
    memset(b, 0, sizeof(b));
    memcpy(b, "RIFF\x40\0\0\0WEBPVP8 \x20\0\0\0\x50\x02\x00\x9d\x01\x2a", 26);
    put16le(b + 26, 320 | 0x4000);              /* 2 scale bits over 14 */
    put16le(b + 28, 240 | 0x8000);
    estImageBytes(b, 40, &e);                   /* 76800 / 750 = 102.4 */
    imageIs(&e, 103);
    /* An unknown WebP chunk: unknown. */
    memcpy(b + 12, "VP9 ", 4);
    estImageBytes(b, 40, &e);
    imageUnknown(&e);
}

static void test_image_unknown(void **state) {
    (void)state;
    inputEstimate e;
    estContent("[{\"type\":\"image\",\"source\":{\"type\":\"url\","
               "\"url\":\"https://example.com/a-very-long-image-name.png\"}}]", &e);
    imageUnknown(&e);
    assert_int_equal(e.text_ascii, 0);          /* the URL is not text */
    estContent("[{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"file_011\"}}]", &e);
    imageUnknown(&e);
    estContent("[{\"type\":\"image\"}]", &e);  /* no source at all */
    imageUnknown(&e);

    unsigned char b[64];
    makePng(b, 200, 150);
    estImageBytes(b, 20, &e);                   /* PNG cut before the size */
    imageUnknown(&e);
    estImage("!!!!not base64 at all", &e);
    imageUnknown(&e);
    estImage("", &e);
    imageUnknown(&e);
    estImage("iVBO\\\\AAAA", &e);             /* an escape base64 lacks */
    imageUnknown(&e);
    estImage("iVBO\\u00e9AAA", &e);             /* a \u escape past ASCII */
    imageUnknown(&e);
    estImage("iVBO\\u0041AAA", &e);             /* read through, not a PNG */
    imageUnknown(&e);
    estImage("SGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGFuIGltYWdlLg==", &e);
    imageUnknown(&e);
    estImageBytes(b, makePng(b, 0, 150), &e);   /* zero width */
    imageUnknown(&e);

    /* Two images, one known and one not. */
    char *s = b64(b, makePng(b, 200, 150));
    char c[512];
    snprintf(c, sizeof(c), "[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
             "\"media_type\":\"image/png\",\"data\":\"%s\"}},{\"type\":\"image\","
             "\"source\":{\"type\":\"url\",\"url\":\"https://x/y.png\"}}]", s);
    estContent(c, &e);
    assert_int_equal(e.images, 2);
    assert_int_equal(e.images_unknown, 1);
    assert_int_equal(e.image_tokens, 40);
    assert_int_equal(e.tokens, 40 + ESTIMATE_IMAGE_MAX + ESTIMATE_MESSAGE_OVERHEAD);
    free(s);
}

/* ---- Documents -------------------------------------------------------------- */

static void estDoc(const char *pdf, size_t n, inputEstimate *e) {
    char *s = b64((const unsigned char *)pdf, n);
    size_t cl = strlen(s) + 200;
    char *c = malloc(cl);
    assert_non_null(c);
    snprintf(c, cl, "[{\"type\":\"document\",\"source\":{\"data\":\"%s\",\"type\":\"base64\","
             "\"media_type\":\"application/pdf\"}}]", s);
    estContent(c, e);
    free(c);
    free(s);
}

static const char pdf2[] =
    "%PDF-1.4\n"
    "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    "2 0 obj << /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >> endobj\n"
    "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >> endobj\n"
    "4 0 obj <</Type/Page/Parent 2 0 R>> endobj\n"
    "5 0 obj << /Type /PageLabels >> endobj\n"
    "trailer << /Root 1 0 R >>\n%%EOF\n";

static void test_pdf_pages(void **state) {
    (void)state;
    inputEstimate e;
    estDoc(pdf2, strlen(pdf2), &e);
    assert_int_equal(e.documents, 1);
    assert_int_equal(e.doc_pages, 2);
    assert_int_equal(e.docs_unknown, 0);
    assert_int_equal(e.text_ascii, 0);          /* base64 is not text */
    assert_int_equal(e.tokens, 2 * ESTIMATE_PAGE + ESTIMATE_MESSAGE_OVERHEAD);

    /* "/Type /Page" straddling every position of a decode chunk boundary
     * (3072 bytes), and at the very end of the file. */
    char *pdf = malloc(4096);
    assert_non_null(pdf);
    for (int pad = 3040; pad < 3080; pad++) {
        memset(pdf, 'x', (size_t)pad);
        memcpy(pdf, "%PDF-1.7\n", 9);
        strcpy(pdf + pad, "<< /Type\n/Page >> << /Type /Pages >> <</Type /Page");
        estDoc(pdf, strlen(pdf), &e);
        if (e.doc_pages != 2) fail_msg("pad %d: %lld pages", pad, e.doc_pages);
    }
    free(pdf);

    /* No page object found (compressed object streams): unknown. */
    estDoc("%PDF-1.5\n<< /Type /Pages >>", 27, &e);
    assert_int_equal(e.documents, 1);
    assert_int_equal(e.doc_pages, 0);
    assert_int_equal(e.docs_unknown, 1);
    assert_int_equal(e.tokens, ESTIMATE_DOC_UNKNOWN + ESTIMATE_MESSAGE_OVERHEAD);
    /* A document by URL: unknown; its URL is not text. */
    estContent("[{\"type\":\"document\",\"source\":{\"type\":\"url\","
               "\"url\":\"https://example.com/paper.pdf\"}}]", &e);
    assert_int_equal(e.documents, 1);
    assert_int_equal(e.docs_unknown, 1);
    assert_int_equal(e.text_ascii, 0);
    assert_int_equal(e.tokens, ESTIMATE_DOC_UNKNOWN + ESTIMATE_MESSAGE_OVERHEAD);
}

static void test_text_document(void **state) {
    (void)state;
    inputEstimate e;
    /* Text source: its data is text, as are title and context. */
    estContent("[{\"type\":\"document\",\"source\":{\"type\":\"text\","
               "\"media_type\":\"text/plain\",\"data\":\"The grass is green.\\n\"},"
               "\"title\":\"Memo\",\"context\":\"ctx\",\"citations\":{\"enabled\":true}}]", &e);
    assert_int_equal(e.documents, 1);
    assert_int_equal(e.docs_unknown, 0);
    assert_int_equal(e.doc_pages, 0);
    assert_int_equal(e.text_ascii, 20 + 4 + 3);
    assert_int_equal(e.tokens, 7 + ESTIMATE_MESSAGE_OVERHEAD);
    /* Content source: its blocks are counted, image included. */
    unsigned char b[64];
    char *s = b64(b, makePng(b, 200, 150));
    char c[512];
    snprintf(c, sizeof(c), "[{\"type\":\"document\",\"source\":{\"type\":\"content\","
             "\"content\":[{\"type\":\"text\",\"text\":\"abcd\"},{\"type\":\"image\","
             "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"%s\"}}]}}]", s);
    estContent(c, &e);
    free(s);
    assert_int_equal(e.documents, 1);
    assert_int_equal(e.docs_unknown, 0);
    assert_int_equal(e.text_ascii, 4);
    assert_int_equal(e.images, 1);
    assert_int_equal(e.image_tokens, 40);
    assert_int_equal(e.tokens, 1 + 40 + ESTIMATE_MESSAGE_OVERHEAD);
    /* A document in a tool_result is counted too. */
    estContent("[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":["
               "{\"type\":\"document\",\"source\":{\"type\":\"text\",\"data\":\"abcdefgh\"}}]}]", &e);
    assert_int_equal(e.documents, 1);
    assert_int_equal(e.text_ascii, 8);
}

/* ---- Cacheable prefix -------------------------------------------------------- */

#define CC "\"cache_control\":{\"type\":\"ephemeral\"}"
#define CC1H "\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}"

static void test_prefix_same_and_different(void **state) {
    (void)state;
    inputEstimate a, b, c;
    const char *fmt = "{\"system\":[{\"type\":\"text\",\"text\":\"%s\"," CC "}],"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}";
    char js[512];
    snprintf(js, sizeof(js), fmt, "You are a careful assistant.", "first question");
    est(js, &a);
    snprintf(js, sizeof(js), fmt, "You are a careful assistant.", "a different, longer question");
    est(js, &b);
    snprintf(js, sizeof(js), fmt, "You are a careless assistant.", "first question");
    est(js, &c);
    assert_true(a.prefix_hash != 0);
    assert_true(a.prefix_hash == b.prefix_hash);  /* same prefix, other tail */
    assert_true(a.prefix_hash != c.prefix_hash);  /* other prefix */
    assert_int_equal(a.prefix_tokens, b.prefix_tokens);
    assert_int_equal(a.prefix_tokens, 7);         /* 28 characters */
    assert_true(a.tokens != b.tokens);
    assert_true(a.prefix_tokens < a.tokens);

    /* The prefix is in API order whatever the key order. */
    const char *rev = "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],"
                      "\"system\":[{\"type\":\"text\",\"text\":\"%s\"," CC "}]}";
    snprintf(js, sizeof(js), rev, "another tail", "You are a careful assistant.");
    est(js, &b);
    assert_true(a.prefix_hash == b.prefix_hash);
    assert_int_equal(b.prefix_tokens, 7);

    /* The same bytes in another section are another prefix. */
    est("{\"tools\":[{\"type\":\"text\",\"text\":\"abcd\"," CC "}],\"messages\":[]}", &a);
    est("{\"system\":[{\"type\":\"text\",\"text\":\"abcd\"," CC "}],\"messages\":[]}", &b);
    assert_true(a.prefix_hash != 0 && b.prefix_hash != 0);
    assert_true(a.prefix_hash != b.prefix_hash);

    /* No cache_control (or a null one): no prefix. */
    est("{\"system\":[{\"type\":\"text\",\"text\":\"abcd\",\"cache_control\":null}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &a);
    assert_int_equal(a.prefix_hash, 0);
    assert_int_equal(a.prefix_tokens, 0);
    assert_int_equal(a.cache_1h, 0);
}

static void test_prefix_sections(void **state) {
    (void)state;
    inputEstimate a, b, c;
    /* cache_control in system only: the prefix is tools + system. */
    const char *fmt = "{\"tools\":[{\"name\":\"%s\",\"input_schema\":{}}],"
                      "\"system\":[{\"type\":\"text\",\"text\":\"abcdefgh\"," CC "}],"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}";
    char js[512];
    snprintf(js, sizeof(js), fmt, "tool_a", "tail one");
    est(js, &a);
    snprintf(js, sizeof(js), fmt, "tool_a", "tail two, longer than one");
    est(js, &b);
    snprintf(js, sizeof(js), fmt, "tool_b", "tail one");
    est(js, &c);
    assert_true(a.prefix_hash == b.prefix_hash);
    assert_true(a.prefix_hash != c.prefix_hash);  /* the tools are in it */
    /* {"name":"tool_a","input_schema":{}} is 35 characters, system 8: 43
     * characters (11 tokens) and the tool prompt; no message. */
    assert_int_equal(a.prefix_tokens, 11 + ESTIMATE_TOOLS_OVERHEAD);
    assert_int_equal(a.tokens, (43 + 8 + 3) / 4 + ESTIMATE_TOOLS_OVERHEAD + ESTIMATE_MESSAGE_OVERHEAD);

    /* cache_control on a tool: the prefix is the tools up to it. */
    est("{\"tools\":[{\"name\":\"t1\"," CC "},{\"name\":\"t2\"}],"
        "\"system\":\"abcdefgh\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &a);
    est("{\"tools\":[{\"name\":\"t1\"," CC "},{\"name\":\"t3\"}],"
        "\"system\":\"abcdefgh\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &b);
    assert_true(a.prefix_hash != 0);
    assert_true(a.prefix_hash == b.prefix_hash);
    assert_int_equal(a.prefix_tokens, (13 + 3) / 4 + ESTIMATE_TOOLS_OVERHEAD);  /* {"name":"t1"} */

    /* The last block with cache_control wins, across sections and within
     * messages; a message's overhead is in the prefix once it starts. */
    const char *m = "{\"system\":[{\"type\":\"text\",\"text\":\"abcd\"," CC "}],"
                    "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"efgh\"},"
                    "{\"type\":\"text\",\"text\":\"ijkl\"," CC1H "},{\"type\":\"text\",\"text\":\"%s\"}]}]}";
    snprintf(js, sizeof(js), m, "mnop");
    est(js, &a);
    snprintf(js, sizeof(js), m, "qrstuvwxyz");
    est(js, &b);
    assert_int_equal(a.prefix_tokens, 3 + ESTIMATE_MESSAGE_OVERHEAD);
    assert_int_equal(a.tokens, 4 + ESTIMATE_MESSAGE_OVERHEAD);
    assert_true(a.prefix_hash == b.prefix_hash);
    assert_int_equal(a.cache_1h, 1);
    snprintf(js, sizeof(js), m, "mnop");
    *strstr(js, "ijkl") = 'I';                  /* change inside the prefix */
    est(js, &c);
    assert_true(c.prefix_hash != a.prefix_hash);

    /* A 5-minute cache_control does not set cache_1h; the last block
     * carrying it makes the prefix the whole request. */
    est("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"abcd\"," CC "}]}]}", &a);
    assert_int_equal(a.cache_1h, 0);
    assert_true(a.prefix_hash != 0);
    assert_int_equal(a.prefix_tokens, a.tokens);
}

/* ---- Robustness and speed ----------------------------------------------------- */

static void test_deep_nesting(void **state) {
    (void)state;
    /* tool_results nested far past ESTIMATE_MAX_NEST: counted, no crash. */
    char js[8192], *o = js;
    o += sprintf(o, "{\"messages\":[{\"role\":\"user\",\"content\":");
    for (int i = 0; i < 20; i++) o += sprintf(o, "[{\"type\":\"tool_result\",\"content\":");
    o += sprintf(o, "\"abcd\"");
    for (int i = 0; i < 20; i++) o += sprintf(o, "}]");
    sprintf(o, "}]}");
    inputEstimate e;
    est(js, &e);
    /* The levels past the limit are JSON text: keys and all. */
    assert_true(e.text_ascii > 100);
    assert_true(e.tokens > 25 + ESTIMATE_MESSAGE_OVERHEAD);
}

/* A 1.6 KB English request: its text counted whole, and the estimate the
 * same at every call on one parse (no state carried between requests).
 * Its speed is measured by `make bench` (BENCH_ONLY=estimate), beside the
 * parse, not timed here. */
static void test_english_request(void **state) {
    (void)state;
    char js[2048];
    int n = sampleRequest(js, sizeof(js));
    assert_true(n > 1500 && n < (int)sizeof(js));
    jsonDoc d;
    char err[64];
    assert_int_equal(jsonParse(&d, js, (size_t)n, 0, 0, err, sizeof(err)), 0);
    inputEstimate e;
    estimateRequest(&d, 0, &e);
    assert_int_equal(e.text_ascii, 1500);

    int first = e.tokens;
    assert_true(first > 1500 / 4 && first < 1500);
    for (int i = 0; i < 1000; i++) {
        estimateRequest(&d, 0, &e);
        assert_int_equal(e.tokens, first);
        assert_int_equal(e.text_ascii, 1500);
    }
    jsonFree(&d);
}

/* "lane" and "deadline": read, or refused with a message naming them. */
static void test_job_lane(void **state) {
    (void)state;
    char err[200], raw[400];
    job j;
    const char *req = "\"request\":{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"x\"}]}";
    snprintf(raw, sizeof(raw), "{\"id\":\"a\",%s}", req);
    assert_int_equal(jobParse(&j, raw, strlen(raw), 0, err, sizeof(err)), 0);
    assert_int_equal(j.lane, JOB_LANE_DEFAULT);
    assert_int_equal(j.deadline_ms, -1);
    snprintf(raw, sizeof(raw), "{\"id\":\"a\",%s,\"lane\":\"auto\",\"deadline\":"
             "\"2026-12-03T00:00:01Z\"}", req);
    assert_int_equal(jobParse(&j, raw, strlen(raw), 0, err, sizeof(err)), 0);
    assert_int_equal(j.lane, JOB_LANE_AUTO);
    assert_int_equal(j.deadline_ms, 1796256001000LL);
    assert_string_equal(jobLaneNames[j.lane], "auto");
    const char *bad[][2] = {
        {",\"lane\":\"fast\"", "\"lane\" must be"},
        {",\"lane\":1", "\"lane\" must be"},
        {",\"lane\":\"batch\",\"lane\":\"sync\"", "\"lane\" more than once"},
        {",\"deadline\":\"tomorrow\"", "\"deadline\" must be an RFC 3339 time"},
        {",\"deadline\":1796256001", "\"deadline\" must be an RFC 3339 time"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        snprintf(raw, sizeof(raw), "{\"id\":\"a\",%s%s}", req, bad[k][0]);
        assert_int_equal(jobParse(&j, raw, strlen(raw), 0, err, sizeof(err)), -1);
        if (!strstr(err, bad[k][1])) fail_msg("\"%s\": %s", bad[k][0], err);
        if (k != 2) assert_string_equal(j.id, "a");     /* (the error result names it) */
    }
}

/* A job over the size limit is refused unparsed; its id is still read
 * from the head when it is the first key, so its error names it. */
static void test_oversized_head_id(void **state) {
    (void)state;
    char err[200];
    job j;
    const char *cases[][2] = {
        {"{\"id\":\"big-1\",\"request\":{\"x\":\"aaaaaaaaaaaaaaaaaaaa\"}}", "big-1"},
        {" {\n \"id\" : \"q\\\"\\u00e9\", \"request\":{}}", "q\"\xc3\xa9"},
        {"{\"request\":{},\"id\":\"late\"}", ""},         /* not first: not read */
        {"{\"id\":12,\"request\":{}}", ""},                 /* not a string */
        {"{\"id\":\"unterminated", ""},
        {"{\"id\":\"\",\"request\":{}}", ""},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        assert_int_equal(jobParse(&j, cases[k][0], strlen(cases[k][0]), 10, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "over the 10 byte limit"));
        assert_string_equal(j.id, cases[k][1]);
    }
}

/* The spend bound: bytes for text (CJK 4 a character), the largest image
 * for any image, none at all for a document by url. */
static void test_spend_bound(void **state) {
    (void)state;
    inputEstimate e;
    est("{\"messages\":[{\"role\":\"user\",\"content\":\"\u65e5\u672c\u8a9e ab\"}]}", &e);
    assert_int_equal(e.text_cjk, 3);
    assert_int_equal(e.bound, 3 * 4 + 3 + ESTIMATE_MESSAGE_BOUND);
    assert_true(e.bound >= e.tokens);
    est("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
        "{\"type\":\"url\",\"url\":\"https://example.invalid/a.png\"}}]}]}", &e);
    assert_int_equal(e.bound, ESTIMATE_IMAGE_MAX + ESTIMATE_MESSAGE_BOUND);
    est("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\",\"source\":"
        "{\"type\":\"url\",\"url\":\"https://example.invalid/a.pdf\"}}]}]}", &e);
    assert_int_equal(e.docs_unknown, 1);
    assert_int_equal(e.bound, -1);
    est("{\"tools\":[{\"name\":\"t\",\"input_schema\":{}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &e);
    assert_true(e.bound >= ESTIMATE_TOOLS_BOUND + 1 && e.bound >= e.tokens);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spend_bound),
        cmocka_unit_test(test_oversized_head_id),
        cmocka_unit_test(test_job_lane),
        cmocka_unit_test(test_english_text),
        cmocka_unit_test(test_cjk),
        cmocka_unit_test(test_mixed_text),
        cmocka_unit_test(test_escapes_decoded),
        cmocka_unit_test(test_system_and_blocks),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_gif_webp),
        cmocka_unit_test(test_image_unknown),
        cmocka_unit_test(test_pdf_pages),
        cmocka_unit_test(test_text_document),
        cmocka_unit_test(test_prefix_same_and_different),
        cmocka_unit_test(test_prefix_sections),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_english_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
