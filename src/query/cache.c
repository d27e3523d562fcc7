/*
 * cache.c: repeated subexpressions of one query evaluated once.
 *
 * Dashboards write the same selector or the same rate() several times in one expression
 * (sum(rate(x[5m])) / count(rate(x[5m])), x / x offset 0, a - avg(a)). Before evaluation every
 * node is written out as canonical PromQL (the formatter's text is Prometheus' String(), so equal
 * text means an equal subtree, modifiers included); only texts that occur more than once get a
 * cache slot. The first evaluation of such a node in a given time frame (start, end, step: a
 * subquery evaluates its inner expression over its own frame) stores a copy of the value; later
 * ones get a copy back instead of reading storage and computing again. Copies, because consumers
 * of a value update its arrays in place. Range selectors shared by different range functions are
 * materialised once (eval_range_arg) instead of streamed twice.
 */
#include "query/cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct cache_node {
    const promql_expr *node;
    const char *key; /* canonical text; shared by every node with the same text */
} cache_node;

typedef struct cache_entry {
    const char *key;
    int64_t start, end, step;
    value v;
} cache_entry;

struct eval_cache {
    arena mem;
    cache_node *nodes; /* nodes whose text occurs more than once, sorted by node address */
    size_t n_nodes;
    cache_entry *entries;
    size_t n_entries, cap_entries;
};

typedef struct text_count {
    const promql_expr *node;
    char *text;
    size_t len;
} text_count;

typedef struct walk {
    text_count *items;
    size_t n, cap;
    int rc;
} walk;

static bool cacheable(const promql_expr *e)
{
    switch (e->kind) {
    case N_VECTOR:
    case N_MATRIX:
    case N_CALL:
    case N_AGG:
    case N_BINARY:
    case N_SUBQUERY:
        return true;
    default:
        return false;
    }
}

static void collect(walk *w, const promql_expr *e, int depth)
{
    if (!e || w->rc || depth > PROMQL_MAX_DEPTH || e->kind == N_DURATION) return;
    if (cacheable(e)) {
        buf b = {0};
        if (promql_expr_format(e, &b)) {
            w->rc = STRATA_ENOMEM;
            buf_free(&b);
            return;
        }
        if (w->n == w->cap) {
            size_t nc = w->cap ? w->cap * 2 : 32;
            text_count *ni = realloc(w->items, nc * sizeof *ni);
            if (!ni) {
                w->rc = STRATA_ENOMEM;
                buf_free(&b);
                return;
            }
            w->items = ni;
            w->cap = nc;
        }
        w->items[w->n++] = (text_count){e, (char *)b.data, b.len};
    }
    for (size_t i = 0; i < e->n_args; i++)
        collect(w, e->args[i], depth + 1);
    collect(w, e->lhs, depth + 1);
    collect(w, e->rhs, depth + 1);
    collect(w, e->inner, depth + 1);
}

static int cmp_text(const void *a, const void *b)
{
    const text_count *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->len ? memcmp(x->text, y->text, x->len) : 0;
}

static int cmp_node(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const cache_node *)a)->node,
              y = (uintptr_t)((const cache_node *)b)->node;
    return x < y ? -1 : x > y;
}

int eval_cache_new(const promql_expr *root, eval_cache **out)
{
    *out = NULL;
    walk w = {0};
    collect(&w, root, 0);
    int rc = w.rc;
    eval_cache *ec = NULL;
    if (!rc && w.n > 1) {
        qsort(w.items, w.n, sizeof *w.items, cmp_text);
        size_t shared = 0;
        for (size_t i = 0; i < w.n;) {
            size_t j = i + 1;
            while (j < w.n && !cmp_text(&w.items[i], &w.items[j]))
                j++;
            if (j - i > 1) shared += j - i;
            i = j;
        }
        if (shared) {
            ec = calloc(1, sizeof *ec);
            if (!ec)
                rc = STRATA_ENOMEM;
            else
                arena_init(&ec->mem, 4096);
            if (ec) ec->nodes = arena_alloc(&ec->mem, shared * sizeof *ec->nodes);
            if (ec && !ec->nodes) rc = STRATA_ENOMEM;
            for (size_t i = 0; i < w.n && !rc;) {
                size_t j = i + 1;
                while (j < w.n && !cmp_text(&w.items[i], &w.items[j]))
                    j++;
                if (j - i > 1) {
                    char *key = arena_strndup(&ec->mem, w.items[i].text, w.items[i].len);
                    if (!key) rc = STRATA_ENOMEM;
                    for (size_t k = i; k < j && key; k++)
                        ec->nodes[ec->n_nodes++] = (cache_node){w.items[k].node, key};
                }
                i = j;
            }
            if (!rc) qsort(ec->nodes, ec->n_nodes, sizeof *ec->nodes, cmp_node);
        }
    }
    for (size_t i = 0; i < w.n; i++)
        free(w.items[i].text);
    free(w.items);
    if (rc) {
        eval_cache_free(ec);
        return rc;
    }
    *out = ec;
    return 0;
}

