/*
 * postings.c: the inverted index of the head: label name -> label value -> bitmap of series refs.
 *
 * Bitmaps are CRoaring's compressed bitmaps, so set algebra over thousands of series is a few
 * word operations per container. Names and values are interned symbols, so a table keyed by
 * symbol pointer needs no string hashing. A matcher is evaluated by the rule that makes
 * Prometheus' semantics for absent labels fall out: if the matcher accepts the empty string the
 * result is "all series minus those whose value it rejects", otherwise "the union of those whose
 * value it accepts". Writers (series creation) take the lock exclusively; selects share it.
 */
#include "storage/storage_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct value_entry {
    const char *value; /* interned */
    uint32_t len;
    roaring_bitmap_t *refs;
} value_entry;

typedef struct name_entry {
    const char *name; /* interned */
    uint32_t len;
    value_entry *values; /* open addressing by pointer */
    uint32_t cap;
    uint32_t count;
} name_entry;

struct postings_index {
    pthread_rwlock_t mu;
    sym_table *syms; /* names and values are interned here: lookups by bytes go through it */
    name_entry *names; /* open addressing by pointer */
    uint32_t cap;
    uint32_t count;
    roaring_bitmap_t *all;
};

static inline uint32_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

postings_index *postings_new(sym_table *syms)
{
    postings_index *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->syms = syms;
    p->all = roaring_bitmap_create();
    if (!p->all) {
        free(p);
        return NULL;
    }
    pthread_rwlock_init(&p->mu, NULL);
    return p;
}

void postings_free(postings_index *p)
{
    if (!p) return;
    for (uint32_t i = 0; i < p->cap; i++) {
        name_entry *n = &p->names[i];
        if (!n->name) continue;
        for (uint32_t k = 0; k < n->cap; k++)
            if (n->values[k].value) roaring_bitmap_free(n->values[k].refs);
        free(n->values);
    }
    free(p->names);
    roaring_bitmap_free(p->all);
    pthread_rwlock_destroy(&p->mu);
    free(p);
}

static name_entry *find_name(postings_index *p, const char *name)
{
    if (!p->cap) return NULL;
    for (uint32_t k = ptr_hash(name) & (p->cap - 1);; k = (k + 1) & (p->cap - 1)) {
        if (!p->names[k].name) return NULL;
        if (p->names[k].name == name) return &p->names[k];
    }
}

static value_entry *find_value(name_entry *n, const char *value)
{
    if (!n->cap) return NULL;
    for (uint32_t k = ptr_hash(value) & (n->cap - 1);; k = (k + 1) & (n->cap - 1)) {
        if (!n->values[k].value) return NULL;
        if (n->values[k].value == value) return &n->values[k];
    }
}

static int grow_names(postings_index *p)
{
    uint32_t ncap = p->cap ? p->cap * 2 : 16;
    name_entry *v = calloc(ncap, sizeof *v);
    if (!v) return STRATA_ENOMEM;
    for (uint32_t i = 0; i < p->cap; i++) {
        if (!p->names[i].name) continue;
        uint32_t k = ptr_hash(p->names[i].name) & (ncap - 1);
        while (v[k].name) k = (k + 1) & (ncap - 1);
        v[k] = p->names[i];
    }
    free(p->names);
    p->names = v;
    p->cap = ncap;
    return 0;
}

static int grow_values(name_entry *n)
{
    uint32_t ncap = n->cap ? n->cap * 2 : 8;
    value_entry *v = calloc(ncap, sizeof *v);
    if (!v) return STRATA_ENOMEM;
    for (uint32_t i = 0; i < n->cap; i++) {
        if (!n->values[i].value) continue;
        uint32_t k = ptr_hash(n->values[i].value) & (ncap - 1);
        while (v[k].value) k = (k + 1) & (ncap - 1);
        v[k] = n->values[i];
    }
    free(n->values);
    n->values = v;
    n->cap = ncap;
    return 0;
}

