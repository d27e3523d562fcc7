/*
 * chunk_strata.c: the adaptive Strata chunk (CHUNK_ENC_STRATA): timestamps and values in two
 * separate sections, each written by whichever codec makes it smallest within the decode budget,
 * the pair named in the header.
 *
 *   uvarint count (0..65535); when 0 the chunk ends here
 *   byte    timestamp codec << 4 | value codec
 *   uvarint timestamp section length in bytes
 *   timestamp section, then the value section up to the end of the chunk
 *
 * Timestamps and values are coded apart because their best codecs differ independently: a
 * regular scrape wants a grid, a counter wants integer deltas, a noisy gauge wants XOR. docs/
 * format.md has every section's layout. Decoding is strict: each section must be consumed exactly,
 * so a truncated or padded chunk is STRATA_ECORRUPT rather than silently shorter, and every read
 * is bounded by the chunk's end. The iterator decodes 32 samples at a time into arrays, which
 * keeps each codec's inner loop tight and branch-light; the batch size is also the bit-packing
 * block size, so a block header is read once per batch.
 *
 * Arithmetic on timestamps and the decimal path's integers is modulo 2^64 so that any input
 * (even decreasing or extreme timestamps) encodes and decodes exactly, and values are only ever
 * compared as bit patterns, so NaN payloads, -0.0 and infinities survive every codec.
 */
#include "encoding/encoding_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FOR_BLOCK STC_BATCH

/* ---- small helpers --------------------------------------------------------------------------- */

