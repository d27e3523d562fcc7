/*
 * remote_read.c: Prometheus remote read (POST /api/v1/read), so a Prometheus can use Strata as
 * its long-term storage.
 *
 * The request is a snappy-compressed ReadRequest; each query's matchers and inclusive time range
 * go through the same querier as PromQL. The answer is the first response type in the client's
 * list that Strata knows: SAMPLES (one snappy-compressed ReadResponse; native histograms as
 * Histogram messages) or STREAMED_XOR_CHUNKS (frames of uvarint length, big-endian CRC-32C and
 * one ChunkedReadResponse holding one series' chunks: XOR for floats, HISTOGRAM or
 * FLOAT_HISTOGRAM for native histograms, in start-time order). This is not the ingest hot path,
 * so messages are built with protobuf-c.
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
    strata_sample *fs; /* float samples of the current series (grown by series_set_read) */
    size_t fs_cap;
} read_ctx;

/* The i-th series of the set: floats into rc->fs, histograms from rc->mem. 1 when it has either
 * in range, 0 when not, or an error. */
static int read_series(read_ctx *rc, series_set *set, size_t i, const label **ls, size_t *nl,
                       size_t *nf, hist_sample **hs, size_t *nh)
{
    int r = series_set_read(set, i, ls, nl, &rc->fs, &rc->fs_cap, nf);
    if (r < 0) return strata_errf(rc->err, STRATA_ECORRUPT, "corrupt chunk in storage");
    int h = series_set_read_histograms(set, i, &rc->mem, hs, nh);
    if (h < 0)
        return h == STRATA_ENOMEM
                   ? h
                   : strata_errf(rc->err, STRATA_ECORRUPT, "corrupt chunk in storage");
    return *nf || *nh;
}

static int compile_query(read_ctx *rc, const Prometheus__Query *q, matcher ***out, size_t *n)
{
    matcher **ms = arena_alloc(&rc->mem, (q->n_matchers + 1) * sizeof *ms);
    if (!ms) return STRATA_ENOMEM;
    for (size_t i = 0; i < q->n_matchers; i++) {
        const Prometheus__LabelMatcher *m = q->matchers[i];
        if ((int)m->type < 0 || m->type > 3) {
            for (size_t k = 0; k < i; k++)
                matcher_free(ms[k]);
            return strata_errf(rc->err, STRATA_EINVAL, "unknown matcher type %d", (int)m->type);
        }
        int r = matcher_new((strata_match_type)m->type, m->name, strlen(m->name), m->value,
                            strlen(m->value), &ms[i], rc->err);
        if (r) {
            for (size_t k = 0; k < i; k++)
                matcher_free(ms[k]);
            return r;
        }
    }
    *out = ms;
    *n = q->n_matchers;
    return 0;
}

