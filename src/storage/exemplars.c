/*
 * exemplars.c: the bounded in-memory exemplar store, its WAL records and its queries.
 *
 * One circular buffer of max_exemplars entries per database: a new exemplar takes the slot after
 * the previous one, evicting whatever was there, so memory is bounded by the capacity (plus at
 * most 128 code points of labels per entry) however many series send exemplars. Each series with
 * exemplars in the buffer has a record (its labels and the ring indexes of its oldest and newest
 * entry); its entries are chained oldest to newest through the ring. Because the ring is filled
 * in arrival order, the entry being evicted is always the oldest of its series, so eviction is
 * O(1): unlink the head of that series' chain, and drop the series record when it empties.
 *
 * A WAL record (WAL_REC_EXEMPLARS) holds a batch of accepted exemplars, each with its series'
 * labels rather than a head series ref, so replay needs nothing from the head and a record stays
 * readable whatever happens to series refs:
 *
 *     per exemplar: uvarint n | n x (uvarint len, name, uvarint len, value)   series labels
 *                   uvarint m | m x (uvarint len, name, uvarint len, value)   exemplar labels
 *                   varint t (zigzag) | value: 8 bytes little-endian IEEE-754
 *
 * Replay puts them back through the same ordering rules, so a record replayed twice (never
 * expected) cannot duplicate entries.
 *
 * Locking: the store's mutex guards everything in it. Writers take db->commit_mu first (the WAL
 * requires it) and the store's mutex inside it, never the other way round; queries take only the
 * store's mutex and copy what they return, so a result outlives later evictions.
 */
#include "storage/storage_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ex_series {
    struct ex_series *next_in_bucket;
    uint64_t hash;
    label *labels; /* one allocation with the series record */
    uint32_t n_labels;
    uint32_t oldest, newest; /* ring indexes of its chain */
    uint32_t count;
} ex_series;

typedef struct ex_entry {
    ex_series *series; /* NULL: the slot is empty */
    uint32_t next;     /* the next newer entry of the same series */
    uint32_t n_labels;
    label *labels; /* sorted; one malloc'd block with the strings */
    int64_t t;
    double v;
} ex_entry;

struct exemplar_store {
    pthread_mutex_t mu;
    ex_entry *ring;
    uint32_t cap;
    uint32_t next; /* the slot the next exemplar takes */
    ex_series **buckets;
    size_t n_buckets; /* power of two */
    size_t n_series;
    uint64_t stored;
    uint64_t appended;
    uint64_t out_of_order;
    uint64_t invalid;
    int64_t last_t;
};

exemplar_store *exemplar_store_new(uint32_t capacity)
{
    exemplar_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->cap = capacity;
    s->last_t = INT64_MIN;
    s->n_buckets = 64;
    s->buckets = calloc(s->n_buckets, sizeof *s->buckets);
    /* The ring is allocated on first use: a database that never sees an exemplar pays nothing
     * for the default capacity. */
    if (!s->buckets) {
        exemplar_store_free(s);
        return NULL;
    }
    return s;
}

void exemplar_store_free(exemplar_store *s)
{
    if (!s) return;
    if (s->ring)
        for (uint32_t i = 0; i < s->cap; i++)
            free(s->ring[i].labels);
    for (size_t b = 0; s->buckets && b < s->n_buckets; b++)
        for (ex_series *x = s->buckets[b], *nx; x; x = nx) {
            nx = x->next_in_bucket;
            free(x);
        }
    free(s->buckets);
    free(s->ring);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- label copies ---------------------------------------------------------------------------- */

/* One block holding n labels and their strings (NUL-terminated), after `header` bytes of header
 * space; the labels start at *out. NULL on ENOMEM. */
static void *copy_labels(size_t header, const label *ls, size_t n, label **out)
{
    size_t bytes = header + n * sizeof(label);
    for (size_t i = 0; i < n; i++)
        bytes += ls[i].name_len + ls[i].value_len + 2;
    uint8_t *block = malloc(bytes);
    if (!block) return NULL;
    label *v = (label *)(block + header);
    char *p = (char *)(v + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, ls[i].name, ls[i].name_len);
        p[ls[i].name_len] = '\0';
        v[i].name = p;
        v[i].name_len = ls[i].name_len;
        p += ls[i].name_len + 1;
        memcpy(p, ls[i].value, ls[i].value_len);
        p[ls[i].value_len] = '\0';
        v[i].value = p;
        v[i].value_len = ls[i].value_len;
        p += ls[i].value_len + 1;
    }
    *out = v;
    return block;
}

