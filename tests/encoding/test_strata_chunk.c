/*
 * test_strata_chunk.c: the adaptive Strata chunk. Every timestamp codec and every value codec,
 * forced one pair at a time and chosen by the selector, must give back every sample bit for bit
 * on random and adversarial data: NaN payloads (the stale marker among them), -0.0, infinities,
 * subnormals, extreme timestamps, every bit-packing width from 0 to 64, every delta-of-delta
 * bucket edge and batch-boundary sizes. Every truncated prefix of a valid chunk must be
 * STRATA_ECORRUPT, and corrupted chunks must never crash (inputs are exact-size heap copies, so
 * AddressSanitizer sees any over-read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "encoding/encoding.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bits_testutil.h"

static const uint64_t special_bits[] = {
    0x7ff0000000000002ull, /* Prometheus' stale marker */
    0x7ff8000000000001ull, /* the NaN Prometheus returns for 0/0 */
    0x7ff8000000000000ull, 0xfff8000000000000ull, 0x7fffffffffffffffull,
    0xffffffffffffffffull, 0x7ff0000000000001ull, /* signalling NaN, smallest payload */
    0x7ff0000000000000ull,                        /* +Inf */
    0xfff0000000000000ull,                        /* -Inf */
    0x8000000000000000ull,                        /* -0.0 */
    0x0000000000000000ull, 0x0000000000000001ull, /* smallest subnormal */
    0x800fffffffffffffull,                        /* largest negative subnormal */
    0x0010000000000000ull,                        /* DBL_MIN */
    0x7fefffffffffffffull,                        /* DBL_MAX */
    0xffefffffffffffffull, 0x3ff0000000000000ull, 0x43e0000000000000ull, /* 2^63 */
    0xc3e0000000000000ull,                                               /* -2^63 */
    0x4340000000000000ull,                                               /* 2^53 */
    0x4340000000000001ull,
};
#define N_SPECIAL (sizeof special_bits / sizeof special_bits[0])

enum { V_KINDS = 12, T_KINDS = 8 };

/* Values of one kind; w picks a bit width for the width-edge kind. */
static void gen_values(rng *r, int kind, strata_sample *s, size_t n, unsigned w)
{
    double walk = (double)(rnd(r) % 1000);
    uint64_t count = rnd(r) % 100000;
    uint64_t pool[4] = {rnd(r), rnd(r), rnd(r) & ~0xffffull, rnd(r)};
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        switch (kind) {
        case 0: /* any bit pattern */
            v = from_bits(rnd(r));
            break;
        case 1: /* special values, mixed with ordinary ones */
            v = rnd(r) % 3 ? from_bits(special_bits[rnd(r) % N_SPECIAL]) : (double)(rnd(r) % 7);
            break;
        case 2: /* integer counter */
            count += rnd(r) % 5000;
            v = (double)count;
            break;
        case 3: /* gauge with two decimals */
            walk += (double)((int)(rnd(r) % 200) - 100);
            v = walk / 100.0;
            break;
        case 4: /* constant */
            v = 42.5;
            break;
        case 5: /* long runs */
            if (rnd(r) % 20 == 0) walk = (double)(rnd(r) % 10);
            v = walk;
            break;
        case 6: /* full-precision noisy gauge */
            walk += (from_bits((rnd(r) >> 12) | 0x3ff0000000000000ull) - 1.5) * 0.37;
            v = walk;
            break;
        case 7: /* decimals with special values as exceptions */
            v = rnd(r) % 8 ? (double)(int64_t)(rnd(r) % 100000 - 50000) / 1000.0
                           : from_bits(special_bits[rnd(r) % N_SPECIAL]);
            break;
        case 8: /* integers at and past the int64 range, as doubles */
            v = (double)(int64_t)(rnd(r) >> (rnd(r) % 3)) * (rnd(r) % 2 ? 1 : -1e3);
            break;
        case 9: /* a few repeating patterns with trailing zeros (Chimp's back references) */
            v = from_bits(pool[rnd(r) % 4]);
            break;
        case 10: /* integers alternating 0 and 2^w - 1: the bit-packer at width w */
            v = (i & 1) ? (double)((1ull << w) - 1) : 0.0;
            break;
        default: /* tiny and huge magnitudes */
            v = ldexp((double)(rnd(r) % 1000 + 1), (int)(rnd(r) % 2000) - 1100);
            break;
        }
        s[i].v = v;
    }
}

