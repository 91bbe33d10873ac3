/*
 * Freeing and printing CEL expression trees. Both recurse, which is safe
 * because the parser never builds a tree taller than CEL_DEPTH_MAX.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "policy/cel.h"
#include "policy/cel_internal.h"

/* Output of the printer, growing as needed. Once memory is short, failed
 * is set and every later append is skipped. */
struct print_buffer {
    char *data;
    size_t len;
    size_t capacity;
    bool failed;
};

/* Returns the first item of a pattern that PCRE2's DFA matcher cannot
 * run, or NULL. Escaped characters and \\Q...\\E text are skipped. */
static const char *
dfa_unsupported(const char *pattern, size_t len)
{
    static const char *const items[] = {
        "\\K",  "\\C",  "(*ACCEPT", "(?R",  "(?&",  "(?P>", "\\g<", "\\g'",
        "(?C",  "(?+",  "(?-1",     "(?-2", "(?-3", "(?-4", "(?-5", "(?-6",
        "(?-7", "(?-8", "(?-9",     "(?0",  "(?1",  "(?2",  "(?3",  "(?4",
        "(?5",  "(?6",  "(?7",      "(?8",  "(?9",
    };
    bool quoted = false;

    for (size_t i = 0; i < len; i++) {
        if (quoted) {
            if (pattern[i] == '\\' && i + 1 < len && pattern[i + 1] == 'E') {
                quoted = false;
                i++;
            }
            continue;
        }
        if (pattern[i] == '\\' && i + 1 < len && pattern[i + 1] == 'Q') {
            quoted = true;
            i++;
            continue;
        }
        for (size_t k = 0; k < sizeof(items) / sizeof(items[0]); k++) {
            size_t n = strlen(items[k]);

            if (n <= len - i && memcmp(pattern + i, items[k], n) == 0)
                return items[k];
        }
        if (pattern[i] == '\\')
            i++;
    }
    return NULL;
}

int
cel_regex_prepare(const char *pattern, size_t len, void **code, char *why,
                  size_t why_size)
{
    static const char prefix[] = "(?s:.*?)(?:";
    static const char suffix[] = "\\E)";
    uint32_t backrefs = 0;
    const char *item;
    PCRE2_SIZE offset;
    pcre2_code *anchored;
    char *wrapped;
    int error;

    if (pcre2_pattern_info(*code, PCRE2_INFO_BACKREFMAX, &backrefs) == 0 &&
        backrefs > 0) {
        snprintf(why, why_size,
                 "backreferences are not supported, as in RE2, the syntax "
                 "CEL specifies; match the text without them");
        return -1;
    }
    item = dfa_unsupported(pattern, len);
    if (item != NULL) {
        snprintf(why, why_size,
                 "%s is not supported, as in RE2, the syntax CEL specifies; "
                 "write the pattern without it",
                 item);
        return -1;
    }

    /* The pattern compiled alone, so its groups are balanced and it stays
     * one group inside the wrapper; \E ends a \Q it may leave open. */
    wrapped = malloc(sizeof(prefix) - 1 + len + sizeof(suffix));
    if (wrapped == NULL)
        return 0;
    memcpy(wrapped, prefix, sizeof(prefix) - 1);
    memcpy(wrapped + sizeof(prefix) - 1, pattern, len);
    memcpy(wrapped + sizeof(prefix) - 1 + len, suffix, sizeof(suffix));
    anchored = pcre2_compile((PCRE2_SPTR)wrapped, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_ANCHORED, &error, &offset, NULL);
    free(wrapped);
    if (anchored != NULL) {
        pcre2_code_free(*code);
        *code = anchored;
    }
    return 0;
}

bool
cel_regex_one_pass(const void *code)
{
    uint32_t options = 0;

    return pcre2_pattern_info(code, PCRE2_INFO_ALLOPTIONS, &options) == 0 &&
           (options & PCRE2_ANCHORED) != 0;
}

void
cel_ast_free(struct cel_ast *ast)
{
    if (ast == NULL)
        return;
    for (size_t i = 0; i < ast->child_count; i++)
        cel_ast_free(ast->children[i]);
    free(ast->children);
    free(ast->name);
    free(ast->string);
    pcre2_code_free(ast->regex);
    free((struct cel_node *)ast);
}

static void
append_bytes(struct print_buffer *out, const char *bytes, size_t len)
{
    if (out->failed)
        return;
    if (out->capacity - out->len <= len) {
        size_t capacity = out->capacity == 0 ? 64 : out->capacity;
        char *data;

        while (capacity - out->len <= len)
            capacity *= 2;
        data = realloc(out->data, capacity);
        if (data == NULL) {
            out->failed = true;
            return;
        }
        out->data = data;
        out->capacity = capacity;
    }
    memcpy(out->data + out->len, bytes, len);
    out->len += len;
    out->data[out->len] = '\0';
}

static void
append_text(struct print_buffer *out, const char *text)
{
    append_bytes(out, text, strlen(text));
}

