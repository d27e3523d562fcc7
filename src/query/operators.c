/*
 * operators.c: PromQL binary operators (arithmetic, comparison, set) with vector matching, and
 * the aggregation operators.
 *
 * Vector matching pairs series by a signature: the labels named in on(...), or all labels but
 * those in ignoring(...) and __name__. Signatures are hashed once per series, and each step looks
 * pairs up through a hash table, so a binary operation costs O(series) per step. Aggregations
 * group series the same way by their by(...)/without(...) labels.
 */
#include "query/eval.h"
#include "query/hist_eval.h"
#include "query/fill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- a small hash table from label-set hash to group index -------------------------------------- */

typedef struct group_table {
    uint64_t *keys;
    size_t *vals;
    size_t cap;
} group_table;

static int gt_init(group_table *t, size_t n)
{
    t->cap = 16;
    while (t->cap < n * 2) t->cap *= 2;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->vals = malloc(t->cap * sizeof *t->vals);
    return t->keys && t->vals ? 0 : STRATA_ENOMEM;
}

static void gt_free(group_table *t)
{
    free(t->keys);
    free(t->vals);
}

/* Finds the slot for a hash (0 is reserved: hashes are forced odd). *found tells if it existed. */
static size_t gt_slot(group_table *t, uint64_t h, bool *found)
{
    size_t i = (size_t)(h >> 7) & (t->cap - 1);
    while (t->keys[i] && t->keys[i] != h) i = (i + 1) & (t->cap - 1);
    *found = t->keys[i] == h;
    return i;
}

static uint64_t sig_hash(const label *ls, size_t n)
{
    return labels_hash(ls, n) | 1;
}

/* ---- binary operators ------------------------------------------------------------------------------ */

static bool is_comparison(tok_kind op)
{
    return op == T_EQLC || op == T_NEQ || op == T_LSS || op == T_LTE || op == T_GTR || op == T_GTE;
}

/* </ and >/ trim histograms; they keep the metric name and give nothing for floats. */
static bool is_trim(tok_kind op)
{
    return op == T_TRIM_UPPER || op == T_TRIM_LOWER;
}

typedef enum { OP_ARITH, OP_CMP, OP_AND, OP_OR, OP_UNLESS } op_class;

static op_class classify(const promql_expr *e)
{
    switch (e->op) {
    case T_LAND: return OP_AND;
    case T_LOR: return OP_OR;
    case T_LUNLESS: return OP_UNLESS;
    default: return is_comparison(e->op) ? OP_CMP : OP_ARITH;
    }
}

/* Applies an arithmetic or comparison operator. For comparisons *keep says whether the pair
 * passes; the value is then lhs (filter) or 0/1 (bool). */
static double apply_op(const promql_expr *e, double a, double b, bool *keep)
{
    *keep = true;
    switch (e->op) {
    case T_ADD: return a + b;
    case T_SUB: return a - b;
    case T_MUL: return a * b;
    case T_DIV: return a / b;
    case T_MOD: return fmod(a, b);
    case T_POW: return pow(a, b);
    case T_ATAN2: return atan2(a, b);
    case T_EQLC: *keep = a == b; break;
    case T_NEQ: *keep = a != b; break;
    case T_LSS: *keep = a < b; break;
    case T_LTE: *keep = a <= b; break;
    case T_GTR: *keep = a > b; break;
    case T_GTE: *keep = a >= b; break;
    default: break;
    }
    if (e->return_bool) {
        double r = *keep ? 1 : 0;
        *keep = true;
        return r;
    }
    return a;
}

static int scalar_scalar(eval_ctx *c, const promql_expr *e, value *l, value *r, value *out)
{
    out->type = V_SCALAR;
    out->scalar = l->scalar;
    for (size_t i = 0; i < c->n_steps; i++) {
        bool keep;
        out->scalar[i] = apply_op(e, l->scalar[i], r->scalar[i], &keep);
    }
    return 0;
}

