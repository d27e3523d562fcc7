/*
 * db_blocks.c: the database's blocks: opening them, cutting the head into new ones (flush) and
 * truncating the head and WAL afterwards.
 *
 * A flush, step by step, and what a crash after each step leaves:
 *   1. Under the commit lock: close every open chunk, note how many chunks each series has, and
 *      cut the WAL, so every sample of those chunks lies in WAL segments below segment N.
 *      (Crash: nothing changed on disk but a new empty segment.)
 *   2. Without locks: write one block per block-range window holding chunks. Each records in its
 *      meta.json the WAL segment N and how many blocks the flush writes. (Crash before the last
 *      rename: the next open removes the blocks of the unfinished flush, whose samples the WAL
 *      still has, so nothing is stored twice.)
 *   3. Exclusively (db_blocks.mu): publish the blocks, drop the flushed chunks from the head and
 *      the series left with nothing. (Crash: replay skips samples in segments below N.)
 *   4. Write the WAL checkpoint N (the SERIES records of the series still in the head) and delete
 *      the segments below N. (Crash: replay starts from the newest complete checkpoint.)
 */
#include "storage/block.h"
#include "storage/storage_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct replay_alias {
    uint32_t ref;
    series *s;
} replay_alias;

typedef struct labelset_slot {
    uint64_t hash;
    label *labels; /* NULL: empty slot */
    uint32_t n;
} labelset_slot;

const label *db_labelset_intern(strata_db *db, label *ls, uint32_t n)
{
    db_blocks *bs = db->blocks;
    uint64_t hash = labels_hash(ls, n);
    pthread_mutex_lock(&bs->labelsets_mu);
    if ((bs->n_labelsets + 1) * 4 > bs->cap_labelsets * 3) {
        size_t nc = bs->cap_labelsets ? bs->cap_labelsets * 2 : 1024;
        labelset_slot *v = calloc(nc, sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&bs->labelsets_mu);
            free(ls);
            return NULL;
        }
        for (size_t i = 0; i < bs->cap_labelsets; i++) {
            if (!bs->labelsets[i].labels) continue;
            size_t k = bs->labelsets[i].hash & (nc - 1);
            while (v[k].labels)
                k = (k + 1) & (nc - 1);
            v[k] = bs->labelsets[i];
        }
        free(bs->labelsets);
        bs->labelsets = v;
        bs->cap_labelsets = nc;
    }
    size_t mask = bs->cap_labelsets - 1, k = hash & mask;
    for (; bs->labelsets[k].labels; k = (k + 1) & mask) {
        labelset_slot *e = &bs->labelsets[k];
        if (e->hash == hash && labels_equal(e->labels, e->n, ls, n)) {
            const label *found = e->labels;
            pthread_mutex_unlock(&bs->labelsets_mu);
            if (found != ls) free(ls);
            return found;
        }
    }
    bs->labelsets[k] = (labelset_slot){hash, ls, n};
    bs->n_labelsets++;
    pthread_mutex_unlock(&bs->labelsets_mu);
    return ls;
}

static int cmp_block_mint(const void *a, const void *b)
{
    const block *x = *(block *const *)a, *y = *(block *const *)b;
    int64_t p = block_get_info(x)->mint, q = block_get_info(y)->mint;
    return p < q ? -1 : p > q;
}

static bool is_ulid(const char *s, size_t len)
{
    if (len != BLOCK_ULID_LEN) return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", s[i])) return false;
    return true;
}

static void remove_tree(const char *dir)
{
    char cmd[4300];
    /* Only block directories under the data directory, named by checked or generated ULIDs. */
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    if (system(cmd)) {
    }
}

