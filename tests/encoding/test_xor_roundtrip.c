/*
 * test_xor_roundtrip.c: the XOR chunk against hand-derived bytes, random and adversarial data,
 * and truncated input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "encoding/encoding.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static void roundtrip(const strata_sample *in, size_t n)
{
    xor_appender a;
    assert_int_equal(xor_appender_init(&a), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(xor_append(&a, in[i].t, in[i].v), 0);
        /* After every append the bytes are a whole, decodable chunk. */
        if (i % 17 == 0 || i == n - 1) {
            size_t len, got;
            const uint8_t *b = xor_appender_bytes(&a, &len);
            strata_sample *out = malloc((i + 1) * sizeof *out);
            assert_int_equal(xor_decode(b, len, out, i + 1, &got), 0);
            assert_int_equal(got, i + 1);
            for (size_t k = 0; k <= i; k++) {
                assert_int_equal(out[k].t, in[k].t);
                assert_memory_equal(&out[k].v, &in[k].v, 8);
            }
            free(out);
        }
    }
    assert_int_equal(xor_appender_count(&a), n);
    /* Reopening for append continues the same stream. */
    size_t len;
    const uint8_t *b = xor_appender_bytes(&a, &len);
    xor_appender r;
    assert_int_equal(xor_appender_from_bytes(&r, b, len, NULL), 0);
    size_t rlen;
    const uint8_t *rb = xor_appender_bytes(&r, &rlen);
    assert_int_equal(rlen, len);
    assert_memory_equal(rb, b, len);
    xor_appender_free(&r);
    xor_appender_free(&a);
}

/* Derived by hand from the format: samples (1000, 1.0), (2000, 1.0), (3000, 2.0). */
static void test_golden_bytes(void **state)
{
    (void)state;
    xor_appender a;
    assert_int_equal(xor_appender_init(&a), 0);
    xor_append(&a, 1000, 1.0);
    xor_append(&a, 2000, 1.0);
    xor_append(&a, 3000, 2.0);
    /* header 00 03; varint(zigzag 1000 = 2000) = d0 0f; 1.0 = 3f f0 00 00 00 00 00 00;
     * uvarint(1000) = e8 07; value same: bit 0; dod 0: bit 0;
     * 2.0 ^ 1.0 = 0x7ff0000000000000: lead 1, trail 52, sig 11: '1' '1' 00001 001011 11111111111
     * bits after e8 07: 0 | 0 | 1 1 00001 001011 11111111111
     *                -> 00110000 10010111 11111111 11(000000)
     */
    const uint8_t want[] = {0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
                            0xe8, 0x07, 0x30, 0x97, 0xff, 0xc0};
    size_t len;
    const uint8_t *b = xor_appender_bytes(&a, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(b, want, sizeof want);
    xor_appender_free(&a);
}

static void test_regular_series(void **state)
{
    (void)state;
    strata_sample s[120];
    for (int i = 0; i < 120; i++) s[i] = (strata_sample){1700000000000 + i * 15000, i * 0.25};
    roundtrip(s, 120);
    xor_appender a;
    xor_appender_init(&a);
    for (int i = 0; i < 120; i++) xor_append(&a, s[i].t, 42.0);
    size_t len;
    xor_appender_bytes(&a, &len);
    /* Constant value, regular timestamps: 2 bits a sample after the first two (48 bytes). */
    assert_int_equal(len, 48);
    xor_appender_free(&a);
}

static void test_adversarial_values(void **state)
{
    (void)state;
    const uint64_t bits[] = {0x7ff0000000000002ull, 0x7ff8000000000001ull, 0xfff8000000000000ull,
                             0x8000000000000000ull, 0x0000000000000001ull, 0x7ff0000000000000ull,
                             0xfff0000000000000ull, 0x7fefffffffffffffull, 0,
                             0xffffffffffffffffull, 0x5555555555555555ull, 0xaaaaaaaaaaaaaaaaull};
    size_t nb = sizeof bits / sizeof bits[0];
    strata_sample s[200];
    for (size_t i = 0; i < 200; i++)
        s[i] = (strata_sample){(int64_t)i * 1000, from_bits(bits[(i * 7) % nb])};
    roundtrip(s, 200);
}

static void test_timestamp_edges(void **state)
{
    (void)state;
    /* Deltas of delta at each bucket edge, equal timestamps, huge and negative values. */
    const int64_t dods[] = {0,      1,       -1,      8191,    8192,    -8191,  -8192,
                            65535,  65536,   -65535,  -65536,  524287,  524288, -524287,
                            -524288, 1 << 30, -(1 << 30), 0,      0,       0};
    strata_sample s[64];
    int64_t t = -5000000000000, delta = 100000;
    size_t n = 0;
    s[n++] = (strata_sample){t, 1};
    t += delta;
    s[n++] = (strata_sample){t, 2};
    for (size_t i = 0; i < sizeof dods / sizeof dods[0]; i++) {
        delta += dods[i];
        if (delta < 0) delta = 0;
        t += delta;
        s[n++] = (strata_sample){t, (double)i};
    }
    s[n] = s[n - 1]; /* equal timestamp */
    n++;
    roundtrip(s, n);
    strata_sample big[3] = {{INT64_MIN / 2, 1}, {0, 2}, {INT64_MAX / 2, 3}};
    roundtrip(big, 3);
}

static void test_random_property(void **state)
{
    (void)state;
    for (int round = 0; round < 2000; round++) {
        size_t n = 1 + rnd() % 300;
        strata_sample *s = malloc(n * sizeof *s);
        int64_t t = (int64_t)(rnd() % 2000000000000ull) - 1000000000000;
        int mode = (int)(rnd() % 4);
        double v = (double)(rnd() % 1000);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            t += mode == 0 ? 15000 : mode == 1 ? (int64_t)(r % 30000) : (int64_t)(r % 3);
            if (mode == 3) v = from_bits(rnd());
            else v += (double)(r % 7) * 0.01;
            s[i] = (strata_sample){t, v};
        }
        roundtrip(s, n);
        free(s);
    }
}

