/*
 * ingest.h: the public face of the ingest module: Prometheus remote write 1.0 in, write_series out.
 *
 * The HTTP layer hands the raw body and two headers to ingest_remote_write, which checks the
 * headers, undoes snappy, decodes the protobuf WriteRequest and calls db_write. Decoding is split
 * out (ingest_rw_decode) so it can be tested and fuzzed without a database.
 *
 * Whole-request semantics (what a sender sees):
 *  - A bad Content-Encoding or Content-Type (anything but snappy remote write 1.0 or 2.0):
 *    STRATA_EUNSUPPORTED, HTTP 415, nothing decoded. Remote write 2.0
 *    (proto=io.prometheus.write.v2.Request) is decoded from its symbol table and then follows the
 *    same rules; the HTTP layer adds the X-Prometheus-Remote-Write-*-Written headers.
 *  - Undecodable snappy or protobuf: STRATA_EINVAL, HTTP 400, nothing stored. A body that would
 *    decode to more than INGEST_RW_MAX_DECODED bytes: STRATA_ELIMIT, HTTP 413.
 *  - Any invalid label set (unsorted, duplicate or empty name, invalid UTF-8, no labels) rejects
 *    the whole request: STRATA_EINVAL, HTTP 400, nothing stored. The message starts "series N: "
 *    with N the index of the TimeSeries in the request.
 *  - Out-of-order and conflicting samples (same timestamp, other value) are skipped while every
 *    valid sample of the request is stored (db_write does that): STRATA_EOUTOFORDER or
 *    STRATA_EDUPLICATE, HTTP 400 with the message, as Prometheus answers. Re-sending a series'
 *    newest sample with the same value (bit for bit) is not an error: it is counted as a duplicate
 *    and stored once. Older samples of a re-sent request are out of order, as in Prometheus.
 *  - Native histograms (TimeSeries.histograms, integer and float, exponential and custom-bucket)
 *    are decoded into write_series.histograms and stored by db_write like float samples. A
 *    malformed histogram (spans and buckets disagree, bad schema, negative counts, ...) is an
 *    invalid sample: STRATA_EINVAL, HTTP 400, nothing from the request stored.
 *  - Exemplars are stored (db_write_exemplars, after the samples) in the exemplar store; one
 *    that cannot be stored (too long, out of order, for a series without samples) is counted in
 *    res->exemplars and logged, never an error for the request, as in Prometheus. Metadata
 *    (WriteRequest.metadata) is checked for well-formedness and counted, then ignored.
 *  - Success: 0, HTTP 204.
 *
 * Threads: an ingest_scratch belongs to one thread at a time (the HTTP server keeps one per
 * connection thread); everything else here is stateless and thread-safe.
 */
#ifndef STRATA_INGEST_H
#define STRATA_INGEST_H

#include "core/core.h"
#include "storage/storage.h"
#include "strata.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest WriteRequest accepted after snappy: 32 MiB. Prometheus sends at most a few MiB
 * (2000 samples per request by default), and the decoded form costs about 12x the encoded size in
 * the worst case, so this bounds a request's memory at a few hundred MiB. */
#define INGEST_RW_MAX_DECODED ((size_t)32 << 20)

/* Per-thread reusable memory: the decompression buffer and the label, sample and series arrays
 * the decoder fills. Buffers keep their size between requests (so the steady state allocates
 * nothing) unless one request made them larger than 4 MiB, which is given back afterwards. */
typedef struct ingest_scratch ingest_scratch;

/* Returns a new scratch the caller owns and frees with ingest_scratch_free; NULL on ENOMEM. */
ingest_scratch *ingest_scratch_new(void);
/* Frees the scratch and everything a decode left in it. NULL is allowed. */
void ingest_scratch_free(ingest_scratch *s);

/* An exemplar of a decoded request: series is the index of its series in the request. Labels as
 * the request sent them (owned like the series' labels). */
typedef struct ingest_exemplar {
    size_t series;
    const label *labels;
    size_t n_labels;
    int64_t t;
    double v;
} ingest_exemplar;

/* A decoded WriteRequest. Everything it points to (series, labels, samples, label bytes) is owned
 * by the scratch that decoded it and stays valid until the next decode with that scratch, or
 * ingest_scratch_free. Labels point into the decompressed body (not NUL-terminated). */
