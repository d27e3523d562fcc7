/*
 * test_promql_ext.c: the experimental PromQL extensions of Prometheus 3 and the conformance fixes
 * that came with them, against a real database: fill()/fill_left()/fill_right(), info(), the
 * anchored and smoothed modifiers, sort_by_label's natural order, metadata labels dropped with the
 * metric name, and classic histogram groups that collide. Expected values are worked out by hand
 * in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "query/ast.h"
#include "query/natsort.h"

#include <math.h>
#include <string.h>

static strata_db *db;
static char dir[512];

static void put(const strata_label *ls, size_t nl, const strata_sample *ss, size_t ns)
{
    char err[STRATA_ERRMSG_SIZE];
    strata_series s = {ls, nl, ss, ns};
    int rc = strata_write(db, &s, 1, NULL, err);
    if (rc) fprintf(stderr, "write: %s\n", err);
    assert_int_equal(rc, 0);
}

static void put1(const char *name, const char *k, const char *v, double val)
{
    strata_label l[] = {{"__name__", name}, {k, v}};
    strata_sample s[] = {{1000, val}};
    put(l, 2, s, 1);
}

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir(dir, sizeof dir, "query-ext")) return -1;
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    char err[STRATA_ERRMSG_SIZE];
    if (strata_open(dir, &o, &db, err)) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    put1("l", "k", "a", 10);
    put1("l", "k", "b", 20);
    put1("r", "k", "a", 100);
    put1("r", "k", "c", 400);
    /* info metrics: target_info and build_info for instance i1, job j */
    strata_sample one[] = {{1000, 1}};
    strata_label up[] = {{"__name__", "up"}, {"instance", "i1"}, {"job", "j"}};
    put(up, 3, one, 1);
    strata_label other[] = {{"__name__", "up"}, {"instance", "i2"}, {"job", "j"}};
    put(other, 3, one, 1);
    strata_label ti[] = {
        {"__name__", "target_info"}, {"instance", "i1"}, {"job", "j"}, {"version", "v1"}};
    put(ti, 4, one, 1);
    strata_label bi[] = {
        {"__name__", "build_info"}, {"instance", "i1"}, {"job", "j"}, {"version", "v9"}};
    put(bi, 4, one, 1);
    /* a counter rising by 1 every 15 s: 1 at 0 s ... 6 at 75 s */
    strata_sample cs[6];
    for (int i = 0; i < 6; i++)
        cs[i] = (strata_sample){(int64_t)i * 15000, (double)(i + 1)};
    strata_label c[] = {{"__name__", "c"}};
    put(c, 1, cs, 6);
    /* natural order */
    put1("n", "v", "10", 1);
    put1("n", "v", "9", 1);
    put1("n", "v", "x2", 1);
    put1("n", "v", "x10", 1);
    /* type and unit metadata */
    strata_label typed[] = {
        {"__name__", "t"}, {"__type__", "counter"}, {"__unit__", "bytes"}, {"x", "1"}};
    strata_sample five[] = {{1000, 5}};
    put(typed, 4, five, 1);
    /* two classic histograms that differ only by name */
    strata_label ha[] = {{"__name__", "ha_bucket"}, {"le", "+Inf"}};
    strata_label hb[] = {{"__name__", "hb_bucket"}, {"le", "+Inf"}};
    put(ha, 2, five, 1);
    put(hb, 2, five, 1);
    /* two wavy gauges every 10 s for 4 h, for range queries long enough to split by steps */
    static strata_sample wave[1440];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 1440; i++)
            wave[i] = (strata_sample){(int64_t)i * 10000, (double)((i * (k + 3)) % 17) + i * 0.5};
        strata_label w[] = {{"__name__", "w"}, {"k", k ? "2" : "1"}};
        put(w, 2, wave, 1440);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    strata_close(db);
    test_rmtree(dir);
    return 0;
}

