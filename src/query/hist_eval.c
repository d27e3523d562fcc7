/*
 * hist_eval.c: native histograms in the evaluator (see hist_eval.h): range functions over
 * windows with histogram samples, histogram_* functions, operators, aggregations and JSON.
 *
 * Histograms handed around in vectors are shared by pointer (a selector's steps may all point at
 * one stored sample), so anything that changes a histogram works on a copy in the query arena.
 */
#include "query/hist_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int eval_read_histograms(eval_ctx *c, const series_set *set, size_t i, hist_sample **out, size_t *n)
{
    return eval_read_histograms_in(c, c->mem, set, i, out, n);
}

int eval_read_histograms_in(eval_ctx *c, arena *a, const series_set *set, size_t i,
                            hist_sample **out, size_t *n)
{
    int rc = series_set_read_histograms(set, i, a, out, n);
    if (rc == STRATA_ENOMEM) return strata_errf(c->err, rc, "out of memory");
    if (rc < 0) return rc;
    /* Prometheus' chunk iterators never hand out a counter-reset hint (the chunk before may be
     * gone or come later out of order), only "unknown" for a chunk's first sample, so PromQL
     * detects resets from the counts; a stored reset hint is read the same way here. */
    for (size_t k = 0; k < *n; k++)
        if ((*out)[k].h.reset_hint == HIST_HINT_RESET) (*out)[k].h.reset_hint = HIST_HINT_UNKNOWN;
    return 0;
}

int hist_drop_stale(eval_ctx *c, const hist_sample *hs, size_t n, const hist_sample **out,
                    size_t *n_out)
{
    *out = hs;
    *n_out = n;
    size_t stale = 0;
    for (size_t i = 0; i < n; i++)
        stale += hist_is_stale(&hs[i].h);
    if (!stale) return 0;
    hist_sample *v = eval_alloc(c, (n - stale ? n - stale : 1) * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!hist_is_stale(&hs[i].h)) v[k++] = hs[i];
    *out = v;
    *n_out = k;
    return 0;
}

ssize_t hist_newest_at(const hist_sample *s, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s[mid].t <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ssize_t)lo - 1;
}

static native_histogram *hist_dup(eval_ctx *c, const native_histogram *h)
{
    native_histogram *r = eval_alloc(c, sizeof *r);
    if (!r) return NULL;
    if (hist_copy(c->mem, h, r)) {
        strata_errf(c->err, STRATA_ENOMEM, "out of memory");
        return NULL;
    }
    return r;
}

native_histogram *hist_keep(eval_ctx *c, const native_histogram *h)
{
    return hist_dup(c, h);
}

static int compact(eval_ctx *c, native_histogram *h)
{
    int rc = hist_compact(c->mem, h);
    return rc ? strata_errf(c->err, rc, "out of memory") : 0;
}

int hist_negate_series(eval_ctx *c, vseries *s)
{
    /* the pointer array may be shared with another value: a private one */
    native_histogram **hh = eval_alloc(c, c->n_steps * sizeof *hh);
    if (!hh) return STRATA_ENOMEM;
    memcpy(hh, s->h, c->n_steps * sizeof *hh);
    s->h = hh;
    for (size_t i = 0; i < c->n_steps; i++) {
        if (!vec_hist(s, i)) continue;
        native_histogram *h = hist_dup(c, s->h[i]);
        if (!h) return STRATA_ENOMEM;
        hist_mul(h, -1);
        s->h[i] = h;
    }
    return 0;
}

bool value_has_hist(const value *v)
{
    if (v->type != V_VECTOR) return false;
    for (size_t k = 0; k < v->n; k++)
        if (v->s[k].h) return true;
    return false;
}

int hist_strip(eval_ctx *c, value *v)
{
    if (!value_has_hist(v)) return 0;
    vseries *ns = eval_alloc(c, v->n * sizeof *ns);
    if (!ns) return STRATA_ENOMEM;
    memcpy(ns, v->s, v->n * sizeof *ns);
    for (size_t k = 0; k < v->n; k++) {
        vseries *s = &ns[k];
        if (!s->h) continue;
        uint8_t *has = eval_alloc(c, c->n_steps);
        if (!has) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++)
            has[i] = s->has[i] && !s->h[i];
        s->has = has;
        s->h = NULL;
    }
    v->s = ns;
    return 0;
}

/* ---- JSON --------------------------------------------------------------------------------------
 */

int hist_json_point(buf *b, const hist_sample *hs)
{
    char ts[48], n1[400], n2[400], n3[400];
    format_timestamp(hs->t, ts, sizeof ts);
    const native_histogram *h = &hs->h;
    format_float(h->count, n1, sizeof n1);
    format_float(h->sum, n2, sizeof n2);
    int rc = buf_printf(b, "[%s,{\"count\":\"%s\",\"sum\":\"%s\"", ts, n1, n2);
    arena a;
    arena_init(&a, 4096);
    hist_bucket *bs;
    ssize_t nb = rc ? 0 : hist_all_buckets(&a, h, &bs);
    if (nb < 0) rc = STRATA_ENOMEM;
    bool any = false;
    for (ssize_t i = 0; i < nb && !rc; i++) {
        if (bs[i].count == 0) continue; /* Prometheus leaves empty buckets out */
        int rule = bs[i].lower_inclusive ? (bs[i].upper_inclusive ? 3 : 1)
                                         : (bs[i].upper_inclusive ? 0 : 2);
        format_float(bs[i].lower, n1, sizeof n1);
        format_float(bs[i].upper, n2, sizeof n2);
        format_float(bs[i].count, n3, sizeof n3);
        rc = buf_printf(b, "%s[%d,\"%s\",\"%s\",\"%s\"]", any ? "," : ",\"buckets\":[", rule, n1,
                        n2, n3);
        any = true;
    }
    arena_free(&a);
    if (!rc && any) rc = buf_putc(b, ']');
    if (!rc) rc = buf_append(b, "}]", 2);
    return rc ? STRATA_ENOMEM : 0;
}

