/*
 * ast.h: PromQL tokens and syntax tree, shared by the lexer, parser, formatter and evaluator.
 */
#ifndef STRATA_QUERY_AST_H
#define STRATA_QUERY_AST_H

#include "query/query.h"

typedef enum tok_kind {
    T_EOF,
    T_IDENT,
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
    T_AT,
    T_ASSIGN, /* = */
    T_NEQ,    /* != */
    T_RE,     /* =~ */
    T_NRE,    /* !~ */
    T_EQLC,   /* == */
    T_LSS,
    T_LTE,
    T_GTR,
    T_GTE,
    T_ADD,
    T_SUB,
    T_MUL,
    T_DIV,
    T_MOD,
    T_POW,
    T_ERROR,
} tok_kind;

typedef struct token {
    tok_kind kind;
    size_t pos; /* byte offset of the token's start */
    size_t len;
    const char *text;
    double num;      /* T_NUMBER */
    int64_t dur_ms;  /* T_DURATION */
    char *str;       /* T_STRING: unquoted, owned by the lexer's arena */
    size_t str_len;
} token;

typedef struct lexer {
    const char *src;
    size_t len;
    size_t pos;
    arena *mem;
    char err[STRATA_ERRMSG_SIZE];
} lexer;

void lexer_init(lexer *l, const char *src, size_t len, arena *mem);
/* Scans the next token; T_ERROR with l->err set on a lexical error. */
token lexer_next(lexer *l);
const char *tok_name(tok_kind k);
/* "LINE:COL" of a byte offset, 1-based, columns in bytes. */
void lexer_position(const char *src, size_t pos, int *line, int *col);

typedef enum node_kind {
    N_NUMBER,
    N_STRING,
    N_VECTOR,   /* instant vector selector */
    N_MATRIX,   /* range selector: a vector selector with a range */
    N_SUBQUERY, /* expr[range:step] */
    N_CALL,
    N_AGG,
    N_BINARY,
    N_UNARY,
    N_PAREN,
} node_kind;

typedef enum at_kind { AT_NONE, AT_TIME, AT_START, AT_END } at_kind;

struct promql_expr {
    node_kind kind;
    size_t pos;
    double num;
    char *str;
    size_t str_len;
    /* selectors */
    char *metric;
    matcher **ms;
    size_t n_ms;
    int64_t range_ms;
    int64_t step_ms; /* subquery; 0 means the default resolution */
    int64_t offset_ms;
    at_kind at;
    int64_t at_ms;
    /* calls and aggregations */
    char *func;
    struct promql_expr **args;
    size_t n_args;
    char **grouping;
    size_t n_grouping;
    bool without;
    bool has_grouping;
    /* operators */
    tok_kind op;   /* T_ADD.., or T_IDENT for and/or/unless/atan2 with func set to the word */
    bool return_bool;
    bool has_matching; /* on(...) or ignoring(...) given; labels in grouping, on in `without`'s
                        * negation: matching_on */
    bool matching_on;
    int card;          /* 0 one-to-one, 1 group_left, 2 group_right */
    char **extra;      /* group_left/right labels */
    size_t n_extra;
    struct promql_expr *lhs, *rhs, *inner;
};

#endif