/* vector op scalar, or scalar op vector when scalar_left. */
static int vector_scalar(eval_ctx *c, const promql_expr *e, value *vec, value *sc, bool scalar_left,
                         value *out)
{
    bool drop = (classify(e) == OP_ARITH && !is_trim(e->op)) || e->return_bool;
    *out = *vec;
    out->ordered = false;
    for (size_t k = 0; k < out->n; k++) {
        vseries *s = &out->s[k];
        if (s->h) {
            /* The histogram pointers change per step: a private array. */
            native_histogram **hh = eval_alloc(c, c->n_steps * sizeof *hh);
            if (!hh) return STRATA_ENOMEM;
            memcpy(hh, s->h, c->n_steps * sizeof *hh);
            s->h = hh;
        }
        if (drop && vseries_drop_name(c, s)) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!s->has[i]) continue;
            if (vec_hist(s, i)) {
                hval x = {.h = s->h[i]}, y = {.f = sc->scalar[i]}, hr;
                int rc = scalar_left ? hist_binop(c, e, y, x, &hr) : hist_binop(c, e, x, y, &hr);
                if (rc < 0) return rc;
                s->h[i] = hr.h;
                s->v[i] = hr.f;
                s->has[i] = rc > 0;
                continue;
            }
            if (is_trim(e->op)) {
                s->has[i] = 0;
                continue;
            }
            bool keep;
            double a = scalar_left ? sc->scalar[i] : s->v[i];
            double b = scalar_left ? s->v[i] : sc->scalar[i];
            double r = apply_op(e, a, b, &keep);
            /* A filtering comparison keeps the vector's own value, whichever side it is on. */
            if (classify(e) == OP_CMP && !e->return_bool) r = s->v[i];
            if (!keep) s->has[i] = 0;
            else s->v[i] = r;
        }
    }
    return drop ? vec_check_duplicates(c, out) : 0;
}

/* The matching signature of a series' labels. */
static label *signature(eval_ctx *c, const promql_expr *e, const vseries *s, size_t *n)
{
    if (e->has_matching && e->matching_on)
        return labels_only(c, s->labels, s->n_labels, (const char *const *)e->grouping,
                           e->n_grouping, n);
    return labels_without(c, s->labels, s->n_labels, (const char *const *)e->grouping,
                          e->has_matching ? e->n_grouping : 0, true, n);
}

static int set_operation(eval_ctx *c, const promql_expr *e, op_class cls, value *l, value *r,
                         value *out)
{
    group_table t;
    int rc = gt_init(&t, r->n + l->n);
    if (rc) return rc;
    /* Per signature, which steps the right-hand side has. */
    uint8_t **rhs_has = calloc(r->n + l->n + 1, sizeof *rhs_has);
    uint64_t *lsig = malloc((l->n + 1) * sizeof *lsig);
    if (!rhs_has || !lsig) {
        gt_free(&t);
        free(rhs_has);
        free(lsig);
        return STRATA_ENOMEM;
    }
    size_t groups = 0;
    for (size_t k = 0; k < r->n; k++) {
        size_t n;
        label *sig = signature(c, e, &r->s[k], &n);
        if (!sig) return STRATA_ENOMEM;
        bool found;
        size_t slot = gt_slot(&t, sig_hash(sig, n), &found);
        if (!found) {
            t.keys[slot] = sig_hash(sig, n);
            t.vals[slot] = groups;
            rhs_has[groups] = eval_alloc(c, c->n_steps);
            if (!rhs_has[groups]) return STRATA_ENOMEM;
            memset(rhs_has[groups], 0, c->n_steps);
            groups++;
        }
        uint8_t *h = rhs_has[t.vals[slot]];
        for (size_t i = 0; i < c->n_steps; i++) h[i] |= r->s[k].has[i];
    }
    for (size_t k = 0; k < l->n; k++) {
        size_t n;
        label *sig = signature(c, e, &l->s[k], &n);
        if (!sig) return STRATA_ENOMEM;
        lsig[k] = sig_hash(sig, n);
    }
    out->type = V_VECTOR;
    size_t cap = 0;
    for (size_t k = 0; k < l->n; k++) {
        bool found;
        size_t slot = gt_slot(&t, lsig[k], &found);
        const uint8_t *h = found ? rhs_has[t.vals[slot]] : NULL;
        vseries *s = vec_add(c, out, &cap, l->s[k].labels, l->s[k].n_labels);
        if (!s) return STRATA_ENOMEM;
        for (size_t i = 0; i < c->n_steps; i++) {
            bool in_rhs = h && h[i];
            bool keep = l->s[k].has[i] && (cls == OP_AND ? in_rhs : cls == OP_UNLESS ? !in_rhs : true);
            s->has[i] = keep;
            s->v[i] = l->s[k].v[i];
            if (keep && vec_hist(&l->s[k], i) && vec_set_hist(c, s, i, l->s[k].h[i]))
                return STRATA_ENOMEM;
        }
        s->drop_name = l->s[k].drop_name;
    }
    if (cls == OP_OR) {
        /* Right-hand series whose signature the left side lacks at that step. */
        group_table lt;
        if ((rc = gt_init(&lt, l->n + 1))) return rc;
        uint8_t **lhs_has = calloc(l->n + 1, sizeof *lhs_has);
        size_t lg = 0;
        for (size_t k = 0; k < l->n && lhs_has; k++) {
            bool found;
            size_t slot = gt_slot(&lt, lsig[k], &found);
            if (!found) {
                lt.keys[slot] = lsig[k];
                lt.vals[slot] = lg;
                lhs_has[lg] = eval_alloc(c, c->n_steps);
                if (!lhs_has[lg]) break;
                memset(lhs_has[lg], 0, c->n_steps);
                lg++;
            }
            for (size_t i = 0; i < c->n_steps; i++) lhs_has[lt.vals[slot]][i] |= l->s[k].has[i];
        }
        for (size_t k = 0; k < r->n && lhs_has; k++) {
            size_t n;
            label *sig = signature(c, e, &r->s[k], &n);
            if (!sig) break;
            bool found;
            size_t slot = gt_slot(&lt, sig_hash(sig, n), &found);
            const uint8_t *h = found ? lhs_has[lt.vals[slot]] : NULL;
            vseries *s = vec_add(c, out, &cap, r->s[k].labels, r->s[k].n_labels);
            if (!s) break;
            for (size_t i = 0; i < c->n_steps; i++) {
                s->has[i] = r->s[k].has[i] && !(h && h[i]);
                s->v[i] = r->s[k].v[i];
                if (s->has[i] && vec_hist(&r->s[k], i) && vec_set_hist(c, s, i, r->s[k].h[i]))
                    break;
            }
            s->drop_name = r->s[k].drop_name;
        }
        free(lhs_has);
        gt_free(&lt);
    }
    gt_free(&t);
    free(rhs_has);
    free(lsig);
    return 0;
}

