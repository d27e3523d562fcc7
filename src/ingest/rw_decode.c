/*
 * rw_decode.c: the hand-written decoder of remote write 1.0's WriteRequest, the ingest hot path.
 *
 * protobuf-c's generic unpacker (kept as the reference, rw_proto.c) scans every message twice and
 * allocates each Label, each string copy and each Sample separately: about 350 ns and 8,700
 * instructions for a single-sample series with 8 labels even with every allocation taken from an
 * arena, most of the server's budget of 500 ns per sample. This decoder reads the message once,
 * points labels straight into the message bytes and appends samples to one contiguous array that
 * is reused from request to request: about 22 ns and 700 instructions for the same series.
 * Exemplars and metadata are not decoded, only checked against their schema (a small table below)
 * so that a malformed request is refused exactly as the reference refuses it; native histograms
 * are checked the same way and then decoded (rare enough that two walks over each cost nothing).
 *
 * What is accepted is what protobuf-c 1.4/1.5 accepts for remote.proto, quirks included, and the
 * fuzzer (fuzz/fuzz_remote_write.c) checks the two agree on arbitrary bytes: a field key is at
 * most 5 bytes and its first byte must carry a non-zero field number; a length prefix is at most
 * 5 bytes and at most INT_MAX; a varint is at most 10 bytes (bits past 64 are dropped); wire types
 * 3 and 4 (groups) and 6, 7 are errors; a known field with the wrong wire type is an error (as in
 * gogoproto, which Prometheus uses); repeated numbers may be packed or not; unknown fields are
 * skipped; for a scalar field seen twice the last one wins.
 */
#include "ingest/ingest_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static const char *const wire_type_names[8] = {
    "0 (varint)",    "1 (64-bit)", "2 (length-delimited)", "3 (group start)",
    "4 (group end)", "5 (32-bit)", "6 (invalid)",          "7 (invalid)",
};

/* ---- primitive readers: each returns the position after what it read, or NULL ------------- */

/* A varint of at most 10 bytes. */
static inline const uint8_t *get_varint(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (LIKELY(p < end && *p < 0x80)) {
        *v = *p;
        return p + 1;
    }
    const uint8_t *lim = end - p > 10 ? p + 10 : end;
    uint64_t r = 0;
    for (unsigned shift = 0; p < lim; p++, shift += 7) {
        r |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80)) {
            *v = r;
            return p + 1;
        }
    }
    return NULL;
}

static inline const uint8_t *skip_varint(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *lim = end - p > 10 ? p + 10 : end;
    for (; p < lim; p++)
        if (!(*p & 0x80)) return p + 1;
    return NULL;
}

/* A field key (p < end). protobuf-c judges field number 0 from the first byte alone. */
static inline const uint8_t *get_key(const uint8_t *p, const uint8_t *end, uint32_t *field,
                                     unsigned *wt)
{
    uint8_t b = *p;
    if (UNLIKELY((b & 0xf8) == 0)) return NULL;
    *wt = b & 7;
    uint32_t tag = (uint32_t)(b & 0x7f) >> 3;
    if (LIKELY(!(b & 0x80))) {
        *field = tag;
        return p + 1;
    }
    size_t max = end - p > 5 ? 5 : (size_t)(end - p);
    unsigned shift = 4;
    for (size_t i = 1; i < max; i++) {
        if (p[i] & 0x80) {
            tag |= (uint32_t)(p[i] & 0x7f) << shift;
            shift += 7;
        } else {
            tag |= (uint32_t)p[i] << shift;
            *field = tag;
            return p + i + 1;
        }
    }
    return NULL;
}

/* A length prefix that fits in what is left; *len is the payload length. */
static inline const uint8_t *get_len(const uint8_t *p, const uint8_t *end, size_t *len)
{
    size_t v;
    if (LIKELY(p < end && *p < 0x80)) {
        v = *p++;
    } else {
        size_t max = end - p > 5 ? 5 : (size_t)(end - p), i;
        unsigned shift = 0;
        v = 0;
        for (i = 0; i < max; i++, shift += 7) {
            v |= (size_t)(p[i] & 0x7f) << shift;
            if (!(p[i] & 0x80)) break;
        }
        if (i == max || v > INT_MAX) return NULL;
        p += i + 1;
    }
    if (UNLIKELY(v > (size_t)(end - p))) return NULL;
    *len = v;
    return p;
}

