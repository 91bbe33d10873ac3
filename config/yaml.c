#include "config/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config/limits.h"
#include "config/parse.h"

#if JSON_INTEGER_IS_LONG_LONG
#define YAML_INT_MAX LLONG_MAX
#else
#define YAML_INT_MAX LONG_MAX
#endif

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

/*
 * One position. The same type serves three tables: a value's own position
 * (owner is the value), a key's position (owner is the object, key is set)
 * and an array element's position (owner is the array, index is set).
 */
struct yaml_mark {
    const json_t *owner;
    char *key;
    size_t index;
    size_t line;
    size_t column;
    /* The position of a scalar's text: after the opening quote, or on the
     * first line of a block scalar. Equal to line and column otherwise. */
    size_t content_line;
    size_t content_column;
    size_t content_index; /* the byte of the text where that is */
    int style;            /* libyaml's yaml_scalar_style_t */
    bool literal;         /* a "|" block, whose lines are kept as written */
};

/*
 * A growable table of marks. Every node and key takes at least one byte of
 * the input, so PG_CONFIG_FILE_MAX_BYTES also bounds the number of marks.
 */
struct yaml_table {
    struct yaml_mark *marks;
    size_t n;
    size_t cap;
};

struct yaml_doc {
    char *name;
    char *text; /* a copy of the input, to map positions inside strings */
    size_t len;
    json_t *root;
    struct yaml_table values;
    struct yaml_table keys;
    struct yaml_table items;
};

struct yaml_builder {
    yaml_parser_t parser;
    struct yaml_doc *doc;
    const char *text;
    size_t len;
    /* libyaml's mark index counts characters. These keep the byte offset
     * of the last character index converted, so that the next conversion
     * continues from there instead of from the start. */
    size_t cursor_char;
    size_t cursor_byte;
};

