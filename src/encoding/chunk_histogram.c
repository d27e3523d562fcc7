/*
 * chunk_histogram.c: native-histogram chunks in Prometheus' chunkenc layouts, bit for bit:
 * encoding 2 (HistogramChunk, integer counts) and encoding 3 (FloatHistogramChunk).
 *
 *   header   2 bytes   big-endian sample count
 *            1 byte    flags: top two bits the counter-reset header (00 unknown, 01 not reset,
 *                      10 reset, 11 gauge), the rest zero
 *   layout             zero threshold: byte 0 for 0; byte e+243 for 0.5*2^e (-242 <= e <= 11);
 *                      else byte 255 and the 64 bits of the double
 *                      schema (varbit int), positive spans, negative spans: count (varbit uint),
 *                      then length (varbit uint) and offset (varbit int) each; for schema -53
 *                      the custom bounds: count (varbit uint), then each bound as
 *                      varbit uint (bound*1000 + 1) when bound*1000 is a whole number in
 *                      0..33554430, else a 0 bit and the 64 bits of the double
 *   sample 0           t (varbit int); integer: count, zero count (varbit uint), sum (64 bits),
 *                      each bucket in delta-between-buckets form (varbit int); float: count,
 *                      zero count, sum and each absolute bucket count as 64 raw bits
 *   sample n           t delta-of-delta (varbit int); integer: count and zero count
 *                      delta-of-deltas (varbit int), sum XOR, each bucket's delta-of-delta
 *                      (varbit int); float: count, zero count, sum and each bucket XOR, each
 *                      with its own leading/trailing window. A staleness marker (sum is the
 *                      stale NaN) writes no buckets, and integer chunks write its count
 *                      delta-of-deltas as 0.
 *
 * varbit int: '0' for 0, else a prefix of 1 to 8 one-bits ('10', '110', ... '11111110',
 * '11111111') selecting a two's-complement field of 3, 6, 9, 12, 18, 25, 56 or 64 bits, the
 * smallest with -(2^(n-1) - 1) <= v <= 2^(n-1); varbit uint the same prefixes with unsigned
 * fields (v < 2^n). XOR is the XOR chunk's value encoding ('0' same, '10' reuse the window,
 * '11' + 5 bits leading + 6 bits length). Every chunk has one layout: when new buckets appear
 * the chunk is rewritten on the wider layout (hist_appender_recode), as Prometheus does.
 */
#include "encoding/encoding_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HIST_HEADER_BYTES 3
#define STALE_BITS 0x7ff0000000000002ull

static inline uint64_t f64_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return u;
}

