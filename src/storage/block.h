/*
 * block.h: persistent blocks, the storage module's warm tier (internal to src/storage).
 *
 * A block is an immutable directory named by a ULID covering one time range, in Prometheus'
 * layout so that Prometheus' tools read ours and we read theirs (docs/format.md, "Blocks"):
 *
 *     <ulid>/meta.json        identity, time range [minTime, maxTime), statistics, compaction
 *     <ulid>/index            index format v2: symbols, series with chunk refs, postings, TOC
 *     <ulid>/chunks/000001    chunk segment files (at most 512 MiB each)
 *     <ulid>/tombstones       deletions (written empty by this version)
 *
 * Writers build the directory as <ulid>.tmp, fsync every file and the directory, rename it into
 * place and fsync the parent, so a crash leaves either nothing (a .tmp that the next open
 * removes) or a whole block. Readers memory-map index and chunk files, check the CRC32C of every
 * section they use and answer STRATA_ECORRUPT with the file, section and offset on damage.
 */
#ifndef STRATA_BLOCK_H
#define STRATA_BLOCK_H

#include "core/core.h"
#include "storage/storage.h"

#include <pthread.h>
#include <roaring/roaring.h>
#include <stdatomic.h>

#define BLOCK_ULID_LEN 26
#define BLOCK_INDEX_MAGIC 0xBAAAD700u
#define BLOCK_INDEX_V2 2
#define BLOCK_CHUNKS_MAGIC 0x85BD40DDu
#define BLOCK_TOMBSTONES_MAGIC 0x0130BA30u
#define BLOCK_SEGMENT_MAX (512u << 20)
/* A chunk segment compressed for the cold tier (docs/format.md, "Cold chunk segment"). */
#define BLOCK_COLD_MAGIC 0x5354435Au /* "STCZ" */

/* ---- writing -------------------------------------------------------------------------------- */

/* One chunk handed to the writer; the bytes stay owned by the caller. */
typedef struct block_chunk_in {
    int64_t mint, maxt; /* first and last sample time */
    uint8_t encoding;   /* chunk_encoding id */
    const uint8_t *data;
    uint32_t len;
    uint32_t samples;
} block_chunk_in;

/* One series: labels sorted (canonical), chunks in time order and not overlapping. */
typedef struct block_series_in {
    const label *labels;
    uint32_t n_labels;
    const block_chunk_in *chunks;
    size_t n_chunks;
} block_series_in;

typedef struct block_write_opts {
    int64_t mint, maxt; /* meta.json range: maxt is exclusive, as Prometheus reads it */
    uint32_t level;     /* compaction level: 1 for blocks cut from the head */
    const char (*sources)[BLOCK_ULID_LEN + 1]; /* NULL: the block is its own source */
    size_t n_sources;
    const char (*parents)[BLOCK_ULID_LEN + 1]; /* blocks this one was compacted from */
    size_t n_parents;
    /* Strata's extension, for blocks cut from the head: every block of one flush carries the
     * WAL segment N that flush cut (samples below N are in blocks) and the number of blocks the
     * flush wrote, so an open can tell a complete flush from one a crash interrupted. */
    uint32_t wal_segment;
    uint32_t flush_blocks;
    int64_t cut_time; /* the flush took every sample before this (INT64_MAX: all of the head) */
} block_write_opts;

/*
 * Writes series (sorted by labels, strictly ascending; STRATA_EINVAL otherwise) as a new block
 * under parent_dir with the crash-safe protocol above. On success ulid receives the block's name
 * (NUL-terminated) and the block is durable. On failure the .tmp directory is removed.
 */
int block_write(const char *parent_dir, const block_series_in *series, size_t n,
                const block_write_opts *o, char ulid[BLOCK_ULID_LEN + 1], char *err);

/* A new ULID for time ms (48-bit time, 80 random bits, Crockford base32). */
int block_ulid_new(int64_t ms, char out[BLOCK_ULID_LEN + 1]);

/* Fault injection for crash tests: when the environment variable STRATA_CRASH_POINT equals
 * point, the process kills itself with SIGKILL here (as a power cut or kill -9 would). */
void storage_crash_point(const char *point);

/* fsync of a directory (for renames and new entries to survive a crash). */
int storage_fsync_dir(const char *dir);

/* ---- reading -------------------------------------------------------------------------------- */

typedef struct block block;

typedef struct block_chunk_meta {
    int64_t mint, maxt;
    uint64_t ref; /* segment index << 32 | offset of the chunk in that segment */
} block_chunk_meta;

