/*
 * strata_client.h: a small C client for Strata's native gRPC API (strata.v1), for applications
 * that push samples and run queries without speaking HTTP or protobuf themselves.
 *
 * Same conventions as strata.h: int status codes, an error buffer of STRATA_ERRMSG_SIZE bytes,
 * one owner per returned object. A client may be used from one thread at a time.
 */
#ifndef STRATA_CLIENT_H
#define STRATA_CLIENT_H

#include "strata.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct strata_client strata_client;

/* Connects (lazily: the first call dials) to target ("127.0.0.1:4317"). *out is owned by the
 * caller and released with strata_client_close. timeout_ms bounds every call (0: 10 s). */
int strata_client_open(const char *target, int timeout_ms, strata_client **out, char *err);
void strata_client_close(strata_client *c);

/* Writes series (labels in any order). *written receives the samples stored; samples skipped as
 * out of order are counted in *rejected and described in err while the call still returns 0. */
int strata_client_write(strata_client *c, const strata_series *series, size_t n, uint64_t *written,
                        uint64_t *rejected, char *err);

/* One series of a query result; the result owns all of it. */
typedef struct strata_client_series {
    strata_label *labels;
    size_t n_labels;
    strata_sample *samples;
    size_t n_samples;
} strata_client_series;

typedef struct strata_client_result {
    char result_type[16]; /* "vector", "matrix", "scalar", "string" */
    strata_client_series *series;
    size_t n_series;
    strata_sample scalar;
} strata_client_result;

/* Instant query at time_ms (0: now). *out is owned by the caller (strata_client_result_free). */
int strata_client_query(strata_client *c, const char *promql, int64_t time_ms,
                        strata_client_result **out, char *err);
void strata_client_result_free(strata_client_result *r);

#ifdef __cplusplus
}
#endif
#endif
