/*
 * Policy files (version 1): loading and validation, the policy digest, and
 * the evaluation of rules against a request's source or an image document.
 *
 * A loaded policy keeps the YAML tree it was parsed from, with defaults
 * filled in, as its canonical form: the digest is computed over that tree
 * and the rules point into its strings, so nothing is copied. Regular
 * expressions are compiled (and JIT-compiled where PCRE2 supports it) once
 * at load. Each evaluation allocates its own match data, so that several
 * threads may evaluate one policy at the same time.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <openssl/evp.h>
#include <pcre2.h>

#include "config/error.h"
#include "config/limits.h"
#include "config/yaml.h"
#include "policy/default_policy.h"
#include "policy/policy.h"

/*
 * Match limit of one regular expression match (pcre2_set_match_limit),
 * which bounds backtracking. PCRE2 builds default to 10,000,000. A pattern
 * with nested quantifiers such as '(a+)+$' backtracks exponentially on some
 * paths. At the limit the match fails, and the rule denies the image with a
 * message naming the pattern, because a rule that could not be evaluated
 * must not let an image through.
 * NOTE: this belongs in config/limits.h with the other maxima.
 */
#ifndef PG_POLICY_MATCH_LIMIT
#define PG_POLICY_MATCH_LIMIT 1000000u
#endif

/* Matching paths listed in the message of a deny_files rule that fires. */
#define POLICY_PATHS_LISTED 5

/* Secret findings listed in the message of a deny_secrets rule that
 * fires; the rest are counted. */
#define POLICY_SECRETS_LISTED 10

/* Maximum length of a rule name, from its grammar [a-z0-9][a-z0-9-]{0,62}. */
#define POLICY_RULE_NAME_MAX 63

/* The rule name used in verdicts for an image whose inspection failed. */
#define POLICY_INSPECTION_RULE "inspection-failed"

#define POLICY_BUILTIN_SOURCE "built-in default policy"

/* "sha256:", 64 hex digits and the terminating NUL. */
#define POLICY_DIGEST_SIZE (7 + 64 + 1)

enum rule_kind {
    RULE_DENIED_REGISTRIES,
    RULE_DENIED_REPOSITORIES,
    RULE_REQUIRE_NON_ROOT,
    RULE_DENY_FILES,
    RULE_DENY_SECRETS,
    RULE_KIND_COUNT,
};

enum rule_action {
    ACTION_DENY,
    ACTION_WARN,
};

/* Outcome for an image whose inspection failed (on_inspection_failure). */
enum failure_mode {
    FAILURE_DENY,
    FAILURE_WARN,
    FAILURE_ALLOW,
};

struct pattern {
    const char *text; /* points into the policy's document */
    pcre2_code *code;
};

struct pattern_list {
    struct pattern *items;
    size_t count;
};

/* One rule. Its strings and registries point into the policy's document. */
struct rule {
    const char *name;
    const char *message;
    enum rule_kind kind;
    enum rule_action action;
    const json_t *registries;         /* denied_registries */
    struct pattern_list patterns;     /* denied_repositories */
    struct pattern_list paths;        /* deny_files */
    struct pattern_list except_paths; /* deny_files */
    const json_t *secrets;            /* deny_secrets: rule names or "*" */
};

struct policy {
    char *source;
    char digest[POLICY_DIGEST_SIZE];
    json_t *document; /* the canonical form, with defaults filled in */
    enum failure_mode on_failure;
    struct rule *rules;
    size_t n_rules;
    pcre2_match_context *match_context; /* read-only after load */
};

static const char *const kind_names[RULE_KIND_COUNT] = {
    [RULE_DENIED_REGISTRIES] = "denied_registries",
    [RULE_DENIED_REPOSITORIES] = "denied_repositories",
    [RULE_REQUIRE_NON_ROOT] = "require_non_root",
    [RULE_DENY_FILES] = "deny_files",
    [RULE_DENY_SECRETS] = "deny_secrets",
};

/* The keys each kind accepts, as error messages list them. */
static const char *const kind_key_lists[RULE_KIND_COUNT] = {
    [RULE_DENIED_REGISTRIES] =
        "name, description, kind, action, message and registries",
    [RULE_DENIED_REPOSITORIES] =
        "name, description, kind, action, message and patterns",
    [RULE_REQUIRE_NON_ROOT] = "name, description, kind, action and message",
    [RULE_DENY_FILES] =
        "name, description, kind, action, message, paths and except_paths",
    [RULE_DENY_SECRETS] =
        "name, description, kind, action, message and secrets",
};

static const char *const common_rule_keys[] = {
    "name", "description", "kind", "action", "message", NULL,
};

/* Keys that only one kind accepts. */
static const struct {
    const char *key;
    enum rule_kind kind;
} kind_keys[] = {
    {"registries", RULE_DENIED_REGISTRIES},
    {"patterns", RULE_DENIED_REPOSITORIES},
    {"paths", RULE_DENY_FILES},
    {"except_paths", RULE_DENY_FILES},
    {"secrets", RULE_DENY_SECRETS},
};

static const char *const top_level_keys[] = {
    "version",
    "on_inspection_failure",
    "rules",
    NULL,
};

/* What to write when a required key is missing. */
static const struct {
    const char *key;
    const char *fix;
} missing_key_fixes[] = {
    {"version", "add \"version: 1\" at the top of the file"},
    {"name", "add a unique name such as \"no-root-images\""},
    {"kind", "add one of denied_registries, denied_repositories, "
             "require_non_root, deny_files or deny_secrets"},
    {"message", "add the text a user sees when the rule fires"},
    {"registries", "list the upstream registry names to deny, such as "
                   "[docker.io]"},
    {"patterns", "list PCRE2 patterns of the repository names to deny"},
    {"paths", "list PCRE2 patterns of the file paths to deny"},
    {"secrets", "list the secret rule names to deny, such as "
                "[private-key], or [\"*\"] for every rule"},
};