/* ---- range functions ---------------------------------------------------------------------------
 */

/* a + b or a - b into a new histogram; 0 when they do not mix (custom and exponential). */
static int add_sub(eval_ctx *c, const native_histogram *a, const native_histogram *b, bool sub,
                   native_histogram **out)
{
    native_histogram *r = eval_alloc(c, sizeof *r);
    if (!r) return STRATA_ENOMEM;
    unsigned fl;
    int rc = hist_add(c->mem, a, b, sub, r, &fl);
    if (rc == HIST_INCOMPATIBLE) return 0;
    if (rc) return strata_errf(c->err, rc, "out of memory");
    *out = r;
    return 1;
}

/* Prometheus' histogramRate: last - first, with counter resets added back for counters. */
static int histogram_rate(eval_ctx *c, const hist_sample *pts, size_t n, bool counter,
                          native_histogram **out)
{
    const native_histogram *prev = &pts[0].h, *last = &pts[n - 1].h;
    native_histogram empty;
    if (counter && hist_detect_reset(&pts[1].h, prev)) {
        /* A reset right after the first sample: its layout does not matter. */
        memset(&empty, 0, sizeof empty);
        empty.schema = pts[1].h.schema;
        empty.custom_values = pts[1].h.custom_values;
        empty.n_custom_values = pts[1].h.n_custom_values;
        prev = &empty;
    }
    if (hist_is_custom(last) != hist_is_custom(prev)) return 0;
    int32_t min_schema = last->schema < prev->schema ? last->schema : prev->schema;
    for (size_t i = 1; i + 1 < n && counter; i++) {
        if (pts[i].h.schema < min_schema) min_schema = pts[i].h.schema;
        if (hist_is_custom(&pts[i].h) != hist_is_custom(prev)) return 0;
    }
    /* last in the smallest schema: added to an empty histogram of that schema */
    native_histogram base;
    memset(&base, 0, sizeof base);
    base.schema = min_schema;
    base.zero_threshold = last->zero_threshold;
    base.custom_values = last->custom_values;
    base.n_custom_values = last->n_custom_values;
    native_histogram *h = NULL, *d = NULL;
    int rc = add_sub(c, &base, last, false, &h);
    if (rc <= 0) return rc;
    if ((rc = add_sub(c, h, prev, true, &d)) <= 0) return rc;
    h = d;
    if (counter) {
        const native_histogram *p = prev;
        for (size_t i = 1; i < n; i++) {
            if (hist_detect_reset(&pts[i].h, p)) {
                if ((rc = add_sub(c, h, p, false, &d)) <= 0) return rc;
                h = d;
            }
            p = &pts[i].h;
        }
    }
    h->reset_hint = HIST_HINT_GAUGE;
    if ((rc = compact(c, h))) return rc;
    *out = h;
    return 1;
}

static int extrapolated_hist(eval_ctx *c, const hist_window *w, bool counter, bool rate,
                             native_histogram **out)
{
    if (w->nf) return 0; /* floats and histograms in one window: Prometheus drops it */
    if (w->nh < 2) return 0;
    native_histogram *h = NULL;
    int rc = histogram_rate(c, w->h, w->nh, counter, &h);
    if (rc <= 0) return rc;
    const hist_sample *s = w->h;
    size_t n = w->nh;
    double range_start = (double)(w->t - w->range_ms) / 1000.0, range_end = (double)w->t / 1000.0;
    double to_start = (double)s[0].t / 1000.0 - range_start;
    double to_end = range_end - (double)s[n - 1].t / 1000.0;
    double sampled = (double)(s[n - 1].t - s[0].t) / 1000.0;
    double avg = sampled / (double)(n - 1);
    double threshold = avg * 1.1;
    if (to_start >= threshold) to_start = avg / 2;
    if (counter && h->count > 0 && s[0].h.count >= 0) {
        double to_zero = sampled * (s[0].h.count / h->count);
        if (to_zero < to_start) to_start = to_zero;
    }
    if (to_end >= threshold) to_end = avg / 2;
    double factor = sampled != 0 ? (sampled + to_start + to_end) / sampled : 1;
    if (rate) factor /= (double)w->range_ms / 1000.0;
    hist_mul(h, factor);
    *out = h;
    return 1;
}

