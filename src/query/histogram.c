/*
 * histogram.c: native-histogram arithmetic with Prometheus' FloatHistogram semantics.
 *
 * Spans are awkward to edit in place, so every operation expands a side (positive or negative)
 * into a sorted list of (bucket index, count), works on the lists and builds spans again. The
 * lists are short (a few hundred buckets at most), and everything lives in the query's arena.
 */
#include "query/histogram.h"

#include <float.h>
#include <math.h>
#include <string.h>

typedef struct blist {
    int32_t *idx;
    double *cnt;
    size_t n;
} blist;

static int blist_alloc(arena *a, size_t cap, blist *l)
{
    l->idx = arena_alloc(a, (cap ? cap : 1) * sizeof *l->idx);
    l->cnt = arena_alloc(a, (cap ? cap : 1) * sizeof *l->cnt);
    l->n = 0;
    return l->idx && l->cnt ? 0 : STRATA_ENOMEM;
}

static int expand(arena *a, const hist_span *sp, uint32_t nsp, const double *b, uint32_t nb,
                  blist *out)
{
    if (blist_alloc(a, nb, out)) return STRATA_ENOMEM;
    int64_t cur = 0;
    for (uint32_t s = 0; s < nsp; s++) {
        cur += sp[s].offset;
        for (uint32_t j = 0; j < sp[s].length && out->n < nb; j++, cur++) {
            out->idx[out->n] = (int32_t)cur;
            out->cnt[out->n] = b[out->n];
            out->n++;
        }
    }
    return 0;
}

static int expand_side(arena *a, const native_histogram *h, bool positive, blist *out)
{
    return positive
               ? expand(a, h->pos_spans, h->n_pos_spans, h->pos_buckets, h->n_pos_buckets, out)
               : expand(a, h->neg_spans, h->n_neg_spans, h->neg_buckets, h->n_neg_buckets, out);
}

/* Spans and buckets from a list; empty buckets are dropped when drop_empty. */
static int build(arena *a, const blist *l, bool drop_empty, hist_span **spans, uint32_t *nspans,
                 double **buckets, uint32_t *nb)
{
    hist_span *sp = arena_alloc(a, (l->n ? l->n : 1) * sizeof *sp);
    double *bk = arena_alloc(a, (l->n ? l->n : 1) * sizeof *bk);
    if (!sp || !bk) return STRATA_ENOMEM;
    uint32_t ns = 0, n = 0;
    int64_t next = 0; /* the index after the last bucket placed */
    for (size_t i = 0; i < l->n; i++) {
        if (drop_empty && l->cnt[i] == 0) continue;
        if (ns && l->idx[i] == next) {
            sp[ns - 1].length++;
        } else {
            sp[ns].offset = (int32_t)(ns ? l->idx[i] - next : l->idx[i]);
            sp[ns].length = 1;
            ns++;
        }
        bk[n++] = l->cnt[i];
        next = (int64_t)l->idx[i] + 1;
    }
    *spans = sp;
    *nspans = ns;
    *buckets = bk;
    *nb = n;
    return 0;
}

static int32_t target_index(int32_t idx, int32_t from, int32_t to)
{
    /* floor((idx - 1) / 2^(from - to)) + 1, written without shifting negative numbers */
    int64_t v = (int64_t)idx - 1, d = (int64_t)1 << (from - to);
    int64_t q = v >= 0 ? v / d : -((-v + d - 1) / d);
    return (int32_t)(q + 1);
}

/* In place: the list in a lower-resolution schema (neighbouring buckets merged). */
static void reduce(blist *l, int32_t from, int32_t to)
{
    if (from <= to) return;
    size_t w = 0;
    for (size_t i = 0; i < l->n; i++) {
        int32_t t = target_index(l->idx[i], from, to);
        if (w && l->idx[w - 1] == t) {
            l->cnt[w - 1] += l->cnt[i];
        } else {
            l->idx[w] = t;
            l->cnt[w] = l->cnt[i];
            w++;
        }
    }
    l->n = w;
}

double hist_bound(int32_t idx, int32_t schema, const double *custom, uint32_t n_custom)
{
    if (schema == HIST_SCHEMA_CUSTOM) {
        if (idx < 0) return -INFINITY;
        if ((uint32_t)idx >= n_custom) return INFINITY;
        return custom[idx];
    }
    if (schema < 0) {
        int64_t e = (int64_t)idx * ((int64_t)1 << -schema);
        if (e == 1024) return DBL_MAX; /* the last finite bucket; the next one holds ±Inf */
        if (e > 1024) return INFINITY;
        return ldexp(1, (int)e);
    }
    int32_t per = 1 << schema;
    int32_t frac_idx = idx & (per - 1);
    int64_t e = (int64_t)(idx >> schema) + 1; /* arithmetic shift: floor division */
    double frac = frac_idx ? exp2((double)frac_idx / per) / 2 : 0.5;
    if (frac == 0.5 && e == 1025) return DBL_MAX;
    if (e > 1025) return INFINITY;
    return ldexp(frac, (int)e);
}

static void side_bounds(bool positive, int32_t idx, const native_histogram *h, double *lo,
                        double *up)
{
    double b = hist_bound(idx, h->schema, h->custom_values, h->n_custom_values);
    double p = hist_bound(idx - 1, h->schema, h->custom_values, h->n_custom_values);
    if (positive) {
        *lo = p;
        *up = b;
    } else {
        *lo = -b;
        *up = -p;
    }
}