static const int64_t dod_edges[] = {
    63,        64,       -64,           -65,     8191,       8192,
    -8192,     -8193,    (1 << 23) - 1, 1 << 23, -(1 << 23), -(1 << 23) - 1,
    INT64_MAX, INT64_MIN};

static void gen_times(rng *r, int kind, strata_sample *s, size_t n, unsigned w)
{
    int64_t t = (int64_t)(rnd(r) % 2000000000000ull);
    uint64_t u = (uint64_t)t, d = 15000;
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: /* perfectly regular */
            s[i].t = t + (int64_t)i * 15000;
            break;
        case 1: /* scrape jitter of a few milliseconds */
            s[i].t = t + (int64_t)i * 15000 - (int64_t)(rnd(r) % 3);
            break;
        case 2: /* regular with missed scrapes */
            if (i && rnd(r) % 10 == 0) u += 15000;
            s[i].t = (int64_t)(u += 15000);
            break;
        case 3: /* increasing, random gaps */
            s[i].t = (int64_t)(u += rnd(r) % 100000);
            break;
        case 4: /* anything at all */
            s[i].t = (int64_t)rnd(r);
            break;
        case 5: /* the delta-of-delta bucket edges */
            d += (uint64_t)dod_edges[rnd(r) % (sizeof dod_edges / sizeof dod_edges[0])];
            s[i].t = (int64_t)(u += d);
            break;
        case 6: /* deltas alternating 15000 and 15000 + 2^w - 1: the bit-packer at width w */
            u += 15000 + ((i & 1) ? (w == 64 ? ~0ull : (1ull << w) - 1) : 0);
            s[i].t = (int64_t)u;
            break;
        default: /* extremes */
            s[i].t = (i & 1) ? INT64_MAX - (int64_t)i : INT64_MIN + (int64_t)i;
            break;
        }
    }
}

static void assert_same(const strata_sample *got, const strata_sample *want, size_t n,
                        const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (got[i].t != want[i].t || to_bits(got[i].v) != to_bits(want[i].v))
            fail_msg("%s: sample %zu of %zu: got (%lld, %016llx), want (%lld, %016llx)", what, i, n,
                     (long long)got[i].t, (unsigned long long)to_bits(got[i].v),
                     (long long)want[i].t, (unsigned long long)to_bits(want[i].v));
}

/* Decodes a chunk three ways (whole, stc_iter, chunk_iter) and compares with want. */
static void check_chunk(const uint8_t *chunk, size_t len, const strata_sample *want, size_t n,
                        const char *what)
{
    uint8_t *c = dup_exact(chunk, len);
    strata_sample *got = calloc(n ? n : 1, sizeof *got);
    assert_non_null(got);
    size_t k = 0;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = stc_decode(c, len, got, n, &k, err);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            print_message("%lld %016llx\n", (long long)want[i].t,
                          (unsigned long long)to_bits(want[i].v));
        for (size_t i = 0; i < len; i++)
            print_message("%02x", c[i]);
        fail_msg("%s: decode: %d %s", what, rc, err);
    }
    assert_int_equal(k, n);
    assert_same(got, want, n, what);

    const chunk_codec *codec = chunk_codec_get(CHUNK_ENC_STRATA);
    assert_non_null(codec);
    uint32_t cnt = 0;
    assert_int_equal(codec->count(c, len, &cnt), 0);
    assert_int_equal(cnt, n);

    chunk_iter it;
    assert_int_equal(chunk_iter_init(&it, CHUNK_ENC_STRATA, c, len), 0);
    size_t i = 0;
    while ((rc = chunk_iter_next(&it)) == 1) {
        assert_true(i < n);
        chunk_iter_at(&it, &got[i].t, &got[i].v);
        i++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, n);
    assert_same(got, want, n, what);
    assert_int_equal(chunk_iter_next(&it), 0); /* the end is sticky */
    free(got);
    free(c);
}

