/*
 * server_metrics.c: the metrics Strata exports about itself, collected into one sink so /metrics
 * and self-ingestion always agree.
 */
#include "server/server_internal.h"
#include "encoding/encoding.h"

#include <stdio.h>
#include <string.h>

static const unsigned codes[SERVER_CODES] = {200, 204, 400, 404, 405, 413, 415, 422, 500, 503};
static const char *handler_names[H_COUNT] = {"/api/v1/write",  "/api/v1/read", "/api/v1/query",
                                             "/api/v1/query_range", "/api/v1/series",
                                             "/api/v1/labels", "/api/v1/label/:name/values",
                                             "/metrics",       "/-/healthy",
                                             "other"};

void server_metrics_init(server_metrics *m)
{
    memset(m, 0, sizeof *m);
    histogram_init_latency(&m->request_seconds);
}

void server_count_request(server *s, int handler, unsigned status)
{
    int k = 8; /* 500 */
    for (int i = 0; i < SERVER_CODES; i++)
        if (codes[i] == status) k = i;
    counter_add(&s->m.requests[handler][k], 1);
}

static void emit_u(const metrics_sink *k, const char *name, const char *type, const char *help,
                   double v)
{
    metrics_emit_family(k, name, type, help);
    metrics_emit(k, name, NULL, 0, v);
}

/* The storage tiers (warm and cold blocks) and what the adaptive chunk's selector chose. */
static void emit_tiers(const metrics_sink *k, strata_db *db)
{
    db_tier_stats tw, tc;
    db_tiers_stats(db, &tw, &tc);
    static const char *const fams[][2] = {
        {"strata_tier_blocks", "Blocks per storage tier."},
        {"strata_tier_bytes", "Bytes on disk per storage tier."},
        {"strata_tier_samples", "Samples per storage tier."},
        {"strata_tier_series", "Series per storage tier (summed over blocks)."},
    };
    for (int f = 0; f < 4; f++) {
        metrics_emit_family(k, fams[f][0], "gauge", fams[f][1]);
        for (int t = 0; t < 2; t++) {
            const db_tier_stats *x = t ? &tc : &tw;
            double v = f == 0 ? (double)x->blocks
                       : f == 1 ? (double)x->bytes
                       : f == 2 ? (double)x->samples
                                : (double)x->series;
            label l[] = {LABEL("tier", t ? "cold" : "warm")};
            metrics_emit(k, fams[f][0], l, 1, v);
        }
    }
    emit_u(k, "strata_cold_demotions_total", "counter", "Blocks moved to the cold tier.",
           (double)tc.demotions);
    emit_u(k, "strata_cold_demotion_failures_total", "counter",
           "Block moves to the cold tier that failed.", (double)tc.demotion_failures);
    stc_stats cs;
    db_codec_stats(db, &cs);
    metrics_emit_family(k, "strata_chunk_codec_chunks_total", "counter",
                        "Adaptive chunks written, by the codec the selector chose.");
    for (unsigned c = 1; c < STC_TS_CODECS; c++) {
        label l[] = {LABEL("kind", "timestamp"), LABEL("codec", stc_ts_codec_name(c))};
        metrics_emit(k, "strata_chunk_codec_chunks_total", l, 2, (double)cs.ts_chunks[c]);
    }
    for (unsigned c = 1; c < STC_V_CODECS; c++) {
        label l[] = {LABEL("kind", "value"), LABEL("codec", stc_value_codec_name(c))};
        metrics_emit(k, "strata_chunk_codec_chunks_total", l, 2, (double)cs.v_chunks[c]);
    }
    metrics_emit_family(k, "strata_chunk_codec_bytes_total", "counter",
                        "Bytes of adaptive chunk sections written, by codec.");
    for (unsigned c = 1; c < STC_TS_CODECS; c++) {
        label l[] = {LABEL("kind", "timestamp"), LABEL("codec", stc_ts_codec_name(c))};
        metrics_emit(k, "strata_chunk_codec_bytes_total", l, 2, (double)cs.ts_bytes[c]);
    }
    for (unsigned c = 1; c < STC_V_CODECS; c++) {
        label l[] = {LABEL("kind", "value"), LABEL("codec", stc_value_codec_name(c))};
        metrics_emit(k, "strata_chunk_codec_bytes_total", l, 2, (double)cs.v_bytes[c]);
    }
    emit_u(k, "strata_chunk_codec_samples_total", "counter",
           "Samples written in adaptive chunks.", (double)cs.samples);
    emit_u(k, "strata_chunk_codec_input_bytes_total", "counter",
           "Raw bytes (16 per sample) encoded into adaptive chunks.", (double)cs.bytes_in);
    emit_u(k, "strata_chunk_codec_output_bytes_total", "counter",
           "Bytes of the adaptive chunks written.", (double)cs.bytes_out);
    emit_u(k, "strata_chunk_codec_compression_ratio", "gauge",
           "Raw bytes over adaptive chunk bytes, over every chunk written since start.",
           cs.bytes_out ? (double)cs.bytes_in / (double)cs.bytes_out : 0.0);
}

