/* estspeed — what the input estimate costs beside the JSON parse it follows
 * (the worker parses every job; estimateRequest then walks the parsed
 * tokens once): a 1.6 KB English request (system, three messages,
 * metadata), ROUNDS rounds, each timing ITER parses and then ITER
 * estimates, interleaved; prints the medians and their ratio.
 *
 *   estspeed [ROUNDS]      parse_ns estimate_ns estimate/parse */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "estimate.h"
#include "json.h"
#include "../unit/sample_request.h"

enum { ITER = 20000, MAX_ROUNDS = 101 };

static double nowNs(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(*v), cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "estspeed: ROUNDS must be 1 to %d\n", MAX_ROUNDS);
        return 2;
    }
    char js[2048], err[64];
    int n = sampleRequest(js, sizeof(js));
    jsonDoc d;
    inputEstimate e;
    double parse[MAX_ROUNDS], est[MAX_ROUNDS];
    long long sink = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = nowNs();
        for (int i = 0; i < ITER; i++) {
            if (jsonParse(&d, js, (size_t)n, 0, 0, err, sizeof(err)) != 0) {
                fprintf(stderr, "estspeed: the request does not parse: %s\n", err);
                return 1;
            }
            sink += d.ntok;
            jsonFree(&d);
        }
        parse[r] = (nowNs() - t0) / ITER;
        if (jsonParse(&d, js, (size_t)n, 0, 0, err, sizeof(err)) != 0) return 1;
        t0 = nowNs();
        for (int i = 0; i < ITER; i++) {
            estimateRequest(&d, 0, &e);
            sink += e.tokens;
        }
        est[r] = (nowNs() - t0) / ITER;
        jsonFree(&d);
    }
    double p = median(parse, rounds), q = median(est, rounds);
    printf("%.0f %.0f %.2f\n", p, q, q / p);
    return sink == 0;                   /* (the loops' work is used) */
}
