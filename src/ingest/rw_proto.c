/*
 * rw_proto.c: remote write through protobuf-c's generated code: the reference decoder and the
 * encoder.
 *
 * The receiver's hot path uses the hand-written decoder (rw_decode.c); these functions exist to
 * check it and to produce requests. The reference decoder runs protobuf-c's unpacker with a
 * ProtobufCAllocator backed by an arena, so its thousands of small allocations are bump
 * allocations freed together, and converts the result to the same ingest_rw_request shape so the
 * tests and the fuzzer can compare the two decoders value for value. The encoder (tests, the load
 * generator) packs with protobuf-c and compresses with snappy, so every round trip through
 * Strata's decoder also crosses an independent implementation of the wire format.
 */
#include "ingest/ingest_internal.h"

#include "remote.pb-c.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

INGEST_DEFINE_PB_HISTOGRAM_CONVERT(convert_histogram, Prometheus__Histogram,
                                   PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT,
                                   PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT)

static void *pbc_arena_alloc(void *data, size_t size)
{
    return arena_alloc(data, size ? size : 1);
}

static void pbc_arena_free(void *data, void *ptr)
{
    /* Everything goes when the arena is reset or freed. */
    (void)data;
    (void)ptr;
}

int ingest_rw_decode_reference(const uint8_t *pb, size_t len, arena *a, ingest_rw_request *out,
                               char *err)
{
    memset(out, 0, sizeof *out);
    ProtobufCAllocator al = {.alloc = pbc_arena_alloc, .free = pbc_arena_free, .allocator_data = a};
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(&al, len, pb);
    if (!wr) return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode WriteRequest");
    size_t n_labels = 0, n_samples = 0, n_hists = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        n_labels += wr->timeseries[i]->n_labels;
        n_samples += wr->timeseries[i]->n_samples;
        n_hists += wr->timeseries[i]->n_histograms;
        out->n_exemplars += wr->timeseries[i]->n_exemplars;
    }
    write_series *ws = arena_alloc(a, (wr->n_timeseries + 1) * sizeof *ws);
    label *lv = arena_alloc(a, (n_labels + 1) * sizeof *lv);
    strata_sample *sv = arena_alloc(a, (n_samples + 1) * sizeof *sv);
    hist_sample *hv = arena_alloc(a, (n_hists + 1) * sizeof *hv);
    if (!ws || !lv || !sv || !hv)
        return strata_errf(err, STRATA_ENOMEM, "out of memory decoding a WriteRequest");
    size_t li = 0, si = 0, hi = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        ws[i] = (write_series){.labels = ts->n_labels ? lv + li : NULL,
                               .n_labels = ts->n_labels,
                               .samples = ts->n_samples ? sv + si : NULL,
                               .n_samples = ts->n_samples,
                               .histograms = ts->n_histograms ? hv + hi : NULL,
                               .n_histograms = ts->n_histograms};
        for (size_t k = 0; k < ts->n_histograms; k++, hi++)
            if (convert_histogram(ts->histograms[k], a, &hv[hi]))
                return strata_errf(err, STRATA_ENOMEM, "out of memory decoding a WriteRequest");
        for (size_t k = 0; k < ts->n_labels; k++, li++) {
            const char *name = ts->labels[k]->name, *value = ts->labels[k]->value;
            lv[li] = (label){.name = name,
                             .value = value,
                             .name_len = (uint32_t)strlen(name),
                             .value_len = (uint32_t)strlen(value)};
        }
        for (size_t k = 0; k < ts->n_samples; k++, si++)
            sv[si] = (strata_sample){.t = ts->samples[k]->timestamp, .v = ts->samples[k]->value};
    }
    out->series = ws;
    out->n_series = wr->n_timeseries;
    out->n_labels = n_labels;
    out->n_samples = n_samples;
    out->n_histograms = n_hists;
    out->n_metadata = wr->n_metadata;
    out->decoded_bytes = len;
    return 0;
}

/* A NUL-terminated copy of a label string in the arena (protobuf-c packs char * strings). */
static char *dup_str(arena *a, const char *s, uint32_t len)
{
    const char *nul = len ? memchr(s, 0, len) : NULL;
    return arena_strndup(a, s, nul ? (size_t)(nul - s) : len);
}

static Prometheus__BucketSpan **encode_spans(arena *a, const hist_span *v, uint32_t n)
{
    Prometheus__BucketSpan *sp = arena_alloc(a, (n + 1) * sizeof *sp);
    Prometheus__BucketSpan **pp = arena_alloc(a, (n + 1) * sizeof *pp);
    if (!sp || !pp) return NULL;
    for (uint32_t i = 0; i < n; i++) {
        prometheus__bucket_span__init(&sp[i]);
        sp[i].offset = v[i].offset;
        sp[i].length = v[i].length;
        pp[i] = &sp[i];
    }
    return pp;
}

/* Integer histograms go out as deltas between consecutive buckets, float ones as counts. */
static bool encode_buckets(arena *a, const native_histogram *h, const double *b, uint32_t n,
                           int64_t **deltas, size_t *n_deltas, double **counts, size_t *n_counts)
{
    if (!h->is_int) {
        *counts = (double *)b;
        *n_counts = n;
        return true;
    }
    int64_t *d = arena_alloc(a, (n + 1) * sizeof *d);
    if (!d) return false;
    int64_t prev = 0;
    for (uint32_t i = 0; i < n; i++) {
        int64_t c = (int64_t)b[i];
        d[i] = (int64_t)((uint64_t)c - (uint64_t)prev);
        prev = c;
    }
    *deltas = d;
    *n_deltas = n;
    return true;
}

