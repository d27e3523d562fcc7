/*
 * test_promql.c: the PromQL lexer, parser and selector evaluator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "query/ast.h"

#include <math.h>

static promql_expr *parse_ok(const char *q)
{
    promql_expr *e = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = promql_parse(q, strlen(q), &e, err);
    if (rc) fprintf(stderr, "%s: %s\n", q, err);
    assert_int_equal(rc, 0);
    return e;
}

static void parse_err(const char *q, const char *want)
{
    promql_expr *e = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    assert_int_equal(promql_parse(q, strlen(q), &e, err), STRATA_EPARSE);
    if (!strstr(err, want)) fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", q, err, want);
    assert_non_null(strstr(err, want));
}

static void test_valid_expressions(void **state)
{
    (void)state;
    const char *ok[] = {
        "up", "1", "-1.5e3", "0x1f", "Inf", "-inf", "NaN", "\"str\"", "'s'", "`raw\\n`",
        "up{job=\"api\"}", "up{job!=\"a\",instance=~\"b.*\",x!~\"c\"}", "{__name__=~\"up|down\"}",
        "{\"my.metric\", \"a.b\"=\"c\"}", "up[5m]", "up[1h30m]", "up[300]", "up offset 5m",
        "up offset -5m", "up @ 1609746000", "up @ start()", "up[5m] @ end() offset 1m",
        "rate(up[5m])", "sum by (job) (rate(x[5m]))", "sum(rate(x[5m])) by (job)",
        "topk(3, x)", "a + b * c", "a or b and c unless d", "a / on(job) group_left(x) b",
        "a == bool b", "foo[1h:5m]", "foo[1h:]", "(up)", "-up", "2 ^ 3 ^ 2",
        "x atan2 y", "up # a comment\n", "sum without (a, b) (x)", "count_values(\"v\", x)",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) promql_expr_free(parse_ok(ok[i]));
}

static void test_precedence(void **state)
{
    (void)state;
    promql_expr *e = parse_ok("a + b * c");
    assert_int_equal(e->kind, N_BINARY);
    assert_int_equal(e->op, T_ADD);
    assert_int_equal(e->rhs->op, T_MUL);
    promql_expr_free(e);
    e = parse_ok("2 ^ 3 ^ 2"); /* right-associative */
    assert_int_equal(e->op, T_POW);
    assert_int_equal(e->lhs->kind, N_NUMBER);
    assert_int_equal(e->rhs->op, T_POW);
    promql_expr_free(e);
    e = parse_ok("a - b - c"); /* left-associative */
    assert_int_equal(e->lhs->op, T_SUB);
    promql_expr_free(e);
    e = parse_ok("a or b and c");
    assert_string_equal(e->func, "or");
    assert_string_equal(e->rhs->func, "and");
    promql_expr_free(e);
    e = parse_ok("-1");
    assert_int_equal(e->kind, N_NUMBER);
    assert_true(e->num == -1);
    promql_expr_free(e);
    e = parse_ok("up offset 5m @ 100");
    assert_int_equal(e->offset_ms, 300000);
    assert_int_equal(e->at, AT_TIME);
    assert_int_equal(e->at_ms, 100000);
    promql_expr_free(e);
}

static void test_errors_have_positions(void **state)
{
    (void)state;
    parse_err("sum(up", "1:7: parse error");
    parse_err("up{", "1:4: parse error");
    parse_err("up{job=}", "1:8: parse error: unexpected \"}\" in label matching, expected string");
    parse_err("up\n  + ", "2:5: parse error");
    parse_err("{}", "at least one non-empty matcher");
    parse_err("{job=~\".*\"}", "at least one non-empty matcher");
    parse_err("rate(up)[5m]", "ranges only allowed for vector selectors");
    parse_err("up{job=~\"(\"}", "invalid regular expression");
    parse_err("up offset", "expected duration");
    parse_err("\"unterminated", "unterminated quoted string");
    parse_err("up $", "unexpected character");
    parse_err("", "no expression found");
    parse_err("up up", "unexpected identifier");
    parse_err("a + bool b", "bool modifier can only be used on comparison operators");
    /* Deep nesting is an error, not a stack overflow. */
    char deep[20001];
    memset(deep, '(', 10000);
    memcpy(deep + 10000, "1", 2);
    parse_err(deep, "nests deeper");
}

static void test_selector_parser(void **state)
{
    (void)state;
    matcher **ms;
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(promql_parse_selector("up{job=\"a\"}", &ms, &n, err), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) matcher_free(ms[i]);
    free(ms);
    assert_int_equal(promql_parse_selector("rate(up[5m])", &ms, &n, err), STRATA_EPARSE);
}

static void test_eval_against_storage(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "promql"), 0);
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE];
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    strata_label ls[] = {{"__name__", "m"}, {"job", "a<b>"}};
    strata_sample s[] = {{10000, 1}, {20000, 2}, {30000, 3}};
    strata_series ser = {ls, 2, s, 3};
    assert_int_equal(strata_write(db, &ser, 1, NULL, err), 0);
    char *json;
    assert_int_equal(strata_query(db, "m", 25000, &json, err), 0);
    assert_string_equal(json, "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"m\","
                              "\"job\":\"a\\u003cb\\u003e\"},\"value\":[25,\"2\"]}]}");
    free(json);
    assert_int_equal(strata_query(db, "m[15s]", 30000, &json, err), 0);
    assert_non_null(strstr(json, "\"values\":[[20,\"2\"],[30,\"3\"]]")); /* (15 s, 30 s] */
    free(json);
    assert_int_equal(strata_query(db, "m offset 10s", 30000, &json, err), 0);
    assert_non_null(strstr(json, "\"value\":[30,\"2\"]"));
    free(json);
    assert_int_equal(strata_query_range(db, "m", 0, 40000, 10000, &json, err), 0);
    assert_non_null(strstr(json, "\"values\":[[10,\"1\"],[20,\"2\"],[30,\"3\"],[40,\"3\"]]"));
    free(json);
    assert_int_equal(strata_query(db, "42", 5000, &json, err), 0);
    assert_string_equal(json, "{\"resultType\":\"scalar\",\"result\":[5,\"42\"]}");
    free(json);
    assert_int_equal(strata_query(db, "rate(m[30s])", 30000, &json, err), 0);
    assert_non_null(strstr(json, "\"value\":[30,\"0.1\"]"));
    free(json);
    assert_int_equal(strata_query(db, "sum(m) + 1", 30000, &json, err), 0);
    assert_non_null(strstr(json, "{\"metric\":{},\"value\":[30,\"4\"]}"));
    free(json);
    assert_int_equal(strata_query(db, "nosuchfn(m)", 30000, &json, err), STRATA_EPARSE);
    assert_non_null(strstr(err, "unknown function"));
    assert_int_equal(strata_query(db, "rate(m)", 30000, &json, err), STRATA_EPARSE);
    assert_non_null(strstr(err, "expected type range vector in call to function \"rate\""));
    assert_int_equal(strata_query_range(db, "m[1m]", 0, 1000, 1000, &json, err), STRATA_EEXEC);
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_expressions),  cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_errors_have_positions), cmocka_unit_test(test_selector_parser),
        cmocka_unit_test(test_eval_against_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
