/*
 * fuzz_chunk_histogram.c: arbitrary bytes as histogram chunks of both encodings. The first byte
 * picks the encoding; the rest is the chunk. Decoding must never crash, leak or read out of
 * bounds. A chunk that decodes is then re-encoded sample by sample, cutting where the appender
 * says so, and every sample must decode back the same (a staleness marker as its sum). When all
 * samples are valid histograms, they are also appended recoding where the appender allows it,
 * and must decode back with the same non-empty buckets.
 */
#include "encoding/encoding.h"
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const hist_sample *a, const hist_sample *b)
{
    const native_histogram *x = &a->h, *y = &b->h;
    return a->t == b->t && !memcmp(&x->sum, &y->sum, 8) && !memcmp(&x->count, &y->count, 8) &&
           !memcmp(&x->zero_count, &y->zero_count, 8) && x->n_pos_buckets == y->n_pos_buckets &&
           x->n_neg_buckets == y->n_neg_buckets &&
           (!x->n_pos_buckets || !memcmp(x->pos_buckets, y->pos_buckets, 8 * x->n_pos_buckets)) &&
           (!x->n_neg_buckets || !memcmp(x->neg_buckets, y->neg_buckets, 8 * x->n_neg_buckets));
}

/* Integer chunks: values past 2^53 do not survive the trip through doubles, so only chunks
 * whose counts stay below that are re-encoded. */
static bool exact(const hist_sample *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const native_histogram *h = &v[i].h;
        if (!(h->count < 9007199254740992.0 && h->zero_count < 9007199254740992.0)) return false;
        for (uint32_t k = 0; k < h->n_pos_buckets; k++)
            if (!(h->pos_buckets[k] >= 0 && h->pos_buckets[k] < 9007199254740992.0)) return false;
        for (uint32_t k = 0; k < h->n_neg_buckets; k++)
            if (!(h->neg_buckets[k] >= 0 && h->neg_buckets[k] < 9007199254740992.0)) return false;
    }
    return true;
}

/* Bucket index of the k-th bucket of a side. */
static int64_t index_of(const hist_span *sp, uint32_t ns, uint32_t k)
{
    int64_t at = 0;
    for (uint32_t s = 0; s < ns; s++) {
        at += sp[s].offset;
        if (k < sp[s].length) return at + k;
        k -= sp[s].length;
        at += sp[s].length;
    }
    return INT64_MIN;
}

/* Same non-empty buckets (index and count bits) on one side. */
static bool same_side(const hist_span *as, uint32_t ans, const double *ab, uint32_t an,
                      const hist_span *bs, uint32_t bns, const double *bb, uint32_t bn)
{
    uint32_t i = 0, j = 0;
    for (;;) {
        while (i < an && ab[i] == 0)
            i++;
        while (j < bn && bb[j] == 0)
            j++;
        if (i == an || j == bn) return i == an && j == bn;
        if (index_of(as, ans, i) != index_of(bs, bns, j) || memcmp(&ab[i], &bb[j], 8)) return false;
        i++, j++;
    }
}

static bool equivalent(const hist_sample *a, const hist_sample *b)
{
    const native_histogram *x = &a->h, *y = &b->h;
    return a->t == b->t && !memcmp(&x->sum, &y->sum, 8) && !memcmp(&x->count, &y->count, 8) &&
           same_side(x->pos_spans, x->n_pos_spans, x->pos_buckets, x->n_pos_buckets, y->pos_spans,
                     y->n_pos_spans, y->pos_buckets, y->n_pos_buckets) &&
           same_side(x->neg_spans, x->n_neg_spans, x->neg_buckets, x->n_neg_buckets, y->neg_spans,
                     y->n_neg_spans, y->neg_buckets, y->n_neg_buckets);
}

