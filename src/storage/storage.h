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
    /* Native-histogram samples of the same series, in time order; the histograms' arrays belong
     * to the caller. A series may hold floats at some times and histograms at others. */
    const hist_sample *histograms;
    size_t n_histograms;
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
 * db options, sortedness required when require_sorted) and every native histogram
 * (native_histogram_validate), then appends each sample to the head and the WAL. A label or
 * histogram error rejects the whole batch (STRATA_EINVAL, nothing stored). Out-of-order and
 * conflicting samples are skipped and counted; the rest are stored and durable per the fsync
 * policy on return. Histogram samples follow the float rules: a series has one newest timestamp
 * over both kinds, so a histogram older than the series' newest float (or the reverse) is out of
 * order, and a float and a histogram at the same timestamp conflict. Within one series the floats
 * are appended before the histograms. Rejected histograms are counted in the samples_* fields of
 * res; stored ones in res->histograms_written. res and rej may be NULL.
 */
int db_write(strata_db *db, write_series *series, size_t n, bool require_sorted,
             strata_write_result *res, write_reject *rej, char *err);

/* Prometheus' staleness marker, as the bits of a float sample's value or a histogram's sum. */
#define STRATA_STALE_NAN_BITS 0x7ff0000000000002ull

/* Whether h is a staleness marker: its sum is the stale NaN (bit for bit). */
bool native_histogram_is_stale(const native_histogram *h);

/*
 * Checks a histogram as Prometheus does before storing it: schema -4..8, or -53 (custom buckets)
 * with custom_values strictly ascending, finite, and no negative side, zero bucket or spans past
 * the bounds; span lengths adding up to the bucket counts and no negative offset after the first
 * span; counts, zero count and buckets non-negative and finite (whole numbers when is_int); for
 * is_int the count equal to the sum of the buckets (at least that sum when sum is NaN); zero
 * threshold non-negative and finite. A staleness marker passes. 0, or STRATA_EINVAL with the
 * reason in err ("positive side: spans need 3 buckets, have 2").
 */
int native_histogram_validate(const native_histogram *h, char *err);

/* Whether two histograms are the same bit for bit: every field, span, bucket and bound (NaN
 * payloads included). For tests and the decoder fuzzers. */
bool native_histogram_identical(const native_histogram *a, const native_histogram *b);
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
    bool cold;             /* in the cold directory (--cold-dir), chunks zstd-compressed */
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

/* One storage tier's totals (warm: blocks in the data directory; cold: in --cold-dir). */
typedef struct db_tier_stats {
    uint64_t blocks, bytes, samples, series, chunks;
    uint64_t demotions, demotion_failures; /* cold only: blocks moved there since open */
} db_tier_stats;
void db_tiers_stats(strata_db *db, db_tier_stats *warm, db_tier_stats *cold);
/* What the adaptive chunk's selector chose for every chunk written since open (warm opt-in and
 * cold demotion); *out is a copy. */
struct stc_stats;
void db_codec_stats(strata_db *db, struct stc_stats *out);

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
 * labels-only set), 0 at the end. When samples are decoded, a series whose samples in range are
 * all native histograms is skipped: readers that want histograms use series_set_read and
 * series_set_read_histograms by index. */
int series_set_next(series_set *s, const label **labels, size_t *n_labels,
                    const strata_sample **samples, size_t *n_samples);
size_t series_set_count(const series_set *s);

/* Random access for parallel readers (any number of threads at once): the i-th series' labels,
 * and its samples in range decoded into *out (grown with realloc as needed; the caller owns and
 * frees it). Returns 1 when the series has samples in range, 0 when not, or a negative error. */
int series_set_read(const series_set *s, size_t i, const label **labels, size_t *n_labels,
                    strata_sample **out, size_t *cap, size_t *n);

/* The histogram samples of the i-th series in [mint, maxt] of the set, in time order. Every byte
 * of the result (the array, spans, buckets, custom values) is allocated from a, so it lives as
 * long as the arena. Safe from any number of threads at once (each with its own arena). Returns 1
 * when the series has histogram samples in range, 0 when not (*out NULL, *n 0; a labels-only
 * set always gives 0), or a negative error (STRATA_ENOMEM, STRATA_ECORRUPT). */
