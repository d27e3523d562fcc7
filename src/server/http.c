/*
 * http.c: the HTTP server on libmicrohttpd and the Prometheus HTTP API on top of it.
 *
 * libmicrohttpd runs a pool of worker threads with epoll; each request's body is gathered into a
 * per-connection buffer, then one handler runs to completion and queues a response. Handlers are
 * small functions from (request, parameters) to (status, body) so the API reads like Prometheus'
 * route table: /api/v1/write, query, query_range, series, labels, label/<name>/values, /metrics,
 * /-/healthy, /-/ready. Error bodies follow Prometheus' JSON shape
 * {"status":"error","errorType":"bad_data","error":"..."} with its status codes: 400 for bad
 * input, 422 for execution errors, 503 for timeouts, 500 for internal errors.
 */
#include "server/server_internal.h"

#include "ingest/ingest.h"
#include "query/query.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void server_config_init(server_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1:9090";
    c->self_scrape_interval_ms = 15000;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = n > 0 ? (unsigned)n : 2;
    c->lookback_ms = 5 * 60 * 1000;
    c->query_timeout_ms = 2 * 60 * 1000;
    c->query_max_samples = 50000000;
    c->max_request_bytes = 64u << 20;
    c->max_concurrent_queries = 20;
}

/* ---- request state -------------------------------------------------------------------------- */

typedef struct param {
    char *key;
    char *value;
} param;

typedef struct request {
    buf body;
    bool too_large;
    param *params;
    size_t n_params;
    size_t cap_params;
    uint64_t start_ns;
} request;

static int add_param(request *r, const char *k, size_t kl, const char *v, size_t vl)
{
    if (r->n_params == r->cap_params) {
        size_t nc = r->cap_params ? r->cap_params * 2 : 8;
        param *p = realloc(r->params, nc * sizeof *p);
        if (!p) return STRATA_ENOMEM;
        r->params = p;
        r->cap_params = nc;
    }
    r->params[r->n_params].key = strndup(k, kl);
    r->params[r->n_params].value = strndup(v, vl);
    if (!r->params[r->n_params].key || !r->params[r->n_params].value) {
        free(r->params[r->n_params].key);
        free(r->params[r->n_params].value);
        return STRATA_ENOMEM;
    }
    r->n_params++;
    return 0;
}

static const char *get_param(const request *r, const char *k)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].key, k) == 0) return r->params[i].value;
    return NULL;
}

static void request_free(request *r)
{
    buf_free(&r->body);
    for (size_t i = 0; i < r->n_params; i++) {
        free(r->params[i].key);
        free(r->params[i].value);
    }
    free(r->params);
    free(r);
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    request *r = cls;
    if (key) add_param(r, key, strlen(key), value ? value : "", value ? strlen(value) : 0);
    return MHD_YES;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text in place; returns the new length. */
static size_t url_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

static int parse_form(request *r)
{
    char *s = (char *)r->body.data;
    size_t n = r->body.len;
    size_t i = 0;
    while (i < n) {
        size_t amp = i;
        while (amp < n && s[amp] != '&') amp++;
        size_t eq = i;
        while (eq < amp && s[eq] != '=') eq++;
        size_t kl = url_decode(s + i, eq - i);
        size_t vl = eq < amp ? url_decode(s + eq + 1, amp - eq - 1) : 0;
        if (kl && add_param(r, s + i, kl, eq < amp ? s + eq + 1 : "", vl)) return STRATA_ENOMEM;
        i = amp + 1;
    }
    return 0;
}

/* ---- responses ------------------------------------------------------------------------------ */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *ctype,
                               buf *body)
{
    struct MHD_Response *resp;
    if (body->len) {
        resp = MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_FREE);
        body->data = NULL;
        body->len = body->cap = 0;
    } else {
        buf_free(body);
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

void json_escape(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = 0;
            esc = u;
        }
        if (!esc) continue;
        buf_append(b, s + run, i - run);
        buf_append(b, esc, strlen(esc));
        run = i + 1;
    }
    buf_append(b, s + run, n - run);
    buf_putc(b, '"');
}

static const char *error_type(int code)
{
    switch (code) {
    case STRATA_EPARSE:
    case STRATA_EINVAL: return "bad_data";
    case STRATA_ETIMEOUT: return "timeout";
    case STRATA_EEXEC:
    case STRATA_ELIMIT:
    case STRATA_EUNSUPPORTED: return "execution";
    case STRATA_ECLOSED: return "unavailable";
    default: return "internal";
    }
}

static unsigned error_status(int code)
{
    switch (code) {
    case STRATA_EPARSE:
    case STRATA_EINVAL: return 400;
    case STRATA_ETIMEOUT: return 503;
    case STRATA_EEXEC:
    case STRATA_ELIMIT:
    case STRATA_EUNSUPPORTED: return 422;
    case STRATA_ECLOSED: return 503;
    default: return 500;
    }
}

