/*
 * storage_internal.h: the structures shared by the storage module's files (db, head, index, WAL,
 * querier). Not for other modules: they use storage.h and strata.h.
 *
 * Locks, in the order they may be taken (never the reverse):
 *   db->commit_mu  (one writer commits samples to head + WAL at a time: WAL order = head order)
 *   stripe->mu     (a series' map slot, its chunks and open chunk; readers take it to snapshot)
 *   index->mu      (rwlock over postings; written only when a series is created)
 *   sym stripe mu  (a leaf: taken under the postings lock to look names and values up)
 *   wal->sync_mu   (group commit of fsyncs; held without commit_mu)
 */
#ifndef STRATA_STORAGE_INTERNAL_H
#define STRATA_STORAGE_INTERNAL_H

#include "core/core.h"
#include "encoding/encoding.h"
#include "storage/storage.h"

#include <pthread.h>
#include <roaring/roaring.h>

/* ---- head ---------------------------------------------------------------------------------- */

/* A full chunk: immutable once cut, so readers may use its bytes after dropping the stripe lock
 * (the head never frees chunks while the database is open). */
typedef struct head_chunk {
    int64_t mint;
    int64_t maxt;
    uint8_t *data;
    uint32_t len;
    uint16_t count;
} head_chunk;

typedef struct series {
    uint32_t ref;   /* dense id: index into the series table and member of postings bitmaps */
    uint32_t stripe;
    uint64_t hash;
    label *labels;  /* sorted; bytes are interned symbols owned by the head's sym_table */
    uint32_t n_labels;
    bool wal_logged; /* its SERIES record is in the WAL (guarded by commit_mu) */
    /* Everything below is guarded by the stripe lock. */
    bool has_samples;
    int64_t last_t;
    uint64_t last_v_bits;
    int64_t open_mint;
    head_chunk *chunks;
    uint32_t n_chunks;
    uint32_t cap_chunks;
    xor_appender open; /* valid when open_count > 0 */
    uint32_t open_count;
    struct head_hist *hist; /* native-histogram samples (head_hist.c); NULL until the first */
    bool last_is_hist;      /* the sample at last_t is a histogram */
} series;

#define HEAD_STRIPES 1024 /* power of two */
#define SERIES_PAGE_BITS 12
#define SERIES_PAGE_SIZE (1u << SERIES_PAGE_BITS)
#define SERIES_MAX_PAGES (1u << 20)

typedef struct head_stripe {
    pthread_mutex_t mu;
    series **slots; /* open addressing by hash */
    uint32_t cap;
    uint32_t count;
} head_stripe;

typedef struct postings_index postings_index;

typedef struct head {
    sym_table *syms;
    head_stripe stripes[HEAD_STRIPES];
    /* ref -> series, in pages so lookups need no lock and growth never moves entries. */
    _Atomic(series **) *pages;
    pthread_mutex_t create_mu; /* assigns refs */
    uint32_t next_ref;
    _Atomic uint64_t n_series;
    _Atomic int64_t min_t;
    _Atomic int64_t max_t;
    _Atomic uint64_t samples_appended;
    _Atomic uint64_t n_chunks;
    _Atomic uint64_t chunk_bytes;
    _Atomic uint64_t chunk_samples;
    uint32_t max_samples_per_chunk;
    int64_t chunk_range_ms;
    postings_index *index;
} head;

int head_init(head *h, uint32_t max_samples_per_chunk, int64_t chunk_range_ms);
void head_destroy(head *h);

/* Finds the series with exactly these (canonical) labels; NULL if absent. */
series *head_lookup(head *h, const label *labels, size_t n, uint64_t hash);
/* Finds or creates the series; labels must be canonical. Created series get the next ref (or
 * want_ref when replaying; then next_ref moves past it). *created tells which. */
int head_get_or_create(head *h, const label *labels, size_t n, uint64_t hash, uint32_t want_ref,
                       series **out, bool *created);
series *head_series_by_ref(head *h, uint32_t ref);

/* The metric router's primitives: a write batch takes each stripe's lock once for all its series
 * (lookups, then appends) instead of once per sample. */
static inline uint32_t head_stripe_of(uint64_t hash)
{
    return (uint32_t)(hash & (HEAD_STRIPES - 1));
}
void head_stripe_lock(head *h, uint32_t stripe);
void head_stripe_unlock(head *h, uint32_t stripe);
/* head_lookup with the stripe lock held by the caller. */
series *head_lookup_locked(head *h, uint32_t stripe, const label *labels, size_t n, uint64_t hash);
/* head_append with the series' stripe lock held by the caller; the caller then reports what it
 * appended with head_note_appended (counts and time bounds, once per batch). */
