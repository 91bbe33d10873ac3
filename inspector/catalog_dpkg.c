/*
 * dpkg catalogers: the packages of the dpkg database and the licenses of
 * machine-readable copyright files.
 *
 * The database is var/lib/dpkg/status, or on distroless images one or
 * more files under var/lib/dpkg/status.d/ with a few paragraphs each.
 * Both it and the copyright files are deb822 (deb822(5)): paragraphs of
 * "Field: value" lines separated by blank lines, where a line that starts
 * with a space or a tab continues the field above it.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "inspector/catalog.h"

#define DPKG_STATUS_PATH "var/lib/dpkg/status"
#define DPKG_STATUS_DIR "var/lib/dpkg/status.d/"
#define DPKG_DOC_DIR "usr/share/doc/"
#define DPKG_COPYRIGHT_NAME "/copyright"

/* Marks a copyright file in the machine-readable format, in its Format
 * field. The drafts of that format (DEP-5) are not read. */
#define COPYRIGHT_FORMAT_MARK "copyright-format/1.0"

/*
 * Paragraphs of one status file. The rest of a file with more is not
 * read.
 * NOTE: an estimate, chosen far above the few thousand packages that a
 * large system installs.
 */
#define DPKG_PARAGRAPHS_MAX 100000

/* Bytes of a field value that is kept, such as Package or License. */
#define DPKG_VALUE_MAX 1024

/* Distinct licenses kept from one copyright file. */
#define COPYRIGHT_LICENSES_MAX 128

/* A part of the file's content; text is NULL when the field is absent. */
struct span {
    const char *text;
    size_t len;
};

static bool
span_equals(struct span span, const char *text)
{
    return span.text != NULL && span.len == strlen(text) &&
           memcmp(span.text, text, span.len) == 0;
}

/* Sets key in item to the text of span, with invalid UTF-8 replaced.
 * Returns 0, or -1 when memory is short. */
static int
set_span(json_t *item, const char *key, struct span span)
{
    return json_object_set_new(item, key,
                               inspector_json_text(span.text, span.len));
}

/* ---- deb822 paragraphs ---- */

enum deb822_token {
    DEB822_FIELD,
    DEB822_PARAGRAPH_END,
    DEB822_END,
    DEB822_NO_COLON, /* a line that is neither a field nor a continuation */
    DEB822_CONTINUES_NOTHING, /* a continuation line opens a paragraph */
};

/* Reads a deb822 file line by line without copying it. */
struct deb822_reader {
    const char *data;
    size_t len;
    size_t pos;
    unsigned long line; /* 1-based number of the line last read */
    bool in_paragraph;
};

/* One field: its name and the first line of its value, trimmed.
 * Continuation lines are skipped, since no value kept here spans them. */
struct deb822_field {
    struct span name;
    struct span value;
};

static bool
is_blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r')
            return false;
    }
    return true;
}

static struct span
trim(const char *text, size_t len)
{
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
                       text[len - 1] == '\r'))
        len--;
    return (struct span){text, len};
}

/* Splits "Name: value" into field. Returns false when the line has no
 * colon after a non-empty name. */
static bool
deb822_split(const char *line, size_t len, struct deb822_field *field)
{
    const char *colon = memchr(line, ':', len);

    if (colon == NULL || colon == line)
        return false;
    field->name = trim(line, (size_t)(colon - line));
    field->value = trim(colon + 1, len - (size_t)(colon - line) - 1);
    return true;
}

/*
 * Returns the next token of the file: a field (stored in field), the end
 * of a paragraph, the end of the file, or a malformed line, which belongs
 * to the paragraph it sits in. Lines with only spaces and tabs separate
 * paragraphs as empty lines do, and lines that start with '#' are
 * comments, as deb822(5) allows both and copyright files use both.
 */
static enum deb822_token
deb822_next(struct deb822_reader *reader, struct deb822_field *field)
{
    while (reader->pos < reader->len) {
        const char *line = reader->data + reader->pos;
        size_t rest = reader->len - reader->pos;
        const char *newline = memchr(line, '\n', rest);
        size_t len = newline == NULL ? rest : (size_t)(newline - line);
        bool continuation = line[0] == ' ' || line[0] == '\t';
        bool opens = !reader->in_paragraph;

        reader->pos += newline == NULL ? len : len + 1;
        reader->line++;
        if (is_blank(line, len)) {
            if (opens)
                continue;
            reader->in_paragraph = false;
            return DEB822_PARAGRAPH_END;
        }

        if (line[0] == '#')
            continue;
        reader->in_paragraph = true;
        if (continuation && opens)
            return DEB822_CONTINUES_NOTHING;
        if (continuation)
            continue;
        return deb822_split(line, len, field) ? DEB822_FIELD : DEB822_NO_COLON;
    }
    if (reader->in_paragraph) {
        reader->in_paragraph = false;
        return DEB822_PARAGRAPH_END;
    }
    return DEB822_END;
}