static const size_t sizes[] = {1, 2, 3, 31, 32, 33, 63, 64, 65, 120, 257};

/* Every forced pair and the selector on every kind of data, at batch-boundary sizes. */
static void test_roundtrip_all_codecs(void **state)
{
    (void)state;
    rng r = {1};
    strata_sample *s = malloc(300 * sizeof *s);
    assert_non_null(s);
    size_t chunks = 0;
    for (int vk = 0; vk < V_KINDS; vk++)
        for (int tk = 0; tk < T_KINDS; tk++)
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                size_t n = sizes[si];
                gen_times(&r, tk, s, n, (unsigned)(rnd(&r) % 65));
                gen_values(&r, vk, s, n, (unsigned)(rnd(&r) % 54));
                for (unsigned a = 0; a < STC_TS_CODECS; a++)
                    for (unsigned b = 0; b < STC_V_CODECS; b++) {
                        stc_options o = {.ts_allowed = a ? 1u << a : 0,
                                         .v_allowed = b ? 1u << b : 0};
                        uint8_t *chunk;
                        size_t len;
                        char err[STRATA_ERRMSG_SIZE] = "";
                        int rc = stc_encode(s, n, &o, NULL, &chunk, &len, err);
                        if (b == STC_V_DEC && rc == STRATA_EINVAL) continue; /* not decimal */
                        if (rc) fail_msg("encode v%d t%d n%zu ts%u v%u: %s", vk, tk, n, a, b, err);
                        uint32_t cn;
                        unsigned ct, cv;
                        assert_int_equal(stc_chunk_codecs(chunk, len, &cn, &ct, &cv), 0);
                        if (a) assert_int_equal(ct, a);
                        if (b) assert_int_equal(cv, b);
                        char what[96];
                        snprintf(what, sizeof what, "values %d times %d n %zu ts %s v %s", vk, tk,
                                 n, stc_ts_codec_name(ct), stc_value_codec_name(cv));
                        check_chunk(chunk, len, s, n, what);
                        free(chunk);
                        chunks++;
                    }
            }
    assert_true(chunks > 3000);
    free(s);
}

/* The bit-packer at every width 0..64, for timestamps (deltas) and values (decimal integers). */
static void test_every_bit_width(void **state)
{
    (void)state;
    rng r = {7};
    strata_sample s[70];
    for (unsigned w = 0; w <= 64; w++) {
        gen_times(&r, 6, s, 70, w);
        gen_values(&r, 10, s, 70, w > 53 ? 53 : w);
        stc_options o = {.ts_allowed = 1u << STC_TS_DELTA, .v_allowed = 1u << STC_V_DEC};
        uint8_t *chunk;
        size_t len;
        assert_int_equal(stc_encode(s, 70, &o, NULL, &chunk, &len, NULL), 0);
        check_chunk(chunk, len, s, 70, "width");
        free(chunk);
    }
}

