/*
 * block_write.c: writes a block directory (meta.json, index v2, chunk segments, tombstones) from
 * series sorted by labels, with the crash-safe <ulid>.tmp -> fsync -> rename -> fsync protocol.
 *
 * The index is assembled in memory (a block is cut from the head, whose size bounds it) and
 * written in one pass: header, symbol table, series (16-byte aligned: a series' id is its offset
 * / 16), postings lists (4-byte aligned; the all-series list under the empty name and value
 * first, then every label pair in name, value order), the postings offset table and the TOC.
 * Every section ends in a big-endian CRC32C of its body, as Prometheus' reader checks.
 */
#include "storage/block.h"
#include "encoding/encoding.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

void storage_crash_point(const char *point)
{
    const char *want = getenv("STRATA_CRASH_POINT");
    if (want && strcmp(want, point) == 0) {
        strata_log(LOG_WARN, "STRATA_CRASH_POINT=%s: killing the process", point);
        raise(SIGKILL);
    }
}

int storage_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return STRATA_EIO;
    int rc = fsync(fd) ? STRATA_EIO : 0;
    close(fd);
    return rc;
}

int block_ulid_new(int64_t ms, char out[BLOCK_ULID_LEN + 1])
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint8_t b[16];
    uint64_t t = (uint64_t)ms;
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(t >> (40 - 8 * i));
    if (getrandom(b + 6, 10, 0) != 10) return STRATA_EIO;
    /* 128 bits as 26 base32 digits, most significant first (the first digit holds 3 bits). */
    for (int i = 0; i < BLOCK_ULID_LEN; i++) {
        int bit =
            128 - 5 * (BLOCK_ULID_LEN - i); /* position of this digit's lowest bit from the top */
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int pos = bit + k; /* bit index from the most significant end; negative = padding */
            v <<= 1;
            if (pos >= 0) v |= (b[pos / 8] >> (7 - pos % 8)) & 1u;
        }
        out[i] = alphabet[v];
    }
    out[BLOCK_ULID_LEN] = 0;
    return 0;
}

/* ---- in-memory encoders -----------------------------------------------------------------------
 */

static int put_be32(buf *b, uint32_t v)
{
    uint8_t x[4];
    be32_put(x, v);
    return buf_append(b, x, 4);
}

static int put_be64(buf *b, uint64_t v)
{
    uint8_t x[8];
    be64_put(x, v);
    return buf_append(b, x, 8);
}

static int put_uvar(buf *b, uint64_t v)
{
    uint8_t x[VARINT_MAX_LEN];
    return buf_append(b, x, varint_put_u64(x, v));
}

static int put_var(buf *b, int64_t v)
{
    uint8_t x[VARINT_MAX_LEN];
    return buf_append(b, x, varint_put_i64(x, v));
}

static int pad_to(buf *b, size_t align)
{
    static const uint8_t zeros[16];
    size_t r = b->len % align;
    return r ? buf_append(b, zeros, align - r) : 0;
}

/* Appends the CRC32C of b->data[from..len) big-endian. */
static int put_crc(buf *b, size_t from)
{
    return put_be32(b, crc32c(0, b->data + from, b->len - from));
}

/* ---- symbols ----------------------------------------------------------------------------------
 */

typedef struct strref {
    const char *s;
    uint32_t len;
} strref;

static int cmp_strref(const void *a, const void *b)
{
    const strref *x = a, *y = b;
    return label_str_compare(x->s, x->len, y->s, y->len);
}

/* Index of s in the sorted, distinct table (it is there by construction). */
static uint32_t sym_index(const strref *tab, size_t n, const char *s, uint32_t len)
{
    size_t lo = 0, hi = n;
    strref key = {s, len};
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_strref(&tab[mid], &key);
        if (c == 0) return (uint32_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return UINT32_MAX;
}

/* One (name, value, series) triple per label of every series: sorted, they are the postings. */
typedef struct posting_triple {
    uint32_t name, value, series;
} posting_triple;

static int cmp_triple(const void *a, const void *b)
{
    const posting_triple *x = a, *y = b;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

/* ---- files ------------------------------------------------------------------------------------
 */

static int write_file(const char *path, const uint8_t *data, size_t len, char *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return strata_errf(err, STRATA_EIO, "cannot create %s: %s", path, strerror(errno));
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return strata_errf(err, STRATA_EIO, "cannot write %s: %s", path, strerror(e));
        }
        off += (size_t)w;
    }
    if (fsync(fd)) {
        int e = errno;
        close(fd);
        return strata_errf(err, STRATA_EIO, "cannot fsync %s: %s", path, strerror(e));
    }
    if (close(fd))
        return strata_errf(err, STRATA_EIO, "cannot close %s: %s", path, strerror(errno));
    return 0;
}

