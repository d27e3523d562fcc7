/*
 * test_hist.c: native-histogram samples through the storage engine: validation, the write path's
 * ordering rules shared with floats, the read API, selection of histogram-only series, label
 * endpoints and WAL replay (bit-exact).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "storage/storage_internal.h"

#include <math.h>

static strata_db *open_db(const char *dir)
{
    strata_db *db = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    int rc = strata_open(dir, &o, &db, err);
    if (rc) fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    return db;
}

/* An integer exponential histogram whose counts grow with k, with a negative side. */
typedef struct test_hist {
    hist_span pos_spans[2], neg_spans[1];
    double pos[6], neg[2];
    native_histogram h;
} test_hist;

static void make_exp(test_hist *th, int k)
{
    memset(th, 0, sizeof *th);
    th->pos_spans[0] = (hist_span){-2, 3};
    th->pos_spans[1] = (hist_span){4, 2};
    th->neg_spans[0] = (hist_span){1, 2};
    for (int i = 0; i < 5; i++)
        th->pos[i] = (double)(k + i);
    th->neg[0] = k;
    th->neg[1] = 2 * k;
    native_histogram *h = &th->h;
    h->schema = 3;
    h->is_int = true;
    h->zero_threshold = 1e-128;
    h->zero_count = 7;
    h->sum = 123.25 + k;
    h->pos_spans = th->pos_spans;
    h->n_pos_spans = 2;
    h->neg_spans = th->neg_spans;
    h->n_neg_spans = 1;
    h->pos_buckets = th->pos;
    h->n_pos_buckets = 5;
    h->neg_buckets = th->neg;
    h->n_neg_buckets = 2;
    double c = h->zero_count;
    for (int i = 0; i < 5; i++)
        c += th->pos[i];
    c += th->neg[0] + th->neg[1];
    h->count = c;
}

static void assert_hist_equal(const native_histogram *a, const native_histogram *b)
{
    assert_int_equal(a->schema, b->schema);
    assert_int_equal(a->is_int, b->is_int);
    assert_memory_equal(&a->zero_threshold, &b->zero_threshold, 8);
    assert_memory_equal(&a->zero_count, &b->zero_count, 8);
    assert_memory_equal(&a->count, &b->count, 8);
    assert_memory_equal(&a->sum, &b->sum, 8);
    assert_int_equal(a->n_pos_spans, b->n_pos_spans);
    assert_int_equal(a->n_neg_spans, b->n_neg_spans);
    assert_int_equal(a->n_pos_buckets, b->n_pos_buckets);
    assert_int_equal(a->n_neg_buckets, b->n_neg_buckets);
    assert_int_equal(a->n_custom_values, b->n_custom_values);
    if (a->n_pos_spans)
        assert_memory_equal(a->pos_spans, b->pos_spans, a->n_pos_spans * sizeof(hist_span));
    if (a->n_neg_spans)
        assert_memory_equal(a->neg_spans, b->neg_spans, a->n_neg_spans * sizeof(hist_span));
    if (a->n_pos_buckets) assert_memory_equal(a->pos_buckets, b->pos_buckets, a->n_pos_buckets * 8);
    if (a->n_neg_buckets) assert_memory_equal(a->neg_buckets, b->neg_buckets, a->n_neg_buckets * 8);
    if (a->n_custom_values)
        assert_memory_equal(a->custom_values, b->custom_values, a->n_custom_values * 8);
}

/* The (index, count) pairs of one side's non-empty buckets. */
static size_t nonzero(const hist_span *sp, uint32_t ns, const double *b, uint32_t nb, int64_t *idx,
                      double *val)
{
    size_t k = 0, i = 0;
    int64_t at = 0;
    for (uint32_t s = 0; s < ns; s++) {
        at += sp[s].offset;
        for (uint32_t l = 0; l < sp[s].length && i < nb; l++, i++, at++)
            if (b[i] != 0) {
                idx[k] = at;
                val[k++] = b[i];
            }
    }
    return k;
}