static inline uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static inline double bitsd(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static inline unsigned bits_needed(uint64_t x)
{
    return x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Sign-extends the low k bits (1 <= k <= 63). */
static inline int64_t sext(uint64_t x, unsigned k)
{
    uint64_t m = 1ULL << (k - 1);
    return (int64_t)((x ^ m) - m);
}

static void set_err(char *err, const char *msg)
{
    if (err) snprintf(err, STRATA_ERRMSG_SIZE, "%s", msg);
}

/* ---- growable byte buffer (encoder side) ----------------------------------------------------- */

typedef struct ebuf {
    uint8_t *p;
    size_t len, cap;
    bool oom; /* sticky: later writes are dropped and the caller reports STRATA_ENOMEM */
} ebuf;

static bool eb_reserve(ebuf *b, size_t extra)
{
    if (b->oom) return false;
    if (b->len + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void eb_byte(ebuf *b, uint8_t x)
{
    if (eb_reserve(b, 1)) b->p[b->len++] = x;
}

static void eb_bytes(ebuf *b, const void *x, size_t n)
{
    if (n && eb_reserve(b, n)) {
        memcpy(b->p + b->len, x, n);
        b->len += n;
    }
}

static void eb_uvarint(ebuf *b, uint64_t v)
{
    if (eb_reserve(b, VARINT_MAX_LEN)) b->len += varint_put_u64(b->p + b->len, v);
}

static void eb_varint(ebuf *b, int64_t v)
{
    eb_uvarint(b, varint_zigzag(v));
}

static void eb_be64(ebuf *b, uint64_t v)
{
    if (eb_reserve(b, 8)) {
        be64_put(b->p + b->len, v);
        b->len += 8;
    }
}

/* Appends a finished bit stream's bytes. */
static void eb_bits(ebuf *b, const bit_writer *w)
{
    size_t n;
    const uint8_t *p = bit_writer_bytes(w, &n);
    eb_bytes(b, p, n);
}

/* A bit writer whose allocation failure is sticky, like ebuf's. */
typedef struct bwriter {
    bit_writer w;
    bool oom;
} bwriter;

static inline void bw_put(bwriter *b, uint64_t v, unsigned n)
{
    if (n == 0 || b->oom) return;
    uint64_t end = (uint64_t)b->w.nbits + n;
    if (ENC_UNLIKELY(bitw_need(end) > b->w.cap) && bitw_grow(&b->w, bitw_need(end))) {
        b->oom = true;
        return;
    }
    bitw_put(&b->w, v, n);
}

/* ---- frame-of-reference bit packing ---------------------------------------------------------- */

/*
 * n integers (as uint64, two's complement) in blocks of 32: a block starts with a byte holding
 * the bit width (0..64) and, in bit 7, whether a signed varint minimum and an unsigned varint
 * divisor follow (the first block always has them; later ones reuse the last). Each value is
 * stored as (v - min) / divisor in width bits, most significant bit first, the block padded to a
 * byte. The encoder takes one minimum and one divisor (the gcd of v - min) for the whole stream,
 * so later blocks cost one byte of header; the per-block width follows local spread.
 */
/* The stream's minimum and divisor (the gcd of every v - min; 1 when that is 0). */
static void for_params(const uint64_t *v, size_t n, int64_t *min_out, uint64_t *g_out)
{
    int64_t min = (int64_t)v[0];
    for (size_t i = 1; i < n; i++)
        if ((int64_t)v[i] < min) min = (int64_t)v[i];
    uint64_t g = 0;
    for (size_t i = 0; i < n && g != 1; i++)
        g = gcd_u64(g, v[i] - (uint64_t)min);
    *min_out = min;
    *g_out = g ? g : 1;
}

/* One block's layout: its minimum and whether it restates the parameters. The first block always
 * does; a later one does when its own minimum narrows the width by enough bits to pay for the
 * restated minimum and divisor (a counter whose increments drift, a gauge that moves away). */
typedef struct for_block_plan {
    int64_t min;
    unsigned width;
    bool params;
} for_block_plan;

static inline unsigned q_width(uint64_t span, uint64_t g)
{
    return bits_needed(g == 1 ? span : span / g);
}

static for_block_plan for_plan_block(const uint64_t *v, size_t m, int64_t gmin, uint64_t g,
                                     int64_t cur_min, bool first)
{
    int64_t lmin = (int64_t)v[0], lmax = (int64_t)v[0];
    for (size_t i = 1; i < m; i++) {
        int64_t x = (int64_t)v[i];
        lmin = x < lmin ? x : lmin;
        lmax = x > lmax ? x : lmax;
    }
    /* Every value is >= the minimum used, so the largest difference is lmax - min. */
    if (first)
        return (for_block_plan){cur_min, q_width((uint64_t)lmax - (uint64_t)cur_min, g), true};
    /* stay on the divisor's lattice so that (v - min) / g stays exact */
    uint64_t steps = ((uint64_t)lmin - (uint64_t)gmin) / g;
    int64_t lat = (int64_t)((uint64_t)gmin + steps * g);
    unsigned w_loc = q_width((uint64_t)lmax - (uint64_t)lat, g);
    /* The last block's minimum serves only when no value lies below it (a wrapped difference
     * is not a multiple of the divisor). */
    if (lmin >= cur_min) {
        unsigned w_cur = q_width((uint64_t)lmax - (uint64_t)cur_min, g);
        size_t cost = varint_len_u64(varint_zigzag(lat)) + varint_len_u64(g);
        if (w_loc >= w_cur || (w_cur - w_loc) * m / 8 <= cost)
            return (for_block_plan){cur_min, w_cur, false};
    }
    return (for_block_plan){lat, w_loc, true};
}

/* The bytes for_pack would write, without writing them: the decimal codec sizes every candidate
 * exponent and delta order this way and packs only the winner. */
static size_t for_size(const uint64_t *v, size_t n)
{
    if (n == 0) return 0;
    int64_t gmin, cur;
    uint64_t g;
    for_params(v, n, &gmin, &g);
    cur = gmin;
    size_t size = 0;
    for (size_t s = 0; s < n; s += FOR_BLOCK) {
        size_t m = n - s < FOR_BLOCK ? n - s : FOR_BLOCK;
        for_block_plan pl = for_plan_block(v + s, m, gmin, g, cur, s == 0);
        if (pl.params) size += varint_len_u64(varint_zigzag(pl.min)) + varint_len_u64(g);
        cur = pl.min;
        size += 1 + (m * pl.width + 7) / 8;
    }
    return size;
}

static void for_pack(ebuf *b, const uint64_t *v, size_t n)
{
    if (n == 0) return;
    int64_t gmin, min;
    uint64_t g;
    for_params(v, n, &gmin, &g);
    min = gmin;
    for (size_t s = 0; s < n; s += FOR_BLOCK) {
        size_t m = n - s < FOR_BLOCK ? n - s : FOR_BLOCK;
        for_block_plan pl = for_plan_block(v + s, m, gmin, g, min, s == 0);
        unsigned w = pl.width;
        min = pl.min;
        eb_byte(b, (uint8_t)(w | (pl.params ? 0x80u : 0u)));
        if (pl.params) {
            eb_varint(b, min);
            eb_uvarint(b, g);
        }
        size_t nbytes = (m * w + 7) / 8;
        /* 8 spare bytes: each value is ORed in with one unaligned 64-bit read-modify-write */
        if (!nbytes || !eb_reserve(b, nbytes + 8)) continue;
        uint8_t *dst = b->p + b->len;
        memset(dst, 0, nbytes + 8);
        size_t bitpos = 0;
        for (size_t i = 0; i < m; i++, bitpos += w) {
            uint64_t d = v[s + i] - (uint64_t)min, q = g == 1 ? d : d / g;
            uint8_t *p = dst + (bitpos >> 3);
            unsigned off = (unsigned)(bitpos & 7);
            if (w + off <= 64) {
                be64_put(p, be64_get(p) | (q << (64 - w) >> off));
            } else { /* w > 56: the bits that do not fit go to the ninth byte */
                be64_put(p, be64_get(p) | (q << (64 - w) >> off));
                p[8] |= (uint8_t)(q << (8 - (w + off - 64)));
            }
        }
        b->len += nbytes;
    }
}

static void for_init(stc_for_reader *f, const uint8_t *p, const uint8_t *end,
                     const uint8_t *mem_end, uint32_t count)
{
    memset(f, 0, sizeof *f);
    f->p = p;
    f->end = end;
    f->mem_end = mem_end;
    f->left = count;
    f->gcd = 1;
}

static int for_block(stc_for_reader *f)
{
    uint32_t bsz = f->left < FOR_BLOCK ? f->left : FOR_BLOCK;
    if (f->p >= f->end) return STRATA_ECORRUPT;
    uint8_t hdr = *f->p++;
    unsigned w = hdr & 0x7f;
    if (w > 64) return STRATA_ECORRUPT;
    if (hdr & 0x80) {
        int64_t min;
        uint64_t g;
        if (varint_get_i64(&f->p, f->end, &min) || varint_get_u64(&f->p, f->end, &g) || g == 0)
            return STRATA_ECORRUPT;
        f->min = (uint64_t)min;
        f->gcd = g;
        f->have_params = true;
    } else if (!f->have_params) {
        return STRATA_ECORRUPT;
    }
    size_t nbytes = ((size_t)bsz * w + 7) / 8;
    if ((size_t)(f->end - f->p) < nbytes) return STRATA_ECORRUPT;
    f->blk = f->p;
    f->p += nbytes;
    f->blk_left = bsz;
    f->blk_bitpos = 0;
    f->width = (uint8_t)w;
    return 0;
}

/* Eight values of width w from p (byte-aligned: eight values fill exactly w bytes). Inlined
 * into one switch case per width, so every offset and shift is a constant. */
static inline __attribute__((always_inline)) void unpack8(const uint8_t *p, unsigned w,
                                                          uint64_t min, uint64_t *out)
{
    for (unsigned q = 0; q < 8; q++) {
        unsigned b = q * w;
        out[q] = min + ((be64_get(p + (b >> 3)) << (b & 7)) >> (64 - w));
    }
}

#define UNPACK8_CASE(W)                                                                            \
    case W:                                                                                        \
        for (; j + 8 <= k; j += 8)                                                                 \
            unpack8(p + (size_t)j * W / 8, W, min, out + j);                                       \
        break;

/* Unpacks k values of width w (1..56) starting at bit bitpos of p, which has 8 readable bytes
 * past the last one holding a value: one unaligned load, shift and mask each. */
static inline void unpack_fast(const uint8_t *p, uint32_t bitpos, unsigned w, uint32_t k,
                               uint64_t min, uint64_t g, uint64_t *out)
{
    unsigned sh = 64 - w;
    if (g == 1 && bitpos == 0) {
        /* a whole block from its start, the common case: groups of eight with constant shifts */
        uint32_t j = 0;
        switch (w) {
            UNPACK8_CASE(1)
            UNPACK8_CASE(2)
            UNPACK8_CASE(3)
            UNPACK8_CASE(4) UNPACK8_CASE(5) UNPACK8_CASE(6) UNPACK8_CASE(7) UNPACK8_CASE(8)
                UNPACK8_CASE(9) UNPACK8_CASE(10) UNPACK8_CASE(11) UNPACK8_CASE(12) UNPACK8_CASE(13)
                    UNPACK8_CASE(14) UNPACK8_CASE(15) UNPACK8_CASE(16) UNPACK8_CASE(17)
                        UNPACK8_CASE(18) UNPACK8_CASE(19) UNPACK8_CASE(20) UNPACK8_CASE(21)
                            UNPACK8_CASE(22) UNPACK8_CASE(23) UNPACK8_CASE(24) UNPACK8_CASE(25)
                                UNPACK8_CASE(26) UNPACK8_CASE(27) UNPACK8_CASE(28) UNPACK8_CASE(29)
                                    UNPACK8_CASE(30) UNPACK8_CASE(31) UNPACK8_CASE(32) default
                : break;
        }
        for (uint32_t b = j * w; j < k; j++, b += w)
            out[j] = min + ((be64_get(p + (b >> 3)) << (b & 7)) >> sh);
        return;
    }
    if (g == 1) {
        for (uint32_t j = 0; j < k; j++, bitpos += w)
            out[j] = min + ((be64_get(p + (bitpos >> 3)) << (bitpos & 7)) >> sh);
    } else {
        for (uint32_t j = 0; j < k; j++, bitpos += w)
            out[j] = min + ((be64_get(p + (bitpos >> 3)) << (bitpos & 7)) >> sh) * g;
    }
}

/* Reads m values (m <= left). */
static int for_read(stc_for_reader *f, uint64_t *out, uint32_t m)
{
    if (m > f->left) return STRATA_ECORRUPT;
    while (m) {
        if (f->blk_left == 0) {
            int rc = for_block(f);
            if (rc) return rc;
        }
        uint32_t k = m < f->blk_left ? m : f->blk_left;
        unsigned w = f->width;
        uint64_t min = f->min, g = f->gcd;
        if (w == 0) {
            for (uint32_t j = 0; j < k; j++)
                out[j] = min;
        } else if (w <= 56) {
            size_t need = (((size_t)f->blk_bitpos + (size_t)k * w) >> 3) + 8;
            if (ENC_LIKELY(need <= (size_t)(f->mem_end - f->blk))) {
                unpack_fast(f->blk, f->blk_bitpos, w, k, min, g, out);
            } else {
                /* Near the end of the chunk: unpack from a zero-padded copy of the block. */
                uint8_t tmp[FOR_BLOCK * 8 + 8] = {0};
                memcpy(tmp, f->blk, (size_t)(f->p - f->blk));
                unpack_fast(tmp, f->blk_bitpos, w, k, min, g, out);
            }
            f->blk_bitpos += k * w;
        } else {
            /* Peeks may run past the block into later bytes of the chunk, never past its end;
             * the shift keeps only the block's own bits. */
            bit_reader r = {f->blk, (size_t)(f->mem_end - f->blk), f->blk_bitpos};
            unsigned sh = 64 - w;
            for (uint32_t j = 0; j < k; j++) {
                out[j] = min + (bitr_peek(&r) >> sh) * g;
                r.pos += w;
            }
            f->blk_bitpos = (uint32_t)r.pos;
        }
        out += k;
        m -= k;
        f->blk_left -= k;
        f->left -= k;
    }
    return 0;
}

static bool for_done(const stc_for_reader *f)
{
    return f->left == 0 && f->blk_left == 0 && f->p == f->end;
}

/* ---- timestamp encoders ---------------------------------------------------------------------- */

/* Delta-of-delta buckets: '0' for 0, then '10', '110', '1110' with these widths, '1111' + 64. */
static const unsigned dod_width[3] = {7, 14, 24};

static void ts_enc_dod(ebuf *b, const int64_t *t, size_t n)
{
    eb_varint(b, t[0]);
    if (n < 2) return;
    uint64_t delta = (uint64_t)t[1] - (uint64_t)t[0];
    eb_varint(b, (int64_t)delta);
    bwriter w = {0};
    for (size_t i = 2; i < n; i++) {
        uint64_t d = (uint64_t)t[i] - (uint64_t)t[i - 1];
        int64_t dod = (int64_t)(d - delta);
        delta = d;
        if (dod == 0) {
            bw_put(&w, 0, 1);
            continue;
        }
        unsigned k;
        for (k = 0; k < 3; k++) {
            int64_t lim = 1LL << (dod_width[k] - 1);
            if (dod >= -lim && dod < lim) break;
        }
        if (k < 3) {
            uint64_t prefix = (4ULL << k) - 2; /* 10, 110, 1110 */
            unsigned pn = k + 2, wd = dod_width[k];
            bw_put(&w, prefix << wd | ((uint64_t)dod & ((1ULL << wd) - 1)), pn + wd);
        } else {
            bw_put(&w, 0xf, 4);
            bw_put(&w, (uint64_t)dod, 64);
        }
    }
    if (w.oom) b->oom = true;
    eb_bits(b, &w.w);
    bit_writer_free(&w.w);
}

static void ts_enc_delta(ebuf *b, const int64_t *t, size_t n, uint64_t *scratch)
{
    eb_varint(b, t[0]);
    for (size_t i = 1; i < n; i++)
        scratch[i - 1] = (uint64_t)t[i] - (uint64_t)t[i - 1];
    for_pack(b, scratch, n - 1);
}

/* The interval a scrape aims at: the delta that occurs in more than half the gaps when there is
 * one (Boyer-Moore majority vote), else the mean delta. Any choice decodes exactly; this one
 * makes the offsets small. */
static uint64_t grid_interval(const int64_t *t, size_t n)
{
    if (n < 2) return 0;
    uint64_t cand = 0;
    size_t votes = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t d = (uint64_t)t[i] - (uint64_t)t[i - 1];
        if (votes == 0) cand = d;
        votes += d == cand ? 1 : (size_t)-1;
    }
    size_t count = 0;
    for (size_t i = 1; i < n; i++)
        count += (uint64_t)t[i] - (uint64_t)t[i - 1] == cand;
    if (count * 2 > n - 1) return cand;
    int64_t span = (int64_t)((uint64_t)t[n - 1] - (uint64_t)t[0]);
    int64_t gaps = (int64_t)(n - 1);
    int64_t mean = span / gaps, rem = span % gaps;
    if (rem * 2 >= gaps) mean++;
    if (rem * 2 <= -gaps) mean--;
    return (uint64_t)mean;
}

enum { GRID_EXACT = 0, GRID_LIST = 1, GRID_PACKED = 2 };

static void ts_enc_grid(ebuf *b, const int64_t *t, size_t n, uint64_t *scratch)
{
    uint64_t iv = grid_interval(t, n);
    eb_varint(b, t[0]);
    eb_varint(b, (int64_t)iv);
    /* scratch[i - 1]: offset of sample i from the grid (sample 0 is the grid's start) */
    size_t nexc = 0;
    for (size_t i = 1; i < n; i++) {
        scratch[i - 1] = (uint64_t)t[i] - ((uint64_t)t[0] + (uint64_t)i * iv);
        nexc += scratch[i - 1] != 0;
    }
    if (nexc == 0) {
        eb_byte(b, GRID_EXACT);
        return;
    }
    ebuf list = {0}, packed = {0};
    eb_uvarint(&list, nexc);
    size_t prev = 0;
    for (size_t i = 1; i < n; i++) {
        if (!scratch[i - 1]) continue;
        eb_uvarint(&list, i - prev - 1);
        eb_varint(&list, (int64_t)scratch[i - 1]);
        prev = i;
    }
    for_pack(&packed, scratch, n - 1);
    if (list.oom || packed.oom) b->oom = true;
    ebuf *best = packed.len < list.len ? &packed : &list;
    eb_byte(b, best == &packed ? GRID_PACKED : GRID_LIST);
    eb_bytes(b, best->p, best->len);
    free(list.p);
    free(packed.p);
}

/* ---- value encoders -------------------------------------------------------------------------- */

static void v_enc_xor(ebuf *b, const uint64_t *v, size_t n)
{
    bwriter w = {0};
    bw_put(&w, v[0], 64);
    unsigned L = 0xff, T = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t x = v[i] ^ v[i - 1];
        if (!x) {
            bw_put(&w, 0, 1);
            continue;
        }
        unsigned lz = (unsigned)__builtin_clzll(x), tz = (unsigned)__builtin_ctzll(x);
        if (lz > 31) lz = 31;
        if (L != 0xff && lz >= L && tz >= T) {
            bw_put(&w, 2, 2);
            bw_put(&w, x >> T, 64 - L - T);
        } else {
            L = lz;
            T = tz;
            unsigned sig = 64 - L - T;
            bw_put(&w, 3ULL << 11 | (uint64_t)L << 6 | (sig & 63), 13);
            bw_put(&w, x >> T, sig);
        }
    }
    if (w.oom) b->oom = true;
    eb_bits(b, &w.w);
    bit_writer_free(&w.w);
}

/* One value as an XOR against the previous, trimmed to its non-zero bytes: a byte holding the
 * count of leading zero bytes (high nibble) and of kept bytes (low nibble), then the kept bytes. */
static void put_trimmed_xor(ebuf *b, uint64_t x)
{
    if (!x) {
        eb_byte(b, 0);
        return;
    }
    unsigned lead = (unsigned)__builtin_clzll(x) / 8, trail = (unsigned)__builtin_ctzll(x) / 8;
    unsigned keep = 8 - lead - trail;
    eb_byte(b, (uint8_t)(lead << 4 | keep));
    for (unsigned k = 0; k < keep; k++)
        eb_byte(b, (uint8_t)(x >> (8 * (8 - lead - 1 - k))));
}

static void v_enc_rle(ebuf *b, const uint64_t *v, size_t n)
{
    uint64_t prev = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j] == v[i])
            j++;
        eb_uvarint(b, j - i);
        put_trimmed_xor(b, v[i] ^ prev);
        prev = v[i];
        i = j;
    }
}

