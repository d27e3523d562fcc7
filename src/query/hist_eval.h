/*
 * hist_eval.h: native histograms in the evaluator: reading them from storage, the range
 * functions, instant functions, operators and aggregations that take them, and their JSON.
 *
 * The float code paths (eval.c, functions.c, operators.c) call in here only where a value is a
 * histogram, so float-only queries run exactly as before. Semantics are Prometheus 3's: where
 * Prometheus drops a result with an annotation (floats mixed with histograms, incompatible
 * schemas, histograms given to a float-only function), the result is dropped here too.
 */
#ifndef STRATA_QUERY_HIST_EVAL_H
#define STRATA_QUERY_HIST_EVAL_H

#include "query/eval.h"
#include "query/histogram.h"

/* The histogram samples of the i-th series of set in its range (memory in c's arena); *n = 0
 * when it has none. 0 or a negative error. */
int eval_read_histograms(eval_ctx *c, const series_set *set, size_t i, hist_sample **out,
                         size_t *n);

/* As eval_read_histograms, into a (a reader's scratch arena, reset after each series: whatever
 * outlives the series' callback must be copied with hist_keep). */
int eval_read_histograms_in(eval_ctx *c, arena *a, const series_set *set, size_t i,
                            hist_sample **out, size_t *n);

/* A deep copy of h in c's arena, for a value that outlives the samples it came from; NULL (and
 * err set) when memory runs out. */
native_histogram *hist_keep(eval_ctx *c, const native_histogram *h);

/* hs without its staleness markers (which never enter a window): hs itself when it has none,
 * else a copy in c's arena. 0 or STRATA_ENOMEM. */
int hist_drop_stale(eval_ctx *c, const hist_sample *hs, size_t n, const hist_sample **out,
                    size_t *n_out);

/* The index of the newest sample at or before t, or -1. */
ssize_t hist_newest_at(const hist_sample *s, size_t n, int64_t t);

/* Unary minus on the histogram steps of s (copies; the originals may be shared). */
int hist_negate_series(eval_ctx *c, vseries *s);

/* [t,{"count":..,"sum":..,"buckets":[[rule,lower,upper,count],...]}] as Prometheus writes it. */
int hist_json_point(buf *b, const hist_sample *h);

/* Appends Prometheus' text form of h (FloatHistogram.String: "{count:20, sum:10, [-2,-1):2, ...}"),
 * which count_values uses as a label value. 0 or STRATA_ENOMEM. */
int hist_format(const native_histogram *h, buf *b);

/* ---- range functions --------------------------------------------------------------------------
 */

/* One window of a series that has histogram samples. */
typedef struct hist_window {
    const strata_sample *f;
    size_t nf;
    const hist_sample *h;
    size_t nh;
    int64_t t;        /* the window's end (evaluation time after @ and offset) */
    int64_t range_ms; /* the window is (t - range_ms, t] */
} hist_window;

/*
 * Evaluates the range function name over a window that holds at least one histogram. Returns 1
 * with the result in *f or, when *h is set, a histogram; 0 when there is no result; a negative
 * error. *handled is false for functions that look at floats only: the caller then runs its float
 * code over w->f alone.
 */
int hist_range_fn(eval_ctx *c, const char *name, const hist_window *w, double *f,
                  native_histogram **h, bool *handled);

/* Whether the range function returns histograms for histogram input (rate, sum_over_time, ...),
 * so its output keeps or drops __name__ like the float version. */
bool hist_range_fn_known(const char *name);

/* The histogram samples of h[0..n) with t in (lo, hi]: [*first, *end). */
void hist_window_of(const hist_sample *h, size_t n, int64_t lo, int64_t hi, size_t *first,
                    size_t *end);

/* The anchored/smoothed forms of rate, increase, delta (histograms only; a window that mixes
 * floats in has no result) and of changes and resets (both kinds, from the anchor sample) over a
 * window whose t is the range's end. Returns as hist_range_fn. */
int hist_extended_fn(eval_ctx *c, const char *fn, const hist_window *w, int64_t range_ms,
                     bool smoothed, double *f, native_histogram **h);

/* A smoothed instant selector's histogram at t from the samples around it (exact, interpolated,
 * or the previous one carried forward). 1 with *out set, 0 for none, or an error. */
int hist_smoothed_at(eval_ctx *c, const hist_sample *hs, size_t n, int64_t t,
                     native_histogram **out);

/* ---- instant functions ------------------------------------------------------------------------
 */

/* histogram_count, _sum, _avg, _stddev, _stdvar: the float of each histogram sample of in;
 * float samples are dropped. */
int hist_simple_fn(eval_ctx *c, const char *name, const value *in, value *out);

/* The native-histogram half of histogram_quantile (q, no q2) and histogram_fraction (q, q2):
 * appends one series per series of in that has histograms. */
int hist_quantile_fn(eval_ctx *c, const double *q, const double *q2, const value *in, value *out);

/* Where a native histogram and classic buckets (the same labels plus le) meet at a step, drops
 * both there, as Prometheus' histogram_quantile/_fraction do. Copies what it changes. */
int hist_drop_classic_conflicts(eval_ctx *c, value *in);

/* Drops the histogram steps of v (functions that only take floats ignore histograms). Returns a
 * copy of the series array when anything changes, so shared inputs stay intact. */
int hist_strip(eval_ctx *c, value *v);
/* Whether any step of any series of v (an instant vector) is a histogram. */
bool value_has_hist(const value *v);

/* ---- operators and aggregations ----------------------------------------------------------------
 */

/* A value that is a float or a histogram. */
typedef struct hval {
    double f;
    native_histogram *h;
} hval;

/*
 * Applies e's arithmetic or comparison operator when a or b (left, right) is a histogram.
 * Returns 1 with the result in *r, 2 when a filtering comparison keeps its vector's own value, 0
 * when there is no result (what Prometheus does not define: float + histogram, histogram <
 * anything, ...), or a negative error.
 */
int hist_binop(eval_ctx *c, const promql_expr *e, hval a, hval b, hval *r);

/*
 * One step of an aggregation (sum, avg, count, group, min, max, stddev, stdvar, quantile) over
 * the members of a group when at least one of them holds a histogram there. Returns 0 when no
 * member does (the float code runs), 1 when the step was handled (result set on os, or none), or
 * a negative error.
 */
int hist_agg_step(eval_ctx *c, const char *op, const value *in, const size_t *members,
                  size_t n_members, size_t i, double param, vseries *os);

#endif
