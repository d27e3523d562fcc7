/*
 * info.h: the info() function (info.c), internal to src/query.
 */
#ifndef STRATA_QUERY_INFO_H
#define STRATA_QUERY_INFO_H

#include "query/eval.h"

/* info(v [, {data label selectors}]) for the call e; out is a V_VECTOR in the query arena. Reads
 * the info series from storage itself (they are not an argument's value). */
int eval_info(eval_ctx *c, const promql_expr *e, value *out);

#endif
