/* rfc3339.h — RFC 3339 timestamps <-> milliseconds since the Unix epoch.
 * Used for the API's anthropic-ratelimit-*-reset headers. */
#ifndef LF_RFC3339_H
#define LF_RFC3339_H

#include <stddef.h>

/* Parse "2026-11-29T04:00:00Z", "...T04:00:00.123456Z", "...+02:00",
 * lowercase 't'/'z' too. s need not be NUL-terminated. Returns 0 and sets
 * *ms (fractions truncated to milliseconds), or -1 on anything else
 * (missing parts, out-of-range fields, trailing bytes). */
int rfc3339Parse(const char *s, size_t len, long long *ms);

/* Write ms as "YYYY-MM-DDTHH:MM:SSZ" (UTC, whole seconds rounded up) into
 * out (>= 21 bytes). Returns the length written. */
int rfc3339Format(long long ms, char *out, size_t outlen);

#endif
