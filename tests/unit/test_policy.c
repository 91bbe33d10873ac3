/*
 * Unit tests for the policy module. They cover loading version 2 policy
 * files and directories with their errors and warnings, the policy digest,
 * the findings of rules written as CEL conditions, and the verdicts that
 * scope and exceptions make of those findings for one request.
 */
#include <check.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config/error.h"
#include "config/limits.h"
#include "inspector/inspector.h"
#include "policy/policy.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* One expected entry of a findings or verdict list. action is NULL for
 * verdict lists, which have none; reason and expires are set only for
 * "excepted". */
struct expected {
    const char *rule;
    const char *action;
    const char *message;
    const char *reason;
    const char *expires;
};

static const char *
source_dir(void)
{
    const char *dir = getenv("PG_SRCDIR");

    return dir != NULL && dir[0] != '\0' ? dir : ".";
}

/* Returns the time_t of a UTC calendar time, computed with timegm so the
 * expected instants do not depend on the policy module's date parser. */
static time_t
utc(int year, int month, int day, int hour, int minute, int second)
{
    struct tm tm = {
        .tm_year = year - 1900,
        .tm_mon = month - 1,
        .tm_mday = day,
        .tm_hour = hour,
        .tm_min = minute,
        .tm_sec = second,
    };

    return timegm(&tm);
}

static struct policy *
parse_named_ok(const char *name, const char *yaml)
{
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse(name, yaml, strlen(yaml), &err);
    ck_assert_msg(policy != NULL, "policy failed to load: %s",
                  err != NULL ? err->message : "(no error)");
    ck_assert_ptr_null(err);
    return policy;
}

static struct policy *
parse_ok(const char *yaml)
{
    return parse_named_ok("test.yaml", yaml);
}

static struct policy *
load_ok(const char *path)
{
    struct pg_error *err = NULL;
    struct policy *policy = policy_load(path, &err);

    ck_assert_msg(policy != NULL, "%s failed to load: %s", path,
                  err != NULL ? err->message : "(no error)");
    ck_assert_ptr_null(err);
    return policy;
}

/* Checks that err is a configuration error and returns its message, which
 * the caller frees. */
static char *
take_config_error(struct pg_error *err)
{
    char *message;

    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(err->status, 500);
    ck_assert_str_eq(err->code, PG_ERR_CONFIG);
    message = strdup(err->message);
    ck_assert_ptr_nonnull(message);
    pg_error_free(err);
    return message;
}

/* Parses yaml as "test.yaml", expects it to fail and returns the message,
 * which the caller frees. */
static char *
parse_error(const char *yaml)
{
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse("test.yaml", yaml, strlen(yaml), &err);
    ck_assert_ptr_null(policy);
    return take_config_error(err);
}

static char *
load_error(const char *path)
{
    struct pg_error *err = NULL;
    struct policy *policy = policy_load(path, &err);

    ck_assert_ptr_null(policy);
    return take_config_error(err);
}

static void
assert_starts_with(const char *text, const char *prefix)
{
    ck_assert_msg(strncmp(text, prefix, strlen(prefix)) == 0,
                  "\"%s\" does not start with \"%s\"", text, prefix);
}

static void
assert_contains(const char *text, const char *part)
{
    ck_assert_msg(strstr(text, part) != NULL, "\"%s\" does not contain \"%s\"",
                  text, part);
}

static void
assert_ends_with(const char *text, const char *suffix)
{
    size_t text_len = strlen(text);
    size_t suffix_len = strlen(suffix);

    ck_assert_msg(text_len >= suffix_len &&
                      strcmp(text + text_len - suffix_len, suffix) == 0,
                  "\"%s\" does not end with \"%s\"", text, suffix);
}

static json_t *
json(const char *text)
{
    json_error_t error;
    json_t *value = json_loads(text, 0, &error);

    ck_assert_msg(value != NULL, "invalid test JSON: %s", error.text);
    return value;
}

/*
 * The document of an inspected image with nothing in it and a non-root
 * user, with every member docs/image-document.md lists. Tests replace
 * top-level members with image_document().
 */
static const char empty_document[] =
    "{\"document_version\": 2, \"inspector_version\": \"3\","
    " \"kind\": \"image\","
    " \"source\": {\"registry\": \"\", \"repository\": \"\","
    "  \"reference\": \"\"},"
    " \"manifest\": {\"digest\": \"sha256:m\","
    "  \"media_type\": \"application/vnd.oci.image.manifest.v1+json\","
    "  \"config_digest\": \"sha256:c\","
    "  \"config_media_type\": \"application/vnd.oci.image.config.v1+json\","
    "  \"annotations\": {}},"
    " \"inspection\": {\"status\": \"ok\", \"notes\": []},"
    " \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"},"
    " \"config\": {\"user\": \"app\", \"env\": [], \"exposed_ports\": [],"
    "  \"volumes\": [], \"labels\": {}, \"entrypoint\": [], \"cmd\": [],"
    "  \"working_dir\": \"\", \"created\": \"\", \"history\": [],"
    "  \"dockerfile\": []},"
    " \"rootfs\": {\"diff_ids\": []}, \"layers\": [], \"files\": [],"
    " \"os\": null, \"packages\": [], \"secrets\": [],"
    " \"summary\": {\"layers\": 0, \"files\": 0, \"present_files\": 0,"
    "  \"setuid_files\": [], \"world_writable\": [], \"packages\": 0,"
    "  \"secrets\": 0},"
    " \"base_image\": null}";

/* Returns the empty document with the top-level members of the JSON object
 * members replaced; the caller releases it. */
static json_t *
image_document(const char *members)
{
    json_t *document = json(empty_document);
    json_t *update = json(members);

    ck_assert_int_eq(json_object_update(document, update), 0);
    json_decref(update);
    return document;
}

static json_t *
evaluate_ok(const struct policy *policy, const json_t *document)
{
    struct pg_error *err = NULL;
    json_t *findings = policy_evaluate(policy, document, &err);

    ck_assert_msg(findings != NULL, "evaluation failed: %s",
                  err != NULL ? err->message : "(no error)");
    ck_assert_ptr_null(err);
    return findings;
}

/* Evaluates the empty document with members replaced. */
static json_t *
evaluate_members(const struct policy *policy, const char *members)
{
    json_t *document = image_document(members);
    json_t *findings = evaluate_ok(policy, document);

    json_decref(document);
    return findings;
}

static const char *
string_member(const json_t *object, const char *key)
{
    const json_t *value = json_object_get(object, key);

    ck_assert_msg(json_is_string(value), "member \"%s\" is not a string", key);
    return json_string_value(value);
}

/* Compares a list of findings or verdict entries with expected. */
static void
check_list(const json_t *list, const struct expected *expected, size_t count)
{
    ck_assert_msg(json_is_array(list), "not an array");
    ck_assert_uint_eq(json_array_size(list), count);
    for (size_t i = 0; i < count; i++) {
        const json_t *entry = json_array_get(list, i);
        const struct expected *e = &expected[i];
        size_t members = 2;

        ck_assert_str_eq(string_member(entry, "rule"), e->rule);
        ck_assert_str_eq(string_member(entry, "message"), e->message);
        if (e->action != NULL) {
            ck_assert_str_eq(string_member(entry, "action"), e->action);
            members++;
        }
        if (e->reason != NULL) {
            ck_assert_str_eq(string_member(entry, "reason"), e->reason);
            ck_assert_str_eq(string_member(entry, "expires"), e->expires);
            members += 2;
        }
        ck_assert_uint_eq(json_object_size(entry), members);
    }
}

/* Checks the result of policy_evaluate and releases it. */
static void
check_findings(json_t *result, const struct policy *policy, const char *kind,
               const struct expected *findings, size_t count)
{
    ck_assert_ptr_nonnull(result);
    ck_assert_uint_eq(json_object_size(result), 3);
    ck_assert_str_eq(string_member(result, "policy_digest"),
                     policy_digest(policy));
    ck_assert_str_eq(string_member(result, "kind"), kind);
    check_list(json_object_get(result, "findings"), findings, count);
    json_decref(result);
}

/* The expected lists of one verdict. */
struct expected_verdict {
    const char *decision;
    const struct expected *denied;
    size_t n_denied;
    const struct expected *warnings;
    size_t n_warnings;
    const struct expected *excepted;
    size_t n_excepted;
};

/* Checks a verdict and releases it. */
static void
check_verdict(json_t *verdict, const struct policy *policy, const char *kind,
              const struct expected_verdict *expected)
{
    ck_assert_ptr_nonnull(verdict);
    ck_assert_uint_eq(json_object_size(verdict), 6);
    ck_assert_str_eq(string_member(verdict, "decision"), expected->decision);
    ck_assert_str_eq(string_member(verdict, "policy_digest"),
                     policy_digest(policy));
    ck_assert_str_eq(string_member(verdict, "kind"), kind);
    check_list(json_object_get(verdict, "denied"), expected->denied,
               expected->n_denied);
    check_list(json_object_get(verdict, "warnings"), expected->warnings,
               expected->n_warnings);
    check_list(json_object_get(verdict, "excepted"), expected->excepted,
               expected->n_excepted);
    json_decref(verdict);
}

#define LIST(array) array, COUNT(array)
#define NONE NULL, 0

/*
 * Temporary directories for policies of several files.
 */

static char *
make_temp_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *path = NULL;

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    ck_assert_int_gt(asprintf(&path, "%s/pg-policy-XXXXXX", tmp), 0);
    ck_assert_ptr_nonnull(mkdtemp(path));
    return path;
}

