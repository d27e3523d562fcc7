/*
 * extended.c: the experimental `anchored` and `smoothed` selector modifiers of Prometheus 3.
 *
 * A plain range selector sees the samples in (t - range, t] and rate() extrapolates from them.
 * An anchored one also sees the newest sample at or before t - range (within the lookback delta)
 * and measures from it: increase() is then the exact difference between the value at the range's
 * start and its end, with counter resets added back. A smoothed one sees a lookback delta further
 * on both sides and interpolates linearly to the exact boundaries (for counters, a reset between
 * the two samples is modelled as a restart from zero). Only the functions Prometheus allows take
 * them: anchored with changes, delta, increase, rate and resets; smoothed with delta, increase
 * and rate. A smoothed instant selector interpolates between the samples around each step.
 */
#include "query/extended.h"
#include "query/hist_eval.h"

#include <stdlib.h>
#include <string.h>

static const char *const anchored_safe[] = {"changes", "delta", "increase", "rate", "resets"};
static const char *const smoothed_safe[] = {"delta", "increase", "rate"};

static bool in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, list[i])) return true;
    return false;
}

const promql_expr *extended_range_selector(const promql_expr *call)
{
    if (call->kind != N_CALL) return NULL;
    for (size_t i = 0; i < call->n_args; i++) {
        const promql_expr *a = call->args[i];
        while (a->kind == N_PAREN)
            a = a->inner;
        if (a->kind == N_MATRIX && (a->anchored || a->smoothed)) return a;
    }
    return NULL;
}

/* Samples of ss (ascending) with t in (lo, hi]: [*first, *end). */
static void window_of(const strata_sample *ss, size_t n, int64_t lo, int64_t hi, size_t *first,
                      size_t *end)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (ss[m].t <= lo)
            a = m + 1;
        else
            b = m;
    }
    *first = a;
    b = n;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (ss[m].t <= hi)
            a = m + 1;
        else
            b = m;
    }
    *end = a;
}

/* The index of the first sample in s[0..n) with t > bound (n when none). */
static size_t first_after(const strata_sample *s, size_t n, int64_t bound)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (s[m].t <= bound)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

/* The index of the first sample in s[0..n) with t >= bound (n when none). */
static size_t first_at_or_after(const strata_sample *s, size_t n, int64_t bound)
{
    size_t a = 0, b = n;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (s[m].t < bound)
            a = m + 1;
        else
            b = m;
    }
    return a;
}

static double interpolate(strata_sample p1, strata_sample p2, int64_t t, bool counter)
{
    double y1 = p1.v, y2 = p2.v;
    if (counter && y2 < y1) y1 = 0;
    return y1 + (y2 - y1) * (double)(t - p1.t) / (double)(p2.t - p1.t);
}

/* rate, increase or delta over an anchored or smoothed window f[0..n) (n > 0). */
static bool extended_rate(const strata_sample *f, size_t n, int64_t range_start, int64_t range_end,
                          int64_t range_ms, bool smoothed, bool counter, bool rate, double *out)
{
    size_t last = n - 1;
    size_t first = first_after(f, last, range_start);
    first = first > 0 ? first - 1 : 0;
    if (smoothed) last = first_at_or_after(f, last, range_end);
    if (f[last].t <= range_start) return false;
    if (smoothed && f[first].t > range_end) return false;
    double left = smoothed && f[first].t < range_start
                      ? interpolate(f[first], f[first + 1], range_start, counter)
                      : f[first].v;
    double right = smoothed && last > 0 && f[last].t > range_end
                       ? interpolate(f[last - 1], f[last], range_end, counter)
                       : f[last].v;
    double result = right - left;
    if (counter) {
        /* Resets strictly inside the range; the boundary values already account for theirs. */
        if (f[first].t <= range_start) first++;
        if (f[last].t >= range_end && last > 0)
            last--;
        else if (f[last].t >= range_end)
            first = last + 1;
        double correction = 0, prev = left;
        for (size_t i = first; i <= last && i < n; i++) {
            if (f[i].v < prev) correction += prev;
            prev = f[i].v;
        }
        if (right < prev) correction += prev;
        result += correction;
    }
    if (rate) result /= (double)range_ms / 1000.0;
    *out = result;
    return true;
}