/* irate and idelta: the last two samples, whatever their kind. */
static int instant_hist(eval_ctx *c, const hist_window *w, bool rate, double *f,
                        native_histogram **out)
{
    if (w->nf + w->nh < 2) return 0;
    /* The two newest samples, oldest first; a float and a histogram at one time: the histogram
     * counts as the newer, as Prometheus orders them. */
    typedef struct tagged {
        int64_t t;
        double f;
        const native_histogram *h;
    } tagged;
    tagged ss[4];
    size_t k = 0;
    for (size_t i = w->nf >= 2 ? w->nf - 2 : 0; i < w->nf; i++)
        ss[k++] = (tagged){w->f[i].t, w->f[i].v, NULL};
    for (size_t i = w->nh >= 2 ? w->nh - 2 : 0; i < w->nh; i++)
        ss[k++] = (tagged){w->h[i].t, 0, &w->h[i].h};
    /* sort the (at most four) by time, stable so histograms stay after floats at equal times */
    for (size_t a = 1; a < k; a++)
        for (size_t b = a; b > 0 && ss[b].t < ss[b - 1].t; b--) {
            tagged t = ss[b];
            ss[b] = ss[b - 1];
            ss[b - 1] = t;
        }
    tagged s0 = ss[k - 2], s1 = ss[k - 1];
    int64_t interval = s1.t - s0.t;
    if (interval == 0) return 0;
    if (!s0.h && !s1.h) {
        double r = s1.f;
        if (!rate || !(s1.f < s0.f)) r = s1.f - s0.f;
        if (rate) r /= (double)interval / 1000;
        *f = r;
        return 1;
    }
    if (!s0.h || !s1.h) return 0;
    native_histogram *h = NULL;
    int rc;
    if (!rate || !hist_detect_reset(s1.h, s0.h)) {
        if ((rc = add_sub(c, s1.h, s0.h, true, &h)) <= 0) return rc;
    } else if (!(h = hist_dup(c, s1.h))) {
        return STRATA_ENOMEM;
    }
    h->reset_hint = HIST_HINT_GAUGE;
    if ((rc = compact(c, h))) return rc;
    if (rate) hist_div(h, (double)interval / 1000);
    *out = h;
    return 1;
}

/* resets and changes walk floats and histograms together in time order. */
static double resets_changes(const hist_window *w, bool changes)
{
    size_t i = 0, j = 0;
    double n = 0;
    bool have_prev = false, prev_is_h = false;
    double pf = 0;
    const native_histogram *ph = NULL;
    while (i < w->nf || j < w->nh) {
        bool take_h = i >= w->nf || (j < w->nh && w->h[j].t <= w->f[i].t);
        bool is_h = take_h;
        double cf = 0;
        const native_histogram *ch = NULL;
        if (take_h)
            ch = &w->h[j++].h;
        else
            cf = w->f[i++].v;
        if (have_prev) {
            if (!is_h && !prev_is_h) {
                if (changes ? (cf != pf && !(isnan(cf) && isnan(pf))) : cf < pf) n++;
            } else if (is_h != prev_is_h) {
                n++;
            } else if (changes ? !hist_equal(ch, ph) : hist_detect_reset(ch, ph)) {
                n++;
            }
        }
        have_prev = true;
        prev_is_h = is_h;
        pf = cf;
        ph = ch;
    }
    return n;
}

/* Sum or mean of histograms as Prometheus computes them: compensated summation, and for means
 * an incremental mean once the sum would overflow. */
typedef struct hist_acc {
    native_histogram *sum, *comp, *mean;
    double n;
    bool incremental;
} hist_acc;

static native_histogram *empty_like(eval_ctx *c, const native_histogram *h)
{
    native_histogram *e = eval_alloc(c, sizeof *e);
    if (!e) return NULL;
    memset(e, 0, sizeof *e);
    e->schema = h->schema;
    e->zero_threshold = h->zero_threshold;
    e->custom_values = h->custom_values;
    e->n_custom_values = h->n_custom_values;
    return e;
}

/* 1 when added, 0 when h does not mix with what is there (custom and exponential), or an
 * error. */
static int acc_add(eval_ctx *c, hist_acc *a, const native_histogram *h, bool avg)
{
    unsigned fl;
    if (!a->sum) {
        if (!(a->sum = hist_dup(c, h)) || !(a->comp = empty_like(c, h))) return STRATA_ENOMEM;
        a->n = 1;
        return 1;
    }
    a->n++;
    if (!a->incremental) {
        native_histogram *v = hist_dup(c, a->sum), *k = hist_dup(c, a->comp);
        if (!v || !k) return STRATA_ENOMEM;
        int rc = hist_kahan_add(c->mem, v, k, h, &fl);
        if (rc == HIST_INCOMPATIBLE) return 0;
        if (rc) return strata_errf(c->err, rc, "out of memory");
        if (!avg || !hist_has_overflow(v)) {
            a->sum = v;
            a->comp = k;
            return 1;
        }
        a->incremental = true;
        if (!(a->mean = hist_dup(c, a->sum))) return STRATA_ENOMEM;
        hist_div(a->mean, a->n - 1);
        hist_div(a->comp, a->n - 1);
    }
    double q = (a->n - 1) / a->n;
    native_histogram *add = hist_dup(c, h);
    if (!add) return STRATA_ENOMEM;
    hist_div(add, a->n);
    hist_mul(a->comp, q);
    hist_mul(a->mean, q);
    int rc = hist_kahan_add(c->mem, a->mean, a->comp, add, &fl);
    if (rc == HIST_INCOMPATIBLE) return 0;
    return rc ? strata_errf(c->err, rc, "out of memory") : 1;
}