struct Prometheus__Histogram *ingest_rw_histogram_pb(arena *a, const hist_sample *hs)
{
    const native_histogram *h = &hs->h;
    Prometheus__Histogram *m = arena_alloc(a, sizeof *m);
    if (!m) return NULL;
    prometheus__histogram__init(m);
    if (h->is_int) {
        m->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        m->count_int = (uint64_t)h->count;
        m->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        m->zero_count_int = (uint64_t)h->zero_count;
    } else {
        m->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
        m->count_float = h->count;
        m->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
        m->zero_count_float = h->zero_count;
    }
    m->sum = h->sum;
    m->schema = h->schema;
    m->zero_threshold = h->zero_threshold;
    m->reset_hint = (Prometheus__Histogram__ResetHint)h->reset_hint;
    m->timestamp = hs->t;
    m->positive_spans = encode_spans(a, h->pos_spans, h->n_pos_spans);
    m->n_positive_spans = h->n_pos_spans;
    m->negative_spans = encode_spans(a, h->neg_spans, h->n_neg_spans);
    m->n_negative_spans = h->n_neg_spans;
    if (!m->positive_spans || !m->negative_spans ||
        !encode_buckets(a, h, h->pos_buckets, h->n_pos_buckets, &m->positive_deltas,
                        &m->n_positive_deltas, &m->positive_counts, &m->n_positive_counts) ||
        !encode_buckets(a, h, h->neg_buckets, h->n_neg_buckets, &m->negative_deltas,
                        &m->n_negative_deltas, &m->negative_counts, &m->n_negative_counts))
        return NULL;
    m->custom_values = h->custom_values;
    m->n_custom_values = h->n_custom_values;
    return m;
}

int ingest_rw_encode(const write_series *series, size_t n, bool compress, buf *out, char *err)
{
    arena a;
    arena_init(&a, 256 * 1024);
    int rc = STRATA_ENOMEM;
    uint8_t *tmp = NULL;
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries *ts = arena_alloc(&a, (n + 1) * sizeof *ts);
    Prometheus__TimeSeries **tsp = arena_alloc(&a, (n + 1) * sizeof *tsp);
    if (!ts || !tsp) goto out;
    for (size_t i = 0; i < n; i++) {
        const write_series *w = &series[i];
        prometheus__time_series__init(&ts[i]);
        tsp[i] = &ts[i];
        Prometheus__Label *lb = arena_alloc(&a, (w->n_labels + 1) * sizeof *lb);
        Prometheus__Label **lbp = arena_alloc(&a, (w->n_labels + 1) * sizeof *lbp);
        Prometheus__Sample *sm = arena_alloc(&a, (w->n_samples + 1) * sizeof *sm);
        Prometheus__Sample **smp = arena_alloc(&a, (w->n_samples + 1) * sizeof *smp);
        if (!lb || !lbp || !sm || !smp) goto out;
        for (size_t k = 0; k < w->n_labels; k++) {
            prometheus__label__init(&lb[k]);
            lb[k].name = dup_str(&a, w->labels[k].name, w->labels[k].name_len);
            lb[k].value = dup_str(&a, w->labels[k].value, w->labels[k].value_len);
            if (!lb[k].name || !lb[k].value) goto out;
            lbp[k] = &lb[k];
        }
        for (size_t k = 0; k < w->n_samples; k++) {
            prometheus__sample__init(&sm[k]);
            sm[k].timestamp = w->samples[k].t;
            sm[k].value = w->samples[k].v;
            smp[k] = &sm[k];
        }
        ts[i].labels = lbp;
        ts[i].n_labels = w->n_labels;
        ts[i].samples = smp;
        ts[i].n_samples = w->n_samples;
        if (w->n_histograms) {
            ts[i].histograms = arena_alloc(&a, w->n_histograms * sizeof *ts[i].histograms);
            if (!ts[i].histograms) goto out;
            for (size_t k = 0; k < w->n_histograms; k++)
                if (!(ts[i].histograms[k] = ingest_rw_histogram_pb(&a, &w->histograms[k])))
                    goto out;
            ts[i].n_histograms = w->n_histograms;
        }
    }
    wr.timeseries = tsp;
    wr.n_timeseries = n;
    size_t plen = prometheus__write_request__get_packed_size(&wr);
    if (!compress) {
        if (buf_reserve(out, plen + 1)) goto out;
        out->len += prometheus__write_request__pack(&wr, out->data + out->len);
        rc = 0;
        goto out;
    }
    tmp = malloc(plen ? plen : 1);
    if (!tmp) goto out;
    prometheus__write_request__pack(&wr, tmp);
    size_t clen = snappy_max_compressed_length(plen);
    if (buf_reserve(out, clen + 1)) goto out;
    if (snappy_compress((const char *)tmp, plen, (char *)out->data + out->len, &clen) !=
        SNAPPY_OK) {
        rc = strata_errf(err, STRATA_EINVAL, "snappy: cannot compress %zu bytes", plen);
        goto out;
    }
    out->len += clen;
    rc = 0;
out:
    if (rc == STRATA_ENOMEM) strata_errf(err, rc, "out of memory encoding a WriteRequest");
    free(tmp);
    arena_free(&a);
    return rc;
}
