/*
 * check.c: the type check Prometheus runs over a parsed expression, and the resolution of
 * duration expressions before evaluation.
 *
 * Prometheus type-checks only a tree that parsed cleanly, children before parents, and reports
 * the first problem it finds; the checks and their messages here follow it (function argument
 * counts and types, aggregation parameters, bool only on comparisons, set operators only between
 * instant vectors, subqueries only over instant vectors, a selector that must match something).
 * Duration arithmetic ([5m * 2], offset (1h / 2), [step()]) stays symbolic in the tree because
 * step() and range() depend on the query; promql_resolve_durations turns it into milliseconds
 * once the query's step and range are known.
 */
#include "query/ast.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

promql_type promql_expr_type(const promql_expr *e)
{
    switch (e->kind) {
    case N_NUMBER:
    case N_DURATION: return PT_SCALAR;
    case N_STRING: return PT_STRING;
    case N_VECTOR:
    case N_AGG: return PT_VECTOR;
    case N_MATRIX:
    case N_SUBQUERY: return PT_MATRIX;
    case N_CALL: return e->fn ? e->fn->ret : PT_VECTOR;
    case N_BINARY:
        return promql_expr_type(e->lhs) == PT_SCALAR && promql_expr_type(e->rhs) == PT_SCALAR
                   ? PT_SCALAR
                   : PT_VECTOR;
    case N_UNARY:
    case N_PAREN: return promql_expr_type(e->inner);
    }
    return PT_NONE;
}

const char *promql_type_name(promql_type t)
{
    switch (t) {
    case PT_SCALAR: return "scalar";
    case PT_VECTOR: return "instant vector";
    case PT_MATRIX: return "range vector";
    case PT_STRING: return "string";
    default: return "none";
    }
}

const char *promql_type_short_name(promql_type t)
{
    switch (t) {
    case PT_SCALAR: return "scalar";
    case PT_VECTOR: return "vector";
    case PT_MATRIX: return "matrix";
    case PT_STRING: return "string";
    default: return "none";
    }
}

typedef struct checker {
    const char *src;
    size_t len;
    char *err;
    int rc;
} checker;

static void cerr(checker *c, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cerr(checker *c, size_t pos, const char *fmt, ...)
{
    if (c->rc) return;
    c->rc = STRATA_EPARSE;
    if (!c->err) return;
    char where[24], msg[460];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, STRATA_ERRMSG_SIZE, "%s: parse error: %s",
             lexer_position(c->src, c->len, pos, where, sizeof where), msg);
}

/* Go's %q of a string into a fixed buffer, for messages. */
static const char *quoted(const char *s, size_t n, char *out, size_t len)
{
    buf b = {0};
    lexer_quote(&b, s, n);
    snprintf(out, len, "%.*s", b.data ? (int)b.len : 0, b.data ? (char *)b.data : "");
    buf_free(&b);
    return out;
}

static bool is_comparison(tok_kind k)
{
    return k == T_EQLC || k == T_NEQ || k == T_LSS || k == T_LTE || k == T_GTR || k == T_GTE;
}

static bool is_set_op(tok_kind k)
{
    return k == T_LAND || k == T_LOR || k == T_LUNLESS;
}

static const char *op_word(const promql_expr *e)
{
    switch (e->op) {
    case T_LAND: return "and";
    case T_LOR: return "or";
    case T_LUNLESS: return "unless";
    default: return "?";
    }
}

static promql_type check(checker *c, promql_expr *e);

static void expect_type(checker *c, promql_expr *e, promql_type want, const char *ctx)
{
    promql_type t = check(c, e);
    if (t != want)
        cerr(c, e->pos, "expected type %s in %s, got %s", promql_type_name(want), ctx,
             promql_type_name(t));
}

static void check_selector(checker *c, promql_expr *e)
{
    if (e->metric) {
        /* The name outside the braces is the last matcher; another __name__ is a conflict. */
        for (size_t i = 0; i + 1 < e->n_ms; i++)
            if (!strcmp(e->ms[i]->name, LABEL_METRIC_NAME)) {
                char a[200], b[200];
                cerr(c, e->pos, "metric name must not be set twice: %s or %s",
                     quoted(e->metric, strlen(e->metric), a, sizeof a),
                     quoted(e->ms[i]->value, e->ms[i]->value_len, b, sizeof b));
            }
        return;
    }
    if (e->bypass_empty_check) return;
    for (size_t i = 0; i < e->n_ms; i++)
        if (!e->ms[i]->matches_empty) return;
    cerr(c, e->pos, "vector selector must contain at least one non-empty matcher");
}

/* Where the operator of a binary expression starts: after the left side and any spaces. */
static size_t operator_pos(const checker *c, const promql_expr *e)
{
    size_t p = e->lhs->end;
    while (p < c->len && (c->src[p] == ' ' || c->src[p] == '\t' || c->src[p] == '\n' ||
                          c->src[p] == '\r'))
        p++;
    return p;
}

