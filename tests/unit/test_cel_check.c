/*
 * Unit tests for the static checker of CEL expressions. They check every
 * rule with the exact message and position of each problem, expressions
 * that must pass, and the reads_image and reads_document flags. They hold
 * the schema against the example document of docs/image-document.md, run
 * every rule of the shipped policies and docs/policy.md, and evaluate the
 * rejected expressions to see that they fail at run time too.
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/error.h"
#include "policy/cel.h"
#include "policy/cel_check.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Problems one case expects at most. */
#define EXPECTED_MAX 4

/* Bytes of a test input file read whole. */
#define TEST_FILE_MAX (1024 * 1024)

#define E "error"
#define W "warning"

struct expected_problem {
    unsigned line;
    unsigned column;
    const char *severity;
    const char *message;
};

/*
 * One expression checked in an environment against the wanted result
 * type, the problems expected in order (an empty list for none), and
 * whether the evaluator also fails on the example document.
 */
struct check_case {
    const char *source;
    enum cel_check_env env;
    const char *want;
    struct expected_problem problems[EXPECTED_MAX];
    bool fails_at_runtime;
};

#define P CEL_ENV_POLICY
#define A CEL_ENV_ANY

#define CONFIG_FIELDS                                                          \
    "user, env, exposed_ports, volumes, labels, entrypoint, cmd, "             \
    "working_dir, created, history, dockerfile"

#define PACKAGE_FIELDS                                                         \
    "type, name, version, path, layer, purl, distro, licenses, arch, "         \
    "source_name, source_version, epoch, release, location, go_version, "      \
    "main_module"

#define ALL_FUNCTIONS                                                          \
    "size, int, uint, double, string, contains, startsWith, endsWith, "        \
    "lowerAscii, upperAscii, matches, matchesGlob, compareVersions and "       \
    "isVersion"

#define NOT_BOOL_FIX "; compare the value, for example with == or in"

#define NEVER_EQUAL_FIX                                                        \
    ", because values of different types are never equal; compare values "     \
    "of the same type"

/* Parses source, which must be valid CEL. */
static struct cel_ast *
parse(const char *source)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast = cel_parse(source, strlen(source), "t", &err);

    ck_assert_msg(ast != NULL, "%s: %s", source,
                  err != NULL ? err->message : "(no error)");
    return ast;
}

/* Parses and checks source. The caller releases result->problems. */
static void
run_check(const char *source, enum cel_check_env env, const char *want,
          struct cel_check_result *result)
{
    struct pg_error *err = NULL;
    struct cel_ast *ast = parse(source);

    ck_assert_int_eq(cel_check(ast, env, want, result, &err), 0);
    ck_assert_ptr_null(err);
    ck_assert_ptr_nonnull(result->problems);
    cel_ast_free(ast);
}

static size_t
expected_count(const struct check_case *c)
{
    size_t n = 0;

    while (n < EXPECTED_MAX && c->problems[n].message != NULL)
        n++;
    return n;
}

/* Checks one problem of the result against its expected fields. */
static void
assert_problem(const char *source, const json_t *got,
               const struct expected_problem *want)
{
    const char *message = json_string_value(json_object_get(got, "message"));
    const char *severity = json_string_value(json_object_get(got, "severity"));

    ck_assert_msg(message != NULL && strcmp(message, want->message) == 0,
                  "%s: got message \"%s\", expected \"%s\"", source,
                  message != NULL ? message : "(none)", want->message);
    ck_assert_msg(severity != NULL && strcmp(severity, want->severity) == 0,
                  "%s: got severity %s, expected %s", source,
                  severity != NULL ? severity : "(none)", want->severity);
    ck_assert_msg(json_integer_value(json_object_get(got, "line")) ==
                      want->line,
                  "%s: got line %lld, expected %u", source,
                  (long long)json_integer_value(json_object_get(got, "line")),
                  want->line);
    ck_assert_msg(json_integer_value(json_object_get(got, "column")) ==
                      want->column,
                  "%s: got column %lld, expected %u", source,
                  (long long)json_integer_value(json_object_get(got, "column")),
                  want->column);
    ck_assert_int_eq(json_object_size(got), 4);
}

static void
check_case(const struct check_case *c)
{
    struct cel_check_result result;
    size_t count = expected_count(c);
    char *dump;

    run_check(c->source, c->env, c->want, &result);
    dump = json_dumps(result.problems, JSON_COMPACT);
    ck_assert_msg(json_array_size(result.problems) == count,
                  "%s: got %zu problems, expected %zu: %s", c->source,
                  json_array_size(result.problems), count, dump);
    free(dump);
    for (size_t i = 0; i < count; i++)
        assert_problem(c->source, json_array_get(result.problems, i),
                       &c->problems[i]);
    json_decref(result.problems);
}

static void
check_cases(const struct check_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++)
        check_case(&cases[i]);
}

/* ---- Expressions without problems. ---- */

