/*
 * format.c: a syntax tree back to PromQL text, in Prometheus' canonical form (its String()).
 *
 * The output is what Prometheus prints for the same tree: single spaces around binary operators,
 * "sum by (job) (x)", matchers sorted, durations in their shortest unit form, @ timestamps with
 * three decimals, strings and odd label names Go-quoted. Parentheses come only from the tree
 * (the parser keeps them), so the text parses back to the same tree; that round trip is what the
 * tests and the fuzzer check, and what EXPLAIN shows. Where Prometheus' own printing would not
 * read back the same (+Inf as the base of ^, a parenthesised offset followed by arithmetic, the
 * labels inf and nan), the text here differs just enough to.
 */
#include "query/ast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fmt_node(buf *b, const promql_expr *e, bool arith_after);

/* Most nodes are followed by a closing bracket or the end. */
static int fmt(buf *b, const promql_expr *e)
{
    return fmt_node(b, e, false);
}

static int put(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

/* Label names are written bare when they are legacy names (and not a word the lexer would take
 * for a number), quoted otherwise. */
static bool bare_label(const char *s)
{
    if (!*s) return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return strcasecmp(s, "inf") != 0 && strcasecmp(s, "nan") != 0;
}

static int fmt_labels(buf *b, char **ls, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = put(b, ", ");
        if (!rc) rc = bare_label(ls[i]) ? put(b, ls[i]) : lexer_quote(b, ls[i], strlen(ls[i]));
    }
    return rc;
}

static const char *op_text(tok_kind k)
{
    switch (k) {
    case T_ADD: return "+";
    case T_SUB: return "-";
    case T_MUL: return "*";
    case T_DIV: return "/";
    case T_MOD: return "%";
    case T_POW: return "^";
    case T_ATAN2: return "atan2";
    case T_EQLC: return "==";
    case T_NEQ: return "!=";
    case T_LSS: return "<";
    case T_LTE: return "<=";
    case T_GTR: return ">";
    case T_GTE: return ">=";
    case T_TRIM_UPPER: return "</";
    case T_TRIM_LOWER: return ">/";
    case T_LAND: return "and";
    case T_LOR: return "or";
    case T_LUNLESS: return "unless";
    default: return "?";
    }
}

/* The shortest decimal digits that read back to v: digits[0..nd) and the decimal exponent of the
 * first digit (v = d1.d2d3... * 10^exp10). v is finite and not zero. */
