/*
 * encoding_internal.h: bit-stream primitives shared by the codecs of the encoding module.
 */
#ifndef STRATA_ENCODING_INTERNAL_H
#define STRATA_ENCODING_INTERNAL_H

#include "encoding/encoding.h"

int bw_init(bit_writer *w, uint32_t cap);
void bw_free(bit_writer *w);
/* Makes room for extra more bytes, so the writes that follow cannot fail. */
int bw_reserve(bit_writer *w, uint32_t extra);
/* Appends the low n bits of v (n <= 64), most significant first. 0 or STRATA_ENOMEM. */
int bw_write_bits(bit_writer *w, uint64_t v, unsigned n);
int bw_write_bytes_aligned(bit_writer *w, const uint8_t *p, uint32_t n);

void br_init(bit_reader *r, const uint8_t *data, size_t len);
/* Reads n bits (n <= 64); -1 when fewer remain. */
int br_read_bits(bit_reader *r, unsigned n, uint64_t *out);
int br_read_bit(bit_reader *r, unsigned *bit);

#endif
