/*
 * symtab.c: interned strings. Label names and values repeat across thousands of series
 * (`job`, `instance`, `region`), so the head keeps one copy of each and series point at it.
 *
 * The table is split into stripes by hash so concurrent writers creating series rarely share a
 * lock; each stripe is an open-addressing table of pointers. Symbols live as long as the table.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SYM_STRIPES 64

typedef struct sym_stripe {
    pthread_mutex_t mu;
    sym **slots;
    size_t cap; /* power of two */
    size_t count;
    size_t bytes;
} sym_stripe;

struct sym_table {
    sym_stripe stripes[SYM_STRIPES];
};

sym_table *sym_table_new(void)
{
    sym_table *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    for (int i = 0; i < SYM_STRIPES; i++) pthread_mutex_init(&t->stripes[i].mu, NULL);
    return t;
}

void sym_table_free(sym_table *t)
{
    if (!t) return;
    for (int i = 0; i < SYM_STRIPES; i++) {
        sym_stripe *s = &t->stripes[i];
        for (size_t k = 0; k < s->cap; k++) free(s->slots[k]);
        free(s->slots);
        pthread_mutex_destroy(&s->mu);
    }
    free(t);
}

static int stripe_grow(sym_stripe *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 64;
    sym **slots = calloc(ncap, sizeof *slots);
    if (!slots) return STRATA_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        sym *y = s->slots[i];
        if (!y) continue;
        size_t k = (y->hash >> 6) & (ncap - 1);
        while (slots[k]) k = (k + 1) & (ncap - 1);
        slots[k] = y;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = ncap;
    return 0;
}

const sym *sym_intern(sym_table *t, const char *str, uint32_t len)
{
    uint32_t h = (uint32_t)XXH3_64bits(str, len);
    sym_stripe *s = &t->stripes[h & (SYM_STRIPES - 1)];
    pthread_mutex_lock(&s->mu);
    if (s->cap) {
        size_t k = (h >> 6) & (s->cap - 1);
        for (sym *y; (y = s->slots[k]); k = (k + 1) & (s->cap - 1)) {
            if (y->hash == h && y->len == len && memcmp(y->str, str, len) == 0) {
                pthread_mutex_unlock(&s->mu);
                return y;
            }
        }
    }
    if ((s->count + 1) * 4 > s->cap * 3 && stripe_grow(s)) {
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    sym *y = malloc(sizeof *y + len + 1);
    if (!y) {
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    y->len = len;
    y->hash = h;
    memcpy(y->str, str, len);
    y->str[len] = '\0';
    size_t k = (h >> 6) & (s->cap - 1);
    while (s->slots[k]) k = (k + 1) & (s->cap - 1);
    s->slots[k] = y;
    s->count++;
    s->bytes += sizeof *y + len + 1;
    pthread_mutex_unlock(&s->mu);
    return y;
}

const sym *sym_lookup(sym_table *t, const char *str, uint32_t len)
{
    uint32_t h = (uint32_t)XXH3_64bits(str, len);
    sym_stripe *s = &t->stripes[h & (SYM_STRIPES - 1)];
    const sym *found = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->cap) {
        size_t k = (h >> 6) & (s->cap - 1);
        for (sym *y; (y = s->slots[k]); k = (k + 1) & (s->cap - 1)) {
            if (y->hash == h && y->len == len && memcmp(y->str, str, len) == 0) {
                found = y;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

size_t sym_table_count(sym_table *t)
{
    size_t n = 0;
    for (int i = 0; i < SYM_STRIPES; i++) {
        pthread_mutex_lock(&t->stripes[i].mu);
        n += t->stripes[i].count;
        pthread_mutex_unlock(&t->stripes[i].mu);
    }
    return n;
}

size_t sym_table_bytes(sym_table *t)
{
    size_t n = 0;
    for (int i = 0; i < SYM_STRIPES; i++) {
        pthread_mutex_lock(&t->stripes[i].mu);
        n += t->stripes[i].bytes + t->stripes[i].cap * sizeof(sym *);
        pthread_mutex_unlock(&t->stripes[i].mu);
    }
    return n;
}