typedef struct ingest_rw_request {
    write_series *series; /* one per TimeSeries, in request order, including ones without samples */
    size_t n_series;
    size_t n_labels;      /* over all series */
    size_t n_samples;     /* float samples over all series */
    size_t n_histograms;  /* native-histogram samples over all series */
    size_t n_exemplars;   /* over all series */
    ingest_exemplar *exemplars; /* n_exemplars of them, in request order */
    size_t n_metadata;    /* WriteRequest.metadata entries (ignored) */
    size_t decoded_bytes; /* size of the protobuf message */
} ingest_rw_request;

/* Checks the Content-Encoding and Content-Type headers of a remote-write POST (either may be NULL
 * for absent). Accepts snappy (or absent, as Prometheus does) and application/x-protobuf (or
 * absent, or with proto=prometheus.WriteRequest). Anything else, remote write 2.0 included, is
 * STRATA_EUNSUPPORTED with a message saying what to send instead. */
int ingest_rw_check_headers(const char *content_encoding, const char *content_type, char *err);

/* Decodes a snappy-compressed WriteRequest body into *out (owned by s, see above). Labels are
 * decoded, not validated: that is db_write's job. STRATA_EINVAL ("snappy: ...", "protobuf: cannot
 * decode WriteRequest: ...") or STRATA_ELIMIT (too large) on failure. */
int ingest_rw_decode(const uint8_t *body, size_t len, ingest_scratch *s, ingest_rw_request *out,
                     char *err);

/* As ingest_rw_decode for an uncompressed protobuf WriteRequest. The message bytes must stay
 * valid and unchanged while *out is used: labels point into them. */
int ingest_rw_decode_pb(const uint8_t *pb, size_t len, ingest_scratch *s, ingest_rw_request *out,
                        char *err);

/* The reference decoder: protobuf-c's generated unpacker with every allocation taken from the
 * arena a, then the same *out as ingest_rw_decode_pb (series, labels and samples owned by a; label
 * strings NUL-terminated, so a value holding a NUL byte reads shorter than it is). About 15 times
 * slower than the hand-written decoder; tests and the fuzzer compare the two. */
int ingest_rw_decode_reference(const uint8_t *pb, size_t len, arena *a, ingest_rw_request *out,
                               char *err);

/* What one remote-write request did. */
typedef struct ingest_rw_result {
    strata_write_result write; /* what db_write did; all zero when it was not called */
    int http_status;           /* the status to answer with: 204, 400, 413, 415, 429, 500, 503 */
    int version;               /* 1 or 2 (proto=io.prometheus.write.v2.Request) */
    ingest_rw_request req;     /* the counts of the decoded request (its pointers are not valid
                                * after the call) */
    exemplar_write_result exemplars; /* what happened to the request's exemplars */
} ingest_rw_result;

/*
 * Handles one remote-write 1.0 POST body: checks the headers, decodes with scratch and writes with
 * db_write(require_sorted = true); see the top of this file for what is stored on each outcome.
 * res (required) receives the counts and the HTTP status to answer with; rej (may be NULL)
 * receives the first rejected sample; err receives the message to put in a non-2xx body.
 * Returns 0 or the STRATA_E* code of the first problem.
 */
int ingest_remote_write(strata_db *db, const uint8_t *body, size_t len,
                        const char *content_encoding, const char *content_type,
                        ingest_scratch *scratch, ingest_rw_result *res, write_reject *rej,
                        char *err);

/*
 * Encodes series as a WriteRequest (one TimeSeries per entry, labels in the order given, float
 * samples and native histograms: integer ones as count_int and bucket deltas, float ones as
 * count_float and absolute counts) with protobuf-c, snappy-compressed when compress is true, and appends the bytes to
 * out. Labels are written up to their first NUL byte, and a value of -0.0 goes out as 0.0 (proto3
 * omits a double equal to its default; Prometheus' own encoder does the same). For tests and the
 * load generator.
 */
int ingest_rw_encode(const write_series *series, size_t n, bool compress, buf *out, char *err);

/* ==== protobuf-c with a memory budget and reasons (pb_unpack.c)
 * ==================================== */

/* protobuf-c's descriptor type (protobuf-c/protobuf-c.h). */
struct ProtobufCMessageDescriptor;

