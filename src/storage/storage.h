/*
 * storage.h: the public face of the storage module inside Strata (the seed's StorageImpl).
 *
 * The strata_db handle itself is declared in include/strata.h; this header adds what the other
 * modules of the program need: the write path used by ingest (already-decoded label slices, no
 * copies), the querier the PromQL engine reads through (so head, blocks and cold tiers look alike
 * to it), and statistics for /metrics.
 */
#ifndef STRATA_STORAGE_H
#define STRATA_STORAGE_H

#include "core/core.h"
#include "strata.h"

/* ---- writing ------------------------------------------------------------------------------ */

/* One series of a write batch, labels as slices into the caller's buffers. */
typedef struct write_series {
    label *labels; /* normalized in place by db_write */
    size_t n_labels;
    const strata_sample *samples;
    size_t n_samples;
} write_series;

/* The first rejected sample of a write, for the message a sender reads. */
typedef struct write_reject {
    int code; /* STRATA_EOUTOFORDER, STRATA_EDUPLICATE or STRATA_ELIMIT; 0 if none */
    const char *reason; /* for STRATA_ELIMIT: which limit */
    char series[256];
    int64_t t;
    int64_t newest_t;
} write_reject;

/*
 * The write path behind strata_write and remote write: validates every label set (rules from the
 * db options, sortedness required when require_sorted), then appends each sample to the head and
 * the WAL. A label error rejects the whole batch (STRATA_EINVAL, nothing stored). Out-of-order and
 * conflicting samples are skipped and counted; the rest are stored and durable per the fsync
 * policy on return. res and rej may be NULL.
 */
int db_write(strata_db *db, write_series *series, size_t n, bool require_sorted,
             strata_write_result *res, write_reject *rej, char *err);

/*
 * Cuts everything in the head into durable blocks (one per block-range window), then drops the
 * flushed chunks from the head and checkpoints the WAL. Returns when the blocks are on disk.
 * Writes and queries go on meanwhile, except for a short exclusive step that publishes the
 * blocks and truncates the head. 0 when the head was empty too.
 */
int db_flush_head(strata_db *db, char *err);

/* A block's identity, range and statistics (from its meta.json) and size on disk. */
typedef struct block_info {
    char ulid[27];
    int64_t mint, maxt; /* maxt exclusive */
    uint64_t num_series, num_samples, num_chunks;
    uint32_t level;
    uint32_t wal_segment;  /* 0 when the block did not come from Strata's head */
    uint32_t flush_blocks; /* blocks written by the same flush */
    int64_t cut_time;      /* that flush took every head sample before this */
    uint64_t bytes;        /* index + chunks + tombstones on disk */
} block_info;

/* A copy of every open block's info, sorted by mint; *out is malloc'd (the caller frees it). */
int db_blocks_list(strata_db *db, block_info **out, size_t *n);
/* Totals over the open blocks and the counters of the block machinery, for /metrics. */
typedef struct db_block_stats {
    uint64_t blocks, bytes, samples;
    int64_t min_time, max_time; /* INT64_MAX / INT64_MIN without blocks; max exclusive */
    uint64_t flushes, flush_failures;
    uint64_t compactions, compaction_failures;
    uint64_t retention_deleted;
} db_block_stats;
void db_blocks_stats(strata_db *db, db_block_stats *st);

/* Reads every series and chunk of every block and checks every checksum: for `strata inspect`.
 * 0, or the first error (STRATA_ECORRUPT with the block, file and offset) in err. */
int db_blocks_verify(strata_db *db, char *err);

/* Deletes the samples in [mint, maxt] of the series matching every matcher (at least one), as
 * Prometheus' delete_series does: the head is flushed into blocks, then the blocks get
 * tombstones, which reads apply at once and compaction (or db_clean_tombstones) makes final. */
int db_delete_series(strata_db *db, const matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
                     char *err);
/* Rewrites every block that has tombstones without the deleted samples. */
int db_clean_tombstones(strata_db *db, char *err);

/* ---- reading ------------------------------------------------------------------------------ */

/* A set of series, each with its samples in the requested range, in label order. The set owns
 * everything it hands out; pointers stay valid until the next call to series_set_next. */
