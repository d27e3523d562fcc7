/*
 * encoding.h: the public face of the encoding module: big-endian helpers, varints, bit streams and
 * the chunk codecs (today Prometheus' XOR chunk).
 *
 * A leaf module: nothing here knows about series or the database, and nothing keeps global
 * mutable state. The XOR chunk is Prometheus' chunkenc XOR format bit for bit, so chunks move
 * between Strata blocks and Prometheus blocks without re-encoding; docs/format.md ("XOR chunk
 * (encoding 1)") has the bit-level layout and a worked example that the golden test checks.
 *
 * Return values follow the project's convention: 0 on success, a negative STRATA_E* code on
 * failure. Everything that reads untrusted bytes (varints, bit readers, chunk iterators) checks
 * every access against the end of its input and reports STRATA_ECORRUPT instead of reading past
 * it.
 */
#ifndef STRATA_ENCODING_H
#define STRATA_ENCODING_H

#include "strata.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- big-endian integers --------------------------------------------------------------------- */

/* Prometheus' on-disk formats are big-endian; these compile to a load or store and a byte swap. */
static inline uint16_t be16_get(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}
static inline void be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline uint32_t be32_get(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap32(v);
}
static inline void be32_put(uint8_t *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, sizeof v);
}
static inline uint64_t be64_get(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}
static inline void be64_put(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, sizeof v);
}

/* ---- varints (Go's encoding/binary: LEB128; signed values zig-zag) --------------------------- */

#define VARINT_MAX_LEN 10

/* Zig-zag mapping of Go's PutVarint: small magnitudes of either sign become small unsigned. */
static inline uint64_t varint_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t varint_unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Bytes the uvarint of v takes (1..10). */
static inline size_t varint_len_u64(uint64_t v)
{
    return ((size_t)(64 - __builtin_clzll(v | 1)) + 6) / 7;
}

/* Writes v at p (room for VARINT_MAX_LEN bytes) and returns the bytes written. */
size_t varint_put_u64(uint8_t *p, uint64_t v);
size_t varint_put_i64(uint8_t *p, int64_t v);

/* Reads a varint from [*p, end) and advances *p past it. 0, or STRATA_ECORRUPT when the input
 * ends inside the varint or it overflows 64 bits (more than 10 bytes, or a 10th byte above 1, as
 * Go's Uvarint rejects); *p is left unchanged on failure. */
int varint_get_u64(const uint8_t **p, const uint8_t *end, uint64_t *v);
int varint_get_i64(const uint8_t **p, const uint8_t *end, int64_t *v);

/* ---- bit streams ----------------------------------------------------------------------------- */

/*
 * A growable most-significant-bit-first bit stream, as Prometheus' bstream writes it: the first
 * bit written is bit 7 of byte 0. Every byte from the one holding bit nbits onwards is zero up to
 * cap, so the bytes are always the stream padded with zero bits to a whole byte. 16 bytes; a
 * zeroed struct is a valid empty writer with no buffer.
 */
typedef struct bit_writer {
    uint8_t *data;  /* owned by the writer; NULL until the first reservation */
    uint32_t nbits; /* bits written */
    uint32_t cap;   /* bytes allocated */
} bit_writer;

/* Starts an empty stream with room for cap_hint bytes (0: allocate on first write). 0 or
 * STRATA_ENOMEM. */
int bit_writer_init(bit_writer *w, uint32_t cap_hint);
/* Frees the buffer and leaves an empty writer; safe on a zeroed or already freed writer. */
void bit_writer_free(bit_writer *w);
/* Appends the low n bits of v (0 <= n <= 64), most significant first; higher bits of v are
 * ignored. 0, STRATA_ENOMEM (nothing written then) or STRATA_EINVAL for n > 64. */
int bit_write(bit_writer *w, uint64_t v, unsigned n);
/* The stream as bytes, the last one zero-padded: owned by the writer, valid until the next write
 * or free. *len is ceil(nbits / 8). */
const uint8_t *bit_writer_bytes(const bit_writer *w, size_t *len);

/* Reads a most-significant-bit-first stream from a byte slice it does not own. */
typedef struct bit_reader {
    const uint8_t *data;
    size_t len; /* bytes */
    size_t pos; /* bits consumed */
} bit_reader;

void bit_reader_init(bit_reader *r, const uint8_t *data, size_t len);
/* Reads the next n bits (0 <= n <= 64) into the low bits of *out. 0, or STRATA_ECORRUPT when
 * fewer than n bits remain (then nothing is consumed): the reader never reads past len. */
int bit_read(bit_reader *r, unsigned n, uint64_t *out);
/* Bits not yet consumed. */
static inline size_t bit_reader_remaining(const bit_reader *r)
{
    return r->len * 8 - r->pos;
}

/* ---- chunk encodings ------------------------------------------------------------------------- */

/* Encoding ids as Prometheus numbers them (chunkenc.Encoding); new codecs take new ids, and the
 * id is what blocks and remote read store beside each chunk. */
typedef enum chunk_encoding {
    CHUNK_ENC_NONE = 0,
    CHUNK_ENC_XOR = 1,
} chunk_encoding;

/* A codec's read side, looked up by the id stored with each chunk, so that a new encoding is a
 * new table entry rather than a new branch in every reader. */
