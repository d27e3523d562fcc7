/*
 * remote_write.c: the remote write 1.0 receiver: headers, snappy, decode, db_write, HTTP status.
 *
 * This is the glue the HTTP layer calls once per POST /api/v1/write. It owns the decisions a
 * sender sees (which headers are refused with 415, what is 400, when floats are stored although
 * the request is refused) so that they are written down in one place (ingest.h) and tested
 * without a server. The per-thread scratch keeps the decompression buffer and the decoder's arrays
 * from one request to the next, so a steady stream of requests allocates nothing.
 */
#include "ingest/ingest_internal.h"

#include <ctype.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- scratch ------------------------------------------------------------------------------ */

ingest_scratch *ingest_scratch_new(void)
{
    ingest_scratch *s = calloc(1, sizeof(ingest_scratch));
    if (s) arena_init(&s->hist_mem, 16 * 1024);
    return s;
}

void ingest_scratch_free(ingest_scratch *s)
{
    if (!s) return;
    buf_free(&s->body);
    free(s->labels);
    free(s->samples);
    free(s->series);
    free(s->hists);
    arena_free(&s->hist_mem);
    free(s);
}

void ingest_scratch_trim(ingest_scratch *s)
{
    if (s->body.cap > INGEST_SCRATCH_KEEP) buf_free(&s->body);
    if (s->labels_cap * sizeof(label) > INGEST_SCRATCH_KEEP) {
        free(s->labels);
        s->labels = NULL;
        s->labels_cap = 0;
    }
    if (s->samples_cap * sizeof(strata_sample) > INGEST_SCRATCH_KEEP) {
        free(s->samples);
        s->samples = NULL;
        s->samples_cap = 0;
    }
    if (s->hists_cap * sizeof(hist_sample) > INGEST_SCRATCH_KEEP) {
        free(s->hists);
        s->hists = NULL;
        s->hists_cap = 0;
    }
    if (s->hist_mem.total > INGEST_SCRATCH_KEEP) arena_free(&s->hist_mem);
    if (s->series_cap * sizeof(write_series) > INGEST_SCRATCH_KEEP) {
        free(s->series);
        s->series = NULL;
        s->series_cap = 0;
    }
}

/* ---- headers ------------------------------------------------------------------------------ */

/* [*s, *e) without the blanks at either end. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

static bool token_is(const char *s, const char *e, const char *want)
{
    size_t n = strlen(want);
    return (size_t)(e - s) == n && strncasecmp(s, want, n) == 0;
}

int ingest_rw_check_headers(const char *content_encoding, const char *content_type, char *err)
{
    if (content_encoding) {
        const char *s = content_encoding, *e = s + strlen(s);
        trim(&s, &e);
        /* An absent encoding is taken as snappy, as Prometheus does for old 1.0 senders. */
        if (s != e && !token_is(s, e, "snappy"))
            return strata_errf(err, STRATA_EUNSUPPORTED,
                               "unsupported Content-Encoding \"%.*s\": remote write bodies must be "
                               "snappy block-compressed (Content-Encoding: snappy)",
                               (int)(e - s > 64 ? 64 : e - s), s);
    }
    if (!content_type) return 0;
    const char *s = content_type, *end = s + strlen(s);
    const char *e = memchr(s, ';', (size_t)(end - s));
    if (!e) e = end;
    const char *ms = s, *me = e;
    trim(&ms, &me);
    if (ms == me && e == end) return 0; /* empty: treated as absent, i.e. 1.0 */
    if (!token_is(ms, me, "application/x-protobuf"))
        return strata_errf(err, STRATA_EUNSUPPORTED,
                           "unsupported Content-Type \"%.*s\": remote write expects "
                           "application/x-protobuf",
                           (int)(end - s > 100 ? 100 : end - s), s);
    while (e < end) {
        const char *ps = e + 1;
        e = memchr(ps, ';', (size_t)(end - ps));
        if (!e) e = end;
        const char *eq = memchr(ps, '=', (size_t)(e - ps));
        if (!eq) continue;
        const char *ns = ps, *ne = eq, *vs = eq + 1, *ve = e;
        trim(&ns, &ne);
        trim(&vs, &ve);
        if (!token_is(ns, ne, "proto")) continue;
        if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
            vs++;
            ve--;
        }
        if (token_is(vs, ve, "prometheus.WriteRequest")) continue;
        if (token_is(vs, ve, "io.prometheus.write.v2.Request")) continue;
        return strata_errf(err, STRATA_EUNSUPPORTED,
                           "unsupported remote write message proto=%.*s: expected "
                           "prometheus.WriteRequest",
                           (int)(ve - vs > 100 ? 100 : ve - vs), vs);
    }
    return 0;
}

