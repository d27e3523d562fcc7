/*
 * head_hist.c: native-histogram samples in the storage module: validation, the WAL record that
 * carries them, and their place in the head.
 *
 * Each series with histograms has a head_hist: full chunks and one open chunk in Prometheus'
 * histogram encodings (chunk_histogram.c; integer histograms in encoding 2, float ones in 3). New
 * buckets recode the open chunk to the wider layout (as Prometheus does); a new chunk starts when
 * the appender says the sample does not fit (counter reset, schema change, gauge/counter switch:
 * the chunk header records why), when the flavour changes, or when the open chunk is full
 * (max_samples_per_chunk samples, 4 KiB, or a chunk_range_ms boundary). A read copies the open
 * chunk under the stripe lock and decodes outside it. Floats and histograms share the series'
 * newest timestamp (s->last_t), which gives both the same out-of-order and duplicate rules, as in
 * Prometheus; duplicates are judged on the newest sample's encoded bytes.
 *
 * The WAL carries each histogram in a compact form of its own (hist_encode below), which keeps
 * every field of the sample as written; the chunks keep what Prometheus keeps (a staleness marker
 * as its sum alone, the reset hint as the chunk header).
 *
 * Encoded histogram (all integers little-endian; varints as in protobuf, signed ones zigzagged):
 *
 *     flags u8 (bit 0 is_int, bits 1-2 reset hint) | schema varint | zero_threshold f64 |
 *     count f64 | sum f64 | zero_count f64 |
 *     n_pos_spans uvarint, then offset varint, length uvarint each | the same for negative spans |
 *     n_pos_buckets uvarint, f64 each | n_neg_buckets uvarint, f64 each |
 *     n_custom_values uvarint, f64 each
 *
 * Doubles are copied bit for bit, so NaN payloads (the staleness marker) survive.
 */
#include "storage/storage_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation ------------------------------------------------------------------------------ */

bool native_histogram_is_stale(const native_histogram *h)
{
    uint64_t bits;
    memcpy(&bits, &h->sum, sizeof bits);
    return bits == STRATA_STALE_NAN_BITS;
}

static int check_spans(const hist_span *spans, uint32_t n_spans, uint32_t n_buckets,
                       const char *side, char *err)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < n_spans; i++) {
        if (i > 0 && spans[i].offset < 0)
            return strata_errf(err, STRATA_EINVAL, "%s: span number %u with offset %d", side, i + 1,
                               spans[i].offset);
        total += spans[i].length;
    }
    if (total != n_buckets)
        return strata_errf(err, STRATA_EINVAL, "%s: spans need %llu buckets, have %u buckets", side,
                           (unsigned long long)total, n_buckets);
    return 0;
}

static int check_count(double c, bool is_int, const char *what, char *err)
{
    if (!isfinite(c) || c < 0)
        return strata_errf(err, STRATA_EINVAL, "%s is %g: counts must be finite and non-negative",
                           what, c);
    if (is_int && c != floor(c))
        return strata_errf(err, STRATA_EINVAL, "%s is %g in an integer histogram", what, c);
    if (is_int && c >= 9223372036854775808.0) /* 2^63: chunks hold int64 deltas */
        return strata_errf(err, STRATA_EINVAL, "%s is %g, too large for an integer histogram", what,
                           c);
    return 0;
}

static int check_buckets(const double *b, uint32_t n, bool is_int, const char *side, double *sum,
                         char *err)
{
    for (uint32_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s: bucket number %u", side, i + 1);
        int rc = check_count(b[i], is_int, what, err);
        if (rc) return rc;
        *sum += b[i];
    }
    return 0;
}