/* Sets err to "NAME:LINE:COLUMN: message" for a 0-based libyaml mark. */
static void builder_error(struct yaml_builder *b, yaml_mark_t mark,
                          struct pg_error **err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
builder_error(struct yaml_builder *b, yaml_mark_t mark, struct pg_error **err,
              const char *fmt, ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    pg_error_set(err, 500, PG_ERR_CONFIG, "%s:%zu:%zu: %s", b->doc->name,
                 mark.line + 1, mark.column + 1, message);
}

static void
out_of_memory(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while reading YAML; retry later");
}

static int
table_add(struct yaml_table *table, const json_t *owner, const char *key,
          size_t index, yaml_mark_t mark)
{
    struct yaml_mark *slot;

    if (table->n == table->cap) {
        size_t cap = table->cap == 0 ? 64 : table->cap * 2;
        struct yaml_mark *marks = realloc(table->marks, cap * sizeof(*marks));

        if (marks == NULL)
            return -1;
        table->marks = marks;
        table->cap = cap;
    }

    slot = &table->marks[table->n];
    slot->key = NULL;
    if (key != NULL) {
        slot->key = strdup(key);
        if (slot->key == NULL)
            return -1;
    }
    slot->owner = owner;
    slot->index = index;
    slot->line = mark.line + 1;
    slot->column = mark.column + 1;
    slot->content_line = slot->line;
    slot->content_column = slot->column;
    slot->content_index = mark.index;
    slot->style = YAML_ANY_SCALAR_STYLE;
    slot->literal = false;
    table->n++;
    return 0;
}

static int
mark_compare(const void *left, const void *right)
{
    const struct yaml_mark *a = left;
    const struct yaml_mark *b = right;
    uintptr_t pa = (uintptr_t)a->owner;
    uintptr_t pb = (uintptr_t)b->owner;

    if (pa != pb)
        return pa < pb ? -1 : 1;
    if (a->key != NULL && b->key != NULL)
        return strcmp(a->key, b->key);
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    return 0;
}

static void
table_sort(struct yaml_table *table)
{
    if (table->n > 1)
        qsort(table->marks, table->n, sizeof(table->marks[0]), mark_compare);
}

static const struct yaml_mark *
table_find(const struct yaml_table *table, const json_t *owner, const char *key,
           size_t index)
{
    struct yaml_mark probe = {
        .owner = owner,
        .key = (char *)key,
        .index = index,
    };

    if (table->n == 0)
        return NULL;
    return bsearch(&probe, table->marks, table->n, sizeof(table->marks[0]),
                   mark_compare);
}

static void
table_free(struct yaml_table *table)
{
    for (size_t i = 0; i < table->n; i++)
        free(table->marks[i].key);
    free(table->marks);
}

/*
 * true, false and null are shared singletons in jansson, so a pointer
 * cannot tell two of them apart and they get no entry in the value table.
 */
static bool
is_singleton(const json_t *value)
{
    return json_is_true(value) || json_is_false(value) || json_is_null(value);
}

static int
record_value(struct yaml_builder *b, const json_t *value, yaml_mark_t mark)
{
    if (is_singleton(value))
        return 0;
    return table_add(&b->doc->values, value, NULL, 0, mark);
}

/*
 * Records where the text of the scalar just added to the value table
 * starts, so that a position inside the text (a CEL expression's error)
 * can be turned into a position in the file. A block scalar's text starts
 * on the first line after its header that is not blank, after the
 * indentation.
 */
static size_t utf8_length(unsigned char c);

/* Returns the byte offset of character index (a libyaml mark's index). */
static size_t
byte_offset(struct yaml_builder *b, size_t index)
{
    if (index < b->cursor_char) {
        b->cursor_char = 0;
        b->cursor_byte = 0;
    }
    while (b->cursor_char < index && b->cursor_byte < b->len) {
        b->cursor_byte += utf8_length((unsigned char)b->text[b->cursor_byte]);
        b->cursor_char++;
    }
    return b->cursor_byte < b->len ? b->cursor_byte : b->len;
}

static void
record_content(struct yaml_builder *b, const yaml_event_t *event)
{
    struct yaml_mark *slot = &b->doc->values.marks[b->doc->values.n - 1];
    size_t at = byte_offset(b, event->start_mark.index);
    size_t line = slot->line;
    size_t indent = 0;

    slot->style = (int)event->data.scalar.style;
    switch (event->data.scalar.style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE:
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
        slot->content_column = slot->column + 1;
        slot->content_index = at + 1;
        return;
    case YAML_LITERAL_SCALAR_STYLE:
    case YAML_FOLDED_SCALAR_STYLE:
        break;
    default:
        return;
    }

    slot->literal = event->data.scalar.style == YAML_LITERAL_SCALAR_STYLE;
    while (at < b->len) {
        /* Skip the rest of this line, then measure the next one. */
        while (at < b->len && b->text[at] != '\n')
            at++;
        if (at >= b->len)
            break;
        at++;
        line++;
        indent = 0;
        while (at + indent < b->len && b->text[at + indent] == ' ')
            indent++;
        if (at + indent < b->len && b->text[at + indent] != '\n' &&
            b->text[at + indent] != '\r')
            break;
    }
    slot->content_line = line;
    slot->content_column = indent + 1;
    slot->content_index = at + indent;
}

/* Turns the offset of a reader error into a 0-based line and column. */
static yaml_mark_t
offset_mark(const struct yaml_builder *b, size_t offset)
{
    yaml_mark_t mark = {.index = offset, .line = 0, .column = 0};

    for (size_t i = 0; i < offset && i < b->len; i++) {
        if (b->text[i] == '\n') {
            mark.line++;
            mark.column = 0;
        } else {
            mark.column++;
        }
    }
    return mark;
}

/* Turns libyaml's own error into "NAME:LINE:COLUMN: invalid YAML: ...". */
static void
parser_error(struct yaml_builder *b, struct pg_error **err)
{
    const yaml_parser_t *p = &b->parser;
    const char *problem = p->problem != NULL ? p->problem : "unknown error";

    if (p->error == YAML_MEMORY_ERROR) {
        out_of_memory(err);
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        builder_error(b, offset_mark(b, p->problem_offset), err,
                      "invalid YAML: %s (byte 0x%02x); save the file as UTF-8",
                      problem, (unsigned)p->problem_value & 0xffu);
        return;
    }
    if (p->context != NULL) {
        builder_error(b, p->problem_mark, err,
                      "invalid YAML: %s %s started at line %zu", problem,
                      p->context, p->context_mark.line + 1);
        return;
    }
    builder_error(b, p->problem_mark, err, "invalid YAML: %s", problem);
}

static int
next_event(struct yaml_builder *b, yaml_event_t *event, struct pg_error **err)
{
    if (yaml_parser_parse(&b->parser, event) == 0) {
        parser_error(b, err);
        return -1;
    }
    return 0;
}

static bool
is_digits(const char *text, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
    }
    return true;
}