/* Powers of ten exactly representable as doubles (all up to 1e22). */
static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define DEC_MAX_EXP 18
/* The exponent byte that says the integers are the values' own bit patterns: no scaling, no
 * exceptions. Deltas of bit patterns are small where XOR is not: a noisy full-precision gauge
 * moves by fewer ulps than its XOR has meaningful bits. */
#define DEC_RAW 0x80

/* The decimal path's decode rule, the only one: integer x at exponent e is (double)x / 10^e.
 * IEEE division is correctly rounded, so this is the same on every machine. */
static inline double dec_value(int64_t x, unsigned e)
{
    return e ? (double)x / p10[e] : (double)x;
}

/* Whether v is exactly (double)x / 10^e for some int64 x; the x if so. */
static bool dec_fits(uint64_t bits, unsigned e, int64_t *x)
{
    double v = bitsd(bits);
    double s = v * p10[e];
    if (!(fabs(s) < 9.0e18)) return false; /* also NaN and infinities */
    /* Round to nearest without a libm call; from 2^52 up every double is an integer already.
     * A wrong neighbour here only makes a value an exception, never a wrong one: the check
     * below decides. */
    double r = fabs(s) >= 4503599627370496.0 ? s : (s < 0 ? s - 0.5 : s + 0.5);
    int64_t c = (int64_t)r;
    if (dbits(dec_value(c, e)) == bits) {
        *x = c;
        return true;
    }
    return false;
}

/* The smallest exponent at which v round-trips, or -1. */
static int dec_min_exp(uint64_t bits)
{
    int64_t x;
    for (unsigned e = 0; e <= DEC_MAX_EXP; e++)
        if (dec_fits(bits, e, &x)) return (int)e;
    return -1;
}

