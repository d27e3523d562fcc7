/*
 * openmetrics.c: a reader of OpenMetrics text (and the Prometheus text format's sample lines)
 * for backfilling: `strata import` turns such a file into blocks, as `promtool tsdb
 * create-blocks-from openmetrics` does.
 *
 * A sample line is `name{label="value",...} value timestamp`, the name optionally inside the
 * braces as a quoted string (UTF-8 names), label names bare or quoted, label values quoted with
 * \\, \" and \n escapes, the value a float (NaN, +Inf, -Inf included) and the timestamp in
 * seconds with up to millisecond precision, read exactly (no float rounding). Comment lines
 * (# TYPE, # HELP, # UNIT) are skipped, `# EOF` ends the input, and an exemplar after the
 * timestamp (` # {...} ...`) is ignored. Anything else is an error naming the line.
 */
#include "ingest/ingest.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OM_MAX_LABELS 128

typedef struct cursor {
    const char *p, *end;
    size_t line;
} cursor;

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* A quoted string at c->p (after the opening quote is checked) unescaped into out. */
static int quoted(cursor *c, buf *out, size_t *off, uint32_t *len, char *err)
{
    if (c->p >= c->end || *c->p != '"')
        return strata_errf(err, STRATA_EPARSE, "line %zu: expected a quoted string", c->line);
    c->p++;
    *off = out->len;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch == '\n') break;
        if (ch == '\\') {
            if (c->p >= c->end)
                return strata_errf(err, STRATA_EPARSE, "line %zu: unfinished escape", c->line);
            char e = *c->p++;
            if (e == 'n')
                ch = '\n';
            else if (e == '\\' || e == '"')
                ch = e;
            else
                return strata_errf(err, STRATA_EPARSE, "line %zu: unknown escape \\%c", c->line, e);
        }
        if (buf_putc(out, ch)) return STRATA_ENOMEM;
    }
    if (c->p >= c->end || *c->p != '"')
        return strata_errf(err, STRATA_EPARSE, "line %zu: unterminated quoted string", c->line);
    c->p++;
    *len = (uint32_t)(out->len - *off);
    return buf_putc(out, 0) ? STRATA_ENOMEM : 0; /* NUL-terminated for the labels' users */
}

static int bare_name(cursor *c, buf *out, size_t *off, uint32_t *len, char *err)
{
    const char *s = c->p;
    if (c->p >= c->end || !name_start(*c->p))
        return strata_errf(err, STRATA_EPARSE, "line %zu: expected a name", c->line);
    while (c->p < c->end && name_char(*c->p))
        c->p++;
    *off = out->len;
    *len = (uint32_t)(c->p - s);
    return buf_append(out, s, *len) || buf_putc(out, 0) ? STRATA_ENOMEM : 0;
}

/* The timestamp in seconds ("1700000000", "1700000000.5", "-1.25") as exact milliseconds. */
static int timestamp_ms(cursor *c, int64_t *out, char *err)
{
    bool neg = false;
    if (c->p < c->end && (*c->p == '-' || *c->p == '+')) neg = *c->p++ == '-';
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (whole > (INT64_MAX / 1000 - 9) / 10)
            return strata_errf(err, STRATA_EPARSE, "line %zu: timestamp out of range", c->line);
        whole = whole * 10 + (*c->p++ - '0');
        digits++;
    }
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (fdigits < 3)
                frac = frac * 10 + (*c->p - '0');
            else if (*c->p != '0')
                return strata_errf(err, STRATA_EPARSE,
                                   "line %zu: timestamp finer than a millisecond", c->line);
            fdigits++;
            c->p++;
        }
    }
    if (!digits && !fdigits)
        return strata_errf(err, STRATA_EPARSE, "line %zu: expected a timestamp", c->line);
    for (int i = fdigits < 3 ? fdigits : 3; i < 3; i++)
        frac *= 10;
    int64_t ms = whole * 1000 + frac;
    *out = neg ? -ms : ms;
    return 0;
}