int db_blocks_add(strata_db *db, block *b)
{
    db_blocks *bs = db->blocks;
    block **v = realloc(bs->v, (bs->n + 1) * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    bs->v = v;
    bs->v[bs->n++] = b;
    qsort(bs->v, bs->n, sizeof *bs->v, cmp_block_mint);
    return 0;
}

/* Removes the blocks of flushes that a crash interrupted: fewer blocks than the flush wrote are
 * on disk, and the WAL still holds all of their samples (replay skips nothing for them). */
static void drop_unfinished_flushes(strata_db *db)
{
    db_blocks *bs = db->blocks;
    char wal_dir[4200];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", db->path);
    /* Checkpoint N is written when flush N is complete; compaction may later merge some of its
     * blocks away, which must not make it look unfinished. */
    uint32_t checkpoint = wal_newest_checkpoint(wal_dir);
    /* Decide for every block first, then drop: the counts must see the list unchanged. */
    bool *drop = calloc(bs->n ? bs->n : 1, sizeof *drop);
    if (!drop) { /* keep them all, but replay every sample the WAL has */
        bs->replay_all = true;
        return;
    }
    for (size_t i = 0; i < bs->n; i++) {
        const block_info *bi = block_get_info(bs->v[i]);
        uint32_t present = 0;
        for (size_t j = 0; j < bs->n; j++)
            if (block_get_info(bs->v[j])->wal_segment == bi->wal_segment &&
                block_get_info(bs->v[j])->flush_blocks)
                present++;
        drop[i] = bi->wal_segment && bi->flush_blocks && present < bi->flush_blocks &&
                  bi->wal_segment > checkpoint && !db->opts.read_only;
        if (drop[i])
            strata_log(LOG_WARN,
                       "removing block %s of an unfinished flush (%u of %u blocks written)",
                       bi->ulid, present, bi->flush_blocks);
    }
    size_t k = 0;
    for (size_t i = 0; i < bs->n; i++) {
        if (!drop[i]) {
            bs->v[k++] = bs->v[i];
            continue;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s", block_dir(bs->v[i]));
        block_close(bs->v[i]);
        remove_tree(path);
    }
    free(drop);
    bs->n = k;
}

static void drop_compacted_parents(strata_db *db);

int db_blocks_open(strata_db *db, char *err)
{
    db_blocks *bs = calloc(1, sizeof *bs);
    if (!bs) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    atomic_init(&bs->idle_cut, INT64_MIN);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Reader preference: a query may hold two sets at once, so a waiting flush must not block
     * the second shared acquisition. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_READER_NP);
    pthread_rwlock_init(&bs->mu, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&bs->flush_mu, NULL);
    pthread_mutex_init(&bs->gate_mu, NULL);
    pthread_cond_init(&bs->gate_cv, NULL);
    pthread_mutex_init(&bs->labelsets_mu, NULL);
    pthread_mutex_init(&bs->wake_mu, NULL);
    pthread_cond_init(&bs->wake_cv, NULL);
    bs->range_ms = db->opts.chunk_range_ms > 0 ? db->opts.chunk_range_ms : 2 * 3600 * 1000;
    db->blocks = bs;

    /* A Prometheus data directory: its blocks are ours to read, but its WAL is in another format
     * that replay would take for damage and truncate. Refuse rather than touch it. */
    char probe[4200];
    struct stat pst;
    snprintf(probe, sizeof probe, "%s/chunks_head", db->path);
    bool prom = stat(probe, &pst) == 0;
    snprintf(probe, sizeof probe, "%s/wal/00000000", db->path);
    prom = prom || stat(probe, &pst) == 0;
    if (prom)
        return strata_errf(err, STRATA_EUNSUPPORTED,
                           "%s holds a Prometheus head (chunks_head/ or wal/00000000), whose WAL "
                           "Strata cannot read: copy its block directories into a new data "
                           "directory, or with Prometheus stopped remove wal/ and chunks_head/",
                           db->path);
    DIR *d = opendir(db->path);
    if (!d) return strata_errf(err, STRATA_EIO, "cannot list %s: %s", db->path, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", db->path, e->d_name);
        if (len == BLOCK_ULID_LEN + 4 && strcmp(e->d_name + BLOCK_ULID_LEN, ".tmp") == 0 &&
            is_ulid(e->d_name, BLOCK_ULID_LEN)) {
            /* A block whose write did not finish: its samples are still in the WAL. */
            if (!db->opts.read_only) {
                strata_log(LOG_WARN, "removing unfinished block %s", path);
                remove_tree(path);
            }
            continue;
        }
        if (!is_ulid(e->d_name, len)) continue;
        block *b;
        rc = block_open(path, db->head.syms, &b, err);
        if (!rc && (rc = db_blocks_add(db, b))) block_close(b);
    }
    closedir(d);
    if (!rc) rc = db_tiers_open(db, err);
    if (!rc) drop_unfinished_flushes(db);
    if (!rc) drop_compacted_parents(db);
    if (!rc && !db->opts.read_only) storage_fsync_dir(db->path);
    if (rc) return rc;
    if (bs->n) strata_log(LOG_INFO, "opened %zu blocks", bs->n);
    return 0;
}

/* A compaction that a crash interrupted after writing its block but before deleting the
 * parents: the new block holds all their samples, so the parents go. */
static void drop_compacted_parents(strata_db *db)
{
    db_blocks *bs = db->blocks;
    if (bs->n < 2) return;
    bool *superseded = calloc(bs->n, sizeof *superseded);
    if (!superseded) return; /* kept: reads deduplicate, and the next compaction merges them */
    for (size_t i = 0; i < bs->n; i++)
        for (size_t j = 0; j < bs->n && !superseded[i]; j++) {
            size_t np;
            const char(*ps)[BLOCK_ULID_LEN + 1] = block_parents(bs->v[j], &np);
            for (size_t p = 0; p < np && !superseded[i]; p++)
                superseded[i] = strcmp(ps[p], block_get_info(bs->v[i])->ulid) == 0;
        }
    size_t k = 0;
    for (size_t i = 0; i < bs->n; i++) {
        if (!superseded[i]) {
            bs->v[k++] = bs->v[i];
            continue;
        }
        if (db->opts.read_only) { /* a tool: hidden, left on disk for the server to remove */
            block_close(bs->v[i]);
            continue;
        }
        strata_log(LOG_WARN, "removing block %s: a compacted block replaces it (or its cold copy)",
                   block_get_info(bs->v[i])->ulid);
        db_blocks_delete(db, bs->v[i]);
    }
    bs->n = k;
    free(superseded);
}

void db_blocks_replay_segment(void *ctx, uint32_t seq)
{
    strata_db *db = ctx;
    db_blocks *bs = db->blocks;
    /* A flush N took every sample before its cut that was in the WAL below segment N; only flush
     * members count (compacted blocks come after their flushes' checkpoints, which replay starts
     * from anyway). */
    int64_t skip = INT64_MIN;
    for (size_t i = 0; i < bs->n && !bs->replay_all; i++) {
        const block_info *bi = block_get_info(bs->v[i]);
        if (bi->flush_blocks && bi->wal_segment > seq && bi->cut_time > skip) skip = bi->cut_time;
    }
    bs->replay_skip_before = skip;
}

void db_blocks_lock_exclusive(db_blocks *bs)
{
    pthread_mutex_lock(&bs->gate_mu);
    bs->exclusive_waiting++;
    pthread_mutex_unlock(&bs->gate_mu);
    pthread_rwlock_wrlock(&bs->mu);
    pthread_mutex_lock(&bs->gate_mu);
    bs->exclusive_waiting--;
    pthread_cond_broadcast(&bs->gate_cv);
    pthread_mutex_unlock(&bs->gate_mu);
}

void db_blocks_lock_for_write(db_blocks *bs)
{
    /* Bounded: a flush may be waiting on a long query, and writes must not stall behind it for
     * long; a pause of a few milliseconds is enough for the writes in flight to drain. */
    pthread_mutex_lock(&bs->gate_mu);
    if (bs->exclusive_waiting) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        while (bs->exclusive_waiting)
            if (pthread_cond_timedwait(&bs->gate_cv, &bs->gate_mu, &ts)) break;
    }
    pthread_mutex_unlock(&bs->gate_mu);
    pthread_rwlock_rdlock(&bs->mu);
}

