/*
 * test_db.c: the storage engine through its API: writes, reads, ordering rules, label rules,
 * matchers, WAL replay and torn WAL tails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "storage/storage_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <unistd.h>

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

static int write1(strata_db *db, const char *name, const char *job, int64_t t, double v, char *err)
{
    strata_label ls[] = {{"__name__", name}, {"job", job}};
    strata_sample s = {t, v};
    strata_series ser = {ls, 2, &s, 1};
    return strata_write(db, &ser, 1, NULL, err);
}

static void test_write_read_roundtrip(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-rt"), 0);
    strata_db *db = open_db(dir);
    char err[STRATA_ERRMSG_SIZE];
    uint64_t stale = 0x7ff0000000000002ull;
    double stale_v;
    memcpy(&stale_v, &stale, 8);
    double values[] = {1.5, -0.0, INFINITY, -INFINITY, stale_v, 5e-324, 1e308, 42};
    strata_sample samples[8];
    for (int i = 0; i < 8; i++) samples[i] = (strata_sample){1000 * (i + 1), values[i]};
    strata_label ls[] = {{"job", "api"}, {"__name__", "m"}}; /* unsorted: the API sorts */
    strata_series ser = {ls, 2, samples, 8};
    strata_write_result res;
    assert_int_equal(strata_write(db, &ser, 1, &res, err), 0);
    assert_int_equal(res.samples_written, 8);
    assert_int_equal(res.series_created, 1);

    for (int pass = 0; pass < 2; pass++) {
        strata_sample *out;
        size_t n;
        strata_label q[] = {{"__name__", "m"}, {"job", "api"}};
        assert_int_equal(strata_read(db, q, 2, 0, 100000, &out, &n, err), 0);
        assert_int_equal(n, 8);
        for (int i = 0; i < 8; i++) {
            assert_int_equal(out[i].t, 1000 * (i + 1));
            assert_memory_equal(&out[i].v, &values[i], 8); /* bit-exact, NaN payload too */
        }
        free(out);
        assert_int_equal(strata_read(db, q, 2, 2500, 4500, &out, &n, err), 0);
        assert_int_equal(n, 2);
        assert_int_equal(out[0].t, 3000);
        free(out);
        /* Reopen: everything comes back from the WAL. */
        strata_close(db);
        db = open_db(dir);
    }
    strata_close(db);
    test_rmtree(dir);
}

static void test_ordering_rules(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-order"), 0);
    strata_db *db = open_db(dir);
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(write1(db, "m", "a", 2000, 1, err), 0);
    assert_int_equal(write1(db, "m", "a", 1000, 1, err), STRATA_EOUTOFORDER);
    assert_non_null(strstr(err, "out of order"));
    assert_int_equal(write1(db, "m", "a", 2000, 1, err), 0); /* identical: idempotent */
    assert_int_equal(write1(db, "m", "a", 2000, 2, err), STRATA_EDUPLICATE);
    assert_non_null(strstr(err, "different value"));
    /* A batch with one bad sample stores the good ones. */
    strata_label ls[] = {{"__name__", "m"}, {"job", "a"}};
    strata_sample s[] = {{1500, 9}, {3000, 3}, {4000, 4}};
    strata_series ser = {ls, 2, s, 3};
    strata_write_result res;
    assert_int_equal(strata_write(db, &ser, 1, &res, err), STRATA_EOUTOFORDER);
    assert_int_equal(res.samples_written, 2);
    assert_int_equal(res.samples_out_of_order, 1);
    strata_sample *out;
    size_t n;
    assert_int_equal(strata_read(db, ls, 2, 0, 10000, &out, &n, err), 0);
    assert_int_equal(n, 3);
    free(out);
    /* Restart and check the replay did not resurrect rejected samples. */
    strata_close(db);
    db = open_db(dir);
    assert_int_equal(strata_read(db, ls, 2, 0, 10000, &out, &n, err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].t, 2000);
    assert_true(out[0].v == 1);
    free(out);
    strata_close(db);
    test_rmtree(dir);
}

static void test_label_errors_reject_whole_batch(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-labels"), 0);
    strata_db *db = open_db(dir);
    char err[STRATA_ERRMSG_SIZE];
    strata_label good[] = {{"__name__", "ok"}};
    strata_label bad[] = {{"__name__", "x"}, {"a", "1"}, {"a", "2"}};
    strata_sample s = {1000, 1};
    strata_series ser[] = {{good, 1, &s, 1}, {bad, 3, &s, 1}};
    assert_int_equal(strata_write(db, ser, 2, NULL, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "series 1"));
    assert_non_null(strstr(err, "duplicate"));
    strata_sample *out;
    size_t n;
    assert_int_equal(strata_read(db, good, 1, 0, 10000, &out, &n, err), STRATA_ENOTFOUND);
    db_stats st;
    db_get_stats(db, &st);
    assert_int_equal(st.series, 0);
    strata_close(db);
    test_rmtree(dir);
}

