/*
 * block_read.c: opens a block directory (ours or Prometheus') and reads it through mmap.
 *
 * Opening checks what every later read relies on: meta.json, the index header and TOC, the
 * symbol table and the postings offset table (each against its CRC32C); symbols are interned into
 * the caller's table once, so series labels cost no copies afterwards. Series entries, postings
 * lists and chunks are checked against their own CRC32C when they are read. Every failure names
 * the file, the section and the offset, and answers STRATA_ECORRUPT: a damaged block is refused,
 * never half-read.
 */
#include "storage/block.h"
#include "encoding/encoding.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct mapped {
    uint8_t *p;
    size_t len;
} mapped;

typedef struct postings_entry {
    const sym *name, *value;
    uint64_t off;
} postings_entry;

/* A cold segment (docs/format.md, "Cold chunk segment"): the zstd regions' table, and each
 * region decompressed at its first read, kept until block_close (readers race to fill a slot;
 * the loser frees its copy). */
typedef struct cold_seg {
    uint32_t raw_len, n_regions;
    const uint8_t *table; /* n_regions x (raw start, raw length, file offset, file length) */
    _Atomic(uint8_t *) *regions;
} cold_seg;

struct block {
    char *dir;
    block_info info;
    mapped index;
    mapped *segs;
    cold_seg *cold; /* per segment; raw_len 0 for an uncompressed one */
    size_t n_segs;
    const sym **syms;
    uint32_t n_syms;
    postings_entry *pt; /* sorted by name, then value; pt[0] is the all-series list */
    size_t n_pt;
    uint64_t series_start, series_end;
    char (*parents)[BLOCK_ULID_LEN + 1];
    size_t n_parents;
    block_tombstone *tombs; /* sorted by id, then mint */
    size_t n_tombs;
};

static int map_file(const char *path, mapped *m, char *err)
{
    m->p = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return strata_errf(err, errno == ENOENT ? STRATA_ECORRUPT : STRATA_EIO,
                           "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return strata_errf(err, STRATA_EIO, "cannot stat %s: %s", path, strerror(errno));
    }
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return strata_errf(err, STRATA_EIO, "cannot map %s: %s", path, strerror(errno));
    m->p = p;
    m->len = (size_t)st.st_size;
    return 0;
}

static void unmap(mapped *m)
{
    if (m->p) munmap(m->p, m->len);
    m->p = NULL;
}

void block_close(block *b)
{
    if (!b) return;
    unmap(&b->index);
    for (size_t i = 0; i < b->n_segs; i++) {
        unmap(&b->segs[i]);
        for (uint32_t r = 0; b->cold && r < b->cold[i].n_regions; r++)
            free(atomic_load(&b->cold[i].regions[r]));
        if (b->cold) free(b->cold[i].regions);
    }
    free(b->segs);
    free(b->cold);
    free(b->syms);
    free(b->pt);
    free(b->parents);
    free(b->tombs);
    free(b->dir);
    free(b);
}

void block_mark_cold(block *b)
{
    b->info.cold = true;
}

const block_info *block_get_info(const block *b)
{
    return &b->info;
}

const char *block_dir(const block *b)
{
    return b->dir;
}

const char (*block_parents(const block *b, size_t *n))[BLOCK_ULID_LEN + 1]
{
    *n = b->n_parents;
    return (const char(*)[BLOCK_ULID_LEN + 1]) b->parents;
}

#define CORRUPT(err, b, what, off)                                                                 \
    strata_errf(err, STRATA_ECORRUPT, "block %s: index: %s at offset %llu", (b)->info.ulid, what,  \
                (unsigned long long)(off))

/* A section "len(be32) | body[len] | crc(be32)" at off: checks bounds and CRC, returns the body. */
static int section_at(block *b, uint64_t off, const char *what, const uint8_t **body, uint32_t *len,
                      char *err)
{
    if (off + 8 > b->index.len) return CORRUPT(err, b, what, off);
    uint32_t l = be32_get(b->index.p + off);
    if ((uint64_t)l + 8 > b->index.len - off) return CORRUPT(err, b, what, off);
    const uint8_t *p = b->index.p + off + 4;
    if (crc32c(0, p, l) != be32_get(p + l)) {
        char m[128];
        snprintf(m, sizeof m, "%s checksum mismatch", what);
        return CORRUPT(err, b, m, off);
    }
    *body = p;
    *len = l;
    return 0;
}

