/*
 * Unit tests for the CEL evaluator: each operator and function on the
 * values the CEL language definition gives, its runtime errors with their
 * exact text and position, heterogeneous equality, the commutative && and
 * ||, the macros with their error absorption, and the step, value and
 * memory limits.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/error.h"
#include "policy/cel.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/*
 * One expression, the JSON object whose members are its variables (NULL
 * for none), and either the JSON text of the expected result or the exact
 * error message.
 */
struct eval_case {
    const char *source;
    const char *input;
    const char *expected;
    const char *error;
};

/* Parses and evaluates source. Returns the result, or NULL with *err set. */
static json_t *
evaluate(const char *source, const json_t *input, struct pg_error **err)
{
    struct pg_error *parse_err = NULL;
    struct cel_ast *ast = cel_parse(source, strlen(source), "t", &parse_err);
    json_t *result;

    ck_assert_msg(ast != NULL, "%s: %s", source,
                  parse_err != NULL ? parse_err->message : "(no error)");
    result = cel_eval(ast, input, err);
    cel_ast_free(ast);
    return result;
}

static void
check_result(const char *source, const json_t *input, const char *expected)
{
    struct pg_error *err = NULL;
    json_t *result = evaluate(source, input, &err);
    json_t *want = json_loads(expected, JSON_DECODE_ANY, NULL);
    char *got;

    ck_assert_ptr_nonnull(want);
    ck_assert_msg(result != NULL, "%s: %s", source,
                  err != NULL ? err->message : "(no error)");
    ck_assert_ptr_null(err);
    got = json_dumps(result, JSON_ENCODE_ANY | JSON_COMPACT);
    /* json_equal() keeps 1 and 1.0 apart, so int and double results are
     * checked too. */
    ck_assert_msg(json_equal(result, want), "%s: got %s, expected %s", source,
                  got, expected);
    free(got);
    json_decref(want);
    json_decref(result);
}

static void
check_error(const char *source, const json_t *input, const char *message)
{
    struct pg_error *err = NULL;
    json_t *result = evaluate(source, input, &err);

    ck_assert_msg(result == NULL, "%s: evaluated, expected %s", source,
                  message);
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 400);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    ck_assert_msg(strcmp(err->message, message) == 0,
                  "%s: got \"%s\", expected \"%s\"", source, err->message,
                  message);
    pg_error_free(err);
}

static void
check_cases(const struct eval_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        json_t *input = NULL;

        if (cases[i].input != NULL) {
            input = json_loads(cases[i].input, 0, NULL);
            ck_assert_ptr_nonnull(input);
        }
        if (cases[i].error != NULL)
            check_error(cases[i].source, input, cases[i].error);
        else
            check_result(cases[i].source, input, cases[i].expected);
        json_decref(input);
    }
}

static const struct eval_case arithmetic_cases[] = {
    {"1 + 2", NULL, "3", NULL},
    {"7 - 10", NULL, "-3", NULL},
    {"6 * 7", NULL, "42", NULL},
    {"7 / 2", NULL, "3", NULL},
    {"-7 / 2", NULL, "-3", NULL},
    {"7 % 3", NULL, "1", NULL},
    {"-7 % 3", NULL, "-1", NULL},
    {"-(3)", NULL, "-3", NULL},
    {"1u + 2u", NULL, "3", NULL},
    {"10u - 3u", NULL, "7", NULL},
    {"4u * 5u", NULL, "20", NULL},
    {"7u / 2u", NULL, "3", NULL},
    {"7u % 4u", NULL, "3", NULL},
    {"2.5 * 2.0", NULL, "5.0", NULL},
    {"1.0 - 0.5", NULL, "0.5", NULL},
    {"1.0 / 4.0", NULL, "0.25", NULL},
    {"-(1.5)", NULL, "-1.5", NULL},
    {"1.0 / 0.0 > 1e308", NULL, "true", NULL},
    {"-1.0 / 0.0 < -1e308", NULL, "true", NULL},
    {"'ab' + 'cd'", NULL, "\"abcd\"", NULL},
    {"[1] + [2u, 'x']", NULL, "[1, 2, \"x\"]", NULL},
    {"[] + []", NULL, "[]", NULL},
    {"n + 1", "{\"n\": 41}", "42", NULL},
    {"r * 2.0", "{\"r\": 1.25}", "2.5", NULL},
    {"9223372036854775807 + 1", NULL, NULL, "1:21: integer overflow"},
    {"-9223372036854775808 - 1", NULL, NULL, "1:22: integer overflow"},
    {"4611686018427387904 * 2", NULL, NULL, "1:21: integer overflow"},
    {"-9223372036854775808 / -1", NULL, NULL, "1:22: integer overflow"},
    {"-9223372036854775808 % -1", NULL, NULL, "1:22: integer overflow"},
    {"-(-9223372036854775808)", NULL, NULL, "1:1: integer overflow"},
    {"1 / 0", NULL, NULL, "1:3: division by zero"},
    {"1 % 0", NULL, NULL, "1:3: modulus by zero"},
    {"1u / 0u", NULL, NULL, "1:4: division by zero"},
    {"1u % 0u", NULL, NULL, "1:4: modulus by zero"},
    {"1u - 2u", NULL, NULL, "1:4: unsigned integer overflow"},
    {"18446744073709551615u + 1u", NULL, NULL,
     "1:23: unsigned integer overflow"},
    {"4294967296u * 4294967296u", NULL, NULL,
     "1:13: unsigned integer overflow"},
    {"1 + 1u", NULL, NULL,
     "1:3: no matching overload for '_+_' applied to (int, uint)"},
    {"1 + 'a'", NULL, NULL,
     "1:3: no matching overload for '_+_' applied to (int, string)"},
    {"1 + 1.0", NULL, NULL,
     "1:3: no matching overload for '_+_' applied to (int, double)"},
    {"1.5 % 1.0", NULL, NULL,
     "1:5: no matching overload for '_%_' applied to (double, double)"},
    {"'a' - 'a'", NULL, NULL,
     "1:5: no matching overload for '_-_' applied to (string, string)"},
    {"[1] * 2", NULL, NULL,
     "1:5: no matching overload for '_*_' applied to (list, int)"},
    {"null / 1", NULL, NULL,
     "1:6: no matching overload for '_/_' applied to (null_type, int)"},
    {"-(1u)", NULL, NULL,
     "1:1: no matching overload for '-_' applied to (uint)"},
    {"-'a'", NULL, NULL,
     "1:1: no matching overload for '-_' applied to (string)"},
};

