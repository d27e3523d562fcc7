/*
 * head.c: the in-memory (hot) tier: series, their open chunk and their full chunks.
 *
 * Series live in HEAD_STRIPES hash tables chosen by the series hash, so concurrent writers on
 * different series rarely meet on a lock, and in a paged ref -> series table that readers index
 * without locks (pages are published with release stores and never move). Each series appends to
 * an open Gorilla XOR chunk that is cut after max_samples_per_chunk samples or when a sample
 * crosses a chunk_range_ms boundary (chunks never straddle a future block boundary).
 */
#include "storage/storage_internal.h"

#include <stdlib.h>
#include <string.h>

int head_init(head *h, uint32_t max_samples_per_chunk, int64_t chunk_range_ms)
{
    memset(h, 0, sizeof *h);
    h->syms = sym_table_new();
    h->pages = calloc(SERIES_MAX_PAGES, sizeof *h->pages);
    h->index = h->syms ? postings_new(h->syms) : NULL;
    if (!h->syms || !h->pages || !h->index) {
        head_destroy(h);
        return STRATA_ENOMEM;
    }
    for (int i = 0; i < HEAD_STRIPES; i++) pthread_mutex_init(&h->stripes[i].mu, NULL);
    pthread_mutex_init(&h->create_mu, NULL);
    h->next_ref = 1; /* 0 is never a series, so a zeroed ref is visibly wrong */
    atomic_init(&h->min_t, INT64_MAX);
    atomic_init(&h->max_t, INT64_MIN);
    h->max_samples_per_chunk = max_samples_per_chunk ? max_samples_per_chunk : 120;
    h->chunk_range_ms = chunk_range_ms > 0 ? chunk_range_ms : 2 * 3600 * 1000;
    return 0;
}

static void series_free(series *s)
{
    for (uint32_t i = 0; i < s->n_chunks; i++) free(s->chunks[i].data);
    free(s->chunks);
    if (s->open_count) xor_appender_free(&s->open);
    head_hist_free(s->hist);
    free(s->labels);
    free(s);
}

void head_destroy(head *h)
{
    if (h->pages) {
        for (uint32_t p = 0; p < SERIES_MAX_PAGES; p++) {
            series **page = atomic_load(&h->pages[p]);
            if (!page) continue;
            for (uint32_t i = 0; i < SERIES_PAGE_SIZE; i++)
                if (page[i]) series_free(page[i]);
            free(page);
        }
        free(h->pages);
    }
    for (int i = 0; i < HEAD_STRIPES; i++) {
        free(h->stripes[i].slots);
        if (h->syms) pthread_mutex_destroy(&h->stripes[i].mu);
    }
    if (h->syms) pthread_mutex_destroy(&h->create_mu);
    postings_free(h->index);
    sym_table_free(h->syms);
    memset(h, 0, sizeof *h);
}

series *head_series_by_ref(head *h, uint32_t ref)
{
    series **page = atomic_load_explicit(&h->pages[ref >> SERIES_PAGE_BITS], memory_order_acquire);
    if (!page) return NULL;
    return __atomic_load_n(&page[ref & (SERIES_PAGE_SIZE - 1)], __ATOMIC_ACQUIRE);
}

static series *stripe_find(head_stripe *st, const label *labels, size_t n, uint64_t hash)
{
    if (!st->cap) return NULL;
    uint32_t k = (uint32_t)(hash >> 32) & (st->cap - 1);
    for (series *s; (s = st->slots[k]); k = (k + 1) & (st->cap - 1)) {
        if (s->hash == hash && labels_equal(s->labels, s->n_labels, labels, n)) return s;
    }
    return NULL;
}

static int stripe_insert(head_stripe *st, series *s)
{
    if ((st->count + 1) * 4 > st->cap * 3) {
        uint32_t ncap = st->cap ? st->cap * 2 : 16;
        series **slots = calloc(ncap, sizeof *slots);
        if (!slots) return STRATA_ENOMEM;
        for (uint32_t i = 0; i < st->cap; i++) {
            series *x = st->slots[i];
            if (!x) continue;
            uint32_t k = (uint32_t)(x->hash >> 32) & (ncap - 1);
            while (slots[k]) k = (k + 1) & (ncap - 1);
            slots[k] = x;
        }
        free(st->slots);
        st->slots = slots;
        st->cap = ncap;
    }
    uint32_t k = (uint32_t)(s->hash >> 32) & (st->cap - 1);
    while (st->slots[k]) k = (k + 1) & (st->cap - 1);
    st->slots[k] = s;
    st->count++;
    return 0;
}