static const struct check_case valid_cases[] = {
    {"packages.exists(p, p.type == \"deb\" && p.name == \"openssl\" && "
     "compareVersions(\"deb\", p.version, \"3.0.11-1~deb12u2\") < 0)",
     P,
     "bool",
     {{0}},
     false},
    {"files.filter(f, f.present && f.mode % 8 >= 2).map(f, f.path)",
     P,
     NULL,
     {{0}},
     false},
    {"secrets.exists(s, s.rule in [\"aws-access-key-id\", "
     "\"private-key\"])",
     P,
     "bool",
     {{0}},
     false},
    {"config.env.exists(e, e.name == \"DEBUG\")", P, "bool", {{0}}, false},
    {"has(config.labels.maintainer)", P, "bool", {{0}}, false},
    {"base_image != null && "
     "base_image.name.matchesGlob(\"docker.io/library/*\")",
     P,
     "bool",
     {{0}},
     false},
    {"summary.setuid_files.all(p, p in [\"usr/bin/su\", "
     "\"usr/bin/passwd\"])",
     P,
     "bool",
     {{0}},
     false},
    {"image.registry == \"docker.io\"", P, "bool", {{0}}, false},
    {"config.labels[\"org.opencontainers.image.vendor\"] == \"Acme\"",
     P,
     "bool",
     {{0}},
     false},
    {"os != null && os.id == \"alpine\" && os.version_id.startsWith(\"3.\")",
     P,
     "bool",
     {{0}},
     false},
    {"size(files) > 1000 || summary.files > 1000", P, "bool", {{0}}, false},
    {"layers.exists(l, l.size > 500 * 1024 * 1024)", P, "bool", {{0}}, false},
    {"double(summary.files) / 2.0 > 1.5", P, "bool", {{0}}, false},
    {"config.labels.exists(k, k.startsWith(\"com.example.\"))",
     P,
     "bool",
     {{0}},
     false},
    {"manifest.annotations.all(k, manifest.annotations[k] != \"\")",
     P,
     "bool",
     {{0}},
     false},
    {"platform.architecture in [\"amd64\", \"arm64\"] && "
     "!(platform.os == \"windows\")",
     P,
     "bool",
     {{0}},
     false},
    {"secrets.exists(s, s.layer != null && s.layer == 0)",
     P,
     "bool",
     {{0}},
     false},
    {"packages.exists(p, p.distro != null && p.distro.id == \"debian\")",
     P,
     "bool",
     {{0}},
     false},
    {"packages.exists(p, isVersion(p.type, p.version) && "
     "compareVersions(p.type, p.version, \"2.0.0\") < 0)",
     P,
     "bool",
     {{0}},
     false},
    {"matchesGlob(image.repository, \"library/**\")", P, "bool", {{0}}, false},
    {"config.user.matches(\"^(root|[+-]?0+)?(:.*)?$\")",
     P,
     "bool",
     {{0}},
     false},
    {"uint(summary.files) > 10u && int(\"5\") == 5", P, "bool", {{0}}, false},
    {"-summary.layers < 0 && summary.files < 2.5", P, "bool", {{0}}, false},
    {"files.map(f, f.size).exists(s, s > 1024)", P, "bool", {{0}}, false},
    {"[1, 2] + [3] == [1, 2, 3] && \"a\" + \"b\" == \"ab\"",
     P,
     "bool",
     {{0}},
     false},
    {"{\"a\": 1}[\"a\"] == 1", P, "bool", {{0}}, false},
    {"config.dockerfile.exists(d, d.instruction == \"ADD\" && "
     "d.value.contains(\"http\"))",
     P,
     "bool",
     {{0}},
     false},
    {"config.history.exists(h, !h.empty_layer && "
     "h.created_by.lowerAscii().contains(\"curl\"))",
     P,
     "bool",
     {{0}},
     false},
    {"inspection.status == \"failed\" ? inspection.error.size() > 0 : false",
     P,
     "bool",
     {{0}},
     false},
    {"packages.exists(p, p.type == \"golang\" && p.main_module)",
     P,
     "bool",
     {{0}},
     false},
    {"files.exists_one(f, f.path == \"etc/passwd\")", P, "bool", {{0}}, false},
    {"\"variant\" in platform && \"maintainer\" in config.labels",
     P,
     "bool",
     {{0}},
     false},
    {"kind == \"image\" && document_version == 2 && inspector_version != "
     "\"\"",
     P,
     "bool",
     {{0}},
     false},
    /* The iteration variable shadows the document member of its name. */
    {"packages.exists(config, config.name == \"x\")", P, "bool", {{0}}, false},
    {"files.exists(f, f.path == f.link)", P, "bool", {{0}}, false},
    {"secrets.exists(s, s.layer > 0)", P, "bool", {{0}}, false},
    {"os == null || base_image == null", P, "bool", {{0}}, false},
    {"has(image.tag) && image.tag == \"latest\"", P, "bool", {{0}}, false},
    {"config.entrypoint[0] == \"/bin/sh\" && files[0].path == \"etc\"",
     P,
     "bool",
     {{0}},
     false},
    {"summary.setuid_files.size() > 0u", P, "bool", {{0}}, false},
    {"[1, \"a\"][0] + 1 > 0", P, "bool", {{0}}, false},
    /* The branches have no common type, so the result is dyn. */
    {"1 == 1 ? \"a\" : 2", P, "string", {{0}}, false},
    {"\"layers: \" + string(summary.layers)", P, "string", {{0}}, false},
    {"files.filter(f, f.present).map(f, f.path)[0]", P, "string", {{0}}, false},
    {"[{\"k\": 1}].exists(m, m.k == 1 && m[\"k\"] > 0)",
     P,
     "bool",
     {{0}},
     false},
    {"x.y == 1 && size(z) > 0 && x + 1.0 > y", A, "bool", {{0}}, false},
    {"image.registry == \"docker.io\" && config.usr == \"\"",
     A,
     "bool",
     {{0}},
     false},
};

START_TEST(test_valid_expressions)
{
    check_cases(valid_cases, COUNT(valid_cases));
}
END_TEST

/* ---- Names and fields. ---- */

