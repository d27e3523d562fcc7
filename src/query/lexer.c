/*
 * lexer.c: PromQL text into tokens, with Prometheus' context rules and error messages.
 *
 * Prometheus' lexer is modal and the language depends on it: inside {...} keywords are plain
 * label names and ':' is not an identifier character; right after '[' (and after operators and
 * parentheses there) only duration arithmetic may follow; a number glued to unit letters is a
 * duration (1h30m); unbalanced brackets and parentheses are lexical errors. This lexer keeps the
 * same modes and reports the same messages at the same byte offsets, so users see the errors
 * they know from Prometheus. Strings are unquoted here (Go's escapes, three quote kinds), and the
 * Go-style quoting helpers the messages and the formatter need live here too.
 */
#include "query/ast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void lexer_init(lexer *l, const char *src, size_t len, arena *mem)
{
    memset(l, 0, sizeof *l);
    l->src = src;
    l->len = len;
    l->mem = mem;
    l->mode = LEX_STATEMENTS;
}

/* ---- UTF-8 and Go quoting ---------------------------------------------------------------------- */

uint32_t lexer_utf8_decode(const char *str, size_t n, size_t *width)
{
    const unsigned char *s = (const unsigned char *)str;
    *width = 1;
    if (s[0] < 0x80) return s[0];
    uint32_t cp;
    size_t need;
    uint32_t min;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        cp = s[0] & 0x1f;
        need = 1;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        cp = s[0] & 0x0f;
        need = 2;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        cp = s[0] & 0x07;
        need = 3;
        min = 0x10000;
    } else {
        return 0xfffd;
    }
    if (n < need + 1) return 0xfffd;
    for (size_t i = 1; i <= need; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0xfffd;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return 0xfffd;
    *width = need + 1;
    return cp;
}

/* Go's unicode.IsPrint, closely enough for messages and round trips: letters, marks, numbers,
 * punctuation and symbols are printable; controls, format characters, separators other than the
 * ASCII space, private use and unassigned planes are not. */
static bool rune_printable(uint32_t r)
{
    if (r < 0x20 || r == 0x7f) return false;
    if (r < 0x7f) return true;
    if (r <= 0xa0 || r == 0xad) return false;
    if (r == 0x61c || r == 0x180e || r == 0x1680) return false;
    if (r >= 0x2000 && r <= 0x200f) return false;
    if (r >= 0x2028 && r <= 0x202f) return false;
    if (r >= 0x205f && r <= 0x206f) return false;
    if (r == 0x3000 || r == 0xfeff) return false;
    if (r >= 0xd800 && r <= 0xf8ff) return false; /* surrogates and private use */
    if (r >= 0xfff9 && r <= 0xfffb) return false;
    if (r == 0xfffe || r == 0xffff) return false;
    if (r >= 0xe0000) return false;
    return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The escape Go writes for a rune inside quotes of kind q, or NULL when it is written as is. */
static const char *rune_escape(uint32_t r, char q, char *tmp, size_t len)
{
    switch (r) {
    case '\a': return "\\a";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\v': return "\\v";
    case '\\': return "\\\\";
    default: break;
    }
    if (r == (uint32_t)(unsigned char)q) {
        snprintf(tmp, len, "\\%c", q);
        return tmp;
    }
    if (rune_printable(r)) return NULL;
    if (r < 0x80) snprintf(tmp, len, "\\x%02x", r);
    else if (r < 0x10000) snprintf(tmp, len, "\\u%04x", r);
    else snprintf(tmp, len, "\\U%08x", r);
    return tmp;
}

int lexer_quote(buf *b, const char *s, size_t n)
{
    int rc = buf_putc(b, '"');
    for (size_t i = 0; i < n && !rc;) {
        size_t w;
        uint32_t r = lexer_utf8_decode(s + i, n - i, &w);
        char tmp[16];
        const char *esc;
        if (r == 0xfffd && w == 1) {
            snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned char)s[i]);
            esc = tmp;
        } else if (r == 0xfffd) {
            /* Go writes U+FFFD as is, but its lexer (and this one) refuses it in a string */
            esc = "\\ufffd";
        } else {
            esc = rune_escape(r, '"', tmp, sizeof tmp);
        }
        rc = esc ? buf_append(b, esc, strlen(esc)) : buf_append(b, s + i, w);
        i += w;
    }
    return rc ? rc : buf_putc(b, '"');
}

