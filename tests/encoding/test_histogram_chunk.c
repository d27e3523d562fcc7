/*
 * test_histogram_chunk.c: Prometheus' histogram chunks (encodings 2 and 3): golden bytes derived
 * by hand from the layout, round trips of random histogram series (bit-exact), the rules for
 * cutting a chunk and its counter-reset header, staleness markers, truncated input, the codec
 * table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "encoding/encoding.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void append_ok(hist_appender *a, int64_t t, const native_histogram *h)
{
    uint8_t header;
    assert_int_equal(hist_appender_fits(a, h, &header), 1);
    assert_int_equal(hist_append(a, t, h), 0);
}

/*
 * Integer chunk, two samples: t=1000 count 5 buckets [2 3] at indexes 0,1 (schema 0, threshold 0,
 * sum 10), then t=2000 count 7 buckets [3 4] sum 10. Bits after the 3-byte header:
 *   00000000            zero threshold 0
 *   0                   schema 0
 *   10001 10010 0       one positive span: length 2, offset 0
 *   0                   no negative span
 *   11110 001111101000  t = 1000 (12-bit field)
 *   10101 0             count 5, zero count 0
 *   <64 bits of 10.0>   sum
 *   10010 10001         buckets as deltas between buckets: 2, 1
 *   11110 001111101000  t delta-of-delta 1000
 *   10010 0             count dod 2, zero count dod 0
 *   0                   sum unchanged (XOR '0')
 *   10001 0             bucket dods: 1 (delta form 2->3), 0 (1->1)
 */
static const uint8_t golden_int[] = {0x00, 0x02, 0x00, 0x00, 0x46, 0x47, 0x8f, 0xa2,
                                     0xa4, 0x02, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
                                     0x09, 0x47, 0xc7, 0xd1, 0x22, 0x20};

/*
 * Float chunk with custom buckets, two samples: schema -53, bounds [0.5 1], buckets [1.5 2.5]
 * count 4 sum 3 at t=1000; then t=1015 buckets [1.5 3.5] count 5 sum 4.
 *   00000000                       zero threshold 0
 *   1110 111001011                 schema -53 (9-bit field, two's complement)
 *   10001 10010 0 0                one positive span {0, 2}, no negative span
 *   10010                          two custom bounds:
 *   1110 111110101                 0.5 -> 500 + 1 = 501
 *   11110 001111101001             1 -> 1000 + 1 = 1001
 *   11110 001111101000             t = 1000
 *   <count 4.0> <zero 0.0> <sum 3.0> <1.5> <2.5>   64 bits each
 *   110 001111                     t dod 15
 *   11 01101 000001 1              count 4 -> 5: XOR 0x0004.., 13 leading, 1 bit
 *   0                              zero count unchanged
 *   11 01011 000010 11             sum 3 -> 4: XOR 0x0018.., 11 leading, 2 bits
 *   0                              bucket 1.5 unchanged
 *   11 01100 000001 1              bucket 2.5 -> 3.5: XOR 0x0008.., 12 leading, 1 bit
 */
static const uint8_t golden_float[] = {
    0x00, 0x02, 0x00, 0x00, 0xee, 0x5c, 0x64, 0x4b, 0xbe, 0xbe, 0x3e, 0x9f, 0x1f, 0x42, 0x00, 0x80,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x40,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x20,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x3f, 0x68, 0x36, 0xb0, 0xb6, 0xc0, 0x60};

