/*
 * querier.c: reading series out of storage by matchers and time range.
 *
 * A select resolves matchers against the postings index into a bitmap of series refs, keeps the
 * series that have samples in the range, sorts them by labels (PromQL and the HTTP API promise
 * label order), and decodes each series' chunks lazily, one series at a time, as the caller
 * advances: memory stays proportional to one series, not to the whole result.
 */
#include "storage/block.h"
#include "storage/storage_internal.h"

#include <stdlib.h>
#include <string.h>

/* One series of a set: its head series and/or its entries in blocks (merged by labels). */
typedef struct set_entry {
    const label *labels; /* the head series' or an interned copy (db_labelset_intern) */
    uint32_t n_labels;
    series *s;          /* NULL when only blocks hold the series */
    uint32_t first_src; /* block entries: srcs[first_src .. first_src + n_src) */
    uint32_t n_src;
} set_entry;

typedef struct set_src {
    block *b;
    uint32_t id;
} set_src;

struct series_set {
    strata_db *db;
    set_entry *v;
    size_t n;
    set_src *srcs;
    size_t next;
    int64_t mint, maxt;
    bool labels_only;
    bool locked; /* holds db->blocks->mu shared until freed */
    strata_sample *samples;
    size_t cap;
};

/* The time span of a series' samples under its stripe lock; false if it has none. */
static bool series_bounds(head *h, series *s, int64_t *mint, int64_t *maxt)
{
    head_stripe *st = &h->stripes[s->stripe];
    pthread_mutex_lock(&st->mu);
    /* Truncation may leave a series with neither floats nor histograms until it is dropped. */
    int64_t hmin, hmax;
    bool floats = s->n_chunks || s->open_count;
    bool hists = head_hist_bounds_locked(s, &hmin, &hmax);
    bool has = s->has_samples && (floats || hists);
    if (has) {
        /* Floats and histograms each keep their own oldest time; last_t is the newest of both. */
        *mint = floats ? (s->n_chunks ? s->chunks[0].mint : s->open_mint) : INT64_MAX;
        if (hists && hmin < *mint) *mint = hmin;
        *maxt = s->last_t;
    }
    pthread_mutex_unlock(&st->mu);
    return has;
}

static bool matchers_select_something(const matcher *const *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!ms[i]->matches_empty) return true;
    return false;
}

/* Entries before merging: each has one source, its index into the set's sources or -1. */
typedef struct raw_entry {
    const label *labels;
    uint32_t n_labels;
    series *s;
    int64_t src; /* index into srcs, or -1 for a head series */
} raw_entry;

static int cmp_raw(const void *a, const void *b)
{
    const raw_entry *x = a, *y = b;
    int c = labels_compare(x->labels, x->n_labels, y->labels, y->n_labels);
    if (c) return c;
    return x->src < y->src ? -1 : x->src > y->src; /* the head (-1) first, then blocks by time */
}

typedef struct raw_list {
    raw_entry *v;
    size_t n, cap;
    set_src *srcs;
    size_t n_srcs, cap_srcs;
} raw_list;

static int raw_push(raw_list *l, raw_entry e)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        raw_entry *v = realloc(l->v, nc * sizeof *v);
        if (!v) return STRATA_ENOMEM;
        l->v = v;
        l->cap = nc;
    }
    l->v[l->n++] = e;
    return 0;
}

static int src_push(raw_list *l, set_src s)
{
    if (l->n_srcs == l->cap_srcs) {
        size_t nc = l->cap_srcs ? l->cap_srcs * 2 : 64;
        set_src *v = realloc(l->srcs, nc * sizeof *v);
        if (!v) return STRATA_ENOMEM;
        l->srcs = v;
        l->cap_srcs = nc;
    }
    l->srcs[l->n_srcs++] = s;
    return 0;
}

static bool block_overlaps(const block *b, int64_t mint, int64_t maxt)
{
    const block_info *bi = block_get_info(b);
    return bi->mint <= maxt && bi->maxt > mint; /* maxt of a block is exclusive */
}

/* Whether one tombstone covers the whole chunk. */
static bool chunk_deleted(const block_tombstone *t, size_t n, const block_chunk_meta *c)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].mint <= c->mint && t[i].maxt >= c->maxt) return true;
    return false;
}