static const struct check_case name_cases[] = {
    {"source.repository.startsWith('untrusted/')",
     P,
     "bool",
     {{1, 1, E,
       "source is where the image was first pulled from, not the request "
       "being judged; read image.registry or image.repository in a rule "
       "that reads nothing else, or limit the rule with scope"}},
     false},
    {"pakages.size() > 0",
     P,
     "bool",
     {{1, 1, E,
       "undeclared reference to 'pakages'; did you mean "
       "'packages'?"}},
     true},
    {"foo == 1",
     P,
     "bool",
     {{1, 1, E,
       "undeclared reference to 'foo'; use image or a member of "
       "the image document, such as config or packages"}},
     true},
    {"packages.exists(pkg, pgk.name == \"x\")",
     P,
     "bool",
     {{1, 22, E, "undeclared reference to 'pgk'; did you mean 'pkg'?"}},
     true},
    {"confgi.user == \"\"",
     P,
     "bool",
     {{1, 1, E,
       "undeclared reference to 'confgi'; did you mean "
       "'config'?"}},
     true},
    {"config.usr == \"root\"",
     P,
     "bool",
     {{1, 8, E, "config has no field 'usr'; its fields are " CONFIG_FIELDS}},
     true},
    {"has(config.usr)",
     P,
     "bool",
     {{1, 1, E, "config has no field 'usr'; its fields are " CONFIG_FIELDS}},
     false},
    {"config[\"usr\"] == \"\"",
     P,
     "bool",
     {{1, 7, E, "config has no field 'usr'; its fields are " CONFIG_FIELDS}},
     true},
    {"packages.exists(p, p.nmae == \"x\")",
     P,
     "bool",
     {{1, 22, E,
       "packages[] has no field 'nmae'; its fields are " PACKAGE_FIELDS}},
     true},
    {"packages.exists(p,\n  p.nmae == \"x\")",
     P,
     "bool",
     {{2, 5, E,
       "packages[] has no field 'nmae'; its fields are " PACKAGE_FIELDS}},
     true},
    {"image.registy == \"docker.io\"",
     P,
     "bool",
     {{1, 7, E,
       "image has no field 'registy'; its fields are registry, "
       "repository, reference, tag, digest"}},
     false},
    {"base_image.tag == \"\"",
     P,
     "bool",
     {{1, 12, E,
       "base_image has no field 'tag'; its fields are name, "
       "digest, source"}},
     true},
    {"config.env.exists(e, e.key == \"DEBUG\")",
     P,
     "bool",
     {{1, 24, E,
       "config.env[] has no field 'key'; its fields are name, "
       "value"}},
     false},
    {"packages.exists(p, p.distro.name == \"debian\")",
     P,
     "bool",
     {{1, 29, E,
       "packages[].distro has no field 'name'; its fields are id, "
       "version_id"}},
     true},
    {"packages.name == \"x\"",
     P,
     "bool",
     {{1, 10, E,
       "cannot select field 'name' of a list(map(string, dyn)), "
       "because only maps have fields; use a macro such as "
       "list.exists(x, x.name == value) or list.map(x, x.name)"}},
     true},
    {"has(packages.name)",
     P,
     "bool",
     {{1, 1, E,
       "cannot select field 'name' of a list(map(string, dyn)), "
       "because only maps have fields; use a macro such as "
       "list.exists(x, x.name == value) or list.map(x, x.name)"}},
     true},
    {"config.user.name == \"x\"",
     P,
     "bool",
     {{1, 13, E,
       "cannot select field 'name' of a string, because only "
       "maps have fields; select it on a map"}},
     true},
    {"null.x == 1",
     P,
     "bool",
     {{1, 6, E,
       "cannot select field 'x' of null, because only maps have "
       "fields; select it on a map"}},
     true},
    {"files[\"a\"] == null",
     P,
     "bool",
     {{1, 6, E,
       "no matching overload for '_[_]' with (list(map(string, "
       "dyn)), string); index a list with an int"}},
     true},
    {"config.user[0] == \"r\"",
     P,
     "bool",
     {{1, 12, E,
       "no matching overload for '_[_]' with (string, int); only "
       "lists and maps can be indexed"}},
     true},
    {"config.labels[1] == \"x\"",
     P,
     "bool",
     {{1, 14, E,
       "no matching overload for '_[_]' with (map(string, "
       "string), int); index the map with a key of its type"}},
     true},
};

START_TEST(test_names_and_fields)
{
    check_cases(name_cases, COUNT(name_cases));
}
END_TEST

/* ---- Functions. ---- */

