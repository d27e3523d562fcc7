/*
 * bench_ingest.c: `strata bench ingest`, a remote-write 1.0 load generator for any receiver.
 *
 * It pushes deterministic, realistic data (per host about 100 series shaped like node_exporter
 * plus an HTTP service: float and integer counters, bounded random-walk gauges, constants and
 * consistent classic histograms) to Strata, Prometheus or VictoriaMetrics exactly as a Prometheus
 * sender would: one TimeSeries per sample, batch-size samples per request, snappy protobuf with the
 * 1.0 headers, one request in flight per connection. Series are sharded over the threads by label
 * hash and each thread sends its shard in time order, so the per-series order a receiver requires
 * holds. Requests are encoded before the clock starts (streamed instead when they would not fit
 * in --max-memory-mb), so the numbers measure the receiver, not the generator; with --pid they
 * include the receiver's CPU seconds per million samples and its peak RSS. Every value comes from
 * a seeded generator per series (per histogram for the series of one histogram), so the same flags
 * produce the same bytes; --dry-run prints their hash, --decode times Strata's own decoder on them.
 */
#include "cli/bench_ingest.h"

#include "core/core.h"
#include "ingest/ingest.h"

#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- deterministic randomness --------------------------------------------------------------- */

static uint64_t bi_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double bi_rand01(uint64_t *s)
{
    return (double)(bi_splitmix(s) >> 11) * 0x1.0p-53;
}

static uint64_t bi_mix(uint64_t a, uint64_t b)
{
    uint64_t s = a ^ (b * 0xd6e8feb86659fd93ULL);
    return bi_splitmix(&s);
}

/* ---- the per-host series template ----------------------------------------------------------- */

typedef enum {
    K_CPU_COUNTER, /* float counter at 0.01 resolution (cpu seconds): a = CPU fraction in use */
    K_INT_COUNTER, /* integer counter: a = mean increase per second */
    K_GAUGE,       /* bounded random walk in [a, b], rounded to quantum (0 = not rounded) */
    K_CONST,       /* a; b > 0 picks one of a, 2a, 4a, 8a per host (memory and disk sizes) */
    K_TIME,        /* the sample's own time in seconds (node_time_seconds) */
    K_HIST,        /* one series of a classic histogram: role >= 0 bucket, -1 _sum, -2 _count */
} bi_kind;

typedef struct bi_hist_def {
    const char *name; /* family name without the suffix */
    const char *handler;
    int n_buckets;        /* including +Inf */
    const double *bounds; /* n_buckets - 1 finite upper bounds */
    const double *probs;  /* share of observations per (non-cumulative) bucket */
    double per_second;    /* mean observations per second */
} bi_hist_def;

static const double dur_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
static const double dur_probs[] = {0.08, 0.12, 0.2, 0.2, 0.15, 0.1, 0.07, 0.04, 0.025, 0.01, 0.005};
static const double size_bounds[] = {100, 1000, 10000, 100000};
static const double size_probs[] = {0.3, 0.45, 0.2, 0.045, 0.005};

static const bi_hist_def bi_hists[] = {
    {"http_request_duration_seconds", "/api/v1/query", 11, dur_bounds, dur_probs, 40},
    {"http_response_size_bytes", "/api/v1/query", 5, size_bounds, size_probs, 40},
};
#define BI_MAX_BUCKETS 11

typedef struct bi_tmpl {
    const char *name;
    int job;                   /* 0 node (port 9100), 1 api (port 8080) */
    const char *xn[3], *xv[3]; /* extra labels; NULL name when absent */
    bi_kind kind;
    double a, b, quantum;
    int hist, role;
} bi_tmpl;

#define BI_TMPL_MAX 128
static const char *const bi_jobs[] = {"node", "api"};
static const char *const bi_regions[] = {"us-east-1", "eu-west-1", "ap-south-1", "us-west-2"};
static const char *const bi_cpus[] = {"0", "1", "2", "3"};
static const char *const bi_modes[] = {"idle", "user",    "system", "iowait",
                                       "irq",  "softirq", "steal",  "nice"};
static const double bi_mode_share[] = {0.75,  0.15, 0.06,  0.02,
                                       0.005, 0.01, 0.001, 0.004}; /* sums to 1 */
