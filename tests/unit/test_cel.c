/*
 * Unit tests for the CEL parser: precedence and associativity as the CEL
 * language definition states them, every literal form with its decoded
 * value, the macros, reserved words, the nesting and size limits, and the
 * exact text and position of errors.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/error.h"
#include "policy/cel.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* One source and the S-expression it parses to. */
struct parse_case {
    const char *source;
    const char *expected;
};

/* One source and the exact error message it produces. */
struct error_case {
    const char *source;
    const char *message;
};

static void
check_parse(const char *source, const char *expected)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast = cel_parse(source, strlen(source), "t", &err);
    char *text;

    ck_assert_msg(ast != NULL, "%s: %s", source,
                  err != NULL ? err->message : "(no error)");
    ck_assert_ptr_null(err);
    text = cel_ast_to_string(ast);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strcmp(text, expected) == 0, "%s: got %s, expected %s",
                  source, text, expected);
    free(text);
    cel_ast_free(ast);
}

static void
check_error_len(const char *source, size_t len, const char *message)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast = cel_parse(source, len, "t", &err);

    ck_assert_msg(ast == NULL, "%s: parsed, expected %s", source, message);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 400);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_str_eq(err->message, message);
    pg_error_free(err);
}

static void
check_error(const char *source, const char *message)
{
    check_error_len(source, strlen(source), message);
}

static const struct parse_case precedence_cases[] = {
    {"a || b && c", "(|| a (&& b c))"},
    {"a && b || c", "(|| (&& a b) c)"},
    {"a || b || c", "(|| (|| a b) c)"},
    {"a && b && c", "(&& (&& a b) c)"},
    {"a ? b : c ? d : e", "(?: a b (?: c d e))"},
    {"a || b ? c : d", "(?: (|| a b) c d)"},
    {"(a ? b : c) ? d : e", "(?: (?: a b c) d e)"},
    {"-a.b", "(- (. a b))"},
    {"!!a", "(! (! a))"},
    {"!a && b", "(&& (! a) b)"},
    {"-a + b", "(+ (- a) b)"},
    {"a.b[c].d(e)", "(.d ([] (. a b) c) e)"},
    {"a in [1,2]", "(in a [1, 2])"},
    {"1 + 2 * 3 - 4 % 5", "(- (+ 1 (* 2 3)) (% 4 5))"},
    {"a - b - c", "(- (- a b) c)"},
    {"a / b * c", "(* (/ a b) c)"},
    {"a < b == c", "(== (< a b) c)"},
    {"a == b != c", "(!= (== a b) c)"},
    {"a < b < c", "(< (< a b) c)"},
    {"a + b < c * d", "(< (+ a b) (* c d))"},
    {"a in b && c", "(&& (in a b) c)"},
    {"(a || b) && c", "(&& (|| a b) c)"},
    {"(1 + 2) * 3", "(* (+ 1 2) 3)"},
    {"f()", "(f)"},
    {"f(x, y + 1)", "(f x (+ y 1))"},
    {"a.f()", "(.f a)"},
    {"x.y.z", "(. (. x y) z)"},
    {"a[0][1]", "([] ([] a 0) 1)"},
    {"a.b(c).d", "(. (.b a c) d)"},
    {"[]", "[]"},
    {"{}", "{}"},
    {"[1, 2,]", "[1, 2]"},
    {"{'a': 1, 2: [3,],}", "{\"a\": 1, 2: [3]}"},
    {"{a: b}", "{a: b}"},
    {"1 + -2", "(+ 1 -2)"},
    {"-1", "-1"},
    {"--1", "(- -1)"},
    {"-(1)", "(- 1)"},
    {"- 1", "-1"},
    {"-a[0]", "(- ([] a 0))"},
    {"a >= b && c <= d && e > f", "(&& (&& (>= a b) (<= c d)) (> e f))"},
    {"a // comment\n+ b", "(+ a b)"},
    {"\ta\r\n*\fb", "(* a b)"},
    {"_x1 + in_a + r + b", "(+ (+ (+ _x1 in_a) r) b)"},
};

START_TEST(test_precedence)
{
    for (size_t i = 0; i < COUNT(precedence_cases); i++)
        check_parse(precedence_cases[i].source, precedence_cases[i].expected);
}
END_TEST

