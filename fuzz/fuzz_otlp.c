/*
 * fuzz_otlp.c: arbitrary bytes through the OTLP/HTTP metrics decoders and the translation.
 *
 * Each input is fed (1) as a binary ExportMetricsServiceRequest, (2) as an OTLP/JSON body and
 * (3) as a gzip body, and whatever decodes is translated into series exactly as the receiver
 * would before writing them. Besides crashes, leaks and sanitizer findings, the target aborts when
 * a decoder fails without one of its documented codes, when a request that decoded fails to
 * translate for anything but its memory budget, or when the binary decoder's result does not
 * survive a round trip: packed again by protobuf-c and decoded again, it must translate to the
 * same series and samples, bit for bit. No database is involved, so runs are fast and stateless.
 */
#include "ingest/ingest.h"
#include "otlp_metrics_service.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_otlp: %s\n", what);
        abort();
    }
}

static bool decode_rc_ok(int rc)
{
    return rc == 0 || rc == STRATA_EINVAL || rc == STRATA_ELIMIT;
}

static void same_batches(const otlp_batch *a, const otlp_batch *b)
{
    check(a->n_series == b->n_series && a->n_info == b->n_info, "round trip: series count");
    check(a->n_points == b->n_points && a->n_samples == b->n_samples, "round trip: point count");
    check(a->rejected_points == b->rejected_points, "round trip: rejected count");
    for (size_t i = 0; i < a->n_series; i++) {
        const write_series *x = &a->series[i], *y = &b->series[i];
        check(labels_equal(x->labels, x->n_labels, y->labels, y->n_labels), "round trip: labels");
        check(x->n_samples == y->n_samples, "round trip: samples per series");
        for (size_t k = 0; k < x->n_samples; k++) {
            check(x->samples[k].t == y->samples[k].t, "round trip: timestamp");
            check(memcmp(&x->samples[k].v, &y->samples[k].v, sizeof(double)) == 0,
                  "round trip: value bits");
        }
    }
}

/* Translates req, checking the outcome; returns whether *b holds a batch. */
static bool translate(const otlp_export_request *req, size_t size, otlp_batch *b)
{
    char err[STRATA_ERRMSG_SIZE];
    otlp_batch_init(b);
    int rc = otlp_translate(req, NULL, size, b, err);
    check(rc == 0 || rc == STRATA_ELIMIT, "translate failed with an undocumented code");
    if (rc) otlp_batch_free(b);
    return rc == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[STRATA_ERRMSG_SIZE];
    /* A copy, so that reading past the input is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);

    /* (1) Binary protobuf, then the round trip through protobuf-c's packer. */
    arena a;
    arena_init(&a, 0);
    otlp_export_request *req;
    int rc = otlp_decode_pb(copy, size, &a, &req, err);
    check(decode_rc_ok(rc), "protobuf decode failed with an undocumented code");
    otlp_batch b1;
    if (rc == 0 && translate(req, size, &b1)) {
        size_t n =
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
                req);
        uint8_t *again = malloc(n ? n : 1);
        if (again) {
            opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(
                req, again);
            arena a2;
            arena_init(&a2, 0);
            otlp_export_request *req2;
            /* The re-packed message may be larger (packed repeats, canonical order), so its
             * budget differs: only a successful decode is compared. */
            int rc2 = otlp_decode_pb(again, n, &a2, &req2, err);
            check(rc2 == 0 || rc2 == STRATA_ELIMIT, "re-packed request does not decode");
            otlp_batch b2;
            if (rc2 == 0 && translate(req2, size, &b2)) {
                same_batches(&b1, &b2);
                otlp_batch_free(&b2);
            }
            arena_free(&a2);
            free(again);
        }
        otlp_batch_free(&b1);
    }
    arena_free(&a);

    /* (2) OTLP/JSON. */
    arena_init(&a, 0);
    rc = otlp_decode_json(copy, size, &a, &req, err);
    check(decode_rc_ok(rc), "json decode failed with an undocumented code");
    if (rc == 0 && translate(req, size, &b1)) otlp_batch_free(&b1);
    arena_free(&a);

    /* (3) gzip, with a small limit so that bombs stay cheap. */
    buf out = {0};
    rc = otlp_gunzip(copy, size, 1 << 20, &out, err);
    check(decode_rc_ok(rc), "gunzip failed with an undocumented code");
    check(rc != 0 || out.len <= (1 << 20), "gunzip exceeded its limit");
    buf_free(&out);

    /* (4) The headers parser on the input as a string. */
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = '\0';
        otlp_format fmt;
        bool gz;
        rc = otlp_check_headers(text, text, &fmt, &gz, err);
        check(rc == 0 || rc == STRATA_EUNSUPPORTED,
              "header check failed with an undocumented code");
        free(text);
    }
    free(copy);
    return 0;
}