void eval_cache_free(eval_cache *ec)
{
    if (!ec) return;
    free(ec->entries);
    arena_free(&ec->mem);
    free(ec);
}

static const char *key_of(const eval_cache *ec, const promql_expr *e)
{
    if (!ec) return NULL;
    size_t lo = 0, hi = ec->n_nodes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((uintptr_t)ec->nodes[mid].node < (uintptr_t)e)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ec->n_nodes && ec->nodes[lo].node == e ? ec->nodes[lo].key : NULL;
}

bool eval_cache_shared(const eval_ctx *c, const promql_expr *e)
{
    return key_of(c->cache, e) != NULL;
}

bool eval_cache_contains(const eval_cache *ec, const promql_expr *e)
{
    return key_of(ec, e) != NULL;
}

/* A copy of v whose arrays the receiver may change (labels are never changed in place). */
static int copy_value(eval_ctx *c, const value *v, value *out)
{
    *out = *v;
    if (v->type == V_SCALAR) {
        out->scalar = eval_alloc(c, c->n_steps * sizeof *out->scalar);
        if (!out->scalar) return STRATA_ENOMEM;
        memcpy(out->scalar, v->scalar, c->n_steps * sizeof *out->scalar);
        return 0;
    }
    if (v->type != V_VECTOR && v->type != V_MATRIX) return 0;
    out->s = eval_alloc(c, (v->n ? v->n : 1) * sizeof *out->s);
    if (!out->s) return STRATA_ENOMEM;
    for (size_t k = 0; k < v->n; k++) {
        const vseries *a = &v->s[k];
        vseries *b = &out->s[k];
        *b = *a;
        if (a->v) {
            b->v = eval_alloc(c, c->n_steps * sizeof *b->v);
            b->has = eval_alloc(c, c->n_steps);
            if (!b->v || !b->has) return STRATA_ENOMEM;
            memcpy(b->v, a->v, c->n_steps * sizeof *b->v);
            memcpy(b->has, a->has, c->n_steps);
        }
        if (a->pts) {
            b->pts = eval_alloc(c, (a->n_pts ? a->n_pts : 1) * sizeof *b->pts);
            if (!b->pts) return STRATA_ENOMEM;
            if (a->n_pts) memcpy(b->pts, a->pts, a->n_pts * sizeof *b->pts);
        }
        if (a->n_hpts) { /* histogram samples, which receivers filter in place like pts */
            b->hpts = eval_alloc(c, a->n_hpts * sizeof *b->hpts);
            if (!b->hpts) return STRATA_ENOMEM;
            memcpy(b->hpts, a->hpts, a->n_hpts * sizeof *b->hpts);
        }
    }
    return 0;
}

int eval_cache_get(eval_ctx *c, const promql_expr *e, value *out, bool *hit)
{
    *hit = false;
    const char *key = key_of(c->cache, e);
    if (!key) return 0;
    eval_cache *ec = c->cache;
    for (size_t i = 0; i < ec->n_entries; i++) {
        cache_entry *ce = &ec->entries[i];
        if (ce->key == key && ce->start == c->start && ce->end == c->end && ce->step == c->step) {
            *hit = true;
            return copy_value(c, &ce->v, out);
        }
    }
    return 0;
}

int eval_cache_put(eval_ctx *c, const promql_expr *e, const value *v)
{
    const char *key = key_of(c->cache, e);
    if (!key) return 0;
    eval_cache *ec = c->cache;
    if (ec->n_entries == ec->cap_entries) {
        size_t nc = ec->cap_entries ? ec->cap_entries * 2 : 8;
        cache_entry *ne = realloc(ec->entries, nc * sizeof *ne);
        if (!ne) return STRATA_ENOMEM;
        ec->entries = ne;
        ec->cap_entries = nc;
    }
    cache_entry *ce = &ec->entries[ec->n_entries];
    *ce = (cache_entry){.key = key, .start = c->start, .end = c->end, .step = c->step};
    int rc = copy_value(c, v, &ce->v);
    if (!rc) ec->n_entries++;
    return rc;
}