void server_collect_metrics(server *s, const metrics_sink *k)
{
    db_stats st;
    db_get_stats(s->db, &st);
    emit_u(k, "strata_head_series", "gauge", "Series in the head.", (double)st.series);
    emit_u(k, "strata_head_samples_appended_total", "counter",
           "Samples appended to the head since start, WAL replay included.",
           (double)st.samples_appended);
    emit_u(k, "strata_head_chunks", "gauge", "Full chunks held by the head.", (double)st.head_chunks);
    emit_u(k, "strata_head_chunk_bytes", "gauge", "Bytes of the head's full chunks.",
           (double)st.head_chunk_bytes);
    if (st.head_chunk_samples)
        emit_u(k, "strata_head_chunk_bytes_per_sample", "gauge",
               "Compressed bytes per sample in the head's full chunks.",
               (double)st.head_chunk_bytes / (double)st.head_chunk_samples);
    emit_u(k, "strata_symbols", "gauge", "Interned label strings.", (double)st.symbols);
    emit_u(k, "strata_symbol_bytes", "gauge", "Bytes held by interned label strings.",
           (double)st.symbol_bytes);
    if (st.series) {
        emit_u(k, "strata_head_min_time_seconds", "gauge", "Oldest sample time in the head.",
               (double)st.min_time / 1000.0);
        emit_u(k, "strata_head_max_time_seconds", "gauge", "Newest sample time in the head.",
               (double)st.max_time / 1000.0);
    }
    db_block_stats bst;
    db_blocks_stats(s->db, &bst);
    emit_u(k, "strata_blocks", "gauge", "Persistent blocks open.", (double)bst.blocks);
    emit_u(k, "strata_block_bytes", "gauge", "Bytes of the open blocks on disk.", (double)bst.bytes);
    emit_u(k, "strata_block_samples", "gauge", "Samples in the open blocks.", (double)bst.samples);
    if (bst.blocks) {
        emit_u(k, "strata_blocks_min_time_seconds", "gauge", "Oldest block's start.",
               (double)bst.min_time / 1000.0);
        emit_u(k, "strata_blocks_max_time_seconds", "gauge", "Newest block's end (exclusive).",
               (double)bst.max_time / 1000.0);
    }
    emit_u(k, "strata_head_flushes_total", "counter", "Head flushes into blocks.",
           (double)bst.flushes);
    emit_u(k, "strata_head_flush_failures_total", "counter", "Head flushes that failed.",
           (double)bst.flush_failures);
    emit_u(k, "strata_compactions_total", "counter", "Block merges (compactions) done.",
           (double)bst.compactions);
    emit_u(k, "strata_compaction_failures_total", "counter", "Block merges that failed.",
           (double)bst.compaction_failures);
    emit_u(k, "strata_retention_blocks_deleted_total", "counter",
           "Blocks deleted by --retention or --retention-size.", (double)bst.retention_deleted);
    emit_tiers(k, s->db);
    emit_u(k, "strata_wal_segments", "gauge", "WAL segment files.", (double)st.wal_segments);
    emit_u(k, "strata_wal_bytes", "gauge", "Bytes in WAL segment files.", (double)st.wal_bytes);
    emit_u(k, "strata_wal_fsyncs_total", "counter", "WAL fsync calls.", (double)st.wal_fsyncs);
    emit_u(k, "strata_wal_records_replayed_total", "counter", "WAL records replayed at start.",
           (double)st.wal_records_replayed);
    emit_u(k, "strata_wal_torn_tails_total", "counter",
           "Torn WAL records found and truncated at start.", (double)st.wal_torn_tails);

    metrics_emit_family(k, "strata_samples_rejected_total", "counter",
                        "Samples rejected on write, by reason.");
    label r1[] = {LABEL("reason", "out_of_order")};
    metrics_emit(k, "strata_samples_rejected_total", r1, 1, (double)st.samples_out_of_order);
    label r2[] = {LABEL("reason", "conflicting_value")};
    metrics_emit(k, "strata_samples_rejected_total", r2, 1, (double)st.samples_conflict);
    label r3[] = {LABEL("reason", "too_old")};
    metrics_emit(k, "strata_samples_rejected_total", r3, 1, (double)st.samples_too_old);
    label r4[] = {LABEL("reason", "too_far_in_future")};
    metrics_emit(k, "strata_samples_rejected_total", r4, 1, (double)st.samples_too_far_future);
    label r5[] = {LABEL("reason", "series_limit")};
    metrics_emit(k, "strata_samples_rejected_total", r5, 1, (double)st.samples_series_limit);
    emit_u(k, "strata_writes_rejected_label_limit_total", "counter",
           "Writes refused whole because a new label set broke a label limit.",
           (double)st.writes_label_limit);
    emit_u(k, "strata_samples_duplicate_total", "counter",
           "Samples identical to a stored one: accepted without storing them twice.",
           (double)st.samples_duplicate);

    exemplar_stats ex;
    db_get_exemplar_stats(s->db, &ex);
    emit_u(k, "strata_exemplars_max", "gauge",
           "Capacity of the in-memory exemplar store (--max-exemplars).", (double)ex.capacity);
    emit_u(k, "strata_exemplars_in_storage", "gauge", "Exemplars held in the exemplar store.",
           (double)ex.stored);
    emit_u(k, "strata_exemplars_series_in_storage", "gauge",
           "Series with at least one exemplar in the exemplar store.", (double)ex.series);
    emit_u(k, "strata_exemplars_appended_total", "counter",
           "Exemplars added to the exemplar store since start, WAL replay included.",
           (double)ex.appended);
    metrics_emit_family(k, "strata_exemplars_rejected_total", "counter",
                        "Exemplars refused on write, by reason.");
    label x1[] = {LABEL("reason", "out_of_order")};
    metrics_emit(k, "strata_exemplars_rejected_total", x1, 1, (double)ex.out_of_order);
    label x2[] = {LABEL("reason", "invalid")};
    metrics_emit(k, "strata_exemplars_rejected_total", x2, 1, (double)ex.invalid);
    if (ex.last_timestamp != INT64_MIN)
        emit_u(k, "strata_exemplars_last_timestamp_seconds", "gauge",
               "Timestamp of the newest exemplar added.", (double)ex.last_timestamp / 1000.0);

    emit_u(k, "strata_remote_write_requests_total", "counter", "Remote-write requests received.",
           (double)counter_get(&s->m.rw_requests));
    emit_u(k, "strata_remote_write_requests_rejected_total", "counter",
           "Remote-write requests answered with an error.",
           (double)counter_get(&s->m.rw_rejected_requests));
    emit_u(k, "strata_remote_write_samples_total", "counter", "Samples stored from remote write.",
           (double)counter_get(&s->m.rw_samples));

    emit_u(k, "strata_otlp_requests_total", "counter", "OTLP metrics export requests (HTTP and gRPC).",
           (double)counter_get(&s->m.otlp_requests));
    emit_u(k, "strata_otlp_samples_total", "counter", "Samples stored from OTLP.",
           (double)counter_get(&s->m.otlp_samples));
    emit_u(k, "strata_otlp_rejected_points_total", "counter",
           "OTLP data points rejected (reported to the sender as partial success).",
           (double)counter_get(&s->m.otlp_rejected_points));
    metrics_emit_family(k, "strata_http_requests_total", "counter",
                        "HTTP requests by handler and status code.");
    for (int h = 0; h < H_COUNT; h++) {
        for (int c = 0; c < SERVER_CODES; c++) {
            uint64_t v = counter_get(&s->m.requests[h][c]);
            if (!v) continue;
            char code[8];
            snprintf(code, sizeof code, "%u", codes[c]);
            label l[] = {LABEL("code", code), LABEL("handler", handler_names[h])};
            metrics_emit(k, "strata_http_requests_total", l, 2, (double)v);
        }
    }
    metrics_emit_family(k, "strata_http_request_duration_seconds", "histogram",
                        "HTTP request latency.");
    metrics_emit_histogram(k, "strata_http_request_duration_seconds", NULL, 0,
                           &s->m.request_seconds);
    emit_u(k, "strata_self_scrapes_total", "counter", "Self-ingestion runs.",
           (double)counter_get(&s->m.selfscrape_runs));
    emit_u(k, "strata_self_scrape_failures_total", "counter", "Self-ingestion runs that failed.",
           (double)counter_get(&s->m.selfscrape_failures));
    metrics_emit_process(k);
}