/* The integers at exponent e into xs (an exception repeats the previous integer, keeping the
 * stream smooth); returns the number of exceptions, whose stored form takes *exc_bytes. */
static size_t dec_integers(const uint64_t *v, size_t n, unsigned e, uint64_t *xs, size_t *exc_bytes)
{
    size_t nexc = 0, bytes = 0, prev = (size_t)-1;
    int64_t prevx = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t x;
        if (e == DEC_RAW) {
            xs[i] = v[i];
        } else if (dec_fits(v[i], e, &x)) {
            xs[i] = (uint64_t)x;
        } else {
            xs[i] = (uint64_t)prevx;
            nexc++;
            bytes += varint_len_u64(i - prev - 1) + 8;
            prev = i;
        }
        prevx = (int64_t)xs[i];
    }
    *exc_bytes = bytes;
    return nexc;
}

/* Residuals of the given delta order after the first min(order, n) integers. */
static size_t dec_residuals(const uint64_t *xs, size_t n, unsigned order, uint64_t *res)
{
    size_t k = order < n ? order : n;
    for (size_t i = k; i < n; i++) {
        uint64_t d = order == 0 ? xs[i] : xs[i] - xs[i - 1];
        if (order == 2) d -= xs[i - 1] - xs[i - 2];
        res[i - k] = d;
    }
    return k;
}

static size_t dec_initial_size(const uint64_t *xs, size_t k)
{
    size_t size = 0;
    if (k >= 1) size += varint_len_u64(varint_zigzag((int64_t)xs[0]));
    if (k >= 2) size += varint_len_u64(varint_zigzag((int64_t)(xs[1] - xs[0])));
    return size;
}

static void dec_write(ebuf *b, const uint64_t *v, size_t n, unsigned e, unsigned order,
                      uint64_t *xs, uint64_t *res)
{
    size_t exc_bytes;
    size_t nexc = dec_integers(v, n, e, xs, &exc_bytes);
    eb_byte(b, (uint8_t)e);
    eb_byte(b, (uint8_t)order);
    eb_uvarint(b, nexc);
    size_t prev = (size_t)-1;
    for (size_t i = 0; i < n && nexc; i++) {
        int64_t x;
        if (dec_fits(v[i], e, &x)) continue;
        eb_uvarint(b, i - prev - 1);
        eb_be64(b, v[i]);
        prev = i;
    }
    size_t k = dec_residuals(xs, n, order, res);
    if (k >= 1) eb_varint(b, (int64_t)xs[0]);
    if (k >= 2) eb_varint(b, (int64_t)(xs[1] - xs[0]));
    for_pack(b, res, n - k);
}

/* Tries a few exponents (where 50, 90 and 100% of the values that have one round-trip; none when
 * fewer than half are decimals) and the raw bit patterns, each with delta orders 0-2, sizing each
 * without writing, and writes the smallest. Always succeeds: the raw form takes any chunk. */
static bool v_enc_dec(ebuf *out, const uint64_t *v, size_t n, uint64_t *xs, uint64_t *res)
{
    size_t hist[DEC_MAX_EXP + 1] = {0}, fits = 0;
    /* A glance at a few values first: full-precision data has no exponent, and finding that out
     * for every value costs 19 tries each. */
    size_t probe = 0, step = n / 8 ? n / 8 : 1;
    for (size_t i = 0; i < n; i += step)
        probe += dec_min_exp(v[i]) >= 0;
    if (probe * 4 >= (n + step - 1) / step)
        for (size_t i = 0; i < n; i++) {
            int e = dec_min_exp(v[i]);
            if (e >= 0) {
                hist[e]++;
                fits++;
            }
        }
    unsigned cand[4], nc = 0;
    static const double share[3] = {0.5, 0.9, 1.0};
    for (unsigned s = 0; s < 3 && fits && fits * 2 >= n; s++) {
        size_t cum = 0;
        for (unsigned e = 0; e <= DEC_MAX_EXP; e++) {
            cum += hist[e];
            if ((double)cum >= share[s] * (double)fits) {
                if (!nc || cand[nc - 1] != e) cand[nc++] = e;
                break;
            }
        }
    }
    cand[nc++] = DEC_RAW;
    size_t best = SIZE_MAX;
    unsigned best_e = DEC_RAW, best_order = 0;
    for (unsigned c = 0; c < nc; c++) {
        size_t exc_bytes, nexc = dec_integers(v, n, cand[c], xs, &exc_bytes);
        if (nexc * 2 > n) continue;
        for (unsigned order = 0; order <= 2; order++) {
            size_t k = dec_residuals(xs, n, order, res);
            size_t size = 2 + varint_len_u64(nexc) + exc_bytes + dec_initial_size(xs, k) +
                          for_size(res, n - k);
            if (size < best) {
                best = size;
                best_e = cand[c];
                best_order = order;
            }
        }
    }
    dec_write(out, v, n, best_e, best_order, xs, res);
    return true;
}

/* Chimp128 (Liakos et al., VLDB 2022): XOR against whichever of the last 128 values shares the
 * most trailing bits (found through a table keyed by the low 14 bits), else the previous value;
 * leading zeros are rounded to one of eight steps so that they take 3 bits. */
#define CHIMP_RING 128
#define CHIMP_KEY_BITS 14
#define CHIMP_THRESHOLD 13 /* 6 + log2(128) */

static const uint8_t chimp_lead_round[65] = {
    0,  0,  0,  0,  0,  0,  0,  0,  8,  8,  8,  8,  12, 12, 12, 12, 16, 16, 18, 18, 20, 20,
    22, 22, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
    24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24};
static const uint8_t chimp_lead_code[25] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2,
                                            2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7};
static const uint8_t chimp_lead_value[8] = {0, 8, 12, 16, 18, 20, 22, 24};

static int v_enc_chimp(ebuf *b, const uint64_t *v, size_t n)
{
    uint32_t *idx = malloc(sizeof(uint32_t) << CHIMP_KEY_BITS);
    if (!idx) return STRATA_ENOMEM;
    /* index + 1 of the latest value with each key; 0: none */
    memset(idx, 0, sizeof(uint32_t) << CHIMP_KEY_BITS);
    bwriter w = {0};
    bw_put(&w, v[0], 64);
    idx[v[0] & ((1u << CHIMP_KEY_BITS) - 1)] = 1;
    unsigned stored_lead = 0xff;
    for (size_t i = 1; i < n; i++) {
        uint32_t key = (uint32_t)(v[i] & ((1u << CHIMP_KEY_BITS) - 1));
        size_t ref = i - 1;
        uint64_t x = v[i] ^ v[ref];
        unsigned tz = x ? (unsigned)__builtin_ctzll(x) : 64;
        if (idx[key] && i - (idx[key] - 1) < CHIMP_RING) {
            size_t c = idx[key] - 1;
            uint64_t xc = v[i] ^ v[c];
            unsigned tzc = xc ? (unsigned)__builtin_ctzll(xc) : 64;
            if (tzc > CHIMP_THRESHOLD && tzc > tz) {
                ref = c;
                x = xc;
                tz = tzc;
            }
        }
        idx[key] = (uint32_t)i + 1;
        if (x == 0) {
            bw_put(&w, (uint64_t)(ref % CHIMP_RING), 2 + 7); /* '00' + slot */
            stored_lead = 0xff;
        } else if (tz > CHIMP_THRESHOLD) {
            unsigned lead = chimp_lead_round[__builtin_clzll(x)];
            unsigned sig = 64 - lead - tz;
            bw_put(&w,
                   1ULL << 16 | (uint64_t)(ref % CHIMP_RING) << 9 |
                       (uint64_t)chimp_lead_code[lead] << 6 | sig,
                   2 + 7 + 3 + 6);
            bw_put(&w, x >> tz, sig);
            stored_lead = 0xff;
        } else {
            /* against the previous value, whose XOR we recompute */
            x = v[i] ^ v[i - 1];
            unsigned lead = chimp_lead_round[__builtin_clzll(x)];
            if (lead == stored_lead) {
                bw_put(&w, 2, 2);
            } else {
                bw_put(&w, 3ULL << 3 | chimp_lead_code[lead], 5);
                stored_lead = lead;
            }
            bw_put(&w, x, 64 - lead);
        }
    }
    free(idx);
    if (w.oom) b->oom = true;
    eb_bits(b, &w.w);
    bit_writer_free(&w.w);
    return 0;
}