/* changes or resets over an anchored window: from the newest sample at or before the range's
 * start, when there is one and a sample after it. */
static bool anchored_count(const strata_sample *f, size_t n, int64_t range_start, bool resets,
                           double *out)
{
    size_t after = first_after(f, n, range_start);
    if (after >= n) return false;
    size_t first = after > 0 ? after - 1 : 0;
    double count = 0;
    for (size_t i = first + 1; i < n; i++) {
        double a = f[i - 1].v, b = f[i].v;
        if (resets ? b < a : (a != b && !(a != a && b != b))) count++;
    }
    *out = count;
    return true;
}

typedef struct ext_job {
    const promql_expr *call, *sel;
    bool smoothed;
} ext_job;

/* Copies out stale markers (they never enter a window); *clean is the copy to free, if any. */
static int drop_stale(const strata_sample *ss, size_t ns, const strata_sample **pts, size_t *n,
                      strata_sample **clean)
{
    *pts = ss;
    *n = ns;
    *clean = NULL;
    for (size_t i = 0; i < ns; i++)
        if (value_is_stale(ss[i].v)) {
            *clean = malloc(ns * sizeof **clean);
            if (!*clean) return STRATA_ENOMEM;
            size_t k = 0;
            for (size_t j = 0; j < ns; j++)
                if (!value_is_stale(ss[j].v)) (*clean)[k++] = ss[j];
            *pts = *clean;
            *n = k;
            return 0;
        }
    return 0;
}

static int ext_series(eval_ctx *c, void *arg, const label *ls, size_t nl, const strata_sample *ss,
                      size_t ns, value *out, size_t *cap)
{
    const ext_job *j = arg;
    int rc = eval_count_samples(c, ns);
    if (rc || (rc = eval_check(c))) return rc;
    const strata_sample *pts;
    size_t n;
    strata_sample *clean;
    if ((rc = drop_stale(ss, ns, &pts, &n, &clean))) return rc;
    const char *fn = j->call->func;
    bool counter = !strcmp(fn, "rate") || !strcmp(fn, "increase");
    bool is_rate = !strcmp(fn, "rate"), is_count = !strcmp(fn, "changes") || !strcmp(fn, "resets");
    int64_t lb = c->o->lookback_ms, range = j->sel->range_ms;
    const hist_sample *hs;
    size_t nh;
    if ((rc = hist_drop_stale(c, c->cur_hists, c->cur_n_hists, &hs, &nh))) {
        free(clean);
        return rc;
    }
    vseries *os = NULL;
    for (size_t i = 0; i < c->n_steps; i++) {
        int64_t t = eval_selector_time(c, j->sel, step_time(c, i));
        size_t lo, hi, hlo = 0, hhi = 0;
        window_of(pts, n, t - range - lb, j->smoothed ? t + lb : t, &lo, &hi);
        if (nh) hist_window_of(hs, nh, t - range - lb, j->smoothed ? t + lb : t, &hlo, &hhi);
        double r;
        native_histogram *rh = NULL;
        if (hhi > hlo) {
            /* native histograms in the window (hist_eval.c) */
            hist_window hw = {.f = pts + lo, .nf = hi - lo, .h = hs + hlo, .nh = hhi - hlo, .t = t};
            int hr = hist_extended_fn(c, fn, &hw, range, j->smoothed, &r, &rh);
            if (hr < 0) {
                free(clean);
                return hr;
            }
            if (!hr) continue;
        } else {
            if (lo == hi) continue;
            bool ok = is_count
                          ? anchored_count(pts + lo, hi - lo, t - range, !strcmp(fn, "resets"), &r)
                          : extended_rate(pts + lo, hi - lo, t - range, t, range, j->smoothed,
                                          counter, is_rate, &r);
            if (!ok) continue;
        }
        if (!os) {
            size_t n2 = nl;
            bool drop = !eval_delays_names(c);
            label *l2 = drop ? labels_drop_name(c, ls, nl, &n2) : (label *)ls;
            if ((drop && !l2) || !(os = vec_add(c, out, cap, l2, n2))) {
                free(clean);
                return STRATA_ENOMEM;
            }
            os->drop_name = eval_delays_names(c);
        }
        if (rh && vec_set_hist(c, os, i, rh)) {
            free(clean);
            return STRATA_ENOMEM;
        }
        if (rh) continue;
        os->v[i] = r;
        os->has[i] = 1;
    }
    free(clean);
    return 0;
}