int native_histogram_validate(const native_histogram *h, char *err)
{
    bool custom = h->schema == HIST_SCHEMA_CUSTOM;
    if (!custom && (h->schema < -4 || h->schema > 8))
        return strata_errf(err, STRATA_EINVAL,
                           "histogram schema %d is invalid: must be -4..8, or -53 for custom "
                           "buckets",
                           h->schema);
    if (h->reset_hint > HIST_HINT_GAUGE)
        return strata_errf(err, STRATA_EINVAL, "histogram reset hint %u is invalid", h->reset_hint);
    if (!(h->zero_threshold >= 0) || !isfinite(h->zero_threshold))
        return strata_errf(err, STRATA_EINVAL, "zero threshold %g is invalid", h->zero_threshold);
    if ((h->n_pos_spans && !h->pos_spans) || (h->n_neg_spans && !h->neg_spans) ||
        (h->n_pos_buckets && !h->pos_buckets) || (h->n_neg_buckets && !h->neg_buckets) ||
        (h->n_custom_values && !h->custom_values))
        return strata_errf(err, STRATA_EINVAL, "histogram arrays missing");
    int rc;
    if (custom) {
        for (uint32_t i = 0; i < h->n_custom_values; i++) {
            double b = h->custom_values[i];
            if (isnan(b) || b == -INFINITY)
                return strata_errf(err, STRATA_EINVAL, "custom buckets: bound %u is %g", i + 1, b);
            if (b == INFINITY)
                return strata_errf(err, STRATA_EINVAL,
                                   "custom buckets: the last +Inf bound must not be given");
            if (i > 0 && !(b > h->custom_values[i - 1]))
                return strata_errf(
                    err, STRATA_EINVAL,
                    "custom buckets: bounds must be strictly increasing: %g after %g", b,
                    h->custom_values[i - 1]);
        }
        if (h->zero_count != 0 || h->zero_threshold != 0)
            return strata_errf(err, STRATA_EINVAL,
                               "custom buckets: the zero bucket must be empty (count %g, threshold "
                               "%g)",
                               h->zero_count, h->zero_threshold);
        if (h->n_neg_spans || h->n_neg_buckets)
            return strata_errf(err, STRATA_EINVAL,
                               "custom buckets: negative buckets are not allowed");
        /* Bucket indexes run 0..n_custom_values (the last is the implicit +Inf bucket). */
        uint64_t total = 0, reach = 0;
        for (uint32_t i = 0; i < h->n_pos_spans; i++) {
            if (h->pos_spans[i].offset < 0)
                return strata_errf(err, STRATA_EINVAL,
                                   "custom buckets: span number %u with offset %d", i + 1,
                                   h->pos_spans[i].offset);
            total += h->pos_spans[i].length;
            reach += (uint64_t)h->pos_spans[i].offset + h->pos_spans[i].length;
        }
        if (reach > (uint64_t)h->n_custom_values + 1)
            return strata_errf(err, STRATA_EINVAL,
                               "custom buckets: only %u bounds defined, too few for spans "
                               "reaching bucket %llu",
                               h->n_custom_values, (unsigned long long)reach);
        if (total != h->n_pos_buckets)
            return strata_errf(err, STRATA_EINVAL,
                               "custom buckets: spans need %llu buckets, have %u buckets",
                               (unsigned long long)total, h->n_pos_buckets);
    } else {
        if (h->n_custom_values)
            return strata_errf(err, STRATA_EINVAL,
                               "histogram with exponential schema %d must not have custom bounds",
                               h->schema);
        if ((rc = check_spans(h->pos_spans, h->n_pos_spans, h->n_pos_buckets, "positive side",
                              err)) ||
            (rc =
                 check_spans(h->neg_spans, h->n_neg_spans, h->n_neg_buckets, "negative side", err)))
            return rc;
    }
    /* A staleness marker only says the series ended: its counts carry no meaning. */
    if (native_histogram_is_stale(h)) return 0;
    double in_buckets = 0;
    if ((rc = check_buckets(h->pos_buckets, h->n_pos_buckets, h->is_int, "positive side",
                            &in_buckets, err)) ||
        (rc = check_buckets(h->neg_buckets, h->n_neg_buckets, h->is_int, "negative side",
                            &in_buckets, err)) ||
        (rc = check_count(h->zero_count, h->is_int, "zero count", err)) ||
        (rc = check_count(h->count, h->is_int, "count", err)))
        return rc;
    in_buckets += h->zero_count;
    /* Float histograms are not checked: rounding makes the sum of buckets drift from the count. */
    if (h->is_int) {
        if (isnan(h->sum) && in_buckets > h->count)
            return strata_errf(err, STRATA_EINVAL,
                               "%.0f observations found in buckets, but the count is %.0f",
                               in_buckets, h->count);
        if (!isnan(h->sum) && in_buckets != h->count)
            return strata_errf(err, STRATA_EINVAL,
                               "%.0f observations found in buckets, but the count is %.0f",
                               in_buckets, h->count);
    }
    return 0;
}

