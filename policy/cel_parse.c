/*
 * The CEL parser: a recursive descent parser over the tokens of
 * cel_lex.c, one function per precedence level of the CEL grammar, from
 * the conditional (lowest) to member access and calls (highest). Macros
 * (has, all, exists, exists_one, filter, map) become their own nodes
 * here, so the evaluator never treats them as calls. Every nesting step is
 * checked against CEL_DEPTH_MAX as it recurses or builds a node.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/error.h"
#include "policy/cel.h"
#include "policy/cel_internal.h"
#include "policy/glob.h"

/* Characters of a token quoted in an error message. */
#define CEL_QUOTE_MAX 32

struct parser {
    struct cel_lexer lx;
    struct cel_token tok;  /* the current token */
    struct cel_token next; /* the token after it, when has_next */
    bool has_next;
    unsigned depth; /* nested parse_expr() calls */
    const char *origin;
    struct pg_error **err;
};

static int compile_literal_regex(struct parser *p, struct cel_ast *call);
static int check_literal_glob(struct parser *p, struct cel_ast *call);

/* A list of children being collected, bounded by its caller. */
struct node_list {
    struct cel_ast **items;
    size_t count;
    size_t capacity;
};

static struct cel_ast *parse_expr(struct parser *p);

static const char *const reserved_words[] = {
    "as",        "break",  "const",  "continue", "else",  "for",
    "function",  "if",     "import", "let",      "loop",  "package",
    "namespace", "return", "var",    "void",     "while",
};

static void parse_fail(struct parser *p, unsigned line, unsigned column,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
parse_fail(struct parser *p, unsigned line, unsigned column, const char *fmt,
           ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    cel_error_at(p->err, p->origin, line, column, "%s", message);
}

/* Describes a token for "found ..." in messages, quoting short names and
 * numbers. */
static void
describe_token(const struct cel_token *tok, char *out, size_t size)
{
    int quoted = tok->length > CEL_QUOTE_MAX ? CEL_QUOTE_MAX : (int)tok->length;
    const char *more = tok->length > CEL_QUOTE_MAX ? "..." : "";

    switch (tok->kind) {
    case CEL_TOK_IDENT:
    case CEL_TOK_INT:
    case CEL_TOK_UINT:
    case CEL_TOK_DOUBLE:
        snprintf(out, size, "%s '%.*s%s'", cel_token_kind_name(tok->kind),
                 quoted, tok->text, more);
        break;
    default:
        snprintf(out, size, "%s", cel_token_kind_name(tok->kind));
        break;
    }
}

/* Fails with "expected WHAT, found <the current token>". */
static void
fail_expected(struct parser *p, const char *what)
{
    char found[CEL_QUOTE_MAX + 64];

    describe_token(&p->tok, found, sizeof(found));
    parse_fail(p, p->tok.line, p->tok.column, "expected %s, found %s", what,
               found);
}

/* Fails at the current token for a delimiter that does not close: names
 * where the construct opened. */
static void
fail_unclosed(struct parser *p, const char *expected, const char *construct,
              unsigned line, unsigned column)
{
    char found[CEL_QUOTE_MAX + 64];
    char where[64];

    describe_token(&p->tok, found, sizeof(found));
    if (line == p->tok.line)
        snprintf(where, sizeof(where), "column %u", column);
    else
        snprintf(where, sizeof(where), "line %u, column %u", line, column);
    parse_fail(p, p->tok.line, p->tok.column,
               "expected %s to close the %s opened at %s, found %s", expected,
               construct, where, found);
}

static void
fail_depth(struct parser *p, unsigned line, unsigned column)
{
    parse_fail(p, line, column,
               "expression nests deeper than the maximum of %d levels "
               "(CEL_DEPTH_MAX); split it into smaller expressions",
               CEL_DEPTH_MAX);
}

/* Moves to the next token. */
static int
next_token(struct parser *p)
{
    if (p->has_next) {
        cel_token_clear(&p->tok);
        p->tok = p->next;
        memset(&p->next, 0, sizeof(p->next));
        p->has_next = false;
        return 0;
    }
    return cel_lex_next(&p->lx, &p->tok, p->err);
}

/* Reads the token after the current one without moving. */
static const struct cel_token *
peek_token(struct parser *p)
{
    if (!p->has_next) {
        if (cel_lex_next(&p->lx, &p->next, p->err) < 0)
            return NULL;
        p->has_next = true;
    }
    return &p->next;
}

static struct cel_ast *
node_new(struct parser *p, enum cel_ast_kind kind, unsigned line,
         unsigned column)
{
    struct cel_node *node = calloc(1, sizeof(*node));

    if (node == NULL) {
        cel_error_memory(p->err);
        return NULL;
    }
    node->ast.kind = kind;
    node->ast.line = line;
    node->ast.column = column;
    node->height = 0;
    return &node->ast;
}

static unsigned
node_height(const struct cel_ast *ast)
{
    return ((const struct cel_node *)ast)->height;
}

/*
 * Gives node the children of list, which is emptied either way. Returns
 * 0, or -1 when the node would nest deeper than CEL_DEPTH_MAX (the caller
 * still frees node).
 */
static int
node_adopt(struct parser *p, struct cel_ast *node, struct node_list *list)
{
    unsigned height = 0;

    node->children = list->items;
    node->child_count = list->count;
    memset(list, 0, sizeof(*list));
    for (size_t i = 0; i < node->child_count; i++) {
        if (node_height(node->children[i]) + 1 > height)
            height = node_height(node->children[i]) + 1;
    }
    if (height > CEL_DEPTH_MAX) {
        fail_depth(p, node->line, node->column);
        return -1;
    }
    ((struct cel_node *)node)->height = height;
    return 0;
}

/* Appends child to list, or frees it and fails when memory is short. */
static int
list_append(struct parser *p, struct node_list *list, struct cel_ast *child)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity == 0 ? 4 : list->capacity * 2;
        struct cel_ast **items =
            realloc(list->items, capacity * sizeof(*items));

        if (items == NULL) {
            cel_ast_free(child);
            cel_error_memory(p->err);
            return -1;
        }
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = child;
    return 0;
}