/* Adds the series of block b matching ms with chunks in [mint, maxt]. */
static int collect_block(series_set *set, raw_list *l, block *b, const matcher *const *ms, size_t n,
                         char *err)
{
    roaring_bitmap_t *ids;
    int rc = block_select(b, ms, n, &ids, err);
    if (rc) return rc;
    roaring_uint32_iterator_t *it = roaring_create_iterator(ids);
    if (!it) rc = STRATA_ENOMEM;
    for (; !rc && it->has_value; roaring_advance_uint32_iterator(it)) {
        label *ls;
        uint32_t nl;
        block_chunk_meta *cs;
        size_t nc;
        rc = block_series(b, it->current_value, &ls, &nl, &cs, &nc, err);
        if (rc) break;
        size_t nt;
        const block_tombstone *tomb = block_tombstones(b, it->current_value, &nt);
        bool in_range = false;
        for (size_t i = 0; i < nc && !in_range; i++)
            in_range = cs[i].maxt >= set->mint && cs[i].mint <= set->maxt &&
                       !chunk_deleted(tomb, nt, &cs[i]);
        free(cs);
        if (!in_range) {
            free(ls);
            continue;
        }
        const label *stable = db_labelset_intern(set->db, ls, nl);
        if (!stable) {
            rc = STRATA_ENOMEM;
            break;
        }
        rc = src_push(l, (set_src){b, it->current_value});
        if (!rc) rc = raw_push(l, (raw_entry){stable, nl, NULL, (int64_t)l->n_srcs - 1});
    }
    roaring_free_uint32_iterator(it);
    roaring_bitmap_free(ids);
    return rc;
}

static int select_series(strata_db *db, const matcher *const *ms, size_t n, int64_t mint,
                         int64_t maxt, bool labels_only, series_set **out, char *err)
{
    *out = NULL;
    if (n > 0 && !matchers_select_something(ms, n))
        return strata_errf(err, STRATA_EINVAL,
                           "the selector must contain at least one matcher that does not match "
                           "the empty string");
    series_set *set = calloc(1, sizeof *set);
    if (!set) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    set->db = db;
    set->mint = mint;
    set->maxt = maxt;
    set->labels_only = labels_only;
    pthread_rwlock_rdlock(&db->blocks->mu);
    set->locked = true;

    raw_list l = {0};
    roaring_bitmap_t *refs;
    int rc = postings_select(db->head.index, ms, n, &refs, err);
    if (rc) {
        series_set_free(set);
        return rc;
    }
    roaring_uint32_iterator_t *it = roaring_create_iterator(refs);
    while (!rc && it && it->has_value) {
        series *s = head_series_by_ref(&db->head, it->current_value);
        int64_t smin, smax;
        if (s && series_bounds(&db->head, s, &smin, &smax) && smax >= mint && smin <= maxt)
            rc = raw_push(&l, (raw_entry){s->labels, s->n_labels, s, -1});
        roaring_advance_uint32_iterator(it);
    }
    roaring_free_uint32_iterator(it);
    roaring_bitmap_free(refs);
    db_blocks *bs = db->blocks;
    for (size_t i = 0; i < bs->n && !rc; i++)
        if (block_overlaps(bs->v[i], mint, maxt)) rc = collect_block(set, &l, bs->v[i], ms, n, err);
    if (!rc && l.n > 1) qsort(l.v, l.n, sizeof *l.v, cmp_raw);
    /* Merge entries with equal labels: one set entry with the head series and every block's. */
    if (!rc) {
        set->v = malloc((l.n ? l.n : 1) * sizeof *set->v);
        set->srcs = malloc((l.n_srcs ? l.n_srcs : 1) * sizeof *set->srcs);
        if (!set->v || !set->srcs) rc = STRATA_ENOMEM;
    }
    uint32_t ns = 0;
    for (size_t i = 0; i < l.n && !rc;) {
        set_entry *e = &set->v[set->n++];
        *e = (set_entry){.labels = l.v[i].labels, .n_labels = l.v[i].n_labels, .first_src = ns};
        size_t j = i;
        for (; j < l.n && labels_equal(l.v[j].labels, l.v[j].n_labels, e->labels, e->n_labels);
             j++) {
            if (l.v[j].s)
                e->s = l.v[j].s;
            else
                set->srcs[ns++] = l.srcs[l.v[j].src];
        }
        e->n_src = ns - e->first_src;
        i = j;
    }
    free(l.v);
    free(l.srcs);
    if (rc) {
        series_set_free(set);
        return rc == STRATA_ENOMEM ? strata_errf(err, rc, "out of memory") : rc;
    }
    *out = set;
    return 0;
}

