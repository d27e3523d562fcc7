/*
 * fuzz_zstd_region.c: arbitrary bytes as a zstd region (decompress must refuse or succeed with
 * exactly the stored length, never read outside the exact-size copy, never allocate past its
 * limit), and arbitrary bytes compressed must come back unchanged.
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
    fprintf(stderr, "fuzz_zstd_region.c:%d: %s\n", line, what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    if (size) memcpy(copy, data, size);
    uint8_t *out;
    size_t len;
    int rc = enc_zstd_decompress(copy, size, 1 << 20, &out, &len, NULL);
    check(rc == 0 || rc == STRATA_ECORRUPT || rc == STRATA_ELIMIT);
    if (rc == 0) free(out);

    uint8_t *z, *back;
    size_t zl, bl;
    check(enc_zstd_compress(copy, size, 1 + (size ? data[0] % 5 : 0), &z, &zl, NULL) == 0);
    check(enc_zstd_decompress(z, zl, size, &back, &bl, NULL) == 0 && bl == size);
    check(size == 0 || memcmp(back, data, size) == 0);
    free(back);
    free(z);
    free(copy);
    return 0;
}