static bool same_bits(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

bool native_histogram_identical(const native_histogram *a, const native_histogram *b)
{
    return a->schema == b->schema && a->reset_hint == b->reset_hint && a->is_int == b->is_int &&
           same_bits(&a->zero_threshold, &b->zero_threshold, 8) &&
           same_bits(&a->zero_count, &b->zero_count, 8) && same_bits(&a->count, &b->count, 8) &&
           same_bits(&a->sum, &b->sum, 8) && a->n_pos_spans == b->n_pos_spans &&
           a->n_neg_spans == b->n_neg_spans && a->n_pos_buckets == b->n_pos_buckets &&
           a->n_neg_buckets == b->n_neg_buckets && a->n_custom_values == b->n_custom_values &&
           same_bits(a->pos_spans, b->pos_spans, a->n_pos_spans * sizeof(hist_span)) &&
           same_bits(a->neg_spans, b->neg_spans, a->n_neg_spans * sizeof(hist_span)) &&
           same_bits(a->pos_buckets, b->pos_buckets, a->n_pos_buckets * 8) &&
           same_bits(a->neg_buckets, b->neg_buckets, a->n_neg_buckets * 8) &&
           same_bits(a->custom_values, b->custom_values, a->n_custom_values * 8);
}

/* ---- the encoded form --------------------------------------------------------------------------
 */

static inline uint8_t *put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t *put_varint(uint8_t *p, int64_t v)
{
    return put_uvarint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline uint8_t *put_f64(uint8_t *p, double v)
{
    memcpy(p, &v, 8);
    return p + 8;
}

static size_t hist_encoded_max(const native_histogram *h)
{
    return 1 + 10 + 4 * 8 + 3 * 10 + (size_t)(h->n_pos_spans + h->n_neg_spans) * 15 +
           8 * (size_t)(h->n_pos_buckets + h->n_neg_buckets + h->n_custom_values) + 10;
}

static uint8_t *hist_encode(uint8_t *p, const native_histogram *h)
{
    *p++ = (uint8_t)((h->is_int ? 1 : 0) | (h->reset_hint & 3) << 1);
    p = put_varint(p, h->schema);
    p = put_f64(p, h->zero_threshold);
    p = put_f64(p, h->count);
    p = put_f64(p, h->sum);
    p = put_f64(p, h->zero_count);
    p = put_uvarint(p, h->n_pos_spans);
    for (uint32_t i = 0; i < h->n_pos_spans; i++) {
        p = put_varint(p, h->pos_spans[i].offset);
        p = put_uvarint(p, h->pos_spans[i].length);
    }
    p = put_uvarint(p, h->n_neg_spans);
    for (uint32_t i = 0; i < h->n_neg_spans; i++) {
        p = put_varint(p, h->neg_spans[i].offset);
        p = put_uvarint(p, h->neg_spans[i].length);
    }
    p = put_uvarint(p, h->n_pos_buckets);
    for (uint32_t i = 0; i < h->n_pos_buckets; i++)
        p = put_f64(p, h->pos_buckets[i]);
    p = put_uvarint(p, h->n_neg_buckets);
    for (uint32_t i = 0; i < h->n_neg_buckets; i++)
        p = put_f64(p, h->neg_buckets[i]);
    p = put_uvarint(p, h->n_custom_values);
    for (uint32_t i = 0; i < h->n_custom_values; i++)
        p = put_f64(p, h->custom_values[i]);
    return p;
}

static bool get_uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (unsigned shift = 0; p < end && shift < 64; p++, shift += 7) {
        r |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80)) {
            *v = r;
            *pp = p + 1;
            return true;
        }
    }
    return false;
}

