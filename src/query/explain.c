/*
 * explain.c: the query plan as text, for `strata query --explain` and the API's explain=1.
 *
 * The plan shows what the evaluator will do: each node with its result type, and for each
 * selector the matchers in the order the postings index applies them (most selective first), the
 * exact time window it will read (after lookback, range, offset, @ and subquery widening), and
 * how many series the index resolves it to right now.
 */
#include "query/cache.h"
#include "query/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *op_text(const promql_expr *e)
{
    switch (e->op) {
    case T_ADD: return "+";
    case T_SUB: return "-";
    case T_MUL: return "*";
    case T_DIV: return "/";
    case T_MOD: return "%";
    case T_POW: return "^";
    case T_EQLC: return "==";
    case T_NEQ: return "!=";
    case T_LSS: return "<";
    case T_LTE: return "<=";
    case T_GTR: return ">";
    case T_GTE: return ">=";
    case T_ATAN2:
    case T_LAND:
    case T_LOR:
    case T_LUNLESS: return e->func;
    case T_TRIM_UPPER: return "</";
    case T_TRIM_LOWER: return ">/";
    default: return "?";
    }
}

static int matcher_rank(const matcher *m)
{
    if (m->type == STRATA_MATCH_EQUAL && m->value_len) return 0;
    if (m->type == STRATA_MATCH_REGEX && !m->matches_empty) return 1;
    if (m->matches_empty) return 3;
    return 2;
}

static void indent(buf *b, int depth)
{
    for (int i = 0; i < depth; i++) buf_append(b, "  ", 2);
}

typedef struct window_ctx {
    strata_db *db;
    const promql_options *o;
    int64_t start, end;      /* the evaluation range of this node */
    int64_t query_start, query_end;
    const eval_cache *cache; /* the query's repeated subexpressions */
} window_ctx;

static int64_t sel_time(const window_ctx *w, const promql_expr *e, int64_t t)
{
    int64_t base = e->at == AT_TIME    ? e->at_ms
                   : e->at == AT_START ? w->query_start
                   : e->at == AT_END   ? w->query_end
                                       : t;
    return base - e->offset_ms;
}

static void explain_selector(buf *b, const window_ctx *w, const promql_expr *e, int depth,
                             int64_t back)
{
    char ts1[48], ts2[48], m[512];
    int64_t lo = sel_time(w, e, w->start) - back + 1, hi = sel_time(w, e, w->end);
    format_timestamp(lo - 1, ts1, sizeof ts1); /* printed as the open bound */
    format_timestamp(hi, ts2, sizeof ts2);
    indent(b, depth);
    buf_printf(b, "%s: read (%s, %s]", e->kind == N_MATRIX ? "RangeSelector" : "VectorSelector",
               ts1, ts2);
    if (e->kind == N_MATRIX) buf_printf(b, " range=%llds", (long long)(e->range_ms / 1000));
    else buf_printf(b, " lookback=%llds", (long long)(back / 1000));
    if (e->offset_ms) buf_printf(b, " offset=%lldms", (long long)e->offset_ms);
    if (e->at) buf_printf(b, " @pinned");
    series_set *set;
    char err[STRATA_ERRMSG_SIZE];
    if (db_select_labels_only(w->db, (const matcher *const *)e->ms, e->n_ms, lo, hi, &set, err) == 0) {
        buf_printf(b, " series=%zu", series_set_count(set));
        series_set_free(set);
    }
    buf_putc(b, '\n');
    for (int rank = 0; rank <= 3; rank++)
        for (size_t i = 0; i < e->n_ms; i++) {
            if (matcher_rank(e->ms[i]) != rank) continue;
            indent(b, depth + 1);
            buf_printf(b, "postings %s%s\n", matcher_format(e->ms[i], m, sizeof m),
                       e->ms[i]->re ? " (regex, JIT)" : e->ms[i]->n_set ? " (literal set)" : "");
        }
}