/* block_info (ULID, range, statistics, size) is declared in storage.h for the server and CLI. */

/*
 * Opens the block in dir: reads meta.json, maps index and chunk segments, checks the index TOC,
 * symbol table and postings offset table checksums. Symbols are interned into syms (borrowed;
 * it must outlive the block), so labels read from the block are NUL-terminated interned strings
 * that compare by pointer with the head's. *out is owned by the caller (block_close).
 */
int block_open(const char *dir, sym_table *syms, block **out, char *err);
void block_close(block *b);
const block_info *block_get_info(const block *b);
/* Marks a block opened from the cold directory (block_info.cold). */
void block_mark_cold(block *b);
const char *block_dir(const block *b);
/* The ULIDs of the blocks this one was compacted from (meta.json compaction.parents). */
const char (*block_parents(const block *b, size_t *n))[BLOCK_ULID_LEN + 1];

/* Series ids (index offsets / 16, ascending = label order) matching every matcher; n == 0 selects
 * all series. *out is owned by the caller (roaring_bitmap_free). */
int block_select(block *b, const matcher *const *ms, size_t n, roaring_bitmap_t **out, char *err);

/* The labels and chunk metas of series id. *labels and *chunks are malloc'd arrays the caller
 * frees; label strings are interned (owned by the sym_table). */
int block_series(block *b, uint32_t id, label **labels, uint32_t *n_labels,
                 block_chunk_meta **chunks, size_t *n_chunks, char *err);

/* The chunk at ref, its checksum verified: *data points into the mapping (valid until
 * block_close). */
int block_chunk(block *b, uint64_t ref, uint8_t *encoding, const uint8_t **data, uint32_t *len,
                char *err);

/* Sorted distinct label names, or values of one name, as interned symbols; *out is malloc'd. */
int block_label_names(block *b, const sym ***out, size_t *n);
int block_label_values(block *b, const char *name, const sym ***out, size_t *n);

/* Deleted time ranges (inclusive) of one series: the block's tombstones. */
typedef struct block_tombstone {
    uint32_t id;
    int64_t mint, maxt;
} block_tombstone;

/* The tombstones of series id, sorted by mint (pointer into the block, valid until the block's
 * tombstones change); *n = 0 when none. */
const block_tombstone *block_tombstones(const block *b, uint32_t id, size_t *n);
size_t block_tombstone_count(const block *b);
/* Whether t is deleted by one of the n tombstones. */
bool block_tombstoned(const block_tombstone *t, size_t n, int64_t ts);
/* Writes the block's tombstones plus add (tombstones.tmp, fsync, rename, fsync) and loads them;
 * readers must be excluded while this runs (db_blocks.mu exclusively). */
int block_add_tombstones(block *b, const block_tombstone *add, size_t n, char *err);

/* Reads every series and chunk and checks every checksum: for `strata inspect` and tests. */
int block_verify(block *b, char *err);

/* ---- the database's blocks (db_blocks.c) ------------------------------------------------------
 */

struct strata_db;
struct series;

/* The blocks of an open database and the lock that makes head truncation safe.
 *
 * Locks: `mu` is a reader-preferring rwlock. Writers (db_write) and readers (a series set, from
 * db_select to series_set_free) hold it shared; a flush takes it exclusively only to publish new
 * blocks and to drop flushed chunks and emptied series from the head, so no one holds a pointer
 * into what it frees. Order: mu (shared) -> commit_mu -> stripe locks. flush_mu serialises flushes
 * and is taken before everything else. */
