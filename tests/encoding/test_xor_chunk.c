/*
 * test_xor_chunk.c: the XOR chunk against bytes derived by hand from the format, bytes written by
 * Prometheus itself (promtool), an independent bit-at-a-time reference encoder, thousands of
 * random and adversarial chunks from a seeded generator, every truncated prefix, garbage input,
 * seeking and reopening. Inputs the decoder reads are exact-size heap copies, so
 * AddressSanitizer catches any over-read.
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

#include "bits_testutil.h"

static void assert_same_samples(const strata_sample *a, const strata_sample *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].t != b[i].t || to_bits(a[i].v) != to_bits(b[i].v))
            fail_msg("sample %zu: got (%lld, %016llx), want (%lld, %016llx)", i, (long long)a[i].t,
                     (unsigned long long)to_bits(a[i].v), (long long)b[i].t,
                     (unsigned long long)to_bits(b[i].v));
    }
}

/* ---- a reference encoder, bit at a time, written from the format description only ------------ */

typedef struct ref_stream {
    uint8_t *b;
    size_t nbits, cap;
} ref_stream;

static void ref_bit(ref_stream *s, unsigned bit)
{
    if (s->nbits / 8 >= s->cap) {
        size_t old = s->cap;
        s->cap = old ? old * 2 : 64;
        s->b = realloc(s->b, s->cap);
        assert_non_null(s->b);
        memset(s->b + old, 0, s->cap - old);
    }
    if (bit) s->b[s->nbits / 8] |= (uint8_t)(0x80 >> (s->nbits % 8));
    s->nbits++;
}

static void ref_bits(ref_stream *s, uint64_t v, unsigned n)
{
    while (n--)
        ref_bit(s, (unsigned)(v >> n) & 1);
}

static void ref_uvarint(ref_stream *s, uint64_t v)
{
    do {
        uint64_t byte = v & 0x7f;
        v >>= 7;
        ref_bits(s, byte | (v ? 0x80 : 0), 8);
    } while (v);
}

/* Encodes n samples as a whole chunk; the caller frees s->b. */
static void ref_encode(const strata_sample *in, size_t n, ref_stream *s)
{
    memset(s, 0, sizeof *s);
    ref_bits(s, n, 16);
    uint64_t prev_t = 0, prev_delta = 0, prev_v = 0;
    int lead = -1, trail = -1;
    for (size_t i = 0; i < n; i++) {
        uint64_t t = (uint64_t)in[i].t, v = to_bits(in[i].v);
        if (i == 0) {
            int64_t st = in[i].t;
            ref_uvarint(s, (uint64_t)st * 2 ^ (st < 0 ? UINT64_MAX : 0));
            ref_bits(s, v, 64);
        } else {
            uint64_t delta = t - prev_t;
            if (i == 1) {
                ref_uvarint(s, delta);
            } else {
                int64_t dod = (int64_t)(delta - prev_delta);
                if (dod == 0) {
                    ref_bits(s, 0, 1);
                } else if (dod >= -8191 && dod <= 8192) {
                    ref_bits(s, 2, 2);
                    ref_bits(s, (uint64_t)dod, 14);
                } else if (dod >= -65535 && dod <= 65536) {
                    ref_bits(s, 6, 3);
                    ref_bits(s, (uint64_t)dod, 17);
                } else if (dod >= -524287 && dod <= 524288) {
                    ref_bits(s, 14, 4);
                    ref_bits(s, (uint64_t)dod, 20);
                } else {
                    ref_bits(s, 15, 4);
                    ref_bits(s, (uint64_t)dod, 64);
                }
            }
            prev_delta = delta;
            uint64_t x = v ^ prev_v;
            if (x == 0) {
                ref_bits(s, 0, 1);
            } else {
                int l = 0, tr = 0;
                while (!(x >> (63 - l) & 1))
                    l++;
                while (!(x >> tr & 1))
                    tr++;
                if (l > 31) l = 31;
                if (lead >= 0 && l >= lead && tr >= trail) {
                    ref_bits(s, 2, 2);
                    ref_bits(s, x >> trail, (unsigned)(64 - lead - trail));
                } else {
                    lead = l;
                    trail = tr;
                    ref_bits(s, 3, 2);
                    ref_bits(s, (uint64_t)l, 5);
                    ref_bits(s, (uint64_t)(64 - l - tr) & 63, 6);
                    ref_bits(s, x >> tr, (unsigned)(64 - l - tr));
                }
            }
        }
        prev_t = t;
        prev_v = v;
    }
}

/* Hex fixtures: every chunk of the blocks that promtool 2.42 (`promtool tsdb
 * create-blocks-from openmetrics`) wrote for three series: a float counter at 0.01 resolution
 * with scrape jitter hitting the small delta-of-delta buckets, random bit patterns and special
 * values (-0, +-Inf, NaN, subnormals, DBL_MAX) at irregular intervals up to an hour, and a gauge
 * quantised to 4096 at 15 s. Chunks are cut where Prometheus cut them (not at 120). */