/* Values every decoder handles specially, one at a time and all together. */
static void test_special_values(void **state)
{
    (void)state;
    strata_sample s[N_SPECIAL * 3];
    for (size_t i = 0; i < N_SPECIAL * 3; i++) {
        s[i].t = 1700000000000 + (int64_t)i * 15000;
        s[i].v = from_bits(special_bits[i % N_SPECIAL]);
    }
    for (unsigned b = 1; b < STC_V_CODECS; b++) {
        stc_options o = {.v_allowed = 1u << b};
        uint8_t *chunk;
        size_t len;
        /* mostly not decimal: the decimal codec falls back to the values' bit patterns */
        int rc = stc_encode(s, N_SPECIAL * 3, &o, NULL, &chunk, &len, NULL);
        assert_int_equal(rc, 0);
        check_chunk(chunk, len, s, N_SPECIAL * 3, stc_value_codec_name(b));
        free(chunk);
    }
    /* A stale marker in an otherwise decimal series is a decimal exception. */
    strata_sample g[120];
    for (int i = 0; i < 120; i++) {
        g[i].t = 1000 + i * 15000;
        g[i].v = i == 60 ? from_bits(0x7ff0000000000002ull) : (i == 61 ? -0.0 : i * 0.25);
    }
    uint8_t *chunk;
    size_t len;
    uint32_t n;
    unsigned ct, cv;
    assert_int_equal(stc_encode(g, 120, NULL, NULL, &chunk, &len, NULL), 0);
    assert_int_equal(stc_chunk_codecs(chunk, len, &n, &ct, &cv), 0);
    assert_int_equal(cv, STC_V_DEC);
    assert_int_equal(ct, STC_TS_GRID);
    check_chunk(chunk, len, g, 120, "stale in decimal");
    free(chunk);
}

/* What the selector should pick on textbook series, and the sizes it should reach. */
static void test_selector_choices(void **state)
{
    (void)state;
    strata_sample s[120];
    stc_stats st = {0};
    uint8_t *chunk;
    size_t len;
    uint32_t n;
    unsigned ct, cv;
    /* constant, regular: a grid and one run */
    for (int i = 0; i < 120; i++)
        s[i] = (strata_sample){1700000000000 + i * 15000, 1.0};
    assert_int_equal(stc_encode(s, 120, NULL, &st, &chunk, &len, NULL), 0);
    assert_int_equal(stc_chunk_codecs(chunk, len, &n, &ct, &cv), 0);
    assert_int_equal(ct, STC_TS_GRID);
    assert_int_equal(cv, STC_V_RLE);
    assert_true(len <= 20);
    free(chunk);
    /* a counter at 0.01 resolution: decimal */
    rng r = {3};
    uint64_t c = 123456;
    for (int i = 0; i < 120; i++) {
        c += 1000 + rnd(&r) % 300;
        s[i].v = (double)c / 100.0;
    }
    assert_int_equal(stc_encode(s, 120, NULL, &st, &chunk, &len, NULL), 0);
    assert_int_equal(stc_chunk_codecs(chunk, len, &n, &ct, &cv), 0);
    assert_int_equal(cv, STC_V_DEC);
    assert_true(len < 120 * 2); /* 9 bits of increment spread, plus headers */
    check_chunk(chunk, len, s, 120, "counter");
    free(chunk);
    /* random bits: never bigger than the raw values plus a few bytes */
    for (int i = 0; i < 120; i++)
        s[i].v = from_bits(rnd(&r));
    assert_int_equal(stc_encode(s, 120, NULL, &st, &chunk, &len, NULL), 0);
    assert_true(len <= 120 * 8 + 32);
    free(chunk);
    /* a full-precision gauge moving by small steps: deltas of its bit patterns beat XOR */
    double g = 21.5;
    for (int i = 0; i < 120; i++) {
        g += ((double)(rnd(&r) % 2000000) - 1e6) * 1e-9;
        s[i].v = g;
    }
    stc_options xo = {.v_allowed = 1u << STC_V_XOR};
    size_t xor_len;
    assert_int_equal(stc_encode(s, 120, &xo, NULL, &chunk, &xor_len, NULL), 0);
    free(chunk);
    assert_int_equal(stc_encode(s, 120, NULL, &st, &chunk, &len, NULL), 0);
    assert_int_equal(stc_chunk_codecs(chunk, len, &n, &ct, &cv), 0);
    assert_int_equal(cv, STC_V_DEC);
    assert_true(len < xor_len);
    check_chunk(chunk, len, s, 120, "bit-pattern deltas");
    free(chunk);
    assert_int_equal(st.chunks, 4);
    assert_int_equal(st.samples, 480);
    assert_int_equal(st.bytes_in, 480 * 16);
    assert_int_equal(st.ts_chunks[STC_TS_GRID], 4);
    assert_int_equal(st.v_chunks[STC_V_RLE], 1);
    assert_true(st.v_chunks[STC_V_DEC] >= 2);
    stc_stats sum = {0};
    stc_stats_add(&sum, &st);
    stc_stats_add(&sum, &st);
    assert_int_equal(sum.chunks, 8);
    assert_int_equal(sum.bytes_out, 2 * st.bytes_out);
}

