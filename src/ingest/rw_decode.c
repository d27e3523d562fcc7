/*
 * rw_decode.c: the hand-written decoder of remote write 1.0's WriteRequest, the ingest hot path.
 *
 * protobuf-c's generic unpacker (kept as the reference, rw_proto.c) scans every message twice and
 * allocates each Label, each string copy and each Sample separately: about 350 ns and 8,700
 * instructions for a single-sample series with 8 labels even with every allocation taken from an
 * arena, most of the server's budget of 500 ns per sample. This decoder reads the message once,
 * points labels straight into the message bytes and appends samples to one contiguous array that
 * is reused from request to request: about 22 ns and 700 instructions for the same series.
 * Native histograms and metadata are not decoded, only checked against their schema (a small
 * table below) so that a malformed request is refused exactly as the reference refuses it;
 * exemplars are checked the same way, then read (they are rare, so off the fast path).
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
    size_t n_ex_labels;
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

/* One Label inside an Exemplar already checked by check_msg: the last name and value win. */
static void read_exemplar_label(const uint8_t *p, const uint8_t *end, label *l)
{
    *l = (label){.name = empty, .value = empty};
    while (p < end) {
        uint32_t f = 0;
        unsigned wt = 0;
        p = get_key(p, end, &f, &wt);
        if ((f == 1 || f == 2) && wt == WT_LEN) {
            size_t len = 0;
            const uint8_t *v = get_len(p, end, &len);
            if (f == 1) {
                l->name = (const char *)v;
                l->name_len = (uint32_t)len;
            } else {
                l->value = (const char *)v;
                l->value_len = (uint32_t)len;
            }
            p = v + len;
        } else {
            p = skip_field(p, end, wt);
        }
    }
}

/* Exemplar {labels = 1, value = 2, timestamp = 3}: checked against its schema (so a malformed
 * one is refused exactly as the reference refuses it), then read into the scratch. */
static int parse_exemplar(dec *d, const char *where, const uint8_t *p, const uint8_t *end)
{
    int rc = check_msg(d, where, p, end, &spec_exemplar);
    if (rc) return rc;
    ingest_scratch *s = d->s;
    if (d->n_exemplars == s->exemplars_cap &&
        (rc = grow((void **)&s->exemplars, &s->exemplars_cap, sizeof(ingest_exemplar),
                   d->n_exemplars + 1, d->err)))
        return rc;
    ingest_exemplar *e = &s->exemplars[d->n_exemplars];
    *e = (ingest_exemplar){.series = d->n_series};
    while (p < end) {
        uint32_t f = 0;
        unsigned wt = 0;
        p = get_key(p, end, &f, &wt);
        if (f == 1 && wt == WT_LEN) {
            size_t len = 0;
            const uint8_t *m = get_len(p, end, &len);
            if (d->n_ex_labels == s->ex_labels_cap &&
                (rc = grow((void **)&s->ex_labels, &s->ex_labels_cap, sizeof(label),
                           d->n_ex_labels + 1, d->err)))
                return rc;
            read_exemplar_label(m, m + len, &s->ex_labels[d->n_ex_labels++]);
            e->n_labels++;
            p = m + len;
        } else if (f == 2 && wt == WT_I64) {
            e->v = get_double(p);
            p += 8;
        } else if (f == 3 && wt == WT_VARINT) {
            uint64_t t = 0;
            p = get_varint(p, end, &t);
            e->t = (int64_t)t;
        } else {
            p = skip_field(p, end, wt);
        }
    }
    d->n_exemplars++;
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

static int parse_series(dec *d, const uint8_t *p, const uint8_t *end)
{
    ingest_scratch *s = d->s;
    size_t labels0 = d->n_labels, samples0 = d->n_samples;
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
                rc = parse_exemplar(d, SERIES_WHERE(d, where), m, m + len);
                break;
            default:
                rc = check_msg(d, SERIES_WHERE(d, where), m, m + len, &spec_histogram);
                d->n_histograms++;
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
    };
    return 0;
}

int ingest_rw_decode_pb(const uint8_t *pb, size_t len, ingest_scratch *s, ingest_rw_request *out,
                        char *err)
{
    memset(out, 0, sizeof *out);
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
    size_t li = 0, si = 0;
    for (size_t i = 0; i < d.n_series; i++) {
        write_series *ws = &s->series[i];
        ws->labels = ws->n_labels ? s->labels + li : NULL;
        ws->samples = ws->n_samples ? s->samples + si : NULL;
        li += ws->n_labels;
        si += ws->n_samples;
    }
    size_t xi = 0;
    for (size_t i = 0; i < d.n_exemplars; i++) {
        s->exemplars[i].labels = s->exemplars[i].n_labels ? s->ex_labels + xi : NULL;
        xi += s->exemplars[i].n_labels;
    }
    out->exemplars = d.n_exemplars ? s->exemplars : NULL;
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
