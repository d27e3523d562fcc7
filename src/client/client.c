/*
 * client.c: the strata.v1 gRPC client (include/strata_client.h) on the gRPC C core.
 *
 * Each call is one batch on a pluck completion queue: send metadata, the message and the
 * half-close, receive the answer and the status, all at once, then wait for that tag. Messages
 * are encoded and decoded with the same protobuf-c code the server uses.
 */
#include "strata_client.h"

#include "core/core.h"
#include "strata_v1.pb-c.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct strata_client {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    int timeout_ms;
};

int strata_client_open(const char *target, int timeout_ms, strata_client **out, char *err)
{
    grpc_init();
    strata_client *c = calloc(1, sizeof *c);
    if (!c) return strata_errf(err, STRATA_ENOMEM, "out of memory");
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    c->channel = grpc_channel_create(target, creds, NULL);
    grpc_channel_credentials_release(creds);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    if (!c->channel || !c->cq) {
        strata_client_close(c);
        return strata_errf(err, STRATA_EIO, "cannot create a gRPC channel to %s", target);
    }
    *out = c;
    return 0;
}

void strata_client_close(strata_client *c)
{
    if (!c) return;
    if (c->channel) grpc_channel_destroy(c->channel);
    if (c->cq) {
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(c->cq);
    }
    free(c);
    grpc_shutdown();
}

/* One unary call: request bytes in, response bytes out (caller frees *resp). */
static int unary(strata_client *c, const char *method, const uint8_t *req, size_t len,
                 uint8_t **resp, size_t *resp_len, char *err)
{
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    grpc_slice m = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m,
                                               NULL, deadline, NULL);
    if (!call) return strata_errf(err, STRATA_EIO, "cannot create a gRPC call");
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len);
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    int rc = 0;
    if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
        rc = strata_errf(err, STRATA_EIO, "cannot start the gRPC call");
    } else {
        grpc_event ev = grpc_completion_queue_pluck(c->cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success) rc = strata_errf(err, STRATA_EIO, "gRPC call failed");
    }
    if (!rc && status != GRPC_STATUS_OK) {
        rc = status == GRPC_STATUS_INVALID_ARGUMENT       ? STRATA_EINVAL
             : status == GRPC_STATUS_RESOURCE_EXHAUSTED   ? STRATA_ELIMIT
             : status == GRPC_STATUS_DEADLINE_EXCEEDED    ? STRATA_ETIMEOUT
             : status == GRPC_STATUS_UNIMPLEMENTED        ? STRATA_EUNSUPPORTED
                                                          : STRATA_EIO;
        strata_errf(err, rc, "%.*s (gRPC status %d)", (int)GRPC_SLICE_LENGTH(details),
                    (const char *)GRPC_SLICE_START_PTR(details), (int)status);
    }
    if (!rc && recv) {
        grpc_byte_buffer_reader r;
        grpc_byte_buffer_reader_init(&r, recv);
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        *resp_len = GRPC_SLICE_LENGTH(all);
        *resp = malloc(*resp_len ? *resp_len : 1);
        if (*resp) memcpy(*resp, GRPC_SLICE_START_PTR(all), *resp_len);
        else rc = STRATA_ENOMEM;
        grpc_slice_unref(all);
    } else if (!rc) {
        rc = strata_errf(err, STRATA_EIO, "the server sent no answer");
    }
    if (recv) grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    return rc;
}