int hist_copy(arena *a, const native_histogram *src, native_histogram *dst)
{
    *dst = *src;
#define DUP(field, n)                                                                              \
    do {                                                                                           \
        if (src->n) {                                                                              \
            dst->field = arena_alloc(a, src->n * sizeof *src->field);                              \
            if (!dst->field) return STRATA_ENOMEM;                                                 \
            memcpy(dst->field, src->field, src->n * sizeof *src->field);                           \
        } else {                                                                                   \
            dst->field = NULL;                                                                     \
        }                                                                                          \
    } while (0)
    DUP(pos_spans, n_pos_spans);
    DUP(neg_spans, n_neg_spans);
    DUP(pos_buckets, n_pos_buckets);
    DUP(neg_buckets, n_neg_buckets);
    /* Custom bounds are never modified, but may live in a scratch arena that dies first. */
    DUP(custom_values, n_custom_values);
#undef DUP
    return 0;
}

/* ---- zero bucket -------------------------------------------------------------------------- */

/* The zero count h would have with a zero threshold of at least thr, and the threshold it would
 * really get: a populated bucket that the threshold cuts widens it to that bucket's edge. */
static void zero_count_for(const native_histogram *h, const blist *pos, const blist *neg,
                           double thr, double *zc, double *new_thr)
{
    if (thr == h->zero_threshold) {
        *zc = h->zero_count;
        *new_thr = thr;
        return;
    }
    for (;;) {
        double z = h->zero_count;
        for (size_t i = 0; i < pos->n; i++) {
            double lo, up;
            side_bounds(true, pos->idx[i], h, &lo, &up);
            if (lo >= thr) break;
            z += pos->cnt[i];
            if (up > thr) {
                if (pos->cnt[i] != 0) thr = up;
                break;
            }
        }
        bool again = false;
        for (size_t i = 0; i < neg->n; i++) {
            double lo, up;
            side_bounds(false, neg->idx[i], h, &lo, &up);
            if (up <= -thr) break;
            z += neg->cnt[i];
            if (lo < -thr) {
                if (neg->cnt[i] != 0) {
                    thr = -lo;
                    again = true;
                }
                break;
            }
        }
        if (again) continue;
        *zc = z;
        *new_thr = thr;
        return;
    }
}

/* Drops the buckets now inside the zero bucket (their counts are already in the zero count). */
static void trim_inside_zero(const native_histogram *h, blist *pos, blist *neg)
{
    size_t k = 0;
    while (k < pos->n) {
        double lo, up;
        side_bounds(true, pos->idx[k], h, &lo, &up);
        if (lo >= h->zero_threshold) break;
        k++;
    }
    memmove(pos->idx, pos->idx + k, (pos->n - k) * sizeof *pos->idx);
    memmove(pos->cnt, pos->cnt + k, (pos->n - k) * sizeof *pos->cnt);
    pos->n -= k;
    k = 0;
    while (k < neg->n) {
        double lo, up;
        side_bounds(false, neg->idx[k], h, &lo, &up);
        if (up <= -h->zero_threshold) break;
        k++;
    }
    memmove(neg->idx, neg->idx + k, (neg->n - k) * sizeof *neg->idx);
    memmove(neg->cnt, neg->cnt + k, (neg->n - k) * sizeof *neg->cnt);
    neg->n -= k;
}

/* ---- add and subtract --------------------------------------------------------------------- */

/* x + sign*y over sorted lists, skipping y's buckets whose absolute upper bound is within the
 * zero threshold (exponential schemas only). */
static int merge(arena *a, const blist *x, const blist *y, double sign, int32_t schema,
                 double threshold, blist *out)
{
    if (blist_alloc(a, x->n + y->n, out)) return STRATA_ENOMEM;
    size_t i = 0, j = 0;
    if (schema != HIST_SCHEMA_CUSTOM)
        while (j < y->n && hist_bound(y->idx[j], schema, NULL, 0) <= threshold)
            j++;
    while (i < x->n || j < y->n) {
        if (j >= y->n || (i < x->n && x->idx[i] < y->idx[j])) {
            out->idx[out->n] = x->idx[i];
            out->cnt[out->n++] = x->cnt[i++];
        } else if (i >= x->n || y->idx[j] < x->idx[i]) {
            out->idx[out->n] = y->idx[j];
            out->cnt[out->n++] = sign * y->cnt[j++];
        } else {
            out->idx[out->n] = x->idx[i];
            out->cnt[out->n++] = x->cnt[i++] + sign * y->cnt[j++];
        }
    }
    return 0;
}

static bool custom_bounds_match(const native_histogram *x, const native_histogram *y)
{
    if (x->n_custom_values != y->n_custom_values) return false;
    for (uint32_t i = 0; i < x->n_custom_values; i++)
        if (x->custom_values[i] != y->custom_values[i]) return false;
    return true;
}

