/*
 * symtab.c: the front-coded symbol table. Sorted label names and values share long prefixes
 * (metric name families, "host-00042:9100", bucket bounds), so storing each string as the part
 * it does not share with its predecessor removes most of the bytes; restart points every few
 * entries keep a lookup to one short scan, as LevelDB's blocks and Lucene's terms dictionaries do.
 * The reader validates the whole table once at open, so get and find trust the structure.
 */
#include "encoding/encoding_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, int rc, const char *msg)
{
    if (err) snprintf(err, STRATA_ERRMSG_SIZE, "symbol table: %s", msg);
    return rc;
}

static int bytes_cmp(const char *a, uint32_t al, const char *b, uint32_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return (al > bl) - (al < bl);
}

int symtab_encode(const char *const *strs, const uint32_t *lens, size_t n, uint32_t restart,
                  uint8_t **out, size_t *len, char *err)
{
    *out = NULL;
    *len = 0;
    if (!restart) restart = SYMTAB_DEFAULT_RESTART;
    if (restart > 256) return fail(err, STRATA_EINVAL, "restart interval above 256");
    if (n > UINT32_MAX - 1) return fail(err, STRATA_EINVAL, "too many strings");
    size_t nblocks = (n + restart - 1) / restart, body = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && bytes_cmp(strs[i - 1], lens[i - 1], strs[i], lens[i]) >= 0)
            return fail(err, STRATA_EINVAL, "strings not strictly increasing");
        body += 3 * VARINT_MAX_LEN + lens[i];
    }
    size_t cap = 3 * VARINT_MAX_LEN + body + 4 * nblocks;
    uint8_t *entries = malloc(body ? body : 1), *dst = malloc(cap);
    uint32_t *offs = malloc((nblocks ? nblocks : 1) * sizeof *offs);
    if (!entries || !dst || !offs) {
        free(entries);
        free(dst);
        free(offs);
        return fail(err, STRATA_ENOMEM, "out of memory");
    }
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % restart == 0) {
            if (e > UINT32_MAX) break; /* checked below */
            offs[i / restart] = (uint32_t)e;
            e += varint_put_u64(entries + e, lens[i]);
            memcpy(entries + e, strs[i], lens[i]);
            e += lens[i];
            continue;
        }
        uint32_t shared = 0, max = lens[i] < lens[i - 1] ? lens[i] : lens[i - 1];
        while (shared < max && strs[i][shared] == strs[i - 1][shared])
            shared++;
        e += varint_put_u64(entries + e, shared);
        e += varint_put_u64(entries + e, lens[i] - shared);
        memcpy(entries + e, strs[i] + shared, lens[i] - shared);
        e += lens[i] - shared;
    }
    if (e > UINT32_MAX) {
        free(entries);
        free(dst);
        free(offs);
        return fail(err, STRATA_EINVAL, "table larger than 4 GiB");
    }
    size_t o = 0;
    o += varint_put_u64(dst + o, n);
    o += varint_put_u64(dst + o, restart);
    o += varint_put_u64(dst + o, e);
    memcpy(dst + o, entries, e);
    o += e;
    for (size_t b = 0; b < nblocks; b++, o += 4)
        be32_put(dst + o, offs[b]);
    free(entries);
    free(offs);
    *out = dst;
    *len = o;
    return 0;
}

/* Decodes the entry at *p (within [.., end)) on top of prev (prev_len bytes in dst, which has
 * room for max bytes); first: a whole string. */
static int read_entry(const uint8_t **p, const uint8_t *end, bool first, char *dst,
                      uint32_t *cur_len, size_t cap)
{
    uint64_t shared = 0, rest;
    if (!first && varint_get_u64(p, end, &shared)) return STRATA_ECORRUPT;
    if (varint_get_u64(p, end, &rest)) return STRATA_ECORRUPT;
    if (shared > *cur_len || rest > (uint64_t)(end - *p)) return STRATA_ECORRUPT;
    if (shared + rest > cap) return STRATA_ELIMIT;
    if (rest) memcpy(dst + shared, *p, (size_t)rest);
    *p += rest;
    *cur_len = (uint32_t)(shared + rest);
    return 0;
}