static void append_format(struct print_buffer *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends formatted text of at most 63 bytes (numbers). */
static void
append_format(struct print_buffer *out, const char *fmt, ...)
{
    char text[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    append_text(out, text);
}

/* Prints a string in double quotes. Bytes of UTF-8 sequences are copied,
 * quotes, backslashes and control characters are escaped. */
static void
print_string(struct print_buffer *out, const char *string, size_t len)
{
    append_text(out, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)string[i];

        if (c == '"' || c == '\\')
            append_format(out, "\\%c", c);
        else if (c == '\n')
            append_text(out, "\\n");
        else if (c == '\t')
            append_text(out, "\\t");
        else if (c < 0x20 || c == 0x7F)
            append_format(out, "\\x%02x", c);
        else
            append_bytes(out, string + i, 1);
    }
    append_text(out, "\"");
}

/* Prints a double with the fewest digits that read back to the same
 * value, with ".0" added when it would look like an int. */
static void
print_double(struct print_buffer *out, double value)
{
    char text[64];

    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof(text), "%.*g", precision, value);
        if (strtod(text, NULL) == value)
            break;
    }
    append_text(out, text);
    if (strpbrk(text, ".eEn") == NULL)
        append_text(out, ".0");
}

static const char *const op_names[] = {
    [CEL_OP_NONE] = "?",   [CEL_OP_NOT] = "!",      [CEL_OP_NEGATE] = "-",
    [CEL_OP_OR] = "||",    [CEL_OP_AND] = "&&",     [CEL_OP_LT] = "<",
    [CEL_OP_LE] = "<=",    [CEL_OP_GE] = ">=",      [CEL_OP_GT] = ">",
    [CEL_OP_EQ] = "==",    [CEL_OP_NE] = "!=",      [CEL_OP_IN] = "in",
    [CEL_OP_ADD] = "+",    [CEL_OP_SUBTRACT] = "-", [CEL_OP_MULTIPLY] = "*",
    [CEL_OP_DIVIDE] = "/", [CEL_OP_MODULO] = "%",
};

static const char *const macro_names[] = {
    [CEL_MACRO_NONE] = "?",        [CEL_MACRO_ALL] = "all",
    [CEL_MACRO_EXISTS] = "exists", [CEL_MACRO_EXISTS_ONE] = "exists_one",
    [CEL_MACRO_FILTER] = "filter", [CEL_MACRO_MAP] = "map",
};

static void print_node(struct print_buffer *out, const struct cel_ast *ast);

/* Prints children from index first on, each after a space. */
static void
print_children(struct print_buffer *out, const struct cel_ast *ast,
               size_t first)
{
    for (size_t i = first; i < ast->child_count; i++) {
        append_text(out, " ");
        print_node(out, ast->children[i]);
    }
}

static void
print_aggregate(struct print_buffer *out, const struct cel_ast *ast)
{
    bool map = ast->kind == CEL_AST_MAP;

    append_text(out, map ? "{" : "[");
    for (size_t i = 0; i < ast->child_count; i++) {
        if (i > 0)
            append_text(out, map && i % 2 == 1 ? ": " : ", ");
        print_node(out, ast->children[i]);
    }
    append_text(out, map ? "}" : "]");
}

static void
print_node(struct print_buffer *out, const struct cel_ast *ast)
{
    switch (ast->kind) {
    case CEL_AST_NULL:
        append_text(out, "null");
        return;
    case CEL_AST_BOOL:
        append_text(out, ast->value.boolean ? "true" : "false");
        return;
    case CEL_AST_INT:
        append_format(out, "%lld", (long long)ast->value.int64);
        return;
    case CEL_AST_UINT:
        append_format(out, "%lluu", (unsigned long long)ast->value.uint64);
        return;
    case CEL_AST_DOUBLE:
        print_double(out, ast->value.float64);
        return;
    case CEL_AST_STRING:
        print_string(out, ast->string, ast->string_len);
        return;
    case CEL_AST_IDENT:
        append_text(out, ast->name);
        return;
    case CEL_AST_LIST:
    case CEL_AST_MAP:
        print_aggregate(out, ast);
        return;
    default:
        break;
    }

    append_text(out, "(");
    switch (ast->kind) {
    case CEL_AST_SELECT:
        append_text(out, ".");
        print_children(out, ast, 0);
        append_text(out, " ");
        append_text(out, ast->name);
        break;
    case CEL_AST_HAS:
        append_text(out, "has! (.");
        print_children(out, ast, 0);
        append_text(out, " ");
        append_text(out, ast->name);
        append_text(out, ")");
        break;
    case CEL_AST_INDEX:
        append_text(out, "[]");
        print_children(out, ast, 0);
        break;
    case CEL_AST_CALL:
        append_text(out, ast->receiver ? "." : "");
        append_text(out, ast->name);
        print_children(out, ast, 0);
        break;
    case CEL_AST_COMPREHENSION:
        append_text(out, macro_names[ast->macro]);
        append_text(out, "! ");
        print_node(out, ast->children[0]);
        append_text(out, " ");
        append_text(out, ast->name);
        print_children(out, ast, 1);
        break;
    case CEL_AST_CONDITIONAL:
        append_text(out, "?:");
        print_children(out, ast, 0);
        break;
    default:
        append_text(out, op_names[ast->op]);
        print_children(out, ast, 0);
        break;
    }
    append_text(out, ")");
}

char *
cel_ast_to_string(const struct cel_ast *ast)
{
    struct print_buffer out = {0};

    if (ast == NULL)
        return strdup("");
    print_node(&out, ast);
    if (out.failed) {
        free(out.data);
        return NULL;
    }
    return out.data;
}