static void test_golden_bytes(void **state)
{
    (void)state;
    hist_span sp = {0, 2};
    double b1[] = {2, 3}, b2[] = {3, 4};
    native_histogram h1 = {.is_int = true,
                           .count = 5,
                           .sum = 10,
                           .pos_spans = &sp,
                           .n_pos_spans = 1,
                           .pos_buckets = b1,
                           .n_pos_buckets = 2};
    native_histogram h2 = h1;
    h2.count = 7;
    h2.pos_buckets = b2;
    hist_appender a;
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_HISTOGRAM), 0);
    append_ok(&a, 1000, &h1);
    append_ok(&a, 2000, &h2);
    size_t len;
    const uint8_t *bytes = hist_appender_bytes(&a, &len);
    assert_int_equal(len, sizeof golden_int);
    assert_memory_equal(bytes, golden_int, len);
    hist_appender_free(&a);

    double cv[] = {0.5, 1}, f1[] = {1.5, 2.5}, f2[] = {1.5, 3.5};
    native_histogram g1 = {.schema = HIST_SCHEMA_CUSTOM,
                           .count = 4,
                           .sum = 3,
                           .pos_spans = &sp,
                           .n_pos_spans = 1,
                           .pos_buckets = f1,
                           .n_pos_buckets = 2,
                           .custom_values = cv,
                           .n_custom_values = 2};
    native_histogram g2 = g1;
    g2.count = 5;
    g2.sum = 4;
    g2.pos_buckets = f2;
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_FLOAT_HISTOGRAM), 0);
    append_ok(&a, 1000, &g1);
    append_ok(&a, 1015, &g2);
    bytes = hist_appender_bytes(&a, &len);
    assert_int_equal(len, sizeof golden_float);
    assert_memory_equal(bytes, golden_float, len);
    hist_appender_free(&a);

    /* And the golden bytes decode to what was written. */
    arena ar;
    arena_init(&ar, 0);
    hist_sample *out;
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(
        hist_chunk_decode(golden_int, sizeof golden_int, CHUNK_ENC_HISTOGRAM, &ar, &out, &n, err),
        0);
    assert_int_equal(n, 2);
    assert_int_equal(out[1].t, 2000);
    assert_true(out[1].h.is_int && out[1].h.count == 7 && out[1].h.pos_buckets[1] == 4);
    assert_int_equal(out[0].h.reset_hint, HIST_HINT_UNKNOWN);
    assert_int_equal(out[1].h.reset_hint, HIST_HINT_NOT_RESET);
    assert_int_equal(hist_chunk_decode(golden_float, sizeof golden_float, CHUNK_ENC_FLOAT_HISTOGRAM,
                                       &ar, &out, &n, err),
                     0);
    assert_int_equal(n, 2);
    assert_int_equal(out[1].t, 1015);
    assert_int_equal(out[1].h.schema, HIST_SCHEMA_CUSTOM);
    assert_int_equal(out[1].h.n_custom_values, 2);
    assert_true(out[1].h.custom_values[0] == 0.5 && out[1].h.custom_values[1] == 1);
    assert_true(out[1].h.sum == 4 && out[1].h.pos_buckets[1] == 3.5);
    arena_free(&ar);
}

