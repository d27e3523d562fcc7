/*
 * test_hist_eval.c: the evaluator with native histograms, against a real database (strata_open
 * in a scratch directory, histograms written with db_write): selectors and their JSON (vector
 * "histogram", matrix "histograms", bucket boundary rules), histogram_* functions, rate and
 * increase with extrapolation and counter resets, operators, aggregations with the mixed
 * float/histogram rule, trim operators and subqueries. Expected values are worked out by hand
 * from Prometheus' rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "query/query.h"

#include <math.h>
#include <string.h>

static strata_db *db;
static char dir[512];

/* h{} at k minutes (k = 1..5): schema 0, buckets (0.5,1] (1,2] (2,4] holding k, 2k, k; sum 10k.
 * A counter reset at 6 minutes (back to k = 1). */
static hist_span h_spans[1] = {{0, 3}};
static double h_buckets[7][3];
/* c{} : custom bounds [1 5], buckets 1 2 3 at 1 minute. */
static hist_span c_spans[1] = {{0, 3}};
static double c_buckets[3] = {1, 2, 3};
static double c_bounds[2] = {1, 5};

static native_histogram exp_hist(int slot, double k)
{
    h_buckets[slot][0] = k;
    h_buckets[slot][1] = 2 * k;
    h_buckets[slot][2] = k;
    native_histogram h = {.schema = 0,
                          .is_int = true,
                          .count = 4 * k,
                          .sum = 10 * k,
                          .pos_spans = h_spans,
                          .n_pos_spans = 1,
                          .pos_buckets = h_buckets[slot],
                          .n_pos_buckets = 3};
    return h;
}

static void put_series(const char *name, const char *job, const strata_sample *fs, size_t nf,
                       const hist_sample *hs, size_t nh)
{
    label ls[2] = {
        {.name = "__name__", .value = name, .name_len = 8, .value_len = (uint32_t)strlen(name)},
        {.name = "job", .value = job, .name_len = 3, .value_len = (uint32_t)strlen(job)}};
    write_series ws = {.labels = ls,
                       .n_labels = job ? 2 : 1,
                       .samples = fs,
                       .n_samples = nf,
                       .histograms = hs,
                       .n_histograms = nh};
    strata_write_result res;
    write_reject rej;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = db_write(db, &ws, 1, false, &res, &rej, err);
    if (rc) fprintf(stderr, "write: %s\n", err);
    assert_int_equal(rc, 0);
}

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir(dir, sizeof dir, "query-hist")) return -1;
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    char err[STRATA_ERRMSG_SIZE];
    if (strata_open(dir, &o, &db, err)) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    hist_sample hs[6];
    for (int k = 1; k <= 5; k++)
        hs[k - 1] = (hist_sample){k * 60000, exp_hist(k, k)};
    hs[5] = (hist_sample){6 * 60000, exp_hist(6, 1)};
    put_series("h", "a", NULL, 0, hs, 6);
    put_series("h", "b", NULL, 0, hs, 5);
    /* a float before a histogram in one series */
    strata_sample f = {60000, 7};
    hist_sample mh = {120000, exp_hist(0, 1)};
    put_series("mixed", "a", &f, 1, &mh, 1);
    strata_sample g = {120000, 3};
    put_series("mixed", "b", &g, 1, NULL, 0);
    native_histogram c = {.schema = HIST_SCHEMA_CUSTOM,
                          .is_int = true,
                          .count = 6,
                          .sum = 9,
                          .pos_spans = c_spans,
                          .n_pos_spans = 1,
                          .pos_buckets = c_buckets,
                          .n_pos_buckets = 3,
                          .custom_values = c_bounds,
                          .n_custom_values = 2};
    hist_sample cs = {60000, c};
    put_series("c", "a", NULL, 0, &cs, 1);
    /* a staleness marker between histograms */
    hist_sample st[4] = {
        {60000, exp_hist(0, 1)}, {120000, exp_hist(0, 1)}, {180000, {0}}, {240000, exp_hist(0, 1)}};
    uint64_t stale_bits = 0x7ff0000000000002ull;
    memcpy(&st[2].h.sum, &stale_bits, sizeof stale_bits);
    put_series("st", "a", NULL, 0, st, 4);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    strata_close(db);
    test_rmtree(dir);
    return 0;
}

static promql_result *instant(const char *q, int64_t t)
{
    promql_result *r = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = promql_eval_instant(db, q, t, NULL, &r, err);
    if (rc) fprintf(stderr, "%s: %s\n", q, err);
    assert_int_equal(rc, 0);
    return r;
}