static const char *const prom_chunks[] = {
    "008aa0cba7fef9623fa47ae147ae147b9775c3f7fa6b62d8b62d8b701f7000e0000000000017e0daf5ae378d"
    "e378de3c003c5b26c9b26c9b29ff9d5b7ff5bd6f5bd6f706510f8f23c8f23c8dbb9b31b4d9364d93643b912f"
    "3d370dc370dc3986ecf1c4dd374dd374f400506c791e4791e458864f0cab0ac2b0ac29bb9b105f23c8f23c8f"
    "74001a77fc323c8f23c8f7400f013ffffffffffebff981f749d2749d26a036f1bc6f1bc69000f0762d8b62d8"
    "b63bff98093a4e93a4e90a010e93a4e93a43000302c00000000000bfff8028de378de37821f4000000000014"
    "00101386e1b86e1b8dc001815000000000004fffc1e147ae147ae1708ca2029c28f5c28f5dbb7bd032148521"
    "4852180fa80a7ae147ae147df8347eb3333333333603ea003c8721c8721c801c5916459164dfffc039585615"
    "8561708ca600dc370dc370ddb8acf0289b26c9b26c89778800bd4f53d4f535ffcc02c00000000002fffe0334"
    "85214852157fe900a791e4791e46c233583fba6e9ba6e9aeee6c402f4dd374dd37d01c00000000000a000806"
    "47ae147ae14c1944012147ae147ae37732e0755bd6f5bd6f77e2700effffffffffe80fa8001e4791e4791400"
    "3c06c9d2749d274affe6008c5b16c5b16c807c370dc370dc5f83401cd9364d93645000ffffffffffc80fa800"
    "f0a3d70a3d75f8343ef5c28f5c28f603b6029ba6e9ba6e99001b000c6f1bc6f1bcc2328800de378de378d5e6"
    "c402bd6f5bd6f5bf7800200d5bd6f5bd6f77e0d039585615856144021c28f5c28f5e03e6003d70a3d70a3f84"
    "65301f48521485215dbcd98021d2749d27484ff94023ffffffffff3080360078b62d8b62d9b83eb06574dd37"
    "4dd37c3e0b81cd3d4f53d4f56dff9cf989ea7a9ea7ab1003600062d8b62d8b70651003c5b16c5b16cdbcd980"
    "66b0ac2b0ac2e2193c007364d9364d8f77362009ffffffffff17e0d0008b62d8b62d9810180d378de378de3e"
    "1190c03ef5bd6f5bd637774a0039ea7a9ea7af7e1b006ba6e9ba6e9a80f381e1bd6f5bd6f4a00aa6e9ba6e9b"
    "f7e0b00dee1b86e1b878001802c390e4390e4407d40773a4e93a4e96fc1a00e378de378de1000300f46f1bc6"
    "f1bcbfff803fffffffffff5f8341fa3c8f23c8f2603b600b00000000001401d00de378de378de888280e6aaa"
    "aaaaaaacbbe40015555555555500d78de378de348001801a1485214852407d4006b22c8b22c86f83200ad274"
    "9d2749b01db03f0de378de37bdc57c80445615856159e1d48c01570dc370dc3affce038adeb7adeb7b001900"
    "0ba6e9ba6e9abf078009d374dd374d407cc01245916459166800a007eb7adeb7adf400100af5bd6f5bd6fbff"
    "f80105214852148c003c002f1bc6f1bc6a03ce1f8378de378de13e0d0015d374dd374cde00080582b0ac2b0a"
    "c5000c0149ea7a9ea7aa7ffe03862d8b62d8b74ad100796c5b16c5b19a978070b62d8b62d8c000c004de378d"
    "e378d005e9ba6e9ba69bff380199364d9364ec083c0fcc9b26c9b276fc1e008a7a9ea7a9e78464f00d459164"
    "59164dbcd980264390e4390ee107cc008de378de378efc1a03a9ea7a9ea7af7e0d0078000000000081f48066"
    "93a4e93a4fdf86c00e6f1bc6f1bc2ffe20e2deb7adeb7a301f700648f23c8f23bbf0680ed0a4290a4295fffc"
    "002c2b0ac2b0af088ba064f1bc6f1bc69bbba500116c5b16c5b3bf07802bd4f53d4f53612114004dd374dd37"
    "4f7774a01fd9364d9364e801c9b26c9b26fdf83406d374dd374dce7fce01823c8f23c8f2",
    "0035e8e4ad80fa62406fe570a3d70a3d8b75d78ff86f1bc6f1be003795d0721c8721c8d00071bf26e9ba6e9b"
    "aeefffc3ffffffffffa00067a3c8f23c8f3b99e5befbfc6f1bc6f1b8661d0e1c8721c87280078dfadeb7adeb"
    "5ffd72bb4b22c8b22c98006e18728521485217dff5cd11e4791e4778466dbb2fa290a4290a7f7774a0cfffff"
    "ffffc10d22c8b22c8b38445d05f91e4791e4579b11b69ba6e9ba6b400303cd9364d937d8464f00fa9ea7a9eb"
    "9bb9af0c1b26c9b26cb00053b1e4791e47933fff02fa9ea7a9ea882a4791e4791ade00086c5b16c5b16ca001"
    "8021c8721c8769ffe820b62d8b62df80018e49d2749d27ba00183c2b0ac2b0a49fff86f851eb851ec4113333"
    "3333334000edcff04390e4390ecfffc08749d2749d2377fce0c78de378de35b8cdb08e4d9364d936c39a0815"
    "a9ea7a9ea6d00047d4791e4791ef78002065c370dc370f0003064721c8721c8bfff8110e4390e43920100000"
    "00000140010f5b86e1b86e241716c5b16c5b20ca2030e4390e4391bb9b102c721c8721c8a0019f2f1bc6f1bc"
    "74ff94099ba6e9ba6ea003600e15856158574003002c9b26c9b21c3fff82b1e4791e47b4194401b62d8b62d8"
    "77736603666666666677fff0db851eb851ec800783800000000000",
    "0015b08aadfef9628c63a5b7e891b4219875c3fcf3b8e8a4e2b18ffc3a98ab39a7239224d13064568e003ab1"
    "26a15f433c5075d4be78ffd3ddec8cd0cedc568841da06f2fe3a2b9d5f7eb9b1bdd661e4a88e68884d4d4bcf"
    "b44c1f29601860190bb8ad32a9c59b69188dc98f80000000001b773fc538e82d6b664eefffffffffffff9423"
    "032ebcd81ae99eea19f7800049bdef8dd100c3ad5e0000000000124f7f363ac7a8016ec08bffffffffffffba"
    "6b840edce7885ce0a0c29ffbfffffffffffffc000000000022ca42fa18c4a36c82dfc1ffffffffffff712d89"
    "c4ef42ae6fc80649150e6ac63f158ef47800000000004769444df6df4250e75e5bfffffffffffee25b16cd6d"
    "7980f7e1c700",
    "0082b08aadfef962414fa800000000009875e02cdbc5fb78dfac1368a4720d189f49370fdd774351c41d1345"
    "139439166b23fdc82dc84f71125c45ba6b597ff50245f70403501840190034019013400900c5fd57ed401501"
    "45f7102c5fd101540304041004403100b5fd9014400903040a97fa5fd97fb405101d5f91036406900a403902"
    "e5f817f240197f4403d003403501140457fd406903e40c902441c10184039006407100e41c90285f99005404"
    "1007403903740fd03440d5003401903240c9016406100c40497e040d10344081002402901a40c901c5fd97e6"
    "40b907041f9010418907a40f840f900c",
    "0007b881a587fa627fefffffffffffffc0cf24c1f43cc792bbcd9989bfffffffffffefb083800f4ee513660e"
    "6c7c1f00000000000827bf9cd85727b9aa8242ffffffffffffdd35c230e8dfa35717b5d8c8ad1b97a74ca858"
    "4313134ea5ee44eb6636157383a0",
    "0009ccb8848cfa62cbe68064f0f0639d9875c3f75d1cc7ffc0d3dcfe000000000011da5183fc1cf4c1b0cfd5"
    "e52c007fb01cfb218863b9adce809995a4a03a3ffffffffffff74d70994b6ef13597c6ec3715a2b95d8babcf"
    "05df61c3a988f1734f12fecbd307c0000000000d9e542852ccfe392cf798e0",
    "0013ec87da94fa621fdd6eaf7df86dde80dddb01c3fc83fe49d883aee17fffffffffffc986b0c1ed5f7f81b8"
    "2122e5f22b4700107faf40be3cdbee3de00014d34a237b37c6226e8000485f0c3b1778b7b73de00013b33cd8"
    "ab1329f2daaee9415d40a7b850c752f8f8d74ac818605b4f715a285b880c602886e3d5ac72625f27fe5f7f98"
    "ad351656d958044307bf780005017137fc49d48b758ea5f2d8e5a61beb7a2e9ee2b445e27d2efaa15ea9a8ef"
    "7a0717925cf5f3315a6306b2598695df05fef000093e4c9661a577c17b1d4be00100000000000000",
    "0007bef8fe9bfa620000000000000001b0ea01c9dfa48c2392f04075c8ad1c3ef0a6e7b8da1f7f174ea5f0ff"
    "6812272771acdf9d47d89f359ffdff4fc3a98c00582849ee5109dd47f8000000000045948547c6c00e79e900"
    "dc",
    "0018e0cf92a0fa62e1043d37777eb9c601c3ee7e5338eb95c262f400030011fbd08063c35e7bba752f5c5f07"
    "c80ed6f757a3181852acd958298f000000000008ed28a1bd83e50b6d919dffffffffffffdf61062c8db5605d"
    "5a6dded3a9795715114ee97586214ed19b7b8937a208e62b4d1958e82b593291e2a6ff41bc3503efb4fbc000"
    "2c27981702dec2f48f000000000036ee7f8369504ae73ca856bfffffffffff284606e6ddbdd29f0b565ff000"
    "00000000827bfa6d6ce4e4d38767a7fffffffffffdc4b625be8c3173c170464dc5699d45a86dd298aaac70ea"
    "5e16109ca5ccc95762f000000000008ed288c1a185c6860a34c3fffffffffffdd35c2b3f071cb42dfe4b3d8a"
    "d1ba884e7267c5038b30ea5e1f332e5a9b63dddc4513f20c3e9e7da9e887f65d204f655cf4",
    "000582b399a9fa6278b1ab62b0a705f6818004c5e4ad05f8845c9bd4eba97e1fe5db9b688cf71c09f8000000"
    "00004594860de264587ba578e7f800000000016e3606003d93dd1bf9236b4a40",
    "0008e49addb0fa62d0b7c8deebabf8ecb0ea01c3f786df95d28f0d0bbb8ad1800bbe3a4b25a52621dcc569a2"
    "657b294c55234cf5d4be165fa113e589836fdc568b5fbfd7fa535be373c000000000023b4a224f3d28626fd4"
    "334ffffffffffff712d8a007ffffffffffffc0",
    "000ab6dcf2b4fa62b80d3fe212f3a08fc0cf24c5f7b16c99e45ef049bfffffffffffee25b1120cc73cfc7e82"
    "cbe00000000006d67d183df36fc74cb1c49c5fffffffffffe4a60c61fa9da81a9a3490ccbf000000000008ed"
    "28c3febe2ab495f5652cb5ff6d41fd9e26144d0ce8b6ae5fdd2ec9ffffffffffff74d709996b5f20c722df7e"
    "e2b46003152016097875d54c",
    "0006a6e08fbefa62aa07ed1e0761044bc0cf24c1fd503f68f03b08225ffffffffffff74d70ba80e93e84ae03"
    "dce4568e0027ca9d92e5d9ac2b74ea5ec1c6fae9bf3d00bbf000000000036b3e892c7ca160eb8efd94",
    "000c98cda1c2fa62b5f32bbf8d370f6101c5d4280c21c469c8d38752f800c83036f211515fb1cc56988db20e"
    "f1035fa6ffc0000000000209efe5e6ab12ce232a981ffffffffffff7d841a86153b4c773559fb5d4be02a9eb"
    "c3378ad60fdc568af23ef9d152e2578948192be962c04986f80000000001b59f441d38c863ba4e1a63ffffff"
    "fffff9423037c475fdcac66a99b6ba97c0f32dbd92f27d85e0",
    "0007f0c8fec9fa62d787ac0725f128419875c3f5a57d1474c0bd3e3b8ad36d4e90bcd707b69cc1ff57ca2f7f"
    "e942111f000000000036ee7fbe97f97fd020e6077ffffffffffe508c0de61fd1f203a028b180092ec94b564c"
    "db5370",
    "000da8a7ffd0fa62c53539c8d09cd539818004c1fe7ae7709e351a9f1d752fc0058921bfc81410ebae4568d0"
    "f406aeef950cebbe00000000006bdcff218115554bf501867ffffffffffe488c0d8532f09da8786e48915768"
    "c67df0c264bc0000000000249efe1c03da7dd6007c3effffffffffff712d88a2a47c29d7464113c000000000"
    "023b4a286b4c306adf7e145ffffffffffff6d841bfc36391c342cd1fb0ea5e038cddc215fd80a559298e2b99"
    "5a0f1580",
    "0002a2ed99d9fa62818342537ac573e001c5f65a0bf79963eb7fa0",
};

