/*
 * eval.c: the PromQL evaluator's core: selectors, subqueries, dispatch over node kinds, results
 * and their JSON.
 *
 * Semantics follow Prometheus 3: an instant selector takes the newest sample in
 * (t - lookback, t]; a range selector the samples in (t - range, t]; a staleness marker (NaN with
 * bits 0x7ff0000000000002) as the newest sample means "no value", and stale markers never appear
 * in range results. Each selector reads storage once, over the window the whole query needs, and
 * turns one series at a time into its values for every step, so memory is the result plus one
 * series' raw samples.
 */
#include "query/eval.h"
#include "query/hist_eval.h"
#include "query/histogram.h"
#include "query/cache.h"
#include "query/extended.h"
#include "query/info.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void promql_options_init(promql_options *o)
{
    o->lookback_ms = 5 * 60 * 1000;
    o->max_samples = 50000000;
    o->timeout_ms = 2 * 60 * 1000;
    o->sequential_steps = false;
    o->delayed_name_removal = false;
}

bool value_is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b == STALE_NAN_BITS;
}

void *eval_alloc(eval_ctx *c, size_t n)
{
    void *p = arena_alloc(c->mem, n ? n : 1);
    if (!p) strata_errf(c->err, STRATA_ENOMEM, "out of memory evaluating the query");
    return p;
}

int eval_check(eval_ctx *c)
{
    if (clock_mono_ns() > c->deadline_ns)
        return strata_errf(c->err, STRATA_ETIMEOUT, "query timed out in query execution");
    return 0;
}

int eval_count_samples(eval_ctx *c, size_t n)
{
    uint64_t total = atomic_fetch_add(c->samples, n) + n;
    if (total > c->o->max_samples)
        return strata_errf(c->err, STRATA_ELIMIT,
                           "query processing would load too many samples into memory in query "
                           "execution");
    return 0;
}

vseries *vec_add(eval_ctx *c, value *v, size_t *cap, const label *ls, size_t nl)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        vseries *ns = eval_alloc(c, nc * sizeof *ns);
        if (!ns) return NULL;
        if (v->n) memcpy(ns, v->s, v->n * sizeof *ns);
        v->s = ns;
        *cap = nc;
    }
    vseries *s = &v->s[v->n];
    memset(s, 0, sizeof *s);
    s->labels = (label *)ls;
    s->n_labels = nl;
    s->v = eval_alloc(c, c->n_steps * sizeof *s->v);
    s->has = eval_alloc(c, c->n_steps);
    if (!s->v || !s->has) return NULL;
    memset(s->has, 0, c->n_steps);
    v->n++;
    return s;
}

int vec_set_hist(eval_ctx *c, vseries *s, size_t i, native_histogram *h)
{
    if (!s->h) {
        s->h = eval_alloc(c, c->n_steps * sizeof *s->h);
        if (!s->h) return STRATA_ENOMEM;
        memset(s->h, 0, c->n_steps * sizeof *s->h);
    }
    s->h[i] = h;
    s->v[i] = 0;
    s->has[i] = 1;
    return 0;
}

/* ---- labels ----------------------------------------------------------------------------------- */

static bool name_in(const label *l, const char *const *names, size_t nn)
{
    for (size_t i = 0; i < nn; i++)
        if (strlen(names[i]) == l->name_len && memcmp(names[i], l->name, l->name_len) == 0)
            return true;
    return false;
}

static bool is_name_label(const label *l)
{
    return l->name_len == 8 && memcmp(l->name, LABEL_METRIC_NAME, 8) == 0;
}

label *labels_without(eval_ctx *c, const label *ls, size_t n, const char *const *names, size_t nn,
                      bool drop_name, size_t *out_n)
{
    label *o = eval_alloc(c, (n + 1) * sizeof *o);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop_name && is_name_label(&ls[i])) continue;
        if (name_in(&ls[i], names, nn)) continue;
        o[k++] = ls[i];
    }
    *out_n = k;
    return o;
}

label *labels_only(eval_ctx *c, const label *ls, size_t n, const char *const *names, size_t nn,
                   size_t *out_n)
{
    label *o = eval_alloc(c, (n + 1) * sizeof *o);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (name_in(&ls[i], names, nn)) o[k++] = ls[i];
    *out_n = k;
    return o;
}

/* Dropping the metric name drops the type and unit metadata labels with it: a computed value is
 * no longer of the metric's type or unit (Prometheus' DropReserved of metadata labels). */
label *labels_drop_name(eval_ctx *c, const label *ls, size_t n, size_t *out_n)
{
    static const char *const metadata[] = {"__type__", "__unit__"};
    return labels_without(c, ls, n, metadata, 2, true, out_n);
}

