/*
 * The static checker of CEL expressions. It infers a type for every node of
 * a tree from cel_parse(). The variables have the types of the image
 * document's members (docs/image-document.md). It reports what would fail
 * on every image: undeclared names, fields the document does not have,
 * functions and operators whose arguments can never match, and a result of
 * the wrong type.
 *
 * The types are CEL's: int, uint, double, string, bool, null_type,
 * list(T), map(K, V) and dyn, the type of a value not known in advance,
 * which fits everywhere. An object of the document is a map(string, dyn)
 * at run time, and the checker also has its fields. A problem inside a
 * subexpression makes the subexpression dyn, so one mistake is reported
 * once rather than again by every operator above it.
 *
 * Recursion follows the tree, whose height the parser bounds by
 * CEL_DEPTH_MAX.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "config/error.h"
#include "policy/cel.h"
#include "policy/cel_check.h"

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Problems one check reports. Beyond them the rest are dropped, because a
 * user fixes the first ones before reading on. */
#define CEL_CHECK_PROBLEMS_MAX 100

/* Bytes of a name compared for a "did you mean" hint. Longer names get no
 * hint, which keeps the edit distance table small. */
#define CEL_CHECK_HINT_NAME_MAX 64

/* Bytes of a string literal quoted in a message. */
#define CEL_CHECK_QUOTE_MAX 64

enum check_kind {
    CHECK_DYN,
    CHECK_NULL,
    CHECK_BOOL,
    CHECK_INT,
    CHECK_UINT,
    CHECK_DOUBLE,
    CHECK_STRING,
    CHECK_LIST,
    CHECK_MAP,
    CHECK_OBJECT, /* a map(string, dyn) whose fields the schema lists */
};

struct schema_object;

/*
 * One type. nullable marks a value that may also be null, such as os and
 * base_image: the checker treats it as its type, except that comparing it
 * with null is meaningful.
 */
struct check_type {
    enum check_kind kind;
    bool nullable;
    const struct check_type *key;       /* MAP */
    const struct check_type *element;   /* LIST element, MAP value */
    const struct schema_object *object; /* OBJECT */
};

struct schema_field {
    const char *name;
    const struct check_type *type;
};

/* An object of the image document: its path in jq notation, as messages
 * name it, and its fields in the order docs/image-document.md lists them. */
struct schema_object {
    const char *path;
    const struct schema_field *fields;
    size_t field_count;
};

/* ---- The schema of the image document, version 2. ---- */

static const struct check_type type_dyn = {.kind = CHECK_DYN};
static const struct check_type type_null = {.kind = CHECK_NULL};
static const struct check_type type_bool = {.kind = CHECK_BOOL};
static const struct check_type type_int = {.kind = CHECK_INT};
static const struct check_type type_uint = {.kind = CHECK_UINT};
static const struct check_type type_double = {.kind = CHECK_DOUBLE};
static const struct check_type type_string = {.kind = CHECK_STRING};
static const struct check_type type_nullable_int = {.kind = CHECK_INT,
                                                    .nullable = true};
static const struct check_type type_string_list = {.kind = CHECK_LIST,
                                                   .element = &type_string};
static const struct check_type type_string_map = {
    .kind = CHECK_MAP, .key = &type_string, .element = &type_string};

static const struct schema_field source_fields[] = {
    {"registry", &type_string},
    {"repository", &type_string},
    {"reference", &type_string},
};
static const struct schema_object source_object = {"source", source_fields,
                                                   COUNT(source_fields)};
static const struct check_type source_type = {.kind = CHECK_OBJECT,
                                              .object = &source_object};

static const struct schema_field manifest_fields[] = {
    {"digest", &type_string},          {"media_type", &type_string},
    {"config_digest", &type_string},   {"config_media_type", &type_string},
    {"annotations", &type_string_map},
};
static const struct schema_object manifest_object = {
    "manifest", manifest_fields, COUNT(manifest_fields)};
static const struct check_type manifest_type = {.kind = CHECK_OBJECT,
                                                .object = &manifest_object};

static const struct schema_field note_fields[] = {
    {"cataloger", &type_string},
    {"path", &type_string},
    {"message", &type_string},
    {"layer", &type_int},
};
static const struct schema_object note_object = {
    "inspection.notes[]", note_fields, COUNT(note_fields)};
static const struct check_type note_type = {.kind = CHECK_OBJECT,
                                            .object = &note_object};
static const struct check_type note_list_type = {.kind = CHECK_LIST,
                                                 .element = &note_type};

static const struct schema_field inspection_fields[] = {
    {"status", &type_string},
    {"error", &type_string},
    {"notes", &note_list_type},
};
static const struct schema_object inspection_object = {
    "inspection", inspection_fields, COUNT(inspection_fields)};
static const struct check_type inspection_type = {.kind = CHECK_OBJECT,
                                                  .object = &inspection_object};

static const struct schema_field platform_fields[] = {
    {"os", &type_string},
    {"architecture", &type_string},
    {"variant", &type_string},
};
static const struct schema_object platform_object = {
    "platform", platform_fields, COUNT(platform_fields)};
static const struct check_type platform_type = {.kind = CHECK_OBJECT,
                                                .object = &platform_object};

static const struct schema_field env_fields[] = {
    {"name", &type_string},
    {"value", &type_string},
};
static const struct schema_object env_object = {"config.env[]", env_fields,
                                                COUNT(env_fields)};
static const struct check_type env_type = {.kind = CHECK_OBJECT,
                                           .object = &env_object};
static const struct check_type env_list_type = {.kind = CHECK_LIST,
                                                .element = &env_type};

static const struct schema_field history_fields[] = {
    {"created", &type_string},
    {"created_by", &type_string},
    {"empty_layer", &type_bool},
    {"comment", &type_string},
};
static const struct schema_object history_object = {
    "config.history[]", history_fields, COUNT(history_fields)};
static const struct check_type history_type = {.kind = CHECK_OBJECT,
                                               .object = &history_object};
static const struct check_type history_list_type = {.kind = CHECK_LIST,
                                                    .element = &history_type};

static const struct schema_field dockerfile_fields[] = {
    {"instruction", &type_string},
    {"value", &type_string},
};
static const struct schema_object dockerfile_object = {
    "config.dockerfile[]", dockerfile_fields, COUNT(dockerfile_fields)};
static const struct check_type dockerfile_type = {.kind = CHECK_OBJECT,
                                                  .object = &dockerfile_object};
static const struct check_type dockerfile_list_type = {
    .kind = CHECK_LIST, .element = &dockerfile_type};

static const struct schema_field config_fields[] = {
    {"user", &type_string},
    {"env", &env_list_type},
    {"exposed_ports", &type_string_list},
    {"volumes", &type_string_list},
    {"labels", &type_string_map},
    {"entrypoint", &type_string_list},
    {"cmd", &type_string_list},
    {"working_dir", &type_string},
    {"created", &type_string},
    {"history", &history_list_type},
    {"dockerfile", &dockerfile_list_type},
};
static const struct schema_object config_object = {"config", config_fields,
                                                   COUNT(config_fields)};
static const struct check_type config_type = {.kind = CHECK_OBJECT,
                                              .object = &config_object};

static const struct schema_field rootfs_fields[] = {
    {"diff_ids", &type_string_list},
};
static const struct schema_object rootfs_object = {"rootfs", rootfs_fields,
                                                   COUNT(rootfs_fields)};
