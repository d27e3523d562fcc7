/*
 * tiers.c: the cold tier (blocks moved to --cold-dir once older than --cold-after, their float
 * chunks re-encoded as adaptive Strata chunks with the strongest codecs and their chunk segments
 * compressed with zstd in regions) and the warm tier's opt-in adaptive codec.
 *
 * Demoting one warm block W, step by step, and what a crash after each step leaves:
 *   1. Write the cold copy C (a new ULID, meta.json compaction.parents = [W]) with block_write
 *      under <cold>/.staging/, compress each of its chunk segments (segment.tmp, fsync, rename,
 *      fsync), fsync the directory. (Crash: the next open removes .staging; W serves.)
 *   2. Rename .staging/C to <cold>/C and fsync <cold>. (Crash: both on disk; the next open drops
 *      W as a compacted parent of C, exactly as after an interrupted compaction.)
 *   3. Exclusively (db_blocks.mu): put C in W's place in the list; then delete W (renamed to
 *      W.tmp, which an open removes). At no point do reads see both or neither.
 * Cold blocks are never compacted (db_compact plans over warm blocks only); retention and
 * deletions treat them like warm ones.
 */
#include "storage/block.h"
#include "storage/storage_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Raw bytes per zstd region: a chunk read decompresses at most this much (plus one chunk). */
#define COLD_REGION_BYTES (64u << 10)
/* Cold data is written once and read rarely: a strong level pays for itself. */
#define COLD_ZSTD_LEVEL 15

struct db_tiers {
    char *cold_dir; /* NULL: no cold tier */
    pthread_mutex_t stats_mu;
    stc_stats stats; /* every adaptive chunk written (warm opt-in and cold) */
    _Atomic uint64_t demotions, demotion_failures;
};

static void remove_tree(const char *dir)
{
    char cmd[8300];
    /* Only .staging and block directories under the cold directory, named by us. */
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    if (system(cmd)) {
    }
}

static bool is_ulid(const char *s, size_t len)
{
    if (len != BLOCK_ULID_LEN) return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", s[i])) return false;
    return true;
}

int db_tiers_open(strata_db *db, char *err)
{
    db_tiers *t = calloc(1, sizeof *t);
    if (!t) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    pthread_mutex_init(&t->stats_mu, NULL);
    db->blocks->tiers = t;
    const char *dir = db->opts.cold_dir;
    if (!dir || !*dir) return 0;
    if (!(t->cold_dir = strdup(dir))) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    if (mkdir(dir, 0755) && errno != EEXIST)
        return strata_errf(err, STRATA_EIO, "cannot create the cold directory %s: %s", dir,
                           strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return strata_errf(err, STRATA_EIO, "cannot list %s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        bool tmp = len == BLOCK_ULID_LEN + 4 && strcmp(e->d_name + BLOCK_ULID_LEN, ".tmp") == 0 &&
                   is_ulid(e->d_name, BLOCK_ULID_LEN);
        if (tmp || strcmp(e->d_name, ".staging") == 0) {
            /* A demotion or a deletion that did not finish: the warm copy still serves. */
            if (!db->opts.read_only) {
                strata_log(LOG_WARN, "removing unfinished cold block %s", path);
                remove_tree(path);
            }
            continue;
        }
        if (!is_ulid(e->d_name, len)) continue;
        block *b;
        rc = block_open(path, db->head.syms, &b, err);
        if (rc) break;
        block_mark_cold(b);
        if ((rc = db_blocks_add(db, b))) block_close(b);
    }
    closedir(d);
    if (!rc && !db->opts.read_only) storage_fsync_dir(dir);
    return rc;
}

void db_tiers_close(strata_db *db)
{
    db_tiers *t = db->blocks ? db->blocks->tiers : NULL;
    if (!t) return;
    pthread_mutex_destroy(&t->stats_mu);
    free(t->cold_dir);
    free(t);
    db->blocks->tiers = NULL;
}

/* ---- writing adaptive chunks ------------------------------------------------------------------
 */

static int encode_adaptive(db_tiers *t, chunk_encoding enc, const uint8_t *d, size_t len,
                           uint8_t **out, size_t *out_len, char *err)
{
    stc_stats st;
    memset(&st, 0, sizeof st);
    stc_options opts; /* zeroed: every codec, no decode budget: the smallest encoding wins */
    memset(&opts, 0, sizeof opts);
    int rc = stc_transcode(enc, d, len, &opts, &st, out, out_len, err);
    if (rc) return rc;
    pthread_mutex_lock(&t->stats_mu);
    stc_stats_add(&t->stats, &st);
    pthread_mutex_unlock(&t->stats_mu);
    return 0;
}

int db_tiers_warm_chunks(strata_db *db, block_chunk_in *chunks, size_t n, uint8_t ***owned,
                         size_t *n_owned, char *err)
{
    *owned = NULL;
    *n_owned = 0;
    if (!db->opts.warm_codec_adaptive) return 0;
    uint8_t **keep = calloc(n ? n : 1, sizeof *keep);
    if (!keep) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (chunks[i].encoding != CHUNK_ENC_XOR) continue; /* histograms stay as they are */
        size_t len;
        rc = encode_adaptive(db->blocks->tiers, CHUNK_ENC_XOR, chunks[i].data, chunks[i].len,
                             &keep[*n_owned], &len, err);
        if (rc) break;
        chunks[i].data = keep[(*n_owned)++];
        chunks[i].len = (uint32_t)len;
        chunks[i].encoding = CHUNK_ENC_STRATA;
    }
    *owned = keep;
    return rc;
}

