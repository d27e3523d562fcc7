/*
 * parser.c: PromQL tokens into an AST, by recursive descent with precedence climbing.
 *
 * Precedence, loosest first: or; and unless; == != <= < >= >; + -; * / % atan2; unary + -; ^
 * (right-associative, binding tighter than unary minus, so -2^2 is -4). Postfix [range],
 * [range:step], offset and @ bind to the expression before them. Errors carry the line and column
 * of the offending token and say what was expected. Nesting is bounded so hostile input cannot
 * exhaust the stack.
 */
#include "query/ast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 500

typedef struct parser {
    lexer lx;
    token cur;
    const char *src;
    arena mem; /* token strings */
    char *err;
    int rc;
    int depth;
} parser;

static void next(parser *p)
{
    p->cur = lexer_next(&p->lx);
    if (p->cur.kind == T_ERROR && !p->rc) {
        p->rc = STRATA_EPARSE;
        if (p->err) snprintf(p->err, STRATA_ERRMSG_SIZE, "%s", p->lx.err);
    }
}

static promql_expr *fail_at(parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static promql_expr *fail_at(parser *p, size_t pos, const char *fmt, ...)
{
    if (p->rc) return NULL;
    p->rc = STRATA_EPARSE;
    if (!p->err) return NULL;
    int line, col;
    lexer_position(p->src, pos, &line, &col);
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, STRATA_ERRMSG_SIZE, "%d:%d: parse error: %s", line, col, msg);
    return NULL;
}

/* The current token as users see it in messages. */
static const char *describe(const token *t, char *out, size_t len)
{
    if (t->kind == T_EOF) return "end of input";
    const char *kind = t->kind == T_IDENT      ? "identifier "
                       : t->kind == T_NUMBER   ? "number "
                       : t->kind == T_STRING   ? "string "
                       : t->kind == T_DURATION ? "duration "
                                               : "";
    snprintf(out, len, "%s\"%.*s\"", kind, (int)(t->len > 40 ? 40 : t->len), t->text);
    return out;
}

static promql_expr *unexpected(parser *p, const char *context, const char *expected)
{
    char d[80];
    return fail_at(p, p->cur.pos, "unexpected %s%s%s%s%s", describe(&p->cur, d, sizeof d),
                   context ? " in " : "", context ? context : "", expected ? ", expected " : "",
                   expected ? expected : "");
}

static bool is_word(const token *t, const char *w)
{
    return t->kind == T_IDENT && t->len == strlen(w) && strncasecmp(t->text, w, t->len) == 0;
}

static promql_expr *node(parser *p, node_kind k, size_t pos)
{
    promql_expr *e = calloc(1, sizeof *e);
    if (!e) {
        fail_at(p, pos, "out of memory");
        return NULL;
    }
    e->kind = k;
    e->pos = pos;
    return e;
}

void promql_expr_free(promql_expr *e)
{
    if (!e) return;
    free(e->str);
    free(e->metric);
    for (size_t i = 0; i < e->n_ms; i++) matcher_free(e->ms[i]);
    free(e->ms);
    free(e->func);
    for (size_t i = 0; i < e->n_args; i++) promql_expr_free(e->args[i]);
    free(e->args);
    for (size_t i = 0; i < e->n_grouping; i++) free(e->grouping[i]);
    free(e->grouping);
    for (size_t i = 0; i < e->n_extra; i++) free(e->extra[i]);
    free(e->extra);
    promql_expr_free(e->lhs);
    promql_expr_free(e->rhs);
    promql_expr_free(e->inner);
    free(e);
}

static const char *aggregators[] = {"sum",    "min",   "max",      "avg",          "group",
                                    "stddev", "stdvar", "count",   "count_values", "bottomk",
                                    "topk",   "quantile", "limitk", "limit_ratio",  NULL};

static bool is_aggregator(const token *t)
{
    for (int i = 0; aggregators[i]; i++)
        if (is_word(t, aggregators[i])) return true;
    return false;
}