/* Result labels of a matched pair (Prometheus' resultMetric). */
static label *result_labels(eval_ctx *c, const promql_expr *e, const vseries *lhs,
                            const vseries *rhs, size_t *n)
{
    /* Arithmetic drops the name at once (not the trim operators); bool only marks it under
     * delayed name removal. */
    bool drop = (classify(e) == OP_ARITH && !is_trim(e->op)) || (e->return_bool && !eval_delays_names(c));
    size_t k = lhs->n_labels;
    label *ls = drop ? labels_drop_name(c, lhs->labels, lhs->n_labels, &k) : lhs->labels;
    if (!ls) return NULL;
    if (e->card == 0) {
        if (e->has_matching && e->matching_on)
            ls = labels_only(c, ls, k, (const char *const *)e->grouping, e->n_grouping, &k);
        else if (e->has_matching)
            ls = labels_without(c, ls, k, (const char *const *)e->grouping, e->n_grouping, false, &k);
        if (!ls) return NULL;
    }
    for (size_t i = 0; i < e->n_extra; i++) {
        uint32_t vl = 0;
        const char *v = labels_get(rhs->labels, rhs->n_labels, e->extra[i], &vl);
        ls = labels_set(c, ls, k, e->extra[i], v ? v : "", v ? vl : 0, &k);
        if (!ls) return NULL;
    }
    *n = k;
    return ls;
}

