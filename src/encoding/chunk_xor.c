/*
 * chunk_xor.c: the Gorilla XOR chunk, in Prometheus' chunkenc XOR layout bit for bit.
 *
 *   header   2 bytes   big-endian sample count
 *   sample 0           timestamp as a signed varint, value as its raw 64 bits
 *   sample 1           timestamp delta as an unsigned varint, value XOR-encoded
 *   sample n           delta-of-delta of the timestamp:
 *                        '0'                       dod == 0
 *                        '10'   + 14 bits          -8191 <= dod <= 8192
 *                        '110'  + 17 bits          -65535 <= dod <= 65536
 *                        '1110' + 20 bits          -524287 <= dod <= 524288
 *                        '1111' + 64 bits          anything else
 *                      (two's complement in the field; a read value above 2^(n-1) is negative)
 *                      and the value XOR-encoded against the previous one:
 *                        '0'                       same bits
 *                        '10'   + meaningful bits  XOR fits the previous leading/trailing window
 *                        '11'   + 5 bits leading zeros (at most 31) + 6 bits length (64 as 0)
 *                               + meaningful bits
 *
 * Varints inside the stream are whole bytes written at the current bit position. A regular
 * 15-second series costs one bit per timestamp; values cost what their XOR does. Every double bit
 * pattern round-trips, NaN payloads included, because only bits are ever compared.
 */
#include "encoding/encoding_internal.h"

#include <stdio.h>
#include <string.h>

/* The most bytes one append can add: a 10-byte varint, 64 value bits, and the widest XOR form
 * (2 + 5 + 6 + 64 bits) or dod form (4 + 64 bits) plus one straddled byte. */
#define XOR_APPEND_MAX_BYTES 32

static bool bit_range(int64_t x, unsigned nbits)
{
    return -((1LL << (nbits - 1)) - 1) <= x && x <= (1LL << (nbits - 1));
}

int xor_appender_init(xor_appender *a)
{
    memset(a, 0, sizeof *a);
    if (bw_init(&a->w, 32)) return STRATA_ENOMEM;
    static const uint8_t zero[2] = {0, 0};
    bw_write_bytes_aligned(&a->w, zero, 2);
    a->leading = 0xff;
    return 0;
}

void xor_appender_free(xor_appender *a)
{
    bw_free(&a->w);
}

const uint8_t *xor_appender_bytes(const xor_appender *a, size_t *len)
{
    *len = a->w.len;
    return a->w.data;
}

uint16_t xor_appender_count(const xor_appender *a)
{
    return a->count;
}

size_t xor_appender_mem(const xor_appender *a)
{
    return sizeof *a + a->w.cap;
}

static void write_varint_bits(bit_writer *w, uint64_t u)
{
    uint8_t tmp[VARINT_MAX_LEN];
    size_t n = varint_put_u64(tmp, u);
    for (size_t i = 0; i < n; i++) bw_put_bits(w, tmp[i], 8);
}

static void xor_write_value(xor_appender *a, uint64_t bits)
{
    uint64_t delta = bits ^ a->v_bits;
    if (delta == 0) {
        bw_put_bits(&a->w, 0, 1);
        return;
    }
    bw_put_bits(&a->w, 1, 1);
    unsigned lead = (unsigned)__builtin_clzll(delta);
    unsigned trail = (unsigned)__builtin_ctzll(delta);
    if (lead >= 32) lead = 31; /* the field has 5 bits */
    if (a->leading != 0xff && lead >= a->leading && trail >= a->trailing) {
        bw_put_bits(&a->w, 0, 1);
        bw_put_bits(&a->w, delta >> a->trailing, 64u - a->leading - a->trailing);
        return;
    }
    a->leading = (uint8_t)lead;
    a->trailing = (uint8_t)trail;
    unsigned sig = 64 - lead - trail;
    bw_put_bits(&a->w, 1, 1);
    bw_put_bits(&a->w, lead, 5);
    bw_put_bits(&a->w, sig & 63, 6); /* 64 does not fit in 6 bits and is written as 0 */
    bw_put_bits(&a->w, delta >> trail, sig);
}