static int acc_result(eval_ctx *c, hist_acc *a, bool avg, native_histogram **out)
{
    native_histogram *base = a->incremental ? a->mean : a->sum;
    if (avg && !a->incremental) {
        hist_div(base, a->n);
        hist_div(a->comp, a->n);
    }
    native_histogram *r;
    int rc = add_sub(c, base, a->comp, false, &r);
    if (rc < 0) return rc;
    if (rc == 0) r = base;
    /* the compensation never changes the hint */
    r->reset_hint = base->reset_hint;
    if ((rc = compact(c, r))) return rc;
    *out = r;
    return 0;
}

static int sum_avg_hist(eval_ctx *c, const hist_window *w, bool avg, native_histogram **out)
{
    if (w->nf) return 0; /* mixed floats and histograms */
    hist_acc acc = {0};
    for (size_t i = 0; i < w->nh; i++) {
        int rc = acc_add(c, &acc, &w->h[i].h, avg);
        if (rc <= 0) return rc;
    }
    int rc = acc_result(c, &acc, avg, out);
    return rc ? rc : 1;
}

static const char *const hist_range_names[] = {
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "resets",
    "changes",
    "sum_over_time",
    "avg_over_time",
    "count_over_time",
    "present_over_time",
    "last_over_time",
    "first_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
};

bool hist_range_fn_known(const char *name)
{
    for (size_t i = 0; i < sizeof hist_range_names / sizeof *hist_range_names; i++)
        if (!strcmp(name, hist_range_names[i])) return true;
    return false;
}

static int range_fn(eval_ctx *c, const char *name, const hist_window *w, double *f,
                    native_histogram **h, bool *handled);

/* Runs a step's histogram work in a scratch arena and keeps only the result: sums and rates build
 * a new histogram per input sample, which would otherwise stay in the query's arena for every
 * step of every series. */
static int keep_result(eval_ctx *c, int rc, native_histogram **h)
{
    if (rc <= 0 || !*h) return rc;
    native_histogram *k = eval_alloc(c, sizeof *k);
    if (!k) return STRATA_ENOMEM;
    if (hist_copy(c->mem, *h, k)) return strata_errf(c->err, STRATA_ENOMEM, "out of memory");
    *h = k;
    return rc;
}

int hist_range_fn(eval_ctx *c, const char *name, const hist_window *w, double *f,
                  native_histogram **h, bool *handled)
{
    arena scratch;
    arena_init(&scratch, 16 * 1024);
    eval_ctx sc = *c;
    sc.mem = &scratch;
    int rc = keep_result(c, range_fn(&sc, name, w, f, h, handled), h);
    arena_free(&scratch);
    return rc;
}

static int range_fn(eval_ctx *c, const char *name, const hist_window *w, double *f,
                    native_histogram **h, bool *handled)
{
    *handled = true;
    *h = NULL;
    if (!strcmp(name, "rate")) return extrapolated_hist(c, w, true, true, h);
    if (!strcmp(name, "increase")) return extrapolated_hist(c, w, true, false, h);
    if (!strcmp(name, "delta")) return extrapolated_hist(c, w, false, false, h);
    if (!strcmp(name, "irate")) return instant_hist(c, w, true, f, h);
    if (!strcmp(name, "idelta")) return instant_hist(c, w, false, f, h);
    if (!strcmp(name, "resets") || !strcmp(name, "changes")) {
        *f = resets_changes(w, !strcmp(name, "changes"));
        return 1;
    }
    if (!strcmp(name, "sum_over_time")) return sum_avg_hist(c, w, false, h);
    if (!strcmp(name, "avg_over_time")) return sum_avg_hist(c, w, true, h);
    if (!strcmp(name, "count_over_time")) {
        *f = (double)(w->nf + w->nh);
        return 1;
    }
    if (!strcmp(name, "present_over_time")) {
        *f = 1;
        return 1;
    }
    bool last = !strcmp(name, "last_over_time") || !strcmp(name, "ts_of_last_over_time");
    bool first = !strcmp(name, "first_over_time") || !strcmp(name, "ts_of_first_over_time");
    if (last || first) {
        bool use_h;
        if (!w->nf)
            use_h = true;
        else if (last)
            use_h = w->h[w->nh - 1].t >= w->f[w->nf - 1].t;
        else
            use_h = w->h[0].t < w->f[0].t;
        const hist_sample *hs = last ? &w->h[w->nh - 1] : &w->h[0];
        const strata_sample *fs = w->nf ? (last ? &w->f[w->nf - 1] : &w->f[0]) : NULL;
        if (!strncmp(name, "ts_of_", 6)) {
            *f = (double)(use_h ? hs->t : fs->t) / 1000.0;
        } else if (use_h) {
            *h = (native_histogram *)&hs->h;
        } else {
            *f = fs->v;
        }
        return 1;
    }
    /* max_over_time, quantile_over_time, deriv, ...: histograms are ignored */
    *handled = false;
    return 0;
}

/* ---- instant functions -------------------------------------------------------------------------
 */

