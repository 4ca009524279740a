/* buf.h — a growable byte buffer, always NUL-terminated.
 *
 * A zeroed struct is an empty buffer. Functions that grow it abort on
 * out-of-memory (like redis' zmalloc): there is no sane partial state. */
#ifndef LF_BUF_H
#define LF_BUF_H

#include <stddef.h>

typedef struct buf {
    char *p;        /* bytes, NUL-terminated when cap > 0 */
    size_t len;     /* bytes used, excluding the NUL */
    size_t cap;     /* bytes allocated */
} buf;

void bufFree(buf *b);
void bufReset(buf *b);                          /* len = 0, keeps memory */
void bufReserve(buf *b, size_t extra);
void bufAppend(buf *b, const void *p, size_t len);
void bufAppendStr(buf *b, const char *s);
void bufPrintf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s[0..len) as a JSON string literal, with quotes. Bytes < 0x20,
 * '"' and '\\' are escaped; other bytes are copied as they are. */
void bufAppendJsonString(buf *b, const char *s, size_t len);

/* Append s[0..len) in standard base64 (with padding), no quotes. */
void bufAppendBase64(buf *b, const void *s, size_t len);

/* v in decimal into dst (room for 21 bytes), NUL-terminated; returns the
 * length. snprintf's "%lld" without the format parsing: the worker
 * formats some 30 numbers per job. */
size_t fmtLL(char *dst, long long v);

#endif
