/*
 * chunk_xor.c: the Gorilla XOR chunk in Prometheus' chunkenc XOR layout, bit for bit, so that a
 * chunk Strata writes is one Prometheus (and promtool) reads and the reverse.
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
 * pattern round-trips, NaN payloads included, because only bits are ever compared. Timestamp
 * arithmetic is done modulo 2^64, as Go does it, so no input can overflow a signed integer and
 * the decoder reproduces whatever the encoder was given.
 *
 * The appender is on the ingest hot path: one call per sample computes the encoding of the whole
 * sample first, reserves its exact size once, then writes at most four fields without further
 * checks. The iterator peeks 64 bits at a time and decodes each field from that window, checking
 * once per field that the bits it consumed were inside the chunk.
 */
#include "core/core.h"
#include "encoding/encoding_internal.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(xor_appender) == 48, "xor_appender is kept small: the head has one a series");

#define XOR_HEADER_BITS 16
#define XOR_INIT_CAP 32

/* Whether dod fits Prometheus' nbits-wide field: -(2^(n-1) - 1) .. 2^(n-1). */
static inline bool bit_range(int64_t x, unsigned nbits)
{
    return -((1LL << (nbits - 1)) - 1) <= x && x <= (1LL << (nbits - 1));
}

/* ---- appender -------------------------------------------------------------------------------- */

int xor_appender_init(xor_appender *a)
{
    memset(a, 0, sizeof *a);
    int rc = bitw_grow(&a->w, XOR_INIT_CAP);
    if (rc) return rc;
    a->w.nbits = XOR_HEADER_BITS; /* count 0: the buffer is zeroed */
    a->leading = 0xff;
    return 0;
}

void xor_appender_free(xor_appender *a)
{
    bit_writer_free(&a->w);
}

const uint8_t *xor_appender_bytes(const xor_appender *a, size_t *len)
{
    return bit_writer_bytes(&a->w, len);
}

uint16_t xor_appender_count(const xor_appender *a)
{
    return a->count;
}

int64_t xor_appender_last_t(const xor_appender *a)
{
    return a->t;
}

double xor_appender_last_v(const xor_appender *a)
{
    double v;
    memcpy(&v, &a->v_bits, sizeof v);
    return v;
}

size_t xor_appender_mem(const xor_appender *a)
{
    return sizeof *a + a->w.cap;
}

/* A value's encoding, computed before anything is written. */
typedef struct xor_val {
    uint64_t head;    /* control bits and, for '11', the window fields */
    uint64_t payload; /* meaningful bits */
    unsigned head_n;
    unsigned payload_n;        /* 0 for an unchanged value */
    uint8_t leading, trailing; /* the window after this value */
} xor_val;

static inline void xor_val_plan(const xor_appender *a, uint64_t bits, xor_val *e)
{
    uint64_t x = bits ^ a->v_bits;
    e->leading = a->leading;
    e->trailing = a->trailing;
    if (x == 0) {
        e->head = 0;
        e->head_n = 1;
        e->payload = 0;
        e->payload_n = 0;
        return;
    }
    unsigned lead = (unsigned)__builtin_clzll(x);
    unsigned trail = (unsigned)__builtin_ctzll(x);
    if (lead > 31) lead = 31; /* the field has 5 bits */
    /* A leading of 0xff (no window yet) never passes the first test. */
    if (lead >= a->leading && trail >= a->trailing) {
        e->head = 0x2;
        e->head_n = 2;
        e->payload_n = 64u - a->leading - a->trailing;
        e->payload = x >> a->trailing;
        return;
    }
    unsigned sig = 64 - lead - trail;
    /* 64 meaningful bits do not fit in 6 bits and are written as 0; 0 bits never occur. */
    e->head = 0x3u << 11 | lead << 6 | (sig & 63);
    e->head_n = 13;
    e->payload_n = sig;
    e->payload = x >> trail;
    e->leading = (uint8_t)lead;
    e->trailing = (uint8_t)trail;
}

static inline void xor_val_write(bit_writer *w, const xor_val *e)
{
    if (e->payload_n == 0) {
        bitw_zeros(w, 1);
    } else if (e->head_n + e->payload_n <= 64) {
        bitw_put(w, e->head << e->payload_n | e->payload, e->head_n + e->payload_n);
    } else {
        bitw_put(w, e->head, e->head_n);
        bitw_put(w, e->payload, e->payload_n);
    }
}

/* Writes the bytes of a varint at the current bit position (the caller reserved them). */
static void put_varint(bit_writer *w, uint64_t u)
{
    uint8_t tmp[VARINT_MAX_LEN];
    size_t n = varint_put_u64(tmp, u);
    for (size_t i = 0; i < n; i++)
        bitw_put(w, tmp[i], 8);
}