static bool is_keyword(const token *t)
{
    static const char *kw[] = {"and", "or", "unless", "atan2", "by", "without", "on", "ignoring",
                               "group_left", "group_right", "bool", "offset", NULL};
    for (int i = 0; kw[i]; i++)
        if (is_word(t, kw[i])) return true;
    return false;
}

static promql_expr *parse_expr(parser *p, int min_prec);

/* ---- selectors ------------------------------------------------------------------------------ */

static int add_matcher(parser *p, promql_expr *e, strata_match_type type, const char *name,
                       size_t nl, const char *value, size_t vl, size_t pos)
{
    matcher **ms = realloc(e->ms, (e->n_ms + 1) * sizeof *ms);
    if (!ms) return STRATA_ENOMEM;
    e->ms = ms;
    char merr[STRATA_ERRMSG_SIZE];
    int rc = matcher_new(type, name, nl, value, vl, &e->ms[e->n_ms], merr);
    if (rc) {
        fail_at(p, pos, "%s", merr);
        return rc;
    }
    e->n_ms++;
    return 0;
}

/* {name op "value", ...}; a bare string inside is the metric name (Prometheus 3 UTF-8 names). */
static int parse_matchers(parser *p, promql_expr *e)
{
    next(p); /* { */
    while (!p->rc && p->cur.kind != T_RBRACE) {
        token name = p->cur;
        if (name.kind == T_STRING) {
            next(p);
            if (p->cur.kind == T_COMMA || p->cur.kind == T_RBRACE) {
                /* {"metric.name"} */
                if (e->metric) {
                    fail_at(p, name.pos, "metric name must not be set twice: \"%s\" or \"%s\"",
                            e->metric, name.str);
                    return STRATA_EPARSE;
                }
                e->metric = strndup(name.str, name.str_len);
                if (add_matcher(p, e, STRATA_MATCH_EQUAL, LABEL_METRIC_NAME, 8, name.str,
                                name.str_len, name.pos))
                    return STRATA_EPARSE;
                if (p->cur.kind == T_COMMA) next(p);
                continue;
            }
        } else if (name.kind == T_IDENT) {
            next(p);
        } else {
            unexpected(p, "label matching", "label name");
            return STRATA_EPARSE;
        }
        strata_match_type type;
        switch (p->cur.kind) {
        case T_ASSIGN: type = STRATA_MATCH_EQUAL; break;
        case T_NEQ: type = STRATA_MATCH_NOT_EQUAL; break;
        case T_RE: type = STRATA_MATCH_REGEX; break;
        case T_NRE: type = STRATA_MATCH_NOT_REGEX; break;
        default: unexpected(p, "label matching", "label matching operator"); return STRATA_EPARSE;
        }
        next(p);
        if (p->cur.kind != T_STRING) {
            unexpected(p, "label matching", "string");
            return STRATA_EPARSE;
        }
        const char *nm = name.kind == T_STRING ? name.str : name.text;
        size_t nml = name.kind == T_STRING ? name.str_len : name.len;
        if (add_matcher(p, e, type, nm, nml, p->cur.str, p->cur.str_len, p->cur.pos))
            return STRATA_EPARSE;
        next(p);
        if (p->cur.kind == T_COMMA) next(p);
        else if (p->cur.kind != T_RBRACE) {
            unexpected(p, "label matching", "\",\" or \"}\"");
            return STRATA_EPARSE;
        }
    }
    if (p->rc) return p->rc;
    next(p); /* } */
    return 0;
}

