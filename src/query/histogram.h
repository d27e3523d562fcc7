/*
 * histogram.h: native-histogram arithmetic for the PromQL evaluator (Prometheus' FloatHistogram
 * semantics): add and subtract with schema reduction, zero-bucket reconciliation and custom-bound
 * (NHCB) intersection, scaling, compaction, exact equality, counter-reset detection, bucket
 * iteration with Prometheus' bounds, and the statistics behind histogram_quantile,
 * histogram_fraction and histogram_stddev/stdvar.
 *
 * Memory: every histogram these functions build lives in the arena passed in; inputs are never
 * modified unless a function says it works in place. native_histogram never owns its arrays.
 */
#ifndef STRATA_QUERY_HISTOGRAM_H
#define STRATA_QUERY_HISTOGRAM_H

#include "core/core.h"

#include <sys/types.h>

/* One bucket with its bounds, as Prometheus' bucket iterators yield it. */
typedef struct hist_bucket {
    double lower, upper, count;
    int32_t index;
    bool lower_inclusive, upper_inclusive;
    bool zero; /* the zero bucket */
} hist_bucket;

/* Outcome flags of hist_add; they become annotations in Prometheus, here they only inform. */
enum {
    HIST_FLAG_RESET_COLLISION = 1, /* a counter-reset hint met a not-reset hint */
    HIST_FLAG_NHCB_RECONCILED = 2, /* custom bounds differed and were intersected */
};

/* hist_add's answer when one side has custom buckets and the other exponential ones. */
#define HIST_INCOMPATIBLE 1

static inline bool hist_is_custom(const native_histogram *h)
{
    return h->schema == HIST_SCHEMA_CUSTOM;
}

/* The upper bound of bucket idx (Prometheus' getBound): custom bounds, or 2^(idx * 2^-schema). */
double hist_bound(int32_t idx, int32_t schema, const double *custom, uint32_t n_custom);

/* A deep copy of src in the arena. 0 or STRATA_ENOMEM. */
int hist_copy(arena *a, const native_histogram *src, native_histogram *dst);

/*
 * *dst = a + b (or a - b when subtract), a new histogram in the arena. The result has the lower
 * of both schemas and the wider zero bucket (widened further when its threshold cuts a populated
 * bucket); custom bounds that differ are intersected. Returns 0, HIST_INCOMPATIBLE when one is
 * custom and the other exponential (nothing written), or STRATA_ENOMEM. *flags gets HIST_FLAG_*.
 */
int hist_add(arena *a, const native_histogram *x, const native_histogram *y, bool subtract,
             native_histogram *dst, unsigned *flags);

/*
 * *sum += x with Kahan-Neumaier compensation kept in *comp (a histogram of the same layout; start
 * it as an empty histogram of sum's schema). Both are rebuilt in the arena; the total is
 * sum + comp (hist_add). Returns 0, HIST_INCOMPATIBLE (custom and exponential) or STRATA_ENOMEM.
 */
int hist_kahan_add(arena *a, native_histogram *sum, native_histogram *comp,
                   const native_histogram *x, unsigned *flags);

/* In place: every count and the sum times f (negative f makes it a gauge histogram). */
void hist_mul(native_histogram *h, double f);
/* In place: divides; division by zero drops the buckets, as Prometheus does. */
void hist_div(native_histogram *h, double f);

/* In place: drops empty buckets and joins adjacent spans (Prometheus' Compact(0)). The arrays
 * are rewritten inside the ones the histogram has. */
int hist_compact(arena *a, native_histogram *h);

/* In place: the trim operators. upper_trim (h </ rhs) keeps the observations below rhs, otherwise
 * (h >/ rhs) those above, interpolating inside the bucket rhs falls in; count and sum are
 * re-estimated from bucket midpoints when anything was cut. 0 or STRATA_ENOMEM. */
int hist_trim(arena *a, native_histogram *h, double rhs, bool upper_trim);

/* Exact equality as Prometheus' Equals: schema, zero bucket, count and sum, the same bucket
 * layout (an empty bucket present on one side only makes a difference; zero-length spans do
 * not) and counts compared by their bits. Compare compacted copies for equality of content. */
bool hist_equal(const native_histogram *x, const native_histogram *y);

/* Whether cur starts after a counter reset relative to prev (Prometheus' DetectReset). */
bool hist_detect_reset(const native_histogram *cur, const native_histogram *prev);

/* Every bucket in ascending order: negative buckets, the zero bucket when populated, positive
 * buckets, with the bounds of the buckets next to the zero bucket clipped to it. *out is in the
 * arena. Returns the count, or -1 on ENOMEM. */
ssize_t hist_all_buckets(arena *a, const native_histogram *h, hist_bucket **out);

double hist_quantile(arena *a, double q, const native_histogram *h);
double hist_fraction(arena *a, double lower, double upper, const native_histogram *h);
/* The estimated variance of the observations (histogram_stdvar). */
double hist_stdvar(arena *a, const native_histogram *h);

/* Whether the histogram has a bucket, zero count, count or sum that is infinite. */
bool hist_has_overflow(const native_histogram *h);

/* The stale marker for histograms: a sum with the stale NaN bits. */
bool hist_is_stale(const native_histogram *h);

#endif