/* ---- header ---------------------------------------------------------------------------------- */

typedef struct stc_header {
    uint32_t n;
    unsigned ts_codec, v_codec;
    const uint8_t *ts, *ts_end, *v, *v_end;
} stc_header;

static int parse_header(const uint8_t *data, size_t len, stc_header *h)
{
    if (!data || len == 0) return STRATA_ECORRUPT;
    const uint8_t *p = data, *end = data + len;
    uint64_t n, tslen;
    if (varint_get_u64(&p, end, &n) || n > STC_MAX_SAMPLES) return STRATA_ECORRUPT;
    memset(h, 0, sizeof *h);
    h->n = (uint32_t)n;
    if (n == 0) return p == end ? 0 : STRATA_ECORRUPT;
    if (p >= end) return STRATA_ECORRUPT;
    uint8_t codecs = *p++;
    h->ts_codec = codecs >> 4;
    h->v_codec = codecs & 15;
    if (h->ts_codec < STC_TS_DOD || h->ts_codec > STC_TS_GRID || h->v_codec < STC_V_XOR ||
        h->v_codec > STC_V_CHIMP)
        return STRATA_ECORRUPT;
    if (varint_get_u64(&p, end, &tslen) || tslen > (uint64_t)(end - p)) return STRATA_ECORRUPT;
    h->ts = p;
    h->ts_end = p + tslen;
    h->v = h->ts_end;
    h->v_end = end;
    return 0;
}

int stc_chunk_codecs(const uint8_t *data, size_t len, uint32_t *n, unsigned *ts_codec,
                     unsigned *v_codec)
{
    stc_header h;
    int rc = parse_header(data, len, &h);
    if (rc) return rc;
    *n = h.n;
    *ts_codec = h.ts_codec;
    *v_codec = h.v_codec;
    return 0;
}

/* ---- iterator: timestamp decoders ------------------------------------------------------------ */

static int ts_start(stc_iter *it)
{
    const uint8_t *p = it->ts_p, *end = it->ts_end;
    if (varint_get_i64(&p, end, &it->t)) return STRATA_ECORRUPT;
    switch (it->ts_codec) {
    case STC_TS_DOD:
        if (it->total >= 2 && varint_get_i64(&p, end, &it->t_delta)) return STRATA_ECORRUPT;
        break;
    case STC_TS_DELTA:
        for_init(&it->t_for, p, end, it->v_end, it->total - 1);
        break;
    case STC_TS_GRID: {
        if (varint_get_i64(&p, end, &it->t_interval) || p >= end) return STRATA_ECORRUPT;
        it->t_mode = *p++;
        if (it->t_mode == GRID_LIST) {
            uint64_t nexc, gap;
            if (varint_get_u64(&p, end, &nexc) || nexc >= it->total) return STRATA_ECORRUPT;
            it->t_exc_left = (uint32_t)nexc;
            if (nexc) {
                if (varint_get_u64(&p, end, &gap) || varint_get_i64(&p, end, &it->t_exc_off) ||
                    gap + 1 >= it->total)
                    return STRATA_ECORRUPT;
                it->t_exc_next = (uint32_t)gap + 1;
            }
        } else if (it->t_mode == GRID_PACKED) {
            for_init(&it->t_for, p, end, it->v_end, it->total - 1);
        } else if (it->t_mode != GRID_EXACT) {
            return STRATA_ECORRUPT;
        }
        break;
    }
    }
    it->ts_p = p; /* past the fixed fields: what follows is the codec's stream */
    return 0;
}

/* Decodes timestamps decoded .. decoded + m - 1 into out. */
static int ts_fill(stc_iter *it, int64_t *out, uint32_t m)
{
    uint32_t i0 = it->decoded;
    uint32_t j = 0;
    if (i0 == 0) {
        out[0] = it->t;
        j = 1;
    }
    switch (it->ts_codec) {
    case STC_TS_DOD: {
        uint64_t t = (uint64_t)it->t, d = (uint64_t)it->t_delta;
        if (i0 == 0 && j < m && it->total >= 2) {
            t += d;
            out[j++] = (int64_t)t;
        }
        size_t sec_bits = (size_t)(it->ts_end - it->ts_p) * 8;
        bit_reader r = {it->ts_p, (size_t)(it->v_end - it->ts_p), it->t_bitpos};
        for (; j < m; j++) {
            uint64_t pk = bitr_peek(&r);
            if (!(pk >> 63)) {
                r.pos += 1;
            } else {
                unsigned k = 0;
                while (k < 3 && ((pk << (k + 1)) >> 63)) /* count further 1s of the prefix */
                    k++;
                if (k < 3) {
                    unsigned wd = dod_width[k], pn = k + 2;
                    d += (uint64_t)sext((pk << pn) >> (64 - wd), wd);
                    r.pos += pn + wd;
                } else {
                    r.pos += 4;
                    d += bitr_peek(&r);
                    r.pos += 64;
                }
            }
            if (r.pos > sec_bits) return STRATA_ECORRUPT;
            t += d;
            out[j] = (int64_t)t;
        }
        it->t = (int64_t)t;
        it->t_delta = (int64_t)d;
        it->t_bitpos = (uint32_t)r.pos;
        return 0;
    }
    case STC_TS_DELTA: {
        uint64_t t = (uint64_t)it->t;
        uint64_t *u = (uint64_t *)out + j;
        int rc = for_read(&it->t_for, u, m - j);
        if (rc) return rc;
        for (; j < m; j++) {
            t += (uint64_t)out[j];
            out[j] = (int64_t)t;
        }
        it->t = (int64_t)t;
        return 0;
    }
    case STC_TS_GRID: {
        /* it->t stays the grid's start */
        uint64_t t0 = (uint64_t)it->t, iv = (uint64_t)it->t_interval;
        if (it->t_mode == GRID_PACKED) {
            int rc = for_read(&it->t_for, (uint64_t *)out + j, m - j);
            if (rc) return rc;
            for (; j < m; j++)
                out[j] = (int64_t)(t0 + (uint64_t)(i0 + j) * iv + (uint64_t)out[j]);
            return 0;
        }
        if (!it->t_exc_left) { /* a regular stretch: the common case */
            uint64_t t = t0 + (uint64_t)(i0 + j) * iv;
            for (; j < m; j++, t += iv)
                out[j] = (int64_t)t;
            return 0;
        }
        for (; j < m; j++) {
            uint32_t i = i0 + j;
            uint64_t t = t0 + (uint64_t)i * iv;
            if (it->t_exc_left && it->t_exc_next == i) {
                t += (uint64_t)it->t_exc_off;
                if (--it->t_exc_left) {
                    uint64_t gap;
                    const uint8_t *p = it->ts_p;
                    if (varint_get_u64(&p, it->ts_end, &gap) ||
                        varint_get_i64(&p, it->ts_end, &it->t_exc_off) || gap >= it->total - i - 1)
                        return STRATA_ECORRUPT;
                    it->ts_p = p;
                    it->t_exc_next = i + 1 + (uint32_t)gap;
                }
            }
            out[j] = (int64_t)t;
        }
        return 0;
    }
    }
    return STRATA_ECORRUPT;
}

static bool ts_done(const stc_iter *it)
{
    switch (it->ts_codec) {
    case STC_TS_DOD:
        return ((size_t)it->t_bitpos + 7) / 8 == (size_t)(it->ts_end - it->ts_p);
    case STC_TS_DELTA:
        return for_done(&it->t_for);
    case STC_TS_GRID:
        if (it->t_mode == GRID_PACKED) return for_done(&it->t_for);
        return it->t_exc_left == 0 && it->ts_p == it->ts_end;
    }
    return false;
}

/* ---- iterator: value decoders ---------------------------------------------------------------- */

