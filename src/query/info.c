/*
 * info.c: the experimental info(v [, {label selectors}]) function of Prometheus 3: each series of
 * v gains the data labels of the info series (target_info by default) that share its identifying
 * labels (instance and job), step by step.
 *
 * The facts follow Prometheus: info series are looked up at the time the first argument's first
 * selector reads (its @ and offset, or those of the enclosing subqueries, also govern the info
 * series), with the lookback window; when two info series of one metric share the identifying
 * labels at a step the newer sample wins and a tie is an error; series of v that are info series
 * themselves pass unchanged; a data label already on the series is kept; two info metrics giving
 * one label different values is an error; and a series that finds no info series is kept only
 * when every data label matcher accepts the empty string.
 *
 * Each output series is found once per change of the info series a base series matches, so a
 * stable info series costs one label merge per base series, not one per step.
 */
#include "query/info.h"
#include "query/hist_eval.h"

#include "query/idxmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static const char *const id_labels[] = {"instance", "job"};
#define N_ID_LABELS 2
#define NO_SAMPLE INT64_MIN

typedef struct info_series {
    const label *labels;
    size_t n_labels;
    const char *name;
    uint32_t name_len;
    uint64_t sig;
    int64_t *orig_t; /* per step: the timestamp of the sample found, NO_SAMPLE if none */
} info_series;

typedef struct info_state {
    eval_ctx *c;
    matcher **data; /* the data label matchers (no __name__ ones) */
    size_t n_data;
    matcher **names; /* the effective __name__ matchers */
    size_t n_names;
    matcher *owned[1]; /* a matcher made here (target_info or .+_info) */
    info_series *info;
    size_t n_info;
    const char **metric_names; /* distinct info metric names */
    uint32_t *metric_name_lens;
    size_t n_metric_names;
} info_state;

static bool is_name(const char *s, size_t n)
{
    return n == 8 && memcmp(s, LABEL_METRIC_NAME, 8) == 0;
}

/* The signature an info metric's series and a base series are joined on: the metric name and
 * the identifying labels the series has. */
static uint64_t join_sig(const char *name, uint32_t name_len, const label *ls, size_t n)
{
    label sig[1 + N_ID_LABELS];
    size_t k = 0;
    sig[k++] =
        (label){.name = LABEL_METRIC_NAME, .name_len = 8, .value = name, .value_len = name_len};
    for (size_t i = 0; i < N_ID_LABELS; i++) {
        uint32_t vl = 0;
        const char *v = labels_get(ls, n, id_labels[i], &vl);
        if (v && vl)
            sig[k++] = (label){.name = id_labels[i],
                               .name_len = (uint32_t)strlen(id_labels[i]),
                               .value = v,
                               .value_len = vl};
    }
    return labels_hash(sig, k) | 1;
}

static bool same_id_labels(const label *a, size_t na, const label *b, size_t nb)
{
    for (size_t i = 0; i < N_ID_LABELS; i++) {
        uint32_t al = 0, bl = 0;
        const char *av = labels_get(a, na, id_labels[i], &al);
        const char *bv = labels_get(b, nb, id_labels[i], &bl);
        if (!av) al = 0;
        if (!bv) bl = 0;
        if (al != bl || (al && memcmp(av, bv, al) != 0)) return false;
    }
    return true;
}

static bool names_match(const info_state *st, const label *ls, size_t n)
{
    uint32_t nl = 0;
    const char *name = labels_get(ls, n, LABEL_METRIC_NAME, &nl);
    for (size_t i = 0; i < st->n_names; i++)
        if (!matcher_matches(st->names[i], name ? name : "", name ? nl : 0)) return false;
    return true;
}

/* Splits the label selector into data matchers and __name__ matchers, and adds the implied name
 * matcher: target_info without any, .+_info when all are negative. */
