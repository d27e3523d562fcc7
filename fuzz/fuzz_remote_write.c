/*
 * fuzz_remote_write.c: arbitrary bytes through the remote-write decoders, two ways.
 *
 * Each input is fed (1) as an HTTP body through snappy and the hand-written protobuf decoder, as
 * the receiver does, and (2) as raw protobuf straight into the hand-written decoder and into
 * protobuf-c's generated unpacker (the reference). Besides crashes, leaks and sanitizer findings,
 * the target aborts when the two protobuf decoders disagree: on whether the bytes are a valid
 * WriteRequest, on any count, label, sample or native histogram (bit for bit). That is what lets the fast decoder claim it accepts
 * exactly the wire format that remote.proto describes. The scratch is kept across inputs, as a
 * server thread keeps it across requests.
 */
#include "ingest/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "decoders disagree: %s\n", what);
        abort();
    }
}

static void compare(const ingest_rw_request *a, const ingest_rw_request *b)
{
    check(a->n_series == b->n_series, "series count");
    check(a->n_labels == b->n_labels, "label count");
    check(a->n_samples == b->n_samples, "sample count");
    check(a->n_histograms == b->n_histograms, "histogram count");
    check(a->n_exemplars == b->n_exemplars, "exemplar count");
    check(a->n_metadata == b->n_metadata, "metadata count");
    for (size_t i = 0; i < a->n_series; i++) {
        const write_series *x = &a->series[i], *y = &b->series[i];
        check(x->n_labels == y->n_labels, "labels per series");
        check(x->n_samples == y->n_samples, "samples per series");
        check(x->n_histograms == y->n_histograms, "histograms per series");
        for (size_t k = 0; k < x->n_histograms; k++) {
            check(x->histograms[k].t == y->histograms[k].t, "histogram timestamp");
            check(native_histogram_identical(&x->histograms[k].h, &y->histograms[k].h),
                  "histogram contents");
        }
        for (size_t k = 0; k < x->n_labels; k++) {
            const label *l = &x->labels[k], *r = &y->labels[k];
            /* The reference's strings end at the first NUL byte; ours keep their length. */
            uint32_t nl = l->name_len, vl = l->value_len;
            const char *nz = nl ? memchr(l->name, 0, nl) : NULL;
            const char *vz = vl ? memchr(l->value, 0, vl) : NULL;
            if (nz) nl = (uint32_t)(nz - l->name);
            if (vz) vl = (uint32_t)(vz - l->value);
            check(nl == r->name_len && memcmp(l->name, r->name, nl) == 0, "label name");
            check(vl == r->value_len && memcmp(l->value, r->value, vl) == 0, "label value");
        }
        for (size_t k = 0; k < x->n_samples; k++) {
            check(x->samples[k].t == y->samples[k].t, "sample timestamp");
            check(memcmp(&x->samples[k].v, &y->samples[k].v, sizeof(double)) == 0,
                  "sample value bits");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ingest_scratch *scratch;
    if (!scratch) scratch = ingest_scratch_new();
    char err[STRATA_ERRMSG_SIZE];
    ingest_rw_request req;

    /* (1) The receiver's path: snappy, then protobuf. */
    int rc = ingest_rw_decode(data, size, scratch, &req, err);
    if (rc != 0 && rc != STRATA_EINVAL && rc != STRATA_ELIMIT) abort();

    /* (2) Raw protobuf into both decoders. A copy, so that reading past the input is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    rc = ingest_rw_decode_pb(copy, size, scratch, &req, err);
    arena a;
    arena_init(&a, 0);
    ingest_rw_request ref;
    char rerr[STRATA_ERRMSG_SIZE];
    int rrc = ingest_rw_decode_reference(copy, size, &a, &ref, rerr);
    if (rc != rrc) {
        fprintf(stderr, "hand-written: %d (%s), reference: %d (%s)\n", rc, rc ? err : "", rrc,
                rrc ? rerr : "");
        abort();
    }
    if (rc == 0) compare(&req, &ref);
    arena_free(&a);
    free(copy);
    return 0;
}
