/*
 * test_histogram.c: native-histogram arithmetic (src/query/histogram.c) against results worked
 * out by hand from Prometheus' FloatHistogram rules: bucket bounds per schema, add/sub with
 * schema reduction, zero-bucket widening and custom-bound intersection, scaling, compaction and
 * equality, counter-reset detection, quantile, fraction and variance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "query/histogram.h"

#include <float.h>
#include <math.h>
#include <string.h>

static arena A;

static int setup(void **state)
{
    (void)state;
    arena_init(&A, 64 * 1024);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    arena_free(&A);
    return 0;
}

/* A histogram with positive buckets only, from one span starting at first. */
static native_histogram pos_hist(int32_t schema, int32_t first, const double *b, uint32_t n)
{
    native_histogram h;
    memset(&h, 0, sizeof h);
    h.schema = schema;
    h.pos_spans = arena_alloc(&A, sizeof *h.pos_spans);
    h.pos_spans[0] = (hist_span){first, n};
    h.n_pos_spans = n ? 1 : 0;
    h.pos_buckets = arena_alloc(&A, (n ? n : 1) * sizeof(double));
    if (n) memcpy(h.pos_buckets, b, n * sizeof(double));
    h.n_pos_buckets = n;
    for (uint32_t i = 0; i < n; i++)
        h.count += b[i];
    return h;
}

/* The count of positive bucket idx (0 when absent). */
static double pos_count(const native_histogram *h, int32_t idx)
{
    int64_t cur = 0;
    uint32_t k = 0;
    for (uint32_t s = 0; s < h->n_pos_spans; s++) {
        cur += h->pos_spans[s].offset;
        for (uint32_t j = 0; j < h->pos_spans[s].length; j++, cur++, k++)
            if (cur == idx) return h->pos_buckets[k];
    }
    return 0;
}

static void test_bounds(void **state)
{
    (void)state;
    assert_true(hist_bound(0, 0, NULL, 0) == 1);
    assert_true(hist_bound(1, 0, NULL, 0) == 2);
    assert_true(hist_bound(-1, 0, NULL, 0) == 0.5);
    assert_true(fabs(hist_bound(1, 1, NULL, 0) - M_SQRT2) < 1e-15);
    assert_true(hist_bound(2, 1, NULL, 0) == 2);
    assert_true(hist_bound(1, -1, NULL, 0) == 4);
    assert_true(hist_bound(1, -2, NULL, 0) == 16);
    assert_true(hist_bound(1024, 0, NULL, 0) == DBL_MAX);
    assert_true(isinf(hist_bound(1025, 0, NULL, 0)));
    double cv[] = {0.5, 2};
    assert_true(hist_bound(-1, HIST_SCHEMA_CUSTOM, cv, 2) == -INFINITY);
    assert_true(hist_bound(1, HIST_SCHEMA_CUSTOM, cv, 2) == 2);
    assert_true(hist_bound(2, HIST_SCHEMA_CUSTOM, cv, 2) == INFINITY);
}

static void test_add_same_schema(void **state)
{
    (void)state;
    native_histogram x = pos_hist(0, 0, (double[]){1, 2}, 2);
    native_histogram y = pos_hist(0, 1, (double[]){3, 4}, 2);
    x.sum = 10;
    y.sum = 5;
    native_histogram r;
    unsigned fl;
    assert_int_equal(hist_add(&A, &x, &y, false, &r, &fl), 0);
    assert_true(r.count == 10 && r.sum == 15);
    assert_true(pos_count(&r, 0) == 1 && pos_count(&r, 1) == 5 && pos_count(&r, 2) == 4);
    assert_int_equal(r.n_pos_spans, 1);
    /* subtracting gives back x, with y's extra bucket at zero */
    native_histogram d;
    assert_int_equal(hist_add(&A, &r, &y, true, &d, &fl), 0);
    assert_true(d.count == 3 && d.sum == 10);
    assert_true(pos_count(&d, 0) == 1 && pos_count(&d, 1) == 2 && pos_count(&d, 2) == 0);
    assert_int_equal(hist_compact(&A, &d), 0);
    assert_true(hist_equal(&d, &x));
    /* x itself is untouched */
    assert_true(x.count == 3 && pos_count(&x, 1) == 2);
}

