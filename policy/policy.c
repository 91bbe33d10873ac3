/*
 * Policy files (version 2): loading and validation, the policy digest, and
 * the evaluation of rules against a request or an image document.
 *
 * Loading reads every file of the policy and collects every problem it
 * finds, so that "pullgate policy lint" can show them all at once. A
 * policy with any error is not used. Each condition is parsed and checked
 * once, at load. A loaded policy keeps the YAML trees it was read from as
 * its canonical form: the digest is computed over them, and the rules
 * point into their strings, so nothing is copied.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "config/error.h"
#include "config/limits.h"
#include "config/utf8.h"
#include "config/yaml.h"
#include "policy/cel.h"
#include "policy/cel_check.h"
#include "policy/default_policy.h"
#include "policy/glob.h"
#include "policy/policy.h"

/* Maximum length of a rule name, from its grammar [a-z0-9][a-z0-9-]{0,62}. */
#define POLICY_RULE_NAME_MAX 63

/* Files of one directory policy, so a wrong path (a home directory) fails
 * with a message instead of reading thousands of files. */
#define POLICY_FILES_MAX 256

/* Bytes of a policy file's path. */
#define POLICY_PATH_MAX 4096

/* Rules and exceptions of one policy, across its files. */
#define POLICY_RULES_MAX 4096
#define POLICY_EXCEPTIONS_MAX 4096

/* Problems one load records; lint shows this many and stops. */
#define POLICY_PROBLEMS_MAX 1000

/* The rule name used in verdicts for an image whose inspection failed. */
#define POLICY_INSPECTION_RULE "inspection-failed"

#define POLICY_BUILTIN_SOURCE "built-in default policy"

/* The file name the built-in policy has in the digest: the name it ships
 * under, so that loading config/policy/default.yaml gives the same digest
 * and the same stored verdicts as the built-in policy. */
#define POLICY_BUILTIN_FILE "default.yaml"

/* "sha256:", 64 hex digits and the terminating NUL. */
#define POLICY_DIGEST_SIZE (7 + 64 + 1)

#define SECONDS_PER_DAY 86400

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

static const char *const action_names[] = {
    [ACTION_DENY] = "deny",
    [ACTION_WARN] = "warn",
};

/* The position where the text of a CEL expression starts in its file,
 * which turns the expression's own line and column into the file's. */
struct expr_site {
    const char *file;
    size_t line;
    size_t column;
    bool literal;
};

/* One rule. Its strings point into the policy's YAML trees. */
struct rule {
    const char *name;
    const char *message;
    enum rule_action action;
    /* Whether the condition reads no member of the image document, so it
     * is checked per request before anything is fetched. */
    bool source;
    struct cel_ast *when;
    struct cel_ast *message_expression;
    struct expr_site when_site;
    struct expr_site message_site;
    const json_t *registries; /* scope: arrays of globs, or NULL */
    const json_t *repositories;
    const json_t *tags;
};

/* One exception. Its strings point into the policy's YAML trees. */
struct exception {
    const json_t *images; /* globs */
    const json_t *rules;  /* rule names, or "*" */
    const char *reason;
    const char *expires;
    time_t until; /* the first second it no longer applies */
};

struct policy {
    atomic_uint refs;
    char *source;
    char digest[POLICY_DIGEST_SIZE];
    json_t *canonical; /* the trees of the files, with their names */
    char **files;      /* the files' names in messages, which rules point to */
    size_t n_files;
    json_t *warnings;
    enum failure_mode on_failure;
    struct rule *rules;
    size_t n_rules;
    struct exception *exceptions;
    size_t n_exceptions;
};

/* One problem found while loading. */
struct problem {
    size_t file_index;
    size_t line;
    size_t column;
    bool warning;
    char *file;
    char *message;
};

/* Loading state: the file being read and what was found so far. */
struct loader {
    struct policy *policy;
    const struct yaml_doc *doc; /* the file being read */
    const char *file;           /* its name in messages */
    size_t file_index;
    time_t now;
    struct problem *problems;
    size_t n_problems;
    size_t errors;
    json_t *names;      /* rule name -> "FILE:LINE" where it was first used */
    char *failure_file; /* the file that set on_inspection_failure */
    bool out_of_memory;
};

/* ---- Problems. ---- */

static void add_problem(struct loader *ld, bool warning, size_t line,
                        size_t column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * Records a problem at a position of the current file. Only the root of an
 * empty file has no position (line 0); its problems point at the start.
 */
static void
add_problem(struct loader *ld, bool warning, size_t line, size_t column,
            const char *fmt, ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    struct problem *slot;
    va_list ap;

    if (!warning)
        ld->errors++;
    if (ld->n_problems >= POLICY_PROBLEMS_MAX)
        return;
    if (ld->n_problems % 64 == 0) {
        struct problem *grown =
            realloc(ld->problems, (ld->n_problems + 64) * sizeof(*grown));

        if (grown == NULL) {
            ld->out_of_memory = true;
            return;
        }
        ld->problems = grown;
    }

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    slot = &ld->problems[ld->n_problems];
    slot->file_index = ld->file_index;
    slot->line = line == 0 ? 1 : line;
    slot->column = line == 0 ? 1 : column;
    slot->warning = warning;
    slot->file = strdup(ld->file);
    slot->message = strdup(message);
    if (slot->file == NULL || slot->message == NULL) {
        free(slot->file);
        free(slot->message);
        ld->out_of_memory = true;
        return;
    }
    ld->n_problems++;
}

static int
problem_compare(const void *left, const void *right)
{
    const struct problem *a = left, *b = right;

    if (a->file_index != b->file_index)
        return a->file_index < b->file_index ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->column != b->column)
        return a->column < b->column ? -1 : 1;
    return 0;
}

/* Returns the problems as policy_lint's array, warnings only when
 * warnings_only is set. Returns NULL when memory is short. */