series *head_lookup(head *h, const label *labels, size_t n, uint64_t hash)
{
    head_stripe *st = &h->stripes[hash & (HEAD_STRIPES - 1)];
    pthread_mutex_lock(&st->mu);
    series *s = stripe_find(st, labels, n, hash);
    pthread_mutex_unlock(&st->mu);
    return s;
}

/* Copies labels into interned symbols; the label array is owned by the series. */
static int intern_labels(head *h, const label *in, size_t n, label **out)
{
    label *v = malloc(n * sizeof *v);
    if (!v) return STRATA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const sym *a = sym_intern(h->syms, in[i].name, in[i].name_len);
        const sym *b = sym_intern(h->syms, in[i].value, in[i].value_len);
        if (!a || !b) {
            free(v);
            return STRATA_ENOMEM;
        }
        v[i] = (label){.name = a->str, .value = b->str, .name_len = a->len, .value_len = b->len};
    }
    *out = v;
    return 0;
}

static int publish_ref(head *h, series *s)
{
    uint32_t p = s->ref >> SERIES_PAGE_BITS;
    if (p >= SERIES_MAX_PAGES) return STRATA_ELIMIT;
    series **page = atomic_load(&h->pages[p]);
    if (!page) {
        page = calloc(SERIES_PAGE_SIZE, sizeof *page);
        if (!page) return STRATA_ENOMEM;
        atomic_store_explicit(&h->pages[p], page, memory_order_release);
    }
    __atomic_store_n(&page[s->ref & (SERIES_PAGE_SIZE - 1)], s, __ATOMIC_RELEASE);
    return 0;
}

int head_get_or_create(head *h, const label *labels, size_t n, uint64_t hash, uint32_t want_ref,
                       series **out, bool *created)
{
    uint32_t si = (uint32_t)(hash & (HEAD_STRIPES - 1));
    head_stripe *st = &h->stripes[si];
    *created = false;
    pthread_mutex_lock(&st->mu);
    series *s = stripe_find(st, labels, n, hash);
    if (s) {
        pthread_mutex_unlock(&st->mu);
        *out = s;
        return 0;
    }
    s = calloc(1, sizeof *s);
    int rc = s ? intern_labels(h, labels, n, &s->labels) : STRATA_ENOMEM;
    if (rc) {
        pthread_mutex_unlock(&st->mu);
        free(s);
        return rc;
    }
    s->n_labels = (uint32_t)n;
    s->hash = hash;
    s->stripe = si;
    /* create_mu nests inside the stripe lock only here, and is never held while taking one. */
    pthread_mutex_lock(&h->create_mu);
    if (want_ref) {
        s->ref = want_ref;
        if (want_ref >= h->next_ref) h->next_ref = want_ref + 1;
    } else {
        s->ref = h->next_ref++;
    }
    rc = publish_ref(h, s);
    pthread_mutex_unlock(&h->create_mu);
    if (!rc) rc = stripe_insert(st, s);
    if (!rc) rc = postings_add(h->index, s->ref, s->labels, s->n_labels);
    pthread_mutex_unlock(&st->mu);
    if (rc) return rc; /* the series stays reachable by ref and is freed with the head */
    atomic_fetch_add(&h->n_series, 1);
    *out = s;
    *created = true;
    return 0;
}

static int cut_open_chunk(head *h, series *s)
{
    size_t len;
    const uint8_t *bytes = xor_appender_bytes(&s->open, &len);
    if (s->n_chunks == s->cap_chunks) {
        uint32_t ncap = s->cap_chunks ? s->cap_chunks * 2 : 4;
        head_chunk *c = realloc(s->chunks, ncap * sizeof *c);
        if (!c) return STRATA_ENOMEM;
        s->chunks = c;
        s->cap_chunks = ncap;
    }
    uint8_t *copy = malloc(len);
    if (!copy) return STRATA_ENOMEM;
    memcpy(copy, bytes, len);
    s->chunks[s->n_chunks++] = (head_chunk){.mint = s->open_mint,
                                            .maxt = s->last_t,
                                            .data = copy,
                                            .len = (uint32_t)len,
                                            .count = (uint16_t)s->open_count};
    xor_appender_free(&s->open);
    s->open_count = 0;
    atomic_fetch_add_explicit(&h->n_chunks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->chunk_bytes, len, memory_order_relaxed);
    /* open_count is already 0 here: the cut chunk's own count is the one to add. */
    atomic_fetch_add_explicit(&h->chunk_samples, s->chunks[s->n_chunks - 1].count,
                              memory_order_relaxed);
    return 0;
}

