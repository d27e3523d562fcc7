/*
 * test_parser.c: the PromQL parser, type checker and formatter.
 *
 * Tables of valid expressions with their canonical form (parse -> format must give it, and
 * format -> parse -> format must be stable), among them every distinct shape of expression in
 * Prometheus' own PromQL test files; tables of invalid expressions with the exact message and
 * line:column Prometheus reports (many taken from the cases Prometheus' parser tests document);
 * precedence and associativity checked on the tree; literal values, selectors, modifiers, the
 * function table, the nesting bound and duration expressions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "query/ast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct canon_case {
    const char *in;
    const char *out; /* NULL: the input is already canonical */
} canon_case;

typedef struct error_case {
    const char *in;
    const char *err;
} error_case;

static promql_expr *parse_ok(const char *q)
{
    promql_expr *e = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = promql_parse(q, strlen(q), &e, err);
    if (rc) fprintf(stderr, "parse(%s): %s\n", q, err);
    assert_int_equal(rc, 0);
    assert_non_null(e);
    return e;
}

/* Formats e into a malloc'd string. */
static char *format(const promql_expr *e)
{
    buf b = {0};
    assert_int_equal(promql_expr_format(e, &b), 0);
    assert_non_null(b.data);
    assert_int_equal(strlen((char *)b.data), b.len);
    return (char *)b.data;
}

static void check_canonical(const char *in, const char *want)
{
    if (!want) want = in;
    promql_expr *e = parse_ok(in);
    char *f1 = format(e);
    if (strcmp(f1, want)) fprintf(stderr, "format(parse(%s)):\n  got  %s\n  want %s\n", in, f1, want);
    assert_string_equal(f1, want);
    promql_expr *e2 = parse_ok(f1);
    char *f2 = format(e2);
    assert_string_equal(f1, f2);
    free(f1);
    free(f2);
    promql_expr_free(e);
    promql_expr_free(e2);
}

static void check_error(const char *in, const char *want)
{
    promql_expr *e = (promql_expr *)1;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = promql_parse(in, strlen(in), &e, err);
    if (rc != STRATA_EPARSE || strcmp(err, want))
        fprintf(stderr, "parse(%s):\n  got  %d %s\n  want %s\n", in, rc, err, want);
    assert_int_equal(rc, STRATA_EPARSE);
    assert_null(e);
    assert_string_equal(err, want);
}

/* ---- canonical forms ------------------------------------------------------------------------------ */

static const canon_case hand_cases[] = {
    {"1", NULL},
    {"-1", NULL},
    {"+1", "1"},
    {"- - 1", "1"},
    {"0x1F", "31"},
    {"010", "8"},
    {"08", "8"},
    {"1_000_000", "1000000"},
    {".123_456_789", "0.123456789"},
    {"0x_53_AB_F3_82", "1403777922"},
    {"1e3", "1000"},
    {"1.5e-7", "0.00000015"},
    {"Inf", "+Inf"},
    {"-Inf", NULL},
    {"+Inf", NULL},
    {"NaN", NULL},
    {"nan", "NaN"},
    {"5m", NULL},
    {"-5m", NULL},
    {"1h30m", NULL},
    {"1.5", NULL},
    {"\"double\"", NULL},
    {"'single'", "\"single\""},
    {"`raw \\n`", "\"raw \\\\n\""},
    {"\"esc \\\" \\\\ \\n \\t \\x41 \\u00e4 \\U0001F600 \\101\"", "\"esc \\\" \\\\ \\n \\t A \xc3\xa4 \xf0\x9f\x98\x80 A\""},
    {"\"\\xff\"", NULL},
    {"foo", NULL},
    {"foo:bar:baz", NULL},
    {"{__name__=\"foo\"}", NULL},
    {"{__name__=~\"foo|bar\"}", NULL},
    {"foo{a=\"b\",c!=\"d\",e=~\"f.*\",g!~\"h\"}", NULL},
    {"foo{ c = \"d\" , a = \"b\" , }", "foo{a=\"b\",c=\"d\"}"},
    {"{\"my.metric\"}", "{__name__=\"my.metric\"}"},
    {"{\"my.metric\", \"label.name\"=\"v\"}", "{\"label.name\"=\"v\",__name__=\"my.metric\"}"},
    {"{\"a.b\"=\"c\"}", NULL},
    {"{\"\"=\"0\"}", NULL},
    {"{``=\"0\"}", "{\"\"=\"0\"}"},
    {"{\"_0\"=\"1\"}", "{_0=\"1\"}"},
    {"foo{\"a\"=\"b\"}", "foo{a=\"b\"}"},
    {"sum", NULL},
    {"sum{a=\"b\"}", NULL},
    {"by", NULL},
    {"offset offset 5m", NULL},
    {"start", NULL},
    {"step[5m]", NULL},
    {"min_of", NULL},
    {"foo[5m]", NULL},
    {"foo[300]", "foo[5m]"},
    {"foo[1.5]", "foo[1s500ms]"},
    {"foo[1h30m]", NULL},
    {"foo[5m] offset 1m", NULL},
    {"foo offset -5m", NULL},
    {"foo offset 1.5", "foo offset 1s500ms"},
    {"foo @ 1609746000", "foo @ 1609746000.000"},
    {"foo @ -5", "foo @ -5.000"},
    {"foo @ +5.5", "foo @ 5.500"},
    {"foo @ 1m", "foo @ 60.000"},
    {"foo[5m] @ 100 offset 1m", "foo[5m] @ 100.000 offset 1m"},
    {"foo offset 1m @ 100", "foo @ 100.000 offset 1m"},
    {"foo @ start()", NULL},
    {"foo @ END()", "foo @ end()"},
    {"foo[1h:5m]", NULL},
    {"foo[1h:]", NULL},
    {"foo[1h:5m] offset 1m @ end()", "foo[1h:5m] @ end() offset 1m"},
    {"(foo + bar)[5m:1m]", NULL},
    {"sum(rate(foo[5m]))[1h:]", NULL},
    {"rate(foo[5m])", NULL},
    {"rate(foo[5m] offset 1h)", NULL},
    {"histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", NULL},
    {"label_replace(up, \"dst\", \"$1\", \"src\", \"(.*)\")", NULL},
    {"label_join(up, \"dst\", \",\", \"a\", \"b\", \"c\")", NULL},
    {"round(x)", NULL},
    {"round(x, 0.5)", NULL},
    {"hour()", NULL},
    {"hour(x)", NULL},
    {"time()", NULL},
    {"pi()", NULL},
    {"vector(1)", NULL},
    {"scalar(x)", NULL},
    {"sort_by_label(x, \"a\", \"b\")", NULL},
    {"info(x)", NULL},
    {"info(x, {job=\"a\"})", NULL},
    {"histogram_quantiles(x, \"q\", 0.5, 0.9)", NULL},
    {"start()", NULL},
    {"step()", NULL},
    {"min_of(1, 2)", NULL},
    {"sum(x)", NULL},
    {"sum by (a, b) (x)", NULL},
    {"sum without (a) (x)", NULL},
    {"sum(x) by (a)", "sum by (a) (x)"},
    {"sum(x) without (a)", "sum without (a) (x)"},
    {"SUM BY (a) (x)", "sum by (a) (x)"},
    {"sum by () (x)", "sum(x)"},
    {"sum without () (x)", NULL},
    {"sum by (a,) (x)", "sum by (a) (x)"},
    {"sum by (\"foo.bar\") (x)", NULL},
    {"sum by (a:b) (x)", "sum by (\"a:b\") (x)"},
    {"sum by (offset, bool, on, sum) (x)", NULL},
    {"topk(3, x)", NULL},
    {"bottomk(3, x)", NULL},
    {"quantile(0.5, x)", NULL},
    {"count_values(\"v\", x)", NULL},
    {"limitk(2, x)", NULL},
    {"limit_ratio(0.5, x)", NULL},
    {"group(x)", NULL},
    {"stddev(x) + stdvar(x)", NULL},
    {"a + b * c", NULL},
    {"a * b + c", NULL},
    {"(a + b) * c", NULL},
    {"a - b - c", NULL},
    {"a - (b - c)", NULL},
    {"a / b / c", NULL},
    {"2 ^ 3 ^ 2", NULL},
    {"(2 ^ 3) ^ 2", NULL},
    {"-2 ^ 2", NULL},
    {"2 ^ -2", NULL},
    {"-a ^ 2", NULL},
    {"-a * b", NULL},
    {"a * -b", NULL},
    {"a or b and c unless d", NULL},
    {"a and b or c", NULL},
    {"a == b", NULL},
    {"a == bool b", NULL},
    {"a != bool 0", NULL},
    {"1 == bool 1", NULL},
    {"a > b < c", NULL},
    {"a + on (b) c", NULL},
    {"a + on() c", "a + on () c"},
    {"a - ignoring (b) c", NULL},
    {"a - ignoring () c", "a - c"},
    {"a * on (x) group_left (y) b", NULL},
    {"a * on (x) group_left b", "a * on (x) group_left () b"},
    {"a * ignoring () group_right b", "a * ignoring () group_right () b"},
    {"a / on (x) group_left () (b)", NULL},
    {"a and on (x) b", NULL},
    {"a atan2 b", NULL},
    {"a + fill(-23) b", "a + fill (-23) b"},
    {"a + fill_left(1) b", "a + fill_left (1) b"},
    {"a + fill_right(1e6) b", "a + fill_right (1e+06) b"},
    {"a + fill_left(5) fill_right(5) b", "a + fill (5) b"},
    {"a + fill_right(1) fill_left(2) b", "a + fill_left (2) fill_right (1) b"},
    {"a + on (b) group_left fill(0) c", "a + on (b) group_left () fill (0) c"},
    {"fill + fill", NULL},
    {"a </ b", NULL},
    {"a >/ b", NULL},
    {"x anchored", NULL},
    {"x[5m] anchored", NULL},
    {"x[5m] smoothed @ start() offset 1m", NULL},
    {"-foo", NULL},
    {"+foo", NULL},
    {"-(foo)", NULL},
    {"foo[5m * 2]", NULL},
    {"foo[(5+2) * 1m]", "foo[(5 + 2) * 1m]"},
    {"foo[1h / 2]", NULL},
    {"foo[step()]", NULL},
    {"foo[-step() + 1h]", NULL},
    {"foo[min_of(step(), 5m)]", NULL},
    {"foo[max_of(range(), 1m):step() * 2]", NULL},
    {"foo[2 ^ 3 ^ 2]", NULL},
    {"foo[(5s)]", NULL},
    {"foo[-(-5s)]", NULL},
    {"foo offset (1h / 2)", NULL},
    {"foo offset ((2 ^ 3) * 1m)", NULL},
    {"foo offset step()", NULL},
    {"foo offset -step()", NULL},
    {"foo offset +step()", "foo offset step()"},
    {"foo offset -(5m)", NULL},
    {"foo offset +(5m)", "foo offset (5m)"},
    {"foo offset (1m) * 2", NULL},
    {"foo offset 1m * 2", NULL},
    {"foo offset -2 ^ 2", "foo offset -2s ^ 2"},
    {"foo offset min_of(step(), 1s) + 8000", NULL},
    {"foo offset -min_of(step(), 1s)", NULL},
    {"a # comment\n  + b", "a + b"},
    {"sum(\n  rate(x[5m])\n)", "sum(rate(x[5m]))"},
    {"foo[1m % (0)]", NULL},
    {"foo offset 1m / 0", NULL},
    {"a == 1 == 2", NULL},
    {"x{}", "x"},
};