const char *lexer_quote_rune(uint32_t r, char *out, size_t len)
{
    char tmp[16];
    if (r > 0x10ffff || (r >= 0xd800 && r < 0xe000)) r = 0xfffd;
    const char *esc = rune_escape(r, '\'', tmp, sizeof tmp);
    if (esc) {
        snprintf(out, len, "'%s'", esc);
    } else {
        char u[5];
        size_t n = put_utf8(u, r);
        snprintf(out, len, "'%.*s'", (int)n, u);
    }
    return out;
}

/* Go's %q of a string: lexer_quote into a fixed buffer, truncated. */
static const char *quote_text(const char *s, size_t n, char *out, size_t len)
{
    buf b = {0};
    if (lexer_quote(&b, s, n > 200 ? 200 : n) || !b.data) {
        snprintf(out, len, "\"?\"");
    } else {
        snprintf(out, len, "%.*s", (int)b.len, (char *)b.data);
    }
    buf_free(&b);
    return out;
}

int promql_duration_string(int64_t ms, char *out, size_t len)
{
    static const struct {
        const char *unit;
        int64_t ms;
        bool exact;
    } units[] = {{"y", 365LL * 86400000, true}, {"w", 7LL * 86400000, true},
                 {"d", 86400000, false},        {"h", 3600000, false},
                 {"m", 60000, false},           {"s", 1000, false},
                 {"ms", 1, false}};
    if (ms == 0) return snprintf(out, len, "0s");
    size_t o = 0;
    out[0] = '\0';
    uint64_t left = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        uint64_t u = (uint64_t)units[i].ms;
        if (units[i].exact && left % u) continue; /* 90d, not 12w6d */
        uint64_t v = left / u;
        if (!v) continue;
        int w = snprintf(out + o, o < len ? len - o : 0, "%llu%s", (unsigned long long)v,
                         units[i].unit);
        if (w > 0) o += (size_t)w;
        left -= v * u;
    }
    return (int)o;
}

/* ---- positions and descriptions ----------------------------------------------------------------- */

const char *lexer_position(const char *src, size_t len, size_t pos, char *out, size_t outlen)
{
    if (len == 0) {
        snprintf(out, outlen, "unknown position");
        return out;
    }
    if (pos > len) pos = len;
    int line = 1;
    size_t last_nl = (size_t)-1;
    for (size_t i = 0; i < pos; i++)
        if (src[i] == '\n') {
            line++;
            last_nl = i;
        }
    snprintf(out, outlen, "%d:%zu", line, pos - last_nl);
    return out;
}

bool lexer_is_operator(tok_kind k)
{
    return k >= T_ADD && k <= T_AT;
}

bool lexer_is_keyword(tok_kind k)
{
    return k >= T_BOOL && k <= T_WITHOUT;
}

static const char *punct_text(tok_kind k)
{
    switch (k) {
    case T_LBRACE: return "{";
    case T_RBRACE: return "}";
    case T_LPAREN: return "(";
    case T_RPAREN: return ")";
    case T_LBRACKET: return "[";
    case T_RBRACKET: return "]";
    case T_COMMA: return ",";
    case T_COLON: return ":";
    case T_ASSIGN: return "=";
    default: return NULL;
    }
}