/* A decode budget below the smallest codec's cost takes the cheapest pair to decode. */
static void test_selector_budget(void **state)
{
    (void)state;
    strata_sample s[120];
    rng r = {5};
    for (int i = 0; i < 120; i++)
        s[i] = (strata_sample){i * 15000 + (int64_t)(rnd(&r) % 3), (double)(rnd(&r) % 100) / 10};
    double cheapest = 1e9;
    unsigned cheap_t = 0, cheap_v = 0;
    for (unsigned a = 1; a < STC_TS_CODECS; a++)
        for (unsigned b = 1; b < STC_V_CODECS; b++)
            if (b != STC_V_RLE && stc_ts_cost_ns(a) + stc_value_cost_ns(b) < cheapest) {
                cheapest = stc_ts_cost_ns(a) + stc_value_cost_ns(b);
                cheap_t = a;
                cheap_v = b;
            }
    stc_options o = {.max_decode_ns = 0.01};
    uint8_t *chunk;
    size_t len;
    uint32_t n;
    unsigned ct, cv;
    assert_int_equal(stc_encode(s, 120, &o, NULL, &chunk, &len, NULL), 0);
    assert_int_equal(stc_chunk_codecs(chunk, len, &n, &ct, &cv), 0);
    assert_int_equal(ct, cheap_t);
    assert_int_equal(cv, cheap_v);
    check_chunk(chunk, len, s, 120, "budget");
    free(chunk);
    /* with a generous budget the chunk is no larger than with none */
    size_t free_len;
    assert_int_equal(stc_encode(s, 120, NULL, NULL, &chunk, &free_len, NULL), 0);
    free(chunk);
    o.max_decode_ns = 1000;
    assert_int_equal(stc_encode(s, 120, &o, NULL, &chunk, &len, NULL), 0);
    assert_int_equal(len, free_len);
    free(chunk);
}

/* Every strict prefix of every kind of valid chunk is STRATA_ECORRUPT, for the whole-chunk
 * decoder and the iterator alike; a byte appended is too. */
static void test_truncation(void **state)
{
    (void)state;
    rng r = {11};
    strata_sample s[130], out[130];
    size_t checked = 0;
    for (int vk = 0; vk < V_KINDS; vk++)
        for (int tk = 0; tk < T_KINDS; tk++)
            for (unsigned a = 1; a < STC_TS_CODECS; a++)
                for (unsigned b = 1; b < STC_V_CODECS; b++) {
                    size_t n = 1 + rnd(&r) % 130;
                    gen_times(&r, tk, s, n, (unsigned)(rnd(&r) % 65));
                    gen_values(&r, vk, s, n, (unsigned)(rnd(&r) % 54));
                    stc_options o = {.ts_allowed = 1u << a, .v_allowed = 1u << b};
                    uint8_t *chunk;
                    size_t len;
                    if (stc_encode(s, n, &o, NULL, &chunk, &len, NULL)) continue;
                    for (size_t cut = 0; cut <= len; cut++) {
                        size_t l = cut < len ? cut : len + 1;
                        uint8_t *c = malloc(l ? l : 1);
                        memcpy(c, chunk, cut < len ? cut : len);
                        if (cut == len) c[len] = 0;
                        size_t k;
                        int rc = stc_decode(c, l, out, 130, &k, NULL);
                        if (rc != STRATA_ECORRUPT)
                            fail_msg("v%d t%d %s/%s n %zu: prefix %zu of %zu decoded: %d", vk, tk,
                                     stc_ts_codec_name(a), stc_value_codec_name(b), n, l, len, rc);
                        stc_iter it;
                        stc_iter_init(&it, c, l);
                        while ((rc = stc_iter_next(&it)) == 1)
                            ;
                        assert_int_equal(rc, STRATA_ECORRUPT);
                        free(c);
                        checked++;
                    }
                    free(chunk);
                }
    assert_true(checked > 10000);
}