int xor_append(xor_appender *a, int64_t t, double v)
{
    if (a->count == UINT16_MAX) return STRATA_ELIMIT;
    /* Reserve first so that no write below can fail halfway and leave a torn sample. */
    if (bw_reserve(&a->w, XOR_APPEND_MAX_BYTES)) return STRATA_ENOMEM;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (a->count == 0) {
        write_varint_bits(&a->w, ((uint64_t)t << 1) ^ (uint64_t)(t >> 63));
        bw_put_bits(&a->w, bits, 64);
    } else if (a->count == 1) {
        int64_t delta = t - a->t;
        write_varint_bits(&a->w, (uint64_t)delta);
        xor_write_value(a, bits);
        a->t_delta = delta;
    } else {
        int64_t delta = t - a->t;
        int64_t dod = delta - a->t_delta;
        if (dod == 0) {
            bw_put_bits(&a->w, 0, 1);
        } else if (bit_range(dod, 14)) {
            bw_put_bits(&a->w, 0x2, 2);
            bw_put_bits(&a->w, (uint64_t)dod, 14);
        } else if (bit_range(dod, 17)) {
            bw_put_bits(&a->w, 0x6, 3);
            bw_put_bits(&a->w, (uint64_t)dod, 17);
        } else if (bit_range(dod, 20)) {
            bw_put_bits(&a->w, 0xe, 4);
            bw_put_bits(&a->w, (uint64_t)dod, 20);
        } else {
            bw_put_bits(&a->w, 0xf, 4);
            bw_put_bits(&a->w, (uint64_t)dod, 64);
        }
        xor_write_value(a, bits);
        a->t_delta = delta;
    }
    a->t = t;
    a->v_bits = bits;
    a->count++;
    a->w.data[0] = (uint8_t)(a->count >> 8);
    a->w.data[1] = (uint8_t)a->count;
    return 0;
}

int xor_iter_init(xor_iter *it, const uint8_t *data, size_t len)
{
    memset(it, 0, sizeof *it);
    if (len < 2) {
        it->err = STRATA_ECORRUPT;
        return STRATA_ECORRUPT;
    }
    it->total = (uint16_t)((data[0] << 8) | data[1]);
    br_init(&it->r, data + 2, len - 2);
    return 0;
}

static int read_varint_bits(bit_reader *r, uint64_t *out)
{
    uint8_t tmp[VARINT_MAX_LEN];
    for (size_t i = 0; i < VARINT_MAX_LEN; i++) {
        uint64_t b;
        if (br_read_bits(r, 8, &b)) return -1;
        tmp[i] = (uint8_t)b;
        if (!(b & 0x80)) {
            const uint8_t *p = tmp;
            return varint_get_u64(&p, tmp + i + 1, out);
        }
    }
    return -1;
}

static int xor_read_value(xor_iter *it)
{
    unsigned bit;
    if (br_read_bit(&it->r, &bit)) return -1;
    if (!bit) return 0;
    if (br_read_bit(&it->r, &bit)) return -1;
    if (bit) {
        uint64_t lead, sig;
        if (br_read_bits(&it->r, 5, &lead) || br_read_bits(&it->r, 6, &sig)) return -1;
        if (sig == 0) sig = 64;
        if (lead + sig > 64) return -1; /* no encoder writes this: garbage */
        it->leading = (uint8_t)lead;
        it->trailing = (uint8_t)(64 - lead - sig);
    }
    unsigned n = 64u - it->leading - it->trailing;
    uint64_t v;
    if (br_read_bits(&it->r, n, &v)) return -1;
    it->v_bits ^= n == 64 ? v : v << it->trailing;
    return 0;
}

static int fail(xor_iter *it)
{
    it->err = STRATA_ECORRUPT;
    return STRATA_ECORRUPT;
}

