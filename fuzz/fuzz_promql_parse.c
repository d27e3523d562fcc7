/*
 * fuzz_promql_parse.c: arbitrary bytes as PromQL. The parser must return a tree or a positioned
 * error, never crash, leak or recurse without bound; a tree must format to text that parses
 * again to the same text (the round trip the formatter promises), and the same bytes as a
 * series selector must parse or fail cleanly too.
 */
#include "query/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(int rc, const char *err)
{
    if (rc != STRATA_EPARSE && rc != STRATA_ENOMEM) abort();
    if (!strstr(err, "parse error") && !strstr(err, "out of memory")) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    promql_expr *e = NULL;
    char err[STRATA_ERRMSG_SIZE];
    int rc = promql_parse(text, size, &e, err);
    if (rc == 0) {
        buf f1 = {0}, f2 = {0};
        if (promql_expr_format(e, &f1)) abort();
        promql_expr *e2 = NULL;
        if (promql_parse((char *)f1.data, f1.len, &e2, err) != 0) {
            fprintf(stderr, "formatted text does not parse: %s\n  %s\n", (char *)f1.data, err);
            abort();
        }
        if (promql_expr_format(e2, &f2)) abort();
        if (f1.len != f2.len || memcmp(f1.data, f2.data, f1.len)) {
            fprintf(stderr, "format is not stable:\n  %s\n  %s\n", (char *)f1.data, (char *)f2.data);
            abort();
        }
        buf_free(&f1);
        buf_free(&f2);
        promql_expr_free(e2);
        promql_expr_free(e);
    } else {
        check_error(rc, err);
    }
    matcher **ms = NULL;
    size_t n = 0;
    rc = promql_parse_selector(text, &ms, &n, err);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) matcher_free(ms[i]);
        free(ms);
    } else {
        check_error(rc, err);
    }
    free(text);
    return 0;
}