/* Same histogram up to empty buckets (a recoded chunk adds them): what PromQL would see. */
static void assert_hist_equivalent(const native_histogram *a, const native_histogram *b)
{
    assert_int_equal(a->schema, b->schema);
    assert_int_equal(a->is_int, b->is_int);
    assert_memory_equal(&a->count, &b->count, 8);
    assert_memory_equal(&a->sum, &b->sum, 8);
    assert_memory_equal(&a->zero_count, &b->zero_count, 8);
    int64_t ia[16], ib[16];
    double va[16], vb[16];
    size_t na = nonzero(a->pos_spans, a->n_pos_spans, a->pos_buckets, a->n_pos_buckets, ia, va);
    size_t nb = nonzero(b->pos_spans, b->n_pos_spans, b->pos_buckets, b->n_pos_buckets, ib, vb);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    assert_memory_equal(va, vb, na * sizeof *va);
    na = nonzero(a->neg_spans, a->n_neg_spans, a->neg_buckets, a->n_neg_buckets, ia, va);
    nb = nonzero(b->neg_spans, b->n_neg_spans, b->neg_buckets, b->n_neg_buckets, ib, vb);
    assert_int_equal(na, nb);
    assert_memory_equal(ia, ib, na * sizeof *ia);
    assert_memory_equal(va, vb, na * sizeof *va);
}

static int write_hists(strata_db *db, const char *name, const hist_sample *hs, size_t n,
                       const strata_sample *fs, size_t nf, strata_write_result *res, char *err)
{
    label ls[] = {{"__name__", name, 8, (uint32_t)strlen(name)}, {"job", "j", 3, 1}};
    write_series ws = {.labels = ls,
                       .n_labels = 2,
                       .samples = fs,
                       .n_samples = nf,
                       .histograms = hs,
                       .n_histograms = n};
    write_reject rej;
    return db_write(db, &ws, 1, false, res, &rej, err);
}

/* Selects {__name__=name} over [mint, maxt] and reads series 0's histograms into a. */
static size_t read_hists(strata_db *db, const char *name, int64_t mint, int64_t maxt, arena *a,
                         hist_sample **out, size_t *n_series)
{
    char err[STRATA_ERRMSG_SIZE];
    matcher *m;
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "__name__", 8, name, strlen(name), &m, err),
                     0);
    series_set *set;
    assert_int_equal(db_select(db, (const matcher *const *)&m, 1, mint, maxt, &set, err), 0);
    matcher_free(m);
    *n_series = series_set_count(set);
    size_t n = 0;
    *out = NULL;
    if (*n_series) {
        int rc = series_set_read_histograms(set, 0, a, out, &n);
        assert_true(rc == 0 || rc == 1);
        assert_int_equal(rc, n > 0);
    }
    series_set_free(set);
    return n;
}

