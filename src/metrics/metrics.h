/*
 * metrics.h: the public face of the metrics module: Strata's own atomic metrics.
 *
 * Counters, gauges and histograms are plain structs of C11 atomics that hot paths update without
 * locks. Exposition goes through a sink, so one walk over the metrics renders Prometheus' text
 * format for /metrics and also produces samples for self-ingestion, and the two can never drift.
 */
#ifndef STRATA_METRICS_H
#define STRATA_METRICS_H

#include "core/core.h"

typedef struct metric_counter {
    _Atomic uint64_t v;
} metric_counter;

typedef struct metric_gauge {
    _Atomic int64_t v;
} metric_gauge;

static inline void counter_add(metric_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}
static inline uint64_t counter_get(const metric_counter *c)
{
    return atomic_load_explicit(&((metric_counter *)c)->v, memory_order_relaxed);
}
static inline void gauge_set(metric_gauge *g, int64_t v)
{
    atomic_store_explicit(&g->v, v, memory_order_relaxed);
}
static inline void gauge_add(metric_gauge *g, int64_t v)
{
    atomic_fetch_add_explicit(&g->v, v, memory_order_relaxed);
}

#define METRIC_HISTOGRAM_MAX_BUCKETS 16

/* A histogram with fixed upper bounds (ascending, +Inf implicit). */
typedef struct metric_histogram {
    double bounds[METRIC_HISTOGRAM_MAX_BUCKETS];
    size_t n_bounds;
    _Atomic uint64_t counts[METRIC_HISTOGRAM_MAX_BUCKETS + 1];
    _Atomic uint64_t sum_bits; /* a double, updated by compare-and-swap */
    _Atomic uint64_t count;
} metric_histogram;

/* Initialises h with bounds (copied; at most METRIC_HISTOGRAM_MAX_BUCKETS). */
void histogram_init(metric_histogram *h, const double *bounds, size_t n);
/* The request-latency bounds Strata uses everywhere, in seconds. */
void histogram_init_latency(metric_histogram *h);
void histogram_observe(metric_histogram *h, double v);

/* Where exposition goes. family() announces a metric family before its samples; sample() gets
 * the full sample name (with _bucket/_sum/_count for histograms) and its labels. */
typedef struct metrics_sink {
    void *ctx;
    void (*family)(void *ctx, const char *name, const char *type, const char *help);
    void (*sample)(void *ctx, const char *name, const label *labels, size_t n, double v);
} metrics_sink;

void metrics_emit_family(const metrics_sink *s, const char *name, const char *type,
                         const char *help);
/* One sample; labels (may be NULL) need not include __name__. */
void metrics_emit(const metrics_sink *s, const char *name, const label *labels, size_t n, double v);
/* All series of a histogram: _bucket per bound with le, +Inf, _sum and _count. */
void metrics_emit_histogram(const metrics_sink *s, const char *name, const label *labels, size_t n,
                            const metric_histogram *h);

/* A sink that writes Prometheus' text exposition format (0.0.4) into b. */
typedef struct metrics_text {
    buf *out;
    char last_family[128];
} metrics_text;
metrics_sink metrics_text_sink(metrics_text *t, buf *out);

/* Process metrics from /proc/self: CPU seconds, RSS, virtual memory, open fds, start time,
 * threads, and the peak RSS (VmHWM) the benchmarks quote. */
void metrics_emit_process(const metrics_sink *s);

/* A convenience for literal label lists: LABEL("job", "strata"). */
#define LABEL(n, v) ((label){.name = (n), .value = (v), .name_len = sizeof(n) - 1, .value_len = (uint32_t)strlen(v)})

#endif