int db_blocks_alias_add(strata_db *db, uint32_t ref, series *s)
{
    db_blocks *bs = db->blocks;
    if (bs->n_alias == bs->cap_alias) {
        size_t nc = bs->cap_alias ? bs->cap_alias * 2 : 64;
        replay_alias *v = realloc(bs->alias, nc * sizeof *v);
        if (!v) return STRATA_ENOMEM;
        bs->alias = v;
        bs->cap_alias = nc;
    }
    bs->alias[bs->n_alias++] = (replay_alias){ref, s};
    return 0;
}

series *db_blocks_alias_get(strata_db *db, uint32_t ref)
{
    db_blocks *bs = db->blocks;
    for (size_t i = bs->n_alias; i-- > 0;)
        if (bs->alias[i].ref == ref) return bs->alias[i].s;
    return NULL;
}

/* ---- flush ------------------------------------------------------------------------------------
 */

typedef struct flushed {
    series *s;          /* NULL once truncation dropped it */
    uint32_t n_chunks;  /* chunks [0, n_chunks) go into blocks */
    head_chunk *chunks; /* copies of their descriptors (writers may move s->chunks) */
    uint32_t remaining; /* samples that stay in the head from before the snapshot */
    int64_t hist_maxt;  /* newest histogram sample from before the snapshot; INT64_MIN if none */
} flushed;

static int cmp_flushed(const void *a, const void *b)
{
    const series *x = ((const flushed *)a)->s, *y = ((const flushed *)b)->s;
    return labels_compare(x->labels, x->n_labels, y->labels, y->n_labels);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t window_of(int64_t t, int64_t range)
{
    return t / range; /* the head's own rule for cutting chunks at range boundaries */
}

static void flushed_free(flushed *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        free(f[i].chunks);
    free(f);
}

/* Step 1: freezes the head's chunks before cut and cuts the WAL. Every series with samples gets
 * an entry (the checkpoint needs the samples that stay); *n_flush counts those with chunks to
 * flush. */
static int snapshot_head(strata_db *db, int64_t cut, flushed **out, size_t *n, size_t *n_flush,
                         uint32_t *wal_segment, char *err)
{
    head *h = &db->head;
    *out = NULL;
    *n = 0;
    *n_flush = 0;
    pthread_mutex_lock(&db->commit_mu);
    pthread_mutex_lock(&h->create_mu);
    uint32_t end = h->next_ref;
    pthread_mutex_unlock(&h->create_mu);
    flushed *v = malloc((end ? end : 1) * sizeof *v);
    int rc = v ? 0 : STRATA_ENOMEM;
    size_t k = 0;
    for (uint32_t ref = 1; ref < end && !rc; ref++) {
        series *s = head_series_by_ref(h, ref);
        if (!s) continue;
        head_stripe_lock(h, s->stripe);
        /* An open chunk ending before the cut is complete: chunks never straddle a block
         * boundary, and the cut is one. */
        if (s->open_count && (cut == INT64_MAX || s->last_t < cut)) rc = head_cut_open_locked(h, s);
        uint32_t nf = 0, remaining = s->open_count;
        while (nf < s->n_chunks && s->chunks[nf].maxt < cut)
            nf++;
        for (uint32_t c = nf; c < s->n_chunks; c++)
            remaining += s->chunks[c].count;
        /* Histograms stay in the head; the checkpoint needs to know which predate the cut WAL
         * segment (later ones are in segments the checkpoint keeps). */
        int64_t hmin, hist_maxt = INT64_MIN;
        if (!head_hist_bounds_locked(s, &hmin, &hist_maxt)) hist_maxt = INT64_MIN;
        head_chunk *c = nf ? malloc(nf * sizeof *c) : NULL;
        if (nf && !c) rc = STRATA_ENOMEM;
        if (!rc && (nf || remaining || hist_maxt != INT64_MIN)) {
            if (nf) memcpy(c, s->chunks, nf * sizeof *c);
            v[k++] = (flushed){s, nf, c, remaining, hist_maxt};
            if (nf) (*n_flush)++;
        } else {
            free(c);
        }
        head_stripe_unlock(h, s->stripe);
    }
    if (!rc && *n_flush) rc = wal_cut(db->wal, wal_segment, err);
    pthread_mutex_unlock(&db->commit_mu);
    if (rc) {
        flushed_free(v, k);
        return rc == STRATA_ENOMEM ? strata_errf(err, rc, "out of memory cutting the head") : rc;
    }
    *out = v;
    *n = k;
    return 0;
}

/* Step 2: one block per window; returns the new blocks' names in *ulids. Chunk bytes of the
 * snapshot are immutable and stay allocated until step 3, so no lock is needed here. */
static int write_blocks(strata_db *db, flushed *f, size_t n, uint32_t wal_segment, int64_t cut,
                        char (**ulids)[BLOCK_ULID_LEN + 1], size_t *n_ulids, char *err)
{
    int64_t range = db->blocks->range_ms;
    qsort(f, n, sizeof *f, cmp_flushed);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += f[i].n_chunks;
    int64_t *windows = malloc((total ? total : 1) * sizeof *windows);
    uint32_t *cursor = calloc(n ? n : 1, sizeof *cursor);
    block_series_in *in = malloc((n ? n : 1) * sizeof *in);
    block_chunk_in *chunks = malloc((total ? total : 1) * sizeof *chunks);
    *ulids = NULL;
    *n_ulids = 0;
    int rc = windows && cursor && in && chunks ? 0 : STRATA_ENOMEM;
    size_t nw = 0;
    for (size_t i = 0; i < n && !rc; i++)
        for (uint32_t c = 0; c < f[i].n_chunks; c++)
            windows[nw++] = window_of(f[i].chunks[c].mint, range);
    if (!rc) qsort(windows, nw, sizeof *windows, cmp_i64);
    size_t distinct = 0;
    for (size_t i = 0; i < nw; i++)
        if (!distinct || windows[distinct - 1] != windows[i]) windows[distinct++] = windows[i];
    if (!rc) *ulids = calloc(distinct ? distinct : 1, sizeof **ulids);
    if (!rc && !*ulids) rc = STRATA_ENOMEM;
    for (size_t w = 0; w < distinct && !rc; w++) {
        size_t ns = 0, nc = 0;
        int64_t mint = INT64_MAX, maxt = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
            series *s = f[i].s;
            size_t first = nc;
            /* Chunks never straddle a window (the head cuts them at range boundaries). */
            while (cursor[i] < f[i].n_chunks &&
                   window_of(f[i].chunks[cursor[i]].mint, range) == windows[w]) {
                head_chunk *hc = &f[i].chunks[cursor[i]++];
                chunks[nc++] = (block_chunk_in){.mint = hc->mint,
                                                .maxt = hc->maxt,
                                                .encoding = CHUNK_ENC_XOR,
                                                .data = hc->data,
                                                .len = hc->len,
                                                .samples = hc->count};
                if (hc->mint < mint) mint = hc->mint;
                if (hc->maxt > maxt) maxt = hc->maxt;
            }
            if (nc > first)
                in[ns++] = (block_series_in){s->labels, s->n_labels, &chunks[first], nc - first};
        }
        block_write_opts o = {.mint = mint,
                              .maxt = maxt + 1,
                              .level = 1,
                              .wal_segment = wal_segment,
                              .flush_blocks = (uint32_t)distinct,
                              .cut_time = cut};
        uint8_t **owned;
        size_t n_owned;
        rc = db_tiers_warm_chunks(db, chunks, nc, &owned, &n_owned, err);
        if (!rc) rc = block_write(db->path, in, ns, &o, (*ulids)[w], err);
        db_tiers_free_owned(owned, n_owned);
        if (!rc) (*n_ulids)++;
    }
    free(windows);
    free(cursor);
    free(in);
    free(chunks);
    if (rc == STRATA_ENOMEM) strata_errf(err, rc, "out of memory writing blocks");
    return rc;
}