typedef struct db_blocks {
    pthread_rwlock_t mu;
    /* The gate: while an exclusive holder waits, a write waits (up to 20 ms) before taking mu,
     * so a steady stream of overlapping writes cannot starve a flush (readers may nest, so
     * they pass; long queries delay a flush, never writes by more than that). */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    int exclusive_waiting;
    pthread_mutex_t flush_mu;
    block **v; /* sorted by mint */
    size_t n;
    int64_t range_ms;           /* block range (= the head's chunk range) */
    bool replay_all;            /* blocks could not be sorted out at open: skip nothing */
    int64_t replay_skip_before; /* samples of the segment being replayed older than this are in
                                   blocks (set by db_blocks_replay_segment) */
    /* WAL replay: refs of series records whose labels were already taken by another ref. */
    struct replay_alias *alias;
    size_t n_alias, cap_alias;
    /* the background flusher */
    pthread_t flusher;
    bool flusher_running;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    bool stopping;
    bool wake;
    _Atomic uint64_t flushes;
    /* The last automatic cut that found nothing to flush: native histograms stay in the head, so
     * it can span more than 1.5 ranges with nothing to cut; writes do not wake the flusher again
     * (and it does not scan the head) until the newest sample moves the cut. */
    _Atomic int64_t idle_cut;
    _Atomic uint64_t flush_failures;
    _Atomic uint64_t compactions;
    _Atomic uint64_t compaction_failures;
    _Atomic uint64_t retention_deleted;
    /* Label sets read from blocks or dropped from the head: query results hold label pointers
     * past their series set, so these arrays live until the database closes (one per distinct
     * label set, like the symbol table's strings). */
    pthread_mutex_t labelsets_mu;
    struct labelset_slot *labelsets;
    size_t n_labelsets, cap_labelsets;
    struct db_tiers *tiers; /* the cold tier and the adaptive codec's statistics (tiers.c) */
    label **retired; /* label arrays of series dropped from the head, for the same reason */
    size_t n_retired;
} db_blocks;

/* Opens every block in the data directory before the WAL is replayed, removing leftover
 * <ulid>.tmp directories and the blocks of a flush that did not finish (their samples are still
 * in the WAL). */
int db_blocks_open(struct strata_db *db, char *err);
/* WAL replay's segment hook (ctx: the db): before segment seq (or checkpoint seq) is replayed,
 * sets replay_skip_before to the newest cut of the flushes that came after it. */
void db_blocks_replay_segment(void *ctx, uint32_t seq);
/* mu taken exclusively (through the gate), and shared by a writer (waiting at the gate). */
void db_blocks_lock_exclusive(db_blocks *bs);
void db_blocks_lock_for_write(db_blocks *bs);

/* Starts the background flusher (after replay; not for read-only opens). */
int db_blocks_start(struct strata_db *db, char *err);
void db_blocks_close(struct strata_db *db);
/* Called after each write: wakes the flusher when the head spans 1.5 block ranges. */
void db_blocks_after_write(struct strata_db *db);
/* WAL replay of a series record whose labels already belong to another ref. */
int db_blocks_alias_add(struct strata_db *db, uint32_t ref, struct series *s);
struct series *db_blocks_alias_get(struct strata_db *db, uint32_t ref);
/* Publishes b (caller holds mu exclusively). */
int db_blocks_add(struct strata_db *db, block *b);
/* Closes b (no longer in the list) and deletes its directory crash-safely: renamed to
 * <ulid>.tmp, which an open removes, then removed. */
void db_blocks_delete(struct strata_db *db, block *b);
/* Merges overlapping blocks, then blocks of closed 3x and 12x block-range windows, until nothing
 * is left to merge (compact.c). Caller holds flush_mu. Returns the merges done, or an error. */
int db_compact(struct strata_db *db, char *err);

/* ---- tiers (tiers.c) ---- */

typedef struct db_tiers db_tiers;
/* Sets up the tiers and opens the cold directory's blocks into the list (before the parents of
 * demoted blocks are dropped), removing unfinished demotions. */
int db_tiers_open(struct strata_db *db, char *err);
void db_tiers_close(struct strata_db *db);
/* Moves every warm block older than the newest sample minus --cold-after to the cold directory.
 * Caller holds flush_mu. Returns the blocks moved, or an error. */
int db_tiers_demote(struct strata_db *db, char *err);
/* With --warm-codec adaptive, re-encodes the XOR chunks among chunks in place as adaptive ones;
 * *owned (n_owned buffers) holds the new bytes until the caller has written the block and frees
 * them with db_tiers_free_owned (also on error). */
int db_tiers_warm_chunks(struct strata_db *db, block_chunk_in *chunks, size_t n, uint8_t ***owned,
                         size_t *n_owned, char *err);
void db_tiers_free_owned(uint8_t **owned, size_t n);
/* After an explicit flush with a cold tier: compaction and demotion at once (not at the next
 * background round), so the flush's caller finds old data cold when it returns. */
void db_tiers_after_flush(struct strata_db *db);

/* The stable copy of a label set (interned strings): takes ownership of ls (malloc'd) and
 * returns it, or frees it and returns the equal array already held. NULL on ENOMEM. */
const label *db_labelset_intern(struct strata_db *db, label *ls, uint32_t n);

#endif
