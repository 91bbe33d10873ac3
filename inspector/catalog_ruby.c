/*
 * Ruby cataloger: installed gems, from the specification files that
 * RubyGems writes into a specifications/ folder (and specifications/default/
 * for the gems bundled with Ruby). RubyGems writes them as Ruby code:
 *
 *   Gem::Specification.new do |s|
 *     s.name = "rake".freeze
 *     s.version = "13.0.6"
 *     s.licenses = ["MIT".freeze]
 *
 * The code is never evaluated. Only assignments of string literals, or
 * arrays of them, to name, version, license and licenses of the block
 * variable are read, one line each, as RubyGems writes them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "inspector/catalog.h"

/* Bytes of a name, version or license that is kept, after decoding. */
#define RUBY_VALUE_MAX 1024
#define RUBY_VALUE_MAX_TEXT "1024"

/* Licenses kept from one specification. */
#define RUBY_LICENSES_MAX 16

/* Bytes of the block variable's name. */
#define RUBY_VARIABLE_MAX 64

#define SPEC_NEW "Gem::Specification.new"

/* A position in one line of the file. */
struct cursor {
    const char *p;
    const char *end;
};

/* A decoded string literal. */
struct literal {
    char text[RUBY_VALUE_MAX];
    size_t len;
};

/* The values a specification assigns. */
struct gem_spec {
    struct literal name;
    struct literal version;
    struct literal licenses[RUBY_LICENSES_MAX];
    size_t license_count;
    bool has_name;
    bool has_version;
};

enum literal_result {
    LITERAL_OK,
    LITERAL_INVALID,       /* not a string literal, or not closed */
    LITERAL_TOO_LONG,      /* more than RUBY_VALUE_MAX bytes */
    LITERAL_INTERPOLATION, /* "#{...}" would need evaluation */
};

/* Returns true when the path segment that ends just before end is name,
 * and stores where that segment starts. */
static bool
segment_is(const char *path, const char *end, const char *name,
           const char **start)
{
    size_t len = strlen(name);

    *start = end;
    while (*start > path && (*start)[-1] != '/')
        (*start)--;
    return (size_t)(end - *start) == len && memcmp(*start, name, len) == 0;
}

static enum catalog_want
ruby_want(const char *path, int64_t size)
{
    const char *slash = strrchr(path, '/');
    const char *folder;

    (void)size;
    if (slash == NULL || !catalog_has_suffix(path, ".gemspec"))
        return CATALOG_SKIP;
    if (segment_is(path, slash, "default", &folder) && folder > path)
        slash = folder - 1;
    return segment_is(path, slash, "specifications", &folder) ? CATALOG_BUFFER
                                                              : CATALOG_SKIP;
}

static void
skip_spaces(struct cursor *cursor)
{
    while (cursor->p < cursor->end && (*cursor->p == ' ' || *cursor->p == '\t'))
        cursor->p++;
}

static bool
skip_text(struct cursor *cursor, const char *text)
{
    size_t len = strlen(text);

    if ((size_t)(cursor->end - cursor->p) < len ||
        memcmp(cursor->p, text, len) != 0)
        return false;
    cursor->p += len;
    return true;
}

static bool
is_identifier_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/* Appends one byte to literal. Returns false when it is full. */
static bool
literal_put(struct literal *literal, char c)
{
    if (literal->len == sizeof(literal->text))
        return false;
    literal->text[literal->len++] = c;
    return true;
}

/* Appends code point as UTF-8. Returns false when literal is full. */
static bool
literal_put_utf8(struct literal *literal, uint32_t code)
{
    char bytes[4];
    size_t n;

    if (code < 0x80) {
        bytes[0] = (char)code;
        n = 1;
    } else if (code < 0x800) {
        bytes[0] = (char)(0xC0 | (code >> 6));
        bytes[1] = (char)(0x80 | (code & 0x3F));
        n = 2;
    } else if (code < 0x10000) {
        bytes[0] = (char)(0xE0 | (code >> 12));
        bytes[1] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[2] = (char)(0x80 | (code & 0x3F));
        n = 3;
    } else {
        bytes[0] = (char)(0xF0 | ((code >> 18) & 0x07));
        bytes[1] = (char)(0x80 | ((code >> 12) & 0x3F));
        bytes[2] = (char)(0x80 | ((code >> 6) & 0x3F));
        bytes[3] = (char)(0x80 | (code & 0x3F));
        n = 4;
    }
    for (size_t i = 0; i < n; i++) {
        if (!literal_put(literal, bytes[i]))
            return false;
    }
    return true;
}