static int label_name_cmp(const void *a, const void *b)
{
    const label *x = a, *y = b;
    return label_str_compare(x->name, x->name_len, y->name, y->name_len);
}

static size_t utf8_runes(const char *s, size_t n)
{
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) r++;
    return r;
}

/* Checks an exemplar's labels; sorted holds a sorted copy (n entries). 0 or STRATA_EINVAL with
 * the reason in why. */
static int check_labels(const label *ls, size_t n, label *sorted, char *why, size_t why_len)
{
    size_t runes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ls[i].name_len) {
            snprintf(why, why_len, "exemplar label %zu has an empty name", i);
            return STRATA_EINVAL;
        }
        if (!utf8_valid(ls[i].name, ls[i].name_len) || !utf8_valid(ls[i].value, ls[i].value_len)) {
            snprintf(why, why_len, "exemplar label %zu is not valid UTF-8", i);
            return STRATA_EINVAL;
        }
        runes += utf8_runes(ls[i].name, ls[i].name_len) + utf8_runes(ls[i].value, ls[i].value_len);
        if (runes > EXEMPLAR_MAX_LABEL_RUNES) {
            snprintf(why, why_len,
                     "exemplar labels are longer than %d characters (names and values together)",
                     EXEMPLAR_MAX_LABEL_RUNES);
            return STRATA_EINVAL;
        }
        sorted[i] = ls[i];
    }
    qsort(sorted, n, sizeof *sorted, label_name_cmp);
    for (size_t i = 1; i < n; i++)
        if (sorted[i - 1].name_len == sorted[i].name_len &&
            memcmp(sorted[i - 1].name, sorted[i].name, sorted[i].name_len) == 0) {
            snprintf(why, why_len, "exemplar label name \"%.*s\" appears twice",
                     (int)(sorted[i].name_len > 64 ? 64 : sorted[i].name_len), sorted[i].name);
            return STRATA_EINVAL;
        }
    return 0;
}

/* ---- the ring ----------------------------------------------------------------------------------
 */

static ex_series *series_find(exemplar_store *s, const label *ls, size_t n, uint64_t h)
{
    for (ex_series *x = s->buckets[h & (s->n_buckets - 1)]; x; x = x->next_in_bucket)
        if (x->hash == h && labels_equal(x->labels, x->n_labels, ls, n)) return x;
    return NULL;
}

static void series_unlink(exemplar_store *s, ex_series *x)
{
    ex_series **pp = &s->buckets[x->hash & (s->n_buckets - 1)];
    while (*pp != x)
        pp = &(*pp)->next_in_bucket;
    *pp = x->next_in_bucket;
    s->n_series--;
    free(x);
}

static int series_create(exemplar_store *s, const label *ls, size_t n, uint64_t h, ex_series **out)
{
    if (s->n_series >= s->n_buckets) { /* keep chains short: at most one series per bucket */
        size_t nb = s->n_buckets * 2;
        ex_series **b = calloc(nb, sizeof *b);
        if (!b) return STRATA_ENOMEM;
        for (size_t i = 0; i < s->n_buckets; i++)
            for (ex_series *x = s->buckets[i], *nx; x; x = nx) {
                nx = x->next_in_bucket;
                x->next_in_bucket = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
            }
        free(s->buckets);
        s->buckets = b;
        s->n_buckets = nb;
    }
    label *copy;
    ex_series *x = copy_labels(sizeof(ex_series), ls, n, &copy);
    if (!x) return STRATA_ENOMEM;
    *x = (ex_series){.hash = h, .labels = copy, .n_labels = (uint32_t)n};
    x->next_in_bucket = s->buckets[h & (s->n_buckets - 1)];
    s->buckets[h & (s->n_buckets - 1)] = x;
    s->n_series++;
    *out = x;
    return 0;
}