int xor_iter_next(xor_iter *it)
{
    if (it->err) return it->err;
    if (it->read >= it->total) return 0;
    if (it->read == 0) {
        uint64_t u, v;
        if (read_varint_bits(&it->r, &u) || br_read_bits(&it->r, 64, &v)) return fail(it);
        it->t = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        it->v_bits = v;
    } else if (it->read == 1) {
        uint64_t u;
        if (read_varint_bits(&it->r, &u)) return fail(it);
        it->t_delta = (int64_t)u;
        it->t = (int64_t)((uint64_t)it->t + u);
        if (xor_read_value(it)) return fail(it);
    } else {
        unsigned prefix = 0, bit;
        for (int i = 0; i < 4; i++) {
            if (br_read_bit(&it->r, &bit)) return fail(it);
            if (!bit) break;
            prefix++;
        }
        static const unsigned widths[] = {0, 14, 17, 20, 64};
        unsigned w = widths[prefix];
        int64_t dod = 0;
        if (w) {
            uint64_t b;
            if (br_read_bits(&it->r, w, &b)) return fail(it);
            if (w != 64 && b > (1ull << (w - 1))) b -= 1ull << w; /* back to negative */
            dod = (int64_t)b;
        }
        it->t_delta = (int64_t)((uint64_t)it->t_delta + (uint64_t)dod);
        it->t = (int64_t)((uint64_t)it->t + (uint64_t)it->t_delta);
        if (xor_read_value(it)) return fail(it);
    }
    it->read++;
    return 1;
}

void xor_iter_at(const xor_iter *it, int64_t *t, double *v)
{
    *t = it->t;
    memcpy(v, &it->v_bits, sizeof *v);
}

int xor_iter_seek(xor_iter *it, int64_t t)
{
    if (it->err) return it->err;
    if (it->read > 0 && it->t >= t) return 1;
    int rc;
    while ((rc = xor_iter_next(it)) == 1)
        if (it->t >= t) return 1;
    return rc;
}

int xor_decode(const uint8_t *data, size_t len, strata_sample *out, size_t cap, size_t *n)
{
    xor_iter it;
    *n = 0;
    int rc = xor_iter_init(&it, data, len);
    if (rc) return rc;
    if (it.total > cap) return STRATA_ELIMIT;
    while ((rc = xor_iter_next(&it)) == 1) {
        xor_iter_at(&it, &out[*n].t, &out[*n].v);
        (*n)++;
    }
    return rc;
}

static int xor_count(const uint8_t *data, size_t len, uint32_t *n)
{
    if (len < 2) return STRATA_ECORRUPT;
    *n = (uint32_t)((data[0] << 8) | data[1]);
    return 0;
}

int xor_appender_from_bytes(xor_appender *a, const uint8_t *data, size_t len, char *err)
{
    /* Replaying is the only way to recover the appender's state (deltas, XOR window). */
    xor_iter it;
    if (xor_iter_init(&it, data, len)) {
        if (err) snprintf(err, STRATA_ERRMSG_SIZE, "chunk shorter than its header");
        return STRATA_ECORRUPT;
    }
    int rc = xor_appender_init(a);
    if (rc) return rc;
    while ((rc = xor_iter_next(&it)) == 1) {
        int64_t t;
        double v;
        xor_iter_at(&it, &t, &v);
        if ((rc = xor_append(a, t, v))) break;
    }
    if (rc < 0) {
        xor_appender_free(a);
        if (err && rc == STRATA_ECORRUPT) snprintf(err, STRATA_ERRMSG_SIZE, "corrupt XOR chunk");
        return rc;
    }
    return 0;
}

static const chunk_codec codecs[] = {
    {CHUNK_ENC_XOR, "XOR", xor_decode, xor_count},
};

const chunk_codec *chunk_codec_get(chunk_encoding id)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (codecs[i].id == id) return &codecs[i];
    return NULL;
}
