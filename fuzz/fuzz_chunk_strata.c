/*
 * fuzz_chunk_strata.c: the adaptive Strata chunk from both ends.
 *
 * 1. The input as a chunk: the decoder must never read outside it (ASan: an exact-size copy),
 *    stc_decode and the iterator must agree, and whatever decodes must re-encode (selector and
 *    the chunk's own codec pair) to a chunk that decodes to the same samples bit for bit.
 * 2. The input as an XOR chunk: when it decodes, stc_transcode must give a Strata chunk of the
 *    very same samples.
 * 3. The input as samples: the first byte picks the allowed codecs (or the selector), the rest
 *    are (int64, double) pairs taken raw, so every bit pattern and timestamp order appears;
 *    decode(encode(x)) must equal x bit for bit.
 */
#include "encoding/encoding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(ok) check_at((ok), #ok, __LINE__)
static void check_at(bool ok, const char *what, int line)
{
    if (ok) return;
    fprintf(stderr, "fuzz_chunk_strata.c:%d: %s\n", line, what);
    abort();
}

static bool same(const strata_sample *a, const strata_sample *b)
{
    return a->t == b->t && memcmp(&a->v, &b->v, sizeof a->v) == 0;
}

static void roundtrip(const strata_sample *s, size_t n, const stc_options *o)
{
    uint8_t *chunk;
    size_t len, k;
    int rc = stc_encode(s, n, o, NULL, &chunk, &len, NULL);
    check(rc == 0 || rc == STRATA_EINVAL); /* EINVAL: the decimal codec alone declined */
    if (rc) return;
    uint8_t *exact = malloc(len);
    strata_sample *back = malloc((n ? n : 1) * sizeof *back);
    if (!exact || !back) abort();
    memcpy(exact, chunk, len);
    check(stc_decode(exact, len, back, n, &k, NULL) == 0 && k == n);
    for (size_t i = 0; i < n; i++)
        check(same(&s[i], &back[i]));
    stc_iter it;
    check(stc_iter_init(&it, exact, len) == 0);
    size_t i = 0;
    while (stc_iter_next(&it) == 1) {
        strata_sample x;
        stc_iter_at(&it, &x.t, &x.v);
        check(i < n && same(&x, &s[i]));
        i++;
    }
    check(i == n);
    free(back);
    free(exact);
    free(chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    strata_sample *got = malloc(STC_MAX_SAMPLES * sizeof *got);
    if (!copy || !got) abort();
    if (size) memcpy(copy, data, size);

    /* 1: as a chunk */
    size_t n = 0;
    int drc = stc_decode(copy, size, got, STC_MAX_SAMPLES, &n, NULL);
    check(drc == 0 || drc == STRATA_ECORRUPT);
    stc_iter it;
    size_t m = 0;
    int rc = stc_iter_init(&it, copy, size);
    if (rc == 0) {
        while ((rc = stc_iter_next(&it)) == 1) {
            strata_sample x;
            stc_iter_at(&it, &x.t, &x.v);
            check(m < STC_MAX_SAMPLES);
            if (drc == 0) check(same(&x, &got[m]));
            m++;
        }
        check(stc_iter_next(&it) == rc); /* sticky */
    }
    check((rc == 0) == (drc == 0));
    if (drc == 0) {
        check(m == n);
        uint32_t cn;
        unsigned ct, cv;
        check(stc_chunk_codecs(copy, size, &cn, &ct, &cv) == 0 && cn == n);
        roundtrip(got, n, NULL);
        stc_options own = {.ts_allowed = 1u << ct, .v_allowed = 1u << cv};
        roundtrip(got, n, &own);
    }

    /* 2: as an XOR chunk: whatever decodes transcodes to a Strata chunk of the same samples */
    size_t nx;
    if (xor_decode(copy, size, got, STC_MAX_SAMPLES, &nx, NULL) == 0) {
        uint8_t *t;
        size_t tl, k;
        check(stc_transcode(CHUNK_ENC_XOR, copy, size, NULL, NULL, &t, &tl, NULL) == 0);
        strata_sample *back = malloc((nx ? nx : 1) * sizeof *back);
        if (!back) abort();
        check(stc_decode(t, tl, back, nx, &k, NULL) == 0 && k == nx);
        for (size_t i = 0; i < nx; i++)
            check(same(&got[i], &back[i]));
        free(back);
        free(t);
    }

    /* 3: as samples */
    if (size >= 1) {
        unsigned pick = data[0];
        size_t ns = (size - 1) / 16;
        for (size_t i = 0; i < ns; i++) {
            memcpy(&got[i].t, data + 1 + 16 * i, 8);
            memcpy(&got[i].v, data + 9 + 16 * i, 8);
        }
        /* low 2 bits: timestamp codec (0: any); next 3: value codec (0: any) */
        stc_options o = {.ts_allowed = (pick & 3) ? 1u << (pick & 3) : 0,
                         .v_allowed = ((pick >> 2) & 7) % STC_V_CODECS
                                          ? 1u << (((pick >> 2) & 7) % STC_V_CODECS)
                                          : 0,
                         .max_decode_ns = (pick & 0x80) ? 2.0 : 0};
        roundtrip(got, ns, &o);
    }
    free(got);
    free(copy);
    return 0;
}
