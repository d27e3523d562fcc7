/*
 * compact.c: merging blocks. Two plans, checked in this order after every flush:
 *
 *   - overlap: blocks whose time ranges overlap (a late backfill, blocks from promtool next to
 *     ours) are merged into one, samples deduplicated by timestamp;
 *   - levels: blocks lying wholly inside one window of 3 or 12 block ranges (6h and 24h for the
 *     default 2h) are merged once that window is closed (a newer block exists past its end).
 *
 * Series of the parents are merged by labels (each block's series ids ascend in label order).
 * Chunks that do not overlap are copied as they are, whatever their encoding; overlapping XOR
 * chunks are decoded, merged, deduplicated and re-encoded 120 samples a chunk. The new block
 * names its parents in meta.json ("compaction.parents", as Prometheus does): it is written and
 * renamed into place before the parents are deleted, and an open that finds a block together
 * with its parents deletes the parents, so a crash at any point stores every sample once.
 */
#include "storage/block.h"
#include "storage/storage_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPACT_CHUNK_SAMPLES 120

typedef struct cursor {
    block *b;
    roaring_uint32_iterator_t *it;
    uint32_t id;   /* of the current series */
    label *labels; /* of the current series; NULL at the end */
    uint32_t n_labels;
    block_chunk_meta *chunks;
    size_t n_chunks;
} cursor;

static int cursor_load(cursor *c, char *err)
{
    free(c->labels);
    free(c->chunks);
    c->labels = NULL;
    c->chunks = NULL;
    if (!c->it->has_value) return 0;
    c->id = c->it->current_value;
    int rc = block_series(c->b, c->id, &c->labels, &c->n_labels, &c->chunks, &c->n_chunks, err);
    roaring_advance_uint32_iterator(c->it);
    return rc;
}

typedef struct src_chunk {
    block *b;
    uint32_t id;
    block_chunk_meta m;
} src_chunk;

static int cmp_src_chunk(const void *a, const void *b)
{
    const src_chunk *x = a, *y = b;
    return x->m.mint < y->m.mint ? -1 : x->m.mint > y->m.mint;
}

static int cmp_sample(const void *a, const void *b)
{
    int64_t x = ((const strata_sample *)a)->t, y = ((const strata_sample *)b)->t;
    return x < y ? -1 : x > y;
}

/* Everything the output block references until it is written. */
typedef struct merge_out {
    block_series_in *series;
    size_t n, cap;
    block_chunk_in *chunks;
    size_t n_chunks, cap_chunks;
    size_t *first_chunk; /* per series, index into chunks (the array moves while growing) */
    label **labels;      /* per series, owned */
    uint8_t **owned;     /* re-encoded chunk bytes */
    size_t n_owned, cap_owned;
    xor_appender *apps;
    size_t n_apps, cap_apps;
} merge_out;

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 256;
    while (nc < need)
        nc *= 2;
    void *v = realloc(*p, nc * size);
    if (!v) return STRATA_ENOMEM;
    *p = v;
    *cap = nc;
    return 0;
}

static int push_chunk(merge_out *o, block_chunk_in c)
{
    if (grow((void **)&o->chunks, &o->cap_chunks, o->n_chunks + 1, sizeof *o->chunks))
        return STRATA_ENOMEM;
    o->chunks[o->n_chunks++] = c;
    return 0;
}

