/*
 * otlp.c: OTLP/HTTP metrics in: headers, gzip, the binary decoder, the translation of OTLP's data
 * model into Prometheus series, db_write, and the ExportMetricsServiceResponse out.
 *
 * The translation follows Prometheus' own OTLP receiver (storage/remote/otlptranslator) so that a
 * dashboard built against Prometheus reads the same series here: the same metric and label name
 * translation (unit and type suffixes, legacy character set), job/instance from the resource,
 * target_info for the other resource attributes, classic histograms and summaries as their
 * _bucket/_sum/_count series, staleness markers for NO_RECORDED_VALUE. What cannot be stored
 * (delta temporality, exponential histograms, points without a value or timestamp, ...) is not an
 * error for the whole request: OTLP has partial success for that, so every other point is stored
 * and the sender is told how many were dropped and why, and does not retry.
 *
 * Decoding uses protobuf-c's generated unpacker, behind two guards it lacks: a pre-scan that
 * walks the wire format against the same descriptors (bounding nesting, which protobuf-c follows
 * by recursion, and refusing invalid UTF-8 and NUL bytes in strings with a message that says
 * where), and an allocator that draws from an arena with a budget proportional to the body, so
 * millions of empty sub-messages fail cleanly instead of exhausting memory. The translation keeps
 * everything in one arena plus one sample array and groups points into series with a hash table,
 * so a request costs a few allocations however many points it has.
 */
#include "ingest/ingest.h"

#include "otlp_metrics_service.pb-c.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint SummaryDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint
    ExponentialHistogramDataPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets
    ExponentialHistogramDataPoint__Buckets;

#define STALE_NAN_BITS 0x7ff0000000000002ULL
#define FLAG_NO_RECORDED_VALUE 1u
#define TEMPORALITY_DELTA 1
#define TEMPORALITY_CUMULATIVE 2
/* target_info gets a sample every half lookback delta (5 min) between a resource's first and
 * last point, as Prometheus writes it, so it is found by every query over that span. A hostile
 * span (1970 to 2554) would be billions of samples: past this many, the rest is skipped. */
#define TARGET_INFO_STEP_NS ((uint64_t)150 * 1000000000)
#define TARGET_INFO_MAX_SAMPLES 1024

/* ---- memory budgets ----------------------------------------------------------------------- */

void otlp_budget_init(otlp_budget *b, arena *a, size_t source_bytes)
{
    const size_t cap = (size_t)2 << 30;
    b->a = a;
    b->limit =
        source_bytes > (cap - ((size_t)1 << 20)) / 32 ? cap : ((size_t)1 << 20) + 32 * source_bytes;
    b->exceeded = false;
}

void *otlp_budget_alloc(otlp_budget *b, size_t n)
{
    if (n > b->limit || b->a->total + n > b->limit) {
        b->exceeded = true;
        return NULL;
    }
    return arena_alloc(b->a, n ? n : 1);
}

int otlp_budget_error(const otlp_budget *b, char *err)
{
    if (b->exceeded)
        return strata_errf(err, STRATA_ELIMIT,
                           "the request needs more than %zu MiB to decode (too many or too large "
                           "repeated fields for its size); send smaller batches",
                           b->limit >> 20);
    return strata_errf(err, STRATA_ENOMEM, "out of memory decoding the request");
}

/* ---- headers ------------------------------------------------------------------------------ */

static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

static bool token_is(const char *s, const char *e, const char *want)
{
    size_t n = strlen(want);
    return (size_t)(e - s) == n && strncasecmp(s, want, n) == 0;
}

/* The media type of a Content-Type value (no parameters), or 0 when it is neither OTLP type. */
static otlp_format format_of(const char *content_type)
{
    if (!content_type) return 0;
    const char *s = content_type, *e = strchr(s, ';');
    if (!e) e = s + strlen(s);
    trim(&s, &e);
    if (token_is(s, e, "application/x-protobuf")) return OTLP_FORMAT_PROTOBUF;
    if (token_is(s, e, "application/json")) return OTLP_FORMAT_JSON;
    return 0;
}

int otlp_check_headers(const char *content_type, const char *content_encoding, otlp_format *fmt,
                       bool *gzip, char *err)
{
    *gzip = false;
    *fmt = format_of(content_type);
    if (!*fmt) {
        if (!content_type || !*content_type)
            return strata_errf(err, STRATA_EUNSUPPORTED,
                               "missing Content-Type: OTLP/HTTP metrics must be sent as "
                               "application/x-protobuf or application/json");
        return strata_errf(err, STRATA_EUNSUPPORTED,
                           "unsupported Content-Type \"%.100s\": OTLP/HTTP metrics must be sent "
                           "as application/x-protobuf or application/json",
                           content_type);
    }
    if (content_encoding) {
        const char *s = content_encoding, *e = s + strlen(s);
        trim(&s, &e);
        if (token_is(s, e, "gzip"))
            *gzip = true;
        else if (s != e && !token_is(s, e, "identity"))
            return strata_errf(err, STRATA_EUNSUPPORTED,
                               "unsupported Content-Encoding \"%.64s\": send gzip or no "
                               "Content-Encoding",
                               content_encoding);
    }
    return 0;
}

/* ---- gzip --------------------------------------------------------------------------------- */

int otlp_gunzip(const uint8_t *in, size_t len, size_t limit, buf *out, char *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) /* 16: gzip framing only */
        return strata_errf(err, STRATA_ENOMEM, "gzip: cannot initialise zlib");
    const uint8_t *p = in, *end = in + len;
    size_t start = out->len;
    int rc = 0;
    for (;;) {
        size_t produced = out->len - start;
        if (produced > limit) {
            rc = strata_errf(err, STRATA_ELIMIT,
                             "gzip: the body decompresses to more than the limit of %zu bytes",
                             limit);
            break;
        }
        /* Grow by doubling, but never past one byte more than the limit: producing that byte is
         * how exceeding the limit is told apart from reaching it. */
        size_t want = produced < 65536 ? 65536 : produced;
        if (want > limit + 1 - produced) want = limit + 1 - produced;
        if (want > UINT32_MAX / 2) want = UINT32_MAX / 2;
        if (buf_reserve(out, want + 1)) {
            rc = strata_errf(err, STRATA_ENOMEM, "gzip: out of memory");
            break;
        }
        size_t in_chunk = (size_t)(end - p) > UINT32_MAX / 2 ? UINT32_MAX / 2 : (size_t)(end - p);
        zs.next_in = (Bytef *)(uintptr_t)p;
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)want;
        int z = inflate(&zs, Z_NO_FLUSH);
        p += in_chunk - zs.avail_in;
        out->len += want - zs.avail_out;
        if (z == Z_STREAM_END) {
            /* Concatenated members are one stream (RFC 1952, and Go's reader agrees). */
            if (p == end) break;
            if (end - p >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            rc = strata_errf(err, STRATA_EINVAL,
                             "gzip: %zu bytes of garbage after the compressed data",
                             (size_t)(end - p));
            break;
        }
        if (z == Z_OK) continue;
        if (z == Z_BUF_ERROR && p == end) {
            rc = strata_errf(err, STRATA_EINVAL,
                             "gzip: the body is truncated (no end of stream after %zu bytes)", len);
            break;
        }
        if (z == Z_BUF_ERROR) continue; /* output space ran out: the loop grows it */
        if (z == Z_MEM_ERROR) {
            rc = strata_errf(err, STRATA_ENOMEM, "gzip: out of memory");
            break;
        }
        rc = strata_errf(err, STRATA_EINVAL, "gzip: corrupt input: %s",
                         zs.msg ? zs.msg : "bad data");
        break;
    }
    if (!rc && out->len - start > limit)
        rc = strata_errf(err, STRATA_ELIMIT,
                         "gzip: the body decompresses to more than the limit of %zu bytes", limit);
    inflateEnd(&zs);
    if (out->data) out->data[out->len] = 0;
    return rc;
}

/* ---- protobuf ----------------------------------------------------------------------------- */

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        if (shift == 63 && b > 1) return false;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

static int expected_wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

/* Walks the message against the descriptors before protobuf-c does: protobuf-c recurses into
 * sub-messages without a depth limit and gives no reason when it fails, so this bounds the
 * nesting, checks every field's wire type and extent, and refuses strings protobuf-c would
 * truncate (NUL) or that proto3 forbids (invalid UTF-8), naming the offending field. */