static void remove_tree(const char *dir)
{
    char cmd[4300];
    /* Only ever our own <ulid>.tmp directory, whose name we built: no shell metacharacters. */
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    if (system(cmd)) {
    }
}

/* ---- the writer -------------------------------------------------------------------------------
 */

typedef struct writer_state {
    buf index;
    buf *segs;
    size_t n_segs;
    strref *syms;
    size_t n_syms;
    posting_triple *triples;
    size_t n_triples;
    uint32_t *series_ids;
    uint64_t samples, chunks;
} writer_state;

static void writer_state_free(writer_state *w)
{
    buf_free(&w->index);
    for (size_t i = 0; i < w->n_segs; i++)
        buf_free(&w->segs[i]);
    free(w->segs);
    free(w->syms);
    free(w->triples);
    free(w->series_ids);
}

static int new_segment(writer_state *w)
{
    buf *v = realloc(w->segs, (w->n_segs + 1) * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    w->segs = v;
    buf *s = &w->segs[w->n_segs++];
    memset(s, 0, sizeof *s);
    if (put_be32(s, BLOCK_CHUNKS_MAGIC)) return STRATA_ENOMEM;
    static const uint8_t version_and_padding[4] = {1, 0, 0, 0};
    return buf_append(s, version_and_padding, 4);
}

/* Appends one chunk record to the current segment; *ref receives its reference. */
static int append_chunk(writer_state *w, const block_chunk_in *c, uint64_t *ref)
{
    size_t need = VARINT_MAX_LEN + 1 + c->len + 4;
    if (!w->n_segs || w->segs[w->n_segs - 1].len + need > BLOCK_SEGMENT_MAX) {
        int rc = new_segment(w);
        if (rc) return rc;
    }
    buf *s = &w->segs[w->n_segs - 1];
    *ref = (uint64_t)(w->n_segs - 1) << 32 | (uint64_t)s->len;
    if (put_uvar(s, c->len)) return STRATA_ENOMEM;
    size_t body = s->len;
    if (buf_append(s, &c->encoding, 1) || buf_append(s, c->data, c->len)) return STRATA_ENOMEM;
    return put_crc(s, body);
}

static int build_symbols(writer_state *w, const block_series_in *series, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 2 * (size_t)series[i].n_labels;
    w->syms = malloc((total ? total : 1) * sizeof *w->syms);
    if (!w->syms) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < series[i].n_labels; j++) {
            const label *l = &series[i].labels[j];
            w->syms[k++] = (strref){l->name, l->name_len};
            w->syms[k++] = (strref){l->value, l->value_len};
        }
    if (k > 1) qsort(w->syms, k, sizeof *w->syms, cmp_strref);
    size_t d = 0;
    for (size_t i = 0; i < k; i++)
        if (!d || cmp_strref(&w->syms[d - 1], &w->syms[i]) != 0) w->syms[d++] = w->syms[i];
    w->n_syms = d;
    w->n_triples = total / 2;
    return 0;
}

