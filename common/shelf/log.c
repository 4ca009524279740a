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
const char *lfLogName = "llmfleet";

static const char *levelNames[] = {"debug", "info", "warn", "error"};

void lfLogRaw(int level, const char *fmt, ...) {
    char line[2048];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n;
    int r;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s %s[%d] ",
                 (int)(tv.tv_usec / 1000), levelNames[level & 3], lfLogName,
                 (int)getpid());
    if (r > 0) n += (size_t)r;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (r > 0) n += (size_t)r;
    if (n > sizeof(line) - 2) n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) { /* nowhere to report it */ }
}

int lfLogParseLevel(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, levelNames[i]) == 0) return i;
    return -1;
}