static json_t *
problems_json(const struct loader *ld, bool warnings_only)
{
    json_t *list = json_array();

    for (size_t i = 0; list != NULL && i < ld->n_problems; i++) {
        const struct problem *p = &ld->problems[i];

        if (warnings_only && !p->warning)
            continue;
        if (json_array_append_new(
                list,
                json_pack("{s:s, s:I, s:I, s:s, s:s}", "file", p->file, "line",
                          (json_int_t)p->line, "column", (json_int_t)p->column,
                          "severity", p->warning ? "warning" : "error",
                          "message", p->message)) < 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static void
loader_clear(struct loader *ld)
{
    for (size_t i = 0; i < ld->n_problems; i++) {
        free(ld->problems[i].file);
        free(ld->problems[i].message);
    }
    free(ld->problems);
    free(ld->failure_file);
    json_decref(ld->names);
}

/* ---- Reading values. ---- */

/* Returns the YAML name of a value's type with its article. */
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

static void
value_position(const struct loader *ld, const json_t *value, size_t *line,
               size_t *column)
{
    yaml_doc_position(ld->doc, value, line, column);
}

/* Reports keys of object that are not in allowed (NULL-terminated), whose
 * names the message lists as allowed_text. */
static void
check_keys(struct loader *ld, const json_t *object, const char *where,
           const char *const *allowed, const char *allowed_text)
{
    const char *key;
    json_t *value;
    size_t line, column;

    json_object_foreach((json_t *)object, key, value)
    {
        bool known = false;

        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (known)
            continue;
        yaml_doc_key_position(ld->doc, object, key, &line, &column);
        add_problem(ld, false, line, column,
                    "unknown key \"%s\" in %s; the keys are %s", key, where,
                    allowed_text);
    }
}

/*
 * Returns member key of object when it is a string that is not empty, or
 * NULL: silently when it is absent and optional, else with a problem that
 * names what to write (fix).
 */
static const char *
get_text(struct loader *ld, const json_t *object, const char *key,
         bool required, const char *where, const char *fix)
{
    json_t *value = json_object_get(object, key);
    size_t line, column;

    if (value == NULL) {
        if (required) {
            value_position(ld, object, &line, &column);
            add_problem(ld, false, line, column,
                        "missing required key \"%s\" in %s; %s", key, where,
                        fix);
        }
        return NULL;
    }
    member_position(ld, object, key, &line, &column);
    if (!json_is_string(value)) {
        add_problem(ld, false, line, column,
                    "\"%s\" in %s must be a string, not %s; quote the value",
                    key, where, type_name(value));
        return NULL;
    }
    if (json_string_length(value) == 0) {
        add_problem(ld, false, line, column, "\"%s\" in %s is empty; %s", key,
                    where, fix);
        return NULL;
    }
    if (strlen(json_string_value(value)) != json_string_length(value)) {
        add_problem(ld, false, line, column,
                    "\"%s\" in %s contains a NUL character; remove it", key,
                    where);
        return NULL;
    }
    return json_string_value(value);
}

/* Returns member key of object when it is a sequence of non-empty strings,
 * or NULL, with a problem unless it is absent and optional. */
static const json_t *
get_string_list(struct loader *ld, const json_t *object, const char *key,
                bool required, const char *where, const char *fix)
{
    json_t *list = json_object_get(object, key), *item;
    size_t line, column, i;
    bool valid = true;

    if (list == NULL) {
        if (required) {
            value_position(ld, object, &line, &column);
            add_problem(ld, false, line, column,
                        "missing required key \"%s\" in %s; %s", key, where,
                        fix);
        }
        return NULL;
    }
    if (!json_is_array(list) || json_array_size(list) == 0) {
        member_position(ld, object, key, &line, &column);
        add_problem(ld, false, line, column,
                    "\"%s\" in %s must be a sequence of strings with at least "
                    "one item, not %s; %s",
                    key, where,
                    json_is_array(list) ? "an empty sequence" : type_name(list),
                    fix);
        return NULL;
    }
    json_array_foreach(list, i, item)
    {
        if (json_is_string(item) && json_string_length(item) > 0 &&
            strlen(json_string_value(item)) == json_string_length(item))
            continue;
        yaml_doc_index_position(ld->doc, list, i, &line, &column);
        add_problem(ld, false, line, column,
                    "item %zu of \"%s\" in %s must be a non-empty string, not "
                    "%s; quote it",
                    i + 1, key, where, type_name(item));
        valid = false;
    }
    return valid ? list : NULL;
}

/* Checks every glob of a list, reporting each invalid one. Returns whether
 * all are valid. */
static bool
check_globs(struct loader *ld, const json_t *list, const char *what)
{
    const json_t *item;
    char why[256];
    size_t line, column, i;
    bool valid = true;

    json_array_foreach(list, i, item)
    {
        if (pg_glob_check(json_string_value(item), json_string_length(item),
                          why, sizeof(why)) == 0)
            continue;
        yaml_doc_index_position(ld->doc, list, i, &line, &column);
        add_problem(ld, false, line, column, "invalid %s glob \"%s\": %s", what,
                    json_string_value(item), why);
        valid = false;
    }
    return valid;
}

/* ---- Top level. ---- */

static const char *const top_level_keys[] = {
    "version", "on_inspection_failure", "rules", "exceptions", NULL,
};

/* "kind" is the version 1 key, which gets a message of its own. */
static const char *const rule_keys[] = {
    "name",  "description", "when", "action", "message", "message_expression",
    "scope", "kind",        NULL,
};

static const char *const scope_keys[] = {
    "registries",
    "repositories",
    "tags",
    NULL,
};

static const char *const exception_keys[] = {
    "images", "rules", "reason", "expires", NULL,
};

/* Returns 0 when the file is version 2, else -1 after reporting why, in
 * which case nothing else of the file is read. */
static int
load_version(struct loader *ld, const json_t *root)
{
    json_t *version = json_object_get(root, "version");
    size_t line, column;

    if (version == NULL) {
        add_problem(ld, false, 1, 1,
                    "missing required key \"version\" in the policy; add "
                    "\"version: 2\" at the top of the file");
        return -1;
    }
    member_position(ld, root, "version", &line, &column);
    if (json_is_integer(version) && json_integer_value(version) == 2)
        return 0;
    if (json_is_integer(version) && json_integer_value(version) == 1)
        add_problem(ld, false, line, column,
                    "version 1 policies, with fixed rule kinds, are no longer "
                    "read; write each rule as a CEL \"when\" condition and "
                    "set \"version: 2\" (docs/policy.md shows the condition "
                    "for each version 1 kind)");
    else if (json_is_integer(version))
        add_problem(ld, false, line, column,
                    "unsupported policy version %" JSON_INTEGER_FORMAT
                    "; this pullgate reads version 2, so write \"version: "
                    "2\"",
                    json_integer_value(version));
    else
        add_problem(ld, false, line, column,
                    "\"version\" must be an integer, not %s; write "
                    "\"version: 2\" without quotes",
                    type_name(version));
    return -1;
}

static void
load_failure_mode(struct loader *ld, const json_t *root)
{
    static const char *const modes[] = {"deny", "warn", "allow"};
    const char *key = "on_inspection_failure";
    const char *mode;
    size_t line, column;

    if (json_object_get(root, key) == NULL)
        return;
    mode = get_text(ld, root, key, false, "the policy",
                    "write deny, warn or allow");
    if (mode == NULL)
        return;
    member_position(ld, root, key, &line, &column);
    if (ld->failure_file != NULL) {
        add_problem(ld, false, line, column,
                    "on_inspection_failure is already set in %s; set it in "
                    "one file of the policy only",
                    ld->failure_file);
        return;
    }
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strcmp(mode, modes[i]) == 0) {
            ld->policy->on_failure = (enum failure_mode)i;
            ld->failure_file = strdup(ld->file);
            if (ld->failure_file == NULL)
                ld->out_of_memory = true;
            return;
        }
    }
    add_problem(ld, false, line, column,
                "invalid on_inspection_failure \"%s\"; use deny, warn or allow",
                mode);
}

/* ---- Rules. ---- */

static bool
is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
rule_name_valid(const char *name)
{
    size_t length = strlen(name);

    if (length == 0 || length > POLICY_RULE_NAME_MAX || !is_name_char(name[0]))
        return false;
    for (size_t i = 1; i < length; i++) {
        if (!is_name_char(name[i]) && name[i] != '-')
            return false;
    }
    return true;
}

static const char *
load_name(struct loader *ld, const json_t *object, size_t index)
{
    char where[64];
    const char *name;
    const char *first;
    char place[POLICY_PATH_MAX + 32];
    size_t line, column;

    snprintf(where, sizeof(where), "rule %zu", index + 1);
    name = get_text(ld, object, "name", true, where,
                    "add a unique name such as \"no-root-images\"");
    if (name == NULL)
        return NULL;
    member_position(ld, object, "name", &line, &column);
    if (!rule_name_valid(name) || strcmp(name, POLICY_INSPECTION_RULE) == 0) {
        add_problem(ld, false, line, column,
                    "invalid rule name \"%s\"; use 1 to %d lowercase letters, "
                    "digits and dashes, starting with a letter or digit%s",
                    name, POLICY_RULE_NAME_MAX,
                    strcmp(name, POLICY_INSPECTION_RULE) == 0
                        ? ", other than inspection-failed, which pullgate "
                          "uses itself"
                        : "");
        return NULL;
    }
    first = json_string_value(json_object_get(ld->names, name));
    if (first != NULL) {
        add_problem(ld, false, line, column,
                    "duplicate rule name \"%s\" (first used at %s); give each "
                    "rule its own name",
                    name, first);
        return NULL;
    }
    snprintf(place, sizeof(place), "%s:%zu", ld->file, line);
    if (json_object_set_new(ld->names, name, json_string(place)) < 0)
        ld->out_of_memory = true;
    return name;
}

/* Turns a position inside an expression into one inside its file. */
static void
site_position(const struct expr_site *site, unsigned line, unsigned column,
              size_t *file_line, size_t *file_column)
{
    if (site->line == 0) {
        *file_line = line;
        *file_column = column;
    } else if (line <= 1) {
        *file_line = site->line;
        *file_column = site->column + column - 1;
    } else {
        /* A literal block keeps its lines and indentation; elsewhere YAML
         * folds lines, so only the line is known. */
        *file_line = site->line + line - 1;
        *file_column = site->literal ? site->column + column - 1 : column;
    }
}

/*
 * Splits a CEL message "ORIGIN:LINE:COLUMN: text" or "LINE:COLUMN: text",
 * where origin is empty, into its position and text.
 */
static const char *
split_cel_message(const char *message, unsigned *line, unsigned *column)
{
    const char *p = message[0] == ':' ? message + 1 : message;
    char *end;
    unsigned long l, c;

    *line = 1;
    *column = 1;
    l = strtoul(p, &end, 10);
    if (end == p || *end != ':')
        return message;
    p = end + 1;
    c = strtoul(p, &end, 10);
    if (end == p || end[0] != ':' || end[1] != ' ')
        return message;
    *line = (unsigned)l;
    *column = (unsigned)c;
    return end + 2;
}

/*
 * Parses and checks one expression: member key of object. want is the
 * type the result must have. Returns the tree, or NULL after reporting
 * every problem the checker finds.
 */
static struct cel_ast *
load_expression(struct loader *ld, const json_t *object, const char *key,
                const char *where, const char *want, struct expr_site *site,
                bool *reads_image, bool *reads_document)
{
    const json_t *value = json_object_get(object, key);
    struct cel_check_result check = {0};
    struct pg_error *err = NULL;
    struct cel_ast *ast;
    bool failed = false;
    size_t line, column, i;
    const json_t *problem;

    site->file = ld->file;
    yaml_doc_content_position(ld->doc, value, &site->line, &site->column,
                              &site->literal);
    ast = cel_parse(json_string_value(value), json_string_length(value), "",
                    &err);
    if (ast == NULL) {
        unsigned l, c;
        const char *text;

        if (err->status == 503) {
            ld->out_of_memory = true;
        } else {
            text = split_cel_message(err->message, &l, &c);
            yaml_doc_string_position(ld->doc, value, l, c, &line, &column);
            add_problem(ld, false, line, column, "%s of %s: %s", key, where,
                        text);
        }
        pg_error_free(err);
        return NULL;
    }

    if (cel_check(ast, CEL_ENV_POLICY, want, &check, &err) < 0) {
        pg_error_free(err);
        ld->out_of_memory = true;
        cel_ast_free(ast);
        return NULL;
    }
    json_array_foreach(check.problems, i, problem)
    {
        const char *severity =
            json_string_value(json_object_get(problem, "severity"));
        bool warning = severity != NULL && strcmp(severity, "warning") == 0;

        yaml_doc_string_position(
            ld->doc, value,
            (size_t)json_integer_value(json_object_get(problem, "line")),
            (size_t)json_integer_value(json_object_get(problem, "column")),
            &line, &column);
        add_problem(ld, warning, line, column, "%s of %s: %s", key, where,
                    json_string_value(json_object_get(problem, "message")));
        failed |= !warning;
    }
    json_decref(check.problems);
    if (failed) {
        cel_ast_free(ast);
        return NULL;
    }
    *reads_image = check.reads_image;
    *reads_document = check.reads_document;
    return ast;
}

static void
load_scope(struct loader *ld, const json_t *object, const char *where,
           struct rule *rule)
{
    const json_t *scope = json_object_get(object, "scope");
    char scope_where[128];
    size_t line, column;

    if (scope == NULL)
        return;
    if (!json_is_object(scope) || json_object_size(scope) == 0) {
        member_position(ld, object, "scope", &line, &column);
        add_problem(ld, false, line, column,
                    "scope of %s must be a mapping with registries, "
                    "repositories or tags, not %s; list globs under them or "
                    "remove the scope",
                    where,
                    json_is_object(scope) ? "an empty mapping"
                                          : type_name(scope));
        return;
    }
    snprintf(scope_where, sizeof(scope_where), "the scope of %s", where);
    check_keys(ld, scope, scope_where, scope_keys,
               "registries, repositories and tags");
    rule->registries = get_string_list(ld, scope, "registries", false,
                                       scope_where, "list registry globs");
    rule->repositories = get_string_list(ld, scope, "repositories", false,
                                         scope_where, "list repository globs");
    rule->tags = get_string_list(ld, scope, "tags", false, scope_where,
                                 "list tag globs");
    if (rule->registries != NULL)
        check_globs(ld, rule->registries, "registry");
    if (rule->repositories != NULL)
        check_globs(ld, rule->repositories, "repository");
    if (rule->tags != NULL)
        check_globs(ld, rule->tags, "tag");
}

static void
load_action(struct loader *ld, const json_t *object, const char *where,
            struct rule *rule)
{
    const char *action;
    size_t line, column;

    action = get_text(ld, object, "action", true, where, "write deny or warn");
    if (action == NULL)
        return;
    if (strcmp(action, "deny") == 0) {
        rule->action = ACTION_DENY;
    } else if (strcmp(action, "warn") == 0) {
        rule->action = ACTION_WARN;
    } else {
        member_position(ld, object, "action", &line, &column);
        add_problem(ld, false, line, column,
                    "invalid action \"%s\" in %s; use deny or warn", action,
                    where);
    }
}

/* Loads one rule into the next slot of the policy's rules. */
static void
load_rule(struct loader *ld, const json_t *object, size_t index)
{
    struct rule *rule = &ld->policy->rules[ld->policy->n_rules];
    char where[POLICY_RULE_NAME_MAX + 32];
    bool image = false, document = false, m_image = false, m_document = false;
    size_t line, column;

    memset(rule, 0, sizeof(*rule));
    if (!json_is_object(object)) {
        value_position(ld, object, &line, &column);
        add_problem(ld, false, line, column,
                    "rule %zu must be a mapping with name, when, action and "
                    "message, not %s",
                    index + 1, type_name(object));
        return;
    }
    rule->name = load_name(ld, object, index);
    if (rule->name != NULL)
        snprintf(where, sizeof(where), "rule \"%s\"", rule->name);
    else
        snprintf(where, sizeof(where), "rule %zu", index + 1);

    check_keys(ld, object, where, rule_keys,
               "name, description, when, action, message, "
               "message_expression and scope");
    if (json_object_get(object, "kind") != NULL) {
        yaml_doc_key_position(ld->doc, object, "kind", &line, &column);
        add_problem(ld, false, line, column,
                    "rule kinds are gone in version 2; write the rule's "
                    "condition as a CEL expression under \"when\" "
                    "(docs/policy.md shows the condition for each kind)");
    }
    if (json_object_get(object, "description") != NULL)
        (void)get_text(ld, object, "description", false, where,
                       "write a sentence or remove the key");
    load_action(ld, object, where, rule);
    rule->message =
        get_text(ld, object, "message",
                 json_object_get(object, "message_expression") == NULL, where,
                 "add the text a user sees when the rule fires");

    if (get_text(ld, object, "when", true, where,
                 "add a CEL condition over the image document, such as "
                 "'config.user == \"root\"'") != NULL)
        rule->when = load_expression(ld, object, "when", where, "bool",
                                     &rule->when_site, &image, &document);
    if (get_text(ld, object, "message_expression", false, where,
                 "write a CEL expression that gives a string") != NULL)
        rule->message_expression =
            load_expression(ld, object, "message_expression", where, "string",
                            &rule->message_site, &m_image, &m_document);
    load_scope(ld, object, where, rule);

    if (rule->when != NULL && image && document) {
        member_position(ld, object, "when", &line, &column);
        add_problem(ld, false, line, column,
                    "the condition of %s reads both the request (\"image\") "
                    "and the image document; a verdict is stored per image, "
                    "so limit the rule to some registries, repositories or "
                    "tags with \"scope\" instead of reading \"image\"",
                    where);
    }
    rule->source = !document;
    if (rule->message_expression != NULL &&
        (rule->source ? m_document : m_image)) {
        member_position(ld, object, "message_expression", &line, &column);
        add_problem(ld, false, line, column,
                    "message_expression of %s reads %s, but its condition "
                    "reads %s; read the same input in both",
                    where, rule->source ? "the image document" : "\"image\"",
                    rule->source ? "only the request (\"image\")"
                                 : "the image document");
    }
    ld->policy->n_rules++;
}

/* Loads one item of a top-level list into the next slot. */
typedef void (*item_loader)(struct loader *ld, const json_t *item,
                            size_t index);

/*
 * Loads the list under key (rules or exceptions), each item with load,
 * while *count stays under max. Messages name an item by noun and show
 * how it starts with first_key.
 */
static void
load_list(struct loader *ld, const json_t *root, const char *key,
          const char *first_key, const char *noun, size_t max,
          const size_t *count, item_loader load)
{
    const json_t *list = json_object_get(root, key);
    const json_t *item;
    size_t line, column, i;

    if (list == NULL)
        return;
    if (!json_is_array(list)) {
        member_position(ld, root, key, &line, &column);
        add_problem(ld, false, line, column,
                    "\"%s\" must be a sequence, not %s; write one \"- %s: "
                    "...\" item per %s",
                    key, type_name(list), first_key, noun);
        return;
    }
    json_array_foreach(list, i, item)
    {
        if (*count >= max) {
            value_position(ld, item, &line, &column);
            add_problem(ld, false, line, column,
                        "too many %ss: a policy may have %zu; merge those "
                        "that overlap",
                        noun, max);
            return;
        }
        load(ld, item, i);
    }
}

/* ---- Exceptions. ---- */

static bool
leap_year(long year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar. */
static long long
days_from_civil(long year, unsigned month, unsigned day)
{
    static const unsigned before[] = {0,   31,  59,  90,  120, 151,
                                      181, 212, 243, 273, 304, 334};
    long long days = 0;

    for (long y = 1970; y < year; y++)
        days += leap_year(y) ? 366 : 365;
    for (long y = year; y < 1970; y++)
        days -= leap_year(y) ? 366 : 365;
    days += before[month - 1] + (month > 2 && leap_year(year)) + day - 1;
    return days;
}

static bool
read_digits(const char **p, size_t count, unsigned *value)
{
    *value = 0;
    for (size_t i = 0; i < count; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        *value = *value * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += count;
    return true;
}

const char *
policy_parse_time(const char *text, bool date_is_end, time_t *out)
{
    static const char expected[] = "expected a date YYYY-MM-DD or an RFC "
                                   "3339 time such as 2027-01-01T12:00:00Z";
    static const unsigned month_days[] = {31, 29, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};
    const char *p = text;
    unsigned year, month, day, hour = 0, minute = 0, second = 0;
    unsigned off_h = 0, off_m = 0;
    long long seconds;
    int sign = 0;

    if (!read_digits(&p, 4, &year) || *p++ != '-' ||
        !read_digits(&p, 2, &month) || *p++ != '-' ||
        !read_digits(&p, 2, &day) || month < 1 || month > 12 || day < 1)
        return expected;
    if (day > month_days[month - 1] ||
        (month == 2 && day == 29 && !leap_year(year)))
        return "the day does not exist in that month";
    if (year < 1970)
        return "the year is before 1970";
    if (*p == '\0') {
        seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY;
        *out = (time_t)(seconds + (date_is_end ? SECONDS_PER_DAY : 0));
        return NULL;
    }
    if (*p != 'T' && *p != 't' && *p != ' ')
        return expected;
    p++;
    if (!read_digits(&p, 2, &hour) || *p++ != ':' ||
        !read_digits(&p, 2, &minute) || *p++ != ':' ||
        !read_digits(&p, 2, &second) || hour > 23 || minute > 59 || second > 60)
        return expected;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return expected;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!read_digits(&p, 2, &off_h) || *p++ != ':' ||
            !read_digits(&p, 2, &off_m) || off_h > 23 || off_m > 59)
            return expected;
    } else {
        return expected;
    }
    if (*p != '\0')
        return expected;
    seconds = days_from_civil(year, month, day) * SECONDS_PER_DAY +
              hour * 3600 + minute * 60 + second -
              sign * (long long)(off_h * 3600 + off_m * 60);
    *out = (time_t)seconds;
    return NULL;
}

/* Whether an image glob names a Docker Hub repository of one component
 * with no wildcard in it ("docker.io/nginx:*"), which no request has. */
static bool
docker_hub_short_name(const char *glob)
{
    const char *name = glob + 10;

    if (strncasecmp(glob, "docker.io/", 10) != 0)
        return false;
    for (; *name != '\0' && *name != ':' && *name != '@'; name++) {
        if (*name == '/' || strchr("*?[\\", *name) != NULL)
            return false;
    }
    return name > glob + 10;
}

/* Checks an image glob: REGISTRY/REPOSITORY with a tag or digest part, or
 * a manifest digest alone. */
static void
check_image_globs(struct loader *ld, const json_t *images)
{
    const json_t *item;
    size_t line, column, i;

    if (!check_globs(ld, images, "image"))
        return;
    json_array_foreach(images, i, item)
    {
        const char *glob = json_string_value(item);

        if (docker_hub_short_name(glob)) {
            yaml_doc_index_position(ld->doc, images, i, &line, &column);
            add_problem(ld, true, line, column,
                        "image glob \"%s\" can never match: pullgate names "
                        "Docker Hub's official images library/NAME, as in "
                        "docker.io/library/%s",
                        glob, glob + 10);
            continue;
        }
        if (strncmp(glob, "sha256:", 7) == 0 ||
            strncmp(glob, "sha512:", 7) == 0 || strchr(glob, '/') != NULL)
            continue;
        yaml_doc_index_position(ld->doc, images, i, &line, &column);
        add_problem(ld, false, line, column,
                    "image glob \"%s\" names no registry; write "
                    "REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@DIGEST, "
                    "such as docker.io/library/nginx:*, or a manifest "
                    "digest alone",
                    glob);
    }
}

static void
load_exception(struct loader *ld, const json_t *object, size_t index)
{
    struct exception *ex = &ld->policy->exceptions[ld->policy->n_exceptions];
    char where[64];
    size_t line, column;

    memset(ex, 0, sizeof(*ex));
    snprintf(where, sizeof(where), "exception %zu", index + 1);
    if (!json_is_object(object)) {
        value_position(ld, object, &line, &column);
        add_problem(ld, false, line, column,
                    "%s must be a mapping with images, rules, reason and "
                    "expires, not %s",
                    where, type_name(object));
        return;
    }
    check_keys(ld, object, where, exception_keys,
               "images, rules, reason and expires");
    ex->images = get_string_list(ld, object, "images", true, where,
                                 "list the images it covers, such as "
                                 "[docker.io/library/nginx:*]");
    ex->rules = get_string_list(ld, object, "rules", true, where,
                                "list the rule names it lifts, or [\"*\"]");
    ex->reason = get_text(ld, object, "reason", true, where,
                          "say why the exception exists and who approved it");
    ex->expires = get_text(ld, object, "expires", true, where,
                           "add the last day it applies, such as 2027-03-31");
    if (ex->images != NULL)
        check_image_globs(ld, ex->images);

    if (json_object_get(object, "expires") != NULL && ex->expires == NULL &&
        !json_is_string(json_object_get(object, "expires")))
        return;
    if (ex->expires != NULL) {
        member_position(ld, object, "expires", &line, &column);
        if (policy_parse_time(ex->expires, true, &ex->until) != NULL) {
            add_problem(ld, false, line, column,
                        "invalid expires \"%s\" in %s; write a date such as "
                        "2027-03-31 or an RFC 3339 time such as "
                        "2027-03-31T18:00:00Z",
                        ex->expires, where);
            ex->expires = NULL;
        } else if (ld->now >= ex->until) {
            add_problem(ld, true, line, column,
                        "%s expired on %s and no longer applies; remove it "
                        "or extend it",
                        where, ex->expires);
        }
    }
    if (ex->images != NULL && ex->rules != NULL && ex->reason != NULL &&
        ex->expires != NULL)
        ld->policy->n_exceptions++;
}

/* Reports the rule names of this file's exceptions that no file of the
 * policy defines. Runs once every file is read. */
static void
check_exception_rules(struct loader *ld, const json_t *root)
{
    const json_t *list = json_object_get(root, "exceptions");
    const json_t *item, *rules, *name;
    size_t line, column, i, j;

    json_array_foreach(list, i, item)
    {
        rules = json_object_get(item, "rules");
        if (!json_is_array(rules))
            continue;
        json_array_foreach(rules, j, name)
        {
            const char *text = json_string_value(name);

            if (text == NULL || strcmp(text, "*") == 0 ||
                strcmp(text, POLICY_INSPECTION_RULE) == 0 ||
                json_object_get(ld->names, text) != NULL)
                continue;
            yaml_doc_index_position(ld->doc, rules, j, &line, &column);
            add_problem(ld, false, line, column,
                        "exception %zu names rule \"%s\", which the policy "
                        "does not have; use one of its rule names, "
                        "inspection-failed, or \"*\"",
                        i + 1, text);
        }
    }
}

/* ---- Files. ---- */

/* Reads one parsed file into the policy. */
static void
load_file(struct loader *ld, const json_t *root)
{
    size_t line, column;

    if (!json_is_object(root)) {
        value_position(ld, root, &line, &column);
        add_problem(ld, false, line, column,
                    "the policy must be a mapping, not %s; start the file "
                    "with \"version: 2\"",
                    type_name(root));
        return;
    }
    if (load_version(ld, root) < 0)
        return;
    check_keys(ld, root, "the policy", top_level_keys,
               "version, on_inspection_failure, rules and exceptions");
    load_failure_mode(ld, root);
    load_list(ld, root, "rules", "name", "rule", POLICY_RULES_MAX,
              &ld->policy->n_rules, load_rule);
    load_list(ld, root, "exceptions", "images", "exception",
              POLICY_EXCEPTIONS_MAX, &ld->policy->n_exceptions, load_exception);
}

static bool
has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);

    return n > s && strcmp(name + n - s, suffix) == 0;
}

