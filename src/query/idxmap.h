/*
 * idxmap.h: an open-addressing map from a non-zero 64-bit key to an index, for the evaluator's
 * per-query lookups (fill.c, info.c). Keys are hashes or packed ids chosen by the caller; callers
 * that key by a hash check equality of what they hashed themselves.
 */
#ifndef STRATA_QUERY_IDXMAP_H
#define STRATA_QUERY_IDXMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/core.h"

typedef struct idx_map {
    uint64_t *keys; /* 0: empty slot */
    size_t *vals;
    size_t cap, n;
} idx_map;

static inline size_t idx_map_home(const idx_map *m, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
}

/* Room for about n keys without growing; STRATA_ENOMEM. */
static inline int idx_map_init(idx_map *m, size_t n)
{
    m->cap = 16;
    while (m->cap < n * 2)
        m->cap *= 2;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = malloc(m->cap * sizeof *m->vals);
    return m->keys && m->vals ? 0 : STRATA_ENOMEM;
}

static inline void idx_map_free(idx_map *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

/* The slot of key: where it is (*found) or where it would go. */
static inline size_t idx_map_slot(const idx_map *m, uint64_t key, bool *found)
{
    size_t i = idx_map_home(m, key);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    *found = m->keys[i] == key;
    return i;
}

/* Stores key -> val in the slot idx_map_slot returned (not found), growing the map when it is
 * half full; STRATA_ENOMEM (the entry is stored either way). */
static inline int idx_map_put(idx_map *m, size_t slot, uint64_t key, size_t val)
{
    m->keys[slot] = key;
    m->vals[slot] = val;
    if (++m->n * 2 <= m->cap) return 0;
    idx_map g;
    if (idx_map_init(&g, m->cap)) return STRATA_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = idx_map_home(&g, m->keys[i]);
        while (g.keys[j])
            j = (j + 1) & (g.cap - 1);
        g.keys[j] = m->keys[i];
        g.vals[j] = m->vals[i];
    }
    g.n = m->n;
    idx_map_free(m);
    *m = g;
    return 0;
}

#endif