static int write_index(writer_state *w, const block_series_in *series, size_t n,
                       uint64_t *const *chunk_refs, char *err)
{
    buf *b = &w->index;
    uint64_t toc[6] = {0};
    if (put_be32(b, BLOCK_INDEX_MAGIC)) return STRATA_ENOMEM;
    uint8_t version = BLOCK_INDEX_V2;
    if (buf_append(b, &version, 1)) return STRATA_ENOMEM;

    /* Symbol table: len | count | (uvarint len, bytes)* | crc. */
    toc[0] = b->len;
    size_t len_at = b->len;
    if (put_be32(b, 0) || put_be32(b, (uint32_t)w->n_syms)) return STRATA_ENOMEM;
    for (size_t i = 0; i < w->n_syms; i++)
        if (put_uvar(b, w->syms[i].len) || buf_append(b, w->syms[i].s, w->syms[i].len))
            return STRATA_ENOMEM;
    if (b->len - len_at - 4 > UINT32_MAX)
        return strata_errf(err, STRATA_ELIMIT, "block symbol table over 4 GiB");
    be32_put(b->data + len_at, (uint32_t)(b->len - len_at - 4));
    if (put_crc(b, len_at + 4)) return STRATA_ENOMEM;

    /* Series, each 16-byte aligned: uvarint len | labels | chunks | crc. */
    toc[1] = b->len;
    w->triples = malloc((w->n_triples ? w->n_triples : 1) * sizeof *w->triples);
    w->series_ids = malloc((n ? n : 1) * sizeof *w->series_ids);
    if (!w->triples || !w->series_ids) return STRATA_ENOMEM;
    size_t t = 0;
    buf body = {0};
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (pad_to(b, 16)) return STRATA_ENOMEM;
        if (b->len / 16 > UINT32_MAX) {
            rc = strata_errf(err, STRATA_ELIMIT, "block index series section over 64 GiB");
            break;
        }
        uint32_t id = (uint32_t)(b->len / 16);
        w->series_ids[i] = id;
        body.len = 0;
        rc = put_uvar(&body, series[i].n_labels);
        for (uint32_t j = 0; j < series[i].n_labels && !rc; j++) {
            const label *l = &series[i].labels[j];
            uint32_t ni = sym_index(w->syms, w->n_syms, l->name, l->name_len);
            uint32_t vi = sym_index(w->syms, w->n_syms, l->value, l->value_len);
            w->triples[t++] = (posting_triple){ni, vi, id};
            rc = put_uvar(&body, ni) || put_uvar(&body, vi) ? STRATA_ENOMEM : 0;
        }
        if (!rc) rc = put_uvar(&body, series[i].n_chunks);
        int64_t prev_maxt = 0;
        uint64_t prev_ref = 0;
        for (size_t c = 0; c < series[i].n_chunks && !rc; c++) {
            const block_chunk_in *ch = &series[i].chunks[c];
            uint64_t ref = chunk_refs[i][c];
            if (c == 0) {
                rc = put_var(&body, ch->mint) || put_uvar(&body, (uint64_t)(ch->maxt - ch->mint)) ||
                             put_uvar(&body, ref)
                         ? STRATA_ENOMEM
                         : 0;
            } else {
                rc = put_uvar(&body, (uint64_t)(ch->mint - prev_maxt)) ||
                             put_uvar(&body, (uint64_t)(ch->maxt - ch->mint)) ||
                             put_var(&body, (int64_t)(ref - prev_ref))
                         ? STRATA_ENOMEM
                         : 0;
            }
            prev_maxt = ch->maxt;
            prev_ref = ref;
        }
        if (!rc)
            rc = put_uvar(b, body.len) || buf_append(b, body.data, body.len) ? STRATA_ENOMEM : 0;
        if (!rc) rc = put_be32(b, crc32c(0, body.data, body.len));
    }
    buf_free(&body);
    if (rc) return rc;

    /* Postings: the all-series list first (empty name and value), then one list per label pair,
     * each 4-byte aligned: len | count | be32 ids | crc. Their offsets go to the offset table. */
    qsort(w->triples, w->n_triples, sizeof *w->triples, cmp_triple);
    toc[2] = b->len; /* label indices: not written (Prometheus no longer reads them) */
    toc[4] = b->len;
    if (pad_to(b, 4)) return STRATA_ENOMEM;
    buf table = {0};
    uint32_t entries = 0;
    size_t start = b->len;
    rc = put_be32(b, (uint32_t)(4 + 4 * n)) || put_be32(b, (uint32_t)n) ? STRATA_ENOMEM : 0;
    for (size_t i = 0; i < n && !rc; i++)
        rc = put_be32(b, w->series_ids[i]);
    if (!rc) rc = put_crc(b, start + 4);
    if (!rc) {
        static const uint8_t all_key[] = {2, 0, 0};
        rc = buf_append(&table, all_key, 3) || put_uvar(&table, start) ? STRATA_ENOMEM : 0;
        entries++;
    }
    for (size_t i = 0; i < w->n_triples && !rc;) {
        size_t j = i;
        while (j < w->n_triples && w->triples[j].name == w->triples[i].name &&
               w->triples[j].value == w->triples[i].value)
            j++;
        if ((rc = pad_to(b, 4))) break;
        start = b->len;
        rc = put_be32(b, (uint32_t)(4 + 4 * (j - i))) || put_be32(b, (uint32_t)(j - i))
                 ? STRATA_ENOMEM
                 : 0;
        for (size_t k = i; k < j && !rc; k++)
            rc = put_be32(b, w->triples[k].series);
        if (!rc) rc = put_crc(b, start + 4);
        const strref *nm = &w->syms[w->triples[i].name], *vl = &w->syms[w->triples[i].value];
        uint8_t two = 2;
        if (!rc)
            rc = buf_append(&table, &two, 1) || put_uvar(&table, nm->len) ||
                         buf_append(&table, nm->s, nm->len) || put_uvar(&table, vl->len) ||
                         buf_append(&table, vl->s, vl->len) || put_uvar(&table, start)
                     ? STRATA_ENOMEM
                     : 0;
        entries++;
        i = j;
    }
    /* Postings offset table: len | count | entries | crc. */
    toc[3] = b->len;
    toc[5] = b->len;
    start = b->len;
    if (!rc)
        rc = put_be32(b, (uint32_t)(4 + table.len)) || put_be32(b, entries) ||
                     buf_append(b, table.data, table.len)
                 ? STRATA_ENOMEM
                 : 0;
    buf_free(&table);
    if (!rc) rc = put_crc(b, start + 4);
    /* TOC: six big-endian offsets and their crc. */
    start = b->len;
    for (int i = 0; i < 6 && !rc; i++)
        rc = put_be64(b, toc[i]);
    if (!rc) rc = put_crc(b, start);
    return rc;
}

