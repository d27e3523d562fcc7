/*
 * grpc_server.c: Strata's gRPC server on the gRPC C core (Debian's libgrpc), serving the native
 * strata.v1 API and, when the OTLP decoder is built in, OTLP/gRPC metrics export.
 *
 * One completion queue, a few threads pulling events from it. Every call is a small state machine
 * driven by its tag: accepted -> (receive a message, handle it)* -> send the answer and status ->
 * closed. Unary methods receive one message; WriteStream receives until the client half-closes,
 * writing each message as it arrives. Messages are decoded and encoded with protobuf-c. Errors are
 * gRPC status codes with the same sentences the HTTP API gives.
 */
#include "server/server_internal.h"

#include "query/query.h"
#include "strata_v1.pb-c.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRPC_THREADS 2
#define OTLP_EXPORT "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

typedef enum { CALL_ACCEPTING, CALL_RECEIVING, CALL_FINISHING } call_state;

typedef struct grpc_call_ctx {
    grpc_srv *srv;
    call_state state;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *recv;
    grpc_byte_buffer *send;
    int recv_cancelled;
    char method[160];
    bool streaming;
    bool unknown; /* answered UNIMPLEMENTED once its message is read */
    /* accumulated over a WriteStream */
    uint64_t written, rejected;
    char first_error[STRATA_ERRMSG_SIZE];
    grpc_status_code status;
    char details_buf[STRATA_ERRMSG_SIZE];
} grpc_call_ctx;

struct grpc_srv {
    server *http; /* for the database, limits and metrics */
    grpc_server *server;
    grpc_completion_queue *cq;
    pthread_t threads[GRPC_THREADS];
    int n_threads;
    char address[300];
};

static void call_accept_next(grpc_srv *g);

/* ---- buffers ------------------------------------------------------------------------------- */

static uint8_t *read_buffer(grpc_byte_buffer *bb, size_t *len)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *len = GRPC_SLICE_LENGTH(s);
    uint8_t *out = malloc(*len ? *len : 1);
    if (out) memcpy(out, GRPC_SLICE_START_PTR(s), *len);
    grpc_slice_unref(s);
    return out;
}

static grpc_byte_buffer *make_buffer(const uint8_t *p, size_t n)
{
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)p, n);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static grpc_status_code status_for(int rc)
{
    switch (rc) {
    case 0: return GRPC_STATUS_OK;
    case STRATA_EINVAL:
    case STRATA_EPARSE: return GRPC_STATUS_INVALID_ARGUMENT;
    case STRATA_EOUTOFORDER:
    case STRATA_EDUPLICATE: return GRPC_STATUS_INVALID_ARGUMENT;
    case STRATA_ELIMIT: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case STRATA_ETIMEOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
    case STRATA_EUNSUPPORTED: return GRPC_STATUS_UNIMPLEMENTED;
    case STRATA_EEXEC: return GRPC_STATUS_INVALID_ARGUMENT;
    case STRATA_ECLOSED: return GRPC_STATUS_UNAVAILABLE;
    default: return GRPC_STATUS_INTERNAL;
    }
}

/* ---- strata.v1 handlers ----------------------------------------------------------------------- */

#define PACK_INTO(ctx, type, msg)                                                                  \
    do {                                                                                           \
        size_t n_ = type##__get_packed_size(msg);                                                  \
        uint8_t *b_ = malloc(n_ ? n_ : 1);                                                         \
        if (!b_) return STRATA_ENOMEM;                                                             \
        type##__pack(msg, b_);                                                                     \
        (ctx)->send = make_buffer(b_, n_);                                                         \
        free(b_);                                                                                  \
    } while (0)

