/*
 * lexer.c: PromQL text into tokens.
 *
 * Numbers follow Prometheus: decimal, hex (0x1f), exponents, Inf and NaN (as identifiers the
 * parser resolves); a number directly followed by unit letters is a duration (5m, 1h30m). Strings
 * take Go's three quote forms: "..." and '...' with escapes, `...` raw.
 */
#include "query/ast.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lexer_init(lexer *l, const char *src, size_t len, arena *mem)
{
    l->src = src;
    l->len = len;
    l->pos = 0;
    l->mem = mem;
    l->err[0] = '\0';
}

void lexer_position(const char *src, size_t pos, int *line, int *col)
{
    int ln = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (src[i] == '\n') {
            ln++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = ln;
    *col = c;
}

const char *tok_name(tok_kind k)
{
    static const char *names[] = {"end of input", "identifier", "number", "duration", "string",
                                  "\"{\"", "\"}\"", "\"(\"", "\")\"", "\"[\"", "\"]\"", "\",\"",
                                  "\":\"", "\"@\"", "\"=\"", "\"!=\"", "\"=~\"", "\"!~\"",
                                  "\"==\"", "\"<\"", "\"<=\"", "\">\"", "\">=\"", "\"+\"", "\"-\"",
                                  "\"*\"", "\"/\"", "\"%\"", "\"^\"", "error"};
    return k <= T_ERROR ? names[k] : "?";
}

static token lex_error(lexer *l, size_t pos, const char *fmt, const char *detail)
{
    int line, col;
    lexer_position(l->src, pos, &line, &col);
    char msg[300];
    snprintf(msg, sizeof msg, fmt, detail);
    snprintf(l->err, sizeof l->err, "%d:%d: parse error: %s", line, col, msg);
    return (token){.kind = T_ERROR, .pos = pos};
}

static bool ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
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

static token lex_string(lexer *l)
{
    size_t start = l->pos;
    char q = l->src[l->pos++];
    char *out = arena_alloc(l->mem, l->len - start + 1);
    if (!out) return lex_error(l, start, "%s", "out of memory");
    size_t o = 0;
    while (l->pos < l->len) {
        char c = l->src[l->pos];
        if (c == q) {
            l->pos++;
            out[o] = '\0';
            return (token){.kind = T_STRING, .pos = start, .len = l->pos - start,
                           .text = l->src + start, .str = out, .str_len = o};
        }
        if (q != '`' && c == '\n') break;
        if (q == '`' || c != '\\') {
            out[o++] = c;
            l->pos++;
            continue;
        }
        l->pos++;
        if (l->pos >= l->len) break;
        char e = l->src[l->pos++];
        switch (e) {
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'v': out[o++] = '\v'; break;
        case '\\': out[o++] = '\\'; break;
        case '"':
        case '\'':
            if (e != q) return lex_error(l, l->pos - 2, "%s", "unknown escape sequence");
            out[o++] = e;
            break;
        case 'x':
        case 'u':
        case 'U': {
            int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int i = 0; i < n; i++) {
                int h = l->pos < l->len ? hexv(l->src[l->pos]) : -1;
                if (h < 0) return lex_error(l, l->pos, "%s", "invalid escape sequence");
                v = v * 16 + (uint32_t)h;
                l->pos++;
            }
            if (e == 'x') out[o++] = (char)v;
            else {
                if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
                    return lex_error(l, l->pos, "%s", "escape sequence is an invalid Unicode code point");
                o += put_utf8(out + o, v);
            }
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = (uint32_t)(e - '0');
                for (int i = 0; i < 2; i++) {
                    if (l->pos >= l->len || l->src[l->pos] < '0' || l->src[l->pos] > '7')
                        return lex_error(l, l->pos, "%s", "invalid escape sequence");
                    v = v * 8 + (uint32_t)(l->src[l->pos++] - '0');
                }
                if (v > 255) return lex_error(l, l->pos, "%s", "octal escape value > 255");
                out[o++] = (char)v;
                break;
            }
            return lex_error(l, l->pos - 2, "%s", "unknown escape sequence");
        }
    }
    return lex_error(l, start, "%s", "unterminated quoted string");
}

/* A duration literal: one or more <digits><unit>, units in decreasing order. */
static bool scan_duration(lexer *l, size_t start, token *t)
{
    size_t p = start;
    while (p < l->len && (isalnum((unsigned char)l->src[p]))) p++;
    int64_t ms;
    if (duration_parse(l->src + start, p - start, &ms, NULL)) return false;
    *t = (token){.kind = T_DURATION, .pos = start, .len = p - start, .text = l->src + start,
                 .dur_ms = ms, .num = (double)ms / 1000.0};
    l->pos = p;
    return true;
}

