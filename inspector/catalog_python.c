/*
 * Python cataloger: installed distributions, from the core metadata file
 * of each one, NAME-VERSION.dist-info/METADATA (wheels) or
 * NAME.egg-info/PKG-INFO (setuptools), or a regular file NAME.egg-info,
 * which Debian ships for some packages. The metadata is a block of
 * email-style header fields such as "Name: requests", then a blank line
 * and the description, which is not read. A line that starts with a space
 * or a tab continues the field above it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "inspector/catalog.h"

/* Bytes of a Name, Version or license that is kept. */
#define PYTHON_VALUE_MAX 1024

/* License classifiers kept from one file. */
#define PYTHON_CLASSIFIERS_MAX 16

/* Bytes of a normalized project name in a package URL. */
#define PYTHON_NAME_MAX PYTHON_VALUE_MAX

#define LICENSE_CLASSIFIER_PREFIX "License :: "

struct span {
    const char *text; /* NULL when the field is absent */
    size_t len;
};

/* The header fields of one metadata file that make a package. */
struct python_metadata {
    struct span name;
    struct span version;
    unsigned long name_line;
    unsigned long version_line;
    struct span license;
    bool license_continued; /* License has continuation lines */
    struct span license_expression;
    struct span classifiers[PYTHON_CLASSIFIERS_MAX];
    size_t classifier_count;
    unsigned long end_line; /* the line after the header fields */
};

static enum catalog_want
python_want(const char *path, int64_t size)
{
    (void)size;
    if (catalog_has_suffix(path, ".dist-info/METADATA") ||
        catalog_has_suffix(path, ".egg-info/PKG-INFO") ||
        catalog_has_suffix(path, ".egg-info"))
        return CATALOG_BUFFER;
    return CATALOG_SKIP;
}

static struct span
trim(const char *text, size_t len)
{
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    return (struct span){text, len};
}

static bool
name_is(struct span name, const char *expected)
{
    return name.len == strlen(expected) &&
           strncasecmp(name.text, expected, name.len) == 0;
}

/* Keeps the license name of a "License :: ..." classifier: its last
 * part, such as "MIT License" in "License :: OSI Approved :: MIT
 * License". The bare "License :: OSI Approved" names no license. */
static void
python_take_classifier(struct python_metadata *metadata, struct span value)
{
    size_t prefix_len = strlen(LICENSE_CLASSIFIER_PREFIX);
    const char *end = value.text + value.len;
    const char *last;
    struct span license;

    if (value.len < prefix_len ||
        memcmp(value.text, LICENSE_CLASSIFIER_PREFIX, prefix_len) != 0 ||
        value.len > PYTHON_VALUE_MAX ||
        metadata->classifier_count == PYTHON_CLASSIFIERS_MAX)
        return;
    last = value.text + prefix_len;
    for (const char *p = last; p + 4 <= end; p++) {
        if (memcmp(p, " :: ", 4) == 0)
            last = p + 4;
    }
    license = trim(last, (size_t)(end - last));
    if (license.len == 0 ||
        (license.len == strlen("OSI Approved") &&
         memcmp(license.text, "OSI Approved", license.len) == 0))
        return;
    metadata->classifiers[metadata->classifier_count++] = license;
}

/* Stores one header field; the first of a repeated field wins. */
static void
python_take_field(struct python_metadata *metadata, struct span name,
                  struct span value, unsigned long line)
{
    if (name_is(name, "Name") && metadata->name.text == NULL) {
        metadata->name = value;
        metadata->name_line = line;
    } else if (name_is(name, "Version") && metadata->version.text == NULL) {
        metadata->version = value;
        metadata->version_line = line;
    } else if (name_is(name, "License") && metadata->license.text == NULL)
        metadata->license = value;
    else if (name_is(name, "License-Expression") &&
             metadata->license_expression.text == NULL)
        metadata->license_expression = value;
    else if (name_is(name, "Classifier"))
        python_take_classifier(metadata, value);
}

/*
 * Reads the header fields up to the first blank line, or up to a line
 * that is no field, which also ends them as Python's email parser has
 * it. Continuation lines are skipped except to mark a License that spans
 * them, which is license text rather than a name.
 */
static void
python_read_header(const char *text, size_t len,
                   struct python_metadata *metadata)
{
    size_t pos = 0;
    unsigned long number = 0;
    bool last_is_license = false;

    while (pos < len) {
        const char *line = text + pos;
        const char *newline = memchr(line, '\n', len - pos);
        size_t line_len =
            newline == NULL ? len - pos : (size_t)(newline - line);
        const char *colon;
        struct span field_name;

        pos += line_len + 1;
        number++;
        if (line_len > 0 && line[line_len - 1] == '\r')
            line_len--;
        if (line_len > 0 && (line[0] == ' ' || line[0] == '\t') && number > 1) {
            metadata->license_continued |=
                last_is_license && trim(line, line_len).len > 0;
            continue;
        }
        colon = memchr(line, ':', line_len);
        if (colon == NULL || colon == line)
            break;
        field_name = trim(line, (size_t)(colon - line));
        python_take_field(
            metadata, field_name,
            trim(colon + 1, line_len - (size_t)(colon - line) - 1), number);
        last_is_license = name_is(field_name, "License");
    }
    metadata->end_line = number;
}