/* Whether text is valid UTF-8, which every name in a policy's JSON
 * forms (the digest, lint's problems) must be. jansson checks it. */
static bool
utf8_valid(const char *text)
{
    json_t *string = json_string(text);
    bool valid = string != NULL;

    json_decref(string);
    return valid;
}

/* Whether a directory entry is a policy file: YAML, not a test file, and
 * not hidden (Kubernetes mounts a ConfigMap's files next to hidden
 * "..data" entries). */
static bool
is_policy_file(const char *name)
{
    if (name[0] == '.')
        return false;
    if (has_suffix(name, ".test.yaml") || has_suffix(name, ".test.yml"))
        return false;
    return has_suffix(name, ".yaml") || has_suffix(name, ".yml");
}

static int
name_compare(const void *left, const void *right)
{
    return strcmp(*(char *const *)left, *(char *const *)right);
}

/*
 * Lists the policy files of a directory in bytewise order into *names,
 * which the caller frees with each name. Returns the count, or -1 with err
 * set.
 */
static ssize_t
list_policy_files(const char *path, char ***names, struct pg_error **err)
{
    DIR *dir = opendir(path);
    struct dirent *entry;
    char **list = NULL;
    size_t n = 0;

    *names = NULL;
    if (dir == NULL) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "%s: cannot read the policy directory: %s; check the "
                     "path and its permissions",
                     path, strerror(errno));
        return -1;
    }
    list = calloc(POLICY_FILES_MAX, sizeof(*list));
    if (list == NULL)
        goto nomem;
    while ((entry = readdir(dir)) != NULL) {
        if (!is_policy_file(entry->d_name))
            continue;
        if (!utf8_valid(entry->d_name)) {
            pg_error_set(err, 500, PG_ERR_CONFIG,
                         "%s: a policy file's name is not valid UTF-8; "
                         "rename it",
                         path);
            goto fail;
        }
        if (n == POLICY_FILES_MAX) {
            pg_error_set(err, 500, PG_ERR_CONFIG,
                         "%s: more than %d policy files; a policy directory "
                         "holds the YAML files of one policy",
                         path, POLICY_FILES_MAX);
            goto fail;
        }
        list[n] = strdup(entry->d_name);
        if (list[n] == NULL)
            goto nomem;
        n++;
    }
    closedir(dir);
    if (n > 1)
        qsort(list, n, sizeof(*list), name_compare);
    *names = list;
    return (ssize_t)n;

