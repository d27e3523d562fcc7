/*
 * test_otlp.c: OTLP/HTTP metrics, from request bytes to what a query reads back.
 *
 * Requests are built three ways so that no single encoder vouches for the decoder: protobuf
 * bodies from protobuf-c's generated structures (an independent implementation of the wire
 * format), OTLP/JSON bodies written out as literal text exactly as an exporter sends them, and
 * gzip bodies from zlib. Every mapping case goes through a real database and is checked by
 * listing every stored series with its labels and values, so an extra or a missing series
 * fails as surely as a wrong value. Then the hostile inputs: truncation, wrong wire types and
 * JSON types, invalid UTF-8, nesting far past the limit, decompression bombs and huge repeated
 * fields, each of which must end in a clean error with a reason (and no leak under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ingest/ingest.h"
#include "otlp_metrics_service.pb-c.h"
#include "storage/storage.h"
#include "../testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__ArrayValue ArrayValue;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram ExpHistogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpPoint;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets ExpPoint__Buckets;
typedef Opentelemetry__Proto__Metrics__V1__Summary Summary;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistPoint;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint SummaryPoint;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile Quantile;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest Request;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse Response;

#define T0_MS 1700000000000LL
#define NS(ms) ((uint64_t)(ms)*1000000ULL)
#define STALE_NAN_BITS 0x7ff0000000000002ULL
#define PB "application/x-protobuf"
#define JSON "application/json"

/* ---- building requests with protobuf-c ---------------------------------------------------- */

/* Every builder allocates from the test's arena; one arena_free releases a whole request. */
static void *mk(arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    assert_non_null(p);
    memset(p, 0, n);
    return p;
}

