/*
 * bench_chunk.c: encode and decode cost and size of the XOR chunk on realistic series.
 *
 * Each series is cut into 120-sample chunks at a 15 s interval, as the head cuts them. Prints a
 * markdown table of ns/sample (median of 7 runs) and bytes/sample. Not a test: figures depend on
 * the machine; docs/benchmarks.md records them with instruction counts from callgrind.
 */
#include "encoding/encoding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CHUNK = 120, CHUNKS = 2000, RUNS = 7 };

static uint64_t rng = 42;
static double frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void gen(const char *kind, strata_sample *s, size_t n)
{
    double v = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = 1700000000000LL + (int64_t)i * 15000;
        if (!strcmp(kind, "float counter (0.01 s cpu)")) v += floor(frand() * 150) / 100.0;
        else if (!strcmp(kind, "integer counter")) v += floor(frand() * 2000);
        else if (!strcmp(kind, "gauge, 4 KiB quantised")) {
            v += (frand() - 0.5) * 4096 * 20;
            v = floor(fabs(v) / 4096) * 4096 + 4096 * 1000;
        } else if (!strcmp(kind, "constant gauge")) v = 16777216000;
        else v = 20 + sin((double)i / 50) * 5 + frand() * 1e-3; /* high-precision float gauge */
        s[i] = (strata_sample){t, v};
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    const char *kinds[] = {"float counter (0.01 s cpu)", "integer counter", "gauge, 4 KiB quantised",
                           "constant gauge", "high-precision float gauge"};
    size_t n = (size_t)CHUNK * CHUNKS;
    strata_sample *s = malloc(n * sizeof *s);
    strata_sample *out = malloc(CHUNK * sizeof *out);
    uint8_t **chunks = calloc(CHUNKS, sizeof *chunks);
    size_t *lens = calloc(CHUNKS, sizeof *lens);
    printf("| series | encode ns/sample | decode ns/sample | bytes/sample |\n|---|---:|---:|---:|\n");
    volatile double sink = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        gen(kinds[k], s, n);
        double enc[RUNS], dec[RUNS];
        size_t bytes = 0;
        for (int r = 0; r < RUNS; r++) {
            bytes = 0;
            uint64_t t0 = now_ns();
            for (size_t c = 0; c < CHUNKS; c++) {
                xor_appender a;
                xor_appender_init(&a);
                for (size_t i = 0; i < CHUNK; i++) xor_append(&a, s[c * CHUNK + i].t, s[c * CHUNK + i].v);
                size_t len;
                const uint8_t *b = xor_appender_bytes(&a, &len);
                free(chunks[c]);
                chunks[c] = malloc(len);
                memcpy(chunks[c], b, len);
                lens[c] = len;
                bytes += len;
                xor_appender_free(&a);
            }
            uint64_t t1 = now_ns();
            for (size_t c = 0; c < CHUNKS; c++) {
                size_t got;
                xor_decode(chunks[c], lens[c], out, CHUNK, &got);
                sink += out[got - 1].v;
            }
            uint64_t t2 = now_ns();
            enc[r] = (double)(t1 - t0) / (double)n;
            dec[r] = (double)(t2 - t1) / (double)n;
        }
        qsort(enc, RUNS, sizeof *enc, cmp_d);
        qsort(dec, RUNS, sizeof *dec, cmp_d);
        printf("| %s | %.1f | %.1f | %.3f |\n", kinds[k], enc[RUNS / 2], dec[RUNS / 2],
               (double)bytes / (double)n);
    }
    for (size_t c = 0; c < CHUNKS; c++) free(chunks[c]);
    free(chunks);
    free(lens);
    free(s);
    free(out);
    return sink == 12345.678 ? 1 : 0;
}