static int v_start(stc_iter *it)
{
    it->v_lead = 0xff;
    if (it->v_codec != STC_V_DEC) return 0;
    const uint8_t *p = it->v_p, *end = it->v_end;
    if (end - p < 2) return STRATA_ECORRUPT;
    it->v_exp = *p++;
    it->v_order = *p++;
    uint64_t nexc, gap;
    if ((it->v_exp > DEC_MAX_EXP && it->v_exp != DEC_RAW) || it->v_order > 2 ||
        varint_get_u64(&p, end, &nexc) || nexc > it->total)
        return STRATA_ECORRUPT;
    /* Validate the whole exception list now, so that patching later cannot fail. */
    const uint8_t *list = p;
    uint64_t idx = (uint64_t)-1;
    for (uint64_t k = 0; k < nexc; k++) {
        if (varint_get_u64(&p, end, &gap) || gap >= it->total) return STRATA_ECORRUPT;
        idx += gap + 1;
        if (idx >= it->total || end - p < 8) return STRATA_ECORRUPT;
        p += 8;
    }
    it->v_exc_left = (uint32_t)nexc;
    if (nexc) {
        (void)varint_get_u64(&list, end, &gap);
        it->v_exc_next = (uint32_t)gap;
        it->v_exc_p = list;
    }
    uint32_t k = it->v_order < it->total ? it->v_order : it->total;
    int64_t x0 = 0, d1 = 0;
    if (k >= 1 && varint_get_i64(&p, end, &x0)) return STRATA_ECORRUPT;
    if (k >= 2 && varint_get_i64(&p, end, &d1)) return STRATA_ECORRUPT;
    it->v_x = (uint64_t)x0;
    it->v_d = (uint64_t)d1;
    for_init(&it->v_for, p, end, end, it->total - k);
    return 0;
}

static int v_fill_xor(stc_iter *it, uint64_t *out, uint32_t m)
{
    size_t sec_bits = (size_t)(it->v_end - it->v_p) * 8;
    bit_reader r = {it->v_p, (size_t)(it->v_end - it->v_p), it->v_bitpos};
    uint64_t v = it->v_bits;
    unsigned L = it->v_lead, T = it->v_trail;
    uint32_t j = 0;
    if (it->decoded == 0) {
        v = bitr_peek(&r);
        r.pos += 64;
        out[j++] = v;
    }
    for (; j < m; j++) {
        uint64_t pk = bitr_peek(&r);
        if (!(pk >> 63)) {
            r.pos += 1;
        } else if (!((pk >> 62) & 1)) {
            if (L == 0xff) return STRATA_ECORRUPT;
            unsigned sig = 64 - L - T;
            r.pos += 2;
            v ^= (bitr_peek(&r) >> (64 - sig)) << T;
            r.pos += sig;
        } else {
            unsigned hdr = (unsigned)((pk << 2) >> 53);
            unsigned lead = hdr >> 6, sig = hdr & 63;
            if (sig == 0) sig = 64;
            if (lead + sig > 64) return STRATA_ECORRUPT;
            L = lead;
            T = 64 - lead - sig;
            r.pos += 13;
            v ^= (bitr_peek(&r) >> (64 - sig)) << T;
            r.pos += sig;
        }
        out[j] = v;
    }
    if (r.pos > sec_bits) return STRATA_ECORRUPT;
    it->v_bits = v;
    it->v_lead = (uint8_t)L;
    it->v_trail = (uint8_t)T;
    it->v_bitpos = (uint32_t)r.pos;
    return 0;
}

static int v_fill_rle(stc_iter *it, uint64_t *out, uint32_t m)
{
    uint64_t v = it->v_bits;
    const uint8_t *p = it->v_p, *end = it->v_end;
    for (uint32_t j = 0; j < m;) {
        if (it->v_run == 0) {
            uint64_t run;
            if (varint_get_u64(&p, end, &run) || run == 0 || run > it->total - it->decoded - j ||
                p >= end)
                return STRATA_ECORRUPT;
            unsigned hdr = *p++, lead = hdr >> 4, keep = hdr & 15;
            if (lead + keep > 8 || (keep == 0 && lead) || (size_t)(end - p) < keep)
                return STRATA_ECORRUPT;
            uint64_t x = 0;
            for (unsigned k = 0; k < keep; k++)
                x = x << 8 | *p++;
            if (keep) x <<= 8 * (8 - lead - keep);
            v ^= x;
            it->v_run = (uint32_t)run;
        }
        uint32_t k = m - j < it->v_run ? m - j : it->v_run;
        for (uint32_t q = 0; q < k; q++)
            out[j + q] = v;
        j += k;
        it->v_run -= k;
    }
    it->v_p = p;
    it->v_bits = v;
    return 0;
}

static int v_patch_exceptions(stc_iter *it, uint64_t *out, uint32_t m);

static int v_fill_dec(stc_iter *it, uint64_t *out, uint32_t m)
{
    uint32_t i0 = it->decoded, k = it->v_order < it->total ? it->v_order : it->total;
    uint64_t x = it->v_x, d = it->v_d;
    uint32_t j = 0;
    for (; j < m && i0 + j < k; j++) {
        if (i0 + j == 1) x += d;
        out[j] = x;
    }
    int rc = for_read(&it->v_for, out + j, m - j);
    if (rc) return rc;
    /* The integers before j came from the header's initial values; convert them first, then
     * undo the deltas and convert in one pass. */
    unsigned e = it->v_exp;
    if (e == DEC_RAW) {
        switch (it->v_order) {
        case 0:
            break;
        case 1:
            for (; j < m; j++)
                out[j] = x += out[j];
            break;
        default:
            for (; j < m; j++) {
                d += out[j];
                out[j] = x += d;
            }
            break;
        }
        it->v_x = x;
        it->v_d = d;
        return v_patch_exceptions(it, out, m);
    }
    double p = p10[e];
    for (uint32_t q = 0; q < j; q++)
        out[q] = dbits(dec_value((int64_t)out[q], e));
    switch (it->v_order) {
    case 0:
        if (e == 0)
            for (; j < m; j++)
                out[j] = dbits((double)(int64_t)out[j]);
        else
            for (; j < m; j++)
                out[j] = dbits((double)(int64_t)out[j] / p);
        break;
    case 1:
        if (e == 0)
            for (; j < m; j++)
                out[j] = dbits((double)(int64_t)(x += out[j]));
        else
            for (; j < m; j++)
                out[j] = dbits((double)(int64_t)(x += out[j]) / p);
        break;
    default:
        for (; j < m; j++) {
            d += out[j];
            x += d;
            out[j] = dbits(dec_value((int64_t)x, e));
        }
        break;
    }
    it->v_x = x;
    it->v_d = d;
    return v_patch_exceptions(it, out, m);
}

/* Replaces the placeholders of the exceptions in this batch by their stored values. */
static int v_patch_exceptions(stc_iter *it, uint64_t *out, uint32_t m)
{
    uint32_t i0 = it->decoded;
    while (it->v_exc_left && it->v_exc_next < i0 + m) {
        out[it->v_exc_next - i0] = be64_get(it->v_exc_p);
        it->v_exc_p += 8;
        if (--it->v_exc_left) {
            uint64_t gap;
            if (varint_get_u64(&it->v_exc_p, it->v_end, &gap)) return STRATA_ECORRUPT;
            it->v_exc_next += (uint32_t)gap + 1;
        }
    }
    return 0;
}

