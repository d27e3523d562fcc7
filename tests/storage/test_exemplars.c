/*
 * test_exemplars.c: the exemplar store through db_write_exemplars / db_query_exemplars: the
 * validation rules, the circular buffer's bound and eviction order, queries by matcher sets and
 * time range, WAL replay (also with a smaller capacity after the restart), a torn exemplar record
 * and the store turned off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "storage/storage_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static strata_db *open_db(const char *dir, uint32_t max_exemplars)
{
    strata_db *db = NULL;
    char err[STRATA_ERRMSG_SIZE] = "";
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    o.max_exemplars = max_exemplars;
    int rc = strata_open(dir, &o, &db, err);
    if (rc) fprintf(stderr, "open: %s\n", err);
    assert_int_equal(rc, 0);
    return db;
}

#define L(n, v)                                                                                    \
    ((label){.name = (n), .value = (v), .name_len = sizeof(n) - 1, .value_len = sizeof(v) - 1})

/* A series {__name__="m", job=<job>} with one sample at t, so exemplars may refer to it. */
static void add_series(strata_db *db, const char *job, int64_t t)
{
    strata_label ls[] = {{"__name__", "m"}, {"job", job}};
    strata_sample s = {t, 1};
    strata_series ser = {ls, 2, &s, 1};
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(strata_write(db, &ser, 1, NULL, err), 0);
}

/* Writes one exemplar with a trace_id label for {__name__="m", job=<job>}. */
static void put(strata_db *db, const char *job, const char *trace, int64_t t, double v,
                exemplar_write_result *res)
{
    label sl[] = {L("__name__", "m"),
                  {.name = "job", .value = job, .name_len = 3, .value_len = (uint32_t)strlen(job)}};
    label ls[] = {
        {.name = "trace_id", .value = trace, .name_len = 8, .value_len = (uint32_t)strlen(trace)}};
    write_exemplar e = {.series = sl, .n_series = 2, .labels = ls, .n_labels = 1, .t = t, .v = v};
    char err[STRATA_ERRMSG_SIZE] = "";
    assert_int_equal(db_write_exemplars(db, &e, 1, res, err), 0);
}

/* The trace ids of every exemplar of series matching job=~re, in result order. */
static void query(strata_db *db, const char *re, int64_t start, int64_t end, char *out, size_t len)
{
    matcher *m;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(matcher_new(STRATA_MATCH_REGEX, "job", 3, re, strlen(re), &m, err), 0);
    const matcher *set[] = {m};
    const matcher *const *sets[] = {set};
    size_t counts[] = {1};
    exemplar_query_result r;
    assert_int_equal(db_query_exemplars(db, sets, counts, 1, start, end, &r, err), 0);
    out[0] = '\0';
    for (size_t i = 0; i < r.n_series; i++) {
        uint32_t jl;
        const char *job = labels_get(r.series[i].series, r.series[i].n_series, "job", &jl);
        snprintf(out + strlen(out), len - strlen(out), "%s%.*s:", i ? " " : "", (int)jl, job);
        for (size_t k = 0; k < r.series[i].n_points; k++)
            snprintf(out + strlen(out), len - strlen(out), "%s%s", k ? "," : "",
                     r.series[i].points[k].labels[0].value);
    }
    exemplar_query_result_free(&r);
    matcher_free(m);
}