static int vector_vector(eval_ctx *c, const promql_expr *e, value *l, value *r, value *out)
{
    /* group_right is group_left with the sides swapped. */
    bool swap = e->card == 2;
    value *one = swap ? l : r, *many = swap ? r : l;
    size_t n_one = one->n;
    group_table t;
    int rc = gt_init(&t, n_one + 1);
    if (rc) return rc;
    uint64_t *one_sig = malloc((n_one + 1) * sizeof *one_sig);
    size_t *first = malloc((n_one + 1) * sizeof *first); /* group -> first series of the one side */
    size_t *next_same = malloc((n_one + 1) * sizeof *next_same);
    if (!one_sig || !first || !next_same) {
        rc = STRATA_ENOMEM;
        goto out;
    }
    size_t groups = 0;
    for (size_t k = 0; k < n_one; k++) {
        size_t n;
        label *sig = signature(c, e, &one->s[k], &n);
        if (!sig) {
            rc = STRATA_ENOMEM;
            goto out;
        }
        one_sig[k] = sig_hash(sig, n);
        bool found;
        size_t slot = gt_slot(&t, one_sig[k], &found);
        next_same[k] = SIZE_MAX;
        if (!found) {
            t.keys[slot] = one_sig[k];
            t.vals[slot] = k;
            groups++;
        } else {
            /* Chain series with the same signature; a step may have only one of them. */
            size_t h = t.vals[slot];
            while (next_same[h] != SIZE_MAX) h = next_same[h];
            next_same[h] = k;
        }
    }
    (void)first;
    out->type = V_VECTOR;
    size_t cap = 0;
    /* For one-to-one matching, each "one" series may match one "many" series per step. */
    uint8_t *used = NULL;
    if (e->card == 0) {
        used = calloc(n_one * c->n_steps + 1, 1);
        if (!used) {
            rc = STRATA_ENOMEM;
            goto out;
        }
    }
    for (size_t k = 0; k < many->n && !rc; k++) {
        size_t n;
        label *sig = signature(c, e, &many->s[k], &n);
        if (!sig) {
            rc = STRATA_ENOMEM;
            break;
        }
        bool found;
        size_t slot = gt_slot(&t, sig_hash(sig, n), &found);
        if (!found) continue;
        /* Output series are keyed by the matched "one" series (its labels can add extra labels),
         * created lazily. */
        for (size_t h = t.vals[slot]; h != SIZE_MAX && !rc; h = next_same[h]) {
            vseries *os = NULL;
            for (size_t i = 0; i < c->n_steps; i++) {
                if (!many->s[k].has[i] || !one->s[h].has[i]) continue;
                /* Another series of the one side with this signature at this step? */
                for (size_t h2 = next_same[h]; h2 != SIZE_MAX; h2 = next_same[h2]) {
                    if (one->s[h2].has[i]) {
                        rc = strata_errf(c->err, STRATA_EEXEC,
                                         "found duplicate series for the match group on the %s "
                                         "hand-side of the operation; many-to-many matching not "
                                         "allowed: matching labels must be unique on one side",
                                         swap ? "left" : "right");
                        break;
                    }
                }
                if (rc) break;
                if (used) {
                    if (used[h * c->n_steps + i]) {
                        rc = strata_errf(c->err, STRATA_EEXEC,
                                         "multiple matches for labels: many-to-one matching must "
                                         "be explicit (group_left/group_right)");
                        break;
                    }
                    used[h * c->n_steps + i] = 1;
                }
                if (!os) {
                    const vseries *lhs = swap ? &one->s[h] : &many->s[k];
                    const vseries *rhs = swap ? &many->s[k] : &one->s[h];
                    size_t nl;
                    label *ls = result_labels(c, e, swap ? rhs : lhs, swap ? lhs : rhs, &nl);
                    if (!ls || !(os = vec_add(c, out, &cap, ls, nl))) {
                        rc = STRATA_ENOMEM;
                        break;
                    }
                    os->drop_name = eval_delays_names(c) && (e->return_bool || many->s[k].drop_name);
                }
                const vseries *lv = swap ? &one->s[h] : &many->s[k];
                const vseries *rv = swap ? &many->s[k] : &one->s[h];
                if (vec_hist(lv, i) || vec_hist(rv, i)) {
                    hval x = {.f = lv->v[i], .h = vec_hist(lv, i)};
                    hval y = {.f = rv->v[i], .h = vec_hist(rv, i)}, hr;
                    int hrc = hist_binop(c, e, x, y, &hr);
                    if (hrc < 0) {
                        rc = hrc;
                        break;
                    }
                    if (hrc && hr.h && (rc = vec_set_hist(c, os, i, hr.h))) break;
                    if (hrc && !hr.h) {
                        os->v[i] = hr.f;
                        os->has[i] = 1;
                    }
                    continue;
                }
                if (is_trim(e->op)) continue;
                double a = swap ? one->s[h].v[i] : many->s[k].v[i];
                double b = swap ? many->s[k].v[i] : one->s[h].v[i];
                bool keep;
                double v = apply_op(e, a, b, &keep);
                if (classify(e) == OP_CMP && !e->return_bool) v = many->s[k].v[i];
                if (keep) {
                    os->v[i] = v;
                    os->has[i] = 1;
                }
            }
        }
    }
    free(used);
    if (!rc) rc = vec_check_duplicates(c, out);
    if (rc == STRATA_EEXEC && strstr(c->err, "same labelset"))
        strata_errf(c->err, STRATA_EEXEC,
                    "multiple matches for labels: grouping labels must ensure unique matches");
out:
    gt_free(&t);
    free(one_sig);
    free(first);
    free(next_same);
    return rc;
}

int eval_binary(eval_ctx *c, const promql_expr *e, value *out)
{
    value l, r;
    int rc = eval_node(c, e->lhs, &l);
    if (!rc) rc = eval_node(c, e->rhs, &r);
    if (rc) return rc;
    op_class cls = classify(e);
    if (l.type == V_STRING || r.type == V_STRING || l.type == V_MATRIX || r.type == V_MATRIX)
        return strata_errf(c->err, STRATA_EPARSE,
                           "binary expression must contain only scalar and instant vector types");
    if (cls == OP_AND || cls == OP_OR || cls == OP_UNLESS) {
        if (l.type != V_VECTOR || r.type != V_VECTOR)
            return strata_errf(c->err, STRATA_EPARSE,
                               "set operator \"%s\" not allowed in binary scalar expression", e->func);
        return set_operation(c, e, cls, &l, &r, out);
    }
    if (l.type == V_SCALAR && r.type == V_SCALAR) {
        if (cls == OP_CMP && !e->return_bool)
            return strata_errf(c->err, STRATA_EPARSE,
                               "comparisons between scalars must use BOOL modifier");
        return scalar_scalar(c, e, &l, &r, out);
    }
    if (l.type == V_VECTOR && r.type == V_SCALAR) return vector_scalar(c, e, &l, &r, false, out);
    if (l.type == V_SCALAR && r.type == V_VECTOR) return vector_scalar(c, e, &r, &l, true, out);
    if (e->fill_lhs_set || e->fill_rhs_set) return eval_binary_fill(c, e, &l, &r, out);
    return vector_vector(c, e, &l, &r, out);
}

