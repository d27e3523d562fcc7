/*
 * fuzz_exemplar_wal.c: arbitrary bytes as the payload of a WAL exemplar record (type 10), replayed
 * into a small exemplar store: malformed records must be refused with STRATA_ECORRUPT, never read
 * out of bounds, and whatever is accepted must keep the store consistent (queried back in full,
 * no leak when the store is freed).
 */
#include "storage/storage_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Replay needs only the store of the handle. */
    strata_db db;
    memset(&db, 0, sizeof db);
    db.exemplars = exemplar_store_new(8);
    if (!db.exemplars) return 0;
    char err[STRATA_ERRMSG_SIZE];
    uint8_t *copy = malloc(size ? size : 1); /* exact bounds for ASan */
    if (copy) {
        memcpy(copy, data, size);
        int rc = exemplars_replay(&db, copy, size, err);
        if (rc != 0 && rc != STRATA_ECORRUPT && rc != STRATA_ENOMEM) abort();
        free(copy);
    }
    exemplar_query_result r;
    const matcher *const *sets[1] = {NULL};
    size_t counts[1] = {0}; /* an empty set matches every series */
    if (db_query_exemplars(&db, sets, counts, 1, INT64_MIN, INT64_MAX, &r, err) == 0) {
        exemplar_stats st;
        db_get_exemplar_stats(&db, &st);
        size_t n = 0;
        for (size_t i = 0; i < r.n_series; i++) n += r.series[i].n_points;
        if (n != st.stored || r.n_series != st.series || st.stored > 8) abort();
    }
    exemplar_query_result_free(&r);
    exemplar_store_free(db.exemplars);
    return 0;
}
