/*
 * remote_read.c: Prometheus remote read (POST /api/v1/read), so a Prometheus can use Strata as
 * its long-term storage.
 *
 * The request is a snappy-compressed ReadRequest; each query's matchers and inclusive time range
 * go through the same querier as PromQL. The answer is the first response type in the client's
 * list that Strata knows: SAMPLES (one snappy-compressed ReadResponse) or STREAMED_XOR_CHUNKS
 * (frames of uvarint length, big-endian CRC-32C and one ChunkedReadResponse holding one series'
 * XOR chunks). This is not the ingest hot path, so messages are built with protobuf-c.
 */
#include "server/server_internal.h"

#include "encoding/encoding.h"
#include "remote.pb-c.h"

#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

typedef struct read_ctx {
    server *s;
    arena mem;
    uint64_t samples;
    char *err;
} read_ctx;

static int compile_query(read_ctx *rc, const Prometheus__Query *q, matcher ***out, size_t *n)
{
    matcher **ms = arena_alloc(&rc->mem, (q->n_matchers + 1) * sizeof *ms);
    if (!ms) return STRATA_ENOMEM;
    for (size_t i = 0; i < q->n_matchers; i++) {
        const Prometheus__LabelMatcher *m = q->matchers[i];
        if ((int)m->type < 0 || m->type > 3) {
            for (size_t k = 0; k < i; k++) matcher_free(ms[k]);
            return strata_errf(rc->err, STRATA_EINVAL, "unknown matcher type %d", (int)m->type);
        }
        int r = matcher_new((strata_match_type)m->type, m->name, strlen(m->name), m->value,
                            strlen(m->value), &ms[i], rc->err);
        if (r) {
            for (size_t k = 0; k < i; k++) matcher_free(ms[k]);
            return r;
        }
    }
    *out = ms;
    *n = q->n_matchers;
    return 0;
}

static void free_matchers(matcher **ms, size_t n)
{
    for (size_t i = 0; i < n; i++) matcher_free(ms[i]);
}

static Prometheus__Label **pb_labels(read_ctx *rc, const label *ls, size_t n)
{
    Prometheus__Label **v = arena_alloc(&rc->mem, (n + 1) * sizeof *v);
    Prometheus__Label *l = arena_alloc(&rc->mem, (n + 1) * sizeof *l);
    if (!v || !l) return NULL;
    for (size_t i = 0; i < n; i++) {
        prometheus__label__init(&l[i]);
        l[i].name = (char *)ls[i].name; /* interned, NUL-terminated, alive while the db is */
        l[i].value = (char *)ls[i].value;
        v[i] = &l[i];
    }
    return v;
}

static int count_limit(read_ctx *rc, size_t n)
{
    rc->samples += n;
    if (rc->samples > rc->s->cfg.query_max_samples)
        return strata_errf(rc->err, STRATA_ELIMIT,
                           "remote read would return more than %llu samples (--query-max-samples)",
                           (unsigned long long)rc->s->cfg.query_max_samples);
    return 0;
}