static size_t
count_digits(const char *text, size_t len)
{
    size_t n = 0;

    while (n < len && text[n] >= '0' && text[n] <= '9')
        n++;
    return n;
}

/*
 * Tells whether text is a real in the YAML 1.2 core schema, without a
 * leading '+' and without .inf and .nan (JSON has neither): digits with a
 * '.' or an exponent, such as 1.5, .5, 5. or 1e3.
 */
static bool
looks_like_real(const char *text, size_t len)
{
    size_t i = 0;
    size_t whole;
    size_t fraction = 0;
    bool dot = false;

    if (i < len && text[i] == '-')
        i++;
    whole = count_digits(text + i, len - i);
    i += whole;
    if (i < len && text[i] == '.') {
        dot = true;
        i++;
        fraction = count_digits(text + i, len - i);
        i += fraction;
    }
    if (whole == 0 && fraction == 0)
        return false;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        i++;
        if (i < len && (text[i] == '-' || text[i] == '+'))
            i++;
        if (count_digits(text + i, len - i) == 0)
            return false;
        i += count_digits(text + i, len - i);
        return i == len;
    }
    return dot && i == len;
}

static json_t *
integer_value(struct yaml_builder *b, const yaml_event_t *event,
              struct pg_error **err)
{
    const char *text = (const char *)event->data.scalar.value;
    bool negative = text[0] == '-';
    uint64_t max = (uint64_t)YAML_INT_MAX + (negative ? 1 : 0);
    uint64_t magnitude;
    json_t *value;

    if (pg_parse_u64(text + negative, max, &magnitude) < 0) {
        builder_error(b, event->start_mark, err,
                      "integer out of range (%lld to %lld); quote it to use "
                      "it as a string",
                      (long long)-YAML_INT_MAX - 1, (long long)YAML_INT_MAX);
        return NULL;
    }

    /* -(m - 1) - 1 reaches the most negative integer without overflow. */
    if (negative && magnitude > 0)
        value = json_integer(-(json_int_t)(magnitude - 1) - 1);
    else
        value = json_integer((json_int_t)magnitude);
    if (value == NULL)
        out_of_memory(err);
    return value;
}

static json_t *
real_value(struct yaml_builder *b, const yaml_event_t *event,
           struct pg_error **err)
{
    const char *text = (const char *)event->data.scalar.value;
    char *end = NULL;
    double number;
    json_t *value;

    /* The text was checked by looks_like_real, so only range can fail. */
    errno = 0;
    number = strtod(text, &end);
    if (end == NULL || *end != '\0' || !isfinite(number)) {
        builder_error(b, event->start_mark, err,
                      "number out of range; quote it to use it as a string");
        return NULL;
    }

    value = json_real(number);
    if (value == NULL)
        out_of_memory(err);
    return value;
}

static bool
text_is(const char *text, size_t len, const char *const *words)
{
    for (size_t i = 0; words[i] != NULL; i++) {
        if (strlen(words[i]) == len && memcmp(text, words[i], len) == 0)
            return true;
    }
    return false;
}

/* Resolves a plain scalar with the YAML 1.2 core schema. */
static json_t *
plain_value(struct yaml_builder *b, const yaml_event_t *event,
            struct pg_error **err)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    const char *text = (const char *)event->data.scalar.value;
    size_t len = event->data.scalar.length;
    json_t *value;

    if (text_is(text, len, nulls))
        return json_null();
    if (text_is(text, len, trues))
        return json_true();
    if (text_is(text, len, falses))
        return json_false();
    if (is_digits(text + (len > 0 && text[0] == '-'),
                  len - (len > 0 && text[0] == '-')))
        return integer_value(b, event, err);
    if (looks_like_real(text, len))
        return real_value(b, event, err);

    value = json_stringn(text, len);
    if (value == NULL)
        out_of_memory(err);
    return value;
}

/*
 * Checks an explicit tag. Only the standard tags of the JSON schema are
 * accepted, and a scalar must resolve to the type its tag names. Messages
 * about scalars never repeat the value, because it may be a password.
 */