/* Removes s from its stripe's open-addressing table, re-placing the probe cluster after it. */
static void stripe_remove(head_stripe *st, series *s)
{
    uint32_t mask = st->cap - 1, k = (uint32_t)(s->hash >> 32) & mask;
    while (st->slots[k] != s)
        k = (k + 1) & mask;
    st->slots[k] = NULL;
    st->count--;
    for (uint32_t j = (k + 1) & mask; st->slots[j]; j = (j + 1) & mask) {
        series *x = st->slots[j];
        st->slots[j] = NULL;
        uint32_t p = (uint32_t)(x->hash >> 32) & mask;
        while (st->slots[p])
            p = (p + 1) & mask;
        st->slots[p] = x;
    }
}

/* Step 3, with db_blocks.mu held exclusively: nobody reads or writes the head meanwhile. */
static void truncate_head(strata_db *db, flushed *f, size_t n)
{
    head *h = &db->head;
    db_blocks *bs = db->blocks;
    uint64_t chunks = 0, bytes = 0, samples = 0, dropped = 0;
    for (size_t i = 0; i < n; i++) {
        series *s = f[i].s;
        if (!f[i].n_chunks) continue;
        for (uint32_t c = 0; c < f[i].n_chunks; c++) {
            bytes += s->chunks[c].len; /* the same chunks as f[i].chunks: only appends moved them */
            samples += s->chunks[c].count;
            free(s->chunks[c].data);
        }
        chunks += f[i].n_chunks;
        memmove(s->chunks, s->chunks + f[i].n_chunks,
                (s->n_chunks - f[i].n_chunks) * sizeof *s->chunks);
        s->n_chunks -= f[i].n_chunks;
        int64_t hmin, hmax;
        /* Histogram chunks are not flushed into blocks yet: a series holding any stays. */
        if (s->n_chunks || s->open_count || head_hist_bounds_locked(s, &hmin, &hmax)) continue;
        /* Nothing left in the head: the series lives on in blocks only. */
        stripe_remove(&h->stripes[s->stripe], s);
        postings_remove(h->index, s->ref, s->labels, s->n_labels);
        series **page = atomic_load(&h->pages[s->ref >> SERIES_PAGE_BITS]);
        __atomic_store_n(&page[s->ref & (SERIES_PAGE_SIZE - 1)], NULL, __ATOMIC_RELEASE);
        /* Queries may still hold its label array (results outlive series sets): keep it until
         * close. Should the list not grow, the array is leaked rather than freed under a reader. */
        label **r = realloc(bs->retired, (bs->n_retired + 1) * sizeof *r);
        if (r) {
            bs->retired = r;
            r[bs->n_retired++] = s->labels;
        }
        s->labels = NULL;
        head_series_free(s);
        f[i].s = NULL;
        dropped++;
    }
    atomic_fetch_sub(&h->n_chunks, chunks);
    atomic_fetch_sub(&h->chunk_bytes, bytes);
    atomic_fetch_sub(&h->chunk_samples, samples);
    atomic_fetch_sub(&h->n_series, dropped);
    /* The head's time bounds now cover what is left in it. */
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t ref = 1; ref < h->next_ref; ref++) {
        series *s = head_series_by_ref(h, ref);
        if (!s) continue;
        /* Histograms stay in the head: its bounds must cover them, or label queries over their
         * time would skip the head (the flusher's idle cut keeps this from re-flushing). */
        int64_t hmin, hmax;
        if (head_hist_bounds_locked(s, &hmin, &hmax)) {
            if (hmin < lo) lo = hmin;
            if (hmax > hi) hi = hmax;
        }
        if (!s->n_chunks && !s->open_count) continue;
        int64_t smin = s->n_chunks ? s->chunks[0].mint : s->open_mint;
        if (smin < lo) lo = smin;
        if (s->last_t > hi) hi = s->last_t;
    }
    atomic_store(&h->min_t, lo);
    atomic_store(&h->max_t, hi);
}