const char *lexer_describe(const token *t, char *out, size_t len)
{
    char q[240];
    const char *p = punct_text(t->kind);
    if (t->kind == T_EOF) {
        snprintf(out, len, "end of input");
    } else if (p) {
        snprintf(out, len, "\"%s\"", p);
    } else if (t->kind == T_IDENT || t->kind == T_METRIC_IDENT) {
        snprintf(out, len, "%s %s", t->kind == T_IDENT ? "identifier" : "metric identifier",
                 quote_text(t->text, t->len, q, sizeof q));
    } else if (lexer_is_operator(t->kind)) {
        snprintf(out, len, "<op:%.*s>", (int)t->len, t->text);
    } else if (t->kind == T_AGGR) {
        snprintf(out, len, "<aggr:%.*s>", (int)t->len, t->text);
    } else if (lexer_is_keyword(t->kind)) {
        snprintf(out, len, "<%.*s>", (int)t->len, t->text);
    } else {
        /* Strings, numbers, durations and the function-like words: the text, cut at 10 runes. */
        size_t n = 0, runes = 0;
        while (n < t->len && runes < 10) {
            size_t w;
            lexer_utf8_decode(t->text + n, t->len - n, &w);
            n += w;
            runes++;
        }
        const char *kind = t->kind == T_STRING     ? "string "
                           : t->kind == T_NUMBER   ? "number "
                           : t->kind == T_DURATION ? "duration "
                                                   : "";
        snprintf(out, len, "%s%s%s", kind, quote_text(t->text, n, q, sizeof q),
                 n < t->len ? "..." : "");
    }
    return out;
}

/* ---- scanning ------------------------------------------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_alpha(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

static char at(const lexer *l, size_t p)
{
    return p < l->len ? l->src[p] : '\0';
}

static bool eof_at(const lexer *l, size_t p)
{
    return p >= l->len;
}

static token make(lexer *l, tok_kind k, size_t start, size_t end)
{
    l->pos = end;
    return (token){.kind = k, .pos = start, .len = end - start, .text = l->src + start};
}

/* An error token at pos; the lexer returns only end of input afterwards. */
static token lex_error(lexer *l, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static token lex_error(lexer *l, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg, sizeof l->msg, fmt, ap);
    va_end(ap);
    l->done = true;
    return (token){.kind = T_ERROR, .pos = pos, .text = l->src + (pos < l->len ? pos : l->len)};
}

/* The rune at p as Go's %q (end of input reads as U+FFFD, as Go's lexer sees it). */
static const char *rune_at(const lexer *l, size_t p, char *out, size_t len)
{
    size_t w;
    uint32_t r = eof_at(l, p) ? 0xfffd : lexer_utf8_decode(l->src + p, l->len - p, &w);
    return lexer_quote_rune(r, out, len);
}

static void format_U(uint32_t r, char *out, size_t len)
{
    /* Go's %#U: U+0063 'c' (the rune only when printable) */
    if (rune_printable(r)) {
        char u[5];
        size_t n = put_utf8(u, r);
        snprintf(out, len, "U+%04X '%.*s'", r, (int)n, u);
    } else {
        snprintf(out, len, "U+%04X", r);
    }
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 16;
}