static const struct parse_case literal_cases[] = {
    {"0", "0"},
    {"123", "123"},
    {"007", "7"},
    {"0x1F", "31"},
    {"0XfF", "255"},
    {"9223372036854775807", "9223372036854775807"},
    {"-9223372036854775808", "-9223372036854775808"},
    {"-0x8000000000000000", "-9223372036854775808"},
    {"0u", "0u"},
    {"7U", "7u"},
    {"0x10u", "16u"},
    {"18446744073709551615u", "18446744073709551615u"},
    {"0xFFFFFFFFFFFFFFFFu", "18446744073709551615u"},
    {"1.5", "1.5"},
    {".5", "0.5"},
    {"3.0", "3.0"},
    {"1e3", "1e+03"},
    {"1E+2", "1e+02"},
    {"2.5e-3", "0.0025"},
    {"-0.25", "-0.25"},
    {"0.1", "0.1"},
    {"true", "true"},
    {"false", "false"},
    {"null", "null"},
    {"'abc'", "\"abc\""},
    {"\"a'b\"", "\"a'b\""},
    {"''", "\"\""},
};

START_TEST(test_literals)
{
    for (size_t i = 0; i < COUNT(literal_cases); i++)
        check_parse(literal_cases[i].source, literal_cases[i].expected);
}
END_TEST

/* One string literal and its decoded bytes. */
struct string_case {
    const char *source;
    const char *bytes;
    size_t len;
};

static const struct string_case string_cases[] = {
    {"'\\n\\t\\\\\\\"\\''", "\n\t\\\"'", 5},
    {"'\\a\\b\\f\\v\\r\\?\\`'", "\a\b\f\v\r?`", 7},
    {"'\\x41'", "A", 1},
    {"'\\X41'", "A", 1},
    {"'\\101'", "A", 1},
    {"'\\u00e9'", "\xc3\xa9", 2},
    {"'\\u20AC'", "\xe2\x82\xac", 3},
    {"'\\U0001F600'", "\xf0\x9f\x98\x80", 4},
    {"'\xf0\x9f\x98\x80'", "\xf0\x9f\x98\x80", 4},
    {"'caf\xc3\xa9'", "caf\xc3\xa9", 5},
    /* In a string, \xFF and \377 are the code point U+00FF, not a byte. */
    {"'\\xFF'", "\xc3\xbf", 2},
    {"'\\377'", "\xc3\xbf", 2},
    {"'\\000'", "\0", 1},
    {"'''x''x'''", "x''x", 4},
    {"\"\"\"a\nb\"\"\"", "a\nb", 3},
    {"'''a\\tb'''", "a\tb", 3},
    {"r'a\\nb'", "a\\nb", 4},
    {"R\"\\d+\"", "\\d+", 3},
    {"r'''\\x'''", "\\x", 2},
    {"r'\\\\'", "\\\\", 2},
};

START_TEST(test_string_values)
{
    for (size_t i = 0; i < COUNT(string_cases); i++) {
        const struct string_case *c = &string_cases[i];
        struct pg_error *err = NULL;
        struct cel_ast *ast =
            cel_parse(c->source, strlen(c->source), "t", &err);

        ck_assert_msg(ast != NULL, "%s: %s", c->source,
                      err != NULL ? err->message : "(no error)");
        ck_assert_int_eq(ast->kind, CEL_AST_STRING);
        ck_assert_msg(ast->string_len == c->len, "%s: length %zu", c->source,
                      ast->string_len);
        ck_assert_msg(memcmp(ast->string, c->bytes, c->len) == 0, "%s",
                      c->source);
        cel_ast_free(ast);
    }
}
END_TEST

START_TEST(test_number_values)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast;

    ast = cel_parse("-9223372036854775808", 20, "t", &err);
    ck_assert_ptr_nonnull(ast);
    ck_assert_int_eq(ast->kind, CEL_AST_INT);
    ck_assert(ast->value.int64 == INT64_MIN);
    ck_assert_int_eq(ast->column, 1);
    cel_ast_free(ast);

    ast = cel_parse("18446744073709551615u", 21, "t", &err);
    ck_assert_ptr_nonnull(ast);
    ck_assert_int_eq(ast->kind, CEL_AST_UINT);
    ck_assert(ast->value.uint64 == UINT64_MAX);
    cel_ast_free(ast);

    ast = cel_parse("2.5e-3", 6, "t", &err);
    ck_assert_ptr_nonnull(ast);
    ck_assert_int_eq(ast->kind, CEL_AST_DOUBLE);
    ck_assert(ast->value.float64 == 0.0025);
    cel_ast_free(ast);
}
END_TEST