/* Re-encodes sorted, distinct samples as XOR chunks of at most COMPACT_CHUNK_SAMPLES. */
static int encode_samples(merge_out *o, const strata_sample *v, size_t n)
{
    for (size_t i = 0; i < n; i += COMPACT_CHUNK_SAMPLES) {
        size_t k = n - i < COMPACT_CHUNK_SAMPLES ? n - i : COMPACT_CHUNK_SAMPLES;
        if (grow((void **)&o->apps, &o->cap_apps, o->n_apps + 1, sizeof *o->apps))
            return STRATA_ENOMEM;
        xor_appender *a = &o->apps[o->n_apps];
        int rc = xor_appender_init(a);
        if (rc) return rc;
        o->n_apps++;
        for (size_t j = 0; j < k && !rc; j++)
            rc = xor_append(a, v[i + j].t, v[i + j].v);
        if (rc) return rc;
        size_t len;
        const uint8_t *d = xor_appender_bytes(a, &len);
        rc = push_chunk(o, (block_chunk_in){.mint = v[i].t,
                                            .maxt = v[i + k - 1].t,
                                            .encoding = CHUNK_ENC_XOR,
                                            .data = d,
                                            .len = (uint32_t)len,
                                            .samples = (uint32_t)k});
        if (rc) return rc;
    }
    return 0;
}

/* The chunks of one label set from every parent that has it, into o. */
static int merge_series(merge_out *o, src_chunk *sc, size_t n, char *err)
{
    qsort(sc, n, sizeof *sc, cmp_src_chunk);
    /* Deleted ranges are applied here: a chunk wholly deleted is dropped, one partly deleted is
     * rewritten (so the merge carries no tombstones). */
    bool rewrite = false;
    size_t kept_chunks = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nt;
        const block_tombstone *t = block_tombstones(sc[i].b, sc[i].id, &nt);
        bool whole = false, part = false;
        for (size_t j = 0; j < nt; j++) {
            if (t[j].mint <= sc[i].m.mint && t[j].maxt >= sc[i].m.maxt)
                whole = true;
            else if (t[j].maxt >= sc[i].m.mint && t[j].mint <= sc[i].m.maxt)
                part = true;
        }
        if (whole) continue;
        rewrite |= part;
        sc[kept_chunks++] = sc[i];
    }
    n = kept_chunks;
    bool overlap = rewrite;
    for (size_t i = 1; i < n && !overlap; i++)
        overlap = sc[i].m.mint <= sc[i - 1].m.maxt;
    if (!overlap) {
        for (size_t i = 0; i < n; i++) {
            uint8_t enc;
            const uint8_t *d;
            uint32_t len;
            int rc = block_chunk(sc[i].b, sc[i].m.ref, &enc, &d, &len, err);
            const chunk_codec *codec = rc ? NULL : chunk_codec_get((chunk_encoding)enc);
            uint32_t count = 0;
            if (!rc && codec) rc = codec->count(d, len, &count);
            if (!rc)
                rc = push_chunk(o, (block_chunk_in){.mint = sc[i].m.mint,
                                                    .maxt = sc[i].m.maxt,
                                                    .encoding = enc,
                                                    .data = d,
                                                    .len = len,
                                                    .samples = count});
            if (rc) return rc;
        }
        return 0;
    }
    strata_sample *v = NULL;
    size_t nv = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t enc;
        const uint8_t *d;
        uint32_t len, count = 0;
        rc = block_chunk(sc[i].b, sc[i].m.ref, &enc, &d, &len, err);
        if (!rc && enc != CHUNK_ENC_XOR && enc != CHUNK_ENC_STRATA)
            rc = strata_errf(err, STRATA_EUNSUPPORTED,
                             "overlapping chunks of encoding %u cannot be merged yet", enc);
        const chunk_codec *codec = rc ? NULL : chunk_codec_get((chunk_encoding)enc);
        if (!rc) rc = codec->count(d, len, &count);
        if (!rc) rc = grow((void **)&v, &cap, nv + count, sizeof *v);
        size_t got = 0;
        if (!rc) rc = codec->decode(d, len, v + nv, count, &got, err);
        size_t nt = 0;
        const block_tombstone *t = rc ? NULL : block_tombstones(sc[i].b, sc[i].id, &nt);
        for (size_t j = 0; t && j < got; j++)
            if (block_tombstoned(t, nt, v[nv + j].t)) v[nv + j].t = INT64_MIN; /* dropped below */
        nv += got;
    }
    if (!rc) {
        qsort(v, nv, sizeof *v, cmp_sample);
        size_t k = 0;
        for (size_t i = 0; i < nv; i++)
            if (v[i].t != INT64_MIN && (!k || v[k - 1].t != v[i].t)) v[k++] = v[i];
        rc = encode_samples(o, v, k);
    }
    free(v);
    return rc;
}

