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
 *  - Native histograms (TimeSeries.histograms) are not stored yet. The float samples of such a
 *    request are stored as usual, then the call returns STRATA_EUNSUPPORTED, HTTP 400, with
 *    "native histograms are not supported yet: ..." saying how many were dropped, so the loss is
 *    never silent (the sender logs it and does not retry).
 *  - Exemplars and metadata (WriteRequest.metadata) are checked for well-formedness and counted,
 *    then ignored; they are not errors.
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

/* A decoded WriteRequest. Everything it points to (series, labels, samples, label bytes) is owned
 * by the scratch that decoded it and stays valid until the next decode with that scratch, or
 * ingest_scratch_free. Labels point into the decompressed body (not NUL-terminated). */
typedef struct ingest_rw_request {
    write_series *series; /* one per TimeSeries, in request order, including ones without samples */
    size_t n_series;
    size_t n_labels;      /* over all series */
    size_t n_samples;     /* float samples over all series */
    size_t n_histograms;  /* native-histogram samples (not stored yet) */
    size_t n_exemplars;   /* ignored */
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
 * samples only) with protobuf-c, snappy-compressed when compress is true, and appends the bytes to
 * out. Labels are written up to their first NUL byte, and a value of -0.0 goes out as 0.0 (proto3
 * omits a double equal to its default; Prometheus' own encoder does the same). For tests and the
 * load generator.
 */
int ingest_rw_encode(const write_series *series, size_t n, bool compress, buf *out, char *err);

#endif
