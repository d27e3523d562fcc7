/*
 * fuzz_chunk_xor.c: arbitrary bytes as an XOR chunk. The decoder must never read outside its
 * input (ASan checks: the input is copied into an allocation of exactly its size), its three
 * entry points (iterator, xor_decode, reopening for append) must agree, and whatever it decodes
 * must re-encode to a chunk that decodes to the same samples bit for bit; a chunk reopened for
 * append must continue exactly as a fresh encoder of the same samples would.
 */
#include "encoding/encoding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts naming the property that failed, so a crash file explains itself. */
#define check(ok) check_at((ok), #ok, __LINE__)
static void check_at(bool ok, const char *what, int line)
{
    if (ok) return;
    fprintf(stderr, "fuzz_chunk_xor.c:%d: %s\n", line, what);
    abort();
}

static bool same(const strata_sample *a, const strata_sample *b)
{
    return a->t == b->t && memcmp(&a->v, &b->v, sizeof a->v) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    strata_sample *got = malloc(XOR_MAX_SAMPLES * sizeof *got);
    strata_sample *again = malloc(XOR_MAX_SAMPLES * sizeof *again);
    if (!copy || !got || !again) abort();
    if (size) memcpy(copy, data, size);

    /* The iterator, starting with a seek on one input in three to exercise that path too. */
    bool seeked = size % 3 == 0;
    size_t n = 0;
    int rc = STRATA_ECORRUPT;
    xor_iter it;
    if (xor_iter_init(&it, copy, size) == 0) {
        int64_t seek_to = size > 3 ? (int64_t)copy[size - 1] - 128 : INT64_MIN;
        rc = seeked ? xor_iter_seek(&it, seek_to) : xor_iter_next(&it);
        while (rc == 1) {
            check(n < XOR_MAX_SAMPLES && n < xor_iter_total(&it));
            xor_iter_at(&it, &got[n].t, &got[n].v);
            if (seeked && n == 0) check(got[n].t >= seek_to); /* later ones need not be */
            n++;
            rc = xor_iter_next(&it);
        }
        check(rc == 0 || rc == STRATA_ECORRUPT);
        check(xor_iter_next(&it) == rc); /* sticky */
        if (!seeked) check(rc != 0 || n == xor_iter_total(&it));
    }

    /* xor_decode agrees with the iterator. */
    size_t m = 0;
    int drc = xor_decode(copy, size, got, XOR_MAX_SAMPLES, &m, NULL);
    check(drc == 0 || drc == STRATA_ECORRUPT);
    if (!seeked && size >= 2) check(m == n && (drc == 0) == (rc == 0));
    n = m;

    /* Reopening for append succeeds exactly when the whole chunk decodes. */
    xor_appender re;
    int orc = xor_appender_from_bytes(&re, copy, size, NULL);
    check((orc == 0) == (drc == 0));
    if (orc == 0) {
        check(xor_appender_count(&re) == n);
        if (n) check(xor_appender_last_t(&re) == got[n - 1].t);
    }

    /* Re-encode what decoded (a corrupt chunk's good prefix too). */
    xor_appender a;
    if (n > 0 && xor_appender_init(&a) == 0) {
        for (size_t i = 0; i < n; i++)
            check(xor_append(&a, got[i].t, got[i].v) == 0);
        size_t len, k = 0;
        const uint8_t *b = xor_appender_bytes(&a, &len);
        uint8_t *enc = malloc(len);
        if (!enc) abort();
        memcpy(enc, b, len);
        check(xor_decode(enc, len, again, XOR_MAX_SAMPLES, &k, NULL) == 0 && k == n);
        for (size_t i = 0; i < n; i++)
            check(same(&got[i], &again[i]));
        /* The reopened chunk takes one more sample like the fresh encoder does. */
        if (orc == 0 && n < XOR_MAX_SAMPLES) {
            int64_t t = got[n - 1].t;
            double v = got[n - 1].v + 1.0;
            check(xor_append(&re, t, v) == 0);
            check(xor_append(&a, t, v) == 0);
            size_t rl, fl;
            const uint8_t *rb = xor_appender_bytes(&re, &rl);
            const uint8_t *fb = xor_appender_bytes(&a, &fl);
            check(xor_decode(rb, rl, again, XOR_MAX_SAMPLES, &k, NULL) == 0 && k == n + 1);
            for (size_t i = 0; i < n; i++)
                check(same(&got[i], &again[i]));
            /* Byte for byte, when the input is what our encoder writes (another encoder's
             * bits may differ while meaning the same samples). */
            if (len == size && memcmp(enc, copy, len) == 0)
                check(rl == fl && memcmp(rb, fb, fl) == 0);
        }
        free(enc);
        xor_appender_free(&a);
    }
    if (orc == 0) xor_appender_free(&re);
    free(again);
    free(got);
    free(copy);
    return 0;
}