static int intersect_bounds(arena *a, const native_histogram *x, const native_histogram *y,
                            double **out, uint32_t *n)
{
    uint32_t cap =
        x->n_custom_values < y->n_custom_values ? x->n_custom_values : y->n_custom_values;
    double *r = arena_alloc(a, (cap ? cap : 1) * sizeof *r);
    if (!r) return STRATA_ENOMEM;
    uint32_t i = 0, j = 0, k = 0;
    while (i < x->n_custom_values && j < y->n_custom_values) {
        if (x->custom_values[i] == y->custom_values[j]) {
            r[k++] = x->custom_values[i];
            i++;
            j++;
        } else if (x->custom_values[i] < y->custom_values[j]) {
            i++;
        } else {
            j++;
        }
    }
    *out = r;
    *n = k;
    return 0;
}

/* In place: custom buckets re-indexed onto a coarser set of bounds (a subset of theirs). */
static void map_custom(blist *l, const native_histogram *h, const double *to, uint32_t nto)
{
    size_t w = 0;
    uint32_t j = 0;
    for (size_t i = 0; i < l->n; i++) {
        double up = hist_bound(l->idx[i], h->schema, h->custom_values, h->n_custom_values);
        while (j < nto && to[j] < up)
            j++;
        int32_t t = (int32_t)j;
        if (w && l->idx[w - 1] == t) {
            l->cnt[w - 1] += l->cnt[i];
        } else {
            l->idx[w] = t;
            l->cnt[w] = l->cnt[i];
            w++;
        }
    }
    l->n = w;
}

static bool adjust_hint(native_histogram *h, uint8_t other)
{
    if (other == h->reset_hint || h->reset_hint == HIST_HINT_GAUGE) return false;
    if (other == HIST_HINT_GAUGE) {
        h->reset_hint = HIST_HINT_GAUGE;
        return false;
    }
    if (h->reset_hint == HIST_HINT_UNKNOWN) return false;
    bool collision = other != HIST_HINT_UNKNOWN;
    h->reset_hint = HIST_HINT_UNKNOWN;
    return collision;
}

int hist_add(arena *a, const native_histogram *x, const native_histogram *y, bool subtract,
             native_histogram *dst, unsigned *flags)
{
    *flags = 0;
    if (hist_is_custom(x) != hist_is_custom(y)) return HIST_INCOMPATIBLE;
    native_histogram r = *x;
    r.is_int = x->is_int && y->is_int;
    if (adjust_hint(&r, y->reset_hint)) *flags |= HIST_FLAG_RESET_COLLISION;
    double sign = subtract ? -1 : 1;
    blist xp, xn, yp, yn, op, on;
    if (expand_side(a, x, true, &xp) || expand_side(a, x, false, &xn) ||
        expand_side(a, y, true, &yp) || expand_side(a, y, false, &yn))
        return STRATA_ENOMEM;
    if (hist_is_custom(x)) {
        r.zero_count = 0;
        r.zero_threshold = 0;
        r.n_neg_spans = r.n_neg_buckets = 0;
        r.neg_spans = NULL;
        r.neg_buckets = NULL;
        if (!custom_bounds_match(x, y)) {
            *flags |= HIST_FLAG_NHCB_RECONCILED;
            if (intersect_bounds(a, x, y, &r.custom_values, &r.n_custom_values))
                return STRATA_ENOMEM;
            map_custom(&xp, x, r.custom_values, r.n_custom_values);
            map_custom(&yp, y, r.custom_values, r.n_custom_values);
        }
        r.count = x->count + sign * y->count;
        r.sum = x->sum + sign * y->sum;
        if (merge(a, &xp, &yp, sign, r.schema, 0, &op) ||
            build(a, &op, false, &r.pos_spans, &r.n_pos_spans, &r.pos_buckets, &r.n_pos_buckets))
            return STRATA_ENOMEM;
        *dst = r;
        return 0;
    }
    /* The zero buckets first, each in its own schema, as Prometheus reconciles them. */
    double yz = y->zero_count, ythr = y->zero_threshold;
    while (ythr != r.zero_threshold) {
        if (r.zero_threshold > ythr) zero_count_for(y, &yp, &yn, r.zero_threshold, &yz, &ythr);
        if (ythr > r.zero_threshold) {
            zero_count_for(&r, &xp, &xn, ythr, &r.zero_count, &r.zero_threshold);
            trim_inside_zero(&r, &xp, &xn);
        }
    }
    r.zero_count += sign * yz;
    r.count = x->count + sign * y->count;
    r.sum = x->sum + sign * y->sum;
    if (y->schema < r.schema) {
        reduce(&xp, r.schema, y->schema);
        reduce(&xn, r.schema, y->schema);
        r.schema = y->schema;
    } else if (y->schema > r.schema) {
        reduce(&yp, y->schema, r.schema);
        reduce(&yn, y->schema, r.schema);
    }
    if (merge(a, &xp, &yp, sign, r.schema, r.zero_threshold, &op) ||
        merge(a, &xn, &yn, sign, r.schema, r.zero_threshold, &on) ||
        build(a, &op, false, &r.pos_spans, &r.n_pos_spans, &r.pos_buckets, &r.n_pos_buckets) ||
        build(a, &on, false, &r.neg_spans, &r.n_neg_spans, &r.neg_buckets, &r.n_neg_buckets))
        return STRATA_ENOMEM;
    *dst = r;
    return 0;
}

/* ---- scaling, compaction, equality -------------------------------------------------------- */