static void check(const char *q, int64_t t, const char *want)
{
    char *json = NULL, err[STRATA_ERRMSG_SIZE] = "";
    int rc = strata_query(db, q, t, &json, err);
    if (rc) fprintf(stderr, "%s: %s (%s)\n", q, err, strata_strerror(rc));
    assert_int_equal(rc, 0);
    if (strcmp(json, want)) fprintf(stderr, "%s:\n  got  %s\n  want %s\n", q, json, want);
    assert_string_equal(json, want);
    free(json);
}

static void check_fails(const char *q, int64_t t, const char *want_msg)
{
    char *json = NULL, err[STRATA_ERRMSG_SIZE] = "";
    int rc = strata_query(db, q, t, &json, err);
    if (!rc || !strstr(err, want_msg))
        fprintf(stderr, "%s: got %d \"%s\", want \"%s\"\n", q, rc, err, want_msg);
    assert_int_not_equal(rc, 0);
    assert_null(json);
    assert_non_null(strstr(err, want_msg));
}

#define VEC(...) "{\"resultType\":\"vector\",\"result\":[" __VA_ARGS__ "]}"
#define S(labels, t, v) "{\"metric\":{" labels "},\"value\":[" t ",\"" v "\"]}"

static void test_fill(void **state)
{
    (void)state;
    /* a: 10 + 100; b: 20 + fill 0; c: fill 0 + 400 */
    check("l + fill(0) r", 1000,
          VEC(S("\"k\":\"a\"", "1", "110") "," S("\"k\":\"b\"", "1", "20") "," S("\"k\":\"c\"", "1",
                                                                                 "400")));
    /* only the left side's series get a filled partner */
    check("l + fill_right(1) r", 1000,
          VEC(S("\"k\":\"a\"", "1", "110") "," S("\"k\":\"b\"", "1", "21")));
    check("l - fill_left(5) r", 1000,
          VEC(S("\"k\":\"a\"", "1", "-90") "," S("\"k\":\"c\"", "1", "-395")));
    /* a: 10 == 100 no; b: 20 == filled 20 yes; c: filled 20 == 400 no */
    check("l == bool fill(20) r", 1000,
          VEC(S("\"k\":\"a\"", "1", "0") "," S("\"k\":\"b\"", "1", "1") "," S("\"k\":\"c\"", "1",
                                                                              "0")));
    /* a filtering comparison keeps the left value, filled or not */
    check("l != fill(20) r", 1000,
          VEC(S("\"__name__\":\"l\",\"k\":\"a\"", "1", "10") "," S("\"k\":\"c\"", "1", "20")));
    /* without any partner and without fill, nothing */
    check("l + fill_right(0) nothing", 1000,
          VEC(S("\"k\":\"a\"", "1", "10") "," S("\"k\":\"b\"", "1", "20")));
    check("nothing + fill_right(0) l", 1000, VEC());
}

static void test_info(void **state)
{
    (void)state;
    /* i1 gains target_info's version; i2 has no info series and stays as it is */
    check("info(up)", 1000,
          VEC(S("\"__name__\":\"up\",\"instance\":\"i1\",\"job\":\"j\",\"version\":\"v1\"", "1",
                "1") "," S("\"__name__\":\"up\",\"instance\":\"i2\",\"job\":\"j\"", "1", "1")));
    /* a data matcher that refuses the empty string drops series without a match */
    check("info(up, {version=~\"v.*\", __name__=\"build_info\"})", 1000,
          VEC(S("\"__name__\":\"up\",\"instance\":\"i1\",\"job\":\"j\",\"version\":\"v9\"", "1",
                "1")));
    check("info(up, {version=\"none\"})", 1000, VEC());
    /* info series themselves are not enriched */
    check("info(target_info)", 1000,
          VEC(S("\"__name__\":\"target_info\",\"instance\":\"i1\",\"job\":\"j\",\"version\":\"v1\"",
                "1", "1")));
    check_fails("info(up, {__name__=~\".+_info\"})", 1000, "conflicting label: version");
}