static enum MHD_Result api_error(server *s, struct MHD_Connection *c, int handler, int code,
                                 const char *msg)
{
    buf b = {0};
    buf_printf(&b, "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":", error_type(code));
    json_escape(&b, msg, strlen(msg));
    buf_putc(&b, '}');
    unsigned st = error_status(code);
    server_count_request(s, handler, st);
    return respond(c, st, "application/json", &b);
}

static enum MHD_Result api_success(server *s, struct MHD_Connection *c, int handler, buf *data)
{
    buf b = {0};
    buf_reserve(&b, data->len + 32);
    buf_append(&b, "{\"status\":\"success\",\"data\":", 27);
    buf_append(&b, data->data, data->len);
    buf_putc(&b, '}');
    buf_free(data);
    server_count_request(s, handler, 200);
    return respond(c, 200, "application/json", &b);
}

static enum MHD_Result text_response(server *s, struct MHD_Connection *c, int handler,
                                     unsigned status, const char *text)
{
    buf b = {0};
    buf_append(&b, text, strlen(text));
    server_count_request(s, handler, status);
    return respond(c, status, "text/plain; charset=utf-8", &b);
}

/* ---- parameters ------------------------------------------------------------------------------ */

static int param_time(const request *r, const char *name, int64_t def, int64_t *out, char *err)
{
    const char *v = get_param(r, name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    int rc = api_time_parse(v, out, err);
    if (rc) strata_err_prefix(err, "invalid parameter \"%s\": ", name);
    return rc;
}

static int param_duration(const request *r, const char *name, int64_t *out, char *err)
{
    const char *v = get_param(r, name);
    if (!v || !*v) return strata_errf(err, STRATA_EINVAL, "invalid parameter \"%s\": missing", name);
    char *end;
    double sec = strtod(v, &end);
    if (*end == '\0') {
        if (!(sec * 1000 <= (double)INT64_MAX && sec * 1000 >= (double)INT64_MIN))
            return strata_errf(err, STRATA_EINVAL,
                               "invalid parameter \"%s\": cannot parse \"%s\" to a valid duration. "
                               "It overflows int64",
                               name, v);
        *out = (int64_t)(sec * 1000.0 + (sec >= 0 ? 0.5 : -0.5));
        return 0;
    }
    int rc = duration_parse(v, strlen(v), out, err);
    if (rc)
        return strata_errf(err, STRATA_EINVAL,
                           "invalid parameter \"%s\": cannot parse \"%s\" to a valid duration", name,
                           v);
    return 0;
}

/* The match[] selectors of a request, compiled; *n is the number of selectors. */
typedef struct selector_list {
    matcher **ms[64];
    size_t counts[64];
    size_t n;
} selector_list;

static void selectors_free(selector_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        for (size_t k = 0; k < l->counts[i]; k++) matcher_free(l->ms[i][k]);
        free(l->ms[i]);
    }
    l->n = 0;
}

static int parse_selectors(const request *r, selector_list *l, char *err)
{
    l->n = 0;
    for (size_t i = 0; i < r->n_params; i++) {
        if (strcmp(r->params[i].key, "match[]") != 0) continue;
        if (l->n == 64) {
            selectors_free(l);
            return strata_errf(err, STRATA_EINVAL, "too many match[] parameters (at most 64)");
        }
        int rc = promql_parse_selector(r->params[i].value, &l->ms[l->n], &l->counts[l->n], err);
        if (rc) {
            selectors_free(l);
            strata_err_prefix(err, "invalid parameter \"match[]\": ");
            return STRATA_EINVAL;
        }
        l->n++;
    }
    return 0;
}

/* ---- handlers ------------------------------------------------------------------------------- */

#define MIN_TIME (INT64_MIN / 4)
#define MAX_TIME (INT64_MAX / 4)

/* Remote write 2.0 answers carry what was written in headers, on success and on partial
 * failure alike, so the sender can tell a partial write from a lost one. */
static enum MHD_Result respond_rw2(server *s, struct MHD_Connection *c, int rc,
                                   const ingest_rw_result *res, const char *err)
{
    unsigned status = rc == 0 ? 204 : res->http_status >= 400 ? (unsigned)res->http_status : 500;
    if (rc) counter_add(&s->m.rw_rejected_requests, 1);
    server_count_request(s, H_WRITE, status);
    struct MHD_Response *resp;
    if (rc) {
        size_t n = strlen(err);
        char *copy = malloc(n + 2);
        if (!copy) return MHD_NO;
        memcpy(copy, err, n);
        copy[n] = '\n';
        copy[n + 1] = '\0';
        resp = MHD_create_response_from_buffer(n + 1, copy, MHD_RESPMEM_MUST_FREE);
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    char num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)res->write.samples_written);
    MHD_add_response_header(resp, "X-Prometheus-Remote-Write-Samples-Written", num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)res->write.histograms_written);
    MHD_add_response_header(resp, "X-Prometheus-Remote-Write-Histograms-Written", num);
    /* Duplicates count as written, as Prometheus' appender accepts them silently. */
    char ex_num[32];
    snprintf(ex_num, sizeof ex_num, "%llu",
             (unsigned long long)(res->exemplars.written + res->exemplars.duplicate));
    MHD_add_response_header(resp, "X-Prometheus-Remote-Write-Exemplars-Written", ex_num);
    if (rc) MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle_write(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    ingest_scratch *scratch = server_scratch_get(s);
    if (!scratch) return text_response(s, c, H_WRITE, 500, "out of memory\n");
    ingest_rw_result res;
    write_reject rej;
    int rc = ingest_remote_write(s->db, r->body.data, r->body.len, enc, ctype, scratch, &res, &rej,
                                 err);
    server_scratch_put(s, scratch);
    counter_add(&s->m.rw_samples, res.write.samples_written);
    counter_add(&s->m.rw_requests, 1);
    if (res.version == 2) return respond_rw2(s, c, rc, &res, err);
    if (rc == 0) {
        server_count_request(s, H_WRITE, 204);
        buf empty = {0};
        return respond(c, 204, NULL, &empty);
    }
    counter_add(&s->m.rw_rejected_requests, 1);
    unsigned status = res.http_status >= 400 ? (unsigned)res.http_status : 500;
    buf b = {0};
    buf_printf(&b, "%s\n", err);
    server_count_request(s, H_WRITE, status);
    return respond(c, status, "text/plain; charset=utf-8", &b);
}