/* Random corruption of valid chunks: never a crash, never a wrong count. */
static void test_corruption(void **state)
{
    (void)state;
    rng r = {13};
    strata_sample s[200], *out = malloc(STC_MAX_SAMPLES * sizeof *out);
    assert_non_null(out);
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + rnd(&r) % 200;
        gen_times(&r, (int)(rnd(&r) % T_KINDS), s, n, (unsigned)(rnd(&r) % 65));
        gen_values(&r, (int)(rnd(&r) % V_KINDS), s, n, (unsigned)(rnd(&r) % 54));
        uint8_t *chunk;
        size_t len;
        assert_int_equal(stc_encode(s, n, NULL, NULL, &chunk, &len, NULL), 0);
        uint8_t *c = dup_exact(chunk, len);
        int flips = 1 + (int)(rnd(&r) % 4);
        for (int f = 0; f < flips; f++)
            c[rnd(&r) % len] ^= (uint8_t)(1u << (rnd(&r) % 8));
        size_t k = 0;
        int rc = stc_decode(c, len, out, STC_MAX_SAMPLES, &k, NULL);
        assert_true(rc == 0 || rc == STRATA_ECORRUPT);
        uint32_t cnt;
        if (rc == 0) {
            assert_int_equal(stc_chunk_codecs(c, len, &cnt, &(unsigned){0}, &(unsigned){0}), 0);
            assert_int_equal(k, cnt);
        }
        free(c);
        free(chunk);
    }
    /* pure garbage */
    for (int round = 0; round < 3000; round++) {
        size_t len = rnd(&r) % 64;
        uint8_t *c = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            c[i] = (uint8_t)rnd(&r);
        if (len && round % 2) c[0] = (uint8_t)(rnd(&r) % 40); /* plausible counts */
        if (len > 1 && round % 3 == 0) c[1] = (uint8_t)(0x11 + rnd(&r) % 0x34);
        size_t k;
        int rc = stc_decode(c, len, out, STC_MAX_SAMPLES, &k, NULL);
        assert_true(rc == 0 || rc == STRATA_ECORRUPT);
        free(c);
    }
    free(out);
}