int head_cut_open_locked(head *h, series *s)
{
    return s->open_count ? cut_open_chunk(h, s) : 0;
}

void head_series_free(series *s)
{
    series_free(s);
}

static void update_bounds(head *h, int64_t t)
{
    int64_t cur = atomic_load_explicit(&h->min_t, memory_order_relaxed);
    while (t < cur && !atomic_compare_exchange_weak(&h->min_t, &cur, t)) {
    }
    cur = atomic_load_explicit(&h->max_t, memory_order_relaxed);
    while (t > cur && !atomic_compare_exchange_weak(&h->max_t, &cur, t)) {
    }
}

int head_append_locked(head *h, series *s, int64_t t, double v, int64_t *last_t)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (s->has_samples) {
        if (last_t) *last_t = s->last_t;
        if (t < s->last_t) return STRATA_EOUTOFORDER;
        if (t == s->last_t)
            return bits == s->last_v_bits && !s->last_is_hist ? 1 : STRATA_EDUPLICATE;
    }
    if (s->open_count &&
        (s->open_count >= h->max_samples_per_chunk ||
         t / h->chunk_range_ms != s->open_mint / h->chunk_range_ms)) {
        int rc = cut_open_chunk(h, s);
        if (rc) return rc;
    }
    if (!s->open_count) {
        int rc = xor_appender_init(&s->open);
        if (rc) return rc;
        s->open_mint = t;
    }
    int rc = xor_append(&s->open, t, v);
    if (rc) return rc;
    s->open_count++;
    s->has_samples = true;
    s->last_t = t;
    s->last_v_bits = bits;
    s->last_is_hist = false;
    return 0;
}

void head_note_appended(head *h, uint64_t n, int64_t mint, int64_t maxt)
{
    if (!n) return;
    atomic_fetch_add_explicit(&h->samples_appended, n, memory_order_relaxed);
    update_bounds(h, mint);
    update_bounds(h, maxt);
}

int head_append(head *h, series *s, int64_t t, double v, int64_t *last_t)
{
    head_stripe *st = &h->stripes[s->stripe];
    pthread_mutex_lock(&st->mu);
    int rc = head_append_locked(h, s, t, v, last_t);
    pthread_mutex_unlock(&st->mu);
    if (rc == 0) head_note_appended(h, 1, t, t);
    return rc;
}

series *head_lookup_locked(head *h, uint32_t stripe, const label *labels, size_t n, uint64_t hash)
{
    return stripe_find(&h->stripes[stripe], labels, n, hash);
}

void head_stripe_lock(head *h, uint32_t stripe)
{
    pthread_mutex_lock(&h->stripes[stripe].mu);
}

void head_stripe_unlock(head *h, uint32_t stripe)
{
    pthread_mutex_unlock(&h->stripes[stripe].mu);
}

int head_series_chunks(head *h, series *s, int64_t mint, int64_t maxt, chunk_ref **out, size_t *n,
                       uint8_t **open_copy)
{
    head_stripe *st = &h->stripes[s->stripe];
    *out = NULL;
    *n = 0;
    *open_copy = NULL;
    pthread_mutex_lock(&st->mu);
    size_t cap = s->n_chunks + 1;
    chunk_ref *v = malloc(cap * sizeof *v);
    if (!v) {
        pthread_mutex_unlock(&st->mu);
        return STRATA_ENOMEM;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < s->n_chunks; i++) {
        head_chunk *c = &s->chunks[i];
        if (c->maxt < mint || c->mint > maxt) continue;
        v[k++] = (chunk_ref){.data = c->data, .len = c->len, .mint = c->mint, .maxt = c->maxt};
    }
    if (s->open_count && s->last_t >= mint && s->open_mint <= maxt) {
        size_t len;
        const uint8_t *bytes = xor_appender_bytes(&s->open, &len);
        uint8_t *copy = malloc(len);
        if (!copy) {
            pthread_mutex_unlock(&st->mu);
            free(v);
            return STRATA_ENOMEM;
        }
        memcpy(copy, bytes, len);
        v[k++] = (chunk_ref){.data = copy, .len = (uint32_t)len, .mint = s->open_mint,
                             .maxt = s->last_t};
        *open_copy = copy;
    }
    pthread_mutex_unlock(&st->mu);
    *out = v;
    *n = k;
    return 0;
}