static void check_json(const char *q, int64_t t, const char *want)
{
    buf b = {0};
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = promql_exec_instant(db, q, t, NULL, &b, err);
    if (rc) fprintf(stderr, "%s: %s\n", q, err);
    assert_int_equal(rc, 0);
    if (strcmp((char *)b.data, want)) fprintf(stderr, "%s:\n got  %s\n want %s\n", q, b.data, want);
    assert_string_equal((char *)b.data, want);
    buf_free(&b);
}

/* The float result of a one-series vector. */
static double scalar_of(const char *q, int64_t t)
{
    promql_result *r = instant(q, t);
    assert_int_equal(r->type, PROMQL_VECTOR);
    assert_int_equal(r->n_series, 1);
    assert_int_equal(r->series[0].n_points, 1);
    double v = r->series[0].points[0].v;
    promql_result_free(r);
    return v;
}

/* The histogram result of a one-series vector, copied out. */
static native_histogram hist_of(const char *q, int64_t t, double *b0)
{
    promql_result *r = instant(q, t);
    assert_int_equal(r->type, PROMQL_VECTOR);
    assert_int_equal(r->n_series, 1);
    assert_int_equal(r->series[0].n_hpoints, 1);
    native_histogram h = r->series[0].hpoints[0].h;
    if (b0) *b0 = h.n_pos_buckets ? h.pos_buckets[0] : NAN;
    h.pos_buckets = h.neg_buckets = NULL;
    h.pos_spans = h.neg_spans = NULL;
    h.custom_values = NULL;
    promql_result_free(r);
    return h;
}

static size_t count_of(const char *q, int64_t t)
{
    promql_result *r = instant(q, t);
    size_t n = r->type == PROMQL_SCALAR ? 1 : r->n_series;
    promql_result_free(r);
    return n;
}

static void test_selector_json(void **state)
{
    (void)state;
    check_json(
        "h{job=\"a\"}", 300000,
        "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"h\",\"job\":\"a\"},"
        "\"histogram\":[300,{\"count\":\"20\",\"sum\":\"50\",\"buckets\":[[0,\"0.5\",\"1\",\"5\"],"
        "[0,\"1\",\"2\",\"10\"],[0,\"2\",\"4\",\"5\"]]}]}]}");
    /* custom bounds: the first bucket is closed at -Inf, every bucket closed above */
    check_json(
        "c", 60000,
        "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"c\",\"job\":\"a\"},"
        "\"histogram\":[60,{\"count\":\"6\",\"sum\":\"9\",\"buckets\":[[3,\"-Inf\",\"1\",\"1\"],"
        "[0,\"1\",\"5\",\"2\"],[0,\"5\",\"+Inf\",\"3\"]]}]}]}");
    /* a range vector: histograms in "histograms", floats (none here) leave "values" out */
    check_json(
        "h{job=\"a\"}[2m]", 120000,
        "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"h\",\"job\":\"a\"},"
        "\"histograms\":[[60,{\"count\":\"4\",\"sum\":\"10\",\"buckets\":[[0,\"0.5\",\"1\",\"1\"],"
        "[0,\"1\",\"2\",\"2\"],[0,\"2\",\"4\",\"1\"]]}],[120,{\"count\":\"8\",\"sum\":\"20\","
        "\"buckets\":[[0,\"0.5\",\"1\",\"2\"],[0,\"1\",\"2\",\"4\"],[0,\"2\",\"4\",\"2\"]]}]]}]}");
    /* the newer of a float and a histogram sample is the value */
    check_json(
        "mixed{job=\"a\"}", 60000,
        "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"mixed\",\"job\":\"a\"},"
        "\"value\":[60,\"7\"]}]}");
    assert_int_equal(count_of("mixed{job=\"a\"}[5m]", 120000), 1);
}