static void merge_out_free(merge_out *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->labels[i]);
    for (size_t i = 0; i < o->n_apps; i++)
        xor_appender_free(&o->apps[i]);
    free(o->apps);
    free(o->labels);
    free(o->first_chunk);
    free(o->series);
    free(o->chunks);
    free(o->owned);
}

/* Writes the merge of parents as a new block; ulid receives its name. */
static int compact_blocks(strata_db *db, block **parents, size_t np, char *ulid, char *err)
{
    cursor *cs = calloc(np, sizeof *cs);
    roaring_bitmap_t **ids = calloc(np, sizeof *ids);
    src_chunk *sc = NULL;
    size_t cap_sc = 0;
    merge_out o;
    memset(&o, 0, sizeof o);
    int rc = cs && ids ? 0 : STRATA_ENOMEM;
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    uint32_t level = 0, wal_segment = 0;
    for (size_t i = 0; i < np && !rc; i++) {
        const block_info *bi = block_get_info(parents[i]);
        if (bi->mint < mint) mint = bi->mint;
        if (bi->maxt > maxt) maxt = bi->maxt;
        if (bi->level > level) level = bi->level;
        if (bi->wal_segment > wal_segment) wal_segment = bi->wal_segment;
        cs[i].b = parents[i];
        rc = block_select(parents[i], NULL, 0, &ids[i], err);
        if (!rc && !(cs[i].it = roaring_create_iterator(ids[i]))) rc = STRATA_ENOMEM;
        if (!rc) rc = cursor_load(&cs[i], err);
    }
    while (!rc) {
        /* The smallest label set among the cursors, and every cursor positioned on it. */
        cursor *min = NULL;
        for (size_t i = 0; i < np; i++)
            if (cs[i].labels && (!min || labels_compare(cs[i].labels, cs[i].n_labels, min->labels,
                                                        min->n_labels) < 0))
                min = &cs[i];
        if (!min) break;
        label *labels = min->labels;
        uint32_t nl = min->n_labels;
        size_t n_sc = 0;
        for (size_t i = 0; i < np && !rc; i++) {
            if (!cs[i].labels || !labels_equal(cs[i].labels, cs[i].n_labels, labels, nl)) continue;
            rc = grow((void **)&sc, &cap_sc, n_sc + cs[i].n_chunks, sizeof *sc);
            for (size_t c = 0; c < cs[i].n_chunks && !rc; c++)
                sc[n_sc++] = (src_chunk){cs[i].b, cs[i].id, cs[i].chunks[c]};
        }
        if (rc) break;
        size_t first = o.n_chunks;
        rc = merge_series(&o, sc, n_sc, err);
        if (!rc && o.n == o.cap) {
            size_t nc = o.cap ? o.cap * 2 : 256;
            block_series_in *v = realloc(o.series, nc * sizeof *v);
            label **l = v ? realloc(o.labels, nc * sizeof *l) : NULL;
            size_t *f = l ? realloc(o.first_chunk, nc * sizeof *f) : NULL;
            if (v) o.series = v;
            if (l) o.labels = l;
            if (f) o.first_chunk = f;
            if (f)
                o.cap = nc;
            else
                rc = STRATA_ENOMEM;
        }
        if (rc) break;
        o.series[o.n] =
            (block_series_in){.labels = labels, .n_labels = nl, .n_chunks = o.n_chunks - first};
        o.first_chunk[o.n] = first;
        o.labels[o.n++] = labels; /* taken over from the cursor */
        min->labels = NULL;
        for (size_t i = 0; i < np && !rc; i++)
            if (&cs[i] == min ||
                (cs[i].labels && labels_equal(cs[i].labels, cs[i].n_labels, labels, nl)))
                rc = cursor_load(&cs[i], err);
        if (o.series[o.n - 1].n_chunks == 0) free(o.labels[--o.n]); /* all of it deleted */
    }
    if (!rc && o.n == 0) rc = 1; /* nothing left: no block to write */
    if (!rc) {
        for (size_t i = 0; i < o.n; i++)
            o.series[i].chunks = o.chunks + o.first_chunk[i];
        char(*sources)[BLOCK_ULID_LEN + 1] = calloc(np, sizeof *sources);
        if (!sources) rc = STRATA_ENOMEM;
        for (size_t i = 0; sources && i < np; i++)
            memcpy(sources[i], block_get_info(parents[i])->ulid, BLOCK_ULID_LEN + 1);
        block_write_opts wo = {.mint = mint,
                               .maxt = maxt,
                               .level = level + 1,
                               .sources = (const char(*)[BLOCK_ULID_LEN + 1]) sources,
                               .n_sources = np,
                               .parents = (const char(*)[BLOCK_ULID_LEN + 1]) sources,
                               .n_parents = np,
                               .wal_segment = wal_segment};
        uint8_t **owned = NULL;
        size_t n_owned = 0;
        if (!rc) rc = db_tiers_warm_chunks(db, o.chunks, o.n_chunks, &owned, &n_owned, err);
        if (!rc) rc = block_write(db->path, o.series, o.n, &wo, ulid, err);
        db_tiers_free_owned(owned, n_owned);
        free(sources);
    }
    for (size_t i = 0; cs && i < np; i++) {
        free(cs[i].labels);
        free(cs[i].chunks);
        if (cs[i].it) roaring_free_uint32_iterator(cs[i].it);
        if (ids[i]) roaring_bitmap_free(ids[i]);
    }
    free(cs);
    free(ids);
    free(sc);
    merge_out_free(&o);
    if (rc == STRATA_ENOMEM) strata_errf(err, rc, "out of memory compacting blocks");
    return rc;
}

