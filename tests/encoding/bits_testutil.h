/*
 * bits_testutil.h: what the chunk codec tests share: a seeded generator (splitmix64, so a failing
 * round can be replayed), double <-> bit-pattern casts, and an exact-size copy of a chunk's bytes
 * (so ASan catches a decoder reading one byte past the end). Include after <cmocka.h>.
 */
#ifndef STRATA_TESTS_BITS_TESTUTIL_H
#define STRATA_TESTS_BITS_TESTUTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct rng {
    uint64_t s;
} rng;

static inline uint64_t rnd(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static inline uint64_t to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}

/* A malloc'd copy of exactly n bytes; the caller frees it. */
static inline uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    if (n) memcpy(q, p, n);
    return q;
}

#endif