static int query_slot_acquire(server *s, char *err);
static void query_slot_release(server *s);

/* POST /v1/metrics: OTLP/HTTP metrics export, protobuf or JSON, optionally gzipped. */
static enum MHD_Result handle_otlp(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const char *enc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    otlp_result res;
    int rc = otlp_http_metrics(s->db, r->body.data, r->body.len, ctype, enc, &res, err);
    counter_add(&s->m.otlp_requests, 1);
    counter_add(&s->m.otlp_samples, res.write.samples_written);
    counter_add(&s->m.otlp_rejected_points, res.rejected_points);
    uint8_t *body = NULL;
    size_t len = 0;
    const char *rtype = "text/plain; charset=utf-8";
    if (otlp_http_response(&res, ctype, &body, &len, &rtype)) return MHD_NO;
    unsigned status = res.http_status ? (unsigned)res.http_status : (rc ? 500 : 200);
    server_count_request(s, H_OTHER, status);
    struct MHD_Response *resp =
        len ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
            : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!len) free(body);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", rtype);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle_read(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    buf out = {0};
    bool streamed = false;
    int rc = query_slot_acquire(s, err);
    if (!rc) {
        rc = remote_read_handle(s, r->body.data, r->body.len, &out, &streamed, err);
        query_slot_release(s);
    }
    if (rc) {
        buf_free(&out);
        unsigned status = rc == STRATA_EINVAL || rc == STRATA_ELIMIT ? 400 : rc == STRATA_ETIMEOUT ? 503 : 500;
        buf b = {0};
        buf_printf(&b, "%s\n", err[0] ? err : "remote read failed");
        server_count_request(s, H_READ, status);
        return respond(c, status, "text/plain; charset=utf-8", &b);
    }
    server_count_request(s, H_READ, 200);
    struct MHD_Response *resp;
    size_t len = out.len;
    if (len) {
        resp = MHD_create_response_from_buffer(len, out.data, MHD_RESPMEM_MUST_FREE);
    } else {
        buf_free(&out);
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) return MHD_NO;
    if (streamed) {
        MHD_add_response_header(resp, "Content-Type",
                                "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse");
    } else {
        MHD_add_response_header(resp, "Content-Type", "application/x-protobuf");
        MHD_add_response_header(resp, "Content-Encoding", "snappy");
    }
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void fill_query_options(server *s, const request *r, promql_options *o)
{
    promql_options_init(o);
    o->lookback_ms = s->cfg.lookback_ms;
    o->max_samples = s->cfg.query_max_samples;
    o->delayed_name_removal = s->cfg.delayed_name_removal;
    o->timeout_ms = s->cfg.query_timeout_ms;
    int64_t t;
    char err[STRATA_ERRMSG_SIZE];
    const char *tv = get_param(r, "timeout");
    if (tv && *tv && param_duration(r, "timeout", &t, err) == 0 && t > 0 && t < o->timeout_ms)
        o->timeout_ms = t;
    const char *lb = get_param(r, "lookback_delta");
    if (lb && *lb && param_duration(r, "lookback_delta", &t, err) == 0 && t > 0) o->lookback_ms = t;
}

static bool wants_explain(const request *r)
{
    const char *v = get_param(r, "explain");
    return v && (!strcmp(v, "1") || !strcmp(v, "true"));
}

/* explain=1: the plan instead of the result, as {"plan": "..."}. */
static enum MHD_Result explain(server *s, struct MHD_Connection *c, int handler, const char *q,
                               int64_t start, int64_t end, int64_t step, const promql_options *o)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    buf plan = {0}, data = {0};
    int rc = promql_explain(s->db, q, start, end, step, o, &plan, err);
    if (rc) {
        buf_free(&plan);
        return api_error(s, c, handler, rc, err);
    }
    buf_append(&data, "{\"plan\":", 8);
    json_escape(&data, (const char *)plan.data, plan.len);
    buf_putc(&data, '}');
    buf_free(&plan);
    return api_success(s, c, handler, &data);
}

