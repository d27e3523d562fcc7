/*
 * bitstream.c: varints and most-significant-bit-first bit streams, the raw material of the chunk
 * codecs. Varints are Go's encoding/binary ones because Prometheus' formats (chunks, WAL, index)
 * use them; the bit order is Prometheus' bstream's so that our chunks are byte-identical to its.
 * The reader checks every read against the end of its buffer, because chunks come from disk and
 * the network and must never make a decoder read past them; the writer's buffer grows
 * geometrically from a small start because the head keeps one open stream per series.
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
    return varint_put_u64(p, varint_zigzag(v));
}

int varint_get_u64(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t x = 0;
    for (unsigned i = 0; i < VARINT_MAX_LEN; i++) {
        if (q >= end) return STRATA_ECORRUPT;
        uint8_t b = *q++;
        /* The 10th byte carries bit 63 only; anything more overflows, as Go's Uvarint says. */
        if (i == VARINT_MAX_LEN - 1 && b > 1) return STRATA_ECORRUPT;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            *p = q;
            return 0;
        }
    }
    return STRATA_ECORRUPT;
}

int varint_get_i64(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    int rc = varint_get_u64(p, end, &u);
    if (rc) return rc;
    *v = varint_unzigzag(u);
    return 0;
}

int bit_writer_init(bit_writer *w, uint32_t cap_hint)
{
    memset(w, 0, sizeof *w);
    return cap_hint ? bitw_grow(w, cap_hint) : 0;
}

void bit_writer_free(bit_writer *w)
{
    free(w->data);
    memset(w, 0, sizeof *w);
}

int bitw_grow(bit_writer *w, size_t need)
{
    if (need <= w->cap) return 0;
    /* The chunk header caps a chunk far below this; a larger stream is a caller's bug. */
    if (need > UINT32_MAX / 2) return STRATA_ENOMEM;
    size_t cap = w->cap ? w->cap : 32;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(w->data, cap);
    if (!p) return STRATA_ENOMEM;
    memset(p + w->cap, 0, cap - w->cap);
    w->data = p;
    w->cap = (uint32_t)cap;
    return 0;
}

int bit_write(bit_writer *w, uint64_t v, unsigned n)
{
    if (n > 64) return STRATA_EINVAL;
    if (n == 0) return 0;
    uint64_t end = (uint64_t)w->nbits + n;
    if (end > UINT32_MAX) return STRATA_ENOMEM;
    if (ENC_UNLIKELY(bitw_need(end) > w->cap)) {
        int rc = bitw_grow(w, bitw_need(end));
        if (rc) return rc;
    }
    bitw_put(w, v, n);
    return 0;
}

const uint8_t *bit_writer_bytes(const bit_writer *w, size_t *len)
{
    *len = ((size_t)w->nbits + 7) >> 3;
    return w->data;
}

void bit_reader_init(bit_reader *r, const uint8_t *data, size_t len)
{
    r->data = data;
    r->len = data ? len : 0;
    r->pos = 0;
}

uint64_t bitr_peek_slow(const bit_reader *r)
{
    size_t byte = r->pos >> 3;
    unsigned off = r->pos & 7;
    uint8_t tmp[9] = {0};
    size_t avail = r->len > byte ? r->len - byte : 0;
    if (avail > sizeof tmp) avail = sizeof tmp;
    if (avail) memcpy(tmp, r->data + byte, avail);
    return (be64_get(tmp) << off) | ((uint64_t)tmp[8] >> (8 - off));
}

int bit_read(bit_reader *r, unsigned n, uint64_t *out)
{
    if (n > 64 || n > bit_reader_remaining(r)) return STRATA_ECORRUPT;
    if (n == 0) {
        *out = 0;
        return 0;
    }
    *out = bitr_peek(r) >> (64 - n);
    r->pos += n;
    return 0;
}
