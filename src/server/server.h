/*
 * server.h: the public face of the server module: Strata's HTTP server (libmicrohttpd) with the
 * Prometheus HTTP API, remote write, /metrics, health endpoints and self-ingestion.
 */
#ifndef STRATA_SERVER_H
#define STRATA_SERVER_H

#include "core/core.h"
#include "strata.h"

typedef struct server_config {
    const char *listen;             /* HOST:PORT, default 127.0.0.1:9090 */
    int64_t self_scrape_interval_ms; /* 0 turns self-ingestion off; default 15000 */
    unsigned threads;               /* HTTP worker threads; default: number of CPUs */
    int64_t lookback_ms;            /* PromQL lookback delta; default 5 m */
    int64_t query_timeout_ms;       /* default 2 m */
    uint64_t query_max_samples;     /* default 50 M */
    bool delayed_name_removal;      /* PromQL delayed __name__ removal; default false */
    size_t max_request_bytes;       /* largest accepted request body; default 64 MiB */
    unsigned max_concurrent_queries; /* queries evaluated at once; default 20 */
    const char *grpc_listen;        /* HOST:PORT for gRPC (strata.v1, OTLP); NULL or "off": none */
    size_t grpc_max_message_bytes;  /* default 16 MiB */
    const char *grpc_tls_cert;      /* PEM paths; both set: TLS */
    const char *grpc_tls_key;
} server_config;

void server_config_init(server_config *c);

typedef struct server server;

/* Starts listening and serving db (which stays owned by the caller and must outlive the
 * server). On success *out is owned by the caller and released with server_stop. */
int server_start(strata_db *db, const server_config *cfg, server **out, char *err);

/* Stops accepting, finishes requests in flight, stops self-ingestion and frees the server. */
void server_stop(server *s);

/* The address actually bound (useful with port 0). */
const char *server_address(const server *s);
/* The gRPC address actually bound, or NULL when gRPC is off. */
const char *server_grpc_address(const server *s);

#endif