/* At most cfg.max_concurrent_queries run at once; others wait up to the query timeout. */
static int query_slot_acquire(server *s, char *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ms = s->cfg.query_timeout_ms;
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->query_mu);
    while (s->queries_running >= s->cfg.max_concurrent_queries) {
        if (pthread_cond_timedwait(&s->query_cv, &s->query_mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&s->query_mu);
            return strata_errf(err, STRATA_ETIMEOUT,
                               "query timed out waiting for one of the %u query slots "
                               "(--query-max-concurrency)",
                               s->cfg.max_concurrent_queries);
        }
    }
    s->queries_running++;
    pthread_mutex_unlock(&s->query_mu);
    return 0;
}

static void query_slot_release(server *s)
{
    pthread_mutex_lock(&s->query_mu);
    s->queries_running--;
    pthread_cond_signal(&s->query_cv);
    pthread_mutex_unlock(&s->query_mu);
}

static enum MHD_Result handle_query(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    const char *q = get_param(r, "query");
    if (!q) return api_error(s, c, H_QUERY, STRATA_EINVAL, "invalid parameter \"query\": missing");
    int64_t t;
    if (param_time(r, "time", clock_now_ms(), &t, err))
        return api_error(s, c, H_QUERY, STRATA_EINVAL, err);
    promql_options o;
    fill_query_options(s, r, &o);
    buf data = {0};
    if (wants_explain(r)) return explain(s, c, H_QUERY, q, t, t, 0, &o);
    int rc = query_slot_acquire(s, err);
    if (!rc) {
        rc = promql_exec_instant(s->db, q, t, &o, &data, err);
        query_slot_release(s);
    }
    if (rc) {
        buf_free(&data);
        return api_error(s, c, H_QUERY, rc, err);
    }
    return api_success(s, c, H_QUERY, &data);
}

static enum MHD_Result handle_query_range(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    const char *q = get_param(r, "query");
    if (!q)
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL, "invalid parameter \"query\": missing");
    int64_t start, end, step;
    if (!get_param(r, "start"))
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL, "invalid parameter \"start\": missing");
    if (!get_param(r, "end"))
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL, "invalid parameter \"end\": missing");
    if (param_time(r, "start", 0, &start, err) || param_time(r, "end", 0, &end, err))
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL, err);
    if (end < start)
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL,
                         "invalid parameter \"end\": end timestamp must not be before start time");
    if (param_duration(r, "step", &step, err))
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL, err);
    if (step <= 0)
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL,
                         "invalid parameter \"step\": zero or negative query resolution step "
                         "widths are not accepted. Try a positive integer");
    if ((end - start) / step > 11000)
        return api_error(s, c, H_QUERY_RANGE, STRATA_EINVAL,
                         "exceeded maximum resolution of 11,000 points per timeseries. Try "
                         "decreasing the query resolution (?step=XX)");
    promql_options o;
    fill_query_options(s, r, &o);
    buf data = {0};
    if (wants_explain(r)) return explain(s, c, H_QUERY_RANGE, q, start, end, step, &o);
    int rc = query_slot_acquire(s, err);
    if (!rc) {
        rc = promql_exec_range(s->db, q, start, end, step, &o, &data, err);
        query_slot_release(s);
    }
    if (rc) {
        buf_free(&data);
        return api_error(s, c, H_QUERY_RANGE, rc, err);
    }
    return api_success(s, c, H_QUERY_RANGE, &data);
}

/* /api/v1/query_exemplars: see exemplars_api.c. */
static enum MHD_Result handle_query_exemplars(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    const char *q = get_param(r, "query");
    if (!q) return api_error(s, c, H_OTHER, STRATA_EINVAL, "invalid parameter \"query\": missing");
    int64_t start, end;
    if (param_time(r, "start", MIN_TIME, &start, err) || param_time(r, "end", MAX_TIME, &end, err))
        return api_error(s, c, H_OTHER, STRATA_EINVAL, err);
    if (end < start)
        return api_error(s, c, H_OTHER, STRATA_EINVAL,
                         "end timestamp must not be before start time");
    buf data = {0};
    int rc = exemplars_api_query(s->db, q, start, end, &data, err);
    if (rc) {
        buf_free(&data);
        if (rc == STRATA_EPARSE) strata_err_prefix(err, "invalid parameter \"query\": ");
        return api_error(s, c, H_OTHER, rc, err);
    }
    return api_success(s, c, H_OTHER, &data);
}

static void json_labels(buf *b, const label *ls, size_t n)
{
    buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        json_escape(b, ls[i].name, ls[i].name_len);
        buf_putc(b, ':');
        json_escape(b, ls[i].value, ls[i].value_len);
    }
    buf_putc(b, '}');
}