static uint8_t *from_hex(const char *h, size_t *n)
{
    *n = strlen(h) / 2;
    uint8_t *b = malloc(*n ? *n : 1);
    assert_non_null(b);
    for (size_t i = 0; i < *n; i++) {
        unsigned x;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &x), 1);
        b[i] = (uint8_t)x;
    }
    return b;
}

/* Decodes data (len bytes) completely; the caller frees the samples. */
static strata_sample *decode_all(const uint8_t *data, size_t len, size_t *n)
{
    uint8_t *exact = dup_exact(data, len);
    strata_sample *out = malloc(65536 * sizeof *out);
    assert_non_null(out);
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = xor_decode(exact, len, out, 65536, n, err);
    if (rc) fail_msg("decode failed: %s", err);
    free(exact);
    return out;
}

/* Builds a chunk from samples; the caller frees the appender. */
static void build(xor_appender *a, const strata_sample *in, size_t n)
{
    assert_int_equal(xor_appender_init(a), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(xor_append(a, in[i].t, in[i].v), 0);
}

static void assert_chunk_bytes(const xor_appender *a, const uint8_t *want, size_t want_len)
{
    size_t len;
    const uint8_t *b = xor_appender_bytes(a, &len);
    assert_int_equal(len, want_len);
    for (size_t i = 0; i < len; i++)
        if (b[i] != want[i]) fail_msg("byte %zu: got %02x, want %02x", i, b[i], want[i]);
}

/*
 * Everything a chunk of these samples must satisfy: the bytes decode after every append (the
 * head snapshots them between appends), equal the reference encoder's, decode to the samples bit
 * for bit, and reopening a prefix and appending the rest gives the same bytes.
 */
static void check_chunk(const strata_sample *in, size_t n, size_t check_every, rng *r)
{
    xor_appender a;
    assert_int_equal(xor_appender_init(&a), 0);
    strata_sample *out = malloc((n + 1) * sizeof *out);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(xor_append(&a, in[i].t, in[i].v), 0);
        assert_int_equal(xor_appender_count(&a), i + 1);
        if (i % check_every == 0 || i == n - 1) {
            size_t len, got;
            const uint8_t *b = xor_appender_bytes(&a, &len);
            uint8_t *exact = dup_exact(b, len);
            assert_int_equal(xor_decode(exact, len, out, n, &got, NULL), 0);
            assert_int_equal(got, i + 1);
            assert_same_samples(out, in, i + 1);
            free(exact);
        }
    }
    assert_true(xor_appender_last_t(&a) == in[n - 1].t);
    assert_true(to_bits(xor_appender_last_v(&a)) == to_bits(in[n - 1].v));
    ref_stream ref;
    ref_encode(in, n, &ref);
    assert_chunk_bytes(&a, ref.b, (ref.nbits + 7) / 8);
    free(ref.b);

    size_t len;
    const uint8_t *full = xor_appender_bytes(&a, &len);
    size_t k = r ? rnd(r) % (n + 1) : n / 2;
    xor_appender pre, re;
    build(&pre, in, k);
    size_t plen;
    const uint8_t *pb = xor_appender_bytes(&pre, &plen);
    uint8_t *exact = dup_exact(pb, plen);
    assert_int_equal(xor_appender_from_bytes(&re, exact, plen, NULL), 0);
    free(exact);
    assert_int_equal(xor_appender_count(&re), k);
    for (size_t i = k; i < n; i++)
        assert_int_equal(xor_append(&re, in[i].t, in[i].v), 0);
    assert_chunk_bytes(&re, full, len);
    xor_appender_free(&re);
    xor_appender_free(&pre);
    xor_appender_free(&a);
    free(out);
}