static const struct check_case function_cases[] = {
    {"size(1) > 0",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'size' with (int); size takes a "
       "string, a list or a map"}},
     true},
    {"config.user.startsWith(1)",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for 'startsWith' with (string, int); "
       "startsWith takes (string, string)"}},
     true},
    {"matches(config.user, 1)",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'matches' with (string, int); "
       "matches takes (string, string)"}},
     true},
    {"summary.files.matches(\"1\")",
     P,
     "bool",
     {{1, 15, E,
       "no matching overload for 'matches' with (int, string); "
       "matches takes (string, string)"}},
     true},
    {"compareVersions(\"deb\", 1, \"2\") < 0",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'compareVersions' with (string, "
       "int, string); compareVersions takes (string, string, "
       "string)"}},
     false},
    {"matchesGlob(1, \"*\")",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'matchesGlob' with (int, string); "
       "matchesGlob takes (string, string)"}},
     false},
    {"string([1]) == \"\"",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'string' with (list(int)); string "
       "takes a string, a number or a bool"}},
     true},
    {"int(config) == 1",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'int' with (map(string, dyn)); "
       "int takes an int, a uint, a double or a string"}},
     true},
    {"foo(1)",
     P,
     "bool",
     {{1, 1, E,
       "undeclared reference to function 'foo'; the functions "
       "are " ALL_FUNCTIONS}},
     true},
    {"config.user.startswith(\"r\")",
     P,
     "bool",
     {{1, 13, E,
       "undeclared reference to function 'startswith'; did you "
       "mean 'startsWith'?"}},
     true},
    {"packages.exist(p, true)",
     P,
     "bool",
     {{1, 10, E,
       "undeclared reference to function 'exist'; did you mean "
       "'exists'?"},
      {1, 16, E,
       "undeclared reference to 'p'; use image or a member of the "
       "image document, such as config or packages"}},
     true},
    {"config.user.startsWith(\"a\", \"b\")",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for 'startsWith' with 2 arguments and "
       "a receiver; call it as text.startsWith(prefix)"}},
     true},
    {"startsWith(config.user, \"a\")",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'startsWith' with 2 arguments; "
       "call it as text.startsWith(prefix)"}},
     true},
    {"config.user.int() == 0",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for 'int' with 0 arguments and a "
       "receiver; call it as int(value)"}},
     true},
    {"\"a\".lowerAscii(1) == \"a\"",
     P,
     "bool",
     {{1, 5, E,
       "no matching overload for 'lowerAscii' with 1 argument and "
       "a receiver; call it as text.lowerAscii()"}},
     true},
    {"isVersion(\"deb\") && compareVersions(\"deb\", \"1\") < 0",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'isVersion' with 1 argument; call "
       "it as isVersion(scheme, text)"},
      {1, 21, E,
       "no matching overload for 'compareVersions' with 2 "
       "arguments; call it as compareVersions(scheme, a, b)"}},
     false},
    {"packages.exists(p)",
     P,
     "bool",
     {{1, 10, E,
       "no matching overload for 'exists' with 1 argument and a "
       "receiver; call it as list.exists(x, predicate)"}},
     true},
    {"compareVersions(\"debian\", \"1\", \"2\") < 0",
     P,
     "bool",
     {{1, 17, E,
       "unknown version scheme 'debian'; use one of deb, apk, rpm, "
       "semver, pep440, npm, golang or pypi"}},
     false},
    {"packages.exists(p, isVersion(\"maven\", p.version))",
     P,
     "bool",
     {{1, 30, E,
       "unknown version scheme 'maven'; use one of deb, apk, rpm, "
       "semver, pep440, npm, golang or pypi"}},
     false},
    {"size(1) > 0",
     A,
     "bool",
     {{1, 1, E,
       "no matching overload for 'size' with (int); size takes a "
       "string, a list or a map"}},
     true},
};

START_TEST(test_functions)
{
    check_cases(function_cases, COUNT(function_cases));
}
END_TEST

/*
 * Checks matches() with an invalid literal pattern. cel_parse() compiles
 * literal patterns and rejects invalid ones, so the test parses a valid
 * pattern, puts the invalid one in its place and drops the compiled code,
 * as a tree built without the parser would be.
 */
static void
check_invalid_regex(const char *source, enum cel_check_env env,
                    const char *pattern, const struct expected_problem *want)
{
    struct cel_ast *ast = parse(source);
    struct cel_ast *call = ast->kind == CEL_AST_CALL ? ast : ast->children[0];
    struct cel_ast *literal = call->children[1];
    struct cel_check_result result;
    struct pg_error *err = NULL;

    ck_assert_str_eq(call->name, "matches");
    ck_assert_int_eq(literal->kind, CEL_AST_STRING);
    free(literal->string);
    literal->string = strdup(pattern);
    ck_assert_ptr_nonnull(literal->string);
    literal->string_len = strlen(pattern);
    pcre2_code_free(call->regex);
    call->regex = NULL;

    ck_assert_int_eq(cel_check(ast, env, "bool", &result, &err), 0);
    ck_assert_uint_eq(json_array_size(result.problems), 1);
    assert_problem(source, json_array_get(result.problems, 0), want);
    json_decref(result.problems);
    cel_ast_free(ast);
}

START_TEST(test_invalid_regex)
{
    /* The expected PCRE2 messages and offsets are those pcre2test 10.42
     * prints for the same patterns with the utf modifier. */
    static const struct expected_problem paren = {
        1, 21, E,
        "invalid regular expression '(': missing closing parenthesis at "
        "offset 1; fix the pattern (PCRE2 syntax)"};
    static const struct expected_problem quantifier = {
        1, 22, E,
        "invalid regular expression 'a{2,1}': numbers out of order in {} "
        "quantifier at offset 5; fix the pattern (PCRE2 syntax)"};
    static const struct expected_problem bracket = {
        1, 11, E,
        "invalid regular expression '[': missing terminating ] for "
        "character class at offset 1; fix the pattern (PCRE2 syntax)"};
    struct pg_error *err = NULL;
    const char *invalid = "config.user.matches(\"(\")";

    check_invalid_regex("config.user.matches(\"x\")", CEL_ENV_POLICY, "(",
                        &paren);
    check_invalid_regex("matches(config.user, \"abcdef\")", CEL_ENV_POLICY,
                        "a{2,1}", &quantifier);
    check_invalid_regex("x.matches(\"y\")", CEL_ENV_ANY, "[", &bracket);

    /* The parser itself rejects the pattern at the same position. */
    ck_assert_ptr_null(cel_parse(invalid, strlen(invalid), "t", &err));
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(err->message,
                     "t:1:21: invalid regular expression '(': missing "
                     "closing parenthesis at offset 1; fix the pattern "
                     "(PCRE2 syntax)");
    pg_error_free(err);
}
END_TEST

/* ---- Operators. ---- */