static void test_roundtrip_and_replay(void **state)
{
    (void)state;
    char dir[512], err[STRATA_ERRMSG_SIZE];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "hist-rt"), 0);
    strata_db *db = open_db(dir);
    test_hist th[10];
    hist_sample hs[10];
    for (int i = 0; i < 10; i++) {
        make_exp(&th[i], i);
        hs[i] = (hist_sample){.t = 1000 * (i + 1), .h = th[i].h};
    }
    /* A float histogram with custom buckets, and a staleness marker. */
    hist_span cs = {0, 3};
    double cv[] = {0.5, 1, 2.5}, cb[] = {0.25, 1.5, 3};
    hs[8].h = (native_histogram){.schema = HIST_SCHEMA_CUSTOM,
                                 .reset_hint = HIST_HINT_GAUGE,
                                 .count = 4.75,
                                 .sum = -3.5,
                                 .pos_spans = &cs,
                                 .n_pos_spans = 1,
                                 .pos_buckets = cb,
                                 .n_pos_buckets = 3,
                                 .custom_values = cv,
                                 .n_custom_values = 3};
    uint64_t stale = STRATA_STALE_NAN_BITS;
    memcpy(&hs[9].h.sum, &stale, 8);
    strata_write_result res;
    assert_int_equal(write_hists(db, "h", hs, 10, NULL, 0, &res, err), 0);
    assert_int_equal(res.histograms_written, 10);
    assert_int_equal(res.series_created, 1);
    for (int pass = 0; pass < 2; pass++) {
        arena a;
        arena_init(&a, 4096);
        hist_sample *out;
        size_t ns;
        size_t n = read_hists(db, "h", 0, 100000, &a, &out, &ns);
        assert_int_equal(ns, 1);
        assert_int_equal(n, 10);
        for (int i = 0; i < 9; i++) {
            assert_int_equal(out[i].t, hs[i].t);
            assert_hist_equal(&out[i].h, &hs[i].h);
        }
        /* Hints as the chunks give them: the first sample of the series unknown, then not
         * reset; the float gauge histogram opened a gauge chunk. A staleness marker comes back
         * as its sum, as Prometheus stores it. */
        assert_int_equal(out[0].h.reset_hint, HIST_HINT_UNKNOWN);
        assert_int_equal(out[7].h.reset_hint, HIST_HINT_NOT_RESET);
        assert_int_equal(out[8].h.reset_hint, HIST_HINT_GAUGE);
        assert_int_equal(out[9].t, hs[9].t);
        assert_true(native_histogram_is_stale(&out[9].h));
        /* A sub-range, and one with nothing in it. */
        n = read_hists(db, "h", 2500, 4000, &a, &out, &ns);
        assert_int_equal(n, 2);
        assert_int_equal(out[0].t, 3000);
        assert_int_equal(out[1].t, 4000);
        n = read_hists(db, "h", 20000, 30000, &a, &out, &ns);
        assert_int_equal(ns, 0);
        arena_free(&a);
        strata_close(db);
        db = open_db(dir); /* everything comes back from the WAL */
    }
    strata_close(db);
    test_rmtree(dir);
}

static void test_ordering_shared_with_floats(void **state)
{
    (void)state;
    char dir[512], err[STRATA_ERRMSG_SIZE];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "hist-order"), 0);
    strata_db *db = open_db(dir);
    test_hist a, b;
    make_exp(&a, 1);
    make_exp(&b, 2);
    strata_sample f[] = {{1000, 1.0}};
    hist_sample h1[] = {{2000, a.h}};
    strata_write_result res;
    /* Floats at 1000, a histogram at 2000: one series holding both. */
    assert_int_equal(write_hists(db, "m", h1, 1, f, 1, &res, err), 0);
    assert_int_equal(res.samples_written, 1);
    assert_int_equal(res.histograms_written, 1);
    /* Same histogram again: a harmless duplicate. */
    assert_int_equal(write_hists(db, "m", h1, 1, NULL, 0, &res, err), 0);
    assert_int_equal(res.samples_duplicate, 1);
    /* Another histogram at the same time: a conflict. */
    hist_sample h2[] = {{2000, b.h}};
    assert_int_equal(write_hists(db, "m", h2, 1, NULL, 0, &res, err), STRATA_EDUPLICATE);
    assert_int_equal(res.samples_conflict, 1);
    /* A float at the histogram's time conflicts too; an older histogram is out of order. */
    strata_sample f2[] = {{2000, 5.0}};
    assert_int_equal(write_hists(db, "m", NULL, 0, f2, 1, &res, err), STRATA_EDUPLICATE);
    hist_sample h3[] = {{1500, b.h}};
    assert_int_equal(write_hists(db, "m", h3, 1, NULL, 0, &res, err), STRATA_EOUTOFORDER);
    assert_int_equal(res.samples_out_of_order, 1);
    assert_non_null(strstr(err, "out of order"));
    /* A float after the histogram is fine, and floats read back without the histogram. */
    strata_sample f3[] = {{3000, 7.0}};
    assert_int_equal(write_hists(db, "m", NULL, 0, f3, 1, &res, err), 0);
    strata_sample *fs;
    size_t nf;
    strata_label q[] = {{"__name__", "m"}, {"job", "j"}};
    assert_int_equal(strata_read(db, q, 2, 0, 10000, &fs, &nf, err), 0);
    assert_int_equal(nf, 2);
    assert_int_equal(fs[0].t, 1000);
    assert_int_equal(fs[1].t, 3000);
    free(fs);
    arena ar;
    arena_init(&ar, 1024);
    hist_sample *out;
    size_t ns;
    assert_int_equal(read_hists(db, "m", 0, 10000, &ar, &out, &ns), 1);
    assert_hist_equal(&out[0].h, &a.h);
    arena_free(&ar);
    strata_close(db);
    test_rmtree(dir);
}