label *labels_set(eval_ctx *c, const label *ls, size_t n, const char *name, const char *val,
                  size_t vlen, size_t *out_n)
{
    label *o = eval_alloc(c, (n + 1) * sizeof *o);
    if (!o) return NULL;
    size_t nlen = strlen(name), k = 0;
    bool placed = false;
    for (size_t i = 0; i < n; i++) {
        int cmp = label_str_compare(ls[i].name, ls[i].name_len, name, (uint32_t)nlen);
        if (cmp == 0) continue;
        if (cmp > 0 && !placed) {
            if (vlen) o[k++] = (label){.name = name, .value = val, .name_len = (uint32_t)nlen,
                                       .value_len = (uint32_t)vlen};
            placed = true;
        }
        o[k++] = ls[i];
    }
    if (!placed && vlen)
        o[k++] = (label){.name = name, .value = val, .name_len = (uint32_t)nlen,
                         .value_len = (uint32_t)vlen};
    *out_n = k;
    return o;
}

bool eval_delays_names(const eval_ctx *c)
{
    return c->o->delayed_name_removal;
}

int vseries_drop_name(eval_ctx *c, vseries *s)
{
    if (eval_delays_names(c)) {
        s->drop_name = true;
        return 0;
    }
    s->labels = labels_drop_name(c, s->labels, s->n_labels, &s->n_labels);
    return s->labels ? 0 : STRATA_ENOMEM;
}

static int cmp_by_labels_idx(const void *a, const void *b, void *arg)
{
    const vseries *s = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return labels_compare(s[x].labels, s[x].n_labels, s[y].labels, s[y].n_labels);
}

int vec_check_duplicates(eval_ctx *c, const value *v)
{
    if (v->type != V_VECTOR || v->n < 2) return 0;
    size_t *idx = malloc(v->n * sizeof *idx);
    if (!idx) return strata_errf(c->err, STRATA_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->n; i++) idx[i] = i;
    qsort_r(idx, v->n, sizeof *idx, cmp_by_labels_idx, v->s);
    int rc = 0;
    for (size_t i = 1; i < v->n && !rc; i++) {
        const vseries *a = &v->s[idx[i - 1]], *b = &v->s[idx[i]];
        if (!labels_equal(a->labels, a->n_labels, b->labels, b->n_labels)) continue;
        for (size_t k = 0; k < c->n_steps; k++) {
            if (a->has[k] && b->has[k]) {
                rc = strata_errf(c->err, STRATA_EEXEC,
                                 "vector cannot contain metrics with the same labelset");
                break;
            }
        }
    }
    free(idx);
    return rc;
}

/* ---- selectors ---------------------------------------------------------------------------------- */

int64_t eval_selector_time(const eval_ctx *c, const promql_expr *e, int64_t t)
{
    int64_t base = e->at == AT_TIME    ? e->at_ms
                   : e->at == AT_START ? c->query_start
                   : e->at == AT_END   ? c->query_end
                                       : t;
    return base - e->offset_ms;
}

static ssize_t newest_at(const strata_sample *s, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s[mid].t <= t) lo = mid + 1;
        else hi = mid;
    }
    return (ssize_t)lo - 1;
}

static int corrupt(eval_ctx *c, int rc)
{
    if (rc == STRATA_ECORRUPT) return strata_errf(c->err, rc, "corrupt chunk in storage");
    return rc;
}

/* One series of an instant selector: its value at every step. */
static int vector_series(eval_ctx *c, void *arg, const label *ls, size_t nl,
                         const strata_sample *ss, size_t ns, value *out, size_t *cap)
{
    const promql_expr *e = arg;
    int rc = eval_count_samples(c, ns);
    if (rc || (rc = eval_check(c))) return rc;
    vseries *vs = NULL;
    const hist_sample *hs = c->cur_hists;
    size_t nh = c->cur_n_hists;
    ssize_t kept_k = -1; /* the samples die after this call: each one picked is copied once */
    native_histogram *kept = NULL;
    for (size_t i = 0; i < c->n_steps; i++) {
        /* A subquery can ask for millions of steps of one series: keep the deadline. */
        if ((i & 4095) == 4095 && (rc = eval_check(c))) return rc;
        int64_t st = eval_selector_time(c, e, step_time(c, i));
        ssize_t k = newest_at(ss, ns, st);
        ssize_t kh = nh ? hist_newest_at(hs, nh, st) : -1;
        /* The newer of the float and the histogram sample is the series' value. */
        if (kh >= 0 && (k < 0 || hs[kh].t > ss[k].t)) {
            if (hs[kh].t <= st - c->o->lookback_ms || hist_is_stale(&hs[kh].h)) continue;
            if (!vs && !(vs = vec_add(c, out, cap, ls, nl))) return STRATA_ENOMEM;
            if (kh != kept_k) {
                if (!(kept = hist_keep(c, &hs[kh].h))) return STRATA_ENOMEM;
                kept_k = kh;
            }
            if (vec_set_hist(c, vs, i, kept)) return STRATA_ENOMEM;
            continue;
        }
        if (k < 0 || ss[k].t <= st - c->o->lookback_ms || value_is_stale(ss[k].v)) continue;
        if (!vs && !(vs = vec_add(c, out, cap, ls, nl))) return STRATA_ENOMEM;
        vs->v[i] = ss[k].v;
        vs->has[i] = 1;
    }
    return 0;
}

