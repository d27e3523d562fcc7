/*
 * bench_query.c: PromQL query latency and memory on the load generator's data (issue 3).
 *
 *   bench_query [--strata PATH] [--data DIR] [--series N] [--hours H] [--runs R] [--query Q]
 *
 * Unless DIR already holds a loaded database (a file DIR/.bench-loaded written after a load),
 * it starts `strata serve` on DIR, pushes N series x H hours at 15 s from `strata bench ingest`
 * (the same deterministic node_exporter-like hosts the ingest benchmarks use, ending at a fixed
 * time so every run queries the same data) and stops the server. Then it opens DIR in this
 * process and runs each query R times after one warm-up: the median and the fastest wall time,
 * the peak resident memory during the query (VmHWM reset through /proc/self/clear_refs before
 * it) and the resident memory before it, so the query's own share is the difference. Queries go
 * through promql_eval_* (the engine, without HTTP and JSON). --match runs only the built-in
 * queries whose name or expression contains TEXT; --query runs one expression instead (as an
 * instant query at the end of the data).
 */
#include "query/query.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define END_MS 1764000000000LL /* 2025-11-24 16:00 UTC: the data's last sample */

typedef struct bench_query {
    const char *name;
    const char *expr;
    int64_t range_ms; /* 0: instant query at END_MS */
    int64_t step_ms;
    bool sequential; /* promql_options.sequential_steps: no split of the steps over threads */
} bench_query;