/* ---- aggregations --------------------------------------------------------------------------------- */

typedef struct agg_group {
    label *labels;
    size_t n_labels;
    size_t *members; /* input series */
    size_t n_members;
    size_t cap_members;
} agg_group;


static double quantile_of(double q, double *v, size_t n);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : -1;
    if (isnan(y)) return 1;
    return x < y ? -1 : x > y;
}

/* Prometheus' quantile: linear interpolation between closest ranks. */
static double quantile_of(double q, double *v, size_t n)
{
    if (n == 0 || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    qsort(v, n, sizeof *v, cmp_double);
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)floor(rank), hi = (size_t)ceil(rank);
    if (hi >= n) hi = n - 1;
    double w = rank - floor(rank);
    return v[lo] * (1 - w) + v[hi] * w;
}

static int group_series(eval_ctx *c, const promql_expr *e, const value *in, agg_group **out_groups,
                        size_t *n_groups, bool keep_name_for_grouping)
{
    group_table t;
    int rc = gt_init(&t, in->n + 1);
    if (rc) return rc;
    agg_group *g = calloc(in->n + 1, sizeof *g);
    if (!g) {
        gt_free(&t);
        return STRATA_ENOMEM;
    }
    size_t ng = 0;
    for (size_t k = 0; k < in->n; k++) {
        size_t n;
        label *ls;
        if (!e->has_grouping) ls = labels_only(c, in->s[k].labels, in->s[k].n_labels, NULL, 0, &n);
        else if (e->without)
            ls = labels_without(c, in->s[k].labels, in->s[k].n_labels,
                                (const char *const *)e->grouping, e->n_grouping,
                                !keep_name_for_grouping, &n);
        else
            ls = labels_only(c, in->s[k].labels, in->s[k].n_labels, (const char *const *)e->grouping,
                             e->n_grouping, &n);
        if (!ls) {
            rc = STRATA_ENOMEM;
            break;
        }
        uint64_t h = sig_hash(ls, n);
        bool found;
        size_t slot = gt_slot(&t, h, &found);
        /* Resolve hash collisions by probing on with label comparison. */
        while (found && !labels_equal(g[t.vals[slot]].labels, g[t.vals[slot]].n_labels, ls, n)) {
            h = h * 0x9e3779b97f4a7c15ull | 1;
            slot = gt_slot(&t, h, &found);
        }
        if (!found) {
            t.keys[slot] = h;
            t.vals[slot] = ng;
            g[ng].labels = ls;
            g[ng].n_labels = n;
            ng++;
        }
        agg_group *gr = &g[t.vals[slot]];
        if (gr->n_members == gr->cap_members) {
            size_t nc = gr->cap_members ? gr->cap_members * 2 : 4;
            size_t *m = realloc(gr->members, nc * sizeof *m);
            if (!m) {
                rc = STRATA_ENOMEM;
                break;
            }
            gr->members = m;
            gr->cap_members = nc;
        }
        gr->members[gr->n_members++] = k;
    }
    gt_free(&t);
    if (rc) {
        for (size_t i = 0; i < ng; i++) free(g[i].members);
        free(g);
        return rc;
    }
    *out_groups = g;
    *n_groups = ng;
    return 0;
}

static void groups_free(agg_group *g, size_t n)
{
    for (size_t i = 0; i < n; i++) free(g[i].members);
    free(g);
}