static promql_expr *parse_selector(parser *p, const token *name)
{
    promql_expr *e = node(p, N_VECTOR, name ? name->pos : p->cur.pos);
    if (!e) return NULL;
    if (name) {
        e->metric = strndup(name->text, name->len);
        if (add_matcher(p, e, STRATA_MATCH_EQUAL, LABEL_METRIC_NAME, 8, name->text, name->len,
                        name->pos)) {
            promql_expr_free(e);
            return NULL;
        }
    }
    if (p->cur.kind == T_LBRACE && parse_matchers(p, e)) {
        promql_expr_free(e);
        return NULL;
    }
    bool some = false;
    for (size_t i = 0; i < e->n_ms; i++)
        if (!e->ms[i]->matches_empty) some = true;
    if (!some) {
        promql_expr_free(e);
        return fail_at(p, name ? name->pos : p->cur.pos,
                       "vector selector must contain at least one non-empty matcher");
    }
    return e;
}

/* ---- calls and aggregations ------------------------------------------------------------------ */

static int parse_label_list(parser *p, char ***out, size_t *n)
{
    if (p->cur.kind != T_LPAREN) {
        unexpected(p, "grouping opts", "\"(\"");
        return STRATA_EPARSE;
    }
    next(p);
    while (!p->rc && p->cur.kind != T_RPAREN) {
        const char *s;
        size_t l;
        if (p->cur.kind == T_IDENT) {
            s = p->cur.text;
            l = p->cur.len;
        } else if (p->cur.kind == T_STRING) {
            s = p->cur.str;
            l = p->cur.str_len;
        } else {
            unexpected(p, "grouping opts", "label");
            return STRATA_EPARSE;
        }
        char **v = realloc(*out, (*n + 1) * sizeof *v);
        if (!v) return STRATA_ENOMEM;
        *out = v;
        v[*n] = strndup(s, l);
        (*n)++;
        next(p);
        if (p->cur.kind == T_COMMA) next(p);
        else if (p->cur.kind != T_RPAREN) {
            unexpected(p, "grouping opts", "\",\" or \")\"");
            return STRATA_EPARSE;
        }
    }
    if (p->rc) return p->rc;
    next(p);
    return 0;
}

static int parse_args(parser *p, promql_expr *e)
{
    next(p); /* ( */
    while (!p->rc && p->cur.kind != T_RPAREN) {
        promql_expr *a = parse_expr(p, 0);
        if (!a) return STRATA_EPARSE;
        promql_expr **v = realloc(e->args, (e->n_args + 1) * sizeof *v);
        if (!v) {
            promql_expr_free(a);
            return STRATA_ENOMEM;
        }
        e->args = v;
        v[e->n_args++] = a;
        if (p->cur.kind == T_COMMA) next(p);
        else if (p->cur.kind != T_RPAREN) {
            unexpected(p, "argument list", "\",\" or \")\"");
            return STRATA_EPARSE;
        }
    }
    if (p->rc) return p->rc;
    next(p);
    return 0;
}

