/*
 * core.h: the public face of the core module, the leaf every other module builds on.
 *
 * Labels and label sets (validated and ordered by Prometheus' rules), the series hash, interned
 * symbols, arenas, CRC32C, clocks, atomic reference counts, error messages and logging. Nothing
 * here knows about the database; nothing here keeps global mutable state.
 */
#ifndef STRATA_CORE_H
#define STRATA_CORE_H

#include "strata.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors and logging ------------------------------------------------------------------ */

/* Formats a message into err (STRATA_ERRMSG_SIZE bytes; NULL is allowed) and returns code, so a
 * failure path reads `return strata_errf(err, STRATA_EINVAL, "bad %s", what);`. */
int strata_errf(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message in err with more context ("wal replay: " + old message). */
void strata_err_prefix(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } strata_log_level;

/* The one logging call: a line with an ISO-8601 time, level and message on stderr. */
void strata_log(strata_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- clocks ------------------------------------------------------------------------------- */

int64_t clock_now_ms(void);  /* wall clock, ms since the Unix epoch */
uint64_t clock_mono_ns(void); /* monotonic clock, ns */

/* ---- labels ------------------------------------------------------------------------------- */

#define LABEL_METRIC_NAME "__name__"

/* A label whose bytes are owned elsewhere (a request buffer, interned symbols). Not
 * NUL-terminated in general. */
typedef struct label {
    const char *name;
    const char *value;
    uint32_t name_len;
    uint32_t value_len;
} label;

/* Prometheus' label order: by name bytes, then by value bytes (shorter prefix first). */
int label_str_compare(const char *a, uint32_t alen, const char *b, uint32_t blen);

/* Compares two label sets lexicographically, pair by pair (Prometheus' labels.Compare). */
int labels_compare(const label *a, size_t na, const label *b, size_t nb);
bool labels_equal(const label *a, size_t na, const label *b, size_t nb);

/* The series hash: xxh3-64 of name 0xff value 0xff ... over the sorted set. Collisions are
 * possible and handled by callers comparing the labels themselves. */
uint64_t labels_hash(const label *v, size_t n);

/* Finds a label's value by name; NULL when absent (its length in *len when found). */
const char *labels_get(const label *v, size_t n, const char *name, uint32_t *len);

/* How labels_normalize treats its input. */
typedef struct label_rules {
    strata_name_validation names;
    bool require_sorted; /* remote write: unsorted input is an error, not something to fix */
} label_rules;

/*
 * Validates a label set in place and puts it in canonical form: drops pairs with empty values
 * (Prometheus never stores them), sorts by name unless rules->require_sorted (then unsorted input
 * is an error), and rejects empty or invalid names, invalid UTF-8, duplicate names and a set that
 * is empty after dropping. *n is updated. Returns 0 or STRATA_EINVAL with the reason in err.
 */
int labels_normalize(label *v, size_t *n, const label_rules *rules, char *err);

bool label_name_valid(const char *s, uint32_t len, strata_name_validation mode);
bool metric_name_valid(const char *s, uint32_t len, strata_name_validation mode);
bool utf8_valid(const char *s, size_t len);

/* Writes `{a="b", c="d"}` (or `name{...}`) into buf, truncating; returns buf. For messages. */
char *labels_format(const label *v, size_t n, char *buf, size_t len);

/* ---- interned symbols --------------------------------------------------------------------- */

/* An interned string: one copy per distinct string for the life of its table. */
typedef struct sym {
    uint32_t len;
    uint32_t hash;
    char str[]; /* NUL-terminated */
} sym;

typedef struct sym_table sym_table;

/* Creates an empty table; the caller owns it and frees it with sym_table_free. NULL on ENOMEM. */
sym_table *sym_table_new(void);
/* Frees the table and every symbol it interned. */
void sym_table_free(sym_table *t);
/* Returns the interned copy of s, creating it; owned by the table. NULL on ENOMEM. Thread-safe. */
const sym *sym_intern(sym_table *t, const char *s, uint32_t len);
/* The interned copy of s if there is one, without creating it; NULL otherwise. Thread-safe. */
const sym *sym_lookup(sym_table *t, const char *s, uint32_t len);
size_t sym_table_count(sym_table *t);
size_t sym_table_bytes(sym_table *t);

/* ---- arenas ------------------------------------------------------------------------------- */

/* A bump allocator for memory that dies together (one request, one query). Not thread-safe. */
typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;
    size_t block_size;
    size_t total;
} arena;

void arena_init(arena *a, size_t block_size);
/* Returns size bytes aligned to 16, owned by the arena; NULL on ENOMEM. */
void *arena_alloc(arena *a, size_t size);
/* Copies n bytes plus a NUL into the arena. */
char *arena_strndup(arena *a, const char *s, size_t n);
/* Frees every block but the first, keeping one for reuse. */
void arena_reset(arena *a);
/* Moves every block of src into dst (src is left empty): memory allocated from src now lives as
 * long as dst. For joining the arenas of parallel workers. */
void arena_adopt(arena *dst, arena *src);
void arena_free(arena *a);

/* ---- growable byte buffer ----------------------------------------------------------------- */

typedef struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} buf;

int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *p, size_t n);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_putc(buf *b, char c);
void buf_free(buf *b);

/* ---- checksums ---------------------------------------------------------------------------- */

