/*
 * fuzz_chunk_xor.c: arbitrary bytes as an XOR chunk. The decoder must never read outside its
 * input (ASan checks), and whatever it decodes must re-encode and decode to the same bits.
 */
#include "encoding/encoding.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so any over-read lands outside the allocation. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    strata_sample got[4096];
    size_t n = 0;
    xor_iter it;
    if (xor_iter_init(&it, copy, size) == 0) {
        int64_t prev = INT64_MIN;
        bool ordered = true;
        while (n < 4096 && xor_iter_next(&it) == 1) {
            xor_iter_at(&it, &got[n].t, &got[n].v);
            if (got[n].t < prev) ordered = false;
            prev = got[n].t;
            n++;
        }
        /* Only ordered streams are what an appender can produce; re-encode those. */
        if (ordered && n > 0) {
            xor_appender a;
            if (xor_appender_init(&a) == 0) {
                for (size_t i = 0; i < n; i++) xor_append(&a, got[i].t, got[i].v);
                size_t len;
                const uint8_t *b = xor_appender_bytes(&a, &len);
                xor_iter r;
                if (xor_iter_init(&r, b, len) != 0) abort();
                for (size_t i = 0; i < n; i++) {
                    if (xor_iter_next(&r) != 1) abort();
                    int64_t t;
                    double v;
                    xor_iter_at(&r, &t, &v);
                    if (t != got[i].t || memcmp(&v, &got[i].v, sizeof v) != 0) abort();
                }
                xor_appender_free(&a);
            }
        }
    }
    free(copy);
    return 0;
}
