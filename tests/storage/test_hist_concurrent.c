/*
 * test_hist_concurrent.c: native-histogram writers and readers on one database at once (run
 * under ThreadSanitizer by `make test`): readers decode chunks while writers append and cut them,
 * every histogram they see is whole (valid, counts never going down within a series), and the
 * final count matches what was acknowledged, before and after a replay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "storage/storage_internal.h"

#include <pthread.h>

enum { WRITERS = 3, SERIES = 8, STEPS = 400, READERS = 2, BUCKETS = 6 };

typedef struct ctx {
    strata_db *db;
    int id;
    _Atomic int *done;
    uint64_t written;
} ctx;

static void *writer(void *arg)
{
    ctx *c = arg;
    char err[STRATA_ERRMSG_SIZE];
    char wid[8], names[SERIES][8];
    snprintf(wid, sizeof wid, "w%d", c->id);
    for (int s = 0; s < SERIES; s++)
        snprintf(names[s], sizeof names[s], "s%d", s);
    hist_span span = {-2, BUCKETS};
    for (int step = 0; step < STEPS; step++) {
        label ls[SERIES][3];
        write_series ws[SERIES];
        hist_sample hs[SERIES];
        double b[SERIES][BUCKETS];
        for (int s = 0; s < SERIES; s++) {
            double total = 0;
            for (int k = 0; k < BUCKETS; k++)
                total += b[s][k] = (double)(step * (k + 1) + s);
            hs[s] = (hist_sample){.t = (int64_t)step * 15000,
                                  .h = {.schema = 1,
                                        .is_int = (s & 1) == 0,
                                        .count = total,
                                        .sum = step * 0.5,
                                        .pos_spans = &span,
                                        .n_pos_spans = 1,
                                        .pos_buckets = b[s],
                                        .n_pos_buckets = BUCKETS}};
            ls[s][0] = (label){"__name__", "hload", 8, 5};
            ls[s][1] = (label){"series", names[s], 6, (uint32_t)strlen(names[s])};
            ls[s][2] = (label){"writer", wid, 6, (uint32_t)strlen(wid)};
            ws[s] = (write_series){
                .labels = ls[s], .n_labels = 3, .histograms = &hs[s], .n_histograms = 1};
        }
        strata_write_result res;
        write_reject rej;
        int rc = db_write(c->db, ws, SERIES, true, &res, &rej, err);
        if (rc) fprintf(stderr, "write: %s\n", err);
        assert_int_equal(rc, 0);
        c->written += res.histograms_written;
    }
    return NULL;
}

static void *reader(void *arg)
{
    ctx *c = arg;
    char err[STRATA_ERRMSG_SIZE];
    matcher *m;
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "__name__", 8, "hload", 5, &m, err), 0);
    arena a;
    arena_init(&a, 0);
    while (!atomic_load(c->done)) {
        series_set *set;
        assert_int_equal(db_select(c->db, (const matcher *const *)&m, 1, 0, INT64_MAX, &set, err),
                         0);
        for (size_t i = 0; i < series_set_count(set); i++) {
            hist_sample *hs;
            size_t n;
            int rc = series_set_read_histograms(set, i, &a, &hs, &n);
            assert_true(rc == 0 || rc == 1);
            for (size_t k = 0; k < n; k++) {
                assert_int_equal(native_histogram_validate(&hs[k].h, err), 0);
                if (k) {
                    assert_true(hs[k].t > hs[k - 1].t);
                    assert_true(hs[k].h.count >= hs[k - 1].h.count);
                }
            }
            arena_reset(&a);
        }
        series_set_free(set);
    }
    arena_free(&a);
    matcher_free(m);
    return NULL;
}

static uint64_t count_all(strata_db *db)
{
    char err[STRATA_ERRMSG_SIZE];
    matcher *m;
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "__name__", 8, "hload", 5, &m, err), 0);
    series_set *set;
    assert_int_equal(db_select(db, (const matcher *const *)&m, 1, 0, INT64_MAX, &set, err), 0);
    arena a;
    arena_init(&a, 0);
    uint64_t total = 0;
    for (size_t i = 0; i < series_set_count(set); i++) {
        hist_sample *hs;
        size_t n;
        assert_int_equal(series_set_read_histograms(set, i, &a, &hs, &n), 1);
        total += n;
    }
    arena_free(&a);
    series_set_free(set);
    matcher_free(m);
    return total;
}

static void test_writers_and_readers(void **state)
{
    (void)state;
    char dir[512], err[STRATA_ERRMSG_SIZE];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "hist-conc"), 0);
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    strata_db *db;
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    _Atomic int done = 0;
    ctx w[WRITERS], r[READERS];
    pthread_t wt[WRITERS], rt[READERS];
    for (int i = 0; i < READERS; i++) {
        r[i] = (ctx){.db = db, .id = i, .done = &done};
        pthread_create(&rt[i], NULL, reader, &r[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (ctx){.db = db, .id = i, .done = &done};
        pthread_create(&wt[i], NULL, writer, &w[i]);
    }
    uint64_t acked = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(wt[i], NULL);
        acked += w[i].written;
    }
    atomic_store(&done, 1);
    for (int i = 0; i < READERS; i++)
        pthread_join(rt[i], NULL);
    assert_int_equal(acked, (uint64_t)WRITERS * SERIES * STEPS);
    assert_int_equal(count_all(db), acked);
    strata_close(db);
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    assert_int_equal(count_all(db), acked);
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writers_and_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