static int
check_scalar_tag(struct yaml_builder *b, const yaml_event_t *event,
                 const json_t *value, struct pg_error **err)
{
    const char *tag = (const char *)event->data.scalar.tag;
    static const struct {
        const char *name;
        json_type type;
    } tags[] = {
        {YAML_TAG_PREFIX "int", JSON_INTEGER},
        {YAML_TAG_PREFIX "float", JSON_REAL},
        {YAML_TAG_PREFIX "bool", JSON_TRUE},
        {YAML_TAG_PREFIX "null", JSON_NULL},
    };

    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        json_type type = json_typeof(value);

        if (strcmp(tag, tags[i].name) != 0)
            continue;
        if (type == JSON_FALSE)
            type = JSON_TRUE;
        if (type == tags[i].type)
            return 0;
        builder_error(b, event->start_mark, err,
                      "the value is not a valid !!%s; fix the value or "
                      "remove the tag",
                      tag + strlen(YAML_TAG_PREFIX));
        return -1;
    }
    builder_error(b, event->start_mark, err,
                  "tag %.64s is not supported on a scalar; remove it", tag);
    return -1;
}

static json_t *
scalar_value(struct yaml_builder *b, const yaml_event_t *event,
             struct pg_error **err)
{
    const char *text = (const char *)event->data.scalar.value;
    size_t len = event->data.scalar.length;
    const char *tag = (const char *)event->data.scalar.tag;
    json_t *value;

    /* A "\0" escape would cut the string short for every C caller. */
    if (memchr(text, '\0', len) != NULL) {
        builder_error(b, event->start_mark, err,
                      "a string contains a NUL character; remove the \\0 "
                      "escape");
        return NULL;
    }

    if (tag != NULL && strcmp(tag, YAML_TAG_PREFIX "str") == 0)
        value = json_stringn(text, len);
    else if (event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE || tag != NULL)
        value = plain_value(b, event, err);
    else
        value = json_stringn(text, len);
    if (value == NULL) {
        out_of_memory(err);
        return NULL;
    }

    if (tag != NULL && strcmp(tag, YAML_TAG_PREFIX "str") != 0 &&
        check_scalar_tag(b, event, value, err) < 0) {
        json_decref(value);
        return NULL;
    }
    return value;
}

static json_t *parse_node(struct yaml_builder *b, const yaml_event_t *event,
                          size_t depth, struct pg_error **err);
static int check_reference(struct yaml_builder *b, const yaml_event_t *event,
                           struct pg_error **err);

/* Checks that a collection's tag, if any, is the standard one. */
static int
check_collection_tag(struct yaml_builder *b, const yaml_event_t *event,
                     const char *tag, const char *expected,
                     struct pg_error **err)
{
    if (tag == NULL || strcmp(tag, expected) == 0)
        return 0;
    builder_error(b, event->start_mark, err,
                  "tag %.64s is not supported here; remove it", tag);
    return -1;
}

static int
check_depth(struct yaml_builder *b, const yaml_event_t *event, size_t depth,
            struct pg_error **err)
{
    if (depth <= PG_JSON_MAX_DEPTH)
        return 0;
    builder_error(b, event->start_mark, err,
                  "mappings and sequences are nested deeper than %d levels; "
                  "flatten the document",
                  PG_JSON_MAX_DEPTH);
    return -1;
}

