/*
 * exemplars_api.c: GET/POST /api/v1/query_exemplars, Prometheus' shape.
 *
 * As in Prometheus, the query is any PromQL expression: every series selector in it (instant or
 * range, inside functions, aggregations, binary operators and subqueries) is collected, and the
 * exemplars of every series matching any of them within [start, end] are returned, one entry per
 * series:
 *
 *   [{"seriesLabels": {...}, "exemplars": [{"labels": {...}, "value": "6",
 *                                            "timestamp": 1600096945.479}, ...]}, ...]
 *
 * The value is a string (as sample values are) and the timestamp a JSON number in seconds.
 */
#include "server/server_internal.h"

#include "query/ast.h"
#include "query/query.h"

#include <stdlib.h>
#include <string.h>

typedef struct selector_sets {
    const matcher *const **sets;
    size_t *counts;
    size_t n, cap;
} selector_sets;

/* Prometheus' parser.ExtractSelectors: every vector selector of the tree, depth first. */
static int collect_selectors(const promql_expr *e, selector_sets *out)
{
    if (!e) return 0;
    if (e->kind == N_VECTOR || e->kind == N_MATRIX) {
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 8;
            const matcher *const **s = realloc(out->sets, cap * sizeof *s);
            if (!s) return STRATA_ENOMEM;
            out->sets = s;
            size_t *c = realloc(out->counts, cap * sizeof *c);
            if (!c) return STRATA_ENOMEM;
            out->counts = c;
            out->cap = cap;
        }
        out->sets[out->n] = (const matcher *const *)e->ms;
        out->counts[out->n++] = e->n_ms;
    }
    for (size_t i = 0; i < e->n_args; i++) {
        int rc = collect_selectors(e->args[i], out);
        if (rc) return rc;
    }
    int rc = collect_selectors(e->lhs, out);
    if (!rc) rc = collect_selectors(e->rhs, out);
    if (!rc) rc = collect_selectors(e->inner, out);
    return rc;
}

static void json_labels(buf *b, const label *ls, size_t n)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        json_escape(b, ls[i].name, ls[i].name_len);
        buf_putc(b, ':');
        json_escape(b, ls[i].value, ls[i].value_len);
    }
    buf_putc(b, '}');
}

int exemplars_api_query(strata_db *db, const char *query, int64_t start, int64_t end, buf *data,
                        char *err)
{
    promql_expr *e = NULL;
    int rc = promql_parse(query, strlen(query), &e, err);
    if (rc) return rc == STRATA_ENOMEM ? rc : STRATA_EPARSE;
    selector_sets sel = {0};
    exemplar_query_result res;
    memset(&res, 0, sizeof res);
    rc = collect_selectors(e, &sel);
    if (rc) {
        strata_errf(err, rc, "out of memory");
    } else {
        rc = db_query_exemplars(db, sel.sets, sel.counts, sel.n, start, end, &res, err);
    }
    if (!rc) {
        buf_putc(data, '[');
        for (size_t i = 0; i < res.n_series; i++) {
            const exemplar_series *s = &res.series[i];
            if (i) buf_putc(data, ',');
            buf_append(data, "{\"seriesLabels\":", 16);
            json_labels(data, s->series, s->n_series);
            buf_append(data, ",\"exemplars\":[", 14);
            for (size_t k = 0; k < s->n_points; k++) {
                const exemplar_point *p = &s->points[k];
                char num[400], ts[64];
                format_float(p->v, num, sizeof num);
                format_timestamp(p->t, ts, sizeof ts);
                if (k) buf_putc(data, ',');
                buf_append(data, "{\"labels\":", 10);
                json_labels(data, p->labels, p->n_labels);
                buf_printf(data, ",\"value\":\"%s\",\"timestamp\":%s}", num, ts);
            }
            buf_append(data, "]}", 2);
        }
        buf_putc(data, ']');
    }
    exemplar_query_result_free(&res);
    free(sel.sets);
    free(sel.counts);
    promql_expr_free(e);
    return rc;
}
