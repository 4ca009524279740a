/* keys.c — see keys.h. */
#include "keys.h"

#include <stdio.h>
#include <string.h>

static const char *keyNames[KEY_COUNT] = {
#define X(N, name, doc) #name,
    LF_KEYS(X)
#undef X
};

int keysInit(keySet *ks, const char *fleet) {
    size_t n = strlen(fleet);
    if (n == 0 || n > 100) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = fleet[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return -1;
    }
    for (int k = 0; k < KEY_COUNT; k++) {
        snprintf(ks->name[k], sizeof(ks->name[k]), "llmfleet:{%s}:%s", fleet,
                 keyNames[k]);
        ks->argv[k] = ks->name[k];
    }
    return 0;
}