/* One request holding the same series twice, histograms first: the WAL must replay both kinds
 * in the order the head took them. */
static void test_wal_keeps_kind_order(void **state)
{
    (void)state;
    char dir[512], err[STRATA_ERRMSG_SIZE];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "hist-walorder"), 0);
    strata_db *db = open_db(dir);
    test_hist a, b;
    make_exp(&a, 1);
    make_exp(&b, 2);
    label ls[] = {{"__name__", "mixed", 8, 5}};
    hist_sample h1[] = {{1000, a.h}}, h2[] = {{4000, b.h}};
    strata_sample f1[] = {{2000, 1.5}, {3000, 2.5}};
    write_series ws[] = {{.labels = ls, .n_labels = 1, .histograms = h1, .n_histograms = 1},
                         {.labels = ls,
                          .n_labels = 1,
                          .samples = f1,
                          .n_samples = 2,
                          .histograms = h2,
                          .n_histograms = 1}};
    strata_write_result res;
    write_reject rej;
    assert_int_equal(db_write(db, ws, 2, false, &res, &rej, err), 0);
    assert_int_equal(res.samples_written, 2);
    assert_int_equal(res.histograms_written, 2);
    for (int pass = 0; pass < 2; pass++) {
        arena ar;
        arena_init(&ar, 0);
        hist_sample *out;
        size_t ns;
        assert_int_equal(read_hists(db, "mixed", 0, 10000, &ar, &out, &ns), 2);
        assert_int_equal(out[0].t, 1000);
        assert_int_equal(out[1].t, 4000);
        arena_free(&ar);
        strata_sample *fs;
        size_t nf;
        strata_label q[] = {{"__name__", "mixed"}};
        assert_int_equal(strata_read(db, q, 1, 0, 10000, &fs, &nf, err), 0);
        assert_int_equal(nf, 2);
        free(fs);
        strata_close(db);
        db = open_db(dir);
    }
    strata_close(db);
    test_rmtree(dir);
}

static void test_histogram_only_series_are_selected(void **state)
{
    (void)state;
    char dir[512], err[STRATA_ERRMSG_SIZE];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "hist-sel"), 0);
    strata_db *db = open_db(dir);
    test_hist a;
    make_exp(&a, 3);
    hist_sample h1[] = {{5000, a.h}};
    assert_int_equal(write_hists(db, "only_hist", h1, 1, NULL, 0, NULL, err), 0);
    arena ar;
    arena_init(&ar, 1024);
    hist_sample *out;
    size_t ns;
    assert_int_equal(read_hists(db, "only_hist", 4000, 6000, &ar, &out, &ns), 1);
    assert_int_equal(ns, 1);
    assert_int_equal(read_hists(db, "only_hist", 6000, 7000, &ar, &out, &ns), 0);
    assert_int_equal(ns, 0); /* outside its time range: not selected */
    arena_free(&ar);
    /* Label names and values, with and without matchers. */
    char **v;
    size_t n;
    assert_int_equal(db_label_values(db, "__name__", NULL, 0, 0, 10000, &v, &n, err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "only_hist");
    db_strings_free(v, n);
    matcher *m;
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "job", 3, "j", 1, &m, err), 0);
    assert_int_equal(db_label_names(db, (const matcher *const *)&m, 1, 0, 10000, &v, &n, err), 0);
    assert_int_equal(n, 2);
    db_strings_free(v, n);
    series_set *set;
    assert_int_equal(db_select_labels_only(db, (const matcher *const *)&m, 1, 0, 10000, &set, err),
                     0);
    assert_int_equal(series_set_count(set), 1);
    series_set_free(set);
    matcher_free(m);
    strata_close(db);
    test_rmtree(dir);
}