static bool get_varint(const uint8_t **pp, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    if (!get_uvarint(pp, end, &u)) return false;
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return true;
}

static bool get_f64(const uint8_t **pp, const uint8_t *end, double *v)
{
    if (end - *pp < 8) return false;
    memcpy(v, *pp, 8);
    *pp += 8;
    return true;
}

static bool get_spans(const uint8_t **pp, const uint8_t *end, arena *a, hist_span **out,
                      uint32_t *n)
{
    uint64_t k;
    if (!get_uvarint(pp, end, &k) || k > (uint64_t)(end - *pp) / 2) return false;
    *n = (uint32_t)k;
    *out = NULL;
    if (!k) return true;
    hist_span *v = arena_alloc(a, k * sizeof *v);
    if (!v) return false;
    for (uint64_t i = 0; i < k; i++) {
        int64_t off;
        uint64_t len;
        if (!get_varint(pp, end, &off) || !get_uvarint(pp, end, &len) || off < INT32_MIN ||
            off > INT32_MAX || len > UINT32_MAX)
            return false;
        v[i] = (hist_span){.offset = (int32_t)off, .length = (uint32_t)len};
    }
    *out = v;
    return true;
}

static bool get_doubles(const uint8_t **pp, const uint8_t *end, arena *a, double **out, uint32_t *n)
{
    uint64_t k;
    if (!get_uvarint(pp, end, &k) || k > (uint64_t)(end - *pp) / 8) return false;
    *n = (uint32_t)k;
    *out = NULL;
    if (!k) return true;
    double *v = arena_alloc(a, k * sizeof *v);
    if (!v) return false;
    memcpy(v, *pp, k * 8);
    *pp += k * 8;
    *out = v;
    return true;
}

/* Decodes one histogram at *pp (advanced past it) with its arrays in a. False when the bytes are
 * malformed or the arena is out of memory. */
static bool hist_decode(const uint8_t **pp, const uint8_t *end, arena *a, native_histogram *h)
{
    memset(h, 0, sizeof *h);
    const uint8_t *p = *pp;
    if (p >= end) return false;
    uint8_t flags = *p++;
    int64_t schema;
    if (flags > 7 || !get_varint(&p, end, &schema) || schema < INT32_MIN || schema > INT32_MAX ||
        !get_f64(&p, end, &h->zero_threshold) || !get_f64(&p, end, &h->count) ||
        !get_f64(&p, end, &h->sum) || !get_f64(&p, end, &h->zero_count) ||
        !get_spans(&p, end, a, &h->pos_spans, &h->n_pos_spans) ||
        !get_spans(&p, end, a, &h->neg_spans, &h->n_neg_spans) ||
        !get_doubles(&p, end, a, &h->pos_buckets, &h->n_pos_buckets) ||
        !get_doubles(&p, end, a, &h->neg_buckets, &h->n_neg_buckets) ||
        !get_doubles(&p, end, a, &h->custom_values, &h->n_custom_values))
        return false;
    h->is_int = flags & 1;
    h->reset_hint = (uint8_t)(flags >> 1);
    h->schema = (int32_t)schema;
    *pp = p;
    return true;
}

/* ---- the WAL record -------------------------------------------------------------------------- */

int hist_record_put(buf *b, int64_t dref, int64_t dt, const native_histogram *h)
{
    if (buf_reserve(b, 20 + hist_encoded_max(h))) return STRATA_ENOMEM;
    uint8_t *p = b->data + b->len;
    p = put_varint(p, dref);
    p = put_varint(p, dt);
    p = hist_encode(p, h);
    b->len = (size_t)(p - b->data);
    return 0;
}