static void test_add_reduces_schema(void **state)
{
    (void)state;
    /* schema 1 buckets 1 and 2 are (1, 1.41] and (1.41, 2]: both fall into schema 0 bucket 1 */
    native_histogram x = pos_hist(1, 1, (double[]){1, 2, 4}, 3); /* idx 1,2,3 */
    native_histogram y = pos_hist(0, 1, (double[]){10}, 1);
    native_histogram r;
    unsigned fl;
    assert_int_equal(hist_add(&A, &x, &y, false, &r, &fl), 0);
    assert_int_equal(r.schema, 0);
    assert_true(pos_count(&r, 1) == 13);
    assert_true(pos_count(&r, 2) == 4); /* schema 1 bucket 3, (2, 2.83], is in (2, 4] */
    assert_true(r.count == 17);
    /* the same from the other side */
    assert_int_equal(hist_add(&A, &y, &x, false, &r, &fl), 0);
    assert_int_equal(r.schema, 0);
    assert_true(pos_count(&r, 1) == 13 && pos_count(&r, 2) == 4);
}

static void test_add_widens_zero_bucket(void **state)
{
    (void)state;
    native_histogram x = pos_hist(0, 0, (double[]){2, 5}, 2); /* (0.5,1] and (1,2] */
    x.zero_threshold = 0.001;
    x.zero_count = 1;
    x.count += 1;
    native_histogram y = pos_hist(0, 0, NULL, 0);
    y.zero_threshold = 1;
    y.zero_count = 3;
    y.count = 3;
    native_histogram r;
    unsigned fl;
    assert_int_equal(hist_add(&A, &x, &y, false, &r, &fl), 0);
    assert_true(r.zero_threshold == 1);
    assert_true(r.zero_count == 6);
    assert_true(pos_count(&r, 0) == 0 && pos_count(&r, 1) == 5);
    assert_true(r.count == 11);
    /* a threshold inside a populated bucket moves to that bucket's upper bound */
    y.zero_threshold = 0.75;
    assert_int_equal(hist_add(&A, &x, &y, false, &r, &fl), 0);
    assert_true(r.zero_threshold == 1);
    assert_true(r.zero_count == 6);
}

static void test_add_custom(void **state)
{
    (void)state;
    native_histogram x = pos_hist(HIST_SCHEMA_CUSTOM, 0, (double[]){1, 1, 1, 1}, 4);
    x.custom_values = (double[]){1, 2, 3};
    x.n_custom_values = 3;
    native_histogram y = pos_hist(HIST_SCHEMA_CUSTOM, 0, (double[]){1, 1, 1}, 3);
    y.custom_values = (double[]){2, 4};
    y.n_custom_values = 2;
    native_histogram r;
    unsigned fl;
    assert_int_equal(hist_add(&A, &x, &y, false, &r, &fl), 0);
    assert_true(fl & HIST_FLAG_NHCB_RECONCILED);
    assert_int_equal(r.n_custom_values, 1);
    assert_true(r.custom_values[0] == 2);
    assert_true(pos_count(&r, 0) == 3 && pos_count(&r, 1) == 4);
    /* same bounds: plain bucket-wise addition */
    assert_int_equal(hist_add(&A, &x, &x, false, &r, &fl), 0);
    assert_false(fl & HIST_FLAG_NHCB_RECONCILED);
    assert_true(pos_count(&r, 3) == 2 && r.n_custom_values == 3);
    /* custom and exponential do not mix */
    native_histogram e = pos_hist(0, 0, (double[]){1}, 1);
    assert_int_equal(hist_add(&A, &x, &e, false, &r, &fl), HIST_INCOMPATIBLE);
}

static void test_hints(void **state)
{
    (void)state;
    native_histogram x = pos_hist(0, 0, (double[]){1}, 1), y = x, r;
    unsigned fl;
    x.reset_hint = HIST_HINT_RESET;
    y.reset_hint = HIST_HINT_NOT_RESET;
    assert_int_equal(hist_add(&A, &x, &y, false, &r, &fl), 0);
    assert_true(fl & HIST_FLAG_RESET_COLLISION);
    assert_int_equal(r.reset_hint, HIST_HINT_UNKNOWN);
    y.reset_hint = HIST_HINT_GAUGE;
    assert_int_equal(hist_add(&A, &x, &y, false, &r, &fl), 0);
    assert_int_equal(fl, 0);
    assert_int_equal(r.reset_hint, HIST_HINT_GAUGE);
}

