/*
 * test_eval.c: the evaluator and its JSON against a real database (strata_open in a scratch
 * directory under $STRATA_TEST_TMP, written with strata_write): literals, instant selectors with
 * the 5 m lookback and staleness, offset and @, range selectors, range queries and their point
 * limit, duration expressions, the JSON Prometheus' API returns (escaping, label order, number
 * and timestamp forms), the error classes, and the C API's strata_query / strata_query_range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "query/ast.h"

#include <math.h>
#include <string.h>

static strata_db *db;
static char dir[512];

static double stale_nan(void)
{
    uint64_t b = 0x7ff0000000000002ull;
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void put_series(const strata_label *ls, size_t nl, const strata_sample *ss, size_t ns)
{
    char err[STRATA_ERRMSG_SIZE];
    strata_series s = {ls, nl, ss, ns};
    int rc = strata_write(db, &s, 1, NULL, err);
    if (rc) fprintf(stderr, "write: %s\n", err);
    assert_int_equal(rc, 0);
}

enum { BIG = 2000, BIG_SAMPLES = 60 };

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir(dir, sizeof dir, "query-eval")) return -1;
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    char err[STRATA_ERRMSG_SIZE];
    if (strata_open(dir, &o, &db, err)) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    strata_label a[] = {{"__name__", "m"}, {"job", "a<b>"}};
    strata_sample as[] = {{10000, 1}, {20000, 2}, {30000, 3}};
    put_series(a, 2, as, 3);
    /* a staleness marker in the middle: no value while it is the newest sample */
    strata_label b[] = {{"__name__", "m"}, {"job", "b"}};
    strata_sample bs[] = {{10000, 10}, {20000, stale_nan()}, {30000, 30}};
    put_series(b, 2, bs, 3);
    strata_label c[] = {{"__name__", "gone"}, {"x", "1"}};
    strata_sample cs[] = {{10000, 1}, {20000, stale_nan()}};
    put_series(c, 2, cs, 2);
    strata_label d[] = {{"__name__", "my.metric"}, {"a.b", "c"}, {"instance", "i"}};
    strata_sample ds[] = {{10000, 0.1}, {20000, 1e-7}, {30000, 1e21}};
    put_series(d, 3, ds, 3);
    strata_label e[] = {{"__name__", "esc"}, {"v", "\"\\\n\t\x01<>&\xe2\x80\xa8 \xc3\xbc"}};
    strata_sample es[] = {{10000, NAN}, {20000, INFINITY}, {30000, -INFINITY}};
    put_series(e, 2, es, 3);
    /* enough series for a query to outlast a 1 ms deadline */
    static char ids[BIG][8];
    static strata_sample big[BIG_SAMPLES];
    for (int k = 0; k < BIG_SAMPLES; k++) big[k] = (strata_sample){(int64_t)k * 10000, (double)k};
    for (int i = 0; i < BIG; i++) {
        snprintf(ids[i], sizeof ids[i], "%d", i);
        strata_label l[] = {{"__name__", "big"}, {"id", ids[i]}};
        put_series(l, 2, big, BIG_SAMPLES);
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

/* Runs an instant (step 0) or range query and returns its JSON; fails the test on an error. */
static char *query(const char *q, int64_t start, int64_t end, int64_t step)
{
    char *json = NULL, err[STRATA_ERRMSG_SIZE] = "";
    int rc = step ? strata_query_range(db, q, start, end, step, &json, err)
                  : strata_query(db, q, start, &json, err);
    if (rc) fprintf(stderr, "%s: %s (%s)\n", q, err, strata_strerror(rc));
    assert_int_equal(rc, 0);
    assert_non_null(json);
    return json;
}

static void check(const char *q, int64_t start, int64_t end, int64_t step, const char *want)
{
    char *json = query(q, start, end, step);
    if (strcmp(json, want)) fprintf(stderr, "%s:\n  got  %s\n  want %s\n", q, json, want);
    assert_string_equal(json, want);
    free(json);
}

static void check_instant(const char *q, int64_t t, const char *want)
{
    check(q, t, t, 0, want);
}

static void check_fails(const char *q, int64_t start, int64_t end, int64_t step, int want_rc,
                        const char *want_msg)
{
    char *json = (char *)1, err[STRATA_ERRMSG_SIZE] = "";
    int rc = step ? strata_query_range(db, q, start, end, step, &json, err)
                  : strata_query(db, q, start, &json, err);
    if (rc != want_rc || !strstr(err, want_msg))
        fprintf(stderr, "%s: got %s \"%s\", want %s \"%s\"\n", q, strata_strerror(rc), err,
                strata_strerror(want_rc), want_msg);
    assert_int_equal(rc, want_rc);
    assert_null(json);
    assert_non_null(strstr(err, want_msg));
}

#define VEC(...) "{\"resultType\":\"vector\",\"result\":[" __VA_ARGS__ "]}"
#define MAT(...) "{\"resultType\":\"matrix\",\"result\":[" __VA_ARGS__ "]}"
#define A "\"__name__\":\"m\",\"job\":\"a\\u003cb\\u003e\""
#define B "\"__name__\":\"m\",\"job\":\"b\""

static void test_literals(void **state)
{
    (void)state;
    check_instant("42", 5000, "{\"resultType\":\"scalar\",\"result\":[5,\"42\"]}");
    check_instant("-1.5", 5500, "{\"resultType\":\"scalar\",\"result\":[5.500,\"-1.5\"]}");
    check_instant("(1e-7)", 5000, "{\"resultType\":\"scalar\",\"result\":[5,\"1e-07\"]}");
    check_instant("Inf", 0, "{\"resultType\":\"scalar\",\"result\":[0,\"+Inf\"]}");
    check_instant("-Inf", 0, "{\"resultType\":\"scalar\",\"result\":[0,\"-Inf\"]}");
    check_instant("NaN", 0, "{\"resultType\":\"scalar\",\"result\":[0,\"NaN\"]}");
    check_instant("5m", 0, "{\"resultType\":\"scalar\",\"result\":[0,\"300\"]}");
    check_instant("\"a\\tb<\\u2028\"", 1000,
                  "{\"resultType\":\"string\",\"result\":[1,\"a\\tb\\u003c\\u2028\"]}");
    check_instant("'x'", -1500, "{\"resultType\":\"string\",\"result\":[-1.500,\"x\"]}");
    /* a range query of a scalar is a matrix of one series without labels */
    check("42", 0, 20000, 10000, MAT("{\"metric\":{},\"values\":[[0,\"42\"],[10,\"42\"],[20,\"42\"]]}"));
    check_fails("\"s\"", 0, 20000, 10000, STRATA_EEXEC,
                "invalid expression type \"string\" for range query, must be Scalar or instant Vector");
}

static void test_instant_selectors(void **state)
{
    (void)state;
    /* the newest sample in (t - 5m, t]; a stale marker as the newest sample means no value */
    check_instant("m", 25000, VEC("{\"metric\":{" A "},\"value\":[25,\"2\"]}"));
    check_instant("m", 30000, VEC("{\"metric\":{" A "},\"value\":[30,\"3\"]}," "{\"metric\":{" B
                                  "},\"value\":[30,\"30\"]}"));
    check_instant("m", 20000, VEC("{\"metric\":{" A "},\"value\":[20,\"2\"]}"));
    check_instant("m", 9999, VEC());
    check_instant("m{job=\"b\"}", 15000, VEC("{\"metric\":{" B "},\"value\":[15,\"10\"]}"));
    check_instant("gone", 15000, VEC("{\"metric\":{\"__name__\":\"gone\",\"x\":\"1\"},\"value\":[15,\"1\"]}"));
    check_instant("gone", 25000, VEC()); /* ended by its stale marker, not by the lookback */
    /* the lookback window is left-open: a sample exactly 5 m old is out */
    check_instant("m{job=\"b\"}", 329999, VEC("{\"metric\":{" B "},\"value\":[329.999,\"30\"]}"));
    check_instant("m{job=\"b\"}", 330000, VEC());
    /* every matcher type, UTF-8 names, regexes anchored */
    check_instant("m{job=~\"a.*\"}", 30000, VEC("{\"metric\":{" A "},\"value\":[30,\"3\"]}"));
    check_instant("m{job!~\"a.*\"}", 30000, VEC("{\"metric\":{" B "},\"value\":[30,\"30\"]}"));
    check_instant("m{job!=\"b\"}", 30000, VEC("{\"metric\":{" A "},\"value\":[30,\"3\"]}"));
    check_instant("m{job=~\"a\"}", 30000, VEC());
    check_instant("{__name__=~\"m|gone\", job=\"b\"}", 30000, VEC("{\"metric\":{" B "},\"value\":[30,\"30\"]}"));
    check_instant("{\"my.metric\", \"a.b\"=\"c\"}", 10000,
                  VEC("{\"metric\":{\"__name__\":\"my.metric\",\"a.b\":\"c\",\"instance\":\"i\"},"
                      "\"value\":[10,\"0.1\"]}"));
    /* plain selectors keep __name__, so series of different metrics stay apart */
    check_instant("{job=~\".+\"}", 30000, VEC("{\"metric\":{" A "},\"value\":[30,\"3\"]},"
                                              "{\"metric\":{" B "},\"value\":[30,\"30\"]}"));
    check_instant("nosuch", 30000, VEC());
}

static void test_offset_and_at(void **state)
{
    (void)state;
    check_instant("m offset 10s", 30000, VEC("{\"metric\":{" A "},\"value\":[30,\"2\"]}"));
    check_instant("m offset -10s", 20000, VEC("{\"metric\":{" A "},\"value\":[20,\"3\"]},"
                                              "{\"metric\":{" B "},\"value\":[20,\"30\"]}"));
    check_instant("m offset 1m30s", 110000, VEC("{\"metric\":{" A "},\"value\":[110,\"2\"]}"));
    /* @ pins the evaluation time; the result keeps the query's time */
    check_instant("m @ 20", 1000000, VEC("{\"metric\":{" A "},\"value\":[1000,\"2\"]}"));
    check_instant("m @ 30 offset 20s", 0, VEC("{\"metric\":{" A "},\"value\":[0,\"1\"]},"
                                             "{\"metric\":{" B "},\"value\":[0,\"10\"]}"));
    check("m{job=\"b\"} @ start()", 10000, 30000, 10000,
          MAT("{\"metric\":{" B "},\"values\":[[10,\"10\"],[20,\"10\"],[30,\"10\"]]}"));
    check("m{job=\"a<b>\"} @ end()", 10000, 30000, 10000,
          MAT("{\"metric\":{" A "},\"values\":[[10,\"3\"],[20,\"3\"],[30,\"3\"]]}"));
}

static void test_range_selectors(void **state)
{
    (void)state;
    /* samples in (t - range, t], staleness markers left out */
    check_instant("m[15s]", 30000, MAT("{\"metric\":{" A "},\"values\":[[20,\"2\"],[30,\"3\"]]},"
                                       "{\"metric\":{" B "},\"values\":[[30,\"30\"]]}"));
    check_instant("m[20s]", 30000, MAT("{\"metric\":{" A "},\"values\":[[20,\"2\"],[30,\"3\"]]},"
                                       "{\"metric\":{" B "},\"values\":[[30,\"30\"]]}"));
    check_instant("m{job=\"b\"}[1m]", 30000, MAT("{\"metric\":{" B "},\"values\":[[10,\"10\"],[30,\"30\"]]}"));
    check_instant("m[10s] offset 10s", 30000, MAT("{\"metric\":{" A "},\"values\":[[20,\"2\"]]}"));
    check_instant("m[30] @ 20", 99000, MAT("{\"metric\":{" A "},\"values\":[[10,\"1\"],[20,\"2\"]]},"
                                          "{\"metric\":{" B "},\"values\":[[10,\"10\"]]}"));
    check_instant("gone[1m]", 60000, MAT("{\"metric\":{\"__name__\":\"gone\",\"x\":\"1\"},"
                                         "\"values\":[[10,\"1\"]]}"));
    check_instant("nosuch[1m]", 60000, MAT());
    check_fails("m[1m]", 0, 60000, 10000, STRATA_EEXEC,
                "invalid expression type \"range vector\" for range query, must be Scalar or instant "
                "Vector");
}

static void test_range_queries(void **state)
{
    (void)state;
    check("m", 0, 40000, 10000,
          MAT("{\"metric\":{" A "},\"values\":[[10,\"1\"],[20,\"2\"],[30,\"3\"],[40,\"3\"]]},"
              "{\"metric\":{" B "},\"values\":[[10,\"10\"],[30,\"30\"],[40,\"30\"]]}"));
    check("m{job=\"b\"}", 5000, 16000, 5500,
          MAT("{\"metric\":{" B "},\"values\":[[10.500,\"10\"],[16,\"10\"]]}"));
    check("nosuch", 0, 40000, 10000, MAT());
    /* at most 11,000 steps (11,001 points), as Prometheus */
    char *json = query("42", 0, 11000 * 1000LL, 1000);
    free(json);
    check_fails("42", 0, 11001 * 1000LL, 1000, STRATA_EINVAL,
                "exceed maximum resolution of 11,000 points per timeseries");
    char *j = (char *)1, err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_query_range(db, "42", 0, 1000, 0, &j, err), STRATA_EINVAL);
    assert_null(j);
    assert_non_null(strstr(err, "step must be positive"));
    buf b = {0};
    assert_int_equal(promql_exec_range(db, "42", 1000, 0, 1000, NULL, &b, err), STRATA_EINVAL);
    buf_free(&b);
}

