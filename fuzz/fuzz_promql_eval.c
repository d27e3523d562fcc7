/*
 * fuzz_promql_eval.c: arbitrary bytes as a PromQL query evaluated against a small real database
 * (counters, gauges, an info metric, classic histogram buckets, a staleness marker), as an
 * instant query and as a range query long enough to be split by steps across threads. Every
 * query must give a result or a clean error (a known status and a message), never crash, leak
 * or run away; this covers the evaluator paths a parser fuzzer cannot reach (fill modifiers,
 * info(), anchored/smoothed, repeated subexpressions, delayed name removal).
 */
#include "query/query.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static strata_db *db;
static char dir[] = "/tmp/fuzz-promql-eval-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The scratch database goes when the fuzzer exits. */
static void cleanup(void)
{
    strata_close(db);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put(const char *name, const char *k, const char *v, double base, double slope)
{
    strata_label ls[] = {{"__name__", name}, {"instance", "i1"}, {"job", "j"}, {k, v}};
    strata_sample ss[40];
    for (int i = 0; i < 40; i++)
        ss[i] = (strata_sample){(int64_t)i * 15000, base + slope * i};
    strata_series s = {ls, 4, ss, 40};
    char err[STRATA_ERRMSG_SIZE];
    if (strata_write(db, &s, 1, NULL, err)) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!mkdtemp(dir)) abort();
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    char err[STRATA_ERRMSG_SIZE];
    if (strata_open(dir, &o, &db, err)) abort();
    atexit(cleanup);
    put("c_total", "k", "a", 1, 2);
    put("c_total", "k", "b", 100, -1); /* a counter that keeps resetting */
    put("g", "k", "a", 5, 0.25);
    put("g", "k", "c", -3, 0.5);
    put("target_info", "version", "v1", 1, 0);
    put("h_bucket", "le", "0.5", 1, 1);
    put("h_bucket", "le", "1", 2, 2);
    put("h_bucket", "le", "+Inf", 3, 3);
    uint64_t stale_bits = 0x7ff0000000000002ull;
    double stale;
    memcpy(&stale, &stale_bits, sizeof stale);
    strata_label ls[] = {{"__name__", "s"}};
    strata_sample ss[] = {{0, 1}, {15000, stale}, {30000, 3}};
    strata_series s = {ls, 1, ss, 3};
    if (strata_write(db, &s, 1, NULL, err)) abort();
    return 0;
}

static void check(int rc, const char *err)
{
    switch (rc) {
    case 0:
        return;
    case STRATA_EPARSE:
    case STRATA_EEXEC:
    case STRATA_ELIMIT:
    case STRATA_EUNSUPPORTED:
    case STRATA_ETIMEOUT:
    case STRATA_EINVAL:
    case STRATA_ENOMEM:
        if (!err[0]) abort(); /* an error always says what went wrong */
        return;
    default:
        fprintf(stderr, "unexpected status %d: %s\n", rc, err);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *q = malloc(size + 1);
    if (!q) return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    if (strlen(q) != size) { /* an embedded NUL: not a query string */
        free(q);
        return 0;
    }
    promql_options o;
    promql_options_init(&o);
    o.timeout_ms = 200;
    o.max_samples = 2000000;
    o.delayed_name_removal = size % 2 == 1;
    char err[STRATA_ERRMSG_SIZE] = "";
    promql_result *r = NULL;
    int rc = promql_eval_instant(db, q, 300000, &o, &r, err);
    check(rc, err);
    if (!rc) {
        buf b = {0};
        if (promql_result_json(r, &b)) abort();
        buf_free(&b);
        promql_result_free(r);
    }
    err[0] = '\0';
    /* 1,101 steps of 0.5 s: enough to split a few series by steps over two workers */
    rc = promql_eval_range(db, q, 0, 550000, 500, &o, &r, err);
    check(rc, err);
    if (!rc) promql_result_free(r);
    free(q);
    return 0;
}