static const struct check_case operator_cases[] = {
    {"1 + 1.0 == 2.0",
     P,
     "bool",
     {{1, 3, E,
       "no matching overload for '_+_' with (int, double); CEL does "
       "not convert between int, uint and double, so convert one "
       "side with int(), uint() or double()"}},
     true},
    {"summary.layers + 1u > 0",
     P,
     "bool",
     {{1, 16, E,
       "no matching overload for '_+_' with (int, uint); CEL does "
       "not convert between int, uint and double, so convert one "
       "side with int(), uint() or double()"}},
     true},
    {"\"a\" + 1 == \"a1\"",
     P,
     "bool",
     {{1, 5, E,
       "no matching overload for '_+_' with (string, int); + takes "
       "two numbers of the same type, two strings or two lists"}},
     true},
    {"2.5 % 2.0 == 0.5",
     P,
     "bool",
     {{1, 5, E,
       "no matching overload for '_%_' with (double, double); % "
       "takes two ints or two uints"}},
     true},
    {"config.user - \"a\" == \"\"",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for '_-_' with (string, string); - "
       "takes two numbers of the same type"}},
     true},
    {"true + x",
     A,
     NULL,
     {{1, 6, E,
       "no matching overload for '_+_' with (bool, dyn); + takes two "
       "numbers of the same type, two strings or two lists"}},
     false},
    {"1 + 1.0",
     A,
     NULL,
     {{1, 3, E,
       "no matching overload for '_+_' with (int, double); CEL does "
       "not convert between int, uint and double, so convert one "
       "side with int(), uint() or double()"}},
     true},
    {"-(1u) == 1u",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for '-_' with (uint); - takes an int "
       "or a double"}},
     true},
    {"config.user < 1",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for '_<_' with (string, int); < "
       "compares two numbers, two strings or two bools"}},
     true},
    {"true && size(config.user) > \"1\"",
     P,
     "bool",
     {{1, 27, E,
       "no matching overload for '_>_' with (int, string); > "
       "compares two numbers, two strings or two bools"}},
     true},
    {"config.env >= x", A, "bool", {{0}}, false},
    {"config.env >= 1",
     P,
     "bool",
     {{1, 12, E,
       "no matching overload for '_>=_' with (list(map(string, "
       "dyn)), int); >= compares two numbers, two strings or two "
       "bools"}},
     true},
    {"config.user == 1",
     P,
     "bool",
     {{1, 13, W,
       "comparing a string with an int using == is always "
       "false" NEVER_EQUAL_FIX}},
     false},
    {"summary.files != \"3\"",
     P,
     "bool",
     {{1, 15, W,
       "comparing an int with a string using != is always "
       "true" NEVER_EQUAL_FIX}},
     false},
    {"config.labels.maintainer == 1",
     P,
     "bool",
     {{1, 26, W,
       "comparing a string with an int using == is always "
       "false" NEVER_EQUAL_FIX}},
     true},
    {"os.id == null",
     P,
     "bool",
     {{1, 7, W,
       "comparing a string with null using == is always "
       "false" NEVER_EQUAL_FIX}},
     false},
    {"config.env.map(e, e.name).exists(n, n == 1)",
     P,
     "bool",
     {{1, 39, W,
       "comparing a string with an int using == is always "
       "false" NEVER_EQUAL_FIX}},
     false},
    {"secrets.exists(s, s.line in [\"1\", \"2\"])",
     P,
     "bool",
     {{1, 26, W,
       "looking for an int in a list(string) is always false" NEVER_EQUAL_FIX}},
     false},
    {"config.user in \"root\"",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for '@in' with (string, string); in "
       "needs a list or a map on the right, so use "
       "text.contains(part) to find a substring"}},
     true},
    {"1 in 2",
     P,
     "bool",
     {{1, 3, E,
       "no matching overload for '@in' with (int, int); in needs a "
       "list or a map on the right"}},
     true},
    {"config.user && true",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for '_&&_' with (string, bool); && "
       "takes two bools, so compare each operand that is not a "
       "bool, for example with =="}},
     true},
    {"false || summary.files",
     P,
     "bool",
     {{1, 7, E,
       "no matching overload for '_||_' with (bool, int); || takes "
       "two bools, so compare each operand that is not a bool, for "
       "example with =="}},
     true},
    {"!config.user",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for '!_' with (string); ! takes a "
       "bool"}},
     true},
    {"config.user ? 1 : 2",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for '_?_:_' with (string); the "
       "condition of ?: must be a bool"},
      {1, 13, E,
       "the condition must be a bool, but this expression is an "
       "int" NOT_BOOL_FIX}},
     true},
    {"{config: 1}.size() > 0",
     P,
     "bool",
     {{1, 2, E, "unsupported map key type map(string, dyn); keys are int, "
                "uint, bool or string"}},
     true},
    {"{1.5: \"a\"}.size() > 0",
     P,
     "bool",
     {{1, 2, E,
       "unsupported map key type double; keys are int, uint, bool "
       "or string"}},
     true},
};

START_TEST(test_operators)
{
    check_cases(operator_cases, COUNT(operator_cases));
}
END_TEST

/* ---- Macros, results and several problems. ---- */

