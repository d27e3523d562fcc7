/*
 * otlp_json.c: OTLP/JSON request bodies into the same protobuf-c structures the binary decoder
 * produces, so that one translator (otlp.c) serves both encodings.
 *
 * json-c parses the text (strictly, with UTF-8 validation and a nesting limit); the tree is then
 * walked against the message descriptors protoc-c generated from proto/otlp_*.proto, which
 * already know every field's name, number, type, label, oneof and struct offset. Walking the
 * descriptors instead of writing one function per OTLP message keeps the JSON side exactly as
 * complete as the .proto files, and applies the proto3 JSON rules in one place: lowerCamelCase
 * keys (the original names are accepted as proto3 parsers do; unknown keys are ignored), 64-bit
 * integers as strings or numbers, enums as integers (or names), "NaN"/"Infinity" for doubles,
 * hex for traceId and spanId, base64 for other bytes. Everything the result points to lives in
 * the caller's arena, whose growth is capped; the json-c tree itself is bounded beforehand by an
 * estimate of what it will cost, since json-c offers no allocator hook.
 */
#include "ingest/ingest.h"

#include "otlp_metrics_service.pb-c.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decoder's state for one body. */
typedef struct jctx {
    otlp_budget *budget;
    char *err;
    char path[200]; /* where in the document we are, for messages: resourceMetrics[0].resource */
    size_t path_len;
} jctx;

/* ---- paths for messages ------------------------------------------------------------------ */

static size_t path_push(jctx *c, const char *fmt, const char *s, size_t idx)
{
    size_t old = c->path_len;
    size_t room = sizeof c->path - c->path_len;
    int n = s ? snprintf(c->path + c->path_len, room, fmt, s)
              : snprintf(c->path + c->path_len, room, fmt, idx);
    if (n < 0) n = 0;
    c->path_len = (size_t)n >= room ? sizeof c->path - 1 : c->path_len + (size_t)n;
    return old;
}

static void path_pop(jctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

static int jerr(jctx *c, const char *what)
{
    return strata_errf(c->err, STRATA_EINVAL, "json: %s: %s", c->path_len ? c->path : "(top level)",
                       what);
}

static const char *jtype_name(json_object *o)
{
    return json_type_to_name(json_object_get_type(o));
}

/* ---- scalars ------------------------------------------------------------------------------ */

/* proto3 JSON writes 64-bit integers as decimal strings; numbers are accepted too. */
static int get_i64(jctx *c, json_object *o, int64_t lo, int64_t hi, int64_t *out)
{
    switch (json_object_get_type(o)) {
    case json_type_int: {
        int64_t v = json_object_get_int64(o);
        /* json-c keeps values above INT64_MAX as uint64 and clamps get_int64 to INT64_MAX. */
        if (v == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX)
            return jerr(c, "integer out of range");
        if (v < lo || v > hi) return jerr(c, "integer out of range");
        *out = v;
        return 0;
    }
    case json_type_double: {
        double d = json_object_get_double(o);
        if (!(d == floor(d)) || d < (double)lo || d >= -(double)INT64_MIN || d > (double)hi)
            return jerr(c, "expected an integer");
        *out = (int64_t)d;
        return 0;
    }
    case json_type_string: {
        const char *s = json_object_get_string(o);
        int len = json_object_get_string_len(o);
        if (len == 0 || len > 24 || !((*s >= '0' && *s <= '9') || *s == '-'))
            return jerr(c, "expected a decimal integer string");
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end != s + len || v < lo || v > hi)
            return jerr(c, "integer string out of range or malformed");
        *out = v;
        return 0;
    }
    default:
        return jerr(c, "expected an integer (a number or a decimal string)");
    }
}