void db_tiers_free_owned(uint8_t **owned, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
}

/* ---- the cold segment format ---------------------------------------------------------------- */

static int read_whole(const char *path, uint8_t **out, size_t *len, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        if (fd >= 0) close(fd);
        return strata_errf(err, STRATA_EIO, "cannot read %s: %s", path, strerror(errno));
    }
    uint8_t *p = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (p && got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!p) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    if (got != (size_t)st.st_size) {
        free(p);
        return strata_errf(err, STRATA_EIO, "short read of %s", path);
    }
    *out = p;
    *len = got;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Replaces the chunk segment at path by its cold form (segment.tmp, fsync, rename; the caller
 * fsyncs the directory). Regions end at chunk boundaries so that a chunk never spans two. */
static int compress_segment(const char *path, char *err)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    int rc = read_whole(path, &raw, &len, err);
    if (rc) return rc;
    if (len < 8 || len > UINT32_MAX || be32_get(raw) != BLOCK_CHUNKS_MAGIC) {
        free(raw);
        return strata_errf(err, STRATA_ECORRUPT, "%s is not a chunk segment", path);
    }
    /* Region boundaries: walk the chunks (uvarint length, encoding, data, CRC32C). */
    uint32_t *starts = NULL;
    size_t n = 0, cap = 0;
    size_t at = 8, region_start = 0;
    while (!rc) {
        bool last = at >= len;
        if (!last) {
            const uint8_t *q = raw + at;
            uint64_t l;
            if (varint_get_u64(&q, raw + len, &l) || l > len || (size_t)(q - raw) + l + 5 > len) {
                rc = strata_errf(err, STRATA_ECORRUPT, "%s: chunk at %zu runs past the file", path,
                                 at);
                break;
            }
            at = (size_t)(q - raw) + l + 5;
        }
        if (last || at - region_start >= COLD_REGION_BYTES) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                uint32_t *v = realloc(starts, cap * sizeof *v);
                if (!v) {
                    rc = STRATA_ENOMEM;
                    break;
                }
                starts = v;
            }
            if (at > region_start) starts[n++] = (uint32_t)region_start;
            region_start = at;
        }
        if (last) break;
    }
    size_t table_end = 16 + n * 16;
    uint8_t *hdr = rc ? NULL : calloc(1, table_end + 4);
    uint8_t **frames = rc ? NULL : calloc(n ? n : 1, sizeof *frames);
    size_t *frame_len = rc ? NULL : calloc(n ? n : 1, sizeof *frame_len);
    if (!rc && (!hdr || !frames || !frame_len)) rc = STRATA_ENOMEM;
    uint64_t file_at = table_end + 4;
    for (size_t r = 0; r < n && !rc; r++) {
        size_t end = r + 1 < n ? starts[r + 1] : len;
        rc = enc_zstd_compress(raw + starts[r], end - starts[r], COLD_ZSTD_LEVEL, &frames[r],
                               &frame_len[r], err);
        if (rc) break;
        uint8_t *e = hdr + 16 + r * 16;
        be32_put(e, starts[r]);
        be32_put(e + 4, (uint32_t)(end - starts[r]));
        be32_put(e + 8, (uint32_t)file_at);
        be32_put(e + 12, (uint32_t)frame_len[r]);
        file_at += frame_len[r];
        if (file_at > UINT32_MAX)
            rc = strata_errf(err, STRATA_ELIMIT, "%s: compressed segment over 4 GiB", path);
    }
    if (!rc) {
        be32_put(hdr, BLOCK_COLD_MAGIC);
        hdr[4] = 1;
        be32_put(hdr + 8, (uint32_t)len);
        be32_put(hdr + 12, (uint32_t)n);
        be32_put(hdr + table_end, crc32c(0, hdr, table_end));
        char tmp[8300];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        bool ok = fd >= 0 && !write_all(fd, hdr, table_end + 4);
        for (size_t r = 0; ok && r < n; r++)
            ok = !write_all(fd, frames[r], frame_len[r]);
        ok = ok && !fsync(fd);
        if (fd >= 0) close(fd);
        ok = ok && !rename(tmp, path);
        if (!ok) {
            rc = strata_errf(err, STRATA_EIO, "cannot write %s: %s", tmp, strerror(errno));
            unlink(tmp);
        }
    }
    for (size_t r = 0; frames && r < n; r++)
        free(frames[r]);
    free(frames);
    free(frame_len);
    free(hdr);
    free(starts);
    free(raw);
    if (rc == STRATA_ENOMEM) strata_errf(err, rc, "out of memory compressing %s", path);
    return rc;
}