/* ---- random series ------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static bool same_hist(const native_histogram *a, const native_histogram *b)
{
    if (a->schema != b->schema || a->is_int != b->is_int || a->n_pos_spans != b->n_pos_spans ||
        a->n_neg_spans != b->n_neg_spans || a->n_pos_buckets != b->n_pos_buckets ||
        a->n_neg_buckets != b->n_neg_buckets || a->n_custom_values != b->n_custom_values)
        return false;
    if (memcmp(&a->zero_threshold, &b->zero_threshold, 8) || memcmp(&a->count, &b->count, 8) ||
        memcmp(&a->zero_count, &b->zero_count, 8) || memcmp(&a->sum, &b->sum, 8))
        return false;
    for (uint32_t i = 0; i < a->n_pos_spans; i++)
        if (a->pos_spans[i].offset != b->pos_spans[i].offset ||
            a->pos_spans[i].length != b->pos_spans[i].length)
            return false;
    for (uint32_t i = 0; i < a->n_neg_spans; i++)
        if (a->neg_spans[i].offset != b->neg_spans[i].offset ||
            a->neg_spans[i].length != b->neg_spans[i].length)
            return false;
    return (!a->n_pos_buckets || !memcmp(a->pos_buckets, b->pos_buckets, 8 * a->n_pos_buckets)) &&
           (!a->n_neg_buckets || !memcmp(a->neg_buckets, b->neg_buckets, 8 * a->n_neg_buckets)) &&
           (!a->n_custom_values ||
            !memcmp(a->custom_values, b->custom_values, 8 * a->n_custom_values));
}

/* Appends a random counter series of one layout and checks every sample decodes bit for bit. */
static void roundtrip_series(chunk_encoding enc, int n, bool custom)
{
    enum { NB = 6 };
    hist_span ps[2] = {{(int32_t)(rnd() % 7) - 3, 4}, {(int32_t)(rnd() % 3), 2}};
    hist_span ns[1] = {{(int32_t)(rnd() % 5), 2}};
    double cv[NB] = {0.001, 0.25, 1, 2.5, 1e6, 33554.43};
    native_histogram *hs = calloc((size_t)n, sizeof *hs);
    double(*pb)[NB] = calloc((size_t)n, sizeof *pb), (*nb)[2] = calloc((size_t)n, sizeof *nb);
    int64_t *ts = calloc((size_t)n, sizeof *ts);
    assert_non_null(hs);
    hist_appender a;
    assert_int_equal(hist_appender_init(&a, enc), 0);
    bool is_int = enc == CHUNK_ENC_HISTOGRAM;
    int64_t t = (int64_t)(rnd() % 2000000) - 1000000;
    double zc = 0;
    for (int k = 0; k < n; k++) {
        native_histogram *h = &hs[k];
        h->is_int = is_int;
        h->schema = custom ? HIST_SCHEMA_CUSTOM : (int32_t)(rnd() % 13) - 4;
        if (k) h->schema = hs[0].schema;
        h->zero_threshold = custom ? 0 : ldexp(0.5, -127);
        h->pos_spans = ps;
        h->n_pos_spans = 2;
        h->n_pos_buckets = NB;
        h->pos_buckets = pb[k];
        if (!custom) {
            h->neg_spans = ns;
            h->n_neg_spans = 1;
            h->n_neg_buckets = 2;
            h->neg_buckets = nb[k];
        } else {
            h->custom_values = cv;
            h->n_custom_values = NB;
        }
        double c = 0;
        for (int i = 0; i < NB; i++) {
            double prev = k ? pb[k - 1][i] : 0;
            double inc = (double)(rnd() % (rnd() % 3 == 0 ? 1000000 : 5));
            if (!is_int) inc += (double)(rnd() % 1000) / 7.0;
            pb[k][i] = prev + inc;
            c += pb[k][i];
        }
        for (int i = 0; i < (custom ? 0 : 2); i++) {
            nb[k][i] = (k ? nb[k - 1][i] : 0) + (double)(rnd() % 3);
            c += nb[k][i];
        }
        if (!custom) zc += (double)(rnd() % 2);
        h->zero_count = zc;
        h->count = c + zc;
        h->sum = is_int ? (double)(rnd() % 100000) / 8 : (double)(int64_t)rnd() / 3.0;
        t += (int64_t)(rnd() % 4 == 0 ? rnd() % 100000 : 15000);
        ts[k] = t;
        append_ok(&a, t, h);
    }
    size_t len;
    const uint8_t *bytes = hist_appender_bytes(&a, &len);
    arena ar;
    arena_init(&ar, 0);
    hist_sample *out;
    size_t got;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(hist_chunk_decode(bytes, len, enc, &ar, &out, &got, err), 0);
    assert_int_equal(got, (size_t)n);
    for (int k = 0; k < n; k++) {
        assert_int_equal(out[k].t, ts[k]);
        if (!same_hist(&out[k].h, &hs[k])) fail_msg("sample %d of %d differs", k, n);
    }
    /* Every truncation is refused cleanly, never read past. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, bytes, cut);
        int rc = hist_chunk_decode(copy, cut, enc, &ar, &out, &got, err);
        assert_true(rc == STRATA_ECORRUPT || (rc == 0 && got == (size_t)n));
        free(copy);
    }
    arena_free(&ar);
    hist_appender_free(&a);
    free(hs);
    free(pb);
    free(nb);
    free(ts);
}

static void test_random_roundtrips(void **state)
{
    (void)state;
    for (int round = 0; round < 40; round++) {
        int n = 1 + (int)(rnd() % 130);
        roundtrip_series(CHUNK_ENC_HISTOGRAM, n, round % 4 == 0);
        roundtrip_series(CHUNK_ENC_FLOAT_HISTOGRAM, n, round % 4 == 1);
    }
}

/* ---- when to cut ------------------------------------------------------------------------- */

static void test_cut_rules(void **state)
{
    (void)state;
    hist_span sp = {0, 2}, sp3 = {0, 3}, sp_other = {1, 2};
    double b[] = {2, 3}, lower[] = {1, 3}, b3[] = {2, 3, 1}, b3z[] = {0, 3, 4};
    native_histogram h = {.is_int = true,
                          .count = 5,
                          .sum = 1,
                          .pos_spans = &sp,
                          .n_pos_spans = 1,
                          .pos_buckets = b,
                          .n_pos_buckets = 2};
    hist_appender a;
    uint8_t header;
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_HISTOGRAM), 0);
    append_ok(&a, 1, &h);
    native_histogram x = h;
    x.count = 4;
    x.pos_buckets = lower;
    assert_int_equal(hist_appender_fits(&a, &x, &header), 0); /* a bucket went down */
    assert_int_equal(header, HIST_CHUNK_RESET);
    x = h;
    x.count = 6;
    x.pos_spans = &sp3;
    x.pos_buckets = b3;
    x.n_pos_buckets = 3;
    assert_int_equal(hist_appender_fits(&a, &x, &header), 2); /* a new bucket: recode */
    assert_int_equal(header, HIST_CHUNK_NOT_RESET);
    x = h;
    x.pos_spans = &sp_other; /* bucket 0 (count 2) vanished */
    assert_int_equal(hist_appender_fits(&a, &x, &header), 0);
    assert_int_equal(header, HIST_CHUNK_RESET);
    x = h;
    x.schema = 1;
    assert_int_equal(hist_appender_fits(&a, &x, &header), 0);
    assert_int_equal(header, HIST_CHUNK_UNKNOWN);
    x = h;
    x.reset_hint = HIST_HINT_RESET;
    assert_int_equal(hist_appender_fits(&a, &x, &header), 0);
    assert_int_equal(header, HIST_CHUNK_RESET);
    x = h;
    x.reset_hint = HIST_HINT_GAUGE;
    assert_int_equal(hist_appender_fits(&a, &x, &header), 0);
    assert_int_equal(header, HIST_CHUNK_GAUGE);
    x = h;
    x.zero_count = 1;
    x.count = 6;
    append_ok(&a, 2, &x);
    x.zero_count = 0;
    x.count = 5;
    assert_int_equal(hist_appender_fits(&a, &x, &header), 0); /* count went down */
    assert_int_equal(header, HIST_CHUNK_RESET);
    /* An empty bucket may disappear. */
    hist_appender_free(&a);
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_HISTOGRAM), 0);
    x = h;
    x.pos_spans = &sp3;
    x.pos_buckets = b3z;
    x.n_pos_buckets = 3;
    x.count = 7;
    append_ok(&a, 1, &x);
    native_histogram y = h;
    y.pos_spans = &sp_other;
    y.pos_buckets = (double[]){3, 4};
    y.count = 7;
    assert_int_equal(hist_appender_fits(&a, &y, &header), 2); /* an empty bucket may go */
    assert_int_equal(header, HIST_CHUNK_NOT_RESET);

    /* A staleness marker always fits, comes back as its sum alone, and ends the chunk. */
    native_histogram st = h;
    uint64_t stale = 0x7ff0000000000002ull;
    memcpy(&st.sum, &stale, 8);
    append_ok(&a, 2, &st);
    assert_int_equal(hist_appender_fits(&a, &x, &header), 0);
    assert_int_equal(header, HIST_CHUNK_UNKNOWN);
    assert_int_equal(hist_appender_fits(&a, &st, &header), 1);
    append_ok(&a, 3, &st);
    size_t len;
    const uint8_t *bytes = hist_appender_bytes(&a, &len);
    arena ar;
    arena_init(&ar, 0);
    hist_sample *out;
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(hist_chunk_decode(bytes, len, CHUNK_ENC_HISTOGRAM, &ar, &out, &n, err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(&out[1].h.sum, &stale, 8);
    assert_memory_equal(&out[2].h.sum, &stale, 8);
    assert_int_equal(out[1].h.n_pos_buckets, 0);
    assert_true(out[0].h.count == 7);
    hist_appender_free(&a);

    /* Gauges: counts may go down; the header says gauge; a chunk that starts stale works. */
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_FLOAT_HISTOGRAM), 0);
    native_histogram g = h;
    g.is_int = false;
    g.reset_hint = HIST_HINT_GAUGE;
    append_ok(&a, 10, &g);
    g.pos_buckets = lower;
    g.count = 4;
    append_ok(&a, 20, &g);
    bytes = hist_appender_bytes(&a, &len);
    assert_int_equal(bytes[2] & HIST_CHUNK_HEADER_MASK, HIST_CHUNK_GAUGE);
    assert_int_equal(hist_chunk_decode(bytes, len, CHUNK_ENC_FLOAT_HISTOGRAM, &ar, &out, &n, err),
                     0);
    assert_int_equal(out[0].h.reset_hint, HIST_HINT_GAUGE);
    assert_int_equal(out[1].h.reset_hint, HIST_HINT_GAUGE);
    assert_true(out[1].h.pos_buckets[0] == 1);
    hist_appender_free(&a);
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_HISTOGRAM), 0);
    append_ok(&a, 5, &st);
    hist_appender_set_header(&a, HIST_CHUNK_RESET);
    bytes = hist_appender_bytes(&a, &len);
    assert_int_equal(bytes[2], HIST_CHUNK_RESET);
    assert_int_equal(hist_chunk_decode(bytes, len, CHUNK_ENC_HISTOGRAM, &ar, &out, &n, err), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(&out[0].h.sum, &stale, 8);
    hist_appender_free(&a);
    arena_free(&ar);
}