static double simple_value(eval_ctx *c, const char *name, const native_histogram *h)
{
    if (!strcmp(name, "histogram_count")) return h->count;
    if (!strcmp(name, "histogram_sum")) return h->sum;
    if (!strcmp(name, "histogram_avg")) return h->sum / h->count;
    double v = hist_stdvar(c->mem, h);
    return !strcmp(name, "histogram_stddev") ? sqrt(v) : v;
}

/* Applies fn to every histogram step of in; floats are dropped, __name__ too. */
static int per_hist(eval_ctx *c, const value *in, value *out,
                    double (*fn)(eval_ctx *, const void *, size_t, const native_histogram *),
                    const void *arg)
{
    out->type = V_VECTOR;
    size_t cap = 0;
    /* the statistics expand buckets: scratch memory, reused step after step */
    arena scratch;
    arena_init(&scratch, 16 * 1024);
    eval_ctx sc = *c;
    sc.mem = &scratch;
    for (size_t k = 0; k < in->n; k++) {
        const vseries *s = &in->s[k];
        if (!s->h) continue;
        vseries *os = NULL;
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!s->has[i] || !s->h[i]) continue;
            if (!os) {
                size_t nl;
                label *ls = labels_drop_name(c, s->labels, s->n_labels, &nl);
                if (!ls || !(os = vec_add(c, out, &cap, ls, nl))) {
                    arena_free(&scratch);
                    return STRATA_ENOMEM;
                }
            }
            os->v[i] = fn(&sc, arg, i, s->h[i]);
            os->has[i] = 1;
            arena_reset(&scratch);
        }
    }
    arena_free(&scratch);
    return vec_check_duplicates(c, out);
}

static double simple_cb(eval_ctx *c, const void *arg, size_t i, const native_histogram *h)
{
    (void)i;
    return simple_value(c, arg, h);
}

int hist_simple_fn(eval_ctx *c, const char *name, const value *in, value *out)
{
    return per_hist(c, in, out, simple_cb, name);
}

typedef struct qargs {
    const double *q, *q2;
} qargs;

static double quantile_cb(eval_ctx *c, const void *arg, size_t i, const native_histogram *h)
{
    const qargs *a = arg;
    return a->q2 ? hist_fraction(c->mem, a->q[i], a->q2[i], h) : hist_quantile(c->mem, a->q[i], h);
}

int hist_quantile_fn(eval_ctx *c, const double *q, const double *q2, const value *in, value *out)
{
    qargs a = {q, q2};
    return per_hist(c, in, out, quantile_cb, &a);
}

/* ---- operators ---------------------------------------------------------------------------------
 */

static bool is_cmp(tok_kind op)
{
    return op == T_EQLC || op == T_NEQ || op == T_LSS || op == T_LTE || op == T_GTR || op == T_GTE;
}

static int binop(eval_ctx *c, const promql_expr *e, hval a, hval b, hval *r);

int hist_binop(eval_ctx *c, const promql_expr *e, hval a, hval b, hval *r)
{
    arena scratch;
    arena_init(&scratch, 16 * 1024);
    eval_ctx sc = *c;
    sc.mem = &scratch;
    int rc = binop(&sc, e, a, b, r);
    /* a filter keeps its operand as it is; anything computed is copied out of the scratch */
    if (rc > 0 && r->h && r->h != a.h && r->h != b.h) rc = keep_result(c, rc, &r->h);
    arena_free(&scratch);
    return rc;
}

static int binop(eval_ctx *c, const promql_expr *e, hval a, hval b, hval *r)
{
    r->h = NULL;
    r->f = 0;
    if (a.h && b.h) {
        native_histogram *x = NULL;
        int rc;
        switch (e->op) {
        case T_ADD:
        case T_SUB:
            if ((rc = add_sub(c, a.h, b.h, e->op == T_SUB, &x)) <= 0) return rc;
            if (e->op == T_SUB) x->reset_hint = HIST_HINT_GAUGE;
            if ((rc = compact(c, x))) return rc;
            r->h = x;
            return 1;
        case T_EQLC:
        case T_NEQ: {
            bool eq = hist_equal(a.h, b.h);
            bool keep = e->op == T_EQLC ? eq : !eq;
            if (e->return_bool) {
                r->f = keep ? 1 : 0;
                return 1;
            }
            if (!keep) return 0;
            r->h = a.h;
            return 1;
        }
        default:
            return 0;
        }
    }
    if (is_cmp(e->op)) return 0; /* a histogram and a float do not compare */
    if ((e->op == T_TRIM_UPPER || e->op == T_TRIM_LOWER) && a.h) {
        native_histogram *x = hist_dup(c, a.h);
        if (!x) return STRATA_ENOMEM;
        int rc = hist_trim(c->mem, x, b.f, e->op == T_TRIM_UPPER);
        if (rc) return strata_errf(c->err, rc, "out of memory");
        r->h = x;
        return 1;
    }
    native_histogram *src = a.h ? a.h : b.h;
    double factor = a.h ? b.f : a.f;
    if (e->op == T_MUL || (e->op == T_DIV && a.h)) {
        native_histogram *x = hist_dup(c, src);
        if (!x) return STRATA_ENOMEM;
        if (e->op == T_MUL)
            hist_mul(x, factor);
        else
            hist_div(x, factor);
        int rc = compact(c, x);
        if (rc) return rc;
        r->h = x;
        return 1;
    }
    return 0;
}