static int
parse_item(struct yaml_builder *b, json_t *array, const yaml_event_t *event,
           size_t depth, struct pg_error **err)
{
    json_t *item = parse_node(b, event, depth, err);

    if (item == NULL)
        return -1;
    if (table_add(&b->doc->items, array, NULL, json_array_size(array),
                  event->start_mark) < 0 ||
        json_array_append_new(array, item) < 0) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

/* Parses the children of one collection: a sequence's items or a
 * mapping's members. */
typedef int (*yaml_child_parser)(struct yaml_builder *b, json_t *collection,
                                 const yaml_event_t *event, size_t depth,
                                 struct pg_error **err);

/*
 * Parses a sequence or a mapping into collection (taken), from the event
 * after start to the matching end event. Returns collection, or NULL.
 */
static json_t *
parse_collection(struct yaml_builder *b, const yaml_event_t *start,
                 size_t depth, json_t *collection, yaml_event_type_t end,
                 yaml_child_parser parse_child, struct pg_error **err)
{
    yaml_event_t event;

    if (collection == NULL ||
        record_value(b, collection, start->start_mark) < 0) {
        out_of_memory(err);
        goto fail;
    }

    for (;;) {
        int rc;

        if (next_event(b, &event, err) < 0)
            goto fail;
        if (event.type == end) {
            yaml_event_delete(&event);
            break;
        }
        rc = parse_child(b, collection, &event, depth, err);
        yaml_event_delete(&event);
        if (rc < 0)
            goto fail;
    }
    return collection;

fail:
    json_decref(collection);
    return NULL;
}

static json_t *
parse_sequence(struct yaml_builder *b, const yaml_event_t *start, size_t depth,
               struct pg_error **err)
{
    const char *tag = (const char *)start->data.sequence_start.tag;

    if (check_depth(b, start, depth, err) < 0 ||
        check_collection_tag(b, start, tag, YAML_TAG_PREFIX "seq", err) < 0)
        return NULL;
    return parse_collection(b, start, depth, json_array(),
                            YAML_SEQUENCE_END_EVENT, parse_item, err);
}

/*
 * Returns the text of a mapping key. Keys must be scalars that stay
 * strings: a plain 1, true or null key would silently turn into the string
 * "1", "true" or "", so the file must quote it.
 */
static const char *
key_text(struct yaml_builder *b, const yaml_event_t *event,
         struct pg_error **err)
{
    json_t *resolved;
    const char *text;
    bool is_string;

    if (check_reference(b, event, err) < 0)
        return NULL;
    if (event->type != YAML_SCALAR_EVENT) {
        builder_error(b, event->start_mark, err,
                      "a mapping key is not a string; use a plain or quoted "
                      "string as the key");
        return NULL;
    }

    resolved = scalar_value(b, event, err);
    if (resolved == NULL)
        return NULL;
    is_string = json_is_string(resolved);
    json_decref(resolved);

    text = (const char *)event->data.scalar.value;
    if (!is_string) {
        builder_error(b, event->start_mark, err,
                      "key %.64s is not a string; quote it (\"%.64s\")", text,
                      text);
        return NULL;
    }
    return text;
}

static int
check_duplicate(struct yaml_builder *b, const json_t *object, const char *key,
                const yaml_event_t *event, struct pg_error **err)
{
    size_t line = 0;

    if (json_object_get(object, key) == NULL)
        return 0;

    for (size_t i = 0; i < b->doc->keys.n; i++) {
        const struct yaml_mark *mark = &b->doc->keys.marks[i];

        if (mark->owner == object && strcmp(mark->key, key) == 0)
            line = mark->line;
    }
    builder_error(b, event->start_mark, err,
                  "duplicate key \"%.64s\" (first at line %zu); remove one "
                  "of them",
                  key, line);
    return -1;
}

/* Parses one key and its value into object; key_event is the key's event. */
static int
parse_member(struct yaml_builder *b, json_t *object,
             const yaml_event_t *key_event, size_t depth, struct pg_error **err)
{
    const char *key = key_text(b, key_event, err);
    yaml_event_t event;
    json_t *value;

    if (key == NULL || check_duplicate(b, object, key, key_event, err) < 0)
        return -1;

    if (next_event(b, &event, err) < 0)
        return -1;
    value = parse_node(b, &event, depth, err);
    yaml_event_delete(&event);
    if (value == NULL)
        return -1;

    if (table_add(&b->doc->keys, object, key, 0, key_event->start_mark) < 0 ||
        json_object_set_new(object, key, value) < 0) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

static json_t *
parse_mapping(struct yaml_builder *b, const yaml_event_t *start, size_t depth,
              struct pg_error **err)
{
    const char *tag = (const char *)start->data.mapping_start.tag;

    if (check_depth(b, start, depth, err) < 0 ||
        check_collection_tag(b, start, tag, YAML_TAG_PREFIX "map", err) < 0)
        return NULL;
    return parse_collection(b, start, depth, json_object(),
                            YAML_MAPPING_END_EVENT, parse_member, err);
}

static const char *
event_anchor(const yaml_event_t *event)
{
    switch (event->type) {
    case YAML_SCALAR_EVENT:
        return (const char *)event->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT:
        return (const char *)event->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT:
        return (const char *)event->data.mapping_start.anchor;
    default:
        return NULL;
    }
}

/*
 * Rejects anchors and aliases. They would let a short file expand into a
 * huge tree, and no configuration or policy needs them.
 */
static int
check_reference(struct yaml_builder *b, const yaml_event_t *event,
                struct pg_error **err)
{
    const char *anchor = event_anchor(event);

    if (event->type == YAML_ALIAS_EVENT) {
        builder_error(b, event->start_mark, err,
                      "aliases (*%.64s) are not supported; write the value "
                      "out in full",
                      (const char *)event->data.alias.anchor);
        return -1;
    }
    if (anchor != NULL) {
        builder_error(b, event->start_mark, err,
                      "anchors (&%.64s) are not supported; write the value "
                      "out in full",
                      anchor);
        return -1;
    }
    return 0;
}

/* Builds the value that starts with event; depth counts enclosing nodes. */
static json_t *
parse_node(struct yaml_builder *b, const yaml_event_t *event, size_t depth,
           struct pg_error **err)
{
    json_t *value;

    if (check_reference(b, event, err) < 0)
        return NULL;

    switch (event->type) {
    case YAML_SEQUENCE_START_EVENT:
        return parse_sequence(b, event, depth + 1, err);
    case YAML_MAPPING_START_EVENT:
        return parse_mapping(b, event, depth + 1, err);
    case YAML_SCALAR_EVENT:
        break;
    default:
        builder_error(b, event->start_mark, err,
                      "unexpected YAML event %d; report this as a bug",
                      (int)event->type);
        return NULL;
    }

    value = scalar_value(b, event, err);
    if (value != NULL && record_value(b, value, event->start_mark) < 0) {
        out_of_memory(err);
        json_decref(value);
        return NULL;
    }
    if (value != NULL && json_is_string(value))
        record_content(b, event);
    return value;
}

/* Expects an event of the given type, as the stream's structure requires. */
static int
expect_event(struct yaml_builder *b, yaml_event_type_t type,
             yaml_event_t *event, struct pg_error **err)
{
    if (next_event(b, event, err) < 0)
        return -1;
    if (event->type == type)
        return 0;

    if (type == YAML_STREAM_END_EVENT &&
        event->type == YAML_DOCUMENT_START_EVENT) {
        builder_error(b, event->start_mark, err,
                      "a second YAML document starts here; keep one "
                      "document per file");
    } else {
        builder_error(b, event->start_mark, err,
                      "unexpected YAML event %d; report this as a bug",
                      (int)event->type);
    }
    yaml_event_delete(event);
    return -1;
}

/* Parses the one document after the document start event. */
static json_t *
parse_document(struct yaml_builder *b, struct pg_error **err)
{
    yaml_event_t event;
    json_t *root;

    if (next_event(b, &event, err) < 0)
        return NULL;
    root = parse_node(b, &event, 0, err);
    yaml_event_delete(&event);
    if (root == NULL)
        return NULL;

    /* A document with nothing but "---" is as empty as an empty file. */
    if (json_is_null(root)) {
        root = json_object();
        if (root == NULL)
            out_of_memory(err);
    }
    return root;
}

static int
parse_stream(struct yaml_builder *b, struct pg_error **err)
{
    yaml_event_t event;
    json_t *root = NULL;

    if (expect_event(b, YAML_STREAM_START_EVENT, &event, err) < 0)
        return -1;
    yaml_event_delete(&event);

    if (next_event(b, &event, err) < 0)
        return -1;
    if (event.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&event);
        root = json_object();
        if (root == NULL) {
            out_of_memory(err);
            return -1;
        }
        b->doc->root = root;
        return 0;
    }
    yaml_event_delete(&event);

    root = parse_document(b, err);
    if (root == NULL)
        return -1;
    b->doc->root = root;

    if (expect_event(b, YAML_DOCUMENT_END_EVENT, &event, err) < 0)
        return -1;
    yaml_event_delete(&event);
    if (expect_event(b, YAML_STREAM_END_EVENT, &event, err) < 0)
        return -1;
    yaml_event_delete(&event);
    return 0;
}

struct yaml_doc *
yaml_doc_parse(const char *name, const char *text, size_t len,
               struct pg_error **err)
{
    struct yaml_builder b = {.text = text, .len = len};
    struct yaml_doc *doc = NULL;
    bool parser_ready = false;

    if (len > PG_CONFIG_FILE_MAX_BYTES) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "%s: file is larger than %u bytes; split it or remove "
                     "unused parts",
                     name, PG_CONFIG_FILE_MAX_BYTES);
        goto fail;
    }

    doc = calloc(1, sizeof(*doc));
    if (doc == NULL || (doc->name = strdup(name)) == NULL ||
        (doc->text = malloc(len + 1)) == NULL ||
        yaml_parser_initialize(&b.parser) == 0) {
        out_of_memory(err);
        goto fail;
    }
    parser_ready = true;
    memcpy(doc->text, text, len);
    doc->text[len] = '\0';
    doc->len = len;
    b.doc = doc;
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);

    if (parse_stream(&b, err) < 0)
        goto fail;

    yaml_parser_delete(&b.parser);
    table_sort(&doc->values);
    table_sort(&doc->keys);
    table_sort(&doc->items);
    return doc;