/* SAMPLES: one ReadResponse with a QueryResult per query. */
static int read_samples(read_ctx *rc, const Prometheus__ReadRequest *req, buf *out)
{
    Prometheus__ReadResponse resp;
    prometheus__read_response__init(&resp);
    resp.n_results = req->n_queries;
    resp.results = arena_alloc(&rc->mem, (req->n_queries + 1) * sizeof *resp.results);
    if (!resp.results) return STRATA_ENOMEM;
    int r = 0;
    for (size_t qi = 0; qi < req->n_queries && !r; qi++) {
        Prometheus__QueryResult *qr = arena_alloc(&rc->mem, sizeof *qr);
        if (!qr) return STRATA_ENOMEM;
        prometheus__query_result__init(qr);
        resp.results[qi] = qr;
        matcher **ms;
        size_t nm;
        if ((r = compile_query(rc, req->queries[qi], &ms, &nm))) break;
        series_set *set;
        r = db_select(rc->s->db, (const matcher *const *)ms, nm, req->queries[qi]->start_timestamp_ms,
                      req->queries[qi]->end_timestamp_ms, &set, rc->err);
        free_matchers(ms, nm);
        if (r) break;
        size_t cap = 0;
        const label *ls;
        size_t nl, ns;
        const strata_sample *ss;
        int more;
        while ((more = series_set_next(set, &ls, &nl, &ss, &ns)) == 1) {
            if ((r = count_limit(rc, ns))) break;
            if (qr->n_timeseries == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                Prometheus__TimeSeries **nv = arena_alloc(&rc->mem, ncap * sizeof *nv);
                if (!nv) {
                    r = STRATA_ENOMEM;
                    break;
                }
                if (cap) memcpy(nv, qr->timeseries, cap * sizeof *nv);
                qr->timeseries = nv;
                cap = ncap;
            }
            Prometheus__TimeSeries *ts = arena_alloc(&rc->mem, sizeof *ts);
            Prometheus__Sample **sv = arena_alloc(&rc->mem, (ns + 1) * sizeof *sv);
            Prometheus__Sample *smp = arena_alloc(&rc->mem, (ns + 1) * sizeof *smp);
            if (!ts || !sv || !smp) {
                r = STRATA_ENOMEM;
                break;
            }
            prometheus__time_series__init(ts);
            ts->labels = pb_labels(rc, ls, nl);
            ts->n_labels = nl;
            for (size_t i = 0; i < ns; i++) {
                prometheus__sample__init(&smp[i]);
                smp[i].value = ss[i].v;
                smp[i].timestamp = ss[i].t;
                sv[i] = &smp[i];
            }
            ts->samples = sv;
            ts->n_samples = ns;
            qr->timeseries[qr->n_timeseries++] = ts;
        }
        if (more < 0 && !r) r = strata_errf(rc->err, STRATA_ECORRUPT, "corrupt chunk in storage");
        series_set_free(set);
    }
    if (r) return r;
    size_t plen = prometheus__read_response__get_packed_size(&resp);
    uint8_t *pb = malloc(plen + 1);
    size_t clen = snappy_max_compressed_length(plen);
    if (!pb || buf_reserve(out, clen + 1)) {
        free(pb);
        return STRATA_ENOMEM;
    }
    prometheus__read_response__pack(&resp, pb);
    if (snappy_compress((const char *)pb, plen, (char *)out->data + out->len, &clen) != SNAPPY_OK) {
        free(pb);
        return strata_errf(rc->err, STRATA_EIO, "snappy compression failed");
    }
    out->len += clen;
    free(pb);
    return 0;
}

/* One frame of the streamed response: uvarint(len), CRC-32C big-endian, the message. */
static int put_frame(buf *out, const Prometheus__ChunkedReadResponse *msg)
{
    size_t plen = prometheus__chunked_read_response__get_packed_size(msg);
    if (buf_reserve(out, plen + VARINT_MAX_LEN + 4 + 1)) return STRATA_ENOMEM;
    uint8_t *p = out->data + out->len;
    size_t n = varint_put_u64(p, plen);
    uint8_t *body = p + n + 4;
    prometheus__chunked_read_response__pack(msg, body);
    uint32_t crc = crc32c(0, body, plen);
    p[n] = (uint8_t)(crc >> 24);
    p[n + 1] = (uint8_t)(crc >> 16);
    p[n + 2] = (uint8_t)(crc >> 8);
    p[n + 3] = (uint8_t)crc;
    out->len += n + 4 + plen;
    return 0;
}