static int read_meta(block *b, char *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.json", b->dir);
    json_object *j = json_object_from_file(path);
    if (!j) return strata_errf(err, STRATA_ECORRUPT, "block %s: unreadable meta.json", b->dir);
    json_object *v;
    int rc = 0;
    const char *ulid = json_object_object_get_ex(j, "ulid", &v) ? json_object_get_string(v) : NULL;
    if (!ulid || strlen(ulid) != BLOCK_ULID_LEN)
        rc = STRATA_ECORRUPT;
    else
        memcpy(b->info.ulid, ulid, BLOCK_ULID_LEN + 1);
    if (!rc && json_object_object_get_ex(j, "version", &v) && json_object_get_int(v) != 1)
        rc = STRATA_EUNSUPPORTED;
    if (!rc && json_object_object_get_ex(j, "minTime", &v))
        b->info.mint = json_object_get_int64(v);
    else if (!rc)
        rc = STRATA_ECORRUPT;
    if (!rc && json_object_object_get_ex(j, "maxTime", &v))
        b->info.maxt = json_object_get_int64(v);
    else if (!rc)
        rc = STRATA_ECORRUPT;
    json_object *s;
    if (!rc && json_object_object_get_ex(j, "stats", &s)) {
        if (json_object_object_get_ex(s, "numSeries", &v))
            b->info.num_series = (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(s, "numSamples", &v))
            b->info.num_samples = (uint64_t)json_object_get_int64(v);
        if (json_object_object_get_ex(s, "numChunks", &v))
            b->info.num_chunks = (uint64_t)json_object_get_int64(v);
    }
    if (!rc && json_object_object_get_ex(j, "compaction", &s)) {
        if (json_object_object_get_ex(s, "level", &v))
            b->info.level = (uint32_t)json_object_get_int(v);
        json_object *ps;
        if (json_object_object_get_ex(s, "parents", &ps) &&
            json_object_is_type(ps, json_type_array)) {
            size_t n = json_object_array_length(ps);
            b->parents = calloc(n ? n : 1, sizeof *b->parents);
            for (size_t i = 0; b->parents && i < n; i++) {
                json_object *u;
                const char *id =
                    json_object_object_get_ex(json_object_array_get_idx(ps, i), "ulid", &u)
                        ? json_object_get_string(u)
                        : NULL;
                if (id && strlen(id) == BLOCK_ULID_LEN)
                    memcpy(b->parents[b->n_parents++], id, BLOCK_ULID_LEN + 1);
            }
        }
    }
    if (!rc && json_object_object_get_ex(j, "strata", &s)) {
        if (json_object_object_get_ex(s, "walSegment", &v))
            b->info.wal_segment = (uint32_t)json_object_get_int64(v);
        if (json_object_object_get_ex(s, "flushBlocks", &v))
            b->info.flush_blocks = (uint32_t)json_object_get_int64(v);
        b->info.cut_time = INT64_MAX; /* blocks of a whole-head flush carry no cutTime */
        if (json_object_object_get_ex(s, "cutTime", &v))
            b->info.cut_time = json_object_get_int64(v);
    }
    json_object_put(j);
    if (rc == STRATA_EUNSUPPORTED)
        return strata_errf(err, rc, "block %s: meta.json version is not 1", b->dir);
    if (rc)
        return strata_errf(err, rc, "block %s: meta.json lacks ulid, minTime or maxTime", b->dir);
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Checks a cold segment's header and region table (every region inside the file, the regions
 * covering the raw segment in order) so that reads only index checked ranges. */
