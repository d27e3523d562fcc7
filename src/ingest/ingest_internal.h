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
    label *ex_labels; /* the labels of every exemplar, exemplar after exemplar */
    size_t ex_labels_cap;
    ingest_exemplar *exemplars; /* labels pointers set at the end, as for series */
    size_t exemplars_cap;
};

/* Stores the exemplars of a decoded request whose samples db_write has taken (so the series'
 * labels are canonical); counts go to res. 0, or the STRATA_E* of a store or WAL failure. */
int ingest_store_exemplars(strata_db *db, const ingest_rw_request *req, exemplar_write_result *res,
                           char *err);

/* Decodes a snappy-compressed remote write 2.0 Request; everything lives in a. */
int ingest_rw2_decode(const uint8_t *body, size_t len, arena *a, ingest_rw_request *out, char *err);

/* Frees whichever buffers of s grew past INGEST_SCRATCH_KEEP. */
void ingest_scratch_trim(ingest_scratch *s);

#endif