/* ---- planning ------------------------------------------------------------------------------ */

/* The first group of blocks to merge: overlapping ones, else a closed window of 3 or 12 block
 * ranges holding two or more blocks. Fills group (indexes into bs->v); returns its size. */
static size_t plan(const db_blocks *bs, size_t *group)
{
    if (bs->n < 2) return 0;
    /* Overlaps: the list is sorted by mint, so a run of blocks each starting before the run's
     * furthest end overlaps. */
    for (size_t i = 0; i + 1 < bs->n; i++) {
        int64_t end = block_get_info(bs->v[i])->maxt;
        size_t k = 0;
        group[k++] = i;
        for (size_t j = i + 1; j < bs->n && block_get_info(bs->v[j])->mint < end; j++) {
            group[k++] = j;
            if (block_get_info(bs->v[j])->maxt > end) end = block_get_info(bs->v[j])->maxt;
        }
        if (k > 1) return k;
    }
    int64_t newest = INT64_MIN;
    for (size_t i = 0; i < bs->n; i++)
        if (block_get_info(bs->v[i])->maxt > newest) newest = block_get_info(bs->v[i])->maxt;
    static const int factors[] = {3, 12};
    for (int f = 0; f < 2; f++) {
        int64_t w = bs->range_ms * factors[f];
        for (size_t i = 0; i < bs->n;) {
            const block_info *bi = block_get_info(bs->v[i]);
            int64_t start = bi->mint - ((bi->mint % w) + w) % w;
            size_t k = 0;
            size_t j = i;
            for (; j < bs->n && block_get_info(bs->v[j])->mint < start + w; j++)
                if (block_get_info(bs->v[j])->maxt <= start + w) group[k++] = j;
            /* Closed: data past the window exists, so the window will not grow any more. */
            if (k > 1 && newest > start + w) return k;
            i = j > i ? j : i + 1;
        }
    }
    return 0;
}

/* Merges parents into one new block and swaps it in; a merge with nothing left (everything
 * deleted) just removes the parents. 0 or an error. */