fail:
    if (parser_ready)
        yaml_parser_delete(&b.parser);
    yaml_doc_free(doc);
    return NULL;
}

/*
 * Reads at most PG_CONFIG_FILE_MAX_BYTES + 1 bytes of fd into a new buffer,
 * so that a larger file is detected without reading all of it.
 */
static char *
read_bounded(int fd, size_t *len)
{
    size_t cap = (size_t)PG_CONFIG_FILE_MAX_BYTES + 1;
    char *buf = malloc(cap);
    size_t used = 0;

    if (buf == NULL)
        return NULL;
    while (used < cap) {
        ssize_t n = read(fd, buf + used, cap - used);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *len = used;
    return buf;
}

struct yaml_doc *
yaml_doc_load(const char *path, struct pg_error **err)
{
    struct yaml_doc *doc = NULL;
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer; the regular-file check below then rejects it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "%s: failed to open: %s; check the path and its "
                     "permissions",
                     path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "%s: not a regular file; give the path of a YAML file",
                     path);
        goto out;
    }

    errno = 0;
    text = read_bounded(fd, &len);
    if (text == NULL) {
        pg_error_set(err, 500, PG_ERR_CONFIG, "%s: failed to read: %s", path,
                     errno != 0 ? strerror(errno) : "out of memory");
        goto out;
    }
    doc = yaml_doc_parse(path, text, len, err);