static char *S(arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

static KeyValue *kv_str(arena *a, const char *k, const char *v)
{
    KeyValue *kv = mk(a, sizeof *kv);
    opentelemetry__proto__common__v1__key_value__init(kv);
    AnyValue *av = mk(a, sizeof *av);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = S(a, v);
    kv->key = S(a, k);
    kv->value = av;
    return kv;
}

static KeyValue *kv_any(arena *a, const char *k, AnyValue *av)
{
    KeyValue *kv = mk(a, sizeof *kv);
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = S(a, k);
    kv->value = av;
    return kv;
}

static AnyValue *any_int(arena *a, int64_t v)
{
    AnyValue *av = mk(a, sizeof *av);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av->int_value = v;
    return av;
}

static AnyValue *any_double(arena *a, double v)
{
    AnyValue *av = mk(a, sizeof *av);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    av->double_value = v;
    return av;
}

static AnyValue *any_bool(arena *a, bool v)
{
    AnyValue *av = mk(a, sizeof *av);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    av->bool_value = v;
    return av;
}

static AnyValue *any_array(arena *a, AnyValue **vals, size_t n)
{
    AnyValue *av = mk(a, sizeof *av);
    opentelemetry__proto__common__v1__any_value__init(av);
    ArrayValue *arr = mk(a, sizeof *arr);
    opentelemetry__proto__common__v1__array_value__init(arr);
    arr->values = vals;
    arr->n_values = n;
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    av->array_value = arr;
    return av;
}

/* A NULL-terminated list of pointers as a protobuf-c repeated field. */
#define LIST(a, n_out, ...) list_of((a), (n_out), (void *[]){__VA_ARGS__, NULL})

static void *list_of(arena *a, size_t *n_out, void **items)
{
    size_t n = 0;
    while (items[n])
        n++;
    void **arr = mk(a, (n + 1) * sizeof *arr);
    memcpy(arr, items, n * sizeof *arr);
    *n_out = n;
    return arr;
}

static NumberPoint *num_point(arena *a, int64_t t_ms, double v, KeyValue **attrs, size_t n_attrs)
{
    NumberPoint *p = mk(a, sizeof *p);
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    p->time_unix_nano = NS(t_ms);
    p->start_time_unix_nano = NS(T0_MS - 60000);
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    p->attributes = attrs;
    p->n_attributes = n_attrs;
    return p;
}

static NumberPoint *int_point(arena *a, int64_t t_ms, int64_t v)
{
    NumberPoint *p = num_point(a, t_ms, 0, NULL, 0);
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    p->as_int = v;
    return p;
}

static Metric *metric(arena *a, const char *name, const char *unit)
{
    Metric *m = mk(a, sizeof *m);
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = S(a, name);
    m->unit = S(a, unit);
    m->description = S(a, "a test metric");
    return m;
}

static Metric *gauge(arena *a, const char *name, const char *unit, NumberPoint **pts, size_t n)
{
    Metric *m = metric(a, name, unit);
    Gauge *g = mk(a, sizeof *g);
    opentelemetry__proto__metrics__v1__gauge__init(g);
    g->data_points = pts;
    g->n_data_points = n;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = g;
    return m;
}

static Metric *sum(arena *a, const char *name, const char *unit, bool monotonic, int temporality,
                   NumberPoint **pts, size_t n)
{
    Metric *m = metric(a, name, unit);
    Sum *s = mk(a, sizeof *s);
    opentelemetry__proto__metrics__v1__sum__init(s);
    s->data_points = pts;
    s->n_data_points = n;
    s->is_monotonic = monotonic;
    s->aggregation_temporality = temporality;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = s;
    return m;
}

static HistPoint *hist_point(arena *a, int64_t t_ms, const double *bounds, size_t nb,
                             const uint64_t *counts, size_t nc, uint64_t count,
                             const double *sum_or_null)
{
    HistPoint *p = mk(a, sizeof *p);
    opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
    p->time_unix_nano = NS(t_ms);
    p->explicit_bounds = mk(a, (nb + 1) * sizeof(double));
    if (nb) memcpy(p->explicit_bounds, bounds, nb * sizeof(double));
    p->n_explicit_bounds = nb;
    p->bucket_counts = mk(a, (nc + 1) * sizeof(uint64_t));
    if (nc) memcpy(p->bucket_counts, counts, nc * sizeof(uint64_t));
    p->n_bucket_counts = nc;
    p->count = count;
    if (sum_or_null) {
        p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
        p->sum = *sum_or_null;
    }
    return p;
}

static Metric *histogram(arena *a, const char *name, const char *unit, int temporality,
                         HistPoint **pts, size_t n)
{
    Metric *m = metric(a, name, unit);
    Histogram *h = mk(a, sizeof *h);
    opentelemetry__proto__metrics__v1__histogram__init(h);
    h->data_points = pts;
    h->n_data_points = n;
    h->aggregation_temporality = temporality;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = h;
    return m;
}

static Metric *summary(arena *a, const char *name, const char *unit, SummaryPoint **pts, size_t n)
{
    Metric *m = metric(a, name, unit);
    Summary *s = mk(a, sizeof *s);
    opentelemetry__proto__metrics__v1__summary__init(s);
    s->data_points = pts;
    s->n_data_points = n;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m->summary = s;
    return m;
}

static Metric *exp_histogram(arena *a, const char *name, size_t n_points)
{
    Metric *m = metric(a, name, "s");
    ExpHistogram *h = mk(a, sizeof *h);
    opentelemetry__proto__metrics__v1__exponential_histogram__init(h);
    h->aggregation_temporality = 2;
    h->data_points = mk(a, n_points * sizeof *h->data_points);
    for (size_t i = 0; i < n_points; i++) {
        ExpPoint *p = mk(a, sizeof *p);
        opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(p);
        p->time_unix_nano = NS(T0_MS + (int64_t)i * 1000);
        p->count = 3;
        p->scale = 2;
        h->data_points[i] = p;
    }
    h->n_data_points = n_points;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m->exponential_histogram = h;
    return m;
}

/* One resource with one scope holding the metrics. */
static Request *request(arena *a, KeyValue **res_attrs, size_t n_res, Metric **ms, size_t n_ms)
{
    Request *r = mk(a, sizeof *r);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(r);
    ResourceMetrics *rm = mk(a, sizeof *rm);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    Resource *res = mk(a, sizeof *res);
    opentelemetry__proto__resource__v1__resource__init(res);
    res->attributes = res_attrs;
    res->n_attributes = n_res;
    rm->resource = res;
    ScopeMetrics *sm = mk(a, sizeof *sm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    Scope *sc = mk(a, sizeof *sc);
    opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
    sc->name = S(a, "test.scope");
    sc->version = S(a, "1.2.3");
    sm->scope = sc;
    sm->metrics = ms;
    sm->n_metrics = n_ms;
    rm->scope_metrics = LIST(a, &rm->n_scope_metrics, sm);
    r->resource_metrics = LIST(a, &r->n_resource_metrics, rm);
    return r;
}

/* The request packed by protobuf-c; malloc'd, the caller frees. */
static uint8_t *pack(const Request *r, size_t *len)
{
    *len =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(
            r);
    uint8_t *p = malloc(*len + 1);
    assert_non_null(p);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(r, p);
    return p;
}

/* gzip-compresses bytes; malloc'd, the caller frees. */
static uint8_t *gzip_of(const void *in, size_t n, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, n) + 64;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* ---- a database, and everything in it as text --------------------------------------------- */

typedef struct fixture {
    char dir[600];
    strata_db *db;
    arena a;
} fixture;

static int open_db(fixture *f, const strata_options *o)
{
    char err[STRATA_ERRMSG_SIZE];
    if (test_tmpdir(f->dir, sizeof f->dir, "otlp")) return -1;
    if (strata_open(f->dir, o, &f->db, err)) {
        fprintf(stderr, "strata_open: %s\n", err);
        return -1;
    }
    arena_init(&f->a, 0);
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    if (!f || open_db(f, &o)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    strata_close(f->db);
    test_rmtree(f->dir);
    arena_free(&f->a);
    free(f);
    return 0;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every series in the database, one line each, sorted:
 *   name{label="value",...} value@ms value@ms
 * with "stale" for Prometheus' staleness marker. The caller frees the string. */
static char *dump(strata_db *db)
{
    char err[STRATA_ERRMSG_SIZE];
    strata_matcher m = {STRATA_MATCH_REGEX, "__name__", ".+"};
    strata_series_set *set;
    assert_int_equal(strata_select(db, &m, 1, INT64_MIN / 4, INT64_MAX / 4, &set, err), 0);
    char **lines = NULL;
    size_t n = 0;
    const strata_label *ls;
    const strata_sample *ss;
    size_t nl, ns;
    while (strata_series_set_next(set, &ls, &nl, &ss, &ns)) {
        buf b = {0};
        const char *name = "";
        for (size_t i = 0; i < nl; i++)
            if (strcmp(ls[i].name, "__name__") == 0) name = ls[i].value;
        buf_printf(&b, "%s{", name);
        bool first = true;
        for (size_t i = 0; i < nl; i++) {
            if (strcmp(ls[i].name, "__name__") == 0) continue;
            buf_printf(&b, "%s%s=\"%s\"", first ? "" : ",", ls[i].name, ls[i].value);
            first = false;
        }
        buf_printf(&b, "}");
        for (size_t i = 0; i < ns; i++) {
            uint64_t bits;
            memcpy(&bits, &ss[i].v, 8);
            if (bits == STALE_NAN_BITS)
                buf_printf(&b, " stale@%lld", (long long)(ss[i].t - T0_MS));
            else
                buf_printf(&b, " %.17g@%lld", ss[i].v, (long long)(ss[i].t - T0_MS));
        }
        lines = realloc(lines, (n + 1) * sizeof *lines);
        lines[n++] = (char *)b.data;
    }
    strata_series_set_free(set);
    qsort(lines, n, sizeof *lines, line_cmp);
    buf out = {0};
    buf_printf(&out, "%s", "");
    for (size_t i = 0; i < n; i++) {
        buf_printf(&out, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    return (char *)out.data;
}

/* Sorts the lines of an expected dump, so tests can list series in any order. */
static char *sorted_lines(const char *text)
{
    char *copy = strdup(text);
    char **lines = NULL;
    size_t n = 0;
    for (char *save, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lines = realloc(lines, (n + 1) * sizeof *lines);
        lines[n++] = l;
    }
    qsort(lines, n, sizeof *lines, line_cmp);
    buf out = {0};
    buf_printf(&out, "%s", "");
    for (size_t i = 0; i < n; i++)
        buf_printf(&out, "%s\n", lines[i]);
    free(lines);
    free(copy);
    return (char *)out.data;
}

static void expect_db(strata_db *db, const char *expected)
{
    char *got = dump(db), *want = sorted_lines(expected);
    if (strcmp(got, want)) fprintf(stderr, "--- want\n%s--- got\n%s", want, got);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

static int post(strata_db *db, const void *body, size_t len, const char *ctype, const char *enc,
                otlp_result *res, char *err)
{
    int rc = otlp_http_metrics(db, body, len, ctype, enc, res, err);
    if (rc != 0 || res->rejected_points)
        fprintf(stderr, "  (otlp: rc %d, status %d, rejected %llu: %s)\n", rc, res->http_status,
                (unsigned long long)res->rejected_points, res->partial_message);
    return rc;
}

static int post_pb(strata_db *db, const Request *r, otlp_result *res, char *err)
{
    size_t len;
    uint8_t *body = pack(r, &len);
    int rc = post(db, body, len, PB, NULL, res, err);
    free(body);
    return rc;
}

static KeyValue **service_attrs(arena *a, size_t *n)
{
    return LIST(a, n, kv_str(a, "service.name", "api"), kv_str(a, "service.namespace", "shop"),
                kv_str(a, "service.instance.id", "host-1:9000"), kv_str(a, "host.name", "h1"),
                kv_any(a, "process.pid", any_int(a, 4242)));
}

/* ---- mapping ------------------------------------------------------------------------------ */

static void test_gauge_and_resource(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, np, nm;
    KeyValue **ra = service_attrs(a, &nr);
    NumberPoint **pts = LIST(
        a, &np, num_point(a, T0_MS, 1.5e9, LIST(a, &(size_t){0}, kv_str(a, "state", "used")), 1),
        num_point(a, T0_MS, 2.5e8, LIST(a, &(size_t){0}, kv_str(a, "state", "free")), 1),
        int_point(a, T0_MS + 15000, 7));
    Metric **ms =
        LIST(a, &nm, gauge(a, "process.memory.usage", "By", pts, np),
             gauge(a, "cpu.utilization", "1", LIST(a, &np, num_point(a, T0_MS, 0.25, NULL, 0)), 1),
             gauge(a, "queue.ratio", "1", LIST(a, &np, num_point(a, T0_MS, 0.5, NULL, 0)), 1));
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.rejected_points, 0);
    assert_string_equal(res.partial_message, "");
    expect_db(f->db,
              "process_memory_usage_bytes{instance=\"host-1:9000\",job=\"shop/"
              "api\",state=\"used\"} 1500000000@0\n"
              "process_memory_usage_bytes{instance=\"host-1:9000\",job=\"shop/"
              "api\",state=\"free\"} 250000000@0\n"
              "process_memory_usage_bytes{instance=\"host-1:9000\",job=\"shop/api\"} 7@15000\n"
              "cpu_utilization_ratio{instance=\"host-1:9000\",job=\"shop/api\"} 0.25@0\n"
              "queue_ratio{instance=\"host-1:9000\",job=\"shop/api\"} 0.5@0\n"
              /* The non-identifying resource attributes, over the points' span. */
              "target_info{host_name=\"h1\",instance=\"host-1:9000\",job=\"shop/"
              "api\",process_pid=\"4242\"} 1@0 1@15000\n");
    /* 5 data series + target_info, 6 samples + 2. */
    assert_int_equal(res.write.samples_written, 7);
}

static void test_sums(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, n1, n2, n3, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "api"));
    KeyValue **attrs = LIST(a, &(size_t){0}, kv_str(a, "http.method", "GET"),
                            kv_str(a, "1st", "yes"), kv_str(a, "http.status_code", "200"));
    NumberPoint **counter =
        LIST(a, &n1, num_point(a, T0_MS, 10, attrs, 3), num_point(a, T0_MS + 15000, 25, attrs, 3));
    NumberPoint **updown = LIST(a, &n2, int_point(a, T0_MS, -3));
    NumberPoint **delta =
        LIST(a, &n3, num_point(a, T0_MS, 1, NULL, 0), num_point(a, T0_MS + 1000, 1, NULL, 0));
    Metric **ms = LIST(
        a, &nm, sum(a, "http.server.requests", "{request}", true, 2, counter, n1),
        sum(a, "db.connections", "1", false, 2, updown, n2),
        sum(a, "jobs.done_total", "", true, 2, LIST(a, &(size_t){0}, int_point(a, T0_MS, 3)), 1),
        sum(a, "bytes.sent", "By", true, 1, delta, n3));
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.http_status, 200);
    /* The delta sum's two points are refused; everything else is stored. */
    assert_int_equal(res.rejected_points, 2);
    assert_non_null(
        strstr(res.partial_message, "2 points rejected, delta temporality is not supported"));
    assert_non_null(strstr(res.partial_message, "bytes.sent"));
    /* Only the job: no service.instance.id and nothing else in the resource, so no target_info. */
    expect_db(f->db, "http_server_requests_total{http_method=\"GET\",http_status_code=\"200\",job="
                     "\"api\",key_1st=\"yes\"} 10@0 25@15000\n"
                     "db_connections{job=\"api\"} -3@0\n"
                     "jobs_done_total{job=\"api\"} 3@0\n");
}

static void test_histogram(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, np, nm;
    KeyValue **ra =
        LIST(a, &nr, kv_str(a, "service.name", "api"), kv_str(a, "service.instance.id", "i1"));
    double bounds[] = {0.005, 0.1, 1, 10};
    uint64_t counts[] = {1, 2, 3, 4, 5};
    double s = 123.25;
    HistPoint *p1 = hist_point(a, T0_MS, bounds, 4, counts, 5, 15, &s);
    p1->attributes = LIST(a, &p1->n_attributes, kv_str(a, "route", "/a"));
    HistPoint *p2 = hist_point(a, T0_MS, bounds, 2, NULL, 0, 4, NULL); /* no buckets, no sum */
    p2->attributes = LIST(a, &p2->n_attributes, kv_str(a, "route", "/b"));
    HistPoint **pts = LIST(a, &np, p1, p2);
    Metric **ms = LIST(
        a, &nm, histogram(a, "http.server.duration", "s", 2, pts, np),
        histogram(a, "rpc.duration", "ms", 1,
                  LIST(a, &(size_t){0}, hist_point(a, T0_MS, bounds, 1, counts, 2, 3, &s)), 1));
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.rejected_points, 1); /* the delta histogram */
    assert_non_null(strstr(res.partial_message, "delta temporality"));
    expect_db(
        f->db,
        "http_server_duration_seconds_bucket{instance=\"i1\",job=\"api\",le=\"0.005\",route=\"/"
        "a\"} 1@0\n"
        "http_server_duration_seconds_bucket{instance=\"i1\",job=\"api\",le=\"0.1\",route=\"/a\"} "
        "3@0\n"
        "http_server_duration_seconds_bucket{instance=\"i1\",job=\"api\",le=\"1\",route=\"/a\"} "
        "6@0\n"
        "http_server_duration_seconds_bucket{instance=\"i1\",job=\"api\",le=\"10\",route=\"/a\"} "
        "10@0\n"
        "http_server_duration_seconds_bucket{instance=\"i1\",job=\"api\",le=\"+Inf\",route=\"/a\"} "
        "15@0\n"
        "http_server_duration_seconds_sum{instance=\"i1\",job=\"api\",route=\"/a\"} 123.25@0\n"
        "http_server_duration_seconds_count{instance=\"i1\",job=\"api\",route=\"/a\"} 15@0\n"
        "http_server_duration_seconds_bucket{instance=\"i1\",job=\"api\",le=\"+Inf\",route=\"/b\"} "
        "4@0\n"
        "http_server_duration_seconds_count{instance=\"i1\",job=\"api\",route=\"/b\"} 4@0\n");
}

static void test_summary_and_exponential(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, nq, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "api"));
    SummaryPoint *p = mk(a, sizeof *p);
    opentelemetry__proto__metrics__v1__summary_data_point__init(p);
    p->time_unix_nano = NS(T0_MS);
    p->count = 100;
    p->sum = 52.5;
    Quantile *q[2];
    double qs[2][2] = {{0.5, 0.4}, {0.99, 1.75}};
    for (int i = 0; i < 2; i++) {
        q[i] = mk(a, sizeof *q[i]);
        opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(q[i]);
        q[i]->quantile = qs[i][0];
        q[i]->value = qs[i][1];
    }
    p->quantile_values = LIST(a, &nq, q[0], q[1]);
    p->n_quantile_values = nq;
    /* Three exponential points without buckets: the first claims 3 observations it does not
     * have (not a valid native histogram), the others hold them in the zero bucket. */
    Metric *eh = exp_histogram(a, "native.one", 3);
    eh->exponential_histogram->data_points[1]->zero_count = 3;
    eh->exponential_histogram->data_points[2]->zero_count = 3;
    Metric **ms = LIST(a, &nm, summary(a, "rpc.latency", "s", LIST(a, &(size_t){0}, p), 1), eh);
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.rejected_points, 1);
    assert_non_null(strstr(res.partial_message, "1 point rejected, exponential histogram invalid "
                                                "as a native histogram"));
    assert_int_equal(res.write.histograms_written, 2);
    expect_db(f->db, "rpc_latency_seconds{job=\"api\",quantile=\"0.5\"} 0.40000000000000002@0\n"
                     "rpc_latency_seconds{job=\"api\",quantile=\"0.99\"} 1.75@0\n"
                     "rpc_latency_seconds_sum{job=\"api\"} 52.5@0\n"
                     "rpc_latency_seconds_count{job=\"api\"} 100@0\n");
}

