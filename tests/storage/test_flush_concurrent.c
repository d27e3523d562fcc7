/*
 * test_flush_concurrent.c: head flushes into blocks while writers append and readers query (run
 * under ThreadSanitizer by `make test`). Every reader sees, for every series, a gap-free prefix
 * of what was written (nothing lost or doubled while chunks move from the head into blocks), and
 * after a reopen the blocks plus the replayed WAL hold every acknowledged sample exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "storage/block.h"
#include "storage/storage_internal.h"

#include <pthread.h>

enum { SERIES = 40, STEPS = 1500, STEP_MS = 15000, READERS = 2 };

typedef struct shared {
    strata_db *db;
    _Atomic int done;
    _Atomic uint64_t reads;
    _Atomic uint64_t flushes;
} shared;

static double value_of(int s, int step)
{
    return s * 100000.0 + step + 0.125;
}

static void *writer(void *arg)
{
    shared *sh = arg;
    char err[STRATA_ERRMSG_SIZE];
    char names[SERIES][16];
    for (int s = 0; s < SERIES; s++)
        snprintf(names[s], sizeof names[s], "s%02d", s);
    for (int step = 0; step < STEPS; step++) {
        strata_label ls[SERIES][2];
        strata_sample smp[SERIES];
        strata_series ser[SERIES];
        for (int s = 0; s < SERIES; s++) {
            ls[s][0] = (strata_label){"__name__", "flushload"};
            ls[s][1] = (strata_label){"series", names[s]};
            smp[s] = (strata_sample){(int64_t)step * STEP_MS, value_of(s, step)};
            ser[s] = (strata_series){ls[s], 2, &smp[s], 1};
        }
        int rc = strata_write(sh->db, ser, SERIES, NULL, err);
        if (rc) fprintf(stderr, "write: %s\n", err);
        assert_int_equal(rc, 0);
    }
    atomic_store(&sh->done, 1);
    return NULL;
}

/* Checks that each series holds exactly steps 0..n-1 with their values. */
static void check_prefix(strata_db *db, bool want_all)
{
    char err[STRATA_ERRMSG_SIZE];
    strata_matcher m = {STRATA_MATCH_EQUAL, "__name__", "flushload"};
    strata_series_set *set;
    assert_int_equal(strata_select(db, &m, 1, 0, INT64_MAX / 2, &set, err), 0);
    const strata_label *ls;
    size_t nl, ns;
    const strata_sample *ss;
    int count = 0;
    while (strata_series_set_next(set, &ls, &nl, &ss, &ns) == 1) {
        int s = atoi(ls[1].value + 1);
        for (size_t i = 0; i < ns; i++) {
            assert_int_equal(ss[i].t, (int64_t)i * STEP_MS);
            assert_true(ss[i].v == value_of(s, (int)i));
        }
        if (want_all) assert_int_equal(ns, STEPS);
        count++;
    }
    if (want_all) assert_int_equal(count, SERIES);
    strata_series_set_free(set);
}

static void *reader(void *arg)
{
    shared *sh = arg;
    while (!atomic_load(&sh->done)) {
        check_prefix(sh->db, false);
        atomic_fetch_add(&sh->reads, 1);
    }
    return NULL;
}

static void *flusher(void *arg)
{
    shared *sh = arg;
    char err[STRATA_ERRMSG_SIZE];
    while (!atomic_load(&sh->done)) {
        int rc = db_flush_head(sh->db, err);
        if (rc) fprintf(stderr, "flush: %s\n", err);
        assert_int_equal(rc, 0);
        atomic_fetch_add(&sh->flushes, 1);
    }
    return NULL;
}

static strata_db *open_db(const char *dir)
{
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    o.chunk_range_ms = 30 * 60 * 1000; /* 30-minute blocks: 1500 steps of 15 s span 12 of them */
    strata_db *db = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = strata_open(dir, &o, &db, err);
    if (rc) fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    return db;
}

static void test_flush_while_writing_and_reading(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "flush-conc"), 0);
    shared sh = {.db = open_db(dir)};
    pthread_t w, f, r[READERS];
    assert_int_equal(pthread_create(&w, NULL, writer, &sh), 0);
    assert_int_equal(pthread_create(&f, NULL, flusher, &sh), 0);
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&r[i], NULL, reader, &sh), 0);
    pthread_join(w, NULL);
    pthread_join(f, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    assert_true(atomic_load(&sh.flushes) > 0);
    check_prefix(sh.db, true);
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(db_flush_head(sh.db, err), 0);
    check_prefix(sh.db, true);

    /* Blocks hold each sample once: their sample counts add up to what was written. */
    block_info *bi;
    size_t nb;
    assert_int_equal(db_blocks_list(sh.db, &bi, &nb), 0);
    uint64_t stored = 0;
    for (size_t i = 0; i < nb; i++)
        stored += bi[i].num_samples;
    free(bi);
    assert_int_equal(stored, (uint64_t)SERIES * STEPS);
    db_stats st;
    db_get_stats(sh.db, &st);
    assert_int_equal(st.head_chunks, 0);
    strata_close(sh.db);

    strata_db *db = open_db(dir);
    check_prefix(db, true);
    strata_close(db);
    test_rmtree(dir);
}

