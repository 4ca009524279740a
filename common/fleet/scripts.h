/* scripts.h — the Lua scripts of scripts/lua/, embedded at build time by
 * scripts/embed-lua.sh. */
#ifndef LF_SCRIPTS_H
#define LF_SCRIPTS_H

typedef struct scriptSource {
    const char *name;       /* file name without .lua */
    const char *src;        /* the script alone, for EVAL (libraries in front) */
    const char *fn;         /* its function in scriptLibrary, for FCALL */
} scriptSource;

/* Every script, terminated by {NULL, NULL, NULL}. */
extern const scriptSource scriptSources[];

/* All the scripts as one Redis function library (FUNCTION LOAD), named
 * scriptLibraryName: llmfleet_ and a hash of its text. */
extern const char scriptLibrary[];
extern const char scriptLibraryName[];

/* A script by name, or NULL. */
const scriptSource *scriptFind(const char *name);

#endif