static void
list_free(struct node_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        cel_ast_free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof(*list));
}

/*
 * Builds a node of kind with the first count of a, b, c as children,
 * taking ownership of them: they are freed if the node cannot be built. A
 * NULL child (an operand that failed to parse) fails the call, so callers
 * need no separate check.
 */
static struct cel_ast *
node_build(struct parser *p, enum cel_ast_kind kind, unsigned line,
           unsigned column, size_t count, struct cel_ast *a, struct cel_ast *b,
           struct cel_ast *c)
{
    struct cel_ast *operands[3] = {a, b, c};
    struct node_list list = {0};
    struct cel_ast *node;
    bool missing = false;

    for (size_t i = 0; i < count; i++)
        missing = missing || operands[i] == NULL;
    if (missing) {
        for (size_t i = 0; i < count; i++)
            cel_ast_free(operands[i]);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        if (list_append(p, &list, operands[i]) < 0) {
            for (size_t j = i + 1; j < count; j++)
                cel_ast_free(operands[j]);
            list_free(&list);
            return NULL;
        }
    }
    node = node_new(p, kind, line, column);
    if (node == NULL) {
        list_free(&list);
        return NULL;
    }
    if (node_adopt(p, node, &list) < 0) {
        cel_ast_free(node);
        return NULL;
    }
    return node;
}

static bool
is_reserved(const struct cel_token *tok)
{
    for (size_t i = 0; i < sizeof(reserved_words) / sizeof(reserved_words[0]);
         i++) {
        if (strlen(reserved_words[i]) == tok->length &&
            memcmp(reserved_words[i], tok->text, tok->length) == 0)
            return true;
    }
    return false;
}

/* Copies the current identifier token, which must not be reserved. */
static char *
take_identifier(struct parser *p)
{
    char *name;

    if (is_reserved(&p->tok)) {
        parse_fail(p, p->tok.line, p->tok.column,
                   "'%.*s' is a reserved word and cannot be used as an "
                   "identifier",
                   (int)p->tok.length, p->tok.text);
        return NULL;
    }
    name = strndup(p->tok.text, p->tok.length);
    if (name == NULL)
        cel_error_memory(p->err);
    return name;
}

/*
 * Builds the literal of the current token. negate_line is nonzero when a
 * unary minus is right before an int or double literal, which then
 * becomes a negative literal at the minus sign's position. That is the
 * only way to write -9223372036854775808, whose magnitude is no int.
 */