/* The first two samples: varints, so kept off the hot path (and out of its register budget). */
__attribute__((noinline, cold)) static int xor_append_first(xor_appender *a, int64_t t,
                                                            uint64_t bits)
{
    if (a->count == 0) {
        uint64_t z = varint_zigzag(t);
        uint64_t end = a->w.nbits + 8 * varint_len_u64(z) + 64;
        if (bitw_need(end) > a->w.cap && bitw_grow(&a->w, bitw_need(end))) return STRATA_ENOMEM;
        put_varint(&a->w, z);
        bitw_put(&a->w, bits, 64);
        return 0;
    }
    uint64_t delta = (uint64_t)t - (uint64_t)a->t;
    xor_val e;
    xor_val_plan(a, bits, &e);
    uint64_t end = a->w.nbits + 8 * varint_len_u64(delta) + e.head_n + e.payload_n;
    if (bitw_need(end) > a->w.cap && bitw_grow(&a->w, bitw_need(end))) return STRATA_ENOMEM;
    put_varint(&a->w, delta);
    xor_val_write(&a->w, &e);
    a->t_delta = delta;
    a->leading = e.leading;
    a->trailing = e.trailing;
    return 0;
}

int xor_append(xor_appender *a, int64_t t, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint16_t count = a->count;
    if (ENC_UNLIKELY(count < 2)) {
        if (!a->w.data) return STRATA_EINVAL; /* never initialised, or freed */
        int rc = xor_append_first(a, t, bits);
        if (rc) return rc;
    } else {
        if (ENC_UNLIKELY(count == XOR_MAX_SAMPLES)) return STRATA_ELIMIT;
        uint64_t delta = (uint64_t)t - (uint64_t)a->t;
        int64_t dod = (int64_t)(delta - a->t_delta);
        uint64_t dfield;
        unsigned dn;
        if (ENC_LIKELY(dod == 0)) {
            dfield = 0;
            dn = 1;
        } else if (bit_range(dod, 14)) {
            dfield = 0x2ull << 14 | ((uint64_t)dod & 0x3fff);
            dn = 16;
        } else if (bit_range(dod, 17)) {
            dfield = 0x6ull << 17 | ((uint64_t)dod & 0x1ffff);
            dn = 20;
        } else if (bit_range(dod, 20)) {
            dfield = 0xeull << 20 | ((uint64_t)dod & 0xfffff);
            dn = 24;
        } else {
            dfield = (uint64_t)dod;
            dn = 68; /* '1111' then 64 bits */
        }
        xor_val e;
        xor_val_plan(a, bits, &e);
        bit_writer *w = &a->w;
        unsigned vn = e.head_n + e.payload_n;
        uint64_t end = (uint64_t)w->nbits + dn + vn;
        if (ENC_UNLIKELY(bitw_need(end) > w->cap) && bitw_grow(w, bitw_need(end)))
            return STRATA_ENOMEM;
        if (ENC_LIKELY(dn + vn <= 64)) {
            /* The common case: timestamp and value fields in one write (zeros: no write). */
            uint64_t field = dfield << vn | e.head << e.payload_n | e.payload;
            if (field)
                bitw_put(w, field, dn + vn);
            else
                bitw_zeros(w, dn + vn);
        } else {
            if (dn == 68) {
                bitw_put(w, 0xf, 4);
                bitw_put(w, dfield, 64);
            } else if (dn == 1) {
                bitw_zeros(w, 1);
            } else {
                bitw_put(w, dfield, dn);
            }
            xor_val_write(w, &e);
        }
        a->t_delta = delta;
        a->leading = e.leading;
        a->trailing = e.trailing;
    }
    a->t = t;
    a->v_bits = bits;
    a->count = (uint16_t)(count + 1);
    be16_put(a->w.data, a->count);
    return 0;
}

/* ---- iterator -------------------------------------------------------------------------------- */

int xor_iter_init(xor_iter *it, const uint8_t *data, size_t len)
{
    memset(it, 0, sizeof *it);
    if (!data || len < 2) {
        it->state = STRATA_ECORRUPT;
        return STRATA_ECORRUPT;
    }
    it->total = be16_get(data);
    /* leading = trailing = 0 until the first '11': a '10' before it means 64 bits, as Prometheus
     * reads it (its reopened appenders can write that). */
    bit_reader_init(&it->r, data + 2, len - 2);
    return 0;
}

static int corrupt(xor_iter *it)
{
    it->state = STRATA_ECORRUPT;
    return STRATA_ECORRUPT;
}

/*
 * The decoder's working state. Loads through the chunk's byte pointer may alias anything in
 * memory as far as the compiler knows, so the hot loops work on this non-escaping copy (kept in
 * registers) rather than on the iterator, and write it back once per sample.
 */
