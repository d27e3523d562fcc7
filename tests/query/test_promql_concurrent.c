/*
 * test_promql_concurrent.c: queries over enough series to run on several worker threads (run
 * under ThreadSanitizer by `make test`), few series over many steps (split by steps), checked
 * against values computed here, and the same query from several threads at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../testutil.h"
#include "query/query.h"

#include <math.h>
#include <pthread.h>

enum { SERIES = 2000, STEPS = 40 };

static strata_db *db;

static void load(void)
{
    char dir[512];
    assert_int_equal(test_tmpdir(dir, sizeof dir, "promql-par"), 0);
    char err[STRATA_ERRMSG_SIZE];
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    assert_int_equal(strata_open(dir, &o, &db, err), 0);
    static char names[SERIES][16];
    strata_label (*ls)[3] = calloc(SERIES, sizeof *ls);
    strata_sample (*ss)[STEPS] = calloc(SERIES, sizeof *ss);
    strata_series *ser = calloc(SERIES, sizeof *ser);
    for (int i = 0; i < SERIES; i++) {
        snprintf(names[i], sizeof names[i], "%d", i);
        ls[i][0] = (strata_label){"__name__", "par"};
        ls[i][1] = (strata_label){"id", names[i]};
        ls[i][2] = (strata_label){"group", i % 2 ? "odd" : "even"};
        for (int k = 0; k < STEPS; k++) ss[i][k] = (strata_sample){(int64_t)k * 15000, (double)(i + k)};
        ser[i] = (strata_series){ls[i], 3, ss[i], STEPS};
    }
    assert_int_equal(strata_write(db, ser, SERIES, NULL, err), 0);
    free(ls);
    free(ss);
    free(ser);
}

static double scalar_of(const char *q, int64_t t)
{
    promql_result *r;
    char err[STRATA_ERRMSG_SIZE];
    int rc = promql_eval_instant(db, q, t, NULL, &r, err);
    if (rc) fprintf(stderr, "%s: %s\n", q, err);
    assert_int_equal(rc, 0);
    assert_int_equal(r->n_series, 1);
    double v = r->series[0].points[0].v;
    promql_result_free(r);
    return v;
}

static void *query_thread(void *arg)
{
    (void)arg;
    for (int rep = 0; rep < 3; rep++) {
        /* sum over i of (i + k) at step k = 20: sum(i) + 2000 * 20 */
        double want = (double)SERIES * (SERIES - 1) / 2 + (double)SERIES * 20;
        assert_true(scalar_of("sum(par)", 20 * 15000) == want);
        /* rate over a 5 m window: each series grows 1 per 15 s */
        double r = scalar_of("avg(rate(par[5m]))", 30 * 15000);
        assert_true(fabs(r - 1.0 / 15.0) < 1e-9);
        assert_true(scalar_of("count(par > 1000)", 0) == SERIES - 1001);
    }
    return NULL;
}

static void test_parallel_evaluation(void **state)
{
    (void)state;
    load();
    /* Range query: every step, every series; compare with a sequential reading. */
    promql_result *r;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(promql_eval_range(db, "par", 0, 39 * 15000, 15000, NULL, &r, err), 0);
    assert_int_equal(r->n_series, SERIES);
    for (size_t i = 0; i < r->n_series; i++) {
        assert_int_equal(r->series[i].n_points, STEPS);
        if (i) assert_true(labels_compare(r->series[i - 1].labels, r->series[i - 1].n_labels,
                                          r->series[i].labels, r->series[i].n_labels) < 0);
    }
    promql_result_free(r);
    /* A range function over three series and 1,171 steps of 0.5 s: split by steps across the
     * workers. Each window holds the newest sample at or before it: id + floor(t / 15 s). */
    assert_int_equal(promql_eval_range(db, "last_over_time(par{id=~\"1|2|3\"}[1m])", 0, 39 * 15000,
                                       500, NULL, &r, err),
                     0);
    assert_int_equal(r->n_series, 3);
    for (size_t i = 0; i < r->n_series; i++) {
        const promql_series *ps = &r->series[i];
        uint32_t idl = 0;
        const char *idv = labels_get(ps->labels, ps->n_labels, "id", &idl);
        assert_non_null(idv);
        double id = (double)(idv[0] - '0');
        assert_int_equal(ps->n_points, 39 * 30 + 1);
        for (size_t k = 0; k < ps->n_points; k++)
            assert_true(ps->points[k].v == id + (double)(ps->points[k].t / 15000));
    }
    promql_result_free(r);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, query_thread, NULL);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    strata_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_evaluation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