static const char *const bi_le[2][BI_MAX_BUCKETS] = {
    {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"},
    {"100", "1000", "10000", "100000", "+Inf"},
};

typedef struct bi_tb {
    bi_tmpl *t;
    int n;
} bi_tb;

static bi_tmpl *bi_add(bi_tb *tb, const char *name, int job, bi_kind kind, double a, double b,
                       double quantum)
{
    bi_tmpl *t = &tb->t[tb->n++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->job = job;
    t->kind = kind;
    t->a = a;
    t->b = b;
    t->quantum = quantum;
    return t;
}

static void bi_x(bi_tmpl *t, int i, const char *n, const char *v)
{
    t->xn[i] = n;
    t->xv[i] = v;
}

/* Fills the template: 100 series per host (70 node, 30 api). */
static int bi_build_template(bi_tmpl *out)
{
    bi_tb tb = {out, 0};
    bi_tmpl *t;
    for (int c = 0; c < 4; c++)
        for (int m = 0; m < 8; m++) {
            t = bi_add(&tb, "node_cpu_seconds_total", 0, K_CPU_COUNTER, bi_mode_share[m], 0, 0.01);
            bi_x(t, 0, "cpu", bi_cpus[c]);
            bi_x(t, 1, "mode", bi_modes[m]);
        }
    bi_add(&tb, "node_memory_MemTotal_bytes", 0, K_CONST, 8589934592.0, 1, 0);
    bi_add(&tb, "node_memory_SwapTotal_bytes", 0, K_CONST, 2147483648.0, 0, 0);
    bi_add(&tb, "node_memory_MemAvailable_bytes", 0, K_GAUGE, 2e9, 7e9, 4096);
    bi_add(&tb, "node_memory_MemFree_bytes", 0, K_GAUGE, 5e8, 3e9, 4096);
    bi_add(&tb, "node_memory_Cached_bytes", 0, K_GAUGE, 1e9, 4e9, 4096);
    bi_add(&tb, "node_memory_Buffers_bytes", 0, K_GAUGE, 5e7, 3e8, 4096);
    bi_add(&tb, "node_memory_SwapFree_bytes", 0, K_GAUGE, 1.5e9, 2.1e9, 4096);
    bi_add(&tb, "node_load1", 0, K_GAUGE, 0, 8, 0.01);
    bi_add(&tb, "node_load5", 0, K_GAUGE, 0.5, 6, 0.01);
    bi_add(&tb, "node_load15", 0, K_GAUGE, 1, 4, 0.01);
    static const char *const devs[] = {"eth0", "lo"};
    for (int d = 0; d < 2; d++) {
        t = bi_add(&tb, "node_network_receive_bytes_total", 0, K_INT_COUNTER, d ? 2e4 : 3e5, 0, 1);
        bi_x(t, 0, "device", devs[d]);
        t = bi_add(&tb, "node_network_transmit_bytes_total", 0, K_INT_COUNTER, d ? 2e4 : 1e5, 0, 1);
        bi_x(t, 0, "device", devs[d]);
        t = bi_add(&tb, "node_network_mtu_bytes", 0, K_CONST, d ? 65536 : 1500, 0, 0);
        bi_x(t, 0, "device", devs[d]);
    }
    t = bi_add(&tb, "node_network_receive_packets_total", 0, K_INT_COUNTER, 400, 0, 1);
    bi_x(t, 0, "device", "eth0");
    t = bi_add(&tb, "node_network_transmit_packets_total", 0, K_INT_COUNTER, 250, 0, 1);
    bi_x(t, 0, "device", "eth0");
    static const char *const disks[] = {"sda", "sdb"};
    for (int d = 0; d < 2; d++) {
        t = bi_add(&tb, "node_disk_read_bytes_total", 0, K_INT_COUNTER, d ? 4e4 : 2e5, 0, 4096);
        bi_x(t, 0, "device", disks[d]);
        t = bi_add(&tb, "node_disk_written_bytes_total", 0, K_INT_COUNTER, d ? 1e5 : 6e5, 0, 4096);
        bi_x(t, 0, "device", disks[d]);
        t = bi_add(&tb, "node_disk_io_time_seconds_total", 0, K_CPU_COUNTER, d ? 0.01 : 0.05, 0,
                   0.01);
        bi_x(t, 0, "device", disks[d]);
    }
    static const char *const mounts[][2] = {{"/", "/dev/sda1"}, {"/var", "/dev/sdb1"}};
    for (int m = 0; m < 2; m++) {
        t = bi_add(&tb, "node_filesystem_avail_bytes", 0, K_GAUGE, 2e10, 4e10, 4096);
        bi_x(t, 0, "device", mounts[m][1]);
        bi_x(t, 1, "fstype", "ext4");
        bi_x(t, 2, "mountpoint", mounts[m][0]);
        t = bi_add(&tb, "node_filesystem_size_bytes", 0, K_CONST, 53687091200.0, 1, 0);
        bi_x(t, 0, "device", mounts[m][1]);
        bi_x(t, 1, "fstype", "ext4");
        bi_x(t, 2, "mountpoint", mounts[m][0]);
    }
    bi_add(&tb, "node_boot_time_seconds", 0, K_CONST, 1699000000, 0, 0);
    bi_add(&tb, "node_time_seconds", 0, K_TIME, 0, 0, 0);
    bi_add(&tb, "node_context_switches_total", 0, K_INT_COUNTER, 3000, 0, 1);
    bi_add(&tb, "node_intr_total", 0, K_INT_COUNTER, 1500, 0, 1);
    bi_add(&tb, "node_procs_running", 0, K_GAUGE, 1, 12, 1);
    bi_add(&tb, "node_procs_blocked", 0, K_GAUGE, 0, 3, 1);
    bi_add(&tb, "node_entropy_available_bits", 0, K_GAUGE, 3000, 4096, 1);
    bi_add(&tb, "process_open_fds", 0, K_GAUGE, 8, 20, 1);
    bi_add(&tb, "process_resident_memory_bytes", 0, K_GAUGE, 1.5e7, 3e7, 4096);
    bi_add(&tb, "up", 0, K_CONST, 1, 0, 0);
    /* The HTTP service on the same host. */
    static const char *const methods[] = {"GET", "POST"};
    static const char *const codes[] = {"200", "400", "500"};
    static const double code_rate[] = {30, 1.5, 0.05};
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 3; c++) {
            t = bi_add(&tb, "http_requests_total", 1, K_INT_COUNTER, code_rate[c] / (m + 1), 0, 1);
            bi_x(t, 0, "code", codes[c]);
            bi_x(t, 1, "handler", "/api/v1/query");
            bi_x(t, 2, "method", methods[m]);
        }
    for (int h = 0; h < 2; h++) {
        const bi_hist_def *d = &bi_hists[h];
        for (int k = -2; k < d->n_buckets; k++) {
            static const char *const suffixed[2][3] = {
                {"http_request_duration_seconds_count", "http_request_duration_seconds_sum",
                 "http_request_duration_seconds_bucket"},
                {"http_response_size_bytes_count", "http_response_size_bytes_sum",
                 "http_response_size_bytes_bucket"}};
            t = bi_add(&tb, suffixed[h][k < 0 ? k + 2 : 2], 1, K_HIST, 0, 0, 0);
            t->hist = h;
            t->role = k;
            bi_x(t, 0, "handler", d->handler);
            if (k >= 0) bi_x(t, 1, "le", bi_le[h][k]);
        }
    }
    bi_add(&tb, "up", 1, K_CONST, 1, 0, 0);
    bi_add(&tb, "go_goroutines", 1, K_GAUGE, 20, 400, 1);
    bi_add(&tb, "go_memstats_heap_alloc_bytes", 1, K_GAUGE, 5e6, 8e7, 1);
    bi_add(&tb, "process_cpu_seconds_total", 1, K_CPU_COUNTER, 0.2, 0, 0.01);
    return tb.n;
}

/* ---- series and their state ----------------------------------------------------------------- */

typedef struct bi_series {
    label labels[8];
    uint32_t n_labels;
    uint32_t target; /* host * 2 + job: samples of one target share their timestamps */
    const bi_tmpl *t;
    uint64_t rng;
    uint64_t count; /* counters: the integer state (ticks for K_CPU_COUNTER) */
    double v;       /* gauges: the walk; constants: the value */
    /* histograms: every series of one histogram replays the same observation stream from the
     * same seed, so the buckets, _sum and _count agree wherever the series are sharded */
    uint64_t *hcounts; /* non-cumulative bucket counts */
    double hsum;
} bi_series;

typedef struct bi_config {
    const char *url;
    uint64_t n_series;
    int64_t interval_ms;
    double hours;
    int concurrency;
    uint32_t batch;
    int64_t end_ms;
    uint64_t seed;
    long pid;
    uint64_t max_memory;
    bool dry_run, decode, json;
    int64_t timeout_ms;
} bi_config;

typedef struct bi_shared {
    const bi_config *cfg;
    bi_tmpl tmpl[BI_TMPL_MAX];
    int n_tmpl;
    char **instances; /* one per target */
    uint64_t steps;
    bool streamed;
    pthread_barrier_t start;
    pthread_mutex_t mu;
    char first_error[1024]; /* the first non-2xx answer or transport error */
    int first_status;
} bi_shared;

typedef struct bi_worker {
    int id;
    pthread_t thread;
    bi_shared *sh;
    bi_series *series;
    size_t n_series;
    uint64_t step; /* the generator's cursor: next (step, series) to emit */
    size_t next;
    /* pre-encoded requests */
    buf reqs;
    size_t *req_off;
    uint32_t *req_samples;
    size_t n_reqs;
    /* results */
    double *lat_ms;
    size_t n_lat;
    uint64_t sent, acked, rejected, failed, bytes;
    int rc;
} bi_worker;

static int64_t bi_target_offset(const bi_config *cfg, uint32_t target)
{
    /* Prometheus spreads its targets over the scrape interval; up to 10 s here. */
    int64_t span = cfg->interval_ms < 10000 ? cfg->interval_ms : 10000;
    return (int64_t)(bi_mix(cfg->seed ^ 0x7461726765740aULL, target) % (uint64_t)span);
}

static int64_t bi_sample_time(const bi_shared *sh, const bi_series *s, uint64_t step)
{
    const bi_config *cfg = sh->cfg;
    int64_t base = cfg->end_ms - (int64_t)(sh->steps - 1 - step) * cfg->interval_ms;
    /* A scrape starts a millisecond or two late now and then; never enough to reorder. */
    int64_t jitter =
        cfg->interval_ms >= 1000 ? (int64_t)(bi_mix(cfg->seed ^ s->target, step) % 3) : 0;
    return base - bi_target_offset(cfg, s->target) - jitter;
}

static double bi_quantize(double v, double q)
{
    if (q <= 0) return v;
    if (q < 1) return round(v / q) * q;
    return floor(v / q) * q;
}

/* Adds secs worth of observations to a histogram series' state. */
static void bi_hist_step(bi_series *s, double secs)
{
    const bi_hist_def *d = &bi_hists[s->t->hist];
    uint64_t n = (uint64_t)llround(d->per_second * secs * (0.5 + bi_rand01(&s->rng)));
    double left = 1.0;
    uint64_t rem = n;
    for (int i = 0; i < d->n_buckets; i++) {
        uint64_t inc;
        if (i == d->n_buckets - 1 || left <= 0) {
            inc = rem;
        } else {
            double share = d->probs[i] / left;
            inc = (uint64_t)llround((double)rem * share * (0.8 + 0.4 * bi_rand01(&s->rng)));
            if (inc > rem) inc = rem;
        }
        left -= d->probs[i];
        rem -= inc;
        s->hcounts[i] += inc;
        double lo = i ? d->bounds[i - 1] : 0, hi = i < d->n_buckets - 1 ? d->bounds[i] : lo * 2;
        s->hsum += (double)inc * (lo + (hi - lo) * bi_rand01(&s->rng));
    }
}

/* The next value of a series (advancing its state), for a sample at time t. */
static double bi_next_value(const bi_config *cfg, bi_series *s, int64_t t, bool first)
{
    const bi_tmpl *tp = s->t;
    double secs = (double)cfg->interval_ms / 1000.0;
    switch (tp->kind) {
    case K_CPU_COUNTER:
        if (!first)
            s->count += (uint64_t)llround(tp->a * secs * 100 * (0.8 + 0.4 * bi_rand01(&s->rng)));
        return (double)s->count / 100.0;
    case K_INT_COUNTER:
        if (!first) {
            uint64_t inc = (uint64_t)llround(tp->a * secs * (0.5 + bi_rand01(&s->rng)));
            if (tp->quantum > 1) inc = inc / (uint64_t)tp->quantum * (uint64_t)tp->quantum;
            s->count += inc;
        }
        return (double)s->count;
    case K_GAUGE: {
        double span = tp->b - tp->a;
        if (!first) {
            s->v += (bi_rand01(&s->rng) - 0.5) * span * 0.05;
            if (s->v < tp->a) s->v = 2 * tp->a - s->v;
            if (s->v > tp->b) s->v = 2 * tp->b - s->v;
        }
        return bi_quantize(s->v, tp->quantum);
    }
    case K_CONST:
        return s->v;
    case K_TIME:
        return (double)t / 1000.0;
    case K_HIST: {
        if (!first) bi_hist_step(s, secs);
        const bi_hist_def *d = &bi_hists[tp->hist];
        if (tp->role == -1) return s->hsum;
        uint64_t c = 0;
        int upto = tp->role == -2 ? d->n_buckets - 1 : tp->role;
        for (int i = 0; i <= upto; i++)
            c += s->hcounts[i];
        return (double)c;
    }
    }
    return 0;
}

static int bi_label_cmp(const void *a, const void *b)
{
    const label *x = a, *y = b;
    return label_str_compare(x->name, x->name_len, y->name, y->name_len);
}

static label bi_label(const char *n, const char *v)
{
    return (label){
        .name = n, .value = v, .name_len = (uint32_t)strlen(n), .value_len = (uint32_t)strlen(v)};
}

/* Sets up series number id (host id / 100) with its labels and initial state; a histogram
 * series keeps its bucket counts in hslot (BI_MAX_BUCKETS counters, zeroed). */
static void bi_series_init(bi_shared *sh, uint64_t id, bi_series *s, uint64_t *hslot)
{
    const bi_config *cfg = sh->cfg;
    uint64_t host = id / (uint64_t)sh->n_tmpl;
    const bi_tmpl *tp = &sh->tmpl[id % (uint64_t)sh->n_tmpl];
    memset(s, 0, sizeof *s);
    s->t = tp;
    s->hcounts = hslot;
    s->target = (uint32_t)(host * 2 + (uint64_t)tp->job);
    uint32_t n = 0;
    s->labels[n++] = bi_label(LABEL_METRIC_NAME, tp->name);
    s->labels[n++] = bi_label("job", bi_jobs[tp->job]);
    s->labels[n++] = bi_label("instance", sh->instances[s->target]);
    s->labels[n++] = bi_label("region", bi_regions[host % 4]);
    s->labels[n++] = bi_label("env", host % 5 == 4 ? "staging" : "prod");
    for (int i = 0; i < 3 && tp->xn[i]; i++)
        s->labels[n++] = bi_label(tp->xn[i], tp->xv[i]);
    s->n_labels = n;
    qsort(s->labels, n, sizeof(label), bi_label_cmp);
    s->rng = bi_mix(cfg->seed, id + 1);
    switch (tp->kind) {
    case K_CPU_COUNTER:
        s->count = 100000 + bi_splitmix(&s->rng) % 100000000;
        break;
    case K_INT_COUNTER:
        s->count = bi_splitmix(&s->rng) % 1000000000;
        if (tp->quantum > 1) s->count = s->count / (uint64_t)tp->quantum * (uint64_t)tp->quantum;
        break;
    case K_GAUGE:
        s->v = tp->a + (tp->b - tp->a) * bi_rand01(&s->rng);
        break;
    case K_CONST:
        s->v = tp->b > 0 ? tp->a * (double)(1u << (bi_mix(cfg->seed, host) % 4)) : tp->a;
        break;
    case K_HIST:
        /* Seeded by the histogram, not the series: see bi_series. The process has been up for
         * an hour to a month already. */
        s->rng = bi_mix(cfg->seed ^ 0x68697374ULL, host * 16 + (uint64_t)tp->hist);
        bi_hist_step(s, 3600.0 + 2592000.0 * bi_rand01(&s->rng));
        break;
    case K_TIME:
        break;
    }
}

/* ---- encoding ------------------------------------------------------------------------------- */

/* Appends the worker's next request (up to batch samples) to out; *n_samples is 0 at the end. */
static int bi_next_request(bi_worker *w, write_series *ws, strata_sample *smp, buf *out,
                           uint32_t *n_samples, char *err)
{
    bi_shared *sh = w->sh;
    uint32_t n = 0;
    while (n < sh->cfg->batch && w->step < sh->steps && w->n_series) {
        bi_series *s = &w->series[w->next];
        int64_t t = bi_sample_time(sh, s, w->step);
        smp[n].t = t;
        smp[n].v = bi_next_value(sh->cfg, s, t, w->step == 0);
        ws[n] = (write_series){
            .labels = s->labels, .n_labels = s->n_labels, .samples = &smp[n], .n_samples = 1};
        n++;
        if (++w->next == w->n_series) {
            w->next = 0;
            w->step++;
        }
    }
    *n_samples = n;
    if (!n) return 0;
    return ingest_rw_encode(ws, n, true, out, err);
}

/* ---- sending -------------------------------------------------------------------------------- */

typedef struct bi_body {
    char data[1024];
    size_t len;
} bi_body;

static size_t bi_on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    bi_body *b = ud;
    size_t n = size * nmemb, room = sizeof b->data - 1 - b->len;
    size_t k = n < room ? n : room;
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = 0;
    return n;
}