/* Derived by hand: samples (1000, 1.0), (2000, 1.0), (3000, 2.0). */
static void test_golden_small(void **state)
{
    (void)state;
    /* 00 03                    3 samples
     * d0 0f                    varint(1000): zig-zag 2000 = 0x7d0 -> 0xd0 0x0f
     * 3f f0 00 00 00 00 00 00  1.0
     * e8 07                    uvarint(1000), the delta of sample 1
     * then bits: 0 (sample 1's value unchanged) | 0 (dod 0)
     *            | 11 00001 001011 11111111111 (2.0 ^ 1.0 = 0x7ff0000000000000: 1 leading zero,
     *              52 trailing, 11 meaningful bits)
     *          = 00110000 10010111 11111111 11(000000) = 30 97 ff c0 */
    const uint8_t want[] = {0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0,    0,    0,
                            0,    0,    0,    0xe8, 0x07, 0x30, 0x97, 0xff, 0xc0};
    const strata_sample s[] = {{1000, 1.0}, {2000, 1.0}, {3000, 2.0}};
    xor_appender a;
    build(&a, s, 3);
    assert_chunk_bytes(&a, want, sizeof want);
    size_t n;
    strata_sample *out = decode_all(want, sizeof want, &n);
    assert_int_equal(n, 3);
    assert_same_samples(out, s, 3);
    free(out);
    xor_appender_free(&a);
}

/* The eleven samples of docs/format.md's worked example: every delta-of-delta bucket in both
 * signs, every value form, the staleness marker, -0.0 and +Inf. */
static const strata_sample golden_samples[] = {
    {1000, 1.0},   {2000, 1.0},   {3000, 2.0},    {4001, 3.0},    {5001, 2.0},    {16001, 2.0},
    {227001, 0.0}, {288001, 0.0}, {1349001, 0.0}, {2350001, 0.0}, {3342810, 0.0},
};

static void golden_values(strata_sample *s, uint64_t nan_bits)
{
    memcpy(s, golden_samples, sizeof golden_samples);
    s[6].v = from_bits(0xc000000000000001ull); /* 2.0 XOR 0x8000000000000001: 64 meaningful bits */
    s[7].v = from_bits(nan_bits);
    s[8].v = from_bits(0x8000000000000000ull); /* -0.0 */
    s[9].v = INFINITY;
    s[10].v = INFINITY;
}

static void test_golden_all_branches(void **state)
{
    (void)state;
    /*
     * Header 00 0b, sample 0 as in test_golden_small, uvarint(1000) = e8 07, then the bits:
     *  s1  v same                    0
     *  s2  dod 0                     0
     *      v 2.0^1.0                 11 00001 001011 11111111111
     *  s3  dod +1 (delta 1001)       10 00000000000001
     *      v 3.0^2.0 = 0x0008...0    11 01100 000001 1        (12 leading, 51 trailing: the
     *                                                          old window's 52 do not fit)
     *  s4  dod -1                    10 11111111111111
     *      v 2.0^3.0                 10 1                     (fits the 12/51 window)
     *  s5  dod +10000                110 00010011100010000
     *      v same                    0
     *  s6  dod +200000               1110 00110000110101000000
     *      v ^ 0x8000000000000001    11 00000 000000 1 0*62 1 (64 meaningful bits written as 0)
     *  s7  dod -150000               1110 11011011011000010000   (2^20 - 150000 = 0xdb610)
     *      v staleness NaN           10 + 64 bits of 0xbff0000000000003 (window 0/0 fits all)
     *  s8  dod +1000000              1111 + 64 bits of 0x00000000000f4240
     *      v -0.0                    10 + 64 bits of 0xfff0000000000002
     *  s9  dod -60000                110 10001010110100000       (2^17 - 60000 = 0x115a0)
     *      v +Inf                    10 + 64 bits of 0xfff0000000000000
     *  s10 dod -8191                 10 10000000000001           (2^14 - 8191 = 0x2001)
     *      v same                    0
     * 524 bits, padded with 4 zero bits to 66 bytes.
     */
    const uint8_t want[] = {
        0x00, 0x0b, 0xd0, 0x0f, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe8, 0x07,
        0x30, 0x97, 0xff, 0xe0, 0x00, 0x76, 0x03, 0xbf, 0xff, 0xb8, 0x4e, 0x20, 0xe3, 0x0d,
        0x40, 0xc0, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x6d, 0xb0, 0x85,
        0x7f, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x01,
        0xe8, 0x48, 0x17, 0xff, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x16, 0x8a, 0xd0, 0x5f,
        0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x20,
    };
    strata_sample s[11];
    golden_values(s, 0x7ff0000000000002ull);
    xor_appender a;
    build(&a, s, 11);
    assert_chunk_bytes(&a, want, sizeof want);
    size_t n;
    strata_sample *out = decode_all(want, sizeof want, &n);
    assert_int_equal(n, 11);
    assert_same_samples(out, s, 11);
    free(out);
    xor_appender_free(&a);
}

/* The same samples with Prometheus' NaN (0x7ff8000000000001, what its text parser yields for
 * "NaN") in place of the staleness marker: these are the bytes of the one chunk promtool 2.42
 * wrote for them (`promtool tsdb create-blocks-from openmetrics`). */
static void test_golden_promtool(void **state)
{
    (void)state;
    const uint8_t want[] = {
        0x00, 0x0b, 0xd0, 0x0f, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe8, 0x07,
        0x30, 0x97, 0xff, 0xe0, 0x00, 0x76, 0x03, 0xbf, 0xff, 0xb8, 0x4e, 0x20, 0xe3, 0x0d,
        0x40, 0xc0, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x6d, 0xb0, 0x85,
        0x7f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x01,
        0xe8, 0x48, 0x17, 0xff, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x8a, 0xd0, 0x5f,
        0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x20,
    };
    strata_sample s[11];
    golden_values(s, 0x7ff8000000000001ull);
    xor_appender a;
    build(&a, s, 11);
    assert_chunk_bytes(&a, want, sizeof want);
    xor_appender_free(&a);
}