static int pb_prescan(const uint8_t *pb, size_t len, const ProtobufCMessageDescriptor *root,
                      char *err)
{
    struct frame {
        const ProtobufCMessageDescriptor *d;
        const uint8_t *end;
    } stack[OTLP_MAX_DEPTH];
    int depth = 0;
    stack[0] = (struct frame){root, pb + len};
    const uint8_t *p = pb;
    for (;;) {
        struct frame *f = &stack[depth];
        if (p == f->end) {
            if (depth == 0) return 0;
            depth--;
            continue;
        }
        size_t at = (size_t)(p - pb);
        uint64_t key;
        if (!read_varint(&p, f->end, &key))
            return strata_errf(err, STRATA_EINVAL,
                               "protobuf: truncated or malformed field key at byte %zu", at);
        uint64_t num = key >> 3;
        int wt = (int)(key & 7);
        if (num == 0 || num > 536870911)
            return strata_errf(err, STRATA_EINVAL, "protobuf: invalid field number at byte %zu",
                               at);
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(f->d, (unsigned)num);
        if (fd) {
            int want = expected_wire_type(fd->type);
            bool packed = fd->label == PROTOBUF_C_LABEL_REPEATED && want != 2 && wt == 2;
            if (wt != want && !packed)
                return strata_errf(
                    err, STRATA_EINVAL,
                    "protobuf: field %s.%s (%u) at byte %zu has wire type %d, expected %d",
                    f->d->short_name, fd->name, fd->id, at, wt, want);
        }
        uint64_t v;
        switch (wt) {
        case 0:
            if (!read_varint(&p, f->end, &v))
                return strata_errf(err, STRATA_EINVAL, "protobuf: truncated varint at byte %zu",
                                   at);
            break;
        case 1:
            if (f->end - p < 8)
                return strata_errf(err, STRATA_EINVAL,
                                   "protobuf: truncated 64-bit field at byte %zu", at);
            p += 8;
            break;
        case 5:
            if (f->end - p < 4)
                return strata_errf(err, STRATA_EINVAL,
                                   "protobuf: truncated 32-bit field at byte %zu", at);
            p += 4;
            break;
        case 2: {
            if (!read_varint(&p, f->end, &v) || v > (uint64_t)(f->end - p))
                return strata_errf(
                    err, STRATA_EINVAL,
                    "protobuf: length-delimited field at byte %zu runs past the end of "
                    "its message (truncated body?)",
                    at);
            const uint8_t *body = p;
            p += v;
            if (!fd) break; /* unknown: skipped, as proto3 requires */
            if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (depth + 1 >= OTLP_MAX_DEPTH)
                    return strata_errf(
                        err, STRATA_EINVAL,
                        "protobuf: messages nested deeper than %d levels at byte %zu",
                        OTLP_MAX_DEPTH, at);
                stack[++depth] = (struct frame){fd->descriptor, p};
                p = body; /* walk into it; the frame ends where the field does */
            } else if (fd->type == PROTOBUF_C_TYPE_STRING) {
                if (memchr(body, 0, v))
                    return strata_errf(
                        err, STRATA_EINVAL,
                        "protobuf: string field %s.%s at byte %zu contains a NUL byte",
                        f->d->short_name, fd->name, at);
                if (!utf8_valid((const char *)body, v))
                    return strata_errf(
                        err, STRATA_EINVAL,
                        "protobuf: string field %s.%s at byte %zu is not valid UTF-8",
                        f->d->short_name, fd->name, at);
            } else if (fd->type != PROTOBUF_C_TYPE_BYTES) { /* packed scalars */
                int ew = expected_wire_type(fd->type);
                if ((ew == 1 && v % 8) || (ew == 5 && v % 4))
                    return strata_errf(
                        err, STRATA_EINVAL,
                        "protobuf: packed field %s.%s at byte %zu has a length that is "
                        "not a multiple of its element size",
                        f->d->short_name, fd->name, at);
                if (ew == 0) {
                    const uint8_t *q = body;
                    while (q < p)
                        if (!read_varint(&q, p, &v))
                            return strata_errf(err, STRATA_EINVAL,
                                               "protobuf: packed field %s.%s at byte %zu holds a "
                                               "truncated varint",
                                               f->d->short_name, fd->name, at);
                }
            }
            break;
        }
        default:
            return strata_errf(
                err, STRATA_EINVAL,
                "protobuf: unsupported wire type %d (groups are not proto3) at byte %zu", wt, at);
        }
    }
}

static void *pbc_alloc(void *data, size_t size)
{
    return otlp_budget_alloc(data, size);
}

static void pbc_free(void *data, void *ptr)
{
    /* Everything goes with the arena. */
    (void)data;
    (void)ptr;
}

int otlp_decode_pb(const uint8_t *pb, size_t len, arena *a, otlp_export_request **out, char *err)
{
    *out = NULL;
    if (len > OTLP_MAX_DECODED)
        return strata_errf(err, STRATA_ELIMIT,
                           "protobuf: the body (%zu bytes) is larger than the limit of %zu bytes",
                           len, (size_t)OTLP_MAX_DECODED);
    const ProtobufCMessageDescriptor *d =
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    int rc = pb_prescan(pb, len, d, err);
    if (rc) return rc;
    otlp_budget budget;
    otlp_budget_init(&budget, a, len);
    ProtobufCAllocator al = {.alloc = pbc_alloc, .free = pbc_free, .allocator_data = &budget};
    /* protobuf-c reads nothing for len 0 but still wants a pointer. */
    static const uint8_t empty[1];
    otlp_export_request *req =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
            &al, len, len ? pb : empty);
    if (!req) {
        if (budget.exceeded) return otlp_budget_error(&budget, err);
        return strata_errf(err, STRATA_EINVAL,
                           "protobuf: cannot decode ExportMetricsServiceRequest");
    }
    *out = req;
    return 0;
}

/* ---- translation: names ------------------------------------------------------------------- */

/* Why points were rejected, for partial_success.error_message. */
enum {
    R_DELTA,
    R_UNSPECIFIED,
    R_BAD_SCALE,
    R_BAD_NATIVE,
    R_NO_VALUE,
    R_NO_TIME,
    R_BAD_NAME,
    R_BAD_ATTRIBUTE,
    R_BAD_BOUNDS,
    R_COUNT
};

static const char *const reason_text[R_COUNT] = {
    [R_DELTA] = "delta temporality is not supported (send cumulative)",
    [R_UNSPECIFIED] = "aggregation temporality is unspecified",
    [R_BAD_SCALE] = "exponential histogram scale below -4 cannot be a native histogram",
    [R_BAD_NATIVE] = "exponential histogram invalid as a native histogram",
    [R_NO_VALUE] = "no value",
    [R_NO_TIME] = "no timestamp (time_unix_nano is 0)",
    [R_BAD_NAME] = "metric name empty or invalid after translation",
    [R_BAD_ATTRIBUTE] = "attribute name invalid after translation",
    [R_BAD_BOUNDS] = "histogram explicit_bounds not strictly increasing",
};

/* A label being assembled; order keeps Go's stable-sort semantics where names collide. */
typedef struct lb {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
    uint32_t order;
} lb;

/* A series of the batch being built. */
typedef struct tseries {
    label *labels; /* sorted by name, in the batch arena */
    uint32_t n_labels;
    bool info; /* target_info: written separately, not counted as a client's points */
    uint64_t hash;
    size_t count;
    size_t hcount; /* of which native histograms */
} tseries;

/* A sample with the series it belongs to and its arrival order (the sort's tie-break). */
typedef struct tsample {
    uint32_t series;
    uint32_t seq;
    int64_t t;
    double v;
    const native_histogram *h; /* a native-histogram sample (in the batch arena), else NULL */
} tsample;

typedef struct tctx {
    otlp_batch *b;
    otlp_options o;
    size_t limit; /* bytes the translation may hold */
    char *err;
    tseries *series;
    size_t n_series, cap_series;
    uint32_t *slots; /* open addressing: series index + 1, 0 = empty */
    size_t n_slots;
    tsample *samples;
    size_t n_samples, cap_samples;
    lb *attrs; /* the labels of the point being translated */
    size_t n_attrs, cap_attrs;
    label *tmp; /* a candidate label set */
    size_t cap_tmp;
    buf s; /* string scratch */
    struct {
        uint64_t count;
        char metric[80];
    } reasons[R_COUNT];
    /* The current resource's job and instance, if any. */
    const char *job, *instance;
    uint32_t job_len, instance_len;
} tctx;

static int t_nomem(tctx *c)
{
    return strata_errf(c->err, STRATA_ENOMEM, "out of memory translating the request");
}

static size_t t_bytes(const tctx *c)
{
    return c->b->mem.total + c->cap_series * sizeof(tseries) + c->n_slots * sizeof(uint32_t) +
           c->cap_samples * sizeof(tsample) + c->s.cap + c->cap_attrs * sizeof(lb) +
           c->cap_tmp * sizeof(label);
}

static int t_check_budget(tctx *c)
{
    if (t_bytes(c) <= c->limit) return 0;
    return strata_errf(c->err, STRATA_ELIMIT,
                       "the request expands to more than %zu MiB of series and samples; send "
                       "smaller batches",
                       c->limit >> 20);
}

static char *t_dup(tctx *c, const char *s, size_t n)
{
    return arena_strndup(&c->b->mem, s, n);
}