/* ---- aggregations ------------------------------------------------------------------------------
 */

static int agg_step(eval_ctx *c, const char *op, const value *in, const size_t *members,
                    size_t n_members, size_t i, native_histogram **result, vseries *os);

int hist_agg_step(eval_ctx *c, const char *op, const value *in, const size_t *members,
                  size_t n_members, size_t i, double param, vseries *os)
{
    (void)param;
    arena scratch;
    arena_init(&scratch, 16 * 1024);
    eval_ctx sc = *c;
    sc.mem = &scratch;
    native_histogram *r = NULL;
    int rc = keep_result(c, agg_step(&sc, op, in, members, n_members, i, &r, os), &r);
    arena_free(&scratch);
    if (rc > 0 && r && vec_set_hist(c, os, i, r)) return STRATA_ENOMEM;
    return rc;
}

/* hist_agg_step's work; a histogram result goes to *result (in c's arena), a float to os. */
static int agg_step(eval_ctx *c, const char *op, const value *in, const size_t *members,
                    size_t n_members, size_t i, native_histogram **result, vseries *os)
{
    size_t nh = 0, nf = 0;
    for (size_t j = 0; j < n_members; j++) {
        const vseries *s = &in->s[members[j]];
        if (!s->has[i]) continue;
        if (vec_hist(s, i))
            nh++;
        else
            nf++;
    }
    if (!nh) return 0;
    if (!strcmp(op, "count") || !strcmp(op, "group")) {
        os->v[i] = !strcmp(op, "count") ? (double)(nh + nf) : 1;
        os->has[i] = 1;
        return 1;
    }
    if (!strcmp(op, "sum") || !strcmp(op, "avg")) {
        if (nf) return 1; /* floats and histograms do not add up: no result */
        hist_acc acc = {0};
        bool avg = !strcmp(op, "avg");
        for (size_t j = 0; j < n_members; j++) {
            const vseries *s = &in->s[members[j]];
            if (!s->has[i]) continue;
            int rc = acc_add(c, &acc, s->h[i], avg);
            if (rc < 0) return rc;
            if (rc == 0) return 1; /* custom and exponential buckets: no result */
        }
        int rc = acc_result(c, &acc, avg, result);
        return rc ? rc : 1;
    }
    /* min, max, stddev, stdvar, quantile ignore histograms: the floats alone decide. A group of
     * histograms only has no result. */
    if (!nf) return 1;
    return 0;
}

/* ---- classic and native histograms together ----------------------------------------------- */

/* Whether f (a float series) is a classic bucket of the native histogram series h: the same
 * labels once f's parseable le label is left out. */
static bool is_bucket_of(const vseries *f, const vseries *h)
{
    if (f->n_labels != h->n_labels + 1) return false;
    size_t j = 0;
    bool le_ok = false;
    for (size_t i = 0; i < f->n_labels; i++) {
        const label *l = &f->labels[i];
        if (l->name_len == 2 && !memcmp(l->name, "le", 2)) {
            char tmp[64];
            if (l->value_len == 0 || l->value_len >= sizeof tmp) return false;
            memcpy(tmp, l->value, l->value_len);
            tmp[l->value_len] = 0;
            char *end;
            (void)strtod(tmp, &end);
            le_ok = *end == 0;
            continue;
        }
        if (j >= h->n_labels || l->name_len != h->labels[j].name_len ||
            l->value_len != h->labels[j].value_len ||
            memcmp(l->name, h->labels[j].name, l->name_len) ||
            memcmp(l->value, h->labels[j].value, l->value_len))
            return false;
        j++;
    }
    return le_ok && j == h->n_labels;
}

int hist_drop_classic_conflicts(eval_ctx *c, value *in)
{
    if (!value_has_hist(in)) return 0;
    /* the pairwise search below only matters when classic buckets are there too */
    bool any_le = false;
    for (size_t k = 0; k < in->n && !any_le; k++) {
        uint32_t vl;
        any_le = labels_get(in->s[k].labels, in->s[k].n_labels, "le", &vl) != NULL;
    }
    if (!any_le) return 0;
    vseries *ns = eval_alloc(c, in->n * sizeof *ns);
    if (!ns) return STRATA_ENOMEM;
    memcpy(ns, in->s, in->n * sizeof *ns);
    for (size_t k = 0; k < in->n; k++) {
        uint8_t *has = eval_alloc(c, c->n_steps);
        if (!has) return STRATA_ENOMEM;
        memcpy(has, ns[k].has, c->n_steps);
        ns[k].has = has;
    }
    for (size_t k = 0; k < in->n; k++) {
        const vseries *h = &in->s[k];
        if (!h->h) continue;
        for (size_t f = 0; f < in->n; f++) {
            if (f == k || !is_bucket_of(&in->s[f], h)) continue;
            for (size_t i = 0; i < c->n_steps; i++) {
                if (!vec_hist(h, i) || !h->has[i] || !in->s[f].has[i] || vec_hist(&in->s[f], i))
                    continue;
                /* classic buckets and a native histogram of one name and labels: neither counts */
                ns[k].has[i] = 0;
                for (size_t g = 0; g < in->n; g++)
                    if (g != k && in->s[g].has[i] && !vec_hist(&in->s[g], i) &&
                        is_bucket_of(&in->s[g], h))
                        ns[g].has[i] = 0;
            }
        }
    }
    in->s = ns;
    return 0;
}