static int parse_line(cursor *c, buf *strs, om_sample_fn fn, void *ctx, char *err)
{
    size_t offs[OM_MAX_LABELS][2];
    uint32_t lens[OM_MAX_LABELS][2];
    offs[0][1] = 0;
    lens[0][1] = 0; /* no metric name yet: {a="b"} alone is refused below */
    size_t n = 0;
    strs->len = 0;
    int rc = 0;
    /* The metric name, bare before the braces or quoted first inside them. */
    if (*c->p != '{') {
        rc = bare_name(c, strs, &offs[0][1], &lens[0][1], err);
        n = 1;
    }
    if (!rc && c->p < c->end && *c->p == '{') {
        c->p++;
        bool first = true;
        while (!rc && c->p < c->end && *c->p != '}') {
            if (!first) {
                if (*c->p != ',')
                    return strata_errf(err, STRATA_EPARSE, "line %zu: expected , or }", c->line);
                c->p++;
                if (c->p < c->end && *c->p == '}') break; /* a trailing comma */
            }
            if (n == OM_MAX_LABELS)
                return strata_errf(err, STRATA_EPARSE, "line %zu: more than %d labels", c->line,
                                   OM_MAX_LABELS);
            if (c->p >= c->end)
                return strata_errf(err, STRATA_EPARSE, "line %zu: expected a label", c->line);
            size_t o;
            uint32_t l;
            if (*c->p == '"') {
                rc = quoted(c, strs, &o, &l, err);
                if (!rc && (c->p >= c->end || *c->p != '=')) {
                    if (n == 0 && first) { /* {"metric.name", ...} */
                        offs[0][1] = o;
                        lens[0][1] = l;
                        n = 1;
                        first = false;
                        continue;
                    }
                    return strata_errf(err, STRATA_EPARSE, "line %zu: expected =", c->line);
                }
            } else {
                rc = bare_name(c, strs, &o, &l, err);
                if (!rc && (c->p >= c->end || *c->p != '='))
                    return strata_errf(err, STRATA_EPARSE, "line %zu: expected =", c->line);
            }
            if (rc) return rc;
            if (n == 0) n = 1; /* no metric name yet: slot 0 stays for it */
            c->p++;
            offs[n][0] = o;
            lens[n][0] = l;
            rc = quoted(c, strs, &offs[n][1], &lens[n][1], err);
            n++;
            first = false;
        }
        if (rc) return rc;
        if (c->p >= c->end || *c->p != '}')
            return strata_errf(err, STRATA_EPARSE, "line %zu: expected }", c->line);
        c->p++;
    }
    if (rc) return rc;
    if (n == 0 || lens[0][1] == 0)
        return strata_errf(err, STRATA_EPARSE, "line %zu: a sample without a metric name", c->line);
    if (c->p >= c->end || *c->p != ' ')
        return strata_errf(err, STRATA_EPARSE, "line %zu: expected a space before the value",
                           c->line);
    while (c->p < c->end && *c->p == ' ')
        c->p++;
    const char *vs = c->p;
    while (c->p < c->end && *c->p != ' ' && *c->p != '\n')
        c->p++;
    char vbuf[64];
    size_t vl = (size_t)(c->p - vs);
    if (vl == 0 || vl >= sizeof vbuf)
        return strata_errf(err, STRATA_EPARSE, "line %zu: bad value", c->line);
    memcpy(vbuf, vs, vl);
    vbuf[vl] = 0;
    double v;
    if (strcmp(vbuf, "NaN") == 0)
        v = NAN;
    else if (strcmp(vbuf, "+Inf") == 0 || strcmp(vbuf, "Inf") == 0)
        v = INFINITY;
    else if (strcmp(vbuf, "-Inf") == 0)
        v = -INFINITY;
    else {
        char *e;
        errno = 0;
        v = strtod(vbuf, &e);
        if (*e || errno == ERANGE || isnan(v) || isinf(v))
            return strata_errf(err, STRATA_EPARSE, "line %zu: bad value \"%s\"", c->line, vbuf);
    }
    while (c->p < c->end && *c->p == ' ')
        c->p++;
    if (c->p >= c->end || *c->p == '\n' || *c->p == '#')
        return strata_errf(err, STRATA_EPARSE,
                           "line %zu: a sample without a timestamp cannot be imported", c->line);
    int64_t t = 0;
    rc = timestamp_ms(c, &t, err);
    if (rc) return rc;
    /* An exemplar (" # {...} value [ts]") may follow; nothing else. */
    while (c->p < c->end && *c->p == ' ')
        c->p++;
    if (c->p < c->end && *c->p == '#')
        while (c->p < c->end && *c->p != '\n')
            c->p++;
    if (c->p < c->end && *c->p != '\n')
        return strata_errf(err, STRATA_EPARSE, "line %zu: unexpected text after the timestamp",
                           c->line);
    label ls[OM_MAX_LABELS];
    const char *base = (const char *)strs->data;
    ls[0] = (label){.name = LABEL_METRIC_NAME,
                    .name_len = 8,
                    .value = base + offs[0][1],
                    .value_len = lens[0][1]};
    for (size_t i = 1; i < n; i++)
        ls[i] = (label){.name = base + offs[i][0],
                        .name_len = lens[i][0],
                        .value = base + offs[i][1],
                        .value_len = lens[i][1]};
    return fn(ctx, ls, n, t, v, err);
}

int om_parse(const char *text, size_t len, om_sample_fn fn, void *ctx, char *err)
{
    cursor c = {.p = text, .end = text + len, .line = 0};
    buf strs = {0};
    int rc = 0;
    while (!rc && c.p < c.end) {
        c.line++;
        const char *eol = memchr(c.p, '\n', (size_t)(c.end - c.p));
        const char *line_end = eol ? eol : c.end;
        if (line_end == c.p) {
            c.p = line_end + 1;
            continue;
        }
        if (*c.p == '#') {
            if ((size_t)(line_end - c.p) == 5 && memcmp(c.p, "# EOF", 5) == 0) break;
            c.p = eol ? eol + 1 : c.end;
            continue;
        }
        cursor lc = {.p = c.p, .end = line_end, .line = c.line};
        rc = parse_line(&lc, &strs, fn, ctx, err);
        c.p = eol ? eol + 1 : c.end;
    }
    buf_free(&strs);
    return rc;
}