static const struct parse_case macro_cases[] = {
    {"has(a.b)", "(has! (. a b))"},
    {"has(a.b.c)", "(has! (. (. a b) c))"},
    {"a.all(x, x > 0)", "(all! a x (> x 0))"},
    {"a.exists(x, x == 1)", "(exists! a x (== x 1))"},
    {"a.exists_one(x, x)", "(exists_one! a x x)"},
    {"a.b.filter(x, x < 2)", "(filter! (. a b) x (< x 2))"},
    {"a.map(x, x * 2)", "(map! a x (* x 2))"},
    {"a.map(x, x > 0, x * 2)", "(map! a x (> x 0) (* x 2))"},
    {"a.all(x, x.all(y, y))", "(all! a x (all! x y y))"},
    /* A name with other arguments or without a receiver is a call. */
    {"a.all(x)", "(.all a x)"},
    {"all(a, x, p)", "(all a x p)"},
    {"has(a, b)", "(has a b)"},
    {"a.map(x)", "(.map a x)"},
};

START_TEST(test_macros)
{
    for (size_t i = 0; i < COUNT(macro_cases); i++)
        check_parse(macro_cases[i].source, macro_cases[i].expected);
}
END_TEST

START_TEST(test_macro_positions)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast = cel_parse("a.exists(x, p)", 14, "t", &err);

    ck_assert_ptr_nonnull(ast);
    ck_assert_int_eq(ast->kind, CEL_AST_COMPREHENSION);
    ck_assert_int_eq(ast->macro, CEL_MACRO_EXISTS);
    ck_assert_str_eq(ast->name, "x");
    ck_assert_int_eq(ast->line, 1);
    ck_assert_int_eq(ast->column, 3);
    ck_assert_uint_eq(ast->child_count, 2);
    cel_ast_free(ast);
}
END_TEST

static const char *const reserved[] = {
    "as",        "break",  "const",  "continue", "else",  "for",
    "function",  "if",     "import", "let",      "loop",  "package",
    "namespace", "return", "var",    "void",     "while",
};

START_TEST(test_reserved_words)
{
    for (size_t i = 0; i < COUNT(reserved); i++) {
        char source[64];
        char message[128];

        snprintf(source, sizeof(source), "%s", reserved[i]);
        snprintf(message, sizeof(message),
                 "t:1:1: '%s' is a reserved word and cannot be used as an "
                 "identifier",
                 reserved[i]);
        check_error(source, message);

        snprintf(source, sizeof(source), "a.%s", reserved[i]);
        snprintf(message, sizeof(message),
                 "t:1:3: '%s' is a reserved word and cannot be used as an "
                 "identifier",
                 reserved[i]);
        check_error(source, message);

        snprintf(source, sizeof(source), "%s(1)", reserved[i]);
        snprintf(message, sizeof(message),
                 "t:1:1: '%s' is a reserved word and cannot be used as an "
                 "identifier",
                 reserved[i]);
        check_error(source, message);
    }
    /* A reserved word inside a longer name is an ordinary identifier. */
    check_parse("iffy + for_x", "(+ iffy for_x)");
}
END_TEST