static const bench_query queries[] = {
    {"rate by job", "sum by (job) (rate(http_requests_total[5m]))", 0, 0, false},
    {"rate by job, 1 h @ 60 s", "sum by (job) (rate(http_requests_total[5m]))", 3600000, 60000,
     false},
    {"cpu rate by instance, 1 h @ 60 s",
     "sum by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))", 3600000, 60000, false},
    {"topk", "topk(10, rate(node_network_receive_bytes_total[5m]))", 0, 0, false},
    {"topk, 1 h @ 60 s", "topk(5, rate(node_network_receive_bytes_total[5m]))", 3600000, 60000,
     false},
    {"histogram_quantile over classic buckets",
     "histogram_quantile(0.99, sum by (le, handler) "
     "(rate(http_request_duration_seconds_bucket[5m])))",
     0, 0, false},
    {"histogram_quantile per instance, 1 h @ 60 s",
     "histogram_quantile(0.9, rate(http_request_duration_seconds_bucket[5m]))", 3600000, 60000,
     false},
    {"regex selector, thousands of series", "count({__name__=~\"node_.+\"})", 0, 0, false},
    {"regex name selector, count by job", "count by (job) ({__name__=~\".+_total\"})", 0, 0, false},
    {"regex label selector, rate sum",
     "sum(rate(node_cpu_seconds_total{mode=~\"user|system|iowait|irq|softirq|steal\"}[5m]))", 0, 0,
     false},
    {"repeated subexpression (read once)",
     "sum(rate(http_requests_total[5m])) / count(rate(http_requests_total[5m]))", 3600000, 60000,
     false},
    {"same, second selector spelled differently (read twice)",
     "sum(rate(http_requests_total[5m])) / count(rate(http_requests_total{job=~\"api\"}[5m]))",
     3600000, 60000, false},
    {"100 series, 24 h @ 60 s, steps split over threads", "quantile_over_time(0.9, node_load1[1h])",
     86400000, 60000, false},
    {"same, one pass over the steps", "quantile_over_time(0.9, node_load1[1h])", 86400000, 60000,
     true},
    {"100 series rate, 24 h @ 60 s, steps split over threads",
     "sum(rate(node_context_switches_total[5m]))", 86400000, 60000, false},
    {"same, one pass over the steps", "sum(rate(node_context_switches_total[5m]))", 86400000, 60000,
     true},
    {"100 series raw (never split: no windows), 24 h @ 60 s", "node_load1", 86400000, 60000, false},
    {"same, one pass over the steps", "node_load1", 86400000, 60000, true},
    {"long range: rate by job, 24 h @ 60 s", "sum by (job) (rate(http_requests_total[5m]))",
     86400000, 60000, false},
    {"every series, 24 h @ 60 s", "count by (job) (last_over_time({__name__=~\".+\"}[5m]))",
     86400000, 60000, false},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A field of /proc/self/status in kB (VmRSS, VmHWM); -1 when unreadable. */
static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (Linux: "5" into clear_refs); false when not permitted. */
static bool reset_peak(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY);
    if (fd < 0) return false;
    bool ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

/* CPU seconds of this process, all threads. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static pid_t spawn(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

static int wait_status(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Loads the data through the real server and load generator. */
static int load(const char *strata, const char *dir, long series, double hours)
{
    char listen[32], url[96], series_s[32], hours_s[32], end_s[32];
    int port = 20000 + (int)(getpid() % 20000);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(url, sizeof url, "http://%s/api/v1/write", listen);
    snprintf(series_s, sizeof series_s, "%ld", series);
    snprintf(hours_s, sizeof hours_s, "%g", hours);
    snprintf(end_s, sizeof end_s, "%lld", (long long)END_MS);
    char *serve[] = {(char *)strata,
                     "serve",
                     "--data-dir",
                     (char *)dir,
                     "--listen",
                     listen,
                     "--self-scrape-interval",
                     "0",
                     "--grpc-listen",
                     "off",
                     "--wal-fsync",
                     "none",
                     NULL};
    pid_t srv = spawn(serve);
    if (srv < 0) return -1;
    sleep(2); /* the server opens an empty directory in well under a second */
    char *ingest[] = {(char *)strata, "bench",           "ingest",  "--url", url,
                      "--series",     series_s,          "--hours", hours_s, "--end-ms",
                      end_s,          "--max-memory-mb", "512",     NULL};
    double t0 = now_s();
    int rc = wait_status(spawn(ingest));
    fprintf(stderr, "load: %ld series x %g h in %.1f s (exit %d)\n", series, hours, now_s() - t0,
            rc);
    kill(srv, SIGTERM);
    int src = wait_status(srv);
    if (rc || src) {
        fprintf(stderr, "load failed: ingest %d, server %d\n", rc, src);
        return -1;
    }
    char marker[1100];
    snprintf(marker, sizeof marker, "%s/.bench-loaded", dir);
    FILE *f = fopen(marker, "w");
    if (f) {
        fprintf(f, "%ld %g\n", series, hours);
        fclose(f);
    }
    return 0;
}

static int run_query(strata_db *db, const bench_query *q, int runs)
{
    promql_options o;
    promql_options_init(&o);
    o.max_samples = 1000000000; /* the 24 h queries read every sample of every series */
    o.timeout_ms = 600000;
    o.sequential_steps = q->sequential;
    char err[STRATA_ERRMSG_SIZE] = "";
    double *t = calloc((size_t)runs, sizeof *t), *cpu = calloc((size_t)runs, sizeof *cpu);
    if (!t || !cpu) {
        free(t);
        free(cpu);
        return -1;
    }
    long before = status_kb("VmRSS"), peak = 0;
    size_t n_series = 0;
    for (int r = -1; r < runs; r++) {
        bool peak_ok = reset_peak();
        promql_result *res = NULL;
        double t0 = now_s(), c0 = cpu_s();
        int rc = q->range_ms ? promql_eval_range(db, q->expr, END_MS - q->range_ms, END_MS,
                                                 q->step_ms, &o, &res, err)
                             : promql_eval_instant(db, q->expr, END_MS, &o, &res, err);
        double dt = now_s() - t0, dc = cpu_s() - c0;
        if (rc) {
            fprintf(stderr, "%s: %s\n", q->expr, err);
            free(t);
            free(cpu);
            return -1;
        }
        long hwm = status_kb("VmHWM");
        if (peak_ok && hwm > peak) peak = hwm;
        n_series = res->n_series;
        promql_result_free(res);
        if (r >= 0) {
            t[r] = dt;
            cpu[r] = dc;
        }
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
    double med = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
    double cmed = runs % 2 ? cpu[runs / 2] : (cpu[runs / 2 - 1] + cpu[runs / 2]) / 2;
    printf("| %s | `%s` | %s | %zu | %.2f | %.2f | %.2f | %.0f | %.0f |\n", q->name, q->expr,
           q->range_ms ? (q->range_ms >= 86400000 ? "24 h range" : "1 h range") : "instant",
           n_series, med * 1000, t[0] * 1000, cmed * 1000, (double)before / 1024,
           (double)peak / 1024);
    fflush(stdout);
    free(t);
    free(cpu);
    return 0;
}

int main(int argc, char **argv)
{
    char strata[1024], dir[1024] = "";
    long series = 10000;
    double hours = 24;
    int runs = 5;
    const char *only = NULL, *match = NULL;
    snprintf(strata, sizeof strata, "%s", argv[0]);
    char *slash = strrchr(strata, '/');
    snprintf(slash ? slash + 1 : strata, sizeof strata - (size_t)(slash ? slash + 1 - strata : 0),
             "strata");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--strata") && v)
            snprintf(strata, sizeof strata, "%s", argv[++i]);
        else if (!strcmp(a, "--data") && v)
            snprintf(dir, sizeof dir, "%s", argv[++i]);
        else if (!strcmp(a, "--series") && v)
            series = strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--hours") && v)
            hours = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--runs") && v)
            runs = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(a, "--match") && v)
            match = argv[++i];
        else if (!strcmp(a, "--query") && v)
            only = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--strata PATH] [--data DIR] [--series N] [--hours H] "
                    "[--runs R] [--match TEXT] [--query EXPR]\n",
                    argv[0]);
            return 2;
        }
    }
    if (series <= 0 || hours <= 0 || runs <= 0) {
        fprintf(stderr, "--series, --hours and --runs must be positive\n");
        return 2;
    }
    if (!dir[0]) snprintf(dir, sizeof dir, "bench-query-data-%ld-%g", series, hours);
    char marker[1100];
    snprintf(marker, sizeof marker, "%s/.bench-loaded", dir);
    struct stat st;
    if (stat(marker, &st) != 0) {
        mkdir(dir, 0755);
        if (load(strata, dir, series, hours)) return 1;
    }
    strata_options so;
    strata_options_init(&so);
    char err[STRATA_ERRMSG_SIZE];
    strata_db *db;
    double t0 = now_s();
    if (strata_open(dir, &so, &db, err)) {
        fprintf(stderr, "open %s: %s\n", dir, err);
        return 1;
    }
    printf("Data: %ld series x %g h at 15 s from `strata bench ingest`, opened in %.1f s; "
           "RSS after open %.0f MiB. %d runs after one warm-up.\n\n",
           series, hours, now_s() - t0, (double)status_kb("VmRSS") / 1024, runs);
    printf("| query | expression | kind | series out | median ms | min ms | median CPU ms | RSS "
           "before MiB | peak RSS MiB |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    int rc = 0;
    if (only) {
        bench_query q = {"custom", only, 0, 0, false};
        rc = run_query(db, &q, runs);
    } else {
        for (size_t i = 0; i < sizeof queries / sizeof queries[0] && !rc; i++)
            if (!match || strstr(queries[i].name, match) || strstr(queries[i].expr, match))
                rc = run_query(db, &queries[i], runs);
    }
    strata_close(db);
    return rc ? 1 : 0;
}