static token lex_number(lexer *l)
{
    size_t start = l->pos;
    const char *s = l->src + start;
    /* Digits then letters make a duration, unless it is hex or an exponent. */
    size_t p = start;
    while (p < l->len && isdigit((unsigned char)l->src[p])) p++;
    if (p < l->len && p > start && isalpha((unsigned char)l->src[p]) &&
        !(l->src[p] == 'x' || l->src[p] == 'X' || l->src[p] == 'e' || l->src[p] == 'E')) {
        token t;
        if (scan_duration(l, start, &t)) return t;
        return lex_error(l, start, "%s", "bad number or duration syntax");
    }
    char num[128];
    size_t n = 0;
    p = start;
    bool hex = p + 1 < l->len && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    while (p < l->len && n < sizeof num - 1) {
        char c = l->src[p];
        bool ok = isdigit((unsigned char)c) || c == '.' ||
                  (hex && (isxdigit((unsigned char)c) || ((c == 'x' || c == 'X') && n == 1))) ||
                  (!hex && (c == 'e' || c == 'E')) ||
                  (!hex && (c == '+' || c == '-') && n > 0 && (num[n - 1] == 'e' || num[n - 1] == 'E'));
        if (!ok) break;
        num[n++] = c;
        p++;
    }
    num[n] = '\0';
    if (p < l->len && (isalnum((unsigned char)l->src[p]) || l->src[p] == '_'))
        return lex_error(l, start, "%s", "bad number or duration syntax");
    char *end;
    errno = 0;
    double v = hex ? (double)strtoull(num, &end, 16) : strtod(num, &end);
    if (*end) return lex_error(l, start, "bad number or duration syntax: \"%s\"", num);
    l->pos = p;
    return (token){.kind = T_NUMBER, .pos = start, .len = p - start, .text = s, .num = v};
}

token lexer_next(lexer *l)
{
    while (l->pos < l->len) {
        char c = l->src[l->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            l->pos++;
        } else if (c == '#') {
            while (l->pos < l->len && l->src[l->pos] != '\n') l->pos++;
        } else {
            break;
        }
    }
    if (l->pos >= l->len) return (token){.kind = T_EOF, .pos = l->len};
    size_t start = l->pos;
    char c = l->src[start];
    char n = start + 1 < l->len ? l->src[start + 1] : '\0';
#define TOK(k, w)                                                                                  \
    do {                                                                                           \
        l->pos += (w);                                                                             \
        return (token){.kind = (k), .pos = start, .len = (w), .text = l->src + start};             \
    } while (0)
    switch (c) {
    case '{': TOK(T_LBRACE, 1);
    case '}': TOK(T_RBRACE, 1);
    case '(': TOK(T_LPAREN, 1);
    case ')': TOK(T_RPAREN, 1);
    case '[': TOK(T_LBRACKET, 1);
    case ']': TOK(T_RBRACKET, 1);
    case ',': TOK(T_COMMA, 1);
    case ':': TOK(T_COLON, 1); /* identifiers starting with ':' are handled below */
    case '@': TOK(T_AT, 1);
    case '+': TOK(T_ADD, 1);
    case '-': TOK(T_SUB, 1);
    case '*': TOK(T_MUL, 1);
    case '/': TOK(T_DIV, 1);
    case '%': TOK(T_MOD, 1);
    case '^': TOK(T_POW, 1);
    case '=':
        if (n == '=') TOK(T_EQLC, 2);
        if (n == '~') TOK(T_RE, 2);
        TOK(T_ASSIGN, 1);
    case '!':
        if (n == '=') TOK(T_NEQ, 2);
        if (n == '~') TOK(T_NRE, 2);
        return lex_error(l, start, "unexpected character after '!': %s", "expected = or ~");
    case '<':
        if (n == '=') TOK(T_LTE, 2);
        TOK(T_LSS, 1);
    case '>':
        if (n == '=') TOK(T_GTE, 2);
        TOK(T_GTR, 1);
    case '"':
    case '\'':
    case '`': return lex_string(l);
    default: break;
    }
#undef TOK
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)n))) return lex_number(l);
    if (ident_start(c) && !(c == ':' && 0)) {
        size_t p = start;
        while (p < l->len && ident_char(l->src[p])) p++;
        l->pos = p;
        return (token){.kind = T_IDENT, .pos = start, .len = p - start, .text = l->src + start};
    }
    char what[16];
    snprintf(what, sizeof what, "%c", c);
    if ((unsigned char)c >= 0x80) snprintf(what, sizeof what, "\\x%02x", (unsigned char)c);
    return lex_error(l, start, "unexpected character: '%s'", what);
}