/* The canonical forms Prometheus' printer documents. */
static const canon_case printer_cases[] = {
    {"sum by() (task:errors:rate10s{job=\"s\"})", "sum(task:errors:rate10s{job=\"s\"})"},
    {"sum by(code) (task:errors:rate10s{job=\"s\"})", "sum by (code) (task:errors:rate10s{job=\"s\"})"},
    {"sum without() (task:errors:rate10s{job=\"s\"})", "sum without () (task:errors:rate10s{job=\"s\"})"},
    {"sum without(instance) (task:errors:rate10s{job=\"s\"})", "sum without (instance) (task:errors:rate10s{job=\"s\"})"},
    {"sum by(\"foo.bar\") (task:errors:rate10s{job=\"s\"})", "sum by (\"foo.bar\") (task:errors:rate10s{job=\"s\"})"},
    {"sum without(\"foo.bar\") (task:errors:rate10s{job=\"s\"})", "sum without (\"foo.bar\") (task:errors:rate10s{job=\"s\"})"},
    {"topk(5, task:errors:rate10s{job=\"s\"})", NULL},
    {"count_values(\"value\", task:errors:rate10s{job=\"s\"})", NULL},
    {"a - on() c", "a - on () c"},
    {"a - on(b) c", "a - on (b) c"},
    {"a - on(b) group_left(x) c", "a - on (b) group_left (x) c"},
    {"a - on(b) group_left(x, y) c", "a - on (b) group_left (x, y) c"},
    {"a - on(b) group_left c", "a - on (b) group_left () c"},
    {"a - on(b) group_left() (c)", "a - on (b) group_left () (c)"},
    {"a - ignoring(b) c", "a - ignoring (b) c"},
    {"a - ignoring() c", "a - c"},
    {"a - ignoring() group_left c", "a - ignoring () group_left () c"},
    {"a + fill(-23) b", "a + fill (-23) b"},
    {"a + fill_left(-23) b", "a + fill_left (-23) b"},
    {"a + fill_right(42) b", "a + fill_right (42) b"},
    {"a + fill_left(-23) fill_right(42) b", "a + fill_left (-23) fill_right (42) b"},
    {"a + fill_left(5) fill_right(5) b", "a + fill (5) b"},
    {"a + on(b) group_left fill(-23) c", "a + on (b) group_left () fill (-23) c"},
    {"up > bool 0", NULL},
    {"a offset 1m", NULL},
    {"a offset -7m", NULL},
    {"a{c=\"d\"}[5m] offset 1m", NULL},
    {"a[5m] offset 1m", NULL},
    {"a[12m] offset -3m", NULL},
    {"a[1h:5m] offset 1m", NULL},
    {"a anchored", NULL},
    {"a[5m] anchored", NULL},
    {"a{b=\"c\"}[5m] anchored", NULL},
    {"a{b=\"c\"}[5m] anchored offset 1m", NULL},
    {"a{b=\"c\"}[5m] anchored @ start() offset 1m", NULL},
    {"a smoothed", NULL},
    {"a[5m] smoothed", NULL},
    {"a{b=\"c\"}[5m] smoothed", NULL},
    {"a{b=\"c\"}[5m] smoothed offset 1m", NULL},
    {"a{b=\"c\"}[5m] smoothed @ start() offset 1m", NULL},
    {"{__name__=\"a\"}", NULL},
    {"a{b!=\"c\"}[1m]", NULL},
    {"a{b=~\"c\"}[1m]", NULL},
    {"a{b!~\"c\"}[1m]", NULL},
    {"a @ 10", "a @ 10.000"},
    {"a[1m] @ 10", "a[1m] @ 10.000"},
    {"a @ start()", NULL},
    {"a @ end()", NULL},
    {"a[1m] @ start()", NULL},
    {"a[1m] @ end()", NULL},
    {"{__name__=\"\",a=\"x\"}", NULL},
    {"{\"a.b\"=\"c\"}", NULL},
    {"{\"0\"=\"1\"}", NULL},
    {"{\"_0\"=\"1\"}", "{_0=\"1\"}"},
    {"{\"\"=\"0\"}", NULL},
    {"{``=\"0\"}", "{\"\"=\"0\"}"},
    {"1048576", "1048576"},
    {"foo[step()]", NULL},
    {"foo[-step()]", NULL},
    {"foo[(step())]", NULL},
    {"foo[-(step())]", NULL},
    {"foo offset step()", NULL},
    {"foo offset -step()", NULL},
    {"foo offset (step())", NULL},
    {"foo offset -(step())", NULL},
    {"foo offset +(5)", "foo offset (5)"},
    {"foo offset -(5)", NULL},
    {"foo offset (5)", NULL},
    {"foo offset (5m)", NULL},
    {"foo[(5s)]", NULL},
    {"foo[(5m):(1m)]", NULL},
    {"foo offset +min_of(10s, 20s)", "foo offset min_of(10s, 20s)"},
    {"foo offset -min_of(10s, 20s)", NULL},
    {"foo offset -min_of(10s, +max_of(step() ^ 2, 2))", "foo offset -min_of(10s, max_of(step() ^ 2, 2))"},
    {"foo[200-min_of(-step()^+step(),1)]", "foo[200 - min_of(-step() ^ step(), 1)]"},
    {"foo[200 - min_of(step() + 10s, -max_of(step() ^ 2, 3))]", NULL},
    {"foo[range()]", NULL},
    {"foo[-range()]", NULL},
    {"foo offset range()", NULL},
    {"foo offset -range()", NULL},
    {"foo[max_of(range(), 5s)]", NULL},
    {"predict_linear(foo[1h], 3000)", NULL},
    {"sum by(\"\xc3\xbc\xc3\xbc\xc3\xbc\") (foo)", "sum by (\"\xc3\xbc\xc3\xbc\xc3\xbc\") (foo)"},
    {"sum without(\"\xc3\xa4\xc3\xa4\xc3\xa4\") (foo)", "sum without (\"\xc3\xa4\xc3\xa4\xc3\xa4\") (foo)"},
    {"count by(\"\xc3\xb6\xc3\xb6\xc3\xb6\", job) (foo)", "count by (\"\xc3\xb6\xc3\xb6\xc3\xb6\", job) (foo)"},
};

/* One expression of each distinct shape in Prometheus' PromQL test files
 * (../shared/conformance/promql/ *.test), with what this formatter makes of it. */