static void explain_node(buf *b, window_ctx *w, const promql_expr *e, int depth)
{
    while (e->kind == N_PAREN) e = e->inner;
    if (eval_cache_contains(w->cache, e)) {
        indent(b, depth);
        buf_printf(b, "Shared (occurs more than once; read and evaluated once per time frame)\n");
        depth++;
    }
    switch (e->kind) {
    case N_NUMBER: {
        char n[64];
        format_float(e->num, n, sizeof n);
        indent(b, depth);
        buf_printf(b, "NumberLiteral %s\n", n);
        return;
    }
    case N_STRING:
        indent(b, depth);
        buf_printf(b, "StringLiteral \"%s\"\n", e->str);
        return;
    case N_VECTOR: explain_selector(b, w, e, depth, w->o->lookback_ms); return;
    case N_MATRIX: explain_selector(b, w, e, depth, e->range_ms); return;
    case N_SUBQUERY: {
        int64_t step = e->step_ms > 0 ? e->step_ms : 60000;
        indent(b, depth);
        buf_printf(b, "Subquery range=%llds step=%llds\n", (long long)(e->range_ms / 1000),
                   (long long)(step / 1000));
        window_ctx inner = *w;
        inner.start = sel_time(w, e, w->start) - e->range_ms;
        inner.end = sel_time(w, e, w->end);
        explain_node(b, &inner, e->inner, depth + 1);
        return;
    }
    case N_CALL:
        indent(b, depth);
        buf_printf(b, "Call %s\n", e->func);
        for (size_t i = 0; i < e->n_args; i++) explain_node(b, w, e->args[i], depth + 1);
        return;
    case N_AGG:
        indent(b, depth);
        buf_printf(b, "Aggregate %s", e->func);
        if (e->has_grouping) {
            buf_printf(b, " %s (", e->without ? "without" : "by");
            for (size_t i = 0; i < e->n_grouping; i++) buf_printf(b, "%s%s", i ? ", " : "", e->grouping[i]);
            buf_putc(b, ')');
        }
        buf_putc(b, '\n');
        for (size_t i = 0; i < e->n_args; i++) explain_node(b, w, e->args[i], depth + 1);
        return;
    case N_BINARY:
        indent(b, depth);
        buf_printf(b, "BinaryOp %s%s", op_text(e), e->return_bool ? " bool" : "");
        if (e->has_matching) {
            buf_printf(b, " %s(", e->matching_on ? "on" : "ignoring");
            for (size_t i = 0; i < e->n_grouping; i++) buf_printf(b, "%s%s", i ? ", " : "", e->grouping[i]);
            buf_putc(b, ')');
        }
        if (e->card) buf_printf(b, " %s", e->card == 1 ? "group_left" : "group_right");
        buf_printf(b, " (hash join on the matching labels, per step)\n");
        explain_node(b, w, e->lhs, depth + 1);
        explain_node(b, w, e->rhs, depth + 1);
        return;
    case N_UNARY:
        indent(b, depth);
        buf_printf(b, "%s\n", e->op == T_SUB ? "Negate" : "UnaryPlus");
        explain_node(b, w, e->inner, depth + 1);
        return;
    default: return;
    }
}

int promql_explain(strata_db *db, const char *q, int64_t start_ms, int64_t end_ms,
                   int64_t step_ms, const promql_options *o, buf *out, char *err)
{
    promql_options def;
    if (!o) {
        promql_options_init(&def);
        o = &def;
    }
    promql_expr *e;
    int rc = promql_parse(q, strlen(q), &e, err);
    if (rc) return rc;
    rc = promql_resolve_durations(e, q, step_ms > 0 ? step_ms : 0, end_ms - start_ms, err);
    if (rc) {
        promql_expr_free(e);
        return rc;
    }
    char ts1[48], ts2[48];
    format_timestamp(start_ms, ts1, sizeof ts1);
    format_timestamp(end_ms, ts2, sizeof ts2);
    if (step_ms > 0)
        buf_printf(out, "Query range [%s, %s] step %llds: %lld steps, evaluated step-wise over all series\n",
                   ts1, ts2, (long long)(step_ms / 1000), (long long)((end_ms - start_ms) / step_ms + 1));
    else buf_printf(out, "Query instant at %s\n", ts1);
    buf_printf(out, "Expression ");
    if (promql_expr_format(e, out) == 0) buf_putc(out, '\n');
    eval_cache *cache = NULL;
    if (eval_cache_new(e, &cache)) {
        promql_expr_free(e);
        return strata_errf(err, STRATA_ENOMEM, "out of memory");
    }
    window_ctx w = {.db = db, .o = o, .start = start_ms, .end = end_ms, .query_start = start_ms,
                    .query_end = end_ms, .cache = cache};
    explain_node(out, &w, e, 1);
    eval_cache_free(cache);
    promql_expr_free(e);
    return out->data ? 0 : STRATA_ENOMEM;
}
