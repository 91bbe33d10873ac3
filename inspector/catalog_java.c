/*
 * Java archives: jar, war, ear and par files, read as zip streams with
 * libarchive's streamable zip reader, which follows the local file
 * headers in order and never seeks to the central directory. The archive
 * is never held in memory and nothing is extracted.
 *
 * Each archive yields the Maven packages of its
 * META-INF/maven/GROUP/ARTIFACT/pom.properties files. An archive without
 * one yields a single package named by its META-INF/MANIFEST.MF or, as a
 * last resort, by its file name (name-1.2.3.jar). Archives inside the
 * archive (WEB-INF/lib/x.jar in a war, BOOT-INF/lib/x.jar in a Spring
 * Boot jar) are read the same way from the outer entry's data, one level
 * deep.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "inspector/catalog.h"

#define JAVA_CATALOGER "java"

/* Bytes of one pom.properties or MANIFEST.MF read into memory. */
#define JAVA_TEXT_FILE_MAX (1024u * 1024)

/* Entries of one archive, counting those of the archives inside it. */
#define JAVA_ENTRIES_MAX 500000

/* Packages reported for one archive. */
#define JAVA_PACKAGES_MAX 10000

/* Licenses kept from one Bundle-License header. */
#define JAVA_LICENSES_MAX 64

/* Decompressed bytes read before the compression ratio is checked, as
 * the layer reader does: a small archive of empty files is harmless. */
#define JAVA_RATIO_MIN_BYTES (1024ull * 1024)

#define JAVA_POM_PREFIX "META-INF/maven/"
#define JAVA_POM_SUFFIX "/pom.properties"
#define JAVA_MANIFEST "META-INF/MANIFEST.MF"

/* The state of one archive found in the layer, shared with the archives
 * nested in it, so that one set of limits covers them all. */
struct java_read {
    struct catalog_ctx *ctx;
    const char *path; /* the archive's path in the layer */
    struct catalog_stream *stream;
    uint64_t compressed;   /* bytes read from the layer */
    uint64_t decompressed; /* entry data read from the archives */
    uint64_t entries;
    json_t *seen; /* "group:artifact:version" of the packages added */
    size_t packages;
    unsigned deep_archives; /* archives nested two levels deep */
    char *deep_first;       /* the location of the first of them */
    bool stream_failed;     /* catalog_stream_next returned -1 */
    bool memory_short;
    bool stopped; /* a limit was reached and noted */
};

/* The attributes of a manifest's main section that name a package. */
struct java_manifest {
    char *title;
    char *version;
    char *symbolic_name;
    char *bundle_version;
    char *license;
};

/* One archive being read: the archive found in the layer, or one inside
 * it. */
struct java_archive {
    struct java_read *read;
    struct archive *archive;
    const char *prefix; /* "" or the nested entry's name and '!' */
    const char *name;   /* the archive's file name */
    int depth;          /* 0 for the archive found in the layer */
    json_t *poms;       /* packages from pom.properties files */
    struct java_manifest manifest;
    bool has_manifest;
};

/* What a step of reading an archive leads to. */
enum java_step {
    JAVA_NEXT, /* go on with the next entry */
    JAVA_END,  /* stop reading this archive; a note says why */
    JAVA_FAIL, /* memory is short or the layer stream failed */
};

static bool
has_suffix_nocase(const char *text, const char *suffix)
{
    size_t len = strlen(text);
    size_t suffix_len = strlen(suffix);

    return len >= suffix_len &&
           strcasecmp(text + len - suffix_len, suffix) == 0;
}

/* Returns true for the file names of Java archives. */
static bool
is_java_archive(const char *path)
{
    return has_suffix_nocase(path, ".jar") || has_suffix_nocase(path, ".war") ||
           has_suffix_nocase(path, ".ear") || has_suffix_nocase(path, ".par");
}

static const char *
path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash == NULL ? path : slash + 1;
}