/* Loading state: the parsed file and the policy being built. */
struct loader {
    const struct yaml_doc *doc;
    struct policy *policy;
    json_t *names; /* rule name -> its name value, to find duplicates */
};

static void
out_of_memory(struct pg_error **err, const char *while_doing)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while %s; retry later", while_doing);
}

/*
 * Sets err to "NAME:LINE:COLUMN: message". Only the root of an empty file
 * has no position (line 0), and its errors point at the file's start.
 */
static void fail_at(const struct loader *ld, size_t line, size_t column,
                    struct pg_error **err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
fail_at(const struct loader *ld, size_t line, size_t column,
        struct pg_error **err, const char *fmt, ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    const char *name = yaml_doc_name(ld->doc);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    if (line == 0) {
        line = 1;
        column = 1;
    }
    pg_error_set(err, 500, PG_ERR_CONFIG, "%s:%zu:%zu: %s", name, line, column,
                 message);
}

/* Finds where member key of object is written: its value, or its key when
 * the value is true, false or null, which have no position of their own. */
static void
member_position(const struct loader *ld, const json_t *object, const char *key,
                size_t *line, size_t *column)
{
    yaml_doc_position(ld->doc, json_object_get(object, key), line, column);
    if (*line == 0)
        yaml_doc_key_position(ld->doc, object, key, line, column);
}

/* Returns the YAML name of a value's type with its article, for error
 * messages. */
static const char *
type_name(const json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT:
        return "a mapping";
    case JSON_ARRAY:
        return "a sequence";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

static const char *
type_fix(json_type type)
{
    switch (type) {
    case JSON_STRING:
        return "quote the value if it looks like a number or a boolean";
    case JSON_ARRAY:
        return "write a list, either [a, b] or one \"- item\" per line";
    case JSON_OBJECT:
        return "write \"key: value\" lines";
    default:
        return "write a whole number without quotes";
    }
}

static const char *
type_expected(json_type type)
{
    switch (type) {
    case JSON_STRING:
        return "a string";
    case JSON_ARRAY:
        return "a sequence";
    case JSON_OBJECT:
        return "a mapping";
    default:
        return "an integer";
    }
}

static bool
string_in(const char *text, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(text, list[i]) == 0)
            return true;
    }
    return false;
}

static const char *
missing_key_fix(const char *key)
{
    size_t n = sizeof(missing_key_fixes) / sizeof(missing_key_fixes[0]);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(key, missing_key_fixes[i].key) == 0)
            return missing_key_fixes[i].fix;
    }
    return "add it";
}

/*
 * Looks up member key of object; where names the object in messages ("the
 * policy", "rule \"x\""). Stores the value, or NULL when the key is absent
 * and optional.
 * Returns -1 with an error when a required key is absent or the value has
 * another type than type.
 */
static int
get_member(const struct loader *ld, json_t *object, const char *key,
           json_type type, bool required, const char *where, json_t **value,
           struct pg_error **err)
{
    size_t line;
    size_t column;

    *value = json_object_get(object, key);
    if (*value == NULL && !required)
        return 0;

    if (*value == NULL) {
        yaml_doc_position(ld->doc, object, &line, &column);
        fail_at(ld, line, column, err, "missing required key \"%s\" in %s; %s",
                key, where, missing_key_fix(key));
        return -1;
    }

    if (json_typeof(*value) != type) {
        member_position(ld, object, key, &line, &column);
        fail_at(ld, line, column, err, "\"%s\" in %s must be %s, not %s; %s",
                key, where, type_expected(type), type_name(*value),
                type_fix(type));
        return -1;
    }
    return 0;
}

/* As get_member for a string that must not be empty. */
static int
get_text(const struct loader *ld, json_t *object, const char *key,
         bool required, const char *where, const char **text,
         struct pg_error **err)
{
    json_t *value;
    size_t line;
    size_t column;
    int rc;

    *text = NULL;
    rc = get_member(ld, object, key, JSON_STRING, required, where, &value, err);
    if (rc < 0 || value == NULL)
        return rc;

    if (json_string_length(value) == 0) {
        member_position(ld, object, key, &line, &column);
        fail_at(ld, line, column, err, "\"%s\" in %s is empty; %s", key, where,
                missing_key_fix(key));
        return -1;
    }
    *text = json_string_value(value);
    return 0;
}

/* Sets member key of object to a default string when it is absent, so the
 * digest does not depend on whether the file spells out the default. */
static int
fill_default(json_t *object, const char *key, json_t *value,
             struct pg_error **err)
{
    if (value == NULL) {
        out_of_memory(err, "loading the policy");
        return -1;
    }
    if (json_object_get(object, key) != NULL) {
        json_decref(value);
        return 0;
    }
    if (json_object_set_new(object, key, value) < 0) {
        out_of_memory(err, "loading the policy");
        return -1;
    }
    return 0;
}

static int
check_top_level_keys(const struct loader *ld, json_t *root,
                     struct pg_error **err)
{
    const char *key;
    json_t *value;
    size_t line;
    size_t column;

    json_object_foreach(root, key, value)
    {
        if (string_in(key, top_level_keys))
            continue;
        yaml_doc_key_position(ld->doc, root, key, &line, &column);
        fail_at(ld, line, column, err,
                "unknown key \"%s\" in the policy; the top-level keys are "
                "version, on_inspection_failure and rules",
                key);
        return -1;
    }
    return 0;
}

static int
load_version(const struct loader *ld, json_t *root, struct pg_error **err)
{
    json_t *version;
    size_t line;
    size_t column;

    if (get_member(ld, root, "version", JSON_INTEGER, true, "the policy",
                   &version, err) < 0)
        return -1;

    if (json_integer_value(version) != 1) {
        yaml_doc_position(ld->doc, version, &line, &column);
        fail_at(ld, line, column, err,
                "unsupported policy version %" JSON_INTEGER_FORMAT
                "; this pullgate reads version 1 only, so write \"version: "
                "1\"",
                json_integer_value(version));
        return -1;
    }
    return 0;
}