/* Checks that pb is a well-formed message of type root (wire types, extents, nesting at most
 * OTLP_MAX_DEPTH, strings UTF-8 without NUL): 0, or STRATA_EINVAL naming the field and byte
 * offset ("protobuf: field Request.timeseries (5) at byte 3 has wire type 0, expected 2").
 * otlp.c's pre-scan. */
int ingest_pb_check(const uint8_t *pb, size_t len, const struct ProtobufCMessageDescriptor *root,
                    char *err);

/* Unpacks a message of type d with protobuf-c, every allocation from a (*out is owned by the
 * arena) within the OTLP budget for len bytes. STRATA_ELIMIT past the budget; STRATA_EINVAL with
 * ingest_pb_check's reason ("protobuf: cannot decode <type>: ...") when the bytes are not one. */
int ingest_pb_unpack(const struct ProtobufCMessageDescriptor *d, const uint8_t *pb, size_t len,
                     arena *a, void **out, char *err);
/* One histogram sample as a protobuf-c prometheus.Histogram (remote.pb-c.h), as ingest_rw_encode
 * writes it (integer: count_int and bucket deltas; float: count_float and counts). Everything,
 * the message included, is allocated from a; the spans and custom bounds may point into hs. NULL
 * on ENOMEM. For remote read. */
struct Prometheus__Histogram *ingest_rw_histogram_pb(arena *a, const hist_sample *hs);

/* ==== OTLP metrics over HTTP (POST /v1/metrics) ============================================== */
/*
 * OpenTelemetry's OTLP/HTTP metrics export, mapped to series the way Prometheus' OTLP receiver
 * maps it (storage/remote/otlptranslator), then stored with db_write. Implemented in otlp.c
 * (headers, gzip, protobuf, translation, response) and otlp_json.c (OTLP/JSON).
 *
 * What a sender sees:
 *  - Content-Type application/x-protobuf or application/json (parameters such as charset are
 *    allowed), Content-Encoding gzip or none (absent, empty or "identity"). Anything else:
 *    STRATA_EUNSUPPORTED, HTTP 415, with a message naming what to send.
 *  - A body over OTLP_MAX_DECODED bytes after gzip, or one whose decoded form would need more
 *    memory than its budget (hostile repetition): STRATA_ELIMIT, HTTP 413. Corrupt gzip,
 *    undecodable protobuf or JSON, strings that are not UTF-8 or hold a NUL byte, nesting deeper
 *    than OTLP_MAX_DEPTH: STRATA_EINVAL, HTTP 400, nothing stored. An empty body is an empty
 *    request: HTTP 200.
 *  - Otherwise HTTP 200 with an ExportMetricsServiceResponse in the request's format. Points that
 *    cannot be stored are counted in partial_success.rejected_data_points with the reasons in
 *    error_message, and everything else is stored: delta temporality, exponential histograms
 *    with a scale below -4 or that are not valid native histograms (count differing from the
 *    buckets', ...), unspecified temporality, points without a value or
 *    a timestamp, attribute names that translate to nothing, non-increasing histogram bounds,
 *    label sets the database refuses (limits), and samples the database skips (out of order,
 *    conflicting, too old, over a series limit; each such sample counts as one point).
 *  - Database failures: HTTP 500 (ENOMEM, EIO; OTLP clients do not retry it) or 503 (ECLOSED,
 *    ETIMEOUT; OTLP clients retry it with backoff).
 *
 * Mapping (defaults = Prometheus 3.x defaults, UTF-8 names off): names are translated to the
 * legacy character set with unit and type suffixes (http.server.duration + "s" + histogram ->
 * http_server_duration_seconds_bucket/_sum/_count; monotonic cumulative Sum -> *_total; Gauge
 * with unit "1" -> *_ratio); resource service.namespace/service.name -> job, service.instance.id
 * -> instance, the other resource attributes -> target_info{job, instance, ...} = 1; point
 * attributes -> labels (sanitised; colliding names have their values joined with ';').
 * NO_RECORDED_VALUE -> Prometheus' staleness marker. Timestamps ns -> ms. ExponentialHistogram ->
 * integer native histogram named like the base of a classic histogram (unit suffix, no _bucket):
 * scale -> schema (scales above 8 are reduced to 8 by merging 2^(scale-8) neighbouring buckets),
 * bucket index + 1 (OTLP's bucket i is (base^i, base^(i+1)], Prometheus' is (base^(i-1), base^i]),
 * gaps up to two buckets filled with zeros, zero threshold 1e-128 as Prometheus sets it, reset
 * hint unknown, no sum when the point has none.
 */