/* Adds a note for read->path. On a memory shortage, marks read. */
static void java_note(struct java_read *read, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
java_note(struct java_read *read, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (catalog_note(read->ctx, JAVA_CATALOGER, read->path, "%s", message) < 0)
        read->memory_short = true;
}

/* Returns true when reading the archive must end. */
static bool
java_ended(const struct java_read *read)
{
    return read->stopped || read->stream_failed || read->memory_short;
}

/*
 * Counts len decompressed bytes and checks the layer's decompressed size
 * and ratio limits against the archive. Returns 0, or -1 after noting
 * the limit that was reached.
 */
static int
java_count(struct java_read *read, size_t len)
{
    const struct inspector_options *limits = read->ctx->options;

    read->decompressed += len;
    if (read->decompressed > limits->bytes_max) {
        java_note(read,
                  "the archive has more than %llu decompressed bytes "
                  "(inspector.layer_bytes_max); the rest was not read",
                  (unsigned long long)limits->bytes_max);
        read->stopped = true;
        return -1;
    }
    if (read->decompressed >= JAVA_RATIO_MIN_BYTES && read->compressed > 0 &&
        read->decompressed / read->compressed > limits->ratio_max) {
        java_note(read,
                  "the archive decompresses to more than %llu times its "
                  "size (inspector.compression_ratio_max); the rest was "
                  "not read",
                  (unsigned long long)limits->ratio_max);
        read->stopped = true;
        return -1;
    }
    return 0;
}

/* libarchive's read callback for the archive found in the layer: the
 * blocks of the layer entry. */
static la_ssize_t
java_read_layer(struct archive *archive, void *data, const void **buffer)
{
    struct java_read *read = data;
    size_t len;
    int r = catalog_stream_next(read->stream, buffer, &len);

    if (r < 0) {
        read->stream_failed = true;
        archive_set_error(archive, EIO, "the layer could not be read");
        return -1;
    }
    if (r == 0)
        return 0;
    read->compressed += len;
    return (la_ssize_t)len;
}

/* libarchive's read callback for a nested archive: the data of the
 * current entry of the archive around it, counted as decompressed. */
static la_ssize_t
java_read_entry(struct archive *archive, void *data, const void **buffer)
{
    struct java_archive *outer = data;
    size_t len;
    la_int64_t offset;
    int r = archive_read_data_block(outer->archive, buffer, &len, &offset);

    if (r == ARCHIVE_EOF)
        return 0;
    if (r < ARCHIVE_WARN) {
        archive_set_error(archive, EIO, "the outer entry could not be read");
        return -1;
    }
    if (java_count(outer->read, len) < 0) {
        archive_set_error(archive, EFBIG, "a limit was reached");
        return -1;
    }
    return (la_ssize_t)len;
}

/*
 * Notes an archive that libarchive could not read, unless the reason is
 * already known: a failed layer stream, a memory shortage or a limit.
 * Returns the step that follows.
 */
static enum java_step
java_archive_failed(struct java_archive *arch)
{
    struct java_read *read = arch->read;
    const char *text = archive_error_string(arch->archive);

    if (read->stream_failed || read->memory_short)
        return JAVA_FAIL;
    if (read->stopped)
        return JAVA_END;
    if (archive_errno(arch->archive) == ENOMEM) {
        read->memory_short = true;
        return JAVA_FAIL;
    }
    if (text == NULL)
        text = "unknown error";
    if (arch->depth == 0)
        java_note(read, "not a readable zip archive: %s", text);
    else
        java_note(read,
                  "nested archive %.*s is not a readable zip archive: "
                  "%s",
                  (int)(strlen(arch->prefix) - 1), arch->prefix, text);
    return java_ended(read) ? JAVA_FAIL : JAVA_END;
}

/* Returns JAVA_FAIL when memory is short or the layer stream failed, and
 * JAVA_END otherwise, for a reader that must stop. */
static enum java_step
java_stop_step(const struct java_read *read)
{
    return read->stream_failed || read->memory_short ? JAVA_FAIL : JAVA_END;
}

/* The content of a text file read from an entry, up to
 * JAVA_TEXT_FILE_MAX bytes. */
struct java_text {
    char *bytes; /* NUL-terminated */
    size_t len;
    size_t cap;
    bool too_large;
};

/* Appends a block to text, or marks it too large. Returns 0, or -1 when
 * memory is short. */
static int
text_append(struct java_text *text, const void *block, size_t len)
{
    /* libarchive may hand over an empty block with a NULL pointer, which
     * memcpy must not see. */
    if (text->too_large || len == 0)
        return 0;
    if (len > JAVA_TEXT_FILE_MAX - text->len) {
        text->too_large = true;
        return 0;
    }
    if (text->len + len + 1 > text->cap) {
        size_t cap = text->cap == 0 ? 4096 : text->cap;
        char *grown;

        while (cap < text->len + len + 1)
            cap *= 2;
        grown = realloc(text->bytes, cap);
        if (grown == NULL)
            return -1;
        text->bytes = grown;
        text->cap = cap;
    }
    memcpy(text->bytes + text->len, block, len);
    text->len += len;
    text->bytes[text->len] = '\0';
    return 0;
}

/*
 * Reads the data of the current entry to its end, counting every block
 * against the limits. With text set, keeps the data there too. Returns
 * the step that follows.
 */
static enum java_step
java_read_data(struct java_archive *arch, struct java_text *text)
{
    struct java_read *read = arch->read;

    for (;;) {
        const void *block;
        size_t len;
        la_int64_t offset;
        int r = archive_read_data_block(arch->archive, &block, &len, &offset);

        if (r == ARCHIVE_EOF)
            return JAVA_NEXT;
        if (r < ARCHIVE_WARN)
            return java_archive_failed(arch);
        if (java_count(read, len) < 0)
            return java_stop_step(read);
        if (text != NULL && text_append(text, block, len) < 0) {
            read->memory_short = true;
            return JAVA_FAIL;
        }
    }
}

/*
 * Reads the current entry, a text file at location, into text. A file
 * over JAVA_TEXT_FILE_MAX bytes is noted and left empty. Returns the
 * step that follows; text->bytes is NULL unless the step is JAVA_NEXT.
 */
static enum java_step
java_read_text(struct java_archive *arch, const char *location,
               struct java_text *text)
{
    enum java_step step = java_read_data(arch, text);

    if (step == JAVA_NEXT && text->too_large) {
        java_note(arch->read, "%s is larger than %u bytes and was not read",
                  location, (unsigned)JAVA_TEXT_FILE_MAX);
        step = java_ended(arch->read) ? JAVA_FAIL : JAVA_NEXT;
    }
    if (step != JAVA_NEXT || text->too_large || text->bytes == NULL) {
        free(text->bytes);
        text->bytes = NULL;
        text->len = 0;
    }
    return step;
}

/* ---- pom.properties: Java properties syntax ---- */

/* The properties of a pom.properties file that name a package. */
struct java_pom {
    char *group;
    char *artifact;
    char *version;
};

static bool
prop_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\f';
}