static bool is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* The length of the UTF-8 sequence starting at s[i] (1 for a stray byte, as Go's range). */
static size_t rune_len(const char *s, size_t n, size_t i)
{
    unsigned char ch = (unsigned char)s[i];
    size_t l = ch < 0x80 ? 1 : ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 1;
    return i + l > n ? 1 : l;
}

/* Translates an attribute key into a label name as Prometheus' LabelNamer does: every run of
 * characters outside [a-zA-Z0-9] becomes one '_' (reserved __x__ names keep their underscores),
 * a leading digit gets "key_". Fails for names that end up empty or all underscores. The result
 * is in the batch arena. */
static int label_name(tctx *c, const char *key, size_t n, const char **out, uint32_t *out_len)
{
    if (n == 0 || n > UINT32_MAX - 16) return -1;
    bool all_us = true;
    if (c->o.allow_utf8) {
        for (size_t i = 0; i < n; i++)
            if (key[i] != '_') all_us = false;
        if (all_us) return -1;
        *out = t_dup(c, key, n);
        *out_len = (uint32_t)n;
        return *out ? 0 : -2;
    }
    bool reserved =
        n >= 4 && key[0] == '_' && key[1] == '_' && key[n - 2] == '_' && key[n - 1] == '_';
    const char *s = reserved ? key + 2 : key;
    size_t sn = reserved ? n - 4 : n;
    char *o = arena_alloc(&c->b->mem, n + 8);
    if (!o) return -2;
    size_t k = 0;
    if (reserved) {
        o[k++] = '_';
        o[k++] = '_';
    }
    bool prev_us = false;
    for (size_t i = 0; i < sn;) {
        size_t l = rune_len(s, sn, i);
        if (l == 1 && is_alnum((unsigned char)s[i])) {
            o[k++] = s[i];
            prev_us = false;
        } else if (!prev_us) {
            o[k++] = '_';
            prev_us = true;
        }
        i += l;
    }
    if (reserved) {
        o[k++] = '_';
        o[k++] = '_';
    }
    if (o[0] >= '0' && o[0] <= '9') {
        memmove(o + 4, o, k);
        memcpy(o, "key_", 4);
        k += 4;
    }
    o[k] = '\0';
    for (size_t i = 0; i < k; i++)
        if (o[i] != '_') all_us = false;
    if (all_us) return -1;
    *out = o;
    *out_len = (uint32_t)k;
    return 0;
}

typedef enum { MT_GAUGE, MT_COUNTER, MT_NONMONOTONIC, MT_HISTOGRAM, MT_SUMMARY } metric_type;

static const char *unit_map(const char *u, size_t n)
{
    static const char *const map[][2] = {
        {"d", "days"},
        {"h", "hours"},
        {"min", "minutes"},
        {"s", "seconds"},
        {"ms", "milliseconds"},
        {"us", "microseconds"},
        {"ns", "nanoseconds"},
        {"By", "bytes"},
        {"KiBy", "kibibytes"},
        {"MiBy", "mebibytes"},
        {"GiBy", "gibibytes"},
        {"TiBy", "tibibytes"},
        {"KBy", "kilobytes"},
        {"MBy", "megabytes"},
        {"GBy", "gigabytes"},
        {"TBy", "terabytes"},
        {"m", "meters"},
        {"V", "volts"},
        {"A", "amperes"},
        {"J", "joules"},
        {"W", "watts"},
        {"g", "grams"},
        {"Cel", "celsius"},
        {"Hz", "hertz"},
        {"1", ""},
        {"%", "percent"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && memcmp(map[i][0], u, n) == 0) return map[i][1];
    return NULL;
}

static const char *per_unit_map(const char *u, size_t n)
{
    static const char *const map[][2] = {{"s", "second"}, {"m", "minute"}, {"h", "hour"},
                                         {"d", "day"},    {"w", "week"},   {"mo", "month"},
                                         {"y", "year"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && memcmp(map[i][0], u, n) == 0) return map[i][1];
    return NULL;
}

/* A string slice. */
typedef struct slice {
    const char *p;
    size_t n;
} slice;

static bool slice_eq(slice a, const char *s)
{
    return a.n == strlen(s) && memcmp(a.p, s, a.n) == 0;
}

static void trim_slice(slice *x)
{
    while (x->n && isspace((unsigned char)x->p[0]))
        x->p++, x->n--;
    while (x->n && isspace((unsigned char)x->p[x->n - 1]))
        x->n--;
}

/* The main and "per" unit words of a UCUM unit ("By/s" -> "bytes", "per_second"), before any
 * character cleanup; written into mbuf and pbuf. Units in braces ({packets}) are annotations and
 * add nothing. */
static void unit_suffixes(const char *unit, char *mbuf, size_t mcap, char *pbuf, size_t pcap)
{
    mbuf[0] = pbuf[0] = '\0';
    size_t un = strlen(unit);
    const char *slash = memchr(unit, '/', un);
    slice main = {unit, slash ? (size_t)(slash - unit) : un};
    trim_slice(&main);
    if (main.n && !memchr(main.p, '{', main.n) && !memchr(main.p, '}', main.n)) {
        const char *m = unit_map(main.p, main.n);
        if (m)
            snprintf(mbuf, mcap, "%s", m);
        else
            snprintf(mbuf, mcap, "%.*s", (int)(main.n > mcap ? mcap : main.n), main.p);
    }
    if (slash && slash[1]) {
        slice per = {slash + 1, un - (size_t)(slash + 1 - unit)};
        trim_slice(&per);
        if (per.n && !memchr(per.p, '{', per.n) && !memchr(per.p, '}', per.n)) {
            const char *m = per_unit_map(per.p, per.n);
            if (m)
                snprintf(pbuf, pcap, "per_%s", m);
            else
                snprintf(pbuf, pcap, "per_%.*s", (int)(per.n > pcap ? pcap : per.n), per.p);
        }
    }
}

static bool metric_char(unsigned char ch)
{
    return is_alnum(ch) || ch == ':';
}

/* Prometheus' cleanUpUnit: characters outside [a-zA-Z0-9:] become '_', runs of '_' collapse, one
 * leading '_' goes. In place. */
static void clean_unit(char *u)
{
    size_t n = strlen(u), k = 0;
    for (size_t i = 0; i < n;) {
        size_t l = rune_len(u, n, i);
        char ch = l == 1 && metric_char((unsigned char)u[i]) ? u[i] : '_';
        if (!(ch == '_' && k && u[k - 1] == '_')) u[k++] = ch;
        i += l;
    }
    u[k] = '\0';
    if (u[0] == '_') memmove(u, u + 1, k);
}

static bool has_suffix(const char *s, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

/* Translates a metric name as Prometheus' MetricNamer does for the options in c (see ingest.h).
 * Returns the name in the batch arena, or NULL when it translates to nothing valid. */
static const char *metric_name(tctx *c, const Metric *m, metric_type type, size_t *out_len)
{
    const char *name = m->name ? m->name : "";
    const char *unit = m->unit ? m->unit : "";
    size_t n = strlen(name);
    if (n == 0) return NULL;
    bool suffixes = !c->o.no_suffixes;
    bool ratio = suffixes && type == MT_GAUGE && strcmp(unit, "1") == 0;
    bool total = suffixes && type == MT_COUNTER;
    char mainu[256], peru[256];
    if (suffixes)
        unit_suffixes(unit, mainu, sizeof mainu, peru, sizeof peru);
    else
        mainu[0] = peru[0] = '\0';
    c->s.len = 0;
    if (c->o.allow_utf8) {
        /* Names stay as sent; suffixes are appended unless already there. */
        size_t k = n;
        if (ratio && has_suffix(name, k, "ratio") && k > 6) k -= 6;
        if (total && has_suffix(name, k, "total") && k > 6) k -= 6;
        if (peru[0] && has_suffix(name, k, peru) && k > strlen(peru) + 1) k -= strlen(peru) + 1;
        if (buf_append(&c->s, name, k)) return NULL;
        if (mainu[0] && !has_suffix((const char *)c->s.data, c->s.len, mainu))
            buf_printf(&c->s, "_%s", mainu);
        if (peru[0]) buf_printf(&c->s, "_%s", peru);
        if (total) buf_printf(&c->s, "_total");
        if (ratio) buf_printf(&c->s, "_ratio");
    } else {
        /* Split into tokens of [a-zA-Z0-9:] (no_suffixes: '_' belongs to tokens too), then join
         * with '_', which collapses every run of other characters into one '_'. */
        size_t cap_tok = n / 2 + 4, n_tok = 0;
        slice *tok = malloc(cap_tok * sizeof *tok);
        if (!tok) return NULL;
        bool in_token = false;
        for (size_t i = 0; i < n;) {
            size_t l = rune_len(name, n, i);
            bool in =
                l == 1 && (metric_char((unsigned char)name[i]) || (!suffixes && name[i] == '_'));
            if (in) {
                if (!in_token) tok[n_tok++] = (slice){name + i, 0};
                tok[n_tok - 1].n++;
            }
            in_token = in;
            i += l;
        }
        if (suffixes) {
            clean_unit(mainu);
            clean_unit(peru);
            slice mu = {mainu, strlen(mainu)}, pu = {peru, strlen(peru)};
            for (size_t i = 0; i < n_tok; i++)
                if (mu.n && tok[i].n == mu.n && memcmp(tok[i].p, mu.p, mu.n) == 0) mu.n = 0;
            if (slice_eq(pu, "per_")) {
                pu.n = 0;
            } else {
                if (pu.n && pu.p[pu.n - 1] == '_') pu.n--;
                for (size_t i = 0; i < n_tok; i++)
                    if (pu.n && tok[i].n == pu.n && memcmp(tok[i].p, pu.p, pu.n) == 0) pu.n = 0;
            }
            if (pu.n && mu.n && mu.p[mu.n - 1] == '_') mu.n--;
            /* The unit tokens point into mainu/peru, which live until the join below. */
            if (mu.n) tok[n_tok++] = mu;
            if (pu.n) tok[n_tok++] = pu;
            const char *extra = total ? "total" : ratio ? "ratio" : NULL;
            if (extra) {
                size_t k = 0;
                for (size_t i = 0; i < n_tok; i++)
                    if (!slice_eq(tok[i], extra)) tok[k++] = tok[i];
                n_tok = k;
                tok[n_tok++] = (slice){extra, strlen(extra)};
            }
        }
        for (size_t i = 0; i < n_tok; i++) {
            if (i) buf_putc(&c->s, '_');
            buf_append(&c->s, tok[i].p, tok[i].n);
        }
        free(tok);
        if (c->s.len && c->s.data[0] >= '0' && c->s.data[0] <= '9') {
            buf_putc(&c->s, '\0');
            memmove(c->s.data + 1, c->s.data, c->s.len - 1);
            c->s.data[0] = '_';
        }
    }
    if (c->s.len == 0) return NULL;
    bool all_us = true;
    for (size_t i = 0; i < c->s.len; i++)
        if (c->s.data[i] != '_') all_us = false;
    if (all_us && !(c->s.len == n && memcmp(c->s.data, name, n) == 0)) return NULL;
    *out_len = c->s.len;
    return t_dup(c, (const char *)c->s.data, c->s.len);
}

/* ---- translation: attribute values -------------------------------------------------------- */

/* A double as Go's encoding/json (and pdata's AsString) writes it: positional digits for
 * 1e-6 <= |v| < 1e21, else the shortest exponent form with Go's exponent spelling (1e-7, 1e+21). */
static void go_float(double v, buf *out)
{
    char tmp[400];
    double a = fabs(v);
    if (isnan(v) || isinf(v) || a == 0 || (a >= 1e-6 && a < 1e21)) {
        format_float(v, tmp, sizeof tmp);
        buf_append(out, tmp, strlen(tmp));
        return;
    }
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    size_t n = strlen(tmp);
    if (n >= 4 && tmp[n - 4] == 'e' && tmp[n - 3] == '-' && tmp[n - 2] == '0') {
        tmp[n - 2] = tmp[n - 1];
        tmp[n - 1] = '\0';
    }
    buf_append(out, tmp, strlen(tmp));
}

static void base64(const uint8_t *p, size_t n, buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        buf_putc(out, tab[v >> 18 & 63]);
        buf_putc(out, tab[v >> 12 & 63]);
        buf_putc(out, i + 1 < n ? tab[v >> 6 & 63] : '=');
        buf_putc(out, i + 2 < n ? tab[v & 63] : '=');
    }
}

/* A JSON string as Go's encoding/json writes it (HTML-safe escapes included). */
static void json_str(const char *s, size_t n, buf *out)
{
    buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            buf_putc(out, '\\');
            buf_putc(out, (char)ch);
        } else if (ch == '\n') {
            buf_append(out, "\\n", 2);
        } else if (ch == '\r') {
            buf_append(out, "\\r", 2);
        } else if (ch == '\t') {
            buf_append(out, "\\t", 2);
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            buf_printf(out, "\\u%04x", ch);
        } else if (ch == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            buf_printf(out, "\\u202%c", (unsigned char)s[i + 2] == 0xa8 ? '8' : '9');
            i += 2;
        } else {
            buf_putc(out, (char)ch);
        }
    }
    buf_putc(out, '"');
}

static int kv_key_cmp(const void *a, const void *b)
{
    const KeyValue *x = *(KeyValue *const *)a, *y = *(KeyValue *const *)b;
    int r = strcmp(x->key ? x->key : "", y->key ? y->key : "");
    if (r) return r;
    return x < y ? -1 : x > y; /* stable: keys repeated in a list keep their order */
}

static int any_json(const AnyValue *v, buf *out);

/* A key-value list as a JSON object with sorted keys (Go marshals maps that way); a repeated key
 * keeps its last value, as a map would. */
static int kvlist_json(KeyValue **kv, size_t n, buf *out)
{
    KeyValue **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) return -1;
    if (n) memcpy(sorted, kv, n * sizeof *sorted);
    if (n > 1) qsort(sorted, n, sizeof *sorted, kv_key_cmp);
    buf_putc(out, '{');
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(sorted[i]->key, sorted[i + 1]->key) == 0) continue;
        if (!first) buf_putc(out, ',');
        first = false;
        json_str(sorted[i]->key, strlen(sorted[i]->key), out);
        buf_putc(out, ':');
        if (any_json(sorted[i]->value, out)) {
            free(sorted);
            return -1;
        }
    }
    buf_putc(out, '}');
    free(sorted);
    return 0;
}