nomem:
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while listing %s; retry later", path);
fail:
    closedir(dir);
    for (size_t i = 0; list != NULL && i < n; i++)
        free(list[i]);
    free(list);
    return -1;
}

/* ---- The digest. ---- */

/* Stores "sha256:<hex>" of the canonical JSON form in policy->digest. */
static int
compute_digest(struct policy *policy, struct pg_error **err)
{
    static const char hex[] = "0123456789abcdef";
    static const char *const modes[] = {"deny", "warn", "allow"};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char *canonical = NULL;
    json_t *form;
    int rc = -1;

    form = json_pack("{s:s, s:O}", "on_inspection_failure",
                     modes[policy->on_failure], "files", policy->canonical);
    if (form != NULL)
        canonical = json_dumps(form, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(form);
    if (canonical == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while computing the policy digest");
        return -1;
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

/* ---- Loading. ---- */

/* One file to read: its parsed document and the name in the digest. */
struct policy_file {
    struct yaml_doc *doc;
    const char *name;
};

static void
rule_clear(struct rule *rule)
{
    cel_ast_free(rule->when);
    cel_ast_free(rule->message_expression);
}

void
policy_free(struct policy *policy)
{
    if (policy == NULL || atomic_fetch_sub(&policy->refs, 1) != 1)
        return;
    for (size_t i = 0; i < policy->n_rules; i++)
        rule_clear(&policy->rules[i]);
    free(policy->rules);
    free(policy->exceptions);
    json_decref(policy->canonical);
    json_decref(policy->warnings);
    for (size_t i = 0; i < policy->n_files; i++)
        free(policy->files[i]);
    free(policy->files);
    free(policy->source);
    free(policy);
}

struct policy *
policy_ref(struct policy *policy)
{
    atomic_fetch_add(&policy->refs, 1);
    return policy;
}

static struct policy *
policy_new(const char *source, size_t n_files)
{
    struct policy *policy = calloc(1, sizeof(*policy));

    if (policy == NULL)
        return NULL;
    atomic_init(&policy->refs, 1);
    policy->source = strdup(source);
    policy->canonical = json_array();
    /* The rules and exceptions of every file go into arrays of the
     * maxima's size; loading checks the count before adding each one. */
    policy->rules = calloc(POLICY_RULES_MAX, sizeof(*policy->rules));
    policy->exceptions =
        calloc(POLICY_EXCEPTIONS_MAX, sizeof(*policy->exceptions));
    policy->files = calloc(n_files, sizeof(*policy->files));
    if (policy->source == NULL || policy->canonical == NULL ||
        policy->rules == NULL || policy->exceptions == NULL ||
        policy->files == NULL) {
        policy_free(policy);
        return NULL;
    }
    return policy;
}

/*
 * Reads the parsed files into a new policy, recording problems in ld.
 * Returns the policy even when there are errors (the caller decides), or
 * NULL with err set when memory is short.
 */
static struct policy *
build_policy(struct loader *ld, const char *source,
             const struct policy_file *files, size_t n_files,
             struct pg_error **err)
{
    struct policy *policy = policy_new(source, n_files);

    ld->names = json_object();
    if (policy == NULL || ld->names == NULL)
        goto nomem;
    ld->policy = policy;

    for (size_t i = 0; i < n_files; i++) {
        json_t *root = yaml_doc_root(files[i].doc);
        json_t *tree;

        /* Rules point at the file's name, so the policy keeps a copy. */
        policy->files[i] = strdup(yaml_doc_name(files[i].doc));
        if (policy->files[i] == NULL)
            goto nomem;
        policy->n_files++;
        ld->doc = files[i].doc;
        ld->file = policy->files[i];
        ld->file_index = i;
        load_file(ld, root);

        /* on_inspection_failure is part of the digest once, with its
         * default filled in, whichever file sets it. */
        tree = json_is_object(root) ? json_copy(root) : json_incref(root);
        if (tree == NULL)
            goto nomem;
        if (json_is_object(tree))
            json_object_del(tree, "on_inspection_failure");
        if (json_array_append_new(policy->canonical,
                                  json_pack("{s:s, s:o}", "file", files[i].name,
                                            "policy", tree)) < 0)
            goto nomem;
    }
    for (size_t i = 0; i < n_files; i++) {
        ld->doc = files[i].doc;
        ld->file = policy->files[i];
        ld->file_index = i;
        check_exception_rules(ld, yaml_doc_root(files[i].doc));
    }
    if (n_files == 1 && policy->n_rules == 0 && ld->errors == 0) {
        ld->doc = files[0].doc;
        ld->file = policy->files[0];
        add_problem(ld, true, 1, 1,
                    "the policy has no rules, so every image is allowed; add "
                    "rules or remove the policy setting");
    }
    if (ld->out_of_memory)
        goto nomem;
    if (ld->n_problems > 1)
        qsort(ld->problems, ld->n_problems, sizeof(ld->problems[0]),
              problem_compare);
    policy->warnings = problems_json(ld, true);
    if (policy->warnings == NULL || compute_digest(policy, err) < 0)
        goto fail;
    return policy;

nomem:
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while loading the policy %s; retry later",
                 source);
fail:
    policy_free(policy);
    return NULL;
}

/*
 * Reads the files of the policy at path (a file or a directory) and
 * builds it. Returns the policy, whatever problems ld records, or NULL
 * with err set for an unreadable path or short memory.
 */
static struct policy *
read_policy(struct loader *ld, const char *path, struct pg_error **err)
{
    struct policy_file files[POLICY_FILES_MAX];
    struct policy *policy = NULL;
    struct stat st;
    char **names = NULL;
    ssize_t n = 1;

    memset(files, 0, sizeof(files));
    if (!utf8_valid(path)) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "the policy path is not valid UTF-8; rename the file or "
                     "directory");
        return NULL;
    }
    if (stat(path, &st) < 0) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "%s: cannot read the policy: %s; check the path", path,
                     strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        n = list_policy_files(path, &names, err);
        if (n < 0)
            return NULL;
        if (n == 0) {
            pg_error_set(err, 500, PG_ERR_CONFIG,
                         "%s: the policy directory has no .yaml files; add "
                         "one that starts with \"version: 2\"",
                         path);
            free(names);
            return NULL;
        }
        for (ssize_t i = 0; i < n; i++) {
            char file[POLICY_PATH_MAX];

            if ((size_t)snprintf(file, sizeof(file), "%s/%s", path, names[i]) >=
                sizeof(file)) {
                pg_error_set(err, 500, PG_ERR_CONFIG,
                             "%s/%s: the path is longer than %d bytes", path,
                             names[i], POLICY_PATH_MAX);
                goto out;
            }
            files[i].doc = yaml_doc_load(file, err);
            files[i].name = names[i];
            if (files[i].doc == NULL)
                goto out;
        }
    } else {
        const char *slash = strrchr(path, '/');

        files[0].doc = yaml_doc_load(path, err);
        files[0].name = slash != NULL ? slash + 1 : path;
        if (files[0].doc == NULL)
            return NULL;
    }
    policy = build_policy(ld, path, files, (size_t)n, err);