int db_select(strata_db *db, const matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
              series_set **out, char *err)
{
    return select_series(db, ms, n, mint, maxt, false, out, err);
}

int db_select_labels_only(strata_db *db, const matcher *const *ms, size_t n, int64_t mint,
                          int64_t maxt, series_set **out, char *err)
{
    return select_series(db, ms, n, mint, maxt, true, out, err);
}

static int push_sample(strata_sample **out, size_t *cap, size_t *k, int64_t t, double v)
{
    if (*k == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        strata_sample *ns = realloc(*out, ncap * sizeof *ns);
        if (!ns) return STRATA_ENOMEM;
        *out = ns;
        *cap = ncap;
    }
    (*out)[(*k)++] = (strata_sample){.t = t, .v = v};
    return 0;
}

/* Appends the samples of s within [mint, maxt] to *out (grown as needed). */
static int decode_head(strata_db *db, series *s, int64_t mint, int64_t maxt, strata_sample **out,
                       size_t *cap, size_t *count)
{
    chunk_ref *chunks;
    size_t nc;
    uint8_t *open_copy;
    int rc = head_series_chunks(&db->head, s, mint, maxt, &chunks, &nc, &open_copy);
    if (rc) return rc;
    for (size_t c = 0; c < nc && !rc; c++) {
        xor_iter it;
        rc = xor_iter_init(&it, chunks[c].data, chunks[c].len);
        if (rc) break;
        int more = chunks[c].mint < mint ? xor_iter_seek(&it, mint) : xor_iter_next(&it);
        for (; more == 1 && !rc; more = xor_iter_next(&it)) {
            int64_t t;
            double v;
            xor_iter_at(&it, &t, &v);
            if (t > maxt) break;
            rc = push_sample(out, cap, count, t, v);
        }
        if (more < 0) rc = more;
    }
    free(chunks);
    free(open_copy);
    return rc;
}

/* Appends the samples of one block series within [mint, maxt], decoded straight from the mmap. */
static int decode_block(const set_src *src, int64_t mint, int64_t maxt, strata_sample **out,
                        size_t *cap, size_t *count)
{
    label *ls;
    uint32_t nl;
    block_chunk_meta *cs;
    size_t nc;
    char err[STRATA_ERRMSG_SIZE];
    int rc = block_series(src->b, src->id, &ls, &nl, &cs, &nc, err);
    if (rc) {
        strata_log(LOG_ERROR, "%s", err);
        return rc;
    }
    free(ls);
    size_t nt;
    const block_tombstone *tomb = block_tombstones(src->b, src->id, &nt);
    for (size_t c = 0; c < nc && !rc; c++) {
        if (cs[c].maxt < mint || cs[c].mint > maxt || chunk_deleted(tomb, nt, &cs[c])) continue;
        uint8_t enc;
        const uint8_t *data;
        uint32_t len;
        rc = block_chunk(src->b, cs[c].ref, &enc, &data, &len, err);
        const chunk_codec *codec = rc ? NULL : chunk_codec_get((chunk_encoding)enc);
        uint32_t nsamples = 0;
        if (!rc && !codec)
            rc = strata_errf(err, STRATA_EUNSUPPORTED, "block %s: chunk encoding %u is unknown",
                             block_get_info(src->b)->ulid, enc);
        if (!rc) rc = codec->count(data, len, &nsamples);
        if (!rc && *count + nsamples > *cap) {
            size_t ncap = *cap ? *cap : 256;
            while (ncap < *count + nsamples)
                ncap *= 2;
            strata_sample *ns = realloc(*out, ncap * sizeof *ns);
            if (!ns)
                rc = STRATA_ENOMEM;
            else {
                *out = ns;
                *cap = ncap;
            }
        }
        size_t got = 0;
        if (!rc) rc = codec->decode(data, len, *out + *count, nsamples, &got, err);
        if (rc) {
            strata_log(LOG_ERROR, "block %s: %s", block_get_info(src->b)->ulid, err);
            break;
        }
        /* Keep only [mint, maxt] of this chunk. */
        size_t keep = 0;
        for (size_t i = 0; i < got; i++) {
            strata_sample x = (*out)[*count + i];
            if (x.t >= mint && x.t <= maxt && !(nt && block_tombstoned(tomb, nt, x.t)))
                (*out)[*count + keep++] = x;
        }
        *count += keep;
    }
    free(cs);
    return rc;
}