static void bi_note_error(bi_shared *sh, int status, const char *msg)
{
    pthread_mutex_lock(&sh->mu);
    if (!sh->first_error[0]) {
        snprintf(sh->first_error, sizeof sh->first_error, "%.1000s", *msg ? msg : "(empty body)");
        sh->first_status = status;
    }
    pthread_mutex_unlock(&sh->mu);
}

static void *bi_worker_main(void *arg)
{
    bi_worker *w = arg;
    bi_shared *sh = w->sh;
    const bi_config *cfg = sh->cfg;
    char err[STRATA_ERRMSG_SIZE];
    uint32_t batch = cfg->batch;
    write_series *ws = malloc(batch * sizeof *ws);
    strata_sample *smp = malloc(batch * sizeof *smp);
    size_t cap_req = 0;
    CURL *curl = NULL;
    struct curl_slist *hdrs = NULL;
    buf one = {0};
    if (!ws || !smp) {
        w->rc = STRATA_ENOMEM;
        goto wait;
    }
    if (!sh->streamed) {
        for (;;) {
            uint32_t n;
            size_t off = w->reqs.len;
            if (bi_next_request(w, ws, smp, &w->reqs, &n, err)) {
                fprintf(stderr, "bench ingest: encoding: %s\n", err);
                w->rc = STRATA_ENOMEM;
                break;
            }
            if (!n) break;
            if (w->n_reqs == cap_req) {
                cap_req = cap_req ? cap_req * 2 : 1024;
                size_t *o = realloc(w->req_off, (cap_req + 1) * sizeof *o);
                if (o) w->req_off = o;
                uint32_t *c = realloc(w->req_samples, cap_req * sizeof *c);
                if (c) w->req_samples = c;
                if (!o || !c) {
                    w->rc = STRATA_ENOMEM;
                    break;
                }
            }
            w->req_off[w->n_reqs] = off;
            w->req_samples[w->n_reqs++] = n;
        }
        if (w->req_off) w->req_off[w->n_reqs] = w->reqs.len;
    }
    if (!cfg->dry_run && !cfg->decode) {
        curl = curl_easy_init();
        hdrs = curl_slist_append(hdrs, "Content-Encoding: snappy");
        hdrs = curl_slist_append(hdrs, "Content-Type: application/x-protobuf");
        hdrs = curl_slist_append(hdrs, "X-Prometheus-Remote-Write-Version: 0.1.0");
        hdrs = curl_slist_append(hdrs, "User-Agent: strata-bench/" STRATA_VERSION);
        hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
        if (!curl || !hdrs)
            w->rc = STRATA_ENOMEM;
        else {
            curl_easy_setopt(curl, CURLOPT_URL, cfg->url);
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
            curl_easy_setopt(curl, CURLOPT_POST, 1L);
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
            curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, bi_on_body);
        }
    }