int wal_replay_histograms(const uint8_t *p, const uint8_t *end, const wal_replay_handlers *h,
                          char *err)
{
    if (!h->histogram)
        return strata_errf(err, STRATA_ECORRUPT, "histogram record without a handler");
    arena a;
    arena_init(&a, 4096);
    int64_t ref = 0, t = 0;
    bool first = true;
    int rc = 0;
    while (p < end && !rc) {
        int64_t dref, dt;
        native_histogram nh;
        arena_reset(&a);
        if (!get_varint(&p, end, &dref) || !get_varint(&p, end, &dt) ||
            !hist_decode(&p, end, &a, &nh)) {
            rc = strata_errf(err, STRATA_ECORRUPT, "malformed histograms record");
            break;
        }
        ref = first ? dref : ref + dref;
        t = first ? dt : t + dt;
        first = false;
        if (ref <= 0 || ref > UINT32_MAX) {
            rc = strata_errf(err, STRATA_ECORRUPT, "histogram for series ref %lld", (long long)ref);
            break;
        }
        rc = h->histogram(h->ctx, (uint32_t)ref, t, &nh, err);
    }
    arena_free(&a);
    return rc;
}

/* ---- the head's histogram store ----------------------------------------------------------------
 */

/* A full histogram chunk: immutable once cut, so readers use its bytes after the lock is gone. */
typedef struct hist_chunk {
    int64_t mint, maxt;
    uint8_t *data;
    uint32_t len;
    uint16_t count;
    uint8_t enc; /* chunk_encoding */
} hist_chunk;

struct head_hist {
    hist_chunk *chunks;
    uint32_t n_chunks, cap_chunks;
    hist_appender open; /* valid when open_count > 0 */
    uint16_t open_count;
    int64_t open_mint, open_maxt;
    buf last; /* the newest sample in the WAL form: duplicates are judged on its bytes */
};

/* A chunk holds at most this many bytes before the next sample cuts it (Prometheus aims at about
 * 1 KiB for histogram chunks; wide histograms would otherwise make huge ones). */
#define HIST_CHUNK_MAX_BYTES 4096

void head_hist_free(head_hist *hh)
{
    if (!hh) return;
    for (uint32_t i = 0; i < hh->n_chunks; i++)
        free(hh->chunks[i].data);
    free(hh->chunks);
    if (hh->open_count) hist_appender_free(&hh->open);
    buf_free(&hh->last);
    free(hh);
}

static int cut_hist_chunk(head *h, head_hist *hh)
{
    size_t len;
    const uint8_t *bytes = hist_appender_bytes(&hh->open, &len);
    if (hh->n_chunks == hh->cap_chunks) {
        uint32_t ncap = hh->cap_chunks ? hh->cap_chunks * 2 : 4;
        hist_chunk *c = realloc(hh->chunks, ncap * sizeof *c);
        if (!c) return STRATA_ENOMEM;
        hh->chunks = c;
        hh->cap_chunks = ncap;
    }
    uint8_t *copy = malloc(len);
    if (!copy) return STRATA_ENOMEM;
    memcpy(copy, bytes, len);
    hh->chunks[hh->n_chunks++] = (hist_chunk){.mint = hh->open_mint,
                                              .maxt = hh->open_maxt,
                                              .data = copy,
                                              .len = (uint32_t)len,
                                              .count = hh->open_count,
                                              .enc = (uint8_t)hh->open.enc};
    atomic_fetch_add_explicit(&h->n_chunks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->chunk_bytes, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->chunk_samples, hh->open_count, memory_order_relaxed);
    hist_appender_free(&hh->open);
    hh->open_count = 0;
    return 0;
}

