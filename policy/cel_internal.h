/*
 * The interface between the CEL lexer (cel_lex.c), the parser
 * (cel_parse.c) and the tree functions (cel_ast.c). Nothing outside
 * policy/cel_*.c includes it.
 */
#ifndef PG_CEL_INTERNAL_H
#define PG_CEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config/error.h"
#include "policy/cel.h"

enum cel_token_kind {
    CEL_TOK_EOF,
    CEL_TOK_IDENT, /* also the reserved words, which the parser rejects */
    CEL_TOK_INT,   /* number.uint64 is the magnitude, up to 2^64 - 1 */
    CEL_TOK_UINT,
    CEL_TOK_DOUBLE,
    CEL_TOK_STRING,
    CEL_TOK_TRUE,
    CEL_TOK_FALSE,
    CEL_TOK_NULL,
    CEL_TOK_IN,
    CEL_TOK_LPAREN,
    CEL_TOK_RPAREN,
    CEL_TOK_LBRACKET,
    CEL_TOK_RBRACKET,
    CEL_TOK_LBRACE,
    CEL_TOK_RBRACE,
    CEL_TOK_DOT,
    CEL_TOK_COMMA,
    CEL_TOK_COLON,
    CEL_TOK_QUESTION,
    CEL_TOK_PLUS,
    CEL_TOK_MINUS,
    CEL_TOK_STAR,
    CEL_TOK_SLASH,
    CEL_TOK_PERCENT,
    CEL_TOK_NOT,
    CEL_TOK_LT,
    CEL_TOK_LE,
    CEL_TOK_GT,
    CEL_TOK_GE,
    CEL_TOK_EQ,
    CEL_TOK_NE,
    CEL_TOK_AND,
    CEL_TOK_OR,
};

struct cel_token {
    enum cel_token_kind kind;
    unsigned line;
    unsigned column;
    const char *text; /* the token in the source, not NUL-terminated */
    size_t length;
    union {
        uint64_t uint64;
        double float64;
    } number;
    char *string; /* STRING: decoded UTF-8, owned by the token */
    size_t string_len;
};

/*
 * The allocation behind every struct cel_ast. The parser tracks each
 * subtree's height here to enforce CEL_DEPTH_MAX, and cel_ast_free() frees
 * the node through its first member.
 */
struct cel_node {
    struct cel_ast ast;
    unsigned height; /* 0 for a leaf, else 1 + the tallest child */
};

/* Reading state over one expression's source. */
struct cel_lexer {
    const char *source;
    size_t len;
    size_t pos;
    unsigned line;
    unsigned column;
    const char *origin;
};

void cel_lexer_init(struct cel_lexer *lx, const char *source, size_t len,
                    const char *origin);

/*
 * Reads the next token into *tok, which the caller clears with
 * cel_token_clear(). Returns 0, or -1 with err set for invalid input.
 */
int cel_lex_next(struct cel_lexer *lx, struct cel_token *tok,
                 struct pg_error **err);

/* Frees the string a token owns and resets it to an EOF token. */
void cel_token_clear(struct cel_token *tok);

/* Returns a static description of a token kind for messages: "')'". */
const char *cel_token_kind_name(enum cel_token_kind kind);

/* Sets err to "ORIGIN:LINE:COLUMN: message" with status 400. */
void cel_error_at(struct pg_error **err, const char *origin, unsigned line,
                  unsigned column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Sets err to the 503 error of a failed allocation. */
void cel_error_memory(struct pg_error **err);

/*
 * Prepares a pattern that compiled (*code, a pcre2_code) for the DFA
 * matcher that matches() uses. It must have no backreferences, subroutine
 * calls, \K, \C, (*ACCEPT) or callouts, which that matcher cannot run and
 * RE2, the syntax CEL specifies, lacks too. The pattern is then compiled
 * again, anchored behind a lazy "match anything" prefix, as RE2 searches:
 * one pass over the text then finds a match at any position, where the
 * plain pattern would be run from every position. *code becomes that
 * pattern, or stays when it cannot be built. Returns 0, or -1 with why
 * set for a pattern the DFA matcher cannot run.
 */
int cel_regex_prepare(const char *pattern, size_t len, void **code, char *why,
                      size_t why_size);

/* Whether a pattern from cel_regex_prepare() runs in one pass (anchored),
 * so its cost grows with the text's length, not with its square. */
bool cel_regex_one_pass(const void *code);

#endif