int head_append_locked(head *h, series *s, int64_t t, double v, int64_t *last_t);
void head_note_appended(head *h, uint64_t n, int64_t mint, int64_t maxt);

/* Appends one sample under the series' stripe lock. Returns 0 when stored, 1 for an identical
 * duplicate (accepted, not stored), STRATA_EOUTOFORDER, STRATA_EDUPLICATE (same t, other value)
 * or STRATA_ENOMEM. *last_t receives the series' newest timestamp for messages. */
int head_append(head *h, series *s, int64_t t, double v, int64_t *last_t);

/* Snapshot of the chunks of one series overlapping [mint, maxt], taken under its stripe lock.
 * Closed chunks are referenced (immutable); the open chunk is copied into *open_copy, which the
 * caller frees. */
typedef struct chunk_ref {
    const uint8_t *data;
    uint32_t len;
    int64_t mint, maxt;
} chunk_ref;

int head_series_chunks(head *h, series *s, int64_t mint, int64_t maxt, chunk_ref **out, size_t *n,
                       uint8_t **open_copy);

/* ---- native histograms in the head (head_hist.c) ------------------------------------------- */

typedef struct head_hist head_hist;
void head_hist_free(head_hist *hh);
/* As head_append_locked for a (validated) histogram sample; the float and histogram samples of
 * a series share one newest timestamp. */
int head_append_hist_locked(head *h, series *s, int64_t t, const native_histogram *nh,
                            int64_t *last_t);
/* Takes the stripe lock and notes the append (WAL replay). */
int head_append_hist(head *h, series *s, int64_t t, const native_histogram *nh, int64_t *last_t);
/* The time span of the series' histogram samples (stripe lock held); false if none. */
bool head_hist_bounds_locked(const series *s, int64_t *mint, int64_t *maxt);
/* Snapshot of the histogram chunks of one series overlapping [mint, maxt], in time order, taken
 * under its stripe lock (for writing blocks): full chunks are referenced (immutable while the
 * database is open), the open one is copied into *open_copy, which the caller frees with *out.
 * enc is CHUNK_ENC_HISTOGRAM or CHUNK_ENC_FLOAT_HISTOGRAM. */
typedef struct hist_chunk_ref {
    const uint8_t *data;
    uint32_t len;
    uint8_t enc;
    int64_t mint, maxt;
} hist_chunk_ref;
int head_series_hist_chunks(head *h, series *s, int64_t mint, int64_t maxt, hist_chunk_ref **out,
                            size_t *n, uint8_t **open_copy);
/* The series' histogram samples in [mint, maxt], everything allocated from a. */
int head_hist_read(head *h, series *s, int64_t mint, int64_t maxt, arena *a, hist_sample **out,
                   size_t *n);
/* Block cutting (head_truncate.c): head_cut_open_locked closes the open chunk (stripe lock
 * held); head_series_free frees a series no longer reachable from the head. */
int head_cut_open_locked(head *h, series *s);
void head_series_free(series *s);

/* ---- postings index ------------------------------------------------------------------------ */

/* A postings index over labels interned in syms (which it reads, never owns). */
postings_index *postings_new(sym_table *syms);
void postings_free(postings_index *p);
int postings_add(postings_index *p, uint32_t ref, const label *labels, size_t n);
/* Series refs matching all matchers; the caller owns *out (roaring_bitmap_free). */
int postings_select(postings_index *p, const matcher *const *ms, size_t n, roaring_bitmap_t **out,
                    char *err);
/* Sorted distinct label names, or values of one name; strings are interned (owned by the head). */
int postings_label_names(postings_index *p, const sym ***out, size_t *n);
/* Calls visit for every label pair with its series count, under the index's read lock (visit
 * must not call back into the index). A non-zero return stops the walk and is returned. */
typedef int (*postings_visit)(void *ctx, const char *name, uint32_t nlen, const char *value,
                              uint32_t vlen, uint64_t series);
int postings_walk(postings_index *p, postings_visit visit, void *ctx);

/* Removes ref from the postings of its labels (interned) and from the all-series list. */
void postings_remove(postings_index *p, uint32_t ref, const label *labels, size_t n);

/* Series with the label name=value (0 if none): the per-metric series count. */
uint64_t postings_count(postings_index *p, const char *name, uint32_t nlen, const char *value,
                        uint32_t vlen);
int postings_label_values(postings_index *p, const char *name, const sym ***out, size_t *n);

/* ---- write-ahead log ----------------------------------------------------------------------- */

enum {
    WAL_REC_SERIES = 1,
    WAL_REC_SAMPLES = 2,
    WAL_REC_HISTOGRAMS = 3, /* head_hist.c: (ref delta, t delta, encoded histogram)... */
    WAL_REC_EXEMPLARS = 10, /* exemplars.c: series labels, exemplar labels, t, v per entry */
};