static int eval_vector_selector(eval_ctx *c, const promql_expr *e, value *out)
{
    int64_t lo = eval_selector_time(c, e, c->start), hi = eval_selector_time(c, e, c->end);
    series_set *set;
    int rc = db_select(c->db, (const matcher *const *)e->ms, e->n_ms, lo - c->o->lookback_ms + 1,
                       hi, &set, c->err);
    if (rc) return rc;
    out->type = V_VECTOR;
    rc = eval_parallel_series(c, set, vector_series, (void *)e, out);
    series_set_free(set);
    return corrupt(c, rc);
}

/* The raw samples of a range selector over the whole query: (first window start, last end]. */
static int eval_matrix_samples(eval_ctx *c, const promql_expr *e, value *out)
{
    int64_t lo = eval_selector_time(c, e, c->start), hi = eval_selector_time(c, e, c->end);
    series_set *set;
    int rc = db_select(c->db, (const matcher *const *)e->ms, e->n_ms, lo - e->range_ms + 1, hi,
                       &set, c->err);
    if (rc) return rc;
    out->type = V_MATRIX;
    size_t cap = 0, scap = 0, n = series_set_count(set);
    strata_sample *ss = NULL;
    for (size_t si = 0; si < n && rc >= 0; si++) {
        const label *ls;
        size_t nl, ns = 0, nh = 0;
        hist_sample *hs = NULL;
        rc = series_set_read(set, si, &ls, &nl, &ss, &scap, &ns);
        if (rc < 0) break;
        if (!rc) ns = 0;
        if ((rc = eval_read_histograms(c, set, si, &hs, &nh)) < 0) break;
        if ((rc = eval_count_samples(c, ns + nh)) || (rc = eval_check(c))) break;
        size_t keep = 0, keep_h = 0;
        for (size_t i = 0; i < ns; i++) keep += !value_is_stale(ss[i].v);
        for (size_t i = 0; i < nh; i++) keep_h += !hist_is_stale(&hs[i].h);
        if (!keep && !keep_h) continue;
        if (out->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            vseries *nv = eval_alloc(c, ncap * sizeof *nv);
            if (!nv) {
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
        vs->pts = eval_alloc(c, (keep ? keep : 1) * sizeof *vs->pts);
        if (!vs->pts) {
            rc = STRATA_ENOMEM;
            break;
        }
        for (size_t i = 0; i < ns; i++)
            if (!value_is_stale(ss[i].v)) vs->pts[vs->n_pts++] = ss[i];
        if (keep_h) {
            vs->hpts = eval_alloc(c, keep_h * sizeof *vs->hpts);
            if (!vs->hpts) {
                rc = STRATA_ENOMEM;
                break;
            }
            for (size_t i = 0; i < nh; i++)
                if (!hist_is_stale(&hs[i].h)) vs->hpts[vs->n_hpts++] = hs[i];
        }
    }
    free(ss);
    series_set_free(set);
    return rc < 0 ? corrupt(c, rc) : 0;
}

/* A subquery: the inner expression evaluated as a range query at the subquery's step, aligned
 * to multiples of the step, covering every window the outer steps need. */
static int eval_subquery_samples(eval_ctx *c, const promql_expr *e, value *out)
{
    int64_t step = e->step_ms > 0 ? e->step_ms : 60000;
    int64_t lo = eval_selector_time(c, e, c->start), hi = eval_selector_time(c, e, c->end);
    int64_t from = lo - e->range_ms;
    int64_t aligned = (from / step) * step;
    if (aligned <= from) aligned += step; /* windows are left-open */
    if (aligned > hi) {
        out->type = V_MATRIX;
        return 0;
    }
    eval_ctx sub = *c;
    sub.start = aligned;
    sub.end = hi;
    sub.step = step;
    sub.n_steps = (size_t)((hi - aligned) / step) + 1;
    if (++sub.depth > 64) return strata_errf(c->err, STRATA_EEXEC, "subqueries nest too deeply");
    value inner;
    memset(&inner, 0, sizeof inner);
    int rc = eval_node(&sub, e->inner, &inner);
    if (rc) return rc;
    out->type = V_MATRIX;
    if (inner.type == V_SCALAR) {
        vseries *vs = eval_alloc(c, sizeof *vs);
        if (!vs) return STRATA_ENOMEM;
        memset(vs, 0, sizeof *vs);
        vs->pts = eval_alloc(c, sub.n_steps * sizeof *vs->pts);
        if (!vs->pts) return STRATA_ENOMEM;
        for (size_t i = 0; i < sub.n_steps; i++)
            vs->pts[vs->n_pts++] = (strata_sample){step_time(&sub, i), inner.scalar[i]};
        out->s = vs;
        out->n = 1;
        return 0;
    }
    if (inner.type != V_VECTOR)
        return strata_errf(c->err, STRATA_EEXEC,
                           "subquery is only allowed on instant vector, got %s",
                           inner.type == V_MATRIX ? "range vector" : "string");
    out->s = inner.s;
    out->n = inner.n;
    for (size_t k = 0; k < inner.n; k++) {
        vseries *vs = &out->s[k];
        size_t cnt = 0;
        for (size_t i = 0; i < sub.n_steps; i++) cnt += vs->has[i];
        vs->pts = eval_alloc(c, (cnt ? cnt : 1) * sizeof *vs->pts);
        if (!vs->pts) return STRATA_ENOMEM;
        vs->n_pts = 0;
        size_t nh = 0;
        for (size_t i = 0; i < sub.n_steps; i++) nh += vec_hist(vs, i) != NULL;
        if (nh && !(vs->hpts = eval_alloc(c, nh * sizeof *vs->hpts))) return STRATA_ENOMEM;
        vs->n_hpts = 0;
        for (size_t i = 0; i < sub.n_steps; i++) {
            if (!vs->has[i]) continue;
            if (vec_hist(vs, i)) {
                hist_sample *hs = &vs->hpts[vs->n_hpts++];
                *hs = (hist_sample){step_time(&sub, i), *vs->h[i]};
                /* A subquery may skip the sample that reset a counter or repeat it: explicit
                 * reset hints would mislead, so detection works from the counts, as Prometheus
                 * does. */
                if (hs->h.reset_hint == HIST_HINT_RESET || hs->h.reset_hint == HIST_HINT_NOT_RESET)
                    hs->h.reset_hint = HIST_HINT_UNKNOWN;
            } else {
                vs->pts[vs->n_pts++] = (strata_sample){step_time(&sub, i), vs->v[i]};
            }
        }
        vs->h = NULL;
        vs->v = NULL;
        vs->has = NULL;
    }
    return 0;
}

int eval_range_arg(eval_ctx *c, const promql_expr *e, range_arg *out)
{
    while (e->kind == N_PAREN) e = e->inner;
    memset(out, 0, sizeof *out);
    out->node = e;
    out->range_ms = e->range_ms;
    out->offset_ms = e->offset_ms;
    if (e->kind == N_MATRIX) {
        /* A range selector that several functions read is materialised once. */
        bool hit;
        int rc = eval_cache_get(c, e, &out->series, &hit);
        if (rc || hit) return rc;
        rc = eval_matrix_samples(c, e, &out->series);
        return rc ? rc : eval_cache_put(c, e, &out->series);
    }
    if (e->kind == N_SUBQUERY) return eval_subquery_samples(c, e, &out->series);
    return strata_errf(c->err, STRATA_EPARSE, "expected a range vector (a range selector or a subquery)");
}

/* ---- dispatch ----------------------------------------------------------------------------------- */

static int eval_scalar_const(eval_ctx *c, double v, value *out)
{
    out->type = V_SCALAR;
    out->scalar = eval_alloc(c, c->n_steps * sizeof(double));
    if (!out->scalar) return STRATA_ENOMEM;
    for (size_t i = 0; i < c->n_steps; i++) out->scalar[i] = v;
    return 0;
}

static int eval_unary(eval_ctx *c, const promql_expr *e, value *out)
{
    int rc = eval_node(c, e->inner, out);
    if (rc || e->op == T_ADD) return rc; /* unary plus changes nothing, not even __name__ */
    if (out->type == V_SCALAR) {
        for (size_t i = 0; i < c->n_steps; i++) out->scalar[i] = -out->scalar[i];
        return 0;
    }
    if (out->type != V_VECTOR)
        return strata_errf(c->err, STRATA_EEXEC, "unary expression only allowed on expressions of "
                                                 "type scalar or instant vector");
    for (size_t k = 0; k < out->n; k++) {
        vseries *s = &out->s[k];
        if (vseries_drop_name(c, s)) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) s->v[i] = -s->v[i];
        if (s->h && (rc = hist_negate_series(c, s))) return rc;
    }
    return vec_check_duplicates(c, out);
}

int eval_node(eval_ctx *c, const promql_expr *e, value *out)
{
    memset(out, 0, sizeof *out);
    if (++c->depth > 600) {
        c->depth--;
        return strata_errf(c->err, STRATA_EEXEC, "expression nests too deeply");
    }
    bool hit;
    int rc = eval_cache_get(c, e, out, &hit);
    if (rc || hit) {
        c->depth--;
        return rc;
    }
    switch (e->kind) {
    case N_NUMBER: rc = eval_scalar_const(c, e->num, out); break;
    case N_STRING:
        out->type = V_STRING;
        out->str = e->str;
        rc = 0;
        break;
    case N_PAREN: rc = eval_node(c, e->inner, out); break;
    case N_VECTOR:
        rc = e->smoothed ? eval_smoothed_vector(c, e, out) : eval_vector_selector(c, e, out);
        break;
    case N_MATRIX:
        if (c->n_steps != 1 || c->start != c->end) {
            rc = strata_errf(c->err, STRATA_EEXEC,
                             "invalid expression type \"range vector\" for range query, must be "
                             "Scalar or instant Vector");
            break;
        }
        rc = e->anchored || e->smoothed ? eval_extended_matrix(c, e, out)
                                        : eval_matrix_samples(c, e, out);
        break;
    case N_SUBQUERY:
        if (c->n_steps != 1 || c->start != c->end) {
            rc = strata_errf(c->err, STRATA_EEXEC,
                             "invalid expression type \"range vector\" for range query, must be "
                             "Scalar or instant Vector");
            break;
        }
        {
            range_arg ra;
            rc = eval_range_arg(c, e, &ra);
            if (!rc) {
                /* Keep only the samples of the one window. */
                int64_t t = eval_selector_time(c, e, c->start);
                *out = ra.series;
                for (size_t k = 0; k < out->n; k++) {
                    vseries *s = &out->s[k];
                    size_t w = 0;
                    for (size_t i = 0; i < s->n_pts; i++)
                        if (s->pts[i].t > t - e->range_ms && s->pts[i].t <= t) s->pts[w++] = s->pts[i];
                    s->n_pts = w;
                    w = 0;
                    for (size_t i = 0; i < s->n_hpts; i++)
                        if (s->hpts[i].t > t - e->range_ms && s->hpts[i].t <= t)
                            s->hpts[w++] = s->hpts[i];
                    s->n_hpts = w;
                }
            }
        }
        break;
    case N_UNARY: rc = eval_unary(c, e, out); break;
    case N_CALL:
        rc = strcmp(e->func, "info") == 0         ? eval_info(c, e, out)
             : extended_range_selector(e) != NULL ? eval_extended_call(c, e, out)
                                                  : eval_call(c, e, out);
        break;
    case N_AGG: rc = eval_aggregation(c, e, out); break;
    case N_BINARY: rc = eval_binary(c, e, out); break;
    case N_DURATION: /* only below selectors, resolved before evaluation */
    default: rc = strata_errf(c->err, STRATA_EUNSUPPORTED, "expression not supported");
    }
    if (!rc) rc = eval_cache_put(c, e, out);
    c->depth--;
    return rc;
}

/* Everything the parser accepts but this evaluator does not implement, found before any data is
 * read: a query either runs completely or fails with a message naming what is missing. */
static int check_supported(const promql_expr *e, char *err)
{
    if (e->kind == N_CALL && !eval_function_supported(e->func) && strcmp(e->func, "info") != 0)
        return strata_errf(err, STRATA_EUNSUPPORTED, "function \"%s\" is not supported yet", e->func);
    int rc = 0;
    for (size_t i = 0; i < e->n_args && !rc; i++) rc = check_supported(e->args[i], err);
    if (!rc && e->lhs) rc = check_supported(e->lhs, err);
    if (!rc && e->rhs) rc = check_supported(e->rhs, err);
    if (!rc && e->inner) rc = check_supported(e->inner, err);
    return rc;
}

/* ---- results -------------------------------------------------------------------------------------- */

static int cmp_series_labels(const void *a, const void *b)
{
    const promql_series *x = a, *y = b;
    return labels_compare(x->labels, x->n_labels, y->labels, y->n_labels);
}

/* Joins b's histogram points into a's (two series that became one); one step may hold only one
 * value. */
static int merge_hpoints(eval_ctx *c, promql_series *a, const promql_series *b)
{
    if (!b->n_hpoints) return 0;
    hist_sample *m = eval_alloc(c, (a->n_hpoints + b->n_hpoints) * sizeof *m);
    if (!m) return STRATA_ENOMEM;
    size_t i = 0, j = 0, n = 0;
    while (i < a->n_hpoints || j < b->n_hpoints) {
        if (i < a->n_hpoints && j < b->n_hpoints && a->hpoints[i].t == b->hpoints[j].t)
            return strata_errf(c->err, STRATA_EEXEC,
                               "vector cannot contain metrics with the same labelset");
        if (j >= b->n_hpoints || (i < a->n_hpoints && a->hpoints[i].t < b->hpoints[j].t))
            m[n++] = a->hpoints[i++];
        else m[n++] = b->hpoints[j++];
    }
    a->hpoints = m;
    a->n_hpoints = n;
    for (size_t x = 0; x < a->n_points; x++)
        for (size_t y = 0; y < a->n_hpoints; y++)
            if (a->points[x].t == a->hpoints[y].t)
                return strata_errf(c->err, STRATA_EEXEC,
                                   "vector cannot contain metrics with the same labelset");
    return 0;
}

/* Delayed name removal ends here: marked series lose their name and metadata labels, and an
 * instant vector may then not hold one label set twice (a range result merges them below). */
static int drop_marked_names(eval_ctx *c, value *v, bool range)
{
    if (v->type != V_VECTOR && v->type != V_MATRIX) return 0;
    bool any = false;
    for (size_t k = 0; k < v->n; k++) {
        vseries *s = &v->s[k];
        if (!s->drop_name) continue;
        s->labels = labels_drop_name(c, s->labels, s->n_labels, &s->n_labels);
        if (!s->labels) return STRATA_ENOMEM;
        s->drop_name = false;
        any = true;
    }
    return any && !range ? vec_check_duplicates(c, v) : 0;
}

static int to_result(eval_ctx *c, value *v, bool range, promql_result *r)
{
    int rc;
    int drc = drop_marked_names(c, v, range);
    if (drc) return drc;
    r->ordered = v->ordered && !range;
    switch (v->type) {
    case V_SCALAR:
        if (!range) {
            r->type = PROMQL_SCALAR;
            r->scalar = (strata_sample){c->start, v->scalar[0]};
            return 0;
        }
        r->type = PROMQL_MATRIX;
        r->series = eval_alloc(c, sizeof *r->series);
        if (!r->series) return STRATA_ENOMEM;
        r->n_series = 1;
        r->series[0] = (promql_series){0};
        r->series[0].points = eval_alloc(c, c->n_steps * sizeof(strata_sample));
        if (!r->series[0].points) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++)
            r->series[0].points[r->series[0].n_points++] = (strata_sample){step_time(c, i), v->scalar[i]};
        return 0;
    case V_STRING:
        if (range)
            return strata_errf(c->err, STRATA_EEXEC,
                               "invalid expression type \"string\" for range query, must be "
                               "Scalar or instant Vector");
        r->type = PROMQL_STRING;
        r->string = arena_strndup(c->mem, v->str, strlen(v->str));
        r->string_t = c->start;
        return 0;
    case V_MATRIX:
        r->type = PROMQL_MATRIX;
        r->series = eval_alloc(c, (v->n ? v->n : 1) * sizeof *r->series);
        if (!r->series) return STRATA_ENOMEM;
        for (size_t k = 0; k < v->n; k++) {
            if (!v->s[k].n_pts && !v->s[k].n_hpts) continue;
            r->series[r->n_series++] = (promql_series){.labels = v->s[k].labels,
                                                       .n_labels = v->s[k].n_labels,
                                                       .points = v->s[k].pts,
                                                       .n_points = v->s[k].n_pts,
                                                       .hpoints = v->s[k].hpts,
                                                       .n_hpoints = v->s[k].n_hpts};
        }
        qsort(r->series, r->n_series, sizeof *r->series, cmp_series_labels);
        return 0;
    case V_VECTOR:
        r->type = range ? PROMQL_MATRIX : PROMQL_VECTOR;
        r->series = eval_alloc(c, (v->n ? v->n : 1) * sizeof *r->series);
        if (!r->series) return STRATA_ENOMEM;
        for (size_t k = 0; k < v->n; k++) {
            vseries *s = &v->s[k];
            size_t cnt = 0;
            for (size_t i = 0; i < c->n_steps; i++) cnt += s->has[i];
            if (!cnt) continue;
            promql_series *ps = &r->series[r->n_series++];
            *ps = (promql_series){.labels = s->labels, .n_labels = s->n_labels};
            ps->points = eval_alloc(c, cnt * sizeof *ps->points);
            if (!ps->points) return STRATA_ENOMEM;
            if (s->h && !(ps->hpoints = eval_alloc(c, cnt * sizeof *ps->hpoints)))
                return STRATA_ENOMEM;
            for (size_t i = 0; i < c->n_steps; i++) {
                if (!s->has[i]) continue;
                if (vec_hist(s, i))
                    ps->hpoints[ps->n_hpoints++] = (hist_sample){step_time(c, i), *s->h[i]};
                else ps->points[ps->n_points++] = (strata_sample){step_time(c, i), s->v[i]};
            }
        }
        if (!r->ordered) qsort(r->series, r->n_series, sizeof *r->series, cmp_series_labels);
        if (range && r->n_series > 1) {
            /* Series that became identical (a function dropped __name__) may each hold some of
             * the steps: one series, as Prometheus merges them; overlapping steps are an error. */
            size_t w = 0;
            for (size_t k = 0; k < r->n_series; k++) {
                if (w && labels_equal(r->series[w - 1].labels, r->series[w - 1].n_labels,
                                      r->series[k].labels, r->series[k].n_labels)) {
                    promql_series *a = &r->series[w - 1], *b = &r->series[k];
                    strata_sample *m = eval_alloc(c, (a->n_points + b->n_points) * sizeof *m);
                    if (!m) return STRATA_ENOMEM;
                    size_t i = 0, j = 0, n = 0;
                    while (i < a->n_points || j < b->n_points) {
                        if (i < a->n_points && j < b->n_points && a->points[i].t == b->points[j].t)
                            return strata_errf(c->err, STRATA_EEXEC,
                                               "vector cannot contain metrics with the same labelset");
                        if (j >= b->n_points || (i < a->n_points && a->points[i].t < b->points[j].t))
                            m[n++] = a->points[i++];
                        else m[n++] = b->points[j++];
                    }
                    a->points = m;
                    a->n_points = n;
                    if ((rc = merge_hpoints(c, a, b))) return rc;
                    continue;
                }
                r->series[w++] = r->series[k];
            }
            r->n_series = w;
        }
        return 0;
    }
    return STRATA_EINVAL;
}