out:
    for (ssize_t i = 0; i < n; i++) {
        yaml_doc_free(files[i].doc);
        if (names != NULL)
            free(names[i]);
    }
    free(names);
    return policy;
}

/* Turns a policy with errors into NULL and err: the first error, and how
 * many more there are. */
static struct policy *
finish_load(struct loader *ld, struct policy *policy, const char *path,
            struct pg_error **err)
{
    const struct problem *first = NULL;

    if (policy == NULL || ld->errors == 0)
        return policy;
    for (size_t i = 0; i < ld->n_problems && first == NULL; i++) {
        if (!ld->problems[i].warning)
            first = &ld->problems[i];
    }
    if (first == NULL)
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "%s: the policy has more than %d problems; run "
                     "pullgate policy lint %s",
                     path, POLICY_PROBLEMS_MAX, path);
    else if (ld->errors == 1)
        pg_error_set(err, 500, PG_ERR_CONFIG, "%s:%zu:%zu: %s", first->file,
                     first->line, first->column, first->message);
    else
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "%s:%zu:%zu: %s (and %zu more problem%s; run "
                     "pullgate policy lint %s)",
                     first->file, first->line, first->column, first->message,
                     ld->errors - 1, ld->errors == 2 ? "" : "s", path);
    policy_free(policy);
    return NULL;
}