static bool
prop_is_eol(unsigned char c)
{
    return c == '\n' || c == '\r';
}

/* Writes the UTF-8 form of a code point below 0x10000 to out and returns
 * its length. */
static size_t
put_utf8(char *out, unsigned code)
{
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xc0 | (code >> 6));
        out[1] = (char)(0x80 | (code & 0x3f));
        return 2;
    }
    /* A lone surrogate half has no UTF-8 form. */
    if (code >= 0xd800 && code <= 0xdfff)
        code = 0xfffd;
    out[0] = (char)(0xe0 | (code >> 12));
    out[1] = (char)(0x80 | ((code >> 6) & 0x3f));
    out[2] = (char)(0x80 | (code & 0x3f));
    return 3;
}

/* Reads the 4 hex digits of a \uXXXX escape at p. Returns the code
 * point, or -1 when they are not 4 hex digits. */
static long
prop_hex4(const unsigned char *p, const unsigned char *end)
{
    long code = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int digit;

        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else
            return -1;
        code = code * 16 + digit;
    }
    return code;
}

/* Writes the character that the escape "\c" stands for, reading the
 * digits of a \u escape after *p. Returns the bytes written. */
static size_t
prop_escape(const unsigned char **p, const unsigned char *end, unsigned char c,
            char *out)
{
    long code;

    switch (c) {
    case 't':
        return put_utf8(out, '\t');
    case 'n':
        return put_utf8(out, '\n');
    case 'r':
        return put_utf8(out, '\r');
    case 'f':
        return put_utf8(out, '\f');
    case 'u':
        code = prop_hex4(*p, end);
        if (code < 0)
            return put_utf8(out, 'u');
        *p += 4;
        return put_utf8(out, (unsigned)code);
    default:
        /* Bytes are ISO 8859-1, as Properties.load reads a stream. */
        return put_utf8(out, c);
    }
}

/*
 * Reads a key (stopping at an unescaped '=', ':' or white space) or a
 * value (stopping at the end of the logical line) from *pp, unescaped
 * and in UTF-8, into out, which has room for twice the input. A
 * backslash before a line break continues the line on the next one,
 * without its leading white space. Returns the bytes written before the
 * NUL that ends them.
 */
static size_t
prop_element(const unsigned char **pp, const unsigned char *end, char *out,
             bool key)
{
    const unsigned char *p = *pp;
    size_t n = 0;

    while (p < end && !prop_is_eol(*p)) {
        unsigned char c = *p;

        if (key && (c == '=' || c == ':' || prop_is_space(c)))
            break;
        p++;
        if (c != '\\') {
            n += put_utf8(out + n, c);
            continue;
        }
        if (p == end)
            break;
        c = *p++;
        if (prop_is_eol(c)) {
            if (c == '\r' && p < end && *p == '\n')
                p++;
            while (p < end && prop_is_space(*p))
                p++;
            continue;
        }
        n += prop_escape(&p, end, c, out + n);
    }
    out[n] = '\0';
    *pp = p;
    return n;
}