static int get_u64(jctx *c, json_object *o, uint64_t hi, uint64_t *out)
{
    switch (json_object_get_type(o)) {
    case json_type_int: {
        if (json_object_get_int64(o) < 0) return jerr(c, "expected an unsigned integer");
        uint64_t v = json_object_get_uint64(o);
        if (v > hi) return jerr(c, "integer out of range");
        *out = v;
        return 0;
    }
    case json_type_double: {
        double d = json_object_get_double(o);
        if (!(d == floor(d)) || d < 0 || d >= 18446744073709551616.0 || d > (double)hi)
            return jerr(c, "expected an unsigned integer");
        *out = (uint64_t)d;
        return 0;
    }
    case json_type_string: {
        const char *s = json_object_get_string(o);
        int len = json_object_get_string_len(o);
        if (len == 0 || len > 24 || !(*s >= '0' && *s <= '9'))
            return jerr(c, "expected a decimal unsigned integer string");
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end != s + len || v > hi)
            return jerr(c, "integer string out of range or malformed");
        *out = v;
        return 0;
    }
    default:
        return jerr(c, "expected an unsigned integer (a number or a decimal string)");
    }
}

static int get_double(jctx *c, json_object *o, double *out)
{
    switch (json_object_get_type(o)) {
    case json_type_int:
        /* A uint64 above INT64_MAX reads back as INT64_MAX through get_double's int path. */
        if (json_object_get_int64(o) == INT64_MAX)
            *out = (double)json_object_get_uint64(o);
        else
            *out = (double)json_object_get_int64(o);
        return 0;
    case json_type_double:
        *out = json_object_get_double(o);
        return 0;
    case json_type_string: {
        const char *s = json_object_get_string(o);
        int len = json_object_get_string_len(o);
        if (strcmp(s, "NaN") == 0)
            *out = NAN;
        else if (strcmp(s, "Infinity") == 0)
            *out = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            *out = -INFINITY;
        else {
            /* Numeric strings are allowed by proto3 JSON; hex floats and "inf" are not. */
            if (len == 0 || len > 64 || strpbrk(s, "xXiInN") ||
                !((*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
                return jerr(c, "expected a number");
            char *end;
            double d = strtod(s, &end);
            if (end != s + len) return jerr(c, "expected a number");
            *out = d;
        }
        return 0;
    }
    default:
        return jerr(c, "expected a number");
    }
}

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62; /* standard and URL-safe alphabets */
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

/* Decodes a bytes field: hex for trace and span ids (OTLP/JSON's exception), base64 otherwise. */
static int get_bytes(jctx *c, json_object *o, bool hex, ProtobufCBinaryData *out)
{
    if (!json_object_is_type(o, json_type_string)) return jerr(c, "expected a string (bytes)");
    const char *s = json_object_get_string(o);
    size_t len = (size_t)json_object_get_string_len(o);
    uint8_t *p = otlp_budget_alloc(c->budget, len / 2 + len + 1);
    if (!p) return otlp_budget_error(c->budget, c->err);
    size_t n = 0;
    if (hex) {
        if (len % 2) return jerr(c, "expected an even number of hex digits");
        for (size_t i = 0; i < len; i += 2) {
            int hi = hex_nibble(s[i]), lo = hex_nibble(s[i + 1]);
            if (hi < 0 || lo < 0) return jerr(c, "expected hex digits");
            p[n++] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        uint32_t acc = 0;
        int bits = 0;
        size_t i = 0;
        for (; i < len && s[i] != '='; i++) {
            int v = b64_value(s[i]);
            if (v < 0) return jerr(c, "expected base64");
            acc = acc << 6 | (uint32_t)v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                p[n++] = (uint8_t)(acc >> bits);
            }
        }
        for (; i < len; i++)
            if (s[i] != '=') return jerr(c, "expected base64");
    }
    out->data = p;
    out->len = n;
    return 0;
}

/* ---- messages ----------------------------------------------------------------------------- */

static int set_message(jctx *c, const ProtobufCMessageDescriptor *d, json_object *o,
                       ProtobufCMessage **out);

/* The size of one element of a repeated field of this type, as protobuf-c lays it out. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 8;
}

/* Stores one JSON value into the member at p, by the field's type. */
static int set_value(jctx *c, const ProtobufCFieldDescriptor *f, json_object *o, void *p)
{
    int64_t i;
    uint64_t u;
    double d;
    int rc;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = get_i64(c, o, INT32_MIN, INT32_MAX, &i))) return rc;
        *(int32_t *)p = (int32_t)i;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = get_u64(c, o, UINT32_MAX, &u))) return rc;
        *(uint32_t *)p = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = get_i64(c, o, INT64_MIN, INT64_MAX, &i))) return rc;
        *(int64_t *)p = i;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = get_u64(c, o, UINT64_MAX, &u))) return rc;
        *(uint64_t *)p = u;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if ((rc = get_double(c, o, &d))) return rc;
        *(double *)p = d;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if ((rc = get_double(c, o, &d))) return rc;
        *(float *)p = (float)d;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(o, json_type_boolean)) return jerr(c, "expected true or false");
        *(protobuf_c_boolean *)p = json_object_get_boolean(o) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        /* OTLP/JSON sends enums as integers; proto3 JSON also allows the value's name. */
        if (json_object_is_type(o, json_type_string)) {
            const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(
                f->descriptor, json_object_get_string(o));
            if (!ev) return jerr(c, "unknown enum value name");
            *(int *)p = ev->value;
            return 0;
        }
        if ((rc = get_i64(c, o, INT32_MIN, INT32_MAX, &i))) return rc;
        *(int *)p = (int)i; /* proto3 enums are open: unknown numbers are kept */
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_object_is_type(o, json_type_string)) {
            char what[64];
            snprintf(what, sizeof what, "expected a string, got %s", jtype_name(o));
            return jerr(c, what);
        }
        const char *s = json_object_get_string(o);
        size_t len = (size_t)json_object_get_string_len(o);
        /* protobuf-c strings are NUL-terminated; the binary decoder refuses NULs the same way. */
        if (memchr(s, 0, len)) return jerr(c, "string contains a NUL character");
        char *copy = otlp_budget_alloc(c->budget, len + 1);
        if (!copy) return otlp_budget_error(c->budget, c->err);
        memcpy(copy, s, len);
        copy[len] = '\0';
        *(char **)p = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        bool hex = strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0;
        return get_bytes(c, o, hex, p);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return set_message(c, f->descriptor, o, p);
    }
    return jerr(c, "unsupported field type");
}

