/*
 * test_exemplars_concurrent.c: writers adding exemplars to their own series while readers query
 * the store and read its statistics, with a ring small enough that eviction runs all the time.
 * Checked afterwards: every writer's accepted count, the bound, per-series time order, and the
 * same store after replay. Runs under ThreadSanitizer (label "concurrency").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "storage/storage_internal.h"

#include <pthread.h>

#define WRITERS 4
#define PER_WRITER 3000
#define CAPACITY 500

typedef struct worker {
    strata_db *db;
    int id;
    uint64_t written;
    int failed;
} worker;

static void *writer(void *arg)
{
    worker *w = arg;
    char job[16], trace[32];
    snprintf(job, sizeof job, "w%d", w->id);
    label sl[] = {{.name = "__name__", .value = "m", .name_len = 8, .value_len = 1},
                  {.name = "job", .value = job, .name_len = 3, .value_len = (uint32_t)strlen(job)}};
    for (int i = 0; i < PER_WRITER; i++) {
        snprintf(trace, sizeof trace, "%d-%d", w->id, i);
        label ls[] = {{.name = "trace_id",
                       .value = trace,
                       .name_len = 8,
                       .value_len = (uint32_t)strlen(trace)}};
        write_exemplar e = {
            .series = sl, .n_series = 2, .labels = ls, .n_labels = 1, .t = i, .v = i};
        exemplar_write_result res;
        char err[STRATA_ERRMSG_SIZE];
        if (db_write_exemplars(w->db, &e, 1, &res, err)) w->failed = 1;
        w->written += res.written;
    }
    return NULL;
}

static void *reader(void *arg)
{
    worker *w = arg;
    char err[STRATA_ERRMSG_SIZE];
    const matcher *const *sets[1] = {NULL};
    size_t counts[1] = {0};
    for (int i = 0; i < 300; i++) {
        exemplar_query_result r;
        if (db_query_exemplars(w->db, sets, counts, 1, INT64_MIN, INT64_MAX, &r, err))
            w->failed = 1;
        size_t n = 0;
        for (size_t k = 0; k < r.n_series; k++) {
            n += r.series[k].n_points;
            for (size_t j = 1; j < r.series[k].n_points; j++)
                if (r.series[k].points[j].t <= r.series[k].points[j - 1].t) w->failed = 2;
        }
        if (n > CAPACITY) w->failed = 3;
        exemplar_query_result_free(&r);
        exemplar_stats st;
        db_get_exemplar_stats(w->db, &st);
        if (st.stored > CAPACITY) w->failed = 4;
    }
    return NULL;
}

static strata_db *open_db(const char *dir)
{
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    o.max_exemplars = CAPACITY;
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    return db;
}

static void test_concurrent_writers_and_readers(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "ex-conc"), 0);
    strata_db *db = open_db(dir);
    char err[STRATA_ERRMSG_SIZE];
    for (int i = 0; i < WRITERS; i++) {
        char job[16];
        snprintf(job, sizeof job, "w%d", i);
        strata_label ls[] = {{"__name__", "m"}, {"job", job}};
        strata_sample s = {0, 1};
        strata_series ser = {ls, 2, &s, 1};
        assert_int_equal(strata_write(db, &ser, 1, NULL, err), 0);
    }
    worker w[WRITERS + 2];
    pthread_t t[WRITERS + 2];
    for (int i = 0; i < WRITERS + 2; i++) {
        w[i] = (worker){.db = db, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, i < WRITERS ? writer : reader, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS + 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < WRITERS + 2; i++)
        assert_int_equal(w[i].failed, 0);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(w[i].written, PER_WRITER);
    exemplar_stats st;
    db_get_exemplar_stats(db, &st);
    assert_int_equal(st.stored, CAPACITY);
    assert_int_equal(st.appended, WRITERS * PER_WRITER);
    strata_close(db);

    /* Replay rebuilds a full ring of the newest entries. */
    db = open_db(dir);
    db_get_exemplar_stats(db, &st);
    assert_int_equal(st.stored, CAPACITY);
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writers_and_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