static void check_binary(checker *c, promql_expr *e)
{
    promql_type lt = check(c, e->lhs), rt = check(c, e->rhs);
    if (e->return_bool && !is_comparison(e->op))
        cerr(c, operator_pos(c, e), "bool modifier can only be used on comparison operators");
    if (is_comparison(e->op) && !e->return_bool && lt == PT_SCALAR && rt == PT_SCALAR)
        cerr(c, operator_pos(c, e), "comparisons between scalars must use BOOL modifier");
    if (e->matching_on)
        for (size_t i = 0; i < e->n_grouping; i++)
            for (size_t k = 0; k < e->n_extra; k++)
                if (!strcmp(e->grouping[i], e->extra[k])) {
                    char q[200];
                    cerr(c, operator_pos(c, e), "label %s must not occur in ON and GROUP clause at once",
                         quoted(e->grouping[i], strlen(e->grouping[i]), q, sizeof q));
                }
    if (lt != PT_SCALAR && lt != PT_VECTOR)
        cerr(c, e->lhs->pos, "binary expression must contain only scalar and instant vector types");
    if (rt != PT_SCALAR && rt != PT_VECTOR)
        cerr(c, e->rhs->pos, "binary expression must contain only scalar and instant vector types");
    bool fill = e->fill_lhs_set || e->fill_rhs_set;
    if (lt != PT_VECTOR || rt != PT_VECTOR) {
        if (e->n_grouping > 0)
            cerr(c, e->pos, "vector matching only allowed between instant vectors");
        if (fill) cerr(c, e->pos, "filling in missing series only allowed between instant vectors");
        /* Prometheus drops the matching of a scalar operation: it prints without it. */
        e->has_matching = e->matching_on = false;
        e->card = 0;
    } else if (is_set_op(e->op)) {
        if (e->card != 0) cerr(c, e->pos, "no grouping allowed for \"%s\" operation", op_word(e));
        if (fill) cerr(c, e->pos, "filling in missing series not allowed for set operators");
    }
    if ((lt == PT_SCALAR || rt == PT_SCALAR) && is_set_op(e->op))
        cerr(c, e->pos, "set operator \"%s\" not allowed in binary scalar expression", op_word(e));
}

static void check_call(checker *c, promql_expr *e)
{
    const promql_func *f = e->fn;
    int nargs = f->n_args, n = (int)e->n_args;
    char q[120];
    quoted(f->name, strlen(f->name), q, sizeof q);
    if (f->variadic == 0) {
        if (nargs != n) cerr(c, e->pos, "expected %d argument(s) in call to %s, got %d", nargs, q, n);
    } else {
        int na = nargs - 1;
        if (na > n)
            cerr(c, e->pos, "expected at least %d argument(s) in call to %s, got %d", na, q, n);
        else if (f->variadic > 0 && na + f->variadic < n)
            cerr(c, e->pos, "expected at most %d argument(s) in call to %s, got %d",
                 na + f->variadic, q, n);
    }
    if (!strcmp(f->name, "info") && n > 1) {
        promql_expr *a = e->args[1];
        promql_type t = promql_expr_type(a);
        if (t != PT_VECTOR)
            cerr(c, e->pos, "expected type instant vector in call to function \"info\", got %s",
                 promql_type_name(t));
        if (a->kind == N_VECTOR && a->metric)
            cerr(c, a->pos, "expected label selectors only, got vector selector instead");
        else if (a->kind == N_VECTOR)
            a->bypass_empty_check = true;
        else
            cerr(c, a->pos, "expected label selectors only");
    }
    for (int i = 0; i < n; i++) {
        int k = i;
        if (k >= nargs) {
            if (f->variadic == 0) break;
            k = nargs - 1;
        }
        promql_type t = check(c, e->args[i]);
        if (t != f->args[k])
            cerr(c, e->args[i]->pos, "expected type %s in call to function %s, got %s",
                 promql_type_name(f->args[k]), q, promql_type_name(t));
    }
}

