/*
 * metrics.c: atomic histograms and the exposition of metrics through sinks.
 *
 * The text sink writes the Prometheus text format: # HELP and # TYPE once per family, label
 * values escaped (backslash, quote, newline), values formatted as Prometheus parses them.
 */
#include "metrics/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void histogram_init(metric_histogram *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof *h);
    if (n > METRIC_HISTOGRAM_MAX_BUCKETS) n = METRIC_HISTOGRAM_MAX_BUCKETS;
    memcpy(h->bounds, bounds, n * sizeof *bounds);
    h->n_bounds = n;
}

void histogram_init_latency(metric_histogram *h)
{
    static const double b[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                               0.05,   0.1,     0.25,   0.5,   1,      2.5,    5,     10};
    histogram_init(h, b, sizeof b / sizeof b[0]);
}

void histogram_observe(metric_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed), nw;
    do {
        double s;
        memcpy(&s, &old, sizeof s);
        s += v;
        memcpy(&nw, &s, sizeof nw);
    } while (!atomic_compare_exchange_weak(&h->sum_bits, &old, nw));
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void metrics_emit_family(const metrics_sink *s, const char *name, const char *type,
                         const char *help)
{
    if (s->family) s->family(s->ctx, name, type, help);
}

void metrics_emit(const metrics_sink *s, const char *name, const label *labels, size_t n, double v)
{
    s->sample(s->ctx, name, labels, n, v);
}

void metrics_emit_histogram(const metrics_sink *s, const char *name, const label *labels, size_t n,
                            const metric_histogram *h)
{
    char full[160];
    label lv[16];
    size_t nl = n < 15 ? n : 15;
    if (nl) memcpy(lv, labels, nl * sizeof *lv);
    uint64_t cum = 0;
    snprintf(full, sizeof full, "%s_bucket", name);
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&((metric_histogram *)h)->counts[i], memory_order_relaxed);
        char le[64];
        if (i < h->n_bounds) format_float(h->bounds[i], le, sizeof le);
        else snprintf(le, sizeof le, "+Inf");
        lv[nl] = (label){.name = "le", .value = le, .name_len = 2, .value_len = (uint32_t)strlen(le)};
        s->sample(s->ctx, full, lv, nl + 1, (double)cum);
    }
    uint64_t bits = atomic_load(&((metric_histogram *)h)->sum_bits);
    double sum;
    memcpy(&sum, &bits, sizeof sum);
    snprintf(full, sizeof full, "%s_sum", name);
    s->sample(s->ctx, full, labels, n, sum);
    snprintf(full, sizeof full, "%s_count", name);
    /* The count is the +Inf bucket, so a scrape never sees them disagree. */
    s->sample(s->ctx, full, labels, n, (double)cum);
}

static void text_family(void *ctx, const char *name, const char *type, const char *help)
{
    metrics_text *t = ctx;
    buf_printf(t->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void text_sample(void *ctx, const char *name, const label *labels, size_t n, double v)
{
    metrics_text *t = ctx;
    buf_append(t->out, name, strlen(name));
    if (n) {
        buf_putc(t->out, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) buf_putc(t->out, ',');
            buf_append(t->out, labels[i].name, labels[i].name_len);
            buf_append(t->out, "=\"", 2);
            for (uint32_t k = 0; k < labels[i].value_len; k++) {
                char c = labels[i].value[k];
                if (c == '\\') buf_append(t->out, "\\\\", 2);
                else if (c == '"') buf_append(t->out, "\\\"", 2);
                else if (c == '\n') buf_append(t->out, "\\n", 2);
                else buf_putc(t->out, c);
            }
            buf_putc(t->out, '"');
        }
        buf_putc(t->out, '}');
    }
    char num[64];
    if (v == (double)(int64_t)v && v > -1e15 && v < 1e15) snprintf(num, sizeof num, "%lld", (long long)v);
    else format_float(v, num, sizeof num);
    buf_printf(t->out, " %s\n", num);
}

metrics_sink metrics_text_sink(metrics_text *t, buf *out)
{
    t->out = out;
    t->last_family[0] = '\0';
    return (metrics_sink){.ctx = t, .family = text_family, .sample = text_sample};
}

static long read_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

void metrics_emit_process(const metrics_sink *s)
{
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char line[2048];
        if (fgets(line, sizeof line, f)) {
            /* Fields after the parenthesised command name; utime is field 14, stime 15,
             * num_threads 20, starttime 22, vsize 23, rss 24 (1-based). */
            char *p = strrchr(line, ')');
            unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
            long long threads = 0, rss = 0;
            if (p &&
                sscanf(p + 2,
                       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                       "%lld %*d %llu %llu %lld",
                       &utime, &stime, &threads, &start, &vsize, &rss) == 6) {
                double btime = 0;
                FILE *st = fopen("/proc/stat", "r");
                if (st) {
                    char l2[256];
                    while (fgets(l2, sizeof l2, st))
                        if (strncmp(l2, "btime ", 6) == 0) btime = strtod(l2 + 6, NULL);
                    fclose(st);
                }
                metrics_emit_family(s, "process_cpu_seconds_total", "counter",
                                    "Total user and system CPU time spent in seconds.");
                metrics_emit(s, "process_cpu_seconds_total", NULL, 0,
                             (double)(utime + stime) / (double)tck);
                metrics_emit_family(s, "process_resident_memory_bytes", "gauge",
                                    "Resident memory size in bytes.");
                metrics_emit(s, "process_resident_memory_bytes", NULL, 0, (double)rss * (double)page);
                metrics_emit_family(s, "process_virtual_memory_bytes", "gauge",
                                    "Virtual memory size in bytes.");
                metrics_emit(s, "process_virtual_memory_bytes", NULL, 0, (double)vsize);
                metrics_emit_family(s, "process_start_time_seconds", "gauge",
                                    "Start time of the process since unix epoch in seconds.");
                metrics_emit(s, "process_start_time_seconds", NULL, 0,
                             btime + (double)start / (double)tck);
                metrics_emit_family(s, "process_threads", "gauge", "Number of OS threads.");
                metrics_emit(s, "process_threads", NULL, 0, (double)threads);
            }
        }
        fclose(f);
    }
    long hwm = read_status_kb("VmHWM");
    if (hwm >= 0) {
        metrics_emit_family(s, "process_resident_memory_peak_bytes", "gauge",
                            "Peak resident memory size (VmHWM) in bytes.");
        metrics_emit(s, "process_resident_memory_peak_bytes", NULL, 0, (double)hwm * 1024.0);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') n++;
        closedir(d);
        metrics_emit_family(s, "process_open_fds", "gauge", "Number of open file descriptors.");
        metrics_emit(s, "process_open_fds", NULL, 0, (double)(n - 1));
    }
}