/* Writes one WriteRequest; counts go into the call so a stream can sum them. */
static int write_message(grpc_call_ctx *ctx, const uint8_t *p, size_t n, char *err)
{
    /* Budgeted (a message of empty sub-messages expands fifty-fold) and with the failing field
     * named when the bytes are not a WriteRequest. */
    arena a;
    arena_init(&a, 64 * 1024);
    Strata__V1__WriteRequest *req;
    int urc =
        ingest_pb_unpack(&strata__v1__write_request__descriptor, p, n, &a, (void **)&req, err);
    if (urc) {
        arena_free(&a);
        return urc;
    }
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < req->n_series; i++) {
        nl += req->series[i]->n_labels;
        ns += req->series[i]->n_samples;
    }
    write_series *ws = calloc(req->n_series + 1, sizeof *ws);
    label *ls = calloc(nl + 1, sizeof *ls);
    strata_sample *ss = calloc(ns + 1, sizeof *ss);
    int rc = ws && ls && ss ? 0 : STRATA_ENOMEM;
    label *lp = ls;
    strata_sample *sp = ss;
    for (size_t i = 0; !rc && i < req->n_series; i++) {
        Strata__V1__Series *s = req->series[i];
        ws[i].labels = lp;
        ws[i].n_labels = s->n_labels;
        for (size_t k = 0; k < s->n_labels; k++)
            *lp++ = (label){.name = s->labels[k]->name, .value = s->labels[k]->value,
                            .name_len = (uint32_t)strlen(s->labels[k]->name),
                            .value_len = (uint32_t)strlen(s->labels[k]->value)};
        ws[i].samples = sp;
        ws[i].n_samples = s->n_samples;
        for (size_t k = 0; k < s->n_samples; k++)
            *sp++ = (strata_sample){.t = s->samples[k]->timestamp_ms, .v = s->samples[k]->value};
    }
    strata_write_result res = {0};
    write_reject rej;
    if (!rc) rc = db_write(ctx->srv->http->db, ws, req->n_series, false, &res, &rej, err);
    ctx->written += res.samples_written;
    ctx->rejected += res.samples_out_of_order + res.samples_conflict + res.samples_too_old +
                     res.samples_too_far_future + res.samples_series_limit;
    counter_add(&ctx->srv->http->m.rw_samples, res.samples_written);
    free(ws);
    free(ls);
    free(ss);
    arena_free(&a);
    return rc;
}

static int reply_write(grpc_call_ctx *ctx)
{
    Strata__V1__WriteResponse resp = STRATA__V1__WRITE_RESPONSE__INIT;
    resp.samples_written = ctx->written;
    resp.samples_rejected = ctx->rejected;
    resp.message = ctx->first_error;
    PACK_INTO(ctx, strata__v1__write_response, &resp);
    return 0;
}

static int reply_query(grpc_call_ctx *ctx, promql_result *r)
{
    Strata__V1__QueryResponse resp = STRATA__V1__QUERY_RESPONSE__INIT;
    static const char *types[] = {"scalar", "vector", "matrix", "string"};
    resp.result_type = (char *)types[r->type];
    Strata__V1__Sample scalar = STRATA__V1__SAMPLE__INIT;
    if (r->type == PROMQL_SCALAR) {
        scalar.timestamp_ms = r->scalar.t;
        scalar.value = r->scalar.v;
        resp.scalar = &scalar;
    }
    if (r->type == PROMQL_STRING) resp.string_value = r->string;
    Strata__V1__Series *series = calloc(r->n_series + 1, sizeof *series);
    Strata__V1__Series **sv = calloc(r->n_series + 1, sizeof *sv);
    size_t nl = 0, np = 0;
    for (size_t i = 0; i < r->n_series; i++) {
        nl += r->series[i].n_labels;
        np += r->series[i].n_points;
    }
    Strata__V1__Label *labels = calloc(nl + 1, sizeof *labels);
    Strata__V1__Label **lp = calloc(nl + 1, sizeof *lp);
    Strata__V1__Sample *pts = calloc(np + 1, sizeof *pts);
    Strata__V1__Sample **pp = calloc(np + 1, sizeof *pp);
    int rc = series && sv && labels && lp && pts && pp ? 0 : STRATA_ENOMEM;
    size_t li = 0, pi = 0;
    for (size_t i = 0; !rc && i < r->n_series; i++) {
        strata__v1__series__init(&series[i]);
        series[i].labels = &lp[li];
        series[i].n_labels = r->series[i].n_labels;
        for (size_t k = 0; k < r->series[i].n_labels; k++, li++) {
            strata__v1__label__init(&labels[li]);
            labels[li].name = (char *)r->series[i].labels[k].name;
            labels[li].value = (char *)r->series[i].labels[k].value;
            lp[li] = &labels[li];
        }
        series[i].samples = &pp[pi];
        series[i].n_samples = r->series[i].n_points;
        for (size_t k = 0; k < r->series[i].n_points; k++, pi++) {
            strata__v1__sample__init(&pts[pi]);
            pts[pi].timestamp_ms = r->series[i].points[k].t;
            pts[pi].value = r->series[i].points[k].v;
            pp[pi] = &pts[pi];
        }
        sv[i] = &series[i];
    }
    resp.series = sv;
    resp.n_series = r->n_series;
    if (!rc) {
        size_t n = strata__v1__query_response__get_packed_size(&resp);
        uint8_t *b = malloc(n ? n : 1);
        if (b) {
            strata__v1__query_response__pack(&resp, b);
            ctx->send = make_buffer(b, n);
            free(b);
        } else {
            rc = STRATA_ENOMEM;
        }
    }
    free(series);
    free(sv);
    free(labels);
    free(lp);
    free(pts);
    free(pp);
    return rc;
}