int strata_client_write(strata_client *c, const strata_series *series, size_t n, uint64_t *written,
                        uint64_t *rejected, char *err)
{
    Strata__V1__WriteRequest req = STRATA__V1__WRITE_REQUEST__INIT;
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        nl += series[i].n_labels;
        ns += series[i].n_samples;
    }
    Strata__V1__Series *sv = calloc(n + 1, sizeof *sv);
    Strata__V1__Series **sp = calloc(n + 1, sizeof *sp);
    Strata__V1__Label *lv = calloc(nl + 1, sizeof *lv);
    Strata__V1__Label **lp = calloc(nl + 1, sizeof *lp);
    Strata__V1__Sample *pv = calloc(ns + 1, sizeof *pv);
    Strata__V1__Sample **pp = calloc(ns + 1, sizeof *pp);
    int rc = sv && sp && lv && lp && pv && pp ? 0 : STRATA_ENOMEM;
    size_t li = 0, pi = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        strata__v1__series__init(&sv[i]);
        sv[i].labels = &lp[li];
        sv[i].n_labels = series[i].n_labels;
        for (size_t k = 0; k < series[i].n_labels; k++, li++) {
            strata__v1__label__init(&lv[li]);
            lv[li].name = (char *)series[i].labels[k].name;
            lv[li].value = (char *)series[i].labels[k].value;
            lp[li] = &lv[li];
        }
        sv[i].samples = &pp[pi];
        sv[i].n_samples = series[i].n_samples;
        for (size_t k = 0; k < series[i].n_samples; k++, pi++) {
            strata__v1__sample__init(&pv[pi]);
            pv[pi].timestamp_ms = series[i].samples[k].t;
            pv[pi].value = series[i].samples[k].v;
            pp[pi] = &pv[pi];
        }
        sp[i] = &sv[i];
    }
    req.series = sp;
    req.n_series = n;
    uint8_t *body = NULL, *resp = NULL;
    size_t len = 0, rlen = 0;
    if (!rc) {
        len = strata__v1__write_request__get_packed_size(&req);
        body = malloc(len ? len : 1);
        if (!body) rc = STRATA_ENOMEM;
        else strata__v1__write_request__pack(&req, body);
    }
    if (!rc) rc = unary(c, "/strata.v1.Strata/Write", body, len, &resp, &rlen, err);
    if (!rc) {
        Strata__V1__WriteResponse *wr = strata__v1__write_response__unpack(NULL, rlen, resp);
        if (!wr) {
            rc = strata_errf(err, STRATA_EIO, "cannot decode the WriteResponse");
        } else {
            if (written) *written = wr->samples_written;
            if (rejected) *rejected = wr->samples_rejected;
            if (wr->message && wr->message[0]) strata_errf(err, 0, "%s", wr->message);
            strata__v1__write_response__free_unpacked(wr, NULL);
        }
    }
    free(resp);
    free(body);
    free(sv);
    free(sp);
    free(lv);
    free(lp);
    free(pv);
    free(pp);
    return rc;
}

void strata_client_result_free(strata_client_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_series; i++) {
        for (size_t k = 0; k < r->series[i].n_labels; k++) {
            free((char *)r->series[i].labels[k].name);
            free((char *)r->series[i].labels[k].value);
        }
        free(r->series[i].labels);
        free(r->series[i].samples);
    }
    free(r->series);
    free(r);
}

int strata_client_query(strata_client *c, const char *promql, int64_t time_ms,
                        strata_client_result **out, char *err)
{
    *out = NULL;
    Strata__V1__QueryRequest req = STRATA__V1__QUERY_REQUEST__INIT;
    req.query = (char *)promql;
    req.time_ms = time_ms;
    size_t len = strata__v1__query_request__get_packed_size(&req);
    uint8_t *body = malloc(len ? len : 1), *resp = NULL;
    size_t rlen = 0;
    if (!body) return STRATA_ENOMEM;
    strata__v1__query_request__pack(&req, body);
    int rc = unary(c, "/strata.v1.Strata/Query", body, len, &resp, &rlen, err);
    free(body);
    if (rc) return rc;
    Strata__V1__QueryResponse *qr = strata__v1__query_response__unpack(NULL, rlen, resp);
    free(resp);
    if (!qr) return strata_errf(err, STRATA_EIO, "cannot decode the QueryResponse");
    strata_client_result *r = calloc(1, sizeof *r);
    if (r) r->series = calloc(qr->n_series + 1, sizeof *r->series);
    if (!r || !r->series) {
        free(r);
        strata__v1__query_response__free_unpacked(qr, NULL);
        return STRATA_ENOMEM;
    }
    snprintf(r->result_type, sizeof r->result_type, "%s", qr->result_type);
    if (qr->scalar) r->scalar = (strata_sample){qr->scalar->timestamp_ms, qr->scalar->value};
    for (size_t i = 0; i < qr->n_series; i++) {
        Strata__V1__Series *s = qr->series[i];
        strata_client_series *o = &r->series[r->n_series++];
        o->labels = calloc(s->n_labels + 1, sizeof *o->labels);
        o->samples = calloc(s->n_samples + 1, sizeof *o->samples);
        if (!o->labels || !o->samples) {
            rc = STRATA_ENOMEM;
            break;
        }
        for (size_t k = 0; k < s->n_labels; k++) {
            o->labels[k].name = strdup(s->labels[k]->name);
            o->labels[k].value = strdup(s->labels[k]->value);
            o->n_labels++;
        }
        for (size_t k = 0; k < s->n_samples; k++)
            o->samples[o->n_samples++] = (strata_sample){s->samples[k]->timestamp_ms, s->samples[k]->value};
    }
    strata__v1__query_response__free_unpacked(qr, NULL);
    if (rc) {
        strata_client_result_free(r);
        return rc;
    }
    *out = r;
    return 0;
}