static int prepare_matchers(info_state *st, const promql_expr *sel)
{
    eval_ctx *c = st->c;
    size_t n = sel ? sel->n_ms : 0;
    st->data = eval_alloc(c, (n + 1) * sizeof *st->data);
    st->names = eval_alloc(c, (n + 2) * sizeof *st->names);
    if (!st->data || !st->names) return STRATA_ENOMEM;
    bool positive = false;
    for (size_t i = 0; i < n; i++) {
        matcher *m = sel->ms[i];
        if (is_name(m->name, m->name_len)) {
            st->names[st->n_names++] = m;
            positive |= m->type == STRATA_MATCH_EQUAL || m->type == STRATA_MATCH_REGEX;
        } else {
            st->data[st->n_data++] = m;
        }
    }
    if (positive) return 0;
    bool none = st->n_names == 0;
    int rc = none ? matcher_new(STRATA_MATCH_EQUAL, LABEL_METRIC_NAME, 8, "target_info", 11,
                                &st->owned[0], c->err)
                  : matcher_new(STRATA_MATCH_REGEX, LABEL_METRIC_NAME, 8, ".+_info", 7,
                                &st->owned[0], c->err);
    if (rc) return rc;
    memmove(st->names + 1, st->names, st->n_names * sizeof *st->names);
    st->names[0] = st->owned[0];
    st->n_names++;
    return 0;
}

/* The @ time (has_at) and offset that govern the info series: those of the first selector in
 * the argument, or of its innermost enclosing subquery with an @, offsets adding up on the way. */
static bool find_ref_time(const eval_ctx *c, const promql_expr *e, const promql_expr **path,
                          size_t depth, bool *has_at, int64_t *at, int64_t *offset)
{
    if (!e || depth >= PROMQL_MAX_DEPTH) return false;
    if (e->kind == N_VECTOR || e->kind == N_MATRIX) {
        *offset = e->offset_ms;
        const promql_expr *anchor = e->at != AT_NONE ? e : NULL;
        for (size_t i = depth; !anchor && i-- > 0;) {
            if (path[i]->kind != N_SUBQUERY) continue;
            *offset += path[i]->offset_ms;
            if (path[i]->at != AT_NONE) anchor = path[i];
        }
        *has_at = anchor != NULL;
        if (anchor)
            *at = anchor->at == AT_TIME    ? anchor->at_ms
                  : anchor->at == AT_START ? c->query_start
                                           : c->query_end;
        return true;
    }
    path[depth] = e;
    for (size_t i = 0; i < e->n_args; i++)
        if (find_ref_time(c, e->args[i], path, depth + 1, has_at, at, offset)) return true;
    return find_ref_time(c, e->lhs, path, depth + 1, has_at, at, offset) ||
           find_ref_time(c, e->rhs, path, depth + 1, has_at, at, offset) ||
           find_ref_time(c, e->inner, path, depth + 1, has_at, at, offset);
}

/* A set of label values, by hash, for the identifying labels of the base series. */
typedef struct value_set {
    idx_map m;
    const char **vals;
    uint32_t *lens;
    size_t n, cap;
} value_set;

static int vs_add(value_set *s, const char *v, uint32_t len)
{
    uint64_t h = XXH3_64bits(v, len) | 1;
    bool found;
    size_t slot = idx_map_slot(&s->m, h, &found);
    while (found &&
           !(s->lens[s->m.vals[slot]] == len && !memcmp(s->vals[s->m.vals[slot]], v, len))) {
        h = h * 0x100000001b3ull | 1;
        slot = idx_map_slot(&s->m, h, &found);
    }
    if (found) return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        const char **nv = realloc(s->vals, nc * sizeof *nv);
        if (!nv) return STRATA_ENOMEM;
        s->vals = nv;
        uint32_t *nl = realloc(s->lens, nc * sizeof *nl);
        if (!nl) return STRATA_ENOMEM;
        s->lens = nl;
        s->cap = nc;
    }
    s->vals[s->n] = v;
    s->lens[s->n] = len;
    return idx_map_put(&s->m, slot, h, s->n++);
}

static bool vs_has(const value_set *s, const char *v, uint32_t len)
{
    uint64_t h = XXH3_64bits(v, len) | 1;
    bool found;
    size_t slot = idx_map_slot(&s->m, h, &found);
    while (found) {
        size_t i = s->m.vals[slot];
        if (s->lens[i] == len && !memcmp(s->vals[i], v, len)) return true;
        h = h * 0x100000001b3ull | 1;
        slot = idx_map_slot(&s->m, h, &found);
    }
    return false;
}