/* Reads up to max hex digits. Returns how many were read. */
static size_t
read_hex(struct cursor *cursor, size_t max, uint32_t *value)
{
    size_t n = 0;

    *value = 0;
    while (n < max && cursor->p < cursor->end) {
        char c = *cursor->p;
        uint32_t digit;

        if (c >= '0' && c <= '9')
            digit = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            digit = (uint32_t)(c - 'A' + 10);
        else
            break;
        *value = *value * 16 + digit;
        cursor->p++;
        n++;
    }
    return n;
}

/* Returns the character a one-letter escape such as \n stands for; any
 * other character after a backslash stands for itself. */
static char
simple_escape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'e':
        return '\033';
    case 's':
        return ' ';
    case '0':
        return '\0';
    case 'a':
        return '\a';
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'v':
        return '\v';
    default:
        return c;
    }
}

/*
 * Decodes the escape after a backslash in a double-quoted literal: the
 * ones String#dump writes (\n, \t, \e, \xHH, \uHHHH, \u{H...}) and a
 * backslash before any other character.
 */
static enum literal_result
decode_escape(struct cursor *cursor, struct literal *literal)
{
    char c = *cursor->p++;
    uint32_t code;
    bool fits;

    if (c == 'x') {
        if (read_hex(cursor, 2, &code) == 0)
            return LITERAL_INVALID;
        fits = literal_put(literal, (char)code);
    } else if (c == 'u') {
        bool braced = skip_text(cursor, "{");

        if (read_hex(cursor, braced ? 6 : 4, &code) == 0 || code > 0x10FFFF ||
            (braced && !skip_text(cursor, "}")))
            return LITERAL_INVALID;
        fits = literal_put_utf8(literal, code);
    } else {
        fits = literal_put(literal, simple_escape(c));
    }
    return fits ? LITERAL_OK : LITERAL_TOO_LONG;
}

/*
 * Reads the string literal at the cursor into literal: "..." with
 * escapes, '...' where only \' and \\ are escapes, or %q with a bracket
 * pair, and an optional .freeze after it.
 */
static enum literal_result
read_literal(struct cursor *cursor, struct literal *literal)
{
    char close;
    bool escapes;

    literal->len = 0;
    if (skip_text(cursor, "%q{") || skip_text(cursor, "%q(") ||
        skip_text(cursor, "%q[") || skip_text(cursor, "%q<")) {
        close = cursor->p[-1] == '{'   ? '}'
                : cursor->p[-1] == '(' ? ')'
                : cursor->p[-1] == '[' ? ']'
                                       : '>';
        escapes = false;
    } else if (cursor->p < cursor->end &&
               (*cursor->p == '"' || *cursor->p == '\'')) {
        close = *cursor->p++;
        escapes = close == '"';
    } else {
        return LITERAL_INVALID;
    }

    while (cursor->p < cursor->end && *cursor->p != close) {
        char c = *cursor->p++;
        enum literal_result result;

        if (escapes && c == '#' && cursor->p < cursor->end &&
            (*cursor->p == '{' || *cursor->p == '@' || *cursor->p == '$'))
            return LITERAL_INTERPOLATION;
        if (c == '\\' && cursor->p == cursor->end)
            return LITERAL_INVALID;
        if (c == '\\' && escapes)
            result = decode_escape(cursor, literal);
        else if (c == '\\' && (*cursor->p == close || *cursor->p == '\\'))
            result = literal_put(literal, *cursor->p++) ? LITERAL_OK
                                                        : LITERAL_TOO_LONG;
        else
            result = literal_put(literal, c) ? LITERAL_OK : LITERAL_TOO_LONG;
        if (result != LITERAL_OK)
            return result;
    }
    if (cursor->p == cursor->end)
        return LITERAL_INVALID;
    cursor->p++;
    skip_text(cursor, ".freeze");
    return LITERAL_OK;
}

