/*
 * bitstream.c: varints and most-significant-bit-first bit streams, the raw material of the chunk
 * codecs. The reader checks every read against the end of its buffer, because chunks come from
 * disk and the network and must never make a decoder read past them.
 */
#include "encoding/encoding_internal.h"

#include <stdlib.h>
#include <string.h>

size_t varint_put_u64(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t varint_put_i64(uint8_t *p, int64_t v)
{
    return varint_put_u64(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

int varint_get_u64(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        if (shift == 63 && b > 1) return -1; /* overflow, as Go's Uvarint reports */
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int varint_get_i64(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    if (varint_get_u64(p, end, &u)) return -1;
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

/* The writer keeps every byte past len zero, so a write can OR its bits into a 64-bit window
 * without reading garbage; reserve always leaves 8 spare zero bytes after the last one in use. */
int bw_init(bit_writer *w, uint32_t cap)
{
    w->data = calloc(1, cap < 16 ? 16 : cap);
    if (!w->data) return STRATA_ENOMEM;
    w->cap = cap < 16 ? 16 : cap;
    w->len = 0;
    w->free = 0;
    return 0;
}

void bw_free(bit_writer *w)
{
    free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
    w->free = 0;
}

int bw_reserve(bit_writer *w, uint32_t extra)
{
    uint32_t need = w->len + extra + 8;
    if (need <= w->cap) return 0;
    uint32_t cap = w->cap ? w->cap : 32;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(w->data, cap);
    if (!p) return STRATA_ENOMEM;
    memset(p + w->cap, 0, cap - w->cap);
    w->data = p;
    w->cap = cap;
    return 0;
}

int bw_write_bits(bit_writer *w, uint64_t v, unsigned n)
{
    if (bw_reserve(w, n / 8 + 2)) return STRATA_ENOMEM;
    bw_put_bits(w, v, n);
    return 0;
}

int bw_write_bytes_aligned(bit_writer *w, const uint8_t *p, uint32_t n)
{
    /* Callers only use this at byte boundaries (the chunk header). */
    if (bw_reserve(w, n)) return STRATA_ENOMEM;
    memcpy(w->data + w->len, p, n);
    w->len += n;
    w->free = 0;
    return 0;
}

void br_init(bit_reader *r, const uint8_t *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
}

int br_read_bits(bit_reader *r, unsigned n, uint64_t *out)
{
    if (n > 64 || r->pos + n > r->len * 8) return -1;
    size_t byte = r->pos >> 3;
    unsigned off = (unsigned)(r->pos & 7);
    if (n > 0 && n <= 56 && byte + 8 <= r->len) {
        /* Fast path: one unaligned 64-bit load covers off + n <= 63 bits. */
        uint64_t window = bw_load_be64(r->data + byte);
        *out = (window << off) >> (64 - n);
        r->pos += n;
        return 0;
    }
    uint64_t v = 0;
    while (n > 0) {
        byte = r->pos >> 3;
        off = (unsigned)(r->pos & 7);
        unsigned avail = 8 - off;
        unsigned take = n < avail ? n : avail;
        uint8_t b = (uint8_t)(r->data[byte] << off);
        v = (v << take) | (uint64_t)(b >> (8 - take));
        r->pos += take;
        n -= take;
    }
    *out = v;
    return 0;
}