/* STREAMED_XOR_CHUNKS: each series re-encoded as XOR chunks of up to 120 samples. */
static int read_streamed(read_ctx *rc, const Prometheus__ReadRequest *req, buf *out)
{
    int r = 0;
    for (size_t qi = 0; qi < req->n_queries && !r; qi++) {
        matcher **ms;
        size_t nm;
        if ((r = compile_query(rc, req->queries[qi], &ms, &nm))) break;
        series_set *set;
        r = db_select(rc->s->db, (const matcher *const *)ms, nm, req->queries[qi]->start_timestamp_ms,
                      req->queries[qi]->end_timestamp_ms, &set, rc->err);
        free_matchers(ms, nm);
        if (r) break;
        const label *ls;
        size_t nl, ns;
        const strata_sample *ss;
        int more;
        while ((more = series_set_next(set, &ls, &nl, &ss, &ns)) == 1 && !r) {
            if ((r = count_limit(rc, ns))) break;
            size_t nchunks = (ns + 119) / 120;
            Prometheus__ChunkedSeries cs;
            prometheus__chunked_series__init(&cs);
            cs.labels = pb_labels(rc, ls, nl);
            cs.n_labels = nl;
            cs.chunks = arena_alloc(&rc->mem, (nchunks + 1) * sizeof *cs.chunks);
            Prometheus__Chunk *ch = arena_alloc(&rc->mem, (nchunks + 1) * sizeof *ch);
            xor_appender *apps = calloc(nchunks + 1, sizeof *apps);
            if (!cs.labels || !cs.chunks || !ch || !apps) {
                free(apps);
                r = STRATA_ENOMEM;
                break;
            }
            for (size_t c = 0; c < nchunks && !r; c++) {
                size_t from = c * 120, to = from + 120 < ns ? from + 120 : ns;
                if ((r = xor_appender_init(&apps[c]))) break;
                for (size_t i = from; i < to && !r; i++) r = xor_append(&apps[c], ss[i].t, ss[i].v);
                size_t len;
                const uint8_t *bytes = xor_appender_bytes(&apps[c], &len);
                prometheus__chunk__init(&ch[c]);
                ch[c].min_time_ms = ss[from].t;
                ch[c].max_time_ms = ss[to - 1].t;
                ch[c].type = PROMETHEUS__CHUNK__ENCODING__XOR;
                ch[c].data.data = (uint8_t *)bytes;
                ch[c].data.len = len;
                cs.chunks[c] = &ch[c];
            }
            cs.n_chunks = nchunks;
            if (!r) {
                Prometheus__ChunkedSeries *one = &cs;
                Prometheus__ChunkedReadResponse msg;
                prometheus__chunked_read_response__init(&msg);
                msg.chunked_series = &one;
                msg.n_chunked_series = 1;
                msg.query_index = (int64_t)qi;
                r = put_frame(out, &msg);
            }
            for (size_t c = 0; c < nchunks; c++)
                if (apps[c].w.data) xor_appender_free(&apps[c]);
            free(apps);
        }
        if (more < 0 && !r) r = strata_errf(rc->err, STRATA_ECORRUPT, "corrupt chunk in storage");
        series_set_free(set);
    }
    return r;
}

int remote_read_handle(server *s, const uint8_t *body, size_t len, buf *out, bool *streamed,
                       char *err)
{
    size_t ulen;
    if (snappy_uncompressed_length((const char *)body, len, &ulen) != SNAPPY_OK ||
        ulen > (64u << 20))
        return strata_errf(err, STRATA_EINVAL, "snappy: corrupt input or too large a request");
    char *raw = malloc(ulen ? ulen : 1);
    if (!raw) return STRATA_ENOMEM;
    if (snappy_uncompress((const char *)body, len, raw, &ulen) != SNAPPY_OK) {
        free(raw);
        return strata_errf(err, STRATA_EINVAL, "snappy: corrupt input");
    }
    Prometheus__ReadRequest *req = prometheus__read_request__unpack(NULL, ulen, (uint8_t *)raw);
    free(raw);
    if (!req) return strata_errf(err, STRATA_EINVAL, "protobuf: cannot decode ReadRequest");
    *streamed = false;
    for (size_t i = 0; i < req->n_accepted_response_types; i++) {
        int t = (int)req->accepted_response_types[i];
        if (t == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES) break;
        if (t == PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS) {
            *streamed = true;
            break;
        }
    }
    read_ctx rc = {.s = s, .err = err};
    arena_init(&rc.mem, 64 * 1024);
    int r = *streamed ? read_streamed(&rc, req, out) : read_samples(&rc, req, out);
    arena_free(&rc.mem);
    prometheus__read_request__free_unpacked(req, NULL);
    return r;
}