/* Appends every sample, recoding when the appender says so; checks each chunk decodes back. */
static void recode_roundtrip(const hist_sample *in, size_t n, chunk_encoding enc, arena *a)
{
    char err[STRATA_ERRMSG_SIZE];
    for (size_t i = 0; i < n; i++)
        if (native_histogram_validate(&in[i].h, err) || native_histogram_is_stale(&in[i].h)) return;
    hist_appender app;
    if (hist_appender_init(&app, enc)) return;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        uint8_t header;
        int fit = i < n && i > start ? hist_appender_fits(&app, &in[i].h, &header) : 1;
        if (i == n || fit == 0) {
            size_t len;
            const uint8_t *bytes = hist_appender_bytes(&app, &len);
            hist_sample *back;
            size_t m;
            if (hist_chunk_decode(bytes, len, enc, a, &back, &m, err) != 0 || m != i - start)
                abort();
            for (size_t k = 0; k < m; k++)
                if (!equivalent(&back[k], &in[start + k])) abort();
            hist_appender_free(&app);
            if (i == n || hist_appender_init(&app, enc)) return;
            start = i;
        }
        int rc = fit == 2 ? hist_appender_recode(&app, in[i].t, &in[i].h)
                          : hist_append(&app, in[i].t, &in[i].h);
        if (rc) {
            hist_appender_free(&app);
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    chunk_encoding enc = (data[0] & 1) ? CHUNK_ENC_FLOAT_HISTOGRAM : CHUNK_ENC_HISTOGRAM;
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1);
    if (!copy) return 0;
    memcpy(copy, data + 1, size - 1);
    arena a;
    arena_init(&a, 0);
    hist_sample *out;
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    if (hist_chunk_decode(copy, size - 1, enc, &a, &out, &n, err) == 0 && n > 0 &&
        (enc == CHUNK_ENC_FLOAT_HISTOGRAM || exact(out, n))) {
        hist_appender app;
        if (hist_appender_init(&app, enc) == 0) {
            size_t start = 0;
            for (size_t i = 0; i <= n; i++) {
                uint8_t header;
                bool cut =
                    i == n || (i > start && hist_appender_fits(&app, &out[i].h, &header) != 1);
                if (cut) {
                    size_t len;
                    const uint8_t *bytes = hist_appender_bytes(&app, &len);
                    hist_sample *back;
                    size_t m;
                    if (hist_chunk_decode(bytes, len, enc, &a, &back, &m, err) != 0 ||
                        m != i - start)
                        abort();
                    for (size_t k = 0; k < m; k++)
                        if (!same(&back[k], &out[start + k])) abort();
                    hist_appender_free(&app);
                    if (i == n || hist_appender_init(&app, enc) != 0) break;
                    start = i;
                }
                if (hist_append(&app, out[i].t, &out[i].h) != 0) {
                    hist_appender_free(&app);
                    break;
                }
            }
        }
    }
    /* Recoding needs layouts that change: the samples of the whole input as a chunk, then those of
     * its tail read as another chunk (the split point from the last byte). */
    size_t split = size > 2 ? 1 + (size_t)data[size - 1] * (size - 1) / 256 : size;
    hist_sample *first, *second;
    size_t n1, n2;
    if (hist_chunk_decode(copy, size - 1, enc, &a, &first, &n1, err) == 0 &&
        hist_chunk_decode(copy + (split - 1), size - split, enc, &a, &second, &n2, err) == 0 &&
        n1 + n2 > 0 && n1 + n2 < 100000) {
        hist_sample *all = arena_alloc(&a, (n1 + n2) * sizeof *all);
        if (all) {
            memcpy(all, first, n1 * sizeof *all);
            memcpy(all + n1, second, n2 * sizeof *all);
            if (enc == CHUNK_ENC_FLOAT_HISTOGRAM || exact(all, n1 + n2))
                recode_roundtrip(all, n1 + n2, enc, &a);
        }
    }
    arena_free(&a);
    free(copy);
    return 0;
}