static inline double get_double(const uint8_t *p)
{
    uint64_t u;
    memcpy(&u, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    u = __builtin_bswap64(u);
#endif
    double v;
    memcpy(&v, &u, 8); /* bit for bit: the staleness NaN keeps its payload */
    return v;
}

/* Skips the payload of an unknown field. */
static const uint8_t *skip_field(const uint8_t *p, const uint8_t *end, unsigned wt)
{
    size_t len;
    switch (wt) {
    case WT_VARINT:
        return skip_varint(p, end);
    case WT_I64:
        return end - p >= 8 ? p + 8 : NULL;
    case WT_I32:
        return end - p >= 4 ? p + 4 : NULL;
    case WT_LEN:
        p = get_len(p, end, &len);
        return p ? p + len : NULL;
    default:
        return NULL;
    }
}

/* ---- errors ------------------------------------------------------------------------------- */

typedef struct dec {
    const uint8_t *base; /* start of the message, for byte offsets in messages */
    ingest_scratch *s;
    size_t n_series, n_labels, n_samples, n_histograms, n_exemplars, n_metadata;
    char *err;
} dec;

/* Every decoding error is one of these: "protobuf: cannot decode WriteRequest: timeseries[3]:
 * <what> at byte N". Cold path. */
__attribute__((cold, format(printf, 4, 5))) static int fail(dec *d, const char *where,
                                                            const uint8_t *at, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return strata_errf(d->err, STRATA_EINVAL,
                       "protobuf: cannot decode WriteRequest: %s%s%s at byte %zu",
                       where ? where : "", where ? ": " : "", what, (size_t)(at - d->base));
}

/* Why a payload of wire type wt could not be read, for messages. */
static const char *why_bad(unsigned wt)
{
    if (wt == WT_LEN) return "length prefix is malformed or runs past the end of its message";
    if (wt == WT_VARINT) return "varint is longer than 10 bytes or truncated";
    if (wt == WT_I64 || wt == WT_I32) return "fixed-size value is truncated";
    return "unsupported wire type (groups are not part of proto3)";
}

/* ---- schema check of the parts that are counted but not decoded --------------------------- */

enum field_kind { K_VARINT, K_I64, K_LEN, K_REP_MSG, K_REP_VARINT, K_REP_I64 };

typedef struct msg_spec msg_spec;
typedef struct field_spec {
    uint32_t num;
    uint8_t kind;
    const msg_spec *sub; /* for K_REP_MSG */
} field_spec;
struct msg_spec {
    const char *name;
    const field_spec *fields;
    size_t n;
};

#define SPEC(var, label, ...)                                                                      \
    static const field_spec var##_fields[] = {__VA_ARGS__};                                        \
    static const msg_spec var = {label, var##_fields, sizeof var##_fields / sizeof var##_fields[0]}

/* The tables of WIRE-FORMATS.md 1.1, as wire types. */
SPEC(spec_label, "Label", {1, K_LEN, NULL}, {2, K_LEN, NULL});
SPEC(spec_exemplar, "Exemplar", {1, K_REP_MSG, &spec_label}, {2, K_I64, NULL}, {3, K_VARINT, NULL});
SPEC(spec_span, "BucketSpan", {1, K_VARINT, NULL}, {2, K_VARINT, NULL});
SPEC(spec_histogram, "Histogram", {1, K_VARINT, NULL}, {2, K_I64, NULL}, {3, K_I64, NULL},
     {4, K_VARINT, NULL}, {5, K_I64, NULL}, {6, K_VARINT, NULL}, {7, K_I64, NULL},
     {8, K_REP_MSG, &spec_span}, {9, K_REP_VARINT, NULL}, {10, K_REP_I64, NULL},
     {11, K_REP_MSG, &spec_span}, {12, K_REP_VARINT, NULL}, {13, K_REP_I64, NULL},
     {14, K_VARINT, NULL}, {15, K_VARINT, NULL}, {16, K_REP_I64, NULL});
SPEC(spec_metadata, "MetricMetadata", {1, K_VARINT, NULL}, {2, K_LEN, NULL}, {4, K_LEN, NULL},
     {5, K_LEN, NULL});

static const unsigned kind_wire_type[] = {
    [K_VARINT] = WT_VARINT, [K_I64] = WT_I64,           [K_LEN] = WT_LEN,
    [K_REP_MSG] = WT_LEN,   [K_REP_VARINT] = WT_VARINT, [K_REP_I64] = WT_I64,
};

/* Checks that [p, end) is a well-formed message of spec m, recursively. 0 or fail(). */
static int check_msg(dec *d, const char *where, const uint8_t *p, const uint8_t *end,
                     const msg_spec *m)
{
    while (p < end) {
        uint32_t f;
        unsigned wt;
        const uint8_t *q = get_key(p, end, &f, &wt);
        if (!q) return fail(d, where, p, "%s: malformed field key", m->name);
        const field_spec *fs = NULL;
        for (size_t i = 0; i < m->n; i++)
            if (m->fields[i].num == f) fs = &m->fields[i];
        if (!fs) {
            p = skip_field(q, end, wt);
            if (!p) return fail(d, where, q, "%s: field %u: %s", m->name, f, why_bad(wt));
            continue;
        }
        size_t len;
        bool packed = wt == WT_LEN && (fs->kind == K_REP_VARINT || fs->kind == K_REP_I64);
        if (wt != kind_wire_type[fs->kind] && !packed)
            return fail(d, where, p, "%s: field %u has wire type %s, expected %s", m->name, f,
                        wire_type_names[wt], wire_type_names[kind_wire_type[fs->kind]]);
        if (fs->kind == K_REP_MSG || packed) {
            const uint8_t *body = get_len(q, end, &len);
            if (!body) return fail(d, where, q, "%s: field %u: %s", m->name, f, why_bad(wt));
            if (fs->kind == K_REP_MSG) {
                int rc = check_msg(d, where, body, body + len, fs->sub);
                if (rc) return rc;
            } else if (fs->kind == K_REP_I64) {
                if (len % 8)
                    return fail(d, where, q,
                                "%s: packed field %u is %zu bytes, not a multiple of 8", m->name, f,
                                len);
            } else {
                for (const uint8_t *v = body; v < body + len;) {
                    v = skip_varint(v, body + len);
                    if (!v)
                        return fail(d, where, body, "%s: packed field %u holds a malformed varint",
                                    m->name, f);
                }
            }
            p = body + len;
        } else {
            p = skip_field(q, end, wt);
            if (!p) return fail(d, where, q, "%s: field %u: %s", m->name, f, why_bad(wt));
        }
    }
    return 0;
}

/* ---- growing the scratch arrays ----------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t elem, size_t need, char *err)
{
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return strata_errf(err, STRATA_ENOMEM, "out of memory decoding a WriteRequest");
    *p = q;
    *cap = n;
    return 0;
}

/* ---- the hot path: Label, Sample, TimeSeries, WriteRequest -------------------------------- */

static const char empty[1] = "";

#define SERIES_WHERE(d, buf) (snprintf(buf, sizeof buf, "timeseries[%zu]", (d)->n_series), buf)

static int parse_label(dec *d, const uint8_t *p, const uint8_t *end)
{
    ingest_scratch *s = d->s;
    if (UNLIKELY(d->n_labels == s->labels_cap)) {
        int rc = grow((void **)&s->labels, &s->labels_cap, sizeof(label), d->n_labels + 1, d->err);
        if (rc) return rc;
    }
    label *l = &s->labels[d->n_labels];
    l->name = l->value = empty;
    l->name_len = l->value_len = 0;
    while (p < end) {
        uint32_t f;
        unsigned wt;
        const uint8_t *q = get_key(p, end, &f, &wt);
        char where[48];
        if (UNLIKELY(!q)) return fail(d, SERIES_WHERE(d, where), p, "Label: malformed field key");
        if (LIKELY((f == 1 || f == 2) && wt == WT_LEN)) {
            size_t len;
            const uint8_t *v = get_len(q, end, &len);
            if (UNLIKELY(!v))
                return fail(d, SERIES_WHERE(d, where), q, "Label: field %u: %s", f, why_bad(wt));
            if (f == 1) {
                l->name = (const char *)v;
                l->name_len = (uint32_t)len;
            } else {
                l->value = (const char *)v;
                l->value_len = (uint32_t)len;
            }
            p = v + len;
        } else if (f == 1 || f == 2) {
            return fail(d, SERIES_WHERE(d, where), p,
                        "Label: field %u has wire type %s, expected %s", f, wire_type_names[wt],
                        wire_type_names[WT_LEN]);
        } else {
            p = skip_field(q, end, wt);
            if (UNLIKELY(!p))
                return fail(d, SERIES_WHERE(d, where), q, "Label: field %u: %s", f, why_bad(wt));
        }
    }
    d->n_labels++;
    return 0;
}

static int parse_sample(dec *d, const uint8_t *p, const uint8_t *end)
{
    ingest_scratch *s = d->s;
    if (UNLIKELY(d->n_samples == s->samples_cap)) {
        int rc = grow((void **)&s->samples, &s->samples_cap, sizeof(strata_sample),
                      d->n_samples + 1, d->err);
        if (rc) return rc;
    }
    strata_sample *smp = &s->samples[d->n_samples];
    smp->t = 0;
    smp->v = 0.0;
    while (p < end) {
        uint32_t f;
        unsigned wt;
        const uint8_t *q = get_key(p, end, &f, &wt);
        char where[48];
        if (UNLIKELY(!q)) return fail(d, SERIES_WHERE(d, where), p, "Sample: malformed field key");
        if (f == 1 && wt == WT_I64) {
            if (UNLIKELY(end - q < 8))
                return fail(d, SERIES_WHERE(d, where), q, "Sample: value is truncated");
            smp->v = get_double(q);
            p = q + 8;
        } else if (f == 2 && wt == WT_VARINT) {
            uint64_t t;
            p = get_varint(q, end, &t);
            if (UNLIKELY(!p))
                return fail(d, SERIES_WHERE(d, where), q, "Sample: timestamp: %s", why_bad(wt));
            smp->t = (int64_t)t;
        } else if (f == 1 || f == 2) {
            return fail(d, SERIES_WHERE(d, where), p,
                        "Sample: field %u has wire type %s, expected %s", f, wire_type_names[wt],
                        wire_type_names[f == 1 ? WT_I64 : WT_VARINT]);
        } else {
            p = skip_field(q, end, wt);
            if (UNLIKELY(!p))
                return fail(d, SERIES_WHERE(d, where), q, "Sample: field %u: %s", f, why_bad(wt));
        }
    }
    d->n_samples++;
    return 0;
}

/*
 * The shapes every encoder produces for a Label and a Sample, recognised in one step: a Label of
 * exactly {0x0a, n, name, 0x12, m, value} with n, m < 128, and a Sample of exactly {0x09, value,
 * 0x10, timestamp varint}. Anything else (other field order, absent or repeated fields, unknown
 * fields, long strings) takes the general path, which gives the same result; the fuzzer compares
 * both with protobuf-c.
 */
static inline bool fast_label(dec *d, const uint8_t *m, size_t len)
{
    if (len < 4 || m[0] != 0x0a || m[1] >= 0x80) return false;
    size_t n = m[1];
    if (n + 4 > len || m[n + 2] != 0x12 || m[n + 3] >= 0x80 || n + 4 + m[n + 3] != len)
        return false;
    ingest_scratch *s = d->s;
    if (UNLIKELY(d->n_labels == s->labels_cap)) return false;
    s->labels[d->n_labels++] = (label){.name = (const char *)m + 2,
                                       .value = (const char *)m + n + 4,
                                       .name_len = (uint32_t)n,
                                       .value_len = m[n + 3]};
    return true;
}

static inline bool fast_sample(dec *d, const uint8_t *m, size_t len)
{
    if (len < 11 || len > 20 || m[0] != 0x09 || m[9] != 0x10) return false;
    ingest_scratch *s = d->s;
    uint64_t t;
    if (UNLIKELY(d->n_samples == s->samples_cap) || get_varint(m + 10, m + len, &t) != m + len)
        return false;
    s->samples[d->n_samples++] = (strata_sample){.t = (int64_t)t, .v = get_double(m + 1)};
    return true;
}

/* ---- native histograms: decoded after check_msg has proven the message well formed ---------- */

/* What a Histogram message holds, gathered in one walk: scalars (the last one wins, oneofs too,
 * as in protobuf-c) and, for each repeated field, how many values it has; with fill set, the
 * repeated values are also stored into the arrays of h. */
typedef struct hist_walk {
    hist_sample *out;
    uint32_t count_case, zero_case; /* 0 unset, 1 int, 2 float */
    uint64_t count_int, zero_int;
    double count_float, zero_float;
    uint32_t n_span[2], n_delta[2], n_count[2], n_custom; /* [0] negative, [1] positive */
    int64_t *delta[2];
    double *cnt[2];
} hist_walk;

static inline uint32_t unzigzag32(uint32_t v)
{
    return (v >> 1) ^ (uint32_t)-(int32_t)(v & 1);
}

static void walk_span(const uint8_t *p, const uint8_t *end, hist_span *sp)
{
    sp->offset = 0;
    sp->length = 0;
    while (p < end) {
        uint32_t f = 0;
        unsigned wt = 0;
        p = get_key(p, end, &f, &wt);
        if (f == 1 || f == 2) {
            uint64_t v = 0;
            p = get_varint(p, end, &v);
            if (f == 1) sp->offset = (int32_t)unzigzag32((uint32_t)v);
            else sp->length = (uint32_t)v;
        } else {
            p = skip_field(p, end, wt);
        }
    }
}

/* One walk over a checked Histogram message. */
static void walk_histogram(hist_walk *w, const uint8_t *p, const uint8_t *end, bool fill)
{
    native_histogram *h = &w->out->h;
    for (int s = 0; s < 2; s++) w->n_span[s] = w->n_delta[s] = w->n_count[s] = 0;
    w->n_custom = 0;
    while (p < end) {
        uint32_t f = 0;
        unsigned wt = 0;
        p = get_key(p, end, &f, &wt);
        uint64_t v = 0;
        const uint8_t *body = NULL;
        size_t len = 0;
        if (wt == WT_VARINT) p = get_varint(p, end, &v);
        else if (wt == WT_I64) {
            body = p;
            p += 8;
        } else if (wt == WT_LEN) {
            body = get_len(p, end, &len);
            p = body + len;
        } else {
            p = skip_field(p, end, wt);
            continue;
        }
        int side = (f >= 11 && f <= 13) ? 1 : 0;
        switch (f) {
        case 1:
            w->count_case = 1, w->count_int = v;
            break;
        case 2:
            w->count_case = 2, w->count_float = get_double(body);
            break;
        case 3:
            h->sum = get_double(body);
            break;
        case 4:
            h->schema = (int32_t)unzigzag32((uint32_t)v);
            break;
        case 5:
            h->zero_threshold = get_double(body);
            break;
        case 6:
            w->zero_case = 1, w->zero_int = v;
            break;
        case 7:
            w->zero_case = 2, w->zero_float = get_double(body);
            break;
        case 8:
        case 11:
            if (fill) walk_span(body, body + len, (side ? h->pos_spans : h->neg_spans) + w->n_span[side]);
            w->n_span[side]++;
            break;
        case 9:
        case 12:
            if (wt == WT_VARINT) {
                if (fill) w->delta[side][w->n_delta[side]] = (int64_t)((v >> 1) ^ -(v & 1));
                w->n_delta[side]++;
            } else {
                for (const uint8_t *q = body; q < body + len;) {
                    q = get_varint(q, body + len, &v);
                    if (fill) w->delta[side][w->n_delta[side]] = (int64_t)((v >> 1) ^ -(v & 1));
                    w->n_delta[side]++;
                }
            }
            break;
        case 10:
        case 13:
        case 16: {
            size_t k = wt == WT_I64 ? 1 : len / 8;
            const uint8_t *q = body;
            for (size_t i = 0; i < k; i++, q += 8) {
                if (f == 16) {
                    if (fill) h->custom_values[w->n_custom] = get_double(q);
                    w->n_custom++;
                } else {
                    if (fill) w->cnt[side][w->n_count[side]] = get_double(q);
                    w->n_count[side]++;
                }
            }
            break;
        }
        case 14: {
            int32_t hint = (int32_t)(uint32_t)v;
            h->reset_hint = hint >= 0 && hint <= 3 ? (uint8_t)hint : 0;
            break;
        }
        case 15:
            w->out->t = (int64_t)v;
            break;
        default:
            break;
        }
    }
}

static int parse_histogram(dec *d, const uint8_t *p, const uint8_t *end)
{
    char where[48];
    int rc = check_msg(d, SERIES_WHERE(d, where), p, end, &spec_histogram);
    if (rc) return rc;
    ingest_scratch *s = d->s;
    if (UNLIKELY(d->n_histograms == s->hists_cap)) {
        rc = grow((void **)&s->hists, &s->hists_cap, sizeof(hist_sample), d->n_histograms + 1,
                  d->err);
        if (rc) return rc;
    }
    hist_sample *out = &s->hists[d->n_histograms];
    memset(out, 0, sizeof *out);
    hist_walk w = {.out = out};
    walk_histogram(&w, p, end, false);
    arena *a = &s->hist_mem;
    native_histogram *h = &out->h;
    h->pos_spans = arena_alloc(a, (w.n_span[1] + 1) * sizeof(hist_span));
    h->neg_spans = arena_alloc(a, (w.n_span[0] + 1) * sizeof(hist_span));
    h->custom_values = arena_alloc(a, (w.n_custom + 1) * sizeof(double));
    for (int side = 0; side < 2; side++) {
        w.delta[side] = arena_alloc(a, (w.n_delta[side] + 1) * sizeof(int64_t));
        w.cnt[side] = arena_alloc(a, (w.n_count[side] + 1) * sizeof(double));
        if (!w.delta[side] || !w.cnt[side]) h->pos_spans = NULL;
    }
    if (!h->pos_spans || !h->neg_spans || !h->custom_values)
        return strata_errf(d->err, STRATA_ENOMEM, "out of memory decoding a WriteRequest");
    walk_histogram(&w, p, end, true);
    bool is_float = w.count_case == 2;
    h->is_int = !is_float;
    if (is_float) {
        h->count = w.count_float;
        h->zero_count = w.zero_case == 2 ? w.zero_float : 0;
    } else {
        h->count = w.count_case == 1 ? (double)w.count_int : 0;
        h->zero_count = w.zero_case == 1 ? (double)w.zero_int : 0;
    }
    /* Integer histograms send each bucket as a delta to the previous one. */
    for (int side = 0; side < 2; side++) {
        uint32_t n = is_float ? w.n_count[side] : w.n_delta[side];
        double *b = w.cnt[side];
        if (!is_float) {
            b = arena_alloc(a, (n + 1) * sizeof *b);
            if (!b) return strata_errf(d->err, STRATA_ENOMEM, "out of memory decoding a WriteRequest");
            uint64_t acc = 0;
            for (uint32_t i = 0; i < n; i++) {
                acc += (uint64_t)w.delta[side][i];
                b[i] = (double)(int64_t)acc;
            }
        }
        if (side) {
            h->pos_buckets = b;
            h->n_pos_buckets = n;
        } else {
            h->neg_buckets = b;
            h->n_neg_buckets = n;
        }
    }
    h->n_pos_spans = w.n_span[1];
    h->n_neg_spans = w.n_span[0];
    h->n_custom_values = w.n_custom;
    d->n_histograms++;
    return 0;
}

static int parse_series(dec *d, const uint8_t *p, const uint8_t *end)
{
    ingest_scratch *s = d->s;
    size_t labels0 = d->n_labels, samples0 = d->n_samples, hists0 = d->n_histograms;
    char where[48];
    while (p < end) {
        /* Labels and samples with a one-byte length, in their usual shape. */
        if (LIKELY((*p == 0x0a || *p == 0x12) && end - p >= 2 && p[1] < 0x80 &&
                   (size_t)(end - p) - 2 >= p[1])) {
            const uint8_t *m = p + 2;
            size_t len = p[1];
            if (*p == 0x0a ? fast_label(d, m, len) : fast_sample(d, m, len)) {
                p = m + len;
                continue;
            }
        }
        uint32_t f;
        unsigned wt;
        const uint8_t *q = get_key(p, end, &f, &wt);
        if (UNLIKELY(!q)) return fail(d, SERIES_WHERE(d, where), p, "malformed field key");
        if (LIKELY(f >= 1 && f <= 4)) {
            static const char *const names[] = {"", "labels", "samples", "exemplars", "histograms"};
            if (UNLIKELY(wt != WT_LEN))
                return fail(d, SERIES_WHERE(d, where), p,
                            "field %u (%s) has wire type %s, expected %s", f, names[f],
                            wire_type_names[wt], wire_type_names[WT_LEN]);
            size_t len;
            const uint8_t *m = get_len(q, end, &len);
            if (UNLIKELY(!m))
                return fail(d, SERIES_WHERE(d, where), q, "field %u (%s): %s", f, names[f],
                            why_bad(wt));
            int rc;
            switch (f) {
            case 1:
                rc = parse_label(d, m, m + len);
                break;
            case 2:
                rc = parse_sample(d, m, m + len);
                break;
            case 3:
                rc = check_msg(d, SERIES_WHERE(d, where), m, m + len, &spec_exemplar);
                d->n_exemplars++;
                break;
            default:
                rc = parse_histogram(d, m, m + len);
                break;
            }
            if (UNLIKELY(rc)) return rc;
            p = m + len;
        } else {
            p = skip_field(q, end, wt);
            if (UNLIKELY(!p))
                return fail(d, SERIES_WHERE(d, where), q, "field %u: %s", f, why_bad(wt));
        }
    }
    if (UNLIKELY(d->n_series == s->series_cap)) {
        int rc = grow((void **)&s->series, &s->series_cap, sizeof(write_series), d->n_series + 1,
                      d->err);
        if (rc) return rc;
    }
    /* The pointers are filled in at the end: the label and sample arrays may still move. */
    s->series[d->n_series++] = (write_series){
        .labels = NULL,
        .n_labels = d->n_labels - labels0,
        .samples = NULL,
        .n_samples = d->n_samples - samples0,
        .histograms = NULL,
        .n_histograms = d->n_histograms - hists0,
    };
    return 0;
}

int ingest_rw_decode_pb(const uint8_t *pb, size_t len, ingest_scratch *s, ingest_rw_request *out,
                        char *err)
{
    memset(out, 0, sizeof *out);
    if (!s->hist_mem.block_size) arena_init(&s->hist_mem, 16 * 1024);
    arena_reset(&s->hist_mem);
    dec d = {.base = pb, .s = s, .err = err};
    const uint8_t *p = pb, *end = pb + len;
    while (p < end) {
        uint32_t f;
        unsigned wt;
        const uint8_t *q = get_key(p, end, &f, &wt);
        if (UNLIKELY(!q)) return fail(&d, NULL, p, "malformed field key");
        if (LIKELY(f == 1 || f == 3)) {
            if (UNLIKELY(wt != WT_LEN))
                return fail(&d, NULL, p, "field %u (%s) has wire type %s, expected %s", f,
                            f == 1 ? "timeseries" : "metadata", wire_type_names[wt],
                            wire_type_names[WT_LEN]);
            size_t mlen;
            const uint8_t *m = get_len(q, end, &mlen);
            if (UNLIKELY(!m))
                return fail(&d, NULL, q, "field %u (%s): %s", f, f == 1 ? "timeseries" : "metadata",
                            why_bad(wt));
            int rc;
            if (f == 1) {
                rc = parse_series(&d, m, m + mlen);
            } else {
                char where[48];
                snprintf(where, sizeof where, "metadata[%zu]", d.n_metadata);
                rc = check_msg(&d, where, m, m + mlen, &spec_metadata);
                d.n_metadata++;
            }
            if (UNLIKELY(rc)) return rc;
            p = m + mlen;
        } else {
            p = skip_field(q, end, wt);
            if (UNLIKELY(!p)) return fail(&d, NULL, q, "field %u: %s", f, why_bad(wt));
        }
    }
    size_t li = 0, si = 0, hi = 0;
    for (size_t i = 0; i < d.n_series; i++) {
        write_series *ws = &s->series[i];
        ws->labels = ws->n_labels ? s->labels + li : NULL;
        ws->samples = ws->n_samples ? s->samples + si : NULL;
        ws->histograms = ws->n_histograms ? s->hists + hi : NULL;
        li += ws->n_labels;
        si += ws->n_samples;
        hi += ws->n_histograms;
    }
    out->series = s->series;
    out->n_series = d.n_series;
    out->n_labels = d.n_labels;
    out->n_samples = d.n_samples;
    out->n_histograms = d.n_histograms;
    out->n_exemplars = d.n_exemplars;
    out->n_metadata = d.n_metadata;
    out->decoded_bytes = len;
    return 0;
}