static const struct error_case syntax_errors[] = {
    {"", "t:1:1: expected an expression, found end of expression"},
    {"size(a",
     "t:1:7: expected ',' or ')' to close the call opened at column 5, "
     "found end of expression"},
    {"(a + b",
     "t:1:7: expected ')' to close the parenthesis opened at column 1, "
     "found end of expression"},
    {"a[1",
     "t:1:4: expected ']' to close the index opened at column 2, found end "
     "of expression"},
    {"a &&\n  b ||\n  f(c,, d)", "t:3:7: expected an expression, found ','"},
    {"[1,\n 2\n 3]",
     "t:3:2: expected ',' or ']' to close the list opened at line 1, "
     "column 1, found int literal '3'"},
    {"a b", "t:1:3: expected an operator or the end of the expression, found "
            "identifier 'b'"},
    {"a ? b",
     "t:1:6: expected ':' after the first branch of the conditional, found "
     "end of expression"},
    {"a ? b ? c : d : e",
     "t:1:7: expected ':' after the first branch of the conditional, found "
     "'?'"},
    {"a.", "t:1:3: expected a field or function name after '.', found end "
           "of expression"},
    {"a.in", "t:1:3: expected a field or function name after '.', found "
             "'in'"},
    {"{1 2}", "t:1:4: expected ':' between the key and the value of a map "
              "entry, found int literal '2'"},
    {"f(a,)", "t:1:5: expected an expression after ',', found ')'"},
    {"!-a", "t:1:2: expected an expression, found '-'"},
    {"a.b{c: 1}", "t:1:4: expected an operator or the end of the "
                  "expression, found '{'"},
    {"a + * b", "t:1:5: expected an expression, found '*'"},
    {"a # b", "t:1:3: unexpected '#'"},
    /* A literal pattern is compiled by the parser, so a bad one is a
     * parse error at the literal; expected text from pcre2test 10.42. */
    {"'abc'.matches('[')",
     "t:1:15: invalid regular expression '[': missing terminating ] for "
     "character class at offset 1; fix the pattern (PCRE2 syntax)"},
    {"'a'.matchesGlob('[a')",
     "t:1:17: invalid glob '[a': the character class at character 1 has no "
     "closing ']'; close it, or write '\\[' for a literal '['"},
    {"'abab'.matches('(ab)\\\\1')",
     "t:1:16: invalid regular expression '(ab)\\1': backreferences are not "
     "supported, as in RE2, the syntax CEL specifies; match the text "
     "without them"},
    {"s.matches('ro\\\\Kot')",
     "t:1:11: invalid regular expression 'ro\\Kot': \\K is not supported, "
     "as in RE2, the syntax CEL specifies; write the pattern without it"},
    {"matches(s, 'a(')",
     "t:1:12: invalid regular expression 'a(': missing closing parenthesis "
     "at offset 2; fix the pattern (PCRE2 syntax)"},
    {"'\xc3\xa9' + #", "t:1:7: unexpected '#'"},
    {"a\x01", "t:1:2: unexpected character U+0001"},
    {"a \xff", "t:1:3: unexpected invalid UTF-8 byte 0xFF"},
};

START_TEST(test_syntax_errors)
{
    for (size_t i = 0; i < COUNT(syntax_errors); i++)
        check_error(syntax_errors[i].source, syntax_errors[i].message);
}
END_TEST