START_TEST(test_arithmetic)
{
    check_cases(arithmetic_cases, COUNT(arithmetic_cases));
}
END_TEST

static const struct eval_case comparison_cases[] = {
    {"1 < 2", NULL, "true", NULL},
    {"2 <= 2", NULL, "true", NULL},
    {"3 > 4", NULL, "false", NULL},
    {"3 >= 4", NULL, "false", NULL},
    {"2u > 1u", NULL, "true", NULL},
    {"1.5 >= 1.5", NULL, "true", NULL},
    {"1 < 1.5", NULL, "true", NULL},
    {"2 > 1.5", NULL, "true", NULL},
    {"1.5 < 2", NULL, "true", NULL},
    {"1u < 2", NULL, "true", NULL},
    {"-1 < 0u", NULL, "true", NULL},
    {"0u > -1", NULL, "true", NULL},
    {"18446744073709551615u > 9223372036854775807", NULL, "true", NULL},
    {"1u <= 1.0", NULL, "true", NULL},
    {"2u > 1.5", NULL, "true", NULL},
    {"0u > -0.5", NULL, "true", NULL},
    /* 2^53 + 1 is not a double, so comparing after a conversion to double
     * would find the two equal. */
    {"9007199254740993 > 9007199254740992.0", NULL, "true", NULL},
    {"9223372036854775807 < 9223372036854775808.0", NULL, "true", NULL},
    {"-9223372036854775808 <= -9223372036854775808.0", NULL, "true", NULL},
    {"18446744073709551615u < 18446744073709551616.0", NULL, "true", NULL},
    {"'a' < 'b'", NULL, "true", NULL},
    {"'abc' < 'ab'", NULL, "false", NULL},
    {"'ab' <= 'ab'", NULL, "true", NULL},
    {"'é' > 'z'", NULL, "true", NULL},
    {"false < true", NULL, "true", NULL},
    {"true >= true", NULL, "true", NULL},
    {"0.0 / 0.0 < 1", NULL, "false", NULL},
    {"0.0 / 0.0 >= 1", NULL, "false", NULL},
    {"1u > 0.0 / 0.0", NULL, "false", NULL},
    {"1 < 'a'", NULL, NULL,
     "1:3: no matching overload for '_<_' applied to (int, string)"},
    {"[1] <= [2]", NULL, NULL,
     "1:5: no matching overload for '_<=_' applied to (list, list)"},
    {"null > null", NULL, NULL,
     "1:6: no matching overload for '_>_' applied to (null_type, "
     "null_type)"},
};

START_TEST(test_comparison)
{
    check_cases(comparison_cases, COUNT(comparison_cases));
}
END_TEST