static void add(strata_db *db, const char *name, const char *job, const char *inst, int64_t t)
{
    strata_label ls[] = {{"__name__", name}, {"job", job}, {"instance", inst}};
    strata_sample s = {t, 1};
    strata_series ser = {ls, inst[0] ? 3 : 2, &s, 1};
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_write(db, &ser, 1, NULL, err), 0);
}

static size_t count_select(strata_db *db, strata_matcher *ms, size_t n, int64_t mint, int64_t maxt)
{
    strata_series_set *set;
    char err[STRATA_ERRMSG_SIZE];
    int rc = strata_select(db, ms, n, mint, maxt, &set, err);
    if (rc) return (size_t)-1;
    size_t k = 0;
    const strata_label *ls;
    size_t nl;
    const strata_sample *ss;
    size_t ns;
    const strata_label *prev = NULL;
    (void)prev;
    while (strata_series_set_next(set, &ls, &nl, &ss, &ns) == 1) k++;
    strata_series_set_free(set);
    return k;
}

static void test_select_matchers(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-select"), 0);
    strata_db *db = open_db(dir);
    add(db, "up", "api", "a", 1000);
    add(db, "up", "api", "b", 1000);
    add(db, "up", "web", "c", 1000);
    add(db, "up", "web", "", 5000); /* no instance label */
    add(db, "down", "web", "d", 1000);
    strata_matcher up = {STRATA_MATCH_EQUAL, "__name__", "up"};
    assert_int_equal(count_select(db, &up, 1, 0, 10000), 4);
    strata_matcher m2[] = {up, {STRATA_MATCH_NOT_EQUAL, "job", "api"}};
    assert_int_equal(count_select(db, m2, 2, 0, 10000), 2);
    strata_matcher m3[] = {up, {STRATA_MATCH_REGEX, "instance", "a|c"}};
    assert_int_equal(count_select(db, m3, 2, 0, 10000), 2);
    strata_matcher m4[] = {up, {STRATA_MATCH_EQUAL, "instance", ""}};
    assert_int_equal(count_select(db, m4, 2, 0, 10000), 1);
    strata_matcher m5[] = {up, {STRATA_MATCH_NOT_EQUAL, "instance", ""}};
    assert_int_equal(count_select(db, m5, 2, 0, 10000), 3);
    strata_matcher m6[] = {up, {STRATA_MATCH_NOT_REGEX, "instance", "a|b"}};
    assert_int_equal(count_select(db, m6, 2, 0, 10000), 2);
    strata_matcher m7[] = {{STRATA_MATCH_REGEX, "__name__", ".+"}};
    assert_int_equal(count_select(db, m7, 1, 0, 10000), 5);
    assert_int_equal(count_select(db, m7, 1, 4000, 10000), 1); /* time range */
    strata_matcher m8[] = {{STRATA_MATCH_REGEX, "__name__", ".*"}};
    assert_int_equal(count_select(db, m8, 1, 0, 10000), (size_t)-1); /* matches everything */

    char **v;
    size_t n;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(db_label_values(db, "job", NULL, 0, INT64_MIN / 2, INT64_MAX / 2, &v, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "api");
    assert_string_equal(v[1], "web");
    db_strings_free(v, n);
    assert_int_equal(db_label_names(db, NULL, 0, INT64_MIN / 2, INT64_MAX / 2, &v, &n, err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "__name__");
    db_strings_free(v, n);
    strata_close(db);
    test_rmtree(dir);
}

static void test_series_sorted_by_labels(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-sorted"), 0);
    strata_db *db = open_db(dir);
    const char *insts[] = {"z", "b", "m", "a", "q"};
    for (int i = 0; i < 5; i++) add(db, "up", "api", insts[i], 1000);
    strata_matcher up = {STRATA_MATCH_EQUAL, "__name__", "up"};
    strata_series_set *set;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_select(db, &up, 1, 0, 2000, &set, err), 0);
    const strata_label *ls;
    size_t nl;
    const strata_sample *ss;
    size_t ns;
    char prev[8] = "";
    while (strata_series_set_next(set, &ls, &nl, &ss, &ns) == 1) {
        assert_string_equal(ls[1].name, "instance");
        assert_true(strcmp(prev, ls[1].value) < 0);
        snprintf(prev, sizeof prev, "%s", ls[1].value);
        assert_int_equal(ns, 1);
    }
    strata_series_set_free(set);
    strata_close(db);
    test_rmtree(dir);
}

static void test_hash_collisions_are_resolved(void **state)
{
    (void)state;
    head h;
    assert_int_equal(head_init(&h, 120, 7200000), 0);
    label a[] = {{"__name__", "a", 8, 1}};
    label b[] = {{"__name__", "b", 8, 1}};
    series *sa, *sb;
    bool created;
    /* Same hash on purpose: the head must tell the label sets apart. */
    assert_int_equal(head_get_or_create(&h, a, 1, 42, 0, &sa, &created), 0);
    assert_true(created);
    assert_int_equal(head_get_or_create(&h, b, 1, 42, 0, &sb, &created), 0);
    assert_true(created);
    assert_ptr_not_equal(sa, sb);
    assert_ptr_equal(head_lookup(&h, a, 1, 42), sa);
    assert_ptr_equal(head_lookup(&h, b, 1, 42), sb);
    assert_int_equal(head_append(&h, sa, 1000, 1.0, NULL), 0);
    assert_int_equal(head_append(&h, sb, 500, 2.0, NULL), 0);
    head_destroy(&h);
}

static void test_chunks_cut_and_span(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-chunks"), 0);
    strata_db *db = open_db(dir);
    strata_label ls[] = {{"__name__", "c"}};
    enum { N = 1000 };
    strata_sample *s = malloc(N * sizeof *s);
    for (int i = 0; i < N; i++) s[i] = (strata_sample){(int64_t)i * 15000, (double)i * 0.5};
    strata_series ser = {ls, 1, s, N};
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_write(db, &ser, 1, NULL, err), 0);
    db_stats st;
    db_get_stats(db, &st);
    assert_true(st.head_chunks >= N / 120);
    strata_sample *out;
    size_t n;
    assert_int_equal(strata_read(db, ls, 1, 15000 * 100, 15000 * 700, &out, &n, err), 0);
    assert_int_equal(n, 601);
    for (size_t i = 0; i < n; i++) assert_int_equal(out[i].t, (int64_t)(100 + i) * 15000);
    free(out);
    free(s);
    strata_close(db);
    test_rmtree(dir);
}

