/*
 * bench_hist_query.c: PromQL over native histograms: latency of the histogram paths of the
 * engine on synthetic latency histograms.
 *
 *   bench_hist_query [--series N] [--hours H] [--runs R]
 *
 * Writes N counter histograms (schema 3, 24 populated positive buckets whose counts grow at
 * different speeds, a zero bucket, a reset every 6 h) scraped every 15 s for H hours into a
 * scratch database through db_write, then runs each query R times after one warm-up and prints
 * the median and fastest wall time and the growth of the peak resident memory during the
 * queries. Queries go through promql_eval_* (the engine, without HTTP and JSON).
 */
#include "query/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BUCKETS 24

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int load(strata_db *db, long series, double hours, int64_t *end_ms)
{
    long samples = (long)(hours * 3600 / 15);
    hist_sample *hs = calloc((size_t)samples, sizeof *hs);
    double *counts = calloc((size_t)samples * BUCKETS, sizeof *counts);
    if (!hs || !counts) return -1;
    static hist_span span = {-4, BUCKETS};
    char err[STRATA_ERRMSG_SIZE];
    for (long s = 0; s < series; s++) {
        char inst[32];
        snprintf(inst, sizeof inst, "host-%04ld", s);
        label ls[3] = {
            {.name = "__name__",
             .value = "http_request_duration_seconds",
             .name_len = 8,
             .value_len = 29},
            {.name = "instance", .value = inst, .name_len = 8, .value_len = (uint32_t)strlen(inst)},
            {.name = "job", .value = s % 2 ? "api" : "web", .name_len = 3, .value_len = 3}};
        for (long i = 0; i < samples; i++) {
            long k = i % (6 * 240) + 1; /* a reset every 6 h */
            native_histogram *h = &hs[i].h;
            hs[i].t = i * 15000;
            h->schema = 3;
            h->is_int = true;
            h->zero_threshold = 1e-3;
            h->zero_count = (double)k;
            h->pos_spans = &span;
            h->n_pos_spans = 1;
            h->pos_buckets = &counts[i * BUCKETS];
            h->n_pos_buckets = BUCKETS;
            h->count = h->zero_count;
            for (int b = 0; b < BUCKETS; b++) {
                double c = (double)(k * (1 + (b + s) % 5));
                h->pos_buckets[b] = c;
                h->count += c;
            }
            h->sum = 0.25 * h->count;
        }
        write_series ws = {
            .labels = ls, .n_labels = 3, .histograms = hs, .n_histograms = (size_t)samples};
        strata_write_result res;
        write_reject rej;
        if (db_write(db, &ws, 1, false, &res, &rej, err)) {
            fprintf(stderr, "write: %s\n", err);
            return -1;
        }
    }
    *end_ms = (samples - 1) * 15000;
    free(hs);
    free(counts);
    return 0;
}

typedef struct hq {
    const char *expr;
    bool range; /* the last hour at 60 s, else instant at the end */
} hq;

int main(int argc, char **argv)
{
    long series = 200;
    double hours = 6;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--series"))
            series = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--hours"))
            hours = strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--runs"))
            runs = (int)strtol(argv[i + 1], NULL, 10);
    }
    char dir[] = "/tmp/bench-hist-query-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE];
    if (strata_open(dir, &o, &db, err)) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    int64_t end;
    double t0 = now_ms();
    if (load(db, series, hours, &end)) return 1;
    printf("loaded %ld series x %.1f h of histograms (%d buckets) in %.0f ms\n\n", series, hours,
           BUCKETS + 1, now_ms() - t0);
    static const hq qs[] = {
        {"http_request_duration_seconds", false},
        {"histogram_count(rate(http_request_duration_seconds[5m]))", false},
        {"sum by (job) (rate(http_request_duration_seconds[5m]))", false},
        {"histogram_quantile(0.99, sum by (job) (rate(http_request_duration_seconds[5m])))", false},
        {"histogram_quantile(0.99, sum by (job) (rate(http_request_duration_seconds[5m])))", true},
        {"sum_over_time(http_request_duration_seconds[1h])", false},
    };
    printf(
        "| query | kind | median ms | min ms | peak RSS growth MiB |\n|---|---|---:|---:|---:|\n");
    double *t = calloc((size_t)runs, sizeof *t);
    for (size_t q = 0; q < sizeof qs / sizeof *qs; q++) {
        long rss0 = peak_rss_kb();
        for (int r = -1; r < runs; r++) {
            promql_result *res = NULL;
            double s = now_ms();
            int rc = qs[q].range ? promql_eval_range(db, qs[q].expr, end - 3600000, end, 60000,
                                                     NULL, &res, err)
                                 : promql_eval_instant(db, qs[q].expr, end, NULL, &res, err);
            double d = now_ms() - s;
            if (rc) {
                fprintf(stderr, "%s: %s\n", qs[q].expr, err);
                return 1;
            }
            promql_result_free(res);
            if (r >= 0) t[r] = d;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        printf("| `%s` | %s | %.1f | %.1f | %.1f |\n", qs[q].expr,
               qs[q].range ? "range 1 h / 60 s" : "instant", t[runs / 2], t[0],
               (double)(peak_rss_kb() - rss0) / 1024.0);
    }
    free(t);
    strata_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return 0;
}