static int
load_failure_mode(const struct loader *ld, json_t *root, struct pg_error **err)
{
    static const char *const modes[] = {"deny", "warn", "allow", NULL};
    const char *key = "on_inspection_failure";
    const char *mode;
    size_t line;
    size_t column;

    if (fill_default(root, key, json_string("deny"), err) < 0 ||
        get_text(ld, root, key, true, "the policy", &mode, err) < 0)
        return -1;

    for (size_t i = 0; modes[i] != NULL; i++) {
        if (strcmp(mode, modes[i]) == 0) {
            ld->policy->on_failure = (enum failure_mode)i;
            return 0;
        }
    }
    member_position(ld, root, key, &line, &column);
    fail_at(ld, line, column, err,
            "invalid on_inspection_failure \"%s\"; use deny, warn or allow",
            mode);
    return -1;
}

static bool
is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
rule_name_valid(const char *name)
{
    size_t length = strlen(name);

    if (length == 0 || length > POLICY_RULE_NAME_MAX || !is_name_start(name[0]))
        return false;
    for (size_t i = 1; i < length; i++) {
        if (!is_name_start(name[i]) && name[i] != '-')
            return false;
    }
    return true;
}

/* Loads the rule's name, checking its grammar and that it is unique. */
static int
load_name(struct loader *ld, json_t *object, size_t index, struct rule *rule,
          struct pg_error **err)
{
    char where[32];
    json_t *first;
    size_t line;
    size_t column;

    snprintf(where, sizeof(where), "rule %zu", index + 1);
    if (get_text(ld, object, "name", true, where, &rule->name, err) < 0)
        return -1;

    member_position(ld, object, "name", &line, &column);
    if (!rule_name_valid(rule->name)) {
        fail_at(ld, line, column, err,
                "invalid rule name \"%s\"; use 1 to %d lowercase letters, "
                "digits and hyphens, starting with a letter or digit",
                rule->name, POLICY_RULE_NAME_MAX);
        return -1;
    }

    /* Verdicts use this name for images whose inspection failed. */
    if (strcmp(rule->name, POLICY_INSPECTION_RULE) == 0) {
        fail_at(ld, line, column, err,
                "rule name \"%s\" is reserved for images whose inspection "
                "failed; choose another name",
                rule->name);
        return -1;
    }

    first = json_object_get(ld->names, rule->name);
    if (first != NULL) {
        size_t first_line;
        size_t first_column;

        yaml_doc_position(ld->doc, first, &first_line, &first_column);
        fail_at(ld, line, column, err,
                "duplicate rule name \"%s\" (first used at line %zu); give "
                "each rule a unique name",
                rule->name, first_line);
        return -1;
    }
    if (json_object_set(ld->names, rule->name,
                        json_object_get(object, "name")) < 0) {
        out_of_memory(err, "loading the policy");
        return -1;
    }
    return 0;
}

static int
load_kind(const struct loader *ld, json_t *object, const char *where,
          struct rule *rule, struct pg_error **err)
{
    const char *kind;
    size_t line;
    size_t column;

    if (get_text(ld, object, "kind", true, where, &kind, err) < 0)
        return -1;

    for (size_t i = 0; i < RULE_KIND_COUNT; i++) {
        if (strcmp(kind, kind_names[i]) == 0) {
            rule->kind = (enum rule_kind)i;
            return 0;
        }
    }
    member_position(ld, object, "kind", &line, &column);
    fail_at(ld, line, column, err,
            "unknown kind \"%s\" in %s; use denied_registries, "
            "denied_repositories, require_non_root, deny_files or "
            "deny_secrets",
            kind, where);
    return -1;
}

/* Checks every key of a rule against the keys its kind accepts. */
static int
check_rule_keys(const struct loader *ld, json_t *object, const char *where,
                enum rule_kind kind, struct pg_error **err)
{
    size_t n = sizeof(kind_keys) / sizeof(kind_keys[0]);
    const char *key;
    json_t *value;

    json_object_foreach(object, key, value)
    {
        size_t line;
        size_t column;
        size_t i = 0;

        if (string_in(key, common_rule_keys))
            continue;
        while (i < n && strcmp(key, kind_keys[i].key) != 0)
            i++;
        if (i < n && kind_keys[i].kind == kind)
            continue;

        yaml_doc_key_position(ld->doc, object, key, &line, &column);
        if (i < n) {
            fail_at(ld, line, column, err,
                    "key \"%s\" is not allowed in %s of kind %s; remove it, "
                    "because only %s rules read it",
                    key, where, kind_names[kind],
                    kind_names[kind_keys[i].kind]);
            return -1;
        }
        fail_at(ld, line, column, err,
                "unknown key \"%s\" in %s; the keys of a %s rule are %s", key,
                where, kind_names[kind], kind_key_lists[kind]);
        return -1;
    }
    return 0;
}

static int
load_action(const struct loader *ld, json_t *object, const char *where,
            struct rule *rule, struct pg_error **err)
{
    const char *action;
    size_t line;
    size_t column;

    if (fill_default(object, "action", json_string("deny"), err) < 0 ||
        get_text(ld, object, "action", true, where, &action, err) < 0)
        return -1;

    if (strcmp(action, "deny") == 0) {
        rule->action = ACTION_DENY;
        return 0;
    }
    if (strcmp(action, "warn") == 0) {
        rule->action = ACTION_WARN;
        return 0;
    }
    member_position(ld, object, "action", &line, &column);
    fail_at(ld, line, column, err,
            "invalid action \"%s\" in %s; use deny or warn", action, where);
    return -1;
}

/*
 * Compiles element index of list, the value of key, into pattern. Matching
 * is by bytes, because file paths in a layer need not be valid UTF-8, so
 * PCRE2_NEVER_UTF also rejects a (*UTF) at the start of a pattern.
 */