static void test_json(void **state)
{
    (void)state;
    /* Go's encoding/json escaping, labels sorted by name, special values as Prometheus writes
     * them */
    check("esc", 10000, 30000, 10000,
          MAT("{\"metric\":{\"__name__\":\"esc\",\"v\":\"\\\"\\\\\\n\\t\\u0001\\u003c\\u003e\\u0026"
              "\\u2028 \xc3\xbc\"},\"values\":[[10,\"NaN\"],[20,\"+Inf\"],[30,\"-Inf\"]]}"));
    check("{__name__=\"my.metric\"}", 10000, 30000, 10000,
          MAT("{\"metric\":{\"__name__\":\"my.metric\",\"a.b\":\"c\",\"instance\":\"i\"},"
              "\"values\":[[10,\"0.1\"],[20,\"1e-07\"],[30,\"1e+21\"]]}"));
    /* the structured result behind the JSON */
    promql_result *r;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(promql_eval_instant(db, "m", 30000, NULL, &r, err), 0);
    assert_int_equal(r->type, PROMQL_VECTOR);
    assert_int_equal(r->n_series, 2);
    assert_int_equal(r->series[0].n_points, 1);
    assert_true(r->series[0].points[0].v == 3);
    buf b = {0};
    assert_int_equal(promql_result_json(r, &b), 0);
    assert_non_null(strstr((char *)b.data, "\"resultType\":\"vector\""));
    buf_free(&b);
    promql_result_free(r);
    /* the exec functions append to the caller's buffer */
    promql_options o;
    promql_options_init(&o);
    assert_int_equal(o.lookback_ms, 300000);
    b = (buf){0};
    buf_printf(&b, "{\"status\":\"success\",\"data\":");
    assert_int_equal(promql_exec_instant(db, "1", 0, &o, &b, err), 0);
    assert_string_equal((char *)b.data,
                        "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[0,\"1\"]}");
    buf_free(&b);
    assert_int_equal(promql_exec_range(db, "2", 0, 1000, 1000, &o, &b, err), 0);
    assert_string_equal((char *)b.data,
                        MAT("{\"metric\":{},\"values\":[[0,\"2\"],[1,\"2\"]]}"));
    buf_free(&b);
}