static enum MHD_Result handle_series(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    int64_t start, end;
    if (param_time(r, "start", MIN_TIME, &start, err) || param_time(r, "end", MAX_TIME, &end, err))
        return api_error(s, c, H_SERIES, STRATA_EINVAL, err);
    selector_list sel;
    if (parse_selectors(r, &sel, err)) return api_error(s, c, H_SERIES, STRATA_EINVAL, err);
    if (sel.n == 0) return api_error(s, c, H_SERIES, STRATA_EINVAL, "no match[] parameter provided");
    /* Several selectors: the union, each series once, in label order. Collect the series of each
     * selector, then merge by sorting on labels and dropping repeats. */
    typedef struct {
        const label *ls;
        size_t n;
    } lset;
    lset *all = NULL;
    size_t n_all = 0, cap = 0;
    series_set *sets[64];
    size_t n_sets = 0;
    int rc = 0;
    for (size_t i = 0; i < sel.n && !rc; i++) {
        rc = db_select_labels_only(s->db, (const matcher *const *)sel.ms[i], sel.counts[i], start,
                                   end, &sets[n_sets], err);
        if (rc) break;
        series_set *set = sets[n_sets++];
        const label *ls;
        size_t nl;
        while (series_set_next(set, &ls, &nl, NULL, NULL) == 1) {
            if (n_all == cap) {
                cap = cap ? cap * 2 : 64;
                lset *na = realloc(all, cap * sizeof *na);
                if (!na) {
                    rc = STRATA_ENOMEM;
                    break;
                }
                all = na;
            }
            all[n_all++] = (lset){ls, nl};
        }
    }
    size_t n_selectors = sel.n;
    selectors_free(&sel);
    buf data = {0};
    if (!rc) {
        /* One selector's series come sorted; the union of several is sorted here. */
        for (size_t i = 1; n_selectors > 1 && i < n_all; i++) {
            lset x = all[i];
            size_t j = i;
            while (j > 0 && labels_compare(all[j - 1].ls, all[j - 1].n, x.ls, x.n) > 0) {
                all[j] = all[j - 1];
                j--;
            }
            all[j] = x;
        }
        buf_putc(&data, '[');
        size_t written = 0;
        for (size_t i = 0; i < n_all; i++) {
            if (i && labels_equal(all[i - 1].ls, all[i - 1].n, all[i].ls, all[i].n)) continue;
            if (written++) buf_putc(&data, ',');
            json_labels(&data, all[i].ls, all[i].n);
        }
        buf_putc(&data, ']');
    }
    for (size_t i = 0; i < n_sets; i++) series_set_free(sets[i]);
    free(all);
    if (rc) {
        buf_free(&data);
        return api_error(s, c, H_SERIES, rc, err[0] ? err : "out of memory");
    }
    return api_success(s, c, H_SERIES, &data);
}

static void json_string_array(buf *b, char **v, size_t n)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        json_escape(b, v[i], strlen(v[i]));
    }
    buf_putc(b, ']');
}

/* Label names or values across the union of the match[] selectors (all series without any). */
static enum MHD_Result handle_labels(server *s, struct MHD_Connection *c, request *r,
                                     const char *name, int handler)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    int64_t start, end;
    if (param_time(r, "start", MIN_TIME, &start, err) || param_time(r, "end", MAX_TIME, &end, err))
        return api_error(s, c, handler, STRATA_EINVAL, err);
    selector_list sel;
    if (parse_selectors(r, &sel, err)) return api_error(s, c, handler, STRATA_EINVAL, err);
    char **acc = NULL;
    size_t n_acc = 0;
    int rc = 0;
    for (size_t i = 0; i < (sel.n ? sel.n : 1) && !rc; i++) {
        char **v;
        size_t n;
        const matcher *const *ms = sel.n ? (const matcher *const *)sel.ms[i] : NULL;
        size_t nm = sel.n ? sel.counts[i] : 0;
        rc = name ? db_label_values(s->db, name, ms, nm, start, end, &v, &n, err)
                  : db_label_names(s->db, ms, nm, start, end, &v, &n, err);
        if (rc) break;
        char **na = realloc(acc, (n_acc + n + 1) * sizeof *na);
        if (!na) {
            db_strings_free(v, n);
            rc = STRATA_ENOMEM;
            break;
        }
        acc = na;
        memcpy(acc + n_acc, v, n * sizeof *v);
        n_acc += n;
        free(v);
    }
    selectors_free(&sel);
    buf data = {0};
    if (!rc) {
        /* Sort and drop repeats across selectors. */
        for (size_t i = 1; i < n_acc; i++) {
            char *x = acc[i];
            size_t j = i;
            while (j > 0 && strcmp(acc[j - 1], x) > 0) {
                acc[j] = acc[j - 1];
                j--;
            }
            acc[j] = x;
        }
        size_t k = 0;
        for (size_t i = 0; i < n_acc; i++) {
            if (k && strcmp(acc[k - 1], acc[i]) == 0) {
                free(acc[i]);
                continue;
            }
            acc[k++] = acc[i];
        }
        n_acc = k;
        json_string_array(&data, acc, n_acc);
    }
    db_strings_free(acc, n_acc);
    if (rc) {
        buf_free(&data);
        return api_error(s, c, handler, rc, err[0] ? err : "out of memory");
    }
    return api_success(s, c, handler, &data);
}

static enum MHD_Result handle_metrics(server *s, struct MHD_Connection *c)
{
    buf b = {0};
    metrics_text t;
    metrics_sink sink = metrics_text_sink(&t, &b);
    server_collect_metrics(s, &sink);
    server_count_request(s, H_METRICS, 200);
    return respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static void json_cards(buf *b, const char *key, const db_card *v, size_t n)
{
    buf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i) buf_putc(b, ',');
        buf_append(b, "{\"name\":", 8);
        json_escape(b, v[i].name, strlen(v[i].name));
        buf_printf(b, ",\"value\":%llu}", (unsigned long long)v[i].count);
    }
    buf_putc(b, ']');
}

