/*
 * test_lexer.c: the PromQL lexer on every token kind, its modes (braces, durations inside
 * brackets), string escapes, numbers and durations, its error messages and positions, and the
 * Go-style quoting and description helpers the messages are built from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "query/ast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_name(tok_kind k)
{
    static const char *names[] = {
        "EOF",    "ERROR", "IDENT", "METRIC", "NUM",   "DUR",    "STR",    "{",        "}",
        "(",      ")",     "[",     "]",      ",",     ":",      "=",      "+",        "-",
        "*",      "/",     "%",     "^",      "atan2", "==",     "!=",     "<",        "<=",
        ">",      ">=",    "</",    ">/",     "=~",    "!~",     "and",    "or",       "unless",
        "@",      "AGGR",  "bool",  "by",     "gl",    "gr",     "fill",   "fill_l",   "fill_r",
        "ignoring", "offset", "smoothed", "anchored", "on", "without", "start", "end", "step",
        "range",  "max_of", "min_of",
    };
    return names[k];
}

static char out[4096];

/* Lexes q into "KIND:text KIND:text ..." (strings as STR<unquoted value>), ending with the
 * position of the end or of the error and its message. */
static const char *lex(const char *q)
{
    arena mem;
    arena_init(&mem, 1024);
    lexer l;
    lexer_init(&l, q, strlen(q), &mem);
    size_t o = 0;
    out[0] = '\0';
    for (;;) {
        token t = lexer_next(&l);
        if (o) out[o++] = ' ';
        if (t.kind == T_ERROR) {
            o += (size_t)snprintf(out + o, sizeof out - o, "ERROR@%zu:%s", t.pos, l.msg);
            break;
        }
        if (t.kind == T_EOF) {
            o += (size_t)snprintf(out + o, sizeof out - o, "EOF@%zu", t.pos);
            break;
        }
        if (t.kind == T_STRING)
            o += (size_t)snprintf(out + o, sizeof out - o, "STR<%.*s>", (int)t.str_len, t.str);
        else
            o += (size_t)snprintf(out + o, sizeof out - o, "%s:%.*s", kind_name(t.kind), (int)t.len,
                                  t.text);
    }
    arena_free(&mem);
    return out;
}

#define LEX(q, want)                                                                               \
    do {                                                                                           \
        const char *got_ = lex(q);                                                                 \
        if (strcmp(got_, want)) fprintf(stderr, "lex(%s):\n  got  %s\n  want %s\n", q, got_, want); \
        assert_string_equal(got_, want);                                                           \
    } while (0)

static void test_punctuation_and_operators(void **state)
{
    (void)state;
    LEX("( ) , + - * / % ^ == != < <= > >= @", "(:( ):) ,:, +:+ -:- *:* /:/ %:% ^:^ ==:== !=:!= "
                                                "<:< <=:<= >:> >=:>= @:@ EOF@35");
    LEX("a </ b >/ c", "IDENT:a </:</ IDENT:b >/:>/ IDENT:c EOF@11");
    LEX("a = b", "IDENT:a =:= IDENT:b EOF@5");
    LEX("{}[5m]", "{:{ }:} [:[ DUR:5m ]:] EOF@6");
}

static void test_words(void **state)
{
    (void)state;
    /* keywords in any case; aggregators; identifiers with colons are metric identifiers */
    LEX("and OR Unless atan2", "and:and or:OR unless:Unless atan2:atan2 EOF@19");
    LEX("sum AVG count_values limitk limit_ratio", "AGGR:sum AGGR:AVG AGGR:count_values AGGR:limitk "
                                                   "AGGR:limit_ratio EOF@39");
    LEX("by without on ignoring group_left group_right bool offset",
        "by:by without:without on:on ignoring:ignoring gl:group_left gr:group_right bool:bool "
        "offset:offset EOF@57");
    LEX("anchored smoothed start end step range max_of min_of",
        "anchored:anchored smoothed:smoothed start:start end:end step:step range:range "
        "max_of:max_of min_of:min_of EOF@52");
    LEX("foo:bar :x foo_1", "METRIC:foo:bar METRIC::x IDENT:foo_1 EOF@16");
    /* fill words are keywords only before '(' */
    LEX("fill (1) fill_left fill_right(", "fill:fill (:( NUM:1 ):) IDENT:fill_left fill_r:fill_right "
                                          "(:( ERROR@30:unclosed left parenthesis");
    /* Inf and NaN are numbers */
    LEX("Inf nan NaN iNF infinity", "NUM:Inf NUM:nan NUM:NaN NUM:iNF IDENT:infinity EOF@24");
}

