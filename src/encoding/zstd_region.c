/*
 * zstd_region.c: the zstd final pass over cold byte regions. The adaptive chunk codecs already
 * remove most redundancy inside a chunk; what is left is redundancy across chunks (the same
 * timestamp grid in every series of a target, repeated headers, similar value streams), which a
 * general-purpose compressor over a run of chunks finds. The raw length goes in front so that a
 * reader can bound the allocation before trusting the frame.
 */
#include "encoding/encoding_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>

static int fail(char *err, int rc, const char *msg)
{
    if (err) snprintf(err, STRATA_ERRMSG_SIZE, "zstd region: %s", msg);
    return rc;
}

int enc_zstd_compress(const uint8_t *src, size_t len, int level, uint8_t **out, size_t *out_len,
                      char *err)
{
    *out = NULL;
    *out_len = 0;
    if (level < 1 || level > ZSTD_maxCLevel()) return fail(err, STRATA_EINVAL, "bad level");
    if (len && !src) return fail(err, STRATA_EINVAL, "no input");
    size_t bound = ZSTD_compressBound(len);
    uint8_t *dst = malloc(VARINT_MAX_LEN + bound);
    if (!dst) return fail(err, STRATA_ENOMEM, "out of memory");
    size_t h = varint_put_u64(dst, len);
    size_t z = ZSTD_compress(dst + h, bound, len ? src : (const void *)"", len, level);
    if (ZSTD_isError(z)) {
        free(dst);
        return fail(err, STRATA_ENOMEM, ZSTD_getErrorName(z));
    }
    *out = dst;
    *out_len = h + z;
    return 0;
}

int enc_zstd_decompress(const uint8_t *src, size_t len, size_t max_len, uint8_t **out,
                        size_t *out_len, char *err)
{
    *out = NULL;
    *out_len = 0;
    const uint8_t *p = src, *end = src + len;
    uint64_t raw;
    if (!src || varint_get_u64(&p, end, &raw))
        return fail(err, STRATA_ECORRUPT, "truncated length");
    if (raw > max_len) return fail(err, STRATA_ELIMIT, "region larger than allowed");
    size_t zlen = (size_t)(end - p);
    unsigned long long content = ZSTD_getFrameContentSize(p, zlen);
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN || content != raw)
        return fail(err, STRATA_ECORRUPT, "frame header disagrees with the stored length");
    size_t fsize = ZSTD_findFrameCompressedSize(p, zlen);
    if (ZSTD_isError(fsize) || fsize != zlen)
        return fail(err, STRATA_ECORRUPT, "frame truncated or followed by other bytes");
    uint8_t *dst = malloc(raw ? (size_t)raw : 1);
    if (!dst) return fail(err, STRATA_ENOMEM, "out of memory");
    size_t got = ZSTD_decompress(dst, (size_t)raw, p, zlen);
    if (ZSTD_isError(got) || got != raw) {
        free(dst);
        return fail(err, STRATA_ECORRUPT, "frame does not decode");
    }
    *out = dst;
    *out_len = (size_t)raw;
    return 0;
}