static int write_meta(const char *path, const char *ulid, const block_write_opts *o,
                      const writer_state *w, size_t n_series, char *err)
{
    buf b = {0};
    int rc =
        buf_printf(&b,
                   "{\n\t\"ulid\": \"%s\",\n\t\"minTime\": %lld,\n\t\"maxTime\": %lld,\n"
                   "\t\"stats\": {\n\t\t\"numSamples\": %llu,\n\t\t\"numSeries\": %zu,\n"
                   "\t\t\"numChunks\": %llu\n\t},\n\t\"compaction\": {\n\t\t\"level\": %u,\n"
                   "\t\t\"sources\": [",
                   ulid, (long long)o->mint, (long long)o->maxt, (unsigned long long)w->samples,
                   n_series, (unsigned long long)w->chunks, o->level ? o->level : 1);
    if (!o->n_sources) rc |= buf_printf(&b, "\n\t\t\t\"%s\"", ulid);
    for (size_t i = 0; i < o->n_sources; i++)
        rc |= buf_printf(&b, "%s\n\t\t\t\"%s\"", i ? "," : "", o->sources[i]);
    rc |= buf_printf(&b, "\n\t\t]");
    if (o->n_parents) {
        rc |= buf_printf(&b, ",\n\t\t\"parents\": [");
        for (size_t i = 0; i < o->n_parents; i++)
            rc |= buf_printf(&b, "%s\n\t\t\t{\"ulid\": \"%s\"}", i ? "," : "", o->parents[i]);
        rc |= buf_printf(&b, "\n\t\t]");
    }
    rc |= buf_printf(&b, "\n\t},\n\t\"version\": 1");
    if (o->wal_segment)
        rc |= buf_printf(&b,
                         ",\n\t\"strata\": {\n\t\t\"walSegment\": %u,\n\t\t\"flushBlocks\": %u,"
                         "\n\t\t\"cutTime\": %lld\n\t}",
                         o->wal_segment, o->flush_blocks, (long long)o->cut_time);
    rc |= buf_printf(&b, "\n}\n");
    if (rc) {
        buf_free(&b);
        return STRATA_ENOMEM;
    }
    rc = write_file(path, b.data, b.len, err);
    buf_free(&b);
    return rc;
}