int eval_extended_call(eval_ctx *c, const promql_expr *call, value *out)
{
    const promql_expr *sel = extended_range_selector(call);
    if (sel->anchored && !in_list(call->func, anchored_safe, 5))
        return strata_errf(c->err, STRATA_EEXEC,
                           "anchored modifier can only be used with: changes, delta, increase, "
                           "rate, resets - not with %s",
                           call->func);
    if (sel->smoothed && !in_list(call->func, smoothed_safe, 3))
        return strata_errf(c->err, STRATA_EEXEC,
                           "smoothed modifier can only be used with: delta, increase, rate - not "
                           "with %s",
                           call->func);
    int64_t lb = c->o->lookback_ms;
    int64_t lo = eval_selector_time(c, sel, c->start) - sel->range_ms - lb + 1;
    int64_t hi = eval_selector_time(c, sel, c->end) + (sel->smoothed ? lb : 0);
    series_set *set;
    int rc = db_select(c->db, (const matcher *const *)sel->ms, sel->n_ms, lo, hi, &set, c->err);
    if (rc) return rc;
    out->type = V_VECTOR;
    ext_job job = {.call = call, .sel = sel, .smoothed = sel->smoothed};
    rc = eval_parallel_windows(c, set, ext_series, &job, out,
                               sel->range_ms + (sel->smoothed ? 2 * lb : lb));
    series_set_free(set);
    if (rc == STRATA_ECORRUPT) return strata_errf(c->err, rc, "corrupt chunk in storage");
    return rc ? rc : vec_check_duplicates(c, out);
}

static int smoothed_series(eval_ctx *c, void *arg, const label *ls, size_t nl,
                           const strata_sample *ss, size_t ns, value *out, size_t *cap)
{
    const promql_expr *sel = arg;
    int rc = eval_count_samples(c, ns);
    if (rc || (rc = eval_check(c))) return rc;
    const strata_sample *pts;
    size_t n;
    strata_sample *clean;
    if ((rc = drop_stale(ss, ns, &pts, &n, &clean))) return rc;
    int64_t lb = c->o->lookback_ms;
    const hist_sample *hs;
    size_t nh;
    if ((rc = hist_drop_stale(c, c->cur_hists, c->cur_n_hists, &hs, &nh))) {
        free(clean);
        return rc;
    }
    vseries *os = NULL;
    for (size_t i = 0; i < c->n_steps; i++) {
        int64_t t = eval_selector_time(c, sel, step_time(c, i));
        size_t lo, hi, hlo = 0, hhi = 0;
        window_of(pts, n, t - lb, t + lb, &lo, &hi);
        if (nh) hist_window_of(hs, nh, t - lb, t + lb, &hlo, &hhi);
        if (hhi > hlo) {
            /* native histograms: none when floats are around too (hist_eval.c) */
            native_histogram *h = NULL;
            int hr = hi > lo ? 0 : hist_smoothed_at(c, hs + hlo, hhi - hlo, t, &h);
            if (hr < 0) {
                free(clean);
                return hr;
            }
            if (!hr) continue;
            if ((!os && !(os = vec_add(c, out, cap, ls, nl))) || vec_set_hist(c, os, i, h)) {
                free(clean);
                return STRATA_ENOMEM;
            }
            continue;
        }
        const strata_sample *w = pts + lo;
        size_t wn = hi - lo;
        if (!wn) continue;
        size_t k = first_at_or_after(w, wn, t);
        double v;
        if (k < wn && w[k].t == t)
            v = w[k].v;
        else if (k > 0 && k < wn)
            v = interpolate(w[k - 1], w[k], t, false);
        else if (k > 0)
            v = w[k - 1].v;
        else
            continue;
        if (!os && !(os = vec_add(c, out, cap, ls, nl))) {
            free(clean);
            return STRATA_ENOMEM;
        }
        os->v[i] = v;
        os->has[i] = 1;
    }
    free(clean);
    return 0;
}