static const canon_case conformance_cases[] = {
    {"metric @ 100",
     "metric @ 100.000"},
    {"metric @ 1m40s",
     "metric @ 100.000"},
    {"metric @ 100 offset 50s",
     "metric @ 100.000 offset 50s"},
    {"metric offset 50s @ 100",
     "metric @ 100.000 offset 50s"},
    {"metric @ 0 offset -50s",
     "metric @ 0.000 offset -50s"},
    {"metric offset -50s @ 0",
     "metric @ 0.000 offset -50s"},
    {"-metric @ 100",
     "-metric @ 100.000"},
    {"---metric @ 100",
     "---metric @ 100.000"},
    {"metric_ms @ 1.234",
     NULL},
    {"sum_over_time(metric{job=\"1\"}[100s] @ 100)",
     "sum_over_time(metric{job=\"1\"}[1m40s] @ 100.000)"},
    {"sum_over_time(metric{job=\"1\"}[100s] @ 100 offset 50s)",
     "sum_over_time(metric{job=\"1\"}[1m40s] @ 100.000 offset 50s)"},
    {"sum_over_time(metric{job=\"1\"}[100s] offset 50s @ 100)",
     "sum_over_time(metric{job=\"1\"}[1m40s] @ 100.000 offset 50s)"},
    {"metric{job=\"1\"} @ 50 + metric{job=\"1\"} @ 100",
     "metric{job=\"1\"} @ 50.000 + metric{job=\"1\"} @ 100.000"},
    {"rate(metric{job=\"1\"}[100s] @ 100) + label_replace(rate(metric{job=\"2\"}[123s] @ 200), \"job\", \"1\", \"\", \"\")",
     "rate(metric{job=\"1\"}[1m40s] @ 100.000) + label_replace(rate(metric{job=\"2\"}[2m3s] @ 200.000), \"job\", \"1\", \"\", \"\")"},
    {"sum_over_time(metric{job=\"1\"}[100s] @ 100) + label_replace(sum_over_time(metric{job=\"2\"}[100s] @ 100), \"job\", \"1\", \"\", \"\")",
     "sum_over_time(metric{job=\"1\"}[1m40s] @ 100.000) + label_replace(sum_over_time(metric{job=\"2\"}[1m40s] @ 100.000), \"job\", \"1\", \"\", \"\")"},
    {"sum_over_time(metric{job=\"1\"}[100s:1s] @ 100)",
     "sum_over_time(metric{job=\"1\"}[1m40s:1s] @ 100.000)"},
    {"sum_over_time(metric{job=\"1\"}[100s:1s] @ 100 offset 20s)",
     "sum_over_time(metric{job=\"1\"}[1m40s:1s] @ 100.000 offset 20s)"},
    {"sum_over_time(metric{job=\"1\"}[100s:1s] offset 20s @ 100)",
     "sum_over_time(metric{job=\"1\"}[1m40s:1s] @ 100.000 offset 20s)"},
    {"sum_over_time(sum_over_time(metric{job=\"1\"}[100s] @ 100)[100s:25s] @ 50)",
     "sum_over_time(sum_over_time(metric{job=\"1\"}[1m40s] @ 100.000)[1m40s:25s] @ 50.000)"},
    {"sum_over_time(sum_over_time(sum_over_time(metric{job=\"1\"}[100s] @ 100)[100s:25s] @ 50)[3s:1s] @ 3000)",
     "sum_over_time(sum_over_time(sum_over_time(metric{job=\"1\"}[1m40s] @ 100.000)[1m40s:25s] @ 50.000)[3s:1s] @ 3000.000)"},
    {"sum_over_time(sum_over_time(sum_over_time(metric{job=\"1\"}[10s])[100s:25s] @ 50)[3s:1s] @ 200)",
     "sum_over_time(sum_over_time(sum_over_time(metric{job=\"1\"}[10s])[1m40s:25s] @ 50.000)[3s:1s] @ 200.000)"},
    {"sum_over_time(sum_over_time(sum_over_time(metric{job=\"1\"}[20s])[20s:10s] offset 10s)[100s:25s] @ 1000)",
     "sum_over_time(sum_over_time(sum_over_time(metric{job=\"1\"}[20s])[20s:10s] offset 10s)[1m40s:25s] @ 1000.000)"},
    {"minute(metric @ 1500)",
     "minute(metric @ 1500.000)"},
    {"timestamp(metric{job=\"1\"} @ 10)",
     "timestamp(metric{job=\"1\"} @ 10.000)"},
    {"timestamp(timestamp(metric{job=\"1\"} @ 10))",
     "timestamp(timestamp(metric{job=\"1\"} @ 10.000))"},
    {"sum_over_time(minute(metric @ 1500)[100s:10s])",
     "sum_over_time(minute(metric @ 1500.000)[1m40s:10s])"},
    {"sum_over_time(minute()[50m:1m] @ 6000)",
     "sum_over_time(minute()[50m:1m] @ 6000.000)"},
    {"sum_over_time(minute()[50m:1m] @ 6000 offset 5m)",
     "sum_over_time(minute()[50m:1m] @ 6000.000 offset 5m)"},
    {"sum_over_time(vector(time())[100s:1s] @ 3000)",
     "sum_over_time(vector(time())[1m40s:1s] @ 3000.000)"},
    {"sum_over_time(vector(time())[100s:1s] @ 3000 offset 600s)",
     "sum_over_time(vector(time())[1m40s:1s] @ 3000.000 offset 10m)"},
    {"sum_over_time(timestamp(metric{job=\"1\"} @ 10)[100s:10s] @ 3000)",
     "sum_over_time(timestamp(metric{job=\"1\"} @ 10.000)[1m40s:10s] @ 3000.000)"},
    {"sum_over_time(timestamp(timestamp(metric{job=\"1\"} @ 999))[10s:1s] @ 10)",
     "sum_over_time(timestamp(timestamp(metric{job=\"1\"} @ 999.000))[10s:1s] @ 10.000)"},
    {"quantile_over_time(scalar(arg), metric[2m1s] @ 2m)",
     "quantile_over_time(scalar(arg), metric[2m1s] @ 120.000)"},
    {"quantile_over_time(scalar(arg), metric[2m1s:30s] @ 2m)",
     "quantile_over_time(scalar(arg), metric[2m1s:30s] @ 120.000)"},
    {"quantile_over_time(0.5, metric[2m1s:30s] @ 2m)",
     "quantile_over_time(0.5, metric[2m1s:30s] @ 120.000)"},
    {"quantile_over_time(scalar(arg), metric[2m1s:30s])",
     NULL},
    {"quantile_over_time(scalar(up) + 1, {__name__=\"up\"}[1h:1m] @ 1111111)",
     "quantile_over_time(scalar(up) + 1, {__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"predict_linear({__name__=\"up\"}[1h:1m] @ 1111111, 0.1)",
     "predict_linear({__name__=\"up\"}[1h:1m] @ 1111111.000, 0.1)"},
    {"deriv({__name__=\"up\"}[1h:1m] @ 1111111)",
     "deriv({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"changes({__name__=\"up\"}[1h:1m] @ 1111111)",
     "changes({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"resets({__name__=\"up\"}[1h:1m] @ 1111111)",
     "resets({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"first_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "first_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"last_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "last_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"sum_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "sum_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"avg_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "avg_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"min_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "min_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"max_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "max_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"count_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "count_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"stddev_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "stddev_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"stdvar_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "stdvar_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"mad_over_time({__name__=\"up\"}[1h:1m] @ 1111111)",
     "mad_over_time({__name__=\"up\"}[1h:1m] @ 1111111.000)"},
    {"abs(metric @ 11)",
     "abs(metric @ 11.000)"},
    {"timestamp(metric @ 11)",
     "timestamp(metric @ 11.000)"},
    {"timestamp(metric_missing @ 0)",
     "timestamp(metric_missing @ 0.000)"},
    {"timestamp(abs(metric @ 11))",
     "timestamp(abs(metric @ 11.000))"},
    {"timestamp(abs(metric_missing @ 11))",
     "timestamp(abs(metric_missing @ 11.000))"},
    {"count by(namespace, pod, cpu) (node_cpu_seconds_total{cpu=~\".*\",job=\"node-exporter\",mode=\"idle\",namespace=\"observability\",pod=\"node-exporter-l454v\"}) * on(namespace, pod) group_left(node) node_namespace_pod:kube_pod_info:{namespace=\"observability\",pod=\"node-exporter-l454v\"}",
     "count by (namespace, pod, cpu) (node_cpu_seconds_total{cpu=~\".*\",job=\"node-exporter\",mode=\"idle\",namespace=\"observability\",pod=\"node-exporter-l454v\"}) * on (namespace, pod) group_left (node) node_namespace_pod:kube_pod_info:{namespace=\"observability\",pod=\"node-exporter-l454v\"}"},
    {"sum_over_time(metric1_total[29s+1s:5s+5s])",
     "sum_over_time(metric1_total[29s + 1s:5s + 5s])"},
    {"sum_over_time(metric1_total[29s+1s:((((8 - 2) / 3) * 7s) % 4) + 8000ms])",
     "sum_over_time(metric1_total[29s + 1s:((((8 - 2) / 3) * 7s) % 4) + 8s])"},
    {"sum_over_time(metric1_total[29s+1s:20*500ms] offset (20*(((((8 - 2) / 3) * 7s) % 4) + 8000ms)))",
     "sum_over_time(metric1_total[29s + 1s:20 * 500ms] offset (20 * (((((8 - 2) / 3) * 7s) % 4) + 8s)))"},
    {"sum_over_time(metric1_total[29s+1s:20*500ms] offset -(20*(((((8 - 2) / 3) * 7s) % 4) + 8000ms)))",
     "sum_over_time(metric1_total[29s + 1s:20 * 500ms] offset -(20 * (((((8 - 2) / 3) * 7s) % 4) + 8s)))"},
    {"metric1_total offset (100 + 2)",
     NULL},
    {"metric1_total offset 100 + 2",
     "metric1_total offset 1m40s + 2"},
    {"(metric1_total offset 2) ^ 2",
     "(metric1_total offset 2s) ^ 2"},
    {"metric1_total offset 2 ^ 2",
     "metric1_total offset 2s ^ 2"},
    {"metric1_total offset -2 ^ 2",
     "metric1_total offset -2s ^ 2"},
    {"metric1_total offset (2 ^ 2)",
     NULL},
    {"metric1_total offset (2 * 2)",
     NULL},
    {"metric1_total offset -2 * 2",
     "metric1_total offset -2s * 2"},
    {"metric1_total offset (-2 * 2)",
     NULL},
    {"metric1_total offset -4",
     "metric1_total offset -4s"},
    {"metric1_total offset (-2 ^ 2)",
     NULL},
    {"count_over_time(metric1_total[step()])",
     NULL},
    {"count_over_time(metric1_total[step()+1ms])",
     "count_over_time(metric1_total[step() + 1ms])"},
    {"count_over_time(metric1_total[(step())+1])",
     "count_over_time(metric1_total[(step()) + 1])"},
    {"count_over_time(metric1_total[min_of(step()+1,1h)])",
     "count_over_time(metric1_total[min_of(step() + 1, 1h)])"},
    {"count_over_time(metric1_total[max_of(min_of(step()+1,1h),1ms)])",
     "count_over_time(metric1_total[max_of(min_of(step() + 1, 1h), 1ms)])"},
    {"count_over_time(metric1_total[((max_of(min_of((step()+1),((1h))),1ms)))])",
     "count_over_time(metric1_total[((max_of(min_of((step() + 1), ((1h))), 1ms)))])"},
    {"metric1_total offset STEP()",
     "metric1_total offset step()"},
    {"metric1_total offset step()",
     NULL},
    {"metric1_total offset step()*0",
     "metric1_total offset step() * 0"},
    {"metric1_total offset (-step()*2)",
     "metric1_total offset (-step() * 2)"},
    {"metric1_total offset -step()*2",
     "metric1_total offset -step() * 2"},
    {"metric1_total offset step()^0",
     "metric1_total offset step() ^ 0"},
    {"metric1_total offset (STEP()/10)",
     "metric1_total offset (step() / 10)"},
    {"metric1_total offset (step())",
     NULL},
    {"metric1_total offset min_of(step(), 1s)",
     NULL},
    {"metric1_total offset min_of(step(), 1s)+8000",
     "metric1_total offset min_of(step(), 1s) + 8000"},
    {"metric1_total offset -min_of(step(), 1s)+8000",
     "metric1_total offset -min_of(step(), 1s) + 8000"},
    {"metric1_total offset -(min_of(step(), 1s))+8000",
     "metric1_total offset -(min_of(step(), 1s)) + 8000"},
    {"metric1_total offset -min_of(step(), 1s)^0",
     "metric1_total offset -min_of(step(), 1s) ^ 0"},
    {"metric1_total offset +min_of(step(), 1s)^0",
     "metric1_total offset min_of(step(), 1s) ^ 0"},
    {"metric1_total offset min_of(step(), 1s)^0",
     "metric1_total offset min_of(step(), 1s) ^ 0"},
    {"metric1_total offset max_of(3s,min_of(step(), 1s))+8000",
     "metric1_total offset max_of(3s, min_of(step(), 1s)) + 8000"},
    {"metric1_total offset -(min_of(step(), 2s)-5)+8000",
     "metric1_total offset -(min_of(step(), 2s) - 5) + 8000"},
    {"metric1_total offset range()",
     NULL},
    {"metric1_total offset min_of(range(), 8s)",
     NULL},
    {"increase(metric[1m] anchored)",
     NULL},
    {"increase(metric[1m] smoothed)",
     NULL},
    {"delta(metric[1m] anchored)",
     NULL},
    {"delta(metric[5m] smoothed)",
     NULL},
    {"changes(metric[5m] anchored)",
     NULL},
    {"resets(metric[5m] anchored)",
     NULL},
    {"changes(metric[1m1ms] anchored)",
     NULL},
    {"resets(metric[1m1ms] anchored)",
     NULL},
    {"rate(metric[10s] smoothed)",
     NULL},
    {"deriv(foo[3m] smoothed)",
     NULL},
    {"resets(foo[3m] smoothed)",
     NULL},
    {"changes(foo[3m] smoothed)",
     NULL},
    {"max_over_time(foo[3m] smoothed)",
     NULL},
    {"predict_linear(foo[3m] smoothed, 4)",
     NULL},
    {"deriv(foo[3m] anchored)",
     NULL},
    {"resets(foo[3m] anchored)",
     NULL},
    {"changes(foo[3m] anchored)",
     NULL},
    {"max_over_time(foo[3m] anchored)",
     NULL},
    {"predict_linear(foo[3m] anchored, 4)",
     NULL},
    {"metric smoothed",
     NULL},
    {"withreset smoothed",
     NULL},
    {"notregular smoothed",
     NULL},
    {"metric @ 100 smoothed",
     "metric @ 100.000 smoothed"},
    {"metric @ 100 smoothed + 0",
     "metric @ 100.000 smoothed + 0"},
    {"metric offset -100",
     "metric offset -1m40s"},
    {"metric offset -100 smoothed",
     "metric smoothed offset -1m40s"},
    {"metric offset -100 smoothed + 0",
     "metric smoothed offset -1m40s + 0"},
    {"histogram_count(increase(hist_counter[1m] anchored))",
     NULL},
    {"histogram_sum(increase(hist_counter[1m] anchored))",
     NULL},
    {"histogram_count(increase(hist_counter[1m] smoothed))",
     NULL},
    {"histogram_sum(increase(hist_counter[1m] smoothed))",
     NULL},
    {"histogram_count(rate(hist_counter[1m] smoothed))",
     NULL},
    {"histogram_count(delta(hist_counter[1m] smoothed))",
     NULL},
    {"histogram_count(rate(hist_counter[1m] anchored))",
     NULL},
    {"histogram_count(delta(hist_counter[1m] anchored))",
     NULL},
    {"histogram_count(hist_counter smoothed)",
     NULL},
    {"rate(mixed_hist[1m] anchored)",
     NULL},
    {"rate(mixed_hist[1m] smoothed)",
     NULL},
    {"histogram_count(increase(reset_custom_hist[90s] anchored))",
     "histogram_count(increase(reset_custom_hist[1m30s] anchored))"},
    {"histogram_sum(increase(reset_custom_hist[90s] anchored))",
     "histogram_sum(increase(reset_custom_hist[1m30s] anchored))"},
    {"histogram_count(rate(mid_gauge_hist[90s] anchored))",
     "histogram_count(rate(mid_gauge_hist[1m30s] anchored))"},
    {"histogram_count(increase(mid_gauge_hist[90s] smoothed))",
     "histogram_count(increase(mid_gauge_hist[1m30s] smoothed))"},
    {"histogram_count(delta(mid_gauge_hist[90s] anchored))",
     "histogram_count(delta(mid_gauge_hist[1m30s] anchored))"},
    {"histogram_count(increase(custom_only[1m] smoothed))",
     NULL},
    {"histogram_sum(increase(custom_only[1m] smoothed))",
     NULL},
    {"histogram_count(reset_middle smoothed)",
     NULL},
    {"histogram_count(rate(reset_boundary[1s] smoothed))",
     NULL},
    {"histogram_count(increase(anchored_reset_at_end[70s] anchored))",
     "histogram_count(increase(anchored_reset_at_end[1m10s] anchored))"},
    {"histogram_count(increase(anchored_two_sample_reset[30s] anchored))",
     NULL},
    {"histogram_count(increase(smoothed_double_reset[14s] smoothed))",
     NULL},
    {"histogram_count(increase(smoothed_two_sample_both_interp[10s] smoothed))",
     NULL},
    {"histogram_count(smoothed_mix smoothed)",
     NULL},
    {"mixed_types smoothed",
     NULL},
    {"sort(mixed_types smoothed)",
     NULL},
    {"histogram_count(rate(right_boundary_reset[10s] smoothed))",
     NULL},
    {"resets(ftohmixed[1m] anchored)",
     NULL},
    {"resets(floats[1m] anchored)",
     NULL},
    {"resets(histograms[1m] anchored)",
     NULL},
    {"resets(htofmixed[1m] anchored)",
     NULL},
    {"resets(honlywithreset[1m] anchored)",
     NULL},
    {"resets(hhffmixed[1m] anchored)",
     NULL},
    {"changes(ftohmixed[1m] anchored)",
     NULL},
    {"changes(floats[1m] anchored)",
     NULL},
    {"changes(histograms[1m] anchored)",
     NULL},
    {"changes(htofmixed[1m] anchored)",
     NULL},
    {"changes(honlywithreset[1m] anchored)",
     NULL},
    {"changes(hhffmixed[1m] anchored)",
     NULL},
    {"left_vector + fill(0) right_vector",
     "left_vector + fill (0) right_vector"},
    {"left_vector + fill_left(0) right_vector",
     "left_vector + fill_left (0) right_vector"},
    {"left_vector + fill_right(0) right_vector",
     "left_vector + fill_right (0) right_vector"},
    {"left_vector + fill_left(5) fill_right(7) right_vector",
     "left_vector + fill_left (5) fill_right (7) right_vector"},
    {"left_vector + fill(NaN) right_vector",
     "left_vector + fill_left (NaN) fill_right (NaN) right_vector"},
    {"left_vector + fill(Inf) right_vector",
     "left_vector + fill (+Inf) right_vector"},
    {"left_vector + fill(-Inf) right_vector",
     "left_vector + fill (-Inf) right_vector"},
    {"left_vector == fill(30) right_vector",
     "left_vector == fill (30) right_vector"},
    {"left_vector != fill(30) right_vector",
     "left_vector != fill (30) right_vector"},
    {"left_vector > fill(25) right_vector",
     "left_vector > fill (25) right_vector"},
    {"left_vector == bool fill(30) right_vector",
     "left_vector == bool fill (30) right_vector"},
    {"left_vector != bool fill(30) right_vector",
     "left_vector != bool fill (30) right_vector"},
    {"left_vector > bool fill(25) right_vector",
     "left_vector > bool fill (25) right_vector"},
    {"left_vector + on(job, instance) fill(0) right_vector",
     "left_vector + on (job, instance) fill (0) right_vector"},
    {"left_vector + on(job, instance) fill_right(0) right_vector",
     "left_vector + on (job, instance) fill_right (0) right_vector"},
    {"left_vector + on(job, instance) fill_left(0) right_vector",
     "left_vector + on (job, instance) fill_left (0) right_vector"},
    {"left_vector + ignoring(job) group_left fill(0) right_vector",
     "left_vector + ignoring (job) group_left () fill (0) right_vector"},
    {"requests / on(status) group_left fill_right(1) limits",
     "requests / on (status) group_left () fill_right (1) limits"},
    {"requests + on(status) group_left fill_left(0) limits",
     "requests + on (status) group_left () fill_left (0) limits"},
    {"requests + on(status) group_left fill(0) limits",
     "requests + on (status) group_left () fill (0) limits"},
    {"node_meta * on(instance) group_right fill_left(1) cpu_info",
     "node_meta * on (instance) group_right () fill_left (1) cpu_info"},
    {"node_meta * on(instance) group_right fill_right(0) cpu_info",
     "node_meta * on (instance) group_right () fill_right (0) cpu_info"},
    {"node_meta * on(instance) group_right fill(1) cpu_info",
     "node_meta * on (instance) group_right () fill (1) cpu_info"},
    {"requests + on(status) group_left(owner) fill_right(0) limits",
     "requests + on (status) group_left (owner) fill_right (0) limits"},
    {"only_left + fill(0) only_right",
     "only_left + fill (0) only_right"},
    {"only_left + fill_left(0) only_right",
     "only_left + fill_left (0) only_right"},
    {"only_left + fill_right(0) only_right",
     "only_left + fill_right (0) only_right"},
    {"complete_left + fill(99) complete_right",
     "complete_left + fill (99) complete_right"},
    {"range_left + fill(0) range_right",
     "range_left + fill (0) range_right"},
    {"range_left + fill_right(0) range_right",
     "range_left + fill_right (0) range_right"},
    {"range_left + fill_left(0) range_right",
     "range_left + fill_left (0) range_right"},
    {"intermittent_left + fill(0) intermittent_right",
     "intermittent_left + fill (0) intermittent_right"},
    {"intermittent_left + fill_right(0) intermittent_right",
     "intermittent_left + fill_right (0) intermittent_right"},
    {"intermittent_left + fill_left(0) intermittent_right",
     "intermittent_left + fill_left (0) intermittent_right"},
    {"matched_lhs + on(key) group_left fill_left(0) matched_rhs",
     "matched_lhs + on (key) group_left () fill_left (0) matched_rhs"},
    {"non_empty + fill_right(0) nonexistent",
     "non_empty + fill_right (0) nonexistent"},
    {"non_empty + fill_left(0) nonexistent",
     "non_empty + fill_left (0) nonexistent"},
    {"nonexistent + fill_left(0) non_empty",
     "nonexistent + fill_left (0) non_empty"},
    {"nonexistent + fill_right(0) non_empty",
     "nonexistent + fill_right (0) non_empty"},
    {"non_empty + fill(0) nonexistent",
     "non_empty + fill (0) nonexistent"},
    {"nonexistent + fill(0) non_empty",
     "nonexistent + fill (0) non_empty"},
    {"fill + fill(0) other",
     "fill + fill (0) other"},
    {"other + fill",
     NULL},
    {"other + fill(0) fill",
     "other + fill (0) fill"},
    {"other + fill_left(0) fill_left",
     "other + fill_left (0) fill_left"},
    {"other + fill_right(0) fill_right",
     "other + fill_right (0) fill_right"},
    {"rate(calculate_rate_offset_total[10m] offset 5m)",
     NULL},
    {"predict_linear(testcounter_reset_middle_total[55m] @ 3000, 3600)",
     "predict_linear(testcounter_reset_middle_total[55m] @ 3000.000, 3600)"},
    {"absent_over_time(rate(nonexistent[5m])[5m:])",
     NULL},
    {"absent_over_time(rate(http_requests_total[5m])[5m:1m])",
     NULL},
    {"absent_over_time({instance=\"127.0.0.1\"}[5m:5s])",
     NULL},
    {"absent_over_time(rate(http_requests_histogram[5m])[5m:1m])",
     NULL},
    {"present_over_time(rate(nonexistent[5m])[5m:])",
     NULL},
    {"present_over_time(rate(http_requests_total[5m])[5m:1m])",
     NULL},
    {"present_over_time({instance=\"127.0.0.1\"}[5m:5s])",
     NULL},
    {"step()",
     NULL},
    {"vector(step())",
     NULL},
    {"metric * step()",
     NULL},
    {"metric_for_at @ start()",
     NULL},
    {"metric_for_at @ end()",
     NULL},
    {"histogram_fraction(0, 4, testhistogram2)",
     NULL},
    {"histogram_fraction(0, 4, testhistogram2_bucket)",
     NULL},
    {"histogram_fraction(0, 0.2, rate(testhistogram3[10m]))",
     NULL},
    {"histogram_fraction(0, 0.2, rate(testhistogram3_bucket[10m]))",
     NULL},
    {"histogram_fraction(0, 1.5, positive_buckets_lower_falls_in_the_first_bucket_bucket)",
     NULL},
    {"histogram_fraction(0, 1.5, positive_buckets_lower_falls_in_the_first_bucket)",
     NULL},
    {"histogram_fraction(-4, -2, negative_buckets_lower_falls_in_the_first_bucket_bucket)",
     NULL},
    {"histogram_fraction(-4, -2, negative_buckets_lower_falls_in_the_first_bucket)",
     NULL},
    {"histogram_fraction(-Inf, -1.5, lower_is_negative_Inf_bucket)",
     NULL},
    {"histogram_fraction(-Inf, -1.5, lower_is_negative_Inf)",
     NULL},
    {"histogram_fraction(-Inf, +Inf, lower_is_negative_Inf_and_upper_is_positive_Inf__positive_buckets__bucket)",
     NULL},
    {"histogram_fraction(-Inf, +Inf, lower_is_negative_Inf_and_upper_is_positive_Inf__positive_buckets_)",
     NULL},
    {"histogram_fraction(-Inf, +Inf, lower_is_negative_Inf_and_upper_is_positive_Inf__negative_buckets__bucket)",
     NULL},
    {"histogram_fraction(-Inf, +Inf, lower_is_negative_Inf_and_upper_is_positive_Inf__negative_buckets_)",
     NULL},
    {"histogram_fraction(4, 5, lower_and_upper_fall_in_last_bucket__positive_buckets__bucket)",
     NULL},
    {"histogram_fraction(4, 5, lower_and_upper_fall_in_last_bucket__positive_buckets_)",
     NULL},
    {"histogram_fraction(0, 1, lower_and_upper_fall_in_last_bucket__negative_buckets__bucket)",
     NULL},
    {"histogram_fraction(0, 1, lower_and_upper_fall_in_last_bucket__negative_buckets_)",
     NULL},
    {"histogram_fraction(2, 5, upper_falls_in_last_bucket_bucket)",
     NULL},
    {"histogram_fraction(2, 5, upper_falls_in_last_bucket)",
     NULL},
    {"histogram_fraction(400, +Inf, upper_is_positive_Inf_bucket)",
     NULL},
    {"histogram_fraction(400, +Inf, upper_is_positive_Inf)",
     NULL},
    {"histogram_fraction(2, 2, lower_equals_upper_bucket)",
     NULL},
    {"histogram_fraction(2, 2, lower_equals_upper)",
     NULL},
    {"histogram_fraction(3, 2, lower_greater_than_upper_bucket)",
     NULL},
    {"histogram_fraction(3, 2, lower_greater_than_upper)",
     NULL},
    {"count by (group) (http_requests{job=\"api-server\"})",
     NULL},
    {"SUM(http_requests)",
     "sum(http_requests)"},
    {"ceil(0.004 * http_requests{group=\"production\",job=\"api-server\"})",
     NULL},
    {"max(http_requests_histogram)",
     NULL},
    {"min({job=\"api-server\"})",
     NULL},
    {"bottomk(3, http_requests)",
     NULL},
    {"topk by (group) (1, http_requests)",
     NULL},
    {"bottomk by (group) (2, http_requests)",
     NULL},
    {"count(topk(scalar(foo), http_requests))",
     NULL},
    {"count(topk(1000, {__name__=~\"http_requests(_histogram)?\"}))",
     NULL},
    {"topk by (instance) (1, {__name__=~\"http_requests(_histogram)?\"})",
     NULL},
    {"bottomk(100, http_requests_histogram)",
     NULL},
    {"bottomk(1, {__name__=~\"http_requests(_histogram)?\"})",
     NULL},
    {"count(bottomk(1000, {__name__=~\"http_requests(_histogram)?\"}))",
     NULL},
    {"bottomk by (instance) (1, {__name__=~\"http_requests(_histogram)?\"})",
     NULL},
    {"limitk(NaN, non_existent)",
     NULL},
    {"count_values without (instance)(\"version\", version)",
     "count_values without (instance) (\"version\", version)"},
    {"count_values by (job, group)(\"job\", version)",
     "count_values by (job, group) (\"job\", version)"},
    {"quantile(0.8, data_histogram)",
     NULL},
    {"group without(point)(data)",
     "group without (point) (data)"},
    {"avg(data)",
     NULL},
    {"sum(data{test=\"ten\"})",
     NULL},
    {"sum by (group) (data{test=\"pos_inf\"})",
     NULL},
    {"avg(foo) == 52",
     NULL},
    {"stddev({label=\"c\"})",
     NULL},
    {"stdvar by (label) (series)",
     NULL},
    {"stddev (series)",
     "stddev(series)"},
    {"ceil({__name__=~'testmetric1|testmetric2'})",
     "ceil({__name__=~\"testmetric1|testmetric2\"})"},
    {"changes(http_requests[-5m+35m])",
     "changes(http_requests[-5m + 35m])"},
    {"changes(http_requests[1h/2])",
     "changes(http_requests[1h / 2])"},
    {"histogram_sum(increase(reset_custom_hist[90s]))",
     "histogram_sum(increase(reset_custom_hist[1m30s]))"},
    {"resets(http_requests[5m])",
     NULL},
    {"changes(x[20m])",
     NULL},
    {"rate(testcounter_reset_middle_total[50m])",
     NULL},
    {"irate(http_requests_total[50m])",
     NULL},
    {"delta(http_requests_gauge[20m])",
     NULL},
    {"idelta(http_requests_nan[15m1s])",
     NULL},
    {"deriv(http_requests_inf[100m])",
     "deriv(http_requests_inf[1h40m])"},
    {"predict_linear(testcounter_reset_middle_mix[60m], 3000)",
     "predict_linear(testcounter_reset_middle_mix[1h], 3000)"},
    {"label_replace((((testmetric))), ((\"dst\")), ((\"value-$1\")), ((\"src\")), ((\"non-matching-regex\")))",
     NULL},
    {"timestamp(((metric)))",
     NULL},
    {"clamp(test_clamp, NaN, 0)",
     NULL},
    {"clamp(mixed_metric, 2, 5)",
     NULL},
    {"clamp_max(mixed_metric, 2)",
     NULL},
    {"sort_by_label_desc(http_requests, \"instance\", \"group\")",
     NULL},
    {"double_exponential_smoothing(http_requests[1m], 0.01, 0.1)",
     NULL},
    {"double_exponential_smoothing(http_requests_mix[1m], 0.01, 0.1)",
     NULL},
    {"double_exponential_smoothing(http_requests_histogram[1m], 0.01, 0.1)",
     NULL},
    {"sum_over_time(metric[2m])",
     NULL},
    {"stdvar_over_time(metric[2m])",
     NULL},
    {"ts_of_first_over_time(metric[90s])",
     "ts_of_first_over_time(metric[1m30s])"},
    {"month()",
     NULL},
    {"day_of_year()",
     NULL},
    {"day_of_week(vector(1136239445))",
     NULL},
    {"hour(vector(1136239445))",
     NULL},
    {"days_in_month(histogram_sample)",
     NULL},
    {"hour(histogram_sample)",
     NULL},
    {"minute(histogram_sample)",
     NULL},
    {"max_over_time(data[2m])",
     NULL},
    {"max_over_time(data_sparse[2m])",
     NULL},
    {"abs(data)",
     NULL},
    {"ceil(data)",
     NULL},
    {"absent(a + b)",
     NULL},
    {"absent_over_time(http_requests_total{handler=\"/foo\", handler=\"/bar\", instance=\"127.0.0.1\"}[5m])",
     "absent_over_time(http_requests_total{handler=\"/bar\",handler=\"/foo\",instance=\"127.0.0.1\"}[5m])"},
    {"present_over_time(http_requests_total{handler!=\"/foo\"}[5m])",
     NULL},
    {"present_over_time(http_requests_total{handler=\"/foo\", handler=\"/bar\", handler=\"/foobar\"}[5m])",
     "present_over_time(http_requests_total{handler=\"/bar\",handler=\"/foo\",handler=\"/foobar\"}[5m])"},
    {"present_over_time(httpd_handshake_failures_total[1m])",
     NULL},
    {"exp(exp_root_log)",
     NULL},
    {"ln(exp_root_log)",
     NULL},
    {"ln(exp_root_log - 10)",
     NULL},
    {"scalar({type=\"histogram\"})",
     NULL},
    {"scalar({l=\"x\"})",
     NULL},
    {"start()",
     NULL},
    {"vector(start())",
     NULL},
    {"start() + range()",
     NULL},
    {"max_of(-2, -5)",
     NULL},
    {"histogram_count(testhistogram3)",
     NULL},
    {"histogram_quantiles(testhistogram, \"q\", 1.01)",
     NULL},
    {"histogram_quantile(NaN, testhistogram)",
     NULL},
    {"histogram_quantile(NaN, testhistogram_bucket)",
     NULL},
    {"histogram_quantiles(non_existent, \"q\", NaN)",
     NULL},
    {"histogram_quantile(1./6., testhistogram2)",
     "histogram_quantile(1 / 6, testhistogram2)"},
    {"histogram_quantile(0.5, rate(testhistogram2_bucket[15m]))",
     NULL},
    {"histogram_quantile(0.3, avg(rate(request_duration_seconds_bucket[10m])) by (le))",
     "histogram_quantile(0.3, avg by (le) (rate(request_duration_seconds_bucket[10m])))"},
    {"histogram_quantile(0.3, sum(rate(request_duration_seconds[10m])) by (job))",
     "histogram_quantile(0.3, sum by (job) (rate(request_duration_seconds[10m])))"},
    {"histogram_quantile(0.3, rate(request_duration_seconds[10m]))",
     NULL},
    {"avg (request_duration_seconds_bucket{le=\"0.1\"})",
     "avg(request_duration_seconds_bucket{le=\"0.1\"})"},
    {"histogram_quantile(0.01, nonmonotonic_bucket)",
     NULL},
    {"rate(const_histogram[5m])",
     NULL},
    {"histogram_sum(increase(histogram_with_reset[15m]))",
     NULL},
    {"info(metric_not_matching_target_info)",
     NULL},
    {"info(metric_not_matching_target_info, {data=~\".*\"})",
     NULL},
    {"info(metric_with_overlapping_label)",
     NULL},
    {"info(metric_with_overlapping_label, {data=\"info\"})",
     NULL},
    {"info(metric_with_overlapping_label, {instance=\"a\"})",
     NULL},
    {"info(metric, {__name__=\"target_info\"})",
     NULL},
    {"info(metric, {__name__=\"non_existent\", data=~\".+\"})",
     "info(metric, {__name__=\"non_existent\",data=~\".+\"})"},
    {"info(build_info, {__name__=~\".+_info\", another_data=~\".+\"})",
     "info(build_info, {__name__=~\".+_info\",another_data=~\".+\"})"},
    {"info(build_info, {__name__=~\".+_info\"})",
     NULL},
    {"count(limitk(100, http_requests) and http_requests)",
     NULL},
    {"count(limitk(2, http_requests{instance=~\"histogram_[0-9]\"}))",
     NULL},
    {"count(limitk(scalar(foo), http_requests))",
     NULL},
    {"count(limit_ratio(1.0, http_requests) and http_requests)",
     "count(limit_ratio(1, http_requests) and http_requests)"},
    {"count(limit_ratio(0.2, http_requests) and limit_ratio(-0.8, http_requests))",
     NULL},
    {"limit_ratio(1, http_requests{instance=\"histogram_1\"})",
     NULL},
    {"12.34e+6",
     "12340000"},
    {"+0.2",
     "0.2"},
    {"\"Foo\"",
     NULL},
    {"metric_total + another_metric_total",
     NULL},
    {"rate(metric_total{env=\"1\"}[10m])",
     NULL},
    {"max_over_time(metric_total{env=\"1\"}[10m])",
     NULL},
    {"sum by (__name__) (rate({env=\"1\"}[10m]))",
     NULL},
    {"sum by (__name__) (metric_total{env=\"1\"})",
     NULL},
    {"histogram_avg(empty_histogram)",
     NULL},
    {"histogram_avg(multi_histogram)",
     NULL},
    {"histogram_sum(incr_histogram)",
     NULL},
    {"rate(incr_histogram[10m])",
     NULL},
    {"histogram_avg(low_res_histogram)",
     NULL},
    {"histogram_count(single_zero_histogram)",
     NULL},
    {"histogram_avg(single_zero_histogram)",
     NULL},
    {"histogram_sum(balanced_histogram)",
     NULL},
    {"rate(histogram_rate[45s])",
     NULL},
    {"histogram_stddev(histogram_stddev_stdvar_1)",
     NULL},
    {"histogram_mul_div*float_series_3",
     "histogram_mul_div * float_series_3"},
    {"histogram_mul_div/histogram_mul_div",
     "histogram_mul_div / histogram_mul_div"},
    {"float_sample+histogram_sample",
     "float_sample + histogram_sample"},
    {"histogram_sample+float_sample",
     "histogram_sample + float_sample"},
    {"histogram_sum(increase(reset_in_bucket[15m]))",
     NULL},
    {"histogram_count(rate(const_histogram[5m]))",
     NULL},
    {"histogram_quantile(1.0, rate(const_histogram[5m]))",
     "histogram_quantile(1, rate(const_histogram[5m]))"},
    {"histogram_stddev(rate(const_histogram[5m]))",
     NULL},
    {"histogram_stdvar(rate(const_histogram[5m]))",
     NULL},
    {"limitk(3, metric)",
     NULL},
    {"limit_ratio(1, metric)",
     NULL},
    {"metric1 == metric2",
     NULL},
    {"metric1 != metric2",
     NULL},
    {"last_over_time(nhcb_metric[13m])",
     NULL},
    {"present_over_time(nhcb_metric[13m])",
     NULL},
    {"resets(nhcb_metric[13m])",
     NULL},
    {"sum(histogram_sum)",
     NULL},
    {"count(histogram_sum)",
     NULL},
    {"avg(histogram_avg_incremental)",
     NULL},
    {"avg_over_time(single_histogram_sample[1m])",
     NULL},
    {"histogram_quantile(1, histogram_nan)",
     NULL},
    {"histogram_quantile(0.8, histogram_nan{case=\"100% NaNs\"})",
     NULL},
    {"increase(metric[55m15s])",
     NULL},
    {"-metric",
     NULL},
    {"sum(metric{type=~\"counter.*\"})",
     NULL},
    {"histogram_count(avg_over_time(mixed[10m]))",
     NULL},
    {"h_test >/ -Inf",
     NULL},
    {"h_test </ +Inf",
     NULL},
    {"h_test >/ +Inf",
     NULL},
    {"h_test_2 </ -1.3",
     NULL},
    {"h_test >/ -1",
     NULL},
    {"zero_bucket_only </ 0.1",
     NULL},
    {"cbh </ 15",
     NULL},
    {"cbh </ +Inf",
     NULL},
    {"zero_bucket >/ 0",
     NULL},
    {"cbh_two_buckets_split_at_zero </ -10.0",
     "cbh_two_buckets_split_at_zero </ -10"},
    {"cbh_two_buckets_split_at_positive </ -10.0",
     "cbh_two_buckets_split_at_positive </ -10"},
    {"cbh_two_buckets_split_at_negative </ -2.0",
     "cbh_two_buckets_split_at_negative </ -2"},
    {"histogram_count(cbh_two_buckets_split_at_negative >/ 10.0)",
     "histogram_count(cbh_two_buckets_split_at_negative >/ 10)"},
    {"empty >/ -Inf",
     NULL},
    {"histogram_count(h_test </ 2)",
     NULL},
    {"- - - SUM(http_requests_total) BY (job)",
     "---sum by (job) (http_requests_total)"},
    {"- - - 1",
     "-1"},
    {"-2^---1*3",
     "-2 ^ -1 * 3"},
    {"2/-2^---1*3+2",
     "2 / -2 ^ -1 * 3 + 2"},
    {"SUM(http_requests_total) BY (job) % 2 ^ 3 ^ 2 ^ 2",
     "sum by (job) (http_requests_total) % 2 ^ 3 ^ 2 ^ 2"},
    {"http_requests_total{group=\"canary\", instance=\"0\", job=\"api-server\"} / 0",
     "http_requests_total{group=\"canary\",instance=\"0\",job=\"api-server\"} / 0"},
    {"0 * http_requests_total{group=\"canary\", instance=\"0\", job=\"api-server\"} / 0",
     "0 * http_requests_total{group=\"canary\",instance=\"0\",job=\"api-server\"} / 0"},
    {"SUM(http_requests_total) BY (job) + SUM(http_requests_total) BY (job)",
     "sum by (job) (http_requests_total) + sum by (job) (http_requests_total)"},
    {"http_requests_total{job=\"api-server\", group=\"canary\"} + rate(http_requests_total{job=\"api-server\"}[10m]) * 5 * 60",
     "http_requests_total{group=\"canary\",job=\"api-server\"} + rate(http_requests_total{job=\"api-server\"}[10m]) * 5 * 60"},
    {"http_requests_total AND ON (dummy) vector(1)",
     "http_requests_total and on (dummy) vector(1)"},
    {"1000 < SUM(http_requests_total) BY (job)",
     "1000 < sum by (job) (http_requests_total)"},
    {"{job=\"app-server\"} == 80",
     NULL},
    {"node_cpu % 2",
     NULL},
    {"-{__name__=~'testmetric1|testmetric2'}",
     "-{__name__=~\"testmetric1|testmetric2\"}"},
    {"left_floats != right_floats",
     NULL},
    {"left_histograms != right_floats_for_histograms",
     NULL},
    {"left_histograms < right_floats_for_histograms",
     NULL},
    {"left_floats != 3",
     NULL},
    {"left_histograms != 3",
     NULL},
    {"left_histograms > 3",
     NULL},
    {"NaN == left_floats",
     NULL},
    {"-{job=\"api\"}",
     NULL},
    {"some_metric[1m]",
     NULL},
    {"http_requests_total{job=~\".+-server\",group!=\"canary\"}",
     "http_requests_total{group!=\"canary\",job=~\".+-server\"}"},
    {"http_requests_total{job!~\"api-.+\",group!=\"canary\"}",
     "http_requests_total{group!=\"canary\",job!~\"api-.+\"}"},
    {"count_over_time(metric[1m])",
     NULL},
    {"irate(delta[5m])",
     NULL},
    {"round(increase(series[1m1ms]))",
     NULL},
    {"rate(series[5m])",
     NULL},
    {"start_timestamp(series * 1)",
     NULL},
    {"rate(metric_total[1m])",
     NULL},
    {"min_over_time(metric_total[10s])",
     NULL},
    {"atan(trig)",
     NULL},
    {"rad(trig)",
     NULL},
    {"SUM(http_requests_total) BY (job)",
     "sum by (job) (http_requests_total)"},
    {"SUM({__type__=\"counter\", __unit__=\"request\"}) BY (job)",
     "sum by (job) ({__type__=\"counter\",__unit__=\"request\"})"},
};

static void test_canonical_forms(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hand_cases / sizeof hand_cases[0]; i++)
        check_canonical(hand_cases[i].in, hand_cases[i].out);
    for (size_t i = 0; i < sizeof printer_cases / sizeof printer_cases[0]; i++)
        check_canonical(printer_cases[i].in, printer_cases[i].out);
    /* durations are kept in exact milliseconds, not rounded through seconds (found by fuzzing) */
    check_canonical("2m8888888888880ms", "102880d15h50m8s880ms");
    check_canonical("foo[2m8888888888880ms] offset -2m8888888888880ms",
                    "foo[102880d15h50m8s880ms] offset -102880d15h50m8s880ms");
    check_canonical("-2m8888888888880ms", "-102880d15h50m8s880ms");
    /* a parenthesised offset before arithmetic keeps its sign so it does not swallow the
     * operator; +Inf as the base of ^ is written Inf (found by fuzzing) */
    check_canonical("o offset +(2m) / x", "o offset +(2m) / x");
    check_canonical("o offset +(2m) > x", "o offset (2m) > x");
    check_canonical("Inf ^ -3 ^ y", "Inf ^ -3 ^ y");
    check_canonical("-Inf ^ 2", "-Inf ^ 2");
    check_canonical("info(x, {})", NULL);
    check_canonical("\"\\ufffd\"", NULL); /* U+FFFD is escaped: the lexer refuses it raw */
}

static void test_conformance_expressions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof conformance_cases / sizeof conformance_cases[0]; i++)
        check_canonical(conformance_cases[i].in, conformance_cases[i].out);
}

/* ---- errors ----------------------------------------------------------------------------------------- */

static const error_case hand_errors[] = {
    {"1e400", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": value out of range"},
    {"'it''s'", "1:5: parse error: unexpected string \"'s'\""},
    {"a + bool on (x) b", "1:3: parse error: bool modifier can only be used on comparison operators"},
    {"-foo[5m:1m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""},
    {"'it''s'", "1:5: parse error: unexpected string \"'s'\""},
    {"foo{a=~\"(\"}", "1:5: parse error: error parsing regexp: missing closing parenthesis at offset 1: `(`"},
    {"foo{a=~\"(?=x)\"}", "1:5: parse error: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"},
    {"foo{a=~\"(?<!x)y\"}", "1:5: parse error: error parsing regexp: invalid or unsupported Perl syntax: `(?<!`"},
    {"foo{a=~\"(a)\\\\1\"}", "1:5: parse error: error parsing regexp: invalid escape sequence: `\\1`"},
    {"foo{a=~\"a*+\"}", "1:5: parse error: error parsing regexp: invalid nested repetition operator: `*+`"},
    {"foo{a=~\"a)|(b\"}", "1:5: parse error: error parsing regexp: unmatched closing parenthesis at offset 1: `a)|(b`"},
    {"foo{a=~\"\xff\"}", "1:8: parse error: invalid UTF-8 rune"},
    {"0xABm", "1:1: parse error: unknown unit \"xABm\" in duration \"0xABm\""},
    {"1.5h", "1:1: parse error: unknown unit \".\" in duration \"1.5h\""},
    {"foo[300y]", "1:5: parse error: duration out of range"},
    {"foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\""},
    {"foo @ 1e20", "1:1: parse error: timestamp out of bounds for @ modifier: 100000000000000000000.000000"},
    {"foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"},
    {"holt_winters(x[5m], 0.5, 0.5)", "1:1: parse error: unknown function with name \"holt_winters\""},
    {"RATE(x[5m])", "1:1: parse error: unknown function with name \"RATE\""},
    {"STEP()", "1:1: parse error: unknown function with name \"STEP\""},
    {"sum by (x) foo", "1:12: parse error: unexpected identifier \"foo\" in aggregation"},
    {"sum(foo bar)", "1:9: parse error: unexpected identifier \"bar\" in aggregation"},
    {"rate(foo bar)", "1:10: parse error: unexpected identifier \"bar\""},
    {"sum(rate(foo[5m] 1))", "1:18: parse error: unexpected number \"1\" in aggregation"},
    {"foo offset (1m) - bar", "1:19: parse error: unexpected identifier \"bar\" in offset, expected number, duration, step(), or range()"},
    {"foo offset", "1:11: parse error: unexpected end of input in offset, expected number, duration, step(), or range()"},
    {"foo offset [5m]", "1:12: parse error: unexpected \"[\" in offset, expected number, duration, step(), or range()"},
    {"foo offset (1m", "1:15: parse error: unclosed left parenthesis"},
    {"label_replace(x)", "1:1: parse error: expected 5 argument(s) in call to \"label_replace\", got 1"},
    {"round()", "1:1: parse error: expected at least 1 argument(s) in call to \"round\", got 0"},
    {"round(x, 1, 2)", "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3"},
    {"label_join(x, \"a\")", "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2"},
    {"sort_by_label(x, 1)", "1:18: parse error: expected type string in call to function \"sort_by_label\", got scalar"},
    {"vector(\"a\")", "1:8: parse error: expected type scalar in call to function \"vector\", got string"},
    {"info(x, foo)", "1:9: parse error: expected label selectors only, got vector selector instead"},
    {"info(x, 1)", "1:1: parse error: expected type instant vector in call to function \"info\", got scalar"},
    {"info(x, foo[5m])", "1:1: parse error: expected type instant vector in call to function \"info\", got range vector"},
    {"a + on(b) group_left(b) c", "1:3: parse error: label \"b\" must not occur in ON and GROUP clause at once"},
    {"{a=\"\"} + 1", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"x[5m][5m]", "1:6: parse error: ranges only allowed for vector selectors"},
    {"x[5m] anchored smoothed", "1:1: parse error: anchored and smoothed modifiers cannot be used together"},
    {"x[5m:1m] anchored", "1:1: parse error: anchored modifier is not supported for subqueries"},
    {"rate(x[5m]) anchored", "1:1: parse error: anchored modifier not implemented"},
    {"foo[0.0001]", "1:5: parse error: duration must be greater than 0"},
    {"foo[5m:0]", "1:8: parse error: duration must be greater than 0"},
    {"1 + fill(1) 2", "1:1: parse error: filling in missing series only allowed between instant vectors"},
    {"a and fill(1) b", "1:1: parse error: filling in missing series not allowed for set operators"},
    {"a + fill(x) b", "1:10: parse error: unexpected identifier \"x\""},
    {"a + fill b", "1:10: parse error: unexpected identifier \"b\""},
    {"foo[5m] offset 1m offset 2m", "1:1: parse error: offset may not be set multiple times"},
    {"foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"},
    {"foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"},
    {"foo @ start(", "1:13: parse error: unclosed left parenthesis"},
    {"foo @ \"x\"", "1:7: parse error: unexpected string \"\\\"x\\\"\" in @, expected timestamp"},
    {"\"a\" + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"},
    {"foo[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant vector types"},
    {"1 + foo[5m]", "1:5: parse error: binary expression must contain only scalar and instant vector types"},
    {"sum(\"a\")", "1:5: parse error: expected type instant vector in aggregation expression, got string"},
    {"quantile(\"a\", x)", "1:10: parse error: expected type scalar in aggregation parameter, got string"},
    {"count_values(1, x)", "1:14: parse error: expected type string in aggregation parameter, got scalar"},
    {"x[5m:1m][5m:1m]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
    {"sum(x) by (a) without (b)", "1:15: parse error: unexpected <without>"},
    {"a + b c", "1:7: parse error: unexpected identifier \"c\""},
    {"foo{\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{__name__=\"bar\", __name__=\"baz\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
    {"sum by (1) (x)", "1:9: parse error: unexpected number \"1\" in grouping opts, expected label"},
    {"sum by (\"\") (x)", "1:9: parse error: invalid label name for grouping: \"\""},
    {"sum by (\"\xff\") (x)", "1:9: parse error: invalid UTF-8 rune"},
    {"a + on(b c", "1:10: parse error: unexpected identifier \"c\" in grouping opts, expected \",\" or \")\""},
    {"a + on b", "1:8: parse error: unexpected identifier \"b\" in grouping opts, expected \"(\""},
    {"a * on(x) group_left(y b", "1:24: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
    {"foo[5m:1m:]", "1:10: parse error: unexpected colon ':'"},
    {"foo[5m", "1:7: parse error: unclosed left bracket"},
    {"foo[5m 1m]", "1:8: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\""},
    {"foo[5m:1m 1m]", "1:11: parse error: unexpected duration \"1m\" in subquery selector, expected \"]\""},
    {"foo[5m +]", "1:9: parse error: unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()"},
    {"foo[5m:1m +]", "1:12: parse error: unexpected \"]\" in subquery selector, expected number, duration, step(), range(), or \"]\""},
    {"foo[1m / 0]", "1:8: parse error: division by zero"},
    {"foo[min_of(1m)]", "1:14: parse error: unexpected \")\" in subquery or range selector, expected number, duration, step(), or range()"},
    {"foo[min_of(1m, 2m]", "1:18: parse error: unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()"},
    {"foo[step(1)]", "1:10: parse error: unexpected number \"1\" in subquery or range selector, expected number, duration, step(), or range()"},
    {"+\"a\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\""},
    {"-\"a\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\""},
    {"-foo[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""},
    {"1 < 2", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
    {"1 == bool 2 == 3", "1:13: parse error: comparisons between scalars must use BOOL modifier"},
    {"(1", "1:3: parse error: unclosed left parenthesis"},
    {"sum(x,)", "1:6: parse error: trailing commas not allowed in function call args"},
    {"f(,)", "1:3: parse error: unexpected \",\""},
    {"x{", "1:3: parse error: unexpected end of input inside braces"},
    {"x{a}", "1:4: parse error: unexpected \"}\" in label matching, expected label matching operator"},
    {"x{a=}", "1:5: parse error: unexpected \"}\" in label matching, expected string"},
    {"x{a=\"b\" c}", "1:9: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\""},
    {"x{a=\"b\",,}", "1:9: parse error: unexpected \",\" in label matching, expected identifier or \"}\""},
    {"1 2", "1:3: parse error: unexpected number \"2\""},
    {"@ 5", "1:1: parse error: unexpected <op:@>"},
    {")", "1:2: parse error: unexpected right parenthesis ')'"},
    {",", "1:1: parse error: unexpected \",\""},
};

/* Prometheus' own parser test cases for invalid input: its message, at its position. */
static const error_case prometheus_errors[] = {
    {"", "unknown position: parse error: no expression found in input"},
    {"# just a comment\n\n", "1:1: parse error: no expression found in input"},
    {"1+", "1:3: parse error: unexpected end of input"},
    {".", "1:1: parse error: unexpected character: '.'"},
    {"2.5.", "1:1: parse error: bad number or duration syntax: \"2.5.\""},
    {"100..4", "1:1: parse error: bad number or duration syntax: \"100..\""},
    {"0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\""},
    {"1 /", "1:4: parse error: unexpected end of input"},
    {"*1", "1:1: parse error: unexpected <op:*>"},
    {"(1))", "1:5: parse error: unexpected right parenthesis ')'"},
    {"((1)", "1:5: parse error: unclosed left parenthesis"},
    {"999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999\": value out of range"},
    {"(", "1:2: parse error: unclosed left parenthesis"},
    {"1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
    {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
    {"1 or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression"},
    {"1 unless 1", "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression"},
    {"1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"},
    {"1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"},
    {"-\"string\"", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"string\""},
    {"-test[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\""},
    {"*test", "1:1: parse error: unexpected <op:*>"},
    {"@@", "1:1: parse error: unexpected <op:@>"},
    {"1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery"},
    {"foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"},
    {"a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"},
    {"foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
    {"1 and foo", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
    {"foo or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression"},
    {"1 or foo", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression"},
    {"foo unless 1", "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression"},
    {"1 unless foo", "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression"},
    {"1 or on(bar) foo", "1:1: parse error: vector matching only allowed between instant vectors"},
    {"foo == on(bar) 10", "1:1: parse error: vector matching only allowed between instant vectors"},
    {"foo + group_left(baz) bar", "1:7: parse error: unexpected <group_left>"},
    {"foo and on(bar) group_left(baz) bar", "1:1: parse error: no grouping allowed for \"and\" operation"},
    {"foo and on(bar) group_right(baz) bar", "1:1: parse error: no grouping allowed for \"and\" operation"},
    {"foo or on(bar) group_left(baz) bar", "1:1: parse error: no grouping allowed for \"or\" operation"},
    {"foo or on(bar) group_right(baz) bar", "1:1: parse error: no grouping allowed for \"or\" operation"},
    {"foo unless on(bar) group_left(baz) bar", "1:1: parse error: no grouping allowed for \"unless\" operation"},
    {"foo unless on(bar) group_right(baz) bar", "1:1: parse error: no grouping allowed for \"unless\" operation"},
    {"http_requests{group=\"production\"} + on(instance) group_left(job,instance) cpu_count{type=\"smp\"}", "1:35: parse error: label \"instance\" must not occur in ON and GROUP clause at once"},
    {"foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison operators"},
    {"foo + bool 10", "1:5: parse error: bool modifier can only be used on comparison operators"},
    {"foo and bool 10", "1:5: parse error: bool modifier can only be used on comparison operators"},
    {"http_requests{group=\"production\"} + on(instance) group_left(job,instance) cpu_count{type=\"smp\"}", "1:35: parse error: label \"instance\" must not occur in ON and GROUP clause at once"},
    {"foo @ +Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"},
    {"foo @ -Inf", "1:1: parse error: timestamp out of bounds for @ modifier: -Inf"},
    {"foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN"},
    {"{", "1:2: parse error: unexpected end of input inside braces"},
    {"}", "1:1: parse error: unexpected character: '}'"},
    {"some{", "1:6: parse error: unexpected end of input inside braces"},
    {"some}", "1:5: parse error: unexpected character: '}'"},
    {"some_metric{a=b}", "1:15: parse error: unexpected identifier \"b\" in label matching, expected string"},
    {"some_metric{a:b=\"b\"}", "1:14: parse error: unexpected character inside braces: ':'"},
    {"foo{a*\"b\"}", "1:6: parse error: unexpected character inside braces: '*'"},
    {"foo{a>=\"b\"}", "1:6: parse error: unexpected character inside braces: '>'"},
    {"some_metric{a=\"\xff\"}", "1:15: parse error: invalid UTF-8 rune"},
    {"foo{gibberish}", "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator"},
    {"foo{1}", "1:5: parse error: unexpected character inside braces: '1'"},
    {"{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x=~\".*\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x!~\".+\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x!=\"a\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"foo{__name__=\"bar\"}", "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{__name__= =}", "1:15: parse error: unexpected \"=\" in label matching, expected string"},
    {"foo{,}", "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""},
    {"foo{__name__ == \"bar\"}", "1:15: parse error: unexpected \"=\" in label matching, expected string"},
    {"foo{__name__=\"bar\" lol}", "1:20: parse error: unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""},
    {"foo{\"a\"=}", "1:9: parse error: unexpected \"}\" in label matching, expected string"},
    {"foo[5mm]", "1:5: parse error: bad number or duration syntax: \"5mm\""},
    {"foo[5m1]", "1:5: parse error: bad number or duration syntax: \"5m1\""},
    {"foo[5m:1m1]", "1:8: parse error: bad number or duration syntax: \"1m1\""},
    {"foo[5y1hs]", "1:5: parse error: unknown unit \"hs\" in duration \"5y1hs\""},
    {"foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\""},
    {"foo[5m1m]", "1:5: parse error: not a valid duration string: \"5m1m\""},
    {"foo[0m]", "1:5: parse error: duration must be greater than 0"},
    {"foo[\"5m\"]", "1:5: parse error: unexpected character in duration expression: '\"'"},
    {"foo[]", "1:5: parse error: unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()"},
    {"foo[-1]", "1:5: parse error: duration must be greater than 0"},
    {"some_metric[5m] OFFSET 1mm", "1:24: parse error: bad number or duration syntax: \"1mm\""},
    {"some_metric[5m] OFFSET", "1:23: parse error: unexpected end of input in offset, expected number, duration, step(), or range()"},
    {"some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range"},
    {"some_metric[5m] @", "1:18: parse error: unexpected end of input in @, expected timestamp"},
    {"some_metric @ 1234 [5m]", "1:20: parse error: no @ modifiers allowed before range"},
    {"some_metric @ start() [5m]", "1:23: parse error: no @ modifiers allowed before range"},
    {"some_metric @ end()[5m]", "1:20: parse error: no @ modifiers allowed before range"},
    {"some_metric offset step()[5m]", "1:26: parse error: no offset modifiers allowed before range"},
    {"(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"},
    {"sum by (\"foo)(some_metric{})", "1:9: parse error: unterminated quoted string"},
    {"sum without(==)(some_metric)", "1:13: parse error: unexpected <op:==> in grouping opts, expected label"},
    {"sum without(,)(some_metric)", "1:13: parse error: unexpected \",\" in grouping opts, expected label"},
    {"sum without(foo,,)(some_metric)", "1:17: parse error: unexpected \",\" in grouping opts, expected label"},
    {"sum some_metric by (test)", "1:5: parse error: unexpected identifier \"some_metric\""},
    {"sum (some_metric) by test", "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\""},
    {"sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"},
    {"MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier \"keep_common\""},
    {"MIN (some_metric) keep_common", "1:19: parse error: unexpected identifier \"keep_common\""},
    {"sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"},
    {"sum without (test) (some_metric) by (test)", "1:34: parse error: unexpected <by>"},
    {"topk(some_metric)", "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1"},
    {"topk(some_metric,)", "1:17: parse error: trailing commas not allowed in function call args"},
    {"topk(some_metric, other_metric)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"},
    {"count_values(5, other_metric)", "1:14: parse error: expected type string in aggregation parameter, got scalar"},
    {"rate(some_metric[5m]) @ 1234", "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery"},
    {"floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0"},
    {"floor(some_metric, other_metric)", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 2"},
    {"floor(some_metric, 1)", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 2"},
    {"floor(1)", "1:7: parse error: expected type instant vector in call to function \"floor\", got scalar"},
    {"hour(some_metric, some_metric, some_metric)", "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3"},
    {"time(some_metric)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"},
    {"non_existent_function_far_bar()", "1:1: parse error: unknown function with name \"non_existent_function_far_bar\""},
    {"rate(some_metric)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"},
    {"label_replace(a, `b`, `c\xff`, `d`, `.*`)", "1:23: parse error: invalid UTF-8 rune"},
    {"*1", "1:1: parse error: unexpected <op:*>"},
    {"-=", "1:2: parse error: unexpected \"=\""},
    {"++-++-+-+-<", "1:11: parse error: unexpected <op:<>"},
    {"e-+=/(0)", "1:4: parse error: unexpected \"=\""},
    {"a>b()", "1:3: parse error: unknown function with name \"b\""},
    {"rate(avg)", "1:6: parse error: expected type range vector in call to function \"rate\", got instant vector"},
    {"`\\``", "1:4: parse error: unterminated raw string"},
    {"\"\\", "1:1: parse error: escape sequence not terminated"},
    {"\"\\c\"", "1:1: parse error: unknown escape sequence U+0063 'c'"},
    {"\"\\x.\"", "1:1: parse error: illegal character U+002E '.' in escape sequence"},
    {"foo{bar=\"baz\"}[", "1:16: parse error: unexpected end of input in duration expression"},
    {"test[5d] OFFSET 10s [10m:5s]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
    {"(foo + bar{nm=\"val\"})[5m:][10m:5s]", "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
    {"rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector selectors"},
    {"rate(food[1m])[1h] @ 100", "1:15: parse error: ranges only allowed for vector selectors"},
    {"info(rate(http_request_counter_total{}[5m]), target_info{foo=\"bar\"})", "1:46: parse error: expected label selectors only, got vector selector instead"},
    {"info(http_request_counter_total{namespace=\"zzz\"}, {foo=\"bar\"} == 1)", "1:51: parse error: expected label selectors only"},
    {"foo[step]", "1:9: parse error: unexpected \"]\" in subquery or range selector, expected number, duration, step(), or range()"},
    {"foo[step()/0d]", "1:11: parse error: division by zero"},
    {"foo[5s/0d]", "1:7: parse error: division by zero"},
    {"foo offset (4d/0)", "1:15: parse error: division by zero"},
    {"foo[5s%0d]", "1:7: parse error: modulo by zero"},
    {"foo offset 9.5e10", "1:12: parse error: duration out of range"},
    {"foo[9.5e10]", "1:5: parse error: duration out of range"},
    {"sum(", "1:5: parse error: unclosed left parenthesis"},
    {"sum(rate(", "1:10: parse error: unclosed left parenthesis"},
    {"foo[5s x 5s]", "1:8: parse error: unexpected character: 'x', expected ':'"},
    {"foo[5s s 5s]", "1:8: parse error: unexpected character: 's', expected ':'"},
    {"1[5m] smoothed", "1:2: parse error: ranges only allowed for vector selectors"},
    {"1[5m] anchored", "1:2: parse error: ranges only allowed for vector selectors"},
};

static void test_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof hand_errors / sizeof hand_errors[0]; i++)
        check_error(hand_errors[i].in, hand_errors[i].err);
    for (size_t i = 0; i < sizeof prometheus_errors / sizeof prometheus_errors[0]; i++)
        check_error(prometheus_errors[i].in, prometheus_errors[i].err);
    /* a NULL error buffer is allowed */
    promql_expr *e;
    assert_int_equal(promql_parse("1 +", 3, &e, NULL), STRATA_EPARSE);
    /* the length bounds the text: what follows is not read */
    e = parse_ok("up");
    promql_expr_free(e);
    assert_int_equal(promql_parse("up{", 2, &e, NULL), 0);
    promql_expr_free(e);
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(promql_parse("up\n  + ", 7, &e, err), STRATA_EPARSE);
    assert_string_equal(err, "2:5: parse error: unexpected end of input");
}

/* ---- the tree ------------------------------------------------------------------------------------------ */

/* The tree as fully parenthesised text: (op lhs rhs), (-x), sel, num. */
static void shape(const promql_expr *e, buf *b)
{
    switch (e->kind) {
    case N_BINARY: {
        static const char *ops[] = {[T_ADD] = "+",   [T_SUB] = "-",       [T_MUL] = "*",
                                    [T_DIV] = "/",   [T_MOD] = "%",       [T_POW] = "^",
                                    [T_ATAN2] = "atan2", [T_EQLC] = "==", [T_NEQ] = "!=",
                                    [T_LSS] = "<",   [T_LTE] = "<=",      [T_GTR] = ">",
                                    [T_GTE] = ">=",  [T_LAND] = "and",    [T_LOR] = "or",
                                    [T_LUNLESS] = "unless"};
        buf_printf(b, "(%s ", ops[e->op]);
        shape(e->lhs, b);
        buf_putc(b, ' ');
        shape(e->rhs, b);
        buf_putc(b, ')');
        break;
    }
    case N_UNARY:
        buf_printf(b, "(%s", e->op == T_SUB ? "-" : "+");
        shape(e->inner, b);
        buf_putc(b, ')');
        break;
    case N_PAREN:
        buf_putc(b, '[');
        shape(e->inner, b);
        buf_putc(b, ']');
        break;
    case N_NUMBER: buf_printf(b, "%g", e->num); break;
    case N_VECTOR: buf_printf(b, "%s%s", e->metric, e->offset_ms ? "@off" : ""); break;
    case N_MATRIX: buf_printf(b, "%s[%lld]", e->metric, (long long)e->range_ms); break;
    case N_SUBQUERY:
        buf_putc(b, '{');
        shape(e->inner, b);
        buf_printf(b, "}[%lld:%lld]", (long long)e->range_ms, (long long)e->step_ms);
        break;
    case N_CALL:
    case N_AGG:
        buf_printf(b, "%s(", e->func);
        for (size_t i = 0; i < e->n_args; i++) {
            if (i) buf_putc(b, ',');
            shape(e->args[i], b);
        }
        buf_putc(b, ')');
        break;
    default: buf_printf(b, "?"); break;
    }
}

static void check_shape(const char *q, const char *want)
{
    promql_expr *e = parse_ok(q);
    buf b = {0};
    shape(e, &b);
    if (strcmp((char *)b.data, want)) fprintf(stderr, "shape(%s): got %s want %s\n", q, b.data, want);
    assert_string_equal((char *)b.data, want);
    buf_free(&b);
    promql_expr_free(e);
}

static void test_precedence(void **state)
{
    (void)state;
    check_shape("a + b * c", "(+ a (* b c))");
    check_shape("a * b + c", "(+ (* a b) c)");
    check_shape("a - b - c", "(- (- a b) c)");            /* left-associative */
    check_shape("a / b * c % d", "(% (* (/ a b) c) d)");
    check_shape("a atan2 b * c", "(* (atan2 a b) c)");   /* atan2 binds like * */
    check_shape("2 ^ 3 ^ 2", "(^ 2 (^ 3 2))");            /* ^ is right-associative */
    check_shape("-2 ^ 2", "(-(^ 2 2))");                 /* ^ binds tighter than unary minus */
    check_shape("-a ^ -b", "(-(^ a (-b)))");
    check_shape("2 ^ -1", "(^ 2 -1)");
    check_shape("-a * b", "(* (-a) b)");                  /* unary minus binds like * */
    check_shape("-a + b", "(+ (-a) b)");
    check_shape("- - 1", "1");                            /* folded into the literal */
    check_shape("-(1)", "(-[1])");
    check_shape("+a", "(+a)");
    check_shape("a or b and c unless d", "(or a (unless (and b c) d))");
    check_shape("a and b or c", "(or (and a b) c)");
    check_shape("a == b + c", "(== a (+ b c))");
    check_shape("a > b == c", "(== (> a b) c)");
    check_shape("a + b > c and d", "(and (> (+ a b) c) d)");
    check_shape("a or b or c", "(or (or a b) c)");
    check_shape("(a + b) * c", "(* [(+ a b)] c)");
    /* postfix modifiers bind tightest */
    check_shape("a + b offset 1m", "(+ a b@off)");
    check_shape("-a offset 1m", "(-a@off)");
    check_shape("a ^ b offset 1m", "(^ a b@off)");
    check_shape("a offset 1m ^ 2", "(^ a@off 2)");
    check_shape("(a + b)[5m:1m]", "{[(+ a b)]}[300000:60000]");
    check_shape("rate(a[5m]) * 2", "(* rate(a[300000]) 2)");
    check_shape("sum(a) by (b) / c", "(/ sum(a) c)");
    /* offset takes one duration term; only a parenthesised one continues */
    check_shape("a offset 100 + 2", "(+ a@off 2)");
    check_shape("a offset -2 ^ 2", "(^ a@off 2)");
    check_shape("a offset step() * 2", "(* a 2)");
    /* keywords are metric names where an expression starts */
    check_shape("sum + by", "(+ sum by)");
    check_shape("and and or", "(and and or)");
    check_shape("offset offset 1m", "offset@off");
}

static void test_literals(void **state)
{
    (void)state;
    struct {
        const char *q;
        double v;
    } nums[] = {{"1", 1},      {"0x1F", 31},       {"0XaB", 171},       {"010", 8},   {"08", 8},
                {"0755", 493}, {"1_000", 1000},    {".5", 0.5},         {"1.", 1},    {"1e3", 1000},
                {"-1.5e-3", -0.0015}, {"0x_10", 16}, {"1_0.2_5", 10.25}, {"5m", 300}, {"1h30m", 5400},
                {"500ms", 0.5}, {"-5m", -300},     {"1e308", 1e308},    {"+2", 2},    {"- -2", 2}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        promql_expr *e = parse_ok(nums[i].q);
        assert_int_equal(e->kind, N_NUMBER);
        if (e->num != nums[i].v) fprintf(stderr, "%s = %.17g\n", nums[i].q, e->num);
        assert_true(e->num == nums[i].v);
        promql_expr_free(e);
    }
    promql_expr *e = parse_ok("Inf");
    assert_true(isinf(e->num) && e->num > 0);
    promql_expr_free(e);
    e = parse_ok("-inf");
    assert_true(isinf(e->num) && e->num < 0);
    promql_expr_free(e);
    e = parse_ok("NaN");
    assert_true(isnan(e->num));
    promql_expr_free(e);
    e = parse_ok("-0");
    assert_true(e->num == 0 && signbit(e->num));
    promql_expr_free(e);
    e = parse_ok("5m");
    assert_true(e->is_duration);
    promql_expr_free(e);
    e = parse_ok("300");
    assert_false(e->is_duration);
    promql_expr_free(e);

    /* strings: escapes decoded, bytes kept (a \x escape may write invalid UTF-8) */
    e = parse_ok("\"a\\x00b\\xffc\"");
    assert_int_equal(e->kind, N_STRING);
    assert_int_equal(e->str_len, 5);
    assert_memory_equal(e->str, "a\0b\xff" "c", 5);
    promql_expr_free(e);
    e = parse_ok("`\\n`");
    assert_string_equal(e->str, "\\n");
    promql_expr_free(e);
    e = parse_ok("'\\u00e4\\U0001F600\\101'");
    assert_string_equal(e->str, "ä\xf0\x9f\x98\x80" "A");
    promql_expr_free(e);
}

static const matcher *find_matcher(const promql_expr *e, const char *name)
{
    for (size_t i = 0; i < e->n_ms; i++)
        if (!strcmp(e->ms[i]->name, name)) return e->ms[i];
    return NULL;
}

static void test_selectors(void **state)
{
    (void)state;
    promql_expr *e = parse_ok("foo{a=\"1\", b!=\"2\", c=~\"x|y\", d!~\"z.*\"}");
    assert_int_equal(e->kind, N_VECTOR);
    assert_string_equal(e->metric, "foo");
    assert_int_equal(e->n_ms, 5);
    /* the name outside the braces is the last matcher, as Prometheus assembles it */
    assert_string_equal(e->ms[4]->name, "__name__");
    assert_string_equal(e->ms[4]->value, "foo");
    assert_int_equal(find_matcher(e, "a")->type, STRATA_MATCH_EQUAL);
    assert_int_equal(find_matcher(e, "b")->type, STRATA_MATCH_NOT_EQUAL);
    assert_int_equal(find_matcher(e, "c")->type, STRATA_MATCH_REGEX);
    assert_true(matcher_matches(find_matcher(e, "c"), "y", 1));
    assert_false(matcher_matches(find_matcher(e, "c"), "xy", 2)); /* anchored */
    assert_int_equal(find_matcher(e, "d")->type, STRATA_MATCH_NOT_REGEX);
    assert_int_equal(e->pos, 0);
    assert_int_equal(e->end, strlen("foo{a=\"1\", b!=\"2\", c=~\"x|y\", d!~\"z.*\"}"));
    promql_expr_free(e);

    /* UTF-8 names: a quoted string alone is the metric name */
    e = parse_ok("{\"my.metric\", \"label.name\"=\"v\"}");
    assert_null(e->metric);
    assert_string_equal(find_matcher(e, "__name__")->value, "my.metric");
    assert_string_equal(find_matcher(e, "label.name")->value, "v");
    promql_expr_free(e);

    /* regexes match newlines with '.', as Prometheus 3 */
    e = parse_ok("{a=~\"x.y\"}");
    assert_true(matcher_matches(e->ms[0], "x\ny", 3));
    promql_expr_free(e);

    e = parse_ok("foo[5m] offset -1h30m @ 1609746000.5");
    assert_int_equal(e->kind, N_MATRIX);
    assert_int_equal(e->range_ms, 300000);
    assert_int_equal(e->offset_ms, -5400000);
    assert_int_equal(e->at, AT_TIME);
    assert_int_equal(e->at_ms, 1609746000500LL);
    promql_expr_free(e);

    e = parse_ok("foo[300]");
    assert_int_equal(e->range_ms, 300000);
    promql_expr_free(e);
    e = parse_ok("foo[1.5]");
    assert_int_equal(e->range_ms, 1500);
    promql_expr_free(e);
    e = parse_ok("foo @ end()");
    assert_int_equal(e->at, AT_END);
    promql_expr_free(e);
}

static void test_selectors_2(void **state)
{
    (void)state;
    promql_expr *e = parse_ok("rate(foo[1h:5m] offset 10m)");
    assert_int_equal(e->kind, N_CALL);
    assert_non_null(e->fn);
    assert_string_equal(e->fn->name, "rate");
    const promql_expr *s = e->args[0];
    assert_int_equal(s->kind, N_SUBQUERY);
    assert_int_equal(s->range_ms, 3600000);
    assert_int_equal(s->step_ms, 300000);
    assert_int_equal(s->offset_ms, 600000);
    assert_int_equal(s->inner->kind, N_VECTOR);
    promql_expr_free(e);
    e = parse_ok("foo[1h:]");
    assert_int_equal(e->step_ms, 0);
    assert_null(e->step_expr);
    promql_expr_free(e);
    e = parse_ok("foo[5m] anchored");
    assert_true(e->anchored && !e->smoothed);
    promql_expr_free(e);
    e = parse_ok("a + on(b) group_left(c, d) fill_left(1) fill_right(2) e");
    assert_int_equal(e->kind, N_BINARY);
    assert_true(e->has_matching && e->matching_on);
    assert_int_equal(e->card, 1);
    assert_int_equal(e->n_grouping, 1);
    assert_int_equal(e->n_extra, 2);
    assert_string_equal(e->extra[1], "d");
    assert_true(e->fill_lhs_set && e->fill_rhs_set && e->fill_lhs == 1 && e->fill_rhs == 2);
    promql_expr_free(e);
    /* a scalar side drops the matching, as Prometheus does */
    e = parse_ok("1 + ignoring() group_left foo");
    assert_false(e->has_matching);
    assert_int_equal(e->card, 0);
    promql_expr_free(e);
    e = parse_ok("count_values without (a) (\"v\", x)");
    assert_int_equal(e->kind, N_AGG);
    assert_string_equal(e->func, "count_values");
    assert_true(e->without && e->has_grouping);
    assert_int_equal(e->n_args, 2);
    promql_expr_free(e);
    e = parse_ok("SUM(x) BY (a)");
    assert_string_equal(e->func, "sum");
    assert_false(e->without);
    promql_expr_free(e);
}

static void test_types(void **state)
{
    (void)state;
    struct {
        const char *q;
        promql_type t;
    } cases[] = {{"1", PT_SCALAR},           {"\"s\"", PT_STRING},        {"x", PT_VECTOR},
                 {"x[5m]", PT_MATRIX},        {"x[5m:]", PT_MATRIX},       {"rate(x[5m])", PT_VECTOR},
                 {"time()", PT_SCALAR},       {"scalar(x)", PT_SCALAR},    {"1 + 2", PT_SCALAR},
                 {"1 + x", PT_VECTOR},        {"x + 1", PT_VECTOR},        {"-(1)", PT_SCALAR},
                 {"(x)", PT_VECTOR},          {"sum(x)", PT_VECTOR},       {"((\"s\"))", PT_STRING}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        promql_expr *e = parse_ok(cases[i].q);
        assert_int_equal(promql_expr_type(e), cases[i].t);
        promql_expr_free(e);
    }
    assert_string_equal(promql_type_name(PT_MATRIX), "range vector");
    assert_string_equal(promql_type_short_name(PT_MATRIX), "matrix");
}

static char *repeat(const char *pre, int n, const char *mid, const char *post, int m)
{
    size_t lp = strlen(pre), lm = strlen(mid), lq = strlen(post);
    char *s = malloc(lp * (size_t)n + lm + lq * (size_t)m + 1), *o = s;
    for (int i = 0; i < n; i++, o += lp) memcpy(o, pre, lp);
    memcpy(o, mid, lm);
    o += lm;
    for (int i = 0; i < m; i++, o += lq) memcpy(o, post, lq);
    *o = '\0';
    return s;
}

static void check_too_deep(char *q)
{
    promql_expr *e;
    char err[STRATA_ERRMSG_SIZE];
    int rc = promql_parse(q, strlen(q), &e, err);
    if (rc != STRATA_EPARSE || !strstr(err, "nested more than 500 levels"))
        fprintf(stderr, "%.40s...: %d %s\n", q, rc, err);
    assert_int_equal(rc, STRATA_EPARSE);
    assert_non_null(strstr(err, "parse error: expression is nested more than 500 levels deep"));
    free(q);
}

static void test_depth_limit(void **state)
{
    (void)state;
    /* deep nesting of every recursive construct is a clean error, not a stack overflow */
    check_too_deep(repeat("(", 100000, "1", ")", 100000));
    check_too_deep(repeat("-", 100000, "x", "", 0));
    check_too_deep(repeat("- ", 100000, "1", "", 0)); /* folds to one literal, still too deep */
    check_too_deep(repeat("abs(", 1000, "x", ")", 1000));
    check_too_deep(repeat("sum(", 1000, "x", ")", 1000));
    check_too_deep(repeat("x + ", 1000, "x", "", 0));
    check_too_deep(repeat("x ^ ", 1000, "x", "", 0));
    check_too_deep(repeat("", 0, "x", "[1m:1m]", 1000));
    check_too_deep(repeat("x[", 1, "", "1+", 1000));
    check_too_deep(repeat("x[", 1, "", "(", 1000));
    check_too_deep(repeat("x offset ", 1, "", "(", 1000));
    /* just below the bound parses */
    char *q = repeat("(", 400, "1", ")", 400);
    promql_expr *e = parse_ok(q);
    char *f = format(e);
    assert_string_equal(f, q);
    free(f);
    free(q);
    promql_expr_free(e);
    q = repeat("x + ", 400, "x", "", 0);
    e = parse_ok(q);
    free(q);
    promql_expr_free(e);
}

static void test_selector_parser(void **state)
{
    (void)state;
    matcher **ms;
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(promql_parse_selector("up{job=\"a\", x=~\"b.*\"}", &ms, &n, err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ms[2]->name, "__name__");
    assert_string_equal(ms[2]->value, "up");
    assert_int_equal(ms[1]->type, STRATA_MATCH_REGEX);
    for (size_t i = 0; i < n; i++) matcher_free(ms[i]);
    free(ms);
    assert_int_equal(promql_parse_selector("{\"my.metric\"}", &ms, &n, err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ms[0]->value, "my.metric");
    matcher_free(ms[0]);
    free(ms);
    assert_int_equal(promql_parse_selector("sum", &ms, &n, err), 0); /* a keyword as a name */
    matcher_free(ms[0]);
    free(ms);
    struct {
        const char *q;
        const char *err;
    } bad[] = {
        {"rate(up[5m])", "1:5: parse error: unexpected \"(\""},
        {"up[5m]", "1:3: parse error: unexpected \"[\""},
        {"up offset 5m", "1:4: parse error: unexpected <offset>"},
        {"up + 1", "1:4: parse error: unexpected <op:+>"},
        {"1", "1:1: parse error: unexpected number \"1\""},
        {"", "unknown position: parse error: unexpected end of input"},
        {"{job=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
        {"{job=~\".*\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
        {"up{job=}", "1:8: parse error: unexpected \"}\" in label matching, expected string"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms = (matcher **)1;
        int rc = promql_parse_selector(bad[i].q, &ms, &n, err);
        if (rc != STRATA_EPARSE || strcmp(err, bad[i].err))
            fprintf(stderr, "selector(%s): %d %s\n", bad[i].q, rc, err);
        assert_int_equal(rc, STRATA_EPARSE);
        assert_string_equal(err, bad[i].err);
        assert_null(ms);
    }
}

/* An argument of the given type, for calling every function. */
static const char *arg_of(promql_type t)
{
    switch (t) {
    case PT_SCALAR: return "1";
    case PT_VECTOR: return "x";
    case PT_MATRIX: return "x[5m]";
    case PT_STRING: return "\"s\"";
    default: return "?";
    }
}

static void test_function_table(void **state)
{
    (void)state;
    const char *names[] = {"abs", "absent", "rate", "year", "histogram_quantile", "label_replace",
                           "ts_of_min_over_time", "double_exponential_smoothing", "info"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const promql_func *f = promql_func_lookup(names[i], strlen(names[i]));
        assert_non_null(f);
        assert_string_equal(f->name, names[i]);
    }
    assert_null(promql_func_lookup("holt_winters", 12)); /* removed in Prometheus 3 */
    assert_null(promql_func_lookup("RATE", 4));
    assert_null(promql_func_lookup("rat", 3));
    assert_null(promql_func_lookup("rates", 5));
    assert_null(promql_func_lookup("", 0));
    /* every function of the table parses when called with its declared argument types, and the
     * table is sorted (the lookup is a binary search) */
    const promql_func *prev = NULL;
    static const char *all[] = {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
        "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
        "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
        "delta", "deriv", "double_exponential_smoothing", "end", "exp", "first_over_time", "floor",
        "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
        "histogram_quantiles", "histogram_stddev", "histogram_stdvar", "histogram_sum", "hour",
        "idelta", "increase", "info", "irate", "label_join", "label_replace", "last_over_time",
        "ln", "log10", "log2", "mad_over_time", "max_of", "max_over_time", "min_of",
        "min_over_time", "minute", "month", "pi", "predict_linear", "present_over_time",
        "quantile_over_time", "rad", "range", "rate", "resets", "round", "scalar", "sgn", "sin",
        "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "start",
        "start_timestamp", "stddev_over_time", "stdvar_over_time", "step", "sum_over_time", "tan",
        "tanh", "time", "timestamp", "ts_of_first_over_time", "ts_of_last_over_time",
        "ts_of_max_over_time", "ts_of_min_over_time", "vector", "year"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const promql_func *f = promql_func_lookup(all[i], strlen(all[i]));
        assert_non_null(f);
        if (prev) assert_true(strcmp(prev->name, f->name) < 0);
        prev = f;
        char q[256];
        int o = snprintf(q, sizeof q, "%s(", f->name);
        for (int a = 0; a < f->n_args; a++)
            o += snprintf(q + o, sizeof q - (size_t)o, "%s%s", a ? ", " : "", arg_of(f->args[a]));
        snprintf(q + o, sizeof q - (size_t)o, ")");
        if (!strcmp(f->name, "info")) snprintf(q, sizeof q, "info(x, {a=\"b\"})");
        promql_expr *e = parse_ok(q);
        assert_int_equal(promql_expr_type(e), f->ret);
        promql_expr_free(e);
    }
}

static void check_resolved(const char *q, int64_t step, int64_t range, int64_t want_range,
                           int64_t want_step, int64_t want_offset)
{
    promql_expr *e = parse_ok(q);
    char err[STRATA_ERRMSG_SIZE];
    int rc = promql_resolve_durations(e, q, step, range, err);
    if (rc) fprintf(stderr, "%s: %s\n", q, err);
    assert_int_equal(rc, 0);
    const promql_expr *s = e;
    while (s->kind == N_CALL) s = s->args[0];
    assert_int_equal(s->range_ms, want_range);
    assert_int_equal(s->step_ms, want_step);
    assert_int_equal(s->offset_ms, want_offset);
    promql_expr_free(e);
}

static void check_resolve_error(const char *q, int64_t step, int64_t range, const char *want)
{
    promql_expr *e = parse_ok(q);
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(promql_resolve_durations(e, q, step, range, err), STRATA_EPARSE);
    if (strcmp(err, want)) fprintf(stderr, "%s: got %s want %s\n", q, err, want);
    assert_string_equal(err, want);
    promql_expr_free(e);
}

static void test_duration_expressions(void **state)
{
    (void)state;
    check_resolved("x[5m * 2]", 0, 0, 600000, 0, 0);
    check_resolved("x[(5 + 2) * 1m]", 0, 0, 420000, 0, 0);
    check_resolved("x[1h30m % 1h]", 0, 0, 1800000, 0, 0);
    check_resolved("x[2 ^ 3 ^ 2]", 0, 0, 512000, 0, 0);
    check_resolved("x[-5m + 35m]", 0, 0, 1800000, 0, 0);
    check_resolved("x[step()]", 15000, 3600000, 15000, 0, 0);
    check_resolved("x[step() + 1ms]", 15000, 0, 15001, 0, 0);
    check_resolved("x[range()]", 15000, 3600000, 3600000, 0, 0);
    check_resolved("x[max_of(step(), 5m)]", 15000, 0, 300000, 0, 0);
    check_resolved("x[min_of(step(), 5m)]", 15000, 0, 15000, 0, 0);
    check_resolved("x[29s+1s:20*500ms]", 0, 0, 30000, 10000, 0);
    check_resolved("x[5m] offset (1h / 2)", 0, 0, 300000, 0, 1800000);
    check_resolved("x offset -step()", 5000, 0, 0, 0, -5000);
    check_resolved("x offset -(min_of(step(), 2s) - 5)", 5000, 0, 0, 0, 3000);
    check_resolved("rate(x[1m] offset step())", 10000, 0, 60000, 0, 10000);
    check_resolved("x[1.0005]", 0, 0, 1000, 0, 0); /* milliseconds, truncated */
    check_resolve_error("x[step()]", 0, 0, "1:3: duration must be greater than 0");
    check_resolve_error("x[5m - 10m]", 0, 0, "1:3: duration must be greater than 0");
    check_resolve_error("x[1m % (0)]", 0, 0, "1:3: modulo by zero");
    check_resolve_error("x[1m / (step())]", 0, 0, "1:3: division by zero");
    check_resolve_error("x[1m:step()]", 0, 0, "1:6: duration must be greater than 0");
    check_resolve_error("x[(9e9 * 2)]", 0, 0, "1:3: duration is out of range");
    check_resolve_error("x[(9e9 ^ 100)]", 0, 0, "1:3: duration is NaN or infinite");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical_forms),
        cmocka_unit_test(test_conformance_expressions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_selectors_2),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_selector_parser),
        cmocka_unit_test(test_function_table),
        cmocka_unit_test(test_duration_expressions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