static int compile_selectors(char **match, size_t n, matcher ***sets, size_t *counts, char *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = promql_parse_selector(match[i], &sets[i], &counts[i], err);
        if (rc) {
            for (size_t k = 0; k < i; k++) {
                for (size_t j = 0; j < counts[k]; j++) matcher_free(sets[k][j]);
                free(sets[k]);
            }
            return STRATA_EINVAL;
        }
    }
    return 0;
}

static void free_selectors(matcher ***sets, size_t *counts, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        for (size_t j = 0; j < counts[k]; j++) matcher_free(sets[k][j]);
        free(sets[k]);
    }
}

static int handle_series(grpc_call_ctx *ctx, const uint8_t *p, size_t n, char *err)
{
    Strata__V1__SeriesRequest *req = strata__v1__series_request__unpack(NULL, n, p);
    if (!req) return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode strata.v1.SeriesRequest");
    int rc = 0;
    if (req->n_match == 0 || req->n_match > 64) rc = strata_errf(err, STRATA_EINVAL, "between 1 and 64 match selectors are required");
    matcher **sets[64];
    size_t counts[64];
    if (!rc) rc = compile_selectors(req->match, req->n_match, sets, counts, err);
    int64_t end = req->end_ms ? req->end_ms : INT64_MAX / 4;
    bool compiled = rc == 0;
    Strata__V1__SeriesResponse resp = STRATA__V1__SERIES_RESPONSE__INIT;
    series_set *sset[64];
    size_t nsets = 0;
    for (size_t i = 0; !rc && i < req->n_match; i++) {
        rc = db_select_labels_only(ctx->srv->http->db, (const matcher *const *)sets[i], counts[i],
                                   req->start_ms, end, &sset[nsets], err);
        if (rc) break;
        nsets++;
    }
    size_t total = 0;
    for (size_t i = 0; i < nsets; i++) total += series_set_count(sset[i]);
    Strata__V1__Series *ser = calloc(total + 1, sizeof *ser);
    Strata__V1__Series **sp = calloc(total + 1, sizeof *sp);
    Strata__V1__Label **lps = calloc(total + 1, sizeof *lps); /* one label array per series */
    if (!ser || !sp || !lps) rc = STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; !rc && i < nsets; i++) {
        const label *ls;
        size_t nl;
        while (series_set_next(sset[i], &ls, &nl, NULL, NULL) == 1) {
            strata__v1__series__init(&ser[k]);
            Strata__V1__Label *l = calloc(nl + 1, sizeof *l);
            Strata__V1__Label **lp = calloc(nl + 1, sizeof *lp);
            if (!l || !lp) {
                free(l);
                free(lp);
                rc = STRATA_ENOMEM;
                break;
            }
            for (size_t m = 0; m < nl; m++) {
                strata__v1__label__init(&l[m]);
                l[m].name = (char *)ls[m].name;
                l[m].value = (char *)ls[m].value;
                lp[m] = &l[m];
            }
            lps[k] = l;
            ser[k].labels = lp;
            ser[k].n_labels = nl;
            sp[k] = &ser[k];
            k++;
        }
    }
    resp.series = sp;
    resp.n_series = k;
    if (!rc) PACK_INTO(ctx, strata__v1__series_response, &resp);
    for (size_t i = 0; i < k; i++) {
        free(lps[i]);
        free(ser[i].labels);
    }
    free(ser);
    free(sp);
    free(lps);
    for (size_t i = 0; i < nsets; i++) series_set_free(sset[i]);
    if (compiled) free_selectors(sets, counts, req->n_match);
    strata__v1__series_request__free_unpacked(req, NULL);
    return rc;
}