static void test_prometheus_chunks(void **state)
{
    (void)state;
    rng r = {99};
    for (size_t c = 0; c < sizeof prom_chunks / sizeof prom_chunks[0]; c++) {
        size_t len, n;
        uint8_t *data = from_hex(prom_chunks[c], &len);
        strata_sample *s = decode_all(data, len, &n);
        assert_int_equal(n, be16_get(data));
        for (size_t i = 1; i < n; i++)
            assert_true(s[i].t > s[i - 1].t);
        /* Our encoder writes the very bytes Prometheus wrote. */
        xor_appender a;
        build(&a, s, n);
        assert_chunk_bytes(&a, data, len);
        xor_appender_free(&a);
        check_chunk(s, n, 1, &r);
        free(s);
        free(data);
    }
    /* Spot checks against the generator. Series a's first sample came 45 s early. */
    size_t len, n;
    uint8_t *data = from_hex(prom_chunks[0], &len);
    strata_sample *s = decode_all(data, len, &n);
    assert_int_equal(n, 138);
    assert_true(s[0].t == 1699999970000);
    free(s);
    free(data);
    /* Series c: 130 samples every 15 s from 1700000015000, multiples of 4096. */
    data = from_hex(prom_chunks[3], &len);
    s = decode_all(data, len, &n);
    assert_int_equal(n, 130);
    for (size_t i = 0; i < n; i++) {
        assert_true(s[i].t == 1700000015000 + (int64_t)i * 15000);
        assert_true(fmod(s[i].v, 4096) == 0);
    }
    free(s);
    free(data);
}

static const uint64_t special_bits[] = {
    0x7ff0000000000002ull, /* Prometheus' staleness marker */
    0x7ff8000000000001ull, /* Prometheus' NaN */
    0x7ff8000000000000ull, 0xfff8000000000000ull, 0x7ff0000000000001ull, 0xffffffffffffffffull,
    0x7fffffffffffffffull, 0x8000000000000000ull,                        /* -0.0 */
    0x0000000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull, /* +-Inf */
    0x0000000000000001ull, 0x000fffffffffffffull, 0x8000000000000001ull, /* subnormals */
    0x0010000000000000ull, 0x7fefffffffffffffull, 0xffefffffffffffffull, 0x5555555555555555ull,
    0xaaaaaaaaaaaaaaaaull, 0x3ff0000000000000ull, 0x3ff0000000000001ull, 0x4000000000000000ull,
};
#define N_SPECIAL (sizeof special_bits / sizeof special_bits[0])

/* Delta-of-delta values on both sides of every bucket edge. */
static const int64_t dod_edges[] = {
    0,       1,       -1,      8191,    8192,    8193,       -8190,         -8191,  -8192,
    65535,   65536,   65537,   -65534,  -65535,  -65536,     524287,        524288, 524289,
    -524286, -524287, -524288, -524289, 1 << 30, -(1 << 30), INT64_MAX / 4, 0,
};
#define N_EDGES (sizeof dod_edges / sizeof dod_edges[0])

/* One random series: mode picks the timestamp and value shapes. */
static void gen_series(rng *r, strata_sample *s, size_t n)
{
    unsigned tmode = (unsigned)(rnd(r) % 7), vmode = (unsigned)(rnd(r) % 9);
    int64_t t = (int64_t)(rnd(r) % 4000000000000ull) - 2000000000000;
    if (tmode == 5) t = INT64_MIN + (int64_t)(rnd(r) % 1000);
    uint64_t delta = 15000;
    double v = (double)(rnd(r) % 100000);
    uint64_t bits = rnd(r);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = rnd(r);
        switch (tmode) {
        case 0:
            delta = 15000;
            break;
        case 1:
            delta = 15000 + x % 41 - 20;
            break;
        case 2:
            delta = x % 3;
            break; /* equal timestamps */
        case 3: {  /* bucket edges: the delta moves by exactly an edge, kept non-negative */
            int64_t d = (int64_t)delta + dod_edges[x % N_EDGES];
            delta = d < 0 || d > INT64_MAX / 2 ? 1000000000000ull : (uint64_t)d;
            break;
        }
        case 4:
            delta = x >> (x % 64);
            break; /* any size */
        case 5:
            delta = x >> 2;
            break; /* huge, from near INT64_MIN */
        default:
            delta = (x & 1) ? 1 : 1000000000000ull;
            break;
        }
        /* Stay non-decreasing: clamp instead of wrapping past INT64_MAX. */
        if ((uint64_t)INT64_MAX - (uint64_t)t < delta) delta = (uint64_t)INT64_MAX - (uint64_t)t;
        if (i > 0) t = (int64_t)((uint64_t)t + delta);
        switch (vmode) {
        case 0:
            v += (double)(x % 300) / 100.0;
            break; /* float counter */
        case 1:
            v += (double)(x % 2000);
            break; /* integer counter */
        case 2:
            v = from_bits(x);
            break; /* any bit pattern */
        case 3:
            v = from_bits(special_bits[x % N_SPECIAL]);
            break; /* specials, repeats */
        case 4:
            break; /* constant */
        case 5:
            v = floor((v + ((double)(x % 41) - 20) * 4096) / 4096) * 4096;
            break;
        case 6:
            v = from_bits((x & 1) ? bits : bits ^ 0xff0);
            break; /* window reuse */
        case 7:
            v = from_bits(bits ^ (1ull << (x % 64)));
            break; /* one bit anywhere */
        default:
            v = 20 + sin((double)i / 7) + (double)(x % 1000) * 1e-9;
            break;
        }
        s[i] = (strata_sample){t, v};
    }
}

static void test_random_property(void **state)
{
    (void)state;
    rng r = {20261125};
    strata_sample *s = malloc(400 * sizeof *s);
    assert_non_null(s);
    for (int round = 0; round < 3000; round++) {
        size_t n;
        switch (round % 10) {
        case 0:
            n = 1;
            break;
        case 1:
            n = 2;
            break;
        case 2:
            n = 3;
            break;
        case 3:
            n = 120;
            break;
        default:
            n = 1 + rnd(&r) % 400;
            break;
        }
        gen_series(&r, s, n);
        check_chunk(s, n, round < 300 ? 1 : 37, &r);
    }
    free(s);
}

static void test_adversarial_values(void **state)
{
    (void)state;
    /* Every ordered pair of specials follows each other somewhere. */
    strata_sample s[2 * N_SPECIAL * N_SPECIAL + 1];
    size_t n = 0;
    for (size_t i = 0; i < N_SPECIAL; i++)
        for (size_t j = 0; j < N_SPECIAL; j++) {
            s[n] = (strata_sample){(int64_t)n * 1000, from_bits(special_bits[i])};
            n++;
            s[n] = (strata_sample){(int64_t)n * 1000, from_bits(special_bits[j])};
            n++;
        }
    check_chunk(s, n, 1, NULL);
    /* Every single-bit XOR position, in both directions, and XORs of more than 31 leading
     * zeros (the field is capped at 31). */
    strata_sample b[200];
    n = 0;
    for (unsigned k = 0; k < 64; k++)
        b[n++] = (strata_sample){(int64_t)n, from_bits(1ull << k)};
    for (unsigned k = 64; k-- > 0;)
        b[n++] = (strata_sample){(int64_t)n, from_bits(1ull << k)};
    for (unsigned k = 0; k < 64; k++)
        b[n++] = (strata_sample){(int64_t)n, from_bits(k)};
    check_chunk(b, n, 1, NULL);
}