/* ---- demotion ------------------------------------------------------------------------------- */

typedef struct cold_build {
    block_series_in *series;
    label **labels;
    size_t n, cap;
    block_chunk_in *chunks;
    size_t n_chunks, cap_chunks;
    size_t *first;
    uint8_t **owned;
    size_t n_owned, cap_owned;
    strata_sample *scratch;
    size_t cap_scratch;
} cold_build;

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *v = realloc(*p, nc * size);
    if (!v) return STRATA_ENOMEM;
    *p = v;
    *cap = nc;
    return 0;
}

static int keep_owned(cold_build *cb, uint8_t *p)
{
    if (grow((void **)&cb->owned, &cb->cap_owned, cb->n_owned + 1, sizeof *cb->owned)) {
        free(p);
        return STRATA_ENOMEM;
    }
    cb->owned[cb->n_owned++] = p;
    return 0;
}

/* One chunk of the warm block into the cold build: floats re-encoded adaptively (deleted samples
 * dropped), histogram chunks copied (a partly deleted one makes the block wait for compaction's
 * tombstone cleanup). */
static int add_chunk(db_tiers *t, cold_build *cb, block *b, uint32_t id, const block_chunk_meta *m,
                     char *err)
{
    uint8_t enc;
    const uint8_t *d;
    uint32_t len;
    int rc = block_chunk(b, m->ref, &enc, &d, &len, err);
    if (rc) return rc;
    size_t nt;
    const block_tombstone *tb = block_tombstones(b, id, &nt);
    bool whole = false, part = false;
    for (size_t j = 0; j < nt; j++) {
        if (tb[j].mint <= m->mint && tb[j].maxt >= m->maxt)
            whole = true;
        else if (tb[j].maxt >= m->mint && tb[j].mint <= m->maxt)
            part = true;
    }
    if (whole) return 0;
    const chunk_codec *codec = chunk_codec_get((chunk_encoding)enc);
    if (!codec)
        return strata_errf(err, STRATA_EUNSUPPORTED, "chunk encoding %u is unknown", (unsigned)enc);
    uint32_t count;
    if ((rc = codec->count(d, len, &count))) return rc;
    block_chunk_in in = {
        .mint = m->mint, .maxt = m->maxt, .encoding = enc, .data = d, .len = len, .samples = count};
    bool is_float = enc == CHUNK_ENC_XOR || enc == CHUNK_ENC_STRATA;
    if (part && !is_float)
        return strata_errf(err, STRATA_EUNSUPPORTED,
                           "a histogram chunk with deleted samples waits for tombstone cleanup");
    if (is_float && (part || enc == CHUNK_ENC_XOR)) {
        uint8_t *out;
        size_t out_len;
        if (part) {
            if (grow((void **)&cb->scratch, &cb->cap_scratch, count ? count : 1,
                     sizeof *cb->scratch))
                return STRATA_ENOMEM;
            size_t got, k = 0;
            if ((rc = codec->decode(d, len, cb->scratch, count, &got, err))) return rc;
            for (size_t i = 0; i < got; i++)
                if (!block_tombstoned(tb, nt, cb->scratch[i].t)) cb->scratch[k++] = cb->scratch[i];
            if (k == 0) return 0;
            stc_stats st;
            memset(&st, 0, sizeof st);
            rc = stc_encode(cb->scratch, k, NULL, &st, &out, &out_len, err);
            if (rc) return rc;
            pthread_mutex_lock(&t->stats_mu);
            stc_stats_add(&t->stats, &st);
            pthread_mutex_unlock(&t->stats_mu);
            in.mint = cb->scratch[0].t;
            in.maxt = cb->scratch[k - 1].t;
            in.samples = (uint32_t)k;
        } else if ((rc = encode_adaptive(t, (chunk_encoding)enc, d, len, &out, &out_len, err))) {
            return rc;
        }
        if ((rc = keep_owned(cb, out))) return rc;
        in.data = out;
        in.len = (uint32_t)out_len;
        in.encoding = CHUNK_ENC_STRATA;
    }
    if (grow((void **)&cb->chunks, &cb->cap_chunks, cb->n_chunks + 1, sizeof *cb->chunks))
        return STRATA_ENOMEM;
    cb->chunks[cb->n_chunks++] = in;
    return 0;
}