/* /api/v1/status/tsdb: cardinality statistics in Prometheus' shape (limit= top entries, 10). */
static enum MHD_Result handle_tsdb_status(server *s, struct MHD_Connection *c, request *r)
{
    char err[STRATA_ERRMSG_SIZE] = "";
    const char *lim = get_param(r, "limit");
    long limit = lim ? strtol(lim, NULL, 10) : 10;
    if (limit <= 0 || limit > 10000)
        return api_error(s, c, H_OTHER, STRATA_EINVAL, "limit must be a positive number up to 10000");
    db_tsdb_status st;
    int rc = db_tsdb_status_get(s->db, (size_t)limit, &st, err);
    if (rc) return api_error(s, c, H_OTHER, rc, err);
    buf data = {0};
    buf_printf(&data,
               "{\"headStats\":{\"numSeries\":%llu,\"numLabelPairs\":%llu,\"chunkCount\":%llu,"
               "\"minTime\":%lld,\"maxTime\":%lld}",
               (unsigned long long)st.num_series, (unsigned long long)st.num_label_pairs,
               (unsigned long long)st.chunk_count, (long long)st.min_time, (long long)st.max_time);
    json_cards(&data, "seriesCountByMetricName", st.series_by_metric, st.n_series_by_metric);
    json_cards(&data, "labelValueCountByLabelName", st.values_by_label, st.n_values_by_label);
    json_cards(&data, "memoryInBytesByLabelName", st.bytes_by_label, st.n_bytes_by_label);
    json_cards(&data, "seriesCountByLabelValuePair", st.series_by_pair, st.n_series_by_pair);
    /* Strata's addition: the persistent blocks, oldest first. */
    block_info *bi = NULL;
    size_t nb = 0;
    db_blocks_list(s->db, &bi, &nb);
    buf_printf(&data, ",\"blocks\":[");
    for (size_t i = 0; i < nb; i++)
        buf_printf(&data,
                   "%s{\"ulid\":\"%s\",\"tier\":\"%s\",\"minTime\":%lld,\"maxTime\":%lld,"
                   "\"numSamples\":%llu,\"numSeries\":%llu,\"numChunks\":%llu,\"level\":%u,"
                   "\"bytes\":%llu}",
                   i ? "," : "", bi[i].ulid, bi[i].cold ? "cold" : "warm", (long long)bi[i].mint,
                   (long long)bi[i].maxt,
                   (unsigned long long)bi[i].num_samples, (unsigned long long)bi[i].num_series,
                   (unsigned long long)bi[i].num_chunks, bi[i].level,
                   (unsigned long long)bi[i].bytes);
    free(bi);
    buf_printf(&data, "]");
    /* Per tier: the head (its WAL on disk), warm blocks, cold blocks. */
    db_stats hs;
    db_get_stats(s->db, &hs);
    db_tier_stats tw, tc;
    db_tiers_stats(s->db, &tw, &tc);
    buf_printf(&data,
               ",\"tiers\":{\"head\":{\"series\":%llu,\"chunkBytes\":%llu,\"walBytes\":%llu,"
               "\"walSegments\":%llu}",
               (unsigned long long)hs.series, (unsigned long long)hs.head_chunk_bytes,
               (unsigned long long)hs.wal_bytes, (unsigned long long)hs.wal_segments);
    const db_tier_stats *tv[2] = {&tw, &tc};
    for (int t = 0; t < 2; t++)
        buf_printf(&data,
                   ",\"%s\":{\"blocks\":%llu,\"bytes\":%llu,\"samples\":%llu,\"series\":%llu,"
                   "\"chunks\":%llu}",
                   t ? "cold" : "warm", (unsigned long long)tv[t]->blocks,
                   (unsigned long long)tv[t]->bytes, (unsigned long long)tv[t]->samples,
                   (unsigned long long)tv[t]->series, (unsigned long long)tv[t]->chunks);
    buf_printf(&data, "}}");
    db_tsdb_status_free(&st);
    return api_success(s, c, H_OTHER, &data);
}

/* POST /api/v1/admin/tsdb/flush: the head into durable blocks; answers once they are on disk. */
static enum MHD_Result handle_flush(server *s, struct MHD_Connection *c, const char *method)
{
    if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0)
        return api_error(s, c, H_OTHER, STRATA_EINVAL, "method not allowed: use POST");
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = db_flush_head(s->db, err);
    if (rc) return api_error(s, c, H_OTHER, rc, err);
    buf data = {0};
    buf_printf(&data, "{}");
    return api_success(s, c, H_OTHER, &data);
}

/* POST /api/v1/admin/tsdb/delete_series (match[] required, start and end optional) and
 * clean_tombstones: 204 on success, as Prometheus answers. */
static enum MHD_Result no_content(server *s, struct MHD_Connection *c)
{
    buf empty = {0};
    server_count_request(s, H_OTHER, 204);
    return respond(c, 204, NULL, &empty);
}