static void test_validation_rules(void **state)
{
    (void)state;
    char dir[512], got[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "ex-valid"), 0);
    strata_db *db = open_db(dir, 100);
    add_series(db, "a", 1000);
    exemplar_write_result res;

    put(db, "a", "t1", 1000, 1, &res);
    assert_int_equal(res.written, 1);
    put(db, "a", "t1", 1000, 1, &res); /* the same again: a duplicate, not stored twice */
    assert_int_equal(res.duplicate, 1);
    assert_int_equal(res.written, 0);
    put(db, "a", "t2", 1000, 2, &res); /* same time, another value: out of order */
    assert_int_equal(res.out_of_order, 1);
    put(db, "a", "t0", 999, 1, &res); /* older */
    assert_int_equal(res.out_of_order, 1);
    assert_non_null(strstr(res.first_reason, "out of order"));
    put(db, "b", "t1", 1000, 1, &res); /* no such series */
    assert_int_equal(res.invalid, 1);
    assert_non_null(strstr(res.first_reason, "unknown series"));

    /* 8 + 120 characters is the limit; multi-byte characters count once. */
    char v120[121], v121[122], e120[241];
    memset(v120, 'x', 120);
    v120[120] = '\0';
    memset(v121, 'x', 121);
    v121[121] = '\0';
    for (int i = 0; i < 120; i++)
        memcpy(e120 + 2 * i, "\xc3\xa9", 2);
    e120[240] = '\0';
    put(db, "a", v121, 2000, 1, &res);
    assert_int_equal(res.invalid, 1);
    assert_non_null(strstr(res.first_reason, "128"));
    put(db, "a", v120, 2000, 1, &res);
    assert_int_equal(res.written, 1);
    put(db, "a", e120, 3000, 1, &res);
    assert_int_equal(res.written, 1);
    put(db, "a", "\xff", 4000, 1, &res); /* invalid UTF-8 */
    assert_int_equal(res.invalid, 1);

    /* Duplicate and empty names. */
    label sl[] = {L("__name__", "m"), L("job", "a")};
    label dup[] = {L("x", "1"), L("x", "2")};
    label empty[] = {{.name = "", .value = "1", .name_len = 0, .value_len = 1}};
    write_exemplar bad[] = {
        {.series = sl, .n_series = 2, .labels = dup, .n_labels = 2, .t = 5000, .v = 1},
        {.series = sl, .n_series = 2, .labels = empty, .n_labels = 1, .t = 5000, .v = 1},
    };
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(db_write_exemplars(db, bad, 2, &res, err), 0);
    assert_int_equal(res.invalid, 2);
    assert_non_null(strstr(res.first_reason, "appears twice"));

    /* Many short labels: 100 one-character names with empty values are 100 characters (kept),
     * 129 of them are too many. Names are distinct code points U+0100.. (two bytes each). */
    static char names[129][3];
    label many[129];
    for (int i = 0; i < 129; i++) {
        names[i][0] = (char)(0xc4 + i / 64);
        names[i][1] = (char)(0x80 + i % 64);
        many[i] = (label){.name = names[i], .value = "", .name_len = 2, .value_len = 0};
    }
    write_exemplar lots[] = {
        {.series = sl, .n_series = 2, .labels = many, .n_labels = 100, .t = 6000, .v = 1},
        {.series = sl, .n_series = 2, .labels = many, .n_labels = 129, .t = 7000, .v = 1},
    };
    assert_int_equal(db_write_exemplars(db, lots, 2, &res, err), 0);
    assert_int_equal(res.written, 1);
    assert_int_equal(res.invalid, 1);

    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_int_equal(strncmp(got, "a:t1,xxxx", 9), 0);
    exemplar_stats st;
    db_get_exemplar_stats(db, &st);
    assert_int_equal(st.stored, 4);
    assert_int_equal(st.series, 1);
    assert_int_equal(st.out_of_order, 2);
    assert_int_equal(st.invalid, 6);
    assert_int_equal(st.last_timestamp, 6000);
    strata_close(db);
    test_rmtree(dir);
}