/* A flush whose samples half landed: writes continue after the flush, a reopen replays only the
 * WAL segments the blocks do not cover, and reads merge both. */
static void test_reopen_after_partial_flush(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "flush-reopen"), 0);
    shared sh = {.db = open_db(dir)};
    char err[STRATA_ERRMSG_SIZE];
    strata_label ls[2] = {{"__name__", "flushload"}, {"series", "s00"}};
    for (int step = 0; step < STEPS; step++) {
        strata_sample smp = {(int64_t)step * STEP_MS, value_of(0, step)};
        strata_series ser = {ls, 2, &smp, 1};
        assert_int_equal(strata_write(sh.db, &ser, 1, NULL, err), 0);
        if (step == STEPS / 3 || step == STEPS / 2) assert_int_equal(db_flush_head(sh.db, err), 0);
    }
    strata_sample *out;
    size_t n;
    assert_int_equal(strata_read(sh.db, ls, 2, 0, INT64_MAX / 2, &out, &n, err), 0);
    assert_int_equal(n, STEPS);
    free(out);
    strata_close(sh.db);
    strata_db *db = open_db(dir);
    assert_int_equal(strata_read(db, ls, 2, 0, INT64_MAX / 2, &out, &n, err), 0);
    assert_int_equal(n, STEPS);
    for (size_t i = 0; i < n; i++)
        assert_true(out[i].v == value_of(0, (int)i));
    free(out);
    /* A series that only blocks hold is still found, and one that never existed is not. */
    assert_int_equal(db_flush_head(db, err), 0);
    assert_int_equal(strata_read(db, ls, 2, 0, 10, &out, &n, err), 0);
    assert_int_equal(n, 1);
    free(out);
    strata_label none[2] = {{"__name__", "flushload"}, {"series", "nope"}};
    assert_int_equal(strata_read(db, none, 2, 0, INT64_MAX / 2, &out, &n, err), STRATA_ENOTFOUND);
    strata_close(db);
    test_rmtree(dir);
}

/* Writers that always overlap (four threads, back to back) must not starve a flush: its
 * exclusive step waits for the writes in flight while new ones wait at the gate. */
typedef struct hammer {
    strata_db *db;
    int id;
    _Atomic int *stop;
    _Atomic uint64_t written;
} hammer;

static void *hammer_writer(void *arg)
{
    hammer *hm = arg;
    char err[STRATA_ERRMSG_SIZE], wid[8];
    snprintf(wid, sizeof wid, "w%d", hm->id);
    for (int64_t step = 0; step < 5000 && !atomic_load(hm->stop); step++) {
        strata_label ls[2] = {{"__name__", "hammer"}, {"writer", wid}};
        strata_sample smp = {step * 1000, (double)step};
        strata_series ser = {ls, 2, &smp, 1};
        assert_int_equal(strata_write(hm->db, &ser, 1, NULL, err), 0);
        hm->written++;
    }
    return NULL;
}

static void test_flush_not_starved_by_writes(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "flush-starve"), 0);
    strata_db *db = open_db(dir);
    _Atomic int stop = 0;
    hammer hm[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        hm[i] = (hammer){.db = db, .id = i, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_writer, &hm[i]), 0);
    }
    char err[STRATA_ERRMSG_SIZE];
    int flushes = 0;
    for (;;) {
        uint64_t t0 = clock_mono_ns();
        assert_int_equal(db_flush_head(db, err), 0);
        flushes++;
        /* Generous for a loaded machine and sanitizers; a starved flush never returns. */
        assert_true(clock_mono_ns() - t0 < 60ull * 1000 * 1000 * 1000);
        bool running = false;
        for (int i = 0; i < 4; i++)
            running |= hm[i].written < 5000;
        if (!running || flushes == 50) break;
    }
    atomic_store(&stop, 1);
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += hm[i].written;
    }
    assert_int_equal(db_flush_head(db, err), 0);
    block_info *bi;
    size_t nb;
    assert_int_equal(db_blocks_list(db, &bi, &nb), 0);
    uint64_t stored = 0;
    for (size_t i = 0; i < nb; i++)
        stored += bi[i].num_samples;
    free(bi);
    assert_int_equal(stored, total);
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flush_while_writing_and_reading),
        cmocka_unit_test(test_reopen_after_partial_flush),
        cmocka_unit_test(test_flush_not_starved_by_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
