/* log.c — see log.h. Writes whole lines with one write(2) so that lines of
 * processes sharing a terminal or file never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int lfLogLevel = LF_INFO;
int lfLogJson = 0;
const char *lfLogName = "llmfleet";

static const char *levelNames[] = {"debug", "info", "warn", "error"};
static const char hex[] = "0123456789abcdef";

/* A line being built: bytes up to cap, the rest dropped. */
typedef struct lineBuf {
    char *p;
    size_t n, cap;
} lineBuf;

static void put(lineBuf *b, const char *s, size_t n) {
    if (n > b->cap - b->n) n = b->cap - b->n;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void putc1(lineBuf *b, char c) { put(b, &c, 1); }

/* c escaped as log.h says (JSON mode: \u00HH for \xHH); 0 when c needs no
 * escape. */
static int putEsc(lineBuf *b, unsigned char c, int json) {
    char e[6];
    switch (c) {
    case '"': put(b, "\\\"", 2); return 1;
    case '\\': put(b, "\\\\", 2); return 1;
    case '\n': put(b, "\\n", 2); return 1;
    case '\r': put(b, "\\r", 2); return 1;
    case '\t': put(b, "\\t", 2); return 1;
    }
    if (c >= 0x20 && c != 0x7f) return 0;
    if (json) {
        memcpy(e, "\\u00", 4);
        e[4] = hex[c >> 4];
        e[5] = hex[c & 15];
        put(b, e, 6);
    } else {
        e[0] = '\\';
        e[1] = 'x';
        e[2] = hex[c >> 4];
        e[3] = hex[c & 15];
        put(b, e, 4);
    }
    return 1;
}

const char *lfQ(const char *s) {
    static char slots[LF_Q_SLOTS][LF_Q_MAX * 4 + 8];
    static unsigned next;
    char *out = slots[next++ % LF_Q_SLOTS];
    lineBuf b = {out, 0, LF_Q_MAX * 4 + 7};
    size_t i;

    putc1(&b, '"');
    for (i = 0; s && s[i] && i < LF_Q_MAX; i++)
        if (!putEsc(&b, (unsigned char)s[i], 0)) putc1(&b, s[i]);
    if (s && s[i]) put(&b, "...", 3);
    putc1(&b, '"');
    out[b.n] = '\0';
    return out;
}

/* 1 when v[0..n) is a JSON number (as the key=value lines write them). */
static int isNumber(const char *v, size_t n) {
    size_t i = 0, digits = 0;
    if (i < n && v[i] == '-') i++;
    while (i < n && v[i] >= '0' && v[i] <= '9') i++, digits++;
    if (digits == 0 || (digits > 1 && v[v[0] == '-'] == '0')) return 0;
    if (i < n && v[i] == '.') {
        size_t f = ++i;
        while (i < n && v[i] >= '0' && v[i] <= '9') i++;
        if (i == f) return 0;
    }
    return i == n;
}

/* The key=value message m as JSON members (after the fixed ones): bare
 * values as numbers when they are, else strings; quoted values (lfQ's
 * escapes) as strings; text that is not key=value as "msg". */
static void putJsonMembers(lineBuf *b, const char *m) {
    const char *p = m;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '"') p++;
        if (*p != '=' || p == k) {          /* not key=value: the rest */
            put(b, ",\"msg\":\"", 8);
            for (p = k; *p; p++)
                if (!putEsc(b, (unsigned char)*p, 1)) putc1(b, *p);
            putc1(b, '"');
            return;
        }
        put(b, ",\"", 2);
        put(b, k, (size_t)(p - k));
        put(b, "\":", 2);
        p++;
        if (*p == '"') {                    /* lfQ's quoting, or a plain "..." */
            putc1(b, '"');
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1] == 'x' && p[2] && p[3]) {
                    put(b, "\\u00", 4);
                    put(b, p + 2, 2);
                    p += 3;
                } else if (*p == '\\' && p[1]) {
                    put(b, p, 2);
                    p++;
                } else if (!putEsc(b, (unsigned char)*p, 1)) {
                    putc1(b, *p);
                }
            }
            putc1(b, '"');
            if (*p) p++;
        } else {
            const char *v = p;
            while (*p && *p != ' ') p++;
            if (isNumber(v, (size_t)(p - v))) {
                put(b, v, (size_t)(p - v));
            } else {
                putc1(b, '"');
                for (const char *q = v; q < p; q++)
                    if (!putEsc(b, (unsigned char)*q, 1)) putc1(b, *q);
                putc1(b, '"');
            }
        }
    }
}

void lfLogRaw(int level, const char *fmt, ...) {
    char msg[2048], line[2048 * 6 + 256], ts[40];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    lineBuf b = {line, 0, sizeof(line) - 2};
    size_t n;
    int r;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    va_start(ap, fmt);
    r = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r < 0) msg[0] = '\0';
    if (lfLogJson) {
        char head[160];
        r = snprintf(head, sizeof(head), "{\"ts\":\"%s\",\"level\":\"%s\",\"name\":\"%s\","
                     "\"pid\":%d", ts, levelNames[level & 3], lfLogName, (int)getpid());
        put(&b, head, r > 0 ? (size_t)r : 0);
        putJsonMembers(&b, msg);
        if (b.n == b.cap) b.n = b.cap - 1;  /* cut: keep it one object */
        putc1(&b, '}');
    } else {
        char head[160];
        r = snprintf(head, sizeof(head), "%s %s %s[%d] ", ts, levelNames[level & 3],
                     lfLogName, (int)getpid());
        put(&b, head, r > 0 ? (size_t)r : 0);
        /* A control character that got past lfQ does not end the line. */
        for (const char *p = msg; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c < 0x20 || c == 0x7f) putEsc(&b, c, 0);
            else putc1(&b, *p);
        }
    }
    line[b.n++] = '\n';
    if (write(STDERR_FILENO, line, b.n) < 0) { /* nowhere to report it */ }
}

int lfLogParseLevel(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, levelNames[i]) == 0) return i;
    return -1;
}

int lfLogParseFormat(const char *s) {
    if (strcmp(s, "text") == 0) return 0;
    if (strcmp(s, "json") == 0) return 1;
    return -1;
}