/* Records a malformed-line token as a problem of the file. */
static void
deb822_problem(struct catalog_problems *problems, enum deb822_token token,
               unsigned long line)
{
    if (token == DEB822_NO_COLON)
        catalog_problems_add(problems, "line %lu has no colon", line);
    else
        catalog_problems_add(problems, "line %lu continues no field", line);
}

/* ---- the dpkg database ---- */

/* The fields of one paragraph that make a package. */
struct dpkg_paragraph {
    unsigned long line; /* of its first field */
    bool broken;        /* a problem is recorded; the paragraph is skipped */
    struct span package;
    struct span version;
    struct span architecture;
    struct span source;
    struct span status;
};

static enum catalog_want
dpkg_want(const char *path, int64_t size)
{
    const char *name;

    (void)size;
    if (strcmp(path, DPKG_STATUS_PATH) == 0)
        return CATALOG_BUFFER;
    if (!catalog_has_prefix(path, DPKG_STATUS_DIR))
        return CATALOG_SKIP;
    name = path + strlen(DPKG_STATUS_DIR);
    if (name[0] == '\0' || strchr(name, '/') != NULL ||
        catalog_has_suffix(name, ".md5sums"))
        return CATALOG_SKIP;
    return CATALOG_BUFFER;
}

/* Stores one field of interest in paragraph; a value longer than
 * DPKG_VALUE_MAX makes the paragraph broken. */
static void
dpkg_take_field(struct dpkg_paragraph *paragraph,
                const struct deb822_field *field, unsigned long line,
                struct catalog_problems *problems)
{
    static const char *const names[] = {"Package", "Version", "Architecture",
                                        "Source", "Status"};
    struct span *slots[] = {&paragraph->package, &paragraph->version,
                            &paragraph->architecture, &paragraph->source,
                            &paragraph->status};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (field->name.len != strlen(names[i]) ||
            strncasecmp(field->name.text, names[i], field->name.len) != 0)
            continue;
        if (field->value.len > DPKG_VALUE_MAX) {
            catalog_problems_add(problems,
                                 "line %lu: %s is longer than %d bytes", line,
                                 names[i], DPKG_VALUE_MAX);
            paragraph->broken = true;
        } else if (slots[i]->text == NULL) {
            *slots[i] = field->value;
        }
        return;
    }
}

/* Returns whether a Status value's last word, the package state, is
 * "installed", as in "install ok installed" or "hold ok installed". */
static bool
dpkg_status_installed(struct span status)
{
    size_t word = status.len;

    while (word > 0 && status.text[word - 1] != ' ' &&
           status.text[word - 1] != '\t')
        word--;
    return span_equals((struct span){status.text + word, status.len - word},
                       "installed");
}

/*
 * Splits a Source value, "glibc (2.36-9)" or "glibc", into the source
 * package's name and version. Without a version in parentheses the source
 * version is the binary package's. Returns false when a parenthesis is
 * not closed.
 */
static bool
dpkg_split_source(struct span source, struct span binary_version,
                  struct span *name, struct span *version)
{
    const char *open = memchr(source.text, '(', source.len);
    const char *end = source.text + source.len;

    if (open == NULL) {
        *name = source;
        *version = binary_version;
        return true;
    }
    if (end[-1] != ')')
        return false;
    *name = trim(source.text, (size_t)(open - source.text));
    *version = trim(open + 1, (size_t)(end - 1 - (open + 1)));
    return true;
}

/* Builds the package item of an installed paragraph. Returns NULL when
 * memory is short. */
static json_t *
dpkg_package_item(const char *path, const struct dpkg_paragraph *paragraph,
                  struct span source_name, struct span source_version)
{
    json_t *item = json_object();

    if (item == NULL ||
        json_object_set_new(item, "type", json_string("deb")) < 0 ||
        set_span(item, "name", paragraph->package) < 0 ||
        set_span(item, "version", paragraph->version) < 0 ||
        json_object_set_new(item, "path",
                            inspector_json_text(path, strlen(path))) < 0 ||
        set_span(item, "source_name", source_name) < 0 ||
        set_span(item, "source_version", source_version) < 0 ||
        (paragraph->architecture.text != NULL &&
         set_span(item, "arch", paragraph->architecture) < 0)) {
        json_decref(item);
        return NULL;
    }
    return item;
}