typedef struct wal wal;

typedef struct wal_replay_handlers {
    void *ctx;
    int (*series)(void *ctx, uint32_t ref, label *labels, size_t n, char *err);
    int (*sample)(void *ctx, uint32_t ref, int64_t t, double v, char *err);
    int (*histogram)(void *ctx, uint32_t ref, int64_t t, const native_histogram *h, char *err);
    /* The payload of an exemplar record, whole; NULL skips such records. */
    int (*exemplars)(void *ctx, const uint8_t *payload, size_t len, char *err);
    /* Called before the records of each segment are replayed (seq 0: the checkpoint), so the
     * handlers can skip what blocks already hold. May be NULL. */
    void (*segment)(void *ctx, uint32_t seq);
} wal_replay_handlers;

/* Opens the WAL in dir (created if missing), replays every record into h, truncating a torn
 * tail, and starts a new segment for writing. */
int wal_open(const char *dir, const strata_options *opts, const wal_replay_handlers *h, wal **out,
             char *err);
void wal_close(wal *w);
/* Appends encoded records (already framed) under the caller's commit lock; returns the WAL
 * position after them for wal_sync_to. */
int wal_write(wal *w, const uint8_t *data, size_t len, uint64_t *pos, char *err);
/* Makes sure everything up to pos is on stable storage per the fsync policy (group commit). */
int wal_sync_to(wal *w, uint64_t pos, char *err);
int wal_sync_all(wal *w, char *err);

/* Histogram records (head_hist.c): appends one entry to a WAL_REC_HISTOGRAMS payload; replays
 * a payload through h->histogram. */
int hist_record_put(buf *b, int64_t dref, int64_t dt, const native_histogram *h);
int wal_replay_histograms(const uint8_t *p, const uint8_t *end, const wal_replay_handlers *h,
                          char *err);
/* Ends the current segment (made durable first) and starts the next: every record written
 * before the call lies in segments below *next_segment. Caller holds the commit lock. */
int wal_cut(wal *w, uint32_t *next_segment, char *err);
/* Writes records (framed with wal_frame: the SERIES records of the head's series and the
 * SAMPLES still in the head from before the segment) as checkpoint.<segment>, atomically, then
 * removes the segments below segment and older checkpoints: replay starts from the newest
 * checkpoint and ignores segments below its number. */
int wal_checkpoint(wal *w, uint32_t segment, const uint8_t *records, size_t len, char *err);
/* The number of the newest complete checkpoint in the WAL directory dir; 0 if none. */
uint32_t wal_newest_checkpoint(const char *dir);

/* A SERIES record's payload for s (db.c), for the WAL and its checkpoints. */
int encode_series_record(buf *b, const series *s);

/* Framing: appends one record (type, payload) to b with its header and CRC. */
int wal_frame(buf *b, uint8_t type, const uint8_t *payload, size_t len);

typedef struct wal_stats {
    uint64_t segments;
    uint64_t bytes;
    uint64_t fsyncs;
    uint64_t records_replayed;
    uint64_t torn_tails;
} wal_stats;
void wal_get_stats(wal *w, wal_stats *st);

/* ---- the database handle ------------------------------------------------------------------- */

struct strata_db {
    char *path;
    strata_options opts;
    head head;
    wal *wal;
    pthread_mutex_t commit_mu;
    _Atomic uint64_t rejected_out_of_order;
    _Atomic uint64_t rejected_conflict;
    _Atomic uint64_t duplicates;
    _Atomic uint64_t rejected_too_old;
    _Atomic uint64_t rejected_future;
    _Atomic uint64_t rejected_series_limit;
    _Atomic uint64_t rejected_label_limit; /* writes refused for a label limit */
    int lock_fd; /* flock on the data directory: one process per directory */
    struct exemplar_store *exemplars; /* exemplars.c */
    struct db_blocks *blocks; /* persistent blocks and head truncation (db_blocks.c) */
};

/* ---- exemplars (exemplars.c) ---------------------------------------------------------------- */

typedef struct exemplar_store exemplar_store;

/* A store of capacity entries (0: a store that refuses everything); NULL on ENOMEM. */
exemplar_store *exemplar_store_new(uint32_t capacity);
void exemplar_store_free(exemplar_store *s);
/* The WAL replay handler of WAL_REC_EXEMPLARS records; ctx is the strata_db. */
int exemplars_replay(void *ctx, const uint8_t *payload, size_t len, char *err);
/* Appends every stored exemplar, oldest first, to records as framed WAL_REC_EXEMPLARS records:
 * the WAL checkpoint keeps them when their segments go. 0 or STRATA_ENOMEM. */
int exemplars_checkpoint(exemplar_store *s, buf *records);

#endif