static promql_type check(checker *c, promql_expr *e)
{
    promql_type t = promql_expr_type(e);
    switch (e->kind) {
    case N_AGG: {
        expect_type(c, e->args[e->n_args - 1], PT_VECTOR, "aggregation expression");
        const char *op = e->func;
        if (!strcmp(op, "topk") || !strcmp(op, "bottomk") || !strcmp(op, "quantile") ||
            !strcmp(op, "limitk") || !strcmp(op, "limit_ratio"))
            expect_type(c, e->args[0], PT_SCALAR, "aggregation parameter");
        if (!strcmp(op, "count_values")) expect_type(c, e->args[0], PT_STRING, "aggregation parameter");
        break;
    }
    case N_BINARY: check_binary(c, e); break;
    case N_CALL: check_call(c, e); break;
    case N_PAREN: check(c, e->inner); break;
    case N_UNARY: {
        promql_type it = check(c, e->inner);
        if (it != PT_SCALAR && it != PT_VECTOR)
            cerr(c, e->pos, "unary expression only allowed on expressions of type scalar or "
                            "instant vector, got \"%s\"", promql_type_name(it));
        break;
    }
    case N_SUBQUERY: {
        promql_type it = check(c, e->inner);
        if (it != PT_VECTOR)
            cerr(c, e->pos, "subquery is only allowed on instant vector, got %s instead",
                 promql_type_short_name(it));
        break;
    }
    case N_MATRIX:
    case N_VECTOR: check_selector(c, e); break;
    case N_NUMBER:
    case N_STRING:
    case N_DURATION: break;
    }
    return t;
}

int promql_check(const char *src, size_t len, promql_expr *e, char *err)
{
    checker c = {.src = src, .len = len, .err = err};
    if (e) check(&c, e);
    return c.rc;
}

/* ---- duration expressions ----------------------------------------------------------------------- */

typedef struct resolver {
    const char *src;
    size_t len;
    double step, range; /* seconds */
    char *err;
} resolver;

static int rerr(resolver *r, const promql_expr *d, const char *what)
{
    char where[24];
    return strata_errf(r->err, STRATA_EPARSE, "%s: %s",
                       lexer_position(r->src, r->len, d->pos, where, sizeof where), what);
}

static int dur_eval(resolver *r, const promql_expr *d, double *out)
{
    if (d->kind == N_NUMBER) {
        *out = d->num;
        return 0;
    }
    double a = 0, b = 0;
    int rc;
    if (d->lhs && (rc = dur_eval(r, d->lhs, &a))) return rc;
    if (d->rhs && (rc = dur_eval(r, d->rhs, &b))) return rc;
    switch (d->op) {
    case T_STEP: *out = r->step; return 0;
    case T_RANGE: *out = r->range; return 0;
    case T_MIN_OF: *out = isnan(a) || isnan(b) ? NAN : a < b ? a : b; return 0;
    case T_MAX_OF: *out = isnan(a) || isnan(b) ? NAN : a > b ? a : b; return 0;
    case T_ADD: *out = d->lhs ? a + b : b; return 0;
    case T_SUB: *out = d->lhs ? a - b : -b; return 0;
    case T_MUL: *out = a * b; return 0;
    case T_DIV:
        if (b == 0) return rerr(r, d, "division by zero");
        *out = a / b;
        return 0;
    case T_MOD:
        if (b == 0) return rerr(r, d, "modulo by zero");
        *out = fmod(a, b);
        return 0;
    case T_POW: *out = pow(a, b); return 0;
    default: return rerr(r, d, "unexpected duration expression operator");
    }
}

static int dur_ms(resolver *r, const promql_expr *d, bool allow_negative, int64_t *ms)
{
    double v;
    int rc = dur_eval(r, d, &v);
    if (rc) return rc;
    if (isnan(v) || isinf(v)) return rerr(r, d, "duration is NaN or infinite");
    if (v <= 0 && !allow_negative) return rerr(r, d, "duration must be greater than 0");
    if (v > 9223372036.854775807 || v < -9223372036.854775808)
        return rerr(r, d, "duration is out of range");
    *ms = (int64_t)(v * 1000);
    if (*ms <= 0 && !allow_negative) return rerr(r, d, "duration must be greater than 0");
    return 0;
}

static int resolve(resolver *r, promql_expr *e)
{
    int rc = 0;
    if (e->range_expr && (rc = dur_ms(r, e->range_expr, false, &e->range_ms))) return rc;
    if (e->step_expr && (rc = dur_ms(r, e->step_expr, false, &e->step_ms))) return rc;
    if (e->offset_expr && (rc = dur_ms(r, e->offset_expr, true, &e->offset_ms))) return rc;
    for (size_t i = 0; i < e->n_args; i++)
        if ((rc = resolve(r, e->args[i]))) return rc;
    if (e->lhs && e->kind != N_DURATION && (rc = resolve(r, e->lhs))) return rc;
    if (e->rhs && e->kind != N_DURATION && (rc = resolve(r, e->rhs))) return rc;
    if (e->inner && (rc = resolve(r, e->inner))) return rc;
    return 0;
}

int promql_resolve_durations(promql_expr *e, const char *query, int64_t step_ms, int64_t range_ms,
                             char *err)
{
    resolver r = {.src = query, .len = query ? strlen(query) : 0, .step = (double)step_ms / 1000.0,
                  .range = (double)range_ms / 1000.0, .err = err};
    return e ? resolve(&r, e) : 0;
}
