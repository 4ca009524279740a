/* scripts.h — the Lua scripts of scripts/lua/, embedded at build time by
 * scripts/embed-lua.sh. */
#ifndef LF_SCRIPTS_H
#define LF_SCRIPTS_H

typedef struct scriptSource {
    const char *name;       /* file name without .lua */
    const char *src;        /* the script */
} scriptSource;

/* Every script, terminated by {NULL, NULL}. */
extern const scriptSource scriptSources[];

/* The source of a script by name, or NULL. */
const char *scriptFind(const char *name);

#endif