static int cmp_sample_t(const void *a, const void *b)
{
    int64_t x = ((const strata_sample *)a)->t, y = ((const strata_sample *)b)->t;
    return x < y ? -1 : x > y;
}

/* The samples of a set entry in [mint, maxt]: blocks and head merged in time order, one sample
 * per timestamp where sources overlap. */
static int decode_entry(const series_set *set, const set_entry *e, strata_sample **out, size_t *cap,
                        size_t *count)
{
    *count = 0;
    int rc = 0;
    for (uint32_t i = 0; i < e->n_src && !rc; i++)
        rc = decode_block(&set->srcs[e->first_src + i], set->mint, set->maxt, out, cap, count);
    if (!rc && e->s) rc = decode_head(set->db, e->s, set->mint, set->maxt, out, cap, count);
    if (rc || e->n_src + (e->s != NULL) < 2) return rc;
    strata_sample *v = *out;
    size_t n = *count;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = v[i].t > v[i - 1].t;
    if (sorted) return 0;
    qsort(v, n, sizeof *v, cmp_sample_t);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || v[k - 1].t != v[i].t) v[k++] = v[i];
    *count = k;
    return 0;
}

static int load_samples(series_set *set, const set_entry *e, size_t *count)
{
    return decode_entry(set, e, &set->samples, &set->cap, count);
}

int series_set_read(const series_set *set, size_t i, const label **labels, size_t *n_labels,
                    strata_sample **out, size_t *cap, size_t *n)
{
    if (i >= set->n) return 0;
    const set_entry *e = &set->v[i];
    *labels = e->labels;
    *n_labels = e->n_labels;
    *n = 0;
    if (set->labels_only) return 1;
    int rc = decode_entry(set, e, out, cap, n);
    if (rc < 0) return rc;
    return *n > 0;
}

int series_set_read_histograms(const series_set *set, size_t i, arena *a, hist_sample **out,
                               size_t *n)
{
    *out = NULL;
    *n = 0;
    if (i >= set->n || set->labels_only) return 0;
    const set_entry *e = &set->v[i];
    if (!e->s) return 0;
    int rc = head_hist_read(&set->db->head, e->s, set->mint, set->maxt, a, out, n);
    if (rc < 0) return rc;
    return *n > 0;
}

int series_set_next(series_set *set, const label **labels, size_t *n_labels,
                    const strata_sample **samples, size_t *n_samples)
{
    while (set->next < set->n) {
        const set_entry *e = &set->v[set->next++];
        size_t k = 0;
        if (!set->labels_only) {
            if (load_samples(set, e, &k) < 0) return STRATA_ECORRUPT;
            if (k == 0) continue; /* appended-to after select but nothing in range */
        }
        *labels = e->labels;
        *n_labels = e->n_labels;
        if (samples) *samples = set->samples;
        if (n_samples) *n_samples = k;
        return 1;
    }
    return 0;
}

size_t series_set_count(const series_set *s)
{
    return s->n;
}

void series_set_free(series_set *s)
{
    if (!s) return;
    if (s->locked) pthread_rwlock_unlock(&s->db->blocks->mu);
    free(s->v);
    free(s->srcs);
    free(s->samples);
    free(s);
}

/* ---- label names and values ---------------------------------------------------------------- */

void db_strings_free(char **v, size_t n)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts, removes duplicates, and copies. */
static int strings_finish(const char **v, size_t n, char ***out, size_t *count)
{
    if (n > 1) qsort(v, n, sizeof *v, cmp_cstr);
    char **res = calloc(n ? n : 1, sizeof *res);
    if (!res) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && strcmp(res[k - 1], v[i]) == 0) continue;
        if (!(res[k] = strdup(v[i]))) {
            db_strings_free(res, k);
            return STRATA_ENOMEM;
        }
        k++;
    }
    *out = res;
    *count = k;
    return 0;
}

static bool head_overlaps(strata_db *db, int64_t mint, int64_t maxt)
{
    int64_t lo = atomic_load(&db->head.min_t), hi = atomic_load(&db->head.max_t);
    return lo <= hi && hi >= mint && lo <= maxt;
}