static int cold_seg_open(block *b, size_t i, uint32_t seq, char *err)
{
    const uint8_t *p = b->segs[i].p;
    size_t len = b->segs[i].len;
    cold_seg *c = &b->cold[i];
    uint32_t n = len >= 20 ? be32_get(p + 12) : 0;
    size_t table_end = 16 + (size_t)n * 16;
    if (len < 20 || p[4] != 1 || n == 0 || n > (len - 20) / 16 ||
        crc32c(0, p, table_end) != be32_get(p + table_end))
        return strata_errf(err, STRATA_ECORRUPT,
                           "block %s: cold chunk segment %06u has a bad header or region table",
                           b->info.ulid, seq);
    uint64_t raw_at = 0;
    for (uint32_t r = 0; r < n; r++) {
        const uint8_t *e = p + 16 + (size_t)r * 16;
        uint64_t rs = be32_get(e), rl = be32_get(e + 4), fo = be32_get(e + 8),
                 fl = be32_get(e + 12);
        if (rs != raw_at || rl == 0 || fo < table_end + 4 || fo + fl > len)
            return strata_errf(err, STRATA_ECORRUPT,
                               "block %s: cold chunk segment %06u: region %u is out of place",
                               b->info.ulid, seq, r);
        raw_at += rl;
    }
    if (raw_at != be32_get(p + 8) || raw_at < 8)
        return strata_errf(err, STRATA_ECORRUPT,
                           "block %s: cold chunk segment %06u: regions do not cover the segment",
                           b->info.ulid, seq);
    c->raw_len = (uint32_t)raw_at;
    c->n_regions = n;
    c->table = p + 16;
    c->regions = calloc(n, sizeof *c->regions);
    return c->regions ? 0 : STRATA_ENOMEM;
}

/* The decompressed region of cold segment seg holding raw offset off: *base is its first byte,
 * *base_off its raw offset, *end its end. */
static int cold_region(block *b, uint64_t seg, uint64_t off, const uint8_t **base,
                       uint64_t *base_off, const uint8_t **end, char *err)
{
    cold_seg *c = &b->cold[seg];
    uint32_t lo = 0, hi = c->n_regions; /* the last region starting at or before off */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (be32_get(c->table + (size_t)mid * 16) <= off)
            lo = mid;
        else
            hi = mid;
    }
    const uint8_t *e = c->table + (size_t)lo * 16;
    uint32_t raw_len = be32_get(e + 4);
    uint8_t *r = atomic_load(&c->regions[lo]);
    if (!r) {
        size_t got;
        uint8_t *fresh;
        int rc = enc_zstd_decompress(b->segs[seg].p + be32_get(e + 8), be32_get(e + 12), raw_len,
                                     &fresh, &got, err);
        if (!rc && got != raw_len) {
            free(fresh);
            rc = STRATA_ECORRUPT;
        }
        if (rc)
            return strata_errf(err, rc == STRATA_ENOMEM ? rc : STRATA_ECORRUPT,
                               "block %s: chunks/%06llu: zstd region %u is damaged", b->info.ulid,
                               (unsigned long long)seg + 1, lo);
        uint8_t *expected = NULL;
        if (atomic_compare_exchange_strong(&c->regions[lo], &expected, fresh))
            r = fresh;
        else {
            free(fresh);
            r = expected;
        }
    }
    *base = r;
    *base_off = be32_get(e);
    *end = r + raw_len;
    return 0;
}

static int map_segments(block *b, char *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/chunks", b->dir);
    DIR *d = opendir(path);
    if (!d) return strata_errf(err, STRATA_ECORRUPT, "block %s: no chunks directory", b->info.ulid);
    uint32_t seqs[4096];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strlen(e->d_name) == 6 && strspn(e->d_name, "0123456789") == 6 && n < 4096)
            seqs[n++] = (uint32_t)strtoul(e->d_name, NULL, 10);
    closedir(d);
    qsort(seqs, n, sizeof *seqs, cmp_u32);
    b->segs = calloc(n ? n : 1, sizeof *b->segs);
    b->cold = calloc(n ? n : 1, sizeof *b->cold);
    if (!b->segs || !b->cold) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/chunks/%06u", b->dir, seqs[i]);
        int rc = map_file(path, &b->segs[i], err);
        if (rc) return rc;
        b->n_segs++;
        b->info.bytes += b->segs[i].len;
        if (b->segs[i].len >= 4 && be32_get(b->segs[i].p) == BLOCK_COLD_MAGIC) {
            if ((rc = cold_seg_open(b, i, seqs[i], err))) return rc;
            continue;
        }
        if (b->segs[i].len < 8 || be32_get(b->segs[i].p) != BLOCK_CHUNKS_MAGIC ||
            b->segs[i].p[4] != 1)
            return strata_errf(err, STRATA_ECORRUPT,
                               "block %s: chunk segment %06u has a bad header (magic or version)",
                               b->info.ulid, seqs[i]);
    }
    return 0;
}