void hist_mul(native_histogram *h, double f)
{
    h->zero_count *= f;
    h->count *= f;
    h->sum *= f;
    for (uint32_t i = 0; i < h->n_pos_buckets; i++)
        h->pos_buckets[i] *= f;
    for (uint32_t i = 0; i < h->n_neg_buckets; i++)
        h->neg_buckets[i] *= f;
    if (f < 0) h->reset_hint = HIST_HINT_GAUGE;
    if (f != floor(f)) h->is_int = false;
}

void hist_div(native_histogram *h, double f)
{
    h->zero_count /= f;
    h->count /= f;
    h->sum /= f;
    h->is_int = false;
    if (f == 0) {
        h->n_pos_buckets = h->n_neg_buckets = h->n_pos_spans = h->n_neg_spans = 0;
        return;
    }
    for (uint32_t i = 0; i < h->n_pos_buckets; i++)
        h->pos_buckets[i] /= f;
    for (uint32_t i = 0; i < h->n_neg_buckets; i++)
        h->neg_buckets[i] /= f;
    if (f < 0) h->reset_hint = HIST_HINT_GAUGE;
}

int hist_compact(arena *a, native_histogram *h)
{
    blist p, n;
    if (expand_side(a, h, true, &p) || expand_side(a, h, false, &n)) return STRATA_ENOMEM;
    if (build(a, &p, true, &h->pos_spans, &h->n_pos_spans, &h->pos_buckets, &h->n_pos_buckets) ||
        build(a, &n, true, &h->neg_spans, &h->n_neg_spans, &h->neg_buckets, &h->n_neg_buckets))
        return STRATA_ENOMEM;
    return 0;
}

static bool same_bits(double x, double y)
{
    uint64_t a, b;
    memcpy(&a, &x, sizeof a);
    memcpy(&b, &y, sizeof b);
    return a == b;
}

/* The next span of s[*i..n) with zero-length spans folded into the offset of the one after
 * them (Prometheus' spansMatch); false at the end (trailing zero-length spans included). */
static bool next_span(const hist_span *s, uint32_t n, uint32_t *i, hist_span *out)
{
    int64_t off = 0;
    while (*i < n) {
        hist_span sp = s[(*i)++];
        off += sp.offset;
        if (sp.length) {
            out->offset = (int32_t)off;
            out->length = sp.length;
            return true;
        }
    }
    return false;
}

/* One side of Prometheus' Equals: the same span layout (empty buckets count) and bit-equal
 * counts. */
static bool side_equal(const hist_span *sa, uint32_t nsa, const double *ba, uint32_t nba,
                       const hist_span *sb, uint32_t nsb, const double *bb, uint32_t nbb)
{
    uint32_t i = 0, j = 0;
    for (;;) {
        hist_span x, y;
        bool hx = next_span(sa, nsa, &i, &x), hy = next_span(sb, nsb, &j, &y);
        if (!hx || !hy) {
            if (hx != hy) return false;
            break;
        }
        if (x.offset != y.offset || x.length != y.length) return false;
    }
    if (nba != nbb) return false;
    for (uint32_t k = 0; k < nba; k++)
        if (!same_bits(ba[k], bb[k])) return false;
    return true;
}

bool hist_equal(const native_histogram *x, const native_histogram *y)
{
    if (x->schema != y->schema || !same_bits(x->count, y->count) || !same_bits(x->sum, y->sum))
        return false;
    if (hist_is_custom(x) && !custom_bounds_match(x, y)) return false;
    if (x->zero_threshold != y->zero_threshold || !same_bits(x->zero_count, y->zero_count))
        return false;
    return side_equal(x->pos_spans, x->n_pos_spans, x->pos_buckets, x->n_pos_buckets, y->pos_spans,
                      y->n_pos_spans, y->pos_buckets, y->n_pos_buckets) &&
           side_equal(x->neg_spans, x->n_neg_spans, x->neg_buckets, x->n_neg_buckets, y->neg_spans,
                      y->n_neg_spans, y->neg_buckets, y->n_neg_buckets);
}

bool hist_has_overflow(const native_histogram *h)
{
    if (isinf(h->zero_count) || isinf(h->count) || isinf(h->sum)) return true;
    for (uint32_t i = 0; i < h->n_pos_buckets; i++)
        if (isinf(h->pos_buckets[i])) return true;
    for (uint32_t i = 0; i < h->n_neg_buckets; i++)
        if (isinf(h->neg_buckets[i])) return true;
    return false;
}

bool hist_is_stale(const native_histogram *h)
{
    uint64_t b;
    memcpy(&b, &h->sum, sizeof b);
    return b == 0x7ff0000000000002ull;
}

/* ---- counter resets ----------------------------------------------------------------------- */

/* Whether a populated bucket of prev is missing from cur or has a higher count there. Both lists
 * are in one schema; buckets whose absolute upper bound is at most skip_upto are left out. */
static bool side_reset(const blist *cur, const blist *prev, const native_histogram *h,
                       double skip_upto)
{
    size_t i = 0, j = 0;
    if (!hist_is_custom(h)) {
        while (i < cur->n && hist_bound(cur->idx[i], h->schema, NULL, 0) <= skip_upto)
            i++;
        while (j < prev->n && hist_bound(prev->idx[j], h->schema, NULL, 0) <= skip_upto)
            j++;
    }
    for (; j < prev->n; j++) {
        while (i < cur->n && cur->idx[i] < prev->idx[j])
            i++;
        if (i >= cur->n || cur->idx[i] > prev->idx[j]) {
            if (prev->cnt[j] != 0) return true;
        } else if (cur->cnt[i] < prev->cnt[j]) {
            return true;
        }
    }
    return false;
}

