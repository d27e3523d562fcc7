/*
 * fuzz_chunk_histogram.c: arbitrary bytes as histogram chunks of both encodings. The first byte
 * picks the encoding; the rest is the chunk. Decoding must never crash, leak or read out of
 * bounds. A chunk that decodes is then re-encoded sample by sample, cutting where the appender
 * says so, and every sample must decode back the same (a staleness marker as its sum).
 */
#include "encoding/encoding.h"

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
                bool cut = i == n || (i > start && !hist_appender_fits(&app, &out[i].h, &header));
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
    arena_free(&a);
    free(copy);
    return 0;
}