static void test_histogram_functions(void **state)
{
    (void)state;
    assert_true(scalar_of("histogram_count(h{job=\"a\"})", 300000) == 20);
    assert_true(scalar_of("histogram_sum(h{job=\"a\"})", 300000) == 50);
    assert_true(scalar_of("histogram_avg(h{job=\"a\"})", 300000) == 2.5);
    /* median: reverse walk, rank 10 ends in (1,2]: fraction 0.5 on a log scale */
    assert_true(fabs(scalar_of("histogram_quantile(0.5, h{job=\"a\"})", 300000) - M_SQRT2) < 1e-12);
    assert_true(scalar_of("histogram_fraction(0, 4, h{job=\"a\"})", 300000) == 1);
    assert_true(fabs(scalar_of("histogram_fraction(0, 1, h{job=\"a\"})", 300000) - 0.25) < 1e-12);
    /* geometric midpoints sqrt(0.5), sqrt(2), sqrt(8) around the mean 2.5 */
    double m = 2.5,
           v = (5 * pow(sqrt(0.5) - m, 2) + 10 * pow(sqrt(2) - m, 2) + 5 * pow(sqrt(8) - m, 2)) /
               20;
    assert_true(fabs(scalar_of("histogram_stdvar(h{job=\"a\"})", 300000) - v) < 1e-12);
    assert_true(fabs(scalar_of("histogram_stddev(h{job=\"a\"})", 300000) - sqrt(v)) < 1e-12);
    /* timestamp() of a histogram is a float, selected or computed */
    assert_true(scalar_of("timestamp(h{job=\"a\"})", 300000) == 300);
    assert_true(scalar_of("timestamp(h{job=\"a\"} * 1)", 330000) == 330);
    /* float series give nothing */
    assert_int_equal(count_of("histogram_count(mixed)", 120000), 1);
    /* histogram_quantiles labels each quantile */
    promql_result *r = instant("histogram_quantiles(h{job=\"a\"}, \"q\", 0.5, 1)", 300000);
    assert_int_equal(r->n_series, 2);
    promql_result_free(r);
}

static void test_rate_and_resets(void **state)
{
    (void)state;
    /* (0, 300]: samples at 60..300, count 4 -> 20: 16, extrapolated to the zero point 60 s
     * before the first sample: 16 * 300/240 over 300 s */
    double want = 16.0 * 300 / 240 / 300;
    assert_true(fabs(scalar_of("histogram_count(rate(h{job=\"a\"}[5m]))", 300000) - want) < 1e-12);
    assert_true(fabs(scalar_of("histogram_sum(increase(h{job=\"a\"}[5m]))", 300000) -
                     40.0 * 300 / 240) < 1e-9);
    /* the reset at 6 m: 20 then 4 adds 20 back; one reset */
    assert_true(scalar_of("resets(h{job=\"a\"}[10m])", 360000) == 1);
    assert_true(scalar_of("changes(h{job=\"a\"}[10m])", 360000) == 5);
    /* irate after the reset is the new value over the interval */
    assert_true(fabs(scalar_of("histogram_count(irate(h{job=\"a\"}[10m]))", 360000) - 4.0 / 60) <
                1e-12);
    assert_true(fabs(scalar_of("histogram_count(idelta(h{job=\"a\"}[10m]))", 300000) - 4) < 1e-12);
    /* a window holding a float and a histogram has no rate */
    assert_int_equal(count_of("rate(mixed{job=\"a\"}[5m])", 120000), 0);
    assert_true(scalar_of("count_over_time(mixed{job=\"a\"}[5m])", 120000) == 2);
    native_histogram s = hist_of("sum_over_time(h{job=\"a\"}[2m])", 120000, NULL);
    assert_true(s.count == 12 && s.sum == 30);
    native_histogram a = hist_of("avg_over_time(h{job=\"a\"}[2m])", 120000, NULL);
    assert_true(a.count == 6 && a.sum == 15);
    /* a histogram staleness marker ends the series and never enters a window */
    assert_int_equal(count_of("st", 200000), 0);
    assert_int_equal(count_of("st", 240000), 1);
    assert_true(scalar_of("count_over_time(st[5m])", 240000) == 3);
    assert_int_equal(count_of("st[5m]", 240000), 1);
    /* subqueries carry histograms too */
    assert_true(scalar_of("count_over_time(h{job=\"a\"}[5m:1m])", 300000) == 5);
}

static void test_operators(void **state)
{
    (void)state;
    double b0;
    native_histogram x = hist_of("h{job=\"a\"} * 2", 300000, &b0);
    assert_true(x.count == 40 && x.sum == 100 && b0 == 10);
    x = hist_of("h{job=\"a\"} / 4", 300000, &b0);
    assert_true(x.count == 5 && b0 == 1.25);
    x = hist_of("-h{job=\"a\"}", 300000, NULL);
    assert_true(x.count == -20 && x.reset_hint == HIST_HINT_GAUGE);
    x = hist_of("h{job=\"a\"} - ignoring(job) h{job=\"b\"} offset 1m", 300000, NULL);
    assert_true(x.count == 4 && x.sum == 10 && x.reset_hint == HIST_HINT_GAUGE);
    /* equality of histograms filters; a histogram and a float neither compare nor add */
    assert_int_equal(count_of("h == h", 300000), 2);
    assert_int_equal(count_of("h{job=\"a\"} != ignoring(job) h{job=\"b\"}", 300000), 0);
    assert_int_equal(count_of("h + 1", 300000), 0);
    assert_int_equal(count_of("h > 1", 300000), 0);
    assert_int_equal(count_of("h and h", 300000), 2);
    /* trim: keep what lies below 1, the whole (0.5, 1] bucket */
    x = hist_of("h{job=\"a\"} </ 1", 300000, &b0);
    assert_true(x.count == 5 && b0 == 5);
    assert_true(fabs(x.sum - 5 * sqrt(0.5)) < 1e-12);
    assert_int_equal(count_of("vector(1) </ 1", 0), 0);
}