/* The native histograms of series {__name__=name}: count returned, samples in *out (from a). */
static size_t read_native(strata_db *db, const char *name, arena *a, hist_sample **out)
{
    char err[STRATA_ERRMSG_SIZE];
    matcher *m;
    assert_int_equal(matcher_new(STRATA_MATCH_EQUAL, "__name__", 8, name, strlen(name), &m, err),
                     0);
    series_set *set;
    assert_int_equal(db_select(db, (const matcher *const *)&m, 1, 0, INT64_MAX, &set, err), 0);
    matcher_free(m);
    assert_int_equal(series_set_count(set), 1);
    size_t n = 0;
    assert_int_equal(series_set_read_histograms(set, 0, a, out, &n), 1);
    series_set_free(set);
    return n;
}

static void test_exponential_to_native(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "api"));
    Metric *eh = exp_histogram(a, "req.size", 4);
    eh->unit = "By";
    ExpPoint **pts = eh->exponential_histogram->data_points;
    /* Point 0, scale 2: OTLP buckets -1..5 = [1 0 2 0 0 0 3] become Prometheus indexes 0..6:
     * [1 0 2] at 0..2 (the zero fills a one-bucket gap), then a new span for index 6 (a gap of
     * three): spans {0,3} {3,1}, buckets [1 0 2 3]. */
    static uint64_t c0[] = {1, 0, 2, 0, 0, 0, 3};
    ExpPoint__Buckets *b0 = mk(a, sizeof *b0);
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(b0);
    b0->offset = -1;
    b0->bucket_counts = c0;
    b0->n_bucket_counts = 7;
    pts[0]->positive = b0;
    pts[0]->zero_count = 1;
    pts[0]->count = 7;
    pts[0]->_sum_case =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    pts[0]->sum = 5.5;
    /* Point 1, scale 9: reduced to schema 8 by merging pairs. Positive OTLP 3..5 = [1 2 3]:
     * indexes floor(i/2)+1 = 2,3,3 -> span {2,2} buckets [1 5]; negative OTLP -3..-1 = [1 1 1]:
     * floor(i/2)+1 = -1,0,0 -> span {-1,2} buckets [1 2]. */
    static uint64_t c1p[] = {1, 2, 3}, c1n[] = {1, 1, 1};
    ExpPoint__Buckets *p1 = mk(a, sizeof *p1), *n1 = mk(a, sizeof *n1);
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(p1);
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(n1);
    p1->offset = 3;
    p1->bucket_counts = c1p;
    p1->n_bucket_counts = 3;
    n1->offset = -3;
    n1->bucket_counts = c1n;
    n1->n_bucket_counts = 3;
    pts[1]->scale = 9;
    pts[1]->positive = p1;
    pts[1]->negative = n1;
    pts[1]->count = 9;
    /* Point 2: scale -5 cannot be a native histogram. Point 3: no recorded value -> stale. */
    pts[2]->scale = -5;
    pts[3]->flags = 1;
    Metric *delta = exp_histogram(a, "delta.one", 1);
    delta->exponential_histogram->aggregation_temporality = 1;
    Metric **ms = LIST(a, &nm, eh, delta);
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.rejected_points, 2);
    assert_non_null(strstr(res.partial_message, "scale below -4"));
    assert_non_null(strstr(res.partial_message, "delta temporality"));
    assert_int_equal(res.write.histograms_written, 3);
    hist_sample *out;
    size_t n = read_native(f->db, "req_size_bytes", a, &out);
    assert_int_equal(n, 3);
    const native_histogram *h = &out[0].h;
    assert_int_equal(out[0].t, T0_MS);
    assert_true(h->is_int);
    assert_int_equal(h->schema, 2);
    assert_true(h->zero_threshold == 1e-128 && h->zero_count == 1 && h->count == 7 &&
                h->sum == 5.5);
    assert_int_equal(h->n_pos_spans, 2);
    assert_true(h->pos_spans[0].offset == 0 && h->pos_spans[0].length == 3);
    assert_true(h->pos_spans[1].offset == 3 && h->pos_spans[1].length == 1);
    assert_int_equal(h->n_pos_buckets, 4);
    assert_true(h->pos_buckets[0] == 1 && h->pos_buckets[1] == 0 && h->pos_buckets[2] == 2 &&
                h->pos_buckets[3] == 3);
    assert_int_equal(h->n_neg_buckets, 0);
    h = &out[1].h;
    assert_int_equal(out[1].t, T0_MS + 1000);
    assert_int_equal(h->schema, 8);
    assert_true(h->n_pos_spans == 1 && h->pos_spans[0].offset == 2 && h->pos_spans[0].length == 2);
    assert_true(h->pos_buckets[0] == 1 && h->pos_buckets[1] == 5);
    assert_true(h->n_neg_spans == 1 && h->neg_spans[0].offset == -1 && h->neg_spans[0].length == 2);
    assert_true(h->neg_buckets[0] == 1 && h->neg_buckets[1] == 2);
    assert_true(h->sum == 0 && h->count == 9);
    assert_int_equal(out[2].t, T0_MS + 3000);
    uint64_t bits;
    memcpy(&bits, &out[2].h.sum, 8);
    assert_true(bits == 0x7ff0000000000002ull);
}