static void test_options(void **state)
{
    (void)state;
    promql_options o;
    promql_options_init(&o);
    buf b = {0};
    char err[STRATA_ERRMSG_SIZE];
    /* a shorter lookback */
    o.lookback_ms = 5000;
    assert_int_equal(promql_exec_instant(db, "m{job=\"b\"}", 34000, &o, &b, err), 0);
    assert_non_null(strstr((char *)b.data, "\"30\""));
    buf_free(&b);
    assert_int_equal(promql_exec_instant(db, "m{job=\"b\"}", 36000, &o, &b, err), 0);
    assert_string_equal((char *)b.data, VEC());
    buf_free(&b);
    /* the sample limit */
    promql_options_init(&o);
    o.max_samples = 2;
    assert_int_equal(promql_exec_instant(db, "m[1m]", 30000, &o, &b, err), STRATA_ELIMIT);
    assert_non_null(strstr(err, "query processing would load too many samples into memory"));
    buf_free(&b);
    /* the deadline */
    promql_options_init(&o);
    o.timeout_ms = 1;
    int rc = promql_exec_range(db, "sum(rate(big[1m]))", 0, 11000 * 1000LL, 1000, &o, &b, err);
    assert_int_equal(rc, STRATA_ETIMEOUT);
    assert_non_null(strstr(err, "query timed out"));
    buf_free(&b);
}

