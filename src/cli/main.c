/*
 * main.c: the `strata` program: `serve` runs the database server; `bench ingest` is the load
 * generator. Flags follow the conventions in docs/architecture.md; a config file (--config) gives
 * defaults that flags override.
 */
#include "cli/bench_ingest.h"
#include "core/core.h"
#include "ingest/ingest.h"
#include "query/query.h"
#include "server/server.h"
#include "storage/storage.h"
#include "strata.h"

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct serve_opts {
    char data_dir[1024];
    char listen[300];
    char config[1024];
    int64_t self_scrape_ms;
    strata_fsync_policy fsync;
    int64_t fsync_interval_ms;
    strata_name_validation names;
    int64_t query_timeout_ms;
    int64_t lookback_ms;
    uint64_t query_max_samples;
    unsigned http_threads;
    unsigned max_queries;
    int64_t lim[7]; /* the --ingest-* limits, in the order of the OPT_LIM_* options; -1 unset */
    char grpc_listen[300];
    char grpc_cert[1024];
    char grpc_key[1024];
    uint64_t grpc_max_msg;
    int64_t max_exemplars; /* -1: the default */
    bool delayed_name_removal; /* --enable-feature promql-delayed-name-removal */
    int64_t block_range_ms;
    int64_t retention_ms;
    uint64_t retention_bytes;
    const char *cold_dir;
    int64_t cold_after_ms; /* -1: the default */
    bool warm_adaptive;
} serve_opts;

enum {
    OPT_DATA_DIR = 1000,
    OPT_LISTEN,
    OPT_CONFIG,
    OPT_SELF_SCRAPE,
    OPT_WAL_FSYNC,
    OPT_WAL_FSYNC_INTERVAL,
    OPT_NAME_VALIDATION,
    OPT_QUERY_TIMEOUT,
    OPT_LOOKBACK,
    OPT_MAX_SAMPLES,
    OPT_HTTP_THREADS,
    OPT_MAX_QUERIES,
    OPT_LIM_LABELS,
    OPT_LIM_NAME,
    OPT_LIM_VALUE,
    OPT_LIM_SERIES,
    OPT_LIM_SERIES_METRIC,
    OPT_LIM_AGE,
    OPT_LIM_FUTURE,
    OPT_GRPC_LISTEN,
    OPT_GRPC_MAX_MSG,
    OPT_GRPC_CERT,
    OPT_GRPC_KEY,
    OPT_MAX_EXEMPLARS,
    OPT_ENABLE_FEATURE,
    OPT_BLOCK_RANGE,
    OPT_RETENTION,
    OPT_RETENTION_SIZE,
    OPT_COLD_DIR,
    OPT_COLD_AFTER,
    OPT_WARM_CODEC,
    OPT_HELP,
};