static struct cel_ast *
parse_literal(struct parser *p, unsigned negate_line, unsigned negate_column)
{
    const struct cel_token *tok = &p->tok;
    bool negate = negate_line != 0;
    struct cel_ast *node;

    node = node_new(p, CEL_AST_NULL, negate ? negate_line : tok->line,
                    negate ? negate_column : tok->column);
    if (node == NULL)
        return NULL;

    switch (tok->kind) {
    case CEL_TOK_INT:
        node->kind = CEL_AST_INT;
        if (!negate && tok->number.uint64 > (uint64_t)INT64_MAX) {
            parse_fail(p, tok->line, tok->column,
                       "int literal %.*s is out of range: the maximum is "
                       "9223372036854775807 (add the u suffix for a uint)",
                       (int)tok->length, tok->text);
            goto fail;
        }
        if (negate && tok->number.uint64 > (uint64_t)INT64_MAX + 1) {
            parse_fail(p, tok->line, tok->column,
                       "int literal -%.*s is out of range: the minimum is "
                       "-9223372036854775808",
                       (int)tok->length, tok->text);
            goto fail;
        }
        /* Negating in unsigned arithmetic reaches INT64_MIN without
         * signed overflow. */
        node->value.int64 = negate ? (int64_t)(0 - tok->number.uint64)
                                   : (int64_t)tok->number.uint64;
        break;
    case CEL_TOK_UINT:
        node->kind = CEL_AST_UINT;
        node->value.uint64 = tok->number.uint64;
        break;
    case CEL_TOK_DOUBLE:
        node->kind = CEL_AST_DOUBLE;
        node->value.float64 =
            negate ? -tok->number.float64 : tok->number.float64;
        break;
    case CEL_TOK_STRING:
        node->kind = CEL_AST_STRING;
        node->string = p->tok.string;
        node->string_len = p->tok.string_len;
        p->tok.string = NULL;
        break;
    case CEL_TOK_TRUE:
    case CEL_TOK_FALSE:
        node->kind = CEL_AST_BOOL;
        node->value.boolean = tok->kind == CEL_TOK_TRUE;
        break;
    default:
        node->kind = CEL_AST_NULL;
        break;
    }
    if (next_token(p) < 0)
        goto fail;
    return node;

fail:
    cel_ast_free(node);
    return NULL;
}

static int
append_expr(struct parser *p, struct node_list *list)
{
    struct cel_ast *child = parse_expr(p);

    if (child == NULL)
        return -1;
    return list_append(p, list, child);
}

/*
 * Parses comma-separated expressions up to the token close, the current
 * token being the one that opened them. Used for call arguments, list
 * elements and map entries (pairs, with a ':' between key and value).
 * trailing_comma allows a ',' before close, as list and map literals do.
 */
static int
parse_sequence(struct parser *p, struct node_list *list,
               enum cel_token_kind close, const char *construct,
               const char *noun, bool pairs, size_t max, bool trailing_comma)
{
    unsigned line = p->tok.line, column = p->tok.column;
    const char *close_name = cel_token_kind_name(close);
    char expected[32];

    snprintf(expected, sizeof(expected), "',' or %s", close_name);
    if (next_token(p) < 0)
        return -1;

    while (p->tok.kind != close) {
        size_t items = pairs ? list->count / 2 : list->count;

        if (items == max) {
            parse_fail(p, p->tok.line, p->tok.column,
                       "the %s has more than the maximum of %zu %s", construct,
                       max, noun);
            return -1;
        }
        if (append_expr(p, list) < 0)
            return -1;
        if (pairs) {
            if (p->tok.kind != CEL_TOK_COLON) {
                fail_expected(p, "':' between the key and the value of a "
                                 "map entry");
                return -1;
            }
            if (next_token(p) < 0)
                return -1;
            if (append_expr(p, list) < 0)
                return -1;
        }
        if (p->tok.kind == close)
            break;
        if (p->tok.kind != CEL_TOK_COMMA) {
            fail_unclosed(p, expected, construct, line, column);
            return -1;
        }
        if (next_token(p) < 0)
            return -1;
        if (p->tok.kind == close && !trailing_comma) {
            fail_expected(p, "an expression after ','");
            return -1;
        }
    }
    return next_token(p);
}

/* Describes a node kind for "found ..." in macro errors, which point at
 * the macro's name. */
static const char *
describe_node(const struct cel_ast *ast)
{
    switch (ast->kind) {
    case CEL_AST_NULL:
    case CEL_AST_BOOL:
    case CEL_AST_INT:
    case CEL_AST_UINT:
    case CEL_AST_DOUBLE:
    case CEL_AST_STRING:
        return "a literal";
    case CEL_AST_IDENT:
        return "an identifier";
    case CEL_AST_SELECT:
        return "a field selection";
    case CEL_AST_INDEX:
        return "an index expression";
    case CEL_AST_CALL:
    case CEL_AST_HAS:
    case CEL_AST_COMPREHENSION:
        return "a call";
    case CEL_AST_LIST:
        return "a list";
    case CEL_AST_MAP:
        return "a map";
    default:
        return "an operator expression";
    }
}

