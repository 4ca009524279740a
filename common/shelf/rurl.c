/* rurl.c — parse the --redis-url setting into a rurl.
 *
 * Accepted forms (see rurl.h):
 *   redis://[[user]:pass@]host[:port][/db][?db=N]
 *   unix://[[user]:pass@]/path/to/socket[?db=N]
 *   redis+sentinel://[[user]:pass@]host[:port],.../MASTER[/db]
 * The scheme is case-insensitive. User, password and socket path are
 * percent-decoded; "%00" is refused since they end up as C strings. Raw
 * bytes outside printable ASCII are refused anywhere in the URL. The
 * userinfo ends at the last '@' (redis://) or the first "@/" (unix://), so
 * a password with an unencoded '@' still works. TLS (rediss://) is not
 * supported. Error messages never contain the user or the password. */
#include "rurl.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_PORT 6379

/* ---- Helpers ------------------------------------------------------------ */

static int hexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (outlen bytes with the NUL). Returns 0,
 * -1 for a bad or NUL escape, -2 when the result does not fit. */
static int percentDecode(const char *s, size_t n, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3 || (hi = hexDigit(s[i + 1])) < 0 ||
                (lo = hexDigit(s[i + 2])) < 0 || (hi | lo) == 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= outlen) return -2;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* percentDecode() into a field named `what`, with the error message that
 * names it. Returns 0 or -1 (err set; the value itself is never echoed). */
static int decodeField(const char *s, size_t n, char *out, size_t outlen,
                       const char *what, char *err, size_t errlen) {
    int r = percentDecode(s, n, out, outlen);
    if (r == -1)
        snprintf(err, errlen, "redis URL: bad percent-encoding in the %s", what);
    else if (r < 0)
        snprintf(err, errlen, "redis URL: %s longer than %zu bytes", what, outlen - 1);
    return r < 0 ? -1 : 0;
}

/* A decimal number in s[0..n) no larger than max. Returns 0 or -1. */
static int parseNumber(const char *s, size_t n, long long max, long long *out) {
    long long v = 0;
    if (n == 0) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max) return -1;
    }
    *out = v;
    return 0;
}