/* Each delta of delta costs exactly its bucket's bits. */
static void test_dod_buckets(void **state)
{
    (void)state;
    static const struct {
        int64_t dod;
        unsigned bits;
    } cases[] = {
        {0, 1},       {1, 16},       {-1, 16},      {8192, 16},          {8193, 20},   {-8191, 16},
        {-8192, 20},  {65536, 20},   {65537, 24},   {-65535, 20},        {-65536, 24}, {524288, 24},
        {524289, 68}, {-524287, 24}, {-524288, 68}, {INT64_MAX / 2, 68},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t d1 = 1000000;
        strata_sample s[3] = {{-7, 1.0}, {-7 + d1, 1.0}, {-7 + d1 + d1 + cases[i].dod, 1.0}};
        xor_appender a;
        build(&a, s, 2);
        uint32_t before = a.w.nbits;
        assert_int_equal(xor_append(&a, s[2].t, s[2].v), 0);
        assert_int_equal(a.w.nbits - before, cases[i].bits + 1); /* + 1: value unchanged */
        xor_appender_free(&a);
        check_chunk(s, 3, 1, NULL);
    }
}

static void test_lengths_and_memory(void **state)
{
    (void)state;
    assert_int_equal(sizeof(xor_appender), 48);
    /* A constant, regular 120-sample chunk: 2 bits a sample after the first two, 48 bytes, in a
     * 64-byte buffer. */
    strata_sample s[120];
    for (int i = 0; i < 120; i++)
        s[i] = (strata_sample){1700000000000 + i * 15000, 42.0};
    xor_appender a;
    build(&a, s, 120);
    size_t len;
    xor_appender_bytes(&a, &len);
    assert_int_equal(len, 48);
    assert_int_equal(xor_appender_mem(&a), 48 + 64);
    xor_appender_free(&a);

    /* 65535 samples fill the 16-bit count; one more is refused and changes nothing. */
    rng r = {5};
    strata_sample *big = malloc(65536 * sizeof *big);
    assert_non_null(big);
    gen_series(&r, big, 65535);
    for (unsigned i = 0; i < 65535; i++)
        big[i].t = 1700000000000 + (int64_t)i * 15000 + i % 3;
    check_chunk(big, 65535, 9973, &r);
    build(&a, big, 65535);
    size_t before;
    const uint8_t *b = xor_appender_bytes(&a, &before);
    assert_int_equal(be16_get(b), 65535);
    assert_int_equal(xor_append(&a, INT64_MAX, 1.0), STRATA_ELIMIT);
    xor_appender_bytes(&a, &len);
    assert_int_equal(len, before);
    size_t n;
    strata_sample *out = decode_all(b, len, &n);
    assert_int_equal(n, 65535);
    assert_same_samples(out, big, n);
    /* Geometric growth keeps the buffer within twice what it needs. */
    assert_true(xor_appender_mem(&a) - sizeof a <= 2 * (len + 9));
    free(out);
    free(big);
    xor_appender_free(&a);

    /* An empty chunk is its header alone and decodes to nothing. */
    assert_int_equal(xor_appender_init(&a), 0);
    b = xor_appender_bytes(&a, &len);
    assert_int_equal(len, 2);
    assert_int_equal(be16_get(b), 0);
    out = decode_all(b, len, &n);
    assert_int_equal(n, 0);
    free(out);
    xor_appender_free(&a);
}

/* Every prefix of a valid chunk: no over-read, the samples before the cut are right, and the
 * result is STRATA_ECORRUPT; with the header lowered to what survived, a clean shorter chunk. */
static void check_prefixes(const uint8_t *full, size_t len, const strata_sample *want, size_t n)
{
    strata_sample *out = malloc((n + 1) * sizeof *out);
    assert_non_null(out);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = dup_exact(full, cut);
        xor_iter it;
        int rc = xor_iter_init(&it, p, cut);
        size_t k = 0;
        if (rc == 0) {
            while ((rc = xor_iter_next(&it)) == 1) {
                assert_true(k < n);
                xor_iter_at(&it, &out[k].t, &out[k].v);
                k++;
            }
            assert_int_equal(xor_iter_next(&it), rc); /* sticky */
        }
        assert_int_equal(rc, STRATA_ECORRUPT);
        assert_true(k < n);
        assert_same_samples(out, want, k);
        char err[STRATA_ERRMSG_SIZE] = "";
        size_t got;
        assert_int_equal(xor_decode(p, cut, out, n, &got, err), STRATA_ECORRUPT);
        assert_true(strlen(err) > 0);
        assert_int_equal(got, k);
        if (cut >= 2) {
            be16_put(p, (uint16_t)k);
            assert_int_equal(xor_decode(p, cut, out, n, &got, NULL), 0);
            assert_int_equal(got, k);
            assert_same_samples(out, want, k);
        }
        free(p);
    }
    free(out);
}

static void test_truncated_prefixes(void **state)
{
    (void)state;
    rng r = {31337};
    strata_sample s[300];
    for (int round = 0; round < 60; round++) {
        size_t n = 1 + rnd(&r) % 300;
        gen_series(&r, s, n);
        xor_appender a;
        build(&a, s, n);
        size_t len;
        const uint8_t *b = xor_appender_bytes(&a, &len);
        check_prefixes(b, len, s, n);
        xor_appender_free(&a);
    }
    for (size_t c = 0; c < sizeof prom_chunks / sizeof prom_chunks[0]; c += 3) {
        size_t len, n;
        uint8_t *data = from_hex(prom_chunks[c], &len);
        strata_sample *want = decode_all(data, len, &n);
        check_prefixes(data, len, want, n);
        free(want);
        free(data);
    }
}

