/*
 * strata.h: the embeddable C API of Strata, a Prometheus-compatible time-series database.
 *
 * The model is SQLite's: one opaque handle (strata_db) per data directory, functions that return
 * an int status (0 on success, a negative STRATA_E* code on failure) and hand results back through
 * out-parameters, and an optional caller-provided error buffer of at least STRATA_ERRMSG_SIZE bytes
 * that receives a sentence a user can act on. Every object the library returns has exactly one
 * owner, named in the comment of the function that returns it, and a matching free function.
 *
 * Thread safety: a strata_db may be used from any number of threads at once.
 */
#ifndef STRATA_H
#define STRATA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION "0.1.0"
#define STRATA_ERRMSG_SIZE 512

/* Status codes. 0 is success; every error is negative. */
enum {
    STRATA_OK = 0,
    STRATA_EINVAL = -1,      /* invalid argument or input (bad labels, bad request) */
    STRATA_ENOMEM = -2,      /* allocation failed */
    STRATA_EIO = -3,         /* a read, write, fsync or rename failed */
    STRATA_ENOTFOUND = -4,   /* no such series, file or object */
    STRATA_EOUTOFORDER = -5, /* sample older than the newest one of its series */
    STRATA_EDUPLICATE = -6,  /* same timestamp as the newest sample, different value */
    STRATA_ECORRUPT = -7,    /* on-disk data failed a checksum or is malformed */
    STRATA_ELIMIT = -8,      /* a configured limit was hit */
    STRATA_ETIMEOUT = -9,    /* a deadline passed */
    STRATA_EPARSE = -10,     /* unparsable text (PromQL, exposition format, ...) */
    STRATA_EUNSUPPORTED = -11, /* valid input that this version does not implement */
    STRATA_ECLOSED = -12,    /* the database is closing or closed */
    STRATA_EEXEC = -13,      /* a query failed while executing (type or matching error) */
};

/* The name of a status code, e.g. "STRATA_EINVAL". Static storage; never NULL. */
const char *strata_strerror(int status);

typedef struct strata_db strata_db;

/* A label: NUL-terminated UTF-8 name and value. */
typedef struct strata_label {
    const char *name;
    const char *value;
} strata_label;

/* A float sample: milliseconds since the Unix epoch and a value. Every bit pattern of the double
 * is kept exactly, including Prometheus' staleness marker NaN 0x7ff0000000000002. */
typedef struct strata_sample {
    int64_t t;
    double v;
} strata_sample;

/* One series to write: its labels (any order; they are sorted on the way in) and its samples in
 * increasing timestamp order. */
typedef struct strata_series {
    const strata_label *labels;
    size_t n_labels;
    const strata_sample *samples;
    size_t n_samples;
} strata_series;

typedef enum strata_match_type {
    STRATA_MATCH_EQUAL = 0,     /* name = "value" */
    STRATA_MATCH_NOT_EQUAL = 1, /* name != "value" */
    STRATA_MATCH_REGEX = 2,     /* name =~ "re", fully anchored */
    STRATA_MATCH_NOT_REGEX = 3, /* name !~ "re", fully anchored */
} strata_match_type;

typedef struct strata_matcher {
    strata_match_type type;
    const char *name;
    const char *value;
} strata_matcher;

/* When the write-ahead log is forced to stable storage. */
typedef enum strata_fsync_policy {
    /* Every write is fsynced before it is acknowledged. Concurrent writers share one fsync
     * (group commit), so throughput scales with concurrency. Survives power loss. */
    STRATA_FSYNC_ALWAYS = 0,
    /* Group commit every fsync_interval_ms: a background thread fsyncs on that clock and each
     * write is acknowledged once the fsync covering it is done. Durable like ALWAYS, with fewer
     * fsyncs and up to one interval of extra latency. */
    STRATA_FSYNC_INTERVAL = 1,
    /* Never fsync: the page cache decides. Survives a process crash, not a power loss. */
    STRATA_FSYNC_NONE = 2,
} strata_fsync_policy;

typedef enum strata_name_validation {
    STRATA_NAMES_UTF8 = 0,   /* Prometheus 3.x default: any non-empty valid UTF-8 name */
    STRATA_NAMES_LEGACY = 1, /* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, no ':' in label names */
} strata_name_validation;

