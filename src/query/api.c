/*
 * api.c: the embeddable C API's query functions (strata_query, strata_query_range from
 * include/strata.h) on top of the query module.
 *
 * They exist so a program linking libstrata can run PromQL without knowing the module's own
 * types: text in, the JSON "data" object of Prometheus' HTTP API out, with the module's default
 * options (5 m lookback, 50 M samples, 2 m timeout).
 */
#include "query/query.h"

#include <stdlib.h>

/* Runs the query and hands the JSON text to the caller, who frees it with free(). */
static int query_json(strata_db *db, const char *q, int64_t s, int64_t e, int64_t step, bool range,
                      char **json, char *err)
{
    *json = NULL;
    if (!db || !q) return strata_errf(err, STRATA_EINVAL, "no database or no query");
    buf b = {0};
    int rc = range ? promql_exec_range(db, q, s, e, step, NULL, &b, err)
                   : promql_exec_instant(db, q, s, NULL, &b, err);
    if (rc || !b.data) {
        buf_free(&b);
        return rc ? rc : strata_errf(err, STRATA_ENOMEM, "out of memory");
    }
    *json = (char *)b.data; /* buf keeps its text NUL-terminated */
    return 0;
}

int strata_query(strata_db *db, const char *promql, int64_t time_ms, char **json, char *err)
{
    return query_json(db, promql, time_ms, time_ms, 0, false, json, err);
}

int strata_query_range(strata_db *db, const char *promql, int64_t start_ms, int64_t end_ms,
                       int64_t step_ms, char **json, char *err)
{
    if (step_ms <= 0) {
        *json = NULL;
        return strata_errf(err, STRATA_EINVAL, "step must be positive");
    }
    return query_json(db, promql, start_ms, end_ms, step_ms, true, json, err);
}