/* A run of one kind of WAL sample record being built for the checkpoint. */
typedef struct kept_run {
    buf *payload, *records;
    uint8_t type; /* WAL_REC_SAMPLES or WAL_REC_HISTOGRAMS; 0 before the first sample */
    int64_t prev_t;
    bool first;
} kept_run;

static int kept_run_switch(kept_run *r, uint8_t type)
{
    if (r->type == type) return 0;
    int rc = 0;
    if (r->type && r->payload->len)
        rc = wal_frame(r->records, r->type, r->payload->data, r->payload->len);
    r->payload->len = 0;
    r->type = type;
    r->first = true;
    return rc;
}

/* The samples of s from before the snapshot (its first `keep` floats, its histograms up to
 * hist_maxt) in the WAL's encoding, floats and histograms interleaved by time in alternating
 * SAMPLES and HISTOGRAMS records: floats and histograms of a series share one newest time, so
 * replay must see them in time order or it rejects the older ones as out of order. Each record
 * starts with the absolute ref and time, then deltas. */
static int encode_kept_samples(strata_db *db, series *s, uint32_t keep, int64_t hist_maxt,
                               buf *payload, buf *records)
{
    arena a;
    arena_init(&a, 4096);
    hist_sample *hs = NULL;
    size_t nh = 0, hi = 0;
    int rc = hist_maxt == INT64_MIN
                 ? 0
                 : head_hist_read(&db->head, s, INT64_MIN, hist_maxt, &a, &hs, &nh);
    chunk_ref *chunks = NULL;
    size_t nc = 0;
    uint8_t *open_copy = NULL;
    if (!rc && keep)
        rc = head_series_chunks(&db->head, s, INT64_MIN, INT64_MAX, &chunks, &nc, &open_copy);
    kept_run r = {payload, records, 0, 0, true};
    uint32_t done = 0;
    for (size_t c = 0; c < nc && done < keep && !rc; c++) {
        xor_iter it;
        rc = xor_iter_init(&it, chunks[c].data, chunks[c].len);
        int more = rc ? 0 : xor_iter_next(&it);
        for (; more == 1 && done < keep && !rc; more = xor_iter_next(&it)) {
            int64_t t;
            double v;
            xor_iter_at(&it, &t, &v);
            for (; hi < nh && hs[hi].t < t && !rc; hi++) {
                rc = kept_run_switch(&r, WAL_REC_HISTOGRAMS);
                if (!rc)
                    rc = hist_record_put(payload, r.first ? (int64_t)s->ref : 0,
                                         r.first ? hs[hi].t : hs[hi].t - r.prev_t, &hs[hi].h);
                r.prev_t = hs[hi].t;
                r.first = false;
            }
            if (!rc) rc = kept_run_switch(&r, WAL_REC_SAMPLES);
            if (!rc) rc = buf_reserve(payload, 2 * VARINT_MAX_LEN + 8);
            if (rc) break;
            uint8_t *p = payload->data + payload->len;
            p += varint_put_i64(p, r.first ? (int64_t)s->ref : 0);
            p += varint_put_i64(p, r.first ? t : t - r.prev_t);
            memcpy(p, &v, 8);
            payload->len = (size_t)(p + 8 - payload->data);
            r.prev_t = t;
            r.first = false;
            done++;
        }
        if (more < 0 && !rc) rc = more;
    }
    for (; hi < nh && !rc; hi++) {
        rc = kept_run_switch(&r, WAL_REC_HISTOGRAMS);
        if (!rc)
            rc = hist_record_put(payload, r.first ? (int64_t)s->ref : 0,
                                 r.first ? hs[hi].t : hs[hi].t - r.prev_t, &hs[hi].h);
        r.prev_t = hs[hi].t;
        r.first = false;
    }
    if (!rc) rc = kept_run_switch(&r, 0);
    free(chunks);
    free(open_copy);
    arena_free(&a);
    return rc;
}