static const struct check_case macro_cases[] = {
    {"config.user.exists(c, c == \"r\")",
     P,
     "bool",
     {{1, 13, E,
       "no matching overload for 'exists' with (string); exists() "
       "iterates over a list or a map"}},
     true},
    {"packages.exists(p, p.name)",
     P,
     "bool",
     {{1, 22, E,
       "the predicate of exists() must be a bool, but it is a "
       "string; compare the value, for example with =="}},
     true},
    {"files.filter(f, f.size).size() > 0",
     P,
     "bool",
     {{1, 19, E,
       "the predicate of filter() must be a bool, but it is an "
       "int; compare the value, for example with =="}},
     true},
    {"files.map(f, f.mode, f.path).size() > 0",
     P,
     "bool",
     {{1, 16, E,
       "the predicate of map() must be a bool, but it is an int; "
       "compare the value, for example with =="}},
     true},
    {"config.user",
     P,
     "bool",
     {{1, 8, E,
       "the condition must be a bool, but this expression is a "
       "string" NOT_BOOL_FIX}},
     false},
    {"base_image",
     P,
     "bool",
     {{1, 1, E,
       "the condition must be a bool, but this expression is a "
       "map(string, dyn)" NOT_BOOL_FIX}},
     false},
    {"files.map(f, f.path)",
     P,
     "bool",
     {{1, 7, E,
       "the condition must be a bool, but this expression is a "
       "list(string)" NOT_BOOL_FIX}},
     false},
    {"summary.files",
     P,
     "string",
     {{1, 9, E,
       "the message must be a string, but this expression is an "
       "int; convert it with string()"}},
     false},
    {"config.env",
     P,
     "string",
     {{1, 8, E,
       "the message must be a string, but this expression is a "
       "list(map(string, dyn)); build a string, for example with + "
       "and string()"}},
     false},
    {"size(x)",
     A,
     "bool",
     {{1, 1, E,
       "the condition must be a bool, but this expression is an "
       "int" NOT_BOOL_FIX}},
     false},
    {"foo == 1 && config.usr == \"x\" && size(2) > 0",
     P,
     "bool",
     {{1, 1, E,
       "undeclared reference to 'foo'; use image or a member of "
       "the image document, such as config or packages"},
      {1, 20, E, "config has no field 'usr'; its fields are " CONFIG_FIELDS},
      {1, 34, E,
       "no matching overload for 'size' with (int); size takes a "
       "string, a list or a map"}},
     true},
    {"size(1) > 0 ||\n  config.user == 1 ||\n  config.user.foo()",
     P,
     "bool",
     {{1, 1, E,
       "no matching overload for 'size' with (int); size takes a "
       "string, a list or a map"},
      {2, 15, W,
       "comparing a string with an int using == is always "
       "false" NEVER_EQUAL_FIX},
      {3, 15, E,
       "undeclared reference to function 'foo'; the functions "
       "are " ALL_FUNCTIONS}},
     true},
    /* A problem inside an operand makes the operand dyn, so the operators
     * above it report nothing more. */
    {"size(confg.user) + 1 > \"x\".size()",
     P,
     "bool",
     {{1, 6, E, "undeclared reference to 'confg'; did you mean 'config'?"}},
     true},
};

START_TEST(test_macros_and_results)
{
    check_cases(macro_cases, COUNT(macro_cases));
}
END_TEST

/* ---- The expressions of the policy version 2 design. ---- */

static const struct check_case design_cases[] = {
    {"config.user in [\"\", \"root\", \"0\"] || "
     "config.user.startsWith(\"0:\") || config.user.startsWith(\"root:\")",
     P,
     "bool",
     {{0}},
     false},
    {"\"image runs as \" + config.user", P, "string", {{0}}, false},
    {"packages.exists(p, compareVersions(p.type, p.version, \"2.0.0\") < 0)",
     P,
     "bool",
     {{0}},
     false},
    {"matchesGlob(text, glob) && text.matchesGlob(glob)",
     A,
     "bool",
     {{0}},
     false},
    {"compareVersions(\"semver\", \"v1.2.3\", \"1.2.4+build\") == -1 && "
     "isVersion(\"pep440\", \"1.0rc1\")",
     P,
     "bool",
     {{0}},
     false},
    {"image.registry == \"docker.io\"", P, "bool", {{0}}, false},
};

START_TEST(test_design_expressions)
{
    check_cases(design_cases, COUNT(design_cases));
}
END_TEST

/* ---- reads_image and reads_document. ---- */

static const struct {
    const char *source;
    enum cel_check_env env;
    bool reads_image;
    bool reads_document;
} reads_cases[] = {
    {"image.registry == \"docker.io\"", P, true, false},
    {"config.user == \"\"", P, false, true},
    {"image.repository == source.repository", P, true, true},
    {"true", P, false, false},
    /* Iteration variables are not free, whatever their names. */
    {"packages.exists(image, image.name == \"x\")", P, false, true},
    {"[1].exists(config, config == 1)", P, false, false},
    {"[\"a\"].map(os, os + \"x\").size() > 0", P, false, false},
    /* An undeclared name reads nothing. */
    {"foo == 1", P, false, false},
    {"x == 1", A, false, false},
    {"image.tag == \"x\"", A, true, false},
    {"summary.files > 0 && y", A, false, true},
};

START_TEST(test_reads_flags)
{
    for (size_t i = 0; i < COUNT(reads_cases); i++) {
        struct cel_check_result result;

        run_check(reads_cases[i].source, reads_cases[i].env, NULL, &result);
        ck_assert_msg(result.reads_image == reads_cases[i].reads_image,
                      "%s: reads_image is %d", reads_cases[i].source,
                      result.reads_image);
        ck_assert_msg(result.reads_document == reads_cases[i].reads_document,
                      "%s: reads_document is %d", reads_cases[i].source,
                      result.reads_document);
        json_decref(result.problems);
    }
}
END_TEST

/* ---- The example document of docs/image-document.md. ---- */

/* Reads a file of the source tree whole. Returns a string the caller
 * frees. */
static char *
read_source_file(const char *relative)
{
    const char *srcdir = getenv("PG_SRCDIR");
    char path[4096];
    char *data = malloc(TEST_FILE_MAX + 1);
    FILE *f;
    size_t len;

    snprintf(path, sizeof(path), "%s/%s", srcdir != NULL ? srcdir : ".",
             relative);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_ptr_nonnull(data);
    len = fread(data, 1, TEST_FILE_MAX, f);
    ck_assert(len < TEST_FILE_MAX);
    data[len] = '\0';
    fclose(f);
    return data;
}

/* Returns the JSON block after the heading "## Example" of
 * docs/image-document.md, which the caller releases. */
static json_t *
load_example_document(void)
{
    char *text = read_source_file("docs/image-document.md");
    const char *start = strstr(text, "\n## Example\n");
    const char *end;
    json_error_t error;
    json_t *document;

    ck_assert_ptr_nonnull(start);
    start = strstr(start, "```json\n");
    ck_assert_ptr_nonnull(start);
    start += strlen("```json\n");
    end = strstr(start, "\n```");
    ck_assert_ptr_nonnull(end);
    document = json_loadb(start, (size_t)(end - start), 0, &error);
    ck_assert_msg(document != NULL, "example document: %s", error.text);
    free(text);
    return document;
}