static bool detect_reset(arena *a, const native_histogram *cur, const native_histogram *prev)
{
    if (cur->reset_hint == HIST_HINT_RESET) return true;
    if (cur->reset_hint == HIST_HINT_NOT_RESET) return false;
    if (cur->count < prev->count) return true;
    blist cp, cn, pp, pn;
    if (expand_side(a, cur, true, &cp) || expand_side(a, cur, false, &cn) ||
        expand_side(a, prev, true, &pp) || expand_side(a, prev, false, &pn))
        return false;
    if (hist_is_custom(cur) || hist_is_custom(prev)) {
        if (hist_is_custom(cur) != hist_is_custom(prev)) return true;
        if (!custom_bounds_match(cur, prev)) {
            double *b;
            uint32_t nb;
            if (intersect_bounds(a, cur, prev, &b, &nb)) return false;
            map_custom(&cp, cur, b, nb);
            map_custom(&pp, prev, b, nb);
        }
        return side_reset(&cp, &pp, cur, 0);
    }
    if (cur->schema > prev->schema) return true;
    if (cur->zero_threshold < prev->zero_threshold) return true;
    double pz, thr;
    zero_count_for(prev, &pp, &pn, cur->zero_threshold, &pz, &thr);
    if (thr != cur->zero_threshold) return true;
    if (cur->zero_count < pz) return true;
    reduce(&pp, prev->schema, cur->schema);
    reduce(&pn, prev->schema, cur->schema);
    return side_reset(&cp, &pp, cur, cur->zero_threshold) ||
           side_reset(&cn, &pn, cur, cur->zero_threshold);
}

bool hist_detect_reset(const native_histogram *cur, const native_histogram *prev)
{
    arena a;
    arena_init(&a, 4096);
    bool r = detect_reset(&a, cur, prev);
    arena_free(&a);
    return r;
}

/* ---- buckets and statistics --------------------------------------------------------------- */

ssize_t hist_all_buckets(arena *a, const native_histogram *h, hist_bucket **out)
{
    blist p, n;
    if (expand_side(a, h, true, &p) || expand_side(a, h, false, &n)) return -1;
    hist_bucket *b = arena_alloc(a, (p.n + n.n + 1) * sizeof *b);
    if (!b) return -1;
    bool custom = hist_is_custom(h);
    size_t k = 0;
    for (size_t i = n.n; i-- > 0;) {
        hist_bucket *x = &b[k++];
        memset(x, 0, sizeof *x);
        side_bounds(false, n.idx[i], h, &x->lower, &x->upper);
        x->count = n.cnt[i];
        x->index = n.idx[i];
        if (x->upper < 0 && x->upper > -h->zero_threshold) x->upper = -h->zero_threshold;
        x->lower_inclusive = custom ? x->index == 0 : x->lower < 0;
        x->upper_inclusive = custom ? true : x->upper > 0;
    }
    if (!custom && h->zero_count > 0) {
        b[k++] = (hist_bucket){.lower = -h->zero_threshold,
                               .upper = h->zero_threshold,
                               .count = h->zero_count,
                               .lower_inclusive = true,
                               .upper_inclusive = true,
                               .zero = true};
    }
    for (size_t i = 0; i < p.n; i++) {
        hist_bucket *x = &b[k++];
        memset(x, 0, sizeof *x);
        side_bounds(true, p.idx[i], h, &x->lower, &x->upper);
        x->count = p.cnt[i];
        x->index = p.idx[i];
        if (!custom && x->lower > 0 && x->lower < h->zero_threshold) x->lower = h->zero_threshold;
        x->lower_inclusive = custom ? x->index == 0 : x->lower < 0;
        x->upper_inclusive = custom ? true : x->upper > 0;
    }
    *out = b;
    return (ssize_t)k;
}

double hist_quantile(arena *a, double q, const native_histogram *h)
{
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    if (h->count == 0 || isnan(q)) return NAN;
    hist_bucket *b;
    ssize_t nb = hist_all_buckets(a, h, &b);
    if (nb <= 0) return NAN;
    bool forward = isnan(h->sum) || q < 0.5;
    double rank = forward ? q * h->count : (1 - q) * h->count, count = 0;
    hist_bucket bk = {0};
    ssize_t i = 0;
    for (; i < nb; i++) {
        bk = b[forward ? i : nb - 1 - i];
        if (bk.count == 0) continue;
        count += bk.count;
        if (count >= rank) break;
    }
    bool custom = hist_is_custom(h);
    if (!custom && bk.lower < 0 && bk.upper > 0) {
        if (h->n_neg_buckets == 0 && h->n_pos_buckets > 0)
            bk.lower = 0;
        else if (h->n_pos_buckets == 0 && h->n_neg_buckets > 0)
            bk.upper = 0;
    } else if (custom) {
        if (bk.lower == -INFINITY) {
            if (bk.upper <= 0) return bk.upper;
            bk.lower = 0;
        } else if (bk.upper == INFINITY) {
            return bk.lower;
        }
    }
    if (count > h->count) count = h->count;
    if (count < rank) return isnan(h->sum) ? NAN : bk.upper;
    if (forward)
        rank -= count - bk.count;
    else
        rank = count - rank;
    double fraction = rank / bk.count;
    if (custom || (bk.lower <= 0 && bk.upper >= 0))
        return bk.lower + (bk.upper - bk.lower) * fraction;
    double ll = log2(fabs(bk.lower)), lu = log2(fabs(bk.upper));
    if (bk.lower > 0) return exp2(ll + (lu - ll) * fraction);
    return -exp2(lu + (ll - lu) * (1 - fraction));
}