/* "...", '...' and `...`: validates and unquotes into the arena. */
static token lex_string(lexer *l)
{
    size_t start = l->pos;
    char q = l->src[start];
    /* Find where the string ends first: the unquoted text is never longer than the quoted one,
     * so the buffer fits it, and many strings in a long query do not each take the rest of the
     * query. */
    size_t cap = 0;
    for (size_t k = start + 1; k < l->len && l->src[k] != q; k++, cap++) {
        if (q != '`' && l->src[k] == '\n') break;
        if (q != '`' && l->src[k] == '\\') {
            k++;
            cap++;
        }
    }
    char *out = arena_alloc(l->mem, cap + 1);
    if (!out) return lex_error(l, start, "out of memory");
    size_t o = 0, p = start + 1;
    for (;;) {
        if (eof_at(l, p)) {
            return lex_error(l, start, q == '`' ? "unterminated raw string"
                                                : "unterminated quoted string");
        }
        char c = l->src[p];
        if (c == q) {
            p++;
            break;
        }
        if (c == '\n' && q != '`') return lex_error(l, start, "unterminated quoted string");
        if ((unsigned char)c >= 0x80) {
            size_t w;
            uint32_t r = lexer_utf8_decode(l->src + p, l->len - p, &w);
            if (r == 0xfffd) return lex_error(l, start, "invalid UTF-8 rune");
            memcpy(out + o, l->src + p, w);
            o += w;
            p += w;
            continue;
        }
        if (c != '\\' || q == '`') {
            out[o++] = c;
            p++;
            continue;
        }
        p++; /* the backslash */
        if (eof_at(l, p)) return lex_error(l, start, "escape sequence not terminated");
        char e = l->src[p];
        int n = 0;
        uint32_t base = 0, max = 0;
        switch (e) {
        case 'a': out[o++] = '\a'; p++; continue;
        case 'b': out[o++] = '\b'; p++; continue;
        case 'f': out[o++] = '\f'; p++; continue;
        case 'n': out[o++] = '\n'; p++; continue;
        case 'r': out[o++] = '\r'; p++; continue;
        case 't': out[o++] = '\t'; p++; continue;
        case 'v': out[o++] = '\v'; p++; continue;
        case '\\': out[o++] = '\\'; p++; continue;
        case 'x': n = 2; base = 16; max = 255; p++; break;
        case 'u': n = 4; base = 16; max = 0x10ffff; p++; break;
        case 'U': n = 8; base = 16; max = 0x10ffff; p++; break;
        default:
            if (e == q) {
                out[o++] = e;
                p++;
                continue;
            }
            if (e >= '0' && e <= '7') {
                n = 3;
                base = 8;
                max = 255;
                break;
            }
            {
                size_t w;
                char u[48];
                format_U(lexer_utf8_decode(l->src + p, l->len - p, &w), u, sizeof u);
                return lex_error(l, start, "unknown escape sequence %s", u);
            }
        }
        uint32_t x = 0;
        for (int i = 0; i < n; i++) {
            if (eof_at(l, p)) return lex_error(l, start, "escape sequence not terminated");
            uint32_t d = (uint32_t)hex_val(l->src[p]);
            if (d >= base) {
                size_t w;
                char u[48];
                format_U(lexer_utf8_decode(l->src + p, l->len - p, &w), u, sizeof u);
                return lex_error(l, start, "illegal character %s in escape sequence", u);
            }
            x = x * base + d;
            p++;
        }
        if (x > max || (x >= 0xd800 && x < 0xe000))
            return lex_error(l, start, "escape sequence is an invalid Unicode code point");
        if (e == 'u' || e == 'U') o += put_utf8(out + o, x);
        else out[o++] = (char)x; /* \x and octal write a byte, valid UTF-8 or not */
    }
    out[o] = '\0';
    token t = make(l, T_STRING, start, p);
    t.str = out;
    t.str_len = o;
    return t;
}

static bool in_set(char c, const char *set)
{
    return c && strchr(set, c) != NULL;
}

/* Prometheus' number shape: [.][d][d._eE]* with the placement rules for dots, exponents and
 * underscores, hex after 0x, and no letter right after. *p ends where scanning stopped, which is
 * also where a duration continues from when this fails. */
static bool scan_number(const lexer *l, size_t *pp)
{
    size_t p = *pp, start = p;
    const char *digits = "0123456789";
    bool hex = false;
    if (at(l, p) == '0') {
        p++;
        if (at(l, p) == 'x' || at(l, p) == 'X') {
            p++;
            if (at(l, p) == '_') p++;
            digits = "0123456789abcdefABCDEF";
            hex = true;
        }
    }
    if (at(l, p) == '.') p++;
    if (in_set(at(l, p), digits)) p++;
    bool dot = false, exp = false;
    while (in_set(at(l, p), digits) || in_set(at(l, p), "._eE")) {
        char c = at(l, p);
        if (c == '.' && dot) {
            *pp = p + 1;
            return false;
        }
        if ((c == 'e' || c == 'E') && !hex && exp) {
            *pp = p + 1;
            return false;
        }
        if (c == '.') {
            p++;
            dot = true;
            if (in_set(at(l, p), "_.")) {
                *pp = p + 1;
                return false;
            }
            if (hex) {
                *pp = p;
                return false;
            }
            continue;
        }
        if ((c == 'e' || c == 'E') && !hex) {
            p++;
            exp = true;
            if (in_set(at(l, p), "+-")) p++;
            if (in_set(at(l, p), "._eE")) {
                *pp = p + 1;
                return false;
            }
            if (eof_at(l, p)) {
                *pp = p;
                return false;
            }
            continue;
        }
        if (c == '_') {
            p++;
            if (in_set(at(l, p), "._eE")) {
                *pp = p + 1;
                return false;
            }
            if (eof_at(l, p)) {
                *pp = p;
                return false;
            }
            continue;
        }
        while (in_set(at(l, p), digits)) p++;
    }
    *pp = p;
    if (p == start) return false;
    return !is_alnum(at(l, p));
}