static const struct {
    const char *name;
    enum cel_macro macro;
    size_t min_args;
    size_t max_args;
} comprehension_macros[] = {
    {"all", CEL_MACRO_ALL, 2, 2},
    {"exists", CEL_MACRO_EXISTS, 2, 2},
    {"exists_one", CEL_MACRO_EXISTS_ONE, 2, 2},
    {"filter", CEL_MACRO_FILTER, 2, 2},
    {"map", CEL_MACRO_MAP, 2, 3},
};

/* Returns the comprehension macro a receiver call with count arguments
 * stands for, or CEL_MACRO_NONE for an ordinary call. */
static enum cel_macro
find_macro(const char *name, size_t count)
{
    for (size_t i = 0;
         i < sizeof(comprehension_macros) / sizeof(comprehension_macros[0]);
         i++) {
        if (strcmp(name, comprehension_macros[i].name) == 0 &&
            count >= comprehension_macros[i].min_args &&
            count <= comprehension_macros[i].max_args)
            return comprehension_macros[i].macro;
    }
    return CEL_MACRO_NONE;
}

/* Turns has(a.b), whose argument list is args, into a presence test. */
static struct cel_ast *
build_has(struct parser *p, struct node_list *args, unsigned line,
          unsigned column)
{
    struct cel_ast *select = args->items[0];

    if (select->kind != CEL_AST_SELECT) {
        parse_fail(p, line, column,
                   "has() expects a field selection such as has(a.b), "
                   "found %s",
                   describe_node(select));
        list_free(args);
        return NULL;
    }
    free(args->items);
    memset(args, 0, sizeof(*args));
    select->kind = CEL_AST_HAS;
    select->line = line;
    select->column = column;
    return select;
}

/*
 * Builds a comprehension node from range.name(args...): the first argument
 * must be the simple identifier of the iteration variable.
 */
static struct cel_ast *
build_comprehension(struct parser *p, enum cel_macro macro, char *name,
                    struct cel_ast *range, struct node_list *args,
                    unsigned line, unsigned column)
{
    struct cel_ast *variable = args->items[0];
    struct node_list children = {0};
    struct cel_ast *node = NULL;

    if (variable->kind != CEL_AST_IDENT) {
        parse_fail(p, line, column,
                   "the first argument of %s() must be a simple identifier "
                   "naming the iteration variable, found %s",
                   name, describe_node(variable));
        goto out;
    }
    if (list_append(p, &children, range) < 0) {
        range = NULL;
        goto out;
    }
    range = NULL;
    for (size_t i = 1; i < args->count; i++) {
        struct cel_ast *child = args->items[i];

        args->items[i] = NULL;
        if (list_append(p, &children, child) < 0)
            goto out;
    }

    node = node_new(p, CEL_AST_COMPREHENSION, line, column);
    if (node == NULL)
        goto out;
    node->macro = macro;
    node->name = variable->name;
    variable->name = NULL;
    if (node_adopt(p, node, &children) < 0) {
        cel_ast_free(node);
        node = NULL;
    }

out:
    cel_ast_free(range);
    list_free(&children);
    list_free(args);
    free(name);
    return node;
}

/*
 * Parses the arguments of a call to name, the current token being '(',
 * and builds the call, or the macro it stands for. receiver is the target
 * of x.f(y), or NULL. Takes ownership of name and receiver.
 */
static struct cel_ast *
parse_call(struct parser *p, char *name, struct cel_ast *receiver,
           unsigned line, unsigned column)
{
    struct node_list args = {0};
    struct node_list children = {0};
    struct cel_ast *node = NULL;
    bool has_receiver = receiver != NULL;
    enum cel_macro macro;

    if (parse_sequence(p, &args, CEL_TOK_RPAREN, "call", "arguments", false,
                       CEL_ARGUMENTS_MAX, false) < 0)
        goto out;

    if (receiver == NULL && strcmp(name, "has") == 0 && args.count == 1) {
        free(name);
        return build_has(p, &args, line, column);
    }
    macro = receiver != NULL ? find_macro(name, args.count) : CEL_MACRO_NONE;
    if (macro != CEL_MACRO_NONE)
        return build_comprehension(p, macro, name, receiver, &args, line,
                                   column);

    if (receiver != NULL) {
        if (list_append(p, &children, receiver) < 0) {
            receiver = NULL;
            goto out;
        }
        receiver = NULL;
    }
    for (size_t i = 0; i < args.count; i++) {
        struct cel_ast *child = args.items[i];

        args.items[i] = NULL;
        if (list_append(p, &children, child) < 0)
            goto out;
    }
    node = node_new(p, CEL_AST_CALL, line, column);
    if (node == NULL)
        goto out;
    node->receiver = has_receiver;
    node->name = name;
    name = NULL;
    if (node_adopt(p, node, &children) < 0 ||
        compile_literal_regex(p, node) < 0 || check_literal_glob(p, node) < 0) {
        cel_ast_free(node);
        node = NULL;
    }

out:
    cel_ast_free(receiver);
    list_free(&children);
    list_free(&args);
    free(name);
    return node;
}