/* New buckets: the chunk is rewritten on the union of the layouts, earlier samples with zeros in
 * the new buckets, the header kept; gauges may also lose buckets. */
static void test_recode(void **state)
{
    (void)state;
    hist_span s2 = {0, 2}, s4 = {-1, 4};
    double b1[] = {1, 2}, b2[] = {2, 3}, b3[] = {1, 3, 4, 1};
    native_histogram h1 = {.is_int = true,
                           .count = 3,
                           .sum = 1,
                           .pos_spans = &s2,
                           .n_pos_spans = 1,
                           .pos_buckets = b1,
                           .n_pos_buckets = 2};
    native_histogram h2 = h1, h3 = h1;
    h2.count = 5;
    h2.pos_buckets = b2;
    h3.count = 9;
    h3.pos_spans = &s4;
    h3.pos_buckets = b3;
    h3.n_pos_buckets = 4;
    hist_appender a;
    uint8_t header;
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_HISTOGRAM), 0);
    append_ok(&a, 10, &h1);
    hist_appender_set_header(&a, HIST_CHUNK_NOT_RESET);
    append_ok(&a, 20, &h2);
    assert_int_equal(hist_appender_fits(&a, &h3, &header), 2);
    assert_int_equal(hist_appender_recode(&a, 30, &h3), 0);
    size_t len;
    const uint8_t *bytes = hist_appender_bytes(&a, &len);
    assert_int_equal(bytes[2], HIST_CHUNK_NOT_RESET);
    arena ar;
    arena_init(&ar, 0);
    hist_sample *out;
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(hist_chunk_decode(bytes, len, CHUNK_ENC_HISTOGRAM, &ar, &out, &n, err), 0);
    assert_int_equal(n, 3);
    double want[3][4] = {{0, 1, 2, 0}, {0, 2, 3, 0}, {1, 3, 4, 1}};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i].t, 10 * (i + 1));
        assert_int_equal(out[i].h.n_pos_spans, 1);
        assert_int_equal(out[i].h.pos_spans[0].offset, -1);
        assert_int_equal(out[i].h.pos_spans[0].length, 4);
        assert_memory_equal(out[i].h.pos_buckets, want[i], sizeof want[i]);
    }
    /* The recoded chunk goes on as usual. */
    native_histogram h4 = h3;
    h4.count = 10;
    h4.pos_buckets = (double[]){1, 3, 4, 2};
    append_ok(&a, 40, &h4);
    hist_appender_free(&a);

    /* A gauge: buckets come and go both ways. */
    hist_span g1s = {0, 2}, g2s = {1, 2};
    native_histogram g1 = {.reset_hint = HIST_HINT_GAUGE,
                           .count = 6,
                           .pos_spans = &g1s,
                           .n_pos_spans = 1,
                           .pos_buckets = (double[]){5, 1},
                           .n_pos_buckets = 2};
    native_histogram g2 = g1;
    g2.count = 8;
    g2.pos_spans = &g2s;
    g2.pos_buckets = (double[]){4, 4};
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_FLOAT_HISTOGRAM), 0);
    append_ok(&a, 1, &g1);
    assert_int_equal(hist_appender_fits(&a, &g2, &header), 2);
    assert_int_equal(hist_appender_recode(&a, 2, &g2), 0);
    bytes = hist_appender_bytes(&a, &len);
    assert_int_equal(bytes[2], HIST_CHUNK_GAUGE);
    assert_int_equal(hist_chunk_decode(bytes, len, CHUNK_ENC_FLOAT_HISTOGRAM, &ar, &out, &n, err),
                     0);
    assert_int_equal(n, 2);
    assert_true(out[0].h.n_pos_buckets == 3 && out[0].h.pos_buckets[0] == 5 &&
                out[0].h.pos_buckets[1] == 1 && out[0].h.pos_buckets[2] == 0);
    assert_true(out[1].h.pos_buckets[0] == 0 && out[1].h.pos_buckets[1] == 4 &&
                out[1].h.pos_buckets[2] == 4);
    assert_int_equal(out[1].h.reset_hint, HIST_HINT_GAUGE);
    hist_appender_free(&a);
    arena_free(&ar);
}

