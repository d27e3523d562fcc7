/*
 * functions.c: PromQL's function library.
 *
 * Functions come in two shapes. Range functions (rate, *_over_time, ...) take a range vector and
 * compute one value per series per step from the samples in the step's window (t - range, t];
 * each series' samples are read once for the whole query and the window slides over them. Instant
 * functions (abs, clamp, label_replace, histogram_quantile, ...) map instant vectors. The table at
 * the bottom names each function with its argument types, so type errors are reported before any
 * data is read.
 */
#include "query/eval.h"
#include "query/hist_eval.h"
#include "query/cache.h"
#include "query/idxmap.h"
#include "query/natsort.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { A_SCALAR, A_VECTOR, A_MATRIX, A_STRING } arg_type;

/* ---- range functions ------------------------------------------------------------------------------ */

typedef struct window {
    const strata_sample *s;
    size_t n;
    int64_t t;        /* evaluation time after @ and offset */
    int64_t step_t;   /* the query step's own time */
    int64_t range_ms;
    double p1, p2;    /* scalar parameters at this step */
} window;

/* Returns false when the window has no result. */
typedef bool (*range_fn)(const window *w, double *out);


/* Prometheus' extrapolated rate, increase and delta. */
static bool extrapolated(const window *w, double *out, bool counter, bool rate)
{
    if (w->n < 2) return false;
    const strata_sample *s = w->s;
    size_t n = w->n;
    double result = s[n - 1].v - s[0].v;
    if (counter) {
        double prev = s[0].v;
        for (size_t i = 1; i < n; i++) {
            if (s[i].v < prev) result += prev;
            prev = s[i].v;
        }
    }
    double range_start = (double)(w->t - w->range_ms) / 1000.0, range_end = (double)w->t / 1000.0;
    double to_start = (double)s[0].t / 1000.0 - range_start;
    double to_end = range_end - (double)s[n - 1].t / 1000.0;
    double sampled = (double)(s[n - 1].t - s[0].t) / 1000.0;
    double avg = sampled / (double)(n - 1);
    double threshold = avg * 1.1;
    double interval = sampled;
    if (to_start >= threshold) to_start = avg / 2;
    if (counter && result > 0 && s[0].v >= 0) {
        double to_zero = sampled * (s[0].v / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    interval += to_start;
    if (to_end >= threshold) to_end = avg / 2;
    interval += to_end;
    double factor = interval / sampled;
    if (rate) factor /= (double)w->range_ms / 1000.0;
    *out = result * factor;
    return true;
}

static bool fn_rate(const window *w, double *o) { return extrapolated(w, o, true, true); }
static bool fn_increase(const window *w, double *o) { return extrapolated(w, o, true, false); }
static bool fn_delta(const window *w, double *o) { return extrapolated(w, o, false, false); }

static bool instant_delta(const window *w, double *out, bool rate)
{
    if (w->n < 2) return false;
    const strata_sample *a = &w->s[w->n - 2], *b = &w->s[w->n - 1];
    double r = rate && b->v < a->v ? b->v : b->v - a->v;
    if (rate) {
        double dt = (double)(b->t - a->t) / 1000.0;
        if (dt == 0) return false;
        r /= dt;
    }
    *out = r;
    return true;
}

static bool fn_irate(const window *w, double *o) { return instant_delta(w, o, true); }
static bool fn_idelta(const window *w, double *o) { return instant_delta(w, o, false); }

/* Least-squares slope and intercept at intercept_t (seconds relative), Kahan-summed. */
static void linear_regression(const window *w, int64_t intercept_t, double *slope, double *icpt)
{
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    bool const_y = true;
    double y0 = w->s[0].v;
    for (size_t i = 0; i < w->n; i++) {
        double x = (double)(w->s[i].t - intercept_t) / 1000.0, y = w->s[i].v;
        if (y != y0) const_y = false;
        n += 1;
        kahan_sum_inc(x, &sx, &cx);
        kahan_sum_inc(y, &sy, &cy);
        kahan_sum_inc(x * y, &sxy, &cxy);
        kahan_sum_inc(x * x, &sx2, &cx2);
    }
    if (const_y && isfinite(y0)) {
        *slope = 0;
        *icpt = y0;
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / n, var = sx2 - sx * sx / n;
    *slope = cov / var;
    *icpt = sy / n - *slope * sx / n;
}

static bool fn_deriv(const window *w, double *o)
{
    if (w->n < 2) return false;
    double icpt;
    linear_regression(w, w->s[0].t, o, &icpt);
    return true;
}

static bool fn_predict_linear(const window *w, double *o)
{
    if (w->n < 2) return false;
    double slope, icpt;
    linear_regression(w, w->step_t, &slope, &icpt);
    *o = slope * w->p1 + icpt;
    return true;
}

static bool fn_changes(const window *w, double *o)
{
    if (!w->n) return false;
    double c = 0;
    for (size_t i = 1; i < w->n; i++) {
        double a = w->s[i - 1].v, b = w->s[i].v;
        if (a != b && !(isnan(a) && isnan(b))) c++;
    }
    *o = c;
    return true;
}

static bool fn_resets(const window *w, double *o)
{
    if (!w->n) return false;
    double c = 0;
    for (size_t i = 1; i < w->n; i++)
        if (w->s[i].v < w->s[i - 1].v) c++;
    *o = c;
    return true;
}

static bool fn_sum_over(const window *w, double *o)
{
    if (!w->n) return false;
    double s = 0, c = 0;
    for (size_t i = 0; i < w->n; i++) kahan_sum_inc(w->s[i].v, &s, &c);
    *o = isinf(s) ? s : s + c;
    return true;
}

static bool fn_avg_over(const window *w, double *o)
{
    if (!w->n) return false;
    double *v = malloc(w->n * sizeof *v);
    if (!v) return false;
    for (size_t i = 0; i < w->n; i++) v[i] = w->s[i].v;
    *o = prom_avg_over_time(v, w->n);
    free(v);
    return true;
}

static bool fn_count_over(const window *w, double *o)
{
    if (!w->n) return false;
    *o = (double)w->n;
    return true;
}

static bool minmax_over(const window *w, double *o, bool max)
{
    if (!w->n) return false;
    double r = w->s[0].v;
    for (size_t i = 1; i < w->n; i++) {
        double v = w->s[i].v;
        if ((max ? v > r : v < r) || isnan(r)) r = v;
    }
    *o = r;
    return true;
}

static bool fn_max_over(const window *w, double *o) { return minmax_over(w, o, true); }
static bool fn_min_over(const window *w, double *o) { return minmax_over(w, o, false); }

static bool fn_last_over(const window *w, double *o)
{
    if (!w->n) return false;
    *o = w->s[w->n - 1].v;
    return true;
}

static bool fn_first_over(const window *w, double *o)
{
    if (!w->n) return false;
    *o = w->s[0].v;
    return true;
}

static bool fn_ts_first(const window *w, double *o)
{
    if (!w->n) return false;
    *o = (double)w->s[0].t / 1000.0;
    return true;
}

static bool fn_ts_last(const window *w, double *o)
{
    if (!w->n) return false;
    *o = (double)w->s[w->n - 1].t / 1000.0;
    return true;
}

/* Timestamp of the (last) minimum or maximum sample; NaN values lose to any number. */
static bool ts_of_extreme(const window *w, double *o, bool max)
{
    if (!w->n) return false;
    size_t best = 0;
    for (size_t i = 1; i < w->n; i++) {
        double v = w->s[i].v, b = w->s[best].v;
        if ((max ? v >= b : v <= b) || isnan(b)) best = i;
    }
    *o = (double)w->s[best].t / 1000.0;
    return true;
}

static bool fn_ts_max(const window *w, double *o) { return ts_of_extreme(w, o, true); }
static bool fn_ts_min(const window *w, double *o) { return ts_of_extreme(w, o, false); }

static bool fn_present_over(const window *w, double *o)
{
    if (!w->n) return false;
    *o = 1;
    return true;
}

static bool variance_over(const window *w, double *o, bool sd)
{
    if (!w->n) return false;
    double mean = 0, cm = 0, aux = 0, ca = 0;
    for (size_t i = 0; i < w->n; i++) {
        double v = w->s[i].v, delta = v - (mean + cm);
        kahan_sum_inc(delta / (double)(i + 1), &mean, &cm);
        kahan_sum_inc(delta * (v - (mean + cm)), &aux, &ca);
    }
    double var = (aux + ca) / (double)w->n;
    *o = sd ? sqrt(var) : var;
    return true;
}

static bool fn_stddev_over(const window *w, double *o) { return variance_over(w, o, true); }
static bool fn_stdvar_over(const window *w, double *o) { return variance_over(w, o, false); }

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : -1;
    if (isnan(y)) return 1;
    return x < y ? -1 : x > y;
}

static bool fn_quantile_over(const window *w, double *o)
{
    if (!w->n) return false;
    double q = w->p1;
    if (isnan(q)) {
        *o = NAN;
        return true;
    }
    if (q < 0) {
        *o = -INFINITY;
        return true;
    }
    if (q > 1) {
        *o = INFINITY;
        return true;
    }
    double *v = malloc(w->n * sizeof *v);
    if (!v) return false;
    for (size_t i = 0; i < w->n; i++) v[i] = w->s[i].v;
    qsort(v, w->n, sizeof *v, cmp_dbl);
    double rank = q * (double)(w->n - 1);
    size_t lo = (size_t)floor(rank), hi = lo + 1 < w->n ? lo + 1 : lo;
    double wt = rank - floor(rank);
    *o = v[lo] * (1 - wt) + v[hi] * wt;
    free(v);
    return true;
}

static bool fn_mad_over(const window *w, double *o)
{
    if (!w->n) return false;
    for (size_t i = 0; i < w->n; i++)
        if (isnan(w->s[i].v)) {
            *o = NAN;
            return true;
        }
    double *v = malloc(w->n * sizeof *v);
    if (!v) return false;
    for (size_t i = 0; i < w->n; i++) v[i] = w->s[i].v;
    qsort(v, w->n, sizeof *v, cmp_dbl);
    double med = w->n % 2 ? v[w->n / 2] : (v[w->n / 2 - 1] + v[w->n / 2]) / 2;
    for (size_t i = 0; i < w->n; i++) v[i] = fabs(v[i] - med);
    qsort(v, w->n, sizeof *v, cmp_dbl);
    *o = w->n % 2 ? v[w->n / 2] : (v[w->n / 2 - 1] + v[w->n / 2]) / 2;
    free(v);
    return true;
}

static bool fn_double_exp_smoothing(const window *w, double *o)
{
    double sf = w->p1, tf = w->p2;
    if (w->n < 2) return false;
    if (!(sf > 0 && sf < 1) || !(tf > 0 && tf < 1)) return false; /* checked as an error earlier */
    double s0 = w->s[0].v, s1 = 0, b = w->s[1].v - w->s[0].v;
    for (size_t i = 1; i < w->n; i++) {
        double x = sf * w->s[i].v, y = (1 - sf) * (s0 + b);
        s1 = x + y;
        if (i > 1) b = tf * (s1 - s0) + (1 - tf) * b;
        s0 = s1;
    }
    *o = s0;
    return true;
}

/* ---- instant functions ------------------------------------------------------------------------------ */

typedef double (*math_fn)(double);

static double f_sgn(double v) { return v > 0 ? 1 : v < 0 ? -1 : v; }
static double f_deg(double v) { return v * 180 / M_PI; }
static double f_rad(double v) { return v * M_PI / 180; }
/* Go's math.Round: half away from zero. PromQL round(x) rounds half up: floor(x + 0.5). */

static const struct {
    const char *name;
    math_fn fn;
} math_fns[] = {
    {"abs", fabs},   {"ceil", ceil},   {"floor", floor}, {"exp", exp},     {"ln", log},
    {"log2", log2},  {"log10", log10}, {"sqrt", sqrt},   {"sgn", f_sgn},   {"acos", acos},
    {"acosh", acosh}, {"asin", asin},  {"asinh", asinh}, {"atan", atan},   {"atanh", atanh},
    {"cos", cos},    {"cosh", cosh},   {"sin", sin},     {"sinh", sinh},   {"tan", tan},
    {"tanh", tanh},  {"deg", f_deg},   {"rad", f_rad},
};

typedef enum { D_MINUTE, D_HOUR, D_DOW, D_DOM, D_DOY, D_DIM, D_MONTH, D_YEAR } date_part;

static double date_fn(double v, date_part p)
{
    if (isnan(v) || isinf(v)) return NAN;
    time_t t = (time_t)v;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return NAN;
    switch (p) {
    case D_MINUTE: return tm.tm_min;
    case D_HOUR: return tm.tm_hour;
    case D_DOW: return tm.tm_wday;
    case D_DOM: return tm.tm_mday;
    case D_DOY: return tm.tm_yday + 1;
    case D_MONTH: return tm.tm_mon + 1;
    case D_YEAR: return tm.tm_year + 1900;
    case D_DIM: {
        static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y = tm.tm_year + 1900;
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return days[tm.tm_mon] + (tm.tm_mon == 1 && leap);
    }
    }
    return NAN;
}

static const struct {
    const char *name;
    date_part part;
} date_fns[] = {
    {"minute", D_MINUTE}, {"hour", D_HOUR},   {"day_of_week", D_DOW}, {"day_of_month", D_DOM},
    {"day_of_year", D_DOY}, {"days_in_month", D_DIM}, {"month", D_MONTH}, {"year", D_YEAR},
};

/* ---- the function table ---------------------------------------------------------------------------- */

typedef struct fn_def {
    const char *name;
    arg_type args[6];
    int n_args;      /* required */
    int n_optional;  /* trailing optional arguments */
    bool variadic;   /* the last type repeats */
    arg_type ret;
    range_fn range;  /* range functions */
    bool keep_name;
} fn_def;

static const fn_def functions[] = {
    {"abs", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"absent", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"absent_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_present_over, false},
    {"acos", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"acosh", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"asin", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"asinh", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"atan", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"atanh", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"avg_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_avg_over, false},
    {"ceil", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"changes", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_changes, false},
    {"clamp", {A_VECTOR, A_SCALAR, A_SCALAR}, 3, 0, false, A_VECTOR, NULL, false},
    {"clamp_max", {A_VECTOR, A_SCALAR}, 2, 0, false, A_VECTOR, NULL, false},
    {"clamp_min", {A_VECTOR, A_SCALAR}, 2, 0, false, A_VECTOR, NULL, false},
    {"cos", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"cosh", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"count_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_count_over, false},
    {"day_of_month", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
    {"day_of_week", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
    {"day_of_year", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
    {"days_in_month", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
    {"deg", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"delta", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_delta, false},
    {"deriv", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_deriv, false},
    {"double_exponential_smoothing", {A_MATRIX, A_SCALAR, A_SCALAR}, 3, 0, false, A_VECTOR, fn_double_exp_smoothing, false},
    {"exp", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"first_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_first_over, true},
    {"floor", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"histogram_avg", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"histogram_count", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"histogram_fraction", {A_SCALAR, A_SCALAR, A_VECTOR}, 3, 0, false, A_VECTOR, NULL, false},
    {"histogram_quantile", {A_SCALAR, A_VECTOR}, 2, 0, false, A_VECTOR, NULL, false},
    {"histogram_quantiles", {A_VECTOR, A_STRING, A_SCALAR}, 3, 0, true, A_VECTOR, NULL, false},
    {"histogram_stddev", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"histogram_stdvar", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"histogram_sum", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"hour", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
    {"idelta", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_idelta, false},
    {"increase", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_increase, false},
    {"irate", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_irate, false},
    {"label_join", {A_VECTOR, A_STRING, A_STRING, A_STRING}, 3, 0, true, A_VECTOR, NULL, true},
    {"label_replace", {A_VECTOR, A_STRING, A_STRING, A_STRING, A_STRING}, 5, 0, false, A_VECTOR, NULL, true},
    {"last_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_last_over, true},
    {"ln", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"log10", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"log2", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"mad_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_mad_over, false},
    {"max_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_max_over, false},
    {"min_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_min_over, false},
    {"max_of", {A_SCALAR, A_SCALAR}, 1, 0, true, A_SCALAR, NULL, false},
    {"min_of", {A_SCALAR, A_SCALAR}, 1, 0, true, A_SCALAR, NULL, false},
    {"minute", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
    {"month", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
    {"end", {A_SCALAR}, 0, 0, false, A_SCALAR, NULL, false},
    {"pi", {A_SCALAR}, 0, 0, false, A_SCALAR, NULL, false},
    {"range", {A_SCALAR}, 0, 0, false, A_SCALAR, NULL, false},
    {"start", {A_SCALAR}, 0, 0, false, A_SCALAR, NULL, false},
    {"step", {A_SCALAR}, 0, 0, false, A_SCALAR, NULL, false},
    {"predict_linear", {A_MATRIX, A_SCALAR}, 2, 0, false, A_VECTOR, fn_predict_linear, false},
    {"present_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_present_over, false},
    {"quantile_over_time", {A_SCALAR, A_MATRIX}, 2, 0, false, A_VECTOR, fn_quantile_over, false},
    {"rad", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"rate", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_rate, false},
    {"resets", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_resets, false},
    {"round", {A_VECTOR, A_SCALAR}, 1, 1, false, A_VECTOR, NULL, false},
    {"scalar", {A_VECTOR}, 1, 0, false, A_SCALAR, NULL, false},
    {"sgn", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"sin", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"sinh", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"sort", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, true},
    {"sort_by_label", {A_VECTOR, A_STRING}, 1, 0, true, A_VECTOR, NULL, true},
    {"sort_by_label_desc", {A_VECTOR, A_STRING}, 1, 0, true, A_VECTOR, NULL, true},
    {"sort_desc", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, true},
    {"sqrt", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"stddev_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_stddev_over, false},
    {"stdvar_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_stdvar_over, false},
    {"sum_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_sum_over, false},
    {"tan", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"tanh", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"time", {A_SCALAR}, 0, 0, false, A_SCALAR, NULL, false},
    {"timestamp", {A_VECTOR}, 1, 0, false, A_VECTOR, NULL, false},
    {"ts_of_first_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_ts_first, false},
    {"ts_of_last_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_ts_last, false},
    {"ts_of_max_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_ts_max, false},
    {"ts_of_min_over_time", {A_MATRIX}, 1, 0, false, A_VECTOR, fn_ts_min, false},
    {"vector", {A_SCALAR}, 1, 0, false, A_VECTOR, NULL, false},
    {"year", {A_VECTOR}, 0, 1, false, A_VECTOR, NULL, false},
};

static const fn_def *find_fn(const char *name)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        if (!strcmp(functions[i].name, name)) return &functions[i];
    return NULL;
}

static const char *type_name(vtype t)
{
    return t == V_SCALAR ? "scalar" : t == V_VECTOR ? "instant vector" : t == V_MATRIX ? "range vector" : "string";
}

bool eval_function_supported(const char *name)
{
    return find_fn(name) != NULL;
}

/* The static type of an expression, for argument checks before evaluation. */
static arg_type static_type(const promql_expr *e)
{
    while (e->kind == N_PAREN) e = e->inner;
    switch (e->kind) {
    case N_NUMBER: return A_SCALAR;
    case N_STRING: return A_STRING;
    case N_MATRIX:
    case N_SUBQUERY: return A_MATRIX;
    case N_CALL: {
        const fn_def *f = find_fn(e->func);
        return f ? f->ret : A_VECTOR;
    }
    case N_UNARY: return static_type(e->inner);
    case N_BINARY: {
        arg_type l = static_type(e->lhs), r = static_type(e->rhs);
        return l == A_SCALAR && r == A_SCALAR ? A_SCALAR : A_VECTOR;
    }
    default: return A_VECTOR;
    }
}

/* ---- evaluation ------------------------------------------------------------------------------------ */

/* The labels absent() and absent_over_time() give their result: the equality matchers of a plain
 * selector (not __name__, and not a label matched twice), sorted by name; none otherwise. */
static int absent_labels(eval_ctx *c, const promql_expr *sel, label **out, size_t *n)
{
    while (sel->kind == N_PAREN) sel = sel->inner;
    *out = NULL;
    *n = 0;
    if (sel->kind != N_VECTOR && sel->kind != N_MATRIX) return 0;
    label *ls = eval_alloc(c, (sel->n_ms + 1) * sizeof *ls);
    if (!ls) return STRATA_ENOMEM;
    size_t nl = 0;
    for (size_t m = 0; m < sel->n_ms; m++) {
        const matcher *mt = sel->ms[m];
        if (mt->type != STRATA_MATCH_EQUAL || !strcmp(mt->name, LABEL_METRIC_NAME)) continue;
        bool dup = false;
        for (size_t m2 = 0; m2 < sel->n_ms; m2++)
            if (m2 != m && !strcmp(sel->ms[m2]->name, mt->name)) dup = true;
        if (dup) continue;
        size_t pos = nl++;
        while (pos > 0 && label_str_compare(ls[pos - 1].name, ls[pos - 1].name_len, mt->name,
                                            mt->name_len) > 0) {
            ls[pos] = ls[pos - 1];
            pos--;
        }
        ls[pos] = (label){.name = mt->name, .value = mt->value, .name_len = mt->name_len,
                          .value_len = mt->value_len};
    }
    *out = ls;
    *n = nl;
    return 0;
}

typedef struct range_job {
    const fn_def *f;
    const range_arg *ra;
    const double *p1, *p2;
} range_job;

/* One series of a range function: slide each step's window over its samples. */
static int range_series(eval_ctx *c, void *arg, const label *ls, size_t nl,
                        const strata_sample *ss, size_t ns, value *out, size_t *cap)
{
    const range_job *j = arg;
    int rc = eval_count_samples(c, ns);
    if (rc || (rc = eval_check(c))) return rc;
    /* Stale markers never enter a window; they are rare, so copy only when there is one. */
    strata_sample *clean = NULL;
    const strata_sample *pts = ss;
    size_t n = ns;
    for (size_t i = 0; i < ns; i++)
        if (value_is_stale(ss[i].v)) {
            clean = malloc(ns * sizeof *clean);
            if (!clean) return STRATA_ENOMEM;
            n = 0;
            for (size_t k = 0; k < ns; k++)
                if (!value_is_stale(ss[k].v)) clean[n++] = ss[k];
            pts = clean;
            break;
        }
    vseries *os = NULL;
    size_t lo = 0, hi = 0, hlo = 0, hhi = 0;
    const hist_sample *hs;
    size_t nh;
    if ((rc = hist_drop_stale(c, c->cur_hists, c->cur_n_hists, &hs, &nh))) {
        free(clean);
        return rc;
    }
    for (size_t i = 0; i < c->n_steps; i++) {
        int64_t t = eval_selector_time(c, j->ra->node, step_time(c, i));
        if (lo > 0 && lo < n && pts[lo - 1].t > t - j->ra->range_ms) lo = hi = 0;
        while (lo < n && pts[lo].t <= t - j->ra->range_ms) lo++;
        if (hi < lo) hi = lo;
        while (hi < n && pts[hi].t <= t) hi++;
        window w = {.s = pts + lo, .n = hi - lo, .t = t, .step_t = step_time(c, i),
                    .range_ms = j->ra->range_ms, .p1 = j->p1 ? j->p1[i] : 0,
                    .p2 = j->p2 ? j->p2[i] : 0};
        double r;
        native_histogram *rh = NULL;
        if (nh) {
            /* The same window over the histogram samples. */
            if (hlo > 0 && hlo < nh && hs[hlo - 1].t > t - j->ra->range_ms) hlo = hhi = 0;
            while (hlo < nh && hs[hlo].t <= t - j->ra->range_ms) hlo++;
            if (hhi < hlo) hhi = hlo;
            while (hhi < nh && hs[hhi].t <= t) hhi++;
        }
        if (hhi > hlo) {
            hist_window hw = {.f = w.s, .nf = w.n, .h = hs + hlo, .nh = hhi - hlo, .t = t,
                              .range_ms = j->ra->range_ms};
            bool handled;
            int hr = hist_range_fn(c, j->f->name, &hw, &r, &rh, &handled);
            if (hr < 0) {
                free(clean);
                return hr;
            }
            if (handled && !hr) continue;
            if (!handled && !j->f->range(&w, &r)) continue;
        } else if (!j->f->range(&w, &r)) {
            continue;
        }
        if (!os) {
            size_t nl2 = nl;
            bool drop = !j->f->keep_name && !eval_delays_names(c);
            label *l2 = drop ? labels_drop_name(c, ls, nl, &nl2) : (label *)ls;
            if ((drop && !l2) || !(os = vec_add(c, out, cap, l2, nl2))) {
                free(clean);
                return STRATA_ENOMEM;
            }
            os->drop_name = !j->f->keep_name && eval_delays_names(c);
        }
        if (rh) {
            if (vec_set_hist(c, os, i, rh)) {
                free(clean);
                return STRATA_ENOMEM;
            }
            continue;
        }
        os->v[i] = r;
        os->has[i] = 1;
    }
    free(clean);
    return 0;
}

static int eval_range_function(eval_ctx *c, const promql_expr *e, const fn_def *f,
                               const promql_expr *marg, const double *p1, const double *p2,
                               value *out)
{
    /* A range selector streams: one series' samples at a time straight from storage, so memory
     * is the output plus one series however many samples the windows cover. A subquery's inner
     * result is materialised first. */
    const promql_expr *node = marg;
    while (node->kind == N_PAREN) node = node->inner;
    range_arg ra;
    memset(&ra, 0, sizeof ra);
    series_set *set = NULL;
    int rc;
    if (node->kind == N_MATRIX && !eval_cache_shared(c, node)) {
        ra.node = node;
        ra.range_ms = node->range_ms;
        int64_t lo = eval_selector_time(c, node, c->start), hi = eval_selector_time(c, node, c->end);
        rc = db_select(c->db, (const matcher *const *)node->ms, node->n_ms, lo - node->range_ms + 1,
                       hi, &set, c->err);
    } else {
        rc = eval_range_arg(c, marg, &ra);
    }
    if (rc) return rc;
    out->type = V_VECTOR;
    size_t cap = 0;
    bool absent = !strcmp(f->name, "absent_over_time");
    uint8_t *any = absent ? calloc(c->n_steps, 1) : NULL;
    if (absent && !any) {
        series_set_free(set);
        return STRATA_ENOMEM;
    }
    if (!absent) {
        range_job job = {.f = f, .ra = &ra, .p1 = p1, .p2 = p2};
        if (set) {
            rc = eval_parallel_windows(c, set, range_series, &job, out, ra.range_ms);
            series_set_free(set);
        } else {
            /* A subquery's series are already materialised: slide the same windows over them. */
            for (size_t k = 0; k < ra.series.n && !rc; k++) {
                size_t before = out->n;
                c->cur_hists = ra.series.s[k].hpts;
                c->cur_n_hists = ra.series.s[k].n_hpts;
                rc = range_series(c, &job, ra.series.s[k].labels, ra.series.s[k].n_labels,
                                  ra.series.s[k].pts, ra.series.s[k].n_pts, out, &cap);
                c->cur_hists = NULL;
                c->cur_n_hists = 0;
                /* A name the subquery's expression dropped stays dropped (delayed removal). */
                if (!rc && out->n > before) out->s[before].drop_name |= ra.series.s[k].drop_name;
            }
        }
        if (rc == STRATA_ECORRUPT) return strata_errf(c->err, rc, "corrupt chunk in storage");
        if (rc) return rc;
        return f->keep_name ? 0 : vec_check_duplicates(c, out);
    }
    /* absent_over_time: which steps have at least one (non-stale) sample in any series' window. */
    strata_sample *buf_s = NULL;
    size_t scap = 0, nser = set ? series_set_count(set) : ra.series.n;
    for (size_t k = 0; k < nser; k++) {
        const strata_sample *pts;
        const hist_sample *hs;
        size_t n, nh;
        if (set) {
            const label *ls;
            size_t nl;
            hist_sample *h2 = NULL;
            int more = series_set_read(set, k, &ls, &nl, &buf_s, &scap, &n);
            if (more < 0 || (more = eval_read_histograms(c, set, k, &h2, &nh)) < 0) {
                rc = strata_errf(c->err, more, "corrupt chunk in storage");
                break;
            }
            pts = buf_s;
            hs = h2;
        } else {
            pts = ra.series.s[k].pts;
            n = ra.series.s[k].n_pts;
            hs = ra.series.s[k].hpts;
            nh = ra.series.s[k].n_hpts;
        }
        for (size_t i = 0; i < c->n_steps; i++) {
            if (any[i]) continue;
            int64_t t = eval_selector_time(c, ra.node, step_time(c, i));
            for (size_t j = 0; j < n && !any[i]; j++)
                if (pts[j].t > t - ra.range_ms && pts[j].t <= t && !value_is_stale(pts[j].v)) any[i] = 1;
            for (size_t j = 0; j < nh && !any[i]; j++)
                if (hs[j].t > t - ra.range_ms && hs[j].t <= t && !hist_is_stale(&hs[j].h)) any[i] = 1;
        }
        if ((rc = eval_check(c))) break;
    }
    free(buf_s);
    series_set_free(set);
    if (!rc) {
        label *ls;
        size_t nl;
        rc = absent_labels(c, ra.node, &ls, &nl);
        vseries *os = rc ? NULL : vec_add(c, out, &cap, ls, nl);
        if (!rc && !os) rc = STRATA_ENOMEM;
        for (size_t i = 0; !rc && i < c->n_steps; i++) {
            os->v[i] = 1;
            os->has[i] = !any[i];
        }
    }
    free(any);
    return rc;
}

/* histogram_quantile over classic buckets: series grouped by their labels without le. */
typedef struct bucket {
    double upper;
    double count;
} bucket;

static int cmp_bucket(const void *a, const void *b)
{
    double x = ((const bucket *)a)->upper, y = ((const bucket *)b)->upper;
    return x < y ? -1 : x > y;
}

static double bucket_quantile(double q, bucket *b, size_t n)
{
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    qsort(b, n, sizeof *b, cmp_bucket);
    if (n == 0 || !isinf(b[n - 1].upper) || b[n - 1].upper < 0) return NAN;
    /* Merge buckets with the same bound, then make the counts monotonic. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && b[k - 1].upper == b[i].upper) b[k - 1].count += b[i].count;
        else b[k++] = b[i];
    }
    n = k;
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (b[i].count > max) max = b[i].count;
        else b[i].count = max;
    }
    if (n < 2) return NAN;
    double obs = b[n - 1].count;
    if (obs == 0 || isnan(obs)) return NAN;
    double rank = q * obs;
    size_t i = 0;
    while (i < n - 1 && b[i].count < rank) i++;
    if (i == n - 1) return b[n - 2].upper;
    if (i == 0 && b[0].upper <= 0) return b[0].upper;
    double start = 0, end = b[i].upper, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].upper;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* The fraction of observations between lower and upper, interpolating linearly inside buckets
 * (the first bucket starts at 0 when its bound is positive, as histogram_quantile assumes). */
static double bucket_fraction(double lower, double upper, bucket *b, size_t n)
{
    qsort(b, n, sizeof *b, cmp_bucket);
    if (n == 0 || !isinf(b[n - 1].upper) || b[n - 1].upper < 0) return NAN;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && b[k - 1].upper == b[i].upper) b[k - 1].count += b[i].count;
        else b[k++] = b[i];
    }
    n = k;
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (b[i].count > max) max = b[i].count;
        else b[i].count = max;
    }
    double count = b[n - 1].count;
    if (count == 0 || isnan(lower) || isnan(upper)) return NAN;
    if (lower >= upper) return 0;
    double rank = 0, lower_rank = 0, upper_rank = 0;
    bool lower_set = false, upper_set = false;
    for (size_t i = 0; i < n; i++) {
        double lb = i > 0 ? b[i - 1].upper : (b[0].upper > 0 ? 0 : -INFINITY);
        double ub = b[i].upper;
        if (!lower_set && lb >= lower) {
            lower_rank = rank;
            lower_set = true;
        }
        if (!upper_set && lb >= upper) {
            upper_rank = rank;
            upper_set = true;
        }
        if (lower_set && upper_set) break;
        if (!lower_set && lb < lower && ub > lower) {
            /* No interpolation inside an infinitely wide bucket: the -Inf one counts whole. */
            lower_rank = isinf(lb)   ? b[i].count
                         : isinf(ub) ? rank
                                     : rank + (b[i].count - rank) * (lower - lb) / (ub - lb);
            lower_set = true;
        }
        if (!upper_set && lb < upper && ub > upper) {
            upper_rank = isinf(lb) || isinf(ub) ? (isinf(ub) ? rank : b[i].count)
                                                : rank + (b[i].count - rank) * (upper - lb) / (ub - lb);
            upper_set = true;
        }
        if (lower_set && upper_set) break;
        rank = b[i].count;
    }
    if (!lower_set || lower_rank > count) lower_rank = count;
    if (!upper_set || upper_rank > count) upper_rank = count;
    return (upper_rank - lower_rank) / count;
}

static int eval_histogram_buckets(eval_ctx *c, const double *q, const double *q2, bool fraction,
                                  value *in, value *out)
{
    out->type = V_VECTOR;
    size_t cap = 0;
    /* Group by all labels but le (the metric name included, as Prometheus groups: two metrics
     * whose buckets share the other labels are two histograms, whose results then collide). */
    const char *le = "le";
    size_t ng = 0;
    size_t *group = malloc((in->n + 1) * sizeof *group);
    size_t *members = malloc((in->n + 1) * sizeof *members); /* series ordered by group */
    size_t *gstart = malloc((in->n + 2) * sizeof *gstart);
    label **glabels = malloc((in->n + 1) * sizeof *glabels);
    size_t *gn = malloc((in->n + 1) * sizeof *gn);
    double *upper = malloc((in->n + 1) * sizeof *upper);
    bucket *bk = malloc((in->n + 1) * sizeof *bk);
    idx_map groups = {0};
    int rc = 0;
    if (!group || !members || !gstart || !glabels || !gn || !upper || !bk ||
        idx_map_init(&groups, in->n + 1))
        rc = STRATA_ENOMEM;
    for (size_t k = 0; k < in->n && !rc; k++) {
        uint32_t vl;
        const char *v = labels_get(in->s[k].labels, in->s[k].n_labels, le, &vl);
        group[k] = SIZE_MAX;
        if (!v) continue;
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(vl < 63 ? vl : 63), v);
        char *end;
        upper[k] = strtod(tmp, &end);
        if (!strcmp(tmp, "+Inf") || !strcmp(tmp, "Inf")) upper[k] = INFINITY;
        else if (*end || !vl) continue;
        size_t nl;
        const char *const skip[] = {"le"};
        label *ls = labels_without(c, in->s[k].labels, in->s[k].n_labels, skip, 1, false, &nl);
        if (!ls) {
            rc = STRATA_ENOMEM;
            break;
        }
        uint64_t h = labels_hash(ls, nl) | 1;
        bool found;
        size_t slot = idx_map_slot(&groups, h, &found);
        while (found && !labels_equal(glabels[groups.vals[slot]], gn[groups.vals[slot]], ls, nl)) {
            h = h * 0x100000001b3ull | 1;
            slot = idx_map_slot(&groups, h, &found);
        }
        if (!found) {
            glabels[ng] = ls;
            gn[ng] = nl;
            if ((rc = idx_map_put(&groups, slot, h, ng))) break;
            group[k] = ng++;
        } else {
            group[k] = groups.vals[slot];
        }
    }
    /* Members of each group, contiguous (counting sort by group). */
    if (!rc) {
        memset(gstart, 0, (ng + 2) * sizeof *gstart);
        for (size_t k = 0; k < in->n; k++)
            if (group[k] != SIZE_MAX) gstart[group[k] + 2]++;
        for (size_t g = 0; g < ng; g++) gstart[g + 2] += gstart[g + 1];
        for (size_t k = 0; k < in->n; k++)
            if (group[k] != SIZE_MAX) members[gstart[group[k] + 1]++] = k;
    }
    for (size_t g = 0; g < ng && !rc; g++) {
        size_t nl;
        label *ls = labels_drop_name(c, glabels[g], gn[g], &nl);
        vseries *os = ls ? vec_add(c, out, &cap, ls, nl) : NULL;
        if (!os) {
            rc = STRATA_ENOMEM;
            break;
        }
        for (size_t i = 0; i < c->n_steps; i++) {
            size_t m = 0;
            for (size_t x = gstart[g]; x < gstart[g + 1]; x++) {
                size_t k = members[x];
                if (in->s[k].has[i]) bk[m++] = (bucket){upper[k], in->s[k].v[i]};
            }
            if (!m) continue;
            os->v[i] = fraction ? bucket_fraction(q[i], q2[i], bk, m) : bucket_quantile(q[i], bk, m);
            os->has[i] = 1;
        }
    }
    free(group);
    free(members);
    free(gstart);
    free(glabels);
    free(gn);
    free(upper);
    free(bk);
    idx_map_free(&groups);
    return rc ? rc : vec_check_duplicates(c, out);
}

/* Expands $1, ${1}, $name and ${name} in a label_replace replacement. */
static int expand_replacement(eval_ctx *c, const char *repl, const char *subject, pcre2_code *re,
                              pcre2_match_data *md, char **out, size_t *out_len)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t count = pcre2_get_ovector_count(md);
    buf b = {0};
    for (const char *p = repl; *p;) {
        if (*p != '$') {
            buf_putc(&b, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            buf_putc(&b, '$');
            p++;
            continue;
        }
        bool brace = *p == '{';
        if (brace) p++;
        const char *s = p;
        while (*p && (isalnum((unsigned char)*p) || *p == '_')) p++;
        size_t nlen = (size_t)(p - s);
        if (brace) {
            if (*p != '}') {
                buf_putc(&b, '$');
                p = s - 1;
                buf_putc(&b, *p++);
                continue;
            }
            p++;
        }
        if (!nlen) {
            buf_putc(&b, '$');
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(nlen < 63 ? nlen : 63), s);
        int group = -1;
        bool numeric = true;
        for (size_t i = 0; i < nlen; i++)
            if (!isdigit((unsigned char)s[i])) numeric = false;
        if (numeric) group = atoi(name);
        else group = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
        if (group >= 0 && (uint32_t)group < count && ov[2 * group] != PCRE2_UNSET)
            buf_append(&b, subject + ov[2 * group], ov[2 * group + 1] - ov[2 * group]);
    }
    *out_len = b.len;
    *out = arena_strndup(c->mem, b.data ? (char *)b.data : "", b.len);
    buf_free(&b);
    return *out ? 0 : STRATA_ENOMEM;
}

static int eval_label_replace(eval_ctx *c, value *in, const char *dst, const char *repl,
                              const char *src, const char *regex, value *out)
{
    if (!label_name_valid(dst, (uint32_t)strlen(dst), STRATA_NAMES_UTF8))
        return strata_errf(c->err, STRATA_EEXEC, "invalid destination label name in label_replace(): %s", dst);
    buf pat = {0};
    buf_printf(&pat, "^(?:%s)$", regex);
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile(pat.data, pat.len, PCRE2_DOTALL | PCRE2_UTF, &ecode, &eoff, NULL);
    buf_free(&pat);
    if (!re) return strata_errf(c->err, STRATA_EEXEC, "invalid regular expression in label_replace(): %s", regex);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    *out = *in;
    int rc = 0;
    for (size_t k = 0; k < out->n && !rc; k++) {
        vseries *s = &out->s[k];
        uint32_t vl = 0;
        const char *v = labels_get(s->labels, s->n_labels, src, &vl);
        char *subj = arena_strndup(c->mem, v ? v : "", v ? vl : 0);
        if (!subj) {
            rc = STRATA_ENOMEM;
            break;
        }
        if (pcre2_match(re, (PCRE2_SPTR)subj, v ? vl : 0, 0, 0, md, NULL) < 0) continue;
        char *res;
        size_t rl;
        if ((rc = expand_replacement(c, repl, subj, re, md, &res, &rl))) break;
        s->labels = labels_set(c, s->labels, s->n_labels, arena_strndup(c->mem, dst, strlen(dst)),
                               res, rl, &s->n_labels);
        if (!s->labels) rc = STRATA_ENOMEM;
        if (!strcmp(dst, LABEL_METRIC_NAME)) s->drop_name = false; /* the name was set anew */
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc ? rc : vec_check_duplicates(c, out);
}

static int cmp_vs_value(const void *a, const void *b)
{
    double x = ((const vseries *)a)->v[0], y = ((const vseries *)b)->v[0];
    if (isnan(x)) return isnan(y) ? 0 : 1; /* NaN last */
    if (isnan(y)) return -1;
    return x < y ? -1 : x > y;
}

static int cmp_vs_value_desc(const void *a, const void *b)
{
    double x = ((const vseries *)a)->v[0], y = ((const vseries *)b)->v[0];
    if (isnan(x)) return isnan(y) ? 0 : 1;
    if (isnan(y)) return -1;
    return x > y ? -1 : x < y;
}

typedef struct sort_label_ctx {
    char **names;
    size_t n;
    bool desc;
} sort_label_ctx;

static int cmp_vs_labels(const void *a, const void *b, void *arg)
{
    const sort_label_ctx *sc = arg;
    const vseries *x = a, *y = b;
    for (size_t i = 0; i < sc->n; i++) {
        uint32_t xl = 0, yl = 0;
        const char *xv = labels_get(x->labels, x->n_labels, sc->names[i], &xl);
        const char *yv = labels_get(y->labels, y->n_labels, sc->names[i], &yl);
        if (!xv) xl = 0;
        if (!yv) yl = 0;
        if (xl == yl && (!xl || !memcmp(xv, yv, xl))) continue;
        int r = natural_less(xv ? xv : "", xl, yv ? yv : "", yl) ? -1 : 1;
        return sc->desc ? -r : r;
    }
    int r = labels_compare(x->labels, x->n_labels, y->labels, y->n_labels);
    return sc->desc ? -r : r;
}

/* Appends the native-histogram results of histogram_quantile/_fraction to the classic ones. */
static int eval_native_quantiles(eval_ctx *c, const double *q, const double *q2, value *in,
                                 value *out)
{
    value nat = {0};
    int rc = hist_quantile_fn(c, q, q2, in, &nat);
    if (rc || !nat.n) return rc;
    vseries *all = eval_alloc(c, (out->n + nat.n) * sizeof *all);
    if (!all) return STRATA_ENOMEM;
    if (out->n) memcpy(all, out->s, out->n * sizeof *all);
    memcpy(all + out->n, nat.s, nat.n * sizeof *all);
    out->s = all;
    out->n += nat.n;
    out->type = V_VECTOR;
    return vec_check_duplicates(c, out);
}

/* A quantile as a label value, as Prometheus' FormatOpenMetricsFloat writes it: Go's shortest
 * 'g' form, with ".0" added to whole numbers. */
static void openmetrics_float(double v, char *out, size_t len)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    int p = 1;
    for (; p < 17; p++) {
        snprintf(out, len, "%.*e", p - 1, v);
        if (strtod(out, NULL) == v) break;
    }
    snprintf(out, len, "%.*e", p - 1, v);
    int exp = atoi(strchr(out, 'e') + 1);
    if (exp < -4 || exp >= 6) return; /* exponent form, which needs no ".0" */
    snprintf(out, len, "%.*f", p - 1 - exp > 0 ? p - 1 - exp : 0, v);
    if (!strchr(out, '.')) strncat(out, ".0", len - strlen(out) - 1);
}

/* histogram_quantiles(v, "label", q1, q2, ...): histogram_quantile for each q, the q in a label. */
static int eval_histogram_quantiles(eval_ctx *c, const promql_expr *e, value *out)
{
    value in, lbl;
    int rc = eval_node(c, e->args[0], &in);
    if (!rc) rc = eval_node(c, e->args[1], &lbl);
    if (!rc) rc = hist_drop_classic_conflicts(c, &in);
    value classic = in;
    if (!rc) rc = hist_strip(c, &classic);
    if (rc) return rc;
    out->type = V_VECTOR;
    out->n = 0;
    size_t cap = 0;
    for (size_t a = 2; a < e->n_args && !rc; a++) {
        value q, part = {0};
        if ((rc = eval_node(c, e->args[a], &q))) break;
        rc = eval_histogram_buckets(c, q.scalar, NULL, false, &classic, &part);
        if (!rc && value_has_hist(&in)) rc = eval_native_quantiles(c, q.scalar, NULL, &in, &part);
        char qs[64];
        openmetrics_float(q.scalar[0], qs, sizeof qs);
        char *qv = arena_strndup(c->mem, qs, strlen(qs));
        if (!qv) rc = STRATA_ENOMEM;
        for (size_t k = 0; k < part.n && !rc; k++) {
            size_t nl;
            label *ls = labels_set(c, part.s[k].labels, part.s[k].n_labels, lbl.str, qv,
                                   strlen(qv), &nl);
            vseries *os = ls ? vec_add(c, out, &cap, ls, nl) : NULL;
            if (!os) {
                rc = STRATA_ENOMEM;
                break;
            }
            memcpy(os->v, part.s[k].v, c->n_steps * sizeof *os->v);
            memcpy(os->has, part.s[k].has, c->n_steps);
        }
    }
    return rc ? rc : vec_check_duplicates(c, out);
}

int eval_call(eval_ctx *c, const promql_expr *e, value *out)
{
    /* The parser checked the argument count and types against Prometheus' table. */
    const fn_def *f = find_fn(e->func);
    if (!f)
        return strata_errf(c->err, STRATA_EUNSUPPORTED, "function \"%s\" is not supported yet", e->func);
    /* Scalar parameters, evaluated per step. */
    if (f->range) {
        const promql_expr *marg = NULL;
        double *p[2] = {NULL, NULL};
        int np = 0;
        for (size_t i = 0; i < e->n_args; i++) {
            if (static_type(e->args[i]) == A_MATRIX) {
                marg = e->args[i];
                continue;
            }
            value pv;
            int rc = eval_node(c, e->args[i], &pv);
            if (rc) return rc;
            if (np < 2) p[np++] = pv.scalar;
        }
        if (!strcmp(f->name, "double_exponential_smoothing")) {
            for (size_t i = 0; i < c->n_steps; i++) {
                if (!(p[0][i] > 0 && p[0][i] < 1))
                    return strata_errf(c->err, STRATA_EEXEC,
                                       "invalid smoothing factor. Expected: 0 < sf < 1, got: %g", p[0][i]);
                if (!(p[1][i] > 0 && p[1][i] < 1))
                    return strata_errf(c->err, STRATA_EEXEC,
                                       "invalid trend factor. Expected: 0 < tf < 1, got: %g", p[1][i]);
            }
        }
        return eval_range_function(c, e, f, marg, p[0], p[1], out);
    }
    const char *name = f->name;
    if (!strcmp(name, "time")) {
        out->type = V_SCALAR;
        out->scalar = eval_alloc(c, c->n_steps * sizeof(double));
        if (!out->scalar) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) out->scalar[i] = (double)step_time(c, i) / 1000.0;
        return 0;
    }
    if (!strcmp(name, "pi") || !strcmp(name, "start") || !strcmp(name, "end") ||
        !strcmp(name, "step") || !strcmp(name, "range")) {
        /* Constants of the query: its own start, end, step and span, in seconds. */
        double v = !strcmp(name, "pi")      ? M_PI
                   : !strcmp(name, "start") ? (double)c->query_start / 1000.0
                   : !strcmp(name, "end")   ? (double)c->query_end / 1000.0
                   : !strcmp(name, "step")  ? (c->query_start == c->query_end ? 0 : (double)c->query_step / 1000.0)
                                            : (double)(c->query_end - c->query_start) / 1000.0;
        out->type = V_SCALAR;
        out->scalar = eval_alloc(c, c->n_steps * sizeof(double));
        if (!out->scalar) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) out->scalar[i] = v;
        return 0;
    }
    if (!strcmp(name, "timestamp")) {
        /* The timestamp of each sample a selector picked, not the step time. */
        const promql_expr *a = e->args[0];
        while (a->kind == N_PAREN) a = a->inner;
        if (a->kind == N_VECTOR) {
            int64_t lo = eval_selector_time(c, a, c->start), hi = eval_selector_time(c, a, c->end);
            series_set *set;
            int rc = db_select(c->db, (const matcher *const *)a->ms, a->n_ms,
                               lo - c->o->lookback_ms + 1, hi, &set, c->err);
            if (rc) return rc;
            out->type = V_VECTOR;
            size_t cap = 0, scap = 0, nser = series_set_count(set);
            strata_sample *ss = NULL;
            for (size_t si = 0; si < nser && rc >= 0; si++) {
                const label *ls;
                size_t nl, ns = 0, nh = 0;
                hist_sample *hs = NULL;
                if ((rc = series_set_read(set, si, &ls, &nl, &ss, &scap, &ns)) < 0) break;
                if (!rc) ns = 0;
                if ((rc = eval_read_histograms(c, set, si, &hs, &nh)) < 0) break;
                vseries *os = NULL;
                for (size_t i = 0; i < c->n_steps; i++) {
                    int64_t st = eval_selector_time(c, a, step_time(c, i));
                    ssize_t k = -1, kh = nh ? hist_newest_at(hs, nh, st) : -1;
                    for (size_t j = 0; j < ns && ss[j].t <= st; j++) k = (ssize_t)j;
                    int64_t t;
                    /* the newer of the float and the histogram sample, as the selector */
                    if (kh >= 0 && (k < 0 || hs[kh].t > ss[k].t)) {
                        if (hs[kh].t <= st - c->o->lookback_ms || hist_is_stale(&hs[kh].h)) continue;
                        t = hs[kh].t;
                    } else {
                        if (k < 0 || ss[k].t <= st - c->o->lookback_ms || value_is_stale(ss[k].v))
                            continue;
                        t = ss[k].t;
                    }
                    if (!os) {
                        size_t n2 = nl;
                        bool drop = !eval_delays_names(c);
                        label *l2 = drop ? labels_drop_name(c, ls, nl, &n2) : (label *)ls;
                        if ((drop && !l2) || !(os = vec_add(c, out, &cap, l2, n2))) {
                            free(ss);
                            series_set_free(set);
                            return STRATA_ENOMEM;
                        }
                        os->drop_name = eval_delays_names(c);
                    }
                    os->v[i] = (double)t / 1000.0;
                    os->has[i] = 1;
                }
            }
            free(ss);
            series_set_free(set);
            if (rc < 0) return rc;
            return vec_check_duplicates(c, out);
        }
    }
    if (!strcmp(name, "histogram_quantiles")) return eval_histogram_quantiles(c, e, out);
    value args[6];
    memset(args, 0, sizeof args);
    for (size_t i = 0; i < e->n_args && i < 6; i++) {
        int rc = eval_node(c, e->args[i], &args[i]);
        if (rc) return rc;
    }
    if (!strcmp(name, "timestamp")) {
        /* A computed vector's samples are stamped with the step time. */
        *out = args[0];
        for (size_t k = 0; k < out->n; k++) {
            vseries *sv = &out->s[k];
            if (vseries_drop_name(c, sv)) return STRATA_ENOMEM;
            for (size_t i = 0; i < c->n_steps; i++) sv->v[i] = (double)step_time(c, i) / 1000.0;
            sv->h = NULL; /* a histogram's timestamp is a float like any other */
        }
        return vec_check_duplicates(c, out);
    }
    if (!strcmp(name, "min_of") || !strcmp(name, "max_of")) {
        bool mx = !strcmp(name, "max_of");
        out->type = V_SCALAR;
        out->scalar = args[0].scalar;
        for (size_t i = 0; i < c->n_steps; i++) {
            double r = args[0].scalar[i];
            for (size_t a = 1; a < e->n_args && a < 6; a++) {
                double v = args[a].scalar[i];
                if (isnan(v) || isnan(r)) r = NAN;
                else if (mx ? v > r : v < r) r = v;
            }
            out->scalar[i] = r;
        }
        return 0;
    }
    if (!strcmp(name, "vector")) {
        out->type = V_VECTOR;
        size_t cap = 0;
        vseries *os = vec_add(c, out, &cap, NULL, 0);
        if (!os) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) {
            os->v[i] = args[0].scalar[i];
            os->has[i] = 1;
        }
        return 0;
    }
    if (!strcmp(name, "scalar")) {
        out->type = V_SCALAR;
        out->scalar = eval_alloc(c, c->n_steps * sizeof(double));
        if (!out->scalar) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) {
            size_t cnt = 0;
            double v = NAN;
            for (size_t k = 0; k < args[0].n; k++)
                if (args[0].s[k].has[i] && !vec_hist(&args[0].s[k], i)) {
                    cnt++;
                    v = args[0].s[k].v[i];
                }
            out->scalar[i] = cnt == 1 ? v : NAN;
        }
        return 0;
    }
    if (!strcmp(name, "absent")) {
        out->type = V_VECTOR;
        size_t cap = 0;
        label *ls;
        size_t nl;
        int rc = absent_labels(c, e->args[0], &ls, &nl);
        vseries *os = rc ? NULL : vec_add(c, out, &cap, ls, nl);
        if (!os) return rc ? rc : STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) {
            bool any = false;
            for (size_t k = 0; k < args[0].n && !any; k++) any = args[0].s[k].has[i];
            os->v[i] = 1;
            os->has[i] = !any;
        }
        return 0;
    }
    if (!strcmp(name, "histogram_quantile") || !strcmp(name, "histogram_fraction")) {
        /* Classic buckets from the float series, native histograms on their own. */
        bool fraction = !strcmp(name, "histogram_fraction");
        value *in = &args[fraction ? 2 : 1];
        const double *q2 = fraction ? args[1].scalar : NULL;
        int rc = hist_drop_classic_conflicts(c, in);
        value classic = *in;
        if (!rc) rc = hist_strip(c, &classic);
        if (!rc) rc = eval_histogram_buckets(c, args[0].scalar, q2, fraction, &classic, out);
        if (!rc && value_has_hist(in)) rc = eval_native_quantiles(c, args[0].scalar, q2, in, out);
        return rc;
    }
    if (!strncmp(name, "histogram_", 10)) return hist_simple_fn(c, name, &args[0], out);
    if (!strcmp(name, "label_replace"))
        return eval_label_replace(c, &args[0], args[1].str, args[2].str, args[3].str, args[4].str, out);
    if (!strcmp(name, "label_join")) {
        const char *dst = args[1].str, *sep = args[2].str;
        if (!label_name_valid(dst, (uint32_t)strlen(dst), STRATA_NAMES_UTF8))
            return strata_errf(c->err, STRATA_EEXEC, "invalid destination label name in label_join(): %s", dst);
        *out = args[0];
        for (size_t k = 0; k < out->n; k++) {
            vseries *s = &out->s[k];
            buf b = {0};
            for (size_t i = 3; i < e->n_args; i++) {
                value sv;
                int rc = eval_node(c, e->args[i], &sv);
                if (rc) {
                    buf_free(&b);
                    return rc;
                }
                if (i > 3) buf_append(&b, sep, strlen(sep));
                uint32_t vl = 0;
                const char *v = labels_get(s->labels, s->n_labels, sv.str, &vl);
                if (v) buf_append(&b, v, vl);
            }
            char *joined = arena_strndup(c->mem, b.data ? (char *)b.data : "", b.len);
            s->labels = labels_set(c, s->labels, s->n_labels, dst, joined, b.len, &s->n_labels);
            if (!strcmp(dst, LABEL_METRIC_NAME)) s->drop_name = false; /* the name was set anew */
            buf_free(&b);
            if (!joined || !s->labels) return STRATA_ENOMEM;
        }
        return vec_check_duplicates(c, out);
    }
    if (!strcmp(name, "sort") || !strcmp(name, "sort_desc")) {
        int rc = hist_strip(c, &args[0]); /* histograms have no order: dropped */
        if (rc) return rc;
        *out = args[0];
        if (c->n_steps == 1 && out->n > 1)
            qsort(out->s, out->n, sizeof *out->s, !strcmp(name, "sort") ? cmp_vs_value : cmp_vs_value_desc);
        out->ordered = true;
        return 0;
    }
    if (!strcmp(name, "sort_by_label") || !strcmp(name, "sort_by_label_desc")) {
        *out = args[0];
        sort_label_ctx sc = {.n = e->n_args - 1, .desc = !strcmp(name, "sort_by_label_desc")};
        sc.names = eval_alloc(c, (sc.n + 1) * sizeof *sc.names);
        if (!sc.names) return STRATA_ENOMEM;
        for (size_t i = 1; i < e->n_args && i < 6; i++) sc.names[i - 1] = args[i].str;
        if (out->n > 1) qsort_r(out->s, out->n, sizeof *out->s, cmp_vs_labels, &sc);
        out->ordered = true;
        return 0;
    }
    /* Element-wise functions over an instant vector (the date functions default to time()). */
    value in;
    if (e->n_args == 0) {
        in.type = V_VECTOR;
        in.n = 0;
        size_t cap = 0;
        vseries *os = vec_add(c, &in, &cap, NULL, 0);
        if (!os) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) {
            os->v[i] = (double)step_time(c, i) / 1000.0;
            os->has[i] = 1;
        }
    } else {
        in = args[0];
        /* Float functions ignore histogram samples, as Prometheus' do. */
        int rc = hist_strip(c, &in);
        if (rc) return rc;
    }
    if (in.type != V_VECTOR)
        return strata_errf(c->err, STRATA_EPARSE, "expected type instant vector in call to function "
                                                  "\"%s\", got %s", name, type_name(in.type));
    *out = in;
    out->ordered = false;
    for (size_t k = 0; k < out->n; k++) {
        vseries *s = &out->s[k];
        if (!f->keep_name && vseries_drop_name(c, s)) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!s->has[i]) continue;
            double v = s->v[i], r = v;
            if (!strcmp(name, "clamp")) {
                double lo = args[1].scalar[i], hi = args[2].scalar[i];
                if (lo > hi) {
                    s->has[i] = 0;
                    continue;
                }
                r = isnan(v) ? v : fmax(lo, fmin(hi, v));
                if (isnan(lo) || isnan(hi)) r = NAN;
            } else if (!strcmp(name, "clamp_max")) {
                double hi = args[1].scalar[i];
                r = isnan(v) || isnan(hi) ? NAN : fmin(hi, v);
            } else if (!strcmp(name, "clamp_min")) {
                double lo = args[1].scalar[i];
                r = isnan(v) || isnan(lo) ? NAN : fmax(lo, v);
            } else if (!strcmp(name, "round")) {
                double to = e->n_args > 1 ? args[1].scalar[i] : 1;
                double inv = 1.0 / to;
                r = floor(v * inv + 0.5) / inv;
            } else {
                bool done = false;
                for (size_t m = 0; m < sizeof math_fns / sizeof math_fns[0] && !done; m++)
                    if (!strcmp(math_fns[m].name, name)) {
                        r = math_fns[m].fn(v);
                        done = true;
                    }
                for (size_t d = 0; d < sizeof date_fns / sizeof date_fns[0] && !done; d++)
                    if (!strcmp(date_fns[d].name, name)) {
                        r = date_fn(v, date_fns[d].part);
                        done = true;
                    }
                if (!done)
                    return strata_errf(c->err, STRATA_EUNSUPPORTED, "function \"%s\" is not supported yet", name);
            }
            s->v[i] = r;
        }
    }
    return f->keep_name ? 0 : vec_check_duplicates(c, out);
}