wait:
    pthread_barrier_wait(&sh->start);
    if (w->rc || cfg->dry_run || cfg->decode) goto out;
    size_t cap_lat = 0;
    for (size_t r = 0;; r++) {
        const uint8_t *body;
        size_t len;
        uint32_t n;
        if (sh->streamed) {
            one.len = 0;
            if (bi_next_request(w, ws, smp, &one, &n, err)) {
                fprintf(stderr, "bench ingest: encoding: %s\n", err);
                w->rc = STRATA_ENOMEM;
                break;
            }
            if (!n) break;
            body = one.data;
            len = one.len;
        } else {
            if (r == w->n_reqs) break;
            body = w->reqs.data + w->req_off[r];
            len = w->req_off[r + 1] - w->req_off[r];
            n = w->req_samples[r];
        }
        bi_body resp = {.len = 0};
        resp.data[0] = 0;
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
        uint64_t t0 = clock_mono_ns();
        CURLcode cc = curl_easy_perform(curl);
        uint64_t t1 = clock_mono_ns();
        if (w->n_lat == cap_lat) {
            cap_lat = cap_lat ? cap_lat * 2 : 1024;
            double *l = realloc(w->lat_ms, cap_lat * sizeof *l);
            if (!l) {
                w->rc = STRATA_ENOMEM;
                break;
            }
            w->lat_ms = l;
        }
        w->lat_ms[w->n_lat++] = (double)(t1 - t0) / 1e6;
        w->sent += n;
        w->bytes += len;
        long status = 0;
        if (cc == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) {
            w->failed += n;
            bi_note_error(sh, 0, curl_easy_strerror(cc));
        } else if (status >= 200 && status < 300) {
            w->acked += n;
        } else {
            w->rejected += n;
            char msg[1100];
            snprintf(msg, sizeof msg, "HTTP %ld: %s", status, resp.data);
            bi_note_error(sh, (int)status, msg);
        }
    }