/*
 * Compiles the pattern of a matches() call when it is a string literal,
 * as nearly every policy writes it, so evaluations share one compiled
 * pattern instead of compiling it each time. Returns 0, or -1 with the
 * parser's error set for an invalid pattern or short memory.
 */
static int
compile_literal_regex(struct parser *p, struct cel_ast *call)
{
    const struct cel_ast *pattern;
    PCRE2_UCHAR message[256];
    char why[160];
    PCRE2_SIZE offset;
    int code;

    if (strcmp(call->name, "matches") != 0 || call->child_count != 2 ||
        call->children[1]->kind != CEL_AST_STRING)
        return 0;
    pattern = call->children[1];
    call->regex =
        pcre2_compile((PCRE2_SPTR)pattern->string, pattern->string_len,
                      PCRE2_UTF, &code, &offset, NULL);
    if (call->regex == NULL) {
        if (code == PCRE2_ERROR_NOMEMORY) {
            cel_error_memory(p->err);
            return -1;
        }
        pcre2_get_error_message(code, message, sizeof(message));
        cel_error_at(p->err, p->origin, pattern->line, pattern->column,
                     "invalid regular expression '%.*s': %s at offset %zu; "
                     "fix the pattern (PCRE2 syntax)",
                     pattern->string_len > 64 ? 64 : (int)pattern->string_len,
                     pattern->string, (const char *)message, (size_t)offset);
        return -1;
    }
    if (cel_regex_prepare(pattern->string, pattern->string_len, &call->regex,
                          why, sizeof(why)) < 0) {
        cel_error_at(p->err, p->origin, pattern->line, pattern->column,
                     "invalid regular expression '%.*s': %s",
                     pattern->string_len > 64 ? 64 : (int)pattern->string_len,
                     pattern->string, why);
        return -1;
    }
    return 0;
}

/*
 * Checks the glob of a matchesGlob() call when it is a string literal, so
 * that an invalid glob is a parse error and evaluations skip the check.
 * Returns 0, or -1 with the parser's error set.
 */
static int
check_literal_glob(struct parser *p, struct cel_ast *call)
{
    const struct cel_ast *glob;
    char why[256];

    if (strcmp(call->name, "matchesGlob") != 0 || call->child_count != 2 ||
        call->children[1]->kind != CEL_AST_STRING)
        return 0;
    glob = call->children[1];
    if (pg_glob_check(glob->string, glob->string_len, why, sizeof(why)) < 0) {
        cel_error_at(p->err, p->origin, glob->line, glob->column,
                     "invalid glob '%.*s': %s",
                     glob->string_len > 64 ? 64 : (int)glob->string_len,
                     glob->string, why);
        return -1;
    }
    call->glob_valid = true;
    return 0;
}

/* Parses a list or map literal, the current token being '[' or '{'. */
static struct cel_ast *
parse_aggregate(struct parser *p, bool map)
{
    unsigned line = p->tok.line, column = p->tok.column;
    struct node_list items = {0};
    struct cel_ast *node;

    if (parse_sequence(p, &items, map ? CEL_TOK_RBRACE : CEL_TOK_RBRACKET,
                       map ? "map" : "list", map ? "entries" : "elements", map,
                       CEL_ELEMENTS_MAX, true) < 0) {
        list_free(&items);
        return NULL;
    }
    node = node_new(p, map ? CEL_AST_MAP : CEL_AST_LIST, line, column);
    if (node == NULL) {
        list_free(&items);
        return NULL;
    }
    if (node_adopt(p, node, &items) < 0) {
        cel_ast_free(node);
        return NULL;
    }
    return node;
}

/* Parses an identifier, or a global call when '(' follows it. */
static struct cel_ast *
parse_identifier(struct parser *p)
{
    unsigned line = p->tok.line, column = p->tok.column;
    char *name = take_identifier(p);
    struct cel_ast *node;

    if (name == NULL)
        return NULL;
    if (next_token(p) < 0) {
        free(name);
        return NULL;
    }
    if (p->tok.kind == CEL_TOK_LPAREN)
        return parse_call(p, name, NULL, line, column);

    node = node_new(p, CEL_AST_IDENT, line, column);
    if (node == NULL) {
        free(name);
        return NULL;
    }
    node->name = name;
    return node;
}