static double fraction_below(const hist_bucket *b, double v, bool linear)
{
    if (linear) return (v - b->lower) / (b->upper - b->lower);
    double ll = log2(fabs(b->lower)), lu = log2(fabs(b->upper)), lv = log2(fabs(v));
    if (v > 0) return (lv - ll) / (lu - ll);
    return 1 - ((lv - lu) / (ll - lu));
}

double hist_fraction(arena *a, double lower, double upper, const native_histogram *h)
{
    if (h->count == 0 || isnan(lower) || isnan(upper)) return NAN;
    if (lower >= upper) return 0;
    hist_bucket *bs;
    ssize_t nb = hist_all_buckets(a, h, &bs);
    if (nb < 0) return NAN;
    double count = 0, rank = 0, lower_rank = 0, upper_rank = 0;
    bool lower_set = false, upper_set = false, custom = hist_is_custom(h);
    ssize_t i = 0;
    for (; i < nb; i++) {
        hist_bucket b = bs[i];
        count += b.count;
        bool zero = false;
        if (b.lower <= 0 && b.upper >= 0) {
            zero = true;
            if (h->n_neg_buckets == 0 && h->n_pos_buckets > 0)
                b.lower = 0;
            else if (h->n_pos_buckets == 0 && h->n_neg_buckets > 0)
                b.upper = 0;
        }
        bool linear = custom || zero;
        if (!lower_set && b.lower >= lower) {
            lower_rank = rank;
            lower_set = true;
        }
        if (!upper_set && b.lower >= upper) {
            upper_rank = rank;
            upper_set = true;
        }
        if (lower_set && upper_set) break;
        if (!lower_set && b.lower < lower && b.upper > lower) {
            lower_rank = linear && b.lower == -INFINITY
                             ? b.count
                             : rank + b.count * fraction_below(&b, lower, linear);
            lower_set = true;
        }
        if (!upper_set && b.lower < upper && b.upper > upper) {
            upper_rank = linear && b.lower == -INFINITY
                             ? b.count
                             : rank + b.count * fraction_below(&b, upper, linear);
            upper_set = true;
        }
        if (lower_set && upper_set) break;
        rank += b.count;
    }
    if (isnan(h->sum)) {
        for (i++; i < nb; i++)
            count += bs[i].count;
    } else {
        count = h->count;
    }
    if (!lower_set || lower_rank > count) lower_rank = count;
    if (!upper_set || upper_rank > count) upper_rank = count;
    return (upper_rank - lower_rank) / h->count;
}

double hist_stdvar(arena *a, const native_histogram *h)
{
    double mean = h->sum / h->count, var = 0, c = 0;
    hist_bucket *bs;
    ssize_t nb = hist_all_buckets(a, h, &bs);
    if (nb < 0) return NAN;
    for (ssize_t i = 0; i < nb; i++) {
        const hist_bucket *b = &bs[i];
        if (b->count == 0) continue;
        double v;
        if (hist_is_custom(h))
            v = (b->upper + b->lower) / 2;
        else if (b->lower <= 0 && b->upper >= 0)
            v = 0;
        else {
            v = sqrt(b->upper * b->lower);
            if (b->upper < 0) v = -v;
        }
        double d = v - mean, x = b->count * d * d;
        /* compensated, as Prometheus sums the terms */
        double t = var + x;
        if (isinf(t))
            c = 0;
        else if (fabs(var) >= fabs(x))
            c += (var - t) + x;
        else
            c += (x - t) + var;
        var = t;
    }
    return (var + c) / h->count;
}

/* ---- trim operators (</ and >/) ------------------------------------------------------------ */

static double trim_midpoint(double lo, double up, bool positive, bool linear)
{
    if (isinf(lo)) {
        if (isinf(up)) return 0;
        return up > 0 ? up / 2 : up;
    }
    if (isinf(up)) return lo;
    if (linear) return (lo + up) / 2;
    double g = sqrt(fabs(lo * up));
    return positive ? g : -g;
}

/* A bucket with an infinite bound (custom buckets only): what survives the trim and where its
 * observations are assumed to be. */