static int handle_labels(grpc_call_ctx *ctx, const uint8_t *p, size_t n, bool values, char *err)
{
    Strata__V1__LabelsRequest *req = strata__v1__labels_request__unpack(NULL, n, p);
    if (!req) return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode strata.v1.LabelsRequest");
    int rc = 0;
    if (values && !req->name[0]) rc = strata_errf(err, STRATA_EINVAL, "LabelValues needs a label name");
    if (req->n_match > 1) rc = strata_errf(err, STRATA_EINVAL, "at most one match selector is supported");
    matcher **ms = NULL;
    size_t nm = 0;
    if (!rc && req->n_match) rc = promql_parse_selector(req->match[0], &ms, &nm, err) ? STRATA_EINVAL : 0;
    char **v = NULL;
    size_t nv = 0;
    int64_t end = req->end_ms ? req->end_ms : INT64_MAX / 4;
    int64_t start = req->start_ms ? req->start_ms : INT64_MIN / 4;
    if (!rc)
        rc = values ? db_label_values(ctx->srv->http->db, req->name, (const matcher *const *)ms, nm,
                                      start, end, &v, &nv, err)
                    : db_label_names(ctx->srv->http->db, (const matcher *const *)ms, nm, start, end,
                                     &v, &nv, err);
    if (!rc) {
        Strata__V1__LabelsResponse resp = STRATA__V1__LABELS_RESPONSE__INIT;
        resp.values = v;
        resp.n_values = nv;
        size_t len = strata__v1__labels_response__get_packed_size(&resp);
        uint8_t *b = malloc(len ? len : 1);
        if (b) {
            strata__v1__labels_response__pack(&resp, b);
            ctx->send = make_buffer(b, len);
            free(b);
        } else {
            rc = STRATA_ENOMEM;
        }
    }
    db_strings_free(v, nv);
    for (size_t i = 0; i < nm; i++) matcher_free(ms[i]);
    free(ms);
    strata__v1__labels_request__free_unpacked(req, NULL);
    return rc;
}