static void test_truncated_and_garbage(void **state)
{
    (void)state;
    xor_appender a;
    xor_appender_init(&a);
    for (int i = 0; i < 120; i++) xor_append(&a, i * 15000 + (i % 3), sin(i) * 1e6);
    size_t len;
    const uint8_t *b = xor_appender_bytes(&a, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan catches any over-read */
        memcpy(copy, b, cut);
        strata_sample out[120];
        size_t n;
        int rc = xor_decode(copy, cut, out, 120, &n);
        assert_true(rc == STRATA_ECORRUPT);
        free(copy);
    }
    for (int round = 0; round < 5000; round++) {
        size_t n = rnd() % 64;
        uint8_t *g = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++) g[i] = (uint8_t)rnd();
        xor_iter it;
        if (xor_iter_init(&it, g, n) == 0) {
            int k = 0, rc;
            while ((rc = xor_iter_next(&it)) == 1 && k < 200) k++;
            assert_true(rc == 1 || rc == 0 || rc == STRATA_ECORRUPT);
        }
        free(g);
    }
    xor_appender_free(&a);
}

static void test_seek(void **state)
{
    (void)state;
    xor_appender a;
    xor_appender_init(&a);
    for (int i = 0; i < 100; i++) xor_append(&a, i * 10, i);
    size_t len;
    const uint8_t *b = xor_appender_bytes(&a, &len);
    xor_iter it;
    xor_iter_init(&it, b, len);
    assert_int_equal(xor_iter_seek(&it, 255), 1);
    int64_t t;
    double v;
    xor_iter_at(&it, &t, &v);
    assert_int_equal(t, 260);
    assert_int_equal(xor_iter_seek(&it, 100), 1); /* never goes backwards */
    xor_iter_at(&it, &t, &v);
    assert_int_equal(t, 260);
    assert_int_equal(xor_iter_seek(&it, 5000), 0);
    xor_appender_free(&a);
    assert_non_null(chunk_codec_get(CHUNK_ENC_XOR));
    assert_null(chunk_codec_get((chunk_encoding)99));
}

static void test_varints(void **state)
{
    (void)state;
    const int64_t vals[] = {0, 1, -1, 63, -64, 64, 1LL << 40, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[VARINT_MAX_LEN];
        size_t n = varint_put_i64(b, vals[i]);
        const uint8_t *p = b;
        int64_t got;
        assert_int_equal(varint_get_i64(&p, b + n, &got), 0);
        assert_int_equal(got, vals[i]);
        assert_ptr_equal(p, b + n);
        p = b;
        if (n > 1) assert_int_equal(varint_get_i64(&p, b + n - 1, &got), -1);
    }
    uint8_t over[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0};
    const uint8_t *p = over;
    uint64_t u;
    assert_int_equal(varint_get_u64(&p, over + 11, &u), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_bytes),      cmocka_unit_test(test_regular_series),
        cmocka_unit_test(test_adversarial_values), cmocka_unit_test(test_timestamp_edges),
        cmocka_unit_test(test_random_property),   cmocka_unit_test(test_truncated_and_garbage),
        cmocka_unit_test(test_seek),              cmocka_unit_test(test_varints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