static const struct eval_case equality_cases[] = {
    {"1 == 1", NULL, "true", NULL},
    {"1 == 2", NULL, "false", NULL},
    {"1 == 1.0", NULL, "true", NULL},
    {"1 == 1u", NULL, "true", NULL},
    {"1u == 1.0", NULL, "true", NULL},
    {"-1 == 18446744073709551615u", NULL, "false", NULL},
    {"1 != 1.5", NULL, "true", NULL},
    {"1 == 'a'", NULL, "false", NULL},
    {"1 != 'a'", NULL, "true", NULL},
    {"null == null", NULL, "true", NULL},
    {"null == 0", NULL, "false", NULL},
    {"'a' != 'a'", NULL, "false", NULL},
    {"true == true", NULL, "true", NULL},
    {"[1, 2] == [1, 2.0]", NULL, "true", NULL},
    {"[1] == [1, 2]", NULL, "false", NULL},
    {"[[1], 'a'] == [[1u], 'a']", NULL, "true", NULL},
    {"{'a': 1} == {'a': 1u}", NULL, "true", NULL},
    {"{'a': 1} == {'b': 1}", NULL, "false", NULL},
    {"{'a': 1, 'b': 2} == {'b': 2, 'a': 1}", NULL, "true", NULL},
    {"{1: 'x'} == {1.0: 'x'}", NULL, NULL,
     "1:14: unsupported map key type double; keys are int, uint, bool or "
     "string"},
    {"doc == {'a': [1, 2], 'b': 'c'}",
     "{\"doc\": {\"b\": \"c\", \"a\": [1, 2]}}", "true", NULL},
    {"doc == {'a': [1, 3], 'b': 'c'}",
     "{\"doc\": {\"b\": \"c\", \"a\": [1, 2]}}", "false", NULL},
    {"doc.a == [1u, 2.0]", "{\"doc\": {\"a\": [1, 2]}}", "true", NULL},
    {"0.0 / 0.0 == 0.0 / 0.0", NULL, "false", NULL},
    {"0.0 / 0.0 != 0.0 / 0.0", NULL, "true", NULL},
    {"[0.0 / 0.0] == [0.0 / 0.0]", NULL, "false", NULL},
    {"1 in [3, 2, 1]", NULL, "true", NULL},
    {"2.0 in [1, 2]", NULL, "true", NULL},
    {"2u in [1, 2]", NULL, "true", NULL},
    {"4 in [1, 2]", NULL, "false", NULL},
    {"'a' in []", NULL, "false", NULL},
    {"[1] in [[1], [2]]", NULL, "true", NULL},
    {"'x' in {'x': 1}", NULL, "true", NULL},
    {"'y' in {'x': 1}", NULL, "false", NULL},
    {"1u in {1: 'a'}", NULL, "true", NULL},
    {"'user' in config", "{\"config\": {\"user\": \"root\"}}", "true", NULL},
    {"1 in config", "{\"config\": {\"user\": \"root\"}}", "false", NULL},
    {"'b' in tags", "{\"tags\": [\"a\", \"b\"]}", "true", NULL},
    {"1 in 2", NULL, NULL,
     "1:3: no matching overload for '@in' applied to (int, int)"},
    {"'a' in 'abc'", NULL, NULL,
     "1:5: no matching overload for '@in' applied to (string, string)"},
};

START_TEST(test_equality)
{
    check_cases(equality_cases, COUNT(equality_cases));
}
END_TEST

static const struct eval_case logic_cases[] = {
    {"true && true", NULL, "true", NULL},
    {"true && false", NULL, "false", NULL},
    {"false || false", NULL, "false", NULL},
    {"true || false", NULL, "true", NULL},
    {"!true", NULL, "false", NULL},
    {"!!true", NULL, "true", NULL},
    {"false && 1 / 0 == 0", NULL, "false", NULL},
    {"1 / 0 == 0 && false", NULL, "false", NULL},
    {"true || 1 / 0 == 0", NULL, "true", NULL},
    {"1 / 0 == 0 || true", NULL, "true", NULL},
    {"missing && false", NULL, "false", NULL},
    {"missing || true", NULL, "true", NULL},
    {"1 && false", NULL, "false", NULL},
    {"'a' || true", NULL, "true", NULL},
    {"true && 1 / 0 == 0", NULL, NULL, "1:11: division by zero"},
    {"1 / 0 == 0 && true", NULL, NULL, "1:3: division by zero"},
    {"false || 1 / 0 == 0", NULL, NULL, "1:12: division by zero"},
    {"1 / 0 == 0 || false", NULL, NULL, "1:3: division by zero"},
    {"x.a && y.b", NULL, NULL, "1:1: no such attribute: 'x'"},
    {"1 / 0 == 0 && 'a'", NULL, NULL, "1:3: division by zero"},
    {"1 && true", NULL, NULL,
     "1:3: no matching overload for '_&&_' applied to (int, bool)"},
    {"false || 'a'", NULL, NULL,
     "1:7: no matching overload for '_||_' applied to (bool, string)"},
    {"1 || 1 / 0 == 0", NULL, NULL,
     "1:3: no matching overload for '_||_' applied to (int)"},
    {"!1", NULL, NULL, "1:1: no matching overload for '!_' applied to (int)"},
    {"true ? 1 : 1 / 0", NULL, "1", NULL},
    {"false ? 1 / 0 : 2", NULL, "2", NULL},
    {"false ? missing : 'b'", NULL, "\"b\"", NULL},
    {"1 > 0 ? 'pos' : 'neg'", NULL, "\"pos\"", NULL},
    {"true ? 1 / 0 : 2", NULL, NULL, "1:10: division by zero"},
    {"1 ? 2 : 3", NULL, NULL,
     "1:3: no matching overload for '_?_:_' applied to (int)"},
};

START_TEST(test_logic)
{
    check_cases(logic_cases, COUNT(logic_cases));
}
END_TEST

static const char image_input[] =
    "{\"config\": {\"user\": \"root\", \"env\": [\"A=1\", \"B=2\"], "
    "\"labels\": {\"org.opencontainers.image.vendor\": \"acme\"}}, "
    "\"size\": 1024}";