/* Reads "[literal, literal, ...]" into spec's licenses; licenses past
 * RUBY_LICENSES_MAX are read and left out. */
static enum literal_result
read_license_array(struct cursor *cursor, struct gem_spec *spec)
{
    struct literal extra;

    if (!skip_text(cursor, "["))
        return LITERAL_INVALID;
    skip_spaces(cursor);
    if (skip_text(cursor, "]"))
        return LITERAL_OK;
    for (;;) {
        struct literal *slot = spec->license_count < RUBY_LICENSES_MAX
                                   ? &spec->licenses[spec->license_count]
                                   : &extra;
        enum literal_result result = read_literal(cursor, slot);

        if (result != LITERAL_OK)
            return result;
        if (slot != &extra)
            spec->license_count++;
        skip_spaces(cursor);
        if (skip_text(cursor, "]"))
            return LITERAL_OK;
        if (!skip_text(cursor, ","))
            return LITERAL_INVALID;
        skip_spaces(cursor);
    }
}

static bool
span_is(const char *text, size_t len, const char *expected)
{
    return len == strlen(expected) && memcmp(text, expected, len) == 0;
}

/* Reads the value assigned to attribute, the name after "VAR.". Values
 * of other attributes are not read. */
static enum literal_result
read_assignment(struct cursor *cursor, const char *attribute, size_t len,
                struct gem_spec *spec)
{
    enum literal_result result = LITERAL_OK;

    if (span_is(attribute, len, "name")) {
        spec->has_name = true;
        result = read_literal(cursor, &spec->name);
    } else if (span_is(attribute, len, "version")) {
        spec->has_version = true;
        result = read_literal(cursor, &spec->version);
    } else if (span_is(attribute, len, "licenses")) {
        spec->license_count = 0;
        result = read_license_array(cursor, spec);
    } else if (span_is(attribute, len, "license")) {
        result = read_literal(cursor, &spec->licenses[0]);
        spec->license_count = result == LITERAL_OK ? 1 : 0;
    }
    return result;
}

/* Returns the message for a value that could not be read. */
static const char *
literal_problem(enum literal_result result)
{
    switch (result) {
    case LITERAL_TOO_LONG:
        return "is longer than " RUBY_VALUE_MAX_TEXT " bytes";
    case LITERAL_INTERPOLATION:
        return "has string interpolation, which is not evaluated";
    default:
        return "is not a string literal";
    }
}

/*
 * Reads one line of the specification block when it assigns to an
 * attribute of variable: "VAR.ATTRIBUTE = VALUE". Returns the result of
 * reading VALUE and stores the attribute's name for messages.
 */
static enum literal_result
read_line(struct cursor *line, const char *variable, struct gem_spec *spec,
          const char **attribute, size_t *attribute_len)
{
    *attribute_len = 0;
    skip_spaces(line);
    if (!skip_text(line, variable) || !skip_text(line, "."))
        return LITERAL_OK;
    *attribute = line->p;
    while (line->p < line->end && is_identifier_char(*line->p))
        line->p++;
    *attribute_len = (size_t)(line->p - *attribute);
    skip_spaces(line);
    if (!skip_text(line, "=") ||
        (line->p < line->end &&
         (*line->p == '=' || *line->p == '~' || *line->p == '>'))) {
        *attribute_len = 0;
        return LITERAL_OK;
    }
    skip_spaces(line);
    return read_assignment(line, *attribute, *attribute_len, spec);
}

/* Stores the block variable of a "Gem::Specification.new do |s|" line in
 * variable. Returns false when the line opens no such block. */