static int
compile_pattern(const struct loader *ld, const json_t *list, size_t index,
                const char *key, const char *where, struct pattern *pattern,
                struct pg_error **err)
{
    const json_t *item = json_array_get(list, index);
    PCRE2_UCHAR reason[256];
    PCRE2_SIZE offset;
    size_t line;
    size_t column;
    int code;

    pattern->text = json_string_value(item);
    pattern->code =
        pcre2_compile((PCRE2_SPTR)pattern->text, json_string_length(item),
                      PCRE2_NEVER_UTF, &code, &offset, NULL);
    if (pattern->code == NULL) {
        pcre2_get_error_message(code, reason, sizeof(reason));
        yaml_doc_index_position(ld->doc, list, index, &line, &column);
        fail_at(ld, line, column, err,
                "invalid regular expression '%s' in \"%s\" of %s: %s at "
                "offset %zu; fix the pattern (PCRE2 syntax)",
                pattern->text, key, where, (const char *)reason,
                (size_t)offset);
        return -1;
    }

    /* Without JIT support, matching falls back to the interpreter. */
    (void)pcre2_jit_compile(pattern->code, PCRE2_JIT_COMPLETE);
    return 0;
}

/*
 * Checks that every element of list, the value of key, is a non-empty
 * string, and that a required list has at least one.
 */
static int
check_string_list(const struct loader *ld, json_t *object, const char *key,
                  const char *where, bool required, struct pg_error **err)
{
    json_t *list = json_object_get(object, key);
    size_t line;
    size_t column;

    if (required && json_array_size(list) == 0) {
        member_position(ld, object, key, &line, &column);
        fail_at(ld, line, column, err, "\"%s\" in %s is empty; %s", key, where,
                missing_key_fix(key));
        return -1;
    }

    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *item = json_array_get(list, i);

        if (json_is_string(item) && json_string_length(item) > 0)
            continue;
        yaml_doc_index_position(ld->doc, list, i, &line, &column);
        if (json_is_string(item)) {
            fail_at(ld, line, column, err,
                    "item %zu of \"%s\" in %s is empty; remove it", i + 1, key,
                    where);
            return -1;
        }
        fail_at(ld, line, column, err,
                "item %zu of \"%s\" in %s must be a string, not %s; quote "
                "it",
                i + 1, key, where, type_name(item));
        return -1;
    }
    return 0;
}

/* Loads and compiles the patterns under key; an absent optional key gives
 * an empty list. */
static int
load_patterns(const struct loader *ld, json_t *object, const char *key,
              const char *where, bool required, struct pattern_list *patterns,
              struct pg_error **err)
{
    json_t *list;
    size_t count;
    int rc;

    rc = get_member(ld, object, key, JSON_ARRAY, required, where, &list, err);
    if (rc == 0)
        rc = check_string_list(ld, object, key, where, required, err);
    if (rc < 0)
        return -1;

    count = json_array_size(list);
    if (count == 0)
        return 0;

    patterns->items = calloc(count, sizeof(patterns->items[0]));
    if (patterns->items == NULL) {
        out_of_memory(err, "loading the policy");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        struct pattern *pattern = &patterns->items[i];

        if (compile_pattern(ld, list, i, key, where, pattern, err) < 0)
            return -1;
        patterns->count++;
    }
    return 0;
}

static int
load_registries(const struct loader *ld, json_t *object, const char *where,
                struct rule *rule, struct pg_error **err)
{
    json_t *list;

    if (get_member(ld, object, "registries", JSON_ARRAY, true, where, &list,
                   err) < 0 ||
        check_string_list(ld, object, "registries", where, true, err) < 0)
        return -1;
    rule->registries = list;
    return 0;
}

static int
load_secret_names(const struct loader *ld, json_t *object, const char *where,
                  struct rule *rule, struct pg_error **err)
{
    json_t *list;

    if (get_member(ld, object, "secrets", JSON_ARRAY, true, where, &list,
                   err) < 0 ||
        check_string_list(ld, object, "secrets", where, true, err) < 0)
        return -1;
    rule->secrets = list;
    return 0;
}

static int
load_file_patterns(const struct loader *ld, json_t *object, const char *where,
                   struct rule *rule, struct pg_error **err)
{
    struct pattern_list *paths = &rule->paths;
    struct pattern_list *except = &rule->except_paths;

    if (fill_default(object, "except_paths", json_array(), err) < 0 ||
        load_patterns(ld, object, "paths", where, true, paths, err) < 0)
        return -1;
    return load_patterns(ld, object, "except_paths", where, false, except, err);
}

/* Loads what only one kind of rule has. */
static int
load_kind_fields(const struct loader *ld, json_t *object, const char *where,
                 struct rule *rule, struct pg_error **err)
{
    switch (rule->kind) {
    case RULE_DENIED_REGISTRIES:
        return load_registries(ld, object, where, rule, err);
    case RULE_DENIED_REPOSITORIES:
        return load_patterns(ld, object, "patterns", where, true,
                             &rule->patterns, err);
    case RULE_DENY_FILES:
        return load_file_patterns(ld, object, where, rule, err);
    case RULE_DENY_SECRETS:
        return load_secret_names(ld, object, where, rule, err);
    default:
        return 0;
    }
}

static int
load_rule(struct loader *ld, json_t *object, size_t index, struct rule *rule,
          struct pg_error **err)
{
    /* 'rule "' + the longest name + '"' and the NUL. */
    char where[POLICY_RULE_NAME_MAX + 8];
    json_t *description;

    if (load_name(ld, object, index, rule, err) < 0)
        return -1;
    snprintf(where, sizeof(where), "rule \"%s\"", rule->name);

    if (load_kind(ld, object, where, rule, err) < 0 ||
        check_rule_keys(ld, object, where, rule->kind, err) < 0 ||
        load_action(ld, object, where, rule, err) < 0 ||
        get_text(ld, object, "message", true, where, &rule->message, err) < 0)
        return -1;

    /* The description is free text that only people read; it may be "". */
    if (get_member(ld, object, "description", JSON_STRING, false, where,
                   &description, err) < 0)
        return -1;