static void free_matchers(matcher **ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        matcher_free(ms[i]);
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
        r = db_select(rc->s->db, (const matcher *const *)ms, nm,
                      req->queries[qi]->start_timestamp_ms, req->queries[qi]->end_timestamp_ms,
                      &set, rc->err);
        free_matchers(ms, nm);
        if (r) break;
        size_t cap = 0;
        const label *ls;
        size_t nl, ns, nh;
        hist_sample *hs;
        for (size_t si = 0; si < series_set_count(set) && !r; si++) {
            int has = read_series(rc, set, si, &ls, &nl, &ns, &hs, &nh);
            if (has < 0) {
                r = has;
                break;
            }
            if (!has) continue;
            const strata_sample *ss = rc->fs;
            if ((r = count_limit(rc, ns + nh))) break;
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
            Prometheus__Histogram **hv = arena_alloc(&rc->mem, (nh + 1) * sizeof *hv);
            if (!ts || !sv || !smp || !hv) {
                r = STRATA_ENOMEM;
                break;
            }
            for (size_t k = 0; k < nh && !r; k++)
                if (!(hv[k] = ingest_rw_histogram_pb(&rc->mem, &hs[k]))) r = STRATA_ENOMEM;
            if (r) break;
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
            ts->histograms = hv;
            ts->n_histograms = nh;
            qr->timeseries[qr->n_timeseries++] = ts;
        }
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

/* Chunks of one series being built: the appenders own the bytes until the frame is written. */
typedef struct chunk_list {
    Prometheus__Chunk *v;
    size_t n, cap;
    xor_appender *xa;
    hist_appender *ha;
    size_t nx, nha;
} chunk_list;

static Prometheus__Chunk *chunk_add(read_ctx *rc, chunk_list *cl)
{
    if (cl->n == cl->cap) {
        size_t ncap = cl->cap ? cl->cap * 2 : 8;
        Prometheus__Chunk *nv = arena_alloc(&rc->mem, ncap * sizeof *nv);
        if (!nv) return NULL;
        if (cl->n) memcpy(nv, cl->v, cl->n * sizeof *nv);
        cl->v = nv;
        cl->cap = ncap;
    }
    Prometheus__Chunk *c = &cl->v[cl->n++];
    prometheus__chunk__init(c);
    return c;
}

/* The histograms re-encoded as histogram chunks of up to 120 samples, cut where the appender
 * says (layout change, counter reset) with the header Prometheus would write. */
static int hist_chunks(read_ctx *rc, chunk_list *cl, const hist_sample *hs, size_t nh)
{
    cl->ha = calloc(nh + 1, sizeof *cl->ha);
    if (!cl->ha) return STRATA_ENOMEM;
    size_t start = 0;
    for (size_t i = 0; i < nh; i++) {
        chunk_encoding enc = hs[i].h.is_int ? CHUNK_ENC_HISTOGRAM : CHUNK_ENC_FLOAT_HISTOGRAM;
        hist_appender *a = cl->nha ? &cl->ha[cl->nha - 1] : NULL;
        uint8_t header = HIST_CHUNK_UNKNOWN;
        /* A layout change cuts here (answer 2) instead of recoding: a reply is built once. */
        bool cut = !a || a->enc != enc || hist_appender_fits(a, &hs[i].h, &header) != 1;
        if (!cut && i - start >= 120) {
            cut = true;
            header =
                hs[i].h.reset_hint == HIST_HINT_GAUGE ? HIST_CHUNK_GAUGE : HIST_CHUNK_NOT_RESET;
        }
        if (cut) {
            a = &cl->ha[cl->nha++];
            int r = hist_appender_init(a, enc);
            if (r) return r;
            start = i;
        }
        int r = hist_append(a, hs[i].t, &hs[i].h);
        if (r) return r;
        if (cut && a == &cl->ha[cl->nha - 1] && hs[i].h.reset_hint != HIST_HINT_RESET &&
            hs[i].h.reset_hint != HIST_HINT_GAUGE && cl->nha > 1)
            hist_appender_set_header(a, header);
        Prometheus__Chunk *c = cut ? chunk_add(rc, cl) : &cl->v[cl->n - 1];
        if (!c) return STRATA_ENOMEM;
        if (cut) {
            c->min_time_ms = hs[i].t;
            c->type = enc == CHUNK_ENC_HISTOGRAM ? PROMETHEUS__CHUNK__ENCODING__HISTOGRAM
                                                 : PROMETHEUS__CHUNK__ENCODING__FLOAT_HISTOGRAM;
        }
        c->max_time_ms = hs[i].t;
    }
    return 0;
}

static int cmp_chunk_start(const void *a, const void *b)
{
    const Prometheus__Chunk *x = a, *y = b;
    return (x->min_time_ms > y->min_time_ms) - (x->min_time_ms < y->min_time_ms);
}

/* One frame with the whole series: XOR chunks for its floats, histogram chunks for its native
 * histograms, in start-time order. */
static int stream_series(read_ctx *rc, size_t qi, const label *ls, size_t nl,
                         const strata_sample *ss, size_t ns, const hist_sample *hs, size_t nh,
                         buf *out)
{
    chunk_list cl = {0};
    int r = 0;
    size_t nchunks = (ns + 119) / 120;
    cl.xa = calloc(nchunks + 1, sizeof *cl.xa);
    if (!cl.xa) return STRATA_ENOMEM;
    for (size_t c = 0; c < nchunks && !r; c++) {
        size_t from = c * 120, to = from + 120 < ns ? from + 120 : ns;
        if ((r = xor_appender_init(&cl.xa[c]))) break;
        cl.nx++;
        for (size_t i = from; i < to && !r; i++)
            r = xor_append(&cl.xa[c], ss[i].t, ss[i].v);
        Prometheus__Chunk *ch = r ? NULL : chunk_add(rc, &cl);
        if (!ch) {
            r = r ? r : STRATA_ENOMEM;
            break;
        }
        ch->min_time_ms = ss[from].t;
        ch->max_time_ms = ss[to - 1].t;
        ch->type = PROMETHEUS__CHUNK__ENCODING__XOR;
    }
    size_t n_float_chunks = cl.n;
    if (!r && nh) r = hist_chunks(rc, &cl, hs, nh);
    if (!r) {
        /* The bytes, now that every appender is final. */
        for (size_t c = 0; c < n_float_chunks; c++) {
            size_t len;
            cl.v[c].data.data = (uint8_t *)xor_appender_bytes(&cl.xa[c], &len);
            cl.v[c].data.len = len;
        }
        for (size_t c = 0; c < cl.nha; c++) {
            size_t len;
            cl.v[n_float_chunks + c].data.data = (uint8_t *)hist_appender_bytes(&cl.ha[c], &len);
            cl.v[n_float_chunks + c].data.len = len;
        }
        qsort(cl.v, cl.n, sizeof *cl.v, cmp_chunk_start);
        Prometheus__Chunk **cp = arena_alloc(&rc->mem, (cl.n + 1) * sizeof *cp);
        Prometheus__ChunkedSeries cs;
        prometheus__chunked_series__init(&cs);
        cs.labels = pb_labels(rc, ls, nl);
        cs.n_labels = nl;
        if (!cp || !cs.labels) r = STRATA_ENOMEM;
        for (size_t c = 0; !r && c < cl.n; c++)
            cp[c] = &cl.v[c];
        cs.chunks = cp;
        cs.n_chunks = cl.n;
        if (!r) {
            Prometheus__ChunkedSeries *one = &cs;
            Prometheus__ChunkedReadResponse msg;
            prometheus__chunked_read_response__init(&msg);
            msg.chunked_series = &one;
            msg.n_chunked_series = 1;
            msg.query_index = (int64_t)qi;
            r = put_frame(out, &msg);
        }
    }
    for (size_t c = 0; c < cl.nx; c++)
        xor_appender_free(&cl.xa[c]);
    for (size_t c = 0; c < cl.nha; c++)
        hist_appender_free(&cl.ha[c]);
    free(cl.xa);
    free(cl.ha);
    return r;
}

/* STREAMED_XOR_CHUNKS: each series re-encoded as chunks of up to 120 samples. */
static int read_streamed(read_ctx *rc, const Prometheus__ReadRequest *req, buf *out)
{
    int r = 0;
    for (size_t qi = 0; qi < req->n_queries && !r; qi++) {
        matcher **ms;
        size_t nm;
        if ((r = compile_query(rc, req->queries[qi], &ms, &nm))) break;
        series_set *set;
        r = db_select(rc->s->db, (const matcher *const *)ms, nm,
                      req->queries[qi]->start_timestamp_ms, req->queries[qi]->end_timestamp_ms,
                      &set, rc->err);
        free_matchers(ms, nm);
        if (r) break;
        const label *ls;
        size_t nl, ns, nh;
        hist_sample *hs;
        for (size_t si = 0; si < series_set_count(set) && !r; si++) {
            int has = read_series(rc, set, si, &ls, &nl, &ns, &hs, &nh);
            if (has < 0) {
                r = has;
                break;
            }
            if (!has) continue;
            if ((r = count_limit(rc, ns + nh))) break;
            r = stream_series(rc, qi, ls, nl, rc->fs, ns, hs, nh, out);
        }
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
    free(rc.fs);
    prometheus__read_request__free_unpacked(req, NULL);
    return r;
}
