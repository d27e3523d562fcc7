/*
 * fuzz_promql_parse.c: arbitrary bytes as PromQL. The parser must return an AST or a positioned
 * error, never crash, leak, or recurse without bound.
 */
#include "query/query.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    promql_expr *e = NULL;
    char err[STRATA_ERRMSG_SIZE];
    if (promql_parse(text, size, &e, err) == 0) promql_expr_free(e);
    else if (strstr(err, "parse error") == NULL && strstr(err, "out of memory") == NULL) abort();
    free(text);
    return 0;
}