/* The CEL type name that a JSON value of the example must have, or the
 * start of it for lists and maps. */
static const char *
cel_type_of(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "map(";
    case JSON_ARRAY:
        return "list(";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "int";
    case JSON_REAL:
        return "double";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    default:
        return "null_type";
    }
}

/*
 * Checks "PATH + true" for the value at path, which CEL can never add, so
 * the checker must report the one problem whose message names the type
 * of path. That type must be the one the example's JSON value has.
 */
static void
check_path_type(const char *path, const json_t *value)
{
    char source[512], prefix[600];
    struct cel_check_result result;
    const char *message;
    const char *type = cel_type_of(value);

    snprintf(source, sizeof(source), "%s + true", path);
    run_check(source, CEL_ENV_POLICY, NULL, &result);
    ck_assert_msg(json_array_size(result.problems) == 1, "%s: %zu problems",
                  source, json_array_size(result.problems));
    message = json_string_value(
        json_object_get(json_array_get(result.problems, 0), "message"));
    snprintf(prefix, sizeof(prefix), "no matching overload for '_+_' with (%s",
             type);
    ck_assert_msg(strncmp(message, prefix, strlen(prefix)) == 0,
                  "%s: \"%s\" does not name the type %s", source, message,
                  type);
    if (strcmp(type, "map(") != 0 && strcmp(type, "list(") != 0) {
        snprintf(prefix, sizeof(prefix),
                 "no matching overload for '_+_' with (%s, bool)", type);
        ck_assert_msg(strncmp(message, prefix, strlen(prefix)) == 0,
                      "%s: \"%s\" is not about %s", source, message, type);
    }
    json_decref(result.problems);
}

/* Walks every value of the example document, checking the type of its
 * path. Returns the number of paths checked. */
static size_t
walk_document(const char *path, const json_t *value)
{
    char child[512];
    size_t count = 0;

    /* source may not be read at all (test_source_not_readable). */
    if (strcmp(path, "source") == 0)
        return 0;
    if (path[0] != '\0') {
        check_path_type(path, value);
        count++;
    }
    if (json_is_object(value)) {
        const char *name;
        const json_t *member;

        json_object_foreach((json_t *)value, name, member)
        {
            /* Annotation names contain dots, so they are indexed. */
            if (strchr(name, '.') != NULL)
                snprintf(child, sizeof(child), "%s[\"%s\"]", path, name);
            else
                snprintf(child, sizeof(child), "%s%s%s", path,
                         path[0] != '\0' ? "." : "", name);
            count += walk_document(child, member);
        }
    } else if (json_is_array(value)) {
        for (size_t i = 0; i < json_array_size(value); i++) {
            snprintf(child, sizeof(child), "%s[%zu]", path, i);
            count += walk_document(child, json_array_get(value, i));
        }
    }
    return count;
}

START_TEST(test_schema_matches_example_document)
{
    json_t *document = load_example_document();
    size_t count = walk_document("", document);

    /* Every top-level member and the many fields below them. */
    ck_assert_uint_ge(count, 200);
    json_decref(document);
}
END_TEST

/*
 * Evaluates on the example document every case marked fails_at_runtime,
 * whose evaluation reaches the problem there, and expects an error.
 */
static void
check_fails_at_runtime(const struct check_case *cases, size_t count,
                       const json_t *document)
{
    for (size_t i = 0; i < count; i++) {
        struct pg_error *err = NULL;
        struct cel_ast *ast;
        json_t *value;

        if (!cases[i].fails_at_runtime)
            continue;
        ast = parse(cases[i].source);
        value = cel_eval(ast, document, &err);
        ck_assert_msg(value == NULL, "%s: evaluated on the example document",
                      cases[i].source);
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(err->status, 400);
        pg_error_free(err);
        cel_ast_free(ast);
    }
}

START_TEST(test_evaluator_agrees)
{
    json_t *document = load_example_document();

    check_fails_at_runtime(name_cases, COUNT(name_cases), document);
    check_fails_at_runtime(function_cases, COUNT(function_cases), document);
    check_fails_at_runtime(operator_cases, COUNT(operator_cases), document);
    check_fails_at_runtime(macro_cases, COUNT(macro_cases), document);
    json_decref(document);
}
END_TEST

/* ---- The shipped policies. ---- */

static yaml_node_t *
mapping_get(yaml_document_t *doc, yaml_node_t *mapping, const char *key)
{
    if (mapping == NULL || mapping->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(doc, pair->key);

        if (k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, pair->value);
    }
    return NULL;
}

/* Checks the expression of a rule's key, when the rule has it, against
 * want, and expects no problem. Returns the number checked. */
static size_t
check_rule_expression(const char *file, yaml_node_t *node, const char *want)
{
    struct cel_check_result result;
    const char *source;
    char *dump;

    if (node == NULL)
        return 0;
    ck_assert_int_eq(node->type, YAML_SCALAR_NODE);
    source = (const char *)node->data.scalar.value;
    run_check(source, CEL_ENV_POLICY, want, &result);
    dump = json_dumps(result.problems, JSON_COMPACT);
    ck_assert_msg(json_array_size(result.problems) == 0, "%s: %s: %s", file,
                  source, dump);
    free(dump);
    json_decref(result.problems);
    return 1;
}

/* Checks every when and message_expression below node, at any depth, so
 * that both whole policy files and the fragments of docs/policy.md work.
 * Returns the number of expressions checked. */