typedef struct strata_options {
    strata_fsync_policy fsync;
    uint32_t fsync_interval_ms;        /* for STRATA_FSYNC_INTERVAL; default 1000 */
    uint64_t wal_segment_bytes;        /* WAL segment size; default 128 MiB */
    uint32_t max_samples_per_chunk;    /* head chunk cut; default 120 */
    int64_t chunk_range_ms;            /* a chunk never spans more than this; default 2 h */
    strata_name_validation names;      /* default STRATA_NAMES_UTF8 */
    /* Validation limits on writes; 0 turns a limit off. A label limit rejects the whole write
     * (like any invalid label set); the others skip the offending samples and count them. */
    uint32_t max_labels_per_series;    /* default 64 */
    uint32_t max_label_name_bytes;     /* default 1024 */
    uint32_t max_label_value_bytes;    /* default 16384 */
    uint64_t max_series;               /* series in the database; default 0 (off) */
    uint64_t max_series_per_metric;    /* series of one metric name; default 0 (off) */
    int64_t max_sample_age_ms;         /* older than wall clock minus this; default 0 (off) */
    int64_t max_sample_future_ms;      /* newer than wall clock plus this; default 0 (off) */
    uint32_t max_exemplars;            /* exemplars kept in memory (a circular buffer); default
                                        * 100000, 0 turns exemplar storage off */
    int read_only;                     /* open without a WAL writer (tools) */
    /* Retention of blocks: a block is deleted once all of it is older than the newest sample
     * minus retention_ms, and the oldest blocks go while blocks take more than retention_bytes.
     * 0 turns either off (the default). chunk_range_ms above is also the block range. */
    int64_t retention_ms;
    uint64_t retention_bytes;
    /* The cold tier: blocks wholly older than the newest sample minus cold_after_ms move to
     * cold_dir (NULL: no cold tier; borrowed, copied at open), their float chunks re-encoded as
     * adaptive chunks and their chunk files zstd-compressed. Default cold_after_ms: 7 days. */
    const char *cold_dir;
    int64_t cold_after_ms;
    /* Nonzero: flush and compaction write adaptive chunks (encoding 0x40) in warm blocks instead
     * of XOR (which Prometheus' tools read); default 0. */
    int warm_codec_adaptive;
} strata_options;

/* Fills opts with the defaults above. */
void strata_options_init(strata_options *opts);

/* Opens (creating if needed) the database in directory path and replays its write-ahead log.
 * opts may be NULL for the defaults. On success *out is a handle the caller owns and releases
 * with strata_close. */
int strata_open(const char *path, const strata_options *opts, strata_db **out, char *err);

/* Flushes and closes the database and frees the handle. NULL is allowed. */
void strata_close(strata_db *db);

/* What a write did. Samples that were rejected are counted by reason; the first rejection is
 * described in the error buffer. */
typedef struct strata_write_result {
    uint64_t samples_written;
    uint64_t samples_duplicate;    /* identical (t, v) already stored: accepted, not stored twice */
    uint64_t samples_out_of_order; /* older than the newest sample of the series */
    uint64_t samples_conflict;     /* same timestamp as the newest sample, different value */
    uint64_t samples_too_old;      /* older than max_sample_age_ms */
    uint64_t samples_too_far_future; /* beyond max_sample_future_ms */
    uint64_t samples_series_limit; /* their series would exceed max_series(_per_metric) */
    uint64_t series_created;
    uint64_t histograms_written; /* native-histogram samples stored (internal write path) */
} strata_write_result;

/*
 * Writes series. Labels are validated first: one invalid label set (bad name, invalid UTF-8,
 * duplicate name, no labels, over a label limit) rejects the whole call with STRATA_EINVAL and
 * nothing is stored. Then every sample is stored unless it is out of order, conflicts with the
 * stored one, is outside the age limits, or belongs to a new series over a series limit; those are
 * skipped and counted in *res (which may be NULL), and the call returns STRATA_EOUTOFORDER,
 * STRATA_EDUPLICATE or STRATA_ELIMIT after storing all the valid samples, as Prometheus'
 * remote-write receiver does. Stored samples are in the write-ahead log (and fsynced, per the policy) on return.
 */
int strata_write(strata_db *db, const strata_series *series, size_t n, strata_write_result *res,
                 char *err);

/* Reads the samples of the series with exactly these labels in [mint, maxt]. On success
 * *samples is an array of *n samples in time order that the caller frees with free(); it is
 * NULL with *n = 0 when the series has no samples there. STRATA_ENOTFOUND if no such series. */
int strata_read(strata_db *db, const strata_label *labels, size_t n_labels, int64_t mint,
                int64_t maxt, strata_sample **samples, size_t *n, char *err);

/* A set of series chosen by matchers, each with its samples in a time range. */
typedef struct strata_series_set strata_series_set;

/* Selects the series matching all matchers that have samples in [mint, maxt]. At least one
 * matcher must not match the empty string. On success *out is a set the caller owns and frees
 * with strata_series_set_free. Series come in label order. */
int strata_select(strata_db *db, const strata_matcher *matchers, size_t n_matchers, int64_t mint,
                  int64_t maxt, strata_series_set **out, char *err);

/* Advances to the next series. Returns 1 and fills the out-parameters (valid until the next call
 * or until the set is freed; the set owns them), 0 at the end. */
int strata_series_set_next(strata_series_set *set, const strata_label **labels, size_t *n_labels,
                           const strata_sample **samples, size_t *n_samples);

void strata_series_set_free(strata_series_set *set);

/* Evaluates a PromQL expression at time_ms (instant query) and renders the result as the JSON
 * "data" object of Prometheus' /api/v1/query. On success *json is a NUL-terminated string the
 * caller frees with free(). */
int strata_query(strata_db *db, const char *promql, int64_t time_ms, char **json, char *err);

/* As strata_query for a range query: [start_ms, end_ms] every step_ms, /api/v1/query_range's
 * "data" object. */
int strata_query_range(strata_db *db, const char *promql, int64_t start_ms, int64_t end_ms,
                       int64_t step_ms, char **json, char *err);

/* Writes a human-readable summary of the database (series, samples, chunks, WAL) into buf,
 * truncated to len bytes including the NUL. */
int strata_stats(strata_db *db, char *buf, size_t len);

/* Forces everything written so far to stable storage. */
int strata_flush(strata_db *db, char *err);

#ifdef __cplusplus
}
#endif
#endif