static inline double bits_f64(uint64_t u)
{
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* Integer histograms carry whole counts in doubles; these conversions saturate instead of being
 * undefined for values no validated histogram has (NaN, beyond 2^63). */
static inline int64_t to_i64(double v)
{
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return v == v ? (int64_t)v : 0;
}

static inline uint64_t to_u64(double v)
{
    if (v >= 18446744073709551615.0) return UINT64_MAX;
    return v > 0 ? (uint64_t)v : 0;
}

static inline bool fits_signed(int64_t x, unsigned nbits)
{
    return -((1LL << (nbits - 1)) - 1) <= x && x <= (1LL << (nbits - 1));
}

/* ---- writing (room is reserved before a sample, so the puts cannot fail) --------------------- */

static const unsigned varbit_width[8] = {3, 6, 9, 12, 18, 25, 56, 64};

static void put_varbit_int(bit_writer *w, int64_t v)
{
    if (v == 0) {
        bitw_zeros(w, 1);
        return;
    }
    unsigned k = 0;
    while (k < 7 && !fits_signed(v, varbit_width[k]))
        k++;
    /* Prefix: k+1 one-bits then a zero, except the 8-bit all-ones prefix of the 64-bit form. */
    if (k < 7)
        bitw_put(w, ((1ull << (k + 2)) - 2), k + 2);
    else
        bitw_put(w, 0xff, 8);
    bitw_put(w, (uint64_t)v, varbit_width[k]);
}

static void put_varbit_uint(bit_writer *w, uint64_t v)
{
    if (v == 0) {
        bitw_zeros(w, 1);
        return;
    }
    unsigned k = 0;
    while (k < 7 && v >= (1ull << varbit_width[k]))
        k++;
    if (k < 7)
        bitw_put(w, ((1ull << (k + 2)) - 2), k + 2);
    else
        bitw_put(w, 0xff, 8);
    bitw_put(w, v, varbit_width[k]);
}

static void put_xor(bit_writer *w, uint64_t v, uint64_t *prev, uint8_t *lead, uint8_t *trail)
{
    uint64_t delta = v ^ *prev;
    *prev = v;
    if (delta == 0) {
        bitw_zeros(w, 1);
        return;
    }
    unsigned nl = (unsigned)__builtin_clzll(delta), nt = (unsigned)__builtin_ctzll(delta);
    if (nl >= 32) nl = 31;
    if (*lead != 0xff && nl >= *lead && nt >= *trail) {
        bitw_put(w, 0x2, 2); /* '10' */
        bitw_put(w, delta >> *trail, 64 - *lead - *trail);
        return;
    }
    *lead = (uint8_t)nl;
    *trail = (uint8_t)nt;
    unsigned sig = 64 - nl - nt;
    bitw_put(w, 0x3, 2); /* '11' */
    bitw_put(w, nl, 5);
    bitw_put(w, sig & 63, 6); /* 64 is written as 0 */
    bitw_put(w, delta >> nt, sig);
}

static void put_zero_threshold(bit_writer *w, double zt)
{
    if (zt == 0) {
        bitw_put(w, 0, 8);
        return;
    }
    int e;
    double frac = frexp(zt, &e);
    if (frac != 0.5 || e < -242 || e > 11) {
        bitw_put(w, 255, 8);
        bitw_put(w, f64_bits(zt), 64);
        return;
    }
    bitw_put(w, (uint64_t)(e + 243), 8);
}

static void put_custom_bound(bit_writer *w, double f)
{
    double tf = f * 1000;
    bool whole = false;
    if (tf >= 0 && tf <= 33554430) {
        double r = round(tf);
        whole = (double)(uint64_t)r / 1000 == f;
    }
    if (!whole) {
        bitw_zeros(w, 1);
        bitw_put(w, f64_bits(f), 64);
        return;
    }
    put_varbit_uint(w, (uint64_t)round(tf) + 1);
}

/* ---- the appender ------------------------------------------------------------------------------
 */

int hist_appender_init(hist_appender *a, chunk_encoding enc)
{
    memset(a, 0, sizeof *a);
    if (enc != CHUNK_ENC_HISTOGRAM && enc != CHUNK_ENC_FLOAT_HISTOGRAM) return STRATA_EINVAL;
    a->enc = enc;
    int rc = bitw_grow(&a->w, 64);
    if (rc) return rc;
    a->w.nbits = HIST_HEADER_BYTES * 8;
    a->sum_lead = a->fcnt_lead = a->fzcnt_lead = 0xff;
    return 0;
}

void hist_appender_free(hist_appender *a)
{
    bit_writer_free(&a->w);
    for (int s = 0; s < 2; s++) {
        free(a->spans[s]);
        free(a->ib[s]);
        free(a->ib_delta[s]);
        free(a->fb[s]);
        free(a->fb_lead[s]);
        free(a->fb_trail[s]);
        free(a->last_abs[s]);
    }
    free(a->custom);
    memset(a, 0, sizeof *a);
}

void hist_appender_set_header(hist_appender *a, uint8_t header)
{
    a->w.data[2] =
        (uint8_t)((a->w.data[2] & ~HIST_CHUNK_HEADER_MASK) | (header & HIST_CHUNK_HEADER_MASK));
}

const uint8_t *hist_appender_bytes(const hist_appender *a, size_t *len)
{
    return bit_writer_bytes(&a->w, len);
}

static bool is_stale(const native_histogram *h)
{
    return f64_bits(h->sum) == STALE_BITS;
}

/* Iterates the bucket indexes a span list covers, as Prometheus' bucketIterator does. */
typedef struct bucket_walk {
    const hist_span *spans;
    uint32_t n, span, in_span;
    int64_t idx;
    bool started;
} bucket_walk;

static bool walk_next(bucket_walk *b, int64_t *idx)
{
    while (b->span < b->n) {
        const hist_span *s = &b->spans[b->span];
        if (!b->started) {
            b->idx += s->offset;
            b->started = true;
            b->in_span = 0;
        }
        if (b->in_span < s->length) {
            *idx = b->idx + b->in_span;
            b->in_span++;
            if (b->in_span == s->length) {
                b->idx += s->length;
                b->span++;
                b->started = false;
            }
            return true;
        }
        b->span++;
        b->started = false;
    }
    return false;
}

/* Compares one side's old and new buckets: 1 same bucket set and nothing went down; 0 another
 * bucket set but nothing went down and no used bucket vanished; -1 a counter reset. */
static int compare_side(const hist_span *os, uint32_t on, const double *ov, const hist_span *ns,
                        uint32_t nn, const double *nv)
{
    bucket_walk a = {.spans = os, .n = on}, b = {.spans = ns, .n = nn};
    int64_t ai = 0, bi = 0;
    bool aok = walk_next(&a, &ai), bok = walk_next(&b, &bi);
    size_t ak = 0, bk = 0;
    bool same = true;
    while (aok || bok) {
        if (aok && bok && ai == bi) {
            if (nv[bk] < ov[ak]) return -1;
            ak++, bk++;
            aok = walk_next(&a, &ai);
            bok = walk_next(&b, &bi);
        } else if (aok && (!bok || ai < bi)) {
            if (ov[ak] != 0) return -1; /* a bucket in use disappeared */
            same = false;
            ak++;
            aok = walk_next(&a, &ai);
        } else {
            same = false; /* a new bucket */
            bk++;
            bok = walk_next(&b, &bi);
        }
    }
    return same ? 1 : 0;
}

/* Whether two span lists cover the same bucket indexes. */
static bool same_buckets(const hist_span *x, uint32_t nx, const hist_span *y, uint32_t ny)
{
    bucket_walk a = {.spans = x, .n = nx}, b = {.spans = y, .n = ny};
    for (;;) {
        int64_t ai, bi;
        bool ao = walk_next(&a, &ai), bo = walk_next(&b, &bi);
        if (ao != bo || (ao && ai != bi)) return false;
        if (!ao) return true;
    }
}

int hist_appender_fits(const hist_appender *a, const native_histogram *h, uint8_t *header)
{
    *header = HIST_CHUNK_UNKNOWN;
    if (a->count == 0) return 1;
    bool chunk_gauge = (a->w.data[2] & HIST_CHUNK_HEADER_MASK) == HIST_CHUNK_GAUGE;
    bool gauge = h->reset_hint == HIST_HINT_GAUGE;
    if (gauge != chunk_gauge) {
        *header = gauge ? HIST_CHUNK_GAUGE : HIST_CHUNK_NOT_RESET;
        return 0;
    }
    if (!gauge && h->reset_hint == HIST_HINT_RESET) {
        *header = HIST_CHUNK_RESET;
        return 0;
    }
    if (is_stale(h)) return 1;
    if (a->sum_bits == STALE_BITS) {
        *header = gauge ? HIST_CHUNK_GAUGE : HIST_CHUNK_UNKNOWN;
        return 0;
    }
    if (!gauge && h->count < a->last_count) {
        *header = HIST_CHUNK_RESET;
        return 0;
    }
    if (h->schema != a->schema || h->zero_threshold != a->zero_threshold) {
        *header = gauge ? HIST_CHUNK_GAUGE : HIST_CHUNK_UNKNOWN;
        return 0;
    }
    if (h->schema == HIST_SCHEMA_CUSTOM) {
        bool same = h->n_custom_values == a->n_custom;
        for (uint32_t i = 0; same && i < a->n_custom; i++)
            same = h->custom_values[i] == a->custom[i];
        if (!same) {
            *header = gauge ? HIST_CHUNK_GAUGE : HIST_CHUNK_RESET;
            return 0;
        }
    }
    if (!gauge && h->zero_count < a->last_zero_count) {
        *header = HIST_CHUNK_RESET;
        return 0;
    }
    const hist_span *nsp[2] = {h->pos_spans, h->neg_spans};
    uint32_t nns[2] = {h->n_pos_spans, h->n_neg_spans};
    const double *nb[2] = {h->pos_buckets, h->neg_buckets};
    bool same_layout = true;
    for (int s = 0; s < 2; s++) {
        if (gauge) {
            /* Gauges go up and down: only the set of buckets matters. */
            if (!same_buckets(a->spans[s], a->n_spans[s], nsp[s], nns[s])) same_layout = false;
            continue;
        }
        int c = compare_side(a->spans[s], a->n_spans[s], a->last_abs[s], nsp[s], nns[s], nb[s]);
        if (c < 0) {
            *header = HIST_CHUNK_RESET;
            return 0;
        }
        if (c != 1) same_layout = false;
    }
    if (!same_layout) {
        /* Only buckets added (or empty ones gone): Prometheus recodes the chunk to the union of
         * the layouts; a caller that cuts instead uses this header. */
        *header = gauge ? HIST_CHUNK_GAUGE : HIST_CHUNK_NOT_RESET;
        return 2;
    }
    return 1;
}

/* Copies the layout of the chunk's first sample. */
static int take_layout(hist_appender *a, const native_histogram *h)
{
    a->schema = h->schema;
    a->zero_threshold = h->zero_threshold;
    const hist_span *sp[2] = {h->pos_spans, h->neg_spans};
    uint32_t ns[2] = {h->n_pos_spans, h->n_neg_spans};
    uint32_t nb[2] = {h->n_pos_buckets, h->n_neg_buckets};
    for (int s = 0; s < 2; s++) {
        a->n_spans[s] = ns[s];
        a->n_buckets[s] = nb[s];
        size_t k = nb[s] ? nb[s] : 1;
        a->spans[s] = malloc((ns[s] ? ns[s] : 1) * sizeof(hist_span));
        a->last_abs[s] = calloc(k, sizeof(double));
        if (a->enc == CHUNK_ENC_HISTOGRAM) {
            a->ib[s] = calloc(k, sizeof(int64_t));
            a->ib_delta[s] = calloc(k, sizeof(int64_t));
            if (!a->ib[s] || !a->ib_delta[s]) return STRATA_ENOMEM;
        } else {
            a->fb[s] = calloc(k, sizeof(uint64_t));
            a->fb_lead[s] = malloc(k);
            a->fb_trail[s] = calloc(k, 1);
            if (!a->fb[s] || !a->fb_lead[s] || !a->fb_trail[s]) return STRATA_ENOMEM;
            memset(a->fb_lead[s], 0xff, k);
        }
        if (!a->spans[s] || !a->last_abs[s]) return STRATA_ENOMEM;
        if (ns[s]) memcpy(a->spans[s], sp[s], ns[s] * sizeof(hist_span));
    }
    if (h->schema == HIST_SCHEMA_CUSTOM && h->n_custom_values) {
        a->custom = malloc(h->n_custom_values * sizeof(double));
        if (!a->custom) return STRATA_ENOMEM;
        memcpy(a->custom, h->custom_values, h->n_custom_values * sizeof(double));
        a->n_custom = h->n_custom_values;
    }
    return 0;
}

int hist_append(hist_appender *a, int64_t t, const native_histogram *h)
{
    if (a->count == UINT16_MAX) return STRATA_ELIMIT;
    /* A staleness marker is stored as Prometheus stores it: its sum, nothing else. */
    native_histogram stale_h;
    if (is_stale(h)) {
        memset(&stale_h, 0, sizeof stale_h);
        stale_h.sum = h->sum;
        h = &stale_h;
    }
    bool first = a->count == 0;
    if (!first && (h->n_pos_buckets != a->n_buckets[0] || h->n_neg_buckets != a->n_buckets[1]) &&
        !is_stale(h))
        return STRATA_EINVAL; /* not a fit: hist_appender_fits says when to cut */
    if (first) {
        int rc = take_layout(a, h);
        if (rc) {
            chunk_encoding enc = a->enc;
            hist_appender_free(a);
            int rc2 = hist_appender_init(a, enc);
            return rc2 ? rc2 : rc;
        }
    }
    /* The most bits a sample can take: 80 per field, plus the layout for the first. */
    uint64_t fields = 4 + (uint64_t)h->n_pos_buckets + h->n_neg_buckets;
    uint64_t need = fields * 80;
    if (first)
        need += 80 + ((uint64_t)h->n_pos_spans + h->n_neg_spans) * 144 +
                (uint64_t)a->n_custom * 72 + 2 * 72;
    int rc = bitw_grow(&a->w, bitw_need(a->w.nbits + need));
    if (rc) return rc;
    bit_writer *w = &a->w;
    const double *vb[2] = {h->pos_buckets, h->neg_buckets};
    uint32_t nb[2] = {h->n_pos_buckets, h->n_neg_buckets};
    if (a->enc == CHUNK_ENC_HISTOGRAM) {
        uint64_t cnt = to_u64(h->count), zcnt = to_u64(h->zero_count);
        int64_t t_delta = 0, cnt_delta = 0, zcnt_delta = 0;
        if (first) {
            put_zero_threshold(w, h->zero_threshold);
            put_varbit_int(w, h->schema);
            for (int s = 0; s < 2; s++) {
                put_varbit_uint(w, a->n_spans[s]);
                for (uint32_t i = 0; i < a->n_spans[s]; i++) {
                    put_varbit_uint(w, a->spans[s][i].length);
                    put_varbit_int(w, a->spans[s][i].offset);
                }
            }
            if (h->schema == HIST_SCHEMA_CUSTOM) {
                put_varbit_uint(w, a->n_custom);
                for (uint32_t i = 0; i < a->n_custom; i++)
                    put_custom_bound(w, a->custom[i]);
            }
            put_varbit_int(w, t);
            put_varbit_uint(w, cnt);
            put_varbit_uint(w, zcnt);
            bitw_put(w, f64_bits(h->sum), 64);
            a->sum_bits = f64_bits(h->sum);
            for (int s = 0; s < 2; s++) {
                int64_t prev = 0;
                for (uint32_t i = 0; i < nb[s]; i++) {
                    int64_t abs = to_i64(vb[s][i]);
                    int64_t d = (int64_t)((uint64_t)abs - (uint64_t)prev);
                    prev = abs;
                    put_varbit_int(w, d);
                    a->ib[s][i] = d;
                }
            }
        } else {
            t_delta = (int64_t)((uint64_t)t - (uint64_t)a->t);
            cnt_delta = (int64_t)(cnt - a->cnt);
            zcnt_delta = (int64_t)(zcnt - a->zcnt);
            int64_t cnt_dod = (int64_t)((uint64_t)cnt_delta - (uint64_t)a->cnt_delta);
            int64_t zcnt_dod = (int64_t)((uint64_t)zcnt_delta - (uint64_t)a->zcnt_delta);
            if (is_stale(h)) cnt_dod = zcnt_dod = 0;
            put_varbit_int(w, (int64_t)((uint64_t)t_delta - (uint64_t)a->t_delta));
            put_varbit_int(w, cnt_dod);
            put_varbit_int(w, zcnt_dod);
            put_xor(w, f64_bits(h->sum), &a->sum_bits, &a->sum_lead, &a->sum_trail);
            for (int s = 0; s < 2; s++) {
                int64_t prev = 0;
                for (uint32_t i = 0; i < nb[s]; i++) {
                    int64_t abs = to_i64(vb[s][i]);
                    int64_t v = (int64_t)((uint64_t)abs - (uint64_t)prev);
                    prev = abs;
                    int64_t delta = (int64_t)((uint64_t)v - (uint64_t)a->ib[s][i]);
                    put_varbit_int(w, (int64_t)((uint64_t)delta - (uint64_t)a->ib_delta[s][i]));
                    a->ib_delta[s][i] = delta;
                    a->ib[s][i] = v;
                }
            }
        }
        a->cnt = cnt;
        a->zcnt = zcnt;
        a->t_delta = t_delta;
        a->cnt_delta = cnt_delta;
        a->zcnt_delta = zcnt_delta;
    } else {
        int64_t t_delta = 0;
        if (first) {
            put_zero_threshold(w, h->zero_threshold);
            put_varbit_int(w, h->schema);
            for (int s = 0; s < 2; s++) {
                put_varbit_uint(w, a->n_spans[s]);
                for (uint32_t i = 0; i < a->n_spans[s]; i++) {
                    put_varbit_uint(w, a->spans[s][i].length);
                    put_varbit_int(w, a->spans[s][i].offset);
                }
            }
            if (h->schema == HIST_SCHEMA_CUSTOM) {
                put_varbit_uint(w, a->n_custom);
                for (uint32_t i = 0; i < a->n_custom; i++)
                    put_custom_bound(w, a->custom[i]);
            }
            put_varbit_int(w, t);
            a->fcnt = f64_bits(h->count);
            a->fzcnt = f64_bits(h->zero_count);
            a->sum_bits = f64_bits(h->sum);
            bitw_put(w, a->fcnt, 64);
            bitw_put(w, a->fzcnt, 64);
            bitw_put(w, a->sum_bits, 64);
            for (int s = 0; s < 2; s++)
                for (uint32_t i = 0; i < nb[s]; i++) {
                    a->fb[s][i] = f64_bits(vb[s][i]);
                    bitw_put(w, a->fb[s][i], 64);
                }
        } else {
            t_delta = (int64_t)((uint64_t)t - (uint64_t)a->t);
            put_varbit_int(w, (int64_t)((uint64_t)t_delta - (uint64_t)a->t_delta));
            put_xor(w, f64_bits(h->count), &a->fcnt, &a->fcnt_lead, &a->fcnt_trail);
            put_xor(w, f64_bits(h->zero_count), &a->fzcnt, &a->fzcnt_lead, &a->fzcnt_trail);
            put_xor(w, f64_bits(h->sum), &a->sum_bits, &a->sum_lead, &a->sum_trail);
            for (int s = 0; s < 2; s++)
                for (uint32_t i = 0; i < nb[s]; i++)
                    put_xor(w, f64_bits(vb[s][i]), &a->fb[s][i], &a->fb_lead[s][i],
                            &a->fb_trail[s][i]);
        }
        a->t_delta = t_delta;
    }
    a->t = t;
    a->count++;
    w->data[0] = (uint8_t)(a->count >> 8);
    w->data[1] = (uint8_t)a->count;
    if (first) {
        if (h->reset_hint == HIST_HINT_GAUGE)
            hist_appender_set_header(a, HIST_CHUNK_GAUGE);
        else if (h->reset_hint == HIST_HINT_RESET)
            hist_appender_set_header(a, HIST_CHUNK_RESET);
    }
    if (!is_stale(h)) {
        for (int s = 0; s < 2; s++)
            if (nb[s]) memcpy(a->last_abs[s], vb[s], nb[s] * sizeof(double));
        a->last_count = h->count;
        a->last_zero_count = h->zero_count;
    }
    return 0;
}

/* ---- recoding to a wider layout ------------------------------------------------------------- */

/* The sorted bucket indexes a span list covers; *n of them in *out (malloc'd). */
static int span_indexes(const hist_span *sp, uint32_t n_spans, uint32_t n_buckets, int64_t **out,
                        size_t *n)
{
    int64_t *v = malloc((n_buckets + 1) * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    bucket_walk w = {.spans = sp, .n = n_spans};
    size_t k = 0;
    int64_t idx;
    while (k < n_buckets && walk_next(&w, &idx))
        v[k++] = idx;
    *out = v;
    *n = k;
    return 0;
}

/* The union of two sorted index lists as canonical spans (one per run of consecutive indexes). */
static int union_spans(const int64_t *a, size_t na, const int64_t *b, size_t nb, hist_span **spans,
                       uint32_t *n_spans, int64_t **idx, size_t *n_idx)
{
    int64_t *u = malloc((na + nb + 1) * sizeof *u);
    hist_span *sp = malloc((na + nb + 1) * sizeof *sp);
    if (!u || !sp) {
        free(u);
        free(sp);
        return STRATA_ENOMEM;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < na || j < nb) {
        int64_t x = j >= nb || (i < na && a[i] <= b[j]) ? a[i] : b[j];
        if (i < na && a[i] == x) i++;
        if (j < nb && b[j] == x) j++;
        u[k++] = x;
    }
    uint32_t ns = 0;
    for (size_t q = 0; q < k; q++) {
        if (q && u[q] == u[q - 1] + 1) {
            sp[ns - 1].length++;
            continue;
        }
        int64_t off = q ? u[q] - u[q - 1] - 1 : u[q];
        if (off < INT32_MIN || off > INT32_MAX) {
            free(u);
            free(sp);
            return STRATA_EINVAL;
        }
        sp[ns++] = (hist_span){.offset = (int32_t)off, .length = 1};
    }
    *spans = sp;
    *n_spans = ns;
    *idx = u;
    *n_idx = k;
    return 0;
}

/* Bucket values of one side laid out on the merged indexes (zeros where the sample has none). */
static void expand(const hist_span *sp, uint32_t n_spans, const double *vals, uint32_t n_vals,
                   const int64_t *merged, size_t n_merged, double *out)
{
    memset(out, 0, (n_merged ? n_merged : 1) * sizeof *out);
    bucket_walk w = {.spans = sp, .n = n_spans};
    size_t m = 0;
    int64_t idx;
    for (uint32_t k = 0; k < n_vals && walk_next(&w, &idx); k++) {
        while (m < n_merged && merged[m] < idx)
            m++;
        if (m < n_merged && merged[m] == idx) out[m] = vals[k];
    }
}

int hist_appender_recode(hist_appender *a, int64_t t, const native_histogram *h)
{
    if (a->count == 0 || is_stale(h)) return hist_append(a, t, h);
    size_t len;
    const uint8_t *bytes = hist_appender_bytes(a, &len);
    uint8_t header = bytes[2] & HIST_CHUNK_HEADER_MASK;
    arena ar;
    arena_init(&ar, 0);
    hist_sample *old;
    size_t n_old;
    int rc = hist_chunk_decode(bytes, len, a->enc, &ar, &old, &n_old, NULL);
    int64_t *ci[2] = {NULL, NULL}, *hi[2] = {NULL, NULL}, *mi[2] = {NULL, NULL};
    size_t nci[2] = {0, 0}, nhi[2] = {0, 0}, nmi[2] = {0, 0};
    hist_span *msp[2] = {NULL, NULL};
    uint32_t nms[2] = {0, 0};
    const hist_span *hsp[2] = {h->pos_spans, h->neg_spans};
    uint32_t hns[2] = {h->n_pos_spans, h->n_neg_spans},
             hnb[2] = {h->n_pos_buckets, h->n_neg_buckets};
    for (int s = 0; s < 2 && !rc; s++) {
        rc = span_indexes(a->spans[s], a->n_spans[s], a->n_buckets[s], &ci[s], &nci[s]);
        if (!rc) rc = span_indexes(hsp[s], hns[s], hnb[s], &hi[s], &nhi[s]);
        if (!rc) rc = union_spans(ci[s], nci[s], hi[s], nhi[s], &msp[s], &nms[s], &mi[s], &nmi[s]);
    }
    hist_appender fresh;
    bool fresh_ok = false;
    if (!rc) rc = hist_appender_init(&fresh, a->enc);
    if (!rc) fresh_ok = true;
    double *vals[2] = {NULL, NULL};
    for (int s = 0; s < 2 && !rc; s++)
        if (!(vals[s] = malloc((nmi[s] + 1) * sizeof(double)))) rc = STRATA_ENOMEM;
    /* Every old sample, then the new one, on the merged layout. */
    for (size_t k = 0; k <= n_old && !rc; k++) {
        const native_histogram *src = k < n_old ? &old[k].h : h;
        native_histogram x = *src;
        if (!is_stale(src)) {
            expand(src->pos_spans, src->n_pos_spans, src->pos_buckets, src->n_pos_buckets, mi[0],
                   nmi[0], vals[0]);
            expand(src->neg_spans, src->n_neg_spans, src->neg_buckets, src->n_neg_buckets, mi[1],
                   nmi[1], vals[1]);
            x.pos_spans = msp[0];
            x.n_pos_spans = nms[0];
            x.pos_buckets = vals[0];
            x.n_pos_buckets = (uint32_t)nmi[0];
            x.neg_spans = msp[1];
            x.n_neg_spans = nms[1];
            x.neg_buckets = vals[1];
            x.n_neg_buckets = (uint32_t)nmi[1];
        }
        x.reset_hint = HIST_HINT_UNKNOWN; /* the header is restored below */
        rc = hist_append(&fresh, k < n_old ? old[k].t : t, &x);
        if (k + 1 == n_old && !rc) hist_appender_set_header(&fresh, header);
    }
    if (!rc) {
        hist_appender_free(a);
        *a = fresh;
        fresh_ok = false;
    }
    if (fresh_ok) hist_appender_free(&fresh);
    for (int s = 0; s < 2; s++) {
        free(ci[s]);
        free(hi[s]);
        free(mi[s]);
        free(msp[s]);
        free(vals[s]);
    }
    arena_free(&ar);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------------
 */

static int it_fail(hist_iter *it)
{
    it->state = STRATA_ECORRUPT;
    return STRATA_ECORRUPT;
}

static bool get_bits(hist_iter *it, unsigned n, uint64_t *v)
{
    return bit_read(&it->r, n, v) == 0;
}

/* The readers peek 64 bits at a time (zeros past the end) and consume only what they decoded,
 * after bitr_skip has checked those bits were really there. */
static bool get_varbit(hist_iter *it, bool is_signed, uint64_t *out)
{
    uint64_t w = bitr_peek(&it->r), inv = ~w;
    unsigned ones = inv ? (unsigned)__builtin_clzll(inv) : 64;
    if (ones == 0) {
        *out = 0;
        return bitr_skip(&it->r, 1);
    }
    if (ones > 8) ones = 8;
    unsigned prefix = ones < 8 ? ones + 1 : 8, width = varbit_width[ones - 1];
    uint64_t v;
    if (prefix + width <= 64) {
        v = (w << prefix) >> (64 - width);
        if (!bitr_skip(&it->r, prefix + width)) return false;
    } else if (!bitr_skip(&it->r, prefix) || !get_bits(it, width, &v)) {
        return false;
    }
    if (is_signed && width < 64 && v > (1ull << (width - 1))) v -= 1ull << width;
    *out = v;
    return true;
}

static bool get_varbit_int(hist_iter *it, int64_t *v)
{
    uint64_t u;
    if (!get_varbit(it, true, &u)) return false;
    *v = (int64_t)u;
    return true;
}

static bool get_xor(hist_iter *it, uint64_t *v, uint8_t *lead, uint8_t *trail)
{
    uint64_t w = bitr_peek(&it->r);
    if (!(w >> 63)) return bitr_skip(&it->r, 1); /* '0': the same value */
    unsigned used = 2;
    if (w >> 62 & 1) { /* '11': a new window, 5 bits of leading zeros and 6 of length */
        unsigned l = (unsigned)(w >> 57 & 31), sig = (unsigned)(w >> 51 & 63);
        if (sig == 0) sig = 64;
        if (l + sig > 64) return false;
        *lead = (uint8_t)l;
        *trail = (uint8_t)(64 - l - sig);
        used = 13;
    }
    if (*lead + *trail >= 64) return false;
    unsigned sig = 64u - *lead - *trail;
    uint64_t bits;
    if (used + sig <= 64) {
        bits = (w << used) >> (64 - sig);
        if (!bitr_skip(&it->r, used + sig)) return false;
    } else if (!bitr_skip(&it->r, used) || !get_bits(it, sig, &bits)) {
        return false;
    }
    *v ^= bits << *trail;
    return true;
}

static void *it_alloc(hist_iter *it, size_t n)
{
    return arena_alloc(it->a, n ? n : 1);
}

int hist_iter_init(hist_iter *it, const uint8_t *data, size_t len, chunk_encoding enc, arena *a)
{
    memset(it, 0, sizeof *it);
    it->enc = enc;
    it->a = a;
    if (enc != CHUNK_ENC_HISTOGRAM && enc != CHUNK_ENC_FLOAT_HISTOGRAM) {
        it->state = STRATA_ECORRUPT;
        return STRATA_EINVAL;
    }
    if (!data || len < HIST_HEADER_BYTES) return it_fail(it);
    it->total = (uint16_t)(data[0] << 8 | data[1]);
    it->header = data[2] & HIST_CHUNK_HEADER_MASK;
    bit_reader_init(&it->r, data + HIST_HEADER_BYTES, len - HIST_HEADER_BYTES);
    return 0;
}

static int read_layout(hist_iter *it)
{
    uint64_t b, u;
    if (!get_bits(it, 8, &b)) return it_fail(it);
    if (b == 0)
        it->zero_threshold = 0;
    else if (b == 255) {
        if (!get_bits(it, 64, &u)) return it_fail(it);
        it->zero_threshold = bits_f64(u);
    } else {
        it->zero_threshold = ldexp(0.5, (int)b - 243);
    }
    int64_t schema;
    if (!get_varbit_int(it, &schema)) return it_fail(it);
    if (schema != HIST_SCHEMA_CUSTOM && (schema < -4 || schema > 8)) return it_fail(it);
    it->schema = (int32_t)schema;
    for (int s = 0; s < 2; s++) {
        if (!get_varbit(it, false, &u)) return it_fail(it);
        /* Each span takes at least two bits: no claim can outgrow the data. */
        if (u > bit_reader_remaining(&it->r) / 2) return it_fail(it);
        it->n_spans[s] = (uint32_t)u;
        it->spans[s] = it_alloc(it, u * sizeof(hist_span));
        if (!it->spans[s]) return it->state = STRATA_ENOMEM;
        uint64_t total = 0;
        for (uint64_t i = 0; i < u; i++) {
            uint64_t length;
            int64_t offset;
            if (!get_varbit(it, false, &length) || !get_varbit_int(it, &offset) ||
                length > UINT32_MAX || offset < INT32_MIN || offset > INT32_MAX)
                return it_fail(it);
            it->spans[s][i] = (hist_span){.offset = (int32_t)offset, .length = (uint32_t)length};
            total += length;
            /* Every bucket takes at least one bit in the first sample. */
            if (total > bit_reader_remaining(&it->r)) return it_fail(it);
        }
        it->n_buckets[s] = (uint32_t)total;
    }
    if (it->schema == HIST_SCHEMA_CUSTOM) {
        if (!get_varbit(it, false, &u) || u > bit_reader_remaining(&it->r)) return it_fail(it);
        it->n_custom = (uint32_t)u;
        it->custom = it_alloc(it, u * sizeof(double));
        if (!it->custom) return it->state = STRATA_ENOMEM;
        for (uint64_t i = 0; i < u; i++) {
            uint64_t v;
            if (!get_varbit(it, false, &v)) return it_fail(it);
            if (v == 0) {
                if (!get_bits(it, 64, &v)) return it_fail(it);
                it->custom[i] = bits_f64(v);
            } else {
                it->custom[i] = (double)(v - 1) / 1000;
            }
        }
    }
    for (int s = 0; s < 2; s++) {
        size_t n = it->n_buckets[s];
        if (it->enc == CHUNK_ENC_HISTOGRAM) {
            it->ib[s] = it_alloc(it, n * sizeof(int64_t));
            it->ib_delta[s] = it_alloc(it, n * sizeof(int64_t));
            if (!it->ib[s] || !it->ib_delta[s]) return it->state = STRATA_ENOMEM;
            memset(it->ib_delta[s], 0, n * sizeof(int64_t));
        } else {
            it->fb[s] = it_alloc(it, n * sizeof(uint64_t));
            it->fb_lead[s] = it_alloc(it, n);
            it->fb_trail[s] = it_alloc(it, n);
            if (!it->fb[s] || !it->fb_lead[s] || !it->fb_trail[s]) return it->state = STRATA_ENOMEM;
            memset(it->fb_lead[s], 0, n);
            memset(it->fb_trail[s], 0, n);
        }
    }
    return 0;
}

int hist_iter_next(hist_iter *it)
{
    if (it->state) return it->state < 0 ? it->state : 0;
    if (it->read == it->total) {
        it->state = 1;
        return 0;
    }
    if (it->read == 0) {
        int rc = read_layout(it);
        if (rc) return rc;
        if (!get_varbit_int(it, &it->t)) return it_fail(it);
        if (it->enc == CHUNK_ENC_HISTOGRAM) {
            if (!get_varbit(it, false, &it->cnt) || !get_varbit(it, false, &it->zcnt) ||
                !get_bits(it, 64, &it->sum_bits))
                return it_fail(it);
            for (int s = 0; s < 2; s++)
                for (uint32_t i = 0; i < it->n_buckets[s]; i++)
                    if (!get_varbit_int(it, &it->ib[s][i])) return it_fail(it);
        } else {
            if (!get_bits(it, 64, &it->fcnt) || !get_bits(it, 64, &it->fzcnt) ||
                !get_bits(it, 64, &it->sum_bits))
                return it_fail(it);
            for (int s = 0; s < 2; s++)
                for (uint32_t i = 0; i < it->n_buckets[s]; i++)
                    if (!get_bits(it, 64, &it->fb[s][i])) return it_fail(it);
        }
        it->read++;
        return 1;
    }
    int64_t dod;
    if (!get_varbit_int(it, &dod)) return it_fail(it);
    it->t_delta = (int64_t)((uint64_t)it->t_delta + (uint64_t)dod);
    it->t = (int64_t)((uint64_t)it->t + (uint64_t)it->t_delta);
    if (it->enc == CHUNK_ENC_HISTOGRAM) {
        int64_t cd, zd;
        if (!get_varbit_int(it, &cd) || !get_varbit_int(it, &zd)) return it_fail(it);
        it->cnt_delta = (int64_t)((uint64_t)it->cnt_delta + (uint64_t)cd);
        it->cnt += (uint64_t)it->cnt_delta;
        it->zcnt_delta = (int64_t)((uint64_t)it->zcnt_delta + (uint64_t)zd);
        it->zcnt += (uint64_t)it->zcnt_delta;
        if (!get_xor(it, &it->sum_bits, &it->sum_lead, &it->sum_trail)) return it_fail(it);
        if (it->sum_bits != STALE_BITS)
            for (int s = 0; s < 2; s++)
                for (uint32_t i = 0; i < it->n_buckets[s]; i++) {
                    if (!get_varbit_int(it, &dod)) return it_fail(it);
                    it->ib_delta[s][i] = (int64_t)((uint64_t)it->ib_delta[s][i] + (uint64_t)dod);
                    it->ib[s][i] = (int64_t)((uint64_t)it->ib[s][i] + (uint64_t)it->ib_delta[s][i]);
                }
    } else {
        if (!get_xor(it, &it->fcnt, &it->fcnt_lead, &it->fcnt_trail) ||
            !get_xor(it, &it->fzcnt, &it->fzcnt_lead, &it->fzcnt_trail) ||
            !get_xor(it, &it->sum_bits, &it->sum_lead, &it->sum_trail))
            return it_fail(it);
        if (it->sum_bits != STALE_BITS)
            for (int s = 0; s < 2; s++)
                for (uint32_t i = 0; i < it->n_buckets[s]; i++)
                    if (!get_xor(it, &it->fb[s][i], &it->fb_lead[s][i], &it->fb_trail[s][i]))
                        return it_fail(it);
    }
    it->read++;
    return 1;
}

int hist_iter_at(const hist_iter *it, arena *a, hist_sample *out)
{
    memset(out, 0, sizeof *out);
    out->t = it->t;
    native_histogram *h = &out->h;
    h->is_int = it->enc == CHUNK_ENC_HISTOGRAM;
    h->sum = bits_f64(it->sum_bits);
    if (it->sum_bits == STALE_BITS) return 0;
    if (it->header == HIST_CHUNK_GAUGE)
        h->reset_hint = HIST_HINT_GAUGE;
    else if (it->read > 1)
        h->reset_hint = HIST_HINT_NOT_RESET;
    else if (it->header == HIST_CHUNK_RESET)
        h->reset_hint = HIST_HINT_RESET;
    else
        h->reset_hint = HIST_HINT_UNKNOWN;
    h->schema = it->schema;
    h->zero_threshold = it->zero_threshold;
    h->pos_spans = it->spans[0];
    h->n_pos_spans = it->n_spans[0];
    h->neg_spans = it->spans[1];
    h->n_neg_spans = it->n_spans[1];
    h->custom_values = it->n_custom ? it->custom : NULL;
    h->n_custom_values = it->n_custom;
    if (it->enc == CHUNK_ENC_HISTOGRAM) {
        h->count = (double)it->cnt;
        h->zero_count = (double)it->zcnt;
    } else {
        h->count = bits_f64(it->fcnt);
        h->zero_count = bits_f64(it->fzcnt);
    }
    double *b[2];
    for (int s = 0; s < 2; s++) {
        uint32_t n = it->n_buckets[s];
        b[s] = arena_alloc(a, (n ? n : 1) * sizeof(double));
        if (!b[s]) return STRATA_ENOMEM;
        int64_t cur = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (it->enc == CHUNK_ENC_HISTOGRAM) {
                cur = (int64_t)((uint64_t)cur + (uint64_t)it->ib[s][i]);
                b[s][i] = (double)cur;
            } else {
                b[s][i] = bits_f64(it->fb[s][i]);
            }
        }
    }
    h->pos_buckets = b[0];
    h->n_pos_buckets = it->n_buckets[0];
    h->neg_buckets = b[1];
    h->n_neg_buckets = it->n_buckets[1];
    return 0;
}

int hist_chunk_decode(const uint8_t *data, size_t len, chunk_encoding enc, arena *a,
                      hist_sample **out, size_t *n, char *err)
{
    *out = NULL;
    *n = 0;
    hist_iter it;
    int rc = hist_iter_init(&it, data, len, enc, a);
    if (rc)
        return strata_errf(err, rc, "histogram chunk: %s",
                           rc == STRATA_EINVAL ? "not a histogram encoding"
                                               : "shorter than its header");
    hist_sample *v = arena_alloc(a, (it.total ? it.total : 1) * sizeof *v);
    if (!v) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    size_t k = 0;
    while ((rc = hist_iter_next(&it)) == 1) {
        rc = hist_iter_at(&it, a, &v[k]);
        if (rc) return strata_errf(err, rc, "out of memory");
        k++;
    }
    if (rc < 0)
        return strata_errf(err, rc, "histogram chunk: %s at sample %zu of %u",
                           rc == STRATA_ENOMEM ? "out of memory" : "malformed or truncated data", k,
                           it.total);
    *out = v;
    *n = k;
    return 0;
}

/* ---- codec table entries ------------------------------------------------------------------- */

static int hist_decode_floats(const uint8_t *data, size_t len, strata_sample *out, size_t cap,
                              size_t *n, char *err)
{
    (void)data, (void)len, (void)out, (void)cap;
    *n = 0;
    return strata_errf(err, STRATA_EINVAL, "a histogram chunk holds histograms, not float samples");
}

static int hist_count(const uint8_t *data, size_t len, uint32_t *n)
{
    if (!data || len < HIST_HEADER_BYTES) return STRATA_ECORRUPT;
    *n = (uint32_t)(data[0] << 8 | data[1]);
    return 0;
}

static int decode_int_chunk(const uint8_t *data, size_t len, arena *a, hist_sample **out, size_t *n,
                            char *err)
{
    return hist_chunk_decode(data, len, CHUNK_ENC_HISTOGRAM, a, out, n, err);
}

static int decode_float_chunk(const uint8_t *data, size_t len, arena *a, hist_sample **out,
                              size_t *n, char *err)
{
    return hist_chunk_decode(data, len, CHUNK_ENC_FLOAT_HISTOGRAM, a, out, n, err);
}

const chunk_codec chunk_codec_histogram = {
    .id = CHUNK_ENC_HISTOGRAM,
    .name = "histogram",
    .decode = hist_decode_floats,
    .count = hist_count,
    .decode_hist = decode_int_chunk,
};

const chunk_codec chunk_codec_float_histogram = {
    .id = CHUNK_ENC_FLOAT_HISTOGRAM,
    .name = "floathistogram",
    .decode = hist_decode_floats,
    .count = hist_count,
    .decode_hist = decode_float_chunk,
};