    return load_kind_fields(ld, object, where, rule, err);
}

static int
load_rules(struct loader *ld, json_t *root, struct pg_error **err)
{
    struct policy *policy = ld->policy;
    json_t *rules;
    size_t count;

    if (fill_default(root, "rules", json_array(), err) < 0 ||
        get_member(ld, root, "rules", JSON_ARRAY, true, "the policy", &rules,
                   err) < 0)
        return -1;

    count = json_array_size(rules);
    if (count == 0)
        return 0;
    policy->rules = calloc(count, sizeof(policy->rules[0]));
    if (policy->rules == NULL) {
        out_of_memory(err, "loading the policy");
        return -1;
    }

    for (size_t i = 0; i < count; i++) {
        json_t *object = json_array_get(rules, i);
        size_t line;
        size_t column;

        /* Counted first, so policy_free releases a half-loaded rule. */
        policy->n_rules++;
        if (!json_is_object(object)) {
            yaml_doc_index_position(ld->doc, rules, i, &line, &column);
            fail_at(ld, line, column, err,
                    "rule %zu must be a mapping, not %s; start each rule "
                    "with \"- name: ...\"",
                    i + 1, type_name(object));
            return -1;
        }
        if (load_rule(ld, object, i, &policy->rules[i], err) < 0)
            return -1;
    }
    return 0;
}

/* Stores "sha256:<hex>" of the canonical JSON form in policy->digest. */
static int
compute_digest(struct policy *policy, struct pg_error **err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *canonical;
    int rc = -1;

    canonical = json_dumps(policy->document, JSON_SORT_KEYS | JSON_COMPACT);
    if (canonical == NULL) {
        out_of_memory(err, "computing the policy digest");
        goto out;
    }
    if (EVP_Digest(canonical, strlen(canonical), md, &md_len, EVP_sha256(),
                   NULL) != 1 ||
        md_len != 32) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "SHA-256 of the policy failed in OpenSSL; check the "
                     "OpenSSL installation");
        goto out;
    }

    memcpy(policy->digest, "sha256:", 7);
    for (unsigned int i = 0; i < md_len; i++) {
        policy->digest[7 + 2 * i] = hex[md[i] >> 4];
        policy->digest[7 + 2 * i + 1] = hex[md[i] & 0x0f];
    }
    policy->digest[7 + 2 * md_len] = '\0';
    rc = 0;

out:
    free(canonical);
    return rc;
}

/* Validates the parsed file and builds the policy from it. */
static struct policy *
policy_from_doc(const struct yaml_doc *doc, struct pg_error **err)
{
    struct loader ld = {.doc = doc};
    json_t *root = yaml_doc_root(doc);
    struct policy *policy = NULL;
    struct policy *result = NULL;
    size_t line;
    size_t column;

    policy = calloc(1, sizeof(*policy));
    ld.policy = policy;
    ld.names = json_object();
    if (policy == NULL || ld.names == NULL ||
        (policy->source = strdup(yaml_doc_name(doc))) == NULL ||
        (policy->match_context = pcre2_match_context_create(NULL)) == NULL) {
        out_of_memory(err, "loading the policy");
        goto out;
    }
    pcre2_set_match_limit(policy->match_context, PG_POLICY_MATCH_LIMIT);

    if (!json_is_object(root)) {
        yaml_doc_position(doc, root, &line, &column);
        fail_at(&ld, line, column, err,
                "the policy must be a mapping, not %s; start the file "
                "with \"version: 1\"",
                type_name(root));
        goto out;
    }

    /* Shared with the document, which is freed after loading. */
    policy->document = json_incref(root);
    if (check_top_level_keys(&ld, root, err) < 0 ||
        load_version(&ld, root, err) < 0 ||
        load_failure_mode(&ld, root, err) < 0 ||
        load_rules(&ld, root, err) < 0 || compute_digest(policy, err) < 0)
        goto out;

    result = policy;
    policy = NULL;

out:
    json_decref(ld.names);
    policy_free(policy);
    return result;
}

struct policy *
policy_parse(const char *name, const char *text, size_t len,
             struct pg_error **err)
{
    struct yaml_doc *doc;
    struct policy *policy;

    doc = yaml_doc_parse(name, text, len, err);
    if (doc == NULL)
        return NULL;
    policy = policy_from_doc(doc, err);
    yaml_doc_free(doc);
    return policy;
}

struct policy *
policy_load(const char *path, struct pg_error **err)
{
    struct yaml_doc *doc;
    struct policy *policy;

    if (path == NULL)
        return policy_parse(POLICY_BUILTIN_SOURCE, policy_default_yaml,
                            policy_default_yaml_len, err);

    doc = yaml_doc_load(path, err);
    if (doc == NULL)
        return NULL;
    policy = policy_from_doc(doc, err);
    yaml_doc_free(doc);
    return policy;
}

const char *
policy_digest(const struct policy *policy)
{
    return policy->digest;
}

const char *
policy_source(const struct policy *policy)
{
    return policy->source;
}

static void
pattern_list_free(struct pattern_list *patterns)
{
    for (size_t i = 0; i < patterns->count; i++)
        pcre2_code_free(patterns->items[i].code);
    free(patterns->items);
}

void
policy_free(struct policy *policy)
{
    if (policy == NULL)
        return;

    for (size_t i = 0; i < policy->n_rules; i++) {
        pattern_list_free(&policy->rules[i].except_paths);
        pattern_list_free(&policy->rules[i].paths);
        pattern_list_free(&policy->rules[i].patterns);
    }
    free(policy->rules);
    pcre2_match_context_free(policy->match_context);
    json_decref(policy->document);
    free(policy->source);
    free(policy);
}

/*
 * Evaluation.
 */

/* A growing string; after a failed allocation every append is a no-op and
 * text_take returns NULL. */
struct text {
    char *data;
    size_t length;
    size_t capacity;
    bool failed;
};