static void vs_free(value_set *s)
{
    idx_map_free(&s->m);
    free(s->vals);
    free(s->lens);
}

/* Reads the info series that may join a base series, each evaluated at every step. */
static int fetch_info(info_state *st, const value *base, const uint8_t *ignored, bool has_at,
                      int64_t at, int64_t offset)
{
    eval_ctx *c = st->c;
    value_set ids[N_ID_LABELS];
    memset(ids, 0, sizeof ids);
    int rc = 0;
    for (size_t i = 0; i < N_ID_LABELS && !rc; i++)
        rc = idx_map_init(&ids[i].m, 16);
    bool any = false;
    for (size_t k = 0; k < base->n && !rc; k++) {
        if (ignored[k]) continue;
        for (size_t i = 0; i < N_ID_LABELS && !rc; i++) {
            uint32_t vl = 0;
            const char *v = labels_get(base->s[k].labels, base->s[k].n_labels, id_labels[i], &vl);
            if (!v || !vl) continue;
            any = true;
            rc = vs_add(&ids[i], v, vl);
        }
    }
    if (rc || !any) goto out;

    size_t n_ms = st->n_data + st->n_names;
    const matcher **ms = eval_alloc(c, n_ms * sizeof *ms);
    if (!ms) {
        rc = STRATA_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < st->n_data; i++)
        ms[i] = st->data[i];
    for (size_t i = 0; i < st->n_names; i++)
        ms[st->n_data + i] = st->names[i];
    int64_t lo = (has_at ? at : c->start) - c->o->lookback_ms + 1 - offset;
    int64_t hi = (has_at ? at : c->end) - offset;
    series_set *set;
    if ((rc = db_select(c->db, ms, n_ms, lo, hi, &set, c->err))) goto out;
    size_t cap = 0;
    const label *ls;
    size_t nl, ns;
    const strata_sample *ss;
    while ((rc = series_set_next(set, &ls, &nl, &ss, &ns)) == 1) {
        if ((rc = eval_count_samples(c, ns)) || (rc = eval_check(c))) break;
        bool keep = true;
        for (size_t i = 0; i < N_ID_LABELS && keep; i++) {
            if (!ids[i].n) continue;
            uint32_t vl = 0;
            const char *v = labels_get(ls, nl, id_labels[i], &vl);
            keep = v && vs_has(&ids[i], v, vl);
        }
        if (!keep) continue;
        if (st->n_info == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            info_series *ni = eval_alloc(c, ncap * sizeof *ni);
            if (!ni) {
                rc = STRATA_ENOMEM;
                break;
            }
            if (st->n_info) memcpy(ni, st->info, st->n_info * sizeof *ni);
            st->info = ni;
            cap = ncap;
        }
        info_series *is = &st->info[st->n_info];
        /* Labels of a series set live until the next call: copy them into the query arena. */
        label *copy = eval_alloc(c, (nl ? nl : 1) * sizeof *copy);
        is->orig_t = eval_alloc(c, c->n_steps * sizeof *is->orig_t);
        if (!copy || !is->orig_t) {
            rc = STRATA_ENOMEM;
            break;
        }
        for (size_t i = 0; i < nl; i++) {
            copy[i] = ls[i];
            copy[i].name = arena_strndup(c->mem, ls[i].name, ls[i].name_len);
            copy[i].value = arena_strndup(c->mem, ls[i].value, ls[i].value_len);
            if (!copy[i].name || !copy[i].value) rc = STRATA_ENOMEM;
        }
        if (rc) break;
        is->labels = copy;
        is->n_labels = nl;
        is->name = labels_get(copy, nl, LABEL_METRIC_NAME, &is->name_len);
        if (!is->name) is->name = "", is->name_len = 0;
        is->sig = join_sig(is->name, is->name_len, copy, nl);
        bool present = false;
        for (size_t i = 0; i < c->n_steps; i++) {
            int64_t t = (has_at ? at : step_time(c, i)) - offset;
            /* The newest sample in (t - lookback, t], unless it is a staleness marker. */
            size_t lo_i = 0, hi_i = ns;
            while (lo_i < hi_i) {
                size_t mid = (lo_i + hi_i) / 2;
                if (ss[mid].t <= t)
                    lo_i = mid + 1;
                else
                    hi_i = mid;
            }
            is->orig_t[i] = NO_SAMPLE;
            if (lo_i == 0) continue;
            const strata_sample *s = &ss[lo_i - 1];
            if (s->t <= t - c->o->lookback_ms || value_is_stale(s->v)) continue;
            is->orig_t[i] = s->t;
            present = true;
        }
        if (!present) continue;
        st->n_info++;
        bool known = false;
        for (size_t m = 0; m < st->n_metric_names && !known; m++)
            known = st->metric_name_lens[m] == is->name_len &&
                    !memcmp(st->metric_names[m], is->name, is->name_len);
        if (!known) {
            size_t m = st->n_metric_names++;
            const char **nn = eval_alloc(c, st->n_metric_names * sizeof *nn);
            uint32_t *nls = eval_alloc(c, st->n_metric_names * sizeof *nls);
            if (!nn || !nls) {
                rc = STRATA_ENOMEM;
                break;
            }
            if (m) {
                memcpy(nn, st->metric_names, m * sizeof *nn);
                memcpy(nls, st->metric_name_lens, m * sizeof *nls);
            }
            nn[m] = is->name;
            nls[m] = is->name_len;
            st->metric_names = nn;
            st->metric_name_lens = nls;
        }
    }
    /* Info series hold floats: one with histogram samples is an error, as in Prometheus. */
    for (size_t k = 0; rc >= 0 && k < series_set_count(set); k++) {
        hist_sample *hsv;
        size_t nhs, sc = 0;
        if ((rc = eval_read_histograms(c, set, k, &hsv, &nhs)) < 0 || !nhs) continue;
        strata_sample *sb = NULL;
        if ((rc = series_set_read(set, k, &ls, &nl, &sb, &sc, &ns)) < 0) break;
        free(sb);
        bool keep = true;
        for (size_t i = 0; i < N_ID_LABELS && keep; i++) {
            if (!ids[i].n) continue;
            uint32_t vl = 0;
            const char *v = labels_get(ls, nl, id_labels[i], &vl);
            keep = v && vs_has(&ids[i], v, vl);
        }
        if (keep) rc = strata_errf(c->err, STRATA_EEXEC, "info sample should be float");
    }
    series_set_free(set);
    if (rc == STRATA_ECORRUPT) strata_errf(c->err, rc, "corrupt chunk in storage");
    if (rc > 0) rc = 0;
out:
    for (size_t i = 0; i < N_ID_LABELS; i++)
        vs_free(&ids[i]);
    return rc;
}