static void test_ring_bound_query_and_replay(void **state)
{
    (void)state;
    char dir[512], got[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "ex-ring"), 0);
    strata_db *db = open_db(dir, 4);
    add_series(db, "a", 0);
    add_series(db, "b", 0);
    exemplar_write_result res;
    /* a1 b2 a3 b4 a5 a6: with room for 4, a1 and b2 are evicted. */
    put(db, "a", "1", 1, 1, &res);
    put(db, "b", "2", 2, 2, &res);
    put(db, "a", "3", 3, 3, &res);
    put(db, "b", "4", 4, 4, &res);
    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "a:1,3 b:2,4");
    put(db, "a", "5", 5, 5, &res);
    put(db, "a", "6", 6, 6, &res);
    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "a:3,5,6 b:4");
    query(db, "b", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "b:4");
    query(db, ".*", 4, 5, got, sizeof got); /* inclusive bounds; a series with none is left out */
    assert_string_equal(got, "a:5 b:4");
    query(db, ".*", 7, 100, got, sizeof got);
    assert_string_equal(got, "");
    /* Evicting b's last entry drops the series. */
    put(db, "a", "7", 7, 7, &res);
    put(db, "a", "8", 8, 8, &res);
    exemplar_stats st;
    db_get_exemplar_stats(db, &st);
    assert_int_equal(st.series, 1);
    assert_int_equal(st.stored, 4);
    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "a:5,6,7,8");
    put(db, "b", "9", 9, 9, &res);
    strata_close(db);

    /* Replay: everything written comes back through the same ring. */
    db = open_db(dir, 4);
    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "a:6,7,8 b:9");
    strata_close(db);
    /* A smaller store after a restart keeps the newest. */
    db = open_db(dir, 2);
    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "a:8 b:9");
    /* Turned off: replay drops them, writes are counted as dropped. */
    strata_close(db);
    db = open_db(dir, 0);
    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "");
    put(db, "a", "10", 10, 10, &res);
    assert_int_equal(res.disabled, 1);
    assert_int_equal(res.written, 0);
    strata_close(db);
    test_rmtree(dir);
}

/* A crash in the middle of an exemplar record: the torn tail is cut, everything before stays. */
static void test_torn_exemplar_record(void **state)
{
    (void)state;
    char dir[512], got[512], path[600];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "ex-torn"), 0);
    strata_db *db = open_db(dir, 10);
    add_series(db, "a", 0);
    exemplar_write_result res;
    put(db, "a", "kept", 1, 1, &res);
    put(db, "a", "torn", 2, 2, &res);
    strata_close(db);
    snprintf(path, sizeof path, "%s/wal/00000001", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 3), 0);
    db = open_db(dir, 10);
    query(db, ".*", INT64_MIN, INT64_MAX, got, sizeof got);
    assert_string_equal(got, "a:kept");
    db_stats ds;
    db_get_stats(db, &ds);
    assert_int_equal(ds.wal_torn_tails, 1);
    strata_close(db);
    test_rmtree(dir);
}

/* A set matches when all its matchers do; any set matching selects the series. */
static void test_matcher_sets(void **state)
{
    (void)state;
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "ex-sets"), 0);
    strata_db *db = open_db(dir, 10);
    add_series(db, "a", 0);
    add_series(db, "b", 0);
    add_series(db, "c", 0);
    exemplar_write_result res;
    put(db, "a", "1", 1, 1, &res);
    put(db, "b", "2", 1, 1, &res);
    put(db, "c", "3", 1, 1, &res);
    char err[STRATA_ERRMSG_SIZE];
    matcher *ma, *mb, *name;
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "job", 3, "a", 1, &ma, err), 0);
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "job", 3, "c", 1, &mb, err), 0);
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "__name__", 8, "m", 1, &name, err), 0);
    const matcher *s1[] = {name, ma}, *s2[] = {mb};
    const matcher *const *sets[] = {s1, s2};
    size_t counts[] = {2, 1};
    exemplar_query_result r;
    assert_int_equal(db_query_exemplars(db, sets, counts, 2, INT64_MIN, INT64_MAX, &r, err), 0);
    assert_int_equal(r.n_series, 2);
    assert_string_equal(r.series[0].series[1].value, "a");
    assert_string_equal(r.series[1].series[1].value, "c");
    exemplar_query_result_free(&r);
    matcher_free(ma);
    matcher_free(mb);
    matcher_free(name);
    strata_close(db);
    test_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation_rules),
        cmocka_unit_test(test_ring_bound_query_and_replay),
        cmocka_unit_test(test_torn_exemplar_record),
        cmocka_unit_test(test_matcher_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
