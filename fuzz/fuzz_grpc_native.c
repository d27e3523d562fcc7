/*
 * fuzz_grpc_native.c: arbitrary bytes through the protobuf-c decoders of every strata.v1 request
 * message the gRPC server accepts, and through the budgeted unpacker the Write handler uses (with
 * its failure explanation walk). No crash, no leak.
 */
#include "ingest/ingest.h"
#include "strata_v1.pb-c.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Strata__V1__WriteRequest *w = strata__v1__write_request__unpack(NULL, size, data);
    if (w) strata__v1__write_request__free_unpacked(w, NULL);
    Strata__V1__QueryRequest *q = strata__v1__query_request__unpack(NULL, size, data);
    if (q) strata__v1__query_request__free_unpacked(q, NULL);
    Strata__V1__QueryRangeRequest *r = strata__v1__query_range_request__unpack(NULL, size, data);
    if (r) strata__v1__query_range_request__free_unpacked(r, NULL);
    Strata__V1__SeriesRequest *s = strata__v1__series_request__unpack(NULL, size, data);
    if (s) strata__v1__series_request__free_unpacked(s, NULL);
    Strata__V1__LabelsRequest *l = strata__v1__labels_request__unpack(NULL, size, data);
    if (l) strata__v1__labels_request__free_unpacked(l, NULL);
    arena a;
    arena_init(&a, 16 * 1024);
    void *m;
    char err[STRATA_ERRMSG_SIZE];
    ingest_pb_unpack(&strata__v1__write_request__descriptor, data, size, &a, &m, err);
    arena_free(&a);
    return 0;
}