typedef struct chunk_codec {
    chunk_encoding id;
    const char *name; /* as Prometheus prints it: "XOR" */
    /* Decodes a whole chunk into out (cap entries); *n receives the count. STRATA_ECORRUPT on
     * malformed input, STRATA_ELIMIT when the chunk holds more than cap samples; a sentence in
     * err (NULL allowed) either way. */
    int (*decode)(const uint8_t *data, size_t len, strata_sample *out, size_t cap, size_t *n,
                  char *err);
    /* The sample count the chunk's header claims, without decoding. STRATA_ECORRUPT if the data
     * is too short to hold a header. */
    int (*count)(const uint8_t *data, size_t len, uint32_t *n);
} chunk_codec;

/* The codec for an id, or NULL when this version does not know it. Static storage. */
const chunk_codec *chunk_codec_get(chunk_encoding id);
/* The codec with this name ("XOR"), or NULL. Static storage. */
const chunk_codec *chunk_codec_by_name(const char *name);

/* ---- the XOR chunk (Gorilla) ----------------------------------------------------------------- */

/* A chunk's header holds its sample count in 16 bits. */
#define XOR_MAX_SAMPLES 65535u

/*
 * An open chunk being appended to: the head keeps one per series, so its size matters. The
 * struct is 48 bytes (checked by a static assertion) plus its buffer, which starts at 32 bytes and
 * doubles; the writer keeps 9 spare bytes past the last one in use, so a 120-sample chunk of a
 * constant series (48 bytes) holds 64, of an integer counter (~420 bytes) 512. After every
 * xor_append the bytes are a complete chunk (header count included), so a reader may copy them
 * at any time between appends.
 */
typedef struct xor_appender {
    bit_writer w;     /* w.data is NULL before init and after free */
    int64_t t;        /* last timestamp */
    uint64_t t_delta; /* last timestamp delta, modulo 2^64 */
    uint64_t v_bits;  /* last value's bits */
    uint16_t count;
    uint8_t leading; /* XOR window of the last '11' value; 0xff: none yet */
    uint8_t trailing;
} xor_appender;

/* Starts an empty chunk (just the 2-byte count). The appender owns its buffer until
 * xor_appender_free. 0 or STRATA_ENOMEM. */
int xor_appender_init(xor_appender *a);
/*
 * Appends a sample. The caller guarantees t is not before the last timestamp (as Prometheus'
 * appender assumes; the arithmetic wraps, so even a violation encodes exactly what was given).
 * 0; STRATA_ENOMEM (the chunk is unchanged); STRATA_ELIMIT when it already holds
 * XOR_MAX_SAMPLES samples.
 */
int xor_append(xor_appender *a, int64_t t, double v);
/* The chunk's bytes as they stand, a valid Prometheus XOR chunk: owned by the appender, valid
 * until the next append or free. */
const uint8_t *xor_appender_bytes(const xor_appender *a, size_t *len);
uint16_t xor_appender_count(const xor_appender *a);
/* The last sample appended; meaningless while the count is 0. */
int64_t xor_appender_last_t(const xor_appender *a);
double xor_appender_last_v(const xor_appender *a);
/* Bytes of memory the appender holds: the struct and its buffer. */
size_t xor_appender_mem(const xor_appender *a);
/* Frees the buffer; safe on a zeroed or already freed appender. */
void xor_appender_free(xor_appender *a);
/*
 * Reopens a chunk to append more (WAL replay, a head chunk reloaded): decodes it all to validate
 * it and recover the encoder's state, then copies its bytes up to the last sample's last bit, so
 * the appender continues the very same stream (trailing bytes past the samples are dropped).
 * The caller keeps data; the appender owns its copy. 0, STRATA_ENOMEM, or STRATA_ECORRUPT with
 * the reason in err.
 */
int xor_appender_from_bytes(xor_appender *a, const uint8_t *data, size_t len, char *err);

/* Reads a chunk without allocating; the bytes must outlive the iterator. */
typedef struct xor_iter {
    bit_reader r;
    int64_t t;
    uint64_t t_delta;
    uint64_t v_bits;
    uint16_t total; /* from the header */
    uint16_t read;  /* samples decoded so far */
    uint8_t leading;
    uint8_t trailing;
    int8_t state; /* 0 reading, 1 at the end, STRATA_ECORRUPT after an error */
} xor_iter;

/* Positions it before the first sample. 0, or STRATA_ECORRUPT if data is shorter than the
 * 2-byte header (then next reports STRATA_ECORRUPT too). */
int xor_iter_init(xor_iter *it, const uint8_t *data, size_t len);
/* 1: a sample is available (xor_iter_at); 0: no more samples; STRATA_ECORRUPT: the data ends
 * inside a sample or holds a field no encoder writes. Errors and the end are sticky. */
int xor_iter_next(xor_iter *it);
/* The current sample; only after next or seek returned 1. */
static inline void xor_iter_at(const xor_iter *it, int64_t *t, double *v)
{
    *t = it->t;
    memcpy(v, &it->v_bits, sizeof *v);
}
/* Advances to the first sample with timestamp >= t; stays put if the current sample already
 * qualifies (it never goes back). Same returns as xor_iter_next. */
int xor_iter_seek(xor_iter *it, int64_t t);
/* The sample count the header claims. */
static inline uint16_t xor_iter_total(const xor_iter *it)
{
    return it->total;
}

/* Decodes a whole chunk into out (cap entries), *n the count. STRATA_ECORRUPT, or STRATA_ELIMIT
 * when the header claims more than cap samples, with a sentence in err (NULL allowed). */
int xor_decode(const uint8_t *data, size_t len, strata_sample *out, size_t cap, size_t *n,
               char *err);

#endif