static const struct option serve_longopts[] = {
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"self-scrape-interval", required_argument, NULL, OPT_SELF_SCRAPE},
    {"wal-fsync", required_argument, NULL, OPT_WAL_FSYNC},
    {"wal-fsync-interval", required_argument, NULL, OPT_WAL_FSYNC_INTERVAL},
    {"name-validation", required_argument, NULL, OPT_NAME_VALIDATION},
    {"query-timeout", required_argument, NULL, OPT_QUERY_TIMEOUT},
    {"query-lookback-delta", required_argument, NULL, OPT_LOOKBACK},
    {"query-max-samples", required_argument, NULL, OPT_MAX_SAMPLES},
    {"http-threads", required_argument, NULL, OPT_HTTP_THREADS},
    {"query-max-concurrency", required_argument, NULL, OPT_MAX_QUERIES},
    {"ingest-max-labels", required_argument, NULL, OPT_LIM_LABELS},
    {"ingest-max-label-name-length", required_argument, NULL, OPT_LIM_NAME},
    {"ingest-max-label-value-length", required_argument, NULL, OPT_LIM_VALUE},
    {"ingest-max-series", required_argument, NULL, OPT_LIM_SERIES},
    {"ingest-max-series-per-metric", required_argument, NULL, OPT_LIM_SERIES_METRIC},
    {"ingest-max-sample-age", required_argument, NULL, OPT_LIM_AGE},
    {"ingest-max-sample-future", required_argument, NULL, OPT_LIM_FUTURE},
    {"grpc-listen", required_argument, NULL, OPT_GRPC_LISTEN},
    {"grpc-max-message-bytes", required_argument, NULL, OPT_GRPC_MAX_MSG},
    {"grpc-tls-cert", required_argument, NULL, OPT_GRPC_CERT},
    {"grpc-tls-key", required_argument, NULL, OPT_GRPC_KEY},
    {"max-exemplars", required_argument, NULL, OPT_MAX_EXEMPLARS},
    {"enable-feature", required_argument, NULL, OPT_ENABLE_FEATURE},
    {"block-range", required_argument, NULL, OPT_BLOCK_RANGE},
    {"retention", required_argument, NULL, OPT_RETENTION},
    {"retention-size", required_argument, NULL, OPT_RETENTION_SIZE},
    {"cold-dir", required_argument, NULL, OPT_COLD_DIR},
    {"cold-after", required_argument, NULL, OPT_COLD_AFTER},
    {"warm-codec", required_argument, NULL, OPT_WARM_CODEC},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: strata serve [flags]\n\n"
            "Runs the Strata server: Prometheus remote write and HTTP query API.\n\n"
            "flags (a flag overrides the same key in --config):\n"
            "  --data-dir DIR                 data directory (default ./data)\n"
            "  --listen HOST:PORT             HTTP listen address (default 127.0.0.1:9090)\n"
            "  --config FILE                  config file of `key: value` lines, keys as the flags\n"
            "                                 without dashes (data-dir: /var/lib/strata)\n"
            "  --self-scrape-interval DUR     ingest Strata's own metrics this often; 0 turns it\n"
            "                                 off (default 15s)\n"
            "  --wal-fsync POLICY             always | interval | none (default always: every\n"
            "                                 acknowledged write is fsynced, with group commit)\n"
            "  --wal-fsync-interval DUR       group-commit period for --wal-fsync=interval: writes\n"
            "                                 are acknowledged after the next fsync (default 1s)\n"
            "  --name-validation MODE         utf8 | legacy metric and label names (default utf8,\n"
            "                                 as Prometheus 3)\n"
            "  --query-timeout DUR            longest a query may run (default 2m)\n"
            "  --query-lookback-delta DUR     PromQL lookback for instant vectors (default 5m)\n"
            "  --query-max-samples N          most samples one query may load (default 50000000)\n"
            "  --http-threads N               HTTP worker threads (default: number of CPUs)\n"
            "  --query-max-concurrency N      queries evaluated at once; more wait for a slot\n"
            "                                 up to the query timeout (default 20)\n"
            "  --grpc-listen HOST:PORT        gRPC address for the strata.v1 API and OTLP/gRPC\n"
            "                                 (default 127.0.0.1:4317; \"off\" turns gRPC off)\n"
            "  --grpc-max-message-bytes N     largest gRPC message accepted (default 16777216)\n"
            "  --grpc-tls-cert FILE, --grpc-tls-key FILE   PEM certificate and key: gRPC over TLS\n"
            "  --enable-feature NAME[,NAME]   optional behaviour, as Prometheus names it:\n"
            "                                 promql-delayed-name-removal (the metric name is\n"
            "                                 removed at the end of a query, not where dropped)\n"
            "  --ingest-max-labels N          labels per series; a write with a new series over it\n"
            "                                 is rejected whole (default 64; 0 = no limit)\n"
            "  --ingest-max-label-name-length N   bytes (default 1024; 0 = no limit)\n"
            "  --ingest-max-label-value-length N  bytes (default 16384; 0 = no limit)\n"
            "  --ingest-max-series N          series in the database; samples of new series over\n"
            "                                 it are rejected (default 0 = no limit)\n"
            "  --ingest-max-series-per-metric N   the same per metric name (default 0 = no limit)\n"
            "  --ingest-max-sample-age DUR    reject samples older than now minus DUR (default 0 =\n"
            "                                 off, so history can be backfilled)\n"
            "  --ingest-max-sample-future DUR reject samples later than now plus DUR (default 0 = off)\n"
            "  --max-exemplars N              exemplars kept in memory (a circular buffer, the\n"
            "                                 oldest dropped first; default 100000, 0 = off)\n"
            "  --block-range DUR              time range of a block cut from the head; the head is\n"
            "                                 flushed into blocks when it spans 1.5 of them, and by\n"
            "                                 POST /api/v1/admin/tsdb/flush (default 2h)\n"
            "  --retention DUR                delete blocks older than the newest sample minus DUR\n"
            "                                 (default 0: keep everything)\n"
            "  --retention-size SIZE          delete the oldest blocks while blocks take more than\n"
            "                                 SIZE bytes (suffixes KB, MB, GB, TB: powers of 1024;\n"
            "                                 default 0: no limit)\n"
            "  --cold-dir DIR                 the cold tier: blocks older than --cold-after move to\n"
            "                                 DIR, re-encoded with adaptive chunks and zstd\n"
            "  --cold-after DUR               age (from the newest sample) at which a block goes\n"
            "                                 cold (default 7d; 0s: every flushed block)\n"
            "  --warm-codec xor|adaptive      chunk encoding of warm blocks (default xor, which\n"
            "                                 Prometheus' tools read)\n"
            "  --help                         this text\n");
}

static int parse_dur_flag(const char *flag, const char *v, int64_t *out)
{
    char err[STRATA_ERRMSG_SIZE];
    if (duration_parse(v, strlen(v), out, err)) {
        fprintf(stderr, "strata serve: --%s: %s\n", flag, err);
        return -1;
    }
    return 0;
}