/* "timeUnixNano" -> "time_unix_nano", so a JSON key finds its field by the proto name. Keys that
 * are already snake_case come out unchanged. Returns false when the key cannot be a field name. */
static bool camel_to_snake(const char *key, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *k = key; *k; k++) {
        if (n + 3 > cap) return false;
        if (*k >= 'A' && *k <= 'Z') {
            out[n++] = '_';
            out[n++] = (char)(*k - 'A' + 'a');
        } else {
            out[n++] = *k;
        }
    }
    out[n] = '\0';
    return true;
}

static int set_message(jctx *c, const ProtobufCMessageDescriptor *d, json_object *o,
                       ProtobufCMessage **out)
{
    if (!json_object_is_type(o, json_type_object)) {
        char what[96];
        snprintf(what, sizeof what, "expected an object (%s), got %s", d->short_name,
                 jtype_name(o));
        return jerr(c, what);
    }
    ProtobufCMessage *m = otlp_budget_alloc(c->budget, d->sizeof_message);
    if (!m) return otlp_budget_error(c->budget, c->err);
    d->message_init(m);
    struct json_object_iterator it = json_object_iter_begin(o), end = json_object_iter_end(o);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        char name[64];
        if (!camel_to_snake(key, name, sizeof name)) continue;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, name);
        if (!f || !v) continue; /* unknown keys are ignored; null means "not set" */
        size_t mark = path_push(c, c->path_len ? ".%s" : "%s", key, 0);
        char *base = (char *)m;
        int rc = 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!json_object_is_type(v, json_type_array)) {
                rc = jerr(c, "expected an array");
                goto done;
            }
            size_t n = json_object_array_length(v), es = elem_size(f->type);
            void *arr = NULL;
            if (n) {
                arr = otlp_budget_alloc(c->budget, n * es);
                if (!arr) {
                    rc = otlp_budget_error(c->budget, c->err);
                    goto done;
                }
                memset(arr, 0, n * es);
            }
            for (size_t i = 0; i < n && !rc; i++) {
                size_t m2 = path_push(c, "[%zu]", NULL, i);
                json_object *e = json_object_array_get_idx(v, i);
                if (!e)
                    rc = jerr(c, "null is not allowed in an array");
                else
                    rc = set_value(c, f, e, (char *)arr + i * es);
                path_pop(c, m2);
            }
            if (!rc) {
                *(size_t *)(base + f->quantifier_offset) = n;
                *(void **)(base + f->offset) = arr;
            }
        } else {
            rc = set_value(c, f, v, base + f->offset);
            /* A oneof member records which one is set; the last one in the object wins. */
            if (!rc && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                *(uint32_t *)(base + f->quantifier_offset) = f->id;
            else if (!rc && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        }
    done:
        path_pop(c, mark);
        if (rc) return rc;
    }
    *out = m;
    return 0;
}

