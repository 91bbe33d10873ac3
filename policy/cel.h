/*
 * The parser of the CEL subset that policies are written in: the Common
 * Expression Language as Kubernetes ValidatingAdmissionPolicy uses it,
 * without bytes literals, message construction, leading-dot names and
 * optional selection. cel_parse() turns one expression into a tree of
 * struct cel_ast nodes for the evaluator.
 *
 * Positions are 1-based. A column counts Unicode code points from the start
 * of the line, so a tab or an emoji is one column, as in libyaml's marks.
 */
#ifndef PG_CEL_H
#define PG_CEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/error.h"

/* Bytes of one expression's source. */
#define CEL_SOURCE_MAX_BYTES (64u * 1024)

/*
 * Nesting of one expression: parentheses, brackets and calls inside each
 * other, and the height of the tree, where every operator, selection,
 * index and macro adds a level. The CEL language definition requires at
 * least 32. The bound keeps the recursive parser, printer and evaluator
 * far from the end of the stack.
 */
#define CEL_DEPTH_MAX 64

/* Elements of one list literal, and entries of one map literal. */
#define CEL_ELEMENTS_MAX 1024

/* Arguments of one function call, not counting the receiver. */
#define CEL_ARGUMENTS_MAX 32

enum cel_ast_kind {
    CEL_AST_NULL,
    CEL_AST_BOOL,
    CEL_AST_INT,
    CEL_AST_UINT,
    CEL_AST_DOUBLE,
    CEL_AST_STRING,
    CEL_AST_IDENT,       /* name */
    CEL_AST_SELECT,      /* children[0] . name */
    CEL_AST_HAS,         /* has(children[0] . name): a presence test */
    CEL_AST_INDEX,       /* children[0] [ children[1] ] */
    CEL_AST_CALL,        /* name(children...), or with a receiver, see below */
    CEL_AST_UNARY,       /* op children[0] */
    CEL_AST_BINARY,      /* children[0] op children[1] */
    CEL_AST_CONDITIONAL, /* children[0] ? children[1] : children[2] */
    CEL_AST_LIST,        /* [children...] */
    CEL_AST_MAP,         /* {children[0]: children[1], children[2]: ...} */
    CEL_AST_COMPREHENSION, /* a macro over a list or map, see below */
};

enum cel_op {
    CEL_OP_NONE,
    CEL_OP_NOT,
    CEL_OP_NEGATE,
    CEL_OP_OR,
    CEL_OP_AND,
    CEL_OP_LT,
    CEL_OP_LE,
    CEL_OP_GE,
    CEL_OP_GT,
    CEL_OP_EQ,
    CEL_OP_NE,
    CEL_OP_IN,
    CEL_OP_ADD,
    CEL_OP_SUBTRACT,
    CEL_OP_MULTIPLY,
    CEL_OP_DIVIDE,
    CEL_OP_MODULO,
};

/*
 * The comprehension macros. children[0] is the range (the receiver),
 * name the iteration variable. ALL, EXISTS, EXISTS_ONE and FILTER have
 * the predicate in children[1]. MAP has the transform in children[1], or
 * the filter predicate in children[1] and the transform in children[2]
 * when written with three arguments.
 */
enum cel_macro {
    CEL_MACRO_NONE,
    CEL_MACRO_ALL,
    CEL_MACRO_EXISTS,
    CEL_MACRO_EXISTS_ONE,
    CEL_MACRO_FILTER,
    CEL_MACRO_MAP,
};

/*
 * One node of a parsed expression. The parser owns every pointer in it and
 * cel_ast_free() releases them. The height of a tree is at most
 * CEL_DEPTH_MAX, so code that walks it recursively needs no other bound.
 */
struct cel_ast {
    enum cel_ast_kind kind;
    enum cel_op op;       /* UNARY and BINARY */
    enum cel_macro macro; /* COMPREHENSION */
    bool receiver;        /* CALL: children[0] is the receiver, x.f(y) */
    unsigned line;        /* the token that starts the node, or its operator */
    unsigned column;
    char *name; /* IDENT, SELECT, HAS, CALL, COMPREHENSION */
    union {
        bool boolean;
        int64_t int64;
        uint64_t uint64;
        double float64;
    } value;
    char *string; /* STRING: UTF-8, may contain NUL bytes */
    size_t string_len;
    /* CALL of matches() whose pattern is a string literal: the pattern
     * compiled (and JIT-compiled) once by the parser, a pcre2_code that
     * evaluations on any thread share, so no evaluation compiles it. */
    void *regex;
    /* CALL of matchesGlob() whose glob is a string literal that the
     * parser checked, so evaluations match it without checking it. */
    bool glob_valid;
    struct cel_ast **children;
    size_t child_count;
};

/*
 * Parses len bytes of source as one CEL expression. A matches() call
 * whose pattern is a string literal has the pattern compiled here, so an
 * invalid pattern is a parse error. origin names the
 * expression in error messages ("rule no-root (when)"). Returns the tree,
 * which the caller frees with cel_ast_free(), or NULL with err set: 400
 * CONFIG_INVALID with "ORIGIN:LINE:COLUMN: message" for invalid source,
 * 503 UNAVAILABLE when memory is short.
 */
struct cel_ast *cel_parse(const char *source, size_t len, const char *origin,
                          struct pg_error **err);

/* Frees a tree returned by cel_parse(); accepts NULL. */
void cel_ast_free(struct cel_ast *ast);

/*
 * Prints a tree as a fully parenthesized S-expression for tests and
 * debugging: (+ a b), (. a b) for selection, ([] a b) for indexing,
 * (f x) and (.f receiver x) for calls, (has! (. a b)) and
 * (all! range x predicate) for macros, [1, 2] and {k: v} for literals.
 * Returns a string the caller frees, or NULL when memory is short.
 */
char *cel_ast_to_string(const struct cel_ast *ast);

/*
 * Evaluation steps of one cel_eval(): every node visited and every element
 * a macro, a comparison or a concatenation touches. It ends nested macros
 * over big lists with an error rather than a stall.
 */
#define CEL_EVAL_STEPS_MAX 10000000u

/* Bytes of one string, or of the elements of one list, built during
 * evaluation. Lists and strings read from the input are not counted. */
#define CEL_VALUE_BYTES_MAX (8u * 1024 * 1024)

/* Bytes of all values one cel_eval() builds, which it frees at its end. */
#define CEL_EVAL_MEMORY_MAX (64u * 1024 * 1024)

/*
 * Evaluates a tree from cel_parse() with the members of the JSON object
 * input (NULL for none) as its variables. The iteration variable of a
 * macro shadows a member of the same name. Returns the value as new JSON
 * that the caller releases with json_decref(): an int or uint becomes an
 * integer, a double a real, a list an array and a map with string keys an
 * object. On failure returns NULL with err set. A runtime error such as
 * "no such key: 'x'", "division by zero" or a passed limit is 400
 * CONFIG_INVALID with "LINE:COLUMN: message", and a failed allocation is
 * 503 UNAVAILABLE. Callers add the origin with pg_error_prefix().
 */
json_t *cel_eval(const struct cel_ast *ast, const json_t *input,
                 struct pg_error **err);

#endif
