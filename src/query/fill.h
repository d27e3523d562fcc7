/*
 * fill.h: binary operators with fill(), fill_left() or fill_right() (fill.c), and the pieces of
 * operators.c they share (internal to src/query).
 */
#ifndef STRATA_QUERY_FILL_H
#define STRATA_QUERY_FILL_H

#include "query/eval.h"

/* lhs op rhs between two instant vectors where e has a fill modifier; out is a V_VECTOR in the
 * query arena. Errors are Prometheus' matching errors (STRATA_EEXEC). */
int eval_binary_fill(eval_ctx *c, const promql_expr *e, value *lhs, value *rhs, value *out);

/* The match group labels of s for e's on(...)/ignoring(...) (arena). */
label *binop_signature(eval_ctx *c, const promql_expr *e, const vseries *s, size_t *n);
/* The labels of the result of a matched pair, lhs being the "many" side (arena). */
label *binop_result_labels(eval_ctx *c, const promql_expr *e, const vseries *lhs,
                           const vseries *rhs, size_t *n);
/* a op b; for comparisons *keep tells whether the pair passes (the value is then a, or 0/1 with
 * bool). */
double binop_apply(const promql_expr *e, double a, double b, bool *keep);

#endif
