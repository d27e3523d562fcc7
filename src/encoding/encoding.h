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

#include "core/core.h"
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
    CHUNK_ENC_HISTOGRAM = 2,       /* integer native histograms (chunk_histogram.c) */
    CHUNK_ENC_FLOAT_HISTOGRAM = 3, /* float native histograms (chunk_histogram.c) */
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
    /* For histogram encodings (NULL otherwise; their decode above refuses with STRATA_EINVAL):
     * decodes a whole chunk into *out, an array of *n samples whose every byte comes from a.
     * STRATA_ECORRUPT with a sentence in err (NULL allowed), or STRATA_ENOMEM. */
    int (*decode_hist)(const uint8_t *data, size_t len, arena *a, hist_sample **out, size_t *n,
                       char *err);
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

/* ---- native-histogram chunks (encodings 2 and 3) -------------------------------------------- */

/*
 * Prometheus' chunkenc HistogramChunk (integer histograms) and FloatHistogramChunk, bit for bit:
 * a 3-byte header (big-endian sample count, then a flags byte whose top two bits say why the
 * chunk was cut), the bucket layout once, then per sample the time and counts as
 * delta-of-deltas (integer) or XOR (float). docs/format.md has the layout.
 */

/* The counter-reset header: the top two bits of byte 2. */
enum {
    HIST_CHUNK_UNKNOWN = 0x00,   /* cut for another reason (layout, first chunk) */
    HIST_CHUNK_NOT_RESET = 0x40, /* definitely no counter reset when it was cut */
    HIST_CHUNK_RESET = 0x80,     /* cut because of a counter reset */
    HIST_CHUNK_GAUGE = 0xc0,     /* a gauge histogram chunk */
};
#define HIST_CHUNK_HEADER_MASK 0xc0

/* An open histogram chunk. It owns copies of the layout (schema, zero threshold, spans, custom
 * bounds) of its first sample; every later sample must have the same buckets (see
 * hist_appender_fits). */
typedef struct hist_appender {
    bit_writer w;
    chunk_encoding enc; /* CHUNK_ENC_HISTOGRAM or CHUNK_ENC_FLOAT_HISTOGRAM */
    uint16_t count;
    int32_t schema;
    double zero_threshold;
    hist_span *spans[2]; /* [0] positive, [1] negative */
    uint32_t n_spans[2];
    uint32_t n_buckets[2];
    double *custom;
    uint32_t n_custom;
    int64_t t, t_delta;
    /* Integer chunks: counts, bucket values in Prometheus' delta-between-buckets form and their
     * deltas from the previous sample. */
    uint64_t cnt, zcnt;
    int64_t cnt_delta, zcnt_delta;
    int64_t *ib[2], *ib_delta[2];
    /* Float chunks: the XOR state of count, zero count and each bucket. */
    uint64_t fcnt, fzcnt;
    uint8_t fcnt_lead, fcnt_trail, fzcnt_lead, fzcnt_trail;
    uint64_t *fb[2];
    uint8_t *fb_lead[2], *fb_trail[2];
    /* Both: the sum's XOR state, and the last sample's absolute bucket counts (reset checks). */
    uint64_t sum_bits;
    uint8_t sum_lead, sum_trail;
    double *last_abs[2];
    double last_count, last_zero_count;
} hist_appender;

/* Starts an empty chunk of encoding enc. The appender owns its memory until hist_appender_free.
 * 0, STRATA_EINVAL (not a histogram encoding) or STRATA_ENOMEM. */
int hist_appender_init(hist_appender *a, chunk_encoding enc);
void hist_appender_free(hist_appender *a);