int head_append_hist_locked(head *h, series *s, int64_t t, const native_histogram *nh,
                            int64_t *last_t)
{
    uint8_t stack[512];
    size_t max = hist_encoded_max(nh);
    uint8_t *enc = max <= sizeof stack ? stack : malloc(max);
    if (!enc) return STRATA_ENOMEM;
    size_t len = (size_t)(hist_encode(enc, nh) - enc);
    int rc = 0;
    if (s->has_samples) {
        if (last_t) *last_t = s->last_t;
        if (t < s->last_t) {
            rc = STRATA_EOUTOFORDER;
            goto out;
        }
        if (t == s->last_t) {
            /* Only an identical histogram is a harmless re-send. */
            head_hist *hh = s->hist;
            bool same = s->last_is_hist && hh && hh->last.len == len &&
                        memcmp(hh->last.data, enc, len) == 0;
            rc = same ? 1 : STRATA_EDUPLICATE;
            goto out;
        }
    }
    if (!s->hist && !(s->hist = calloc(1, sizeof *s->hist))) {
        rc = STRATA_ENOMEM;
        goto out;
    }
    head_hist *hh = s->hist;
    chunk_encoding want = nh->is_int ? CHUNK_ENC_HISTOGRAM : CHUNK_ENC_FLOAT_HISTOGRAM;
    uint8_t header = HIST_CHUNK_UNKNOWN;
    bool cut = false, recoded = false;
    int fit = 1;
    if (hh->open_count) {
        size_t bytes;
        hist_appender_bytes(&hh->open, &bytes);
        if (hh->open.enc != want) {
            cut = true; /* integer and float histograms live in different encodings */
        } else if ((fit = hist_appender_fits(&hh->open, nh, &header)) == 0) {
            cut = true;
        } else if (fit == 2 && hh->open_count < h->max_samples_per_chunk) {
            /* New buckets: rewrite the chunk to the wider layout, as Prometheus does. */
            rc = hist_appender_recode(&hh->open, t, nh);
            if (rc == 0) {
                recoded = true;
            } else if (rc == STRATA_EINVAL) {
                cut = true; /* the union does not fit the format: start afresh */
                rc = 0;
            } else {
                goto out;
            }
        } else if (fit == 2) {
            cut = true;
        } else if (hh->open_count >= h->max_samples_per_chunk || bytes >= HIST_CHUNK_MAX_BYTES ||
                   t / h->chunk_range_ms != hh->open_mint / h->chunk_range_ms) {
            cut = true; /* a full chunk: the next one continues without a reset */
            header = nh->reset_hint == HIST_HINT_GAUGE ? HIST_CHUNK_GAUGE : HIST_CHUNK_NOT_RESET;
        }
    }
    if (cut && (rc = cut_hist_chunk(h, hh))) goto out;
    if (!hh->open_count) {
        if ((rc = hist_appender_init(&hh->open, want))) goto out;
        hh->open_mint = t;
    }
    bool fresh = hh->open_count == 0;
    if (!recoded && (rc = hist_append(&hh->open, t, nh))) {
        if (fresh) hist_appender_free(&hh->open);
        goto out;
    }
    /* The first sample's own hint (reset, gauge) wins over why the chunk was cut. */
    if (fresh && cut && nh->reset_hint != HIST_HINT_RESET && nh->reset_hint != HIST_HINT_GAUGE)
        hist_appender_set_header(&hh->open, header);
    hh->open_count++;
    hh->open_maxt = t;
    hh->last.len = 0;
    if (buf_append(&hh->last, enc, len)) hh->last.len = 0; /* only weakens duplicate detection */
    s->has_samples = true;
    s->last_t = t;
    s->last_is_hist = true;
out:
    if (enc != stack) free(enc);
    return rc;
}

int head_append_hist(head *h, series *s, int64_t t, const native_histogram *nh, int64_t *last_t)
{
    head_stripe_lock(h, s->stripe);
    int rc = head_append_hist_locked(h, s, t, nh, last_t);
    head_stripe_unlock(h, s->stripe);
    if (rc == 0) head_note_appended(h, 1, t, t);
    return rc;
}

bool head_hist_bounds_locked(const series *s, int64_t *mint, int64_t *maxt)
{
    const head_hist *hh = s->hist;
    if (!hh || (!hh->n_chunks && !hh->open_count)) return false;
    *mint = hh->n_chunks ? hh->chunks[0].mint : hh->open_mint;
    *maxt = hh->open_count ? hh->open_maxt : hh->chunks[hh->n_chunks - 1].maxt;
    return true;
}

