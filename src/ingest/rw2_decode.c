/*
 * rw2_decode.c: Prometheus remote write 2.0 (io.prometheus.write.v2.Request) into write_series.
 *
 * Version 2 interns every string in one symbol table and refers to labels by index, so a decoded
 * label is two pointers into the unpacked symbols. The message is unpacked with protobuf-c into
 * the request arena; float samples and native histograms are stored, exemplars and metadata are
 * counted and ignored.
 */
#include "ingest/ingest_internal.h"

#include "remote_v2.pb-c.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

INGEST_DEFINE_PB_HISTOGRAM_CONVERT(convert_histogram, Io__Prometheus__Write__V2__Histogram,
                                   IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_FLOAT,
                                   IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT)

static void *arena_pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}

static void arena_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* freed with the arena */
}

int ingest_rw2_decode(const uint8_t *body, size_t len, arena *a, ingest_rw_request *out, char *err)
{
    memset(out, 0, sizeof *out);
    size_t ulen;
    if (snappy_uncompressed_length((const char *)body, len, &ulen) != SNAPPY_OK)
        return strata_errf(err, STRATA_EINVAL, "snappy: corrupt input (remote write 2.0 body)");
    if (ulen > INGEST_RW_MAX_DECODED)
        return strata_errf(err, STRATA_ELIMIT, "snappy: the body decodes to %zu bytes, more than %zu",
                           ulen, (size_t)INGEST_RW_MAX_DECODED);
    char *raw = arena_alloc(a, ulen + 1);
    if (!raw) return STRATA_ENOMEM;
    if (snappy_uncompress((const char *)body, len, raw, &ulen) != SNAPPY_OK)
        return strata_errf(err, STRATA_EINVAL, "snappy: corrupt input");
    ProtobufCAllocator al = {.alloc = arena_pb_alloc, .free = arena_pb_free, .allocator_data = a};
    Io__Prometheus__Write__V2__Request *req =
        io__prometheus__write__v2__request__unpack(&al, ulen, (const uint8_t *)raw);
    if (!req) return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode io.prometheus.write.v2.Request");
    if (req->n_timeseries && (req->n_symbols == 0 || req->symbols[0][0] != '\0'))
        return strata_errf(err, STRATA_EINVAL, "symbols[0] must be the empty string");
    out->series = arena_alloc(a, (req->n_timeseries + 1) * sizeof *out->series);
    if (!out->series) return STRATA_ENOMEM;
    for (size_t i = 0; i < req->n_timeseries; i++) {
        Io__Prometheus__Write__V2__TimeSeries *ts = req->timeseries[i];
        if (ts->n_labels_refs % 2)
            return strata_errf(err, STRATA_EINVAL, "series %zu: odd number of labels_refs", i);
        size_t nl = ts->n_labels_refs / 2;
        label *ls = arena_alloc(a, (nl + 1) * sizeof *ls);
        strata_sample *ss = arena_alloc(a, (ts->n_samples + 1) * sizeof *ss);
        hist_sample *hs = arena_alloc(a, (ts->n_histograms + 1) * sizeof *hs);
        if (!ls || !ss || !hs) return STRATA_ENOMEM;
        for (size_t k = 0; k < ts->n_histograms; k++)
            if (convert_histogram(ts->histograms[k], a, &hs[k])) return STRATA_ENOMEM;
        for (size_t k = 0; k < nl; k++) {
            uint32_t nr = ts->labels_refs[2 * k], vr = ts->labels_refs[2 * k + 1];
            if (nr >= req->n_symbols || vr >= req->n_symbols)
                return strata_errf(err, STRATA_EINVAL,
                                   "series %zu: label reference %u is past the %zu symbols", i,
                                   nr >= req->n_symbols ? nr : vr, req->n_symbols);
            ls[k] = (label){.name = req->symbols[nr], .value = req->symbols[vr],
                            .name_len = (uint32_t)strlen(req->symbols[nr]),
                            .value_len = (uint32_t)strlen(req->symbols[vr])};
        }
        for (size_t k = 0; k < ts->n_samples; k++)
            ss[k] = (strata_sample){.t = ts->samples[k]->timestamp, .v = ts->samples[k]->value};
        out->series[i] = (write_series){.labels = ls, .n_labels = nl, .samples = ss,
                                        .n_samples = ts->n_samples, .histograms = hs,
                                        .n_histograms = ts->n_histograms};
        out->n_labels += nl;
        out->n_samples += ts->n_samples;
        out->n_histograms += ts->n_histograms;
        out->n_exemplars += ts->n_exemplars;
        out->n_metadata += ts->metadata != NULL;
    }
    out->n_series = req->n_timeseries;
    out->decoded_bytes = ulen;
    return 0;
}