static struct cel_ast *
parse_primary(struct parser *p)
{
    unsigned line = p->tok.line, column = p->tok.column;
    struct cel_ast *inner;

    switch (p->tok.kind) {
    case CEL_TOK_IDENT:
        return parse_identifier(p);
    case CEL_TOK_INT:
    case CEL_TOK_UINT:
    case CEL_TOK_DOUBLE:
    case CEL_TOK_STRING:
    case CEL_TOK_TRUE:
    case CEL_TOK_FALSE:
    case CEL_TOK_NULL:
        return parse_literal(p, 0, 0);
    case CEL_TOK_LBRACKET:
        return parse_aggregate(p, false);
    case CEL_TOK_LBRACE:
        return parse_aggregate(p, true);
    case CEL_TOK_LPAREN:
        /* Checked here as well as in parse_expr() so that the error
         * points at the '(' that goes too deep. */
        if (p->depth > CEL_DEPTH_MAX) {
            fail_depth(p, line, column);
            return NULL;
        }
        if (next_token(p) < 0)
            return NULL;
        inner = parse_expr(p);
        if (inner == NULL)
            return NULL;
        if (p->tok.kind != CEL_TOK_RPAREN) {
            fail_unclosed(p, "')'", "parenthesis", line, column);
            cel_ast_free(inner);
            return NULL;
        }
        if (next_token(p) < 0) {
            cel_ast_free(inner);
            return NULL;
        }
        return inner;
    default:
        fail_expected(p, "an expression");
        return NULL;
    }
}

/* Parses ".name" or ".name(args)" after operand, the current token being
 * the '.'. */
static struct cel_ast *
parse_selection(struct parser *p, struct cel_ast *operand)
{
    unsigned line, column;
    struct cel_ast *node;
    char *name;

    if (next_token(p) < 0)
        goto fail;
    if (p->tok.kind != CEL_TOK_IDENT) {
        fail_expected(p, "a field or function name after '.'");
        goto fail;
    }
    line = p->tok.line;
    column = p->tok.column;
    name = take_identifier(p);
    if (name == NULL)
        goto fail;
    if (next_token(p) < 0) {
        free(name);
        goto fail;
    }
    if (p->tok.kind == CEL_TOK_LPAREN)
        return parse_call(p, name, operand, line, column);

    node = node_build(p, CEL_AST_SELECT, line, column, 1, operand, NULL, NULL);
    if (node == NULL) {
        free(name);
        return NULL;
    }
    node->name = name;
    return node;

fail:
    cel_ast_free(operand);
    return NULL;
}

/* Parses "[index]" after operand, the current token being the '['. */
static struct cel_ast *
parse_index(struct parser *p, struct cel_ast *operand)
{
    unsigned line = p->tok.line, column = p->tok.column;
    struct cel_ast *index;

    if (next_token(p) < 0) {
        cel_ast_free(operand);
        return NULL;
    }
    index = parse_expr(p);
    if (index != NULL && p->tok.kind != CEL_TOK_RBRACKET) {
        fail_unclosed(p, "']'", "index", line, column);
        cel_ast_free(index);
        index = NULL;
    }
    if (index != NULL && next_token(p) < 0) {
        cel_ast_free(index);
        index = NULL;
    }
    return node_build(p, CEL_AST_INDEX, line, column, 2, operand, index, NULL);
}

/* Parses a primary expression followed by any number of selections,
 * receiver calls and indexes, which bind left to right. */
static struct cel_ast *
parse_member(struct parser *p)
{
    struct cel_ast *node = parse_primary(p);

    while (node != NULL) {
        if (p->tok.kind == CEL_TOK_DOT)
            node = parse_selection(p, node);
        else if (p->tok.kind == CEL_TOK_LBRACKET)
            node = parse_index(p, node);
        else
            break;
    }
    return node;
}

/*
 * Parses a run of '!' or of '-' and the member expression they apply to.
 * The CEL grammar allows no mix of the two without parentheses. The run
 * is read in a loop and checked against CEL_DEPTH_MAX before any node is
 * built, so a long run costs no recursion.
 */