/* The largest request accepted after gzip: OTLP's recommended 64 MiB. */
#define OTLP_MAX_DECODED ((size_t)64 << 20)
/* Deepest nesting accepted: protobuf message levels, or JSON object/array levels. An attribute
 * value may nest arrays and maps without end on the wire; nothing legitimate nests this deep. */
#define OTLP_MAX_DEPTH 64

typedef enum otlp_format {
    OTLP_FORMAT_PROTOBUF = 1, /* application/x-protobuf */
    OTLP_FORMAT_JSON = 2,     /* application/json (OTLP/JSON) */
} otlp_format;

/* Translation choices; all zero (or a NULL pointer) gives Prometheus' defaults. */
typedef struct otlp_options {
    bool allow_utf8;     /* keep metric and label names as sent (needs a database opened with
                          * STRATA_NAMES_UTF8), as Prometheus' NoUTF8EscapingWithSuffixes */
    bool no_suffixes;    /* do not add unit, _total and _ratio suffixes */
    bool promote_scope;  /* add otel_scope_name, otel_scope_version, otel_scope_schema_url and
                          * otel_scope_<attribute> labels */
    bool no_target_info; /* do not write target_info series */
} otlp_options;

/* What one POST /v1/metrics did. */
typedef struct otlp_result {
    strata_write_result write; /* what the database did, target_info writes included */
    uint64_t rejected_points;  /* partial_success.rejected_data_points */
    /* partial_success.error_message when the call returns 0 (empty when nothing was rejected);
     * the error message (as in err) when it does not. */
    char partial_message[512];
    int http_status; /* 200, 400, 413, 415, 500 or 503 */
    exemplar_write_result exemplars; /* what the exemplar store did with the request's exemplars */
} otlp_result;

/* The protobuf-c message of a decoded request (defined in the generated
 * otlp_metrics_service.pb-c.h; only a pointer is needed here). */
typedef struct Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest
    otlp_export_request;

/* Checks the Content-Type and Content-Encoding of an OTLP/HTTP request (NULL = absent) and says
 * which format and whether the body is gzipped. STRATA_EUNSUPPORTED with a message otherwise. */
int otlp_check_headers(const char *content_type, const char *content_encoding, otlp_format *fmt,
                       bool *gzip, char *err);

/* Gunzips in (one or more concatenated gzip members) and appends the bytes to out, which the
 * caller owns. STRATA_EINVAL for corrupt or truncated input, STRATA_ELIMIT past limit bytes. */
int otlp_gunzip(const uint8_t *in, size_t len, size_t limit, buf *out, char *err);

/* Decodes a binary ExportMetricsServiceRequest. Every allocation comes from a (so *out is owned
 * by the arena and dies with it), capped at a budget proportional to len. STRATA_EINVAL with the
 * reason (truncated, wrong wire type, invalid UTF-8, too deep) or STRATA_ELIMIT. */
int otlp_decode_pb(const uint8_t *pb, size_t len, arena *a, otlp_export_request **out, char *err);

/* Decodes an OTLP/JSON ExportMetricsServiceRequest into the same protobuf-c structures (owned by
 * a). Keys are lowerCamelCase (the proto field names are accepted too, unknown keys ignored),
 * 64-bit integers are strings or numbers, enums integers (or their names), traceId/spanId hex,
 * other bytes base64. STRATA_EINVAL with the reason, or STRATA_ELIMIT for a body whose parse tree
 * would be too large. */
int otlp_decode_json(const uint8_t *json, size_t len, arena *a, otlp_export_request **out,
                     char *err);