/* CRC-32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2. Start with crc = 0. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* ---- atomic reference counting ------------------------------------------------------------ */

typedef struct refcount {
    atomic_uint_fast32_t n;
} refcount;

static inline void refcount_init(refcount *r, uint32_t n)
{
    atomic_init(&r->n, n);
}
static inline void refcount_get(refcount *r)
{
    atomic_fetch_add_explicit(&r->n, 1, memory_order_relaxed);
}
/* Returns true when this was the last reference and the object must be freed. */
static inline bool refcount_put(refcount *r)
{
    return atomic_fetch_sub_explicit(&r->n, 1, memory_order_acq_rel) == 1;
}

/* ---- number formatting -------------------------------------------------------------------- */

/* Formats a double as Prometheus' JSON does (Go's shortest round-trip digits; 'f' form, or 'e'
 * form below 1e-6 and from 1e21), with "NaN", "+Inf" and "-Inf". buf needs 400 bytes. Returns the
 * length. */
int format_float(double v, char *buf, size_t len);

/* Formats a millisecond timestamp as Prometheus' JSON does: seconds, and ".mmm" (always three
 * digits) when not whole. */
int format_timestamp(int64_t ms, char *buf, size_t len);



/* ---- native histograms -------------------------------------------------------------------- */

/* A run of consecutive buckets: offset is the gap (in bucket indexes) from the end of the
 * previous span, or the first bucket's index for the first span, as in Prometheus. */
typedef struct hist_span {
    int32_t offset;
    uint32_t length;
} hist_span;

/* Prometheus' CounterResetHint. */
typedef enum hist_reset_hint {
    HIST_HINT_UNKNOWN = 0,
    HIST_HINT_RESET = 1,
    HIST_HINT_NOT_RESET = 2,
    HIST_HINT_GAUGE = 3,
} hist_reset_hint;

/* The schema of native histograms with custom bucket boundaries (NHCB). Exponential schemas are
 * -4..8. */
#define HIST_SCHEMA_CUSTOM (-53)

/*
 * A native histogram in float form (Prometheus' FloatHistogram): bucket counts are absolute, not
 * deltas. Integer histograms from clients are converted on decode; is_int records that every
 * count is a whole number so storage can choose the integer chunk encoding and give the same
 * histogram back. The arrays belong to whoever built the histogram (usually an arena); this
 * struct never owns them.
 */
typedef struct native_histogram {
    int32_t schema;
    uint8_t reset_hint; /* hist_reset_hint */
    bool is_int;
    double zero_threshold;
    double zero_count;
    double count;
    double sum;
    hist_span *pos_spans;
    hist_span *neg_spans;
    uint32_t n_pos_spans;
    uint32_t n_neg_spans;
    double *pos_buckets;
    double *neg_buckets;
    uint32_t n_pos_buckets;
    uint32_t n_neg_buckets;
    double *custom_values; /* upper bounds, for HIST_SCHEMA_CUSTOM only */
    uint32_t n_custom_values;
} native_histogram;

/* One histogram sample of a series. */
typedef struct hist_sample {
    int64_t t;
    native_histogram h;
} hist_sample;

/* ---- label matchers ----------------------------------------------------------------------- */

/* A compiled matcher: =, !=, =~, !~ against one label's value. A missing label matches as the
 * empty string, so `{foo=""}` selects series without foo and `{foo!=""}` those with it, as in
 * Prometheus. Regexes are PCRE2 with JIT, fully anchored (^(?:re)$) and dot-all, as Prometheus
 * anchors RE2. */
typedef struct matcher {
    strata_match_type type;
    char *name;
    char *value;
    uint32_t name_len;
    uint32_t value_len;
    void *re;       /* pcre2_code *, for the regex types */
    void *re_match; /* pcre2_match_data * is per call; kept NULL */
    /* A regex that is a plain alternation of literals (a|b|c) or a literal is matched by string
     * comparison; set_values holds them. */
    char **set_values;
    uint32_t *set_lens;
    size_t n_set;
    bool matches_empty; /* whether the empty string (absent label) matches */
} matcher;

/* Compiles a matcher; the caller owns *out and frees it with matcher_free. STRATA_EINVAL with a
 * message naming the regex error and its offset for a bad regex. */
int matcher_new(strata_match_type type, const char *name, size_t name_len, const char *value,
                size_t value_len, matcher **out, char *err);
void matcher_free(matcher *m);
/* Whether the value (the empty string for an absent label) satisfies the matcher. Thread-safe. */
bool matcher_matches(const matcher *m, const char *value, size_t len);
/* The matcher as PromQL text: name="value", for messages and plans. */
char *matcher_format(const matcher *m, char *buf, size_t len);

/* ---- durations and times ------------------------------------------------------------------ */

/* Parses a Prometheus duration ("1h30m", "15s", "500ms", "2d", "1w", "1y") into milliseconds.
 * Units from largest to smallest, each at most once, as Prometheus requires. */
int duration_parse(const char *s, size_t len, int64_t *ms, char *err);

/* Parses an HTTP API time: Unix seconds with an optional fraction ("1435781451.781") or RFC 3339
 * ("2015-07-01T20:10:51.781Z", with an offset too). */
int api_time_parse(const char *s, int64_t *ms, char *err);

#endif