static int evaluate(strata_db *db, const char *q, int64_t start, int64_t end, int64_t step,
                    bool range, const promql_options *o, promql_result **out, char *err)
{
    promql_options def;
    if (!o) {
        promql_options_init(&def);
        o = &def;
    }
    *out = NULL;
    promql_expr *e;
    int rc = promql_parse(q, strlen(q), &e, err);
    if (rc) return rc;
    rc = promql_resolve_durations(e, q, range ? step : 0, end - start, err);
    if (!rc) rc = check_supported(e, err);
    eval_cache *cache = NULL;
    if (!rc) rc = eval_cache_new(e, &cache);
    if (rc) {
        promql_expr_free(e);
        return rc;
    }
    promql_result *r = calloc(1, sizeof *r);
    if (!r) {
        promql_expr_free(e);
        eval_cache_free(cache);
        return strata_errf(err, STRATA_ENOMEM, "out of memory");
    }
    arena_init(&r->mem, 64 * 1024);
    _Atomic uint64_t samples = 0;
    eval_ctx c = {.db = db, .o = o, .start = start, .end = end, .step = step > 0 ? step : 1,
                  .samples = &samples,
                  .query_start = start, .query_end = end, .query_step = step, .mem = &r->mem,
                  .cache = cache,
                  .err = err,
                  .deadline_ns = clock_mono_ns() +
                                 (uint64_t)(o->timeout_ms > 0 ? o->timeout_ms : 1) * 1000000ull};
    c.n_steps = (size_t)((end - start) / c.step) + 1;
    value v;
    rc = eval_node(&c, e, &v);
    if (!rc) rc = to_result(&c, &v, range, r);
    /* The result's strings must outlive the AST: copy what points into it. */
    if (!rc && r->type == PROMQL_STRING && !r->string) rc = STRATA_ENOMEM;
    for (size_t k = 0; !rc && k < r->n_series; k++) {
        promql_series *s = &r->series[k];
        label *l = arena_alloc(&r->mem, (s->n_labels ? s->n_labels : 1) * sizeof *l);
        if (!l) {
            rc = STRATA_ENOMEM;
            break;
        }
        for (size_t i = 0; i < s->n_labels; i++) {
            l[i] = s->labels[i];
            l[i].name = arena_strndup(&r->mem, s->labels[i].name, s->labels[i].name_len);
            l[i].value = arena_strndup(&r->mem, s->labels[i].value, s->labels[i].value_len);
            if (!l[i].name || !l[i].value) rc = STRATA_ENOMEM;
        }
        s->labels = l;
    }
    promql_expr_free(e);
    eval_cache_free(cache);
    if (rc) {
        promql_result_free(r);
        if (rc == STRATA_ENOMEM && err && !err[0]) strata_errf(err, rc, "out of memory");
        return rc;
    }
    *out = r;
    return 0;
}