/* Random bytes and bit-flipped chunks: never an over-read, only the documented results. */
static void test_garbage(void **state)
{
    (void)state;
    rng r = {4242};
    strata_sample out[512];
    for (int round = 0; round < 20000; round++) {
        size_t n = rnd(&r) % 96;
        uint8_t *g = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            g[i] = (uint8_t)rnd(&r);
        if (n >= 2 && round % 2) be16_put(g, (uint16_t)(rnd(&r) % 64)); /* plausible counts */
        xor_iter it;
        if (xor_iter_init(&it, g, n) == 0) {
            unsigned k = 0;
            int rc;
            while ((rc = xor_iter_next(&it)) == 1)
                k++;
            assert_true(rc == 0 || rc == STRATA_ECORRUPT);
            assert_true(k <= xor_iter_total(&it));
        }
        size_t got;
        int rc = xor_decode(g, n, out, 512, &got, NULL);
        assert_true(rc == 0 || rc == STRATA_ECORRUPT || rc == STRATA_ELIMIT);
        xor_appender re;
        rc = xor_appender_from_bytes(&re, g, n, NULL);
        assert_true(rc == 0 || rc == STRATA_ECORRUPT);
        if (rc == 0) xor_appender_free(&re);
        free(g);
    }
    strata_sample s[200];
    for (int round = 0; round < 300; round++) {
        size_t n = 1 + rnd(&r) % 200;
        gen_series(&r, s, n);
        xor_appender a;
        build(&a, s, n);
        size_t len;
        const uint8_t *b = xor_appender_bytes(&a, &len);
        uint8_t *m = dup_exact(b, len);
        for (int flips = 0; flips < 20; flips++) {
            size_t bit = rnd(&r) % (len * 8);
            m[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
            size_t got;
            int rc = xor_decode(m, len, out, 512, &got, NULL);
            assert_true(rc == 0 || rc == STRATA_ECORRUPT || rc == STRATA_ELIMIT);
        }
        free(m);
        xor_appender_free(&a);
    }
}

/* Hand-built streams no encoder writes, and one that only a reopened Prometheus appender does. */
static void test_unusual_streams(void **state)
{
    (void)state;
    bit_writer w;
    uint8_t *p;
    size_t len, n;
    strata_sample out[4];
    /* '11' with 31 leading zeros and 40 meaningful bits: 71 > 64. */
    assert_int_equal(bit_writer_init(&w, 0), 0);
    bit_write(&w, 2, 16);
    bit_write(&w, 0x02, 8); /* t = 1 */
    bit_write(&w, 0, 64);
    bit_write(&w, 0x01, 8); /* delta 1 */
    bit_write(&w, 3, 2);
    bit_write(&w, 31, 5);
    bit_write(&w, 40, 6);
    bit_write(&w, UINT64_MAX, 64);
    const uint8_t *b = bit_writer_bytes(&w, &len);
    p = dup_exact(b, len);
    assert_int_equal(xor_decode(p, len, out, 4, &n, NULL), STRATA_ECORRUPT);
    assert_int_equal(n, 1);
    free(p);
    bit_writer_free(&w);

    /* A varint of 11 bytes for the first timestamp. */
    const uint8_t longvar[] = {0x00, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                               0x80, 0x00, 0,    0,    0,    0,    0,    0,    0,    0};
    assert_int_equal(xor_decode(longvar, sizeof longvar, out, 4, &n, NULL), STRATA_ECORRUPT);

    /* Prometheus' appender reopened on a one-sample chunk starts with leading = trailing = 0,
     * so its second value is '10' + 64 bits: readers must take that as the whole XOR. */
    assert_int_equal(bit_writer_init(&w, 0), 0);
    bit_write(&w, 3, 16);
    bit_write(&w, 0xd0, 8);
    bit_write(&w, 0x0f, 8); /* t = 1000 */
    bit_write(&w, to_bits(1.0), 64);
    bit_write(&w, 0xe8, 8);
    bit_write(&w, 0x07, 8); /* delta 1000 */
    bit_write(&w, 2, 2);
    bit_write(&w, to_bits(1.0) ^ to_bits(-3.5), 64);
    bit_write(&w, 0, 1); /* dod 0 */
    bit_write(&w, 2, 2); /* window 0/0 again */
    bit_write(&w, to_bits(-3.5) ^ to_bits(0.25), 64);
    b = bit_writer_bytes(&w, &len);
    p = dup_exact(b, len);
    assert_int_equal(xor_decode(p, len, out, 4, &n, NULL), 0);
    const strata_sample want[] = {{1000, 1.0}, {2000, -3.5}, {3000, 0.25}};
    assert_int_equal(n, 3);
    assert_same_samples(out, want, 3);
    /* Reopening it continues with that window: appending more must stay decodable. */
    xor_appender a;
    assert_int_equal(xor_appender_from_bytes(&a, p, len, NULL), 0);
    assert_int_equal(a.leading, 0);
    assert_int_equal(a.trailing, 0);
    assert_int_equal(xor_append(&a, 4000, 7.0), 0);
    assert_int_equal(xor_append(&a, 5000, 7.5), 0);
    b = xor_appender_bytes(&a, &len);
    strata_sample *all = decode_all(b, len, &n);
    assert_int_equal(n, 5);
    assert_same_samples(all, want, 3);
    assert_true(all[3].t == 4000 && all[3].v == 7.0 && all[4].t == 5000 && all[4].v == 7.5);
    free(all);
    xor_appender_free(&a);
    free(p);
    bit_writer_free(&w);
}

static void test_seek(void **state)
{
    (void)state;
    strata_sample s[100];
    for (int i = 0; i < 100; i++)
        s[i] = (strata_sample){i * 10 + 100, i};
    s[51].t = s[50].t; /* equal timestamps: seek lands on the first */
    xor_appender a;
    build(&a, s, 100);
    size_t len;
    const uint8_t *b = xor_appender_bytes(&a, &len);
    int64_t t;
    double v;
    xor_iter it;

    assert_int_equal(xor_iter_init(&it, b, len), 0);
    assert_int_equal(xor_iter_seek(&it, INT64_MIN), 1); /* before the first: the first */
    xor_iter_at(&it, &t, &v);
    assert_true(t == 100 && v == 0);

    assert_int_equal(xor_iter_seek(&it, 355), 1); /* between samples: the next one */
    xor_iter_at(&it, &t, &v);
    assert_true(t == 360 && v == 26);
    assert_int_equal(xor_iter_seek(&it, 360), 1); /* already there: stays */
    xor_iter_at(&it, &t, &v);
    assert_true(t == 360 && v == 26);
    assert_int_equal(xor_iter_seek(&it, 100), 1); /* never goes backwards */
    xor_iter_at(&it, &t, &v);
    assert_true(t == 360 && v == 26);
    assert_int_equal(xor_iter_seek(&it, 600), 1); /* exact, on the first of two equal */
    xor_iter_at(&it, &t, &v);
    assert_true(t == 600 && v == 50);
    assert_int_equal(xor_iter_next(&it), 1);
    xor_iter_at(&it, &t, &v);
    assert_true(t == 600 && v == 51);
    assert_int_equal(xor_iter_seek(&it, 1090), 1); /* the last */
    xor_iter_at(&it, &t, &v);
    assert_true(t == 1090 && v == 99);
    assert_int_equal(xor_iter_next(&it), 0);
    assert_int_equal(xor_iter_seek(&it, 0), 0); /* after the end: stays at the end */
    assert_int_equal(xor_iter_next(&it), 0);

    assert_int_equal(xor_iter_init(&it, b, len), 0);
    assert_int_equal(xor_iter_seek(&it, 1091), 0); /* past the last */
    assert_int_equal(xor_iter_next(&it), 0);

    /* Random seeks against a linear scan, with next in between. */
    rng r = {77};
    for (int round = 0; round < 2000; round++) {
        assert_int_equal(xor_iter_init(&it, b, len), 0);
        size_t pos = 0; /* index of the first sample not yet passed */
        bool started = false;
        for (int step = 0; step < 6; step++) {
            if (rnd(&r) % 3 == 0) {
                int rc = xor_iter_next(&it);
                size_t want = started ? pos + 1 : 0;
                if (want >= 100) {
                    assert_int_equal(rc, 0);
                    break;
                }
                assert_int_equal(rc, 1);
                pos = want;
            } else {
                int64_t target = (int64_t)(rnd(&r) % 1200);
                size_t want = started ? pos : 0;
                while (want < 100 && s[want].t < target)
                    want++;
                int rc = xor_iter_seek(&it, target);
                if (want >= 100) {
                    assert_int_equal(rc, 0);
                    break;
                }
                assert_int_equal(rc, 1);
                pos = want;
            }
            started = true;
            xor_iter_at(&it, &t, &v);
            assert_true(t == s[pos].t && v == s[pos].v);
        }
    }
    xor_appender_free(&a);

    /* Empty and corrupt chunks. */
    const uint8_t empty[] = {0, 0};
    assert_int_equal(xor_iter_init(&it, empty, 2), 0);
    assert_int_equal(xor_iter_seek(&it, 0), 0);
    const uint8_t bad[] = {0, 5, 0x80};
    assert_int_equal(xor_iter_init(&it, bad, 3), 0);
    assert_int_equal(xor_iter_seek(&it, 0), STRATA_ECORRUPT);
    assert_int_equal(xor_iter_next(&it), STRATA_ECORRUPT);
    assert_int_equal(xor_iter_init(&it, bad, 1), STRATA_ECORRUPT);
    assert_int_equal(xor_iter_next(&it), STRATA_ECORRUPT);
    assert_int_equal(xor_iter_seek(&it, 0), STRATA_ECORRUPT);
}

static void test_reopen(void **state)
{
    (void)state;
    strata_sample s[150];
    rng r = {11};
    gen_series(&r, s, 150);
    for (int i = 0; i < 150; i++)
        s[i].t = 1000 + i * 15000 + i % 4;
    xor_appender full;
    build(&full, s, 150);
    size_t flen;
    const uint8_t *fb = xor_appender_bytes(&full, &flen);
    /* Reopen at every length and append the rest: always the same bytes. */
    for (size_t k = 0; k <= 150; k++) {
        xor_appender pre, re;
        build(&pre, s, k);
        size_t plen;
        const uint8_t *pb = xor_appender_bytes(&pre, &plen);
        /* Trailing bytes past the last sample (and set padding bits) are dropped. */
        uint8_t *junk = malloc(plen + 3);
        memcpy(junk, pb, plen);
        junk[plen] = 0xff;
        junk[plen + 1] = 0xa5;
        junk[plen + 2] = 0x5a;
        if (k > 0) junk[plen - 1] |= 0x00; /* padding bits are zero in our chunks already */
        assert_int_equal(xor_appender_from_bytes(&re, junk, plen + 3, NULL), 0);
        free(junk);
        size_t rlen;
        const uint8_t *rb = xor_appender_bytes(&re, &rlen);
        assert_int_equal(rlen, plen);
        assert_memory_equal(rb, pb, plen);
        assert_int_equal(xor_appender_count(&re), k);
        if (k) {
            assert_true(xor_appender_last_t(&re) == s[k - 1].t);
            assert_true(to_bits(xor_appender_last_v(&re)) == to_bits(s[k - 1].v));
        }
        for (size_t i = k; i < 150; i++)
            assert_int_equal(xor_append(&re, s[i].t, s[i].v), 0);
        assert_chunk_bytes(&re, fb, flen);
        xor_appender_free(&re);
        xor_appender_free(&pre);
    }
    /* Set padding bits after the last sample are cleared before new bits go in. */
    xor_appender pre, re;
    build(&pre, s, 7);
    size_t plen;
    const uint8_t *pb = xor_appender_bytes(&pre, &plen);
    uint8_t *dirty = dup_exact(pb, plen);
    uint32_t used = pre.w.nbits;
    if (used % 8) dirty[plen - 1] |= (uint8_t)(0xff >> (used % 8));
    assert_int_equal(xor_appender_from_bytes(&re, dirty, plen, NULL), 0);
    for (size_t i = 7; i < 150; i++)
        assert_int_equal(xor_append(&re, s[i].t, s[i].v), 0);
    assert_chunk_bytes(&re, fb, flen);
    xor_appender_free(&re);
    xor_appender_free(&pre);
    free(dirty);

    /* Corrupt input is refused with a reason. */
    char err[STRATA_ERRMSG_SIZE] = "";
    uint8_t *cut = dup_exact(fb, flen - 1);
    assert_int_equal(xor_appender_from_bytes(&re, cut, flen - 1, err), STRATA_ECORRUPT);
    assert_non_null(strstr(err, "150"));
    assert_null(re.w.data);
    xor_appender_free(&re); /* harmless */
    free(cut);
    err[0] = 0;
    assert_int_equal(xor_appender_from_bytes(&re, fb, 1, err), STRATA_ECORRUPT);
    assert_true(strlen(err) > 0);
    xor_appender_free(&full);
}

static void test_decode_errors(void **state)
{
    (void)state;
    strata_sample s[10], out[10];
    for (int i = 0; i < 10; i++)
        s[i] = (strata_sample){i, i};
    xor_appender a;
    build(&a, s, 10);
    size_t len, n = 99;
    const uint8_t *b = xor_appender_bytes(&a, &len);
    char err[STRATA_ERRMSG_SIZE] = "";
    assert_int_equal(xor_decode(b, len, out, 9, &n, err), STRATA_ELIMIT);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "10 samples"));
    assert_int_equal(xor_decode(b, len, out, 10, &n, NULL), 0);
    assert_int_equal(n, 10);
    assert_int_equal(xor_decode(NULL, 0, out, 10, &n, err), STRATA_ECORRUPT);
    xor_appender_free(&a);
}

