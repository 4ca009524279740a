/* log.h — level-gated, one-line, key=value logging to stderr.
 *
 * lfLog(LF_INFO, "event=claim n=%d id=%s", n, lfQ(id)) prints
 *   2026-11-29T04:00:00.123Z info llmfleet[1234] event=claim n=3 id="a b"
 * or, with lfLogJson set (--log-format json), one JSON object a line:
 *   {"ts":"2026-11-29T04:00:00.123Z","level":"info","name":"llmfleet",
 *    "pid":1234,"event":"claim","n":3,"id":"a b"}
 * Values that are not bare words (ids, error texts, reasons: anything a
 * producer, the API or Redis wrote) go through lfQ, which quotes and
 * escapes them; a control character that reaches a line any other way is
 * escaped too, so one call is always one line. The level is checked before
 * the arguments are evaluated, so a debug line costs nothing when debug is
 * off. Never pass secrets to it. */
#ifndef LF_LOG_H
#define LF_LOG_H

enum { LF_DEBUG = 0, LF_INFO = 1, LF_WARN = 2, LF_ERROR = 3 };

extern int lfLogLevel;              /* lines below this level are dropped */
extern int lfLogJson;               /* 1: JSON lines, 0: key=value text */
extern const char *lfLogName;       /* program name in every line */

#define lfLog(level, ...) do { \
        if ((level) >= lfLogLevel) lfLogRaw((level), __VA_ARGS__); \
    } while (0)

void lfLogRaw(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* s quoted for a log value: "...", with \" \\ \n \r \t and \xHH escapes, cut
 * at LF_Q_MAX bytes (then ending in ...). The result lives in one of
 * LF_Q_SLOTS rotating buffers: use it in the lfLog call at hand (at most
 * LF_Q_SLOTS in one line). NULL reads as "". */
#define LF_Q_MAX 400
#define LF_Q_SLOTS 4
const char *lfQ(const char *s);

/* Parse "debug", "info", "warn" or "error"; returns the level or -1. */
int lfLogParseLevel(const char *s);

/* Parse "text" or "json"; returns lfLogJson's value or -1. */
int lfLogParseFormat(const char *s);

#endif