static const struct eval_case selection_cases[] = {
    {"config.user", image_input, "\"root\"", NULL},
    {"config.env[1]", image_input, "\"B=2\"", NULL},
    {"config.env[0u]", image_input, "\"A=1\"", NULL},
    {"config.labels['org.opencontainers.image.vendor']", image_input,
     "\"acme\"", NULL},
    {"config['user']", image_input, "\"root\"", NULL},
    {"size", image_input, "1024", NULL},
    {"config", "{\"config\": {\"a\": [1, {\"b\": null}]}}",
     "{\"a\": [1, {\"b\": null}]}", NULL},
    {"has(config.user)", image_input, "true", NULL},
    {"has(config.group)", image_input, "false", NULL},
    {"has({'a': 1}.a)", NULL, "true", NULL},
    {"[10, 20, 30][2]", NULL, "30", NULL},
    {"{'a': 1}['a']", NULL, "1", NULL},
    {"{1: 'x'}[1u]", NULL, "\"x\"", NULL},
    {"{1: 'x'}[1.0]", NULL, "\"x\"", NULL},
    {"{true: 1}[true]", NULL, "1", NULL},
    {"{'a': [1, 2u], 'b': null, 'c': {'d': 1.5}}", NULL,
     "{\"a\": [1, 2], \"b\": null, \"c\": {\"d\": 1.5}}", NULL},
    {"config.group", image_input, NULL, "1:8: no such key: 'group'"},
    {"missing", image_input, NULL, "1:1: no such attribute: 'missing'"},
    {"missing", NULL, NULL, "1:1: no such attribute: 'missing'"},
    {"config.user.name", image_input, NULL,
     "1:13: no such attribute: 'name' on a value of type string; only maps "
     "have fields"},
    {"has(config.user.name)", image_input, NULL,
     "1:1: no such attribute: 'name' on a value of type string; only maps "
     "have fields"},
    {"config.env[2]", image_input, NULL,
     "1:11: index 2 out of range for a list of size 2"},
    {"config.env[-1]", image_input, NULL,
     "1:11: index -1 out of range for a list of size 2"},
    {"[1][5u]", NULL, NULL, "1:4: index 5u out of range for a list of size 1"},
    {"[1]['a']", NULL, NULL,
     "1:4: no matching overload for '_[_]' applied to (list, string)"},
    {"[1][0.0]", NULL, NULL,
     "1:4: no matching overload for '_[_]' applied to (list, double)"},
    {"'abc'[0]", NULL, NULL,
     "1:6: no matching overload for '_[_]' applied to (string, int)"},
    {"{'a': 1}['b']", NULL, NULL, "1:9: no such key: 'b'"},
    {"{1: 'a'}[2]", NULL, NULL, "1:9: no such key: 2"},
    {"config[1]", image_input, NULL, "1:7: no such key: 1"},
    {"{'a': 1, 'a': 2}", NULL, NULL, "1:10: repeated key in map literal"},
    {"{1: 1, 1u: 2}", NULL, NULL, "1:8: repeated key in map literal"},
    {"{[1]: 2}", NULL, NULL,
     "1:2: unsupported map key type list; keys are int, uint, bool or "
     "string"},
    {"{1: 2}", NULL, NULL,
     "1:1: the result is a map with a int key, which JSON cannot "
     "represent; use string keys"},
    {"18446744073709551615u", NULL, NULL,
     "1:1: the result 18446744073709551615u is larger than a JSON integer "
     "can hold"},
    {"1.0 / 0.0", NULL, NULL, "1:5: the result inf has no JSON form"},
};

START_TEST(test_selection)
{
    check_cases(selection_cases, COUNT(selection_cases));
}
END_TEST