static void test_anchored_smoothed(void **state)
{
    (void)state;
    /* anchored at 75 s: from the sample at 15 s (2) to the one at 75 s (6) */
    check("increase(c[1m] anchored)", 75000, VEC(S("", "75", "4")));
    check("delta(c[1m] anchored)", 75000, VEC(S("", "75", "4")));
    /* 2 -> 3 -> 4 -> 5 -> 6: four changes, no reset */
    check("changes(c[1m] anchored)", 75000, VEC(S("", "75", "4")));
    check("resets(c[1m] anchored)", 75000, VEC(S("", "75", "0")));
    /* smoothed at 70 s: 1 + 10/15 at 10 s and 5 + 10/15 at 70 s, 4 apart */
    check("increase(c[1m] smoothed)", 70000, VEC(S("", "70", "4")));
    /* halfway between 5 (60 s) and 6 (75 s) */
    /* anchored changes nothing on an instant selector, as in Prometheus */
    check("c anchored", 67500, VEC(S("\"__name__\":\"c\"", "67.500", "5")));
    check("c smoothed", 67500, VEC(S("\"__name__\":\"c\"", "67.500", "5.5")));
    check_fails("deriv(c[1m] anchored)", 75000,
                "anchored modifier can only be used with: changes, delta, increase, rate, resets - "
                "not with deriv");
    check_fails(
        "max_over_time(c[1m] smoothed)", 75000,
        "smoothed modifier can only be used with: delta, increase, rate - not with max_over_time");
}

static void test_natural_order(void **state)
{
    (void)state;
    assert_true(natural_less("9", 1, "10", 2));
    assert_false(natural_less("10", 2, "9", 1));
    assert_true(natural_less("x2", 2, "x10", 3));
    assert_true(natural_less("1.2.3", 5, "1.11.3", 6));
    assert_true(natural_less("ab", 2, "abc", 3));
    assert_false(natural_less("", 0, "a", 1));
    /* a digit run too long for an int64 compares as text */
    assert_true(natural_less("99999999999999999999", 20, "99999999999999999999a", 21));
    check("sort_by_label(n, \"v\")", 1000,
          VEC(S("\"__name__\":\"n\",\"v\":\"9\"", "1",
                "1") "," S("\"__name__\":\"n\",\"v\":\"10\"", "1",
                           "1") "," S("\"__name__\":\"n\",\"v\":\"x2\"", "1",
                                      "1") "," S("\"__name__\":\"n\",\"v\":\"x10\"", "1", "1")));
}

static void test_metadata_labels(void **state)
{
    (void)state;
    check("t", 1000,
          VEC(S("\"__name__\":\"t\",\"__type__\":\"counter\",\"__unit__\":\"bytes\",\"x\":\"1\"",
                "1", "5")));
    check("t * 2", 1000, VEC(S("\"x\":\"1\"", "1", "10")));
    check("-t", 1000, VEC(S("\"x\":\"1\"", "1", "-5")));
}

static void test_classic_histogram_groups(void **state)
{
    (void)state;
    check("histogram_quantile(0.5, ha_bucket)", 1000, VEC(S("", "1", "NaN")));
    check_fails("histogram_quantile(0.5, {__name__=~\"h[ab]_bucket\"})", 1000,
                "vector cannot contain metrics with the same labelset");
}

/* A query that names one selector (or one rate) twice reads it once: the sample limit counts the
 * samples read, so a limit between one and two reads tells them apart. */