static void test_no_recorded_value_is_stale(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, np, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "api"));
    NumberPoint *gone = num_point(a, T0_MS + 30000, 0, NULL, 0);
    gone->flags = 1;
    gone->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET;
    double bounds[] = {1};
    uint64_t counts[] = {1, 1};
    double s = 2;
    HistPoint *hgone = hist_point(a, T0_MS + 30000, bounds, 1, counts, 2, 2, &s);
    hgone->flags = 1;
    Metric **ms = LIST(
        a, &nm, gauge(a, "temp", "Cel", LIST(a, &np, num_point(a, T0_MS, 21.5, NULL, 0), gone), 2),
        histogram(a, "h", "", 2, LIST(a, &(size_t){0}, hgone), 1));
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.rejected_points, 0);
    expect_db(f->db, "temp_celsius{job=\"api\"} 21.5@0 stale@30000\n"
                     "h_bucket{job=\"api\",le=\"1\"} stale@30000\n"
                     "h_bucket{job=\"api\",le=\"+Inf\"} stale@30000\n"
                     "h_sum{job=\"api\"} stale@30000\n"
                     "h_count{job=\"api\"} stale@30000\n");
}

static void test_invalid_points_rejected(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, np, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "api"));
    NumberPoint *no_value = num_point(a, T0_MS, 0, NULL, 0);
    no_value->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET;
    NumberPoint *no_time = num_point(a, T0_MS, 1, NULL, 0);
    no_time->time_unix_nano = 0;
    NumberPoint *bad_attr = num_point(a, T0_MS, 1, LIST(a, &(size_t){0}, kv_str(a, "...", "x")), 1);
    double bad_bounds[] = {1, 1};
    uint64_t counts[] = {0, 0, 0};
    Metric **ms = LIST(
        a, &nm,
        gauge(a, "g", "",
              LIST(a, &np, no_value, no_time, bad_attr, num_point(a, T0_MS, 5, NULL, 0)), 4),
        gauge(a, "", "", LIST(a, &(size_t){0}, num_point(a, T0_MS, 1, NULL, 0)), 1),
        gauge(a, "!!!", "", LIST(a, &(size_t){0}, num_point(a, T0_MS, 1, NULL, 0)), 1),
        sum(a, "unspecified", "", true, 0, LIST(a, &(size_t){0}, num_point(a, T0_MS, 1, NULL, 0)),
            1),
        histogram(a, "hb", "", 2,
                  LIST(a, &(size_t){0}, hist_point(a, T0_MS, bad_bounds, 2, counts, 3, 0, NULL)),
                  1));
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.rejected_points, 7);
    const char *m = res.partial_message;
    assert_non_null(strstr(m, "1 point rejected, no value (metric \"g\")"));
    assert_non_null(strstr(m, "no timestamp"));
    assert_non_null(strstr(m, "attribute name invalid after translation"));
    assert_non_null(strstr(m, "2 points rejected, metric name empty or invalid"));
    assert_non_null(strstr(m, "aggregation temporality is unspecified (metric \"unspecified\")"));
    assert_non_null(strstr(m, "not strictly increasing"));
    expect_db(f->db, "g{job=\"api\"} 5@0\n");
}

static void test_attribute_values_and_collisions(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, nm, nv;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "api"));
    AnyValue **vals = LIST(a, &nv, any_int(a, 1), any_double(a, 2.5), any_bool(a, true));
    KeyValue **attrs =
        LIST(a, &(size_t){0}, kv_str(a, "a_b", "second"), kv_str(a, "a.b", "first"),
             kv_any(a, "d", any_double(a, 1e21)), kv_any(a, "d2", any_double(a, 1e-7)),
             kv_any(a, "d3", any_double(a, 0.1)), kv_any(a, "b", any_bool(a, false)),
             kv_any(a, "arr", any_array(a, vals, nv)), kv_str(a, "empty", ""),
             kv_str(a, "job", "overridden"), kv_str(a, "__name__", "ignored"),
             kv_str(a, "__reserved.x__", "r"), kv_str(a, "ünïcode", "u"));
    NumberPoint *p = num_point(a, T0_MS, 1, attrs, 12);
    Metric **ms = LIST(a, &nm, gauge(a, "attrs", "", LIST(a, &(size_t){0}, p), 1));
    Request *r = request(a, ra, nr, ms, nm);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, r, &res, err), 0);
    assert_int_equal(res.rejected_points, 0);
    /* "a.b" < "a_b", so their values join in that order; job comes from the resource; the empty
     * value is dropped; a UTF-8 name becomes one '_' per character run. */
    expect_db(f->db, "attrs{__reserved_x__=\"r\",_n_code=\"u\",a_b=\"first;second\",arr=\"[1,2.5,"
                     "true]\",b=\"false\","
                     "d=\"1e+21\",d2=\"1e-7\",d3=\"0.1\",job=\"api\"}"
                     " 1@0\n");
}

