/*
 * test_db_concurrent.c: writers and readers on one database at once (run under ThreadSanitizer
 * by `make test`): no lost samples, no torn reads, and a replay that matches what was acked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "storage/storage_internal.h"

#include <pthread.h>

enum { WRITERS = 4, SERIES_PER_WRITER = 50, STEPS = 200, READERS = 2 };

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
    char names[SERIES_PER_WRITER][16];
    for (int s = 0; s < SERIES_PER_WRITER; s++) snprintf(names[s], sizeof names[s], "s%d", s);
    char wid[8];
    snprintf(wid, sizeof wid, "w%d", c->id);
    for (int step = 0; step < STEPS; step++) {
        strata_label ls[SERIES_PER_WRITER][3];
        strata_sample smp[SERIES_PER_WRITER];
        strata_series ser[SERIES_PER_WRITER];
        for (int s = 0; s < SERIES_PER_WRITER; s++) {
            ls[s][0] = (strata_label){"__name__", "load"};
            ls[s][1] = (strata_label){"series", names[s]};
            ls[s][2] = (strata_label){"writer", wid};
            smp[s] = (strata_sample){(int64_t)step * 15000, step + s * 0.25};
            ser[s] = (strata_series){ls[s], 3, &smp[s], 1};
        }
        strata_write_result res;
        int rc = strata_write(c->db, ser, SERIES_PER_WRITER, &res, err);
        if (rc) fprintf(stderr, "write: %s\n", err);
        assert_int_equal(rc, 0);
        c->written += res.samples_written;
    }
    return NULL;
}

static void *reader(void *arg)
{
    ctx *c = arg;
    char err[STRATA_ERRMSG_SIZE];
    while (!atomic_load(c->done)) {
        strata_matcher m = {STRATA_MATCH_EQUAL, "__name__", "load"};
        strata_series_set *set;
        assert_int_equal(strata_select(c->db, &m, 1, 0, INT64_MAX / 2, &set, err), 0);
        const strata_label *ls;
        size_t nl;
        const strata_sample *ss;
        size_t ns;
        while (strata_series_set_next(set, &ls, &nl, &ss, &ns) == 1) {
            for (size_t i = 1; i < ns; i++) assert_true(ss[i].t > ss[i - 1].t);
        }
        strata_series_set_free(set);
    }
    return NULL;
}

static void test_concurrent_writers_and_readers(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-conc"), 0);
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE];
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_ALWAYS;
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    _Atomic int done = 0;
    pthread_t w[WRITERS], r[READERS];
    ctx wc[WRITERS], rcx[READERS];
    for (int i = 0; i < READERS; i++) {
        rcx[i] = (ctx){.db = db, .id = i, .done = &done};
        pthread_create(&r[i], NULL, reader, &rcx[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        wc[i] = (ctx){.db = db, .id = i, .done = &done};
        pthread_create(&w[i], NULL, writer, &wc[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(w[i], NULL);
        total += wc[i].written;
    }
    atomic_store(&done, 1);
    for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
    assert_int_equal(total, (uint64_t)WRITERS * SERIES_PER_WRITER * STEPS);
    db_stats st;
    db_get_stats(db, &st);
    assert_int_equal(st.series, WRITERS * SERIES_PER_WRITER);
    strata_close(db);

    o.fsync = STRATA_FSYNC_NONE;
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    db_get_stats(db, &st);
    assert_int_equal(st.series, WRITERS * SERIES_PER_WRITER);
    assert_int_equal(st.samples_appended, total);
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