static int handle_message(grpc_call_ctx *ctx, const uint8_t *p, size_t n, char *err)
{
    server *s = ctx->srv->http;
    const char *m = ctx->method;
    if (!strcmp(m, "/strata.v1.Strata/Write") || !strcmp(m, "/strata.v1.Strata/WriteStream")) {
        int rc = write_message(ctx, p, n, err);
        /* Skipped samples are reported in the response, not as a failed call. */
        if (rc == STRATA_EOUTOFORDER || rc == STRATA_EDUPLICATE ||
            (rc == STRATA_ELIMIT && ctx->written)) {
            if (!ctx->first_error[0]) snprintf(ctx->first_error, sizeof ctx->first_error, "%s", err);
            rc = 0;
        }
        return rc;
    }
    if (!strcmp(m, "/strata.v1.Strata/Query") || !strcmp(m, "/strata.v1.Strata/QueryRange")) {
        bool range = !strcmp(m, "/strata.v1.Strata/QueryRange");
        promql_options o;
        promql_options_init(&o);
        o.lookback_ms = s->cfg.lookback_ms;
        o.max_samples = s->cfg.query_max_samples;
        o.delayed_name_removal = s->cfg.delayed_name_removal;
        o.timeout_ms = s->cfg.query_timeout_ms;
        promql_result *r = NULL;
        int rc;
        if (range) {
            Strata__V1__QueryRangeRequest *q = strata__v1__query_range_request__unpack(NULL, n, p);
            if (!q) return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode strata.v1.QueryRangeRequest");
            rc = promql_eval_range(s->db, q->query, q->start_ms, q->end_ms, q->step_ms, &o, &r, err);
            strata__v1__query_range_request__free_unpacked(q, NULL);
        } else {
            Strata__V1__QueryRequest *q = strata__v1__query_request__unpack(NULL, n, p);
            if (!q) return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode strata.v1.QueryRequest");
            rc = promql_eval_instant(s->db, q->query, q->time_ms ? q->time_ms : clock_now_ms(), &o, &r, err);
            strata__v1__query_request__free_unpacked(q, NULL);
        }
        if (!rc) rc = reply_query(ctx, r);
        promql_result_free(r);
        return rc;
    }
    if (!strcmp(m, OTLP_EXPORT)) {
        /* OTLP/gRPC carries the same ExportMetricsServiceRequest as OTLP/HTTP's protobuf body. */
        otlp_result res;
        int rc = otlp_http_metrics(s->db, p, n, "application/x-protobuf", NULL, &res, err);
        counter_add(&s->m.otlp_requests, 1);
        counter_add(&s->m.otlp_samples, res.write.samples_written);
        counter_add(&s->m.otlp_rejected_points, res.rejected_points);
        if (rc) return rc;
        uint8_t *body = NULL;
        size_t len = 0;
        const char *rtype;
        if (otlp_http_response(&res, "application/x-protobuf", &body, &len, &rtype)) return STRATA_ENOMEM;
        ctx->send = make_buffer(body ? body : (const uint8_t *)"", len);
        free(body);
        return 0;
    }
    if (!strcmp(m, "/strata.v1.Strata/Series")) return handle_series(ctx, p, n, err);
    if (!strcmp(m, "/strata.v1.Strata/LabelNames")) return handle_labels(ctx, p, n, false, err);
    if (!strcmp(m, "/strata.v1.Strata/LabelValues")) return handle_labels(ctx, p, n, true, err);
    if (!strcmp(m, "/strata.v1.Strata/Stats")) {
        db_stats st;
        db_get_stats(s->db, &st);
        char text[2048];
        strata_stats(s->db, text, sizeof text);
        Strata__V1__StatsResponse resp = STRATA__V1__STATS_RESPONSE__INIT;
        resp.series = st.series;
        resp.samples_appended = st.samples_appended;
        resp.head_chunks = st.head_chunks;
        resp.wal_bytes = st.wal_bytes;
        resp.min_time_ms = st.series ? st.min_time : 0;
        resp.max_time_ms = st.series ? st.max_time : 0;
        resp.text = text;
        PACK_INTO(ctx, strata__v1__stats_response, &resp);
        return 0;
    }
    return strata_errf(err, STRATA_EUNSUPPORTED, "unknown method %s", m);
}

/* ---- the call state machine ------------------------------------------------------------------- */

static bool known_method(const char *m, bool *streaming)
{
    if (!strcmp(m, OTLP_EXPORT)) {
        *streaming = false;
        return true;
    }
    static const char *unary[] = {"/strata.v1.Strata/Write",       "/strata.v1.Strata/Query",
                                  "/strata.v1.Strata/QueryRange",  "/strata.v1.Strata/Series",
                                  "/strata.v1.Strata/LabelNames",  "/strata.v1.Strata/LabelValues",
                                  "/strata.v1.Strata/Stats"};
    *streaming = !strcmp(m, "/strata.v1.Strata/WriteStream");
    if (*streaming) return true;
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
        if (!strcmp(m, unary[i])) return true;
    return false;
}

/* Starts receiving the next message. Returns false if the batch could not start; once it has
 * started, ctx belongs to whichever thread gets its completion, so callers must not touch it. */
static bool start_recv(grpc_call_ctx *ctx, bool with_initial_md)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (with_initial_md) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        n++;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n].data.recv_message.recv_message = &ctx->recv;
    n++;
    ctx->state = CALL_RECEIVING;
    return grpc_call_start_batch(ctx->call, ops, n, ctx, NULL) == GRPC_CALL_OK;
}