static void cold_build_free(cold_build *cb)
{
    for (size_t i = 0; i < cb->n; i++)
        free(cb->labels[i]);
    free(cb->labels);
    free(cb->series);
    free(cb->first);
    free(cb->chunks);
    db_tiers_free_owned(cb->owned, cb->n_owned);
    free(cb->scratch);
}

/* Writes the cold copy of b under staging; ulid receives its name. */
static int write_cold_copy(strata_db *db, block *b, const char *staging, char *ulid, char *err)
{
    db_tiers *t = db->blocks->tiers;
    cold_build cb;
    memset(&cb, 0, sizeof cb);
    roaring_bitmap_t *ids;
    int rc = block_select(b, NULL, 0, &ids, err);
    if (rc) return rc;
    roaring_uint32_iterator_t *it = roaring_create_iterator(ids);
    if (!it) rc = STRATA_ENOMEM;
    size_t cap_first = 0;
    for (; !rc && it->has_value; roaring_advance_uint32_iterator(it)) {
        uint32_t id = it->current_value;
        label *ls;
        uint32_t nl;
        block_chunk_meta *cm;
        size_t nc;
        if ((rc = block_series(b, id, &ls, &nl, &cm, &nc, err))) break;
        size_t first = cb.n_chunks;
        for (size_t c = 0; c < nc && !rc; c++)
            rc = add_chunk(t, &cb, b, id, &cm[c], err);
        free(cm);
        if (!rc && cb.n_chunks == first) { /* every sample deleted */
            free(ls);
            continue;
        }
        if (!rc && (grow((void **)&cb.series, &cb.cap, cb.n + 1, sizeof *cb.series) ||
                    grow((void **)&cb.first, &cap_first, cb.n + 1, sizeof *cb.first)))
            rc = STRATA_ENOMEM;
        if (!rc) {
            label **lv = realloc(cb.labels, (cb.n + 1) * sizeof *lv);
            if (!lv) rc = STRATA_ENOMEM;
            if (lv) cb.labels = lv;
        }
        if (rc) {
            free(ls);
            break;
        }
        cb.labels[cb.n] = ls;
        cb.series[cb.n] = (block_series_in){ls, nl, NULL, cb.n_chunks - first};
        cb.first[cb.n++] = first;
    }
    if (it) roaring_free_uint32_iterator(it);
    roaring_bitmap_free(ids);
    if (!rc && cb.n == 0) rc = 1; /* nothing left to keep */
    if (!rc) {
        for (size_t i = 0; i < cb.n; i++)
            cb.series[i].chunks = cb.chunks + cb.first[i];
        const block_info *bi = block_get_info(b);
        char parent[1][BLOCK_ULID_LEN + 1];
        memcpy(parent[0], bi->ulid, BLOCK_ULID_LEN + 1);
        block_write_opts wo = {.mint = bi->mint,
                               .maxt = bi->maxt,
                               .level = bi->level,
                               .parents = (const char(*)[BLOCK_ULID_LEN + 1]) parent,
                               .n_parents = 1,
                               .sources = (const char(*)[BLOCK_ULID_LEN + 1]) parent,
                               .n_sources = 1,
                               .wal_segment = bi->wal_segment,
                               .flush_blocks = bi->flush_blocks,
                               .cut_time = bi->cut_time};
        rc = block_write(staging, cb.series, cb.n, &wo, ulid, err);
    }
    cold_build_free(&cb);
    if (rc == STRATA_ENOMEM) strata_errf(err, rc, "out of memory building a cold block");
    return rc;
}