/* Unit letters after the number part: [smhdwy]s? then (digits [smhdw]s?)*, not followed by a
 * letter or digit. Bad unit combinations are left to the duration parser, as in Prometheus. */
static bool scan_duration_rest(const lexer *l, size_t *pp)
{
    size_t p = *pp;
    if (!in_set(at(l, p), "smhdwy")) {
        *pp = p;
        return false;
    }
    p++;
    if (at(l, p) == 's') p++;
    while (is_digit(at(l, p))) {
        while (is_digit(at(l, p))) p++;
        if (!in_set(at(l, p), "smhdw")) {
            *pp = p;
            return false;
        }
        p++;
        if (at(l, p) == 's') p++;
    }
    if (is_alnum(at(l, p))) {
        *pp = p + 1;
        return false;
    }
    *pp = p;
    return true;
}

static token lex_number(lexer *l)
{
    size_t start = l->pos, p = start;
    if (scan_number(l, &p)) return make(l, T_NUMBER, start, p);
    if (scan_duration_rest(l, &p)) return make(l, T_DURATION, start, p);
    char q[240];
    return lex_error(l, start, "bad number or duration syntax: %s",
                     quote_text(l->src + start, p - start, q, sizeof q));
}

static const struct {
    const char *word;
    tok_kind kind;
} keywords[] = {
    {"and", T_LAND},         {"or", T_LOR},           {"unless", T_LUNLESS},
    {"atan2", T_ATAN2},      {"sum", T_AGGR},         {"avg", T_AGGR},
    {"count", T_AGGR},       {"min", T_AGGR},         {"max", T_AGGR},
    {"group", T_AGGR},       {"stddev", T_AGGR},      {"stdvar", T_AGGR},
    {"topk", T_AGGR},        {"bottomk", T_AGGR},     {"count_values", T_AGGR},
    {"quantile", T_AGGR},    {"limitk", T_AGGR},      {"limit_ratio", T_AGGR},
    {"offset", T_OFFSET},    {"smoothed", T_SMOOTHED}, {"anchored", T_ANCHORED},
    {"by", T_BY},            {"without", T_WITHOUT},  {"on", T_ON},
    {"ignoring", T_IGNORING}, {"group_left", T_GROUP_LEFT}, {"group_right", T_GROUP_RIGHT},
    {"fill", T_FILL},        {"fill_left", T_FILL_LEFT}, {"fill_right", T_FILL_RIGHT},
    {"bool", T_BOOL},        {"start", T_START},      {"end", T_END},
    {"step", T_STEP},        {"range", T_RANGE},      {"max_of", T_MAX_OF},
    {"min_of", T_MIN_OF},    {"inf", T_NUMBER},       {"nan", T_NUMBER},
};

static tok_kind keyword_kind(const char *s, size_t n, tok_kind dflt)
{
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strlen(keywords[i].word) == n && strncasecmp(keywords[i].word, s, n) == 0)
            return keywords[i].kind;
    return dflt;
}

/* Whether the next non-space character after p is '('. */
static bool followed_by_paren(const lexer *l, size_t p)
{
    while (p < l->len && is_space(l->src[p])) p++;
    return at(l, p) == '(';
}

static token lex_word(lexer *l)
{
    size_t start = l->pos, p = start;
    bool colon = false;
    while (is_alnum(at(l, p)) || at(l, p) == ':') {
        if (at(l, p) == ':') colon = true;
        p++;
    }
    tok_kind k = keyword_kind(l->src + start, p - start, colon ? T_METRIC_IDENT : T_IDENT);
    /* fill, fill_left and fill_right are keywords only before '(': "fill + fill" stays valid */
    if ((k == T_FILL || k == T_FILL_LEFT || k == T_FILL_RIGHT) && !followed_by_paren(l, p))
        k = T_IDENT;
    return make(l, k, start, p);
}