static struct cel_ast *
parse_unary(struct parser *p)
{
    enum cel_token_kind kind = p->tok.kind;
    unsigned lines[CEL_DEPTH_MAX], columns[CEL_DEPTH_MAX];
    const struct cel_token *after;
    struct cel_ast *node;
    size_t count = 0;

    if (kind != CEL_TOK_NOT && kind != CEL_TOK_MINUS)
        return parse_member(p);

    while (p->tok.kind == kind) {
        if (count == CEL_DEPTH_MAX) {
            fail_depth(p, p->tok.line, p->tok.column);
            return NULL;
        }
        lines[count] = p->tok.line;
        columns[count] = p->tok.column;
        count++;
        if (next_token(p) < 0)
            return NULL;
    }

    /* A minus right before a number literal that nothing selects from or
     * indexes makes a negative literal. */
    if (kind == CEL_TOK_MINUS &&
        (p->tok.kind == CEL_TOK_INT || p->tok.kind == CEL_TOK_DOUBLE)) {
        after = peek_token(p);
        if (after == NULL)
            return NULL;
        if (after->kind != CEL_TOK_DOT && after->kind != CEL_TOK_LBRACKET) {
            count--;
            node = parse_literal(p, lines[count], columns[count]);
            goto wrap;
        }
    }
    node = parse_member(p);

wrap:
    while (count > 0 && node != NULL) {
        count--;
        node = node_build(p, CEL_AST_UNARY, lines[count], columns[count], 1,
                          node, NULL, NULL);
        if (node != NULL)
            node->op = kind == CEL_TOK_NOT ? CEL_OP_NOT : CEL_OP_NEGATE;
    }
    return node;
}

/* Binary operators by precedence level, 0 the lowest. */
#define BINARY_LEVELS 5

static enum cel_op
binary_op(int level, enum cel_token_kind kind)
{
    static const struct {
        int level;
        enum cel_token_kind kind;
        enum cel_op op;
    } table[] = {
        {0, CEL_TOK_OR, CEL_OP_OR},
        {1, CEL_TOK_AND, CEL_OP_AND},
        {2, CEL_TOK_LT, CEL_OP_LT},
        {2, CEL_TOK_LE, CEL_OP_LE},
        {2, CEL_TOK_GE, CEL_OP_GE},
        {2, CEL_TOK_GT, CEL_OP_GT},
        {2, CEL_TOK_EQ, CEL_OP_EQ},
        {2, CEL_TOK_NE, CEL_OP_NE},
        {2, CEL_TOK_IN, CEL_OP_IN},
        {3, CEL_TOK_PLUS, CEL_OP_ADD},
        {3, CEL_TOK_MINUS, CEL_OP_SUBTRACT},
        {4, CEL_TOK_STAR, CEL_OP_MULTIPLY},
        {4, CEL_TOK_SLASH, CEL_OP_DIVIDE},
        {4, CEL_TOK_PERCENT, CEL_OP_MODULO},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (table[i].level == level && table[i].kind == kind)
            return table[i].op;
    }
    return CEL_OP_NONE;
}

static struct cel_ast *parse_binary(struct parser *p, int level);

/* Operands of one chain of || or of &&, such as a list of package names
 * joined by ||. */
#define CEL_CHAIN_MAX CEL_ELEMENTS_MAX

/* One chain of || or && being parsed: its operands and the position of
 * the operator after each but the last. */
struct chain {
    struct cel_ast *operands[CEL_CHAIN_MAX];
    unsigned lines[CEL_CHAIN_MAX];
    unsigned columns[CEL_CHAIN_MAX];
    size_t count;
};

/*
 * Builds operands first..last of a chain into a balanced tree, taking
 * them. || and && are associative, errors included (CEL absorbs an error
 * on either side), so any grouping gives the same value, and a balanced
 * one keeps a long chain within CEL_DEPTH_MAX, as other CEL parsers do.
 */
static struct cel_ast *
build_chain(struct parser *p, struct chain *chain, enum cel_op op, size_t first,
            size_t last)
{
    size_t middle = first + (last - first) / 2;
    struct cel_ast *left, *right, *node;

    if (first == last) {
        node = chain->operands[first];
        chain->operands[first] = NULL;
        return node;
    }
    left = build_chain(p, chain, op, first, middle);
    right = left != NULL ? build_chain(p, chain, op, middle + 1, last) : NULL;
    node = node_build(p, CEL_AST_BINARY, chain->lines[middle],
                      chain->columns[middle], 2, left, right, NULL);
    if (node != NULL)
        node->op = op;
    return node;
}

/* Parses a chain of || (level 0) or && (level 1) and the higher levels
 * between its operators. */