static void test_aggregations(void **state)
{
    (void)state;
    native_histogram s = hist_of("sum(h)", 300000, NULL);
    assert_true(s.count == 40 && s.sum == 100);
    s = hist_of("avg(h)", 300000, NULL);
    assert_true(s.count == 20 && s.sum == 50);
    assert_true(scalar_of("count(h)", 300000) == 2);
    assert_true(scalar_of("group(h)", 300000) == 1);
    /* a float and a histogram in one group: no sum */
    assert_int_equal(count_of("sum(mixed)", 120000), 0);
    assert_true(scalar_of("count(mixed)", 120000) == 2);
    /* min and max look at floats only */
    assert_true(scalar_of("max(mixed)", 120000) == 3);
    assert_int_equal(count_of("max(h)", 300000), 0);
    assert_int_equal(count_of("topk(1, h)", 300000), 0);
    assert_int_equal(count_of("limitk(1, h)", 300000), 1);
    /* custom and exponential buckets do not add */
    assert_int_equal(count_of("sum({__name__=~\"c|h\"})", 60000), 0);
}

/* anchored and smoothed selectors over histograms */
static void test_anchored_smoothed(void **state)
{
    (void)state;
    /* anchored: from the sample at the range's start (180 s, count 12) to 300 s (count 20) */
    native_histogram x = hist_of("increase(h{job=\"a\"}[2m] anchored)", 300000, NULL);
    assert_true(x.count == 8 && x.sum == 20 && x.reset_hint == HIST_HINT_GAUGE);
    /* across the reset at 360 s: 20 -> 4 adds the 20 back */
    x = hist_of("increase(h{job=\"a\"}[2m] anchored)", 360000, NULL);
    assert_true(x.count == 4 - 16 + 20);
    assert_true(scalar_of("resets(h{job=\"a\"}[2m] anchored)", 360000) == 1);
    /* smoothed: the value at the range's bounds interpolated, 90 s lies halfway 60 s and 120 s */
    x = hist_of("h{job=\"a\"} smoothed", 90000, NULL);
    assert_true(x.count == 6 && x.sum == 15);
    x = hist_of("delta(h{job=\"a\"}[1m] smoothed)", 150000, NULL);
    assert_true(fabs(x.count - 4) < 1e-12);
    /* a float next to a histogram: no smoothed value */
    assert_int_equal(count_of("mixed{job=\"a\"} smoothed", 90000), 0);
}

/* A long range query over few series is split by steps across workers: histogram steps survive
 * the join. */
static void test_range_split(void **state)
{
    (void)state;
    promql_result *r = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = promql_eval_range(db, "h{job=\"a\"}", 0, 1100000, 1000, NULL, &r, err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->n_series, 1);
    /* from the first sample at 60 s until the newest (360 s) leaves the 5 m lookback */
    assert_int_equal(r->series[0].n_hpoints, 600);
    assert_int_equal(r->series[0].n_points, 0);
    assert_true(r->series[0].hpoints[0].t == 60000 && r->series[0].hpoints[599].t == 659000);
    assert_true(r->series[0].hpoints[599].h.count == 4); /* after the reset at 360 s */
    promql_result_free(r);
    /* a range function with long windows is split by steps: its histogram results are joined */
    rc = promql_eval_range(db, "rate(h{job=\"a\"}[2m])", 0, 1100000, 1000, NULL, &r, err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->n_series, 1);
    /* windows (t - 2m, t] holding two samples: t from 120 s to 419 s */
    assert_int_equal(r->series[0].n_hpoints, 300);
    promql_result_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector_json),     cmocka_unit_test(test_histogram_functions),
        cmocka_unit_test(test_rate_and_resets),   cmocka_unit_test(test_operators),
        cmocka_unit_test(test_aggregations),      cmocka_unit_test(test_range_split),
        cmocka_unit_test(test_anchored_smoothed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
