/*
 * cache.h: evaluation of repeated subexpressions once per query (cache.c), internal to src/query.
 */
#ifndef STRATA_QUERY_CACHE_H
#define STRATA_QUERY_CACHE_H

#include "query/eval.h"

/* Finds the subexpressions of root that occur more than once. *out is NULL when there are none
 * (nothing to cache), else the caller frees it with eval_cache_free after the query's values are
 * no longer needed. STRATA_ENOMEM. */
int eval_cache_new(const promql_expr *root, eval_cache **out);
void eval_cache_free(eval_cache *ec);

/* Whether e is one of several equal subexpressions of the query. */
bool eval_cache_shared(const eval_ctx *c, const promql_expr *e);
/* The same for a cache outside an evaluation (the plan); ec may be NULL. */
bool eval_cache_contains(const eval_cache *ec, const promql_expr *e);
/* A private copy of e's value in c's time frame when it was computed before (*hit); 0 or
 * STRATA_ENOMEM. */
int eval_cache_get(eval_ctx *c, const promql_expr *e, value *out, bool *hit);
/* Keeps a copy of e's value v for later uses of an equal subexpression (only for shared ones). */
int eval_cache_put(eval_ctx *c, const promql_expr *e, const value *v);

#endif