int postings_add(postings_index *p, uint32_t ref, const label *labels, size_t n)
{
    pthread_rwlock_wrlock(&p->mu);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        name_entry *ne = find_name(p, labels[i].name);
        if (!ne) {
            if ((p->count + 1) * 2 > p->cap && (rc = grow_names(p))) break;
            uint32_t k = ptr_hash(labels[i].name) & (p->cap - 1);
            while (p->names[k].name) k = (k + 1) & (p->cap - 1);
            ne = &p->names[k];
            ne->name = labels[i].name;
            ne->len = labels[i].name_len;
            p->count++;
        }
        value_entry *ve = find_value(ne, labels[i].value);
        if (!ve) {
            if ((ne->count + 1) * 2 > ne->cap && (rc = grow_values(ne))) break;
            uint32_t k = ptr_hash(labels[i].value) & (ne->cap - 1);
            while (ne->values[k].value) k = (k + 1) & (ne->cap - 1);
            ve = &ne->values[k];
            ve->refs = roaring_bitmap_create();
            if (!ve->refs) {
                rc = STRATA_ENOMEM;
                break;
            }
            ve->value = labels[i].value;
            ve->len = labels[i].value_len;
            ne->count++;
        }
        roaring_bitmap_add(ve->refs, ref);
    }
    if (!rc) roaring_bitmap_add(p->all, ref);
    pthread_rwlock_unlock(&p->mu);
    return rc;
}

/* Finds a name by its bytes (the matcher's name is not interned): through the symbol table, so
 * the lookup is two hash probes whatever the number of names. */
static name_entry *find_name_bytes(postings_index *p, const char *name, uint32_t len)
{
    const sym *y = sym_lookup(p->syms, name, len);
    return y ? find_name(p, y->str) : NULL;
}

static value_entry *find_value_bytes(postings_index *p, name_entry *ne, const char *value,
                                     uint32_t len)
{
    const sym *y = sym_lookup(p->syms, value, len);
    return y ? find_value(ne, y->str) : NULL;
}

/* The series matching one matcher; caller owns the result. */
static roaring_bitmap_t *select_one(postings_index *p, const matcher *m)
{
    name_entry *ne = find_name_bytes(p, m->name, m->name_len);
    if (m->type == STRATA_MATCH_EQUAL && m->value_len > 0) {
        value_entry *ve = ne ? find_value_bytes(p, ne, m->value, m->value_len) : NULL;
        return ve ? roaring_bitmap_copy(ve->refs) : roaring_bitmap_create();
    }
    /* Gather the values on the side that is cheaper to express. */
    bool invert = m->matches_empty;
    roaring_bitmap_t *acc = roaring_bitmap_create();
    if (!acc) return NULL;
    if (ne) {
        for (uint32_t k = 0; k < ne->cap; k++) {
            value_entry *ve = &ne->values[k];
            if (!ve->value) continue;
            bool match = matcher_matches(m, ve->value, ve->len);
            if (match != invert) roaring_bitmap_or_inplace(acc, ve->refs);
        }
    }
    if (!invert) return acc;
    roaring_bitmap_t *res = roaring_bitmap_andnot(p->all, acc);
    roaring_bitmap_free(acc);
    return res;
}

/* Selective matchers first: equality narrows the most and costs the least. */
static int matcher_rank(const matcher *m)
{
    if (m->type == STRATA_MATCH_EQUAL && m->value_len) return 0;
    if (m->type == STRATA_MATCH_REGEX && !m->matches_empty) return 1;
    if (m->matches_empty) return 3;
    return 2;
}

/* The series count of an equality matcher's postings list (rank 0 matchers only). */
static uint64_t eq_cardinality(postings_index *p, const matcher *m)
{
    name_entry *ne = find_name_bytes(p, m->name, m->name_len);
    value_entry *ve = ne ? find_value_bytes(p, ne, m->value, m->value_len) : NULL;
    return ve ? roaring_bitmap_get_cardinality(ve->refs) : 0;
}

int postings_select(postings_index *p, const matcher *const *ms, size_t n, roaring_bitmap_t **out,
                    char *err)
{
    const matcher *order[64];
    const matcher **ord = n <= 64 ? order : malloc(n * sizeof *ord);
    if (!ord) return STRATA_ENOMEM;
    size_t k = 0;
    for (int rank = 0; rank <= 3; rank++)
        for (size_t i = 0; i < n; i++)
            if (matcher_rank(ms[i]) == rank) ord[k++] = ms[i];

    pthread_rwlock_rdlock(&p->mu);
    /* Equality matchers in order of their postings' size: the smallest list first, so every
     * intersection after it is cheap and an empty one ends the work at once. */
    size_t n_eq = 0;
    while (n_eq < k && matcher_rank(ord[n_eq]) == 0) n_eq++;
    for (size_t i = 1; i < n_eq; i++)
        for (size_t j = i; j > 0 && eq_cardinality(p, ord[j - 1]) > eq_cardinality(p, ord[j]); j--) {
            const matcher *t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    roaring_bitmap_t *res = NULL;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        roaring_bitmap_t *b = select_one(p, ord[i]);
        if (!b) {
            rc = STRATA_ENOMEM;
            break;
        }
        if (!res) {
            res = b;
        } else {
            roaring_bitmap_and_inplace(res, b);
            roaring_bitmap_free(b);
        }
        if (roaring_bitmap_is_empty(res)) break;
    }
    if (!rc && !res) res = roaring_bitmap_copy(p->all);
    pthread_rwlock_unlock(&p->mu);
    if (ord != order) free(ord);
    if (rc) {
        roaring_bitmap_free(res);
        return strata_errf(err, rc, "out of memory selecting series");
    }
    *out = res;
    return 0;
}

