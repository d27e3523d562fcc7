/*
 * ast.h: PromQL tokens, the syntax tree and the function table, shared by the lexer, parser,
 * type checker, formatter and evaluator of the query module (internal to src/query and its tests).
 */
#ifndef STRATA_QUERY_AST_H
#define STRATA_QUERY_AST_H

#include "query/query.h"

/* The deepest syntax tree the parser builds (in levels of nesting, counting every operator of a
 * chain). Every pass over the tree recurses, so this bounds their stack use. */
#define PROMQL_MAX_DEPTH 500

/* Token kinds. The groups mirror how Prometheus names tokens in its messages: operators print as
 * <op:+>, aggregators as <aggr:sum>, keywords as <by>. */
typedef enum tok_kind {
    T_EOF,
    T_ERROR,
    T_IDENT,        /* foo (inside braces: a label name) */
    T_METRIC_IDENT, /* foo:bar, an identifier with a colon */
    T_NUMBER,
    T_DURATION,
    T_STRING,
    T_LBRACE,
    T_RBRACE,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_COLON,
    T_ASSIGN, /* = */
    /* operators */
    T_ADD,
    T_SUB,
    T_MUL,
    T_DIV,
    T_MOD,
    T_POW,
    T_ATAN2,
    T_EQLC, /* == */
    T_NEQ,  /* != */
    T_LSS,
    T_LTE,
    T_GTR,
    T_GTE,
    T_TRIM_UPPER, /* </ (native histogram trimming, experimental) */
    T_TRIM_LOWER, /* >/ */
    T_RE,         /* =~ */
    T_NRE,        /* !~ */
    T_LAND,
    T_LOR,
    T_LUNLESS,
    T_AT,
    /* aggregators: one kind, the token text says which */
    T_AGGR,
    /* keywords */
    T_BOOL,
    T_BY,
    T_GROUP_LEFT,
    T_GROUP_RIGHT,
    T_FILL,
    T_FILL_LEFT,
    T_FILL_RIGHT,
    T_IGNORING,
    T_OFFSET,
    T_SMOOTHED,
    T_ANCHORED,
    T_ON,
    T_WITHOUT,
    /* words that are functions in expressions and also work inside duration expressions */
    T_START,
    T_END,
    T_STEP,
    T_RANGE,
    T_MAX_OF,
    T_MIN_OF,
} tok_kind;

typedef struct token {
    tok_kind kind;
    size_t pos; /* byte offset of the token's first byte */
    size_t len;
    const char *text; /* points into the query */
    char *str;        /* T_STRING: the unquoted value, in the lexer's arena, NUL-terminated */
    size_t str_len;
} token;

typedef enum lex_mode { LEX_STATEMENTS, LEX_BRACES, LEX_DURATION } lex_mode;

typedef struct lexer {
    const char *src;
    size_t len;
    size_t pos;
    lex_mode mode;
    int paren_depth;
    bool bracket_open;
    bool got_colon;
    bool got_duration;
    bool done; /* an error or the end was returned; only T_EOF follows */
    arena *mem;
    char msg[STRATA_ERRMSG_SIZE]; /* the message of the last T_ERROR, without a position */
} lexer;

void lexer_init(lexer *l, const char *src, size_t len, arena *mem);
/* Scans the next token, skipping spaces and comments. A lexical error is a T_ERROR token whose
 * pos is where Prometheus reports it and whose message is in l->msg. */
token lexer_next(lexer *l);
/* "LINE:COL" of a byte offset, 1-based, columns in bytes ("unknown position" for an empty
 * query, as Prometheus writes it). Returns buf. */
const char *lexer_position(const char *src, size_t len, size_t pos, char *buf, size_t buflen);
/* Describes a token as Prometheus' messages do: `identifier "foo"`, `<op:+>`, `"("`,
 * `end of input`. Returns buf. */
const char *lexer_describe(const token *t, char *buf, size_t buflen);
bool lexer_is_operator(tok_kind k);
bool lexer_is_keyword(tok_kind k);

/* Appends s as Go's strconv.Quote writes it (printable UTF-8 kept, the rest escaped). */
int lexer_quote(buf *b, const char *s, size_t n);
/* A rune as Go's %q writes it: 'x', '\n', '\x01', '\u00a0'. Returns buf. */
const char *lexer_quote_rune(uint32_t r, char *buf, size_t len);
/* Decodes one UTF-8 rune at s (n > 0 bytes); an invalid sequence is U+FFFD of width 1, as Go. */
uint32_t lexer_utf8_decode(const char *s, size_t n, size_t *width);
/* Formats a millisecond duration as Prometheus does: 1h30m, 500ms, 0s. */
int promql_duration_string(int64_t ms, char *buf, size_t len);

/* ---- syntax tree ------------------------------------------------------------------------------- */

