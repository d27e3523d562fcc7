/*
 * extended.h: the anchored and smoothed selector modifiers (extended.c), internal to src/query.
 */
#ifndef STRATA_QUERY_EXTENDED_H
#define STRATA_QUERY_EXTENDED_H

#include "query/eval.h"

/* The anchored or smoothed range selector among the arguments of call, or NULL: such a call is
 * evaluated by eval_extended_call instead of the ordinary range functions. */
const promql_expr *extended_range_selector(const promql_expr *call);
/* rate, increase, delta, changes or resets over an anchored/smoothed range selector; any other
 * function is the error Prometheus gives (STRATA_EEXEC). out is a V_VECTOR. */
int eval_extended_call(eval_ctx *c, const promql_expr *call, value *out);
/* An instant vector selector with the smoothed modifier: interpolated at each step. */
int eval_smoothed_vector(eval_ctx *c, const promql_expr *sel, value *out);
/* A range selector with anchored/smoothed evaluated on its own (instant query): each series'
 * window extended to its exact bounds. out is a V_MATRIX. */
int eval_extended_matrix(eval_ctx *c, const promql_expr *sel, value *out);

#endif