/* Stores value in *field, replacing an earlier one as Properties.load
 * does. Returns 0, or -1 when memory is short. */
static int
prop_store(char **field, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL)
        return -1;
    free(*field);
    *field = copy;
    return 0;
}

/* Stores the property key=value if it is one of those pom names. */
static int
pom_set(struct java_pom *pom, const char *key, const char *value)
{
    if (strcmp(key, "groupId") == 0)
        return prop_store(&pom->group, value);
    if (strcmp(key, "artifactId") == 0)
        return prop_store(&pom->artifact, value);
    if (strcmp(key, "version") == 0)
        return prop_store(&pom->version, value);
    return 0;
}

/* Parses a pom.properties file. Returns 0, or -1 when memory is short. */
static int
pom_parse(struct java_pom *pom, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    const unsigned char *end = p + len;
    char *out = malloc(2 * len + 2);

    if (out == NULL)
        return -1;
    while (p < end) {
        size_t key_len;

        while (p < end && prop_is_space(*p))
            p++;
        if (p < end && (*p == '#' || *p == '!'))
            while (p < end && !prop_is_eol(*p))
                p++;
        if (p < end && prop_is_eol(*p)) {
            p++;
            continue;
        }
        if (p == end)
            break;

        key_len = prop_element(&p, end, out, true);
        while (p < end && prop_is_space(*p))
            p++;
        if (p < end && (*p == '=' || *p == ':'))
            p++;
        while (p < end && prop_is_space(*p))
            p++;
        prop_element(&p, end, out + key_len + 1, false);
        if (pom_set(pom, out, out + key_len + 1) < 0) {
            free(out);
            return -1;
        }
    }
    free(out);
    return 0;
}

static void
pom_clear(struct java_pom *pom)
{
    free(pom->group);
    free(pom->artifact);
    free(pom->version);
}

/* ---- MANIFEST.MF ---- */

/* Stores one "Name: value" header line of the main section if it names
 * the package. The first of repeated headers wins. */
static int
manifest_header(struct java_manifest *manifest, const char *line)
{
    static const struct {
        const char *name;
        size_t offset;
    } wanted[] = {
        {"Implementation-Title", offsetof(struct java_manifest, title)},
        {"Implementation-Version", offsetof(struct java_manifest, version)},
        {"Bundle-SymbolicName", offsetof(struct java_manifest, symbolic_name)},
        {"Bundle-Version", offsetof(struct java_manifest, bundle_version)},
        {"Bundle-License", offsetof(struct java_manifest, license)},
    };
    const char *colon = strchr(line, ':');
    const char *value;

    if (colon == NULL)
        return 0;
    value = colon + 1;
    while (*value == ' ')
        value++;

    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        char **field = (char **)((char *)manifest + wanted[i].offset);

        if (strlen(wanted[i].name) != (size_t)(colon - line) ||
            strncasecmp(line, wanted[i].name, (size_t)(colon - line)) != 0)
            continue;
        if (*field != NULL || *value == '\0')
            return 0;
        *field = strdup(value);
        return *field == NULL ? -1 : 0;
    }
    return 0;
}

/*
 * Parses the main section of a manifest, which ends at the first empty
 * line. Lines end with CR LF, LF or CR, and a line that starts with a
 * space continues the one before it (writers break lines at 72 bytes).
 * Returns 0, or -1 when memory is short.
 */
static int
manifest_parse(struct java_manifest *manifest, const char *text, size_t len)
{
    const char *p = text;
    const char *end = text + len;
    char *logical = malloc(len + 1);
    size_t used = 0;
    int rc = 0;

    if (logical == NULL)
        return -1;
    while (p < end && rc == 0) {
        size_t line_len = strcspn(p, "\r\n");
        const char *next = p + line_len;

        if (next < end && *next == '\r' && next + 1 < end && next[1] == '\n')
            next += 2;
        else if (next < end)
            next++;

        if (line_len > 0 && p[0] == ' ') {
            memcpy(logical + used, p + 1, line_len - 1);
            used += line_len - 1;
        } else {
            logical[used] = '\0';
            if (used > 0)
                rc = manifest_header(manifest, logical);
            used = 0;
            if (line_len == 0)
                break;
            memcpy(logical, p, line_len);
            used = line_len;
        }
        p = next;
    }
    logical[used] = '\0';
    if (rc == 0 && used > 0)
        rc = manifest_header(manifest, logical);
    free(logical);
    return rc;
}