struct policy *
policy_parse(const char *name, const char *text, size_t len,
             struct pg_error **err)
{
    struct loader ld = {.now = time(NULL)};
    struct policy_file file;
    struct policy *policy;
    const char *slash = strrchr(name, '/');

    file.doc = yaml_doc_parse(name, text, len, err);
    if (file.doc == NULL)
        return NULL;
    file.name = strcmp(name, POLICY_BUILTIN_SOURCE) == 0 ? POLICY_BUILTIN_FILE
                : slash != NULL                          ? slash + 1
                                                         : name;
    policy = build_policy(&ld, name, &file, 1, err);
    policy = finish_load(&ld, policy, name, err);
    yaml_doc_free(file.doc);
    loader_clear(&ld);
    return policy;
}

struct policy *
policy_load(const char *path, struct pg_error **err)
{
    struct loader ld = {.now = time(NULL)};
    struct policy *policy;

    if (path == NULL)
        return policy_parse(POLICY_BUILTIN_SOURCE, policy_default_yaml,
                            policy_default_yaml_len, err);
    policy = read_policy(&ld, path, err);
    policy = finish_load(&ld, policy, path, err);
    loader_clear(&ld);
    return policy;
}

json_t *
policy_lint(const char *path, time_t now, struct pg_error **err)
{
    struct loader ld = {.now = now};
    struct pg_error *load_err = NULL;
    struct policy *policy;
    json_t *problems = NULL;
    unsigned line = 0, column = 0;

    /* Problems name their file in JSON, which holds only UTF-8. */
    if (!utf8_valid(path)) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "the policy path is not valid UTF-8; rename the file or "
                     "directory");
        return NULL;
    }

    policy = read_policy(&ld, path, &load_err);
    if (policy == NULL && load_err != NULL && load_err->status == 503) {
        *err = load_err;
        loader_clear(&ld);
        return NULL;
    }
    problems = problems_json(&ld, false);
    if (problems != NULL && load_err != NULL) {
        /* A file that is not valid YAML: its error already has its
         * position ("FILE:LINE:COLUMN: message"). The file name may hold
         * colons, so the first ":LINE:COLUMN: " ends it. */
        const char *message = load_err->message;
        const char *text = message;
        char file[POLICY_PATH_MAX] = "";

        for (const char *p = strchr(message, ':'); p != NULL;
             p = strchr(p + 1, ':')) {
            int end = 0;

            if (sscanf(p, ":%u:%u: %n", &line, &column, &end) == 2 && end > 0) {
                snprintf(file, sizeof(file), "%.*s", (int)(p - message),
                         message);
                text = p + end;
                break;
            }
            line = 0;
            column = 0;
        }
        /* An error without a position names only the path. */
        if (file[0] == '\0' && strncmp(message, path, strlen(path)) == 0 &&
            strncmp(message + strlen(path), ": ", 2) == 0)
            text = message + strlen(path) + 2;
        if (json_array_append_new(
                problems, json_pack("{s:s, s:I, s:I, s:s, s:s}", "file",
                                    file[0] != '\0' ? file : path, "line",
                                    (json_int_t)(line ? line : 1), "column",
                                    (json_int_t)(column ? column : 1),
                                    "severity", "error", "message", text)) <
            0) {
            json_decref(problems);
            problems = NULL;
        }
    }
    if (problems == NULL)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while checking the policy %s", path);
    pg_error_free(load_err);
    policy_free(policy);
    loader_clear(&ld);
    return problems;
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

