/*
 * test_zstd_symtab.c: the zstd region pass and the front-coded symbol table: round trips on
 * empty, small and large inputs, every truncation, corrupt bytes, limits, and lookups of every
 * string and of strings that are absent. Inputs are exact-size heap copies for AddressSanitizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "encoding/encoding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    assert_non_null(q);
    if (n) memcpy(q, p, n);
    return q;
}

static void test_zstd_roundtrip(void **state)
{
    (void)state;
    uint64_t seed = 1;
    static const size_t sizes[] = {0, 1, 7, 100, 4096, 1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        uint8_t *raw = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            raw[i] = (uint8_t)(i % 3 ? rnd(&seed) % 4 : i); /* compressible, not trivially */
        uint8_t *z, *back;
        size_t zl, bl;
        char err[STRATA_ERRMSG_SIZE];
        assert_int_equal(enc_zstd_compress(raw, n, 3, &z, &zl, err), 0);
        if (n >= 4096) assert_true(zl < n);
        uint8_t *zc = dup_exact(z, zl);
        assert_int_equal(enc_zstd_decompress(zc, zl, n, &back, &bl, err), 0);
        assert_int_equal(bl, n);
        if (n) assert_memory_equal(back, raw, n);
        free(back);
        /* a limit below the raw size is refused before allocating */
        if (n) assert_int_equal(enc_zstd_decompress(zc, zl, n - 1, &back, &bl, err), STRATA_ELIMIT);
        /* every truncation and one extra byte */
        for (size_t cut = 0; cut < zl && zl < 5000; cut++) {
            uint8_t *c = dup_exact(z, cut);
            assert_int_equal(enc_zstd_decompress(c, cut, n, &back, &bl, err), STRATA_ECORRUPT);
            free(c);
        }
        uint8_t *longer = malloc(zl + 1);
        memcpy(longer, z, zl);
        longer[zl] = 0;
        assert_int_equal(enc_zstd_decompress(longer, zl + 1, n, &back, &bl, err), STRATA_ECORRUPT);
        free(longer);
        free(zc);
        free(z);
        free(raw);
    }
    uint8_t *z;
    size_t zl;
    assert_int_equal(enc_zstd_compress((const uint8_t *)"x", 1, 0, &z, &zl, NULL), STRATA_EINVAL);
    assert_int_equal(enc_zstd_compress((const uint8_t *)"x", 1, 99, &z, &zl, NULL), STRATA_EINVAL);
}