static int collect_from_series(strata_db *db, const char *name, const matcher *const *ms, size_t n,
                               int64_t mint, int64_t maxt, char ***out, size_t *count, char *err)
{
    series_set *set;
    int rc = db_select_labels_only(db, ms, n, mint, maxt, &set, err);
    if (rc) return rc;
    buf names = {0};
    size_t k = 0;
    const label *ls;
    size_t nl;
    while (series_set_next(set, &ls, &nl, NULL, NULL) == 1) {
        for (size_t i = 0; i < nl; i++) {
            const char *s = NULL;
            if (!name) s = ls[i].name;
            else if (strcmp(ls[i].name, name) == 0) s = ls[i].value;
            if (!s) continue;
            if (buf_append(&names, &s, sizeof s)) {
                buf_free(&names);
                series_set_free(set);
                return STRATA_ENOMEM;
            }
            k++;
        }
    }
    rc = strings_finish((const char **)names.data, k, out, count);
    buf_free(&names);
    series_set_free(set);
    return rc;
}

/* Label names (name NULL) or one name's values of every series in the head and the blocks
 * overlapping [mint, maxt], straight from their postings, when no matcher narrows them. */
static int append_syms(buf *b, const sym **v, size_t k, size_t *total)
{
    for (size_t i = 0; i < k; i++) {
        const char *str = v[i]->str;
        if (buf_append(b, &str, sizeof str)) return STRATA_ENOMEM;
    }
    *total += k;
    return 0;
}

static int index_strings(strata_db *db, const char *name, int64_t mint, int64_t maxt, char ***out,
                         size_t *count)
{
    buf all = {0};
    size_t total = 0;
    const sym **v;
    size_t k;
    int rc = 0;
    if (head_overlaps(db, mint, maxt)) {
        rc = name ? postings_label_values(db->head.index, name, &v, &k)
                  : postings_label_names(db->head.index, &v, &k);
        if (!rc) {
            rc = append_syms(&all, v, k, &total);
            free(v);
        }
    }
    db_blocks *bs = db->blocks;
    pthread_rwlock_rdlock(&bs->mu);
    for (size_t i = 0; i < bs->n && !rc; i++) {
        if (!block_overlaps(bs->v[i], mint, maxt)) continue;
        rc =
            name ? block_label_values(bs->v[i], name, &v, &k) : block_label_names(bs->v[i], &v, &k);
        if (!rc) {
            rc = append_syms(&all, v, k, &total);
            free(v);
        }
    }
    pthread_rwlock_unlock(&bs->mu);
    if (!rc) rc = strings_finish((const char **)all.data, total, out, count);
    buf_free(&all);
    return rc;
}

int db_label_names(strata_db *db, const matcher *const *ms, size_t n, int64_t mint, int64_t maxt,
                   char ***out, size_t *count, char *err)
{
    if (n) return collect_from_series(db, NULL, ms, n, mint, maxt, out, count, err);
    return index_strings(db, NULL, mint, maxt, out, count);
}

int db_label_values(strata_db *db, const char *name, const matcher *const *ms, size_t n,
                    int64_t mint, int64_t maxt, char ***out, size_t *count, char *err)
{
    if (n) return collect_from_series(db, name, ms, n, mint, maxt, out, count, err);
    return index_strings(db, name, mint, maxt, out, count);
}

/* ---- the public C API over the querier ----------------------------------------------------- */

struct strata_series_set {
    series_set *set;
    strata_label *labels;
    size_t cap;
};

static int compile_matchers(const strata_matcher *in, size_t n, matcher ***out, char *err)
{
    matcher **ms = calloc(n ? n : 1, sizeof *ms);
    if (!ms) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!in[i].name || !in[i].value) {
            for (size_t k = 0; k < i; k++) matcher_free(ms[k]);
            free(ms);
            return strata_errf(err, STRATA_EINVAL, "matcher %zu has a NULL name or value", i);
        }
        int rc = matcher_new(in[i].type, in[i].name, strlen(in[i].name), in[i].value,
                             strlen(in[i].value), &ms[i], err);
        if (rc) {
            for (size_t k = 0; k < i; k++) matcher_free(ms[k]);
            free(ms);
            return rc;
        }
    }
    *out = ms;
    return 0;
}

static void free_matchers(matcher **ms, size_t n)
{
    for (size_t i = 0; i < n; i++) matcher_free(ms[i]);
    free(ms);
}