static promql_expr *parse_aggregation(parser *p, const token *name)
{
    promql_expr *e = node(p, N_AGG, name->pos);
    if (!e) return NULL;
    e->func = strndup(name->text, name->len);
    for (char *c = e->func; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    if (is_word(&p->cur, "by") || is_word(&p->cur, "without")) {
        e->without = is_word(&p->cur, "without");
        e->has_grouping = true;
        next(p);
        if (parse_label_list(p, &e->grouping, &e->n_grouping)) goto bad;
    }
    if (p->cur.kind != T_LPAREN) {
        unexpected(p, "aggregation", "\"(\"");
        goto bad;
    }
    if (parse_args(p, e)) goto bad;
    if (!e->has_grouping && (is_word(&p->cur, "by") || is_word(&p->cur, "without"))) {
        e->without = is_word(&p->cur, "without");
        e->has_grouping = true;
        next(p);
        if (parse_label_list(p, &e->grouping, &e->n_grouping)) goto bad;
    }
    if (e->n_args == 0) {
        fail_at(p, name->pos, "no arguments for aggregate expression provided");
        goto bad;
    }
    return e;
bad:
    promql_expr_free(e);
    return NULL;
}

/* ---- postfix: [range], [range:step], offset, @ ------------------------------------------------- */

static int parse_duration_tok(parser *p, int64_t *ms, bool allow_neg, const char *ctx)
{
    bool neg = false;
    if (allow_neg && (p->cur.kind == T_SUB || p->cur.kind == T_ADD)) {
        neg = p->cur.kind == T_SUB;
        next(p);
    }
    if (p->cur.kind == T_DURATION) {
        *ms = neg ? -p->cur.dur_ms : p->cur.dur_ms;
    } else if (p->cur.kind == T_NUMBER && isfinite(p->cur.num)) {
        /* Prometheus 3 accepts a plain number of seconds here. */
        *ms = (int64_t)llround(p->cur.num * 1000.0) * (neg ? -1 : 1);
    } else {
        unexpected(p, ctx, "duration");
        return STRATA_EPARSE;
    }
    next(p);
    return 0;
}

static promql_expr *parse_postfix(parser *p, promql_expr *e)
{
    while (e && !p->rc) {
        if (p->cur.kind == T_LBRACKET) {
            size_t pos = p->cur.pos;
            next(p);
            int64_t range;
            if (parse_duration_tok(p, &range, false, "range")) goto bad;
            if (p->cur.kind == T_COLON) {
                next(p);
                int64_t step = 0;
                if (p->cur.kind != T_RBRACKET && parse_duration_tok(p, &step, false, "subquery"))
                    goto bad;
                if (p->cur.kind != T_RBRACKET) {
                    unexpected(p, "subquery selector", "\"]\"");
                    goto bad;
                }
                next(p);
                promql_expr *s = node(p, N_SUBQUERY, pos);
                if (!s) goto bad;
                s->inner = e;
                s->range_ms = range;
                s->step_ms = step;
                e = s;
                continue;
            }
            if (p->cur.kind != T_RBRACKET) {
                unexpected(p, "range selector", "\"]\"");
                goto bad;
            }
            next(p);
            if (e->kind != N_VECTOR || e->offset_ms || e->at) {
                fail_at(p, pos, "ranges only allowed for vector selectors");
                goto bad;
            }
            if (range <= 0) {
                fail_at(p, pos, "range must be greater than 0");
                goto bad;
            }
            e->kind = N_MATRIX;
            e->range_ms = range;
        } else if (is_word(&p->cur, "offset")) {
            size_t pos = p->cur.pos;
            next(p);
            int64_t off;
            if (parse_duration_tok(p, &off, true, "offset")) goto bad;
            if (e->kind != N_VECTOR && e->kind != N_MATRIX && e->kind != N_SUBQUERY) {
                fail_at(p, pos, "offset modifier must be preceded by an instant vector selector "
                                "or range vector selector or a subquery");
                goto bad;
            }
            if (e->offset_ms) {
                fail_at(p, pos, "offset may not be set multiple times");
                goto bad;
            }
            e->offset_ms = off;
        } else if (p->cur.kind == T_AT) {
            size_t pos = p->cur.pos;
            next(p);
            if (e->kind != N_VECTOR && e->kind != N_MATRIX && e->kind != N_SUBQUERY) {
                fail_at(p, pos, "@ modifier must be preceded by an instant vector selector or "
                                "range vector selector or a subquery");
                goto bad;
            }
            if (e->at) {
                fail_at(p, pos, "@ <timestamp> may not be set multiple times");
                goto bad;
            }
            if (is_word(&p->cur, "start") || is_word(&p->cur, "end")) {
                e->at = is_word(&p->cur, "start") ? AT_START : AT_END;
                next(p);
                if (p->cur.kind != T_LPAREN) {
                    unexpected(p, "@", "\"(\"");
                    goto bad;
                }
                next(p);
                if (p->cur.kind != T_RPAREN) {
                    unexpected(p, "@", "\")\"");
                    goto bad;
                }
                next(p);
            } else {
                bool neg = false;
                if (p->cur.kind == T_SUB || p->cur.kind == T_ADD) {
                    neg = p->cur.kind == T_SUB;
                    next(p);
                }
                if ((p->cur.kind != T_NUMBER && p->cur.kind != T_DURATION) || !isfinite(p->cur.num)) {
                    unexpected(p, "@", "timestamp");
                    goto bad;
                }
                e->at = AT_TIME;
                e->at_ms = (int64_t)llround(p->cur.num * 1000.0) * (neg ? -1 : 1);
                next(p);
            }
        } else {
            break;
        }
    }
    if (p->rc) goto bad;
    return e;
bad:
    promql_expr_free(e);
    return NULL;
}

/* ---- primaries and operators ------------------------------------------------------------------ */

static promql_expr *parse_primary(parser *p)
{
    token t = p->cur;
    switch (t.kind) {
    case T_NUMBER: {
        next(p);
        promql_expr *e = node(p, N_NUMBER, t.pos);
        if (e) e->num = t.num;
        return e;
    }
    case T_DURATION: {
        /* Prometheus 3 reads a duration where a number is expected as its seconds. */
        next(p);
        promql_expr *e = node(p, N_NUMBER, t.pos);
        if (e) e->num = (double)t.dur_ms / 1000.0;
        return e;
    }
    case T_STRING: {
        next(p);
        promql_expr *e = node(p, N_STRING, t.pos);
        if (e) {
            e->str = strndup(t.str, t.str_len);
            e->str_len = t.str_len;
        }
        return e;
    }
    case T_LPAREN: {
        next(p);
        promql_expr *in = parse_expr(p, 0);
        if (!in) return NULL;
        if (p->cur.kind != T_RPAREN) {
            promql_expr_free(in);
            return unexpected(p, "parenthesized expression", "\")\"");
        }
        next(p);
        promql_expr *e = node(p, N_PAREN, t.pos);
        if (!e) {
            promql_expr_free(in);
            return NULL;
        }
        e->inner = in;
        return e;
    }
    case T_LBRACE: return parse_selector(p, NULL);
    case T_IDENT: {
        if (is_word(&t, "inf") || is_word(&t, "nan")) {
            next(p);
            promql_expr *e = node(p, N_NUMBER, t.pos);
            if (e) e->num = is_word(&t, "inf") ? INFINITY : NAN;
            return e;
        }
        if (is_aggregator(&t)) {
            next(p);
            if (p->cur.kind == T_LPAREN || is_word(&p->cur, "by") || is_word(&p->cur, "without"))
                return parse_aggregation(p, &t);
            return parse_selector(p, &t);
        }
        if (is_keyword(&t)) return unexpected(p, NULL, NULL);
        next(p);
        if (p->cur.kind == T_LPAREN) {
            promql_expr *e = node(p, N_CALL, t.pos);
            if (!e) return NULL;
            e->func = strndup(t.text, t.len);
            if (parse_args(p, e)) {
                promql_expr_free(e);
                return NULL;
            }
            return e;
        }
        return parse_selector(p, &t);
    }
    default: return unexpected(p, NULL, NULL);
    }
}

/* Binary operator precedence, 0 when the token is none. */
static int binary_prec(const token *t, bool *right_assoc)
{
    *right_assoc = false;
    switch (t->kind) {
    case T_EQLC:
    case T_NEQ:
    case T_LSS:
    case T_LTE:
    case T_GTR:
    case T_GTE: return 3;
    case T_ADD:
    case T_SUB: return 4;
    case T_MUL:
    case T_DIV:
    case T_MOD: return 5;
    case T_POW: *right_assoc = true; return 7;
    case T_IDENT:
        if (is_word(t, "or")) return 1;
        if (is_word(t, "and") || is_word(t, "unless")) return 2;
        if (is_word(t, "atan2")) return 5;
        return 0;
    default: return 0;
    }
}

#define PREC_UNARY 6

static promql_expr *parse_unary(parser *p)
{
    if (p->cur.kind == T_SUB || p->cur.kind == T_ADD) {
        token t = p->cur;
        next(p);
        promql_expr *in = parse_expr(p, PREC_UNARY);
        if (!in) return NULL;
        if (t.kind == T_ADD) return in;
        if (in->kind == N_NUMBER) { /* fold -1 into a literal, as Prometheus does */
            in->num = -in->num;
            in->pos = t.pos;
            return in;
        }
        promql_expr *e = node(p, N_UNARY, t.pos);
        if (!e) {
            promql_expr_free(in);
            return NULL;
        }
        e->op = T_SUB;
        e->inner = in;
        return e;
    }
    return parse_postfix(p, parse_primary(p));
}

static promql_expr *parse_expr(parser *p, int min_prec)
{
    if (++p->depth > MAX_DEPTH) {
        p->depth--;
        return fail_at(p, p->cur.pos, "expression nests deeper than %d levels", MAX_DEPTH);
    }
    promql_expr *lhs = parse_unary(p);
    while (lhs && !p->rc) {
        bool right;
        int prec = binary_prec(&p->cur, &right);
        if (!prec || prec < min_prec) break;
        token op = p->cur;
        next(p);
        promql_expr *e = node(p, N_BINARY, op.pos);
        if (!e) break;
        e->op = op.kind;
        if (op.kind == T_IDENT) {
            e->func = strndup(op.text, op.len);
            for (char *c = e->func; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        }
        e->lhs = lhs;
        lhs = e;
        if (is_word(&p->cur, "bool")) {
            e->return_bool = true;
            next(p);
        }
        if (is_word(&p->cur, "on") || is_word(&p->cur, "ignoring")) {
            e->has_matching = true;
            e->matching_on = is_word(&p->cur, "on");
            next(p);
            if (parse_label_list(p, &e->grouping, &e->n_grouping)) break;
            if (is_word(&p->cur, "group_left") || is_word(&p->cur, "group_right")) {
                e->card = is_word(&p->cur, "group_left") ? 1 : 2;
                next(p);
                if (p->cur.kind == T_LPAREN && parse_label_list(p, &e->extra, &e->n_extra)) break;
            }
        }
        e->rhs = parse_expr(p, right ? prec : prec + 1);
        if (!e->rhs) break;
        if (e->return_bool && !(op.kind >= T_EQLC && op.kind <= T_GTE) && op.kind != T_NEQ) {
            fail_at(p, op.pos, "bool modifier can only be used on comparison operators");
            break;
        }
    }
    p->depth--;
    if (p->rc) {
        promql_expr_free(lhs);
        return NULL;
    }
    return lhs;
}

int promql_parse(const char *text, size_t len, promql_expr **out, char *err)
{
    parser p = {.src = text, .err = err};
    arena_init(&p.mem, 4096);
    lexer_init(&p.lx, text, len, &p.mem);
    *out = NULL;
    next(&p);
    promql_expr *e = NULL;
    if (!p.rc && p.cur.kind == T_EOF) fail_at(&p, 0, "no expression found in input");
    else if (!p.rc) e = parse_expr(&p, 0);
    if (e && !p.rc && p.cur.kind != T_EOF) {
        char d[80];
        fail_at(&p, p.cur.pos, "unexpected %s", describe(&p.cur, d, sizeof d));
    }
    arena_free(&p.mem);
    if (p.rc) {
        promql_expr_free(e);
        return p.rc == STRATA_ENOMEM ? STRATA_ENOMEM : STRATA_EPARSE;
    }
    *out = e;
    return 0;
}

int promql_parse_selector(const char *text, matcher ***out, size_t *n, char *err)
{
    promql_expr *e;
    int rc = promql_parse(text, strlen(text), &e, err);
    if (rc) return rc;
    if (e->kind != N_VECTOR || e->offset_ms || e->at) {
        promql_expr_free(e);
        return strata_errf(err, STRATA_EPARSE, "1:1: parse error: expected a series selector");
    }
    *out = e->ms;
    *n = e->n_ms;
    e->ms = NULL;
    e->n_ms = 0;
    promql_expr_free(e);
    return 0;
}