/* Step 4: checkpoint N: the SERIES records of every series still in the head, then the float
 * and histogram samples that stayed in the head from before the snapshot (their WAL segments are
 * about to go; flush writes no histogram chunks, so every histogram from before it stays). */
static int checkpoint_wal(strata_db *db, uint32_t wal_segment, const flushed *f, size_t n,
                          char *err)
{
    head *h = &db->head;
    buf payload = {0}, records = {0};
    int rc = 0;
    pthread_rwlock_rdlock(&db->blocks->mu);
    pthread_mutex_lock(&h->create_mu);
    uint32_t end = h->next_ref;
    pthread_mutex_unlock(&h->create_mu);
    for (uint32_t ref = 1; ref < end && !rc; ref++) {
        series *s = head_series_by_ref(h, ref);
        if (!s) continue;
        rc = encode_series_record(&payload, s);
        if (!rc && payload.len > (1u << 20)) {
            rc = wal_frame(&records, WAL_REC_SERIES, payload.data, payload.len);
            payload.len = 0;
        }
    }
    if (!rc && payload.len) rc = wal_frame(&records, WAL_REC_SERIES, payload.data, payload.len);
    for (size_t i = 0; i < n && !rc; i++) {
        if (!f[i].s || (!f[i].remaining && f[i].hist_maxt == INT64_MIN)) continue;
        rc = encode_kept_samples(db, f[i].s, f[i].remaining, f[i].hist_maxt, &payload, &records);
    }
    /* Exemplars live in their own store, not in blocks: the checkpoint keeps them all. */
    if (!rc && db->exemplars) rc = exemplars_checkpoint(db->exemplars, &records);
    pthread_rwlock_unlock(&db->blocks->mu);
    buf_free(&payload);
    if (!rc)
        rc = wal_checkpoint(db->wal, wal_segment, records.data ? records.data : (const uint8_t *)"",
                            records.len, err);
    else if (rc == STRATA_ENOMEM)
        strata_errf(err, rc, "out of memory writing the WAL checkpoint");
    else
        strata_errf(err, rc, "cannot read the head's chunks for the WAL checkpoint");
    buf_free(&records);
    return rc;
}

static size_t apply_retention(strata_db *db);

/* Flushes every head chunk whose samples all lie before cut (INT64_MAX: everything). */
static int flush_before(strata_db *db, int64_t cut, char *err)
{
    if (!db->wal || db->opts.read_only)
        return strata_errf(err, STRATA_ECLOSED, "database is open read-only");
    db_blocks *bs = db->blocks;
    pthread_mutex_lock(&bs->flush_mu);
    uint64_t t0 = clock_mono_ns();
    flushed *f;
    size_t n, n_flush;
    uint32_t wal_segment = 0;
    int rc = snapshot_head(db, cut, &f, &n, &n_flush, &wal_segment, err);
    if (rc || !n_flush) {
        flushed_free(f, n);
        pthread_mutex_unlock(&bs->flush_mu);
        return rc;
    }
    storage_crash_point("flush-snapshot");
    char(*ulids)[BLOCK_ULID_LEN + 1] = NULL;
    size_t n_ulids = 0;
    rc = write_blocks(db, f, n, wal_segment, cut, &ulids, &n_ulids, err);
    block **opened = calloc(n_ulids ? n_ulids : 1, sizeof *opened);
    if (!rc && !opened) rc = strata_errf(err, STRATA_ENOMEM, "out of memory");
    for (size_t i = 0; i < n_ulids && !rc; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", db->path, ulids[i]);
        rc = block_open(path, db->head.syms, &opened[i], err);
    }
    if (rc) {
        /* The WAL still has every sample and the head is untouched: remove what this flush
         * wrote (were we to crash first, the next open removes the incomplete flush). */
        for (size_t i = 0; i < n_ulids; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", db->path, ulids[i]);
            block_close(opened ? opened[i] : NULL);
            remove_tree(path);
        }
        free(opened);
        free(ulids);
        flushed_free(f, n);
        atomic_fetch_add(&bs->flush_failures, 1);
        pthread_mutex_unlock(&bs->flush_mu);
        return rc;
    }
    storage_crash_point("flush-blocks-durable");
    db_blocks_lock_exclusive(bs);
    for (size_t i = 0; i < n_ulids && !rc; i++)
        if ((rc = db_blocks_add(db, opened[i]))) block_close(opened[i]);
    if (!rc) truncate_head(db, f, n);
    pthread_rwlock_unlock(&bs->mu);
    free(opened);
    if (rc) {
        flushed_free(f, n);
        free(ulids);
        atomic_fetch_add(&bs->flush_failures, 1);
        pthread_mutex_unlock(&bs->flush_mu);
        return strata_errf(err, rc, "out of memory publishing blocks");
    }
    storage_crash_point("flush-head-truncated");
    rc = checkpoint_wal(db, wal_segment, f, n, err);
    flushed_free(f, n);
    if (!rc) storage_crash_point("flush-wal-checkpointed");
    atomic_fetch_add(&bs->flushes, 1);
    apply_retention(db);
    char cerr[STRATA_ERRMSG_SIZE] = "";
    db_compact(db, cerr); /* counts and logs its own failures */
    apply_retention(db);
    strata_log(LOG_INFO, "flushed the head into %zu block(s) (first %s) in %.2fs", n_ulids,
               n_ulids ? ulids[0] : "-", (double)(clock_mono_ns() - t0) / 1e9);
    free(ulids);
    pthread_mutex_unlock(&bs->flush_mu);
    return rc;
}

