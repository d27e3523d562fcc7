/*
 * ingest_internal.h: definitions shared by the files of the ingest module and nobody else.
 */
#ifndef STRATA_INGEST_INTERNAL_H
#define STRATA_INGEST_INTERNAL_H

#include "ingest/ingest.h"

/* Buffers larger than this after a request are freed rather than kept for the next one, so one
 * huge request does not pin its memory to a connection thread for good. */
#define INGEST_SCRATCH_KEEP ((size_t)4 << 20)

struct ingest_scratch {
    buf body;      /* the decompressed protobuf message */
    label *labels; /* every label of the request, series after series */
    size_t labels_cap;
    strata_sample *samples; /* every float sample of the request, series after series */
    size_t samples_cap;
    write_series *series; /* labels and samples pointers are set once the whole body is read,
                           * since the arrays above may move while they grow */
    size_t series_cap;
    hist_sample *hists; /* every native-histogram sample of the request, series after series */
    size_t hists_cap;
    arena hist_mem; /* the histograms' spans and buckets; reset by every decode */
};

/* Converts a protobuf-c Histogram message (remote write 1.0 prometheus.Histogram or 2.0
 * io.prometheus.write.v2.Histogram: same field names) into a hist_sample with its arrays from the
 * arena A, exactly as the hand-written decoder does: the count oneof decides the flavour (a float
 * count makes a float histogram, anything else an integer one); an integer histogram takes its
 * buckets from the deltas and its counts from the *_int members (0 when the oneof holds the
 * other kind), a float histogram from the counts and the *_float members; a reset hint outside
 * 0..3 reads as UNKNOWN. Defines `static int FN(const PBT *PB, arena *A, hist_sample *OUT)`
 * returning 0 or STRATA_ENOMEM. */
#define INGEST_DEFINE_PB_HISTOGRAM_CONVERT(FN, PBT, FLOAT_CASE, ZERO_FLOAT_CASE)                    \
    static int FN(const PBT *PB, arena *A, hist_sample *OUT)                                       \
    {                                                                                              \
        int rc_ = 0;                                                                               \
        hist_sample *o_ = (OUT);                                                                   \
        memset(o_, 0, sizeof *o_);                                                                 \
        native_histogram *h_ = &o_->h;                                                             \
        bool f_ = (PB)->count_case == (FLOAT_CASE);                                                \
        bool zf_ = (PB)->zero_count_case == (ZERO_FLOAT_CASE);                                     \
        o_->t = (PB)->timestamp;                                                                   \
        h_->is_int = !f_;                                                                          \
        h_->schema = (PB)->schema;                                                                 \
        h_->reset_hint = (PB)->reset_hint >= 0 && (PB)->reset_hint <= 3 ? (uint8_t)(PB)->reset_hint \
                                                                        : 0;                        \
        h_->sum = (PB)->sum;                                                                       \
        h_->zero_threshold = (PB)->zero_threshold;                                                 \
        if (f_) {                                                                                  \
            h_->count = (PB)->count_float;                                                         \
            h_->zero_count = zf_ ? (PB)->zero_count_float : 0;                                     \
        } else {                                                                                   \
            h_->count = (PB)->count_case ? (double)(PB)->count_int : 0;                            \
            h_->zero_count = (PB)->zero_count_case && !zf_ ? (double)(PB)->zero_count_int : 0;     \
        }                                                                                          \
        size_t np_ = f_ ? (PB)->n_positive_counts : (PB)->n_positive_deltas;                       \
        size_t nn_ = f_ ? (PB)->n_negative_counts : (PB)->n_negative_deltas;                       \
        h_->pos_spans = arena_alloc((A), ((PB)->n_positive_spans + 1) * sizeof(hist_span));        \
        h_->neg_spans = arena_alloc((A), ((PB)->n_negative_spans + 1) * sizeof(hist_span));        \
        h_->pos_buckets = arena_alloc((A), (np_ + 1) * sizeof(double));                            \
        h_->neg_buckets = arena_alloc((A), (nn_ + 1) * sizeof(double));                            \
        h_->custom_values = arena_alloc((A), ((PB)->n_custom_values + 1) * sizeof(double));        \
        if (!h_->pos_spans || !h_->neg_spans || !h_->pos_buckets || !h_->neg_buckets ||            \
            !h_->custom_values)                                                                    \
            rc_ = STRATA_ENOMEM;                                                                   \
        for (size_t k_ = 0; !rc_ && k_ < (PB)->n_positive_spans; k_++)                             \
            h_->pos_spans[k_] = (hist_span){(PB)->positive_spans[k_]->offset,                      \
                                            (PB)->positive_spans[k_]->length};                     \
        for (size_t k_ = 0; !rc_ && k_ < (PB)->n_negative_spans; k_++)                             \
            h_->neg_spans[k_] = (hist_span){(PB)->negative_spans[k_]->offset,                      \
                                            (PB)->negative_spans[k_]->length};                     \
        uint64_t acc_ = 0;                                                                         \
        for (size_t k_ = 0; !rc_ && k_ < np_; k_++) {                                              \
            if (f_) {                                                                              \
                h_->pos_buckets[k_] = (PB)->positive_counts[k_];                                   \
            } else {                                                                               \
                acc_ += (uint64_t)(PB)->positive_deltas[k_];                                       \
                h_->pos_buckets[k_] = (double)(int64_t)acc_;                                       \
            }                                                                                      \
        }                                                                                          \
        acc_ = 0;                                                                                  \
        for (size_t k_ = 0; !rc_ && k_ < nn_; k_++) {                                              \
            if (f_) {                                                                              \
                h_->neg_buckets[k_] = (PB)->negative_counts[k_];                                   \
            } else {                                                                               \
                acc_ += (uint64_t)(PB)->negative_deltas[k_];                                       \
                h_->neg_buckets[k_] = (double)(int64_t)acc_;                                       \
            }                                                                                      \
        }                                                                                          \
        for (size_t k_ = 0; !rc_ && k_ < (PB)->n_custom_values; k_++)                              \
            h_->custom_values[k_] = (PB)->custom_values[k_];                                       \
        h_->n_pos_spans = (uint32_t)(PB)->n_positive_spans;                                        \
        h_->n_neg_spans = (uint32_t)(PB)->n_negative_spans;                                        \
        h_->n_pos_buckets = (uint32_t)np_;                                                         \
        h_->n_neg_buckets = (uint32_t)nn_;                                                         \
        h_->n_custom_values = (uint32_t)(PB)->n_custom_values;                                     \
        return rc_;                                                                                \
    }

/* Decodes a snappy-compressed remote write 2.0 Request; everything lives in a. */
int ingest_rw2_decode(const uint8_t *body, size_t len, arena *a, ingest_rw_request *out, char *err);

/* Frees whichever buffers of s grew past INGEST_SCRATCH_KEEP. */
void ingest_scratch_trim(ingest_scratch *s);

#endif