static int read_index_tables(block *b, sym_table *syms, char *err)
{
    const mapped *ix = &b->index;
    if (ix->len < 5 + 52 || be32_get(ix->p) != BLOCK_INDEX_MAGIC)
        return strata_errf(err, STRATA_ECORRUPT, "block %s: index: bad magic or too short",
                           b->info.ulid);
    if (ix->p[4] != BLOCK_INDEX_V2)
        return strata_errf(err, STRATA_EUNSUPPORTED,
                           "block %s: index format version %u (2 is read)", b->info.ulid, ix->p[4]);
    const uint8_t *toc = ix->p + ix->len - 52;
    if (crc32c(0, toc, 48) != be32_get(toc + 48))
        return CORRUPT(err, b, "TOC checksum mismatch", ix->len - 52);
    uint64_t t[6];
    for (int i = 0; i < 6; i++) {
        t[i] = be64_get(toc + 8 * i);
        if (t[i] > ix->len - 52) return CORRUPT(err, b, "TOC offset out of range", ix->len - 52);
    }
    b->series_start = t[1];
    b->series_end = t[2] ? t[2] : t[4];

    const uint8_t *p;
    uint32_t len;
    int rc = section_at(b, t[0], "symbol table", &p, &len, err);
    if (rc) return rc;
    if (len < 4) return CORRUPT(err, b, "symbol table too short", t[0]);
    uint32_t n = be32_get(p);
    const uint8_t *q = p + 4, *end = p + len;
    if (n > len) return CORRUPT(err, b, "symbol count larger than the table", t[0]);
    b->syms = malloc((n ? n : 1) * sizeof *b->syms);
    if (!b->syms) return STRATA_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t l;
        if (varint_get_u64(&q, end, &l) || l > (uint64_t)(end - q))
            return CORRUPT(err, b, "symbol entry runs past its table", t[0]);
        if (!(b->syms[i] = sym_intern(syms, (const char *)q, (uint32_t)l))) return STRATA_ENOMEM;
        q += l;
    }
    b->n_syms = n;

    if (!t[5]) return 0; /* no postings: an empty block */
    rc = section_at(b, t[5], "postings offset table", &p, &len, err);
    if (rc) return rc;
    if (len < 4) return CORRUPT(err, b, "postings offset table too short", t[5]);
    n = be32_get(p);
    q = p + 4;
    end = p + len;
    if (n > len) return CORRUPT(err, b, "postings offset count larger than the table", t[5]);
    b->pt = malloc((n ? n : 1) * sizeof *b->pt);
    if (!b->pt) return STRATA_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t keys, nl, vl, off;
        if (varint_get_u64(&q, end, &keys) || keys != 2 || varint_get_u64(&q, end, &nl) ||
            nl > (uint64_t)(end - q))
            return CORRUPT(err, b, "malformed postings offset entry", t[5]);
        const uint8_t *name = q;
        q += nl;
        if (varint_get_u64(&q, end, &vl) || vl > (uint64_t)(end - q))
            return CORRUPT(err, b, "malformed postings offset entry", t[5]);
        const uint8_t *value = q;
        q += vl;
        if (varint_get_u64(&q, end, &off) || off >= ix->len)
            return CORRUPT(err, b, "postings offset out of range", t[5]);
        const sym *ns = sym_intern(syms, (const char *)name, (uint32_t)nl);
        const sym *vs = sym_intern(syms, (const char *)value, (uint32_t)vl);
        if (!ns || !vs) return STRATA_ENOMEM;
        b->pt[i] = (postings_entry){ns, vs, off};
        if (i &&
            label_str_compare(b->pt[i - 1].name->str, b->pt[i - 1].name->len, ns->str, ns->len) > 0)
            return CORRUPT(err, b, "postings offset table not sorted by name", t[5]);
    }
    b->n_pt = n;
    return 0;
}