void db_blocks_delete(strata_db *db, block *b)
{
    /* Beside the block (data or cold directory): a rename never crosses file systems. */
    char from[4096], to[4200], parent[4096];
    snprintf(from, sizeof from, "%s", block_dir(b));
    snprintf(to, sizeof to, "%s.tmp", from);
    snprintf(parent, sizeof parent, "%s", from);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = 0;
    block_close(b);
    if (rename(from, to) == 0) {
        storage_fsync_dir(slash ? parent : ".");
        remove_tree(to);
    } else {
        strata_log(LOG_ERROR, "cannot delete block %s: %s", from, strerror(errno));
    }
}

/* ---- retention ---------------------------------------------------------------------------------
 */

/* Deletes blocks past --retention (all of the block older than the newest sample minus it) and
 * the oldest ones while blocks take more than --retention-size. A block leaves the list under the
 * exclusive lock (no reader holds it then), is renamed to <ulid>.tmp (which an open removes, were
 * we to crash) and removed. Returns the number deleted. */
static size_t apply_retention(strata_db *db)
{
    db_blocks *bs = db->blocks;
    int64_t keep_ms = db->opts.retention_ms;
    uint64_t keep_bytes = db->opts.retention_bytes;
    if ((!keep_ms && !keep_bytes) || db->opts.read_only) return 0;
    db_blocks_lock_exclusive(bs);
    int64_t newest = atomic_load(&db->head.max_t);
    uint64_t total = 0;
    for (size_t i = 0; i < bs->n; i++) {
        const block_info *bi = block_get_info(bs->v[i]);
        if (bi->maxt - 1 > newest) newest = bi->maxt - 1;
        total += bi->bytes;
    }
    block **gone = malloc((bs->n ? bs->n : 1) * sizeof *gone);
    size_t n_gone = 0, k = 0;
    for (size_t i = 0; gone && i < bs->n; i++) { /* oldest first: the list is sorted by mint */
        const block_info *bi = block_get_info(bs->v[i]);
        bool too_old = keep_ms && bi->maxt <= newest - keep_ms;
        bool too_big = keep_bytes && total > keep_bytes;
        if (too_old || too_big) {
            gone[n_gone++] = bs->v[i];
            total -= bi->bytes;
        } else {
            bs->v[k++] = bs->v[i];
        }
    }
    if (gone) bs->n = k;
    pthread_rwlock_unlock(&bs->mu);
    for (size_t i = 0; i < n_gone; i++) {
        const block_info *bi = block_get_info(gone[i]);
        strata_log(LOG_INFO, "retention: deleting block %s (%lld..%lld, %llu bytes)", bi->ulid,
                   (long long)bi->mint, (long long)bi->maxt, (unsigned long long)bi->bytes);
        db_blocks_delete(db, gone[i]);
    }
    free(gone);
    atomic_fetch_add(&bs->retention_deleted, n_gone);
    return n_gone;
}

/* ---- the background flusher ---------------------------------------------------------------------
 */

int db_flush_head(strata_db *db, char *err)
{
    int rc = flush_before(db, INT64_MAX, err);
    if (!rc) db_tiers_after_flush(db);
    return rc;
}

static bool head_too_long(strata_db *db)
{
    int64_t lo = atomic_load(&db->head.min_t), hi = atomic_load(&db->head.max_t);
    return lo <= hi && (hi - lo) >= db->blocks->range_ms / 2 * 3;
}

/* As Prometheus does: blocks for the closed windows, keeping at least half a range of the newest
 * data in the head. */
static int64_t automatic_cut(strata_db *db)
{
    int64_t range = db->blocks->range_ms, newest = atomic_load(&db->head.max_t);
    return (newest - range / 2) / range * range;
}

static void *flusher_main(void *arg)
{
    strata_db *db = arg;
    db_blocks *bs = db->blocks;
    pthread_mutex_lock(&bs->wake_mu);
    while (!bs->stopping) {
        if (!bs->wake) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 60;
            pthread_cond_timedwait(&bs->wake_cv, &bs->wake_mu, &ts);
        }
        if (bs->stopping) break;
        bs->wake = false;
        pthread_mutex_unlock(&bs->wake_mu);
        if (head_too_long(db)) {
            int64_t cut = automatic_cut(db);
            char err[STRATA_ERRMSG_SIZE] = "";
            uint64_t before = atomic_load(&bs->flushes);
            if (flush_before(db, cut, err))
                strata_log(LOG_ERROR, "automatic head flush failed: %s", err);
            else if (atomic_load(&bs->flushes) == before)
                atomic_store(&bs->idle_cut, cut);
        }
        pthread_mutex_lock(&bs->flush_mu);
        char err[STRATA_ERRMSG_SIZE] = "";
        db_compact(db, err); /* logs its own failures */
        apply_retention(db);
        db_tiers_demote(db, err); /* logs its own failures */
        pthread_mutex_unlock(&bs->flush_mu);
        pthread_mutex_lock(&bs->wake_mu);
    }
    pthread_mutex_unlock(&bs->wake_mu);
    return NULL;
}

int db_blocks_start(strata_db *db, char *err)
{
    db_blocks *bs = db->blocks;
    if (db->opts.read_only) return 0;
    bs->wake = true; /* a first round at once: retention, and a head replayed from a long outage */
    if (pthread_create(&bs->flusher, NULL, flusher_main, db))
        return strata_errf(err, STRATA_ENOMEM, "cannot start the block flusher thread");
    bs->flusher_running = true;
    return 0;
}

