/* redisurl.h — parse the --redis-url setting.
 *
 *   redis://[[user]:pass@]host[:port][/db]     (port 6379, db 0 by default)
 *   unix://[[user]:pass@]/path/to/socket[?db=N]
 * Host may be a bracketed IPv6 address. User and password are
 * percent-decoded. The password is a secret: never log a redisUrl. */
#ifndef LF_REDISURL_H
#define LF_REDISURL_H

#include <stddef.h>

typedef struct redisUrl {
    int is_unix;            /* 1 for unix:// */
    char host[256];         /* TCP host, brackets removed */
    int port;               /* TCP port */
    char path[256];         /* unix socket path */
    char user[128];         /* ACL user, "" for none */
    char pass[256];         /* password, "" for none */
    int db;                 /* SELECT index */
} redisUrl;

/* Returns 0, or -1 with err saying what is wrong (without the password). */
int redisUrlParse(const char *url, redisUrl *out, char *err, size_t errlen);

/* A printable form without credentials: "redis://host:port/db". */
void redisUrlDescribe(const redisUrl *u, char *out, size_t outlen);

#endif
