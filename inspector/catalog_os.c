/*
 * os-release cataloger: the distribution an image is built from, read
 * from etc/os-release or usr/lib/os-release as os-release(5) describes
 * them. Each line is a comment ('#'), blank, or KEY=value, where the value
 * is unquoted or enclosed in double or single quotes, and a backslash
 * escapes '"', '\', '$' and '`' inside double quotes and any character
 * outside quotes. Nothing is expanded or evaluated.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "inspector/catalog.h"

/* Bytes of one line whose key is kept. os-release values are short
 * names and URLs. */
#define OS_RELEASE_LINE_MAX 4096

/* The keys kept, and the names of the item fields they become. */
static const struct {
    const char *key;
    const char *field;
} os_release_keys[] = {
    {"ID", "id"},
    {"VERSION_ID", "version_id"},
    {"NAME", "name"},
    {"PRETTY_NAME", "pretty_name"},
    {"VERSION_CODENAME", "version_codename"},
    {"ID_LIKE", "id_like"},
};

#define OS_RELEASE_KEYS (sizeof(os_release_keys) / sizeof(os_release_keys[0]))

static enum catalog_want
os_release_want(const char *path, int64_t size)
{
    (void)size;
    if (strcmp(path, "etc/os-release") == 0 ||
        strcmp(path, "usr/lib/os-release") == 0)
        return CATALOG_BUFFER;
    return CATALOG_SKIP;
}

/* Returns the index in os_release_keys of the key in text[0..len), or -1
 * for a key that is not kept. */
static int
os_release_key_index(const char *text, size_t len)
{
    for (size_t i = 0; i < OS_RELEASE_KEYS; i++) {
        if (strlen(os_release_keys[i].key) == len &&
            memcmp(os_release_keys[i].key, text, len) == 0)
            return (int)i;
    }
    return -1;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Decodes a quoted value that starts at raw[0], the quote. Returns the
 * decoded length, or -1 when the quote is not closed or text follows it.
 * out has room for len bytes. */
static long
os_release_unquote(const char *raw, size_t len, char *out)
{
    char quote = raw[0];
    size_t used = 0;
    size_t i;

    for (i = 1; i < len && raw[i] != quote; i++) {
        if (quote == '"' && raw[i] == '\\' && i + 1 < len &&
            raw[i + 1] != '\0' && strchr("\"\\$`", raw[i + 1]) != NULL)
            i++;
        out[used++] = raw[i];
    }
    if (i == len)
        return -1;
    for (i++; i < len; i++) {
        if (!is_space(raw[i]))
            return -1;
    }
    return (long)used;
}

/* Decodes the value raw[0..len) into out, which has room for len bytes.
 * Returns the decoded length, or -1 when the quoting is invalid. */
static long
os_release_decode(const char *raw, size_t len, char *out)
{
    size_t used = 0;

    while (len > 0 && is_space(raw[len - 1]))
        len--;
    if (len > 0 && (raw[0] == '"' || raw[0] == '\''))
        return os_release_unquote(raw, len, out);

    for (size_t i = 0; i < len; i++) {
        if (raw[i] == '\\' && i + 1 < len)
            i++;
        out[used++] = raw[i];
    }
    return (long)used;
}

/*
 * Reads one line into item when its key is kept. A later line with the
 * same key replaces the value, as when a shell sources the file. Returns
 * 0, or -1 when memory is short.
 */
static int
os_release_line(json_t *item, const char *line, size_t len,
                unsigned long number, struct catalog_problems *problems)
{
    char value[OS_RELEASE_LINE_MAX];
    const char *equals;
    long value_len;
    int key;

    while (len > 0 && is_space(line[0])) {
        line++;
        len--;
    }
    if (len == 0 || line[0] == '#')
        return 0;
    equals = memchr(line, '=', len);
    if (equals == NULL) {
        catalog_problems_add(problems, "line %lu is not a KEY=value assignment",
                             number);
        return 0;
    }
    key = os_release_key_index(line, (size_t)(equals - line));
    if (key < 0)
        return 0;

    len -= (size_t)(equals + 1 - line);
    if (len > sizeof(value)) {
        catalog_problems_add(problems, "line %lu: %s is longer than %d bytes",
                             number, os_release_keys[key].key,
                             OS_RELEASE_LINE_MAX);
        return 0;
    }
    value_len = os_release_decode(equals + 1, len, value);
    if (value_len < 0) {
        catalog_problems_add(problems,
                             "line %lu: %s has an unclosed quote or text "
                             "after its closing quote",
                             number, os_release_keys[key].key);
        return 0;
    }
    return json_object_set_new(item, os_release_keys[key].field,
                               inspector_json_text(value, (size_t)value_len));
}

/*
 * Adds one "os" item with the path and the kept keys the file has, even
 * when it has none of them. Malformed lines are skipped and described in
 * one note.
 */
static int
os_release_file(struct catalog_ctx *ctx, const char *path,
                const unsigned char *data, size_t len)
{
    const char *text = (const char *)data;
    struct catalog_problems problems = {.count = 0};
    unsigned long number = 0;
    json_t *item = json_object();
    size_t pos = 0;

    if (item == NULL ||
        json_object_set_new(item, "path",
                            inspector_json_text(path, strlen(path))) < 0)
        goto fail;
    while (pos < len) {
        const char *newline = memchr(text + pos, '\n', len - pos);
        size_t line_len =
            newline == NULL ? len - pos : (size_t)(newline - (text + pos));

        if (os_release_line(item, text + pos, line_len, ++number, &problems) <
            0)
            goto fail;
        pos += line_len + 1;
    }

    if (catalog_add(ctx, "os", item) < 0)
        return -1;
    return catalog_problems_note(ctx, catalog_os_release.name, path, &problems);

fail:
    json_decref(item);
    return -1;
}

const struct cataloger catalog_os_release = {
    .name = "os-release",
    .want = os_release_want,
    .file = os_release_file,
};