static int compress_block_segments(const char *dir, char *err)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/chunks", dir);
    DIR *d = opendir(path);
    if (!d) return strata_errf(err, STRATA_EIO, "cannot list %s: %s", path, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (strlen(e->d_name) != 6 || strspn(e->d_name, "0123456789") != 6) continue;
        char seg[4700];
        snprintf(seg, sizeof seg, "%s/%s", path, e->d_name);
        rc = compress_segment(seg, err);
    }
    closedir(d);
    if (!rc)
        rc = storage_fsync_dir(path) ? strata_errf(err, STRATA_EIO, "cannot fsync %s", path) : 0;
    return rc;
}

/* Moves one warm block to the cold directory (the protocol at the top of this file). */
static int demote(strata_db *db, block *b, char *err)
{
    db_blocks *bs = db->blocks;
    const char *cold = bs->tiers->cold_dir;
    char staging[4200], ulid[BLOCK_ULID_LEN + 1] = "", from[4300], to[4300];
    snprintf(staging, sizeof staging, "%s/.staging", cold);
    if (mkdir(staging, 0755) && errno != EEXIST)
        return strata_errf(err, STRATA_EIO, "cannot create %s: %s", staging, strerror(errno));
    int rc = write_cold_copy(db, b, staging, ulid, err);
    if (rc == 1) { /* every sample deleted: the block just goes */
        db_blocks_lock_exclusive(bs);
        size_t k = 0;
        for (size_t i = 0; i < bs->n; i++)
            if (bs->v[i] != b) bs->v[k++] = bs->v[i];
        bs->n = k;
        pthread_rwlock_unlock(&bs->mu);
        db_blocks_delete(db, b);
        return 0;
    }
    snprintf(from, sizeof from, "%s/%s", staging, ulid);
    if (!rc) rc = compress_block_segments(from, err);
    storage_crash_point("demote-staged");
    snprintf(to, sizeof to, "%s/%s", cold, ulid);
    if (!rc && rename(from, to))
        rc = strata_errf(err, STRATA_EIO, "cannot move %s to %s: %s", from, to, strerror(errno));
    if (rc) {
        if (*ulid) remove_tree(from);
        return rc;
    }
    storage_fsync_dir(cold);
    storage_fsync_dir(staging);
    storage_crash_point("demote-renamed");
    block *nb;
    if ((rc = block_open(to, db->head.syms, &nb, err))) {
        /* Not served: remove it, or the next round would write a second copy of the warm block. */
        char gone[4400];
        snprintf(gone, sizeof gone, "%s.tmp", to);
        if (rename(to, gone) == 0) {
            storage_fsync_dir(cold);
            remove_tree(gone);
        }
        return rc;
    }
    block_mark_cold(nb);
    db_blocks_lock_exclusive(bs);
    for (size_t i = 0; i < bs->n; i++)
        if (bs->v[i] == b) bs->v[i] = nb;
    pthread_rwlock_unlock(&bs->mu);
    strata_log(LOG_INFO, "demoted block %s to the cold tier as %s (%llu -> %llu bytes)",
               block_get_info(b)->ulid, ulid, (unsigned long long)block_get_info(b)->bytes,
               (unsigned long long)block_get_info(nb)->bytes);
    storage_crash_point("demote-published");
    db_blocks_delete(db, b);
    return 0;
}