/* step, range, max_of, min_of (any case) where a duration expression is expected. */
static bool duration_keyword(lexer *l, size_t start, token *out)
{
    size_t p = start;
    while (is_alpha(at(l, p))) p++;
    tok_kind k = keyword_kind(l->src + start, p - start, T_IDENT);
    if (k != T_STEP && k != T_RANGE && k != T_MAX_OF && k != T_MIN_OF) return false;
    *out = make(l, k, start, p);
    return true;
}

static bool duration_keyword_start(char c)
{
    c = (char)(c | 0x20);
    return c == 's' || c == 'r' || c == 'm';
}

static void skip_line(lexer *l)
{
    while (l->pos < l->len && l->src[l->pos] != '\n' && l->src[l->pos] != '\r') l->pos++;
}

static token lex_braces(lexer *l)
{
    for (;;) {
        if (l->pos >= l->len) return lex_error(l, l->pos, "unexpected end of input inside braces");
        char c = l->src[l->pos];
        if (is_space(c)) l->pos++;
        else if (c == '#') skip_line(l);
        else break;
    }
    size_t s = l->pos;
    char c = l->src[s], n = at(l, s + 1), r[24];
    if (is_alpha(c)) {
        size_t p = s;
        while (is_alnum(at(l, p))) p++;
        return make(l, T_IDENT, s, p);
    }
    switch (c) {
    case ',': return make(l, T_COMMA, s, s + 1);
    case '"':
    case '\'':
    case '`': return lex_string(l);
    case '=': return n == '~' ? make(l, T_RE, s, s + 2) : make(l, T_ASSIGN, s, s + 1);
    case '!':
        if (n == '~') return make(l, T_NRE, s, s + 2);
        if (n == '=') return make(l, T_NEQ, s, s + 2);
        return lex_error(l, s, "unexpected character after '!' inside braces: %s",
                         rune_at(l, s + 1, r, sizeof r));
    case '{': return lex_error(l, s, "unexpected left brace '{'");
    case '}':
        l->mode = LEX_STATEMENTS;
        return make(l, T_RBRACE, s, s + 1);
    default:
        return lex_error(l, s, "unexpected character inside braces: %s", rune_at(l, s, r, sizeof r));
    }
}

static token lex_duration(lexer *l)
{
    while (l->pos < l->len && is_space(l->src[l->pos])) l->pos++;
    size_t s = l->pos;
    char r[24];
    if (s >= l->len) return lex_error(l, s, "unexpected end of input in duration expression");
    char c = l->src[s];
    switch (c) {
    case ']':
        l->bracket_open = false;
        l->got_colon = false;
        l->mode = LEX_STATEMENTS;
        return make(l, T_RBRACKET, s, s + 1);
    case ':':
        if (!l->got_duration)
            return lex_error(l, s + 1, "unexpected colon before duration in duration expression");
        if (l->got_colon) return lex_error(l, s + 1, "unexpected repeated colon in duration expression");
        l->got_colon = true;
        return make(l, T_COLON, s, s + 1);
    case '(':
        l->paren_depth++;
        return make(l, T_LPAREN, s, s + 1);
    case ')':
        if (--l->paren_depth < 0) return lex_error(l, s + 1, "unexpected right parenthesis ')'");
        return make(l, T_RPAREN, s, s + 1);
    case '+': return make(l, T_ADD, s, s + 1);
    case '-': return make(l, T_SUB, s, s + 1);
    case '*': return make(l, T_MUL, s, s + 1);
    case '/': return make(l, T_DIV, s, s + 1);
    case '%': return make(l, T_MOD, s, s + 1);
    case '^': return make(l, T_POW, s, s + 1);
    case ',': return make(l, T_COMMA, s, s + 1);
    default: break;
    }
    if (duration_keyword_start(c)) {
        token t;
        if (duration_keyword(l, s, &t)) return t;
    } else if (is_digit(c) || (c == '.' && is_digit(at(l, s + 1)))) {
        l->got_duration = true;
        l->mode = LEX_STATEMENTS;
        return lex_number(l);
    }
    return lex_error(l, s, "unexpected character in duration expression: %s",
                     rune_at(l, s, r, sizeof r));
}