/* ---- text form ----------------------------------------------------------------------------- */

/* A float as Go's %g writes it: shortest digits, exponent form below 1e-4 and from 1e6. */
static int go_g(double v, char *out, size_t len)
{
    if (isnan(v)) return snprintf(out, len, "NaN");
    if (isinf(v)) return snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    int p = 1;
    for (; p < 17; p++) {
        snprintf(out, len, "%.*e", p - 1, v);
        if (strtod(out, NULL) == v) break;
    }
    snprintf(out, len, "%.*e", p - 1, v);
    int exp = atoi(strchr(out, 'e') + 1);
    if (exp < -4 || exp >= 6) return (int)strlen(out);
    return snprintf(out, len, "%.*f", p - 1 - exp > 0 ? p - 1 - exp : 0, v);
}

int hist_format(const native_histogram *h, buf *b)
{
    char x[64], y[64], z[64];
    go_g(h->count, x, sizeof x);
    go_g(h->sum, y, sizeof y);
    int rc = buf_printf(b, "{count:%s, sum:%s", x, y);
    arena a;
    arena_init(&a, 4096);
    hist_bucket *bs;
    ssize_t n = rc ? 0 : hist_all_buckets(&a, h, &bs);
    if (n < 0) rc = STRATA_ENOMEM;
    for (ssize_t i = 0; i < n && !rc; i++) {
        hist_bucket bk = bs[i];
        if (bk.count == 0) continue;
        if (!bk.zero && !hist_is_custom(h)) {
            /* the text form shows a bucket's own bounds, not clipped to the zero bucket */
            double p = hist_bound(bk.index - 1, h->schema, NULL, 0);
            double q = hist_bound(bk.index, h->schema, NULL, 0);
            if (bk.upper <= 0 && !(bk.lower > 0)) {
                bk.lower = -q;
                bk.upper = -p;
            } else {
                bk.lower = p;
                bk.upper = q;
            }
        }
        go_g(bk.lower, x, sizeof x);
        go_g(bk.upper, y, sizeof y);
        go_g(bk.count, z, sizeof z);
        rc = buf_printf(b, ", %c%s,%s%c:%s", bk.lower_inclusive ? '[' : '(', x, y,
                        bk.upper_inclusive ? ']' : ')', z);
    }
    arena_free(&a);
    return rc ? rc : buf_putc(b, '}');
}

/* ---- anchored and smoothed selectors ------------------------------------------------------- */

/* h1 at t1 and h2 at t2 interpolated at t (Prometheus' interpolateHistograms): for a counter
 * that reset in between, h2 scaled as a restart from zero. 1, 0 when they do not mix, or an
 * error. */
static int interp_hist(eval_ctx *c, const hist_sample *p1, const hist_sample *p2, int64_t t,
                       bool counter, native_histogram **out)
{
    if (t == p1->t || t == p2->t) {
        *out = hist_dup(c, t == p1->t ? &p1->h : &p2->h);
        return *out ? 1 : STRATA_ENOMEM;
    }
    double frac = (double)(t - p1->t) / (double)(p2->t - p1->t);
    if (counter && hist_detect_reset(&p2->h, &p1->h)) {
        if (!(*out = hist_dup(c, &p2->h))) return STRATA_ENOMEM;
        hist_mul(*out, frac);
        return 1;
    }
    native_histogram *d = NULL;
    int rc = add_sub(c, &p2->h, &p1->h, true, &d);
    if (rc <= 0) return rc;
    hist_mul(d, frac);
    return add_sub(c, d, &p1->h, false, out);
}

/* The first index in h[0..n) with t > bound (strict) or t >= bound (at_or_after). */
static size_t hist_search(const hist_sample *h, size_t n, int64_t bound, bool at_or_after)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (at_or_after ? h[m].t < bound : h[m].t <= bound)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* Prometheus' extendedHistogramRate: rate, increase or delta between the values at the range's
 * exact bounds (anchored: the newest sample at or before its start; smoothed: interpolated). */