int strata_select(strata_db *db, const strata_matcher *matchers, size_t n, int64_t mint,
                  int64_t maxt, strata_series_set **out, char *err)
{
    *out = NULL;
    if (n == 0) return strata_errf(err, STRATA_EINVAL, "at least one matcher is required");
    matcher **ms = NULL;
    int rc = compile_matchers(matchers, n, &ms, err);
    if (rc) return rc;
    strata_series_set *ss = calloc(1, sizeof *ss);
    if (!ss) {
        free_matchers(ms, n);
        return STRATA_ENOMEM;
    }
    rc = db_select(db, (const matcher *const *)ms, n, mint, maxt, &ss->set, err);
    free_matchers(ms, n);
    if (rc) {
        free(ss);
        return rc;
    }
    *out = ss;
    return 0;
}

int strata_series_set_next(strata_series_set *ss, const strata_label **labels, size_t *n_labels,
                           const strata_sample **samples, size_t *n_samples)
{
    const label *ls;
    size_t nl;
    int rc = series_set_next(ss->set, &ls, &nl, samples, n_samples);
    if (rc != 1) return rc;
    if (nl > ss->cap) {
        strata_label *v = realloc(ss->labels, nl * sizeof *v);
        if (!v) return STRATA_ENOMEM;
        ss->labels = v;
        ss->cap = nl;
    }
    /* Interned symbols are NUL-terminated, so they serve as C strings directly. */
    for (size_t i = 0; i < nl; i++) ss->labels[i] = (strata_label){ls[i].name, ls[i].value};
    *labels = ss->labels;
    *n_labels = nl;
    return 1;
}

void strata_series_set_free(strata_series_set *ss)
{
    if (!ss) return;
    series_set_free(ss->set);
    free(ss->labels);
    free(ss);
}

/* Finds the entry with exactly labels v in the set; NULL if none. */
static const set_entry *find_entry(const series_set *set, const label *v, size_t n)
{
    for (size_t i = 0; i < set->n; i++)
        if (labels_equal(set->v[i].labels, set->v[i].n_labels, v, n)) return &set->v[i];
    return NULL;
}

int strata_read(strata_db *db, const strata_label *labels, size_t n_labels, int64_t mint,
                int64_t maxt, strata_sample **samples, size_t *n, char *err)
{
    *samples = NULL;
    *n = 0;
    label *v = calloc(n_labels ? n_labels : 1, sizeof *v);
    if (!v) return STRATA_ENOMEM;
    for (size_t i = 0; i < n_labels; i++)
        v[i] = (label){.name = labels[i].name, .value = labels[i].value,
                       .name_len = (uint32_t)strlen(labels[i].name),
                       .value_len = (uint32_t)strlen(labels[i].value)};
    size_t nl = n_labels;
    label_rules rules = {.names = db->opts.names, .require_sorted = false};
    int rc = labels_normalize(v, &nl, &rules, err);
    matcher **ms = rc ? NULL : calloc(nl ? nl : 1, sizeof *ms);
    if (!rc && !ms) rc = STRATA_ENOMEM;
    for (size_t i = 0; i < nl && !rc; i++)
        rc = matcher_new(STRATA_MATCH_EQUAL, v[i].name, v[i].name_len, v[i].value, v[i].value_len,
                         &ms[i], err);
    /* Samples in range from head and blocks; existence over all time for the not-found case. */
    series_set *set = NULL, *any = NULL;
    if (!rc) rc = db_select(db, (const matcher *const *)ms, nl, mint, maxt, &set, err);
    const set_entry *e = set ? find_entry(set, v, nl) : NULL;
    size_t k = 0;
    if (!rc && e) rc = load_samples(set, e, &k);
    if (!rc && !e) {
        rc = db_select_labels_only(db, (const matcher *const *)ms, nl, INT64_MIN, INT64_MAX, &any,
                                   err);
        if (!rc && !find_entry(any, v, nl) && !head_lookup(&db->head, v, nl, labels_hash(v, nl)))
            rc = strata_errf(err, STRATA_ENOTFOUND, "no such series");
    }
    for (size_t i = 0; ms && i < nl; i++)
        matcher_free(ms[i]);
    free(ms);
    free(v);
    series_set_free(any);
    if (!rc && e && k) {
        *samples = set->samples; /* handed over to the caller */
        *n = k;
        set->samples = NULL;
    }
    series_set_free(set);
    if (rc == STRATA_ECORRUPT) return strata_errf(err, rc, "cannot decode the series' chunks");
    return rc;
}

/* ---- cardinality statistics ------------------------------------------------------------------ */

