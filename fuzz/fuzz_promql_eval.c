/*
 * fuzz_promql_eval.c: arbitrary bytes as a PromQL query evaluated against a small real database
 * (counters, gauges, an info metric, classic histogram buckets, native histograms of both bucket
 * kinds with resets, a gauge histogram, floats next to histograms, staleness markers), as an
 * instant query and as a range query long enough to be split by steps across threads. Every
 * query must give a result or a clean error (a known status and a message), never crash, leak
 * or run away; this covers the evaluator paths a parser fuzzer cannot reach (fill modifiers,
 * info(), anchored/smoothed, repeated subexpressions, delayed name removal).
 */
#include "query/query.h"
#include "storage/storage.h"

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

/* 40 native histograms every 15 s: exponential (schema 1, both signs, a zero bucket, a reset
 * halfway) or custom buckets; a stale marker at the end unless gauge. */
static void put_hist(const char *name, const char *v, bool custom, bool gauge)
{
    static hist_span spans[2] = {{-1, 3}, {2, 2}}, nspans[1] = {{0, 2}}, cspans[1] = {{0, 3}};
    static double cbounds[2] = {0.5, 4};
    static double pos[41][5], neg[41][2];
    label ls[2] = {{.name = "__name__", .value = name, .name_len = 8,
                    .value_len = (uint32_t)strlen(name)},
                   {.name = "k", .value = v, .name_len = 1, .value_len = (uint32_t)strlen(v)}};
    hist_sample hs[41];
    memset(hs, 0, sizeof hs);
    for (int i = 0; i < 41; i++) {
        native_histogram *h = &hs[i].h;
        hs[i].t = (int64_t)i * 15000;
        double k = gauge ? (i % 7) : (i < 20 ? i + 1 : i - 19);
        for (int b = 0; b < 5; b++) pos[i][b] = k * (b + 1);
        neg[i][0] = k;
        neg[i][1] = 2 * k;
        h->reset_hint = gauge ? HIST_HINT_GAUGE : HIST_HINT_UNKNOWN;
        h->sum = 3.5 * k;
        h->pos_buckets = pos[i];
        if (custom) {
            h->schema = HIST_SCHEMA_CUSTOM;
            h->pos_spans = cspans;
            h->n_pos_spans = 1;
            h->n_pos_buckets = 3;
            h->custom_values = cbounds;
            h->n_custom_values = 2;
            h->count = 6 * k;
        } else {
            h->schema = 1;
            h->zero_threshold = 0.01;
            h->zero_count = k;
            h->pos_spans = spans;
            h->n_pos_spans = 2;
            h->n_pos_buckets = 5;
            h->neg_spans = nspans;
            h->n_neg_spans = 1;
            h->neg_buckets = neg[i];
            h->n_neg_buckets = 2;
            h->count = 19 * k;
        }
        if (i == 40 && !gauge) {
            uint64_t stale_bits = 0x7ff0000000000002ull;
            memcpy(&h->sum, &stale_bits, sizeof stale_bits);
        }
    }
    write_series ws = {.labels = ls, .n_labels = 2, .histograms = hs, .n_histograms = 41};
    strata_write_result res;
    write_reject rej;
    char err[STRATA_ERRMSG_SIZE];
    if (db_write(db, &ws, 1, false, &res, &rej, err)) abort();
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
    put_hist("nh", "a", false, false);
    put_hist("nh", "b", true, false);
    put_hist("nh_gauge", "a", false, true);
    /* a float series that continues with histograms */
    strata_label ml[] = {{"__name__", "mix"}, {"k", "a"}};
    strata_sample ms[] = {{0, 1}, {15000, 2}};
    strata_series m = {ml, 2, ms, 2};
    if (strata_write(db, &m, 1, NULL, err)) abort();
    put_hist("mix", "b", false, true);
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
