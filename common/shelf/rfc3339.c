/* rfc3339.c — RFC 3339 timestamps <-> milliseconds since the Unix epoch.
 *
 * The parser is strict and length-bounded: it reads s[0..len) only, never
 * needs a NUL, and refuses anything that is not exactly one timestamp
 * (date, 'T', time, optional fraction, 'Z' or a numeric offset). Calendar
 * arithmetic is done here in integers (proleptic Gregorian, years 0000..9999),
 * so the result never depends on the process time zone. It does not handle
 * the other ISO 8601 forms (week dates, ordinal dates, basic format). */
#include "rfc3339.h"

#include <stdio.h>

#define MS_PER_DAY 86400000LL

/* ---- Calendar arithmetic ------------------------------------------------ */

/* Division rounding towards minus infinity (C rounds towards zero). */
static long long floorDiv(long long a, long long b) {
    long long q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static int isLeapYear(long long y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int daysInMonth(long long y, int m) {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return (m == 2 && isLeapYear(y)) ? 29 : mdays[m - 1];
}

/* A count such that leapsThrough(b) - leapsThrough(a) is the number of
 * Gregorian leap years in (a, b], for any a and b (year 0 is a leap year). */
static long long leapsThrough(long long y) {
    return floorDiv(y, 4) - floorDiv(y, 100) + floorDiv(y, 400);
}

/* Days from 1970-01-01 to y-m-d (negative before 1970). */
static long long daysFromCivil(long long y, int m, int d) {
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    long long days = (y - 1970) * 365 + (leapsThrough(y - 1) - leapsThrough(1969));
    days += before[m - 1] + (m > 2 && isLeapYear(y)) + (d - 1);
    return days;
}

/* Inverse of daysFromCivil(): the date of day number days. */
static void civilFromDays(long long days, long long *y, int *m, int *d) {
    /* Estimate the year from the mean year length, then correct it: the
     * estimate is off by at most one either way. */
    long long year = 1970 + floorDiv(days * 400, 146097);
    while (daysFromCivil(year, 1, 1) > days) year--;
    while (daysFromCivil(year + 1, 1, 1) <= days) year++;
    long long left = days - daysFromCivil(year, 1, 1);
    int month = 1;
    while (left >= daysInMonth(year, month)) {
        left -= daysInMonth(year, month);
        month++;
    }
    *y = year;
    *m = month;
    *d = (int)left + 1;
}

/* ---- Parsing ------------------------------------------------------------ */

/* Read exactly n decimal digits at s[*pos], advancing *pos. Returns 0 and
 * sets *out, or -1 when fewer than n digits are there. */
static int readDigits(const char *s, size_t len, size_t *pos, int n, int *out) {
    int v = 0;
    if (len - *pos < (size_t)n) return -1;
    for (int i = 0; i < n; i++) {
        char c = s[*pos + (size_t)i];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t)n;
    *out = v;
    return 0;
}

/* Expect the byte c (or, when alt is not 0, alt) at s[*pos]. */
static int expect(const char *s, size_t len, size_t *pos, char c, char alt) {
    if (*pos >= len) return -1;
    if (s[*pos] != c && (alt == 0 || s[*pos] != alt)) return -1;
    (*pos)++;
    return 0;
}

/* Fraction of a second after the '.': one or more digits, of which the
 * first three make the milliseconds (the rest are truncated). */
static int readFraction(const char *s, size_t len, size_t *pos, int *msec) {
    int v = 0, ndig = 0;
    while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
        if (ndig < 3) v = v * 10 + (s[*pos] - '0');
        ndig++;
        (*pos)++;
    }
    if (ndig == 0) return -1;
    for (int i = ndig; i < 3; i++) v *= 10;
    *msec = v;
    return 0;
}

/* Time zone: 'Z', 'z' or +HH:MM / -HH:MM. Sets *offset_min (east positive). */
static int readZone(const char *s, size_t len, size_t *pos, int *offset_min) {
    int hh, mm, sign;
    if (*pos >= len) return -1;
    char c = s[(*pos)++];
    if (c == 'Z' || c == 'z') {
        *offset_min = 0;
        return 0;
    }
    if (c != '+' && c != '-') return -1;
    sign = c == '-' ? -1 : 1;
    if (readDigits(s, len, pos, 2, &hh) < 0 || expect(s, len, pos, ':', 0) < 0 ||
        readDigits(s, len, pos, 2, &mm) < 0)
        return -1;
    if (hh > 23 || mm > 59) return -1;
    *offset_min = sign * (hh * 60 + mm);
    return 0;
}

int rfc3339Parse(const char *s, size_t len, long long *ms) {
    int y, mo, d, h, mi, sec, msec = 0, offset_min;
    size_t pos = 0;

    if (s == NULL) return -1;
    if (readDigits(s, len, &pos, 4, &y) < 0 || expect(s, len, &pos, '-', 0) < 0 ||
        readDigits(s, len, &pos, 2, &mo) < 0 || expect(s, len, &pos, '-', 0) < 0 ||
        readDigits(s, len, &pos, 2, &d) < 0 || expect(s, len, &pos, 'T', 't') < 0 ||
        readDigits(s, len, &pos, 2, &h) < 0 || expect(s, len, &pos, ':', 0) < 0 ||
        readDigits(s, len, &pos, 2, &mi) < 0 || expect(s, len, &pos, ':', 0) < 0 ||
        readDigits(s, len, &pos, 2, &sec) < 0)
        return -1;
    if (pos < len && s[pos] == '.') {
        pos++;
        if (readFraction(s, len, &pos, &msec) < 0) return -1;
    }
    if (readZone(s, len, &pos, &offset_min) < 0) return -1;
    if (pos != len) return -1;                  /* trailing bytes */

    /* Second 60 is a leap second: it is allowed and counts as the first
     * second of the next minute (Unix time has no leap seconds). */
    if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 ||
        mi > 59 || sec > 60)
        return -1;

    long long t = daysFromCivil(y, mo, d) * MS_PER_DAY;
    t += ((long long)h * 3600 + mi * 60 + sec - (long long)offset_min * 60) * 1000;
    *ms = t + msec;
    return 0;
}

/* ---- Formatting --------------------------------------------------------- */

int rfc3339Format(long long ms, char *out, size_t outlen) {
    /* The range four-digit years can express: 0000-01-01 .. 9999-12-31. */
    const long long min_s = daysFromCivil(0, 1, 1) * 86400;
    const long long max_s = daysFromCivil(10000, 1, 1) * 86400 - 1;
    long long secs, days, rem, y;
    int m, d, n;

    if (out == NULL || outlen == 0) return 0;
    secs = floorDiv(ms, 1000) + (ms % 1000 != 0);     /* round up */
    if (secs < min_s) secs = min_s;
    if (secs > max_s) secs = max_s;
    days = floorDiv(secs, 86400);
    rem = secs - days * 86400;
    civilFromDays(days, &y, &m, &d);
    n = snprintf(out, outlen, "%04lld-%02d-%02dT%02lld:%02lld:%02lldZ", y, m, d,
                 rem / 3600, rem / 60 % 60, rem % 60);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n < outlen ? n : (int)outlen - 1;
}