/* Metric names through the translation alone (no database), one row per case. */
static void test_metric_names(void **state)
{
    (void)state;
    static const struct {
        const char *name, *unit;
        int kind; /* 0 gauge, 1 counter, 2 up-down, 3 histogram */
        bool utf8, no_suffixes;
        const char *want; /* NULL: rejected */
    } cases[] = {
        {"http.server.duration", "s", 3, false, false, "http_server_duration_seconds_count"},
        {"system.network.io", "By/s", 0, false, false, "system_network_io_bytes_per_second"},
        {"requests", "1", 1, false, false, "requests_total"},
        {"requests_total", "", 1, false, false, "requests_total"},
        {"total.requests", "", 1, false, false, "requests_total"},
        {"cpu.ratio", "1", 0, false, false, "cpu_ratio"},
        {"updown", "1", 2, false, false, "updown"},
        {"mem", "%", 0, false, false, "mem_percent"},
        {"packets", "{packets}", 0, false, false, "packets"},
        {"latency_seconds", "s", 0, false, false, "latency_seconds"},
        {"speed", "m/h", 0, false, false, "speed_meters_per_hour"},
        {"x", "foo/bar", 0, false, false, "x_foo_per_bar"},
        {"2xx.count", "", 0, false, false, "_2xx_count"},
        {"a..b__c::d", "", 0, false, false, "a_b_c::d"},
        {"ünï", "", 0, false, false, "n"},
        {"...", "", 0, false, false, NULL},
        {"a..b__c", "s", 1, false, true, "a_b__c"},
        {"http.requests", "s", 1, true, false, "http.requests_seconds_total"},
        {"http.requests_total", "", 1, true, false, "http.requests_total"},
        {"load.ratio", "1", 0, true, false, "load_ratio"}, /* any delimiter goes */
        {"load_ratio", "1", 0, true, false, "load_ratio"},
        {"x.y", "s", 1, true, true, "x.y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        arena a;
        arena_init(&a, 0);
        size_t np, nm;
        Metric *m;
        if (cases[i].kind == 3)
            m = histogram(&a, cases[i].name, cases[i].unit, 2,
                          LIST(&a, &np, hist_point(&a, T0_MS, NULL, 0, NULL, 0, 1, NULL)), 1);
        else if (cases[i].kind == 0)
            m = gauge(&a, cases[i].name, cases[i].unit,
                      LIST(&a, &np, num_point(&a, T0_MS, 1, NULL, 0)), 1);
        else
            m = sum(&a, cases[i].name, cases[i].unit, cases[i].kind == 1, 2,
                    LIST(&a, &np, num_point(&a, T0_MS, 1, NULL, 0)), 1);
        Request *r = request(&a, NULL, 0, LIST(&a, &nm, m), 1);
        otlp_options o = {.allow_utf8 = cases[i].utf8, .no_suffixes = cases[i].no_suffixes};
        otlp_batch b;
        otlp_batch_init(&b);
        char err[STRATA_ERRMSG_SIZE];
        assert_int_equal(otlp_translate(r, &o, 1000, &b, err), 0);
        if (!cases[i].want) {
            assert_int_equal(b.rejected_points, 1);
            assert_int_equal(b.n_series, 0);
        } else {
            assert_int_equal(b.rejected_points, 0);
            bool found = false;
            for (size_t s = 0; s < b.n_series; s++)
                for (size_t k = 0; k < b.series[s].n_labels; k++) {
                    const label *l = &b.series[s].labels[k];
                    if (l->name_len == 8 && memcmp(l->name, "__name__", 8) == 0 &&
                        l->value_len == strlen(cases[i].want) &&
                        memcmp(l->value, cases[i].want, l->value_len) == 0)
                        found = true;
                }
            if (!found)
                fprintf(stderr, "case %zu: %s [%s] did not become %s\n", i, cases[i].name,
                        cases[i].unit, cases[i].want);
            assert_true(found);
        }
        otlp_batch_free(&b);
        arena_free(&a);
    }
}

static void test_scope_promotion_and_target_info_span(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, np, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.instance.id", "i1"), kv_str(a, "region", "eu"));
    Metric **ms = LIST(a, &nm,
                       gauge(a, "g", "",
                             LIST(a, &np, num_point(a, T0_MS, 1, NULL, 0),
                                  num_point(a, T0_MS + 600000, 2, NULL, 0)),
                             2));
    Request *r = request(a, ra, nr, ms, nm);
    size_t len;
    uint8_t *body = pack(r, &len);
    otlp_options o = {.promote_scope = true};
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(otlp_http_metrics_opts(f->db, body, len, PB, NULL, &o, &res, err), 0);
    free(body);
    /* target_info every 2.5 minutes from the first point to the last, as Prometheus writes it. */
    expect_db(
        f->db,
        "g{instance=\"i1\",otel_scope_name=\"test.scope\",otel_scope_version=\"1.2.3\"} 1@0 "
        "2@600000\n"
        "target_info{instance=\"i1\",region=\"eu\"} 1@0 1@150000 1@300000 1@450000 1@600000\n");
}

/* ---- OTLP/JSON and gzip ------------------------------------------------------------------- */

static const char json_body[] =
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"my.service\"}},"
    "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"abc\"}}]},"
    "\"scopeMetrics\":[{\"scope\":{\"name\":\"my.library\",\"version\":\"1.0.0\"},\"metrics\":["
    "{\"name\":\"my.counter\",\"unit\":\"1\",\"description\":\"I am a Counter\",\"sum\":{"
    "\"aggregationTemporality\":2,\"isMonotonic\":true,\"dataPoints\":[{\"asDouble\":5,"
    "\"startTimeUnixNano\":\"1699999990000000000\",\"timeUnixNano\":\"1700000000000000000\","
    "\"attributes\":[{\"key\":\"my.counter.attr\",\"value\":{\"stringValue\":\"some value\"}}]}]}},"
    "{\"name\":\"my.gauge\",\"unit\":\"By\",\"gauge\":{\"dataPoints\":[{\"asInt\":"
    "\"9007199254740993\","
    "\"timeUnixNano\":1700000001000000000,\"attributes\":[{\"key\":\"n\",\"value\":{\"intValue\":"
    "\"-7\"}}]},"
    "{\"asDouble\":\"NaN\",\"timeUnixNano\":\"1700000002000000000\",\"flags\":0},"
    "{\"timeUnixNano\":\"1700000003000000000\",\"flags\":1}]}},"
    "{\"name\":\"my.histogram\",\"unit\":\"ms\",\"histogram\":{\"aggregationTemporality\":2,"
    "\"dataPoints\":[{\"timeUnixNano\":\"1700000000000000000\",\"count\":\"6\",\"sum\":21.5,"
    "\"bucketCounts\":[\"1\",2,\"3\"],\"explicitBounds\":[1,5.5],\"min\":0.5,\"max\":9,"
    "\"exemplars\":[{\"asDouble\":3,\"timeUnixNano\":\"1700000000000000000\","
    "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\"}]}]}},"
    "{\"name\":\"my.summary\",\"summary\":{\"dataPoints\":[{\"timeUnixNano\":"
    "\"1700000000000000000\","
    "\"count\":\"2\",\"sum\":3,\"quantileValues\":[{\"quantile\":0.5,\"value\":1},{\"quantile\":1,"
    "\"value\":2}]}]}},"
    "{\"name\":\"my.delta\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"
    "\"dataPoints\":[{\"asDouble\":1,\"timeUnixNano\":\"1700000000000000000\"}]}},"
    "{\"name\":\"my.unknown.keys\",\"someFutureField\":{\"x\":[1,2]},\"gauge\":{\"dataPoints\":[{"
    "\"asDouble\":1,\"timeUnixNano\":\"1700000000000000000\",\"newThing\":null}]}}"
    "]}]}]}";

static const char json_expected[] =
    "my_counter_total{instance=\"abc\",job=\"my.service\",my_counter_attr=\"some value\"} 5@0\n"
    "my_gauge_bytes{instance=\"abc\",job=\"my.service\",n=\"-7\"} 9007199254740992@1000\n"
    "my_gauge_bytes{instance=\"abc\",job=\"my.service\"} nan@2000 stale@3000\n"
    "my_histogram_milliseconds_bucket{instance=\"abc\",job=\"my.service\",le=\"1\"} 1@0\n"
    "my_histogram_milliseconds_bucket{instance=\"abc\",job=\"my.service\",le=\"5.5\"} 3@0\n"
    "my_histogram_milliseconds_bucket{instance=\"abc\",job=\"my.service\",le=\"+Inf\"} 6@0\n"
    "my_histogram_milliseconds_sum{instance=\"abc\",job=\"my.service\"} 21.5@0\n"
    "my_histogram_milliseconds_count{instance=\"abc\",job=\"my.service\"} 6@0\n"
    "my_summary{instance=\"abc\",job=\"my.service\",quantile=\"0.5\"} 1@0\n"
    "my_summary{instance=\"abc\",job=\"my.service\",quantile=\"1\"} 2@0\n"
    "my_summary_sum{instance=\"abc\",job=\"my.service\"} 3@0\n"
    "my_summary_count{instance=\"abc\",job=\"my.service\"} 2@0\n"
    "my_unknown_keys{instance=\"abc\",job=\"my.service\"} 1@0\n";

static void test_json(void **state)
{
    fixture *f = *state;
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post(f->db, json_body, strlen(json_body), "application/json; charset=utf-8",
                          NULL, &res, err),
                     0);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.rejected_points, 1);
    assert_non_null(strstr(res.partial_message,
                           "1 point rejected, delta temporality is not supported "
                           "(send cumulative) (metric \"my.delta\")"));
    expect_db(f->db, json_expected);

    /* The answer in the request's format: partial success with int64 as a string. */
    uint8_t *body;
    size_t len;
    const char *ct;
    assert_int_equal(otlp_http_response(&res, "application/json", &body, &len, &ct), 0);
    assert_string_equal(ct, "application/json");
    assert_true(len > 0);
    char *text = strndup((char *)body, len);
    assert_non_null(strstr(text, "{\"partialSuccess\":{\"rejectedDataPoints\":\"1\","
                                 "\"errorMessage\":\"1 point rejected, delta"));
    free(text);
    free(body);
}