int head_hist_read(head *h, series *s, int64_t mint, int64_t maxt, arena *a, hist_sample **out,
                   size_t *n)
{
    *out = NULL;
    *n = 0;
    if (mint > maxt) return 0;
    /* Under the lock: references to the full chunks (immutable) and a copy of the open one. */
    head_stripe_lock(h, s->stripe);
    const head_hist *hh = s->hist;
    size_t nc = 0, total = 0;
    hist_chunk *refs = NULL;
    if (hh) {
        refs = arena_alloc(a, (hh->n_chunks + 1) * sizeof *refs);
        if (!refs) {
            head_stripe_unlock(h, s->stripe);
            return STRATA_ENOMEM;
        }
        for (uint32_t i = 0; i < hh->n_chunks; i++) {
            const hist_chunk *c = &hh->chunks[i];
            if (c->maxt < mint || c->mint > maxt) continue;
            refs[nc++] = *c;
            total += c->count;
        }
        if (hh->open_count && hh->open_maxt >= mint && hh->open_mint <= maxt) {
            size_t len;
            const uint8_t *bytes = hist_appender_bytes(&hh->open, &len);
            uint8_t *copy = arena_alloc(a, len);
            if (!copy) {
                head_stripe_unlock(h, s->stripe);
                return STRATA_ENOMEM;
            }
            memcpy(copy, bytes, len);
            refs[nc++] = (hist_chunk){.mint = hh->open_mint,
                                      .maxt = hh->open_maxt,
                                      .data = copy,
                                      .len = (uint32_t)len,
                                      .count = hh->open_count,
                                      .enc = (uint8_t)hh->open.enc};
            total += hh->open_count;
        }
    }
    head_stripe_unlock(h, s->stripe);
    if (!total) return 0;
    hist_sample *v = arena_alloc(a, total * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t c = 0; c < nc; c++) {
        hist_iter it;
        int rc = hist_iter_init(&it, refs[c].data, refs[c].len, (chunk_encoding)refs[c].enc, a);
        while (rc == 0 && (rc = hist_iter_next(&it)) == 1) {
            if (it.t < mint) {
                rc = 0;
                continue;
            }
            if (it.t > maxt || k == total) break;
            rc = hist_iter_at(&it, a, &v[k++]);
        }
        if (rc < 0) return rc;
    }
    *out = k ? v : NULL;
    *n = k;
    return 0;
}

int head_series_hist_chunks(head *h, series *s, int64_t mint, int64_t maxt, hist_chunk_ref **out,
                            size_t *n, uint8_t **open_copy)
{
    *out = NULL;
    *n = 0;
    *open_copy = NULL;
    head_stripe_lock(h, s->stripe);
    const head_hist *hh = s->hist;
    if (!hh) {
        head_stripe_unlock(h, s->stripe);
        return 0;
    }
    hist_chunk_ref *v = malloc((hh->n_chunks + 1) * sizeof *v);
    if (!v) {
        head_stripe_unlock(h, s->stripe);
        return STRATA_ENOMEM;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < hh->n_chunks; i++) {
        const hist_chunk *c = &hh->chunks[i];
        if (c->maxt < mint || c->mint > maxt) continue;
        v[k++] = (hist_chunk_ref){
            .data = c->data, .len = c->len, .enc = c->enc, .mint = c->mint, .maxt = c->maxt};
    }
    if (hh->open_count && hh->open_maxt >= mint && hh->open_mint <= maxt) {
        size_t len;
        const uint8_t *bytes = hist_appender_bytes(&hh->open, &len);
        uint8_t *copy = malloc(len);
        if (!copy) {
            head_stripe_unlock(h, s->stripe);
            free(v);
            return STRATA_ENOMEM;
        }
        memcpy(copy, bytes, len);
        v[k++] = (hist_chunk_ref){.data = copy,
                                  .len = (uint32_t)len,
                                  .enc = (uint8_t)hh->open.enc,
                                  .mint = hh->open_mint,
                                  .maxt = hh->open_maxt};
        *open_copy = copy;
    }
    head_stripe_unlock(h, s->stripe);
    *out = v;
    *n = k;
    return 0;
}
