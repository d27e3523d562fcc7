/*
 * eval.c: evaluation of PromQL ASTs against storage, and the result JSON.
 *
 * Evaluation streams over series: a selector's series set is read one series at a time and each
 * series is turned into its points for every step before the next is decoded, so memory is the
 * result plus one series. The time window a selector reads is computed once from the query range,
 * the lookback, the selector's range, offset and @, and only that is read from storage.
 *
 * Semantics follow Prometheus 3: an instant selector takes the newest sample in
 * (t - lookback, t]; a range selector takes the samples in (t - range, t]; a staleness marker
 * (NaN with bits 0x7ff0000000000002) as the newest sample means "no value"; stale markers never
 * appear in range results.
 */
#include "query/ast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STALE_NAN_BITS 0x7ff0000000000002ull

void promql_options_init(promql_options *o)
{
    o->lookback_ms = 5 * 60 * 1000;
    o->max_samples = 50000000;
    o->timeout_ms = 2 * 60 * 1000;
}

static bool is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b == STALE_NAN_BITS;
}

typedef struct eval_ctx {
    strata_db *db;
    const promql_options *o;
    int64_t start, end, step; /* step 0: instant query */
    uint64_t deadline_ns;
    uint64_t samples;
    char *err;
} eval_ctx;

static int check_deadline(eval_ctx *c)
{
    if (clock_mono_ns() > c->deadline_ns)
        return strata_errf(c->err, STRATA_ETIMEOUT, "query timed out in query execution");
    return 0;
}

static int unsupported(eval_ctx *c, const promql_expr *e)
{
    switch (e->kind) {
    case N_CALL:
        return strata_errf(c->err, STRATA_EUNSUPPORTED, "function \"%s\" is not supported yet",
                           e->func);
    case N_AGG:
        return strata_errf(c->err, STRATA_EUNSUPPORTED, "aggregation \"%s\" is not supported yet",
                           e->func);
    case N_BINARY:
        return strata_errf(c->err, STRATA_EUNSUPPORTED, "binary operators are not supported yet");
    case N_UNARY:
        return strata_errf(c->err, STRATA_EUNSUPPORTED,
                           "unary minus on a vector is not supported yet");
    case N_SUBQUERY:
        return strata_errf(c->err, STRATA_EUNSUPPORTED, "subqueries are not supported yet");
    default: return strata_errf(c->err, STRATA_EUNSUPPORTED, "expression not supported yet");
    }
}

/* The evaluation time of a selector at step time t: @ pins it, offset shifts it back. */
static int64_t selector_time(const eval_ctx *c, const promql_expr *e, int64_t t)
{
    int64_t base = e->at == AT_TIME    ? e->at_ms
                   : e->at == AT_START ? c->start
                   : e->at == AT_END   ? c->end
                                       : t;
    return base - e->offset_ms;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static void json_str(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char u[8];
        const char *esc = NULL;
        if (ch == '"') esc = "\\\"";
        else if (ch == '\\') esc = "\\\\";
        else if (ch == '\n') esc = "\\n";
        else if (ch == '\r') esc = "\\r";
        else if (ch == '\t') esc = "\\t";
        else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            snprintf(u, sizeof u, "\\u00%c%c", hex[ch >> 4], hex[ch & 15]);
            esc = u;
        }
        if (!esc) continue;
        buf_append(b, s + run, i - run);
        buf_append(b, esc, strlen(esc));
        run = i + 1;
    }
    buf_append(b, s + run, n - run);
    buf_putc(b, '"');
}

static void json_metric(buf *b, const label *ls, size_t n)
{
    buf_append(b, "{\"metric\":{", 11);
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        json_str(b, ls[i].name, ls[i].name_len);
        buf_putc(b, ':');
        json_str(b, ls[i].value, ls[i].value_len);
    }
    buf_putc(b, '}');
}

static void json_point(buf *b, int64_t t, double v)
{
    char ts[48], vs[400];
    format_timestamp(t, ts, sizeof ts);
    format_float(v, vs, sizeof vs);
    buf_printf(b, "[%s,\"%s\"]", ts, vs);
}

/* ---- selectors ---------------------------------------------------------------------------------- */

/* Index of the newest sample at or before t in s[0..n), or -1. */
static ssize_t newest_at(const strata_sample *s, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s[mid].t <= t) lo = mid + 1;
        else hi = mid;
    }
    return (ssize_t)lo - 1;
}