static void finish(grpc_call_ctx *ctx, grpc_status_code code, const char *details)
{
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (ctx->send && code == GRPC_STATUS_OK) {
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = ctx->send;
        n++;
    }
    snprintf(ctx->details_buf, sizeof ctx->details_buf, "%s", details ? details : "");
    grpc_slice det = grpc_slice_from_copied_string(ctx->details_buf);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details = &det;
    ops[n].data.send_status_from_server.trailing_metadata_count = 0;
    n++;
    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &ctx->recv_cancelled;
    n++;
    ctx->state = CALL_FINISHING;
    grpc_call_error e = grpc_call_start_batch(ctx->call, ops, n, ctx, NULL);
    grpc_slice_unref(det);
    if (e != GRPC_CALL_OK) strata_log(LOG_WARN, "grpc: cannot finish a call (%d)", (int)e);
}

static void call_free(grpc_call_ctx *ctx)
{
    if (ctx->recv) grpc_byte_buffer_destroy(ctx->recv);
    if (ctx->send) grpc_byte_buffer_destroy(ctx->send);
    if (ctx->call) grpc_call_unref(ctx->call);
    grpc_call_details_destroy(&ctx->details);
    grpc_metadata_array_destroy(&ctx->request_md);
    free(ctx);
}

static void on_event(grpc_call_ctx *ctx, bool ok)
{
    switch (ctx->state) {
    case CALL_ACCEPTING:
        if (!ok) { /* the server is shutting down */
            call_free(ctx);
            return;
        }
        call_accept_next(ctx->srv);
        {
            size_t ml = GRPC_SLICE_LENGTH(ctx->details.method);
            if (ml >= sizeof ctx->method) ml = sizeof ctx->method - 1;
            memcpy(ctx->method, GRPC_SLICE_START_PTR(ctx->details.method), ml);
            ctx->method[ml] = '\0';
        }
        /* Unknown methods are read first: a status sent over an unread message would wait for
         * the client's close forever. */
        ctx->unknown = !known_method(ctx->method, &ctx->streaming);
        if (!start_recv(ctx, true)) finish(ctx, GRPC_STATUS_INTERNAL, "cannot start receiving");
        return;
    case CALL_RECEIVING: {
        if (!ok) {
            finish(ctx, GRPC_STATUS_CANCELLED, "the call was cancelled");
            return;
        }
        char err[STRATA_ERRMSG_SIZE] = "";
        if (ctx->unknown) {
            snprintf(err, sizeof err, "unknown method %s", ctx->method);
            finish(ctx, GRPC_STATUS_UNIMPLEMENTED, err);
            return;
        }
        if (!ctx->recv) {
            /* End of the client's stream (or a unary call without a message). */
            if (ctx->streaming) {
                int rc = reply_write(ctx);
                finish(ctx, status_for(rc), rc ? "out of memory" : NULL);
            } else {
                finish(ctx, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
            }
            return;
        }
        size_t len;
        uint8_t *body = read_buffer(ctx->recv, &len);
        grpc_byte_buffer_destroy(ctx->recv);
        ctx->recv = NULL;
        int rc = body ? handle_message(ctx, body, len, err) : STRATA_ENOMEM;
        free(body);
        if (rc) {
            finish(ctx, status_for(rc), err[0] ? err : strata_strerror(rc));
            return;
        }
        if (ctx->streaming) {
            if (!start_recv(ctx, false)) finish(ctx, GRPC_STATUS_INTERNAL, "cannot receive");
            return;
        }
        if (!ctx->send && (!strcmp(ctx->method, "/strata.v1.Strata/Write"))) rc = reply_write(ctx);
        finish(ctx, status_for(rc), rc ? "out of memory" : NULL);
        return;
    }
    case CALL_FINISHING: call_free(ctx); return;
    }
}

static void call_accept_next(grpc_srv *g)
{
    grpc_call_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return;
    ctx->srv = g;
    ctx->state = CALL_ACCEPTING;
    grpc_call_details_init(&ctx->details);
    grpc_metadata_array_init(&ctx->request_md);
    if (grpc_server_request_call(g->server, &ctx->call, &ctx->details, &ctx->request_md, g->cq,
                                 g->cq, ctx) != GRPC_CALL_OK) {
        grpc_call_details_destroy(&ctx->details);
        grpc_metadata_array_destroy(&ctx->request_md);
        free(ctx);
    }
}

static void *cq_thread(void *arg)
{
    grpc_srv *g = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type != GRPC_OP_COMPLETE || !ev.tag) continue;
        if (ev.tag == (void *)g) {
            /* The server has shut down: no new tags can appear, so end the queue; the other
             * threads see GRPC_QUEUE_SHUTDOWN once it is drained. */
            grpc_completion_queue_shutdown(g->cq);
            continue;
        }
        on_event(ev.tag, ev.success != 0);
    }
    return NULL;
}