/*
 * Adds the package of a finished paragraph when it is installed. A
 * paragraph without Status is installed only in a status.d file, which
 * has no Status fields. dpkg names the source package after the binary
 * package when Source is absent, and so does this. Returns 0, or -1 when
 * memory is short.
 */
static int
dpkg_finish_paragraph(struct catalog_ctx *ctx, const char *path,
                      const struct dpkg_paragraph *paragraph,
                      bool status_required, struct catalog_problems *problems)
{
    struct span source_name = paragraph->package;
    struct span source_version = paragraph->version;

    if (paragraph->broken)
        return 0;
    if (paragraph->status.text == NULL && status_required) {
        catalog_problems_add(problems,
                             "paragraph at line %lu has no Status field",
                             paragraph->line);
        return 0;
    }
    if (paragraph->status.text != NULL &&
        !dpkg_status_installed(paragraph->status))
        return 0;
    if (paragraph->package.text == NULL || paragraph->version.text == NULL) {
        catalog_problems_add(
            problems, "paragraph at line %lu has no %s field", paragraph->line,
            paragraph->package.text == NULL ? "Package" : "Version");
        return 0;
    }
    if (paragraph->source.text != NULL &&
        !dpkg_split_source(paragraph->source, paragraph->version, &source_name,
                           &source_version)) {
        catalog_problems_add(problems,
                             "paragraph at line %lu: Source has no ')'",
                             paragraph->line);
        return 0;
    }
    return catalog_add(
        ctx, "packages",
        dpkg_package_item(path, paragraph, source_name, source_version));
}

/* Reads the paragraphs of a status file, or of one status.d file. */
static int
dpkg_file(struct catalog_ctx *ctx, const char *path, const unsigned char *data,
          size_t len)
{
    struct deb822_reader reader = {.data = (const char *)data, .len = len};
    struct dpkg_paragraph paragraph = {0};
    struct catalog_problems problems = {0};
    bool status_required = strcmp(path, DPKG_STATUS_PATH) == 0;
    unsigned long paragraphs = 0;
    struct deb822_field field;
    enum deb822_token token;

    while ((token = deb822_next(&reader, &field)) != DEB822_END) {
        if (paragraph.line == 0)
            paragraph.line = reader.line;
        if (token == DEB822_FIELD) {
            dpkg_take_field(&paragraph, &field, reader.line, &problems);
            continue;
        }
        if (token != DEB822_PARAGRAPH_END) {
            deb822_problem(&problems, token, reader.line);
            paragraph.broken = true;
            continue;
        }
        if (dpkg_finish_paragraph(ctx, path, &paragraph, status_required,
                                  &problems) < 0)
            return -1;
        paragraph = (struct dpkg_paragraph){0};
        if (++paragraphs == DPKG_PARAGRAPHS_MAX && reader.pos < len &&
            !is_blank(reader.data + reader.pos, len - reader.pos)) {
            catalog_problems_add(
                &problems,
                "more than %d paragraphs; the rest from line %lu "
                "is not read",
                DPKG_PARAGRAPHS_MAX, reader.line + 1);
            break;
        }
    }
    return catalog_problems_note(ctx, catalog_dpkg.name, path, &problems);
}

const struct cataloger catalog_dpkg = {
    .name = "dpkg",
    .want = dpkg_want,
    .file = dpkg_file,
};

/* ---- copyright files ---- */

/* The distinct license short names of one copyright file. */
struct copyright_licenses {
    struct span names[COPYRIGHT_LICENSES_MAX];
    size_t count;
    bool truncated;
};

/* The fields of one paragraph that matter for its licenses. */
struct copyright_paragraph {
    bool broken;
    bool has_files;
    bool machine_readable; /* a Format field names the format */
    struct span license;   /* the first line of License */
};

/* Returns the package name in usr/share/doc/NAME/copyright, or NULL. */
static const char *
copyright_package(const char *path, size_t *len)
{
    const char *name = path + strlen(DPKG_DOC_DIR);
    const char *slash;

    if (!catalog_has_prefix(path, DPKG_DOC_DIR))
        return NULL;
    slash = strchr(name, '/');
    if (slash == NULL || slash == name ||
        strcmp(slash, DPKG_COPYRIGHT_NAME) != 0)
        return NULL;
    *len = (size_t)(slash - name);
    return name;
}

static enum catalog_want
dpkg_copyright_want(const char *path, int64_t size)
{
    size_t len;

    (void)size;
    return copyright_package(path, &len) != NULL ? CATALOG_BUFFER
                                                 : CATALOG_SKIP;
}

