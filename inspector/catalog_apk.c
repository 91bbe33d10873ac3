/*
 * apk cataloger: the packages of Alpine's database, lib/apk/db/installed.
 * The database is a list of records separated by blank lines. Each line
 * of a record is one field, a letter, a colon and the value, such as
 * "P:musl" (name), "V:1.2.4-r2" (version), "A:x86_64" (architecture),
 * "L:MIT" (license) and "o:musl" (origin, the source package). Letters
 * such as F (directory) and R (file) repeat once per entry of a package.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "inspector/catalog.h"

#define APK_INSTALLED_PATH "lib/apk/db/installed"

/*
 * Records of one database. The rest of a file with more is not read.
 * NOTE: an estimate, chosen far above the few thousand packages that a
 * large system installs.
 */
#define APK_RECORDS_MAX 100000

/* Bytes of a field value that is kept, such as P or L. */
#define APK_VALUE_MAX 1024

struct span {
    const char *text; /* NULL when the field is absent */
    size_t len;
};

/* The fields of one record that make a package. */
struct apk_record {
    unsigned long line;  /* of its first field */
    bool broken;         /* a problem is recorded; the record is skipped */
    struct span name;    /* P */
    struct span version; /* V */
    struct span arch;    /* A */
    struct span license; /* L */
    struct span origin;  /* o */
};

static enum catalog_want
apk_want(const char *path, int64_t size)
{
    (void)size;
    return strcmp(path, APK_INSTALLED_PATH) == 0 ? CATALOG_BUFFER
                                                 : CATALOG_SKIP;
}

/* Returns the slot of record that field letter fills, or NULL for a
 * letter that is not kept. */
static struct span *
apk_slot(struct apk_record *record, char letter)
{
    switch (letter) {
    case 'P':
        return &record->name;
    case 'V':
        return &record->version;
    case 'A':
        return &record->arch;
    case 'L':
        return &record->license;
    case 'o':
        return &record->origin;
    default:
        return NULL;
    }
}

/* Reads one line of a record; the first of repeated kept fields wins. */
static void
apk_line(struct apk_record *record, const char *line, size_t len,
         unsigned long number, struct catalog_problems *problems)
{
    struct span *slot;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len < 2 || line[1] != ':') {
        catalog_problems_add(
            problems, "line %lu is not a letter, a colon and a value", number);
        record->broken = true;
        return;
    }
    slot = apk_slot(record, line[0]);
    if (slot == NULL)
        return;
    if (len - 2 > APK_VALUE_MAX) {
        catalog_problems_add(problems,
                             "line %lu: field %c is longer than %d bytes",
                             number, line[0], APK_VALUE_MAX);
        record->broken = true;
    } else if (slot->text == NULL) {
        *slot = (struct span){line + 2, len - 2};
    }
}

static int
set_span(json_t *item, const char *key, struct span span)
{
    return json_object_set_new(item, key,
                               inspector_json_text(span.text, span.len));
}

/* Builds the package item of a record. The license stays one string,
 * because it may be an SPDX expression such as "MIT AND BSD-2-Clause",
 * which splitting on spaces would break. Returns NULL when memory is
 * short. */
static json_t *
apk_package_item(const char *path, const struct apk_record *record)
{
    json_t *item = json_object();
    json_t *licenses = NULL;

    if (item == NULL ||
        json_object_set_new(item, "type", json_string("apk")) < 0 ||
        set_span(item, "name", record->name) < 0 ||
        set_span(item, "version", record->version) < 0 ||
        json_object_set_new(item, "path",
                            inspector_json_text(path, strlen(path))) < 0)
        goto fail;
    if (record->arch.text != NULL && set_span(item, "arch", record->arch) < 0)
        goto fail;
    if (record->origin.text != NULL &&
        set_span(item, "source_name", record->origin) < 0)
        goto fail;
    if (record->license.text != NULL && record->license.len > 0) {
        licenses = json_array();
        if (licenses == NULL ||
            json_array_append_new(
                licenses, inspector_json_text(record->license.text,
                                              record->license.len)) < 0 ||
            json_object_set_new(item, "licenses", licenses) < 0)
            goto fail;
    }
    return item;

fail:
    json_decref(item);
    return NULL;
}

/* Adds the package of a finished record. Returns 0, or -1 when memory is
 * short. */
static int
apk_finish_record(struct catalog_ctx *ctx, const char *path,
                  const struct apk_record *record,
                  struct catalog_problems *problems)
{
    if (record->broken)
        return 0;
    if (record->name.text == NULL || record->version.text == NULL) {
        catalog_problems_add(problems, "record at line %lu has no %c field",
                             record->line,
                             record->name.text == NULL ? 'P' : 'V');
        return 0;
    }
    return catalog_add(ctx, "packages", apk_package_item(path, record));
}

static bool
is_blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r')
            return false;
    }
    return true;
}

/* Reads the records of the database. Malformed records are skipped and
 * described in one note. */
static int
apk_file(struct catalog_ctx *ctx, const char *path, const unsigned char *data,
         size_t len)
{
    const char *text = (const char *)data;
    struct apk_record record = {0};
    struct catalog_problems problems = {.count = 0};
    unsigned long number = 0;
    unsigned long records = 0;
    size_t pos = 0;

    while (pos < len && records < APK_RECORDS_MAX) {
        const char *line = text + pos;
        const char *newline = memchr(line, '\n', len - pos);
        size_t line_len =
            newline == NULL ? len - pos : (size_t)(newline - line);
        bool blank = is_blank(line, line_len);

        pos += line_len + 1;
        number++;
        if (!blank) {
            if (record.line == 0)
                record.line = number;
            apk_line(&record, line, line_len, number, &problems);
        }
        if (record.line != 0 && (blank || pos >= len)) {
            if (apk_finish_record(ctx, path, &record, &problems) < 0)
                return -1;
            record = (struct apk_record){0};
            records++;
        }
    }
    if (pos < len && !is_blank(text + pos, len - pos))
        catalog_problems_add(
            &problems,
            "more than %d records; the rest from line %lu is not "
            "read",
            APK_RECORDS_MAX, number + 1);

    return catalog_problems_note(ctx, catalog_apk.name, path, &problems);
}

const struct cataloger catalog_apk = {
    .name = "apk",
    .want = apk_want,
    .file = apk_file,
};