static const struct error_case literal_errors[] = {
    {"9223372036854775808",
     "t:1:1: int literal 9223372036854775808 is out of range: the maximum "
     "is 9223372036854775807 (add the u suffix for a uint)"},
    {"-9223372036854775809",
     "t:1:2: int literal -9223372036854775809 is out of range: the minimum "
     "is -9223372036854775808"},
    {"-(9223372036854775808)",
     "t:1:3: int literal 9223372036854775808 is out of range: the maximum "
     "is 9223372036854775807 (add the u suffix for a uint)"},
    {"18446744073709551616",
     "t:1:1: int literal 18446744073709551616 is out of range: ints are "
     "64-bit, from -9223372036854775808 to 9223372036854775807"},
    {"18446744073709551616u",
     "t:1:1: uint literal 18446744073709551616u is out of range: the "
     "maximum is 18446744073709551615u"},
    {"1e999",
     "t:1:1: double literal 1e999 is out of the range of a 64-bit double"},
    {"1e+", "t:1:4: expected digits of the exponent of the double literal"},
    {"0x", "t:1:3: expected hexadecimal digits after 0x"},
    {"12abc", "t:1:3: invalid 'a' after the number literal; separate it "
              "with a space or an operator"},
    {"1.5u", "t:1:4: invalid 'u' after the number literal; separate it "
             "with a space or an operator"},
    {"'abc", "t:1:1: string literal is not closed: expected ' before the "
             "end of the expression"},
    {"x + '''abc''", "t:1:5: string literal is not closed: expected three "
                     "of ' before the end of the expression"},
    {"'ab\ncd'", "t:1:1: string literal is not closed before the end of "
                 "the line; use \\n or a triple-quoted string for a newline"},
    {"'\\q'", "t:1:2: invalid escape sequence '\\q'; use \\\\ for a "
              "backslash"},
    {"'\\400'", "t:1:2: invalid escape sequence '\\4'; use \\\\ for a "
                "backslash"},
    {"'\\18'", "t:1:4: expected three octal digits (\\000 to \\377) in the "
               "escape sequence"},
    {"'\\x4'", "t:1:5: expected 2 hexadecimal digits in the escape "
               "sequence"},
    {"'\\u12g4'", "t:1:6: expected 4 hexadecimal digits in the escape "
                  "sequence"},
    {"'\\uD800'", "t:1:2: escape sequence U+D800 is not a Unicode scalar "
                  "value (surrogates and values above U+10FFFF are "
                  "invalid)"},
    {"'\\uDFFF'", "t:1:2: escape sequence U+DFFF is not a Unicode scalar "
                  "value (surrogates and values above U+10FFFF are "
                  "invalid)"},
    {"'\\U00110000'", "t:1:2: escape sequence U+110000 is not a Unicode "
                      "scalar value (surrogates and values above U+10FFFF "
                      "are invalid)"},
    {"'a\xff'", "t:1:3: invalid UTF-8 byte 0xFF in string literal"},
    /* An encoded surrogate (U+D800) and an overlong '/' are not UTF-8. */
    {"'\xed\xa0\x80'", "t:1:2: invalid UTF-8 byte 0xED in string literal"},
    {"'\xc0\xaf'", "t:1:2: invalid UTF-8 byte 0xC0 in string literal"},
    /* A raw string cannot contain its quote: r'\' ends at the second
     * quote and the third opens a new string. */
    {"r'\\''", "t:1:5: string literal is not closed: expected ' before "
               "the end of the expression"},
    {"b'abc'", "t:1:1: bytes literals are not supported; use a string "
               "literal without the b prefix"},
    {"Rb'abc'", "t:1:1: bytes literals are not supported; use a string "
                "literal without the b prefix"},
};

START_TEST(test_literal_errors)
{
    for (size_t i = 0; i < COUNT(literal_errors); i++)
        check_error(literal_errors[i].source, literal_errors[i].message);
}
END_TEST

static const struct error_case macro_errors[] = {
    {"a.all(x.y, true)",
     "t:1:3: the first argument of all() must be a simple identifier naming "
     "the iteration variable, found a field selection"},
    {"a.exists(1, true)",
     "t:1:3: the first argument of exists() must be a simple identifier "
     "naming the iteration variable, found a literal"},
    {"a.map(f(x), 1)",
     "t:1:3: the first argument of map() must be a simple identifier "
     "naming the iteration variable, found a call"},
    {"has(a)", "t:1:1: has() expects a field selection such as has(a.b), "
               "found an identifier"},
    {"has(a[0])", "t:1:1: has() expects a field selection such as "
                  "has(a.b), found an index expression"},
};

START_TEST(test_macro_errors)
{
    for (size_t i = 0; i < COUNT(macro_errors); i++)
        check_error(macro_errors[i].source, macro_errors[i].message);
}
END_TEST

/* Returns a string of count copies of unit followed by tail, which the
 * caller frees. */
static char *
repeat(const char *unit, size_t count, const char *tail)
{
    size_t unit_len = strlen(unit), tail_len = strlen(tail);
    char *text = malloc(unit_len * count + tail_len + 1);

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < count; i++)
        memcpy(text + i * unit_len, unit, unit_len);
    memcpy(text + unit_len * count, tail, tail_len + 1);
    return text;
}

static const char depth_message[] =
    "expression nests deeper than the maximum of 64 levels (CEL_DEPTH_MAX); "
    "split it into smaller expressions";

/* Parses count opening units around "a" and checks success at
 * CEL_DEPTH_MAX and the error at column error_column beyond it. */
static void
check_depth(const char *open, const char *close, size_t count,
            size_t error_column)
{
    char *head = repeat(open, count, "a");
    char *tail = repeat(close, count, "");
    char *source = malloc(strlen(head) + strlen(tail) + 1);
    struct pg_error *err = NULL;
    struct cel_ast *ast;

    ck_assert_ptr_nonnull(source);
    memcpy(source, head, strlen(head));
    memcpy(source + strlen(head), tail, strlen(tail) + 1);

    ast = cel_parse(source, strlen(source), "t", &err);
    if (count <= CEL_DEPTH_MAX) {
        ck_assert_msg(ast != NULL, "%zu x %s: %s", count, open,
                      err != NULL ? err->message : "");
        cel_ast_free(ast);
    } else {
        char expected[256];

        snprintf(expected, sizeof(expected), "t:1:%zu: %s", error_column,
                 depth_message);
        ck_assert_ptr_null(ast);
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(err->message, expected);
        pg_error_free(err);
    }
    free(source);
    free(tail);
    free(head);
}