static void expect_invalid(strata_db *db, const native_histogram *h, const char *what)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    assert_int_equal(native_histogram_validate(h, err), STRATA_EINVAL);
    if (!strstr(err, what)) fail_msg("\"%s\" does not mention \"%s\"", err, what);
    hist_sample hs = {1000, *h};
    strata_write_result res;
    assert_int_equal(write_hists(db, "bad", &hs, 1, NULL, 0, &res, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "series 0: histogram 0 at 1000: "));
    assert_int_equal(res.histograms_written, 0);
}

static void test_validation(void **state)
{
    (void)state;
    char dir[512], err[STRATA_ERRMSG_SIZE];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "hist-val"), 0);
    strata_db *db = open_db(dir);
    test_hist t;
    make_exp(&t, 1);
    assert_int_equal(native_histogram_validate(&t.h, err), 0);
    native_histogram h = t.h;
    h.schema = 9;
    expect_invalid(db, &h, "schema 9");
    h = t.h;
    h.n_pos_buckets = 4;
    h.count -= t.pos[4];
    expect_invalid(db, &h, "positive side: spans need 5 buckets, have 4");
    h = t.h;
    t.pos_spans[1].offset = -1;
    expect_invalid(db, &h, "span number 2 with offset -1");
    t.pos_spans[1].offset = 4;
    h = t.h;
    h.count += 1;
    expect_invalid(db, &h, "but the count is");
    double neg[] = {1, -1};
    h = t.h;
    h.neg_buckets = neg;
    expect_invalid(db, &h, "negative side: bucket number 2");
    h = t.h;
    h.is_int = false;
    h.zero_count = NAN;
    expect_invalid(db, &h, "zero count");
    h = t.h;
    h.pos_buckets = (double[]){1, 2, 3, 4, INFINITY};
    h.is_int = false;
    expect_invalid(db, &h, "must be finite");
    h = t.h;
    h.count = 2.5;
    expect_invalid(db, &h, "integer histogram");
    /* Custom buckets. */
    hist_span cs = {0, 2};
    double cv[] = {1, 1}, cb[] = {1, 2};
    native_histogram c = {.schema = HIST_SCHEMA_CUSTOM,
                          .count = 3,
                          .sum = 1,
                          .pos_spans = &cs,
                          .n_pos_spans = 1,
                          .pos_buckets = cb,
                          .n_pos_buckets = 2,
                          .custom_values = cv,
                          .n_custom_values = 2};
    expect_invalid(db, &c, "strictly increasing");
    cv[1] = INFINITY;
    expect_invalid(db, &c, "+Inf");
    cv[1] = 2;
    assert_int_equal(native_histogram_validate(&c, err), 0);
    cs.offset = 2;
    expect_invalid(db, &c, "too few for spans");
    cs.offset = 0;
    c.zero_count = 1;
    expect_invalid(db, &c, "zero bucket");
    /* A valid histogram and a stale marker with odd counts are accepted. */
    h = t.h;
    uint64_t stale = STRATA_STALE_NAN_BITS;
    memcpy(&h.sum, &stale, 8);
    h.count = 0;
    assert_int_equal(native_histogram_validate(&h, err), 0);
    strata_close(db);
    test_rmtree(dir);
}

