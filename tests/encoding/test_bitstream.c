/*
 * test_bitstream.c: big-endian helpers, Go-compatible varints and the MSB-first bit streams,
 * against known byte sequences and a bit-at-a-time reference model, with every read done from an
 * exact-size heap copy so that AddressSanitizer sees any over-read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "encoding/encoding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rng {
    uint64_t s;
} rng;

/* splitmix64: a seeded, reproducible stream for the property tests. */
static uint64_t rnd(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
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

static void test_big_endian(void **state)
{
    (void)state;
    uint8_t b[8];
    be16_put(b, 0x1234);
    assert_int_equal(b[0], 0x12);
    assert_int_equal(b[1], 0x34);
    assert_int_equal(be16_get(b), 0x1234);
    be32_put(b, 0x89abcdefu);
    const uint8_t w32[] = {0x89, 0xab, 0xcd, 0xef};
    assert_memory_equal(b, w32, 4);
    assert_int_equal(be32_get(b), 0x89abcdefu);
    be64_put(b, 0x0102030405060708ull);
    const uint8_t w64[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(b, w64, 8);
    assert_true(be64_get(b) == 0x0102030405060708ull);
}

/* Encodings as Go's binary.PutUvarint / PutVarint produce them. */
static void test_varint_known_bytes(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        uint8_t len;
        uint8_t bytes[10];
    } u[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {127, 1, {0x7f}},
        {128, 2, {0x80, 0x01}},
        {300, 2, {0xac, 0x02}},
        {16383, 2, {0xff, 0x7f}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        uint8_t b[VARINT_MAX_LEN];
        assert_int_equal(varint_put_u64(b, u[i].v), u[i].len);
        assert_int_equal(varint_len_u64(u[i].v), u[i].len);
        assert_memory_equal(b, u[i].bytes, u[i].len);
        uint8_t *exact = dup_exact(b, u[i].len);
        const uint8_t *p = exact;
        uint64_t got;
        assert_int_equal(varint_get_u64(&p, exact + u[i].len, &got), 0);
        assert_true(got == u[i].v);
        assert_ptr_equal(p, exact + u[i].len);
        free(exact);
    }
    static const struct {
        int64_t v;
        uint8_t len;
        uint8_t bytes[10];
    } s[] = {
        {0, 1, {0x00}},
        {-1, 1, {0x01}},
        {1, 1, {0x02}},
        {-64, 1, {0x7f}},
        {64, 2, {0x80, 0x01}},
        {1000, 2, {0xd0, 0x0f}},
        {INT64_MAX, 10, {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
        {INT64_MIN, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        uint8_t b[VARINT_MAX_LEN];
        assert_int_equal(varint_put_i64(b, s[i].v), s[i].len);
        assert_memory_equal(b, s[i].bytes, s[i].len);
        const uint8_t *p = b;
        int64_t got;
        assert_int_equal(varint_get_i64(&p, b + s[i].len, &got), 0);
        assert_true(got == s[i].v);
        assert_true(varint_unzigzag(varint_zigzag(s[i].v)) == s[i].v);
    }
}

static void test_varint_malformed(void **state)
{
    (void)state;
    uint8_t b[VARINT_MAX_LEN];
    size_t n = varint_put_u64(b, UINT64_MAX / 3);
    /* Every truncation fails and leaves the cursor where it was. */
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *exact = dup_exact(b, cut);
        const uint8_t *p = exact;
        uint64_t v = 42;
        assert_int_equal(varint_get_u64(&p, exact + cut, &v), STRATA_ECORRUPT);
        assert_ptr_equal(p, exact);
        assert_true(v == 42);
        int64_t sv;
        assert_int_equal(varint_get_i64(&p, exact + cut, &sv), STRATA_ECORRUPT);
        free(exact);
    }
    /* A 10th byte above 1 overflows 64 bits; so does an 11th byte. */
    const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t *p = over;
    uint64_t v;
    assert_int_equal(varint_get_u64(&p, over + sizeof over, &v), STRATA_ECORRUPT);
    const uint8_t longer[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    p = longer;
    assert_int_equal(varint_get_u64(&p, longer + sizeof longer, &v), STRATA_ECORRUPT);
    /* Non-minimal encodings are accepted, as Go accepts them. */
    const uint8_t padded[] = {0x81, 0x80, 0x00};
    p = padded;
    assert_int_equal(varint_get_u64(&p, padded + 3, &v), 0);
    assert_true(v == 1);
}

static void test_varint_random(void **state)
{
    (void)state;
    rng r = {1};
    for (int i = 0; i < 100000; i++) {
        uint64_t v = rnd(&r) >> (rnd(&r) % 64);
        uint8_t b[VARINT_MAX_LEN];
        size_t n = varint_put_u64(b, v);
        assert_int_equal(n, varint_len_u64(v));
        const uint8_t *p = b;
        uint64_t got;
        assert_int_equal(varint_get_u64(&p, b + n, &got), 0);
        assert_true(got == v);
        int64_t sv = (int64_t)v * ((i & 1) ? -1 : 1), sgot;
        n = varint_put_i64(b, sv);
        p = b;
        assert_int_equal(varint_get_i64(&p, b + n, &sgot), 0);
        assert_true(sgot == sv);
    }
}

/* Hand-derived: '1', '010', 0xabc in 12 bits, 64 one bits, '0'. */
static void test_bit_writer_known_bytes(void **state)
{
    (void)state;
    bit_writer w;
    assert_int_equal(bit_writer_init(&w, 0), 0);
    size_t len;
    bit_writer_bytes(&w, &len);
    assert_int_equal(len, 0);
    assert_int_equal(bit_write(&w, 1, 1), 0);
    assert_int_equal(bit_write(&w, 0xfa, 3), 0); /* only the low 3 bits, 010, count */
    assert_int_equal(bit_write(&w, 0xabc, 12), 0);
    assert_int_equal(bit_write(&w, UINT64_MAX, 64), 0);
    assert_int_equal(bit_write(&w, 0, 1), 0);
    assert_int_equal(bit_write(&w, 0, 0), 0);
    assert_int_equal(bit_write(&w, 0, 65), STRATA_EINVAL);
    /* 1010 1010 1011 1100 | 64 ones | 0 then padding */
    const uint8_t want[] = {0xaa, 0xbc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    const uint8_t *b = bit_writer_bytes(&w, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(b, want, sizeof want);
    assert_int_equal(w.nbits, 81);
    bit_writer_free(&w);
    bit_writer_free(&w); /* idempotent */
    assert_null(w.data);
}

/* A bit-at-a-time model of the stream, written from the definition. */
typedef struct model {
    uint8_t bytes[4096];
    size_t nbits;
} model;

static void model_write(model *m, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        unsigned bit = (unsigned)(v >> (n - 1 - i)) & 1;
        if (bit) m->bytes[m->nbits / 8] |= (uint8_t)(0x80 >> (m->nbits % 8));
        m->nbits++;
    }
}

static void test_bit_stream_random(void **state)
{
    (void)state;
    rng r = {7};
    for (int round = 0; round < 500; round++) {
        model *m = calloc(1, sizeof *m);
        assert_non_null(m);
        bit_writer w;
        assert_int_equal(bit_writer_init(&w, (uint32_t)(rnd(&r) % 3)), 0);
        unsigned widths[600];
        uint64_t vals[600];
        size_t k = 0;
        size_t nwrites = rnd(&r) % 600;
        for (size_t i = 0; i < nwrites && m->nbits < 4096 * 8 - 64; i++) {
            unsigned n = (unsigned)(rnd(&r) % 65);
            uint64_t v = rnd(&r);
            assert_int_equal(bit_write(&w, v, n), 0);
            model_write(m, v, n);
            widths[k] = n;
            vals[k++] = n == 64 ? v : v & ((1ull << n) - 1);
            /* Geometric growth: never more than twice what is needed plus the slack. */
            assert_true(w.cap <= 2 * ((w.nbits + 7) / 8 + 9) || w.cap <= 32);
        }
        size_t len;
        const uint8_t *b = bit_writer_bytes(&w, &len);
        assert_int_equal(len, (m->nbits + 7) / 8);
        if (len) assert_memory_equal(b, m->bytes, len);
        /* Read it back from an exact-size copy. */
        uint8_t *exact = dup_exact(b, len);
        bit_reader rd;
        bit_reader_init(&rd, exact, len);
        for (size_t i = 0; i < k; i++) {
            uint64_t got;
            assert_int_equal(bit_read(&rd, widths[i], &got), 0);
            assert_true(got == vals[i]);
        }
        assert_int_equal(bit_reader_remaining(&rd), len * 8 - m->nbits);
        free(exact);
        bit_writer_free(&w);
        free(m);
    }
}

static void test_bit_reader_exhaustion(void **state)
{
    (void)state;
    const uint8_t src[] = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
    for (size_t len = 0; len <= sizeof src; len++) {
        uint8_t *exact = dup_exact(src, len);
        for (unsigned start = 0; start <= len * 8; start++) {
            for (unsigned n = 0; n <= 64; n++) {
                bit_reader r;
                bit_reader_init(&r, exact, len);
                uint64_t skip = 0, got = 0;
                /* Position the reader at start with reads of at most 64 bits. */
                unsigned left = start;
                while (left) {
                    unsigned step = left > 64 ? 64 : left;
                    assert_int_equal(bit_read(&r, step, &skip), 0);
                    left -= step;
                }
                int rc = bit_read(&r, n, &got);
                if (start + n > len * 8) {
                    assert_int_equal(rc, STRATA_ECORRUPT);
                    assert_int_equal(r.pos, start); /* nothing consumed */
                } else {
                    assert_int_equal(rc, 0);
                    uint64_t want = 0;
                    for (unsigned i = 0; i < n; i++)
                        want = want << 1 | ((src[(start + i) / 8] >> (7 - (start + i) % 8)) & 1);
                    assert_true(got == want);
                    assert_int_equal(bit_reader_remaining(&r), len * 8 - start - n);
                }
            }
        }
        free(exact);
    }
    bit_reader r;
    bit_reader_init(&r, NULL, 5);
    uint64_t v;
    assert_int_equal(bit_reader_remaining(&r), 0);
    assert_int_equal(bit_read(&r, 1, &v), STRATA_ECORRUPT);
    assert_int_equal(bit_read(&r, 65, &v), STRATA_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_endian),
        cmocka_unit_test(test_varint_known_bytes),
        cmocka_unit_test(test_varint_malformed),
        cmocka_unit_test(test_varint_random),
        cmocka_unit_test(test_bit_writer_known_bytes),
        cmocka_unit_test(test_bit_stream_random),
        cmocka_unit_test(test_bit_reader_exhaustion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
