/*
 * fill.c: the fill(), fill_left() and fill_right() modifiers of vector-to-vector arithmetic and
 * comparison operators (experimental in Prometheus 3).
 *
 * Without a fill value a series whose match group has no partner on the other side produces
 * nothing; with one, the missing side is stood in for by a series carrying only the match group's
 * labels (the on(...) labels, or all but the ignoring(...) labels and __name__) and the fill value.
 * Prometheus evaluates step by step: the "one" side is indexed by match group, every series of the
 * "many" side is paired with its partner or the filled stand-in, then the "one" side's series
 * left unmatched at that step are paired with a filled "many" side. For group_right the sides are
 * swapped first and the fill values are not (so fill_right then fills the left side), which the
 * conformance tests pin down; this file does the same.
 *
 * The dense model of eval.h is kept: a pair of inputs (or an input and a stand-in) always yields
 * the same output labels, so the output series of each pair is found once and cached.
 */
#include "query/fill.h"
#include "query/idxmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct fill_state {
    eval_ctx *c;
    const promql_expr *e;
    bool swapped;     /* group_right: "lhs" below is the written right side */
    value *lhs, *rhs; /* the many side and the one side */
    size_t n_groups;  /* distinct match groups over both sides */
    size_t *lhs_group, *rhs_group;
    vseries *standin; /* per group: the labels of a filled series */
    idx_map pairs;    /* (lhs id, rhs id) -> output series */
    idx_map outs;     /* output labels hash -> first output series with that hash */
    size_t *out_next; /* chain of output series with the same labels hash */
    size_t out_cap, chain_cap;
    value *out;
} fill_state;

/* The output series of a pair; ids below n count input series, above it stand-ins by group. */
static vseries *pair_output(fill_state *f, const vseries *ls, size_t lid, const vseries *rs,
                            size_t rid)
{
    eval_ctx *c = f->c;
    uint64_t key = ((uint64_t)(lid + 1) << 32) ^ (uint64_t)(rid + 1);
    bool found;
    size_t slot = idx_map_slot(&f->pairs, key, &found);
    if (found) return &f->out->s[f->pairs.vals[slot]];
    size_t nl;
    label *ls_out = binop_result_labels(c, f->e, ls, rs, &nl);
    if (!ls_out) return NULL;
    /* Different pairs may produce the same labels: they share one output series. */
    uint64_t h = labels_hash(ls_out, nl) | 1;
    size_t oslot = idx_map_slot(&f->outs, h, &found);
    size_t idx = SIZE_MAX;
    if (found)
        for (size_t k = f->outs.vals[oslot]; k != SIZE_MAX; k = f->out_next[k])
            if (labels_equal(f->out->s[k].labels, f->out->s[k].n_labels, ls_out, nl)) {
                idx = k;
                break;
            }
    if (idx == SIZE_MAX) {
        if (!vec_add(c, f->out, &f->out_cap, ls_out, nl)) return NULL;
        idx = f->out->n - 1;
        /* bool only marks the name under delayed removal; a comparison keeps the left's mark */
        f->out->s[idx].drop_name = eval_delays_names(c) && (f->e->return_bool || ls->drop_name);
        if (idx >= f->chain_cap) {
            size_t nc = f->chain_cap ? f->chain_cap * 2 : 64;
            size_t *nn = realloc(f->out_next, nc * sizeof *nn);
            if (!nn) return NULL;
            f->out_next = nn;
            f->chain_cap = nc;
        }
        f->out_next[idx] = found ? f->outs.vals[oslot] : SIZE_MAX;
        if (found)
            f->outs.vals[oslot] = idx;
        else if (idx_map_put(&f->outs, oslot, h, idx))
            return NULL;
    }
    if (idx_map_put(&f->pairs, slot, key, idx)) return NULL;
    return &f->out->s[idx];
}

/* One pair at step i: the operation on the written left and right values. */
static int apply_pair(fill_state *f, size_t i, const vseries *ls, size_t lid, double lv,
                      const vseries *rs, size_t rid, double rv, uint8_t *matched)
{
    eval_ctx *c = f->c;
    const promql_expr *e = f->e;
    double a = f->swapped ? rv : lv, b = f->swapped ? lv : rv;
    bool keep;
    double v = binop_apply(e, a, b, &keep);
    vseries *os = pair_output(f, ls, lid, rs, rid);
    if (!os) return strata_errf(c->err, STRATA_ENOMEM, "out of memory evaluating the query");
    if (e->card == 0) {
        size_t g = rid < f->rhs->n ? f->rhs_group[rid] : rid - f->rhs->n;
        if (matched[g])
            return strata_errf(c->err, STRATA_EEXEC,
                               "multiple matches for labels: many-to-one matching must be "
                               "explicit (group_left/group_right)");
    }
    if (os->has[i])
        return strata_errf(c->err, STRATA_EEXEC, "%s",
                           e->card == 0 ? "vector cannot contain metrics with the same labelset"
                                        : "multiple matches for labels: grouping labels must "
                                          "ensure unique matches");
    size_t g = rid < f->rhs->n ? f->rhs_group[rid] : rid - f->rhs->n;
    matched[g] = 1;
    if (!keep) return 0;
    os->v[i] = v;
    os->has[i] = 1;
    return 0;
}