static void
copyright_take_field(struct copyright_paragraph *paragraph,
                     const struct deb822_field *field, unsigned long line,
                     struct catalog_problems *problems)
{
    struct span name = field->name;
    struct span value = field->value;

    if (name.len == 5 && strncasecmp(name.text, "Files", 5) == 0) {
        paragraph->has_files = true;
    } else if (name.len == 6 && strncasecmp(name.text, "Format", 6) == 0) {
        paragraph->machine_readable =
            memmem(value.text, value.len, COPYRIGHT_FORMAT_MARK,
                   strlen(COPYRIGHT_FORMAT_MARK)) != NULL;
    } else if (name.len == 7 && strncasecmp(name.text, "License", 7) == 0) {
        if (value.len > DPKG_VALUE_MAX) {
            catalog_problems_add(problems,
                                 "line %lu: License is longer than %d bytes",
                                 line, DPKG_VALUE_MAX);
            paragraph->broken = true;
        } else if (paragraph->license.text == NULL) {
            paragraph->license = value;
        }
    }
}

/* Adds license to the list unless it is empty or already there. */
static void
copyright_keep(struct copyright_licenses *licenses, struct span license,
               unsigned long line, struct catalog_problems *problems)
{
    if (license.text == NULL || license.len == 0)
        return;
    for (size_t i = 0; i < licenses->count; i++) {
        if (licenses->names[i].len == license.len &&
            memcmp(licenses->names[i].text, license.text, license.len) == 0)
            return;
    }
    if (licenses->count == COPYRIGHT_LICENSES_MAX) {
        if (!licenses->truncated)
            catalog_problems_add(
                problems,
                "line %lu: more than %d distinct licenses; the "
                "rest is left out",
                line, COPYRIGHT_LICENSES_MAX);
        licenses->truncated = true;
        return;
    }
    licenses->names[licenses->count++] = license;
}

/* Adds the "licenses" item of the package. Returns 0, or -1 when memory
 * is short. */
static int
copyright_add(struct catalog_ctx *ctx, const char *path,
              const struct copyright_licenses *licenses)
{
    size_t package_len;
    const char *package = copyright_package(path, &package_len);
    json_t *item = json_object();
    json_t *list = json_array();

    if (item == NULL || list == NULL ||
        json_object_set_new(item, "path",
                            inspector_json_text(path, strlen(path))) < 0 ||
        json_object_set_new(item, "package",
                            inspector_json_text(package, package_len)) < 0)
        goto fail;
    for (size_t i = 0; i < licenses->count; i++) {
        if (json_array_append_new(
                list, inspector_json_text(licenses->names[i].text,
                                          licenses->names[i].len)) < 0)
            goto fail;
    }
    if (json_object_set_new(item, "licenses", list) < 0) {
        list = NULL;
        goto fail;
    }
    return catalog_add(ctx, "licenses", item);

fail:
    json_decref(list);
    json_decref(item);
    return -1;
}

/*
 * Collects the License short names of the header paragraph and of the
 * Files paragraphs. Stand-alone License paragraphs hold license texts for
 * names already listed and are not counted. A file whose first paragraph
 * does not name the machine-readable format is free text, which most
 * copyright files are, and adds nothing and no note.
 */
static int
dpkg_copyright_file(struct catalog_ctx *ctx, const char *path,
                    const unsigned char *data, size_t len)
{
    struct deb822_reader reader = {.data = (const char *)data, .len = len};
    struct copyright_paragraph paragraph = {0};
    struct copyright_licenses licenses = {.count = 0};
    struct catalog_problems problems = {0};
    bool header = true;
    struct deb822_field field;
    enum deb822_token token;

    while ((token = deb822_next(&reader, &field)) != DEB822_END) {
        if (token == DEB822_FIELD) {
            copyright_take_field(&paragraph, &field, reader.line, &problems);
            continue;
        }
        if (token != DEB822_PARAGRAPH_END) {
            if (header)
                return 0;
            deb822_problem(&problems, token, reader.line);
            paragraph.broken = true;
            continue;
        }
        if (header && !paragraph.machine_readable)
            return 0;
        if (!paragraph.broken && (header || paragraph.has_files))
            copyright_keep(&licenses, paragraph.license, reader.line,
                           &problems);
        header = false;
        paragraph = (struct copyright_paragraph){0};
    }
    if (header)
        return 0;

    if (copyright_add(ctx, path, &licenses) < 0)
        return -1;
    return catalog_problems_note(ctx, catalog_dpkg_copyright.name, path,
                                 &problems);
}

const struct cataloger catalog_dpkg_copyright = {
    .name = "dpkg-copyright",
    .want = dpkg_copyright_want,
    .file = dpkg_copyright_file,
};