static enum MHD_Result handle_delete_series(server *s, struct MHD_Connection *c, request *r,
                                            const char *method)
{
    if (strcmp(method, "POST") != 0)
        return api_error(s, c, H_OTHER, STRATA_EINVAL, "method not allowed: use POST");
    char err[STRATA_ERRMSG_SIZE] = "";
    int64_t start, end;
    if (param_time(r, "start", MIN_TIME, &start, err) || param_time(r, "end", MAX_TIME, &end, err))
        return api_error(s, c, H_OTHER, STRATA_EINVAL, err);
    selector_list sel;
    if (parse_selectors(r, &sel, err)) return api_error(s, c, H_OTHER, STRATA_EINVAL, err);
    if (sel.n == 0) return api_error(s, c, H_OTHER, STRATA_EINVAL, "no match[] parameter provided");
    int rc = 0;
    for (size_t i = 0; i < sel.n && !rc; i++)
        rc = db_delete_series(s->db, (const matcher *const *)sel.ms[i], sel.counts[i], start, end, err);
    selectors_free(&sel);
    if (rc) return api_error(s, c, H_OTHER, rc, err);
    return no_content(s, c);
}

static enum MHD_Result handle_clean_tombstones(server *s, struct MHD_Connection *c, const char *method)
{
    if (strcmp(method, "POST") != 0)
        return api_error(s, c, H_OTHER, STRATA_EINVAL, "method not allowed: use POST");
    char err[STRATA_ERRMSG_SIZE] = "";
    int rc = db_clean_tombstones(s->db, err);
    if (rc) return api_error(s, c, H_OTHER, rc, err);
    return no_content(s, c);
}