static void trim_infinite(bool upper_trim, const hist_bucket *b, double rhs, double *keep,
                          double *mid)
{
    double lo_z = isinf(b->lower) ? 0 : b->lower, up_z = isinf(b->upper) ? 0 : b->upper;
    if (isinf(b->lower) && b->lower < 0) {
        if (upper_trim) {
            if (rhs >= b->upper) {
                *keep = b->count;
                *mid = 0;
            } else if (rhs > 0 && b->upper > 0 && !isinf(b->upper)) {
                *keep = b->count * rhs / b->upper;
                *mid = rhs / 2;
            } else if (b->upper <= 0) {
                *keep = b->count;
                *mid = rhs;
            } else {
                *keep = 0;
                *mid = up_z;
            }
            return;
        }
        if (rhs <= b->lower) {
            *keep = b->count;
            *mid = 0;
        } else if (rhs >= 0 && b->upper > rhs && !isinf(b->upper)) {
            *keep = b->count * (1 - rhs / b->upper);
            *mid = (rhs + b->upper) / 2;
        } else {
            *keep = 0;
            *mid = up_z;
        }
        return;
    }
    /* upper bound +Inf */
    if (upper_trim) {
        *keep = 0;
        *mid = lo_z;
    } else if (rhs >= b->lower) {
        *keep = b->count;
        *mid = rhs;
    } else {
        *keep = 0;
        *mid = lo_z;
    }
}

static void trim_bucket(bool upper_trim, const hist_bucket *b, double rhs, bool positive,
                        bool linear, double *keep, double *mid)
{
    if (isinf(b->lower) || isinf(b->upper)) {
        trim_infinite(upper_trim, b, rhs, keep, mid);
        return;
    }
    double under = rhs <= b->lower   ? 0
                   : rhs >= b->upper ? b->count
                                     : b->count * fraction_below(b, rhs, linear);
    if (upper_trim) {
        *keep = under;
        *mid = trim_midpoint(b->lower, rhs, positive, linear);
    } else {
        *keep = b->count - under;
        *mid = trim_midpoint(rhs, b->upper, positive, linear);
    }
}

int hist_trim(arena *a, native_histogram *h, double rhs, bool upper_trim)
{
    bool custom = hist_is_custom(h), has_pos = false, has_neg = false, trimmed = false;
    double count = 0, sum = 0;
    for (int side = 0; side < 2; side++) {
        bool positive = side == 0;
        blist l;
        if (expand_side(a, h, positive, &l)) return STRATA_ENOMEM;
        double *counts = positive ? h->pos_buckets : h->neg_buckets;
        for (size_t i = 0; i < l.n; i++) {
            if (l.cnt[i] == 0) continue;
            if (positive)
                has_pos = true;
            else
                has_neg = true;
            hist_bucket b = {.count = l.cnt[i]};
            side_bounds(positive, l.idx[i], h, &b.lower, &b.upper);
            bool all = upper_trim ? b.upper <= rhs : b.lower >= rhs;
            bool some = upper_trim ? b.lower < rhs : b.upper > rhs;
            if (all) {
                count += b.count;
                sum += trim_midpoint(b.lower, b.upper, positive, custom) * b.count;
            } else if (some) {
                double keep, mid;
                trim_bucket(upper_trim, &b, rhs, positive, custom, &keep, &mid);
                count += keep;
                sum += mid * keep;
                if (counts[i] != keep) {
                    counts[i] = keep;
                    trimmed = true;
                }
            } else {
                counts[i] = 0;
                trimmed = true;
            }
        }
    }
    if (h->zero_count > 0) {
        double lo = -h->zero_threshold, up = h->zero_threshold, keep, mid;
        if (has_neg && !has_pos) up = 0;
        if (has_pos && !has_neg) lo = 0;
        if (upper_trim) {
            if (rhs <= lo)
                keep = mid = 0;
            else if (rhs >= up) {
                keep = h->zero_count;
                mid = (lo + up) / 2;
            } else {
                keep = h->zero_count * (rhs - lo) / (up - lo);
                mid = (lo + rhs) / 2;
            }
        } else {
            if (rhs <= lo) {
                keep = h->zero_count;
                mid = (lo + up) / 2;
            } else if (rhs >= up) {
                keep = mid = 0;
            } else {
                keep = h->zero_count * (up - rhs) / (up - lo);
                mid = (rhs + up) / 2;
            }
        }
        if (h->zero_count != keep) {
            h->zero_count = keep;
            trimmed = true;
        }
        sum += mid * keep;
        count += keep;
    }
    if (trimmed) {
        h->count = count;
        h->sum = sum;
        h->is_int = false;
        return hist_compact(a, h);
    }
    return 0;
}

/* ---- compensated summation ----------------------------------------------------------------- */

/* Neumaier's compensated step, as Prometheus' kahansum.Inc. */
static void kahan_inc(double v, double *sum, double *c)
{
    double t = *sum + v;
    if (isinf(t))
        *c = 0;
    else if (fabs(*sum) >= fabs(v))
        *c += (*sum - t) + v;
    else
        *c += (v - t) + *sum;
    *sum = t;
}

/* Adds the entries of pos and neg that lie inside layout's zero bucket to *zc and drops them
 * (for the compensation terms, whose buckets follow the sum's). */
static void fold_into_zero(const native_histogram *layout, blist *pos, blist *neg, double *zc)
{
    for (size_t i = 0; i < pos->n; i++) {
        double lo, up;
        side_bounds(true, pos->idx[i], layout, &lo, &up);
        if (lo >= layout->zero_threshold) break;
        *zc += pos->cnt[i];
    }
    for (size_t i = 0; i < neg->n; i++) {
        double lo, up;
        side_bounds(false, neg->idx[i], layout, &lo, &up);
        if (up <= -layout->zero_threshold) break;
        *zc += neg->cnt[i];
    }
    trim_inside_zero(layout, pos, neg);
}