out:
    curl_easy_cleanup(curl);
    curl_slist_free_all(hdrs);
    buf_free(&one);
    free(ws);
    free(smp);
    return NULL;
}

/* ---- the receiver's process ----------------------------------------------------------------- */

/* utime + stime of a process in seconds; -1 when it cannot be read. */
static double bi_proc_cpu(long pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(line, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15). */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A "VmHWM:"-style line of /proc/PID/status in kB; -1 when absent. */
static long bi_proc_status_kb(long pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) v = strtol(line + kl, NULL, 10);
    fclose(f);
    return v;
}

/* ---- main ----------------------------------------------------------------------------------- */

static int bi_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bi_usage(FILE *out)
{
    fprintf(
        out,
        "usage: strata bench ingest --url URL --series N [flags]\n"
        "\n"
        "Pushes deterministic node_exporter-like data (about 100 series per host) over\n"
        "Prometheus remote write 1.0 and reports throughput, latency and, with --pid, the\n"
        "receiver's CPU seconds per million samples and peak RSS.\n"
        "\n"
        "  --url URL            receiver, e.g. http://127.0.0.1:9090/api/v1/write\n"
        "  --series N           number of series (default 10000)\n"
        "  --interval DUR       scrape interval (default 15s)\n"
        "  --hours H            history to send, ending at --end-ms (default 1; fractions ok)\n"
        "  --concurrency C      connections, one request in flight each (default 4)\n"
        "  --batch-size N       samples per request, one TimeSeries each (default 2000)\n"
        "  --end-ms MS          time of the last sample (default: now, floored to the minute)\n"
        "  --seed S             data seed (default 1); same flags and seed, same bytes\n"
        "  --pid PID            the receiver's process, for CPU and peak RSS\n"
        "  --max-memory-mb MB   pre-encode requests up to this size, else stream (default 4096)\n"
        "  --timeout DUR        per-request timeout (default 60s)\n"
        "  --dry-run            encode only; print the request count, bytes and their hash\n"
        "  --decode             encode, then time Strata's remote-write decoder on the requests\n"
        "  --json               print the report as one JSON object\n");
}

static int bi_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return -1;
    *out = v;
    return 0;
}