void promql_result_free(promql_result *r)
{
    if (!r) return;
    arena_free(&r->mem);
    free(r);
}

int promql_eval_instant(strata_db *db, const char *q, int64_t t_ms, const promql_options *o,
                        promql_result **out, char *err)
{
    return evaluate(db, q, t_ms, t_ms, 0, false, o, out, err);
}

int promql_eval_range(strata_db *db, const char *q, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, const promql_options *o, promql_result **out, char *err)
{
    if (step_ms <= 0) return strata_errf(err, STRATA_EINVAL, "step must be positive");
    if (end_ms < start_ms) return strata_errf(err, STRATA_EINVAL, "end is before start");
    if ((end_ms - start_ms) / step_ms > 11000)
        return strata_errf(err, STRATA_EINVAL,
                           "exceed maximum resolution of 11,000 points per timeseries. Try "
                           "decreasing the query resolution (?step=XX)");
    return evaluate(db, q, start_ms, end_ms, step_ms, true, o, out, err);
}

/* ---- JSON -------------------------------------------------------------------------------------- */

/* The length of the valid UTF-8 sequence at s (n > 0 bytes left), 0 when it is invalid. */
static size_t json_rune_width(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t need;
    uint32_t c, min;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 1;
        c = s[0] & 0x1f;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 2;
        c = s[0] & 0x0f;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 3;
        c = s[0] & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n <= need) return 0;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c < 0xe000)) return 0;
    *cp = c;
    return need + 1;
}