static void
text_append(struct text *text, const char *bytes, size_t length)
{
    if (text->failed)
        return;

    if (text->capacity - text->length <= length) {
        size_t capacity = text->capacity == 0 ? 128 : text->capacity;
        char *data;

        while (capacity - text->length <= length)
            capacity *= 2;
        data = realloc(text->data, capacity);
        if (data == NULL) {
            text->failed = true;
            return;
        }
        text->data = data;
        text->capacity = capacity;
    }
    memcpy(text->data + text->length, bytes, length);
    text->length += length;
    text->data[text->length] = '\0';
}

static void
text_add(struct text *text, const char *string)
{
    text_append(text, string, strlen(string));
}

/* Returns the text as a JSON string and frees the buffer. The parts came
 * from JSON strings, so the result is valid UTF-8. */
static json_t *
text_take(struct text *text)
{
    json_t *string = NULL;

    if (!text->failed)
        string =
            json_stringn(text->data != NULL ? text->data : "", text->length);
    free(text->data);
    return string;
}

/* One evaluation: its match data and the findings so far. */
struct evaluation {
    const struct policy *policy;
    pcre2_match_data *match_data;
    json_t *denied;
    json_t *warnings;
};

static int
evaluation_start(struct evaluation *ev, const struct policy *policy)
{
    ev->policy = policy;
    ev->match_data = pcre2_match_data_create(1, NULL);
    ev->denied = json_array();
    ev->warnings = json_array();
    if (ev->match_data == NULL || ev->denied == NULL || ev->warnings == NULL)
        return -1;
    return 0;
}

static void
evaluation_clear(struct evaluation *ev)
{
    json_decref(ev->warnings);
    json_decref(ev->denied);
    pcre2_match_data_free(ev->match_data);
}

/* Builds the verdict from the findings. Returns NULL when memory is
 * short. */
static json_t *
evaluation_verdict(struct evaluation *ev)
{
    const char *decision = json_array_size(ev->denied) > 0 ? "deny" : "allow";
    json_t *verdict = json_object();

    if (verdict == NULL ||
        json_object_set_new(verdict, "decision", json_string(decision)) < 0 ||
        json_object_set_new(verdict, "policy_digest",
                            json_string(ev->policy->digest)) < 0 ||
        json_object_set(verdict, "denied", ev->denied) < 0 ||
        json_object_set(verdict, "warnings", ev->warnings) < 0) {
        json_decref(verdict);
        return NULL;
    }
    return verdict;
}

/* Appends {"rule", "message"} to list; steals message, which may be NULL
 * after a failed allocation. */
static int
add_finding(json_t *list, const char *rule, json_t *message)
{
    json_t *finding;

    if (message == NULL)
        return -1;
    finding = json_object();
    if (finding == NULL ||
        json_object_set_new(finding, "rule", json_string(rule)) < 0 ||
        json_object_set_new(finding, "message", message) < 0) {
        json_decref(finding);
        return -1;
    }
    return json_array_append_new(list, finding);
}

/* Records a rule that fired as a denial or a warning, by its action. */
static int
rule_fired(struct evaluation *ev, const struct rule *rule, json_t *message)
{
    json_t *list = rule->action == ACTION_WARN ? ev->warnings : ev->denied;

    return add_finding(list, rule->name, message);
}

/*
 * Records that a pattern of rule failed on subject, usually because it hit
 * PG_POLICY_MATCH_LIMIT. This always denies, whatever the rule's action,
 * because the rule could not be evaluated.
 */
static int
match_failed(struct evaluation *ev, const struct rule *rule,
             const struct pattern *pattern, const char *subject, int code)
{
    struct text text = {0};
    char reason[256];

    text_add(&text, "rule could not be evaluated: pattern '");
    text_add(&text, pattern->text);
    text_add(&text, "' failed on \"");
    text_add(&text, subject);
    if (code == PCRE2_ERROR_MATCHLIMIT) {
        snprintf(reason, sizeof(reason),
                 "\": match limit of %u steps exceeded; simplify the "
                 "pattern, for example by removing nested quantifiers",
                 PG_POLICY_MATCH_LIMIT);
    } else {
        char pcre_reason[200];

        pcre2_get_error_message(code, (PCRE2_UCHAR *)pcre_reason,
                                sizeof(pcre_reason));
        snprintf(reason, sizeof(reason), "\": %s; fix the pattern",
                 pcre_reason);
    }
    text_add(&text, reason);
    return add_finding(ev->denied, rule->name, text_take(&text));
}

/*
 * Matches subject against every pattern of patterns. Returns 1 when one
 * matches, 0 when none does, or a negative PCRE2 error code with *failed
 * set to the pattern that failed.
 */
static int
match_any(struct evaluation *ev, const struct pattern_list *patterns,
          const json_t *subject, const struct pattern **failed)
{
    for (size_t i = 0; i < patterns->count; i++) {
        const struct pattern *pattern = &patterns->items[i];
        int rc;

        rc = pcre2_match(pattern->code, (PCRE2_SPTR)json_string_value(subject),
                         json_string_length(subject), 0, 0, ev->match_data,
                         ev->policy->match_context);
        if (rc >= 0)
            return 1;
        if (rc != PCRE2_ERROR_NOMATCH) {
            *failed = pattern;
            return rc;
        }
    }
    return 0;
}

/* Compares two ASCII strings ignoring case, as host names compare. */
static bool
ascii_equal_ignore_case(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char ca = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char cb = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;

        if (ca != cb)
            return false;
    }
    return *a == *b;
}

static int
check_registries(struct evaluation *ev, const struct rule *rule,
                 const char *registry)
{
    size_t i;
    const json_t *name;

    if (registry == NULL)
        return 0;
    json_array_foreach(rule->registries, i, name)
    {
        if (ascii_equal_ignore_case(json_string_value(name), registry))
            return rule_fired(ev, rule, json_string(rule->message));
    }
    return 0;
}