static size_t
check_yaml_node(const char *file, yaml_document_t *doc, yaml_node_t *node,
                int depth)
{
    size_t count = 0;

    ck_assert_int_lt(depth, 32);
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++)
            count += check_yaml_node(
                file, doc, yaml_document_get_node(doc, *item), depth + 1);
    } else if (node->type == YAML_MAPPING_NODE) {
        count +=
            check_rule_expression(file, mapping_get(doc, node, "when"), "bool");
        count += check_rule_expression(
            file, mapping_get(doc, node, "message_expression"), "string");
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++)
            count += check_yaml_node(
                file, doc, yaml_document_get_node(doc, pair->value), depth + 1);
    }
    return count;
}

/* Checks the expressions of one YAML text. Returns how many it had. */
static size_t
check_yaml_text(const char *file, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    size_t count = 0;

    ck_assert(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    ck_assert_msg(yaml_parser_load(&parser, &doc), "%s: invalid YAML: %.*s",
                  file, (int)len, text);
    root = yaml_document_get_root_node(&doc);
    if (root != NULL)
        count = check_yaml_node(file, &doc, root, 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return count;
}

static size_t
check_policy_file(const char *relative)
{
    char *text = read_source_file(relative);
    size_t count = check_yaml_text(relative, text, strlen(text));

    free(text);
    return count;
}

START_TEST(test_shipped_policies)
{
    const char *srcdir = getenv("PG_SRCDIR");
    char path[4096], relative[1024];
    struct dirent *entry;
    size_t count = check_policy_file("config/policy/default.yaml");
    DIR *dir;

    snprintf(path, sizeof(path), "%s/config/policy/examples",
             srcdir != NULL ? srcdir : ".");
    dir = opendir(path);
    ck_assert_msg(dir != NULL, "cannot open %s", path);
    while ((entry = readdir(dir)) != NULL) {
        FILE *f;

        if (entry->d_name[0] == '.')
            continue;
        snprintf(relative, sizeof(relative),
                 "config/policy/examples/%s/policy.yaml", entry->d_name);
        snprintf(path, sizeof(path), "%s/%s", srcdir != NULL ? srcdir : ".",
                 relative);
        f = fopen(path, "rb");
        if (f == NULL)
            continue;
        fclose(f);
        count += check_policy_file(relative);
    }
    closedir(dir);
    /* The default policy alone has three rules with five expressions. */
    ck_assert_uint_ge(count, 5);
}
END_TEST

/* Checks the rules in the yaml blocks of docs/policy.md, and the calls in
 * its example tables, rows written "| `EXPRESSION` | `RESULT` |". */
START_TEST(test_documented_expressions)
{
    char *text = read_source_file("docs/policy.md");
    const char *block = text;
    size_t rules = 0, rows = 0;

    while ((block = strstr(block, "```yaml\n")) != NULL) {
        const char *end;

        block += strlen("```yaml\n");
        end = strstr(block, "\n```");
        ck_assert_ptr_nonnull(end);
        rules +=
            check_yaml_text("docs/policy.md", block, (size_t)(end - block) + 1);
        block = end;
    }
    for (const char *line = text; line != NULL; line = strchr(line, '\n')) {
        struct cel_check_result result;
        char source[1024];
        const char *end;

        line++;
        if (strncmp(line, "| `", 3) != 0)
            continue;
        end = strstr(line + 3, "` | `");
        if (end == NULL || memchr(line, '\n', (size_t)(end - line)) != NULL)
            continue;
        snprintf(source, sizeof(source), "%.*s", (int)(end - line - 3),
                 line + 3);
        /* Only calls: the first column of the glob table has bare globs. */
        if (strchr(source, '(') == NULL)
            continue;
        run_check(source, CEL_ENV_ANY, NULL, &result);
        ck_assert_msg(json_array_size(result.problems) == 0,
                      "docs/policy.md: %s has problems", source);
        json_decref(result.problems);
        rows++;
    }
    ck_assert_uint_ge(rules, 5);
    ck_assert_uint_ge(rows, 10);
    free(text);
}
END_TEST

/* ---- Limits. ---- */

START_TEST(test_problem_limit)
{
    char source[4096] = "";
    size_t len = 0;
    struct cel_check_result result;

    /* A list of 150 calls of size(1), each one problem. */
    len += (size_t)snprintf(source + len, sizeof(source) - len, "[");
    for (int i = 0; i < 150; i++)
        len += (size_t)snprintf(source + len, sizeof(source) - len, "%ssize(1)",
                                i > 0 ? ", " : "");
    snprintf(source + len, sizeof(source) - len, "]");
    run_check(source, CEL_ENV_POLICY, NULL, &result);
    ck_assert_uint_eq(json_array_size(result.problems), 100);
    /* The first problems are kept, in source order. */
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(result.problems, 0), "column")),
                     2);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(result.problems, 1), "column")),
                     11);
    json_decref(result.problems);
}
END_TEST

static Suite *
cel_check_suite(void)
{
    Suite *suite = suite_create("cel_check");
    TCase *tc = tcase_create("check");

    tcase_add_test(tc, test_valid_expressions);
    tcase_add_test(tc, test_names_and_fields);
    tcase_add_test(tc, test_functions);
    tcase_add_test(tc, test_invalid_regex);
    tcase_add_test(tc, test_operators);
    tcase_add_test(tc, test_macros_and_results);
    tcase_add_test(tc, test_design_expressions);
    tcase_add_test(tc, test_reads_flags);
    tcase_add_test(tc, test_schema_matches_example_document);
    tcase_add_test(tc, test_evaluator_agrees);
    tcase_add_test(tc, test_shipped_policies);
    tcase_add_test(tc, test_documented_expressions);
    tcase_add_test(tc, test_problem_limit);
    suite_add_tcase(suite, tc);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(cel_check_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