out:
    free(text);
    if (fd >= 0)
        close(fd);
    return doc;
}

json_t *
yaml_doc_root(const struct yaml_doc *doc)
{
    return doc->root;
}

const char *
yaml_doc_name(const struct yaml_doc *doc)
{
    return doc->name;
}

static void
mark_position(const struct yaml_mark *mark, size_t *line, size_t *column)
{
    *line = mark != NULL ? mark->line : 0;
    *column = mark != NULL ? mark->column : 0;
}

void
yaml_doc_position(const struct yaml_doc *doc, const json_t *value, size_t *line,
                  size_t *column)
{
    const struct yaml_mark *mark = NULL;

    if (value != NULL && !is_singleton(value))
        mark = table_find(&doc->values, value, NULL, 0);
    mark_position(mark, line, column);
}

void
yaml_doc_content_position(const struct yaml_doc *doc, const json_t *string,
                          size_t *line, size_t *column, bool *literal)
{
    const struct yaml_mark *mark = NULL;

    if (string != NULL && !is_singleton(string))
        mark = table_find(&doc->values, string, NULL, 0);
    *line = mark != NULL ? mark->content_line : 0;
    *column = mark != NULL ? mark->content_column : 0;
    *literal = mark != NULL && mark->literal;
}

/* Returns the bytes of the UTF-8 sequence that starts with byte c, so
 * columns count characters as libyaml's marks do. */
static size_t
utf8_length(unsigned char c)
{
    if (c >= 0xf0)
        return 4;
    if (c >= 0xe0)
        return 3;
    if (c >= 0xc0)
        return 2;
    return 1;
}

/* Returns the raw bytes of the escape at text[at] in a double-quoted
 * scalar: "\\n" is 2, "\\x41" 4, "\\u0041" 6, "\\U00000041" 10. */
static size_t
escape_length(const char *text, size_t at, size_t len)
{
    size_t n = 2;

    if (at + 1 >= len)
        return 1;
    if (text[at + 1] == 'x')
        n = 4;
    else if (text[at + 1] == 'u')
        n = 6;
    else if (text[at + 1] == 'U')
        n = 10;
    return at + n <= len ? n : len - at;
}

/* Advances past the spaces and tabs at text[*at], counting columns. */
static void
skip_blanks(const struct yaml_doc *doc, size_t *at, size_t *column)
{
    while (*at < doc->len &&
           (doc->text[*at] == ' ' || doc->text[*at] == '\t')) {
        (*at)++;
        (*column)++;
    }
}

/* Whether only spaces and tabs stand between text[at] and a line break,
 * which YAML trims when it folds the line. */