static int v_fill_chimp(stc_iter *it, uint64_t *out, uint32_t m)
{
    size_t sec_bits = (size_t)(it->v_end - it->v_p) * 8;
    bit_reader r = {it->v_p, (size_t)(it->v_end - it->v_p), it->v_bitpos};
    uint64_t v = it->v_bits, *ring = it->v_ring;
    unsigned lead = it->v_lead;
    uint32_t i0 = it->decoded, j = 0;
    if (i0 == 0) {
        v = bitr_peek(&r);
        r.pos += 64;
        ring[0] = v;
        out[j++] = v;
    }
    for (; j < m; j++) {
        uint32_t i = i0 + j;
        uint64_t pk = bitr_peek(&r);
        switch (pk >> 62) {
        case 0: {
            unsigned ref = (unsigned)(pk >> 55) & 127;
            if (i < CHIMP_RING && ref >= i) return STRATA_ECORRUPT;
            r.pos += 9;
            v = ring[ref];
            lead = 0xff;
            break;
        }
        case 1: {
            unsigned hdr = (unsigned)((pk << 2) >> 48);
            unsigned ref = hdr >> 9, ld = chimp_lead_value[(hdr >> 6) & 7], sig = hdr & 63;
            if ((i < CHIMP_RING && ref >= i) || sig == 0 || ld + sig > 64) return STRATA_ECORRUPT;
            r.pos += 18;
            v = ring[ref] ^ ((bitr_peek(&r) >> (64 - sig)) << (64 - ld - sig));
            r.pos += sig;
            lead = 0xff;
            break;
        }
        case 2:
            if (lead == 0xff) return STRATA_ECORRUPT;
            r.pos += 2;
            v ^= bitr_peek(&r) >> lead;
            r.pos += 64 - lead;
            break;
        default:
            lead = chimp_lead_value[(pk >> 59) & 7];
            r.pos += 5;
            v ^= bitr_peek(&r) >> lead;
            r.pos += 64 - lead;
            break;
        }
        ring[i % CHIMP_RING] = v;
        out[j] = v;
    }
    if (r.pos > sec_bits) return STRATA_ECORRUPT;
    it->v_bits = v;
    it->v_lead = (uint8_t)lead;
    it->v_bitpos = (uint32_t)r.pos;
    return 0;
}

static int v_fill(stc_iter *it, uint64_t *out, uint32_t m)
{
    switch (it->v_codec) {
    case STC_V_XOR:
        return v_fill_xor(it, out, m);
    case STC_V_RLE:
        return v_fill_rle(it, out, m);
    case STC_V_DEC:
        return v_fill_dec(it, out, m);
    case STC_V_CHIMP:
        return v_fill_chimp(it, out, m);
    }
    return STRATA_ECORRUPT;
}

static bool v_done(const stc_iter *it)
{
    switch (it->v_codec) {
    case STC_V_XOR:
    case STC_V_CHIMP:
        return ((size_t)it->v_bitpos + 7) / 8 == (size_t)(it->v_end - it->v_p);
    case STC_V_RLE:
        return it->v_run == 0 && it->v_p == it->v_end;
    case STC_V_DEC:
        return it->v_exc_left == 0 && for_done(&it->v_for);
    }
    return false;
}

/* ---- iterator -------------------------------------------------------------------------------- */

int stc_iter_init(stc_iter *it, const uint8_t *data, size_t len)
{
    /* Only the fields before the batch buffers need clearing: those are written before read. */
    memset(it, 0, offsetof(stc_iter, v_ring));
    stc_header h;
    int rc = parse_header(data, len, &h);
    if (rc) {
        it->state = STRATA_ECORRUPT;
        return rc;
    }
    it->total = h.n;
    if (h.n == 0) return 0;
    it->ts_codec = (uint8_t)h.ts_codec;
    it->v_codec = (uint8_t)h.v_codec;
    it->ts_p = h.ts;
    it->ts_end = h.ts_end;
    it->v_p = h.v;
    it->v_end = h.v_end;
    if ((rc = ts_start(it)) || (rc = v_start(it))) {
        it->state = STRATA_ECORRUPT;
        return rc;
    }
    return 0;
}

static int stc_refill(stc_iter *it)
{
    uint32_t m = it->total - it->decoded;
    if (m > STC_BATCH) m = STC_BATCH;
    if (ts_fill(it, it->tbuf, m) || v_fill(it, it->vbuf, m)) return it->state = STRATA_ECORRUPT;
    it->decoded += m;
    if (it->decoded == it->total && !(ts_done(it) && v_done(it)))
        return it->state = STRATA_ECORRUPT;
    it->n = m;
    it->pos = 0;
    return 1;
}

int stc_iter_next_batch(stc_iter *it)
{
    if (ENC_UNLIKELY(it->state)) return it->state == 1 ? 0 : it->state;
    if (ENC_LIKELY(it->pos + 1 < it->n)) {
        it->pos++;
        it->read++;
        return 1;
    }
    if (it->decoded == it->total) {
        it->state = 1;
        it->n = 0;
        return 0;
    }
    int rc = stc_refill(it);
    if (rc == 1) it->read++;
    return rc;
}

int stc_iter_seek(stc_iter *it, int64_t t)
{
    if (it->state) return it->state == 1 ? 0 : it->state;
    if (it->read && it->tbuf[it->pos] >= t) return 1;
    int rc;
    while ((rc = stc_iter_next(it)) == 1)
        if (it->tbuf[it->pos] >= t) return 1;
    return rc;
}

int stc_decode(const uint8_t *data, size_t len, strata_sample *out, size_t cap, size_t *n,
               char *err)
{
    stc_iter iter, *it = &iter;
    *n = 0;
    int rc = stc_iter_init(it, data, len);
    if (rc) {
        set_err(err, "strata chunk: malformed header");
        return rc;
    }
    if (it->total > cap) {
        set_err(err, "strata chunk: more samples than the output holds");
        return STRATA_ELIMIT;
    }
    size_t k = 0;
    while (it->decoded < it->total) {
        rc = stc_refill(it);
        if (rc != 1) {
            set_err(err, "strata chunk: corrupt sample data");
            return STRATA_ECORRUPT;
        }
        uint32_t m = it->n;
        strata_sample *restrict dst = out + k;
        const int64_t *restrict ts = it->tbuf;
        const uint64_t *restrict vs = it->vbuf;
        for (uint32_t j = 0; j < m; j++) {
            dst[j].t = ts[j];
            memcpy(&dst[j].v, &vs[j], sizeof(double));
        }
        k += m;
    }
    *n = k;
    return 0;
}

static int stc_count(const uint8_t *data, size_t len, uint32_t *n)
{
    stc_header h;
    int rc = parse_header(data, len, &h);
    if (rc) return rc;
    *n = h.n;
    return 0;
}

const chunk_codec chunk_codec_strata = {
    .id = CHUNK_ENC_STRATA,
    .name = "STRATA",
    .decode = stc_decode,
    .count = stc_count,
};

int chunk_iter_init(chunk_iter *it, chunk_encoding enc, const uint8_t *data, size_t len)
{
    it->enc = enc;
    if (enc == CHUNK_ENC_XOR) return xor_iter_init(&it->u.x, data, len);
    if (enc == CHUNK_ENC_STRATA) return stc_iter_init(&it->u.s, data, len);
    it->enc = CHUNK_ENC_NONE;
    return STRATA_EUNSUPPORTED;
}

/* ---- selector -------------------------------------------------------------------------------- */

/*
 * Decode cost per sample in nanoseconds: each codec alone on 120-sample chunks, the fastest of 21
 * runs of `bench_codecs --only costs`, rounded over its three datasets (docs/benchmarks.md,
 * "Decode cost model"). A timestamp and a value codec's costs add up to the pair's; RLE is
 * charged for the long runs the selector uses it on, not for the forced worst case.
 */
static const double ts_cost_ns[STC_TS_CODECS] = {0, 1.8, 0.8, 0.6};
static const double v_cost_ns[STC_V_CODECS] = {0, 2.9, 0.3, 1.4, 4.5};

double stc_ts_cost_ns(unsigned ts_codec)
{
    return ts_codec > 0 && ts_codec < STC_TS_CODECS ? ts_cost_ns[ts_codec] : 0;
}

double stc_value_cost_ns(unsigned v_codec)
{
    return v_codec > 0 && v_codec < STC_V_CODECS ? v_cost_ns[v_codec] : 0;
}

const char *stc_ts_codec_name(unsigned id)
{
    static const char *const names[STC_TS_CODECS] = {"?", "dod", "delta", "grid"};
    return id < STC_TS_CODECS ? names[id] : "?";
}

const char *stc_value_codec_name(unsigned id)
{
    static const char *const names[STC_V_CODECS] = {"?", "xor", "rle", "dec", "chimp"};
    return id < STC_V_CODECS ? names[id] : "?";
}