const json_t *
policy_warnings(const struct policy *policy)
{
    return policy->warnings;
}

/* ---- Evaluation. ---- */

static const struct rule *
find_rule(const struct policy *policy, const char *name)
{
    for (size_t i = 0; i < policy->n_rules; i++) {
        if (strcmp(policy->rules[i].name, name) == 0)
            return &policy->rules[i];
    }
    return NULL;
}

/* Bytes of a finding's message. Clients get it in 403 bodies and
 * Warning headers, so a message_expression cannot make them huge. */
#define POLICY_MESSAGE_MAX 1024

/* Cuts message to POLICY_MESSAGE_MAX bytes at a UTF-8 character boundary,
 * ending it in "...". Returns message, or NULL when memory is short. */
static json_t *
cap_message(json_t *message)
{
    char text[POLICY_MESSAGE_MAX - 3 + 1];
    json_t *cut;

    if (json_string_length(message) <= POLICY_MESSAGE_MAX)
        return message;
    memcpy(text, json_string_value(message), sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    pg_utf8_trim(text);
    cut = json_sprintf("%s...", text);
    json_decref(message);
    return cut;
}

/* Appends {"rule", "action", "message"} to findings; steals message. */
static int
add_finding(json_t *findings, const char *rule, const char *action,
            json_t *message)
{
    json_t *finding;

    if (message != NULL)
        message = cap_message(message);
    if (message == NULL)
        return -1;
    finding = json_pack("{s:s, s:s, s:o}", "rule", rule, "action", action,
                        "message", message);
    return json_array_append_new(findings, finding);
}

/* Returns "rule NAME could not be evaluated: WHAT at FILE:LINE:COLUMN:
 * TEXT" for an evaluation error of the expression named what. */
static json_t *
error_message(const struct rule *rule, const struct expr_site *site,
              const char *what, const struct pg_error *err)
{
    unsigned l, c;
    const char *text = split_cel_message(err->message, &l, &c);
    const char *slash = strrchr(site->file, '/');
    size_t line, column;

    /* The message reaches clients in 403 responses, so it names the
     * policy file without the directories of the proxy's host.
     * NOTE: the position ignores escapes and folded lines of the YAML
     * scalar, which lint, not this message, reports exactly. */
    site_position(site, l, c, &line, &column);
    return json_sprintf(
        "rule %s could not be evaluated: %s at %s:%zu:%zu: %s", rule->name,
        what, slash != NULL ? slash + 1 : site->file, line, column, text);
}

/*
 * Evaluates a rule's message: message_expression when it gives a string,
 * else the fixed message, else a message saying why there is none.
 */
static json_t *
rule_message(const struct rule *rule, const json_t *input)
{
    struct pg_error *err = NULL;
    json_t *value, *message;

    if (rule->message_expression == NULL)
        return json_string(rule->message);
    value = cel_eval(rule->message_expression, input, &err);
    if (json_is_string(value))
        return value;
    json_decref(value);
    if (rule->message != NULL) {
        pg_error_free(err);
        return json_string(rule->message);
    }
    if (err != NULL)
        message =
            error_message(rule, &rule->message_site, "message_expression", err);
    else
        message = json_sprintf("rule %s fired; its message_expression did "
                               "not give a string",
                               rule->name);
    pg_error_free(err);
    return message;
}

/*
 * Runs one rule over input and appends a finding when it fires or fails.
 * Returns 0, or -1 when memory is short.
 */
static int
run_rule(const struct rule *rule, const json_t *input, json_t *findings)
{
    const char *action = action_names[rule->action];
    struct pg_error *err = NULL;
    json_t *value;
    int rc;

    value = cel_eval(rule->when, input, &err);
    if (value == NULL) {
        if (err != NULL && err->status == 503) {
            pg_error_free(err);
            return -1;
        }
        rc = add_finding(findings, rule->name, action,
                         error_message(rule, &rule->when_site, "when", err));
        pg_error_free(err);
        return rc;
    }
    if (!json_is_boolean(value)) {
        rc = add_finding(
            findings, rule->name, action,
            json_sprintf("rule %s could not be evaluated: its condition gave "
                         "%s, not a bool",
                         rule->name, type_name(value)));
        json_decref(value);
        return rc;
    }
    rc = json_is_true(value) ? add_finding(findings, rule->name, action,
                                           rule_message(rule, input))
                             : 0;
    json_decref(value);
    return rc;
}

static json_t *
findings_new(const struct policy *policy, const char *kind)
{
    return json_pack("{s:s, s:s, s:[]}", "policy_digest", policy->digest,
                     "kind", kind, "findings");
}

/* Adds the inspection-failed finding that on_inspection_failure sets. */
static int
inspection_failed(const struct policy *policy, const json_t *document,
                  json_t *findings)
{
    const json_t *inspection = json_object_get(document, "inspection");
    const char *error = json_string_value(json_object_get(inspection, "error"));

    if (policy->on_failure == FAILURE_ALLOW)
        return 0;
    return add_finding(
        findings, POLICY_INSPECTION_RULE,
        policy->on_failure == FAILURE_WARN ? "warn" : "deny",
        json_sprintf("inspection failed: %s",
                     error != NULL ? error : "no error was recorded"));
}

json_t *
policy_evaluate(const struct policy *policy, const json_t *document,
                struct pg_error **err)
{
    const char *status = json_string_value(
        json_object_get(json_object_get(document, "inspection"), "status"));
    const char *kind = json_string_value(json_object_get(document, "kind"));
    bool artifact = kind != NULL && strcmp(kind, "artifact") == 0;
    json_t *result, *findings;
    int rc = 0;

    if (!json_is_object(document)) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "the image document is not a JSON object; this is a bug "
                     "in the inspector");
        return NULL;
    }
    result = findings_new(policy, artifact ? "artifact" : "image");
    findings = json_object_get(result, "findings");
    if (result == NULL)
        rc = -1;
    else if (status != NULL && strcmp(status, "failed") == 0)
        rc = inspection_failed(policy, document, findings);
    else if (!artifact)
        for (size_t i = 0; i < policy->n_rules && rc == 0; i++) {
            if (!policy->rules[i].source)
                rc = run_rule(&policy->rules[i], document, findings);
        }
    if (rc < 0) {
        json_decref(result);
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while evaluating the policy");
        return NULL;
    }
    return result;
}

/* ---- Decisions. ---- */