/*
 * Writes the project name normalized by the rule of PEP 503 (lowercase,
 * each run of '-', '_' and '.' one '-') into out, which has room for
 * name.len + 1 bytes.
 */
static void
python_normalize_name(struct span name, char *out)
{
    size_t used = 0;

    for (size_t i = 0; i < name.len; i++) {
        char c = name.text[i];

        if (c == '-' || c == '_' || c == '.') {
            if (used == 0 || out[used - 1] != '-')
                out[used++] = '-';
        } else {
            out[used++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
    }
    out[used] = '\0';
}

static bool
license_is_name(struct span license, bool continued)
{
    return license.text != NULL && license.len > 0 &&
           license.len <= PYTHON_VALUE_MAX && !continued &&
           !(license.len == 7 && strncasecmp(license.text, "UNKNOWN", 7) == 0);
}

/*
 * Builds the licenses: License-Expression, the SPDX field of newer core
 * metadata, else License when it is one line of a name, else the license
 * classifiers. Returns an empty array when there are none, or
 * NULL when memory is short.
 */
static json_t *
python_licenses(const struct python_metadata *metadata)
{
    json_t *licenses = json_array();
    struct span single = {NULL, 0};
    int failed = 0;

    if (licenses == NULL)
        return NULL;
    if (metadata->license_expression.text != NULL &&
        metadata->license_expression.len > 0 &&
        metadata->license_expression.len <= PYTHON_VALUE_MAX)
        single = metadata->license_expression;
    else if (license_is_name(metadata->license, metadata->license_continued))
        single = metadata->license;

    if (single.text != NULL) {
        failed |= json_array_append_new(
            licenses, inspector_json_text(single.text, single.len));
    } else {
        for (size_t i = 0; i < metadata->classifier_count; i++)
            failed |= json_array_append_new(
                licenses, inspector_json_text(metadata->classifiers[i].text,
                                              metadata->classifiers[i].len));
    }
    if (failed != 0) {
        json_decref(licenses);
        return NULL;
    }
    return licenses;
}

/* Builds the package item. Returns NULL when memory is short. */
static json_t *
python_package_item(const char *path, const struct python_metadata *metadata)
{
    char normalized[PYTHON_NAME_MAX + 1];
    char version[PYTHON_VALUE_MAX + 1];
    json_t *item = json_object();
    json_t *licenses = python_licenses(metadata);

    python_normalize_name(metadata->name, normalized);
    memcpy(version, metadata->version.text, metadata->version.len);
    version[metadata->version.len] = '\0';
    if (item == NULL || licenses == NULL ||
        json_object_set_new(item, "type", json_string("pypi")) < 0 ||
        json_object_set_new(
            item, "name",
            inspector_json_text(metadata->name.text, metadata->name.len)) < 0 ||
        json_object_set_new(
            item, "version",
            inspector_json_text(version, metadata->version.len)) < 0 ||
        json_object_set_new(item, "path",
                            inspector_json_text(path, strlen(path))) < 0 ||
        json_object_set_new(
            item, "purl",
            catalog_purl("pypi", NULL, normalized, version, NULL)) < 0)
        goto fail;
    if (json_array_size(licenses) > 0 &&
        json_object_set_new(item, "licenses", licenses) < 0) {
        licenses = NULL;
        goto fail;
    }
    if (json_array_size(licenses) == 0)
        json_decref(licenses);
    return item;

fail:
    json_decref(licenses);
    json_decref(item);
    return NULL;
}

/* Adds the package a metadata file describes, or a note when it has no
 * usable Name or Version. */
static int
python_file(struct catalog_ctx *ctx, const char *path,
            const unsigned char *data, size_t len)
{
    struct python_metadata metadata = {.classifier_count = 0};
    static const char *const required[] = {"Name", "Version"};
    const struct span *values[] = {&metadata.name, &metadata.version};
    const unsigned long *lines[] = {&metadata.name_line,
                                    &metadata.version_line};

    python_read_header((const char *)data, len, &metadata);
    for (size_t i = 0; i < 2; i++) {
        if (values[i]->text == NULL || values[i]->len == 0)
            return catalog_note(ctx, catalog_python.name, path,
                                "no %s field in the header fields that end "
                                "at line %lu",
                                required[i], metadata.end_line);
        if (values[i]->len > PYTHON_VALUE_MAX)
            return catalog_note(ctx, catalog_python.name, path,
                                "line %lu: %s is longer than %d bytes",
                                *lines[i], required[i], PYTHON_VALUE_MAX);
    }
    return catalog_add(ctx, "packages", python_package_item(path, &metadata));
}

const struct cataloger catalog_python = {
    .name = "python",
    .want = python_want,
    .file = python_file,
};