static int replace_blocks(strata_db *db, block **parents, size_t k, char *err)
{
    db_blocks *bs = db->blocks;
    char ulid[BLOCK_ULID_LEN + 1] = "";
    int rc = compact_blocks(db, parents, k, ulid, err);
    bool empty = rc == 1;
    block *nb = NULL;
    if (!rc) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", db->path, ulid);
        rc = block_open(path, db->head.syms, &nb, err);
    }
    if (rc && !empty) {
        strata_log(LOG_ERROR, "compaction failed: %s", err);
        return rc;
    }
    rc = 0;
    storage_crash_point("compact-written");
    db_blocks_lock_exclusive(bs);
    size_t keep = 0;
    for (size_t i = 0; i < bs->n; i++) {
        bool gone = false;
        for (size_t p = 0; p < k && !gone; p++)
            gone = bs->v[i] == parents[p];
        if (!gone) bs->v[keep++] = bs->v[i];
    }
    bs->n = keep;
    if (nb) rc = db_blocks_add(db, nb);
    pthread_rwlock_unlock(&bs->mu);
    if (rc) block_close(nb);
    if (nb && !rc)
        strata_log(LOG_INFO, "compacted %zu block(s) into %s (level %u)", k, ulid,
                   block_get_info(nb)->level);
    else if (empty)
        strata_log(LOG_INFO, "removed %zu block(s) whose every sample was deleted", k);
    /* The parents are gone from the list either way: the new block (if any) holds their data,
     * and an error here only means it is not listed until the next open. */
    for (size_t p = 0; p < k; p++)
        db_blocks_delete(db, parents[p]);
    return rc ? strata_errf(err, rc, "out of memory publishing a compacted block") : 0;
}

int db_compact(strata_db *db, char *err)
{
    db_blocks *bs = db->blocks;
    if (db->opts.read_only) return 0;
    int rounds = 0;
    for (;;) {
        pthread_rwlock_rdlock(&bs->mu);
        size_t *group = malloc((bs->n ? bs->n : 1) * sizeof *group);
        /* Cold blocks are final: plan over the warm ones only (a view sorted as the list). */
        db_blocks warm = {.range_ms = bs->range_ms,
                          .v = malloc((bs->n ? bs->n : 1) * sizeof(block *))};
        for (size_t i = 0; warm.v && i < bs->n; i++)
            if (!block_get_info(bs->v[i])->cold) warm.v[warm.n++] = bs->v[i];
        size_t k = group && warm.v ? plan(&warm, group) : 0;
        block **parents = k ? malloc(k * sizeof *parents) : NULL;
        for (size_t i = 0; parents && i < k; i++)
            parents[i] = warm.v[group[i]];
        free(warm.v);
        pthread_rwlock_unlock(&bs->mu);
        free(group);
        if (!parents) return rounds;
        /* Parents stay open: only the holder of flush_mu removes blocks. */
        int rc = replace_blocks(db, parents, k, err);
        free(parents);
        if (rc) {
            atomic_fetch_add(&bs->compaction_failures, 1);
            return rc;
        }
        atomic_fetch_add(&bs->compactions, 1);
        rounds++;
    }
}

int db_clean_tombstones(strata_db *db, char *err)
{
    db_blocks *bs = db->blocks;
    if (db->opts.read_only) return strata_errf(err, STRATA_ECLOSED, "database is open read-only");
    pthread_mutex_lock(&bs->flush_mu);
    int rc = 0;
    while (!rc) {
        block *b = NULL;
        pthread_rwlock_rdlock(&bs->mu);
        for (size_t i = 0; i < bs->n && !b; i++)
            if (block_tombstone_count(bs->v[i])) b = bs->v[i];
        pthread_rwlock_unlock(&bs->mu);
        if (!b) break;
        rc = replace_blocks(db, &b, 1, err);
    }
    pthread_mutex_unlock(&bs->flush_mu);
    return rc;
}