static void test_duration_expressions(void **state)
{
    (void)state;
    /* step() and range() resolve per query; literal arithmetic works everywhere */
    check("count_over_time(big{id=\"7\"}[step() * 2])", 100000, 120000, 10000,
          MAT("{\"metric\":{\"id\":\"7\"},\"values\":[[100,\"2\"],[110,\"2\"],[120,\"2\"]]}"));
    check_instant("count_over_time(big{id=\"7\"}[1m + 30s])", 300000,
                  VEC("{\"metric\":{\"id\":\"7\"},\"value\":[300,\"9\"]}"));
    check_instant("big{id=\"7\"} offset (1m * 2)", 300000,
                  VEC("{\"metric\":{\"__name__\":\"big\",\"id\":\"7\"},\"value\":[300,\"18\"]}"));
    check("big{id=\"7\"} offset step()", 100000, 110000, 10000,
          MAT("{\"metric\":{\"__name__\":\"big\",\"id\":\"7\"},\"values\":[[100,\"9\"],[110,\"10\"]]}"));
    /* step() is 0 in an instant query: not a usable range */
    check_fails("big[step()]", 100000, 100000, 0, STRATA_EPARSE, "1:5: duration must be greater than 0");
    check_fails("big[1m % (0)]", 100000, 100000, 0, STRATA_EPARSE, "1:5: modulo by zero");
}