typedef struct xor_dec {
    bit_reader r;
    int64_t t;
    uint64_t t_delta;
    uint64_t v_bits;
    unsigned leading;
    unsigned trailing;
} xor_dec;

#define DEC_INLINE static inline __attribute__((always_inline))

DEC_INLINE void dec_load(xor_dec *d, const xor_iter *it)
{
    *d = (xor_dec){it->r, it->t, it->t_delta, it->v_bits, it->leading, it->trailing};
}

DEC_INLINE void dec_store(xor_iter *it, const xor_dec *d)
{
    it->r = d->r;
    it->t = d->t;
    it->t_delta = d->t_delta;
    it->v_bits = d->v_bits;
    it->leading = (uint8_t)d->leading;
    it->trailing = (uint8_t)d->trailing;
}

/* Reads a varint byte by byte at the current bit position. */
static bool read_varint(bit_reader *r, uint64_t *out)
{
    uint8_t tmp[VARINT_MAX_LEN];
    for (size_t i = 0; i < VARINT_MAX_LEN; i++) {
        uint64_t b;
        if (bit_read(r, 8, &b)) return false;
        tmp[i] = (uint8_t)b;
        if (!(b & 0x80)) {
            const uint8_t *p = tmp;
            return varint_get_u64(&p, tmp + i + 1, out) == 0;
        }
    }
    return false;
}

/* Reads n (1..64) bits that the current peek could not cover. */
DEC_INLINE bool read_wide(bit_reader *r, unsigned n, uint64_t *out)
{
    uint64_t w = bitr_peek(r);
    if (!bitr_skip(r, n)) return false;
    *out = w >> (64 - n);
    return true;
}

/* Decodes a value from w, the next `valid` (13..64) bits of the stream left-aligned, peeking
 * again only when the field is longer than that. */
DEC_INLINE bool dec_value_in(xor_dec *d, uint64_t w, unsigned valid)
{
    if (!(w >> 63)) return bitr_skip(&d->r, 1); /* same value */
    uint64_t x;
    if (!(w >> 62 & 1)) {
        /* '10': the previous window. */
        unsigned m = 64u - d->leading - d->trailing;
        if (ENC_LIKELY(2 + m <= valid)) {
            if (!bitr_skip(&d->r, 2 + m)) return false;
            x = (w << 2) >> (64 - m);
        } else {
            if (!bitr_skip(&d->r, 2) || !read_wide(&d->r, m, &x)) return false;
        }
    } else {
        unsigned lead = (unsigned)(w >> 57) & 31;
        unsigned sig = (unsigned)(w >> 51) & 63;
        if (sig == 0) sig = 64;
        if (ENC_UNLIKELY(lead + sig > 64)) return false; /* no encoder writes this */
        if (ENC_LIKELY(13 + sig <= valid)) {
            if (!bitr_skip(&d->r, 13 + sig)) return false;
            x = (w << 13) >> (64 - sig);
        } else {
            if (!bitr_skip(&d->r, 13) || !read_wide(&d->r, sig, &x)) return false;
        }
        d->leading = lead;
        d->trailing = 64 - lead - sig;
    }
    d->v_bits ^= x << d->trailing;
    return true;
}

DEC_INLINE bool dec_value(xor_dec *d)
{
    return dec_value_in(d, bitr_peek(&d->r), 64);
}

/* Samples 2 and later: delta of delta, then the value, both from one peek when they fit. */
DEC_INLINE bool dec_sample(xor_dec *d)
{
    uint64_t w = bitr_peek(&d->r);
    unsigned used;
    if (!(w >> 63)) {
        used = 1;
    } else {
        /* Count the prefix's ones, at most 4: bit 59 set in ~w stops the count there. */
        unsigned ones = (unsigned)__builtin_clzll(~w | 1ull << 59);
        uint64_t b;
        if (ENC_LIKELY(ones < 4)) {
            static const uint8_t width[4] = {0, 14, 17, 20};
            unsigned sz = width[ones];
            used = ones + 1 + sz;
            b = (w << (ones + 1)) >> (64 - sz);
            if (b > 1ull << (sz - 1)) b -= 1ull << sz; /* back to negative, modulo 2^64 */
        } else {
            if (!bitr_skip(&d->r, 4) || !read_wide(&d->r, 64, &b)) return false;
            used = 0;
        }
        d->t_delta += b;
    }
    d->t = (int64_t)((uint64_t)d->t + d->t_delta);
    if (ENC_UNLIKELY(used == 0)) return dec_value(d);
    if (!bitr_skip(&d->r, used)) return false;
    return dec_value_in(d, w << used, 64 - used);
}