static int cmp_sym_str(const void *a, const void *b)
{
    const sym *x = *(const sym *const *)a, *y = *(const sym *const *)b;
    return label_str_compare(x->str, x->len, y->str, y->len);
}

/* Symbols are recovered from interned string pointers: the string sits at sym->str. */
static const sym *sym_of(const char *str)
{
    return (const sym *)(str - offsetof(sym, str));
}

int postings_label_names(postings_index *p, const sym ***out, size_t *n)
{
    pthread_rwlock_rdlock(&p->mu);
    const sym **v = malloc((p->count + 1) * sizeof *v);
    size_t k = 0;
    if (v) {
        for (uint32_t i = 0; i < p->cap; i++)
            if (p->names[i].name && p->names[i].count) v[k++] = sym_of(p->names[i].name);
    }
    pthread_rwlock_unlock(&p->mu);
    if (!v) return STRATA_ENOMEM;
    qsort(v, k, sizeof *v, cmp_sym_str);
    *out = v;
    *n = k;
    return 0;
}

int postings_label_values(postings_index *p, const char *name, const sym ***out, size_t *n)
{
    pthread_rwlock_rdlock(&p->mu);
    name_entry *ne = find_name_bytes(p, name, (uint32_t)strlen(name));
    size_t cnt = ne ? ne->count : 0;
    const sym **v = malloc((cnt + 1) * sizeof *v);
    size_t k = 0;
    if (v && ne) {
        for (uint32_t i = 0; i < ne->cap; i++)
            if (ne->values[i].value && !roaring_bitmap_is_empty(ne->values[i].refs))
                v[k++] = sym_of(ne->values[i].value);
    }
    pthread_rwlock_unlock(&p->mu);
    if (!v) return STRATA_ENOMEM;
    qsort(v, k, sizeof *v, cmp_sym_str);
    *out = v;
    *n = k;
    return 0;
}

uint64_t postings_count(postings_index *p, const char *name, uint32_t nlen, const char *value,
                        uint32_t vlen)
{
    uint64_t n = 0;
    pthread_rwlock_rdlock(&p->mu);
    name_entry *ne = find_name_bytes(p, name, nlen);
    for (uint32_t k = 0; ne && k < ne->cap; k++) {
        value_entry *ve = &ne->values[k];
        if (ve->value && ve->len == vlen && memcmp(ve->value, value, vlen) == 0) {
            n = roaring_bitmap_get_cardinality(ve->refs);
            break;
        }
    }
    pthread_rwlock_unlock(&p->mu);
    return n;
}

int postings_walk(postings_index *p, postings_visit visit, void *ctx)
{
    pthread_rwlock_rdlock(&p->mu);
    int rc = 0;
    for (uint32_t i = 0; i < p->cap && !rc; i++) {
        name_entry *ne = &p->names[i];
        if (!ne->name) continue;
        for (uint32_t k = 0; k < ne->cap && !rc; k++) {
            value_entry *ve = &ne->values[k];
            if (!ve->value) continue;
            uint64_t n = roaring_bitmap_get_cardinality(ve->refs);
            if (n) rc = visit(ctx, ne->name, ne->len, ve->value, ve->len, n);
        }
    }
    pthread_rwlock_unlock(&p->mu);
    return rc;
}

void postings_remove(postings_index *p, uint32_t ref, const label *labels, size_t n)
{
    pthread_rwlock_wrlock(&p->mu);
    roaring_bitmap_remove(p->all, ref);
    for (size_t i = 0; i < n; i++) {
        name_entry *ne = find_name(p, labels[i].name);
        value_entry *ve = ne ? find_value(ne, labels[i].value) : NULL;
        if (ve) roaring_bitmap_remove(ve->refs, ref);
    }
    pthread_rwlock_unlock(&p->mu);
}