/* Value of an instant selector over one series at step time t; false when none. */
static bool instant_value(const eval_ctx *c, const promql_expr *e, const strata_sample *s, size_t n,
                          int64_t t, int64_t *pt, double *pv)
{
    int64_t st = selector_time(c, e, t);
    ssize_t i = newest_at(s, n, st);
    if (i < 0 || s[i].t <= st - c->o->lookback_ms || is_stale(s[i].v)) return false;
    *pt = t;
    *pv = s[i].v;
    return true;
}

static int select_for(eval_ctx *c, const promql_expr *e, int64_t mint, int64_t maxt,
                      series_set **set)
{
    return db_select(c->db, (const matcher *const *)e->ms, e->n_ms, mint, maxt, set, c->err);
}

static int count_samples(eval_ctx *c, size_t n)
{
    c->samples += n;
    if (c->samples > c->o->max_samples)
        return strata_errf(c->err, STRATA_ELIMIT,
                           "query processing would load too many samples into memory in query "
                           "execution (limit %llu)",
                           (unsigned long long)c->o->max_samples);
    return 0;
}

/* The window [mint, maxt] of raw data a selector needs for the whole query. */
static void selector_window(const eval_ctx *c, const promql_expr *e, int64_t *mint, int64_t *maxt)
{
    int64_t lo = selector_time(c, e, c->start), hi = selector_time(c, e, c->end);
    if (lo > hi) {
        int64_t x = lo;
        lo = hi;
        hi = x;
    }
    int64_t back = e->kind == N_MATRIX ? e->range_ms : c->o->lookback_ms;
    *mint = lo - back + 1;
    *maxt = hi;
}

static int eval_vector_selector(eval_ctx *c, const promql_expr *e, buf *out)
{
    int64_t mint, maxt;
    selector_window(c, e, &mint, &maxt);
    series_set *set;
    int rc = select_for(c, e, mint, maxt, &set);
    if (rc) return rc;
    const label *ls;
    size_t nl, ns;
    const strata_sample *ss;
    bool first = true;
    bool range = c->step > 0;
    buf_printf(out, "{\"resultType\":\"%s\",\"result\":[", range ? "matrix" : "vector");
    while ((rc = series_set_next(set, &ls, &nl, &ss, &ns)) == 1) {
        if ((rc = count_samples(c, ns)) || (rc = check_deadline(c))) break;
        size_t mark = out->len;
        if (!first) buf_putc(out, ',');
        json_metric(out, ls, nl);
        bool any = false;
        if (range) {
            buf_append(out, ",\"values\":[", 11);
            for (int64_t t = c->start; t <= c->end; t += c->step) {
                int64_t pt;
                double pv;
                if (!instant_value(c, e, ss, ns, t, &pt, &pv)) continue;
                if (any) buf_putc(out, ',');
                json_point(out, pt, pv);
                any = true;
            }
            buf_append(out, "]}", 2);
        } else {
            int64_t pt;
            double pv;
            if (instant_value(c, e, ss, ns, c->start, &pt, &pv)) {
                buf_append(out, ",\"value\":", 9);
                json_point(out, pt, pv);
                buf_putc(out, '}');
                any = true;
            }
        }
        if (any) first = false;
        else out->len = mark; /* no point for this series: drop what was written */
    }
    series_set_free(set);
    if (rc < 0) return rc == STRATA_ECORRUPT ? strata_errf(c->err, rc, "corrupt chunk in storage") : rc;
    buf_append(out, "]}", 2);
    return 0;
}

static int eval_matrix_selector(eval_ctx *c, const promql_expr *e, buf *out)
{
    if (c->step > 0)
        return strata_errf(c->err, STRATA_EEXEC,
                           "invalid expression type \"range vector\" for range query, must be "
                           "Scalar or instant Vector");
    int64_t st = selector_time(c, e, c->start);
    series_set *set;
    int rc = select_for(c, e, st - e->range_ms + 1, st, &set);
    if (rc) return rc;
    const label *ls;
    size_t nl, ns;
    const strata_sample *ss;
    bool first = true;
    buf_append(out, "{\"resultType\":\"matrix\",\"result\":[", 33);
    while ((rc = series_set_next(set, &ls, &nl, &ss, &ns)) == 1) {
        if ((rc = count_samples(c, ns)) || (rc = check_deadline(c))) break;
        size_t mark = out->len;
        if (!first) buf_putc(out, ',');
        json_metric(out, ls, nl);
        buf_append(out, ",\"values\":[", 11);
        bool any = false;
        for (size_t i = 0; i < ns; i++) {
            if (is_stale(ss[i].v)) continue;
            if (any) buf_putc(out, ',');
            json_point(out, ss[i].t, ss[i].v);
            any = true;
        }
        buf_append(out, "]}", 2);
        if (any) first = false;
        else out->len = mark;
    }
    series_set_free(set);
    if (rc < 0) return rc == STRATA_ECORRUPT ? strata_errf(c->err, rc, "corrupt chunk in storage") : rc;
    buf_append(out, "]}", 2);
    return 0;
}

