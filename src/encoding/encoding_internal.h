/*
 * encoding_internal.h: the inline hot paths of the bit streams, shared by the codecs of the
 * encoding module and not meant for other modules (they use the checked calls in encoding.h).
 *
 * Writes are one unaligned 64-bit read-modify-write plus one byte store, which is why the writer
 * keeps its bytes past the end zero and reserves 9 spare bytes; reads peek 64 bits at a time and
 * commit only after checking the bits they consumed were really there.
 */
#ifndef STRATA_ENCODING_INTERNAL_H
#define STRATA_ENCODING_INTERNAL_H

#include "encoding/encoding.h"

#define ENC_LIKELY(x) __builtin_expect(!!(x), 1)
#define ENC_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Bytes a writer must have allocated before bits are written up to bit position end: a write
 * starting in byte b touches bytes b .. b + 8. */
static inline size_t bitw_need(uint64_t end_bit)
{
    return (size_t)(end_bit >> 3) + 9;
}

/* Grows the buffer (doubling from 32 bytes) to at least need bytes, zero-filled. 0 or
 * STRATA_ENOMEM. */
int bitw_grow(bit_writer *w, size_t need);

/* Appends the low n bits of v (1 <= n <= 64) without checking room: the caller has made
 * cap >= bitw_need(nbits + n). Bits of v above n are ignored. */
static inline void bitw_put(bit_writer *w, uint64_t v, unsigned n)
{
    uint32_t pos = w->nbits;
    uint8_t *p = w->data + (pos >> 3);
    unsigned off = pos & 7;
    uint64_t x = v << (64 - n); /* left-aligned */
    be64_put(p, be64_get(p) | (x >> off));
    p[8] = (uint8_t)(x << (8 - off)); /* the off low bits that did not fit; 0 when off is 0 */
    w->nbits = pos + n;
}

/* Appends n zero bits: the bytes past the end are already zero. */
static inline void bitw_zeros(bit_writer *w, unsigned n)
{
    w->nbits += n;
}

/* The next 64 bits, left-aligned, with zeros past the end of the data. */
uint64_t bitr_peek_slow(const bit_reader *r);
static inline uint64_t bitr_peek(const bit_reader *r)
{
    size_t byte = r->pos >> 3;
    if (ENC_LIKELY(byte + 9 <= r->len)) {
        const uint8_t *p = r->data + byte;
        unsigned off = r->pos & 7;
        return (be64_get(p) << off) | ((uint64_t)p[8] >> (8 - off));
    }
    return bitr_peek_slow(r);
}

/* Consumes n bits a peek looked at; false (and nothing consumed) if fewer than n remain. */
static inline bool bitr_skip(bit_reader *r, size_t n)
{
    if (ENC_UNLIKELY(r->pos + n > r->len * 8)) return false;
    r->pos += n;
    return true;
}

/* The codecs' table entries (codec.c lists them). */
extern const chunk_codec chunk_codec_xor;
extern const chunk_codec chunk_codec_histogram;
extern const chunk_codec chunk_codec_float_histogram;

#endif