int db_tiers_demote(strata_db *db, char *err)
{
    db_blocks *bs = db->blocks;
    db_tiers *t = bs->tiers;
    if (!t || !t->cold_dir || db->opts.read_only) return 0;
    int64_t after = db->opts.cold_after_ms;
    pthread_rwlock_rdlock(&bs->mu);
    int64_t newest = atomic_load(&db->head.max_t);
    for (size_t i = 0; i < bs->n; i++)
        if (block_get_info(bs->v[i])->maxt - 1 > newest)
            newest = block_get_info(bs->v[i])->maxt - 1;
    block **due = malloc((bs->n ? bs->n : 1) * sizeof *due);
    size_t n = 0;
    for (size_t i = 0; due && i < bs->n; i++) {
        const block_info *bi = block_get_info(bs->v[i]);
        /* All of the block older than the newest sample minus --cold-after. */
        if (!bi->cold && bi->maxt <= newest - after + 1) due[n++] = bs->v[i];
    }
    pthread_rwlock_unlock(&bs->mu);
    if (!due) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    int rc = 0, done = 0;
    /* The caller holds flush_mu: no one else removes blocks meanwhile. */
    for (size_t i = 0; i < n && !rc; i++) {
        rc = demote(db, due[i], err);
        if (rc) {
            atomic_fetch_add(&t->demotion_failures, 1);
            strata_log(LOG_ERROR, "cold tier: demotion failed: %s", err);
        } else {
            atomic_fetch_add(&t->demotions, 1);
            done++;
        }
    }
    free(due);
    return rc ? rc : done;
}

void db_tiers_after_flush(strata_db *db)
{
    db_blocks *bs = db->blocks;
    if (!bs->tiers || !bs->tiers->cold_dir || db->opts.read_only) return;
    char err[STRATA_ERRMSG_SIZE] = "";
    pthread_mutex_lock(&bs->flush_mu);
    db_compact(db, err); /* both log their own failures */
    db_tiers_demote(db, err);
    pthread_mutex_unlock(&bs->flush_mu);
}

/* ---- statistics ------------------------------------------------------------------------------ */

void db_tiers_stats(strata_db *db, db_tier_stats *warm, db_tier_stats *cold)
{
    memset(warm, 0, sizeof *warm);
    memset(cold, 0, sizeof *cold);
    db_blocks *bs = db->blocks;
    if (!bs) return;
    pthread_rwlock_rdlock(&bs->mu);
    for (size_t i = 0; i < bs->n; i++) {
        const block_info *bi = block_get_info(bs->v[i]);
        db_tier_stats *s = bi->cold ? cold : warm;
        s->blocks++;
        s->bytes += bi->bytes;
        s->samples += bi->num_samples;
        s->series += bi->num_series;
        s->chunks += bi->num_chunks;
    }
    pthread_rwlock_unlock(&bs->mu);
    db_tiers *t = bs->tiers;
    if (!t) return;
    cold->demotions = atomic_load(&t->demotions);
    cold->demotion_failures = atomic_load(&t->demotion_failures);
}

void db_codec_stats(strata_db *db, stc_stats *out)
{
    memset(out, 0, sizeof *out);
    db_tiers *t = db->blocks ? db->blocks->tiers : NULL;
    if (!t) return;
    pthread_mutex_lock(&t->stats_mu);
    *out = t->stats;
    pthread_mutex_unlock(&t->stats_mu);
}