/* Enough samples for several chunks, a counter reset and a layout change in the middle. */
static void test_many_chunks_and_resets(void **state)
{
    (void)state;
    char dir[512], err[STRATA_ERRMSG_SIZE];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "hist-many"), 0);
    strata_db *db = open_db(dir);
    enum { N = 300 };
    static test_hist th[N];
    static hist_sample hs[N];
    for (int i = 0; i < N; i++) {
        make_exp(&th[i], i < 150 ? i : i - 150); /* counts drop at 150: a reset */
        if (i >= 200) { /* a new bucket (index 4) from 200 on: the chunk is recoded, not cut */
            th[i].pos_spans[1] = (hist_span){3, 3};
            memmove(&th[i].pos[4], &th[i].pos[3], 2 * sizeof(double));
            th[i].pos[3] = 1;
            th[i].h.n_pos_buckets = 6;
            th[i].h.count += 1;
        }
        hs[i] = (hist_sample){.t = 60000 + 15000 * (int64_t)i, .h = th[i].h};
        if (i == 250) hs[i].h.is_int = false; /* flavour change: another encoding */
    }
    for (int i = 0; i < N; i += 50)
        assert_int_equal(write_hists(db, "many", &hs[i], 50, NULL, 0, NULL, err), 0);
    db_stats st;
    db_get_stats(db, &st);
    assert_true(st.head_chunks >= 3);
    for (int pass = 0; pass < 2; pass++) {
        arena a;
        arena_init(&a, 0);
        hist_sample *out;
        size_t ns;
        size_t n = read_hists(db, "many", 0, INT64_MAX, &a, &out, &ns);
        assert_int_equal(n, N);
        for (int i = 0; i < N; i++) {
            assert_int_equal(out[i].t, hs[i].t);
            assert_hist_equivalent(&out[i].h, &hs[i].h);
            /* Samples 150..199 share the chunk that was recoded when bucket 4 appeared. */
            if (i >= 150 && i < 250) assert_int_equal(out[i].h.n_pos_buckets, 6);
            if (i < 150 || i > 250) assert_hist_equal(&out[i].h, &hs[i].h);
        }
        assert_int_equal(out[150].h.reset_hint, HIST_HINT_RESET);
        assert_int_equal(out[151].h.reset_hint, HIST_HINT_NOT_RESET);
        /* The chunk snapshot (for blocks) covers every sample, in time order. */
        matcher *m;
        assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "__name__", 8, "many", 4, &m, err), 0);
        series *sp = NULL;
        label key[] = {{"__name__", "many", 8, 4}, {"job", "j", 3, 1}};
        sp = head_lookup(&db->head, key, 2, labels_hash(key, 2));
        matcher_free(m);
        assert_non_null(sp);
        hist_chunk_ref *refs;
        size_t nref, total = 0;
        uint8_t *open_copy;
        assert_int_equal(
            head_series_hist_chunks(&db->head, sp, 0, INT64_MAX, &refs, &nref, &open_copy), 0);
        /* 0-119 (full), 120-149 (reset at 150), 150-249 (recoded at 200), 250 (float), 251- */
        assert_int_equal(nref, 5);
        for (size_t c = 0; c < nref; c++) {
            const chunk_codec *codec = chunk_codec_get((chunk_encoding)refs[c].enc);
            hist_sample *cs;
            size_t cn;
            assert_int_equal(codec->decode_hist(refs[c].data, refs[c].len, &a, &cs, &cn, err), 0);
            assert_int_equal(cs[0].t, refs[c].mint);
            assert_int_equal(cs[cn - 1].t, refs[c].maxt);
            assert_int_equal(cs[0].t, hs[total].t);
            total += cn;
        }
        assert_int_equal(total, N);
        free(refs);
        free(open_copy);
        /* A window in the middle starts mid-chunk. */
        n = read_hists(db, "many", hs[123].t, hs[177].t, &a, &out, &ns);
        assert_int_equal(n, 55);
        assert_int_equal(out[0].t, hs[123].t);
        arena_free(&a);
        strata_close(db);
        db = open_db(dir);
    }
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_replay),
        cmocka_unit_test(test_ordering_shared_with_floats),
        cmocka_unit_test(test_histogram_only_series_are_selected),
        cmocka_unit_test(test_wal_keeps_kind_order),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_many_chunks_and_resets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