static void test_zstd_corruption(void **state)
{
    (void)state;
    uint64_t seed = 3;
    uint8_t raw[3000];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(rnd(&seed) % 16);
    uint8_t *z;
    size_t zl;
    assert_int_equal(enc_zstd_compress(raw, sizeof raw, 3, &z, &zl, NULL), 0);
    for (int round = 0; round < 2000; round++) {
        uint8_t *c = dup_exact(z, zl);
        c[rnd(&seed) % zl] ^= (uint8_t)(1u << (rnd(&seed) % 8));
        uint8_t *back = NULL;
        size_t bl;
        int rc = enc_zstd_decompress(c, zl, 1 << 20, &back, &bl, NULL);
        assert_true(rc == 0 || rc == STRATA_ECORRUPT || rc == STRATA_ELIMIT);
        /* zstd frames carry no checksum by default: a flip may decode to other bytes, but
         * never to a different length */
        if (rc == 0) assert_int_equal(bl, sizeof raw);
        free(back);
        free(c);
    }
    free(z);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Label-like strings: names, hosts, bucket bounds, and a few edge cases. */
static size_t make_symbols(char ***out)
{
    size_t cap = 2000, n = 0;
    char **s = malloc(cap * sizeof *s);
    static const char *const fixed[] = {"", "__name__", "a", "ab", "abc", "b", "\xff", "\xff\xff"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        s[n++] = strdup(fixed[i]);
    for (int h = 0; h < 500; h++) {
        char dst[64];
        snprintf(dst, sizeof dst, "host-%05d:9100", h);
        s[n++] = strdup(dst);
        snprintf(dst, sizeof dst, "node_metric_%d_total", h * 7);
        s[n++] = strdup(dst);
    }
    char *longs = malloc(70000);
    memset(longs, 'z', 69999);
    longs[69999] = 0;
    s[n++] = longs;
    qsort(s, n, sizeof *s, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || strcmp(s[u - 1], s[i]))
            s[u++] = s[i];
        else
            free(s[i]);
    *out = s;
    return u;
}

static void test_symtab_roundtrip(void **state)
{
    (void)state;
    char **s;
    size_t n = make_symbols(&s);
    uint32_t *lens = malloc(n * sizeof *lens);
    size_t plain = 0;
    for (size_t i = 0; i < n; i++) {
        lens[i] = (uint32_t)strlen(s[i]);
        plain += varint_len_u64(lens[i]) + lens[i];
    }
    static const uint32_t restarts[] = {1, 2, 16, 256};
    for (size_t r = 0; r < 4; r++) {
        uint8_t *enc;
        size_t len;
        char err[STRATA_ERRMSG_SIZE];
        assert_int_equal(
            symtab_encode((const char *const *)s, lens, n, restarts[r], &enc, &len, err), 0);
        if (restarts[r] == 16) assert_true(len < plain);
        uint8_t *c = dup_exact(enc, len);
        symtab t;
        assert_int_equal(symtab_open(&t, c, len, err), 0);
        assert_int_equal(t.n, n);
        assert_int_equal(t.max_len, 69999);
        char *dst = malloc(t.max_len);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t l, idx;
            assert_int_equal(symtab_get(&t, i, dst, t.max_len, &l), 0);
            assert_int_equal(l, lens[i]);
            assert_memory_equal(dst, s[i], l);
            assert_int_equal(symtab_find(&t, s[i], lens[i], &idx), 0);
            assert_int_equal(idx, i);
        }
        uint32_t l, idx;
        assert_int_equal(symtab_get(&t, (uint32_t)n, dst, t.max_len, &l), STRATA_ENOTFOUND);
        uint32_t longest = 0;
        for (uint32_t i = 0; i < n; i++)
            if (lens[i] == 69999) longest = i;
        assert_int_equal(symtab_get(&t, longest, dst, 3, &l), STRATA_ELIMIT);
        assert_int_equal(symtab_find(&t, "host-00001:910", 14, &idx), STRATA_ENOTFOUND);
        assert_int_equal(symtab_find(&t, "host-00001:91000", 16, &idx), STRATA_ENOTFOUND);
        assert_int_equal(symtab_find(&t, "\x01", 1, &idx), STRATA_ENOTFOUND);
        assert_int_equal(symtab_find(&t, "\xff\xff\xff", 3, &idx), STRATA_ENOTFOUND);
        /* every truncation and an extra byte are corrupt (sampled: the table is large) */
        for (size_t cut = 0; cut < len; cut += 1 + cut / 8) {
            uint8_t *p = dup_exact(enc, cut);
            symtab u;
            assert_int_equal(symtab_open(&u, p, cut, err), STRATA_ECORRUPT);
            free(p);
        }
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, enc, len);
        longer[len] = 0;
        symtab u;
        assert_int_equal(symtab_open(&u, longer, len + 1, err), STRATA_ECORRUPT);
        free(longer);
        free(dst);
        free(c);
        free(enc);
    }
    /* unsorted and duplicate input is refused */
    const char *bad[] = {"b", "a"};
    uint32_t bl[] = {1, 1};
    uint8_t *enc;
    size_t len;
    assert_int_equal(symtab_encode(bad, bl, 2, 0, &enc, &len, NULL), STRATA_EINVAL);
    const char *dup[] = {"a", "a"};
    assert_int_equal(symtab_encode(dup, bl, 2, 0, &enc, &len, NULL), STRATA_EINVAL);
    assert_int_equal(symtab_encode(dup, bl, 1, 300, &enc, &len, NULL), STRATA_EINVAL);
    /* empty table */
    assert_int_equal(symtab_encode(NULL, NULL, 0, 0, &enc, &len, NULL), 0);
    symtab t;
    uint32_t idx;
    assert_int_equal(symtab_open(&t, enc, len, NULL), 0);
    assert_int_equal(symtab_find(&t, "a", 1, &idx), STRATA_ENOTFOUND);
    free(enc);
    for (size_t i = 0; i < n; i++)
        free(s[i]);
    free(s);
    free(lens);
}

static void test_symtab_corruption(void **state)
{
    (void)state;
    const char *syms[] = {"alpha", "alphabet", "beta", "betamax", "gamma", "zeta", "zetas"};
    uint32_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = (uint32_t)strlen(syms[i]);
    uint8_t *enc;
    size_t len;
    assert_int_equal(symtab_encode(syms, lens, 7, 2, &enc, &len, NULL), 0);
    uint64_t seed = 9;
    for (int round = 0; round < 5000; round++) {
        uint8_t *c = dup_exact(enc, len);
        int flips = 1 + (int)(rnd(&seed) % 3);
        for (int f = 0; f < flips; f++)
            c[rnd(&seed) % len] ^= (uint8_t)(1u << (rnd(&seed) % 8));
        symtab t;
        int rc = symtab_open(&t, c, len, NULL);
        assert_true(rc == 0 || rc == STRATA_ECORRUPT);
        if (rc == 0) {
            /* whatever it holds is readable and sorted */
            char dst[64], prev[64];
            uint32_t l, pl = 0;
            for (uint32_t i = 0; i < t.n; i++) {
                assert_int_equal(symtab_get(&t, i, dst, sizeof dst, &l), 0);
                uint32_t idx;
                assert_int_equal(symtab_find(&t, dst, l, &idx), 0);
                assert_int_equal(idx, i);
                if (i) assert_true(memcmp(prev, dst, pl < l ? pl : l) <= 0);
                memcpy(prev, dst, l);
                pl = l;
            }
        }
        free(c);
    }
    free(enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zstd_roundtrip),
        cmocka_unit_test(test_zstd_corruption),
        cmocka_unit_test(test_symtab_roundtrip),
        cmocka_unit_test(test_symtab_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