static void test_errors(void **state)
{
    (void)state;
    check_fails("sum(m", 0, 0, 0, STRATA_EPARSE, "1:6: parse error: unclosed left parenthesis");
    check_fails("rate(m)", 0, 0, 0, STRATA_EPARSE,
                "1:6: parse error: expected type range vector in call to function \"rate\", got "
                "instant vector");
    check_fails("nosuchfn(m)", 0, 0, 0, STRATA_EPARSE,
                "1:1: parse error: unknown function with name \"nosuchfn\"");
    check_fails("{job=\"\"}", 0, 0, 0, STRATA_EPARSE, "at least one non-empty matcher");
    /* valid PromQL this evaluator does not implement yet */
    check_fails("start_timestamp(m)", 30000, 30000, 0, STRATA_EUNSUPPORTED,
                "function \"start_timestamp\" is not supported yet");
    /* execution errors */
    check_fails("m + on() m", 30000, 30000, 0, STRATA_EEXEC, "many-to-many matching not allowed");
    char *json = (char *)1, err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_query(db, NULL, 0, &json, err), STRATA_EINVAL);
    assert_null(json);
}

static void test_operators_still_work(void **state)
{
    (void)state;
    /* the evaluator's operators read the parser's new operator kinds */
    check_instant("m and m{job=\"b\"}", 30000, VEC("{\"metric\":{" B "},\"value\":[30,\"30\"]}"));
    check_instant("m unless m{job=\"b\"}", 30000, VEC("{\"metric\":{" A "},\"value\":[30,\"3\"]}"));
    check_instant("count(m or gone)", 15000, VEC("{\"metric\":{},\"value\":[15,\"3\"]}"));
    check_instant("1 atan2 1", 0, "{\"resultType\":\"scalar\",\"result\":[0,\"0.7853981633974483\"]}");
    check_instant("2 ^ 3 ^ 2", 0, "{\"resultType\":\"scalar\",\"result\":[0,\"512\"]}");
    check_instant("-2 ^ 2", 0, "{\"resultType\":\"scalar\",\"result\":[0,\"-4\"]}");
    check_instant("+m{job=\"b\"}", 30000, VEC("{\"metric\":{" B "},\"value\":[30,\"30\"]}"));
    check_instant("-m{job=\"b\"}", 30000, VEC("{\"metric\":{\"job\":\"b\"},\"value\":[30,\"-30\"]}"));
    check_instant("m == bool 3", 30000, VEC("{\"metric\":{\"job\":\"a\\u003cb\\u003e\"},\"value\":[30,\"1\"]},"
                                            "{\"metric\":{\"job\":\"b\"},\"value\":[30,\"0\"]}"));
}