/* The nesting is bounded by the decoders (OTLP_MAX_DEPTH), so recursion is too. */
static int any_json(const AnyValue *v, buf *out)
{
    if (!v) return buf_append(out, "null", 4);
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        json_str(v->string_value, strlen(v->string_value), out);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return buf_printf(out, "%s", v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return buf_printf(out, "%lld", (long long)v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value) || isinf(v->double_value)) return buf_append(out, "null", 4);
        go_float(v->double_value, out);
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        buf_putc(out, '"');
        base64(v->bytes_value.data, v->bytes_value.len, out);
        buf_putc(out, '"');
        return 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        buf_putc(out, '[');
        const Opentelemetry__Proto__Common__V1__ArrayValue *a = v->array_value;
        for (size_t i = 0; a && i < a->n_values; i++) {
            if (i) buf_putc(out, ',');
            if (any_json(a->values[i], out)) return -1;
        }
        buf_putc(out, ']');
        return 0;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        if (!v->kvlist_value) return buf_append(out, "{}", 2);
        return kvlist_json(v->kvlist_value->values, v->kvlist_value->n_values, out);
    default:
        return buf_append(out, "null", 4);
    }
}

/* An attribute value as a label value, as pdata's Value.AsString gives it: strings as they are,
 * numbers and booleans in Go's spelling, bytes in base64, arrays and maps as JSON. The result is
 * copied into the batch arena: the batch must not depend on the decoded request, which is freed
 * before the write. */
