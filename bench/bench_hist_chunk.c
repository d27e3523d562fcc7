/*
 * bench_hist_chunk.c: size and cost of the native-histogram chunks (encodings 2 and 3) on
 * realistic series, the figures docs/benchmarks.md ("Histogram chunks") records. A program, not a
 * test: times depend on the machine.
 *
 * Each series is a latency histogram scraped every 15 s (one scrape in five a few ms off): every
 * scrape adds a random number of observations drawn from a log-normal distribution, so counts
 * grow as a real counter histogram's do. The bucket layout is the set of buckets the whole series
 * ever uses (what a client exposes once warmed up), so chunks are cut every 120 samples as the
 * head cuts them. Each figure is the median over the runs; bytes/sample counts the whole chunk,
 * header and layout included.
 *
 *   valgrind --tool=callgrind --toggle-collect=bench_hist_encode_pass build/bench_hist_chunk --runs
 * 1
 *
 * Usage: bench_hist_chunk [--runs N] [--chunks N] [--kind NAME-PREFIX]
 */
#include "encoding/encoding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CHUNK = 120 };

static uint64_t rng_s = 42;
static double frand(void)
{
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
    double u = frand(), v = frand();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

typedef struct kind {
    const char *name;
    int schema; /* exponential schema, or HIST_SCHEMA_CUSTOM */
    bool is_int;
    double obs_per_scrape;
} kind;

typedef struct series {
    int n;
    int64_t *t;
    native_histogram *h;
    hist_span span;
    double *buckets; /* n x nb */
    int nb;
    double custom[12];
} series;

static int bucket_of(const kind *k, const series *s, double v, int lo)
{
    if (k->schema == HIST_SCHEMA_CUSTOM) {
        int i = 0;
        while (i < 12 && v > s->custom[i])
            i++;
        return i;
    }
    return (int)ceil(log2(v) * ldexp(1, k->schema)) - lo;
}

static void make_series(const kind *k, int n, series *s)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->t = calloc((size_t)n, sizeof *s->t);
    s->h = calloc((size_t)n, sizeof *s->h);
    for (int i = 0; i < 12; i++)
        s->custom[i] = 0.005 * pow(2, i);
    /* The index range observations can reach: median 50 ms, sigma 1 (in e-folds). */
    int lo = 0, hi = 12;
    if (k->schema != HIST_SCHEMA_CUSTOM) {
        lo = (int)floor(log2(0.05 * exp(-5)) * ldexp(1, k->schema));
        hi = (int)ceil(log2(0.05 * exp(5)) * ldexp(1, k->schema));
    }
    s->nb = hi - lo + 1;
    s->span =
        (hist_span){.offset = k->schema == HIST_SCHEMA_CUSTOM ? 0 : lo, .length = (uint32_t)s->nb};
    s->buckets = calloc((size_t)n * (size_t)s->nb, sizeof *s->buckets);
    double *cur = calloc((size_t)s->nb, sizeof *cur);
    double count = 0, sum = 0;
    int64_t t = 1700000000000;
    for (int i = 0; i < n; i++) {
        t += 15000 + (frand() < 0.2 ? (int64_t)(frand() * 8) - 4 : 0);
        int obs = (int)(k->obs_per_scrape * (0.5 + frand()));
        for (int o = 0; o < obs; o++) {
            double v = 0.05 * exp(gauss());
            if (v < 0.05 * exp(-5)) v = 0.05 * exp(-5);
            if (v > 0.05 * exp(5)) v = 0.05 * exp(5);
            int b = bucket_of(k, s, v, lo);
            if (b < 0) b = 0;
            if (b >= s->nb) b = s->nb - 1;
            cur[b] += 1;
            count += 1;
            sum += v;
        }
        double *row = s->buckets + (size_t)i * (size_t)s->nb;
        memcpy(row, cur, (size_t)s->nb * sizeof *row);
        native_histogram *h = &s->h[i];
        h->schema = k->schema;
        h->is_int = k->is_int;
        h->zero_threshold = k->schema == HIST_SCHEMA_CUSTOM ? 0 : ldexp(0.5, -127);
        h->count = count;
        h->sum = k->is_int ? sum : sum;
        h->pos_spans = &s->span;
        h->n_pos_spans = 1;
        h->pos_buckets = row;
        h->n_pos_buckets = (uint32_t)s->nb;
        if (k->schema == HIST_SCHEMA_CUSTOM) {
            h->custom_values = s->custom;
            h->n_custom_values = 12;
            s->span.length = 13;
        }
        s->t[i] = t;
    }
    free(cur);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t total_bytes;

__attribute__((noinline)) void bench_hist_encode_pass(const series *s, chunk_encoding enc);
__attribute__((noinline)) void bench_hist_encode_pass(const series *s, chunk_encoding enc)
{
    total_bytes = 0;
    for (int c = 0; c < s->n; c += CHUNK) {
        hist_appender a;
        if (hist_appender_init(&a, enc)) abort();
        for (int i = c; i < c + CHUNK && i < s->n; i++)
            if (hist_append(&a, s->t[i], &s->h[i])) abort();
        size_t len;
        hist_appender_bytes(&a, &len);
        total_bytes += len;
        hist_appender_free(&a);
    }
}

static uint8_t **chunks;
static size_t *chunk_len;

__attribute__((noinline)) void bench_hist_decode_pass(int nchunks, chunk_encoding enc);
__attribute__((noinline)) void bench_hist_decode_pass(int nchunks, chunk_encoding enc)
{
    arena a;
    arena_init(&a, 1 << 20);
    for (int c = 0; c < nchunks; c++) {
        hist_sample *out;
        size_t n;
        if (hist_chunk_decode(chunks[c], chunk_len[c], enc, &a, &out, &n, NULL)) abort();
        arena_reset(&a);
    }
    arena_free(&a);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int runs = 5, nchunks = 200;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--chunks"))
            nchunks = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kind"))
            only = argv[i + 1];
    }
    const kind kinds[] = {
        {"exp schema 3, integer, 100 obs/scrape", 3, true, 100},
        {"exp schema 3, float, 100 obs/scrape", 3, false, 100},
        {"exp schema 0, integer, 100 obs/scrape", 0, true, 100},
        {"exp schema 3, integer, 1 obs/scrape", 3, true, 1},
        {"custom 12 bounds (NHCB), integer, 100 obs/scrape", HIST_SCHEMA_CUSTOM, true, 100},
        {"custom 12 bounds (NHCB), float, 100 obs/scrape", HIST_SCHEMA_CUSTOM, false, 100},
    };
    printf("%-50s %8s %12s %12s %12s\n", "series", "buckets", "bytes/sample", "enc ns/smp",
           "dec ns/smp");
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (only && strncmp(kinds[k].name, only, strlen(only))) continue;
        series s;
        int n = nchunks * CHUNK;
        make_series(&kinds[k], n, &s);
        chunk_encoding enc = kinds[k].is_int ? CHUNK_ENC_HISTOGRAM : CHUNK_ENC_FLOAT_HISTOGRAM;
        double *enc_t = calloc((size_t)runs, sizeof *enc_t),
               *dec_t = calloc((size_t)runs, sizeof *dec_t);
        chunks = calloc((size_t)nchunks, sizeof *chunks);
        chunk_len = calloc((size_t)nchunks, sizeof *chunk_len);
        for (int c = 0; c < nchunks; c++) {
            hist_appender a;
            if (hist_appender_init(&a, enc)) abort();
            for (int i = c * CHUNK; i < (c + 1) * CHUNK; i++)
                if (hist_append(&a, s.t[i], &s.h[i])) abort();
            const uint8_t *b = hist_appender_bytes(&a, &chunk_len[c]);
            chunks[c] = malloc(chunk_len[c]);
            memcpy(chunks[c], b, chunk_len[c]);
            hist_appender_free(&a);
        }
        for (int r = 0; r < runs; r++) {
            double t0 = now_ns();
            bench_hist_encode_pass(&s, enc);
            double t1 = now_ns();
            bench_hist_decode_pass(nchunks, enc);
            double t2 = now_ns();
            enc_t[r] = (t1 - t0) / n;
            dec_t[r] = (t2 - t1) / n;
        }
        qsort(enc_t, (size_t)runs, sizeof *enc_t, cmp_d);
        qsort(dec_t, (size_t)runs, sizeof *dec_t, cmp_d);
        printf("%-50s %8d %12.2f %12.1f %12.1f\n", kinds[k].name, (int)s.span.length,
               (double)total_bytes / n, enc_t[runs / 2], dec_t[runs / 2]);
        for (int c = 0; c < nchunks; c++)
            free(chunks[c]);
        free(chunks);
        free(chunk_len);
        free(enc_t);
        free(dec_t);
        free(s.t);
        free(s.h);
        free(s.buckets);
    }
    return 0;
}