static void test_codec_table(void **state)
{
    (void)state;
    const chunk_codec *c = chunk_codec_get(CHUNK_ENC_XOR);
    assert_non_null(c);
    assert_int_equal(c->id, CHUNK_ENC_XOR);
    assert_int_equal(CHUNK_ENC_XOR, 1); /* Prometheus' number */
    assert_string_equal(c->name, "XOR");
    assert_ptr_equal(chunk_codec_by_name("XOR"), c);
    assert_null(chunk_codec_by_name("xor2"));
    assert_null(chunk_codec_by_name(NULL));
    assert_null(chunk_codec_get(CHUNK_ENC_NONE));
    assert_null(chunk_codec_get((chunk_encoding)99));
    strata_sample s[3] = {{1, 1}, {2, 2}, {4, 3}}, out[3];
    xor_appender a;
    build(&a, s, 3);
    size_t len, n;
    const uint8_t *b = xor_appender_bytes(&a, &len);
    uint32_t count;
    assert_int_equal(c->count(b, len, &count), 0);
    assert_int_equal(count, 3);
    assert_int_equal(c->count(b, 1, &count), STRATA_ECORRUPT);
    assert_int_equal(c->decode(b, len, out, 3, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_same_samples(out, s, 3);
    xor_appender_free(&a);
}

static void test_appender_lifecycle(void **state)
{
    (void)state;
    xor_appender a;
    memset(&a, 0, sizeof a);
    xor_appender_free(&a); /* zeroed: nothing to free */
    assert_int_equal(xor_append(&a, 1, 1.0), STRATA_EINVAL);
    assert_int_equal(xor_appender_init(&a), 0);
    assert_int_equal(xor_appender_mem(&a), sizeof a + 32);
    assert_int_equal(xor_append(&a, -5, -0.0), 0);
    assert_true(xor_appender_last_t(&a) == -5);
    assert_true(to_bits(xor_appender_last_v(&a)) == 0x8000000000000000ull);
    xor_appender_free(&a);
    assert_null(a.w.data);
    xor_appender_free(&a);
    assert_int_equal(xor_append(&a, 1, 1.0), STRATA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_small),
        cmocka_unit_test(test_golden_all_branches),
        cmocka_unit_test(test_golden_promtool),
        cmocka_unit_test(test_prometheus_chunks),
        cmocka_unit_test(test_random_property),
        cmocka_unit_test(test_adversarial_values),
        cmocka_unit_test(test_dod_buckets),
        cmocka_unit_test(test_lengths_and_memory),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_unusual_streams),
        cmocka_unit_test(test_seek),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_codec_table),
        cmocka_unit_test(test_appender_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