static int any_string(tctx *c, const AnyValue *v, const char **out, uint32_t *len)
{
    *out = "";
    *len = 0;
    if (!v) return 0;
    c->s.len = 0;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        buf_append(&c->s, v->string_value, strlen(v->string_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        base64(v->bytes_value.data, v->bytes_value.len, &c->s);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        go_float(v->double_value, &c->s);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX:
        return 0;
    default:
        if (any_json(v, &c->s)) return -1;
        break;
    }
    if (c->s.len > UINT32_MAX) return -1;
    char *p = t_dup(c, c->s.len ? (const char *)c->s.data : "", c->s.len);
    if (!p) return -1;
    *out = p;
    *len = (uint32_t)c->s.len;
    return 0;
}

/* ---- translation: label sets ------------------------------------------------------------- */

static int lb_reserve(tctx *c, size_t n)
{
    if (c->n_attrs + n <= c->cap_attrs) return 0;
    size_t cap = c->cap_attrs ? c->cap_attrs : 16;
    while (cap < c->n_attrs + n)
        cap *= 2;
    lb *p = realloc(c->attrs, cap * sizeof *p);
    if (!p) return -1;
    c->attrs = p;
    c->cap_attrs = cap;
    return 0;
}

/* Sets name=value in the label set being built, replacing an existing value. */
static int lb_set(tctx *c, const char *name, uint32_t nl, const char *value, uint32_t vl)
{
    for (size_t i = 0; i < c->n_attrs; i++)
        if (c->attrs[i].name_len == nl && memcmp(c->attrs[i].name, name, nl) == 0) {
            c->attrs[i].value = value;
            c->attrs[i].value_len = vl;
            return 0;
        }
    if (lb_reserve(c, 1)) return -1;
    c->attrs[c->n_attrs++] = (lb){.name = name, .name_len = nl, .value = value, .value_len = vl};
    return 0;
}

static int lb_name_cmp(const void *a, const void *b)
{
    const lb *x = a, *y = b;
    int r = label_str_compare(x->name, x->name_len, y->name, y->name_len);
    if (r) return r;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Replaces c->attrs with the translated attributes: keys in sorted order, translated, and where
 * two keys translate to the same name, their values joined with ';' in key order (Prometheus'
 * createAttributes). skip names identifying attributes to leave out (target_info). Returns 0, -1
 * for an attribute whose name translates to nothing (strict) or -2 for ENOMEM. */
static int attrs_translate(tctx *c, KeyValue **kv, size_t n, const char *const *skip, bool strict)
{
    c->n_attrs = 0;
    if (lb_reserve(c, n)) return -2;
    for (size_t i = 0; i < n; i++) {
        const char *key = kv[i]->key ? kv[i]->key : "";
        bool skipped = false;
        for (const char *const *s = skip; s && *s; s++)
            if (strcmp(key, *s) == 0) skipped = true;
        if (skipped) continue;
        size_t kl = strlen(key);
        if (kl > UINT32_MAX) return -1;
        lb *l = &c->attrs[c->n_attrs];
        *l = (lb){.name = key, .name_len = (uint32_t)kl, .order = (uint32_t)i};
        if (any_string(c, kv[i]->value, &l->value, &l->value_len)) return -2;
        c->n_attrs++;
    }
    /* Sort by original key, then renumber so collisions join in that order. */
    if (c->n_attrs > 1) qsort(c->attrs, c->n_attrs, sizeof *c->attrs, lb_name_cmp);
    size_t k = 0;
    for (size_t i = 0; i < c->n_attrs; i++) {
        lb *l = &c->attrs[i];
        const char *nm;
        uint32_t nl;
        int rc = label_name(c, l->name, l->name_len, &nm, &nl);
        if (rc == -2) return -2;
        if (rc < 0) {
            if (strict) return -1;
            continue;
        }
        c->attrs[k] = (lb){.name = nm,
                           .name_len = nl,
                           .value = l->value,
                           .value_len = l->value_len,
                           .order = (uint32_t)i};
        k++;
    }
    c->n_attrs = k;
    if (c->n_attrs > 1) qsort(c->attrs, c->n_attrs, sizeof *c->attrs, lb_name_cmp);
    k = 0;
    for (size_t i = 0; i < c->n_attrs; i++) {
        if (k && c->attrs[k - 1].name_len == c->attrs[i].name_len &&
            memcmp(c->attrs[k - 1].name, c->attrs[i].name, c->attrs[i].name_len) == 0) {
            lb *prev = &c->attrs[k - 1];
            size_t nl = (size_t)prev->value_len + 1 + c->attrs[i].value_len;
            if (nl > UINT32_MAX) return -1;
            char *j = arena_alloc(&c->b->mem, nl + 1);
            if (!j) return -2;
            memcpy(j, prev->value, prev->value_len);
            j[prev->value_len] = ';';
            memcpy(j + prev->value_len + 1, c->attrs[i].value, c->attrs[i].value_len);
            j[nl] = '\0';
            prev->value = j;
            prev->value_len = (uint32_t)nl;
            continue;
        }
        c->attrs[k++] = c->attrs[i];
    }
    c->n_attrs = k;
    return 0;
}

/* The labels every series of a point shares: its attributes, the scope labels when promoted, job
 * and instance. Returns 0, -1 (a bad attribute name) or -2 (ENOMEM). */
static int point_labels(tctx *c, KeyValue **kv, size_t n, const Scope *scope,
                        const char *schema_url)
{
    int rc = attrs_translate(c, kv, n, NULL, true);
    if (rc) return rc;
    if (c->o.promote_scope && scope && scope->name && scope->name[0]) {
        const char *sn = t_dup(c, scope->name, strlen(scope->name)),
                   *sv = t_dup(c, scope->version, strlen(scope->version)),
                   *su = t_dup(c, schema_url, strlen(schema_url));
        if (!sn || !sv || !su || lb_set(c, "otel_scope_name", 15, sn, (uint32_t)strlen(sn)) ||
            lb_set(c, "otel_scope_version", 18, sv, (uint32_t)strlen(sv)) ||
            lb_set(c, "otel_scope_schema_url", 21, su, (uint32_t)strlen(su)))
            return -2;
        for (size_t i = 0; i < scope->n_attributes; i++) {
            const KeyValue *a = scope->attributes[i];
            c->s.len = 0;
            buf_printf(&c->s, "otel_scope_%s", a->key);
            char *full = t_dup(c, (const char *)c->s.data, c->s.len);
            if (!full) return -2;
            const char *nm, *val;
            uint32_t nl, vl;
            int r = label_name(c, full, strlen(full), &nm, &nl);
            if (r == -2) return -2;
            if (r < 0) continue;
            if (any_string(c, a->value, &val, &vl)) return -2;
            if (lb_set(c, nm, nl, val, vl)) return -2;
        }
    }
    if (c->job && lb_set(c, "job", 3, c->job, c->job_len)) return -2;
    if (c->instance && lb_set(c, "instance", 8, c->instance, c->instance_len)) return -2;
    return 0;
}

static int label_cmp(const void *a, const void *b)
{
    const label *x = a, *y = b;
    return label_str_compare(x->name, x->name_len, y->name, y->name_len);
}

static int t_grow_series(tctx *c)
{
    if (c->n_series < c->cap_series) return 0;
    size_t cap = c->cap_series ? c->cap_series * 2 : 64;
    tseries *p = realloc(c->series, cap * sizeof *p);
    if (!p) return -1;
    c->series = p;
    c->cap_series = cap;
    /* The table stays at most half full. */
    if (c->n_slots < cap * 2) {
        size_t ns = cap * 2;
        uint32_t *slots = calloc(ns, sizeof *slots);
        if (!slots) return -1;
        for (size_t i = 0; i < c->n_series; i++) {
            size_t h = (size_t)c->series[i].hash & (ns - 1);
            while (slots[h])
                h = (h + 1) & (ns - 1);
            slots[h] = (uint32_t)i + 1;
        }
        free(c->slots);
        c->slots = slots;
        c->n_slots = ns;
    }
    return 0;
}

/* Adds one sample to the series made of the point's labels plus __name__ = name and, when
 * extra_name is set, extra_name = extra_value (le, quantile). Labels with empty values are left
 * out, as the database would drop them. */
static int t_add_sample(tctx *c, const char *name, uint32_t name_len, const char *extra_name,
                        const char *extra_value, int64_t t, double v, const native_histogram *hist,
                        bool info)
{
    size_t need = c->n_attrs + 2;
    if (need > c->cap_tmp) {
        size_t cap = need * 2;
        label *p = realloc(c->tmp, cap * sizeof *p);
        if (!p) return t_nomem(c);
        c->tmp = p;
        c->cap_tmp = cap;
    }
    size_t n = 0;
    uint32_t en = extra_name ? (uint32_t)strlen(extra_name) : 0;
    for (size_t i = 0; i < c->n_attrs; i++) {
        const lb *a = &c->attrs[i];
        if (!a->value_len) continue;
        if (a->name_len == 8 && memcmp(a->name, "__name__", 8) == 0) continue;
        if (extra_name && a->name_len == en && memcmp(a->name, extra_name, en) == 0) continue;
        c->tmp[n++] = (label){
            .name = a->name, .value = a->value, .name_len = a->name_len, .value_len = a->value_len};
    }
    c->tmp[n++] = (label){.name = "__name__", .value = name, .name_len = 8, .value_len = name_len};
    if (extra_name)
        c->tmp[n++] = (label){.name = extra_name,
                              .value = extra_value,
                              .name_len = en,
                              .value_len = (uint32_t)strlen(extra_value)};
    qsort(c->tmp, n, sizeof *c->tmp, label_cmp);
    uint64_t h = labels_hash(c->tmp, n);
    size_t idx = SIZE_MAX;
    if (c->n_slots) {
        for (size_t s = (size_t)h & (c->n_slots - 1); c->slots[s]; s = (s + 1) & (c->n_slots - 1)) {
            tseries *x = &c->series[c->slots[s] - 1];
            if (x->hash == h && labels_equal(x->labels, x->n_labels, c->tmp, n)) {
                idx = c->slots[s] - 1;
                break;
            }
        }
    }
    if (idx == SIZE_MAX) {
        if (c->n_series >= UINT32_MAX - 1 || t_grow_series(c)) return t_nomem(c);
        label *ls = arena_alloc(&c->b->mem, n * sizeof *ls);
        if (!ls) return t_nomem(c);
        memcpy(ls, c->tmp, n * sizeof *ls);
        /* The extra value (le, quantile) is formatted on the caller's stack: keep a copy. */
        for (size_t i = 0; i < n; i++)
            if (extra_name && ls[i].value == extra_value) {
                ls[i].value = t_dup(c, extra_value, ls[i].value_len);
                if (!ls[i].value) return t_nomem(c);
            }
        idx = c->n_series++;
        c->series[idx] = (tseries){.labels = ls, .n_labels = (uint32_t)n, .info = info, .hash = h};
        size_t s = (size_t)h & (c->n_slots - 1);
        while (c->slots[s])
            s = (s + 1) & (c->n_slots - 1);
        c->slots[s] = (uint32_t)idx + 1;
    }
    if (c->n_samples == c->cap_samples) {
        size_t cap = c->cap_samples ? c->cap_samples * 2 : 256;
        if (cap > UINT32_MAX)
            return strata_errf(c->err, STRATA_ELIMIT, "the request expands to too many samples");
        tsample *p = realloc(c->samples, cap * sizeof *p);
        if (!p) return t_nomem(c);
        c->samples = p;
        c->cap_samples = cap;
    }
    c->samples[c->n_samples] = (tsample){
        .series = (uint32_t)idx, .seq = (uint32_t)c->n_samples, .t = t, .v = v, .h = hist};
    c->n_samples++;
    c->series[idx].count++;
    if (hist) c->series[idx].hcount++;
    if (!info) c->b->n_samples++;
    return 0;
}

static int t_add(tctx *c, const char *name, uint32_t name_len, const char *extra_name,
                 const char *extra_value, int64_t t, double v, bool info)
{
    return t_add_sample(c, name, name_len, extra_name, extra_value, t, v, NULL, info);
}

/* ---- translation: metrics ----------------------------------------------------------------- */

static void reject(tctx *c, int reason, const Metric *m, uint64_t n)
{
    if (!n) return;
    c->b->rejected_points += n;
    if (!c->reasons[reason].count)
        snprintf(c->reasons[reason].metric, sizeof c->reasons[reason].metric, "%s",
                 m->name ? m->name : "");
    c->reasons[reason].count += n;
}

static double stale_nan(void)
{
    uint64_t u = STALE_NAN_BITS;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int64_t ns_to_ms(uint64_t ns)
{
    return (int64_t)(ns / 1000000);
}

/* The point's labels, or a rejection: returns 1 when the point was rejected, 0 when the labels
 * are in c->attrs, or a STRATA_E* error. */
static int prepare_point(tctx *c, const Metric *m, KeyValue **attrs, size_t n_attrs,
                         uint64_t time_ns, const Scope *scope, const char *schema_url)
{
    if (time_ns == 0) {
        reject(c, R_NO_TIME, m, 1);
        return 1;
    }
    int rc = point_labels(c, attrs, n_attrs, scope, schema_url);
    if (rc == -2) return t_nomem(c);
    if (rc) {
        reject(c, R_BAD_ATTRIBUTE, m, 1);
        return 1;
    }
    return 0;
}

static int number_points(tctx *c, const Metric *m, const char *name, uint32_t nl,
                         NumberDataPoint **pts, size_t n, const Scope *scope,
                         const char *schema_url)
{
    for (size_t i = 0; i < n; i++) {
        const NumberDataPoint *p = pts[i];
        bool stale = p->flags & FLAG_NO_RECORDED_VALUE;
        if (!stale &&
            p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET &&
            p->time_unix_nano) {
            reject(c, R_NO_VALUE, m, 1);
            continue;
        }
        int rc = prepare_point(c, m, p->attributes, p->n_attributes, p->time_unix_nano, scope,
                               schema_url);
        if (rc < 0) return rc;
        if (rc) continue;
        double v =
            stale ? stale_nan()
            : p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT
                ? (double)p->as_int
                : p->as_double;
        if ((rc = t_add(c, name, nl, NULL, NULL, ns_to_ms(p->time_unix_nano), v, false))) return rc;
        if ((rc = t_check_budget(c))) return rc;
    }
    return 0;
}

/* name + suffix in the batch arena. */
static const char *suffixed(tctx *c, const char *name, uint32_t nl, const char *suffix,
                            uint32_t *out_len)
{
    size_t sl = strlen(suffix);
    char *p = arena_alloc(&c->b->mem, nl + sl + 1);
    if (!p) return NULL;
    memcpy(p, name, nl);
    memcpy(p + nl, suffix, sl + 1);
    *out_len = nl + (uint32_t)sl;
    return p;
}

static int histogram_points(tctx *c, const Metric *m, const char *name, uint32_t nl,
                            HistogramDataPoint **pts, size_t n, const Scope *scope,
                            const char *schema_url)
{
    uint32_t bl, sl, cl;
    const char *bucket = suffixed(c, name, nl, "_bucket", &bl),
               *sum = suffixed(c, name, nl, "_sum", &sl),
               *count = suffixed(c, name, nl, "_count", &cl);
    if (!bucket || !sum || !count) return t_nomem(c);
    for (size_t i = 0; i < n; i++) {
        const HistogramDataPoint *p = pts[i];
        bool ok = true;
        for (size_t k = 1; k < p->n_explicit_bounds; k++)
            if (!(p->explicit_bounds[k - 1] < p->explicit_bounds[k])) ok = false;
        for (size_t k = 0; k < p->n_explicit_bounds; k++)
            if (isnan(p->explicit_bounds[k])) ok = false;
        if (!ok) {
            reject(c, R_BAD_BOUNDS, m, 1);
            continue;
        }
        int rc = prepare_point(c, m, p->attributes, p->n_attributes, p->time_unix_nano, scope,
                               schema_url);
        if (rc < 0) return rc;
        if (rc) continue;
        bool stale = p->flags & FLAG_NO_RECORDED_VALUE;
        int64_t t = ns_to_ms(p->time_unix_nano);
        double st = stale_nan();
        if (p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM &&
            (rc = t_add(c, sum, sl, NULL, NULL, t, stale ? st : p->sum, false)))
            return rc;
        if ((rc = t_add(c, count, cl, NULL, NULL, t, stale ? st : (double)p->count, false)))
            return rc;
        uint64_t cum = 0;
        for (size_t k = 0; k < p->n_explicit_bounds && k < p->n_bucket_counts; k++) {
            cum += p->bucket_counts[k];
            char le[400];
            format_float(p->explicit_bounds[k], le, sizeof le);
            if ((rc = t_add(c, bucket, bl, "le", le, t, stale ? st : (double)cum, false)))
                return rc;
            if ((k & 1023) == 1023 && (rc = t_check_budget(c))) return rc;
        }
        if ((rc = t_add(c, bucket, bl, "le", "+Inf", t, stale ? st : (double)p->count, false)))
            return rc;
        if ((rc = t_check_budget(c))) return rc;
    }
    return 0;
}

/* floor(x / 2^n), as Go's >> on a signed integer. */
static int64_t shift_down(int64_t x, int32_t n)
{
    if (n <= 0) return x;
    if (n >= 62) return x < 0 ? -1 : 0;
    return x >= 0 ? x >> n : -((-x - 1) >> n) - 1;
}

/* OTLP's dense buckets (bucket offset + i covers (base^(offset+i), base^(offset+i+1)]) as native
 * spans and absolute counts, merging 2^scale_down neighbours, as Prometheus'
 * convertBucketsLayout does: Prometheus' index is one more than OTLP's, gaps of up to two empty
 * buckets are filled with zeros, longer ones start a new span. 0, 1 when an index leaves int32,
 * or STRATA_ENOMEM. */
static int exp_buckets(tctx *c, const uint64_t *counts, size_t n, int32_t offset,
                       int32_t scale_down, hist_span **spans_out, uint32_t *n_spans,
                       double **buckets_out, uint32_t *n_buckets)
{
    *spans_out = NULL;
    *buckets_out = NULL;
    *n_spans = *n_buckets = 0;
    if (!n) return 0;
    hist_span *spans = arena_alloc(&c->b->mem, (n + 2) * sizeof *spans);
    double *b = arena_alloc(&c->b->mem, (3 * n + 3) * sizeof *b);
    if (!spans || !b) return STRATA_ENOMEM;
    uint32_t ns = 0, nb = 0;
    int64_t idx = shift_down(offset, scale_down) + 1;
    spans[ns++] = (hist_span){.offset = (int32_t)idx, .length = 0};
    double count = 0;
    for (size_t i = 0; i <= n; i++) {
        int64_t next = i < n ? shift_down((int64_t)i + offset, scale_down) + 1
                             : shift_down((int64_t)n + offset - 1, scale_down) + 1;
        if (i < n && idx == next) {
            count += (double)counts[i];
            continue;
        }
        if (i < n && count == 0) {
            count = (double)counts[i];
            continue;
        }
        int64_t gap = next - idx - (i < n ? 1 : 0);
        if (gap > INT32_MAX || gap < INT32_MIN) return 1;
        if (gap > 2) {
            spans[ns++] = (hist_span){.offset = (int32_t)gap, .length = 0};
        } else {
            for (int64_t g = 0; g < gap; g++) {
                spans[ns - 1].length++;
                b[nb++] = 0;
            }
        }
        spans[ns - 1].length++;
        b[nb++] = count;
        if (i == n) break;
        count = (double)counts[i];
        idx = next;
    }
    *spans_out = spans;
    *n_spans = ns;
    *buckets_out = b;
    *n_buckets = nb;
    return 0;
}

static int exponential_points(tctx *c, const Metric *m, const char *name, uint32_t nl,
                              ExponentialHistogramDataPoint **pts, size_t n, int temporality,
                              const Scope *scope, const char *schema_url)
{
    for (size_t i = 0; i < n; i++) {
        const ExponentialHistogramDataPoint *p = pts[i];
        if (p->scale < -4) {
            reject(c, R_BAD_SCALE, m, 1);
            continue;
        }
        int32_t scale_down = p->scale > 8 ? p->scale - 8 : 0;
        native_histogram *h = arena_alloc(&c->b->mem, sizeof *h);
        if (!h) return t_nomem(c);
        memset(h, 0, sizeof *h);
        h->is_int = true; /* OTLP counts are integers */
        h->schema = p->scale > 8 ? 8 : p->scale;
        h->zero_threshold = 1e-128; /* Prometheus' default; OTLP's zero_threshold is not used */
        h->reset_hint = temporality == TEMPORALITY_DELTA ? HIST_HINT_GAUGE : HIST_HINT_UNKNOWN;
        bool stale = p->flags & FLAG_NO_RECORDED_VALUE;
        const ExponentialHistogramDataPoint__Buckets *pos = p->positive, *neg = p->negative;
        if (!stale) {
            int rc = exp_buckets(c, pos ? pos->bucket_counts : NULL, pos ? pos->n_bucket_counts : 0,
                                 pos ? pos->offset : 0, scale_down, &h->pos_spans, &h->n_pos_spans,
                                 &h->pos_buckets, &h->n_pos_buckets);
            if (!rc)
                rc = exp_buckets(c, neg ? neg->bucket_counts : NULL, neg ? neg->n_bucket_counts : 0,
                                 neg ? neg->offset : 0, scale_down, &h->neg_spans, &h->n_neg_spans,
                                 &h->neg_buckets, &h->n_neg_buckets);
            if (rc < 0) return t_nomem(c);
            if (rc) {
                reject(c, R_BAD_NATIVE, m, 1);
                continue;
            }
            h->zero_count = (double)p->zero_count;
            h->count = (double)p->count;
            if (p->_sum_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM)
                h->sum = p->sum;
        } else {
            h->sum = stale_nan();
        }
        char verr[STRATA_ERRMSG_SIZE];
        if (native_histogram_validate(h, verr)) {
            reject(c, R_BAD_NATIVE, m, 1);
            continue;
        }
        int rc = prepare_point(c, m, p->attributes, p->n_attributes, p->time_unix_nano, scope,
                               schema_url);
        if (rc < 0) return rc;
        if (rc) continue;
        if ((rc = t_add_sample(c, name, nl, NULL, NULL, ns_to_ms(p->time_unix_nano), 0, h, false)))
            return rc;
        if ((rc = t_check_budget(c))) return rc;
    }
    return 0;
}

static int summary_points(tctx *c, const Metric *m, const char *name, uint32_t nl,
                          SummaryDataPoint **pts, size_t n, const Scope *scope,
                          const char *schema_url)
{
    uint32_t sl, cl;
    const char *sum = suffixed(c, name, nl, "_sum", &sl),
               *count = suffixed(c, name, nl, "_count", &cl);
    if (!sum || !count) return t_nomem(c);
    for (size_t i = 0; i < n; i++) {
        const SummaryDataPoint *p = pts[i];
        int rc = prepare_point(c, m, p->attributes, p->n_attributes, p->time_unix_nano, scope,
                               schema_url);
        if (rc < 0) return rc;
        if (rc) continue;
        bool stale = p->flags & FLAG_NO_RECORDED_VALUE;
        int64_t t = ns_to_ms(p->time_unix_nano);
        double st = stale_nan();
        if ((rc = t_add(c, sum, sl, NULL, NULL, t, stale ? st : p->sum, false))) return rc;
        if ((rc = t_add(c, count, cl, NULL, NULL, t, stale ? st : (double)p->count, false)))
            return rc;
        for (size_t k = 0; k < p->n_quantile_values; k++) {
            char q[400];
            format_float(p->quantile_values[k]->quantile, q, sizeof q);
            if ((rc = t_add(c, name, nl, "quantile", q, t,
                            stale ? st : p->quantile_values[k]->value, false)))
                return rc;
            if ((k & 1023) == 1023 && (rc = t_check_budget(c))) return rc;
        }
        if ((rc = t_check_budget(c))) return rc;
    }
    return 0;
}

/* The points of a metric and their time span (for target_info), whatever its type. */
static size_t metric_points(const Metric *m, uint64_t *earliest, uint64_t *latest)
{
#define SPAN(arr, n)                                                                               \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            uint64_t t_ = (arr)[i_]->time_unix_nano;                                               \
            if (!t_) continue;                                                                     \
            if (t_ < *earliest) *earliest = t_;                                                    \
            if (t_ > *latest) *latest = t_;                                                        \
        }                                                                                          \
        return (n);                                                                                \
    } while (0)
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        SPAN(m->gauge->data_points, m->gauge->n_data_points);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        SPAN(m->sum->data_points, m->sum->n_data_points);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        SPAN(m->histogram->data_points, m->histogram->n_data_points);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        SPAN(m->exponential_histogram->data_points, m->exponential_histogram->n_data_points);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        SPAN(m->summary->data_points, m->summary->n_data_points);
    default:
        return 0;
    }
#undef SPAN
}