static void
manifest_clear(struct java_manifest *manifest)
{
    free(manifest->title);
    free(manifest->version);
    free(manifest->symbolic_name);
    free(manifest->bundle_version);
    free(manifest->license);
    memset(manifest, 0, sizeof(*manifest));
}

/* Appends text[0..len) to list as a string, trimmed of white space and
 * quotes; skips it when nothing is left. Returns 0 or -1. */
static int
license_append(json_t *list, const char *text, size_t len)
{
    while (len > 0 && (*text == ' ' || *text == '"'))
        text++, len--;
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '"'))
        len--;
    if (len == 0)
        return 0;
    return json_array_append_new(list, inspector_json_text(text, len));
}

/*
 * Returns the licenses of an OSGi Bundle-License header as a new array:
 * a comma-separated list of names or URLs, each optionally followed by
 * ";attribute=value" parts, which are dropped. "<<EXTERNAL>>" names no
 * license. Keeps the first JAVA_LICENSES_MAX and sets *truncated when
 * there are more. Returns NULL when memory is short.
 */
static json_t *
manifest_licenses(const char *header, bool *truncated)
{
    json_t *list = json_array();
    const char *p = header;

    *truncated = false;
    while (list != NULL && *p != '\0') {
        size_t item = 0;
        const char *semicolon;
        size_t name;
        bool external;
        bool quoted = false;

        while (p[item] != '\0' && (quoted || p[item] != ',')) {
            if (p[item] == '"')
                quoted = !quoted;
            item++;
        }
        /* The search stays inside the item, so that a header of many
         * items is read once. */
        semicolon = memchr(p, ';', item);
        name = semicolon != NULL ? (size_t)(semicolon - p) : item;
        external = name == 12 && strncmp(p, "<<EXTERNAL>>", 12) == 0;
        if (!external && json_array_size(list) == JAVA_LICENSES_MAX) {
            *truncated = true;
            break;
        }
        if (!external && license_append(list, p, name) < 0) {
            json_decref(list);
            return NULL;
        }
        p += item;
        if (*p == ',')
            p++;
    }
    return list;
}

/*
 * Returns the licenses of the archive's Bundle-License as a new array,
 * noting when some were left out, or NULL when memory is short.
 */