static bool
glob_list_match(const json_t *globs, const char *text, bool ignore_case)
{
    const json_t *glob;
    size_t i;

    json_array_foreach(globs, i, glob)
    {
        if (pg_glob_match(json_string_value(glob), json_string_length(glob),
                          text, strlen(text), ignore_case))
            return true;
    }
    return false;
}

static bool
scope_matches(const struct rule *rule, const struct policy_request *request)
{
    if (rule->registries != NULL &&
        !glob_list_match(rule->registries, request->registry, true))
        return false;
    if (rule->repositories != NULL &&
        !glob_list_match(rule->repositories, request->repository, false))
        return false;
    if (rule->tags != NULL &&
        (request->tag == NULL ||
         !glob_list_match(rule->tags, request->tag, false)))
        return false;
    return true;
}

/* Matches an image glob against the request: the registry part without
 * regard to case, the rest against REPOSITORY:TAG and REPOSITORY@DIGEST. */
static bool
image_glob_matches(const char *glob, size_t glob_len,
                   const struct policy_request *request)
{
    const char *slash = memchr(glob, '/', glob_len);
    char rest[PG_NAME_MAX + PG_DIGEST_MAX + 8];
    size_t registry_len, rest_len;
    int n;

    if (slash == NULL)
        return request->digest != NULL &&
               pg_glob_match(glob, glob_len, request->digest,
                             strlen(request->digest), false);
    registry_len = (size_t)(slash - glob);
    rest_len = glob_len - registry_len - 1;
    if (!pg_glob_match(glob, registry_len, request->registry,
                       strlen(request->registry), true))
        return false;
    if (request->tag != NULL) {
        n = snprintf(rest, sizeof(rest), "%s:%s", request->repository,
                     request->tag);
        if (n > 0 && (size_t)n < sizeof(rest) &&
            pg_glob_match(slash + 1, rest_len, rest, (size_t)n, false))
            return true;
    }
    if (request->digest != NULL) {
        n = snprintf(rest, sizeof(rest), "%s@%s", request->repository,
                     request->digest);
        if (n > 0 && (size_t)n < sizeof(rest) &&
            pg_glob_match(slash + 1, rest_len, rest, (size_t)n, false))
            return true;
    }
    return false;
}

static bool
string_listed(const json_t *list, const char *name)
{
    const json_t *item;
    size_t i;

    json_array_foreach(list, i, item)
    {
        const char *text = json_string_value(item);

        if (strcmp(text, "*") == 0 || strcmp(text, name) == 0)
            return true;
    }
    return false;
}

/* Returns the first exception that lifts rule name for the request at
 * time now, or NULL. */
static const struct exception *
find_exception(const struct policy *policy, const char *name,
               const struct policy_request *request, time_t now)
{
    for (size_t i = 0; i < policy->n_exceptions; i++) {
        const struct exception *ex = &policy->exceptions[i];
        const json_t *glob;
        size_t j;

        if (now >= ex->until || !string_listed(ex->rules, name))
            continue;
        json_array_foreach(ex->images, j, glob)
        {
            if (image_glob_matches(json_string_value(glob),
                                   json_string_length(glob), request))
                return ex;
        }
    }
    return NULL;
}

json_t *
policy_decide(const struct policy *policy, const json_t *findings,
              const struct policy_request *request, time_t now)
{
    const char *kind = json_string_value(json_object_get(findings, "kind"));
    json_t *verdict, *denied, *warnings, *excepted;
    const json_t *finding;
    size_t i;

    verdict = json_pack("{s:s, s:s, s:s, s:[], s:[], s:[]}", "decision",
                        "allow", "policy_digest", policy->digest, "kind",
                        kind != NULL ? kind : "image", "denied", "warnings",
                        "excepted");
    if (verdict == NULL)
        return NULL;
    denied = json_object_get(verdict, "denied");
    warnings = json_object_get(verdict, "warnings");
    excepted = json_object_get(verdict, "excepted");

    json_array_foreach(json_object_get(findings, "findings"), i, finding)
    {
        const char *name = json_string_value(json_object_get(finding, "rule"));
        const char *action =
            json_string_value(json_object_get(finding, "action"));
        json_t *message = json_object_get(finding, "message");
        const struct rule *rule;
        const struct exception *ex;
        int rc;

        if (name == NULL || action == NULL || !json_is_string(message))
            continue;
        rule = find_rule(policy, name);
        if (rule != NULL && !scope_matches(rule, request))
            continue;
        ex = find_exception(policy, name, request, now);
        if (ex != NULL)
            rc = json_array_append_new(
                excepted, json_pack("{s:s, s:O, s:s, s:s}", "rule", name,
                                    "message", message, "reason", ex->reason,
                                    "expires", ex->expires));
        else
            rc = json_array_append_new(
                strcmp(action, "deny") == 0 ? denied : warnings,
                json_pack("{s:s, s:O}", "rule", name, "message", message));
        if (rc < 0) {
            json_decref(verdict);
            return NULL;
        }
    }
    if (json_array_size(denied) > 0 &&
        json_object_set_new(verdict, "decision", json_string("deny")) < 0) {
        json_decref(verdict);
        return NULL;
    }
    return verdict;
}

/* Builds the CEL input of a source rule: {"image": {...}}. */
static json_t *
request_input(const struct policy_request *request)
{
    json_t *image;
    json_t *reference;

    if (request->tag != NULL)
        reference = json_sprintf("%s/%s:%s", request->registry,
                                 request->repository, request->tag);
    else if (request->digest != NULL)
        reference = json_sprintf("%s/%s@%s", request->registry,
                                 request->repository, request->digest);
    else
        reference =
            json_sprintf("%s/%s", request->registry, request->repository);
    image =
        json_pack("{s:s, s:s, s:o}", "registry", request->registry,
                  "repository", request->repository, "reference", reference);
    if (image != NULL && request->tag != NULL &&
        json_object_set_new(image, "tag", json_string(request->tag)) < 0) {
        json_decref(image);
        return NULL;
    }
    if (image != NULL && request->digest != NULL &&
        json_object_set_new(image, "digest", json_string(request->digest)) <
            0) {
        json_decref(image);
        return NULL;
    }
    return image != NULL ? json_pack("{s:o}", "image", image) : NULL;
}

json_t *
policy_check_source(const struct policy *policy,
                    const struct policy_request *request, time_t now)
{
    json_t *input = request_input(request);
    json_t *result = findings_new(policy, "image");
    json_t *verdict = NULL;
    int rc = input != NULL && result != NULL ? 0 : -1;

    for (size_t i = 0; i < policy->n_rules && rc == 0; i++) {
        const struct rule *rule = &policy->rules[i];

        /* Scope is checked first, so a rule limited to one registry costs
         * nothing on requests for the others. */
        if (rule->source && scope_matches(rule, request))
            rc = run_rule(rule, input, json_object_get(result, "findings"));
    }
    if (rc == 0)
        verdict = policy_decide(policy, result, request, now);
    json_decref(result);
    json_decref(input);
    return verdict;
}

json_t *
policy_verdict(const struct policy *policy, const json_t *findings,
               const struct policy_request *request, time_t now)
{
    static const char *const lists[] = {"denied", "warnings", "excepted"};
    json_t *verdict = policy_decide(policy, findings, request, now);
    json_t *source = policy_check_source(policy, request, now);
    int rc = verdict != NULL && source != NULL ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < sizeof(lists) / sizeof(lists[0]); i++)
        rc = json_array_extend(json_object_get(verdict, lists[i]),
                               json_object_get(source, lists[i]));
    if (rc == 0 && json_array_size(json_object_get(verdict, "denied")) > 0)
        rc = json_object_set_new(verdict, "decision", json_string("deny"));
    json_decref(source);
    if (rc < 0) {
        json_decref(verdict);
        return NULL;
    }
    return verdict;
}