/* Writes text to dir/name and returns the path, which the caller frees. */
static char *
write_file(const char *dir, const char *name, const char *text)
{
    char *path = NULL;
    FILE *file;

    ck_assert_int_gt(asprintf(&path, "%s/%s", dir, name), 0);
    file = fopen(path, "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), file), strlen(text));
    ck_assert_int_eq(fclose(file), 0);
    return path;
}

static void
write_file_only(const char *dir, const char *name, const char *text)
{
    free(write_file(dir, name, text));
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything in it, and frees the path. */
static void
remove_temp_dir(char *dir)
{
    ck_assert_int_eq(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

/*
 * The rule every test starts from: lines 3 to 6 of the file. The name is
 * at 3:11 (the rule's mapping at 3:5), "when" at 4:11, "action" at 5:13
 * and "message" at 6:14.
 */
#define HEAD "version: 2\nrules:\n"
#define RULE_R1                                                                \
    "  - name: r1\n"                                                           \
    "    when: config.user == \"root\"\n"                                      \
    "    action: deny\n"                                                       \
    "    message: m\n"

/*
 * Load errors. Each case gives the position the message must start with
 * and parts it must contain: the key or value at fault and the fix.
 */
struct error_case {
    const char *yaml;
    const char *position; /* "test.yaml:LINE:COLUMN: " */
    const char *parts[3];
};

static const struct error_case error_cases[] = {
    /* The file as a whole and the version. */
    {"- a\n", "test.yaml:1:1: ", {"mapping"}},
    {"", "test.yaml:1:1: ", {"\"version\""}},
    {"rules: []\n", "test.yaml:1:1: ", {"\"version\""}},
    {"version: 3\nrules: []\n", "test.yaml:1:10: ", {"3"}},
    {"version: '2'\nrules: []\n", "test.yaml:1:10: ", {"version", "integer"}},
    {"version: 2\nrulez: []\n", "test.yaml:2:1: ", {"\"rulez\""}},
    {"version: 2\non_inspection_failure: block\n",
     "test.yaml:2:24: ",
     {"block", "deny", "allow"}},
    {"version: 2\non_inspection_failure: [deny]\n",
     "test.yaml:2:24: ",
     {"on_inspection_failure"}},
    {"version: 2\nrules: {a: 1}\n", "test.yaml:2:8: ", {"rules", "sequence"}},
    {"version: 2\nexceptions: {a: 1}\n",
     "test.yaml:2:13: ",
     {"exceptions", "sequence"}},

    /* Rule names. */
    {HEAD "  - when: 'true'\n    action: deny\n    message: m\n",
     "test.yaml:3:5: ",
     {"\"name\""}},
    {HEAD "  - name: 12\n    when: 'true'\n    action: deny\n    message: m\n",
     "test.yaml:3:11: ",
     {"name", "string"}},
    {HEAD "  - name: Bad_Name\n    when: 'true'\n    action: deny\n"
          "    message: m\n",
     "test.yaml:3:11: ",
     {"Bad_Name"}},
    {HEAD "  - name: -x\n    when: 'true'\n    action: deny\n    message: m\n",
     "test.yaml:3:11: ",
     {"-x"}},
    {HEAD "  - name: a.b\n    when: 'true'\n    action: deny\n    message: m\n",
     "test.yaml:3:11: ",
     {"a.b"}},
    {HEAD "  - name: ''\n    when: 'true'\n    action: deny\n    message: m\n",
     "test.yaml:3:11: ",
     {"name"}},
    {HEAD "  - name: "
          "a123456789012345678901234567890123456789012345678901234567890123\n"
          "    when: 'true'\n    action: deny\n    message: m\n",
     "test.yaml:3:11: ",
     {"a123456789012345678901234567890123456789012345678901234567890123"}},
    {HEAD RULE_R1 RULE_R1, "test.yaml:7:11: ", {"\"r1\"", "test.yaml:3"}},

    /* The other keys of a rule. */
    {HEAD "  - name: r1\n    action: deny\n    message: m\n",
     "test.yaml:3:5: ",
     {"\"when\"", "\"r1\""}},
    {HEAD "  - name: r1\n    when: [a]\n    action: deny\n    message: m\n",
     "test.yaml:4:11: ",
     {"when", "string"}},
    {HEAD "  - name: r1\n    when: ''\n    action: deny\n    message: m\n",
     "test.yaml:4:11: ",
     {"when"}},
    {HEAD "  - name: r1\n    when: 'true'\n    message: m\n",
     "test.yaml:3:5: ",
     {"\"action\"", "deny", "warn"}},
    {HEAD "  - name: r1\n    when: 'true'\n    action: block\n    message: m\n",
     "test.yaml:5:13: ",
     {"block", "deny", "warn"}},
    {HEAD "  - name: r1\n    when: 'true'\n    action: allow\n    message: m\n",
     "test.yaml:5:13: ",
     {"allow"}},
    {HEAD "  - name: r1\n    when: 'true'\n    action: deny\n",
     "test.yaml:3:5: ",
     {"\"message\""}},
    {HEAD
     "  - name: r1\n    when: 'true'\n    action: deny\n    message: [m]\n",
     "test.yaml:6:14: ",
     {"message", "string"}},
    {HEAD RULE_R1 "    description: 12\n",
     "test.yaml:7:18: ",
     {"description", "string"}},
    {HEAD RULE_R1 "    whne: 'true'\n", "test.yaml:7:5: ", {"\"whne\"", "r1"}},
    /* A version 1 key gets one problem, which names the new form. */
    {HEAD RULE_R1 "    kind: deny_files\n",
     "test.yaml:7:5: ",
     {"kind", "when"}},

    /* Scope. */
    {HEAD RULE_R1 "    scope: [docker.io]\n",
     "test.yaml:7:12: ",
     {"scope", "mapping"}},
    {HEAD RULE_R1 "    scope: {registry: [docker.io]}\n",
     "test.yaml:7:13: ",
     {"\"registry\""}},
    {HEAD RULE_R1 "    scope: {registries: docker.io}\n",
     "test.yaml:7:25: ",
     {"registries", "sequence"}},
    {HEAD RULE_R1 "    scope: {registries: [1]}\n",
     "test.yaml:7:26: ",
     {"registries", "string"}},
    {HEAD RULE_R1 "    scope:\n      repositories: ['library/[abc']\n",
     "test.yaml:8:22: ",
     {"library/[abc"}},
    {HEAD RULE_R1 "    scope:\n      tags: ['v1', 'x\\']\n",
     "test.yaml:8:20: ",
     {"x\\"}},

    /* Exceptions. Lines 7 and on follow the rule. */
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    rules: [r2]\n    reason: r\n    expires: 2030-01-01\n",
     "test.yaml:9:13: ",
     {"\"r2\""}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    rules: [r1]\n    expires: 2030-01-01\n",
     "test.yaml:8:5: ",
     {"\"reason\""}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    rules: [r1]\n    reason: r\n",
     "test.yaml:8:5: ",
     {"\"expires\""}},
    {HEAD RULE_R1 "exceptions:\n  - rules: [r1]\n    reason: r\n"
                  "    expires: 2030-01-01\n",
     "test.yaml:8:5: ",
     {"\"images\""}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    reason: r\n    expires: 2030-01-01\n",
     "test.yaml:8:5: ",
     {"\"rules\""}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    rules: [r1]\n    reason: r\n    expires: 2030-02-30\n",
     "test.yaml:11:14: ",
     {"2030-02-30", "2027-03-31"}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    rules: [r1]\n    reason: r\n    expires: next year\n",
     "test.yaml:11:14: ",
     {"next year"}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    rules: [r1]\n    reason: ''\n    expires: 2030-01-01\n",
     "test.yaml:10:13: ",
     {"reason"}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/[x']\n"
                  "    rules: [r1]\n    reason: r\n    expires: 2030-01-01\n",
     "test.yaml:8:14: ",
     {"docker.io/[x"}},
    {HEAD RULE_R1 "exceptions:\n  - images: ['docker.io/x:*']\n"
                  "    rules: [r1]\n    reason: r\n    expires: 2030-01-01\n"
                  "    ticket: SEC-1\n",
     "test.yaml:12:5: ",
     {"\"ticket\""}},
};

START_TEST(load_error_case)
{
    const struct error_case *c = &error_cases[_i];
    char *message = parse_error(c->yaml);

    assert_starts_with(message, c->position);
    for (size_t i = 0; i < COUNT(c->parts) && c->parts[i] != NULL; i++)
        assert_contains(message, c->parts[i]);

    /* Every message states what to do after the problem, and a policy
     * with one problem gets no count of further ones. */
    assert_contains(message + strlen(c->position), "; ");
    ck_assert_ptr_null(strstr(message, "more problem"));
    free(message);
}
END_TEST

/* A rule that is not a mapping: the problem lists the keys a rule has. */
START_TEST(load_rule_not_mapping)
{
    char *message = parse_error(HEAD "  - r1\n");

    assert_starts_with(message, "test.yaml:3:5: ");
    assert_contains(message, "mapping");
    assert_contains(message, "when");
    free(message);
}
END_TEST

/* A version 1 policy is rejected with a pointer to the new form. */
START_TEST(load_version_1)
{
    char *message = parse_error("version: 1\n"
                                "rules:\n"
                                "  - name: root-user\n"
                                "    kind: require_non_root\n"
                                "    message: m\n");

    assert_starts_with(message, "test.yaml:1:10: ");
    assert_contains(message, "version 1");
    assert_contains(message, "when");
    assert_contains(message, "docs/policy.md");
    free(message);
}
END_TEST

/* A rule name of the maximum length, 63 characters, loads. */
START_TEST(load_name_max_length)
{
    struct policy *policy = parse_ok(
        HEAD "  - name: "
             "a12345678901234567890123456789012345678901234567890123456789012\n"
             "    when: 'true'\n    action: warn\n    message: m\n");

    policy_free(policy);
}
END_TEST

/* A policy with no rules loads and finds nothing. */
START_TEST(load_no_rules)
{
    struct policy *policy = parse_ok("version: 2\n");
    json_t *findings =
        evaluate_members(policy, "{\"config\": {\"user\": \"\"}}");

    check_findings(findings, policy, "image", NONE);
    policy_free(policy);
}
END_TEST

#define MISSING_POLICY "/nonexistent/policy.yaml"

START_TEST(load_missing_file)
{
    char *message = load_error(MISSING_POLICY);

    assert_starts_with(message, MISSING_POLICY ": ");
    free(message);
}
END_TEST

/* A YAML syntax error keeps the position that the YAML reader found. */
START_TEST(load_yaml_error)
{
    char *message = parse_error("version: 2\nrules: [\n");

    assert_starts_with(message, "test.yaml:3:1: ");
    free(message);
}
END_TEST

/* Fills a buffer of size bytes with a valid policy padded by a comment. */
static char *
padded_policy(size_t size)
{
    static const char head[] = "version: 2\n#";
    char *text = malloc(size);

    ck_assert_ptr_nonnull(text);
    memset(text, 'x', size);
    memcpy(text, head, strlen(head));
    text[size - 1] = '\n';
    return text;
}

START_TEST(load_file_max_size)
{
    char *text = padded_policy(PG_CONFIG_FILE_MAX_BYTES);
    struct pg_error *err = NULL;
    struct policy *policy;

    policy = policy_parse("test.yaml", text, PG_CONFIG_FILE_MAX_BYTES, &err);
    ck_assert_ptr_nonnull(policy);
    ck_assert_ptr_null(err);
    policy_free(policy);
    free(text);
}
END_TEST

START_TEST(load_file_over_max_size)
{
    char *text = padded_policy(PG_CONFIG_FILE_MAX_BYTES + 1);
    struct pg_error *err = NULL;
    struct policy *policy;
    char *message;

    policy =
        policy_parse("test.yaml", text, PG_CONFIG_FILE_MAX_BYTES + 1, &err);
    ck_assert_ptr_null(policy);
    message = take_config_error(err);
    assert_starts_with(message, "test.yaml");
    free(message);
    free(text);
}
END_TEST

/* Three problems: the message gives the first and counts the others. */
START_TEST(load_several_problems)
{
    char *message = parse_error(HEAD "  - name: Bad\n"
                                     "    when: 'true'\n"
                                     "    action: block\n"
                                     "    message: m\n"
                                     "    colour: red\n");

    assert_starts_with(message, "test.yaml:3:11: ");
    assert_contains(message, "Bad");
    assert_ends_with(message, " (and 2 more problems; run pullgate policy lint "
                              "test.yaml)");
    free(message);
}
END_TEST

/* The count names the path that policy_load was given. */
START_TEST(load_several_problems_path)
{
    char *dir = make_temp_dir();
    char *path =
        write_file(dir, "p.yaml", "version: 2\nrulez: []\nexceptionz: []\n");
    char *message = load_error(path);
    char *prefix = NULL;
    char *suffix = NULL;

    ck_assert_int_gt(asprintf(&prefix, "%s:2:1: ", path), 0);
    ck_assert_int_gt(asprintf(&suffix,
                              " (and 1 more problem; run pullgate policy "
                              "lint %s)",
                              path),
                     0);
    assert_starts_with(message, prefix);
    assert_ends_with(message, suffix);
    free(suffix);
    free(prefix);
    free(message);
    free(path);
    remove_temp_dir(dir);
}
END_TEST

/*
 * CEL in "when": errors point at the file's line and column of the
 * character at fault, whatever the YAML scalar style. In
 * "config.user + * 1" that is the '*', column 15 of the expression.
 */
struct cel_position_case {
    const char *when_line; /* line 4 of the file and on */
    const char *position;
};

static const struct cel_position_case cel_position_cases[] = {
    /* Plain: the scalar starts at column 11. */
    {"    when: config.user + * 1\n", "test.yaml:4:25: "},
    /* Quoted: the text starts after the quote at column 11. */
    {"    when: 'config.user + * 1'\n", "test.yaml:4:26: "},
    {"    when: \"config.user + * 1\"\n", "test.yaml:4:26: "},
    /* Block: line 2 of the expression is line 6 of the file. Its text
     * starts after 6 spaces of block indentation and 2 of its own. */
    {"    when: |\n"
     "      config.user == \"root\" ||\n"
     "        config.user + * 1\n",
     "test.yaml:6:23: "},
    /* Folded, after a comment line and a blank line: line 1 of the
     * expression is line 7 of the file. */
    {"    # The condition.\n"
     "\n"
     "    when: >-\n"
     "      config.user + * 1\n",
     "test.yaml:7:21: "},
    /* Each '' in a single-quoted scalar is one quote in the expression,
     * so the '*' is two columns further right than without escapes. */
    {"    when: 'config.user == ''x'' + * 1'\n", "test.yaml:4:35: "},
    /* The same with \" in a double-quoted scalar. */
    {"    when: \"config.user == \\\"x\\\" + * 1\"\n", "test.yaml:4:35: "},
    /* An escaped line break in a double-quoted scalar joins the lines
     * with nothing; the '*' is on the second line after its indentation. */
    {"    when: \"config.user + \\\n"
     "         * 1\"\n",
     "test.yaml:5:10: "},
    /* A blank line in a quoted scalar is a line break of the expression,
     * and the line break before it is dropped. */
    {"    when: \"config.user +\n"
     "\n"
     "         * 1\"\n",
     "test.yaml:6:10: "},
    /* A plain scalar's trailing blanks are trimmed before its line break
     * folds into one space. */
    {"    when: config.user +   \n"
     "         * 1\n",
     "test.yaml:5:10: "},
    /* A folded block joins its lines with spaces. */
    {"    when: >\n"
     "      config.user +\n"
     "      * 1\n",
     "test.yaml:6:7: "},
};

START_TEST(load_cel_position)
{
    const struct cel_position_case *c = &cel_position_cases[_i];
    char *yaml = NULL;
    char *message;

    ck_assert_int_gt(asprintf(&yaml,
                              HEAD "  - name: r1\n%s"
                                   "    action: deny\n"
                                   "    message: m\n",
                              c->when_line),
                     0);
    message = parse_error(yaml);
    assert_starts_with(message, c->position);
    assert_contains(message, "expected an expression, found '*'");
    assert_contains(message, "r1");
    free(message);
    free(yaml);
}
END_TEST

/* Errors the checker finds before any image is evaluated. */
static const struct error_case check_cases[] = {
    /* A rule may not read both the request and the document. */
    {HEAD "  - name: r1\n"
          "    when: image.registry == \"docker.io\" && config.user == \"\"\n"
          "    action: deny\n    message: m\n",
     "test.yaml:4:11: ",
     {"r1", "image", "scope"}},
    /* An unknown function: the call starts at column 1. */
    {HEAD "  - name: r1\n"
          "    when: frobnicate(config.user)\n"
          "    action: deny\n    message: m\n",
     "test.yaml:4:11: ",
     {"frobnicate"}},
    /* An unknown document field: "usr" starts at column 8. */
    {HEAD "  - name: r1\n"
          "    when: config.usr == \"root\"\n"
          "    action: deny\n    message: m\n",
     "test.yaml:4:18: ",
     {"usr"}},
    /* An unknown variable. */
    {HEAD "  - name: r1\n"
          "    when: request.user == \"root\"\n"
          "    action: deny\n    message: m\n",
     "test.yaml:4:11: ",
     {"request"}},
    /* A condition that can only give an int. */
    {HEAD "  - name: r1\n"
          "    when: size(config.env)\n"
          "    action: deny\n    message: m\n",
     "test.yaml:4:11: ",
     {"bool"}},
    /* A message expression that can only give an int. */
    {HEAD RULE_R1 "    message_expression: size(config.env)\n",
     "test.yaml:7:25: ",
     {"string"}},
    /* A message expression that does not parse: ')' at column 6. */
    {HEAD RULE_R1 "    message_expression: '\"a\" +)'\n",
     "test.yaml:7:31: ",
     {"r1"}},
};

START_TEST(load_check_error)
{
    const struct error_case *c = &check_cases[_i];
    char *message = parse_error(c->yaml);

    assert_starts_with(message, c->position);
    for (size_t i = 0; i < COUNT(c->parts) && c->parts[i] != NULL; i++)
        assert_contains(message, c->parts[i]);
    free(message);
}
END_TEST

/*
 * Warnings: an expired exception does not stop loading.
 */

START_TEST(load_expired_exception_warns)
{
    struct policy *policy = parse_ok(HEAD RULE_R1 "exceptions:\n"
                                                  "  - images: ['x.io/y:*']\n"
                                                  "    rules: [r1]\n"
                                                  "    reason: old ticket\n"
                                                  "    expires: 2020-01-31\n");
    const json_t *warnings = policy_warnings(policy);
    const json_t *warning;

    ck_assert_int_eq(json_is_array(warnings), 1);
    ck_assert_uint_eq(json_array_size(warnings), 1);
    warning = json_array_get(warnings, 0);
    ck_assert_uint_eq(json_object_size(warning), 5);
    assert_ends_with(string_member(warning, "file"), "test.yaml");
    ck_assert_int_eq(json_integer_value(json_object_get(warning, "line")), 11);
    ck_assert_int_eq(json_integer_value(json_object_get(warning, "column")),
                     14);
    ck_assert_str_eq(string_member(warning, "severity"), "warning");
    assert_contains(string_member(warning, "message"), "2020-01-31");
    policy_free(policy);
}
END_TEST

START_TEST(load_no_warnings)
{
    struct policy *policy = parse_ok(HEAD RULE_R1 "exceptions:\n"
                                                  "  - images: ['x.io/y:*']\n"
                                                  "    rules: [r1]\n"
                                                  "    reason: new ticket\n"
                                                  "    expires: 2999-12-31\n");
    const json_t *warnings = policy_warnings(policy);

    ck_assert_int_eq(json_is_array(warnings), 1);
    ck_assert_uint_eq(json_array_size(warnings), 0);
    policy_free(policy);
}
END_TEST

/*
 * policy_lint: every problem, in file and line order.
 */

static void
check_problem(const json_t *problem, const char *file, int line, int column,
              const char *severity, const char *part)
{
    ck_assert_uint_eq(json_object_size(problem), 5);
    assert_ends_with(string_member(problem, "file"), file);
    ck_assert_int_eq(json_integer_value(json_object_get(problem, "line")),
                     line);
    ck_assert_int_eq(json_integer_value(json_object_get(problem, "column")),
                     column);
    ck_assert_str_eq(string_member(problem, "severity"), severity);
    assert_contains(string_member(problem, "message"), part);
}

START_TEST(lint_lists_every_problem)
{
    char *dir = make_temp_dir();
    char *path = write_file(dir, "p.yaml",
                            HEAD "  - name: Bad\n"                /* 3 */
                                 "    when: 'true'\n"             /* 4 */
                                 "    action: block\n"            /* 5 */
                                 "    message: m\n"               /* 6 */
                                 "  - name: r2\n"                 /* 7 */
                                 "    when: config.usr == \"\"\n" /* 8 */
                                 "    action: warn\n"             /* 9 */
                                 "    message: m\n"               /* 10 */
                                 "exceptions:\n"                  /* 11 */
                                 "  - images: ['x.io/y:*']\n"     /* 12 */
                                 "    rules: [r2]\n"              /* 13 */
                                 "    reason: old\n"              /* 14 */
                                 "    expires: 2027-03-31\n");    /* 15 */
    struct pg_error *err = NULL;
    json_t *problems = policy_lint(path, utc(2027, 4, 1, 0, 0, 0), &err);

    ck_assert_ptr_null(err);
    ck_assert_int_eq(json_is_array(problems), 1);
    ck_assert_uint_eq(json_array_size(problems), 4);
    check_problem(json_array_get(problems, 0), "p.yaml", 3, 11, "error", "Bad");
    check_problem(json_array_get(problems, 1), "p.yaml", 5, 13, "error",
                  "block");
    check_problem(json_array_get(problems, 2), "p.yaml", 8, 18, "error", "usr");
    check_problem(json_array_get(problems, 3), "p.yaml", 15, 14, "warning",
                  "2027-03-31");
    json_decref(problems);

    /* The same exception is not expired the day before. */
    problems = policy_lint(path, utc(2027, 3, 31, 23, 59, 59), &err);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(json_array_size(problems), 3);
    json_decref(problems);
    free(path);
    remove_temp_dir(dir);
}
END_TEST

START_TEST(lint_clean_policy)
{
    char *dir = make_temp_dir();
    char *path = write_file(dir, "p.yaml", HEAD RULE_R1);
    struct pg_error *err = NULL;
    json_t *problems = policy_lint(path, time(NULL), &err);

    ck_assert_ptr_null(err);
    ck_assert_int_eq(json_is_array(problems), 1);
    ck_assert_uint_eq(json_array_size(problems), 0);
    json_decref(problems);
    free(path);
    remove_temp_dir(dir);
}
END_TEST

/* A directory's problems come in file name order. */
START_TEST(lint_directory_order)
{
    char *dir = make_temp_dir();
    struct pg_error *err = NULL;
    json_t *problems;

    write_file_only(dir, "b.yaml", "version: 2\nb_key: 1\n");
    write_file_only(dir, "a.yaml", "version: 2\n\na_key: 1\n");
    problems = policy_lint(dir, time(NULL), &err);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(json_array_size(problems), 2);
    check_problem(json_array_get(problems, 0), "a.yaml", 3, 1, "error",
                  "a_key");
    check_problem(json_array_get(problems, 1), "b.yaml", 2, 1, "error",
                  "b_key");
    json_decref(problems);
    remove_temp_dir(dir);
}
END_TEST

/* A file that is not valid YAML is one problem, at the position the YAML
 * reader gives, in a file whose name has a colon. */
START_TEST(lint_yaml_error_position)
{
    char *dir = make_temp_dir();
    struct pg_error *err = NULL;
    const json_t *problem;
    json_t *problems;

    write_file_only(dir, "20:multi.yaml", "version: 2\nrules: []\nrules: []\n");
    problems = policy_lint(dir, time(NULL), &err);
    ck_assert_ptr_null(err);
    ck_assert_uint_eq(json_array_size(problems), 1);
    problem = json_array_get(problems, 0);
    check_problem(problem, "/20:multi.yaml", 3, 1, "error", "");
    ck_assert_str_eq(string_member(problem, "message"),
                     "duplicate key \"rules\" (first at line 2); remove one "
                     "of them");
    json_decref(problems);
    remove_temp_dir(dir);
}
END_TEST

/* An exception naming a Docker Hub image without library/ is a warning:
 * pullgate adds library/ to such names, so the glob never matches. */
START_TEST(lint_docker_hub_short_name)
{
    char *dir = make_temp_dir();
    char *path = write_file(dir, "p.yaml",
                            HEAD RULE_R1 "exceptions:\n"
                                         "  - images: [\"docker.io/nginx:*\", "
                                         "\"docker.io/library/nginx:*\"]\n"
                                         "    rules: [r1]\n"
                                         "    reason: r\n"
                                         "    expires: 2999-01-01\n");
    struct pg_error *err = NULL;
    json_t *problems = policy_lint(path, time(NULL), &err);
    const json_t *problem = json_array_get(problems, 0);

    ck_assert_ptr_null(err);
    ck_assert_uint_eq(json_array_size(problems), 1);
    check_problem(problem, "p.yaml", 8, 14, "warning", "");
    ck_assert_str_eq(string_member(problem, "message"),
                     "image glob \"docker.io/nginx:*\" can never match: "
                     "pullgate names Docker Hub's official images "
                     "library/NAME, as in docker.io/library/nginx:*");
    json_decref(problems);
    free(path);
    remove_temp_dir(dir);
}
END_TEST

/*
 * Policy directories.
 */

#define DIR_RULE(name)                                                         \
    "version: 2\n"                                                             \
    "rules:\n"                                                                 \
    "  - name: " name "\n"                                                     \
    "    when: config.user == \"\"\n"                                          \
    "    action: deny\n"                                                       \
    "    message: " name " fired\n"

/*
 * Files load in bytewise name order ("Z" before "a"), test files, other
 * extensions and subdirectories are left out.
 */
START_TEST(directory_loads_in_name_order)
{
    static const struct expected findings[] = {
        {"zed", "deny", "zed fired", NULL, NULL},
        {"first", "deny", "first fired", NULL, NULL},
        {"second", "deny", "second fired", NULL, NULL},
    };
    char *dir = make_temp_dir();
    char *sub = NULL;
    struct policy *policy;

    write_file_only(dir, "b.yml", DIR_RULE("second"));
    write_file_only(dir, "a.yaml", DIR_RULE("first"));
    write_file_only(dir, "Z.yaml", DIR_RULE("zed"));
    write_file_only(dir, "a.test.yaml", "tests: []\n");
    write_file_only(dir, "b.test.yml", "tests: []\n");
    write_file_only(dir, "notes.txt", "not a policy\n");
    write_file_only(dir, "a.yaml.orig", "not a policy\n");
    ck_assert_int_gt(asprintf(&sub, "%s/sub", dir), 0);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_file_only(sub, "c.yaml", "not: a policy\n");

    policy = load_ok(dir);
    ck_assert_str_eq(policy_source(policy), dir);
    check_findings(evaluate_members(policy, "{\"config\": {\"user\": \"\"}}"),
                   policy, "image", LIST(findings));
    policy_free(policy);
    free(sub);
    remove_temp_dir(dir);
}
END_TEST

START_TEST(directory_duplicate_rule)
{
    char *dir = make_temp_dir();
    char *path = NULL;
    char *message;

    write_file_only(dir, "a.yaml", DIR_RULE("same"));
    write_file_only(dir, "b.yaml",
                    DIR_RULE("other") "  - name: same\n"
                                      "    when: 'true'\n"
                                      "    action: warn\n"
                                      "    message: m\n");
    message = load_error(dir);
    ck_assert_int_gt(asprintf(&path, "%s/b.yaml:7:11: ", dir), 0);
    assert_starts_with(message, path);
    assert_contains(message, "\"same\"");
    assert_contains(message, "a.yaml");
    free(path);
    free(message);
    remove_temp_dir(dir);
}
END_TEST

START_TEST(directory_two_failure_modes)
{
    char *dir = make_temp_dir();
    char *path = NULL;
    char *message;

    write_file_only(dir, "a.yaml", "version: 2\non_inspection_failure: warn\n");
    write_file_only(dir, "b.yaml",
                    "version: 2\n# Comment.\non_inspection_failure: warn\n");
    message = load_error(dir);
    ck_assert_int_gt(asprintf(&path, "%s/b.yaml:3:24: ", dir), 0);
    assert_starts_with(message, path);
    assert_contains(message, "on_inspection_failure");
    assert_contains(message, "a.yaml");
    free(path);
    free(message);
    remove_temp_dir(dir);
}
END_TEST

/* An exception may name a rule of another file of the directory. */
START_TEST(directory_exception_across_files)
{
    static const struct expected excepted[] = {
        {"first", NULL, "first fired", "vendor image", "2999-01-01"},
    };
    static const struct expected_verdict expected = {
        "allow",
        NONE,
        NONE,
        LIST(excepted),
    };
    static const struct policy_request request = {
        "docker.io",
        "library/nginx",
        "1",
        "sha256:aa",
    };
    char *dir = make_temp_dir();
    struct policy *policy;
    json_t *findings;

    write_file_only(dir, "a.yaml", DIR_RULE("first"));
    write_file_only(dir, "b.yaml",
                    "version: 2\n"
                    "exceptions:\n"
                    "  - images: ['docker.io/library/nginx:*']\n"
                    "    rules: [first]\n"
                    "    reason: vendor image\n"
                    "    expires: 2999-01-01\n");
    policy = load_ok(dir);
    findings = evaluate_members(policy, "{\"config\": {\"user\": \"\"}}");
    check_verdict(policy_decide(policy, findings, &request, time(NULL)), policy,
                  "image", &expected);
    json_decref(findings);
    policy_free(policy);
    remove_temp_dir(dir);
}
END_TEST

/* An error in a directory's file names that file. */
START_TEST(directory_error_names_file)
{
    char *dir = make_temp_dir();
    char *path = NULL;
    char *message;

    write_file_only(dir, "a.yaml", DIR_RULE("first"));
    write_file_only(dir, "b.yaml", "version: 1\n");
    message = load_error(dir);
    ck_assert_int_gt(asprintf(&path, "%s/b.yaml:1:10: ", dir), 0);
    assert_starts_with(message, path);
    free(path);
    free(message);
    remove_temp_dir(dir);
}
END_TEST

/* A FIFO named like a policy file fails the load at once: opening it
 * must not wait for a writer, which would hang start-up or a reload. */
START_TEST(directory_fifo_rejected)
{
    char *dir = make_temp_dir();
    char *path = NULL;
    char *message;

    write_file_only(dir, "a.yaml", DIR_RULE("first"));
    ck_assert_int_gt(asprintf(&path, "%s/b.yaml", dir), 0);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    message = load_error(dir);
    free(path);
    ck_assert_int_gt(asprintf(&path,
                              "%s/b.yaml: not a regular file; give the path "
                              "of a YAML file",
                              dir),
                     0);
    ck_assert_str_eq(message, path);
    free(path);
    free(message);
    remove_temp_dir(dir);
}
END_TEST

/*
 * The policy digest.
 */

START_TEST(digest_form)
{
    struct policy *policy = parse_ok(HEAD RULE_R1);
    const char *digest = policy_digest(policy);

    ck_assert_uint_eq(strlen(digest), 71);
    assert_starts_with(digest, "sha256:");
    ck_assert_uint_eq(strspn(digest + 7, "0123456789abcdef"), 64);
    policy_free(policy);
}
END_TEST

/* Key order, comments, quoting and flow style do not change the digest. */
START_TEST(digest_ignores_layout)
{
    struct policy *plain = parse_ok(HEAD RULE_R1);
    struct policy *styled =
        parse_ok("# A comment that changes nothing.\n"
                 "rules: [{message: \"m\", action: deny, name: 'r1',\n"
                 "         when: 'config.user == \"root\"'}]   # flow style\n"
                 "version: 2\n");

    ck_assert_str_eq(policy_digest(styled), policy_digest(plain));
    policy_free(styled);
    policy_free(plain);
}
END_TEST

/* The digest is taken with defaults filled in, so spelling out the
 * default on_inspection_failure does not change it. */
START_TEST(digest_fills_defaults)
{
    struct policy *plain = parse_ok(HEAD RULE_R1);
    struct policy *explicit =
        parse_ok("version: 2\non_inspection_failure: deny\nrules:\n" RULE_R1);

    ck_assert_str_eq(policy_digest(explicit), policy_digest(plain));
    policy_free(explicit);
    policy_free(plain);
}
END_TEST

static const char *const digest_variants[] = {
    /* The expression, even by a space. */
    HEAD "  - name: r1\n    when: config.user == 'root'\n"
         "    action: deny\n    message: m\n",
    HEAD "  - name: r1\n    when: config.user  == \"root\"\n"
         "    action: deny\n    message: m\n",
    HEAD "  - name: r2\n    when: config.user == \"root\"\n"
         "    action: deny\n    message: m\n",
    HEAD "  - name: r1\n    when: config.user == \"root\"\n"
         "    action: warn\n    message: m\n",
    HEAD "  - name: r1\n    when: config.user == \"root\"\n"
         "    action: deny\n    message: m.\n",
    HEAD RULE_R1 "    description: d\n",
    HEAD RULE_R1 "    message_expression: config.user\n",
    HEAD RULE_R1 "    scope: {registries: [docker.io]}\n",
    HEAD RULE_R1 "    scope: {tags: [latest]}\n",
    "version: 2\non_inspection_failure: warn\nrules:\n" RULE_R1,
    HEAD RULE_R1 "exceptions:\n  - images: ['x.io/y:*']\n    rules: [r1]\n"
                 "    reason: r\n    expires: 2999-01-01\n",
};

START_TEST(digest_changes_with_rule)
{
    struct policy *base = parse_ok(HEAD RULE_R1);
    struct policy *variant = parse_ok(digest_variants[_i]);

    ck_assert_str_ne(policy_digest(variant), policy_digest(base));
    policy_free(variant);
    policy_free(base);
}
END_TEST

/* Any change to an exception changes the digest too. */
START_TEST(digest_changes_with_exception)
{
    static const char head[] =
        HEAD RULE_R1 "exceptions:\n  - images: ['x.io/y:*']\n"
                     "    rules: [r1]\n";
    char *a = NULL;
    char *b = NULL;
    struct policy *first;
    struct policy *second;

    ck_assert_int_gt(
        asprintf(&a, "%s    reason: r\n    expires: 2999-01-01\n", head), 0);
    ck_assert_int_gt(
        asprintf(&b, "%s    reason: r\n    expires: 2999-01-02\n", head), 0);
    first = parse_ok(a);
    second = parse_ok(b);
    ck_assert_str_ne(policy_digest(first), policy_digest(second));
    policy_free(second);
    policy_free(first);
    free(b);
    free(a);
}
END_TEST

/*
 * The digest covers each file's base name and tree: a directory of one
 * file has the digest of that file loaded on its own, the name matters,
 * and a directory of two files has a digest of its own.
 */
START_TEST(digest_directory_and_names)
{
    char *dir = make_temp_dir();
    char *other = make_temp_dir();
    char *path = write_file(dir, "p.yaml", HEAD RULE_R1);
    struct policy *directory = load_ok(dir);
    struct policy *file = load_ok(path);
    struct policy *parsed = parse_named_ok("p.yaml", HEAD RULE_R1);
    struct policy *renamed = parse_named_ok("q.yaml", HEAD RULE_R1);
    struct policy *two;

    ck_assert_str_eq(policy_source(file), path);
    ck_assert_str_eq(policy_digest(directory), policy_digest(file));
    ck_assert_str_eq(policy_digest(parsed), policy_digest(file));
    ck_assert_str_ne(policy_digest(renamed), policy_digest(file));

    write_file_only(other, "p.yaml", HEAD RULE_R1);
    write_file_only(other, "q.yaml", "version: 2\n");
    two = load_ok(other);
    ck_assert_str_ne(policy_digest(two), policy_digest(file));

    policy_free(two);
    policy_free(renamed);
    policy_free(parsed);
    policy_free(file);
    policy_free(directory);
    free(path);
    remove_temp_dir(other);
    remove_temp_dir(dir);
}
END_TEST

/*
 * policy_evaluate.
 */

static const char content_policy[] =
    HEAD "  - name: root-user\n"
         "    when: 'config.user in [\"\", \"root\", \"0\"]'\n"
         "    action: warn\n"
         "    message: image runs as root\n"
         "  - name: aws-credentials\n"
         "    when: >-\n"
         "      files.exists(f, f.present &&\n"
         "        f.path.endsWith(\".aws/credentials\"))\n"
         "    action: deny\n"
         "    message: image contains AWS credentials\n";

START_TEST(evaluate_rules_fire)
{
    static const struct expected findings[] = {
        {"root-user", "warn", "image runs as root", NULL, NULL},
        {"aws-credentials", "deny", "image contains AWS credentials", NULL,
         NULL},
    };
    struct policy *policy = parse_ok(content_policy);
    json_t *result = evaluate_members(
        policy, "{\"config\": {\"user\": \"root\"},"
                " \"files\": [{\"path\": \"root/.aws/credentials\","
                " \"layer\": 0, \"type\": \"file\", \"mode\": 384,"
                " \"size\": 10, \"uid\": 0, \"gid\": 0, \"present\": true}]}");

    check_findings(result, policy, "image", LIST(findings));
    policy_free(policy);
}
END_TEST

START_TEST(evaluate_rules_do_not_fire)
{
    struct policy *policy = parse_ok(content_policy);
    json_t *result = evaluate_members(
        policy, "{\"config\": {\"user\": \"app\"},"
                " \"files\": [{\"path\": \"root/.aws/credentials\","
                " \"layer\": 0, \"type\": \"file\", \"mode\": 384,"
                " \"size\": 10, \"uid\": 0, \"gid\": 0, \"present\": false}]}");

    check_findings(result, policy, "image", NONE);
    policy_free(policy);
}
END_TEST

/* A runtime error fires the rule with its own action and the error's
 * place in the file. "team" is missing from the labels at the '[', column
 * 14 of the expression, which starts at column 12 of line 4. */
START_TEST(evaluate_runtime_error)
{
    static const struct expected findings[] = {
        {"team-label", "warn",
         "rule team-label could not be evaluated: when at test.yaml:4:25: "
         "no such key: 'team'",
         NULL, NULL},
        {"divide", "deny",
         "rule divide could not be evaluated: when at test.yaml:8:13: "
         "division by zero",
         NULL, NULL},
    };
    struct policy *policy =
        parse_ok(HEAD "  - name: team-label\n"
                      "    when: 'config.labels[\"team\"] != \"payments\"'\n"
                      "    action: warn\n"
                      "    message: m\n"
                      "  - name: divide\n"
                      "    when: 1 / size(config.env) == 1\n"
                      "    action: deny\n"
                      "    message: m\n");

    check_findings(evaluate_members(policy, "{}"), policy, "image",
                   LIST(findings));
    check_findings(
        evaluate_members(policy,
                         "{\"config\": {\"user\": \"\", "
                         "\"labels\": {\"team\": \"payments\"},"
                         " \"env\": [{\"name\": \"A\", \"value\": "
                         "\"1\"}, {\"name\": \"B\", \"value\": \"2\"}]}}"),
        policy, "image", NONE);
    policy_free(policy);
}
END_TEST

/* A condition whose value is not a bool fires the rule too. */
START_TEST(evaluate_non_bool)
{
    struct policy *policy =
        parse_ok(HEAD "  - name: mixed\n"
                      "    when: '[false, \"yes\"][size(config.env)]'\n"
                      "    action: deny\n"
                      "    message: m\n");
    json_t *result =
        evaluate_members(policy, "{\"config\": {\"user\": \"\", \"env\": "
                                 "[{\"name\": \"A\", \"value\": \"1\"}]}}");
    const json_t *finding;

    ck_assert_uint_eq(json_array_size(json_object_get(result, "findings")), 1);
    finding = json_array_get(json_object_get(result, "findings"), 0);
    ck_assert_str_eq(string_member(finding, "rule"), "mixed");
    ck_assert_str_eq(string_member(finding, "action"), "deny");
    assert_starts_with(string_member(finding, "message"),
                       "rule mixed could not be evaluated: ");
    assert_contains(string_member(finding, "message"), "string");
    json_decref(result);

    /* With no environment it gives false, and nothing fires. */
    check_findings(evaluate_members(policy, "{}"), policy, "image", NONE);
    policy_free(policy);
}
END_TEST

START_TEST(evaluate_message_expression)
{
    static const struct expected root[] = {
        {"user", "warn", "image runs as root", NULL, NULL},
    };
    static const struct expected named[] = {
        {"user", "warn", "image runs as admin", NULL, NULL},
    };
    struct policy *policy =
        parse_ok(HEAD "  - name: user\n"
                      "    when: config.user != \"app\"\n"
                      "    action: warn\n"
                      "    message: image runs as another user\n"
                      "    message_expression: >-\n"
                      "      \"image runs as \" +\n"
                      "      (config.user == \"\" ? \"root\" : config.user)\n");

    check_findings(evaluate_members(policy, "{\"config\": {\"user\": \"\"}}"),
                   policy, "image", LIST(root));
    check_findings(
        evaluate_members(policy, "{\"config\": {\"user\": \"admin\"}}"), policy,
        "image", LIST(named));
    policy_free(policy);
}
END_TEST

/* A message longer than 1,024 bytes is cut at a character boundary. */
START_TEST(evaluate_message_capped)
{
    struct policy *policy =
        parse_ok(HEAD "  - name: user\n"
                      "    when: 'true || config.user == \"\"'\n"
                      "    action: warn\n"
                      "    message_expression: config.user\n");
    char user[2000 + 64];
    char *members = NULL;
    json_t *result;
    const char *message;

    /* "xy" then 1,010 two-byte characters: byte 1,021, where the cut
     * would fall, is the second byte of one, so the cut moves before it. */
    user[0] = 'x';
    user[1] = 'y';
    for (int i = 0; i < 1010; i++) {
        user[2 + 2 * i] = (char)0xc3;
        user[3 + 2 * i] = (char)0xa9;
    }
    user[2022] = '\0';
    ck_assert_int_gt(
        asprintf(&members, "{\"config\": {\"user\": \"%s\"}}", user), 0);
    result = evaluate_members(policy, members);
    message = json_string_value(json_object_get(
        json_array_get(json_object_get(result, "findings"), 0), "message"));
    ck_assert_uint_eq(strlen(message), 1020 + 3);
    ck_assert_int_eq(memcmp(message, user, 1020), 0);
    ck_assert_str_eq(message + 1018, "\xc3\xa9...");
    json_decref(result);
    free(members);
    policy_free(policy);
}
END_TEST

/* A message expression that fails gives the plain message. */
START_TEST(evaluate_message_expression_fallback)
{
    static const struct expected fallback[] = {
        {"owner", "deny", "image has no owner label", NULL, NULL},
    };
    static const struct expected owned[] = {
        {"owner", "deny", "owner is nobody", NULL, NULL},
    };
    struct policy *policy =
        parse_ok(HEAD "  - name: owner\n"
                      "    when: config.user == \"\"\n"
                      "    action: deny\n"
                      "    message: image has no owner label\n"
                      "    message_expression: "
                      "'\"owner is \" + config.labels[\"owner\"]'\n");

    check_findings(evaluate_members(policy, "{\"config\": {\"user\": \"\"}}"),
                   policy, "image", LIST(fallback));
    check_findings(evaluate_members(policy,
                                    "{\"config\": {\"user\": \"\", \"labels\":"
                                    " {\"owner\": \"nobody\"}}}"),
                   policy, "image", LIST(owned));
    policy_free(policy);
}
END_TEST

/* Documents from the inspector's own constructors. */
static json_t *
failed_document(void)
{
    json_t *manifest = json("{\"schemaVersion\": 2, \"mediaType\": "
                            "\"application/vnd.oci.image.manifest.v1+json\","
                            " \"config\": {\"mediaType\": "
                            "\"application/vnd.oci.image.config.v1+json\","
                            " \"digest\": \"sha256:c\", \"size\": 2},"
                            " \"layers\": []}");
    json_t *reference = json("{\"registry\": \"docker.io\", \"repository\":"
                             " \"library/x\", \"reference\": \"1\"}");
    json_t *document = inspector_failed_document(
        "sha256:m", manifest, reference, "layer 0 is not a tar stream");

    ck_assert_ptr_nonnull(document);
    json_decref(reference);
    json_decref(manifest);
    return document;
}

static json_t *
artifact_document(void)
{
    json_t *manifest = json("{\"schemaVersion\": 2, \"mediaType\": "
                            "\"application/vnd.oci.image.manifest.v1+json\","
                            " \"config\": {\"mediaType\": "
                            "\"application/vnd.cncf.helm.config.v1+json\","
                            " \"digest\": \"sha256:c\", \"size\": 2},"
                            " \"layers\": []}");
    json_t *reference = json("{\"registry\": \"docker.io\", \"repository\":"
                             " \"charts/x\", \"reference\": \"1\"}");
    json_t *document =
        inspector_artifact_document("sha256:m", manifest, reference);

    ck_assert_ptr_nonnull(document);
    json_decref(reference);
    json_decref(manifest);
    return document;
}

/* Checks the one finding of a failed inspection and releases result. */
static void
check_failed_finding(json_t *result, const char *action)
{
    const json_t *findings = json_object_get(result, "findings");
    const json_t *finding;

    ck_assert_str_eq(string_member(result, "kind"), "image");
    ck_assert_uint_eq(json_array_size(findings), 1);
    finding = json_array_get(findings, 0);
    ck_assert_uint_eq(json_object_size(finding), 3);
    ck_assert_str_eq(string_member(finding, "rule"), "inspection-failed");
    ck_assert_str_eq(string_member(finding, "action"), action);
    assert_contains(string_member(finding, "message"),
                    "layer 0 is not a tar stream");
    json_decref(result);
}

/* A failed inspection runs no content rule: the image has no config to
 * read, so each would fail to evaluate. */
START_TEST(evaluate_inspection_failed)
{
    static const char *const modes[] = {"deny", "warn"};
    json_t *document = failed_document();

    for (size_t i = 0; i < COUNT(modes); i++) {
        char *yaml = NULL;
        struct policy *policy;

        ck_assert_int_gt(asprintf(&yaml,
                                  "version: 2\non_inspection_failure: %s\n"
                                  "rules:\n" RULE_R1,
                                  modes[i]),
                         0);
        policy = parse_ok(yaml);
        check_failed_finding(evaluate_ok(policy, document), modes[i]);
        policy_free(policy);
        free(yaml);
    }
    json_decref(document);
}
END_TEST

START_TEST(evaluate_inspection_failed_default_denies)
{
    json_t *document = failed_document();
    struct policy *policy = parse_ok(HEAD RULE_R1);

    check_failed_finding(evaluate_ok(policy, document), "deny");
    policy_free(policy);
    json_decref(document);
}
END_TEST

START_TEST(evaluate_inspection_failed_allow)
{
    json_t *document = failed_document();
    struct policy *policy =
        parse_ok("version: 2\non_inspection_failure: allow\nrules:\n" RULE_R1);

    check_findings(evaluate_ok(policy, document), policy, "image", NONE);
    policy_free(policy);
    json_decref(document);
}
END_TEST

/* Artifacts get no content rules, even one that would fire on anything. */
START_TEST(evaluate_artifact)
{
    json_t *document = artifact_document();
    struct policy *policy = parse_ok(HEAD "  - name: always\n"
                                          "    when: 'true'\n"
                                          "    action: deny\n"
                                          "    message: m\n");

    check_findings(evaluate_ok(policy, document), policy, "artifact", NONE);
    policy_free(policy);
    json_decref(document);
}
END_TEST

START_TEST(evaluate_not_object)
{
    struct policy *policy = parse_ok(HEAD RULE_R1);
    json_t *array = json("[]");
    struct pg_error *err = NULL;

    ck_assert_ptr_null(policy_evaluate(policy, array, &err));
    ck_assert_ptr_nonnull(err);
    pg_error_free(err);
    json_decref(array);
    policy_free(policy);
}
END_TEST

/* Source rules are not content rules: policy_evaluate leaves them out. */
START_TEST(evaluate_skips_source_rules)
{
    struct policy *policy = parse_ok(HEAD "  - name: hub\n"
                                          "    when: image.registry != \"\"\n"
                                          "    action: deny\n"
                                          "    message: m\n");

    check_findings(evaluate_members(policy, "{}"), policy, "image", NONE);
    policy_free(policy);
}
END_TEST

struct thread_work {
    const struct policy *policy;
    const json_t *document;
    int failures;
};

static void *
evaluate_many(void *argument)
{
    struct thread_work *work = argument;

    for (int i = 0; i < 200; i++) {
        json_t *result = policy_evaluate(work->policy, work->document, NULL);
        const json_t *findings = json_object_get(result, "findings");

        if (json_array_size(findings) != 2)
            work->failures++;
        json_decref(result);
    }
    return NULL;
}

/* One policy serves several threads at once. */
START_TEST(evaluate_threads)
{
    struct policy *policy = parse_ok(content_policy);
    json_t *document = image_document(
        "{\"config\": {\"user\": \"\"},"
        " \"files\": [{\"path\": \"root/.aws/credentials\","
        " \"layer\": 0, \"type\": \"file\", \"mode\": 384,"
        " \"size\": 10, \"uid\": 0, \"gid\": 0, \"present\": true}]}");
    struct thread_work work[4];
    pthread_t threads[4];

    for (size_t i = 0; i < COUNT(threads); i++) {
        work[i] = (struct thread_work){policy, document, 0};
        ck_assert_int_eq(
            pthread_create(&threads[i], NULL, evaluate_many, &work[i]), 0);
    }
    for (size_t i = 0; i < COUNT(threads); i++) {
        ck_assert_int_eq(pthread_join(threads[i], NULL), 0);
        ck_assert_int_eq(work[i].failures, 0);
    }
    json_decref(document);
    policy_free(policy);
}
END_TEST

/*
 * policy_decide: scope and exceptions for one request.
 */

static const char scoped_policy[] =
    HEAD "  - name: hub\n"
         "    when: config.user == \"\"\n"
         "    action: deny\n"
         "    message: hub m\n"
         "    scope: {registries: [docker.io]}\n"
         "  - name: library\n"
         "    when: config.user == \"\"\n"
         "    action: deny\n"
         "    message: library m\n"
         "    scope: {repositories: ['library/*']}\n"
         "  - name: latest\n"
         "    when: config.user == \"\"\n"
         "    action: deny\n"
         "    message: latest m\n"
         "    scope: {tags: [latest, 'v1.?']}\n"
         "  - name: both\n"
         "    when: config.user == \"\"\n"
         "    action: deny\n"
         "    message: both m\n"
         "    scope:\n"
         "      registries: ['*.example.com']\n"
         "      repositories: ['team/**']\n"
         "  - name: everywhere\n"
         "    when: config.user == \"\"\n"
         "    action: warn\n"
         "    message: everywhere m\n";

struct scope_case {
    struct policy_request request;
    const char *denied[4]; /* rule names; NULL ends the list */
};

static const struct scope_case scope_cases[] = {
    {{"docker.io", "library/nginx", "latest", "sha256:aa"},
     {"hub", "library", "latest"}},
    /* Registry names match in any case. */
    {{"Docker.IO", "library/nginx", "1", NULL}, {"hub", "library"}},
    /* '*' stops at '/'. */
    {{"docker.io", "library/nginx/x", "1", NULL}, {"hub"}},
    {{"ghcr.io", "library/nginx", "1", NULL}, {"library"}},
    {{"ghcr.io", "org/library/nginx", "1", NULL}, {NULL}},
    /* A request by digest has no tag, so tag-scoped rules do not apply. */
    {{"ghcr.io", "x", NULL, "sha256:aa"}, {NULL}},
    {{"ghcr.io", "x", "v1.2", "sha256:aa"}, {"latest"}},
    {{"ghcr.io", "x", "v1.10", "sha256:aa"}, {NULL}},
    {{"ghcr.io", "x", "Latest", "sha256:aa"}, {NULL}},
    /* Every list must match, and '**' crosses '/'. */
    {{"registry.example.com", "team/a/b", "1", NULL}, {"both"}},
    {{"REGISTRY.Example.com", "team/a", "1", NULL}, {"both"}},
    {{"example.com", "team/a", "1", NULL}, {NULL}},
    {{"registry.example.com", "other/a", "1", NULL}, {NULL}},
};

START_TEST(decide_scope)
{
    static const struct expected warnings[] = {
        {"everywhere", NULL, "everywhere m", NULL, NULL},
    };
    const struct scope_case *c = &scope_cases[_i];
    struct expected denied[4];
    struct expected_verdict expected = {"allow", NONE, NONE, NONE};
    struct policy *policy = parse_ok(scoped_policy);
    json_t *findings =
        evaluate_members(policy, "{\"config\": {\"user\": \"\"}}");
    size_t n = 0;

    for (; n < COUNT(c->denied) && c->denied[n] != NULL; n++) {
        char *message = NULL;

        /* Each rule's message is its name followed by " m". */
        ck_assert_int_gt(asprintf(&message, "%s m", c->denied[n]), 0);
        denied[n] = (struct expected){c->denied[n], NULL, message, NULL, NULL};
    }
    expected.decision = n > 0 ? "deny" : "allow";
    expected.denied = denied;
    expected.n_denied = n;
    expected.warnings = warnings;
    expected.n_warnings = COUNT(warnings);
    check_verdict(policy_decide(policy, findings, &c->request, time(NULL)),
                  policy, "image", &expected);
    for (size_t i = 0; i < n; i++)
        free((char *)denied[i].message);
    json_decref(findings);
    policy_free(policy);
}
END_TEST

/* A scope does not decide whether a rule fires, only whether it counts:
 * the findings are the same for every request. */
START_TEST(decide_scope_keeps_findings)
{
    struct policy *policy = parse_ok(scoped_policy);
    json_t *findings =
        evaluate_members(policy, "{\"config\": {\"user\": \"\"}}");

    ck_assert_uint_eq(json_array_size(json_object_get(findings, "findings")),
                      5);
    json_decref(findings);
    policy_free(policy);
}
END_TEST

static const char excepted_policy[] =
    HEAD "  - name: hub\n"
         "    when: config.user == \"\"\n"
         "    action: deny\n"
         "    message: hub m\n"
         "  - name: root\n"
         "    when: config.user == \"\"\n"
         "    action: warn\n"
         "    message: root m\n"
         "exceptions:\n"
         "  - images: ['docker.io/library/nginx:1.*']\n"
         "    rules: [hub]\n"
         "    reason: vendor image, ticket SEC-42\n"
         "    expires: 2027-03-31\n"
         "  - images: ['docker.io/library/redis@sha256:*']\n"
         "    rules: ['*']\n"
         "    reason: pinned\n"
         "    expires: 2027-03-31T12:00:00Z\n";

static const struct expected hub_denied[] = {
    {"hub", NULL, "hub m", NULL, NULL}};
static const struct expected root_warned[] = {
    {"root", NULL, "root m", NULL, NULL}};
static const struct expected vendor_excepted[] = {
    {"hub", NULL, "hub m", "vendor image, ticket SEC-42", "2027-03-31"},
};
static const struct expected all_excepted[] = {
    {"hub", NULL, "hub m", "pinned", "2027-03-31T12:00:00Z"},
    {"root", NULL, "root m", "pinned", "2027-03-31T12:00:00Z"},
};

static const struct expected_verdict not_excepted = {
    "deny",
    LIST(hub_denied),
    LIST(root_warned),
    NONE,
};
static const struct expected_verdict hub_only_excepted = {
    "allow",
    NONE,
    LIST(root_warned),
    LIST(vendor_excepted),
};
static const struct expected_verdict everything_excepted = {
    "allow",
    NONE,
    NONE,
    LIST(all_excepted),
};

struct exception_case {
    struct policy_request request;
    time_t now;
    const struct expected_verdict *expected;
};

static void
run_exception_case(const struct exception_case *c)
{
    struct policy *policy = parse_ok(excepted_policy);
    json_t *findings =
        evaluate_members(policy, "{\"config\": {\"user\": \"\"}}");

    check_verdict(policy_decide(policy, findings, &c->request, c->now), policy,
                  "image", c->expected);
    json_decref(findings);
    policy_free(policy);
}

START_TEST(decide_exceptions)
{
    /* The date form applies through 2027-03-31 UTC. */
    const time_t last = utc(2027, 3, 31, 23, 59, 59);
    const time_t after = utc(2027, 4, 1, 0, 0, 0);
    const time_t noon = utc(2027, 3, 31, 12, 0, 0);
    const struct exception_case cases[] = {
        /* The tag form, with and without the digest known. */
        {{"docker.io", "library/nginx", "1.25", "sha256:aa"},
         last,
         &hub_only_excepted},
        {{"docker.io", "library/nginx", "1.25", NULL},
         last,
         &hub_only_excepted},
        {{"docker.io", "library/nginx", "1.25", NULL}, after, &not_excepted},
        {{"docker.io", "library/nginx", "latest", NULL}, last, &not_excepted},
        /* A request by digest has no tag form. */
        {{"docker.io", "library/nginx", NULL, "sha256:aa"},
         last,
         &not_excepted},
        {{"docker.io", "library/nginx-dev", "1.25", NULL}, last, &not_excepted},
        /* The digest form, whenever the digest is known. */
        {{"docker.io", "library/redis", NULL, "sha256:bb"},
         noon - 1,
         &everything_excepted},
        {{"docker.io", "library/redis", "7", "sha256:bb"},
         noon - 1,
         &everything_excepted},
        {{"docker.io", "library/redis", "7", NULL}, noon - 1, &not_excepted},
        /* An RFC 3339 time applies until that instant. */
        {{"docker.io", "library/redis", NULL, "sha256:bb"},
         noon + 1,
         &not_excepted},
        {{"docker.io", "library/redis", NULL, "sha256:bb"},
         after,
         &not_excepted},
    };

    for (size_t i = 0; i < COUNT(cases); i++)
        run_exception_case(&cases[i]);
}
END_TEST

/* A finding of a rule the policy does not have counts as it is. */
START_TEST(decide_unknown_rule)
{
    static const struct expected denied[] = {
        {"gone", NULL, "gone m", NULL, NULL}};
    static const struct expected warnings[] = {
        {"old", NULL, "old m", NULL, NULL}};
    static const struct expected_verdict expected = {
        "deny",
        LIST(denied),
        LIST(warnings),
        NONE,
    };
    static const struct policy_request request = {
        "docker.io",
        "library/nginx",
        "1.25",
        NULL,
    };
    struct policy *policy = parse_ok(excepted_policy);
    json_t *findings = json_pack(
        "{s:s, s:s, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "policy_digest",
        policy_digest(policy), "kind", "image", "findings", "rule", "gone",
        "action", "deny", "message", "gone m", "rule", "old", "action", "warn",
        "message", "old m");

    ck_assert_ptr_nonnull(findings);
    check_verdict(policy_decide(policy, findings, &request, time(NULL)), policy,
                  "image", &expected);
    json_decref(findings);
    policy_free(policy);
}
END_TEST

/* The kind is copied from the findings, and a failed inspection denies
 * every request. */
START_TEST(decide_inspection_failed)
{
    static const struct policy_request request = {
        "ghcr.io",
        "x",
        "1",
        "sha256:aa",
    };
    json_t *document = failed_document();
    struct policy *policy = parse_ok(HEAD RULE_R1);
    json_t *findings = evaluate_ok(policy, document);
    json_t *verdict = policy_decide(policy, findings, &request, time(NULL));
    const json_t *denied = json_object_get(verdict, "denied");

    ck_assert_str_eq(string_member(verdict, "decision"), "deny");
    ck_assert_str_eq(string_member(verdict, "kind"), "image");
    ck_assert_uint_eq(json_array_size(denied), 1);
    ck_assert_str_eq(string_member(json_array_get(denied, 0), "rule"),
                     "inspection-failed");
    json_decref(verdict);
    json_decref(findings);
    policy_free(policy);
    json_decref(document);
}
END_TEST

START_TEST(decide_artifact)
{
    static const struct expected_verdict expected = {"allow", NONE, NONE, NONE};
    static const struct policy_request request = {
        "docker.io",
        "charts/x",
        "1",
        "sha256:aa",
    };
    json_t *document = artifact_document();
    struct policy *policy = parse_ok(excepted_policy);
    json_t *findings = evaluate_ok(policy, document);

    check_verdict(policy_decide(policy, findings, &request, time(NULL)), policy,
                  "artifact", &expected);
    json_decref(findings);
    policy_free(policy);
    json_decref(document);
}
END_TEST

/*
 * policy_check_source.
 */

static const char source_policy[] =
    HEAD "  - name: no-docker-hub\n"
         "    when: image.registry == \"docker.io\"\n"
         "    action: deny\n"
         "    message: pulls from Docker Hub are blocked\n"
         "  - name: pinned\n"
         "    when: '!has(image.digest)'\n"
         "    action: warn\n"
         "    message: pull by digest\n"
         "    scope: {repositories: ['prod/**']}\n"
         "  - name: reference\n"
         "    when: image.reference.endsWith(\":1\")\n"
         "    action: warn\n"
         "    message: tag 1 is old\n"
         "  - name: content\n"
         "    when: config.user == \"\"\n"
         "    action: deny\n"
         "    message: content m\n"
         "exceptions:\n"
         "  - images: ['docker.io/library/alpine:3.*']\n"
         "    rules: [no-docker-hub]\n"
         "    reason: base image\n"
         "    expires: 2999-12-31\n";

START_TEST(source_rules)
{
    static const struct expected hub[] = {
        {"no-docker-hub", NULL, "pulls from Docker Hub are blocked", NULL,
         NULL},
    };
    static const struct expected pinned[] = {
        {"pinned", NULL, "pull by digest", NULL, NULL},
    };
    static const struct expected old[] = {
        {"reference", NULL, "tag 1 is old", NULL, NULL}};
    static const struct expected hub_excepted[] = {
        {"no-docker-hub", NULL, "pulls from Docker Hub are blocked",
         "base image", "2999-12-31"},
    };
    const struct {
        struct policy_request request;
        struct expected_verdict expected;
    } cases[] = {
        {{"docker.io", "library/nginx", "1.25", NULL},
         {"deny", LIST(hub), NONE, NONE}},
        {{"docker.io", "library/nginx", NULL, "sha256:aa"},
         {"deny", LIST(hub), NONE, NONE}},
        /* The content rule is not a source rule. */
        {{"ghcr.io", "library/nginx", "1.25", NULL},
         {"allow", NONE, NONE, NONE}},
        {{"ghcr.io", "prod/a/b", "2", NULL},
         {"allow", NONE, LIST(pinned), NONE}},
        {{"ghcr.io", "prod/a/b", "2", "sha256:aa"},
         {"allow", NONE, NONE, NONE}},
        {{"ghcr.io", "x", "1", NULL}, {"allow", NONE, LIST(old), NONE}},
        {{"docker.io", "library/alpine", "3.19", NULL},
         {"allow", NONE, NONE, LIST(hub_excepted)}},
        {{"docker.io", "library/alpine", "edge", NULL},
         {"deny", LIST(hub), NONE, NONE}},
    };
    struct policy *policy = parse_ok(source_policy);

    for (size_t i = 0; i < COUNT(cases); i++)
        check_verdict(
            policy_check_source(policy, &cases[i].request, time(NULL)), policy,
            "image", &cases[i].expected);
    policy_free(policy);
}
END_TEST

/* policy_verdict adds the source rules' results, with the manifest digest
 * known, to the content rules' decided findings. */
START_TEST(source_rules_in_verdict)
{
    static const struct expected content[] = {
        {"content", NULL, "content m", NULL, NULL},
    };
    static const struct expected old[] = {
        {"reference", NULL, "tag 1 is old", NULL, NULL}};
    static const struct expected hub[] = {
        {"no-docker-hub", NULL, "pulls from Docker Hub are blocked", NULL,
         NULL},
    };
    struct policy_request ghcr = {"ghcr.io", "x", "1", "sha256:aa"};
    struct policy_request hub_request = {"docker.io", "library/nginx", "1",
                                         "sha256:aa"};
    const struct expected_verdict root_old = {"deny", LIST(content), LIST(old),
                                              NONE};
    const struct expected_verdict hub_verdict = {"deny", LIST(hub), LIST(old),
                                                 NONE};
    struct policy *policy = parse_ok(source_policy);
    json_t *document = image_document("{\"config\": {\"user\": \"\"}}");
    json_t *root = evaluate_ok(policy, document);
    json_t *clean_document = image_document("{}");
    json_t *clean = evaluate_ok(policy, clean_document);

    check_verdict(policy_verdict(policy, root, &ghcr, time(NULL)), policy,
                  "image", &root_old);
    check_verdict(policy_verdict(policy, clean, &hub_request, time(NULL)),
                  policy, "image", &hub_verdict);
    json_decref(root);
    json_decref(clean);
    json_decref(document);
    json_decref(clean_document);
    policy_free(policy);
}
END_TEST

/* image.tag is missing from a request by digest: reading it is a runtime
 * error, and the rule fires rather than let the image through. */
START_TEST(source_runtime_error)
{
    static const struct expected denied[] = {
        {"latest", NULL,
         "rule latest could not be evaluated: when at test.yaml:4:17: "
         "no such key: 'tag'",
         NULL, NULL},
    };
    static const struct expected_verdict by_digest = {
        "deny",
        LIST(denied),
        NONE,
        NONE,
    };
    static const struct expected_verdict by_tag = {"allow", NONE, NONE, NONE};
    static const struct policy_request digest_request = {
        "ghcr.io",
        "x",
        NULL,
        "sha256:aa",
    };
    static const struct policy_request tag_request = {"ghcr.io", "x", "1",
                                                      NULL};
    struct policy *policy = parse_ok(HEAD "  - name: latest\n"
                                          "    when: image.tag == \"latest\"\n"
                                          "    action: deny\n"
                                          "    message: m\n");

    check_verdict(policy_check_source(policy, &digest_request, time(NULL)),
                  policy, "image", &by_digest);
    check_verdict(policy_check_source(policy, &tag_request, time(NULL)), policy,
                  "image", &by_tag);
    policy_free(policy);
}
END_TEST

/* Source rules with exceptions expire like content rules. */
START_TEST(source_exception_expires)
{
    static const struct expected hub[] = {
        {"no-docker-hub", NULL, "pulls from Docker Hub are blocked", NULL,
         NULL},
    };
    static const struct expected hub_excepted[] = {
        {"no-docker-hub", NULL, "pulls from Docker Hub are blocked",
         "migration", "2027-03-31"},
    };
    static const struct expected_verdict denied = {"deny", LIST(hub), NONE,
                                                   NONE};
    static const struct expected_verdict excepted = {
        "allow",
        NONE,
        NONE,
        LIST(hub_excepted),
    };
    static const struct policy_request request = {"docker.io", "library/x", "1",
                                                  NULL};
    struct policy *policy =
        parse_ok(HEAD "  - name: no-docker-hub\n"
                      "    when: image.registry == \"docker.io\"\n"
                      "    action: deny\n"
                      "    message: pulls from Docker Hub are blocked\n"
                      "exceptions:\n"
                      "  - images: ['docker.io/**']\n"
                      "    rules: ['*']\n"
                      "    reason: migration\n"
                      "    expires: 2027-03-31\n");

    check_verdict(
        policy_check_source(policy, &request, utc(2027, 3, 31, 23, 59, 59)),
        policy, "image", &excepted);
    check_verdict(
        policy_check_source(policy, &request, utc(2027, 4, 1, 0, 0, 0)), policy,
        "image", &denied);
    policy_free(policy);
}
END_TEST

/*
 * Reference counting.
 */

START_TEST(ref_and_free)
{
    struct policy *policy = parse_ok(HEAD RULE_R1);
    char *digest = strdup(policy_digest(policy));

    ck_assert_ptr_eq(policy_ref(policy), policy);
    ck_assert_ptr_eq(policy_ref(policy), policy);
    policy_free(policy);
    policy_free(policy);

    /* The last reference still works; ASan reports a use after free. */
    ck_assert_str_eq(policy_digest(policy), digest);
    check_findings(evaluate_members(policy, "{}"), policy, "image", NONE);
    policy_free(policy);
    policy_free(NULL);
    free(digest);
}
END_TEST

/*
 * The built-in default policy, config/policy/default.yaml.
 */

START_TEST(default_loads)
{
    struct policy *policy = load_ok(NULL);
    const json_t *warnings = policy_warnings(policy);

    ck_assert_str_eq(policy_source(policy), "built-in default policy");
    ck_assert_uint_eq(strlen(policy_digest(policy)), 71);
    assert_starts_with(policy_digest(policy), "sha256:");
    ck_assert_uint_eq(json_array_size(warnings), 0);
    policy_free(policy);
}
END_TEST

/* The built-in text is the shipped file, so the digests are equal. */
START_TEST(default_equals_file)
{
    char *path = NULL;
    struct policy *builtin = load_ok(NULL);
    struct policy *file;

    ck_assert_int_gt(
        asprintf(&path, "%s/config/policy/default.yaml", source_dir()), 0);
    file = load_ok(path);
    ck_assert_str_eq(policy_source(file), path);
    ck_assert_str_eq(policy_digest(file), policy_digest(builtin));
    policy_free(file);
    policy_free(builtin);
    free(path);
}
END_TEST

/* Evaluates the default policy on the empty document with members
 * replaced and returns the names of the rules that fired with action,
 * separated by spaces; the caller frees the string. */
static char *
default_rules_fired(const char *members, const char *action)
{
    struct policy *policy = load_ok(NULL);
    json_t *result = evaluate_members(policy, members);
    const json_t *findings = json_object_get(result, "findings");
    char *names = strdup("");
    size_t i;
    const json_t *finding;

    ck_assert_ptr_nonnull(names);
    json_array_foreach(findings, i, finding)
    {
        char *longer = NULL;

        if (strcmp(string_member(finding, "action"), action) != 0)
            continue;
        ck_assert_int_gt(asprintf(&longer, "%s%s%s", names,
                                  names[0] != '\0' ? " " : "",
                                  string_member(finding, "rule")),
                         0);
        free(names);
        names = longer;
    }
    json_decref(result);
    policy_free(policy);
    return names;
}

START_TEST(default_clean_image)
{
    char *denied = default_rules_fired("{}", "deny");
    char *warned = default_rules_fired("{}", "warn");

    ck_assert_str_eq(denied, "");
    ck_assert_str_eq(warned, "");
    free(warned);
    free(denied);
}
END_TEST

START_TEST(default_root_user_warns)
{
    static const char *const users[] = {"", "root", "0", "0:0", "root:root"};

    for (size_t i = 0; i < COUNT(users); i++) {
        char *members = NULL;
        char *denied;
        char *warned;

        ck_assert_int_gt(
            asprintf(&members, "{\"config\": {\"user\": \"%s\"}}", users[i]),
            0);
        denied = default_rules_fired(members, "deny");
        warned = default_rules_fired(members, "warn");
        ck_assert_str_eq(denied, "");
        ck_assert_str_eq(warned, "root-user");
        free(warned);
        free(denied);
        free(members);
    }
}
END_TEST

START_TEST(default_aws_credentials_deny)
{
    char *members = NULL;
    char *denied;

    ck_assert_int_gt(
        asprintf(&members,
                 "{\"files\": [{\"path\": \"root/.aws/credentials\","
                 " \"layer\": 0, \"type\": \"file\", \"mode\": 384,"
                 " \"size\": 10, \"uid\": 0, \"gid\": 0, \"present\": true}]}"),
        0);
    denied = default_rules_fired(members, "deny");
    ck_assert_str_eq(denied, "no-credential-files");
    free(denied);
    free(members);
}
END_TEST

/* The messages of the default policy's deny rules, as its
 * message_expression entries build them from the files and secrets. */
START_TEST(default_messages)
{
    static const struct expected findings[] = {
        {"no-credential-files", "deny",
         "image contains AWS credentials or an SSH private key: "
         "root/.aws/credentials (layer 0), home/app/.ssh/id_ed25519 (layer 1)",
         NULL, NULL},
        {"no-embedded-secrets", "deny",
         "image contains a secret: aws-access-key-id in app/.env (layer 1, "
         "line 3), "
         "private-key in etc/ssl/private/site.key (layer 2, line 1), "
         "github-token in the image config",
         NULL, NULL},
    };
    struct policy *policy = load_ok(NULL);
    json_t *result = evaluate_members(
        policy,
        "{\"files\": ["
        "{\"path\": \"root/.aws/credentials\", \"layer\": 0, \"type\": "
        "\"file\", \"mode\": 384, \"size\": 10, \"uid\": 0, \"gid\": 0,"
        " \"present\": false},"
        "{\"path\": \"home/app/.ssh/id_ed25519.pub\", \"layer\": 1,"
        " \"type\": \"file\", \"mode\": 420, \"size\": 10, \"uid\": 0,"
        " \"gid\": 0, \"present\": true},"
        "{\"path\": \"home/app/.ssh/id_ed25519\", \"layer\": 1, \"type\":"
        " \"file\", \"mode\": 384, \"size\": 10, \"uid\": 0, \"gid\": 0,"
        " \"present\": true}],"
        " \"secrets\": ["
        "{\"rule\": \"aws-access-key-id\", \"source\": \"layer\","
        " \"path\": \"app/.env\", \"line\": 3, \"layer\": 1,"
        " \"present\": true},"
        "{\"rule\": \"url-password\", \"source\": \"layer\","
        " \"path\": \"app/.env\", \"line\": 4, \"layer\": 1,"
        " \"present\": true},"
        "{\"rule\": \"private-key\", \"source\": \"layer\","
        " \"path\": \"etc/ssl/private/site.key\", \"line\": 1,"
        " \"layer\": 2, \"present\": false},"
        "{\"rule\": \"github-token\", \"source\": \"config\","
        " \"path\": \"\", \"line\": 0, \"layer\": null,"
        " \"present\": true}]}");

    check_findings(result, policy, "image", LIST(findings));
    policy_free(policy);
}
END_TEST

/* More than three files: the message lists three and counts the rest. */
START_TEST(default_message_counts_rest)
{
    static const struct expected findings[] = {
        {"no-credential-files", "deny",
         "image contains AWS credentials or an SSH private key: "
         "a/.ssh/id_rsa (layer 0), b/.ssh/id_rsa (layer 0), "
         "c/.ssh/id_rsa (layer 0) and 2 more",
         NULL, NULL},
    };
    static const char *const homes[] = {"a", "b", "c", "d", "e"};
    json_t *files = json_array();
    json_t *document;
    struct policy *policy = load_ok(NULL);

    for (size_t i = 0; i < COUNT(homes); i++) {
        char path[64];

        snprintf(path, sizeof(path), "%s/.ssh/id_rsa", homes[i]);
        ck_assert_int_eq(
            json_array_append_new(
                files,
                json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:b}", "path",
                          path, "layer", 0, "type", "file", "mode", 384, "size",
                          10, "uid", 0, "gid", 0, "present", 1)),
            0);
    }
    document = image_document("{}");
    ck_assert_int_eq(json_object_set_new(document, "files", files), 0);
    check_findings(evaluate_ok(policy, document), policy, "image",
                   LIST(findings));
    json_decref(document);
    policy_free(policy);
}
END_TEST

static Suite *
policy_suite(void)
{
    Suite *suite = suite_create("policy");
    TCase *load = tcase_create("load");
    TCase *cel = tcase_create("cel");
    TCase *lint = tcase_create("lint");
    TCase *directory = tcase_create("directory");
    TCase *digest = tcase_create("digest");
    TCase *evaluate = tcase_create("evaluate");
    TCase *decide = tcase_create("decide");
    TCase *source = tcase_create("source");
    TCase *lifetime = tcase_create("lifetime");
    TCase *builtin = tcase_create("default");

    tcase_add_loop_test(load, load_error_case, 0, (int)COUNT(error_cases));
    tcase_add_test(load, load_rule_not_mapping);
    tcase_add_test(load, load_version_1);
    tcase_add_test(load, load_name_max_length);
    tcase_add_test(load, load_no_rules);
    tcase_add_test(load, load_missing_file);
    tcase_add_test(load, load_yaml_error);
    tcase_add_test(load, load_file_max_size);
    tcase_add_test(load, load_file_over_max_size);
    tcase_add_test(load, load_several_problems);
    tcase_add_test(load, load_several_problems_path);
    tcase_add_test(load, load_expired_exception_warns);
    tcase_add_test(load, load_no_warnings);
    suite_add_tcase(suite, load);

    tcase_add_loop_test(cel, load_cel_position, 0,
                        (int)COUNT(cel_position_cases));
    tcase_add_loop_test(cel, load_check_error, 0, (int)COUNT(check_cases));
    suite_add_tcase(suite, cel);

    tcase_add_test(lint, lint_lists_every_problem);
    tcase_add_test(lint, lint_clean_policy);
    tcase_add_test(lint, lint_directory_order);
    tcase_add_test(lint, lint_yaml_error_position);
    tcase_add_test(lint, lint_docker_hub_short_name);
    suite_add_tcase(suite, lint);

    tcase_add_test(directory, directory_loads_in_name_order);
    tcase_add_test(directory, directory_duplicate_rule);
    tcase_add_test(directory, directory_two_failure_modes);
    tcase_add_test(directory, directory_exception_across_files);
    tcase_add_test(directory, directory_error_names_file);
    tcase_add_test(directory, directory_fifo_rejected);
    suite_add_tcase(suite, directory);

    tcase_add_test(digest, digest_form);
    tcase_add_test(digest, digest_ignores_layout);
    tcase_add_test(digest, digest_fills_defaults);
    tcase_add_loop_test(digest, digest_changes_with_rule, 0,
                        (int)COUNT(digest_variants));
    tcase_add_test(digest, digest_changes_with_exception);
    tcase_add_test(digest, digest_directory_and_names);
    suite_add_tcase(suite, digest);

    tcase_add_test(evaluate, evaluate_rules_fire);
    tcase_add_test(evaluate, evaluate_rules_do_not_fire);
    tcase_add_test(evaluate, evaluate_runtime_error);
    tcase_add_test(evaluate, evaluate_non_bool);
    tcase_add_test(evaluate, evaluate_message_expression);
    tcase_add_test(evaluate, evaluate_message_expression_fallback);
    tcase_add_test(evaluate, evaluate_message_capped);
    tcase_add_test(evaluate, evaluate_inspection_failed);
    tcase_add_test(evaluate, evaluate_inspection_failed_default_denies);
    tcase_add_test(evaluate, evaluate_inspection_failed_allow);
    tcase_add_test(evaluate, evaluate_artifact);
    tcase_add_test(evaluate, evaluate_not_object);
    tcase_add_test(evaluate, evaluate_skips_source_rules);
    tcase_add_test(evaluate, evaluate_threads);
    suite_add_tcase(suite, evaluate);

    tcase_add_loop_test(decide, decide_scope, 0, (int)COUNT(scope_cases));
    tcase_add_test(decide, decide_scope_keeps_findings);
    tcase_add_test(decide, decide_exceptions);
    tcase_add_test(decide, decide_unknown_rule);
    tcase_add_test(decide, decide_inspection_failed);
    tcase_add_test(decide, decide_artifact);
    suite_add_tcase(suite, decide);

    tcase_add_test(source, source_rules);
    tcase_add_test(source, source_rules_in_verdict);
    tcase_add_test(source, source_runtime_error);
    tcase_add_test(source, source_exception_expires);
    suite_add_tcase(suite, source);

    tcase_add_test(lifetime, ref_and_free);
    suite_add_tcase(suite, lifetime);

    tcase_add_test(builtin, default_loads);
    tcase_add_test(builtin, default_equals_file);
    tcase_add_test(builtin, default_clean_image);
    tcase_add_test(builtin, default_root_user_warns);
    tcase_add_test(builtin, default_aws_credentials_deny);
    tcase_add_test(builtin, default_messages);
    tcase_add_test(builtin, default_message_counts_rest);
    suite_add_tcase(suite, builtin);
    return suite;
}

int
main(void)
{
    SRunner *runner = srunner_create(policy_suite());
    int failed;

    srunner_run_all(runner, CK_NORMAL);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