static void test_numbers(void **state)
{
    (void)state;
    LEX("1 1.5 .5 1. 1e3 1E-3 2.5e+10 0x1F 0X_ab", "NUM:1 NUM:1.5 NUM:.5 NUM:1. NUM:1e3 NUM:1E-3 "
                                                   "NUM:2.5e+10 NUM:0x1F NUM:0X_ab EOF@39");
    LEX("1_000 .123_456 0x_53_AB", "NUM:1_000 NUM:.123_456 NUM:0x_53_AB EOF@23");
    LEX("2.5.", "ERROR@0:bad number or duration syntax: \"2.5.\"");
    LEX("100..4", "ERROR@0:bad number or duration syntax: \"100..\"");
    LEX("0deadbeef", "ERROR@0:bad number or duration syntax: \"0de\"");
    LEX("1__0", "ERROR@0:bad number or duration syntax: \"1__\"");
    LEX("1_", "ERROR@0:bad number or duration syntax: \"1_\"");
    LEX("1e", "ERROR@0:bad number or duration syntax: \"1e\"");
    LEX("1x", "ERROR@0:bad number or duration syntax: \"1\"");
    LEX("0x1.5", "ERROR@0:bad number or duration syntax: \"0x1.\"");
}

static void test_durations(void **state)
{
    (void)state;
    LEX("5m 1h30m 500ms 1y2w3d4h5m6s7ms 15s", "DUR:5m DUR:1h30m DUR:500ms DUR:1y2w3d4h5m6s7ms DUR:15s "
                                              "EOF@34");
    /* bad unit combinations are the parser's (they lex as durations) */
    LEX("5y1hs 1.5h", "DUR:5y1hs DUR:1.5h EOF@10");
    LEX("5mm", "ERROR@0:bad number or duration syntax: \"5mm\"");
    LEX("5m1", "ERROR@0:bad number or duration syntax: \"5m1\"");
    LEX("0xABm", "DUR:0xABm EOF@5"); /* "unknown unit" from the parser */
}

static void test_strings(void **state)
{
    (void)state;
    LEX("\"a b\" 'c' `d\\n`", "STR<a b> STR<c> STR<d\\n> EOF@15");
    LEX("\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"", "STR<\a\b\f\n\r\t\v\\\"> EOF@20");
    LEX("'\\''", "STR<'> EOF@4");
    LEX("\"\\x41\\101\\u00e4\\U0001F600\"", "STR<AAä\xf0\x9f\x98\x80> EOF@26");
    LEX("`raw\nnewline`", "STR<raw\nnewline> EOF@13");
    LEX("\"ü\"", "STR<ü> EOF@4");
    LEX("\"abc", "ERROR@0:unterminated quoted string");
    LEX("\"a\nb\"", "ERROR@0:unterminated quoted string");
    LEX("`abc", "ERROR@0:unterminated raw string");
    LEX("x \"\\c\"", "IDENT:x ERROR@2:unknown escape sequence U+0063 'c'");
    LEX("\"\\'\"", "ERROR@0:unknown escape sequence U+0027 '''");
    LEX("'\\\"'", "ERROR@0:unknown escape sequence U+0022 '\"'");
    LEX("\"\\", "ERROR@0:escape sequence not terminated");
    LEX("\"\\x4", "ERROR@0:escape sequence not terminated");
    LEX("\"\\x.\"", "ERROR@0:illegal character U+002E '.' in escape sequence");
    LEX("\"\\400\"", "ERROR@0:escape sequence is an invalid Unicode code point");
    LEX("\"\\uD800\"", "ERROR@0:escape sequence is an invalid Unicode code point");
    LEX("\"\\U00110000\"", "ERROR@0:escape sequence is an invalid Unicode code point");
    LEX("\"\xff\"", "ERROR@0:invalid UTF-8 rune");
    LEX("`\xc3`", "ERROR@0:invalid UTF-8 rune");
}