static int cmp_tomb(const void *a, const void *b)
{
    const block_tombstone *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->mint < y->mint ? -1 : x->mint > y->mint;
}

/* tombstones: magic | version 1 | (uvarint id, varint mint, varint maxt)* | crc. A missing file
 * means none (Prometheus writes one always; tolerate its absence). */
static int read_tombstones(block *b, char *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/tombstones", b->dir);
    mapped t;
    if (map_file(path, &t, NULL)) return 0;
    int rc = 0;
    if (t.len && (t.len < 9 || be32_get(t.p) != BLOCK_TOMBSTONES_MAGIC || t.p[4] != 1 ||
                  crc32c(0, t.p + 5, t.len - 9) != be32_get(t.p + t.len - 4)))
        rc = strata_errf(err, STRATA_ECORRUPT,
                         "block %s: tombstones: bad magic, version or checksum", b->info.ulid);
    const uint8_t *q = t.len >= 9 ? t.p + 5 : NULL, *end = t.len >= 9 ? t.p + t.len - 4 : NULL;
    size_t cap = 0;
    while (!rc && q && q < end) {
        uint64_t id;
        int64_t mint, maxt;
        if (varint_get_u64(&q, end, &id) || varint_get_i64(&q, end, &mint) ||
            varint_get_i64(&q, end, &maxt) || id > UINT32_MAX) {
            rc = strata_errf(err, STRATA_ECORRUPT, "block %s: tombstones: malformed entry",
                             b->info.ulid);
            break;
        }
        if (b->n_tombs == cap) {
            cap = cap ? cap * 2 : 16;
            block_tombstone *v = realloc(b->tombs, cap * sizeof *v);
            if (!v) {
                rc = STRATA_ENOMEM;
                break;
            }
            b->tombs = v;
        }
        b->tombs[b->n_tombs++] = (block_tombstone){(uint32_t)id, mint, maxt};
    }
    b->info.bytes += t.len;
    unmap(&t);
    if (!rc && b->n_tombs > 1) qsort(b->tombs, b->n_tombs, sizeof *b->tombs, cmp_tomb);
    return rc;
}

const block_tombstone *block_tombstones(const block *b, uint32_t id, size_t *n)
{
    size_t lo = 0, hi = b->n_tombs;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (b->tombs[m].id < id)
            lo = m + 1;
        else
            hi = m;
    }
    size_t e = lo;
    while (e < b->n_tombs && b->tombs[e].id == id)
        e++;
    *n = e - lo;
    return e > lo ? &b->tombs[lo] : NULL;
}

size_t block_tombstone_count(const block *b)
{
    return b->n_tombs;
}

bool block_tombstoned(const block_tombstone *t, size_t n, int64_t ts)
{
    for (size_t i = 0; i < n; i++)
        if (ts >= t[i].mint && ts <= t[i].maxt) return true;
    return false;
}