static enum MHD_Result handle_buildinfo(server *s, struct MHD_Connection *c)
{
    buf data = {0};
    buf_printf(&data,
               "{\"version\":\"%s\",\"revision\":\"\",\"branch\":\"\",\"buildUser\":\"\","
               "\"buildDate\":\"\",\"goVersion\":\"\"}",
               STRATA_VERSION);
    return api_success(s, c, H_OTHER, &data);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static bool is_get_or_post(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0;
}

static enum MHD_Result dispatch(server *s, struct MHD_Connection *c, const char *url,
                                const char *method, request *r)
{
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, r);
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    bool form = ctype && strncmp(ctype, "application/x-www-form-urlencoded", 33) == 0;
    if (strcmp(method, "POST") == 0 && form && strcmp(url, "/api/v1/write") != 0 &&
        strcmp(url, "/api/v1/read") != 0 && strcmp(url, "/v1/metrics") != 0) {
        if (parse_form(r)) return text_response(s, c, H_OTHER, 500, "out of memory\n");
    }
    if (strcmp(url, "/api/v1/write") == 0) {
        if (strcmp(method, "POST") != 0)
            return text_response(s, c, H_WRITE, 405, "method not allowed: use POST\n");
        return handle_write(s, c, r);
    }
    if (strcmp(url, "/v1/metrics") == 0) {
        if (strcmp(method, "POST") != 0)
            return text_response(s, c, H_OTHER, 405, "method not allowed: use POST\n");
        return handle_otlp(s, c, r);
    }
    if (strcmp(url, "/api/v1/read") == 0) {
        if (strcmp(method, "POST") != 0)
            return text_response(s, c, H_READ, 405, "method not allowed: use POST\n");
        return handle_read(s, c, r);
    }
    if (strncmp(url, "/api/v1/", 8) == 0 && !is_get_or_post(method))
        return api_error(s, c, H_OTHER, STRATA_EINVAL, "method not allowed");
    if (strcmp(url, "/api/v1/admin/tsdb/flush") == 0) return handle_flush(s, c, method);
    if (strcmp(url, "/api/v1/admin/tsdb/delete_series") == 0)
        return handle_delete_series(s, c, r, method);
    if (strcmp(url, "/api/v1/admin/tsdb/clean_tombstones") == 0)
        return handle_clean_tombstones(s, c, method);
    if (strcmp(url, "/api/v1/query") == 0) return handle_query(s, c, r);
    if (strcmp(url, "/api/v1/query_range") == 0) return handle_query_range(s, c, r);
    if (strcmp(url, "/api/v1/query_exemplars") == 0) return handle_query_exemplars(s, c, r);
    if (strcmp(url, "/api/v1/series") == 0) return handle_series(s, c, r);
    if (strcmp(url, "/api/v1/labels") == 0) return handle_labels(s, c, r, NULL, H_LABELS);
    if (strncmp(url, "/api/v1/label/", 14) == 0) {
        const char *name = url + 14;
        const char *slash = strchr(name, '/');
        if (slash && strcmp(slash, "/values") == 0) {
            char ln[512];
            size_t nl = (size_t)(slash - name);
            if (nl == 0 || nl >= sizeof ln)
                return api_error(s, c, H_LABEL_VALUES, STRATA_EINVAL, "invalid label name");
            memcpy(ln, name, nl);
            ln[nl] = '\0';
            /* Prometheus 3 accepts U__-escaped UTF-8 names here; plain names pass through. */
            if (!label_name_valid(ln, (uint32_t)nl, s->names))
                return api_error(s, c, H_LABEL_VALUES, STRATA_EINVAL,
                                 "invalid label name: \"label name is not valid\"");
            return handle_labels(s, c, r, ln, H_LABEL_VALUES);
        }
    }
    if (strcmp(url, "/api/v1/status/buildinfo") == 0) return handle_buildinfo(s, c);
    if (strcmp(url, "/api/v1/status/tsdb") == 0) return handle_tsdb_status(s, c, r);
    if (strcmp(url, "/metrics") == 0) return handle_metrics(s, c);
    if (strcmp(url, "/-/healthy") == 0) return text_response(s, c, H_HEALTH, 200, "Strata is Healthy.\n");
    if (strcmp(url, "/-/ready") == 0) return text_response(s, c, H_HEALTH, 200, "Strata is Ready.\n");
    if (strcmp(url, "/") == 0)
        return text_response(s, c, H_OTHER, 200,
                             "Strata " STRATA_VERSION ": see /api/v1/query, /metrics\n");
    return text_response(s, c, H_OTHER, 404, "404 page not found\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->start_ns = clock_mono_ns();
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->body.len + *upload_size > s->cfg.max_request_bytes) r->too_large = true;
        else if (buf_append(&r->body, upload, *upload_size)) r->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        buf b = {0};
        buf_printf(&b, "request body larger than %zu bytes\n", s->cfg.max_request_bytes);
        server_count_request(s, H_OTHER, 413);
        return respond(c, 413, "text/plain; charset=utf-8", &b);
    }
    return dispatch(s, c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    server *s = cls;
    request *r = *con_cls;
    if (!r) return;
    histogram_observe(&s->m.request_seconds, (double)(clock_mono_ns() - r->start_ns) / 1e9);
    request_free(r);
    *con_cls = NULL;
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, char *err)
{
    const char *colon = strrchr(listen, ':');
    if (!colon) return strata_errf(err, STRATA_EINVAL, "--listen \"%s\": expected HOST:PORT", listen);
    char host[256];
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) return strata_errf(err, STRATA_EINVAL, "--listen: host too long");
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    int g = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (g) return strata_errf(err, STRATA_EINVAL, "--listen \"%s\": %s", listen, gai_strerror(g));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int server_start(strata_db *db, const server_config *cfg, server **out, char *err)
{
    server *s = calloc(1, sizeof *s);
    if (!s) return STRATA_ENOMEM;
    s->db = db;
    s->cfg = *cfg;
    s->names = STRATA_NAMES_UTF8;
    pthread_mutex_init(&s->scratch_mu, NULL);
    pthread_mutex_init(&s->query_mu, NULL);
    pthread_cond_init(&s->query_cv, NULL);
    if (!s->cfg.max_concurrent_queries) s->cfg.max_concurrent_queries = 20;
    server_metrics_init(&s->m);
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = parse_listen(cfg->listen, &ss, &sl, err);
    if (rc) {
        free(s);
        return rc;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
                              MHD_OPTION_THREAD_POOL_SIZE, cfg->threads ? cfg->threads : 2,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_END);
    if (!s->mhd) {
        int e = errno;
        pthread_mutex_destroy(&s->scratch_mu);
        free(s);
        return strata_errf(err, STRATA_EIO, "cannot listen on %s: %s", cfg->listen,
                           e ? strerror(e) : "libmicrohttpd refused to start");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : 0;
    char host[256];
    const char *colon = strrchr(cfg->listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - cfg->listen), cfg->listen);
    snprintf(s->address, sizeof s->address, "%s:%u", host, port);
    if (cfg->grpc_listen && cfg->grpc_listen[0] && strcmp(cfg->grpc_listen, "off") != 0) {
        rc = grpc_srv_start(s, cfg->grpc_listen, cfg->grpc_max_message_bytes, cfg->grpc_tls_cert,
                            cfg->grpc_tls_key, &s->grpc, err);
        if (rc) {
            MHD_stop_daemon(s->mhd);
            s->mhd = NULL;
            pthread_mutex_destroy(&s->scratch_mu);
            free(s);
            return rc;
        }
    }
    rc = selfscrape_start(s, err);
    if (rc) {
        server_stop(s);
        return rc;
    }
    *out = s;
    return 0;
}

const char *server_address(const server *s)
{
    return s->address;
}

const char *server_grpc_address(const server *s)
{
    return s->grpc ? grpc_srv_address(s->grpc) : NULL;
}

void server_stop(server *s)
{
    if (!s) return;
    selfscrape_stop(s);
    if (s->grpc) grpc_srv_stop(s->grpc);
    if (s->mhd) MHD_stop_daemon(s->mhd);
    for (size_t i = 0; i < s->n_scratch; i++) ingest_scratch_free(s->scratch[i]);
    pthread_mutex_destroy(&s->scratch_mu);
    free(s);
}

ingest_scratch *server_scratch_get(server *s)
{
    pthread_mutex_lock(&s->scratch_mu);
    ingest_scratch *sc = s->n_scratch ? s->scratch[--s->n_scratch] : NULL;
    pthread_mutex_unlock(&s->scratch_mu);
    return sc ? sc : ingest_scratch_new();
}

void server_scratch_put(server *s, ingest_scratch *sc)
{
    pthread_mutex_lock(&s->scratch_mu);
    if (s->n_scratch < SERVER_MAX_SCRATCH) {
        s->scratch[s->n_scratch++] = sc;
        sc = NULL;
    }
    pthread_mutex_unlock(&s->scratch_mu);
    if (sc) ingest_scratch_free(sc);
}