int block_write(const char *parent_dir, const block_series_in *series, size_t n,
                const block_write_opts *o, char ulid[BLOCK_ULID_LEN + 1], char *err)
{
    for (size_t i = 1; i < n; i++)
        if (labels_compare(series[i - 1].labels, series[i - 1].n_labels, series[i].labels,
                           series[i].n_labels) >= 0)
            return strata_errf(err, STRATA_EINVAL,
                               "block writer: series %zu is not after series %zu in label order", i,
                               i - 1);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < series[i].n_chunks; c++) {
            const block_chunk_in *ch = &series[i].chunks[c];
            if (ch->maxt < ch->mint || (c && ch->mint <= series[i].chunks[c - 1].maxt))
                return strata_errf(err, STRATA_EINVAL,
                                   "block writer: chunks of series %zu overlap or run backwards",
                                   i);
        }
    int rc = block_ulid_new(clock_now_ms(), ulid);
    if (rc) return strata_errf(err, rc, "cannot read random bytes for a block ULID");

    writer_state w;
    memset(&w, 0, sizeof w);
    uint64_t **refs = calloc(n ? n : 1, sizeof *refs);
    if (!refs) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    rc = build_symbols(&w, series, n);
    for (size_t i = 0; i < n && !rc; i++) {
        refs[i] = malloc((series[i].n_chunks ? series[i].n_chunks : 1) * sizeof **refs);
        if (!refs[i]) rc = STRATA_ENOMEM;
        for (size_t c = 0; c < series[i].n_chunks && !rc; c++) {
            rc = append_chunk(&w, &series[i].chunks[c], &refs[i][c]);
            w.samples += series[i].chunks[c].samples;
            w.chunks++;
        }
    }
    if (!rc) rc = write_index(&w, series, n, refs, err);
    for (size_t i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
    if (rc) {
        writer_state_free(&w);
        return rc == STRATA_ENOMEM ? strata_errf(err, rc, "out of memory writing a block") : rc;
    }

    char tmp[4096], path[4200], final[4096];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", parent_dir, ulid);
    snprintf(final, sizeof final, "%s/%s", parent_dir, ulid);
    snprintf(path, sizeof path, "%s/chunks", tmp);
    if (mkdir(tmp, 0755) || mkdir(path, 0755)) {
        rc = strata_errf(err, STRATA_EIO, "cannot create %s: %s", path, strerror(errno));
        writer_state_free(&w);
        remove_tree(tmp);
        return rc;
    }
    for (size_t i = 0; i < w.n_segs && !rc; i++) {
        snprintf(path, sizeof path, "%s/chunks/%06zu", tmp, i + 1);
        rc = write_file(path, w.segs[i].data, w.segs[i].len, err);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/index", tmp);
        rc = write_file(path, w.index.data, w.index.len, err);
    }
    if (!rc) {
        uint8_t tomb[9];
        be32_put(tomb, BLOCK_TOMBSTONES_MAGIC);
        tomb[4] = 1;
        be32_put(tomb + 5, crc32c(0, NULL, 0));
        snprintf(path, sizeof path, "%s/tombstones", tmp);
        rc = write_file(path, tomb, sizeof tomb, err);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/meta.json", tmp);
        rc = write_meta(path, ulid, o, &w, n, err);
    }
    writer_state_free(&w);
    if (!rc) storage_crash_point("block-files-written");
    snprintf(path, sizeof path, "%s/chunks", tmp);
    if (!rc && (storage_fsync_dir(path) || storage_fsync_dir(tmp)))
        rc = strata_errf(err, STRATA_EIO, "cannot fsync %s: %s", tmp, strerror(errno));
    if (!rc) storage_crash_point("block-synced");
    if (!rc && rename(tmp, final))
        rc =
            strata_errf(err, STRATA_EIO, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    if (rc) {
        remove_tree(tmp);
        return rc;
    }
    storage_crash_point("block-renamed");
    if (storage_fsync_dir(parent_dir))
        return strata_errf(err, STRATA_EIO, "cannot fsync %s: %s", parent_dir, strerror(errno));
    return 0;
}