static void test_zero_threshold_and_bounds_forms(void **state)
{
    (void)state;
    /* Thresholds: 0, powers of two in range (one byte), anything else (nine bytes); bounds:
     * multiples of 0.001 in range (varbit) and the rest (raw). All must round-trip. */
    double zts[] = {0,     ldexp(0.5, -242), ldexp(0.5, 11), ldexp(0.5, 12), 1e-128,
                    0.001, ldexp(0.5, -127)};
    double bounds[] = {-5, 0, 0.001, 0.1, 33554.43, 33554.431, 1e300};
    arena ar;
    arena_init(&ar, 0);
    char err[STRATA_ERRMSG_SIZE];
    for (size_t i = 0; i < sizeof zts / sizeof zts[0]; i++) {
        native_histogram h = {
            .is_int = true, .zero_threshold = zts[i], .zero_count = 3, .count = 3, .sum = 1};
        hist_appender a;
        assert_int_equal(hist_appender_init(&a, CHUNK_ENC_HISTOGRAM), 0);
        append_ok(&a, 0, &h);
        size_t len;
        const uint8_t *bytes = hist_appender_bytes(&a, &len);
        hist_sample *out;
        size_t n;
        assert_int_equal(hist_chunk_decode(bytes, len, CHUNK_ENC_HISTOGRAM, &ar, &out, &n, err), 0);
        assert_memory_equal(&out[0].h.zero_threshold, &zts[i], 8);
        hist_appender_free(&a);
    }
    hist_span sp = {0, 1};
    double one = 1;
    native_histogram c = {.schema = HIST_SCHEMA_CUSTOM,
                          .count = 1,
                          .pos_spans = &sp,
                          .n_pos_spans = 1,
                          .pos_buckets = &one,
                          .n_pos_buckets = 1,
                          .custom_values = bounds,
                          .n_custom_values = 7};
    hist_appender a;
    assert_int_equal(hist_appender_init(&a, CHUNK_ENC_FLOAT_HISTOGRAM), 0);
    append_ok(&a, 0, &c);
    size_t len;
    const uint8_t *bytes = hist_appender_bytes(&a, &len);
    hist_sample *out;
    size_t n;
    assert_int_equal(hist_chunk_decode(bytes, len, CHUNK_ENC_FLOAT_HISTOGRAM, &ar, &out, &n, err),
                     0);
    assert_memory_equal(out[0].h.custom_values, bounds, sizeof bounds);
    hist_appender_free(&a);
    arena_free(&ar);
}