int cli_bench_ingest(int argc, char **argv)
{
    bi_config cfg = {.n_series = 10000,
                     .interval_ms = 15000,
                     .hours = 1,
                     .concurrency = 4,
                     .batch = 2000,
                     .end_ms = -1,
                     .seed = 1,
                     .pid = 0,
                     .max_memory = (uint64_t)4096 << 20,
                     .timeout_ms = 60000};
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"series", required_argument, NULL, 'n'},
        {"interval", required_argument, NULL, 'i'},
        {"hours", required_argument, NULL, 'H'},
        {"concurrency", required_argument, NULL, 'c'},
        {"batch-size", required_argument, NULL, 'b'},
        {"end-ms", required_argument, NULL, 'e'},
        {"seed", required_argument, NULL, 's'},
        {"pid", required_argument, NULL, 'p'},
        {"max-memory-mb", required_argument, NULL, 'm'},
        {"timeout", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, 'D'},
        {"decode", no_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[STRATA_ERRMSG_SIZE];
    optind = 1;
    int c, opt_index = 0;
    uint64_t u;
    while ((c = getopt_long(argc, argv, "h", opts, &opt_index)) != -1) {
        switch (c) {
        case 'u':
            cfg.url = optarg;
            break;
        case 'n':
            if (bi_parse_u64(optarg, &cfg.n_series) || cfg.n_series == 0) goto bad;
            break;
        case 'i':
            if (duration_parse(optarg, strlen(optarg), &cfg.interval_ms, err) ||
                cfg.interval_ms <= 0)
                goto bad;
            break;
        case 'H': {
            char *end;
            cfg.hours = strtod(optarg, &end);
            if (*end || !(cfg.hours > 0) || cfg.hours > 24 * 366) goto bad;
            break;
        }
        case 'c':
            if (bi_parse_u64(optarg, &u) || u == 0 || u > 1024) goto bad;
            cfg.concurrency = (int)u;
            break;
        case 'b':
            if (bi_parse_u64(optarg, &u) || u == 0 || u > 1000000) goto bad;
            cfg.batch = (uint32_t)u;
            break;
        case 'e':
            if (bi_parse_u64(optarg, &u) || u > (uint64_t)INT64_MAX / 2) goto bad;
            cfg.end_ms = (int64_t)u;
            break;
        case 's':
            if (bi_parse_u64(optarg, &cfg.seed)) goto bad;
            break;
        case 'p':
            if (bi_parse_u64(optarg, &u) || u == 0) goto bad;
            cfg.pid = (long)u;
            break;
        case 'm':
            if (bi_parse_u64(optarg, &u)) goto bad;
            cfg.max_memory = u << 20;
            break;
        case 't':
            if (duration_parse(optarg, strlen(optarg), &cfg.timeout_ms, err) || cfg.timeout_ms <= 0)
                goto bad;
            break;
        case 'D':
            cfg.dry_run = true;
            break;
        case 'd':
            cfg.decode = true;
            break;
        case 'j':
            cfg.json = true;
            break;
        case 'h':
            bi_usage(stdout);
            return 0;
        default:
            bi_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "strata bench ingest: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (!cfg.url && !cfg.dry_run && !cfg.decode) {
        fprintf(stderr, "strata bench ingest: --url is required (or --dry-run / --decode)\n");
        return 2;
    }
    if (cfg.end_ms < 0) cfg.end_ms = clock_now_ms() / 60000 * 60000;
    if (cfg.pid && bi_proc_cpu(cfg.pid) < 0) {
        fprintf(stderr, "strata bench ingest: cannot read /proc/%ld/stat\n", cfg.pid);
        return 2;
    }

    bi_shared *sh = calloc(1, sizeof *sh);
    if (!sh) return 1;
    sh->cfg = &cfg;
    sh->n_tmpl = bi_build_template(sh->tmpl);
    sh->steps = (uint64_t)((cfg.hours * 3600000.0) / (double)cfg.interval_ms);
    if (sh->steps == 0) sh->steps = 1;
    uint64_t hosts = (cfg.n_series + (uint64_t)sh->n_tmpl - 1) / (uint64_t)sh->n_tmpl;
    sh->instances = calloc(hosts * 2, sizeof *sh->instances);
    bi_series *all = calloc(cfg.n_series, sizeof *all);
    bi_worker *w = calloc((size_t)cfg.concurrency, sizeof *w);
    size_t n_hist = 0;
    for (int i = 0; i < sh->n_tmpl; i++)
        n_hist += sh->tmpl[i].kind == K_HIST;
    uint64_t *hcounts = calloc(hosts * n_hist * BI_MAX_BUCKETS + 1, sizeof *hcounts);
    int rc = 1;
    if (!sh->instances || !all || !w || !hcounts) {
        fprintf(stderr, "strata bench ingest: out of memory for %" PRIu64 " series\n",
                cfg.n_series);
        goto done;
    }
    for (uint64_t h = 0; h < hosts; h++)
        for (int j = 0; j < 2; j++) {
            char name[64];
            snprintf(name, sizeof name, "host-%05" PRIu64 ":%d", h, j ? 8080 : 9100);
            sh->instances[h * 2 + (uint64_t)j] = strdup(name);
            if (!sh->instances[h * 2 + (uint64_t)j]) goto done;
        }
    size_t hi = 0;
    for (uint64_t i = 0; i < cfg.n_series; i++) {
        bool hist = sh->tmpl[i % (uint64_t)sh->n_tmpl].kind == K_HIST;
        bi_series_init(sh, i, &all[i], hist ? hcounts + (hi++) * BI_MAX_BUCKETS : NULL);
    }
    /* Shard by label hash; within a shard keep the generation order. */
    size_t *count = calloc((size_t)cfg.concurrency + 1, sizeof *count);
    uint32_t *shard = malloc(cfg.n_series * sizeof *shard);
    if (!count || !shard) {
        free(count);
        free(shard);
        goto done;
    }
    for (uint64_t i = 0; i < cfg.n_series; i++) {
        shard[i] =
            (uint32_t)(labels_hash(all[i].labels, all[i].n_labels) % (uint64_t)cfg.concurrency);
        count[shard[i] + 1]++;
    }
    for (int k = 0; k < cfg.concurrency; k++)
        count[k + 1] += count[k];
    for (int k = 0; k < cfg.concurrency; k++) {
        w[k].id = k;
        w[k].sh = sh;
        w[k].n_series = count[k + 1] - count[k];
    }
    /* Each worker's series are a contiguous, reordered copy (its own state, its own cache). */
    bi_series *sorted = calloc(cfg.n_series, sizeof *sorted);
    if (!sorted) {
        free(count);
        free(shard);
        goto done;
    }
    {
        size_t *pos = calloc((size_t)cfg.concurrency, sizeof *pos);
        if (!pos) {
            free(count);
            free(shard);
            free(sorted);
            goto done;
        }
        for (uint64_t i = 0; i < cfg.n_series; i++)
            sorted[count[shard[i]] + pos[shard[i]]++] = all[i];
        free(pos);
    }
    for (int k = 0; k < cfg.concurrency; k++)
        w[k].series = sorted + count[k];
    free(count);
    free(shard);
    free(all);
    all = sorted;

    /* Pre-encode or stream: estimate the encoded size from one request of a throwaway copy. */
    uint64_t total_samples = cfg.n_series * sh->steps;
    {
        bi_worker probe = w[0];
        size_t m = probe.n_series;
        bi_series *copy = malloc((m ? m : 1) * sizeof *copy);
        uint64_t *hc = calloc((m ? m : 1) * BI_MAX_BUCKETS, sizeof *hc);
        write_series *ws = malloc(cfg.batch * sizeof *ws);
        strata_sample *smp = malloc(cfg.batch * sizeof *smp);
        buf b = {0};
        uint32_t n = 0;
        if (copy && hc && ws && smp) {
            memcpy(copy, probe.series, m * sizeof *copy);
            for (size_t i = 0; i < m; i++)
                if (copy[i].hcounts) {
                    memcpy(hc + i * BI_MAX_BUCKETS, copy[i].hcounts,
                           sizeof(uint64_t) * BI_MAX_BUCKETS);
                    copy[i].hcounts = hc + i * BI_MAX_BUCKETS;
                }
            probe.series = copy;
            bi_next_request(&probe, ws, smp, &b, &n, err);
        }
        double per_sample = n ? (double)b.len / n : 64;
        sh->streamed = !cfg.dry_run && !cfg.decode &&
                       per_sample * (double)total_samples * 1.1 > (double)cfg.max_memory;
        buf_free(&b);
        free(copy);
        free(hc);
        free(ws);
        free(smp);
    }

    if (!cfg.dry_run && !cfg.decode) curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_barrier_init(&sh->start, NULL, (unsigned)cfg.concurrency + 1);
    pthread_mutex_init(&sh->mu, NULL);
    uint64_t t_enc = clock_mono_ns();
    for (int k = 0; k < cfg.concurrency; k++)
        if (pthread_create(&w[k].thread, NULL, bi_worker_main, &w[k])) {
            fprintf(stderr, "strata bench ingest: cannot start thread %d\n", k);
            exit(1); /* the barrier cannot be released without it */
        }
    pthread_barrier_wait(&sh->start); /* every request is encoded now (unless streamed) */
    double enc_s = (double)(clock_mono_ns() - t_enc) / 1e9;
    double cpu0 = cfg.pid ? bi_proc_cpu(cfg.pid) : 0;
    uint64_t t0 = clock_mono_ns();
    for (int k = 0; k < cfg.concurrency; k++)
        pthread_join(w[k].thread, NULL);
    uint64_t t1 = clock_mono_ns();
    pthread_barrier_destroy(&sh->start);
    pthread_mutex_destroy(&sh->mu);
    if (!cfg.dry_run && !cfg.decode) curl_global_cleanup();
    double cpu1 = cfg.pid ? bi_proc_cpu(cfg.pid) : 0;
    long hwm = cfg.pid ? bi_proc_status_kb(cfg.pid, "VmHWM:") : -1;
    long rss = cfg.pid ? bi_proc_status_kb(cfg.pid, "VmRSS:") : -1;
    double wall = (double)(t1 - t0) / 1e9;

    uint64_t sent = 0, acked = 0, rejected = 0, failed = 0, bytes = 0, reqs = 0;
    size_t n_lat = 0;
    bool worker_failed = false;
    for (int k = 0; k < cfg.concurrency; k++) {
        sent += w[k].sent;
        acked += w[k].acked;
        rejected += w[k].rejected;
        failed += w[k].failed;
        bytes += w[k].bytes;
        n_lat += w[k].n_lat;
        reqs += w[k].n_reqs;
        if (w[k].rc) worker_failed = true;
    }
    if (worker_failed) {
        fprintf(stderr, "strata bench ingest: out of memory\n");
        goto done;
    }

    if (cfg.dry_run || cfg.decode) {
        XXH3_state_t *st = XXH3_createState();
        XXH3_64bits_reset(st);
        uint64_t enc_bytes = 0, enc_samples = 0;
        for (int k = 0; k < cfg.concurrency; k++) {
            XXH3_64bits_update(st, w[k].reqs.data ? w[k].reqs.data : (uint8_t *)"", w[k].reqs.len);
            enc_bytes += w[k].reqs.len;
            for (size_t r = 0; r < w[k].n_reqs; r++)
                enc_samples += w[k].req_samples[r];
        }
        uint64_t hash = XXH3_64bits_digest(st);
        XXH3_freeState(st);
        double dec_ns = 0, dec_bytes = 0;
        if (cfg.decode) {
            ingest_scratch *s = ingest_scratch_new();
            ingest_rw_request req;
            uint64_t d0 = clock_mono_ns();
            for (int k = 0; k < cfg.concurrency && s; k++)
                for (size_t r = 0; r < w[k].n_reqs; r++) {
                    const uint8_t *p = w[k].reqs.data + w[k].req_off[r];
                    size_t len = w[k].req_off[r + 1] - w[k].req_off[r];
                    if (ingest_rw_decode(p, len, s, &req, err)) {
                        fprintf(stderr, "strata bench ingest: decode: %s\n", err);
                        ingest_scratch_free(s);
                        goto done;
                    }
                    dec_bytes += (double)req.decoded_bytes;
                }
            dec_ns = (double)(clock_mono_ns() - d0);
            ingest_scratch_free(s);
        }
        double per = enc_samples ? 1.0 / (double)enc_samples : 0;
        if (cfg.json)
            printf("{\"series\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"requests\":%" PRIu64
                   ",\"bytes\":%" PRIu64 ",\"hash\":\"%016" PRIx64 "\",\"encode_seconds\":%.3f"
                   ",\"decode_ns_per_sample\":%.1f,\"decoded_bytes_per_sample\":%.1f}\n",
                   cfg.n_series, enc_samples, reqs, enc_bytes, hash, enc_s, dec_ns * per,
                   dec_bytes * per);
        else {
            printf("series:            %" PRIu64 " (%" PRIu64 " steps of %" PRId64
                   " ms, last at %" PRId64 ")\n",
                   cfg.n_series, sh->steps, cfg.interval_ms, cfg.end_ms);
            printf("samples:           %" PRIu64 " in %" PRIu64 " requests\n", enc_samples, reqs);
            printf("encoded:           %" PRIu64
                   " bytes (%.1f per sample) in %.2f s, hash %016" PRIx64 "\n",
                   enc_bytes, (double)enc_bytes * per, enc_s, hash);
            if (cfg.decode)
                printf("decode:            %.1f ns per sample (snappy + protobuf, %.1f bytes "
                       "decoded per sample)\n",
                       dec_ns * per, dec_bytes * per);
        }
        rc = 0;
        goto done;
    }

    double *lat = malloc((n_lat ? n_lat : 1) * sizeof *lat);
    size_t li = 0;
    for (int k = 0; k < cfg.concurrency && lat; k++)
        for (size_t r = 0; r < w[k].n_lat; r++)
            lat[li++] = w[k].lat_ms[r];
    double p50 = 0, p99 = 0, pmax = 0;
    if (lat && n_lat) {
        qsort(lat, n_lat, sizeof *lat, bi_cmp_double);
        p50 = lat[(size_t)((double)(n_lat - 1) * 0.50)];
        p99 = lat[(size_t)((double)(n_lat - 1) * 0.99)];
        pmax = lat[n_lat - 1];
    }
    free(lat);
    double rate = wall > 0 ? (double)acked / wall : 0;
    double cpu = cpu1 - cpu0;
    double cpu_per_m = acked ? cpu / ((double)acked / 1e6) : 0;
    if (cfg.json) {
        printf("{\"url\":\"%s\",\"series\":%" PRIu64 ",\"concurrency\":%d,\"batch\":%u,"
               "\"mode\":\"%s\",\"samples_sent\":%" PRIu64 ",\"samples_acked\":%" PRIu64
               ",\"samples_rejected\":%" PRIu64 ",\"samples_failed\":%" PRIu64
               ",\"requests\":%zu,\"bytes\":%" PRIu64 ",\"wall_seconds\":%.3f,"
               "\"samples_per_second\":%.0f,\"latency_p50_ms\":%.2f,\"latency_p99_ms\":%.2f,"
               "\"latency_max_ms\":%.2f",
               cfg.url, cfg.n_series, cfg.concurrency, cfg.batch,
               sh->streamed ? "streamed" : "pre-encoded", sent, acked, rejected, failed, n_lat,
               bytes, wall, rate, p50, p99, pmax);
        if (cfg.pid)
            printf(",\"server_cpu_seconds\":%.2f,\"server_cpu_seconds_per_million\":%.3f,"
                   "\"server_peak_rss_kb\":%ld,\"server_rss_kb\":%ld",
                   cpu, cpu_per_m, hwm, rss);
        printf(",\"first_error_status\":%d}\n", sh->first_status);
    } else {
        printf("target:            %s (%d connections, %u samples per request, %s)\n", cfg.url,
               cfg.concurrency, cfg.batch,
               sh->streamed ? "streamed: encoded while sending" : "pre-encoded");
        printf("series:            %" PRIu64 " (%" PRIu64 " steps of %" PRId64
               " ms, last at %" PRId64 ")\n",
               cfg.n_series, sh->steps, cfg.interval_ms, cfg.end_ms);
        printf("samples sent:      %" PRIu64 " in %zu requests (%.1f MB)\n", sent, n_lat,
               (double)bytes / 1e6);
        printf("samples acked:     %" PRIu64 "\n", acked);
        printf("samples rejected:  %" PRIu64 " (non-2xx)\n", rejected);
        if (failed) printf("samples failed:    %" PRIu64 " (no answer)\n", failed);
        printf("wall:              %.2f s\n", wall);
        printf("throughput:        %.0f samples/s\n", rate);
        printf("latency:           p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", p50, p99, pmax);
        if (cfg.pid) {
            printf("server CPU:        %.2f s, %.3f CPU-seconds per million samples\n", cpu,
                   cpu_per_m);
            printf("server memory:     peak RSS %.1f MB, now %.1f MB\n", (double)hwm / 1024,
                   (double)rss / 1024);
        }
        if (sh->first_error[0])
            printf("first error:       %s%s\n",
                   sh->first_status ? "" : "transport: ", sh->first_error);
    }
    rc = rejected || failed ? 1 : 0;
done:
    if (w)
        for (int k = 0; k < cfg.concurrency; k++) {
            buf_free(&w[k].reqs);
            free(w[k].req_off);
            free(w[k].req_samples);
            free(w[k].lat_ms);
        }
    free(w);
    free(all);
    free(hcounts);
    if (sh->instances)
        for (uint64_t h = 0; h < hosts * 2; h++)
            free(sh->instances[h]);
    free(sh->instances);
    free(sh);
    return rc;
bad:
    fprintf(stderr, "strata bench ingest: bad value \"%s\" for --%s\n", optarg,
            opts[opt_index].name);
    bi_usage(stderr);
    return 2;
}