static const struct eval_case function_cases[] = {
    {"size('hello')", NULL, "5", NULL},
    {"size('h\\u00e9llo')", NULL, "5", NULL},
    {"'\\U0001F600'.size()", NULL, "1", NULL},
    {"size('')", NULL, "0", NULL},
    {"size([1, 2])", NULL, "2", NULL},
    {"[1, 2, 3].size()", NULL, "3", NULL},
    {"size({'a': 1})", NULL, "1", NULL},
    {"config.env.size()", image_input, "2", NULL},
    {"config.labels.size()", image_input, "1", NULL},
    {"name.size()", "{\"name\": \"na\\u00efve \\u65e5\\u672c\"}", "8", NULL},
    {"size(1)", NULL, NULL,
     "1:1: no matching overload for 'size' applied to (int)"},
    {"size(1, 2)", NULL, NULL,
     "1:1: no matching overload for 'size' with 2 arguments"},
    {"int('42')", NULL, "42", NULL},
    {"int('-9223372036854775808')", NULL, "-9223372036854775808", NULL},
    {"int(3.9)", NULL, "3", NULL},
    {"int(-3.9)", NULL, "-3", NULL},
    {"int(42u)", NULL, "42", NULL},
    {"int(7)", NULL, "7", NULL},
    {"int('9223372036854775808')", NULL, NULL,
     "1:1: cannot convert string '9223372036854775808' to int"},
    {"int(' 1')", NULL, NULL, "1:1: cannot convert string ' 1' to int"},
    {"int('0x10')", NULL, NULL, "1:1: cannot convert string '0x10' to int"},
    {"int('1.0')", NULL, NULL, "1:1: cannot convert string '1.0' to int"},
    {"int('')", NULL, NULL, "1:1: cannot convert string '' to int"},
    {"int('-')", NULL, NULL, "1:1: cannot convert string '-' to int"},
    {"int(1e19)", NULL, NULL, "1:1: range error converting 1e+19 to int"},
    {"int(-1e19)", NULL, NULL, "1:1: range error converting -1e+19 to int"},
    {"int(18446744073709551615u)", NULL, NULL,
     "1:1: range error converting 18446744073709551615u to int"},
    {"int(true)", NULL, NULL,
     "1:1: no matching overload for 'int' applied to (bool)"},
    {"uint(42)", NULL, "42", NULL},
    {"uint(2.9)", NULL, "2", NULL},
    {"uint('18446744073709551615') == 18446744073709551615u", NULL, "true",
     NULL},
    {"uint(-1)", NULL, NULL, "1:1: range error converting -1 to uint"},
    {"uint(-1.0)", NULL, NULL, "1:1: range error converting -1 to uint"},
    {"uint(2e19)", NULL, NULL, "1:1: range error converting 2e+19 to uint"},
    {"uint('-1')", NULL, NULL, "1:1: cannot convert string '-1' to uint"},
    {"uint('18446744073709551616')", NULL, NULL,
     "1:1: cannot convert string '18446744073709551616' to uint"},
    {"double(1)", NULL, "1.0", NULL},
    {"double(2u)", NULL, "2.0", NULL},
    {"double('2.5')", NULL, "2.5", NULL},
    {"double('-1e3')", NULL, "-1000.0", NULL},
    {"double('abc')", NULL, NULL, "1:1: cannot convert string 'abc' to double"},
    {"double(' 1')", NULL, NULL, "1:1: cannot convert string ' 1' to double"},
    {"double('1x')", NULL, NULL, "1:1: cannot convert string '1x' to double"},
    {"double(null)", NULL, NULL,
     "1:1: no matching overload for 'double' applied to (null_type)"},
    {"string(42)", NULL, "\"42\"", NULL},
    {"string(-1)", NULL, "\"-1\"", NULL},
    {"string(1u)", NULL, "\"1\"", NULL},
    {"string(2.5)", NULL, "\"2.5\"", NULL},
    {"string(0.1)", NULL, "\"0.1\"", NULL},
    {"string(0.0 / 0.0)", NULL, "\"NaN\"", NULL},
    {"string(1.0 / 0.0) + string(-1.0 / 0.0)", NULL, "\"+Inf-Inf\"", NULL},
    {"string(true)", NULL, "\"true\"", NULL},
    {"string('x')", NULL, "\"x\"", NULL},
    {"string([1])", NULL, NULL,
     "1:1: no matching overload for 'string' applied to (list)"},
    {"'hello'.contains('ell')", NULL, "true", NULL},
    {"'hello'.contains('')", NULL, "true", NULL},
    {"'hello'.contains('elo')", NULL, "false", NULL},
    {"'hello'.startsWith('he')", NULL, "true", NULL},
    {"'hello'.startsWith('lo')", NULL, "false", NULL},
    {"'hello'.endsWith('lo')", NULL, "true", NULL},
    {"'hello'.endsWith('hello!')", NULL, "false", NULL},
    {"'hello'.contains(1)", NULL, NULL,
     "1:9: no matching overload for 'contains' applied to (string, int)"},
    {"contains('a', 'b')", NULL, NULL,
     "1:1: no matching overload for 'contains' with 2 arguments"},
    {"'HeLLo 1'.lowerAscii()", NULL, "\"hello 1\"", NULL},
    {"'\\u00c4bC'.upperAscii()", NULL, "\"\\u00c4BC\"", NULL},
    {"'\\u00c4'.lowerAscii()", NULL, "\"\\u00c4\"", NULL},
    {"'abc'.matches('^a.c$')", NULL, "true", NULL},
    {"matches('abc', 'b')", NULL, "true", NULL},
    {"'abc'.matches('^b')", NULL, "false", NULL},
    {"'\\u00e9'.matches('^.$')", NULL, "true", NULL},
    {"config.user.matches('^ro+t$')", image_input, "true", NULL},
    {"'abc'.matches('[' + '')", NULL, NULL,
     "1:7: invalid regular expression '[': missing terminating ] for "
     "character class at offset 1"},
    {"'abc'.matches(1)", NULL, NULL,
     "1:7: no matching overload for 'matches' applied to (string, int)"},
    {"1.matches('a')", NULL, NULL,
     "1:3: no matching overload for 'matches' applied to (int, string)"},
    {"foo(1)", NULL, NULL, "1:1: undeclared reference to function 'foo'"},
    {"'a'.int()", NULL, NULL,
     "1:5: no matching overload for 'int' with 0 arguments and a receiver"},
};

START_TEST(test_functions)
{
    check_cases(function_cases, COUNT(function_cases));
}
END_TEST

static const char labels_input[] =
    "{\"labels\": {\"org.a\": \"1\", \"b\": \"\", \"org.c\": \"3\"}, \"x\": 5}";