static void test_braces_mode(void **state)
{
    (void)state;
    /* keywords are label names inside braces; ':' is not an identifier character there */
    LEX("foo{by=\"x\", offset!=\"y\", a=~\"z\", b!~\"w\",}",
        "IDENT:foo {:{ IDENT:by =:= STR<x> ,:, IDENT:offset !=:!= STR<y> ,:, IDENT:a =~:=~ STR<z> "
        ",:, IDENT:b !~:!~ STR<w> ,:, }:} EOF@41");
    LEX("{\"my.metric\", \"a.b\"='c'}", "{:{ STR<my.metric> ,:, STR<a.b> =:= STR<c> }:} EOF@24");
    LEX("{a # comment\n=\"b\"}", "{:{ IDENT:a =:= STR<b> }:} EOF@18");
    LEX("{a:b=\"c\"}", "{:{ IDENT:a ERROR@2:unexpected character inside braces: ':'");
    LEX("{a!b}", "{:{ IDENT:a ERROR@2:unexpected character after '!' inside braces: 'b'");
    LEX("{{", "{:{ ERROR@1:unexpected left brace '{'");
    LEX("{1}", "{:{ ERROR@1:unexpected character inside braces: '1'");
    LEX("{a=\"b\"", "{:{ IDENT:a =:= STR<b> ERROR@6:unexpected end of input inside braces");
}

static void test_duration_mode(void **state)
{
    (void)state;
    LEX("x[5m:1m]", "IDENT:x [:[ DUR:5m ::: DUR:1m ]:] EOF@8");
    LEX("x[ 5m * 2 + step() ]", "IDENT:x [:[ DUR:5m *:* NUM:2 +:+ step:step (:( ):) ]:] EOF@20");
    LEX("x[min_of(RANGE(), 1h)]", "IDENT:x [:[ min_of:min_of (:( range:RANGE (:( ):) ,:, DUR:1h ):) "
                                  "]:] EOF@22");
    LEX("x[1h:]", "IDENT:x [:[ DUR:1h ::: ]:] EOF@6");
    LEX("x[\"5m\"]", "IDENT:x [:[ ERROR@2:unexpected character in duration expression: '\"'");
    LEX("x[foo]", "IDENT:x [:[ ERROR@2:unexpected character in duration expression: 'f'");
    LEX("x[", "IDENT:x [:[ ERROR@2:unexpected end of input in duration expression");
    LEX("x[5m", "IDENT:x [:[ DUR:5m ERROR@4:unclosed left bracket");
    LEX("x[5s x 5s]", "IDENT:x [:[ DUR:5s ERROR@5:unexpected character: 'x', expected ':'");
    LEX("x[5m:1m:]", "IDENT:x [:[ DUR:5m ::: DUR:1m ERROR@7:unexpected colon ':'");
    LEX("x[:5m]", "IDENT:x [:[ ERROR@3:unexpected colon before duration in duration expression");
    LEX("x[5m[", "IDENT:x [:[ DUR:5m ERROR@4:unexpected left bracket '['");
    LEX("]", "ERROR@0:unexpected right bracket ']'");
}

static void test_statement_errors(void **state)
{
    (void)state;
    LEX("(1))", "(:( NUM:1 ):) ERROR@4:unexpected right parenthesis ')'");
    LEX("((1)", "(:( (:( NUM:1 ):) ERROR@4:unclosed left parenthesis");
    LEX("1 =~ 1", "NUM:1 ERROR@2:unexpected character after '=': '~'");
    LEX("1 !~ 1", "NUM:1 ERROR@2:unexpected character after '!': '~'");
    LEX("!", "ERROR@0:unexpected character after '!': '\xef\xbf\xbd'");
    LEX(".", "ERROR@0:unexpected character: '.'");
    LEX("}", "ERROR@0:unexpected character: '}'");
    LEX("a $", "IDENT:a ERROR@2:unexpected character: '$'");
    LEX("ü", "ERROR@0:unexpected character: 'ü'");
    LEX("\x01", "ERROR@0:unexpected character: '\\x01'");
    LEX("\xc2\xa0", "ERROR@0:unexpected character: '\\u00a0'");
    /* comments are skipped; after an error only the end follows */
    LEX("# just a comment\n\n", "EOF@18");
    LEX("a # c\n+ b", "IDENT:a +:+ IDENT:b EOF@9");
}