int block_add_tombstones(block *b, const block_tombstone *add, size_t n, char *err)
{
    size_t total = b->n_tombs + n;
    block_tombstone *v = malloc((total ? total : 1) * sizeof *v);
    if (!v) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    if (b->n_tombs) memcpy(v, b->tombs, b->n_tombs * sizeof *v);
    if (n) memcpy(v + b->n_tombs, add, n * sizeof *v);
    qsort(v, total, sizeof *v, cmp_tomb);
    uint8_t *file = malloc(9 + total * (5 + 2 * VARINT_MAX_LEN));
    if (!file) {
        free(v);
        return strata_errf(err, STRATA_ENOMEM, "out of memory");
    }
    be32_put(file, BLOCK_TOMBSTONES_MAGIC);
    file[4] = 1;
    size_t len = 5;
    for (size_t i = 0; i < total; i++) {
        len += varint_put_u64(file + len, v[i].id);
        len += varint_put_i64(file + len, v[i].mint);
        len += varint_put_i64(file + len, v[i].maxt);
    }
    be32_put(file + len, crc32c(0, file + 5, len - 5));
    len += 4;
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof tmp, "%s/tombstones.tmp", b->dir);
    snprintf(path, sizeof path, "%s/tombstones", b->dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? STRATA_EIO : 0;
    if (!rc && (write(fd, file, len) != (ssize_t)len || fsync(fd))) rc = STRATA_EIO;
    if (fd >= 0 && close(fd)) rc = STRATA_EIO;
    if (!rc && rename(tmp, path)) rc = STRATA_EIO;
    if (!rc) rc = storage_fsync_dir(b->dir);
    free(file);
    if (rc) {
        unlink(tmp);
        free(v);
        return strata_errf(err, rc, "block %s: cannot write tombstones: %s", b->info.ulid,
                           strerror(errno));
    }
    free(b->tombs);
    b->tombs = v;
    b->n_tombs = total;
    return 0;
}