typedef struct series_set series_set;

/*
 * Selects the series matching every matcher that have samples in [mint, maxt]. The matchers stay
 * owned by the caller. At least one matcher must not match the empty string (otherwise every
 * series would match: STRATA_EINVAL, as Prometheus refuses `{foo=""}`). On success *out is owned
 * by the caller and freed with series_set_free.
 */
int db_select(strata_db *db, const matcher *const *matchers, size_t n, int64_t mint, int64_t maxt,
              series_set **out, char *err);

/* As db_select, but only the label sets (no samples are decoded): for /api/v1/series. */
int db_select_labels_only(strata_db *db, const matcher *const *matchers, size_t n, int64_t mint,
                          int64_t maxt, series_set **out, char *err);

/* Returns 1 and the next series (labels sorted; samples in time order, possibly none for a
 * labels-only set), 0 at the end. */
int series_set_next(series_set *s, const label **labels, size_t *n_labels,
                    const strata_sample **samples, size_t *n_samples);
size_t series_set_count(const series_set *s);

/* Random access for parallel readers (any number of threads at once): the i-th series' labels,
 * and its samples in range decoded into *out (grown with realloc as needed; the caller owns and
 * frees it). Returns 1 when the series has samples in range, 0 when not, or a negative error. */
int series_set_read(const series_set *s, size_t i, const label **labels, size_t *n_labels,
                    strata_sample **out, size_t *cap, size_t *n);
void series_set_free(series_set *s);

/* Label names (or the values of one name), sorted and distinct, of series matching the matchers
 * (all series when n == 0) with samples in [mint, maxt]. *out is an array of *n NUL-terminated
 * strings the caller frees with db_strings_free. */
int db_label_names(strata_db *db, const matcher *const *matchers, size_t n, int64_t mint,
                   int64_t maxt, char ***out, size_t *count, char *err);
int db_label_values(strata_db *db, const char *name, const matcher *const *matchers, size_t n,
                    int64_t mint, int64_t maxt, char ***out, size_t *count, char *err);
void db_strings_free(char **v, size_t n);

/* ---- statistics --------------------------------------------------------------------------- */

typedef struct db_stats {
    uint64_t series;
    uint64_t samples_appended; /* since open, replay included */
    uint64_t head_chunks;
    uint64_t head_chunk_bytes;
    uint64_t head_chunk_samples; /* samples inside the full chunks */
    int64_t min_time;          /* INT64_MAX when empty */
    int64_t max_time;          /* INT64_MIN when empty */
    uint64_t symbols;
    uint64_t symbol_bytes;
    uint64_t wal_segments;
    uint64_t wal_bytes;
    uint64_t wal_fsyncs;
    uint64_t wal_records_replayed;
    uint64_t wal_torn_tails;
    uint64_t samples_out_of_order;
    uint64_t samples_conflict;
    uint64_t samples_duplicate;
    uint64_t samples_too_old;
    uint64_t samples_too_far_future;
    uint64_t samples_series_limit;
    uint64_t writes_label_limit;
} db_stats;

void db_get_stats(strata_db *db, db_stats *st);

/* Cardinality statistics, as Prometheus' /api/v1/status/tsdb reports them: the top `limit`
 * entries of each list, by count, descending. Strings are copies the caller frees with
 * db_tsdb_status_free. */
typedef struct db_card {
    char *name;
    uint64_t count;
} db_card;

typedef struct db_tsdb_status {
    uint64_t num_series;
    uint64_t num_label_pairs;
    uint64_t chunk_count;
    int64_t min_time, max_time;
    db_card *series_by_metric; /* series per metric name */
    size_t n_series_by_metric;
    db_card *values_by_label;  /* distinct values per label name */
    size_t n_values_by_label;
    db_card *bytes_by_label;   /* bytes of all values per label name */
    size_t n_bytes_by_label;
    db_card *series_by_pair;   /* series per name=value pair */
    size_t n_series_by_pair;
} db_tsdb_status;

int db_tsdb_status_get(strata_db *db, size_t limit, db_tsdb_status *out, char *err);
void db_tsdb_status_free(db_tsdb_status *s);

#endif