static void test_mul_div(void **state)
{
    (void)state;
    native_histogram x = pos_hist(0, 0, (double[]){1, 2}, 2), c;
    x.sum = 4;
    assert_int_equal(hist_copy(&A, &x, &c), 0);
    hist_mul(&c, -2);
    assert_true(c.count == -6 && c.sum == -8 && c.pos_buckets[1] == -4);
    assert_int_equal(c.reset_hint, HIST_HINT_GAUGE);
    assert_true(x.pos_buckets[1] == 2); /* the copy is deep */
    hist_div(&c, -2);
    assert_true(c.count == 3 && c.sum == 4 && c.pos_buckets[1] == 2);
    hist_div(&c, 0);
    assert_true(isinf(c.count) && c.n_pos_buckets == 0);
}

static void test_compact_equal(void **state)
{
    (void)state;
    native_histogram x = pos_hist(0, 0, (double[]){1, 0, 0, 2}, 4);
    native_histogram y = pos_hist(0, 0, (double[]){1}, 1);
    y.pos_spans = arena_alloc(&A, 2 * sizeof *y.pos_spans);
    y.pos_spans[0] = (hist_span){0, 1};
    y.pos_spans[1] = (hist_span){2, 1};
    y.n_pos_spans = 2;
    y.pos_buckets = (double[]){1, 2};
    y.n_pos_buckets = 2;
    y.count = 3;
    assert_false(hist_equal(&x, &y)); /* empty buckets are part of the layout */
    assert_int_equal(hist_compact(&A, &x), 0);
    assert_int_equal(x.n_pos_spans, 2);
    assert_int_equal(x.n_pos_buckets, 2);
    assert_true(hist_equal(&x, &y));
    /* a zero-length span in between only moves the offset along */
    native_histogram z = y;
    z.pos_spans = (hist_span[]){{0, 1}, {1, 0}, {1, 1}};
    z.n_pos_spans = 3;
    assert_true(hist_equal(&x, &z));
    y.pos_spans[1].offset = 3;
    assert_false(hist_equal(&x, &y));
    y.pos_spans[1].offset = 2;
    y.sum = NAN;
    x.sum = NAN;
    assert_true(hist_equal(&x, &y)); /* compared by bits */
    x.schema = 1;
    assert_false(hist_equal(&x, &y));
}

static void test_detect_reset(void **state)
{
    (void)state;
    native_histogram p = pos_hist(0, 0, (double[]){1, 2}, 2);
    native_histogram c = pos_hist(0, 0, (double[]){1, 3}, 2);
    assert_false(hist_detect_reset(&c, &p));
    native_histogram fewer = pos_hist(0, 1, (double[]){5}, 1); /* bucket 0 went missing */
    assert_true(hist_detect_reset(&fewer, &p));
    native_histogram lower = pos_hist(0, 0, (double[]){0, 4}, 2);
    assert_true(hist_detect_reset(&lower, &p));
    c.reset_hint = HIST_HINT_RESET;
    assert_true(hist_detect_reset(&c, &p));
    lower.reset_hint = HIST_HINT_NOT_RESET;
    assert_false(hist_detect_reset(&lower, &p));
    /* a higher schema in the newer histogram means a reset */
    native_histogram hi = pos_hist(1, 0, (double[]){5, 5}, 2);
    assert_true(hist_detect_reset(&hi, &p));
    /* a lower schema is compared after merging the older one's buckets */
    native_histogram fine = pos_hist(1, 1, (double[]){1, 1}, 2);
    native_histogram coarse = pos_hist(0, 1, (double[]){2}, 1);
    assert_false(hist_detect_reset(&coarse, &fine));
    coarse.pos_buckets[0] = 1.5;
    coarse.count = 2; /* the count alone does not go down */
    assert_true(hist_detect_reset(&coarse, &fine));
}