static bool
blanks_before_break(const struct yaml_doc *doc, size_t at)
{
    while (at < doc->len && (doc->text[at] == ' ' || doc->text[at] == '\t'))
        at++;
    return at < doc->len && doc->text[at] == '\n';
}

void
yaml_doc_string_position(const struct yaml_doc *doc, const json_t *string,
                         size_t line, size_t column, size_t *out_line,
                         size_t *out_column)
{
    const struct yaml_mark *mark = NULL;
    size_t at, raw_line, raw_column, dl = 1, dc = 1;
    bool single, quoted;

    if (string != NULL && !is_singleton(string))
        mark = table_find(&doc->values, string, NULL, 0);
    *out_line = 0;
    *out_column = 0;
    if (mark == NULL)
        return;
    if (mark->literal || line < 1 || column < 1) {
        /* A literal block keeps each line and character as written. */
        *out_line = mark->content_line + (line > 0 ? line - 1 : 0);
        *out_column = mark->content_column + (column > 0 ? column - 1 : 0);
        return;
    }
    single = mark->style == YAML_SINGLE_QUOTED_SCALAR_STYLE;
    quoted = single || mark->style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;

    /* Plain, quoted and folded scalars fold their line breaks: walk the
     * written text one decoded character at a time. */
    at = mark->content_index;
    raw_line = mark->content_line;
    raw_column = mark->content_column;
    while (at < doc->len && (dl < line || (dl == line && dc < column))) {
        char c = doc->text[at];
        size_t breaks = 0;

        if (quoted && c == (single ? '\'' : '"') &&
            !(single && at + 1 < doc->len && doc->text[at + 1] == '\''))
            break; /* the closing quote */
        if ((c == ' ' || c == '\t') && blanks_before_break(doc, at)) {
            /* Trailing blanks are trimmed: they stand for nothing. */
            skip_blanks(doc, &at, &raw_column);
            continue;
        }
        if (!single && quoted && c == '\\' && at + 1 < doc->len &&
            doc->text[at + 1] == '\n') {
            /* An escaped line break joins the lines with nothing. */
            at += 2;
            raw_line++;
            raw_column = 1;
            skip_blanks(doc, &at, &raw_column);
            continue;
        }
        if (c == '\n') {
            /* One break folds into a space; each further one, a blank
             * line, stays a line break. */
            while (at < doc->len && doc->text[at] == '\n') {
                breaks++;
                at++;
                raw_line++;
                raw_column = 1;
                skip_blanks(doc, &at, &raw_column);
            }
            if (breaks == 1) {
                dc++;
            } else {
                dl += breaks - 1;
                dc = 1;
            }
            continue;
        }
        if (single && c == '\'') {
            at += 2;
            raw_column += 2;
        } else if (quoted && !single && c == '\\') {
            size_t n = escape_length(doc->text, at, doc->len);

            at += n;
            raw_column += n;
            if (doc->text[at - n + 1] == 'n') {
                dl++;
                dc = 0;
            }
        } else {
            at += utf8_length((unsigned char)c);
            raw_column++;
        }
        dc++;
    }
    /* The character may come after an escaped line break, which stands
     * for nothing. */
    while (quoted && !single && at + 1 < doc->len && doc->text[at] == '\\' &&
           doc->text[at + 1] == '\n') {
        at += 2;
        raw_line++;
        raw_column = 1;
        skip_blanks(doc, &at, &raw_column);
    }
    *out_line = raw_line;
    *out_column = raw_column;
}

void
yaml_doc_key_position(const struct yaml_doc *doc, const json_t *object,
                      const char *key, size_t *line, size_t *column)
{
    const struct yaml_mark *mark = NULL;

    if (object != NULL && key != NULL)
        mark = table_find(&doc->keys, object, key, 0);
    mark_position(mark, line, column);
}

void
yaml_doc_index_position(const struct yaml_doc *doc, const json_t *array,
                        size_t index, size_t *line, size_t *column)
{
    const struct yaml_mark *mark = NULL;

    if (array != NULL)
        mark = table_find(&doc->items, array, NULL, index);
    mark_position(mark, line, column);
}

void
yaml_doc_free(struct yaml_doc *doc)
{
    if (doc == NULL)
        return;
    table_free(&doc->items);
    table_free(&doc->keys);
    table_free(&doc->values);
    json_decref(doc->root);
    free(doc->name);
    free(doc->text);
    free(doc);
}