static void test_helpers(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(lexer_position("abc", 3, 0, b, sizeof b), "1:1");
    assert_string_equal(lexer_position("ab\ncd", 5, 4, b, sizeof b), "2:2");
    assert_string_equal(lexer_position("ab\ncd", 5, 3, b, sizeof b), "2:1");
    assert_string_equal(lexer_position("", 0, 0, b, sizeof b), "unknown position");
    assert_string_equal(lexer_position("äb", 3, 2, b, sizeof b), "1:3"); /* columns in bytes */

    struct {
        int64_t ms;
        const char *s;
    } durs[] = {{0, "0s"},           {1, "1ms"},          {1500, "1s500ms"},     {60000, "1m"},
                {5400000, "1h30m"},  {86400000, "1d"},   {604800000, "1w"},     {691200000, "8d"},
                {31536000000, "1y"}, {7776000000, "90d"}, {31536000000 + 86400000, "366d"},
                {1209600000 + 1, "14d1ms"}};
    for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
        promql_duration_string(durs[i].ms, b, sizeof b);
        assert_string_equal(b, durs[i].s);
    }

    buf q = {0};
    assert_int_equal(lexer_quote(&q, "a\"b\\c\n\t\x01\x7f\xff" "ä\xe2\x80\x8b", 15), 0);
    assert_string_equal((char *)q.data, "\"a\\\"b\\\\c\\n\\t\\x01\\x7f\\xffä\\u200b\"");
    buf_free(&q);
    assert_string_equal(lexer_quote_rune('a', b, sizeof b), "'a'");
    assert_string_equal(lexer_quote_rune('\'', b, sizeof b), "'\\''");
    assert_string_equal(lexer_quote_rune('"', b, sizeof b), "'\"'");
    assert_string_equal(lexer_quote_rune(0x1F600, b, sizeof b), "'\xf0\x9f\x98\x80'");
    assert_string_equal(lexer_quote_rune(0xE000, b, sizeof b), "'\\ue000'");
    assert_string_equal(lexer_quote_rune(0xE0001, b, sizeof b), "'\\U000e0001'");

    size_t w;
    assert_int_equal(lexer_utf8_decode("\xc3\xa4", 2, &w), 0xe4);
    assert_int_equal(w, 2);
    assert_int_equal(lexer_utf8_decode("\xc3", 1, &w), 0xfffd);
    assert_int_equal(w, 1);
    assert_int_equal(lexer_utf8_decode("\xed\xa0\x80", 3, &w), 0xfffd); /* a surrogate */
    assert_int_equal(lexer_utf8_decode("\xe0\x80\x80", 3, &w), 0xfffd); /* overlong */

    /* token descriptions, as in "unexpected <...>" */
    struct {
        const char *q;
        const char *d;
    } descs[] = {{"foo", "identifier \"foo\""},
                 {"foo:bar", "metric identifier \"foo:bar\""},
                 {"some_long_identifier", "identifier \"some_long_identifier\""},
                 {"+", "<op:+>"},
                 {"and", "<op:and>"},
                 {"@", "<op:@>"},
                 {"SUM", "<aggr:SUM>"},
                 {"by", "<by>"},
                 {"bool", "<bool>"},
                 {"start", "\"start\""},
                 {"(", "\"(\""},
                 {",", "\",\""},
                 {"=", "\"=\""},
                 {"42", "number \"42\""},
                 {"5m", "duration \"5m\""},
                 {"\"abc\"", "string \"\\\"abc\\\"\""},
                 {"\"abcdefghijklm\"", "string \"\\\"abcdefghi\"..."},
                 {"", "end of input"}};
    for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++) {
        arena mem;
        arena_init(&mem, 256);
        lexer l;
        lexer_init(&l, descs[i].q, strlen(descs[i].q), &mem);
        token t = lexer_next(&l);
        assert_string_equal(lexer_describe(&t, b, sizeof b), descs[i].d);
        arena_free(&mem);
    }
    assert_true(lexer_is_operator(T_LAND) && lexer_is_operator(T_AT) && !lexer_is_operator(T_AGGR));
    assert_true(lexer_is_keyword(T_BY) && lexer_is_keyword(T_OFFSET) && !lexer_is_keyword(T_START));
}

/* Long queries with many strings: each string's buffer is sized by the string, not the rest of
 * the query (this would take gigabytes otherwise). */
static void test_many_strings(void **state)
{
    (void)state;
    enum { N = 20000 };
    char *q = malloc(N * 6 + 1);
    assert_non_null(q);
    for (int i = 0; i < N; i++) memcpy(q + i * 6, "\"ab\", ", 6);
    q[N * 6] = '\0';
    arena mem;
    arena_init(&mem, 4096);
    lexer l;
    lexer_init(&l, q, N * 6, &mem);
    int strings = 0;
    for (token t = lexer_next(&l); t.kind != T_EOF; t = lexer_next(&l)) strings += t.kind == T_STRING;
    assert_int_equal(strings, N);
    assert_true(mem.total < 4u * 1024 * 1024);
    arena_free(&mem);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_punctuation_and_operators),
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_braces_mode),
        cmocka_unit_test(test_duration_mode),
        cmocka_unit_test(test_statement_errors),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_many_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