static const struct check_type rootfs_type = {.kind = CHECK_OBJECT,
                                              .object = &rootfs_object};

static const struct schema_field layer_fields[] = {
    {"index", &type_int},         {"digest", &type_string},
    {"media_type", &type_string}, {"size", &type_int},
    {"entries", &type_int},       {"bytes", &type_int},
};
static const struct schema_object layer_object = {"layers[]", layer_fields,
                                                  COUNT(layer_fields)};
static const struct check_type layer_type = {.kind = CHECK_OBJECT,
                                             .object = &layer_object};
static const struct check_type layer_list_type = {.kind = CHECK_LIST,
                                                  .element = &layer_type};

static const struct schema_field file_fields[] = {
    {"path", &type_string},     {"layer", &type_int},
    {"type", &type_string},     {"mode", &type_int},
    {"size", &type_int},        {"uid", &type_int},
    {"gid", &type_int},         {"present", &type_bool},
    {"link", &type_string},     {"target", &type_string},
    {"raw_path", &type_string},
};
static const struct schema_object file_object = {"files[]", file_fields,
                                                 COUNT(file_fields)};
static const struct check_type file_type = {.kind = CHECK_OBJECT,
                                            .object = &file_object};
static const struct check_type file_list_type = {.kind = CHECK_LIST,
                                                 .element = &file_type};

static const struct schema_field os_fields[] = {
    {"path", &type_string},
    {"layer", &type_int},
    {"id", &type_string},
    {"version_id", &type_string},
    {"name", &type_string},
    {"pretty_name", &type_string},
    {"version_codename", &type_string},
    {"id_like", &type_string},
};
static const struct schema_object os_object = {"os", os_fields,
                                               COUNT(os_fields)};
static const struct check_type os_type = {
    .kind = CHECK_OBJECT, .nullable = true, .object = &os_object};

static const struct schema_field distro_fields[] = {
    {"id", &type_string},
    {"version_id", &type_string},
};
static const struct schema_object distro_object = {
    "packages[].distro", distro_fields, COUNT(distro_fields)};
static const struct check_type distro_type = {
    .kind = CHECK_OBJECT, .nullable = true, .object = &distro_object};

static const struct schema_field package_fields[] = {
    {"type", &type_string},
    {"name", &type_string},
    {"version", &type_string},
    {"path", &type_string},
    {"layer", &type_int},
    {"purl", &type_string},
    {"distro", &distro_type},
    {"licenses", &type_string_list},
    {"arch", &type_string},
    {"source_name", &type_string},
    {"source_version", &type_string},
    {"epoch", &type_int},
    {"release", &type_string},
    {"location", &type_string},
    {"go_version", &type_string},
    {"main_module", &type_bool},
};
static const struct schema_object package_object = {
    "packages[]", package_fields, COUNT(package_fields)};
static const struct check_type package_type = {.kind = CHECK_OBJECT,
                                               .object = &package_object};
static const struct check_type package_list_type = {.kind = CHECK_LIST,
                                                    .element = &package_type};

static const struct schema_field secret_fields[] = {
    {"rule", &type_string},        {"source", &type_string},
    {"path", &type_string},        {"line", &type_int},
    {"layer", &type_nullable_int}, {"present", &type_bool},
};
static const struct schema_object secret_object = {"secrets[]", secret_fields,
                                                   COUNT(secret_fields)};
static const struct check_type secret_type = {.kind = CHECK_OBJECT,
                                              .object = &secret_object};
static const struct check_type secret_list_type = {.kind = CHECK_LIST,
                                                   .element = &secret_type};

static const struct schema_field summary_fields[] = {
    {"layers", &type_int},
    {"files", &type_int},
    {"present_files", &type_int},
    {"setuid_files", &type_string_list},
    {"world_writable", &type_string_list},
    {"packages", &type_int},
    {"secrets", &type_int},
};
static const struct schema_object summary_object = {"summary", summary_fields,
                                                    COUNT(summary_fields)};
static const struct check_type summary_type = {.kind = CHECK_OBJECT,
                                               .object = &summary_object};

static const struct schema_field base_image_fields[] = {
    {"name", &type_string},
    {"digest", &type_string},
    {"source", &type_string},
};
static const struct schema_object base_image_object = {
    "base_image", base_image_fields, COUNT(base_image_fields)};
static const struct check_type base_image_type = {
    .kind = CHECK_OBJECT, .nullable = true, .object = &base_image_object};

/*
 * The variables of a content rule: the members of the image document of an
 * inspected image. NOTE: an artifact's document also has artifact_type and
 * subject, which this table leaves out because artifacts get no content
 * rules, so a rule that reads them is reported as undeclared.
 */
static const struct schema_field document_fields[] = {
    {"document_version", &type_int},  {"inspector_version", &type_string},
    {"kind", &type_string},           {"source", &source_type},
    {"manifest", &manifest_type},     {"inspection", &inspection_type},
    {"platform", &platform_type},     {"config", &config_type},
    {"rootfs", &rootfs_type},         {"layers", &layer_list_type},
    {"files", &file_list_type},       {"os", &os_type},
    {"packages", &package_list_type}, {"secrets", &secret_list_type},
    {"summary", &summary_type},       {"base_image", &base_image_type},
};

/* The variable of a source rule: the request. tag and digest are present
 * only when the request names one. */
static const struct schema_field image_fields[] = {
    {"registry", &type_string},  {"repository", &type_string},
    {"reference", &type_string}, {"tag", &type_string},
    {"digest", &type_string},
};
static const struct schema_object image_object = {"image", image_fields,
                                                  COUNT(image_fields)};
static const struct check_type image_type = {.kind = CHECK_OBJECT,
                                             .object = &image_object};

/* The schemes compareVersions() and isVersion() accept. */
static const char *const version_schemes[] = {
    "deb", "apk", "rpm", "semver", "pep440", "npm", "golang", "pypi",
};

/* ---- The functions. ---- */

#define KIND(k) (1u << (k))
#define NUMBER_KINDS (KIND(CHECK_INT) | KIND(CHECK_UINT) | KIND(CHECK_DOUBLE))
#define MAP_KEY_KINDS                                                          \
    (KIND(CHECK_STRING) | KIND(CHECK_INT) | KIND(CHECK_UINT) | KIND(CHECK_BOOL))

/*
 * One function of cel_eval.c with its single overload: the number of
 * arguments counting the receiver, whether it is called as f(x), x.f()
 * or both, the kinds each argument accepts (an object is a map), and the
 * kind of the result. usage and takes complete messages.
 */
struct check_function {
    const char *name;
    size_t arguments;
    bool global;
    bool method;
    unsigned accepts[3];
    enum check_kind result;
    const char *usage;
    const char *takes;
};