/* A JSON string as Go's encoding/json writes it (which Prometheus' API uses): ", \ and \n \r \t
 * short, other control characters and < > & as \u00XX, U+2028 and U+2029 escaped, invalid UTF-8
 * replaced by U+FFFD. */
static int json_str(buf *b, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    int rc = buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n && !rc;) {
        unsigned char ch = s[i];
        char u[8];
        const char *esc = NULL;
        size_t w = 1;
        if (ch >= 0x80) {
            uint32_t cp = 0;
            w = json_rune_width(s + i, n - i, &cp);
            if (!w) {
                w = 1;
                esc = "\xef\xbf\xbd";
            } else if (cp == 0x2028 || cp == 0x2029) {
                esc = cp == 0x2028 ? "\\u2028" : "\\u2029";
            } else {
                i += w;
                continue;
            }
        } else if (ch == '"') esc = "\\\"";
        else if (ch == '\\') esc = "\\\\";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            snprintf(u, sizeof u, "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
            esc = u;
        }
        if (!esc) {
            i++;
            continue;
        }
        rc = buf_append(b, s + run, i - run);
        if (!rc) rc = buf_append(b, esc, strlen(esc));
        i += w;
        run = i;
    }
    if (!rc) rc = buf_append(b, s + run, n - run);
    return rc ? rc : buf_putc(b, '"');
}