/* Assigns every series of both sides its match group and builds the groups' stand-ins. */
static int assign_groups(fill_state *f)
{
    eval_ctx *c = f->c;
    size_t total = f->lhs->n + f->rhs->n;
    idx_map sigs;
    if (idx_map_init(&sigs, total + 1)) return STRATA_ENOMEM;
    f->lhs_group = eval_alloc(c, (f->lhs->n + 1) * sizeof *f->lhs_group);
    f->rhs_group = eval_alloc(c, (f->rhs->n + 1) * sizeof *f->rhs_group);
    f->standin = eval_alloc(c, (total + 1) * sizeof *f->standin);
    int rc = f->lhs_group && f->rhs_group && f->standin ? 0 : STRATA_ENOMEM;
    for (size_t k = 0; k < total && !rc; k++) {
        const vseries *s = k < f->rhs->n ? &f->rhs->s[k] : &f->lhs->s[k - f->rhs->n];
        size_t n;
        label *sig = binop_signature(c, f->e, s, &n);
        if (!sig) {
            rc = STRATA_ENOMEM;
            break;
        }
        uint64_t h = labels_hash(sig, n) | 1;
        bool found;
        size_t slot = idx_map_slot(&sigs, h, &found);
        /* Hash collisions between different label sets are probed past. */
        while (found && !labels_equal(f->standin[sigs.vals[slot]].labels,
                                      f->standin[sigs.vals[slot]].n_labels, sig, n)) {
            h = h * 0x100000001b3ull | 1;
            slot = idx_map_slot(&sigs, h, &found);
        }
        if (!found) {
            if (idx_map_put(&sigs, slot, h, f->n_groups)) {
                rc = STRATA_ENOMEM;
                break;
            }
            slot = idx_map_slot(&sigs, h, &found);
            f->standin[f->n_groups] = (vseries){.labels = sig, .n_labels = n};
            f->n_groups++;
        }
        if (k < f->rhs->n)
            f->rhs_group[k] = sigs.vals[slot];
        else
            f->lhs_group[k - f->rhs->n] = sigs.vals[slot];
    }
    idx_map_free(&sigs);
    return rc;
}

int eval_binary_fill(eval_ctx *c, const promql_expr *e, value *l, value *r, value *out)
{
    out->type = V_VECTOR;
    if (l->n == 0 && r->n == 0) return 0;
    fill_state f = {.c = c, .e = e, .swapped = e->card == 2, .out = out};
    f.lhs = f.swapped ? r : l;
    f.rhs = f.swapped ? l : r;
    int rc = assign_groups(&f);
    if (rc) return rc;
    size_t *rhs_at = malloc((f.n_groups + 1) * sizeof *rhs_at);
    uint8_t *matched = malloc(f.n_groups + 1);
    if (!rhs_at || !matched || idx_map_init(&f.pairs, 64) || idx_map_init(&f.outs, 64)) {
        rc = STRATA_ENOMEM;
        goto done;
    }
    size_t n_l = f.lhs->n, n_r = f.rhs->n;
    for (size_t i = 0; i < c->n_steps && !rc; i++) {
        for (size_t g = 0; g < f.n_groups; g++)
            rhs_at[g] = SIZE_MAX;
        memset(matched, 0, f.n_groups);
        for (size_t k = 0; k < n_r && !rc; k++) {
            if (!f.rhs->s[k].has[i]) continue;
            size_t g = f.rhs_group[k];
            if (rhs_at[g] != SIZE_MAX)
                rc = strata_errf(c->err, STRATA_EEXEC,
                                 "found duplicate series for the match group on the %s hand-side "
                                 "of the operation; many-to-many matching not allowed: matching "
                                 "labels must be unique on one side",
                                 f.swapped ? "left" : "right");
            rhs_at[g] = k;
        }
        for (size_t k = 0; k < n_l && !rc; k++) {
            const vseries *ls = &f.lhs->s[k];
            if (!ls->has[i]) continue;
            size_t g = f.lhs_group[k], rk = rhs_at[g];
            if (rk != SIZE_MAX)
                rc = apply_pair(&f, i, ls, k, ls->v[i], &f.rhs->s[rk], rk, f.rhs->s[rk].v[i],
                                matched);
            else if (e->fill_rhs_set)
                rc = apply_pair(&f, i, ls, k, ls->v[i], &f.standin[g], n_r + g, e->fill_rhs,
                                matched);
        }
        for (size_t k = 0; k < n_r && !rc && e->fill_lhs_set; k++) {
            const vseries *rs = &f.rhs->s[k];
            if (!rs->has[i] || matched[f.rhs_group[k]]) continue;
            size_t g = f.rhs_group[k];
            rc = apply_pair(&f, i, &f.standin[g], n_l + g, e->fill_lhs, rs, k, rs->v[i], matched);
        }
        if (!rc) rc = eval_check(c);
    }
done:
    free(rhs_at);
    free(matched);
    idx_map_free(&f.pairs);
    idx_map_free(&f.outs);
    free(f.out_next);
    return rc;
}
