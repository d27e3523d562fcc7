/*
 * server_internal.h: what the server module's files share: the server struct, its metrics and
 * the self-ingestion loop.
 */
#ifndef STRATA_SERVER_INTERNAL_H
#define STRATA_SERVER_INTERNAL_H

#include "core/core.h"
#include "ingest/ingest.h"
#include "metrics/metrics.h"
#include "server/server.h"
#include "storage/storage.h"

#include <microhttpd.h>
#include <pthread.h>

enum { H_WRITE, H_READ, H_QUERY, H_QUERY_RANGE, H_SERIES, H_LABELS, H_LABEL_VALUES, H_METRICS, H_HEALTH,
       H_OTHER, H_COUNT };
#define SERVER_CODES 10 /* 200 204 400 404 405 413 415 422 500 503, anything else counts as 500 */

typedef struct server_metrics {
    metric_counter requests[H_COUNT][SERVER_CODES];
    metric_histogram request_seconds;
    metric_counter rw_requests;
    metric_counter rw_rejected_requests;
    metric_counter rw_samples;
    metric_counter otlp_requests;
    metric_counter otlp_samples;
    metric_counter otlp_rejected_points;
    metric_counter selfscrape_runs;
    metric_counter selfscrape_failures;
} server_metrics;

#define SERVER_MAX_SCRATCH 64

typedef struct grpc_srv grpc_srv;

struct server {
    strata_db *db;
    server_config cfg;
    strata_name_validation names;
    struct MHD_Daemon *mhd;
    char address[300];
    server_metrics m;
    pthread_mutex_t scratch_mu;
    ingest_scratch *scratch[SERVER_MAX_SCRATCH];
    size_t n_scratch;
    pthread_mutex_t query_mu;
    pthread_cond_t query_cv;
    unsigned queries_running;
    grpc_srv *grpc;
    /* self-ingestion */
    pthread_t scraper;
    bool scraper_running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
};

void server_metrics_init(server_metrics *m);
void server_count_request(server *s, int handler, unsigned status);
/* Emits every metric Strata exports: storage, HTTP, ingest, process. */
void server_collect_metrics(server *s, const metrics_sink *sink);

ingest_scratch *server_scratch_get(server *s);
void server_scratch_put(server *s, ingest_scratch *sc);

int selfscrape_start(server *s, char *err);
void selfscrape_stop(server *s);
/* One self-scrape: collect the metrics and write them to the database at time t. */
int selfscrape_once(server *s, int64_t t, char *err);

/* POST /api/v1/read: the response body into out (snappy ReadResponse, or the streamed frames when
 * *streamed). STRATA_EINVAL / STRATA_ELIMIT for the sender's mistakes, others are ours. */
int remote_read_handle(server *s, const uint8_t *body, size_t len, buf *out, bool *streamed,
                       char *err);

/* The gRPC server (grpc_server.c): strata.v1 and OTLP/gRPC on the gRPC C core. */
/* Starts serving on listen (HOST:PORT; port 0 picks one). TLS when cert and key paths are given.
 * *out is owned by the caller and stopped with grpc_srv_stop. */
int grpc_srv_start(server *http, const char *listen, size_t max_message_bytes, const char *tls_cert,
                   const char *tls_key, grpc_srv **out, char *err);
const char *grpc_srv_address(const grpc_srv *g);
void grpc_srv_stop(grpc_srv *g);

/* /api/v1/query_exemplars (exemplars_api.c): the "data" array for the exemplars of every series
 * any selector of the PromQL expression query selects, in [start, end]. STRATA_EPARSE for a bad
 * query (err has the parser's message). */
int exemplars_api_query(strata_db *db, const char *query, int64_t start, int64_t end, buf *data,
                        char *err);

/* JSON string literal with Go's escaping (<, >, & as \u003c...). */
void json_escape(buf *b, const char *s, size_t n);

#endif
