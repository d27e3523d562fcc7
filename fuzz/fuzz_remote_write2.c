/*
 * fuzz_remote_write2.c: arbitrary bytes through the remote write 2.0 decoder, both as a snappy
 * body and as a raw message wrapped in valid snappy. No crash, no leak, no read out of bounds.
 */
#include "ingest/ingest_internal.h"

#include <snappy-c.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[STRATA_ERRMSG_SIZE];
    arena a;
    arena_init(&a, 16 * 1024);
    ingest_rw_request req;
    ingest_rw2_decode(data, size, &a, &req, err);
    arena_reset(&a);
    size_t clen = snappy_max_compressed_length(size);
    char *c = malloc(clen ? clen : 1);
    if (c && snappy_compress((const char *)data, size, c, &clen) == SNAPPY_OK)
        ingest_rw2_decode((const uint8_t *)c, clen, &a, &req, err);
    free(c);
    arena_free(&a);
    return 0;
}
