/* rurl.h — parse the --redis-url setting.
 *
 *   redis://[[user]:pass@]host[:port][/db]     (port 6379, db 0 by default)
 *   unix://[[user]:pass@]/path/to/socket[?db=N]
 *   redis+sentinel://[[user]:pass@]host[:port][,host[:port]...]/MASTER[/db]
 *       (Sentinels, port 26379 by default; MASTER the monitored name;
 *       the credentials are the master's)
 * Host may be a bracketed IPv6 address. User and password are
 * percent-decoded. The password is a secret: never log a rurl. */
#ifndef LF_RURL_H
#define LF_RURL_H

#include <stddef.h>

#define RURL_MAX_SENTINELS 8

typedef struct rurl {
    int is_unix;            /* 1 for unix:// */
    char host[256];         /* TCP host, brackets removed */
    int port;               /* TCP port */
    char path[256];         /* unix socket path */
    char user[128];         /* ACL user, "" for none */
    char pass[256];         /* password, "" for none */
    int db;                 /* SELECT index */
    int sentinels;          /* redis+sentinel://: how many (host/port is then
                             * the master, once resolved) */
    char master[128];       /* the monitored master's name */
    struct { char host[256]; int port; } sentinel[RURL_MAX_SENTINELS];
} rurl;

/* Returns 0, or -1 with err saying what is wrong (without the password). */
int rurlParse(const char *url, rurl *out, char *err, size_t errlen);

/* A printable form without credentials: "redis://host:port/db". */
void rurlDescribe(const rurl *u, char *out, size_t outlen);

#endif