/* Merges x into (s, c) bucket by bucket with compensation; all three lists in one schema. */
static int kahan_merge(arena *a, const blist *s, const blist *c, const blist *x, int32_t schema,
                       double threshold, blist *os, blist *oc)
{
    size_t cap = s->n + c->n + x->n;
    if (blist_alloc(a, cap, os) || blist_alloc(a, cap, oc)) return STRATA_ENOMEM;
    size_t i = 0, j = 0, k = 0;
    if (schema != HIST_SCHEMA_CUSTOM)
        while (k < x->n && hist_bound(x->idx[k], schema, NULL, 0) <= threshold)
            k++;
    while (i < s->n || j < c->n || k < x->n) {
        int64_t idx = INT64_MAX;
        if (i < s->n && s->idx[i] < idx) idx = s->idx[i];
        if (j < c->n && c->idx[j] < idx) idx = c->idx[j];
        if (k < x->n && x->idx[k] < idx) idx = x->idx[k];
        double sv = 0, cv = 0, xv = 0;
        if (i < s->n && s->idx[i] == idx) sv = s->cnt[i++];
        if (j < c->n && c->idx[j] == idx) cv = c->cnt[j++];
        if (k < x->n && x->idx[k] == idx) xv = x->cnt[k++];
        kahan_inc(xv, &sv, &cv);
        os->idx[os->n] = oc->idx[oc->n] = (int32_t)idx;
        os->cnt[os->n++] = sv;
        oc->cnt[oc->n++] = cv;
    }
    return 0;
}

int hist_kahan_add(arena *a, native_histogram *sum, native_histogram *comp,
                   const native_histogram *x, unsigned *flags)
{
    *flags = 0;
    if (hist_is_custom(sum) != hist_is_custom(x)) return HIST_INCOMPATIBLE;
    if (adjust_hint(sum, x->reset_hint)) *flags |= HIST_FLAG_RESET_COLLISION;
    sum->is_int = sum->is_int && x->is_int;
    blist sp, sn, cp, cn, xp, xn, op, on, ocp, ocn;
    if (expand_side(a, sum, true, &sp) || expand_side(a, sum, false, &sn) ||
        expand_side(a, comp, true, &cp) || expand_side(a, comp, false, &cn) ||
        expand_side(a, x, true, &xp) || expand_side(a, x, false, &xn))
        return STRATA_ENOMEM;
    if (hist_is_custom(sum)) {
        bool match = custom_bounds_match(sum, x);
        if (!match) {
            *flags |= HIST_FLAG_NHCB_RECONCILED;
            double *b;
            uint32_t nb;
            if (intersect_bounds(a, sum, x, &b, &nb)) return STRATA_ENOMEM;
            map_custom(&cp, sum, b, nb);
            map_custom(&sp, sum, b, nb);
            map_custom(&xp, x, b, nb);
            sum->custom_values = b;
            sum->n_custom_values = nb;
        }
        cn.n = sn.n = xn.n = 0;
    } else {
        double xz = x->zero_count, xthr = x->zero_threshold;
        while (xthr != sum->zero_threshold) {
            if (sum->zero_threshold > xthr)
                zero_count_for(x, &xp, &xn, sum->zero_threshold, &xz, &xthr);
            if (xthr > sum->zero_threshold) {
                zero_count_for(sum, &sp, &sn, xthr, &sum->zero_count, &sum->zero_threshold);
                trim_inside_zero(sum, &sp, &sn);
                native_histogram layout = *sum;
                layout.schema = comp->schema;
                fold_into_zero(&layout, &cp, &cn, &comp->zero_count);
            }
        }
        kahan_inc(xz, &sum->zero_count, &comp->zero_count);
        if (x->schema < sum->schema) {
            reduce(&sp, sum->schema, x->schema);
            reduce(&sn, sum->schema, x->schema);
            sum->schema = x->schema;
        } else if (x->schema > sum->schema) {
            reduce(&xp, x->schema, sum->schema);
            reduce(&xn, x->schema, sum->schema);
        }
        reduce(&cp, comp->schema, sum->schema);
        reduce(&cn, comp->schema, sum->schema);
    }
    kahan_inc(x->count, &sum->count, &comp->count);
    kahan_inc(x->sum, &sum->sum, &comp->sum);
    if (kahan_merge(a, &sp, &cp, &xp, sum->schema, sum->zero_threshold, &op, &ocp) ||
        kahan_merge(a, &sn, &cn, &xn, sum->schema, sum->zero_threshold, &on, &ocn))
        return STRATA_ENOMEM;
    if (build(a, &op, false, &sum->pos_spans, &sum->n_pos_spans, &sum->pos_buckets,
              &sum->n_pos_buckets) ||
        build(a, &on, false, &sum->neg_spans, &sum->n_neg_spans, &sum->neg_buckets,
              &sum->n_neg_buckets) ||
        build(a, &ocp, false, &comp->pos_spans, &comp->n_pos_spans, &comp->pos_buckets,
              &comp->n_pos_buckets) ||
        build(a, &ocn, false, &comp->neg_spans, &comp->n_neg_spans, &comp->neg_buckets,
              &comp->n_neg_buckets))
        return STRATA_ENOMEM;
    comp->schema = sum->schema;
    comp->zero_threshold = sum->zero_threshold;
    comp->custom_values = sum->custom_values;
    comp->n_custom_values = sum->n_custom_values;
    return 0;
}