/* Seek, limits, the empty chunk, unknown encodings and the XOR chunk through chunk_iter. */
static void test_iter_api(void **state)
{
    (void)state;
    strata_sample s[100];
    for (int i = 0; i < 100; i++)
        s[i] = (strata_sample){1000 + i * 10, (double)i};
    uint8_t *chunk;
    size_t len;
    assert_int_equal(stc_encode(s, 100, NULL, NULL, &chunk, &len, NULL), 0);
    chunk_iter it;
    int64_t t;
    double v;
    assert_int_equal(chunk_iter_init(&it, CHUNK_ENC_STRATA, chunk, len), 0);
    assert_int_equal(chunk_iter_seek(&it, 1455), 1);
    chunk_iter_at(&it, &t, &v);
    assert_int_equal(t, 1460);
    assert_true(v == 46.0);
    assert_int_equal(chunk_iter_seek(&it, 0), 1); /* never goes back */
    chunk_iter_at(&it, &t, &v);
    assert_int_equal(t, 1460);
    assert_int_equal(chunk_iter_next(&it), 1);
    chunk_iter_at(&it, &t, &v);
    assert_int_equal(t, 1470);
    assert_int_equal(chunk_iter_seek(&it, 1990), 1);
    chunk_iter_at(&it, &t, &v);
    assert_int_equal(t, 1990);
    assert_int_equal(chunk_iter_seek(&it, 5000), 0);
    strata_sample small[10];
    size_t k;
    assert_int_equal(stc_decode(chunk, len, small, 10, &k, NULL), STRATA_ELIMIT);
    free(chunk);

    /* the XOR chunk through the same iterator */
    xor_appender a;
    assert_int_equal(xor_appender_init(&a), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(xor_append(&a, s[i].t, s[i].v), 0);
    const uint8_t *xb = xor_appender_bytes(&a, &len);
    assert_int_equal(chunk_iter_init(&it, CHUNK_ENC_XOR, xb, len), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(chunk_iter_next(&it), 1);
        chunk_iter_at(&it, &t, &v);
        assert_int_equal(t, s[i].t);
    }
    assert_int_equal(chunk_iter_next(&it), 0);
    xor_appender_free(&a);

    assert_int_equal(chunk_iter_init(&it, (chunk_encoding)2, xb, len), STRATA_EUNSUPPORTED);
    assert_int_equal(chunk_iter_next(&it), STRATA_EUNSUPPORTED);

    /* empty chunk */
    assert_int_equal(stc_encode(NULL, 0, NULL, NULL, &chunk, &len, NULL), 0);
    assert_int_equal(len, 1);
    assert_int_equal(chunk_iter_init(&it, CHUNK_ENC_STRATA, chunk, len), 0);
    assert_int_equal(chunk_iter_next(&it), 0);
    free(chunk);

    /* limits */
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(stc_encode(s, STC_MAX_SAMPLES + 1, NULL, NULL, &chunk, &len, err),
                     STRATA_EINVAL);
    stc_options none = {.ts_allowed = 1u << 7};
    assert_int_equal(stc_encode(s, 10, &none, NULL, &chunk, &len, err), STRATA_EINVAL);
    assert_non_null(chunk_codec_by_name("STRATA"));
}

/* The largest chunk: 65535 samples, every codec. */
static void test_max_samples(void **state)
{
    (void)state;
    size_t n = STC_MAX_SAMPLES;
    strata_sample *s = malloc(n * sizeof *s);
    assert_non_null(s);
    rng r = {17};
    gen_times(&r, 1, s, n, 0);
    gen_values(&r, 7, s, n, 0);
    for (unsigned b = 1; b < STC_V_CODECS; b++) {
        stc_options o = {.v_allowed = 1u << b};
        uint8_t *chunk;
        size_t len;
        assert_int_equal(stc_encode(s, n, &o, NULL, &chunk, &len, NULL), 0);
        check_chunk(chunk, len, s, n, "max");
        free(chunk);
    }
    free(s);
}

/* Blocks whose level jumps (a quantised gauge moving far between blocks, up and down): the bit
 * packer restates a block's own minimum on the divisor's lattice, and must stay exact when a
 * block lies below the last one. */
static void test_block_level_jumps(void **state)
{
    (void)state;
    rng r = {21};
    static const double levels[] = {1e9, 5e8, 2e9, 2e9, 1e3, 7e12};
    strata_sample s[6 * 32];
    for (int round = 0; round < 50; round++) {
        uint64_t quantum = round % 2 ? 4096 : 3;
        for (int i = 0; i < 6 * 32; i++) {
            uint64_t level = (uint64_t)levels[(i / 32 + round) % 6] / quantum * quantum;
            s[i].t = 1000 + i * 15000;
            s[i].v = (double)(level + (rnd(&r) % 1000) * quantum);
        }
        for (unsigned b = 0; b < STC_V_CODECS; b++) {
            stc_options o = {.v_allowed = b ? 1u << b : 0};
            uint8_t *chunk;
            size_t len;
            assert_int_equal(stc_encode(s, 6 * 32, &o, NULL, &chunk, &len, NULL), 0);
            check_chunk(chunk, len, s, 6 * 32, "level jumps");
            free(chunk);
        }
    }
}

/* XOR chunks (as the head cuts them) and Strata chunks re-encoded with the selector. */
static void test_transcode(void **state)
{
    (void)state;
    rng r = {23};
    strata_sample s[120];
    gen_times(&r, 1, s, 120, 0);
    gen_values(&r, 3, s, 120, 0);
    xor_appender a;
    assert_int_equal(xor_appender_init(&a), 0);
    for (int i = 0; i < 120; i++)
        assert_int_equal(xor_append(&a, s[i].t, s[i].v), 0);
    size_t xlen, len, len2;
    const uint8_t *x = xor_appender_bytes(&a, &xlen);
    uint8_t *chunk, *again;
    stc_stats st = {0};
    assert_int_equal(stc_transcode(CHUNK_ENC_XOR, x, xlen, NULL, &st, &chunk, &len, NULL), 0);
    assert_true(len < xlen);
    assert_int_equal(st.chunks, 1);
    check_chunk(chunk, len, s, 120, "from xor");
    stc_options o = {.v_allowed = 1u << STC_V_XOR};
    assert_int_equal(stc_transcode(CHUNK_ENC_STRATA, chunk, len, &o, NULL, &again, &len2, NULL), 0);
    check_chunk(again, len2, s, 120, "strata to strata");
    free(again);
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(stc_transcode(CHUNK_ENC_XOR, x, xlen - 1, NULL, NULL, &again, &len2, err),
                     STRATA_ECORRUPT);
    assert_int_equal(stc_transcode((chunk_encoding)3, x, xlen, NULL, NULL, &again, &len2, err),
                     STRATA_EUNSUPPORTED);
    free(chunk);
    xor_appender_free(&a);
}

/* The worked examples of docs/format.md, byte for byte. */
static void test_golden_bytes(void **state)
{
    (void)state;
    strata_sample a[3] = {{1700000000000, 12.34}, {1700000015000, 12.40}, {1700000030000, 12.47}};
    static const uint8_t want_a[] = {0x03, 0x33, 0x0a, 0x80, 0xa0, 0xab, 0xfe, 0xf9,
                                     0x62, 0xb0, 0xea, 0x01, 0x00, 0x02, 0x00, 0x00,
                                     0x84, 0xa4, 0x13, 0x01, 0x06, 0xd0};
    uint8_t *chunk;
    size_t len;
    assert_int_equal(stc_encode(a, 3, NULL, NULL, &chunk, &len, NULL), 0);
    assert_int_equal(len, sizeof want_a);
    assert_memory_equal(chunk, want_a, len);
    check_chunk(want_a, sizeof want_a, a, 3, "golden a");
    free(chunk);

    strata_sample b[4] = {{1000, 1.0}, {2000, 1.0}, {3001, 1.0}, {4000, 1.0}};
    static const uint8_t want_b[] = {0x04, 0x12, 0x07, 0xd0, 0x0f, 0xd0, 0x0f,
                                     0x80, 0xdf, 0x80, 0x04, 0x02, 0x3f, 0xf0};
    stc_options o = {.ts_allowed = 1u << STC_TS_DOD, .v_allowed = 1u << STC_V_RLE};
    assert_int_equal(stc_encode(b, 4, &o, NULL, &chunk, &len, NULL), 0);
    assert_int_equal(len, sizeof want_b);
    assert_memory_equal(chunk, want_b, len);
    check_chunk(want_b, sizeof want_b, b, 4, "golden b");
    free(chunk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_codecs), cmocka_unit_test(test_every_bit_width),
        cmocka_unit_test(test_special_values),       cmocka_unit_test(test_selector_choices),
        cmocka_unit_test(test_selector_budget),      cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corruption),           cmocka_unit_test(test_iter_api),
        cmocka_unit_test(test_max_samples),          cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_block_level_jumps),    cmocka_unit_test(test_transcode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