static token lex_statements(lexer *l)
{
    for (;;) {
        if (l->pos >= l->len) {
            if (l->paren_depth != 0) return lex_error(l, l->pos, "unclosed left parenthesis");
            if (l->bracket_open) return lex_error(l, l->pos, "unclosed left bracket");
            l->done = true;
            return (token){.kind = T_EOF, .pos = l->len, .text = l->src + l->len};
        }
        char c = l->src[l->pos];
        if (is_space(c)) l->pos++;
        else if (c == '#') skip_line(l);
        else break;
    }
    size_t s = l->pos;
    char c = l->src[s], n = at(l, s + 1), r[24];
    switch (c) {
    case ',': return make(l, T_COMMA, s, s + 1);
    case '*': return make(l, T_MUL, s, s + 1);
    case '/': return make(l, T_DIV, s, s + 1);
    case '%': return make(l, T_MOD, s, s + 1);
    case '+': return make(l, T_ADD, s, s + 1);
    case '-': return make(l, T_SUB, s, s + 1);
    case '^': return make(l, T_POW, s, s + 1);
    case '@': return make(l, T_AT, s, s + 1);
    case '=':
        if (n == '=') return make(l, T_EQLC, s, s + 2);
        if (n == '~') return lex_error(l, s, "unexpected character after '=': '~'");
        return make(l, T_ASSIGN, s, s + 1);
    case '!':
        if (n != '=')
            return lex_error(l, s, "unexpected character after '!': %s", rune_at(l, s + 1, r, sizeof r));
        return make(l, T_NEQ, s, s + 2);
    case '<':
        if (n == '=') return make(l, T_LTE, s, s + 2);
        if (n == '/') return make(l, T_TRIM_UPPER, s, s + 2);
        return make(l, T_LSS, s, s + 1);
    case '>':
        if (n == '=') return make(l, T_GTE, s, s + 2);
        if (n == '/') return make(l, T_TRIM_LOWER, s, s + 2);
        return make(l, T_GTR, s, s + 1);
    case '"':
    case '\'':
    case '`': return lex_string(l);
    case '(':
        l->paren_depth++;
        return make(l, T_LPAREN, s, s + 1);
    case ')':
        if (--l->paren_depth < 0) return lex_error(l, s + 1, "unexpected right parenthesis ')'");
        return make(l, T_RPAREN, s, s + 1);
    case '{':
        l->mode = LEX_BRACES;
        return make(l, T_LBRACE, s, s + 1);
    case '[':
        if (l->bracket_open) return lex_error(l, s, "unexpected left bracket '['");
        l->got_colon = false;
        l->bracket_open = true;
        l->mode = LEX_DURATION;
        return make(l, T_LBRACKET, s, s + 1);
    case ']':
        if (!l->bracket_open) return lex_error(l, s, "unexpected right bracket ']'");
        l->bracket_open = false;
        return make(l, T_RBRACKET, s, s + 1);
    default: break;
    }
    if (is_digit(c) || (c == '.' && is_digit(n))) return lex_number(l);
    if (is_alpha(c) || c == ':') {
        if (!l->bracket_open) return lex_word(l);
        /* After the range of [range:step] only the colon, duration words and arithmetic. */
        if (c == ':') {
            if (l->got_colon) return lex_error(l, s, "unexpected colon ':'");
            l->got_colon = true;
            return make(l, T_COLON, s, s + 1);
        }
        token t;
        if (duration_keyword_start(c) && duration_keyword(l, s, &t)) return t;
        return lex_error(l, s, "unexpected character: %s, expected ':'", rune_at(l, s, r, sizeof r));
    }
    return lex_error(l, s, "unexpected character: %s", rune_at(l, s, r, sizeof r));
}

token lexer_next(lexer *l)
{
    if (l->done) return (token){.kind = T_EOF, .pos = l->len, .text = l->src + l->len};
    switch (l->mode) {
    case LEX_BRACES: return lex_braces(l);
    case LEX_DURATION: return lex_duration(l);
    default: return lex_statements(l);
    }
}