static const struct eval_case macro_cases[] = {
    {"[1, 2, 3].all(x, x > 0)", NULL, "true", NULL},
    {"[1, 2, 3].all(x, x > 1)", NULL, "false", NULL},
    {"[].all(x, false)", NULL, "true", NULL},
    {"[1, 2, 3].exists(x, x == 2)", NULL, "true", NULL},
    {"[1, 2, 3].exists(x, x == 4)", NULL, "false", NULL},
    {"[].exists(x, true)", NULL, "false", NULL},
    {"[1, 2, 3].exists_one(x, x > 1)", NULL, "false", NULL},
    {"[1, 2, 3].exists_one(x, x > 2)", NULL, "true", NULL},
    {"[].exists_one(x, true)", NULL, "false", NULL},
    {"[1, 2, 3].filter(x, x % 2 == 1)", NULL, "[1, 3]", NULL},
    {"[1, 2, 3].filter(x, false)", NULL, "[]", NULL},
    {"[1, 2, 3].map(x, x * 2)", NULL, "[2, 4, 6]", NULL},
    {"[1, 2, 3].map(x, x > 1, x * 10)", NULL, "[20, 30]", NULL},
    {"[[1, 2], [3]].map(l, l.size())", NULL, "[2, 1]", NULL},
    {"{'a': 1, 'b': 2}.map(k, k)", NULL, "[\"a\", \"b\"]", NULL},
    {"{'a': 1, 'b': 2}.exists(k, k == 'b')", NULL, "true", NULL},
    {"labels.filter(k, k.startsWith('org.'))", labels_input,
     "[\"org.a\", \"org.c\"]", NULL},
    {"labels.all(k, labels[k] != '')", labels_input, "false", NULL},
    {"labels.exists_one(k, labels[k] == '')", labels_input, "true", NULL},
    {"labels.map(k, labels[k] != '', labels[k])", labels_input,
     "[\"1\", \"3\"]", NULL},
    /* The iteration variable shadows the input member x only inside. */
    {"[1, 2].map(x, x * 10) + [x]", labels_input, "[10, 20, 5]", NULL},
    {"[1, 2].all(x, [3].all(x, x == 3)) && x == 5", labels_input, "true", NULL},
    {"[1, 2].map(x, [10].map(y, x + y))", NULL, "[[11], [12]]", NULL},
    /* all() and exists() absorb errors as && and || do. */
    {"[0, 1].all(x, 1 / x > 5)", NULL, "false", NULL},
    {"[1, 0].exists(x, 1 / x == 1)", NULL, "true", NULL},
    {"[0, 1].exists(x, 1 / x == 1)", NULL, "true", NULL},
    {"[0, 'a', false].all(x, x)", NULL, "false", NULL},
    {"[0, 2].exists(x, 1 / x == 1)", NULL, NULL, "1:20: division by zero"},
    {"[0, 1].all(x, 1 / x == 1)", NULL, NULL, "1:17: division by zero"},
    {"[1].all(x, x)", NULL, NULL,
     "1:5: no matching overload for '_&&_' applied to (int)"},
    {"[1].exists(x, x)", NULL, NULL,
     "1:5: no matching overload for '_||_' applied to (int)"},
    {"[0, 1].exists_one(x, 1 / x == 1)", NULL, NULL, "1:24: division by zero"},
    {"[0, 1].filter(x, 1 / x == 1)", NULL, NULL, "1:20: division by zero"},
    {"[0, 1].map(x, 1 / x)", NULL, NULL, "1:17: division by zero"},
    {"[1].filter(x, 1)", NULL, NULL,
     "1:5: no matching overload for 'filter' applied to (int)"},
    {"1.all(x, true)", NULL, NULL,
     "1:3: no matching overload for 'all' applied to (int)"},
    {"'abc'.map(x, x)", NULL, NULL,
     "1:7: no matching overload for 'map' applied to (string)"},
};

START_TEST(test_macros)
{
    check_cases(macro_cases, COUNT(macro_cases));
}
END_TEST

/* Returns {"items": [0, 1, ..., count - 1]} plus a string s of s_len
 * bytes of 'a'. */
static json_t *
make_big_input(size_t count, size_t s_len)
{
    json_t *input = json_object();
    json_t *items = json_array();
    char *s = malloc(s_len + 1);

    ck_assert_ptr_nonnull(input);
    ck_assert_ptr_nonnull(items);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < count; i++)
        ck_assert_int_eq(json_array_append_new(items, json_integer(i)), 0);
    memset(s, 'a', s_len);
    s[s_len] = '\0';
    ck_assert_int_eq(json_object_set_new(input, "items", items), 0);
    ck_assert_int_eq(json_object_set_new(input, "s", json_string(s)), 0);
    free(s);
    return input;
}

START_TEST(test_hundred_thousand_elements)
{
    json_t *input = make_big_input(100000, 0);

    check_result("items.exists(x, x == 99999)", input, "true");
    check_result("items.exists(x, x == 100000)", input, "false");
    check_result("items.all(x, x >= 0)", input, "true");
    check_result("items.exists_one(x, x == 500)", input, "true");
    check_result("items.filter(x, x % 2 == 0).size()", input, "50000");
    check_result("items.map(x, x * 2)[99999]", input, "199998");
    check_result("99999 in items", input, "true");
    check_result("items == items.map(x, x)", input, "true");
    check_result("items.size()", input, "100000");
    json_decref(input);
}
END_TEST

