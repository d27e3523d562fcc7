/*
 * natsort.c: the natural string order of sort_by_label and sort_by_label_desc. Prometheus takes
 * it from a Go package whose rules (chunks of digits or non-digits, numeric chunks compared as
 * integers when both parse, a string whose chunks run out first sorting first) are reproduced
 * here, including its quirks, so that orders agree exactly.
 */
#include "query/natsort.h"

#include <stdint.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The chunk starting at s[i]: a run of digits or a run of non-digits. */
static size_t chunk_end(const char *s, size_t n, size_t i)
{
    bool digits = is_digit(s[i]);
    while (i < n && is_digit(s[i]) == digits)
        i++;
    return i;
}

/* A digit run as an int64, false when it does not fit (then it compares as text). */
static bool parse_int(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) return false;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return n > 0;
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    if (r) return r;
    return an < bn ? -1 : an > bn;
}

bool natural_less(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0, j = 0;
    while (i < alen) {
        if (j >= blen) return false;
        size_t ie = chunk_end(a, alen, i), je = chunk_end(b, blen, j);
        bool a_last = ie >= alen, b_last = je >= blen;
        int64_t x, y;
        if (parse_int(a + i, ie - i, &x) && parse_int(b + j, je - j, &y)) {
            if (x != y) return x < y;
        } else {
            int r = bytes_cmp(a + i, ie - i, b + j, je - j);
            if (r) return r < 0;
        }
        if (a_last) return true;
        if (b_last) return false;
        i = ie;
        j = je;
    }
    return false;
}