static int
check_repository(struct evaluation *ev, const struct rule *rule,
                 const json_t *repository)
{
    const struct pattern *failed = NULL;
    int rc;

    if (repository == NULL)
        return 0;
    rc = match_any(ev, &rule->patterns, repository, &failed);
    if (rc < 0)
        return match_failed(ev, rule, failed, json_string_value(repository),
                            rc);
    if (rc == 0)
        return 0;
    return rule_fired(ev, rule, json_string(rule->message));
}

json_t *
policy_check_source(const struct policy *policy, const char *registry,
                    const char *repository, const char *reference)
{
    struct evaluation ev;
    json_t *repository_value = NULL;
    json_t *verdict = NULL;

    /* match_any takes its subject as a JSON string. */
    if (evaluation_start(&ev, policy) < 0 ||
        (repository != NULL &&
         (repository_value = json_string(repository)) == NULL))
        goto out;

    for (size_t i = 0; i < policy->n_rules; i++) {
        const struct rule *rule = &policy->rules[i];
        int rc = 0;

        if (rule->kind == RULE_DENIED_REGISTRIES)
            rc = check_registries(&ev, rule, registry);
        else if (rule->kind == RULE_DENIED_REPOSITORIES)
            rc = check_repository(&ev, rule, repository_value);
        if (rc < 0)
            goto out;
    }
    verdict = evaluation_verdict(&ev);

out:
    json_decref(repository_value);
    evaluation_clear(&ev);
    return verdict;
}

/*
 * Returns true when the len bytes at text are a decimal integer as Go's
 * strconv.Atoi reads it (an optional '+' or '-', then digits) and the
 * integer is a multiple of 2^32. A runtime that converts the parsed uid
 * to uint32 keeps it modulo 2^32, so "4294967296" and "-0" become uid 0.
 * The remainder is computed digit by digit, so numbers of any length
 * count, even those too large for Go's int, which a runtime would fail to
 * start instead.
 */
static bool
uid_is_zero(const char *text, size_t len)
{
    uint64_t remainder = 0;
    size_t i = 0;

    if (len > 0 && (text[0] == '+' || text[0] == '-'))
        i++;
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        remainder =
            (remainder * 10 + (uint64_t)(text[i] - '0')) % ((uint64_t)1 << 32);
    }
    return remainder == 0;
}

/*
 * Tells whether a USER value runs as root. runc, containerd and moby
 * read the uid part, before the first ':', as the default user (root)
 * when it is empty, as a uid when it is an integer, and as a user name
 * otherwise. So "", ":0", "root", "0", "+0", "0000" and "4294967296:1"
 * run as root.
 * NOTE: another name with uid 0 in the image's /etc/passwd, such as
 * "toor", also runs as root, but the document does not carry file
 * contents, so such a name passes this rule.
 */
static bool
user_is_root(const char *user)
{
    size_t length = strcspn(user, ":");

    if (length == 0)
        return true;
    if (length == 4 && memcmp(user, "root", 4) == 0)
        return true;
    return uid_is_zero(user, length);
}

static int
check_non_root(struct evaluation *ev, const struct rule *rule,
               const json_t *document)
{
    const json_t *user =
        json_object_get(json_object_get(document, "config"), "user");

    /* An image config without User runs as root, as Docker's does, and a
     * user that is not a string cannot be shown to be anyone else. */
    if (json_is_string(user) && !user_is_root(json_string_value(user)))
        return 0;
    return rule_fired(ev, rule, json_string(rule->message));
}

/* Returns the path of a file entry the deny_files rules read, or NULL for
 * whiteouts (which delete a file, not add one) and malformed entries. */
static const json_t *
file_path(const json_t *file)
{
    const json_t *path = json_object_get(file, "path");
    const char *type = json_string_value(json_object_get(file, "type"));

    if (!json_is_string(path))
        return NULL;
    if (type != NULL &&
        (strcmp(type, "whiteout") == 0 || strcmp(type, "opaque_whiteout") == 0))
        return NULL;
    return path;
}

/* Builds "MESSAGE (PATH, PATH, ...)". */
static json_t *
files_message(const struct rule *rule, const json_t *const *listed,
              size_t n_listed, bool more)
{
    struct text text = {0};

    text_add(&text, rule->message);
    text_add(&text, " (");
    for (size_t i = 0; i < n_listed; i++) {
        if (i > 0)
            text_add(&text, ", ");
        text_append(&text, json_string_value(listed[i]),
                    json_string_length(listed[i]));
    }
    if (more)
        text_add(&text, ", ...");
    text_add(&text, ")");
    return text_take(&text);
}

static bool
already_listed(const json_t *const *listed, size_t n_listed, const json_t *path)
{
    for (size_t i = 0; i < n_listed; i++) {
        if (json_equal(listed[i], path))
            return true;
    }
    return false;
}

/*
 * Returns 1 when path matches a pattern of paths and none of except_paths,
 * 0 when it does not, or a negative PCRE2 code with *failed set.
 */
static int
path_denied(struct evaluation *ev, const struct rule *rule, const json_t *path,
            const struct pattern **failed)
{
    int rc = match_any(ev, &rule->paths, path, failed);

    if (rc <= 0)
        return rc;
    rc = match_any(ev, &rule->except_paths, path, failed);
    if (rc < 0)
        return rc;
    return rc == 0;
}

/*
 * Runs a deny_files rule over every file of the document. A file that a
 * later layer deletes still counts, because its bytes stay in the image.
 */
static int
check_files(struct evaluation *ev, const struct rule *rule,
            const json_t *document)
{
    const json_t *listed[POLICY_PATHS_LISTED];
    size_t n_listed = 0;
    bool more = false;
    const json_t *file;
    size_t i;

    json_array_foreach(json_object_get(document, "files"), i, file)
    {
        const json_t *path = file_path(file);
        const struct pattern *failed = NULL;
        int rc;

        if (path == NULL)
            continue;
        rc = path_denied(ev, rule, path, &failed);
        if (rc < 0)
            return match_failed(ev, rule, failed, json_string_value(path), rc);
        if (rc == 0 || already_listed(listed, n_listed, path))
            continue;
        if (n_listed < POLICY_PATHS_LISTED)
            listed[n_listed++] = path;
        else
            more = true;
    }

    if (n_listed == 0)
        return 0;
    return rule_fired(ev, rule, files_message(rule, listed, n_listed, more));
}