static int translate_metric(tctx *c, const Metric *m, const Scope *scope, const char *schema_url,
                            uint64_t *earliest, uint64_t *latest)
{
    size_t n = metric_points(m, earliest, latest);
    c->b->n_points += n;
    if (!n) return 0;
    metric_type type;
    int temporality = TEMPORALITY_CUMULATIVE;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        type = MT_GAUGE;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        type = m->sum->is_monotonic ? MT_COUNTER : MT_NONMONOTONIC;
        temporality = (int)m->sum->aggregation_temporality;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        type = MT_HISTOGRAM;
        temporality = (int)m->histogram->aggregation_temporality;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        type = MT_SUMMARY;
        break;
    default: /* exponential histogram: a native histogram named like a classic one's base */
        type = MT_HISTOGRAM;
        temporality = (int)m->exponential_histogram->aggregation_temporality;
        break;
    }
    if (temporality != TEMPORALITY_CUMULATIVE) {
        reject(c, temporality == TEMPORALITY_DELTA ? R_DELTA : R_UNSPECIFIED, m, n);
        return 0;
    }
    size_t nl;
    const char *name = metric_name(c, m, type, &nl);
    if (!name || nl > UINT32_MAX) {
        reject(c, R_BAD_NAME, m, n);
        return 0;
    }
    switch (type) {
    case MT_GAUGE:
        return number_points(c, m, name, (uint32_t)nl, m->gauge->data_points, n, scope, schema_url);
    case MT_COUNTER:
    case MT_NONMONOTONIC:
        return number_points(c, m, name, (uint32_t)nl, m->sum->data_points, n, scope, schema_url);
    case MT_HISTOGRAM:
        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM)
            return exponential_points(c, m, name, (uint32_t)nl,
                                      m->exponential_histogram->data_points, n, temporality, scope,
                                      schema_url);
        return histogram_points(c, m, name, (uint32_t)nl, m->histogram->data_points, n, scope,
                                schema_url);
    case MT_SUMMARY:
        return summary_points(c, m, name, (uint32_t)nl, m->summary->data_points, n, scope,
                              schema_url);
    }
    return 0;
}