/* Frees the slot the next exemplar goes to, unlinking its entry from its series. */
static void evict_next(exemplar_store *s)
{
    ex_entry *e = &s->ring[s->next];
    if (!e->series) return;
    ex_series *x = e->series;
    /* Arrival order: the evicted entry is its series' oldest. */
    x->oldest = e->next;
    if (--x->count == 0) series_unlink(s, x);
    free(e->labels);
    e->labels = NULL;
    e->series = NULL;
    s->stored--;
}

enum { ADD_STORED = 0, ADD_DUPLICATE = 1, ADD_OUT_OF_ORDER = 2 };

/*
 * Adds one exemplar whose labels were checked and sorted. Returns ADD_STORED, ADD_DUPLICATE,
 * ADD_OUT_OF_ORDER or STRATA_ENOMEM. Called with s->mu held.
 */
static int store_add(exemplar_store *s, const label *sl, size_t n_series, uint64_t h,
                     const label *ls, size_t n, int64_t t, double v)
{
    if (!s->ring) {
        s->ring = calloc(s->cap, sizeof *s->ring);
        if (!s->ring) return STRATA_ENOMEM;
    }
    ex_series *x = series_find(s, sl, n_series, h);
    if (x) {
        const ex_entry *newest = &s->ring[x->newest];
        if (t < newest->t) return ADD_OUT_OF_ORDER;
        if (t == newest->t) {
            uint64_t a, b;
            memcpy(&a, &v, 8);
            memcpy(&b, &newest->v, 8);
            if (a == b && labels_equal(newest->labels, newest->n_labels, ls, n))
                return ADD_DUPLICATE;
            return ADD_OUT_OF_ORDER;
        }
    }
    label *copy;
    void *block = copy_labels(0, ls, n, &copy);
    if (!block) return STRATA_ENOMEM;
    evict_next(s);
    /* Eviction may have dropped this very series (its only entry was in the slot). */
    x = series_find(s, sl, n_series, h);
    if (!x) {
        int rc = series_create(s, sl, n_series, h, &x);
        if (rc) {
            free(block);
            return rc;
        }
    }
    uint32_t idx = s->next;
    s->ring[idx] = (ex_entry){
        .series = x, .next = UINT32_MAX, .n_labels = (uint32_t)n, .labels = copy, .t = t, .v = v};
    if (x->count)
        s->ring[x->newest].next = idx;
    else
        x->oldest = idx;
    x->newest = idx;
    x->count++;
    s->next = idx + 1 == s->cap ? 0 : idx + 1;
    s->stored++;
    s->appended++;
    if (t > s->last_t) s->last_t = t;
    return ADD_STORED;
}

/* ---- WAL records ------------------------------------------------------------------------------
 */

static size_t put_uvarint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int encode_labels(buf *b, const label *ls, size_t n)
{
    size_t need = 10;
    for (size_t i = 0; i < n; i++)
        need += 20 + ls[i].name_len + ls[i].value_len;
    if (buf_reserve(b, need)) return STRATA_ENOMEM;
    uint8_t *p = b->data + b->len;
    p += put_uvarint(p, n);
    for (size_t i = 0; i < n; i++) {
        p += put_uvarint(p, ls[i].name_len);
        memcpy(p, ls[i].name, ls[i].name_len);
        p += ls[i].name_len;
        p += put_uvarint(p, ls[i].value_len);
        memcpy(p, ls[i].value, ls[i].value_len);
        p += ls[i].value_len;
    }
    b->len = (size_t)(p - b->data);
    return 0;
}

static int encode_exemplar(buf *b, const label *sl, size_t n_series, const label *ls, size_t n,
                           int64_t t, double v)
{
    if (encode_labels(b, sl, n_series) || encode_labels(b, ls, n) || buf_reserve(b, 20))
        return STRATA_ENOMEM;
    uint8_t *p = b->data + b->len;
    p += put_uvarint(p, ((uint64_t)t << 1) ^ (uint64_t)(t >> 63));
    memcpy(p, &v, 8); /* little-endian hosts only, as the rest of the WAL */
    b->len = (size_t)(p + 8 - b->data);
    return 0;
}

