/*
 * encoding_internal.h: bit-stream primitives shared by the codecs of the encoding module.
 */
#ifndef STRATA_ENCODING_INTERNAL_H
#define STRATA_ENCODING_INTERNAL_H

#include "encoding/encoding.h"

#include <string.h>

int bw_init(bit_writer *w, uint32_t cap);
void bw_free(bit_writer *w);
/* Makes room for extra more bytes, so the writes that follow cannot fail. */
int bw_reserve(bit_writer *w, uint32_t extra);
/* Appends the low n bits of v (n <= 64), most significant first. 0 or STRATA_ENOMEM. */
int bw_write_bits(bit_writer *w, uint64_t v, unsigned n);
int bw_write_bytes_aligned(bit_writer *w, const uint8_t *p, uint32_t n);

static inline uint64_t bw_load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline void bw_store_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

/* Appends the low n bits of v (n <= 64) into room the caller reserved with bw_reserve (n/8 + 2
 * bytes): the hot path of the chunk encoders, with no allocation check per call. The 8 zero
 * bytes bw_reserve keeps past the end let each write be one 64-bit read-modify-write. */
static inline void bw_put_bits(bit_writer *w, uint64_t v, unsigned n)
{
    if (n == 0) return;
    if (n > 32) {
        bw_put_bits(w, v >> 32, n - 32);
        v &= 0xffffffffull;
        n = 32;
    } else if (n < 64) {
        v &= (1ull << n) - 1;
    }
    uint64_t pos = (uint64_t)w->len * 8 - w->free;
    size_t byte = (size_t)(pos >> 3);
    unsigned off = (unsigned)(pos & 7);
    uint64_t window = bw_load_be64(w->data + byte);
    window |= (v << (64 - n)) >> off;
    bw_store_be64(w->data + byte, window);
    pos += n;
    w->len = (uint32_t)((pos + 7) >> 3);
    w->free = (uint8_t)(w->len * 8 - pos);
}

void br_init(bit_reader *r, const uint8_t *data, size_t len);
/* Reads n bits (n <= 64); -1 when fewer remain. */
int br_read_bits(bit_reader *r, unsigned n, uint64_t *out);
static inline int br_read_bit(bit_reader *r, unsigned *bit)
{
    if (r->pos >= r->len * 8) return -1;
    *bit = (r->data[r->pos >> 3] >> (7 - (r->pos & 7))) & 1;
    r->pos++;
    return 0;
}

#endif