/* Samples 0 and 1 (varints): rare, so out of line. */
__attribute__((noinline)) static bool dec_first(xor_dec *d, unsigned index)
{
    if (index == 0) {
        uint64_t z, v;
        if (!read_varint(&d->r, &z) || bit_read(&d->r, 64, &v)) return false;
        d->t = varint_unzigzag(z);
        d->v_bits = v;
        return true;
    }
    uint64_t delta;
    if (!read_varint(&d->r, &delta)) return false;
    d->t_delta = delta;
    d->t = (int64_t)((uint64_t)d->t + delta);
    return dec_value(d);
}

int xor_iter_next(xor_iter *it)
{
    if (ENC_UNLIKELY(it->state)) return it->state > 0 ? 0 : it->state;
    if (ENC_UNLIKELY(it->read >= it->total)) {
        it->state = 1;
        return 0;
    }
    xor_dec d;
    dec_load(&d, it);
    if (!(ENC_LIKELY(it->read >= 2) ? dec_sample(&d) : dec_first(&d, it->read))) return corrupt(it);
    dec_store(it, &d);
    it->read++;
    return 1;
}

int xor_iter_seek(xor_iter *it, int64_t t)
{
    if (it->state) return it->state > 0 ? 0 : it->state;
    if (it->read > 0 && it->t >= t) return 1;
    int rc;
    while ((rc = xor_iter_next(it)) == 1)
        if (it->t >= t) return 1;
    return rc;
}

int xor_decode(const uint8_t *data, size_t len, strata_sample *out, size_t cap, size_t *n,
               char *err)
{
    *n = 0;
    xor_iter it;
    if (xor_iter_init(&it, data, len))
        return strata_errf(err, STRATA_ECORRUPT,
                           "XOR chunk of %zu bytes is shorter than its 2-byte header", len);
    size_t total = it.total;
    if (total > cap)
        return strata_errf(err, STRATA_ELIMIT, "XOR chunk holds %zu samples, room for only %zu",
                           total, cap);
    /* The iterator's loop without its per-call checks and state stores. */
    xor_dec d;
    dec_load(&d, &it);
    size_t k = 0;
    for (; k < total; k++) {
        if (!(ENC_LIKELY(k >= 2) ? dec_sample(&d) : dec_first(&d, (unsigned)k))) break;
        out[k].t = d.t;
        memcpy(&out[k].v, &d.v_bits, sizeof out[k].v);
    }
    *n = k;
    if (k < total)
        return strata_errf(err, STRATA_ECORRUPT,
                           "XOR chunk of %zu bytes: sample %zu of the %zu its header claims is "
                           "truncated or malformed",
                           len, k + 1, total);
    return 0;
}

int xor_appender_from_bytes(xor_appender *a, const uint8_t *data, size_t len, char *err)
{
    memset(a, 0, sizeof *a);
    xor_iter it;
    if (xor_iter_init(&it, data, len))
        return strata_errf(err, STRATA_ECORRUPT,
                           "cannot reopen an XOR chunk of %zu bytes: shorter than its header", len);
    /* Replaying the decoder is the only way to learn the encoder's state (deltas, XOR window). */
    int rc;
    bool changed = false;
    uint64_t first = 0;
    while ((rc = xor_iter_next(&it)) == 1) {
        if (it.read == 1)
            first = it.v_bits;
        else if (it.v_bits != first)
            changed = true;
    }
    if (rc < 0)
        return strata_errf(err, rc,
                           "cannot reopen an XOR chunk of %zu bytes: sample %u of the %u its "
                           "header claims is truncated or malformed",
                           len, (unsigned)it.read + 1, (unsigned)it.total);
    uint64_t nbits = XOR_HEADER_BITS + (uint64_t)it.r.pos;
    size_t need = bitw_need(nbits) > XOR_INIT_CAP ? bitw_need(nbits) : XOR_INIT_CAP;
    if ((rc = bitw_grow(&a->w, need))) return rc;
    size_t nbytes = (size_t)((nbits + 7) >> 3);
    memcpy(a->w.data, data, nbytes);
    /* Bits past the last sample must be zero for the writer to OR new ones in. */
    if (nbits & 7) a->w.data[nbytes - 1] &= (uint8_t)(0xff00u >> (nbits & 7));
    a->w.nbits = (uint32_t)nbits;
    a->count = it.total;
    a->t = it.t;
    a->t_delta = it.t_delta;
    a->v_bits = it.v_bits;
    /* No value changed means no window was written yet; a fresh appender would be at 0xff. */
    a->leading = changed ? it.leading : 0xff;
    a->trailing = changed ? it.trailing : 0;
    return 0;
}

static int xor_count(const uint8_t *data, size_t len, uint32_t *n)
{
    if (!data || len < 2) return STRATA_ECORRUPT;
    *n = be16_get(data);
    return 0;
}

const chunk_codec chunk_codec_xor = {
    .id = CHUNK_ENC_XOR,
    .name = "XOR",
    .decode = xor_decode,
    .count = xor_count,
};