static char *nest(const char *pre, int n, const char *mid, const char *post)
{
    size_t lp = strlen(pre), lm = strlen(mid), lq = strlen(post);
    char *q = malloc((lp + lq) * (size_t)n + lm + 1), *o = q;
    assert_non_null(q);
    for (int i = 0; i < n; i++, o += lp) memcpy(o, pre, lp);
    memcpy(o, mid, lm);
    o += lm;
    for (int i = 0; i < n; i++, o += lq) memcpy(o, post, lq);
    *o = '\0';
    return q;
}

/* The deepest expressions the parser accepts evaluate without exhausting the stack. */
static void test_deep_expressions(void **state)
{
    (void)state;
    const struct {
        const char *pre, *mid, *post, *value;
        int n;
    } cases[] = {
        {"(", "m{job=\"b\"}", ")", "\"30\"", 490},
        {"-(", "m{job=\"b\"}", ")", "\"30\"", 244}, /* two levels each, an even count */
        {"abs(", "m{job=\"b\"}", ")", "\"30\"", 490},
        {"sum(", "m{job=\"b\"}", ")", "\"30\"", 490},
        {"", "m{job=\"b\"}", " + 0", "\"30\"", 490},
        {"1 + ", "0", "", "\"490\"", 490},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *q = nest(cases[i].pre, cases[i].n, cases[i].mid, cases[i].post);
        char *json = query(q, 30000, 30000, 0);
        bool ok = strstr(json, cases[i].value) != NULL;
        if (!ok) fprintf(stderr, "%.30s...: %s\n", q, json);
        free(json);
        free(q);
        assert_true(ok);
    }
}

static void test_explain(void **state)
{
    (void)state;
    buf b = {0};
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(promql_explain(db, "sum by (job) (rate(m[step()]))", 0, 60000, 15000, NULL, &b, err), 0);
    assert_non_null(strstr((char *)b.data, "Expression sum by (job) (rate(m[step()]))\n"));
    assert_non_null(strstr((char *)b.data, "range=15s"));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_instant_selectors),
        cmocka_unit_test(test_offset_and_at),
        cmocka_unit_test(test_range_selectors),
        cmocka_unit_test(test_range_queries),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_duration_expressions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_operators_still_work),
        cmocka_unit_test(test_deep_expressions),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
