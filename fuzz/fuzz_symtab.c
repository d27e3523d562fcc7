/*
 * fuzz_symtab.c: arbitrary bytes as a symbol table (open must validate or refuse, never read
 * outside the exact-size copy; an opened table's strings must all be gettable and findable at
 * their own index), and the input split at zero bytes into strings, sorted and de-duplicated,
 * must encode to a table that gives every string back.
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
    fprintf(stderr, "fuzz_symtab.c:%d: %s\n", line, what);
    abort();
}

typedef struct str {
    const char *p;
    uint32_t len;
} str;

static int cmp(const void *a, const void *b)
{
    const str *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void check_table(const symtab *t)
{
    char *dst = malloc((size_t)t->max_len + 1);
    if (!dst) abort();
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t l, idx;
        check(symtab_get(t, i, dst, t->max_len, &l) == 0);
        check(symtab_find(t, dst, l, &idx) == 0 && idx == i);
    }
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) abort();
    if (size) memcpy(copy, data, size);
    symtab t;
    int rc = symtab_open(&t, copy, size, NULL);
    check(rc == 0 || rc == STRATA_ECORRUPT);
    if (rc == 0) check_table(&t);

    str *s = malloc((size + 1) * sizeof *s);
    if (!s) abort();
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size; i++)
        if (i == size || data[i] == 0) {
            s[n++] = (str){(const char *)data + start, (uint32_t)(i - start)};
            start = i + 1;
        }
    qsort(s, n, sizeof *s, cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || cmp(&s[u - 1], &s[i])) s[u++] = s[i];
    const char **p = malloc((u ? u : 1) * sizeof *p);
    uint32_t *l = malloc((u ? u : 1) * sizeof *l);
    if (!p || !l) abort();
    for (size_t i = 0; i < u; i++) {
        p[i] = s[i].p;
        l[i] = s[i].len;
    }
    uint8_t *enc;
    size_t len;
    uint32_t restart = size ? 1 + data[0] % 32 : 0;
    check(symtab_encode(p, l, u, restart, &enc, &len, NULL) == 0);
    uint8_t *exact = malloc(len);
    if (!exact) abort();
    memcpy(exact, enc, len);
    check(symtab_open(&t, exact, len, NULL) == 0 && t.n == u);
    char *dst = malloc((size_t)t.max_len + 1);
    if (!dst) abort();
    for (uint32_t i = 0; i < u; i++) {
        uint32_t got;
        check(symtab_get(&t, i, dst, t.max_len, &got) == 0 && got == l[i]);
        check(memcmp(dst, p[i], got) == 0);
    }
    check_table(&t);
    free(dst);
    free(exact);
    free(enc);
    free(p);
    free(l);
    free(s);
    free(copy);
    return 0;
}