/* The newest WAL segment with bytes after its last whole record, as a crash mid-write leaves. */
static void test_torn_wal_tail(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-torn"), 0);
    strata_db *db = open_db(dir);
    char err[STRATA_ERRMSG_SIZE];
    for (int i = 1; i <= 100; i++) assert_int_equal(write1(db, "m", "a", i * 1000, i, err), 0);
    strata_close(db);
    /* Find the newest non-empty segment and append a half record. */
    char waldir[600], seg[1000] = "";
    snprintf(waldir, sizeof waldir, "%s/wal", dir);
    DIR *d = opendir(waldir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1000];
        snprintf(p, sizeof p, "%s/%.300s", waldir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && sb.st_size > 0) snprintf(seg, sizeof seg, "%s", p);
    }
    closedir(d);
    assert_true(seg[0]);
    int fd = open(seg, O_WRONLY | O_APPEND);
    unsigned char junk[] = {2, 100, 0, 0, 0, 1, 2, 3, 4, 5, 6};
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    struct stat before;
    stat(seg, &before);

    db = open_db(dir);
    db_stats st;
    db_get_stats(db, &st);
    assert_int_equal(st.wal_torn_tails, 1);
    strata_label ls[] = {{"__name__", "m"}, {"job", "a"}};
    strata_sample *out;
    size_t n;
    assert_int_equal(strata_read(db, ls, 2, 0, 1000000, &out, &n, err), 0);
    assert_int_equal(n, 100);
    free(out);
    struct stat after;
    stat(seg, &after);
    assert_int_equal(after.st_size, before.st_size - (off_t)sizeof junk);
    /* Writes continue and survive another restart. */
    assert_int_equal(write1(db, "m", "a", 101000, 101, err), 0);
    strata_close(db);
    db = open_db(dir);
    assert_int_equal(strata_read(db, ls, 2, 0, 1000000, &out, &n, err), 0);
    assert_int_equal(n, 101);
    free(out);
    db_get_stats(db, &st);
    assert_int_equal(st.wal_torn_tails, 0);
    strata_close(db);
    test_rmtree(dir);
}

static void test_second_open_is_refused(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-lock"), 0);
    strata_db *db = open_db(dir), *db2 = NULL;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_open(dir, NULL, &db2, err), STRATA_EIO);
    assert_non_null(strstr(err, "lock"));
    strata_close(db);
    test_rmtree(dir);
}

static void test_fsync_always_group_commit(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-fsync"), 0);
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE];
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_ALWAYS;
    o.wal_segment_bytes = 4096; /* force rotations */
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    for (int i = 1; i <= 300; i++) assert_int_equal(write1(db, "m", "a", i * 1000, i, err), 0);
    db_stats st;
    db_get_stats(db, &st);
    assert_true(st.wal_fsyncs >= 300);
    assert_true(st.wal_segments > 1);
    strata_close(db);
    db = open_db(dir);
    strata_label ls[] = {{"__name__", "m"}, {"job", "a"}};
    strata_sample *out;
    size_t n;
    assert_int_equal(strata_read(db, ls, 2, 0, 1000000, &out, &n, err), 0);
    assert_int_equal(n, 300);
    free(out);
    strata_close(db);
    test_rmtree(dir);
}