/*
 * Whether h (validated) can be appended to this chunk: 1 yes; 2 only after recoding the chunk to
 * a wider layout (new buckets appeared, or empty ones vanished, and nothing went down:
 * hist_appender_recode, as Prometheus does; a caller may cut instead, with *header); 0 when a new
 * chunk must be cut, with the counter-reset header for that chunk in *header, by Prometheus'
 * rules: a gauge histogram after counter ones (gauge) or the reverse (not reset), a reset hint, a
 * count, zero count or bucket that went down, a bucket in use that disappeared, or other custom
 * bounds (reset); another schema or zero threshold, or a sample after a staleness marker
 * (unknown). A staleness marker always fits; an empty chunk takes anything. The encoding must
 * match h->is_int (the caller cuts when it does not).
 */
int hist_appender_fits(const hist_appender *a, const native_histogram *h, uint8_t *header);

/* Appends a sample that fits (or the first). The caller keeps t non-decreasing. A staleness
 * marker is stored as Prometheus stores it: its sum only. 0, STRATA_ENOMEM (chunk unchanged) or
 * STRATA_ELIMIT (65535 samples). */
int hist_append(hist_appender *a, int64_t t, const native_histogram *h);
/* For a sample hist_appender_fits answered 2: rewrites the chunk with every sample laid out on
 * the union of its layout and h's (missing buckets as zeros, spans one per run of consecutive
 * buckets, the header kept), then appends h. 0, STRATA_ENOMEM or STRATA_EINVAL (the chunk is
 * unchanged then). */
int hist_appender_recode(hist_appender *a, int64_t t, const native_histogram *h);
/* Sets the counter-reset header (top two bits of byte 2). */
void hist_appender_set_header(hist_appender *a, uint8_t header);
/* The chunk as it stands: owned by the appender, valid until the next append or free. */
const uint8_t *hist_appender_bytes(const hist_appender *a, size_t *len);

/* Reads a histogram chunk; its working arrays come from the arena given to init. */
typedef struct hist_iter {
    bit_reader r;
    chunk_encoding enc;
    uint16_t total, read;
    uint8_t header;
    int8_t state; /* 0 reading, 1 at the end, STRATA_ECORRUPT after an error */
    arena *a;
    int32_t schema;
    double zero_threshold;
    hist_span *spans[2];
    uint32_t n_spans[2], n_buckets[2];
    double *custom;
    uint32_t n_custom;
    int64_t t, t_delta;
    uint64_t cnt, zcnt;
    int64_t cnt_delta, zcnt_delta;
    int64_t *ib[2], *ib_delta[2];
    uint64_t fcnt, fzcnt;
    uint8_t fcnt_lead, fcnt_trail, fzcnt_lead, fzcnt_trail;
    uint64_t *fb[2];
    uint8_t *fb_lead[2], *fb_trail[2];
    uint64_t sum_bits;
    uint8_t sum_lead, sum_trail;
} hist_iter;

/* Positions it before the first sample. STRATA_ECORRUPT when data is shorter than the header,
 * STRATA_EINVAL for a non-histogram encoding. */
int hist_iter_init(hist_iter *it, const uint8_t *data, size_t len, chunk_encoding enc, arena *a);
/* 1: a sample is available; 0: the end; STRATA_ECORRUPT (malformed or truncated data, unknown
 * schema) or STRATA_ENOMEM. Errors and the end are sticky. */
int hist_iter_next(hist_iter *it);
/* The current sample, its buckets allocated from a; its spans and bounds are the iterator's
 * (from the arena given to hist_iter_init), shared by the samples of the chunk. The reset hint is Prometheus' reading of the header: GAUGE
 * in a gauge chunk, NOT_RESET after the first sample, RESET for the first sample of a chunk cut
 * for a reset, UNKNOWN otherwise. A staleness marker comes back as its sum with everything else
 * zero, as Prometheus returns it. 0 or STRATA_ENOMEM. */
int hist_iter_at(const hist_iter *it, arena *a, hist_sample *out);

/* Decodes a whole histogram chunk (either encoding) into *out (n samples), all from a. */
int hist_chunk_decode(const uint8_t *data, size_t len, chunk_encoding enc, arena *a,
                      hist_sample **out, size_t *n, char *err);

#endif