int block_open(const char *dir, sym_table *syms, block **out, char *err)
{
    *out = NULL;
    block *b = calloc(1, sizeof *b);
    if (!b || !(b->dir = strdup(dir))) {
        free(b);
        return strata_errf(err, STRATA_ENOMEM, "out of memory");
    }
    char path[4200];
    int rc = read_meta(b, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/index", dir);
        rc = map_file(path, &b->index, err);
        b->info.bytes += b->index.len;
    }
    if (!rc) rc = read_index_tables(b, syms, err);
    if (!rc) rc = map_segments(b, err);
    if (!rc) rc = read_tombstones(b, err);
    if (rc == STRATA_ENOMEM) strata_errf(err, rc, "out of memory opening block %s", dir);
    if (rc) {
        block_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

/* ---- postings ---------------------------------------------------------------------------------
 */

static int postings_read(block *b, uint64_t off, roaring_bitmap_t *into, char *err)
{
    const uint8_t *p;
    uint32_t len;
    int rc = section_at(b, off, "postings list", &p, &len, err);
    if (rc) return rc;
    if (len < 4 || be32_get(p) != (len - 4) / 4 || (len - 4) % 4)
        return CORRUPT(err, b, "postings list length does not match its count", off);
    uint32_t n = be32_get(p);
    uint32_t stack[256];
    for (uint32_t i = 0; i < n;) {
        uint32_t k = 0;
        for (; k < 256 && i < n; k++, i++)
            stack[k] = be32_get(p + 4 + 4 * (size_t)i);
        roaring_bitmap_add_many(into, k, stack);
    }
    return 0;
}

/* The range [*lo, *hi) of postings table entries with this label name. */
static void name_range(const block *b, const char *name, uint32_t nlen, size_t *lo, size_t *hi)
{
    size_t l = 0, h = b->n_pt;
    while (l < h) {
        size_t m = l + (h - l) / 2;
        if (label_str_compare(b->pt[m].name->str, b->pt[m].name->len, name, nlen) < 0)
            l = m + 1;
        else
            h = m;
    }
    size_t e = l;
    while (e < b->n_pt && b->pt[e].name->len == nlen && memcmp(b->pt[e].name->str, name, nlen) == 0)
        e++;
    *lo = l;
    *hi = e;
}

int block_select(block *b, const matcher *const *ms, size_t n, roaring_bitmap_t **out, char *err)
{
    *out = NULL;
    roaring_bitmap_t *all = roaring_bitmap_create();
    if (!all) return STRATA_ENOMEM;
    int rc = 0;
    if (b->n_pt && b->pt[0].name->len == 0) rc = postings_read(b, b->pt[0].off, all, err);
    for (size_t i = 0; i < n && !rc; i++) {
        const matcher *m = ms[i];
        size_t lo, hi;
        name_range(b, m->name, m->name_len, &lo, &hi);
        roaring_bitmap_t *hit = roaring_bitmap_create();
        if (!hit) {
            rc = STRATA_ENOMEM;
            break;
        }
        /* A matcher that matches the empty string also selects series without the label: take
         * everything but the values it rejects. */
        bool invert = m->matches_empty;
        for (size_t k = lo; k < hi && !rc; k++) {
            bool match = matcher_matches(m, b->pt[k].value->str, b->pt[k].value->len);
            if (match != invert) rc = postings_read(b, b->pt[k].off, hit, err);
        }
        if (!rc) {
            if (invert)
                roaring_bitmap_andnot_inplace(all, hit);
            else
                roaring_bitmap_and_inplace(all, hit);
        }
        roaring_bitmap_free(hit);
    }
    if (rc) {
        roaring_bitmap_free(all);
        return rc;
    }
    *out = all;
    return 0;
}

int block_label_names(block *b, const sym ***out, size_t *n)
{
    const sym **v = malloc((b->n_pt ? b->n_pt : 1) * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < b->n_pt; i++) {
        if (!b->pt[i].name->len) continue;
        if (k && v[k - 1] == b->pt[i].name) continue;
        v[k++] = b->pt[i].name;
    }
    *out = v;
    *n = k;
    return 0;
}

int block_label_values(block *b, const char *name, const sym ***out, size_t *n)
{
    size_t lo, hi;
    name_range(b, name, (uint32_t)strlen(name), &lo, &hi);
    const sym **v = malloc((hi - lo ? hi - lo : 1) * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    for (size_t i = lo; i < hi; i++)
        v[i - lo] = b->pt[i].value;
    *out = v;
    *n = hi - lo;
    return 0;
}

/* ---- series and chunks ------------------------------------------------------------------------
 */

int block_series(block *b, uint32_t id, label **labels, uint32_t *n_labels,
                 block_chunk_meta **chunks, size_t *n_chunks, char *err)
{
    *labels = NULL;
    *chunks = NULL;
    uint64_t off = (uint64_t)id * 16;
    if (off < b->series_start || off >= b->series_end)
        return CORRUPT(err, b, "series id out of range", off);
    const uint8_t *q = b->index.p + off, *end = b->index.p + b->series_end;
    uint64_t len;
    if (varint_get_u64(&q, end, &len) || (uint64_t)(end - q) < 4 || len > (uint64_t)(end - q) - 4)
        return CORRUPT(err, b, "series entry runs past its section", off);
    const uint8_t *body = q, *bend = q + len;
    if (crc32c(0, body, len) != be32_get(bend))
        return CORRUPT(err, b, "series checksum mismatch", off);
    uint64_t nl, nc;
    if (varint_get_u64(&q, bend, &nl) || nl > len)
        return CORRUPT(err, b, "malformed series entry", off);
    label *ls = malloc((nl ? nl : 1) * sizeof *ls);
    if (!ls) return STRATA_ENOMEM;
    for (uint64_t i = 0; i < nl; i++) {
        uint64_t a, v;
        if (varint_get_u64(&q, bend, &a) || varint_get_u64(&q, bend, &v) || a >= b->n_syms ||
            v >= b->n_syms) {
            free(ls);
            return CORRUPT(err, b, "series label refers past the symbol table", off);
        }
        ls[i] = (label){.name = b->syms[a]->str,
                        .value = b->syms[v]->str,
                        .name_len = b->syms[a]->len,
                        .value_len = b->syms[v]->len};
    }
    if (varint_get_u64(&q, bend, &nc) || nc > len) {
        free(ls);
        return CORRUPT(err, b, "malformed series chunk count", off);
    }
    block_chunk_meta *cs = malloc((nc ? nc : 1) * sizeof *cs);
    if (!cs) {
        free(ls);
        return STRATA_ENOMEM;
    }
    int64_t prev_maxt = 0;
    uint64_t prev_ref = 0;
    for (uint64_t i = 0; i < nc; i++) {
        int64_t mint = 0, dref = 0;
        uint64_t dmint = 0, span = 0, ref = 0;
        int bad;
        if (i == 0) {
            bad = varint_get_i64(&q, bend, &mint) || varint_get_u64(&q, bend, &span) ||
                  varint_get_u64(&q, bend, &ref);
        } else {
            bad = varint_get_u64(&q, bend, &dmint) || varint_get_u64(&q, bend, &span) ||
                  varint_get_i64(&q, bend, &dref);
            /* Wrapping arithmetic: damaged deltas must not be undefined behaviour. */
            mint = (int64_t)((uint64_t)prev_maxt + dmint);
            ref = prev_ref + (uint64_t)dref;
        }
        if (bad) {
            free(ls);
            free(cs);
            return CORRUPT(err, b, "malformed chunk meta", off);
        }
        cs[i] =
            (block_chunk_meta){.mint = mint, .maxt = (int64_t)((uint64_t)mint + span), .ref = ref};
        prev_maxt = cs[i].maxt;
        prev_ref = ref;
    }
    *labels = ls;
    *n_labels = (uint32_t)nl;
    *chunks = cs;
    *n_chunks = nc;
    return 0;
}

int block_chunk(block *b, uint64_t ref, uint8_t *encoding, const uint8_t **data, uint32_t *len,
                char *err)
{
    uint64_t seg = ref >> 32, off = ref & 0xffffffffu;
    bool cold = seg < b->n_segs && b->cold[seg].raw_len;
    if (seg >= b->n_segs || off < 8 || off >= (cold ? b->cold[seg].raw_len : b->segs[seg].len))
        return strata_errf(err, STRATA_ECORRUPT,
                           "block %s: chunk ref %llu points past the chunk files", b->info.ulid,
                           (unsigned long long)ref);
    const uint8_t *q = b->segs[seg].p + off, *end = b->segs[seg].p + b->segs[seg].len;
    if (cold) {
        const uint8_t *base = NULL;
        uint64_t base_off = 0;
        int rc = cold_region(b, seg, off, &base, &base_off, &end, err);
        if (rc) return rc;
        q = base + (off - base_off);
    }
    uint64_t l;
    if (varint_get_u64(&q, end, &l) || (uint64_t)(end - q) < 5 || l > (uint64_t)(end - q) - 5)
        return strata_errf(err, STRATA_ECORRUPT,
                           "block %s: chunks/%06llu offset %llu: chunk runs past the file",
                           b->info.ulid, (unsigned long long)seg + 1, (unsigned long long)off);
    if (crc32c(0, q, l + 1) != be32_get(q + l + 1))
        return strata_errf(err, STRATA_ECORRUPT,
                           "block %s: chunks/%06llu offset %llu: chunk checksum mismatch",
                           b->info.ulid, (unsigned long long)seg + 1, (unsigned long long)off);
    *encoding = q[0];
    *data = q + 1;
    *len = (uint32_t)l;
    return 0;
}

int block_verify(block *b, char *err)
{
    roaring_bitmap_t *all;
    int rc = block_select(b, NULL, 0, &all, err);
    if (rc) return rc;
    roaring_uint32_iterator_t *it = roaring_create_iterator(all);
    uint64_t series = 0, chunks = 0;
    for (; !rc && it && it->has_value; roaring_advance_uint32_iterator(it)) {
        label *ls;
        uint32_t nl;
        block_chunk_meta *cs;
        size_t nc;
        rc = block_series(b, it->current_value, &ls, &nl, &cs, &nc, err);
        for (size_t i = 0; !rc && i < nc; i++) {
            uint8_t enc;
            const uint8_t *d;
            uint32_t l;
            rc = block_chunk(b, cs[i].ref, &enc, &d, &l, err);
            if (!rc && !chunk_codec_get((chunk_encoding)enc))
                rc = strata_errf(err, STRATA_EUNSUPPORTED, "block %s: chunk encoding %u unknown",
                                 b->info.ulid, enc);
        }
        free(ls);
        free(cs);
        series++;
        chunks += nc;
    }
    roaring_free_uint32_iterator(it);
    roaring_bitmap_free(all);
    if (!rc && b->info.num_series && series != b->info.num_series)
        rc = strata_errf(err, STRATA_ECORRUPT,
                         "block %s: %llu series in the index, meta.json says %llu", b->info.ulid,
                         (unsigned long long)series, (unsigned long long)b->info.num_series);
    (void)chunks;
    return rc;
}