static int ext_hist_rate(eval_ctx *c, const hist_sample *h, size_t n, int64_t rs, int64_t re,
                         int64_t range_ms, bool smoothed, bool counter, bool rate,
                         native_histogram **out)
{
    size_t last = n - 1;
    size_t first = hist_search(h, last, rs, false);
    first = first > 0 ? first - 1 : 0;
    if (smoothed) last = hist_search(h, last, re, true);
    if (h[last].t <= rs) return 0;
    if (smoothed && h[first].t > re) return 0;
    for (size_t i = first; i <= last; i++)
        if (hist_is_custom(&h[i].h) != hist_is_custom(&h[first].h)) return 0;
    native_histogram *left = NULL, *right = NULL, *r = NULL;
    int rc = smoothed && h[first].t < rs
                 ? interp_hist(c, &h[first], &h[first + 1], rs, counter, &left)
                 : ((left = hist_dup(c, &h[first].h)) ? 1 : STRATA_ENOMEM);
    if (rc <= 0) return rc;
    rc = smoothed && last > 0 && h[last].t > re
             ? interp_hist(c, &h[last - 1], &h[last], re, counter, &right)
             : ((right = hist_dup(c, &h[last].h)) ? 1 : STRATA_ENOMEM);
    if (rc <= 0) return rc;
    if ((rc = add_sub(c, right, left, true, &r)) <= 0) return rc;
    if (counter) {
        /* resets strictly between the bounds, each adding back the count before it */
        size_t f = first + 1;
        const native_histogram *prev = left;
        if (smoothed && h[first].t < rs && hist_detect_reset(&h[first + 1].h, &h[first].h)) {
            prev = &h[first + 1].h; /* the left interpolation already spans that reset */
            f++;
        }
        native_histogram *corr = NULL;
        if (f <= last) {
            for (size_t i = f; i < last; i++) {
                if (hist_detect_reset(&h[i].h, prev)) {
                    if (!corr) {
                        if (!(corr = hist_dup(c, prev))) return STRATA_ENOMEM;
                    } else if ((rc = add_sub(c, corr, prev, false, &corr)) <= 0) {
                        return rc;
                    }
                }
                prev = &h[i].h;
            }
            if (hist_detect_reset(right, prev)) {
                if (!corr) {
                    if (!(corr = hist_dup(c, prev))) return STRATA_ENOMEM;
                } else if ((rc = add_sub(c, corr, prev, false, &corr)) <= 0) {
                    return rc;
                }
            }
        }
        if (corr && (rc = add_sub(c, r, corr, false, &r)) <= 0) return rc;
    }
    if (rate) hist_div(r, (double)range_ms / 1000.0);
    r->reset_hint = HIST_HINT_GAUGE;
    if ((rc = compact(c, r))) return rc;
    *out = r;
    return 1;
}

static int extended_fn(eval_ctx *c, const char *fn, const hist_window *w, int64_t range_ms,
                       bool smoothed, double *f, native_histogram **h)
{
    int64_t rs = w->t - range_ms, re = w->t;
    if (!strcmp(fn, "changes") || !strcmp(fn, "resets")) {
        /* anchored: from the newest sample of either kind at or before the range's start */
        size_t fa = 0, ha = hist_search(w->h, w->nh, rs, false);
        while (fa < w->nf && w->f[fa].t <= rs)
            fa++;
        if (fa >= w->nf && ha >= w->nh) return 0;
        int64_t tf = fa > 0 ? w->f[fa - 1].t : INT64_MIN, th = ha > 0 ? w->h[ha - 1].t : INT64_MIN;
        if (tf != INT64_MIN || th != INT64_MIN) {
            if (tf >= th)
                fa--;
            else
                ha--;
        }
        hist_window sub = {.f = w->f + fa, .nf = w->nf - fa, .h = w->h + ha, .nh = w->nh - ha};
        *f = resets_changes(&sub, !strcmp(fn, "changes"));
        return 1;
    }
    if (w->nf) return 0; /* floats and histograms in one window */
    bool counter = strcmp(fn, "delta") != 0;
    return ext_hist_rate(c, w->h, w->nh, rs, re, range_ms, smoothed, counter, !strcmp(fn, "rate"),
                         h);
}

int hist_extended_fn(eval_ctx *c, const char *fn, const hist_window *w, int64_t range_ms,
                     bool smoothed, double *f, native_histogram **h)
{
    arena scratch;
    arena_init(&scratch, 16 * 1024);
    eval_ctx sc = *c;
    sc.mem = &scratch;
    *h = NULL;
    int rc = keep_result(c, extended_fn(&sc, fn, w, range_ms, smoothed, f, h), h);
    arena_free(&scratch);
    return rc;
}

int hist_smoothed_at(eval_ctx *c, const hist_sample *hs, size_t n, int64_t t,
                     native_histogram **out)
{
    size_t i = hist_search(hs, n, t, true);
    *out = NULL;
    if (i < n && hs[i].t == t) {
        *out = hist_dup(c, &hs[i].h); /* the samples die with the reader's scratch */
        return *out ? 1 : STRATA_ENOMEM;
    }
    if (i == 0) return 0;
    if (i < n) {
        const hist_sample *p = &hs[i - 1], *q = &hs[i];
        if (hist_is_custom(&p->h) != hist_is_custom(&q->h)) return 0;
        bool counter = p->h.reset_hint != HIST_HINT_GAUGE || q->h.reset_hint != HIST_HINT_GAUGE;
        arena scratch;
        arena_init(&scratch, 16 * 1024);
        eval_ctx sc = *c;
        sc.mem = &scratch;
        int rc = keep_result(c, interp_hist(&sc, p, q, t, counter, out), out);
        arena_free(&scratch);
        return rc;
    }
    /* no sample after t yet: the previous one carried forward, its hint no longer meaningful */
    native_histogram *h = hist_dup(c, &hs[i - 1].h);
    if (!h) return STRATA_ENOMEM;
    h->reset_hint = HIST_HINT_UNKNOWN;
    *out = h;
    return 1;
}

void hist_window_of(const hist_sample *h, size_t n, int64_t lo, int64_t hi, size_t *first,
                    size_t *end)
{
    *first = hist_search(h, n, lo, false);
    *end = hist_search(h, n, hi, false);
}
