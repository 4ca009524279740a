/* libfloor — the memory floor under the worker: a process that only loads
 * the worker's libraries (hiredis, libcurl with Debian's dependency tree,
 * libevent) and sets them up the way the worker does, then reports its RSS
 * and private memory. `make bench` prints it beside the idle worker, so the
 * worker's own share is the difference.
 *
 *   libfloor          VmRSS_KiB Private_KiB */
#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

static long field(const char *path, const char *name, int sum) {
    char line[256];
    long v = 0, total = 0;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, strlen(name)) != 0) continue;
        if (sscanf(line + strlen(name), " %ld", &v) == 1) {
            total += v;
            if (!sum) break;
        }
    }
    fclose(f);
    return total;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    CURL *e = curl_easy_init();
    struct event_base *base = event_base_new();
    redisReader *r = redisReaderCreate();
    if (!m || !e || !base || !r) return 1;
    long rss = field("/proc/self/status", "VmRSS:", 0);
    long priv = field("/proc/self/smaps_rollup", "Private_Clean:", 0) +
                field("/proc/self/smaps_rollup", "Private_Dirty:", 0);
    printf("%ld %ld\n", rss, priv);
    redisReaderFree(r);
    event_base_free(base);
    curl_easy_cleanup(e);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return 0;
}