static int get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Reads a label list into v (capacity cap); -1 when malformed or longer than cap. */
static int decode_labels(const uint8_t **p, const uint8_t *end, label *v, size_t cap, size_t *n)
{
    uint64_t k;
    if (get_uvarint(p, end, &k) || k > cap) return -1;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t nl, vl;
        if (get_uvarint(p, end, &nl) || (uint64_t)(end - *p) < nl || nl > UINT32_MAX) return -1;
        v[i].name = (const char *)*p;
        v[i].name_len = (uint32_t)nl;
        *p += nl;
        if (get_uvarint(p, end, &vl) || (uint64_t)(end - *p) < vl || vl > UINT32_MAX) return -1;
        v[i].value = (const char *)*p;
        v[i].value_len = (uint32_t)vl;
        *p += vl;
    }
    *n = (size_t)k;
    return 0;
}

#define REPLAY_MAX_SERIES_LABELS 4096

int exemplars_checkpoint(exemplar_store *s, buf *records)
{
    buf payload = {0};
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    /* Arrival order, from the slot to be overwritten next, so replay rebuilds the same ring. */
    for (uint32_t k = 0; s->ring && k < s->cap && !rc; k++) {
        const ex_entry *e = &s->ring[(s->next + k) % s->cap];
        if (!e->series) continue;
        rc = encode_exemplar(&payload, e->series->labels, e->series->n_labels, e->labels,
                             e->n_labels, e->t, e->v);
        if (!rc && payload.len > (1u << 20)) {
            rc = wal_frame(records, WAL_REC_EXEMPLARS, payload.data, payload.len);
            payload.len = 0;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!rc && payload.len) rc = wal_frame(records, WAL_REC_EXEMPLARS, payload.data, payload.len);
    buf_free(&payload);
    return rc;
}

int exemplars_replay(void *ctx, const uint8_t *payload, size_t len, char *err)
{
    strata_db *db = ctx;
    exemplar_store *s = db->exemplars;
    label *sl = malloc(REPLAY_MAX_SERIES_LABELS * sizeof *sl);
    label ls[EXEMPLAR_MAX_LABEL_RUNES], sorted[EXEMPLAR_MAX_LABEL_RUNES];
    if (!sl) return strata_errf(err, STRATA_ENOMEM, "out of memory replaying exemplars");
    const uint8_t *p = payload, *end = payload + len;
    int rc = 0;
    while (p < end) {
        size_t ns, n;
        uint64_t zt;
        if (decode_labels(&p, end, sl, REPLAY_MAX_SERIES_LABELS, &ns) ||
            decode_labels(&p, end, ls, EXEMPLAR_MAX_LABEL_RUNES, &n) || get_uvarint(&p, end, &zt) ||
            end - p < 8) {
            rc = strata_errf(err, STRATA_ECORRUPT, "malformed exemplar record");
            break;
        }
        double v;
        memcpy(&v, p, 8);
        p += 8;
        int64_t t = (int64_t)(zt >> 1) ^ -(int64_t)(zt & 1);
        if (s->cap == 0) continue; /* the store was turned off since: drop them */
        char why[160];
        if (check_labels(ls, n, sorted, why, sizeof why)) {
            rc = strata_errf(err, STRATA_ECORRUPT, "exemplar record: %s", why);
            break;
        }
        pthread_mutex_lock(&s->mu);
        int ar = store_add(s, sl, ns, labels_hash(sl, ns), sorted, n, t, v);
        pthread_mutex_unlock(&s->mu);
        if (ar == STRATA_ENOMEM) {
            rc = strata_errf(err, ar, "out of memory replaying exemplars");
            break;
        }
    }
    free(sl);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------------------
 */

static void reject(exemplar_write_result *res, uint64_t *counter, const write_exemplar *e,
                   const char *why)
{
    (*counter)++;
    if (res->first_reason[0]) return;
    char ser[96];
    labels_format(e->series, e->n_series, ser, sizeof ser);
    snprintf(res->first_reason, sizeof res->first_reason, "exemplar of %s at %lld: %s", ser,
             (long long)e->t, why);
}

int db_write_exemplars(strata_db *db, const write_exemplar *ex, size_t n,
                       exemplar_write_result *res, char *err)
{
    memset(res, 0, sizeof *res);
    if (!n) return 0;
    exemplar_store *s = db->exemplars;
    if (s->cap == 0) {
        res->disabled = n;
        return 0;
    }
    if (!db->wal || db->opts.read_only)
        return strata_errf(err, STRATA_ECLOSED, "database is open read-only");
    int64_t now =
        (db->opts.max_sample_age_ms || db->opts.max_sample_future_ms) ? clock_now_ms() : 0;
    int64_t oldest = db->opts.max_sample_age_ms ? now - db->opts.max_sample_age_ms : INT64_MIN;
    int64_t newest =
        db->opts.max_sample_future_ms ? now + db->opts.max_sample_future_ms : INT64_MAX;

    buf rec = {0}, frame = {0};
    label sorted[EXEMPLAR_MAX_LABEL_RUNES];
    int rc = 0;
    uint64_t pos = 0, invalid = 0, ooo = 0;
    pthread_mutex_lock(&db->commit_mu);
    for (size_t i = 0; i < n && !rc; i++) {
        const write_exemplar *e = &ex[i];
        char why[120];
        /* Every label has a name of at least one code point, so more labels than the limit are
         * too long (and would not fit in sorted). */
        if (e->n_labels > EXEMPLAR_MAX_LABEL_RUNES) {
            snprintf(why, sizeof why, "%zu labels: longer than %d characters", e->n_labels,
                     EXEMPLAR_MAX_LABEL_RUNES);
            reject(res, &res->invalid, e, why);
            continue;
        }
        if (check_labels(e->labels, e->n_labels, sorted, why, sizeof why)) {
            reject(res, &res->invalid, e, why);
            continue;
        }
        if (e->t < oldest || e->t > newest) {
            reject(res, &res->invalid, e,
                   e->t < oldest ? "older than --ingest-max-sample-age"
                                 : "further in the future than --ingest-max-sample-future");
            continue;
        }
        uint64_t h = labels_hash(e->series, e->n_series);
        if (!head_lookup(&db->head, e->series, e->n_series, h)) {
            reject(res, &res->invalid, e, "the series has no samples (unknown series)");
            continue;
        }
        pthread_mutex_lock(&s->mu);
        int ar = store_add(s, e->series, e->n_series, h, sorted, e->n_labels, e->t, e->v);
        pthread_mutex_unlock(&s->mu);
        if (ar == ADD_STORED) {
            res->written++;
            rc = encode_exemplar(&rec, e->series, e->n_series, sorted, e->n_labels, e->t, e->v);
        } else if (ar == ADD_DUPLICATE) {
            res->duplicate++;
        } else if (ar == ADD_OUT_OF_ORDER) {
            reject(res, &res->out_of_order, e,
                   "out of order: not newer than the series' newest exemplar");
        } else {
            rc = strata_errf(err, ar, "out of memory storing exemplars");
        }
    }
    invalid = res->invalid;
    ooo = res->out_of_order;
    if (!rc && rec.len) rc = wal_frame(&frame, WAL_REC_EXEMPLARS, rec.data, rec.len);
    if (!rc && frame.len) rc = wal_write(db->wal, frame.data, frame.len, &pos, err);
    if (rc == STRATA_ENOMEM && err && !*err)
        strata_errf(err, rc, "out of memory storing exemplars");
    pthread_mutex_unlock(&db->commit_mu);
    buf_free(&rec);
    buf_free(&frame);
    if (!rc && pos) rc = wal_sync_to(db->wal, pos, err);
    pthread_mutex_lock(&s->mu);
    s->invalid += invalid;
    s->out_of_order += ooo;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------------
 */

static bool series_matches(const ex_series *x, const matcher *const *ms, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t vl = 0;
        const char *v = labels_get(x->labels, x->n_labels, ms[i]->name, &vl);
        if (!matcher_matches(ms[i], v ? v : "", v ? vl : 0)) return false;
    }
    return true;
}

static label *arena_labels(arena *a, const label *ls, size_t n)
{
    label *v = arena_alloc(a, (n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        char *nm = arena_strndup(a, ls[i].name, ls[i].name_len);
        char *vl = arena_strndup(a, ls[i].value, ls[i].value_len);
        if (!nm || !vl) return NULL;
        v[i] = (label){
            .name = nm, .value = vl, .name_len = ls[i].name_len, .value_len = ls[i].value_len};
    }
    return v;
}

static int result_series_cmp(const void *a, const void *b)
{
    const exemplar_series *x = a, *y = b;
    return labels_compare(x->series, x->n_series, y->series, y->n_series);
}

int db_query_exemplars(strata_db *db, const matcher *const *const *sets, const size_t *counts,
                       size_t n_sets, int64_t start, int64_t end, exemplar_query_result *out,
                       char *err)
{
    memset(out, 0, sizeof *out);
    arena_init(&out->mem, 64 * 1024);
    exemplar_store *s = db->exemplars;
    if (start > end) return 0;
    int rc = 0;
    size_t cap = 0;
    pthread_mutex_lock(&s->mu);
    /* An empty store has no series, so this loop also covers a ring not allocated yet (which
     * is why even that check must wait for the lock: writers allocate it). */
    for (size_t b = 0; b < s->n_buckets && !rc; b++)
        for (ex_series *x = s->buckets[b]; x && !rc; x = x->next_in_bucket) {
            bool match = false;
            for (size_t k = 0; k < n_sets && !match; k++)
                match = series_matches(x, sets[k], counts[k]);
            if (!match) continue;
            size_t in_range = 0;
            for (uint32_t i = x->oldest, c = 0; c < x->count; c++, i = s->ring[i].next)
                if (s->ring[i].t >= start && s->ring[i].t <= end) in_range++;
            if (!in_range) continue;
            if (out->n_series == cap) {
                cap = cap ? cap * 2 : 16;
                exemplar_series *nv = realloc(out->series, cap * sizeof *nv);
                if (!nv) {
                    rc = STRATA_ENOMEM;
                    break;
                }
                out->series = nv;
            }
            exemplar_series *r = &out->series[out->n_series];
            r->series = arena_labels(&out->mem, x->labels, x->n_labels);
            r->n_series = x->n_labels;
            r->points = arena_alloc(&out->mem, in_range * sizeof *r->points);
            r->n_points = 0;
            if (!r->series || !r->points) {
                rc = STRATA_ENOMEM;
                break;
            }
            for (uint32_t i = x->oldest, c = 0; c < x->count; c++, i = s->ring[i].next) {
                const ex_entry *e = &s->ring[i];
                if (e->t < start || e->t > end) continue;
                label *ls = arena_labels(&out->mem, e->labels, e->n_labels);
                if (!ls) {
                    rc = STRATA_ENOMEM;
                    break;
                }
                r->points[r->n_points++] =
                    (exemplar_point){.labels = ls, .n_labels = e->n_labels, .t = e->t, .v = e->v};
            }
            out->n_series++;
        }
    pthread_mutex_unlock(&s->mu);
    if (rc) return strata_errf(err, rc, "out of memory collecting exemplars");
    if (out->n_series > 1)
        qsort(out->series, out->n_series, sizeof *out->series, result_series_cmp);
    return 0;
}

void exemplar_query_result_free(exemplar_query_result *r)
{
    if (!r) return;
    free(r->series);
    arena_free(&r->mem);
    memset(r, 0, sizeof *r);
}

void db_get_exemplar_stats(strata_db *db, exemplar_stats *st)
{
    exemplar_store *s = db->exemplars;
    pthread_mutex_lock(&s->mu);
    *st = (exemplar_stats){.capacity = s->cap,
                           .stored = s->stored,
                           .series = s->n_series,
                           .appended = s->appended,
                           .out_of_order = s->out_of_order,
                           .invalid = s->invalid,
                           .last_timestamp = s->last_t};
    pthread_mutex_unlock(&s->mu);
}
