/*
 * bench_exemplars.c: the cost of the exemplar store, for docs/benchmarks.md ("Exemplars"). A
 * program, not a test: times depend on the machine.
 *
 * A database (WAL fsync off, so the figures are the store and the WAL encoding, not the disk) with
 * S series gets exemplars in batches of B (one per series and batch, a 32-hex trace_id and a
 * 16-hex span_id, as OTLP sends them) until R rounds have been written with a store of C entries,
 * so eviction runs during most of it. Reported, as medians over the runs: ns per exemplar written
 * (validation, ring insert and eviction, WAL record), ns per exemplar returned by a query over the
 * whole store, and the time to replay the WAL at open.
 *
 * Usage: bench_exemplars [--runs N] [--series S] [--rounds R] [--capacity C]
 */
#include "storage/storage_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    int runs = 5, n_series = 1000, rounds = 200;
    uint32_t capacity = 100000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--series"))
            n_series = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--capacity"))
            capacity = (uint32_t)atoi(argv[i + 1]);
    }
    if (runs < 1 || runs > 100 || n_series < 1 || rounds < 1) {
        fprintf(stderr,
                "usage: bench_exemplars [--runs N] [--series S] [--rounds R] [--capacity C]\n");
        return 2;
    }
    double *write_ns = calloc((size_t)runs, sizeof(double));
    double *query_ns = calloc((size_t)runs, sizeof(double));
    double *replay_s = calloc((size_t)runs, sizeof(double));
    char(*jobs)[16] = calloc((size_t)n_series, 16);
    char(*traces)[33] = calloc((size_t)n_series, 33);
    label *series_labels = calloc((size_t)n_series * 2, sizeof(label));
    label *labels = calloc((size_t)n_series * 2, sizeof(label));
    write_exemplar *ex = calloc((size_t)n_series, sizeof(write_exemplar));
    strata_series *ss = calloc((size_t)n_series, sizeof(strata_series));
    strata_label *sl = calloc((size_t)n_series * 2, sizeof(strata_label));
    if (!write_ns || !query_ns || !replay_s || !jobs || !traces || !series_labels || !labels ||
        !ex || !ss || !sl)
        return 1;
    strata_sample one = {0, 1};
    for (int i = 0; i < n_series; i++) {
        snprintf(jobs[i], 16, "job-%d", i);
        series_labels[2 * i] =
            (label){.name = "__name__", .value = "m", .name_len = 8, .value_len = 1};
        series_labels[2 * i + 1] = (label){
            .name = "job", .value = jobs[i], .name_len = 3, .value_len = (uint32_t)strlen(jobs[i])};
        sl[2 * i] = (strata_label){"__name__", "m"};
        sl[2 * i + 1] = (strata_label){"job", jobs[i]};
        ss[i] = (strata_series){&sl[2 * i], 2, &one, 1};
    }
    uint64_t total = 0, returned = 0;
    for (int r = 0; r < runs; r++) {
        char dir[] = "/tmp/bench-exemplars-XXXXXX";
        if (!mkdtemp(dir)) return 1;
        strata_options o;
        strata_options_init(&o);
        o.fsync = STRATA_FSYNC_NONE;
        o.max_exemplars = capacity;
        strata_db *db;
        char err[STRATA_ERRMSG_SIZE];
        if (strata_open(dir, &o, &db, err) || strata_write(db, ss, (size_t)n_series, NULL, err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double t0 = now_s();
        total = 0;
        for (int round = 0; round < rounds; round++) {
            for (int i = 0; i < n_series; i++) {
                snprintf(traces[i], 33, "%08x%08x%08x%08x", (unsigned)round, (unsigned)i,
                         (unsigned)(round * 31 + i), 0xabcdef01u);
                labels[2 * i] =
                    (label){.name = "trace_id", .value = traces[i], .name_len = 8, .value_len = 32};
                labels[2 * i + 1] = (label){
                    .name = "span_id", .value = traces[i] + 16, .name_len = 7, .value_len = 16};
                ex[i] = (write_exemplar){.series = &series_labels[2 * i],
                                         .n_series = 2,
                                         .labels = &labels[2 * i],
                                         .n_labels = 2,
                                         .t = (int64_t)round * 15000,
                                         .v = round};
            }
            exemplar_write_result res;
            if (db_write_exemplars(db, ex, (size_t)n_series, &res, err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            total += res.written;
        }
        write_ns[r] = (now_s() - t0) * 1e9 / (double)total;
        const matcher *const *sets[1] = {NULL};
        size_t counts[1] = {0};
        exemplar_query_result q;
        t0 = now_s();
        if (db_query_exemplars(db, sets, counts, 1, INT64_MIN, INT64_MAX, &q, err)) return 1;
        returned = 0;
        for (size_t i = 0; i < q.n_series; i++)
            returned += q.series[i].n_points;
        query_ns[r] = (now_s() - t0) * 1e9 / (double)(returned ? returned : 1);
        exemplar_query_result_free(&q);
        strata_close(db);
        t0 = now_s();
        if (strata_open(dir, &o, &db, err)) return 1;
        replay_s[r] = now_s() - t0;
        strata_close(db);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd)) {
        }
    }
    printf("series %d, rounds %d, capacity %u: %llu exemplars written per run, %llu in the store\n",
           n_series, rounds, capacity, (unsigned long long)total, (unsigned long long)returned);
    printf("write: %.0f ns per exemplar (median of %d runs)\n", median(write_ns, runs), runs);
    printf("query over the whole store: %.0f ns per exemplar returned\n", median(query_ns, runs));
    printf("replay at open: %.3f s for %llu exemplars\n", median(replay_s, runs),
           (unsigned long long)total);
    free(write_ns);
    free(query_ns);
    free(replay_s);
    free(jobs);
    free(traces);
    free(series_labels);
    free(labels);
    free(ex);
    free(ss);
    free(sl);
    return 0;
}
