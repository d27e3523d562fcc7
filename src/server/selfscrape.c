/*
 * selfscrape.c: Strata ingests its own metrics, so a new user has something to query at once and
 * an operator can watch Strata with Strata.
 *
 * Every interval the metrics are collected through the same sink walk as /metrics, labelled
 * job="strata" and instance=<listen address> as a Prometheus scrape would label them, and written
 * through the normal write path (validated, logged in the WAL).
 */
#include "server/server_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct scrape_batch {
    arena a;
    write_series *series;
    size_t n;
    size_t cap;
    int64_t t;
    const char *instance;
    int failed;
} scrape_batch;

static void batch_sample(void *ctx, const char *name, const label *labels, size_t n, double v)
{
    scrape_batch *b = ctx;
    if (b->failed) return;
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 128;
        write_series *ns = realloc(b->series, nc * sizeof *ns);
        if (!ns) {
            b->failed = STRATA_ENOMEM;
            return;
        }
        b->series = ns;
        b->cap = nc;
    }
    label *lv = arena_alloc(&b->a, (n + 3) * sizeof *lv);
    strata_sample *sv = arena_alloc(&b->a, sizeof *sv);
    if (!lv || !sv) {
        b->failed = STRATA_ENOMEM;
        return;
    }
    size_t k = 0;
    lv[k++] = (label){.name = LABEL_METRIC_NAME, .name_len = 8,
                      .value = arena_strndup(&b->a, name, strlen(name)),
                      .value_len = (uint32_t)strlen(name)};
    lv[k++] = LABEL("instance", b->instance);
    lv[k++] = LABEL("job", "strata");
    for (size_t i = 0; i < n; i++) {
        lv[k] = labels[i];
        lv[k].name = arena_strndup(&b->a, labels[i].name, labels[i].name_len);
        lv[k].value = arena_strndup(&b->a, labels[i].value, labels[i].value_len);
        if (!lv[k].name || !lv[k].value) {
            b->failed = STRATA_ENOMEM;
            return;
        }
        k++;
    }
    *sv = (strata_sample){.t = b->t, .v = v};
    b->series[b->n++] = (write_series){.labels = lv, .n_labels = k, .samples = sv, .n_samples = 1};
}

int selfscrape_once(server *s, int64_t t, char *err)
{
    scrape_batch b = {.t = t, .instance = s->address};
    arena_init(&b.a, 64 * 1024);
    metrics_sink sink = {.ctx = &b, .family = NULL, .sample = batch_sample};
    server_collect_metrics(s, &sink);
    int rc = b.failed ? strata_errf(err, b.failed, "self-scrape: out of memory")
                      : db_write(s->db, b.series, b.n, false, NULL, NULL, err);
    free(b.series);
    arena_free(&b.a);
    counter_add(&s->m.selfscrape_runs, 1);
    if (rc) counter_add(&s->m.selfscrape_failures, 1);
    return rc;
}

static void *scraper_main(void *arg)
{
    server *s = arg;
    int64_t interval = s->cfg.self_scrape_interval_ms;
    pthread_mutex_lock(&s->stop_mu);
    while (!s->stopping) {
        /* Scrape on interval boundaries, as Prometheus aligns its scrapes, so timestamps are
         * regular and compress to almost nothing. */
        int64_t now = clock_now_ms();
        int64_t next = (now / interval + 1) * interval;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000), .tv_nsec = (long)(next % 1000) * 1000000L};
        int w = pthread_cond_timedwait(&s->stop_cv, &s->stop_mu, &ts);
        if (s->stopping) break;
        if (w == 0) continue; /* spurious wake-up */
        pthread_mutex_unlock(&s->stop_mu);
        char err[STRATA_ERRMSG_SIZE] = "";
        int rc = selfscrape_once(s, next, err);
        if (rc && rc != STRATA_EOUTOFORDER && rc != STRATA_EDUPLICATE)
            strata_log(LOG_WARN, "self-scrape failed: %s", err);
        pthread_mutex_lock(&s->stop_mu);
    }
    pthread_mutex_unlock(&s->stop_mu);
    return NULL;
}

int selfscrape_start(server *s, char *err)
{
    pthread_mutex_init(&s->stop_mu, NULL);
    pthread_cond_init(&s->stop_cv, NULL);
    if (s->cfg.self_scrape_interval_ms <= 0) return 0;
    if (pthread_create(&s->scraper, NULL, scraper_main, s))
        return strata_errf(err, STRATA_ENOMEM, "cannot start the self-scrape thread");
    s->scraper_running = true;
    return 0;
}

void selfscrape_stop(server *s)
{
    if (s->scraper_running) {
        pthread_mutex_lock(&s->stop_mu);
        s->stopping = true;
        pthread_cond_signal(&s->stop_cv);
        pthread_mutex_unlock(&s->stop_mu);
        pthread_join(s->scraper, NULL);
        s->scraper_running = false;
    }
    pthread_mutex_destroy(&s->stop_mu);
    pthread_cond_destroy(&s->stop_cv);
}