static json_t *
java_manifest_licenses(struct java_archive *arch)
{
    bool truncated;
    json_t *list = manifest_licenses(arch->manifest.license, &truncated);

    if (list != NULL && truncated) {
        java_note(arch->read,
                  "%s" JAVA_MANIFEST " lists more than %u licenses in "
                  "Bundle-License; the rest were not read",
                  arch->prefix, (unsigned)JAVA_LICENSES_MAX);
        if (arch->read->memory_short) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

/* ---- packages ---- */

/* Sets key in object to a JSON string of text. Returns 0 or -1. */
static int
json_set_text(json_t *object, const char *key, const char *text)
{
    return json_object_set_new(object, key,
                               inspector_json_text(text, strlen(text)));
}

/*
 * Returns a new package object of type maven, or NULL when memory is
 * short. group may be NULL when it is not known, and location is NULL
 * for the archive found in the layer itself.
 */
static json_t *
java_package_new(const struct java_archive *arch, const char *group,
                 const char *name, const char *version, const char *location)
{
    json_t *package = json_pack("{s:s}", "type", "maven");

    if (package == NULL || json_set_text(package, "name", name) < 0 ||
        json_set_text(package, "version", version) < 0 ||
        json_set_text(package, "path", arch->read->path) < 0 ||
        (group != NULL && json_set_text(package, "namespace", group) < 0) ||
        (location != NULL &&
         json_set_text(package, "location", location) < 0) ||
        json_object_set_new(package, "purl",
                            catalog_purl("maven", group, name, version, NULL)) <
            0) {
        json_decref(package);
        return NULL;
    }
    return package;
}

/*
 * Reserves a place for the package group:name:version. Returns 1 when it
 * is new, 0 when the archive already has it or holds the maximum number
 * of packages (noted once), and -1 when memory is short.
 */
static int
java_package_reserve(struct java_read *read, const char *group,
                     const char *name, const char *version)
{
    size_t len = strlen(group) + strlen(name) + strlen(version) + 3;
    char *key = malloc(len);
    int rc = 1;

    if (key == NULL) {
        read->memory_short = true;
        return -1;
    }
    snprintf(key, len, "%s:%s:%s", group, name, version);
    if (json_object_get(read->seen, key) != NULL) {
        rc = 0;
    } else if (read->packages == JAVA_PACKAGES_MAX) {
        java_note(read,
                  "the archive names more than %u packages; the rest "
                  "are not reported",
                  (unsigned)JAVA_PACKAGES_MAX);
        read->packages++;
        rc = 0;
    } else if (read->packages > JAVA_PACKAGES_MAX) {
        rc = 0;
    } else if (json_object_set_new(read->seen, key, json_true()) < 0) {
        read->memory_short = true;
    } else {
        read->packages++;
    }
    free(key);
    return read->memory_short ? -1 : rc;
}

/* Builds the location of a file inside the archive: its prefix and its
 * name. Returns a new string, or NULL when memory is short. */
static char *
java_location(const struct java_archive *arch, const char *name)
{
    size_t len = strlen(arch->prefix) + strlen(name) + 1;
    char *location = malloc(len);

    if (location != NULL)
        snprintf(location, len, "%s%s", arch->prefix, name);
    return location;
}

/* Reads the pom.properties file of the current entry. Returns the step
 * that follows. */
static enum java_step
java_read_pom(struct java_archive *arch, const char *name)
{
    struct java_read *read = arch->read;
    struct java_text text = {0};
    struct java_pom pom = {0};
    char *location = java_location(arch, name);
    json_t *package;
    enum java_step step = JAVA_FAIL;
    int fresh;

    if (location == NULL) {
        read->memory_short = true;
        goto out;
    }
    step = java_read_text(arch, location, &text);
    if (step != JAVA_NEXT || text.bytes == NULL)
        goto out;
    if (pom_parse(&pom, text.bytes, text.len) < 0) {
        read->memory_short = true;
        step = JAVA_FAIL;
        goto out;
    }

    if (pom.artifact == NULL || pom.artifact[0] == '\0' ||
        pom.version == NULL || pom.version[0] == '\0') {
        java_note(read, "%s has no artifactId or no version", location);
        goto out;
    }
    fresh = java_package_reserve(read, pom.group == NULL ? "" : pom.group,
                                 pom.artifact, pom.version);
    if (fresh <= 0) {
        step = fresh < 0 ? JAVA_FAIL : JAVA_NEXT;
        goto out;
    }
    package =
        java_package_new(arch, pom.group, pom.artifact, pom.version, location);
    if (package == NULL || json_array_append_new(arch->poms, package) < 0) {
        read->memory_short = true;
        step = JAVA_FAIL;
    }

out:
    pom_clear(&pom);
    free(text.bytes);
    free(location);
    return step;
}

/* Reads the MANIFEST.MF file of the current entry. Returns the step that
 * follows. */
static enum java_step
java_read_manifest(struct java_archive *arch, const char *name)
{
    struct java_text text = {0};
    char *location = java_location(arch, name);
    enum java_step step;

    if (location == NULL) {
        arch->read->memory_short = true;
        return JAVA_FAIL;
    }
    step = java_read_text(arch, location, &text);
    free(location);
    if (step != JAVA_NEXT || text.bytes == NULL || arch->has_manifest) {
        free(text.bytes);
        return step;
    }

    arch->has_manifest = true;
    if (manifest_parse(&arch->manifest, text.bytes, text.len) < 0) {
        arch->read->memory_short = true;
        step = JAVA_FAIL;
    }
    free(text.bytes);
    return step;
}

/*
 * Splits an archive's file name such as "commons-io-2.11.0.jar" at the
 * first '-' before a digit into a name and a version, new strings the
 * caller frees. Returns 1 when the file name has both, 0 when it does
 * not, -1 when memory is short.
 */
static int
file_name_split(const char *file_name, char **name, char **version)
{
    const char *dot = strrchr(file_name, '.');
    size_t len = dot == NULL ? strlen(file_name) : (size_t)(dot - file_name);

    *name = NULL;
    *version = NULL;
    for (size_t i = 1; i + 1 < len; i++) {
        if (file_name[i] != '-' || file_name[i + 1] < '0' ||
            file_name[i + 1] > '9')
            continue;
        *name = strndup(file_name, i);
        *version = strndup(file_name + i + 1, len - i - 1);
        if (*name == NULL || *version == NULL) {
            free(*name);
            free(*version);
            return -1;
        }
        return 1;
    }
    return 0;
}

/*
 * Chooses the name and version of an archive without pom.properties:
 * its manifest's Implementation-Title and Implementation-Version, else
 * Bundle-SymbolicName and Bundle-Version, else its file name. Stores new
 * strings the caller frees, with *location set to where they were found
 * (NULL for the file name of the archive found in the layer). Returns 1,
 * 0 when nothing names the archive, or -1 when memory is short.
 */
static int
java_choose_name(const struct java_archive *arch, char **name, char **version,
                 char **location)
{
    const struct java_manifest *manifest = &arch->manifest;
    int found = 1;

    *location = NULL;
    if (manifest->title != NULL && manifest->version != NULL) {
        *name = strdup(manifest->title);
        *version = strdup(manifest->version);
    } else if (manifest->symbolic_name != NULL &&
               manifest->bundle_version != NULL) {
        /* Directives such as ";singleton:=true" follow the name. */
        *name = strndup(manifest->symbolic_name,
                        strcspn(manifest->symbolic_name, "; "));
        *version = strdup(manifest->bundle_version);
    } else {
        found = file_name_split(arch->name, name, version);
        if (found <= 0)
            return found;
        /* Inside an archive, the location is the nested archive. */
        if (arch->depth > 0)
            *location = strndup(arch->prefix, strlen(arch->prefix) - 1);
        return arch->depth > 0 && *location == NULL ? -1 : 1;
    }
    *location = java_location(arch, JAVA_MANIFEST);
    if (*name == NULL || *version == NULL || *location == NULL)
        return -1;
    return 1;
}

/*
 * Adds the one package of an archive without pom.properties. Maven's
 * group id is not known then, so the package has no namespace. Licenses
 * come from the manifest's Bundle-License. Returns 0 or -1.
 */
static int
java_add_unnamed(struct java_archive *arch)
{
    const struct java_manifest *manifest = &arch->manifest;
    char *name = NULL;
    char *version = NULL;
    char *location = NULL;
    json_t *package = NULL;
    int rc = java_choose_name(arch, &name, &version, &location);

    if (rc <= 0)
        goto out;
    rc = java_package_reserve(arch->read, "", name, version);
    if (rc <= 0)
        goto out;

    rc = -1;
    package = java_package_new(arch, NULL, name, version, location);
    if (package == NULL)
        goto out;
    if (manifest->license != NULL &&
        json_object_set_new(package, "licenses", java_manifest_licenses(arch)) <
            0)
        goto out;
    rc = catalog_add(arch->read->ctx, "packages", package);
    package = NULL;

out:
    if (rc < 0)
        arch->read->memory_short = true;
    json_decref(package);
    free(location);
    free(version);
    free(name);
    return rc < 0 ? -1 : 0;
}

/*
 * Adds the packages found in one archive. When it has a single
 * pom.properties, its manifest's Bundle-License describes that package.
 * Returns 0 or -1.
 */
static int
java_archive_finish(struct java_archive *arch)
{
    size_t n = json_array_size(arch->poms);
    const char *license = arch->manifest.license;

    if (n == 0)
        return java_add_unnamed(arch);

    if (n == 1 && license != NULL &&
        json_object_set_new(json_array_get(arch->poms, 0), "licenses",
                            java_manifest_licenses(arch)) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (catalog_add(arch->read->ctx, "packages",
                        json_incref(json_array_get(arch->poms, i))) < 0)
            goto fail;
    return 0;

fail:
    arch->read->memory_short = true;
    return -1;
}

/* ---- reading archives ---- */

static enum java_step java_scan(struct java_archive *arch);

/* Starts reading the archive arch->archive from the callback and its
 * data. Returns JAVA_NEXT when it opened. */
static enum java_step
java_archive_open(struct java_archive *arch, archive_read_callback *reader,
                  void *data)
{
    if (arch->archive == NULL || arch->poms == NULL) {
        arch->read->memory_short = true;
        return JAVA_FAIL;
    }
    if (archive_read_support_format_zip_streamable(arch->archive) !=
            ARCHIVE_OK ||
        archive_read_open(arch->archive, data, NULL, reader, NULL) !=
            ARCHIVE_OK)
        return java_archive_failed(arch);
    return JAVA_NEXT;
}

static void
java_archive_clear(struct java_archive *arch)
{
    archive_read_free(arch->archive);
    json_decref(arch->poms);
    manifest_clear(&arch->manifest);
}

/*
 * Reads the archive in the current entry, named name, one level deep,
 * and adds its packages. Then reads what the nested archive left of the
 * entry, so that every byte is counted. Returns the step that follows:
 * a nested archive that cannot be read is noted and the outer archive
 * goes on.
 */
static enum java_step
java_read_nested(struct java_archive *outer, const char *name)
{
    struct java_read *read = outer->read;
    char *prefix = malloc(strlen(name) + 2);
    struct java_archive inner = {
        .read = read,
        .archive = archive_read_new(),
        .prefix = prefix,
        .name = path_basename(name),
        .depth = outer->depth + 1,
        .poms = json_array(),
    };
    enum java_step step = JAVA_FAIL;

    if (prefix == NULL) {
        read->memory_short = true;
        goto out;
    }
    snprintf(prefix, strlen(name) + 2, "%s!", name);

    /* An entry that does not open as a zip archive names no package. */
    step = java_archive_open(&inner, java_read_entry, outer);
    if (step == JAVA_NEXT) {
        step = java_scan(&inner);
        if (step != JAVA_FAIL && java_archive_finish(&inner) < 0)
            step = JAVA_FAIL;
    }
    if (step == JAVA_END && !read->stopped)
        step = JAVA_NEXT;
    if (step == JAVA_NEXT)
        step = java_read_data(outer, NULL);

out:
    java_archive_clear(&inner);
    free(prefix);
    return step;
}

/* Counts an archive nested two levels deep, which is not opened: each
 * level multiplies the work a small hostile archive can cause. */
static enum java_step
java_skip_deep(struct java_archive *arch, const char *name)
{
    struct java_read *read = arch->read;

    if (read->deep_archives++ == 0) {
        read->deep_first = java_location(arch, name);
        if (read->deep_first == NULL) {
            read->memory_short = true;
            return JAVA_FAIL;
        }
    }
    return java_read_data(arch, NULL);
}

/* Reads the entry whose header was just read. Returns the step that
 * follows. */
static enum java_step
java_entry(struct java_archive *arch, struct archive_entry *entry)
{
    const char *name = archive_entry_pathname_utf8(entry);

    if (name == NULL)
        name = archive_entry_pathname(entry);
    if (name == NULL || archive_entry_filetype(entry) != AE_IFREG)
        return java_read_data(arch, NULL);

    if (catalog_has_prefix(name, JAVA_POM_PREFIX) &&
        catalog_has_suffix(name, JAVA_POM_SUFFIX))
        return java_read_pom(arch, name);
    if (strcasecmp(name, JAVA_MANIFEST) == 0)
        return java_read_manifest(arch, name);
    if (is_java_archive(name))
        return arch->depth == 0 ? java_read_nested(arch, name)
                                : java_skip_deep(arch, name);
    return java_read_data(arch, NULL);
}

/* Reads every entry of an archive. Returns the step that follows. */
static enum java_step
java_scan(struct java_archive *arch)
{
    struct java_read *read = arch->read;

    for (;;) {
        struct archive_entry *entry;
        enum java_step step;
        int r = archive_read_next_header(arch->archive, &entry);

        if (r == ARCHIVE_EOF)
            return JAVA_NEXT;
        /* ARCHIVE_WARN covers names that cannot be converted to the
         * current locale; the entry itself is complete. */
        if (r < ARCHIVE_WARN)
            return java_archive_failed(arch);

        read->entries++;
        if (read->entries > JAVA_ENTRIES_MAX) {
            java_note(read,
                      "the archive has more than %u entries; the rest "
                      "were not read",
                      (unsigned)JAVA_ENTRIES_MAX);
            read->stopped = true;
            return java_stop_step(read);
        }
        step = java_entry(arch, entry);
        if (step != JAVA_NEXT)
            return step;
    }
}

/* Reads a Java archive found in the layer. Returns 0, or -1 when memory
 * is short or the layer stream failed. */
static int
java_stream(struct catalog_ctx *ctx, const char *path,
            struct catalog_stream *stream)
{
    struct java_read read = {
        .ctx = ctx,
        .path = path,
        .stream = stream,
        .seen = json_object(),
    };
    struct java_archive arch = {
        .read = &read,
        .archive = archive_read_new(),
        .prefix = "",
        .name = path_basename(path),
        .poms = json_array(),
    };
    enum java_step step = JAVA_FAIL;

    if (read.seen == NULL)
        read.memory_short = true;
    else
        step = java_archive_open(&arch, java_read_layer, &read);
    if (step == JAVA_NEXT) {
        step = java_scan(&arch);
        if (step != JAVA_FAIL)
            java_archive_finish(&arch);
    }
    if (read.deep_archives > 0 && !read.stream_failed && !read.memory_short)
        java_note(&read,
                  "archives nested two levels deep were not read (%u, the "
                  "first at %s)",
                  read.deep_archives, read.deep_first);

    java_archive_clear(&arch);
    json_decref(read.seen);
    free(read.deep_first);
    return read.stream_failed || read.memory_short ? -1 : 0;
}

/* Wants the regular files named like Java archives; an empty file holds
 * nothing to read. */
static enum catalog_want
java_want(const char *path, int64_t size)
{
    return size > 0 && is_java_archive(path) ? CATALOG_STREAM : CATALOG_SKIP;
}

const struct cataloger catalog_java = {
    .name = JAVA_CATALOGER,
    .want = java_want,
    .stream = java_stream,
};