int symtab_open(symtab *t, const uint8_t *data, size_t len, char *err)
{
    memset(t, 0, sizeof *t);
    if (!data) return fail(err, STRATA_ECORRUPT, "no data");
    const uint8_t *p = data, *end = data + len;
    uint64_t n, restart, elen;
    if (varint_get_u64(&p, end, &n) || varint_get_u64(&p, end, &restart) ||
        varint_get_u64(&p, end, &elen))
        return fail(err, STRATA_ECORRUPT, "truncated header");
    if (n > UINT32_MAX - 1 || restart == 0 || restart > 256 || elen > (uint64_t)(end - p))
        return fail(err, STRATA_ECORRUPT, "bad header");
    uint64_t nblocks = (n + restart - 1) / restart;
    if ((uint64_t)(end - p) - elen != 4 * nblocks)
        return fail(err, STRATA_ECORRUPT, "length disagrees with the header");
    t->entries = p;
    t->entries_len = (size_t)elen;
    t->offsets = p + elen;
    t->n = (uint32_t)n;
    t->restart = (uint32_t)restart;
    t->nblocks = (uint32_t)nblocks;
    /* One pass: every entry well-formed, every offset where its block starts, strict order.
     * The longest string is at most the section's length. */
    size_t cap = (size_t)elen;
    char *prev = malloc(cap + 1), *cur = malloc(cap + 1);
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return fail(err, STRATA_ENOMEM, "out of memory");
    }
    const uint8_t *q = t->entries, *qend = t->entries + elen;
    uint32_t prev_len = 0, cur_len = 0, max_len = 0;
    int rc = 0;
    for (uint64_t i = 0; i < n && !rc; i++) {
        bool first = i % restart == 0;
        if (first && be32_get(t->offsets + 4 * (i / restart)) != (uint64_t)(q - t->entries)) {
            rc = fail(err, STRATA_ECORRUPT, "block offset disagrees with the entries");
            break;
        }
        if (!first) memcpy(cur, prev, prev_len);
        cur_len = prev_len;
        if (read_entry(&q, qend, first, cur, &cur_len, cap)) {
            rc = fail(err, STRATA_ECORRUPT, "malformed entry");
            break;
        }
        if (i && bytes_cmp(prev, prev_len, cur, cur_len) >= 0) {
            rc = fail(err, STRATA_ECORRUPT, "strings not strictly increasing");
            break;
        }
        if (cur_len > max_len) max_len = cur_len;
        char *tmp = prev;
        prev = cur;
        cur = tmp;
        prev_len = cur_len;
    }
    if (!rc && q != qend) rc = fail(err, STRATA_ECORRUPT, "bytes after the last entry");
    free(prev);
    free(cur);
    if (rc) {
        memset(t, 0, sizeof *t);
        return rc;
    }
    t->max_len = max_len;
    return 0;
}

/* Decodes entries of block b up to index i into dst. */
static int decode_to(const symtab *t, uint32_t i, char *dst, size_t cap, uint32_t *len)
{
    uint32_t b = i / t->restart;
    const uint8_t *p = t->entries + be32_get(t->offsets + 4 * (size_t)b);
    const uint8_t *end = t->entries + t->entries_len;
    uint32_t cur = 0;
    for (uint32_t k = b * t->restart; k <= i; k++) {
        int rc = read_entry(&p, end, k == b * t->restart, dst, &cur, cap);
        if (rc) return rc;
    }
    *len = cur;
    return 0;
}

int symtab_get(const symtab *t, uint32_t i, char *dst, size_t cap, uint32_t *len)
{
    if (i >= t->n) return STRATA_ENOTFOUND;
    return decode_to(t, i, dst, cap, len);
}

int symtab_find(const symtab *t, const char *s, uint32_t len, uint32_t *idx)
{
    if (t->n == 0) return STRATA_ENOTFOUND;
    /* the last block whose first string is <= s */
    uint32_t lo = 0, hi = t->nblocks;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        const uint8_t *p = t->entries + be32_get(t->offsets + 4 * (size_t)mid);
        uint64_t l = 0;
        (void)varint_get_u64(&p, t->entries + t->entries_len, &l); /* validated at open */
        if (bytes_cmp((const char *)p, (uint32_t)l, s, len) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    char small[256];
    char *dst = t->max_len <= sizeof small ? small : malloc((size_t)t->max_len + 1);
    if (!dst) return STRATA_ENOMEM;
    const uint8_t *p = t->entries + be32_get(t->offsets + 4 * (size_t)lo);
    const uint8_t *end = t->entries + t->entries_len;
    uint32_t cur = 0, first = lo * t->restart;
    int rc = STRATA_ENOTFOUND;
    for (uint32_t k = first; k < t->n && k < first + t->restart; k++) {
        if (read_entry(&p, end, k == first, dst, &cur, t->max_len)) {
            rc = STRATA_ECORRUPT;
            break;
        }
        int c = bytes_cmp(dst, cur, s, len);
        if (c == 0) {
            *idx = k;
            rc = 0;
            break;
        }
        if (c > 0) break;
    }
    if (dst != small) free(dst);
    return rc;
}