static struct cel_ast *
parse_chain(struct parser *p, int level)
{
    enum cel_op op = level == 0 ? CEL_OP_OR : CEL_OP_AND;
    struct chain *chain = calloc(1, sizeof(*chain));
    struct cel_ast *node = NULL;

    if (chain == NULL) {
        cel_error_memory(p->err);
        return NULL;
    }
    chain->operands[chain->count++] = parse_binary(p, level + 1);
    while (chain->operands[chain->count - 1] != NULL &&
           binary_op(level, p->tok.kind) == op) {
        if (chain->count == CEL_CHAIN_MAX) {
            cel_error_at(p->err, p->origin, p->tok.line, p->tok.column,
                         "more than %d operands joined by %s; list the "
                         "values and test them with in or exists()",
                         CEL_CHAIN_MAX, level == 0 ? "||" : "&&");
            goto out;
        }
        chain->lines[chain->count - 1] = p->tok.line;
        chain->columns[chain->count - 1] = p->tok.column;
        chain->operands[chain->count++] =
            next_token(p) == 0 ? parse_binary(p, level + 1) : NULL;
    }
    if (chain->operands[chain->count - 1] != NULL)
        node = build_chain(p, chain, op, 0, chain->count - 1);

out:
    for (size_t i = 0; i < chain->count; i++)
        cel_ast_free(chain->operands[i]);
    free(chain);
    return node;
}

/* Parses the operators of one precedence level, all left-associative,
 * and the higher levels between them. */
static struct cel_ast *
parse_binary(struct parser *p, int level)
{
    struct cel_ast *left;
    enum cel_op op;

    if (level == BINARY_LEVELS)
        return parse_unary(p);
    if (level <= 1)
        return parse_chain(p, level);

    left = parse_binary(p, level + 1);
    while (left != NULL &&
           (op = binary_op(level, p->tok.kind)) != CEL_OP_NONE) {
        unsigned line = p->tok.line, column = p->tok.column;
        struct cel_ast *right = NULL;

        if (next_token(p) == 0)
            right = parse_binary(p, level + 1);
        left =
            node_build(p, CEL_AST_BINARY, line, column, 2, left, right, NULL);
        if (left != NULL)
            left->op = op;
    }
    return left;
}

/* Parses a conditional or anything of higher precedence. The branch after
 * ':' is parsed by recursion, so a ? b : c ? d : e groups to the right. */
static struct cel_ast *
parse_expr(struct parser *p)
{
    struct cel_ast *condition, *then_branch = NULL, *else_branch = NULL;
    unsigned line, column;

    if (p->depth > CEL_DEPTH_MAX) {
        fail_depth(p, p->tok.line, p->tok.column);
        return NULL;
    }
    p->depth++;

    condition = parse_binary(p, 0);
    if (condition == NULL || p->tok.kind != CEL_TOK_QUESTION)
        goto out;

    line = p->tok.line;
    column = p->tok.column;
    if (next_token(p) < 0)
        goto fail;
    then_branch = parse_binary(p, 0);
    if (then_branch == NULL)
        goto fail;
    if (p->tok.kind != CEL_TOK_COLON) {
        fail_expected(p, "':' after the first branch of the conditional");
        goto fail;
    }
    if (next_token(p) < 0)
        goto fail;
    else_branch = parse_expr(p);
    condition = node_build(p, CEL_AST_CONDITIONAL, line, column, 3, condition,
                           then_branch, else_branch);
    goto out;

fail:
    cel_ast_free(condition);
    cel_ast_free(then_branch);
    condition = NULL;

out:
    p->depth--;
    return condition;
}

struct cel_ast *
cel_parse(const char *source, size_t len, const char *origin,
          struct pg_error **err)
{
    struct parser p = {0};
    struct cel_ast *ast = NULL;

    if (origin == NULL)
        origin = "expression";
    if (len > CEL_SOURCE_MAX_BYTES) {
        cel_error_at(err, origin, 1, 1,
                     "expression is %zu bytes long, more than the maximum "
                     "of %u bytes",
                     len, CEL_SOURCE_MAX_BYTES);
        return NULL;
    }

    cel_lexer_init(&p.lx, source, len, origin);
    p.origin = origin;
    p.err = err;
    if (next_token(&p) < 0)
        goto out;
    ast = parse_expr(&p);
    if (ast != NULL && p.tok.kind != CEL_TOK_EOF) {
        fail_expected(&p, "an operator or the end of the expression");
        cel_ast_free(ast);
        ast = NULL;
    }

out:
    cel_token_clear(&p.tok);
    cel_token_clear(&p.next);
    return ast;
}