typedef struct card_list {
    db_card *v;
    size_t n, cap;
} card_list;

static int card_add(card_list *l, const char *name, size_t len, uint64_t count)
{
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i].name) == len && memcmp(l->v[i].name, name, len) == 0) {
            l->v[i].count += count;
            return 0;
        }
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        db_card *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return STRATA_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n].name = strndup(name, len);
    if (!l->v[l->n].name) return STRATA_ENOMEM;
    l->v[l->n++].count = count;
    return 0;
}

typedef struct card_ctx {
    card_list metrics, values, bytes, pairs;
    uint64_t pairs_total;
} card_ctx;

static int card_visit(void *arg, const char *name, uint32_t nlen, const char *value, uint32_t vlen,
                      uint64_t n_series)
{
    card_ctx *c = arg;
    c->pairs_total++;
    int rc = 0;
    if (nlen == 8 && memcmp(name, LABEL_METRIC_NAME, 8) == 0)
        rc = card_add(&c->metrics, value, vlen, n_series);
    if (!rc) rc = card_add(&c->values, name, nlen, 1);
    if (!rc) rc = card_add(&c->bytes, name, nlen, vlen);
    if (!rc) {
        char pair[512];
        int n = snprintf(pair, sizeof pair, "%.*s=%.*s", (int)(nlen > 200 ? 200 : nlen), name,
                         (int)(vlen > 300 ? 300 : vlen), value);
        /* Pairs are distinct by construction: append without the linear search. */
        card_list *l = &c->pairs;
        if (l->n == l->cap) {
            size_t nc = l->cap ? l->cap * 2 : 64;
            db_card *nv = realloc(l->v, nc * sizeof *nv);
            if (!nv) return STRATA_ENOMEM;
            l->v = nv;
            l->cap = nc;
        }
        l->v[l->n].name = strndup(pair, (size_t)n);
        if (!l->v[l->n].name) return STRATA_ENOMEM;
        l->v[l->n++].count = n_series;
    }
    return rc;
}

static int cmp_card_desc(const void *a, const void *b)
{
    const db_card *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void card_top(card_list *l, size_t limit, db_card **out, size_t *n)
{
    if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, cmp_card_desc);
    size_t keep = l->n < limit ? l->n : limit;
    for (size_t i = keep; i < l->n; i++) free(l->v[i].name);
    *out = l->v;
    *n = keep;
}

int db_tsdb_status_get(strata_db *db, size_t limit, db_tsdb_status *out, char *err)
{
    memset(out, 0, sizeof *out);
    card_ctx c;
    memset(&c, 0, sizeof c);
    int rc = postings_walk(db->head.index, card_visit, &c);
    if (rc) {
        db_tsdb_status tmp = {0};
        card_top(&c.metrics, 0, &tmp.series_by_metric, &tmp.n_series_by_metric);
        card_top(&c.values, 0, &tmp.values_by_label, &tmp.n_values_by_label);
        card_top(&c.bytes, 0, &tmp.bytes_by_label, &tmp.n_bytes_by_label);
        card_top(&c.pairs, 0, &tmp.series_by_pair, &tmp.n_series_by_pair);
        db_tsdb_status_free(&tmp);
        return strata_errf(err, rc, "out of memory collecting statistics");
    }
    db_stats st;
    db_get_stats(db, &st);
    out->num_series = st.series;
    out->num_label_pairs = c.pairs_total;
    out->chunk_count = st.head_chunks;
    out->min_time = st.series ? st.min_time : 0;
    out->max_time = st.series ? st.max_time : 0;
    card_top(&c.metrics, limit, &out->series_by_metric, &out->n_series_by_metric);
    card_top(&c.values, limit, &out->values_by_label, &out->n_values_by_label);
    card_top(&c.bytes, limit, &out->bytes_by_label, &out->n_bytes_by_label);
    card_top(&c.pairs, limit, &out->series_by_pair, &out->n_series_by_pair);
    return 0;
}

void db_tsdb_status_free(db_tsdb_status *s)
{
    db_card *lists[] = {s->series_by_metric, s->values_by_label, s->bytes_by_label, s->series_by_pair};
    size_t ns[] = {s->n_series_by_metric, s->n_values_by_label, s->n_bytes_by_label, s->n_series_by_pair};
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < ns[k]; i++) free(lists[k][i].name);
        free(lists[k]);
    }
    memset(s, 0, sizeof *s);
}