/* A translated request: what to hand to db_write. Everything is owned by the batch. */
typedef struct otlp_batch {
    arena mem;               /* labels, label strings, series */
    strata_sample *samples;  /* every sample, series after series (malloc'd) */
    hist_sample *hists;      /* every native-histogram sample, series after series (malloc'd;
                              * their arrays live in mem) */
    write_series *series;    /* the data series; each one's samples in time order */
    size_t n_series;
    write_series *info;      /* the target_info series */
    size_t n_info;
    uint64_t n_points;        /* OTLP data points seen */
    uint64_t n_samples;       /* samples produced from them (target_info excluded) */
    uint64_t rejected_points; /* points refused by the translation */
    char message[512];        /* why, when rejected_points > 0 */
    ingest_exemplar *exemplars; /* of sums and histogram buckets; series indexes into series[]
                                 * (malloc'd; labels in mem) */
    size_t n_exemplars;
} otlp_batch;

void otlp_batch_init(otlp_batch *b);
/* Frees everything the batch holds and leaves it empty (initialised) again. */
void otlp_batch_free(otlp_batch *b);

/* Translates a decoded request into series (opts may be NULL). source_bytes, the size of the body
 * it was decoded from, sets the memory budget of the translation (STRATA_ELIMIT past it). */
int otlp_translate(const otlp_export_request *req, const otlp_options *opts, size_t source_bytes,
                   otlp_batch *b, char *err);

/* -- shared by otlp.c and otlp_json.c -- */

/* The most memory the json-c parse tree of one body may take (estimated before parsing, since
 * json-c has no allocator hook): 1 GiB, about a 25 MiB OTLP/JSON body of typical content. */
#define OTLP_JSON_MAX_TREE ((size_t)1 << 30)

/* The memory budget of one decode: allocations from an arena that fail once the arena has grown
 * past limit bytes (1 MiB plus 32 bytes per source byte, at most 2 GiB), so hostile repetition
 * (millions of empty sub-messages) fails with STRATA_ELIMIT instead of exhausting memory. */
typedef struct otlp_budget {
    arena *a;
    size_t limit;
    bool exceeded; /* an allocation failed because of the limit (not ENOMEM) */
} otlp_budget;

void otlp_budget_init(otlp_budget *b, arena *a, size_t source_bytes);
/* n bytes from the arena (owned by it), or NULL past the budget or on ENOMEM. */
void *otlp_budget_alloc(otlp_budget *b, size_t n);
/* The error for a failed otlp_budget_alloc: STRATA_ELIMIT or STRATA_ENOMEM, with a message. */
int otlp_budget_error(const otlp_budget *b, char *err);

/* Handles one POST /v1/metrics body with Prometheus' default mapping: headers, gzip, decoding,
 * translation, db_write. res (required) receives the counts, the partial-success message and the
 * HTTP status; err the message of a failure. Returns 0 when the answer is 200 (partial success
 * included), else the STRATA_E* code of the failure. */
int otlp_http_metrics(strata_db *db, const uint8_t *body, size_t len, const char *content_type,
                      const char *content_encoding, otlp_result *res, char *err);
/* As otlp_http_metrics with translation options (NULL = defaults). */
int otlp_http_metrics_opts(strata_db *db, const uint8_t *body, size_t len,
                           const char *content_type, const char *content_encoding,
                           const otlp_options *opts, otlp_result *res, char *err);

/* The response body to send for res: for 200 an ExportMetricsServiceResponse (partial_success
 * set when points were rejected or there is a message), otherwise a google.rpc.Status with the
 * message; protobuf or JSON to match the request's content_type (the failure body of a request
 * whose type was refused is text/plain). *body is malloc'd and the caller frees it; *len may be
 * 0; *resp_content_type is a static string. STRATA_ENOMEM on allocation failure. */
int otlp_http_response(const otlp_result *res, const char *content_type, uint8_t **body,
                       size_t *len, const char **resp_content_type);

/* ---- OpenMetrics text (backfill) ------------------------------------------------------------ */

/* Called for each sample line: labels[0] is __name__, the rest as written (not validated or
 * sorted; the strings are NUL-terminated and valid only during the call). A non-zero return
 * stops the parse and is returned. */
typedef int (*om_sample_fn)(void *ctx, label *labels, size_t n, int64_t t_ms, double v, char *err);

/* Parses OpenMetrics text (openmetrics.c): every sample needs a timestamp (seconds, at most
 * millisecond precision); comments are skipped and `# EOF` ends the input. STRATA_EPARSE with
 * the line number for anything malformed. */
int om_parse(const char *text, size_t len, om_sample_fn fn, void *ctx, char *err);

#endif
