/*
 * matcher.c: label matchers with Prometheus semantics, regexes on PCRE2's JIT.
 *
 * Prometheus anchors every regex on both ends; we compile `^(?:re)$` in dot-all mode (RE2's `.`
 * under Prometheus matches newlines too since 3.0). Alternations of plain literals, the most common
 * regex in dashboards (`code=~"500|502|503"`), skip the regex engine.
 */
#include "core/core.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_regex_meta(char c)
{
    return strchr("\\.+*?()|[]{}^$", c) != NULL;
}

/* Splits a|b|c into literals when no alternative has a metacharacter. */
static int literal_set(matcher *m)
{
    const char *v = m->value;
    size_t n = 1;
    for (size_t i = 0; i < m->value_len; i++) {
        if (v[i] == '|') n++;
        else if (is_regex_meta(v[i])) return 0;
    }
    m->set_values = calloc(n, sizeof *m->set_values);
    m->set_lens = calloc(n, sizeof *m->set_lens);
    if (!m->set_values || !m->set_lens) return STRATA_ENOMEM;
    size_t start = 0, k = 0;
    for (size_t i = 0; i <= m->value_len; i++) {
        if (i == m->value_len || v[i] == '|') {
            m->set_values[k] = strndup(v + start, i - start);
            if (!m->set_values[k]) return STRATA_ENOMEM;
            m->set_lens[k] = (uint32_t)(i - start);
            k++;
            start = i + 1;
        }
    }
    m->n_set = n;
    return 0;
}

int matcher_new(strata_match_type type, const char *name, size_t name_len, const char *value,
                size_t value_len, matcher **out, char *err)
{
    matcher *m = calloc(1, sizeof *m);
    if (!m) return STRATA_ENOMEM;
    m->type = type;
    m->name = strndup(name, name_len);
    m->value = strndup(value, value_len);
    m->name_len = (uint32_t)name_len;
    m->value_len = (uint32_t)value_len;
    if (!m->name || !m->value) {
        matcher_free(m);
        return STRATA_ENOMEM;
    }
    if (type == STRATA_MATCH_REGEX || type == STRATA_MATCH_NOT_REGEX) {
        int rc = literal_set(m);
        if (rc) {
            matcher_free(m);
            return rc;
        }
        if (m->n_set == 0) {
            size_t plen = value_len + 8;
            char *pat = malloc(plen);
            if (!pat) {
                matcher_free(m);
                return STRATA_ENOMEM;
            }
            int pl = snprintf(pat, plen, "^(?:%.*s)$", (int)value_len, value);
            int ecode;
            PCRE2_SIZE eoff;
            pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, (PCRE2_SIZE)pl,
                                           PCRE2_DOTALL | PCRE2_UTF, &ecode,
                                           &eoff, NULL);
            free(pat);
            if (!re) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(ecode, msg, sizeof msg);
                size_t off = eoff >= 4 ? eoff - 4 : 0;
                matcher_free(m);
                return strata_errf(err, STRATA_EINVAL,
                                   "invalid regular expression \"%.*s\": %s at offset %zu",
                                   (int)value_len, value, (char *)msg, off);
            }
            pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
            m->re = re;
        }
    }
    m->matches_empty = false;
    m->matches_empty = matcher_matches(m, "", 0);
    *out = m;
    return 0;
}

void matcher_free(matcher *m)
{
    if (!m) return;
    free(m->name);
    free(m->value);
    if (m->re) pcre2_code_free(m->re);
    for (size_t i = 0; i < m->n_set; i++) free(m->set_values[i]);
    free(m->set_values);
    free(m->set_lens);
    free(m);
}

static bool regex_matches(const matcher *m, const char *value, size_t len)
{
    if (!m->re) {
        for (size_t i = 0; i < m->n_set; i++)
            if (m->set_lens[i] == len && memcmp(m->set_values[i], value, len) == 0) return true;
        return false;
    }
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return false;
    int rc = pcre2_match(m->re, (PCRE2_SPTR)(len ? value : ""), len, 0, PCRE2_NO_UTF_CHECK, md,
                         NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

bool matcher_matches(const matcher *m, const char *value, size_t len)
{
    switch (m->type) {
    case STRATA_MATCH_EQUAL: return len == m->value_len && memcmp(value, m->value, len) == 0;
    case STRATA_MATCH_NOT_EQUAL: return !(len == m->value_len && memcmp(value, m->value, len) == 0);
    case STRATA_MATCH_REGEX: return regex_matches(m, value, len);
    case STRATA_MATCH_NOT_REGEX: return !regex_matches(m, value, len);
    }
    return false;
}

char *matcher_format(const matcher *m, char *out, size_t len)
{
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    snprintf(out, len, "%s%s\"%s\"", m->name, ops[m->type & 3], m->value);
    return out;
}