void stc_stats_add(stc_stats *dst, const stc_stats *src)
{
    dst->chunks += src->chunks;
    dst->samples += src->samples;
    dst->bytes_in += src->bytes_in;
    dst->bytes_out += src->bytes_out;
    for (unsigned i = 0; i < STC_TS_CODECS; i++) {
        dst->ts_chunks[i] += src->ts_chunks[i];
        dst->ts_bytes[i] += src->ts_bytes[i];
    }
    for (unsigned i = 0; i < STC_V_CODECS; i++) {
        dst->v_chunks[i] += src->v_chunks[i];
        dst->v_bytes[i] += src->v_bytes[i];
    }
}

int stc_encode(const strata_sample *s, size_t n, const stc_options *opts, stc_stats *stats,
               uint8_t **out, size_t *len, char *err)
{
    static const stc_options defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    *len = 0;
    if (n > STC_MAX_SAMPLES || (n && !s)) {
        set_err(err, "strata chunk: more than 65535 samples");
        return STRATA_EINVAL;
    }
    uint32_t ts_ok = opts->ts_allowed ? opts->ts_allowed : ~0u;
    uint32_t v_ok = opts->v_allowed ? opts->v_allowed : ~0u;
    if (!(ts_ok & 0xe) || !(v_ok & 0x1e)) {
        set_err(err, "strata chunk: the options allow no codec");
        return STRATA_EINVAL;
    }
    if (n == 0) {
        uint8_t *p = calloc(1, 1);
        if (!p) return STRATA_ENOMEM;
        *out = p;
        *len = 1;
        if (stats) stats->chunks++, stats->bytes_out++;
        return 0;
    }
    int rc = 0;
    /* t, bits, then three scratch arrays for the encoders */
    uint64_t *mem = malloc(5 * n * sizeof(uint64_t));
    ebuf ts_enc[STC_TS_CODECS] = {0}, v_enc[STC_V_CODECS] = {0};
    bool ts_have[STC_TS_CODECS] = {0}, v_have[STC_V_CODECS] = {0};
    if (!mem) return STRATA_ENOMEM;
    int64_t *t = (int64_t *)mem;
    uint64_t *bits = mem + n, *sc1 = mem + 2 * n, *sc2 = mem + 3 * n, *sc3 = mem + 4 * n;
    size_t runs = 1;
    for (size_t i = 0; i < n; i++) {
        t[i] = s[i].t;
        bits[i] = dbits(s[i].v);
        if (i && bits[i] != bits[i - 1]) runs++;
    }
    if (ts_ok & (1u << STC_TS_DOD)) {
        ts_enc_dod(&ts_enc[STC_TS_DOD], t, n);
        ts_have[STC_TS_DOD] = true;
    }
    if (ts_ok & (1u << STC_TS_DELTA)) {
        ts_enc_delta(&ts_enc[STC_TS_DELTA], t, n, sc1);
        ts_have[STC_TS_DELTA] = true;
    }
    if (ts_ok & (1u << STC_TS_GRID)) {
        ts_enc_grid(&ts_enc[STC_TS_GRID], t, n, sc1);
        ts_have[STC_TS_GRID] = true;
    }
    if (v_ok & (1u << STC_V_XOR)) {
        v_enc_xor(&v_enc[STC_V_XOR], bits, n);
        v_have[STC_V_XOR] = true;
    }
    /* Many short runs only ever lose to XOR; skip the work unless RLE is all that is allowed. */
    if ((v_ok & (1u << STC_V_RLE)) && (runs * 4 <= n || !(v_ok & 0x1a))) {
        v_enc_rle(&v_enc[STC_V_RLE], bits, n);
        v_have[STC_V_RLE] = true;
    }
    if (v_ok & (1u << STC_V_DEC))
        v_have[STC_V_DEC] = v_enc_dec(&v_enc[STC_V_DEC], bits, n, sc2, sc3);
    /* Chimp refines XOR by a few percent at most; skip its 64 KiB table unless nothing else
     * came within 10 % of XOR (or it is all that is allowed). */
    size_t other = SIZE_MAX;
    for (unsigned b = STC_V_RLE; b <= STC_V_DEC; b++)
        if (v_have[b] && v_enc[b].len < other) other = v_enc[b].len;
    if ((v_ok & (1u << STC_V_CHIMP)) &&
        (!v_have[STC_V_XOR] || other >= v_enc[STC_V_XOR].len - v_enc[STC_V_XOR].len / 10)) {
        rc = v_enc_chimp(&v_enc[STC_V_CHIMP], bits, n);
        v_have[STC_V_CHIMP] = rc == 0;
    }
    unsigned best_ts = 0, best_v = 0;
    size_t best_size = SIZE_MAX;
    double best_cost = 1e300;
    bool best_fits = false;
    for (unsigned a = 1; a < STC_TS_CODECS && !rc; a++)
        for (unsigned b = 1; b < STC_V_CODECS; b++) {
            if (!ts_have[a] || !v_have[b]) continue;
            if (ts_enc[a].oom || v_enc[b].oom) rc = STRATA_ENOMEM;
            size_t size = ts_enc[a].len + v_enc[b].len;
            double cost = ts_cost_ns[a] + v_cost_ns[b];
            bool fits = opts->max_decode_ns <= 0 || cost <= opts->max_decode_ns;
            /* ties in size go to the cheaper pair to decode */
            bool better =
                fits
                    ? (!best_fits || size < best_size || (size == best_size && cost < best_cost))
                    : (!best_fits && (cost < best_cost || (cost == best_cost && size < best_size)));
            if (better) {
                best_ts = a;
                best_v = b;
                best_size = size;
                best_cost = cost;
                best_fits = fits;
            }
        }
    if (!rc && (!best_ts || !best_v)) rc = STRATA_EINVAL; /* only RLE allowed was impossible */
    if (!rc) {
        ebuf o = {0};
        eb_uvarint(&o, n);
        eb_byte(&o, (uint8_t)(best_ts << 4 | best_v));
        eb_uvarint(&o, ts_enc[best_ts].len);
        eb_bytes(&o, ts_enc[best_ts].p, ts_enc[best_ts].len);
        eb_bytes(&o, v_enc[best_v].p, v_enc[best_v].len);
        if (o.oom) {
            free(o.p);
            rc = STRATA_ENOMEM;
        } else {
            *out = o.p;
            *len = o.len;
            if (stats) {
                stats->chunks++;
                stats->samples += n;
                stats->bytes_in += 16 * (uint64_t)n;
                stats->bytes_out += o.len;
                stats->ts_chunks[best_ts]++;
                stats->ts_bytes[best_ts] += ts_enc[best_ts].len;
                stats->v_chunks[best_v]++;
                stats->v_bytes[best_v] += v_enc[best_v].len;
            }
        }
    }
    for (unsigned a = 0; a < STC_TS_CODECS; a++)
        free(ts_enc[a].p);
    for (unsigned b = 0; b < STC_V_CODECS; b++)
        free(v_enc[b].p);
    free(mem);
    if (rc == STRATA_ENOMEM) set_err(err, "strata chunk: out of memory");
    if (rc == STRATA_EINVAL) set_err(err, "strata chunk: no allowed codec can encode this data");
    return rc;
}

int stc_transcode(chunk_encoding enc, const uint8_t *data, size_t len, const stc_options *opts,
                  stc_stats *stats, uint8_t **out, size_t *out_len, char *err)
{
    *out = NULL;
    *out_len = 0;
    const chunk_codec *codec = chunk_codec_get(enc);
    if (!codec) {
        set_err(err, "transcode: unknown chunk encoding");
        return STRATA_EUNSUPPORTED;
    }
    if (codec->decode_hist) {
        set_err(err, "transcode: histogram chunks cannot become float chunks");
        return STRATA_EUNSUPPORTED;
    }
    uint32_t n;
    if (codec->count(data, len, &n)) {
        set_err(err, "transcode: malformed chunk header");
        return STRATA_ECORRUPT;
    }
    strata_sample *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) {
        set_err(err, "transcode: out of memory");
        return STRATA_ENOMEM;
    }
    size_t got;
    int rc = codec->decode(data, len, s, n, &got, err);
    if (rc == 0) rc = stc_encode(s, got, opts, stats, out, out_len, err);
    free(s);
    return rc;
}