START_TEST(test_depth_limits)
{
    check_depth("(", ")", CEL_DEPTH_MAX, 0);
    check_depth("(", ")", CEL_DEPTH_MAX + 1, CEL_DEPTH_MAX + 1);
    check_depth("(", ")", 30000, CEL_DEPTH_MAX + 1);
    check_depth("!", "", CEL_DEPTH_MAX, 0);
    check_depth("!", "", CEL_DEPTH_MAX + 1, CEL_DEPTH_MAX + 1);
    check_depth("-", "", CEL_DEPTH_MAX + 1, CEL_DEPTH_MAX + 1);
    /* Each list level adds one to the tree's height. */
    check_depth("[", "]", CEL_DEPTH_MAX, 0);
    check_depth("f(", ")", CEL_DEPTH_MAX, 0);
}
END_TEST

/* 100,000 nesting characters are longer than CEL_SOURCE_MAX_BYTES, so the
 * length check rejects them first. This test fills the length limit with
 * nesting to show that the depth limit rejects it too. */
START_TEST(test_deep_input_rejected)
{
    const char *units[] = {"(", "!", "-", "[", "f(", "a[", "{1:"};

    for (size_t i = 0; i < COUNT(units); i++) {
        size_t count = (CEL_SOURCE_MAX_BYTES - 1) / strlen(units[i]);
        char *source = repeat(units[i], count, "a");
        struct pg_error *err = NULL;
        struct cel_ast *ast = cel_parse(source, strlen(source), "t", &err);

        ck_assert_ptr_null(ast);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err->message, depth_message) != NULL, "%s: %s",
                      units[i], err->message);
        pg_error_free(err);
        free(source);
    }
}
END_TEST

/*
 * A chain of || or && is a list, not nesting: 1,024 operands (a list of
 * package names joined by ||, say) parse into a balanced tree, and the
 * next one is an error that says what to write instead.
 */
START_TEST(test_long_chains)
{
    char *ors = repeat("a || ", 1023, "a");
    char *ands = repeat("a && ", 1023, "a");
    char *too_many = repeat("a || ", 1024, "a");
    struct pg_error *err = NULL;
    struct cel_ast *ast;

    check_parse("a || b || c || d", "(|| (|| a b) (|| c d))");
    check_parse("a && b && c", "(&& (&& a b) c)");
    check_parse("a || b && c || d", "(|| (|| a (&& b c)) d)");
    for (int i = 0; i < 2; i++) {
        const char *source = i == 0 ? ors : ands;

        ast = cel_parse(source, strlen(source), "t", &err);
        ck_assert_msg(ast != NULL, "%s", err != NULL ? err->message : "");
        cel_ast_free(ast);
    }
    check_error(too_many, "t:1:5118: more than 1024 operands joined by ||; "
                          "list the values and test them with in or "
                          "exists()");
    free(ors);
    free(ands);
    free(too_many);
}
END_TEST

START_TEST(test_hundred_thousand_nested)
{
    char *parens = repeat("(", 100000, "a");
    char *nots = repeat("!", 100000, "a");

    check_error(parens, "t:1:1: expression is 100001 bytes long, more than "
                        "the maximum of 65536 bytes");
    check_error(nots, "t:1:1: expression is 100001 bytes long, more than "
                      "the maximum of 65536 bytes");
    free(nots);
    free(parens);
}
END_TEST

START_TEST(test_long_chain)
{
    char *ok = repeat("a+", CEL_DEPTH_MAX, "a");
    char *deep = repeat("a+", CEL_DEPTH_MAX + 1, "a");
    char expected[256];

    check_parse("a+a+a", "(+ (+ a a) a)");
    {
        struct pg_error *err = NULL;
        struct cel_ast *ast = cel_parse(ok, strlen(ok), "t", &err);

        ck_assert_ptr_nonnull(ast);
        cel_ast_free(ast);
    }
    /* The 65th '+' is at column 2 * 65. */
    snprintf(expected, sizeof(expected), "t:1:%d: %s", 2 * (CEL_DEPTH_MAX + 1),
             depth_message);
    check_error(deep, expected);
    free(deep);
    free(ok);
}
END_TEST