static void test_repeated_subexpressions(void **state)
{
    (void)state;
    promql_options o;
    promql_options_init(&o);
    o.max_samples = 8; /* c has 6 samples in the 5 m lookback at 75 s */
    char err[STRATA_ERRMSG_SIZE] = "";
    promql_result *r = NULL;
    const char *qs[] = {"c / c", "rate(c[1m]) / rate(c[1m])", "sum(c) - c"};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        int rc = promql_eval_instant(db, qs[i], 75000, &o, &r, err);
        if (rc) fprintf(stderr, "%s: %s\n", qs[i], err);
        assert_int_equal(rc, 0);
        assert_int_equal(r->n_series, 1);
        assert_true(r->series[0].points[0].v == (i == 2 ? 0.0 : 1.0));
        promql_result_free(r);
    }
    /* two different selectors still count twice */
    assert_int_equal(promql_eval_instant(db, "c / (c offset 1s)", 75000, &o, &r, err),
                     STRATA_ELIMIT);
    /* a repeated range selector under two different functions is read once and gives the same
     * values as two separate queries */
    check("increase(c[1m]) - increase(c[1m])", 75000, VEC(S("", "75", "0")));
    check("delta(c[1m]) - increase(c[1m])", 75000, VEC(S("", "75", "0")));
    check("(c + 1) * (c + 1)", 75000, VEC(S("", "75", "49")));
    /* the plan says which nodes are shared: both rate() calls and their range selectors, not the
     * sum and count around them */
    buf b = {0};
    assert_int_equal(
        promql_explain(db, "sum(rate(c[1m])) / count(rate(c[1m]))", 0, 60000, 15000, NULL, &b, err),
        0);
    assert_int_equal(buf_putc(&b, 0), 0);
    const char *p = (const char *)b.data;
    int shared = 0;
    while ((p = strstr(p, "Shared (occurs more than once")) != NULL) {
        shared++;
        p++;
    }
    assert_int_equal(shared, 4);
    buf_free(&b);
}

/* Range functions over few series and many steps are split by steps across threads; the result
 * and the samples counted must be those of one sequential pass. */
static void test_step_split(void **state)
{
    (void)state;
    const char *qs[] = {"w",
                        "rate(w[1m])",
                        "quantile_over_time(0.5, w[5m])",
                        "w smoothed",
                        "increase(w[1m] anchored)",
                        "changes(w[2m] anchored)",
                        "w offset 1m",
                        "max_over_time(w[30s] @ 3600)"};
    for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++) {
        promql_result *r[2];
        for (int seq = 0; seq < 2; seq++) {
            promql_options o;
            promql_options_init(&o);
            o.sequential_steps = seq == 1;
            char err[STRATA_ERRMSG_SIZE] = "";
            /* 1441 steps: two workers of 720 where two cores are online */
            int rc = promql_eval_range(db, qs[q], 0, 14400000, 10000, &o, &r[seq], err);
            if (rc) fprintf(stderr, "%s: %s\n", qs[q], err);
            assert_int_equal(rc, 0);
        }
        assert_int_equal(r[0]->n_series, r[1]->n_series);
        assert_true(r[0]->n_series > 0);
        for (size_t k = 0; k < r[0]->n_series; k++) {
            const promql_series *a = &r[0]->series[k], *b = &r[1]->series[k];
            assert_true(labels_equal(a->labels, a->n_labels, b->labels, b->n_labels));
            assert_int_equal(a->n_points, b->n_points);
            for (size_t i = 0; i < a->n_points; i++) {
                assert_true(a->points[i].t == b->points[i].t);
                assert_memory_equal(&a->points[i].v, &b->points[i].v, sizeof(double));
            }
        }
        promql_result_free(r[0]);
        promql_result_free(r[1]);
    }
    /* the sample limit sees each sample once however many workers read it (last_over_time: a range
     * function, so split; its windows read every sample of both series) */
    promql_options o;
    promql_options_init(&o);
    o.max_samples = 2 * 1440;
    promql_result *r = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    assert_int_equal(
        promql_eval_range(db, "last_over_time(w[5m])", 0, 14400000, 10000, &o, &r, err), 0);
    promql_result_free(r);
    o.max_samples = 2 * 1440 - 1;
    assert_int_equal(
        promql_eval_range(db, "last_over_time(w[5m])", 0, 14400000, 10000, &o, &r, err),
        STRATA_ELIMIT);
}

