/*
 * encoding.h: the public face of the encoding module: bit streams, varints and chunk codecs.
 *
 * A leaf module: nothing here knows about series or the database. The XOR chunk is Prometheus'
 * chunkenc XOR format bit for bit, so chunks move between Strata blocks and Prometheus blocks
 * without re-encoding (docs/format.md has the bit-level layout).
 */
#ifndef STRATA_ENCODING_H
#define STRATA_ENCODING_H

#include "strata.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- varints (Go's encoding/binary: LEB128; signed values zig-zag) ------------------------ */

#define VARINT_MAX_LEN 10

/* Writes v at p (room for VARINT_MAX_LEN bytes) and returns the bytes written. */
size_t varint_put_u64(uint8_t *p, uint64_t v);
size_t varint_put_i64(uint8_t *p, int64_t v);
/* Reads a varint from [*p, end), advancing *p. 0 on success, -1 on truncation or overflow. */
int varint_get_u64(const uint8_t **p, const uint8_t *end, uint64_t *v);
int varint_get_i64(const uint8_t **p, const uint8_t *end, int64_t *v);

/* ---- bit streams ---------------------------------------------------------------------------- */

/* Bits are written most significant first, as Prometheus' bstream does. */
typedef struct bit_writer {
    uint8_t *data;  /* owned, grows geometrically */
    uint32_t len;   /* bytes in use (the last may be partial) */
    uint32_t cap;
    uint8_t free;   /* free bits in the last byte (0 means the next bit starts a new byte) */
} bit_writer;

typedef struct bit_reader {
    const uint8_t *data;
    size_t len;
    size_t pos;     /* bit position */
} bit_reader;

/* ---- chunk encodings -------------------------------------------------------------------------- */

/* Encoding ids as Prometheus numbers them; new codecs take new ids. */
typedef enum chunk_encoding {
    CHUNK_ENC_NONE = 0,
    CHUNK_ENC_XOR = 1,
} chunk_encoding;

/* A codec's read side, looked up by the id stored with each chunk, so a new encoding is a new
 * table entry rather than a new branch in every reader. */
typedef struct chunk_codec {
    chunk_encoding id;
    const char *name;
    /* Decodes a whole chunk into out (cap entries); *n receives the count. STRATA_ECORRUPT on bad
     * input, STRATA_ELIMIT if cap is too small. */
    int (*decode)(const uint8_t *data, size_t len, strata_sample *out, size_t cap, size_t *n);
    /* The sample count stored in the chunk header. */
    int (*count)(const uint8_t *data, size_t len, uint32_t *n);
} chunk_codec;

/* The codec for an id, or NULL when unknown. */
const chunk_codec *chunk_codec_get(chunk_encoding id);

/* ---- the XOR chunk (Gorilla) ------------------------------------------------------------------- */

/*
 * An open chunk being appended to. 40 bytes plus its buffer; the head keeps one per series, so
 * it stays small: the buffer starts at 32 bytes and doubles (a 120-sample chunk of a regular
 * series ends near 150 bytes). After every xor_append the bytes are a complete chunk.
 */
typedef struct xor_appender {
    bit_writer w;
    int64_t t;
    int64_t t_delta;
    uint64_t v_bits;
    uint16_t count;
    uint8_t leading;  /* 0xff: no previous window */
    uint8_t trailing;
} xor_appender;

/* Starts an empty chunk (just the 2-byte sample count). 0 or STRATA_ENOMEM. */
int xor_appender_init(xor_appender *a);
/* Appends a sample; the caller guarantees t is not before the last one. 0 or STRATA_ENOMEM;
 * STRATA_ELIMIT when the chunk already holds 65535 samples. */
int xor_append(xor_appender *a, int64_t t, double v);
/* The chunk's bytes as they stand (owned by the appender, valid until the next append/free). */
const uint8_t *xor_appender_bytes(const xor_appender *a, size_t *len);
uint16_t xor_appender_count(const xor_appender *a);
/* Bytes of memory the appender holds. */
size_t xor_appender_mem(const xor_appender *a);
void xor_appender_free(xor_appender *a);
/* Reopens an existing chunk for appending (copying it). 0, STRATA_ENOMEM or STRATA_ECORRUPT. */
int xor_appender_from_bytes(xor_appender *a, const uint8_t *data, size_t len, char *err);

/* Reads a chunk without allocating. */
typedef struct xor_iter {
    bit_reader r;
    uint16_t total;
    uint16_t read;
    int64_t t;
    int64_t t_delta;
    uint64_t v_bits;
    uint8_t leading;
    uint8_t trailing;
    int err;
} xor_iter;

/* STRATA_ECORRUPT if data is shorter than the header. */
int xor_iter_init(xor_iter *it, const uint8_t *data, size_t len);
/* 1: a sample is available (xor_iter_at); 0: end; STRATA_ECORRUPT: truncated or garbage. */
int xor_iter_next(xor_iter *it);
void xor_iter_at(const xor_iter *it, int64_t *t, double *v);
/* Advances to the first sample at or after t; same returns as xor_iter_next. */
int xor_iter_seek(xor_iter *it, int64_t t);
/* Decodes a whole chunk; see chunk_codec.decode. */
int xor_decode(const uint8_t *data, size_t len, strata_sample *out, size_t cap, size_t *n);

#endif
