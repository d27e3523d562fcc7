/*
 * query.h: the public face of the query module: PromQL text in, Prometheus API JSON out.
 *
 * The pipeline is lexer -> parser (syntax tree, type-checked as Prometheus does) -> evaluator,
 * reading storage only through db_select, so head and blocks look alike. The parser accepts all of
 * PromQL as Prometheus 3.x documents it, experimental syntax included; what the evaluator does not
 * implement (native-histogram functions, anchored/smoothed selectors, fill modifiers, ...) fails
 * with STRATA_EUNSUPPORTED and a message naming it.
 */
#ifndef STRATA_QUERY_H
#define STRATA_QUERY_H

#include "core/core.h"
#include "storage/storage.h"
#include "strata.h"

typedef struct promql_options {
    int64_t lookback_ms;  /* instant selectors look back this far; default 5 m */
    uint64_t max_samples; /* most samples a query may hold; default 50 M */
    int64_t timeout_ms;   /* default 2 m */
    /* Evaluate a selector with few series in one pass over the steps instead of splitting the
     * steps over threads (default false; for measurements and comparisons). */
    bool sequential_steps;
    /* Prometheus' delayed __name__ removal (its promql-delayed-name-removal feature, which its
     * own PromQL tests enable): functions and operators that drop the metric name only mark the
     * series, the name stays visible to label_replace(), by (__name__) and vector matching, and
     * is removed when the query ends. Default false, as in Prometheus. */
    bool delayed_name_removal;
} promql_options;

void promql_options_init(promql_options *o);

typedef struct promql_expr promql_expr;

/* Parses text; on success *out is an AST the caller frees with promql_expr_free. Errors are
 * STRATA_EPARSE with Prometheus' message, "LINE:COL: parse error: ..." (1-based, columns in
 * bytes), in err; STRATA_ENOMEM when memory runs out. */
int promql_parse(const char *text, size_t len, promql_expr **out, char *err);
void promql_expr_free(promql_expr *e);

/* Appends e as canonical PromQL text (Prometheus' String()) to out; parsing the text gives the
 * same tree. 0 or STRATA_ENOMEM. */
int promql_expr_format(const promql_expr *e, buf *out);

/* Evaluates q at t_ms and appends Prometheus' /api/v1/query "data" object to json.
 * STRATA_EPARSE (400), STRATA_EEXEC / STRATA_ELIMIT / STRATA_EUNSUPPORTED (422), STRATA_ETIMEOUT
 * (503). */
int promql_exec_instant(strata_db *db, const char *q, int64_t t_ms, const promql_options *o,
                        buf *json, char *err);

/* Evaluates q at every step in [start_ms, end_ms] and appends the /api/v1/query_range "data"
 * object (always a matrix) to json. STRATA_EINVAL for a step that is not positive, an end before
 * the start or more than 11,000 steps (Prometheus' limit), besides the errors above. */
int promql_exec_range(strata_db *db, const char *q, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, const promql_options *o, buf *json, char *err);

/* ---- structured results ---------------------------------------------------------------------- */

typedef enum promql_value_type {
    PROMQL_SCALAR,
    PROMQL_VECTOR, /* instant query over instant vectors: one point per series */
    PROMQL_MATRIX, /* range queries, and instant queries of range vectors */
    PROMQL_STRING,
} promql_value_type;

typedef struct promql_series {
    label *labels; /* sorted by name */
    size_t n_labels;
    strata_sample *points; /* in time order; for PROMQL_VECTOR exactly one */
    size_t n_points;
    /* Native-histogram points, in time order; a PROMQL_VECTOR element has either one point or
     * one histogram. The histograms' arrays live in the result's arena. */
    hist_sample *hpoints;
    size_t n_hpoints;
} promql_series;

typedef struct promql_result {
    promql_value_type type;
    promql_series *series; /* vector and matrix */
    size_t n_series;
    strata_sample scalar;  /* PROMQL_SCALAR (t, value) */
    int64_t string_t;
    char *string;          /* PROMQL_STRING */
    bool ordered;          /* the series order is meaningful (sort, topk, ...) */
    arena mem;             /* owns everything above */
} promql_result;

/* Evaluates q at t_ms. On success *out is owned by the caller (promql_result_free). Same errors as
 * promql_exec_instant. */
int promql_eval_instant(strata_db *db, const char *q, int64_t t_ms, const promql_options *o,
                        promql_result **out, char *err);
/* Range query; the result is always PROMQL_MATRIX (a scalar becomes one series with no labels). */
int promql_eval_range(strata_db *db, const char *q, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, const promql_options *o, promql_result **out, char *err);
void promql_result_free(promql_result *r);
/* Appends the Prometheus API "data" object for r to json. */
int promql_result_json(const promql_result *r, buf *json);

/* Writes the plan of q (as evaluated over [start_ms, end_ms] every step_ms; step_ms 0 for an
 * instant query) as indented text into out, without evaluating it: node types, each selector's
 * matchers in index order, its time window and the series it resolves to. */
int promql_explain(strata_db *db, const char *q, int64_t start_ms, int64_t end_ms,
                   int64_t step_ms, const promql_options *o, buf *out, char *err);

/* Parses a series selector (a match[] parameter: name{matchers}, name or {matchers}, nothing
 * else) into compiled matchers; the caller frees each with matcher_free and the array with
 * free(). STRATA_EPARSE also when no matcher selects anything (every one matches the empty
 * string), as the API refuses such a match[]. */
int promql_parse_selector(const char *text, matcher ***out, size_t *n, char *err);

#endif