static void test_fsync_interval_waits_for_group_commit(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-interval"), 0);
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE];
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_INTERVAL;
    o.fsync_interval_ms = 50;
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    uint64_t t0 = clock_mono_ns();
    for (int i = 1; i <= 5; i++) assert_int_equal(write1(db, "m", "a", i * 1000, i, err), 0);
    uint64_t took_ms = (clock_mono_ns() - t0) / 1000000;
    db_stats st;
    db_get_stats(db, &st);
    /* Each write waited for the next periodic fsync, and every one was covered by one. */
    assert_true(took_ms >= 5 * 20);
    assert_true(st.wal_fsyncs >= 5);
    strata_close(db);
    test_rmtree(dir);
}

static void test_validation_limits(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "db-limits"), 0);
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE];
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    o.max_labels_per_series = 3;
    o.max_label_value_bytes = 8;
    o.max_series = 3;
    o.max_series_per_metric = 2;
    o.max_sample_age_ms = 3600000;
    o.max_sample_future_ms = 600000;
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    int64_t now = clock_now_ms();
    strata_sample s = {now, 1};
    strata_label many[] = {{"__name__", "m"}, {"a", "1"}, {"b", "2"}, {"c", "3"}};
    strata_series ser = {many, 4, &s, 1};
    assert_int_equal(strata_write(db, &ser, 1, NULL, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "too many labels"));
    strata_label longv[] = {{"__name__", "m"}, {"a", "123456789"}};
    ser = (strata_series){longv, 2, &s, 1};
    assert_int_equal(strata_write(db, &ser, 1, NULL, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "the limit is 8"));
    /* Series limits: a third series of metric m is over the per-metric limit, a fourth series
     * over the global one; the other samples of the same write are stored. */
    strata_label l1[] = {{"__name__", "m"}, {"i", "1"}}, l2[] = {{"__name__", "m"}, {"i", "2"}},
                 l3[] = {{"__name__", "m"}, {"i", "3"}}, l4[] = {{"__name__", "x"}};
    strata_series batch[] = {{l1, 2, &s, 1}, {l2, 2, &s, 1}, {l3, 2, &s, 1}, {l4, 1, &s, 1}};
    strata_write_result res;
    assert_int_equal(strata_write(db, batch, 4, &res, err), STRATA_ELIMIT);
    assert_int_equal(res.samples_written, 3);
    assert_int_equal(res.samples_series_limit, 1);
    assert_non_null(strstr(err, "per metric"));
    strata_label l5[] = {{"__name__", "y"}};
    ser = (strata_series){l5, 1, &s, 1};
    assert_int_equal(strata_write(db, &ser, 1, &res, err), STRATA_ELIMIT);
    assert_non_null(strstr(err, "--ingest-max-series"));
    /* Time bounds. */
    strata_sample old = {now - 7200000, 1}, future = {now + 3600000, 1};
    ser = (strata_series){l1, 2, &old, 1};
    assert_int_equal(strata_write(db, &ser, 1, &res, err), STRATA_EOUTOFORDER);
    assert_int_equal(res.samples_too_old, 1);
    assert_non_null(strstr(err, "older than --ingest-max-sample-age"));
    ser = (strata_series){l1, 2, &future, 1};
    assert_int_equal(strata_write(db, &ser, 1, &res, err), STRATA_EOUTOFORDER);
    assert_int_equal(res.samples_too_far_future, 1);
    db_stats st;
    db_get_stats(db, &st);
    assert_int_equal(st.samples_series_limit, 2);
    assert_int_equal(st.samples_too_old, 1);
    assert_int_equal(st.samples_too_far_future, 1);
    assert_int_equal(st.writes_label_limit, 2);
    assert_int_equal(st.series, 3);
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_roundtrip),
        cmocka_unit_test(test_ordering_rules),
        cmocka_unit_test(test_label_errors_reject_whole_batch),
        cmocka_unit_test(test_select_matchers),
        cmocka_unit_test(test_series_sorted_by_labels),
        cmocka_unit_test(test_hash_collisions_are_resolved),
        cmocka_unit_test(test_chunks_cut_and_span),
        cmocka_unit_test(test_torn_wal_tail),
        cmocka_unit_test(test_second_open_is_refused),
        cmocka_unit_test(test_fsync_always_group_commit),
        cmocka_unit_test(test_validation_limits),
        cmocka_unit_test(test_fsync_interval_waits_for_group_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