static void test_codec_table_and_bad_input(void **state)
{
    (void)state;
    const chunk_codec *c = chunk_codec_get(CHUNK_ENC_HISTOGRAM);
    assert_non_null(c);
    assert_string_equal(c->name, "histogram");
    assert_non_null(c->decode_hist);
    c = chunk_codec_by_name("floathistogram");
    assert_non_null(c);
    assert_int_equal(c->id, CHUNK_ENC_FLOAT_HISTOGRAM);
    uint32_t count;
    assert_int_equal(c->count(golden_float, sizeof golden_float, &count), 0);
    assert_int_equal(count, 2);
    strata_sample s[4];
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(c->decode(golden_float, sizeof golden_float, s, 4, &n, err), STRATA_EINVAL);
    assert_null(chunk_codec_get(CHUNK_ENC_XOR)->decode_hist);
    arena ar;
    arena_init(&ar, 0);
    hist_sample *out;
    /* An unknown schema, a count claiming more samples than there are, a huge span count. */
    /* zero threshold 0, schema 9 ('110' 001001), then plenty of zero bits */
    uint8_t bad_schema[] = {0x00, 0x01, 0x00, 0x00, 0xc4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(c->decode_hist(bad_schema, sizeof bad_schema, &ar, &out, &n, err),
                     STRATA_ECORRUPT);
    uint8_t more[sizeof golden_int];
    memcpy(more, golden_int, sizeof more);
    more[1] = 9;
    assert_int_equal(hist_chunk_decode(more, sizeof more, CHUNK_ENC_HISTOGRAM, &ar, &out, &n, err),
                     STRATA_ECORRUPT);
    assert_non_null(strstr(err, "sample 2 of 9"));
    uint8_t spans[] = {0x00, 0x01, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(
        hist_chunk_decode(spans, sizeof spans, CHUNK_ENC_HISTOGRAM, &ar, &out, &n, err),
        STRATA_ECORRUPT);
    arena_free(&ar);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_random_roundtrips),
        cmocka_unit_test(test_cut_rules),
        cmocka_unit_test(test_recode),
        cmocka_unit_test(test_zero_threshold_and_bounds_forms),
        cmocka_unit_test(test_codec_table_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