static int isHostChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static int isIpv6Char(char c) {
    /* Hex digits, ':' and '.' (embedded IPv4), plus a "%zone" suffix. */
    return hexDigit(c) >= 0 || c == ':' || c == '.' || c == '%' ||
           (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '-' || c == '_';
}

/* ---- Pieces ------------------------------------------------------------- */

/* "[user]:pass" in s[0..n). */
static int parseUserinfo(const char *s, size_t n, rurl *out, char *err, size_t errlen) {
    const char *colon = memchr(s, ':', n);

    if (colon == NULL) {
        snprintf(err, errlen, "redis URL: credentials without a password "
                 "(write user:password@ or :password@)");
        return -1;
    }
    if (decodeField(s, (size_t)(colon - s), out->user, sizeof(out->user), "user", err, errlen) < 0)
        return -1;
    colon++;
    if (decodeField(colon, n - (size_t)(colon - s), out->pass, sizeof(out->pass), "password", err, errlen) < 0)
        return -1;
    return 0;
}

/* "?db=N" parameters in s[0..n) (s points after the '?'). */
static int parseQuery(const char *s, size_t n, rurl *out, char *err, size_t errlen) {
    while (n > 0) {
        const char *amp = memchr(s, '&', n);
        size_t plen = amp ? (size_t)(amp - s) : n;
        long long db;
        if (plen >= 3 && memcmp(s, "db=", 3) == 0) {
            if (parseNumber(s + 3, plen - 3, 2147483647LL, &db) < 0) {
                snprintf(err, errlen, "redis URL: ?db= is not a number (want 0..2147483647)");
                return -1;
            }
            out->db = (int)db;
        } else if (plen > 0) {
            /* Show the name only: a value might be a misplaced secret. */
            const char *eq = memchr(s, '=', plen);
            size_t klen = eq ? (size_t)(eq - s) : plen;
            snprintf(err, errlen, "redis URL: unknown parameter \"%.*s\" (only db=N)",
                     (int)(klen > 20 ? 20 : klen), s);
            return -1;
        }
        if (amp == NULL) break;
        n -= plen + 1;
        s = amp + 1;
    }
    return 0;
}

/* "host[:port]" in s[0..n), host maybe a bracketed IPv6 address. */
static int parseHostPort(const char *s, size_t n, rurl *out, char *err, size_t errlen) {
    const char *host = s, *rest;
    size_t hlen;

    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL) {
            snprintf(err, errlen, "redis URL: unclosed '[' in the host");
            return -1;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        rest = close + 1;
        for (size_t i = 0; i < hlen; i++) {
            if (!isIpv6Char(host[i])) {
                snprintf(err, errlen, "redis URL: bad IPv6 address");
                return -1;
            }
        }
        if (rest < s + n && *rest != ':') {
            snprintf(err, errlen, "redis URL: unexpected text after ']'");
            return -1;
        }
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        rest = s + hlen;
        for (size_t i = 0; i < hlen; i++) {
            if (!isHostChar(host[i])) {
                snprintf(err, errlen, "redis URL: bad character in the host");
                return -1;
            }
        }
    }
    if (hlen == 0) {
        snprintf(err, errlen, "redis URL: missing host");
        return -1;
    }
    if (hlen >= sizeof(out->host)) {
        snprintf(err, errlen, "redis URL: host longer than %zu bytes", sizeof(out->host) - 1);
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';

    if (rest < s + n) {                     /* ":port" */
        size_t plen = (size_t)(s + n - rest) - 1;
        long long port;
        /* The value is not echoed: "redis://user:secret/..." with a
         * forgotten '@' would put the password here. */
        if (parseNumber(rest + 1, plen, 65535, &port) < 0 || port == 0) {
            snprintf(err, errlen, "redis URL: bad port (want 1..65535)");
            return -1;
        }
        out->port = (int)port;
    }
    return 0;
}

/* After "redis://": [userinfo@]host[:port][/db][?query]. */
static int parseTcp(const char *s, size_t n, rurl *out, char *err, size_t errlen) {
    const char *at = NULL, *end = s + n, *hp, *slash, *q;

    for (const char *p = s; p < end; p++)
        if (*p == '@') at = p;
    if (at) {
        if (parseUserinfo(s, (size_t)(at - s), out, err, errlen) < 0) return -1;
        s = at + 1;
    }
    q = memchr(s, '?', (size_t)(end - s));
    if (q) {
        if (parseQuery(q + 1, (size_t)(end - q - 1), out, err, errlen) < 0) return -1;
        end = q;
    }
    hp = s;
    slash = memchr(hp, '/', (size_t)(end - hp));
    if (parseHostPort(hp, (size_t)((slash ? slash : end) - hp), out, err, errlen) < 0)
        return -1;
    if (slash && slash + 1 < end && !q) {
        long long db;
        size_t dlen = (size_t)(end - slash - 1);
        if (parseNumber(slash + 1, dlen, 2147483647LL, &db) < 0) {
            snprintf(err, errlen, "redis URL: db after '/' is not a number (want 0..2147483647)");
            return -1;
        }
        out->db = (int)db;
    } else if (slash && slash + 1 < end) {
        snprintf(err, errlen, "redis URL: db given both as a path and as ?db=");
        return -1;
    }
    return 0;
}

/* After "unix://": [userinfo@]/path[?query]. */
static int parseUnix(const char *s, size_t n, rurl *out, char *err, size_t errlen) {
    const char *end = s + n, *q;

    if (n > 0 && s[0] != '/') {
        const char *at = NULL;
        for (const char *p = s; p + 1 < end; p++)
            if (p[0] == '@' && p[1] == '/') { at = p; break; }
        if (at == NULL) {
            snprintf(err, errlen, "redis URL: unix socket path must be absolute");
            return -1;
        }
        if (parseUserinfo(s, (size_t)(at - s), out, err, errlen) < 0) return -1;
        s = at + 1;
    }
    q = memchr(s, '?', (size_t)(end - s));
    if (q) {
        if (parseQuery(q + 1, (size_t)(end - q - 1), out, err, errlen) < 0) return -1;
        end = q;
    }
    if (end - s < 2) {
        snprintf(err, errlen, "redis URL: missing unix socket path");
        return -1;
    }
    if (decodeField(s, (size_t)(end - s), out->path, sizeof(out->path), "socket path", err, errlen) < 0)
        return -1;
    return 0;
}

static int isNameChar(char c) { return isHostChar(c); }

/* After "redis+sentinel://": [userinfo@]h[:p][,h[:p]...]/MASTER[/db]. */
static int parseSentinel(const char *s, size_t n, rurl *out, char *err, size_t errlen) {
    const char *at = NULL, *end = s + n;
    for (const char *p = s; p < end; p++)
        if (*p == '@') at = p;
    if (at) {
        if (parseUserinfo(s, (size_t)(at - s), out, err, errlen) < 0) return -1;
        s = at + 1;
    }
    const char *slash = memchr(s, '/', (size_t)(end - s));
    if (!slash) {
        snprintf(err, errlen, "redis URL: a sentinel URL needs /MASTER after the sentinels");
        return -1;
    }
    const char *h = s;
    while (h < slash) {
        const char *comma = memchr(h, ',', (size_t)(slash - h));
        const char *he = comma ? comma : slash;
        if (out->sentinels == RURL_MAX_SENTINELS) {
            snprintf(err, errlen, "redis URL: more than %d sentinels", RURL_MAX_SENTINELS);
            return -1;
        }
        rurl one;
        memset(&one, 0, sizeof(one));
        one.port = 26379;
        if (parseHostPort(h, (size_t)(he - h), &one, err, errlen) < 0) return -1;
        memcpy(out->sentinel[out->sentinels].host, one.host, sizeof(one.host));
        out->sentinel[out->sentinels].port = one.port;
        out->sentinels++;
        h = comma ? comma + 1 : slash;
    }
    const char *m = slash + 1, *me = memchr(m, '/', (size_t)(end - m));
    if (!me) me = end;
    size_t mlen = (size_t)(me - m);
    if (mlen == 0 || mlen >= sizeof(out->master)) {
        snprintf(err, errlen, "redis URL: missing or too long master name after the sentinels");
        return -1;
    }
    for (size_t i = 0; i < mlen; i++) {
        if (!isNameChar(m[i])) {
            snprintf(err, errlen, "redis URL: bad character in the master name");
            return -1;
        }
    }
    memcpy(out->master, m, mlen);
    out->master[mlen] = '\0';
    if (me < end) {
        long long db;
        if (parseNumber(me + 1, (size_t)(end - me - 1), 2147483647LL, &db) < 0) {
            snprintf(err, errlen, "redis URL: db after the master name is not a number");
            return -1;
        }
        out->db = (int)db;
    }
    /* Until resolved, the first sentinel stands in (never connected to as
     * the master). */
    memcpy(out->host, out->sentinel[0].host, sizeof(out->host));
    out->port = out->sentinel[0].port;
    return 0;
}

/* ---- API ---------------------------------------------------------------- */

int rurlParse(const char *url, rurl *out, char *err, size_t errlen) {
    char dummy[1];
    size_t n;

    if (err == NULL || errlen == 0) err = dummy, errlen = sizeof(dummy);
    memset(out, 0, sizeof(*out));
    out->port = DEFAULT_PORT;
    if (url == NULL || *url == '\0') {
        snprintf(err, errlen, "redis URL is empty");
        return -1;
    }
    n = strlen(url);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= ' ' || c >= 0x7f) {
            snprintf(err, errlen, "redis URL: invalid character at offset %zu", i);
            return -1;
        }
    }
    if (n >= 8 && strncasecmp(url, "redis://", 8) == 0)
        return parseTcp(url + 8, n - 8, out, err, errlen);
    if (n >= 17 && strncasecmp(url, "redis+sentinel://", 17) == 0)
        return parseSentinel(url + 17, n - 17, out, err, errlen);
    if (n >= 7 && strncasecmp(url, "unix://", 7) == 0) {
        out->is_unix = 1;
        out->port = 0;
        return parseUnix(url + 7, n - 7, out, err, errlen);
    }
    if (n >= 9 && strncasecmp(url, "rediss://", 9) == 0) {
        snprintf(err, errlen, "redis URL: TLS (rediss://) is not supported (Debian's "
                 "hiredis 0.14 has none): reach a TLS Redis through stunnel, README: Security");
        return -1;
    }
    snprintf(err, errlen, "redis URL: unsupported scheme (want redis://, unix:// or "
             "redis+sentinel://)");
    return -1;
}

void rurlDescribe(const rurl *u, char *out, size_t outlen) {
    if (outlen == 0) return;
    if (u->sentinels) {
        int o = snprintf(out, outlen, "redis+sentinel://");
        for (int i = 0; i < u->sentinels && o > 0 && (size_t)o < outlen; i++)
            o += snprintf(out + o, outlen - (size_t)o, "%s%s:%d", i ? "," : "",
                          u->sentinel[i].host, u->sentinel[i].port);
        if (o > 0 && (size_t)o < outlen)
            snprintf(out + o, outlen - (size_t)o, "/%s/%d", u->master, u->db);
        return;
    }
    if (u->is_unix)
        snprintf(out, outlen, "unix://%s?db=%d", u->path, u->db);
    else if (strchr(u->host, ':'))
        snprintf(out, outlen, "redis://[%s]:%d/%d", u->host, u->port, u->db);
    else
        snprintf(out, outlen, "redis://%s:%d/%d", u->host, u->port, u->db);
}
