/*
 * bench_chunk.c: encode and decode cost and size of the XOR chunk on realistic series, the
 * figures docs/benchmarks.md ("Chunk codec micro-benchmarks") records. A program, not a test:
 * times depend on the machine.
 *
 * Each kind of series is generated once (15 s scrape interval, one sample in five off by a few
 * milliseconds as real scrapes are), cut into 120-sample chunks as the head cuts them, and
 * encoded (appender init, 120 appends, copy out, free: what the head does per chunk) and decoded
 * (xor_decode into an array) in full passes; each figure is the median over the runs. Encode and
 * decode are separate non-inlined functions so that callgrind can count their instructions alone:
 *
 *   valgrind --tool=callgrind --toggle-collect=bench_encode_pass build/bench_chunk --runs 1
 *   (total Ir / samples encoded = Ir per sample; likewise bench_decode_pass)
 *
 * Usage: bench_chunk [--runs N] [--chunks N] [--kind NAME-PREFIX]
 */
#include "encoding/encoding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CHUNK = 120 };

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double frand(rng *r)
{
    return (double)(rnd(r) >> 11) / 9007199254740992.0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef enum {
    KIND_FLOAT_COUNTER,
    KIND_INT_COUNTER,
    KIND_QUANTISED_GAUGE,
    KIND_CONSTANT,
    KIND_PRECISE_GAUGE,
    N_KINDS
} kind;

static const char *const kind_names[N_KINDS] = {
    "float counter, 0.01 steps (cpu seconds)",
    "integer counter (requests)",
    "gauge random walk, 4096 quantum (bytes)",
    "constant gauge",
    "high-precision float gauge",
};

static void gen(kind k, strata_sample *s, size_t n)
{
    rng r = {1000 + (uint64_t)k};
    double v = k == KIND_QUANTISED_GAUGE ? 512.0 * 1024 * 1024 : 0;
    int64_t t = 1700000000000;
    for (size_t i = 0; i < n; i++) {
        t += 15000;
        int64_t jitter = rnd(&r) % 5 == 0 ? (int64_t)(rnd(&r) % 11) - 5 : 0;
        switch (k) {
        case KIND_FLOAT_COUNTER:
            /* Irregular: idle a third of the time, else 0.01 to 1.50 more. */
            if (rnd(&r) % 3) v = round((v + (double)(1 + rnd(&r) % 150) / 100.0) * 100) / 100;
            break;
        case KIND_INT_COUNTER:
            v += (double)(rnd(&r) % 2000);
            break;
        case KIND_QUANTISED_GAUGE:
            v += (frand(&r) - 0.5) * 4096 * 64;
            v = fmax(4096, round(v / 4096) * 4096);
            break;
        case KIND_CONSTANT:
            v = 16.0 * 1024 * 1024 * 1024;
            break;
        case KIND_PRECISE_GAUGE:
            v = 21.5 + 3 * sin((double)i / 240) + (frand(&r) - 0.5) * 0.01; /* a temperature */
            break;
        default:
            break;
        }
        s[i] = (strata_sample){t + jitter, v};
    }
}

typedef struct encoded {
    uint8_t **data;
    size_t *len;
    size_t bytes;
} encoded;

__attribute__((noinline)) static void bench_encode_pass(const strata_sample *s, size_t chunks,
                                                        encoded *e)
{
    e->bytes = 0;
    for (size_t c = 0; c < chunks; c++) {
        xor_appender a;
        if (xor_appender_init(&a)) abort();
        const strata_sample *p = s + c * CHUNK;
        for (size_t i = 0; i < CHUNK; i++)
            if (xor_append(&a, p[i].t, p[i].v)) abort();
        size_t len;
        const uint8_t *b = xor_appender_bytes(&a, &len);
        free(e->data[c]);
        e->data[c] = malloc(len);
        if (!e->data[c]) abort();
        memcpy(e->data[c], b, len);
        e->len[c] = len;
        e->bytes += len;
        xor_appender_free(&a);
    }
}

__attribute__((noinline)) static double bench_decode_pass(const encoded *e, size_t chunks,
                                                          strata_sample *out)
{
    double sum = 0;
    for (size_t c = 0; c < chunks; c++) {
        size_t got;
        if (xor_decode(e->data[c], e->len[c], out, CHUNK, &got, NULL) || got != CHUNK) abort();
        sum += out[CHUNK - 1].v;
    }
    return sum;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t runs = 7, chunks = 2000;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--chunks"))
            chunks = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--kind"))
            only = argv[i + 1];
        else {
            fprintf(stderr, "usage: %s [--runs N] [--chunks N] [--kind NAME-PREFIX]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 1000 || chunks < 1) {
        fprintf(stderr, "bench_chunk: --runs must be 1..1000 and --chunks at least 1\n");
        return 2;
    }
    size_t n = CHUNK * chunks;
    strata_sample *s = malloc(n * sizeof *s);
    strata_sample *out = malloc(CHUNK * sizeof *out);
    encoded e = {calloc(chunks, sizeof *e.data), calloc(chunks, sizeof *e.len), 0};
    double *enc = malloc(runs * sizeof *enc), *dec = malloc(runs * sizeof *dec);
    if (!s || !out || !e.data || !e.len || !enc || !dec) abort();

    printf("%zu chunks of %d samples per series, median of %zu runs\n\n", chunks, CHUNK, runs);
    printf("| series | encode ns/sample | decode ns/sample | bytes/sample |\n");
    printf("|---|---:|---:|---:|\n");
    volatile double sink = 0;
    for (int k = 0; k < N_KINDS; k++) {
        if (only && strncmp(kind_names[k], only, strlen(only))) continue;
        gen((kind)k, s, n);
        for (size_t r = 0; r < runs; r++) {
            uint64_t t0 = now_ns();
            bench_encode_pass(s, chunks, &e);
            uint64_t t1 = now_ns();
            sink += bench_decode_pass(&e, chunks, out);
            uint64_t t2 = now_ns();
            enc[r] = (double)(t1 - t0) / (double)n;
            dec[r] = (double)(t2 - t1) / (double)n;
        }
        qsort(enc, runs, sizeof *enc, cmp_double);
        qsort(dec, runs, sizeof *dec, cmp_double);
        printf("| %s | %.1f | %.1f | %.2f |\n", kind_names[k], enc[runs / 2], dec[runs / 2],
               (double)e.bytes / (double)n);
    }
    for (size_t c = 0; c < chunks; c++)
        free(e.data[c]);
    free(e.data);
    free(e.len);
    free(enc);
    free(dec);
    free(s);
    free(out);
    return sink == 0.5 ? 1 : 0;
}