/* Whether name is among the data label matchers (all labels count when there are none). */
static bool wanted(const info_state *st, const label *l)
{
    if (!st->n_data) return true;
    for (size_t i = 0; i < st->n_data; i++)
        if (st->data[i]->name_len == l->name_len &&
            !memcmp(st->data[i]->name, l->name, l->name_len))
            return true;
    return false;
}

/* The labels of base series bs enriched by the matched info series (one per info metric name,
 * match[m] or SIZE_MAX). */
static int enrich(info_state *st, const vseries *bs, const size_t *match, label **out,
                  size_t *n_out)
{
    eval_ctx *c = st->c;
    label *added = NULL;
    size_t n_added = 0;
    for (size_t m = 0; m < st->n_metric_names; m++) {
        if (match[m] == SIZE_MAX) continue;
        const info_series *is = &st->info[match[m]];
        for (size_t i = 0; i < is->n_labels; i++) {
            const label *l = &is->labels[i];
            if (is_name(l->name, l->name_len) || !wanted(st, l)) continue;
            uint32_t have_len = 0;
            const char *have = n_added ? labels_get(added, n_added, l->name, &have_len) : NULL;
            if (have && have_len && (have_len != l->value_len || memcmp(have, l->value, have_len)))
                return strata_errf(c->err, STRATA_EEXEC, "conflicting label: %.*s",
                                   (int)l->name_len, l->name);
            if (labels_get(bs->labels, bs->n_labels, l->name, &have_len)) continue;
            if (have) continue;
            added = labels_set(c, added, n_added, l->name, l->value, l->value_len, &n_added);
            if (!added) return STRATA_ENOMEM;
        }
    }
    label *ls = bs->labels;
    size_t n = bs->n_labels;
    for (size_t i = 0; i < n_added; i++) {
        ls = labels_set(c, ls, n, added[i].name, added[i].value, added[i].value_len, &n);
        if (!ls) return STRATA_ENOMEM;
    }
    *out = ls;
    *n_out = n;
    return 0;
}