/* Returns true when the deny_secrets rule names the secret rule name, or
 * names "*". */
static bool
secret_rule_listed(const struct rule *rule, const char *name)
{
    size_t i;
    const json_t *listed;

    json_array_foreach(rule->secrets, i, listed)
    {
        const char *text = json_string_value(listed);

        if (strcmp(text, "*") == 0 || strcmp(text, name) == 0)
            return true;
    }
    return false;
}

/*
 * Appends "RULE in PATH (layer N, line L)" for one secret finding, or
 * "(layer N)" for a finding by path alone (line 0). The finding holds no
 * matched text, so none can reach the message.
 */
static void
add_secret_text(struct text *text, const json_t *finding)
{
    const json_t *path = json_object_get(finding, "path");
    json_int_t line = json_integer_value(json_object_get(finding, "line"));
    char numbers[96];

    text_add(text, json_string_value(json_object_get(finding, "rule")));
    if (json_is_null(json_object_get(finding, "layer"))) {
        /* A finding in the image config or the manifest's annotations
         * has no file, layer or line. */
        const char *source =
            json_string_value(json_object_get(finding, "source"));

        text_add(text, source != NULL && strcmp(source, "manifest") == 0
                           ? " in the image manifest"
                           : " in the image config");
        return;
    }
    text_add(text, " in ");
    if (json_is_string(path))
        text_append(text, json_string_value(path), json_string_length(path));
    if (line > 0)
        snprintf(numbers, sizeof(numbers),
                 " (layer %" JSON_INTEGER_FORMAT ", line %" JSON_INTEGER_FORMAT
                 ")",
                 json_integer_value(json_object_get(finding, "layer")), line);
    else
        snprintf(numbers, sizeof(numbers), " (layer %" JSON_INTEGER_FORMAT ")",
                 json_integer_value(json_object_get(finding, "layer")));
    text_add(text, numbers);
}

/*
 * Runs a deny_secrets rule over the document's secret findings. A finding
 * in a file that a later layer deletes still counts, because its bytes
 * stay in the image. The message lists the first POLICY_SECRETS_LISTED
 * findings: "MESSAGE: RULE in PATH (layer N, line L), ... and N more".
 */
static int
check_secrets(struct evaluation *ev, const struct rule *rule,
              const json_t *document)
{
    struct text text = {0};
    size_t matched = 0;
    const json_t *finding;
    size_t i;

    json_array_foreach(json_object_get(document, "secrets"), i, finding)
    {
        const char *name = json_string_value(json_object_get(finding, "rule"));

        if (name == NULL || !secret_rule_listed(rule, name))
            continue;
        matched++;
        if (matched > POLICY_SECRETS_LISTED)
            continue;
        if (matched == 1) {
            text_add(&text, rule->message);
            text_add(&text, ": ");
        } else {
            text_add(&text, ", ");
        }
        add_secret_text(&text, finding);
    }

    if (matched == 0) {
        free(text.data);
        return 0;
    }
    if (matched > POLICY_SECRETS_LISTED) {
        char more[64];

        snprintf(more, sizeof(more), " and %zu more",
                 matched - POLICY_SECRETS_LISTED);
        text_add(&text, more);
    }
    return rule_fired(ev, rule, text_take(&text));
}

/* Applies on_inspection_failure to a document whose inspection failed. */
static int
inspection_failed(struct evaluation *ev, const json_t *inspection)
{
    const char *error = json_string_value(json_object_get(inspection, "error"));
    json_t *list = ev->denied;
    struct text text = {0};

    if (ev->policy->on_failure == FAILURE_ALLOW)
        return 0;
    if (ev->policy->on_failure == FAILURE_WARN)
        list = ev->warnings;

    text_add(&text, "inspection failed: ");
    text_add(&text, error != NULL ? error : "no error was recorded");
    return add_finding(list, POLICY_INSPECTION_RULE, text_take(&text));
}

static int
check_content_rules(struct evaluation *ev, const json_t *document)
{
    const struct policy *policy = ev->policy;

    for (size_t i = 0; i < policy->n_rules; i++) {
        const struct rule *rule = &policy->rules[i];
        int rc = 0;

        if (rule->kind == RULE_REQUIRE_NON_ROOT)
            rc = check_non_root(ev, rule, document);
        else if (rule->kind == RULE_DENY_FILES)
            rc = check_files(ev, rule, document);
        else if (rule->kind == RULE_DENY_SECRETS)
            rc = check_secrets(ev, rule, document);
        if (rc < 0)
            return -1;
    }
    return 0;
}

json_t *
policy_evaluate(const struct policy *policy, const json_t *document,
                struct pg_error **err)
{
    const json_t *inspection = json_object_get(document, "inspection");
    const char *status =
        json_string_value(json_object_get(inspection, "status"));
    const char *kind = json_string_value(json_object_get(document, "kind"));
    struct evaluation ev;
    json_t *verdict = NULL;
    int rc = 0;

    if (!json_is_object(document)) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "the image document is not a JSON object; this is a bug "
                     "in the inspector");
        return NULL;
    }

    if (evaluation_start(&ev, policy) < 0)
        goto out;
    if (status != NULL && strcmp(status, "failed") == 0)
        rc = inspection_failed(&ev, inspection);
    else if (kind == NULL || strcmp(kind, "artifact") != 0)
        rc = check_content_rules(&ev, document);
    if (rc == 0)
        verdict = evaluation_verdict(&ev);

out:
    if (verdict == NULL)
        out_of_memory(err, "evaluating the policy");
    evaluation_clear(&ev);
    return verdict;
}