/* ---- snappy + protobuf -------------------------------------------------------------------- */

int ingest_rw_decode(const uint8_t *body, size_t len, ingest_scratch *s, ingest_rw_request *out,
                     char *err)
{
    memset(out, 0, sizeof *out);
    size_t ulen;
    if (snappy_uncompressed_length((const char *)body, len, &ulen) != SNAPPY_OK)
        return strata_errf(err, STRATA_EINVAL,
                           "snappy: corrupt input: the body (%zu bytes) does not start with a "
                           "snappy block length; remote write bodies are snappy block format, "
                           "not framed",
                           len);
    if (ulen > INGEST_RW_MAX_DECODED)
        return strata_errf(err, STRATA_ELIMIT,
                           "snappy: the body decodes to %zu bytes, more than the limit of %zu",
                           ulen, (size_t)INGEST_RW_MAX_DECODED);
    s->body.len = 0;
    if (buf_reserve(&s->body, ulen + 1))
        return strata_errf(err, STRATA_ENOMEM, "out of memory for a %zu-byte request", ulen);
    size_t got = ulen;
    if (snappy_uncompress((const char *)body, len, (char *)s->body.data, &got) != SNAPPY_OK ||
        got != ulen)
        return strata_errf(err, STRATA_EINVAL,
                           "snappy: corrupt input (%zu bytes, %zu declared "
                           "uncompressed)",
                           len, ulen);
    s->body.len = ulen;
    return ingest_rw_decode_pb(s->body.data, ulen, s, out, err);
}

/* ---- the receiver ------------------------------------------------------------------------- */

/* The answer for a status once the request was decoded. */
static int http_status_for(int rc)
{
    switch (rc) {
    case 0:
        return 204;
    case STRATA_EINVAL:
    case STRATA_EPARSE:
    case STRATA_EOUTOFORDER:
    case STRATA_EDUPLICATE:
    case STRATA_EUNSUPPORTED: /* native histograms: resending will not help */
        return 400;
    case STRATA_ELIMIT:
        return 429;
    case STRATA_ECLOSED:
    case STRATA_ETIMEOUT:
        return 503;
    default:
        return 500; /* ENOMEM, EIO, ECORRUPT: the sender retries */
    }
}

int ingest_remote_write(strata_db *db, const uint8_t *body, size_t len,
                        const char *content_encoding, const char *content_type,
                        ingest_scratch *scratch, ingest_rw_result *res, write_reject *rej,
                        char *err)
{
    memset(res, 0, sizeof *res);
    if (rej) memset(rej, 0, sizeof *rej);
    int rc = ingest_rw_check_headers(content_encoding, content_type, err);
    if (rc) {
        res->http_status = 415;
        return rc;
    }
    ingest_rw_request req;
    res->version = content_type && strstr(content_type, "io.prometheus.write.v2.Request") ? 2 : 1;
    arena a2;
    arena_init(&a2, 64 * 1024);
    rc = res->version == 2 ? ingest_rw2_decode(body, len, &a2, &req, err)
                           : ingest_rw_decode(body, len, scratch, &req, err);
    if (rc) {
        res->http_status = rc == STRATA_ELIMIT ? 413 : http_status_for(rc);
        goto out;
    }
    res->req = req;
    res->req.series = NULL; /* owned by the scratch; not valid after this call */
    if (req.n_series) rc = db_write(db, req.series, req.n_series, true, &res->write, rej, err);
    res->http_status = http_status_for(rc);
out:
    arena_free(&a2);
    ingest_scratch_trim(scratch);
    return rc;
}