/* ---- entry point -------------------------------------------------------------------------- */

/* What json-c will allocate for this text, roughly and from above: every object carries a
 * 16-entry hash table (~700 bytes), every array a 32-slot list (~300 bytes), every value a
 * json_object (~100 bytes), strings their bytes. Counting structural bytes overestimates (they
 * may sit inside strings), which errs on the safe side. */
static size_t json_tree_estimate(const uint8_t *s, size_t len)
{
    size_t objects = 0, arrays = 0, values = 0;
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '{':
            objects++;
            break;
        case '[':
            arrays++;
            break;
        case ',':
        case ':':
            values++;
            break;
        default:
            break;
        }
    }
    return objects * 768 + arrays * 320 + values * 112 + 2 * len + 4096;
}

int otlp_decode_json(const uint8_t *json, size_t len, arena *a, otlp_export_request **out,
                     char *err)
{
    *out = NULL;
    const ProtobufCMessageDescriptor *d =
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    otlp_budget budget;
    otlp_budget_init(&budget, a, len);
    if (len == 0) { /* an empty body is an empty request */
        ProtobufCMessage *m = otlp_budget_alloc(&budget, d->sizeof_message);
        if (!m) return otlp_budget_error(&budget, err);
        d->message_init(m);
        *out = (otlp_export_request *)m;
        return 0;
    }
    if (len > OTLP_MAX_DECODED || len > (size_t)INT32_MAX)
        return strata_errf(err, STRATA_ELIMIT,
                           "json: the body (%zu bytes) is larger than the limit of %zu bytes", len,
                           (size_t)OTLP_MAX_DECODED);
    size_t est = json_tree_estimate(json, len);
    if (est > OTLP_JSON_MAX_TREE)
        return strata_errf(
            err, STRATA_ELIMIT,
            "json: the body (%zu bytes) would take about %zu MiB to parse, more than "
            "the limit of %zu MiB; send smaller batches or use "
            "application/x-protobuf",
            len, est >> 20, (size_t)OTLP_JSON_MAX_TREE >> 20);
    /* json-c counts the depth of containers; OTLP_MAX_DEPTH bounds both its stack and ours. */
    struct json_tokener *tok = json_tokener_new_ex(OTLP_MAX_DEPTH);
    if (!tok) return strata_errf(err, STRATA_ENOMEM, "json: out of memory");
    /* Trailing characters are allowed here only so that the check below can name them. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                    JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, (const char *)json, (int)len);
    enum json_tokener_error jerr_code = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int rc;
    if (!root || jerr_code != json_tokener_success) {
        if (jerr_code == json_tokener_continue)
            rc = strata_errf(err, STRATA_EINVAL,
                             "json: the body ends in the middle of a value (truncated?)");
        else if (jerr_code == json_tokener_error_depth)
            rc = strata_errf(err, STRATA_EINVAL, "json: nesting deeper than %d levels",
                             OTLP_MAX_DEPTH);
        else
            rc = strata_errf(err, STRATA_EINVAL, "json: %s at byte %zu",
                             json_tokener_error_desc(jerr_code), end);
        json_object_put(root);
        return rc;
    }
    while (end < len &&
           (json[end] == ' ' || json[end] == '\t' || json[end] == '\n' || json[end] == '\r'))
        end++;
    if (end != len) {
        json_object_put(root);
        return strata_errf(err, STRATA_EINVAL,
                           "json: unexpected data after the top-level object at byte %zu", end);
    }
    jctx c = {.budget = &budget, .err = err};
    ProtobufCMessage *m = NULL;
    rc = set_message(&c, d, root, &m);
    json_object_put(root);
    if (rc) return rc;
    *out = (otlp_export_request *)m;
    return 0;
}