int series_set_read_histograms(const series_set *s, size_t i, arena *a, hist_sample **out,
                               size_t *n);
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

/* ---- exemplars ---------------------------------------------------------------------------- */
/*
 * Exemplars (a sample's example trace: labels such as trace_id, a value, a timestamp) live in a
 * bounded in-memory store per database (exemplars.c): one circular buffer of
 * strata_options.max_exemplars entries (default 100000, as Prometheus' storage.exemplars
 * max_exemplars; 0 turns the store off), the oldest overwritten first, so memory stays bounded
 * whatever the senders do. Each accepted exemplar is also a WAL record (type 10), so a restart
 * keeps them. Rules, as Prometheus' exemplar storage:
 *  - the series must exist in the head (write its samples first);
 *  - the exemplar's label names plus values are at most EXEMPLAR_MAX_LABEL_RUNES code points,
 *    names non-empty and distinct, everything valid UTF-8;
 *  - per series, timestamps only move forward: an exemplar older than the series' newest one is
 *    out of order; the same timestamp with the same value and labels is a duplicate (accepted,
 *    stored once), with anything else it is out of order;
 *  - the timestamp is inside the db's max sample age/future window when those are set.
 * A rejected exemplar never fails the write of its samples: it is counted and the first reason
 * reported in the result, and the caller decides what the sender sees.
 */

#define EXEMPLAR_MAX_LABEL_RUNES 128

typedef struct write_exemplar {
    const label *series; /* the series' labels, canonical (as db_write leaves them) */
    size_t n_series;
    const label *labels; /* the exemplar's own labels, any order */
    size_t n_labels;
    int64_t t;
    double v;
} write_exemplar;

typedef struct exemplar_write_result {
    uint64_t written;
    uint64_t duplicate;     /* identical to the series' newest exemplar: not stored twice */
    uint64_t out_of_order;  /* older than the series' newest exemplar */
    uint64_t invalid;       /* labels too long or malformed, unknown series, out of time bounds */
    uint64_t disabled;      /* dropped because the store is off (max_exemplars 0) */
    char first_reason[256]; /* why the first exemplar was rejected; empty when none was */
} exemplar_write_result;

/* Validates and stores exemplars (in order), appending the accepted ones to the WAL. Returns 0
 * (rejections are counted in res, which is required), or STRATA_ENOMEM / STRATA_EIO /
 * STRATA_ECLOSED with err when the store or the WAL failed. */
int db_write_exemplars(strata_db *db, const write_exemplar *ex, size_t n,
                       exemplar_write_result *res, char *err);

/* Exemplars of the series matching any of the selector sets, with timestamps in [start, end]. */
typedef struct exemplar_point {
    label *labels; /* sorted by name */
    size_t n_labels;
    int64_t t;
    double v;
} exemplar_point;

typedef struct exemplar_series {
    label *series; /* the series' labels, sorted */
    size_t n_series;
    exemplar_point *points; /* oldest first */
    size_t n_points;
} exemplar_series;

typedef struct exemplar_query_result {
    exemplar_series *series; /* in label order; only series with at least one exemplar */
    size_t n_series;
    arena mem; /* owns everything above */
} exemplar_query_result;

/* sets[i] is an array of counts[i] matchers (owned by the caller); a series matches a set when
 * every matcher of the set matches it. *out is filled (the caller frees it with
 * exemplar_query_result_free, also after an error). */
int db_query_exemplars(strata_db *db, const matcher *const *const *sets, const size_t *counts,
                       size_t n_sets, int64_t start, int64_t end, exemplar_query_result *out,
                       char *err);
void exemplar_query_result_free(exemplar_query_result *r);

typedef struct exemplar_stats {
    uint64_t capacity;      /* max_exemplars */
    uint64_t stored;        /* exemplars in the store now */
    uint64_t series;        /* series with at least one exemplar in the store */
    uint64_t appended;      /* accepted since open (WAL replay included) */
    uint64_t out_of_order;  /* rejected as out of order since open */
    uint64_t invalid;       /* rejected as invalid since open */
    int64_t last_timestamp; /* of the newest exemplar added, INT64_MIN when none */
} exemplar_stats;

void db_get_exemplar_stats(strata_db *db, exemplar_stats *st);

#endif