static const struct check_function functions[] = {
    {"size",
     1,
     true,
     true,
     {KIND(CHECK_STRING) | KIND(CHECK_LIST) | KIND(CHECK_MAP)},
     CHECK_INT,
     "size(value) or value.size()",
     "a string, a list or a map"},
    {"int",
     1,
     true,
     false,
     {NUMBER_KINDS | KIND(CHECK_STRING)},
     CHECK_INT,
     "int(value)",
     "an int, a uint, a double or a string"},
    {"uint",
     1,
     true,
     false,
     {NUMBER_KINDS | KIND(CHECK_STRING)},
     CHECK_UINT,
     "uint(value)",
     "an int, a uint, a double or a string"},
    {"double",
     1,
     true,
     false,
     {NUMBER_KINDS | KIND(CHECK_STRING)},
     CHECK_DOUBLE,
     "double(value)",
     "an int, a uint, a double or a string"},
    {"string",
     1,
     true,
     false,
     {NUMBER_KINDS | KIND(CHECK_STRING) | KIND(CHECK_BOOL)},
     CHECK_STRING,
     "string(value)",
     "a string, a number or a bool"},
    {"contains",
     2,
     false,
     true,
     {KIND(CHECK_STRING), KIND(CHECK_STRING)},
     CHECK_BOOL,
     "text.contains(part)",
     "(string, string)"},
    {"startsWith",
     2,
     false,
     true,
     {KIND(CHECK_STRING), KIND(CHECK_STRING)},
     CHECK_BOOL,
     "text.startsWith(prefix)",
     "(string, string)"},
    {"endsWith",
     2,
     false,
     true,
     {KIND(CHECK_STRING), KIND(CHECK_STRING)},
     CHECK_BOOL,
     "text.endsWith(suffix)",
     "(string, string)"},
    {"lowerAscii",
     1,
     false,
     true,
     {KIND(CHECK_STRING)},
     CHECK_STRING,
     "text.lowerAscii()",
     "a string"},
    {"upperAscii",
     1,
     false,
     true,
     {KIND(CHECK_STRING)},
     CHECK_STRING,
     "text.upperAscii()",
     "a string"},
    {"matches",
     2,
     true,
     true,
     {KIND(CHECK_STRING), KIND(CHECK_STRING)},
     CHECK_BOOL,
     "matches(text, regex) or text.matches(regex)",
     "(string, string)"},
    {"matchesGlob",
     2,
     true,
     true,
     {KIND(CHECK_STRING), KIND(CHECK_STRING)},
     CHECK_BOOL,
     "matchesGlob(text, glob) or text.matchesGlob(glob)",
     "(string, string)"},
    {"compareVersions",
     3,
     true,
     false,
     {KIND(CHECK_STRING), KIND(CHECK_STRING), KIND(CHECK_STRING)},
     CHECK_INT,
     "compareVersions(scheme, a, b)",
     "(string, string, string)"},
    {"isVersion",
     2,
     true,
     false,
     {KIND(CHECK_STRING), KIND(CHECK_STRING)},
     CHECK_BOOL,
     "isVersion(scheme, text)",
     "(string, string)"},
};

/* The macros, which the parser turns into presence tests and
 * comprehensions. A call by one of these names reached the checker
 * because its form was wrong. */
static const struct {
    const char *name;
    const char *usage;
} macros[] = {
    {"has", "has(object.field)"},
    {"all", "list.all(x, predicate)"},
    {"exists", "list.exists(x, predicate)"},
    {"exists_one", "list.exists_one(x, predicate)"},
    {"filter", "list.filter(x, predicate)"},
    {"map", "list.map(x, transform) or list.map(x, predicate, transform)"},
};

static const char *const macro_names[] = {
    [CEL_MACRO_NONE] = "?",        [CEL_MACRO_ALL] = "all",
    [CEL_MACRO_EXISTS] = "exists", [CEL_MACRO_EXISTS_ONE] = "exists_one",
    [CEL_MACRO_FILTER] = "filter", [CEL_MACRO_MAP] = "map",
};

/* ---- The checker's state. ---- */

struct problem {
    unsigned line;
    unsigned column;
    bool warning;
    size_t order; /* keeps problems at one position in the order found */
    char *message;
};

/* A type built during the check, such as the type of a list literal. */
struct type_block {
    struct type_block *next;
    struct check_type type;
};

/* A macro's iteration variable and the type of its elements. */
struct binding {
    const char *name;
    const struct check_type *type;
};

struct check {
    enum cel_check_env env;
    struct binding bindings[CEL_DEPTH_MAX];
    size_t binding_count;
    struct problem problems[CEL_CHECK_PROBLEMS_MAX];
    size_t problem_count;
    struct type_block *blocks;
    bool reads_image;
    bool reads_document;
    bool out_of_memory;
};

static const struct check_type *check_node(struct check *c,
                                           const struct cel_ast *ast);