static void test_json_equals_protobuf(void **state)
{
    /* The same request as protobuf-c packs it and as OTLP/JSON writes it decode to the same
     * batch. */
    (void)state;
    arena a, ja, pa;
    arena_init(&a, 0);
    arena_init(&ja, 0);
    arena_init(&pa, 0);
    size_t nr, np, nm;
    KeyValue **ra =
        LIST(&a, &nr, kv_str(&a, "service.name", "svc"), kv_any(&a, "flag", any_bool(&a, true)));
    NumberPoint *p = num_point(&a, T0_MS, 0.125, LIST(&a, &(size_t){0}, kv_str(&a, "k", "v")), 1);
    Metric **ms = LIST(&a, &nm, sum(&a, "c", "s", true, 2, LIST(&a, &np, p), 1));
    Request *r = request(&a, ra, nr, ms, nm);
    size_t len;
    uint8_t *pb = pack(r, &len);
    const char *json =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"svc\"}},{\"key\":\"flag\",\"value\":{\"boolValue\":true}}]},"
        "\"scopeMetrics\":[{\"scope\":{\"name\":\"test.scope\",\"version\":\"1.2.3\"},\"metrics\":["
        "{"
        "\"name\":\"c\",\"unit\":\"s\",\"description\":\"a test "
        "metric\",\"sum\":{\"isMonotonic\":true,"
        "\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_CUMULATIVE\",\"dataPoints\":[{"
        "\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"v\"}}],\"startTimeUnixNano\":"
        "\"1699999940000000000\",\"timeUnixNano\":\"1700000000000000000\",\"asDouble\":0.125}]}}]}]"
        "}]}";
    otlp_export_request *from_pb, *from_json;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(otlp_decode_pb(pb, len, &pa, &from_pb, err), 0);
    assert_int_equal(otlp_decode_json((const uint8_t *)json, strlen(json), &ja, &from_json, err),
                     0);
    /* Packing both decoded requests gives the same bytes: every field landed in the same place. */
    size_t l1, l2;
    uint8_t *b1 = pack(from_pb, &l1), *b2 = pack(from_json, &l2);
    assert_int_equal(l1, len);
    assert_int_equal(l2, len);
    assert_memory_equal(b1, pb, len);
    assert_memory_equal(b2, pb, len);
    free(b1);
    free(b2);
    free(pb);
    arena_free(&a);
    arena_free(&ja);
    arena_free(&pa);
}

static void test_gzip(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "gz"));
    Metric **ms = LIST(
        a, &nm, gauge(a, "zipped", "", LIST(a, &(size_t){0}, num_point(a, T0_MS, 3, NULL, 0)), 1));
    size_t len, zlen;
    uint8_t *pb = pack(request(a, ra, nr, ms, nm), &len);
    uint8_t *z = gzip_of(pb, len, &zlen);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post(f->db, z, zlen, PB, "gzip", &res, err), 0);
    free(z);
    free(pb);
    /* JSON, gzipped in two members (concatenated gzip streams are one body). */
    const char *
        j1 = "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"zj\",\"gauge\":",
       *j2 = "{\"dataPoints\":[{\"asInt\":\"4\",\"timeUnixNano\":\"1700000000000000000\"}]}}]}]}]}";
    size_t l1, l2;
    uint8_t *z1 = gzip_of(j1, strlen(j1), &l1), *z2 = gzip_of(j2, strlen(j2), &l2);
    uint8_t *both = malloc(l1 + l2);
    memcpy(both, z1, l1);
    memcpy(both + l1, z2, l2);
    assert_int_equal(post(f->db, both, l1 + l2, JSON, " GZIP ", &res, err), 0);
    assert_int_equal(res.http_status, 200);
    expect_db(f->db, "zipped{job=\"gz\"} 3@0\nzj{} 4@0\n");
    /* Corrupt and truncated gzip. */
    both[l1 + 12] ^= 0xff;
    assert_int_equal(post(f->db, both, l1 + l2, JSON, "gzip", &res, err), STRATA_EINVAL);
    assert_int_equal(res.http_status, 400);
    assert_non_null(strstr(err, "gzip"));
    assert_int_equal(post(f->db, z1, l1 - 5, JSON, "gzip", &res, err), STRATA_EINVAL);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(post(f->db, "not gzip at all", 15, JSON, "gzip", &res, err), STRATA_EINVAL);
    free(z1);
    free(z2);
    free(both);
}

static void test_gzip_bomb(void **state)
{
    fixture *f = *state;
    /* 65 MiB of zeros gzip to ~64 KiB: refused at the 64 MiB limit, 413. */
    size_t n = OTLP_MAX_DECODED + (1 << 20), zlen;
    uint8_t *zeros = calloc(1, n);
    uint8_t *z = gzip_of(zeros, n, &zlen);
    free(zeros);
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post(f->db, z, zlen, PB, "gzip", &res, err), STRATA_ELIMIT);
    assert_int_equal(res.http_status, 413);
    assert_non_null(strstr(err, "limit"));
    free(z);
    /* Exactly at the limit is fine for gunzip itself. */
    zeros = calloc(1, 1 << 20);
    z = gzip_of(zeros, 1 << 20, &zlen);
    buf out = {0};
    assert_int_equal(otlp_gunzip(z, zlen, 1 << 20, &out, err), 0);
    assert_int_equal(out.len, 1 << 20);
    buf_free(&out);
    assert_int_equal(otlp_gunzip(z, zlen, (1 << 20) - 1, &out, err), STRATA_ELIMIT);
    buf_free(&out);
    free(z);
    free(zeros);
}

/* ---- headers, responses ------------------------------------------------------------------- */

static void test_headers_and_responses(void **state)
{
    fixture *f = *state;
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post(f->db, "", 0, "text/plain", NULL, &res, err), STRATA_EUNSUPPORTED);
    assert_int_equal(res.http_status, 415);
    assert_non_null(strstr(err, "application/x-protobuf or application/json"));
    assert_int_equal(post(f->db, "", 0, NULL, NULL, &res, err), STRATA_EUNSUPPORTED);
    assert_non_null(strstr(err, "missing Content-Type"));
    assert_int_equal(post(f->db, "", 0, PB, "br", &res, err), STRATA_EUNSUPPORTED);
    assert_int_equal(res.http_status, 415);
    assert_non_null(strstr(err, "Content-Encoding"));
    /* The failure body of a refused type is text. */
    uint8_t *body;
    size_t len;
    const char *ct;
    assert_int_equal(otlp_http_response(&res, "text/plain", &body, &len, &ct), 0);
    assert_string_equal(ct, "text/plain; charset=utf-8");
    assert_true(len > 10 && body[len - 1] == '\n');
    free(body);

    /* Empty bodies are empty requests: 200 with an empty response message. */
    assert_int_equal(post(f->db, "", 0, PB, NULL, &res, err), 0);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(otlp_http_response(&res, PB, &body, &len, &ct), 0);
    assert_string_equal(ct, "application/x-protobuf");
    assert_int_equal(len, 0);
    free(body);
    assert_int_equal(post(f->db, "", 0, JSON, "identity", &res, err), 0);
    assert_int_equal(post(f->db, " {} ", 4, JSON, NULL, &res, err), 0);
    assert_int_equal(otlp_http_response(&res, JSON, &body, &len, &ct), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(body, "{}", 2);
    free(body);

    /* A partial success decodes with protobuf-c as an ExportMetricsServiceResponse. */
    otlp_result partial = {.rejected_points = 3, .http_status = 200};
    snprintf(partial.partial_message, sizeof partial.partial_message, "three were bad");
    assert_int_equal(otlp_http_response(&partial, "application/x-protobuf", &body, &len, &ct), 0);
    Response *resp =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
            NULL, len, body);
    assert_non_null(resp);
    assert_non_null(resp->partial_success);
    assert_int_equal(resp->partial_success->rejected_data_points, 3);
    assert_string_equal(resp->partial_success->error_message, "three were bad");
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        resp, NULL);
    free(body);

    /* A failure is a google.rpc.Status: code 3 (INVALID_ARGUMENT) and the message. */
    otlp_result bad = {.http_status = 400};
    snprintf(bad.partial_message, sizeof bad.partial_message, "x\"y");
    assert_int_equal(otlp_http_response(&bad, PB, &body, &len, &ct), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(body, "\x08\x03\x12\x03x\"y", 7);
    free(body);
    assert_int_equal(otlp_http_response(&bad, JSON, &body, &len, &ct), 0);
    assert_int_equal(len, strlen("{\"code\":3,\"message\":\"x\\\"y\"}"));
    assert_memory_equal(body, "{\"code\":3,\"message\":\"x\\\"y\"}", len);
    free(body);
}