int eval_smoothed_vector(eval_ctx *c, const promql_expr *sel, value *out)
{
    int64_t lb = c->o->lookback_ms;
    int64_t lo = eval_selector_time(c, sel, c->start) - lb + 1;
    int64_t hi = eval_selector_time(c, sel, c->end) + lb;
    series_set *set;
    int rc = db_select(c->db, (const matcher *const *)sel->ms, sel->n_ms, lo, hi, &set, c->err);
    if (rc) return rc;
    out->type = V_VECTOR;
    rc = eval_parallel_series(c, set, smoothed_series, (void *)sel, out);
    series_set_free(set);
    if (rc == STRATA_ECORRUPT) return strata_errf(c->err, rc, "corrupt chunk in storage");
    return rc;
}

int eval_extended_matrix(eval_ctx *c, const promql_expr *sel, value *out)
{
    int64_t lb = c->o->lookback_ms;
    int64_t maxt = eval_selector_time(c, sel, c->start), mint = maxt - sel->range_ms;
    series_set *set;
    int rc = db_select(c->db, (const matcher *const *)sel->ms, sel->n_ms, mint - lb + 1,
                       maxt + (sel->smoothed ? lb : 0), &set, c->err);
    if (rc) return rc;
    out->type = V_MATRIX;
    size_t cap = 0;
    const label *ls;
    size_t nl, ns;
    const strata_sample *ss;
    while ((rc = series_set_next(set, &ls, &nl, &ss, &ns)) == 1) {
        if ((rc = eval_count_samples(c, ns)) || (rc = eval_check(c))) break;
        const strata_sample *f;
        size_t n;
        strata_sample *clean;
        if ((rc = drop_stale(ss, ns, &f, &n, &clean))) break;
        size_t lo, hi;
        window_of(f, n, mint - lb, sel->smoothed ? maxt + lb : maxt, &lo, &hi);
        f += lo;
        n = hi - lo;
        /* The window extended to its exact bounds: the value at mint, the samples inside, the
         * value at maxt (interpolated when smoothed). */
        size_t last = n ? n - 1 : 0, first = n ? first_after(f, last, mint) : 0;
        first = first > 0 ? first - 1 : 0;
        if (n && sel->smoothed) last = first_at_or_after(f, last, maxt);
        if (!n || f[last].t <= mint) {
            free(clean);
            continue;
        }
        double left = sel->smoothed && f[first].t < mint
                          ? interpolate(f[first], f[first + 1], mint, false)
                          : f[first].v;
        double right = sel->smoothed && last > 0 && f[last].t > maxt
                           ? interpolate(f[last - 1], f[last], maxt, false)
                           : f[last].v;
        if (f[first].t <= mint) first++;
        ssize_t end = (ssize_t)last;
        if (f[last].t >= maxt) end--;
        size_t inner = end >= (ssize_t)first ? (size_t)(end - (ssize_t)first + 1) : 0;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            vseries *nv = eval_alloc(c, ncap * sizeof *nv);
            if (!nv) {
                free(clean);
                rc = STRATA_ENOMEM;
                break;
            }
            if (out->n) memcpy(nv, out->s, out->n * sizeof *nv);
            out->s = nv;
            cap = ncap;
        }
        vseries *vs = &out->s[out->n++];
        memset(vs, 0, sizeof *vs);
        vs->labels = (label *)ls;
        vs->n_labels = nl;
        vs->pts = eval_alloc(c, (inner + 2) * sizeof *vs->pts);
        if (!vs->pts) {
            free(clean);
            rc = STRATA_ENOMEM;
            break;
        }
        vs->pts[vs->n_pts++] = (strata_sample){mint, left};
        for (size_t i = 0; i < inner; i++)
            vs->pts[vs->n_pts++] = f[first + i];
        vs->pts[vs->n_pts++] = (strata_sample){maxt, right};
        free(clean);
    }
    series_set_free(set);
    return rc < 0
               ? (rc == STRATA_ECORRUPT ? strata_errf(c->err, rc, "corrupt chunk in storage") : rc)
               : 0;
}