static const promql_expr *unwrap(const promql_expr *e)
{
    while (e->kind == N_PAREN) e = e->inner;
    return e;
}

static int eval_scalar(eval_ctx *c, double v, buf *out)
{
    if (c->step > 0) {
        buf_append(out, "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":[", 55);
        for (int64_t t = c->start; t <= c->end; t += c->step) {
            if (t != c->start) buf_putc(out, ',');
            json_point(out, t, v);
        }
        buf_append(out, "]}]}", 4);
        return 0;
    }
    buf_append(out, "{\"resultType\":\"scalar\",\"result\":", 32);
    json_point(out, c->start, v);
    buf_putc(out, '}');
    return 0;
}

static int eval_root(eval_ctx *c, const promql_expr *root, buf *out)
{
    const promql_expr *e = unwrap(root);
    switch (e->kind) {
    case N_NUMBER: return eval_scalar(c, e->num, out);
    case N_STRING:
        if (c->step > 0)
            return strata_errf(c->err, STRATA_EEXEC,
                               "invalid expression type \"string\" for range query, must be "
                               "Scalar or instant Vector");
        buf_append(out, "{\"resultType\":\"string\",\"result\":[", 33);
        {
            char ts[48];
            format_timestamp(c->start, ts, sizeof ts);
            buf_printf(out, "%s,", ts);
        }
        json_str(out, e->str, e->str_len);
        buf_append(out, "]}", 2);
        return 0;
    case N_VECTOR: return eval_vector_selector(c, e, out);
    case N_MATRIX: return eval_matrix_selector(c, e, out);
    case N_UNARY: {
        const promql_expr *in = unwrap(e->inner);
        if (in->kind == N_NUMBER) return eval_scalar(c, -in->num, out);
        return unsupported(c, e);
    }
    default: return unsupported(c, e);
    }
}

static int exec(strata_db *db, const char *q, int64_t start, int64_t end, int64_t step,
                const promql_options *o, buf *json, char *err)
{
    promql_options def;
    if (!o) {
        promql_options_init(&def);
        o = &def;
    }
    promql_expr *e;
    int rc = promql_parse(q, strlen(q), &e, err);
    if (rc) return rc;
    eval_ctx c = {.db = db, .o = o, .start = start, .end = end, .step = step, .err = err,
                  .deadline_ns = clock_mono_ns() + (uint64_t)(o->timeout_ms > 0 ? o->timeout_ms : 1) * 1000000ull};
    size_t mark = json->len;
    rc = eval_root(&c, e, json);
    if (rc) json->len = mark;
    promql_expr_free(e);
    return rc;
}

int promql_exec_instant(strata_db *db, const char *q, int64_t t_ms, const promql_options *o,
                        buf *json, char *err)
{
    return exec(db, q, t_ms, t_ms, 0, o, json, err);
}

int promql_exec_range(strata_db *db, const char *q, int64_t start_ms, int64_t end_ms,
                      int64_t step_ms, const promql_options *o, buf *json, char *err)
{
    if (step_ms <= 0) return strata_errf(err, STRATA_EINVAL, "step must be positive");
    if (end_ms < start_ms) return strata_errf(err, STRATA_EINVAL, "end is before start");
    if ((end_ms - start_ms) / step_ms > 11000)
        return strata_errf(err, STRATA_EINVAL,
                           "exceeded maximum resolution of 11,000 points per timeseries");
    return exec(db, q, start_ms, end_ms, step_ms, o, json, err);
}

int strata_query(strata_db *db, const char *promql, int64_t time_ms, char **json, char *err)
{
    buf b = {0};
    int rc = promql_exec_instant(db, promql, time_ms, NULL, &b, err);
    if (rc || !b.data) {
        buf_free(&b);
        *json = NULL;
        return rc ? rc : STRATA_ENOMEM;
    }
    *json = (char *)b.data;
    return 0;
}

int strata_query_range(strata_db *db, const char *promql, int64_t start_ms, int64_t end_ms,
                       int64_t step_ms, char **json, char *err)
{
    buf b = {0};
    int rc = promql_exec_range(db, promql, start_ms, end_ms, step_ms, NULL, &b, err);
    if (rc || !b.data) {
        buf_free(&b);
        *json = NULL;
        return rc ? rc : STRATA_ENOMEM;
    }
    *json = (char *)b.data;
    return 0;
}