static void test_quantile(void **state)
{
    (void)state;
    native_histogram h = pos_hist(HIST_SCHEMA_CUSTOM, 0, (double[]){2, 2, 0}, 3);
    h.custom_values = (double[]){1, 2};
    h.n_custom_values = 2;
    h.sum = 5;
    assert_true(hist_quantile(&A, 0.5, &h) == 1);
    assert_true(hist_quantile(&A, 0.25, &h) == 0.5);
    assert_true(hist_quantile(&A, 0.75, &h) == 1.5);
    assert_true(hist_quantile(&A, -1, &h) == -INFINITY);
    assert_true(hist_quantile(&A, 2, &h) == INFINITY);
    assert_true(isnan(hist_quantile(&A, NAN, &h)));
    native_histogram e = pos_hist(0, 1, (double[]){4}, 1); /* (1, 2] */
    e.sum = 6;
    assert_true(fabs(hist_quantile(&A, 0.5, &e) - M_SQRT2) < 1e-12);
    assert_true(fabs(hist_quantile(&A, 0.25, &e) - pow(2, 0.25)) < 1e-12);
    native_histogram empty = pos_hist(0, 0, NULL, 0);
    assert_true(isnan(hist_quantile(&A, 0.5, &empty)));
    /* only a zero bucket and positive buckets: the zero bucket starts at 0 */
    native_histogram z = pos_hist(0, 1, (double[]){2}, 1);
    z.zero_threshold = 0.5;
    z.zero_count = 2;
    z.count = 4;
    assert_true(fabs(hist_quantile(&A, 0.25, &z) - 0.25) < 1e-12);
}

static void test_fraction_and_variance(void **state)
{
    (void)state;
    native_histogram e = pos_hist(0, 1, (double[]){4}, 1); /* (1, 2] */
    e.sum = 6;
    assert_true(fabs(hist_fraction(&A, 1, 1.5, &e) - log2(1.5)) < 1e-12);
    assert_true(hist_fraction(&A, 0, 10, &e) == 1);
    assert_true(hist_fraction(&A, 3, 1, &e) == 0);
    assert_true(isnan(hist_fraction(&A, NAN, 1, &e)));
    native_histogram c = pos_hist(HIST_SCHEMA_CUSTOM, 0, (double[]){2, 2}, 2);
    c.custom_values = (double[]){10};
    c.n_custom_values = 1;
    /* the first bucket starts at 0 when nothing is negative, as for the zero bucket */
    assert_true(fabs(hist_fraction(&A, 0, 5, &c) - 0.25) < 1e-12);
    assert_true(fabs(hist_fraction(&A, -INFINITY, 10, &c) - 0.5) < 1e-12);
    /* geometric bucket middles sqrt(2) and sqrt(8) around their mean: variance 1/2 */
    native_histogram v = pos_hist(0, 1, (double[]){2, 2}, 2);
    v.sum = 2 * M_SQRT2 + 2 * sqrt(8);
    assert_true(fabs(hist_stdvar(&A, &v) - 0.5) < 1e-12);
}

static void test_all_buckets(void **state)
{
    (void)state;
    native_histogram h = pos_hist(0, 0, (double[]){1, 2}, 2);
    h.zero_threshold = 0.75; /* inside bucket 0, (0.5, 1]: its lower bound is clipped */
    h.zero_count = 3;
    h.neg_spans = (hist_span[]){{1, 1}};
    h.n_neg_spans = 1;
    h.neg_buckets = (double[]){4};
    h.n_neg_buckets = 1;
    hist_bucket *b;
    ssize_t n = hist_all_buckets(&A, &h, &b);
    assert_int_equal(n, 4);
    assert_true(b[0].lower == -2 && b[0].upper == -1 && b[0].count == 4 && b[0].lower_inclusive);
    assert_false(b[0].upper_inclusive);
    assert_true(b[1].zero && b[1].lower == -0.75 && b[1].upper == 0.75);
    assert_true(b[2].lower == 0.75 && b[2].upper == 1 && b[2].upper_inclusive);
    assert_true(b[3].lower == 1 && b[3].upper == 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_add_same_schema),
        cmocka_unit_test(test_add_reduces_schema),
        cmocka_unit_test(test_add_widens_zero_bucket),
        cmocka_unit_test(test_add_custom),
        cmocka_unit_test(test_hints),
        cmocka_unit_test(test_mul_div),
        cmocka_unit_test(test_compact_equal),
        cmocka_unit_test(test_detect_reset),
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_fraction_and_variance),
        cmocka_unit_test(test_all_buckets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
