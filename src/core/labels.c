/*
 * labels.c: label sets in Prometheus' canonical form, their validation and their hash.
 *
 * A series is identified by its sorted label set. Validation happens once, when a series is first
 * seen, so the rules here are written for clarity; the hash is on every sample's path and is one
 * xxh3 call over a contiguous encoding.
 */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int label_str_compare(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
    uint32_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

int labels_compare(const label *a, size_t na, const label *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int c = label_str_compare(a[i].name, a[i].name_len, b[i].name, b[i].name_len);
        if (c) return c;
        c = label_str_compare(a[i].value, a[i].value_len, b[i].value, b[i].value_len);
        if (c) return c;
    }
    return na < nb ? -1 : na > nb ? 1 : 0;
}

bool labels_equal(const label *a, size_t na, const label *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++) {
        if (a[i].name_len != b[i].name_len || a[i].value_len != b[i].value_len) return false;
        if (memcmp(a[i].name, b[i].name, a[i].name_len)) return false;
        if (memcmp(a[i].value, b[i].value, a[i].value_len)) return false;
    }
    return true;
}

uint64_t labels_hash(const label *v, size_t n)
{
    unsigned char stack[2048];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += (size_t)v[i].name_len + v[i].value_len + 2;
    if (total <= sizeof stack) {
        unsigned char *p = stack;
        for (size_t i = 0; i < n; i++) {
            memcpy(p, v[i].name, v[i].name_len);
            p += v[i].name_len;
            *p++ = 0xff;
            memcpy(p, v[i].value, v[i].value_len);
            p += v[i].value_len;
            *p++ = 0xff;
        }
        return XXH3_64bits(stack, total);
    }
    XXH3_state_t *st = XXH3_createState();
    if (!st) return 0; /* a zero hash is valid: collisions are resolved by comparing labels */
    XXH3_64bits_reset(st);
    static const unsigned char sep = 0xff;
    for (size_t i = 0; i < n; i++) {
        XXH3_64bits_update(st, v[i].name, v[i].name_len);
        XXH3_64bits_update(st, &sep, 1);
        XXH3_64bits_update(st, v[i].value, v[i].value_len);
        XXH3_64bits_update(st, &sep, 1);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

const char *labels_get(const label *v, size_t n, const char *name, uint32_t *len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (v[i].name_len == nl && memcmp(v[i].name, name, nl) == 0) {
            if (len) *len = v[i].value_len;
            return v[i].value;
        }
    }
    return NULL;
}

bool utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            need = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < need) return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are invalid, as in Go. */
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000))
            return false;
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += need + 1;
    }
    return true;
}

static bool legacy_name(const char *s, uint32_t len, bool colon)
{
    if (len == 0) return false;
    for (uint32_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

bool label_name_valid(const char *s, uint32_t len, strata_name_validation mode)
{
    if (mode == STRATA_NAMES_LEGACY) return legacy_name(s, len, false);
    return len > 0 && utf8_valid(s, len);
}

bool metric_name_valid(const char *s, uint32_t len, strata_name_validation mode)
{
    if (mode == STRATA_NAMES_LEGACY) return legacy_name(s, len, true);
    return len > 0 && utf8_valid(s, len);
}

static int label_cmp_name(const void *a, const void *b)
{
    const label *x = a, *y = b;
    return label_str_compare(x->name, x->name_len, y->name, y->name_len);
}

char *labels_format(const label *v, size_t n, char *out, size_t len)
{
    size_t o = 0;
    if (!len) return out;
    out[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (o < len) {                                                                             \
            int w_ = snprintf(out + o, len - o, __VA_ARGS__);                                      \
            if (w_ > 0) o += (size_t)w_;                                                           \
        }                                                                                          \
    } while (0)
    uint32_t nlen;
    const char *name = labels_get(v, n, LABEL_METRIC_NAME, &nlen);
    if (name) PUT("%.*s", (int)nlen, name);
    PUT("{");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (v[i].name_len == 8 && memcmp(v[i].name, LABEL_METRIC_NAME, 8) == 0) continue;
        PUT("%s%.*s=\"%.*s\"", first ? "" : ", ", (int)v[i].name_len, v[i].name,
            (int)v[i].value_len, v[i].value);
        first = 0;
    }
    PUT("}");
#undef PUT
    return out;
}

int labels_normalize(label *v, size_t *n, const label_rules *rules, char *err)
{
    size_t out = 0;
    char what[160];
    for (size_t i = 0; i < *n; i++) {
        if (rules->require_sorted && i > 0 &&
            label_str_compare(v[i - 1].name, v[i - 1].name_len, v[i].name, v[i].name_len) >= 0) {
            bool dup = v[i - 1].name_len == v[i].name_len &&
                       memcmp(v[i - 1].name, v[i].name, v[i].name_len) == 0;
            return strata_errf(err, STRATA_EINVAL, "%s label name \"%.*s\" in %s",
                               dup ? "duplicate" : "labels not sorted at", (int)v[i].name_len,
                               v[i].name, labels_format(v, *n, what, sizeof what));
        }
        bool is_name = v[i].name_len == 8 && memcmp(v[i].name, LABEL_METRIC_NAME, 8) == 0;
        if (v[i].name_len == 0)
            return strata_errf(err, STRATA_EINVAL, "empty label name in %s",
                               labels_format(v, *n, what, sizeof what));
        if (!label_name_valid(v[i].name, v[i].name_len, rules->names))
            return strata_errf(err, STRATA_EINVAL, "invalid label name \"%.*s\"",
                               (int)(v[i].name_len > 100 ? 100 : v[i].name_len), v[i].name);
        if (!utf8_valid(v[i].value, v[i].value_len))
            return strata_errf(err, STRATA_EINVAL, "label %.*s has an invalid UTF-8 value",
                               (int)(v[i].name_len > 100 ? 100 : v[i].name_len), v[i].name);
        if (is_name && v[i].value_len &&
            !metric_name_valid(v[i].value, v[i].value_len, rules->names))
            return strata_errf(err, STRATA_EINVAL, "invalid metric name \"%.*s\"",
                               (int)(v[i].value_len > 100 ? 100 : v[i].value_len), v[i].value);
        if (v[i].value_len == 0) continue; /* an empty value means the label is absent */
        v[out++] = v[i];
    }
    if (!rules->require_sorted) qsort(v, out, sizeof *v, label_cmp_name);
    for (size_t i = 1; i < out; i++) {
        if (v[i - 1].name_len == v[i].name_len &&
            memcmp(v[i - 1].name, v[i].name, v[i].name_len) == 0)
            return strata_errf(err, STRATA_EINVAL, "duplicate label name \"%.*s\"",
                               (int)v[i].name_len, v[i].name);
    }
    if (out == 0) return strata_errf(err, STRATA_EINVAL, "series has no labels");
    *n = out;
    return 0;
}