/* ---- the database's own refusals ---------------------------------------------------------- */

static void test_out_of_order_and_limits(void **state)
{
    fixture *f = *state;
    arena *a = &f->a;
    size_t nr, nm;
    KeyValue **ra = LIST(a, &nr, kv_str(a, "service.name", "api"),
                         kv_str(a, "service.instance.id", "i"), kv_str(a, "extra", "x"));
    Metric **ms =
        LIST(a, &nm,
             gauge(a, "g", "", LIST(a, &(size_t){0}, num_point(a, T0_MS + 10000, 1, NULL, 0)), 1));
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f->db, request(a, ra, nr, ms, nm), &res, err), 0);
    /* An older point of the same series: stored nothing, reported as a rejected point. The
     * older target_info sample is Strata's own and not counted. */
    ms = LIST(a, &nm, gauge(a, "g", "", LIST(a, &(size_t){0}, num_point(a, T0_MS, 2, NULL, 0)), 1));
    assert_int_equal(post_pb(f->db, request(a, ra, nr, ms, nm), &res, err), 0);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.rejected_points, 1);
    assert_non_null(strstr(res.partial_message,
                           "1 samples not stored (1 out of order; first: "
                           "g{instance=\"i\", job=\"api\"} at 1700000000000)"));
    expect_db(f->db, "g{instance=\"i\",job=\"api\"} "
                     "1@10000\ntarget_info{extra=\"x\",instance=\"i\",job=\"api\"} 1@10000\n");
}

static void test_label_limit_is_partial(void **state)
{
    (void)state;
    fixture f;
    memset(&f, 0, sizeof f);
    strata_options o;
    strata_options_init(&o);
    o.fsync = STRATA_FSYNC_NONE;
    o.max_labels_per_series = 4;
    assert_int_equal(open_db(&f, &o), 0);
    arena *a = &f.a;
    size_t nm;
    KeyValue **many = LIST(a, &(size_t){0}, kv_str(a, "a", "1"), kv_str(a, "b", "2"),
                           kv_str(a, "c", "3"), kv_str(a, "d", "4"), kv_str(a, "e", "5"));
    Metric **ms = LIST(
        a, &nm, gauge(a, "wide", "", LIST(a, &(size_t){0}, num_point(a, T0_MS, 1, many, 5)), 1),
        gauge(a, "narrow", "", LIST(a, &(size_t){0}, num_point(a, T0_MS, 1, NULL, 0)), 1));
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(post_pb(f.db, request(a, NULL, 0, ms, nm), &res, err), 0);
    assert_int_equal(res.http_status, 200);
    assert_int_equal(res.rejected_points, 1);
    assert_non_null(strstr(res.partial_message, "1 samples rejected by the database"));
    expect_db(f.db, "narrow{} 1@0\n");
    strata_close(f.db);
    test_rmtree(f.dir);
    arena_free(&f.a);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void expect_decode_error(const void *body, size_t len, bool json, int want_rc,
                                const char *want_msg)
{
    arena a;
    arena_init(&a, 0);
    otlp_export_request *req;
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = json ? otlp_decode_json(body, len, &a, &req, err)
                  : otlp_decode_pb(body, len, &a, &req, err);
    if (rc != want_rc || !strstr(err, want_msg)) fprintf(stderr, "got rc %d: %s\n", rc, err);
    assert_int_equal(rc, want_rc);
    assert_non_null(strstr(err, want_msg));
    arena_free(&a);
}

static void test_malformed_protobuf(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 0);
    size_t nr, nm, len;
    KeyValue **ra = LIST(&a, &nr, kv_str(&a, "service.name", "api"));
    Metric **ms = LIST(
        &a, &nm, gauge(&a, "g", "", LIST(&a, &(size_t){0}, num_point(&a, T0_MS, 1, NULL, 0)), 1));
    uint8_t *pb = pack(request(&a, ra, nr, ms, nm), &len);
    /* Every truncation fails with a reason, or (cut at a field boundary) decodes. */
    for (size_t cut = 0; cut < len; cut++) {
        arena d;
        arena_init(&d, 0);
        otlp_export_request *req;
        char err[STRATA_ERRMSG_SIZE] = "";
        int rc = otlp_decode_pb(pb, cut, &d, &req, err);
        assert_true(rc == 0 || (rc == STRATA_EINVAL && strstr(err, "protobuf: ")));
        arena_free(&d);
    }
    expect_decode_error(pb, len - 1, false, STRATA_EINVAL, "runs past the end");
    free(pb);
    /* resource_metrics (1) as a varint: wrong wire type. */
    expect_decode_error("\x08\x01", 2, false, STRATA_EINVAL, "wire type 0, expected 2");
    /* A group (wire type 3), in an unknown field so that only its wire type is wrong. */
    expect_decode_error("\x13\x14", 2, false, STRATA_EINVAL, "groups");
    /* Field number 0. */
    expect_decode_error("\x02\x00", 2, false, STRATA_EINVAL, "invalid field number");
    /* A string that is not UTF-8 in a metric name: RM{SM{Metric{name="\xff"}}}. */
    expect_decode_error("\x0a\x07\x12\x05\x12\x03\x0a\x01\xff", 9, false, STRATA_EINVAL,
                        "Metric.name");
    expect_decode_error("\x0a\x07\x12\x05\x12\x03\x0a\x01\x00", 9, false, STRATA_EINVAL,
                        "NUL byte");
    /* Unknown fields of every wire type are skipped. */
    arena d;
    arena_init(&d, 0);
    otlp_export_request *req;
    char err[STRATA_ERRMSG_SIZE];
    assert_int_equal(
        otlp_decode_pb(
            (const uint8_t
                 *)"\x10\x01\x19\x01\x02\x03\x04\x05\x06\x07\x08\x22\x01\x00\x2d\x01\x02\x03\x04",
            19, &d, &req, err),
        0);
    assert_int_equal(req->n_resource_metrics, 0);
    arena_free(&d);
    /* A packed fixed64 field whose length is not a multiple of 8: HistogramDataPoint.bucket_counts.
     */
    const uint8_t h[] = {0x0a, 0x0d, 0x12, 0x0b, 0x12, 0x09, 0x4a, 0x07,
                         0x0a, 0x05, 0x32, 0x03, 1,    2,    3};
    expect_decode_error(h, sizeof h, false, STRATA_EINVAL, "multiple of its element size");
    arena_free(&a);
}

/* An attribute value nested depth arrays deep, as protobuf bytes built from the inside out. */
static uint8_t *deep_pb(size_t depth, size_t *len)
{
    buf b = {0};
    buf_append(&b, "\x0a\x01x", 3); /* AnyValue{string_value = "x"} */
    for (size_t i = 0; i < depth; i++) {
        /* ArrayValue{values = [inner]} then AnyValue{array_value = that}. */
        for (int k = 0; k < 2; k++) {
            uint8_t hdr[12];
            size_t h = 0;
            hdr[h++] = k == 0 ? 0x0a : 0x2a;
            size_t n = b.len;
            while (n >= 0x80) {
                hdr[h++] = (uint8_t)(n | 0x80);
                n >>= 7;
            }
            hdr[h++] = (uint8_t)n;
            buf nb = {0};
            buf_append(&nb, hdr, h);
            buf_append(&nb, b.data, b.len);
            buf_free(&b);
            b = nb;
        }
    }
    *len = b.len;
    return b.data;
}