static const KeyValue *resource_attr(const Resource *r, const char *key)
{
    for (size_t i = 0; r && i < r->n_attributes; i++)
        if (strcmp(r->attributes[i]->key, key) == 0) return r->attributes[i];
    return NULL;
}

/* job = [service.namespace/]service.name and instance = service.instance.id, from the resource. */
static int resource_identity(tctx *c, const Resource *r)
{
    c->job = c->instance = NULL;
    c->job_len = c->instance_len = 0;
    const KeyValue *name = resource_attr(r, "service.name"),
                   *ns = resource_attr(r, "service.namespace"),
                   *inst = resource_attr(r, "service.instance.id");
    if (name) {
        const char *nv, *nsv;
        uint32_t nvl, nsl;
        if (any_string(c, name->value, &nv, &nvl)) return -1;
        if (ns) {
            if (any_string(c, ns->value, &nsv, &nsl)) return -1;
            size_t total = (size_t)nsl + 1 + nvl;
            char *j = arena_alloc(&c->b->mem, total + 1);
            if (!j || total > UINT32_MAX) return -1;
            memcpy(j, nsv, nsl);
            j[nsl] = '/';
            memcpy(j + nsl + 1, nv, nvl);
            j[total] = '\0';
            nv = j;
            nvl = (uint32_t)total;
        }
        c->job = nv;
        c->job_len = nvl;
    }
    if (inst && any_string(c, inst->value, &c->instance, &c->instance_len)) return -1;
    return 0;
}

/* target_info{job, instance, <non-identifying resource attributes>} = 1 over the resource's time
 * span, when it has attributes beyond the identifying ones and a job or an instance. */
static int target_info(tctx *c, const Resource *r, uint64_t earliest, uint64_t latest)
{
    if (c->o.no_target_info || !r || earliest > latest) return 0;
    static const char *const identifying[] = {"service.namespace", "service.name",
                                              "service.instance.id", NULL};
    size_t others = r->n_attributes;
    for (const char *const *k = identifying; *k; k++)
        if (resource_attr(r, *k)) others--;
    if (!others || (!c->job_len && !c->instance_len)) return 0;
    int rc = attrs_translate(c, r->attributes, r->n_attributes, identifying, false);
    if (rc) return t_nomem(c);
    if ((c->job && lb_set(c, "job", 3, c->job, c->job_len)) ||
        (c->instance && lb_set(c, "instance", 8, c->instance, c->instance_len)))
        return t_nomem(c);
    int64_t last = INT64_MIN;
    int steps = 0;
    for (uint64_t t = earliest; t < latest && steps < TARGET_INFO_MAX_SAMPLES;
         t += TARGET_INFO_STEP_NS, steps++) {
        last = ns_to_ms(t);
        if ((rc = t_add(c, "target_info", 11, NULL, NULL, last, 1.0, true))) return rc;
        if (t > UINT64_MAX - TARGET_INFO_STEP_NS) break;
    }
    if (last < ns_to_ms(latest) &&
        (rc = t_add(c, "target_info", 11, NULL, NULL, ns_to_ms(latest), 1.0, true)))
        return rc;
    return t_check_budget(c);
}

static int tsample_cmp(const void *a, const void *b)
{
    const tsample *x = a, *y = b;
    if (x->series != y->series) return x->series < y->series ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Lays the series out for db_write: samples grouped by series in time order (arrival order for
 * equal timestamps, so the first of two values wins as it would in Prometheus). */
static int finish(tctx *c)
{
    otlp_batch *b = c->b;
    if (c->n_samples > 1) qsort(c->samples, c->n_samples, sizeof *c->samples, tsample_cmp);
    size_t n_hist = 0;
    for (size_t i = 0; i < c->n_series; i++)
        n_hist += c->series[i].hcount;
    b->samples = malloc((c->n_samples - n_hist + 1) * sizeof *b->samples);
    b->hists = malloc((n_hist + 1) * sizeof *b->hists);
    size_t n_info = 0;
    for (size_t i = 0; i < c->n_series; i++)
        n_info += c->series[i].info;
    b->series = arena_alloc(&b->mem, (c->n_series - n_info + 1) * sizeof *b->series);
    b->info = arena_alloc(&b->mem, (n_info + 1) * sizeof *b->info);
    if (!b->samples || !b->hists || !b->series || !b->info) return t_nomem(c);
    size_t off = 0, hoff = 0;
    for (size_t i = 0; i < c->n_series; i++) {
        const tseries *s = &c->series[i];
        write_series w = {.labels = s->labels,
                          .n_labels = s->n_labels,
                          .samples = b->samples + off,
                          .n_samples = s->count - s->hcount,
                          .histograms = s->hcount ? b->hists + hoff : NULL,
                          .n_histograms = s->hcount};
        off += s->count - s->hcount;
        hoff += s->hcount;
        if (s->info)
            b->info[b->n_info++] = w;
        else
            b->series[b->n_series++] = w;
    }
    /* Samples are sorted by series, so each kind fills its array series after series. */
    size_t fi = 0, hi = 0;
    for (size_t i = 0; i < c->n_samples; i++) {
        if (c->samples[i].h)
            b->hists[hi++] = (hist_sample){.t = c->samples[i].t, .h = *c->samples[i].h};
        else
            b->samples[fi++] = (strata_sample){.t = c->samples[i].t, .v = c->samples[i].v};
    }
    /* The message: each reason with its count and the first metric it hit. */
    size_t o = 0;
    b->message[0] = '\0';
    for (int r = 0; r < R_COUNT; r++) {
        if (!c->reasons[r].count || o >= sizeof b->message - 1) continue;
        int w = snprintf(b->message + o, sizeof b->message - o,
                         "%s%llu point%s rejected, %s (metric \"%.40s\")", o ? "; " : "",
                         (unsigned long long)c->reasons[r].count,
                         c->reasons[r].count == 1 ? "" : "s", reason_text[r], c->reasons[r].metric);
        if (w < 0) break;
        o += (size_t)w;
    }
    return 0;
}

void otlp_batch_init(otlp_batch *b)
{
    memset(b, 0, sizeof *b);
    arena_init(&b->mem, 64 * 1024);
}

void otlp_batch_free(otlp_batch *b)
{
    arena_free(&b->mem);
    free(b->samples);
    free(b->hists);
    otlp_batch_init(b);
}

int otlp_translate(const otlp_export_request *req, const otlp_options *opts, size_t source_bytes,
                   otlp_batch *b, char *err)
{
    tctx c;
    memset(&c, 0, sizeof c);
    c.b = b;
    if (opts) c.o = *opts;
    c.err = err;
    const size_t cap = (size_t)3 << 30, base = (size_t)64 << 20;
    c.limit = source_bytes > (cap - base) / 48 ? cap : base + 48 * source_bytes;
    int rc = 0;
    for (size_t i = 0; req && i < req->n_resource_metrics && !rc; i++) {
        const ResourceMetrics *rm = req->resource_metrics[i];
        if (resource_identity(&c, rm->resource)) {
            rc = t_nomem(&c);
            break;
        }
        uint64_t earliest = UINT64_MAX, latest = 0;
        for (size_t j = 0; j < rm->n_scope_metrics && !rc; j++) {
            const ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics && !rc; k++)
                rc = translate_metric(&c, sm->metrics[k], sm->scope,
                                      sm->schema_url ? sm->schema_url : "", &earliest, &latest);
        }
        if (!rc) rc = target_info(&c, rm->resource, earliest, latest);
    }
    if (!rc) rc = finish(&c);
    free(c.series);
    free(c.slots);
    free(c.samples);
    free(c.attrs);
    free(c.tmp);
    buf_free(&c.s);
    return rc;
}

/* ---- the receiver ------------------------------------------------------------------------- */

static void add_result(strata_write_result *to, const strata_write_result *w)
{
    to->samples_written += w->samples_written;
    to->histograms_written += w->histograms_written;
    to->samples_duplicate += w->samples_duplicate;
    to->samples_out_of_order += w->samples_out_of_order;
    to->samples_conflict += w->samples_conflict;
    to->samples_too_old += w->samples_too_old;
    to->samples_too_far_future += w->samples_too_far_future;
    to->samples_series_limit += w->samples_series_limit;
    to->series_created += w->series_created;
}

