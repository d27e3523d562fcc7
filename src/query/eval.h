/*
 * eval.h: the evaluator's value model, shared by the files that implement node kinds (selectors
 * and dispatch in eval.c, functions in functions.c, operators and aggregations in operators.c).
 *
 * Every node is evaluated for all steps of the query at once, as Prometheus' engine does: an
 * instant vector is a list of series, each with a dense array of values over the steps and a
 * presence flag per step, so operators and aggregations work step by step across series without
 * searching. Memory lives in the query's arena and dies with it; labels may point at the head's
 * interned strings, which outlive any query.
 */
#ifndef STRATA_QUERY_EVAL_H
#define STRATA_QUERY_EVAL_H

#include "query/ast.h"

typedef enum vtype { V_SCALAR, V_VECTOR, V_MATRIX, V_STRING } vtype;

typedef struct vseries {
    label *labels;
    size_t n_labels;
    /* V_VECTOR: dense over the steps */
    double *v;
    uint8_t *has;
    /* V_MATRIX: raw samples (instant queries of range vectors, and function windows) */
    strata_sample *pts;
    size_t n_pts;
    /* Native histograms (histogram.h). V_VECTOR: the histogram at each step where the value is
     * one (NULL where it is a float; the array itself is NULL while no step holds one). V_MATRIX:
     * the histogram samples, in time order, beside the float samples in pts. */
    native_histogram **h;
    hist_sample *hpts;
    size_t n_hpts;
    /* Delayed name removal: the metric name and metadata labels go when the query ends. */
    bool drop_name;
} vseries;

typedef struct value {
    vtype type;
    vseries *s;
    size_t n;
    double *scalar; /* V_SCALAR: one per step */
    char *str;
    bool ordered;
} value;

typedef struct eval_cache eval_cache;

typedef struct eval_ctx {
    strata_db *db;
    const promql_options *o;
    int64_t start, end, step; /* step > 0; an instant query has start == end */
    size_t n_steps;
    int64_t query_start, query_end; /* for @ start() / end() inside subqueries */
    int64_t query_step;             /* the outer query's step (0 for an instant query) */
    uint64_t deadline_ns;
    _Atomic uint64_t *samples; /* shared by the query's subqueries and parallel workers */
    arena *mem;
    char *err;
    int depth;
    /* The histogram samples of the series a series_fn is called for (the callback's signature
     * predates histograms); set by the reader for each call, per worker. */
    const hist_sample *cur_hists;
    size_t cur_n_hists;
    struct eval_cache *cache; /* repeated subexpressions of the query (cache.c); may be NULL */
} eval_ctx;

static inline int64_t step_time(const eval_ctx *c, size_t i)
{
    return c->start + (int64_t)i * c->step;
}

int eval_node(eval_ctx *c, const promql_expr *e, value *out);

/* Allocation in the query arena; NULL sets err (ENOMEM). */
void *eval_alloc(eval_ctx *c, size_t n);
/* A new vector series with room for every step, labels copied by reference. */
vseries *vec_add(eval_ctx *c, value *v, size_t *cap, const label *ls, size_t nl);
int eval_check(eval_ctx *c); /* deadline */
/* Makes step i of s the histogram h (the pointer is kept; h lives in the arena). */
int vec_set_hist(eval_ctx *c, vseries *s, size_t i, native_histogram *h);
/* The histogram at step i of s, or NULL when the value there is a float (or absent). */
static inline native_histogram *vec_hist(const vseries *s, size_t i)
{
    return s->h ? s->h[i] : NULL;
}
int eval_count_samples(eval_ctx *c, size_t n);

/* Labels helpers (results in the arena). */
label *labels_without(eval_ctx *c, const label *ls, size_t n, const char *const *names, size_t nn,
                      bool drop_name, size_t *out_n);
label *labels_only(eval_ctx *c, const label *ls, size_t n, const char *const *names, size_t nn,
                   size_t *out_n);
label *labels_drop_name(eval_ctx *c, const label *ls, size_t n, size_t *out_n);
/* Drops s's metric name (and metadata labels) now, or only marks s under delayed name removal.
 * 0 or STRATA_ENOMEM. */
int vseries_drop_name(eval_ctx *c, vseries *s);
/* Whether the query runs with delayed name removal (promql_options.delayed_name_removal). */
bool eval_delays_names(const eval_ctx *c);
label *labels_set(eval_ctx *c, const label *ls, size_t n, const char *name, const char *value,
                  size_t vlen, size_t *out_n);