static void test_deep_nesting(void **state)
{
    (void)state;
    size_t len;
    /* 100000 levels of arrays in an attribute value: a recursive decoder would blow its stack.
     * As a whole request the outer message is an AnyValue, not a request, so wrap it: the value of
     * ExportMetricsServiceRequest field 1 is then misread only as far as the pre-scan's limit. */
    uint8_t *v = deep_pb(100000, &len);
    buf req = {0};
    /* RM{resource{attributes=[KeyValue{key="k", value=v}]}} */
    buf kv = {0}, res = {0}, rm = {0};
    buf_append(&kv, "\x0a\x01k\x12", 4);
    uint8_t tmp[10];
    size_t t = 0, n = len;
    while (n >= 0x80)
        tmp[t++] = (uint8_t)(n | 0x80), n >>= 7;
    tmp[t++] = (uint8_t)n;
    buf_append(&kv, tmp, t);
    buf_append(&kv, v, len);
    const struct {
        buf *in, *out;
        uint8_t tag;
    } wrap[] = {{&kv, &res, 0x0a}, {&res, &rm, 0x0a}, {&rm, &req, 0x0a}};
    for (int i = 0; i < 3; i++) {
        buf_putc(wrap[i].out, (char)wrap[i].tag);
        t = 0, n = wrap[i].in->len;
        while (n >= 0x80)
            tmp[t++] = (uint8_t)(n | 0x80), n >>= 7;
        tmp[t++] = (uint8_t)n;
        buf_append(wrap[i].out, tmp, t);
        buf_append(wrap[i].out, wrap[i].in->data, wrap[i].in->len);
    }
    expect_decode_error(req.data, req.len, false, STRATA_EINVAL, "nested deeper than 64 levels");
    /* Shallow enough is fine, and becomes JSON text in the label value. */
    buf_free(&kv);
    buf_free(&res);
    buf_free(&rm);
    buf_free(&req);
    free(v);

    /* JSON: 100000 levels of arrays, and deep objects. */
    size_t depth = 100000;
    char *j = malloc(2 * depth + 64);
    size_t o = 0;
    o += (size_t)sprintf(j, "{\"resourceMetrics\":");
    for (size_t i = 0; i < depth; i++)
        j[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        j[o++] = ']';
    j[o++] = '}';
    expect_decode_error(j, o, true, STRATA_EINVAL, "nesting deeper than 64 levels");
    free(j);
}

static void test_malformed_json(void **state)
{
    (void)state;
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"[]", "expected an object (ExportMetricsServiceRequest), got array"},
        {"{\"resourceMetrics\":{}}", "resourceMetrics: expected an array"},
        {"{\"resourceMetrics\":[1]}", "resourceMetrics[0]: expected an object"},
        {"{\"resourceMetrics\":[null]}", "null is not allowed"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"x\",\"gauge\":{"
         "\"dataPoints\":"
         "[{\"timeUnixNano\":true}]}}]}]}]}",
         "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].timeUnixNano: expected "
         "an unsigned integer"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":5}]}]}]}",
         "name: expected a string, got int"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[{"
         "\"timeUnixNano\":\"-1\"}]}}]}]}]}",
         "expected a decimal unsigned integer string"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[{"
         "\"timeUnixNano\":\"18446744073709551616\"}]}}]}]}]}",
         "out of range"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[{"
         "\"asInt\":\"1.5\"}]}}]}]}]}",
         "asInt: integer string out of range or malformed"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[{"
         "\"asDouble\":\"abc\"}]}}]}]}]}",
         "asDouble: expected a number"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"sum\":{\"isMonotonic\":1}}]}]}]"
         "}",
         "expected true or false"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"sum\":{"
         "\"aggregationTemporality\":\"NOPE\"}}]}]}]}",
         "unknown enum value name"},
        {"{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"a\\u0000b\"}]}}]}",
         "NUL character"},
        {"{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"a\",\"value\":{"
         "\"bytesValue\":\"!!\"}}]}}]}",
         "expected base64"},
        {"{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[{"
         "\"exemplars\":[{\"traceId\":\"xyz\"}]}]}}]}]}]}",
         "traceId: expected an even number of hex digits"},
        {"{\"resourceMetrics\":[]", "truncated"},
        {"{\"resourceMetrics\":[]} x", "unexpected data after the top-level object"},
        {"{\"resourceMetrics\":[],}", "json: "},
        {"{\"a\":\"\xff\"}", "json: "},
        {"", NULL},
    };
    for (size_t i = 0; cases[i].msg; i++)
        expect_decode_error(cases[i].body, strlen(cases[i].body), true, STRATA_EINVAL,
                            cases[i].msg);
    /* A JSON body whose parse tree would be too large is refused before parsing. */
    size_t n = 16 << 20;
    char *big = malloc(n + 32);
    size_t o = (size_t)sprintf(big, "{\"x\":[");
    while (o + 4 < n) {
        memcpy(big + o, "{},", 3);
        o += 3;
    }
    memcpy(big + o, "{}]}", 4);
    o += 4;
    expect_decode_error(big, o, true, STRATA_ELIMIT,
                        "send smaller batches or use application/x-protobuf");
    free(big);
}

static void test_huge_repeated_fields(void **state)
{
    fixture *f = *state;
    /* 4 MiB of empty ResourceMetrics (2 bytes each, ~100 bytes decoded): refused by the decode
     * budget or decoded; either way cleanly. */
    size_t n = 4 << 20;
    uint8_t *body = malloc(n);
    for (size_t i = 0; i < n; i += 2) {
        body[i] = 0x0a;
        body[i + 1] = 0x00;
    }
    otlp_result res;
    char err[STRATA_ERRMSG_SIZE];
    int rc = post(f->db, body, n, PB, NULL, &res, err);
    assert_true(rc == 0 || (rc == STRATA_ELIMIT && res.http_status == 413));
    /* Empty attributes by the million: KeyValue{} is 2 bytes on the wire. */
    const uint8_t prefix[] = {0x0a, 0x86, 0x80, 0x80, 0x02, 0x0a, 0x82, 0x80, 0x80, 0x02};
    /* RM(len 0x400006){Resource(len 0x400002){...}}: the lengths are written as 4-byte varints. */
    size_t payload = (4 << 20);
    uint8_t *b2 = malloc(sizeof prefix + payload);
    memcpy(b2, prefix, sizeof prefix);
    for (size_t i = 0; i < payload; i += 2) {
        b2[sizeof prefix + i] = 0x0a;
        b2[sizeof prefix + i + 1] = 0x00;
    }
    /* Fix up the two lengths: Resource = payload, RM = payload + 5 (tag + 4-byte length). */
    size_t lens[2] = {payload + 5, payload};
    for (int k = 0; k < 2; k++) {
        size_t v = lens[k];
        uint8_t *p = b2 + 1 + (size_t)k * 5;
        for (int j = 0; j < 4; j++) {
            p[j] = (uint8_t)((v & 0x7f) | (j < 3 ? 0x80 : 0));
            v >>= 7;
        }
    }
    rc = post(f->db, b2, sizeof prefix + payload, PB, NULL, &res, err);
    assert_true(rc == 0 || (rc == STRATA_ELIMIT && res.http_status == 413));
    free(b2);
    /* A histogram with 100000 buckets is legitimate, if odd: all stored. */
    arena *a = &f->a;
    size_t nb = 100000, nm;
    double *bounds = malloc(nb * sizeof *bounds);
    uint64_t *counts = malloc((nb + 1) * sizeof *counts);
    for (size_t i = 0; i < nb; i++)
        bounds[i] = (double)i, counts[i] = 1;
    counts[nb] = 1;
    Metric **ms =
        LIST(a, &nm,
             histogram(a, "wide", "", 2,
                       LIST(a, &(size_t){0},
                            hist_point(a, T0_MS, bounds, nb, counts, nb + 1, nb + 1, NULL)),
                       1));
    assert_int_equal(post_pb(f->db, request(a, NULL, 0, ms, nm), &res, err), 0);
    assert_int_equal(res.write.samples_written, nb + 2);
    free(bounds);
    free(counts);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gauge_and_resource, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_and_exponential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exponential_to_native, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_recorded_value_is_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_points_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attribute_values_and_collisions, setup, teardown),
        cmocka_unit_test(test_metric_names),
        cmocka_unit_test_setup_teardown(test_scope_promotion_and_target_info_span, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json, setup, teardown),
        cmocka_unit_test(test_json_equals_protobuf),
        cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_bomb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_and_responses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_and_limits, setup, teardown),
        cmocka_unit_test(test_label_limit_is_partial),
        cmocka_unit_test(test_malformed_protobuf),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test_setup_teardown(test_huge_repeated_fields, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