static int agg_topk(eval_ctx *c, const promql_expr *e, const value *in, const double *param,
                    agg_group *g, size_t ng, bool bottom, bool limit, value *out)
{
    /* topk/bottomk/limitk keep the input series (with all their labels) that rank in each group. */
    out->type = V_VECTOR;
    size_t cap = 0;
    size_t *map = malloc((in->n + 1) * sizeof *map); /* input series -> output index */
    size_t *idx = malloc((in->n + 1) * sizeof *idx);
    if (!map || !idx) {
        free(map);
        free(idx);
        return STRATA_ENOMEM;
    }
    for (size_t s = 0; s < in->n; s++) map[s] = SIZE_MAX;
    int rc = 0;
    for (size_t i = 0; i < c->n_steps && !rc; i++) {
        double kf = param[i];
        if (isnan(kf)) {
            rc = strata_errf(c->err, STRATA_EEXEC, "Parameter value is NaN");
            break;
        }
        if (kf > 9.2e18 || kf < -9.2e18) {
            rc = strata_errf(c->err, STRATA_EEXEC, "Scalar value %g overflows int64", kf);
            break;
        }
        int64_t k = (int64_t)kf;
        if (k < 1) continue;
        for (size_t gi = 0; gi < ng && !rc; gi++) {
            size_t m = 0;
            for (size_t j = 0; j < g[gi].n_members; j++) {
                const vseries *ms = &in->s[g[gi].members[j]];
                /* topk and bottomk rank floats only; limitk keeps histograms too */
                if (ms->has[i] && (limit || !vec_hist(ms, i))) idx[m++] = g[gi].members[j];
            }
            /* Selection of the best k: k is usually small. */
            size_t take = (size_t)k < m ? (size_t)k : m;
            for (size_t a = 0; a < take && !limit; a++) {
                size_t best = a;
                for (size_t b = a + 1; b < m; b++) {
                    double x = in->s[idx[b]].v[i], y = in->s[idx[best]].v[i];
                    bool better = bottom ? (x < y || (isnan(y) && !isnan(x)))
                                         : (x > y || (isnan(y) && !isnan(x)));
                    if (better) best = b;
                }
                size_t tmp = idx[a];
                idx[a] = idx[best];
                idx[best] = tmp;
            }
            for (size_t a = 0; a < take; a++) {
                size_t sidx = idx[a];
                if (map[sidx] == SIZE_MAX) {
                    if (!vec_add(c, out, &cap, in->s[sidx].labels, in->s[sidx].n_labels)) {
                        rc = STRATA_ENOMEM;
                        break;
                    }
                    map[sidx] = out->n - 1;
                    out->s[map[sidx]].drop_name = in->s[sidx].drop_name;
                }
                out->s[map[sidx]].v[i] = in->s[sidx].v[i];
                out->s[map[sidx]].has[i] = 1;
                if (vec_hist(&in->s[sidx], i) &&
                    vec_set_hist(c, &out->s[map[sidx]], i, in->s[sidx].h[i])) {
                    rc = STRATA_ENOMEM;
                    break;
                }
            }
        }
    }
    /* Keep the order of the chosen series for instant queries: best first. */
    if (!rc && c->n_steps == 1 && !limit) {
        for (size_t a = 0; a < out->n; a++)
            for (size_t b = a + 1; b < out->n; b++) {
                double x = out->s[b].v[0], y = out->s[a].v[0];
                bool better = bottom ? (x < y || (isnan(y) && !isnan(x))) : (x > y || (isnan(y) && !isnan(x)));
                if (better) {
                    vseries t = out->s[a];
                    out->s[a] = out->s[b];
                    out->s[b] = t;
                }
            }
        out->ordered = true;
    }
    free(map);
    free(idx);
    return rc;
}

/* Prometheus' label hash (XXH64 of name 0xff value 0xff ...), which limit_ratio samples by, so
 * the same series are kept as Prometheus keeps. */
static uint64_t prom_labels_hash(const label *ls, size_t n)
{
    XXH64_state_t *st = XXH64_createState();
    if (!st) return 0;
    XXH64_reset(st, 0);
    static const unsigned char sep = 0xff;
    for (size_t i = 0; i < n; i++) {
        XXH64_update(st, ls[i].name, ls[i].name_len);
        XXH64_update(st, &sep, 1);
        XXH64_update(st, ls[i].value, ls[i].value_len);
        XXH64_update(st, &sep, 1);
    }
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
}

/* limit_ratio(r, v): a deterministic sample of series by label hash; r < 0 takes the
 * complement, so limit_ratio(r) and limit_ratio(r - 1) partition the input. */
static int agg_limit_ratio(eval_ctx *c, const value *in, const double *ratio, value *out)
{
    out->type = V_VECTOR;
    size_t cap = 0;
    for (size_t i = 0; i < c->n_steps; i++)
        if (isnan(ratio[i])) return strata_errf(c->err, STRATA_EEXEC, "Ratio value is NaN");
    for (size_t k = 0; k < in->n; k++) {
        double off = (double)prom_labels_hash(in->s[k].labels, in->s[k].n_labels) / 18446744073709551615.0;
        vseries *os = NULL;
        for (size_t i = 0; i < c->n_steps; i++) {
            if (!in->s[k].has[i]) continue;
            double r = ratio[i];
            if (isnan(r)) return strata_errf(c->err, STRATA_EEXEC, "Ratio value is NaN");
            if (r > 1) r = 1;
            if (r < -1) r = -1;
            bool keep = (r >= 0 && off < r) || (r < 0 && off >= 1.0 + r);
            if (!keep) continue;
            if (!os && !(os = vec_add(c, out, &cap, in->s[k].labels, in->s[k].n_labels)))
                return STRATA_ENOMEM;
            os->drop_name = in->s[k].drop_name;
            os->v[i] = in->s[k].v[i];
            os->has[i] = 1;
            if (vec_hist(&in->s[k], i) && vec_set_hist(c, os, i, in->s[k].h[i]))
                return STRATA_ENOMEM;
        }
    }
    return 0;
}