static bool
read_block_variable(struct cursor line, char *variable)
{
    const char *spec_new =
        memmem(line.p, (size_t)(line.end - line.p), SPEC_NEW, strlen(SPEC_NEW));
    size_t len = 0;

    if (spec_new == NULL)
        return false;
    line.p = spec_new + strlen(SPEC_NEW);
    line.p = memchr(line.p, '|', (size_t)(line.end - line.p));
    if (line.p == NULL)
        return false;
    line.p++;
    skip_spaces(&line);
    while (line.p < line.end && is_identifier_char(*line.p) &&
           len < RUBY_VARIABLE_MAX)
        variable[len++] = *line.p++;
    variable[len] = '\0';
    skip_spaces(&line);
    return len > 0 && skip_text(&line, "|");
}

/* Builds the package item. Returns NULL when memory is short. */
static json_t *
gem_package_item(const char *path, const struct gem_spec *spec)
{
    char name[RUBY_VALUE_MAX + 1];
    char version[RUBY_VALUE_MAX + 1];
    json_t *item = json_object();
    json_t *licenses = json_array();

    memcpy(name, spec->name.text, spec->name.len);
    name[spec->name.len] = '\0';
    memcpy(version, spec->version.text, spec->version.len);
    version[spec->version.len] = '\0';
    if (item == NULL || licenses == NULL ||
        json_object_set_new(item, "type", json_string("gem")) < 0 ||
        json_object_set_new(item, "name",
                            inspector_json_text(name, spec->name.len)) < 0 ||
        json_object_set_new(item, "version",
                            inspector_json_text(version, spec->version.len)) <
            0 ||
        json_object_set_new(item, "path",
                            inspector_json_text(path, strlen(path))) < 0 ||
        json_object_set_new(item, "purl",
                            catalog_purl("gem", NULL, name, version, NULL)) < 0)
        goto fail;
    for (size_t i = 0; i < spec->license_count; i++) {
        if (json_array_append_new(
                licenses, inspector_json_text(spec->licenses[i].text,
                                              spec->licenses[i].len)) < 0)
            goto fail;
    }
    if (spec->license_count > 0)
        return json_object_set_new(item, "licenses", licenses) < 0 ? NULL
                                                                   : item;
    json_decref(licenses);
    return item;

fail:
    json_decref(licenses);
    json_decref(item);
    return NULL;
}

/* Adds the gem a specification file describes, or a note naming the line
 * that could not be read or the assignment that is missing. */
static int
ruby_file(struct catalog_ctx *ctx, const char *path, const unsigned char *data,
          size_t len)
{
    const char *text = (const char *)data;
    char variable[RUBY_VARIABLE_MAX + 1] = "";
    struct gem_spec *spec = calloc(1, sizeof(*spec));
    unsigned long number = 0;
    size_t pos = 0;
    int result;

    if (spec == NULL)
        return -1;
    while (pos < len) {
        const char *newline = memchr(text + pos, '\n', len - pos);
        size_t line_len =
            newline == NULL ? len - pos : (size_t)(newline - (text + pos));
        struct cursor line = {text + pos, text + pos + line_len};
        const char *attribute = NULL;
        size_t attribute_len;
        enum literal_result read;

        pos += line_len + 1;
        number++;
        if (variable[0] == '\0') {
            read_block_variable(line, variable);
            continue;
        }
        read = read_line(&line, variable, spec, &attribute, &attribute_len);
        if (read != LITERAL_OK) {
            result = catalog_note(
                ctx, catalog_ruby.name, path, "line %lu: %.*s %s", number,
                (int)attribute_len, attribute, literal_problem(read));
            goto out;
        }
    }

    if (variable[0] == '\0')
        result = catalog_note(ctx, catalog_ruby.name, path,
                              "no \"" SPEC_NEW " do |VARIABLE|\" line in "
                              "%lu lines",
                              number);
    else if (!spec->has_name || spec->name.len == 0 || !spec->has_version)
        result = catalog_note(
            ctx, catalog_ruby.name, path, "no %s assignment in %lu lines",
            spec->has_name && spec->name.len > 0 ? "version" : "name", number);
    else
        result = catalog_add(ctx, "packages", gem_package_item(path, spec));

out:
    free(spec);
    return result;
}

const struct cataloger catalog_ruby = {
    .name = "ruby",
    .want = ruby_want,
    .file = ruby_file,
};