typedef enum node_kind {
    N_NUMBER,
    N_STRING,
    N_VECTOR,   /* instant vector selector */
    N_MATRIX,   /* range selector: a vector selector with a range */
    N_SUBQUERY, /* inner[range:step] */
    N_CALL,
    N_AGG,
    N_BINARY,
    N_UNARY,
    N_PAREN,
    N_DURATION, /* duration arithmetic inside [...] or after offset; never an expression itself */
} node_kind;

typedef enum at_kind { AT_NONE, AT_TIME, AT_START, AT_END } at_kind;

typedef enum promql_type { PT_NONE, PT_SCALAR, PT_VECTOR, PT_MATRIX, PT_STRING } promql_type;

/* A function as the parser knows it: Prometheus' function table. */
typedef struct promql_func {
    const char *name;
    promql_type args[5];
    int n_args;
    /* 0: exactly n_args arguments; N > 0: the last may be left out or repeated up to N times in
     * all (n_args - 1 .. n_args - 1 + N arguments); -1: n_args - 1 or more. */
    int variadic;
    promql_type ret;
    bool experimental; /* behind --enable-feature=promql-experimental-functions in Prometheus */
} promql_func;

/* The function named exactly name (case-sensitive, as in Prometheus); NULL if there is none. */
const promql_func *promql_func_lookup(const char *name, size_t len);

struct promql_expr {
    node_kind kind;
    size_t pos; /* first byte, as Prometheus' position ranges start */
    size_t end; /* one past the last byte */
    int height; /* levels of nodes below and including this one */
    /* N_NUMBER */
    double num;
    bool is_duration; /* written as a duration (5m): formatted back as one */
    int64_t num_ms;   /* is_duration: the exact value in milliseconds (num is in seconds) */
    /* N_STRING: the unquoted value (may hold any bytes a \x escape wrote) */
    char *str;
    size_t str_len;
    /* selectors: the name outside the braces (NULL if none) and every matcher, the name's last */
    char *metric;
    matcher **ms;
    size_t n_ms;
    bool bypass_empty_check; /* info()'s label selector may match everything */
    int64_t range_ms;  /* N_MATRIX, N_SUBQUERY */
    int64_t step_ms;   /* N_SUBQUERY; 0 means the default resolution */
    int64_t offset_ms; /* selectors and subqueries */
    at_kind at;
    int64_t at_ms;
    bool anchored, smoothed; /* extended range selectors (experimental) */
    /* Duration expressions (N_DURATION or N_NUMBER trees) standing in for range_ms, step_ms and
     * offset_ms until the evaluator resolves them (they may use the query's step()/range()). */
    struct promql_expr *range_expr, *step_expr, *offset_expr;
    /* N_DURATION: op is T_ADD..T_POW (lhs NULL for a unary sign), T_STEP, T_RANGE, T_MIN_OF or
     * T_MAX_OF; wrapped when written in parentheses */
    bool wrapped;
    /* N_CALL, N_AGG: the function or aggregation name (lower case for aggregations) */
    char *func;
    const promql_func *fn;
    struct promql_expr **args;
    size_t n_args;
    /* N_AGG: by/without labels; N_BINARY: on/ignoring labels */
    char **grouping;
    size_t n_grouping;
    bool without;
    bool has_grouping;
    /* N_BINARY and N_UNARY: the operator (T_ADD .. T_LUNLESS); func holds the word of and, or,
     * unless and atan2 */
    tok_kind op;
    bool return_bool;
    bool has_matching; /* on(...) or ignoring(...) written (and kept: both sides are vectors) */
    bool matching_on;
    int card;     /* 0 one-to-one, 1 group_left (many-to-one), 2 group_right (one-to-many) */
    char **extra; /* group_left/right labels */
    size_t n_extra;
    bool fill_lhs_set, fill_rhs_set; /* fill(), fill_left(), fill_right() (experimental) */
    double fill_lhs, fill_rhs;
    struct promql_expr *lhs, *rhs, *inner;
};

/* The type of an expression as Prometheus' checker sees it. */
promql_type promql_expr_type(const promql_expr *e);
const char *promql_type_name(promql_type t);       /* "instant vector", "range vector", ... */
const char *promql_type_short_name(promql_type t); /* "vector", "matrix", ... */

/* Type-checks a parsed tree as Prometheus does after a clean parse (check.c); 0 or
 * STRATA_EPARSE with the first problem in err. */
int promql_check(const char *src, size_t len, promql_expr *e, char *err);

/* Resolves every duration expression of e (range, step and offset) for a query with this step
 * and range (both 0 for an instant query), as Prometheus does before evaluation. STRATA_EPARSE
 * ("LINE:COL: duration must be greater than 0", division by zero, overflow) when one cannot be
 * used: Prometheus refuses such a query as bad data before running it. */
int promql_resolve_durations(promql_expr *e, const char *query, int64_t step_ms, int64_t range_ms,
                             char *err);

#endif