int eval_aggregation(eval_ctx *c, const promql_expr *e, value *out)
{
    const char *op = e->func;
    bool has_param = !strcmp(op, "topk") || !strcmp(op, "bottomk") || !strcmp(op, "quantile") ||
                     !strcmp(op, "count_values") || !strcmp(op, "limitk") || !strcmp(op, "limit_ratio");
    size_t want = has_param ? 2 : 1;
    if (e->n_args != want)
        return strata_errf(c->err, STRATA_EPARSE, "wrong number of arguments for aggregate expression "
                                                  "provided, expected %zu, got %zu", want, e->n_args);
    value param = {0}, in;
    int rc = 0;
    if (has_param) {
        rc = eval_node(c, e->args[0], &param);
        if (rc) return rc;
        if (!strcmp(op, "count_values") ? param.type != V_STRING : param.type != V_SCALAR)
            return strata_errf(c->err, STRATA_EPARSE, "expected type %s in aggregation parameter",
                               !strcmp(op, "count_values") ? "string" : "scalar");
    }
    rc = eval_node(c, e->args[want - 1], &in);
    if (rc) return rc;
    if (in.type != V_VECTOR)
        return strata_errf(c->err, STRATA_EPARSE,
                           "expected type instant vector in aggregation expression, got %s",
                           in.type == V_SCALAR ? "scalar" : in.type == V_MATRIX ? "range vector" : "string");
    agg_group *g;
    size_t ng;
    bool keeps_series = !strcmp(op, "topk") || !strcmp(op, "bottomk") || !strcmp(op, "limitk") ||
                        !strcmp(op, "limit_ratio");
    rc = group_series(c, e, &in, &g, &ng, false);
    if (rc) return rc;
    if (keeps_series) {
        if (!strcmp(op, "limit_ratio")) {
            rc = agg_limit_ratio(c, &in, param.scalar, out);
            groups_free(g, ng);
            return rc;
        }
        rc = agg_topk(c, e, &in, param.scalar, g, ng, !strcmp(op, "bottomk"), !strcmp(op, "limitk"), out);
        groups_free(g, ng);
        return rc;
    }
    out->type = V_VECTOR;
    size_t cap = 0;
    double *vals = malloc((in.n + 1) * sizeof *vals);
    if (!vals) {
        groups_free(g, ng);
        return STRATA_ENOMEM;
    }
    if (!strcmp(op, "count_values")) {
        const char *lname = param.str;
        if (!label_name_valid(lname, (uint32_t)strlen(lname), STRATA_NAMES_UTF8)) {
            free(vals);
            groups_free(g, ng);
            return strata_errf(c->err, STRATA_EEXEC, "invalid label name \"%s\"", lname);
        }
        /* Output series per (group, value string). */
        bool overwrites = false; /* the value label replaces a grouping label somewhere */
        for (size_t gi = 0; gi < ng; gi++) {
            uint32_t ovl;
            if (labels_get(g[gi].labels, g[gi].n_labels, lname, &ovl)) overwrites = true;
        }
        for (size_t gi = 0; gi < ng && !rc; gi++) {
            value tmp = {.type = V_VECTOR};
            size_t tcap = 0;
            for (size_t i = 0; i < c->n_steps && !rc; i++) {
                for (size_t j = 0; j < g[gi].n_members; j++) {
                    const vseries *s = &in.s[g[gi].members[j]];
                    if (!s->has[i]) continue;
                    char numbuf[400], *num = numbuf;
                    format_float(s->v[i], numbuf, sizeof numbuf);
                    if (vec_hist(s, i)) {
                        /* a histogram counts by its text form, as in Prometheus */
                        buf hb = {0};
                        num = hist_format(s->h[i], &hb) || !hb.data
                                  ? NULL
                                  : arena_strndup(c->mem, (char *)hb.data, hb.len);
                        buf_free(&hb);
                        if (!num) {
                            rc = STRATA_ENOMEM;
                            break;
                        }
                    }
                    size_t nl;
                    label *ls = labels_set(c, g[gi].labels, g[gi].n_labels, lname,
                                           arena_strndup(c->mem, num, strlen(num)), strlen(num), &nl);
                    if (!ls) {
                        rc = STRATA_ENOMEM;
                        break;
                    }
                    vseries *os = NULL;
                    for (size_t q = 0; q < tmp.n; q++)
                        if (labels_equal(tmp.s[q].labels, tmp.s[q].n_labels, ls, nl)) os = &tmp.s[q];
                    if (!os && !(os = vec_add(c, &tmp, &tcap, ls, nl))) {
                        rc = STRATA_ENOMEM;
                        break;
                    }
                    os->v[i] = os->has[i] ? os->v[i] + 1 : 1;
                    os->has[i] = 1;
                }
            }
            for (size_t q = 0; q < tmp.n && !rc; q++) {
                /* The value label may overwrite a grouping label: groups then share a series. */
                vseries *os = NULL;
                for (size_t o = 0; overwrites && o < out->n && !os; o++)
                    if (labels_equal(out->s[o].labels, out->s[o].n_labels, tmp.s[q].labels,
                                     tmp.s[q].n_labels))
                        os = &out->s[o];
                if (os) {
                    for (size_t i = 0; i < c->n_steps; i++) {
                        if (!tmp.s[q].has[i]) continue;
                        os->v[i] = os->has[i] ? os->v[i] + tmp.s[q].v[i] : tmp.s[q].v[i];
                        os->has[i] = 1;
                    }
                    continue;
                }
                os = vec_add(c, out, &cap, tmp.s[q].labels, tmp.s[q].n_labels);
                if (!os) {
                    rc = STRATA_ENOMEM;
                    break;
                }
                memcpy(os->v, tmp.s[q].v, c->n_steps * sizeof *os->v);
                memcpy(os->has, tmp.s[q].has, c->n_steps);
            }
        }
        free(vals);
        groups_free(g, ng);
        return rc;
    }
    for (size_t gi = 0; gi < ng && !rc; gi++) {
        vseries *os = vec_add(c, out, &cap, g[gi].labels, g[gi].n_labels);
        if (!os) {
            rc = STRATA_ENOMEM;
            break;
        }
        /* A group keeps a name (by (__name__)) only while none of its members dropped it. */
        for (size_t j = 0; j < g[gi].n_members; j++) os->drop_name |= in.s[g[gi].members[j]].drop_name;
        for (size_t i = 0; i < c->n_steps; i++) {
            int hr = hist_agg_step(c, op, &in, g[gi].members, g[gi].n_members, i,
                                   param.scalar ? param.scalar[i] : 0, os);
            if (hr < 0) {
                rc = hr;
                break;
            }
            if (hr) continue;
            size_t m = 0;
            for (size_t j = 0; j < g[gi].n_members; j++) {
                const vseries *s = &in.s[g[gi].members[j]];
                if (s->has[i] && !vec_hist(s, i)) vals[m++] = s->v[i];
            }
            if (!m) continue;
            double r = 0;
            if (!strcmp(op, "sum")) {
                double sum = 0, comp = 0;
                for (size_t j = 0; j < m; j++) kahan_sum_inc(vals[j], &sum, &comp);
                r = sum + comp;
            } else if (!strcmp(op, "avg")) {
                r = prom_avg(vals, m);
            } else if (!strcmp(op, "count")) {
                r = (double)m;
            } else if (!strcmp(op, "group")) {
                r = 1;
            } else if (!strcmp(op, "min") || !strcmp(op, "max")) {
                bool mx = !strcmp(op, "max");
                r = vals[0];
                for (size_t j = 1; j < m; j++)
                    if ((mx ? vals[j] > r : vals[j] < r) || isnan(r)) r = vals[j];
            } else if (!strcmp(op, "stddev") || !strcmp(op, "stdvar")) {
                double mean = 0, cm = 0, aux = 0, ca = 0;
                for (size_t j = 0; j < m; j++) {
                    double delta = vals[j] - (mean + cm);
                    kahan_sum_inc(delta / (double)(j + 1), &mean, &cm);
                    kahan_sum_inc(delta * (vals[j] - (mean + cm)), &aux, &ca);
                }
                r = (aux + ca) / (double)m;
                if (!strcmp(op, "stddev")) r = sqrt(r);
            } else if (!strcmp(op, "quantile")) {
                r = quantile_of(param.scalar[i], vals, m);
            } else {
                rc = strata_errf(c->err, STRATA_EUNSUPPORTED, "aggregation \"%s\" is not supported", op);
                break;
            }
            os->v[i] = r;
            os->has[i] = 1;
        }
    }
    free(vals);
    groups_free(g, ng);
    return rc;
}

/* ---- shared with the fill modifiers (fill.c) ------------------------------------------------------- */

label *binop_signature(eval_ctx *c, const promql_expr *e, const vseries *s, size_t *n)
{
    return signature(c, e, s, n);
}

label *binop_result_labels(eval_ctx *c, const promql_expr *e, const vseries *lhs,
                           const vseries *rhs, size_t *n)
{
    return result_labels(c, e, lhs, rhs, n);
}

double binop_apply(const promql_expr *e, double a, double b, bool *keep)
{
    return apply_op(e, a, b, keep);
}