int grpc_srv_start(server *http, const char *listen, size_t max_message_bytes, const char *tls_cert,
                   const char *tls_key, grpc_srv **out, char *err)
{
    grpc_init();
    grpc_srv *g = calloc(1, sizeof *g);
    if (!g) return STRATA_ENOMEM;
    g->http = http;
    grpc_arg args[4];
    int max = max_message_bytes ? (int)max_message_bytes : 16 << 20;
    args[0] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = max};
    args[1] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, .value.integer = 64 << 20};
    args[2] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = 60000};
    args[3] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS, .value.integer = 20000};
    grpc_channel_args ch = {.num_args = 4, .args = args};
    g->server = grpc_server_create(&ch, NULL);
    g->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(g->server, g->cq, NULL);
    grpc_server_credentials *creds;
    if (tls_cert && tls_key) {
        buf cert = {0}, key = {0};
        FILE *f1 = fopen(tls_cert, "r"), *f2 = fopen(tls_key, "r");
        char chunk[4096];
        size_t n;
        while (f1 && (n = fread(chunk, 1, sizeof chunk, f1)) > 0) buf_append(&cert, chunk, n);
        while (f2 && (n = fread(chunk, 1, sizeof chunk, f2)) > 0) buf_append(&key, chunk, n);
        if (f1) fclose(f1);
        if (f2) fclose(f2);
        if (!cert.len || !key.len) {
            buf_free(&cert);
            buf_free(&key);
            grpc_server_destroy(g->server);
            grpc_completion_queue_destroy(g->cq);
            free(g);
            return strata_errf(err, STRATA_EINVAL, "cannot read the gRPC TLS certificate %s or key %s",
                               tls_cert, tls_key);
        }
        grpc_ssl_pem_key_cert_pair pair = {.private_key = (char *)key.data, .cert_chain = (char *)cert.data};
        creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
        buf_free(&cert);
        buf_free(&key);
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    int port = grpc_server_add_http2_port(g->server, listen, creds);
    grpc_server_credentials_release(creds);
    if (port <= 0) {
        grpc_server_destroy(g->server);
        grpc_completion_queue_shutdown(g->cq);
        while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(g->cq);
        free(g);
        return strata_errf(err, STRATA_EIO, "cannot listen for gRPC on %s", listen);
    }
    const char *colon = strrchr(listen, ':');
    snprintf(g->address, sizeof g->address, "%.*s:%d", (int)(colon ? colon - listen : 0), listen, port);
    grpc_server_start(g->server);
    for (int i = 0; i < GRPC_THREADS; i++) call_accept_next(g);
    for (int i = 0; i < GRPC_THREADS; i++)
        if (pthread_create(&g->threads[i], NULL, cq_thread, g) == 0) g->n_threads++;
    *out = g;
    return 0;
}

const char *grpc_srv_address(const grpc_srv *g)
{
    return g->address;
}

void grpc_srv_stop(grpc_srv *g)
{
    if (!g) return;
    /* Stop accepting, cancel what is in flight, let the threads drain every tag, then free. */
    grpc_server_shutdown_and_notify(g->server, g->cq, g);
    grpc_server_cancel_all_calls(g->server);
    for (int i = 0; i < g->n_threads; i++) pthread_join(g->threads[i], NULL);
    grpc_server_destroy(g->server);
    grpc_completion_queue_destroy(g->cq);
    free(g);
    grpc_shutdown();
}