static int apply_opt(serve_opts *o, int id, const char *v)
{
    char *end;
    switch (id) {
    case OPT_DATA_DIR: snprintf(o->data_dir, sizeof o->data_dir, "%s", v); return 0;
    case OPT_LISTEN: snprintf(o->listen, sizeof o->listen, "%s", v); return 0;
    case OPT_CONFIG: snprintf(o->config, sizeof o->config, "%s", v); return 0;
    case OPT_SELF_SCRAPE: return parse_dur_flag("self-scrape-interval", v, &o->self_scrape_ms);
    case OPT_WAL_FSYNC:
        if (strcmp(v, "always") == 0) o->fsync = STRATA_FSYNC_ALWAYS;
        else if (strcmp(v, "interval") == 0) o->fsync = STRATA_FSYNC_INTERVAL;
        else if (strcmp(v, "none") == 0) o->fsync = STRATA_FSYNC_NONE;
        else {
            fprintf(stderr, "strata serve: --wal-fsync: expected always, interval or none, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_WAL_FSYNC_INTERVAL: return parse_dur_flag("wal-fsync-interval", v, &o->fsync_interval_ms);
    case OPT_NAME_VALIDATION:
        if (strcmp(v, "utf8") == 0) o->names = STRATA_NAMES_UTF8;
        else if (strcmp(v, "legacy") == 0) o->names = STRATA_NAMES_LEGACY;
        else {
            fprintf(stderr, "strata serve: --name-validation: expected utf8 or legacy, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_QUERY_TIMEOUT: return parse_dur_flag("query-timeout", v, &o->query_timeout_ms);
    case OPT_LOOKBACK: return parse_dur_flag("query-lookback-delta", v, &o->lookback_ms);
    case OPT_MAX_SAMPLES:
        errno = 0;
        o->query_max_samples = strtoull(v, &end, 10);
        if (errno || *end || !*v) {
            fprintf(stderr, "strata serve: --query-max-samples: not a number: \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_GRPC_LISTEN: snprintf(o->grpc_listen, sizeof o->grpc_listen, "%s", v); return 0;
    case OPT_ENABLE_FEATURE:
        for (const char *p = v; *p;) {
            size_t n = strcspn(p, ",");
            if (n == 27 && !strncmp(p, "promql-delayed-name-removal", n)) {
                o->delayed_name_removal = true;
            } else if (n) {
                fprintf(stderr, "strata serve: --enable-feature: unknown feature \"%.*s\" (known: "
                                "promql-delayed-name-removal)\n", (int)n, p);
                return -1;
            }
            p += n + (p[n] == ',');
        }
        return 0;
    case OPT_GRPC_CERT: snprintf(o->grpc_cert, sizeof o->grpc_cert, "%s", v); return 0;
    case OPT_GRPC_KEY: snprintf(o->grpc_key, sizeof o->grpc_key, "%s", v); return 0;
    case OPT_RETENTION: return parse_dur_flag("retention", v, &o->retention_ms);
    case OPT_COLD_DIR: o->cold_dir = v; return 0;
    case OPT_COLD_AFTER: return parse_dur_flag("cold-after", v, &o->cold_after_ms);
    case OPT_WARM_CODEC:
        if (strcmp(v, "xor") && strcmp(v, "adaptive")) {
            fprintf(stderr, "strata serve: --warm-codec: expected xor or adaptive, got \"%s\"\n", v);
            return -1;
        }
        o->warm_adaptive = strcmp(v, "adaptive") == 0;
        return 0;
    case OPT_RETENTION_SIZE: {
        errno = 0;
        double x = strtod(v, &end);
        static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
        int u = -1;
        for (int i = 0; i < 5; i++)
            if (strcmp(end, units[i]) == 0 || (i == 0 && !*end)) u = i;
        if (errno || end == v || u < 0 || x < 0) {
            fprintf(stderr, "strata serve: --retention-size: expected bytes with an optional unit (512MB, 10GB), got \"%s\"\n", v);
            return -1;
        }
        for (int i = 0; i < u; i++) x *= 1024;
        o->retention_bytes = (uint64_t)x;
        return 0;
    }
    case OPT_BLOCK_RANGE:
        if (parse_dur_flag("block-range", v, &o->block_range_ms)) return -1;
        if (o->block_range_ms < 1000) {
            fprintf(stderr, "strata serve: --block-range: must be at least 1s, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_GRPC_MAX_MSG:
        errno = 0;
        o->grpc_max_msg = strtoull(v, &end, 10);
        if (errno || *end || !*v || o->grpc_max_msg < 1024 || o->grpc_max_msg > (1u << 30)) {
            fprintf(stderr, "strata serve: --grpc-max-message-bytes: expected 1024..1073741824, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_LIM_AGE:
    case OPT_LIM_FUTURE:
        return parse_dur_flag(id == OPT_LIM_AGE ? "ingest-max-sample-age" : "ingest-max-sample-future", v,
                              &o->lim[id - OPT_LIM_LABELS]);
    case OPT_LIM_LABELS:
    case OPT_LIM_NAME:
    case OPT_LIM_VALUE:
    case OPT_LIM_SERIES:
    case OPT_LIM_SERIES_METRIC:
        errno = 0;
        o->lim[id - OPT_LIM_LABELS] = (int64_t)strtoull(v, &end, 10);
        if (errno || *end || !*v || o->lim[id - OPT_LIM_LABELS] < 0) {
            fprintf(stderr, "strata serve: expected a non-negative number, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_MAX_EXEMPLARS:
        errno = 0;
        o->max_exemplars = (int64_t)strtoull(v, &end, 10);
        if (errno || *end || !*v || o->max_exemplars < 0 || o->max_exemplars > 100000000) {
            fprintf(stderr, "strata serve: --max-exemplars: expected 0..100000000, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_MAX_QUERIES:
        o->max_queries = (unsigned)strtoul(v, &end, 10);
        if (*end || !*v || o->max_queries == 0 || o->max_queries > 10000) {
            fprintf(stderr, "strata serve: --query-max-concurrency: expected 1..10000, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    case OPT_HTTP_THREADS:
        o->http_threads = (unsigned)strtoul(v, &end, 10);
        if (*end || !*v || o->http_threads == 0 || o->http_threads > 1024) {
            fprintf(stderr, "strata serve: --http-threads: expected 1..1024, got \"%s\"\n", v);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* Reads `key: value` (or `key = value`) lines; '#' starts a comment. */
static int load_config(serve_opts *o, const char *path, const bool *set_by_flag)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "strata serve: --config %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '\n') continue;
        char *sep = strpbrk(p, ":=");
        if (!sep) {
            fprintf(stderr, "strata serve: %s:%d: expected `key: value`\n", path, lineno);
            rc = -1;
            break;
        }
        char *kend = sep;
        while (kend > p && (kend[-1] == ' ' || kend[-1] == '\t')) kend--;
        *kend = '\0';
        char *v = sep + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == '\n' || v[vl - 1] == '\r' || v[vl - 1] == ' ')) v[--vl] = '\0';
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v[vl - 1] = '\0';
            v++;
        }
        int id = -1;
        for (const struct option *op = serve_longopts; op->name; op++)
            if (strcmp(op->name, p) == 0 && op->has_arg == required_argument) id = op->val;
        if (id < 0 || id == OPT_CONFIG) {
            fprintf(stderr, "strata serve: %s:%d: unknown key \"%s\"\n", path, lineno, p);
            rc = -1;
            break;
        }
        if (set_by_flag[id - OPT_DATA_DIR]) continue;
        if (apply_opt(o, id, v)) {
            fprintf(stderr, "strata serve: (from %s:%d)\n", path, lineno);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static int cmd_serve(int argc, char **argv)
{
    serve_opts o;
    memset(&o, 0, sizeof o);
    snprintf(o.data_dir, sizeof o.data_dir, "./data");
    snprintf(o.listen, sizeof o.listen, "127.0.0.1:9090");
    o.self_scrape_ms = 15000;
    o.fsync = STRATA_FSYNC_ALWAYS;
    o.fsync_interval_ms = 1000;
    o.names = STRATA_NAMES_UTF8;
    o.query_timeout_ms = 120000;
    o.lookback_ms = 300000;
    o.query_max_samples = 50000000;
    o.block_range_ms = 2 * 3600 * 1000;
    for (int i = 0; i < 7; i++) o.lim[i] = -1;
    o.max_exemplars = -1;
    o.cold_after_ms = -1;
    snprintf(o.grpc_listen, sizeof o.grpc_listen, "127.0.0.1:4317");

    bool set_by_flag[OPT_HELP - OPT_DATA_DIR + 1] = {0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", serve_longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            serve_usage(stdout);
            return 0;
        }
        if (c == '?' || c < OPT_DATA_DIR) {
            serve_usage(stderr);
            return 2;
        }
        if (apply_opt(&o, c, optarg)) return 2;
        set_by_flag[c - OPT_DATA_DIR] = true;
    }
    if (optind < argc) {
        fprintf(stderr, "strata serve: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    if (o.config[0] && load_config(&o, o.config, set_by_flag)) return 2;

    /* Signals are handled synchronously by this thread: every other thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    strata_options opts;
    strata_options_init(&opts);
    opts.fsync = o.fsync;
    opts.fsync_interval_ms = (uint32_t)o.fsync_interval_ms;
    opts.names = o.names;
    opts.chunk_range_ms = o.block_range_ms; /* head chunks never straddle a block */
    opts.retention_ms = o.retention_ms;
    opts.retention_bytes = o.retention_bytes;
    opts.cold_dir = o.cold_dir;
    if (o.cold_after_ms >= 0) opts.cold_after_ms = o.cold_after_ms;
    opts.warm_codec_adaptive = o.warm_adaptive;
    if (o.lim[0] >= 0) opts.max_labels_per_series = (uint32_t)o.lim[0];
    if (o.lim[1] >= 0) opts.max_label_name_bytes = (uint32_t)o.lim[1];
    if (o.lim[2] >= 0) opts.max_label_value_bytes = (uint32_t)o.lim[2];
    if (o.lim[3] >= 0) opts.max_series = (uint64_t)o.lim[3];
    if (o.lim[4] >= 0) opts.max_series_per_metric = (uint64_t)o.lim[4];
    if (o.lim[5] >= 0) opts.max_sample_age_ms = o.lim[5];
    if (o.lim[6] >= 0) opts.max_sample_future_ms = o.lim[6];
    if (o.max_exemplars >= 0) opts.max_exemplars = (uint32_t)o.max_exemplars;
    char err[STRATA_ERRMSG_SIZE] = "";
    strata_db *db;
    int rc = strata_open(o.data_dir, &opts, &db, err);
    if (rc) {
        strata_log(LOG_ERROR, "cannot open %s: %s", o.data_dir, err);
        return 1;
    }
    server_config sc;
    server_config_init(&sc);
    sc.listen = o.listen;
    sc.self_scrape_interval_ms = o.self_scrape_ms;
    sc.query_timeout_ms = o.query_timeout_ms;
    sc.lookback_ms = o.lookback_ms;
    sc.query_max_samples = o.query_max_samples;
    sc.delayed_name_removal = o.delayed_name_removal;
    if (o.http_threads) sc.threads = o.http_threads;
    if (o.max_queries) sc.max_concurrent_queries = o.max_queries;
    sc.grpc_listen = o.grpc_listen;
    sc.grpc_max_message_bytes = (size_t)o.grpc_max_msg;
    if (o.grpc_cert[0] || o.grpc_key[0]) {
        if (!o.grpc_cert[0] || !o.grpc_key[0]) {
            strata_log(LOG_ERROR, "--grpc-tls-cert and --grpc-tls-key go together");
            strata_close(db);
            return 2;
        }
        sc.grpc_tls_cert = o.grpc_cert;
        sc.grpc_tls_key = o.grpc_key;
    }
    server *srv;
    rc = server_start(db, &sc, &srv, err);
    if (rc) {
        strata_log(LOG_ERROR, "%s", err);
        strata_close(db);
        return 1;
    }
    strata_log(LOG_INFO, "strata %s serving %s on http://%s, gRPC %s", STRATA_VERSION, o.data_dir,
               server_address(srv), server_grpc_address(srv) ? server_grpc_address(srv) : "off");
    int sig = 0;
    sigwait(&sigs, &sig);
    strata_log(LOG_INFO, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_stop(srv);
    strata_close(db);
    strata_log(LOG_INFO, "stopped cleanly");
    return 0;
}

/* `strata query`: evaluate PromQL against a data directory opened read-only (a copy, or one no
 * server is writing to), or show the plan with --explain. */
static int cmd_query(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"time", required_argument, NULL, 't'},
        {"start", required_argument, NULL, 's'},    {"end", required_argument, NULL, 'e'},
        {"step", required_argument, NULL, 'p'},     {"explain", no_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *dir = "./data", *t = NULL, *start = NULL, *endp = NULL, *step = NULL;
    bool explain_only = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 't': t = optarg; break;
        case 's': start = optarg; break;
        case 'e': endp = optarg; break;
        case 'p': step = optarg; break;
        case 'x': explain_only = true; break;
        case 'h':
            printf("usage: strata query [--data-dir DIR] [--time T | --start T --end T --step DUR] "
                   "[--explain] EXPR\n\nEvaluates EXPR on DIR opened read-only and prints the "
                   "Prometheus API JSON, or the plan with --explain. Times as in the HTTP API.\n");
            return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "strata query: expected one PromQL expression (strata query --help)\n");
        return 2;
    }
    const char *q = argv[optind];
    char err[STRATA_ERRMSG_SIZE] = "";
    int64_t ts = clock_now_ms(), s_ms = 0, e_ms = 0, step_ms = 0;
    if ((t && api_time_parse(t, &ts, err)) || (start && api_time_parse(start, &s_ms, err)) ||
        (endp && api_time_parse(endp, &e_ms, err)) || (step && duration_parse(step, strlen(step), &step_ms, err))) {
        fprintf(stderr, "strata query: %s\n", err);
        return 2;
    }
    bool range = start || endp || step;
    if (range && (!start || !endp || !step)) {
        fprintf(stderr, "strata query: a range query needs --start, --end and --step\n");
        return 2;
    }
    strata_options opts;
    strata_options_init(&opts);
    opts.read_only = 1;
    strata_db *db;
    if (strata_open(dir, &opts, &db, err)) {
        fprintf(stderr, "strata query: cannot open %s: %s\n", dir, err);
        return 1;
    }
    buf out = {0};
    int rc = explain_only ? promql_explain(db, q, range ? s_ms : ts, range ? e_ms : ts, range ? step_ms : 0, NULL, &out, err)
             : range      ? promql_exec_range(db, q, s_ms, e_ms, step_ms, NULL, &out, err)
                          : promql_exec_instant(db, q, ts, NULL, &out, err);
    if (rc) fprintf(stderr, "strata query: %s\n", err);
    else printf("%s\n", out.data ? (char *)out.data : "");
    buf_free(&out);
    strata_close(db);
    return rc ? 1 : 0;
}

/* OpenMetrics text: a label value with \\, \" and \n escaped. */
static void om_escape(FILE *f, const char *s, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        if (s[i] == '\\') fputs("\\\\", f);
        else if (s[i] == '"') fputs("\\\"", f);
        else if (s[i] == '\n') fputs("\\n", f);
        else fputc(s[i], f);
    }
}

static void om_value(FILE *f, double v)
{
    if (isnan(v)) fputs("NaN", f);
    else if (isinf(v)) fputs(v > 0 ? "+Inf" : "-Inf", f);
    else fprintf(f, "%.17g", v);
}

/* strata export: the samples of a time range as OpenMetrics text (stale markers left out), which
 * `promtool tsdb create-blocks-from openmetrics` (or Prometheus' backfill) reads back. */
static int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"start", required_argument, NULL, 's'},
        {"end", required_argument, NULL, 'e'},      {"match", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *dir = "./data", *start = NULL, *endp = NULL, *match = "{__name__=~\".+\"}";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 's': start = optarg; break;
        case 'e': endp = optarg; break;
        case 'm': match = optarg; break;
        case 'h':
            printf("usage: strata export [--data-dir DIR] [--start T] [--end T] [--match SELECTOR]\n\n"
                   "Writes the samples of DIR (opened read-only) between T and T (default: all) of\n"
                   "the series matching SELECTOR (default: every series) as OpenMetrics text.\n");
            return 0;
        default: return 2;
        }
    }
    char err[STRATA_ERRMSG_SIZE] = "";
    int64_t s_ms = INT64_MIN / 4, e_ms = INT64_MAX / 4;
    if ((start && api_time_parse(start, &s_ms, err)) || (endp && api_time_parse(endp, &e_ms, err))) {
        fprintf(stderr, "strata export: %s\n", err);
        return 2;
    }
    matcher **ms;
    size_t nm;
    if (promql_parse_selector(match, &ms, &nm, err)) {
        fprintf(stderr, "strata export: --match: %s\n", err);
        return 2;
    }
    strata_options opts;
    strata_options_init(&opts);
    opts.read_only = 1;
    strata_db *db;
    int rc = strata_open(dir, &opts, &db, err);
    series_set *set = NULL;
    if (!rc) rc = db_select(db, (const matcher *const *)ms, nm, s_ms, e_ms, &set, err);
    for (size_t i = 0; i < nm; i++) matcher_free(ms[i]);
    free(ms);
    if (rc) {
        fprintf(stderr, "strata export: %s\n", err);
        if (db) strata_close(db);
        return 1;
    }
    const label *ls;
    size_t nl, n;
    const strata_sample *smp;
    char family[1024] = "";
    while ((rc = series_set_next(set, &ls, &nl, &smp, &n)) == 1) {
        uint32_t name_len = 0;
        const char *name = labels_get(ls, nl, LABEL_METRIC_NAME, &name_len);
        if (!name) continue;
        if (strlen(family) != name_len || memcmp(family, name, name_len) != 0) {
            snprintf(family, sizeof family, "%.*s", (int)name_len, name);
            printf("# TYPE %s unknown\n", family);
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t bits;
            memcpy(&bits, &smp[i].v, 8);
            if (bits == 0x7ff0000000000002ull) continue; /* staleness marker: not data */
            fwrite(name, 1, name_len, stdout);
            int k = 0;
            for (size_t j = 0; j < nl; j++) {
                if (ls[j].name_len == 8 && memcmp(ls[j].name, LABEL_METRIC_NAME, 8) == 0) continue;
                printf("%s%.*s=\"", k++ ? "," : "{", (int)ls[j].name_len, ls[j].name);
                om_escape(stdout, ls[j].value, ls[j].value_len);
                putchar('"');
            }
            if (k) putchar('}');
            putchar(' ');
            om_value(stdout, smp[i].v);
            int64_t t = smp[i].t;
            printf(" %s%lld.%03lld\n", t < 0 && t > -1000 ? "-" : "", (long long)(t / 1000),
                   (long long)llabs(t % 1000));
        }
    }
    printf("# EOF\n");
    series_set_free(set);
    strata_close(db);
    if (rc < 0) {
        fprintf(stderr, "strata export: reading the data failed (%s)\n", strata_strerror(rc));
        return 1;
    }
    return 0;
}

/* strata import: OpenMetrics text into blocks. Samples go through the normal write path (label
 * validation, order rules) into the head, a series' consecutive samples in one write, and the
 * head is flushed into blocks every few million samples and at the end; compaction merges the
 * blocks that overlap. */
typedef struct import_state {
    strata_db *db;
    label *labels; /* the pending series' labels, copied into names */
    size_t n_labels;
    buf names;
    strata_sample *samples;
    size_t n, cap;
    uint64_t read, stored, rejected, since_flush;
} import_state;

static int import_commit(import_state *st, char *err)
{
    if (!st->n) return 0;
    /* Point the labels at the copied bytes now (the buffer may have moved while growing). */
    const char *base = (const char *)st->names.data;
    for (size_t i = 0; i < st->n_labels; i++) {
        st->labels[i].name = base + (size_t)(uintptr_t)st->labels[i].name;
        st->labels[i].value = base + (size_t)(uintptr_t)st->labels[i].value;
    }
    write_series ws = {.labels = st->labels, .n_labels = st->n_labels, .samples = st->samples, .n_samples = st->n};
    strata_write_result res;
    int rc = db_write(st->db, &ws, 1, false, &res, NULL, err);
    st->stored += res.samples_written + res.samples_duplicate;
    st->rejected += st->n - res.samples_written - res.samples_duplicate;
    st->since_flush += res.samples_written;
    st->n = 0;
    st->n_labels = 0;
    if (rc == STRATA_EOUTOFORDER || rc == STRATA_EDUPLICATE) rc = 0; /* counted, reported at the end */
    if (!rc && st->since_flush >= 5000000) {
        rc = db_flush_head(st->db, err);
        st->since_flush = 0;
    }
    return rc;
}

static int import_sample(void *ctx, label *ls, size_t n, int64_t t, double v, char *err)
{
    import_state *st = ctx;
    st->read++;
    bool same = st->n && n == st->n_labels;
    for (size_t i = 0; same && i < n; i++) {
        const char *base = (const char *)st->names.data;
        const label *p = &st->labels[i];
        same = p->name_len == ls[i].name_len && p->value_len == ls[i].value_len &&
               memcmp(base + (uintptr_t)p->name, ls[i].name, ls[i].name_len) == 0 &&
               memcmp(base + (uintptr_t)p->value, ls[i].value, ls[i].value_len) == 0;
    }
    if (!same) {
        int rc = import_commit(st, err);
        if (rc) return rc;
        label *nl = realloc(st->labels, (n ? n : 1) * sizeof *nl);
        if (!nl) return STRATA_ENOMEM;
        st->labels = nl;
        st->names.len = 0;
        /* Offsets for now (as pointers), resolved against the buffer at commit. */
        for (size_t i = 0; i < n; i++) {
            nl[i] = (label){.name = (const char *)(uintptr_t)st->names.len, .name_len = ls[i].name_len};
            if (buf_append(&st->names, ls[i].name, ls[i].name_len)) return STRATA_ENOMEM;
            nl[i].value = (const char *)(uintptr_t)st->names.len;
            nl[i].value_len = ls[i].value_len;
            if (buf_append(&st->names, ls[i].value, ls[i].value_len)) return STRATA_ENOMEM;
        }
        st->n_labels = n;
    }
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 1024;
        strata_sample *ns = realloc(st->samples, nc * sizeof *ns);
        if (!ns) return STRATA_ENOMEM;
        st->samples = ns;
        st->cap = nc;
    }
    st->samples[st->n++] = (strata_sample){t, v};
    return 0;
}

static int cmd_import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"block-range", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = "./data";
    int64_t range = 2 * 3600 * 1000;
    char err[STRATA_ERRMSG_SIZE] = "";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'r':
            if (duration_parse(optarg, strlen(optarg), &range, err) || range < 1000) {
                fprintf(stderr, "strata import: --block-range: %s\n", err[0] ? err : "at least 1s");
                return 2;
            }
            break;
        case 'h':
            printf("usage: strata import [--data-dir DIR] [--block-range DUR] FILE\n\nWrites the "
                   "samples of FILE (OpenMetrics text, every sample with a timestamp; - for stdin)\n"
                   "into blocks of DIR, which no server may have open. Samples older than their "
                   "series'\nnewest one in the same file are rejected and counted.\n");
            return 0;
        default: return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "strata import: expected one file (strata import --help)\n");
        return 2;
    }
    const char *path = argv[optind];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "strata import: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    buf text = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&text, chunk, got)) {
            fprintf(stderr, "strata import: out of memory reading %s\n", path);
            return 1;
        }
    if (f != stdin) fclose(f);
    strata_options opts;
    strata_options_init(&opts);
    opts.fsync = STRATA_FSYNC_NONE; /* the blocks are made durable by the flush */
    opts.chunk_range_ms = range;
    import_state st = {0};
    int rc = strata_open(dir, &opts, &st.db, err);
    if (!rc) rc = om_parse(text.data ? (const char *)text.data : "", text.len, import_sample, &st, err);
    if (!rc) rc = import_commit(&st, err);
    if (!rc) rc = db_flush_head(st.db, err);
    buf_free(&text);
    buf_free(&st.names);
    free(st.labels);
    free(st.samples);
    if (st.db) strata_close(st.db);
    if (rc) {
        fprintf(stderr, "strata import: %s\n", err);
        return 1;
    }
    printf("imported %llu of %llu samples into %s (%llu rejected: out of order or conflicting)\n",
           (unsigned long long)st.stored, (unsigned long long)st.read, dir,
           (unsigned long long)st.rejected);
    return st.rejected ? 1 : 0;
}

/* strata inspect: the blocks of a data directory (opened read-only), optionally verified. */
static int cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"verify", no_argument, NULL, 'v'},
        {"cold-dir", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = "./data", *cold_dir = NULL;
    bool verify = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'v': verify = true; break;
        case 'c': cold_dir = optarg; break;
        case 'h':
            printf("usage: strata inspect [--data-dir DIR] [--cold-dir DIR] [--verify]\n\nLists the "
                   "blocks of DIR and of the cold directory (opened read-only), per tier, and "
                   "the head; --verify reads every series and chunk of every "
                   "block and checks every checksum.\n");
            return 0;
        default: return 2;
        }
    }
    strata_options opts;
    strata_options_init(&opts);
    opts.read_only = 1;
    opts.cold_dir = cold_dir;
    strata_db *db;
    char err[STRATA_ERRMSG_SIZE] = "";
    if (strata_open(dir, &opts, &db, err)) {
        fprintf(stderr, "strata inspect: cannot open %s: %s\n", dir, err);
        return 1;
    }
    block_info *bi;
    size_t n;
    if (db_blocks_list(db, &bi, &n)) {
        strata_close(db);
        return 1;
    }
    printf("%-26s  %-4s  %-13s  %-13s  %9s  %11s  %8s  %9s  %5s  %11s\n", "BLOCK ULID", "TIER",
           "MIN TIME", "MAX TIME", "DURATION", "SAMPLES", "SERIES", "CHUNKS", "LEVEL", "BYTES");
    for (size_t i = 0; i < n; i++)
        printf("%-26s  %-4s  %-13lld  %-13lld  %8.2fh  %11llu  %8llu  %9llu  %5u  %11llu\n",
               bi[i].ulid, bi[i].cold ? "cold" : "warm",
               (long long)bi[i].mint, (long long)bi[i].maxt,
               (double)(bi[i].maxt - bi[i].mint) / 3.6e6, (unsigned long long)bi[i].num_samples,
               (unsigned long long)bi[i].num_series, (unsigned long long)bi[i].num_chunks,
               bi[i].level, (unsigned long long)bi[i].bytes);
    free(bi);
    db_tier_stats tw, tc;
    db_tiers_stats(db, &tw, &tc);
    const db_tier_stats *tiers[2] = {&tw, &tc};
    for (int t = 0; t < 2; t++)
        printf("%s tier: %llu blocks, %llu bytes, %llu samples, %llu series, %.3f bytes/sample\n",
               t ? "cold" : "warm", (unsigned long long)tiers[t]->blocks,
               (unsigned long long)tiers[t]->bytes, (unsigned long long)tiers[t]->samples,
               (unsigned long long)tiers[t]->series,
               tiers[t]->samples ? (double)tiers[t]->bytes / (double)tiers[t]->samples : 0.0);
    db_stats st;
    db_get_stats(db, &st);
    printf("head: %llu series, %llu samples replayed from the WAL, %llu WAL segments (%llu bytes)\n",
           (unsigned long long)st.series, (unsigned long long)st.samples_appended,
           (unsigned long long)st.wal_segments, (unsigned long long)st.wal_bytes);
    int rc = 0;
    if (verify) {
        rc = db_blocks_verify(db, err);
        if (rc) fprintf(stderr, "strata inspect: %s\n", err);
        else printf("verified: every checksum of %zu blocks holds\n", n);
    }
    strata_close(db);
    return rc ? 1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: strata <command> [flags]\n\n"
               "commands:\n"
               "  serve          run the server (strata serve --help)\n"
               "  query          evaluate PromQL on a data directory (strata query --help)\n"
               "  inspect        list (and --verify) the blocks of a data directory\n"
               "  export         write a time range as OpenMetrics text (strata export --help)\n"
               "  import         OpenMetrics text into blocks (strata import --help)\n"
               "  bench ingest   remote-write load generator (strata bench ingest --help)\n"
               "  version        print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0) return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "query") == 0) return cmd_query(argc - 1, argv + 1);
    if (strcmp(argv[1], "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(argv[1], "export") == 0) return cmd_export(argc - 1, argv + 1);
    if (strcmp(argv[1], "import") == 0) return cmd_import(argc - 1, argv + 1);
    if (strcmp(argv[1], "bench") == 0) {
        if (argc >= 3 && strcmp(argv[2], "ingest") == 0) return cli_bench_ingest(argc - 2, argv + 2);
        fprintf(stderr, "usage: strata bench ingest [flags]\n");
        return 2;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("strata %s\n", STRATA_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "strata: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return 2;
}