static void report(struct check *c, const struct cel_ast *at, bool warning,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records a problem at the position of node at. Once the maximum is
 * reached, further problems are dropped. */
static void
report(struct check *c, const struct cel_ast *at, bool warning, const char *fmt,
       ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    struct problem *problem;
    va_list ap;

    if (c->problem_count == CEL_CHECK_PROBLEMS_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    problem = &c->problems[c->problem_count];
    problem->message = strdup(message);
    if (problem->message == NULL) {
        c->out_of_memory = true;
        return;
    }
    problem->line = at->line;
    problem->column = at->column;
    problem->warning = warning;
    problem->order = c->problem_count;
    c->problem_count++;
}

/* Returns a new type that lives until the check ends, copied from
 * model, or dyn when memory is short. */
static const struct check_type *
new_type(struct check *c, const struct check_type *model)
{
    struct type_block *block = malloc(sizeof(*block));

    if (block == NULL) {
        c->out_of_memory = true;
        return &type_dyn;
    }
    block->type = *model;
    block->next = c->blocks;
    c->blocks = block;
    return &block->type;
}

static const struct check_type *
list_of(struct check *c, const struct check_type *element)
{
    struct check_type list = {.kind = CHECK_LIST, .element = element};

    if (element == &type_string)
        return &type_string_list;
    return new_type(c, &list);
}

/* ---- Type names and comparisons. ---- */

static bool
is_dyn(const struct check_type *t)
{
    return t->kind == CHECK_DYN;
}

static bool
is_number(const struct check_type *t)
{
    return t->kind == CHECK_INT || t->kind == CHECK_UINT ||
           t->kind == CHECK_DOUBLE;
}

/* Whether a value of type t is a map at run time. */
static bool
is_map(const struct check_type *t)
{
    return t->kind == CHECK_MAP || t->kind == CHECK_OBJECT;
}

/* Whether a function argument's accepted kinds admit type t. */
static bool
accepts_type(unsigned kinds, const struct check_type *t)
{
    if (is_dyn(t))
        return true;
    if (t->kind == CHECK_OBJECT)
        return (kinds & KIND(CHECK_MAP)) != 0;
    return (kinds & KIND(t->kind)) != 0;
}

/* Appends text to buffer, which has size bytes of which *len are used,
 * and cuts it at the end of the buffer. */
static void
append(char *buffer, size_t size, size_t *len, const char *text)
{
    size_t n = strlen(text);

    if (*len + 1 >= size)
        return;
    if (n > size - 1 - *len)
        n = size - 1 - *len;
    memcpy(buffer + *len, text, n);
    *len += n;
    buffer[*len] = '\0';
}

static void
append_type(const struct check_type *t, char *buffer, size_t size, size_t *len)
{
    static const char *const names[] = {
        [CHECK_DYN] = "dyn",       [CHECK_NULL] = "null_type",
        [CHECK_BOOL] = "bool",     [CHECK_INT] = "int",
        [CHECK_UINT] = "uint",     [CHECK_DOUBLE] = "double",
        [CHECK_STRING] = "string", [CHECK_OBJECT] = "map(string, dyn)",
    };

    switch (t->kind) {
    case CHECK_LIST:
        append(buffer, size, len, "list(");
        append_type(t->element, buffer, size, len);
        append(buffer, size, len, ")");
        break;
    case CHECK_MAP:
        append(buffer, size, len, "map(");
        append_type(t->key, buffer, size, len);
        append(buffer, size, len, ", ");
        append_type(t->element, buffer, size, len);
        append(buffer, size, len, ")");
        break;
    default:
        append(buffer, size, len, names[t->kind]);
        break;
    }
}

/* Writes the CEL name of type t, such as list(map(string, dyn)), into
 * text. An object of the document is the map it is at run time. */
static void
format_type(const struct check_type *t, char *text, size_t size)
{
    size_t len = 0;

    text[0] = '\0';
    append_type(t, text, size, &len);
}

/* Writes the type with its article, "an int" or "a list(string)", or
 * "null" for null_type. */
static void
describe_type(const struct check_type *t, char *text, size_t size)
{
    char name[256];

    format_type(t, name, sizeof(name));
    if (t->kind == CHECK_NULL)
        snprintf(text, size, "null");
    else
        snprintf(text, size, "%s %s",
                 t->kind == CHECK_INT || t->kind == CHECK_UINT ? "an" : "a",
                 name);
}

/* Writes "T1, T2, ..." for the types of count operands. */
static void
format_types(const struct check_type *const *types, size_t count, char *text,
             size_t size)
{
    size_t len = 0;

    text[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            append(text, size, &len, ", ");
        append_type(types[i], text, size, &len);
    }
}

/*
 * The class of values CEL's heterogeneous equality can find equal: the
 * numbers compare across int, uint and double, and any two values of
 * different classes are unequal. Returns -1 for dyn.
 */
static int
equality_class(const struct check_type *t)
{
    switch (t->kind) {
    case CHECK_DYN:
        return -1;
    case CHECK_UINT:
    case CHECK_DOUBLE:
        return CHECK_INT;
    case CHECK_OBJECT:
        return CHECK_MAP;
    default:
        return (int)t->kind;
    }
}

/* Whether a value of type a can never equal a value of type b. */
static bool
never_equal(const struct check_type *a, const struct check_type *b)
{
    int x = equality_class(a), y = equality_class(b);

    if (x < 0 || y < 0 || x == y)
        return false;
    /* A nullable value can be null. */
    if ((a->kind == CHECK_NULL && b->nullable) ||
        (b->kind == CHECK_NULL && a->nullable))
        return false;
    return true;
}

static bool
same_type(const struct check_type *a, const struct check_type *b)
{
    if (a == b)
        return true;
    if (a->kind != b->kind || a->nullable != b->nullable)
        return false;
    switch (a->kind) {
    case CHECK_LIST:
        return same_type(a->element, b->element);
    case CHECK_MAP:
        return same_type(a->key, b->key) && same_type(a->element, b->element);
    case CHECK_OBJECT:
        return a->object == b->object;
    default:
        return true;
    }
}

/* Returns the type a value of type t, or null, has. */
static const struct check_type *
with_null(struct check *c, const struct check_type *t)
{
    struct check_type copy = *t;

    if (t->nullable || is_dyn(t) || t->kind == CHECK_NULL)
        return t;
    copy.nullable = true;
    return new_type(c, &copy);
}

/*
 * Returns the type of a value that is of type a or of type b, as the
 * elements of a list literal and the branches of a conditional are:
 * their common type, or dyn when they have none.
 */
static const struct check_type *
join_types(struct check *c, const struct check_type *a,
           const struct check_type *b)
{
    struct check_type joined;

    if (same_type(a, b))
        return a;
    if (a->kind == CHECK_NULL)
        return with_null(c, b);
    if (b->kind == CHECK_NULL)
        return with_null(c, a);
    if (is_dyn(a) || is_dyn(b) || a->kind != b->kind)
        return &type_dyn;

    joined = *a;
    joined.nullable = a->nullable || b->nullable;
    switch (a->kind) {
    case CHECK_LIST:
        joined.element = join_types(c, a->element, b->element);
        break;
    case CHECK_MAP:
        joined.key = join_types(c, a->key, b->key);
        joined.element = join_types(c, a->element, b->element);
        break;
    case CHECK_OBJECT:
        if (a->object != b->object)
            return &type_dyn;
        break;
    default:
        break;
    }
    return new_type(c, &joined);
}

/* ---- Names and "did you mean" hints. ---- */

/*
 * Returns the optimal string alignment distance between a and b: the
 * insertions, deletions, substitutions and swaps of two neighbouring
 * characters that turn one into the other. Both are at most
 * CEL_CHECK_HINT_NAME_MAX bytes.
 */
static size_t
edit_distance(const char *a, size_t n, const char *b, size_t m)
{
    /* A distance is at most CEL_CHECK_HINT_NAME_MAX, so it fits a byte. */
    unsigned char d[CEL_CHECK_HINT_NAME_MAX + 1][CEL_CHECK_HINT_NAME_MAX + 1];

    for (size_t i = 0; i <= n; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned best = d[i - 1][j - 1] + cost;

            if (d[i - 1][j] + 1u < best)
                best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (unsigned char)best;
        }
    }
    return d[n][m];
}

/* Keeps the closest candidate to a name while hints are collected. */
struct hint {
    const char *name;
    size_t name_len;
    const char *best;
    size_t distance;
};

/*
 * Considers candidate as a hint for the name. A candidate is close when
 * at most two edits, and at most a third of the longer name, separate
 * them, so "usr" suggests "user" but "x" suggests nothing.
 */
static void
consider_hint(struct hint *h, const char *candidate)
{
    size_t len = strlen(candidate);
    size_t longer = len > h->name_len ? len : h->name_len;
    size_t distance;

    if (h->name_len > CEL_CHECK_HINT_NAME_MAX || len > CEL_CHECK_HINT_NAME_MAX)
        return;
    distance = edit_distance(h->name, h->name_len, candidate, len);
    if (distance == 0 || distance > 2 || distance * 3 > longer)
        return;
    if (h->best == NULL || distance < h->distance) {
        h->best = candidate;
        h->distance = distance;
    }
}

/* Writes "; did you mean 'x'?" into text when the hint found one, else
 * the fallback. */
static void
format_hint(const struct hint *h, const char *fallback, char *text, size_t size)
{
    if (h->best != NULL)
        snprintf(text, size, "; did you mean '%s'?", h->best);
    else
        snprintf(text, size, "%s", fallback);
}

/* Writes the field names of an object as "a, b, c". */
static void
format_fields(const struct schema_object *object, char *text, size_t size)
{
    size_t len = 0;

    text[0] = '\0';
    for (size_t i = 0; i < object->field_count && len < size; i++)
        len += (size_t)snprintf(text + len, size - len, "%s%s",
                                i > 0 ? ", " : "", object->fields[i].name);
}

static const struct schema_field *
find_field(const struct schema_object *object, const char *name)
{
    for (size_t i = 0; i < object->field_count; i++)
        if (strcmp(object->fields[i].name, name) == 0)
            return &object->fields[i];
    return NULL;
}

/* Returns the type of field name of object, or reports at node at that
 * the object has no such field and returns dyn. */
static const struct check_type *
field_type(struct check *c, const struct cel_ast *at,
           const struct schema_object *object, const char *name)
{
    const struct schema_field *field = find_field(object, name);
    char fields[512];

    if (field != NULL)
        return field->type;
    format_fields(object, fields, sizeof(fields));
    report(c, at, false, "%s has no field '%s'; its fields are %s",
           object->path, name, fields);
    return &type_dyn;
}

/* ---- Names. ---- */

static const struct schema_field *
find_variable(const char *name)
{
    static const struct schema_field image = {"image", &image_type};

    if (strcmp(name, "image") == 0)
        return &image;
    for (size_t i = 0; i < COUNT(document_fields); i++)
        if (strcmp(document_fields[i].name, name) == 0)
            return &document_fields[i];
    return NULL;
}

static void
report_undeclared(struct check *c, const struct cel_ast *ast)
{
    struct hint h = {ast->name, strlen(ast->name), NULL, 0};
    char hint[256];

    consider_hint(&h, "image");
    for (size_t i = 0; i < COUNT(document_fields); i++)
        consider_hint(&h, document_fields[i].name);
    for (size_t i = 0; i < c->binding_count; i++)
        consider_hint(&h, c->bindings[i].name);
    format_hint(&h,
                "; use image or a member of the image document, such as "
                "config or packages",
                hint, sizeof(hint));
    report(c, ast, false, "undeclared reference to '%s'%s", ast->name, hint);
}

/*
 * An identifier: the innermost macro variable of that name, else a
 * variable of the environment. A free variable sets reads_image or
 * reads_document, whichever it belongs to.
 */
static const struct check_type *
check_ident(struct check *c, const struct cel_ast *ast)
{
    const struct schema_field *variable;

    for (size_t i = c->binding_count; i > 0; i--)
        if (strcmp(c->bindings[i - 1].name, ast->name) == 0)
            return c->bindings[i - 1].type;

    variable = find_variable(ast->name);
    if (variable != NULL) {
        if (variable->type == &image_type)
            c->reads_image = true;
        else
            c->reads_document = true;
    }
    if (c->env == CEL_ENV_ANY)
        return &type_dyn;
    if (variable == NULL) {
        report_undeclared(c, ast);
        return &type_dyn;
    }
    /* The document is stored once per image, with the source of the
     * request that first pulled it, and its findings serve every later
     * request. A rule reading source would judge later requests by the
     * first one's repository. */
    if (strcmp(ast->name, "source") == 0) {
        report(c, ast, false,
               "source is where the image was first pulled from, not the "
               "request being judged; read image.registry or "
               "image.repository in a rule that reads nothing else, or "
               "limit the rule with scope");
        return &type_dyn;
    }
    return variable->type;
}

/* ---- Selection and indexing. ---- */

/* Selection of field name on a value of type operand, for a.b and
 * has(a.b). Returns the field's type, or dyn after a problem. */
static const struct check_type *
select_field(struct check *c, const struct cel_ast *ast,
             const struct check_type *operand)
{
    char type[256];

    switch (operand->kind) {
    case CHECK_DYN:
        return &type_dyn;
    case CHECK_MAP:
        return operand->element;
    case CHECK_OBJECT:
        return field_type(c, ast, operand->object, ast->name);
    case CHECK_LIST:
        format_type(operand, type, sizeof(type));
        report(c, ast, false,
               "cannot select field '%s' of a %s, because only maps have "
               "fields; use a macro such as list.exists(x, x.%s == value) "
               "or list.map(x, x.%s)",
               ast->name, type, ast->name, ast->name);
        return &type_dyn;
    default:
        describe_type(operand, type, sizeof(type));
        report(c, ast, false,
               "cannot select field '%s' of %s, because only maps have "
               "fields; select it on a map",
               ast->name, type);
        return &type_dyn;
    }
}

static const struct check_type *
check_select(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *operand = check_node(c, ast->children[0]);
    const struct check_type *field = select_field(c, ast, operand);

    return ast->kind == CEL_AST_HAS ? &type_bool : field;
}

static void
report_index(struct check *c, const struct cel_ast *ast,
             const struct check_type *const types[2], const char *fix)
{
    char list[512];

    format_types(types, 2, list, sizeof(list));
    report(c, ast, false, "no matching overload for '_[_]' with (%s); %s", list,
           fix);
}

/* a[i]: a list takes an int or uint index, a map a key of its key type,
 * and an object a string, whose field the checker looks up when the
 * string is a literal. */
static const struct check_type *
check_index(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *types[2];
    const struct cel_ast *index = ast->children[1];

    types[0] = check_node(c, ast->children[0]);
    types[1] = check_node(c, index);
    switch (types[0]->kind) {
    case CHECK_DYN:
        return &type_dyn;
    case CHECK_LIST:
        if (is_dyn(types[1]) || types[1]->kind == CHECK_INT ||
            types[1]->kind == CHECK_UINT)
            return types[0]->element;
        report_index(c, ast, types, "index a list with an int");
        return &type_dyn;
    case CHECK_MAP:
        if (!never_equal(types[0]->key, types[1]))
            return types[0]->element;
        report_index(c, ast, types, "index the map with a key of its type");
        return &type_dyn;
    case CHECK_OBJECT:
        if (index->kind == CEL_AST_STRING &&
            memchr(index->string, '\0', index->string_len) == NULL)
            return field_type(c, ast, types[0]->object, index->string);
        if (is_dyn(types[1]) || types[1]->kind == CHECK_STRING)
            return &type_dyn;
        report_index(c, ast, types, "index the map with a string");
        return &type_dyn;
    default:
        report_index(c, ast, types, "only lists and maps can be indexed");
        return &type_dyn;
    }
}

/* ---- Function calls. ---- */

static const struct check_function *
find_function(const char *name)
{
    for (size_t i = 0; i < COUNT(functions); i++)
        if (strcmp(functions[i].name, name) == 0)
            return &functions[i];
    return NULL;
}

static void
report_unknown_function(struct check *c, const struct cel_ast *ast)
{
    struct hint h = {ast->name, strlen(ast->name), NULL, 0};
    char hint[512];

    for (size_t i = 0; i < COUNT(functions); i++)
        consider_hint(&h, functions[i].name);
    for (size_t i = 0; i < COUNT(macros); i++)
        consider_hint(&h, macros[i].name);
    format_hint(&h,
                "; the functions are size, int, uint, double, string, "
                "contains, startsWith, endsWith, lowerAscii, upperAscii, "
                "matches, matchesGlob, compareVersions and isVersion",
                hint, sizeof(hint));
    report(c, ast, false, "undeclared reference to function '%s'%s", ast->name,
           hint);
}

/* Reports a call of a known function or macro in a form it has no
 * overload for, with the form to use instead. */
static void
report_call_form(struct check *c, const struct cel_ast *ast, const char *usage)
{
    size_t arguments = ast->child_count - (ast->receiver ? 1 : 0);

    report(c, ast, false,
           "no matching overload for '%s' with %zu argument%s%s; call it as "
           "%s",
           ast->name, arguments, arguments == 1 ? "" : "s",
           ast->receiver ? " and a receiver" : "", usage);
}

/*
 * Compiles a literal regular expression of matches() as the evaluator
 * will, and reports a pattern PCRE2 rejects at the literal. cel_parse()
 * compiles such a pattern itself and rejects an invalid one, so this finds
 * problems only in trees whose call has no compiled pattern.
 */
static void
check_regex(struct check *c, const struct cel_ast *call,
            const struct cel_ast *literal)
{
    PCRE2_UCHAR message[256];
    PCRE2_SIZE offset;
    pcre2_code *code;
    int error;

    if (call->regex != NULL)
        return;
    code = pcre2_compile((PCRE2_SPTR)literal->string, literal->string_len,
                         PCRE2_UTF, &error, &offset, NULL);
    if (code != NULL) {
        pcre2_code_free(code);
        return;
    }
    if (error == PCRE2_ERROR_NOMEMORY) {
        c->out_of_memory = true;
        return;
    }
    pcre2_get_error_message(error, message, sizeof(message));
    report(c, literal, false,
           "invalid regular expression '%.*s': %s at offset %zu; fix the "
           "pattern (PCRE2 syntax)",
           literal->string_len > CEL_CHECK_QUOTE_MAX ? CEL_CHECK_QUOTE_MAX
                                                     : (int)literal->string_len,
           literal->string, (const char *)message, (size_t)offset);
}

/* Reports a literal scheme of compareVersions() or isVersion() that is
 * not one of version_schemes. */
static void
check_scheme(struct check *c, const struct cel_ast *literal)
{
    for (size_t i = 0; i < COUNT(version_schemes); i++)
        if (strlen(version_schemes[i]) == literal->string_len &&
            memcmp(version_schemes[i], literal->string, literal->string_len) ==
                0)
            return;
    report(c, literal, false,
           "unknown version scheme '%.*s'; use one of deb, apk, rpm, semver, "
           "pep440, npm, golang or pypi",
           literal->string_len > CEL_CHECK_QUOTE_MAX ? CEL_CHECK_QUOTE_MAX
                                                     : (int)literal->string_len,
           literal->string);
}

/* Checks the literal arguments whose values the function constrains. */
static void
check_literal_arguments(struct check *c, const struct check_function *f,
                        const struct cel_ast *ast)
{
    const struct cel_ast *first = ast->children[0];

    if (strcmp(f->name, "matches") == 0 &&
        ast->children[1]->kind == CEL_AST_STRING)
        check_regex(c, ast, ast->children[1]);
    if ((strcmp(f->name, "compareVersions") == 0 ||
         strcmp(f->name, "isVersion") == 0) &&
        first->kind == CEL_AST_STRING)
        check_scheme(c, first);
}

static const struct check_type *
result_type(enum check_kind kind)
{
    switch (kind) {
    case CHECK_BOOL:
        return &type_bool;
    case CHECK_INT:
        return &type_int;
    case CHECK_UINT:
        return &type_uint;
    case CHECK_DOUBLE:
        return &type_double;
    default:
        return &type_string;
    }
}

static bool
is_macro(const char *name)
{
    for (size_t i = 0; i < COUNT(macros); i++)
        if (strcmp(macros[i].name, name) == 0)
            return true;
    return false;
}

static const char *
macro_usage(const char *name)
{
    for (size_t i = 0; i < COUNT(macros); i++)
        if (strcmp(macros[i].name, name) == 0)
            return macros[i].usage;
    return "";
}

/*
 * A call: the function must exist, take this form, and accept the types
 * of the arguments, the receiver first. The arguments are checked even
 * when the function is unknown, so problems inside them are found too.
 */
static const struct check_type *
check_call(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *types[CEL_ARGUMENTS_MAX + 1];
    const struct check_function *f = find_function(ast->name);
    char list[512];
    bool fits = true;

    /* A macro in the wrong form binds no iteration variable, so only its
     * receiver is checked: its other arguments would report the variable
     * as undeclared. */
    if (f == NULL && is_macro(ast->name)) {
        if (ast->receiver)
            check_node(c, ast->children[0]);
        report_call_form(c, ast, macro_usage(ast->name));
        return &type_dyn;
    }

    for (size_t i = 0; i < ast->child_count && i < COUNT(types); i++)
        types[i] = check_node(c, ast->children[i]);
    if (f == NULL) {
        report_unknown_function(c, ast);
        return &type_dyn;
    }
    if (ast->child_count != f->arguments ||
        !(ast->receiver ? f->method : f->global)) {
        report_call_form(c, ast, f->usage);
        return result_type(f->result);
    }

    for (size_t i = 0; i < ast->child_count; i++)
        fits = fits && accepts_type(f->accepts[i], types[i]);
    if (!fits) {
        format_types(types, ast->child_count, list, sizeof(list));
        report(c, ast, false,
               "no matching overload for '%s' with (%s); %s takes %s",
               ast->name, list, ast->name, f->takes);
    }
    check_literal_arguments(c, f, ast);
    return result_type(f->result);
}

/* ---- Operators. ---- */

static const char *const operator_functions[] = {
    [CEL_OP_NOT] = "!_",       [CEL_OP_NEGATE] = "-_",
    [CEL_OP_OR] = "_||_",      [CEL_OP_AND] = "_&&_",
    [CEL_OP_LT] = "_<_",       [CEL_OP_LE] = "_<=_",
    [CEL_OP_GE] = "_>=_",      [CEL_OP_GT] = "_>_",
    [CEL_OP_EQ] = "_==_",      [CEL_OP_NE] = "_!=_",
    [CEL_OP_IN] = "@in",       [CEL_OP_ADD] = "_+_",
    [CEL_OP_SUBTRACT] = "_-_", [CEL_OP_MULTIPLY] = "_*_",
    [CEL_OP_DIVIDE] = "_/_",   [CEL_OP_MODULO] = "_%_",
};

static const char *const operator_symbols[] = {
    [CEL_OP_NOT] = "!",      [CEL_OP_NEGATE] = "-",   [CEL_OP_OR] = "||",
    [CEL_OP_AND] = "&&",     [CEL_OP_LT] = "<",       [CEL_OP_LE] = "<=",
    [CEL_OP_GE] = ">=",      [CEL_OP_GT] = ">",       [CEL_OP_EQ] = "==",
    [CEL_OP_NE] = "!=",      [CEL_OP_IN] = "in",      [CEL_OP_ADD] = "+",
    [CEL_OP_SUBTRACT] = "-", [CEL_OP_MULTIPLY] = "*", [CEL_OP_DIVIDE] = "/",
    [CEL_OP_MODULO] = "%",
};

static void report_operator(struct check *c, const struct cel_ast *ast,
                            const struct check_type *const *types, size_t count,
                            const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Reports "no matching overload for '_op_' with (types); " and the fix
 * that fmt formats. */
static void
report_operator(struct check *c, const struct cel_ast *ast,
                const struct check_type *const *types, size_t count,
                const char *fmt, ...)
{
    char list[512], fix[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(fix, sizeof(fix), fmt, ap);
    va_end(ap);
    format_types(types, count, list, sizeof(list));
    report(c, ast, false, "no matching overload for '%s' with (%s); %s",
           operator_functions[ast->op], list, fix);
}

/* Whether arithmetic operator op has an overload for two values of kind
 * kind: + - * / on numbers of one type, % on ints and uints, and + on
 * strings and lists. */
static bool
arithmetic_accepts(enum cel_op op, enum check_kind kind)
{
    switch (kind) {
    case CHECK_INT:
    case CHECK_UINT:
        return true;
    case CHECK_DOUBLE:
        return op != CEL_OP_MODULO;
    case CHECK_STRING:
    case CHECK_LIST:
        return op == CEL_OP_ADD;
    default:
        return false;
    }
}

static void
report_arithmetic(struct check *c, const struct cel_ast *ast,
                  const struct check_type *const types[2])
{
    const char *symbol = operator_symbols[ast->op];

    if (is_number(types[0]) && is_number(types[1]) &&
        types[0]->kind != types[1]->kind)
        report_operator(c, ast, types, 2,
                        "CEL does not convert between int, uint and double, "
                        "so convert one side with int(), uint() or "
                        "double()");
    else if (ast->op == CEL_OP_ADD)
        report_operator(c, ast, types, 2,
                        "+ takes two numbers of the same type, two strings "
                        "or two lists");
    else if (ast->op == CEL_OP_MODULO)
        report_operator(c, ast, types, 2, "%% takes two ints or two uints");
    else
        report_operator(c, ast, types, 2,
                        "%s takes two numbers of the same type", symbol);
}

static const struct check_type *
check_arithmetic(struct check *c, const struct cel_ast *ast,
                 const struct check_type *const types[2])
{
    const struct check_type *a = types[0], *b = types[1];

    if (is_dyn(a) && is_dyn(b))
        return &type_dyn;
    if (is_dyn(a) || is_dyn(b)) {
        const struct check_type *known = is_dyn(a) ? b : a;

        if (!arithmetic_accepts(ast->op, known->kind)) {
            report_arithmetic(c, ast, types);
            return &type_dyn;
        }
        /* A list plus a dyn is a list, of elements not known here. */
        return known->kind == CHECK_LIST ? list_of(c, &type_dyn)
                                         : result_type(known->kind);
    }
    if (a->kind != b->kind || !arithmetic_accepts(ast->op, a->kind)) {
        report_arithmetic(c, ast, types);
        return &type_dyn;
    }
    if (a->kind == CHECK_LIST)
        return list_of(c, join_types(c, a->element, b->element));
    return result_type(a->kind);
}

/* The class of values < <= >= > order with each other, or -1 for none. */
static int
order_class(const struct check_type *t)
{
    if (is_number(t))
        return CHECK_INT;
    if (t->kind == CHECK_STRING || t->kind == CHECK_BOOL)
        return (int)t->kind;
    return -1;
}

static void
check_ordering(struct check *c, const struct cel_ast *ast,
               const struct check_type *const types[2])
{
    int a = order_class(types[0]), b = order_class(types[1]);
    bool fits;

    if (is_dyn(types[0]))
        fits = is_dyn(types[1]) || b >= 0;
    else if (is_dyn(types[1]))
        fits = a >= 0;
    else
        fits = a >= 0 && a == b;
    if (!fits)
        report_operator(c, ast, types, 2,
                        "%s compares two numbers, two strings or two bools",
                        operator_symbols[ast->op]);
}

static void
check_equality(struct check *c, const struct cel_ast *ast,
               const struct check_type *const types[2])
{
    char a[256], b[256];

    if (!never_equal(types[0], types[1]))
        return;
    describe_type(types[0], a, sizeof(a));
    describe_type(types[1], b, sizeof(b));
    report(c, ast, true,
           "comparing %s with %s using %s is always %s, because values of "
           "different types are never equal; compare values of the same "
           "type",
           a, b, operator_symbols[ast->op],
           ast->op == CEL_OP_EQ ? "false" : "true");
}

static void
check_in(struct check *c, const struct cel_ast *ast,
         const struct check_type *const types[2])
{
    const struct check_type *container = types[1];
    char item[256], list[256];

    if (container->kind == CHECK_STRING && types[0]->kind == CHECK_STRING) {
        report_operator(c, ast, types, 2,
                        "in needs a list or a map on the right, so use "
                        "text.contains(part) to find a substring");
        return;
    }
    if (!is_dyn(container) && container->kind != CHECK_LIST &&
        !is_map(container)) {
        report_operator(c, ast, types, 2,
                        "in needs a list or a map on the right");
        return;
    }
    if (container->kind == CHECK_LIST &&
        never_equal(types[0], container->element)) {
        describe_type(types[0], item, sizeof(item));
        format_type(container, list, sizeof(list));
        report(c, ast, true,
               "looking for %s in a %s is always false, because values of "
               "different types are never equal; compare values of the same "
               "type",
               item, list);
    }
}

/* Whether t fits an operand of && || ! or the condition of ?:, which
 * must be a bool. */
static bool
is_boolish(const struct check_type *t)
{
    return is_dyn(t) || t->kind == CHECK_BOOL;
}

static const struct check_type *
check_binary(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *types[2];

    types[0] = check_node(c, ast->children[0]);
    types[1] = check_node(c, ast->children[1]);
    switch (ast->op) {
    case CEL_OP_AND:
    case CEL_OP_OR:
        if (!is_boolish(types[0]) || !is_boolish(types[1]))
            report_operator(c, ast, types, 2,
                            "%s takes two bools, so compare each operand "
                            "that is not a bool, for example with ==",
                            operator_symbols[ast->op]);
        return &type_bool;
    case CEL_OP_LT:
    case CEL_OP_LE:
    case CEL_OP_GE:
    case CEL_OP_GT:
        check_ordering(c, ast, types);
        return &type_bool;
    case CEL_OP_EQ:
    case CEL_OP_NE:
        check_equality(c, ast, types);
        return &type_bool;
    case CEL_OP_IN:
        check_in(c, ast, types);
        return &type_bool;
    default:
        return check_arithmetic(c, ast, types);
    }
}

static const struct check_type *
check_unary(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *operand = check_node(c, ast->children[0]);

    if (ast->op == CEL_OP_NOT) {
        if (!is_boolish(operand))
            report_operator(c, ast, &operand, 1, "! takes a bool");
        return &type_bool;
    }
    if (is_dyn(operand) || operand->kind == CHECK_INT ||
        operand->kind == CHECK_DOUBLE)
        return operand->nullable ? result_type(operand->kind) : operand;
    report_operator(c, ast, &operand, 1, "- takes an int or a double");
    return &type_dyn;
}

static const struct check_type *
check_conditional(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *condition = check_node(c, ast->children[0]);
    const struct check_type *yes = check_node(c, ast->children[1]);
    const struct check_type *no = check_node(c, ast->children[2]);
    char type[256];

    if (!is_boolish(condition)) {
        format_type(condition, type, sizeof(type));
        report(c, ast, false,
               "no matching overload for '_?_:_' with (%s); the condition of "
               "?: must be a bool",
               type);
    }
    return join_types(c, yes, no);
}

/* ---- Literals. ---- */

static const struct check_type *
check_list(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *element = NULL;

    for (size_t i = 0; i < ast->child_count; i++) {
        const struct check_type *t = check_node(c, ast->children[i]);

        element = element == NULL ? t : join_types(c, element, t);
    }
    return list_of(c, element != NULL ? element : &type_dyn);
}

static const struct check_type *
check_map(struct check *c, const struct cel_ast *ast)
{
    struct check_type map = {.kind = CHECK_MAP};
    const struct check_type *key = NULL, *value = NULL;

    for (size_t i = 0; i + 1 < ast->child_count; i += 2) {
        const struct check_type *k = check_node(c, ast->children[i]);
        const struct check_type *v = check_node(c, ast->children[i + 1]);
        char name[256];

        if (!accepts_type(MAP_KEY_KINDS, k)) {
            format_type(k, name, sizeof(name));
            report(c, ast->children[i], false,
                   "unsupported map key type %s; keys are int, uint, bool or "
                   "string",
                   name);
            k = &type_dyn;
        }
        key = key == NULL ? k : join_types(c, key, k);
        value = value == NULL ? v : join_types(c, value, v);
    }
    map.key = key != NULL ? key : &type_dyn;
    map.element = value != NULL ? value : &type_dyn;
    return new_type(c, &map);
}

static const struct check_type *
check_literal(const struct cel_ast *ast)
{
    switch (ast->kind) {
    case CEL_AST_BOOL:
        return &type_bool;
    case CEL_AST_INT:
        return &type_int;
    case CEL_AST_UINT:
        return &type_uint;
    case CEL_AST_DOUBLE:
        return &type_double;
    case CEL_AST_STRING:
        return &type_string;
    default:
        return &type_null;
    }
}

/* ---- Macros. ---- */

/* Returns the type of the iteration variable over a range of type range:
 * a list's element or a map's key, or dyn after a problem. */
static const struct check_type *
element_type(struct check *c, const struct cel_ast *ast,
             const struct check_type *range)
{
    const char *name = macro_names[ast->macro];
    char type[256];

    switch (range->kind) {
    case CHECK_DYN:
        return &type_dyn;
    case CHECK_LIST:
        return range->element;
    case CHECK_MAP:
        return range->key;
    case CHECK_OBJECT:
        return &type_string;
    default:
        format_type(range, type, sizeof(type));
        report(c, ast, false,
               "no matching overload for '%s' with (%s); %s() iterates over "
               "a list or a map",
               name, type, name);
        return &type_dyn;
    }
}

/* Checks a predicate of a macro, which must be a bool. */
static void
check_predicate(struct check *c, const struct cel_ast *macro,
                const struct cel_ast *predicate)
{
    const struct check_type *t = check_node(c, predicate);
    char type[256];

    if (is_boolish(t))
        return;
    describe_type(t, type, sizeof(type));
    report(c, predicate, false,
           "the predicate of %s() must be a bool, but it is %s; compare the "
           "value, for example with ==",
           macro_names[macro->macro], type);
}

/*
 * A comprehension: the iteration variable is bound, with the element type
 * of the range, while the predicate and the transform are checked.
 * all(), exists() and exists_one() return a bool, filter() a list of the
 * range's elements and map() a list of what the transform returns.
 */
static const struct check_type *
check_comprehension(struct check *c, const struct cel_ast *ast)
{
    const struct check_type *range = check_node(c, ast->children[0]);
    const struct check_type *element = element_type(c, ast, range);
    const struct check_type *result = &type_bool;

    c->bindings[c->binding_count].name = ast->name;
    c->bindings[c->binding_count].type = element;
    c->binding_count++;

    if (ast->macro == CEL_MACRO_MAP) {
        if (ast->child_count == 3)
            check_predicate(c, ast, ast->children[1]);
        result = list_of(c, check_node(c, ast->children[ast->child_count - 1]));
    } else {
        check_predicate(c, ast, ast->children[1]);
        if (ast->macro == CEL_MACRO_FILTER)
            result = list_of(c, element);
    }

    c->binding_count--;
    return result;
}

/* ---- The walk. ---- */

static const struct check_type *
check_node(struct check *c, const struct cel_ast *ast)
{
    switch (ast->kind) {
    case CEL_AST_IDENT:
        return check_ident(c, ast);
    case CEL_AST_SELECT:
    case CEL_AST_HAS:
        return check_select(c, ast);
    case CEL_AST_INDEX:
        return check_index(c, ast);
    case CEL_AST_CALL:
        return check_call(c, ast);
    case CEL_AST_UNARY:
        return check_unary(c, ast);
    case CEL_AST_BINARY:
        return check_binary(c, ast);
    case CEL_AST_CONDITIONAL:
        return check_conditional(c, ast);
    case CEL_AST_LIST:
        return check_list(c, ast);
    case CEL_AST_MAP:
        return check_map(c, ast);
    case CEL_AST_COMPREHENSION:
        return check_comprehension(c, ast);
    default:
        return check_literal(ast);
    }
}

/* Reports a result of a type that can never be want. */
static void
check_result_type(struct check *c, const struct cel_ast *ast,
                  const struct check_type *t, const char *want)
{
    char type[256];

    if (want == NULL || is_dyn(t))
        return;
    describe_type(t, type, sizeof(type));
    if (strcmp(want, "bool") == 0 && t->kind != CHECK_BOOL)
        report(c, ast, false,
               "the condition must be a bool, but this expression is %s; "
               "compare the value, for example with == or in",
               type);
    else if (strcmp(want, "string") == 0 && t->kind != CHECK_STRING)
        report(c, ast, false,
               "the message must be a string, but this expression is %s; "
               "%s",
               type,
               is_number(t) || t->kind == CHECK_BOOL
                   ? "convert it with string()"
                   : "build a string, for example with + and string()");
}

static int
compare_problems(const void *x, const void *y)
{
    const struct problem *a = x, *b = y;

    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->column != b->column)
        return a->column < b->column ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

/* Builds the problems array of the result, in source order. Returns it,
 * or NULL when memory is short. */
static json_t *
problems_to_json(struct check *c)
{
    json_t *problems = json_array();

    qsort(c->problems, c->problem_count, sizeof(c->problems[0]),
          compare_problems);
    for (size_t i = 0; problems != NULL && i < c->problem_count; i++) {
        const struct problem *p = &c->problems[i];
        json_t *item =
            json_pack("{s:I, s:I, s:s, s:s}", "line", (json_int_t)p->line,
                      "column", (json_int_t)p->column, "severity",
                      p->warning ? "warning" : "error", "message", p->message);

        if (item == NULL || json_array_append_new(problems, item) < 0) {
            json_decref(problems);
            problems = NULL;
        }
    }
    return problems;
}

static void
release_check(struct check *c)
{
    while (c->blocks != NULL) {
        struct type_block *next = c->blocks->next;

        free(c->blocks);
        c->blocks = next;
    }
    for (size_t i = 0; i < c->problem_count; i++)
        free(c->problems[i].message);
}

int
cel_check(const struct cel_ast *ast, enum cel_check_env env, const char *want,
          struct cel_check_result *result, struct pg_error **err)
{
    struct check *c;
    const struct check_type *type;
    int rc = -1;

    memset(result, 0, sizeof(*result));
    /* The bindings and problems are too big for the stack of a libevent
     * callback. */
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto out;
    c->env = env;

    type = check_node(c, ast);
    check_result_type(c, ast, type, want);
    if (c->out_of_memory)
        goto out;
    result->problems = problems_to_json(c);
    if (result->problems == NULL)
        goto out;
    result->reads_image = c->reads_image;
    result->reads_document = c->reads_document;
    rc = 0;

out:
    if (rc < 0)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while checking a CEL expression; retry "
                     "later");
    if (c != NULL)
        release_check(c);
    free(c);
    return rc;
}