static uint64_t skipped(const strata_write_result *w)
{
    return w->samples_out_of_order + w->samples_conflict + w->samples_too_old +
           w->samples_too_far_future + w->samples_series_limit;
}

static bool fatal_write_error(int rc)
{
    return rc && rc != STRATA_EINVAL && rc != STRATA_EOUTOFORDER && rc != STRATA_EDUPLICATE &&
           rc != STRATA_ELIMIT;
}

/* Writes series with db_write. A label set the database refuses (over a label limit, say) fails
 * the whole db_write call, which OTLP should not: then each series is written on its own and the
 * refused ones are counted in *refused with the first reason in refused_msg. Returns 0 or a fatal
 * (storage) error. */
static int write_all(strata_db *db, write_series *s, size_t n, strata_write_result *w,
                     write_reject *rej, uint64_t *refused, char *refused_msg, size_t msg_len,
                     char *err)
{
    if (!n) return 0;
    strata_write_result one = {0};
    int rc = db_write(db, s, n, false, &one, rej, err);
    if (rc != STRATA_EINVAL) {
        add_result(w, &one);
        return fatal_write_error(rc) ? rc : 0;
    }
    for (size_t i = 0; i < n; i++) {
        memset(&one, 0, sizeof one);
        write_reject r1;
        memset(&r1, 0, sizeof r1);
        rc = db_write(db, &s[i], 1, false, &one, &r1, err);
        add_result(w, &one);
        if (rej && !rej->code && r1.code) *rej = r1;
        if (rc == STRATA_EINVAL) {
            if (!*refused && refused_msg)
                snprintf(refused_msg, msg_len, "%s", err ? err : "invalid labels");
            *refused += s[i].n_samples;
        } else if (fatal_write_error(rc)) {
            return rc;
        }
    }
    return 0;
}

static int status_for(int rc)
{
    switch (rc) {
    case 0:
        return 200;
    case STRATA_EINVAL:
    case STRATA_EPARSE:
        return 400;
    case STRATA_ELIMIT:
        return 413;
    case STRATA_EUNSUPPORTED:
        return 415;
    case STRATA_ECLOSED:
    case STRATA_ETIMEOUT:
        return 503;
    default:
        return 500;
    }
}

int otlp_http_metrics(strata_db *db, const uint8_t *body, size_t len, const char *content_type,
                      const char *content_encoding, otlp_result *res, char *err)
{
    return otlp_http_metrics_opts(db, body, len, content_type, content_encoding, NULL, res, err);
}

int otlp_http_metrics_opts(strata_db *db, const uint8_t *body, size_t len, const char *content_type,
                           const char *content_encoding, const otlp_options *opts, otlp_result *res,
                           char *err)
{
    char local_err[STRATA_ERRMSG_SIZE];
    if (!err) err = local_err;
    err[0] = '\0';
    memset(res, 0, sizeof *res);
    otlp_format fmt;
    bool gz;
    buf plain = {0};
    arena a;
    arena_init(&a, 64 * 1024);
    otlp_batch b;
    otlp_batch_init(&b);
    int rc = otlp_check_headers(content_type, content_encoding, &fmt, &gz, err);
    if (rc) goto out;
    if (len > OTLP_MAX_DECODED && !gz) {
        rc = strata_errf(err, STRATA_ELIMIT,
                         "the body (%zu bytes) is larger than the limit of %zu bytes", len,
                         (size_t)OTLP_MAX_DECODED);
        goto out;
    }
    if (gz && len) {
        if ((rc = otlp_gunzip(body, len, OTLP_MAX_DECODED, &plain, err))) goto out;
        body = plain.data;
        len = plain.len;
    }
    otlp_export_request *req;
    rc = fmt == OTLP_FORMAT_JSON ? otlp_decode_json(body, len, &a, &req, err)
                                 : otlp_decode_pb(body, len, &a, &req, err);
    if (rc) goto out;
    if ((rc = otlp_translate(req, opts, len, &b, err))) goto out;
    /* The decoded request is not needed any more: give its memory back before writing. */
    arena_free(&a);
    buf_free(&plain);
    write_reject rej;
    memset(&rej, 0, sizeof rej);
    uint64_t refused = 0;
    char refused_msg[256] = "";
    strata_write_result data = {0};
    rc = write_all(db, b.series, b.n_series, &data, &rej, &refused, refused_msg, sizeof refused_msg,
                   err);
    add_result(&res->write, &data);
    if (!rc) {
        /* target_info is Strata's bookkeeping, not the client's points: its out-of-order samples
         * (another exporter of the same service wrote a later one) are not rejections. */
        strata_write_result info = {0};
        uint64_t info_refused = 0;
        rc = write_all(db, b.info, b.n_info, &info, NULL, &info_refused, NULL, 0, err);
        add_result(&res->write, &info);
    }
    if (rc) goto out;
    err[0] = '\0';
    uint64_t storage = skipped(&data);
    res->rejected_points = b.rejected_points + storage + refused;
    size_t o = strlen(b.message);
    memcpy(res->partial_message, b.message, o + 1);
    if (refused && o < sizeof res->partial_message - 1) {
        int w = snprintf(res->partial_message + o, sizeof res->partial_message - o,
                         "%s%llu samples rejected by the database: %s", o ? "; " : "",
                         (unsigned long long)refused, refused_msg);
        if (w > 0) o += (size_t)w;
    }
    if (storage && o < sizeof res->partial_message - 1) {
        /* Only the reasons that occurred, then the first sample refused. */
        const struct {
            uint64_t n;
            const char *what;
        } why[] = {
            {data.samples_out_of_order, "out of order"},
            {data.samples_conflict, "conflicting with a stored value"},
            {data.samples_too_old + data.samples_too_far_future, "outside the accepted time range"},
            {data.samples_series_limit, "over a series limit"}};
        int w = snprintf(res->partial_message + o, sizeof res->partial_message - o,
                         "%s%llu samples not stored (", o ? "; " : "", (unsigned long long)storage);
        for (size_t i = 0, k = 0; w > 0 && i < sizeof why / sizeof why[0]; i++) {
            o = strlen(res->partial_message);
            if (!why[i].n || o >= sizeof res->partial_message - 1) continue;
            w = snprintf(res->partial_message + o, sizeof res->partial_message - o, "%s%llu %s",
                         k++ ? ", " : "", (unsigned long long)why[i].n, why[i].what);
        }
        o = strlen(res->partial_message);
        if (o < sizeof res->partial_message - 1)
            snprintf(res->partial_message + o, sizeof res->partial_message - o,
                     "; first: %.200s at %lld)", rej.series, (long long)rej.t);
    }
out:
    if (rc) snprintf(res->partial_message, sizeof res->partial_message, "%s", err);
    res->http_status = status_for(rc);
    otlp_batch_free(&b);
    arena_free(&a);
    buf_free(&plain);
    return rc;
}

/* ---- the response ------------------------------------------------------------------------- */

static int grpc_code(int http_status)
{
    switch (http_status) {
    case 400:
    case 415:
        return 3; /* INVALID_ARGUMENT */
    case 413:
    case 429:
        return 8; /* RESOURCE_EXHAUSTED */
    case 503:
        return 14; /* UNAVAILABLE */
    default:
        return 13; /* INTERNAL */
    }
}

static void put_varint(buf *b, uint64_t v)
{
    while (v >= 0x80) {
        buf_putc(b, (char)(v | 0x80));
        v >>= 7;
    }
    buf_putc(b, (char)v);
}

int otlp_http_response(const otlp_result *res, const char *content_type, uint8_t **body,
                       size_t *len, const char **resp_content_type)
{
    *body = NULL;
    *len = 0;
    otlp_format fmt = format_of(content_type);
    buf out = {0};
    const char *msg = res->partial_message;
    size_t mlen = strnlen(msg, sizeof res->partial_message);
    bool ok = res->http_status == 200 || res->http_status == 0;
    bool partial = res->rejected_points || mlen;
    if (fmt == OTLP_FORMAT_JSON) {
        *resp_content_type = "application/json";
        if (ok && partial) {
            buf_printf(&out,
                       "{\"partialSuccess\":{\"rejectedDataPoints\":\"%llu\",\"errorMessage\":",
                       (unsigned long long)res->rejected_points);
            json_str(msg, mlen, &out);
            buf_append(&out, "}}", 2);
        } else if (ok) {
            buf_append(&out, "{}", 2);
        } else {
            buf_printf(&out, "{\"code\":%d,\"message\":", grpc_code(res->http_status));
            json_str(msg, mlen, &out);
            buf_putc(&out, '}');
        }
    } else if (fmt == OTLP_FORMAT_PROTOBUF) {
        *resp_content_type = "application/x-protobuf";
        if (ok && partial) {
            Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
                OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
            Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse r =
                OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
            char copy[sizeof res->partial_message];
            memcpy(copy, msg, mlen);
            copy[mlen] = '\0';
            ps.rejected_data_points = (int64_t)res->rejected_points;
            ps.error_message = copy;
            r.partial_success = &ps;
            size_t n =
                opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__get_packed_size(
                    &r);
            if (buf_reserve(&out, n + 1)) return STRATA_ENOMEM;
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__pack(
                &r, out.data);
            out.len = n;
        } else if (!ok) {
            /* google.rpc.Status: 1 code (int32), 2 message (string). */
            buf_putc(&out, 0x08);
            put_varint(&out, (uint64_t)grpc_code(res->http_status));
            buf_putc(&out, 0x12);
            put_varint(&out, mlen);
            buf_append(&out, msg, mlen);
        }
    } else {
        *resp_content_type = "text/plain; charset=utf-8";
        buf_printf(&out, "%.*s\n", (int)mlen, msg);
    }
    if (out.len == 0) {
        buf_free(&out);
        *body = malloc(1); /* an empty body the caller can free like any other */
        if (!*body) return STRATA_ENOMEM;
        return 0;
    }
    if (!out.data) return STRATA_ENOMEM;
    *body = out.data;
    *len = out.len;
    return 0;
}
