/*
 * test_metrics.c: atomic metrics and their text exposition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "metrics/metrics.h"

#include <pthread.h>
#include <string.h>

static void test_histogram_buckets_and_text(void **state)
{
    (void)state;
    metric_histogram h;
    const double b[] = {0.1, 1};
    histogram_init(&h, b, 2);
    histogram_observe(&h, 0.05);
    histogram_observe(&h, 0.5);
    histogram_observe(&h, 5);
    buf out = {0};
    metrics_text t;
    metrics_sink s = metrics_text_sink(&t, &out);
    metrics_emit_family(&s, "lat_seconds", "histogram", "Latency.");
    label l[] = {LABEL("handler", "q\"x")};
    metrics_emit_histogram(&s, "lat_seconds", l, 1, &h);
    const char *want = "# HELP lat_seconds Latency.\n"
                       "# TYPE lat_seconds histogram\n"
                       "lat_seconds_bucket{handler=\"q\\\"x\",le=\"0.1\"} 1\n"
                       "lat_seconds_bucket{handler=\"q\\\"x\",le=\"1\"} 2\n"
                       "lat_seconds_bucket{handler=\"q\\\"x\",le=\"+Inf\"} 3\n"
                       "lat_seconds_sum{handler=\"q\\\"x\"} 5.55\n"
                       "lat_seconds_count{handler=\"q\\\"x\"} 3\n";
    assert_string_equal((char *)out.data, want);
    buf_free(&out);
}

typedef struct {
    metric_counter *c;
    metric_histogram *h;
} ctx;

static void *bump(void *arg)
{
    ctx *c = arg;
    for (int i = 0; i < 100000; i++) {
        counter_add(c->c, 1);
        histogram_observe(c->h, 1.0);
    }
    return NULL;
}

static void test_counters_are_atomic(void **state)
{
    (void)state;
    metric_counter c = {0};
    metric_histogram h;
    histogram_init_latency(&h);
    ctx x = {&c, &h};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, bump, &x);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert_int_equal(counter_get(&c), 400000);
    assert_int_equal(atomic_load(&h.count), 400000);
    uint64_t bits = atomic_load(&h.sum_bits);
    double sum;
    memcpy(&sum, &bits, sizeof sum);
    assert_true(sum == 400000.0);
}

static void test_process_metrics(void **state)
{
    (void)state;
    buf out = {0};
    metrics_text t;
    metrics_sink s = metrics_text_sink(&t, &out);
    metrics_emit_process(&s);
    assert_non_null(strstr((char *)out.data, "process_cpu_seconds_total "));
    assert_non_null(strstr((char *)out.data, "process_resident_memory_bytes "));
    assert_non_null(strstr((char *)out.data, "process_resident_memory_peak_bytes "));
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_buckets_and_text),
        cmocka_unit_test(test_counters_are_atomic),
        cmocka_unit_test(test_process_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
