/*
 * db.c: the strata_db handle (the seed's StorageImpl): open, close, the write path and stats.
 *
 * The write path is split for concurrency: resolving series (hash, lookup, validation of new
 * label sets, creation) runs in parallel on every writer thread; committing (appending to the
 * head and framing the WAL records) runs under one commit lock, so the WAL holds samples in the
 * exact order the head accepted them and replay reproduces the head bit for bit. The fsync that
 * makes a write durable happens after the commit lock is released, shared between writers.
 */
#include "storage/block.h"
#include "storage/storage_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void strata_options_init(strata_options *o)
{
    memset(o, 0, sizeof *o);
    o->fsync = STRATA_FSYNC_ALWAYS;
    o->fsync_interval_ms = 1000;
    o->wal_segment_bytes = 128u << 20;
    o->max_samples_per_chunk = 120;
    o->chunk_range_ms = 2 * 3600 * 1000;
    o->names = STRATA_NAMES_UTF8;
    o->max_labels_per_series = 64;
    o->max_label_name_bytes = 1024;
    o->max_label_value_bytes = 16384;
    o->max_exemplars = 100000;
    o->cold_after_ms = 7LL * 24 * 3600 * 1000;
}

/* ---- WAL record encoding -------------------------------------------------------------------- */

static inline size_t put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline size_t put_varint(uint8_t *p, int64_t v)
{
    return put_uvarint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

int encode_series_record(buf *b, const series *s)
{
    size_t need = 20;
    for (uint32_t i = 0; i < s->n_labels; i++)
        need += 10 + s->labels[i].name_len + s->labels[i].value_len;
    if (buf_reserve(b, need)) return STRATA_ENOMEM;
    uint8_t *p = b->data + b->len;
    p += put_uvarint(p, s->ref);
    p += put_uvarint(p, s->n_labels);
    for (uint32_t i = 0; i < s->n_labels; i++) {
        p += put_uvarint(p, s->labels[i].name_len);
        memcpy(p, s->labels[i].name, s->labels[i].name_len);
        p += s->labels[i].name_len;
        p += put_uvarint(p, s->labels[i].value_len);
        memcpy(p, s->labels[i].value, s->labels[i].value_len);
        p += s->labels[i].value_len;
    }
    b->len = (size_t)(p - b->data);
    return 0;
}

/* ---- replay ------------------------------------------------------------------------------- */

static int replay_series(void *ctx, uint32_t ref, label *labels, size_t n, char *err)
{
    strata_db *db = ctx;
    series *s;
    bool created;
    uint64_t hash = labels_hash(labels, n);
    int rc = head_get_or_create(&db->head, labels, n, hash, ref, &s, &created);
    if (rc) return strata_errf(err, rc, "cannot recreate series %u", ref);
    /* The labels came back under another ref after the head dropped them at a flush. */
    if (s->ref != ref && db_blocks_alias_add(db, ref, s))
        return strata_errf(err, STRATA_ENOMEM, "out of memory replaying the WAL");
    if (ref >= db->head.next_ref) db->head.next_ref = ref + 1; /* replay is single-threaded */
    s->wal_logged = true;
    return 0;
}

static int replay_sample(void *ctx, uint32_t ref, int64_t t, double v, char *err)
{
    strata_db *db = ctx;
    series *s = head_series_by_ref(&db->head, ref);
    if (!s) s = db_blocks_alias_get(db, ref);
    if (!s) return strata_errf(err, STRATA_ECORRUPT, "sample for unknown series %u", ref);
    if (t < db->blocks->replay_skip_before) return 0; /* a flush put it into a block */
    int rc = head_append(&db->head, s, t, v, NULL);
    if (rc == STRATA_ENOMEM) return strata_errf(err, rc, "out of memory replaying the WAL");
    return 0; /* the WAL only holds accepted samples; anything else cannot happen twice */
}

static int replay_histogram(void *ctx, uint32_t ref, int64_t t, const native_histogram *h,
                            char *err)
{
    strata_db *db = ctx;
    series *s = head_series_by_ref(&db->head, ref);
    if (!s) s = db_blocks_alias_get(db, ref);
    if (!s) return strata_errf(err, STRATA_ECORRUPT, "histogram for unknown series %u", ref);
    int rc = head_append_hist(&db->head, s, t, h, NULL);
    if (rc == STRATA_ENOMEM) return strata_errf(err, rc, "out of memory replaying the WAL");
    return 0;
}

/* ---- open and close ------------------------------------------------------------------------ */

int strata_open(const char *path, const strata_options *opts, strata_db **out, char *err)
{
    *out = NULL;
    strata_db *db = calloc(1, sizeof *db);
    if (!db) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    if (opts) db->opts = *opts;
    else strata_options_init(&db->opts);
    db->lock_fd = -1;
    db->path = strdup(path);
    pthread_mutex_init(&db->commit_mu, NULL);
    db->exemplars = exemplar_store_new(db->opts.max_exemplars);
    int rc = db->path && db->exemplars
                 ? head_init(&db->head, db->opts.max_samples_per_chunk, db->opts.chunk_range_ms)
                 : STRATA_ENOMEM;
    if (rc) {
        strata_close(db);
        return strata_errf(err, rc, "out of memory");
    }
    if (mkdir(path, 0755) && errno != EEXIST) {
        strata_close(db);
        return strata_errf(err, STRATA_EIO, "cannot create data directory %s: %s", path,
                           strerror(errno));
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/lock", path);
    db->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (db->lock_fd < 0 || (!db->opts.read_only && flock(db->lock_fd, LOCK_EX | LOCK_NB))) {
        int e = errno;
        strata_close(db);
        return strata_errf(err, STRATA_EIO,
                           "cannot lock data directory %s: %s (is another strata using it?)", path,
                           strerror(e));
    }
    rc = db_blocks_open(db, err);
    if (rc) {
        strata_close(db);
        return rc;
    }
    snprintf(p, sizeof p, "%s/wal", path);
    wal_replay_handlers h = {.ctx = db,
                             .series = replay_series,
                             .sample = replay_sample,
                             .histogram = replay_histogram,
                             .exemplars = exemplars_replay,
                             .segment = db_blocks_replay_segment};
    uint64_t t0 = clock_mono_ns();
    rc = wal_open(p, &db->opts, &h, &db->wal, err);
    if (rc) {
        strata_close(db);
        return rc;
    }
    wal_stats ws;
    wal_get_stats(db->wal, &ws);
    if (ws.records_replayed)
        strata_log(LOG_INFO, "wal replay: %llu records, %llu series, %llu samples in %.2fs",
                   (unsigned long long)ws.records_replayed,
                   (unsigned long long)atomic_load(&db->head.n_series),
                   (unsigned long long)atomic_load(&db->head.samples_appended),
                   (double)(clock_mono_ns() - t0) / 1e9);
    rc = db_blocks_start(db, err);
    if (rc) {
        strata_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void strata_close(strata_db *db)
{
    if (!db) return;
    db_blocks_close(db); /* stops the flusher before the WAL it writes to */
    if (db->wal) wal_close(db->wal);
    if (db->head.syms) head_destroy(&db->head);
    exemplar_store_free(db->exemplars);
    if (db->lock_fd >= 0) close(db->lock_fd);
    pthread_mutex_destroy(&db->commit_mu);
    free(db->path);
    free(db);
}

int strata_flush(strata_db *db, char *err)
{
    return db->wal ? wal_sync_all(db->wal, err) : 0;
}

/* ---- the write path ------------------------------------------------------------------------ */

typedef struct resolved {
    series *s;
    uint64_t hash;
    bool over_limit; /* a new series refused by a series limit */
} resolved;

/* Label limits, checked once per new label set (existing series passed them already). */
static int check_label_limits(const strata_options *o, const label *ls, size_t n, char *err)
{
    char what[160];
    if (o->max_labels_per_series && n > o->max_labels_per_series)
        return strata_errf(err, STRATA_EINVAL, "too many labels: %zu, the limit is %u (%s)", n,
                           o->max_labels_per_series, labels_format(ls, n, what, sizeof what));
    for (size_t i = 0; i < n; i++) {
        if (o->max_label_name_bytes && ls[i].name_len > o->max_label_name_bytes)
            return strata_errf(err, STRATA_EINVAL, "label name of %u bytes, the limit is %u: \"%.40s...\"",
                               ls[i].name_len, o->max_label_name_bytes, ls[i].name);
        if (o->max_label_value_bytes && ls[i].value_len > o->max_label_value_bytes)
            return strata_errf(err, STRATA_EINVAL,
                               "value of label \"%.*s\" is %u bytes, the limit is %u",
                               (int)(ls[i].name_len > 100 ? 100 : ls[i].name_len), ls[i].name,
                               ls[i].value_len, o->max_label_value_bytes);
    }
    return 0;
}

/* Whether a new series would exceed a series limit; *reason names it. */
static bool over_series_limit(strata_db *db, const label *ls, size_t n, const char **reason)
{
    if (db->opts.max_series && atomic_load(&db->head.n_series) >= db->opts.max_series) {
        *reason = "series limit (--ingest-max-series)";
        return true;
    }
    if (db->opts.max_series_per_metric) {
        uint32_t vl;
        const char *name = labels_get(ls, n, LABEL_METRIC_NAME, &vl);
        if (name && postings_count(db->head.index, LABEL_METRIC_NAME, 8, name, vl) >=
                        db->opts.max_series_per_metric) {
            *reason = "series limit per metric (--ingest-max-series-per-metric)";
            return true;
        }
    }
    return false;
}

/* Finds every series of the batch, validating and creating the ones the head has not seen.
 * All label sets are checked before any series is created, so a bad one rejects the batch. */
/* The metric router: orders a batch's entries by head stripe (a stable counting sort, so entries
 * of one series keep their order), so lookups and appends take each stripe's lock once for all
 * the entries that fall into it. order receives the entry indexes; bounds[k]..bounds[k+1] are
 * the entries of the k-th non-empty stripe, whose number is returned. */
static size_t route_by_stripe(const resolved *res, size_t n, size_t *order, size_t *bounds,
                              uint32_t *stripes)
{
    uint32_t *count = calloc(HEAD_STRIPES + 1, sizeof *count);
    if (!count) { /* no memory for the router: one group per entry, in request order */
        for (size_t i = 0; i < n; i++) {
            order[i] = i;
            bounds[i] = i;
            stripes[i] = head_stripe_of(res[i].hash);
        }
        bounds[n] = n;
        return n;
    }
    for (size_t i = 0; i < n; i++) count[head_stripe_of(res[i].hash) + 1]++;
    for (size_t k = 0; k < HEAD_STRIPES; k++) count[k + 1] += count[k];
    size_t groups = 0;
    for (size_t k = 0; k < HEAD_STRIPES; k++)
        if (count[k + 1] > count[k]) {
            bounds[groups] = count[k];
            stripes[groups++] = (uint32_t)k;
        }
    bounds[groups] = n;
    for (size_t i = 0; i < n; i++) order[count[head_stripe_of(res[i].hash)]++] = i;
    free(count);
    return groups;
}

static int resolve_series(strata_db *db, write_series *ws, size_t n, bool require_sorted,
                          resolved *res, size_t *order, size_t *bounds, uint32_t *stripes,
                          size_t *groups, const char **limit_reason, char *err)
{
    label_rules rules = {.names = db->opts.names, .require_sorted = require_sorted};
    /* The common case: a label set the head already holds is canonical by construction, so an
     * exact match needs no validation at all. Look every entry up, a stripe at a time. */
    for (size_t i = 0; i < n; i++) {
        res[i].hash = labels_hash(ws[i].labels, ws[i].n_labels);
        res[i].s = NULL;
        res[i].over_limit = false;
    }
    *groups = route_by_stripe(res, n, order, bounds, stripes);
    for (size_t g = 0; g < *groups; g++) {
        head_stripe_lock(&db->head, stripes[g]);
        for (size_t k = bounds[g]; k < bounds[g + 1]; k++) {
            size_t i = order[k];
            res[i].s = head_lookup_locked(&db->head, stripes[g], ws[i].labels, ws[i].n_labels,
                                          res[i].hash);
        }
        head_stripe_unlock(&db->head, stripes[g]);
    }
    bool missing = false;
    for (size_t i = 0; i < n; i++) {
        if (res[i].s) continue;
        int rc = labels_normalize(ws[i].labels, &ws[i].n_labels, &rules, err);
        if (!rc) {
            rc = check_label_limits(&db->opts, ws[i].labels, ws[i].n_labels, err);
            if (rc) atomic_fetch_add(&db->rejected_label_limit, 1);
        }
        if (rc) {
            strata_err_prefix(err, "series %zu: ", i);
            return rc;
        }
        res[i].hash = labels_hash(ws[i].labels, ws[i].n_labels);
        res[i].s = head_lookup(&db->head, ws[i].labels, ws[i].n_labels, res[i].hash);
        if (!res[i].s) missing = true;
    }
    if (missing) {
        for (size_t i = 0; i < n; i++) {
            if (res[i].s || (ws[i].n_samples == 0 && ws[i].n_histograms == 0)) continue;
            if (over_series_limit(db, ws[i].labels, ws[i].n_labels, limit_reason)) {
                res[i].over_limit = true;
                continue;
            }
            bool created;
            int rc = head_get_or_create(&db->head, ws[i].labels, ws[i].n_labels, res[i].hash, 0,
                                        &res[i].s, &created);
            if (rc) return strata_errf(err, rc, "cannot create series: out of memory");
        }
    }
    /* Normalisation may have changed hashes (unsorted input): route again for the commit, by the
     * stripe each series actually lives in. */
    for (size_t i = 0; i < n; i++)
        if (res[i].s) res[i].hash = res[i].s->hash;
    *groups = route_by_stripe(res, n, order, bounds, stripes);
    return 0;
}

static void note_reject(write_reject *rej, int code, const series *s, int64_t t, int64_t last)
{
    if (!rej || rej->code) return;
    rej->code = code;
    rej->t = t;
    rej->newest_t = last;
    labels_format(s->labels, s->n_labels, rej->series, sizeof rej->series);
}

/* Every histogram of the batch, before anything is stored: a malformed one rejects the batch. */
static int validate_histograms(const write_series *ws, size_t n, char *err)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < ws[i].n_histograms; k++) {
            int rc = native_histogram_validate(&ws[i].histograms[k].h, err);
            if (rc) {
                strata_err_prefix(err, "series %zu: histogram %zu at %lld: ", i, k,
                                  (long long)ws[i].histograms[k].t);
                return rc;
            }
        }
    return 0;
}

/* Frames the series records gathered so far (their refs may be used next), then rec, into
 * frame, and empties both (keeping their memory). */
static int flush_record(buf *frame, buf *series_rec, uint8_t type, buf *rec)
{
    if (series_rec->len && wal_frame(frame, WAL_REC_SERIES, series_rec->data, series_rec->len))
        return STRATA_ENOMEM;
    series_rec->len = 0;
    if (rec->len && wal_frame(frame, type, rec->data, rec->len)) return STRATA_ENOMEM;
    rec->len = 0;
    return 0;
}

/* Where the histograms record of a commit stands (entries are delta-encoded). */
typedef struct hist_cursor {
    int64_t ref, t;
    bool first;
} hist_cursor;

/* Appends one series' histograms under its stripe lock (held) and the commit lock, with the same
 * bounds, ordering and accounting as floats, recording the stored ones in rec. */
static int commit_histograms(strata_db *db, series *s, const write_series *w, int64_t oldest,
                             int64_t newest, buf *rec, hist_cursor *cur, strata_write_result *res,
                             write_reject *rej, uint64_t *appended, int64_t *app_min,
                             int64_t *app_max, char *err)
{
    for (size_t k = 0; k < w->n_histograms; k++) {
        const hist_sample *hs = &w->histograms[k];
        int64_t t = hs->t, last = 0;
        if (t < oldest || t > newest) {
            if (t < oldest) res->samples_too_old++;
            else res->samples_too_far_future++;
            if (rej && !rej->code) {
                rej->code = STRATA_EOUTOFORDER;
                rej->reason = t < oldest ? "older than --ingest-max-sample-age"
                                         : "further in the future than --ingest-max-sample-future";
                rej->t = t;
                labels_format(s->labels, s->n_labels, rej->series, sizeof rej->series);
            }
            continue;
        }
        int ar = head_append_hist_locked(&db->head, s, t, &hs->h, &last);
        if (ar == 0) {
            if (hist_record_put(rec, cur->first ? (int64_t)s->ref : (int64_t)s->ref - cur->ref,
                                cur->first ? t : t - cur->t, &hs->h))
                return strata_errf(err, STRATA_ENOMEM, "out of memory appending histograms");
            cur->ref = s->ref;
            cur->t = t;
            cur->first = false;
            (*appended)++;
            if (t < *app_min) *app_min = t;
            if (t > *app_max) *app_max = t;
            res->histograms_written++;
        } else if (ar == 1) {
            res->samples_duplicate++;
        } else if (ar == STRATA_EOUTOFORDER) {
            res->samples_out_of_order++;
            note_reject(rej, ar, s, t, last);
        } else if (ar == STRATA_EDUPLICATE) {
            res->samples_conflict++;
            note_reject(rej, ar, s, t, last);
        } else {
            return strata_errf(err, ar, "out of memory appending histograms");
        }
    }
    return 0;
}

int db_write(strata_db *db, write_series *ws, size_t n, bool require_sorted,
             strata_write_result *res, write_reject *rej, char *err)
{
    strata_write_result local = {0};
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    if (rej) memset(rej, 0, sizeof *rej);
    if (!db->wal || db->opts.read_only)
        return strata_errf(err, STRATA_ECLOSED, "database is open read-only");

    resolved stack[256];
    resolved *rs = n <= 256 ? stack : malloc(n * sizeof *rs);
    size_t *order = malloc((n + 1) * sizeof *order);
    size_t *bounds = malloc((n + 2) * sizeof *bounds);
    uint32_t *stripes = malloc((n + 1) * sizeof *stripes);
    size_t groups = 0;
    int rc = 0;
    bool locked = false;
    if (!rs || !order || !bounds || !stripes) {
        rc = strata_errf(err, STRATA_ENOMEM, "out of memory");
        goto out;
    }
    rc = validate_histograms(ws, n, err);
    if (rc) goto out;
    const char *limit_reason = NULL;
    /* Shared for the whole write: a flush must not drop a series this write is holding. */
    db_blocks_lock_for_write(db->blocks);
    locked = true;
    rc = resolve_series(db, ws, n, require_sorted, rs, order, bounds, stripes, &groups,
                        &limit_reason, err);
    if (rc) goto out;
    int64_t now = (db->opts.max_sample_age_ms || db->opts.max_sample_future_ms) ? clock_now_ms() : 0;
    int64_t oldest = db->opts.max_sample_age_ms ? now - db->opts.max_sample_age_ms : INT64_MIN;
    int64_t newest = db->opts.max_sample_future_ms ? now + db->opts.max_sample_future_ms : INT64_MAX;

    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += ws[i].n_samples;
    for (size_t i = 0; i < n; i++) total += ws[i].n_histograms;
    buf series_rec = {0}, samples_rec = {0}, frame = {0}, hist_rec = {0};
    hist_cursor hist_prev = {.first = true};
    if (buf_reserve(&samples_rec, total * 28 + 16)) {
        rc = strata_errf(err, STRATA_ENOMEM, "out of memory");
        goto out;
    }

    pthread_mutex_lock(&db->commit_mu);
    uint8_t *p = samples_rec.data;
    int64_t prev_ref = 0, prev_t = 0;
    bool first = true;
    int64_t app_min = INT64_MAX, app_max = INT64_MIN;
    uint64_t appended = 0;
    for (size_t g = 0; g < groups && !rc; g++) {
        /* Every entry of the group lives in this stripe: one lock for all their samples. */
        head_stripe_lock(&db->head, stripes[g]);
        for (size_t q = bounds[g]; q < bounds[g + 1] && !rc; q++) {
        size_t i = order[q];
        series *s = rs[i].s;
        if (rs[i].over_limit) {
            res->samples_series_limit += ws[i].n_samples + ws[i].n_histograms;
            if (rej && !rej->code) {
                rej->code = STRATA_ELIMIT;
                rej->reason = limit_reason;
                rej->t = ws[i].n_samples ? ws[i].samples[0].t : ws[i].histograms[0].t;
                labels_format(ws[i].labels, ws[i].n_labels, rej->series, sizeof rej->series);
            }
            continue;
        }
        if (!s || (ws[i].n_samples == 0 && ws[i].n_histograms == 0)) continue;
        if (!s->wal_logged) {
            rc = encode_series_record(&series_rec, s);
            if (rc) break;
            /* Marked before the WAL write: if that write fails the database reports EIO for
             * every later write too, so the flag cannot hide a missing record. */
            s->wal_logged = true;
            res->series_created++;
        }
        /* The WAL must replay a series' floats and histograms in the order the head took them
         * (one request may hold the same series twice), so a kind's pending record is framed
         * before the other kind's next entries. */
        if (ws[i].n_samples && hist_rec.len) {
            rc = flush_record(&frame, &series_rec, WAL_REC_HISTOGRAMS, &hist_rec);
            hist_prev = (hist_cursor){.first = true};
            if (rc) {
                strata_errf(err, rc, "out of memory framing WAL records");
                break;
            }
        }
        for (size_t k = 0; k < ws[i].n_samples; k++) {
            int64_t t = ws[i].samples[k].t, last = 0;
            double v = ws[i].samples[k].v;
            if (t < oldest || t > newest) {
                if (t < oldest) res->samples_too_old++;
                else res->samples_too_far_future++;
                if (rej && !rej->code) {
                    /* Out of the accepted time bounds: answered like out-of-order (400). */
                    rej->code = STRATA_EOUTOFORDER;
                    rej->reason = t < oldest ? "older than --ingest-max-sample-age"
                                             : "further in the future than --ingest-max-sample-future";
                    rej->t = t;
                    labels_format(s->labels, s->n_labels, rej->series, sizeof rej->series);
                }
                continue;
            }
            int ar = head_append_locked(&db->head, s, t, v, &last);
            if (ar == 0) {
                appended++;
                if (t < app_min) app_min = t;
                if (t > app_max) app_max = t;
                p += put_varint(p, first ? (int64_t)s->ref : (int64_t)s->ref - prev_ref);
                p += put_varint(p, first ? t : t - prev_t);
                memcpy(p, &v, 8);
                p += 8;
                prev_ref = s->ref;
                prev_t = t;
                first = false;
                res->samples_written++;
            } else if (ar == 1) {
                res->samples_duplicate++;
            } else if (ar == STRATA_EOUTOFORDER) {
                res->samples_out_of_order++;
                note_reject(rej, ar, s, t, last);
            } else if (ar == STRATA_EDUPLICATE) {
                res->samples_conflict++;
                note_reject(rej, ar, s, t, last);
            } else {
                rc = strata_errf(err, ar, "out of memory appending samples");
                break;
            }
        }
        if (!rc && ws[i].n_histograms && p != samples_rec.data) {
            samples_rec.len = (size_t)(p - samples_rec.data);
            rc = flush_record(&frame, &series_rec, WAL_REC_SAMPLES, &samples_rec);
            p = samples_rec.data;
            first = true;
            if (rc) strata_errf(err, rc, "out of memory framing WAL records");
        }
        if (!rc && ws[i].n_histograms)
            rc = commit_histograms(db, s, &ws[i], oldest, newest, &hist_rec, &hist_prev, res, rej,
                                   &appended, &app_min, &app_max, err);
    }
        head_stripe_unlock(&db->head, stripes[g]);
    }
    head_note_appended(&db->head, appended, app_min, app_max);
    samples_rec.len = (size_t)(p - samples_rec.data);
    uint64_t pos = 0;
    if (!rc && series_rec.len) rc = wal_frame(&frame, WAL_REC_SERIES, series_rec.data, series_rec.len);
    if (!rc && samples_rec.len)
        rc = wal_frame(&frame, WAL_REC_SAMPLES, samples_rec.data, samples_rec.len);
    if (!rc && hist_rec.len)
        rc = wal_frame(&frame, WAL_REC_HISTOGRAMS, hist_rec.data, hist_rec.len);
    if (!rc && frame.len) rc = wal_write(db->wal, frame.data, frame.len, &pos, err);
    pthread_mutex_unlock(&db->commit_mu);
    buf_free(&series_rec);
    buf_free(&samples_rec);
    buf_free(&hist_rec);
    buf_free(&frame);
    if (!rc && pos) rc = wal_sync_to(db->wal, pos, err);
    if (rc) goto out;

    atomic_fetch_add(&db->rejected_out_of_order, res->samples_out_of_order);
    atomic_fetch_add(&db->rejected_conflict, res->samples_conflict);
    atomic_fetch_add(&db->duplicates, res->samples_duplicate);
    atomic_fetch_add(&db->rejected_too_old, res->samples_too_old);
    atomic_fetch_add(&db->rejected_future, res->samples_too_far_future);
    atomic_fetch_add(&db->rejected_series_limit, res->samples_series_limit);
    uint64_t rejected = res->samples_out_of_order + res->samples_conflict + res->samples_too_old +
                        res->samples_too_far_future + res->samples_series_limit;
    if (rejected) {
        rc = rej && rej->code ? rej->code : STRATA_EOUTOFORDER;
        char tail[96];
        snprintf(tail, sizeof tail, "(%llu of %zu samples rejected, the rest stored)",
                 (unsigned long long)rejected, total);
        if (rej && rej->reason)
            strata_errf(err, rc, "sample of %s at %lld rejected: %s %s", rej->series,
                        (long long)rej->t, rej->reason, tail);
        else if (rej && rej->code == STRATA_EOUTOFORDER)
            strata_errf(err, rc,
                        "out of order sample: %s at %lld is older than its newest sample at %lld %s",
                        rej->series, (long long)rej->t, (long long)rej->newest_t, tail);
        else if (rej && rej->code == STRATA_EDUPLICATE)
            strata_errf(err, rc, "duplicate sample for timestamp %lld with a different value: %s %s",
                        (long long)rej->t, rej->series, tail);
        else
            strata_errf(err, rc, "%llu samples rejected, the rest stored",
                        (unsigned long long)rejected);
    }
out:
    if (locked) {
        pthread_rwlock_unlock(&db->blocks->mu);
        db_blocks_after_write(db);
    }
    if (rs != stack) free(rs);
    free(order);
    free(bounds);
    free(stripes);
    return rc;
}

int strata_write(strata_db *db, const strata_series *series_in, size_t n, strata_write_result *res,
                 char *err)
{
    size_t total_labels = 0;
    for (size_t i = 0; i < n; i++) total_labels += series_in[i].n_labels;
    write_series *ws = calloc(n ? n : 1, sizeof *ws);
    label *lv = calloc(total_labels ? total_labels : 1, sizeof *lv);
    if (!ws || !lv) {
        free(ws);
        free(lv);
        return strata_errf(err, STRATA_ENOMEM, "out of memory");
    }
    label *p = lv;
    for (size_t i = 0; i < n; i++) {
        ws[i].labels = p;
        ws[i].n_labels = series_in[i].n_labels;
        for (size_t k = 0; k < series_in[i].n_labels; k++) {
            const strata_label *l = &series_in[i].labels[k];
            if (!l->name || !l->value) {
                free(ws);
                free(lv);
                return strata_errf(err, STRATA_EINVAL, "series %zu: label %zu has a NULL name or value",
                                   i, k);
            }
            *p++ = (label){.name = l->name, .value = l->value, .name_len = (uint32_t)strlen(l->name),
                           .value_len = (uint32_t)strlen(l->value)};
        }
        ws[i].samples = series_in[i].samples;
        ws[i].n_samples = series_in[i].n_samples;
    }
    write_reject rej;
    int rc = db_write(db, ws, n, false, res, &rej, err);
    free(ws);
    free(lv);
    return rc;
}

/* ---- statistics ---------------------------------------------------------------------------- */

void db_get_stats(strata_db *db, db_stats *st)
{
    memset(st, 0, sizeof *st);
    st->series = atomic_load(&db->head.n_series);
    st->samples_appended = atomic_load(&db->head.samples_appended);
    st->head_chunks = atomic_load(&db->head.n_chunks);
    st->head_chunk_bytes = atomic_load(&db->head.chunk_bytes);
    st->head_chunk_samples = atomic_load(&db->head.chunk_samples);
    st->min_time = atomic_load(&db->head.min_t);
    st->max_time = atomic_load(&db->head.max_t);
    st->symbols = sym_table_count(db->head.syms);
    st->symbol_bytes = sym_table_bytes(db->head.syms);
    if (db->wal) {
        wal_stats ws;
        wal_get_stats(db->wal, &ws);
        st->wal_segments = ws.segments;
        st->wal_bytes = ws.bytes;
        st->wal_fsyncs = ws.fsyncs;
        st->wal_records_replayed = ws.records_replayed;
        st->wal_torn_tails = ws.torn_tails;
    }
    st->samples_out_of_order = atomic_load(&db->rejected_out_of_order);
    st->samples_conflict = atomic_load(&db->rejected_conflict);
    st->samples_duplicate = atomic_load(&db->duplicates);
    st->samples_too_old = atomic_load(&db->rejected_too_old);
    st->samples_too_far_future = atomic_load(&db->rejected_future);
    st->samples_series_limit = atomic_load(&db->rejected_series_limit);
    st->writes_label_limit = atomic_load(&db->rejected_label_limit);
}

int strata_stats(strata_db *db, char *out, size_t len)
{
    db_stats st;
    db_get_stats(db, &st);
    int n = snprintf(out, len,
                     "series: %llu\nsamples appended: %llu\nhead chunks: %llu (%llu bytes)\n"
                     "symbols: %llu (%llu bytes)\nmin time: %lld\nmax time: %lld\n"
                     "wal segments: %llu (%llu bytes, %llu fsyncs, %llu records replayed, "
                     "%llu torn tails)\nrejected out of order: %llu\nrejected conflicting: %llu\n"
                     "duplicates accepted: %llu\n",
                     (unsigned long long)st.series, (unsigned long long)st.samples_appended,
                     (unsigned long long)st.head_chunks, (unsigned long long)st.head_chunk_bytes,
                     (unsigned long long)st.symbols, (unsigned long long)st.symbol_bytes,
                     (long long)(st.series ? st.min_time : 0),
                     (long long)(st.series ? st.max_time : 0),
                     (unsigned long long)st.wal_segments, (unsigned long long)st.wal_bytes,
                     (unsigned long long)st.wal_fsyncs,
                     (unsigned long long)st.wal_records_replayed,
                     (unsigned long long)st.wal_torn_tails,
                     (unsigned long long)st.samples_out_of_order,
                     (unsigned long long)st.samples_conflict,
                     (unsigned long long)st.samples_duplicate);
    return n < 0 ? STRATA_EINVAL : 0;
}