/* The output series with these labels, made on first use. */
static vseries *output_for(eval_ctx *c, value *out, size_t *cap, idx_map *outs, size_t **chain,
                           size_t *chain_cap, label *ls, size_t n)
{
    uint64_t h = labels_hash(ls, n) | 1;
    bool found;
    size_t slot = idx_map_slot(outs, h, &found);
    if (found)
        for (size_t k = outs->vals[slot]; k != SIZE_MAX; k = (*chain)[k])
            if (labels_equal(out->s[k].labels, out->s[k].n_labels, ls, n)) return &out->s[k];
    if (!vec_add(c, out, cap, ls, n)) return NULL;
    size_t idx = out->n - 1;
    if (idx >= *chain_cap) {
        size_t nc = *chain_cap ? *chain_cap * 2 : 64;
        size_t *nn = realloc(*chain, nc * sizeof *nn);
        if (!nn) return NULL;
        *chain = nn;
        *chain_cap = nc;
    }
    (*chain)[idx] = found ? outs->vals[slot] : SIZE_MAX;
    if (found)
        outs->vals[slot] = idx;
    else if (idx_map_put(outs, slot, h, idx))
        return NULL;
    return &out->s[idx];
}

int eval_info(eval_ctx *c, const promql_expr *e, value *out)
{
    const promql_expr **path = eval_alloc(c, PROMQL_MAX_DEPTH * sizeof *path);
    if (!path) return STRATA_ENOMEM;
    bool has_at = false;
    int64_t at = 0, offset = 0;
    find_ref_time(c, e->args[0], path, 0, &has_at, &at, &offset);

    value base;
    int rc = eval_node(c, e->args[0], &base);
    if (rc) return rc;
    if (base.type != V_VECTOR)
        return strata_errf(c->err, STRATA_EEXEC, "info() expects an instant vector");
    out->type = V_VECTOR;
    info_state st = {.c = c};
    if ((rc = prepare_matchers(&st, e->n_args > 1 ? e->args[1] : NULL))) return rc;

    uint8_t *ignored = eval_alloc(c, base.n + 1);
    size_t *match = NULL, *last = NULL, *last_out = NULL, *info_at = NULL, *chain = NULL;
    size_t chain_cap = 0, cap = 0;
    idx_map sigs = {0}, outs = {0};
    if (!ignored) {
        rc = STRATA_ENOMEM;
        goto done;
    }
    for (size_t k = 0; k < base.n; k++)
        ignored[k] = names_match(&st, base.s[k].labels, base.s[k].n_labels);
    if ((rc = fetch_info(&st, &base, ignored, has_at, at, offset))) goto done;

    bool all_match_empty = true;
    for (size_t i = 0; i < st.n_data; i++)
        all_match_empty &= st.data[i]->matches_empty;
    size_t nm = st.n_metric_names;
    match = malloc((nm + 1) * sizeof *match);
    /* Per base series: the info series it matched at the previous step and the output then. */
    last = malloc((base.n * nm + 1) * sizeof *last);
    last_out = malloc((base.n + 1) * sizeof *last_out);
    info_at = malloc((st.n_info + 1) * sizeof *info_at);
    if (!match || !last || !last_out || !info_at || idx_map_init(&sigs, st.n_info + 1) ||
        idx_map_init(&outs, base.n + 1)) {
        rc = STRATA_ENOMEM;
        goto done;
    }
    for (size_t k = 0; k < base.n; k++)
        last_out[k] = SIZE_MAX;
    for (size_t i = 0; i < c->n_steps && !rc; i++) {
        /* The info series present at this step by join signature; the newest sample wins. */
        memset(sigs.keys, 0, sigs.cap * sizeof *sigs.keys);
        sigs.n = 0;
        for (size_t j = 0; j < st.n_info && !rc; j++) {
            const info_series *is = &st.info[j];
            if (is->orig_t[i] == NO_SAMPLE) continue;
            uint64_t h = is->sig;
            bool found;
            size_t slot = idx_map_slot(&sigs, h, &found);
            while (found) {
                const info_series *o = &st.info[sigs.vals[slot]];
                if (o->name_len == is->name_len && !memcmp(o->name, is->name, is->name_len) &&
                    same_id_labels(o->labels, o->n_labels, is->labels, is->n_labels))
                    break;
                h = h * 0x100000001b3ull | 1;
                slot = idx_map_slot(&sigs, h, &found);
            }
            if (!found) {
                rc = idx_map_put(&sigs, slot, h, j);
                continue;
            }
            const info_series *o = &st.info[sigs.vals[slot]];
            if (o->orig_t[i] < is->orig_t[i]) {
                sigs.vals[slot] = j;
            } else if (o->orig_t[i] == is->orig_t[i]) {
                char a[512], b[512];
                rc = strata_errf(
                    c->err, STRATA_EEXEC,
                    "found duplicate series for info metric: existing %s @ %lld, new "
                    "%s @ %lld",
                    labels_format(o->labels, o->n_labels, a, sizeof a), (long long)o->orig_t[i],
                    labels_format(is->labels, is->n_labels, b, sizeof b), (long long)is->orig_t[i]);
            }
        }
        for (size_t k = 0; k < base.n && !rc; k++) {
            vseries *bs = &base.s[k];
            if (!bs->has[i]) continue;
            bool seen = false;
            for (size_t m = 0; m < nm; m++) {
                match[m] = SIZE_MAX;
                if (ignored[k]) continue;
                uint64_t h =
                    join_sig(st.metric_names[m], st.metric_name_lens[m], bs->labels, bs->n_labels);
                bool found;
                size_t slot = idx_map_slot(&sigs, h, &found);
                while (found) {
                    const info_series *o = &st.info[sigs.vals[slot]];
                    if (o->name_len == st.metric_name_lens[m] &&
                        !memcmp(o->name, st.metric_names[m], o->name_len) &&
                        same_id_labels(o->labels, o->n_labels, bs->labels, bs->n_labels))
                        break;
                    h = h * 0x100000001b3ull | 1;
                    slot = idx_map_slot(&sigs, h, &found);
                }
                if (found) {
                    match[m] = sigs.vals[slot];
                    seen = true;
                }
            }
            if (!ignored[k] && !seen && !all_match_empty) continue;
            vseries *os;
            if (last_out[k] != SIZE_MAX &&
                (!nm || !memcmp(&last[k * nm], match, nm * sizeof *match))) {
                os = &out->s[last_out[k]];
            } else {
                label *ls = bs->labels;
                size_t n = bs->n_labels;
                if (!ignored[k] && (rc = enrich(&st, bs, match, &ls, &n))) break;
                os = output_for(c, out, &cap, &outs, &chain, &chain_cap, ls, n);
                if (!os) {
                    rc = strata_errf(c->err, STRATA_ENOMEM, "out of memory evaluating the query");
                    break;
                }
                os->drop_name = bs->drop_name;
                last_out[k] = (size_t)(os - out->s);
                if (nm) memcpy(&last[k * nm], match, nm * sizeof *match);
            }
            if (os->has[i]) {
                rc = strata_errf(c->err, STRATA_EEXEC,
                                 "vector cannot contain metrics with the same labelset");
                break;
            }
            os->v[i] = bs->v[i];
            os->has[i] = 1;
        }
        if (!rc) rc = eval_check(c);
    }
done:
    free(match);
    free(last);
    free(last_out);
    free(info_at);
    free(chain);
    idx_map_free(&sigs);
    idx_map_free(&outs);
    if (st.owned[0]) matcher_free(st.owned[0]);
    return rc;
}