/* Fails with the Prometheus message if two series of v have the same labels at one step. */
int vec_check_duplicates(eval_ctx *c, const value *v);

/* Per-series work for eval_parallel_series: turn one series' samples into zero or one output
 * series of out (through vec_add on wc, the worker's context). */
typedef int (*series_fn)(eval_ctx *wc, void *arg, const label *ls, size_t nl,
                         const strata_sample *ss, size_t ns, value *out, size_t *cap);

/* Runs fn over every series of set, split across worker threads when there are enough series to
 * pay for them, and appends the outputs to out (a V_VECTOR) in the set's order. */
int eval_parallel_series(eval_ctx *c, series_set *set, series_fn fn, void *arg, value *out);
/* The same for per-step windows of window_ms (range functions): few series over many steps with
 * long windows are split by steps across the workers instead, each worker reading every series. */
int eval_parallel_windows(eval_ctx *c, series_set *set, series_fn fn, void *arg, value *out,
                          int64_t window_ms);

int eval_call(eval_ctx *c, const promql_expr *e, value *out);
/* Whether the evaluator implements the function (the parser knows more than it does). */
bool eval_function_supported(const char *name);
/* Whether the evaluator implements the function (the parser knows more than it does). */
bool eval_function_supported(const char *name);
int eval_aggregation(eval_ctx *c, const promql_expr *e, value *out);
int eval_binary(eval_ctx *c, const promql_expr *e, value *out);

/* Range windows: the samples of each series for a matrix argument (range selector or subquery),
 * with the per-step window bounds the range functions use. */
typedef struct range_arg {
    value series;    /* V_MATRIX: all samples each series needs over the query */
    int64_t range_ms;
    int64_t offset_ms;
    const promql_expr *node; /* the N_MATRIX or N_SUBQUERY */
} range_arg;

int eval_range_arg(eval_ctx *c, const promql_expr *e, range_arg *out);
/* The evaluation time of a selector/subquery at step time t (@ and offset applied). */
int64_t eval_selector_time(const eval_ctx *c, const promql_expr *e, int64_t t);

/* Neumaier-compensated summation, as Prometheus sums; an infinite sum drops the compensation. */
static inline void kahan_sum_inc(double v, double *sum, double *c)
{
    double t = *sum + v;
    if (__builtin_isinf(t)) *c = 0;
    else if (__builtin_fabs(*sum) >= __builtin_fabs(v)) *c += (*sum - t) + v;
    else *c += (v - t) + *sum;
    *sum = t;
}

/* The mean of v[0..n) as Prometheus' avg aggregation computes it: a compensated sum while it
 * stays finite, then an incremental mean once the sum would overflow. */
static inline double prom_avg(const double *v, size_t n)
{
    double sum = v[0], c = 0, mean = v[0];
    bool incremental = false;
    for (size_t i = 1; i < n; i++) {
        double cnt = (double)(i + 1);
        if (!incremental) {
            double ns = sum, nc = c;
            kahan_sum_inc(v[i], &ns, &nc);
            if (!__builtin_isinf(ns)) {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (cnt - 1);
            c /= cnt - 1;
        }
        if (__builtin_isinf(mean)) {
            if (__builtin_isinf(v[i]) && (mean > 0) == (v[i] > 0)) continue;
            if (!__builtin_isinf(v[i]) && !__builtin_isnan(v[i])) continue;
        }
        double cur = mean + c;
        kahan_sum_inc(v[i] / cnt - cur / cnt, &mean, &c);
    }
    return incremental ? mean + c : sum / (double)n + c / (double)n;
}

/* avg_over_time's variant of the same idea (Prometheus scales the running mean instead). */
static inline double prom_avg_over_time(const double *v, size_t n)
{
    double sum = v[0], c = 0, mean = 0, cnt = 1;
    bool incremental = false;
    for (size_t i = 1; i < n; i++) {
        cnt = (double)(i + 1);
        if (!incremental) {
            double ns = sum, nc = c;
            kahan_sum_inc(v[i], &ns, &nc);
            if (!__builtin_isinf(ns)) {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (cnt - 1);
            c /= cnt - 1;
        }
        double q = (cnt - 1) / cnt;
        mean *= q;
        c *= q;
        kahan_sum_inc(v[i] / cnt, &mean, &c);
    }
    return incremental ? mean + c : sum / cnt + c / cnt;
}

#define STALE_NAN_BITS 0x7ff0000000000002ull
bool value_is_stale(double v);

#endif