static int json_point(buf *b, int64_t t, double v)
{
    char ts[48], vs[400];
    format_timestamp(t, ts, sizeof ts);
    format_float(v, vs, sizeof vs);
    return buf_printf(b, "[%s,\"%s\"]", ts, vs);
}

int promql_result_json(const promql_result *r, buf *b)
{
    static const char *types[] = {"scalar", "vector", "matrix", "string"};
    int rc = buf_printf(b, "{\"resultType\":\"%s\",\"result\":", types[r->type]);
    if (rc) return STRATA_ENOMEM;
    if (r->type == PROMQL_SCALAR) {
        rc = json_point(b, r->scalar.t, r->scalar.v);
    } else if (r->type == PROMQL_STRING) {
        char ts[48];
        format_timestamp(r->string_t, ts, sizeof ts);
        rc = buf_printf(b, "[%s,", ts);
        if (!rc) rc = json_str(b, r->string, strlen(r->string));
        if (!rc) rc = buf_putc(b, ']');
    } else {
        rc = buf_putc(b, '[');
        for (size_t k = 0; k < r->n_series && !rc; k++) {
            const promql_series *s = &r->series[k];
            if (k) rc = buf_putc(b, ',');
            if (!rc) rc = buf_append(b, "{\"metric\":{", 11);
            for (size_t i = 0; i < s->n_labels && !rc; i++) {
                if (i) rc = buf_putc(b, ',');
                if (!rc) rc = json_str(b, s->labels[i].name, s->labels[i].name_len);
                if (!rc) rc = buf_putc(b, ':');
                if (!rc) rc = json_str(b, s->labels[i].value, s->labels[i].value_len);
            }
            if (!rc) rc = buf_putc(b, '}');
            if (!rc && r->type == PROMQL_VECTOR) {
                if (s->n_hpoints) {
                    rc = buf_append(b, ",\"histogram\":", 13);
                    if (!rc) rc = hist_json_point(b, &s->hpoints[0]);
                } else {
                    rc = buf_append(b, ",\"value\":", 9);
                    if (!rc) rc = json_point(b, s->points[0].t, s->points[0].v);
                }
            } else if (!rc) {
                /* As Prometheus: "values" and "histograms" each only when there are some. */
                if (s->n_points || !s->n_hpoints) {
                    rc = buf_append(b, ",\"values\":[", 11);
                    for (size_t i = 0; i < s->n_points && !rc; i++) {
                        if (i) rc = buf_putc(b, ',');
                        if (!rc) rc = json_point(b, s->points[i].t, s->points[i].v);
                    }
                    if (!rc) rc = buf_putc(b, ']');
                }
                if (!rc && s->n_hpoints) {
                    rc = buf_append(b, ",\"histograms\":[", 15);
                    for (size_t i = 0; i < s->n_hpoints && !rc; i++) {
                        if (i) rc = buf_putc(b, ',');
                        if (!rc) rc = hist_json_point(b, &s->hpoints[i]);
                    }
                    if (!rc) rc = buf_putc(b, ']');
                }
            }
            if (!rc) rc = buf_putc(b, '}');
        }
        if (!rc) rc = buf_putc(b, ']');
    }
    if (!rc) rc = buf_putc(b, '}');
    return rc ? STRATA_ENOMEM : 0;
}

int promql_exec_instant(strata_db *db, const char *q, int64_t t_ms, const promql_options *o,
                        buf *json, char *err)
{
    promql_result *r;
    int rc = promql_eval_instant(db, q, t_ms, o, &r, err);
    if (rc) return rc;
    rc = promql_result_json(r, json);
    promql_result_free(r);
    return rc;
}

int promql_exec_range(strata_db *db, const char *q, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, const promql_options *o, buf *json, char *err)
{
    promql_result *r;
    int rc = promql_eval_range(db, q, start_ms, end_ms, step_ms, o, &r, err);
    if (rc) return rc;
    rc = promql_result_json(r, json);
    promql_result_free(r);
    return rc;
}