void db_blocks_after_write(strata_db *db)
{
    db_blocks *bs = db->blocks;
    if (!bs || !bs->flusher_running || !head_too_long(db)) return;
    if (automatic_cut(db) == atomic_load(&bs->idle_cut)) return;
    pthread_mutex_lock(&bs->wake_mu);
    bs->wake = true;
    pthread_cond_signal(&bs->wake_cv);
    pthread_mutex_unlock(&bs->wake_mu);
}

void db_blocks_close(strata_db *db)
{
    db_blocks *bs = db->blocks;
    if (!bs) return;
    if (bs->flusher_running) {
        pthread_mutex_lock(&bs->wake_mu);
        bs->stopping = true;
        pthread_cond_signal(&bs->wake_cv);
        pthread_mutex_unlock(&bs->wake_mu);
        pthread_join(bs->flusher, NULL);
    }
    for (size_t i = 0; i < bs->n; i++)
        block_close(bs->v[i]);
    free(bs->v);
    free(bs->alias);
    for (size_t i = 0; i < bs->cap_labelsets; i++)
        free(bs->labelsets[i].labels);
    for (size_t i = 0; i < bs->n_retired; i++)
        free(bs->retired[i]);
    free(bs->retired);
    free(bs->labelsets);
    db_tiers_close(db);
    pthread_mutex_destroy(&bs->labelsets_mu);
    pthread_rwlock_destroy(&bs->mu);
    pthread_mutex_destroy(&bs->flush_mu);
    pthread_mutex_destroy(&bs->gate_mu);
    pthread_cond_destroy(&bs->gate_cv);
    pthread_mutex_destroy(&bs->wake_mu);
    pthread_cond_destroy(&bs->wake_cv);
    free(bs);
    db->blocks = NULL;
}

int db_blocks_list(strata_db *db, block_info **out, size_t *n)
{
    db_blocks *bs = db->blocks;
    *out = NULL;
    *n = 0;
    if (!bs) return 0;
    pthread_rwlock_rdlock(&bs->mu);
    block_info *v = malloc((bs->n ? bs->n : 1) * sizeof *v);
    if (v)
        for (size_t i = 0; i < bs->n; i++)
            v[i] = *block_get_info(bs->v[i]);
    size_t k = bs->n;
    pthread_rwlock_unlock(&bs->mu);
    if (!v) return STRATA_ENOMEM;
    *out = v;
    *n = k;
    return 0;
}

int db_blocks_verify(strata_db *db, char *err)
{
    db_blocks *bs = db->blocks;
    int rc = 0;
    pthread_rwlock_rdlock(&bs->mu);
    for (size_t i = 0; i < bs->n && !rc; i++)
        rc = block_verify(bs->v[i], err);
    pthread_rwlock_unlock(&bs->mu);
    return rc;
}

/* ---- deletion ------------------------------------------------------------------------------ */

int db_delete_series(strata_db *db, const matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
                     char *err)
{
    db_blocks *bs = db->blocks;
    if (n == 0) return strata_errf(err, STRATA_EINVAL, "at least one matcher is required");
    /* Everything in the head goes into blocks first: deletions are tombstones on blocks only. */
    int rc = db_flush_head(db, err);
    if (rc) return rc;
    pthread_mutex_lock(&bs->flush_mu);
    db_blocks_lock_exclusive(bs);
    for (size_t i = 0; i < bs->n && !rc; i++) {
        block *b = bs->v[i];
        const block_info *bi = block_get_info(b);
        if (bi->mint > maxt || bi->maxt <= mint) continue;
        roaring_bitmap_t *ids;
        rc = block_select(b, ms, n, &ids, err);
        if (rc) break;
        uint64_t k = roaring_bitmap_get_cardinality(ids);
        block_tombstone *t = k ? malloc(k * sizeof *t) : NULL;
        if (k && !t) rc = strata_errf(err, STRATA_ENOMEM, "out of memory");
        size_t nt = 0;
        roaring_uint32_iterator_t *it = t ? roaring_create_iterator(ids) : NULL;
        for (; it && it->has_value; roaring_advance_uint32_iterator(it))
            t[nt++] = (block_tombstone){it->current_value, mint > bi->mint ? mint : bi->mint,
                                        maxt < bi->maxt - 1 ? maxt : bi->maxt - 1};
        if (it) roaring_free_uint32_iterator(it);
        roaring_bitmap_free(ids);
        if (!rc && nt) rc = block_add_tombstones(b, t, nt, err);
        free(t);
    }
    pthread_rwlock_unlock(&bs->mu);
    pthread_mutex_unlock(&bs->flush_mu);
    return rc;
}

void db_blocks_stats(strata_db *db, db_block_stats *st)
{
    db_blocks *bs = db->blocks;
    memset(st, 0, sizeof *st);
    st->min_time = INT64_MAX;
    st->max_time = INT64_MIN;
    if (!bs) return;
    pthread_rwlock_rdlock(&bs->mu);
    for (size_t i = 0; i < bs->n; i++) {
        const block_info *bi = block_get_info(bs->v[i]);
        st->blocks++;
        st->bytes += bi->bytes;
        st->samples += bi->num_samples;
        if (bi->mint < st->min_time) st->min_time = bi->mint;
        if (bi->maxt > st->max_time) st->max_time = bi->maxt;
    }
    pthread_rwlock_unlock(&bs->mu);
    st->flushes = atomic_load(&bs->flushes);
    st->flush_failures = atomic_load(&bs->flush_failures);
    st->compactions = atomic_load(&bs->compactions);
    st->compaction_failures = atomic_load(&bs->compaction_failures);
    st->retention_deleted = atomic_load(&bs->retention_deleted);
}