START_TEST(test_size_limits)
{
    char *source = repeat(" ", CEL_SOURCE_MAX_BYTES - 1, "a");
    char expected[256];

    check_parse(source, "a");
    check_error_len(source, CEL_SOURCE_MAX_BYTES + 1,
                    "t:1:1: expression is 65537 bytes long, more than the "
                    "maximum of 65536 bytes");
    free(source);

    /* "[0,0,...,0]": the first ',' becomes the '['. */
    source = repeat(",0", CEL_ELEMENTS_MAX, "]");
    source[0] = '[';
    {
        struct pg_error *err = NULL;
        struct cel_ast *ast = cel_parse(source, strlen(source), "t", &err);

        ck_assert_msg(ast != NULL, "%s", err != NULL ? err->message : "");
        ck_assert_uint_eq(ast->child_count, CEL_ELEMENTS_MAX);
        cel_ast_free(ast);
    }
    free(source);

    source = repeat(",0", CEL_ELEMENTS_MAX + 1, "]");
    source[0] = '[';
    snprintf(expected, sizeof(expected),
             "t:1:%d: the list has more than the maximum of %d elements",
             2 * CEL_ELEMENTS_MAX + 2, CEL_ELEMENTS_MAX);
    check_error(source, expected);
    free(source);

    source = repeat(",0", CEL_ARGUMENTS_MAX + 1, ")");
    source[0] = '(';
    {
        char *call = malloc(strlen(source) + 2);

        ck_assert_ptr_nonnull(call);
        call[0] = 'f';
        memcpy(call + 1, source, strlen(source) + 1);
        snprintf(expected, sizeof(expected),
                 "t:1:%d: the call has more than the maximum of %d "
                 "arguments",
                 2 * CEL_ARGUMENTS_MAX + 3, CEL_ARGUMENTS_MAX);
        check_error(call, expected);
        free(call);
    }
    free(source);
}
END_TEST

START_TEST(test_positions)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast = cel_parse("x &&\n  y.z", 10, "t", &err);

    ck_assert_ptr_nonnull(ast);
    ck_assert_int_eq(ast->kind, CEL_AST_BINARY);
    ck_assert_int_eq(ast->op, CEL_OP_AND);
    ck_assert_int_eq(ast->line, 1);
    ck_assert_int_eq(ast->column, 3);
    ck_assert_int_eq(ast->children[1]->kind, CEL_AST_SELECT);
    ck_assert_int_eq(ast->children[1]->line, 2);
    ck_assert_int_eq(ast->children[1]->column, 5);
    ck_assert_int_eq(ast->children[1]->children[0]->column, 3);
    cel_ast_free(ast);
}
END_TEST

START_TEST(test_origin_in_message)
{
    struct pg_error *err = NULL;

    ck_assert_ptr_null(cel_parse("a +", 3, "rule no-root (when)", &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err->message, "rule no-root (when):1:4: expected an "
                                   "expression, found end of expression");
    pg_error_free(err);
}
END_TEST

static Suite *
cel_suite(void)
{
    Suite *suite = suite_create("cel");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_literals);
    tcase_add_test(tc, test_string_values);
    tcase_add_test(tc, test_number_values);
    tcase_add_test(tc, test_macros);
    tcase_add_test(tc, test_macro_positions);
    tcase_add_test(tc, test_reserved_words);
    tcase_add_test(tc, test_syntax_errors);
    tcase_add_test(tc, test_literal_errors);
    tcase_add_test(tc, test_macro_errors);
    tcase_add_test(tc, test_depth_limits);
    tcase_add_test(tc, test_deep_input_rejected);
    tcase_add_test(tc, test_hundred_thousand_nested);
    tcase_add_test(tc, test_long_chains);
    tcase_add_test(tc, test_long_chain);
    tcase_add_test(tc, test_size_limits);
    tcase_add_test(tc, test_positions);
    tcase_add_test(tc, test_origin_in_message);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(cel_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