/* Runs q at t with delayed name removal on or off and compares the JSON. */
static void check_names(const char *q, int64_t t, bool delayed, const char *want)
{
    promql_options o;
    promql_options_init(&o);
    o.delayed_name_removal = delayed;
    char err[STRATA_ERRMSG_SIZE] = "";
    promql_result *r = NULL;
    int rc = promql_eval_instant(db, q, t, &o, &r, err);
    if (!want) {
        if (rc != STRATA_EEXEC || !strstr(err, "same labelset"))
            fprintf(stderr, "%s: want a duplicate labelset error, got %d %s\n", q, rc, err);
        assert_int_equal(rc, STRATA_EEXEC);
        assert_non_null(strstr(err, "same labelset"));
        return;
    }
    if (rc) fprintf(stderr, "%s: %s\n", q, err);
    assert_int_equal(rc, 0);
    buf b = {0};
    assert_int_equal(promql_result_json(r, &b), 0);
    assert_int_equal(buf_putc(&b, 0), 0);
    if (strcmp((char *)b.data, want))
        fprintf(stderr, "%s:\n  got  %s\n  want %s\n", q, (char *)b.data, want);
    assert_string_equal((char *)b.data, want);
    buf_free(&b);
    promql_result_free(r);
}

/* Delayed __name__ removal (Prometheus' promql-delayed-name-removal): the name stays visible
 * until the query ends. */
static void test_delayed_name_removal(void **state)
{
    (void)state;
    /* without: rate() has dropped the name before label_replace sees it */
    check_names("label_replace(increase(c[1m] anchored), \"src\", \"$1\", \"__name__\", \"(.*)\")",
                75000, false, VEC(S("", "75", "4")));
    check_names("label_replace(increase(c[1m] anchored), \"src\", \"$1\", \"__name__\", \"(.*)\")",
                75000, true, VEC(S("\"src\":\"c\"", "75", "4")));
    /* a name set anew by label_replace survives */
    check_names(
        "label_replace(increase(c[1m] anchored), \"__name__\", \"r_$1\", \"__name__\", \"(.*)\")",
        75000, true, VEC(S("\"__name__\":\"r_c\"", "75", "4")));
    /* aggregation by the pending name, then removal at the end */
    check_names("sum by (__name__) (increase(c[1m] anchored))", 75000, true, VEC(S("", "75", "4")));
    /* l and r lose their names in abs(): a clash at once without, only at the end with */
    check_names("abs({__name__=~\"l|r\"})", 1000, false, NULL);
    check_names("abs({__name__=~\"l|r\"})", 1000, true, NULL);
    check_names("sum by (k) (abs({__name__=~\"l|r\"}))", 1000, false, NULL);
    check_names("sum by (k) (abs({__name__=~\"l|r\"}))", 1000, true,
                VEC(S("\"k\":\"a\"", "1", "110") "," S("\"k\":\"b\"", "1",
                                                       "20") "," S("\"k\":\"c\"", "1", "400")));
    /* metadata labels go with the name at the end; a filtering comparison keeps the mark */
    check_names("-t", 1000, true, VEC(S("\"x\":\"1\"", "1", "-5")));
    check_names("abs(t) > 1", 1000, true, VEC(S("\"x\":\"1\"", "1", "5")));
    check_names("t == bool 5", 1000, true, VEC(S("\"x\":\"1\"", "1", "1")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_anchored_smoothed),
        cmocka_unit_test(test_natural_order),
        cmocka_unit_test(test_metadata_labels),
        cmocka_unit_test(test_classic_histogram_groups),
        cmocka_unit_test(test_repeated_subexpressions),
        cmocka_unit_test(test_step_split),
        cmocka_unit_test(test_delayed_name_removal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
