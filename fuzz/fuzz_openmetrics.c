/*
 * fuzz_openmetrics.c: arbitrary bytes as OpenMetrics text for `strata import`. The parser must
 * answer every input with success or STRATA_EPARSE (never crash or read past the input: it is
 * copied into an allocation of exactly its size), and hand out label sets whose first label is
 * a non-empty __name__ and whose strings are NUL-terminated where their length says.
 */
#include "ingest/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_sample(void *ctx, label *ls, size_t n, int64_t t, double v, char *err)
{
    (void)ctx;
    (void)t;
    (void)v;
    (void)err;
    if (n == 0 || strcmp(ls[0].name, "__name__") != 0 || ls[0].value_len == 0) abort();
    for (size_t i = 0; i < n; i++)
        if (ls[i].name[ls[i].name_len] != 0 || ls[i].value[ls[i].value_len] != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy) abort();
    if (size) memcpy(copy, data, size);
    char err[STRATA_ERRMSG_SIZE];
    int rc = om_parse(copy, size, check_sample, NULL, err);
    if (rc != 0 && rc != STRATA_EPARSE && rc != STRATA_ENOMEM) abort();
    free(copy);
    return 0;
}
