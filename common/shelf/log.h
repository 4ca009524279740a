/* log.h — level-gated, one-line, key=value logging to stderr.
 *
 * lfLog(LF_INFO, "event=claim n=%d", n) prints
 *   2026-11-29T04:00:00.123Z info llmfleet[1234] event=claim n=3
 * The level is checked before the arguments are evaluated, so a debug line
 * costs nothing when debug is off. Never pass secrets to it. */
#ifndef LF_LOG_H
#define LF_LOG_H

enum { LF_DEBUG = 0, LF_INFO = 1, LF_WARN = 2, LF_ERROR = 3 };

extern int lfLogLevel;              /* lines below this level are dropped */
extern const char *lfLogName;       /* program name in every line */

#define lfLog(level, ...) do { \
        if ((level) >= lfLogLevel) lfLogRaw((level), __VA_ARGS__); \
    } while (0)

void lfLogRaw(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse "debug", "info", "warn" or "error"; returns the level or -1. */
int lfLogParseLevel(const char *s);

#endif
