/*
 * fuzz_block.c: arbitrary bytes as a block's index, tombstones and chunk segment. Input layout:
 * 4-byte big-endian lengths L and T, L bytes of index, T bytes of tombstones, the rest as
 * chunks/000001 (meta.json is fixed). The
 * reader must refuse damage with an error (never crash or read outside the mapped files), and
 * whatever it accepts must be walkable: every series, chunk and postings list it hands out.
 */
#include "encoding/encoding.h"
#include "storage/block.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) abort();
    if (n && write(fd, p, n) != (ssize_t)n) abort();
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/fuzz_block-%d", (int)getpid());
        char path[512];
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/chunks", dir);
        mkdir(path, 0755);
        static const char meta[] = "{\"ulid\":\"01ARYZ6S41TSV4RRFFQ69G5FAV\",\"minTime\":0,"
                                   "\"maxTime\":1,\"version\":1}";
        put("meta.json", (const uint8_t *)meta, sizeof meta - 1);
    }
    if (size < 8) return 0;
    size_t rest = size - 8;
    size_t ilen = be32_get(data), tlen = be32_get(data + 4);
    if (ilen > rest) ilen = rest;
    if (tlen > rest - ilen) tlen = rest - ilen;
    put("index", data + 8, ilen);
    put("tombstones", data + 8 + ilen, tlen);
    put("chunks/000001", data + 8 + ilen + tlen, rest - ilen - tlen);

    sym_table *syms = sym_table_new();
    block *b = NULL;
    char err[STRATA_ERRMSG_SIZE];
    if (block_open(dir, syms, &b, err) == 0) {
        block_verify(b, err);
        size_t nt;
        const block_tombstone *t = block_tombstones(b, 1, &nt);
        if (nt) block_tombstoned(t, nt, 0);
        matcher *m;
        if (matcher_new(STRATA_MATCH_REGEX, "job", 3, "a.*", 3, &m, err) == 0) {
            roaring_bitmap_t *ids;
            if (block_select(b, (const matcher *const *)&m, 1, &ids, err) == 0)
                roaring_bitmap_free(ids);
            matcher_free(m);
        }
        const sym **v;
        size_t n;
        if (block_label_names(b, &v, &n) == 0) free(v);
        if (block_label_values(b, "job", &v, &n) == 0) free(v);
        block_close(b);
    }
    sym_table_free(syms);
    return 0;
}
