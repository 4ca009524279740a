/* scripts.c — lookup over the embedded Lua scripts. */
#include "scripts.h"

#include <string.h>

const scriptSource *scriptFind(const char *name) {
    for (const scriptSource *s = scriptSources; s->name; s++)
        if (strcmp(s->name, name) == 0) return s;
    return NULL;
}