START_TEST(test_step_limit)
{
    json_t *input = make_big_input(100000, 0);

    check_error("items.all(x, items.all(y, true))", input,
                "1:20: the expression needs more than the maximum of "
                "10000000 evaluation steps; simplify it or nest fewer "
                "macros");
    /* The step limit is no error that || may absorb. */
    check_error("items.exists(x, items.exists(y, false)) || true", input,
                "1:33: the expression needs more than the maximum of "
                "10000000 evaluation steps; simplify it or nest fewer "
                "macros");
    check_error("1 / 0 == 0 || items.exists(x, items.exists(y, false))", input,
                "1:47: the expression needs more than the maximum of "
                "10000000 evaluation steps; simplify it or nest fewer "
                "macros");
    check_error("items.all(x, items == items)", input,
                "1:20: the expression needs more than the maximum of "
                "10000000 evaluation steps; simplify it or nest fewer "
                "macros");
    json_decref(input);
}
END_TEST

/*
 * Patterns that backtrack exponentially, matched against strings built to
 * make them do so: 20,000 of them must finish, since matches() runs a DFA.
 * With a backtracking matcher this took over a minute.
 */
START_TEST(test_regex_no_backtracking)
{
    json_t *input = json_pack("{s:[]}", "xs");
    json_t *xs = json_object_get(input, "xs");
    char text[64];

    for (int i = 0; i < 20000; i++) {
        snprintf(text, sizeof(text), "%s!%05d",
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", i);
        json_array_append_new(xs, json_string(text));
    }
    check_result("xs.exists(x, x.matches('^(a|aa)+$'))", input, "false");
    check_result("xs.exists(x, x.matches('^(a+)+$'))", input, "false");
    check_result("xs.exists(x, x.matches('^(.*/)*id_rsa$'))", input,
                 "false");
    check_result("xs.filter(x, x.matches('^(a|aa)+!0000[0-4]$')).size()",
                 input, "5");
    json_decref(input);

    /* An unanchored pattern is searched in one pass, not from each of a
     * long text's positions. */
    {
        size_t n = 200000;
        char *long_text = malloc(n + 2);

        ck_assert_ptr_nonnull(long_text);
        memset(long_text, 'a', n);
        long_text[n] = 'b';
        long_text[n + 1] = '\0';
        input = json_pack("{s:s}", "s", long_text);
        check_result("s.matches('a*[cd]')", input, "false");
        check_result("s.matches('(a|aa|aaa|aaaa)*c|b$')", input, "true");
        check_result("s.matches('ab')", input, "true");
        json_decref(input);
        free(long_text);
    }
    /* The wrapper keeps what the pattern means. */
    check_result("'xaby'.matches('ab') && !'xaby'.matches('^ab')", NULL,
                 "true");
    check_result("'a\\nb'.matches('(?m)^b$') && !'a\\nb'.matches('^b$')",
                 NULL, "true");
    check_result("'ABC'.matches('(?i)b')", NULL, "true");
    check_result("'x)y'.matches('\\\\Qx)')", NULL, "true");
}
END_TEST

START_TEST(test_value_limits)
{
    json_t *input = make_big_input(200000, 2 * 1024 * 1024);

    check_result("(s + s + s).size()", input, "6291456");
    check_result("(s + s + s + s).size()", input, "8388608");
    check_error("s + s + s + s + s", input,
                "1:15: the string would be larger than the maximum of 8 MiB "
                "for one value");
    check_result("items.map(x, x).size()", input, "200000");
    check_error("items + items", input,
                "1:7: the list would be larger than the maximum of 8 MiB for "
                "one value");
    /* Each element builds 10 MiB of strings, so the seventh passes the
     * 64 MiB of one evaluation. */
    check_error("items.all(x, (s + s + s).size() > 0)", input,
                "1:17: the expression needs more than the maximum of 64 MiB "
                "of memory");
    json_decref(input);
}
END_TEST

START_TEST(test_input_not_object)
{
    struct pg_error *err = NULL;
    json_t *input = json_array();

    ck_assert_ptr_null(evaluate("1", input, &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err->message,
                     "1:1: the input of a CEL expression must be a JSON "
                     "object");
    pg_error_free(err);
    json_decref(input);
}
END_TEST

START_TEST(test_regex_cached_per_site)
{
    json_t *input = make_big_input(100000, 0);

    /* One compilation serves every element. Compiling per element would
     * still pass, so this mainly runs the cache under the sanitizers. */
    check_result("items.filter(x, string(x).matches('^9+$')).size()", input,
                 "5");
    check_result("['a', 'b', 'c'].map(p, 'abc'.matches(p))", NULL,
                 "[true, true, true]");
    json_decref(input);
}
END_TEST

static const char packages_input[] =
    "{\"packages\": [{\"type\": \"npm\", \"name\": \"a\", "
    "\"version\": \"1.2.3\"}, {\"type\": \"pypi\", \"name\": \"b\", "
    "\"version\": \"2.0.0.post1\"}, {\"type\": \"deb\", \"name\": "
    "\"c\", \"version\": \"1:0.1\"}]}";

static const struct eval_case policy_function_cases[] = {
    {"matchesGlob('docker.io/library/nginx', 'docker.io/library/*')", NULL,
     "true", NULL},
    {"'docker.io/library/nginx'.matchesGlob('docker.io/*')", NULL, "false",
     NULL},
    {"'docker.io/library/nginx'.matchesGlob('docker.io/**')", NULL, "true",
     NULL},
    {"'Docker.io'.matchesGlob('docker.io')", NULL, "false", NULL},
    {"config.user.matchesGlob('r??t')", image_input, "true", NULL},
    /* A glob built at run time is checked then; a literal one is checked
     * by the parser (test_cel.c). */
    {"'a'.matchesGlob('[a' + '')", NULL, NULL,
     "1:5: invalid glob '[a': the character class at character 1 has no "
     "closing ']'; close it, or write '\\[' for a literal '['"},
    {"matchesGlob('a', '' + '')", NULL, NULL,
     "1:1: invalid glob '': the glob is empty; write '**' to match every "
     "text"},
    {"matchesGlob(1, 'a')", NULL, NULL,
     "1:1: no matching overload for 'matchesGlob' applied to (int, string)"},
    {"compareVersions('deb', '1.0~rc1', '1.0')", NULL, "-1", NULL},
    {"compareVersions('deb', '1:0.1', '2.0')", NULL, "1", NULL},
    {"compareVersions('npm', 'v1.2.3', '1.2.3+build')", NULL, "0", NULL},
    {"compareVersions('golang', 'v1.10.0', 'v1.9.0')", NULL, "1", NULL},
    {"compareVersions('pypi', '1.0.post1', '1.0')", NULL, "1", NULL},
    {"compareVersions('pep440', '1.0alpha1', '1.0a1')", NULL, "0", NULL},
    {"compareVersions('apk', '1.0_rc1', '1.0')", NULL, "-1", NULL},
    {"compareVersions('rpm', '1.0^git1', '1.0')", NULL, "1", NULL},
    {"packages.filter(p, compareVersions(p.type, p.version, '2.0.0') < 0)"
     ".map(p, p.name)",
     packages_input, "[\"a\"]", NULL},
    {"compareVersions('maven', '1', '2')", NULL, NULL,
     "1:1: unknown version scheme 'maven'; use deb, apk, rpm, semver or "
     "pep440 (or the package URL types npm, golang, pypi)"},
    {"compareVersions('semver', '1.x', '1.0.0')", NULL, NULL,
     "1:1: '1.x' is not a valid semver version: the minor version is not a "
     "number"},
    {"compareVersions('deb', '1.0', 'a1')", NULL, NULL,
     "1:1: 'a1' is not a valid deb version: the upstream version does not "
     "start with a digit"},
    {"compareVersions('deb', 1, '1')", NULL, NULL,
     "1:1: no matching overload for 'compareVersions' applied to (string, "
     "int, string)"},
    {"compareVersions('deb', '1')", NULL, NULL,
     "1:1: no matching overload for 'compareVersions' with 2 arguments"},
    {"isVersion('deb', '1.0-1')", NULL, "true", NULL},
    {"isVersion('deb', 'abc')", NULL, "false", NULL},
    {"isVersion('npm', '1.0')", NULL, "false", NULL},
    {"packages.all(p, isVersion(p.type, p.version))", packages_input, "true",
     NULL},
    {"isVersion('x', '1')", NULL, NULL,
     "1:1: unknown version scheme 'x'; use deb, apk, rpm, semver or pep440 "
     "(or the package URL types npm, golang, pypi)"},
    {"isVersion('deb', null)", NULL, NULL,
     "1:1: no matching overload for 'isVersion' applied to (string, "
     "null_type)"},
    {"'deb'.isVersion('1')", NULL, NULL,
     "1:7: no matching overload for 'isVersion' with 1 argument and a "
     "receiver"},
};

START_TEST(test_policy_functions)
{
    check_cases(policy_function_cases, COUNT(policy_function_cases));
}
END_TEST

static Suite *
cel_eval_suite(void)
{
    Suite *suite = suite_create("cel_eval");
    TCase *tc = tcase_create("eval");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_arithmetic);
    tcase_add_test(tc, test_comparison);
    tcase_add_test(tc, test_equality);
    tcase_add_test(tc, test_logic);
    tcase_add_test(tc, test_selection);
    tcase_add_test(tc, test_functions);
    tcase_add_test(tc, test_macros);
    tcase_add_test(tc, test_hundred_thousand_elements);
    tcase_add_test(tc, test_step_limit);
    tcase_add_test(tc, test_regex_no_backtracking);
    tcase_add_test(tc, test_value_limits);
    tcase_add_test(tc, test_input_not_object);
    tcase_add_test(tc, test_regex_cached_per_site);
    tcase_add_test(tc, test_policy_functions);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(cel_eval_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