static int shortest_digits(double v, char *digits, int *exp10)
{
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    int nd = 0;
    const char *p = e;
    if (*p == '-') p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    *exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    return nd;
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent. */
static int fmt_float_f(buf *b, double v)
{
    if (isnan(v)) return put(b, "NaN");
    if (isinf(v)) return put(b, v > 0 ? "+Inf" : "-Inf");
    if (v == 0) return put(b, signbit(v) ? "-0" : "0");
    char digits[24];
    int exp10, nd = shortest_digits(v, digits, &exp10), point = exp10 + 1, rc = 0;
    if (v < 0) rc = buf_putc(b, '-');
    if (point <= 0) {
        if (!rc) rc = put(b, "0.");
        for (int i = 0; i < -point && !rc; i++) rc = buf_putc(b, '0');
        if (!rc) rc = buf_append(b, digits, (size_t)nd);
        return rc;
    }
    for (int i = 0; i < point && !rc; i++) rc = buf_putc(b, i < nd ? digits[i] : '0');
    if (!rc && nd > point) {
        rc = buf_putc(b, '.');
        if (!rc) rc = buf_append(b, digits + point, (size_t)(nd - point));
    }
    return rc;
}

/* Go's %v of a float64: the shortest digits, in exponent form below 1e-4 or from 1e6. */
static int fmt_go_v(buf *b, double v)
{
    if (isnan(v)) return put(b, "NaN");
    if (isinf(v)) return put(b, v > 0 ? "+Inf" : "-Inf");
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (v != 0 && (exp10 < -4 || exp10 >= 6)) {
        /* mantissa as printed, exponent with at least two digits */
        char *ep = strchr(e, 'e');
        *ep = '\0';
        return buf_printf(b, "%se%c%02d", e, exp10 < 0 ? '-' : '+', abs(exp10));
    }
    return fmt_float_f(b, v);
}

static int fmt_duration_ms(buf *b, int64_t ms)
{
    char d[64];
    if (ms < 0) {
        promql_duration_string(-ms, d, sizeof d);
        return buf_printf(b, "-%s", d);
    }
    promql_duration_string(ms, d, sizeof d);
    return put(b, d);
}

static int fmt_number(buf *b, const promql_expr *e)
{
    /* Prometheus prints model.Duration(seconds * 1e9); the exact milliseconds say the same
     * without the rounding of the float trip. */
    if (e->is_duration) return fmt_duration_ms(b, e->num_ms);
    return fmt_float_f(b, e->num);
}

static int fmt_matcher(buf *b, const matcher *m)
{
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    bool bare = m->name_len > 0;
    for (uint32_t i = 0; i < m->name_len && bare; i++) {
        char c = m->name[i];
        bare = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (i > 0 && c >= '0' && c <= '9');
    }
    int rc = bare ? buf_append(b, m->name, m->name_len) : lexer_quote(b, m->name, m->name_len);
    if (!rc) rc = put(b, ops[m->type & 3]);
    return rc ? rc : lexer_quote(b, m->value, m->value_len);
}

typedef struct mstr {
    char *s;
    size_t n;
} mstr;

static int cmp_mstr(const void *a, const void *b)
{
    const mstr *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* name{sorted matchers}; the name's own matcher is implied by the name. */
static int fmt_selector_body(buf *b, const promql_expr *e)
{
    int rc = 0;
    if (e->metric) rc = put(b, e->metric);
    mstr *v = calloc(e->n_ms + 1, sizeof *v);
    if (!v) return STRATA_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < e->n_ms && !rc; i++) {
        const matcher *m = e->ms[i];
        if (e->metric && m->type == STRATA_MATCH_EQUAL && !strcmp(m->name, LABEL_METRIC_NAME) &&
            !strcmp(m->value, e->metric) && m->value_len)
            continue;
        buf t = {0};
        rc = fmt_matcher(&t, m);
        v[n++] = (mstr){(char *)t.data, t.len};
    }
    if (!rc && !n && !e->metric) {
        rc = put(b, "{}"); /* info(x, {}): Prometheus prints nothing, which does not read back */
    } else if (!rc && n) {
        qsort(v, n, sizeof *v, cmp_mstr);
        rc = buf_putc(b, '{');
        for (size_t i = 0; i < n && !rc; i++) {
            if (i) rc = buf_putc(b, ',');
            if (!rc) rc = buf_append(b, v[i].s, v[i].n);
        }
        if (!rc) rc = buf_putc(b, '}');
    }
    for (size_t i = 0; i < n; i++) free(v[i].s);
    free(v);
    return rc;
}

static int fmt_at(buf *b, const promql_expr *e)
{
    switch (e->at) {
    case AT_TIME: {
        /* seconds with three decimals, as Go's %.3f of ms/1000, but exact */
        uint64_t a = e->at_ms < 0 ? (uint64_t)0 - (uint64_t)e->at_ms : (uint64_t)e->at_ms;
        return buf_printf(b, " @ %s%llu.%03llu", e->at_ms < 0 ? "-" : "",
                          (unsigned long long)(a / 1000), (unsigned long long)(a % 1000));
    }
    case AT_START: return put(b, " @ start()");
    case AT_END: return put(b, " @ end()");
    default: return 0;
    }
}

/* arith_after: an arithmetic operator follows in the text. After "offset (...)" it would be read
 * as more duration arithmetic, so the parenthesised offset is written "+(...)" there, which
 * parses to the same tree and stops. */
static int fmt_offset(buf *b, const promql_expr *e, bool arith_after)
{
    if (e->offset_expr) {
        int rc = put(b, " offset ");
        if (!rc && arith_after && e->offset_expr->kind == N_DURATION && e->offset_expr->wrapped)
            rc = buf_putc(b, '+');
        return rc ? rc : fmt(b, e->offset_expr);
    }
    if (!e->offset_ms) return 0;
    int rc = put(b, " offset ");
    return rc ? rc : fmt_duration_ms(b, e->offset_ms);
}

static int fmt_extended(buf *b, const promql_expr *e)
{
    if (e->anchored) return put(b, " anchored");
    if (e->smoothed) return put(b, " smoothed");
    return 0;
}

static int fmt_range(buf *b, const promql_expr *expr, int64_t ms)
{
    return expr ? fmt(b, expr) : fmt_duration_ms(b, ms);
}

static int fmt_duration_expr(buf *b, const promql_expr *e)
{
    int rc = 0;
    if (e->wrapped) rc = buf_putc(b, '(');
    switch (e->op) {
    case T_STEP: rc = rc ? rc : put(b, "step()"); break;
    case T_RANGE: rc = rc ? rc : put(b, "range()"); break;
    case T_MIN_OF:
    case T_MAX_OF:
        if (!rc) rc = put(b, e->op == T_MIN_OF ? "min_of(" : "max_of(");
        if (!rc) rc = fmt(b, e->lhs);
        if (!rc) rc = put(b, ", ");
        if (!rc) rc = fmt(b, e->rhs);
        if (!rc) rc = buf_putc(b, ')');
        break;
    default:
        if (!e->lhs) {
            if (!rc && e->op == T_SUB) rc = buf_putc(b, '-');
            if (!rc) rc = fmt(b, e->rhs);
        } else {
            if (!rc) rc = fmt(b, e->lhs);
            if (!rc) rc = buf_printf(b, " %s ", op_text(e->op));
            if (!rc) rc = fmt(b, e->rhs);
        }
    }
    if (!rc && e->wrapped) rc = buf_putc(b, ')');
    return rc;
}

static bool duration_op(tok_kind k)
{
    return k == T_ADD || k == T_SUB || k == T_MUL || k == T_DIV || k == T_MOD || k == T_POW;
}

static int fmt_binary(buf *b, const promql_expr *e, bool arith_after)
{
    int rc;
    if (e->op == T_POW && e->lhs->kind == N_NUMBER && isinf(e->lhs->num) && e->lhs->num > 0)
        rc = put(b, "Inf"); /* "+Inf ^ x" would read back as +(Inf ^ x) */
    else
        rc = fmt_node(b, e->lhs, duration_op(e->op));
    if (!rc) rc = buf_printf(b, " %s%s", op_text(e->op), e->return_bool ? " bool" : "");
    if (!rc && e->has_matching && (e->n_grouping || e->matching_on || e->card)) {
        rc = put(b, e->matching_on ? " on (" : " ignoring (");
        if (!rc) rc = fmt_labels(b, e->grouping, e->n_grouping);
        if (!rc) rc = buf_putc(b, ')');
    }
    if (!rc && e->card) {
        rc = put(b, e->card == 1 ? " group_left (" : " group_right (");
        if (!rc) rc = fmt_labels(b, e->extra, e->n_extra);
        if (!rc) rc = buf_putc(b, ')');
    }
    if (!rc && (e->fill_lhs_set || e->fill_rhs_set)) {
        if (e->fill_lhs_set && e->fill_rhs_set && e->fill_lhs == e->fill_rhs) {
            rc = put(b, " fill (");
            if (!rc) rc = fmt_go_v(b, e->fill_lhs);
            if (!rc) rc = buf_putc(b, ')');
        } else {
            if (e->fill_lhs_set) {
                rc = put(b, " fill_left (");
                if (!rc) rc = fmt_go_v(b, e->fill_lhs);
                if (!rc) rc = buf_putc(b, ')');
            }
            if (!rc && e->fill_rhs_set) {
                rc = put(b, " fill_right (");
                if (!rc) rc = fmt_go_v(b, e->fill_rhs);
                if (!rc) rc = buf_putc(b, ')');
            }
        }
    }
    if (!rc) rc = buf_putc(b, ' ');
    return rc ? rc : fmt_node(b, e->rhs, arith_after);
}

static int fmt_args(buf *b, const promql_expr *e)
{
    int rc = buf_putc(b, '(');
    for (size_t i = 0; i < e->n_args && !rc; i++) {
        if (i) rc = put(b, ", ");
        if (!rc) rc = fmt(b, e->args[i]);
    }
    return rc ? rc : buf_putc(b, ')');
}

static int fmt_node(buf *b, const promql_expr *e, bool arith_after)
{
    int rc = 0;
    switch (e->kind) {
    case N_NUMBER: return fmt_number(b, e);
    case N_STRING: return lexer_quote(b, e->str, e->str_len);
    case N_PAREN:
        rc = buf_putc(b, '(');
        if (!rc) rc = fmt(b, e->inner);
        return rc ? rc : buf_putc(b, ')');
    case N_UNARY:
        rc = put(b, e->op == T_SUB ? "-" : "+");
        return rc ? rc : fmt_node(b, e->inner, arith_after);
    case N_VECTOR:
        rc = fmt_selector_body(b, e);
        if (!rc) rc = fmt_at(b, e);
        if (!rc) rc = fmt_extended(b, e);
        return rc ? rc : fmt_offset(b, e, arith_after);
    case N_MATRIX:
        rc = fmt_selector_body(b, e);
        if (!rc) rc = buf_putc(b, '[');
        if (!rc) rc = fmt_range(b, e->range_expr, e->range_ms);
        if (!rc) rc = buf_putc(b, ']');
        if (!rc) rc = fmt_extended(b, e);
        if (!rc) rc = fmt_at(b, e);
        return rc ? rc : fmt_offset(b, e, arith_after);
    case N_SUBQUERY:
        rc = fmt(b, e->inner);
        if (!rc) rc = buf_putc(b, '[');
        if (!rc) rc = fmt_range(b, e->range_expr, e->range_ms);
        if (!rc) rc = buf_putc(b, ':');
        if (!rc && (e->step_ms || e->step_expr)) rc = fmt_range(b, e->step_expr, e->step_ms);
        if (!rc) rc = buf_putc(b, ']');
        if (!rc) rc = fmt_at(b, e);
        return rc ? rc : fmt_offset(b, e, arith_after);
    case N_CALL:
        rc = put(b, e->func);
        return rc ? rc : fmt_args(b, e);
    case N_AGG:
        rc = put(b, e->func);
        if (!rc && e->without) {
            rc = put(b, " without (");
            if (!rc) rc = fmt_labels(b, e->grouping, e->n_grouping);
            if (!rc) rc = put(b, ") ");
        } else if (!rc && e->n_grouping) {
            rc = put(b, " by (");
            if (!rc) rc = fmt_labels(b, e->grouping, e->n_grouping);
            if (!rc) rc = put(b, ") ");
        }
        return rc ? rc : fmt_args(b, e);
    case N_BINARY: return fmt_binary(b, e, arith_after);
    case N_DURATION: return fmt_duration_expr(b, e);
    }
    return STRATA_EINVAL;
}

int promql_expr_format(const promql_expr *e, buf *out)
{
    return fmt(out, e) ? STRATA_ENOMEM : 0; /* buf keeps its text NUL-terminated */
}
